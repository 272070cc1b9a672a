/* bench/store: RocksDB (Debian librocksdb-dev, its C API rocksdb/c.h)
 * behind the engine interface of engine.h.
 *
 * Settings: write_buffer_size = memory budget (two buffers at most, the
 * default, as ingot slows writers past its budget and stops them at twice
 * it), block-based tables with block_size, a full bloom filter of
 * bloom_bits, zstd at zstd_level on every level, max_background_jobs =
 * bg_threads, a block cache of cache_bytes (none at 0: reads go through
 * the OS page cache, as ingot's do), the WAL on; a synced write sets
 * WriteOptions.sync. Everything else is RocksDB's default (leveled
 * compaction). */
#include "engine.h"

#include <rocksdb/c.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BENCH_ROCKSDB_VERSION
#define BENCH_ROCKSDB_VERSION "(version unknown)"
#endif

typedef struct rdb {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_block_based_table_options_t *bbto;
	rocksdb_cache_t *cache;
	rocksdb_writeoptions_t *wo_sync, *wo_nosync;
	rocksdb_readoptions_t *ro;
} rdb_t;

/* Takes RocksDB's malloc'd error string into err and frees it. */
static int rdb_fail(bench_err_t *err, const char *what, char *e)
{
	bench_fail(err, "rocksdb %s: %s", what, e ? e : "failed");
	free(e);
	return -1;
}

static void rdb_free(rdb_t *r)
{
	if (r->db)
		rocksdb_close(r->db);
	if (r->wo_sync)
		rocksdb_writeoptions_destroy(r->wo_sync);
	if (r->wo_nosync)
		rocksdb_writeoptions_destroy(r->wo_nosync);
	if (r->ro)
		rocksdb_readoptions_destroy(r->ro);
	if (r->opts)
		rocksdb_options_destroy(r->opts);
	if (r->bbto)
		rocksdb_block_based_options_destroy(r->bbto);
	if (r->cache)
		rocksdb_cache_destroy(r->cache);
	free(r);
}

static int rdb_open(const char *dir, const bench_settings_t *s, void **out, bench_err_t *err)
{
	rdb_t *r = calloc(1, sizeof *r);
	if (!r)
		return bench_fail(err, "out of memory");
	r->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(r->opts, 1);
	rocksdb_options_set_write_buffer_size(r->opts, (size_t)s->memory_budget);
	rocksdb_options_set_max_write_buffer_number(r->opts, 2);
	rocksdb_options_set_max_background_jobs(r->opts, (int)s->bg_threads);
	rocksdb_options_set_compression(r->opts, rocksdb_zstd_compression);
	/* window bits (RocksDB's default), level, strategy, no dictionary */
	rocksdb_options_set_compression_options(r->opts, -14, s->zstd_level, 0, 0);

	r->bbto = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_size(r->bbto, s->block_size);
	rocksdb_block_based_options_set_filter_policy(
		r->bbto, rocksdb_filterpolicy_create_bloom_full((double)s->bloom_bits));
	if (s->cache_bytes) {
		r->cache = rocksdb_cache_create_lru((size_t)s->cache_bytes);
		rocksdb_block_based_options_set_block_cache(r->bbto, r->cache);
	} else {
		rocksdb_block_based_options_set_no_block_cache(r->bbto, 1);
	}
	rocksdb_options_set_block_based_table_factory(r->opts, r->bbto);

	r->wo_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(r->wo_sync, 1);
	r->wo_nosync = rocksdb_writeoptions_create();
	r->ro = rocksdb_readoptions_create();

	char *e = NULL;
	r->db = rocksdb_open(r->opts, dir, &e);
	if (!r->db) {
		rdb_fail(err, "open", e);
		rdb_free(r);
		return -1;
	}
	*out = r;
	return 0;
}

static int rdb_close(void *e, bench_err_t *err)
{
	(void)err;
	rdb_free(e);
	return 0;
}

/* One WriteBatch per call, so a synced call is one WAL sync for all of it
 * (and concurrent writers are grouped by RocksDB's own group commit). */
static int rdb_write(void *e, const bench_kv_t *kv, size_t n, bool sync, bench_err_t *err)
{
	rdb_t *r = e;
	char *msg = NULL;
	if (n == 1) {
		rocksdb_put(r->db, sync ? r->wo_sync : r->wo_nosync, kv->key, kv->key_len,
			    kv->value, kv->value_len, &msg);
		return msg ? rdb_fail(err, "put", msg) : 0;
	}
	rocksdb_writebatch_t *b = rocksdb_writebatch_create();
	for (size_t i = 0; i < n; i++)
		rocksdb_writebatch_put(b, kv[i].key, kv[i].key_len, kv[i].value, kv[i].value_len);
	rocksdb_write(r->db, sync ? r->wo_sync : r->wo_nosync, b, &msg);
	rocksdb_writebatch_destroy(b);
	return msg ? rdb_fail(err, "write", msg) : 0;
}

