/* The Serializer actor: writes memory fragments to disk.
 *
 * What to flush is chosen by a weighted sum of the two costs a memory
 * fragment carries: the memory it holds (against memory_budget) and the log
 * it pins (the bytes recovery would replay for its tablet, against
 * log_budget). Flushing the highest-scoring tablet first bounds both: memory
 * stays near half its budget, and the log a crash must replay stays under
 * log_budget, which is what bounds recovery time. After a flush the tablet
 * may split (past split_bytes) or join its neighbour, its table is marked
 * for the ConfigWriter, and the Compactor is told to look.
 *
 * Also here: the requests behind ig_store_flush and ig_store_compact, and
 * the barrier every store actor answers.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/* Flushes per look before the actor yields to its mailbox (it kicks
 * itself to go on), so a barrier or a stop is never starved. */
#define IG__SER_ROUNDS 16

/* ---- requests and barriers ------------------------------------------------------- */

static void req_dtor(void *p)
{
	ig__st_req_t *r = p;

	ig__done_signal(&r->done, r->done.rc);
}

int ig__store_request(ig_ref_t to, uint32_t type, ig_table_t *t, bool full)
{
	ig__st_req_t r = {.table = t, .full = full};

	ig__done_init(&r.done);
	r.done.rc = IG_ESTOPPED; /* unless a handler says otherwise */
	/* On failure the destructor has run already: the wait returns. */
	(void)ig_tell_ptr(to, type, &r, sizeof r, req_dtor, IG_NOREF);
	return ig__done_wait(&r.done);
}

int ig__store_barrier(ig_ref_t to)
{
	return ig__store_request(to, IG__ST_MSG_BARRIER, NULL, false);
}

int ig_store_flush(ig_store_t *s, ig_table_t *t)
{
	if (!s)
		return IG_EINVAL;
	return ig__store_request(s->serializer, IG__ST_MSG_FLUSH, t, false);
}

int ig_store_compact(ig_store_t *s, ig_table_t *t)
{
	int rc = ig_store_flush(s, t);

	if (rc == 0)
		rc = ig__store_request(s->compactor, IG__ST_MSG_COMPACT, t, true);
	/* The compaction's configs sit in META's memory and pin the log:
	 * flushing META (and rewriting the root) lets Gc trim it. Then one Gc
	 * pass, so the space the caller sees next is what the data takes. */
	if (rc == 0)
		rc = ig_store_flush(s, s->meta);
	if (rc == 0)
		rc = ig__store_request(s->gc, IG__ST_MSG_COLLECT, NULL, false);
	/* The pass sent the TabletLog its trim; wait until the segments go. */
	return rc ? rc : ig__tablet_log_barrier(s->tl);
}

void ig__serializer_kick(ig_store_t *s)
{
	bool no = false;

	if (!s->o.manual && atomic_compare_exchange_strong(&s->kicked, &no, true))
		(void)ig_tell(s->serializer, IG__ST_MSG_KICK, NULL, 0, IG_NOREF);
}

/* ---- choosing ------------------------------------------------------------------------ */

typedef struct ser_pick {
	ig_table_t *table;          /* references, or NULL */
	ig__tablet_t *tablet;
	double score;
	uint64_t mem;               /* total memory */
	uint64_t min_replay;        /* oldest txn any memory still pins */
	uint64_t debt;              /* compaction debt of every chain */
} ser_pick_t;

