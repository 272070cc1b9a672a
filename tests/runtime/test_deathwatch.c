/* Tests of death watch (ig_watch / ig_unwatch / IG_MSG_TERMINATED): the
 * Terminated a watcher gets on a normal stop (reason 0) and when supervision
 * stops the actor (the failure code), watching refs that are already dead,
 * unwatch (before the stop, and with a Terminated already queued), many
 * watchers, watching from behaviors and hooks, watchers that die first,
 * watched actors that are stopping, and watchers with full bounded
 * mailboxes.
 *
 * No test sleeps to wait: threaded tests wait on a latch (mutex + condition
 * variable + deadline) that actors signal, or on ig_future_wait; a
 * deterministic system runs only when the test drives it (det_drain()).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ingot/error.h>
#include <ingot/runtime.h>
#include <ingot/testkit.h>

#include "test_util.h"

#define WAIT IG_SEC(10) /* deadline for things that must happen; only a failure waits this long */

/* ---- message types used by the test actors ------------------------------- */

enum {
	T_INT = 1,       /* payload: int, recorded */
	T_BLOCK,         /* blocks the behavior until the rec's gate opens */
	T_CMD_WATCH,     /* payload: ig_ref_t; records T_ACK with ig_watch's rc */
	T_CMD_UNWATCH,   /* payload: ig_ref_t; records T_ACK with ig_unwatch's rc */
	T_ACK,
	T_STOP_SELF,
	T_FAIL,          /* payload: int error the behavior returns */
	T_CMD_SPAWN,     /* payload: spawn_req_t; replies spawn_rep_t */
	T_SPAWN_REP,
	T_PING,          /* replies T_PONG */
	T_PONG,
};

/* ---- the recorder: a probe-like actor writing what it gets into a rec_t -- */

#define REC_MAX 1024
#define REC_DATA 64

typedef struct item {
	uint32_t type, size;
	ig_ref_t sender, self;
	int rc; /* T_ACK: result of the command */
	unsigned char data[REC_DATA];
} item_t;

typedef struct rec {
	latch_t l;       /* count: items recorded */
	latch_t entered; /* T_BLOCK: behaviors that reached the gate */
	latch_t gate;    /* T_BLOCK waits for count >= 1 */
	item_t *items;
} rec_t;

static rec_t *rec_new(void)
{
	rec_t *r = calloc(1, sizeof *r);
	assert_non_null(r);
	r->items = calloc(REC_MAX, sizeof *r->items);
	assert_non_null(r->items);
	latch_init(&r->l);
	latch_init(&r->entered);
	latch_init(&r->gate);
	return r;
}

static void rec_free(rec_t *r)
{
	latch_destroy(&r->l);
	latch_destroy(&r->entered);
	latch_destroy(&r->gate);
	free(r->items);
	free(r);
}

static void rec_add(rec_t *r, ig_ctx_t *ctx, const ig_msg_t *msg, uint32_t type, int rc)
{
	pthread_mutex_lock(&r->l.mu);
	if (r->l.n < REC_MAX) {
		item_t *it = &r->items[r->l.n];
		it->type = type;
		it->size = msg->size;
		it->sender = msg->sender;
		it->self = ctx ? ig_self(ctx) : IG_NOREF;
		it->rc = rc;
		if (msg->size)
			memcpy(it->data, msg->data, msg->size < REC_DATA ? msg->size : REC_DATA);
		r->l.n++;
		pthread_cond_broadcast(&r->l.cv);
	}
	pthread_mutex_unlock(&r->l.mu);
}

static item_t rec_get(rec_t *r, int i)
{
	pthread_mutex_lock(&r->l.mu);
	assert_true(i < r->l.n);
	item_t it = r->items[i];
	pthread_mutex_unlock(&r->l.mu);
	return it;
}

typedef struct probe_state {
	rec_t *rec;
	ig_ref_t watch_at_start; /* pre_start watches this (if set) */
} probe_state_t;

typedef struct probe_arg {
	rec_t *rec;
	ig_ref_t watch_at_start;
} probe_arg_t;

static int probe_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	((probe_state_t *)state)->rec = arg;
	return 0;
}

static int probe_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	rec_t *r = ((probe_state_t *)state)->rec;
	switch (msg->type) {
	case T_BLOCK:
		latch_add(&r->entered, 1);
		latch_wait(&r->gate, 1, WAIT);
		rec_add(r, ctx, msg, msg->type, 0);
		return 0;
	case T_CMD_WATCH: {
		ig_ref_t ref;
		memcpy(&ref, msg->data, sizeof ref);
		rec_add(r, ctx, msg, T_ACK, ig_watch(ctx, ref));
		return 0;
	}
	case T_CMD_UNWATCH: {
		ig_ref_t ref;
		memcpy(&ref, msg->data, sizeof ref);
		rec_add(r, ctx, msg, T_ACK, ig_unwatch(ctx, ref));
		return 0;
	}
	case T_STOP_SELF:
		ig_stop_self(ctx);
		return 0;
	case T_FAIL: {
		int err;
		memcpy(&err, msg->data, sizeof err);
		return err;
	}
	case T_PING:
		return ig_reply(ctx, msg, T_PONG, NULL, 0);
	default:
		rec_add(r, ctx, msg, msg->type, 0);
		return 0;
	}
}

