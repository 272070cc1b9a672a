/* Tests of supervision (runtime/supervision.c): a failing behavior suspends
 * its actor and the parent's strategy decides. Covered: the default restart
 * (fresh zeroed state, init again, the failing message dropped, the next
 * ones processed, the default and custom restart hooks), a decider mapping
 * error codes to resume / restart / stop / escalate, all-for-one, the
 * max_restarts window (deterministic system, virtual time), and messages
 * that arrive while an actor is suspended.
 *
 * Nothing here sleeps: threaded tests wait on latches (condition variables
 * with deadlines) or futures; deterministic tests run the system through
 * ig_future_wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ingot/runtime.h>

#include "test_util.h"

#define WAIT IG_SEC(10)      /* deadline for things that must happen */
#define GATE_MAX IG_SEC(5)   /* a blocked behavior gives up after this */

/* ---- messages and error codes ------------------------------------------------------ */

enum {
	T_INC = 1, /* int64 value: count++ and record the value */
	T_GET,     /* reply T_VAL with the int64 count (supervisors: generation) */
	T_VAL,
	T_FAIL,    /* int err: count++, then return err */
	T_BLOCK,   /* supervisors: block until the gate opens */
	T_PING,    /* reply T_VAL 0 */
	T_QUERY,   /* watchers: reply T_VAL reason once the Terminated came */
	T_SLEEP,   /* sleeper: int64 d; reply T_VAL after d (a timer) */
	T_WAKE,    /* sleeper's timer; payload: who asked */
};

enum { E_RESUME = -1001, E_RESTART = -1002, E_STOP = -1003, E_ESCALATE = -1004, E_INIT = -1005 };

/* ---- a tracked worker actor --------------------------------------------------------- */

/* One actor's life as the test sees it. Hooks append a letter to log:
 * I init, S pre_start, P post_stop, F fini, R pre_restart, r post_restart. */
typedef struct track {
	pthread_mutex_t mu;
	char log[128];
	size_t len;
	int inits;
	int init_saw_dirty;  /* init found a non-zero state */
	int fail_init_from;  /* init returns E_INIT from this incarnation on (0: never) */
	int fails;           /* T_FAIL messages the behavior saw */
	int pre_restart_err, post_restart_err;
	int64_t seq[256];    /* T_INC values in processing order */
	int nseq;
	latch_t ready;       /* +1 per pre_start or post_restart */
} track_t;

static void track_init(track_t *t)
{
	memset(t, 0, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	latch_init(&t->ready);
}

static void track_log(track_t *t, char c)
{
	pthread_mutex_lock(&t->mu);
	if (t->len + 1 < sizeof t->log)
		t->log[t->len++] = c;
	pthread_mutex_unlock(&t->mu);
}

/* A copy of the hook log, for assertions. */
static void track_get_log(track_t *t, char *buf, size_t len)
{
	pthread_mutex_lock(&t->mu);
	snprintf(buf, len, "%.*s", (int)t->len, t->log);
	pthread_mutex_unlock(&t->mu);
}

static int track_get(track_t *t, const int *field)
{
	pthread_mutex_lock(&t->mu);
	int v = *field;
	pthread_mutex_unlock(&t->mu);
	return v;
}

typedef struct wstate {
	track_t *t;
	int64_t count;
} wstate_t;

static int worker_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	wstate_t *s = state;
	track_t *t = arg;
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	t->inits++;
	if (s->count || s->t)
		t->init_saw_dirty++;
	if (t->fail_init_from && t->inits >= t->fail_init_from)
		rc = E_INIT;
	pthread_mutex_unlock(&t->mu);
	track_log(t, 'I');
	s->t = t;
	return rc;
}

static void worker_fini(void *state)
{
	wstate_t *s = state;
	track_log(s->t, 'F');
}

static void worker_pre_start(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	wstate_t *s = state;
	track_log(s->t, 'S');
	latch_add(&s->t->ready, 1);
}

static void worker_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	wstate_t *s = state;
	track_log(s->t, 'P');
}

static void worker_pre_restart(ig_ctx_t *ctx, void *state, int err)
{
	(void)ctx;
	wstate_t *s = state;
	pthread_mutex_lock(&s->t->mu);
	s->t->pre_restart_err = err;
	pthread_mutex_unlock(&s->t->mu);
	track_log(s->t, 'R');
}

static void worker_post_restart(ig_ctx_t *ctx, void *state, int err)
{
	(void)ctx;
	wstate_t *s = state;
	pthread_mutex_lock(&s->t->mu);
	s->t->post_restart_err = err;
	pthread_mutex_unlock(&s->t->mu);
	track_log(s->t, 'r');
	latch_add(&s->t->ready, 1);
}

static int worker_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	wstate_t *s = state;
	switch (msg->type) {
	case T_INC: {
		int64_t v;
		memcpy(&v, msg->data, sizeof v);
		s->count++;
		pthread_mutex_lock(&s->t->mu);
		if (s->t->nseq < 256)
			s->t->seq[s->t->nseq++] = v;
		pthread_mutex_unlock(&s->t->mu);
		return 0;
	}
	case T_GET:
		ig_reply(ctx, msg, T_VAL, &s->count, sizeof s->count);
		return 0;
	case T_FAIL: {
		int err;
		memcpy(&err, msg->data, sizeof err);
		s->count++;
		pthread_mutex_lock(&s->t->mu);
		s->t->fails++;
		pthread_mutex_unlock(&s->t->mu);
		return err;
	}
	default:
		return 0;
	}
}

