/* Tests of the testkit (<ingot/testkit.h>): every probe function on a
 * deterministic and on a threaded system, virtual time, death watch,
 * dead-letter and log capture, failure descriptions and determinism.
 * Nothing here sleeps: every wait is an expectation with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <ingot/runtime.h>
#include <ingot/testkit.h>

enum {
	T_PING = 1,
	T_DELAY,   /* int64 delay: reply T_DONE after it */
	T_FIRE,    /* the delayer's timer; payload: who to answer */
	T_DONE,    /* int64: the system clock when sent */
	T_TICK,    /* uint32 index, int64 clock */
	T_ASK,     /* the asker sends this to the probe */
	T_ANSWER,  /* the probe answers it */
	T_GOT,     /* the asker reports the answer */
	T_FAIL,    /* a behavior returns IG_EFAILED */
	T_LOG,     /* the logger logs the payload string */
	T_START,   /* payload: a ref to report to */
	T_CHILD,   /* payload: a child's ref */
	T_CHAT,    /* uint32 pair: sender id, sequence */
};

/* Positive waits end as soon as the message arrives, so they can be long;
 * waits for nothing last their whole timeout, so they are short on a real
 * clock and long (and still instant) on a virtual one. */
#define WAIT IG_SEC(5)
#define QUIET(det) ((det) ? IG_SEC(2) : IG_MS(30))

/* ---- actors ------------------------------------------------------------------- */

static int echo_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	ig_reply(ctx, msg, msg->type, msg->data, msg->size);
	return 0;
}

static const ig_props_t echo_props = {.behavior = echo_behavior};

/* Answers T_DELAY(d) with T_DONE(clock) after d. */
static int delayer_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	if (msg->type == T_DELAY) {
		int64_t d;
		memcpy(&d, msg->data, sizeof d);
		return ig_timer_start(ctx, d, false, T_FIRE, &msg->sender, sizeof msg->sender, NULL);
	}
	if (msg->type == T_FIRE) {
		ig_ref_t to;
		memcpy(&to, msg->data, sizeof to);
		int64_t now = ig_system_now(ig_ctx_system(ctx));
		ig_tell(to, T_DONE, &now, sizeof now, ig_self(ctx));
	}
	return 0;
}

static const ig_props_t delayer_props = {.behavior = delayer_behavior};

/* Starts one-shot timers at the given delays and reports each firing. */
typedef struct timer_spec {
	ig_ref_t report;
	unsigned n;
	ig_duration_t delays[4];
} timer_spec_t;

typedef struct tick {
	uint32_t index;
	int64_t at;
} tick_t;

typedef struct timers_state {
	const timer_spec_t *spec;
} timers_state_t;

static int timers_init(ig_ctx_t *ctx, void *state, void *arg)
{
	timers_state_t *s = state;
	s->spec = arg;
	for (uint32_t i = 0; i < s->spec->n; i++) {
		int rc = ig_timer_start(ctx, s->spec->delays[i], false, T_TICK, &i, sizeof i, NULL);
		if (rc)
			return rc;
	}
	return 0;
}

static int timers_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	timers_state_t *s = state;
	if (msg->type != T_TICK)
		return 0;
	tick_t t = {.at = ig_system_now(ig_ctx_system(ctx))};
	memcpy(&t.index, msg->data, sizeof t.index);
	return ig_tell(s->spec->report, T_TICK, &t, sizeof t, ig_self(ctx));
}

static const ig_props_t timers_props = {
	.behavior = timers_behavior,
	.state_size = sizeof(timers_state_t),
	.init = timers_init,
};

/* T_START(ref): asks ref (T_ASK); reports the answer's payload to it as T_GOT. */
static int asker_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	ig_ref_t *peer = state;
	if (msg->type == T_START) {
		memcpy(peer, msg->data, sizeof *peer);
		return ig_tell(*peer, T_ASK, "?", 1, ig_self(ctx));
	}
	if (msg->type == T_ANSWER)
		return ig_tell(*peer, T_GOT, msg->data, msg->size, ig_self(ctx));
	return 0;
}

static const ig_props_t asker_props = {.behavior = asker_behavior,
				       .state_size = sizeof(ig_ref_t)};

static int failing_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	return msg->type == T_FAIL ? IG_EFAILED : 0;
}

static const ig_props_t failing_props = {.behavior = failing_behavior};

static ig_directive_t always_stop(int err, void *arg)
{
	(void)err;
	(void)arg;
	return IG_STOP;
}

static const ig_supervisor_t stop_supervisor = {.decider = always_stop};

/* T_START(ref): spawns a failing child and sends its ref as T_CHILD. */
static int parent_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	if (msg->type != T_START)
		return 0;
	ig_ref_t to, child;
	memcpy(&to, msg->data, sizeof to);
	int rc = ig_spawn(ctx, &failing_props, "child", NULL, &child);
	if (rc == 0)
		rc = ig_tell(to, T_CHILD, &child, sizeof child, ig_self(ctx));
	return rc;
}

static const ig_props_t parent_props = {.behavior = parent_behavior,
					.supervisor = &stop_supervisor};

static int logger_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	if (msg->type == T_LOG)
		ig_log(ig_ctx_system(ctx), ctx, IG_LOG_WARN, "actor says %.*s", (int)msg->size,
		       (const char *)msg->data);
	return 0;
}

static const ig_props_t logger_props = {.behavior = logger_behavior};

