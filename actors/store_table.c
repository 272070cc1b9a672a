/* Tables of the store: the registry, handles, and create, alter and drop,
 * each one META mutation made durable before it returns. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_codec_int.h"

/* ---- objects and the registry ------------------------------------------- */

ig_table_t *ig__table_ref(ig_table_t *t)
{
	atomic_fetch_add(&t->refs, 1);
	return t;
}

void ig__durable_clear(ig__durable_t *d)
{
	for (size_t i = 0; i < d->nnames; i++)
		free(d->names[i]);
	for (size_t i = 0; i < d->nkeys; i++)
		free(d->keys[i]);
	free(d->names);
	free(d->keys);
	free(d->key_lens);
	*d = (ig__durable_t){.min_replay = UINT64_MAX};
}

void ig__table_unref(ig_table_t *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	ig__range_map_destroy(t->map);
	ig_schema_unref(t->schema);
	ig__durable_clear(&t->durable);
	free(t);
}

int ig__table_new(ig_store_t *s, uint64_t id, const char *name, ig_schema_t *schema,
		  ig_table_t **out)
{
	ig_table_t *t = calloc(1, sizeof *t);
	int rc;

	if (!t)
		return IG_ENOMEM;
	if ((rc = ig__range_map_create(ig_schema_group_count(schema), &t->map)) != 0) {
		free(t);
		return rc;
	}
	atomic_init(&t->refs, 1);
	t->store = s;
	t->id = id;
	snprintf(t->name, sizeof t->name, "%s", name);
	t->schema = ig_schema_ref(schema);
	t->durable.min_replay = UINT64_MAX;
	*out = t;
	return 0;
}

int ig__store_add_table(ig_store_t *s, ig_table_t *t)
{
	int rc = 0;

	pthread_mutex_lock(&s->tmu);
	if (s->ntables == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		ig_table_t **v = realloc(s->tables, cap * sizeof *v);

		if (v) {
			s->tables = v;
			s->cap = cap;
		} else {
			rc = IG_ENOMEM;
		}
	}
	if (rc == 0)
		s->tables[s->ntables++] = ig__table_ref(t);
	pthread_mutex_unlock(&s->tmu);
	return rc;
}

static void remove_table(ig_store_t *s, ig_table_t *t)
{
	pthread_mutex_lock(&s->tmu);
	for (size_t i = 0; i < s->ntables; i++) {
		if (s->tables[i] == t) {
			memmove(&s->tables[i], &s->tables[i + 1],
				(s->ntables - i - 1) * sizeof *s->tables);
			s->ntables--;
			break;
		}
	}
	pthread_mutex_unlock(&s->tmu);
	ig__table_unref(t);
}

int ig__store_tables(ig_store_t *s, bool with_meta, ig_table_t ***out, size_t *n)
{
	ig_table_t **v;
	size_t k = 0;

	pthread_mutex_lock(&s->tmu);
	v = malloc((s->ntables + 1) * sizeof *v);
	if (v) {
		for (size_t i = 0; i < s->ntables; i++)
			if (with_meta || s->tables[i]->id != IG__META_TABLE)
				v[k++] = ig__table_ref(s->tables[i]);
	}
	pthread_mutex_unlock(&s->tmu);
	if (!v)
		return IG_ENOMEM;
	*out = v;
	*n = k;
	return 0;
}

void ig__tables_release(ig_table_t **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ig__table_unref(v[i]);
	free(v);
}

/* Finds a live table by name (a reference), or NULL. */
static ig_table_t *find_table(ig_store_t *s, const char *name)
{
	ig_table_t *t = NULL;

	pthread_mutex_lock(&s->tmu);
	for (size_t i = 0; i < s->ntables && !t; i++)
		if (s->tables[i]->id != IG__META_TABLE && !atomic_load(&s->tables[i]->dropped) &&
		    strcmp(s->tables[i]->name, name) == 0)
			t = ig__table_ref(s->tables[i]);
	pthread_mutex_unlock(&s->tmu);
	return t;
}

