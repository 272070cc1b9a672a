/* Tests of actors in the runtime (<ingot/runtime.h>): spawning and names,
 * lookup and paths, tell (inline, large, pointer payloads), ordering, reply
 * and forward, lifecycle hooks, become/unbecome, stash, stop and poison
 * pill, bounded mailboxes and their overflow policies, dead letters, the
 * event stream and logging, graceful shutdown, stale refs, several systems,
 * and deterministic systems.
 *
 * No test sleeps to wait: threaded tests wait on a latch (mutex + condition
 * variable + deadline) that actors signal, or on ig_future_wait; a
 * deterministic system runs only when the test drives it (det_drain()).
 */
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ingot/error.h>
#include <ingot/runtime.h>

#include "test_util.h"

#define WAIT IG_SEC(10) /* deadline for things that must happen; only a failure waits this long */

/* cmocka's asserts may only run on the test's thread: callbacks on
 * dispatcher threads count their failed checks here instead, and the test
 * asserts the count. */
static atomic_int cb_errors;
#define CB_CHECK(c)                                       \
	do {                                              \
		if (!(c)) {                               \
			fprintf(stderr, "%s:%d: callback check failed: %s\n", \
				__FILE__, __LINE__, #c);  \
			atomic_fetch_add(&cb_errors, 1);  \
		}                                         \
	} while (0)

/* ---- isolation: tests that crash or corrupt the process run in a child -- */

/* Some tests exercise bugs that crash the process (stack overflow) or
 * corrupt the calling thread's message-block cache, which would hang or
 * break every later test. Such a test runs its body in a fresh copy of this
 * binary (same sanitizer options), so it fails on its own, with the child's
 * diagnostics on stderr, and the rest of the suite still runs. */
extern char **environ;
static bool in_child; /* this process is such a copy */

static void run_in_child(const char *test_name)
{
	char filter[256], **env;
	size_t n = 0;
	while (environ[n])
		n++;
	env = calloc(n + 3, sizeof *env);
	assert_non_null(env);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "TEST_FILTER=", 12) && strncmp(environ[i], "TEST_SKIP=", 10) &&
		    strncmp(environ[i], "IG_TEST_CHILD=", 14))
			env[k++] = environ[i];
	snprintf(filter, sizeof filter, "TEST_FILTER=%s", test_name);
	env[k++] = filter;
	env[k++] = "IG_TEST_CHILD=1";
	env[k] = NULL;
	char *argv[] = {"test_child", NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, env);
	free(env);
	assert_int_equal(rc, 0);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0)
		;
	if (WIFSIGNALED(status))
		fprintf(stderr, "%s: the isolated run died of signal %d (%s)\n", test_name,
			WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status))
		fprintf(stderr, "%s: the isolated run failed (exit %d)\n", test_name,
			WEXITSTATUS(status));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Defines test `name` whose body runs in a child process. */
#define ISOLATED_TEST(name)                \
	static void name##_body(void);     \
	static void name(void **unused)    \
	{                                  \
		(void)unused;              \
		if (in_child)              \
			name##_body();     \
		else                       \
			run_in_child(#name); \
	}                                  \
	static void name##_body(void)

/* ---- an ordered log of events (hook calls, message values) ---------------- */

static pthread_mutex_t evlog_mu = PTHREAD_MUTEX_INITIALIZER;
static int evlog[8192];
static int evlog_n;

static void evlog_reset(void)
{
	pthread_mutex_lock(&evlog_mu);
	evlog_n = 0;
	pthread_mutex_unlock(&evlog_mu);
}

static void evlog_add(int ev)
{
	pthread_mutex_lock(&evlog_mu);
	if (evlog_n < (int)(sizeof evlog / sizeof evlog[0]))
		evlog[evlog_n++] = ev;
	pthread_mutex_unlock(&evlog_mu);
}

static int evlog_snapshot(int *out, int max)
{
	pthread_mutex_lock(&evlog_mu);
	int n = evlog_n < max ? evlog_n : max;
	memcpy(out, evlog, (size_t)n * sizeof *out);
	pthread_mutex_unlock(&evlog_mu);
	return n;
}

/* ---- message types used by the test actors ------------------------------- */

enum {
	T_DATA = 1,      /* payload recorded */
	T_INT,           /* payload: int, recorded */
	T_BLOCK,         /* blocks the behavior until the env's gate opens */
	T_CMD_WATCH,     /* payload: ig_ref_t; replies with T_ACK */
	T_CMD_UNWATCH,   /* payload: ig_ref_t */
	T_ACK,           /* recorded: rc of a command */
	T_REPLY_ME,      /* replies T_REPLY with the same payload */
	T_REPLY,
	T_STOP_SELF,
	T_FAIL,          /* payload: int error the behavior returns */
	T_CMD_SPAWN,     /* payload: spawn_req_t; replies spawn_rep_t */
	T_SPAWN_REP,
	T_LOG,           /* the behavior calls ig_log with ctx */
	T_SHUTDOWN,      /* the behavior calls ig_system_shutdown; records T_ACK */
	T_STASH_TWICE,   /* stash, then stash again and forward: records T_ACK rcs */
	T_EVENT = 500,   /* a user event type for the event stream */
};

/* ---- the recorder: a probe-like actor writing what it gets into a rec_t -- */

#define REC_MAX 4096
#define REC_DATA 256

typedef struct item {
	uint32_t type, size;
	ig_ref_t sender, self;
	pthread_t thread;
	uint64_t hash;  /* FNV-1a of the whole payload */
	int rc;         /* T_ACK: result of the command */
	unsigned char data[REC_DATA];
} item_t;

typedef struct rec {
	latch_t l;      /* count: items recorded */
	latch_t entered;/* T_BLOCK: behaviors that reached the gate */
	latch_t gate;   /* T_BLOCK waits for count >= 1 */
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

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
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
		it->thread = pthread_self();
		it->rc = rc;
		it->hash = msg->size ? fnv(msg->data, msg->size) : 0;
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

static int rec_int(rec_t *r, int i)
{
	item_t it = rec_get(r, i);
	int v;
	memcpy(&v, it.data, sizeof v);
	return v;
}

typedef struct probe_state {
	rec_t *rec;
} probe_state_t;

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
	case T_REPLY_ME:
		return ig_reply(ctx, msg, T_REPLY, msg->data, msg->size);
	case T_STOP_SELF:
		ig_stop_self(ctx);
		return 0;
	case T_FAIL: {
		int err;
		memcpy(&err, msg->data, sizeof err);
		return err;
	}
	case T_LOG:
		ig_log(ig_ctx_system(ctx), ctx, IG_LOG_WARN, "from behavior");
		return 0;
	case T_SHUTDOWN:
		rec_add(r, ctx, msg, T_ACK, ig_system_shutdown(ig_ctx_system(ctx), IG_SEC(1)));
		return 0;
	case T_STASH_TWICE: {
		int rc1 = ig_stash(ctx, msg);
		int rc2 = ig_stash(ctx, msg);
		int rc3 = ig_forward(ctx, msg, ig_self(ctx));
		ig_msg_t m = {.type = T_ACK};
		rec_add(r, ctx, &m, T_ACK, rc1);
		rec_add(r, ctx, &m, T_ACK, rc2);
		rec_add(r, ctx, &m, T_ACK, rc3);
		return 0;
	}
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

/* Recs of helper watchers that may still be running when the test moves
 * on: freed at exit, when every system is gone. */
static rec_t *graveyard[256];
static int ngraves;
static void rec_free(rec_t *r);

static rec_t *rec_new(void);
static rec_t *rec_new_kept(void)
{
	rec_t *r = rec_new();
	if (ngraves < 256)
		graveyard[ngraves++] = r;
	return r;
}

static void graveyard_free(void)
{
	while (ngraves)
		rec_free(graveyard[--ngraves]);
}

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

/* Deterministic systems: runs every turn that is ready, on this thread,
 * without moving virtual time (a wait with a zero timeout on an ask that
 * the /user guardian never answers). */
static void det_drain(ig_system_t *sys)
{
	ig_ref_t user;
	assert_int_equal(ig_lookup(sys, "/user", &user), 0);
	ig_future_t *f = NULL;
	assert_int_equal(ig_ask(sys, user, T_DATA, NULL, 0, IG_SEC(3600), &f), 0);
	assert_int_equal(ig_future_wait(f, 0, NULL), IG_EAGAIN);
	ig_future_free(f);
}

/* Watches target from a fresh probe and waits until the watch is placed.
 * Returns the probe; its rec gets the Terminated. */
static ig_ref_t watch_with_props(ig_system_t *sys, const ig_props_t *props, rec_t *r,
				 ig_ref_t target)
{
	ig_ref_t w = spawn(sys, props, NULL, r);
	int before = latch_count(&r->l);
	assert_int_equal(ig_tell(w, T_CMD_WATCH, &target, sizeof target, IG_NOREF), 0);
	assert_true(latch_wait(&r->l, before + 1, WAIT));
	item_t ack = rec_get(r, before);
	assert_int_equal(ack.type, T_ACK);
	assert_int_equal(ack.rc, 0);
	return w;
}

/* Waits for the Terminated of target in r (from index `from`); returns its reason. */
static int wait_terminated(rec_t *r, int from, ig_ref_t target)
{
	for (int i = from;; i++) {
		assert_true(latch_wait(&r->l, i + 1, WAIT));
		item_t it = rec_get(r, i);
		if (it.type != IG_MSG_TERMINATED)
			continue;
		ig_terminated_t t;
		memcpy(&t, it.data, sizeof t);
		if (!ig_ref_eq(t.ref, target))
			continue;
		assert_int_equal(it.size, sizeof t);
		assert_true(ig_ref_eq(it.sender, target));
		return t.reason;
	}
}

/* Stops ref and waits until it is gone (its Terminated reached a watcher). */
static void stop_and_wait(ig_system_t *sys, ig_ref_t ref)
{
	rec_t *r = rec_new_kept();
	ig_ref_t w = watch_with_props(sys, &probe_props, r, ref);
	assert_int_equal(ig_stop(ref), 0);
	assert_int_equal(wait_terminated(r, 1, ref), 0);
	assert_int_equal(ig_stop(w), 0);
}

static char *path_of(ig_ref_t r, char *buf, size_t len)
{
	assert_int_equal(ig_ref_path(r, buf, len), 0);
	return buf;
}

static uint32_t slot_of(ig_ref_t r)
{
	return (uint32_t)r.h - 1;
}

/* ---- the spawner: spawns children on request (ig_spawn from a behavior) --- */

typedef struct spawn_req {
	char name[80]; /* "" = anonymous */
	int kind;      /* which props: K_* */
	bool watch;    /* watch the child in the same behavior call */
} spawn_req_t;

typedef struct spawn_rep {
	int rc;
	int watch_rc;
	ig_ref_t ref;
} spawn_rep_t;

enum { K_SPAWNER = 0, K_FAIL_INIT, K_PROBE };

static int spawner_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg);
static int spawner_init(ig_ctx_t *ctx, void *state, void *arg)
{
	return probe_init(ctx, state, arg);
}

static const ig_props_t spawner_props = {
	.behavior = spawner_behavior,
	.state_size = sizeof(probe_state_t),
	.init = spawner_init,
};

#define INIT_ERR (-1234)

static int fail_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	(void)state;
	(void)arg;
	evlog_add(1);
	return INIT_ERR;
}

static void fail_pre_start(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	(void)state;
	evlog_add(2);
}

static void fail_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	(void)state;
	evlog_add(3);
}

static void fail_fini(void *state)
{
	(void)state;
	evlog_add(4);
}

static int fail_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
	evlog_add(5);
	return 0;
}

static const ig_props_t fail_init_props = {
	.behavior = fail_behavior,
	.init = fail_init,
	.pre_start = fail_pre_start,
	.post_stop = fail_post_stop,
	.fini = fail_fini,
};

static int spawner_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	rec_t *r = ((probe_state_t *)state)->rec;
	if (msg->type != T_CMD_SPAWN)
		return probe_behavior(ctx, state, msg);
	spawn_req_t req;
	memcpy(&req, msg->data, sizeof req);
	const ig_props_t *props = req.kind == K_SPAWNER   ? &spawner_props
				  : req.kind == K_FAIL_INIT ? &fail_init_props
							    : &probe_props;
	spawn_rep_t rep = {.ref = IG_NOREF};
	rep.rc = ig_spawn(ctx, props, req.name[0] ? req.name : NULL, r, &rep.ref);
	if (rep.rc == 0 && req.watch)
		rep.watch_rc = ig_watch(ctx, rep.ref);
	return ig_reply(ctx, msg, T_SPAWN_REP, &rep, sizeof rep);
}

static spawn_rep_t ask_spawn(ig_system_t *sys, ig_ref_t parent, const char *name, int kind,
			     bool watch)
{
	spawn_req_t req = {.kind = kind, .watch = watch};
	snprintf(req.name, sizeof req.name, "%s", name ? name : "");
	ig_future_t *f = NULL;
	assert_int_equal(ig_ask(sys, parent, T_CMD_SPAWN, &req, sizeof req, WAIT, &f), 0);
	const ig_msg_t *reply = NULL;
	assert_int_equal(ig_future_wait(f, WAIT, &reply), 0);
	assert_int_equal(reply->type, T_SPAWN_REP);
	assert_int_equal(reply->size, sizeof(spawn_rep_t));
	spawn_rep_t rep;
	memcpy(&rep, reply->data, sizeof rep);
	ig_future_free(f);
	return rep;
}

