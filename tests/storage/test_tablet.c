/* Tests of tablets (storage/tablet.c): replacing fragments (memory -> disk,
 * compaction of two disk fragments into one) keeps every scan equal to the
 * model; a concurrency test where one thread scans again and again while
 * another replaces fragments thousands of times; splits and joins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <urcu/urcu-memb.h>

#include <ingot/storage.h>

#include "cells.h"
#include "chain_model.h"
#include "compact_int.h"
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
	snprintf(dir, sizeof dir, "/tmp/ingot-tablet-XXXXXX");
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

#define MAXCELLS 1024

/* The chain's content, kept by the test: three fragments' cells. */
typedef struct world {
	mcell_t cells[3][MAXCELLS];  /* [0] A (newest), [1] B, [2] C */
	size_t n[3];
	mcell_t vis[3 * MAXCELLS];
	size_t nvis;
	char pa[128], pb[128], pc[128], pbc[128];  /* disk copies: A, B, C, B+C */
} world_t;

static ig__memfrag_t *memfrag_from(const mcell_t *cells, size_t n)
{
	ig__memfrag_t *mf;
	assert_int_equal(ig__memfrag_create(&mf), 0);
	for (size_t i = 0; i < n; i++) {
		ig_cell_t c = mc_cell(&cells[i]);
		assert_int_equal(ig__memfrag_insert(mf, &c), 0);
	}
	ig__memfrag_freeze(mf);
	return mf;
}

static int merge_source_next(void *ctx, ig_cell_t *out)
{
	return ig__merge_next(ctx, out);
}

/* What a compactor writes for B and C: the merge's winners, erasures kept. */
static void write_compacted(const char *path, ig__diskfrag_t *b, ig__diskfrag_t *c)
{
	ig__frag_iter_t it[2];
	ig__frag_iter_init_disk(&it[0], b);
	ig__frag_iter_init_disk(&it[1], c);
	ig__merge_input_t in[2] = {{.it = &it[0]}, {.it = &it[1]}};
	ig__merge_t m;
	assert_int_equal(ig__merge_init(&m, in, 2, 0), 0);
	ig__cell_source_t src = {.next = merge_source_next, .ctx = &m};
	ig__diskfrag_opts_t opts = {.compression = IG_COMPRESSION_ZSTD, .level = 1, .block_size = 1024};
	char why[256];
	assert_int_equal(ig__diskfrag_write(path, &opts, &src, NULL, why, sizeof why), 0);
	ig__merge_fini(&m);
	ig__frag_iter_fini(&it[0]);
	ig__frag_iter_fini(&it[1]);
}

static ig__frag_t *disk_frag(const char *path)
{
	ig__diskfrag_t *df;
	ig__frag_t *f;
	char why[256];
	assert_int_equal(ig__diskfrag_open(path, &df, why, sizeof why), 0);
	assert_int_equal(ig__frag_create_disk(df, 1, 1, &f), 0);
	return f;
}

static ig__frag_t *mem_frag(const world_t *w, int i)
{
	ig__frag_t *f;
	assert_int_equal(ig__frag_create_mem(memfrag_from(w->cells[i], w->n[i]), 3, 3, &f), 0);
	return f;
}