/* ---- handles -------------------------------------------------------------- */

static bool name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > IG_TABLE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

int ig_store_table(ig_store_t *s, const char *name, ig_table_t **out)
{
	ig_table_t *t;

	if (!s || !out || !name_valid(name))
		return IG_EINVAL;
	if (!(t = find_table(s, name)))
		return IG_ENOTFOUND;
	*out = t;
	return 0;
}

void ig_table_release(ig_table_t *t)
{
	ig__table_unref(t);
}

ig_schema_t *ig_table_schema(ig_table_t *t)
{
	ig_schema_t *sc;

	pthread_mutex_lock(&t->store->wmu);
	sc = ig_schema_ref(t->schema);
	pthread_mutex_unlock(&t->store->wmu);
	return sc;
}

/* ---- META records of a table ------------------------------------------------ */

/* The "s" cell's value: name length, name, schema record. */
static int schema_value(const char *name, const ig_schema_t *sc, uint8_t **out, size_t *len)
{
	uint8_t *rec, *v;
	size_t rlen, nlen = strlen(name);
	int rc = ig__schema_encode(sc, &rec, &rlen);

	if (rc != 0)
		return rc;
	v = malloc(1 + nlen + rlen);
	if (v) {
		v[0] = (uint8_t)nlen;
		memcpy(v + 1, name, nlen);
		memcpy(v + 1 + nlen, rec, rlen);
	}
	free(rec);
	if (!v)
		return IG_ENOMEM;
	*out = v;
	*len = 1 + nlen + rlen;
	return 0;
}

static ig_cell_t meta_cell(const uint8_t *row, uint32_t row_len, const void *value,
			   size_t value_len, int64_t ts)
{
	return (ig_cell_t){.key = {.row = row, .row_len = row_len, .column = "c:",
				   .column_len = 2, .timestamp = ts},
			   .kind = value ? IG_CELL_SET : IG_CELL_ERASURE,
			   .value = value, .value_len = (uint32_t)value_len};
}

/* Applies META cells under wmu, then waits for them outside it. */
static int meta_write(ig_store_t *s, const ig_cell_t *cells, size_t n, uint64_t *txn_out)
{
	uint64_t txn;
	int rc = ig__meta_apply_locked(s, cells, n, &txn);

	if (rc == 0 && txn_out)
		*txn_out = txn;
	return rc;
}

/* ---- create ------------------------------------------------------------------ */

/* Writes the new table's META rows (next id, schema, its one tablet's
 * config) in one mutation, under wmu. */
static int create_locked(ig_store_t *s, ig_table_t *t, uint64_t *txn)
{
	uint8_t nrow[1] = {'n'}, idv[8], srow[9], trow[9];
	uint8_t *sval = NULL, *tval = NULL;
	size_t slen, tlen;
	ig__tablet_t *tab = NULL;
	ig__tconf_t *c = NULL;
	int rc;

	for (int i = 0; i < 8; i++)
		idv[i] = (uint8_t)(s->next_table_id >> (56 - 8 * i));
	(void)ig__meta_schema_key(t->id, srow);
	(void)ig__meta_tablet_key(t->id, NULL, 0, trow);
	rc = schema_value(t->name, t->schema, &sval, &slen);
	if (rc == 0)
		rc = ig__range_map_find(t->map, "", 1, &tab);
	if (rc == 0)
		rc = ig__tconf_capture(s, t, tab, &c);
	if (rc == 0)
		rc = ig__tconf_encode(c, &tval, &tlen);
	if (rc == 0) {
		int64_t ts = ig__meta_ts(s);
		ig_cell_t cells[3] = {meta_cell(nrow, 1, idv, 8, ts),
				      meta_cell(srow, 9, sval, slen, ts),
				      meta_cell(trow, 9, tval, tlen, ts)};

		rc = meta_write(s, cells, 3, txn);
	}
	if (rc == 0) {
		/* What recovery will see: one tablet, no files. */
		t->durable.keys = malloc(sizeof *t->durable.keys);
		t->durable.key_lens = malloc(sizeof *t->durable.key_lens);
		if (t->durable.keys && t->durable.key_lens && (t->durable.keys[0] = malloc(9))) {
			memcpy(t->durable.keys[0], trow, 9);
			t->durable.key_lens[0] = 9;
			t->durable.nkeys = 1;
		}
		t->durable.min_replay = c->replay_txn;
	}
	ig__tconf_free(c);
	ig__tablet_unref(tab);
	free(sval);
	free(tval);
	return rc;
}

