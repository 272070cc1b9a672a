/* The chain model shared by test_merge, test_scan and test_tablet: a
 * reference model of cells (mcell_t, conversion to and from ig_cell_t,
 * model_visible: what a scan without predicates returns), random chains of
 * memory and disk fragments over a small colliding key space
 * (random_cell, random_memfrag, disk_copy), and assert_cell_is to compare
 * a merged cell against the model. Every function is static inline and
 * marked unused, so a test that does not call one (or this header compiled
 * on its own) does not trip -Wunused-function.
 */
#ifndef INGOT_TESTS_STORAGE_CHAIN_MODEL_H
#define INGOT_TESTS_STORAGE_CHAIN_MODEL_H

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
#include "diskfrag_int.h"
#include "memfrag_int.h"


typedef struct mcell {
	char row[16];
	char col[16];
	int64_t ts;
	ig_cell_kind_t kind;
	char val[24];
	int frag;  /* index in the chain, 0 = newest */
} mcell_t;

__attribute__((unused))
static inline ig_cell_t mc_cell(const mcell_t *m)
{
	return m->kind == IG_CELL_SET ? cell_set(m->row, m->col, m->ts, m->val)
				      : cell_erase(m->row, m->col, m->ts);
}

__attribute__((unused))
static inline void mc_from(mcell_t *m, const ig_cell_t *c, int frag)
{
	memset(m, 0, sizeof *m);
	assert_true(c->key.row_len < sizeof m->row && c->key.column_len < sizeof m->col &&
		    c->value_len < sizeof m->val);
	memcpy(m->row, c->key.row, c->key.row_len);
	memcpy(m->col, c->key.column, c->key.column_len);
	if (c->value_len)
		memcpy(m->val, c->value, c->value_len);
	m->ts = c->key.timestamp;
	m->kind = c->kind;
	m->frag = frag;
}

__attribute__((unused))
static inline int mc_cmp(const void *a, const void *b)
{
	const mcell_t *x = a, *y = b;
	ig_cell_t cx = mc_cell(x), cy = mc_cell(y);
	int c = ig_cell_key_cmp(&cx.key, &cy.key);
	return c ? c : (x->frag > y->frag) - (x->frag < y->frag);
}

/* What a scan without predicates returns: per key the newest fragment's
 * cell; a winning erasure hides its (row, column) at and below its
 * timestamp; erasures are not returned. Sorts all[] in place. */
__attribute__((unused))
static inline size_t model_visible(mcell_t *all, size_t n, mcell_t *out)
{
	qsort(all, n, sizeof *all, mc_cmp);
	size_t k = 0;
	const mcell_t *er = NULL;
	for (size_t i = 0; i < n; i++) {
		const mcell_t *m = &all[i];
		if (i > 0 && strcmp(m->row, all[i - 1].row) == 0 &&
		    strcmp(m->col, all[i - 1].col) == 0 && m->ts == all[i - 1].ts)
			continue;  /* an older fragment's copy of the same key */
		if (er && strcmp(er->row, m->row) == 0 && strcmp(er->col, m->col) == 0)
			continue;
		er = NULL;
		if (m->kind == IG_CELL_ERASURE) {
			er = m;
			continue;
		}
		out[k++] = *m;
	}
	return k;
}

/* Random cells over a small key space so keys collide across fragments. */
__attribute__((unused))
static inline void random_cell(uint64_t *s, mcell_t *m, int frag)
{
	memset(m, 0, sizeof *m);
	snprintf(m->row, sizeof m->row, "r%02u", (unsigned)(rng_next(s) % 40));
	snprintf(m->col, sizeof m->col, "%c:q%u", "abc"[rng_next(s) % 3],
		 (unsigned)(rng_next(s) % 3));
	m->ts = (int64_t)(rng_next(s) % 8) + 1;
	m->kind = rng_next(s) % 5 == 0 ? IG_CELL_ERASURE : IG_CELL_SET;
	if (m->kind == IG_CELL_SET)
		snprintf(m->val, sizeof m->val, "v%u.%d", (unsigned)(rng_next(s) % 1000), frag);
	m->frag = frag;
}

/* A frozen memory fragment of ncells random writes; appends what it holds
 * (after its own dedup: the last write of a key wins) to model[*nmodel]. */
__attribute__((unused))
static inline ig__memfrag_t *random_memfrag(uint64_t *s, int frag, size_t ncells,
					    mcell_t *model, size_t *nmodel)
{
	ig__memfrag_t *mf;
	assert_int_equal(ig__memfrag_create(&mf), 0);
	for (size_t i = 0; i < ncells; i++) {
		mcell_t m;
		random_cell(s, &m, frag);
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

__attribute__((unused))
static inline int mf_source_next(void *ctx, ig_cell_t *out)
{
	return ig__memfrag_iter_next(ctx, out);
}

/* Writes mf's cells as a disk fragment at path (small blocks, so a scan
 * crosses many) and opens it. Ownership: one reference. */
__attribute__((unused))
static inline ig__diskfrag_t *disk_copy(const ig__memfrag_t *mf, const char *path)
{
	ig__memfrag_iter_t it;
	ig__memfrag_iter_init(&it, mf);
	ig__cell_source_t src = {.next = mf_source_next, .ctx = &it};
	ig__diskfrag_opts_t opts = {.compression = IG_COMPRESSION_NONE, .block_size = 512};
	char why[256];
	assert_int_equal(ig__diskfrag_write(path, &opts, &src, NULL, why, sizeof why), 0);
	ig__diskfrag_t *df;
	assert_int_equal(ig__diskfrag_open(path, &df, why, sizeof why), 0);
	return df;
}

__attribute__((unused))
static inline void assert_cell_is(const ig_cell_t *got, const mcell_t *want)
{
	ig_cell_t w = mc_cell(want);
	if (!cells_equal(got, &w))
		fail_msg("got %.*s/%.*s@%lld, want %s/%s@%lld=%s", (int)got->key.row_len,
			 (const char *)got->key.row, (int)got->key.column_len,
			 (const char *)got->key.column, (long long)got->key.timestamp, want->row,
			 want->col, (long long)want->ts, want->val);
}

#endif
