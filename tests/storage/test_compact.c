/* Tests of compaction (storage/compact.c) and the size-tiered policy
 * (storage/compact_policy.c): random chains of memory and disk fragments
 * compacted run by run against the chain model (chain_model.h), erasures
 * and hidden cells gone after a whole-chain compaction, max-history and
 * max-age applied exactly, the policy's picks and debt on hand-made
 * chains, and a sustained load whose fragment count and write
 * amplification stay bounded.
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
#include "compact_int.h"
#include "diskfrag_int.h"
#include "frag_iter_int.h"
#include "memfrag_int.h"
#include "merge_int.h"
#include "tablet_int.h"

#define MAXF 8
#define CELLS 60
#define MAXM (MAXF * CELLS)

static char dir[64];
static unsigned file_no;

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/ingot-compact-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void next_path(char *path, size_t len)
{
	snprintf(path, len, "%s/f%u.igf", dir, file_no++);
}

/* A random chain of n fragments (odd ones on disk), newest first; model
 * receives every cell each fragment holds. */
typedef struct chain {
	ig__frag_t *f[MAXF];
	ig__chain_entry_t e[MAXF];
	size_t n;
	mcell_t model[MAXM];
	size_t nmodel;
} chain_t;

static void chain_random(chain_t *c, uint64_t seed, size_t n)
{
	memset(c, 0, sizeof *c);
	uint64_t s = seed;
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		ig__memfrag_t *mf = random_memfrag(&s, (int)i, CELLS, c->model, &c->nmodel);
		if (i % 2) {
			char path[128];
			next_path(path, sizeof path);
			ig__diskfrag_t *df = disk_copy(mf, path);
			ig__memfrag_destroy(mf);
			assert_int_equal(ig__frag_create_disk(df, 1, 1, &c->f[i]), 0);
		} else {
			assert_int_equal(ig__frag_create_mem(mf, 1, 1, &c->f[i]), 0);
		}
		c->e[i].frag = c->f[i];
	}
}

static void chain_free(chain_t *c)
{
	for (size_t i = 0; i < c->n; i++)
		ig__frag_unref(c->f[i]);
	c->n = 0;
}

/* Compacts c's run [a, a+k) and returns the fragment (one reference). */
static ig__frag_t *compact(chain_t *c, size_t a, size_t k, const ig__compact_opts_t *o,
			   ig__compact_stats_t *st)
{
	char path[128], why[256];
	next_path(path, sizeof path);
	ig__diskfrag_t *df;
	ig__compact_opts_t oo = *o;
	oo.newer = c->e;  /* the fragments newer than the run */
	oo.nnewer = a;
	int rc = ig__compact_run(&c->e[a], k, &oo, path, &df, st, why, sizeof why);
	if (rc != 0)
		fail_msg("compact: %d %s", rc, why);
	ig__frag_t *f;
	assert_int_equal(ig__frag_create_disk(df, 1, 1, &f), 0);
	return f;
}

/* Replaces c's run [a, a+k) by f (c takes over the reference). */
static void chain_replace(chain_t *c, size_t a, size_t k, ig__frag_t *f)
{
	for (size_t i = a; i < a + k; i++)
		ig__frag_unref(c->f[i]);
	c->f[a] = f;
	memmove(&c->f[a + 1], &c->f[a + k], (c->n - a - k) * sizeof c->f[0]);
	c->n -= k - 1;
	for (size_t i = 0; i < c->n; i++)
		c->e[i] = (ig__chain_entry_t){.frag = c->f[i]};
}