/* Builds the world from a seed and a tablet holding [A mem, B disk, C disk]. */
static ig__tablet_t *world_init(world_t *w, uint64_t seed, ig__frag_t *fr[3])
{
	uint64_t s = seed;
	static mcell_t all[3 * MAXCELLS];
	size_t nall = 0;
	memset(w, 0, sizeof *w);
	for (int i = 0; i < 3; i++) {
		size_t before = nall;
		ig__memfrag_t *mf = random_memfrag(&s, i, 300, all, &nall);
		w->n[i] = nall - before;
		memcpy(w->cells[i], &all[before], w->n[i] * sizeof all[0]);
		ig__memfrag_destroy(mf);
	}
	w->nvis = model_visible(all, nall, w->vis);
	snprintf(w->pa, sizeof w->pa, "%s/a.igf", dir);
	snprintf(w->pb, sizeof w->pb, "%s/b.igf", dir);
	snprintf(w->pc, sizeof w->pc, "%s/c.igf", dir);
	snprintf(w->pbc, sizeof w->pbc, "%s/bc.igf", dir);
	const char *paths[3] = {w->pa, w->pb, w->pc};
	for (int i = 0; i < 3; i++) {
		ig__memfrag_t *mf = memfrag_from(w->cells[i], w->n[i]);
		ig__diskfrag_unref(disk_copy(mf, paths[i]));
		ig__memfrag_destroy(mf);
	}
	ig__frag_t *b = disk_frag(w->pb), *c = disk_frag(w->pc);
	write_compacted(w->pbc, b->disk, c->disk);

	ig__tablet_t *t;
	assert_int_equal(ig__tablet_create(NULL, 0, NULL, 0, 1, &t), 0);
	fr[2] = c;
	fr[1] = b;
	fr[0] = mem_frag(w, 0);
	for (int i = 2; i >= 0; i--)
		assert_int_equal(ig__tablet_push(t, 0, fr[i]), 0);
	ig__tablet_set_applied(t, 3);
	return t;
}

/* One full scan at the latest txn; 0 if it equals the model. */
static int scan_matches(ig__tablet_t *t, const world_t *w)
{
	ig__scan_pred_t p;
	ig__scan_pred_init(&p);
	ig__scan_t sc;
	ig_cell_t c;
	if (ig__scan_open(&sc, t, &p, IG__TXN_LATEST) != 0)
		return -1;
	size_t k = 0;
	int rc, bad = 0;
	while ((rc = ig__scan_next(&sc, &c)) == 1) {
		ig_cell_t want = mc_cell(&w->vis[k < w->nvis ? k : 0]);
		if (k >= w->nvis || !cells_equal(&c, &want))
			bad = 1;
		k++;
	}
	ig__scan_fini(&sc);
	return rc == 0 && !bad && k == w->nvis ? 0 : -1;
}

static void test_replace(void **state)
{
	(void)state;
	static world_t w;
	ig__frag_t *fr[3];
	ig__tablet_t *t = world_init(&w, 0x1234567ull, fr);
	assert_int_equal(scan_matches(t, &w), 0);

	/* Not a run of the chain; not frozen. */
	assert_int_equal(ig__tablet_replace(t, 0, (ig__frag_t *[]){fr[0], fr[2]}, 2, NULL, 0),
			 IG_ENOTFOUND);
	assert_int_equal(ig__tablet_replace(t, 1, fr, 1, NULL, 0), IG_EINVAL);

	/* Serialization: A (memory) -> A (disk), same cells. */
	ig__frag_t *da = disk_frag(w.pa);
	assert_int_equal(ig__tablet_replace(t, 0, &fr[0], 1, &da, 1), 0);
	assert_int_equal(scan_matches(t, &w), 0);
	/* A scan opened before a compaction reads on across it. */
	ig__scan_pred_t p;
	ig__scan_pred_init(&p);
	ig__scan_t sc;
	ig_cell_t c;
	assert_int_equal(ig__scan_open(&sc, t, &p, IG__TXN_LATEST), 0);
	assert_int_equal(ig__scan_next(&sc, &c), 1);
	ig__frag_t *bc = disk_frag(w.pbc);
	assert_int_equal(ig__tablet_replace(t, 0, &fr[1], 2, &bc, 1), 0);
	size_t k = 1;
	while (ig__scan_next(&sc, &c) == 1) {
		assert_cell_is(&c, &w.vis[k]);
		k++;
	}
	assert_int_equal(k, w.nvis);
	ig__scan_fini(&sc);
	assert_int_equal(scan_matches(t, &w), 0);
	/* The new link took the run's txns. */
	assert_int_equal(atomic_load(&bc->min_txn), 1);
	/* A fragment in use by the tablet is not freed by dropping ours. */
	for (int i = 0; i < 3; i++)
		ig__frag_unref(fr[i]);
	ig__frag_unref(da);
	ig__frag_unref(bc);
	assert_int_equal(scan_matches(t, &w), 0);

	/* An active memory fragment cannot be replaced. */
	ig_cell_t nc = cell_set("zz", "a:q0", 1, "new");
	assert_int_equal(ig__tablet_insert(t, 0, &nc, 1, 4), 0);
	ig__tablet_view_t *v = ig__tablet_pin(t);
	ig__frag_t *act = v->g[0].e[0].frag;
	assert_int_equal(ig__tablet_replace(t, 0, &act, 1, NULL, 0), IG_ESTATE);
	ig__tablet_unpin(v);
	ig__tablet_unref(t);
}

