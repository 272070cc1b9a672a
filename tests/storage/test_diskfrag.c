/* Tests of disk fragments (storage/diskfrag.c, storage/diskfrag_read.c):
 * round trips from a memory fragment (no compression and zstd levels,
 * several block sizes, 100k cells) with seek of every 97th row and the
 * bloom filter; a flipped byte in a data block is an error naming the
 * block when read (not at open), in the index, bloom filter or footer an
 * error at open; truncations are refused at open; unsorted input is
 * refused and leaves no file; the compressed/raw ratio is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <ingot/storage.h>

#include "cells.h"
#include "diskfrag_int.h"
#include "memfrag_int.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/ingot-diskfrag-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", dir, name);
}

static int mf_next(void *ctx, ig_cell_t *out)
{
	return ig__memfrag_iter_next(ctx, out);
}

/* Values that compress like real data but not trivially: words from a
 * small vocabulary, numbers, and some random bytes. */
static size_t make_value(uint64_t *s, char *buf, size_t cap)
{
	static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo",
					    "foxtrot", "golf", "hotel", "india", "juliet"};
	size_t n = 0;
	unsigned parts = 2 + (unsigned)(rng_next(s) % 6);

	for (unsigned i = 0; i < parts && n + 24 < cap; i++) {
		uint64_t r = rng_next(s);
		if (r % 3 == 0)
			n += (size_t)snprintf(buf + n, cap - n, "%llu,",
					      (unsigned long long)(r >> 40));
		else
			n += (size_t)snprintf(buf + n, cap - n, "%s ", words[r % 10]);
	}
	for (unsigned i = 0; i < 4; i++)
		buf[n++] = (char)(rng_next(s) & 0xff);
	return n;
}

/* nrows rows "row%08u" of even numbers (odd ones are absent), each with 1
 * to 3 columns of 1 to 2 versions. */
static ig__memfrag_t *make_data(unsigned ncells_min, unsigned *nrows_out)
{
	ig__memfrag_t *mf;
	uint64_t s = 42;
	unsigned cells = 0, r = 0;
	char row[16], val[128];

	assert_int_equal(ig__memfrag_create(&mf), 0);
	while (cells < ncells_min) {
		snprintf(row, sizeof row, "row%08u", r * 2);
		unsigned ncols = 1 + (unsigned)(rng_next(&s) % 3);
		for (unsigned c = 0; c < ncols; c++) {
			char col[8];
			snprintf(col, sizeof col, "f%u:q%u", c % 2, c);
			unsigned nv = 1 + (unsigned)(rng_next(&s) % 2);
			for (unsigned v = 0; v < nv; v++) {
				size_t vl = make_value(&s, val, sizeof val);
				ig_cell_t cell = {
					.key = {.row = row, .row_len = (uint32_t)strlen(row),
						.column = col, .column_len = (uint32_t)strlen(col),
						.timestamp = 1000000 + (int64_t)(rng_next(&s) % 1000)},
					.value = val, .value_len = (uint32_t)vl, .kind = IG_CELL_SET,
				};
				if (rng_next(&s) % 50 == 0) {
					cell.kind = IG_CELL_ERASURE;
					cell.value = NULL;
					cell.value_len = 0;
				}
				assert_int_equal(ig__memfrag_insert(mf, &cell), 0);
			}
		}
		ig__memfrag_stats_t st;
		ig__memfrag_stats(mf, &st);
		cells = (unsigned)st.cells;
		r++;
	}
	*nrows_out = r;
	ig__memfrag_freeze(mf);
	return mf;
}

static int write_mf(const char *path, const ig__memfrag_t *mf, ig_compression_t comp,
		    int level, uint32_t block_size, ig__diskfrag_info_t *info)
{
	ig__memfrag_iter_t it;
	ig__diskfrag_opts_t o = {.compression = comp, .level = level, .block_size = block_size};
	ig__cell_source_t src = {mf_next, &it};
	char why[256] = "";

	ig__memfrag_iter_init(&it, mf);
	int rc = ig__diskfrag_write(path, &o, &src, info, why, sizeof why);
	if (rc != 0)
		print_message("write: %s\n", why);
	return rc;
}

