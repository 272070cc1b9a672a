/* Stress tests of the runtime's message path (mailboxes, dispatchers,
 * spawn and stop): millions of sequence-numbered messages from many sender
 * actors to many receivers on both cores, with nothing lost, nothing
 * duplicated and per-sender order kept; the same with plain threads sending
 * alongside the actors; and spawn/stop churn of short-lived actors while
 * messages flow, after which the live-actor count is back where it was.
 *
 * Flow control keeps memory bounded: a sender has at most 2 * WINDOW
 * messages in flight to each receiver, and receivers ack every WINDOW.
 * Under ASan or TSan the totals are scaled down to keep the binary within
 * about a minute. Waits are latches with deadlines.
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
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ingot/runtime.h>

#include "test_util.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#if defined(UNDER_TSAN)
#define PER_PAIR 500        /* 64 x 16 x 500 = 512k messages */
#define CHURN 30000
#define THREAD_CHURN 5000
#elif defined(UNDER_ASAN)
#define PER_PAIR 2000       /* 2.05 million messages */
#define CHURN 100000
#define THREAD_CHURN 10000
#else
#define PER_PAIR 3000       /* 3.07 million messages */
#define CHURN 100000
#define THREAD_CHURN 20000
#endif

#define NSEND 64
#define NRECV 16
#define NEXT 4              /* external sender threads */
#define NSRC (NSEND + NEXT)
#define WINDOW 64
#define WAIT IG_SEC(120)

/* ---- the world -------------------------------------------------------------------------- */

enum {
	T_GO = 1,  /* senders: start */
	T_DATA,    /* data_t */
	T_ACK,     /* ack_t: receiver -> sender */
	T_CHURN,   /* churner: uint32 n children to spawn and retire */
	T_WORK,    /* ephemeral: reply T_DONE and stop */
	T_DONE,
};

typedef struct data {
	uint32_t src;  /* sender index: actors 0..NSEND-1, threads NSEND.. */
	uint32_t dst;  /* receiver index */
	int64_t seq;   /* 1, 2, ... per (src, dst) */
} data_t;

typedef struct ack {
	uint32_t dst;
	int64_t seq;
} ack_t;

/* Shared with the actors; set up before any message flows. */
static struct world {
	int nsend;                 /* actor senders in this run */
	int next;                  /* thread senders in this run */
	int64_t per_pair;          /* messages from each actor sender to each receiver */
	int64_t per_pair_ext;      /* from each thread sender to each receiver */
	ig_ref_t senders[NSEND];
	ig_ref_t receivers[NRECV];
	latch_t receivers_done;    /* +1 per receiver that got everything */
	_Atomic long errors;       /* order, sender or duplicate violations */
	_Atomic long wrong_sender;
	_Atomic long acks;
	long acks_expected;
	latch_t acks_done;         /* +1 when the last ack reached its sender */
	/* Threads that ran senders and receivers (both cores busy?). */
	pthread_mutex_t seen_mu;
	pthread_t seen[8];
	int nseen;
	/* Per-receiver final state, written when done. */
	int64_t final_last[NRECV][NSRC];
	int64_t final_count[NRECV];
} W;

static void world_reset(int nsend, int next, int64_t per_pair, int64_t per_pair_ext)
{
	memset(&W, 0, sizeof W);
	W.nsend = nsend;
	W.next = next;
	W.per_pair = per_pair;
	W.per_pair_ext = per_pair_ext;
	latch_init(&W.receivers_done);
	W.acks_expected = (long)nsend * NRECV * (per_pair / WINDOW);
	latch_init(&W.acks_done);
	pthread_mutex_init(&W.seen_mu, NULL);
}

static void note_thread(void)
{
	pthread_t me = pthread_self();
	pthread_mutex_lock(&W.seen_mu);
	bool known = false;
	for (int i = 0; i < W.nseen; i++)
		known |= pthread_equal(W.seen[i], me);
	if (!known && W.nseen < 8)
		W.seen[W.nseen++] = me;
	pthread_mutex_unlock(&W.seen_mu);
}

/* ---- receivers ------------------------------------------------------------------------- */

typedef struct rstate {
	uint32_t index;
	int64_t last[NSRC];
	int64_t count;
	int64_t expected;
} rstate_t;

static int receiver_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	rstate_t *s = state;
	s->index = (uint32_t)(uintptr_t)arg;
	s->expected = W.nsend * W.per_pair + W.next * W.per_pair_ext;
	return 0;
}

static int receiver_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	rstate_t *s = state;
	if (msg->type != T_DATA || msg->size != sizeof(data_t)) {
		atomic_fetch_add(&W.errors, 1);
		return 0;
	}
	data_t d;
	memcpy(&d, msg->data, sizeof d);
	if (d.src >= NSRC || d.dst != s->index) {
		atomic_fetch_add(&W.errors, 1);
		return 0;
	}
	bool from_actor = d.src < NSEND;
	ig_ref_t want = from_actor ? W.senders[d.src] : IG_NOREF;
	if (!ig_ref_eq(msg->sender, want))
		atomic_fetch_add(&W.wrong_sender, 1);
	if (d.seq != s->last[d.src] + 1) {
		if (atomic_fetch_add(&W.errors, 1) < 5)
			fprintf(stderr, "receiver %u: from %u got seq %lld after %lld\n", s->index,
				d.src, (long long)d.seq, (long long)s->last[d.src]);
	}
	s->last[d.src] = d.seq;
	s->count++;
	if ((s->count & 1023) == 1)
		note_thread();
	if (from_actor && d.seq % WINDOW == 0) {
		ack_t a = {.dst = s->index, .seq = d.seq};
		ig_reply(ctx, msg, T_ACK, &a, sizeof a);
	}
	if (s->count == s->expected) {
		memcpy(W.final_last[s->index], s->last, sizeof s->last);
		W.final_count[s->index] = s->count;
		latch_add(&W.receivers_done, 1);
	}
	return 0;
}

static const ig_props_t receiver_props = {
	.behavior = receiver_behavior,
	.state_size = sizeof(rstate_t),
	.init = receiver_init,
};

/* ---- senders --------------------------------------------------------------------------------- */

typedef struct sstate {
	uint32_t index;
	int64_t next[NRECV]; /* next seq to send to each receiver */
} sstate_t;

static int sender_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	sstate_t *s = state;
	s->index = (uint32_t)(uintptr_t)arg;
	for (int r = 0; r < NRECV; r++)
		s->next[r] = 1;
	return 0;
}

/* Sends to receiver r up to sequence number `upto` (and per_pair). */
static int send_upto(ig_ctx_t *ctx, sstate_t *s, uint32_t r, int64_t upto)
{
	if (upto > W.per_pair)
		upto = W.per_pair;
	for (; s->next[r] <= upto; s->next[r]++) {
		data_t d = {.src = s->index, .dst = r, .seq = s->next[r]};
		int rc = ig_tell(W.receivers[r], T_DATA, &d, sizeof d, ig_self(ctx));
		if (rc)
			return rc;
	}
	return 0;
}

