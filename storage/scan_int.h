/* Internal to storage/: scans, the merged and filtered view of a tablet's
 * chains (or of any set of fragment cursors) under a snapshot.
 *
 * Order of the filters, and why: the merge first resolves identical keys
 * (newest fragment wins) and applies the erasure rule (merge_int.h), so an
 * erasure hides cells whatever the predicates select; then the row range
 * and prefix, the families and columns and the timestamp range select
 * cells; last, max_versions keeps the newest N selected cells of each
 * (row, column). So "the 2 newest versions in [t0, t1]" means exactly
 * that, and an erasure outside [t0, t1] still hides cells inside it.
 */
#ifndef INGOT_STORAGE_SCAN_INT_H
#define INGOT_STORAGE_SCAN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/storage.h>

#include "frag_iter_int.h"
#include "merge_int.h"
#include "tablet_int.h"

/** A byte string (borrowed). */
typedef struct ig__bytes {
	const void *p;
	uint32_t len;
} ig__bytes_t;

/** What a scan selects. Start from ig__scan_pred_init (everything); every
 *  pointer is borrowed and must outlive the scan. */
typedef struct ig__scan_pred {
	ig__bytes_t row_start;         /* rows >= this; len 0: from the first */
	ig__bytes_t row_end;           /* rows < this; len 0: to the last */
	ig__bytes_t prefix;            /* rows starting with this; len 0: any */
	const ig__bytes_t *families;   /* nfamilies family names */
	size_t nfamilies;
	const ig__bytes_t *columns;    /* ncolumns full columns "family:qualifier" */
	size_t ncolumns;
	/* A cell passes the column filter if both lists are empty, or its family
	 * is in families, or its column is in columns (a union, as in HBase's
	 * addFamily/addColumn). */
	int64_t ts_min, ts_max;        /* timestamps in [ts_min, ts_max], inclusive */
	uint32_t max_versions;         /* newest N per (row, column); 0: all */
} ig__scan_pred_t;

/** Sets p to select everything. */
void ig__scan_pred_init(ig__scan_pred_t *p);

/** A scan in progress. Fields are private. */
typedef struct ig__scan {
	ig__scan_pred_t pred;
	ig__merge_t merge;
	ig__bytes_t end;               /* effective exclusive end row; len 0: none */
	bool done;
	/* max_versions: the current (row, column) and how many cells it gave. */
	uint8_t *cur;
	size_t cur_cap;
	uint32_t cur_row_len, cur_col_len;
	uint32_t versions;
	bool have_cur;
	/* Owned when opened on a tablet. */
	ig__tablet_view_t *view;       /* pinned view, or NULL */
	ig__tablet_t *tablet;          /* a reference: its row bounds clip the scan */
	ig__frag_iter_t *iters;
	size_t niters;
	uint64_t snapshot;             /* the txn the scan reads at */
} ig__scan_t;

/** Starts a scan over cursors in[0..n) (newest first; borrowed, must
 *  outlive the scan), positioned at the predicate's first row.
 *  Returns 0, IG_EINVAL (ts_min > ts_max), IG_ENOMEM, or a seek error. On
 *  error nothing is left to fini. */
int ig__scan_init(ig__scan_t *s, const ig__scan_pred_t *pred, const ig__merge_input_t *in,
		  size_t n);

/** Opens a scan of tablet t at snapshot (a txn, or IG__TXN_LATEST for the
 *  latest applied one; see tablet_int.h for the fragment-granular rule).
 *  Reads the tablet's rows only. The caller must have registered the
 *  thread with urcu_memb_register_thread. No lock is held between calls:
 *  the scan pins a view and reads it whatever writers replace meanwhile.
 *  Ownership: the scan is the caller's; release it with ig__scan_fini.
 *  Returns 0; IG_EAGAIN if snapshot is above the applied txn (not every
 *  txn up to it is in the tablet yet); IG_ESTATE if a fragment holds txns
 *  on both sides of snapshot; IG_EINVAL; IG_ENOMEM; a seek error. */
int ig__scan_open(ig__scan_t *s, ig__tablet_t *t, const ig__scan_pred_t *pred,
		  uint64_t snapshot);

/** The txn the scan reads at (resolved from IG__TXN_LATEST). */
uint64_t ig__scan_snapshot(const ig__scan_t *s);

/** Reads the next selected cell (never an erasure). Returns 1 with *out,
 *  0 at the end, or a negative error of a fragment (sticky; the text is
 *  ig__scan_error). The cell's bytes are valid until the next call. */
int ig__scan_next(ig__scan_t *s, ig_cell_t *out);

const char *ig__scan_error(const ig__scan_t *s);

/** Ends the scan: frees its memory and unpins its view. */
void ig__scan_fini(ig__scan_t *s);

#endif
