/* The ConfigWriter actor: makes tablet configs durable in META, and META's
 * own config durable in the root file.
 *
 * One write covers every table marked dirty (a flush, compaction, split
 * or join changed its chains): under the write lock it captures each
 * tablet's config and applies them, with erasures for tablets joined
 * away, as one META mutation, then waits for the log to sync it. The root
 * file is replaced after that (atomically: storage/config.c), so META's
 * replay txn in it never runs ahead of what the log holds. Only then are
 * the new configs what Gc must keep, and the old ones' files free to go.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one write gathers. */
typedef struct cw_batch {
	ig_cell_t *cells;
	size_t n, cap;
	uint8_t **bufs;             /* keys and values the cells point to */
	size_t nbufs, bufs_cap;
	ig_table_t **tables;        /* written tables (references) */
	ig__durable_t *durable;     /* their new durable sets */
	size_t ntables;
	ig__tconf_t *meta_conf;     /* META's own config, if it changed */
} cw_batch_t;

static int keep(cw_batch_t *b, uint8_t *p)
{
	if (!p)
		return IG_ENOMEM;
	if (b->nbufs == b->bufs_cap) {
		size_t cap = b->bufs_cap ? 2 * b->bufs_cap : 16;
		uint8_t **v = realloc(b->bufs, cap * sizeof *v);

		if (!v) {
			free(p);
			return IG_ENOMEM;
		}
		b->bufs = v;
		b->bufs_cap = cap;
	}
	b->bufs[b->nbufs++] = p;
	return 0;
}

static int add_cell(cw_batch_t *b, const uint8_t *key, uint32_t klen, const uint8_t *val,
		    size_t vlen, int64_t ts)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		ig_cell_t *v = realloc(b->cells, cap * sizeof *v);

		if (!v)
			return IG_ENOMEM;
		b->cells = v;
		b->cap = cap;
	}
	b->cells[b->n++] = (ig_cell_t){
		.key = {.row = key, .row_len = klen, .column = "c:", .column_len = 2,
			.timestamp = ts},
		.kind = val ? IG_CELL_SET : IG_CELL_ERASURE,
		.value = val, .value_len = (uint32_t)vlen};
	return 0;
}

static bool has_key(const ig__durable_t *d, const uint8_t *k, uint32_t len)
{
	for (size_t i = 0; i < d->nkeys; i++)
		if (d->key_lens[i] == len && memcmp(d->keys[i], k, len) == 0)
			return true;
	return false;
}

/* One tablet's config as a META cell, noted in the table's new durable set. */
static int add_tablet(ig_store_t *s, cw_batch_t *b, ig_table_t *t, ig__tablet_t *tab,
		      ig__durable_t *d, int64_t ts)
{
	const void *first, *last;
	uint32_t fl, ll, klen;
	ig__tconf_t *c;
	uint8_t *key, *val;
	size_t vlen;
	int rc;

	ig__tablet_range(tab, &first, &fl, &last, &ll);
	if ((rc = keep(b, key = malloc(9 + fl))) != 0)
		return rc;
	klen = ig__meta_tablet_key(t->id, first, fl, key);
	if ((rc = ig__tconf_capture(s, t, tab, &c)) != 0)
		return rc;
	rc = ig__tconf_encode(c, &val, &vlen);
	if (rc == 0 && (rc = keep(b, val)) == 0 && (rc = add_cell(b, key, klen, val, vlen, ts)) == 0)
		rc = ig__durable_note(d, key, klen, c);
	ig__tconf_free(c);
	return rc;
}

/* Every tablet of t, and erasures for keys no tablet has any more. */
static int add_table(ig_store_t *s, cw_batch_t *b, ig_table_t *t, int64_t ts)
{
	ig__durable_t *d = &b->durable[b->ntables];
	ig__tablet_t **v;
	size_t n;
	int rc = ig__range_map_range(t->map, NULL, 0, NULL, 0, &v, &n);

	if (rc != 0)
		return rc;
	*d = (ig__durable_t){.min_replay = UINT64_MAX};
	b->tables[b->ntables++] = ig__table_ref(t);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = add_tablet(s, b, t, v[i], d, ts);
	for (size_t i = 0; i < n; i++)
		ig__tablet_unref(v[i]);
	free(v);
	for (size_t i = 0; rc == 0 && i < t->durable.nkeys; i++)
		if (!has_key(d, t->durable.keys[i], t->durable.key_lens[i]))
			rc = add_cell(b, t->durable.keys[i], t->durable.key_lens[i], NULL, 0, ts);
	return rc;
}

/* The captured configs replay from `applied`, yet the txn right above it
 * is this write's own, which holds META cells only: the tables need none
 * of it. Counting it as replayed lets a trim after a full compaction pass
 * the whole log and delete its last segment, which would otherwise stay
 * for one txn that no table needs. */
static void skip_own_txn(cw_batch_t *b, uint64_t applied, uint64_t txn)
{
	if (txn != applied + 1)
		return;
	for (size_t i = 0; i < b->ntables; i++)
		if (b->durable[i].min_replay == applied)
			b->durable[i].min_replay = txn;
}