static void consider(ig_store_t *s, ig_table_t *t, ser_pick_t *p)
{
	ig__tablet_t **v;
	size_t n;
	uint64_t now = atomic_load(&s->log_bytes);

	if (ig__range_map_range(t->map, NULL, 0, NULL, 0, &v, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		ig__tablet_size_t z;
		double score;

		ig__tablet_size(s, t, v[i], &z);
		p->mem += z.mem_bytes;
		p->debt += z.debt;
		if (z.replay_txn < p->min_replay)
			p->min_replay = z.replay_txn;
		score = (double)z.mem_bytes / (double)s->o.memory_budget +
			(double)(now - ig__log_bytes_at(s, z.replay_txn)) / (double)s->o.log_budget;
		if (z.mem_bytes && score > p->score) {
			ig__tablet_unref(p->tablet);
			ig__table_unref(p->table);
			p->tablet = ig__tablet_ref(v[i]);
			p->table = ig__table_ref(t);
			p->score = score;
		}
	}
	for (size_t i = 0; i < n; i++)
		ig__tablet_unref(v[i]);
	free(v);
}

static void pick(ig_store_t *s, ser_pick_t *p)
{
	ig_table_t **v;
	size_t n;
	uint64_t added = atomic_load(&s->mem_added);

	*p = (ser_pick_t){.min_replay = UINT64_MAX};
	if (ig__store_tables(s, true, &v, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++)
		consider(s, v[i], p);
	ig__tables_release(v, n);
	/* The recount replaces the estimates added before it began. The
	 * debt a flush added reaches the throttle now, not after the
	 * Compactor's next pass. */
	atomic_store(&s->mem_counted, p->mem);
	atomic_store(&s->debt, p->debt);
	atomic_fetch_sub(&s->mem_added, added);
}

/* ---- flushing ---------------------------------------------------------------------------- */

static void dirty(ig_store_t *s, ig_table_t *t)
{
	atomic_store(&t->dirty, true);
	(void)ig_tell(s->config_writer, IG__ST_MSG_DIRTY, NULL, 0, IG_NOREF);
}

static int flush_tablet(ig_store_t *s, ig_table_t *t, ig__tablet_t *tab, bool rebalance)
{
	char why[512];
	bool changed;
	int rc = ig__tablet_flush(s, t, tab, why, sizeof why);

	if (rc != 0) {
		ig__store_bg_fail(s, rc, why);
		return rc;
	}
	dirty(s, t);
	if (rebalance && (rc = ig__tablet_rebalance(s, t, tab, &changed)) != 0)
		ig__store_bg_fail(s, rc, "a tablet split or join failed");
	return rc;
}

/* The throttle counts the log from the durable configs' replay floor,
 * which lags what memory pins while some table's config is older than
 * its memory: a config write still on its way, or a table no flush has
 * touched since (one that went idle, or one whose last config came before
 * a reopen). Only a config write moves the floor, and a write captures
 * dirty tables alone, so when the lag puts the log over half its budget
 * every table is recaptured; otherwise writers would wait at 1.5 budgets
 * on a floor nothing moves, and Gc could never trim below it. */
static void refresh_floor(ig_store_t *s)
{
	ig_table_t **v;
	size_t n;

	if (ig__store_tables(s, false, &v, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++)
		atomic_store(&v[i]->dirty, true);
	ig__tables_release(v, n);
	atomic_store(&s->meta->dirty, true);
	(void)ig_tell(s->config_writer, IG__ST_MSG_DIRTY, NULL, 0, IG_NOREF);
}

/* Flushes the best tablets until memory and the log are back under half
 * their budgets, or for IG__SER_ROUNDS tablets. */
static void look(ig_store_t *s)
{
	ser_pick_t p;
	int rounds = 0;
	uint64_t logged, floored;
	bool over;

	do {
		uint64_t now, from;

		pick(s, &p);
		now = atomic_load(&s->log_bytes);
		from = ig__log_bytes_at(s, p.min_replay == UINT64_MAX ? atomic_load(&s->applied)
								      : p.min_replay);
		/* An apply may land a sample past `now` meanwhile. */
		logged = now > from ? now - from : 0;
		over = p.tablet && (p.mem > s->o.memory_budget / 2 || logged > s->o.log_budget / 2);
		if (over && flush_tablet(s, p.table, p.tablet, true) != 0)
			over = false;
		ig__tablet_unref(p.tablet);
		ig__table_unref(p.table);
		ig__throttle_wake(s);
	} while (over && ++rounds < IG__SER_ROUNDS);
	/* Memory pins under half the budget, yet the floor says more, by a
	 * margin (right after a refresh the two agree, so this cannot repeat
	 * on every look). */
	floored = ig__log_replayable(s);
	if (!over && floored > s->o.log_budget / 2 && floored > logged + s->o.log_budget / 4)
		refresh_floor(s);
	atomic_store(&s->log_kick_mark, atomic_load(&s->log_bytes));
	atomic_store(&s->kicked, false);
	if (over)
		ig__serializer_kick(s);
	if (rounds)
		(void)ig_tell(s->compactor, IG__ST_MSG_TICK, NULL, 0, IG_NOREF);
}

/* Flushes every tablet of t (NULL: every table, META last, since the
 * others' flushes write configs into META). */
static int flush_all(ig_store_t *s, ig_table_t *only)
{
	ser_pick_t p;
	ig_table_t **v;
	size_t n;
	int rc = ig__store_tables(s, true, &v, &n);

	for (size_t k = n; rc == 0 && k-- > 0;) {
		ig__tablet_t **tabs;
		size_t nt;

		if (only && v[k] != only)
			continue;
		if ((rc = ig__range_map_range(v[k]->map, NULL, 0, NULL, 0, &tabs, &nt)) != 0)
			break;
		for (size_t i = 0; i < nt; i++) {
			if (rc == 0)
				rc = flush_tablet(s, v[k], tabs[i], false);
			ig__tablet_unref(tabs[i]);
		}
		free(tabs);
	}
	ig__tables_release(v, n);
	pick(s, &p); /* recounts memory for the throttle */
	ig__tablet_unref(p.tablet);
	ig__table_unref(p.table);
	ig__throttle_wake(s);
	return rc;
}

/* ---- the actor ------------------------------------------------------------------------------ */

/* Flushes, then waits for the ConfigWriter: the configs are durable when
 * the request completes. */
static void on_flush(ig_store_t *s, ig__st_req_t *r)
{
	int rc = flush_all(s, r->table);

	if (rc == 0)
		rc = ig__store_request(s->config_writer, IG__ST_MSG_DIRTY, NULL, false);
	r->done.rc = rc;
	(void)ig_tell(s->compactor, IG__ST_MSG_TICK, NULL, 0, IG_NOREF);
}

static int ser_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	ig_store_t *s = *(ig_store_t **)state;

	(void)ctx;
	ig_blocking_begin();
	switch (msg->type) {
	case IG__ST_MSG_KICK:
	case IG__ST_MSG_TICK:
		if (!s->o.manual && !atomic_load(&s->bg_error))
			look(s);
		break;
	case IG__ST_MSG_FLUSH:
		on_flush(s, (ig__st_req_t *)msg->data);
		break;
	case IG__ST_MSG_BARRIER:
		((ig__st_req_t *)msg->data)->done.rc = 0;
		break;
	}
	ig_blocking_end();
	return 0;
}

static int ser_init(ig_ctx_t *ctx, void *state, void *arg)
{
	ig_store_t *s = arg;

	*(ig_store_t **)state = s;
	/* A periodic look catches a log that grew without crossing a kick
	 * threshold in one apply. */
	if (!s->o.manual)
		return ig_timer_start(ctx, IG_SEC(1), true, IG__ST_MSG_TICK, NULL, 0, NULL);
	return 0;
}

int ig__serializer_spawn(ig_store_t *s)
{
	s->ser_props = (ig_props_t){.behavior = ser_behavior,
				    .state_size = sizeof(ig_store_t *),
				    .init = ser_init,
				    .dispatcher = s->io};
	return ig_system_spawn(s->sys, &s->ser_props, NULL, s, &s->serializer);
}
