/* Dispatchers: worker threads that run actor turns.
 *
 * Each worker has a `runnext` slot and a small FIFO ring. An actor woken by
 * a send from a running actor goes to the sender's runnext and runs on the
 * same core right after the sender's turn: a cross-core wake-up costs tens
 * of microseconds here, a same-core hand-off a few nanoseconds. Work that
 * piles up in a ring wakes a parked worker, which steals from the ring's
 * head. Actors scheduled from outside a dispatcher's threads go through its
 * injection queue. Idle workers spin briefly, then park on a futex.
 */
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime_int.h"

#define RUNNEXT_STREAK_MAX 32 /* then let the ring run: fairness */
#define INJECTION_EVERY 61    /* turns between injection-queue checks */
#define STALE_PARK_NS 2000000 /* timed park while others are busy */
#define QUIESCENT_EVERY 256   /* turns between RCU quiescent points */
#define STALE_CHECK_NS 1000000 /* a runnext is stuck after 1 ms without progress */

static IG_TLS ig__worker_t *cur_worker;

ig__worker_t *ig__current_worker(void)
{
	return cur_worker;
}

static ig_actor_t *actor_of(ig__node_t *n)
{
	return n ? (ig_actor_t *)((char *)n - offsetof(ig_actor_t, sched)) : NULL;
}

/* ---- futex ------------------------------------------------------------------ */

static void futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tp = &ts;
	}
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ---- queues ------------------------------------------------------------------ */

static bool ring_push(ig__worker_t *w, ig_actor_t *a)
{
	uint32_t h = atomic_load_explicit(&w->head, memory_order_acquire);
	uint32_t t = atomic_load_explicit(&w->tail, memory_order_relaxed);
	if (t - h >= IG__RING)
		return false;
	atomic_store_explicit(&w->ring[t % IG__RING], a, memory_order_relaxed);
	atomic_store_explicit(&w->tail, t + 1, memory_order_release);
	return true;
}

