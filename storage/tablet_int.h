/* Internal to storage/: a tablet, the rows [first, last) of a table, and
 * per locality group its ordered fragment chain, newest first.
 *
 * Publication (readers never block writers):
 *  - The chains of all groups form one immutable view. A change (an insert
 *    that starts a new memory fragment, a seal, serialization replacing a
 *    memory fragment by a disk fragment, compaction replacing several by
 *    one, a split) builds a new view and publishes it with one release
 *    store under the writer mutex. Readers load it with an acquire load
 *    inside an RCU read-side section and take a reference on it before
 *    leaving the section (ig__tablet_pin). (C11 atomics rather than
 *    rcu_assign_pointer/rcu_dereference, which are the same orders, so
 *    ThreadSanitizer sees them.)
 *  - The tablet's own reference on an old view is dropped only after
 *    synchronize_rcu, so no reader can be between loading the pointer and
 *    taking its reference when it goes; whoever then drops the last
 *    reference (the writer, or the last scan pinned to it) frees the view
 *    and unreferences its fragments. A fragment is freed with its last
 *    view. So a scan that pinned a view reads its fragments safely across
 *    any number of replacements, holding no lock across a step.
 *
 * Threads: every thread that pins (scans) must have called
 * urcu_memb_register_thread() first (and urcu_memb_unregister_thread()
 * before it exits). Writer calls (insert, seal, set_applied, push, replace,
 * split) may come from any thread; a mutex serializes them. They may wait
 * for an RCU grace period, so they must not be called inside a read-side
 * section (or while a pinned view is needed to progress elsewhere: they
 * never wait for pins, only for read-side sections, which are short).
 *
 * Snapshots (fragment granularity): memory fragments do not record the txn
 * of each cell, so a tablet records each fragment's txn range
 * [min_txn, max_txn] and a scan at snapshot S reads exactly the fragments
 * whose txns are all <= S, skipping those whose txns are all > S. A
 * fragment holding txns on both sides of S cannot be split, so such a
 * snapshot is refused (IG_ESTATE). To keep the active memory fragment from
 * receiving txns > S while a scan at S reads it, a scan lowers the
 * fragment's ceiling to S, and an insert of a txn above the ceiling first
 * seals the fragment and starts a new one (a Dekker handshake on two
 * seq_cst atomics, ig__frag_pin_at). Scanning at "the latest applied txn"
 * (IG__TXN_LATEST) therefore always succeeds.
 */
#ifndef INGOT_STORAGE_TABLET_INT_H
#define INGOT_STORAGE_TABLET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/storage.h>

#include "diskfrag_int.h"
#include "memfrag_int.h"

/** Snapshot meaning "the latest txn applied to the tablet". */
#define IG__TXN_LATEST UINT64_MAX
/** min_txn of a fragment that holds no txn yet. */
#define IG__TXN_NONE UINT64_MAX

typedef enum ig__frag_kind {
	IG__FRAG_MEM = 0,
	IG__FRAG_DISK = 1,
} ig__frag_kind_t;

/** A fragment in a chain: a memory or disk fragment with its txn range.
 *  Reference-counted; shared by every view (and split tablet) that holds
 *  it. */
typedef struct ig__frag {
	atomic_uint refs;
	ig__frag_kind_t kind;
	ig__memfrag_t *mem;          /* owned: destroyed with the last reference */
	ig__diskfrag_t *disk;        /* one reference, dropped with the last one */
	_Atomic uint64_t min_txn;    /* IG__TXN_NONE while empty */
	_Atomic uint64_t max_txn;    /* 0 while empty */
	_Atomic uint64_t ceiling;    /* lowest snapshot a scan pinned it at */
	_Atomic uint64_t busy;       /* txn being inserted now, 0 if none */
} ig__frag_t;

/** Wraps a memory fragment, taking ownership of it, with txns
 *  [min_txn, max_txn] (IG__TXN_NONE, 0 when empty). Ownership: *out carries
 *  one reference (ig__frag_unref). Returns 0 or IG_ENOMEM (mf is then still
 *  the caller's). */