/* ---- fixture ------------------------------------------------------------------ */

typedef struct tk {
	bool det;
	ig_system_t *sys;
	ig_probe_t *probe;
} tk_t;

static tk_t tk_setup(bool det)
{
	tk_t t = {.det = det};
	IG_ASSERT_OK(ig_testkit_system_create(det, &t.sys));
	IG_ASSERT_OK(ig_probe_create(t.sys, &t.probe));
	return t;
}

static void tk_teardown(tk_t *t)
{
	ig_probe_destroy(t->probe);
	assert_int_equal(ig_system_shutdown(t->sys, IG_SEC(10)), 0);
	ig_system_destroy(t->sys);
}

static ig_ref_t spawn(tk_t *t, const ig_props_t *props, void *arg)
{
	ig_ref_t r;
	IG_ASSERT_OK(ig_system_spawn(t->sys, props, NULL, arg, &r));
	return r;
}

static bool contains(const char *s, const char *part)
{
	if (!strstr(s, part)) {
		print_error("\"%s\" does not contain \"%s\"\n", s, part);
		return false;
	}
	return true;
}

/* Each scenario runs once on each kind of system. */
#define BOTH(name)                                                                    \
	static void name##_det(void **s)                                              \
	{                                                                             \
		(void)s;                                                              \
		name(true);                                                           \
	}                                                                             \
	static void name##_threaded(void **s)                                         \
	{                                                                             \
		(void)s;                                                              \
		name(false);                                                          \
	}
#define BOTH_TESTS(name) cmocka_unit_test(name##_det), cmocka_unit_test(name##_threaded)

/* ---- expect_type, expect_msg, expect_match ----------------------------------------- */

static void expect_type(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t echo = spawn(&t, &echo_props, NULL);
	IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, "hello", 5));
	const ig_msg_t *m;
	IG_ASSERT_OK(ig_probe_expect_type(t.probe, T_PING, WAIT, &m));
	assert_int_equal(m->type, T_PING);
	assert_int_equal(m->size, 5);
	assert_memory_equal(m->data, "hello", 5);
	assert_true(ig_ref_eq(m->sender, echo));
	assert_string_equal(ig_probe_last_error(t.probe), "");

	/* Another type arrives: a mismatch, described. */
	IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_DONE, "x", 1));
	assert_int_equal(ig_probe_expect_type(t.probe, T_PING, WAIT, &m), IG_EINVAL);
	assert_true(contains(ig_probe_last_error(t.probe), "expected a message of type 1"));
	assert_true(contains(ig_probe_last_error(t.probe), "got type 4 (1 bytes: 78)"));
	assert_string_equal(ig_testkit_last_error(), ig_probe_last_error(t.probe));

	/* Nothing arrives: a timeout, described. */
	assert_int_equal(ig_probe_expect_type(t.probe, T_PING, QUIET(det), NULL), IG_ETIMEDOUT);
	assert_true(contains(ig_probe_last_error(t.probe), "got nothing"));
	tk_teardown(&t);
}
BOTH(expect_type)

static void expect_msg(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t echo = spawn(&t, &echo_props, NULL);
	uint64_t v = 42, w = 43;
	IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, &v, sizeof v));
	IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, &v, sizeof v));
	IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, NULL, 0));
	IG_ASSERT_OK(ig_probe_expect_msg(t.probe, T_PING, &v, sizeof v, WAIT, NULL));
	assert_int_equal(ig_probe_expect_msg(t.probe, T_PING, &w, sizeof w, WAIT, NULL),
			 IG_EINVAL);
	assert_true(contains(ig_probe_last_error(t.probe), "2b 00 00"));
	assert_true(contains(ig_probe_last_error(t.probe), "got type 1 (8 bytes: 2a 00"));
	const ig_msg_t *m;
	IG_ASSERT_OK(ig_probe_expect_msg(t.probe, T_PING, NULL, 0, WAIT, &m));
	assert_null(m->data);
	tk_teardown(&t);
}
BOTH(expect_msg)

static bool is_even_u32(const ig_msg_t *m, void *arg)
{
	(void)arg;
	uint32_t v;
	if (m->size != sizeof v)
		return false;
	memcpy(&v, m->data, sizeof v);
	return v % 2 == 0;
}

static void expect_match(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t echo = spawn(&t, &echo_props, NULL);
	for (uint32_t v = 2; v <= 4; v++)
		IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, &v, sizeof v));
	const ig_msg_t *m;
	IG_ASSERT_OK(ig_probe_expect_match(t.probe, is_even_u32, NULL, WAIT, &m));
	assert_int_equal(*(const uint32_t *)m->data, 2);
	/* expectMsgPF: the next message (3) decides, and fails. */
	assert_int_equal(ig_probe_expect_match(t.probe, is_even_u32, NULL, WAIT, &m), IG_EINVAL);
	assert_true(contains(ig_probe_last_error(t.probe), "matching the predicate"));
	IG_ASSERT_OK(ig_probe_expect_match(t.probe, is_even_u32, NULL, WAIT, &m));
	assert_int_equal(*(const uint32_t *)m->data, 4);
	assert_int_equal(ig_probe_expect_match(t.probe, NULL, NULL, WAIT, &m), IG_EINVAL);
	tk_teardown(&t);
}
BOTH(expect_match)

/* ---- expect_no_msg ---------------------------------------------------------------- */

