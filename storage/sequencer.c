/* The sequencer: txn assignment, the committed txn with its callbacks and
 * sync waits, and the row -> last-txn table behind commitMaxTxn conflict
 * checks. See sequencer_int.h for the contract.
 *
 * One mutex guards everything but the two counters: applies are short
 * (a hash probe per cell) and must be atomic with their txn assignment
 * anyway, and commits come once per group-commit fsync. The counters are
 * atomics so ig_seq_next and ig_seq_committed never wait.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cell_int.h"
#include "sequencer_int.h"

/* A pending commit callback; ord breaks ties so equal txns run in
 * registration order. */
typedef struct waiter {
	uint64_t txn;
	uint64_t ord;
	ig_seq_fn fn;
	void *arg;
} waiter_t;

/* A remembered row: its last change. row == NULL marks an empty slot. */
typedef struct slot {
	uint8_t *row;        /* owned copy */
	uint64_t table_id;
	uint64_t txn;
	uint32_t len;
	uint32_t hash;
} slot_t;

struct ig_seq {
	_Atomic uint64_t next;       /* next txn to assign */
	_Atomic uint64_t committed;  /* highest durable txn */
	atomic_bool spinning;        /* a sync waiter is spinning (spin_wait) */
	pthread_mutex_t mu;
	pthread_cond_t cv;           /* CLOCK_MONOTONIC; signalled on commit and fail */
	int failed;                  /* 0 or the sticky failure */
	waiter_t *heap;              /* min-heap of pending callbacks by (txn, ord) */
	size_t nheap, heap_cap;
	uint64_t ord;
	slot_t *slots;               /* open addressing, linear probing, power of 2 */
	size_t nslots, used;
	uint64_t horizon;            /* rows changed at or below it are forgotten */
};

/* ---- callbacks heap ------------------------------------------------------ */

static bool w_less(const waiter_t *a, const waiter_t *b)
{
	return a->txn < b->txn || (a->txn == b->txn && a->ord < b->ord);
}

static int heap_push(ig_seq_t *s, waiter_t w)
{
	size_t i;

	if (s->nheap == s->heap_cap) {
		size_t nc = s->heap_cap ? s->heap_cap * 2 : 16;
		waiter_t *nh = realloc(s->heap, nc * sizeof *nh);
		if (!nh)
			return IG_ENOMEM;
		s->heap = nh;
		s->heap_cap = nc;
	}
	i = s->nheap++;
	while (i > 0 && w_less(&w, &s->heap[(i - 1) / 2])) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = w;
	return 0;
}

