/* Disk fragments, reading side: open with validation of the footer, index
 * and bloom filter; cursors that read, check and decompress one block at a
 * time; seek through the index; the bloom filter (storage/diskfrag_int.h;
 * docs/formats.md, "Disk fragment").
 *
 * The file is untrusted input: every length and offset is checked against
 * the file size in 64-bit arithmetic before it is used or allocated. Open
 * checks what is read once (footer, index, bloom filter); each data block
 * is checked when a cursor reads it: its CRC32C, its codec and raw length,
 * the packed block itself (ig_packed_open), its cell count and its first
 * and last keys against the index. Any failure is an error naming the file
 * and the block; a block is never skipped.
 *
 * Reads use pread, so cursors on many threads share one descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include <ingot/storage.h>

#include "block_columns_int.h"
#include "bloom_int.h"
#include "cell_int.h"
#include "diskfrag_int.h"
#include "packed_int.h"

struct block_ref {
	uint64_t off;            /* frame offset */
	uint32_t size;           /* frame size */
	uint32_t cells;
	ig_cell_key_t first;     /* bytes in the index buffer */
};

struct ig__diskfrag {
	atomic_uint refs;
	char *name;              /* path or buffer name, for error texts */
	int fd;                  /* -1 for a buffer */
	const uint8_t *mem;      /* the buffer, or NULL */
	uint64_t size;           /* file bytes */
	uint8_t *index;          /* index bytes (owned) */
	uint8_t *bloom_bytes;    /* bloom section (owned; the filter views it) */
	ig__bloom_t bloom;
	struct block_ref *blocks;
	uint32_t nblocks;
	ig_cell_key_t last;      /* bytes in the index buffer */
	ig__diskfrag_info_t info;
};

