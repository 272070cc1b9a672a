/* Tests of packed cell blocks (storage/packed.c, storage/packed_read.c):
 * round trips, the exact bytes of the format (docs/formats.md, "Packed cell
 * block"), in-place building with a full buffer, sorted blocks and seek,
 * and the refusal of malformed blocks with IG_ECORRUPT at the documented
 * offset. Offsets below are written as numbers from the format page, not
 * taken from the implementation's headers, so the page is what is tested.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ingot/storage.h>

#include "cells.h"

/* The example of docs/formats.md: sorted, two cells sharing a row. */
static const uint8_t example[93] = {
	0x49, 0x47, 0x50, 0x43, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
	0x00, 0x5d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03,
	0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
	0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x02, 0x00, 0x03, 0x01, 0x00, 0x00, 0x00, 0x66, 0x3a, 0x62, 0x72,
	0x31, 0x66, 0x3a, 0x61, 0x78, 0x8e, 0xe2, 0x21, 0x0d,
};

#define SENTINEL_OFF ((size_t)0xabcdef)

/* ---- helpers ------------------------------------------------------------------ */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Rewrites the trailer after a test edits a block, so the edit reaches the
 * checks behind the checksum. */
static void reseal(uint8_t *b, size_t len)
{
	put32(b + len - 4, ig_crc32c(0, b, len - 4));
}

/* Asserts a clean refusal at `at`, with *out untouched. */
static void assert_corrupt_at(const uint8_t *b, size_t len, size_t at)
{
	ig_packed_t p;
	size_t off = SENTINEL_OFF;

	memset(&p, 0x5a, sizeof p);
	assert_int_equal(ig_packed_open(b, len, &p, &off), IG_ECORRUPT);
	assert_int_equal(off, at);
	for (size_t i = 0; i < sizeof p; i++)
		assert_int_equal(((const uint8_t *)&p)[i], 0x5a);
	/* err_offset is optional. */
	assert_int_equal(ig_packed_open(b, len, &p, NULL), IG_ECORRUPT);
}

/* Encodes into a fresh buffer of exactly the size ig_packed_size gives. */
static uint8_t *encode(const ig_cell_t *cells, size_t n, unsigned flags, size_t *len)
{
	size_t want;
	assert_int_equal(ig_packed_size(cells, n, &want), 0);
	uint8_t *buf = malloc(want);
	assert_non_null(buf);
	assert_int_equal(ig_packed_encode(cells, n, flags, buf, want, len), 0);
	assert_int_equal(*len, want);
	return buf;
}

static void assert_block_holds(const uint8_t *b, size_t len, const ig_cell_t *cells, size_t n)
{
	ig_packed_t p;
	size_t off = SENTINEL_OFF;
	assert_int_equal(ig_packed_open(b, len, &p, &off), 0);
	assert_int_equal(off, SENTINEL_OFF);
	assert_int_equal(ig_packed_count(&p), n);
	for (uint32_t i = 0; i < n; i++) {
		ig_cell_t c;
		assert_int_equal(ig_packed_cell(&p, i, &c), 0);
		assert_int_equal(ig_cell_check(&c), 0);
		assert_true(cells_equal(&c, &cells[i]));
	}
	ig_cell_t c;
	assert_int_equal(ig_packed_cell(&p, (uint32_t)n, &c), IG_ERANGE);
}

/* ---- building and reading ----------------------------------------------------- */

static void test_example_bytes(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {cell_set("r1", "f:a", 1, "x"), cell_erase("r1", "f:b", 0)};
	uint8_t buf[256];
	size_t len, size;

	assert_int_equal(ig_packed_size(cells, 2, &size), 0);
	assert_int_equal(size, sizeof example);
	assert_int_equal(ig_packed_encode(cells, 2, IG_PACKED_SORTED, buf, sizeof buf, &len), 0);
	assert_int_equal(len, sizeof example);
	assert_memory_equal(buf, example, sizeof example);
	assert_block_holds(example, sizeof example, cells, 2);

	ig_packed_t p;
	assert_int_equal(ig_packed_open(example, sizeof example, &p, NULL), 0);
	assert_true(ig_packed_is_sorted(&p));
}