static const ig_props_t worker_props = {
	.behavior = worker_behavior,
	.state_size = sizeof(wstate_t),
	.init = worker_init,
	.fini = worker_fini,
	.pre_start = worker_pre_start,
	.post_stop = worker_post_stop,
};

static const ig_props_t worker_hooks_props = {
	.behavior = worker_behavior,
	.state_size = sizeof(wstate_t),
	.init = worker_init,
	.fini = worker_fini,
	.pre_start = worker_pre_start,
	.post_stop = worker_post_stop,
	.pre_restart = worker_pre_restart,
	.post_restart = worker_post_restart,
};

/* ---- a supervisor actor: spawns its children in pre_start ------------------------- */

#define MAXC 4

typedef struct sup_arg {
	track_t self;
	const ig_props_t *child_props;
	void *child_args[MAXC];
	int nchildren;
	pthread_mutex_t mu;
	ig_ref_t children[MAXC]; /* the current incarnation's */
	int generation;          /* times pre_start spawned the children */
	latch_t spawned;
	latch_t blocked, gate;   /* T_BLOCK: count blocked, wait for gate */
} sup_arg_t;

static void sup_arg_init(sup_arg_t *a, const ig_props_t *child_props, int n, void **args)
{
	memset(a, 0, sizeof *a);
	track_init(&a->self);
	a->child_props = child_props;
	a->nchildren = n;
	for (int i = 0; i < n; i++)
		a->child_args[i] = args[i];
	pthread_mutex_init(&a->mu, NULL);
	latch_init(&a->spawned);
	latch_init(&a->blocked);
	latch_init(&a->gate);
}

static ig_ref_t sup_child(sup_arg_t *a, int i)
{
	pthread_mutex_lock(&a->mu);
	ig_ref_t r = a->children[i];
	pthread_mutex_unlock(&a->mu);
	return r;
}

typedef struct sstate {
	sup_arg_t *a;
} sstate_t;

static int sup_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	sstate_t *s = state;
	s->a = arg;
	pthread_mutex_lock(&s->a->self.mu);
	s->a->self.inits++;
	pthread_mutex_unlock(&s->a->self.mu);
	track_log(&s->a->self, 'I');
	return 0;
}

static void sup_fini(void *state)
{
	sstate_t *s = state;
	track_log(&s->a->self, 'F');
}

static void sup_pre_start(ig_ctx_t *ctx, void *state)
{
	sstate_t *s = state;
	sup_arg_t *a = s->a;
	track_log(&a->self, 'S');
	ig_ref_t refs[MAXC] = {{0}};
	for (int i = 0; i < a->nchildren; i++) {
		char name[16];
		snprintf(name, sizeof name, "c%d", i);
		int rc = ig_spawn(ctx, a->child_props, name, a->child_args[i], &refs[i]);
		if (rc)
			fprintf(stderr, "supervisor: spawning %s: %s\n", name, ig_strerror(rc));
	}
	pthread_mutex_lock(&a->mu);
	memcpy(a->children, refs, sizeof refs);
	a->generation++;
	pthread_mutex_unlock(&a->mu);
	latch_add(&a->spawned, 1);
}

static void sup_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	sstate_t *s = state;
	track_log(&s->a->self, 'P');
}

static int sup_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	sstate_t *s = state;
	switch (msg->type) {
	case T_BLOCK:
		latch_add(&s->a->blocked, 1);
		latch_wait(&s->a->gate, 1, GATE_MAX);
		return 0;
	case T_GET: {
		pthread_mutex_lock(&s->a->mu);
		int64_t g = s->a->generation;
		pthread_mutex_unlock(&s->a->mu);
		ig_reply(ctx, msg, T_VAL, &g, sizeof g);
		return 0;
	}
	case T_FAIL: {
		int err;
		memcpy(&err, msg->data, sizeof err);
		return err;
	}
	default:
		return 0;
	}
}

static const ig_props_t sup_base_props = {
	.behavior = sup_behavior,
	.state_size = sizeof(sstate_t),
	.init = sup_init,
	.fini = sup_fini,
	.pre_start = sup_pre_start,
	.post_stop = sup_post_stop,
};

/* ---- deciders ------------------------------------------------------------------------- */

typedef struct decider_rec {
	_Atomic int calls;
	_Atomic int last_err;
	ig_directive_t answer; /* recording_decider's answer */
	latch_t called;
} decider_rec_t;

static void decider_rec_init(decider_rec_t *r, ig_directive_t answer)
{
	atomic_init(&r->calls, 0);
	atomic_init(&r->last_err, 0);
	r->answer = answer;
	latch_init(&r->called);
}

static void record(decider_rec_t *r, int err)
{
	if (!r)
		return;
	atomic_store(&r->last_err, err);
	atomic_fetch_add(&r->calls, 1);
	latch_add(&r->called, 1);
}

/* E_RESUME -> resume, E_STOP -> stop, E_ESCALATE -> escalate, else restart. */
static ig_directive_t code_decider(int err, void *arg)
{
	record(arg, err);
	switch (err) {
	case E_RESUME:
		return IG_RESUME;
	case E_STOP:
		return IG_STOP;
	case E_ESCALATE:
		return IG_ESCALATE;
	default:
		return IG_RESTART;
	}
}