static const ig_props_t probe_props = {
	.behavior = probe_behavior,
	.state_size = sizeof(probe_state_t),
	.init = probe_init,
};

/* A probe that watches a ref from its pre_start hook. */
static int watch_start_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	probe_state_t *s = state;
	probe_arg_t *a = arg;
	s->rec = a->rec;
	s->watch_at_start = a->watch_at_start;
	return 0;
}

static void watch_start_pre_start(ig_ctx_t *ctx, void *state)
{
	probe_state_t *s = state;
	ig_msg_t m = {.type = T_ACK};
	rec_add(s->rec, ctx, &m, T_ACK, ig_watch(ctx, s->watch_at_start));
}

static const ig_props_t watch_start_props = {
	.behavior = probe_behavior,
	.state_size = sizeof(probe_state_t),
	.init = watch_start_init,
	.pre_start = watch_start_pre_start,
};

/* ---- the spawner: spawns children on request (ig_spawn from a behavior) --- */

typedef struct spawn_req {
	char name[64]; /* "" = anonymous */
	bool watch;    /* watch the child in the same behavior call */
} spawn_req_t;

typedef struct spawn_rep {
	int rc;
	int watch_rc;
	ig_ref_t ref;
} spawn_rep_t;

static int spawner_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	rec_t *r = ((probe_state_t *)state)->rec;
	if (msg->type != T_CMD_SPAWN)
		return probe_behavior(ctx, state, msg);
	spawn_req_t req;
	memcpy(&req, msg->data, sizeof req);
	spawn_rep_t rep = {.ref = IG_NOREF};
	rep.rc = ig_spawn(ctx, &probe_props, req.name[0] ? req.name : NULL, r, &rep.ref);
	if (rep.rc == 0 && req.watch)
		rep.watch_rc = ig_watch(ctx, rep.ref);
	return ig_reply(ctx, msg, T_SPAWN_REP, &rep, sizeof rep);
}

static const ig_props_t spawner_props = {
	.behavior = spawner_behavior,
	.state_size = sizeof(probe_state_t),
	.init = probe_init,
};

static ig_directive_t decide_stop(int err, void *arg)
{
	(void)err;
	(void)arg;
	return IG_STOP;
}

static const ig_supervisor_t stop_supervisor = {.decider = decide_stop};
static const ig_supervisor_t limited_supervisor = {.max_restarts = 1};

static const ig_props_t stopping_spawner_props = {
	.behavior = spawner_behavior,
	.state_size = sizeof(probe_state_t),
	.init = probe_init,
	.supervisor = &stop_supervisor,
};

static const ig_props_t limited_spawner_props = {
	.behavior = spawner_behavior,
	.state_size = sizeof(probe_state_t),
	.init = probe_init,
	.supervisor = &limited_supervisor,
};

/* ---- small helpers ---------------------------------------------------------- */

static ig_system_t *mk_system(bool det)
{
	ig_system_config_t cfg = {.threads = 2, .log_level = IG_LOG_OFF, .deterministic = det};
	ig_system_t *sys = NULL;
	assert_int_equal(ig_system_create(&cfg, &sys), 0);
	assert_non_null(sys);
	return sys;
}

static ig_ref_t spawn(ig_system_t *sys, const ig_props_t *props, const char *name, void *arg)
{
	ig_ref_t r = IG_NOREF;
	assert_int_equal(ig_system_spawn(sys, props, name, arg, &r), 0);
	assert_false(ig_ref_is_none(r));
	return r;
}

static void tell_int(ig_ref_t to, int v)
{
	assert_int_equal(ig_tell(to, T_INT, &v, sizeof v, IG_NOREF), 0);
}

static uint32_t slot_of(ig_ref_t r)
{
	return (uint32_t)r.h - 1;
}

/* Deterministic systems: runs every turn that is ready, on this thread,
 * without moving virtual time (a wait with a zero timeout on an ask that
 * the /user guardian never answers). */
static void det_drain(ig_system_t *sys)
{
	ig_ref_t user;
	assert_int_equal(ig_lookup(sys, "/user", &user), 0);
	ig_future_t *f = NULL;
	assert_int_equal(ig_ask(sys, user, T_INT, NULL, 0, IG_SEC(3600), &f), 0);
	assert_int_equal(ig_future_wait(f, 0, NULL), IG_EAGAIN);
	ig_future_free(f);
}