/* Merges entries[0..n) with flags and checks it gives want[0..nwant). */
static void check_merge(const ig__chain_entry_t *e, size_t n, unsigned flags,
			const mcell_t *want, size_t nwant)
{
	ig__frag_iter_t it[MAXF];
	ig__merge_input_t in[MAXF];
	for (size_t i = 0; i < n; i++) {
		if (e[i].frag->kind == IG__FRAG_MEM)
			ig__frag_iter_init_mem(&it[i], e[i].frag->mem);
		else
			ig__frag_iter_init_disk(&it[i], e[i].frag->disk);
		in[i] = (ig__merge_input_t){.it = &it[i]};
	}
	ig__merge_t m;
	assert_int_equal(ig__merge_init(&m, in, n, flags), 0);
	ig_cell_t got;
	size_t k = 0;
	int rc;
	while ((rc = ig__merge_next(&m, &got)) == 1) {
		if (k >= nwant)
			fail_msg("extra cell %.*s/%.*s@%lld", (int)got.key.row_len,
				 (const char *)got.key.row, (int)got.key.column_len,
				 (const char *)got.key.column, (long long)got.key.timestamp);
		assert_cell_is(&got, &want[k]);
		k++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(k, nwant);
	ig__merge_fini(&m);
	for (size_t i = 0; i < n; i++)
		ig__frag_iter_fini(&it[i]);
}

static void no_purge(ig__compact_opts_t *o, bool oldest)
{
	*o = (ig__compact_opts_t){.disk = {.compression = IG_COMPRESSION_NONE, .block_size = 512},
				  .includes_oldest = oldest};
}

/* Visible model cells (key order) filtered by max-history and max-age
 * (cells with ts < cutoff go). */
static size_t model_purged(mcell_t *all, size_t n, uint32_t hist, int64_t cutoff, mcell_t *out)
{
	mcell_t *vis = malloc(n * sizeof *vis + 1);
	assert_non_null(vis);
	size_t nv = model_visible(all, n, vis), k = 0;
	uint32_t versions = 0;
	for (size_t i = 0; i < nv; i++) {
		if (i == 0 || strcmp(vis[i].row, vis[i - 1].row) || strcmp(vis[i].col, vis[i - 1].col))
			versions = 0;
		if (vis[i].ts < cutoff || (hist && versions >= hist))
			continue;
		versions++;
		out[k++] = vis[i];
	}
	free(vis);
	return k;
}

/* ---- compaction against the model -------------------------------------- */

/* Every run of random 5-fragment chains, compacted and swapped in, leaves
 * the chain's hidden scan unchanged; runs ending at the oldest fragment
 * are compacted with includes_oldest, the others without. */
static void test_runs_keep_scan(void **state)
{
	(void)state;
	static chain_t c;
	static mcell_t want[MAXM];
	size_t with_oldest = 0, without = 0;
	for (uint64_t seed = 1; seed <= 4; seed++) {
		for (size_t a = 0; a < 5; a++) {
			for (size_t k = 2; a + k <= 5; k++) {
				chain_random(&c, seed * 7919, 5);
				size_t nwant = model_visible(c.model, c.nmodel, want);
				ig__compact_opts_t o;
				bool oldest = a + k == c.n;
				no_purge(&o, oldest);
				ig__compact_stats_t st;
				ig__frag_t *f = compact(&c, a, k, &o, &st);
				assert_true(st.cells_out <= st.cells_in);
				if (oldest) {
					with_oldest++;
					assert_true(st.erasures > 0);
				} else {
					without++;
					assert_int_equal(st.erasures, 0);
				}
				chain_replace(&c, a, k, f);
				check_merge(c.e, c.n, IG__MERGE_HIDE, want, nwant);
				chain_free(&c);
			}
		}
	}
	assert_true(with_oldest > 0 && without > 0);
}

/* Compacting a whole chain leaves exactly the visible cells: no erasure,
 * no cell an erasure hid. */
static void test_whole_chain_drops_erasures(void **state)
{
	(void)state;
	static chain_t c;
	static mcell_t want[MAXM];
	for (uint64_t seed = 11; seed <= 15; seed++) {
		chain_random(&c, seed, 6);
		size_t nwant = model_visible(c.model, c.nmodel, want);
		ig__compact_opts_t o;
		no_purge(&o, true);
		ig__compact_stats_t st;
		ig__frag_t *f = compact(&c, 0, c.n, &o, &st);
		assert_true(st.erasures > 0 && st.hidden > 0);
		assert_int_equal(st.cells_out, nwant);
		chain_replace(&c, 0, c.n, f);
		/* Without hiding, the merge returns erasures too: there are none. */
		check_merge(c.e, c.n, 0, want, nwant);
		chain_free(&c);
	}
}

/* max-history and max-age on a whole chain give exactly the model's
 * newest versions younger than the cutoff. */
static void test_purge_exact(void **state)
{
	(void)state;
	static chain_t c;
	static mcell_t want[MAXM];
	/* random_cell's timestamps are 1..8 (microseconds); now - 1 s = 4. */
	const int64_t now = 1000000 + 4;
	struct { uint32_t hist; int64_t age; int64_t cutoff; } cases[] = {
		{1, 0, INT64_MIN}, {2, 0, INT64_MIN}, {0, 1, 4}, {2, 1, 4}, {3, 0, INT64_MIN},
	};
	uint64_t hist_total = 0, aged_total = 0;
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		chain_random(&c, 100 + t, 5);
		size_t nwant = model_purged(c.model, c.nmodel, cases[t].hist, cases[t].cutoff, want);
		ig__compact_opts_t o;
		no_purge(&o, true);
		o.max_history = cases[t].hist;
		o.max_age = cases[t].age;
		o.now = now;
		ig__compact_stats_t st;
		ig__frag_t *f = compact(&c, 0, c.n, &o, &st);
		assert_int_equal(st.cells_out, nwant);
		hist_total += st.history;
		aged_total += st.aged;
		if (!cases[t].hist)
			assert_int_equal(st.history, 0);
		if (!cases[t].age)
			assert_int_equal(st.aged, 0);
		chain_replace(&c, 0, c.n, f);
		check_merge(c.e, c.n, 0, want, nwant);
		chain_free(&c);
	}
	assert_true(hist_total > 0 && aged_total > 0);
}