static ig_directive_t recording_decider(int err, void *arg)
{
	decider_rec_t *r = arg;
	record(r, err);
	return r->answer;
}

/* ---- a watcher: death watch from pre_start ------------------------------------------ */

typedef struct watch_arg {
	ig_ref_t target;
	latch_t registered, terminated;
	pthread_mutex_t mu;
	ig_terminated_t got;
	ig_ref_t from;      /* the Terminated's sender */
	int count;
	ig_ref_t waiting;   /* a T_QUERY asker (deterministic tests) */
} watch_arg_t;

typedef struct watch_state {
	watch_arg_t *a;
} watch_state_t;

static int watcher_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	((watch_state_t *)state)->a = arg;
	return 0;
}

static void watcher_pre_start(ig_ctx_t *ctx, void *state)
{
	watch_arg_t *a = ((watch_state_t *)state)->a;
	int rc = ig_watch(ctx, a->target);
	if (rc)
		fprintf(stderr, "watcher: ig_watch: %s\n", ig_strerror(rc));
	latch_add(&a->registered, 1);
}

static int watcher_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	watch_arg_t *a = ((watch_state_t *)state)->a;
	switch (msg->type) {
	case IG_MSG_TERMINATED: {
		pthread_mutex_lock(&a->mu);
		memcpy(&a->got, msg->data, sizeof a->got);
		a->from = msg->sender;
		a->count++;
		ig_ref_t w = a->waiting;
		int64_t reason = a->got.reason;
		pthread_mutex_unlock(&a->mu);
		if (!ig_ref_is_none(w))
			ig_tell(w, T_VAL, &reason, sizeof reason, ig_self(ctx));
		latch_add(&a->terminated, 1);
		return 0;
	}
	case T_PING: {
		int64_t z = 0;
		ig_reply(ctx, msg, T_VAL, &z, sizeof z);
		return 0;
	}
	case T_QUERY: {
		pthread_mutex_lock(&a->mu);
		int n = a->count;
		int64_t reason = a->got.reason;
		if (!n)
			a->waiting = msg->sender;
		pthread_mutex_unlock(&a->mu);
		if (n)
			ig_reply(ctx, msg, T_VAL, &reason, sizeof reason);
		return 0;
	}
	default:
		return 0;
	}
}

static const ig_props_t watcher_props = {
	.behavior = watcher_behavior,
	.state_size = sizeof(watch_state_t),
	.init = watcher_init,
	.pre_start = watcher_pre_start,
};

static void watch_arg_init(watch_arg_t *a, ig_ref_t target)
{
	memset(a, 0, sizeof *a);
	a->target = target;
	latch_init(&a->registered);
	latch_init(&a->terminated);
	pthread_mutex_init(&a->mu, NULL);
}

static ig_system_t *g_sys;

/* Threaded: spawns a watcher of target and waits until its watch is sent
 * (so a later message to target is queued behind the watch). */
static void watch(watch_arg_t *a, ig_ref_t target)
{
	watch_arg_init(a, target);
	ig_ref_t w;
	assert_int_equal(ig_system_spawn(g_sys, &watcher_props, NULL, a, &w), 0);
	assert_true(latch_wait(&a->registered, 1, WAIT));
}

static ig_terminated_t watch_result(watch_arg_t *a, int *count)
{
	pthread_mutex_lock(&a->mu);
	ig_terminated_t t = a->got;
	*count = a->count;
	pthread_mutex_unlock(&a->mu);
	return t;
}

/* ---- a sleeper: moves virtual time in deterministic systems ------------------------ */

static int sleeper_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	if (msg->type == T_SLEEP) {
		int64_t d;
		memcpy(&d, msg->data, sizeof d);
		ig_ref_t who = msg->sender;
		return ig_timer_start(ctx, d, false, T_WAKE, &who, sizeof who, NULL);
	}
	if (msg->type == T_WAKE) {
		ig_ref_t who;
		memcpy(&who, msg->data, sizeof who);
		int64_t now = ig_system_now(ig_ctx_system(ctx));
		ig_tell(who, T_VAL, &now, sizeof now, ig_self(ctx));
	}
	return 0;
}

static const ig_props_t sleeper_props = {.behavior = sleeper_behavior};

/* ---- helpers ---------------------------------------------------------------------------- */

static int ask_i64(ig_ref_t to, uint32_t type, const void *data, size_t size,
		   ig_duration_t timeout, int64_t *out)
{
	ig_future_t *f;
	int rc = ig_ask(g_sys, to, type, data, size, timeout, &f);
	if (rc)
		return rc;
	const ig_msg_t *r = NULL;
	rc = ig_future_wait(f, IG_FOREVER, &r);
	if (rc == 0) {
		if (r->type == T_VAL && r->size == sizeof *out)
			memcpy(out, r->data, sizeof *out);
		else
			rc = IG_EINVAL;
	}
	ig_future_free(f);
	return rc;
}

static int64_t get_count(ig_ref_t to)
{
	int64_t v = -1;
	int rc = ask_i64(to, T_GET, NULL, 0, WAIT, &v);
	if (rc)
		fprintf(stderr, "GET: %s\n", ig_strerror(rc));
	assert_int_equal(rc, 0);
	return v;
}

