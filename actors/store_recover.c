/* Opening a store directory: the root file gives META's tablet; the log
 * above META's replay txn completes META; META gives the tables, their
 * schemas and tablet configs; the log above each tablet's replay txn
 * completes the tablets. Anything the configs name must open and check
 * out, or the open fails naming the file: a store never starts with data
 * silently missing. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema_codec_int.h"

/* ---- META's own tablet ---------------------------------------------------- */

static int new_meta(ig_store_t *s)
{
	ig_schema_t *sc;
	int rc = ig__meta_schema(&sc);

	if (rc != 0)
		return rc;
	rc = ig__table_new(s, IG__META_TABLE, "META", sc, &s->meta);
	ig_schema_unref(sc);
	if (rc == 0)
		rc = ig__store_add_table(s, s->meta);
	return rc;
}

/* Loads META's tablet from the root file's config. */
static int load_meta(ig_store_t *s, const ig__root_t *r, char *why, size_t why_len)
{
	ig__tablet_t *t;
	const ig__tconf_t *c = r->configs[0];
	int rc;

	if (r->nconfigs != 1 || c->table_id != IG__META_TABLE || c->first_len || c->last_len)
		return ig__say(why, why_len, IG_ECORRUPT,
			       "%s/root: expected one META tablet config covering every row",
			       s->dir);
	rc = ig__tablet_from_conf(s, c, 1, &t, why, why_len);
	if (rc != 0)
		return rc;
	rc = ig__range_map_load(s->meta->map, &t, 1);
	ig__tablet_unref(t);
	/* Gc must spare the root's files even once META's chain moves on. */
	ig__store_set_root(s, c, r->generation);
	return rc;
}

/* ---- the log --------------------------------------------------------------------- */

typedef struct replay_ctx {
	ig_store_t *s;
	bool meta;                  /* pass 1: META only; pass 2: the rest */
	uint64_t records, mem;
	char *why;
	size_t why_len;
} replay_ctx_t;

static ig_table_t *table_by_id(ig_store_t *s, uint64_t id)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i]->id == id)
			return s->tables[i];
	return NULL;
}

static int replay_item(replay_ctx_t *x, const ig_log_item_t *it, uint64_t txn)
{
	ig_table_t *t;
	ig_cell_t *cells;
	int rc;

	if ((it->table_id == IG__META_TABLE) != x->meta)
		return 0;
	/* A dropped table's records are still in the log: skip them. */
	if (!(t = table_by_id(x->s, it->table_id)))
		return 0;
	if ((rc = ig__block_cells(&it->block, &cells)) != 0)
		return rc;
	rc = ig__insert_cells(t, cells, ig_packed_count(&it->block), txn, true, &x->mem);
	free(cells);
	if (rc != 0)
		return ig__say(x->why, x->why_len, rc,
			       "log replay: txn %llu of table %llu does not fit its schema",
			       (unsigned long long)txn, (unsigned long long)it->table_id);
	return 0;
}

/* Where replay started: the earliest record either pass read, as
 * (segment, offset), for the replay floor note_log_size computes. */
static void note_first(ig_store_t *s, const ig_log_record_t *rec)
{
	const char *base = strrchr(rec->file, '/');
	uint64_t seg;

	if (!ig_log_segment_parse(base ? base + 1 : rec->file, &seg))
		return;
	if (seg < s->replay_seg || (seg == s->replay_seg && rec->offset < s->replay_off)) {
		s->replay_seg = seg;
		s->replay_off = rec->offset;
	}
}

static int replay_cb(void *arg, const ig_log_record_t *rec)
{
	replay_ctx_t *x = arg;
	ig_log_item_t it;
	size_t pos = 0;
	int rc;

	note_first(x->s, rec);

	while ((rc = ig_log_record_next(rec, &pos, &it)) == 1)
		if ((rc = replay_item(x, &it, rec->last_txn)) != 0)
			return rc;
	x->records++;
	return rc;
}

