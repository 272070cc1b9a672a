/* Tests of ask and futures (runtime/ask.c): reply, a pointer payload moved
 * into the future, the ask deadline (IG_ETIMEDOUT) against a shorter wait
 * (IG_EAGAIN), poll, on_complete before and after completion, asking a dead
 * actor, freeing a pending future (the late reply becomes a dead letter),
 * and thousands of concurrent asks from several threads.
 *
 * Waits are futures with deadlines or latches (condition variables with
 * deadlines); deterministic tests run virtual time through ig_future_wait.
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

#define WAIT IG_SEC(10)

/* ---- actors ----------------------------------------------------------------------- */

enum {
	T_ECHO = 1,   /* reply T_ECHOED with the int64 payload + 1 */
	T_ECHOED,
	T_HOLD,       /* remember the sender; no reply yet */
	T_RELEASE,    /* int64: reply T_ECHOED(value) to the held sender */
	T_RELEASE_PTR,/* reply to the held sender with an ig_tell_ptr payload */
	T_PTR,        /* reply with an ig_tell_ptr payload at once */
	T_SILENT,     /* never answered */
	T_NOTE,       /* dead-letter listener: ig_dead_letter_t */
	T_BLOCK,      /* block on g_gate (counting g_blocked) */
	T_MARK,       /* count g_marked */
};

static latch_t g_blocked, g_gate, g_marked;

typedef struct boxed {
	int64_t magic;
	char text[100]; /* bigger than an inline payload */
} boxed_t;

static _Atomic int boxed_freed;
static latch_t boxed_latch;

static void boxed_free(void *p)
{
	atomic_fetch_add(&boxed_freed, 1);
	free(p);
	latch_add(&boxed_latch, 1);
}

static boxed_t *boxed_new(int64_t magic)
{
	boxed_t *b = calloc(1, sizeof *b);
	b->magic = magic;
	snprintf(b->text, sizeof b->text, "boxed %lld", (long long)magic);
	return b;
}

typedef struct holder {
	ig_ref_t held;
} holder_t;

static int server_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	holder_t *h = state;
	switch (msg->type) {
	case T_ECHO: {
		int64_t v;
		memcpy(&v, msg->data, sizeof v);
		v++;
		ig_reply(ctx, msg, T_ECHOED, &v, sizeof v);
		return 0;
	}
	case T_HOLD:
		h->held = msg->sender;
		return 0;
	case T_RELEASE:
		ig_tell(h->held, T_ECHOED, msg->data, msg->size, ig_self(ctx));
		return 0;
	case T_RELEASE_PTR: {
		boxed_t *b = boxed_new(77);
		ig_tell_ptr(h->held, T_ECHOED, b, sizeof *b, boxed_free, ig_self(ctx));
		return 0;
	}
	case T_MARK:
		latch_add(&g_marked, 1);
		return 0;
	case T_BLOCK:
		latch_add(&g_blocked, 1);
		latch_wait(&g_gate, 1, IG_SEC(5));
		return 0;
	case T_PTR: {
		boxed_t *b = boxed_new(42);
		ig_tell_ptr(msg->sender, T_ECHOED, b, sizeof *b, boxed_free, ig_self(ctx));
		return 0;
	}
	default:
		return 0;
	}
}

static const ig_props_t server_props = {.behavior = server_behavior,
					.state_size = sizeof(holder_t)};

/* Records dead letters published on the event stream. */
#define DL_MAX 256

typedef struct dl_arg {
	pthread_mutex_t mu;
	ig_dead_letter_t all[DL_MAX];
	int n;
	latch_t got;
} dl_arg_t;

static int dl_init(ig_ctx_t *ctx, void *state, void *arg)
{
	*(dl_arg_t **)state = arg;
	return ig_subscribe(ig_ctx_system(ctx), ig_self(ctx), IG_MSG_DEAD_LETTER);
}

static int dl_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	dl_arg_t *a = *(dl_arg_t **)state;
	if (msg->type != IG_MSG_DEAD_LETTER || msg->size != sizeof(ig_dead_letter_t))
		return 0;
	pthread_mutex_lock(&a->mu);
	if (a->n < DL_MAX)
		memcpy(&a->all[a->n], msg->data, sizeof(ig_dead_letter_t));
	a->n++;
	pthread_mutex_unlock(&a->mu);
	latch_add(&a->got, 1);
	return 0;
}