/* ======================= spawning and names ============================== */

static void test_spawn_anonymous_gets_dollar_slot_path(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, r);
	char want[64], buf[128];
	snprintf(want, sizeof want, "/user/$%u", slot_of(a));
	assert_string_equal(path_of(a, buf, sizeof buf), want);
	ig_ref_t found = IG_NOREF;
	assert_int_equal(ig_lookup(sys, want, &found), 0);
	assert_true(ig_ref_eq(found, a));
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_spawn_named_is_found_by_path(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, "alpha", r);
	char buf[128];
	assert_string_equal(path_of(a, buf, sizeof buf), "/user/alpha");
	ig_ref_t found = IG_NOREF;
	assert_int_equal(ig_lookup(sys, "/user/alpha", &found), 0);
	assert_true(ig_ref_eq(found, a));
	/* and it is a working ref */
	tell_int(found, 7);
	assert_true(latch_wait(&r->l, 1, WAIT));
	assert_int_equal(rec_int(r, 0), 7);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_spawn_rejects_invalid_names(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	const ig_ref_t sentinel = {0x5151};
	char long64[65], long63[64];
	memset(long64, 'x', 64);
	long64[64] = '\0';
	memset(long63, 'y', 63);
	long63[63] = '\0';
	const char *bad[] = {"a/b", "/", "$x", "$", "", long64};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ig_ref_t out = sentinel;
		assert_int_equal(ig_system_spawn(sys, &probe_props, bad[i], r, &out), IG_EINVAL);
		assert_true(ig_ref_eq(out, sentinel)); /* out-params only on success */
	}
	ig_ref_t ok = spawn(sys, &probe_props, long63, r);
	char buf[128], want[128];
	snprintf(want, sizeof want, "/user/%s", long63);
	assert_string_equal(path_of(ok, buf, sizeof buf), want);
	/* a name may contain a '$' after the first byte */
	spawn(sys, &probe_props, "a$b", r);
	/* props must name a behavior; bounded mailboxes need a capacity */
	ig_props_t nob = {.behavior = NULL};
	assert_int_equal(ig_system_spawn(sys, &nob, NULL, NULL, &(ig_ref_t){0}), IG_EINVAL);
	assert_int_equal(ig_system_spawn(sys, NULL, NULL, NULL, &(ig_ref_t){0}), IG_EINVAL);
	ig_props_t b0 = probe_props;
	b0.mailbox = IG_MAILBOX_BOUNDED;
	b0.capacity = 0;
	assert_int_equal(ig_system_spawn(sys, &b0, NULL, r, &(ig_ref_t){0}), IG_EINVAL);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_spawn_duplicate_sibling_name_is_eexist(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t first = spawn(sys, &probe_props, "dup", r);
	ig_ref_t out = {0x77};
	assert_int_equal(ig_system_spawn(sys, &probe_props, "dup", r, &out), IG_EEXIST);
	assert_int_equal(out.h, 0x77);
	/* the first one is untouched and still the one found */
	ig_ref_t found;
	assert_int_equal(ig_lookup(sys, "/user/dup", &found), 0);
	assert_true(ig_ref_eq(found, first));
	/* the same name under two different parents is fine; twice under one is not */
	ig_ref_t p1 = spawn(sys, &spawner_props, "p1", r);
	ig_ref_t p2 = spawn(sys, &spawner_props, "p2", r);
	spawn_rep_t c1 = ask_spawn(sys, p1, "child", K_PROBE, false);
	spawn_rep_t c2 = ask_spawn(sys, p2, "child", K_PROBE, false);
	spawn_rep_t c3 = ask_spawn(sys, p1, "child", K_PROBE, false);
	assert_int_equal(c1.rc, 0);
	assert_int_equal(c2.rc, 0);
	assert_int_equal(c3.rc, IG_EEXIST);
	assert_false(ig_ref_eq(c1.ref, c2.ref));
	/* ig_spawn validates names too */
	assert_int_equal(ask_spawn(sys, p1, "x/y", K_PROBE, false).rc, IG_EINVAL);
	assert_int_equal(ask_spawn(sys, p1, "$z", K_PROBE, false).rc, IG_EINVAL);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_name_is_free_again_after_the_actor_stopped(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, "again", r);
	stop_and_wait(sys, a);
	ig_ref_t found;
	assert_int_equal(ig_lookup(sys, "/user/again", &found), IG_ENOTFOUND);
	ig_ref_t b = spawn(sys, &probe_props, "again", r);
	assert_false(ig_ref_eq(a, b));
	assert_int_equal(ig_lookup(sys, "/user/again", &found), 0);
	assert_true(ig_ref_eq(found, b));
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_lookup_and_path_of_nested_named_actors(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &spawner_props, "a", r);
	spawn_rep_t b = ask_spawn(sys, a, "b", K_SPAWNER, false);
	assert_int_equal(b.rc, 0);
	spawn_rep_t c = ask_spawn(sys, b.ref, "c", K_PROBE, false);
	assert_int_equal(c.rc, 0);
	char buf[256];
	assert_string_equal(path_of(b.ref, buf, sizeof buf), "/user/a/b");
	assert_string_equal(path_of(c.ref, buf, sizeof buf), "/user/a/b/c");
	ig_ref_t found;
	assert_int_equal(ig_lookup(sys, "/user/a/b", &found), 0);
	assert_true(ig_ref_eq(found, b.ref));
	assert_int_equal(ig_lookup(sys, "/user/a/b/c", &found), 0);
	assert_true(ig_ref_eq(found, c.ref));
	/* a message through the looked-up ref arrives */
	int before = latch_count(&r->l);
	tell_int(found, 33);
	assert_true(latch_wait(&r->l, before + 1, WAIT));
	item_t it = rec_get(r, before);
	assert_true(ig_ref_eq(it.self, c.ref));
	/* guardians */
	ig_ref_t g1, g2, g3;
	assert_int_equal(ig_lookup(sys, "/", &g1), 0);
	assert_int_equal(ig_lookup(sys, "/user", &g2), 0);
	assert_int_equal(ig_lookup(sys, "/system", &g3), 0);
	assert_string_equal(path_of(g1, buf, sizeof buf), "/");
	assert_string_equal(path_of(g2, buf, sizeof buf), "/user");
	assert_string_equal(path_of(g3, buf, sizeof buf), "/system");
	/* misses and bad paths */
	assert_int_equal(ig_lookup(sys, "/user/a/x", &found), IG_ENOTFOUND);
	assert_int_equal(ig_lookup(sys, "/user/b", &found), IG_ENOTFOUND);
	assert_int_equal(ig_lookup(sys, "user/a", &found), IG_EINVAL);
	assert_int_equal(ig_lookup(sys, "", &found), IG_EINVAL);
	assert_int_equal(ig_lookup(sys, NULL, &found), IG_EINVAL);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_lookup_and_path_of_anonymous_children(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &spawner_props, "a", r);
	spawn_rep_t anon = ask_spawn(sys, a, NULL, K_SPAWNER, false);
	assert_int_equal(anon.rc, 0);
	char want[128], buf[256];
	snprintf(want, sizeof want, "/user/a/$%u", slot_of(anon.ref));
	assert_string_equal(path_of(anon.ref, buf, sizeof buf), want);
	ig_ref_t found;
	assert_int_equal(ig_lookup(sys, want, &found), 0);
	assert_true(ig_ref_eq(found, anon.ref));
	/* a named grandchild under the anonymous child */
	spawn_rep_t named = ask_spawn(sys, anon.ref, "n", K_PROBE, false);
	assert_int_equal(named.rc, 0);
	char want2[160];
	snprintf(want2, sizeof want2, "%s/n", want);
	assert_string_equal(path_of(named.ref, buf, sizeof buf), want2);
	assert_int_equal(ig_lookup(sys, want2, &found), 0);
	assert_true(ig_ref_eq(found, named.ref));
	/* an anonymous grandchild under the anonymous child */
	spawn_rep_t anon2 = ask_spawn(sys, anon.ref, NULL, K_PROBE, false);
	assert_int_equal(anon2.rc, 0);
	char want3[160];
	snprintf(want3, sizeof want3, "%s/$%u", want, slot_of(anon2.ref));
	assert_string_equal(path_of(anon2.ref, buf, sizeof buf), want3);
	assert_int_equal(ig_lookup(sys, want3, &found), 0);
	assert_true(ig_ref_eq(found, anon2.ref));
	/* the right slot under the wrong parent is not a match */
	snprintf(buf, sizeof buf, "/user/$%u", slot_of(anon.ref));
	assert_int_equal(ig_lookup(sys, buf, &found), IG_ENOTFOUND);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_ref_path_errors(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, "abcdef", r);
	char buf[64];
	memset(buf, 'Z', sizeof buf);
	assert_int_equal(ig_ref_path(a, buf, 5), IG_ERANGE);
	assert_int_equal(ig_ref_path(a, buf, sizeof "/user/abcdef" - 1), IG_ERANGE);
	assert_int_equal(ig_ref_path(a, buf, sizeof "/user/abcdef"), 0);
	assert_string_equal(buf, "/user/abcdef");
	assert_int_equal(ig_ref_path(IG_NOREF, buf, sizeof buf), IG_ENOACTOR);
	stop_and_wait(sys, a);
	assert_int_equal(ig_ref_path(a, buf, sizeof buf), IG_ENOACTOR);
	ig_ref_t found;
	assert_int_equal(ig_lookup(sys, "/user/abcdef", &found), IG_ENOTFOUND);
	ig_system_destroy(sys);
	rec_free(r);
}

/* ============================== tell ===================================== */

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 131u + seed);
}

static void test_tell_inline_payloads_arrive_intact(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, r);
	static const size_t sizes[] = {0, 1, 7, 63, IG_MSG_INLINE_MAX, IG_MSG_INLINE_MAX + 1, 200};
	unsigned char buf[256];
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		fill_pattern(buf, sizes[i], (unsigned)i);
		assert_int_equal(ig_tell(a, T_DATA, sizes[i] ? buf : NULL, sizes[i], IG_NOREF), 0);
	}
	size_t n = sizeof sizes / sizeof sizes[0];
	assert_true(latch_wait(&r->l, (int)n, WAIT));
	for (size_t i = 0; i < n; i++) {
		item_t it = rec_get(r, (int)i);
		assert_int_equal(it.type, T_DATA);
		assert_int_equal(it.size, sizes[i]);
		assert_true(ig_ref_is_none(it.sender));
		fill_pattern(buf, sizes[i], (unsigned)i);
		if (sizes[i])
			assert_memory_equal(it.data, buf, sizes[i]);
	}
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_tell_large_payload_arrives_intact(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, r);
	size_t n = 100 * 1024;
	unsigned char *big = malloc(n);
	assert_non_null(big);
	fill_pattern(big, n, 9);
	uint64_t want = fnv(big, n);
	assert_int_equal(ig_tell(a, T_DATA, big, n, IG_NOREF), 0);
	memset(big, 0, n); /* the runtime copied it: scribbling now must not matter */
	assert_true(latch_wait(&r->l, 1, WAIT));
	item_t it = rec_get(r, 0);
	assert_int_equal(it.size, n);
	assert_true(it.hash == want);
	free(big);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_tell_rejects_system_types_and_missing_data(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, r);
	int v = 1;
	assert_int_equal(ig_tell(a, IG_MSG_TERMINATED, &v, sizeof v, IG_NOREF), IG_EINVAL);
	assert_int_equal(ig_tell(a, IG_MSG_DEAD_LETTER, &v, sizeof v, IG_NOREF), IG_EINVAL);
	assert_int_equal(ig_tell(a, IG_MSG_SYSTEM_BASE, NULL, 0, IG_NOREF), IG_EINVAL);
	assert_int_equal(ig_tell(a, 0xFFFFFFFFu, NULL, 0, IG_NOREF), IG_EINVAL);
	assert_int_equal(ig_tell(a, T_DATA, NULL, 4, IG_NOREF), IG_EINVAL);
	assert_int_equal(ig_system_dead_letters(sys), 0);
	ig_system_destroy(sys);
	rec_free(r);
}

/* ---- ig_tell_ptr ---- */

typedef struct ptr_payload {
	atomic_int *dtor_calls;
	latch_t *done;
	int value;
} ptr_payload_t;

static void ptr_dtor(void *p)
{
	ptr_payload_t *pp = p;
	atomic_fetch_add(pp->dtor_calls, 1);
	latch_t *l = pp->done;
	free(pp);
	if (l)
		latch_add(l, 1);
}

static ptr_payload_t *ptr_new(atomic_int *calls, latch_t *done, int value)
{
	ptr_payload_t *p = malloc(sizeof *p);
	assert_non_null(p);
	p->dtor_calls = calls;
	p->done = done;
	p->value = value;
	return p;
}