/* Asks w to watch (or unwatch) target and returns the call's result, once
 * w has made it (threaded: waits for the ack; deterministic: drains). */
static int cmd(ig_system_t *sys, rec_t *r, ig_ref_t w, uint32_t type, ig_ref_t target, bool det)
{
	int before = latch_count(&r->l);
	assert_int_equal(ig_tell(w, type, &target, sizeof target, IG_NOREF), 0);
	if (det)
		det_drain(sys);
	assert_true(latch_wait(&r->l, before + 1, WAIT));
	/* the ack is the first item w recorded after `before` */
	for (int i = before;; i++) {
		assert_true(latch_wait(&r->l, i + 1, WAIT));
		item_t it = rec_get(r, i);
		if (it.type == T_ACK && ig_ref_eq(it.self, w))
			return it.rc;
	}
}

static int watch(ig_system_t *sys, rec_t *r, ig_ref_t w, ig_ref_t target, bool det)
{
	return cmd(sys, r, w, T_CMD_WATCH, target, det);
}

static int unwatch(ig_system_t *sys, rec_t *r, ig_ref_t w, ig_ref_t target, bool det)
{
	return cmd(sys, r, w, T_CMD_UNWATCH, target, det);
}

static ig_terminated_t terminated_of(const item_t *it)
{
	ig_terminated_t t;
	assert_int_equal(it->type, IG_MSG_TERMINATED);
	assert_int_equal(it->size, sizeof t);
	memcpy(&t, it->data, sizeof t);
	return t;
}

/* Waits for the Terminated of target (received by `by`, or anyone if
 * IG_NOREF) in r, from index `from`; returns its reason. */
static int wait_terminated_by(rec_t *r, int from, ig_ref_t target, ig_ref_t by)
{
	for (int i = from;; i++) {
		assert_true(latch_wait(&r->l, i + 1, WAIT));
		item_t it = rec_get(r, i);
		if (it.type != IG_MSG_TERMINATED)
			continue;
		if (!ig_ref_is_none(by) && !ig_ref_eq(it.self, by))
			continue;
		ig_terminated_t t = terminated_of(&it);
		if (!ig_ref_eq(t.ref, target))
			continue;
		assert_true(ig_ref_eq(it.sender, target)); /* Terminated comes "from" the dead */
		return t.reason;
	}
}

static int wait_terminated(rec_t *r, int from, ig_ref_t target)
{
	return wait_terminated_by(r, from, target, IG_NOREF);
}

static int count_type(rec_t *r, uint32_t type, ig_ref_t self)
{
	int n = 0, total = latch_count(&r->l);
	for (int i = 0; i < total; i++) {
		item_t it = rec_get(r, i);
		if (it.type == type && (ig_ref_is_none(self) || ig_ref_eq(it.self, self)))
			n++;
	}
	return n;
}

static spawn_rep_t ask_spawn(ig_system_t *sys, ig_ref_t parent, const char *name, bool watch_it)
{
	spawn_req_t req = {.watch = watch_it};
	snprintf(req.name, sizeof req.name, "%s", name ? name : "");
	ig_future_t *f = NULL;
	assert_int_equal(ig_ask(sys, parent, T_CMD_SPAWN, &req, sizeof req, WAIT, &f), 0);
	const ig_msg_t *reply = NULL;
	assert_int_equal(ig_future_wait(f, WAIT, &reply), 0);
	assert_int_equal(reply->type, T_SPAWN_REP);
	spawn_rep_t rep;
	memcpy(&rep, reply->data, sizeof rep);
	ig_future_free(f);
	return rep;
}

/* Waits until ref is gone, using a watcher of our own (its rec is r2,
 * which the caller frees after the system). */
static void wait_gone(ig_system_t *sys, rec_t *r2, ig_ref_t ref)
{
	ig_ref_t w = spawn(sys, &probe_props, NULL, r2);
	int before = latch_count(&r2->l);
	assert_int_equal(watch(sys, r2, w, ref, false), 0);
	wait_terminated_by(r2, before, ref, w);
}

/* ======================= Terminated on a normal stop ===================== */

static void test_watch_gets_terminated_with_reason_zero_on_stop(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, "target", rt);
	ig_ref_t w = spawn(sys, &probe_props, "watcher", rw);
	assert_int_equal(watch(sys, rw, w, t, false), 0);
	assert_int_equal(ig_stop(t), 0);
	assert_int_equal(wait_terminated(rw, 1, t), 0);
	item_t it = rec_get(rw, 1);
	ig_terminated_t term = terminated_of(&it);
	assert_true(ig_ref_eq(term.ref, t));
	assert_true(ig_ref_eq(it.self, w));
	/* the watcher goes on working and gets no second Terminated */
	tell_int(w, 5);
	assert_true(latch_wait(&rw->l, 3, WAIT));
	assert_int_equal(rec_get(rw, 2).type, T_INT);
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 1);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
}

