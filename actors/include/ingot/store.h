/* ingot store: the embedded tablet store (libingot-actors).
 *
 * A store is a data directory holding tables. Opening one recovers it
 * (the root file, META, the fragments it names, then the write-ahead log
 * from where the fragments end) and starts its actors on a runtime system:
 * TabletLog (group commit), Serializer (memory to disk), Compactor
 * (size-tiered merges), ConfigWriter (tablet configs in META, the root file)
 * and Gc (old log segments, unreferenced fragment files). docs/store.md
 * explains the model and has a complete example.
 *
 * Guarantees:
 *  - an apply that returned a txn and was synced (IG_STORE_SYNC, or a later
 *    ig_store_sync covering it) survives a crash at any moment, kill -9
 *    included; nothing half-written is ever recovered;
 *  - a scanner reads one snapshot across all the tablets of its table and
 *    sees only synced data;
 *  - writes slow down smoothly (never fail) as memory, the log queue, the
 *    log recovery would replay, or the compaction debt grow past their
 *    budgets.
 *
 * Threads: every function may be called from any thread, except that
 * ig_store_close must come last, and none of them from a behavior running
 * on the store's own system (they block). A scanner belongs to the thread
 * that uses it (one at a time).
 *
 * Errors: 0 or a negative IG_E... code (<ingot/error.h>); why (if not
 * NULL) gets a NUL-terminated reason on failure, naming the file, byte
 * offset, cell or schema group at fault.
 */
#ifndef INGOT_STORE_H
#define INGOT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/error.h>
#include <ingot/runtime.h>
#include <ingot/storage.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ig_store ig_store_t;
typedef struct ig_table ig_table_t;
typedef struct ig_scanner ig_scanner_t;

/** Store settings. Zero means the default given beside each field. */
typedef struct ig_store_options {
	ig_system_t *system;        /* NULL: the store creates (and stops) its own */
	uint64_t memory_budget;     /* bytes of memory fragments; 64 MiB. Past
				     * half of it the Serializer flushes; past it
				     * writes slow down, at twice it they wait */
	uint64_t log_budget;        /* log bytes recovery may have to replay;
				     * 256 MiB. Bounds recovery time: past half of
				     * it the Serializer flushes what pins the
				     * oldest log; past it writes slow down, and
				     * at 1.5 times it they wait */
	uint64_t log_queue_bytes;   /* queued, unsynced commit bytes; 64 MiB */
	uint64_t segment_bytes;     /* log segment size; 64 MiB */
	uint64_t split_bytes;       /* a tablet past this splits at its median row;
				     * 512 MiB; UINT64_MAX: never */
	uint64_t join_bytes;        /* neighbours both under this join; split/8 */
	unsigned io_threads;        /* threads for Serializer and Compactor; 2 */
	unsigned compact_factor;    /* size-tiered: "similar" is within this; 4 */
	unsigned compact_min_merge; /* merge at least this many fragments; 4 */
	unsigned compact_max_merge; /* and at most this many; 16 */
	uint64_t debt_soft;         /* compaction debt (bytes) where writes start
				     * to slow down; 1 GiB */
	uint64_t debt_hard;         /* debt where writes wait for the Compactor;
				     * 4 x debt_soft */
	bool manual;                /* no automatic flush, compaction, split or
				     * join (tests drive them with ig_store_flush
				     * and ig_store_compact) */
} ig_store_options_t;

/** Opens (creating if needed) the store in dir and recovers it. opts may
 *  be NULL for the defaults. Ownership: *out is the caller's; release it
 *  with ig_store_close. Errors: IG_EINVAL, IG_ENOMEM, IG_ECORRUPT (why
 *  names the file and byte offset), -errno, the runtime's errors. */
int ig_store_open(const char *dir, const ig_store_options_t *opts, ig_store_t **out,
		  char *why, size_t why_len);

/** Stops the store's actors after the work already queued (every apply
 *  already returned is synced), closes the log and frees the store. Tables
 *  and scanners must be released first. NULL is ignored. Returns 0 or the
 *  first error closing met. */
int ig_store_close(ig_store_t *s);

/* ---- tables ----------------------------------------------------------- */

#define IG_TABLE_NAME_MAX 64u   /* bytes of [A-Za-z0-9_] */

/** Creates a table. Durable when it returns. Errors: IG_EINVAL (bad name
 *  or schema; why says which group and why), IG_EEXIST, IG_ENOMEM, write
 *  errors. */
int ig_store_create_table(ig_store_t *s, const char *name, const ig_schema_config_t *schema,
			  char *why, size_t why_len);

/** Replaces a table's schema. Groups keep their names, families and
 *  order (stored cells were placed by them; adding or removing a group is
 *  refused); their settings (compression, level, block size, in-memory,
 *  max-history, max-age) may change and apply to files written from now
 *  on. Errors: IG_EINVAL (why says what), IG_ENOTFOUND, IG_ENOMEM. */
int ig_store_alter_table(ig_store_t *s, const char *name, const ig_schema_config_t *schema,
			 char *why, size_t why_len);

/** Drops a table: it disappears durably at once; Gc deletes its files.
 *  Handles still open keep working on the dropped data until released
 *  (applies to them fail with IG_ENOTFOUND). Errors: IG_ENOTFOUND. */
int ig_store_drop_table(ig_store_t *s, const char *name);

/** Looks up a table. Ownership: *out is a handle the caller releases with
 *  ig_table_release. Errors: IG_ENOTFOUND, IG_EINVAL. */
int ig_store_table(ig_store_t *s, const char *name, ig_table_t **out);
void ig_table_release(ig_table_t *t);