static const ig_props_t dl_props = {.behavior = dl_behavior,
				    .state_size = sizeof(dl_arg_t *),
				    .init = dl_init};

static ig_system_t *g_sys;
static ig_ref_t g_server;

/* Waits for a dead letter of this type (and recipient, unless IG_NOREF). */
static bool wait_dead_letter(dl_arg_t *a, ig_ref_t to, uint32_t type, ig_dead_letter_t *out)
{
	for (long seen = 0;;) {
		pthread_mutex_lock(&a->mu);
		int n = a->n < DL_MAX ? a->n : DL_MAX;
		for (int i = 0; i < n; i++) {
			ig_dead_letter_t *d = &a->all[i];
			if (d->type == type && (ig_ref_is_none(to) || ig_ref_eq(d->recipient, to))) {
				*out = *d;
				pthread_mutex_unlock(&a->mu);
				return true;
			}
		}
		seen = a->n;
		pthread_mutex_unlock(&a->mu);
		if (!latch_wait(&a->got, seen + 1, WAIT))
			return false;
	}
}

static void dl_listen(dl_arg_t *a)
{
	memset(a, 0, sizeof *a);
	pthread_mutex_init(&a->mu, NULL);
	latch_init(&a->got);
	ig_ref_t listener;
	assert_int_equal(ig_system_spawn(g_sys, &dl_props, NULL, a, &listener), 0);
}

/* A watcher: latches when its target's Terminated arrives. */
typedef struct watch_arg {
	ig_ref_t target;
	latch_t registered, terminated;
} watch_arg_t;

static int watcher_init(ig_ctx_t *ctx, void *state, void *arg)
{
	watch_arg_t *a = arg;
	*(watch_arg_t **)state = a;
	int rc = ig_watch(ctx, a->target);
	latch_add(&a->registered, 1);
	return rc;
}

static int watcher_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	if (msg->type == IG_MSG_TERMINATED)
		latch_add(&(*(watch_arg_t **)state)->terminated, 1);
	return 0;
}

static const ig_props_t watcher_props = {.behavior = watcher_behavior,
					 .state_size = sizeof(watch_arg_t *),
					 .init = watcher_init};

/* ---- fixtures ----------------------------------------------------------------------- */

static int setup_threaded(void **unused)
{
	(void)unused;
	ig_system_config_t cfg = {.name = "ask", .threads = 2, .log_level = IG_LOG_OFF};
	int rc = ig_system_create(&cfg, &g_sys);
	if (rc == 0)
		rc = ig_system_spawn(g_sys, &server_props, "server", NULL, &g_server);
	return rc;
}

static int setup_deterministic(void **unused)
{
	(void)unused;
	ig_system_config_t cfg = {.name = "askdet", .deterministic = true,
				  .log_level = IG_LOG_OFF};
	int rc = ig_system_create(&cfg, &g_sys);
	if (rc == 0)
		rc = ig_system_spawn(g_sys, &server_props, "server", NULL, &g_server);
	return rc;
}

static int teardown(void **unused)
{
	(void)unused;
	ig_system_destroy(g_sys);
	g_sys = NULL;
	return 0;
}

static int64_t reply_i64(const ig_msg_t *r)
{
	assert_non_null(r);
	assert_int_equal(r->type, T_ECHOED);
	assert_int_equal(r->size, sizeof(int64_t));
	int64_t v;
	memcpy(&v, r->data, sizeof v);
	return v;
}

/* ---- reply ------------------------------------------------------------------------------ */

static void test_ask_gets_the_reply_with_the_replier_as_sender(void **unused)
{
	(void)unused;
	ig_future_t *f;
	int64_t v = 41;
	assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, &v, sizeof v, WAIT, &f), 0);
	const ig_msg_t *r = NULL;
	assert_int_equal(ig_future_wait(f, WAIT, &r), 0);
	assert_int_equal(reply_i64(r), 42);
	assert_true(ig_ref_eq(r->sender, g_server));
	/* A second wait and a poll give the same reply. */
	const ig_msg_t *r2 = NULL;
	assert_int_equal(ig_future_wait(f, 0, &r2), 0);
	assert_ptr_equal(r2, r);
	assert_int_equal(ig_future_poll(f, &r2), 0);
	assert_int_equal(reply_i64(r2), 42);
	ig_future_free(f);
}

