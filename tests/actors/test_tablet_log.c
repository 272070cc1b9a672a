/* Tests of the TabletLog actor: acks after durability with rising txns,
 * replay returns exactly what was acked, group commit under concurrent
 * writers, throttling by queued bytes, and no ack after a failed fsync.
 *
 * Acks go to a collector actor that records them in shared memory and
 * signals a condvar; tests wait on it with deadlines, never by sleeping.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "watchdog.h"

#include "tablet_log_int.h"

#define WAIT_SEC 60

/* ---- helpers ------------------------------------------------------------ */

static struct timespec deadline_in(int sec)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += sec;
	return ts;
}

static void make_dir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/ingot-tl-XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static void remove_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* One cell, row "w<writer>-<i>", value padded to vlen bytes. */
static size_t make_block(uint8_t *buf, size_t cap, unsigned writer, unsigned i, uint32_t vlen)
{
	char row[32], val[4096];
	size_t len;
	ig_cell_t c = {0};

	assert_true(vlen < sizeof val);
	snprintf(row, sizeof row, "w%u-%u", writer, i);
	memset(val, 'a' + (int)(i % 26), vlen);
	c.key.row = row;
	c.key.row_len = (uint32_t)strlen(row);
	c.key.column = "f:q";
	c.key.column_len = 3;
	c.key.timestamp = (int64_t)i + 1;
	c.value = val;
	c.value_len = vlen;
	c.kind = IG_CELL_SET;
	assert_int_equal(ig_packed_encode(&c, 1, 0, buf, cap, &len), 0);
	return len;
}

/* ---- the ack collector -------------------------------------------------- */

#define MAX_ACKS 8192

typedef struct collector {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t n;
	ig__tl_ack_t acks[MAX_ACKS];
} collector_t;

static int collector_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	collector_t *c = *(collector_t **)state;

	(void)ctx;
	if (msg->type != IG__TL_MSG_ACK)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (c->n < MAX_ACKS)
		memcpy(&c->acks[c->n], msg->data, sizeof c->acks[0]);
	c->n++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static int collector_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(collector_t **)state = arg;
	return 0;
}

static const ig_props_t collector_props = {
	.behavior = collector_behavior,
	.state_size = sizeof(collector_t *),
	.init = collector_init,
};

static collector_t *collector_new(ig_system_t *sys, ig_ref_t *ref)
{
	collector_t *c = calloc(1, sizeof *c);
	pthread_condattr_t ca;

	assert_non_null(c);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	assert_int_equal(ig_system_spawn(sys, &collector_props, NULL, c, ref), 0);
	return c;
}

static size_t collector_count(collector_t *c)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->n;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* Waits until n acks have arrived; fails the test at the deadline. */
static void collector_wait(collector_t *c, size_t n)
{
	struct timespec dl = deadline_in(WAIT_SEC);
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	while (c->n < n && rc == 0)
		rc = pthread_cond_timedwait(&c->cv, &c->mu, &dl);
	pthread_mutex_unlock(&c->mu);
	assert_true(collector_count(c) >= n);
}

