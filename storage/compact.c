/* Compaction of a contiguous run of a chain's fragments into one disk
 * fragment: a merge of the run, filtered per (row, column) by the erasure
 * rule and the locality group's purge policy, streamed into the disk
 * fragment writer. The rules, and why each drop is safe, are in
 * compact_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cell_int.h"
#include "compact_int.h"
#include "frag_iter_int.h"
#include "merge_int.h"

/* The filter between the merge and the writer. */
typedef struct compactor {
	ig__merge_t merge;
	const ig__compact_opts_t *opts;
	int64_t cutoff;        /* sets with ts < cutoff are too old */
	/* The (row, column) being filtered: its bytes are copied because the
	 * merge's are valid only until its next call. */
	uint8_t *key;
	size_t cap;
	uint32_t row_len, col_len;
	bool have;             /* key holds a (row, column) */
	bool erased;           /* an erasure of it was met: the rest is hidden */
	uint32_t versions;     /* sets of it kept so far */
	ig__compact_stats_t *st;
} compactor_t;

/* now - max_age seconds, saturating, so a huge age drops nothing instead of
 * wrapping round. */
static int64_t age_cutoff(const ig__compact_opts_t *o)
{
	if (o->max_age <= 0)
		return INT64_MIN;
	int64_t span = o->max_age * 1000000;  /* max_age <= IG_MAX_AGE_MAX */
	if (o->now < INT64_MIN + span)
		return INT64_MIN;
	return o->now - span;
}

static bool same_column(const compactor_t *c, const ig_cell_t *cell)
{
	return c->have && cell->key.row_len == c->row_len && cell->key.column_len == c->col_len &&
	       memcmp(c->key, cell->key.row, c->row_len) == 0 &&
	       memcmp(c->key + c->row_len, cell->key.column, c->col_len) == 0;
}

/* Starts the state of a new (row, column). */
static int remember_column(compactor_t *c, const ig_cell_t *cell)
{
	size_t need = (size_t)cell->key.row_len + cell->key.column_len;
	if (need > c->cap) {
		uint8_t *p = realloc(c->key, need);
		if (!p)
			return IG_ENOMEM;
		c->key = p;
		c->cap = need;
	}
	memcpy(c->key, cell->key.row, cell->key.row_len);
	memcpy(c->key + cell->key.row_len, cell->key.column, cell->key.column_len);
	c->row_len = cell->key.row_len;
	c->col_len = cell->key.column_len;
	c->have = true;
	c->erased = false;
	c->versions = 0;
	return 0;
}

/* What becomes of one merged cell. */
enum { DROP, KEEP, TOMBSTONE };

/* A purged set ends its column: every older version is purged too (older
 * by age, or further beyond max_history). Within a run that does not reach
 * the oldest fragment it cannot just vanish, since an older fragment may
 * hold a cell with the identical key that the merge would then return, so
 * it becomes an erasure at its own timestamp, which hides that copy and
 * every older one. */
static int purge(compactor_t *c, uint64_t *counter)
{
	(*counter)++;
	c->erased = true;
	return c->opts->includes_oldest ? DROP : TOMBSTONE;
}

static bool in_clip(const ig__chain_entry_t *e, const ig_cell_key_t *k)
{
	return (!e->lo || ig__bytes_cmp(k->row, k->row_len, e->lo, e->lo_len) >= 0) &&
	       (!e->hi || ig__bytes_cmp(k->row, k->row_len, e->hi, e->hi_len) < 0);
}

/* What the fragments newer than the run hold of an erasure's column. */
enum { NEWER_NONE, NEWER_SAME_KEY, NEWER_BELOW };

/* The first cell of e at or after k: NEWER_SAME_KEY if it is k itself,
 * NEWER_BELOW if it is an older version of k's column (which the erasure
 * hides, wherever it lives), else NEWER_NONE; or a read error. */
static int probe(const ig__chain_entry_t *e, const ig_cell_key_t *k)
{
	if (!in_clip(e, k))
		return NEWER_NONE;
	ig__frag_iter_t it;
	if (e->frag->kind == IG__FRAG_MEM)
		ig__frag_iter_init_mem(&it, e->frag->mem);
	else
		ig__frag_iter_init_disk(&it, e->frag->disk);
	ig_cell_t got;
	int rc = ig__frag_iter_seek(&it, k);
	if (rc == 0)
		rc = ig__frag_iter_next(&it, &got);
	if (rc == 1) {
		if (ig_cell_key_cmp(&got.key, k) == 0)
			rc = NEWER_SAME_KEY;
		else if (ig__bytes_eq(got.key.row, got.key.row_len, k->row, k->row_len) &&
			 ig__bytes_eq(got.key.column, got.key.column_len, k->column, k->column_len))
			rc = NEWER_BELOW;
		else
			rc = NEWER_NONE;
	}
	ig__frag_iter_fini(&it);
	return rc;
}

/* Probes every newer fragment (one seek each per erasure: erasures are
 * few next to sets). A holder of the same key wins over the rest: the
 * chain's merge then returns that cell, and the erasure hides nothing. */
static int newer_holds(const compactor_t *c, const ig_cell_key_t *k)
{
	int found = NEWER_NONE;
	for (size_t i = 0; i < c->opts->nnewer; i++) {
		int rc = probe(&c->opts->newer[i], k);
		if (rc < 0 || rc == NEWER_SAME_KEY)
			return rc;
		if (rc == NEWER_BELOW)
			found = NEWER_BELOW;
	}
	return found;
}

