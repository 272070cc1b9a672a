/* Tests of the columnar coding of packed blocks (storage/block_columns.c,
 * block_columns_int.h; docs/formats.md, "Columnar coding"): encoding then
 * decoding gives back the exact block, for every shape of block the builder
 * writes; blocks whose pool is not in the builder's arrangement are refused
 * by the encoder; damaged codings are refused with IG_ECORRUPT and an
 * offset inside them, or decode to a block whose entries pass every check
 * of the packed reader, never a crash (the asan build catches any byte read
 * or written outside the exact buffers); and the coding makes a typical
 * data block compress better with zstd, which is why it exists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include <ingot/storage.h>

#include "block_columns_int.h"
#include "cells.h"
#include "packed_int.h"

#define SENTINEL_OFF ((size_t)0xabcdef)

/* ---- helpers ------------------------------------------------------------------ */

/* A fresh buffer of exactly n bytes (at least one, so malloc never gives
 * NULL), holding src's first n bytes when src is given. */
static uint8_t *dup_n(const uint8_t *src, size_t n)
{
	uint8_t *b = malloc(n ? n : 1);

	assert_non_null(b);
	if (src != NULL && n > 0)
		memcpy(b, src, n);
	return b;
}

/* Builds the block of the cells into a buffer of exactly its size. */
static uint8_t *build(const ig_cell_t *cells, size_t n, unsigned flags, size_t *len)
{
	size_t want;

	assert_int_equal(ig_packed_size(cells, n, &want), 0);
	uint8_t *b = dup_n(NULL, want);
	assert_int_equal(ig_packed_encode(cells, n, flags, b, want, len), 0);
	assert_int_equal(*len, want);
	return b;
}

/* Codes a block the builder wrote, into the room the contract asks for;
 * returns the coding in a buffer of exactly its length. */
static uint8_t *code(const uint8_t *blk, size_t len, size_t *clen)
{
	uint8_t *out = dup_n(NULL, len + IG__COLUMNS_SIZES);
	size_t n = SIZE_MAX;

	assert_true(ig__columns_encode(blk, len, out, &n));
	assert_true(n >= IG_PACKED_OVERHEAD && n <= len + IG__COLUMNS_SIZES);
	*clen = n;
	uint8_t *exact = dup_n(out, n);
	free(out);
	return exact;
}

/* Encode, decode, compare: the decoded block is byte for byte the block,
 * and the packed reader accepts it (its checksum came through too). */
static void assert_round_trip(const uint8_t *blk, size_t len)
{
	size_t clen, err = SENTINEL_OFF;
	uint8_t *coded = code(blk, len, &clen);
	uint8_t *back = dup_n(NULL, len);
	ig_packed_t p;

	assert_int_equal(ig__columns_decode(coded, clen, back, len, &err), 0);
	assert_int_equal(err, SENTINEL_OFF);
	assert_memory_equal(back, blk, len);
	assert_int_equal(ig_packed_open(back, len, &p, NULL), 0);
	free(back);
	free(coded);
}

static void round_trip_cells(const ig_cell_t *cells, size_t n, unsigned flags)
{
	size_t len;
	uint8_t *b = build(cells, n, flags, &len);

	assert_round_trip(b, len);
	free(b);
}

/* Rewrites the trailer after a test edits a block, so the packed reader
 * can confirm the edit left a valid block. */
static void reseal(uint8_t *b, size_t len)
{
	ig__st32(b + len - IG_PACKED_TRAILER, ig_crc32c(0, b, len - IG_PACKED_TRAILER));
}

static uint8_t *entry(uint8_t *b, size_t i)
{
	return b + IG_PACKED_HEADER + i * IG_PACKED_ENTRY;
}

static uint8_t *pool_of(uint8_t *b)
{
	return b + IG_PACKED_HEADER + (size_t)ig__ld32(b + IG__PK_H_COUNT) * IG_PACKED_ENTRY;
}

/* A valid block (the reader accepts it) that the encoder must refuse. */
static void assert_not_coded(const uint8_t *b, size_t len)
{
	ig_packed_t p;
	size_t clen = SENTINEL_OFF;
	uint8_t *out = dup_n(NULL, len + IG__COLUMNS_SIZES);

	assert_int_equal(ig_packed_open(b, len, &p, NULL), 0);
	assert_false(ig__columns_encode(b, len, out, &clen));
	free(out);
}

