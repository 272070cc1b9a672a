/* Internal to storage/: the byte layout of a packed cell block
 * (docs/formats.md, "Packed cell block") and big-endian field access.
 * The builder and the reader both use these names, so the layout is
 * written down once. */
#ifndef INGOT_STORAGE_PACKED_INT_H
#define INGOT_STORAGE_PACKED_INT_H

#include <stdint.h>
#include <string.h>

/* "IGPC": ingot packed cells. */
#define IG__PK_MAGIC 0x49475043u

/* Header fields (offsets from the block's first byte). */
#define IG__PK_H_MAGIC 0     /* 4: IG__PK_MAGIC */
#define IG__PK_H_VERSION 4   /* 1: IG_PACKED_VERSION */
#define IG__PK_H_FLAGS 5     /* 1: IG_PACKED_SORTED or 0 */
#define IG__PK_H_RESERVED 6  /* 2: zero */
#define IG__PK_H_COUNT 8     /* 4: cells */
#define IG__PK_H_LENGTH 12   /* 4: block length, header to trailer */

/* Entry fields (offsets from the entry's first byte). */
#define IG__PK_E_TIMESTAMP 0   /* 8: int64, two's complement */
#define IG__PK_E_ROW_OFF 8     /* 4: row offset in the pool */
#define IG__PK_E_COL_OFF 12    /* 4: column offset in the pool */
#define IG__PK_E_VAL_OFF 16    /* 4: value offset in the pool (0 if empty) */
#define IG__PK_E_VAL_LEN 20    /* 4: value length */
#define IG__PK_E_ROW_LEN 24    /* 2: row length */
#define IG__PK_E_COL_LEN 26    /* 2: column length */
#define IG__PK_E_KIND 28       /* 1: ig_cell_kind_t */
#define IG__PK_E_RESERVED 29   /* 3: zero */

#define IG__PK_FLAGS_KNOWN IG_PACKED_SORTED

/* Big-endian fields at any alignment: memcpy plus a byte swap on a
 * little-endian host, which compilers make one load or store and a bswap
 * (the byte-by-byte form was not merged for stores). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define IG__BE16(v) __builtin_bswap16(v)
#define IG__BE32(v) __builtin_bswap32(v)
#else
#define IG__BE16(v) (v)
#define IG__BE32(v) (v)
#endif

static inline uint16_t ig__ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof v);
	return IG__BE16(v);
}

static inline uint32_t ig__ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return IG__BE32(v);
}

static inline uint64_t ig__ld64(const uint8_t *p)
{
	return (uint64_t)ig__ld32(p) << 32 | ig__ld32(p + 4);
}

static inline void ig__st16(uint8_t *p, uint16_t v)
{
	v = IG__BE16(v);
	memcpy(p, &v, sizeof v);
}

static inline void ig__st32(uint8_t *p, uint32_t v)
{
	v = IG__BE32(v);
	memcpy(p, &v, sizeof v);
}

static inline void ig__st64(uint8_t *p, uint64_t v)
{
	ig__st32(p, (uint32_t)(v >> 32));
	ig__st32(p + 4, (uint32_t)v);
}

/* int64 <-> uint64 by value, without relying on implementation-defined
 * conversion of out-of-range values to a signed type. */
static inline int64_t ig__u2i64(uint64_t v)
{
	int64_t r;
	memcpy(&r, &v, sizeof r);
	return r;
}

static inline uint64_t ig__i2u64(int64_t v)
{
	return (uint64_t)v;
}

/** ig_packed_open without its CRC check, for a block whose bytes another
 *  checksum already covered (a disk block's frame): every structural
 *  check still runs, so crafted bytes are still refused. */
int ig__packed_open_checked(const void *buf, size_t len, ig_packed_t *out, size_t *err_offset);

/** ig__packed_open_checked for a block whose entries were checked as it was
 *  built from untrusted bytes (ig__columns_decode checks each entry and the
 *  key order as it rebuilds a block): only the header is checked here. */
int ig__packed_open_entries_checked(const void *buf, size_t len, ig_packed_t *out,
				    size_t *err_offset);

#endif