/* A purge in a run without the oldest fragment must not resurrect older
 * copies: compacting that run, then the whole chain, gives the same cells
 * as purging the whole chain at once. */
static void test_partial_purge_then_full(void **state)
{
	(void)state;
	static chain_t c;
	static mcell_t want[MAXM];
	const int64_t now = 1000000 + 3;
	for (uint64_t seed = 200; seed < 206; seed++) {
		chain_random(&c, seed, 5);
		uint32_t hist = 1 + (uint32_t)(seed % 2);
		int64_t age = seed % 3 == 0 ? 1 : 0;
		size_t nwant = model_purged(c.model, c.nmodel, hist, age ? 3 : INT64_MIN, want);
		ig__compact_opts_t o;
		no_purge(&o, false);
		o.max_history = hist;
		o.max_age = age;
		o.now = now;
		size_t a = seed % 2, k = 3;
		chain_replace(&c, a, k, compact(&c, a, k, &o, NULL));
		o.includes_oldest = true;
		chain_replace(&c, 0, c.n, compact(&c, 0, c.n, &o, NULL));
		check_merge(c.e, c.n, 0, want, nwant);
		chain_free(&c);
	}
}

static void test_compact_rejects(void **state)
{
	(void)state;
	ig__compact_opts_t o;
	no_purge(&o, true);
	ig__diskfrag_t *df = NULL;
	char why[128];
	ig__chain_entry_t e[1] = {{0}};
	assert_int_equal(ig__compact_run(e, 0, &o, "/nonexistent/x", &df, NULL, why, sizeof why),
			 IG_EINVAL);
	assert_int_equal(ig__compact_run(e, 1, &o, "/nonexistent/x", &df, NULL, why, sizeof why),
			 IG_EINVAL);
	/* An unfrozen memory fragment may still change: refused. */
	ig__memfrag_t *mf;
	assert_int_equal(ig__memfrag_create(&mf), 0);
	ig__frag_t *f;
	assert_int_equal(ig__frag_create_mem(mf, 1, 1, &f), 0);
	e[0].frag = f;
	assert_int_equal(ig__compact_run(e, 1, &o, "/nonexistent/x", &df, NULL, why, sizeof why),
			 IG_EINVAL);
	ig__frag_unref(f);
	assert_null(df);
}

/* ---- policy --------------------------------------------------------------- */