static void test_watch_gets_terminated_after_poison_pill_and_stop_self(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t t1 = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t t2 = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, t1, false), 0);
	assert_int_equal(watch(sys, rw, w, t2, false), 0);
	assert_int_equal(ig_poison(t1), 0);
	assert_int_equal(wait_terminated(rw, 2, t1), 0);
	assert_int_equal(ig_tell(t2, T_STOP_SELF, NULL, 0, IG_NOREF), 0);
	assert_int_equal(wait_terminated(rw, 2, t2), 0);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
}

static void test_terminated_arrives_in_a_deterministic_system(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, t, true), 0);
	assert_int_equal(ig_stop(t), 0);
	assert_int_equal(latch_count(&rw->l), 1); /* nothing ran yet */
	det_drain(sys);
	assert_int_equal(latch_count(&rw->l), 2);
	item_t it = rec_get(rw, 1);
	ig_terminated_t term = terminated_of(&it);
	assert_true(ig_ref_eq(term.ref, t));
	assert_int_equal(term.reason, 0);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
}

/* ==================== Terminated carries a failure ======================= */

static void test_terminated_carries_the_failure_when_the_supervisor_stops_the_actor(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rp = rec_new(), *rw = rec_new();
	ig_ref_t parent = spawn(sys, &stopping_spawner_props, "strict", rp);
	/* the parent watches its child, and so does an outside watcher */
	spawn_rep_t c = ask_spawn(sys, parent, "child", true);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.watch_rc, 0);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, c.ref, false), 0);
	int err = -EIO;
	assert_int_equal(ig_tell(c.ref, T_FAIL, &err, sizeof err, IG_NOREF), 0);
	assert_int_equal(wait_terminated(rw, 1, c.ref), -EIO);
	assert_int_equal(wait_terminated_by(rp, 0, c.ref, parent), -EIO);
	ig_ref_t found;
	assert_int_equal(ig_lookup(sys, "/user/strict/child", &found), IG_ENOTFOUND);
	ig_system_destroy(sys);
	rec_free(rp);
	rec_free(rw);
}

static void test_terminated_carries_the_failure_after_too_many_restarts(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rp = rec_new(), *rw = rec_new();
	ig_ref_t parent = spawn(sys, &limited_spawner_props, NULL, rp);
	spawn_rep_t c = ask_spawn(sys, parent, "flaky", false);
	assert_int_equal(c.rc, 0);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, c.ref, false), 0);
	int err = IG_EFAILED;
	/* the first failure restarts it (same ref, still watched) */
	assert_int_equal(ig_tell(c.ref, T_FAIL, &err, sizeof err, IG_NOREF), 0);
	tell_int(c.ref, 1); /* handled after the restart */
	assert_true(latch_wait(&rp->l, 1, WAIT));
	assert_int_equal(rec_get(rp, 0).type, T_INT);
	assert_int_equal(latch_count(&rw->l), 1); /* no Terminated for a restart */
	/* the second is one too many: stopped with the failure as the reason */
	err = IG_ECANCELED;
	assert_int_equal(ig_tell(c.ref, T_FAIL, &err, sizeof err, IG_NOREF), 0);
	assert_int_equal(wait_terminated(rw, 1, c.ref), IG_ECANCELED);
	ig_system_destroy(sys);
	rec_free(rp);
	rec_free(rw);
}

/* A watch placed while the actor is stopping (it waits for a blocked
 * child) still gets the Terminated once the actor is done. */
static void test_watch_placed_while_stopping_gets_terminated_when_done(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rp = rec_new(), *rw = rec_new();
	ig_ref_t parent = spawn(sys, &spawner_props, "p", rp);
	spawn_rep_t c = ask_spawn(sys, parent, "busy", false);
	assert_int_equal(c.rc, 0);
	/* the child runs with rec rp (the spawner passes its own); block it */
	assert_int_equal(ig_tell(c.ref, T_BLOCK, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&rp->entered, 1, WAIT));
	assert_int_equal(ig_stop(parent), 0);
	/* parent is now stopping, waiting for the blocked child */
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	int rc_watch = watch(sys, rw, w, parent, false);
	assert_int_equal(rc_watch, 0);
	latch_add(&rp->gate, 1);
	assert_int_equal(wait_terminated(rw, 1, parent), 0);
	ig_system_destroy(sys);
	rec_free(rp);
	rec_free(rw);
}

/* ====================== watching the already dead ======================== */