/* Owner and thieves alike take from the head. */
static ig_actor_t *ring_take(ig__worker_t *w)
{
	uint32_t h = atomic_load_explicit(&w->head, memory_order_acquire);
	for (;;) {
		uint32_t t = atomic_load_explicit(&w->tail, memory_order_acquire);
		if (h == t)
			return NULL;
		ig_actor_t *a = atomic_load_explicit(&w->ring[h % IG__RING], memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&w->head, &h, h + 1,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return a;
	}
}

static bool ring_empty(ig__worker_t *w)
{
	return atomic_load_explicit(&w->head, memory_order_acquire) ==
	       atomic_load_explicit(&w->tail, memory_order_acquire);
}

static void inj_push(ig_dispatcher_t *d, ig_actor_t *a)
{
	atomic_fetch_add(&d->inj_len, 1);
	ig__mpsc_push(&d->inj, &a->sched);
}

static ig_actor_t *inj_take(ig_dispatcher_t *d)
{
	if (atomic_load_explicit(&d->inj_len, memory_order_acquire) <= 0)
		return NULL;
	if (atomic_flag_test_and_set_explicit(&d->inj_lock, memory_order_acquire))
		return NULL;
	ig_actor_t *a = actor_of(ig__mpsc_pop(&d->inj));
	if (a)
		atomic_fetch_sub(&d->inj_len, 1);
	atomic_flag_clear_explicit(&d->inj_lock, memory_order_release);
	return a;
}

/* ---- waking ------------------------------------------------------------------ */

/* A worker's parked word: 0 running, PARK_TIMED while others run (it wakes
 * now and then to rescue a runnext stuck behind a long behavior),
 * PARK_DEEP when every worker was idle. A waker swaps it to 0. */
enum { PARK_TIMED = 1, PARK_DEEP = 2, PARK_WATCH = 3 /* woken to watch, not for work */ };

/* Wakes one worker parked in mode `mode` (any mode if 0), leaving `to` in
 * its parked word so it knows why. */
static bool wake_parked(ig_dispatcher_t *d, uint32_t mode, uint32_t to)
{
	for (unsigned i = 0; i < d->nworkers; i++) {
		ig__worker_t *w = &d->workers[i];
		uint32_t v = atomic_load_explicit(&w->parked, memory_order_relaxed);
		if (v && v != PARK_WATCH && (!mode || v == mode) &&
		    atomic_compare_exchange_strong(&w->parked, &v, to)) {
			futex_wake(&w->parked, 1);
			return true;
		}
	}
	return false;
}

static void wake_one(ig_dispatcher_t *d)
{
	wake_parked(d, 0, 0);
}

/* After making work stealable: wake a parked worker unless one is already
 * looking. Both this read and park()'s increment are read-modify-writes of
 * nparked, so one of them sees the other: either the parker sees the work
 * or we see the parker. (A fence would do too, but TSan cannot model it.) */
static void maybe_wake(ig_dispatcher_t *d)
{
	if (atomic_fetch_add(&d->nparked, 0) > 0 &&
	    atomic_load_explicit(&d->nspinning, memory_order_relaxed) == 0)
		wake_one(d);
}

void ig__schedule(ig_actor_t *a)
{
	ig_dispatcher_t *d = a->disp;
	ig__worker_t *w = cur_worker;
	if (w && w->disp == d && w->blocking) {
		/* A blocking behavior will not end its turn soon: others take it. */
		if (!ring_push(w, a))
			inj_push(d, a);
	} else if (w && w->disp == d) {
		/* Only the owner fills runnext (thieves only empty it), so an
		 * empty slot takes a plain store. */
		ig_actor_t *old = atomic_load_explicit(&w->runnext, memory_order_relaxed);
		if (!old) {
			atomic_store_explicit(&w->runnext, a, memory_order_release);
			return;
		}
		old = atomic_exchange_explicit(&w->runnext, a, memory_order_acq_rel);
		if (!old)
			return;
		if (!ring_push(w, old))
			inj_push(d, old);
	} else {
		inj_push(d, a);
	}
	if (d->nworkers)
		maybe_wake(d);
}

/* A producer that sends thousands of messages from one behavior to the
 * actor in its own runnext would otherwise build a backlog of message
 * blocks far larger than the caches (or see the receiver moved to another
 * core, where every message crosses cores). Every HELP_BACKLOG such sends,
 * the sender's thread runs one turn of the receiver, nested in the send:
 * the receiver is not running anywhere (it sits in our runnext, taken here
 * with a CAS), so it still runs one turn at a time. One level of nesting
 * only. */
#define HELP_BACKLOG 256

void ig__sent(ig_actor_t *a)
{
	ig__worker_t *w = cur_worker;
	if (!w || w->helping || atomic_load_explicit(&w->runnext, memory_order_relaxed) != a ||
	    ++w->runnext_sends < HELP_BACKLOG)
		return;
	w->runnext_sends = 0;
	ig_actor_t *x = a;
	if (!atomic_compare_exchange_strong_explicit(&w->runnext, &x, NULL, memory_order_acq_rel,
						     memory_order_acquire))
		return;
	w->helping = true;
	bool again = ig__actor_turn(a, HELP_BACKLOG);
	w->helping = false;
	/* Progress: the worker is not stuck, so its runnext stays here. */
	atomic_store_explicit(&w->turns, atomic_load_explicit(&w->turns, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (!again)
		return;
	if (!atomic_load_explicit(&w->runnext, memory_order_relaxed)) {
		atomic_store_explicit(&w->runnext, a, memory_order_release);
		return;
	}
	if (!ring_push(w, a))
		inj_push(w->disp, a);
	maybe_wake(w->disp);
}

/* ---- finding work ------------------------------------------------------------ */

static ig_actor_t *take_runnext(ig__worker_t *w)
{
	ig_actor_t *a = atomic_load_explicit(&w->runnext, memory_order_acquire);
	if (a && atomic_compare_exchange_strong_explicit(&w->runnext, &a, NULL,
							 memory_order_acq_rel,
							 memory_order_acquire))
		return a;
	return NULL;
}

static ig_actor_t *steal(ig__worker_t *w, bool stale);

static ig_actor_t *local_work(ig__worker_t *w)
{
	ig_dispatcher_t *d = w->disp;
	ig_actor_t *a;
	/* Now and then a busy worker looks outward too: the injection queue,
	 * and (at most once per STALE_CHECK_NS) other workers' stuck runnext. */
	if (++w->tick % INJECTION_EVERY == 0 && ((a = inj_take(d)) || (a = steal(w, true))))
		return a;
	if (w->streak < RUNNEXT_STREAK_MAX) {
		a = take_runnext(w);
		if (a) {
			w->streak++;
			return a;
		}
	}
	w->streak = 0;
	if ((a = ring_take(w)))
		return a;
	if ((a = take_runnext(w)))
		return a;
	return inj_take(d);
}

/* Steals from another worker's ring; with stale set, also takes the
 * runnext of a worker that made no progress (no turn ended) for at least
 * STALE_CHECK_NS: it is stuck in a long behavior. */
static ig_actor_t *steal(ig__worker_t *w, bool stale)
{
	ig_dispatcher_t *d = w->disp;
	unsigned n = d->nworkers;
	unsigned start = (unsigned)(w->index + 1);
	if (stale) {
		int64_t now = ig__mono_ns();
		stale = now - w->stale_check >= STALE_CHECK_NS;
		if (stale)
			w->stale_check = now;
	}
	for (unsigned k = 0; k + 1 < n; k++) {
		unsigned i = (start + k) % n;
		ig__worker_t *v = &d->workers[i];
		ig_actor_t *a = ring_take(v);
		if (a)
			return a;
		if (!stale)
			continue;
		uint64_t turns = atomic_load_explicit(&v->turns, memory_order_relaxed);
		if (w->seen_turns[i] == turns &&
		    atomic_load_explicit(&v->runnext, memory_order_relaxed)) {
			a = atomic_exchange_explicit(&v->runnext, NULL, memory_order_acq_rel);
			if (a)
				return a;
		}
		w->seen_turns[i] = turns;
	}
	return NULL;
}

static bool work_visible(ig_dispatcher_t *d)
{
	if (atomic_load(&d->inj_len) > 0)
		return true;
	for (unsigned i = 0; i < d->nworkers; i++)
		if (!ring_empty(&d->workers[i]))
			return true;
	return false;
}

static void run(ig__worker_t *w, ig_actor_t *a)
{
	ig_dispatcher_t *d = w->disp;
	bool again = ig__actor_turn(a, d->throughput);
	uint64_t turns = atomic_load_explicit(&w->turns, memory_order_relaxed) + 1;
	atomic_store_explicit(&w->turns, turns, memory_order_relaxed);
	if (turns % QUIESCENT_EVERY == 0)
		ig__rcu_worker_quiescent();
	if (again) {
		if (!ring_push(w, a))
			inj_push(d, a);
		maybe_wake(d);
	}
}

static ig_actor_t *spin(ig__worker_t *w)
{
	ig_dispatcher_t *d = w->disp;
	int64_t until = ig__mono_ns() + (int64_t)d->sys->cfg.spin_us * 1000;
	atomic_fetch_add(&d->nspinning, 1);
	ig_actor_t *a = NULL;
	unsigned i = 0;
	while (!atomic_load_explicit(&d->stopping, memory_order_relaxed)) {
		if ((a = local_work(w)) || (a = steal(w, false)))
			break;
		if ((++i & 63) == 0) {
			if (ig__mono_ns() > until)
				break;
			/* A spinner must not take the core from a thread with
			 * real work (an external sender, say): if one is
			 * runnable here, let it run. */
			sched_yield();
		}
		for (int k = 0; k < 16; k++)
			__builtin_ia32_pause();
	}
	/* The last spinner to find work wakes another, so surplus work keeps
	 * spreading (Go's scheduler does the same). */
	if (atomic_fetch_sub(&d->nspinning, 1) == 1 && a && work_visible(d))
		maybe_wake(d);
	return a;
}

static void park(ig__worker_t *w)
{
	ig_dispatcher_t *d = w->disp;
	ig__rcu_worker_leave(); /* a parked worker must not hold up grace periods */
	/* Deep sleep only when everyone else is parked too; a race that picks
	 * "timed" by mistake costs one extra wake-up, then it re-parks deep. */
	uint32_t mode = atomic_load(&d->nparked) + 1 < (int)d->nworkers ? PARK_TIMED : PARK_DEEP;
	atomic_store(&w->parked, mode);
	atomic_fetch_add(&d->nparked, 1);
	if (!work_visible(d) && !atomic_load(&d->stopping))
		futex_wait(&w->parked, mode, mode == PARK_TIMED ? STALE_PARK_NS : -1);
	/* Zero means a waker took us for new work; then we run while the
	 * others may sleep deep, so one of them must watch us in timed mode. */
	bool woken = atomic_exchange(&w->parked, 0) == 0;
	atomic_fetch_sub(&d->nparked, 1);
	if (woken && d->nworkers > 1)
		wake_parked(d, PARK_DEEP, PARK_WATCH);
	ig__rcu_worker_enter();
}

static void *worker_main(void *arg)
{
	ig__worker_t *w = arg;
	ig_dispatcher_t *d = w->disp;
	cur_worker = w;
	ig__rcu_worker_enter();
	while (!atomic_load_explicit(&d->stopping, memory_order_acquire)) {
		ig_actor_t *a = local_work(w);
		if (!a)
			a = steal(w, false);
		if (!a)
			a = spin(w);
		if (!a) {
			park(w);
			a = steal(w, true);
		}
		if (a)
			run(w, a);
	}
	cur_worker = NULL;
	ig__rcu_worker_leave();
	ig__rcu_thread_offline();
	return NULL;
}

/* A behavior about to block gives away what waits behind it: its runnext
 * (which others take only once it looks stuck, and then only if a worker
 * is awake to look) moves to the ring, and a parked worker is woken for
 * it; until ig_blocking_end, what it schedules goes to the ring too.
 * Without this an actor the blocked one waits for could sit in its runnext
 * while every other worker sleeps deep. */
void ig__worker_blocking(void)
{
	ig__worker_t *w = cur_worker;
	if (!w)
		return;
	w->blocking = true;
	ig_actor_t *a = take_runnext(w);
	if (a && !ring_push(w, a))
		inj_push(w->disp, a);
	if (a || !ring_empty(w))
		maybe_wake(w->disp);
}

void ig__worker_unblocking(void)
{
	if (cur_worker)
		cur_worker->blocking = false;
}

/* ---- lifecycle ---------------------------------------------------------------- */

int ig__dispatcher_init(ig_dispatcher_t *d, ig_system_t *sys, const char *name,
			unsigned threads, unsigned throughput)
{
	memset(d, 0, sizeof *d);
	d->sys = sys;
	snprintf(d->name, sizeof d->name, "%s", name ? name : "default");
	d->nworkers = sys->cfg.deterministic ? 0 : threads;
	d->throughput = throughput ? throughput : sys->cfg.throughput;
	ig__mpsc_init(&d->inj, false);
	atomic_flag_clear(&d->inj_lock);
	if (d->nworkers) {
		d->workers = aligned_alloc(IG_CACHE_LINE, d->nworkers * sizeof(ig__worker_t));
		if (!d->workers)
			return IG_ENOMEM;
		memset(d->workers, 0, d->nworkers * sizeof(ig__worker_t));
		for (unsigned i = 0; i < d->nworkers; i++) {
			d->workers[i].disp = d;
			d->workers[i].index = i;
			d->workers[i].seen_turns = calloc(d->nworkers, sizeof(uint64_t));
			if (!d->workers[i].seen_turns)
				return IG_ENOMEM;
		}
	}
	return 0;
}

int ig__dispatcher_start(ig_dispatcher_t *d)
{
	for (unsigned i = 0; i < d->nworkers; i++) {
		int rc = pthread_create(&d->workers[i].thread, NULL, worker_main, &d->workers[i]);
		if (rc)
			return -rc;
		d->workers[i].started = true;
		char tname[16];
		snprintf(tname, sizeof tname, "ig-%.6s-%u", d->name, i & 0xff);
		pthread_setname_np(d->workers[i].thread, tname);
	}
	return 0;
}

void ig__dispatcher_stop(ig_dispatcher_t *d)
{
	atomic_store(&d->stopping, true);
	for (unsigned i = 0; i < d->nworkers; i++) {
		atomic_store(&d->workers[i].parked, 0);
		futex_wake(&d->workers[i].parked, 1);
	}
	for (unsigned i = 0; i < d->nworkers; i++) {
		if (d->workers[i].started)
			pthread_join(d->workers[i].thread, NULL);
		d->workers[i].started = false;
	}
}

void ig__dispatcher_fini(ig_dispatcher_t *d)
{
	for (unsigned i = 0; i < d->nworkers; i++)
		free(d->workers[i].seen_turns);
	free(d->workers);
	d->workers = NULL;
}

size_t ig__dispatcher_drain(ig_dispatcher_t *d, size_t max)
{
	size_t n = 0;
	ig_actor_t *a;
	while (n < max && (a = inj_take(d))) {
		n++;
		if (ig__actor_turn(a, d->throughput))
			inj_push(d, a);
	}
	return n;
}

int ig_dispatcher_create(ig_system_t *sys, const ig_dispatcher_config_t *cfg,
			 ig_dispatcher_t **out)
{
	if (!sys || !out)
		return IG_EINVAL;
	if (atomic_load(&sys->shutting_down))
		return IG_ESTOPPED;
	ig_dispatcher_t *d = aligned_alloc(IG_CACHE_LINE, sizeof *d);
	if (!d)
		return IG_ENOMEM;
	unsigned threads = cfg && cfg->threads ? cfg->threads
					       : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	int rc = ig__dispatcher_init(d, sys, cfg ? cfg->name : NULL, threads,
				     cfg ? cfg->throughput : 0);
	if (rc == 0)
		rc = ig__dispatcher_start(d);
	if (rc) {
		ig__dispatcher_stop(d);
		ig__dispatcher_fini(d);
		free(d);
		return rc;
	}
	pthread_mutex_lock(&sys->lock);
	d->next = sys->dispatchers->next;
	sys->dispatchers->next = d;
	pthread_mutex_unlock(&sys->lock);
	*out = d;
	return 0;
}