static const ig__tier_opts_t tiers = {.factor = 4, .min_merge = 4, .max_merge = 8};

static void test_pick(void **state)
{
	(void)state;
	size_t first = 99, count = 99;
	uint64_t a[] = {10, 10, 10, 10, 100, 1000};
	assert_int_equal(ig__compact_pick(a, 6, &tiers, &first, &count), 1);
	assert_int_equal(first, 0);
	assert_int_equal(count, 4);
	/* Three small ones wait; the four 50s (one tier up) merge. */
	uint64_t b[] = {10, 11, 12, 50, 51, 52, 53, 1000};
	assert_int_equal(ig__compact_pick(b, 8, &tiers, &first, &count), 1);
	assert_int_equal(first, 3);
	assert_int_equal(count, 4);
	/* Too few similar ones anywhere: nothing to do. */
	uint64_t c[] = {10, 10, 10, 100, 100, 100, 1000};
	assert_int_equal(ig__compact_pick(c, 7, &tiers, &first, &count), 0);
	assert_int_equal(ig__compact_pick(c, 0, &tiers, &first, &count), 0);
	/* Short flushes between a tier's fragments ride along with it
	 * instead of splitting it into runs too short ever to merge. */
	uint64_t g[] = {100, 3, 100, 2, 100, 1000};
	assert_int_equal(ig__compact_pick(g, 6, &tiers, &first, &count), 1);
	assert_int_equal(first, 0);
	assert_int_equal(count, 5);
	/* At most max_merge at once, the newest first. */
	uint64_t d[12];
	for (size_t i = 0; i < 12; i++)
		d[i] = 5;
	assert_int_equal(ig__compact_pick(d, 12, &tiers, &first, &count), 1);
	assert_int_equal(first, 0);
	assert_int_equal(count, 8);
	/* The lowest tier goes first. */
	uint64_t e[] = {10, 10, 10, 10, 50, 50, 50, 50, 50};
	assert_int_equal(ig__compact_pick(e, 9, &tiers, &first, &count), 1);
	assert_int_equal(first, 0);
	assert_int_equal(count, 4);
	ig__tier_opts_t bad = {.factor = 1, .min_merge = 4, .max_merge = 8};
	assert_int_equal(ig__compact_pick(a, 6, &bad, &first, &count), IG_EINVAL);
	bad = (ig__tier_opts_t){.factor = 4, .min_merge = 4, .max_merge = 3};
	assert_int_equal(ig__compact_pick(a, 6, &bad, &first, &count), IG_EINVAL);
}

/* Merges sizes' run [first, first+count) in place (output = sum). */
static size_t merge_sizes(uint64_t *s, size_t n, size_t first, size_t count, uint64_t *sum)
{
	*sum = 0;
	for (size_t k = first; k < first + count; k++)
		*sum += s[k];
	s[first] = *sum;
	memmove(&s[first + 1], &s[first + count], (n - first - count) * sizeof *s);
	return n - (count - 1);
}

/* Spans from "lo-hi" strings of rows; "" for an unknown (empty) file. */
static size_t runs_of(const char *const *def, size_t n, size_t *counts)
{
	ig__row_span_t sp[16];

	for (size_t i = 0; i < n; i++) {
		const char *dash = strchr(def[i], '-');

		sp[i] = dash ? (ig__row_span_t){def[i], dash + 1, (uint32_t)(dash - def[i]),
						(uint32_t)strlen(dash + 1)}
			     : (ig__row_span_t){0};
	}
	return ig__sorted_runs(sp, n, counts);
}