/** The table's schema. Ownership: one reference (ig_schema_unref). */
ig_schema_t *ig_table_schema(ig_table_t *t);

/* ---- writes ----------------------------------------------------------- */

/** ig_store_apply flags. */
#define IG_STORE_SYNC 1u   /* return only once the mutation is durable */

/** commit_max_txn for "no conflict check". */
#define IG_STORE_ANY_TXN UINT64_MAX

/** Applies one mutation: a packed cell block (<ingot/storage.h>) of sets
 *  and erasures, validated here (untrusted bytes are rejected with the
 *  offset of the damage), whose families must belong to the schema. All
 *  its cells get one txn (*out_txn, may be NULL) and become visible to
 *  scanners together once durable. If commit_max_txn is not
 *  IG_STORE_ANY_TXN and a row of the block changed after it, nothing is
 *  applied and it returns IG_ECONFLICT; so does a commit_max_txn older
 *  than the store's conflict horizon: rows are remembered from the first
 *  conditional apply after the store opened, and then for roughly the last
 *  256 Ki to 512 Ki row changes. With IG_STORE_SYNC it returns once
 *  the txn is in the log and fdatasynced; without, use ig_store_sync.
 *  Throttled, not failed, when the store is behind. Errors: IG_EINVAL (why
 *  names the cell or byte offset), IG_ECONFLICT, IG_ENOTFOUND (table
 *  dropped), IG_ENOMEM, the log's write error. */
int ig_store_apply(ig_table_t *t, const void *block, size_t len, uint64_t commit_max_txn,
		   unsigned flags, uint64_t *out_txn, char *why, size_t why_len);

/** Waits until txn (0: every txn applied so far) is durable, or the
 *  timeout (IG_FOREVER: none) passes. Errors: IG_ETIMEDOUT, the log's
 *  write error. */
int ig_store_sync(ig_store_t *s, uint64_t txn, ig_duration_t timeout);

/* ---- scans ------------------------------------------------------------ */

/** What a scanner selects. ig_scan_options_init selects everything at the
 *  latest durable snapshot. Pointers are borrowed for the open call only. */
typedef struct ig_scan_options {
	const void *row_start;           /* rows >= this (NULL, 0: from the first) */
	uint32_t row_start_len;
	const void *row_end;             /* rows < this (NULL, 0: to the last) */
	uint32_t row_end_len;
	const void *prefix;              /* rows starting with this (NULL, 0: any) */
	uint32_t prefix_len;
	const char *const *families;     /* cells of these families ... */
	size_t nfamilies;
	const char *const *columns;      /* ... or these "family:qualifier" columns
					  * (both empty: every column) */
	size_t ncolumns;
	int64_t ts_min, ts_max;          /* timestamps in [ts_min, ts_max] */
	uint32_t max_versions;           /* newest N per (row, column); 0: all */
} ig_scan_options_t;

void ig_scan_options_init(ig_scan_options_t *o);

/** Opens a scanner over t at the latest durable snapshot (waiting for at
 *  most one group commit if the newest applies are not yet synced). No
 *  lock is held between calls; writes, flushes, compactions, splits and
 *  joins go on beneath it. Ownership: ig_scanner_close. Errors: IG_EINVAL,
 *  IG_ENOMEM, a fragment's read error. */
int ig_scanner_open(ig_table_t *t, const ig_scan_options_t *o, ig_scanner_t **out);

/** Next selected cell in (row, column, newest-first) order, never an
 *  erasure. Returns 1 with *out (bytes valid until the next call), 0 at the
 *  end, or a negative error (sticky) whose text ig_scanner_error gives:
 *  a checksum failure names the file and block, never skipped. */
int ig_scanner_next(ig_scanner_t *sc, ig_cell_t *out);
const char *ig_scanner_error(const ig_scanner_t *sc);

/** The txn the scanner reads at. */
uint64_t ig_scanner_snapshot(const ig_scanner_t *sc);
void ig_scanner_close(ig_scanner_t *sc);

/* ---- maintenance ------------------------------------------------------ */

/** Writes every memory fragment of t (NULL: every table) to disk and
 *  records the new configs; returns once they are durable. */
int ig_store_flush(ig_store_t *s, ig_table_t *t);

/** Flushes, then merges every chain of t (NULL: every table) into one
 *  fragment, applying purge policies and dropping what erasures hide;
 *  returns once done and durable, and once Gc has deleted the files and
 *  log segments this freed. */
int ig_store_compact(ig_store_t *s, ig_table_t *t);

typedef struct ig_store_stats {
	uint64_t applied_txn;       /* last txn applied */
	uint64_t durable_txn;       /* last txn synced */
	uint64_t tables, tablets;
	uint64_t memory_bytes;      /* memory fragments */
	uint64_t disk_bytes;        /* fragment files the tablets use */
	uint64_t disk_cells;
	uint64_t fragments;         /* disk fragments in all chains */
	uint64_t log_bytes;         /* log recovery would replay now */
	uint64_t log_segments;
	uint64_t compaction_debt;   /* bytes the Compactor would still rewrite */
	uint64_t flushes, compactions, splits, joins;
	uint64_t bytes_flushed, bytes_compacted;  /* written by each */
	uint64_t files_deleted, segments_deleted; /* by Gc */
	uint64_t log_batches, log_fsyncs, log_commits;
	uint64_t throttled_ns;      /* time writers spent slowed down */
	uint64_t recovered_txns;    /* txns replayed when the store opened */
	uint64_t recovery_ns;       /* time the open took to recover */
} ig_store_stats_t;

void ig_store_stats(ig_store_t *s, ig_store_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif
