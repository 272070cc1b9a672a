/* The testkit (<ingot/testkit.h>): probe actors that queue copies of what
 * they receive, waits that either run a deterministic system on the calling
 * thread or block on a condition variable, virtual time, event capture, and
 * the one-line descriptions that failed expectations leave behind.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdalign.h>
#include <string.h>
#include <time.h>

#include <ingot/testkit.h>

#include "runtime_int.h"

/* Watch and unwatch must run inside the probe's behavior, so the test
 * thread sends its probe a control request of a type ig_tell refuses to
 * users; the probe pointer inside proves the request is ours. */
#define TK_CTRL (IG_MSG_SYSTEM_USER_END + 0x100)

enum { TK_WATCH = 1, TK_UNWATCH };

typedef struct tk_ctrl {
	const ig_probe_t *probe;
	int op;
	uint64_t seq;
	ig_ref_t ref;
} tk_ctrl_t;

/* A received message: the envelope the test sees and its payload copy. */
typedef struct tk_entry {
	struct tk_entry *next;
	ig_msg_t msg; /* msg.data points into the same block, or is NULL */
} tk_entry_t;

/* The payload follows the entry at an offset any type may be read from. */
#define TK_PAYLOAD_OFF \
	((sizeof(tk_entry_t) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

#define TK_ERR_MAX 512

struct ig_probe {
	/* Shared by the test thread and the probe actor; under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* a message arrived, a request was handled, or stop */
	tk_entry_t *head, *tail;  /* received, not taken */
	size_t len;
	uint64_t received;        /* ever, taken or not */
	uint64_t lost;            /* copies that failed for lack of memory */
	uint64_t ctrl_done;       /* seq of the last control request handled */
	int ctrl_rc;              /* its result */
	bool stopped;             /* the probe actor ran post_stop */
	/* The test's handle and the probe actor each hold one reference. */
	_Atomic int refs;
	/* The test thread's alone. */
	ig_system_t *sys;
	ig_ref_t ref;
	uint64_t ctrl_sent;
	tk_entry_t *held, *held_tail; /* handed out by the last receiving call */
	ig_ref_t last_sender;
	bool has_last;
	uint32_t *subs;           /* event types this probe subscribed to */
	size_t nsubs;
	char err[TK_ERR_MAX];
};

static _Thread_local char tls_err[TK_ERR_MAX];

/* ---- failure descriptions ------------------------------------------------------ */

const char *ig_testkit_last_error(void)
{
	return tls_err;
}

void ig_testkit_clear_error(void)
{
	tls_err[0] = '\0';
}

const char *ig_probe_last_error(const ig_probe_t *p)
{
	return p ? p->err : "";
}

static int fail(ig_probe_t *p, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records why a call failed, for the probe and for the thread. */
static int fail(ig_probe_t *p, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof p->err, fmt, ap);
	va_end(ap);
	memcpy(tls_err, p->err, sizeof tls_err);
	return rc;
}

static void fmt_duration(ig_duration_t d, char *buf, size_t len)
{
	if (d == IG_FOREVER)
		snprintf(buf, len, "forever");
	else if (d % IG_SEC(1) == 0)
		snprintf(buf, len, "%" PRId64 " s", d / IG_SEC(1));
	else if (d % IG_MS(1) == 0)
		snprintf(buf, len, "%" PRId64 " ms", d / IG_MS(1));
	else if (d % IG_US(1) == 0)
		snprintf(buf, len, "%" PRId64 " us", d / IG_US(1));
	else
		snprintf(buf, len, "%" PRId64 " ns", d);
}

/* "within 3 s (virtual)": which clock a timeout ran on matters when
 * reading a failure. */
static void fmt_within(const ig_probe_t *p, ig_duration_t d, char *buf, size_t len)
{
	char dur[32];
	fmt_duration(d, dur, sizeof dur);
	snprintf(buf, len, "within %s%s", dur, p->sys->cfg.deterministic ? " (virtual)" : "");
}

static void fmt_ref(ig_ref_t r, char *buf, size_t len)
{
	if (ig_ref_is_none(r))
		snprintf(buf, len, "no sender");
	else if (ig_ref_path(r, buf, len) != 0)
		snprintf(buf, len, "a stopped actor (ref 0x%" PRIx64 ")", r.h);
}

static void fmt_bytes(const ig_msg_t *m, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	const unsigned char *b = m->data;
	for (uint32_t i = 0; b && i < m->size && i < 8 && used + 4 < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%02x", i ? " " : "", b[i]);
	if (m->size > 8 && used + 5 < len)
		snprintf(buf + used, len - used, " ...");
}

/* By name: the numbers are the header's business. */
static const char *level_name(int level)
{
	switch (level) {
	case IG_LOG_DEBUG: return "debug";
	case IG_LOG_INFO: return "info";
	case IG_LOG_WARN: return "warn";
	case IG_LOG_ERROR: return "error";
	default: return "?";
	}
}

static void describe(const ig_msg_t *m, char *buf, size_t len)
{
	char who[160], bytes[40];
	if (m->type == IG_MSG_TERMINATED && m->size == sizeof(ig_terminated_t)) {
		ig_terminated_t t;
		memcpy(&t, m->data, sizeof t);
		snprintf(buf, len, "Terminated(ref 0x%" PRIx64 ", reason %d)", t.ref.h, t.reason);
	} else if (m->type == IG_MSG_DEAD_LETTER && m->size == sizeof(ig_dead_letter_t)) {
		ig_dead_letter_t d;
		memcpy(&d, m->data, sizeof d);
		fmt_ref(d.recipient, who, sizeof who);
		snprintf(buf, len, "DeadLetter(type %" PRIu32 ", %" PRIu32 " bytes, to %s, %s)",
			 d.type, d.size, who, ig_strerror(d.reason));
	} else if (m->type == IG_MSG_LOG && m->size == sizeof(ig_log_event_t)) {
		const ig_log_event_t *e = m->data;
		snprintf(buf, len, "Log(%s, \"%.80s\")", level_name(e->level), e->text);
	} else {
		fmt_ref(m->sender, who, sizeof who);
		fmt_bytes(m, bytes, sizeof bytes);
		snprintf(buf, len, "type %" PRIu32 " (%" PRIu32 " bytes%s%s) from %s", m->type,
			 m->size, bytes[0] ? ": " : "", bytes, who);
	}
}

/* ---- the shared queue ------------------------------------------------------------ */

static void entries_free(tk_entry_t *e)
{
	while (e) {
		tk_entry_t *next = e->next;
		free(e);
		e = next;
	}
}

static void probe_unref(ig_probe_t *p)
{
	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	entries_free(p->head);
	entries_free(p->held);
	free(p->subs);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* Copies msg, payload included (pointer payloads: size bytes at data). */
static tk_entry_t *entry_copy(const ig_msg_t *msg)
{
	size_t size = msg->data ? msg->size : 0;
	tk_entry_t *e = malloc(TK_PAYLOAD_OFF + size);
	if (!e)
		return NULL;
	e->next = NULL;
	e->msg = *msg;
	e->msg.size = (uint32_t)size;
	e->msg.data = size ? (char *)e + TK_PAYLOAD_OFF : NULL;
	if (size)
		memcpy((char *)e + TK_PAYLOAD_OFF, msg->data, size);
	return e;
}

/* Caller holds mu and knows the queue is not empty. */
static tk_entry_t *take_locked(ig_probe_t *p)
{
	tk_entry_t *e = p->head;
	p->head = e->next;
	if (!p->head)
		p->tail = NULL;
	p->len--;
	e->next = NULL;
	return e;
}

/* Hands e out to the test: it lives until the next receiving call. */
static void hold(ig_probe_t *p, tk_entry_t *e)
{
	if (p->held_tail)
		p->held_tail->next = e;
	else
		p->held = e;
	p->held_tail = e;
	p->last_sender = e->msg.sender;
	p->has_last = true;
}

/* Every receiving call starts here: what the last one handed out goes. */
static void begin(ig_probe_t *p)
{
	entries_free(p->held);
	p->held = p->held_tail = NULL;
	p->err[0] = '\0';
}

/* ---- the probe actor ------------------------------------------------------------- */

static void handle_ctrl(ig_ctx_t *ctx, ig_probe_t *p, const tk_ctrl_t *c)
{
	int rc = c->op == TK_WATCH ? ig_watch(ctx, c->ref) : ig_unwatch(ctx, c->ref);
	pthread_mutex_lock(&p->mu);
	p->ctrl_rc = rc;
	p->ctrl_done = c->seq;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Never fails: a failure would restart the probe, and its state (the
 * shared probe) must not be rebuilt behind the test's back. */
static int probe_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	ig_probe_t *p = *(ig_probe_t **)state;
	if (msg->type == TK_CTRL && msg->size == sizeof(tk_ctrl_t)) {
		tk_ctrl_t c;
		memcpy(&c, msg->data, sizeof c);
		if (c.probe == p) {
			handle_ctrl(ctx, p, &c);
			return 0;
		}
	}
	tk_entry_t *e = entry_copy(msg);
	pthread_mutex_lock(&p->mu);
	p->received++;
	if (e) {
		if (p->tail)
			p->tail->next = e;
		else
			p->head = e;
		p->tail = e;
		p->len++;
	} else {
		p->lost++;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static int probe_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(ig_probe_t **)state = arg;
	return 0;
}

static void probe_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	ig_probe_t *p = *(ig_probe_t **)state;
	pthread_mutex_lock(&p->mu);
	p->stopped = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void probe_fini(void *state)
{
	probe_unref(*(ig_probe_t **)state);
}

static const ig_props_t probe_props = {
	.behavior = probe_behavior,
	.state_size = sizeof(ig_probe_t *),
	.init = probe_init,
	.post_stop = probe_post_stop,
	.fini = probe_fini,
};

/* ---- waiting --------------------------------------------------------------------- */

enum { TK_QUEUED, TK_CTRL_DONE };

typedef struct tk_wait {
	ig_probe_t *p;
	int what;   /* TK_QUEUED: len >= n; TK_CTRL_DONE: ctrl_done >= n */
	uint64_t n;
} tk_wait_t;

/* A stopped probe ends every wait: nothing more will come. */
static bool met_locked(const tk_wait_t *w)
{
	const ig_probe_t *p = w->p;
	if (p->stopped)
		return true;
	return w->what == TK_QUEUED ? p->len >= w->n : p->ctrl_done >= w->n;
}

static bool met(void *arg)
{
	tk_wait_t *w = arg;
	pthread_mutex_lock(&w->p->mu);
	bool m = met_locked(w);
	pthread_mutex_unlock(&w->p->mu);
	return m;
}

static int64_t deadline_after(const ig_system_t *sys, ig_duration_t t)
{
	int64_t now = ig_system_now(sys);
	return t >= INT64_MAX - now ? INT64_MAX : now + t;
}

/* Waits until w is met or the system's clock reaches deadline. A
 * deterministic system is run right here; callers check the outcome under
 * the lock afterwards. */
static void wait_for(tk_wait_t *w, int64_t deadline)
{
	ig_probe_t *p = w->p;
	if (p->sys->cfg.deterministic) {
		ig__det_run(p->sys, deadline, met, w);
		return;
	}
	struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
	pthread_mutex_lock(&p->mu);
	while (!met_locked(w)) {
		if (deadline == INT64_MAX)
			pthread_cond_wait(&p->cv, &p->mu);
		else if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&p->mu);
}

/* Waits for the next message up to deadline and takes it (held). */
static int next_msg(ig_probe_t *p, int64_t deadline, tk_entry_t **out)
{
	tk_wait_t w = {.p = p, .what = TK_QUEUED, .n = 1};
	wait_for(&w, deadline);
	tk_entry_t *e = NULL;
	pthread_mutex_lock(&p->mu);
	int rc = 0;
	if (p->len)
		e = take_locked(p);
	else
		rc = p->stopped ? IG_ESTOPPED : IG_ETIMEDOUT;
	pthread_mutex_unlock(&p->mu);
	if (e) {
		hold(p, e);
		*out = e;
	}
	return rc;
}

static int fail_nothing(ig_probe_t *p, int rc, const char *what, ig_duration_t timeout)
{
	char within[64];
	fmt_within(p, timeout, within, sizeof within);
	if (rc == IG_ESTOPPED)
		return fail(p, rc, "expected %s, but the probe actor stopped", what);
	return fail(p, rc, "expected %s %s, got nothing", what, within);
}

/* The shape of every "the next message must be ..." expectation. */
static int expect_next(ig_probe_t *p, ig_duration_t timeout, ig_probe_pred_fn match,
		       void *arg, const char *what, const ig_msg_t **out)
{
	begin(p);
	if (timeout < 0)
		return fail(p, IG_EINVAL, "expected %s: negative timeout", what);
	tk_entry_t *e;
	int rc = next_msg(p, deadline_after(p->sys, timeout), &e);
	if (rc)
		return fail_nothing(p, rc, what, timeout);
	if (!match(&e->msg, arg)) {
		char got[256];
		describe(&e->msg, got, sizeof got);
		return fail(p, IG_EINVAL, "expected %s, got %s", what, got);
	}
	if (out)
		*out = &e->msg;
	return 0;
}

/* ---- systems and virtual time ------------------------------------------------------ */

int ig_testkit_system_create(bool deterministic, ig_system_t **out)
{
	ig_system_config_t cfg = {
		.name = deterministic ? "test-det" : "test",
		.threads = 2,
		.log_level = IG_LOG_OFF,
		.deterministic = deterministic,
	};
	return ig_system_create(&cfg, out);
}

int64_t ig_testkit_now(const ig_system_t *sys)
{
	return ig_system_now(sys);
}

int ig_testkit_advance(ig_system_t *sys, ig_duration_t d)
{
	if (!sys || d < 0)
		return IG_EINVAL;
	if (!sys->cfg.deterministic)
		return IG_ESTATE;
	ig__det_run(sys, deadline_after(sys, d), NULL, NULL);
	return 0;
}

int ig_testkit_run_until_idle(ig_system_t *sys)
{
	if (!sys)
		return IG_EINVAL;
	if (!sys->cfg.deterministic)
		return IG_ESTATE;
	ig__det_run(sys, ig_system_now(sys), NULL, NULL);
	return 0;
}

/* ---- probes ---------------------------------------------------------------------- */

int ig_probe_create(ig_system_t *sys, ig_probe_t **out)
{
	if (!sys || !out)
		return IG_EINVAL;
	ig_probe_t *p = calloc(1, sizeof *p);
	if (!p)
		return IG_ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	/* Threaded systems' clock is CLOCK_MONOTONIC: deadlines compare as is. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->sys = sys;
	atomic_init(&p->refs, 2);
	/* Under /system: a probe outlives the /user actors it watches while
	 * the system shuts down. */
	int rc = ig__spawn(sys, sys->system, &probe_props, NULL, p, 0, NULL, &p->ref);
	if (rc) {
		atomic_store(&p->refs, 1);
		probe_unref(p);
		return rc;
	}
	*out = p;
	return 0;
}

void ig_probe_destroy(ig_probe_t *p)
{
	if (!p)
		return;
	/* A stopped probe actor means a system shut down (maybe destroyed):
	 * then the system must not be touched, and nothing is left to undo. */
	pthread_mutex_lock(&p->mu);
	bool stopped = p->stopped;
	pthread_mutex_unlock(&p->mu);
	if (!stopped) {
		for (size_t i = 0; i < p->nsubs; i++)
			ig_unsubscribe(p->sys, p->ref, p->subs[i]);
		ig_stop(p->ref);
	}
	begin(p);
	probe_unref(p);
}

ig_ref_t ig_probe_ref(const ig_probe_t *p)
{
	return p ? p->ref : IG_NOREF;
}

static bool is_type(const ig_msg_t *m, void *arg)
{
	return m->type == *(const uint32_t *)arg;
}

int ig_probe_expect_type(ig_probe_t *p, uint32_t type, ig_duration_t timeout,
			 const ig_msg_t **msg_out)
{
	if (!p)
		return IG_EINVAL;
	char what[48];
	snprintf(what, sizeof what, "a message of type %" PRIu32, type);
	return expect_next(p, timeout, is_type, &type, what, msg_out);
}

int ig_probe_expect_match(ig_probe_t *p, ig_probe_pred_fn pred, void *arg,
			  ig_duration_t timeout, const ig_msg_t **msg_out)
{
	if (!p || !pred)
		return p ? fail(p, IG_EINVAL, "no predicate") : IG_EINVAL;
	return expect_next(p, timeout, pred, arg, "a message matching the predicate", msg_out);
}

typedef struct tk_exact {
	uint32_t type;
	const void *data;
	size_t size;
} tk_exact_t;

static bool is_exact(const ig_msg_t *m, void *arg)
{
	const tk_exact_t *x = arg;
	return m->type == x->type && m->size == x->size &&
	       (x->size == 0 || memcmp(m->data, x->data, x->size) == 0);
}

int ig_probe_expect_msg(ig_probe_t *p, uint32_t type, const void *data, size_t size,
			ig_duration_t timeout, const ig_msg_t **msg_out)
{
	if (!p)
		return IG_EINVAL;
	if (size && !data)
		return fail(p, IG_EINVAL, "expected payload has size %zu but no data", size);
	tk_exact_t x = {.type = type, .data = data, .size = size};
	char what[160], bytes[40];
	ig_msg_t shown = {.type = type, .size = (uint32_t)size, .data = data};
	fmt_bytes(&shown, bytes, sizeof bytes);
	snprintf(what, sizeof what, "type %" PRIu32 " (%zu bytes%s%s)", type, size,
		 bytes[0] ? ": " : "", bytes);
	return expect_next(p, timeout, is_exact, &x, what, msg_out);
}

int ig_probe_expect_no_msg(ig_probe_t *p, ig_duration_t d)
{
	if (!p)
		return IG_EINVAL;
	begin(p);
	char dur[32];
	fmt_duration(d, dur, sizeof dur);
	if (d < 0)
		return fail(p, IG_EINVAL, "expected no message: negative duration");
	tk_wait_t w = {.p = p, .what = TK_QUEUED, .n = 1};
	wait_for(&w, deadline_after(p->sys, d));
	tk_entry_t *e = NULL;
	pthread_mutex_lock(&p->mu);
	bool stopped = p->stopped;
	if (p->len)
		e = take_locked(p);
	pthread_mutex_unlock(&p->mu);
	if (e) {
		char got[256];
		hold(p, e);
		describe(&e->msg, got, sizeof got);
		return fail(p, IG_EINVAL, "expected no message for %s%s, got %s", dur,
			    p->sys->cfg.deterministic ? " (virtual)" : "", got);
	}
	if (stopped)
		return fail(p, IG_ESTOPPED, "expected no message, but the probe actor stopped");
	return 0;
}

int ig_probe_receive_n(ig_probe_t *p, size_t n, ig_duration_t timeout,
		       const ig_msg_t **msgs_out)
{
	if (!p)
		return IG_EINVAL;
	begin(p);
	if (n == 0 || timeout < 0)
		return fail(p, IG_EINVAL, "receive_n: n must be > 0 and timeout >= 0");
	tk_wait_t w = {.p = p, .what = TK_QUEUED, .n = n};
	wait_for(&w, deadline_after(p->sys, timeout));
	pthread_mutex_lock(&p->mu);
	size_t have = p->len;
	bool stopped = p->stopped;
	tk_entry_t *first = have >= n ? p->head : NULL;
	for (size_t i = 0; first && i < n; i++)
		hold(p, take_locked(p));
	pthread_mutex_unlock(&p->mu);
	if (!first) {
		char within[64];
		fmt_within(p, timeout, within, sizeof within);
		return fail(p, stopped ? IG_ESTOPPED : IG_ETIMEDOUT,
			    "expected %zu messages %s, got %zu%s", n, within, have,
			    stopped ? " (the probe actor stopped)" : "");
	}
	size_t i = 0;
	for (tk_entry_t *e = p->held; msgs_out && e; e = e->next)
		msgs_out[i++] = &e->msg;
	return 0;
}

/* Takes messages until one matches; the rest are dropped. */
static int fish(ig_probe_t *p, ig_probe_pred_fn pred, void *arg, ig_duration_t timeout,
		const char *what, tk_entry_t **out)
{
	begin(p);
	if (timeout < 0)
		return fail(p, IG_EINVAL, "fishing for %s: negative timeout", what);
	int64_t deadline = deadline_after(p->sys, timeout);
	size_t skipped = 0;
	char last[256] = "";
	for (;;) {
		tk_entry_t *e;
		int rc = next_msg(p, deadline, &e);
		if (rc) {
			char within[64];
			fmt_within(p, timeout, within, sizeof within);
			return fail(p, rc, "fished for %s %s: %s; skipped %zu%s%s", what, within,
				    rc == IG_ESTOPPED ? "the probe actor stopped"
						      : "none arrived",
				    skipped, skipped ? ", the last: " : "", last);
		}
		if (pred(&e->msg, arg)) {
			*out = e;
			return 0;
		}
		describe(&e->msg, last, sizeof last);
		skipped++;
		/* Skipped messages are not handed out: free them at once. */
		begin(p);
	}
}

int ig_probe_fish(ig_probe_t *p, ig_probe_pred_fn pred, void *arg, ig_duration_t timeout,
		  const ig_msg_t **msg_out)
{
	if (!p)
		return IG_EINVAL;
	if (!pred)
		return fail(p, IG_EINVAL, "no predicate");
	tk_entry_t *e;
	int rc = fish(p, pred, arg, timeout, "a message matching the predicate", &e);
	if (rc == 0 && msg_out)
		*msg_out = &e->msg;
	return rc;
}

/* Counting is only meaningful once a deterministic system has caught up. */
static void catch_up(ig_probe_t *p)
{
	if (p->sys->cfg.deterministic)
		ig__det_run(p->sys, ig_system_now(p->sys), NULL, NULL);
}

size_t ig_probe_pending(ig_probe_t *p)
{
	if (!p)
		return 0;
	catch_up(p);
	pthread_mutex_lock(&p->mu);
	size_t n = p->len;
	pthread_mutex_unlock(&p->mu);
	return n;
}

uint64_t ig_probe_received(ig_probe_t *p)
{
	if (!p)
		return 0;
	catch_up(p);
	pthread_mutex_lock(&p->mu);
	uint64_t n = p->received;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int ig_probe_send(ig_probe_t *p, ig_ref_t to, uint32_t type, const void *data, size_t size)
{
	if (!p)
		return IG_EINVAL;
	return ig_tell(to, type, data, size, p->ref);
}

int ig_probe_reply(ig_probe_t *p, const ig_msg_t *msg, uint32_t type, const void *data,
		   size_t size)
{
	if (!p)
		return IG_EINVAL;
	p->err[0] = '\0';
	if (!msg && !p->has_last)
		return fail(p, IG_ESTATE, "reply: the probe has taken no message yet");
	ig_ref_t to = msg ? msg->sender : p->last_sender;
	if (ig_ref_is_none(to))
		return fail(p, IG_ENOACTOR, "reply: the message has no sender");
	return ig_tell(to, type, data, size, p->ref);
}

/* ---- death watch ------------------------------------------------------------------- */

/* Has the probe actor run a control request and waits for its result. */
static int ctrl(ig_probe_t *p, int op, ig_ref_t ref)
{
	pthread_mutex_lock(&p->mu);
	bool stopped = p->stopped;
	pthread_mutex_unlock(&p->mu);
	if (stopped)
		return fail(p, IG_ESTOPPED, "the probe actor stopped");
	uint64_t seq = ++p->ctrl_sent;
	tk_ctrl_t c = {.probe = p, .op = op, .seq = seq, .ref = ref};
	ig__msg_t *m = ig__msg_copy(TK_CTRL, &c, sizeof c, IG_NOREF);
	if (!m)
		return IG_ENOMEM;
	int rc = ig__send(p->ref, m);
	if (rc)
		return fail(p, rc == IG_ENOACTOR ? IG_ESTOPPED : rc, "the probe actor is gone");
	/* No virtual time needs to pass for the probe to handle it; a threaded
	 * dispatcher that does not get to it in 10 s is stuck, not slow. */
	tk_wait_t w = {.p = p, .what = TK_CTRL_DONE, .n = seq};
	int64_t now = ig_system_now(p->sys);
	wait_for(&w, p->sys->cfg.deterministic ? now : deadline_after(p->sys, IG_SEC(10)));
	pthread_mutex_lock(&p->mu);
	rc = p->ctrl_done >= seq ? p->ctrl_rc : p->stopped ? IG_ESTOPPED : IG_ETIMEDOUT;
	pthread_mutex_unlock(&p->mu);
	if (rc)
		return fail(p, rc, "%s 0x%" PRIx64 ": %s", op == TK_WATCH ? "watch" : "unwatch",
			    ref.h, ig_strerror(rc));
	return 0;
}

int ig_probe_watch(ig_probe_t *p, ig_ref_t ref)
{
	if (!p)
		return IG_EINVAL;
	p->err[0] = '\0';
	if (ig_ref_is_none(ref) || ig_ref_eq(ref, p->ref))
		return fail(p, IG_EINVAL, "watch: IG_NOREF or the probe itself");
	return ctrl(p, TK_WATCH, ref);
}

int ig_probe_unwatch(ig_probe_t *p, ig_ref_t ref)
{
	if (!p)
		return IG_EINVAL;
	p->err[0] = '\0';
	return ctrl(p, TK_UNWATCH, ref);
}

static bool is_terminated_of(const ig_msg_t *m, void *arg)
{
	if (m->type != IG_MSG_TERMINATED || m->size != sizeof(ig_terminated_t))
		return false;
	ig_terminated_t t;
	memcpy(&t, m->data, sizeof t);
	return ig_ref_eq(t.ref, *(const ig_ref_t *)arg);
}

int ig_probe_expect_terminated(ig_probe_t *p, ig_ref_t ref, ig_duration_t timeout,
			       int *reason_out)
{
	if (!p)
		return IG_EINVAL;
	char what[64];
	snprintf(what, sizeof what, "Terminated(ref 0x%" PRIx64 ")", ref.h);
	const ig_msg_t *m = NULL;
	int rc = expect_next(p, timeout, is_terminated_of, &ref, what, &m);
	if (rc == 0 && reason_out) {
		ig_terminated_t t;
		memcpy(&t, m->data, sizeof t);
		*reason_out = t.reason;
	}
	return rc;
}

/* ---- capturing events ---------------------------------------------------------------- */

int ig_testkit_capture_create(ig_system_t *sys, uint32_t type, ig_probe_t **out)
{
	if (!sys || !out)
		return IG_EINVAL;
	ig_probe_t *p;
	int rc = ig_probe_create(sys, &p);
	if (rc)
		return rc;
	p->subs = malloc(sizeof *p->subs);
	rc = p->subs ? ig_subscribe(sys, p->ref, type) : IG_ENOMEM;
	if (rc) {
		ig_probe_destroy(p);
		return rc;
	}
	p->subs[p->nsubs++] = type;
	*out = p;
	return 0;
}

typedef struct tk_dl_want {
	ig_ref_t recipient;
	uint32_t type;
} tk_dl_want_t;

static bool is_dead_letter(const ig_msg_t *m, void *arg)
{
	const tk_dl_want_t *w = arg;
	if (m->type != IG_MSG_DEAD_LETTER || m->size != sizeof(ig_dead_letter_t))
		return false;
	ig_dead_letter_t d;
	memcpy(&d, m->data, sizeof d);
	return (ig_ref_is_none(w->recipient) || ig_ref_eq(w->recipient, d.recipient)) &&
	       (w->type == IG_TESTKIT_ANY_TYPE || w->type == d.type);
}

int ig_probe_expect_dead_letter(ig_probe_t *p, ig_ref_t recipient, uint32_t type,
				ig_duration_t timeout, ig_dead_letter_t *out)
{
	if (!p)
		return IG_EINVAL;
	tk_dl_want_t w = {.recipient = recipient, .type = type};
	char what[160], to[96], ty[24];
	if (ig_ref_is_none(recipient))
		snprintf(to, sizeof to, "anyone");
	else
		snprintf(to, sizeof to, "ref 0x%" PRIx64, recipient.h);
	if (type == IG_TESTKIT_ANY_TYPE)
		snprintf(ty, sizeof ty, "any type");
	else
		snprintf(ty, sizeof ty, "type %" PRIu32, type);
	snprintf(what, sizeof what, "a dead letter of %s to %s", ty, to);
	tk_entry_t *e = NULL;
	int rc = fish(p, is_dead_letter, &w, timeout, what, &e);
	if (rc == 0 && out)
		memcpy(out, e->msg.data, sizeof *out);
	return rc;
}

typedef struct tk_log_want {
	int min_level;
	const char *substring;
} tk_log_want_t;

static bool is_log(const ig_msg_t *m, void *arg)
{
	const tk_log_want_t *w = arg;
	if (m->type != IG_MSG_LOG || m->size != sizeof(ig_log_event_t))
		return false;
	const ig_log_event_t *e = m->data;
	return e->level >= w->min_level && (!w->substring || strstr(e->text, w->substring));
}

int ig_probe_expect_log(ig_probe_t *p, int min_level, const char *substring,
			ig_duration_t timeout, ig_log_event_t *out)
{
	if (!p)
		return IG_EINVAL;
	tk_log_want_t w = {.min_level = min_level, .substring = substring};
	char what[160];
	snprintf(what, sizeof what, "a log line at %s or above containing \"%.80s\"",
		 level_name(min_level), substring ? substring : "");
	tk_entry_t *e = NULL;
	int rc = fish(p, is_log, &w, timeout, what, &e);
	if (rc == 0 && out)
		memcpy(out, e->msg.data, sizeof *out);
	return rc;
}
