/* Tests of the range map (storage/range_map.c): find a row's tablet,
 * iterate the tablets of a scan range, split and join, and that content
 * written through the map survives splits and joins unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <urcu/urcu-memb.h>

#include <ingot/storage.h>

#include "cells.h"
#include "range_map_int.h"
#include "scan_int.h"
#include "tablet_int.h"

static int setup(void **state)
{
	(void)state;
	urcu_memb_register_thread();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	urcu_memb_unregister_thread();
	return 0;
}

static void first_of(ig__tablet_t *t, char *buf)
{
	const void *f, *l;
	uint32_t fl, ll;
	ig__tablet_range(t, &f, &fl, &l, &ll);
	if (fl)
		memcpy(buf, f, fl);
	buf[fl] = 0;
}

/* The first row of the tablet holding row ("" for the unbounded first). */
static void find_first(ig__range_map_t *m, const char *row, char *buf)
{
	ig__tablet_t *t;
	assert_int_equal(ig__range_map_find(m, row, (uint32_t)strlen(row), &t), 0);
	assert_true(ig__tablet_holds(t, row, (uint32_t)strlen(row)));
	first_of(t, buf);
	ig__tablet_unref(t);
}

static void test_find_split_join(void **state)
{
	(void)state;
	ig__range_map_t *m;
	char buf[32];
	assert_int_equal(ig__range_map_create(1, &m), 0);
	assert_int_equal(ig__range_map_count(m), 1);
	find_first(m, "anything", buf);
	assert_string_equal(buf, "");
	assert_int_equal(ig__range_map_find(m, "", 0, &(ig__tablet_t *){0}), IG_EINVAL);

	assert_int_equal(ig__range_map_split(m, "m", 1), 0);
	assert_int_equal(ig__range_map_split(m, "f", 1), 0);
	assert_int_equal(ig__range_map_split(m, "t", 1), 0);
	assert_int_equal(ig__range_map_split(m, "t", 1), IG_EINVAL);  /* already a boundary */
	assert_int_equal(ig__range_map_count(m), 4);
	find_first(m, "a", buf);
	assert_string_equal(buf, "");
	find_first(m, "f", buf);
	assert_string_equal(buf, "f");
	find_first(m, "lzz", buf);
	assert_string_equal(buf, "f");
	find_first(m, "m", buf);
	assert_string_equal(buf, "m");
	find_first(m, "zzz", buf);
	assert_string_equal(buf, "t");

	/* Ranges: [g, t) reads f and m; [m, m0) only m; unbounded all four. */
	ig__tablet_t **ts;
	size_t n;
	assert_int_equal(ig__range_map_range(m, "g", 1, "t", 1, &ts, &n), 0);
	assert_int_equal(n, 2);
	first_of(ts[0], buf);
	assert_string_equal(buf, "f");
	first_of(ts[1], buf);
	assert_string_equal(buf, "m");
	for (size_t i = 0; i < n; i++)
		ig__tablet_unref(ts[i]);
	free(ts);
	assert_int_equal(ig__range_map_range(m, "m", 1, "m0", 2, &ts, &n), 0);
	assert_int_equal(n, 1);
	ig__tablet_unref(ts[0]);
	free(ts);
	assert_int_equal(ig__range_map_range(m, NULL, 0, NULL, 0, &ts, &n), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		ig__tablet_unref(ts[i]);
	free(ts);

	assert_int_equal(ig__range_map_join(m, "zz", 2), IG_ENOTFOUND);  /* last tablet */
	assert_int_equal(ig__range_map_join(m, "g", 1), 0);  /* f + m */
	assert_int_equal(ig__range_map_count(m), 3);
	find_first(m, "p", buf);
	assert_string_equal(buf, "f");
	assert_int_equal(ig__range_map_join(m, "a", 1), 0);
	assert_int_equal(ig__range_map_join(m, "a", 1), 0);
	assert_int_equal(ig__range_map_count(m), 1);
	ig__range_map_destroy(m);
}

/* Rows written through the map, split and join at random: a scan over the
 * map's tablets always returns all of them, in order. */
static void test_content_survives(void **state)
{
	(void)state;
	ig__range_map_t *m;
	assert_int_equal(ig__range_map_create(1, &m), 0);
	uint64_t s = 42;
	char rows[200][8];
	uint64_t txn = 0;
	for (int round = 0; round < 40; round++) {
		/* Five rows per round, each through the tablet the map names. */
		for (int i = 0; i < 5; i++) {
			txn++;  /* one txn per row: a tablet's txns must grow */
			int r = round * 5 + i;
			snprintf(rows[r], sizeof rows[r], "%05u", (unsigned)((r * 7919) % 100000));
			ig_cell_t c = cell_set(rows[r], "a:x", 1, "v");
			ig__tablet_t *t;
			assert_int_equal(ig__range_map_find(m, rows[r], 5, &t), 0);
			assert_int_equal(ig__tablet_insert(t, 0, &c, 1, txn), 0);
			ig__tablet_set_applied(t, txn);
			ig__tablet_unref(t);
		}
		char at[8];
		snprintf(at, sizeof at, "%05u", (unsigned)(rng_next(&s) % 100000));
		int rc = ig__range_map_split(m, at, 5);
		assert_true(rc == 0 || rc == IG_EINVAL);
		if (rng_next(&s) % 3 == 0) {
			rc = ig__range_map_join(m, at, 5);
			assert_true(rc == 0 || rc == IG_ENOTFOUND);
		}
		/* Scan everything: every row so far, once, ascending. */
		ig__tablet_t **ts;
		size_t n, seen = 0;
		char prev[8] = "";
		assert_int_equal(ig__range_map_range(m, NULL, 0, NULL, 0, &ts, &n), 0);
		for (size_t i = 0; i < n; i++) {
			ig__scan_pred_t p;
			ig__scan_pred_init(&p);
			ig__scan_t sc;
			ig_cell_t c;
			assert_int_equal(ig__scan_open(&sc, ts[i], &p, IG__TXN_LATEST), 0);
			while (ig__scan_next(&sc, &c) == 1) {
				assert_int_equal(c.key.row_len, 5);
				assert_true(memcmp(c.key.row, prev, 5) > 0 || seen == 0);
				memcpy(prev, c.key.row, 5);
				seen++;
			}
			ig__scan_fini(&sc);
			ig__tablet_unref(ts[i]);
		}
		free(ts);
		assert_int_equal(seen, (size_t)(round + 1) * 5);
	}
	ig__range_map_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_split_join),
		cmocka_unit_test(test_content_survives),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
