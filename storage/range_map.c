/* A table's tablets by row range, published under RCU (range_map_int.h). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>

#include "cell_int.h"
#include "range_map_int.h"

/* An immutable sorted array of tablets, one reference on each. */
typedef struct rm_view {
	size_t n;
	ig__tablet_t *t[];
} rm_view_t;

struct ig__range_map {
	_Atomic(rm_view_t *) view;
	pthread_mutex_t wlock;  /* serializes splits and joins */
	size_t ngroups;
};

static void view_drop(rm_view_t *v)
{
	for (size_t i = 0; i < v->n; i++)
		ig__tablet_unref(v->t[i]);
	free(v);
}

int ig__range_map_create(size_t ngroups, ig__range_map_t **out)
{
	ig__range_map_t *m = calloc(1, sizeof *m);
	rm_view_t *v = calloc(1, sizeof *v + sizeof v->t[0]);
	if (m == NULL || v == NULL) {
		free(m);
		free(v);
		return IG_ENOMEM;
	}
	int rc = ig__tablet_create(NULL, 0, NULL, 0, ngroups, &v->t[0]);
	if (rc < 0) {
		free(m);
		free(v);
		return rc;
	}
	v->n = 1;
	m->ngroups = ngroups;
	atomic_init(&m->view, v);
	pthread_mutex_init(&m->wlock, NULL);
	*out = m;
	return 0;
}

void ig__range_map_destroy(ig__range_map_t *m)
{
	if (m == NULL)
		return;
	view_drop(atomic_load(&m->view));
	pthread_mutex_destroy(&m->wlock);
	free(m);
}