/* ---- the concurrency test --------------------------------------------- */

#define CYCLES 1000  /* 4 replacements each */

typedef struct race {
	ig__tablet_t *t;
	world_t *w;
	atomic_bool stop;
	long scans;
	long failures;
} race_t;

static void *scanner(void *arg)
{
	race_t *r = arg;
	urcu_memb_register_thread();
	bool last = false;
	/* One more scan after the writer stopped, so at least one runs. */
	while (!last) {
		last = atomic_load(&r->stop);
		if (scan_matches(r->t, r->w) != 0)
			r->failures++;
		r->scans++;
	}
	urcu_memb_unregister_thread();
	return NULL;
}

static void test_concurrent_replacement(void **state)
{
	(void)state;
	static world_t w;
	ig__frag_t *fr[3];
	race_t r = {.w = &w};
	r.t = world_init(&w, 0xfeedfaceull, fr);
	atomic_init(&r.stop, false);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, scanner, &r), 0);

	ig__frag_t *a = fr[0], *b = fr[1], *c = fr[2];
	for (int i = 0; i < CYCLES; i++) {
		/* Serialize A: memory -> disk. */
		ig__frag_t *da = disk_frag(w.pa);
		assert_int_equal(ig__tablet_replace(r.t, 0, &a, 1, &da, 1), 0);
		ig__frag_unref(a);
		/* Compact B and C into one. */
		ig__frag_t *bc = disk_frag(w.pbc);
		assert_int_equal(ig__tablet_replace(r.t, 0, (ig__frag_t *[]){b, c}, 2, &bc, 1), 0);
		ig__frag_unref(b);
		ig__frag_unref(c);
		/* And back, with fresh fragments, so the old ones are reclaimed. */
		a = mem_frag(&w, 0);
		assert_int_equal(ig__tablet_replace(r.t, 0, &da, 1, &a, 1), 0);
		ig__frag_unref(da);
		b = disk_frag(w.pb);
		c = disk_frag(w.pc);
		assert_int_equal(ig__tablet_replace(r.t, 0, &bc, 1, (ig__frag_t *[]){b, c}, 2), 0);
		ig__frag_unref(bc);
	}
	atomic_store(&r.stop, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	print_message("%ld scans during %d replacements, %ld wrong\n", r.scans, 4 * CYCLES,
		      r.failures);
	assert_int_equal(r.failures, 0);
	assert_true(r.scans > 0);
	ig__frag_unref(a);
	ig__frag_unref(b);
	ig__frag_unref(c);
	ig__tablet_unref(r.t);
}

/* ---- split and join ----------------------------------------------------- */

static size_t scan_rows(ig__tablet_t *t, const world_t *w, size_t from, const char *end)
{
	ig__scan_pred_t p;
	ig__scan_pred_init(&p);
	ig__scan_t sc;
	ig_cell_t c;
	assert_int_equal(ig__scan_open(&sc, t, &p, IG__TXN_LATEST), 0);
	size_t k = from;
	while (ig__scan_next(&sc, &c) == 1) {
		assert_true(k < w->nvis && (end == NULL || strcmp(w->vis[k].row, end) < 0));
		assert_cell_is(&c, &w->vis[k]);
		k++;
	}
	ig__scan_fini(&sc);
	return k;
}

