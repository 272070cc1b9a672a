/* Actor systems: creation with the guardians (/, /user, /system), the
 * default dispatcher and the timer wheel; graceful shutdown; the clock; and
 * the calling-thread run loop of deterministic systems.
 */
#include <execinfo.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime_int.h"

void ig__assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "ingot: assertion failed: %s (%s:%d)\n", expr, file, line);
	void *frames[32];
	int n = backtrace(frames, 32);
	backtrace_symbols_fd(frames, n, 2);
	abort();
}

int64_t ig__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ig_system_now(const ig_system_t *sys)
{
	if (sys->cfg.deterministic)
		return atomic_load(&((ig_system_t *)sys)->virtual_now);
	return ig__mono_ns();
}

uint64_t ig_system_actor_count(const ig_system_t *sys)
{
	return atomic_load(&((ig_system_t *)sys)->actors);
}

/* ---- the process's systems -------------------------------------------------- */

static pthread_mutex_t systems_lock = PTHREAD_MUTEX_INITIALIZER;
static ig_system_t *systems[256]; /* id 0 is never used */

static unsigned last_id;

/* Ids go round-robin so a new system does not at once inherit the refs
 * (and so the dead letters) of one just destroyed; an id comes back only
 * after 255 newer systems. */
static int system_register(ig_system_t *sys)
{
	int rc = IG_ENOMEM;
	pthread_mutex_lock(&systems_lock);
	for (unsigned k = 1; k < 256; k++) {
		unsigned i = (last_id + k) % 256;
		if (i && !systems[i]) {
			systems[i] = sys;
			sys->id = (uint8_t)i;
			last_id = i;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&systems_lock);
	return rc;
}

static void system_unregister(ig_system_t *sys)
{
	pthread_mutex_lock(&systems_lock);
	if (sys->id && systems[sys->id] == sys)
		systems[sys->id] = NULL;
	pthread_mutex_unlock(&systems_lock);
}

ig_system_t *ig__system_by_id(unsigned id)
{
	pthread_mutex_lock(&systems_lock);
	ig_system_t *sys = id < 256 ? systems[id] : NULL;
	pthread_mutex_unlock(&systems_lock);
	return sys;
}

/* ---- guardians ------------------------------------------------------------------ */

static int guardian_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
	return 0; /* guardians take no user messages; they only supervise */
}

static const ig_props_t guardian_props = {.behavior = guardian_behavior};

void ig__system_actor_gone(ig_system_t *sys)
{
	if (atomic_fetch_sub(&sys->actors, 1) == 1 || atomic_load(&sys->shutting_down)) {
		pthread_mutex_lock(&sys->lock);
		pthread_cond_broadcast(&sys->cond);
		pthread_mutex_unlock(&sys->lock);
	}
}

static void config_defaults(ig_system_config_t *c)
{
	if (!c->name)
		c->name = "ingot";
	if (!c->threads)
		c->threads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (!c->throughput)
		c->throughput = 64;
	if (!c->spin_us)
		c->spin_us = 50;
	if (c->log_level == IG_LOG_DEFAULT)
		c->log_level = IG_LOG_WARN;
}

static int make_guardians(ig_system_t *sys)
{
	int rc = ig__spawn(sys, NULL, &guardian_props, NULL, NULL, IG__AF_GUARDIAN, &sys->root,
			   NULL);
	if (rc == 0)
		rc = ig__spawn(sys, sys->root, &guardian_props, "user", NULL, IG__AF_GUARDIAN,
			       &sys->user, NULL);
	if (rc == 0)
		rc = ig__spawn(sys, sys->root, &guardian_props, "system", NULL, IG__AF_GUARDIAN,
			       &sys->system, NULL);
	return rc;
}

