/* Tablets: per locality group a fragment chain, published as immutable
 * views under RCU (tablet_int.h has the rules: publication, reclamation,
 * snapshots at fragment granularity, splits and joins). */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>

#include "cell_int.h"
#include "tablet_int.h"

struct ig__tablet {
	atomic_uint refs;
	void *first, *last;            /* owned row bounds; NULL = unbounded */
	uint32_t first_len, last_len;
	size_t ngroups;
	_Atomic(ig__tablet_view_t *) view;  /* current view; the tablet holds one ref */
	_Atomic uint64_t applied;      /* set_applied's txn */
	pthread_mutex_t wlock;         /* serializes writers; readers never take it */
};

/* ---- fragments ---------------------------------------------------------- */

static int frag_new(ig__frag_kind_t kind, uint64_t min_txn, uint64_t max_txn, ig__frag_t **out)
{
	ig__frag_t *f = calloc(1, sizeof *f);
	if (f == NULL)
		return IG_ENOMEM;
	atomic_init(&f->refs, 1);
	f->kind = kind;
	atomic_init(&f->min_txn, min_txn);
	atomic_init(&f->max_txn, max_txn);
	atomic_init(&f->ceiling, UINT64_MAX);
	atomic_init(&f->busy, 0);
	*out = f;
	return 0;
}

int ig__frag_create_mem(ig__memfrag_t *mf, uint64_t min_txn, uint64_t max_txn, ig__frag_t **out)
{
	ig__frag_t *f;
	int rc = frag_new(IG__FRAG_MEM, min_txn, max_txn, &f);
	if (rc < 0)
		return rc;
	f->mem = mf;
	*out = f;
	return 0;
}

int ig__frag_create_disk(ig__diskfrag_t *df, uint64_t min_txn, uint64_t max_txn,
			 ig__frag_t **out)
{
	ig__frag_t *f;
	int rc = frag_new(IG__FRAG_DISK, min_txn, max_txn, &f);
	if (rc < 0)
		return rc;
	f->disk = df;
	*out = f;
	return 0;
}

