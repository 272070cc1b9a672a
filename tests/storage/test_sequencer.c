/* Tests of the sequencer (storage/sequencer.c): txn order, the committed
 * txn and its callbacks, sync waits from other threads with deadlines,
 * failure, and row conflicts against commitMaxTxn, including concurrent
 * optimistic updates. Waits use deadlines; nothing sleeps.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <ingot/storage.h>

#include "cells.h"
#include "sequencer_int.h"

static struct timespec in_ms(long ms)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* ---- txns ------------------------------------------------------------------ */

static void test_order(void **state)
{
	ig_seq_t *s;

	(void)state;
	assert_int_equal(ig_seq_create(0, &s), 0);
	assert_int_equal(ig_seq_assigned(s), 0);
	assert_int_equal(ig_seq_committed(s), 0);
	for (uint64_t t = 1; t <= 100; t++)
		assert_int_equal(ig_seq_next(s), t);
	assert_int_equal(ig_seq_assigned(s), 100);
	assert_int_equal(ig_seq_commit(s, 101), IG_EINVAL); /* never assigned */
	assert_int_equal(ig_seq_commit(s, 50), 0);
	assert_int_equal(ig_seq_committed(s), 50);
	assert_int_equal(ig_seq_commit(s, 40), 0); /* never goes back */
	assert_int_equal(ig_seq_committed(s), 50);
	ig_seq_destroy(s);

	/* After a replay, it continues past the last txn. */
	assert_int_equal(ig_seq_create(41, &s), 0);
	assert_int_equal(ig_seq_committed(s), 41);
	assert_int_equal(ig_seq_next(s), 42);
	ig_seq_destroy(s);
	assert_int_equal(ig_seq_create(UINT64_MAX, &s), IG_EINVAL);
}

/* Many threads taking txns: all distinct, none skipped. */
static ig_seq_t *shared;
static uint64_t taken[8][10000];

static void *taker(void *arg)
{
	uint64_t *out = arg;
	for (int i = 0; i < 10000; i++)
		out[i] = ig_seq_next(shared);
	return NULL;
}

static void test_next_threads(void **state)
{
	pthread_t th[8];
	static uint8_t seen[80001];

	(void)state;
	assert_int_equal(ig_seq_create(0, &shared), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, taker, taken[i]), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < 8; i++) {
		for (int j = 0; j < 10000; j++) {
			assert_true(taken[i][j] >= 1 && taken[i][j] <= 80000);
			assert_false(seen[taken[i][j]]);
			seen[taken[i][j]] = 1;
			if (j > 0)
				assert_true(taken[i][j] > taken[i][j - 1]);
		}
	}
	ig_seq_destroy(shared);
}

/* ---- callbacks --------------------------------------------------------------- */

typedef struct calls {
	uint64_t txn[64];
	uint64_t tag[64];
	int status[64];
	int n;
} calls_t;

static calls_t calls;

static void record_cb(void *arg, uint64_t txn, int status)
{
	calls.txn[calls.n] = txn;
	calls.tag[calls.n] = (uint64_t)(uintptr_t)arg;
	calls.status[calls.n++] = status;
}

static void test_callbacks(void **state)
{
	ig_seq_t *s;

	(void)state;
	memset(&calls, 0, sizeof calls);
	assert_int_equal(ig_seq_create(0, &s), 0);
	for (int i = 0; i < 10; i++)
		ig_seq_next(s);
	assert_int_equal(ig_seq_on_commit(s, 5, record_cb, (void *)1), 0);
	assert_int_equal(ig_seq_on_commit(s, 3, record_cb, (void *)2), 0);
	assert_int_equal(ig_seq_on_commit(s, 3, record_cb, (void *)3), 0);
	assert_int_equal(ig_seq_on_commit(s, 7, record_cb, (void *)4), 0);
	assert_int_equal(ig_seq_on_commit(s, 9, record_cb, (void *)5), 0);
	assert_int_equal(calls.n, 0);
	assert_int_equal(ig_seq_commit(s, 4), 0);
	assert_int_equal(calls.n, 2);
	assert_int_equal(calls.tag[0], 2); /* equal txns: registration order */
	assert_int_equal(calls.tag[1], 3);
	assert_int_equal(ig_seq_commit(s, 7), 0);
	assert_int_equal(calls.n, 4);
	assert_int_equal(calls.txn[2], 5);
	assert_int_equal(calls.txn[3], 7);
	for (int i = 0; i < 4; i++)
		assert_int_equal(calls.status[i], 0);
	/* Already committed: runs at once, on this thread. */
	assert_int_equal(ig_seq_on_commit(s, 6, record_cb, (void *)6), 0);
	assert_int_equal(calls.n, 5);
	assert_int_equal(calls.tag[4], 6);
	/* Destroy runs what is left with IG_ESTOPPED. */
	ig_seq_destroy(s);
	assert_int_equal(calls.n, 6);
	assert_int_equal(calls.txn[5], 9);
	assert_int_equal(calls.status[5], IG_ESTOPPED);
}

