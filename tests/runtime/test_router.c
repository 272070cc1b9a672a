/* Tests of pool routers (runtime/router.c): how each kind distributes,
 * that the original sender survives routing, supervision of the routees,
 * removal of routees that stop for good, and stopping the whole pool.
 *
 * Routees and a probe actor write what they see on a shared board under a
 * mutex; the test waits for a condition on the board with a deadline (a
 * condvar, never a sleep) and asserts on a snapshot taken under the lock.
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

#include <ingot/runtime.h>

/* Generous: sanitizers slow everything down; a passing run never waits. */
#define WAIT_NS IG_SEC(30)

enum {
	MSG_WORK = 1, /* routee: count it, reply MSG_DONE if there is a sender */
	MSG_KEY,      /* routee: payload uint64 key; note who owns it; reply */
	MSG_SKEY,     /* routee: payload "k<number>"; note who owns it */
	MSG_BLOCK,    /* routee: block until the test releases it */
	MSG_FAIL,     /* routee: fail (supervision) */
	MSG_STOP,     /* routee: stop itself */
	MSG_DONE,     /* reply: payload is the routee's own ref */
	MSG_WATCH,    /* probe: watch the ref in the payload */
};

#define MAXR 16
#define MAXK 512

typedef struct board {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* routees */
	ig_ref_t refs[MAXR];
	unsigned counts[MAXR];
	unsigned nrefs;
	unsigned total;   /* MSG_WORK, MSG_KEY, MSG_SKEY handled */
	unsigned inits;   /* routee init calls (start and every restart) */
	unsigned stops;   /* routee post_stop calls */
	ig_ref_t owner[MAXK];
	unsigned conflicts; /* a key seen at two routees */
	bool blocked, released;
	ig_ref_t blocked_ref;
	/* probe */
	unsigned replies;
	ig_ref_t reply_from[64];
	ig_ref_t terminated[MAXR];
	unsigned nterminated;
	unsigned dead_letters;
	ig_dead_letter_t last_dead_letter;
	unsigned dtors;
} board_t;

typedef struct fixture {
	ig_system_t *sys;
	board_t *b;
	ig_ref_t probe;
} fixture_t;

/* ---- the board ------------------------------------------------------------------- */