static void test_sorted_runs(void **state)
{
	(void)state;
	size_t c[16];
	/* A sequential load, newest (highest) first: one run. */
	const char *seq[] = {"k-l", "g-h", "c-d", "a-b"};
	assert_int_equal(runs_of(seq, 4, c), 1);
	assert_int_equal(c[0], 4);
	/* Overlapping flushes: each its own run. */
	const char *ovl[] = {"a-m", "b-n", "c-o"};
	assert_int_equal(runs_of(ovl, 3, c), 3);
	/* A file in a gap of the run joins it; one touching a member's row
	 * (the same row in two files) does not. */
	const char *gap[] = {"a-b", "e-f", "c-d", "d-e"};
	assert_int_equal(runs_of(gap, 4, c), 2);
	assert_int_equal(c[0], 3);
	assert_int_equal(c[1], 1);
	/* An empty file breaks a run and stands alone. */
	const char *emp[] = {"a-b", "", "c-d", "e-f"};
	assert_int_equal(runs_of(emp, 4, c), 3);
	assert_int_equal(c[0], 1);
	assert_int_equal(c[1], 1);
	assert_int_equal(c[2], 2);
	/* Rows compare bytewise, shorter first. */
	const char *pre[] = {"ab-abz", "a-aa"};
	assert_int_equal(runs_of(pre, 2, c), 1);
	const char *pre2[] = {"aa-ab", "a-aa"};
	assert_int_equal(runs_of(pre2, 2, c), 2);
	assert_int_equal(runs_of(seq, 0, c), 0);
}

static void test_debt(void **state)
{
	(void)state;
	uint64_t s[16];
	for (size_t i = 0; i < 16; i++)
		s[i] = 10;
	uint64_t debt;
	size_t merges;
	/* With max_merge 4: 4 merges of 4 x 10 into 40s, then one of 4 x 40. */
	const ig__tier_opts_t four = {.factor = 4, .min_merge = 4, .max_merge = 4};
	assert_int_equal(ig__compact_debt(s, 16, &four, &debt, &merges), 0);
	assert_int_equal(debt, 4 * 40 + 160);
	assert_int_equal(merges, 5);
	size_t n = 16, first, count;
	while (ig__compact_pick(s, n, &four, &first, &count) == 1) {
		uint64_t sum, after;
		n = merge_sizes(s, n, first, count, &sum);
		assert_int_equal(ig__compact_debt(s, n, &four, &after, NULL), 0);
		assert_int_equal(after, debt - sum);
		debt = after;
	}
	assert_int_equal(debt, 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0], 160);
	/* With max_merge 8 the same chain takes two merges of 8 x 10. */
	for (size_t i = 0; i < 16; i++)
		s[i] = 10;
	assert_int_equal(ig__compact_debt(s, 16, &tiers, &debt, &merges), 0);
	assert_int_equal(debt, 160);
	assert_int_equal(merges, 2);
}

/* 200 rounds of appending a fragment of S bytes and compacting per policy
 * (sizes only: an output is the sum of its inputs). The chain must stay
 * logarithmic and W = written / ingested within the documented bound. */
static void test_sustained_load(void **state)
{
	(void)state;
	enum { ROUNDS = 200, S = 1 << 20 };
	static uint64_t s[ROUNDS + 1];
	size_t n = 0, max_n = 0;
	uint64_t ingested = 0, written = 0, max_debt = 0;
	for (int r = 0; r < ROUNDS; r++) {
		memmove(&s[1], &s[0], n * sizeof *s);
		s[0] = S;
		n++;
		ingested += S;
		written += S;
		uint64_t debt;
		assert_int_equal(ig__compact_debt(s, n, &tiers, &debt, NULL), 0);
		if (debt > max_debt)
			max_debt = debt;
		size_t first, count;
		while (ig__compact_pick(s, n, &tiers, &first, &count) == 1) {
			uint64_t sum, after;
			n = merge_sizes(s, n, first, count, &sum);
			written += sum;
			assert_int_equal(ig__compact_debt(s, n, &tiers, &after, NULL), 0);
			assert_int_equal(after, debt - sum);
			debt = after;
		}
		assert_int_equal(debt, 0);
		if (n > max_n)
			max_n = n;
	}
	/* log4(200) < 4: at most 3 waiting per tier over 1 + 4 tiers. */
	double w = (double)written / (double)ingested;
	printf("sustained load: %d rounds, fragments now %zu (max %zu), "
	       "write amplification %.3f, max debt %.1f MiB\n",
	       ROUNDS, n, max_n, w, (double)max_debt / (1 << 20));
	assert_true(max_n <= 3 * 5 + 1);
	assert_true(w <= 1.0 + 4.0 + 1.0);
	assert_true(w > 1.0);
}

