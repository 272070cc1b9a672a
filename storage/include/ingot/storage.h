/* ingot storage: the public API of the tablet store's data layer
 * (libingot-storage): cells and their order, the packed cell block format,
 * and table schemas with locality groups.
 *
 * The library is synchronous and has no threads of its own; it does not
 * link the runtime (it shares only <ingot/error.h>). Functions are safe to
 * call from any thread on distinct objects; a finished packed block, an
 * opened ig_packed_t and a schema are immutable and may be read from many
 * threads at once.
 *
 * Errors: 0 on success or a negative IG_E... code (<ingot/error.h>).
 * Out-parameters are written only on success; diagnostics (an error offset,
 * a cell index, a reason text) come last and are written only on failure.
 * Formats are described byte by byte in docs/formats.md.
 */
#ifndef INGOT_STORAGE_H
#define INGOT_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cells ------------------------------------------------------------ */

/* Limits every cell obeys, wherever it lives. The row and column limits are
 * the widths of the packed format's length fields; the value limit keeps a
 * single cell far below a block's 4 GiB ceiling. */
#define IG_ROW_MAX 65535u            /* row bytes: 1 .. IG_ROW_MAX */
#define IG_COLUMN_MAX 65535u         /* column bytes, "family:qualifier" */
#define IG_FAMILY_MAX 255u           /* family bytes: 1 .. IG_FAMILY_MAX */
#define IG_VALUE_MAX (64u << 20)     /* value bytes: 0 .. 64 MiB */

/** What a cell does: set a value, or erase the cell with the same key. */
typedef enum ig_cell_kind {
	IG_CELL_SET = 0,
	IG_CELL_ERASURE = 1,
} ig_cell_kind_t;

/** A cell's key: (row, column, timestamp). The bytes are borrowed: the key
 *  is a view and never owns them.
 *
 *  Timestamps are int64; any value is allowed. By convention (and for a
 *  locality group's max-age purge policy) they are microseconds since the
 *  Unix epoch. */
typedef struct ig_cell_key {
	const void *row;      /* row_len bytes, compared bytewise */
	const void *column;   /* column_len bytes: family ':' qualifier */
	uint32_t row_len;     /* 1 .. IG_ROW_MAX */
	uint32_t column_len;  /* 2 .. IG_COLUMN_MAX */
	int64_t timestamp;    /* newer (larger) sorts first */
} ig_cell_key_t;

/** A cell: a key and either a value (IG_CELL_SET) or nothing
 *  (IG_CELL_ERASURE, value_len 0). All bytes are borrowed. */
typedef struct ig_cell {
	ig_cell_key_t key;
	const void *value;    /* value_len bytes; may be NULL when value_len is 0 */
	uint32_t value_len;   /* 0 .. IG_VALUE_MAX; 0 for an erasure */
	ig_cell_kind_t kind;
} ig_cell_t;

/** Compares two keys in the store's order: row ascending (bytewise, a
 *  prefix before any longer row), then column ascending (bytewise), then
 *  timestamp DESCENDING (newest first). Returns <0, 0 or >0 like memcmp.
 *  Never fails; the keys need not be valid (lengths are trusted). */
int ig_cell_key_cmp(const ig_cell_key_t *a, const ig_cell_key_t *b);

/** Compares two cells: by key (ig_cell_key_cmp), then, for equal keys, an
 *  erasure before a set, so a reader meets the erasure first and can hide
 *  the set it covers without looking ahead. Values are not compared: two
 *  sets with equal keys compare equal (a sorted block never holds both). */
int ig_cell_cmp(const ig_cell_t *a, const ig_cell_t *b);

/** Checks that a cell obeys the limits above: a row of 1..IG_ROW_MAX bytes;
 *  a column of at most IG_COLUMN_MAX bytes holding a valid family
 *  (ig_family_valid) then ':' then any qualifier bytes (possibly none); a
 *  value of at most IG_VALUE_MAX bytes; a kind that is IG_CELL_SET or
 *  IG_CELL_ERASURE; no value bytes on an erasure; no NULL pointer with a
 *  non-zero length. Returns 0 or IG_EINVAL. */
