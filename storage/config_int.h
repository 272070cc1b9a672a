/* Internal to storage/: tablet configs and the root config file
 * (docs/formats.md, "Tablet config and root file").
 *
 * A tablet config says where a tablet's data is: its table and tablet ids,
 * its row range, its log directory and the txn replay starts from, and per
 * locality group its fragment files, newest first, each with its txn range
 * and its clip: the rows of the file this tablet serves, since after a
 * split both halves keep reading the parent's files.
 * META rows hold encoded tablet configs; META's own configs live in the
 * root file, which is replaced atomically (write root.tmp, fdatasync,
 * rename to root, fsync the directory), because KDI renamed configs
 * without an fsync and could lose them in a crash.
 *
 * Decoders take untrusted bytes: anything malformed is IG_ECORRUPT with the
 * byte offset of the first bad field, never a crash.
 */
#ifndef INGOT_STORAGE_CONFIG_INT_H
#define INGOT_STORAGE_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

/* ---- layout ------------------------------------------------------------- */

#define IG__TC_MAGIC 0x49475443u   /* "IGTC" */
#define IG__TC_VERSION 2           /* what the encoder writes */
#define IG__TC_VERSION_MIN 1       /* oldest the decoder reads (no txn range, no clip) */
#define IG__RT_MAGIC 0x49475254u   /* "IGRT" */
#define IG__RT_VERSION 1

/* Tablet config header (offsets from the record's first byte). */
#define IG__TC_H_MAGIC 0      /* 4 */
#define IG__TC_H_VERSION 4    /* 1 */
#define IG__TC_H_FLAGS 5      /* 1: zero */
#define IG__TC_H_GROUPS 6     /* 2: locality groups */
#define IG__TC_H_LENGTH 8     /* 4: whole record, CRC included */
#define IG__TC_H_TABLE 12     /* 8 */
#define IG__TC_H_TABLET 20    /* 8 */
#define IG__TC_H_REPLAY 28    /* 8: replay start txn */
#define IG__TC_HEADER 36u

/* Root file header. */
#define IG__RT_H_MAGIC 0      /* 4 */
#define IG__RT_H_VERSION 4    /* 1 */
#define IG__RT_H_RESERVED 5   /* 3: zero */
#define IG__RT_H_GEN 8        /* 8: generation */
#define IG__RT_H_COUNT 16     /* 4: tablet configs */
#define IG__RT_H_LENGTH 20    /* 4: whole file, CRC included */
#define IG__RT_HEADER 24u

/* Bounds: a decoder never allocates more than the input can describe, and
 * an encoder never writes what the decoder refuses. */
#define IG__TC_ROW_MAX 65535u          /* row bytes (IG_ROW_MAX) */
#define IG__TC_LOGDIR_MAX 4096u        /* log directory bytes, 1 .. */
#define IG__TC_NAME_MAX 255u           /* fragment file name bytes, 1 .. */
#define IG__TC_GROUPS_MAX 256u         /* locality groups (IG_GROUPS_MAX) */
#define IG__TC_FRAGS_MAX 4096u         /* fragments in one group */
#define IG__TC_BYTES_MAX (16u << 20)   /* one encoded record */
#define IG__RT_CONFIGS_MAX 1024u       /* tablet configs in the root file */
#define IG__RT_BYTES_MAX (64u << 20)   /* the root file */

/* ---- tablet config ------------------------------------------------------ */

/* Fields in the order they are encoded; a version 1 record ends each
 * fragment after max_txn. */
typedef struct ig__tc_frag {
	char *name;        /* file name in the group's directory, no '/' */
	uint64_t max_txn;  /* newest txn in the file */
	uint64_t min_txn;  /* oldest txn in the file, <= max_txn (v1: 0) */
	uint8_t *lo;       /* clip, inclusive; lo_len 0 means -inf */
	uint32_t lo_len;   /* 0..IG__TC_ROW_MAX */
	uint8_t *hi;       /* clip, exclusive; hi_len 0 means +inf; lo < hi */
	uint32_t hi_len;   /* 0..IG__TC_ROW_MAX */
} ig__tc_frag_t;