/* The header fields the packed reader checks: all the decoder leaves to
 * it (docs/formats.md, "Columnar coding"). */
static bool header_ok(const uint8_t *b, size_t len)
{
	return ig__ld32(b + IG__PK_H_MAGIC) == IG__PK_MAGIC &&
	       b[IG__PK_H_VERSION] == IG_PACKED_VERSION &&
	       (b[IG__PK_H_FLAGS] & ~IG__PK_FLAGS_KNOWN) == 0 &&
	       ig__ld16(b + IG__PK_H_RESERVED) == 0 && ig__ld32(b + IG__PK_H_LENGTH) == len;
}

/* Decodes `in` into a buffer of exactly raw_len bytes; a refusal must name
 * a byte of the input. */
static int decode(const uint8_t *in, size_t len, size_t raw_len)
{
	uint8_t *src = dup_n(in, len), *out = dup_n(NULL, raw_len);
	size_t err = SENTINEL_OFF;
	int rc = ig__columns_decode(src, len, out, raw_len, &err);

	if (rc != 0) {
		assert_int_equal(rc, IG_ECORRUPT);
		if (len > 0)
			assert_true(err < len);
		else
			assert_int_equal(err, 0);
	} else {
		/* Whatever came out, the reader judges it without tripping;
		 * the decoder made every entry check, so with a right header
		 * only the checksum may fail. */
		ig_packed_t p;
		size_t off = SENTINEL_OFF;

		if (header_ok(out, raw_len))
			assert_int_equal(ig__packed_open_checked(out, raw_len, &p, &off), 0);
		if (ig_packed_open(out, raw_len, &p, &off) == 0) {
			for (uint32_t i = 0; i < ig_packed_count(&p); i++) {
				ig_cell_t c;
				assert_int_equal(ig_packed_cell(&p, i, &c), 0);
				assert_int_equal(ig_cell_check(&c), 0);
			}
		} else {
			assert_true(off <= raw_len);
		}
	}
	free(out);
	free(src);
	return rc;
}

/* A block with a bit of everything: shared rows, shared columns, versions,
 * an erasure, an empty value, rows sharing prefixes. */
static uint8_t *mixed_block(size_t *len)
{
	const ig_cell_t cells[] = {
		cell_set("row-000", "f:a", 9, "first value"),
		cell_set("row-000", "f:a", 8, "older"),
		cell_set("row-000", "f:b", 8, ""),
		cell_erase("row-000", "g:x", 7),
		cell_set("row-001", "f:a", 9, "v"),
		cell_set("row-001x", "f:a", 9, "longer row"),
		cell_set("row-002", "g:x", -5, "negative time"),
		cell_set("s", "g:y", 0, "short row"),
	};
	return build(cells, sizeof cells / sizeof cells[0], IG_PACKED_SORTED, len);
}

/* ---- round trips -------------------------------------------------------------- */

static void test_empty_block(void **unused)
{
	(void)unused;
	round_trip_cells(NULL, 0, 0);
	round_trip_cells(NULL, 0, IG_PACKED_SORTED);
}

static void test_one_cell(void **unused)
{
	(void)unused;
	const ig_cell_t set = cell_set("r1", "f:q", 7, "hello");
	const ig_cell_t erase = cell_erase("r1", "f:q", 7);

	round_trip_cells(&set, 1, 0);
	round_trip_cells(&set, 1, IG_PACKED_SORTED);
	round_trip_cells(&erase, 1, IG_PACKED_SORTED);
}

/* The example block of docs/formats.md, taken as bytes from the builder. */
static void test_format_example(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {cell_set("r1", "f:a", 1, "x"), cell_erase("r1", "f:b", 0)};

	round_trip_cells(cells, 2, IG_PACKED_SORTED);
}

/* Many rows, several columns each, several versions of each column: both
 * kinds of sharing, in a sorted and in an unsorted block. */
