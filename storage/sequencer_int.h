/* Internal to storage/: the sequencer. It hands out txns, publishes the
 * committed txn (the highest txn durable in the log, with every txn below
 * it), runs callbacks when a txn becomes committed, lets threads wait for
 * a txn to become durable (sync), and checks row conflicts against a
 * caller's commitMaxTxn.
 *
 * Thread-safety: every function may be called from any thread, except
 * that ig_seq_commit and ig_seq_fail should come from one thread (the log
 * writer's) so callbacks run in txn order, and ig_seq_destroy only once
 * nothing else uses the sequencer.
 */
#ifndef INGOT_STORAGE_SEQUENCER_INT_H
#define INGOT_STORAGE_SEQUENCER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <ingot/error.h>
#include <ingot/storage.h>

/* error.h has had IG_ECONFLICT since the log landed; this keeps the code
 * building against an older error.h (as a macro, since there the enum
 * lacks it). */
#ifndef IG_ECONFLICT
#define IG_ECONFLICT (IG_E_BASE - 16)
#endif

/* ig_seq_apply's commit_max_txn for "no conflict check". */
#define IG_TXN_ANY UINT64_MAX

typedef struct ig_seq ig_seq_t;

/** Runs once txn is committed (status 0), or when the sequencer fails or
 *  is destroyed before that (status is the failure, or IG_ESTOPPED). It
 *  runs on the thread that commits (or registers, if txn is committed
 *  already) and must not call ig_seq_commit, ig_seq_fail or
 *  ig_seq_destroy. */
typedef void (*ig_seq_fn)(void *arg, uint64_t txn, int status);

/** Creates a sequencer that continues after last_txn (the last txn the
 *  log replayed; IG_TXN_NONE, i.e. 0, for a new store): the next txn is
 *  last_txn + 1 and last_txn is committed. Rows changed before last_txn
 *  are not known, so an apply whose commit_max_txn is below last_txn gets
 *  IG_ECONFLICT (ig_seq_forget explains why). Ownership: *out is the
 *  caller's; free it with ig_seq_destroy. Returns 0, IG_ENOMEM or -errno
 *  (pthread set-up). */
int ig_seq_create(uint64_t last_txn, ig_seq_t **out);

/** Runs every callback still pending with IG_ESTOPPED, then frees the
 *  sequencer. No thread may be waiting in ig_seq_sync. NULL is ignored. */
void ig_seq_destroy(ig_seq_t *s);

/** Assigns the next txn (strictly increasing, never IG_TXN_NONE). */
uint64_t ig_seq_next(ig_seq_t *s);

/** The last txn assigned (IG_TXN_NONE if none ever was). */
uint64_t ig_seq_assigned(const ig_seq_t *s);

/** The committed txn: every txn up to it is durable. */
uint64_t ig_seq_committed(const ig_seq_t *s);

/** Publishes txn as committed (the log writer calls it after the fsync
 *  that made txn and everything before it durable). A txn at or below the
 *  committed one changes nothing. Wakes ig_seq_sync waiters and runs the
 *  callbacks of every txn now committed, in txn order (registration order
 *  for equal txns), on this thread, with no lock held. Returns 0,
 *  IG_EINVAL if txn was never assigned, or the failure set by
 *  ig_seq_fail. */
int ig_seq_commit(ig_seq_t *s, uint64_t txn);

/** Registers fn(arg, txn, status) to run when txn is committed. If it is
 *  already (or the sequencer has failed), fn runs now, on this thread,
 *  before the call returns. Returns 0 or IG_ENOMEM (fn will not run). */
int ig_seq_on_commit(ig_seq_t *s, uint64_t txn, ig_seq_fn fn, void *arg);

/** Waits until txn is committed, or until the absolute CLOCK_MONOTONIC
 *  deadline (NULL: no deadline). Returns 0, IG_ETIMEDOUT, or the failure
 *  set by ig_seq_fail (a txn committed before the failure still returns
 *  0). */
int ig_seq_sync(ig_seq_t *s, uint64_t txn, const struct timespec *deadline);

/** Marks the sequencer failed with err (a negative code, e.g. the log's
 *  fsync error): nothing more commits; waiters and pending callbacks get
 *  err. The first failure sticks. */
void ig_seq_fail(ig_seq_t *s, int err);

/** Applies a mutation's rows under one txn, checking conflicts first.
 *  The rows are those of the cells of blocks[0..nblocks) (opened blocks of
 *  table table_id; rows are keyed by (table_id, row), so a tablet split
 *  does not change them). If commit_max_txn is not IG_TXN_ANY and any of
 *  the rows was changed by a txn after commit_max_txn (assigned, committed
 *  or not), or commit_max_txn is below what the sequencer remembers (see
 *  ig_seq_forget), nothing changes and it returns IG_ECONFLICT, with
 *  *conflict_block and *conflict_cell (if not NULL) naming the first
 *  conflicting cell (both UINT32_MAX when commit_max_txn is too old).
 *  Otherwise it assigns a txn, records it as each row's last change, and
 *  sets *out_txn. The check and the assignment are atomic with respect to
 *  other applies. Returns 0, IG_ECONFLICT, IG_EINVAL, or IG_ENOMEM (then
 *  a txn may have been used up and some rows marked with it, which can
 *  only cause extra conflicts, never miss one). */
int ig_seq_apply(ig_seq_t *s, uint64_t table_id, const ig_packed_t *blocks, size_t nblocks,
		 uint64_t commit_max_txn, uint64_t *out_txn, uint32_t *conflict_block,
		 uint32_t *conflict_cell);

/** Looks up the last txn that changed (table_id, row). Returns 0 and sets
 *  *txn, or IG_ENOTFOUND if the sequencer does not remember the row. */
int ig_seq_row_txn(ig_seq_t *s, uint64_t table_id, const void *row, size_t row_len,
		   uint64_t *txn);

/** Forgets rows last changed at or below horizon, bounding the table's
 *  memory; from then on an apply with commit_max_txn below horizon gets
 *  IG_ECONFLICT (its rows may have changed in between, and the sequencer
 *  no longer knows). Callers pick a horizon older than any snapshot they
 *  still serve. Returns the number of rows still remembered. */
size_t ig_seq_forget(ig_seq_t *s, uint64_t horizon);

/** The number of rows remembered. */
size_t ig_seq_rows(ig_seq_t *s);

#endif