static waiter_t heap_pop(ig_seq_t *s)
{
	waiter_t top = s->heap[0], last = s->heap[--s->nheap];
	size_t i = 0, n = s->nheap;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && w_less(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!w_less(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n > 0)
		s->heap[i] = last;
	return top;
}

/* Takes the callbacks due (txn <= upto, or all when upto is UINT64_MAX)
 * out of the heap, in order, so they run after the lock is dropped.
 * Ownership: *out is malloc'd, the caller frees it. On allocation failure
 * the callbacks stay queued and *n is 0 (a later commit retries). */
static void take_due(ig_seq_t *s, uint64_t upto, waiter_t **out, size_t *n)
{
	size_t k = 0, cnt = 0;
	waiter_t *v;

	for (size_t i = 0; i < s->nheap; i++)
		cnt += s->heap[i].txn <= upto;
	*out = NULL;
	*n = 0;
	if (cnt == 0 || !(v = malloc(cnt * sizeof *v)))
		return;
	while (s->nheap > 0 && s->heap[0].txn <= upto)
		v[k++] = heap_pop(s);
	*out = v;
	*n = k;
}

static void run_all(waiter_t *v, size_t n, int status)
{
	for (size_t i = 0; i < n; i++)
		v[i].fn(v[i].arg, v[i].txn, status);
	free(v);
}

/* ---- lifecycle ----------------------------------------------------------- */

int ig_seq_create(uint64_t last_txn, ig_seq_t **out)
{
	ig_seq_t *s;
	pthread_condattr_t ca;
	int rc;

	if (!out || last_txn == UINT64_MAX)
		return IG_EINVAL;
	s = calloc(1, sizeof *s);
	if (!s)
		return IG_ENOMEM;
	atomic_init(&s->next, last_txn + 1);
	atomic_init(&s->committed, last_txn);
	s->horizon = last_txn;
	s->nslots = 64;
	s->slots = calloc(s->nslots, sizeof *s->slots);
	if (!s->slots) {
		free(s);
		return IG_ENOMEM;
	}
	rc = pthread_mutex_init(&s->mu, NULL);
	if (rc != 0)
		goto fail_slots;
	/* Deadlines are CLOCK_MONOTONIC so wall-clock jumps do not move them. */
	if ((rc = pthread_condattr_init(&ca)) != 0)
		goto fail_mu;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		goto fail_mu;
	*out = s;
	return 0;

fail_mu:
	pthread_mutex_destroy(&s->mu);
fail_slots:
	free(s->slots);
	free(s);
	return -rc;
}

void ig_seq_destroy(ig_seq_t *s)
{
	waiter_t *v;
	size_t n;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	take_due(s, UINT64_MAX, &v, &n);
	pthread_mutex_unlock(&s->mu);
	run_all(v, n, IG_ESTOPPED);
	/* take_due could not allocate: run what is left straight off the heap. */
	while (s->nheap > 0) {
		waiter_t w = heap_pop(s);
		w.fn(w.arg, w.txn, IG_ESTOPPED);
	}
	for (size_t i = 0; i < s->nslots; i++)
		free(s->slots[i].row);
	free(s->slots);
	free(s->heap);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- txns, commits, syncs ----------------------------------------------- */

uint64_t ig_seq_next(ig_seq_t *s)
{
	return atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
}

uint64_t ig_seq_assigned(const ig_seq_t *s)
{
	return atomic_load_explicit(&((ig_seq_t *)s)->next, memory_order_relaxed) - 1;
}

uint64_t ig_seq_committed(const ig_seq_t *s)
{
	return atomic_load_explicit(&((ig_seq_t *)s)->committed, memory_order_acquire);
}

int ig_seq_commit(ig_seq_t *s, uint64_t txn)
{
	waiter_t *v = NULL;
	size_t n = 0;
	int rc = 0;

	if (txn > ig_seq_assigned(s))
		return IG_EINVAL;
	pthread_mutex_lock(&s->mu);
	if (s->failed) {
		rc = s->failed;
	} else if (txn > atomic_load_explicit(&s->committed, memory_order_relaxed)) {
		atomic_store_explicit(&s->committed, txn, memory_order_release);
		pthread_cond_broadcast(&s->cv);
	}
	if (rc == 0)
		take_due(s, atomic_load_explicit(&s->committed, memory_order_relaxed), &v, &n);
	pthread_mutex_unlock(&s->mu);
	run_all(v, n, 0);
	return rc;
}

int ig_seq_on_commit(ig_seq_t *s, uint64_t txn, ig_seq_fn fn, void *arg)
{
	int status = 1, rc = 0;

	if (!fn)
		return IG_EINVAL;
	pthread_mutex_lock(&s->mu);
	if (txn <= atomic_load_explicit(&s->committed, memory_order_relaxed))
		status = 0;
	else if (s->failed)
		status = s->failed;
	else
		rc = heap_push(s, (waiter_t){.txn = txn, .ord = s->ord++, .fn = fn, .arg = arg});
	pthread_mutex_unlock(&s->mu);
	if (status != 1)
		fn(arg, txn, status);
	return rc;
}

/* A sync waits for an fdatasync, about 100 us here, and a thread woken
 * from a condition variable adds its wake-up latency to each commit: the
 * whole gap between a lone synced writer and one that writes the log
 * itself. So one waiter at a time spins for up to SPIN_NS, giving up its
 * core every few dozen checks to any thread that wants it, before it
 * sleeps like the others (MySQL's user threads wait for a redo flush the
 * same way). Returns whether txn became durable meanwhile. */
#define SPIN_NS 300000

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool spin_wait(ig_seq_t *s, uint64_t txn)
{
	bool no = false, done = false;

	if (!atomic_compare_exchange_strong(&s->spinning, &no, true))
		return false;
	int64_t until = mono_ns() + SPIN_NS;
	for (unsigned i = 1;; i++) {
		if ((done = txn <= ig_seq_committed(s)))
			break;
		if ((i & 63) == 0) {
			if (mono_ns() > until)
				break;
			sched_yield();
		}
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
	atomic_store(&s->spinning, false);
	return done;
}

int ig_seq_sync(ig_seq_t *s, uint64_t txn, const struct timespec *deadline)
{
	int rc = 0;

	if (txn <= ig_seq_committed(s) || (!deadline && spin_wait(s, txn)))
		return 0;
	pthread_mutex_lock(&s->mu);
	while (txn > atomic_load_explicit(&s->committed, memory_order_relaxed)) {
		if (s->failed) {
			rc = s->failed;
			break;
		}
		if (!deadline) {
			pthread_cond_wait(&s->cv, &s->mu);
		} else if (pthread_cond_timedwait(&s->cv, &s->mu, deadline) == ETIMEDOUT) {
			if (txn > atomic_load_explicit(&s->committed, memory_order_relaxed))
				rc = s->failed ? s->failed : IG_ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void ig_seq_fail(ig_seq_t *s, int err)
{
	waiter_t *v;
	size_t n;

	if (err >= 0)
		err = IG_EFAILED;
	pthread_mutex_lock(&s->mu);
	if (!s->failed)
		s->failed = err;
	err = s->failed;
	pthread_cond_broadcast(&s->cv);
	take_due(s, UINT64_MAX, &v, &n);
	pthread_mutex_unlock(&s->mu);
	run_all(v, n, err);
}

/* ---- the row table -------------------------------------------------------- */

static uint32_t row_hash(uint64_t table_id, const void *row, size_t len)
{
	uint8_t t[8];

	memcpy(t, &table_id, sizeof t);
	return ig_crc32c(ig_crc32c(0, t, sizeof t), row, len);
}

/* Returns the slot holding the row, or the empty slot where it would go. */
static slot_t *find(slot_t *slots, size_t nslots, uint64_t table_id, const void *row, size_t len,
		    uint32_t h)
{
	size_t mask = nslots - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		slot_t *sl = &slots[i];
		if (!sl->row || (sl->hash == h && sl->table_id == table_id &&
				 ig__bytes_eq(sl->row, sl->len, row, len)))
			return sl;
	}
}

/* Rebuilds the table with nslots slots, keeping rows changed after
 * horizon (and freeing the others). */
static int rebuild(ig_seq_t *s, size_t nslots, uint64_t horizon)
{
	slot_t *ns = calloc(nslots, sizeof *ns);
	size_t used = 0;

	if (!ns)
		return IG_ENOMEM;
	for (size_t i = 0; i < s->nslots; i++) {
		slot_t *o = &s->slots[i];
		if (!o->row)
			continue;
		if (o->txn <= horizon) {
			free(o->row);
			continue;
		}
		*find(ns, nslots, o->table_id, o->row, o->len, o->hash) = *o;
		used++;
	}
	free(s->slots);
	s->slots = ns;
	s->nslots = nslots;
	s->used = used;
	return 0;
}

int ig_seq_apply(ig_seq_t *s, uint64_t table_id, const ig_packed_t *blocks, size_t nblocks,
		 uint64_t commit_max_txn, uint64_t *out_txn, uint32_t *conflict_block,
		 uint32_t *conflict_cell)
{
	size_t cells = 0, need;
	uint64_t txn;
	int rc = 0;

	if (!s || (!blocks && nblocks > 0) || !out_txn || nblocks > UINT32_MAX)
		return IG_EINVAL;
	for (size_t b = 0; b < nblocks; b++)
		cells += ig_packed_count(&blocks[b]);
	pthread_mutex_lock(&s->mu);
	if (commit_max_txn != IG_TXN_ANY) {
		if (commit_max_txn < s->horizon) {
			if (conflict_block)
				*conflict_block = UINT32_MAX;
			if (conflict_cell)
				*conflict_cell = UINT32_MAX;
			rc = IG_ECONFLICT;
			goto out;
		}
		for (size_t b = 0; b < nblocks; b++) {
			for (uint32_t i = 0; i < ig_packed_count(&blocks[b]); i++) {
				ig_cell_t c;
				slot_t *sl;
				ig_packed_cell(&blocks[b], i, &c);
				sl = find(s->slots, s->nslots, table_id, c.key.row, c.key.row_len,
					  row_hash(table_id, c.key.row, c.key.row_len));
				if (sl->row && sl->txn > commit_max_txn) {
					if (conflict_block)
						*conflict_block = (uint32_t)b;
					if (conflict_cell)
						*conflict_cell = i;
					rc = IG_ECONFLICT;
					goto out;
				}
			}
		}
	}
	/* Room for every cell's row as a new one, at most 3/4 full, before
	 * anything changes. */
	need = s->nslots;
	while ((s->used + cells) * 4 >= need * 3)
		need *= 2;
	if (need != s->nslots && (rc = rebuild(s, need, 0)) != 0)
		goto out;
	txn = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
	for (size_t b = 0; b < nblocks; b++) {
		for (uint32_t i = 0; i < ig_packed_count(&blocks[b]); i++) {
			ig_cell_t c;
			uint32_t h;
			slot_t *sl;
			ig_packed_cell(&blocks[b], i, &c);
			h = row_hash(table_id, c.key.row, c.key.row_len);
			sl = find(s->slots, s->nslots, table_id, c.key.row, c.key.row_len, h);
			if (!sl->row) {
				uint8_t *copy = malloc(c.key.row_len);
				if (!copy) {
					rc = IG_ENOMEM;
					goto out;
				}
				memcpy(copy, c.key.row, c.key.row_len);
				*sl = (slot_t){.row = copy, .table_id = table_id,
					       .len = c.key.row_len, .hash = h};
				s->used++;
			}
			sl->txn = txn;
		}
	}
	*out_txn = txn;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int ig_seq_row_txn(ig_seq_t *s, uint64_t table_id, const void *row, size_t row_len,
		   uint64_t *txn)
{
	slot_t *sl;
	int rc = IG_ENOTFOUND;

	pthread_mutex_lock(&s->mu);
	sl = find(s->slots, s->nslots, table_id, row, row_len, row_hash(table_id, row, row_len));
	if (sl->row) {
		*txn = sl->txn;
		rc = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

size_t ig_seq_forget(ig_seq_t *s, uint64_t horizon)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	if (horizon > s->horizon) {
		size_t keep = 0, nslots = 64;
		for (size_t i = 0; i < s->nslots; i++)
			keep += s->slots[i].row && s->slots[i].txn > horizon;
		while (keep * 4 >= nslots * 3)
			nslots *= 2;
		/* Best effort: without memory every row stays (rows at or below
		 * the horizon can no longer conflict with an apply it allows, so
		 * keeping them is harmless) and the horizon moves all the same. */
		(void)rebuild(s, nslots, horizon);
		s->horizon = horizon;
	}
	n = s->used;
	pthread_mutex_unlock(&s->mu);
	return n;
}

size_t ig_seq_rows(ig_seq_t *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->used;
	pthread_mutex_unlock(&s->mu);
	return n;
}
