/* Tests of memory fragments (storage/memfrag.c): order, later-write-wins
 * deduplication and seek checked against a reference sort of random data;
 * all-or-nothing apply; freezing; memory accounting; and a reader walking
 * the fragment while one writer inserts.
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

#include <cmocka.h>

#include <ingot/storage.h>

#include "cells.h"
#include "memfrag_int.h"

/* A reference cell: owned bytes and the order it was written in. */
struct ref {
	char row[12];
	char col[12];
	char val[24];
	int64_t ts;
	ig_cell_kind_t kind;
	uint32_t seq;
};

static ig_cell_t ref_cell(const struct ref *r)
{
	return r->kind == IG_CELL_SET ? cell_set(r->row, r->col, r->ts, r->val)
				      : cell_erase(r->row, r->col, r->ts);
}

/* Key order, then write order: the last of a run of equal keys wins. */
static int ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;
	ig_cell_t cx = ref_cell(x), cy = ref_cell(y);
	int c = ig_cell_key_cmp(&cx.key, &cy.key);

	return c != 0 ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static void random_ref(uint64_t *s, struct ref *r, uint32_t seq, unsigned nrows)
{
	snprintf(r->row, sizeof r->row, "r%05u", (unsigned)(rng_next(s) % nrows));
	snprintf(r->col, sizeof r->col, "f%u:q%u", (unsigned)(rng_next(s) % 3),
		 (unsigned)(rng_next(s) % 4));
	r->ts = (int64_t)(rng_next(s) % 5) - 2;
	r->kind = rng_next(s) % 8 == 0 ? IG_CELL_ERASURE : IG_CELL_SET;
	r->val[0] = 0;
	if (r->kind == IG_CELL_SET)
		snprintf(r->val, sizeof r->val, "v%u.%llu", seq,
			 (unsigned long long)(rng_next(s) % 1000));
	r->seq = seq;
}

/* Sorts refs and keeps the last write of each key; returns the new count. */
static size_t ref_dedup(struct ref *refs, size_t n)
{
	size_t out = 0;

	qsort(refs, n, sizeof *refs, ref_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n) {
			ig_cell_t a = ref_cell(&refs[i]), b = ref_cell(&refs[i + 1]);
			if (ig_cell_key_cmp(&a.key, &b.key) == 0)
				continue;
		}
		refs[out++] = refs[i];
	}
	return out;
}

/* Inserts refs[0..n) in write order: blocks of up to 64 through apply, the
 * rest one at a time. */
static void fill(ig__memfrag_t *mf, const struct ref *refs, size_t n, uint64_t *s)
{
	static uint8_t buf[1 << 16];
	size_t i = 0;

	while (i < n) {
		size_t take = 1 + rng_next(s) % 64;
		if (take > n - i)
			take = n - i;
		if (rng_next(s) % 2) {
			ig_cell_t cells[64];
			ig_packed_t p;
			size_t len;

			for (size_t j = 0; j < take; j++)
				cells[j] = ref_cell(&refs[i + j]);
			assert_int_equal(ig_packed_encode(cells, take, 0, buf, sizeof buf, &len), 0);
			assert_int_equal(ig_packed_open(buf, len, &p, NULL), 0);
			assert_int_equal(ig__memfrag_apply(mf, &p), 0);
		} else {
			for (size_t j = 0; j < take; j++) {
				ig_cell_t c = ref_cell(&refs[i + j]);
				assert_int_equal(ig__memfrag_insert(mf, &c), 0);
			}
		}
		i += take;
	}
}

static void assert_cell_is(const ig_cell_t *got, const struct ref *want)
{
	ig_cell_t w = ref_cell(want);
	if (!cells_equal(got, &w))
		fail_msg("cell %.*s %.*s %lld differs from the reference %s %s %lld (seq %u)",
			 (int)got->key.row_len, (const char *)got->key.row,
			 (int)got->key.column_len, (const char *)got->key.column,
			 (long long)got->key.timestamp, want->row, want->col,
			 (long long)want->ts, want->seq);
}

