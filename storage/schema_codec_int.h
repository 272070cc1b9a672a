/* Internal to storage/: the table schema record (docs/formats.md, "Table
 * schema record"), the bytes a table's schema is kept as in META.
 *
 * A record holds every field of every locality group, in the schema's
 * order, with the block size resolved; the decoder rebuilds the schema
 * through ig_schema_create, so a decoded schema obeys the same rules as
 * one a user described. The decoder takes untrusted bytes: a malformed
 * record is IG_ECORRUPT with the offset of the first bad byte, never a
 * crash, and well-formed bytes describing an invalid schema are IG_EINVAL
 * with ig_schema_create's reason.
 */
#ifndef INGOT_STORAGE_SCHEMA_CODEC_INT_H
#define INGOT_STORAGE_SCHEMA_CODEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <ingot/storage.h>

/* ---- layout ------------------------------------------------------------- */

#define IG__SC_MAGIC 0x49475343u   /* "IGSC" */
#define IG__SC_VERSION 1

/* Header (offsets from the record's first byte). */
#define IG__SC_H_MAGIC 0      /* 4 */
#define IG__SC_H_VERSION 4    /* 1 */
#define IG__SC_H_FLAGS 5      /* 1: zero */
#define IG__SC_H_GROUPS 6     /* 2: locality groups, 1..IG_GROUPS_MAX */
#define IG__SC_H_LENGTH 8     /* 4: whole record, CRC included */
#define IG__SC_HEADER 12u

/* A group entry is a u8 name length and the name, then these fixed
 * fields (offsets from the byte after the name), then its families, each
 * a u8 length and the bytes. */
#define IG__SC_G_FLAGS 0        /* 1: IG__SC_WILDCARD | IG__SC_IN_MEMORY */
#define IG__SC_G_COMPRESSION 1  /* 1: ig_compression_t */
#define IG__SC_G_LEVEL 2        /* 1: zstd level; 0 for none */
#define IG__SC_G_BLOCK 3        /* 4: block size, resolved: never 0 */
#define IG__SC_G_HISTORY 7      /* 4: max history; 0 keeps all */
#define IG__SC_G_AGE 11         /* 8: max age in seconds, int64; 0 never */
#define IG__SC_G_NFAMILIES 19   /* 4: families that follow */
#define IG__SC_G_FIXED 23u

#define IG__SC_WILDCARD 0x01u
#define IG__SC_IN_MEMORY 0x02u

/* The largest record either side handles: far above any real schema, and
 * it keeps a hostile length field from meaning gigabytes. */
#define IG__SC_BYTES_MAX (16u << 20)

/* ---- codec -------------------------------------------------------------- */

/** Encodes s, a schema ig_schema_create built. *out is malloc'd; the caller
 *  frees it with free(). Errors: IG_EINVAL (s, out or out_len NULL),
 *  IG_ERANGE (the record would pass IG__SC_BYTES_MAX), IG_ENOMEM. */
int ig__schema_encode(const ig_schema_t *s, uint8_t **out, size_t *out_len);

/** Decodes an untrusted record of exactly len bytes into a schema built
 *  with ig_schema_create (so it is validated). Ownership: *out carries one
 *  reference; release it with ig_schema_unref.
 *  Errors: IG_ECORRUPT with *err_off (err_off may be NULL) the offset of
 *  the first bad byte and why (may be NULL; cut to why_len bytes, always
 *  NUL-terminated) saying what is wrong there; IG_EINVAL if the bytes are
 *  well-formed but the schema is invalid, with why from ig_schema_create
 *  (or out NULL, or buf NULL with len > 0); IG_ENOMEM. */
int ig__schema_decode(const void *buf, size_t len, ig_schema_t **out, size_t *err_off,
		      char *why, size_t why_len);

#endif
