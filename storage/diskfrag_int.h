/* Internal to storage/: disk fragments, the immutable sorted files a
 * locality group's cells end up in (docs/formats.md, "Disk fragment"):
 * the byte layout, the writer (storage/diskfrag.c) and the reader
 * (storage/diskfrag_read.c).
 *
 * A file is: data blocks (each a sorted packed cell block, compressed or
 * not, framed with its raw length and its own CRC32C), a block index (the
 * first key, offset, size and cell count of every block, and the file's
 * last key), a bloom filter on rows, and an 80-byte footer (magic, version,
 * where the index and the bloom filter are, counts, timestamps, the
 * index's CRC32C and its own).
 *
 * Errors name the file and the place: IG_ECORRUPT comes with a text like
 * "fragment 'x.igf': block 7 at offset 458752: checksum mismatch". A block
 * whose checksum fails is an error for the caller, never skipped.
 */
#ifndef INGOT_STORAGE_DISKFRAG_INT_H
#define INGOT_STORAGE_DISKFRAG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/storage.h>

/* ---- layout (big-endian, like every format in docs/formats.md) ---------- */

#define IG__DF_VERSION 1
#define IG__DF_MAGIC "IGDF"

/* Block frame: the stored bytes, then this trailer. */
#define IG__DF_BT_RAW_LEN 0    /* 4: length of the packed block once decompressed */
#define IG__DF_BT_CODEC 4      /* 1: 0 stored raw, 1 zstd, 2 zstd of columnar coding */
#define IG__DF_BT_RESERVED 5   /* 3: zero */
#define IG__DF_BT_CRC 8        /* 4: CRC32C of the stored bytes and trailer bytes 0..7 */
#define IG__DF_BLOCK_TRAILER 12u

#define IG__DF_CODEC_RAW 0
#define IG__DF_CODEC_ZSTD 1
#define IG__DF_CODEC_ZSTD_COLUMNS 2

/* Index entry: fixed part, then the first cell's row and column bytes. */
#define IG__DF_IE_OFFSET 0     /* 8: block frame offset in the file */
#define IG__DF_IE_SIZE 8       /* 4: block frame size, trailer included */
#define IG__DF_IE_CELLS 12     /* 4: cells in the block, >= 1 */
#define IG__DF_IE_TS 16        /* 8: first cell's timestamp */
#define IG__DF_IE_ROW_LEN 24   /* 2 */
#define IG__DF_IE_COL_LEN 26   /* 2 */
#define IG__DF_IE_FIXED 28u
/* The last key after the entries: timestamp (8), row length (2), column
 * length (2), row, column. */
#define IG__DF_LAST_FIXED 12u

/* Footer: the file's last 80 bytes. */
#define IG__DF_F_MAGIC 0         /* 4: "IGDF" */
#define IG__DF_F_VERSION 4       /* 2: IG__DF_VERSION */
#define IG__DF_F_LENGTH 6        /* 2: 80 */
#define IG__DF_F_INDEX_OFF 8     /* 8 */
#define IG__DF_F_INDEX_SIZE 16   /* 8 */
#define IG__DF_F_BLOOM_OFF 24    /* 8 */
#define IG__DF_F_BLOOM_SIZE 32   /* 8 */
#define IG__DF_F_CELLS 40        /* 8 */
#define IG__DF_F_MIN_TS 48       /* 8 */
#define IG__DF_F_MAX_TS 56       /* 8 */
#define IG__DF_F_BLOCKS 64       /* 4 */
#define IG__DF_F_INDEX_CRC 68    /* 4: CRC32C of the index bytes */
#define IG__DF_F_COMPRESSION 72  /* 1: ig_compression_t the writer was given */
#define IG__DF_F_LEVEL 73        /* 1: its zstd level, 0 for none */
#define IG__DF_F_RESERVED 74     /* 2: zero */
#define IG__DF_F_CRC 76          /* 4: CRC32C of footer bytes 0..75 */
#define IG__DF_FOOTER 80u

