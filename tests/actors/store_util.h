/* Helpers shared by the store tests (tests/actors/test_store*.c): a
 * scratch directory, a one-group schema, blocks of cells built from
 * "row"/"value" strings, and scanning a table into a string per cell so
 * tests compare whole contents. Everything is static inline.
 */
#ifndef INGOT_TESTS_ACTORS_STORE_UTIL_H
#define INGOT_TESTS_ACTORS_STORE_UTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include <ingot/store.h>

/* ---- directories ---------------------------------------------------------------- */

static inline void su_make_dir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/ingot-store-XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static inline void su_remove_dir(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- schemas -------------------------------------------------------------------- */

/* One group "g" holding families "a" and "b", zstd 3, small blocks. */
static inline void su_create_table(ig_store_t *s, const char *name)
{
	static const char *const fams[] = {"a", "b"};
	ig_group_config_t g = {.name = "g", .families = fams, .nfamilies = 2,
			       .compression = IG_COMPRESSION_ZSTD, .level = 3,
			       .block_size = 4096};
	ig_schema_config_t c = {.groups = &g, .ngroups = 1};
	char why[256] = "";

	if (ig_store_create_table(s, name, &c, why, sizeof why) != 0)
		fail_msg("create table %s: %s", name, why);
}

/* ---- blocks ---------------------------------------------------------------------- */

/* A block of n cells: rows[i], column "a:q", timestamp ts, values[i]
 * (NULL value: an erasure). Ownership: *out is malloc'd. */
static inline size_t su_block(const char *const *rows, const char *const *values, size_t n,
			      int64_t ts, void **out)
{
	ig_cell_t *c = calloc(n, sizeof *c);
	size_t len = 0;
	void *buf;

	assert_non_null(c);
	for (size_t i = 0; i < n; i++) {
		c[i].key = (ig_cell_key_t){.row = rows[i], .row_len = (uint32_t)strlen(rows[i]),
					   .column = "a:q", .column_len = 3, .timestamp = ts};
		c[i].kind = values[i] ? IG_CELL_SET : IG_CELL_ERASURE;
		c[i].value = values[i];
		c[i].value_len = values[i] ? (uint32_t)strlen(values[i]) : 0;
	}
	assert_int_equal(ig_packed_size(c, n, &len), 0);
	buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(ig_packed_encode(c, n, 0, buf, len, &len), 0);
	free(c);
	*out = buf;
	return len;
}

/* Sets row=value (value NULL: erases row) at ts, synced. */
static inline uint64_t su_put(ig_table_t *t, const char *row, const char *value, int64_t ts)
{
	void *b;
	size_t len = su_block(&row, &value, 1, ts, &b);
	uint64_t txn = 0;
	char why[256] = "";

	if (ig_store_apply(t, b, len, IG_STORE_ANY_TXN, IG_STORE_SYNC, &txn, why, sizeof why))
		fail_msg("apply %s: %s", row, why);
	free(b);
	return txn;
}

/* ---- scanning -------------------------------------------------------------------- */

/* Scans t (all rows, newest version of each column) into "row=value\n"
 * lines. Ownership: the caller frees the result. */
static inline char *su_dump(ig_table_t *t)
{
	ig_scan_options_t o;
	ig_scanner_t *sc;
	ig_cell_t c;
	size_t cap = 256, len = 0;
	char *out = malloc(cap);
	int rc;

	assert_non_null(out);
	out[0] = 0;
	ig_scan_options_init(&o);
	o.max_versions = 1;
	assert_int_equal(ig_scanner_open(t, &o, &sc), 0);
	while ((rc = ig_scanner_next(sc, &c)) == 1) {
		size_t need = len + c.key.row_len + c.value_len + 3;

		if (need > cap) {
			cap = 2 * need;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		memcpy(out + len, c.key.row, c.key.row_len);
		len += c.key.row_len;
		out[len++] = '=';
		memcpy(out + len, c.value, c.value_len);
		len += c.value_len;
		out[len++] = '\n';
		out[len] = 0;
	}
	if (rc != 0)
		fail_msg("scan: %s", ig_scanner_error(sc));
	ig_scanner_close(sc);
	return out;
}

/* ---- more helpers (test_store_maint.c and later files) -------------------------- */

/* Opens dir with opts (NULL: defaults), failing the test with the reason. */
static inline ig_store_t *su_open(const char *dir, const ig_store_options_t *opts)
{
	ig_store_t *s;
	char why[256] = "";

	if (ig_store_open(dir, opts, &s, why, sizeof why) != 0)
		fail_msg("open %s: %s", dir, why);
	return s;
}

/* Looks up a table that must exist. */
static inline ig_table_t *su_table(ig_store_t *s, const char *name)
{
	ig_table_t *t = NULL;

	assert_int_equal(ig_store_table(s, name, &t), 0);
	return t;
}

/* Encodes cells[0..n) into a malloc'd packed block (*len bytes). */
static inline void *su_pack(const ig_cell_t *cells, size_t n, size_t *len)
{
	void *buf;

	assert_int_equal(ig_packed_size(cells, n, len), 0);
	buf = malloc(*len);
	assert_non_null(buf);
	assert_int_equal(ig_packed_encode(cells, n, 0, buf, *len, len), 0);
	return buf;
}

/* Applies cells[0..n) as one mutation (flags: 0 or IG_STORE_SYNC), failing
 * the test on any error. Returns the txn. */
static inline uint64_t su_apply(ig_table_t *t, const ig_cell_t *cells, size_t n, unsigned flags)
{
	size_t len;
	void *b = su_pack(cells, n, &len);
	uint64_t txn = 0;
	char why[256] = "";
	int rc = ig_store_apply(t, b, len, IG_STORE_ANY_TXN, flags, &txn, why, sizeof why);

	if (rc != 0)
		fail_msg("apply of %zu cells: %s (%s)", n, ig_strerror(rc), why);
	free(b);
	return txn;
}

/* A set (value non-NULL) or an erasure of (row, column, ts). The cell
 * borrows its strings. */
static inline ig_cell_t su_cell(const char *row, const char *column, int64_t ts,
				const char *value)
{
	return (ig_cell_t){.key = {.row = row, .row_len = (uint32_t)strlen(row),
				   .column = column, .column_len = (uint32_t)strlen(column),
				   .timestamp = ts},
			   .kind = value ? IG_CELL_SET : IG_CELL_ERASURE,
			   .value = value, .value_len = value ? (uint32_t)strlen(value) : 0};
}

/* Fills buf[0..len) with letters from a xorshift generator seeded by seed
 * (zstd cannot shrink them much, so file sizes follow data sizes), and
 * NUL-terminates it at buf[len]. */
static inline void su_fill(char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (char)('A' + (x >> 58)); /* 64 letters from 'A' */
	}
	buf[len] = 0;
}

/* Counts the cells a scan with opts returns (NULL: everything, all
 * versions), failing the test on a scan error. */
static inline uint64_t su_count(ig_table_t *t, const ig_scan_options_t *opts)
{
	ig_scan_options_t all;
	ig_scanner_t *sc;
	ig_cell_t c;
	uint64_t n = 0;
	int rc;

	if (!opts) {
		ig_scan_options_init(&all);
		opts = &all;
	}
	assert_int_equal(ig_scanner_open(t, opts, &sc), 0);
	while ((rc = ig_scanner_next(sc, &c)) == 1)
		n++;
	if (rc != 0)
		fail_msg("scan: %s", ig_scanner_error(sc));
	ig_scanner_close(sc);
	return n;
}

/* Counts the entries of dir/sub whose names end with suffix; *bytes (if
 * not NULL) gets the sum of their sizes. */
static inline size_t su_files(const char *dir, const char *sub, const char *suffix,
			      uint64_t *bytes)
{
	char path[512], file[1024];
	DIR *d;
	struct dirent *e;
	struct stat st;
	size_t n = 0, sl = strlen(suffix);

	snprintf(path, sizeof path, "%s/%s", dir, sub);
	if (bytes)
		*bytes = 0;
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0)
			continue;
		n++;
		snprintf(file, sizeof file, "%s/%s", path, e->d_name);
		if (bytes && stat(file, &st) == 0)
			*bytes += (uint64_t)st.st_size;
	}
	closedir(d);
	return n;
}

static inline size_t su_count_files(const char *dir, const char *sub, const char *suffix)
{
	return su_files(dir, sub, suffix, NULL);
}

static inline int64_t su_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Microseconds since the epoch: the timestamp convention max_age uses. */
static inline int64_t su_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Polls ig_store_stats until done(stats, arg) holds or timeout_ms passes
 * (1 ms naps between polls: this waits for a condition with a deadline, it
 * never sleeps for an event). Returns whether it held; *out (may be NULL)
 * gets the last stats. */
static inline bool su_wait_stats(ig_store_t *s, bool (*done)(const ig_store_stats_t *, void *),
				 void *arg, int64_t timeout_ms, ig_store_stats_t *out)
{
	int64_t deadline = su_mono_ns() + timeout_ms * 1000000;
	ig_store_stats_t st;
	bool ok;

	for (;;) {
		ig_store_stats(s, &st);
		if ((ok = done(&st, arg)) || su_mono_ns() > deadline)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	if (out)
		*out = st;
	return ok;
}

#endif