static int sender_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	sstate_t *s = state;
	if (msg->type == T_GO) {
		for (uint32_t r = 0; r < NRECV; r++) {
			int rc = send_upto(ctx, s, r, 2 * WINDOW);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (msg->type == T_ACK) {
		ack_t a;
		memcpy(&a, msg->data, sizeof a);
		if (atomic_fetch_add(&W.acks, 1) + 1 == W.acks_expected)
			latch_add(&W.acks_done, 1);
		if ((a.seq / WINDOW) % 16 == 1)
			note_thread();
		return send_upto(ctx, s, a.dst, a.seq + 2 * WINDOW);
	}
	atomic_fetch_add(&W.errors, 1);
	return 0;
}

static const ig_props_t sender_props = {
	.behavior = sender_behavior,
	.state_size = sizeof(sstate_t),
	.init = sender_init,
};

/* External senders: plain threads, no flow control (bounded totals). */
static void *external_sender(void *arg)
{
	uint32_t src = (uint32_t)(uintptr_t)arg;
	for (int64_t seq = 1; seq <= W.per_pair_ext; seq++) {
		for (uint32_t r = 0; r < NRECV; r++) {
			data_t d = {.src = src, .dst = r, .seq = seq};
			if (ig_tell(W.receivers[r], T_DATA, &d, sizeof d, IG_NOREF) != 0)
				atomic_fetch_add(&W.errors, 1);
		}
	}
	return NULL;
}

/* ---- churn: short-lived actors ------------------------------------------------------------- */

static struct churn {
	_Atomic long inits, post_stops, finis, done;
	latch_t finished;   /* +1 when the churner retired all its children */
	latch_t thread_done;/* +1 per T_DONE for the thread churn */
} C;

static int eph_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	(void)state;
	(void)arg;
	atomic_fetch_add_explicit(&C.inits, 1, memory_order_relaxed);
	return 0;
}

static void eph_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	(void)state;
	atomic_fetch_add_explicit(&C.post_stops, 1, memory_order_relaxed);
}

static void eph_fini(void *state)
{
	(void)state;
	atomic_fetch_add_explicit(&C.finis, 1, memory_order_relaxed);
}

static int eph_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	if (msg->type == T_WORK) {
		ig_reply(ctx, msg, T_DONE, NULL, 0);
		ig_stop_self(ctx);
	}
	return 0;
}

static const ig_props_t eph_props = {
	.behavior = eph_behavior,
	.state_size = 16,
	.init = eph_init,
	.fini = eph_fini,
	.post_stop = eph_post_stop,
};

#define CHURN_BATCH 64

typedef struct churner {
	uint32_t target, spawned, done;
} churner_t;

static int churn_batch(ig_ctx_t *ctx, churner_t *c)
{
	for (int k = 0; k < CHURN_BATCH && c->spawned < c->target; k++) {
		ig_ref_t child;
		int rc = ig_spawn(ctx, &eph_props, NULL, NULL, &child);
		if (rc)
			return rc;
		c->spawned++;
		rc = ig_tell(child, T_WORK, NULL, 0, ig_self(ctx));
		if (rc)
			return rc;
	}
	return 0;
}

static int churner_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	churner_t *c = state;
	if (msg->type == T_CHURN) {
		memcpy(&c->target, msg->data, sizeof c->target);
		/* Two batches in flight. */
		int rc = churn_batch(ctx, c);
		return rc ? rc : churn_batch(ctx, c);
	}
	if (msg->type == T_DONE) {
		c->done++;
		if (c->done % 1024 == 1)
			note_thread();
		if (c->done == c->target) {
			latch_add(&C.finished, 1);
			return 0;
		}
		if (c->done % CHURN_BATCH == 0)
			return churn_batch(ctx, c);
	}
	return 0;
}

static const ig_props_t churner_props = {.behavior = churner_behavior,
					 .state_size = sizeof(churner_t)};

static int collector_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	if (msg->type == T_DONE)
		latch_add(&C.thread_done, 1);
	return 0;
}

static const ig_props_t collector_props = {.behavior = collector_behavior};

typedef struct thread_churn_arg {
	ig_system_t *sys;
	ig_ref_t collector;
	int n;
	int errors;
} thread_churn_arg_t;

/* Top-level actors spawned from a plain thread: half are retired by their
 * one message (they answer the collector), a quarter are poisoned and a
 * quarter stopped from here. */
static bool answers(int i)
{
	return i % 4 == 0 || i % 4 == 3;
}