int ig_store_create_table(ig_store_t *s, const char *name, const ig_schema_config_t *schema,
			  char *why, size_t why_len)
{
	ig_schema_t *sc;
	ig_table_t *t = NULL, *old;
	uint64_t txn = 0;
	int rc;

	if (!s || !schema)
		return ig__say(why, why_len, IG_EINVAL, "no store or schema");
	if (!name_valid(name))
		return ig__say(why, why_len, IG_EINVAL,
			       "table name must be 1..%u of [A-Za-z0-9_]", IG_TABLE_NAME_MAX);
	if ((rc = ig_schema_create(schema, &sc, why, why_len)) != 0)
		return rc;
	ig__store_rcu_thread();
	pthread_mutex_lock(&s->wmu);
	if ((old = find_table(s, name)) != NULL) {
		ig__table_unref(old);
		rc = ig__say(why, why_len, IG_EEXIST, "table '%s' exists", name);
	} else if ((rc = ig__table_new(s, s->next_table_id, name, sc, &t)) == 0) {
		s->next_table_id++;
		rc = create_locked(s, t, &txn);
		if (rc == 0)
			rc = ig__store_add_table(s, t);
	}
	pthread_mutex_unlock(&s->wmu);
	ig__table_unref(t);
	ig_schema_unref(sc);
	if (rc == 0)
		rc = ig_seq_sync(s->seq, txn, NULL);
	return rc;
}

/* ---- alter ---------------------------------------------------------------------- */

/* The groups must stay what they are (names, families, wildcard, in
 * order): cells already stored were placed by them. */
static int alter_allowed(const ig_schema_t *a, const ig_schema_t *b, char *why, size_t why_len)
{
	size_t n = ig_schema_group_count(a);

	if (ig_schema_group_count(b) != n)
		return ig__say(why, why_len, IG_EINVAL,
			       "alter may change group settings but not add or remove groups "
			       "(the table has %zu, the new schema %zu)",
			       n, ig_schema_group_count(b));
	for (size_t i = 0; i < n; i++) {
		const ig_group_config_t *x = ig_schema_group(a, i), *y = ig_schema_group(b, i);
		bool same = strcmp(x->name, y->name) == 0 && x->wildcard == y->wildcard &&
			    x->nfamilies == y->nfamilies;

		for (size_t f = 0; same && f < x->nfamilies; f++)
			same = strcmp(x->families[f], y->families[f]) == 0;
		if (!same)
			return ig__say(why, why_len, IG_EINVAL,
				       "group %zu ('%s'): alter may not change a group's name, "
				       "families or wildcard flag", i, x->name);
	}
	return 0;
}

int ig_store_alter_table(ig_store_t *s, const char *name, const ig_schema_config_t *schema,
			 char *why, size_t why_len)
{
	ig_schema_t *sc, *old_sc;
	ig_table_t *t;
	uint8_t srow[9], *sval = NULL;
	size_t slen;
	uint64_t txn = 0;
	int rc;

	if (!s || !schema || !name_valid(name))
		return ig__say(why, why_len, IG_EINVAL, "bad table name or schema");
	if (!(t = find_table(s, name)))
		return ig__say(why, why_len, IG_ENOTFOUND, "no table '%s'", name);
	if ((rc = ig_schema_create(schema, &sc, why, why_len)) != 0) {
		ig__table_unref(t);
		return rc;
	}
	ig__store_rcu_thread();
	pthread_mutex_lock(&s->wmu);
	rc = alter_allowed(t->schema, sc, why, why_len);
	if (rc == 0 && atomic_load(&t->dropped))
		rc = ig__say(why, why_len, IG_ENOTFOUND, "table '%s' was dropped", name);
	if (rc == 0)
		rc = schema_value(t->name, sc, &sval, &slen);
	if (rc == 0) {
		ig_cell_t cell;

		(void)ig__meta_schema_key(t->id, srow);
		cell = meta_cell(srow, 9, sval, slen, ig__meta_ts(s));
		rc = meta_write(s, &cell, 1, &txn);
	}
	if (rc == 0) {
		old_sc = t->schema;
		t->schema = ig_schema_ref(sc);
		ig_schema_unref(old_sc);
	}
	pthread_mutex_unlock(&s->wmu);
	free(sval);
	ig_schema_unref(sc);
	ig__table_unref(t);
	return rc == 0 ? ig_seq_sync(s->seq, txn, NULL) : rc;
}