/* Decides one merged cell. Cells of a column arrive newest first, so
 * "hidden" and "beyond N versions" are known when it comes. */
static int decide(compactor_t *c, const ig_cell_t *cell)
{
	if (c->erased) {
		c->st->hidden++;
		return DROP;
	}
	if (cell->kind == IG_CELL_ERASURE) {
		int rc = newer_holds(c, &cell->key);
		if (rc < 0)
			return rc;
		if (rc == NEWER_SAME_KEY) {
			/* It hides nothing, and the newer cell keeps its key
			 * from older copies: it can go. */
			c->st->overridden++;
			return DROP;
		}
		c->erased = true;
		/* A newer fragment's older version of the column is hidden by
		 * this erasure only: it must stay, even with nothing below. */
		if (c->opts->includes_oldest && rc == NEWER_NONE) {
			c->st->erasures++;
			return DROP;
		}
		return KEEP;
	}
	if (cell->key.timestamp < c->cutoff)
		return purge(c, &c->st->aged);
	if (c->opts->max_history && c->versions >= c->opts->max_history)
		return purge(c, &c->st->history);
	c->versions++;
	return KEEP;
}

/* The writer's cell source: the merged cells that survive the filter. */
static int compactor_next(void *ctx, ig_cell_t *out)
{
	compactor_t *c = ctx;
	for (;;) {
		int rc = ig__merge_next(&c->merge, out);
		if (rc <= 0)
			return rc;
		c->st->cells_in++;
		if (!same_column(c, out)) {
			rc = remember_column(c, out);
			if (rc < 0)
				return rc;
		}
		int d = decide(c, out);
		if (d < 0)
			return d;
		if (d == DROP)
			continue;
		if (d == TOMBSTONE) {
			out->kind = IG_CELL_ERASURE;
			out->value = NULL;
			out->value_len = 0;
		}
		c->st->cells_out++;
		return 1;
	}
}

static int check_opts(const ig__chain_entry_t *run, size_t n, const ig__compact_opts_t *o,
		      const char *path)
{
	if (!run || n == 0 || !o || !path || o->max_age < 0 || o->max_age > IG_MAX_AGE_MAX)
		return IG_EINVAL;
	for (size_t i = 0; i < n; i++) {
		const ig__frag_t *f = run[i].frag;
		if (!f || (f->kind == IG__FRAG_MEM && !ig__memfrag_frozen(f->mem)))
			return IG_EINVAL;
	}
	if (o->nnewer && !o->newer)
		return IG_EINVAL;
	for (size_t i = 0; i < o->nnewer; i++)
		if (!o->newer[i].frag)
			return IG_EINVAL;
	return 0;
}

static void open_inputs(const ig__chain_entry_t *run, size_t n, ig__frag_iter_t *it,
			ig__merge_input_t *in)
{
	for (size_t i = 0; i < n; i++) {
		const ig__chain_entry_t *e = &run[i];
		if (e->frag->kind == IG__FRAG_MEM)
			ig__frag_iter_init_mem(&it[i], e->frag->mem);
		else
			ig__frag_iter_init_disk(&it[i], e->frag->disk);
		in[i] = (ig__merge_input_t){.it = &it[i], .lo = e->lo, .hi = e->hi,
					    .lo_len = e->lo_len, .hi_len = e->hi_len};
	}
}

static void set_why(char *why, size_t why_len, const char *text)
{
	if (why && why_len)
		snprintf(why, why_len, "%s", text);
}

/* Merges and writes; the cursors are open. */
static int write_run(compactor_t *c, ig__merge_input_t *in, size_t n, const char *path,
		     char *why, size_t why_len)
{
	int rc = ig__merge_init(&c->merge, in, n, 0);
	if (rc < 0)
		return rc;
	ig__cell_source_t src = {.next = compactor_next, .ctx = c};
	rc = ig__diskfrag_write(path, &c->opts->disk, &src, &c->st->info, why, why_len);
	/* A source error reaches us as the writer's return; its text is the
	 * merge's. */
	if (rc < 0 && c->merge.err == rc)
		set_why(why, why_len, ig__merge_error(&c->merge));
	ig__merge_fini(&c->merge);
	return rc;
}

int ig__compact_run(const ig__chain_entry_t *run, size_t n, const ig__compact_opts_t *opts,
		    const char *path, ig__diskfrag_t **out, ig__compact_stats_t *stats,
		    char *why, size_t why_len)
{
	int rc = check_opts(run, n, opts, path);
	if (rc < 0) {
		set_why(why, why_len, "invalid compaction arguments");
		return rc;
	}
	ig__frag_iter_t *it = calloc(n, sizeof *it);
	ig__merge_input_t *in = calloc(n, sizeof *in);
	if (!it || !in) {
		free(it);
		free(in);
		return IG_ENOMEM;
	}
	ig__compact_stats_t st = {0};
	compactor_t c = {.opts = opts, .cutoff = age_cutoff(opts), .st = &st};
	open_inputs(run, n, it, in);
	rc = write_run(&c, in, n, path, why, why_len);
	for (size_t i = 0; i < n; i++)
		ig__frag_iter_fini(&it[i]);
	free(c.key);
	free(it);
	free(in);
	ig__diskfrag_t *df = NULL;
	if (rc == 0) {
		rc = ig__diskfrag_open(path, &df, why, why_len);
		if (rc < 0)
			remove(path);
	}
	if (rc < 0)
		return rc;
	*out = df;
	if (stats)
		*stats = st;
	return 0;
}