static void test_ask_rejects_bad_arguments(void **unused)
{
	(void)unused;
	ig_future_t *f = NULL;
	assert_int_equal(ig_ask(NULL, g_server, T_ECHO, NULL, 0, WAIT, &f), IG_EINVAL);
	assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, NULL, 0, -1, &f), IG_EINVAL);
	assert_int_equal(ig_ask(g_sys, g_server, IG_MSG_TERMINATED, NULL, 0, WAIT, &f),
			 IG_EINVAL);
	assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, NULL, 8, WAIT, &f), IG_EINVAL);
	assert_null(f);
	assert_int_equal(ig_future_wait(NULL, 0, NULL), IG_EINVAL);
	assert_int_equal(ig_future_poll(NULL, NULL), IG_EINVAL);
	ig_future_free(NULL);
}

static void test_reply_with_tell_ptr_moves_the_pointer_into_the_future(void **unused)
{
	(void)unused;
	atomic_store(&boxed_freed, 0);
	latch_init(&boxed_latch);
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, g_server, T_PTR, NULL, 0, WAIT, &f), 0);
	const ig_msg_t *r = NULL;
	assert_int_equal(ig_future_wait(f, WAIT, &r), 0);
	assert_int_equal(r->type, T_ECHOED);
	assert_int_equal(r->size, sizeof(boxed_t));
	const boxed_t *b = r->data;
	assert_int_equal(b->magic, 42);
	assert_string_equal(b->text, "boxed 42");
	/* Still owned by the future: not freed until the future is (then
	 * by whoever drops the last reference: maybe the temporary actor). */
	assert_int_equal(atomic_load(&boxed_freed), 0);
	ig_future_free(f);
	assert_true(latch_wait(&boxed_latch, 1, WAIT));
	assert_int_equal(atomic_load(&boxed_freed), 1);
}

/* ---- deadlines ---------------------------------------------------------------------------- */

static void test_ask_without_reply_times_out_with_etimedout(void **unused)
{
	(void)unused;
	ig_future_t *f;
	int64_t t0 = mono_ns();
	assert_int_equal(ig_ask(g_sys, g_server, T_SILENT, NULL, 0, IG_MS(30), &f), 0);
	const ig_msg_t *r = NULL;
	assert_int_equal(ig_future_wait(f, WAIT, &r), IG_ETIMEDOUT);
	assert_null(r);
	assert_true(mono_ns() - t0 >= IG_MS(30));
	assert_int_equal(ig_future_poll(f, &r), IG_ETIMEDOUT);
	assert_int_equal(ig_future_wait(f, 0, &r), IG_ETIMEDOUT);
	ig_future_free(f);
}

static void test_wait_shorter_than_the_ask_gives_eagain_then_a_later_wait_succeeds(
	void **unused)
{
	(void)unused;
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, g_server, T_HOLD, NULL, 0, WAIT, &f), 0);
	const ig_msg_t *r = NULL;
	int64_t t0 = mono_ns();
	assert_int_equal(ig_future_wait(f, IG_MS(20), &r), IG_EAGAIN);
	assert_true(mono_ns() - t0 >= IG_MS(20));
	assert_null(r);
	assert_int_equal(ig_future_poll(f, &r), IG_EAGAIN);
	int64_t v = 7;
	assert_int_equal(ig_tell(g_server, T_RELEASE, &v, sizeof v, IG_NOREF), 0);
	assert_int_equal(ig_future_wait(f, WAIT, &r), 0);
	assert_int_equal(reply_i64(r), 7);
	ig_future_free(f);
}

static void test_poll_is_eagain_while_pending_and_the_reply_after(void **unused)
{
	(void)unused;
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, g_server, T_HOLD, NULL, 0, WAIT, &f), 0);
	const ig_msg_t *r = NULL;
	assert_int_equal(ig_future_poll(f, &r), IG_EAGAIN);
	assert_null(r);
	int64_t v = 99;
	assert_int_equal(ig_tell(g_server, T_RELEASE, &v, sizeof v, IG_NOREF), 0);
	assert_int_equal(ig_future_wait(f, WAIT, NULL), 0);
	assert_int_equal(ig_future_poll(f, &r), 0);
	assert_int_equal(reply_i64(r), 99);
	ig_future_free(f);
}

/* ---- on_complete --------------------------------------------------------------------------- */

typedef struct cb_rec {
	_Atomic int calls;
	int err;
	int64_t value;
	ig_future_t *f;
	pthread_t thread;
	latch_t done;
} cb_rec_t;