static void expect_no_msg(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t echo = spawn(&t, &echo_props, NULL);
	IG_ASSERT_OK(ig_probe_expect_no_msg(t.probe, QUIET(det)));
	IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, "a", 1));
	assert_int_equal(ig_probe_expect_no_msg(t.probe, QUIET(det)), IG_EINVAL);
	assert_true(contains(ig_probe_last_error(t.probe), "expected no message for"));
	assert_true(contains(ig_probe_last_error(t.probe), "got type 1"));
	assert_int_equal(ig_probe_expect_no_msg(t.probe, -1), IG_EINVAL);
	tk_teardown(&t);
}
BOTH(expect_no_msg)

/* On a virtual clock, expect_no_msg lets time pass and timers fire. */
static void expect_no_msg_advances_virtual_time(void **state)
{
	(void)state;
	tk_t t = tk_setup(true);
	ig_ref_t d = spawn(&t, &delayer_props, NULL);
	int64_t delay = IG_SEC(5);
	int64_t t0 = ig_testkit_now(t.sys);
	IG_ASSERT_OK(ig_probe_send(t.probe, d, T_DELAY, &delay, sizeof delay));
	IG_ASSERT_OK(ig_probe_expect_no_msg(t.probe, IG_SEC(4)));
	assert_int_equal(ig_testkit_now(t.sys) - t0, IG_SEC(4));
	const ig_msg_t *m;
	IG_ASSERT_OK(ig_probe_expect_type(t.probe, T_DONE, IG_SEC(2), &m));
	assert_int_equal(*(const int64_t *)m->data - t0, IG_SEC(5));
	assert_int_equal(ig_testkit_now(t.sys) - t0, IG_SEC(5));
	tk_teardown(&t);
}

/* ---- receive_n, fish, pending ------------------------------------------------------ */

static void receive_n(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t echo = spawn(&t, &echo_props, NULL);
	for (uint32_t v = 0; v < 5; v++)
		IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, &v, sizeof v));
	const ig_msg_t *ms[5];
	IG_ASSERT_OK(ig_probe_receive_n(t.probe, 5, WAIT, ms));
	for (uint32_t v = 0; v < 5; v++)
		assert_int_equal(*(const uint32_t *)ms[v]->data, v);

	/* Too few: a timeout that consumes nothing. */
	for (uint32_t v = 20; v < 22; v++)
		IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, &v, sizeof v));
	assert_int_equal(ig_probe_receive_n(t.probe, 3, QUIET(det), ms), IG_ETIMEDOUT);
	assert_true(contains(ig_probe_last_error(t.probe), "expected 3 messages within"));
	IG_ASSERT_OK(ig_probe_receive_n(t.probe, 2, WAIT, ms));
	assert_int_equal(*(const uint32_t *)ms[0]->data, 20);
	assert_int_equal(*(const uint32_t *)ms[1]->data, 21);
	assert_int_equal(ig_probe_receive_n(t.probe, 0, WAIT, ms), IG_EINVAL);
	tk_teardown(&t);
}
BOTH(receive_n)

static bool is_u32(const ig_msg_t *m, void *arg)
{
	return m->size == sizeof(uint32_t) && memcmp(m->data, arg, sizeof(uint32_t)) == 0;
}

static void fish(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t echo = spawn(&t, &echo_props, NULL);
	for (uint32_t v = 1; v <= 4; v++)
		IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, &v, sizeof v));
	uint32_t want = 3;
	const ig_msg_t *m;
	IG_ASSERT_OK(ig_probe_fish(t.probe, is_u32, &want, WAIT, &m));
	assert_int_equal(*(const uint32_t *)m->data, 3);
	IG_ASSERT_OK(ig_probe_expect_msg(t.probe, T_PING, &(uint32_t){4}, 4, WAIT, NULL));
	/* Nothing matching: a timeout that says what was skipped. */
	IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, &(uint32_t){7}, 4));
	assert_int_equal(ig_probe_fish(t.probe, is_u32, &want, QUIET(det), &m), IG_ETIMEDOUT);
	assert_true(contains(ig_probe_last_error(t.probe), "skipped 1, the last: type 1"));
	tk_teardown(&t);
}
BOTH(fish)

static void pending_and_received(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t echo = spawn(&t, &echo_props, NULL);
	assert_int_equal(ig_probe_pending(t.probe), 0);
	for (uint32_t v = 0; v < 3; v++)
		IG_ASSERT_OK(ig_probe_send(t.probe, echo, T_PING, &v, sizeof v));
	IG_ASSERT_OK(ig_probe_receive_n(t.probe, 1, WAIT, NULL));
	if (det) {
		/* Counting catches a deterministic system up by itself. */
		assert_int_equal(ig_probe_pending(t.probe), 2);
	} else {
		/* A threaded one gets there in its own time: wait for it. */
		IG_ASSERT_OK(ig_probe_receive_n(t.probe, 2, WAIT, NULL));
		assert_int_equal(ig_probe_pending(t.probe), 0);
	}
	assert_int_equal(ig_probe_received(t.probe), 3);
	tk_teardown(&t);
}
BOTH(pending_and_received)

/* ---- send and reply ---------------------------------------------------------------- */