int ig_cell_check(const ig_cell_t *cell);

/** Says whether name[0..len) is a valid column family name: 1 to
 *  IG_FAMILY_MAX bytes, each printable ASCII (0x21..0x7e) other than ':'.
 *  The same rule holds for families in schemas and in cells. */
bool ig_family_valid(const void *name, size_t len);

/** Returns the length of the family part of a column (the bytes before its
 *  first ':'), or 0 if the column has no ':' or its family is not valid
 *  (ig_family_valid). */
uint32_t ig_column_family_len(const void *column, uint32_t column_len);

/** CRC32C (Castagnoli, the iSCSI polynomial; check value of "123456789" is
 *  0xe3069283) of len bytes, continuing from crc (pass 0 to start).
 *  Uses the CPU's crc32 instruction when it has one. */
uint32_t ig_crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- packed cell blocks ----------------------------------------------- */

/* A packed cell block is a batch of cells in one checksummed buffer:
 * a 16-byte header, one fixed-width 32-byte entry per cell, a string pool
 * holding the rows, columns and values the entries point at, and a CRC32C
 * trailer (docs/formats.md, "Packed cell block"). Mutations travel as
 * packed blocks; a block may declare its cells sorted (strictly ascending
 * keys), and then a reader can binary-search it without decoding it. */
#define IG_PACKED_VERSION 1
#define IG_PACKED_HEADER 16u
#define IG_PACKED_ENTRY 32u
#define IG_PACKED_TRAILER 4u
#define IG_PACKED_OVERHEAD (IG_PACKED_HEADER + IG_PACKED_TRAILER)
#define IG_PACKED_MAX ((size_t)UINT32_MAX)  /* largest block, in bytes */

/** Builder and block flag: cells are in strictly ascending key order (so
 *  every key is unique). */
#define IG_PACKED_SORTED 1u

/** Builds one block in place in a caller's buffer. Embed it anywhere; its
 *  fields are private. It never allocates. */
typedef struct ig_packed_builder {
	uint8_t *buf;          /* the caller's buffer; borrowed */
	size_t cap;            /* usable bytes: min(buffer size, IG_PACKED_MAX) */
	size_t pool_lo;        /* the pool grows down from cap - trailer to here */
	uint32_t count;        /* entries written */
	uint32_t flags;        /* IG_PACKED_SORTED or 0 */
	bool finished;         /* finish() ran: no more appends */
	ig_cell_key_t last;    /* previous key, its bytes in the pool */
} ig_packed_builder_t;

/** Returns the most bytes one cell adds to a block: its entry plus its row,
 *  column and value bytes (less when the builder shares a row or column
 *  with the previous cell). Does not check the cell. */
size_t ig_packed_cell_size(const ig_cell_t *cell);

/** Computes the exact length of the block ig_packed_encode (or a builder
 *  fed the same cells) writes for cells[0..n). Returns IG_EINVAL if a cell
 *  fails ig_cell_check, IG_ERANGE if the block would pass IG_PACKED_MAX or
 *  hold more than UINT32_MAX cells. */
int ig_packed_size(const ig_cell_t *cells, size_t n, size_t *out_len);

/** Starts a block in buf[0..cap). flags is 0 or IG_PACKED_SORTED. The
 *  buffer is borrowed until finish (or until the builder is abandoned,
 *  which is always allowed). Returns IG_EINVAL for unknown flags, a NULL
 *  buffer, or cap < IG_PACKED_OVERHEAD. */
int ig_packed_builder_init(ig_packed_builder_t *b, void *buf, size_t cap, unsigned flags);

/** Appends a copy of one cell's bytes (the cell itself is not retained;
 *  its bytes must not lie inside the builder's buffer).
 *  Returns IG_EINVAL if the cell fails ig_cell_check or, in a sorted
 *  builder, if its key is not strictly greater than the previous one;
 *  IG_EFULL if it does not fit in the buffer (or the block would pass
 *  UINT32_MAX cells); IG_ESTATE after finish. On any error the builder is
 *  unchanged and can still append other cells or finish. */