static int replay(ig_store_t *s, bool meta, uint64_t from, char *why, size_t why_len)
{
	replay_ctx_t x = {.s = s, .meta = meta, .why = why, .why_len = why_len};
	ig_log_scan_t out;
	ig_log_error_t err;
	int rc = ig_log_replay(s->log_dir, from, replay_cb, &x, &out, &err);

	if (rc == IG_ECORRUPT || (rc < 0 && rc > IG_E_BASE))
		return ig__say(why, why_len, rc, "%s", err.msg);
	if (rc != 0)
		return rc;
	if (!meta)
		s->recovered_txns = x.records;
	atomic_fetch_add(&s->mem_added, x.mem);
	return 0;
}

/* ---- META's rows ------------------------------------------------------------------ */

typedef struct tablet_list {
	ig__tablet_t **v;
	size_t n, cap;
} tablet_list_t;

typedef struct load_ctx {
	ig_store_t *s;
	ig_table_t *cur;            /* the table whose configs come now */
	tablet_list_t tabs;
	char *why;
	size_t why_len;
} load_ctx_t;

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int load_schema(load_ctx_t *x, const ig_cell_t *c)
{
	const uint8_t *v = c->value;
	ig_schema_t *sc;
	ig_table_t *t;
	char name[IG_TABLE_NAME_MAX + 1];
	size_t off = 0;
	int rc;

	if (c->key.row_len != 9 || c->value_len < 1 || v[0] == 0 || v[0] > IG_TABLE_NAME_MAX ||
	    c->value_len < 1u + v[0])
		return ig__say(x->why, x->why_len, IG_ECORRUPT, "META: malformed schema row");
	memcpy(name, v + 1, v[0]);
	name[v[0]] = 0;
	rc = ig__schema_decode(v + 1 + v[0], c->value_len - 1 - v[0], &sc, &off, x->why,
			       x->why_len);
	if (rc != 0)
		return rc;
	rc = ig__table_new(x->s, be64((const uint8_t *)c->key.row + 1), name, sc, &t);
	ig_schema_unref(sc);
	if (rc == 0)
		rc = ig__store_add_table(x->s, t);
	ig__table_unref(t);
	return rc;
}

static int list_push(tablet_list_t *l, ig__tablet_t *t)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		ig__tablet_t **v = realloc(l->v, cap * sizeof *v);

		if (!v)
			return IG_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = t;
	return 0;
}

static void list_clear(tablet_list_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		ig__tablet_unref(l->v[i]);
	l->n = 0;
}

/* Installs the tablets gathered for x->cur. */
static int finish_table(load_ctx_t *x)
{
	int rc = 0;

	if (x->cur && x->tabs.n) {
		rc = ig__range_map_load(x->cur->map, x->tabs.v, x->tabs.n);
		if (rc != 0)
			rc = ig__say(x->why, x->why_len, IG_ECORRUPT,
				     "META: the tablets of table '%s' do not cover its rows",
				     x->cur->name);
	}
	list_clear(&x->tabs);
	x->cur = NULL;
	return rc;
}

static int durable_add_name(ig__durable_t *d, const char *name)
{
	char **v;

	for (size_t i = 0; i < d->nnames; i++)
		if (strcmp(d->names[i], name) == 0)
			return 0;
	if (!(v = realloc(d->names, (d->nnames + 1) * sizeof *v)))
		return IG_ENOMEM;
	d->names = v;
	if (!(v[d->nnames] = strdup(name)))
		return IG_ENOMEM;
	d->nnames++;
	return 0;
}