static struct timespec deadline_in(int64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + ns;
	return (struct timespec){.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
}

static board_t *board_new(void)
{
	board_t *b = calloc(1, sizeof *b);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	return b;
}

static void board_free(board_t *b)
{
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

/* Copies the board under its lock, so asserts run without it held. */
static board_t snapshot(board_t *b)
{
	board_t s;
	pthread_mutex_lock(&b->mu);
	s = *b;
	pthread_mutex_unlock(&b->mu);
	return s;
}

/* Waits (condvar, deadline) until cond holds; cond reads the board `b`. */
#define WAIT_UNTIL(b, cond)                                                              \
	do {                                                                             \
		struct timespec dl_ = deadline_in(WAIT_NS);                             \
		pthread_mutex_lock(&(b)->mu);                                          \
		while (!(cond) &&                                                      \
		       pthread_cond_timedwait(&(b)->cv, &(b)->mu, &dl_) != ETIMEDOUT)   \
			;                                                              \
		bool ok_ = (cond);                                                     \
		pthread_mutex_unlock(&(b)->mu);                                        \
		if (!ok_)                                                              \
			fail_msg("timed out waiting for %s", #cond);                   \
	} while (0)

static unsigned count_of(const board_t *s, ig_ref_t r)
{
	for (unsigned i = 0; i < s->nrefs; i++)
		if (ig_ref_eq(s->refs[i], r))
			return s->counts[i];
	return 0;
}

/* Caller holds the lock. */
static void record_locked(board_t *b, ig_ref_t self)
{
	unsigned i = 0;
	while (i < b->nrefs && !ig_ref_eq(b->refs[i], self))
		i++;
	if (i == b->nrefs && i < MAXR)
		b->refs[b->nrefs++] = self;
	if (i < MAXR)
		b->counts[i]++;
	b->total++;
	pthread_cond_broadcast(&b->cv);
}

static void record_key(board_t *b, ig_ref_t self, uint64_t key)
{
	pthread_mutex_lock(&b->mu);
	if (key < MAXK) {
		if (!ig_ref_is_none(b->owner[key]) && !ig_ref_eq(b->owner[key], self))
			b->conflicts++;
		b->owner[key] = self;
	}
	record_locked(b, self);
	pthread_mutex_unlock(&b->mu);
}

static void board_reset_counts(board_t *b)
{
	pthread_mutex_lock(&b->mu);
	memset(b->refs, 0, sizeof b->refs);
	memset(b->counts, 0, sizeof b->counts);
	memset(b->owner, 0, sizeof b->owner);
	b->nrefs = b->total = b->conflicts = 0;
	pthread_mutex_unlock(&b->mu);
}

/* ---- routees ------------------------------------------------------------------------ */

typedef struct routee {
	board_t *b;
} routee_t;

static int routee_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	routee_t *r = state;
	r->b = arg;
	pthread_mutex_lock(&r->b->mu);
	r->b->inits++;
	pthread_cond_broadcast(&r->b->cv);
	pthread_mutex_unlock(&r->b->mu);
	return 0;
}

static void routee_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	routee_t *r = state;
	pthread_mutex_lock(&r->b->mu);
	r->b->stops++;
	pthread_cond_broadcast(&r->b->cv);
	pthread_mutex_unlock(&r->b->mu);
}

static void block(ig_ctx_t *ctx, board_t *b)
{
	struct timespec dl = deadline_in(WAIT_NS);
	pthread_mutex_lock(&b->mu);
	b->blocked = true;
	b->blocked_ref = ig_self(ctx);
	pthread_cond_broadcast(&b->cv);
	while (!b->released && pthread_cond_timedwait(&b->cv, &b->mu, &dl) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&b->mu);
}

static void reply_done(ig_ctx_t *ctx, const ig_msg_t *msg)
{
	if (ig_ref_is_none(msg->sender))
		return;
	ig_ref_t self = ig_self(ctx);
	ig_reply(ctx, msg, MSG_DONE, &self, sizeof self);
}

static int routee_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	routee_t *r = state;
	uint64_t key = 0;
	switch (msg->type) {
	case MSG_WORK:
		pthread_mutex_lock(&r->b->mu);
		record_locked(r->b, ig_self(ctx));
		pthread_mutex_unlock(&r->b->mu);
		reply_done(ctx, msg);
		return 0;
	case MSG_KEY:
		if (msg->size == sizeof key)
			memcpy(&key, msg->data, sizeof key);
		record_key(r->b, ig_self(ctx), key);
		reply_done(ctx, msg);
		return 0;
	case MSG_SKEY: {
		char s[16] = {0};
		memcpy(s, msg->data, msg->size < 15 ? msg->size : 15);
		record_key(r->b, ig_self(ctx), strtoull(s + 1, NULL, 10));
		return 0;
	}
	case MSG_BLOCK:
		block(ctx, r->b);
		return 0;
	case MSG_FAIL:
		return IG_EFAILED;
	case MSG_STOP:
		ig_stop_self(ctx);
		return 0;
	default:
		return 0;
	}
}

static const ig_props_t routee_props = {
	.behavior = routee_behavior,
	.state_size = sizeof(routee_t),
	.init = routee_init,
	.post_stop = routee_post_stop,
};

/* ---- the probe: a sender that collects replies, Terminated, dead letters -------------- */

static int probe_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(board_t **)state = arg;
	return 0;
}