static void send_and_reply(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t asker = spawn(&t, &asker_props, NULL);
	assert_int_equal(ig_probe_reply(t.probe, NULL, T_ANSWER, NULL, 0), IG_ESTATE);
	ig_ref_t me = ig_probe_ref(t.probe);
	IG_ASSERT_OK(ig_tell(asker, T_START, &me, sizeof me, IG_NOREF));
	const ig_msg_t *q;
	IG_ASSERT_OK(ig_probe_expect_msg(t.probe, T_ASK, "?", 1, WAIT, &q));
	assert_true(ig_ref_eq(q->sender, asker));
	IG_ASSERT_OK(ig_probe_reply(t.probe, NULL, T_ANSWER, "42", 2));
	IG_ASSERT_OK(ig_probe_expect_msg(t.probe, T_GOT, "42", 2, WAIT, NULL));
	/* Replying to a message taken earlier, by its envelope. */
	IG_ASSERT_OK(ig_tell(asker, T_START, &me, sizeof me, IG_NOREF));
	IG_ASSERT_OK(ig_probe_expect_type(t.probe, T_ASK, WAIT, &q));
	IG_ASSERT_OK(ig_probe_reply(t.probe, q, T_ANSWER, "43", 2));
	IG_ASSERT_OK(ig_probe_expect_msg(t.probe, T_GOT, "43", 2, WAIT, NULL));
	/* A message without a sender cannot be answered. */
	IG_ASSERT_OK(ig_tell(me, T_PING, NULL, 0, IG_NOREF));
	IG_ASSERT_OK(ig_probe_expect_type(t.probe, T_PING, WAIT, &q));
	assert_int_equal(ig_probe_reply(t.probe, q, T_ANSWER, NULL, 0), IG_ENOACTOR);
	tk_teardown(&t);
}
BOTH(send_and_reply)

/* ---- death watch -------------------------------------------------------------------- */

static void watch_terminated(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t a = spawn(&t, &echo_props, NULL);
	IG_ASSERT_OK(ig_probe_watch(t.probe, a));
	IG_ASSERT_OK(ig_stop(a));
	int reason = -1;
	IG_ASSERT_OK(ig_probe_expect_terminated(t.probe, a, WAIT, &reason));
	assert_int_equal(reason, 0);

	/* Watching the dead: Terminated at once. */
	IG_ASSERT_OK(ig_probe_watch(t.probe, a));
	IG_ASSERT_OK(ig_probe_expect_terminated(t.probe, a, WAIT, NULL));

	/* A poison pill, and a mismatch when something else comes first. */
	ig_ref_t b = spawn(&t, &echo_props, NULL);
	IG_ASSERT_OK(ig_probe_watch(t.probe, b));
	IG_ASSERT_OK(ig_probe_send(t.probe, b, T_PING, NULL, 0));
	IG_ASSERT_OK(ig_poison(b));
	assert_int_equal(ig_probe_expect_terminated(t.probe, b, WAIT, NULL), IG_EINVAL);
	assert_true(contains(ig_probe_last_error(t.probe), "expected Terminated(ref"));
	IG_ASSERT_OK(ig_probe_expect_terminated(t.probe, b, WAIT, NULL));

	/* Unwatched: no Terminated. */
	ig_ref_t c = spawn(&t, &echo_props, NULL);
	IG_ASSERT_OK(ig_probe_watch(t.probe, c));
	IG_ASSERT_OK(ig_probe_unwatch(t.probe, c));
	assert_int_equal(ig_probe_unwatch(t.probe, c), IG_ENOTFOUND);
	IG_ASSERT_OK(ig_stop(c));
	IG_ASSERT_OK(ig_probe_expect_no_msg(t.probe, QUIET(det)));

	assert_int_equal(ig_probe_watch(t.probe, IG_NOREF), IG_EINVAL);
	assert_int_equal(ig_probe_watch(t.probe, ig_probe_ref(t.probe)), IG_EINVAL);
	tk_teardown(&t);
}
BOTH(watch_terminated)

/* A child stopped by its supervisor: watchers see the failure as reason. */
static void watch_failure_reason(bool det)
{
	tk_t t = tk_setup(det);
	ig_ref_t parent = spawn(&t, &parent_props, NULL);
	ig_ref_t me = ig_probe_ref(t.probe);
	IG_ASSERT_OK(ig_tell(parent, T_START, &me, sizeof me, IG_NOREF));
	const ig_msg_t *m;
	IG_ASSERT_OK(ig_probe_expect_type(t.probe, T_CHILD, WAIT, &m));
	ig_ref_t child;
	memcpy(&child, m->data, sizeof child);
	IG_ASSERT_OK(ig_probe_watch(t.probe, child));
	IG_ASSERT_OK(ig_tell(child, T_FAIL, NULL, 0, IG_NOREF));
	int reason = 0;
	IG_ASSERT_OK(ig_probe_expect_terminated(t.probe, child, WAIT, &reason));
	assert_int_equal(reason, IG_EFAILED);
	tk_teardown(&t);
}
BOTH(watch_failure_reason)

/* ---- capture: dead letters and log lines --------------------------------------------- */

