/* Internal to storage/: the write-ahead log. The writer (log.c) appends
 * batches of records to segment files, one write and one fdatasync per
 * batch (group commit); the reader (log_read.c) validates and replays them.
 * Format: docs/formats.md, "Write-ahead log".
 *
 * The log is synchronous and single-writer: one thread (the TabletLog actor)
 * owns an ig_log_t. Replay and listing may run from any thread, but not on a
 * directory a writer is appending to (they would see its unsynced tail).
 */
#ifndef INGOT_STORAGE_LOG_INT_H
#define INGOT_STORAGE_LOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/error.h>
#include <ingot/storage.h>

/* ---- format (docs/formats.md, "Write-ahead log") ----------------------- */

#define IG__LOG_MAGIC 0x49474c52u  /* "IGLR": ingot log record */
#define IG__LOG_VERSION 1

/* Record header fields (offsets from the record's first byte). */
#define IG__LOG_H_MAGIC 0      /* 4: IG__LOG_MAGIC */
#define IG__LOG_H_VERSION 4    /* 1: IG__LOG_VERSION */
#define IG__LOG_H_FLAGS 5      /* 1: zero */
#define IG__LOG_H_RESERVED 6   /* 2: zero */
#define IG__LOG_H_LENGTH 8     /* 4: record length, header to trailer */
#define IG__LOG_H_COUNT 12     /* 4: entries in the payload */
#define IG__LOG_H_FIRST 16     /* 8: first txn */
#define IG__LOG_H_LAST 24      /* 8: last txn */
#define IG__LOG_H_BATCH 32     /* 8: segment offset where this record's write began */
#define IG__LOG_H_HCRC 40      /* 4: CRC32C of bytes [0, 40) */
#define IG__LOG_HEADER 44u
#define IG__LOG_TRAILER 4u     /* CRC32C of [0, L - 4) */
#define IG__LOG_OVERHEAD (IG__LOG_HEADER + IG__LOG_TRAILER)

/* Entry fields (offsets from the entry's first byte), then the block. */
#define IG__LOG_E_TABLE 0      /* 8: table id */
#define IG__LOG_E_TABLET 8     /* 8: tablet id */
#define IG__LOG_E_LENGTH 16    /* 4: block length */
#define IG__LOG_ENTRY 20u

/* A record is at most 1 GiB: far above any batch the TabletLog gathers,
 * and small enough that a damaged length field cannot ask a reader for an
 * absurd buffer. */
#define IG_LOG_RECORD_MAX (1u << 30)

/* Segment file names: "log-" + 16 lowercase hex digits of the first txn +
 * ".igl", 24 characters. */
#define IG_LOG_NAME_LEN 24u

/* Txn 0 means "none": the first txn the log accepts is 1. */
#define IG_TXN_NONE 0u

/* ---- records as the writer takes them --------------------------------- */

/** One packed cell block tagged with the table and tablet it mutates. The
 *  block is borrowed for the call; it must be a block ig_packed_open
 *  accepts (the write path has validated it already; replay checks it
 *  again). */
typedef struct ig_log_entry {
	uint64_t table_id;
	uint64_t tablet_id;
	const void *block;
	uint32_t block_len;
} ig_log_entry_t;

/** One commit (or a run of commits) for the log: txns first..last
 *  (first <= last) and its blocks. */
typedef struct ig_log_rec {
	uint64_t first_txn;
	uint64_t last_txn;
	const ig_log_entry_t *entries;
	uint32_t nentries;
} ig_log_rec_t;

/* ---- records as the reader gives them --------------------------------- */

/** A validated record, a view into the reader's buffer, valid only during
 *  the callback that receives it. */
typedef struct ig_log_record {
	uint64_t first_txn;
	uint64_t last_txn;
	uint64_t offset;           /* of the record in its segment */
	uint32_t len;              /* record bytes, header to trailer */
	uint32_t nentries;
	const uint8_t *payload;    /* the entries */
	uint32_t payload_len;
	const char *file;          /* segment file name, or "<buffer>" */
} ig_log_record_t;

/** One entry of a validated record; block is opened (cells readable). */
typedef struct ig_log_item {
	uint64_t table_id;
	uint64_t tablet_id;
	ig_packed_t block;
} ig_log_item_t;

