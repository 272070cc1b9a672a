/* The TabletLog actor: group commit over the write-ahead log, with a queue
 * bounded in bytes (see tablet_log_int.h for the contract).
 *
 * Group commit without timers: a commit message only takes a txn and joins
 * the pending list; the first one after a write also sends the actor a
 * FLUSH message. Mailboxes are FIFO, so every commit already queued when
 * that FLUSH was sent is handled before it, and the FLUSH writes them all
 * with one ig_log_append. The busier the log, the bigger the batches.
 */
#include "tablet_log_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IG__TL_MSG_COMMIT 0x544c0101u
#define IG__TL_MSG_FLUSH 0x544c0102u
#define IG__TL_MSG_TRIM 0x544c0103u
#define IG__TL_MSG_BARRIER 0x544c0104u /* an ig__done_t, signalled when freed */

#define IG__TL_DEFAULT_MAX ((uint64_t)64 << 20)
#define IG__TL_STOP_WAIT_SEC 30

struct ig__tablet_log {
	ig_system_t *sys;
	ig_log_t *log;
	ig_seq_t *seq;
	ig_ref_t ref;
	ig_props_t props;           /* borrowed by the runtime for the actor's life */
	uint64_t max_bytes;
	void (*on_throttle)(void *arg);
	void *throttle_arg;

	/* Admission: queued is changed under mu so a waiter cannot miss the
	 * wake-up; it is atomic so stats read it without the lock. */
	pthread_mutex_t mu;
	pthread_cond_t room;        /* queued went down */
	pthread_cond_t done;        /* the actor stopped */
	bool stopped;
	_Atomic uint64_t queued;
	_Atomic uint64_t queued_max;

	_Atomic uint64_t batches, commits, fsyncs, failed, throttled;
	_Atomic uint64_t segments, segments_deleted, trim_errors;
};

/* One commit in flight. Ownership: malloc'd by submit, handed to the
 * runtime with ig_tell_ptr; the actor takes it (taken = true) and frees it
 * after the ack, otherwise the message destructor frees it. */
typedef struct ig__tl_req {
	ig__tablet_log_t *tl;
	uint64_t table_id, tablet_id, cookie, txn;
	ig_ref_t reply_to;
	bool taken;
	uint32_t len;
	uint8_t block[];
} ig__tl_req_t;

typedef struct ig__tl_state {
	ig__tablet_log_t *tl;
	ig__tl_req_t **pending;
	size_t n, cap;
	bool flush_sent;
	bool post_stopped;
	int broken;                 /* the first write failure; sticks */
} ig__tl_state_t;

/* ---- the byte bound ------------------------------------------------------ */

