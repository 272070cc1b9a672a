/* Internal to actors/: the embedded store (<ingot/store.h>) and the actors
 * that run it.
 *
 * Data path. ig_store_apply validates a packed block, then under the
 * store's write lock (wmu) assigns its txn (ig_seq_apply: conflicts),
 * inserts its cells into the tablets' memory fragments and queues it on the
 * TabletLog, so txn order, insert order and log order are one order. It
 * then publishes the store's applied txn. Scanners read at the applied txn
 * after waiting for it to be durable, so they never see what a crash could
 * take back.
 *
 * Files under the store directory:
 *   root          META's tablet config (storage/config.c, replaced atomically)
 *   log/          the write-ahead log (one log for every table)
 *   frags/        fragment files "<file number>.igf" (16 hex digits)
 * META is table 0, one tablet, one group. Its rows:
 *   "n"                          the next table id (8 bytes, big endian)
 *   "s" table_id(8 BE)           name length (1), name, schema record
 *   "t" table_id(8 BE) first_row a tablet config (storage/config.c)
 * A tablet config's replay_txn is the txn below which every cell of the
 * tablet is in its fragment files; recovery replays the log above it.
 *
 * Locks, outermost first: wmu (write order, table DDL, split and join,
 * config capture), then a table's range map and tablets' own writer
 * mutexes (storage/), then fs_mu (in-flight fragment files vs Gc), then
 * tmu (the table registry). Throttling waits happen before wmu is taken,
 * so the Serializer and ConfigWriter, which take wmu briefly, always make
 * progress.
 */
#ifndef INGOT_ACTORS_STORE_INT_H
#define INGOT_ACTORS_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ingot/store.h>

#include "compact_int.h"
#include "config_int.h"
#include "range_map_int.h"
#include "scan_int.h"
#include "tablet_log_int.h"

#define IG__META_TABLE 0u
#define IG__STORE_ROOT "root"
#define IG__STORE_LOG "log"
#define IG__STORE_FRAGS "frags"

/* ---- tables ------------------------------------------------------------ */

/** The configs of one table as last made durable in META: what recovery
 *  would load, so what Gc must keep. */
typedef struct ig__durable {
	char **names;               /* fragment file names (sorted, unique) */
	size_t nnames;
	uint8_t **keys;             /* META rows of its tablet configs */
	uint32_t *key_lens;
	size_t nkeys;
	uint64_t min_replay;        /* lowest replay_txn among them */
} ig__durable_t;

/** A table of the store; ig_table_t is a reference to it. */
struct ig_table {
	atomic_uint refs;
	ig_store_t *store;
	uint64_t id;
	char name[IG_TABLE_NAME_MAX + 1];
	ig_schema_t *schema;        /* replaced by alter under wmu; read under wmu */
	ig__range_map_t *map;
	atomic_bool dropped;
	atomic_bool dirty;          /* configs changed since the last META write */
	ig__durable_t durable;      /* under the ConfigWriter (one thread) and fs_mu */
};

/* ---- the store --------------------------------------------------------- */

/** (txn, log bytes submitted up to and including it): where the log stood,
 *  to price the log a tablet pins. A ring, sampled once per commit. */
typedef struct ig__logpos {
	uint64_t txn;
	uint64_t bytes;
} ig__logpos_t;

#define IG__LOGPOS_RING 65536u

struct ig_store {
	char *dir, *log_dir, *frag_dir;
	ig_store_options_t o;
	ig_system_t *sys;
	bool own_sys;
	ig_dispatcher_t *io;        /* Serializer, Compactor, ConfigWriter, Gc */
	ig__tablet_log_t *tl;
	ig_seq_t *seq;

	pthread_mutex_t wmu;
	_Atomic uint64_t applied;   /* every txn <= it is in the tablets */

	pthread_mutex_t tmu;        /* tables[] */
	ig_table_t *meta;           /* table 0 (also tables[0]) */
	ig_table_t **tables;        /* live tables, META first */
	size_t ntables, cap;
	uint64_t next_table_id;     /* under wmu */
	uint64_t conflict_mark;     /* under wmu: the next conflict horizon */
	bool tracking;              /* under wmu: rows are remembered for conflicts */
	int64_t meta_ts;            /* last META cell timestamp, under wmu */