typedef struct ptr_seen {
	latch_t l;
	int value;
	int dtor_calls_during_behavior;
	const void *data;
	uint32_t size;
} ptr_seen_t;

static int ptr_check_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(ptr_seen_t **)state = arg;
	return 0;
}

static int ptr_check_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	ptr_seen_t *s = *(ptr_seen_t **)state;
	const ptr_payload_t *p = msg->data;
	pthread_mutex_lock(&s->l.mu);
	s->value = p->value;
	s->dtor_calls_during_behavior = atomic_load(p->dtor_calls);
	s->data = msg->data;
	s->size = msg->size;
	pthread_mutex_unlock(&s->l.mu);
	latch_add(&s->l, 1);
	return 0;
}

static const ig_props_t ptr_check_props = {
	.behavior = ptr_check_behavior,
	.state_size = sizeof(ptr_seen_t *),
	.init = ptr_check_init,
};

static void test_tell_ptr_destructor_runs_once_after_the_behavior(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	ptr_seen_t seen = {0};
	latch_init(&seen.l);
	ig_ref_t a = spawn(sys, &ptr_check_props, NULL, &seen);
	atomic_int calls = 0;
	latch_t done;
	latch_init(&done);
	ptr_payload_t *p = ptr_new(&calls, &done, 4242);
	assert_int_equal(ig_tell_ptr(a, T_DATA, p, 12345, ptr_dtor, IG_NOREF), 0);
	assert_true(latch_wait(&seen.l, 1, WAIT));
	assert_true(latch_wait(&done, 1, WAIT));
	assert_int_equal(seen.value, 4242);
	assert_int_equal(seen.dtor_calls_during_behavior, 0);
	assert_ptr_equal(seen.data, p); /* the pointer itself, not a copy */
	assert_int_equal(seen.size, 12345);
	/* and never again, through shutdown */
	assert_int_equal(ig_system_shutdown(sys, WAIT), 0);
	assert_int_equal(atomic_load(&calls), 1);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&calls), 1);
	latch_destroy(&done);
	latch_destroy(&seen.l);
}

static void test_tell_ptr_to_dead_actor_is_enoactor_and_destructor_runs_once(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, r);
	stop_and_wait(sys, a);
	atomic_int calls = 0;
	uint64_t dl = ig_system_dead_letters(sys);
	assert_int_equal(ig_tell_ptr(a, T_DATA, ptr_new(&calls, NULL, 1), 8, ptr_dtor, IG_NOREF),
			 IG_ENOACTOR);
	assert_int_equal(atomic_load(&calls), 1); /* already, before the call returned */
	assert_int_equal(ig_system_dead_letters(sys), dl + 1);
	/* a system type is refused, and the pointer is still released */
	ig_ref_t live = spawn(sys, &probe_props, NULL, r);
	assert_int_equal(ig_tell_ptr(live, IG_MSG_TERMINATED, ptr_new(&calls, NULL, 2), 8,
				     ptr_dtor, IG_NOREF),
			 IG_EINVAL);
	assert_int_equal(atomic_load(&calls), 2);
	/* IG_NOREF names no actor */
	assert_int_equal(ig_tell_ptr(IG_NOREF, T_DATA, ptr_new(&calls, NULL, 3), 8, ptr_dtor,
				     IG_NOREF),
			 IG_ENOACTOR);
	assert_int_equal(atomic_load(&calls), 3);
	/* a NULL destructor is allowed */
	static int on_stack_ok;
	assert_int_equal(ig_tell_ptr(a, T_DATA, &on_stack_ok, 4, NULL, IG_NOREF), IG_ENOACTOR);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&calls), 3);
	rec_free(r);
}

static void test_tell_ptr_dropped_by_stop_runs_destructor_once(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, r);
	atomic_int calls = 0;
	for (int i = 0; i < 5; i++)
		assert_int_equal(
			ig_tell_ptr(a, T_DATA, ptr_new(&calls, NULL, i), 8, ptr_dtor, IG_NOREF), 0);
	assert_int_equal(atomic_load(&calls), 0);
	assert_int_equal(ig_stop(a), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&r->l), 0); /* a prompt stop: none processed */
	assert_int_equal(atomic_load(&calls), 5);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&calls), 5);
	rec_free(r);
}

/* ---- ordering ---- */

typedef struct seq_state {
	latch_t *done;
	atomic_int *errors;
	int expect[4]; /* per sender index */
	int total;
	int target;
} seq_state_t;

typedef struct seq_arg {
	latch_t *done;
	atomic_int *errors;
	int target;
} seq_arg_t;

typedef struct seq_msg {
	int sender; /* index */
	int seq;
} seq_msg_t;

static int seq_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	seq_state_t *s = state;
	seq_arg_t *a = arg;
	s->done = a->done;
	s->errors = a->errors;
	s->target = a->target;
	return 0;
}

static int seq_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	seq_state_t *s = state;
	seq_msg_t m;
	memcpy(&m, msg->data, sizeof m);
	if (m.sender < 0 || m.sender >= 4 || m.seq != s->expect[m.sender])
		atomic_fetch_add(s->errors, 1);
	else
		s->expect[m.sender]++;
	if (++s->total == s->target)
		latch_add(s->done, 1);
	return 0;
}

static const ig_props_t seq_props = {
	.behavior = seq_behavior,
	.state_size = sizeof(seq_state_t),
	.init = seq_init,
};

/* An actor that, told "go" with a target ref, sends n numbered messages. */
typedef struct burst {
	ig_ref_t to;
	int n;
	int index;
} burst_t;

static int burster_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	burst_t b;
	memcpy(&b, msg->data, sizeof b);
	for (int i = 0; i < b.n; i++) {
		seq_msg_t m = {.sender = b.index, .seq = i};
		int rc = ig_tell(b.to, T_DATA, &m, sizeof m, ig_self(ctx));
		if (rc)
			return rc;
	}
	return 0;
}

static const ig_props_t burster_props = {.behavior = burster_behavior};

static void test_order_is_kept_for_one_sender(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	latch_t done;
	latch_init(&done);
	atomic_int errors = 0;
	const int n = 20000;
	seq_arg_t arg = {.done = &done, .errors = &errors, .target = n};
	ig_ref_t a = spawn(sys, &seq_props, NULL, &arg);
	for (int i = 0; i < n; i++) {
		seq_msg_t m = {.sender = 0, .seq = i};
		assert_int_equal(ig_tell(a, T_DATA, &m, sizeof m, IG_NOREF), 0);
	}
	assert_true(latch_wait(&done, 1, WAIT));
	assert_int_equal(atomic_load(&errors), 0);
	ig_system_destroy(sys);
	latch_destroy(&done);
}

static void test_order_is_kept_per_sender_with_concurrent_actor_senders(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	latch_t done;
	latch_init(&done);
	atomic_int errors = 0;
	const int n = 5000;
	seq_arg_t arg = {.done = &done, .errors = &errors, .target = 3 * n};
	ig_ref_t a = spawn(sys, &seq_props, NULL, &arg);
	for (int s = 0; s < 3; s++) {
		ig_ref_t b = spawn(sys, &burster_props, NULL, NULL);
		burst_t go = {.to = a, .n = n, .index = s};
		assert_int_equal(ig_tell(b, T_DATA, &go, sizeof go, IG_NOREF), 0);
	}
	assert_true(latch_wait(&done, 1, WAIT));
	assert_int_equal(atomic_load(&errors), 0);
	ig_system_destroy(sys);
	latch_destroy(&done);
}

/* ---- reply and forward ---- */

static void test_reply_goes_to_the_sender_with_self_as_sender(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t echo = spawn(sys, &probe_props, "echo", r);
	int v = 99;
	ig_future_t *f = NULL;
	assert_int_equal(ig_ask(sys, echo, T_REPLY_ME, &v, sizeof v, WAIT, &f), 0);
	const ig_msg_t *reply = NULL;
	assert_int_equal(ig_future_wait(f, WAIT, &reply), 0);
	assert_int_equal(reply->type, T_REPLY);
	assert_int_equal(reply->size, sizeof v);
	assert_int_equal(*(const int *)reply->data, 99);
	assert_true(ig_ref_eq(reply->sender, echo));
	ig_future_free(f);
	/* between two actors: the recorder r2 gets the reply from echo */
	rec_t *r2 = rec_new();
	ig_ref_t asker = spawn(sys, &probe_props, NULL, r2);
	assert_int_equal(ig_tell(echo, T_REPLY_ME, &v, sizeof v, asker), 0);
	assert_true(latch_wait(&r2->l, 1, WAIT));
	item_t it = rec_get(r2, 0);
	assert_int_equal(it.type, T_REPLY);
	assert_true(ig_ref_eq(it.sender, echo));
	assert_int_equal(rec_int(r2, 0), 99);
	ig_system_destroy(sys);
	rec_free(r);
	rec_free(r2);
}

static int forwarder_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	memcpy(state, arg, sizeof(ig_ref_t));
	return 0;
}

static int forwarder_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	ig_ref_t to;
	memcpy(&to, state, sizeof to);
	return ig_forward(ctx, msg, to);
}

static const ig_props_t forwarder_props = {
	.behavior = forwarder_behavior,
	.state_size = sizeof(ig_ref_t),
	.init = forwarder_init,
};

static void test_forward_keeps_the_original_sender_and_payload(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r_end = rec_new(), *r_orig = rec_new();
	ig_ref_t end = spawn(sys, &probe_props, "end", r_end);
	ig_ref_t orig = spawn(sys, &probe_props, "orig", r_orig);
	ig_ref_t hop2 = spawn(sys, &forwarder_props, NULL, &end);
	ig_ref_t hop1 = spawn(sys, &forwarder_props, NULL, &hop2);
	/* inline, large and pointer payloads, all through two hops */
	unsigned char small[40], *big = malloc(70000);
	assert_non_null(big);
	fill_pattern(small, sizeof small, 1);
	fill_pattern(big, 70000, 2);
	assert_int_equal(ig_tell(hop1, T_DATA, small, sizeof small, orig), 0);
	assert_int_equal(ig_tell(hop1, T_DATA, big, 70000, orig), 0);
	atomic_int calls = 0;
	latch_t freed;
	latch_init(&freed);
	assert_int_equal(ig_tell_ptr(hop1, T_DATA, ptr_new(&calls, &freed, 5), 16, ptr_dtor, orig),
			 0);
	assert_true(latch_wait(&r_end->l, 3, WAIT));
	item_t a = rec_get(r_end, 0), b = rec_get(r_end, 1), c = rec_get(r_end, 2);
	assert_true(ig_ref_eq(a.sender, orig));
	assert_true(ig_ref_eq(b.sender, orig));
	assert_true(ig_ref_eq(c.sender, orig));
	assert_int_equal(a.size, sizeof small);
	assert_memory_equal(a.data, small, sizeof small);
	assert_int_equal(b.size, 70000);
	assert_true(b.hash == fnv(big, 70000));
	assert_int_equal(c.size, 16);
	assert_true(latch_wait(&freed, 1, WAIT));
	/* a reply from the end goes to the original sender, not to a hop */
	int v = 3;
	assert_int_equal(ig_tell(hop1, T_REPLY_ME, &v, sizeof v, orig), 0);
	assert_true(latch_wait(&r_orig->l, 1, WAIT));
	item_t rep = rec_get(r_orig, 0);
	assert_int_equal(rep.type, T_REPLY);
	assert_true(ig_ref_eq(rep.sender, end));
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&calls), 1);
	latch_destroy(&freed);
	free(big);
	rec_free(r_end);
	rec_free(r_orig);
}

static void test_forward_to_a_dead_actor_is_a_dead_letter_and_frees_once(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t gone = spawn(sys, &probe_props, NULL, r);
	stop_and_wait(sys, gone);
	ig_ref_t fw = spawn(sys, &forwarder_props, NULL, &gone);
	/* a behavior error (IG_ENOACTOR from ig_forward) restarts the forwarder;
	 * the message itself must still be released exactly once */
	atomic_int calls = 0;
	latch_t freed;
	latch_init(&freed);
	uint64_t dl = ig_system_dead_letters(sys);
	assert_int_equal(ig_tell_ptr(fw, T_DATA, ptr_new(&calls, &freed, 1), 8, ptr_dtor, IG_NOREF),
			 0);
	assert_true(latch_wait(&freed, 1, WAIT));
	assert_true(ig_system_dead_letters(sys) >= dl + 1);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&calls), 1);
	latch_destroy(&freed);
	rec_free(r);
}

/* ============================ lifecycle ================================== */

enum { EV_INIT = 10, EV_PRE_START, EV_MSG, EV_POST_STOP, EV_FINI };

typedef struct life_state {
	int magic;
	latch_t *fini_done;
} life_state_t;

static int life_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	life_state_t *s = state;
	CB_CHECK(s->magic == 0); /* state starts zeroed */
	s->magic = 77;
	s->fini_done = arg;
	evlog_add(EV_INIT);
	return 0;
}

static void life_pre_start(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	CB_CHECK(((life_state_t *)state)->magic == 77);
	evlog_add(EV_PRE_START);
}

