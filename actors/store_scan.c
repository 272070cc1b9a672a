/* Scanners: one snapshot across every tablet a row range covers.
 *
 * The snapshot is the store's applied txn, read before the tablets are
 * listed (so a split after it only hands the rows to tablets that hold all
 * of them up to it), and waited for until durable (so a scan never shows a
 * write a crash could take back). Every tablet's scan is opened at once:
 * opening pins each active memory fragment at the snapshot, so later
 * inserts go to fresh fragments instead of racing the scan.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fragment straddling the snapshot (an insert landed between reading the
 * applied txn and pinning, or a flush froze a fragment while an apply was
 * half done) makes the open retry at a newer snapshot. */
#define IG__SCAN_RETRIES 64

struct ig_scanner {
	ig_table_t *table;
	ig__scan_pred_t pred;
	uint8_t *bytes;              /* copies of every predicate string */
	ig__bytes_t *lists;          /* families then columns */
	ig__tablet_t **tabs;
	size_t ntabs, cur;
	ig__scan_t *scans;
	size_t nopen;
	uint64_t snapshot;
	int err;
	char why[256];
};

void ig_scan_options_init(ig_scan_options_t *o)
{
	*o = (ig_scan_options_t){.ts_min = INT64_MIN, .ts_max = INT64_MAX};
}

/* ---- options to a predicate ---------------------------------------------- */

static size_t strings_len(const char *const *v, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]);
	return len;
}

static ig__bytes_t put(uint8_t **at, const void *p, size_t len)
{
	ig__bytes_t b = {.p = *at, .len = (uint32_t)len};

	if (len)
		memcpy(*at, p, len);
	*at += len;
	return b;
}

static int copy_options(ig_scanner_t *sc, const ig_scan_options_t *o)
{
	size_t nlist = o->nfamilies + o->ncolumns;
	size_t len = (size_t)o->row_start_len + o->row_end_len + o->prefix_len +
		     strings_len(o->families, o->nfamilies) + strings_len(o->columns, o->ncolumns);
	uint8_t *at;

	sc->bytes = malloc(len ? len : 1);
	sc->lists = malloc((nlist ? nlist : 1) * sizeof *sc->lists);
	if (!sc->bytes || !sc->lists)
		return IG_ENOMEM;
	at = sc->bytes;
	ig__scan_pred_init(&sc->pred);
	sc->pred.row_start = put(&at, o->row_start, o->row_start_len);
	sc->pred.row_end = put(&at, o->row_end, o->row_end_len);
	sc->pred.prefix = put(&at, o->prefix, o->prefix_len);
	for (size_t i = 0; i < o->nfamilies; i++)
		sc->lists[i] = put(&at, o->families[i], strlen(o->families[i]));
	for (size_t i = 0; i < o->ncolumns; i++)
		sc->lists[o->nfamilies + i] = put(&at, o->columns[i], strlen(o->columns[i]));
	sc->pred.families = sc->lists;
	sc->pred.nfamilies = o->nfamilies;
	sc->pred.columns = sc->lists + o->nfamilies;
	sc->pred.ncolumns = o->ncolumns;
	sc->pred.ts_min = o->ts_min;
	sc->pred.ts_max = o->ts_max;
	sc->pred.max_versions = o->max_versions;
	return 0;
}

/* ---- opening ------------------------------------------------------------------ */

static void close_scans(ig_scanner_t *sc)
{
	for (size_t i = 0; i < sc->nopen; i++)
		ig__scan_fini(&sc->scans[i]);
	sc->nopen = 0;
}

static void release_tablets(ig_scanner_t *sc)
{
	for (size_t i = 0; i < sc->ntabs; i++)
		ig__tablet_unref(sc->tabs[i]);
	free(sc->tabs);
	sc->tabs = NULL;
	sc->ntabs = 0;
}