static void collector_free(collector_t *c)
{
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* ---- a fixture: system, collector, TabletLog ---------------------------- */

typedef struct fx {
	char dir[64];
	ig_system_t *sys;
	ig_ref_t coll_ref;
	collector_t *coll;
	ig__tablet_log_t *tl;
} fx_t;

static void fx_start(fx_t *f, ig__tablet_log_config_t *cfg)
{
	ig_system_config_t sc = {.threads = 2};

	make_dir(f->dir, sizeof f->dir);
	assert_int_equal(ig_system_create(&sc, &f->sys), 0);
	f->coll = collector_new(f->sys, &f->coll_ref);
	cfg->dir = f->dir;
	assert_int_equal(ig__tablet_log_start(f->sys, cfg, &f->tl), 0);
}

static void fx_stop(fx_t *f, bool keep_dir)
{
	assert_int_equal(ig__tablet_log_stop(f->tl), 0);
	assert_int_equal(ig_system_shutdown(f->sys, IG_SEC(10)), 0);
	ig_system_destroy(f->sys);
	collector_free(f->coll);
	if (!keep_dir)
		remove_dir(f->dir);
}

/* ---- replay ------------------------------------------------------------ */

typedef struct replayed {
	size_t n;
	uint64_t last_txn;
	int bad;
	const uint64_t *txn_of; /* txn_of[i]: the txn acked for commit i */
	size_t ncommits;
} replayed_t;

/* Checks each replayed entry is commit i (found by its txn) of writer 0. */
static int replay_cb(void *arg, const ig_log_record_t *rec)
{
	replayed_t *r = arg;
	ig_log_item_t it;
	size_t pos = 0;

	if (rec->first_txn != rec->last_txn || rec->first_txn <= r->last_txn)
		r->bad++;
	r->last_txn = rec->last_txn;
	while (ig_log_record_next(rec, &pos, &it) == 1) {
		ig_cell_t c;
		char row[32];
		size_t i;

		for (i = 0; i < r->ncommits && r->txn_of[i] != rec->first_txn; i++)
			;
		snprintf(row, sizeof row, "w0-%zu", i);
		if (i == r->ncommits || ig_packed_count(&it.block) != 1 ||
		    ig_packed_cell(&it.block, 0, &c) != 0 || c.key.row_len != strlen(row) ||
		    memcmp(c.key.row, row, c.key.row_len) != 0 || it.table_id != 7 ||
		    it.tablet_id != i)
			r->bad++;
		r->n++;
	}
	return 0;
}

/* ---- tests -------------------------------------------------------------- */

#define ONE_N 300

static void test_one_writer_acks_and_replay(void **state)
{
	ig__tablet_log_config_t cfg = {0};
	uint64_t txn_of[ONE_N];
	ig__tablet_log_stats_t s;
	replayed_t rp = {0};
	ig_log_scan_t scan;
	ig_log_error_t err;
	uint8_t buf[512];
	fx_t f;

	(void)state;
	fx_start(&f, &cfg);
	for (unsigned i = 0; i < ONE_N; i++) {
		size_t len = make_block(buf, sizeof buf, 0, i, 40);

		assert_int_equal(ig__tablet_log_submit(f.tl, 7, i, buf, (uint32_t)len, f.coll_ref,
						       i, IG_FOREVER), 0);
	}
	collector_wait(f.coll, ONE_N);
	for (size_t k = 0; k < ONE_N; k++) {
		const ig__tl_ack_t *a = &f.coll->acks[k];

		assert_int_equal(a->status, 0);
		assert_int_equal(a->cookie, k); /* acks in submit order */
		if (k > 0)
			assert_true(a->txn > f.coll->acks[k - 1].txn);
		assert_true(ig_seq_committed(ig__tablet_log_seq(f.tl)) >= a->txn);
		txn_of[k] = a->txn;
	}
	ig__tablet_log_stats(f.tl, &s);
	assert_int_equal(s.commits, ONE_N);
	assert_int_equal(s.failed, 0);
	assert_int_equal(s.queued_bytes, 0);
	assert_true(s.batches >= 1 && s.batches <= ONE_N);
	assert_true(s.fsyncs >= s.batches);
	fx_stop(&f, true);

	rp.txn_of = txn_of;
	rp.ncommits = ONE_N;
	assert_int_equal(ig_log_replay(f.dir, 0, replay_cb, &rp, &scan, &err), 0);
	assert_int_equal(rp.bad, 0);
	assert_int_equal(rp.n, ONE_N);
	assert_int_equal(rp.last_txn, txn_of[ONE_N - 1]);
	remove_dir(f.dir);
}

#define WRITERS 8
#define PER_WRITER 500

typedef struct writer_arg {
	fx_t *f;
	unsigned id;
	int rc;
} writer_arg_t;

static void *writer_main(void *p)
{
	writer_arg_t *w = p;
	uint8_t buf[512];

	for (unsigned i = 0; i < PER_WRITER && w->rc == 0; i++) {
		size_t len = make_block(buf, sizeof buf, w->id, i, 100);

		w->rc = ig__tablet_log_submit(w->f->tl, 1, w->id, buf, (uint32_t)len,
					      w->f->coll_ref, (uint64_t)w->id << 32 | i,
					      IG_FOREVER);
	}
	return NULL;
}

static void run_writers(fx_t *f, writer_arg_t *w, unsigned n)
{
	pthread_t th[WRITERS];

	for (unsigned i = 0; i < n; i++) {
		w[i] = (writer_arg_t){.f = f, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].rc, 0);
	}
}

/* Every writer's acks come back in its own submit order with rising txns. */
static void check_writer_order(collector_t *c, size_t n)
{
	uint64_t next[WRITERS] = {0}, last_txn[WRITERS] = {0};

	for (size_t k = 0; k < n; k++) {
		const ig__tl_ack_t *a = &c->acks[k];
		unsigned w = (unsigned)(a->cookie >> 32);

		assert_int_equal(a->status, 0);
		assert_true(w < WRITERS);
		assert_int_equal(a->cookie & 0xffffffffu, next[w]);
		assert_true(a->txn > last_txn[w]);
		next[w]++;
		last_txn[w] = a->txn;
	}
}