static int life_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)msg;
	CB_CHECK(((life_state_t *)state)->magic == 77);
	evlog_add(EV_MSG);
	return 0;
}

static void life_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	CB_CHECK(((life_state_t *)state)->magic == 77);
	evlog_add(EV_POST_STOP);
}

static void life_fini(void *state)
{
	life_state_t *s = state;
	evlog_add(EV_FINI);
	latch_add(s->fini_done, 1);
}

static const ig_props_t life_props = {
	.behavior = life_behavior,
	.state_size = sizeof(life_state_t),
	.init = life_init,
	.pre_start = life_pre_start,
	.post_stop = life_post_stop,
	.fini = life_fini,
};

static void test_lifecycle_hooks_run_in_order(void **unused)
{
	(void)unused;
	evlog_reset();
	atomic_store(&cb_errors, 0);
	ig_system_t *sys = mk_system(false);
	latch_t fini;
	latch_init(&fini);
	ig_ref_t a = spawn(sys, &life_props, NULL, &fini);
	tell_int(a, 1);
	tell_int(a, 2);
	assert_int_equal(ig_poison(a), 0);
	assert_true(latch_wait(&fini, 1, WAIT));
	int ev[16];
	int n = evlog_snapshot(ev, 16);
	int want[] = {EV_INIT, EV_PRE_START, EV_MSG, EV_MSG, EV_POST_STOP, EV_FINI};
	assert_int_equal(n, 6);
	assert_memory_equal(ev, want, sizeof want);
	ig_system_destroy(sys);
	assert_int_equal(evlog_snapshot(ev, 16), 6); /* nothing ran twice */
	assert_int_equal(atomic_load(&cb_errors), 0);
	latch_destroy(&fini);
}

static void test_init_failure_stops_the_actor_and_watchers_see_the_reason(void **unused)
{
	(void)unused;
	evlog_reset();
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t parent = spawn(sys, &spawner_props, "parent", r);
	/* spawned and watched in the same behavior call: the watch is placed
	 * before the child's init can run */
	spawn_rep_t c = ask_spawn(sys, parent, "doomed", K_FAIL_INIT, true);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.watch_rc, 0);
	assert_int_equal(wait_terminated(r, 0, c.ref), INIT_ERR);
	int ev[16];
	int n = evlog_snapshot(ev, 16);
	/* init ran; pre_start, the behavior, post_stop and fini did not */
	assert_int_equal(n, 1);
	assert_int_equal(ev[0], 1);
	ig_ref_t found;
	assert_int_equal(ig_lookup(sys, "/user/parent/doomed", &found), IG_ENOTFOUND);
	assert_int_equal(ig_tell(c.ref, T_INT, &n, sizeof n, IG_NOREF), IG_ENOACTOR);
	ig_system_destroy(sys);
	assert_int_equal(evlog_snapshot(ev, 16), 1);
	rec_free(r);
}

static void test_init_failure_turns_waiting_messages_into_dead_letters(void **unused)
{
	(void)unused;
	evlog_reset();
	ig_system_t *sys = mk_system(true);
	ig_ref_t a = spawn(sys, &fail_init_props, NULL, NULL);
	int v = 1;
	uint64_t dl = ig_system_dead_letters(sys);
	assert_int_equal(ig_tell(a, T_INT, &v, sizeof v, IG_NOREF), 0); /* waits for init */
	assert_int_equal(ig_tell(a, T_INT, &v, sizeof v, IG_NOREF), 0);
	det_drain(sys);
	int ev[16];
	int n = evlog_snapshot(ev, 16);
	assert_int_equal(n, 1); /* init only; the behavior never ran */
	assert_int_equal(ig_system_dead_letters(sys), dl + 2);
	ig_system_destroy(sys);
}

/* ============================ become ===================================== */

static int beh_common(ig_ctx_t *ctx, void *state, const ig_msg_t *msg, int letter);

enum { B_QUERY = 1, B_PUSH_B, B_PUSH_C, B_REPLACE_C, B_UNBECOME, B_NULL };

static int beh_a(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	return beh_common(ctx, state, msg, 'A');
}
static int beh_b(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	return beh_common(ctx, state, msg, 'B');
}
static int beh_c(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	return beh_common(ctx, state, msg, 'C');
}

static int beh_common(ig_ctx_t *ctx, void *state, const ig_msg_t *msg, int letter)
{
	rec_t *r = ((probe_state_t *)state)->rec;
	switch (msg->type) {
	case B_QUERY: {
		ig_msg_t m = {.type = (uint32_t)letter};
		rec_add(r, ctx, &m, (uint32_t)letter, 0);
		return 0;
	}
	case B_PUSH_B:
		return ig_become(ctx, beh_b, false);
	case B_PUSH_C:
		return ig_become(ctx, beh_c, false);
	case B_REPLACE_C:
		return ig_become(ctx, beh_c, true);
	case B_UNBECOME:
		ig_unbecome(ctx);
		return 0;
	case B_NULL: {
		ig_msg_t m = {.type = 'N'};
		rec_add(r, ctx, &m, 'N', ig_become(ctx, NULL, false));
		return 0;
	}
	}
	return 0;
}

static const ig_props_t become_props = {
	.behavior = beh_a,
	.state_size = sizeof(probe_state_t),
	.init = probe_init,
};

static void test_become_and_unbecome_follow_a_stack(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &become_props, NULL, r);
	static const uint32_t script[] = {
		B_QUERY,                        /* A */
		B_PUSH_B,    B_QUERY,           /* B */
		B_PUSH_C,    B_QUERY,           /* C */
		B_UNBECOME,  B_QUERY,           /* B */
		B_UNBECOME,  B_QUERY,           /* A */
		B_UNBECOME,  B_QUERY,           /* A: the bottom stays */
		B_PUSH_B,    B_REPLACE_C, B_QUERY, /* C replaced B */
		B_UNBECOME,  B_QUERY,           /* A */
		B_PUSH_B,    B_PUSH_C, B_PUSH_B, B_PUSH_C, B_PUSH_B, B_QUERY, /* B (deep) */
		B_UNBECOME,  B_QUERY,           /* C */
		B_UNBECOME,  B_UNBECOME, B_QUERY, /* C */
		B_REPLACE_C, B_UNBECOME, B_QUERY, /* B */
	};
	for (size_t i = 0; i < sizeof script / sizeof script[0]; i++)
		assert_int_equal(ig_tell(a, script[i], NULL, 0, IG_NOREF), 0);
	const char *want = "ABCBAACABCCB";
	int n = (int)strlen(want);
	assert_true(latch_wait(&r->l, n, WAIT));
	for (int i = 0; i < n; i++)
		assert_int_equal(rec_get(r, i).type, (uint32_t)want[i]);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_become_with_null_behavior_is_einval(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &become_props, NULL, r);
	assert_int_equal(ig_tell(a, B_PUSH_B, NULL, 0, IG_NOREF), 0);
	assert_int_equal(ig_tell(a, B_NULL, NULL, 0, IG_NOREF), 0);
	assert_int_equal(ig_tell(a, B_QUERY, NULL, 0, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&r->l), 2);
	assert_int_equal(rec_get(r, 0).rc, IG_EINVAL);
	assert_int_equal(rec_get(r, 1).type, 'B'); /* unchanged */
	ig_system_destroy(sys);
	rec_free(r);
}

/* ============================= stash ===================================== */

enum { S_OPEN = 700, S_REOPEN_CLOSED, S_STASH_FWD };

typedef struct stash_state {
	rec_t *rec;
	ig_ref_t fwd_to;  /* once set (S_STASH_FWD), data is forwarded there... */
	ig_ref_t mark_to; /* ...and a marker (the negated int) sent here */
} stash_state_t;

static int stash_open(ig_ctx_t *ctx, void *state, const ig_msg_t *msg);

/* Closed: stash data; S_OPEN opens and unstashes; S_REOPEN_CLOSED unstashes
 * but stays closed (so the unstashed messages are stashed again). */
static int stash_closed(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	switch (msg->type) {
	case S_OPEN: {
		int rc = ig_become(ctx, stash_open, true);
		ig_unstash_all(ctx);
		return rc;
	}
	case S_REOPEN_CLOSED:
		ig_unstash_all(ctx);
		return 0;
	default:
		return ig_stash(ctx, msg);
	}
}

static int stash_open(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	stash_state_t *s = state;
	if (msg->type == S_STASH_FWD) {
		memcpy(&s->fwd_to, msg->data, sizeof s->fwd_to);
		memcpy(&s->mark_to, (const char *)msg->data + sizeof s->fwd_to, sizeof s->mark_to);
		return ig_become(ctx, stash_closed, true);
	}
	if (!ig_ref_is_none(s->fwd_to) && msg->type != S_OPEN) {
		int v = 0;
		if (msg->type == T_INT)
			memcpy(&v, msg->data, sizeof v);
		int rc = ig_forward(ctx, msg, s->fwd_to);
		v = -v;
		if (rc == 0 && !ig_ref_is_none(s->mark_to))
			rc = ig_tell(s->mark_to, T_INT, &v, sizeof v, ig_self(ctx));
		return rc;
	}
	rec_add(s->rec, ctx, msg, msg->type, 0);
	return 0;
}

static const ig_props_t stash_props = {
	.behavior = stash_closed,
	.state_size = sizeof(stash_state_t),
	.init = probe_init,
};

static void test_unstash_all_puts_stashed_first_in_stash_order(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &stash_props, NULL, r);
	/* 1..3 are stashed; 4..5 are already in the mailbox when S_OPEN runs */
	for (int i = 1; i <= 3; i++)
		tell_int(a, i);
	assert_int_equal(ig_tell(a, S_OPEN, NULL, 0, IG_NOREF), 0);
	for (int i = 4; i <= 5; i++)
		tell_int(a, i);
	det_drain(sys);
	assert_int_equal(latch_count(&r->l), 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rec_int(r, i), i + 1);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_unstash_all_threaded_keeps_order(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &stash_props, NULL, r);
	const int n = 300;
	for (int i = 0; i < n; i++)
		tell_int(a, i);
	assert_int_equal(ig_tell(a, S_OPEN, NULL, 0, IG_NOREF), 0);
	for (int i = n; i < 2 * n; i++)
		tell_int(a, i);
	assert_true(latch_wait(&r->l, 2 * n, WAIT));
	for (int i = 0; i < 2 * n; i++)
		assert_int_equal(rec_int(r, i), i);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_stash_keeps_large_and_pointer_payloads(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &stash_props, NULL, r);
	size_t n = 100 * 1024;
	unsigned char *big = malloc(n);
	assert_non_null(big);
	fill_pattern(big, n, 5);
	atomic_int calls = 0;
	assert_int_equal(ig_tell(a, T_DATA, big, n, IG_NOREF), 0);
	assert_int_equal(ig_tell_ptr(a, T_DATA, ptr_new(&calls, NULL, 8), 24, ptr_dtor, IG_NOREF),
			 0);
	det_drain(sys);
	assert_int_equal(atomic_load(&calls), 0); /* stashed: not released */
	assert_int_equal(ig_tell(a, S_OPEN, NULL, 0, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&r->l), 2); /* big, ptr (S_OPEN is not recorded) */
	item_t b = rec_get(r, 0);
	assert_int_equal(b.size, n);
	assert_true(b.hash == fnv(big, n));
	assert_int_equal(rec_get(r, 1).size, 24);
	assert_int_equal(atomic_load(&calls), 1);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&calls), 1);
	free(big);
	rec_free(r);
}

static void test_stashed_messages_become_dead_letters_when_the_actor_stops(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &stash_props, NULL, r);
	atomic_int calls = 0;
	tell_int(a, 1);
	assert_int_equal(ig_tell_ptr(a, T_DATA, ptr_new(&calls, NULL, 8), 8, ptr_dtor, IG_NOREF),
			 0);
	det_drain(sys);
	uint64_t dl = ig_system_dead_letters(sys);
	assert_int_equal(ig_stop(a), 0);
	det_drain(sys);
	assert_int_equal(ig_system_dead_letters(sys), dl + 2);
	assert_int_equal(atomic_load(&calls), 1);
	ig_system_destroy(sys);
	rec_free(r);
}

/* A message unstashed and then stashed again (the actor is still not
 * ready) must survive intact: Akka's common "stash until initialized". */
ISOLATED_TEST(test_restash_after_unstash_keeps_messages_intact)
{
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &stash_props, NULL, r);
	for (int i = 1; i <= 3; i++)
		tell_int(a, i);
	assert_int_equal(ig_tell(a, S_REOPEN_CLOSED, NULL, 0, IG_NOREF), 0);
	det_drain(sys); /* 1..3 were unstashed and stashed again */
	/* more traffic through this thread's message blocks */
	for (int i = 100; i < 110; i++)
		tell_int(a, i);
	assert_int_equal(ig_tell(a, S_REOPEN_CLOSED, NULL, 0, IG_NOREF), 0);
	assert_int_equal(ig_tell(a, S_OPEN, NULL, 0, IG_NOREF), 0);
	det_drain(sys);
	int want[] = {1, 2, 3, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109};
	int n = (int)(sizeof want / sizeof want[0]);
	assert_int_equal(latch_count(&r->l), n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(rec_get(r, i).type, T_INT);
		assert_int_equal(rec_int(r, i), want[i]);
	}
	ig_system_destroy(sys);
	rec_free(r);
}

/* The same with a pointer payload: its destructor must run once, after the
 * behavior that finally handles it. */
ISOLATED_TEST(test_restash_after_unstash_keeps_pointer_payload_alive)
{
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &stash_props, NULL, r);
	atomic_int calls = 0;
	assert_int_equal(ig_tell_ptr(a, T_DATA, ptr_new(&calls, NULL, 8), 8, ptr_dtor, IG_NOREF),
			 0);
	assert_int_equal(ig_tell(a, S_REOPEN_CLOSED, NULL, 0, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(atomic_load(&calls), 0); /* still stashed: must not be released */
	assert_int_equal(ig_tell(a, S_OPEN, NULL, 0, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&r->l), 1);
	assert_int_equal(atomic_load(&calls), 1);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&calls), 1);
	rec_free(r);
}

/* The same with a payload too large to travel inline (its own block). */
ISOLATED_TEST(test_restash_after_unstash_keeps_large_payload_intact)
{
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &stash_props, NULL, r);
	size_t n = 4096;
	unsigned char *big = malloc(n);
	assert_non_null(big);
	fill_pattern(big, n, 3);
	assert_int_equal(ig_tell(a, T_DATA, big, n, IG_NOREF), 0);
	assert_int_equal(ig_tell(a, S_REOPEN_CLOSED, NULL, 0, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(ig_tell(a, S_OPEN, NULL, 0, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&r->l), 1);
	item_t it = rec_get(r, 0);
	assert_int_equal(it.size, n);
	assert_true(it.hash == fnv(big, n));
	ig_system_destroy(sys);
	free(big);
	rec_free(r);
}

/* Forwarding a message that came back from the stash. */
ISOLATED_TEST(test_forward_of_an_unstashed_message_arrives_intact)
{
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new(), *r_end = rec_new();
	ig_ref_t end = spawn(sys, &probe_props, NULL, r_end);
	ig_ref_t a = spawn(sys, &stash_props, NULL, r);
	/* open, then switch to "stash; once reopened forward each message to end" */
	assert_int_equal(ig_tell(a, S_OPEN, NULL, 0, IG_NOREF), 0);
	ig_ref_t to[2] = {end, IG_NOREF};
	assert_int_equal(ig_tell(a, S_STASH_FWD, to, sizeof to, IG_NOREF), 0);
	/* payloads past the inline size live in their own blocks */
	unsigned char big[4][100];
	for (int i = 0; i < 4; i++) {
		fill_pattern(big[i], sizeof big[i], (unsigned)i);
		assert_int_equal(ig_tell(a, T_DATA, big[i], sizeof big[i], IG_NOREF), 0);
	}
	assert_int_equal(ig_tell(a, S_OPEN, NULL, 0, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&r_end->l), 4);
	for (int i = 0; i < 4; i++) {
		item_t it = rec_get(r_end, i);
		assert_int_equal(it.type, T_DATA);
		assert_int_equal(it.size, sizeof big[i]);
		assert_memory_equal(it.data, big[i], sizeof big[i]);
	}
	ig_system_destroy(sys);
	rec_free(r);
	rec_free(r_end);
}

/* ========================= stop and poison pill ========================== */

typedef struct stop_env {
	rec_t *rec;
	atomic_int post_stops;
	latch_t stopped;
} stop_env_t;

static int stopper_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(stop_env_t **)state = arg;
	return 0;
}

static int stopper_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	stop_env_t *e = *(stop_env_t **)state;
	probe_state_t ps = {.rec = e->rec};
	return probe_behavior(ctx, &ps, msg);
}

static void stopper_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	stop_env_t *e = *(stop_env_t **)state;
	atomic_fetch_add(&e->post_stops, 1);
	latch_add(&e->stopped, 1);
}

static const ig_props_t stopper_props = {
	.behavior = stopper_behavior,
	.state_size = sizeof(stop_env_t *),
	.init = stopper_init,
	.post_stop = stopper_post_stop,
};

static stop_env_t *stop_env_new(void)
{
	stop_env_t *e = calloc(1, sizeof *e);
	assert_non_null(e);
	e->rec = rec_new();
	latch_init(&e->stopped);
	return e;
}

static void stop_env_free(stop_env_t *e)
{
	latch_destroy(&e->stopped);
	rec_free(e->rec);
	free(e);
}

static void test_stop_is_prompt_and_queued_messages_become_dead_letters(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	stop_env_t *e = stop_env_new();
	ig_ref_t a = spawn(sys, &stopper_props, NULL, e);
	/* count the dead letters addressed to a */
	rec_t *dlr = rec_new();
	ig_ref_t dlsub = spawn(sys, &probe_props, NULL, dlr);
	assert_int_equal(ig_subscribe(sys, dlsub, IG_MSG_DEAD_LETTER), 0);
	uint64_t dl = ig_system_dead_letters(sys);
	assert_int_equal(ig_tell(a, T_BLOCK, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&e->rec->entered, 1, WAIT));
	for (int i = 0; i < 10; i++)
		tell_int(a, i);
	assert_int_equal(ig_stop(a), 0);
	latch_add(&e->rec->gate, 1);
	assert_true(latch_wait(&e->stopped, 1, WAIT));
	assert_true(latch_wait(&dlr->l, 10, WAIT));
	/* only the blocking message was handled */
	assert_int_equal(latch_count(&e->rec->l), 1);
	assert_int_equal(rec_get(e->rec, 0).type, T_BLOCK);
	for (int i = 0; i < 10; i++) {
		item_t it = rec_get(dlr, i);
		assert_int_equal(it.type, IG_MSG_DEAD_LETTER);
		ig_dead_letter_t d;
		memcpy(&d, it.data, sizeof d);
		assert_true(ig_ref_eq(d.recipient, a));
		assert_int_equal(d.type, T_INT);
	}
	assert_int_equal(ig_system_dead_letters(sys), dl + 10);
	assert_int_equal(ig_tell(a, T_INT, &dl, 4, IG_NOREF), IG_ENOACTOR);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&e->post_stops), 1);
	stop_env_free(e);
	rec_free(dlr);
}

static void test_poison_pill_is_processed_in_mailbox_order(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	stop_env_t *e = stop_env_new();
	ig_ref_t a = spawn(sys, &stopper_props, NULL, e);
	uint64_t dl = ig_system_dead_letters(sys);
	for (int i = 1; i <= 3; i++)
		tell_int(a, i);
	assert_int_equal(ig_poison(a), 0);
	for (int i = 4; i <= 5; i++)
		tell_int(a, i);
	det_drain(sys);
	assert_int_equal(latch_count(&e->rec->l), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rec_int(e->rec, i), i + 1);
	assert_int_equal(atomic_load(&e->post_stops), 1);
	assert_int_equal(ig_system_dead_letters(sys), dl + 2);
	assert_int_equal(ig_poison(a), IG_ENOACTOR);
	/* an explicit PoisonPill tell is the same thing */
	stop_env_t *e2 = stop_env_new();
	ig_ref_t b = spawn(sys, &stopper_props, NULL, e2);
	tell_int(b, 1);
	assert_int_equal(ig_tell(b, IG_MSG_POISON_PILL, NULL, 0, IG_NOREF), 0);
	tell_int(b, 2);
	det_drain(sys);
	assert_int_equal(latch_count(&e2->rec->l), 1);
	assert_int_equal(atomic_load(&e2->post_stops), 1);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&e->post_stops), 1);
	stop_env_free(e);
	stop_env_free(e2);
}

/* ig_stop() publishes what its caller wrote before it: post_stop may read
 * it (a stop is a message, and a send happens before its receipt). The
 * actor is mid-turn when the stop arrives, so the stop is taken from the
 * flag rather than from the mailbox. A race here shows under
 * ThreadSanitizer only; the test runs isolated so that report (which halts)
 * fails just this test. */
static int hb_plain;          /* written by the test before ig_stop, plain */
static atomic_int hb_go;      /* relaxed: releases the spinning behavior */
static atomic_int hb_seen = -1;
static latch_t hb_entered, hb_stopped;

static int hb_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
	latch_add(&hb_entered, 1);
	while (!atomic_load_explicit(&hb_go, memory_order_relaxed))
		;
	return 0;
}

static void hb_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	(void)state;
	atomic_store(&hb_seen, hb_plain);
	latch_add(&hb_stopped, 1);
}

static const ig_props_t hb_props = {.behavior = hb_behavior, .post_stop = hb_post_stop};

ISOLATED_TEST(test_stop_happens_after_what_the_stopper_wrote)
{
	latch_init(&hb_entered);
	latch_init(&hb_stopped);
	ig_system_t *sys = mk_system(false);
	ig_ref_t a = spawn(sys, &hb_props, NULL, NULL);
	assert_int_equal(ig_tell(a, T_DATA, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&hb_entered, 1, WAIT));
	hb_plain = 42;
	assert_int_equal(ig_stop(a), 0);
	atomic_store_explicit(&hb_go, 1, memory_order_relaxed);
	assert_true(latch_wait(&hb_stopped, 1, WAIT));
	assert_int_equal(atomic_load(&hb_seen), 42);
	ig_system_destroy(sys);
}

static void test_stop_self_stops_after_the_current_message(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	stop_env_t *e = stop_env_new();
	ig_ref_t a = spawn(sys, &stopper_props, NULL, e);
	tell_int(a, 1);
	assert_int_equal(ig_tell(a, T_STOP_SELF, NULL, 0, IG_NOREF), 0);
	tell_int(a, 2);
	det_drain(sys);
	assert_int_equal(latch_count(&e->rec->l), 1);
	assert_int_equal(atomic_load(&e->post_stops), 1);
	assert_int_equal(ig_stop(a), IG_ENOACTOR);
	ig_system_destroy(sys);
	stop_env_free(e);
}

/* ---- stopping a parent stops its children first ---- */

/* A tree of actors: node n has children 10*n+1 .. 10*n+fanout, spawned in
 * its pre_start; post_stop logs the node's id. */
typedef struct tree_node {
	int id;
	int depth;
	int fanout;
	latch_t *started;
	latch_t *stopped;
} tree_node_t;

static tree_node_t tree_nodes[64];
static atomic_int tree_next;
static const ig_props_t tree_props;
#define tree_props_fwd tree_props

static void tree_pre_start(ig_ctx_t *ctx, void *state)
{
	tree_node_t *n = *(tree_node_t **)state;
	for (int i = 0; n->depth > 0 && i < n->fanout; i++) {
		int idx = atomic_fetch_add(&tree_next, 1);
		CB_CHECK(idx < 64);
		if (idx >= 64)
			break;
		tree_node_t *c = &tree_nodes[idx];
		*c = (tree_node_t){.id = n->id * 10 + i + 1,
				   .depth = n->depth - 1,
				   .fanout = n->fanout,
				   .started = n->started,
				   .stopped = n->stopped};
		ig_ref_t r;
		CB_CHECK(ig_spawn(ctx, &tree_props_fwd, NULL, c, &r) == 0);
	}
	latch_add(n->started, 1);
}

static void tree_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	tree_node_t *n = *(tree_node_t **)state;
	evlog_add(n->id);
	latch_add(n->stopped, 1);
}

static int tree_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(tree_node_t **)state = arg;
	return 0;
}

static int tree_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
	return 0;
}

static const ig_props_t tree_props = {
	.behavior = tree_behavior,
	.state_size = sizeof(tree_node_t *),
	.init = tree_init,
	.pre_start = tree_pre_start,
	.post_stop = tree_post_stop,
};

/* Spawns a tree under /user and waits until every node has started. */
static ig_ref_t tree_spawn(ig_system_t *sys, int depth, int fanout, int total, latch_t *started,
			   latch_t *stopped)
{
	atomic_store(&tree_next, 1);
	tree_nodes[0] = (tree_node_t){
		.id = 1, .depth = depth, .fanout = fanout, .started = started, .stopped = stopped};
	ig_ref_t root = spawn(sys, &tree_props, "tree", &tree_nodes[0]);
	assert_true(latch_wait(started, total, WAIT));
	assert_int_equal(atomic_load(&tree_next), total);
	return root;
}

/* Every node's post_stop comes after the post_stop of all its descendants. */
static void assert_children_stopped_first(const int *ev, int n)
{
	for (int i = 0; i < n; i++) {
		for (int j = i + 1; j < n; j++) {
			int d = ev[j]; /* stopped after ev[i]: must not descend from it */
			while (d > ev[i])
				d /= 10;
			assert_int_not_equal(d, ev[i]);
		}
	}
}