/** Iterates the entries of a record the reader validated: start with
 *  *pos = 0; returns 1 and fills *out for each entry, 0 after the last. */
int ig_log_record_next(const ig_log_record_t *r, size_t *pos, ig_log_item_t *out);

/** Called for each record in txn order. Return 0 to go on; any other
 *  value stops the replay, which returns it. */
typedef int (*ig_log_cb)(void *arg, const ig_log_record_t *rec);

/** Where and why a log was refused: IG_ECORRUPT names the file and the
 *  byte offset of the bad record; a system error names the file. */
typedef struct ig_log_error {
	char file[64];             /* segment file name (not the directory) */
	uint64_t offset;           /* byte offset in that file */
	char msg[320];             /* "<dir>/<file>: offset N: reason" */
} ig_log_error_t;

/** What a scan found. */
typedef struct ig_log_scan {
	uint64_t records;          /* records delivered */
	uint64_t last_txn;         /* last txn delivered, or the one passed in */
	uint64_t valid_end;        /* bytes of valid records (in the last segment
				    * scanned); the writer truncates the file here */
	uint64_t torn_bytes;       /* bytes after valid_end dropped as a torn tail */
} ig_log_scan_t;

/** Validates buf[0..len) as one segment and calls cb for each record.
 *  The input is untrusted: any bytes are safe and nothing is read outside
 *  them. seg_txn is the txn the segment is named by (its first record must
 *  start there), or IG_TXN_NONE to skip that check. *prev_txn is the last
 *  txn before this segment (IG_TXN_NONE at the start); records must go on
 *  strictly above it, and it is updated as records are delivered.
 *  last_segment says whether damage at the end may be a torn tail (stop
 *  cleanly: out->valid_end says where, out->torn_bytes how much was
 *  dropped) rather than corruption. Records with last_txn < from_txn are
 *  checked but not delivered.
 *
 *  Returns 0 and fills *out; IG_ECORRUPT with *err naming file and offset
 *  (file is used only for messages); or the callback's non-zero value.
 *  Records before a refusal have already been delivered: a caller that
 *  gets an error must discard what it applied. */
int ig_log_scan_buf(const void *buf, size_t len, const char *file, uint64_t seg_txn,
		    bool last_segment, uint64_t from_txn, uint64_t *prev_txn, ig_log_cb cb,
		    void *arg, ig_log_scan_t *out, ig_log_error_t *err);

/** Replays a log directory: every segment in txn order (records with
 *  last_txn < from_txn are skipped, and whole segments below it are not
 *  read). Stops cleanly at a torn tail of the last segment (out says
 *  where). Returns 0 (an empty or missing directory replays nothing),
 *  IG_ECORRUPT naming file and offset, -errno (err names the file),
 *  IG_ENOMEM, or the callback's non-zero value. */
int ig_log_replay(const char *dir, uint64_t from_txn, ig_log_cb cb, void *arg,
		  ig_log_scan_t *out, ig_log_error_t *err);

/* Scans segment seg_txn of dir as ig_log_scan_buf does (read into memory;
 * messages name "<dir>/<file>"). Shared by the replay and the writer's open. */
int ig__log_scan_file(const char *dir, uint64_t seg_txn, bool last_segment, uint64_t from_txn,
		      uint64_t *prev_txn, ig_log_cb cb, void *arg, ig_log_scan_t *out,
		      ig_log_error_t *err);

/* ---- segments ---------------------------------------------------------- */

/** Writes the segment file name for first txn into buf (at least
 *  IG_LOG_NAME_LEN + 1 bytes). */
void ig_log_segment_name(uint64_t first_txn, char *buf);

/** Parses a segment file name; returns false for any other name. */
bool ig_log_segment_parse(const char *name, uint64_t *first_txn);

/** Lists the segments of dir, ascending by first txn. Ownership: *out is
 *  malloc'd (NULL when *n is 0); the caller frees it. A missing directory
 *  has no segments. Returns 0, -errno or IG_ENOMEM. */
int ig_log_list(const char *dir, uint64_t **out, size_t *n);

/* ---- the writer -------------------------------------------------------- */