/* Like random_memfrag, with timestamps shifted by base: a clock that moves
 * on. (A dropped erasure no longer hides later writes with older
 * timestamps, so the model holds only for writes newer than it.) */
static ig__memfrag_t *later_memfrag(uint64_t *s, int frag, int64_t base, mcell_t *model,
				    size_t *nmodel)
{
	ig__memfrag_t *mf;
	assert_int_equal(ig__memfrag_create(&mf), 0);
	for (size_t i = 0; i < CELLS; i++) {
		mcell_t m;
		random_cell(s, &m, frag);
		m.ts += base;
		ig_cell_t c = mc_cell(&m);
		assert_int_equal(ig__memfrag_insert(mf, &c), 0);
	}
	ig__memfrag_freeze(mf);
	ig__memfrag_iter_t it;
	ig_cell_t c;
	ig__memfrag_iter_init(&it, mf);
	while (ig__memfrag_iter_next(&it, &c) == 1)
		mc_from(&model[(*nmodel)++], &c, frag);
	return mf;
}

/* The same loop on real fragments, smaller: compacting per policy keeps
 * the chain short and its scan equal to the model, erasures included. */
static void test_sustained_real(void **state)
{
	(void)state;
	static chain_t c;
	static mcell_t want[MAXM * 8];
	static mcell_t all[MAXM * 8];
	size_t nall = 0;
	memset(&c, 0, sizeof c);
	uint64_t rs = 4242;
	uint64_t ingested = 0, written = 0;
	for (int r = 0; r < 24; r++) {
		ig__memfrag_t *mf = later_memfrag(&rs, 1000 - r, (int64_t)r * 10, all, &nall);
		char path[128];
		next_path(path, sizeof path);
		ig__diskfrag_t *df = disk_copy(mf, path);
		ig__memfrag_destroy(mf);
		ig__diskfrag_info_t info;
		ig__diskfrag_info(df, &info);
		ingested += info.file_bytes;
		written += info.file_bytes;
		memmove(&c.f[1], &c.f[0], c.n * sizeof c.f[0]);
		assert_int_equal(ig__frag_create_disk(df, 1, 1, &c.f[0]), 0);
		c.n++;
		assert_true(c.n <= MAXF);
		for (size_t i = 0; i < c.n; i++)
			c.e[i] = (ig__chain_entry_t){.frag = c.f[i]};
		for (;;) {
			uint64_t sizes[MAXF];
			for (size_t i = 0; i < c.n; i++) {
				ig__diskfrag_info(c.f[i]->disk, &info);
				sizes[i] = info.file_bytes;
			}
			size_t first, count;
			if (ig__compact_pick(sizes, c.n, &tiers, &first, &count) != 1)
				break;
			ig__compact_opts_t o;
			no_purge(&o, first + count == c.n);
			ig__compact_stats_t st;
			ig__frag_t *f = compact(&c, first, count, &o, &st);
			written += st.info.file_bytes;
			chain_replace(&c, first, count, f);
		}
		/* Frag numbers (1000 - round) shrink as fragments get newer,
		 * so the model's smaller-is-newer tie-break holds. */
		static mcell_t tmp[MAXM * 8];
		memcpy(tmp, all, nall * sizeof *all);
		size_t nwant = model_visible(tmp, nall, want);
		check_merge(c.e, c.n, IG__MERGE_HIDE, want, nwant);
	}
	printf("real fragments: 24 rounds, %zu fragments, write amplification %.3f\n", c.n,
	       (double)written / (double)ingested);
	chain_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_keep_scan),
		cmocka_unit_test(test_whole_chain_drops_erasures),
		cmocka_unit_test(test_purge_exact),
		cmocka_unit_test(test_partial_purge_then_full),
		cmocka_unit_test(test_compact_rejects),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_sorted_runs),
		cmocka_unit_test(test_debt),
		cmocka_unit_test(test_sustained_load),
		cmocka_unit_test(test_sustained_real),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