static void test_empty_block(void **unused)
{
	(void)unused;
	uint8_t buf[IG_PACKED_OVERHEAD];
	size_t len;
	ig_packed_t p;

	assert_int_equal(ig_packed_encode(NULL, 0, 0, buf, sizeof buf, &len), 0);
	assert_int_equal(len, IG_PACKED_OVERHEAD);
	assert_int_equal(ig_packed_open(buf, len, &p, NULL), 0);
	assert_int_equal(ig_packed_count(&p), 0);
	assert_false(ig_packed_is_sorted(&p));
	uint32_t idx = 99;
	ig_cell_key_t k = cell_set("a", "f:", 0, "").key;
	assert_int_equal(ig_packed_seek(&p, &k, &idx), IG_ESTATE);
	assert_int_equal(idx, 99);
}

/* Unsorted blocks keep the caller's order, duplicates and all. */
static void test_round_trip_unsorted(void **unused)
{
	(void)unused;
	static uint8_t big[IG_VALUE_MAX];
	const ig_cell_t cells[] = {
		cell_set("zeta", "f:q", 5, "five"),
		cell_set("zeta", "f:q", 5, "again"),  /* same key twice */
		cell_erase("zeta", "f:q", 5),
		cell_set("alpha", "g:", INT64_MIN, ""),
		cell_set("alpha", "g:", INT64_MAX, "max"),
		cell_set("zeta", "g:", -1, "back to zeta"),
		{.key = {.row = big, .row_len = IG_ROW_MAX, .column = "f:", .column_len = 2},
		 .value = big, .value_len = IG_VALUE_MAX},
	};
	const size_t n = sizeof cells / sizeof cells[0];
	size_t len;
	uint8_t *b = encode(cells, n, 0, &len);
	assert_block_holds(b, len, cells, n);
	free(b);
}

/* The bytes depend only on the cells: a huge buffer and an exact one give
 * the same block, and building cell by cell equals encoding at once. */
static void test_independent_of_buffer_size(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {
		cell_set("a", "f:1", 3, "x"), cell_set("a", "f:2", 3, "yy"),
		cell_set("a", "f:2", 2, "zzz"), cell_set("b", "f:1", 9, ""),
		cell_erase("c", "f:1", 1),
	};
	const size_t n = sizeof cells / sizeof cells[0];
	size_t len_exact, len_big;
	uint8_t *exact = encode(cells, n, IG_PACKED_SORTED, &len_exact);
	uint8_t *big = malloc(1 << 16);
	ig_packed_builder_t b;

	assert_non_null(big);
	memset(big, 0xee, 1 << 16);
	assert_int_equal(ig_packed_builder_init(&b, big, 1 << 16, IG_PACKED_SORTED), 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ig_packed_builder_append(&b, &cells[i]), 0);
		assert_int_equal(ig_packed_builder_count(&b), i + 1);
	}
	assert_int_equal(ig_packed_builder_size(&b), len_exact);
	assert_int_equal(ig_packed_builder_finish(&b, &len_big), 0);
	assert_int_equal(len_big, len_exact);
	assert_memory_equal(big, exact, len_exact);
	free(big);
	free(exact);
}

/* Sharing: the row is stored once for all its columns, and a column once
 * for consecutive versions, and the size says so. */
static void test_shared_strings(void **unused)
{
	(void)unused;
	const char *row = "a-rather-long-row-key";
	const ig_cell_t cells[] = {
		cell_set(row, "fam:col", 3, "1"),
		cell_set(row, "fam:col", 2, "2"),
		cell_set(row, "fam:other", 1, "3"),
	};
	size_t size, rl = strlen(row);
	assert_int_equal(ig_packed_size(cells, 3, &size), 0);
	assert_int_equal(size, IG_PACKED_OVERHEAD + 3 * IG_PACKED_ENTRY + rl + 7 + 9 + 3);
	size_t bound = IG_PACKED_OVERHEAD;
	for (int i = 0; i < 3; i++)
		bound += ig_packed_cell_size(&cells[i]);
	assert_true(size < bound);
	size_t len;
	uint8_t *b = encode(cells, 3, 0, &len);
	assert_block_holds(b, len, cells, 3);
	free(b);
}

/* A full buffer refuses the cell that does not fit, leaves the builder as
 * it was, and still finishes a valid block of what fitted. */