static int probe_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	board_t *b = *(board_t **)state;
	ig_ref_t r;
	switch (msg->type) {
	case MSG_WATCH:
		memcpy(&r, msg->data, sizeof r);
		return ig_watch(ctx, r);
	case MSG_DONE:
		memcpy(&r, msg->data, sizeof r);
		pthread_mutex_lock(&b->mu);
		/* the reply's sender is the routee that handled the message */
		if (b->replies < 64 && ig_ref_eq(r, msg->sender))
			b->reply_from[b->replies++] = r;
		break;
	case IG_MSG_TERMINATED: {
		ig_terminated_t t;
		memcpy(&t, msg->data, sizeof t);
		pthread_mutex_lock(&b->mu);
		if (b->nterminated < MAXR)
			b->terminated[b->nterminated++] = t.ref;
		break;
	}
	case IG_MSG_DEAD_LETTER:
		pthread_mutex_lock(&b->mu);
		b->dead_letters++;
		memcpy(&b->last_dead_letter, msg->data, sizeof b->last_dead_letter);
		break;
	default:
		return 0;
	}
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

static const ig_props_t probe_props = {
	.behavior = probe_behavior,
	.state_size = sizeof(board_t *),
	.init = probe_init,
};

static void probe_watch(fixture_t *f, ig_ref_t r)
{
	assert_int_equal(ig_tell(f->probe, MSG_WATCH, &r, sizeof r, IG_NOREF), 0);
}

static bool was_terminated(const board_t *b, ig_ref_t r)
{
	for (unsigned i = 0; i < b->nterminated; i++)
		if (ig_ref_eq(b->terminated[i], r))
			return true;
	return false;
}

/* ---- fixture ------------------------------------------------------------------------- */

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof *f);
	ig_system_config_t cfg = {.name = "router", .threads = 2, .log_level = IG_LOG_ERROR};
	if (!f || ig_system_create(&cfg, &f->sys) != 0)
		return -1;
	f->b = board_new();
	if (ig_system_spawn(f->sys, &probe_props, "probe", f->b, &f->probe) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	/* a test that failed mid-way may have left a routee blocked */
	pthread_mutex_lock(&f->b->mu);
	f->b->released = true;
	pthread_cond_broadcast(&f->b->cv);
	pthread_mutex_unlock(&f->b->mu);
	ig_system_destroy(f->sys);
	board_free(f->b);
	free(f);
	return 0;
}

static ig_ref_t spawn_router(fixture_t *f, ig_router_kind_t kind, unsigned n,
			     ig_route_key_fn key, const ig_supervisor_t *sup)
{
	/* static: the config is borrowed for the router's life */
	static ig_router_config_t cfgs[8];
	static unsigned next;
	ig_router_config_t *cfg = &cfgs[next++ % 8];
	*cfg = (ig_router_config_t){.kind = kind,
				    .routees = n,
				    .routee_props = &routee_props,
				    .routee_arg = f->b,
				    .key = key,
				    .supervisor = sup};
	ig_ref_t r;
	assert_int_equal(ig_router_spawn(f->sys, NULL, cfg, NULL, &r), 0);
	return r;
}

/* Asks through the router; returns the routee that replied. */
static int ask_routee(fixture_t *f, ig_ref_t router, uint32_t type, const void *data,
		      size_t size, ig_duration_t timeout, ig_ref_t *who)
{
	ig_future_t *fut;
	const ig_msg_t *reply;
	int rc = ig_ask(f->sys, router, type, data, size, timeout, &fut);
	if (rc)
		return rc;
	rc = ig_future_wait(fut, WAIT_NS, &reply);
	if (rc == 0) {
		assert_int_equal(reply->type, MSG_DONE);
		assert_int_equal(reply->size, sizeof *who);
		memcpy(who, reply->data, sizeof *who);
		assert_true(ig_ref_eq(*who, reply->sender));
	}
	ig_future_free(fut);
	return rc;
}

