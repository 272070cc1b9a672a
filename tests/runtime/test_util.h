/* Helpers shared by the runtime tests (tests/runtime/test_*.c), one copy
 * for all of them:
 *
 *   latch_t      a count that threads wait on with a deadline (mutex +
 *                condition variable on CLOCK_MONOTONIC): latch_init,
 *                latch_destroy, latch_add, latch_count, latch_wait.
 *                Actors (or other threads) add to it; the test waits for a
 *                target count instead of sleeping. The fields are public:
 *                a test may lock mu, look at or bump n, and broadcast cv.
 *   mono_ns()    CLOCK_MONOTONIC now, in nanoseconds.
 *
 * Everything is static inline, so a test includes this header and uses
 * what it needs. It includes what it uses (POSIX threads and clocks, and
 * <ingot/runtime.h> for ig_duration_t), so it compiles on its own with the
 * project's flags (-D_GNU_SOURCE, from the top-level meson.build, makes
 * CLOCK_MONOTONIC and pthread_condattr_setclock visible under -std=c11).
 */
#ifndef INGOT_TESTS_RUNTIME_TEST_UTIL_H
#define INGOT_TESTS_RUNTIME_TEST_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <ingot/runtime.h>

/* ---- clock ------------------------------------------------------------------------ */

static inline int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- latch: a counter to wait on, with a deadline ---------------------------------- */

typedef struct latch {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	long n;
} latch_t;

static inline void latch_init(latch_t *l)
{
	pthread_condattr_t ca;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	l->n = 0;
}

static inline void latch_destroy(latch_t *l)
{
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
}

static inline void latch_add(latch_t *l, long k)
{
	pthread_mutex_lock(&l->mu);
	l->n += k;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

static inline long latch_count(latch_t *l)
{
	pthread_mutex_lock(&l->mu);
	long n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

/* Waits until the count reaches target; false if the deadline (now +
 * timeout) passed first. */
static inline bool latch_wait(latch_t *l, long target, ig_duration_t timeout)
{
	int64_t deadline = mono_ns() + timeout;
	struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
	pthread_mutex_lock(&l->mu);
	int rc = 0;
	while (l->n < target && rc == 0) /* rc: ETIMEDOUT at the deadline */
		rc = pthread_cond_timedwait(&l->cv, &l->mu, &ts);
	bool ok = l->n >= target;
	pthread_mutex_unlock(&l->mu);
	return ok;
}

#endif /* INGOT_TESTS_RUNTIME_TEST_UTIL_H */