static void test_split_join(void **state)
{
	(void)state;
	static world_t w;
	ig__frag_t *fr[3];
	ig__tablet_t *t = world_init(&w, 0xabcdefull, fr);
	for (int i = 0; i < 3; i++)
		ig__frag_unref(fr[i]);
	ig__tablet_t *l, *r, *j;
	assert_int_equal(ig__tablet_split(t, "", 0, &l, &r), IG_EINVAL);
	assert_int_equal(ig__tablet_split(t, "r20", 3, &l, &r), 0);
	size_t mid = 0;
	while (mid < w.nvis && strcmp(w.vis[mid].row, "r20") < 0)
		mid++;
	assert_int_equal(scan_rows(l, &w, 0, "r20"), mid);
	assert_int_equal(scan_rows(r, &w, mid, NULL), w.nvis);
	/* Each half takes only its own rows. */
	ig_cell_t nc = cell_set("r30", "a:q0", 1, "x");
	assert_int_equal(ig__tablet_insert(l, 0, &nc, 1, 4), IG_EINVAL);
	assert_true(ig__tablet_holds(r, "r30", 3) && !ig__tablet_holds(r, "r1", 2));
	/* A split of a split, then joins back: the same content. */
	ig__tablet_t *rl, *rr, *rj;
	assert_int_equal(ig__tablet_split(r, "r33", 3, &rl, &rr), 0);
	assert_int_equal(ig__tablet_join(rr, rl, &rj), IG_EINVAL);  /* wrong order */
	assert_int_equal(ig__tablet_join(rl, rr, &rj), 0);
	assert_int_equal(ig__tablet_join(l, rj, &j), 0);
	assert_int_equal(scan_rows(j, &w, 0, NULL), w.nvis);
	const void *f, *e;
	uint32_t fl, el;
	ig__tablet_range(j, &f, &fl, &e, &el);
	assert_int_equal(fl, 0);
	assert_int_equal(el, 0);
	ig__tablet_unref(rl);
	ig__tablet_unref(rr);
	ig__tablet_unref(rj);
	ig__tablet_unref(l);
	ig__tablet_unref(r);
	ig__tablet_unref(t);
	assert_int_equal(scan_rows(j, &w, 0, NULL), w.nvis);
	ig__tablet_unref(j);
}

/* Rows of t below end must be the model's first rows. */
static void assert_rows_below(ig__tablet_t *t, const world_t *w, const char *end)
{
	ig__scan_pred_t p;
	ig__scan_t sc;
	ig_cell_t c;
	size_t k = 0;
	ig__scan_pred_init(&p);
	p.row_end = (ig__bytes_t){end, (uint32_t)strlen(end)};
	assert_int_equal(ig__scan_open(&sc, t, &p, IG__TXN_LATEST), 0);
	while (ig__scan_next(&sc, &c) == 1)
		assert_cell_is(&c, &w->vis[k++]);
	ig__scan_fini(&sc);
	while (k < w->nvis && strcmp(w->vis[k].row, end) >= 0)
		k++;
	assert_true(k == w->nvis || strcmp(w->vis[k].row, end) >= 0);
}

/* A split then a join leaves each fragment in the chain twice, once per
 * side's clip, the two sides merged newest first (left first on a tie);
 * replacing the right-hand link must leave the left one. */