static void tell_inc(ig_ref_t to, int64_t v)
{
	assert_int_equal(ig_tell(to, T_INC, &v, sizeof v, IG_NOREF), 0);
}

static void tell_fail(ig_ref_t to, int err)
{
	assert_int_equal(ig_tell(to, T_FAIL, &err, sizeof err, IG_NOREF), 0);
}

static void assert_log(track_t *t, const char *want)
{
	char got[128];
	track_get_log(t, got, sizeof got);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "hook log: got \"%s\", want \"%s\"\n", got, want);
	assert_string_equal(got, want);
}

static void assert_seq(track_t *t, const int64_t *want, int n)
{
	pthread_mutex_lock(&t->mu);
	int got = t->nseq;
	int64_t seq[256];
	memcpy(seq, t->seq, sizeof seq);
	pthread_mutex_unlock(&t->mu);
	assert_int_equal(got, n);
	for (int i = 0; i < n; i++)
		assert_int_equal(seq[i], want[i]);
}

/* Moves a deterministic system's virtual time forward by d. */
static void advance(ig_ref_t sleeper, int64_t d)
{
	int64_t before = ig_system_now(g_sys), at = 0;
	assert_int_equal(ask_i64(sleeper, T_SLEEP, &d, sizeof d, d + IG_SEC(1), &at), 0);
	assert_true(at >= before + d);
}

static int setup_threaded(void **unused)
{
	(void)unused;
	ig_system_config_t cfg = {.name = "sup", .threads = 2, .log_level = IG_LOG_OFF};
	return ig_system_create(&cfg, &g_sys);
}

static int setup_deterministic(void **unused)
{
	(void)unused;
	ig_system_config_t cfg = {.name = "supdet", .deterministic = true,
				  .log_level = IG_LOG_OFF};
	return ig_system_create(&cfg, &g_sys);
}

/* Test state is static so a failed test (cmocka jumps out) leaves nothing
 * dangling for the actors still running until teardown. */
static int teardown(void **unused)
{
	(void)unused;
	ig_system_destroy(g_sys);
	g_sys = NULL;
	return 0;
}

/* ---- default strategy ---------------------------------------------------------------- */

static void test_default_restart_gives_zeroed_state_reruns_init_and_drops_failing_message(
	void **unused)
{
	(void)unused;
	static track_t t;
	track_init(&t);
	ig_ref_t a;
	assert_int_equal(ig_system_spawn(g_sys, &worker_props, "w", &t, &a), 0);
	tell_inc(a, 1);
	tell_inc(a, 2);
	assert_int_equal(get_count(a), 2);
	tell_fail(a, IG_EFAILED);
	tell_inc(a, 3);
	/* Fresh state: only the message after the failure counts. */
	assert_int_equal(get_count(a), 1);
	assert_true(latch_wait(&t.ready, 2, WAIT));
	assert_int_equal(track_get(&t, &t.inits), 2);
	assert_int_equal(track_get(&t, &t.init_saw_dirty), 0);
	assert_int_equal(track_get(&t, &t.fails), 1); /* not redelivered */
	int64_t want[] = {1, 2, 3};
	assert_seq(&t, want, 3);
	/* Default pre_restart = post_stop, default post_restart = pre_start;
	 * fini runs before the second init. */
	assert_log(&t, "ISPFIS");
	/* The ref stays the same across the restart. */
	tell_inc(a, 4);
	assert_int_equal(get_count(a), 2);
}

static void test_restart_calls_custom_pre_restart_and_post_restart_with_the_error(void **unused)
{
	(void)unused;
	static track_t t;
	track_init(&t);
	ig_ref_t a;
	assert_int_equal(ig_system_spawn(g_sys, &worker_hooks_props, "w", &t, &a), 0);
	tell_inc(a, 1);
	tell_fail(a, -4242);
	tell_inc(a, 2);
	assert_int_equal(get_count(a), 1);
	assert_true(latch_wait(&t.ready, 2, WAIT));
	assert_log(&t, "ISRFIr");
	assert_int_equal(track_get(&t, &t.pre_restart_err), -4242);
	assert_int_equal(track_get(&t, &t.post_restart_err), -4242);
	int64_t want[] = {1, 2};
	assert_seq(&t, want, 2);
}

static void test_init_failing_on_restart_stops_the_actor_with_that_reason(void **unused)
{
	(void)unused;
	static track_t t;
	static watch_arg_t w;
	track_init(&t);
	t.fail_init_from = 2;
	ig_ref_t a;
	assert_int_equal(ig_system_spawn(g_sys, &worker_props, "w", &t, &a), 0);
	assert_int_equal(get_count(a), 0);
	watch(&w, a);
	tell_fail(a, IG_EFAILED);
	assert_true(latch_wait(&w.terminated, 1, WAIT));
	int n;
	ig_terminated_t got = watch_result(&w, &n);
	assert_int_equal(n, 1);
	assert_true(ig_ref_eq(got.ref, a));
	assert_int_equal(got.reason, E_INIT);
	/* post_stop and fini are skipped after a failed init. */
	assert_log(&t, "ISPFI");
	assert_int_equal(ig_tell(a, T_INC, &(int64_t){1}, 8, IG_NOREF), IG_ENOACTOR);
}

/* ---- a decider ------------------------------------------------------------------------- */

/* Spawns a supervisor (with the code decider) over n tracked workers and
 * waits for them. */