/* ---- sync ----------------------------------------------------------------------- */

typedef struct syncer {
	ig_seq_t *s;
	uint64_t txn;
	long ms;
	int rc;
	uint64_t committed_at_return;
	atomic_int started;
	pthread_t th;
} syncer_t;

static void *sync_thread(void *arg)
{
	syncer_t *y = arg;
	struct timespec dl = in_ms(y->ms);
	atomic_store(&y->started, 1);
	y->rc = ig_seq_sync(y->s, y->txn, &dl);
	y->committed_at_return = ig_seq_committed(y->s);
	return NULL;
}

static void test_sync_from_threads(void **state)
{
	ig_seq_t *s;
	syncer_t y[4];

	(void)state;
	assert_int_equal(ig_seq_create(0, &s), 0);
	for (int i = 0; i < 40; i++)
		ig_seq_next(s);
	for (int i = 0; i < 4; i++) {
		y[i] = (syncer_t){.s = s, .txn = 10 * (uint64_t)(i + 1), .ms = 30000};
		assert_int_equal(pthread_create(&y[i].th, NULL, sync_thread, &y[i]), 0);
	}
	/* Commit in steps; each waiter returns once its txn is durable, never
	 * before. */
	for (uint64_t t = 5; t <= 40; t += 5)
		assert_int_equal(ig_seq_commit(s, t), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(y[i].th, NULL), 0);
		assert_int_equal(y[i].rc, 0);
		assert_true(y[i].committed_at_return >= y[i].txn);
	}
	/* A committed txn returns at once, deadline or not. */
	assert_int_equal(ig_seq_sync(s, 40, NULL), 0);
	struct timespec past = in_ms(0);
	assert_int_equal(ig_seq_sync(s, 1, &past), 0);
	ig_seq_destroy(s);
}

static void test_sync_deadline(void **state)
{
	ig_seq_t *s;
	struct timespec t0, dl;

	(void)state;
	assert_int_equal(ig_seq_create(0, &s), 0);
	ig_seq_next(s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	dl = in_ms(50);
	assert_int_equal(ig_seq_sync(s, 1, &dl), IG_ETIMEDOUT);
	assert_true(elapsed_ms(&t0) >= 49);
	/* A waiting thread is released by the commit, well before its deadline. */
	syncer_t y = {.s = s, .txn = 1, .ms = 60000};
	assert_int_equal(pthread_create(&y.th, NULL, sync_thread, &y), 0);
	while (!atomic_load(&y.started))
		sched_yield();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ig_seq_commit(s, 1), 0);
	assert_int_equal(pthread_join(y.th, NULL), 0);
	assert_int_equal(y.rc, 0);
	assert_true(elapsed_ms(&t0) < 30000);
	ig_seq_destroy(s);
}

static void test_fail(void **state)
{
	ig_seq_t *s;
	syncer_t y;

	(void)state;
	memset(&calls, 0, sizeof calls);
	assert_int_equal(ig_seq_create(0, &s), 0);
	for (int i = 0; i < 20; i++)
		ig_seq_next(s);
	assert_int_equal(ig_seq_commit(s, 5), 0);
	assert_int_equal(ig_seq_on_commit(s, 10, record_cb, (void *)1), 0);
	y = (syncer_t){.s = s, .txn = 20, .ms = 60000};
	assert_int_equal(pthread_create(&y.th, NULL, sync_thread, &y), 0);
	while (!atomic_load(&y.started))
		sched_yield();
	ig_seq_fail(s, -EIO);
	assert_int_equal(pthread_join(y.th, NULL), 0);
	assert_int_equal(y.rc, -EIO);
	assert_int_equal(calls.n, 1);
	assert_int_equal(calls.status[0], -EIO);
	/* Afterwards: nothing commits, new waits and callbacks fail at once,
	 * and what committed before the failure stays committed. */
	assert_int_equal(ig_seq_commit(s, 15), -EIO);
	assert_int_equal(ig_seq_committed(s), 5);
	assert_int_equal(ig_seq_sync(s, 12, NULL), -EIO);
	assert_int_equal(ig_seq_sync(s, 5, NULL), 0);
	assert_int_equal(ig_seq_on_commit(s, 12, record_cb, (void *)2), 0);
	assert_int_equal(calls.n, 2);
	assert_int_equal(calls.status[1], -EIO);
	ig_seq_fail(s, -ENOSPC); /* the first failure sticks */
	assert_int_equal(ig_seq_sync(s, 12, NULL), -EIO);
	ig_seq_destroy(s);
}