static void on_done(ig_future_t *f, int err, const ig_msg_t *reply, void *arg)
{
	cb_rec_t *c = arg;
	c->f = f;
	c->err = err;
	c->value = -1;
	if (reply && reply->size == sizeof(int64_t))
		memcpy(&c->value, reply->data, sizeof c->value);
	if (err)
		c->value = reply ? -2 : -3; /* reply must be NULL on failure */
	c->thread = pthread_self();
	atomic_fetch_add(&c->calls, 1);
	latch_add(&c->done, 1);
}

static void cb_rec_init(cb_rec_t *c)
{
	memset(c, 0, sizeof *c);
	latch_init(&c->done);
}

static void test_on_complete_registered_before_completion_runs_once_on_completion(void **unused)
{
	(void)unused;
	static cb_rec_t c;
	cb_rec_init(&c);
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, g_server, T_HOLD, NULL, 0, WAIT, &f), 0);
	assert_int_equal(ig_future_on_complete(f, on_done, &c), 0);
	assert_int_equal(ig_future_on_complete(f, on_done, &c), IG_EEXIST);
	assert_int_equal(atomic_load(&c.calls), 0);
	int64_t v = 5;
	assert_int_equal(ig_tell(g_server, T_RELEASE, &v, sizeof v, IG_NOREF), 0);
	assert_true(latch_wait(&c.done, 1, WAIT));
	assert_int_equal(c.err, 0);
	assert_int_equal(c.value, 5);
	assert_ptr_equal(c.f, f);
	assert_false(pthread_equal(c.thread, pthread_self())); /* the completing thread */
	/* Nothing calls it again: not a wait, not a late second reply. */
	assert_int_equal(ig_future_wait(f, WAIT, NULL), 0);
	assert_int_equal(ig_tell(g_server, T_RELEASE, &v, sizeof v, IG_NOREF), 0);
	assert_int_equal(ig_future_on_complete(f, on_done, &c), IG_EEXIST);
	ig_future_free(f);
	assert_int_equal(atomic_load(&c.calls), 1);
}

static void test_on_complete_registered_after_completion_runs_now_on_this_thread(void **unused)
{
	(void)unused;
	static cb_rec_t c;
	cb_rec_init(&c);
	ig_future_t *f;
	int64_t v = 10;
	assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, &v, sizeof v, WAIT, &f), 0);
	assert_int_equal(ig_future_wait(f, WAIT, NULL), 0);
	assert_int_equal(ig_future_on_complete(f, on_done, &c), 0);
	assert_int_equal(atomic_load(&c.calls), 1); /* before on_complete returned */
	assert_true(pthread_equal(c.thread, pthread_self()));
	assert_int_equal(c.err, 0);
	assert_int_equal(c.value, 11);
	assert_int_equal(ig_future_on_complete(f, on_done, &c), IG_EEXIST);
	assert_int_equal(atomic_load(&c.calls), 1);
	assert_int_equal(ig_future_on_complete(f, NULL, &c), IG_EINVAL);
	ig_future_free(f);
	assert_int_equal(atomic_load(&c.calls), 1);
}

static void test_on_complete_of_a_timed_out_ask_gets_etimedout_and_no_reply(void **unused)
{
	(void)unused;
	static cb_rec_t c;
	cb_rec_init(&c);
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, g_server, T_SILENT, NULL, 0, IG_MS(10), &f), 0);
	assert_int_equal(ig_future_on_complete(f, on_done, &c), 0);
	assert_true(latch_wait(&c.done, 1, WAIT));
	assert_int_equal(c.err, IG_ETIMEDOUT);
	assert_int_equal(c.value, -3);
	ig_future_free(f);
	assert_int_equal(atomic_load(&c.calls), 1);
}

/* ---- dead actors and freed futures --------------------------------------------------------- */

/* A ref whose actor has stopped (Terminated seen: its slot is released). */
static ig_ref_t dead_ref(void)
{
	static watch_arg_t w;
	memset(&w, 0, sizeof w);
	latch_init(&w.registered);
	latch_init(&w.terminated);
	ig_ref_t wr;
	assert_int_equal(ig_system_spawn(g_sys, &server_props, NULL, NULL, &w.target), 0);
	assert_int_equal(ig_system_spawn(g_sys, &watcher_props, NULL, &w, &wr), 0);
	assert_true(latch_wait(&w.registered, 1, WAIT));
	assert_int_equal(ig_stop(w.target), 0);
	assert_true(latch_wait(&w.terminated, 1, WAIT));
	return w.target;
}