static void *thread_churn(void *p)
{
	thread_churn_arg_t *a = p;
	for (int i = 0; i < a->n; i++) {
		ig_ref_t r;
		if (ig_system_spawn(a->sys, &eph_props, NULL, NULL, &r) != 0) {
			a->errors++;
			continue;
		}
		int rc = answers(i) ? ig_tell(r, T_WORK, NULL, 0, a->collector)
			 : i % 4 == 1 ? ig_poison(r) : ig_stop(r);
		if (rc)
			a->errors++;
	}
	return NULL;
}

/* ---- fixtures and helpers --------------------------------------------------------------------- */

static ig_system_t *g_sys;

static int setup(void **unused)
{
	(void)unused;
	ig_system_config_t cfg = {.name = "stress", .threads = 2, .log_level = IG_LOG_OFF};
	return ig_system_create(&cfg, &g_sys);
}

static int teardown(void **unused)
{
	(void)unused;
	ig_system_destroy(g_sys);
	g_sys = NULL;
	return 0;
}

static void spawn_flow(void)
{
	for (int r = 0; r < NRECV; r++)
		assert_int_equal(ig_system_spawn(g_sys, &receiver_props, NULL, (void *)(uintptr_t)r,
						 &W.receivers[r]),
				 0);
	for (int s = 0; s < W.nsend; s++)
		assert_int_equal(ig_system_spawn(g_sys, &sender_props, NULL, (void *)(uintptr_t)s,
						 &W.senders[s]),
				 0);
}

static void start_flow(pthread_t *ext)
{
	for (int s = 0; s < W.nsend; s++)
		assert_int_equal(ig_tell(W.senders[s], T_GO, NULL, 0, IG_NOREF), 0);
	for (int e = 0; e < W.next; e++)
		assert_int_equal(pthread_create(&ext[e], NULL, external_sender,
						(void *)(uintptr_t)(NSEND + e)),
				 0);
}

static void check_flow(pthread_t *ext, int64_t t0)
{
	for (int e = 0; e < W.next; e++)
		pthread_join(ext[e], NULL);
	bool all = latch_wait(&W.receivers_done, NRECV, WAIT);
	double secs = (mono_ns() - t0) / 1e9;
	int64_t total = 0;
	for (int r = 0; r < NRECV; r++)
		total += W.final_count[r];
	int64_t want_per_recv = W.nsend * W.per_pair + W.next * W.per_pair_ext;
	printf("# %lld messages (%d actor senders, %d thread senders, %d receivers) in %.2f s: "
	       "%.2f M msg/s\n",
	       (long long)total, W.nsend, W.next, NRECV, secs, total / secs / 1e6);
	assert_true(all);
	assert_int_equal(atomic_load(&W.errors), 0);
	assert_int_equal(atomic_load(&W.wrong_sender), 0);
	assert_int_equal(total, want_per_recv * NRECV);
	for (int r = 0; r < NRECV; r++) {
		assert_int_equal(W.final_count[r], want_per_recv);
		for (int s = 0; s < W.nsend; s++)
			assert_int_equal(W.final_last[r][s], W.per_pair);
		for (int e = 0; e < W.next; e++)
			assert_int_equal(W.final_last[r][NSEND + e], W.per_pair_ext);
	}
	assert_true(latch_wait(&W.acks_done, W.acks_expected ? 1 : 0, WAIT));
	assert_int_equal(atomic_load(&W.acks), W.acks_expected);
	assert_int_equal(ig_system_dead_letters(g_sys), 0);
}

/* Both dispatcher threads did a share of the work. */
static void check_both_workers_ran(void)
{
	pthread_mutex_lock(&W.seen_mu);
	int n = W.nseen;
	pthread_mutex_unlock(&W.seen_mu);
	assert_true(n >= 2);
}

/* Reclaim follows an RCU grace period and has no event to wait on, so this
 * polls the count with a deadline (short timed waits, not a fixed sleep). */