/* ---- conflicts ------------------------------------------------------------------- */

typedef struct blk {
	uint8_t b[4096];
	ig_packed_t p;
} blk_t;

/* A block with one cell per row in rows (NULL-terminated). */
static void make_rows(blk_t *k, const char *const *rows)
{
	ig_cell_t c[16];
	size_t n = 0, len;

	while (rows[n]) {
		c[n] = cell_set(rows[n], "f:q", 1, "v");
		n++;
	}
	assert_int_equal(ig_packed_encode(c, n, 0, k->b, sizeof k->b, &len), 0);
	assert_int_equal(ig_packed_open(k->b, len, &k->p, NULL), 0);
}

static void test_conflicts(void **state)
{
	ig_seq_t *s;
	blk_t ab, c, ca;
	uint64_t t1, t2, t3, t;
	uint32_t bb = 7, bc = 7;

	(void)state;
	make_rows(&ab, (const char *const[]){"a", "b", NULL});
	make_rows(&c, (const char *const[]){"c", NULL});
	make_rows(&ca, (const char *const[]){"c", "a", NULL});
	assert_int_equal(ig_seq_create(0, &s), 0);
	assert_int_equal(ig_seq_apply(s, 1, &ab.p, 1, IG_TXN_ANY, &t1, NULL, NULL), 0);
	assert_int_equal(t1, 1);
	assert_int_equal(ig_seq_row_txn(s, 1, "a", 1, &t), 0);
	assert_int_equal(t, 1);
	assert_int_equal(ig_seq_row_txn(s, 2, "a", 1, &t), IG_ENOTFOUND);
	assert_int_equal(ig_seq_row_txn(s, 1, "c", 1, &t), IG_ENOTFOUND);
	/* Read at t1, write: fine, nothing changed since. */
	assert_int_equal(ig_seq_apply(s, 1, &ab.p, 1, t1, &t2, NULL, NULL), 0);
	assert_int_equal(t2, 2);
	/* Another writer read at t1 too: "a" changed at t2 > t1. */
	assert_int_equal(ig_seq_apply(s, 1, &ca.p, 1, t1, &t, &bb, &bc), IG_ECONFLICT);
	assert_int_equal(bb, 0);
	assert_int_equal(bc, 1); /* cell 1 is row "a" */
	assert_int_equal(ig_seq_assigned(s), 2); /* no txn used up */
	assert_int_equal(ig_seq_row_txn(s, 1, "c", 1, &t), IG_ENOTFOUND); /* nothing noted */
	/* Rows nobody changed, or another table's: no conflict. */
	assert_int_equal(ig_seq_apply(s, 1, &c.p, 1, t1, &t3, NULL, NULL), 0);
	assert_int_equal(ig_seq_apply(s, 2, &ab.p, 1, 0, &t, NULL, NULL), 0);
	/* Several blocks: the second one conflicts. */
	blk_t two[2] = {c, ab};
	ig_packed_t ps[2] = {c.p, ab.p};
	(void)two;
	assert_int_equal(ig_seq_apply(s, 1, ps, 2, t3, &t, &bb, &bc), 0); /* nothing after t3 */
	assert_int_equal(ig_seq_apply(s, 1, ps, 2, t3, &t, &bb, &bc), IG_ECONFLICT);
	assert_int_equal(bb, 0);
	assert_int_equal(bc, 0);
	/* Forgetting bounds memory; older snapshots then conflict outright. */
	uint64_t last = ig_seq_assigned(s);
	assert_int_equal(ig_seq_rows(s), 5);
	assert_int_equal(ig_seq_forget(s, last - 1), 3); /* the last apply's rows stay */
	assert_int_equal(ig_seq_row_txn(s, 2, "a", 1, &t), IG_ENOTFOUND);
	assert_int_equal(ig_seq_apply(s, 1, &c.p, 1, last - 2, &t, &bb, &bc), IG_ECONFLICT);
	assert_int_equal(bb, UINT32_MAX);
	assert_int_equal(bc, UINT32_MAX);
	assert_int_equal(ig_seq_apply(s, 2, &c.p, 1, last, &t, NULL, NULL), 0);
	assert_int_equal(ig_seq_apply(s, 1, NULL, 1, 0, &t, NULL, NULL), IG_EINVAL);
	ig_seq_destroy(s);

	/* After a restart, snapshots older than the replayed txn conflict. */
	assert_int_equal(ig_seq_create(100, &s), 0);
	assert_int_equal(ig_seq_apply(s, 1, &c.p, 1, 99, &t, NULL, NULL), IG_ECONFLICT);
	assert_int_equal(ig_seq_apply(s, 1, &c.p, 1, 100, &t, NULL, NULL), 0);
	assert_int_equal(t, 101);
	ig_seq_destroy(s);
}

