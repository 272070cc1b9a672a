/* Tests of cells (storage/cell.c) and CRC32C (storage/crc32c.c): the key
 * order, the erasure tie-break, the limits ig_cell_check enforces, family
 * parsing, and CRC32C against published vectors and its own table path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ingot/storage.h>

#include "cells.h"
#include "crc32c_int.h"

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

static ig_cell_key_t key(const char *row, const char *col, int64_t ts)
{
	return cell_set(row, col, ts, "").key;
}

/* ---- order -------------------------------------------------------------------- */

static void test_row_order_is_bytewise(void **unused)
{
	(void)unused;
	ig_cell_key_t a = key("a", "f:", 0), ab = key("ab", "f:", 0), b = key("b", "f:", 0);
	assert_true(ig_cell_key_cmp(&a, &ab) < 0);  /* a prefix first */
	assert_true(ig_cell_key_cmp(&ab, &b) < 0);
	assert_true(ig_cell_key_cmp(&b, &a) > 0);

	/* Unsigned bytes: 0x7f < 0x80 < 0xff, whatever char's sign. */
	const uint8_t lo[] = {0x7f}, mid[] = {0x80}, hi[] = {0xff};
	ig_cell_key_t k_lo = {.row = lo, .row_len = 1, .column = "f:", .column_len = 2};
	ig_cell_key_t k_mid = k_lo, k_hi = k_lo;
	k_mid.row = mid;
	k_hi.row = hi;
	assert_true(ig_cell_key_cmp(&k_lo, &k_mid) < 0);
	assert_true(ig_cell_key_cmp(&k_mid, &k_hi) < 0);

	/* Row dominates column and timestamp. */
	ig_cell_key_t x = key("a", "z:z", INT64_MIN), y = key("b", "a:", INT64_MAX);
	assert_true(ig_cell_key_cmp(&x, &y) < 0);
}

static void test_column_then_timestamp_descending(void **unused)
{
	(void)unused;
	ig_cell_key_t c1 = key("r", "a:x", 5), c2 = key("r", "a:y", 9);
	assert_true(ig_cell_key_cmp(&c1, &c2) < 0);

	ig_cell_key_t newer = key("r", "a:x", 10), older = key("r", "a:x", 3);
	assert_true(ig_cell_key_cmp(&newer, &older) < 0);
	assert_true(ig_cell_key_cmp(&older, &newer) > 0);

	/* The extremes do not overflow a subtraction. */
	ig_cell_key_t mx = key("r", "a:x", INT64_MAX), mn = key("r", "a:x", INT64_MIN);
	assert_true(ig_cell_key_cmp(&mx, &mn) < 0);
	assert_true(ig_cell_key_cmp(&mn, &mx) > 0);
	assert_int_equal(ig_cell_key_cmp(&mn, &mn), 0);

	/* Columns of one family stay together: "a:" prefixes sort as a block
	 * even beside families that extend "a". */
	ig_cell_key_t a_z = key("r", "a:zzz", 0), ab = key("r", "ab:", 0), a_ = key("r", "a:", 0);
	assert_true(ig_cell_key_cmp(&a_, &a_z) < 0);
	assert_true(ig_cell_key_cmp(&a_z, &ab) < 0);
}

static void test_erasure_sorts_before_set(void **unused)
{
	(void)unused;
	ig_cell_t set = cell_set("r", "f:q", 7, "v"), era = cell_erase("r", "f:q", 7);
	assert_true(ig_cell_cmp(&era, &set) < 0);
	assert_true(ig_cell_cmp(&set, &era) > 0);
	assert_int_equal(ig_cell_cmp(&era, &era), 0);

	/* Values do not take part. */
	ig_cell_t other = cell_set("r", "f:q", 7, "zzz");
	assert_int_equal(ig_cell_cmp(&set, &other), 0);

	/* The key comes first: a newer set sorts before an older erasure. */
	ig_cell_t newer = cell_set("r", "f:q", 8, "v");
	assert_true(ig_cell_cmp(&newer, &era) < 0);
}

static int qsort_cells(const void *a, const void *b)
{
	return ig_cell_cmp(a, b);
}

/* A total order: sorting any permutation gives the one expected sequence,
 * and comparisons are antisymmetric and transitive over it. */
static void test_sort_gives_expected_sequence(void **unused)
{
	(void)unused;
	const ig_cell_t want[] = {
		cell_set("a", "f:", 1, "1"),
		cell_erase("a", "f:q", 9),
		cell_set("a", "f:q", 9, "2"),
		cell_set("a", "f:q", 2, "3"),
		cell_set("a", "f:q", -4, "4"),
		cell_set("a", "g:", 100, "5"),
		cell_set("aa", "f:q", 0, "6"),
		cell_set("b", "f:q", INT64_MAX, "7"),
		cell_set("b", "f:q", INT64_MIN, "8"),
	};
	const size_t n = sizeof want / sizeof want[0];
	ig_cell_t got[sizeof want / sizeof want[0]];
	uint64_t seed = 42;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int c = ig_cell_cmp(&want[i], &want[j]);
			assert_int_equal(sign(c), (i > j) - (i < j));
			assert_int_equal(sign(ig_cell_cmp(&want[j], &want[i])), -sign(c));
		}
	for (int round = 0; round < 50; round++) {
		memcpy(got, want, sizeof got);
		for (size_t i = n - 1; i > 0; i--) {
			size_t j = rng_next(&seed) % (i + 1);
			ig_cell_t t = got[i];
			got[i] = got[j];
			got[j] = t;
		}
		qsort(got, n, sizeof got[0], qsort_cells);
		for (size_t i = 0; i < n; i++)
			assert_true(cells_equal(&got[i], &want[i]));
	}
}

/* ---- limits ------------------------------------------------------------------- */

static void test_cell_check(void **unused)
{
	(void)unused;
	static char big[IG_VALUE_MAX + 1];
	static char longcol[IG_COLUMN_MAX + 1];
	ig_cell_t c = cell_set("r", "f:q", 1, "v");
	assert_int_equal(ig_cell_check(&c), 0);

	c = cell_set("r", "f:", 1, "");  /* empty qualifier and value */
	assert_int_equal(ig_cell_check(&c), 0);
	c.value = NULL;                   /* NULL is fine with no bytes */
	assert_int_equal(ig_cell_check(&c), 0);

	c = cell_set("", "f:q", 1, "v");  /* empty row */
	assert_int_equal(ig_cell_check(&c), IG_EINVAL);
	c = cell_set("r", "f:q", 1, "v");
	c.key.row_len = IG_ROW_MAX + 1;
	c.key.row = big;
	assert_int_equal(ig_cell_check(&c), IG_EINVAL);
	c.key.row_len = IG_ROW_MAX;
	assert_int_equal(ig_cell_check(&c), 0);
	c.key.row = NULL;
	assert_int_equal(ig_cell_check(&c), IG_EINVAL);

	const char *bad_cols[] = {"fq", ":q", "", "f q:x", "f\x7f:q", "f\x01:"};
	for (size_t i = 0; i < sizeof bad_cols / sizeof bad_cols[0]; i++) {
		c = cell_set("r", bad_cols[i], 1, "v");
		assert_int_equal(ig_cell_check(&c), IG_EINVAL);
	}
	c = cell_set("r", "f::q", 1, "v");  /* ':' in the qualifier is fine */
	assert_int_equal(ig_cell_check(&c), 0);

	memset(longcol, 'q', sizeof longcol);
	longcol[0] = 'f';
	longcol[1] = ':';
	c = cell_set("r", "f:", 1, "v");
	c.key.column = longcol;
	c.key.column_len = IG_COLUMN_MAX;
	assert_int_equal(ig_cell_check(&c), 0);
	c.key.column_len = IG_COLUMN_MAX + 1;
	assert_int_equal(ig_cell_check(&c), IG_EINVAL);

	c = cell_set("r", "f:q", 1, "v");
	c.value = big;
	c.value_len = IG_VALUE_MAX;
	assert_int_equal(ig_cell_check(&c), 0);
	c.value_len = IG_VALUE_MAX + 1;
	assert_int_equal(ig_cell_check(&c), IG_EINVAL);
	c.value = NULL;
	c.value_len = 1;
	assert_int_equal(ig_cell_check(&c), IG_EINVAL);

	c = cell_erase("r", "f:q", 1);
	assert_int_equal(ig_cell_check(&c), 0);
	c.value = "x";
	c.value_len = 1;  /* an erasure carries no value */
	assert_int_equal(ig_cell_check(&c), IG_EINVAL);

	c = cell_set("r", "f:q", 1, "v");
	c.kind = (ig_cell_kind_t)2;
	assert_int_equal(ig_cell_check(&c), IG_EINVAL);
}

