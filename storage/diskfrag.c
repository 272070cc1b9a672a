/* Disk fragments, writing side: sorted cells in, one durable fragment file
 * out (storage/diskfrag_int.h; docs/formats.md, "Disk fragment").
 *
 * One pass over the source: cells go into a sorted packed block until the
 * next would pass the block size; the block is compressed (kept raw when
 * zstd does not make it smaller), framed with its checksum and appended.
 * The index grows in memory beside it, and so do the 64-bit hashes of the
 * distinct rows, since the bloom filter can only be sized once the rows are
 * counted. Everything goes to "<path>.tmp" through one write buffer; the
 * file becomes visible under its name only after fdatasync and rename, and
 * the rename itself is made durable by an fsync of the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
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

#define OUT_FLUSH (1u << 20)

/* A growable byte buffer. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static int bytes_reserve(struct bytes *b, size_t more)
{
	if (b->cap - b->len >= more)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2)
			return IG_ENOMEM;
		cap *= 2;
	}
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL)
		return IG_ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int bytes_put(struct bytes *b, const void *src, size_t n)
{
	int rc = bytes_reserve(b, n);
	if (rc == 0 && n > 0) {
		memcpy(b->p + b->len, src, n);
		b->len += n;
	}
	return rc;
}

struct writer {
	const char *path;
	char *tmp;
	int fd;
	ig__diskfrag_opts_t opts;
	char *why;
	size_t why_len;

	struct bytes out;         /* bytes not yet written to fd */
	uint64_t file_off;        /* bytes written to fd so far + out.len */

	uint8_t *block;           /* the packed block being built */
	size_t block_cap;
	ig_packed_builder_t builder;
	size_t block_cell_bytes;  /* cell_bytes of the cells in the block */
	size_t entry_at;          /* this block's index entry in idx */

	uint8_t *zbuf;            /* compressed block */
	size_t zcap;
	uint8_t *coded;           /* the block in columnar coding */
	size_t coded_cap;
	ZSTD_CCtx *zctx;

	struct bytes idx;         /* the index section */
	struct bytes prev;        /* the previous cell's row then column */
	uint32_t prev_row_len;
	uint32_t prev_col_len;
	int64_t prev_ts;
	bool have_prev;

	uint64_t *row_hashes;     /* one per distinct row, for the bloom filter */
	size_t nrows, rows_cap;

	ig__diskfrag_info_t info;
};