static void test_stopping_a_parent_stops_its_children_first(void **unused)
{
	(void)unused;
	evlog_reset();
	atomic_store(&cb_errors, 0);
	ig_system_t *sys = mk_system(false);
	latch_t started, stopped;
	latch_init(&started);
	latch_init(&stopped);
	ig_ref_t root = tree_spawn(sys, 2, 3, 13, &started, &stopped);
	assert_int_equal(ig_stop(root), 0);
	assert_true(latch_wait(&stopped, 13, WAIT));
	int ev[32];
	int n = evlog_snapshot(ev, 32);
	assert_int_equal(n, 13);
	assert_children_stopped_first(ev, n);
	assert_int_equal(ev[n - 1], 1);
	ig_system_destroy(sys);
	assert_int_equal(evlog_snapshot(ev, 32), 13);
	assert_int_equal(atomic_load(&cb_errors), 0);
	latch_destroy(&started);
	latch_destroy(&stopped);
}

/* ======================== bounded mailboxes ============================== */

static ig_props_t bounded(uint32_t cap, ig_overflow_t pol)
{
	ig_props_t p = probe_props;
	p.mailbox = IG_MAILBOX_BOUNDED;
	p.capacity = cap;
	p.overflow = pol;
	return p;
}

static void test_bounded_reject_returns_efull_to_the_sender(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_props_t props = bounded(3, IG_OVERFLOW_REJECT);
	ig_ref_t a = spawn(sys, &props, NULL, r);
	rec_t *dlr = rec_new();
	ig_ref_t dlsub = spawn(sys, &probe_props, NULL, dlr);
	assert_int_equal(ig_subscribe(sys, dlsub, IG_MSG_DEAD_LETTER), 0);
	uint64_t dl = ig_system_dead_letters(sys);
	assert_int_equal(ig_tell(a, T_BLOCK, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&r->entered, 1, WAIT)); /* the mailbox is empty now */
	for (int i = 1; i <= 3; i++)
		tell_int(a, i);
	int v = 4;
	assert_int_equal(ig_tell(a, T_INT, &v, sizeof v, IG_NOREF), IG_EFULL);
	atomic_int calls = 0;
	assert_int_equal(ig_tell_ptr(a, T_DATA, ptr_new(&calls, NULL, 0), 8, ptr_dtor, IG_NOREF),
			 IG_EFULL);
	assert_int_equal(atomic_load(&calls), 1);
	assert_int_equal(ig_system_dead_letters(sys), dl + 2);
	latch_add(&r->gate, 1);
	assert_true(latch_wait(&r->l, 4, WAIT));
	assert_int_equal(rec_get(r, 0).type, T_BLOCK);
	for (int i = 1; i <= 3; i++)
		assert_int_equal(rec_int(r, i), i);
	/* the dead letters were published with reason IG_EFULL */
	assert_true(latch_wait(&dlr->l, 2, WAIT));
	for (int i = 0; i < 2; i++) {
		ig_dead_letter_t d;
		memcpy(&d, rec_get(dlr, i).data, sizeof d);
		assert_int_equal(d.reason, IG_EFULL);
		assert_true(ig_ref_eq(d.recipient, a));
	}
	/* room again once drained */
	tell_int(a, 5);
	assert_true(latch_wait(&r->l, 5, WAIT));
	assert_int_equal(rec_int(r, 4), 5);
	ig_system_destroy(sys);
	rec_free(r);
	rec_free(dlr);
}

static void test_bounded_reject_deterministic_fill(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_props_t props = bounded(2, IG_OVERFLOW_REJECT);
	ig_ref_t a = spawn(sys, &props, NULL, r);
	det_drain(sys); /* init ran */
	tell_int(a, 1);
	tell_int(a, 2);
	int v = 3;
	assert_int_equal(ig_tell(a, T_INT, &v, sizeof v, IG_NOREF), IG_EFULL);
	/* an ask into a full mailbox fails at once */
	ig_future_t *f = (ig_future_t *)0x1;
	assert_int_equal(ig_ask(sys, a, T_REPLY_ME, NULL, 0, WAIT, &f), IG_EFULL);
	assert_ptr_equal(f, (ig_future_t *)0x1);
	/* runtime messages are never rejected: stop still works */
	assert_int_equal(ig_stop(a), 0);
	det_drain(sys);
	assert_int_equal(ig_tell(a, T_INT, &v, sizeof v, IG_NOREF), IG_ENOACTOR);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_bounded_drop_newest_returns_zero_and_counts_dead_letters(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_props_t props = bounded(3, IG_OVERFLOW_DROP_NEWEST);
	ig_ref_t a = spawn(sys, &props, NULL, r);
	rec_t *dlr = rec_new();
	ig_ref_t dlsub = spawn(sys, &probe_props, NULL, dlr);
	assert_int_equal(ig_subscribe(sys, dlsub, IG_MSG_DEAD_LETTER), 0);
	det_drain(sys);
	uint64_t dl = ig_system_dead_letters(sys);
	for (int i = 1; i <= 5; i++)
		tell_int(a, i); /* asserts 0 for each */
	assert_int_equal(ig_system_dead_letters(sys), dl + 2); /* at once */
	atomic_int calls = 0;
	assert_int_equal(ig_tell_ptr(a, T_DATA, ptr_new(&calls, NULL, 0), 8, ptr_dtor, IG_NOREF), 0);
	assert_int_equal(atomic_load(&calls), 1);
	det_drain(sys);
	assert_int_equal(latch_count(&r->l), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rec_int(r, i), i + 1);
	assert_int_equal(ig_system_dead_letters(sys), dl + 3);
	assert_int_equal(latch_count(&dlr->l), 3);
	for (int i = 0; i < 3; i++) {
		ig_dead_letter_t d;
		memcpy(&d, rec_get(dlr, i).data, sizeof d);
		assert_int_equal(d.reason, IG_EFULL);
		assert_true(ig_ref_eq(d.recipient, a));
		assert_int_equal(d.type, i < 2 ? T_INT : T_DATA);
	}
	ig_system_destroy(sys);
	rec_free(r);
	rec_free(dlr);
}

static void test_bounded_drop_oldest_keeps_the_newest(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_props_t props = bounded(3, IG_OVERFLOW_DROP_OLDEST);
	ig_ref_t a = spawn(sys, &props, NULL, r);
	rec_t *dlr = rec_new();
	ig_ref_t dlsub = spawn(sys, &probe_props, NULL, dlr);
	assert_int_equal(ig_subscribe(sys, dlsub, IG_MSG_DEAD_LETTER), 0);
	det_drain(sys);
	uint64_t dl = ig_system_dead_letters(sys);
	atomic_int calls = 0;
	assert_int_equal(ig_tell_ptr(a, T_DATA, ptr_new(&calls, NULL, 0), 8, ptr_dtor, IG_NOREF), 0);
	for (int i = 1; i <= 5; i++)
		tell_int(a, i);
	det_drain(sys);
	assert_int_equal(atomic_load(&calls), 1); /* the dropped pointer was released */
	assert_int_equal(latch_count(&r->l), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rec_int(r, i), i + 3);
	assert_int_equal(ig_system_dead_letters(sys), dl + 3);
	assert_int_equal(latch_count(&dlr->l), 3);
	for (int i = 0; i < 3; i++) {
		ig_dead_letter_t d;
		memcpy(&d, rec_get(dlr, i).data, sizeof d);
		assert_int_equal(d.reason, IG_EFULL);
		assert_true(ig_ref_eq(d.recipient, a));
		assert_int_equal(d.type, i == 0 ? T_DATA : T_INT);
	}
	ig_system_destroy(sys);
	rec_free(r);
	rec_free(dlr);
}

static void test_bounded_drop_oldest_threaded_keeps_the_newest(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_props_t props = bounded(4, IG_OVERFLOW_DROP_OLDEST);
	ig_ref_t a = spawn(sys, &props, NULL, r);
	uint64_t dl = ig_system_dead_letters(sys);
	assert_int_equal(ig_tell(a, T_BLOCK, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&r->entered, 1, WAIT));
	for (int i = 0; i < 100; i++)
		tell_int(a, i); /* each returns 0 */
	latch_add(&r->gate, 1);
	assert_true(latch_wait(&r->l, 5, WAIT));
	assert_int_equal(rec_get(r, 0).type, T_BLOCK);
	for (int i = 1; i <= 4; i++)
		assert_int_equal(rec_int(r, i), 95 + i);
	assert_int_equal(ig_system_dead_letters(sys), dl + 96);
	ig_system_destroy(sys);
	assert_int_equal(latch_count(&r->l), 5);
	rec_free(r);
}

/* A flood into a small DROP_OLDEST mailbox: the runtime must not need
 * stack in proportion to the number of messages it drops. Driven on a
 * thread with a 512 KiB stack (small, but far more than a turn needs), so
 * the test stays fast whatever the build. */
typedef struct flood {
	int n;
	int received, last;
	uint64_t dead;
	int rc;
} flood_t;

static void *flood_main(void *p)
{
	flood_t *fl = p;
	ig_system_config_t cfg = {.log_level = IG_LOG_OFF, .deterministic = true};
	ig_system_t *sys = NULL;
	if ((fl->rc = ig_system_create(&cfg, &sys)) != 0)
		return NULL;
	rec_t *r = rec_new();
	ig_props_t props = bounded(1, IG_OVERFLOW_DROP_OLDEST);
	ig_ref_t a;
	fl->rc = ig_system_spawn(sys, &props, NULL, r, &a);
	for (int i = 0; fl->rc == 0 && i < fl->n; i++)
		fl->rc = ig_tell(a, T_INT, &i, sizeof i, IG_NOREF);
	ig_ref_t user;
	ig_future_t *f = NULL;
	if (fl->rc == 0 && (fl->rc = ig_lookup(sys, "/user", &user)) == 0 &&
	    (fl->rc = ig_ask(sys, user, T_DATA, NULL, 0, IG_SEC(3600), &f)) == 0) {
		ig_future_wait(f, 0, NULL); /* runs every turn on this thread */
		ig_future_free(f);
	}
	fl->received = latch_count(&r->l);
	if (fl->received)
		memcpy(&fl->last, r->items[fl->received - 1].data, sizeof fl->last);
	fl->dead = ig_system_dead_letters(sys);
	ig_system_destroy(sys);
	rec_free(r);
	return NULL;
}

ISOLATED_TEST(test_bounded_drop_oldest_survives_a_large_flood)
{
	flood_t fl = {.n = 50000, .rc = -1};
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	pthread_t th;
	assert_int_equal(pthread_create(&th, &attr, flood_main, &fl), 0);
	pthread_attr_destroy(&attr);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(fl.rc, 0);
	assert_int_equal(fl.received, 1);
	assert_int_equal(fl.last, fl.n - 1);
	assert_int_equal(fl.dead, (uint64_t)(fl.n - 1));
}

/* =================== dead letters, event stream, logs ==================== */

static void test_dead_letters_are_counted_and_published_with_details(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new(), *dlr = rec_new();
	ig_ref_t gone = spawn(sys, &probe_props, NULL, r);
	ig_ref_t sender = spawn(sys, &probe_props, "sender", r);
	stop_and_wait(sys, gone);
	ig_ref_t dlsub = spawn(sys, &probe_props, NULL, dlr);
	assert_int_equal(ig_subscribe(sys, dlsub, IG_MSG_DEAD_LETTER), 0);
	uint64_t dl = ig_system_dead_letters(sys);
	unsigned char payload[10] = {0};
	assert_int_equal(ig_tell(gone, 77, payload, sizeof payload, sender), IG_ENOACTOR);
	assert_int_equal(ig_system_dead_letters(sys), dl + 1);
	assert_true(latch_wait(&dlr->l, 1, WAIT));
	item_t it = rec_get(dlr, 0);
	assert_int_equal(it.type, IG_MSG_DEAD_LETTER);
	assert_int_equal(it.size, sizeof(ig_dead_letter_t));
	ig_dead_letter_t d;
	memcpy(&d, it.data, sizeof d);
	assert_true(ig_ref_eq(d.sender, sender));
	assert_true(ig_ref_eq(d.recipient, gone));
	assert_int_equal(d.type, 77);
	assert_int_equal(d.size, sizeof payload);
	assert_int_equal(d.reason, IG_ENOACTOR);
	/* after unsubscribing, dead letters are still counted but not delivered */
	assert_int_equal(ig_unsubscribe(sys, dlsub, IG_MSG_DEAD_LETTER), 0);
	assert_int_equal(ig_tell(gone, 78, NULL, 0, IG_NOREF), IG_ENOACTOR);
	assert_int_equal(ig_system_dead_letters(sys), dl + 2);
	int v = 1;
	tell_int(dlsub, v); /* a sync: dlsub handles this after anything queued */
	assert_true(latch_wait(&dlr->l, 2, WAIT));
	assert_int_equal(rec_get(dlr, 1).type, T_INT);
	ig_system_destroy(sys);
	rec_free(r);
	rec_free(dlr);
}

static void test_publish_subscribe_unsubscribe_user_events(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r1 = rec_new(), *r2 = rec_new();
	ig_ref_t s1 = spawn(sys, &probe_props, NULL, r1);
	ig_ref_t s2 = spawn(sys, &probe_props, NULL, r2);
	unsigned delivered = 99;
	int ev = 11;
	assert_int_equal(ig_publish(sys, T_EVENT, &ev, sizeof ev, &delivered), 0);
	assert_int_equal(delivered, 0);
	assert_int_equal(ig_subscribe(sys, s1, T_EVENT), 0);
	assert_int_equal(ig_subscribe(sys, s2, T_EVENT), 0);
	assert_int_equal(ig_subscribe(sys, s2, T_EVENT), 0); /* twice: still one copy */
	assert_int_equal(ig_subscribe(sys, s2, T_EVENT + 1), 0);
	ev = 12;
	assert_int_equal(ig_publish(sys, T_EVENT, &ev, sizeof ev, &delivered), 0);
	assert_int_equal(delivered, 2);
	assert_true(latch_wait(&r1->l, 1, WAIT));
	assert_true(latch_wait(&r2->l, 1, WAIT));
	assert_int_equal(rec_get(r1, 0).type, T_EVENT);
	assert_int_equal(rec_int(r1, 0), 12);
	assert_int_equal(rec_int(r2, 0), 12);
	assert_int_equal(ig_unsubscribe(sys, s1, T_EVENT), 0);
	assert_int_equal(ig_unsubscribe(sys, s1, T_EVENT), IG_ENOTFOUND);
	ev = 13;
	assert_int_equal(ig_publish(sys, T_EVENT, &ev, sizeof ev, &delivered), 0);
	assert_int_equal(delivered, 1);
	ev = 14;
	assert_int_equal(ig_publish(sys, T_EVENT + 1, &ev, sizeof ev, NULL), 0);
	assert_true(latch_wait(&r2->l, 3, WAIT));
	assert_int_equal(rec_int(r2, 1), 13);
	assert_int_equal(rec_get(r2, 2).type, T_EVENT + 1);
	assert_int_equal(rec_int(r2, 2), 14);
	/* r1 got nothing more: sync through it */
	tell_int(s1, 1000);
	assert_true(latch_wait(&r1->l, 2, WAIT));
	assert_int_equal(rec_get(r1, 1).type, T_INT);
	/* errors */
	assert_int_equal(ig_publish(sys, IG_MSG_TERMINATED, &ev, sizeof ev, NULL), IG_EINVAL);
	assert_int_equal(ig_publish(sys, T_EVENT, NULL, 4, NULL), IG_EINVAL);
	assert_int_equal(ig_subscribe(sys, IG_NOREF, T_EVENT), IG_EINVAL);
	/* no dead letters came of any of this */
	assert_int_equal(ig_system_dead_letters(sys), 0);
	ig_system_destroy(sys);
	rec_free(r1);
	rec_free(r2);
}

static void test_publish_to_a_dead_subscriber_is_quiet(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t s = spawn(sys, &probe_props, NULL, r);
	assert_int_equal(ig_subscribe(sys, s, T_EVENT), 0);
	stop_and_wait(sys, s);
	unsigned delivered = 7;
	int ev = 1;
	assert_int_equal(ig_publish(sys, T_EVENT, &ev, sizeof ev, &delivered), 0);
	assert_int_equal(delivered, 0);
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_log_is_published_as_a_log_event(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new(), *lr = rec_new();
	ig_ref_t sub = spawn(sys, &probe_props, NULL, lr);
	assert_int_equal(ig_subscribe(sys, sub, IG_MSG_LOG), 0);
	ig_log(sys, NULL, IG_LOG_INFO, "hello %d", 42);
	assert_true(latch_wait(&lr->l, 1, WAIT));
	item_t it = rec_get(lr, 0);
	assert_int_equal(it.type, IG_MSG_LOG);
	assert_int_equal(it.size, sizeof(ig_log_event_t));
	ig_log_event_t e;
	memcpy(&e, it.data, sizeof e);
	assert_int_equal(e.level, IG_LOG_INFO);
	assert_true(ig_ref_is_none(e.source));
	assert_string_equal(e.text, "hello 42");
	/* from a behavior: the source is the actor */
	ig_ref_t a = spawn(sys, &probe_props, "logger", r);
	assert_int_equal(ig_tell(a, T_LOG, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&lr->l, 2, WAIT));
	memcpy(&e, rec_get(lr, 1).data, sizeof e);
	assert_int_equal(e.level, IG_LOG_WARN);
	assert_true(ig_ref_eq(e.source, a));
	assert_string_equal(e.text, "from behavior");
	/* long lines are cut with "..." */
	char longtext[400];
	memset(longtext, 'q', sizeof longtext - 1);
	longtext[sizeof longtext - 1] = '\0';
	ig_log(sys, NULL, IG_LOG_ERROR, "%s", longtext);
	assert_true(latch_wait(&lr->l, 3, WAIT));
	memcpy(&e, rec_get(lr, 2).data, sizeof e);
	size_t len = strlen(e.text);
	assert_int_equal(len, sizeof e.text - 1);
	assert_string_equal(e.text + len - 3, "...");
	/* a level outside DEBUG..ERROR is not a log line */
	ig_log(sys, NULL, IG_LOG_OFF, "never");
	ig_log(sys, NULL, 99, "never");
	ig_log(sys, NULL, IG_LOG_DEBUG, "debug is published even if not printed");
	assert_true(latch_wait(&lr->l, 4, WAIT));
	memcpy(&e, rec_get(lr, 3).data, sizeof e);
	assert_int_equal(e.level, IG_LOG_DEBUG);
	ig_system_destroy(sys);
	rec_free(r);
	rec_free(lr);
}

/* ============================ shutdown =================================== */

static atomic_int shut_post_stops, shut_finis;

static void shut_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	(void)state;
	atomic_fetch_add(&shut_post_stops, 1);
}

static void shut_fini(void *state)
{
	(void)state;
	atomic_fetch_add(&shut_finis, 1);
}

static int shut_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
	return 0;
}