/* Index of the first reference cell >= key (refs sorted and unique). */
static size_t ref_lower_bound(const struct ref *refs, size_t n, const ig_cell_key_t *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		ig_cell_t c = ref_cell(&refs[mid]);
		if (ig_cell_key_cmp(&c.key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void test_random_vs_reference(void **state)
{
	(void)state;
	for (unsigned round = 0; round < 4; round++) {
		uint64_t s = 0x1234567ull + round;
		size_t n = 20000;
		unsigned nrows = round % 2 ? 200 : 5000;  /* dense and sparse duplicates */
		struct ref *refs = malloc(n * sizeof *refs);
		ig__memfrag_t *mf;

		assert_non_null(refs);
		for (size_t i = 0; i < n; i++)
			random_ref(&s, &refs[i], (uint32_t)i, nrows);
		assert_int_equal(ig__memfrag_create(&mf), 0);
		fill(mf, refs, n, &s);
		size_t u = ref_dedup(refs, n);

		/* Full iteration: the reference, cell for cell. */
		ig__memfrag_iter_t it;
		ig_cell_t c;
		size_t i = 0;
		ig__memfrag_iter_init(&it, mf);
		while (ig__memfrag_iter_next(&it, &c) == 1) {
			assert_true(i < u);
			assert_cell_is(&c, &refs[i]);
			i++;
		}
		assert_int_equal(i, u);

		ig__memfrag_stats_t st;
		ig__memfrag_stats(mf, &st);
		assert_int_equal(st.cells, u);
		assert_int_equal(st.replaced, n - u);
		assert_true(st.arena_bytes >= st.cell_bytes);

		/* Seek to random keys, present or not. */
		for (unsigned k = 0; k < 2000; k++) {
			struct ref probe;
			random_ref(&s, &probe, 0, nrows + 10);
			ig_cell_t pc = ref_cell(&probe);
			size_t want = ref_lower_bound(refs, u, &pc.key);

			ig__memfrag_iter_seek(&it, &pc.key);
			if (want == u) {
				assert_int_equal(ig__memfrag_iter_next(&it, &c), 0);
			} else {
				assert_int_equal(ig__memfrag_iter_next(&it, &c), 1);
				assert_cell_is(&c, &refs[want]);
			}

			/* seek(row) and seek(row, column): the first version. */
			ig_cell_key_t rk = {.row = probe.row, .row_len = (uint32_t)strlen(probe.row),
					    .column = "", .column_len = 0, .timestamp = INT64_MAX};
			want = ref_lower_bound(refs, u, &rk);
			ig__memfrag_iter_seek_row(&it, probe.row, rk.row_len, NULL, 0);
			if (want == u) {
				assert_int_equal(ig__memfrag_iter_next(&it, &c), 0);
			} else {
				assert_int_equal(ig__memfrag_iter_next(&it, &c), 1);
				assert_cell_is(&c, &refs[want]);
			}
			rk.column = probe.col;
			rk.column_len = (uint32_t)strlen(probe.col);
			want = ref_lower_bound(refs, u, &rk);
			ig__memfrag_iter_seek_row(&it, probe.row, rk.row_len, probe.col,
						  rk.column_len);
			if (want == u) {
				assert_int_equal(ig__memfrag_iter_next(&it, &c), 0);
			} else {
				assert_int_equal(ig__memfrag_iter_next(&it, &c), 1);
				assert_cell_is(&c, &refs[want]);
			}
		}
		printf("memfrag: %zu writes, %zu cells, %llu cell bytes, %llu arena bytes "
		       "(%.1f bytes per cell)\n", n, u, (unsigned long long)st.cell_bytes,
		       (unsigned long long)st.arena_bytes, (double)st.arena_bytes / (double)u);
		ig__memfrag_destroy(mf);
		free(refs);
	}
}

static void test_later_write_wins(void **state)
{
	(void)state;
	ig__memfrag_t *mf;
	ig__memfrag_iter_t it;
	ig_cell_t c;
	ig_cell_t a = cell_set("r", "f:a", 5, "one");
	ig_cell_t b = cell_erase("r", "f:a", 5);
	ig_cell_t d = cell_set("r", "f:a", 5, "three");

	assert_int_equal(ig__memfrag_create(&mf), 0);
	assert_int_equal(ig__memfrag_insert(mf, &a), 0);
	assert_int_equal(ig__memfrag_insert(mf, &b), 0);
	ig__memfrag_iter_init(&it, mf);
	assert_int_equal(ig__memfrag_iter_next(&it, &c), 1);
	assert_true(cells_equal(&c, &b));
	assert_int_equal(ig__memfrag_iter_next(&it, &c), 0);

	/* A reader holding the old cell keeps valid bytes after a replace. */
	ig__memfrag_iter_init(&it, mf);
	assert_int_equal(ig__memfrag_iter_next(&it, &c), 1);
	assert_int_equal(ig__memfrag_insert(mf, &d), 0);
	assert_true(cells_equal(&c, &b));
	ig__memfrag_iter_init(&it, mf);
	assert_int_equal(ig__memfrag_iter_next(&it, &c), 1);
	assert_true(cells_equal(&c, &d));
	ig__memfrag_destroy(mf);
}

static void test_freeze_and_bad_cells(void **state)
{
	(void)state;
	ig__memfrag_t *mf;
	ig_cell_t ok = cell_set("r", "f:a", 1, "v");
	ig_cell_t bad = cell_set("r", "nocolon", 1, "v");
	ig__memfrag_stats_t st;
	uint8_t buf[256];
	size_t len;
	ig_packed_t p;

	assert_int_equal(ig__memfrag_create(&mf), 0);
	assert_int_equal(ig__memfrag_insert(mf, &bad), IG_EINVAL);
	assert_int_equal(ig__memfrag_insert(mf, &ok), 0);
	assert_false(ig__memfrag_frozen(mf));
	ig__memfrag_freeze(mf);
	assert_true(ig__memfrag_frozen(mf));
	assert_int_equal(ig__memfrag_insert(mf, &ok), IG_ESTATE);
	assert_int_equal(ig_packed_encode(&ok, 1, 0, buf, sizeof buf, &len), 0);
	assert_int_equal(ig_packed_open(buf, len, &p, NULL), 0);
	assert_int_equal(ig__memfrag_apply(mf, &p), IG_ESTATE);
	ig__memfrag_stats(mf, &st);
	assert_int_equal(st.cells, 1);
	ig__memfrag_destroy(mf);
	ig__memfrag_destroy(NULL);
}

/* Large values go to their own arena chunks and still read back whole. */
static void test_large_values(void **state)
{
	(void)state;
	ig__memfrag_t *mf;
	ig__memfrag_iter_t it;
	ig_cell_t c;
	size_t big = 1u << 20;
	char *v = malloc(big + 1);

	assert_non_null(v);
	memset(v, 'x', big);
	v[big] = 0;
	assert_int_equal(ig__memfrag_create(&mf), 0);
	for (int i = 0; i < 3; i++) {
		ig_cell_t x = cell_set("row", "f:q", i, v);
		assert_int_equal(ig__memfrag_insert(mf, &x), 0);
	}
	ig__memfrag_iter_init(&it, mf);
	for (int i = 2; i >= 0; i--) {
		assert_int_equal(ig__memfrag_iter_next(&it, &c), 1);
		assert_int_equal(c.key.timestamp, i);
		assert_int_equal(c.value_len, big);
		assert_memory_equal(c.value, v, big);
	}
	ig__memfrag_destroy(mf);
	free(v);
}

/* One writer, one reader: every walk the reader makes is strictly
 * ascending and never shorter than the count it saw before it started. */
struct race {
	ig__memfrag_t *mf;
	atomic_bool done;
	unsigned walks;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	bool last = false;

	while (!last) {
		last = atomic_load(&r->done);
		ig__memfrag_stats_t st;
		ig__memfrag_stats(r->mf, &st);
		ig__memfrag_iter_t it;
		ig_cell_t prev, c;
		uint64_t n = 0;

		ig__memfrag_iter_init(&it, r->mf);
		while (ig__memfrag_iter_next(&it, &c) == 1) {
			if (n > 0 && ig_cell_key_cmp(&prev.key, &c.key) >= 0)
				return (void *)"out of order";
			if (c.kind == IG_CELL_SET && c.value_len != 8)
				return (void *)"torn value";
			prev = c;
			n++;
		}
		if (n < st.cells)
			return (void *)"lost cells";
		r->walks++;
	}
	return NULL;
}

static void test_reader_during_writes(void **state)
{
	(void)state;
	struct race r = {0};
	pthread_t t;
	void *res;
	uint64_t s = 99;

	assert_int_equal(ig__memfrag_create(&r.mf), 0);
	atomic_init(&r.done, false);
	assert_int_equal(pthread_create(&t, NULL, reader, &r), 0);
	for (unsigned i = 0; i < 30000; i++) {
		char row[16], val[9];
		snprintf(row, sizeof row, "r%06u", (unsigned)(rng_next(&s) % 10000));
		snprintf(val, sizeof val, "%08u", i);
		ig_cell_t c = cell_set(row, "f:q", (int64_t)(rng_next(&s) % 3), val);
		assert_int_equal(ig__memfrag_insert(r.mf, &c), 0);
	}
	atomic_store(&r.done, true);
	assert_int_equal(pthread_join(t, &res), 0);
	if (res != NULL)
		fail_msg("reader: %s", (const char *)res);
	assert_true(r.walks >= 1);
	ig__memfrag_destroy(r.mf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_vs_reference),
		cmocka_unit_test(test_later_write_wins),
		cmocka_unit_test(test_freeze_and_bad_cells),
		cmocka_unit_test(test_large_values),
		cmocka_unit_test(test_reader_during_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