static void ig__tl_deadline(ig_duration_t timeout, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(timeout / IG_SEC(1));
	ts->tv_nsec += (long)(timeout % IG_SEC(1));
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool ig__tl_fits(ig__tablet_log_t *tl, uint32_t len)
{
	uint64_t q = atomic_load(&tl->queued);

	/* An empty queue admits anything, so one oversized block cannot wait
	 * forever. */
	return q == 0 || q + len <= tl->max_bytes;
}

static void ig__tl_raise_max(ig__tablet_log_t *tl, uint64_t q)
{
	uint64_t m = atomic_load(&tl->queued_max);

	while (q > m && !atomic_compare_exchange_weak(&tl->queued_max, &m, q))
		;
}

/* Reserves len bytes of the queue, waiting up to timeout. */
static int ig__tl_admit(ig__tablet_log_t *tl, uint32_t len, ig_duration_t timeout)
{
	struct timespec dl;
	int rc = 0;

	pthread_mutex_lock(&tl->mu);
	if (!ig__tl_fits(tl, len)) {
		if (timeout == 0) {
			pthread_mutex_unlock(&tl->mu);
			return IG_EAGAIN;
		}
		atomic_fetch_add(&tl->throttled, 1);
		if (tl->on_throttle)
			tl->on_throttle(tl->throttle_arg);
		if (timeout != IG_FOREVER)
			ig__tl_deadline(timeout, &dl);
		while (rc == 0 && !ig__tl_fits(tl, len))
			rc = timeout == IG_FOREVER ? pthread_cond_wait(&tl->room, &tl->mu)
						   : pthread_cond_timedwait(&tl->room, &tl->mu, &dl);
		if (rc != 0 && !ig__tl_fits(tl, len)) {
			pthread_mutex_unlock(&tl->mu);
			return IG_EAGAIN;
		}
	}
	ig__tl_raise_max(tl, atomic_fetch_add(&tl->queued, len) + len);
	pthread_mutex_unlock(&tl->mu);
	return 0;
}

static void ig__tl_release(ig__tablet_log_t *tl, uint64_t len)
{
	pthread_mutex_lock(&tl->mu);
	atomic_fetch_sub(&tl->queued, len);
	pthread_cond_broadcast(&tl->room);
	pthread_mutex_unlock(&tl->mu);
}

/* Message destructor: frees a request the actor never took (a dead letter,
 * or a message still queued when the actor stopped), giving back its room. */
static void ig__tl_req_dtor(void *p)
{
	ig__tl_req_t *r = p;

	if (r->taken)
		return;
	ig__tl_release(r->tl, r->len);
	free(r);
}

/* ---- submitting ---------------------------------------------------------- */

/* Queues r (its block already copied in) once there is room. */
static int ig__tl_enqueue(ig__tablet_log_t *tl, ig__tl_req_t *r, ig_duration_t timeout)
{
	int rc = ig__tl_admit(tl, r->len, timeout);

	if (rc != 0) {
		free(r);
		return rc;
	}
	/* On failure the runtime has already run the destructor (room given
	 * back), so there is nothing to undo here. */
	return ig_tell_ptr(tl->ref, IG__TL_MSG_COMMIT, r, sizeof *r + r->len, ig__tl_req_dtor,
			   IG_NOREF);
}

static ig__tl_req_t *ig__tl_req_new(ig__tablet_log_t *tl, uint64_t table_id,
				    uint64_t tablet_id, const void *block, uint32_t block_len)
{
	ig__tl_req_t *r = malloc(sizeof *r + block_len);

	if (!r)
		return NULL;
	*r = (ig__tl_req_t){.tl = tl, .table_id = table_id, .tablet_id = tablet_id,
			    .reply_to = IG_NOREF, .len = block_len};
	memcpy(r->block, block, block_len);
	return r;
}

int ig__tablet_log_submit(ig__tablet_log_t *tl, uint64_t table_id, uint64_t tablet_id,
			  const void *block, uint32_t block_len, ig_ref_t reply_to,
			  uint64_t cookie, ig_duration_t timeout)
{
	ig__tl_req_t *r;

	if (!tl || !block || block_len == 0 || timeout < 0)
		return IG_EINVAL;
	if (!(r = ig__tl_req_new(tl, table_id, tablet_id, block, block_len)))
		return IG_ENOMEM;
	r->reply_to = reply_to;
	r->cookie = cookie;
	return ig__tl_enqueue(tl, r, timeout);
}

int ig__tablet_log_submit_txn(ig__tablet_log_t *tl, uint64_t txn, uint64_t table_id,
			      const void *block, uint32_t block_len, ig_duration_t timeout)
{
	ig__tl_req_t *r;

	if (!tl || txn == IG_TXN_NONE || !block || block_len == 0 || timeout < 0)
		return IG_EINVAL;
	if (!(r = ig__tl_req_new(tl, table_id, 0, block, block_len)))
		return IG_ENOMEM;
	r->txn = txn;
	return ig__tl_enqueue(tl, r, timeout);
}

int ig__tablet_log_trim(ig__tablet_log_t *tl, uint64_t txn)
{
	return ig_tell(tl->ref, IG__TL_MSG_TRIM, &txn, sizeof txn, IG_NOREF);
}

/* The message's destructor signals: it runs once the actor has handled the
 * message, or when a stopped actor drops it, so the wait always ends. */
static void ig__tl_barrier_dtor(void *p)
{
	ig__done_t *d = p;

	ig__done_signal(d, d->rc);
}

int ig__tablet_log_barrier(ig__tablet_log_t *tl)
{
	ig__done_t d;

	ig__done_init(&d);
	d.rc = IG_ESTOPPED; /* unless the behavior reaches it */
	(void)ig_tell_ptr(tl->ref, IG__TL_MSG_BARRIER, &d, sizeof d, ig__tl_barrier_dtor,
			  IG_NOREF);
	return ig__done_wait(&d);
}

/* ---- the actor ------------------------------------------------------------ */

static void ig__tl_ack(ig__tablet_log_t *tl, ig__tl_req_t *r, int status)
{
	ig__tl_ack_t ack = {.txn = r->txn, .cookie = r->cookie, .status = status};

	if (status != 0)
		atomic_fetch_add(&tl->failed, 1);
	if (ig_ref_is_none(r->reply_to))
		return; /* the store waits on the sequencer instead */
	/* A requester that is gone just makes a dead letter. */
	(void)ig_tell(r->reply_to, IG__TL_MSG_ACK, &ack, sizeof ack, tl->ref);
}

/* Acks and frees every pending request, then gives back their room (after
 * the acks, so a throttled submitter cannot overtake them). */
static void ig__tl_finish(ig__tl_state_t *st, int status)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < st->n; i++) {
		ig__tl_ack(st->tl, st->pending[i], status);
		bytes += st->pending[i]->len;
		free(st->pending[i]);
	}
	st->n = 0;
	if (bytes)
		ig__tl_release(st->tl, bytes);
}

