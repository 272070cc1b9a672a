/* Work on one tablet, for the Serializer and the Compactor: its sizes,
 * flushing its memory fragments, compacting its chains, and splitting or
 * joining it. Every fragment file is written whole (temp file, fdatasync,
 * rename, directory fsync) before it is swapped in, and stays "in flight"
 * (safe from Gc) until a tablet holds it. */
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- fragment files ---------------------------------------------------------- */

void ig__frag_file_name(uint64_t num, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 ".igf", num);
}

bool ig__frag_file_parse(const char *name, uint64_t *num)
{
	uint64_t v = 0;

	if (strlen(name) != 20 || strcmp(name + 16, ".igf") != 0)
		return false;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*num = v;
	return true;
}

uint64_t ig__frag_reserve(ig_store_t *s, char *path, size_t path_len)
{
	char name[32];
	uint64_t num;

	pthread_mutex_lock(&s->fs_mu);
	num = atomic_fetch_add(&s->next_file, 1);
	if (s->ninflight == s->inflight_cap) {
		size_t cap = s->inflight_cap ? 2 * s->inflight_cap : 8;
		uint64_t *v = realloc(s->inflight, cap * sizeof *v);

		if (v) {
			s->inflight = v;
			s->inflight_cap = cap;
		}
	}
	/* Without room the file is unprotected only until it is swapped in;
	 * Gc also spares any number at or past next_file it read. */
	if (s->ninflight < s->inflight_cap)
		s->inflight[s->ninflight++] = num;
	pthread_mutex_unlock(&s->fs_mu);
	ig__frag_file_name(num, name, sizeof name);
	snprintf(path, path_len, "%s/%s", s->frag_dir, name);
	return num;
}

void ig__frag_landed(ig_store_t *s, uint64_t num)
{
	pthread_mutex_lock(&s->fs_mu);
	for (size_t i = 0; i < s->ninflight; i++) {
		if (s->inflight[i] == num) {
			s->inflight[i] = s->inflight[--s->ninflight];
			break;
		}
	}
	pthread_mutex_unlock(&s->fs_mu);
}

/* ---- sizes --------------------------------------------------------------------- */

static uint64_t link_bytes(const ig__chain_entry_t *e, uint64_t *cells)
{
	ig__diskfrag_clip_t c;

	ig__diskfrag_clip_stats(e->frag->disk, e->lo, e->lo ? e->lo_len : 0, e->hi,
				e->hi ? e->hi_len : 0, &c);
	if (cells)
		*cells += c.cells;
	return c.bytes;
}

/* The disk links after the last memory link: what compaction may merge. */
static size_t disk_suffix(const ig__chain_t *c)
{
	size_t i = c->n;

	while (i > 0 && c->e[i - 1].frag->kind == IG__FRAG_DISK)
		i--;
	return i;
}

static ig__tier_opts_t tier_opts(const ig_store_t *s)
{
	return (ig__tier_opts_t){.factor = s->o.compact_factor,
				 .min_merge = s->o.compact_min_merge,
				 .max_merge = s->o.compact_max_merge};
}

/* The sorted runs of c's disk suffix [at, c->n) (ig__sorted_runs): their
 * sizes, and how many links each holds. A group with a purge policy keeps
 * every file a run of its own: its merges are what drop old versions, so
 * a sequential load's files must still climb the tiers. Returns the run
 * count, 0 when there is none or no memory. Ownership: the caller frees
 * both arrays. */
static size_t suffix_runs(const ig__chain_t *c, size_t at, const ig_group_config_t *gc,
			  uint64_t **sizes, size_t **counts)
{
	bool purges = gc->max_history || gc->max_age;
	size_t n = c->n - at, runs = 0;
	ig__row_span_t *spans = calloc(n ? n : 1, sizeof *spans);

	*sizes = calloc(n ? n : 1, sizeof **sizes);
	*counts = calloc(n ? n : 1, sizeof **counts);
	if (spans && *sizes && *counts && n) {
		for (size_t i = 0; i < n; i++) {
			ig_cell_key_t first, last;

			if (!purges &&
			    ig__diskfrag_bounds(c->e[at + i].frag->disk, &first, &last) == 0)
				spans[i] = (ig__row_span_t){first.row, last.row, first.row_len,
							    last.row_len};
		}
		runs = ig__sorted_runs(spans, n, *counts);
		for (size_t r = 0, i = at; r < runs; r++)
			for (size_t k = 0; k < (*counts)[r]; k++)
				(*sizes)[r] += link_bytes(&c->e[i++], NULL);
	}
	free(spans);
	return runs;
}