/** The system calls the writer makes, for fault injection and counting. */
typedef enum ig_log_op {
	IG_LOG_OP_WRITE = 0,    /* pwrite of a batch */
	IG_LOG_OP_SYNC,         /* fdatasync of a segment */
	IG_LOG_OP_DIRSYNC,      /* fsync of the directory */
	IG_LOG_OP_CREATE,       /* creating a segment file */
	IG_LOG_OP_TRUNCATE,     /* cutting a torn tail */
	IG_LOG_OP_UNLINK,       /* deleting a segment */
	IG_LOG_OP_COUNT
} ig_log_op_t;

/** Called before each system call the writer makes; return 0 to let it
 *  run, or a negative errno to make it fail with that error as if the
 *  kernel had returned it (SQLite-style I/O error injection). */
typedef int (*ig_log_fault_fn)(void *arg, ig_log_op_t op);

typedef struct ig_log_options {
	uint64_t segment_max;      /* roll to a new segment once a segment holds
				    * this many bytes; 0 = 64 MiB */
	ig_log_fault_fn fault;     /* NULL: no injection */
	void *fault_arg;
} ig_log_options_t;

typedef struct ig_log ig_log_t;

/** Opens (creating it if needed, mode 0755) a log directory for
 *  appending. The last segment is scanned: a torn tail is cut off
 *  (ftruncate + fdatasync), and a last segment left empty is deleted (so
 *  every segment's name is its first record's txn) unless it is the only
 *  one: then it is kept, appended to, and its name - 1 is the last txn.
 *  scan (if not NULL)
 *  reports what the scan of the last segment found. Ownership: *out is the
 *  caller's; free it with ig_log_close. Returns 0, IG_EINVAL, IG_ENOMEM,
 *  -errno, or IG_ECORRUPT with *err (if not NULL) naming file and offset. */
int ig_log_open(const char *dir, const ig_log_options_t *opts, ig_log_t **out,
		ig_log_scan_t *scan, ig_log_error_t *err);

/** Closes the log (no sync: every append already synced). NULL is ignored.
 *  Returns 0 or the -errno of close(2). */
int ig_log_close(ig_log_t *log);

/** Group commit: encodes recs[0..n) as n records, writes them with one
 *  pwrite at the end of the current segment and makes them durable with
 *  one fdatasync. Before writing, rolls to a new segment (named by
 *  recs[0].first_txn; the directory is fsynced after creating it) if the
 *  current one holds segment_max bytes or more. Txns must rise strictly:
 *  recs[i].first_txn > the previous record's last_txn (across batches).
 *
 *  Returns 0 once every record is durable. IG_EINVAL for bad txns, an entry
 *  without a block, or n == 0; IG_ERANGE if a record passes
 *  IG_LOG_RECORD_MAX; IG_ENOMEM; -errno if a system call failed. After a
 *  failed write or sync the log is broken (the kernel may have dropped the
 *  dirty pages, so retrying the sync proves nothing): every later append
 *  returns IG_ESTATE; close and reopen it, and the reopen cuts whatever
 *  part of the batch reached the file as a torn tail. */
int ig_log_append(ig_log_t *log, const ig_log_rec_t *recs, size_t n);

/** Deletes every segment all of whose txns are below txn (a segment holds
 *  the txns from its name up to the next segment's name - 1; the segment
 *  being appended to is never deleted), oldest first, then fsyncs the
 *  directory. When every record is below txn and the current segment
 *  holds at least min(1 MiB, segment_max / 8), an empty segment named by
 *  the next txn is started first so the old one can go too (an empty
 *  only segment is kept by ig_log_open: its name carries the numbering).
 *  *deleted (if not NULL) gets the number of files deleted. Returns 0 or
 *  -errno (the segments deleted before the failure stay deleted). */
int ig_log_delete_below(ig_log_t *log, uint64_t txn, size_t *deleted);

/** The last txn written (IG_TXN_NONE for an empty log). */
uint64_t ig_log_last_txn(const ig_log_t *log);

/** Counters of the system calls the writer made (successful or not),
 *  indexed by ig_log_op_t; tests use them to see group commit. */
typedef struct ig_log_stats {
	uint64_t ops[IG_LOG_OP_COUNT];
	uint64_t batches;          /* successful appends */
	uint64_t records;          /* records in them */
	uint64_t bytes;            /* bytes in them */
	uint64_t segments;         /* segments in the directory */
} ig_log_stats_t;

void ig_log_stats(const ig_log_t *log, ig_log_stats_t *out);

#endif