static void test_full_buffer(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {cell_set("r", "f:a", 1, "one"), cell_set("s", "f:b", 2, "two")};
	size_t need, len;
	assert_int_equal(ig_packed_size(cells, 2, &need), 0);

	uint8_t *buf = malloc(need);
	assert_non_null(buf);
	ig_packed_builder_t b;

	/* Exactly enough. */
	assert_int_equal(ig_packed_encode(cells, 2, 0, buf, need, &len), 0);
	assert_int_equal(len, need);
	/* One byte short. */
	assert_int_equal(ig_packed_encode(cells, 2, 0, buf, need - 1, &len), IG_EFULL);

	assert_int_equal(ig_packed_builder_init(&b, buf, need - 1, 0), 0);
	assert_int_equal(ig_packed_builder_append(&b, &cells[0]), 0);
	size_t before = ig_packed_builder_size(&b);
	assert_int_equal(ig_packed_builder_append(&b, &cells[1]), IG_EFULL);
	assert_int_equal(ig_packed_builder_count(&b), 1);
	assert_int_equal(ig_packed_builder_size(&b), before);
	assert_int_equal(ig_packed_builder_finish(&b, &len), 0);
	assert_int_equal(len, before);
	assert_block_holds(buf, len, cells, 1);

	/* The smallest buffer holds an empty block and nothing more. */
	assert_int_equal(ig_packed_builder_init(&b, buf, IG_PACKED_OVERHEAD, 0), 0);
	assert_int_equal(ig_packed_builder_append(&b, &cells[0]), IG_EFULL);
	assert_int_equal(ig_packed_builder_finish(&b, &len), 0);
	assert_int_equal(len, IG_PACKED_OVERHEAD);
	assert_block_holds(buf, len, cells, 0);
	free(buf);
}

static void test_builder_misuse(void **unused)
{
	(void)unused;
	uint8_t buf[128];
	ig_packed_builder_t b;
	size_t len = 777;
	ig_cell_t good = cell_set("r", "f:q", 0, "v"), bad = cell_set("", "f:q", 0, "v");

	assert_int_equal(ig_packed_builder_init(&b, buf, IG_PACKED_OVERHEAD - 1, 0), IG_EINVAL);
	assert_int_equal(ig_packed_builder_init(&b, NULL, sizeof buf, 0), IG_EINVAL);
	assert_int_equal(ig_packed_builder_init(&b, buf, sizeof buf, 2), IG_EINVAL);
	assert_int_equal(ig_packed_builder_init(&b, buf, sizeof buf, 0), 0);
	assert_int_equal(ig_packed_builder_append(&b, &bad), IG_EINVAL);
	assert_int_equal(ig_packed_builder_count(&b), 0);
	assert_int_equal(ig_packed_builder_append(&b, &good), 0);
	assert_int_equal(ig_packed_builder_finish(&b, &len), 0);
	size_t first = len;
	assert_int_equal(ig_packed_builder_finish(&b, &len), IG_ESTATE);
	assert_int_equal(len, first);
	assert_int_equal(ig_packed_builder_append(&b, &good), IG_ESTATE);

	size_t size = 5;
	assert_int_equal(ig_packed_size(&bad, 1, &size), IG_EINVAL);
	assert_int_equal(size, 5);
	assert_int_equal(ig_packed_size(NULL, 1, &size), IG_EINVAL);
	assert_int_equal(ig_packed_encode(&bad, 1, 0, buf, sizeof buf, &len), IG_EINVAL);
}

/* ---- sorted blocks ------------------------------------------------------------ */