ig__frag_t *ig__frag_ref(ig__frag_t *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

void ig__frag_unref(ig__frag_t *f)
{
	if (f == NULL || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	ig__memfrag_destroy(f->mem);
	ig__diskfrag_unref(f->disk);
	free(f);
}

static bool frag_active(const ig__frag_t *f)
{
	return f->kind == IG__FRAG_MEM && !ig__memfrag_frozen(f->mem);
}

/* Dekker with the inserter (tablet_insert): we store the ceiling then load
 * busy; it stores busy then loads the ceiling; all seq_cst, so at least one
 * of us sees the other. If it saw our ceiling it moves to a new fragment;
 * if we see its busy txn we wait for that single insert to finish and then
 * read max_txn, which tells which way it went. */
int ig__frag_pin_at(ig__frag_t *f, uint64_t snapshot)
{
	if (f->kind == IG__FRAG_MEM && !ig__memfrag_frozen(f->mem)) {
		uint64_t c = atomic_load(&f->ceiling);
		while (c > snapshot && !atomic_compare_exchange_weak(&f->ceiling, &c, snapshot))
			;
		uint64_t b;
		while ((b = atomic_load(&f->busy)) != 0 && b > snapshot)
			sched_yield();  /* one insert call: short and bounded */
	}
	uint64_t lo = atomic_load(&f->min_txn);
	uint64_t hi = atomic_load(&f->max_txn);
	if (lo == IG__TXN_NONE || lo > snapshot)
		return 0;
	return hi <= snapshot ? 1 : IG_ESTATE;
}

/* ---- views -------------------------------------------------------------- */

static ig__tablet_view_t *view_alloc(size_t ngroups)
{
	ig__tablet_view_t *v = calloc(1, sizeof *v + ngroups * sizeof v->g[0]);
	if (v == NULL)
		return NULL;
	atomic_init(&v->refs, 1);
	v->ngroups = ngroups;
	return v;
}

static void chain_free(ig__chain_t *c)
{
	for (size_t i = 0; i < c->n; i++) {
		ig__frag_unref(c->e[i].frag);
		free(c->e[i].lo);
		free(c->e[i].hi);
	}
	free(c->e);
	c->e = NULL;
	c->n = 0;
}

static void view_free(ig__tablet_view_t *v)
{
	for (size_t g = 0; g < v->ngroups; g++)
		chain_free(&v->g[g]);
	free(v);
}

void ig__tablet_unpin(ig__tablet_view_t *v)
{
	if (v != NULL && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
		view_free(v);
}

ig__tablet_view_t *ig__tablet_pin(ig__tablet_t *t)
{
	urcu_memb_read_lock();
	ig__tablet_view_t *v = atomic_load_explicit(&t->view, memory_order_acquire);
	/* The tablet's reference outlives this section (writers wait for a
	 * grace period before dropping it), so the count is > 0 here. */
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	urcu_memb_read_unlock();
	return v;
}

static void *dup_bytes(const void *p, uint32_t n)
{
	void *d = malloc(n ? n : 1);
	if (d != NULL && n)
		memcpy(d, p, n);
	return d;
}

/* Copies an entry, narrowing its clip to [lo, hi) (NULL: no narrowing). */
static int entry_copy(ig__chain_entry_t *dst, const ig__chain_entry_t *src, const void *lo,
		      uint32_t lo_len, const void *hi, uint32_t hi_len)
{
	const void *l = src->lo, *h = src->hi;
	uint32_t ll = src->lo_len, hl = src->hi_len;
	if (lo != NULL && (l == NULL || ig__bytes_cmp(lo, lo_len, l, ll) > 0)) {
		l = lo;
		ll = lo_len;
	}
	if (hi != NULL && (h == NULL || ig__bytes_cmp(hi, hi_len, h, hl) < 0)) {
		h = hi;
		hl = hi_len;
	}
	memset(dst, 0, sizeof *dst);
	if ((l != NULL && (dst->lo = dup_bytes(l, ll)) == NULL) ||
	    (h != NULL && (dst->hi = dup_bytes(h, hl)) == NULL)) {
		free(dst->lo);
		return IG_ENOMEM;
	}
	dst->lo_len = l ? ll : 0;
	dst->hi_len = h ? hl : 0;
	dst->frag = ig__frag_ref(src->frag);
	return 0;
}

/* A copy of v with room for `extra` more links in group g (the copy's
 * chain g has its first `at` links, a gap of `gap` links, then the rest
 * from `skip` on). The gap's entries are zeroed for the caller to fill. */
static int view_edit(const ig__tablet_view_t *v, size_t g, size_t at, size_t skip, size_t gap,
		     ig__tablet_view_t **out)
{
	ig__tablet_view_t *nv = view_alloc(v->ngroups);
	if (nv == NULL)
		return IG_ENOMEM;
	for (size_t k = 0; k < v->ngroups; k++) {
		const ig__chain_t *c = &v->g[k];
		size_t n = k == g ? at + gap + (c->n - skip) : c->n;
		ig__chain_t *d = &nv->g[k];
		d->e = calloc(n ? n : 1, sizeof *d->e);
		if (d->e == NULL)
			goto nomem;
		for (size_t i = 0; i < c->n; i++) {
			size_t j = i;
			if (k == g) {
				if (i >= at && i < skip)
					continue;
				j = i < at ? i : i - skip + at + gap;
			}
			if (entry_copy(&d->e[j], &c->e[i], NULL, 0, NULL, 0) < 0)
				goto nomem;
			d->n++;  /* counts filled links; chain_free walks e[0..n) */
		}
		d->n = n;
	}
	*out = nv;
	return 0;
nomem:
	/* Unfilled slots are zero: chain_free skips NULL frags via unref(NULL). */
	for (size_t k = 0; k < nv->ngroups; k++) {
		if (nv->g[k].e != NULL)
			nv->g[k].n = k == g ? at + gap + (v->g[k].n - skip) : v->g[k].n;
	}
	view_free(nv);
	return IG_ENOMEM;
}

/* Publishes nv (writer mutex held), waits until no reader can still be
 * loading the old pointer, then drops the tablet's reference on it. */
static void publish(ig__tablet_t *t, ig__tablet_view_t *nv)
{
	ig__tablet_view_t *old = atomic_load_explicit(&t->view, memory_order_relaxed);
	atomic_store_explicit(&t->view, nv, memory_order_release);
	urcu_memb_synchronize_rcu();
	ig__tablet_unpin(old);
}

/* ---- tablets ------------------------------------------------------------ */

int ig__tablet_create(const void *first, uint32_t first_len, const void *last,
		      uint32_t last_len, size_t ngroups, ig__tablet_t **out)
{
	if (ngroups == 0 || ngroups > IG_GROUPS_MAX || (first_len && first == NULL) ||
	    (last_len && last == NULL) ||
	    (first_len && last_len && ig__bytes_cmp(first, first_len, last, last_len) >= 0))
		return IG_EINVAL;
	ig__tablet_t *t = calloc(1, sizeof *t);
	if (t == NULL)
		return IG_ENOMEM;
	ig__tablet_view_t *v = view_alloc(ngroups);
	if (v == NULL || (first_len && (t->first = dup_bytes(first, first_len)) == NULL) ||
	    (last_len && (t->last = dup_bytes(last, last_len)) == NULL)) {
		free(v);
		free(t->first);
		free(t);
		return IG_ENOMEM;
	}
	atomic_init(&t->refs, 1);
	t->first_len = first_len;
	t->last_len = last_len;
	t->ngroups = ngroups;
	atomic_init(&t->view, v);
	atomic_init(&t->applied, 0);
	pthread_mutex_init(&t->wlock, NULL);
	*out = t;
	return 0;
}

ig__tablet_t *ig__tablet_ref(ig__tablet_t *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void ig__tablet_unref(ig__tablet_t *t)
{
	if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* The range map drops its reference only after a grace period, so no
	 * reader can still be about to pin this tablet. */
	ig__tablet_unpin(atomic_load_explicit(&t->view, memory_order_relaxed));
	pthread_mutex_destroy(&t->wlock);
	free(t->first);
	free(t->last);
	free(t);
}

void ig__tablet_range(const ig__tablet_t *t, const void **first, uint32_t *first_len,
		      const void **last, uint32_t *last_len)
{
	*first = t->first;
	*first_len = t->first_len;
	*last = t->last;
	*last_len = t->last_len;
}

size_t ig__tablet_group_count(const ig__tablet_t *t)
{
	return t->ngroups;
}

bool ig__tablet_holds(const ig__tablet_t *t, const void *row, uint32_t row_len)
{
	return (t->first_len == 0 || ig__bytes_cmp(row, row_len, t->first, t->first_len) >= 0) &&
	       (t->last_len == 0 || ig__bytes_cmp(row, row_len, t->last, t->last_len) < 0);
}

uint64_t ig__tablet_applied(const ig__tablet_t *t)
{
	return atomic_load_explicit(&t->applied, memory_order_acquire);
}

void ig__tablet_set_applied(ig__tablet_t *t, uint64_t txn)
{
	pthread_mutex_lock(&t->wlock);
	if (txn > atomic_load_explicit(&t->applied, memory_order_relaxed))
		atomic_store_explicit(&t->applied, txn, memory_order_release);
	pthread_mutex_unlock(&t->wlock);
}

/* Puts f in front of group g's chain (writer mutex held). */
static int push_locked(ig__tablet_t *t, size_t g, ig__frag_t *f)
{
	ig__tablet_view_t *v = atomic_load_explicit(&t->view, memory_order_relaxed);
	ig__tablet_view_t *nv;
	int rc = view_edit(v, g, 0, 0, 1, &nv);
	if (rc < 0)
		return rc;
	nv->g[g].e[0].frag = ig__frag_ref(f);
	publish(t, nv);
	return 0;
}

/* Starts a new active memory fragment in front of group g. */
static int rotate_locked(ig__tablet_t *t, size_t g, ig__frag_t **out)
{
	ig__memfrag_t *mf;
	ig__frag_t *f;
	int rc = ig__memfrag_create(&mf);
	if (rc < 0)
		return rc;
	rc = ig__frag_create_mem(mf, IG__TXN_NONE, 0, &f);
	if (rc < 0) {
		ig__memfrag_destroy(mf);
		return rc;
	}
	rc = push_locked(t, g, f);
	ig__frag_unref(f);  /* the view holds it now (or nothing does) */
	if (rc < 0)
		return rc;
	*out = f;
	return 0;
}

int ig__tablet_insert(ig__tablet_t *t, size_t group, const ig_cell_t *cells, size_t n,
		      uint64_t txn)
{
	if (group >= t->ngroups || txn == 0 || txn == UINT64_MAX)
		return IG_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (ig_cell_check(&cells[i]) < 0 ||
		    !ig__tablet_holds(t, cells[i].key.row, cells[i].key.row_len))
			return IG_EINVAL;
	}
	pthread_mutex_lock(&t->wlock);
	int rc = 0;
	if (txn <= atomic_load_explicit(&t->applied, memory_order_relaxed)) {
		rc = IG_EINVAL;
		goto out;
	}
	const ig__tablet_view_t *v = atomic_load_explicit(&t->view, memory_order_relaxed);
	ig__frag_t *f = v->g[group].n ? v->g[group].e[0].frag : NULL;
	if (f == NULL || !frag_active(f)) {
		if ((rc = rotate_locked(t, group, &f)) < 0)
			goto out;
	}
	/* Handshake with ig__frag_pin_at: announce, then check the ceiling. */
	atomic_store(&f->busy, txn);
	if (txn > atomic_load(&f->ceiling)) {
		atomic_store(&f->busy, 0);
		ig__memfrag_freeze(f->mem);  /* a scan reads it at a lower snapshot */
		if ((rc = rotate_locked(t, group, &f)) < 0)
			goto out;
		atomic_store(&f->busy, txn);
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = ig__memfrag_insert(f->mem, &cells[i]);
	if (n > 0) {
		if (atomic_load(&f->min_txn) == IG__TXN_NONE)
			atomic_store(&f->min_txn, txn);
		if (txn > atomic_load(&f->max_txn))
			atomic_store(&f->max_txn, txn);
	}
	atomic_store(&f->busy, 0);
out:
	pthread_mutex_unlock(&t->wlock);
	return rc;
}

int ig__tablet_seal(ig__tablet_t *t, size_t group)
{
	if (group >= t->ngroups)
		return IG_EINVAL;
	pthread_mutex_lock(&t->wlock);
	const ig__tablet_view_t *v = atomic_load_explicit(&t->view, memory_order_relaxed);
	if (v->g[group].n && frag_active(v->g[group].e[0].frag))
		ig__memfrag_freeze(v->g[group].e[0].frag->mem);
	pthread_mutex_unlock(&t->wlock);
	return 0;
}

int ig__tablet_push(ig__tablet_t *t, size_t group, ig__frag_t *f)
{
	if (group >= t->ngroups || f == NULL)
		return IG_EINVAL;
	pthread_mutex_lock(&t->wlock);
	int rc = push_locked(t, group, f);
	pthread_mutex_unlock(&t->wlock);
	return rc;
}

int ig__tablet_push_clipped(ig__tablet_t *t, size_t group, ig__frag_t *f, const void *lo,
			    uint32_t lo_len, const void *hi, uint32_t hi_len)
{
	ig__chain_entry_t src = {.frag = f};
	ig__tablet_view_t *nv;
	int rc;

	if (group >= t->ngroups || f == NULL)
		return IG_EINVAL;
	pthread_mutex_lock(&t->wlock);
	rc = view_edit(atomic_load_explicit(&t->view, memory_order_relaxed), group, 0, 0, 1, &nv);
	if (rc == 0 && (rc = entry_copy(&nv->g[group].e[0], &src, lo, lo_len, hi, hi_len)) < 0)
		view_free(nv);
	if (rc == 0)
		publish(t, nv);
	pthread_mutex_unlock(&t->wlock);
	return rc;
}

static bool bound_eq(const void *a, uint32_t al, const void *b, uint32_t bl)
{
	return (a == NULL) == (b == NULL) && (a == NULL || ig__bytes_eq(a, al, b, bl));
}

/* Says whether c's links from at on are old[0..n) (and, given clips, clip
 * for clip: a fragment shared by two links of a joined tablet appears twice
 * with different clips, and only the right one may be replaced). */
static bool run_at(const ig__chain_t *c, size_t at, ig__frag_t *const *old,
		   const ig__chain_entry_t *clips, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const ig__chain_entry_t *e = &c->e[at + i];
		if (e->frag != old[i])
			return false;
		if (clips && !(bound_eq(e->lo, e->lo_len, clips[i].lo, clips[i].lo_len) &&
			       bound_eq(e->hi, e->hi_len, clips[i].hi, clips[i].hi_len)))
			return false;
	}
	return true;
}

static int replace_run(ig__tablet_t *t, size_t group, ig__frag_t *const *old,
		       const ig__chain_entry_t *clips, size_t nold, ig__frag_t *const *with,
		       size_t nwith)
{
	if (group >= t->ngroups || nold == 0 || old == NULL || (nwith && with == NULL))
		return IG_EINVAL;
	pthread_mutex_lock(&t->wlock);
	int rc = IG_ENOTFOUND;
	ig__tablet_view_t *v = atomic_load_explicit(&t->view, memory_order_relaxed);
	const ig__chain_t *c = &v->g[group];
	size_t at = 0;
	while (at + nold <= c->n && !run_at(c, at, old, clips, nold))
		at++;
	if (at + nold > c->n)
		goto out;
	uint64_t lo = IG__TXN_NONE, hi = 0;
	for (size_t i = 0; i < nold; i++) {
		ig__frag_t *f = c->e[at + i].frag;
		if (frag_active(f)) {
			rc = IG_ESTATE;
			goto out;
		}
		uint64_t a = atomic_load(&f->min_txn), b = atomic_load(&f->max_txn);
		lo = a < lo ? a : lo;
		hi = b > hi ? b : hi;
	}
	ig__tablet_view_t *nv;
	if ((rc = view_edit(v, group, at, at + nold, nwith, &nv)) < 0)
		goto out;
	/* The new files hold what the run showed through its clips. One
	 * clip shared by the whole run stays; links of a joined tablet clip
	 * to different sides, so their merge holds both and takes none. */
	ig__chain_entry_t clip = c->e[at];
	for (size_t i = 1; i < nold; i++) {
		const ig__chain_entry_t *e = &c->e[at + i];
		if (!bound_eq(e->lo, e->lo_len, clip.lo, clip.lo_len) ||
		    !bound_eq(e->hi, e->hi_len, clip.hi, clip.hi_len))
			clip.lo = clip.hi = NULL;
	}
	for (size_t i = 0; i < nwith; i++) {
		/* Same cells, same txns: the new links keep the run's range. */
		atomic_store(&with[i]->min_txn, lo);
		atomic_store(&with[i]->max_txn, hi);
		ig__chain_entry_t *e = &nv->g[group].e[at + i];
		if ((rc = entry_copy(e, &clip, NULL, 0, NULL, 0)) < 0) {
			view_free(nv);
			goto out;
		}
		ig__frag_unref(e->frag);  /* entry_copy took the run's; swap in ours */
		e->frag = ig__frag_ref(with[i]);
	}
	publish(t, nv);
out:
	pthread_mutex_unlock(&t->wlock);
	return rc;
}

int ig__tablet_replace(ig__tablet_t *t, size_t group, ig__frag_t *const *old, size_t nold,
		       ig__frag_t *const *with, size_t nwith)
{
	return replace_run(t, group, old, NULL, nold, with, nwith);
}

int ig__tablet_replace_links(ig__tablet_t *t, size_t group, const ig__chain_entry_t *run,
			     size_t nold, ig__frag_t *const *with, size_t nwith)
{
	ig__frag_t **old = malloc((nold ? nold : 1) * sizeof *old);
	int rc;

	if (old == NULL)
		return IG_ENOMEM;
	for (size_t i = 0; i < nold; i++)
		old[i] = run[i].frag;
	rc = replace_run(t, group, old, run, nold, with, nwith);
	free(old);
	return rc;
}

/* Seals every group's active fragment (writer mutex held), so links shared
 * with a split or joined tablet never grow again. */
static void seal_all_locked(ig__tablet_t *t)
{
	const ig__tablet_view_t *v = atomic_load_explicit(&t->view, memory_order_relaxed);
	for (size_t g = 0; g < v->ngroups; g++) {
		if (v->g[g].n && frag_active(v->g[g].e[0].frag))
			ig__memfrag_freeze(v->g[g].e[0].frag->mem);
	}
}

/* Whether a disk link has no row in [lo, hi) (NULL: unbounded). A split
 * leaves such a link out of that side: a never-merged run of sequential
 * flushes (compact_policy.c) then divides between the halves instead of
 * doubling. */
static bool outside(const ig__chain_entry_t *e, const void *lo, uint32_t lo_len, const void *hi,
		    uint32_t hi_len)
{
	ig_cell_key_t first, last;

	if (e->frag->kind != IG__FRAG_DISK || ig__diskfrag_bounds(e->frag->disk, &first, &last) != 0)
		return false;
	return (lo != NULL && ig__bytes_cmp(last.row, last.row_len, lo, lo_len) < 0) ||
	       (hi != NULL && ig__bytes_cmp(first.row, first.row_len, hi, hi_len) >= 0);
}

/* Appends src's links to dst's chains, clipped to [lo, hi). */
static int copy_links(ig__tablet_view_t *dst, const ig__tablet_view_t *src, const void *lo,
		      uint32_t lo_len, const void *hi, uint32_t hi_len)
{
	for (size_t g = 0; g < src->ngroups; g++) {
		ig__chain_t *d = &dst->g[g];
		const ig__chain_t *s = &src->g[g];
		ig__chain_entry_t *ne = realloc(d->e, (d->n + s->n + 1) * sizeof *ne);
		if (ne == NULL)
			return IG_ENOMEM;
		d->e = ne;
		for (size_t i = 0; i < s->n; i++) {
			if (outside(&s->e[i], lo, lo_len, hi, hi_len))
				continue;
			int rc = entry_copy(&d->e[d->n], &s->e[i], lo, lo_len, hi, hi_len);
			if (rc < 0)
				return rc;
			d->n++;
		}
	}
	return 0;
}

static int tablet_from(const void *first, uint32_t first_len, const void *last, uint32_t last_len,
		       size_t ngroups, uint64_t applied, ig__tablet_t **out)
{
	int rc = ig__tablet_create(first, first_len, last, last_len, ngroups, out);
	if (rc == 0)
		atomic_store(&(*out)->applied, applied);
	return rc;
}

int ig__tablet_split(ig__tablet_t *t, const void *row, uint32_t row_len, ig__tablet_t **left,
		     ig__tablet_t **right)
{
	if (row_len == 0 || row == NULL ||
	    (t->first_len && ig__bytes_cmp(row, row_len, t->first, t->first_len) <= 0) ||
	    (t->last_len && ig__bytes_cmp(row, row_len, t->last, t->last_len) >= 0))
		return IG_EINVAL;
	pthread_mutex_lock(&t->wlock);
	seal_all_locked(t);
	const ig__tablet_view_t *v = atomic_load_explicit(&t->view, memory_order_relaxed);
	uint64_t applied = atomic_load(&t->applied);
	ig__tablet_t *l = NULL, *r = NULL;
	int rc = tablet_from(t->first, t->first_len, row, row_len, t->ngroups, applied, &l);
	if (rc == 0)
		rc = tablet_from(row, row_len, t->last, t->last_len, t->ngroups, applied, &r);
	/* The new tablets are unpublished: filling their views in place is safe. */
	if (rc == 0)
		rc = copy_links(atomic_load(&l->view), v, t->first, t->first_len, row, row_len);
	if (rc == 0)
		rc = copy_links(atomic_load(&r->view), v, row, row_len, t->last, t->last_len);
	pthread_mutex_unlock(&t->wlock);
	if (rc < 0) {
		ig__tablet_unref(l);
		ig__tablet_unref(r);
		return rc;
	}
	*left = l;
	*right = r;
	return 0;
}

/* Whether link a goes before link b in a joined chain: memory links first
 * (flush and the active fragment expect them at the front), then newest
 * max_txn first, as in any chain (configs and compaction rely on it). */
static bool link_before(const ig__chain_entry_t *a, const ig__chain_entry_t *b)
{
	bool am = a->frag->kind == IG__FRAG_MEM, bm = b->frag->kind == IG__FRAG_MEM;
	if (am != bm)
		return am;
	return atomic_load(&a->frag->max_txn) >= atomic_load(&b->frag->max_txn);
}

/* Fills dst's chains with l's and r's links, each clipped to its side's
 * rows, merged in chain order. Each side keeps its own order, so the
 * versions of any row (all on one side) stay newest first. */
static int merge_links(ig__tablet_view_t *dst, const ig__tablet_t *l, const ig__tablet_t *r)
{
	const ig__tablet_view_t *lv = atomic_load(&l->view), *rv = atomic_load(&r->view);
	for (size_t g = 0; g < dst->ngroups; g++) {
		const ig__chain_t *a = &lv->g[g], *b = &rv->g[g];
		ig__chain_t *d = &dst->g[g];
		ig__chain_entry_t *ne = realloc(d->e, (a->n + b->n + 1) * sizeof *ne);
		if (ne == NULL)
			return IG_ENOMEM;
		d->e = ne;
		for (size_t i = 0, j = 0; i < a->n || j < b->n;) {
			bool left = j == b->n || (i < a->n && link_before(&a->e[i], &b->e[j]));
			int rc = left ? entry_copy(&d->e[d->n], &a->e[i++], l->first, l->first_len,
						   l->last, l->last_len)
				      : entry_copy(&d->e[d->n], &b->e[j++], r->first, r->first_len,
						   r->last, r->last_len);
			if (rc < 0)
				return rc;
			d->n++;
		}
	}
	return 0;
}

int ig__tablet_join(ig__tablet_t *l, ig__tablet_t *r, ig__tablet_t **out)
{
	if (l == r || l->ngroups != r->ngroups || l->last_len == 0 || r->first_len == 0 ||
	    !ig__bytes_eq(l->last, l->last_len, r->first, r->first_len))
		return IG_EINVAL;
	/* Always l then r: two joiners never lock in opposite orders. */
	pthread_mutex_lock(&l->wlock);
	pthread_mutex_lock(&r->wlock);
	seal_all_locked(l);
	seal_all_locked(r);
	uint64_t la = atomic_load(&l->applied), ra = atomic_load(&r->applied);
	ig__tablet_t *j = NULL;
	int rc = tablet_from(l->first, l->first_len, r->last, r->last_len, l->ngroups,
			     la > ra ? la : ra, &j);
	if (rc == 0)
		rc = merge_links(atomic_load(&j->view), l, r);
	pthread_mutex_unlock(&r->wlock);
	pthread_mutex_unlock(&l->wlock);
	if (rc < 0) {
		ig__tablet_unref(j);
		return rc;
	}
	*out = j;
	return 0;
}
