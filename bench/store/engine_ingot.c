/* bench/store: ingot's embedded store (<ingot/store.h>, libingot-actors)
 * behind the engine interface of engine.h.
 *
 * A key is a row; its value is one cell in column "v:" (family "v") at a
 * fixed timestamp, so rewriting a key replaces its cell. The table has one
 * locality group holding family "v": zstd at zstd_level, block_size, no
 * purge policy. Store options: memory_budget, io_threads = bg_threads,
 * everything else the store's default. A write is one packed cell block
 * applied as one txn (IG_STORE_SYNC when synced); a point read is a
 * scanner over the one row [key, key "\0") with max_versions 1. */
#include "engine.h"

#include <ingot/store.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ING_TABLE "bench"
#define ING_COLUMN "v:"
#define ING_TS 1

typedef struct ing {
	ig_store_t *store;
	ig_table_t *table;
} ing_t;

static int ing_fail(bench_err_t *err, const char *what, int rc, const char *why)
{
	return bench_fail(err, "ingot %s: %s%s%s", what, ig_strerror(rc), why && *why ? ": " : "",
			  why ? why : "");
}

static int ing_open(const char *dir, const bench_settings_t *s, void **out, bench_err_t *err)
{
	ing_t *g = calloc(1, sizeof *g);
	char why[256] = "";
	if (!g)
		return bench_fail(err, "out of memory");
	ig_store_options_t o = {0};
	o.memory_budget = s->memory_budget;
	o.io_threads = s->bg_threads;
	int rc = ig_store_open(dir, &o, &g->store, why, sizeof why);
	if (rc != 0) {
		free(g);
		return ing_fail(err, "open", rc, why);
	}
	rc = ig_store_table(g->store, ING_TABLE, &g->table);
	if (rc == IG_ENOTFOUND) {
		static const char *const families[] = {"v"};
		ig_group_config_t grp = {
			.name = "v",
			.families = families,
			.nfamilies = 1,
			.compression = IG_COMPRESSION_ZSTD,
			.level = s->zstd_level,
			.block_size = s->block_size,
		};
		ig_schema_config_t schema = {.groups = &grp, .ngroups = 1};
		rc = ig_store_create_table(g->store, ING_TABLE, &schema, why, sizeof why);
		if (rc == 0)
			rc = ig_store_table(g->store, ING_TABLE, &g->table);
	}
	if (rc != 0) {
		ing_fail(err, "table", rc, why);
		ig_store_close(g->store);
		free(g);
		return -1;
	}
	*out = g;
	return 0;
}

static int ing_close(void *e, bench_err_t *err)
{
	ing_t *g = e;
	ig_table_release(g->table);
	int rc = ig_store_close(g->store);
	free(g);
	return rc ? ing_fail(err, "close", rc, NULL) : 0;
}

static int ing_write(void *e, const bench_kv_t *kv, size_t n, bool sync, bench_err_t *err)
{
	ing_t *g = e;
	uint8_t small[1024];
	size_t cap = IG_PACKED_OVERHEAD;
	bool sorted = true;
	ig_cell_t cell = {.key = {.column = ING_COLUMN, .column_len = 2, .timestamp = ING_TS},
			  .kind = IG_CELL_SET};

	for (size_t i = 0; i < n; i++) {
		cell.key.row = kv[i].key;
		cell.key.row_len = kv[i].key_len;
		cell.value_len = kv[i].value_len;
		cap += ig_packed_cell_size(&cell);
		if (sorted && i > 0) {
			uint32_t a = kv[i - 1].key_len, b = kv[i].key_len;
			int c = memcmp(kv[i - 1].key, kv[i].key, a < b ? a : b);
			sorted = c < 0 || (c == 0 && a < b);
		}
	}
	uint8_t *buf = cap <= sizeof small ? small : malloc(cap);
	if (!buf)
		return bench_fail(err, "out of memory");

	ig_packed_builder_t b;
	size_t len = 0;
	int rc = ig_packed_builder_init(&b, buf, cap, sorted ? IG_PACKED_SORTED : 0);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		cell.key.row = kv[i].key;
		cell.key.row_len = kv[i].key_len;
		cell.value = kv[i].value;
		cell.value_len = kv[i].value_len;
		rc = ig_packed_builder_append(&b, &cell);
	}
	if (rc == 0)
		rc = ig_packed_builder_finish(&b, &len);
	if (rc != 0) {
		if (buf != small)
			free(buf);
		return ing_fail(err, "packing a block", rc, NULL);
	}
	char why[256] = "";
	rc = ig_store_apply(g->table, buf, len, IG_STORE_ANY_TXN, sync ? IG_STORE_SYNC : 0, NULL,
			    why, sizeof why);
	if (buf != small)
		free(buf);
	return rc ? ing_fail(err, "apply", rc, why) : 0;
}