static int rdb_get(void *e, const void *key, size_t key_len, void *buf, size_t cap,
		   size_t *value_len, bench_err_t *err)
{
	rdb_t *r = e;
	char *msg = NULL;
	rocksdb_pinnableslice_t *p = rocksdb_get_pinned(r->db, r->ro, key, key_len, &msg);
	if (msg)
		return rdb_fail(err, "get", msg);
	if (!p)
		return 0;
	size_t len;
	const char *v = rocksdb_pinnableslice_value(p, &len);
	if (!v) {
		rocksdb_pinnableslice_destroy(p);
		return 0;
	}
	memcpy(buf, v, len < cap ? len : cap);
	*value_len = len;
	rocksdb_pinnableslice_destroy(p);
	return 1;
}

static int rdb_scan(void *e, bench_scan_fn fn, void *arg, bench_err_t *err)
{
	rdb_t *r = e;
	rocksdb_iterator_t *it = rocksdb_create_iterator(r->db, r->ro);
	int rc = 0;
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *v = rocksdb_iter_value(it, &vl);
		if ((rc = fn(arg, k, kl, v, vl)) != 0)
			break;
	}
	char *msg = NULL;
	rocksdb_iter_get_error(it, &msg);
	rocksdb_iter_destroy(it);
	if (msg)
		return rdb_fail(err, "iterator", msg);
	return rc ? bench_fail(err, "scan stopped by its callback (%d)", rc) : 0;
}

static uint64_t rdb_prop(rdb_t *r, const char *name)
{
	uint64_t v = 0;
	if (rocksdb_property_int(r->db, name, &v) != 0)
		return 0;
	return v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Flushes the memtable, then waits until no flush or compaction runs or is
 * pending, seen twice 100 ms apart. */
static int rdb_settle(void *e, double timeout_s, bench_err_t *err)
{
	rdb_t *r = e;
	char *msg = NULL;
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush(r->db, fo, &msg);
	rocksdb_flushoptions_destroy(fo);
	if (msg)
		return rdb_fail(err, "flush", msg);
	double t0 = mono_s();
	int quiet = 0;
	while (quiet < 2) {
		bool busy = rdb_prop(r, "rocksdb.num-running-compactions") ||
			    rdb_prop(r, "rocksdb.num-running-flushes") ||
			    rdb_prop(r, "rocksdb.compaction-pending") ||
			    rdb_prop(r, "rocksdb.mem-table-flush-pending");
		quiet = busy ? 0 : quiet + 1;
		if (quiet < 2) {
			if (mono_s() - t0 > timeout_s)
				return bench_fail(err, "rocksdb: compaction still busy after %.0f s",
						  timeout_s);
			sleep_ms(100);
		}
	}
	return 0;
}

/* CompactRange over everything, rewriting the bottommost level too. */
static int rdb_compact(void *e, bench_err_t *err)
{
	rdb_t *r = e;
	rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
	rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
	rocksdb_compact_range_opt(r->db, co, NULL, 0, NULL, 0);
	rocksdb_compactoptions_destroy(co);
	return rdb_settle(e, 3600, err);
}

static void rdb_info(void *e, char *buf, size_t len)
{
	rdb_t *r = e;
	size_t off = (size_t)snprintf(buf, len, "files per level:");
	for (int l = 0; l < 7 && off < len; l++) {
		char name[64];
		snprintf(name, sizeof name, "rocksdb.num-files-at-level%d", l);
		char *v = rocksdb_property_value(r->db, name);
		off += (size_t)snprintf(buf + off, len - off, " L%d=%s", l, v ? v : "?");
		free(v);
	}
	if (off < len)
		snprintf(buf + off, len - off, ", sst bytes %llu, live data estimate %llu",
			 (unsigned long long)rdb_prop(r, "rocksdb.total-sst-files-size"),
			 (unsigned long long)rdb_prop(r, "rocksdb.estimate-live-data-size"));
}

static void rdb_describe(const bench_settings_t *s, char *buf, size_t len)
{
	snprintf(buf, len,
		 "RocksDB %s: write_buffer_size %llu x max_write_buffer_number 2, "
		 "block_size %u, full bloom %d bits/key, zstd level %d on every level, "
		 "max_background_jobs %u, %s, WAL on, leveled compaction (defaults otherwise)",
		 BENCH_ROCKSDB_VERSION, (unsigned long long)s->memory_budget, s->block_size,
		 s->bloom_bits, s->zstd_level, s->bg_threads,
		 s->cache_bytes ? "LRU block cache" : "no block cache (OS page cache only)");
}

const bench_engine_t bench_engine_rocksdb = {
	.name = "rocksdb",
	.open = rdb_open,
	.close = rdb_close,
	.write = rdb_write,
	.get = rdb_get,
	.scan = rdb_scan,
	.settle = rdb_settle,
	.compact = rdb_compact,
	.info = rdb_info,
	.describe = rdb_describe,
};