static bool wait_actor_count(uint64_t want, ig_duration_t timeout)
{
	int64_t deadline = mono_ns() + timeout;
	latch_t never;
	latch_init(&never);
	while (ig_system_actor_count(g_sys) != want) {
		if (mono_ns() > deadline)
			return false;
		latch_wait(&never, 1, IG_MS(2));
	}
	return true;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_millions_of_messages_64_senders_16_receivers_none_lost_duplicated_or_reordered(
	void **unused)
{
	(void)unused;
	world_reset(NSEND, 0, PER_PAIR, 0);
	spawn_flow();
	pthread_t ext[NEXT];
	int64_t t0 = mono_ns();
	start_flow(ext);
	check_flow(ext, t0);
	check_both_workers_ran();
}

static void test_thread_senders_alongside_actor_senders_none_lost_duplicated_or_reordered(
	void **unused)
{
	(void)unused;
	world_reset(NSEND / 2, NEXT, PER_PAIR / 2, PER_PAIR * 2);
	spawn_flow();
	pthread_t ext[NEXT];
	int64_t t0 = mono_ns();
	start_flow(ext);
	check_flow(ext, t0);
	check_both_workers_ran();
}

static void test_spawn_stop_churn_while_messages_flow_returns_actor_count_to_baseline(
	void **unused)
{
	(void)unused;
	memset(&C, 0, sizeof C);
	latch_init(&C.finished);
	latch_init(&C.thread_done);
	world_reset(NSEND / 4, 1, PER_PAIR / 2, PER_PAIR / 2);
	spawn_flow();
	ig_ref_t churner, collector;
	assert_int_equal(ig_system_spawn(g_sys, &churner_props, "churner", NULL, &churner), 0);
	assert_int_equal(ig_system_spawn(g_sys, &collector_props, "collector", NULL, &collector),
			 0);
	uint64_t baseline = ig_system_actor_count(g_sys);

	int64_t t0 = mono_ns();
	pthread_t ext[NEXT], churn_thread;
	start_flow(ext);
	uint32_t n = CHURN;
	assert_int_equal(ig_tell(churner, T_CHURN, &n, sizeof n, IG_NOREF), 0);
	static thread_churn_arg_t ta;
	ta = (thread_churn_arg_t){.sys = g_sys, .collector = collector, .n = THREAD_CHURN};
	assert_int_equal(pthread_create(&churn_thread, NULL, thread_churn, &ta), 0);

	check_flow(ext, t0);
	pthread_join(churn_thread, NULL);
	assert_int_equal(ta.errors, 0);
	assert_true(latch_wait(&C.finished, 1, WAIT));
	long answering = 0;
	for (int i = 0; i < THREAD_CHURN; i++)
		answering += answers(i);
	assert_true(latch_wait(&C.thread_done, answering, WAIT));
	bool back = wait_actor_count(baseline, WAIT);
	printf("# churn: %d child + %d top-level actors in %.2f s; live actors %llu "
	       "(baseline %llu)\n",
	       CHURN, THREAD_CHURN, (mono_ns() - t0) / 1e9,
	       (unsigned long long)ig_system_actor_count(g_sys), (unsigned long long)baseline);
	assert_true(back);
	long total = CHURN + THREAD_CHURN;
	assert_int_equal(atomic_load(&C.inits), total);
	assert_int_equal(atomic_load(&C.post_stops), total);
	assert_int_equal(atomic_load(&C.finis), total);
	assert_int_equal(ig_system_dead_letters(g_sys), 0);
	check_both_workers_ran();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_millions_of_messages_64_senders_16_receivers_none_lost_duplicated_or_reordered,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_thread_senders_alongside_actor_senders_none_lost_duplicated_or_reordered,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_spawn_stop_churn_while_messages_flow_returns_actor_count_to_baseline,
			setup, teardown),
	};
	return cmocka_run_group_tests_name("stress", tests, NULL, NULL);
}