static ig__diskfrag_t *open_ok(const char *path)
{
	ig__diskfrag_t *df = NULL;
	char why[256] = "";
	int rc = ig__diskfrag_open(path, &df, why, sizeof why);
	if (rc != 0)
		fail_msg("open %s: %s (%s)", path, ig_strerror(rc), why);
	return df;
}

/* Every cell of df equals the memory fragment's, in order; then every 97th
 * row is sought and found, and absent rows land on the next row. */
static void check_fragment(ig__diskfrag_t *df, const ig__memfrag_t *mf, unsigned nrows)
{
	ig__diskfrag_iter_t it;
	ig__memfrag_iter_t mi;
	ig_cell_t a, b;
	uint64_t n = 0;
	int rc;

	ig__diskfrag_iter_init(&it, df);
	ig__memfrag_iter_init(&mi, mf);
	while ((rc = ig__diskfrag_iter_next(&it, &a)) == 1) {
		assert_int_equal(ig__memfrag_iter_next(&mi, &b), 1);
		assert_true(cells_equal(&a, &b));
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(ig__memfrag_iter_next(&mi, &b), 0);
	assert_int_equal(ig__diskfrag_iter_next(&it, &a), 0);  /* stays at the end */

	ig__diskfrag_info_t info;
	ig__diskfrag_info(df, &info);
	assert_int_equal(info.cells, n);

	unsigned absent_hits = 0, absent = 0;
	for (unsigned r = 0; r < nrows; r += 97) {
		char row[16], next[16];
		snprintf(row, sizeof row, "row%08u", r * 2);
		uint32_t len = (uint32_t)strlen(row);

		assert_true(ig__diskfrag_may_contain(df, row, len));
		assert_int_equal(ig__diskfrag_iter_seek_row(&it, row, len), 0);
		assert_int_equal(ig__diskfrag_iter_next(&it, &a), 1);
		ig__memfrag_iter_seek_row(&mi, row, len, NULL, 0);
		assert_int_equal(ig__memfrag_iter_next(&mi, &b), 1);
		assert_true(cells_equal(&a, &b));
		assert_true(bytes_eq(a.key.row, a.key.row_len, row, len));

		/* An absent row: seek lands on the next present row (or the end). */
		snprintf(next, sizeof next, "row%08u", r * 2 + 1);
		absent++;
		absent_hits += ig__diskfrag_may_contain(df, next, len);
		assert_int_equal(ig__diskfrag_iter_seek_row(&it, next, len), 0);
		ig__memfrag_iter_seek_row(&mi, next, len, NULL, 0);
		int got = ig__diskfrag_iter_next(&it, &a);
		assert_int_equal(got, ig__memfrag_iter_next(&mi, &b));
		if (got == 1)
			assert_true(cells_equal(&a, &b));

		/* Seek to an exact key in the middle of a row's versions. */
		ig_cell_key_t k = b.key;
		assert_int_equal(ig__diskfrag_iter_seek(&it, &k), 0);
		if (got == 1) {
			assert_int_equal(ig__diskfrag_iter_next(&it, &a), 1);
			assert_true(cells_equal(&a, &b));
		}
	}
	/* Every present row may be contained; absent ones rarely. */
	for (unsigned r = 0; r < nrows; r++) {
		char row[16];
		snprintf(row, sizeof row, "row%08u", r * 2);
		assert_true(ig__diskfrag_may_contain(df, row, strlen(row)));
	}
	assert_true(absent_hits <= absent / 20 + 2);
	ig__diskfrag_iter_fini(&it);
}

static void test_round_trip(void **state)
{
	(void)state;
	static const struct {
		ig_compression_t comp;
		int level;
		uint32_t block_size;
	} cases[] = {
		{IG_COMPRESSION_NONE, 0, 512},
		{IG_COMPRESSION_NONE, 0, 4096},
		{IG_COMPRESSION_NONE, 0, 65536},
		{IG_COMPRESSION_ZSTD, 1, 4096},
		{IG_COMPRESSION_ZSTD, 3, 16384},
		{IG_COMPRESSION_ZSTD, 3, 65536},
		{IG_COMPRESSION_ZSTD, 9, 262144},
	};
	unsigned nrows;
	ig__memfrag_t *mf = make_data(100000, &nrows);
	char path[128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ig__diskfrag_info_t w, r;
		path_of(path, sizeof path, "rt.igf");
		assert_int_equal(write_mf(path, mf, cases[i].comp, cases[i].level,
					  cases[i].block_size, &w), 0);
		assert_true(w.cells >= 100000);
		assert_int_equal(w.rows, nrows);

		ig__diskfrag_t *df = open_ok(path);
		ig__diskfrag_info(df, &r);
		assert_int_equal(r.cells, w.cells);
		assert_int_equal(r.blocks, w.blocks);
		assert_int_equal(r.file_bytes, w.file_bytes);
		assert_int_equal(r.min_ts, w.min_ts);
		assert_int_equal(r.max_ts, w.max_ts);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal((uint64_t)st.st_size, w.file_bytes);
		check_fragment(df, mf, nrows);
		ig__diskfrag_unref(df);
		printf("diskfrag: %s level %d, block %u: %llu cells, %u blocks, raw %llu bytes, "
		       "stored %llu (ratio %.3f), file %llu\n",
		       cases[i].comp == IG_COMPRESSION_ZSTD ? "zstd" : "none", cases[i].level,
		       cases[i].block_size, (unsigned long long)w.cells, w.blocks,
		       (unsigned long long)w.raw_bytes, (unsigned long long)w.data_bytes,
		       (double)w.data_bytes / (double)w.raw_bytes,
		       (unsigned long long)w.file_bytes);
		if (cases[i].comp == IG_COMPRESSION_ZSTD)
			assert_true(w.data_bytes < w.raw_bytes);
	}
	/* No temporary file is left behind. */
	path_of(path, sizeof path, "rt.igf.tmp");
	assert_int_not_equal(access(path, F_OK), 0);
	ig__memfrag_destroy(mf);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void write_file(const char *path, const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Reads all of df; returns the error (0 if none) and its text. */
static int read_all(ig__diskfrag_t *df, char *why, size_t cap)
{
	ig__diskfrag_iter_t it;
	ig_cell_t c;
	int rc;

	ig__diskfrag_iter_init(&it, df);
	while ((rc = ig__diskfrag_iter_next(&it, &c)) == 1)
		;
	snprintf(why, cap, "%s", ig__diskfrag_iter_error(&it));
	if (rc < 0)  /* the error sticks */
		assert_int_equal(ig__diskfrag_iter_next(&it, &c), rc);
	ig__diskfrag_iter_fini(&it);
	return rc;
}

/* Offsets of the sections, from the footer. */
static void sections(const uint8_t *b, size_t len, uint64_t *index_off, uint64_t *bloom_off)
{
	const uint8_t *f = b + len - 80;
	*index_off = 0;
	*bloom_off = 0;
	for (int i = 0; i < 8; i++) {
		*index_off = *index_off << 8 | f[8 + i];
		*bloom_off = *bloom_off << 8 | f[24 + i];
	}
}

static void test_flipped_bytes(void **state)
{
	(void)state;
	for (int comp = 0; comp < 2; comp++) {
		unsigned nrows;
		ig__memfrag_t *mf = make_data(3000, &nrows);
		char path[128], bad[128], why[512];
		size_t len;

		path_of(path, sizeof path, "flip.igf");
		path_of(bad, sizeof bad, "flip-bad.igf");
		assert_int_equal(write_mf(path, mf, comp ? IG_COMPRESSION_ZSTD : IG_COMPRESSION_NONE,
					  comp ? 3 : 0, 4096, NULL), 0);
		uint8_t *b = read_file(path, &len);
		uint64_t index_off, bloom_off;
		sections(b, len, &index_off, &bloom_off);

		ig__diskfrag_t *df = open_ok(path);
		ig__diskfrag_info_t info;
		ig__diskfrag_info(df, &info);
		assert_true(info.blocks > 4);
		ig__diskfrag_unref(df);

		/* Data blocks: about 400 bytes spread over them. Open succeeds;
		 * reading fails naming the file and the block holding the byte
		 * (its frame starts at or before the byte). In memory, so the
		 * test writes no file per flip; test_bad_block_named goes
		 * through a real file. */
		uint64_t step = index_off / 400 + 1;
		for (uint64_t at = comp; at < index_off; at += step) {
			b[at] ^= 0x01;
			df = NULL;
			assert_int_equal(ig__diskfrag_open_buffer("flip-bad.igf", b, len, &df, why,
								  sizeof why), 0);
			int rc = read_all(df, why, sizeof why);
			b[at] ^= 0x01;
			assert_int_equal(rc, IG_ECORRUPT);
			assert_non_null(strstr(why, "fragment 'flip-bad.igf': block "));
			unsigned blk = 0;
			unsigned long long boff = 0;
			assert_int_equal(sscanf(strstr(why, "block "), "block %u at offset %llu",
						&blk, &boff), 2);
			assert_true(blk < info.blocks);
			assert_true(boff <= at);
			ig__diskfrag_unref(df);
		}

		/* Index, bloom filter and footer: every byte; open fails. */
		for (uint64_t at = index_off; at < len; at++) {
			ig__diskfrag_t *d2 = NULL;
			b[at] ^= 0x04;
			why[0] = 0;
			int rc = ig__diskfrag_open_buffer("flip-bad.igf", b, len, &d2, why, sizeof why);
			b[at] ^= 0x04;
			if (rc != IG_ECORRUPT)
				fail_msg("flip at %llu (index %llu, bloom %llu): open gave %d",
					 (unsigned long long)at, (unsigned long long)index_off,
					 (unsigned long long)bloom_off, rc);
			assert_null(d2);
			assert_non_null(strstr(why, "flip-bad.igf"));
			assert_non_null(strstr(why, "offset"));
		}
		/* A few through real files. */
		for (uint64_t at = index_off; at < len; at += (len - index_off) / 5 + 1) {
			ig__diskfrag_t *d2 = NULL;
			b[at] ^= 0x04;
			write_file(bad, b, len);
			b[at] ^= 0x04;
			assert_int_equal(ig__diskfrag_open(bad, &d2, why, sizeof why), IG_ECORRUPT);
			assert_non_null(strstr(why, bad));
		}
		free(b);
		ig__memfrag_destroy(mf);
	}
}

/* The exact block a bad checksum is reported in, for a known block. */
static void test_bad_block_named(void **state)
{
	(void)state;
	unsigned nrows;
	ig__memfrag_t *mf = make_data(2000, &nrows);
	char path[128], why[512];
	size_t len;

	path_of(path, sizeof path, "named.igf");
	assert_int_equal(write_mf(path, mf, IG_COMPRESSION_NONE, 0, 1024, NULL), 0);
	uint8_t *b = read_file(path, &len);
	ig__diskfrag_t *df = open_ok(path);
	ig__diskfrag_info_t info;
	ig__diskfrag_info(df, &info);
	ig__diskfrag_unref(df);

	/* The 4th block starts where the 3rd ends; find it by reading the
	 * index entries (offset at entry + 0, size at entry + 8). */
	uint64_t index_off, bloom_off;
	sections(b, len, &index_off, &bloom_off);
	const uint8_t *e = b + index_off;
	uint64_t off3 = 0;
	for (int k = 0; k < 3; k++) {
		uint32_t size = (uint32_t)e[8] << 24 | (uint32_t)e[9] << 16 | (uint32_t)e[10] << 8 | e[11];
		uint16_t rl = (uint16_t)(e[24] << 8 | e[25]), cl = (uint16_t)(e[26] << 8 | e[27]);
		off3 += size;
		e += 28 + rl + cl;
	}
	b[off3 + 40] ^= 0xff;
	write_file(path, b, len);
	df = open_ok(path);
	assert_int_equal(read_all(df, why, sizeof why), IG_ECORRUPT);
	char expect[256];
	snprintf(expect, sizeof expect, "fragment '%s': block 3 at offset %llu: checksum mismatch",
		 path, (unsigned long long)off3);
	assert_string_equal(why, expect);

	/* A seek that lands in the bad block fails the same way; one that
	 * does not, works. */
	ig__diskfrag_iter_t it;
	ig_cell_t c;
	ig__diskfrag_iter_init(&it, df);
	assert_int_equal(ig__diskfrag_iter_seek_row(&it, "row00000000", 11), 0);
	assert_int_equal(ig__diskfrag_iter_next(&it, &c), 1);
	ig__diskfrag_iter_fini(&it);
	free(b);
	ig__diskfrag_unref(df);
	ig__memfrag_destroy(mf);
}

static void test_truncated(void **state)
{
	(void)state;
	unsigned nrows;
	ig__memfrag_t *mf = make_data(1500, &nrows);
	char path[128], bad[128], why[256];
	size_t len;

	path_of(path, sizeof path, "trunc.igf");
	path_of(bad, sizeof bad, "trunc-bad.igf");
	assert_int_equal(write_mf(path, mf, IG_COMPRESSION_ZSTD, 3, 2048, NULL), 0);
	uint8_t *b = read_file(path, &len);

	/* Every length, in memory; then a sample through real files. */
	for (size_t l = 0; l < len; l++) {
		ig__diskfrag_t *df = NULL;
		assert_int_equal(ig__diskfrag_open_buffer("mem", b, l, &df, why, sizeof why),
				 IG_ECORRUPT);
		assert_null(df);
		assert_non_null(strstr(why, "fragment 'mem'"));
	}
	for (size_t l = 0; l < len; l += 1 + l / 2) {
		ig__diskfrag_t *df = NULL;
		write_file(bad, b, l);
		assert_int_equal(ig__diskfrag_open(bad, &df, why, sizeof why), IG_ECORRUPT);
		assert_non_null(strstr(why, "trunc-bad.igf"));
	}
	/* Bytes appended are refused too (the footer is no longer last). */
	uint8_t *longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, b, len);
	longer[len] = 0;
	ig__diskfrag_t *df = NULL;
	assert_int_equal(ig__diskfrag_open_buffer("mem", longer, len + 1, &df, why, sizeof why),
			 IG_ECORRUPT);
	/* And the whole buffer opens and reads. */
	assert_int_equal(ig__diskfrag_open_buffer("mem", b, len, &df, why, sizeof why), 0);
	check_fragment(df, mf, nrows);
	ig__diskfrag_unref(df);
	free(longer);
	free(b);
	ig__memfrag_destroy(mf);
}

/* A source that yields a fixed array. */
struct arr {
	const ig_cell_t *cells;
	size_t n, i;
};

static int arr_next(void *ctx, ig_cell_t *out)
{
	struct arr *a = ctx;
	if (a->i == a->n)
		return 0;
	*out = a->cells[a->i++];
	return 1;
}

static void test_refused_input(void **state)
{
	(void)state;
	ig_cell_t cells[3] = {cell_set("a", "f:x", 1, "1"), cell_set("b", "f:x", 1, "2"),
			      cell_set("b", "f:x", 1, "3")};  /* duplicate key */
	struct arr a = {cells, 3, 0};
	ig__cell_source_t src = {arr_next, &a};
	ig__diskfrag_opts_t o = {0};
	char path[128], tmp[140], why[256] = "";

	path_of(path, sizeof path, "refused.igf");
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	assert_int_equal(ig__diskfrag_write(path, &o, &src, NULL, why, sizeof why), IG_EINVAL);
	assert_non_null(strstr(why, "cell 2"));
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_not_equal(access(tmp, F_OK), 0);

	ig__diskfrag_opts_t bad_level = {.compression = IG_COMPRESSION_ZSTD, .level = 23};
	a.i = 0;
	assert_int_equal(ig__diskfrag_write(path, &bad_level, &src, NULL, why, sizeof why),
			 IG_EINVAL);
	ig__diskfrag_opts_t bad_block = {.block_size = 100};
	assert_int_equal(ig__diskfrag_write(path, &bad_block, &src, NULL, why, sizeof why),
			 IG_EINVAL);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void test_empty_and_big_cells(void **state)
{
	(void)state;
	struct arr a = {NULL, 0, 0};
	ig__cell_source_t src = {arr_next, &a};
	ig__diskfrag_opts_t o = {.compression = IG_COMPRESSION_ZSTD, .level = 1, .block_size = 512};
	ig__diskfrag_info_t info;
	ig_cell_key_t k1, k2;
	ig_cell_t c;
	char path[128], why[256];

	path_of(path, sizeof path, "empty.igf");
	assert_int_equal(ig__diskfrag_write(path, &o, &src, &info, why, sizeof why), 0);
	assert_int_equal(info.cells, 0);
	ig__diskfrag_t *df = open_ok(path);
	assert_int_equal(ig__diskfrag_bounds(df, &k1, &k2), IG_ENOTFOUND);
	assert_false(ig__diskfrag_may_contain(df, "x", 1));
	ig__diskfrag_iter_t it;
	ig__diskfrag_iter_init(&it, df);
	assert_int_equal(ig__diskfrag_iter_seek_row(&it, "x", 1), 0);
	assert_int_equal(ig__diskfrag_iter_next(&it, &c), 0);
	ig__diskfrag_iter_fini(&it);
	ig__diskfrag_unref(df);

	/* Cells larger than a block get a block each. */
	size_t big = 100000;
	char *v = malloc(big + 1);
	assert_non_null(v);
	for (size_t i = 0; i < big; i++)
		v[i] = (char)('a' + i % 7);
	v[big] = 0;
	ig_cell_t cells[3] = {cell_set("a", "f:x", 1, v), cell_set("b", "f:x", 1, "small"),
			      cell_set("c", "f:x", 1, v)};
	a = (struct arr){cells, 3, 0};
	path_of(path, sizeof path, "big.igf");
	assert_int_equal(ig__diskfrag_write(path, &o, &src, &info, why, sizeof why), 0);
	assert_int_equal(info.blocks, 3);
	df = open_ok(path);
	assert_int_equal(ig__diskfrag_bounds(df, &k1, &k2), 0);
	assert_true(bytes_eq(k1.row, k1.row_len, "a", 1));
	assert_true(bytes_eq(k2.row, k2.row_len, "c", 1));
	ig__diskfrag_iter_init(&it, df);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ig__diskfrag_iter_next(&it, &c), 1);
		assert_true(cells_equal(&c, &cells[i]));
	}
	assert_int_equal(ig__diskfrag_iter_seek_row(&it, "c", 1), 0);
	assert_int_equal(ig__diskfrag_iter_next(&it, &c), 1);
	assert_true(cells_equal(&c, &cells[2]));
	assert_int_equal(ig__diskfrag_iter_seek_row(&it, "d", 1), 0);
	assert_int_equal(ig__diskfrag_iter_next(&it, &c), 0);
	ig__diskfrag_iter_fini(&it);
	ig__diskfrag_unref(df);
	free(v);
}

int main(int argc, char **argv)
{
	if (argc > 1)  /* a test name pattern, for running one test by hand */
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_flipped_bytes),
		cmocka_unit_test(test_bad_block_named),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_refused_input),
		cmocka_unit_test(test_empty_and_big_cells),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
