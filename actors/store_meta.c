/* META: the row keys of schemas and tablet configs, capturing a live
 * tablet's config, rebuilding a tablet from one, and META mutations. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- keys ------------------------------------------------------------------ */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint32_t ig__meta_schema_key(uint64_t table_id, uint8_t *buf)
{
	buf[0] = 's';
	put_be64(buf + 1, table_id);
	return 9;
}

uint32_t ig__meta_tablet_key(uint64_t table_id, const void *row, uint32_t row_len,
			     uint8_t *buf)
{
	buf[0] = 't';
	put_be64(buf + 1, table_id);
	if (row_len)
		memcpy(buf + 9, row, row_len);
	return 9 + row_len;
}

int ig__meta_schema(ig_schema_t **out)
{
	static const char *const fams[] = {"c"};
	/* One version per row: compaction keeps only the newest config. */
	ig_group_config_t g = {.name = "meta", .families = fams, .nfamilies = 1,
			       .compression = IG_COMPRESSION_ZSTD, .level = 3,
			       .block_size = 16384, .max_history = 1};
	ig_schema_config_t c = {.groups = &g, .ngroups = 1};

	return ig_schema_create(&c, out, NULL, 0);
}

int64_t ig__meta_ts(ig_store_t *s)
{
	struct timespec ts;
	int64_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	/* Strictly increasing even if the clock steps back: a later config
	 * must win, and an erasure must hide every config before it. */
	s->meta_ts = now > s->meta_ts ? now : s->meta_ts + 1;
	return s->meta_ts;
}

/* ---- capture -------------------------------------------------------------- */

static uint8_t *dup_or_null(const void *p, uint32_t n)
{
	uint8_t *d;

	if (!n)
		return NULL;
	if ((d = malloc(n)))
		memcpy(d, p, n);
	return d;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');

	return b ? b + 1 : path;
}

/* Fills one config fragment from a disk link. */
static int capture_link(const ig__chain_entry_t *e, ig__tc_frag_t *f)
{
	f->name = strdup(base_name(ig__diskfrag_name(e->frag->disk)));
	f->min_txn = atomic_load(&e->frag->min_txn);
	f->max_txn = atomic_load(&e->frag->max_txn);
	if (f->min_txn == IG__TXN_NONE) /* an empty file */
		f->min_txn = f->max_txn = 0;
	f->lo_len = e->lo ? e->lo_len : 0;
	f->hi_len = e->hi ? e->hi_len : 0;
	f->lo = dup_or_null(e->lo, f->lo_len);
	f->hi = dup_or_null(e->hi, f->hi_len);
	if (!f->name || (f->lo_len && !f->lo) || (f->hi_len && !f->hi))
		return IG_ENOMEM;
	return 0;
}

/* The disk links of a chain, newest first; memory links lower *replay. */
static int capture_chain(const ig__chain_t *c, ig__tc_group_t *g, uint64_t *replay)
{
	g->frags = calloc(c->n ? c->n : 1, sizeof *g->frags);
	if (!g->frags)
		return IG_ENOMEM;
	for (size_t i = 0; i < c->n; i++) {
		const ig__chain_entry_t *e = &c->e[i];

		if (e->frag->kind == IG__FRAG_MEM) {
			uint64_t lo = atomic_load(&e->frag->min_txn);

			if (lo != IG__TXN_NONE && lo - 1 < *replay)
				*replay = lo - 1;
			continue;
		}
		int rc = capture_link(e, &g->frags[g->nfrags++]);

		if (rc != 0)
			return rc;
	}
	return 0;
}

