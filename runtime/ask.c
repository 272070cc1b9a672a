/* ask: a temporary actor under /system is the sender of the question; the
 * first message it receives (or its own deadline timer) completes a future
 * that threads can wait on, poll, or hang a callback on.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "runtime_int.h"

#define ASK_TIMEOUT (IG_MSG_SYSTEM_USER_END + 1)

struct ig_future {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	_Atomic int refs;     /* the caller's and the temporary actor's */
	ig_system_t *sys;
	ig_ref_t temp;
	int64_t deadline;     /* system clock; INT64_MAX: none */
	bool done;
	int err;
	ig_msg_t reply;
	void *buf;            /* the reply payload we own */
	void (*dtor)(void *); /* for a moved ig_tell_ptr payload */
	void (*cb)(ig_future_t *, int, const ig_msg_t *, void *);
	void *cb_arg;
};

static void future_unref(ig_future_t *f)
{
	if (atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	if (f->dtor)
		f->dtor(f->buf);
	else
		free(f->buf);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

/* Completes once; the temporary actor's turn or its timer calls it. */
static void complete(ig_future_t *f, int err, ig_ctx_t *ctx, const ig_msg_t *msg)
{
	pthread_mutex_lock(&f->mu);
	if (f->done) {
		pthread_mutex_unlock(&f->mu);
		return;
	}
	if (msg) {
		ig__msg_t *m = ctx->cur;
		f->reply = *msg;
		if (m->dtor && !(m->flags & IG__MF_TIMER)) {
			f->buf = m->ptr; /* move the pointer payload */
			f->dtor = m->dtor;
			m->dtor = NULL;
		} else if (msg->size) {
			f->buf = malloc(msg->size);
			if (f->buf) {
				memcpy(f->buf, msg->data, msg->size);
				f->reply.data = f->buf;
			} else {
				err = IG_ENOMEM;
			}
		}
	}
	f->err = err;
	f->done = true;
	void (*cb)(ig_future_t *, int, const ig_msg_t *, void *) = f->cb;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	if (cb)
		cb(f, f->err, f->err ? NULL : &f->reply, f->cb_arg);
}

typedef struct asker {
	ig_future_t *f;
} asker_t;

static int asker_init(ig_ctx_t *ctx, void *state, void *arg)
{
	asker_t *s = state;
	s->f = arg;
	if (s->f->deadline == INT64_MAX)
		return 0;
	/* The deadline counts from ig_ask, not from this first turn. */
	int64_t left = s->f->deadline - ig_system_now(ig_ctx_system(ctx));
	int rc = ig__timer_start(ctx, left > 0 ? left : 0, false, ASK_TIMEOUT, NULL, 0, NULL);
	if (rc)
		future_unref(s->f); /* fini does not run after a failed init */
	return rc;
}

/* Stopped before an answer (future freed, system shutting down). */
static void asker_post_stop(ig_ctx_t *ctx, void *state)
{
	asker_t *s = state;
	complete(s->f, IG_ESTOPPED, ctx, NULL);
}

static void asker_fini(void *state)
{
	asker_t *s = state;
	future_unref(s->f);
}

static int asker_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	asker_t *s = state;
	if (msg->type == ASK_TIMEOUT && (ctx->cur->flags & IG__MF_TIMER))
		complete(s->f, IG_ETIMEDOUT, ctx, NULL);
	else
		complete(s->f, 0, ctx, msg);
	ig_stop_self(ctx);
	return 0;
}

static const ig_props_t asker_props = {
	.behavior = asker_behavior,
	.state_size = sizeof(asker_t),
	.init = asker_init,
	.post_stop = asker_post_stop,
	.fini = asker_fini,
};

int ig_ask(ig_system_t *sys, ig_ref_t to, uint32_t type, const void *data, size_t size,
	   ig_duration_t timeout, ig_future_t **out)
{
	if (!sys || !out || timeout < 0 || type >= IG_MSG_SYSTEM_BASE || (size && !data))
		return IG_EINVAL;
	ig_future_t *f = calloc(1, sizeof *f);
	if (!f)
		return IG_ENOMEM;
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	f->sys = sys;
	int64_t now = ig_system_now(sys);
	f->deadline = timeout == IG_FOREVER || now > INT64_MAX - timeout ? INT64_MAX : now + timeout;
	atomic_init(&f->refs, 2);
	int rc = ig__spawn(sys, sys->system, &asker_props, NULL, f, 0, NULL, &f->temp);
	if (rc) {
		atomic_store(&f->refs, 1);
		future_unref(f);
		return rc;
	}
	rc = ig_tell(to, type, data, size, f->temp);
	if (rc && rc != IG_ENOACTOR) {
		/* Not sent at all: fail now rather than at the deadline. */
		ig_stop(f->temp);
		ig_future_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

static bool future_done(void *arg)
{
	ig_future_t *f = arg;
	pthread_mutex_lock(&f->mu);
	bool d = f->done;
	pthread_mutex_unlock(&f->mu);
	return d;
}

static int result(ig_future_t *f, const ig_msg_t **reply)
{
	if (f->err == 0 && reply)
		*reply = &f->reply;
	return f->err;
}

int ig_future_wait(ig_future_t *f, ig_duration_t timeout, const ig_msg_t **reply)
{
	if (!f || timeout < 0)
		return IG_EINVAL;
	ig_system_t *sys = f->sys;
	if (sys->cfg.deterministic) {
		if (ig__current_worker() || !future_done(f)) {
			int64_t now = ig_system_now(sys);
			int64_t until = timeout == IG_FOREVER || now > INT64_MAX - timeout
						? INT64_MAX : now + timeout;
			ig__det_run(sys, until, future_done, f);
		}
		pthread_mutex_lock(&f->mu);
		int rc = f->done ? result(f, reply) : IG_EAGAIN;
		pthread_mutex_unlock(&f->mu);
		return rc;
	}
	int64_t now = ig__mono_ns();
	int64_t deadline = timeout == IG_FOREVER || now > INT64_MAX - timeout ? INT64_MAX
									     : now + timeout;
	pthread_mutex_lock(&f->mu);
	while (!f->done) {
		if (deadline == INT64_MAX) {
			pthread_cond_wait(&f->cv, &f->mu);
			continue;
		}
		struct timespec ts = {.tv_sec = deadline / 1000000000,
				      .tv_nsec = deadline % 1000000000};
		if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT && !f->done)
			break;
	}
	int rc = f->done ? result(f, reply) : IG_EAGAIN;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int ig_future_poll(ig_future_t *f, const ig_msg_t **reply)
{
	if (!f)
		return IG_EINVAL;
	pthread_mutex_lock(&f->mu);
	int rc = f->done ? result(f, reply) : IG_EAGAIN;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int ig_future_on_complete(ig_future_t *f,
			  void (*cb)(ig_future_t *f, int err, const ig_msg_t *reply, void *arg),
			  void *arg)
{
	if (!f || !cb)
		return IG_EINVAL;
	pthread_mutex_lock(&f->mu);
	if (f->cb) {
		pthread_mutex_unlock(&f->mu);
		return IG_EEXIST;
	}
	f->cb = cb;
	f->cb_arg = arg;
	bool done = f->done;
	pthread_mutex_unlock(&f->mu);
	if (done)
		cb(f, f->err, f->err ? NULL : &f->reply, arg);
	return 0;
}

void ig_future_free(ig_future_t *f)
{
	if (!f)
		return;
	if (!future_done(f))
		ig_stop(f->temp);
	future_unref(f);
}