static void test_sorted_builder_refuses_disorder(void **unused)
{
	(void)unused;
	uint8_t buf[512];
	ig_packed_builder_t b;
	ig_cell_t c1 = cell_set("r", "f:q", 5, "v"), c0 = cell_set("r", "f:q", 6, "v");
	ig_cell_t dup = cell_erase("r", "f:q", 5), c2 = cell_set("r", "f:q", 4, "v");

	assert_int_equal(ig_packed_builder_init(&b, buf, sizeof buf, IG_PACKED_SORTED), 0);
	assert_int_equal(ig_packed_builder_append(&b, &c1), 0);
	assert_int_equal(ig_packed_builder_append(&b, &c0), IG_EINVAL);   /* newer after older */
	assert_int_equal(ig_packed_builder_append(&b, &c1), IG_EINVAL);   /* equal key */
	assert_int_equal(ig_packed_builder_append(&b, &dup), IG_EINVAL);  /* equal key */
	assert_int_equal(ig_packed_builder_append(&b, &c2), 0);
	assert_int_equal(ig_packed_builder_count(&b), 2);

	/* Unsorted builders take anything. */
	assert_int_equal(ig_packed_builder_init(&b, buf, sizeof buf, 0), 0);
	assert_int_equal(ig_packed_builder_append(&b, &c1), 0);
	assert_int_equal(ig_packed_builder_append(&b, &c0), 0);
	assert_int_equal(ig_packed_builder_append(&b, &c1), 0);
}

static void test_sorted_flag_is_checked(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {cell_set("a", "f:", 1, "x"), cell_set("b", "f:", 1, "y"),
				   cell_set("a", "f:", 1, "z")};
	size_t len;
	uint8_t *b = encode(cells, 3, 0, &len);

	b[5] = 1;  /* claim sorted */
	reseal(b, len);
	assert_corrupt_at(b, len, 16 + 2 * 32);  /* the third entry breaks the order */

	uint8_t *d = encode(cells, 2, 0, &len);  /* "a" then "b": in order */
	d[5] = 1;
	reseal(d, len);
	assert_block_holds(d, len, cells, 2);
	free(d);

	/* Equal keys break strict order too. */
	const ig_cell_t twins[] = {cell_set("a", "f:", 1, "x"), cell_set("a", "f:", 1, "y")};
	d = encode(twins, 2, 0, &len);
	d[5] = 1;
	reseal(d, len);
	assert_corrupt_at(d, len, 16 + 32);
	free(d);
	free(b);
}

static void test_seek(void **unused)
{
	(void)unused;
	enum { N = 300 };
	ig_cell_t cells[N];
	char rows[N][8];

	for (int i = 0; i < N; i++) {
		snprintf(rows[i], sizeof rows[i], "r%04d", i / 3);
		cells[i] = cell_set(rows[i], "f:q", 100 - i % 3, "v");
	}
	size_t len;
	uint8_t *b = encode(cells, N, IG_PACKED_SORTED, &len);
	ig_packed_t p;
	uint32_t idx;

	assert_int_equal(ig_packed_open(b, len, &p, NULL), 0);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(ig_packed_seek(&p, &cells[i].key, &idx), 0);
		assert_int_equal(idx, i);
	}
	/* Between keys: the next one. A newer timestamp than any in a column
	 * lands on the column's first cell; an older one after its last. */
	ig_cell_key_t k = cell_set("r0005", "f:q", 1000, "").key;
	assert_int_equal(ig_packed_seek(&p, &k, &idx), 0);
	assert_int_equal(idx, 15);
	k.timestamp = -1000;
	assert_int_equal(ig_packed_seek(&p, &k, &idx), 0);
	assert_int_equal(idx, 18);
	k = cell_set("r0005", "", 0, "").key;  /* before every column */
	assert_int_equal(ig_packed_seek(&p, &k, &idx), 0);
	assert_int_equal(idx, 15);
	k = cell_set("", "", 0, "").key;
	assert_int_equal(ig_packed_seek(&p, &k, &idx), 0);
	assert_int_equal(idx, 0);
	k = cell_set("s", "", 0, "").key;
	assert_int_equal(ig_packed_seek(&p, &k, &idx), 0);
	assert_int_equal(idx, N);
	free(b);
}

/* ---- refusals ----------------------------------------------------------------- */