static int ing_get(void *e, const void *key, size_t key_len, void *buf, size_t cap,
		   size_t *value_len, bench_err_t *err)
{
	ing_t *g = e;
	uint8_t end[IG_ROW_MAX + 1];
	if (key_len == 0 || key_len > IG_ROW_MAX)
		return bench_fail(err, "ingot get: key of %zu bytes", key_len);
	memcpy(end, key, key_len);
	end[key_len] = 0;

	ig_scan_options_t o;
	ig_scan_options_init(&o);
	o.row_start = key;
	o.row_start_len = (uint32_t)key_len;
	o.row_end = end;
	o.row_end_len = (uint32_t)key_len + 1;
	o.max_versions = 1;
	ig_scanner_t *sc;
	int rc = ig_scanner_open(g->table, &o, &sc);
	if (rc != 0)
		return ing_fail(err, "scanner_open", rc, NULL);
	ig_cell_t c;
	rc = ig_scanner_next(sc, &c);
	if (rc == 1) {
		memcpy(buf, c.value, c.value_len < cap ? c.value_len : cap);
		*value_len = c.value_len;
	} else if (rc < 0) {
		ing_fail(err, "scanner_next", rc, ig_scanner_error(sc));
	}
	ig_scanner_close(sc);
	return rc;
}

static int ing_scan(void *e, bench_scan_fn fn, void *arg, bench_err_t *err)
{
	ing_t *g = e;
	ig_scan_options_t o;
	ig_scan_options_init(&o);
	o.max_versions = 1;
	ig_scanner_t *sc;
	int rc = ig_scanner_open(g->table, &o, &sc);
	if (rc != 0)
		return ing_fail(err, "scanner_open", rc, NULL);
	ig_cell_t c;
	int stop = 0;
	while ((rc = ig_scanner_next(sc, &c)) == 1) {
		if ((stop = fn(arg, c.key.row, c.key.row_len, c.value, c.value_len)) != 0)
			break;
	}
	if (rc < 0)
		ing_fail(err, "scanner_next", rc, ig_scanner_error(sc));
	ig_scanner_close(sc);
	if (rc < 0)
		return -1;
	return stop ? bench_fail(err, "scan stopped by its callback (%d)", stop) : 0;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Flushes the memory fragments, then waits until the Compactor owes
 * nothing (compaction_debt 0) and no flush or compaction has finished for
 * two polls 100 ms apart. */
static int ing_settle(void *e, double timeout_s, bench_err_t *err)
{
	ing_t *g = e;
	int rc = ig_store_flush(g->store, NULL);
	if (rc != 0)
		return ing_fail(err, "flush", rc, NULL);
	double t0 = mono_s();
	ig_store_stats_t prev = {0}, st;
	int quiet = 0;
	for (;;) {
		ig_store_stats(g->store, &st);
		bool idle = st.compaction_debt == 0 && st.flushes == prev.flushes &&
			    st.compactions == prev.compactions;
		quiet = idle ? quiet + 1 : 0;
		prev = st;
		if (quiet >= 2)
			return 0;
		if (mono_s() - t0 > timeout_s)
			return bench_fail(err,
					  "ingot: compaction still busy after %.0f s (debt %llu bytes)",
					  timeout_s, (unsigned long long)st.compaction_debt);
		struct timespec ts = {0, 100000000L};
		nanosleep(&ts, NULL);
	}
}

static int ing_compact(void *e, bench_err_t *err)
{
	ing_t *g = e;
	int rc = ig_store_compact(g->store, NULL);
	return rc ? ing_fail(err, "compact", rc, NULL) : 0;
}

static void ing_info(void *e, char *buf, size_t len)
{
	ing_t *g = e;
	ig_store_stats_t st;
	ig_store_stats(g->store, &st);
	snprintf(buf, len,
		 "tablets %llu, fragments %llu, disk bytes %llu, memory bytes %llu, "
		 "flushes %llu (%llu bytes), compactions %llu (%llu bytes), debt %llu, "
		 "log segments %llu, log fsyncs %llu for %llu commits, throttled %.2f s",
		 (unsigned long long)st.tablets, (unsigned long long)st.fragments,
		 (unsigned long long)st.disk_bytes, (unsigned long long)st.memory_bytes,
		 (unsigned long long)st.flushes, (unsigned long long)st.bytes_flushed,
		 (unsigned long long)st.compactions, (unsigned long long)st.bytes_compacted,
		 (unsigned long long)st.compaction_debt, (unsigned long long)st.log_segments,
		 (unsigned long long)st.log_fsyncs, (unsigned long long)st.log_commits,
		 (double)st.throttled_ns / 1e9);
}

static void ing_describe(const bench_settings_t *s, char *buf, size_t len)
{
	snprintf(buf, len,
		 "ingot store: memory_budget %llu, io_threads %u, one locality group "
		 "(family v) zstd level %d, block_size %u, row bloom %s, %s, log on "
		 "(defaults otherwise: size-tiered compaction)",
		 (unsigned long long)s->memory_budget, s->bg_threads, s->zstd_level, s->block_size,
		 s->bloom_bits == 10 ? "10 bits/key (built in)" : "10 bits/key (built in, NOT the setting)",
		 s->cache_bytes ? "no block cache (OS page cache only; cache setting ignored)"
				: "no block cache (OS page cache only)");
}

const bench_engine_t bench_engine_ingot = {
	.name = "ingot",
	.open = ing_open,
	.close = ing_close,
	.write = ing_write,
	.get = ing_get,
	.scan = ing_scan,
	.settle = ing_settle,
	.compact = ing_compact,
	.info = ing_info,
	.describe = ing_describe,
};