static ig_ref_t spawn_sup(sup_arg_t *sa, ig_props_t *props, ig_supervisor_t *sup,
			  track_t *tracks, int n, decider_rec_t *rec, bool all_for_one)
{
	void *args[MAXC];
	for (int i = 0; i < n; i++) {
		track_init(&tracks[i]);
		args[i] = &tracks[i];
	}
	sup_arg_init(sa, &worker_props, n, args);
	*sup = (ig_supervisor_t){.decider = code_decider, .decider_arg = rec,
				 .all_for_one = all_for_one};
	*props = sup_base_props;
	props->supervisor = sup;
	ig_ref_t s;
	assert_int_equal(ig_system_spawn(g_sys, props, "sup", sa, &s), 0);
	return s;
}

static void test_decider_resume_keeps_state_and_drops_failing_message(void **unused)
{
	(void)unused;
	static sup_arg_t sa;
	static ig_props_t props;
	static ig_supervisor_t sup;
	static track_t t[1];
	static decider_rec_t rec;
	decider_rec_init(&rec, IG_RESTART);
	spawn_sup(&sa, &props, &sup, t, 1, &rec, false);
	assert_true(latch_wait(&sa.spawned, 1, WAIT));
	ig_ref_t c = sup_child(&sa, 0);
	tell_inc(c, 1);
	tell_inc(c, 2);
	tell_fail(c, E_RESUME); /* counts, then fails: resume keeps that too */
	tell_inc(c, 3);
	assert_int_equal(get_count(c), 4);
	assert_int_equal(atomic_load(&rec.calls), 1);
	assert_int_equal(atomic_load(&rec.last_err), E_RESUME);
	assert_int_equal(track_get(&t[0], &t[0].inits), 1);
	assert_int_equal(track_get(&t[0], &t[0].fails), 1);
	int64_t want[] = {1, 2, 3};
	assert_seq(&t[0], want, 3);
	assert_log(&t[0], "IS");
}

static void test_decider_restart_gives_fresh_state(void **unused)
{
	(void)unused;
	static sup_arg_t sa;
	static ig_props_t props;
	static ig_supervisor_t sup;
	static track_t t[1];
	static decider_rec_t rec;
	decider_rec_init(&rec, IG_RESTART);
	ig_ref_t s = spawn_sup(&sa, &props, &sup, t, 1, &rec, false);
	assert_true(latch_wait(&sa.spawned, 1, WAIT));
	ig_ref_t c = sup_child(&sa, 0);
	tell_inc(c, 1);
	tell_inc(c, 2);
	tell_fail(c, E_RESTART);
	tell_inc(c, 3);
	assert_int_equal(get_count(c), 1);
	assert_int_equal(atomic_load(&rec.last_err), E_RESTART);
	assert_int_equal(track_get(&t[0], &t[0].inits), 2);
	assert_int_equal(track_get(&t[0], &t[0].init_saw_dirty), 0);
	assert_log(&t[0], "ISPFIS");
	/* Restarted in place; the supervisor itself was not restarted. */
	assert_true(ig_ref_eq(sup_child(&sa, 0), c));
	assert_int_equal(get_count(s), 1);
	assert_log(&sa.self, "IS");
}

static void test_decider_stop_sends_terminated_with_the_error_to_watchers(void **unused)
{
	(void)unused;
	static sup_arg_t sa;
	static ig_props_t props;
	static ig_supervisor_t sup;
	static track_t t[1];
	static decider_rec_t rec;
	static watch_arg_t w;
	decider_rec_init(&rec, IG_RESTART);
	ig_ref_t s = spawn_sup(&sa, &props, &sup, t, 1, &rec, false);
	assert_true(latch_wait(&sa.spawned, 1, WAIT));
	ig_ref_t c = sup_child(&sa, 0);
	watch(&w, c);
	tell_inc(c, 1);
	tell_fail(c, E_STOP);
	assert_true(latch_wait(&w.terminated, 1, WAIT));
	int n;
	ig_terminated_t got = watch_result(&w, &n);
	assert_int_equal(n, 1);
	assert_true(ig_ref_eq(got.ref, c));
	assert_int_equal(got.reason, E_STOP);
	assert_log(&t[0], "ISPF");
	assert_int_equal(ig_tell(c, T_INC, &(int64_t){1}, 8, IG_NOREF), IG_ENOACTOR);
	/* The supervisor goes on, with no restart of its own. */
	assert_int_equal(get_count(s), 1);
	assert_log(&sa.self, "IS");
}

/* A child escalates: its parent fails with the same error, the grandparent's
 * decider restarts the parent, whose restart stops the children and whose
 * pre_start (the default post_restart) spawns new ones. */