/* Index of the tablet holding row: the last whose first row is <= row. */
static size_t locate(const rm_view_t *v, const void *row, uint32_t row_len)
{
	size_t lo = 1, hi = v->n;  /* t[0] starts unbounded: the answer is >= 0 */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const void *f, *l;
		uint32_t fl, ll;
		ig__tablet_range(v->t[mid], &f, &fl, &l, &ll);
		if (ig__bytes_cmp(f, fl, row, row_len) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

size_t ig__range_map_count(ig__range_map_t *m)
{
	urcu_memb_read_lock();
	size_t n = atomic_load_explicit(&m->view, memory_order_acquire)->n;
	urcu_memb_read_unlock();
	return n;
}

int ig__range_map_find(ig__range_map_t *m, const void *row, uint32_t row_len,
		       ig__tablet_t **out)
{
	if (row_len == 0 || row == NULL)
		return IG_EINVAL;
	urcu_memb_read_lock();
	const rm_view_t *v = atomic_load_explicit(&m->view, memory_order_acquire);
	/* The map's reference outlives this section (dropped after a grace
	 * period), so taking ours here is safe. */
	*out = ig__tablet_ref(v->t[locate(v, row, row_len)]);
	urcu_memb_read_unlock();
	return 0;
}

int ig__range_map_range(ig__range_map_t *m, const void *start, uint32_t start_len,
			const void *end, uint32_t end_len, ig__tablet_t ***out, size_t *n)
{
	urcu_memb_read_lock();
	const rm_view_t *v = atomic_load_explicit(&m->view, memory_order_acquire);
	size_t a = start_len ? locate(v, start, start_len) : 0;
	size_t b = v->n;  /* one past the last tablet whose first row is < end */
	if (end_len) {
		b = locate(v, end, end_len) + 1;
		const void *f, *l;
		uint32_t fl, ll;
		ig__tablet_range(v->t[b - 1], &f, &fl, &l, &ll);
		if (fl && ig__bytes_eq(f, fl, end, end_len))
			b--;  /* that tablet starts at end: nothing of it is read */
	}
	if (b < a)
		b = a;
	ig__tablet_t **arr = malloc((b - a ? b - a : 1) * sizeof *arr);
	if (arr == NULL) {
		urcu_memb_read_unlock();
		return IG_ENOMEM;
	}
	for (size_t i = a; i < b; i++)
		arr[i - a] = ig__tablet_ref(v->t[i]);
	urcu_memb_read_unlock();
	*out = arr;
	*n = b - a;
	return 0;
}

/* Replaces t[at .. at+nold) of the current view by with[0..nwith) (their
 * references move into the map), publishes, waits a grace period, then drops
 * the old view and its references (writer mutex held). */
static int swap_in(ig__range_map_t *m, size_t at, size_t nold, ig__tablet_t **with, size_t nwith)
{
	rm_view_t *v = atomic_load_explicit(&m->view, memory_order_relaxed);
	size_t n = v->n - nold + nwith;
	rm_view_t *nv = malloc(sizeof *nv + n * sizeof nv->t[0]);
	if (nv == NULL)
		return IG_ENOMEM;
	nv->n = n;
	size_t k = 0;
	for (size_t i = 0; i < at; i++)
		nv->t[k++] = ig__tablet_ref(v->t[i]);
	for (size_t i = 0; i < nwith; i++)
		nv->t[k++] = with[i];
	for (size_t i = at + nold; i < v->n; i++)
		nv->t[k++] = ig__tablet_ref(v->t[i]);
	atomic_store_explicit(&m->view, nv, memory_order_release);
	urcu_memb_synchronize_rcu();
	view_drop(v);
	return 0;
}

int ig__range_map_split(ig__range_map_t *m, const void *row, uint32_t row_len)
{
	if (row_len == 0 || row == NULL)
		return IG_EINVAL;
	pthread_mutex_lock(&m->wlock);
	const rm_view_t *v = atomic_load_explicit(&m->view, memory_order_relaxed);
	size_t at = locate(v, row, row_len);
	ig__tablet_t *half[2];
	int rc = ig__tablet_split(v->t[at], row, row_len, &half[0], &half[1]);
	if (rc == 0 && (rc = swap_in(m, at, 1, half, 2)) < 0) {
		ig__tablet_unref(half[0]);
		ig__tablet_unref(half[1]);
	}
	pthread_mutex_unlock(&m->wlock);
	return rc;
}

int ig__range_map_join(ig__range_map_t *m, const void *row, uint32_t row_len)
{
	if (row_len == 0 || row == NULL)
		return IG_EINVAL;
	pthread_mutex_lock(&m->wlock);
	const rm_view_t *v = atomic_load_explicit(&m->view, memory_order_relaxed);
	size_t at = locate(v, row, row_len);
	int rc = IG_ENOTFOUND;
	ig__tablet_t *j;
	if (at + 1 < v->n && (rc = ig__tablet_join(v->t[at], v->t[at + 1], &j)) == 0 &&
	    (rc = swap_in(m, at, 2, &j, 1)) < 0)
		ig__tablet_unref(j);
	pthread_mutex_unlock(&m->wlock);
	return rc;
}

/* Says whether tablets v[0..n) cover every row once, in order. */
static bool covers(ig__tablet_t *const *v, size_t n)
{
	const void *prev = NULL;
	uint32_t prev_len = 0;

	for (size_t i = 0; i < n; i++) {
		const void *f, *l;
		uint32_t fl, ll;

		ig__tablet_range(v[i], &f, &fl, &l, &ll);
		if ((i == 0 && fl != 0) || (i > 0 && (fl == 0 || ig__bytes_cmp(f, fl, prev, prev_len))))
			return false;
		if ((i + 1 == n) != (ll == 0))
			return false;
		prev = l;
		prev_len = ll;
	}
	return n > 0;
}

int ig__range_map_load(ig__range_map_t *m, ig__tablet_t *const *v, size_t n)
{
	ig__tablet_t **with;
	int rc;

	if (!covers(v, n))
		return IG_EINVAL;
	if (!(with = malloc(n * sizeof *with)))
		return IG_ENOMEM;
	for (size_t i = 0; i < n; i++)
		with[i] = ig__tablet_ref(v[i]);
	pthread_mutex_lock(&m->wlock);
	rc = swap_in(m, 0, atomic_load_explicit(&m->view, memory_order_relaxed)->n, with, n);
	pthread_mutex_unlock(&m->wlock);
	if (rc < 0)
		for (size_t i = 0; i < n; i++)
			ig__tablet_unref(with[i]);
	free(with);
	return rc < 0 ? rc : 0;
}