static uint64_t key_of(const ig_msg_t *msg)
{
	uint64_t k = 0;
	if (msg->size >= sizeof k)
		memcpy(&k, msg->data, sizeof k);
	return k;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_bad_config(void **state)
{
	fixture_t *f = *state;
	ig_ref_t r;
	ig_router_config_t cfg = {.kind = IG_ROUTER_ROUND_ROBIN, .routees = 0,
				  .routee_props = &routee_props};
	assert_int_equal(ig_router_spawn(f->sys, NULL, &cfg, NULL, &r), IG_EINVAL);
	cfg.routees = 2;
	cfg.routee_props = NULL;
	assert_int_equal(ig_router_spawn(f->sys, NULL, &cfg, NULL, &r), IG_EINVAL);
	cfg.routee_props = &routee_props;
	cfg.kind = (ig_router_kind_t)42;
	assert_int_equal(ig_router_spawn(f->sys, NULL, &cfg, NULL, &r), IG_EINVAL);
	cfg.kind = IG_ROUTER_BROADCAST;
	assert_int_equal(ig_router_spawn(NULL, NULL, &cfg, NULL, &r), IG_EINVAL);
	assert_int_equal(ig_router_spawn(f->sys, NULL, NULL, NULL, &r), IG_EINVAL);
	assert_int_equal(ig_router_spawn(f->sys, NULL, &cfg, "bad/name", &r), IG_EINVAL);
}

static void test_round_robin_exact(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	ig_ref_t router = spawn_router(f, IG_ROUTER_ROUND_ROBIN, 4, NULL, NULL);
	for (int i = 0; i < 40; i++)
		assert_int_equal(ig_tell(router, MSG_WORK, NULL, 0, IG_NOREF), 0);
	WAIT_UNTIL(b, b->total == 40);
	board_t s = snapshot(b);
	assert_int_equal(s.nrefs, 4);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(s.counts[i], 10);
	assert_int_equal(s.inits, 4);
}

/* One routee blocks with FILLERS messages queued behind it; six messages
 * through the router must all go to the other two. That holds however the
 * threads interleave: a routee's load is its queued messages plus one
 * unless idle, and the other two start at 2 at worst (the router's watch
 * still queued before their first turn), so even if neither runs at all
 * they reach at most 2 + 3 < FILLERS + 1. */
enum { FILLERS = 8, ROUTED = 6 };

static void test_smallest_mailbox_prefers_idle(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	ig_ref_t router = spawn_router(f, IG_ROUTER_SMALLEST_MAILBOX, 3, NULL, NULL);
	assert_int_equal(ig_tell(router, MSG_BLOCK, NULL, 0, IG_NOREF), 0);
	WAIT_UNTIL(b, b->blocked);
	ig_ref_t busy = snapshot(b).blocked_ref;
	for (int i = 0; i < FILLERS; i++)
		assert_int_equal(ig_tell(busy, MSG_WORK, NULL, 0, IG_NOREF), 0);
	for (int i = 0; i < ROUTED; i++)
		assert_int_equal(ig_tell(router, MSG_WORK, NULL, 0, IG_NOREF), 0);
	/* the busy routee handles nothing until released, so this only
	 * completes if none of the routed ones went to it */
	WAIT_UNTIL(b, b->total == ROUTED);
	board_t s = snapshot(b);
	assert_int_equal(count_of(&s, busy), 0);
	assert_true(s.nrefs >= 1 && s.nrefs <= 2);

	pthread_mutex_lock(&b->mu);
	b->released = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	WAIT_UNTIL(b, b->total == ROUTED + FILLERS);
	s = snapshot(b);
	assert_int_equal(count_of(&s, busy), FILLERS); /* only those sent to it directly */
}

static void test_consistent_hash_same_key_and_spread(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	ig_ref_t router = spawn_router(f, IG_ROUTER_CONSISTENT_HASH, 4, key_of, NULL);
	enum { KEYS = 500, ROUNDS = 3 };
	for (int round = 0; round < ROUNDS; round++)
		for (uint64_t k = 0; k < KEYS; k++)
			assert_int_equal(ig_tell(router, MSG_KEY, &k, sizeof k, IG_NOREF), 0);
	WAIT_UNTIL(b, b->total == KEYS * ROUNDS);
	board_t s = snapshot(b);
	assert_int_equal(s.conflicts, 0); /* every key always went to one routee */
	assert_int_equal(s.nrefs, 4);
	/* spread: about KEYS/4 keys each; the ring is the same in every run */
	for (unsigned i = 0; i < 4; i++) {
		unsigned owned = 0;
		for (unsigned k = 0; k < KEYS; k++)
			owned += ig_ref_eq(s.owner[k], s.refs[i]);
		assert_in_range(owned, KEYS / 4 / 2, KEYS / 4 * 2);
	}
}

/* Without a key function the payload bytes are hashed. */
static void test_consistent_hash_payload(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	ig_ref_t router = spawn_router(f, IG_ROUTER_CONSISTENT_HASH, 3, NULL, NULL);
	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < 200; k++) {
			char s[16];
			int n = snprintf(s, sizeof s, "k%d", k);
			assert_int_equal(ig_tell(router, MSG_SKEY, s, (size_t)n, IG_NOREF), 0);
		}
	}
	WAIT_UNTIL(b, b->total == 400);
	board_t s = snapshot(b);
	assert_int_equal(s.conflicts, 0);
	assert_int_equal(s.nrefs, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_true(s.counts[i] >= 400 / 3 / 2);
}