static void test_group_commit_8_writers(void **state)
{
	ig__tablet_log_config_t cfg = {0};
	writer_arg_t w[WRITERS];
	ig__tablet_log_stats_t s;
	const size_t total = WRITERS * PER_WRITER;
	fx_t f;

	(void)state;
	fx_start(&f, &cfg);
	run_writers(&f, w, WRITERS);
	collector_wait(f.coll, total);
	assert_int_equal(collector_count(f.coll), total);
	check_writer_order(f.coll, total);
	ig__tablet_log_stats(f.tl, &s);
	print_message("group commit: %llu commits, %llu batches, %llu fsyncs, "
		      "%.1f commits/fsync\n",
		      (unsigned long long)s.commits, (unsigned long long)s.batches,
		      (unsigned long long)s.fsyncs, (double)s.commits / (double)s.fsyncs);
	assert_int_equal(s.commits, total);
	/* Group commit: far fewer fsyncs than commits. */
	assert_true(s.fsyncs * 4 <= s.commits);
	assert_int_equal(ig_seq_committed(ig__tablet_log_seq(f.tl)), total);
	fx_stop(&f, false);
}

/* ---- throttling: a log whose writes wait at a gate ---------------------- */

typedef struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	bool in_write;   /* the actor is held in a write */
	unsigned throttled;
} gate_t;

static gate_t g_gate;

static void gate_init(gate_t *g)
{
	pthread_condattr_t ca;

	memset(g, 0, sizeof *g);
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
}

/* Holds every pwrite until the gate opens (bounded by a deadline so a bug
 * fails the test instead of hanging it). */
static int gate_fault(void *arg, ig_log_op_t op)
{
	gate_t *g = arg;
	struct timespec dl = deadline_in(WAIT_SEC);
	int rc = 0;

	if (op != IG_LOG_OP_WRITE)
		return 0;
	pthread_mutex_lock(&g->mu);
	g->in_write = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->open && rc == 0)
		rc = pthread_cond_timedwait(&g->cv, &g->mu, &dl);
	pthread_mutex_unlock(&g->mu);
	return 0;
}