	pthread_mutex_t fs_mu;      /* inflight[] and the durable sets */
	uint64_t *inflight;         /* fragment file numbers being written */
	size_t ninflight, inflight_cap;
	_Atomic uint64_t next_file;
	char **root_names;          /* META's files named by the root file */
	size_t nroot_names;
	bool root_names_bad;        /* some name could not be copied */
	uint64_t root_replay;       /* META's replay txn in the root file */
	uint64_t root_gen;

	/* log accounting */
	pthread_mutex_t pos_mu;     /* logpos */
	ig__logpos_t *logpos;
	uint64_t logpos_n;          /* samples ever written */
	_Atomic uint64_t log_bytes; /* submitted, all time */
	_Atomic uint64_t log_kick_mark; /* log_bytes when the Serializer last looked */
	_Atomic uint64_t replay_floor; /* log_bytes at the txn recovery replays from */
	uint64_t replay_seg, replay_off; /* recovery: the first record replayed */

	/* memory accounting: exact at the last recount, plus inserts since */
	_Atomic uint64_t mem_counted, mem_added;
	_Atomic uint64_t debt;      /* compaction debt at the last recount */

	/* throttling */
	pthread_mutex_t thr_mu;
	pthread_cond_t thr_cv;      /* signalled when memory or debt drop */

	/* actors (their props are borrowed for their lives) */
	ig_ref_t serializer, compactor, config_writer, gc;
	ig_props_t ser_props, cmp_props, cw_props, gc_props;
	pthread_mutex_t cw_mu;      /* one config write at a time */
	atomic_bool kicked;         /* a KICK is on its way to the Serializer */
	atomic_bool closing;

	/* counters for ig_store_stats */
	_Atomic uint64_t flushes, compactions, splits, joins;
	_Atomic uint64_t bytes_flushed, bytes_compacted;
	_Atomic uint64_t files_deleted, throttled_ns;
	uint64_t recovered_txns, recovery_ns;
	_Atomic int bg_error;       /* first background failure (sticks) */
	char bg_why[256];
};

/* ---- store.c ------------------------------------------------------------ */

/** Registers the calling thread with liburcu once (scans need it); a
 *  thread-exit destructor unregisters it. */
void ig__store_rcu_thread(void);