/* Removing a routee moves only its own keys, and spreads them. */
static void test_consistent_hash_removal_moves_few(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	enum { KEYS = 400 };
	ig_ref_t router = spawn_router(f, IG_ROUTER_CONSISTENT_HASH, 4, key_of, NULL);
	for (uint64_t k = 0; k < KEYS; k++)
		assert_int_equal(ig_tell(router, MSG_KEY, &k, sizeof k, IG_NOREF), 0);
	WAIT_UNTIL(b, b->total == KEYS);
	board_t before = snapshot(b);
	ig_ref_t victim = before.owner[0];
	probe_watch(f, victim);
	assert_int_equal(ig_stop(victim), 0);
	WAIT_UNTIL(b, was_terminated(b, victim));
	/* The router learns of it by its own Terminated: ask with key 0 until
	 * someone else answers (asks routed to the dead one time out). */
	ig_ref_t who = victim;
	uint64_t k0 = 0;
	for (int tries = 0; tries < 100 && ig_ref_eq(who, victim); tries++) {
		int rc = ask_routee(f, router, MSG_KEY, &k0, sizeof k0, IG_MS(200), &who);
		assert_true(rc == 0 || rc == IG_ETIMEDOUT);
	}
	assert_false(ig_ref_eq(who, victim));

	board_reset_counts(b);
	for (uint64_t k = 0; k < KEYS; k++)
		assert_int_equal(ig_tell(router, MSG_KEY, &k, sizeof k, IG_NOREF), 0);
	WAIT_UNTIL(b, b->total == KEYS);
	board_t after = snapshot(b);
	unsigned moved = 0, heirs = 0;
	ig_ref_t heir[4] = {{0}};
	for (unsigned k = 0; k < KEYS; k++) {
		assert_false(ig_ref_eq(after.owner[k], victim));
		if (!ig_ref_eq(before.owner[k], victim)) {
			assert_true(ig_ref_eq(after.owner[k], before.owner[k]));
			continue;
		}
		moved++;
		unsigned h = 0;
		while (h < heirs && !ig_ref_eq(heir[h], after.owner[k]))
			h++;
		if (h == heirs && heirs < 4)
			heir[heirs++] = after.owner[k];
	}
	assert_true(moved > 0 && moved < KEYS / 2);
	assert_true(heirs >= 2); /* virtual nodes scatter the victim's keys */
}

static void test_broadcast_reaches_all(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	ig_ref_t router = spawn_router(f, IG_ROUTER_BROADCAST, 5, NULL, NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ig_tell(router, MSG_WORK, "abc", 3, IG_NOREF), 0);
	WAIT_UNTIL(b, b->total == 15);
	board_t s = snapshot(b);
	assert_int_equal(s.nrefs, 5);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(s.counts[i], 3);
}