static void test_replace_twice_held(void **state)
{
	(void)state;
	static world_t w;
	ig__frag_t *fr[3];
	ig__tablet_t *t = world_init(&w, 0x5eedull, fr), *l, *r, *j;
	for (int i = 0; i < 3; i++)
		ig__frag_unref(fr[i]);
	assert_int_equal(ig__tablet_split(t, "r20", 3, &l, &r), 0);
	assert_int_equal(ig__tablet_join(l, r, &j), 0);
	ig__tablet_view_t *v = ig__tablet_pin(j);
	const ig__chain_t *c = &v->g[0];
	assert_int_equal(c->n, 6);
	for (size_t i = 1; i < c->n; i++)
		assert_true(atomic_load(&c->e[i - 1].frag->max_txn) >=
			    atomic_load(&c->e[i].frag->max_txn));
	/* The last link is C clipped to [r20, end); its left twin comes
	 * earlier, unclipped below. Drop just the right one. */
	size_t twin = 0;
	while (twin < 5 && c->e[twin].frag != c->e[5].frag)
		twin++;
	assert_true(twin < 5);
	assert_null(c->e[twin].lo);
	assert_non_null(c->e[5].lo);
	ig__frag_t *cf = c->e[5].frag;
	assert_int_equal(ig__tablet_replace_links(j, 0, &c->e[5], 1, NULL, 0), 0);
	ig__tablet_unpin(v);
	v = ig__tablet_pin(j);
	assert_int_equal(v->g[0].n, 5);
	assert_ptr_equal(v->g[0].e[twin].frag, cf); /* the left link, still there */
	assert_null(v->g[0].e[twin].lo);
	ig__tablet_unpin(v);
	assert_rows_below(j, &w, "r20");
	ig__tablet_unref(j);
	ig__tablet_unref(l);
	ig__tablet_unref(r);
	ig__tablet_unref(t);
}

/* After a join, merging links of both sides (each clipped to its side)
 * gives one file holding both sides' rows: its link must not keep either
 * side's clip, or the other side's rows vanish. */
static void test_merge_across_join(void **state)
{
	(void)state;
	static world_t w;
	ig__frag_t *fr[3];
	ig__tablet_t *t = world_init(&w, 0x70ffull, fr), *l, *r, *j;
	for (int i = 0; i < 3; i++)
		ig__frag_unref(fr[i]);
	assert_int_equal(ig__tablet_split(t, "r20", 3, &l, &r), 0);
	assert_int_equal(ig__tablet_join(l, r, &j), 0);
	ig__tablet_view_t *v = ig__tablet_pin(j);
	const ig__chain_t *c = &v->g[0];
	assert_int_equal(c->n, 6);
	/* Memory links first, then the four disk links of both sides. */
	for (size_t i = 2; i < 6; i++)
		assert_int_equal(c->e[i].frag->kind, IG__FRAG_DISK);
	char path[128];
	snprintf(path, sizeof path, "%s/across.igf", dir);
	ig__compact_opts_t o = {.disk = {.compression = IG_COMPRESSION_NONE, .block_size = 1024},
				.includes_oldest = true, .newer = c->e, .nnewer = 2};
	ig__diskfrag_t *df;
	ig__frag_t *nf;
	assert_int_equal(ig__compact_run(&c->e[2], 4, &o, path, &df, NULL, NULL, 0), 0);
	assert_int_equal(ig__frag_create_disk(df, IG__TXN_NONE, 0, &nf), 0);
	assert_int_equal(ig__tablet_replace_links(j, 0, &c->e[2], 4, &nf, 1), 0);
	ig__frag_unref(nf);
	ig__tablet_unpin(v);
	v = ig__tablet_pin(j);
	assert_int_equal(v->g[0].n, 3);
	assert_null(v->g[0].e[2].lo);
	assert_null(v->g[0].e[2].hi);
	ig__tablet_unpin(v);
	assert_int_equal(scan_matches(j, &w), 0);
	ig__tablet_unref(j);
	ig__tablet_unref(l);
	ig__tablet_unref(r);
	ig__tablet_unref(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replace_twice_held),
		cmocka_unit_test(test_merge_across_join),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_concurrent_replacement),
		cmocka_unit_test(test_split_join),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
