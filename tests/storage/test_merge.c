/* Tests of the merge (storage/merge.c) over the common fragment cursor
 * (storage/frag_iter.c): the identical-key and erasure rules on hand-made
 * chains, then random chains of memory and disk fragments (colliding keys,
 * random erasures) against a reference model, from the start and after
 * seeks, with and without hiding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <ingot/storage.h>

#include "cells.h"
#include "chain_model.h"
#include "diskfrag_int.h"
#include "frag_iter_int.h"
#include "memfrag_int.h"
#include "merge_int.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/ingot-merge-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the reference model: chain_model.h */

static ig__memfrag_t *memfrag_of(const ig_cell_t *cells, size_t n)
{
	ig__memfrag_t *mf;
	assert_int_equal(ig__memfrag_create(&mf), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ig__memfrag_insert(mf, &cells[i]), 0);
	ig__memfrag_freeze(mf);
	return mf;
}

/* Merges memory fragments frags[0..n) (newest first) with hiding and checks
 * the result is exactly want[0..nwant). */
static void check_merge(ig__memfrag_t **frags, size_t n, const ig_cell_t *want, size_t nwant)
{
	ig__frag_iter_t it[8];
	ig__merge_input_t in[8];
	for (size_t i = 0; i < n; i++) {
		ig__frag_iter_init_mem(&it[i], frags[i]);
		in[i] = (ig__merge_input_t){.it = &it[i]};
	}
	ig__merge_t m;
	assert_int_equal(ig__merge_init(&m, in, n, IG__MERGE_HIDE), 0);
	ig_cell_t c;
	size_t k = 0;
	while (ig__merge_next(&m, &c) == 1) {
		assert_true(k < nwant);
		assert_true(cells_equal(&c, &want[k]));
		k++;
	}
	assert_int_equal(k, nwant);
	ig__merge_fini(&m);
	for (size_t i = 0; i < n; i++)
		ig__frag_iter_fini(&it[i]);
}

static void test_rules(void **state)
{
	(void)state;
	/* Oldest: versions 1..5 of r/a:x, a neighbour column and row. */
	ig_cell_t old[] = {cell_set("r", "a:x", 5, "o5"), cell_set("r", "a:x", 4, "o4"),
			   cell_set("r", "a:x", 3, "o3"), cell_set("r", "a:x", 1, "o1"),
			   cell_set("r", "a:y", 2, "y2"), cell_set("s", "a:x", 1, "s1")};
	/* Middle: an erasure at 4 (hides 4, 3, 1 of r/a:x in every fragment). */
	ig_cell_t mid[] = {cell_erase("r", "a:x", 4)};
	/* Newest: a set at 5 (wins over o5) and a set at 2 (below the erasure:
	 * hidden too, the rule does not look at which fragment is newer). */
	ig_cell_t new[] = {cell_set("r", "a:x", 5, "n5"), cell_set("r", "a:x", 2, "n2")};
	ig__memfrag_t *f[3] = {memfrag_of(new, 2), memfrag_of(mid, 1), memfrag_of(old, 6)};
	ig_cell_t want[] = {cell_set("r", "a:x", 5, "n5"), cell_set("r", "a:y", 2, "y2"),
			    cell_set("s", "a:x", 1, "s1")};
	check_merge(f, 3, want, 3);
	for (int i = 0; i < 3; i++)
		ig__memfrag_destroy(f[i]);

	/* A newer set at the erasure's own key wins the key, and with it the
	 * erasure is gone: older versions show again (as in one memory
	 * fragment that took both writes in order). */
	ig_cell_t reset[] = {cell_set("r", "a:x", 4, "again")};
	ig__memfrag_t *g[3] = {memfrag_of(reset, 1), memfrag_of(mid, 1), memfrag_of(old, 6)};
	ig_cell_t want2[] = {cell_set("r", "a:x", 5, "o5"), cell_set("r", "a:x", 4, "again"),
			     cell_set("r", "a:x", 3, "o3"), cell_set("r", "a:x", 1, "o1"),
			     cell_set("r", "a:y", 2, "y2"), cell_set("s", "a:x", 1, "s1")};
	check_merge(g, 3, want2, 6);
	for (int i = 0; i < 3; i++)
		ig__memfrag_destroy(g[i]);

	/* An older erasure at the same key as a newer set loses it; an erasure
	 * above every version hides them all. */
	ig_cell_t e9[] = {cell_erase("r", "a:x", 9)};
	ig__memfrag_t *h[2] = {memfrag_of(e9, 1), memfrag_of(old, 6)};
	ig_cell_t want3[] = {cell_set("r", "a:y", 2, "y2"), cell_set("s", "a:x", 1, "s1")};
	check_merge(h, 2, want3, 2);
	for (int i = 0; i < 2; i++)
		ig__memfrag_destroy(h[i]);
}

#define NFRAGS 6
#define MAXCELLS (NFRAGS * 200)