static void test_watching_a_dead_ref_gives_terminated_at_once(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rt = rec_new(), *rw = rec_new(), *r2 = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	assert_int_equal(ig_stop(t), 0);
	wait_gone(sys, r2, t);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, t, false), 0);
	assert_int_equal(wait_terminated(rw, 1, t), 0);
	/* the same for a ref that never named a live actor in this system */
	ig_ref_t bogus = {((uint64_t)0x7777 << 40) | 0x123456};
	assert_int_equal(watch(sys, rw, w, bogus, false), 0);
	assert_int_equal(wait_terminated(rw, 3, bogus), 0);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
	rec_free(r2);
}

static void test_watching_a_dead_ref_in_a_deterministic_system(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(ig_stop(t), 0);
	det_drain(sys);
	assert_int_equal(watch(sys, rw, w, t, true), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&rw->l), 2);
	item_t it = rec_get(rw, 1);
	ig_terminated_t term = terminated_of(&it);
	assert_true(ig_ref_eq(term.ref, t));
	assert_int_equal(term.reason, 0);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
}

static void test_watch_rejects_self_and_noref(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *rw = rec_new();
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, w, true), IG_EINVAL);
	assert_int_equal(watch(sys, rw, w, IG_NOREF, true), IG_EINVAL);
	/* unwatching what is not watched */
	rec_t *rt = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	assert_int_equal(unwatch(sys, rw, w, t, true), IG_ENOTFOUND);
	assert_int_equal(unwatch(sys, rw, w, IG_NOREF, true), IG_ENOTFOUND);
	/* nothing else happened */
	det_drain(sys);
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 0);
	ig_system_destroy(sys);
	rec_free(rw);
	rec_free(rt);
}

/* =============================== unwatch ================================= */

static void test_unwatch_before_the_stop_gives_no_terminated(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, t, true), 0);
	assert_int_equal(unwatch(sys, rw, w, t, true), 0);
	assert_int_equal(ig_stop(t), 0);
	det_drain(sys);
	tell_int(w, 9);
	det_drain(sys);
	assert_int_equal(latch_count(&rw->l), 3); /* two acks and the 9 */
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 0);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
}

static void test_unwatch_before_the_stop_threaded(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rt = rec_new(), *rw = rec_new(), *r2 = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, t, false), 0);
	assert_int_equal(unwatch(sys, rw, w, t, false), 0);
	/* a second watcher tells us when t is gone */
	ig_ref_t w2 = spawn(sys, &probe_props, NULL, r2);
	assert_int_equal(watch(sys, r2, w2, t, false), 0);
	assert_int_equal(ig_stop(t), 0);
	assert_int_equal(wait_terminated(r2, 1, t), 0);
	tell_int(w, 9); /* w handles this after anything already queued */
	assert_true(latch_wait(&rw->l, 3, WAIT));
	assert_int_equal(rec_get(rw, 2).type, T_INT);
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 0);
	ig_system_destroy(sys);
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 0);
	rec_free(rt);
	rec_free(rw);
	rec_free(r2);
}

/* The watched actor dies while the unwatch is on its way: the Terminated it
 * sent is dropped at the watcher (Akka's unwatch semantics). */
static void test_unwatch_drops_a_terminated_that_is_already_on_its_way(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, t, true), 0);
	/* t stops first (it is scheduled first), then w unwatches with t's
	 * Terminated already behind the unwatch in its mailbox */
	assert_int_equal(ig_stop(t), 0);
	assert_int_equal(ig_tell(w, T_CMD_UNWATCH, &t, sizeof t, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&rw->l), 2);
	item_t ack = rec_get(rw, 1);
	assert_int_equal(ack.type, T_ACK);
	assert_int_equal(ack.rc, 0);
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 0);
	/* and the other order: the unwatch runs while t is stopping */
	ig_ref_t t2 = spawn(sys, &probe_props, NULL, rt);
	assert_int_equal(watch(sys, rw, w, t2, true), 0);
	assert_int_equal(ig_tell(w, T_CMD_UNWATCH, &t2, sizeof t2, IG_NOREF), 0);
	assert_int_equal(ig_stop(t2), 0);
	det_drain(sys);
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 0);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
}

/* Watch, unwatch, watch again: one Terminated, from the second watch. */
static void test_rewatch_after_unwatch_gives_one_terminated(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, t, true), 0);
	assert_int_equal(unwatch(sys, rw, w, t, true), 0);
	assert_int_equal(watch(sys, rw, w, t, true), 0);
	assert_int_equal(watch(sys, rw, w, t, true), 0); /* twice: still one */
	assert_int_equal(ig_stop(t), 0);
	det_drain(sys);
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 1);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
}

/* ============================ many watchers ============================== */