/* One attempt at snapshot S: IG_ESTATE means retry at a newer one. */
static int open_at(ig_scanner_t *sc, uint64_t snap)
{
	ig_table_t *t = sc->table;
	int rc = ig__range_map_range(t->map, sc->pred.row_start.p, sc->pred.row_start.len,
				     sc->pred.row_end.p, sc->pred.row_end.len, &sc->tabs,
				     &sc->ntabs);

	if (rc != 0)
		return rc;
	sc->scans = calloc(sc->ntabs ? sc->ntabs : 1, sizeof *sc->scans);
	if (!sc->scans)
		return IG_ENOMEM;
	for (size_t i = 0; i < sc->ntabs; i++) {
		/* Every txn <= snap is in every tablet (applied is published
		 * after the inserts), so each may serve it. */
		ig__tablet_set_applied(sc->tabs[i], snap);
		if ((rc = ig__scan_open(&sc->scans[i], sc->tabs[i], &sc->pred, snap)) != 0)
			return rc;
		sc->nopen++;
	}
	sc->snapshot = snap;
	return 0;
}

static int open_scans(ig_scanner_t *sc)
{
	ig_store_t *s = sc->table->store;
	int rc = IG_ESTATE;

	for (int i = 0; i < IG__SCAN_RETRIES && rc == IG_ESTATE; i++) {
		uint64_t snap = atomic_load_explicit(&s->applied, memory_order_acquire);

		if ((rc = ig_seq_sync(s->seq, snap, NULL)) != 0)
			return rc;
		rc = open_at(sc, snap);
		if (rc != 0) {
			close_scans(sc);
			free(sc->scans);
			sc->scans = NULL;
			release_tablets(sc);
		}
		if (rc == IG_ESTATE) {
			/* A fragment holds a txn past snap that is not applied
			 * yet: its apply holds wmu, so this waits it out. */
			pthread_mutex_lock(&s->wmu);
			pthread_mutex_unlock(&s->wmu);
		}
	}
	return rc == IG_ESTATE ? IG_EAGAIN : rc;
}

int ig_scanner_open(ig_table_t *t, const ig_scan_options_t *o, ig_scanner_t **out)
{
	ig_scanner_t *sc;
	ig_scan_options_t all;
	int rc;

	if (!t || !out)
		return IG_EINVAL;
	if (!o) {
		ig_scan_options_init(&all);
		o = &all;
	}
	if (o->ts_min > o->ts_max || (o->nfamilies && !o->families) ||
	    (o->ncolumns && !o->columns))
		return IG_EINVAL;
	if (!(sc = calloc(1, sizeof *sc)))
		return IG_ENOMEM;
	sc->table = ig__table_ref(t);
	ig__store_rcu_thread();
	rc = copy_options(sc, o);
	if (rc == 0)
		rc = open_scans(sc);
	if (rc != 0) {
		ig_scanner_close(sc);
		return rc;
	}
	*out = sc;
	return 0;
}

/* ---- reading ----------------------------------------------------------------------- */

int ig_scanner_next(ig_scanner_t *sc, ig_cell_t *out)
{
	if (sc->err)
		return sc->err;
	while (sc->cur < sc->nopen) {
		int rc = ig__scan_next(&sc->scans[sc->cur], out);

		if (rc == 1)
			return 1;
		if (rc < 0) {
			sc->err = rc;
			snprintf(sc->why, sizeof sc->why, "%s", ig__scan_error(&sc->scans[sc->cur]));
			return rc;
		}
		sc->cur++;
	}
	return 0;
}

const char *ig_scanner_error(const ig_scanner_t *sc)
{
	return sc->err ? sc->why : "";
}

uint64_t ig_scanner_snapshot(const ig_scanner_t *sc)
{
	return sc->snapshot;
}

void ig_scanner_close(ig_scanner_t *sc)
{
	if (!sc)
		return;
	close_scans(sc);
	free(sc->scans);
	release_tablets(sc);
	ig__table_unref(sc->table);
	free(sc->bytes);
	free(sc->lists);
	free(sc);
}