/* Random chains, memory and disk fragments alternating. */
static void test_random_vs_model(void **state)
{
	(void)state;
	static mcell_t all[MAXCELLS], vis[MAXCELLS], winners[MAXCELLS];
	for (uint64_t seed = 1; seed <= 30; seed++) {
		uint64_t s = seed * 0x9e3779b97f4a7c15ull;
		size_t nall = 0;
		ig__memfrag_t *mf[NFRAGS];
		ig__diskfrag_t *df[NFRAGS] = {0};
		ig__frag_iter_t it[NFRAGS];
		ig__merge_input_t in[NFRAGS];
		for (int i = 0; i < NFRAGS; i++) {
			mf[i] = random_memfrag(&s, i, 1 + rng_next(&s) % 200, all, &nall);
			if (i % 2) {
				char path[128];
				snprintf(path, sizeof path, "%s/f%d.igf", dir, i);
				df[i] = disk_copy(mf[i], path);
				ig__frag_iter_init_disk(&it[i], df[i]);
			} else {
				ig__frag_iter_init_mem(&it[i], mf[i]);
			}
			in[i] = (ig__merge_input_t){.it = &it[i]};
		}
		size_t nvis = model_visible(all, nall, vis);
		/* Winners without hiding: one cell per key, erasures included. */
		size_t nwin = 0;
		for (size_t i = 0; i < nall; i++) {
			if (i == 0 || strcmp(all[i].row, all[i - 1].row) ||
			    strcmp(all[i].col, all[i - 1].col) ||
			    all[i].ts != all[i - 1].ts)
				winners[nwin++] = all[i];
		}

		ig__merge_t m;
		ig_cell_t c;
		assert_int_equal(ig__merge_init(&m, in, NFRAGS, IG__MERGE_HIDE), 0);
		size_t k = 0;
		while (ig__merge_next(&m, &c) == 1) {
			assert_true(k < nvis);
			assert_cell_is(&c, &vis[k]);
			k++;
		}
		assert_int_equal(k, nvis);
		/* Seeks to random rows: the model's suffix from that row. */
		for (int q = 0; q < 20; q++) {
			char row[8];
			snprintf(row, sizeof row, "r%02u", (unsigned)(rng_next(&s) % 42));
			ig_cell_key_t key = {.row = row, .row_len = (uint32_t)strlen(row),
					     .timestamp = INT64_MAX};
			assert_int_equal(ig__merge_seek(&m, &key), 0);
			size_t from = 0;
			while (from < nvis && strcmp(vis[from].row, row) < 0)
				from++;
			for (k = from; ig__merge_next(&m, &c) == 1; k++) {
				assert_true(k < nvis);
				assert_cell_is(&c, &vis[k]);
			}
			assert_int_equal(k, nvis);
		}
		ig__merge_fini(&m);

		/* Without hiding: exactly the winners, erasures included. */
		assert_int_equal(ig__merge_init(&m, in, NFRAGS, 0), 0);
		ig_cell_key_t start = {.row = "r", .row_len = 1, .timestamp = INT64_MAX};
		assert_int_equal(ig__merge_seek(&m, &start), 0);
		k = 0;
		while (ig__merge_next(&m, &c) == 1) {
			assert_true(k < nwin);
			assert_cell_is(&c, &winners[k]);
			k++;
		}
		assert_int_equal(k, nwin);
		ig__merge_fini(&m);

		for (int i = 0; i < NFRAGS; i++) {
			ig__frag_iter_fini(&it[i]);
			ig__diskfrag_unref(df[i]);
			ig__memfrag_destroy(mf[i]);
		}
	}
}

/* Clips: a source serves only rows [lo, hi). */
static void test_clip(void **state)
{
	(void)state;
	ig_cell_t cells[] = {cell_set("a", "f:x", 1, "a"), cell_set("b", "f:x", 1, "b"),
			     cell_set("c", "f:x", 1, "c"), cell_set("d", "f:x", 1, "d")};
	ig__memfrag_t *mf = memfrag_of(cells, 4);
	ig__frag_iter_t it;
	ig__frag_iter_init_mem(&it, mf);
	ig__merge_input_t in = {.it = &it, .lo = "b", .lo_len = 1, .hi = "d", .hi_len = 1};
	ig__merge_t m;
	ig_cell_t c;
	assert_int_equal(ig__merge_init(&m, &in, 1, IG__MERGE_HIDE), 0);
	assert_int_equal(ig__merge_next(&m, &c), 1);
	assert_true(cells_equal(&c, &cells[1]));
	assert_int_equal(ig__merge_next(&m, &c), 1);
	assert_true(cells_equal(&c, &cells[2]));
	assert_int_equal(ig__merge_next(&m, &c), 0);
	ig_cell_key_t k = {.row = "a", .row_len = 1, .timestamp = INT64_MAX};
	assert_int_equal(ig__merge_seek(&m, &k), 0);
	assert_int_equal(ig__merge_next(&m, &c), 1);
	assert_true(cells_equal(&c, &cells[1]));
	ig__merge_fini(&m);
	ig__frag_iter_fini(&it);
	ig__memfrag_destroy(mf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_random_vs_model),
		cmocka_unit_test(test_clip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