int ig_packed_builder_append(ig_packed_builder_t *b, const ig_cell_t *cell);

/** Returns the cells appended so far. */
uint32_t ig_packed_builder_count(const ig_packed_builder_t *b);

/** Returns the length finish would give now. */
size_t ig_packed_builder_size(const ig_packed_builder_t *b);

/** Completes the block: buf[0..*out_len) is then a valid block that
 *  ig_packed_open accepts, and the rest of the buffer holds garbage. The
 *  bytes depend only on the cells appended and the flags, never on the
 *  buffer's size. Returns IG_ESTATE if already finished. */
int ig_packed_builder_finish(ig_packed_builder_t *b, size_t *out_len);

/** Encodes cells[0..n) into buf[0..cap) in one call (init, append each,
 *  finish). Returns the builder's errors; on IG_EFULL, ig_packed_size gives
 *  the length needed. Nothing useful is left in buf on failure. */
int ig_packed_encode(const ig_cell_t *cells, size_t n, unsigned flags, void *buf,
		     size_t cap, size_t *out_len);

/** A validated, read-only view of a block. Embed it anywhere; its fields
 *  are private. It borrows the block's bytes: they must stay unchanged for
 *  as long as the view and the cells read from it are used. */
typedef struct ig_packed {
	const uint8_t *base;     /* the block */
	const uint8_t *pool;     /* its string pool */
	uint32_t len;            /* block length */
	uint32_t count;          /* cells */
	uint32_t pool_len;       /* pool bytes */
	uint32_t flags;          /* block flags */
} ig_packed_t;

/** Validates buf[0..len) as one packed block and opens a view of it.
 *  The input is untrusted: any bytes are safe, and nothing is read outside
 *  them. Everything is checked before success: the magic, version, flags
 *  and reserved bytes; the length field equals len; the cell count fits;
 *  the checksum; each entry (offsets and lengths inside the pool, lengths
 *  within the cell limits, a known kind, no value on an erasure, a valid
 *  family, reserved bytes zero); and, for a sorted block, strictly
 *  ascending keys. After success every cell read from the view passes
 *  ig_cell_check.
 *
 *  Returns 0 and fills *out, or IG_ECORRUPT and, if err_offset is not NULL,
 *  sets *err_offset to the offset of the first byte found wrong (the
 *  field or string at fault; for a truncated block, len; for trailing
 *  bytes, the block's declared end). docs/formats.md lists every case.
 *  Returns IG_EINVAL if buf is NULL with len > 0 or out is NULL. */
int ig_packed_open(const void *buf, size_t len, ig_packed_t *out, size_t *err_offset);

/** Returns the number of cells in an opened block. */
uint32_t ig_packed_count(const ig_packed_t *p);

/** Says whether an opened block declares (and was checked to have)
 *  strictly ascending keys. */
bool ig_packed_is_sorted(const ig_packed_t *p);

/** Reads cell i of an opened block into *out; its pointers point into the
 *  block's bytes (no copy). Returns IG_ERANGE if i >= count. */
int ig_packed_cell(const ig_packed_t *p, uint32_t i, ig_cell_t *out);

/** Binary-searches a sorted block for the first cell whose key is >= key
 *  (ig_cell_key_cmp), reading only the entries and strings it compares.
 *  *index is count when every key is smaller. Returns IG_ESTATE if the
 *  block is not sorted. */
int ig_packed_seek(const ig_packed_t *p, const ig_cell_key_t *key, uint32_t *index);

/* ---- schemas ---------------------------------------------------------- */

/* A table's schema is a list of locality groups. Each group stores a set of
 * column families together (its own fragments and files) with its own
 * compression, block size, memory residence and purge policy. At most one
 * group is the wildcard group: it holds every family no other group names.
 * A mutation whose family maps to no group is rejected. */