/* A block's cells fill at most block_size bytes of their own data
 * (row, column, timestamp, value); the packed block that holds them is at
 * most this many times larger (its 32-byte entries). */
#define IG__DF_RAW_PER_BLOCK 4u

/* The largest packed block a writer makes: a full block plus the one cell
 * that overflowed it. A reader refuses larger raw lengths before it
 * allocates, so a forged length costs nothing. */
#define IG__DF_RAW_MAX                                                             \
	((uint64_t)IG_BLOCK_SIZE_MAX * IG__DF_RAW_PER_BLOCK + IG_PACKED_OVERHEAD +         \
	 IG_PACKED_ENTRY + IG_ROW_MAX + IG_COLUMN_MAX + IG_VALUE_MAX)

/* ---- writing ----------------------------------------------------------- */

/** Where the writer pulls its cells from: next() returns 1 and fills *out,
 *  0 at the end, or a negative error that stops the write. The cell's
 *  bytes need stay valid only until the following call. */
typedef struct ig__cell_source {
	int (*next)(void *ctx, ig_cell_t *out);
	void *ctx;
} ig__cell_source_t;

/** A locality group's settings, as the writer uses them. */
typedef struct ig__diskfrag_opts {
	ig_compression_t compression;  /* none or zstd */
	int level;                     /* zstd 1..22; 0 for none */
	uint32_t block_size;           /* cell bytes per block; 0 = IG_BLOCK_SIZE_DEFAULT */
	unsigned bloom_bits_per_key;   /* 0 = 10 */
} ig__diskfrag_opts_t;

/** What a fragment holds (the writer's result, or the reader's footer). */
typedef struct ig__diskfrag_info {
	uint64_t cells;
	uint64_t rows;         /* distinct rows (writer only; 0 from a reader) */
	uint32_t blocks;
	uint64_t raw_bytes;    /* packed block bytes before compression (writer only) */
	uint64_t data_bytes;   /* block frames as stored */
	uint64_t index_bytes;
	uint64_t bloom_bytes;
	uint64_t file_bytes;
	int64_t min_ts;        /* 0 when empty */
	int64_t max_ts;
	ig_compression_t compression;
	int level;
} ig__diskfrag_info_t;

/** Writes the cells of src (strictly ascending keys, each passing
 *  ig_cell_check) as a fragment at path: into "<path>.tmp", then
 *  fdatasync, rename over path, fsync of the directory, so path holds
 *  either nothing new or the whole file. An empty source gives a valid
 *  empty fragment. If info is not NULL it is filled on success.
 *  Returns 0; IG_EINVAL for bad options or a cell out of order or invalid
 *  (why names the cell); the source's own error; IG_ENOMEM; or -errno from
 *  a system call (why names it). On failure the temporary file is removed
 *  and path is untouched. why (if not NULL) is written only on failure. */
int ig__diskfrag_write(const char *path, const ig__diskfrag_opts_t *opts,
		       const ig__cell_source_t *src, ig__diskfrag_info_t *info, char *why,
		       size_t why_len);

/* ---- reading ----------------------------------------------------------- */

/** An open fragment: immutable, reference-counted, readable from many
 *  threads at once (each with its own iterator). */
typedef struct ig__diskfrag ig__diskfrag_t;

/** Opens the fragment at path and validates its footer, index and bloom
 *  filter (not the data blocks: each is checked when read). Ownership: *out
 *  carries one reference, released with ig__diskfrag_unref; the file stays
 *  open until the last one. Returns 0; IG_ECORRUPT with why naming the file
 *  and the offset at fault; -errno (why names the call); IG_ENOMEM. */
int ig__diskfrag_open(const char *path, ig__diskfrag_t **out, char *why, size_t why_len);

/** The same over bytes in memory (buf[0..len) stands for the file; name is
 *  used in error texts). buf is borrowed and must outlive the fragment. */
int ig__diskfrag_open_buffer(const char *name, const void *buf, size_t len,
			     ig__diskfrag_t **out, char *why, size_t why_len);

/** Takes another reference and returns df. Thread-safe. */
ig__diskfrag_t *ig__diskfrag_ref(ig__diskfrag_t *df);