static void ig__tl_count_syncs(ig__tablet_log_t *tl)
{
	ig_log_stats_t ls;

	ig_log_stats(tl->log, &ls);
	atomic_store(&tl->fsyncs, ls.ops[IG_LOG_OP_SYNC]);
	atomic_store(&tl->segments, ls.segments);
}

/* Writes every pending request as one batch (one record per commit, as
 * each has its own txn), then commits the last txn. */
static int ig__tl_write(ig__tl_state_t *st)
{
	ig__tablet_log_t *tl = st->tl;
	ig_log_entry_t *ents = malloc(st->n * sizeof *ents);
	ig_log_rec_t *recs = malloc(st->n * sizeof *recs);
	int rc = IG_ENOMEM;

	if (ents && recs) {
		for (size_t i = 0; i < st->n; i++) {
			ig__tl_req_t *r = st->pending[i];

			ents[i] = (ig_log_entry_t){r->table_id, r->tablet_id, r->block, r->len};
			recs[i] = (ig_log_rec_t){r->txn, r->txn, &ents[i], 1};
		}
		rc = ig_log_append(tl->log, recs, st->n);
		ig__tl_count_syncs(tl);
	}
	free(ents);
	free(recs);
	if (rc == 0)
		rc = ig_seq_commit(tl->seq, st->pending[st->n - 1]->txn);
	return rc;
}

static void ig__tl_flush(ig__tl_state_t *st)
{
	ig__tablet_log_t *tl = st->tl;
	size_t n = st->n;
	int rc;

	st->flush_sent = false;
	if (n == 0)
		return;
	if (st->broken) {
		ig__tl_finish(st, IG_ESTATE);
		return;
	}
	rc = ig__tl_write(st);
	if (rc != 0) {
		/* The log is broken after a failed write or sync (see
		 * ig_log_append): fail the sequencer so sync waiters learn it,
		 * and refuse every later commit. */
		st->broken = rc;
		ig_seq_fail(tl->seq, rc);
	} else {
		atomic_fetch_add(&tl->batches, 1);
		atomic_fetch_add(&tl->commits, n);
	}
	ig__tl_finish(st, rc);
}

static int ig__tl_push(ig__tl_state_t *st, ig__tl_req_t *r)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 64;
		ig__tl_req_t **p = realloc(st->pending, cap * sizeof *p);

		if (!p)
			return IG_ENOMEM;
		st->pending = p;
		st->cap = cap;
	}
	st->pending[st->n++] = r;
	return 0;
}