static void test_decider_escalate_lets_grandparent_restart_parent_and_children_are_recreated(
	void **unused)
{
	(void)unused;
	static sup_arg_t gp, p;
	static ig_props_t gp_props, p_props;
	static ig_supervisor_t gp_sup, p_sup;
	static decider_rec_t gp_rec, p_rec;
	static track_t ct[2];
	static watch_arg_t w0, w1;
	decider_rec_init(&gp_rec, IG_RESTART);
	decider_rec_init(&p_rec, IG_RESTART);
	track_init(&ct[0]);
	track_init(&ct[1]);
	void *cargs[] = {&ct[0], &ct[1]};
	sup_arg_init(&p, &worker_props, 2, cargs);
	p_sup = (ig_supervisor_t){.decider = code_decider, .decider_arg = &p_rec};
	p_props = sup_base_props;
	p_props.supervisor = &p_sup;
	void *pargs[] = {&p};
	sup_arg_init(&gp, &p_props, 1, pargs);
	gp_sup = (ig_supervisor_t){.decider = recording_decider, .decider_arg = &gp_rec};
	gp_props = sup_base_props;
	gp_props.supervisor = &gp_sup;
	ig_ref_t g;
	assert_int_equal(ig_system_spawn(g_sys, &gp_props, "gp", &gp, &g), 0);
	assert_true(latch_wait(&p.spawned, 1, WAIT));
	ig_ref_t parent = sup_child(&gp, 0);
	ig_ref_t old0 = sup_child(&p, 0), old1 = sup_child(&p, 1);
	watch(&w0, old0);
	watch(&w1, old1);
	tell_inc(old0, 1);
	assert_int_equal(get_count(old0), 1);

	tell_fail(old0, E_ESCALATE);
	assert_true(latch_wait(&p.spawned, 2, WAIT));
	assert_true(latch_wait(&w0.terminated, 1, WAIT));
	assert_true(latch_wait(&w1.terminated, 1, WAIT));

	/* The parent's decider said escalate; the grandparent decided. */
	assert_int_equal(atomic_load(&p_rec.calls), 1);
	assert_int_equal(atomic_load(&p_rec.last_err), E_ESCALATE);
	assert_int_equal(atomic_load(&gp_rec.calls), 1);
	assert_int_equal(atomic_load(&gp_rec.last_err), E_ESCALATE);
	/* The parent restarted in place (same ref), the grandparent did not. */
	assert_true(ig_ref_eq(sup_child(&gp, 0), parent));
	assert_log(&p.self, "ISPFIS");
	assert_log(&gp.self, "IS");
	/* Old children are gone, new ones run with fresh state. */
	ig_ref_t new0 = sup_child(&p, 0), new1 = sup_child(&p, 1);
	assert_false(ig_ref_eq(new0, old0));
	assert_false(ig_ref_eq(new1, old1));
	assert_int_equal(ig_tell(old0, T_INC, &(int64_t){1}, 8, IG_NOREF), IG_ENOACTOR);
	assert_int_equal(ig_tell(old1, T_INC, &(int64_t){1}, 8, IG_NOREF), IG_ENOACTOR);
	assert_int_equal(get_count(new0), 0);
	assert_int_equal(get_count(new1), 0);
	assert_int_equal(get_count(parent), 2); /* generation */
	assert_log(&ct[0], "ISPFIS");
	assert_log(&ct[1], "ISPFIS");
	int n;
	watch_result(&w0, &n);
	assert_int_equal(n, 1);
}

/* Akka resumes a resumed actor's children too (faultResume resumes the
 * subtree): the child whose failure was escalated must not stay suspended
 * forever once the grandparent resumes the parent. */
static void test_escalate_then_grandparent_resume_lets_the_failed_child_go_on(void **unused)
{
	(void)unused;
	static sup_arg_t gp, p;
	static ig_props_t gp_props, p_props;
	static ig_supervisor_t gp_sup, p_sup;
	static decider_rec_t gp_rec;
	static track_t ct[1];
	decider_rec_init(&gp_rec, IG_RESUME);
	track_init(&ct[0]);
	void *cargs[] = {&ct[0]};
	sup_arg_init(&p, &worker_props, 1, cargs);
	p_sup = (ig_supervisor_t){.decider = code_decider};
	p_props = sup_base_props;
	p_props.supervisor = &p_sup;
	void *pargs[] = {&p};
	sup_arg_init(&gp, &p_props, 1, pargs);
	gp_sup = (ig_supervisor_t){.decider = recording_decider, .decider_arg = &gp_rec};
	gp_props = sup_base_props;
	gp_props.supervisor = &gp_sup;
	ig_ref_t g;
	assert_int_equal(ig_system_spawn(g_sys, &gp_props, "gp", &gp, &g), 0);
	assert_true(latch_wait(&p.spawned, 1, WAIT));
	ig_ref_t parent = sup_child(&gp, 0), c = sup_child(&p, 0);
	tell_inc(c, 1);
	tell_fail(c, E_ESCALATE);
	assert_true(latch_wait(&gp_rec.called, 1, WAIT));
	assert_int_equal(get_count(parent), 1); /* the parent runs again */
	tell_inc(c, 2);
	int64_t v = -1;
	int rc = ask_i64(c, T_GET, NULL, 0, IG_SEC(2), &v);
	if (rc)
		fprintf(stderr, "BUG: the escalating child stays suspended after the grandparent "
				"resumed its parent: GET -> %s\n", ig_strerror(rc));
	assert_int_equal(rc, 0);
	assert_int_equal(v, 3);
}

/* ---- all-for-one ----------------------------------------------------------------------- */