static void test_ask_of_a_dead_actor_times_out_at_the_deadline_and_makes_a_dead_letter(
	void **unused)
{
	(void)unused;
	static dl_arg_t dl;
	dl_listen(&dl);
	ig_ref_t dead = dead_ref();
	assert_int_equal(ig_tell(dead, T_SILENT, NULL, 0, IG_NOREF), IG_ENOACTOR);
	uint64_t before = ig_system_dead_letters(g_sys);

	ig_future_t *f;
	int64_t t0 = mono_ns();
	assert_int_equal(ig_ask(g_sys, dead, T_ECHO, &(int64_t){1}, 8, IG_MS(40), &f), 0);
	assert_true(ig_system_dead_letters(g_sys) >= before + 1);
	assert_int_equal(ig_future_wait(f, WAIT, NULL), IG_ETIMEDOUT);
	assert_true(mono_ns() - t0 >= IG_MS(40));
	ig_future_free(f);
	/* The event stream saw it, addressed to the dead ref. */
	ig_dead_letter_t d;
	assert_true(wait_dead_letter(&dl, dead, T_ECHO, &d));
	assert_int_equal(d.reason, IG_ENOACTOR);
	assert_int_equal(d.size, 8);
}

static void test_ask_of_a_dead_actor_in_virtual_time_fails_exactly_at_the_deadline(
	void **unused)
{
	(void)unused;
	ig_ref_t r;
	assert_int_equal(ig_system_spawn(g_sys, &server_props, NULL, NULL, &r), 0);
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, r, T_ECHO, &(int64_t){1}, 8, WAIT, &f), 0);
	assert_int_equal(ig_future_wait(f, IG_FOREVER, NULL), 0); /* it ran */
	ig_future_free(f);
	assert_int_equal(ig_stop(r), 0);
	assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, &(int64_t){1}, 8, WAIT, &f), 0);
	assert_int_equal(ig_future_wait(f, IG_FOREVER, NULL), 0); /* the stop ran too */
	ig_future_free(f);

	int64_t t0 = ig_system_now(g_sys);
	assert_int_equal(ig_ask(g_sys, r, T_ECHO, &(int64_t){1}, 8, IG_SEC(30), &f), 0);
	/* A shorter wait moves virtual time only that far. */
	assert_int_equal(ig_future_wait(f, IG_SEC(10), NULL), IG_EAGAIN);
	assert_int_equal(ig_system_now(g_sys), t0 + IG_SEC(10));
	assert_int_equal(ig_future_wait(f, IG_FOREVER, NULL), IG_ETIMEDOUT);
	assert_int_equal(ig_system_now(g_sys), t0 + IG_SEC(30));
	ig_future_free(f);
}

static void test_ask_and_reply_in_a_deterministic_system(void **unused)
{
	(void)unused;
	ig_future_t *f;
	int64_t v = 1000;
	int64_t t0 = ig_system_now(g_sys);
	assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, &v, sizeof v, IG_SEC(1), &f), 0);
	const ig_msg_t *r = NULL;
	assert_int_equal(ig_future_poll(f, &r), IG_EAGAIN); /* nothing runs by itself */
	assert_int_equal(ig_future_wait(f, IG_SEC(1), &r), 0);
	assert_int_equal(reply_i64(r), 1001);
	assert_int_equal(ig_system_now(g_sys), t0); /* no virtual time needed */
	ig_future_free(f);
}

