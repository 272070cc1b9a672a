/* bench/store: the small interface every engine under test implements
 * (engine_ingot.c, engine_rocksdb.c), the settings they all get, and the
 * machine-limit probes (machine.c). The driver (bench_store.c) only talks
 * to engines through bench_engine_t, so both run the same phases with the
 * same keys, values, batches and threads.
 *
 * Errors: every engine function returns 0 (get: 1 found, 0 absent) or -1
 * and writes a NUL-terminated reason into *err. All functions may be called
 * from any thread on an open engine, except open and close.
 */
#ifndef BENCH_STORE_ENGINE_H
#define BENCH_STORE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Settings both engines get, mapped to each one's own knobs (the engines'
 * describe() prints the mapping). */
typedef struct bench_settings {
	int zstd_level;         /* zstd compression level of data blocks */
	uint32_t block_size;    /* bytes of raw data per block */
	int bloom_bits;         /* bloom filter bits per key */
	uint64_t memory_budget; /* write memory: memtable / memory fragments */
	uint64_t cache_bytes;   /* block cache (0: none, the OS page cache only) */
	unsigned bg_threads;    /* flush and compaction threads */
} bench_settings_t;

/* A reason for a failure, filled by the engine. */
typedef struct bench_err {
	char msg[512];
} bench_err_t;

/* One key and its value; bytes borrowed for the call. */
typedef struct bench_kv {
	const void *key;
	const void *value;
	uint32_t key_len;
	uint32_t value_len;
} bench_kv_t;

/* Called by scan for every key in ascending key order; bytes valid for the
 * call only. Returns 0 to go on, anything else to stop the scan with it. */
typedef int (*bench_scan_fn)(void *arg, const void *key, size_t key_len, const void *value,
			     size_t value_len);

typedef struct bench_engine {
	const char *name;
	/* Opens (creating if needed) the engine's database in dir. */
	int (*open)(const char *dir, const bench_settings_t *s, void **out, bench_err_t *err);
	/* Closes it; every write already returned stays durable. */
	int (*close)(void *e, bench_err_t *err);
	/* Writes kv[0..n) as one atomic commit; with sync, returns once it is
	 * durable (log written and fdatasynced). */
	int (*write)(void *e, const bench_kv_t *kv, size_t n, bool sync, bench_err_t *err);
	/* Point read: copies the value into buf (at most cap bytes) and its
	 * full length into *value_len. Returns 1 found, 0 absent, -1 error. */
	int (*get)(void *e, const void *key, size_t key_len, void *buf, size_t cap,
		   size_t *value_len, bench_err_t *err);
	/* Reads every key in order. */
	int (*scan)(void *e, bench_scan_fn fn, void *arg, bench_err_t *err);
	/* Writes the memory part to disk, then waits until background
	 * compaction has nothing left to do (or timeout_s passes: -1). */
	int (*settle)(void *e, double timeout_s, bench_err_t *err);
	/* Merges everything into the fewest files the engine can (a full
	 * manual compaction); returns when done. */
	int (*compact)(void *e, bench_err_t *err);
	/* One line on the engine's shape now (files, levels, fragments...). */
	void (*info)(void *e, char *buf, size_t len);
	/* One line saying how the settings map to the engine's options. */
	void (*describe)(const bench_settings_t *s, char *buf, size_t len);
} bench_engine_t;

extern const bench_engine_t bench_engine_rocksdb;
#ifdef BENCH_HAVE_INGOT
extern const bench_engine_t bench_engine_ingot;
#endif

/* Formats a reason into err (printf-style) and returns -1. */
int bench_fail(bench_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- machine limits (machine.c) ----------------------------------------- */

typedef struct bench_machine {
	double fdatasync_us_p50;   /* a 4 KiB append then fdatasync: median */
	double fdatasync_us_p99;
	double fdatasync_prealloc_us;  /* the same into fallocated space: median */
	double fdatasync_overwrite_us; /* the same over written blocks: median (the floor) */
	double seq_write_mbps;     /* large sequential writes, durable (MB/s = 1e6 B/s) */
	bool seq_write_direct;     /* measured with O_DIRECT (else write + fdatasync) */
	double rand_read_us_p50;   /* 4 KiB O_DIRECT random read: median (0: not measured) */
} bench_machine_t;

/* Measures the limits in dir (a scratch file, removed after). syncs: number
 * of fdatasync samples of each kind; seq_bytes: bytes written for the bandwidth. Returns
 * 0 or -1 with err. */
int bench_machine_measure(const char *dir, unsigned syncs, uint64_t seq_bytes, bench_machine_t *out,
			  bench_err_t *err);

#endif