static void ig__tl_on_commit(ig_ctx_t *ctx, ig__tl_state_t *st, const ig_msg_t *msg)
{
	ig__tl_req_t *r = (ig__tl_req_t *)msg->data;

	r->taken = true;
	/* Unless the submitter assigned it (the store does, under its write
	 * lock, so txn order is still mailbox order), the txn is given at
	 * arrival, so txn order is mailbox order. */
	if (r->txn == IG_TXN_NONE)
		r->txn = ig_seq_next(st->tl->seq);
	if (ig__tl_push(st, r) != 0) {
		ig__tl_ack(st->tl, r, IG_ENOMEM);
		ig__tl_release(st->tl, r->len);
		free(r);
		return;
	}
	if (!st->flush_sent) {
		/* Copied payload-less tell; if it fails the next commit retries,
		 * and post_stop writes whatever is left. */
		st->flush_sent = ig_tell(ig_self(ctx), IG__TL_MSG_FLUSH, NULL, 0, ig_self(ctx)) == 0;
	}
}

/* Deletes the segments below txn. Runs here because the log is
 * single-writer: only this thread may touch its files. */
static void ig__tl_trim(ig__tablet_log_t *tl, uint64_t txn)
{
	size_t n = 0;

	if (ig_log_delete_below(tl->log, txn, &n) != 0)
		atomic_fetch_add(&tl->trim_errors, 1);
	atomic_fetch_add(&tl->segments_deleted, n);
	ig__tl_count_syncs(tl);
}

static int ig__tl_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	ig__tl_state_t *st = state;

	if (msg->type == IG__TL_MSG_COMMIT)
		ig__tl_on_commit(ctx, st, msg);
	else if (msg->type == IG__TL_MSG_FLUSH)
		ig__tl_flush(st);
	else if (msg->type == IG__TL_MSG_TRIM)
		ig__tl_trim(st->tl, *(const uint64_t *)msg->data);
	else if (msg->type == IG__TL_MSG_BARRIER)
		((ig__done_t *)msg->data)->rc = 0;
	return 0;
}

static int ig__tl_init(ig_ctx_t *ctx, void *state, void *arg)
{
	ig__tl_state_t *st = state;

	(void)ctx;
	st->tl = arg;
	return 0;
}

/* Writes what is still pending (commits that arrived before the stop but
 * after the last FLUSH). */
static void ig__tl_post_stop(ig_ctx_t *ctx, void *state)
{
	ig__tl_state_t *st = state;

	(void)ctx;
	ig__tl_flush(st);
	st->post_stopped = true;
}

/* Tells ig__tablet_log_stop it may free tl. This is fini, not post_stop,
 * because the runtime reads the props (inside tl) until post_stop and
 * fini have both run. fini also runs before a restart; the behavior never
 * fails, but only a stop (post_stopped) signals all the same. */
static void ig__tl_fini(void *state)
{
	ig__tl_state_t *st = state;
	ig__tablet_log_t *tl = st->tl;

	free(st->pending);
	st->pending = NULL;
	st->n = st->cap = 0;
	if (!st->post_stopped)
		return;
	pthread_mutex_lock(&tl->mu);
	tl->stopped = true;
	pthread_cond_broadcast(&tl->done);
	pthread_mutex_unlock(&tl->mu);
}

/* ---- life cycle ------------------------------------------------------------ */