static void test_many_watchers_all_get_terminated(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	enum { N = 64 };
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t ws[N];
	for (int i = 0; i < N; i++) {
		ws[i] = spawn(sys, &probe_props, NULL, rw);
		assert_int_equal(ig_tell(ws[i], T_CMD_WATCH, &t, sizeof t, IG_NOREF), 0);
	}
	assert_true(latch_wait(&rw->l, N, WAIT)); /* N acks */
	for (int i = 0; i < N; i++)
		assert_int_equal(rec_get(rw, i).rc, 0);
	assert_int_equal(ig_stop(t), 0);
	assert_true(latch_wait(&rw->l, 2 * N, WAIT));
	/* one Terminated per watcher, each with t and reason 0 */
	for (int i = 0; i < N; i++) {
		int seen = 0;
		for (int k = N; k < 2 * N; k++) {
			item_t it = rec_get(rw, k);
			if (!ig_ref_eq(it.self, ws[i]))
				continue;
			ig_terminated_t term = terminated_of(&it);
			assert_true(ig_ref_eq(term.ref, t));
			assert_int_equal(term.reason, 0);
			seen++;
		}
		assert_int_equal(seen, 1);
	}
	ig_system_destroy(sys);
	assert_int_equal(latch_count(&rw->l), 2 * N);
	rec_free(rt);
	rec_free(rw);
}

static void test_one_watcher_many_targets(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	enum { N = 32 };
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	ig_ref_t ts[N];
	for (int i = 0; i < N; i++) {
		ts[i] = spawn(sys, &probe_props, NULL, rt);
		assert_int_equal(watch(sys, rw, w, ts[i], false), 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(ig_stop(ts[i]), 0);
	assert_true(latch_wait(&rw->l, 2 * N, WAIT));
	for (int i = 0; i < N; i++)
		assert_int_equal(wait_terminated(rw, N, ts[i]), 0);
	ig_system_destroy(sys);
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), N);
	rec_free(rt);
	rec_free(rw);
}

/* ====================== watching from behaviors, hooks ==================== */

static void test_parent_watching_its_child_from_a_behavior(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rp = rec_new();
	ig_ref_t parent = spawn(sys, &spawner_props, NULL, rp);
	spawn_rep_t c = ask_spawn(sys, parent, NULL, true);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.watch_rc, 0);
	assert_int_equal(ig_tell(c.ref, T_STOP_SELF, NULL, 0, IG_NOREF), 0);
	assert_int_equal(wait_terminated_by(rp, 0, c.ref, parent), 0);
	/* the parent lives on */
	ig_future_t *f;
	assert_int_equal(ig_ask(sys, parent, T_PING, NULL, 0, WAIT, &f), 0);
	assert_int_equal(ig_future_wait(f, WAIT, NULL), 0);
	ig_future_free(f);
	ig_system_destroy(sys);
	rec_free(rp);
}

static void test_watch_from_pre_start(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rt = rec_new(), *rw = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	probe_arg_t arg = {.rec = rw, .watch_at_start = t};
	ig_ref_t w = spawn(sys, &watch_start_props, NULL, &arg);
	assert_true(latch_wait(&rw->l, 1, WAIT));
	assert_int_equal(rec_get(rw, 0).type, T_ACK);
	assert_int_equal(rec_get(rw, 0).rc, 0);
	assert_int_equal(ig_stop(t), 0);
	assert_int_equal(wait_terminated_by(rw, 1, t, w), 0);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
}

static void test_watchers_see_children_terminate_before_their_parent(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rp = rec_new(), *rw = rec_new();
	ig_ref_t parent = spawn(sys, &spawner_props, NULL, rp);
	spawn_rep_t c1 = ask_spawn(sys, parent, "c1", false);
	spawn_rep_t c2 = ask_spawn(sys, parent, "c2", false);
	assert_int_equal(c1.rc, 0);
	assert_int_equal(c2.rc, 0);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, parent, false), 0);
	assert_int_equal(watch(sys, rw, w, c1.ref, false), 0);
	assert_int_equal(watch(sys, rw, w, c2.ref, false), 0);
	assert_int_equal(ig_stop(parent), 0);
	assert_true(latch_wait(&rw->l, 6, WAIT));
	/* the parent's Terminated comes last */
	item_t it5 = rec_get(rw, 5);
	ig_terminated_t t5 = terminated_of(&it5);
	assert_true(ig_ref_eq(t5.ref, parent));
	for (int i = 3; i < 5; i++) {
		item_t it = rec_get(rw, i);
		ig_terminated_t t = terminated_of(&it);
		assert_true(ig_ref_eq(t.ref, c1.ref) || ig_ref_eq(t.ref, c2.ref));
		assert_int_equal(t.reason, 0);
	}
	ig_system_destroy(sys);
	rec_free(rp);
	rec_free(rw);
}

/* ======================== watchers that die first ========================= */