int ig__frag_create_mem(ig__memfrag_t *mf, uint64_t min_txn, uint64_t max_txn, ig__frag_t **out);

/** Wraps a disk fragment, taking over the caller's reference on df.
 *  Returns 0 or IG_ENOMEM (the reference is then still the caller's). */
int ig__frag_create_disk(ig__diskfrag_t *df, uint64_t min_txn, uint64_t max_txn,
			 ig__frag_t **out);

ig__frag_t *ig__frag_ref(ig__frag_t *f);
/** Drops a reference; the last destroys the memory fragment or drops the
 *  disk fragment. NULL is ignored. */
void ig__frag_unref(ig__frag_t *f);

/** One link of a chain: a fragment, and the rows of it this tablet serves
 *  [lo, hi) (NULL: unbounded; the bytes are owned by the view). Splits
 *  share fragments between siblings, each clipped to its own rows. */
typedef struct ig__chain_entry {
	ig__frag_t *frag;
	void *lo, *hi;
	uint32_t lo_len, hi_len;
} ig__chain_entry_t;

/** A group's chain, newest first. */
typedef struct ig__chain {
	ig__chain_entry_t *e;
	size_t n;
} ig__chain_t;

/** An immutable snapshot of every chain of a tablet. */
typedef struct ig__tablet_view {
	atomic_uint refs;
	size_t ngroups;
	ig__chain_t g[];            /* ngroups chains */
} ig__tablet_view_t;

typedef struct ig__tablet ig__tablet_t;

/** Creates an empty tablet for rows [first, last) with ngroups locality
 *  groups (1..IG_GROUPS_MAX). first_len 0 means from the first row,
 *  last_len 0 to the end. The bytes are copied. Ownership: *out carries
 *  one reference (ig__tablet_unref). Returns 0, IG_EINVAL (ngroups, or
 *  first >= last), IG_ENOMEM. */
int ig__tablet_create(const void *first, uint32_t first_len, const void *last,
		      uint32_t last_len, size_t ngroups, ig__tablet_t **out);

ig__tablet_t *ig__tablet_ref(ig__tablet_t *t);
/** Drops a reference; the last frees the tablet and its current view.
 *  Any thread outside a read-side section. NULL is ignored. */
void ig__tablet_unref(ig__tablet_t *t);

/** The tablet's rows (bytes owned by the tablet; len 0 = unbounded). */
void ig__tablet_range(const ig__tablet_t *t, const void **first, uint32_t *first_len,
		      const void **last, uint32_t *last_len);
size_t ig__tablet_group_count(const ig__tablet_t *t);
/** Says whether row is in [first, last). */
bool ig__tablet_holds(const ig__tablet_t *t, const void *row, uint32_t row_len);

/** The highest txn whose every cell has been inserted (set_applied). */
uint64_t ig__tablet_applied(const ig__tablet_t *t);

/** Writer: inserts cells[0..n) of txn into group's active memory fragment
 *  (starting one if the newest link is not an unfrozen memory fragment, or
 *  if a scan pinned it at a snapshot below txn). txn must be > the applied
 *  txn. Cells must pass ig_cell_check and lie in the tablet's rows. Not all
 *  or nothing: on IG_ENOMEM the cells before the failing one stay.
 *  Returns 0, IG_EINVAL (group, txn, a cell), IG_ENOMEM. */
int ig__tablet_insert(ig__tablet_t *t, size_t group, const ig_cell_t *cells, size_t n,
		      uint64_t txn);

/** Writer: declares every cell of every txn <= txn inserted, so scans may
 *  use it as a snapshot. Never lowers it. */
void ig__tablet_set_applied(ig__tablet_t *t, uint64_t txn);

/** Writer: freezes group's active memory fragment (what the Serializer
 *  then flushes); the next insert starts a new one. Returns 0 (also when
 *  there is none) or IG_EINVAL for a bad group. */