static void dead_letters(bool det)
{
	tk_t t = tk_setup(det);
	ig_probe_t *cap;
	IG_ASSERT_OK(ig_testkit_capture_create(t.sys, IG_MSG_DEAD_LETTER, &cap));
	ig_ref_t a = spawn(&t, &echo_props, NULL);
	IG_ASSERT_OK(ig_probe_watch(t.probe, a));
	IG_ASSERT_OK(ig_stop(a));
	IG_ASSERT_OK(ig_probe_expect_terminated(t.probe, a, WAIT, NULL));
	assert_int_equal(ig_probe_send(t.probe, a, 42, "late", 4), IG_ENOACTOR);
	ig_dead_letter_t dl;
	IG_ASSERT_OK(ig_probe_expect_dead_letter(cap, a, 42, WAIT, &dl));
	assert_true(ig_ref_eq(dl.recipient, a));
	assert_true(ig_ref_eq(dl.sender, ig_probe_ref(t.probe)));
	assert_int_equal(dl.type, 42);
	assert_int_equal(dl.size, 4);
	assert_int_equal(dl.reason, IG_ENOACTOR);
	assert_int_equal(ig_probe_received(cap), 1);

	/* Fishing skips other dead letters. */
	assert_int_equal(ig_tell(a, 7, NULL, 0, IG_NOREF), IG_ENOACTOR);
	assert_int_equal(ig_tell(a, 8, NULL, 0, IG_NOREF), IG_ENOACTOR);
	IG_ASSERT_OK(ig_probe_expect_dead_letter(cap, IG_NOREF, 8, WAIT, &dl));
	assert_int_equal(dl.type, 8);
	assert_int_equal(ig_probe_expect_dead_letter(cap, IG_NOREF, IG_TESTKIT_ANY_TYPE,
						     QUIET(det), NULL),
			 IG_ETIMEDOUT);
	ig_probe_destroy(cap);
	tk_teardown(&t);
}
BOTH(dead_letters)

static void log_lines(bool det)
{
	tk_t t = tk_setup(det);
	ig_probe_t *cap;
	IG_ASSERT_OK(ig_testkit_capture_create(t.sys, IG_MSG_LOG, &cap));
	ig_log(t.sys, NULL, IG_LOG_INFO, "hello %d", 42);
	ig_log_event_t ev;
	IG_ASSERT_OK(ig_probe_expect_log(cap, IG_LOG_INFO, "hello 42", WAIT, &ev));
	assert_int_equal(ev.level, IG_LOG_INFO);
	assert_true(ig_ref_is_none(ev.source));

	/* From an actor: the source is the actor; lower levels are skipped. */
	ig_ref_t logger = spawn(&t, &logger_props, NULL);
	ig_log(t.sys, NULL, IG_LOG_DEBUG, "noise");
	IG_ASSERT_OK(ig_tell(logger, T_LOG, "hi", 2, IG_NOREF));
	IG_ASSERT_OK(ig_probe_expect_log(cap, IG_LOG_WARN, NULL, WAIT, &ev));
	assert_string_equal(ev.text, "actor says hi");
	assert_true(ig_ref_eq(ev.source, logger));

	ig_log(t.sys, NULL, IG_LOG_ERROR, "boom");
	assert_int_equal(ig_probe_expect_log(cap, IG_LOG_ERROR, "bang", QUIET(det), NULL),
			 IG_ETIMEDOUT);
	assert_true(contains(ig_probe_last_error(cap), "skipped 1, the last: Log(error, \"boom\")"));
	ig_probe_destroy(cap);
	tk_teardown(&t);
}
BOTH(log_lines)

/* ---- virtual time --------------------------------------------------------------------- */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Timers of 30 s, 10 s and 20 s fire in deadline order, each at its
 * deadline on the virtual clock, in (much) less than a real second. */
static void virtual_timers_fire_in_order(void **state)
{
	(void)state;
	int64_t real0 = mono_ns();
	tk_t t = tk_setup(true);
	timer_spec_t spec = {.report = ig_probe_ref(t.probe),
			     .n = 3,
			     .delays = {IG_SEC(30), IG_SEC(10), IG_SEC(20)}};
	int64_t t0 = ig_testkit_now(t.sys);
	spawn(&t, &timers_props, &spec);
	IG_ASSERT_OK(ig_testkit_run_until_idle(t.sys)); /* started; no time passed */
	assert_int_equal(ig_testkit_now(t.sys), t0);
	IG_ASSERT_OK(ig_testkit_advance(t.sys, IG_SEC(29)));
	assert_int_equal(ig_probe_pending(t.probe), 2);
	assert_int_equal(ig_testkit_now(t.sys) - t0, IG_SEC(29));
	IG_ASSERT_OK(ig_testkit_advance(t.sys, IG_SEC(1)));
	const ig_msg_t *ms[3];
	IG_ASSERT_OK(ig_probe_receive_n(t.probe, 3, 0, ms));
	const uint32_t order[] = {1, 2, 0};
	for (int i = 0; i < 3; i++) {
		const tick_t *k = ms[i]->data;
		assert_int_equal(k->index, order[i]);
		assert_int_equal(k->at - t0, spec.delays[order[i]]);
	}
	tk_teardown(&t);
	assert_true(mono_ns() - real0 < IG_SEC(1));
}