/* Under wmu: captures every dirty table (and META's config) and applies. */
static int gather_and_apply(ig_store_t *s, cw_batch_t *b, uint64_t *txn)
{
	ig_table_t **v;
	size_t n;
	int64_t ts = ig__meta_ts(s);
	uint64_t applied = atomic_load(&s->applied);
	int rc = ig__store_tables(s, false, &v, &n);

	if (rc != 0)
		return rc;
	b->tables = calloc(n ? n : 1, sizeof *b->tables);
	b->durable = calloc(n ? n : 1, sizeof *b->durable);
	if (!b->tables || !b->durable)
		rc = IG_ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (!atomic_load(&v[i]->dropped) && atomic_exchange(&v[i]->dirty, false))
			rc = add_table(s, b, v[i], ts);
	ig__tables_release(v, n);
	if (rc == 0 && b->n && (rc = ig__meta_apply_locked(s, b->cells, b->n, txn)) == 0)
		skip_own_txn(b, applied, *txn);
	if (rc == 0 && atomic_exchange(&s->meta->dirty, false)) {
		ig__tablet_t *mt;

		if ((rc = ig__range_map_find(s->meta->map, "", 1, &mt)) == 0) {
			rc = ig__tconf_capture(s, s->meta, mt, &b->meta_conf);
			ig__tablet_unref(mt);
		}
	}
	return rc;
}

void ig__store_set_root(ig_store_t *s, const ig__tconf_t *c, uint64_t generation)
{
	const ig__tc_group_t *g = &c->groups[0];
	char **names = calloc(g->nfrags ? g->nfrags : 1, sizeof *names);
	size_t n = 0;

	for (uint32_t i = 0; names && i < g->nfrags; i++)
		if ((names[n] = strdup(g->frags[i].name)))
			n++;
	pthread_mutex_lock(&s->fs_mu);
	for (size_t i = 0; i < s->nroot_names; i++)
		free(s->root_names[i]);
	free(s->root_names);
	s->root_names = names;
	s->nroot_names = n;
	/* Without every name Gc cannot tell what the root needs. */
	s->root_names_bad = !names || n != g->nfrags;
	s->root_replay = c->replay_txn;
	s->root_gen = generation;
	pthread_mutex_unlock(&s->fs_mu);
}

static int write_root(ig_store_t *s, ig__tconf_t *c)
{
	ig__root_t r = {.generation = s->root_gen + 1, .nconfigs = 1, .configs = &c};
	int rc = ig__root_write(s->dir, &r);

	if (rc == 0)
		ig__store_set_root(s, c, r.generation);
	return rc;
}

/* After the sync: the new configs are what recovery would load. */
static void publish_durable(ig_store_t *s, cw_batch_t *b)
{
	pthread_mutex_lock(&s->fs_mu);
	for (size_t i = 0; i < b->ntables; i++) {
		ig__durable_t old = b->tables[i]->durable;

		b->tables[i]->durable = b->durable[i];
		b->durable[i] = old;
	}
	pthread_mutex_unlock(&s->fs_mu);
}

static void batch_free(cw_batch_t *b)
{
	for (size_t i = 0; i < b->ntables; i++) {
		ig__durable_clear(&b->durable[i]);
		ig__table_unref(b->tables[i]);
	}
	for (size_t i = 0; i < b->nbufs; i++)
		free(b->bufs[i]);
	free(b->bufs);
	free(b->cells);
	free(b->tables);
	free(b->durable);
	ig__tconf_free(b->meta_conf);
}

int ig__config_write_dirty(ig_store_t *s, char *why, size_t why_len)
{
	cw_batch_t b = {0};
	uint64_t txn = 0;
	int rc;

	pthread_mutex_lock(&s->cw_mu);
	pthread_mutex_lock(&s->wmu);
	rc = gather_and_apply(s, &b, &txn);
	pthread_mutex_unlock(&s->wmu);
	if (rc == 0 && txn)
		rc = ig_seq_sync(s->seq, txn, NULL);
	if (rc == 0 && b.meta_conf && (rc = write_root(s, b.meta_conf)) != 0)
		atomic_store(&s->meta->dirty, true);
	if (rc == 0) {
		publish_durable(s, &b);
		/* What recovery would replay now: the throttle bounds it. */
		atomic_store(&s->replay_floor, ig__log_bytes_at(s, ig__durable_min_replay(s)));
	} else {
		for (size_t i = 0; i < b.ntables; i++)
			atomic_store(&b.tables[i]->dirty, true); /* try again next time */
	}
	pthread_mutex_unlock(&s->cw_mu);
	batch_free(&b);
	if (rc != 0)
		ig__say(why, why_len, rc, "writing tablet configs: %s", ig_strerror(rc));
	return rc;
}

/* ---- the actor --------------------------------------------------------------------------- */

static int cw_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	ig_store_t *s = *(ig_store_t **)state;
	ig__st_req_t *r = msg->size == sizeof *r ? (ig__st_req_t *)msg->data : NULL;
	char why[256];
	int rc = 0;

	(void)ctx;
	if (msg->type == IG__ST_MSG_DIRTY) {
		ig_blocking_begin();
		rc = ig__config_write_dirty(s, why, sizeof why);
		ig_blocking_end();
		if (rc != 0)
			ig__store_bg_fail(s, rc, why);
		(void)ig_tell(s->gc, IG__ST_MSG_COLLECT, NULL, 0, IG_NOREF);
	}
	if (r)
		r->done.rc = rc;
	return 0;
}

static int cw_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(ig_store_t **)state = arg;
	return 0;
}

int ig__config_writer_spawn(ig_store_t *s)
{
	s->cw_props = (ig_props_t){.behavior = cw_behavior,
				   .state_size = sizeof(ig_store_t *),
				   .init = cw_init,
				   .dispatcher = s->io};
	return ig_system_spawn(s->sys, &s->cw_props, NULL, s, &s->config_writer);
}