/** Drops a reference; the last closes the file and frees everything. NULL
 *  is ignored. Thread-safe. */
void ig__diskfrag_unref(ig__diskfrag_t *df);

/** Fills *out from the footer and index. */
void ig__diskfrag_info(const ig__diskfrag_t *df, ig__diskfrag_info_t *out);

/** The first and last keys of the fragment (bytes owned by df). Returns
 *  IG_ENOTFOUND for an empty fragment. */
int ig__diskfrag_bounds(const ig__diskfrag_t *df, ig_cell_key_t *first, ig_cell_key_t *last);

/** The path the fragment was opened from (or the buffer's name). */
const char *ig__diskfrag_name(const ig__diskfrag_t *df);

/** What of a fragment lies in rows [lo, hi), estimated from the block
 *  index (whole blocks that may hold such rows): the Serializer sizes a
 *  tablet that shares files with its split siblings, and picks its median
 *  row, with it. */
typedef struct ig__diskfrag_clip {
	uint64_t bytes;          /* block frames */
	uint64_t cells;
	uint32_t blocks;
	const void *median;      /* first row of the middle block (bytes owned by
				  * the fragment), NULL under 2 blocks */
	uint32_t median_len;
} ig__diskfrag_clip_t;

void ig__diskfrag_clip_stats(const ig__diskfrag_t *df, const void *lo, uint32_t lo_len,
			     const void *hi, uint32_t hi_len, ig__diskfrag_clip_t *out);

/** Asks the bloom filter: false means no cell of the row is in the file. */
bool ig__diskfrag_may_contain(const ig__diskfrag_t *df, const void *row, size_t row_len);

/** An ordered cursor over one fragment. Embed it anywhere; its fields are
 *  private. One thread at a time. */
typedef struct ig__diskfrag_iter {
	ig__diskfrag_t *df;      /* a reference, dropped by fini */
	uint32_t block;          /* current block */
	uint32_t pos;            /* next cell in it */
	bool loaded;             /* view holds block `block` */
	int err;                 /* sticky: a failed read stops the cursor */
	ig_packed_t view;
	uint8_t *frame;          /* pread buffer (file mode) */
	size_t frame_cap;
	uint8_t *raw;            /* decompression buffer */
	size_t raw_cap;
	uint8_t *coded;          /* codec 2: the columnar coding, before decoding */
	size_t coded_cap;
	char why[256];           /* the error text, when err != 0 */
} ig__diskfrag_iter_t;

/** Starts a cursor before the first cell; takes a reference on df. */
void ig__diskfrag_iter_init(ig__diskfrag_iter_t *it, ig__diskfrag_t *df);

/** Frees the cursor's buffers and drops its reference. */
void ig__diskfrag_iter_fini(ig__diskfrag_iter_t *it);

/** Positions the cursor before the first cell whose key is >= key, through
 *  the index and a binary search in one block. Returns 0, or the error of
 *  reading that block (IG_ECORRUPT, -errno, IG_ENOMEM; the text is
 *  ig__diskfrag_iter_error). */
int ig__diskfrag_iter_seek(ig__diskfrag_iter_t *it, const ig_cell_key_t *key);

/** Positions the cursor before the first cell of row (its first column,
 *  newest version). Errors as ig__diskfrag_iter_seek. */
int ig__diskfrag_iter_seek_row(ig__diskfrag_iter_t *it, const void *row, uint32_t row_len);

/** Reads the next cell and advances. Returns 1 with a cell, 0 at the end,
 *  or a negative error (a block failed its checksum or checks: IG_ECORRUPT
 *  naming the file and block; -errno; IG_ENOMEM), which sticks: later calls
 *  return it again. The cell's bytes are valid until the next call on the
 *  cursor (it may move to another block) or fini. */
int ig__diskfrag_iter_next(ig__diskfrag_iter_t *it, ig_cell_t *out);

/** The text of the cursor's error ("" if none). */
const char *ig__diskfrag_iter_error(const ig__diskfrag_iter_t *it);

#endif