static int say(char *why, size_t why_len, const char *name, int rc, const char *fmt, ...)
{
	if (why != NULL && why_len > 0) {
		int n = snprintf(why, why_len, "fragment '%s': ", name);
		if (n >= 0 && (size_t)n < why_len) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(why + n, why_len - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return rc;
}

/* Reads len bytes at off: a pointer into the buffer, or pread into *scratch
 * (grown as needed). The caller has checked off + len <= size. */
static int fetch(const ig__diskfrag_t *df, uint64_t off, size_t len, uint8_t **scratch,
		 size_t *cap, const uint8_t **out)
{
	if (df->mem != NULL) {
		*out = df->mem + off;
		return 0;
	}
	if (len > *cap) {
		uint8_t *p = realloc(*scratch, len ? len : 1);
		if (p == NULL)
			return IG_ENOMEM;
		*scratch = p;
		*cap = len;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(df->fd, *scratch + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return IG_ECORRUPT;  /* the file shrank under us */
		done += (size_t)n;
	}
	*out = *scratch;
	return 0;
}

/* Reads a key (fixed part already parsed) from the index, checking it is a
 * valid cell key. Returns false if it is not. */
static bool valid_key(const ig_cell_key_t *k)
{
	return k->row_len >= 1 && k->column_len >= 2 &&
	       ig_column_family_len(k->column, k->column_len) != 0;
}

static void df_free(ig__diskfrag_t *df)
{
	if (df->fd >= 0)
		close(df->fd);
	ig__bloom_fini(&df->bloom);
	free(df->bloom_bytes);
	free(df->index);
	free(df->blocks);
	free(df->name);
	free(df);
}

/* Parses the index section (its CRC already checked). */
static int parse_index(ig__diskfrag_t *df, uint64_t index_off, uint64_t index_size,
		       char *why, size_t why_len)
{
	const uint8_t *p = df->index;
	uint64_t at = 0, expect_off = 0, cells = 0;
	const char *n = df->name;

	for (uint32_t i = 0; i < df->nblocks; i++) {
		struct block_ref *b = &df->blocks[i];
		uint64_t eoff = index_off + at;

		if (index_size - at < IG__DF_IE_FIXED)
			return say(why, why_len, n, IG_ECORRUPT,
				   "index entry %u at offset %llu: cut short", i,
				   (unsigned long long)eoff);
		const uint8_t *e = p + at;
		b->off = ig__ld64(e + IG__DF_IE_OFFSET);
		b->size = ig__ld32(e + IG__DF_IE_SIZE);
		b->cells = ig__ld32(e + IG__DF_IE_CELLS);
		b->first.timestamp = ig__u2i64(ig__ld64(e + IG__DF_IE_TS));
		b->first.row_len = ig__ld16(e + IG__DF_IE_ROW_LEN);
		b->first.column_len = ig__ld16(e + IG__DF_IE_COL_LEN);
		at += IG__DF_IE_FIXED;
		if (b->off != expect_off)
			return say(why, why_len, n, IG_ECORRUPT,
				   "index entry %u at offset %llu: block offset %llu, expected %llu",
				   i, (unsigned long long)eoff, (unsigned long long)b->off,
				   (unsigned long long)expect_off);
		if (b->size <= IG__DF_BLOCK_TRAILER || b->size > index_off - b->off)
			return say(why, why_len, n, IG_ECORRUPT,
				   "index entry %u at offset %llu: block size %u does not fit", i,
				   (unsigned long long)eoff, b->size);
		if (b->cells == 0)
			return say(why, why_len, n, IG_ECORRUPT,
				   "index entry %u at offset %llu: empty block", i,
				   (unsigned long long)eoff);
		if (index_size - at < (uint64_t)b->first.row_len + b->first.column_len)
			return say(why, why_len, n, IG_ECORRUPT,
				   "index entry %u at offset %llu: key cut short", i,
				   (unsigned long long)eoff);
		b->first.row = p + at;
		b->first.column = p + at + b->first.row_len;
		at += (uint64_t)b->first.row_len + b->first.column_len;
		if (!valid_key(&b->first))
			return say(why, why_len, n, IG_ECORRUPT,
				   "index entry %u at offset %llu: invalid key", i,
				   (unsigned long long)eoff);
		if (i > 0 && ig_cell_key_cmp(&df->blocks[i - 1].first, &b->first) >= 0)
			return say(why, why_len, n, IG_ECORRUPT,
				   "index entry %u at offset %llu: key not after the previous block's",
				   i, (unsigned long long)eoff);
		expect_off = b->off + b->size;
		cells += b->cells;
	}
	if (expect_off != index_off)
		return say(why, why_len, n, IG_ECORRUPT,
			   "index at offset %llu: blocks end at %llu", (unsigned long long)index_off,
			   (unsigned long long)expect_off);
	if (cells != df->info.cells)
		return say(why, why_len, n, IG_ECORRUPT,
			   "index at offset %llu: blocks hold %llu cells, footer says %llu",
			   (unsigned long long)index_off, (unsigned long long)cells,
			   (unsigned long long)df->info.cells);
	if (df->nblocks > 0) {
		uint64_t loff = index_off + at;
		if (index_size - at < IG__DF_LAST_FIXED)
			return say(why, why_len, n, IG_ECORRUPT, "last key at offset %llu: cut short",
				   (unsigned long long)loff);
		df->last.timestamp = ig__u2i64(ig__ld64(p + at));
		df->last.row_len = ig__ld16(p + at + 8);
		df->last.column_len = ig__ld16(p + at + 10);
		at += IG__DF_LAST_FIXED;
		if (index_size - at < (uint64_t)df->last.row_len + df->last.column_len)
			return say(why, why_len, n, IG_ECORRUPT, "last key at offset %llu: cut short",
				   (unsigned long long)loff);
		df->last.row = p + at;
		df->last.column = p + at + df->last.row_len;
		at += (uint64_t)df->last.row_len + df->last.column_len;
		if (!valid_key(&df->last) ||
		    ig_cell_key_cmp(&df->blocks[df->nblocks - 1].first, &df->last) > 0)
			return say(why, why_len, n, IG_ECORRUPT,
				   "last key at offset %llu: invalid or before the last block",
				   (unsigned long long)loff);
	}
	if (at != index_size)
		return say(why, why_len, n, IG_ECORRUPT, "index: bytes after the last key at %llu",
			   (unsigned long long)(index_off + at));
	return 0;
}

/* Everything after the descriptor or buffer is in place. */
static int df_validate(ig__diskfrag_t *df, char *why, size_t why_len)
{
	const char *n = df->name;
	uint8_t *scratch = NULL;
	size_t cap = 0;
	const uint8_t *f = NULL;
	int rc;

	if (df->size < IG__DF_FOOTER)
		return say(why, why_len, n, IG_ECORRUPT,
			   "%llu bytes, shorter than the %u-byte footer",
			   (unsigned long long)df->size, IG__DF_FOOTER);
	uint64_t foot = df->size - IG__DF_FOOTER;
	rc = fetch(df, foot, IG__DF_FOOTER, &scratch, &cap, &f);
	if (rc != 0) {
		free(scratch);
		return say(why, why_len, n, rc, "reading the footer at offset %llu: %s",
			   (unsigned long long)foot, ig_strerror(rc));
	}
	uint8_t footer[IG__DF_FOOTER];
	memcpy(footer, f, sizeof footer);
	free(scratch);
	f = footer;

	/* Magic and version before the checksum, so a file of another kind or
	 * a future version is named as such rather than as damaged. */
	if (memcmp(f + IG__DF_F_MAGIC, IG__DF_MAGIC, 4) != 0)
		return say(why, why_len, n, IG_ECORRUPT, "footer at offset %llu: bad magic",
			   (unsigned long long)foot);
	if (ig__ld16(f + IG__DF_F_VERSION) != IG__DF_VERSION)
		return say(why, why_len, n, IG_ECORRUPT,
			   "footer at offset %llu: unknown version %u", (unsigned long long)foot,
			   ig__ld16(f + IG__DF_F_VERSION));
	if (ig__ld32(f + IG__DF_F_CRC) != ig_crc32c(0, f, IG__DF_F_CRC))
		return say(why, why_len, n, IG_ECORRUPT,
			   "footer at offset %llu: checksum mismatch", (unsigned long long)foot);
	if (ig__ld16(f + IG__DF_F_LENGTH) != IG__DF_FOOTER || f[IG__DF_F_RESERVED] != 0 ||
	    f[IG__DF_F_RESERVED + 1] != 0 || f[IG__DF_F_COMPRESSION] > IG_COMPRESSION_ZSTD ||
	    f[IG__DF_F_LEVEL] > IG_ZSTD_LEVEL_MAX)
		return say(why, why_len, n, IG_ECORRUPT,
			   "footer at offset %llu: bad length, compression or reserved bytes",
			   (unsigned long long)foot);

	uint64_t index_off = ig__ld64(f + IG__DF_F_INDEX_OFF);
	uint64_t index_size = ig__ld64(f + IG__DF_F_INDEX_SIZE);
	uint64_t bloom_off = ig__ld64(f + IG__DF_F_BLOOM_OFF);
	uint64_t bloom_size = ig__ld64(f + IG__DF_F_BLOOM_SIZE);
	df->info.cells = ig__ld64(f + IG__DF_F_CELLS);
	df->info.min_ts = ig__u2i64(ig__ld64(f + IG__DF_F_MIN_TS));
	df->info.max_ts = ig__u2i64(ig__ld64(f + IG__DF_F_MAX_TS));
	df->nblocks = ig__ld32(f + IG__DF_F_BLOCKS);
	df->info.blocks = df->nblocks;
	df->info.compression = (ig_compression_t)f[IG__DF_F_COMPRESSION];
	df->info.level = f[IG__DF_F_LEVEL];

	/* Sections are back to back: blocks, index, bloom, footer. */
	if (index_off > foot || index_size > foot - index_off ||
	    bloom_off != index_off + index_size || bloom_size != foot - bloom_off)
		return say(why, why_len, n, IG_ECORRUPT,
			   "footer at offset %llu: sections do not tile the file "
			   "(index %llu+%llu, bloom %llu+%llu)",
			   (unsigned long long)foot, (unsigned long long)index_off,
			   (unsigned long long)index_size, (unsigned long long)bloom_off,
			   (unsigned long long)bloom_size);
	if ((df->nblocks == 0) != (df->info.cells == 0) ||
	    (df->nblocks == 0 && (index_off != 0 || index_size != 0)) ||
	    (uint64_t)df->nblocks * IG__DF_IE_FIXED > index_size ||
	    (df->info.cells > 0 && df->info.min_ts > df->info.max_ts))
		return say(why, why_len, n, IG_ECORRUPT,
			   "footer at offset %llu: counts disagree (%u blocks, %llu cells, "
			   "index %llu bytes)",
			   (unsigned long long)foot, df->nblocks,
			   (unsigned long long)df->info.cells, (unsigned long long)index_size);

	/* The index: its size is bounded by the file's, checked above. */
	const uint8_t *ib = NULL;
	df->index = malloc(index_size ? (size_t)index_size : 1);
	df->blocks = calloc(df->nblocks ? df->nblocks : 1, sizeof *df->blocks);
	if (df->index == NULL || df->blocks == NULL)
		return say(why, why_len, n, IG_ENOMEM, "out of memory");
	cap = (size_t)index_size;
	rc = fetch(df, index_off, (size_t)index_size, &df->index, &cap, &ib);
	if (rc != 0)
		return say(why, why_len, n, rc, "reading the index at offset %llu: %s",
			   (unsigned long long)index_off, ig_strerror(rc));
	if (ib != df->index)
		memcpy(df->index, ib, (size_t)index_size);
	if (ig_crc32c(0, df->index, (size_t)index_size) != ig__ld32(f + IG__DF_F_INDEX_CRC))
		return say(why, why_len, n, IG_ECORRUPT, "index at offset %llu: checksum mismatch",
			   (unsigned long long)index_off);
	if ((rc = parse_index(df, index_off, index_size, why, why_len)) != 0)
		return rc;

	/* The bloom filter. */
	const uint8_t *bl = NULL;
	df->bloom_bytes = malloc((size_t)bloom_size ? (size_t)bloom_size : 1);
	if (df->bloom_bytes == NULL)
		return say(why, why_len, n, IG_ENOMEM, "out of memory");
	cap = (size_t)bloom_size;
	rc = fetch(df, bloom_off, (size_t)bloom_size, &df->bloom_bytes, &cap, &bl);
	if (rc != 0)
		return say(why, why_len, n, rc, "reading the bloom filter at offset %llu: %s",
			   (unsigned long long)bloom_off, ig_strerror(rc));
	if (bl != df->bloom_bytes)
		memcpy(df->bloom_bytes, bl, (size_t)bloom_size);
	size_t boff = 0;
	if (ig__bloom_view(df->bloom_bytes, (size_t)bloom_size, &df->bloom, &boff) != 0)
		return say(why, why_len, n, IG_ECORRUPT, "bloom filter at offset %llu: bad field",
			   (unsigned long long)(bloom_off + boff));

	df->info.index_bytes = index_size;
	df->info.bloom_bytes = bloom_size;
	df->info.data_bytes = index_off;
	df->info.file_bytes = df->size;
	return 0;
}

static int df_new(const char *name, ig__diskfrag_t **out)
{
	ig__diskfrag_t *df = calloc(1, sizeof *df);

	if (df == NULL || (df->name = strdup(name)) == NULL) {
		free(df);
		return IG_ENOMEM;
	}
	atomic_init(&df->refs, 1);
	df->fd = -1;
	*out = df;
	return 0;
}

int ig__diskfrag_open(const char *path, ig__diskfrag_t **out, char *why, size_t why_len)
{
	ig__diskfrag_t *df;
	struct stat st;
	int rc;

	if (path == NULL || out == NULL)
		return IG_EINVAL;
	if ((rc = df_new(path, &df)) != 0)
		return say(why, why_len, path, rc, "out of memory");
	df->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (df->fd < 0 || fstat(df->fd, &st) != 0) {
		int e = errno;
		df_free(df);
		return say(why, why_len, path, -e, "open: %s", strerror(e));
	}
	df->size = (uint64_t)st.st_size;
	if ((rc = df_validate(df, why, why_len)) != 0) {
		df_free(df);
		return rc;
	}
	*out = df;
	return 0;
}

int ig__diskfrag_open_buffer(const char *name, const void *buf, size_t len,
			     ig__diskfrag_t **out, char *why, size_t why_len)
{
	ig__diskfrag_t *df;
	int rc;

	if (name == NULL || out == NULL || (buf == NULL && len > 0))
		return IG_EINVAL;
	if ((rc = df_new(name, &df)) != 0)
		return say(why, why_len, name, rc, "out of memory");
	/* A non-NULL pointer even for an empty buffer marks memory mode. */
	df->mem = buf != NULL ? buf : (const uint8_t *)"";
	df->size = len;
	if ((rc = df_validate(df, why, why_len)) != 0) {
		df_free(df);
		return rc;
	}
	*out = df;
	return 0;
}

ig__diskfrag_t *ig__diskfrag_ref(ig__diskfrag_t *df)
{
	atomic_fetch_add_explicit(&df->refs, 1, memory_order_relaxed);
	return df;
}

void ig__diskfrag_unref(ig__diskfrag_t *df)
{
	if (df != NULL && atomic_fetch_sub_explicit(&df->refs, 1, memory_order_acq_rel) == 1)
		df_free(df);
}

void ig__diskfrag_info(const ig__diskfrag_t *df, ig__diskfrag_info_t *out)
{
	*out = df->info;
}

int ig__diskfrag_bounds(const ig__diskfrag_t *df, ig_cell_key_t *first, ig_cell_key_t *last)
{
	if (df->nblocks == 0)
		return IG_ENOTFOUND;
	*first = df->blocks[0].first;
	*last = df->last;
	return 0;
}

bool ig__diskfrag_may_contain(const ig__diskfrag_t *df, const void *row, size_t row_len)
{
	/* The file's rows first: a chain of a sequential load's flushes (never
	 * merged, compact_policy.c) then costs one comparison per file. */
	return df->nblocks > 0 &&
	       ig__bytes_cmp(row, row_len, df->blocks[0].first.row, df->blocks[0].first.row_len) >= 0 &&
	       ig__bytes_cmp(row, row_len, df->last.row, df->last.row_len) <= 0 &&
	       ig__bloom_may_contain(&df->bloom, row, row_len);
}

/* ---- cursors ------------------------------------------------------------ */

static int iter_fail(ig__diskfrag_iter_t *it, int rc, uint32_t block, const char *fmt, ...)
{
	const struct block_ref *b = &it->df->blocks[block];
	int n = snprintf(it->why, sizeof it->why, "fragment '%s': block %u at offset %llu: ",
			 it->df->name, block, (unsigned long long)b->off);

	if (n >= 0 && (size_t)n < sizeof it->why) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(it->why + n, sizeof it->why - (size_t)n, fmt, ap);
		va_end(ap);
	}
	it->err = rc;
	it->loaded = false;
	return rc;
}


/* One zstd decompression context per thread, kept for the thread's life:
 * ZSTD_decompress would build (and free) one per block, a large share of
 * a point read's cost. */
static pthread_key_t dctx_key;
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;

static void dctx_free(void *d)
{
	ZSTD_freeDCtx(d);
}

static void dctx_key_init(void)
{
	(void)pthread_key_create(&dctx_key, dctx_free);
}

/* This thread's context, or NULL (then the caller decompresses without). */
static ZSTD_DCtx *thread_dctx(void)
{
	ZSTD_DCtx *d;

	(void)pthread_once(&dctx_once, dctx_key_init);
	d = pthread_getspecific(dctx_key);
	if (!d && (d = ZSTD_createDCtx()) && pthread_setspecific(dctx_key, d) != 0) {
		ZSTD_freeDCtx(d);
		d = NULL;
	}
	return d;
}

/* Grows an iterator buffer to n bytes. */
static int grow(uint8_t **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return 0;
	uint8_t *p = realloc(*buf, n);
	if (p == NULL)
		return IG_ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* Decompresses block i's zstd frame into it->raw; with columns, the frame
 * holds the block's columnar coding (block_columns_int.h), decoded on the
 * way. */
static int unzstd(ig__diskfrag_iter_t *it, uint32_t i, const uint8_t *frame,
		  size_t stored_len, uint32_t raw_len, bool columns)
{
	unsigned long long content = ZSTD_getFrameContentSize(frame, stored_len);
	if (raw_len > IG__DF_RAW_MAX || content > raw_len + IG__COLUMNS_SIZES ||
	    (!columns && content != raw_len))
		return iter_fail(it, IG_ECORRUPT, i, "raw length %u does not match the zstd frame",
				 raw_len);
	if (grow(&it->raw, &it->raw_cap, raw_len) != 0 ||
	    (columns && grow(&it->coded, &it->coded_cap, raw_len + IG__COLUMNS_SIZES) != 0))
		return iter_fail(it, IG_ENOMEM, i, "out of memory");
	uint8_t *dst = columns ? it->coded : it->raw;
	size_t want = (size_t)content;
	ZSTD_DCtx *dctx = thread_dctx();
	size_t got = dctx ? ZSTD_decompressDCtx(dctx, dst, want, frame, stored_len)
			  : ZSTD_decompress(dst, want, frame, stored_len);
	if (ZSTD_isError(got) || got != want)
		return iter_fail(it, IG_ECORRUPT, i, "zstd: %s",
				 ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short output");
	size_t at;
	if (columns && ig__columns_decode(dst, want, it->raw, raw_len, &at) != 0)
		return iter_fail(it, IG_ECORRUPT, i, "columnar coding bad at byte %zu", at);
	return 0;
}

/* Reads, checks and opens block i into it->view. */
static int load_block(ig__diskfrag_iter_t *it, uint32_t i)
{
	const ig__diskfrag_t *df = it->df;
	const struct block_ref *b = &df->blocks[i];
	const uint8_t *frame = NULL;
	int rc;

	it->loaded = false;
	rc = fetch(df, b->off, b->size, &it->frame, &it->frame_cap, &frame);
	if (rc != 0)
		return iter_fail(it, rc, i, "read failed: %s", ig_strerror(rc));

	size_t stored_len = b->size - IG__DF_BLOCK_TRAILER;
	const uint8_t *t = frame + stored_len;
	uint32_t crc = ig_crc32c(ig_crc32c(0, frame, stored_len), t, IG__DF_BT_CRC);
	if (crc != ig__ld32(t + IG__DF_BT_CRC))
		return iter_fail(it, IG_ECORRUPT, i, "checksum mismatch");
	uint32_t raw_len = ig__ld32(t + IG__DF_BT_RAW_LEN);
	uint8_t codec = t[IG__DF_BT_CODEC];
	if (t[IG__DF_BT_RESERVED] || t[IG__DF_BT_RESERVED + 1] || t[IG__DF_BT_RESERVED + 2])
		return iter_fail(it, IG_ECORRUPT, i, "reserved trailer bytes not zero");

	const uint8_t *packed;
	if (codec == IG__DF_CODEC_RAW) {
		if (raw_len != stored_len)
			return iter_fail(it, IG_ECORRUPT, i, "raw length %u, stored %zu", raw_len,
					 stored_len);
		packed = frame;
	} else if (codec == IG__DF_CODEC_ZSTD || codec == IG__DF_CODEC_ZSTD_COLUMNS) {
		rc = unzstd(it, i, frame, stored_len, raw_len, codec == IG__DF_CODEC_ZSTD_COLUMNS);
		if (rc != 0)
			return rc;
		packed = it->raw;
	} else {
		return iter_fail(it, IG_ECORRUPT, i, "unknown codec %u", codec);
	}

	size_t at = 0;
	/* The block's trailer CRC covered these bytes (compressed or not); a
	 * columnar block's entries were checked as it was decoded. */
	rc = codec == IG__DF_CODEC_ZSTD_COLUMNS
		     ? ig__packed_open_entries_checked(packed, raw_len, &it->view, &at)
		     : ig__packed_open_checked(packed, raw_len, &it->view, &at);
	if (rc != 0)
		return iter_fail(it, IG_ECORRUPT, i, "packed block bad at byte %zu", at);
	if (!ig_packed_is_sorted(&it->view) || ig_packed_count(&it->view) != b->cells)
		return iter_fail(it, IG_ECORRUPT, i, "block is not sorted or holds %u cells, "
				 "index says %u", ig_packed_count(&it->view), b->cells);

	/* The keys must lie where the index says, or seek would be wrong. */
	ig_cell_t c0, cn;
	ig_packed_cell(&it->view, 0, &c0);
	ig_packed_cell(&it->view, b->cells - 1, &cn);
	bool last_block = i + 1 == df->nblocks;
	const ig_cell_key_t *next = last_block ? &df->last : &df->blocks[i + 1].first;
	int end = ig_cell_key_cmp(&cn.key, next);
	if (ig_cell_key_cmp(&c0.key, &b->first) != 0 || (last_block ? end != 0 : end >= 0))
		return iter_fail(it, IG_ECORRUPT, i, "keys disagree with the index");
	it->block = i;
	it->pos = 0;
	it->loaded = true;
	return 0;
}

void ig__diskfrag_iter_init(ig__diskfrag_iter_t *it, ig__diskfrag_t *df)
{
	memset(it, 0, sizeof *it);
	it->df = ig__diskfrag_ref(df);
}

void ig__diskfrag_iter_fini(ig__diskfrag_iter_t *it)
{
	free(it->frame);
	free(it->raw);
	free(it->coded);
	ig__diskfrag_unref(it->df);
	memset(it, 0, sizeof *it);
}

int ig__diskfrag_iter_seek(ig__diskfrag_iter_t *it, const ig_cell_key_t *key)
{
	const ig__diskfrag_t *df = it->df;

	if (it->err != 0)
		return it->err;
	if (df->nblocks == 0)
		return 0;

	/* The last block whose first key is <= key holds the answer, or the
	 * answer is the next block's first cell. */
	uint32_t lo = 0, hi = df->nblocks;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (ig_cell_key_cmp(&df->blocks[mid].first, key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint32_t b = lo == 0 ? 0 : lo - 1;
	if (!it->loaded || it->block != b) {
		int rc = load_block(it, b);
		if (rc != 0)
			return rc;
	}
	uint32_t pos;
	ig_packed_seek(&it->view, key, &pos);
	it->pos = pos;  /* pos == count: next() moves on to block b + 1 */
	return 0;
}

int ig__diskfrag_iter_seek_row(ig__diskfrag_iter_t *it, const void *row, uint32_t row_len)
{
	ig_cell_key_t k = {.row = row, .row_len = row_len, .column = NULL, .column_len = 0,
			   .timestamp = INT64_MAX};
	return ig__diskfrag_iter_seek(it, &k);
}

int ig__diskfrag_iter_next(ig__diskfrag_iter_t *it, ig_cell_t *out)
{
	const ig__diskfrag_t *df = it->df;

	if (it->err != 0)
		return it->err;
	while (!it->loaded || it->pos == ig_packed_count(&it->view)) {
		uint32_t b = it->loaded ? it->block + 1 : it->block;
		if (b >= df->nblocks) {
			/* Stay at the end: keep the last block, or note nothing. */
			it->block = df->nblocks;
			it->loaded = false;
			return 0;
		}
		int rc = load_block(it, b);
		if (rc != 0)
			return rc;
	}
	ig_packed_cell(&it->view, it->pos++, out);
	return 1;
}

const char *ig__diskfrag_iter_error(const ig__diskfrag_iter_t *it)
{
	return it->err != 0 ? it->why : "";
}

const char *ig__diskfrag_name(const ig__diskfrag_t *df) { return df->name; }

/* rows [lo, hi) (len 0: unbounded) against a block's first row */
static bool row_below(const void *row, uint32_t len, const void *hi, uint32_t hi_len)
{
	return hi_len == 0 || ig__bytes_cmp(row, len, hi, hi_len) < 0;
}

void ig__diskfrag_clip_stats(const ig__diskfrag_t *df, const void *lo, uint32_t lo_len,
			     const void *hi, uint32_t hi_len, ig__diskfrag_clip_t *out)
{
	uint32_t first = 0, end = df->nblocks;
	uint64_t bytes = 0, cells = 0;

	/* A block straddling lo counts from the last block starting at or
	 * before lo; blocks from hi on hold no row of the clip. */
	while (first + 1 < df->nblocks && lo_len &&
	       ig__bytes_cmp(df->blocks[first + 1].first.row, df->blocks[first + 1].first.row_len,
			     lo, lo_len) <= 0)
		first++;
	while (end > first && !row_below(df->blocks[end - 1].first.row,
					 df->blocks[end - 1].first.row_len, hi, hi_len))
		end--;
	for (uint32_t i = first; i < end; i++) {
		bytes += df->blocks[i].size;
		cells += df->blocks[i].cells;
	}
	*out = (ig__diskfrag_clip_t){.bytes = bytes, .cells = cells, .blocks = end - first};
	if (end - first >= 2) {
		const ig_cell_key_t *m = &df->blocks[first + (end - first) / 2].first;

		out->median = m->row;
		out->median_len = m->row_len;
	}
}
