/* The Gc actor: deletes what nothing can need any more.
 *
 * A fragment file is kept while any of these names it: a durable tablet
 * config (what recovery loads), the root file (META's own files), a
 * tablet's current chain (scans and the next config write), or a write in
 * flight (a file being written before it is swapped in). Everything else
 * in frags/ goes. A pass never overlaps a config write (cw_mu), whose
 * captured files are in neither set until it is durable. Scans still
 * reading a deleted file keep it open, so deleting never breaks them. Log
 * segments go once every durable config replays from a later txn.
 */
#include "store_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t ig__durable_min_replay(ig_store_t *s)
{
	uint64_t m;

	pthread_mutex_lock(&s->fs_mu);
	m = s->root_replay;
	pthread_mutex_lock(&s->tmu);
	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i]->durable.nkeys && s->tables[i]->durable.min_replay < m)
			m = s->tables[i]->durable.min_replay;
	pthread_mutex_unlock(&s->tmu);
	pthread_mutex_unlock(&s->fs_mu);
	return m;
}

/* ---- the live set ----------------------------------------------------------------- */

/* A set that could not be built whole (bad = true) deletes nothing. */
typedef struct live {
	uint64_t *v;
	size_t n, cap;
	bool bad;
} live_t;

static void live_push(live_t *l, uint64_t num)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint64_t *v = realloc(l->v, cap * sizeof *v);

		if (!v) {
			l->bad = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = num;
}

static void live_add(live_t *l, const char *name)
{
	uint64_t num;

	if (ig__frag_file_parse(name, &num))
		live_push(l, num);
}

static const char *base_name(const char *p)
{
	const char *b = strrchr(p, '/');

	return b ? b + 1 : p;
}

static void live_views(live_t *l, ig_table_t *t)
{
	ig__tablet_t **v;
	size_t n;

	if (ig__range_map_range(t->map, NULL, 0, NULL, 0, &v, &n) != 0) {
		l->bad = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		ig__tablet_view_t *view = ig__tablet_pin(v[i]);

		for (size_t g = 0; g < view->ngroups; g++)
			for (size_t k = 0; k < view->g[g].n; k++)
				if (view->g[g].e[k].frag->kind == IG__FRAG_DISK)
					live_add(l, base_name(ig__diskfrag_name(
							     view->g[g].e[k].frag->disk)));
		ig__tablet_unpin(view);
		ig__tablet_unref(v[i]);
	}
	free(v);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Under fs_mu: every number something still needs, sorted. */
static bool gather_live(ig_store_t *s, live_t *l, uint64_t *next)
{
	*next = atomic_load(&s->next_file);
	l->bad = s->root_names_bad;
	for (size_t i = 0; i < s->nroot_names; i++)
		live_add(l, s->root_names[i]);
	for (size_t i = 0; i < s->ninflight; i++)
		live_push(l, s->inflight[i]);
	pthread_mutex_lock(&s->tmu);
	for (size_t i = 0; i < s->ntables; i++) {
		const ig__durable_t *d = &s->tables[i]->durable;

		for (size_t k = 0; k < d->nnames; k++)
			live_add(l, d->names[k]);
		live_views(l, s->tables[i]);
	}
	pthread_mutex_unlock(&s->tmu);
	if (l->bad)
		return false;
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, cmp_u64);
	return true;
}

static void collect_files(ig_store_t *s)
{
	live_t l = {0};
	uint64_t next, num;
	DIR *d;
	struct dirent *e;

	/* Never between a config write's capture and its publication: the
	 * files it captured may have left the views already (a compaction)
	 * while the durable set does not name them yet. */
	pthread_mutex_lock(&s->cw_mu);
	pthread_mutex_lock(&s->fs_mu);
	if (gather_live(s, &l, &next) && (d = opendir(s->frag_dir))) {
		while ((e = readdir(d))) {
			/* Numbers from next on were handed out after the set
			 * was taken: in flight, never garbage. */
			if (!ig__frag_file_parse(e->d_name, &num) || num >= next ||
			    (l.n && bsearch(&num, l.v, l.n, sizeof num, cmp_u64)))
				continue;
			if (unlinkat(dirfd(d), e->d_name, 0) == 0)
				atomic_fetch_add(&s->files_deleted, 1);
		}
		closedir(d);
	}
	pthread_mutex_unlock(&s->fs_mu);
	pthread_mutex_unlock(&s->cw_mu);
	free(l.v);
}

void ig__gc_collect(ig_store_t *s)
{
	uint64_t m = ig__durable_min_replay(s);

	collect_files(s);
	if (m != UINT64_MAX)
		(void)ig__tablet_log_trim(s->tl, m + 1);
}

/* ---- the actor ---------------------------------------------------------------------- */

static int gc_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	ig_store_t *s = *(ig_store_t **)state;

	(void)ctx;
	if (msg->type == IG__ST_MSG_COLLECT) {
		ig_blocking_begin();
		ig__gc_collect(s);
		ig_blocking_end();
		if (msg->size == sizeof(ig__st_req_t)) /* ig_store_compact waits */
			((ig__st_req_t *)msg->data)->done.rc = 0;
	} else if (msg->type == IG__ST_MSG_BARRIER) {
		((ig__st_req_t *)msg->data)->done.rc = 0;
	}
	return 0;
}

static int gc_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(ig_store_t **)state = arg;
	return 0;
}

int ig__gc_spawn(ig_store_t *s)
{
	s->gc_props = (ig_props_t){.behavior = gc_behavior,
				   .state_size = sizeof(ig_store_t *),
				   .init = gc_init,
				   .dispatcher = s->io};
	return ig_system_spawn(s->sys, &s->gc_props, NULL, s, &s->gc);
}