static uint64_t chain_debt(ig_store_t *s, const ig__chain_t *c, const ig_group_config_t *gc)
{
	uint64_t *sizes, debt = 0;
	size_t *counts, runs = suffix_runs(c, disk_suffix(c), gc, &sizes, &counts);
	ig__tier_opts_t to = tier_opts(s);

	if (runs && ig__compact_debt(sizes, runs, &to, &debt, NULL) != 0)
		debt = 0;
	free(sizes);
	free(counts);
	return debt;
}

void ig__tablet_size(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, ig__tablet_size_t *out)
{
	ig__tablet_view_t *v = ig__tablet_pin(t);

	*out = (ig__tablet_size_t){.replay_txn = atomic_load(&s->applied)};
	for (size_t g = 0; g < v->ngroups; g++) {
		const ig__chain_t *c = &v->g[g];

		for (size_t i = 0; i < c->n; i++) {
			const ig__chain_entry_t *e = &c->e[i];

			if (e->frag->kind == IG__FRAG_DISK) {
				out->disk_bytes += link_bytes(e, &out->disk_cells);
				out->fragments++;
			} else {
				ig__memfrag_stats_t ms;
				uint64_t lo = atomic_load(&e->frag->min_txn);

				ig__memfrag_stats(e->frag->mem, &ms);
				out->mem_bytes += ms.arena_bytes;
				if (lo != IG__TXN_NONE && lo - 1 < out->replay_txn)
					out->replay_txn = lo - 1;
			}
		}
		out->debt += chain_debt(s, c, ig_schema_group(tbl->schema, g));
	}
	ig__tablet_unpin(v);
}

/* ---- writing a run into one file ------------------------------------------------ */