static void test_many_rows(void **state)
{
	ig_seq_t *s;
	uint64_t t;

	(void)state;
	assert_int_equal(ig_seq_create(0, &s), 0);
	for (int i = 0; i < 20000; i++) {
		char row[16];
		blk_t k;
		snprintf(row, sizeof row, "r%d", i);
		make_rows(&k, (const char *const[]){row, NULL});
		assert_int_equal(ig_seq_apply(s, (uint64_t)(i % 3), &k.p, 1, IG_TXN_ANY, &t, NULL, NULL), 0);
		assert_int_equal(t, (uint64_t)i + 1);
	}
	assert_int_equal(ig_seq_rows(s), 20000);
	for (int i = 0; i < 20000; i++) {
		char row[16];
		snprintf(row, sizeof row, "r%d", i);
		assert_int_equal(ig_seq_row_txn(s, (uint64_t)(i % 3), row, strlen(row), &t), 0);
		assert_int_equal(t, (uint64_t)i + 1);
	}
	assert_int_equal(ig_seq_forget(s, 15000), 5000);
	assert_int_equal(ig_seq_row_txn(s, 0, "r0", 2, &t), IG_ENOTFOUND);
	assert_int_equal(ig_seq_row_txn(s, 19999 % 3, "r19999", 6, &t), 0);
	ig_seq_destroy(s);
}

/* Optimistic updates of one row from several threads: read the row's
 * txn, apply with it as commitMaxTxn. Two successes must never start from
 * the same version, and every version is the txn of one success. */
typedef struct opt {
	ig_seq_t *s;
	blk_t *k;
	uint64_t from[20000];
	int wins;
	int conflicts;
} opt_t;

static pthread_barrier_t go;

static void *optimist(void *arg)
{
	opt_t *o = arg;
	uint64_t rng = (uint64_t)(uintptr_t)arg | 1;

	pthread_barrier_wait(&go);
	for (int i = 0; i < 20000; i++) {
		uint64_t seen = 0, t;
		if (ig_seq_row_txn(o->s, 9, "hot", 3, &seen) != 0)
			seen = 0;
		/* Widen the read-to-apply window so the threads interleave. */
		for (volatile uint64_t spin = rng_next(&rng) % 512; spin > 0; spin--)
			;
		int rc = ig_seq_apply(o->s, 9, &o->k->p, 1, seen, &t, NULL, NULL);
		if (rc == 0)
			o->from[o->wins++] = seen;
		else if (rc == IG_ECONFLICT)
			o->conflicts++;
		else
			return (void *)1;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void test_concurrent_optimistic(void **state)
{
	static opt_t o[4];
	static uint64_t all[80000];
	pthread_t th[4];
	blk_t k;
	ig_seq_t *s;
	size_t n = 0;
	int conflicts = 0;

	(void)state;
	make_rows(&k, (const char *const[]){"hot", NULL});
	assert_int_equal(ig_seq_create(0, &s), 0);
	assert_int_equal(pthread_barrier_init(&go, NULL, 4), 0);
	for (int i = 0; i < 4; i++) {
		memset(&o[i], 0, sizeof o[i]);
		o[i].s = s;
		o[i].k = &k;
		assert_int_equal(pthread_create(&th[i], NULL, optimist, &o[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *r;
		assert_int_equal(pthread_join(th[i], &r), 0);
		assert_null(r);
		for (int j = 0; j < o[i].wins; j++)
			all[n++] = o[i].from[j];
		conflicts += o[i].conflicts;
	}
	qsort(all, n, sizeof all[0], cmp_u64);
	for (size_t i = 1; i < n; i++)
		assert_true(all[i] != all[i - 1]);
	/* Only the "hot" row is touched, so each win's txn is the version the
	 * next win read: the versions read are 0 and every txn but the last. */
	assert_int_equal(n, ig_seq_assigned(s));
	assert_int_equal(all[0], 0);
	for (size_t i = 1; i < n; i++)
		assert_int_equal(all[i], i);
	assert_int_equal(n + (size_t)conflicts, 80000);
	print_message("optimistic: %zu wins, %d conflicts\n", n, conflicts);
	pthread_barrier_destroy(&go);
	ig_seq_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_next_threads),
		cmocka_unit_test(test_callbacks),
		cmocka_unit_test(test_sync_from_threads),
		cmocka_unit_test(test_sync_deadline),
		cmocka_unit_test(test_fail),
		cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_many_rows),
		cmocka_unit_test(test_concurrent_optimistic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
