/* Internal to storage/: memory fragments, the sorted and unique set of
 * cells a tablet's locality group collects from the log before the
 * Serializer writes them out as a disk fragment.
 *
 * A memory fragment is a skip list whose nodes live in an arena owned by
 * the fragment. It keeps one cell per key (ig_cell_key_cmp): a later write
 * of an equal key replaces the earlier one (its kind and value), whatever
 * either kind is, because the log applies mutations in txn order.
 *
 * Concurrency rule (readers under RCU, one writer):
 *  - At most one thread inserts at a time (ig__memfrag_insert, _apply,
 *    _freeze); the caller serializes writers.
 *  - Any number of threads may iterate, seek and read the counters at the
 *    same time as that writer, without locks. A node is fully built before
 *    a release store links it in, and readers follow links with acquire
 *    loads, so a reader sees each cell either not at all or whole. A
 *    replaced value is a new record swapped in with a release store; the
 *    old one stays in the arena, so a reader holding it still reads valid
 *    bytes. A reader that runs alongside inserts may or may not see cells
 *    inserted after it started, but what it sees is always in order and
 *    unique.
 *  - Nothing is freed before ig__memfrag_destroy, which the owner calls
 *    only once no reader can still hold the fragment (after an RCU grace
 *    period). Cells read from it stay valid until then.
 *  - After ig__memfrag_freeze, inserts fail with IG_ESTATE: a frozen
 *    fragment is immutable, which is what the Serializer flushes.
 */
#ifndef INGOT_STORAGE_MEMFRAG_INT_H
#define INGOT_STORAGE_MEMFRAG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/storage.h>

typedef struct ig__memfrag ig__memfrag_t;
struct ig__mf_node;

/** Memory accounting of a fragment. */
typedef struct ig__memfrag_stats {
	uint64_t cells;        /* distinct keys held */
	uint64_t replaced;     /* writes that replaced an equal key */
	uint64_t cell_bytes;   /* row + column + value bytes of the live cells */
	uint64_t arena_bytes;  /* bytes allocated for nodes and values (the real cost) */
} ig__memfrag_stats_t;

/** Creates an empty fragment. Ownership: the caller frees it with
 *  ig__memfrag_destroy. Returns 0 or IG_ENOMEM. */
int ig__memfrag_create(ig__memfrag_t **out);

/** Frees the fragment, its arena and every cell read from it. Only when no
 *  reader can still use it (see the concurrency rule). NULL is ignored. */
void ig__memfrag_destroy(ig__memfrag_t *mf);

/** Inserts a copy of one cell (writer only). Returns IG_EINVAL if the cell
 *  fails ig_cell_check, IG_ESTATE if frozen, IG_ENOMEM; on error nothing
 *  changed. */
int ig__memfrag_insert(ig__memfrag_t *mf, const ig_cell_t *cell);

/** Inserts every cell of an opened packed block, in block order, so a later
 *  cell of the block wins over an earlier one with the same key (writer
 *  only). All or nothing: the memory is reserved first, so on IG_ENOMEM or
 *  IG_ESTATE nothing changed. */
int ig__memfrag_apply(ig__memfrag_t *mf, const ig_packed_t *block);

/** Makes the fragment immutable: later inserts fail with IG_ESTATE.
 *  Writer only; readers may run meanwhile. */
void ig__memfrag_freeze(ig__memfrag_t *mf);

/** Says whether ig__memfrag_freeze ran. */
bool ig__memfrag_frozen(const ig__memfrag_t *mf);

/** Fills *out with the fragment's counters (any thread; each counter is
 *  read atomically, the set is not a snapshot while a writer runs). */
void ig__memfrag_stats(const ig__memfrag_t *mf, ig__memfrag_stats_t *out);

/** An ordered cursor over a fragment. Embed it anywhere; its fields are
 *  private. It needs no cleanup. */
typedef struct ig__memfrag_iter {
	const ig__memfrag_t *mf;
	const struct ig__mf_node *next;  /* the node next() returns; NULL at the end */
} ig__memfrag_iter_t;

/** Positions it before the first cell. */
void ig__memfrag_iter_init(ig__memfrag_iter_t *it, const ig__memfrag_t *mf);

/** Positions it before the first cell whose key is >= key. */
void ig__memfrag_iter_seek(ig__memfrag_iter_t *it, const ig_cell_key_t *key);

/** Positions it before the first cell of row (column NULL, column_len 0) or
 *  of (row, column), i.e. at its newest version. */
void ig__memfrag_iter_seek_row(ig__memfrag_iter_t *it, const void *row, uint32_t row_len,
			       const void *column, uint32_t column_len);

/** Reads the next cell into *out and advances. Returns 1 with a cell, 0 at
 *  the end. The cell's bytes belong to the fragment (valid until it is
 *  destroyed). */
int ig__memfrag_iter_next(ig__memfrag_iter_t *it, ig_cell_t *out);

#endif