static void test_all_for_one_restart_restarts_every_sibling(void **unused)
{
	(void)unused;
	static sup_arg_t sa;
	static ig_props_t props;
	static ig_supervisor_t sup;
	static track_t t[3];
	static decider_rec_t rec;
	decider_rec_init(&rec, IG_RESTART);
	spawn_sup(&sa, &props, &sup, t, 3, &rec, true);
	assert_true(latch_wait(&sa.spawned, 1, WAIT));
	ig_ref_t c[3];
	for (int i = 0; i < 3; i++) {
		c[i] = sup_child(&sa, i);
		tell_inc(c[i], 1);
		tell_inc(c[i], 2);
		assert_int_equal(get_count(c[i]), 2);
	}
	tell_fail(c[1], E_RESTART);
	for (int i = 0; i < 3; i++)
		assert_true(latch_wait(&t[i].ready, 2, WAIT));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get_count(c[i]), 0);
		assert_int_equal(track_get(&t[i], &t[i].inits), 2);
		assert_int_equal(track_get(&t[i], &t[i].fails), i == 1);
		assert_log(&t[i], "ISPFIS");
	}
	assert_int_equal(atomic_load(&rec.calls), 1);
	assert_log(&sa.self, "IS");
}

static void test_all_for_one_stop_stops_every_sibling_with_the_error(void **unused)
{
	(void)unused;
	static sup_arg_t sa;
	static ig_props_t props;
	static ig_supervisor_t sup;
	static track_t t[3];
	static decider_rec_t rec;
	static watch_arg_t w[3];
	decider_rec_init(&rec, IG_RESTART);
	ig_ref_t s = spawn_sup(&sa, &props, &sup, t, 3, &rec, true);
	assert_true(latch_wait(&sa.spawned, 1, WAIT));
	ig_ref_t c[3];
	for (int i = 0; i < 3; i++) {
		c[i] = sup_child(&sa, i);
		watch(&w[i], c[i]);
	}
	tell_fail(c[2], E_STOP);
	for (int i = 0; i < 3; i++) {
		assert_true(latch_wait(&w[i].terminated, 1, WAIT));
		int n;
		ig_terminated_t got = watch_result(&w[i], &n);
		assert_int_equal(n, 1);
		assert_true(ig_ref_eq(got.ref, c[i]));
		assert_int_equal(got.reason, E_STOP);
		assert_log(&t[i], "ISPF");
	}
	assert_int_equal(get_count(s), 1); /* the supervisor lives on */
}

/* ---- max_restarts within a window (virtual time) -------------------------------------- */

typedef struct det_world {
	sup_arg_t sa;
	ig_props_t props;
	ig_supervisor_t sup;
	track_t t[1];
	ig_ref_t sup_ref, child, sleeper;
} det_world_t;

static void det_world_start(det_world_t *d, unsigned max_restarts, ig_duration_t within)
{
	d->sup_ref = spawn_sup(&d->sa, &d->props, &d->sup, d->t, 1, NULL, false);
	/* Nothing runs in a deterministic system until someone waits, and the
	 * strategy is read only when a child fails. */
	d->sup.max_restarts = max_restarts;
	d->sup.within = within;
	assert_int_equal(ig_system_spawn(g_sys, &sleeper_props, "sleeper", NULL, &d->sleeper), 0);
	assert_int_equal(get_count(d->sup_ref), 1);
	d->child = sup_child(&d->sa, 0);
	assert_int_equal(get_count(d->child), 0);
}

static void test_max_restarts_stops_child_at_the_failure_past_the_limit_in_the_window(
	void **unused)
{
	(void)unused;
	static det_world_t d;
	static watch_arg_t w;
	memset(&d, 0, sizeof d);
	det_world_start(&d, 2, IG_SEC(10));
	watch_arg_init(&w, d.child);
	ig_ref_t wr;
	assert_int_equal(ig_system_spawn(g_sys, &watcher_props, NULL, &w, &wr), 0);
	int64_t z;
	assert_int_equal(ask_i64(wr, T_PING, NULL, 0, IG_SEC(1), &z), 0);

	/* Two failures inside the window: two restarts. */
	for (int i = 0; i < 2; i++) {
		tell_inc(d.child, 1);
		tell_fail(d.child, E_RESTART);
		assert_int_equal(get_count(d.child), 0);
		assert_int_equal(track_get(&d.t[0], &d.t[0].inits), 2 + i);
		advance(d.sleeper, IG_SEC(2));
	}
	/* The third inside 10 s is one too many: stopped with the error. */
	tell_fail(d.child, E_RESTART);
	int64_t reason = 0;
	assert_int_equal(ask_i64(wr, T_QUERY, NULL, 0, IG_SEC(60), &reason), 0);
	assert_int_equal(reason, E_RESTART);
	assert_int_equal(track_get(&d.t[0], &d.t[0].inits), 3);
	int64_t v;
	assert_int_equal(ask_i64(d.child, T_GET, NULL, 0, IG_SEC(1), &v), IG_ETIMEDOUT);
	assert_log(&d.t[0], "ISPFISPFISPF");
	assert_int_equal(get_count(d.sup_ref), 1); /* the supervisor is untouched */
}

static void test_max_restarts_failures_spaced_beyond_the_window_keep_restarting(void **unused)
{
	(void)unused;
	static det_world_t d;
	memset(&d, 0, sizeof d);
	det_world_start(&d, 2, IG_SEC(10));
	for (int i = 0; i < 8; i++) {
		tell_inc(d.child, 1);
		tell_fail(d.child, E_RESTART);
		assert_int_equal(get_count(d.child), 0);
		assert_int_equal(track_get(&d.t[0], &d.t[0].inits), 2 + i);
		advance(d.sleeper, IG_SEC(11));
	}
	/* Two quick ones are still allowed in a fresh window... */
	tell_fail(d.child, E_RESTART);
	tell_fail(d.child, E_RESTART);
	assert_int_equal(get_count(d.child), 0);
	assert_int_equal(track_get(&d.t[0], &d.t[0].inits), 11);
}