static void test_header_refusals(void **unused)
{
	(void)unused;
	uint8_t b[sizeof example + 8] = {0};
	const size_t n = sizeof example;

	assert_corrupt_at(b, 0, 0);
	assert_corrupt_at((const uint8_t *)"IG", 2, 2);  /* magic cut short */
	assert_corrupt_at((const uint8_t *)"IX", 2, 0);  /* wrong before cut */

	memcpy(b, example, n);
	b[3] = 'D';
	assert_corrupt_at(b, n, 0);

	memcpy(b, example, n);
	b[4] = 2;  /* a future version */
	assert_corrupt_at(b, n, 4);
	b[4] = 0;
	assert_corrupt_at(b, n, 4);

	memcpy(b, example, n);
	b[5] = 0x03;  /* unknown flag bit */
	assert_corrupt_at(b, n, 5);
	memcpy(b, example, n);
	b[7] = 1;
	assert_corrupt_at(b, n, 7);
	b[6] = 1;
	assert_corrupt_at(b, n, 6);

	/* Every prefix of the header is cut short where it ends... */
	for (size_t cut = 4; cut < 16; cut++)
		assert_corrupt_at(example, cut, cut);
	/* ...and so is every prefix of the block. */
	for (size_t cut = 16; cut < n; cut++)
		assert_corrupt_at(example, cut, cut);

	/* Trailing bytes are refused at the declared end. */
	memcpy(b, example, n);
	b[n] = 0;
	assert_corrupt_at(b, n + 1, n);

	/* A length below the minimum. */
	memcpy(b, example, n);
	put32(b + 12, 19);
	assert_corrupt_at(b, n, 12);

	/* More cells than the length can hold, including a count whose
	 * entries would overflow 32-bit arithmetic. */
	memcpy(b, example, n);
	put32(b + 8, 3);
	assert_corrupt_at(b, n, 8);
	put32(b + 8, 0xffffffffu);
	assert_corrupt_at(b, n, 8);

	/* A count that fits, with a bad checksum: the trailer. */
	memcpy(b, example, n);
	put32(b + 8, 1);
	assert_corrupt_at(b, n, n - 4);

	assert_int_equal(ig_packed_open(NULL, 1, &(ig_packed_t){0}, NULL), IG_EINVAL);
	assert_int_equal(ig_packed_open(example, n, NULL, NULL), IG_EINVAL);
}

/* Every single-bit flip anywhere in a block is refused (CRC32C detects all
 * of them), reported inside the block. */