/* Waiting with a long virtual timeout fires the timers it needs. */
static void virtual_expect_waits_for_timer(void **state)
{
	(void)state;
	tk_t t = tk_setup(true);
	ig_ref_t d = spawn(&t, &delayer_props, NULL);
	int64_t delay = IG_SEC(30), t0 = ig_testkit_now(t.sys);
	IG_ASSERT_OK(ig_probe_send(t.probe, d, T_DELAY, &delay, sizeof delay));
	/* 29 s is not enough: the clock stops at the deadline. */
	assert_int_equal(ig_probe_expect_type(t.probe, T_DONE, IG_SEC(29), NULL), IG_ETIMEDOUT);
	assert_true(contains(ig_probe_last_error(t.probe), "within 29 s (virtual), got nothing"));
	assert_int_equal(ig_testkit_now(t.sys) - t0, IG_SEC(29));
	IG_ASSERT_OK(ig_probe_expect_type(t.probe, T_DONE, IG_SEC(5), NULL));
	assert_int_equal(ig_testkit_now(t.sys) - t0, IG_SEC(30));
	tk_teardown(&t);
}

/* Asks run on the same clock: a probe answers one, another times out. */
static void virtual_ask(void **state)
{
	(void)state;
	tk_t t = tk_setup(true);
	ig_future_t *f;
	IG_ASSERT_OK(ig_ask(t.sys, ig_probe_ref(t.probe), T_ASK, "?", 1, IG_SEC(5), &f));
	IG_ASSERT_OK(ig_probe_expect_msg(t.probe, T_ASK, "?", 1, IG_SEC(1), NULL));
	IG_ASSERT_OK(ig_probe_reply(t.probe, NULL, T_ANSWER, "!", 1));
	const ig_msg_t *r;
	IG_ASSERT_OK(ig_future_wait(f, IG_SEC(1), &r));
	assert_int_equal(r->type, T_ANSWER);
	assert_true(ig_ref_eq(r->sender, ig_probe_ref(t.probe)));
	ig_future_free(f);

	ig_ref_t silent = spawn(&t, &failing_props, NULL);
	int64_t t0 = ig_testkit_now(t.sys);
	IG_ASSERT_OK(ig_ask(t.sys, silent, T_PING, NULL, 0, IG_SEC(5), &f));
	assert_int_equal(ig_future_wait(f, IG_SEC(10), &r), IG_ETIMEDOUT);
	assert_int_equal(ig_testkit_now(t.sys) - t0, IG_SEC(5));
	ig_future_free(f);
	tk_teardown(&t);
}

/* A threaded system has a real clock: it cannot be advanced. */
static void threaded_time_is_real(void **state)
{
	(void)state;
	tk_t t = tk_setup(false);
	assert_int_equal(ig_testkit_advance(t.sys, IG_SEC(1)), IG_ESTATE);
	assert_int_equal(ig_testkit_run_until_idle(t.sys), IG_ESTATE);
	int64_t a = ig_testkit_now(t.sys);
	assert_true(a > 0);
	assert_true(ig_testkit_now(t.sys) >= a);
	ig_ref_t d = spawn(&t, &delayer_props, NULL);
	int64_t delay = IG_MS(20);
	IG_ASSERT_OK(ig_probe_send(t.probe, d, T_DELAY, &delay, sizeof delay));
	const ig_msg_t *m;
	IG_ASSERT_OK(ig_probe_expect_type(t.probe, T_DONE, WAIT, &m));
	assert_true(*(const int64_t *)m->data - a >= IG_MS(20));
	tk_teardown(&t);
}

/* ---- determinism ------------------------------------------------------------------------ */

typedef struct chatter_arg {
	ig_ref_t probe;
	uint32_t id;
} chatter_arg_t;

typedef struct chatter {
	const chatter_arg_t *arg;
	uint32_t ticks;
} chatter_t;

static int chatter_init(ig_ctx_t *ctx, void *state, void *arg)
{
	chatter_t *s = state;
	s->arg = arg;
	int rc = ig_timer_start(ctx, IG_MS(250), true, T_TICK, NULL, 0, NULL);
	if (rc == 0)
		rc = ig_timer_start(ctx, IG_MS(100) * (s->arg->id + 1), false, T_FIRE, NULL, 0,
				    NULL);
	for (uint32_t i = 0; rc == 0 && i < 10; i++) {
		uint32_t v[2] = {s->arg->id, i};
		rc = ig_tell(s->arg->probe, T_CHAT, v, sizeof v, ig_self(ctx));
	}
	return rc;
}

static int chatter_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	chatter_t *s = state;
	uint32_t v[2] = {s->arg->id, msg->type == T_TICK ? 100 + s->ticks++ : 1000};
	return ig_tell(s->arg->probe, T_CHAT, v, sizeof v, ig_self(ctx));
}

static const ig_props_t chatter_props = {
	.behavior = chatter_behavior,
	.state_size = sizeof(chatter_t),
	.init = chatter_init,
};

#define CHATTERS 4
#define CHATS (CHATTERS * (10 + 4 + 1)) /* greetings, 4 ticks in 1 s, one fire */

/* Four actors greet the probe, tick and fire timers for one virtual second;
 * returns the order in which the probe saw it all. */
static void chat_scenario(uint32_t out[CHATS][2])
{
	tk_t t = tk_setup(true);
	chatter_arg_t args[CHATTERS];
	for (uint32_t i = 0; i < CHATTERS; i++) {
		args[i] = (chatter_arg_t){.probe = ig_probe_ref(t.probe), .id = i};
		spawn(&t, &chatter_props, &args[i]);
	}
	IG_ASSERT_OK(ig_testkit_advance(t.sys, IG_SEC(1)));
	const ig_msg_t *ms[CHATS];
	IG_ASSERT_OK(ig_probe_receive_n(t.probe, CHATS, 0, ms));
	for (size_t i = 0; i < CHATS; i++)
		memcpy(out[i], ms[i]->data, sizeof out[i]);
	/* After the copy: the next receiving call releases ms. */
	IG_ASSERT_OK(ig_probe_expect_no_msg(t.probe, 0));
	tk_teardown(&t);
}