static void test_freeing_a_pending_future_is_safe_and_the_late_reply_is_a_dead_letter(
	void **unused)
{
	(void)unused;
	static dl_arg_t dl;
	dl_listen(&dl);
	atomic_store(&boxed_freed, 0);
	latch_init(&boxed_latch);

	/* The server holds the question; the future is freed meanwhile. */
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, g_server, T_HOLD, NULL, 0, WAIT, &f), 0);
	/* Make sure the server has the asker's ref before freeing. */
	ig_future_t *sync;
	assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, &(int64_t){0}, 8, WAIT, &sync), 0);
	assert_int_equal(ig_future_wait(sync, WAIT, NULL), 0);
	ig_future_free(sync);
	ig_future_free(f);

	int64_t v = 3;
	assert_int_equal(ig_tell(g_server, T_RELEASE, &v, sizeof v, IG_NOREF), 0);
	ig_dead_letter_t d = {0}; /* set by wait_dead_letter; = {0} quiets -O3 maybe-uninitialized */
	assert_true(wait_dead_letter(&dl, IG_NOREF, T_ECHOED, &d));
	assert_true(ig_ref_eq(d.sender, g_server));
	assert_int_equal(d.size, 8);

	/* Same with a pointer payload: the dead letter frees it. */
	assert_int_equal(ig_ask(g_sys, g_server, T_HOLD, NULL, 0, WAIT, &f), 0);
	assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, &(int64_t){0}, 8, WAIT, &sync), 0);
	assert_int_equal(ig_future_wait(sync, WAIT, NULL), 0);
	ig_future_free(sync);
	ig_future_free(f);
	assert_int_equal(ig_tell(g_server, T_RELEASE_PTR, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&dl.got, 2, WAIT));
	pthread_mutex_lock(&dl.mu);
	int n = dl.n;
	ig_dead_letter_t d2 = dl.all[1];
	pthread_mutex_unlock(&dl.mu);
	assert_int_equal(n, 2);
	assert_int_equal(d2.type, T_ECHOED);
	assert_int_equal(d2.size, sizeof(boxed_t));
	/* The dead letter ran the payload's destructor. */
	assert_int_equal(atomic_load(&boxed_freed), 1);
}

static void test_freeing_futures_racing_with_their_replies_is_safe(void **unused)
{
	(void)unused;
	/* Free right after the ask, while the echo is in flight: the reply
	 * races with the stop of the temporary actor (ASan/TSan watch). */
	for (int i = 0; i < 2000; i++) {
		ig_future_t *f;
		int64_t v = i;
		assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, &v, sizeof v, WAIT, &f), 0);
		if (i % 3 == 0)
			ig_future_poll(f, NULL);
		ig_future_free(f);
	}
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, g_server, T_ECHO, &(int64_t){1}, 8, WAIT, &f), 0);
	assert_int_equal(ig_future_wait(f, WAIT, NULL), 0);
	ig_future_free(f);
}

static const ig_props_t bounded_server_props = {.behavior = server_behavior,
						.state_size = sizeof(holder_t),
						.mailbox = IG_MAILBOX_BOUNDED,
						.capacity = 1,
						.overflow = IG_OVERFLOW_REJECT};

static void test_ask_of_a_full_bounded_mailbox_fails_at_once_with_efull(void **unused)
{
	(void)unused;
	latch_init(&g_blocked);
	latch_init(&g_gate);
	latch_init(&g_marked);
	ig_ref_t b;
	assert_int_equal(ig_system_spawn(g_sys, &bounded_server_props, NULL, NULL, &b), 0);
	uint64_t baseline = ig_system_actor_count(g_sys);
	assert_int_equal(ig_tell(b, T_BLOCK, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&g_blocked, 1, WAIT));
	assert_int_equal(ig_tell(b, T_MARK, NULL, 0, IG_NOREF), 0); /* fills it */
	ig_future_t *f = NULL;
	assert_int_equal(ig_ask(g_sys, b, T_ECHO, &(int64_t){1}, 8, WAIT, &f), IG_EFULL);
	assert_null(f);
	latch_add(&g_gate, 1);
	assert_true(latch_wait(&g_marked, 1, WAIT));
	assert_int_equal(ig_ask(g_sys, b, T_ECHO, &(int64_t){1}, 8, WAIT, &f), 0);
	assert_int_equal(ig_future_wait(f, WAIT, NULL), 0);
	ig_future_free(f);
	/* The failed ask's temporary actor is gone too (polled: no event). */
	int64_t deadline = mono_ns() + WAIT;
	latch_t never;
	latch_init(&never);
	while (ig_system_actor_count(g_sys) > baseline && mono_ns() < deadline)
		latch_wait(&never, 1, IG_MS(1));
	assert_int_equal(ig_system_actor_count(g_sys), baseline);
}

/* ---- many concurrent asks ------------------------------------------------------------------- */

#define ASK_THREADS 4
#define ASKS_PER_THREAD 2500
#define ASK_BATCH 50

typedef struct asker_arg {
	ig_ref_t servers[4];
	int index;
	int ok, wrong, failed;
} asker_arg_t;