static void test_rows_columns_versions(void **unused)
{
	(void)unused;
	static const char *const cols[] = {"cf:alpha", "cf:beta", "cf:gamma", "meta:"};
	enum { ROWS = 40, COLS = 4, VERSIONS = 3 };
	static char rows[ROWS][16], vals[ROWS * COLS * VERSIONS][24];
	ig_cell_t cells[ROWS * COLS * VERSIONS];
	size_t n = 0;

	for (int r = 0; r < ROWS; r++) {
		snprintf(rows[r], sizeof rows[r], "user%06d", r * 7);
		for (int c = 0; c < COLS; c++)
			for (int v = 0; v < VERSIONS; v++) {
				snprintf(vals[n], sizeof vals[n], "value %d/%d/%d", r, c, v);
				cells[n] = cell_set(rows[r], cols[c], 1000 - v, vals[n]);
				n++;
			}
	}
	round_trip_cells(cells, n, IG_PACKED_SORTED);
	round_trip_cells(cells, n, 0);

	/* Unsorted, the same key several times in a row: row and column both
	 * shared, and the values differ. */
	const ig_cell_t dups[] = {
		cell_set("k", "f:q", 5, "one"), cell_set("k", "f:q", 5, "two"),
		cell_erase("k", "f:q", 5), cell_set("k", "f:q", 5, "three"),
		cell_set("k", "f:r", 5, "three"), cell_set("j", "f:r", 5, "three"),
	};
	round_trip_cells(dups, sizeof dups / sizeof dups[0], 0);
}

static void test_erasures(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {
		cell_erase("a", "f:1", 3), cell_erase("a", "f:1", 2), cell_erase("a", "f:2", 2),
		cell_set("a", "f:2", 2, "the erased key set again"),
		cell_erase("b", "f:1", 1), cell_erase("c", "g:", 0),
	};
	const size_t n = sizeof cells / sizeof cells[0];

	/* cells[3] has the key of cells[2]: fine unsorted only. */
	round_trip_cells(cells, n, 0);
	round_trip_cells(cells, 3, IG_PACKED_SORTED);
	round_trip_cells(cells + 4, 2, IG_PACKED_SORTED);
}

static void test_empty_values(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {
		cell_set("a", "f:", 3, ""), cell_set("a", "f:x", 3, ""),
		cell_set("b", "f:x", 3, "v"), cell_set("c", "f:x", 3, ""),
		cell_set("d", "g:", 3, ""),
	};
	const size_t n = sizeof cells / sizeof cells[0];

	round_trip_cells(cells, n, IG_PACKED_SORTED);
	round_trip_cells(cells, n, 0);
	round_trip_cells(cells, 1, 0);
}

/* Rows that are prefixes of each other, in both directions, and rows that
 * share long prefixes: every prefix length from 0 to the whole row. */
static void test_prefix_rows(void **unused)
{
	(void)unused;
	const ig_cell_t grow[] = {
		cell_set("a", "f:", 1, "1"), cell_set("ab", "f:", 1, "2"),
		cell_set("abc", "f:", 1, "3"), cell_set("abcd", "f:", 1, "4"),
		cell_set("abd", "f:", 1, "5"), cell_set("b", "f:", 1, "6"),
		cell_set("ba", "f:", 1, "7"),
	};
	round_trip_cells(grow, sizeof grow / sizeof grow[0], IG_PACKED_SORTED);

	/* Unsorted: a row followed by its own prefix, then by itself again
	 * (not shared: not the previous row), then by a longer one. */
	const ig_cell_t shrink[] = {
		cell_set("abcd", "f:", 1, "1"), cell_set("abc", "f:", 1, "2"),
		cell_set("a", "f:", 1, "3"), cell_set("abcd", "f:", 1, "4"),
		cell_set("abcde", "f:", 1, "5"), cell_set("z", "f:", 1, "6"),
		cell_set("abcde", "f:", 1, "7"),
	};
	round_trip_cells(shrink, sizeof shrink / sizeof shrink[0], 0);

	/* 600 rows of 500 bytes that differ only near the end, and rows that
	 * differ at every position of a 64-byte stem. */
	enum { N = 600, RLEN = 500 };
	static char rows[N][RLEN + 1];
	static ig_cell_t cells[N];

	for (int i = 0; i < N; i++) {
		memset(rows[i], 'p', RLEN);
		snprintf(rows[i] + RLEN - 6, 7, "%06d", i);
		cells[i] = cell_set(rows[i], "f:q", i, i % 3 ? "v" : "");
	}
	round_trip_cells(cells, N, IG_PACKED_SORTED);

	static char stems[65][65];
	for (int i = 0; i <= 64; i++) {
		memset(stems[i], 's', 64);
		stems[i][64] = '\0';
		if (i < 64)
			stems[i][i] = 't';
	}
	for (int i = 0; i <= 64; i++)
		cells[i] = cell_set(stems[64 - i], "f:q", 1, "x");
	round_trip_cells(cells, 65, 0);
}

