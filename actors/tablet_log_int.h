/* Internal to actors/: the TabletLog actor, the store's log writer.
 *
 * One TabletLog owns an open write-ahead log (ig_log_t) and the sequencer
 * of its store. Writers submit commits (a packed cell block tagged with its
 * table and tablet); the actor gives each a txn when it arrives, gathers
 * every commit queued since its last write into one ig_log_append (one
 * pwrite, one fdatasync: group commit), publishes the highest txn with
 * ig_seq_commit, and only then acks each commit to its reply_to actor.
 *
 * The queue of commits submitted but not yet synced is bounded in bytes.
 * DESIGN says applies are throttled when it is full, not failed, so
 * ig__tablet_log_submit blocks its caller until there is room. A caller
 * that must not block (a behavior on a shared dispatcher) passes timeout 0
 * and gets IG_EAGAIN instead, and retries later (e.g. on its next ack).
 *
 * The actor runs on a dispatcher of its own with one thread, because it
 * blocks in fdatasync and must not stall other actors.
 */
#ifndef INGOT_ACTORS_TABLET_LOG_INT_H
#define INGOT_ACTORS_TABLET_LOG_INT_H

#include <stdint.h>

#include <ingot/runtime.h>

#include "done_int.h"
#include "log_int.h"
#include "sequencer_int.h"

/* The ack every commit gets, sent with ig_tell to its reply_to actor (the
 * sender the receiver sees is the TabletLog). */
#define IG__TL_MSG_ACK 0x544c0001u

typedef struct ig__tl_ack {
	uint64_t txn;    /* the commit's txn (IG_TXN_NONE if it never got one) */
	uint64_t cookie; /* the submitter's value, passed back unchanged */
	int status;      /* 0: durable; else why not (the log's -errno, IG_ESTATE
			  * after an earlier failure, IG_ESTOPPED, IG_ENOMEM) */
} ig__tl_ack_t;

typedef struct ig__tablet_log_config {
	const char *dir;           /* the log directory (created if missing) */
	const char *name;          /* actor name under /user; NULL = anonymous */
	ig_log_options_t log;      /* passed to ig_log_open (fault injection) */
	uint64_t max_bytes;        /* queued-but-unsynced block bytes; 0 = 64 MiB */
	/* Called on the submitter's thread each time a submit starts waiting
	 * for room (tests use it to see throttling without sleeping). */
	void (*on_throttle)(void *arg);
	void *throttle_arg;
	/* If not NULL, gets what a damaged segment is and where, when the
	 * start fails with IG_ECORRUPT. */
	ig_log_error_t *open_err;
} ig__tablet_log_config_t;

typedef struct ig__tablet_log_stats {
	uint64_t batches;          /* successful ig_log_append calls */
	uint64_t commits;          /* commits made durable in them */
	uint64_t fsyncs;           /* fdatasync calls the log made */
	uint64_t failed;           /* commits acked with an error */
	uint64_t throttled;        /* submits that had to wait for room */
	uint64_t queued_bytes;     /* now */
	uint64_t queued_bytes_max; /* high-water mark; <= max_bytes unless one
				    * commit alone is larger */
	uint64_t segments;         /* segments in the directory */
	uint64_t segments_deleted; /* by ig__tablet_log_trim */
	uint64_t trim_errors;
} ig__tablet_log_stats_t;

typedef struct ig__tablet_log ig__tablet_log_t;

/** Opens the log in cfg->dir, creates the sequencer (continuing after the
 *  log's last txn), a one-thread dispatcher and the actor. Ownership:
 *  *out is the caller's; free it with ig__tablet_log_stop. Errors: IG_EINVAL,
 *  IG_ENOMEM, ig_log_open's errors, the runtime's spawn errors. */
int ig__tablet_log_start(ig_system_t *sys, const ig__tablet_log_config_t *cfg,
			 ig__tablet_log_t **out);

/** Submits one commit. The block (block_len bytes, a block ig_packed_open
 *  accepts) is copied, so the caller keeps its buffer. If the queue holds
 *  max_bytes or would pass it with this block, waits up to timeout for room
 *  (IG_FOREVER: as long as it takes; 0: not at all). A block larger than
 *  max_bytes on its own is admitted once the queue is empty. Once admitted,
 *  reply_to gets exactly one IG__TL_MSG_ACK carrying cookie (unless
 *  reply_to is gone). Returns 0, IG_EAGAIN (no room within timeout),
 *  IG_EINVAL, IG_ENOMEM, or ig_tell_ptr's error (the actor is gone). Any
 *  thread; from a behavior use timeout 0. */
int ig__tablet_log_submit(ig__tablet_log_t *tl, uint64_t table_id, uint64_t tablet_id,
			  const void *block, uint32_t block_len, ig_ref_t reply_to,
			  uint64_t cookie, ig_duration_t timeout);

/** Submits one commit whose txn the caller assigned (ig_seq_apply on this
 *  log's sequencer). Commits must be submitted in txn order (the store
 *  holds its write lock across assignment and submit); nobody is acked:
 *  callers wait with ig_seq_sync. Otherwise as ig__tablet_log_submit.
 *  Returns 0, IG_EAGAIN, IG_EINVAL, IG_ENOMEM, ig_tell_ptr's error. */
int ig__tablet_log_submit_txn(ig__tablet_log_t *tl, uint64_t txn, uint64_t table_id,
			      const void *block, uint32_t block_len, ig_duration_t timeout);

/** Asks the actor to delete the log segments all of whose txns are below
 *  txn (ig_log_delete_below), after the commits already queued. The store's
 *  Gc calls it once every tablet's durable config replays from txn or
 *  later. Returns 0 or ig_tell's error. */
int ig__tablet_log_trim(ig__tablet_log_t *tl, uint64_t txn);

/** Waits until the TabletLog has handled every message sent to it before
 *  this call (a trim, for one); returns 0, or IG_ESTOPPED if it is gone. */
int ig__tablet_log_barrier(ig__tablet_log_t *tl);

/** The sequencer (for ig_seq_sync and ig_seq_on_commit); owned by tl. */
ig_seq_t *ig__tablet_log_seq(ig__tablet_log_t *tl);

/** The actor's ref. */
ig_ref_t ig__tablet_log_ref(const ig__tablet_log_t *tl);

void ig__tablet_log_stats(const ig__tablet_log_t *tl, ig__tablet_log_stats_t *out);

/** Stops the actor after the commits already in its mailbox (they are
 *  written and acked), waits for it, closes the log and frees tl and the
 *  sequencer. No submit may run concurrently or later. Not from a behavior.
 *  Returns 0 or ig_log_close's error; IG_ETIMEDOUT if the actor did not
 *  stop within 30 s (tl is then leaked, since the actor may still use it).
 *  NULL is ignored. */
int ig__tablet_log_stop(ig__tablet_log_t *tl);

#endif