static ig__diskfrag_opts_t disk_opts(const ig_group_config_t *g)
{
	return (ig__diskfrag_opts_t){.compression = g->compression, .level = g->level,
				     .block_size = g->block_size};
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Merges v's group g links [at, at + n) into a new file and swaps it in. */
static int rewrite_run(ig_store_t *s, ig__tablet_t *t, const ig__tablet_view_t *v, size_t g,
		       size_t at, size_t n, const ig__compact_opts_t *base, uint64_t *written,
		       char *why, size_t why_len)
{
	const ig__chain_t *c = &v->g[g];
	ig__compact_opts_t o = *base;
	ig__compact_stats_t st;
	ig__frag_t *nf = NULL;
	ig__diskfrag_t *df;
	char path[4096];
	uint64_t num;
	int rc;

	o.newer = at ? c->e : NULL;
	o.nnewer = at;
	o.includes_oldest = at + n == c->n;
	num = ig__frag_reserve(s, path, sizeof path);
	rc = ig__compact_run(&c->e[at], n, &o, path, &df, &st, why, why_len);
	if (rc == 0 && (rc = ig__frag_create_disk(df, IG__TXN_NONE, 0, &nf)) != 0)
		ig__diskfrag_unref(df);
	if (rc == 0)
		rc = ig__tablet_replace_links(t, g, &c->e[at], n, &nf, 1);
	ig__frag_unref(nf);
	ig__frag_landed(s, num);
	if (rc == 0)
		*written += st.info.file_bytes;
	return rc;
}

/* ---- flush ----------------------------------------------------------------------- */

/* The oldest memory link of a chain, or c->n. */
static size_t oldest_mem(const ig__chain_t *c)
{
	for (size_t i = c->n; i > 0; i--)
		if (c->e[i - 1].frag->kind == IG__FRAG_MEM)
			return i - 1;
	return c->n;
}

/* Flushes group g's oldest memory link; *more says whether one remains. */
static int flush_one(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, size_t g, bool *more,
		     char *why, size_t why_len)
{
	ig__tablet_view_t *v = ig__tablet_pin(t);
	const ig__chain_t *c = &v->g[g];
	size_t at = oldest_mem(c);
	ig__frag_t *f = at < c->n ? c->e[at].frag : NULL;
	uint64_t written = 0;
	int rc = 0;

	/* Links inserts started after the seal are the next flush's. */
	if (f && !ig__memfrag_frozen(f->mem))
		f = NULL;
	*more = f != NULL;
	if (f && atomic_load(&f->min_txn) == IG__TXN_NONE) {
		rc = ig__tablet_replace_links(t, g, &c->e[at], 1, NULL, 0); /* empty: drop it */
	} else if (f) {
		const ig_group_config_t *gc = ig_schema_group(tbl->schema, g);
		ig__compact_opts_t o = {.disk = disk_opts(gc), .now = now_us()};

		rc = rewrite_run(s, t, v, g, at, 1, &o, &written, why, why_len);
		atomic_fetch_add(&s->flushes, 1);
		atomic_fetch_add(&s->bytes_flushed, written);
	}
	ig__tablet_unpin(v);
	return rc;
}

int ig__tablet_flush(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, char *why,
		     size_t why_len)
{
	size_t ng = ig__tablet_group_count(t);
	int rc = 0;

	for (size_t g = 0; rc == 0 && g < ng; g++) {
		bool more = true;

		rc = ig__tablet_seal(t, g);
		while (rc == 0 && more)
			rc = flush_one(s, tbl, t, g, &more, why, why_len);
	}
	return rc;
}

/* ---- compaction -------------------------------------------------------------------- */

/* Picks links among the disk suffix [at, c->n) to merge: the whole suffix
 * when full, else the size-tiered choice among its sorted runs. Returns 1
 * with the links, 0 for none. */
static int pick_run(ig_store_t *s, const ig__chain_t *c, const ig_group_config_t *gc, bool full,
		    size_t *first, size_t *count)
{
	size_t at = disk_suffix(c), n = c->n - at, *counts, runs, r0, nr;
	uint64_t *sizes;
	ig__tier_opts_t to = tier_opts(s);
	int rc = 0;

	if (full) {
		*first = at;
		*count = n;
		return n > 0;
	}
	if (n < 2)
		return 0;
	runs = suffix_runs(c, at, gc, &sizes, &counts);
	if (runs && ig__compact_pick(sizes, runs, &to, &r0, &nr) == 1) {
		*first = at;
		for (size_t r = 0; r < r0; r++)
			*first += counts[r];
		*count = 0;
		for (size_t r = r0; r < r0 + nr; r++)
			*count += counts[r];
		rc = 1;
	}
	free(sizes);
	free(counts);
	return rc;
}

static int compact_group(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, size_t g, bool full,
			 size_t *did, char *why, size_t why_len)
{
	ig__tablet_view_t *v = ig__tablet_pin(t);
	const ig_group_config_t *gc = ig_schema_group(tbl->schema, g);
	ig__compact_opts_t o = {.disk = disk_opts(gc), .max_history = gc->max_history,
				.max_age = gc->max_age, .now = now_us()};
	size_t first, count;
	uint64_t written = 0;
	int rc = 0;

	if (pick_run(s, &v->g[g], gc, full, &first, &count)) {
		rc = rewrite_run(s, t, v, g, first, count, &o, &written, why, why_len);
		if (rc == 0) {
			(*did)++;
			atomic_fetch_add(&s->compactions, 1);
			atomic_fetch_add(&s->bytes_compacted, written);
		}
	}
	ig__tablet_unpin(v);
	return rc;
}

int ig__tablet_compact(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, bool full,
		       size_t *did, char *why, size_t why_len)
{
	size_t ng = ig__tablet_group_count(t);
	int rc = 0;

	for (size_t g = 0; rc == 0 && g < ng; g++) {
		size_t before;

		/* Tiered merges can cascade (four merged files make one of the
		 * next tier); a full compaction is one pass. */
		do {
			before = *did;
			rc = compact_group(s, tbl, t, g, full, did, why, why_len);
		} while (rc == 0 && !full && *did > before);
	}
	return rc;
}

/* ---- split and join ----------------------------------------------------------------- */

/* The median row of t's largest file (within t's rows), copied to buf. */
static uint32_t median_row(ig__tablet_t *t, uint8_t *buf, size_t cap)
{
	ig__tablet_view_t *v = ig__tablet_pin(t);
	uint64_t best = 0;
	uint32_t len = 0;

	for (size_t g = 0; g < v->ngroups; g++) {
		for (size_t i = 0; i < v->g[g].n; i++) {
			const ig__chain_entry_t *e = &v->g[g].e[i];
			ig__diskfrag_clip_t c;

			if (e->frag->kind != IG__FRAG_DISK)
				continue;
			ig__diskfrag_clip_stats(e->frag->disk, e->lo, e->lo ? e->lo_len : 0, e->hi,
						e->hi ? e->hi_len : 0, &c);
			if (c.median && c.bytes > best && c.median_len <= cap) {
				best = c.bytes;
				len = c.median_len;
				memcpy(buf, c.median, len);
			}
		}
	}
	ig__tablet_unpin(v);
	return len;
}

static int do_split(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, bool *changed)
{
	uint8_t row[IG_ROW_MAX];
	uint32_t len = median_row(t, row, sizeof row);
	const void *first, *last;
	uint32_t fl, ll;
	int rc = 0;

	ig__tablet_range(t, &first, &fl, &last, &ll);
	/* The middle block may start at the tablet's first row: no split. */
	if (len == 0 || !ig__tablet_holds(t, row, len) ||
	    (fl == len && memcmp(first, row, len) == 0))
		return 0;
	pthread_mutex_lock(&s->wmu);
	rc = ig__range_map_split(tbl->map, row, len);
	if (rc == 0) {
		atomic_store(&tbl->dirty, true);
		atomic_fetch_add(&s->splits, 1);
		*changed = true;
	}
	pthread_mutex_unlock(&s->wmu);
	return rc == IG_EINVAL ? 0 : rc;
}

static int do_join(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, bool *changed)
{
	static const uint8_t zero = 0;
	const void *first, *last;
	uint32_t fl, ll;
	ig__tablet_t *r = NULL;
	ig__tablet_size_t rz;
	int rc;

	ig__tablet_range(t, &first, &fl, &last, &ll);
	if (ll == 0 || ig__range_map_find(tbl->map, last, ll, &r) != 0)
		return 0;
	ig__tablet_size(s, tbl, r, &rz);
	ig__tablet_unref(r);
	if (rz.disk_bytes + rz.mem_bytes >= s->o.join_bytes)
		return 0;
	if (fl == 0 && !ig__tablet_holds(t, &zero, 1))
		return 0;
	pthread_mutex_lock(&s->wmu);
	rc = ig__range_map_join(tbl->map, fl ? first : &zero, fl ? fl : 1);
	if (rc == 0) {
		atomic_store(&tbl->dirty, true);
		atomic_fetch_add(&s->joins, 1);
		*changed = true;
	}
	pthread_mutex_unlock(&s->wmu);
	return rc == IG_ENOTFOUND ? 0 : rc;
}

int ig__tablet_rebalance(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, bool *changed)
{
	ig__tablet_size_t z;
	uint64_t size;

	*changed = false;
	if (tbl->id == IG__META_TABLE) /* META stays one tablet: the root names it */
		return 0;
	ig__tablet_size(s, tbl, t, &z);
	/* Split on disk bytes alone: a memory fragment a split left shared
	 * counts whole in both halves, which would split them again. */
	if (z.disk_bytes > s->o.split_bytes)
		return do_split(s, tbl, t, changed);
	size = z.disk_bytes + z.mem_bytes;
	if (size < s->o.join_bytes)
		return do_join(s, tbl, t, changed);
	return 0;
}
