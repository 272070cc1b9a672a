/* Internal to storage/: the k-way merge of fragment cursors in cell order,
 * and the erasure rule a scan applies.
 *
 * Sources are given newest first (a tablet chain's order). The merge
 * returns, per key (row, column, timestamp), the cell of the NEWEST source
 * holding that key, whatever its kind; older cells with an identical key
 * are dropped unseen. That is what a memory fragment does on its own (a
 * later write of an equal key replaces the earlier one), so merging a chain
 * gives the same cells as one fragment that took every write in order, and
 * serializing or compacting a contiguous run of the chain never changes
 * what the merge returns.
 *
 * Erasure rule (with IG__MERGE_HIDE): an erasure that wins its key
 * (row, column, ts) hides every cell of the same row and column whose
 * timestamp is <= ts, in any source: the identical key because the erasure
 * won it, the older timestamps because the cells of a (row, column) come
 * newest first, so after the erasure everything left of that column is
 * older. Erasures themselves are then never returned. Without the flag the
 * merge returns erasures like any cell (what compaction writes out).
 * docs/store.md ("Scans") states the same rule for users.
 *
 * Clipping: each source may be restricted to rows [lo, hi) (a split
 * tablet's share of a fragment it shares with its sibling); cells outside
 * are never returned.
 *
 * Why a linear pick instead of a heap: a chain holds a handful of
 * fragments (the compactor keeps it short), and a linear pass over a few
 * heads in one array beats a heap's pointer chasing there.
 */
#ifndef INGOT_STORAGE_MERGE_INT_H
#define INGOT_STORAGE_MERGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/storage.h>

#include "frag_iter_int.h"

/** Merge flag: apply the erasure rule and never return erasures. */
#define IG__MERGE_HIDE 1u

/** One input: a cursor (borrowed) and an optional row clip [lo, hi);
 *  lo NULL means from the first row, hi NULL means to the last. The clip
 *  bytes are borrowed too. */
typedef struct ig__merge_input {
	ig__frag_iter_t *it;
	const void *lo;
	const void *hi;
	uint32_t lo_len;
	uint32_t hi_len;
} ig__merge_input_t;

struct ig__merge_src;

/** A merge in progress. Embed it anywhere; fields are private. */
typedef struct ig__merge {
	struct ig__merge_src *src;  /* n sources, newest first */
	size_t n;
	unsigned flags;
	int err;                    /* sticky error of a source */
	const char *why;            /* that source's error text */
	/* Erasure rule: the (row, column) of the last winning erasure. */
	bool erased;
	uint8_t *ebuf;              /* row bytes then column bytes */
	size_t ecap;
	uint32_t erow_len, ecol_len;
} ig__merge_t;

/** Starts a merge over in[0..n) (newest first), positioned before the
 *  first cell. The cursors stay the caller's (not finished by fini) and
 *  must outlive the merge. Returns 0 or IG_ENOMEM (nothing to fini). */
int ig__merge_init(ig__merge_t *m, const ig__merge_input_t *in, size_t n, unsigned flags);

/** Frees the merge's own memory. */
void ig__merge_fini(ig__merge_t *m);

/** Positions the merge before the first cell whose key is >= key (and
 *  forgets the erasure state). Returns 0 or a source's seek error (which
 *  sticks). */
int ig__merge_seek(ig__merge_t *m, const ig_cell_key_t *key);

/** Reads the next merged cell. Returns 1 with *out, 0 at the end, or a
 *  negative error of a source (sticky; ig__merge_error names it). The
 *  cell's bytes are valid until the next call on the merge. */
int ig__merge_next(ig__merge_t *m, ig_cell_t *out);

/** The text of the sticky error ("" if none). */
const char *ig__merge_error(const ig__merge_t *m);

#endif