int ig__durable_note(ig__durable_t *d, const uint8_t *key, uint32_t key_len,
		     const ig__tconf_t *c)
{
	uint8_t **k = realloc(d->keys, (d->nkeys + 1) * sizeof *k);
	uint32_t *kl;
	int rc = 0;

	if (!k)
		return IG_ENOMEM;
	d->keys = k;
	if (!(kl = realloc(d->key_lens, (d->nkeys + 1) * sizeof *kl)))
		return IG_ENOMEM;
	d->key_lens = kl;
	if (!(k[d->nkeys] = malloc(key_len)))
		return IG_ENOMEM;
	memcpy(k[d->nkeys], key, key_len);
	kl[d->nkeys++] = key_len;
	if (c->replay_txn < d->min_replay)
		d->min_replay = c->replay_txn;
	for (uint32_t g = 0; rc == 0 && g < c->ngroups; g++)
		for (uint32_t i = 0; rc == 0 && i < c->groups[g].nfrags; i++)
			rc = durable_add_name(d, c->groups[g].frags[i].name);
	return rc;
}

static int load_tablet(load_ctx_t *x, const ig_cell_t *c)
{
	uint64_t id = be64((const uint8_t *)c->key.row + 1);
	ig__tconf_t *conf;
	ig__tablet_t *t;
	size_t off = 0;
	int rc;

	if (!x->cur || x->cur->id != id) {
		if ((rc = finish_table(x)) != 0)
			return rc;
		x->cur = table_by_id(x->s, id);
		if (!x->cur) /* a config left behind by a drop in flight */
			return 0;
	}
	rc = ig__tconf_decode(c->value, c->value_len, &conf, &off);
	if (rc != 0)
		return ig__say(x->why, x->why_len, rc,
			       "META: tablet config of table %llu: byte offset %zu: malformed",
			       (unsigned long long)id, off);
	rc = ig__tablet_from_conf(x->s, conf, ig_schema_group_count(x->cur->schema), &t, x->why,
				  x->why_len);
	if (rc == 0 && (rc = list_push(&x->tabs, t)) != 0)
		ig__tablet_unref(t);
	if (rc == 0)
		rc = ig__durable_note(&x->cur->durable, c->key.row, c->key.row_len, conf);
	ig__tconf_free(conf);
	return rc;
}

static int load_row(load_ctx_t *x, const ig_cell_t *c)
{
	const uint8_t *row = c->key.row;

	if (row[0] == 'n' && c->key.row_len == 1 && c->value_len == 8) {
		x->s->next_table_id = be64(c->value);
		return 0;
	}
	if (row[0] == 's')
		return load_schema(x, c);
	if (row[0] == 't' && c->key.row_len >= 9)
		return load_tablet(x, c);
	return ig__say(x->why, x->why_len, IG_ECORRUPT, "META: unknown row kind '%c'", row[0]);
}

static int load_tables(ig_store_t *s, char *why, size_t why_len)
{
	load_ctx_t x = {.s = s, .why = why, .why_len = why_len};
	ig_scan_options_t o;
	ig_scanner_t *sc;
	ig_cell_t c;
	int rc;

	ig_scan_options_init(&o);
	o.max_versions = 1;
	if ((rc = ig_scanner_open(s->meta, &o, &sc)) != 0)
		return rc;
	while ((rc = ig_scanner_next(sc, &c)) == 1)
		if ((rc = load_row(&x, &c)) != 0)
			break;
	if (rc < 0 && rc != IG_ECORRUPT && !(why && *why))
		ig__say(why, why_len, rc, "META: %s", ig_scanner_error(sc));
	ig_scanner_close(sc);
	if (rc == 0)
		rc = finish_table(&x);
	list_clear(&x.tabs);
	free(x.tabs.v);
	return rc;
}

/* ---- files -------------------------------------------------------------------------- */

/* The next file number is past every file there, and a temporary file a
 * crash left behind is removed. */
static int scan_frag_dir(ig_store_t *s)
{
	DIR *d = opendir(s->frag_dir);
	struct dirent *e;
	uint64_t max = 0, n;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
		else if (ig__frag_file_parse(e->d_name, &n) && n > max)
			max = n;
	}
	closedir(d);
	atomic_store(&s->next_file, max + 1);
	return 0;
}

/* The log's size now, and where recovery would start replaying (the
 * first record either pass read), so the throttle and the Serializer know
 * how much of the log a crash would replay. */
static void note_log_size(ig_store_t *s, uint64_t last_txn)
{
	uint64_t *segs, total = 0, floor = UINT64_MAX, m = ig__durable_min_replay(s);
	size_t n, k = 0;
	char path[4096];
	struct stat st;

	if (ig_log_list(s->log_dir, &segs, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		char name[IG_LOG_NAME_LEN + 1];

		if (segs[i] == s->replay_seg)
			floor = total + s->replay_off;
		ig_log_segment_name(segs[i], name);
		snprintf(path, sizeof path, "%s/%s", s->log_dir, name);
		if (stat(path, &st) == 0)
			total += (uint64_t)st.st_size;
	}
	free(segs);
	if (floor > total) /* nothing replayed: nothing to replay */
		floor = total;
	atomic_store(&s->log_bytes, total);
	if (m < last_txn)
		s->logpos[k++] = (ig__logpos_t){m, floor};
	s->logpos[k++] = (ig__logpos_t){last_txn, total};
	s->logpos_n = k;
	atomic_store(&s->replay_floor, floor);
}

/* ---- the whole ----------------------------------------------------------------------- */

static void set_all_applied(ig_store_t *s, uint64_t txn)
{
	for (size_t i = 0; i < s->ntables; i++) {
		ig__tablet_t **v;
		size_t n;

		if (ig__range_map_range(s->tables[i]->map, NULL, 0, NULL, 0, &v, &n) != 0)
			continue;
		for (size_t k = 0; k < n; k++) {
			ig__tablet_set_applied(v[k], txn);
			ig__tablet_unref(v[k]);
		}
		free(v);
	}
}

static uint64_t tables_min_replay(ig_store_t *s)
{
	uint64_t m = UINT64_MAX;

	for (size_t i = 1; i < s->ntables; i++)
		if (s->tables[i]->durable.min_replay < m)
			m = s->tables[i]->durable.min_replay;
	return m;
}

int ig__store_recover(ig_store_t *s, char *why, size_t why_len)
{
	uint64_t last = ig_seq_committed(s->seq), from;
	ig__root_t *root = NULL;
	size_t off = 0;
	int rc = new_meta(s);

	s->replay_seg = UINT64_MAX;
	if (rc != 0 || (rc = scan_frag_dir(s)) != 0)
		return ig__say(why, why_len, rc, "%s: cannot open: %s", s->dir, ig_strerror(rc));
	s->next_table_id = 1;
	rc = ig__root_read(s->dir, &root, &off);
	if (rc == IG_ENOTFOUND && (last != 0 || atomic_load(&s->next_file) > 1))
		/* Starting empty would silently drop whatever they hold. */
		return ig__say(why, why_len, IG_ECORRUPT,
			       "%s/root is missing, but the log holds txns up to %llu and frags/ "
			       "has fragment files: refusing to start an empty store over them",
			       s->dir, (unsigned long long)last);
	if (rc == IG_ENOTFOUND) { /* a new store: its first root comes now */
		atomic_store(&s->meta->dirty, true);
		return ig__config_write_dirty(s, why, why_len);
	}
	if (rc != 0)
		return ig__say(why, why_len, rc, "%s/root: byte offset %zu: %s", s->dir, off,
			       ig_strerror(rc));
	rc = load_meta(s, root, why, why_len);
	ig__root_free(root);
	/* META first: it says which tables there are. */
	if (rc == 0)
		rc = replay(s, true, s->root_replay + 1, why, why_len);
	if (rc == 0) {
		set_all_applied(s, last);
		atomic_store(&s->applied, last);
		rc = load_tables(s, why, why_len);
	}
	from = tables_min_replay(s);
	if (rc == 0 && from != UINT64_MAX)
		rc = replay(s, false, from + 1, why, why_len);
	if (rc != 0)
		return rc;
	set_all_applied(s, last);
	note_log_size(s, last);
	return 0;
}