static void gate_on_throttle(void *arg)
{
	gate_t *g = arg;

	pthread_mutex_lock(&g->mu);
	g->throttled++;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* Waits until the actor sits in a write and a submitter is throttled. */
static void gate_wait_blocked(gate_t *g)
{
	struct timespec dl = deadline_in(WAIT_SEC);
	int rc = 0;

	pthread_mutex_lock(&g->mu);
	while ((!g->in_write || g->throttled == 0) && rc == 0)
		rc = pthread_cond_timedwait(&g->cv, &g->mu, &dl);
	assert_true(g->in_write && g->throttled > 0);
	pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate_t *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

#define THROTTLE_LIMIT 4096

typedef struct thr_arg {
	fx_t *f;
	unsigned id;
	unsigned n;
	int rc;
} thr_arg_t;

static void *throttled_writer(void *p)
{
	thr_arg_t *t = p;
	uint8_t buf[1024];

	for (unsigned i = 0; i < t->n && t->rc == 0; i++) {
		size_t len = make_block(buf, sizeof buf, t->id, i, 600);

		t->rc = ig__tablet_log_submit(t->f->tl, 1, t->id, buf, (uint32_t)len,
					      t->f->coll_ref, i, IG_FOREVER);
	}
	return NULL;
}

static void test_throttle_blocks_and_bounds_bytes(void **state)
{
	ig__tablet_log_config_t cfg = {.max_bytes = THROTTLE_LIMIT};
	thr_arg_t t[4];
	pthread_t th[4];
	ig__tablet_log_stats_t s;
	uint8_t buf[2048];
	size_t len;
	fx_t f;

	(void)state;
	gate_init(&g_gate);
	cfg.log.fault = gate_fault;
	cfg.log.fault_arg = &g_gate;
	cfg.on_throttle = gate_on_throttle;
	cfg.throttle_arg = &g_gate;
	fx_start(&f, &cfg);
	for (unsigned i = 0; i < 4; i++) {
		t[i] = (thr_arg_t){.f = &f, .id = i, .n = 40};
		assert_int_equal(pthread_create(&th[i], NULL, throttled_writer, &t[i]), 0);
	}
	gate_wait_blocked(&g_gate);
	ig__tablet_log_stats(f.tl, &s);
	assert_true(s.queued_bytes <= THROTTLE_LIMIT);
	assert_int_equal(s.commits, 0); /* nothing durable: nothing acked */
	assert_int_equal(collector_count(f.coll), 0);
	/* An actor caller that must not block gets IG_EAGAIN. */
	len = make_block(buf, sizeof buf, 9, 0, 900); /* larger than any waiter's */
	assert_int_equal(ig__tablet_log_submit(f.tl, 1, 9, buf, (uint32_t)len, f.coll_ref, 0, 0),
			 IG_EAGAIN);
	gate_open(&g_gate);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(t[i].rc, 0);
	}
	collector_wait(f.coll, 160);
	ig__tablet_log_stats(f.tl, &s);
	print_message("throttle: %llu submits waited, high-water %llu of %d bytes\n",
		      (unsigned long long)s.throttled, (unsigned long long)s.queued_bytes_max,
		      THROTTLE_LIMIT);
	assert_int_equal(s.commits, 160);
	assert_int_equal(s.failed, 0);
	assert_true(s.throttled > 0);
	assert_true(s.queued_bytes_max <= THROTTLE_LIMIT);
	fx_stop(&f, false);
}

/* ---- a failed fsync: errors, never acks -------------------------------- */

typedef struct sync_fault {
	_Atomic int fail;             /* fail every fdatasync from now on */
	collector_t *coll;
	ig__tablet_log_t *_Atomic tl;
	_Atomic int early_acks;       /* acks seen before their batch's fsync */
} sync_fault_t;

static sync_fault_t g_sf;

/* Before each fdatasync: no more acks may exist than commits already made
 * durable; then fail the sync if armed. */
static int sync_fault(void *arg, ig_log_op_t op)
{
	sync_fault_t *sf = arg;
	ig__tablet_log_t *tl = atomic_load(&sf->tl);
	ig__tablet_log_stats_t s;

	if (op != IG_LOG_OP_SYNC)
		return 0;
	if (tl) {
		ig__tablet_log_stats(tl, &s);
		if (collector_count(sf->coll) > s.commits)
			atomic_fetch_add(&sf->early_acks, 1);
	}
	return atomic_load(&sf->fail) ? -EIO : 0;
}

static void test_failed_fsync_gives_errors_not_acks(void **state)
{
	ig__tablet_log_config_t cfg = {0};
	ig__tablet_log_stats_t s;
	uint8_t buf[512];
	fx_t f;

	(void)state;
	memset(&g_sf, 0, sizeof g_sf);
	cfg.log.fault = sync_fault;
	cfg.log.fault_arg = &g_sf;
	fx_start(&f, &cfg);
	g_sf.coll = f.coll;
	atomic_store(&g_sf.tl, f.tl);
	for (unsigned i = 0; i < 50; i++) {
		size_t len = make_block(buf, sizeof buf, 0, i, 40);

		assert_int_equal(ig__tablet_log_submit(f.tl, 7, i, buf, (uint32_t)len, f.coll_ref,
						       i, IG_FOREVER), 0);
	}
	collector_wait(f.coll, 50);
	atomic_store(&g_sf.fail, 1);
	for (unsigned i = 50; i < 100; i++) {
		size_t len = make_block(buf, sizeof buf, 0, i, 40);

		assert_int_equal(ig__tablet_log_submit(f.tl, 7, i, buf, (uint32_t)len, f.coll_ref,
						       i, IG_FOREVER), 0);
	}
	collector_wait(f.coll, 100);
	for (size_t k = 0; k < 100; k++) {
		const ig__tl_ack_t *a = &f.coll->acks[k];

		if (k < 50)
			assert_int_equal(a->status, 0);
		else
			assert_true(a->status == -EIO || a->status == IG_ESTATE);
	}
	assert_int_equal(f.coll->acks[50].status, -EIO); /* the failed fsync itself */
	assert_int_equal(atomic_load(&g_sf.early_acks), 0);
	ig__tablet_log_stats(f.tl, &s);
	assert_int_equal(s.commits, 50);
	assert_int_equal(s.failed, 50);
	assert_int_equal(s.queued_bytes, 0);
	assert_int_equal(ig_seq_committed(ig__tablet_log_seq(f.tl)), f.coll->acks[49].txn);
	atomic_store(&g_sf.tl, NULL);
	fx_stop(&f, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_writer_acks_and_replay),
		cmocka_unit_test(test_group_commit_8_writers),
		cmocka_unit_test(test_throttle_blocks_and_bounds_bytes),
		cmocka_unit_test(test_failed_fsync_gives_errors_not_acks),
	};

	wd_start(150);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