int ig__tablet_seal(ig__tablet_t *t, size_t group);

/** Writer: adds f as the group's newest link (a bulk-loaded disk fragment,
 *  or a frozen memory fragment). Takes a reference of its own. Returns 0,
 *  IG_EINVAL, IG_ENOMEM. */
int ig__tablet_push(ig__tablet_t *t, size_t group, ig__frag_t *f);

/** Writer: as ig__tablet_push, with the link clipped to rows [lo, hi)
 *  (NULL: unbounded), as recovery rebuilds a chain from a config. */
int ig__tablet_push_clipped(ig__tablet_t *t, size_t group, ig__frag_t *f, const void *lo,
			    uint32_t lo_len, const void *hi, uint32_t hi_len);

/** Writer: replaces old[0..nold), which must be a contiguous run of the
 *  group's chain in chain order (memory fragments in it frozen), by
 *  with[0..nwith) in the same place, newest first. Serialization is 1 -> 1
 *  (memory -> disk, the same cells), compaction n -> 1, nwith 0 removes the
 *  run. The replacements inherit the run's txn range (the union) and the
 *  first entry's clip; the tablet takes references of its own. Waits for a
 *  grace period before dropping its reference on the old view.
 *  Returns 0, IG_ENOTFOUND (not a run of the chain), IG_ESTATE (an
 *  unfrozen memory fragment in the run), IG_EINVAL, IG_ENOMEM. */
int ig__tablet_replace(ig__tablet_t *t, size_t group, ig__frag_t *const *old, size_t nold,
		       ig__frag_t *const *with, size_t nwith);

/** Writer: as ig__tablet_replace, with the run given as links (of a
 *  pinned view): each must match a current link's fragment and clip. A
 *  joined tablet can hold one fragment twice, clipped to each side's rows,
 *  and replacing the wrong one would serve one side's rows from the other
 *  side's rewrite. */
int ig__tablet_replace_links(ig__tablet_t *t, size_t group, const ig__chain_entry_t *run,
			     size_t nold, ig__frag_t *const *with, size_t nwith);

/** Pins the current view: the view stays valid, and every fragment in it,
 *  until ig__tablet_unpin, whatever writers do meanwhile. Any registered
 *  thread; never blocks. Ownership: one view reference. */
ig__tablet_view_t *ig__tablet_pin(ig__tablet_t *t);
void ig__tablet_unpin(ig__tablet_view_t *v);

/** Decides whether a pinned view's fragment takes part in a scan at
 *  snapshot S: 1 to read it, 0 to skip it (all its txns are > S),
 *  IG_ESTATE if it holds txns on both sides of S. For an unfrozen memory
 *  fragment it first lowers the ceiling to S, so later txns go elsewhere;
 *  if an insert is under way it waits for that one insert to end. */
int ig__frag_pin_at(ig__frag_t *f, uint64_t snapshot);

/** Writer: splits t at row (first < row < last) into two new tablets
 *  [first, row) and [row, last) that share t's fragments, each clipped to
 *  its rows. t is unchanged (the range map then swaps them in); its active
 *  memory fragments are sealed first so both halves stay immutable links.
 *  Ownership: *left and *right carry one reference each. Returns 0,
 *  IG_EINVAL (row not strictly inside), IG_ENOMEM. */
int ig__tablet_split(ig__tablet_t *t, const void *row, uint32_t row_len, ig__tablet_t **left,
		     ig__tablet_t **right);

/** Writer: joins neighbours l [a, b) and r [b, c) into a new tablet [a, c)
 *  whose chains hold both tablets' links (each keeps its clip, so the
 *  rows of a shared fragment are served once). Both are sealed first and
 *  left unchanged. Returns 0, IG_EINVAL (not neighbours, group counts
 *  differ), IG_ENOMEM. */
int ig__tablet_join(ig__tablet_t *l, ig__tablet_t *r, ig__tablet_t **out);

#endif