/* Long rows: 1000 bytes, and the format's largest (65535) with the largest
 * column, sharing with a neighbour or not. */
static void test_long_rows(void **unused)
{
	(void)unused;
	static char r1[1001], r2[1001], big[IG_ROW_MAX + 1], big2[IG_ROW_MAX + 1];
	static char col[IG_COLUMN_MAX + 1];

	memset(r1, 'r', 1000);
	memcpy(r2, r1, 1000);
	r2[999] = 's';
	memset(big, 'x', IG_ROW_MAX);
	memcpy(big2, big, IG_ROW_MAX);
	big2[0] = 'y';
	memset(col, 'q', IG_COLUMN_MAX);
	col[0] = 'f';
	col[1] = ':';

	const ig_cell_t cells[] = {
		cell_set(r1, "f:a", 2, "one"), cell_set(r1, "f:b", 2, "two"),
		cell_set(r2, "f:a", 2, "three"), cell_set(big, col, 1, "four"),
		cell_set(big, col, 0, "five"), cell_set(big2, col, 0, ""),
	};
	const size_t n = sizeof cells / sizeof cells[0];

	round_trip_cells(cells, n, IG_PACKED_SORTED);
	round_trip_cells(cells, n, 0);
}

/* Binary rows and values, with zero and 0xff bytes everywhere, and
 * timestamps at the ends of their range (word differences wrap). */
static void test_binary_and_extremes(void **unused)
{
	(void)unused;
	static const uint8_t r0[] = {0x00}, r1[] = {0x00, 0x00}, r2[] = {0xff, 0x00, 0xff};
	static const uint8_t v[] = {0x00, 0xff, 0x00, 0x80};
	const ig_cell_t cells[] = {
		{.key = {.row = r0, .row_len = 1, .column = "f:\xff", .column_len = 3,
			 .timestamp = INT64_MAX}, .value = v, .value_len = 4},
		{.key = {.row = r0, .row_len = 1, .column = "f:\xff", .column_len = 3,
			 .timestamp = INT64_MIN}, .value = v, .value_len = 1},
		{.key = {.row = r1, .row_len = 2, .column = "f:\x00", .column_len = 3,
			 .timestamp = 0}, .kind = IG_CELL_ERASURE},
		{.key = {.row = r2, .row_len = 3, .column = "f:", .column_len = 2,
			 .timestamp = -1}, .value = v, .value_len = 4},
	};
	const size_t n = sizeof cells / sizeof cells[0];

	round_trip_cells(cells, n, IG_PACKED_SORTED);
	round_trip_cells(cells, n, 0);
}

/* One random cell in its own buffers. */
typedef struct rcell {
	char row[300], col[24];
	uint8_t val[48];
} rcell_t;

static int cmp_cells(const void *a, const void *b)
{
	return ig_cell_cmp(a, b);
}

/* 200 random blocks from a seeded PRNG: few distinct bytes, so rows and
 * columns repeat, prefixes are shared and neighbours are often equal. */
static void test_random_blocks(void **unused)
{
	(void)unused;
	static const char *const cols[] = {"f:", "f:a", "f:ab", "g:x", "cf:qualifier", "g:y"};
	enum { MAXN = 80 };
	static rcell_t store[MAXN];
	ig_cell_t cells[MAXN];
	uint64_t s = 0x9e3779b97f4a7c15ull;
	size_t coded_total = 0, raw_total = 0;

	for (int blk = 0; blk < 200; blk++) {
		size_t n = rng_next(&s) % MAXN;
		bool long_rows = rng_next(&s) % 4 == 0;

		for (size_t i = 0; i < n; i++) {
			rcell_t *rc = &store[i];
			ig_cell_t *c = &cells[i];
			uint64_t r = rng_next(&s);

			if (i > 0 && r % 3 == 0) {
				memcpy(rc->row, store[i - 1].row, sizeof rc->row);
			} else {
				size_t len = 1 + rng_next(&s) % (long_rows ? 299 : 6);
				for (size_t j = 0; j < len; j++) {
					bool stem = long_rows && j + 3 < len;
					rc->row[j] = stem ? 'L' : (char)('a' + rng_next(&s) % 3);
				}
				rc->row[len] = '\0';
			}
			snprintf(rc->col, sizeof rc->col, "%s", cols[(r >> 8) % 6]);
			size_t vlen = (r >> 16) % 4 == 0 ? 0 : (r >> 20) % sizeof rc->val;
			for (size_t j = 0; j < vlen; j++)
				rc->val[j] = (uint8_t)rng_next(&s);
			*c = (ig_cell_t){
				.key = {.row = rc->row, .row_len = (uint32_t)strlen(rc->row),
					.column = rc->col, .column_len = (uint32_t)strlen(rc->col),
					.timestamp = (int64_t)(rng_next(&s) % 5) - 2},
				.value = rc->val, .value_len = (uint32_t)vlen,
			};
			if ((r >> 32) % 5 == 0) {
				c->kind = IG_CELL_ERASURE;
				c->value = NULL;
				c->value_len = 0;
			}
		}

		unsigned flags = 0;
		if (blk % 2) {
			/* Sorted: order the cells and keep one per key. */
			size_t m = 0;
			flags = IG_PACKED_SORTED;
			qsort(cells, n, sizeof cells[0], cmp_cells);
			for (size_t i = 0; i < n; i++) {
				const ig_cell_key_t *k = &cells[i].key;
				if (m == 0 || ig_cell_key_cmp(&cells[m - 1].key, k) != 0)
					cells[m++] = cells[i];
			}
			n = m;
		}

		size_t len, clen;
		uint8_t *b = build(cells, n, flags, &len);
		uint8_t *c = code(b, len, &clen);
		assert_round_trip(b, len);
		raw_total += len;
		coded_total += clen;
		free(c);
		free(b);
	}
	/* Shared prefixes are not stored twice: the codings are smaller. */
	assert_true(coded_total < raw_total);
}