#define IG_GROUPS_MAX 256u                 /* groups in one schema */
#define IG_GROUP_NAME_MAX 64u              /* group name bytes */
#define IG_BLOCK_SIZE_MIN 512u
#define IG_BLOCK_SIZE_MAX (16u << 20)
#define IG_BLOCK_SIZE_DEFAULT (64u << 10)  /* used when block_size is 0 */
#define IG_ZSTD_LEVEL_MIN 1
#define IG_ZSTD_LEVEL_MAX 22
/* Largest max_age: its value in microseconds still fits an int64. */
#define IG_MAX_AGE_MAX (INT64_MAX / 1000000)

typedef enum ig_compression {
	IG_COMPRESSION_NONE = 0,
	IG_COMPRESSION_ZSTD = 1,
} ig_compression_t;

/** One locality group, as the caller describes it. */
typedef struct ig_group_config {
	const char *name;               /* 1..IG_GROUP_NAME_MAX of [A-Za-z0-9_-], unique */
	const char *const *families;    /* nfamilies family names (ig_family_valid) */
	size_t nfamilies;               /* >= 1 unless wildcard */
	bool wildcard;                  /* takes every family no other group names */
	ig_compression_t compression;
	int level;                      /* zstd: 1..22; none: 0 */
	uint32_t block_size;            /* cell bytes per disk block (row, column, timestamp,
					 * value), IG_BLOCK_SIZE_MIN..MAX; 0 = default */
	bool in_memory;                 /* keep the group's fragments in memory */
	uint32_t max_history;           /* keep this many newest versions; 0 = all */
	int64_t max_age;                /* drop versions older than this many seconds; 0 = never */
} ig_group_config_t;

/** A schema as the caller describes it: 1..IG_GROUPS_MAX groups. */
typedef struct ig_schema_config {
	const ig_group_config_t *groups;
	size_t ngroups;
} ig_schema_config_t;

/** A validated schema: immutable and reference-counted (opaque). */
typedef struct ig_schema ig_schema_t;

/** Validates a schema description without building it. On IG_EINVAL, if why
 *  is not NULL, writes a NUL-terminated reason (cut to why_len bytes) that
 *  names the offending group and family, e.g.
 *  "group 'hot': zstd level 23 is outside 1..22". Returns 0, IG_EINVAL, or
 *  IG_ENOMEM (it sorts the family names in a temporary array). */
int ig_schema_validate(const ig_schema_config_t *cfg, char *why, size_t why_len);

/** Validates cfg (as ig_schema_validate) and builds a schema holding its
 *  own copy of every name, so cfg may be freed at once. block_size 0 is
 *  stored as IG_BLOCK_SIZE_DEFAULT. Ownership: *out carries one reference;
 *  release it with ig_schema_unref. Returns 0, IG_EINVAL (with why filled)
 *  or IG_ENOMEM. */
int ig_schema_create(const ig_schema_config_t *cfg, ig_schema_t **out, char *why,
		     size_t why_len);

/** Takes another reference to s and returns s. Thread-safe. */
ig_schema_t *ig_schema_ref(ig_schema_t *s);

/** Drops a reference; the last one frees the schema. NULL is ignored.
 *  Thread-safe. */
void ig_schema_unref(ig_schema_t *s);

/** Returns the number of groups (in the order the config gave them). */
size_t ig_schema_group_count(const ig_schema_t *s);

/** Returns group i as stored (names owned by the schema, block_size
 *  resolved), valid while a reference is held; NULL if i is out of range. */
const ig_group_config_t *ig_schema_group(const ig_schema_t *s, size_t i);

/** Maps a column family (the bytes before a column's ':') to the index of
 *  its locality group: the group naming it, else the wildcard group.
 *  Returns IG_ENOTFOUND if neither exists. */
int ig_schema_group_of(const ig_schema_t *s, const void *family, size_t family_len,
		       size_t *group);

/** Checks a mutation against the schema: every cell's family must map to a
 *  group (ig_schema_group_of). Returns 0, or IG_EINVAL with *bad_cell (if
 *  not NULL) set to the index of the first offending cell and why (if not
 *  NULL) filled, e.g. "cell 3: column family 'tmp' is in no locality group
 *  of the schema". */
int ig_schema_check_packed(const ig_schema_t *s, const ig_packed_t *p, uint32_t *bad_cell,
			   char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