static void deterministic_order_repeats(void **state)
{
	(void)state;
	uint32_t a[CHATS][2], b[CHATS][2];
	chat_scenario(a);
	chat_scenario(b);
	assert_memory_equal(a, b, sizeof a);
	/* And it is a real interleaving: each actor's own order is kept. */
	uint32_t next_greeting[CHATTERS] = {0};
	for (size_t i = 0; i < CHATS; i++)
		if (a[i][1] < 100)
			assert_int_equal(a[i][1], next_greeting[a[i][0]]++);
	for (uint32_t i = 0; i < CHATTERS; i++)
		assert_int_equal(next_greeting[i], 10);
}

/* ---- the examples of docs/testkit.md, verbatim but for includes and main ---- */

enum { GREET = 1, GREETING };

/* Answers GREET(name) with GREETING("hello, <name>"). */
static int greeter(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	if (msg->type != GREET)
		return 0;
	char text[64];
	int n = snprintf(text, sizeof text, "hello, %.*s", (int)msg->size,
			 (const char *)msg->data);
	return ig_reply(ctx, msg, GREETING, text, (size_t)n);
}

static const ig_props_t greeter_props = {.behavior = greeter};

static void greeter_answers(void **state)
{
	(void)state;
	ig_system_t *sys;
	ig_probe_t *probe;
	ig_ref_t g;
	IG_ASSERT_OK(ig_testkit_system_create(true, &sys));
	IG_ASSERT_OK(ig_probe_create(sys, &probe));
	IG_ASSERT_OK(ig_system_spawn(sys, &greeter_props, "greeter", NULL, &g));

	IG_ASSERT_OK(ig_probe_send(probe, g, GREET, "ada", 3));
	const ig_msg_t *reply;
	IG_ASSERT_OK(ig_probe_expect_type(probe, GREETING, IG_SEC(1), &reply));
	assert_int_equal(reply->size, 10);
	assert_memory_equal(reply->data, "hello, ada", 10);
	assert_true(ig_ref_eq(reply->sender, g));
	/* And nothing else: a second of virtual time passes, instantly. */
	IG_ASSERT_OK(ig_probe_expect_no_msg(probe, IG_SEC(1)));

	ig_probe_destroy(probe);
	ig_system_destroy(sys);
}

enum { TOUCH = 1, IDLE };

typedef struct session {
	ig_timer_t idle;
} session_t;

static int session_arm(ig_ctx_t *ctx, session_t *s)
{
	return ig_timer_start(ctx, IG_SEC(30), false, IDLE, NULL, 0, &s->idle);
}

static int session_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)arg;
	return session_arm(ctx, state);
}

/* Any message but IDLE restarts the 30 s idle timer; IDLE ends the session. */
static int session(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	session_t *s = state;
	if (msg->type == IDLE) {
		ig_stop_self(ctx);
		return 0;
	}
	ig_timer_cancel(ctx, s->idle);
	return session_arm(ctx, s);
}

static const ig_props_t session_props = {
	.behavior = session,
	.state_size = sizeof(session_t),
	.init = session_init,
};

static void session_ends_after_30s_idle(void **state)
{
	(void)state;
	ig_system_t *sys;
	ig_probe_t *probe;
	ig_ref_t s;
	IG_ASSERT_OK(ig_testkit_system_create(true, &sys));
	IG_ASSERT_OK(ig_probe_create(sys, &probe));
	int64_t t0 = ig_testkit_now(sys);
	IG_ASSERT_OK(ig_system_spawn(sys, &session_props, NULL, NULL, &s));
	IG_ASSERT_OK(ig_probe_watch(probe, s)); /* runs the session's init: t0 */

	IG_ASSERT_OK(ig_probe_expect_no_msg(probe, IG_SEC(20)));  /* alive at 20 s */
	IG_ASSERT_OK(ig_probe_send(probe, s, TOUCH, NULL, 0));    /* idle until 50 s */
	IG_ASSERT_OK(ig_probe_expect_no_msg(probe, IG_SEC(29)));  /* alive at 49 s */
	IG_ASSERT_OK(ig_probe_expect_terminated(probe, s, IG_SEC(5), NULL));
	assert_int_equal(ig_testkit_now(sys) - t0, IG_SEC(50));   /* to the ns */

	ig_probe_destroy(probe);
	ig_system_destroy(sys);
}

enum { HELLO = 1, HELLO_BACK };

/* Answers HELLO(name) with HELLO_BACK("hello, <name>") and logs it. */
static int polite(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	if (msg->type != HELLO)
		return 0;
	char text[64];
	int n = snprintf(text, sizeof text, "hello, %.*s", (int)msg->size,
			 (const char *)msg->data);
	ig_log(ig_ctx_system(ctx), ctx, IG_LOG_INFO, "greeted %.*s", (int)msg->size,
	       (const char *)msg->data);
	return ig_reply(ctx, msg, HELLO_BACK, text, (size_t)n);
}

static const ig_props_t polite_props = {.behavior = polite};