static const ig_props_t shut_props = {
	.behavior = shut_behavior,
	.post_stop = shut_post_stop,
	.fini = shut_fini,
};

static void shutdown_runs_post_stop_for_every_actor(bool det)
{
	atomic_store(&shut_post_stops, 0);
	atomic_store(&shut_finis, 0);
	ig_system_t *sys = mk_system(det);
	uint64_t base = ig_system_actor_count(sys);
	enum { N = 1000 };
	static ig_ref_t refs[N];
	for (int i = 0; i < N; i++) {
		refs[i] = IG_NOREF;
		assert_int_equal(ig_system_spawn(sys, &shut_props, NULL, NULL, &refs[i]), 0);
		if (i % 3 == 0)
			assert_int_equal(ig_tell(refs[i], T_DATA, NULL, 0, IG_NOREF), 0);
	}
	assert_true(ig_system_actor_count(sys) >= base + N);
	assert_int_equal(ig_system_shutdown(sys, WAIT), 0);
	assert_int_equal(atomic_load(&shut_post_stops), N);
	assert_int_equal(atomic_load(&shut_finis), N);
	assert_int_equal(ig_system_actor_count(sys), 0);
	/* idempotent, and the system refuses new work */
	assert_int_equal(ig_system_shutdown(sys, WAIT), 0);
	ig_ref_t r;
	assert_int_equal(ig_system_spawn(sys, &shut_props, NULL, NULL, &r), IG_ESTOPPED);
	assert_int_equal(ig_tell(refs[0], T_DATA, NULL, 0, IG_NOREF), IG_ENOACTOR);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&shut_post_stops), N);
}

static void test_shutdown_runs_post_stop_for_1000_actors(void **unused)
{
	(void)unused;
	shutdown_runs_post_stop_for_every_actor(false);
}

static void test_shutdown_deterministic_runs_post_stop_for_1000_actors(void **unused)
{
	(void)unused;
	shutdown_runs_post_stop_for_every_actor(true);
}

static void test_shutdown_stops_nested_trees_children_first(void **unused)
{
	(void)unused;
	evlog_reset();
	atomic_store(&cb_errors, 0);
	ig_system_t *sys = mk_system(false);
	latch_t started, stopped;
	latch_init(&started);
	latch_init(&stopped);
	tree_spawn(sys, 2, 2, 7, &started, &stopped);
	assert_int_equal(ig_system_shutdown(sys, WAIT), 0);
	assert_int_equal(latch_count(&stopped), 7);
	int ev[32];
	int n = evlog_snapshot(ev, 32);
	assert_int_equal(n, 7);
	assert_children_stopped_first(ev, n);
	ig_system_destroy(sys);
	assert_int_equal(atomic_load(&cb_errors), 0);
	latch_destroy(&started);
	latch_destroy(&stopped);
}

static void test_shutdown_from_a_behavior_is_refused(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, r);
	assert_int_equal(ig_tell(a, T_SHUTDOWN, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&r->l, 1, WAIT));
	assert_int_equal(rec_get(r, 0).type, T_ACK);
	assert_int_equal(rec_get(r, 0).rc, IG_ESTATE);
	/* the system is still up */
	tell_int(a, 1);
	assert_true(latch_wait(&r->l, 2, WAIT));
	assert_int_equal(ig_system_shutdown(sys, WAIT), 0);
	ig_system_destroy(sys);
	rec_free(r);
}

/* After ig_stash the message is the stash's: stashing or forwarding it
 * again is refused, and it is delivered once after unstash. */
static void test_a_stashed_message_cannot_be_stashed_or_forwarded_again(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, r);
	int v = 5;
	assert_int_equal(ig_tell(a, T_STASH_TWICE, &v, sizeof v, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&r->l), 3);
	assert_int_equal(rec_get(r, 0).rc, 0);
	assert_int_equal(rec_get(r, 1).rc, IG_EINVAL);
	assert_int_equal(rec_get(r, 2).rc, IG_EINVAL);
	ig_system_destroy(sys);
	assert_int_equal(latch_count(&r->l), 3); /* the stashed copy died with the actor */
	rec_free(r);
}

/* ============================ stale refs ================================= */

static void test_tell_to_a_stopped_actor_is_enoactor(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, r);
	stop_and_wait(sys, a);
	int v = 1;
	assert_int_equal(ig_tell(a, T_INT, &v, sizeof v, IG_NOREF), IG_ENOACTOR);
	assert_int_equal(ig_stop(a), IG_ENOACTOR);
	assert_int_equal(ig_poison(a), IG_ENOACTOR);
	char buf[64];
	assert_int_equal(ig_ref_path(a, buf, sizeof buf), IG_ENOACTOR);
	ig_future_t *f = NULL;
	/* an ask to the dead fails at its deadline, not with a crash */
	if (ig_ask(sys, a, T_REPLY_ME, NULL, 0, IG_MS(50), &f) == 0) {
		assert_int_equal(ig_future_wait(f, WAIT, NULL), IG_ETIMEDOUT);
		ig_future_free(f);
	}
	ig_system_destroy(sys);
	rec_free(r);
}

static void test_stale_ref_stays_dead_after_its_slot_is_reused(void **unused)
{
	(void)unused;
	ig_system_t *sys = mk_system(true);
	rec_t *ra = rec_new(), *rb = rec_new();
	ig_ref_t a = spawn(sys, &probe_props, NULL, ra);
	det_drain(sys);
	assert_int_equal(ig_stop(a), 0);
	det_drain(sys);
	/* find a new actor on a's slot (slots are reused quickly) */
	ig_ref_t b = IG_NOREF;
	for (int i = 0; i < 4096 && ig_ref_is_none(b); i++) {
		ig_ref_t x = spawn(sys, &probe_props, NULL, rb);
		if (slot_of(x) == slot_of(a))
			b = x;
	}
	assert_false(ig_ref_is_none(b));
	assert_false(ig_ref_eq(a, b));
	int v = 5;
	uint64_t dl = ig_system_dead_letters(sys);
	assert_int_equal(ig_tell(a, T_INT, &v, sizeof v, IG_NOREF), IG_ENOACTOR);
	assert_int_equal(ig_stop(a), IG_ENOACTOR);
	char buf[64];
	assert_int_equal(ig_ref_path(a, buf, sizeof buf), IG_ENOACTOR);
	det_drain(sys);
	assert_int_equal(latch_count(&rb->l), 0); /* b got nothing meant for a */
	assert_int_equal(ig_system_dead_letters(sys), dl + 1);
	v = 6;
	assert_int_equal(ig_tell(b, T_INT, &v, sizeof v, IG_NOREF), 0);
	det_drain(sys);
	assert_int_equal(latch_count(&rb->l), 1);
	assert_true(ig_ref_eq(rec_get(rb, 0).self, b));
	assert_int_equal(latch_count(&ra->l), 0);
	ig_system_destroy(sys);
	rec_free(ra);
	rec_free(rb);
}

