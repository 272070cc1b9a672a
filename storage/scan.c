/* Scans: predicates over the merged view of fragment cursors, and scans of
 * a tablet's pinned chains at a snapshot (scan_int.h). */
#include <stdlib.h>
#include <string.h>

#include "cell_int.h"
#include "scan_int.h"

void ig__scan_pred_init(ig__scan_pred_t *p)
{
	memset(p, 0, sizeof *p);
	p->ts_min = INT64_MIN;
	p->ts_max = INT64_MAX;
}

static bool has_prefix(const void *row, uint32_t len, const ig__bytes_t *pre)
{
	return len >= pre->len && memcmp(row, pre->p, pre->len) == 0;
}

/* Narrows [start, end) by the predicate's prefix: rows with the prefix
 * start at the prefix itself. */
static ig__bytes_t start_row(const ig__scan_pred_t *p)
{
	ig__bytes_t s = p->row_start;
	if (p->prefix.len && ig__bytes_cmp(p->prefix.p, p->prefix.len, s.p, s.len) > 0)
		s = p->prefix;
	return s;
}

int ig__scan_init(ig__scan_t *s, const ig__scan_pred_t *pred, const ig__merge_input_t *in,
		  size_t n)
{
	if (pred->ts_min > pred->ts_max)
		return IG_EINVAL;
	memset(s, 0, sizeof *s);
	s->pred = *pred;
	s->end = pred->row_end;
	int rc = ig__merge_init(&s->merge, in, n, IG__MERGE_HIDE);
	if (rc < 0)
		return rc;
	/* Always seek, even to the very first row: the cursors may have been
	 * used before. */
	ig__bytes_t st = start_row(pred);
	ig_cell_key_t k = {.row = st.p, .row_len = st.len, .timestamp = INT64_MAX};
	if ((rc = ig__merge_seek(&s->merge, &k)) < 0) {
		ig__merge_fini(&s->merge);
		return rc;
	}
	return 0;
}

static bool column_selected(const ig__scan_pred_t *p, const ig_cell_key_t *k)
{
	if (p->nfamilies == 0 && p->ncolumns == 0)
		return true;
	uint32_t flen = ig_column_family_len(k->column, k->column_len);
	for (size_t i = 0; i < p->nfamilies; i++) {
		if (ig__bytes_eq(k->column, flen, p->families[i].p, p->families[i].len))
			return true;
	}
	for (size_t i = 0; i < p->ncolumns; i++) {
		if (ig__bytes_eq(k->column, k->column_len, p->columns[i].p, p->columns[i].len))
			return true;
	}
	return false;
}

/* Counts a selected cell against max_versions: true if it is within the
 * newest N of its (row, column). The key bytes are copied because the
 * cursor that holds them moves on. */
static int count_version(ig__scan_t *s, const ig_cell_key_t *k, bool *keep)
{
	if (s->have_cur && ig__bytes_eq(k->row, k->row_len, s->cur, s->cur_row_len) &&
	    ig__bytes_eq(k->column, k->column_len, s->cur + s->cur_row_len, s->cur_col_len)) {
		*keep = ++s->versions <= s->pred.max_versions;
		return 0;
	}
	size_t need = (size_t)k->row_len + k->column_len;
	if (need > s->cur_cap) {
		uint8_t *nb = realloc(s->cur, need);
		if (nb == NULL)
			return IG_ENOMEM;
		s->cur = nb;
		s->cur_cap = need;
	}
	memcpy(s->cur, k->row, k->row_len);
	if (k->column_len)
		memcpy(s->cur + k->row_len, k->column, k->column_len);
	s->cur_row_len = k->row_len;
	s->cur_col_len = k->column_len;
	s->have_cur = true;
	s->versions = 1;
	*keep = true;
	return 0;
}

int ig__scan_next(ig__scan_t *s, ig_cell_t *out)
{
	const ig__scan_pred_t *p = &s->pred;
	while (!s->done) {
		ig_cell_t c;
		int rc = ig__merge_next(&s->merge, &c);
		if (rc <= 0) {
			if (rc == 0)
				s->done = true;
			return rc;
		}
		const ig_cell_key_t *k = &c.key;
		if (s->end.len && ig__bytes_cmp(k->row, k->row_len, s->end.p, s->end.len) >= 0) {
			s->done = true;
			break;
		}
		/* Rows with a prefix are contiguous and the scan started at the
		 * prefix: the first row without it ends the scan. */
		if (p->prefix.len && !has_prefix(k->row, k->row_len, &p->prefix)) {
			s->done = true;
			break;
		}
		if (k->timestamp < p->ts_min || k->timestamp > p->ts_max ||
		    !column_selected(p, k))
			continue;
		if (p->max_versions) {
			bool keep;
			if ((rc = count_version(s, k, &keep)) < 0)
				return rc;
			if (!keep)
				continue;
		}
		*out = c;
		return 1;
	}
	return 0;
}

const char *ig__scan_error(const ig__scan_t *s)
{
	return ig__merge_error(&s->merge);
}

uint64_t ig__scan_snapshot(const ig__scan_t *s)
{
	return s->snapshot;
}