int ig_system_create(const ig_system_config_t *cfg, ig_system_t **out)
{
	if (!out || (cfg && (cfg->log_level < 0 || cfg->log_level > IG_LOG_OFF)))
		return IG_EINVAL;
	ig_system_t *sys = calloc(1, sizeof *sys);
	if (!sys)
		return IG_ENOMEM;
	if (cfg)
		sys->cfg = *cfg;
	config_defaults(&sys->cfg);
	snprintf(sys->name, sizeof sys->name, "%s", sys->cfg.name);
	sys->cfg.name = sys->name;
	pthread_mutex_init(&sys->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sys->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_rwlock_init(&sys->es_lock, NULL);
	pthread_mutex_init(&sys->names_lock, NULL);
	sys->epoch = ig__mono_ns();
	int rc = system_register(sys);
	if (rc)
		goto fail_id;
	sys->def = aligned_alloc(IG_CACHE_LINE, sizeof *sys->def);
	if (!sys->def) {
		rc = IG_ENOMEM;
		goto fail;
	}
	rc = ig__dispatcher_init(sys->def, sys, "default", sys->cfg.threads, sys->cfg.throughput);
	sys->dispatchers = sys->def;
	if (rc == 0)
		rc = ig__wheel_create(sys, &sys->wheel);
	if (rc == 0)
		rc = make_guardians(sys);
	if (rc == 0 && !sys->cfg.deterministic) {
		rc = ig__dispatcher_start(sys->def);
		if (rc == 0)
			rc = ig__wheel_start(sys->wheel);
	}
	if (rc)
		goto fail;
	*out = sys;
	return 0;
fail:
	/* Guardians may exist; a partial system is torn down like a whole one. */
	ig_system_destroy(sys);
	return rc;
fail_id:
	free(sys);
	return rc;
}

/* ---- shutdown ------------------------------------------------------------------------ */

struct wait_dead {
	ig_system_t *sys;
	ig_ref_t ref;
	uint64_t actors_at_most;
};

static bool is_gone(void *arg)
{
	struct wait_dead *w = arg;
	if (!ig_ref_is_none(w->ref)) {
		ig__rcu_read_lock();
		bool alive = ig__slot_resolve(w->ref) != NULL;
		ig__rcu_read_unlock();
		return !alive;
	}
	return atomic_load(&w->sys->actors) <= w->actors_at_most;
}

/* Waits for the condition, running the system ourselves when nobody else
 * does (deterministic systems). */
static int wait_for(ig_system_t *sys, struct wait_dead *w, int64_t deadline)
{
	if (sys->cfg.deterministic) {
		while (!is_gone(w)) {
			if (ig__mono_ns() > deadline)
				return IG_ETIMEDOUT;
			if (ig__det_run(sys, ig_system_now(sys), is_gone, w) != 0) {
				ig__rcu_barrier(); /* reclaims arrive from the RCU thread */
				sched_yield();
			}
		}
		return 0;
	}
	int rc = 0;
	pthread_mutex_lock(&sys->lock);
	while (!is_gone(w)) {
		struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
		/* Short waits: reclaim needs RCU grace periods we do not see. */
		int64_t soon = ig__mono_ns() + 10000000;
		if (soon < deadline)
			ts = (struct timespec){.tv_sec = soon / 1000000000, .tv_nsec = soon % 1000000000};
		pthread_cond_timedwait(&sys->cond, &sys->lock, &ts);
		if (ig__mono_ns() > deadline && !is_gone(w)) {
			rc = IG_ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&sys->lock);
	return rc;
}

static int stop_and_wait(ig_system_t *sys, ig_actor_t *guardian, int64_t deadline)
{
	struct wait_dead w = {.sys = sys, .ref = ig__ref_of(guardian)};
	ig_stop(w.ref);
	return wait_for(sys, &w, deadline);
}

int ig_system_shutdown(ig_system_t *sys, ig_duration_t timeout)
{
	if (!sys)
		return IG_EINVAL;
	ig__worker_t *me = ig__current_worker();
	if (me && me->disp->sys == sys)
		return IG_ESTATE;
	pthread_mutex_lock(&sys->lock);
	bool done = sys->shut_down;
	pthread_mutex_unlock(&sys->lock);
	if (done)
		return 0;
	atomic_store(&sys->shutting_down, true);
	int64_t deadline = timeout == IG_FOREVER ? INT64_MAX : ig__mono_ns() + timeout;
	int rc = 0;
	if (sys->user && rc == 0)
		rc = stop_and_wait(sys, sys->user, deadline);
	if (sys->system && rc == 0)
		rc = stop_and_wait(sys, sys->system, deadline);
	if (sys->root && rc == 0)
		rc = stop_and_wait(sys, sys->root, deadline);
	if (rc == 0) {
		ig__rcu_barrier();
		struct wait_dead all = {.sys = sys, .actors_at_most = 0};
		rc = wait_for(sys, &all, deadline);
		/* The last reclaim callback may still be waking a worker after
		 * the count reached zero; let it return before dispatchers go. */
		ig__rcu_barrier();
	}
	if (sys->reactor_stop)
		sys->reactor_stop(sys);
	if (sys->wheel)
		ig__wheel_stop(sys->wheel);
	for (ig_dispatcher_t *d = sys->dispatchers; d; d = d->next)
		ig__dispatcher_stop(d);
	pthread_mutex_lock(&sys->lock);
	sys->shut_down = true;
	pthread_mutex_unlock(&sys->lock);
	if (rc)
		ig_log(sys, NULL, IG_LOG_WARN, "shutdown timed out with %llu actors left",
		       (unsigned long long)atomic_load(&sys->actors));
	return rc;
}

void ig_system_destroy(ig_system_t *sys)
{
	if (!sys)
		return;
	ig_system_shutdown(sys, IG_SEC(10));
	ig__wheel_destroy(sys->wheel);
	ig_dispatcher_t *d = sys->dispatchers;
	while (d) {
		ig_dispatcher_t *next = d->next;
		ig__dispatcher_fini(d);
		free(d);
		d = next;
	}
	ig__names_free(sys);
	free(sys->subs);
	system_unregister(sys);
	pthread_rwlock_destroy(&sys->es_lock);
	pthread_mutex_destroy(&sys->names_lock);
	pthread_cond_destroy(&sys->cond);
	pthread_mutex_destroy(&sys->lock);
	free(sys);
}

/* ---- deterministic run loop ------------------------------------------------------------ */

static size_t drain_all(ig_system_t *sys)
{
	size_t n = 0;
	for (ig_dispatcher_t *d = sys->dispatchers; d; d = d->next)
		n += ig__dispatcher_drain(d, 4096);
	return n;
}

int ig__det_run(ig_system_t *sys, int64_t until, bool (*done)(void *), void *arg)
{
	IG_ASSERT(sys->cfg.deterministic);
	for (;;) {
		if (done && done(arg))
			return 0;
		if (drain_all(sys))
			continue;
		if (done && done(arg))
			return 0;
		int64_t now = atomic_load(&sys->virtual_now);
		int64_t next = ig__wheel_next_deadline(sys->wheel);
		if (next <= now) {
			ig__wheel_fire_due(sys->wheel, now);
			continue;
		}
		if (next > until) {
			if (until > now && until != INT64_MAX)
				atomic_store(&sys->virtual_now, until);
			if (until > now && until != INT64_MAX && ig__wheel_fire_due(sys->wheel, until))
				continue;
			return done ? IG_ETIMEDOUT : 0;
		}
		atomic_store(&sys->virtual_now, next);
		ig__wheel_fire_due(sys->wheel, next);
	}
}