/* The same when the child's Watch is still queued at the stop: the
 * watcher's ack only says it sent it. The child is held in a behavior
 * (T_BLOCK) while the Watch queues behind 1000 messages and the parent's
 * stop marks it; a dead letter for a message sent to the parent after
 * ig_stop says the parent has begun stopping. A stop is a flag the child
 * sees before its queue, yet the queued Watch must be in place when it
 * dies: the old runtime answered it only after those 1000 messages, well
 * after the parent's Terminated. */
#define QW_BEHIND 1000

static void test_a_watch_queued_before_the_stop_keeps_its_order(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rp = rec_new(), *rw = rec_new();
	ig_ref_t parent = spawn(sys, &spawner_props, NULL, rp);
	spawn_rep_t c = ask_spawn(sys, parent, NULL, false);
	ig_probe_t *dl = NULL;
	assert_int_equal(c.rc, 0);
	assert_int_equal(ig_testkit_capture_create(sys, IG_MSG_DEAD_LETTER, &dl), 0);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, parent, false), 0);
	assert_int_equal(ig_tell(c.ref, T_BLOCK, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&rp->entered, 1, WAIT));
	for (int i = 0; i < QW_BEHIND; i++)
		tell_int(c.ref, i);
	assert_int_equal(watch(sys, rw, w, c.ref, false), 0);
	assert_int_equal(ig_stop(parent), 0);
	tell_int(parent, -1);
	assert_int_equal(ig_probe_expect_dead_letter(dl, parent, T_INT, WAIT, NULL), 0);
	latch_add(&rp->gate, 1);
	assert_true(latch_wait(&rw->l, 4, WAIT));
	item_t it2 = rec_get(rw, 2), it3 = rec_get(rw, 3);
	assert_true(ig_ref_eq(terminated_of(&it2).ref, c.ref));
	assert_true(ig_ref_eq(terminated_of(&it3).ref, parent));
	ig_probe_destroy(dl);
	ig_system_destroy(sys);
	rec_free(rp);
	rec_free(rw);
}

static void test_a_watcher_that_dies_first_does_not_break_anything(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *rt = rec_new(), *rw = rec_new(), *rw2 = rec_new(), *r2 = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	ig_ref_t w2 = spawn(sys, &probe_props, NULL, rw2);
	assert_int_equal(watch(sys, rw, w, t, false), 0);
	assert_int_equal(watch(sys, rw2, w2, t, false), 0);
	assert_int_equal(ig_stop(w), 0);
	wait_gone(sys, r2, w);
	assert_int_equal(ig_stop(t), 0);
	assert_int_equal(wait_terminated(rw2, 1, t), 0);
	/* the dead watcher got nothing, and the system still works */
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 0);
	ig_future_t *f;
	assert_int_equal(ig_ask(sys, w2, T_PING, NULL, 0, WAIT, &f), 0);
	assert_int_equal(ig_future_wait(f, WAIT, NULL), 0);
	ig_future_free(f);
	assert_int_equal(ig_system_shutdown(sys, WAIT), 0);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
	rec_free(rw2);
	rec_free(r2);
}

/* The dead watcher's slot is reused by a new actor before the target dies:
 * the Terminated meant for the dead watcher must not reach the new one. */
static void test_terminated_for_a_dead_watcher_does_not_reach_its_slot_successor(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *rt = rec_new(), *rw = rec_new(), *rn = rec_new();
	ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
	ig_ref_t w = spawn(sys, &probe_props, NULL, rw);
	assert_int_equal(watch(sys, rw, w, t, true), 0);
	assert_int_equal(ig_stop(w), 0);
	det_drain(sys);
	ig_ref_t n = IG_NOREF;
	for (int i = 0; i < 4096 && ig_ref_is_none(n); i++) {
		ig_ref_t x = spawn(sys, &probe_props, NULL, rn);
		if (slot_of(x) == slot_of(w))
			n = x;
	}
	assert_false(ig_ref_is_none(n));
	/* the newcomer also watches t: it must get exactly its own Terminated */
	assert_int_equal(watch(sys, rn, n, t, true), 0);
	assert_int_equal(ig_stop(t), 0);
	det_drain(sys);
	assert_int_equal(count_type(rn, IG_MSG_TERMINATED, n), 1);
	assert_int_equal(count_type(rw, IG_MSG_TERMINATED, IG_NOREF), 0);
	ig_system_destroy(sys);
	rec_free(rt);
	rec_free(rw);
	rec_free(rn);
}