static void test_max_restarts_zero_window_counts_forever(void **unused)
{
	(void)unused;
	static det_world_t d;
	static watch_arg_t w;
	memset(&d, 0, sizeof d);
	det_world_start(&d, 3, 0);
	watch_arg_init(&w, d.child);
	ig_ref_t wr;
	assert_int_equal(ig_system_spawn(g_sys, &watcher_props, NULL, &w, &wr), 0);
	int64_t z;
	assert_int_equal(ask_i64(wr, T_PING, NULL, 0, IG_SEC(1), &z), 0);
	for (int i = 0; i < 3; i++) {
		tell_fail(d.child, E_RESTART);
		assert_int_equal(get_count(d.child), 0);
		advance(d.sleeper, IG_SEC(3600));
	}
	tell_fail(d.child, E_RESTART);
	int64_t reason = 0;
	assert_int_equal(ask_i64(wr, T_QUERY, NULL, 0, IG_SEC(60), &reason), 0);
	assert_int_equal(reason, E_RESTART);
	assert_int_equal(track_get(&d.t[0], &d.t[0].inits), 4);
}

/* ---- messages while suspended -------------------------------------------------------------- */

/* The supervisor is blocked in a behavior, so its child's failure waits for
 * a decision: the child stays suspended while more messages arrive. */
static void suspended_then(int err, int64_t count_at_get, int64_t final_count)
{
	static sup_arg_t sa;
	static ig_props_t props;
	static ig_supervisor_t sup;
	static track_t t[1];
	static decider_rec_t rec;
	decider_rec_init(&rec, IG_RESTART);
	ig_ref_t s = spawn_sup(&sa, &props, &sup, t, 1, &rec, false);
	assert_true(latch_wait(&sa.spawned, 1, WAIT));
	ig_ref_t c = sup_child(&sa, 0);
	tell_inc(c, 1);
	tell_inc(c, 2);
	assert_int_equal(get_count(c), 2);

	assert_int_equal(ig_tell(s, T_BLOCK, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&sa.blocked, 1, WAIT));
	tell_fail(c, err);
	for (int64_t v = 3; v <= 7; v++)
		tell_inc(c, v);
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, c, T_GET, NULL, 0, WAIT, &f), 0);
	/* Held while suspended: no answer yet (an expect-no-message window). */
	assert_int_equal(ig_future_wait(f, IG_MS(50), NULL), IG_EAGAIN);
	assert_int_equal(atomic_load(&rec.calls), 0);
	assert_int_equal(track_get(&t[0], &t[0].nseq), 2);

	latch_add(&sa.gate, 1);
	for (int64_t v = 8; v <= 10; v++)
		tell_inc(c, v);
	const ig_msg_t *r;
	assert_int_equal(ig_future_wait(f, WAIT, &r), 0);
	int64_t got;
	memcpy(&got, r->data, sizeof got);
	assert_int_equal(got, count_at_get);
	ig_future_free(f);
	assert_int_equal(get_count(c), final_count);
	int64_t want[10];
	for (int i = 0; i < 10; i++)
		want[i] = i + 1;
	assert_seq(&t[0], want, 10); /* all kept, in order, none twice */
	assert_int_equal(atomic_load(&rec.calls), 1);
}

static void test_messages_arriving_while_suspended_are_processed_after_resume(void **unused)
{
	(void)unused;
	/* 2 before, +1 by the failing message (state kept), +5 kept, +3 after. */
	suspended_then(E_RESUME, 8, 11);
}

static void test_messages_arriving_while_suspended_are_processed_after_restart(void **unused)
{
	(void)unused;
	/* Fresh state: only the 5 kept and the 3 later ones count. */
	suspended_then(E_RESTART, 5, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_threaded, teardown)
#define D(fn) cmocka_unit_test_setup_teardown(fn, setup_deterministic, teardown)
		T(test_default_restart_gives_zeroed_state_reruns_init_and_drops_failing_message),
		T(test_restart_calls_custom_pre_restart_and_post_restart_with_the_error),
		T(test_init_failing_on_restart_stops_the_actor_with_that_reason),
		T(test_decider_resume_keeps_state_and_drops_failing_message),
		T(test_decider_restart_gives_fresh_state),
		T(test_decider_stop_sends_terminated_with_the_error_to_watchers),
		T(test_decider_escalate_lets_grandparent_restart_parent_and_children_are_recreated),
		T(test_escalate_then_grandparent_resume_lets_the_failed_child_go_on),
		T(test_all_for_one_restart_restarts_every_sibling),
		T(test_all_for_one_stop_stops_every_sibling_with_the_error),
		D(test_max_restarts_stops_child_at_the_failure_past_the_limit_in_the_window),
		D(test_max_restarts_failures_spaced_beyond_the_window_keep_restarting),
		D(test_max_restarts_zero_window_counts_forever),
		T(test_messages_arriving_while_suspended_are_processed_after_resume),
		T(test_messages_arriving_while_suspended_are_processed_after_restart),
#undef T
#undef D
	};
	return cmocka_run_group_tests_name("supervision", tests, NULL, NULL);
}