static void test_every_bit_flip_refused(void **unused)
{
	(void)unused;
	uint8_t b[sizeof example];

	for (size_t i = 0; i < sizeof example; i++)
		for (int bit = 0; bit < 8; bit++) {
			ig_packed_t p;
			size_t off = SENTINEL_OFF;
			memcpy(b, example, sizeof b);
			b[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(ig_packed_open(b, sizeof b, &p, &off), IG_ECORRUPT);
			assert_true(off <= sizeof b);
		}
}

/* Entry fields, each broken on its own behind a valid checksum. The block
 * is the example: entries at 16 and 48, pool at 80 ("f:br1f:ax"). */
static void test_entry_refusals(void **unused)
{
	(void)unused;
	uint8_t b[sizeof example];
	const size_t n = sizeof example;
	const size_t e0 = 16, e1 = 48, pool = 80, pool_len = 9;

#define BREAK(stmt, at)                        \
	do {                                   \
		memcpy(b, example, n);         \
		stmt;                          \
		reseal(b, n);                  \
		assert_corrupt_at(b, n, (at)); \
	} while (0)

	BREAK(b[e0 + 28] = 2, e0 + 28);                     /* kind */
	BREAK(b[e1 + 28] = 0xff, e1 + 28);
	BREAK(b[e0 + 29] = 1, e0 + 29);                     /* reserved */
	BREAK(b[e1 + 31] = 1, e1 + 31);
	BREAK(put16(b + e0 + 24, 0), e0 + 24);              /* empty row */
	BREAK(put16(b + e0 + 24, 7), e0 + 8);               /* row past the pool */
	BREAK(put32(b + e0 + 8, 8), e0 + 8);
	BREAK(put32(b + e0 + 8, 0xffffffffu), e0 + 8);      /* offset + length wraps 32 bits */
	BREAK(put16(b + e1 + 26, 1), e1 + 26);              /* column under 2 bytes */
	BREAK(put16(b + e1 + 26, 0), e1 + 26);
	BREAK(put32(b + e1 + 12, 7), e1 + 12);              /* column past the pool */
	BREAK(put32(b + e1 + 12, 0xfffffffeu), e1 + 12);
	BREAK(b[pool + 1] = 'x', pool);                     /* "fxb": no ':' */
	BREAK(b[pool + 0] = ':', pool);                     /* ":b": empty family */
	BREAK(b[pool + 0] = ' ', pool);                     /* " :b": not printable */
	BREAK(put32(b + e1 + 12, 3), pool + 3);             /* column "r1f": no ':' */
	BREAK(put32(b + e0 + 20, IG_VALUE_MAX + 1), e0 + 20);
	BREAK(put32(b + e0 + 20, 2), e0 + 16);              /* value past the pool */
	BREAK(put32(b + e0 + 16, 0xffffffffu), e0 + 16);
	BREAK((put32(b + e1 + 16, 0), put32(b + e1 + 20, 1)), e1 + 20); /* erasure with a value */
	BREAK(put32(b + e1 + 16, 4), e1 + 16);              /* empty value, offset not 0 */
	/* A set may have an empty value at offset 0... */
	memcpy(b, example, n);
	put32(b + e0 + 16, 0);
	put32(b + e0 + 20, 0);
	reseal(b, n);
	ig_packed_t p;
	assert_int_equal(ig_packed_open(b, n, &p, NULL), 0);
	/* ...and strings may overlap or end exactly at the pool's end. */
	memcpy(b, example, n);
	put32(b + e0 + 16, (uint32_t)pool_len - 1);
	put32(b + e1 + 8, 3);
	reseal(b, n);
	assert_int_equal(ig_packed_open(b, n, &p, NULL), 0);
#undef BREAK
}

/* Random bytes behind a valid header and checksum: whatever the reader
 * accepts yields only valid cells. With few entries and a small pool,
 * some blocks pass, so both paths run. */
static void test_random_blocks(void **unused)
{
	(void)unused;
	uint64_t seed = 0x1234;
	uint8_t b[16 + 2 * 32 + 12 + 4];
	int accepted = 0;

	for (int round = 0; round < 200000; round++) {
		uint32_t count = (uint32_t)(rng_next(&seed) % 3);
		size_t len = 16 + count * 32 + rng_next(&seed) % 13 + 4;
		for (size_t i = 0; i < len; i++) {
			/* Mostly small bytes, so offsets and lengths often fit. */
			uint64_t r = rng_next(&seed);
			b[i] = (uint8_t)((r & 3) ? (r >> 8) % 6 : r >> 16);
		}
		memcpy(b, "IGPC\x01", 5);
		b[5] &= 1;
		b[6] = b[7] = 0;
		put32(b + 8, count);
		put32(b + 12, (uint32_t)len);
		/* Plausible columns now and then: "f:" at the pool start. */
		if (rng_next(&seed) & 1) {
			b[16 + count * 32] = 'f';
			b[16 + count * 32 + 1] = ':';
		}
		reseal(b, len);

		ig_packed_t p;
		size_t off = SENTINEL_OFF;
		int rc = ig_packed_open(b, len, &p, &off);
		if (rc != 0) {
			assert_int_equal(rc, IG_ECORRUPT);
			assert_true(off < len);
			continue;
		}
		accepted++;
		for (uint32_t i = 0; i < ig_packed_count(&p); i++) {
			ig_cell_t c;
			assert_int_equal(ig_packed_cell(&p, i, &c), 0);
			assert_int_equal(ig_cell_check(&c), 0);
			assert_true((const uint8_t *)c.key.row >= b &&
				    (const uint8_t *)c.key.row + c.key.row_len <= b + len - 4);
			if (i > 0 && ig_packed_is_sorted(&p)) {
				ig_cell_t prev;
				ig_packed_cell(&p, i - 1, &prev);
				assert_true(ig_cell_key_cmp(&prev.key, &c.key) < 0);
			}
		}
	}
	assert_true(accepted > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_bytes),
		cmocka_unit_test(test_empty_block),
		cmocka_unit_test(test_round_trip_unsorted),
		cmocka_unit_test(test_independent_of_buffer_size),
		cmocka_unit_test(test_shared_strings),
		cmocka_unit_test(test_full_buffer),
		cmocka_unit_test(test_builder_misuse),
		cmocka_unit_test(test_sorted_builder_refuses_disorder),
		cmocka_unit_test(test_sorted_flag_is_checked),
		cmocka_unit_test(test_seek),
		cmocka_unit_test(test_header_refusals),
		cmocka_unit_test(test_every_bit_flip_refused),
		cmocka_unit_test(test_entry_refusals),
		cmocka_unit_test(test_random_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