/* ---- blocks the encoder refuses ----------------------------------------------- */

/* A second row that is a new string equal to the first: the builder would
 * have shared it. Only the pool bytes change (plus the checksum). */
static void test_refuses_unshared_equal_row(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {cell_set("ra", "f:a", 1, "x"), cell_set("rb", "f:b", 2, "y")};
	size_t len;
	uint8_t *b = build(cells, 2, 0, &len);

	assert_round_trip(b, len);
	memcpy(pool_of(b) + ig__ld32(entry(b, 1) + IG__PK_E_ROW_OFF), "ra", 2);
	reseal(b, len);
	assert_not_coded(b, len);
	free(b);
}

/* The same for a column. */
static void test_refuses_unshared_equal_column(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {cell_set("ra", "f:a", 1, "x"), cell_set("rb", "f:b", 2, "y")};
	size_t len;
	uint8_t *b = build(cells, 2, 0, &len);

	memcpy(pool_of(b) + ig__ld32(entry(b, 1) + IG__PK_E_COL_OFF), "f:a", 3);
	reseal(b, len);
	assert_not_coded(b, len);
	free(b);
}

/* Pool bytes no entry points at, before the strings or after them. */
static void test_refuses_unreferenced_bytes(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {cell_set("row", "f:q", 1, "value"),
				   cell_set("row", "f:r", 1, "")};
	size_t len;
	uint8_t *b = build(cells, 2, IG_PACKED_SORTED, &len);
	const size_t fixed = IG_PACKED_HEADER + 2 * IG_PACKED_ENTRY, pool = len - fixed - 4;

	for (int front = 0; front < 2; front++) {
		const size_t extra = 3, big = len + extra;
		uint8_t *g = dup_n(NULL, big);

		memcpy(g, b, fixed);
		ig__st32(g + IG__PK_H_LENGTH, (uint32_t)big);
		if (front) {
			memset(g + fixed, 'z', extra);
			memcpy(g + fixed + extra, b + fixed, pool);
			/* Every offset moves up past the new bytes (an empty
			 * value keeps offset 0). */
			for (size_t i = 0; i < 2; i++) {
				uint8_t *e = entry(g, i);
				size_t last = ig__ld32(e + IG__PK_E_VAL_LEN) ? 3 : 2;

				for (size_t f = 0; f < last; f++) {
					uint8_t *w = e + IG__PK_E_ROW_OFF + 4 * f;
					ig__st32(w, ig__ld32(w) + (uint32_t)extra);
				}
			}
		} else {
			memcpy(g + fixed, b + fixed, pool);
			memset(g + fixed + pool, 'z', extra);
		}
		reseal(g, big);
		assert_not_coded(g, big);
		free(g);
	}
	free(b);
}

/* A value pointing at the previous cell's equal value (its own bytes left
 * unreferenced), and a cell whose row and value trade places. */
