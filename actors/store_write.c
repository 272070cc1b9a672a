/* The write path: validation, throttling, the ordered apply (txn, tablet
 * inserts, log submit) and sync. store_int.h says why the three happen
 * under one lock. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Writers slow down by at most this much per apply as pressure nears its
 * hard limit, so the latency curve rises smoothly instead of falling off
 * a cliff. */
#define IG__THROTTLE_MAX_NS 20000000LL
/* A rough memory cost per cell (skip-list node and pointers) on top of its
 * bytes; the Serializer recounts the real figure after every flush. */
#define IG__CELL_OVERHEAD 64u

/* The sequencer remembers each changed row for conflict checks; past this
 * many rows it forgets those changed before the previous trim, so its
 * memory stays bounded and a commit_max_txn older than that conflicts. */
#define IG__CONFLICT_ROWS (256u << 10)

/* ---- the log position ring -------------------------------------------------- */

static void logpos_add(ig_store_t *s, uint64_t txn, uint64_t bytes)
{
	pthread_mutex_lock(&s->pos_mu);
	s->logpos[s->logpos_n % IG__LOGPOS_RING] = (ig__logpos_t){txn, bytes};
	s->logpos_n++;
	pthread_mutex_unlock(&s->pos_mu);
}

uint64_t ig__log_bytes_at(ig_store_t *s, uint64_t txn)
{
	uint64_t lo, hi, n, best = 0;

	pthread_mutex_lock(&s->pos_mu);
	n = s->logpos_n < IG__LOGPOS_RING ? s->logpos_n : IG__LOGPOS_RING;
	lo = s->logpos_n - n;
	hi = s->logpos_n;
	/* Samples rise in txn; find the last one at or below txn. */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		const ig__logpos_t *p = &s->logpos[mid % IG__LOGPOS_RING];

		if (p->txn <= txn) {
			best = p->bytes;
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	pthread_mutex_unlock(&s->pos_mu);
	return best;
}

/* ---- throttling ----------------------------------------------------------------- */

void ig__throttle_wake(ig_store_t *s)
{
	pthread_mutex_lock(&s->thr_mu);
	pthread_cond_broadcast(&s->thr_cv);
	pthread_mutex_unlock(&s->thr_mu);
}

uint64_t ig__log_replayable(ig_store_t *s)
{
	uint64_t floor = atomic_load(&s->replay_floor), bytes = atomic_load(&s->log_bytes);

	return bytes > floor ? bytes - floor : 0;
}

/* Pressure in [0, 1] between a soft and a hard limit; > 1 past hard. */
static double pressure(uint64_t v, uint64_t soft, uint64_t hard)
{
	if (v <= soft)
		return 0;
	return (double)(v - soft) / (double)(hard - soft);
}

static double store_pressure(ig_store_t *s)
{
	uint64_t mem = atomic_load(&s->mem_counted) + atomic_load(&s->mem_added);
	uint64_t b = s->o.memory_budget;
	double pm = pressure(mem, b, 2 * b);
	double pd = pressure(atomic_load(&s->debt), s->o.debt_soft, s->o.debt_hard);
	/* The log recovery would replay: the Serializer works from half the
	 * budget; past it writers slow, at 1.5 times it they wait (not in
	 * manual mode, where nothing would flush). */
	uint64_t l = s->o.log_budget;
	double pl = s->o.manual ? 0 : pressure(ig__log_replayable(s), l, l + l / 2);

	if (pl > pm)
		pm = pl;
	return pm > pd ? pm : pd;
}

static void add_ns(struct timespec *ts, int64_t ns)
{
	ts->tv_nsec += ns % 1000000000;
	ts->tv_sec += ns / 1000000000 + ts->tv_nsec / 1000000000;
	ts->tv_nsec %= 1000000000;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Delays a writer in proportion to the pressure; past the hard limit waits
 * until the Serializer or Compactor brings it down (or a background error
 * makes waiting pointless). */
static int throttle(ig_store_t *s)
{
	struct timespec t0, dl, t1;
	double p = store_pressure(s);

	if (p <= 0)
		return 0;
	ig__serializer_kick(s);
	clock_gettime(CLOCK_REALTIME, &t0);
	dl = t0;
	pthread_mutex_lock(&s->thr_mu);
	if (p < 1) {
		add_ns(&dl, (int64_t)(p * IG__THROTTLE_MAX_NS));
		pthread_cond_timedwait(&s->thr_cv, &s->thr_mu, &dl);
	}
	while (store_pressure(s) >= 1 && !atomic_load(&s->bg_error) &&
	       !atomic_load(&s->closing)) {
		clock_gettime(CLOCK_REALTIME, &dl);
		add_ns(&dl, IG__THROTTLE_MAX_NS);
		pthread_cond_timedwait(&s->thr_cv, &s->thr_mu, &dl);
	}
	pthread_mutex_unlock(&s->thr_mu);
	clock_gettime(CLOCK_REALTIME, &t1);
	atomic_fetch_add(&s->throttled_ns, (uint64_t)(ts_ns(&t1) - ts_ns(&t0)));
	return store_pressure(s) >= 1 ? atomic_load(&s->bg_error) : 0;
}

/* ---- the ordered apply ------------------------------------------------------------ */

/* The tablets one apply touched: each gets the txn as applied once all
 * its runs are in (a block's rows may visit a tablet more than once). */
typedef struct touched {
	ig__tablet_t *inl[8];
	ig__tablet_t **v;
	size_t n, cap;
} touched_t;

static int touch(touched_t *tt, ig__tablet_t *t)
{
	for (size_t i = 0; i < tt->n; i++)
		if (tt->v[i] == t)
			return 0;
	if (tt->n == tt->cap) {
		size_t cap = tt->cap * 2;
		ig__tablet_t **v = tt->v == tt->inl ? malloc(cap * sizeof *v)
						    : realloc(tt->v, cap * sizeof *v);

		if (!v)
			return IG_ENOMEM;
		if (tt->v == tt->inl)
			memcpy(v, tt->inl, sizeof tt->inl);
		tt->v = v;
		tt->cap = cap;
	}
	tt->v[tt->n++] = ig__tablet_ref(t);
	return 0;
}

static void touched_done(touched_t *tt, uint64_t txn, bool set)
{
	for (size_t i = 0; i < tt->n; i++) {
		if (set)
			ig__tablet_set_applied(tt->v[i], txn);
		ig__tablet_unref(tt->v[i]);
	}
	if (tt->v != tt->inl)
		free(tt->v);
}

/* Inserts a run of cells of one tablet and group. In replay, a tablet
 * whose files already hold txn (its config's replay txn, kept as its
 * applied txn until replay ends) skips it. */
static int insert_run(touched_t *tt, ig__tablet_t *t, size_t g, const ig_cell_t *cells,
		      size_t n, uint64_t txn, bool replay)
{
	if (replay)
		return txn > ig__tablet_applied(t) ? ig__tablet_insert(t, g, cells, n, txn) : 0;
	int rc = touch(tt, t);

	return rc ? rc : ig__tablet_insert(t, g, cells, n, txn);
}

int ig__insert_cells(ig_table_t *tbl, const ig_cell_t *cells, size_t n, uint64_t txn,
		     bool replay, uint64_t *mem)
{
	touched_t tt = {.cap = 8};
	ig__tablet_t *cur = NULL;
	size_t start = 0, cur_g = 0;
	int rc = 0;

	tt.v = tt.inl;
	for (size_t i = 0; rc == 0 && i <= n; i++) {
		size_t g = 0;
		bool same = false;

		if (i < n) {
			const ig_cell_t *c = &cells[i];

			*mem += c->key.row_len + c->key.column_len + c->value_len + IG__CELL_OVERHEAD;
			if (ig_schema_group_of(tbl->schema, c->key.column,
					       ig_column_family_len(c->key.column, c->key.column_len),
					       &g) != 0) {
				rc = IG_EINVAL; /* replay of a family no longer in the schema */
				break;
			}
			same = cur && g == cur_g && ig__tablet_holds(cur, c->key.row, c->key.row_len);
		}
		if (same)
			continue;
		if (cur && i > start)
			rc = insert_run(&tt, cur, cur_g, cells + start, i - start, txn, replay);
		if (i == n || rc != 0)
			break;
		if (!cur || !ig__tablet_holds(cur, cells[i].key.row, cells[i].key.row_len)) {
			ig__tablet_unref(cur);
			cur = NULL;
			rc = ig__range_map_find(tbl->map, cells[i].key.row, cells[i].key.row_len, &cur);
		}
		start = i;
		cur_g = g;
	}
	ig__tablet_unref(cur);
	touched_done(&tt, txn, rc == 0 && !replay);
	return rc;
}

int ig__block_cells(const ig_packed_t *p, ig_cell_t **out)
{
	uint32_t n = ig_packed_count(p);
	ig_cell_t *v = malloc((n ? n : 1) * sizeof *v);

	if (!v)
		return IG_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		(void)ig_packed_cell(p, i, &v[i]);
	*out = v;
	return 0;
}

/* Rows are remembered for conflict checks only once some apply asks for
 * one: until then a txn is all an apply needs. The first conditional apply
 * sets the horizon at the last txn handed out, so any older commit_max_txn
 * conflicts (those rows were never remembered) and newer ones are exact. */
static int assign_txn(ig_store_t *s, ig_table_t *tbl, const ig_packed_t *p, uint64_t cmt,
		      uint64_t *txn)
{
	if (cmt == IG_STORE_ANY_TXN && !s->tracking) {
		*txn = ig_seq_next(s->seq);
		return 0;
	}
	if (!s->tracking) {
		(void)ig_seq_forget(s->seq, ig_seq_assigned(s->seq));
		s->tracking = true;
	}
	return ig_seq_apply(s->seq, tbl->id, p, 1, cmt == IG_STORE_ANY_TXN ? IG_TXN_ANY : cmt, txn,
			    NULL, NULL);
}

int ig__apply_locked(ig_store_t *s, ig_table_t *tbl, const ig_packed_t *p, const void *block,
		     size_t len, uint64_t commit_max_txn, uint64_t *txn_out)
{
	uint64_t txn, mem = 0;
	ig_cell_t *cells;
	int rc;

	if ((rc = ig__block_cells(p, &cells)) != 0)
		return rc;
	rc = assign_txn(s, tbl, p, commit_max_txn, &txn);
	if (rc == 0) {
		rc = ig__insert_cells(tbl, cells, ig_packed_count(p), txn, false, &mem);
		/* Half-inserted cells cannot be taken back; they are in no log,
		 * so the store stops taking writes rather than lose them. */
		if (rc != 0) {
			char why[128];

			snprintf(why, sizeof why, "txn %llu: a tablet insert failed: %s",
				 (unsigned long long)txn, ig_strerror(rc));
			ig__store_bg_fail(s, rc, why);
		}
	}
	free(cells);
	if (rc == 0)
		rc = ig__tablet_log_submit_txn(s->tl, txn, tbl->id, block, (uint32_t)len,
					       IG_FOREVER);
	if (rc != 0)
		return rc;
	logpos_add(s, txn, atomic_fetch_add(&s->log_bytes, len + IG__LOG_OVERHEAD + IG__LOG_ENTRY) +
				   len + IG__LOG_OVERHEAD + IG__LOG_ENTRY);
	atomic_fetch_add(&s->mem_added, mem);
	atomic_store_explicit(&s->applied, txn, memory_order_release);
	if (s->tracking && ig_seq_rows(s->seq) > IG__CONFLICT_ROWS) {
		(void)ig_seq_forget(s->seq, s->conflict_mark);
		s->conflict_mark = txn;
	}
	*txn_out = txn;
	return 0;
}

/* Kicks the Serializer when memory or the log pass half their budgets. */
static void maybe_kick(ig_store_t *s)
{
	uint64_t mem = atomic_load(&s->mem_counted) + atomic_load(&s->mem_added);
	uint64_t logged = atomic_load(&s->log_bytes) - atomic_load(&s->log_kick_mark);

	if (mem > s->o.memory_budget / 2 || logged > s->o.log_budget / 4)
		ig__serializer_kick(s);
}

static int check_block(const void *block, size_t len, ig_packed_t *p, char *why,
		       size_t why_len)
{
	size_t off = 0;
	int rc;

	if (!block || len == 0 || len > UINT32_MAX)
		return ig__say(why, why_len, IG_EINVAL, "block: no bytes or over 4 GiB");
	rc = ig_packed_open(block, len, p, &off);
	if (rc != 0)
		return ig__say(why, why_len, IG_EINVAL, "block: byte offset %zu: %s", off,
			       "not a valid packed cell block");
	if (ig_packed_count(p) == 0)
		return ig__say(why, why_len, IG_EINVAL, "block: no cells");
	return 0;
}

int ig_store_apply(ig_table_t *t, const void *block, size_t len, uint64_t commit_max_txn,
		   unsigned flags, uint64_t *out_txn, char *why, size_t why_len)
{
	ig_store_t *s;
	ig_packed_t p;
	uint64_t txn = 0;
	int rc;

	if (!t)
		return ig__say(why, why_len, IG_EINVAL, "no table");
	s = t->store;
	if ((rc = check_block(block, len, &p, why, why_len)) != 0)
		return rc;
	if ((rc = throttle(s)) != 0)
		return ig__say(why, why_len, rc, "store failed in the background: %s", s->bg_why);
	ig__store_rcu_thread();
	pthread_mutex_lock(&s->wmu);
	if (atomic_load(&t->dropped))
		rc = ig__say(why, why_len, IG_ENOTFOUND, "table '%s' was dropped", t->name);
	else if ((rc = atomic_load(&s->bg_error)) != 0)
		rc = ig__say(why, why_len, rc, "store failed in the background: %s", s->bg_why);
	else if ((rc = ig_schema_check_packed(t->schema, &p, NULL, why, why_len)) == 0)
		rc = ig__apply_locked(s, t, &p, block, len, commit_max_txn, &txn);
	pthread_mutex_unlock(&s->wmu);
	if (rc == IG_ECONFLICT)
		return ig__say(why, why_len, rc, "a row of the block changed after txn %llu",
			       (unsigned long long)commit_max_txn);
	if (rc != 0)
		return rc;
	maybe_kick(s);
	if (out_txn)
		*out_txn = txn;
	return flags & IG_STORE_SYNC ? ig_seq_sync(s->seq, txn, NULL) : 0;
}

int ig_store_sync(ig_store_t *s, uint64_t txn, ig_duration_t timeout)
{
	struct timespec dl;

	if (!s || timeout < 0)
		return IG_EINVAL;
	if (txn == 0)
		txn = atomic_load(&s->applied);
	if (timeout == IG_FOREVER)
		return ig_seq_sync(s->seq, txn, NULL);
	clock_gettime(CLOCK_MONOTONIC, &dl);
	add_ns(&dl, timeout);
	return ig_seq_sync(s->seq, txn, &dl);
}