static void test_refs_of_a_destroyed_system_are_dead(void **unused)
{
	(void)unused;
	ig_system_t *s1 = mk_system(false);
	rec_t *r = rec_new();
	ig_ref_t a = spawn(s1, &probe_props, "x", r);
	ig_system_destroy(s1);
	int v = 1;
	assert_int_equal(ig_tell(a, T_INT, &v, sizeof v, IG_NOREF), IG_ENOACTOR);
	atomic_int calls = 0;
	assert_int_equal(ig_tell_ptr(a, T_DATA, ptr_new(&calls, NULL, 0), 8, ptr_dtor, IG_NOREF),
			 IG_ENOACTOR);
	assert_int_equal(atomic_load(&calls), 1);
	/* a newer system (which may get the old one's id) is not affected:
	 * no dead letter counted, none published on its stream */
	ig_system_t *s2 = mk_system(false);
	rec_t *dlr = rec_new();
	ig_ref_t dlsub = spawn(s2, &probe_props, NULL, dlr);
	assert_int_equal(ig_subscribe(s2, dlsub, IG_MSG_DEAD_LETTER), 0);
	assert_int_equal(ig_tell(a, T_INT, &v, sizeof v, IG_NOREF), IG_ENOACTOR);
	uint64_t dl2 = ig_system_dead_letters(s2);
	tell_int(dlsub, 1); /* sync: dlsub handles this after anything queued before */
	assert_true(latch_wait(&dlr->l, 1, WAIT));
	uint32_t first_type = rec_get(dlr, 0).type;
	ig_system_destroy(s2);
	rec_free(r);
	rec_free(dlr);
	assert_int_equal(dl2, 0);
	assert_int_equal(first_type, T_INT);
}

static void test_two_systems_are_independent(void **unused)
{
	(void)unused;
	ig_system_t *s1 = mk_system(false), *s2 = mk_system(false);
	rec_t *r1 = rec_new(), *r2 = rec_new();
	ig_ref_t a1 = spawn(s1, &probe_props, "same", r1);
	ig_ref_t a2 = spawn(s2, &probe_props, "same", r2);
	assert_false(ig_ref_eq(a1, a2));
	ig_ref_t f1, f2;
	assert_int_equal(ig_lookup(s1, "/user/same", &f1), 0);
	assert_int_equal(ig_lookup(s2, "/user/same", &f2), 0);
	assert_true(ig_ref_eq(f1, a1));
	assert_true(ig_ref_eq(f2, a2));
	/* an anonymous actor of one is not found in the other */
	ig_ref_t anon = spawn(s1, &probe_props, NULL, r1);
	char p[64];
	snprintf(p, sizeof p, "/user/$%u", slot_of(anon));
	assert_int_equal(ig_lookup(s2, p, &f2), IG_ENOTFOUND);
	tell_int(a1, 1);
	tell_int(a2, 2);
	assert_true(latch_wait(&r1->l, 1, WAIT));
	assert_true(latch_wait(&r2->l, 1, WAIT));
	assert_int_equal(rec_int(r1, 0), 1);
	assert_int_equal(rec_int(r2, 0), 2);
	/* events stay in their system */
	rec_t *e1 = rec_new(), *e2 = rec_new();
	ig_ref_t sub1 = spawn(s1, &probe_props, NULL, e1);
	ig_ref_t sub2 = spawn(s2, &probe_props, NULL, e2);
	assert_int_equal(ig_subscribe(s1, sub1, T_EVENT), 0);
	assert_int_equal(ig_subscribe(s2, sub2, T_EVENT), 0);
	unsigned delivered;
	int ev = 5;
	assert_int_equal(ig_publish(s1, T_EVENT, &ev, sizeof ev, &delivered), 0);
	assert_int_equal(delivered, 1);
	/* shutting one down leaves the other working */
	assert_int_equal(ig_system_shutdown(s1, WAIT), 0);
	assert_int_equal(ig_tell(a1, T_INT, &ev, sizeof ev, IG_NOREF), IG_ENOACTOR);
	uint64_t dl2 = ig_system_dead_letters(s2);
	tell_int(a2, 3);
	assert_true(latch_wait(&r2->l, 2, WAIT));
	assert_int_equal(rec_int(r2, 1), 3);
	ig_future_t *f;
	assert_int_equal(ig_ask(s2, a2, T_REPLY_ME, &ev, sizeof ev, WAIT, &f), 0);
	assert_int_equal(ig_future_wait(f, WAIT, NULL), 0);
	ig_future_free(f);
	assert_int_equal(ig_system_dead_letters(s2), dl2);
	assert_int_equal(latch_count(&e2->l), 0);
	ig_system_destroy(s1);
	ig_system_destroy(s2);
	rec_free(r1);
	rec_free(r2);
	rec_free(e1);
	rec_free(e2);
}

/* ========================= deterministic systems ========================= */

typedef struct det_env {
	pthread_t threads[64];
	int n;
	pthread_mutex_t mu;
} det_env_t;

static void det_note(det_env_t *e)
{
	pthread_mutex_lock(&e->mu);
	if (e->n < 64)
		e->threads[e->n++] = pthread_self();
	pthread_mutex_unlock(&e->mu);
}

static int det_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(det_env_t **)state = arg;
	det_note(arg);
	return 0;
}

static void det_pre_start(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	det_note(*(det_env_t **)state);
}

static void det_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	det_note(*(det_env_t **)state);
}

static int det_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	det_note(*(det_env_t **)state);
	if (msg->type == T_REPLY_ME)
		return ig_reply(ctx, msg, T_REPLY, NULL, 0);
	return 0;
}

static const ig_props_t det_props = {
	.behavior = det_behavior,
	.state_size = sizeof(det_env_t *),
	.init = det_init,
	.pre_start = det_pre_start,
	.post_stop = det_post_stop,
};

static void test_deterministic_system_runs_only_when_driven_on_the_calling_thread(void **unused)
{
	(void)unused;
	det_env_t env = {.n = 0};
	pthread_mutex_init(&env.mu, NULL);
	ig_system_t *sys = mk_system(true);
	ig_ref_t a = spawn(sys, &det_props, NULL, &env);
	ig_ref_t b = spawn(sys, &det_props, "b", &env);
	tell_int(a, 1);
	tell_int(b, 2);
	pthread_mutex_lock(&env.mu);
	assert_int_equal(env.n, 0); /* nothing runs until the test drives */
	pthread_mutex_unlock(&env.mu);
	ig_future_t *f;
	assert_int_equal(ig_ask(sys, a, T_REPLY_ME, NULL, 0, IG_SEC(1), &f), 0);
	assert_int_equal(ig_future_wait(f, IG_SEC(1), NULL), 0);
	ig_future_free(f);
	det_drain(sys);
	assert_int_equal(ig_system_shutdown(sys, WAIT), 0);
	pthread_mutex_lock(&env.mu);
	/* a: init, pre_start, 2 messages, post_stop; b: init, pre_start, 1, post_stop */
	assert_int_equal(env.n, 9);
	for (int i = 0; i < env.n; i++)
		assert_true(pthread_equal(env.threads[i], pthread_self()));
	pthread_mutex_unlock(&env.mu);
	ig_system_destroy(sys);
	pthread_mutex_destroy(&env.mu);
}

typedef struct det_thread_arg {
	det_env_t env;
	int rc;
} det_thread_arg_t;

static void *det_thread_main(void *p)
{
	det_thread_arg_t *t = p;
	ig_system_config_t cfg = {.log_level = IG_LOG_OFF, .deterministic = true};
	ig_system_t *sys = NULL;
	t->rc = ig_system_create(&cfg, &sys);
	if (t->rc)
		return NULL;
	ig_ref_t a;
	t->rc = ig_system_spawn(sys, &det_props, NULL, &t->env, &a);
	ig_future_t *f = NULL;
	if (t->rc == 0)
		t->rc = ig_ask(sys, a, T_REPLY_ME, NULL, 0, IG_SEC(1), &f);
	if (t->rc == 0)
		t->rc = ig_future_wait(f, IG_SEC(1), NULL);
	ig_future_free(f);
	ig_system_destroy(sys);
	return NULL;
}

static void test_deterministic_system_from_another_thread_runs_there(void **unused)
{
	(void)unused;
	det_thread_arg_t t = {.env.n = 0, .rc = -1};
	pthread_mutex_init(&t.env.mu, NULL);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, det_thread_main, &t), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(t.rc, 0);
	assert_int_equal(t.env.n, 4); /* init, pre_start, the ask, post_stop */
	for (int i = 0; i < t.env.n; i++)
		assert_true(pthread_equal(t.env.threads[i], th));
	pthread_mutex_destroy(&t.env.mu);
}

int main(void)
{
	if (getenv("IG_TEST_CHILD")) {
		in_child = true;
		alarm(30); /* a hung isolated test fails instead of hanging the suite */
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_anonymous_gets_dollar_slot_path),
		cmocka_unit_test(test_spawn_named_is_found_by_path),
		cmocka_unit_test(test_spawn_rejects_invalid_names),
		cmocka_unit_test(test_spawn_duplicate_sibling_name_is_eexist),
		cmocka_unit_test(test_name_is_free_again_after_the_actor_stopped),
		cmocka_unit_test(test_lookup_and_path_of_nested_named_actors),
		cmocka_unit_test(test_lookup_and_path_of_anonymous_children),
		cmocka_unit_test(test_ref_path_errors),
		cmocka_unit_test(test_tell_inline_payloads_arrive_intact),
		cmocka_unit_test(test_tell_large_payload_arrives_intact),
		cmocka_unit_test(test_tell_rejects_system_types_and_missing_data),
		cmocka_unit_test(test_tell_ptr_destructor_runs_once_after_the_behavior),
		cmocka_unit_test(test_tell_ptr_to_dead_actor_is_enoactor_and_destructor_runs_once),
		cmocka_unit_test(test_tell_ptr_dropped_by_stop_runs_destructor_once),
		cmocka_unit_test(test_order_is_kept_for_one_sender),
		cmocka_unit_test(test_order_is_kept_per_sender_with_concurrent_actor_senders),
		cmocka_unit_test(test_reply_goes_to_the_sender_with_self_as_sender),
		cmocka_unit_test(test_forward_keeps_the_original_sender_and_payload),
		cmocka_unit_test(test_forward_to_a_dead_actor_is_a_dead_letter_and_frees_once),
		cmocka_unit_test(test_lifecycle_hooks_run_in_order),
		cmocka_unit_test(test_init_failure_stops_the_actor_and_watchers_see_the_reason),
		cmocka_unit_test(test_init_failure_turns_waiting_messages_into_dead_letters),
		cmocka_unit_test(test_become_and_unbecome_follow_a_stack),
		cmocka_unit_test(test_become_with_null_behavior_is_einval),
		cmocka_unit_test(test_unstash_all_puts_stashed_first_in_stash_order),
		cmocka_unit_test(test_unstash_all_threaded_keeps_order),
		cmocka_unit_test(test_stash_keeps_large_and_pointer_payloads),
		cmocka_unit_test(test_stashed_messages_become_dead_letters_when_the_actor_stops),
		cmocka_unit_test(test_restash_after_unstash_keeps_messages_intact),
		cmocka_unit_test(test_restash_after_unstash_keeps_pointer_payload_alive),
		cmocka_unit_test(test_restash_after_unstash_keeps_large_payload_intact),
		cmocka_unit_test(test_forward_of_an_unstashed_message_arrives_intact),
		cmocka_unit_test(test_stop_is_prompt_and_queued_messages_become_dead_letters),
		cmocka_unit_test(test_poison_pill_is_processed_in_mailbox_order),
		cmocka_unit_test(test_stop_happens_after_what_the_stopper_wrote),
		cmocka_unit_test(test_stop_self_stops_after_the_current_message),
		cmocka_unit_test(test_stopping_a_parent_stops_its_children_first),
		cmocka_unit_test(test_bounded_reject_returns_efull_to_the_sender),
		cmocka_unit_test(test_bounded_reject_deterministic_fill),
		cmocka_unit_test(test_bounded_drop_newest_returns_zero_and_counts_dead_letters),
		cmocka_unit_test(test_bounded_drop_oldest_keeps_the_newest),
		cmocka_unit_test(test_bounded_drop_oldest_threaded_keeps_the_newest),
		cmocka_unit_test(test_bounded_drop_oldest_survives_a_large_flood),
		cmocka_unit_test(test_dead_letters_are_counted_and_published_with_details),
		cmocka_unit_test(test_publish_subscribe_unsubscribe_user_events),
		cmocka_unit_test(test_publish_to_a_dead_subscriber_is_quiet),
		cmocka_unit_test(test_log_is_published_as_a_log_event),
		cmocka_unit_test(test_shutdown_runs_post_stop_for_1000_actors),
		cmocka_unit_test(test_shutdown_deterministic_runs_post_stop_for_1000_actors),
		cmocka_unit_test(test_shutdown_stops_nested_trees_children_first),
		cmocka_unit_test(test_shutdown_from_a_behavior_is_refused),
		cmocka_unit_test(test_a_stashed_message_cannot_be_stashed_or_forwarded_again),
		cmocka_unit_test(test_tell_to_a_stopped_actor_is_enoactor),
		cmocka_unit_test(test_stale_ref_stays_dead_after_its_slot_is_reused),
		cmocka_unit_test(test_refs_of_a_destroyed_system_are_dead),
		cmocka_unit_test(test_two_systems_are_independent),
		cmocka_unit_test(test_deterministic_system_runs_only_when_driven_on_the_calling_thread),
		cmocka_unit_test(test_deterministic_system_from_another_thread_runs_there),
	};
	/* TEST_FILTER=pattern runs only the matching tests (cmocka wildcards). */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	if (getenv("TEST_SKIP"))
		cmocka_set_skip_filter(getenv("TEST_SKIP"));
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	graveyard_free();
	return failed;
}