void ig__scan_fini(ig__scan_t *s)
{
	ig__merge_fini(&s->merge);
	for (size_t i = 0; i < s->niters; i++)
		ig__frag_iter_fini(&s->iters[i]);
	free(s->iters);
	free(s->cur);
	ig__tablet_unpin(s->view);
	ig__tablet_unref(s->tablet);
	memset(s, 0, sizeof *s);
}

/* Which links of a pinned view a scan at snap reads: 1 read, 0 skip, or
 * IG_ESTATE. */
static int choose(const ig__tablet_view_t *v, uint64_t snap, unsigned char *use, size_t *nuse)
{
	size_t k = 0, n = 0;
	for (size_t g = 0; g < v->ngroups; g++) {
		for (size_t i = 0; i < v->g[g].n; i++, k++) {
			int rc = ig__frag_pin_at(v->g[g].e[i].frag, snap);
			if (rc < 0)
				return rc;
			use[k] = (unsigned char)rc;
			n += (size_t)rc;
		}
	}
	*nuse = n;
	return 0;
}

/* Whether the predicate selects one row: [row, row + NUL), a point read.
 * Then a disk fragment whose bloom filter lacks the row is not read. */
static bool single_row(const ig__scan_pred_t *p)
{
	const uint8_t *end = p->row_end.p;
	return p->row_start.len > 0 && p->row_end.len == p->row_start.len + 1 &&
	       end[p->row_start.len] == 0 && memcmp(end, p->row_start.p, p->row_start.len) == 0;
}

int ig__scan_open(ig__scan_t *s, ig__tablet_t *t, const ig__scan_pred_t *pred,
		  uint64_t snapshot)
{
	if (pred->ts_min > pred->ts_max)
		return IG_EINVAL;
	bool latest = snapshot == IG__TXN_LATEST;
	ig__tablet_view_t *v;
	unsigned char *use = NULL;
	size_t nuse, total;
	uint64_t snap;
	int rc;
	for (;;) {
		/* The snapshot before the view: every txn up to it is then in the
		 * view, in some link (replacements keep content). */
		uint64_t applied = ig__tablet_applied(t);
		snap = latest ? applied : snapshot;
		if (snap > applied)
			return IG_EAGAIN;
		v = ig__tablet_pin(t);
		total = 0;
		for (size_t g = 0; g < v->ngroups; g++)
			total += v->g[g].n;
		free(use);
		use = malloc(total ? total : 1);
		if (use == NULL) {
			ig__tablet_unpin(v);
			return IG_ENOMEM;
		}
		rc = choose(v, snap, use, &nuse);
		if (rc == 0)
			break;
		ig__tablet_unpin(v);
		/* "Latest" moved on while we pinned: take the newer one. */
		if (!(latest && rc == IG_ESTATE)) {
			free(use);
			return rc;
		}
	}
	ig__frag_iter_t *iters = calloc(nuse ? nuse : 1, sizeof *iters);
	ig__merge_input_t *in = calloc(nuse ? nuse : 1, sizeof *in);
	if (iters == NULL || in == NULL) {
		free(iters);
		free(in);
		free(use);
		ig__tablet_unpin(v);
		return IG_ENOMEM;
	}
	/* Groups hold disjoint families, so their links never share a key and
	 * one merge over all of them, each group's links newest first, is the
	 * tablet's whole view. */
	size_t k = 0, j = 0;
	bool one_row = single_row(pred);
	for (size_t g = 0; g < v->ngroups; g++) {
		for (size_t i = 0; i < v->g[g].n; i++, k++) {
			if (!use[k])
				continue;
			const ig__chain_entry_t *e = &v->g[g].e[i];
			if (e->frag->kind == IG__FRAG_MEM) {
				ig__frag_iter_init_mem(&iters[j], e->frag->mem);
			} else if (one_row && !ig__diskfrag_may_contain(e->frag->disk,
									pred->row_start.p,
									pred->row_start.len)) {
				continue; /* the bloom filter says the row is not there */
			} else {
				ig__frag_iter_init_disk(&iters[j], e->frag->disk);
			}
			in[j] = (ig__merge_input_t){.it = &iters[j], .lo = e->lo, .lo_len = e->lo_len,
						    .hi = e->hi, .hi_len = e->hi_len};
			j++;
		}
	}
	free(use);
	/* Only the tablet's rows: intersect the predicate with [first, last). */
	ig__scan_pred_t p = *pred;
	const void *first, *last;
	uint32_t first_len, last_len;
	ig__tablet_range(t, &first, &first_len, &last, &last_len);
	if (first_len && ig__bytes_cmp(first, first_len, p.row_start.p, p.row_start.len) > 0)
		p.row_start = (ig__bytes_t){first, first_len};
	if (last_len &&
	    (p.row_end.len == 0 || ig__bytes_cmp(last, last_len, p.row_end.p, p.row_end.len) < 0))
		p.row_end = (ig__bytes_t){last, last_len};
	rc = ig__scan_init(s, &p, in, j);
	free(in);  /* the merge copied the inputs */
	if (rc < 0) {
		for (size_t i = 0; i < j; i++)
			ig__frag_iter_fini(&iters[i]);
		free(iters);
		ig__tablet_unpin(v);
		return rc;
	}
	s->pred = *pred;
	s->pred.row_start = p.row_start;
	s->end = p.row_end;
	s->view = v;
	s->tablet = ig__tablet_ref(t);
	s->iters = iters;
	s->niters = j;
	s->snapshot = snap;
	return 0;
}