static int ig__tl_sync_init(ig__tablet_log_t *tl)
{
	pthread_condattr_t ca;
	int rc;

	if ((rc = pthread_condattr_init(&ca)) != 0)
		return -rc;
	/* Deadlines are CLOCK_MONOTONIC so a clock step cannot stretch them. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&tl->room, &ca);
	if (rc == 0 && (rc = pthread_cond_init(&tl->done, &ca)) != 0)
		pthread_cond_destroy(&tl->room);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		return -rc;
	pthread_mutex_init(&tl->mu, NULL);
	return 0;
}

static void ig__tl_free(ig__tablet_log_t *tl)
{
	ig_seq_destroy(tl->seq);
	pthread_cond_destroy(&tl->room);
	pthread_cond_destroy(&tl->done);
	pthread_mutex_destroy(&tl->mu);
	free(tl);
}

static int ig__tl_open_storage(ig__tablet_log_t *tl, const ig__tablet_log_config_t *cfg)
{
	int rc = ig_log_open(cfg->dir, &cfg->log, &tl->log, NULL, cfg->open_err);

	if (rc != 0)
		return rc;
	ig__tl_count_syncs(tl);
	rc = ig_seq_create(ig_log_last_txn(tl->log), &tl->seq);
	if (rc != 0) {
		ig_log_close(tl->log);
		tl->log = NULL;
	}
	return rc;
}

static int ig__tl_spawn(ig__tablet_log_t *tl, const ig__tablet_log_config_t *cfg)
{
	ig_dispatcher_config_t dc = {.name = "tablet-log", .threads = 1};
	ig_dispatcher_t *d;
	int rc = ig_dispatcher_create(tl->sys, &dc, &d);

	if (rc != 0)
		return rc;
	tl->props = (ig_props_t){.behavior = ig__tl_behavior,
				 .state_size = sizeof(ig__tl_state_t),
				 .init = ig__tl_init,
				 .post_stop = ig__tl_post_stop,
				 .fini = ig__tl_fini,
				 .dispatcher = d};
	return ig_system_spawn(tl->sys, &tl->props, cfg->name, tl, &tl->ref);
}

int ig__tablet_log_start(ig_system_t *sys, const ig__tablet_log_config_t *cfg,
			 ig__tablet_log_t **out)
{
	ig__tablet_log_t *tl;
	int rc;

	if (!sys || !cfg || !cfg->dir || !out)
		return IG_EINVAL;
	tl = calloc(1, sizeof *tl);
	if (!tl)
		return IG_ENOMEM;
	if ((rc = ig__tl_sync_init(tl)) != 0) {
		free(tl);
		return rc;
	}
	tl->sys = sys;
	tl->max_bytes = cfg->max_bytes ? cfg->max_bytes : IG__TL_DEFAULT_MAX;
	tl->on_throttle = cfg->on_throttle;
	tl->throttle_arg = cfg->throttle_arg;
	rc = ig__tl_open_storage(tl, cfg);
	if (rc == 0 && (rc = ig__tl_spawn(tl, cfg)) != 0)
		ig_log_close(tl->log);
	if (rc != 0) {
		ig__tl_free(tl);
		return rc;
	}
	*out = tl;
	return 0;
}

ig_seq_t *ig__tablet_log_seq(ig__tablet_log_t *tl) { return tl->seq; }

ig_ref_t ig__tablet_log_ref(const ig__tablet_log_t *tl) { return tl->ref; }

void ig__tablet_log_stats(const ig__tablet_log_t *tl, ig__tablet_log_stats_t *out)
{
	ig__tablet_log_t *m = (ig__tablet_log_t *)tl; /* atomics load through non-const */

	*out = (ig__tablet_log_stats_t){
		.batches = atomic_load(&m->batches),
		.commits = atomic_load(&m->commits),
		.fsyncs = atomic_load(&m->fsyncs),
		.failed = atomic_load(&m->failed),
		.throttled = atomic_load(&m->throttled),
		.queued_bytes = atomic_load(&m->queued),
		.queued_bytes_max = atomic_load(&m->queued_max),
		.segments = atomic_load(&m->segments),
		.segments_deleted = atomic_load(&m->segments_deleted),
		.trim_errors = atomic_load(&m->trim_errors),
	};
}

int ig__tablet_log_stop(ig__tablet_log_t *tl)
{
	struct timespec dl;
	int rc = 0;

	if (!tl)
		return 0;
	/* A PoisonPill, not ig_stop: commits queued before it are still
	 * written and acked. If the actor is gone already (system shut down),
	 * its post_stop has run and stopped is set. */
	(void)ig_poison(tl->ref);
	ig__tl_deadline(IG_SEC(IG__TL_STOP_WAIT_SEC), &dl);
	pthread_mutex_lock(&tl->mu);
	while (!tl->stopped && rc == 0)
		rc = pthread_cond_timedwait(&tl->done, &tl->mu, &dl);
	rc = tl->stopped ? 0 : IG_ETIMEDOUT;
	pthread_mutex_unlock(&tl->mu);
	if (rc != 0)
		return rc; /* the actor may still use tl: leak it rather than crash */
	rc = ig_log_close(tl->log);
	ig__tl_free(tl);
	return rc;
}