static void test_mutual_watchers_stopped_together_shut_down_cleanly(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	enum { N = 20 };
	rec_t *r = rec_new();
	ig_ref_t a[N], b[N];
	for (int i = 0; i < N; i++) {
		a[i] = spawn(sys, &probe_props, NULL, r);
		b[i] = spawn(sys, &probe_props, NULL, r);
		assert_int_equal(ig_tell(a[i], T_CMD_WATCH, &b[i], sizeof b[i], IG_NOREF), 0);
		assert_int_equal(ig_tell(b[i], T_CMD_WATCH, &a[i], sizeof a[i], IG_NOREF), 0);
	}
	assert_true(latch_wait(&r->l, 2 * N, WAIT));
	for (int i = 0; i < N; i++) {
		assert_int_equal(ig_stop(a[i]), 0);
		assert_int_equal(ig_stop(b[i]), 0);
	}
	assert_int_equal(ig_system_shutdown(sys, WAIT), 0);
	assert_int_equal(ig_system_actor_count(sys), 0);
	/* whoever died second may have seen the first one's Terminated; nobody
	 * saw more than one */
	int terms = count_type(r, IG_MSG_TERMINATED, IG_NOREF);
	assert_true(terms <= N);
	ig_system_destroy(sys);
	rec_free(r);
}

/* ============================ full watchers =============================== */

static ig_props_t bounded(uint32_t cap, ig_overflow_t pol)
{
	ig_props_t p = probe_props;
	p.mailbox = IG_MAILBOX_BOUNDED;
	p.capacity = cap;
	p.overflow = pol;
	return p;
}

/* Runtime messages are never rejected by a bounded mailbox; a Terminated
 * must not be lost either, or a watcher that was busy at the wrong moment
 * never learns that its subject died (Akka delivers it as a system
 * message). */
static void test_terminated_reaches_a_watcher_whose_bounded_mailbox_is_full(void **unused)
{
	(void)unused;
	static const ig_overflow_t pols[] = {IG_OVERFLOW_REJECT, IG_OVERFLOW_DROP_NEWEST,
					     IG_OVERFLOW_DROP_OLDEST};
	int lost = 0;
	for (size_t p = 0; p < sizeof pols / sizeof pols[0]; p++) {
		ig_system_t *sys = mk_system(true);
		rec_t *rt = rec_new(), *rw = rec_new();
		ig_props_t props = bounded(1, pols[p]);
		ig_ref_t t = spawn(sys, &probe_props, NULL, rt);
		ig_ref_t w = spawn(sys, &props, NULL, rw);
		assert_int_equal(watch(sys, rw, w, t, true), 0);
		/* t is scheduled first, so it stops before w runs: its Terminated
		 * meets w's mailbox full with the 1 (nothing runs until we drive) */
		assert_int_equal(ig_stop(t), 0);
		tell_int(w, 1);
		det_drain(sys);
		if (count_type(rw, IG_MSG_TERMINATED, w) != 1) {
			fprintf(stderr, "overflow policy %d: the Terminated was lost\n", (int)pols[p]);
			lost++;
		}
		ig_system_destroy(sys);
		rec_free(rt);
		rec_free(rw);
	}
	assert_int_equal(lost, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_gets_terminated_with_reason_zero_on_stop),
		cmocka_unit_test(test_watch_gets_terminated_after_poison_pill_and_stop_self),
		cmocka_unit_test(test_terminated_arrives_in_a_deterministic_system),
		cmocka_unit_test(test_terminated_carries_the_failure_when_the_supervisor_stops_the_actor),
		cmocka_unit_test(test_terminated_carries_the_failure_after_too_many_restarts),
		cmocka_unit_test(test_watch_placed_while_stopping_gets_terminated_when_done),
		cmocka_unit_test(test_watching_a_dead_ref_gives_terminated_at_once),
		cmocka_unit_test(test_watching_a_dead_ref_in_a_deterministic_system),
		cmocka_unit_test(test_watch_rejects_self_and_noref),
		cmocka_unit_test(test_unwatch_before_the_stop_gives_no_terminated),
		cmocka_unit_test(test_unwatch_before_the_stop_threaded),
		cmocka_unit_test(test_unwatch_drops_a_terminated_that_is_already_on_its_way),
		cmocka_unit_test(test_rewatch_after_unwatch_gives_one_terminated),
		cmocka_unit_test(test_many_watchers_all_get_terminated),
		cmocka_unit_test(test_one_watcher_many_targets),
		cmocka_unit_test(test_parent_watching_its_child_from_a_behavior),
		cmocka_unit_test(test_watch_from_pre_start),
		cmocka_unit_test(test_watchers_see_children_terminate_before_their_parent),
		cmocka_unit_test(test_a_watch_queued_before_the_stop_keeps_its_order),
		cmocka_unit_test(test_a_watcher_that_dies_first_does_not_break_anything),
		cmocka_unit_test(test_terminated_for_a_dead_watcher_does_not_reach_its_slot_successor),
		cmocka_unit_test(test_mutual_watchers_stopped_together_shut_down_cleanly),
		cmocka_unit_test(test_terminated_reaches_a_watcher_whose_bounded_mailbox_is_full),
	};
	/* TEST_FILTER=pattern runs only the matching tests (cmocka wildcards). */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