static void polite_on_threads(void **state)
{
	(void)state;
	ig_system_t *sys;
	ig_probe_t *probe, *dead, *logs;
	ig_ref_t g;
	IG_ASSERT_OK(ig_testkit_system_create(false, &sys));
	IG_ASSERT_OK(ig_probe_create(sys, &probe));
	IG_ASSERT_OK(ig_testkit_capture_create(sys, IG_MSG_DEAD_LETTER, &dead));
	IG_ASSERT_OK(ig_testkit_capture_create(sys, IG_MSG_LOG, &logs));
	IG_ASSERT_OK(ig_system_spawn(sys, &polite_props, "polite", NULL, &g));

	/* Real time now: generous deadlines cost nothing when things work. */
	IG_ASSERT_OK(ig_probe_send(probe, g, HELLO, "bob", 3));
	IG_ASSERT_OK(ig_probe_expect_msg(probe, HELLO_BACK, "hello, bob", 10, IG_SEC(5), NULL));
	ig_log_event_t ev;
	IG_ASSERT_OK(ig_probe_expect_log(logs, IG_LOG_INFO, "greeted bob", IG_SEC(5), &ev));
	assert_true(ig_ref_eq(ev.source, g));

	/* Stopped, then written to: a dead letter. */
	IG_ASSERT_OK(ig_probe_watch(probe, g));
	IG_ASSERT_OK(ig_stop(g));
	IG_ASSERT_OK(ig_probe_expect_terminated(probe, g, IG_SEC(5), NULL));
	IG_ASSERT_RC(ig_probe_send(probe, g, HELLO, "eve", 3), IG_ENOACTOR);
	ig_dead_letter_t dl;
	IG_ASSERT_OK(ig_probe_expect_dead_letter(dead, g, HELLO, IG_SEC(5), &dl));
	assert_true(ig_ref_eq(dl.sender, ig_probe_ref(probe)));
	assert_int_equal(dl.reason, IG_ENOACTOR);

	ig_probe_destroy(logs);
	ig_probe_destroy(dead);
	ig_probe_destroy(probe);
	ig_system_destroy(sys);
}

/* ---- a probe outlives its system ------------------------------------------------ */

static void probe_outlives_system(bool det)
{
	ig_system_t *sys;
	ig_probe_t *probe, *cap;
	IG_ASSERT_OK(ig_testkit_system_create(det, &sys));
	IG_ASSERT_OK(ig_probe_create(sys, &probe));
	IG_ASSERT_OK(ig_testkit_capture_create(sys, IG_MSG_LOG, &cap));
	ig_ref_t echo;
	IG_ASSERT_OK(ig_system_spawn(sys, &echo_props, NULL, NULL, &echo));
	for (uint32_t v = 0; v < 3; v++)
		IG_ASSERT_OK(ig_probe_send(probe, echo, T_PING, &v, sizeof v));
	IG_ASSERT_OK(ig_probe_receive_n(probe, 1, WAIT, NULL)); /* one held, two queued */
	ig_log(sys, NULL, IG_LOG_INFO, "queued at the capture");
	ig_system_destroy(sys);
	/* The sanitizers check that these touch nothing of the system's and
	 * leak nothing of the probes'. */
	ig_probe_destroy(cap);
	ig_probe_destroy(probe);
}
BOTH(probe_outlives_system)

/* ---- assertion macros and argument checks ------------------------------------------------ */

static void assertion_macros(void **state)
{
	(void)state;
	tk_t t = tk_setup(true);
	IG_ASSERT_RC(ig_probe_expect_type(t.probe, T_PING, IG_MS(1), NULL), IG_ETIMEDOUT);
	assert_true(contains(ig_testkit_last_error(), "expected a message of type 1"));
	ig_testkit_clear_error();
	assert_string_equal(ig_testkit_last_error(), "");
	IG_ASSERT_RC(ig_probe_expect_type(t.probe, T_PING, -1, NULL), IG_EINVAL);
	IG_ASSERT_RC(ig_testkit_advance(t.sys, -1), IG_EINVAL);
	IG_ASSERT_RC(ig_probe_create(NULL, &t.probe), IG_EINVAL);
	assert_int_equal(ig_probe_ref(NULL).h, 0);
	ig_probe_destroy(NULL);
	tk_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH_TESTS(expect_type),
		BOTH_TESTS(expect_msg),
		BOTH_TESTS(expect_match),
		BOTH_TESTS(expect_no_msg),
		cmocka_unit_test(expect_no_msg_advances_virtual_time),
		BOTH_TESTS(receive_n),
		BOTH_TESTS(fish),
		BOTH_TESTS(pending_and_received),
		BOTH_TESTS(send_and_reply),
		BOTH_TESTS(watch_terminated),
		BOTH_TESTS(watch_failure_reason),
		BOTH_TESTS(dead_letters),
		BOTH_TESTS(log_lines),
		cmocka_unit_test(virtual_timers_fire_in_order),
		cmocka_unit_test(virtual_expect_waits_for_timer),
		cmocka_unit_test(virtual_ask),
		cmocka_unit_test(threaded_time_is_real),
		cmocka_unit_test(deterministic_order_repeats),
		cmocka_unit_test(assertion_macros),
		BOTH_TESTS(probe_outlives_system),
		cmocka_unit_test(greeter_answers),
		cmocka_unit_test(session_ends_after_30s_idle),
		cmocka_unit_test(polite_on_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