static void *asker_thread(void *p)
{
	asker_arg_t *a = p;
	ig_future_t *fs[ASK_BATCH];
	int64_t want[ASK_BATCH];
	for (int done = 0; done < ASKS_PER_THREAD; done += ASK_BATCH) {
		for (int k = 0; k < ASK_BATCH; k++) {
			int64_t v = ((int64_t)a->index << 32) | (done + k);
			want[k] = v + 1;
			ig_ref_t to = a->servers[(done + k) % 4];
			if (ig_ask(g_sys, to, T_ECHO, &v, sizeof v, WAIT, &fs[k]) != 0) {
				fs[k] = NULL;
				a->failed++;
			}
		}
		for (int k = 0; k < ASK_BATCH; k++) {
			if (!fs[k])
				continue;
			const ig_msg_t *r;
			int rc = ig_future_wait(fs[k], IG_FOREVER, &r);
			int64_t got = 0;
			if (rc == 0 && r->size == sizeof got)
				memcpy(&got, r->data, sizeof got);
			if (rc)
				a->failed++;
			else if (got != want[k])
				a->wrong++;
			else
				a->ok++;
			ig_future_free(fs[k]);
		}
	}
	return NULL;
}

static void test_thousands_of_concurrent_asks_from_four_threads_all_get_their_own_reply(
	void **unused)
{
	(void)unused;
	static asker_arg_t args[ASK_THREADS];
	ig_ref_t servers[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(ig_system_spawn(g_sys, &server_props, NULL, NULL, &servers[i]), 0);
	uint64_t baseline = ig_system_actor_count(g_sys);
	pthread_t th[ASK_THREADS];
	int64_t t0 = mono_ns();
	for (int i = 0; i < ASK_THREADS; i++) {
		memset(&args[i], 0, sizeof args[i]);
		memcpy(args[i].servers, servers, sizeof servers);
		args[i].index = i;
		assert_int_equal(pthread_create(&th[i], NULL, asker_thread, &args[i]), 0);
	}
	for (int i = 0; i < ASK_THREADS; i++)
		pthread_join(th[i], NULL);
	int ok = 0;
	for (int i = 0; i < ASK_THREADS; i++) {
		assert_int_equal(args[i].failed, 0);
		assert_int_equal(args[i].wrong, 0);
		ok += args[i].ok;
	}
	assert_int_equal(ok, ASK_THREADS * ASKS_PER_THREAD);
	printf("# %d asks in %.1f ms\n", ok, (mono_ns() - t0) / 1e6);
	/* The temporary actors all go away (reclaim follows an RCU grace
	 * period and has no event: poll with a deadline). */
	int64_t deadline = mono_ns() + WAIT;
	latch_t never;
	latch_init(&never);
	while (ig_system_actor_count(g_sys) > baseline && mono_ns() < deadline)
		latch_wait(&never, 1, IG_MS(1));
	assert_int_equal(ig_system_actor_count(g_sys), baseline);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_threaded, teardown)
#define D(fn) cmocka_unit_test_setup_teardown(fn, setup_deterministic, teardown)
		T(test_ask_gets_the_reply_with_the_replier_as_sender),
		T(test_ask_rejects_bad_arguments),
		T(test_reply_with_tell_ptr_moves_the_pointer_into_the_future),
		T(test_ask_without_reply_times_out_with_etimedout),
		T(test_wait_shorter_than_the_ask_gives_eagain_then_a_later_wait_succeeds),
		T(test_poll_is_eagain_while_pending_and_the_reply_after),
		T(test_on_complete_registered_before_completion_runs_once_on_completion),
		T(test_on_complete_registered_after_completion_runs_now_on_this_thread),
		T(test_on_complete_of_a_timed_out_ask_gets_etimedout_and_no_reply),
		T(test_ask_of_a_dead_actor_times_out_at_the_deadline_and_makes_a_dead_letter),
		D(test_ask_of_a_dead_actor_in_virtual_time_fails_exactly_at_the_deadline),
		D(test_ask_and_reply_in_a_deterministic_system),
		T(test_freeing_a_pending_future_is_safe_and_the_late_reply_is_a_dead_letter),
		T(test_freeing_futures_racing_with_their_replies_is_safe),
		T(test_ask_of_a_full_bounded_mailbox_fails_at_once_with_efull),
		T(test_thousands_of_concurrent_asks_from_four_threads_all_get_their_own_reply),
#undef T
#undef D
	};
	return cmocka_run_group_tests_name("ask", tests, NULL, NULL);
}
