/* Internal to storage/: compaction of a contiguous run of a chain's
 * fragments into one disk fragment (storage/compact.c), and the
 * size-tiered policy that chooses the runs and measures the debt
 * (storage/compact_policy.c).
 *
 * Compaction merges the run (storage/merge.c, without hiding, so it sees
 * erasures) and filters the merged stream per (row, column):
 *  - erasure rule: cells hidden by a winning erasure are dropped, and so
 *    are erasures hidden by a newer one (it covers all they cover);
 *  - the winning erasure itself is dropped only when the run includes the
 *    chain's oldest fragment and no newer fragment holds an older version
 *    of its column (an erasure hides lower timestamps in newer fragments
 *    too): otherwise a fragment outside the run may hold cells it must
 *    keep hiding;
 *  - "winning" is judged against the whole chain: an erasure whose exact
 *    key a newer fragment outside the run holds loses it there and hides
 *    nothing (opts->newer lists those fragments); it is dropped and the
 *    cells below it stay;
 *  - max-history: only the N newest visible versions (sets) are kept;
 *  - max-age: sets with a timestamp < now - max_age are dropped;
 *  - a purged set ends its column (all older versions are purged too); in
 *    a run without the oldest fragment it is written as an erasure at its
 *    own timestamp instead of vanishing, because an older fragment may
 *    hold a copy of the identical key that would otherwise reappear.
 * Dropping hidden cells is always safe: the erasure hiding them is either
 * kept, or the run reaches the oldest fragment so nothing else remains.
 * Like any store that drops tombstones, a dropped erasure stops hiding
 * cells written later with timestamps at or below its own (before, the
 * erasure rule hid those too); clients that write with a moving clock
 * never see the difference.
 * Purges only shrink what a scan returns, and what they drop is decided on
 * the run alone: the visible versions of a column form a prefix in
 * timestamp order (erasures hide everything at or below them), so a set
 * beyond the N newest of the run is beyond the N newest of the chain.
 * (A purge tombstone is not checked against newer fragments: if one holds
 * its key, that newer cell is version N+1 itself, and what it lets show
 * below was visible before the compaction too, so nothing resurfaces.)
 */
#ifndef INGOT_STORAGE_COMPACT_INT_H
#define INGOT_STORAGE_COMPACT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/storage.h>

#include "diskfrag_int.h"
#include "tablet_int.h"

/* ---- compaction -------------------------------------------------------- */

/** What a compaction applies. */
typedef struct ig__compact_opts {
	ig__diskfrag_opts_t disk;  /* the output file's settings */
	uint32_t max_history;      /* keep this many newest versions; 0 = all */
	int64_t max_age;           /* seconds (as in the schema); 0 = never */
	int64_t now;               /* microseconds since the epoch, for max_age */
	bool includes_oldest;      /* the run ends at the chain's oldest fragment */
	/* The chain's entries newer than the run, newest first (NULL, 0 when
	 * the run starts at the newest). An erasure of the run whose exact
	 * key one of them holds loses that key in the chain's merge and hides
	 * nothing, so it must not drop the cells below it; one whose column
	 * they hold at a lower timestamp must stay to hide it. */
	const ig__chain_entry_t *newer;
	size_t nnewer;
} ig__compact_opts_t;

/** What a compaction did. */
typedef struct ig__compact_stats {
	uint64_t cells_in;         /* cells the merge returned (one per key) */
	uint64_t cells_out;
	uint64_t hidden;           /* sets and erasures hidden by an erasure */
	uint64_t erasures;         /* winning erasures dropped (includes_oldest) */
	uint64_t overridden;       /* erasures dropped: a newer fragment has their key */
	uint64_t history;          /* sets beyond max_history */
	uint64_t aged;             /* sets older than now - max_age */
	ig__diskfrag_info_t info;  /* the written file */
} ig__compact_stats_t;

/** Merges run[0..n) (contiguous chain entries, newest first, each read
 *  within its clip; memory fragments must be frozen) into one disk fragment
 *  at path, applying opts, and opens it. The caller then wraps it
 *  (ig__frag_create_disk) and swaps it in (ig__tablet_replace).
 *  Ownership: *out carries one reference. stats may be NULL.
 *  Returns 0; IG_EINVAL (n 0, bad options); IG_ENOMEM; a fragment's read
 *  error; the writer's error (why names it). On failure nothing is left
 *  at path. */
int ig__compact_run(const ig__chain_entry_t *run, size_t n, const ig__compact_opts_t *opts,
		    const char *path, ig__diskfrag_t **out, ig__compact_stats_t *stats,
		    char *why, size_t why_len);

/* ---- size-tiered policy ------------------------------------------------ */

/** The policy's knobs. Fragments are of "similar size" when the largest
 *  of a run is less than factor times the smallest. */
typedef struct ig__tier_opts {
	uint32_t factor;     /* >= 2; e.g. 4 */
	size_t min_merge;    /* >= 2: fewer similar fragments are left alone */
	size_t max_merge;    /* >= min_merge: the widest merge */
} ig__tier_opts_t;

/** Chooses the run to compact among a chain's fragment sizes[0..n)
 *  (bytes, newest first): of the maximal runs of similar size holding at
 *  least min_merge fragments (cut to max_merge), the one of smallest mean
 *  size (ties: the longer, then the newer). Returns 1 with *first and
 *  *count, 0 if there is nothing to do, IG_EINVAL for bad options. */
int ig__compact_pick(const uint64_t *sizes, size_t n, const ig__tier_opts_t *o,
		     size_t *first, size_t *count);

/** A disk link's rows, [first, last] inclusive; first NULL when unknown
 *  (an empty file), which keeps the link in a run of its own. */
typedef struct ig__row_span {
	const void *first, *last;
	uint32_t first_len, last_len;
} ig__row_span_t;

/** Groups a chain's links spans[0..n) (newest first) into sorted runs:
 *  maximal stretches of adjacent links whose row spans are pairwise
 *  disjoint. Such links share no key, so their order does not matter and
 *  merging them would only concatenate them: the policy sizes and merges
 *  whole runs, and a sequential load's flushes, each past the last, form
 *  one run that is never rewritten (RocksDB's "trivial move"). Writes the
 *  links of each run to counts (room for n) and returns the run count. */
size_t ig__sorted_runs(const ig__row_span_t *spans, size_t n, size_t *counts);

/** The compaction debt of a chain: the bytes the policy would still
 *  rewrite (and the merges it would make) before it has nothing to pick,
 *  taking a merge's output as the sum of its inputs. Doing the policy's
 *  pick lowers it by exactly that run's bytes when nothing is purged, so it
 *  is a backlog an operator can watch. Returns 0, IG_EINVAL, IG_ENOMEM. */
int ig__compact_debt(const uint64_t *sizes, size_t n, const ig__tier_opts_t *o,
		     uint64_t *out_bytes, size_t *out_merges);

#endif