static void count_dtor(void *p)
{
	board_t *b = p;
	pthread_mutex_lock(&b->mu);
	b->dtors++;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* A pointer payload cannot be copied per routee: a dead letter (EINVAL),
 * its destructor run, and no routee sees it. */
static void test_broadcast_pointer_is_dead_letter(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	assert_int_equal(ig_subscribe(f->sys, f->probe, IG_MSG_DEAD_LETTER), 0);
	ig_ref_t router = spawn_router(f, IG_ROUTER_BROADCAST, 3, NULL, NULL);
	assert_int_equal(ig_tell_ptr(router, MSG_WORK, b, sizeof *b, count_dtor, IG_NOREF), 0);
	WAIT_UNTIL(b, b->dead_letters >= 1 && b->dtors == 1);
	board_t s = snapshot(b);
	assert_int_equal(s.last_dead_letter.reason, IG_EINVAL);
	assert_int_equal(s.last_dead_letter.type, MSG_WORK);
	assert_true(ig_ref_eq(s.last_dead_letter.recipient, router));
	/* Same sender, same order: had it been broadcast, it would arrive
	 * before this one. */
	assert_int_equal(ig_tell(router, MSG_WORK, NULL, 0, IG_NOREF), 0);
	WAIT_UNTIL(b, b->total == 3);
	s = snapshot(b);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(s.counts[i], 1);

	/* The same goes for hashing the bytes of a pointer payload. */
	ig_ref_t ch = spawn_router(f, IG_ROUTER_CONSISTENT_HASH, 2, NULL, NULL);
	assert_int_equal(ig_tell_ptr(ch, MSG_WORK, b, sizeof *b, count_dtor, IG_NOREF), 0);
	WAIT_UNTIL(b, b->dtors == 2);
	s = snapshot(b);
	assert_int_equal(s.last_dead_letter.reason, IG_EINVAL);
	assert_int_equal(s.total, 3);
}

static void test_sender_preserved(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	ig_ref_t router = spawn_router(f, IG_ROUTER_ROUND_ROBIN, 3, NULL, NULL);
	/* replies to the probe: six, from all three routees */
	for (int i = 0; i < 6; i++)
		assert_int_equal(ig_tell(router, MSG_WORK, NULL, 0, f->probe), 0);
	WAIT_UNTIL(b, b->replies == 6);
	board_t s = snapshot(b);
	for (unsigned i = 0; i < 6; i++)
		assert_true(ig_ref_eq(s.reply_from[i], s.refs[0]) ||
			    ig_ref_eq(s.reply_from[i], s.refs[1]) ||
			    ig_ref_eq(s.reply_from[i], s.refs[2]));
	assert_int_equal(s.nrefs, 3);
	/* and ask: the temporary actor is the sender the routee replies to */
	ig_ref_t who;
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &who), 0);
	assert_int_equal(count_of(&s, who), 2);
}

static void test_failing_routee_restarted(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	ig_ref_t router = spawn_router(f, IG_ROUTER_ROUND_ROBIN, 2, NULL, NULL);
	ig_ref_t r0, r1, again;
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &r0), 0);
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &r1), 0);
	assert_false(ig_ref_eq(r0, r1));
	assert_int_equal(ig_tell(router, MSG_FAIL, NULL, 0, IG_NOREF), 0); /* to r0 */
	WAIT_UNTIL(b, b->inits == 3);  /* the default supervisor restarted it */
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &again), 0);
	assert_true(ig_ref_eq(again, r1));
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &again), 0);
	assert_true(ig_ref_eq(again, r0)); /* same ref, fresh state, still routed to */
	board_t s = snapshot(b);
	assert_int_equal(s.stops, 1);      /* the restart's post_stop */
}

static ig_directive_t always_stop(int err, void *arg)
{
	(void)err;
	(void)arg;
	return IG_STOP;
}

/* A routee stopped by its supervisor leaves the pool; round-robin then
 * sends everything to the survivor. Two answered asks in a row prove the
 * router has dropped the dead one (it would get every other message). */