static void test_refuses_other_arrangements(void **unused)
{
	(void)unused;
	const ig_cell_t two[] = {cell_set("ra", "f:a", 1, "xy"), cell_set("rb", "f:b", 2, "xy")};
	size_t len;
	uint8_t *b = build(two, 2, 0, &len);

	ig__st32(entry(b, 1) + IG__PK_E_VAL_OFF, ig__ld32(entry(b, 0) + IG__PK_E_VAL_OFF));
	reseal(b, len);
	assert_not_coded(b, len);
	free(b);

	const ig_cell_t one = cell_set("ab", "f:q", 1, "cd");
	b = build(&one, 1, 0, &len);
	uint8_t *e = entry(b, 0), *pool = pool_of(b);
	uint32_t row = ig__ld32(e + IG__PK_E_ROW_OFF), val = ig__ld32(e + IG__PK_E_VAL_OFF);
	memcpy(pool + row, "cd", 2);
	memcpy(pool + val, "ab", 2);
	ig__st32(e + IG__PK_E_ROW_OFF, val);
	ig__st32(e + IG__PK_E_VAL_OFF, row);
	reseal(b, len);
	assert_not_coded(b, len);
	free(b);
}

/* ---- damaged codings ---------------------------------------------------------- */

/* Every byte of a coding, changed to each of its 255 other values: either
 * refused with an offset inside the coding, or decoded to some block. */
static void test_every_byte_change(void **unused)
{
	(void)unused;
	size_t len, clen;
	uint8_t *b = mixed_block(&len);
	uint8_t *c = code(b, len, &clen);
	uint8_t *m = dup_n(c, clen);
	size_t refused = 0, decoded = 0;

	for (size_t at = 0; at < clen; at++) {
		for (unsigned d = 1; d < 256; d++) {
			m[at] = (uint8_t)(c[at] ^ d);
			if (decode(m, clen, len) == 0)
				decoded++;
			else
				refused++;
		}
		m[at] = c[at];
	}
	assert_int_equal(decode(c, clen, len), 0);
	/* The header, the streams and the trailer are copied unchecked;
	 * entry words are checked where the format allows it. */
	assert_true(refused > 0 && decoded > 0);
	free(m);
	free(c);
	free(b);
}

/* Every truncation, and every extension by up to 40 bytes, is refused; so
 * is a raw length that does not match the coding. */
static void test_truncation_and_lengths(void **unused)
{
	(void)unused;
	size_t len, clen;
	uint8_t *b = mixed_block(&len);
	uint8_t *c = code(b, len, &clen);

	for (size_t k = 0; k < clen; k++) {
		assert_int_equal(decode(c, k, len), IG_ECORRUPT);
		assert_int_equal(decode(c, k, k), IG_ECORRUPT);
	}
	uint8_t *longer = dup_n(NULL, clen + 40);
	memcpy(longer, c, clen);
	memset(longer + clen, 0, 40);
	for (size_t k = clen + 1; k <= clen + 40; k++) {
		assert_int_equal(decode(longer, k, len), IG_ECORRUPT);
		assert_int_equal(decode(longer, k, len + (k - clen)), IG_ECORRUPT);
	}
	free(longer);

	for (size_t raw = 0; raw < len + 64; raw++)
		assert_int_equal(decode(c, clen, raw), raw == len ? 0 : IG_ECORRUPT);
	free(c);
	free(b);
}

/* A count field larger than the coding can hold is refused at the count;
 * larger counts that still fit are refused somewhere too. */
static void test_count_too_large(void **unused)
{
	(void)unused;
	size_t len, clen;
	uint8_t *b = mixed_block(&len);
	uint8_t *c = code(b, len, &clen);
	uint8_t *m = dup_n(c, clen);
	const uint32_t n = ig__ld32(c + IG__PK_H_COUNT);
	const uint32_t fits = (uint32_t)((clen - IG_PACKED_OVERHEAD) / IG_PACKED_ENTRY);
	const uint32_t huge[] = {fits + 1, fits + 2, UINT32_MAX, UINT32_MAX / IG_PACKED_ENTRY + 1,
				 0x80000000u};

	uint8_t *out = dup_n(NULL, len);

	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		size_t err = SENTINEL_OFF;

		ig__st32(m + IG__PK_H_COUNT, huge[i]);
		assert_int_equal(decode(m, clen, len), IG_ECORRUPT);
		assert_int_equal(ig__columns_decode(m, clen, out, len, &err), IG_ECORRUPT);
		assert_int_equal(err, IG__PK_H_COUNT);
	}
	free(out);
	for (uint32_t k = n + 1; k <= fits; k++) {
		ig__st32(m + IG__PK_H_COUNT, k);
		assert_int_equal(decode(m, clen, len), IG_ECORRUPT);
	}
	free(m);
	free(c);
	free(b);
}