int ig__tconf_capture(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, ig__tconf_t **out)
{
	ig__tconf_t *c = calloc(1, sizeof *c);
	ig__tablet_view_t *v;
	const void *first, *last;
	uint32_t flen, llen;
	int rc = 0;

	if (!c)
		return IG_ENOMEM;
	ig__tablet_range(t, &first, &flen, &last, &llen);
	v = ig__tablet_pin(t);
	c->table_id = tbl->id;
	c->first_len = flen;
	c->last_len = llen;
	c->first_row = dup_or_null(first, flen);
	c->last_row = dup_or_null(last, llen);
	c->log_dir = strdup(IG__STORE_LOG);
	/* No memory link: every applied txn of the tablet is on disk. The
	 * caller holds wmu, so no insert is half done. */
	c->replay_txn = atomic_load(&s->applied);
	c->ngroups = (uint32_t)v->ngroups;
	c->groups = calloc(v->ngroups, sizeof *c->groups);
	if (!c->log_dir || !c->groups || (flen && !c->first_row) || (llen && !c->last_row))
		rc = IG_ENOMEM;
	for (size_t g = 0; rc == 0 && g < v->ngroups; g++)
		rc = capture_chain(&v->g[g], &c->groups[g], &c->replay_txn);
	ig__tablet_unpin(v);
	if (rc != 0) {
		ig__tconf_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- loading ---------------------------------------------------------------- */

static int load_frag(ig_store_t *s, const ig__tc_frag_t *f, ig__frag_t **out, char *why,
		     size_t why_len)
{
	size_t n = strlen(s->frag_dir) + strlen(f->name) + 2;
	char *path = malloc(n);
	ig__diskfrag_t *df;
	int rc;

	if (!path)
		return IG_ENOMEM;
	snprintf(path, n, "%s/%s", s->frag_dir, f->name);
	rc = ig__diskfrag_open(path, &df, why, why_len);
	free(path);
	if (rc != 0)
		return rc;
	/* An empty file holds no txn. */
	rc = ig__frag_create_disk(df, f->max_txn ? f->min_txn : IG__TXN_NONE, f->max_txn, out);
	if (rc != 0)
		ig__diskfrag_unref(df);
	return rc;
}

/* Pushes a group's files oldest first, so the chain ends newest first. */
static int load_group(ig_store_t *s, ig__tablet_t *t, size_t g, const ig__tc_group_t *cg,
		      char *why, size_t why_len)
{
	for (uint32_t i = cg->nfrags; i-- > 0;) {
		const ig__tc_frag_t *f = &cg->frags[i];
		ig__frag_t *fr;
		int rc = load_frag(s, f, &fr, why, why_len);

		if (rc != 0)
			return rc;
		rc = ig__tablet_push_clipped(t, g, fr, f->lo_len ? f->lo : NULL, f->lo_len,
					     f->hi_len ? f->hi : NULL, f->hi_len);
		ig__frag_unref(fr);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int ig__tablet_from_conf(ig_store_t *s, const ig__tconf_t *c, size_t ngroups,
			 ig__tablet_t **out, char *why, size_t why_len)
{
	ig__tablet_t *t;
	int rc;

	if (c->ngroups != ngroups)
		return ig__say(why, why_len, IG_ECORRUPT,
			       "tablet config of table %llu has %u groups, its schema %zu",
			       (unsigned long long)c->table_id, c->ngroups, ngroups);
	rc = ig__tablet_create(c->first_row, c->first_len, c->last_row, c->last_len, ngroups, &t);
	if (rc != 0)
		return ig__say(why, why_len, rc, "tablet config of table %llu: bad row range",
			       (unsigned long long)c->table_id);
	for (size_t g = 0; rc == 0 && g < ngroups; g++)
		rc = load_group(s, t, g, &c->groups[g], why, why_len);
	if (rc != 0) {
		ig__tablet_unref(t);
		return rc;
	}
	ig__tablet_set_applied(t, c->replay_txn);
	*out = t;
	return 0;
}

/* ---- META mutations ------------------------------------------------------------ */

int ig__meta_apply_locked(ig_store_t *s, const ig_cell_t *cells, size_t n, uint64_t *txn)
{
	size_t len;
	void *buf;
	ig_packed_t p;
	int rc = ig_packed_size(cells, n, &len);

	if (rc != 0)
		return rc;
	if (!(buf = malloc(len)))
		return IG_ENOMEM;
	rc = ig_packed_encode(cells, n, 0, buf, len, &len);
	if (rc == 0)
		rc = ig_packed_open(buf, len, &p, NULL);
	if (rc == 0)
		rc = ig__apply_locked(s, s->meta, &p, buf, len, IG_STORE_ANY_TXN, txn);
	free(buf);
	return rc;
}