static void test_stopped_routee_removed(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	static const ig_supervisor_t stop_sup = {.decider = always_stop};
	ig_ref_t router = spawn_router(f, IG_ROUTER_ROUND_ROBIN, 2, NULL, &stop_sup);
	ig_ref_t r0, r1, who;
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &r0), 0);
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &r1), 0);
	probe_watch(f, r0);
	assert_int_equal(ig_tell(router, MSG_FAIL, NULL, 0, IG_NOREF), 0); /* to r0 */
	WAIT_UNTIL(b, was_terminated(b, r0));
	unsigned in_a_row = 0, tries = 0;
	while (in_a_row < 2 && tries++ < 50) {
		int rc = ask_routee(f, router, MSG_WORK, NULL, 0, IG_MS(200), &who);
		assert_true(rc == 0 || rc == IG_ETIMEDOUT);
		in_a_row = rc == 0 ? in_a_row + 1 : 0;
		if (rc == 0)
			assert_true(ig_ref_eq(who, r1));
	}
	assert_int_equal(in_a_row, 2);
	board_reset_counts(b);
	for (int i = 0; i < 10; i++)
		assert_int_equal(ig_tell(router, MSG_WORK, NULL, 0, IG_NOREF), 0);
	WAIT_UNTIL(b, b->total == 10);
	board_t s = snapshot(b);
	assert_int_equal(count_of(&s, r1), 10);
}

static void test_router_stops_when_no_routees_left(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	ig_ref_t router = spawn_router(f, IG_ROUTER_ROUND_ROBIN, 2, NULL, NULL);
	probe_watch(f, router);
	assert_int_equal(ig_tell(router, MSG_STOP, NULL, 0, IG_NOREF), 0);
	assert_int_equal(ig_tell(router, MSG_STOP, NULL, 0, IG_NOREF), 0);
	WAIT_UNTIL(b, was_terminated(b, router));
	board_t s = snapshot(b);
	assert_int_equal(s.stops, 2);
}

static void test_poison_pill_stops_all(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	ig_ref_t router = spawn_router(f, IG_ROUTER_ROUND_ROBIN, 3, NULL, NULL);
	ig_ref_t r[3];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &r[i]), 0);
		probe_watch(f, r[i]);
	}
	probe_watch(f, router);
	assert_int_equal(ig_poison(router), 0);
	WAIT_UNTIL(b, b->nterminated == 4);
	board_t s = snapshot(b);
	assert_true(was_terminated(&s, router));
	for (int i = 0; i < 3; i++)
		assert_true(was_terminated(&s, r[i]));
	assert_int_equal(s.stops, 3);
}

static int failing_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	(void)state;
	(void)arg;
	return IG_EFAILED;
}

static const ig_props_t unstartable_props = {.behavior = routee_behavior,
					     .init = failing_init};

/* Routees that cannot start leave the pool at once; the router stops. */
static void test_router_stops_when_routees_cannot_start(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	static const ig_router_config_t cfg = {.kind = IG_ROUTER_SMALLEST_MAILBOX,
					       .routees = 3,
					       .routee_props = &unstartable_props};
	ig_ref_t router;
	assert_int_equal(ig_router_spawn(f->sys, NULL, &cfg, "doomed", &router), 0);
	probe_watch(f, router);
	WAIT_UNTIL(b, was_terminated(b, router));
	ig_ref_t none;
	assert_int_equal(ig_lookup(f->sys, "/user/doomed", &none), IG_ENOTFOUND);
}

/* ---- a router spawned by an actor ------------------------------------------------------ */

static ig_router_config_t child_cfg;

static int owner_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	ig_ref_t router;
	int rc = ig_router_spawn(NULL, ctx, &child_cfg, "pool", &router);
	if (rc)
		return rc;
	return ig_reply(ctx, msg, MSG_DONE, &router, sizeof router);
}

static const ig_props_t owner_props = {.behavior = owner_behavior};