static void test_family_rules(void **unused)
{
	(void)unused;
	char name[IG_FAMILY_MAX + 2];
	memset(name, 'x', sizeof name);

	assert_true(ig_family_valid("a", 1));
	assert_true(ig_family_valid("A-z_0.9~!", 9));
	assert_true(ig_family_valid(name, IG_FAMILY_MAX));
	assert_false(ig_family_valid(name, IG_FAMILY_MAX + 1));
	assert_false(ig_family_valid("", 0));
	assert_false(ig_family_valid(NULL, 3));
	assert_false(ig_family_valid("a:b", 3));
	assert_false(ig_family_valid("a b", 3));
	assert_false(ig_family_valid("\x80", 1));

	assert_int_equal(ig_column_family_len("fam:qual", 8), 3);
	assert_int_equal(ig_column_family_len("f:", 2), 1);
	assert_int_equal(ig_column_family_len("f:a:b", 5), 1);
	assert_int_equal(ig_column_family_len(":q", 2), 0);
	assert_int_equal(ig_column_family_len("nocolon", 7), 0);
	assert_int_equal(ig_column_family_len("bad fam:q", 9), 0);
	/* The length bounds the search: a ':' past it does not count. */
	assert_int_equal(ig_column_family_len("fam:q", 3), 0);

	char col[IG_FAMILY_MAX + 3];
	memset(col, 'x', sizeof col);
	col[IG_FAMILY_MAX] = ':';
	assert_int_equal(ig_column_family_len(col, IG_FAMILY_MAX + 1), IG_FAMILY_MAX);
	col[IG_FAMILY_MAX] = 'x';
	col[IG_FAMILY_MAX + 1] = ':';  /* family one byte too long */
	assert_int_equal(ig_column_family_len(col, IG_FAMILY_MAX + 3), 0);
}

/* ---- CRC32C ------------------------------------------------------------------- */

/* The definition, one bit at a time, to check the table and the CPU path. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

static void test_crc32c_vectors(void **unused)
{
	(void)unused;
	uint8_t buf[32];

	assert_int_equal(ig_crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(ig_crc32c(0, NULL, 0), 0);
	/* RFC 3720, appendix B.4. */
	memset(buf, 0, sizeof buf);
	assert_int_equal(ig_crc32c(0, buf, 32), 0x8a9136aau);
	memset(buf, 0xff, sizeof buf);
	assert_int_equal(ig_crc32c(0, buf, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(ig_crc32c(0, buf, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(ig_crc32c(0, buf, 32), 0x113fdb5cu);
}

static void test_crc32c_paths_agree(void **unused)
{
	(void)unused;
	enum { N = 1024 };
	uint8_t *buf = malloc(N + 8);
	uint64_t seed = 7;
	assert_non_null(buf);
	for (size_t i = 0; i < N + 8; i++)
		buf[i] = (uint8_t)rng_next(&seed);

	/* Every length up to 64 at every alignment, then longer runs. */
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= N; len += len < 64 ? 1 : 61) {
			uint32_t want = crc_bitwise(0, buf + off, len);
			assert_int_equal(ig_crc32c(0, buf + off, len), want);
			assert_int_equal(ig__crc32c_portable(0, buf + off, len), want);
			/* Continuing from a partial result equals one pass. */
			size_t cut = len / 3;
			assert_int_equal(ig_crc32c(ig_crc32c(0, buf + off, cut), buf + off + cut,
						   len - cut),
					 want);
		}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_row_order_is_bytewise),
		cmocka_unit_test(test_column_then_timestamp_descending),
		cmocka_unit_test(test_erasure_sorts_before_set),
		cmocka_unit_test(test_sort_gives_expected_sequence),
		cmocka_unit_test(test_cell_check),
		cmocka_unit_test(test_family_rules),
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_crc32c_paths_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