/* Codings whose entry words are wrong in each way docs/formats.md
 * ("Columnar coding") lists: refused, naming a byte of the word at fault.
 * Word k of cell i is where the format page puts it. */
static void test_bad_words(void **unused)
{
	(void)unused;
	/* Cell 1's row shares 2 bytes with cell 0's; its column is longer. */
	const ig_cell_t cells[] = {cell_set("ab", "f:a", 1, "x"), cell_set("abc", "f:bb", 1, "y")};
	const size_t n = 2;
	size_t len, clen, err;
	uint8_t *b = build(cells, n, 0, &len);
	uint8_t *c = code(b, len, &clen);
	uint8_t *m = dup_n(c, clen);
	uint8_t *out = dup_n(NULL, len);
	const struct {
		size_t k, i;
		uint32_t v;
	} cases[] = {
		{2, 0, 1},           /* cell 0 shares a prefix with no row */
		{2, 1, 3},           /* longer than the previous row */
		{2, 1, 4},           /* longer than both rows */
		{3, 0, 1},           /* cell 0's column shared */
		{3, 1, 2},           /* a column flag of 2 */
		{3, 1, 1},           /* shared, but the lengths differ */
		{4, 0, 1},           /* a value offset left in */
		{4, 1, 0x80000000u},
	};

	assert_int_equal(ig__ld32(c + IG_PACKED_HEADER + 4 * (2 * n + 1)), 2);
	for (size_t j = 0; j < sizeof cases / sizeof cases[0]; j++) {
		size_t at = IG_PACKED_HEADER + 4 * (cases[j].k * n + cases[j].i);

		memcpy(m, c, clen);
		ig__st32(m + at, cases[j].v);
		err = SENTINEL_OFF;
		assert_int_equal(ig__columns_decode(m, clen, out, len, &err), IG_ECORRUPT);
		assert_in_range(err, at, at + 3);
	}
	free(out);
	free(m);
	free(c);
	free(b);
}

/* Decoded entries get every check ig_packed_open makes: kinds, reserved
 * bytes, lengths, families, key order in a sorted block; and stream sizes
 * past the coding are refused. Each damaged coding is refused. */
static void test_decoder_checks_entries(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {cell_set("ab", "f:a", 2, "x"), cell_set("ac", "f:b", 1, "y")};
	const ig_cell_t versions[] = {cell_set("ab", "f:a", 2, "x"), cell_set("ab", "f:a", 1, "y")};
	const size_t n = 2, streams = IG_PACKED_HEADER + 32 * n + 8;
	size_t len, clen, vlen, vclen;
	uint8_t *b = build(cells, n, IG_PACKED_SORTED, &len);
	uint8_t *c = code(b, len, &clen);
	uint8_t *vb = build(versions, n, IG_PACKED_SORTED, &vlen);
	uint8_t *vc = code(vb, vlen, &vclen);
	const struct {
		bool versions;  /* edit the coding of `versions`, not `cells` */
		size_t at;      /* a word (4 bytes) or a stream byte (1) */
		uint32_t v;
		int width;
	} cases[] = {
		{false, IG_PACKED_HEADER + 4 * (7 * n + 1), 0x02000000u, 4},  /* kind 2 */
		{false, IG_PACKED_HEADER + 4 * (7 * n + 1), 0x00000001u, 4},  /* reserved */
		{false, IG_PACKED_HEADER + 4 * (7 * n + 0), 0x01000000u, 4},  /* erasure, value */
		{false, IG_PACKED_HEADER + 4 * (6 * n + 0), 0x00000003u, 4},  /* row of 0 */
		{false, IG_PACKED_HEADER + 4 * (6 * n + 0), 0x00020001u, 4},  /* column of 1 */
		{false, IG_PACKED_HEADER + 4 * (5 * n + 0), IG_VALUE_MAX + 1, 4},
		{false, IG_PACKED_HEADER + 32 * n, 0xffffffffu, 4},           /* R past E */
		{false, IG_PACKED_HEADER + 32 * n + 4, 0xffffffffu, 4},       /* C past E */
		{false, IG_PACKED_HEADER + 32 * n, 0x80000000u, 4},
		{false, streams + 2, 'a', 1},        /* row "aa" after "ab" */
		{false, streams + 3, ':', 1},        /* column ":a": no family */
		{true, IG_PACKED_HEADER + 4 * (1 * n + 1), 2, 4},  /* the same key twice */
		{true, IG_PACKED_HEADER + 4 * (1 * n + 1), 3, 4},  /* timestamps ascending */
	};

	/* The layout the cases assume: R = 3 ("ab", then "c" past "a"). */
	assert_int_equal(ig__ld32(c + IG_PACKED_HEADER + 32 * n), 3);
	assert_memory_equal(c + streams, "abcf:af:b", 9);
	assert_int_equal(decode(c, clen, len), 0);
	assert_int_equal(decode(vc, vclen, vlen), 0);
	for (size_t j = 0; j < sizeof cases / sizeof cases[0]; j++) {
		size_t cl = cases[j].versions ? vclen : clen;
		size_t raw = cases[j].versions ? vlen : len;
		uint8_t *m = dup_n(cases[j].versions ? vc : c, cl);

		if (cases[j].width == 4)
			ig__st32(m + cases[j].at, cases[j].v);
		else
			m[cases[j].at] = (uint8_t)cases[j].v;
		assert_int_equal(decode(m, cl, raw), IG_ECORRUPT);
		free(m);
	}
	free(vc);
	free(vb);
	free(c);
	free(b);
}