/* ---- drop ------------------------------------------------------------------------ */

/* Erasures for the schema row and every tablet config row, durable or
 * current, under wmu. */
static int drop_locked(ig_store_t *s, ig_table_t *t, uint64_t *txn)
{
	ig__tablet_t **v = NULL;
	size_t n = 0, k = 0;
	uint8_t **rows = NULL;
	ig_cell_t *cells = NULL;
	int64_t ts = ig__meta_ts(s);
	int rc = ig__range_map_range(t->map, NULL, 0, NULL, 0, &v, &n);

	if (rc == 0) {
		rows = calloc(n + 1, sizeof *rows);
		cells = malloc((n + 1 + t->durable.nkeys) * sizeof *cells);
		rc = rows && cells ? 0 : IG_ENOMEM;
	}
	if (rc == 0 && (rows[0] = malloc(9))) {
		(void)ig__meta_schema_key(t->id, rows[0]);
		cells[k++] = meta_cell(rows[0], 9, NULL, 0, ts);
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const void *first, *last;
		uint32_t flen, llen;

		ig__tablet_range(v[i], &first, &flen, &last, &llen);
		if (!(rows[i + 1] = malloc(9 + flen))) {
			rc = IG_ENOMEM;
			break;
		}
		cells[k++] = meta_cell(rows[i + 1], ig__meta_tablet_key(t->id, first, flen, rows[i + 1]),
				       NULL, 0, ts);
	}
	for (size_t i = 0; rc == 0 && i < t->durable.nkeys; i++)
		cells[k++] = meta_cell(t->durable.keys[i], t->durable.key_lens[i], NULL, 0, ts);
	if (rc == 0)
		rc = meta_write(s, cells, k, txn);
	for (size_t i = 0; rows && i <= n; i++)
		free(rows[i]);
	for (size_t i = 0; i < n; i++)
		ig__tablet_unref(v[i]);
	free(v);
	free(rows);
	free(cells);
	return rc;
}

int ig_store_drop_table(ig_store_t *s, const char *name)
{
	ig_table_t *t;
	uint64_t txn = 0;
	int rc;

	if (!s || !name_valid(name))
		return IG_EINVAL;
	ig__store_rcu_thread();
	pthread_mutex_lock(&s->wmu);
	if (!(t = find_table(s, name)) || atomic_load(&t->dropped)) {
		pthread_mutex_unlock(&s->wmu);
		ig__table_unref(t);
		return IG_ENOTFOUND;
	}
	rc = drop_locked(s, t, &txn);
	if (rc == 0)
		atomic_store(&t->dropped, true); /* applies and config writes stop */
	pthread_mutex_unlock(&s->wmu);
	/* Gc keeps the table's files while it is registered, so it leaves
	 * the registry only once the drop is durable. */
	if (rc == 0 && (rc = ig_seq_sync(s->seq, txn, NULL)) == 0) {
		pthread_mutex_lock(&s->fs_mu);
		remove_table(s, t);
		pthread_mutex_unlock(&s->fs_mu);
		(void)ig_tell(s->gc, IG__ST_MSG_COLLECT, NULL, 0, IG_NOREF);
	}
	ig__table_unref(t);
	return rc;
}