typedef struct ig__tc_group {
	uint32_t nfrags;
	ig__tc_frag_t *frags;  /* newest first: max_txn never increases */
} ig__tc_group_t;

typedef struct ig__tconf {
	uint64_t table_id;
	uint64_t tablet_id;
	uint8_t *first_row;   /* inclusive; length 0 means -inf */
	uint32_t first_len;
	uint8_t *last_row;    /* exclusive; length 0 means +inf */
	uint32_t last_len;
	char *log_dir;        /* NUL-terminated, 1..IG__TC_LOGDIR_MAX bytes */
	uint64_t replay_txn;  /* log replay starts after this txn */
	uint32_t ngroups;
	ig__tc_group_t *groups;
} ig__tconf_t;

/** Encodes c as a version IG__TC_VERSION record. *out is malloc'd; the
 *  caller frees it with free(). Errors: IG_EINVAL (c breaks a rule the
 *  decoder checks), IG_ENOMEM. */
int ig__tconf_encode(const ig__tconf_t *c, uint8_t **out, size_t *out_len);

/** Decodes an untrusted record of exactly len bytes, of version
 *  IG__TC_VERSION_MIN..IG__TC_VERSION. *out is owned by the
 *  caller: free it with ig__tconf_free(). Errors: IG_ECORRUPT with
 *  *err_off the offset of the first bad byte (err_off may be NULL),
 *  IG_ENOMEM. */
int ig__tconf_decode(const void *buf, size_t len, ig__tconf_t **out, size_t *err_off);

/** Frees a config ig__tconf_decode() or ig__root_decode() returned. NULL is
 *  fine. Never call it on a config the caller built by hand. */
void ig__tconf_free(ig__tconf_t *c);

/* ---- root file ---------------------------------------------------------- */

typedef struct ig__root {
	uint64_t generation;   /* the writer increments it on every replace */
	uint32_t nconfigs;     /* 1 .. IG__RT_CONFIGS_MAX */
	ig__tconf_t **configs; /* META's tablet configs */
} ig__root_t;

/** Encodes r. *out is malloc'd; the caller frees it. Errors: IG_EINVAL,
 *  IG_ENOMEM. */
int ig__root_encode(const ig__root_t *r, uint8_t **out, size_t *out_len);

/** Decodes an untrusted root file image. *out is the caller's: free it with
 *  ig__root_free(). Errors: IG_ECORRUPT with *err_off, IG_ENOMEM. */
int ig__root_decode(const void *buf, size_t len, ig__root_t **out, size_t *err_off);

/** Frees a root ig__root_decode() or ig__root_read() returned; NULL ok. */
void ig__root_free(ig__root_t *r);

/** Replaces dir/root with r, atomically and durably: writes dir/root.tmp,
 *  fdatasyncs it, renames it over dir/root and fsyncs dir. On any failure
 *  dir/root is the old file or (failure at the directory fsync only) the
 *  new one, never a mix. Errors: IG_EINVAL, IG_ENOMEM, -errno. */
int ig__root_write(const char *dir, const ig__root_t *r);

/** Reads and validates dir/root; a root.tmp beside it (a crash mid-write)
 *  is ignored. *out is the caller's: ig__root_free(). Errors: IG_ENOTFOUND
 *  (no root), IG_ECORRUPT with *err_off, IG_ENOMEM, -errno. */
int ig__root_read(const char *dir, ig__root_t **out, size_t *err_off);

/* ---- fault injection (tests) -------------------------------------------- */

typedef enum ig__cf_op {
	IG__CF_WRITE,      /* write(2) of root.tmp */
	IG__CF_FDATASYNC,  /* fdatasync(2) of root.tmp */
	IG__CF_RENAME,     /* rename(2) root.tmp -> root */
	IG__CF_DIRSYNC,    /* fsync(2) of the directory */
	IG__CF_NOPS
} ig__cf_op_t;

/** Makes the nth call (1-based, counted from now) of op in ig__root_write
 *  fail with neg_errno instead of running; nth 0 disarms op. Process-wide
 *  and not thread-safe: for tests that write one root at a time. */
void ig__config_fault(ig__cf_op_t op, unsigned nth, int neg_errno);

#endif