static int fail(struct writer *w, int rc, const char *fmt, ...)
{
	if (w->why != NULL && w->why_len > 0) {
		int n = snprintf(w->why, w->why_len, "fragment '%s': ", w->path);
		if (n >= 0 && (size_t)n < w->why_len) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(w->why + n, w->why_len - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return rc;
}

static int flush_out(struct writer *w)
{
	size_t done = 0;

	while (done < w->out.len) {
		ssize_t n = write(w->fd, w->out.p + done, w->out.len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			return fail(w, -e, "write to '%s': %s", w->tmp, strerror(e));
		}
		done += (size_t)n;
	}
	w->out.len = 0;
	return 0;
}

static int emit(struct writer *w, const void *p, size_t n)
{
	if (w->out.len + n > OUT_FLUSH && w->out.len > 0) {
		int rc = flush_out(w);
		if (rc != 0)
			return rc;
	}
	if (n >= OUT_FLUSH) {
		/* A big block goes straight to the file, not through the buffer. */
		struct bytes saved = w->out;
		w->out = (struct bytes){(uint8_t *)p, n, n};
		int rc = flush_out(w);
		w->out = saved;
		w->file_off += n;
		return rc;
	}
	if (bytes_put(&w->out, p, n) != 0)
		return fail(w, IG_ENOMEM, "out of memory");
	w->file_off += n;
	return 0;
}

/* Grows *buf to hold n bytes. */
static int grow(struct writer *w, uint8_t **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return 0;
	uint8_t *p = realloc(*buf, n);
	if (p == NULL)
		return fail(w, IG_ENOMEM, "out of memory");
	*buf = p;
	*cap = n;
	return 0;
}

/* Compresses the finished block into w->zbuf, columnar coded first
 * (block_columns_int.h) unless its pool is not canonical; *out_len is the
 * frame's size. The caller stores the block raw when that is not smaller. */
static int compress_block(struct writer *w, size_t raw_len, size_t *out_len, uint8_t *codec)
{
	int rc = grow(w, &w->zbuf, &w->zcap, ZSTD_compressBound(raw_len));
	if (rc == 0)
		rc = grow(w, &w->coded, &w->coded_cap, raw_len + IG__COLUMNS_SIZES);
	if (rc != 0)
		return rc;
	const uint8_t *src = w->block;
	size_t len = raw_len;
	*codec = IG__DF_CODEC_ZSTD;
	if (ig__columns_encode(w->block, raw_len, w->coded, &len)) {
		src = w->coded;
		*codec = IG__DF_CODEC_ZSTD_COLUMNS;
	}
	size_t zn = ZSTD_compressCCtx(w->zctx, w->zbuf, w->zcap, src, len, w->opts.level);
	if (ZSTD_isError(zn))
		return fail(w, IG_EFAILED, "block %u: zstd: %s", w->info.blocks,
			    ZSTD_getErrorName(zn));
	*out_len = zn;
	return 0;
}

/* Compresses, frames and emits the block being built, and completes its
 * index entry. */
static int close_block(struct writer *w)
{
	size_t raw_len;
	uint8_t trailer[IG__DF_BLOCK_TRAILER];
	const uint8_t *stored = w->block;
	size_t stored_len;
	uint8_t codec = IG__DF_CODEC_RAW;
	uint32_t cells = ig_packed_builder_count(&w->builder);

	if (ig_packed_builder_finish(&w->builder, &raw_len) != 0)
		return fail(w, IG_ESTATE, "block %u: finish failed", w->info.blocks);
	stored_len = raw_len;
	if (w->opts.compression == IG_COMPRESSION_ZSTD) {
		uint8_t zcodec;
		int rc = compress_block(w, raw_len, &stored_len, &zcodec);
		if (rc != 0)
			return rc;
		if (stored_len < raw_len) {
			stored = w->zbuf;
			codec = zcodec;
		} else {
			stored_len = raw_len;
		}
	}
	ig__st32(trailer + IG__DF_BT_RAW_LEN, (uint32_t)raw_len);
	trailer[IG__DF_BT_CODEC] = codec;
	memset(trailer + IG__DF_BT_RESERVED, 0, 3);
	uint32_t crc = ig_crc32c(0, stored, stored_len);
	crc = ig_crc32c(crc, trailer, IG__DF_BT_CRC);
	ig__st32(trailer + IG__DF_BT_CRC, crc);

	uint64_t off = w->file_off;
	uint64_t size = stored_len + IG__DF_BLOCK_TRAILER;
	if (size > UINT32_MAX)
		return fail(w, IG_ERANGE, "block %u too large", w->info.blocks);
	int rc = emit(w, stored, stored_len);
	if (rc == 0)
		rc = emit(w, trailer, sizeof trailer);
	if (rc != 0)
		return rc;

	uint8_t *e = w->idx.p + w->entry_at;
	ig__st64(e + IG__DF_IE_OFFSET, off);
	ig__st32(e + IG__DF_IE_SIZE, (uint32_t)size);
	ig__st32(e + IG__DF_IE_CELLS, cells);
	w->info.blocks++;
	w->info.raw_bytes += raw_len;
	w->info.data_bytes += size;
	return 0;
}

/* What a cell counts against the block size: its own bytes, not the
 * packed block's fixed 32-byte entry. Block size means the cells' data a
 * block holds (RocksDB's "user data per block", HBase's cell bytes), so
 * a block of small cells is not cut short by entry overhead. */
static size_t cell_bytes(const ig_cell_t *c)
{
	return sizeof c->key.timestamp + c->key.row_len + c->key.column_len + c->value_len;
}

/* The packed block a block_size of cells can take. A cell takes 24 bytes
 * more in it than it counts (its 32-byte entry against its 8-byte
 * timestamp) and counts at least 11 (1-byte row, 2-byte column, the
 * timestamp), so a block is under (11 + 24) / 11 < 4 times the block size;
 * block_full closes a block at this cap anyway. */
static size_t raw_cap(const struct writer *w)
{
	return (size_t)w->opts.block_size * IG__DF_RAW_PER_BLOCK;
}

static bool block_full(const struct writer *w, const ig_cell_t *c)
{
	return w->block_cell_bytes + cell_bytes(c) > w->opts.block_size ||
	       ig_packed_builder_size(&w->builder) + ig_packed_cell_size(c) > raw_cap(w);
}

/* Opens a new block with c as its first cell: its index entry gets the
 * key now, and offset, size and count when the block closes. */
static int open_block(struct writer *w, const ig_cell_t *c)
{
	size_t need = IG_PACKED_OVERHEAD + ig_packed_cell_size(c);
	size_t cap = raw_cap(w) > need ? raw_cap(w) : need;

	if (w->info.blocks == UINT32_MAX)
		return fail(w, IG_ERANGE, "more than %u blocks", UINT32_MAX);
	if (cap > w->block_cap) {
		uint8_t *p = realloc(w->block, cap);
		if (p == NULL)
			return fail(w, IG_ENOMEM, "out of memory");
		w->block = p;
		w->block_cap = cap;
	}
	if (ig_packed_builder_init(&w->builder, w->block, w->block_cap, IG_PACKED_SORTED) != 0)
		return fail(w, IG_EINVAL, "builder");
	w->block_cell_bytes = 0;

	uint8_t fixed[IG__DF_IE_FIXED] = {0};
	ig__st64(fixed + IG__DF_IE_TS, ig__i2u64(c->key.timestamp));
	ig__st16(fixed + IG__DF_IE_ROW_LEN, (uint16_t)c->key.row_len);
	ig__st16(fixed + IG__DF_IE_COL_LEN, (uint16_t)c->key.column_len);
	w->entry_at = w->idx.len;
	if (bytes_put(&w->idx, fixed, sizeof fixed) != 0 ||
	    bytes_put(&w->idx, c->key.row, c->key.row_len) != 0 ||
	    bytes_put(&w->idx, c->key.column, c->key.column_len) != 0)
		return fail(w, IG_ENOMEM, "out of memory");
	return 0;
}

/* Remembers c's key (the source may reuse its bytes) and, for a new row,
 * its hash for the bloom filter. */
static int remember(struct writer *w, const ig_cell_t *c)
{
	bool new_row = !w->have_prev ||
		       !ig__bytes_eq(w->prev.p, w->prev_row_len, c->key.row, c->key.row_len);

	if (new_row) {
		if (w->nrows == w->rows_cap) {
			size_t cap = w->rows_cap ? w->rows_cap * 2 : 1024;
			uint64_t *p = realloc(w->row_hashes, cap * sizeof *p);
			if (p == NULL)
				return fail(w, IG_ENOMEM, "out of memory");
			w->row_hashes = p;
			w->rows_cap = cap;
		}
		w->row_hashes[w->nrows++] = ig__bloom_hash(c->key.row, c->key.row_len);
	}
	w->prev.len = 0;
	if (bytes_put(&w->prev, c->key.row, c->key.row_len) != 0 ||
	    bytes_put(&w->prev, c->key.column, c->key.column_len) != 0)
		return fail(w, IG_ENOMEM, "out of memory");
	w->prev_row_len = c->key.row_len;
	w->prev_col_len = c->key.column_len;
	w->prev_ts = c->key.timestamp;
	w->have_prev = true;
	return 0;
}

static int add_cell(struct writer *w, const ig_cell_t *c)
{
	uint64_t n = w->info.cells;
	int rc;

	if (ig_cell_check(c) != 0)
		return fail(w, IG_EINVAL, "cell %llu is not valid", (unsigned long long)n);
	if (w->have_prev) {
		ig_cell_key_t pk = {
			.row = w->prev.p, .row_len = w->prev_row_len,
			.column = w->prev.p + w->prev_row_len, .column_len = w->prev_col_len,
			.timestamp = w->prev_ts,
		};
		if (ig_cell_key_cmp(&pk, &c->key) >= 0)
			return fail(w, IG_EINVAL,
				    "cell %llu is not after the cell before it (keys must be "
				    "strictly ascending)", (unsigned long long)n);
	}
	bool open = w->have_prev;  /* a block is open once any cell was added */
	if (open && block_full(w, c)) {
		if ((rc = close_block(w)) != 0)
			return rc;
		open = false;
	}
	if (!open && (rc = open_block(w, c)) != 0)
		return rc;
	rc = ig_packed_builder_append(&w->builder, c);
	if (rc != 0)
		return fail(w, rc, "cell %llu: packed block append failed",
			    (unsigned long long)n);
	if ((rc = remember(w, c)) != 0)
		return rc;
	w->block_cell_bytes += cell_bytes(c);
	if (n == 0 || c->key.timestamp < w->info.min_ts)
		w->info.min_ts = c->key.timestamp;
	if (n == 0 || c->key.timestamp > w->info.max_ts)
		w->info.max_ts = c->key.timestamp;
	w->info.cells++;
	return 0;
}

/* Index tail, bloom filter, footer. */
static int finish_file(struct writer *w)
{
	int rc;

	if (w->have_prev) {
		if ((rc = close_block(w)) != 0)
			return rc;
		uint8_t last[IG__DF_LAST_FIXED];
		ig__st64(last, ig__i2u64(w->prev_ts));
		ig__st16(last + 8, (uint16_t)w->prev_row_len);
		ig__st16(last + 10, (uint16_t)w->prev_col_len);
		if (bytes_put(&w->idx, last, sizeof last) != 0 ||
		    bytes_put(&w->idx, w->prev.p, w->prev.len) != 0)
			return fail(w, IG_ENOMEM, "out of memory");
	}

	uint64_t index_off = w->file_off;
	uint32_t index_crc = ig_crc32c(0, w->idx.p, w->idx.len);
	if ((rc = emit(w, w->idx.p, w->idx.len)) != 0)
		return rc;

	ig__bloom_t bloom;
	rc = ig__bloom_init(&bloom, w->nrows, w->opts.bloom_bits_per_key);
	if (rc != 0)
		return fail(w, rc, "bloom filter: %s", ig_strerror(rc));
	for (size_t i = 0; i < w->nrows; i++)
		ig__bloom_add_hash(&bloom, w->row_hashes[i]);
	size_t bloom_len = ig__bloom_encoded_size(&bloom);
	uint8_t *bb = malloc(bloom_len);
	if (bb == NULL) {
		ig__bloom_fini(&bloom);
		return fail(w, IG_ENOMEM, "out of memory");
	}
	ig__bloom_encode(&bloom, bb);
	ig__bloom_fini(&bloom);
	uint64_t bloom_off = w->file_off;
	rc = emit(w, bb, bloom_len);
	free(bb);
	if (rc != 0)
		return rc;

	uint8_t f[IG__DF_FOOTER] = {0};
	memcpy(f + IG__DF_F_MAGIC, IG__DF_MAGIC, 4);
	ig__st16(f + IG__DF_F_VERSION, IG__DF_VERSION);
	ig__st16(f + IG__DF_F_LENGTH, IG__DF_FOOTER);
	ig__st64(f + IG__DF_F_INDEX_OFF, index_off);
	ig__st64(f + IG__DF_F_INDEX_SIZE, w->idx.len);
	ig__st64(f + IG__DF_F_BLOOM_OFF, bloom_off);
	ig__st64(f + IG__DF_F_BLOOM_SIZE, bloom_len);
	ig__st64(f + IG__DF_F_CELLS, w->info.cells);
	ig__st64(f + IG__DF_F_MIN_TS, ig__i2u64(w->info.min_ts));
	ig__st64(f + IG__DF_F_MAX_TS, ig__i2u64(w->info.max_ts));
	ig__st32(f + IG__DF_F_BLOCKS, w->info.blocks);
	ig__st32(f + IG__DF_F_INDEX_CRC, index_crc);
	f[IG__DF_F_COMPRESSION] = (uint8_t)w->opts.compression;
	f[IG__DF_F_LEVEL] = (uint8_t)w->opts.level;
	ig__st32(f + IG__DF_F_CRC, ig_crc32c(0, f, IG__DF_F_CRC));
	if ((rc = emit(w, f, sizeof f)) != 0)
		return rc;
	if ((rc = flush_out(w)) != 0)
		return rc;

	w->info.rows = w->nrows;
	w->info.index_bytes = w->idx.len;
	w->info.bloom_bytes = bloom_len;
	w->info.file_bytes = w->file_off;
	w->info.compression = w->opts.compression;
	w->info.level = w->opts.level;
	return 0;
}

/* fdatasync, rename over the final name, fsync of the directory: without
 * the last step a crash could forget the rename (KDI renamed without it). */
static int make_durable(struct writer *w)
{
	if (fdatasync(w->fd) != 0) {
		int e = errno;
		return fail(w, -e, "fdatasync '%s': %s", w->tmp, strerror(e));
	}
	if (close(w->fd) != 0) {
		int e = errno;
		w->fd = -1;
		return fail(w, -e, "close '%s': %s", w->tmp, strerror(e));
	}
	w->fd = -1;
	if (rename(w->tmp, w->path) != 0) {
		int e = errno;
		return fail(w, -e, "rename '%s': %s", w->tmp, strerror(e));
	}

	const char *slash = strrchr(w->path, '/');
	char *dir = slash == NULL ? strdup(".")
				  : strndup(w->path, slash == w->path ? 1 : (size_t)(slash - w->path));
	if (dir == NULL)
		return fail(w, IG_ENOMEM, "out of memory");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (dfd < 0 || fsync(dfd) != 0) {
		int e = errno;
		rc = fail(w, -e, "fsync of directory '%s': %s", dir, strerror(e));
	}
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return rc;
}

static int check_opts(ig__diskfrag_opts_t *o)
{
	if (o->block_size == 0)
		o->block_size = IG_BLOCK_SIZE_DEFAULT;
	if (o->block_size < IG_BLOCK_SIZE_MIN || o->block_size > IG_BLOCK_SIZE_MAX)
		return IG_EINVAL;
	if (o->compression == IG_COMPRESSION_NONE && o->level != 0)
		return IG_EINVAL;
	if (o->compression == IG_COMPRESSION_ZSTD &&
	    (o->level < IG_ZSTD_LEVEL_MIN || o->level > IG_ZSTD_LEVEL_MAX))
		return IG_EINVAL;
	if (o->compression != IG_COMPRESSION_NONE && o->compression != IG_COMPRESSION_ZSTD)
		return IG_EINVAL;
	if (o->bloom_bits_per_key > 64)
		return IG_EINVAL;
	return 0;
}

int ig__diskfrag_write(const char *path, const ig__diskfrag_opts_t *opts,
		       const ig__cell_source_t *src, ig__diskfrag_info_t *info, char *why,
		       size_t why_len)
{
	struct writer w = {.path = path, .fd = -1, .why = why, .why_len = why_len};
	int rc;

	if (path == NULL || opts == NULL || src == NULL || src->next == NULL)
		return IG_EINVAL;
	w.opts = *opts;
	if (check_opts(&w.opts) != 0)
		return fail(&w, IG_EINVAL, "bad options (compression %d, level %d, block size %u)",
			    (int)opts->compression, opts->level, opts->block_size);

	size_t plen = strlen(path);
	w.tmp = malloc(plen + 5);
	if (w.tmp == NULL)
		return fail(&w, IG_ENOMEM, "out of memory");
	memcpy(w.tmp, path, plen);
	memcpy(w.tmp + plen, ".tmp", 5);
	if (w.opts.compression == IG_COMPRESSION_ZSTD && (w.zctx = ZSTD_createCCtx()) == NULL) {
		rc = fail(&w, IG_ENOMEM, "out of memory");
		goto out;
	}
	/* A leftover temporary file from a crash is replaced (O_TRUNC): no
	 * other writer may be writing the same fragment name. */
	w.fd = open(w.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w.fd < 0) {
		int e = errno;
		rc = fail(&w, -e, "open '%s': %s", w.tmp, strerror(e));
		goto out;
	}

	for (;;) {
		ig_cell_t c;
		rc = src->next(src->ctx, &c);
		if (rc == 0)
			break;
		if (rc < 0) {
			fail(&w, rc, "the cell source failed: %s", ig_strerror(rc));
			goto out;
		}
		if ((rc = add_cell(&w, &c)) != 0)
			goto out;
	}
	if ((rc = finish_file(&w)) != 0 || (rc = make_durable(&w)) != 0)
		goto out;
	if (info != NULL)
		*info = w.info;
out:
	if (w.fd >= 0)
		close(w.fd);
	if (rc != 0 && w.tmp != NULL)
		unlink(w.tmp);
	free(w.tmp);
	free(w.out.p);
	free(w.block);
	free(w.zbuf);
	free(w.coded);
	ZSTD_freeCCtx(w.zctx);
	free(w.idx.p);
	free(w.prev.p);
	free(w.row_hashes);
	return rc;
}