/** Writes a reason (printf style) into why if not NULL; returns rc. */
int ig__say(char *why, size_t why_len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/** Records the first background failure (the Serializer's, the
 *  Compactor's, ...) so stats and the next apply can report it. */
void ig__store_bg_fail(ig_store_t *s, int rc, const char *why);


/* ---- store_table.c ------------------------------------------------------ */

/** Table references. */
ig_table_t *ig__table_ref(ig_table_t *t);
void ig__table_unref(ig_table_t *t);

/** Builds a table object (no META write). Ownership: one reference.
 *  Returns 0, IG_ENOMEM. */
int ig__table_new(ig_store_t *s, uint64_t id, const char *name, ig_schema_t *schema,
		  ig_table_t **out);

/** Adds t to the registry (taking a reference). */
int ig__store_add_table(ig_store_t *s, ig_table_t *t);

/** A snapshot of the registry: *out is malloc'd, each entry referenced
 *  (ig__tables_release). META is included when with_meta. */
int ig__store_tables(ig_store_t *s, bool with_meta, ig_table_t ***out, size_t *n);
void ig__tables_release(ig_table_t **v, size_t n);

/* ---- store_meta.c ------------------------------------------------------- */

/** META row keys. buf must hold 9 + row_len bytes; returns the length. */
uint32_t ig__meta_schema_key(uint64_t table_id, uint8_t *buf);
uint32_t ig__meta_tablet_key(uint64_t table_id, const void *row, uint32_t row_len,
			     uint8_t *buf);

/** The schema for META itself. */
int ig__meta_schema(ig_schema_t **out);

/** Captures tablet t's config (its range, disk links with their clips,
 *  replay txn). Caller holds wmu so no insert is half done.
 *  Ownership: *out is built by hand: free it with ig__tconf_free
 *  (storage/config_int.h), like a decoded one.
 *  Returns 0, IG_ENOMEM. */
int ig__tconf_capture(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, ig__tconf_t **out);

/** Loads a tablet from a decoded config: opens its fragment files (in
 *  frag_dir) and builds a tablet whose chains hold them with their clips
 *  and txn ranges. Returns 0, IG_ENOMEM, a fragment's open error (why
 *  names the file). */
int ig__tablet_from_conf(ig_store_t *s, const ig__tconf_t *c, size_t ngroups,
			 ig__tablet_t **out, char *why, size_t why_len);

/** Frees a durable set's names and keys and empties it. */
void ig__durable_clear(ig__durable_t *d);
/** Records a durable tablet config (its META row key, files and replay
 *  txn) in d. Returns 0 or IG_ENOMEM. */
int ig__durable_note(ig__durable_t *d, const uint8_t *key, uint32_t key_len,
		     const ig__tconf_t *c);

/** Applies a META mutation of cells[0..n) under the caller's wmu and
 *  returns its txn (not yet durable). */
int ig__meta_apply_locked(ig_store_t *s, const ig_cell_t *cells, size_t n, uint64_t *txn);

/** The next META timestamp (strictly increasing), under wmu. */
int64_t ig__meta_ts(ig_store_t *s);

/* ---- store_write.c ------------------------------------------------------ */

/** Applies an opened, schema-checked block of table tbl under wmu (held
 *  by the caller): conflict check, txn, tablet inserts, log submit,
 *  applied txn. Returns 0 with *txn, IG_ECONFLICT, IG_ENOMEM, the log's
 *  error. */
int ig__apply_locked(ig_store_t *s, ig_table_t *tbl, const ig_packed_t *p, const void *block,
		     size_t len, uint64_t commit_max_txn, uint64_t *txn);

/** Inserts cells of txn into tbl's tablets, routed by row and group
 *  (the caller holds wmu, or is recovery). With replay, tablets whose
 *  applied txn (their config's replay txn) is at or past txn skip them and
 *  applied txns are left alone. *mem grows by the memory estimate.
 *  Returns 0, IG_EINVAL (a family outside the schema), IG_ENOMEM. */
int ig__insert_cells(ig_table_t *tbl, const ig_cell_t *cells, size_t n, uint64_t txn,
		     bool replay, uint64_t *mem);

/** The cells of an opened block (views into it). Ownership: *out is
 *  malloc'd. */
int ig__block_cells(const ig_packed_t *p, ig_cell_t **out);

/** The log bytes submitted up to txn (an estimate from the ring: never
 *  above the truth). */
uint64_t ig__log_bytes_at(ig_store_t *s, uint64_t txn);
/** Bytes of log recovery would replay, by the last published floor. */
uint64_t ig__log_replayable(ig_store_t *s);

/** Wakes writers waiting in the throttle (memory or debt went down). */
void ig__throttle_wake(ig_store_t *s);

/* ---- store_tablet.c: work on one tablet -------------------------------- */

/** Sizes of a tablet now. */
typedef struct ig__tablet_size {
	uint64_t mem_bytes;         /* memory fragments (arena bytes) */
	uint64_t disk_bytes;        /* disk links, within their clips */
	uint64_t disk_cells;
	uint64_t fragments;         /* disk links */
	uint64_t replay_txn;        /* what its config would say now */
	uint64_t debt;              /* compaction debt of its chains, bytes */
} ig__tablet_size_t;

void ig__tablet_size(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, ig__tablet_size_t *out);

/** Writes every memory fragment of tablet t to disk, oldest first (sealing
 *  the active ones first), and swaps the files in. The caller then marks
 *  the table dirty for the ConfigWriter. Returns 0 (also when there was
 *  nothing), or an I/O error (why names the file). */
int ig__tablet_flush(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, char *why,
		     size_t why_len);

/** Compacts the chains of t: with full, each group's whole disk chain
 *  into one fragment (purge policies applied); otherwise the size-tiered
 *  policy's pick per group, if any. *did counts merges done. */
int ig__tablet_compact(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, bool full,
		       size_t *did, char *why, size_t why_len);

/** Splits t at its median row if it is past split_bytes, or joins it with
 *  its right neighbour if both are under join_bytes. Takes wmu. *changed
 *  says whether it did either. */
int ig__tablet_rebalance(ig_store_t *s, ig_table_t *tbl, ig__tablet_t *t, bool *changed);

/** A new fragment path (frag_dir/<n>.igf) registered as in flight so Gc
 *  leaves it alone until ig__frag_landed. */
uint64_t ig__frag_reserve(ig_store_t *s, char *path, size_t path_len);
void ig__frag_landed(ig_store_t *s, uint64_t num);
void ig__frag_file_name(uint64_t num, char *buf, size_t len);
bool ig__frag_file_parse(const char *name, uint64_t *num);

/* ---- store_recover.c ---------------------------------------------------- */

/** Recovers the store in s->dir (root, META, tables, log replay) or
 *  creates a new one. Runs before the actors start; the TabletLog is open
 *  (its torn tail already cut) but idle. */
int ig__store_recover(ig_store_t *s, char *why, size_t why_len);

/* ---- the actors ---------------------------------------------------------- */

/* Message types. */
#define IG__ST_MSG_KICK 0x53540001u      /* Serializer: look at memory and log */
#define IG__ST_MSG_FLUSH 0x53540002u     /* Serializer: flush (ig__st_req_t) */
#define IG__ST_MSG_COMPACT 0x53540003u   /* Compactor: compact (ig__st_req_t) */
#define IG__ST_MSG_DIRTY 0x53540004u     /* ConfigWriter: write dirty configs */
#define IG__ST_MSG_BARRIER 0x53540005u   /* any: signal when reached (ig__done_t *) */
#define IG__ST_MSG_COLLECT 0x53540006u   /* Gc: collect files and log */
#define IG__ST_MSG_TICK 0x53540007u      /* Compactor, Serializer: periodic look */

/** A request someone waits for (flush, compact, a config write, a
 *  barrier): sent by pointer with a destructor that signals done, so the
 *  waiter wakes when the receiver has handled it or when a stopped actor
 *  drops it, never neither. The receiver sets done.rc. */
typedef struct ig__st_req {
	ig_table_t *table;          /* NULL: every table (borrowed) */
	bool full;
	ig__done_t done;
} ig__st_req_t;

int ig__serializer_spawn(ig_store_t *s);
int ig__compactor_spawn(ig_store_t *s);
int ig__config_writer_spawn(ig_store_t *s);
int ig__gc_spawn(ig_store_t *s);

/** Sends a request to an actor and waits until it was handled; returns
 *  the handler's result (IG_ESTOPPED if the actor was gone). */
int ig__store_request(ig_ref_t to, uint32_t type, ig_table_t *t, bool full);

/** Waits until every message already sent to actor `to` was handled. */
int ig__store_barrier(ig_ref_t to);

/** ConfigWriter's work, also run directly by recovery and close: writes
 *  the configs of every dirty table (and META's root when its files
 *  changed) and waits until durable. */
int ig__config_write_dirty(ig_store_t *s, char *why, size_t why_len);
/** Records the root file's META config c (at generation) as the one on
 *  disk: its files for Gc, its replay txn for log trimming. */
void ig__store_set_root(ig_store_t *s, const ig__tconf_t *c, uint64_t generation);

/** Gc's work: deletes fragment files no durable config, tablet or
 *  in-flight write uses, and trims the log below every durable replay txn. */
void ig__gc_collect(ig_store_t *s);

/** The lowest replay txn among every durable config (META's root
 *  included): the log below it is no longer needed. */
uint64_t ig__durable_min_replay(ig_store_t *s);

/** Tells the Serializer to look, at most once until it has looked. */
void ig__serializer_kick(ig_store_t *s);

#endif
