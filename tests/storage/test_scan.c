/* Tests of scans (storage/scan.c): every predicate (row range, prefix,
 * families, columns, timestamp range, max versions, and mixes) over random
 * chains of memory and disk fragments against a reference model; and
 * snapshots on a tablet (fragment granularity: a scan at txn S sees
 * exactly the txns <= S, including while later txns are inserted).
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
#include <urcu/urcu-memb.h>

#include <ingot/storage.h>

#include "cells.h"
#include "chain_model.h"
#include "diskfrag_int.h"
#include "frag_iter_int.h"
#include "memfrag_int.h"
#include "merge_int.h"
#include "scan_int.h"
#include "tablet_int.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	urcu_memb_register_thread();
	snprintf(dir, sizeof dir, "/tmp/ingot-scan-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	urcu_memb_unregister_thread();
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the reference model: chain_model.h */

static int bytes_cmp_t(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	return c ? c : (al > bl) - (al < bl);
}

/* The model of the predicates, applied to the visible cells. */
static bool in_list(const char *s, size_t len, const ig__bytes_t *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (l[i].len == len && memcmp(l[i].p, s, len) == 0)
			return true;
	}
	return false;
}

static size_t model_filter(const mcell_t *vis, size_t n, const ig__scan_pred_t *p, mcell_t *out)
{
	size_t k = 0, versions = 0;
	const mcell_t *cur = NULL;
	for (size_t i = 0; i < n; i++) {
		const mcell_t *m = &vis[i];
		size_t rl = strlen(m->row);
		if (p->row_start.len && bytes_cmp_t(m->row, rl, p->row_start.p, p->row_start.len) < 0)
			continue;
		if (p->row_end.len && bytes_cmp_t(m->row, rl, p->row_end.p, p->row_end.len) >= 0)
			continue;
		if (p->prefix.len && (rl < p->prefix.len || memcmp(m->row, p->prefix.p, p->prefix.len)))
			continue;
		if (m->ts < p->ts_min || m->ts > p->ts_max)
			continue;
		if (p->nfamilies || p->ncolumns) {
			size_t fl = (size_t)(strchr(m->col, ':') - m->col);
			if (!in_list(m->col, fl, p->families, p->nfamilies) &&
			    !in_list(m->col, strlen(m->col), p->columns, p->ncolumns))
				continue;
		}
		if (p->max_versions) {
			if (cur && !strcmp(cur->row, m->row) && !strcmp(cur->col, m->col)) {
				if (++versions > p->max_versions)
					continue;
			} else {
				cur = m;
				versions = 1;
			}
		}
		out[k++] = *m;
	}
	return k;
}

#define NFRAGS 5
#define MAXCELLS (NFRAGS * 300)

static ig__bytes_t b(const char *s)
{
	return (ig__bytes_t){s, (uint32_t)strlen(s)};
}

static void random_pred(uint64_t *s, ig__scan_pred_t *p, char *start, char *end, char *pre)
{
	static const ig__bytes_t fams[] = {{"a", 1}, {"c", 1}};
	static const ig__bytes_t cols[] = {{"b:q1", 4}, {"a:q2", 4}, {"c:q0", 4}};
	ig__scan_pred_init(p);
	if (rng_next(s) % 2) {
		sprintf(start, "r%02u", (unsigned)(rng_next(s) % 42));
		p->row_start = b(start);
	}
	if (rng_next(s) % 2) {
		sprintf(end, "r%02u", (unsigned)(rng_next(s) % 42));
		p->row_end = b(end);
	}
	if (rng_next(s) % 3 == 0) {
		sprintf(pre, "r%u", (unsigned)(rng_next(s) % 4));
		p->prefix = b(pre);
	}
	if (rng_next(s) % 3 == 0) {
		p->families = fams + rng_next(s) % 2;
		p->nfamilies = 1;
	}
	if (rng_next(s) % 3 == 0) {
		p->columns = cols;
		p->ncolumns = 1 + rng_next(s) % 3;
	}
	if (rng_next(s) % 2) {
		p->ts_min = (int64_t)(rng_next(s) % 5);
		p->ts_max = p->ts_min + (int64_t)(rng_next(s) % 5);
	}
	if (rng_next(s) % 2)
		p->max_versions = 1 + (uint32_t)(rng_next(s) % 3);
}

static void test_predicates_vs_model(void **state)
{
	(void)state;
	static mcell_t all[MAXCELLS], vis[MAXCELLS], want[MAXCELLS];
	for (uint64_t seed = 1; seed <= 12; seed++) {
		uint64_t s = seed * 0x2545f4914f6cdd1dull;
		size_t nall = 0;
		ig__memfrag_t *mf[NFRAGS];
		ig__diskfrag_t *df[NFRAGS] = {0};
		ig__frag_iter_t it[NFRAGS];
		ig__merge_input_t in[NFRAGS];
		for (int i = 0; i < NFRAGS; i++) {
			mf[i] = random_memfrag(&s, i, 1 + rng_next(&s) % 300, all, &nall);
			if (i % 2 == 0) {
				char path[128];
				snprintf(path, sizeof path, "%s/s%d.igf", dir, i);
				df[i] = disk_copy(mf[i], path);
				ig__frag_iter_init_disk(&it[i], df[i]);
			} else {
				ig__frag_iter_init_mem(&it[i], mf[i]);
			}
			in[i] = (ig__merge_input_t){.it = &it[i]};
		}
		size_t nvis = model_visible(all, nall, vis);
		for (int q = 0; q < 60; q++) {
			char start[8], end[8], pre[8];
			ig__scan_pred_t p;
			random_pred(&s, &p, start, end, pre);
			size_t nwant = model_filter(vis, nvis, &p, want);
			ig__scan_t sc;
			ig_cell_t c;
			assert_int_equal(ig__scan_init(&sc, &p, in, NFRAGS), 0);
			size_t k = 0;
			while (ig__scan_next(&sc, &c) == 1) {
				assert_true(k < nwant);
				assert_cell_is(&c, &want[k]);
				k++;
			}
			assert_int_equal(k, nwant);
			ig__scan_fini(&sc);
		}
		for (int i = 0; i < NFRAGS; i++) {
			ig__frag_iter_fini(&it[i]);
			ig__diskfrag_unref(df[i]);
			ig__memfrag_destroy(mf[i]);
		}
	}
}

static void test_max_versions(void **state)
{
	(void)state;
	ig__memfrag_t *mf;
	assert_int_equal(ig__memfrag_create(&mf), 0);
	for (int ts = 1; ts <= 6; ts++) {
		char v[8];
		sprintf(v, "v%d", ts);
		ig_cell_t c = cell_set("r", "a:x", ts, v);
		assert_int_equal(ig__memfrag_insert(mf, &c), 0);
		c = cell_set("r", "a:y", ts, v);
		assert_int_equal(ig__memfrag_insert(mf, &c), 0);
	}
	ig_cell_t e = cell_erase("r", "a:x", 5);
	assert_int_equal(ig__memfrag_insert(mf, &e), 0);
	ig__frag_iter_t it;
	ig__frag_iter_init_mem(&it, mf);
	ig__merge_input_t in = {.it = &it};
	ig__scan_pred_t p;
	ig__scan_pred_init(&p);
	p.max_versions = 2;
	p.ts_max = 5;
	ig__scan_t sc;
	ig_cell_t c;
	assert_int_equal(ig__scan_init(&sc, &p, &in, 1), 0);
	/* a:x: 6 is above ts_max, 5 is erased (with everything below it). */
	ig_cell_t want[] = {cell_set("r", "a:y", 5, "v5"), cell_set("r", "a:y", 4, "v4")};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ig__scan_next(&sc, &c), 1);
		assert_true(cells_equal(&c, &want[i]));
	}
	assert_int_equal(ig__scan_next(&sc, &c), 0);
	ig__scan_fini(&sc);
	p.ts_min = p.ts_max = 7;
	assert_int_equal(ig__scan_init(&sc, &p, &in, 1), 0);
	assert_int_equal(ig__scan_next(&sc, &c), 0);
	ig__scan_fini(&sc);
	p.ts_min = 8;
	assert_int_equal(ig__scan_init(&sc, &p, &in, 1), IG_EINVAL);
	ig__frag_iter_fini(&it);
	ig__memfrag_destroy(mf);
}

static size_t scan_count(ig__tablet_t *t, uint64_t snap, int *rc)
{
	ig__scan_pred_t p;
	ig__scan_pred_init(&p);
	ig__scan_t sc;
	ig_cell_t c;
	*rc = ig__scan_open(&sc, t, &p, snap);
	if (*rc < 0)
		return 0;
	size_t n = 0;
	while (ig__scan_next(&sc, &c) == 1)
		n++;
	ig__scan_fini(&sc);
	return n;
}

/* Txn k writes row "r<k>": a scan at S sees exactly rows 1..S. */
static void test_snapshots(void **state)
{
	(void)state;
	ig__tablet_t *t;
	assert_int_equal(ig__tablet_create(NULL, 0, NULL, 0, 1, &t), 0);
	char rows[64][8];
	int rc;
	for (int k = 1; k <= 20; k++) {
		sprintf(rows[k], "r%02d", k);
		ig_cell_t c = cell_set(rows[k], "a:x", 1, "v");
		assert_int_equal(ig__tablet_insert(t, 0, &c, 1, (uint64_t)k), 0);
		ig__tablet_set_applied(t, (uint64_t)k);
		if (k % 5 == 0)
			assert_int_equal(ig__tablet_seal(t, 0), 0);  /* fragments of 5 txns */
	}
	/* Fragment boundaries are at 5, 10, 15, 20; zero skips everything. */
	for (uint64_t s = 0; s <= 20; s += 5) {
		assert_int_equal(scan_count(t, s, &rc), s);
		assert_int_equal(rc, 0);
	}
	assert_int_equal(scan_count(t, 7, &rc), 0);
	assert_int_equal(rc, IG_ESTATE);
	assert_int_equal(scan_count(t, 21, &rc), 0);
	assert_int_equal(rc, IG_EAGAIN);
	assert_int_equal(scan_count(t, IG__TXN_LATEST, &rc), 20);
	assert_int_equal(rc, 0);

	/* A scan open at 22 while txns 23.. arrive sees only up to 22: the
	 * inserts move to a new fragment once the scan pinned the active one. */
	for (int k = 21; k <= 22; k++) {
		sprintf(rows[k], "r%02d", k);
		ig_cell_t c = cell_set(rows[k], "a:x", 1, "v");
		assert_int_equal(ig__tablet_insert(t, 0, &c, 1, (uint64_t)k), 0);
		ig__tablet_set_applied(t, (uint64_t)k);
	}
	ig__scan_pred_t p;
	ig__scan_pred_init(&p);
	ig__scan_t sc;
	ig_cell_t c;
	assert_int_equal(ig__scan_open(&sc, t, &p, IG__TXN_LATEST), 0);
	assert_int_equal(ig__scan_snapshot(&sc), 22);
	for (int k = 23; k <= 30; k++) {
		sprintf(rows[k], "r%02d", k);
		ig_cell_t w = cell_set(rows[k], "a:x", 1, "v");
		assert_int_equal(ig__tablet_insert(t, 0, &w, 1, (uint64_t)k), 0);
		ig__tablet_set_applied(t, (uint64_t)k);
	}
	size_t n = 0;
	while (ig__scan_next(&sc, &c) == 1)
		n++;
	assert_int_equal(n, 22);
	ig__scan_fini(&sc);
	assert_int_equal(scan_count(t, IG__TXN_LATEST, &rc), 30);
	assert_int_equal(scan_count(t, 22, &rc), 22);
	assert_int_equal(rc, 0);
	/* txns must grow. */
	ig_cell_t w = cell_set("zz", "a:x", 1, "v");
	assert_int_equal(ig__tablet_insert(t, 0, &w, 1, 30), IG_EINVAL);
	ig__tablet_unref(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_predicates_vs_model),
		cmocka_unit_test(test_max_versions),
		cmocka_unit_test(test_snapshots),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