/* ---- why: zstd does better on the coding ------------------------------------- */

/* 130 cells of a typical data block: sequential 16-digit rows, one column,
 * one timestamp, 100-byte values (50 random bytes, 50 random letters).
 * zstd level 3 must make the coding at least 4% smaller than the block. */
static void test_compresses_better(void **unused)
{
	(void)unused;
	enum { N = 130, VLEN = 100 };
	static char rows[N][17];
	static uint8_t vals[N][VLEN];
	ig_cell_t cells[N];
	uint64_t s = 42;

	for (int i = 0; i < N; i++) {
		snprintf(rows[i], sizeof rows[i], "%016llu", 4000000000000000ull + (unsigned)i);
		for (int j = 0; j < VLEN; j++)
			vals[i][j] = j < 50 ? (uint8_t)rng_next(&s)
					    : (uint8_t)('a' + rng_next(&s) % 26);
		cells[i] = cell_set(rows[i], "v:", 1700000000000000, "");
		cells[i].value = vals[i];
		cells[i].value_len = VLEN;
	}

	size_t len, clen;
	uint8_t *b = build(cells, N, IG_PACKED_SORTED, &len);
	uint8_t *c = code(b, len, &clen);
	size_t bound = ZSTD_compressBound(len);
	uint8_t *z = dup_n(NULL, bound);

	assert_round_trip(b, len);
	size_t zraw = ZSTD_compress(z, bound, b, len, 3);
	assert_false(ZSTD_isError(zraw));
	size_t zcoded = ZSTD_compress(z, bound, c, clen, 3);
	assert_false(ZSTD_isError(zcoded));
	print_message("block %zu bytes, coding %zu; zstd -3: %zu vs %zu (%.1f%% smaller)\n", len,
		      clen, zraw, zcoded, 100.0 * (double)(zraw - zcoded) / (double)zraw);
	assert_true(zcoded * 100 <= zraw * 96);
	free(z);
	free(c);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_block),
		cmocka_unit_test(test_one_cell),
		cmocka_unit_test(test_format_example),
		cmocka_unit_test(test_rows_columns_versions),
		cmocka_unit_test(test_erasures),
		cmocka_unit_test(test_empty_values),
		cmocka_unit_test(test_prefix_rows),
		cmocka_unit_test(test_long_rows),
		cmocka_unit_test(test_binary_and_extremes),
		cmocka_unit_test(test_random_blocks),
		cmocka_unit_test(test_refuses_unshared_equal_row),
		cmocka_unit_test(test_refuses_unshared_equal_column),
		cmocka_unit_test(test_refuses_unreferenced_bytes),
		cmocka_unit_test(test_refuses_other_arrangements),
		cmocka_unit_test(test_every_byte_change),
		cmocka_unit_test(test_truncation_and_lengths),
		cmocka_unit_test(test_count_too_large),
		cmocka_unit_test(test_bad_words),
		cmocka_unit_test(test_decoder_checks_entries),
		cmocka_unit_test(test_compresses_better),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