/* Under the calling actor; stopping that actor stops the pool. */
static void test_router_under_actor(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	static const ig_supervisor_t restart = {.decider = NULL};
	child_cfg = (ig_router_config_t){.kind = IG_ROUTER_ROUND_ROBIN,
					 .routees = 2,
					 .routee_props = &routee_props,
					 .routee_arg = b,
					 .supervisor = &restart};
	ig_ref_t owner, router, who;
	assert_int_equal(ig_system_spawn(f->sys, &owner_props, "owner", NULL, &owner), 0);
	ig_future_t *fut;
	const ig_msg_t *reply;
	assert_int_equal(ig_ask(f->sys, owner, 1, NULL, 0, WAIT_NS, &fut), 0);
	assert_int_equal(ig_future_wait(fut, WAIT_NS, &reply), 0);
	memcpy(&router, reply->data, sizeof router);
	ig_future_free(fut);
	char path[128];
	assert_int_equal(ig_ref_path(router, path, sizeof path), 0);
	assert_string_equal(path, "/user/owner/pool");
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &who), 0);
	WAIT_UNTIL(b, b->inits == 2);

	probe_watch(f, router);
	assert_int_equal(ig_stop(owner), 0);
	WAIT_UNTIL(b, was_terminated(b, router));
	board_t s = snapshot(b);
	assert_int_equal(s.stops, 2);
}

static ig_directive_t escalate_all(int err, void *arg)
{
	(void)err;
	(void)arg;
	return IG_ESCALATE;
}

/* A router restarted by its parent (a routee's failure escalated) spawns a
 * fresh pool from the same config, which must survive the restart. */
static void test_router_restart_respawns_pool(void **state)
{
	fixture_t *f = *state;
	board_t *b = f->b;
	static const ig_supervisor_t esc = {.decider = escalate_all};
	ig_ref_t router = spawn_router(f, IG_ROUTER_ROUND_ROBIN, 2, NULL, &esc);
	ig_ref_t r0, r1, n0, n1;
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &r0), 0);
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &r1), 0);
	/* r0 fails; the router escalates and /user restarts the router */
	assert_int_equal(ig_tell(router, MSG_FAIL, NULL, 0, IG_NOREF), 0);
	WAIT_UNTIL(b, b->inits == 4 && b->stops == 2);
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &n0), 0);
	assert_int_equal(ask_routee(f, router, MSG_WORK, NULL, 0, WAIT_NS, &n1), 0);
	assert_false(ig_ref_eq(n0, n1));
	assert_false(ig_ref_eq(n0, r0) || ig_ref_eq(n0, r1));
	assert_false(ig_ref_eq(n1, r0) || ig_ref_eq(n1, r1));
}

/* In a deterministic system (calling-thread dispatcher) routing is exactly
 * reproducible: sequential asks go r0, r1, r2, r0, r1, r2. */
static void test_deterministic_round_robin(void **unused)
{
	(void)unused;
	fixture_t f = {.b = board_new()};
	ig_system_config_t cfg = {.deterministic = true, .log_level = IG_LOG_ERROR};
	assert_int_equal(ig_system_create(&cfg, &f.sys), 0);
	ig_ref_t router = spawn_router(&f, IG_ROUTER_ROUND_ROBIN, 3, NULL, NULL);
	ig_ref_t who[6];
	for (int i = 0; i < 6; i++)
		assert_int_equal(ask_routee(&f, router, MSG_WORK, NULL, 0, IG_SEC(5), &who[i]), 0);
	for (int i = 0; i < 3; i++) {
		assert_true(ig_ref_eq(who[i], who[i + 3]));
		assert_false(ig_ref_eq(who[i], who[(i + 1) % 3]));
	}
	assert_int_equal(ig_poison(router), 0);
	ig_system_destroy(f.sys);
	assert_int_equal(f.b->stops, 3);
	board_free(f.b);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_bad_config),
		T(test_round_robin_exact),
		T(test_smallest_mailbox_prefers_idle),
		T(test_consistent_hash_same_key_and_spread),
		T(test_consistent_hash_payload),
		T(test_consistent_hash_removal_moves_few),
		T(test_broadcast_reaches_all),
		T(test_broadcast_pointer_is_dead_letter),
		T(test_sender_preserved),
		T(test_failing_routee_restarted),
		T(test_stopped_routee_removed),
		T(test_router_stops_when_no_routees_left),
		T(test_poison_pill_stops_all),
		T(test_router_stops_when_routees_cannot_start),
		T(test_router_under_actor),
		T(test_router_restart_respawns_pool),
		cmocka_unit_test(test_deterministic_round_robin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
