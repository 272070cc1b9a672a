/* Tests of the store's maintenance, through <ingot/store.h> and
 * ig_store_stats: flushes (manual and automatic under a memory budget),
 * compaction (one fragment per group, erasures reclaimed, max-history and
 * max-age purges, the size-tiered policy, its debt and write
 * amplification), splits and joins, Gc of fragment files and log segments
 * (also under a scanner that is still reading, and after a drop),
 * throttling, scans racing writers and maintenance, a checksum error, and
 * the example program of docs/store.md, compiled and run here.
 *
 * No test sleeps for an event: maintenance is driven by ig_store_flush
 * and ig_store_compact (which return once durable), and background work is
 * awaited by polling ig_store_stats with a deadline (su_wait_stats). */
#include "store_util.h"
#include "watchdog.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h" /* only tablet_firsts() peeks at tablet boundaries */

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)

/* ---- helpers ---------------------------------------------------------------------- */

/* One locality group "g" of families "a" and "b" (as su_create_table),
 * with a purge policy. */
static ig_group_config_t group_g(uint32_t max_history, int64_t max_age, int level)
{
	static const char *const fams[] = {"a", "b"};

	return (ig_group_config_t){.name = "g", .families = fams, .nfamilies = 2,
				   .compression = IG_COMPRESSION_ZSTD, .level = level,
				   .block_size = 4096, .max_history = max_history,
				   .max_age = max_age};
}

static void create_g(ig_store_t *s, const char *name, uint32_t max_history, int64_t max_age,
		     int level)
{
	ig_group_config_t g = group_g(max_history, max_age, level);
	ig_schema_config_t c = {.groups = &g, .ngroups = 1};
	char why[256] = "";

	if (ig_store_create_table(s, name, &c, why, sizeof why) != 0)
		fail_msg("create table %s: %s", name, why);
}

/* Two groups: "g1" holds family "a", "g2" family "b". */
static void create_two_groups(ig_store_t *s, const char *name)
{
	static const char *const fa[] = {"a"}, *const fb[] = {"b"};
	ig_group_config_t g[2] = {
		{.name = "g1", .families = fa, .nfamilies = 1, .compression = IG_COMPRESSION_ZSTD,
		 .level = 1, .block_size = 4096},
		{.name = "g2", .families = fb, .nfamilies = 1, .compression = IG_COMPRESSION_NONE,
		 .block_size = 4096},
	};
	ig_schema_config_t c = {.groups = g, .ngroups = 2};
	char why[256] = "";

	if (ig_store_create_table(s, name, &c, why, sizeof why) != 0)
		fail_msg("create table %s: %s", name, why);
}

static void row_name(char *buf, size_t len, uint64_t i)
{
	snprintf(buf, len, "r%07" PRIu64, i);
}

/* The value put_rows writes for row i (vlen letters). */
static void row_value(char *buf, size_t vlen, uint64_t i, uint64_t seed)
{
	su_fill(buf, vlen, i * 1000003 + seed);
}

/* Writes rows [first, first + n) (index i -> row perm(i) when perm is
 * set) at ts: column "a:q" with a vlen-letter value, `per` cells to a
 * mutation, flags for each apply. */
static void put_rows_perm(ig_table_t *t, uint64_t first, uint64_t n, size_t vlen, int64_t ts,
			  uint64_t seed, size_t per, unsigned flags,
			  uint64_t (*perm)(uint64_t, uint64_t), uint64_t perm_n)
{
	ig_cell_t *cells = calloc(per, sizeof *cells);
	char (*rows)[16] = calloc(per, sizeof *rows);
	char *vals = malloc(per * (vlen + 1));
	size_t k = 0;

	assert_true(cells && rows && vals);
	for (uint64_t i = first; i < first + n; i++) {
		uint64_t r = perm ? perm(i, perm_n) : i;

		row_name(rows[k], sizeof rows[k], r);
		row_value(vals + k * (vlen + 1), vlen, r, seed);
		cells[k] = su_cell(rows[k], "a:q", ts, vals + k * (vlen + 1));
		if (++k == per || i + 1 == first + n) {
			(void)su_apply(t, cells, k, flags);
			k = 0;
		}
	}
	free(cells);
	free(rows);
	free(vals);
}

static void put_rows(ig_table_t *t, uint64_t first, uint64_t n, size_t vlen, int64_t ts,
		     uint64_t seed, unsigned flags)
{
	put_rows_perm(t, first, n, vlen, ts, seed, 32, flags, NULL, 0);
}

/* Erases column "a:q" of the rows i in [first, first + n) with keep(i)
 * false, at ts. */
static uint64_t erase_rows(ig_table_t *t, uint64_t first, uint64_t n, int64_t ts,
			   bool (*keep)(uint64_t))
{
	ig_cell_t cells[64];
	char rows[64][16];
	size_t k = 0;
	uint64_t erased = 0;

	for (uint64_t i = first; i < first + n; i++) {
		if (keep && keep(i))
			continue;
		row_name(rows[k], sizeof rows[k], i);
		cells[k] = su_cell(rows[k], "a:q", ts, NULL);
		erased++;
		if (++k == 64) {
			(void)su_apply(t, cells, k, 0);
			k = 0;
		}
	}
	if (k)
		(void)su_apply(t, cells, k, 0);
	return erased;
}

/* What su_dump returns for rows [first, first + n) with keep(i) true (NULL:
 * all) written by put_rows with seed. Ownership: the caller frees it. */
static char *expect_dump(uint64_t first, uint64_t n, size_t vlen, uint64_t seed,
			 bool (*keep)(uint64_t))
{
	size_t cap = (size_t)n * (vlen + 20) + 1, len = 0;
	char *out = malloc(cap), *val = malloc(vlen + 1), row[16];

	assert_true(out && val);
	out[0] = 0;
	for (uint64_t i = first; i < first + n; i++) {
		if (keep && !keep(i))
			continue;
		row_name(row, sizeof row, i);
		row_value(val, vlen, i, seed);
		len += (size_t)snprintf(out + len, cap - len, "%s=%s\n", row, val);
	}
	free(val);
	return out;
}

/* Fails unless t holds exactly what expect_dump describes. */
static void assert_dump(ig_table_t *t, uint64_t first, uint64_t n, size_t vlen, uint64_t seed,
			bool (*keep)(uint64_t))
{
	char *want = expect_dump(first, n, vlen, seed, keep), *got = su_dump(t);

	assert_string_equal(want, got);
	free(want);
	free(got);
}

static ig_store_stats_t stats(ig_store_t *s)
{
	ig_store_stats_t st;

	ig_store_stats(s, &st);
	return st;
}

/* ---- conditions for su_wait_stats ---------------------------------------------------- */

static bool files_deleted_at_least(const ig_store_stats_t *st, void *arg)
{
	return st->files_deleted >= *(uint64_t *)arg;
}

static bool segments_deleted_at_least(const ig_store_stats_t *st, void *arg)
{
	return st->segments_deleted >= *(uint64_t *)arg;
}

static bool debt_paid(const ig_store_stats_t *st, void *arg)
{
	return st->compaction_debt == 0 && st->compactions >= *(uint64_t *)arg;
}

static bool tablets_at_least(const ig_store_stats_t *st, void *arg)
{
	return st->tablets >= *(uint64_t *)arg;
}

static bool joins_at_least(const ig_store_stats_t *st, void *arg)
{
	return st->joins >= *(uint64_t *)arg;
}

/* Waits until dir/frags holds exactly want fragment files. */
static bool wait_frag_files(const char *dir, size_t want, int64_t timeout_ms)
{
	int64_t deadline = su_mono_ns() + timeout_ms * 1000000;

	while (su_count_files(dir, "frags", ".igf") != want) {
		if (su_mono_ns() > deadline)
			return false;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	return true;
}

/* ---- flush ---------------------------------------------------------------------------- */

static void test_flush_moves_memory_to_disk(void **state)
{
	ig_store_options_t o = {.manual = true};
	ig_store_stats_t a, b, c;
	char dir[64], *before, *after;
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	put_rows(t, 0, 1000, 64, 1, 7, IG_STORE_SYNC);
	a = stats(s);
	assert_true(a.memory_bytes > 64 * 1000);
	assert_int_equal(a.fragments, 0);
	assert_int_equal(a.disk_cells, 0);
	assert_int_equal(a.disk_bytes, 0);
	before = su_dump(t);

	assert_int_equal(ig_store_flush(s, t), 0);
	b = stats(s);
	assert_int_equal(b.memory_bytes, 0);
	assert_int_equal(b.fragments, 1); /* one tablet, one group, one memory fragment */
	assert_int_equal(b.disk_cells, 1000);
	assert_true(b.disk_bytes > 0);
	assert_true(b.flushes > a.flushes);
	assert_true(b.bytes_flushed >= b.disk_bytes);
	after = su_dump(t);
	assert_string_equal(before, after);
	free(after);

	/* Nothing in memory: a flush writes nothing. */
	assert_int_equal(ig_store_flush(s, t), 0);
	c = stats(s);
	assert_int_equal(c.fragments, 1);
	assert_int_equal(c.bytes_flushed, b.bytes_flushed);

	/* A second batch makes a second fragment; both survive a reopen. */
	put_rows(t, 1000, 500, 64, 1, 7, 0);
	assert_int_equal(ig_store_flush(s, NULL), 0);
	c = stats(s);
	assert_int_equal(c.fragments, 2);
	assert_int_equal(c.disk_cells, 1500);
	assert_int_equal(c.memory_bytes, 0);
	free(before);
	before = su_dump(t);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	s = su_open(dir, &o);
	t = su_table(s, "t");
	c = stats(s);
	assert_int_equal(c.fragments, 2);
	assert_int_equal(c.disk_cells, 1500);
	assert_int_equal(c.memory_bytes, 0);
	after = su_dump(t);
	assert_string_equal(before, after);
	free(before);
	free(after);
	before = expect_dump(0, 1500, 64, 7, NULL);
	after = su_dump(t);
	assert_string_equal(before, after);
	free(before);
	free(after);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* The Serializer flushes on its own: memory stays near its budget while
 * many times the budget is written. */
static void test_auto_flush_bounds_memory(void **state)
{
	ig_store_options_t o = {.memory_budget = 1 * MiB, .split_bytes = UINT64_MAX};
	const uint64_t rows = 8192, vlen = 1000, per = 16;
	uint64_t peak = 0;
	ig_store_stats_t st;
	char dir[64];
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	for (uint64_t i = 0; i < rows; i += per) {
		put_rows(t, i, per, vlen, 1, 3, 0);
		st = stats(s);
		if (st.memory_bytes > peak)
			peak = st.memory_bytes;
	}
	assert_int_equal(ig_store_sync(s, 0, IG_FOREVER), 0);
	st = stats(s);
	print_message("auto flush: wrote %" PRIu64 " KiB, memory peak %" PRIu64
		      " KiB (budget %" PRIu64 " KiB), %" PRIu64 " flushes, %" PRIu64
		      " fragments, throttled %" PRIu64 " ms\n",
		      rows * vlen / KiB, peak / KiB, o.memory_budget / KiB, st.flushes,
		      st.fragments, st.throttled_ns / 1000000);
	/* Writes wait at twice the budget; one mutation may pass it. */
	assert_true(peak <= 2 * o.memory_budget + 64 * KiB);
	assert_true(st.flushes >= (rows * vlen) / o.memory_budget);
	assert_true(st.fragments >= 1);
	assert_dump(t, 0, rows, vlen, 3, NULL);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* ---- compaction ------------------------------------------------------------------------ */

static void test_compact_one_fragment_per_group(void **state)
{
	ig_store_options_t o = {.manual = true};
	ig_store_stats_t a, b;
	char dir[64], *before, *after, row[16], va[40], vb[40];
	ig_scan_options_t so;
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	create_two_groups(s, "t");
	t = su_table(s, "t");
	for (int round = 1; round <= 5; round++) {
		for (int i = 0; i < 200; i++) {
			ig_cell_t c[2];

			snprintf(row, sizeof row, "row%04d", i);
			snprintf(va, sizeof va, "a-%d-%d", round, i);
			snprintf(vb, sizeof vb, "b-%d-%d", round, i);
			c[0] = su_cell(row, "a:q", round, va);
			c[1] = su_cell(row, "b:q", round, vb);
			(void)su_apply(t, c, 2, 0);
		}
		assert_int_equal(ig_store_flush(s, t), 0);
	}
	a = stats(s);
	assert_int_equal(a.fragments, 10);     /* 5 flushes x 2 groups */
	assert_int_equal(a.disk_cells, 2000);  /* 200 rows x 2 columns x 5 versions */
	assert_true(a.compaction_debt > 0);    /* 5 similar files per group: the policy
						* would merge them */
	before = su_dump(t);
	assert_int_equal(su_count(t, NULL), 2000);

	assert_int_equal(ig_store_compact(s, t), 0);
	b = stats(s);
	assert_int_equal(b.fragments, 2);
	assert_int_equal(b.disk_cells, 2000);  /* no purge policy: every version stays */
	assert_int_equal(b.compaction_debt, 0);
	assert_true(b.compactions >= a.compactions + 2);
	assert_true(b.bytes_compacted > a.bytes_compacted);
	after = su_dump(t);
	assert_string_equal(before, after);
	free(after);
	assert_int_equal(su_count(t, NULL), 2000);
	ig_scan_options_init(&so);
	so.families = (const char *const[]){"b"};
	so.nfamilies = 1;
	so.max_versions = 1;
	assert_int_equal(su_count(t, &so), 200);

	/* Compacting one fragment per group again changes nothing. */
	assert_int_equal(ig_store_compact(s, t), 0);
	assert_int_equal(stats(s).fragments, 2);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	s = su_open(dir, &o);
	t = su_table(s, "t");
	assert_int_equal(stats(s).fragments, 2);
	after = su_dump(t);
	assert_string_equal(before, after);
	free(before);
	free(after);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static bool keep_tenth(uint64_t i)
{
	return i % 10 == 0;
}

static void test_compact_reclaims_erasures(void **state)
{
	ig_store_options_t o = {.manual = true};
	ig_store_stats_t a, b;
	ig_scan_options_t so;
	char dir[64], *want, *got;
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	put_rows(t, 0, 1000, 100, 1, 5, 0);
	assert_int_equal(ig_store_flush(s, t), 0);
	assert_int_equal(erase_rows(t, 0, 1000, 2, keep_tenth), 900);
	assert_int_equal(ig_store_flush(s, t), 0);
	a = stats(s);
	assert_int_equal(a.disk_cells, 1900);
	want = expect_dump(0, 1000, 100, 5, keep_tenth);
	got = su_dump(t);
	assert_string_equal(want, got);
	free(got);
	/* An erasure outside the scan's time range still hides what it covers. */
	ig_scan_options_init(&so);
	so.ts_max = 1;
	assert_int_equal(su_count(t, &so), 100);

	assert_int_equal(ig_store_compact(s, t), 0);
	b = stats(s);
	assert_int_equal(b.fragments, 1);
	assert_int_equal(b.disk_cells, 100); /* erased sets and the erasures are gone */
	assert_true(b.disk_bytes < a.disk_bytes / 4);
	got = su_dump(t);
	assert_string_equal(want, got);
	free(got);
	assert_int_equal(su_count(t, NULL), 100);
	assert_int_equal(su_count(t, &so), 100);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	s = su_open(dir, &o);
	t = su_table(s, "t");
	got = su_dump(t);
	assert_string_equal(want, got);
	free(got);
	assert_int_equal(su_count(t, NULL), 100);
	assert_int_equal(stats(s).disk_cells, 100);
	free(want);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static void test_compact_max_history(void **state)
{
	ig_store_options_t o = {.manual = true};
	ig_group_config_t g = group_g(1, 0, 3);
	ig_schema_config_t sc = {.groups = &g, .ngroups = 1};
	ig_scan_options_t so;
	ig_scanner_t *scn;
	ig_cell_t c;
	ig_schema_t *schema;
	char dir[64], why[256] = "", row[16], val[32];
	ig_store_t *s;
	ig_table_t *t;
	int n = 0, rc;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	create_g(s, "t", 0, 0, 3);
	t = su_table(s, "t");
	for (int v = 1; v <= 4; v++) {
		for (int i = 0; i < 50; i++) {
			snprintf(row, sizeof row, "row%02d", i);
			snprintf(val, sizeof val, "v%d", v);
			ig_cell_t cell = su_cell(row, "a:q", v, val);

			(void)su_apply(t, &cell, 1, 0);
		}
		assert_int_equal(ig_store_flush(s, t), 0);
	}
	assert_int_equal(su_count(t, NULL), 200);
	/* max_history 0 keeps everything through a compaction. */
	assert_int_equal(ig_store_compact(s, t), 0);
	assert_int_equal(su_count(t, NULL), 200);

	if (ig_store_alter_table(s, "t", &sc, why, sizeof why) != 0)
		fail_msg("alter: %s", why);
	assert_int_equal(ig_store_compact(s, t), 0);
	ig_scan_options_init(&so);
	so.max_versions = 0;
	assert_int_equal(ig_scanner_open(t, &so, &scn), 0);
	while ((rc = ig_scanner_next(scn, &c)) == 1) {
		assert_int_equal(c.key.timestamp, 4);
		assert_int_equal(c.value_len, 2);
		assert_memory_equal(c.value, "v4", 2);
		n++;
	}
	assert_int_equal(rc, 0);
	ig_scanner_close(scn);
	assert_int_equal(n, 50);
	assert_int_equal(stats(s).disk_cells, 50);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	/* The altered schema is durable, and the purge too. */
	s = su_open(dir, &o);
	t = su_table(s, "t");
	schema = ig_table_schema(t);
	assert_int_equal(ig_schema_group(schema, 0)->max_history, 1);
	ig_schema_unref(schema);
	assert_int_equal(su_count(t, NULL), 50);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static void test_compact_max_age(void **state)
{
	ig_store_options_t o = {.manual = true};
	const int64_t now = su_now_us(), hour = 3600 * (int64_t)1000000;
	ig_scan_options_t so;
	ig_scanner_t *scn;
	ig_cell_t c;
	char dir[64], row[16], *got;
	ig_store_t *s;
	ig_table_t *t;
	int rc, n = 0;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	create_g(s, "t", 0, 3600, 3); /* one hour */
	t = su_table(s, "t");
	for (int i = 0; i < 40; i++) {
		ig_cell_t cell;

		snprintf(row, sizeof row, "old%02d", i);
		cell = su_cell(row, "a:q", now - 2 * hour, "stale");
		(void)su_apply(t, &cell, 1, 0);
		snprintf(row, sizeof row, "new%02d", i);
		cell = su_cell(row, "a:q", now, "fresh");
		(void)su_apply(t, &cell, 1, 0);
	}
	assert_int_equal(ig_store_flush(s, t), 0);
	{
		ig_cell_t mix[2] = {su_cell("mix", "a:q", now - 3 * hour, "stale"),
				    su_cell("mix", "a:q", now - hour / 2, "fresh")};

		(void)su_apply(t, mix, 2, IG_STORE_SYNC);
	}
	assert_int_equal(su_count(t, NULL), 82);
	assert_int_equal(ig_store_compact(s, t), 0);

	ig_scan_options_init(&so);
	assert_int_equal(ig_scanner_open(t, &so, &scn), 0);
	while ((rc = ig_scanner_next(scn, &c)) == 1) {
		assert_int_equal(c.value_len, 5);
		assert_memory_equal(c.value, "fresh", 5);
		n++;
	}
	assert_int_equal(rc, 0);
	ig_scanner_close(scn);
	assert_int_equal(n, 41); /* the 40 new rows and mix's newer version */
	assert_int_equal(stats(s).disk_cells, 41);
	got = su_dump(t);
	assert_non_null(strstr(got, "mix=fresh\n"));
	assert_null(strstr(got, "old"));
	free(got);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* ---- the size-tiered policy, its debt and write amplification ----------------------- */

/* Row i of n in scattered order: each flush of a run of i then spans the
 * table's rows and overlaps the others, so the tiers (not the sorted runs
 * a sequential load makes) are what these tests exercise. */
static uint64_t perm_rows(uint64_t i, uint64_t n)
{
	return (i * 7919) % n; /* 7919 is prime and does not divide n */
}

static void test_tiered_debt_exposed_and_paid(void **state)
{
	ig_store_options_t o = {.manual = true, .memory_budget = 4 * MiB};
	uint64_t want_compactions;
	ig_store_stats_t a, b;
	char dir[64], *before, *after;
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	for (int f = 0; f < 8; f++) {
		put_rows_perm(t, (uint64_t)f * 200, 200, 100, 1, 9, 32, 0, perm_rows, 1600);
		assert_int_equal(ig_store_flush(s, t), 0);
	}
	a = stats(s);
	assert_int_equal(a.fragments, 8);
	assert_true(a.compaction_debt > 0);
	assert_true(a.compaction_debt <= a.disk_bytes);
	print_message("tiered: 8 similar fragments, %" PRIu64 " bytes, debt %" PRIu64 "\n",
		      a.disk_bytes, a.compaction_debt);
	before = su_dump(t);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	/* Automatic: the Compactor pays the debt once a flush wakes it. */
	o.manual = false;
	s = su_open(dir, &o);
	t = su_table(s, "t");
	assert_int_equal(stats(s).compaction_debt, a.compaction_debt);
	assert_int_equal(ig_store_flush(s, NULL), 0);
	want_compactions = 1;
	if (!su_wait_stats(s, debt_paid, &want_compactions, 20000, &b))
		fail_msg("compaction debt still %" PRIu64 " after 20 s (%" PRIu64
			 " compactions, %" PRIu64 " fragments)",
			 b.compaction_debt, b.compactions, b.fragments);
	assert_true(b.fragments <= 3); /* the 8 similar files merge */
	assert_true(b.fragments < a.fragments);
	after = su_dump(t);
	assert_string_equal(before, after);
	free(before);
	free(after);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* Many automatic flushes: the fragment count stays bounded, the debt
 * returns to zero, and write amplification is about one rewrite per
 * tier. */
static void test_tiered_bounds_fragments(void **state)
{
	ig_store_options_t o = {.memory_budget = 1 * MiB, .split_bytes = UINT64_MAX,
				.debt_soft = 1 * MiB, .debt_hard = 4 * MiB};
	const uint64_t rows = 24576, vlen = 500, per = 32;
	uint64_t max_frags = 0, max_debt = 0, zero = 0, tiers = 0, classes = 0;
	ig_store_stats_t st;
	double wa;
	char dir[64];
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	for (uint64_t i = 0; i < rows; i += per) {
		put_rows_perm(t, i, per, vlen, 1, 11, 32, 0, perm_rows, rows);
		if ((i / per) % 8 == 0) {
			st = stats(s);
			if (st.fragments > max_frags)
				max_frags = st.fragments;
			if (st.compaction_debt > max_debt)
				max_debt = st.compaction_debt;
		}
	}
	assert_int_equal(ig_store_sync(s, 0, IG_FOREVER), 0);
	assert_int_equal(ig_store_flush(s, NULL), 0); /* wakes the Compactor once more */
	if (!su_wait_stats(s, debt_paid, &zero, 30000, &st))
		fail_msg("compaction debt still %" PRIu64 " after 30 s", st.compaction_debt);
	for (uint64_t f = st.flushes; f > 1; f /= 4)
		tiers++;
	wa = (double)(st.bytes_flushed + st.bytes_compacted) / (double)st.bytes_flushed;
	print_message("tiered: %" PRIu64 " flushes, %" PRIu64 " compactions, fragments max %"
		      PRIu64 " now %" PRIu64 ", debt max %" PRIu64 " KiB, write amplification "
		      "%.2f ((%" PRIu64 " + %" PRIu64 ") / %" PRIu64 " bytes), throttled %"
		      PRIu64 " ms\n",
		      st.flushes, st.compactions, max_frags, st.fragments, max_debt / KiB, wa,
		      st.bytes_flushed, st.bytes_compacted, st.bytes_flushed,
		      st.throttled_ns / 1000000);
	assert_true(st.flushes >= 8);
	assert_true(st.compactions >= 1);
	/* Each size class (a factor of 4) keeps fewer than min_merge (4)
	 * files: logarithmic in the data, where flushes alone would be 50. */
	for (uint64_t b = st.disk_bytes / KiB; b > 1; b /= 4)
		classes++;
	assert_true(st.fragments <= 3 * (classes + 1));
	assert_true(max_frags <= 3 * (classes + 1) + 16);
	/* Each byte is rewritten about once per tier it climbs. */
	assert_true(wa <= (double)tiers + 2.5);
	assert_dump(t, 0, rows, vlen, 11, NULL);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* ---- splits and joins ---------------------------------------------------------------- */

/* The first row of each tablet of t (the store's range map: the one place
 * these tests look inside, since the API does not show tablet bounds).
 * Ownership: *out is malloc'd, each row too (free_rows). */
static size_t tablet_firsts(ig_table_t *t, char ***out)
{
	ig__tablet_t **v;
	size_t n;
	char **rows;

	assert_int_equal(ig__range_map_range(t->map, NULL, 0, NULL, 0, &v, &n), 0);
	rows = calloc(n, sizeof *rows);
	assert_non_null(rows);
	for (size_t i = 0; i < n; i++) {
		const void *first, *last;
		uint32_t fl, ll;

		ig__tablet_range(v[i], &first, &fl, &last, &ll);
		rows[i] = calloc(1, fl + 1);
		assert_non_null(rows[i]);
		if (fl)
			memcpy(rows[i], first, fl);
		ig__tablet_unref(v[i]);
	}
	free(v);
	*out = rows;
	return n;
}

static void free_rows(char **rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i]);
	free(rows);
}

/* Rows of t in [start, end) ("" end: to the last). */
static uint64_t count_range(ig_table_t *t, const char *start, const char *end)
{
	ig_scan_options_t so;

	ig_scan_options_init(&so);
	so.row_start = start;
	so.row_start_len = (uint32_t)strlen(start);
	so.row_end = end;
	so.row_end_len = (uint32_t)strlen(end);
	so.max_versions = 1;
	return su_count(t, &so);
}

/* Checks every tablet holds rows and none holds more than ratio times
 * another: tablets split at a median row, not at an edge. */
static size_t check_tablets_balanced(ig_table_t *t, uint64_t ratio)
{
	char **firsts;
	size_t n = tablet_firsts(t, &firsts);
	uint64_t lo = UINT64_MAX, hi = 0, total = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t c = count_range(t, firsts[i], i + 1 < n ? firsts[i + 1] : "");

		print_message("  tablet %zu from '%s': %" PRIu64 " rows\n", i, firsts[i], c);
		lo = c < lo ? c : lo;
		hi = c > hi ? c : hi;
		total += c;
	}
	assert_true(lo > 0);
	assert_true(hi <= ratio * lo);
	assert_int_equal(total, count_range(t, "", ""));
	free_rows(firsts, n);
	return n;
}

static bool keep_twentieth(uint64_t i)
{
	return i % 20 == 0;
}

/* Options for the split tests: small tablets, no joins (join_bytes 1). */
static ig_store_options_t split_opts(void)
{
	return (ig_store_options_t){.memory_budget = 1 * MiB, .split_bytes = 256 * KiB,
				    .join_bytes = 1};
}

#define SPLIT_ROWS 6000u
#define SPLIT_VLEN 400u

/* Writes SPLIT_ROWS rows in scattered order into a new table "t" of dir
 * until it has split; returns the tablet count. */
static uint64_t grow_until_split(const char *dir)
{
	ig_store_options_t o = split_opts();
	uint64_t two = 2;
	ig_store_stats_t st;
	ig_store_t *s = su_open(dir, &o);
	ig_table_t *t;

	su_create_table(s, "t");
	t = su_table(s, "t");
	put_rows_perm(t, 0, SPLIT_ROWS, SPLIT_VLEN, 1, 13, 20, 0, perm_rows, SPLIT_ROWS);
	assert_int_equal(ig_store_sync(s, 0, IG_FOREVER), 0);
	if (!su_wait_stats(s, tablets_at_least, &two, 20000, &st))
		fail_msg("no split after writing %u KiB with split_bytes %" PRIu64 " KiB: %"
			 PRIu64 " tablet(s), %" PRIu64 " disk KiB, %" PRIu64 " flushes",
			 SPLIT_ROWS * SPLIT_VLEN / 1024, o.split_bytes / KiB, st.tablets,
			 st.disk_bytes / KiB, st.flushes);
	assert_true(st.splits >= 1);
	assert_dump(t, 0, SPLIT_ROWS, SPLIT_VLEN, 13, NULL);
	ig_table_release(t);
	st = stats(s);
	assert_int_equal(ig_store_close(s), 0);
	return st.tablets;
}

/* A growing table splits at median rows (each tablet gets a fair share),
 * and the tablets and their content survive a reopen. */
/* Flushes of a sequential load lie each past the last: they form one
 * sorted run the Compactor never rewrites (no debt), reads still find
 * every row, and splits hand each half only the files holding its rows. */
static void test_sequential_flushes_stay(void **state)
{
	ig_store_options_t o = {.manual = true};
	ig_store_stats_t st;
	char dir[64], *want, *got;
	ig_store_t *s;
	ig_table_t *t;
	size_t files;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	for (int f = 0; f < 8; f++) {
		put_rows(t, (uint64_t)f * 300, 300, 200, 1, 17, 0);
		assert_int_equal(ig_store_flush(s, t), 0);
	}
	st = stats(s);
	assert_int_equal(st.fragments, 8);
	assert_int_equal(st.compaction_debt, 0);
	want = expect_dump(0, 2400, 200, 17, NULL);
	got = su_dump(t);
	assert_string_equal(want, got);
	free(got);
	/* An overlapping flush starts a run of its own; four of them merge. */
	for (int f = 0; f < 4; f++) {
		put_rows(t, 0, 2400, 200, 1, 17, 0);
		assert_int_equal(ig_store_flush(s, t), 0);
	}
	assert_true(stats(s).compaction_debt > 0);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);

	/* Automatic: a sequential load grows, flushes and splits. */
	o = split_opts();
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	put_rows(t, 0, SPLIT_ROWS, SPLIT_VLEN, 1, 13, 0);
	assert_int_equal(ig_store_flush(s, t), 0);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	s = su_open(dir, &o);
	t = su_table(s, "t");
	st = stats(s);
	files = su_count_files(dir, "frags", ".igf");
	print_message("sequential: %" PRIu64 " tablets, %" PRIu64 " links to %zu files, %" PRIu64
		      " compactions\n", st.tablets, st.fragments, files, st.compactions);
	assert_true(st.tablets >= 2);
	/* A file is shared only by the tablets its rows span: a link or two
	 * more per tablet boundary, not every file in every tablet (114 links
	 * to 25 files when splits copied them all). */
	assert_true(st.fragments <= files + 2 * st.tablets);
	free(want);
	assert_dump(t, 0, SPLIT_ROWS, SPLIT_VLEN, 13, NULL);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static void test_split_at_median(void **state)
{
	ig_store_options_t o = split_opts();
	uint64_t tablets;
	ig_store_stats_t st;
	char dir[64];
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	tablets = grow_until_split(dir);

	s = su_open(dir, &o);
	t = su_table(s, "t");
	st = stats(s);
	assert_int_equal(st.tablets, tablets);
	assert_dump(t, 0, SPLIT_ROWS, SPLIT_VLEN, 13, NULL);
	print_message("split: %" PRIu64 " tablets for %u rows, %" PRIu64 " KiB on disk, "
		      "split_bytes %" PRIu64 " KiB\n", st.tablets, SPLIT_ROWS, st.disk_bytes / KiB,
		      o.split_bytes / KiB);
	/* Every tablet came from halving one past split_bytes, so none holds
	 * much under a quarter of what split_bytes holds, nor 8 times
	 * another. */
	(void)check_tablets_balanced(t, 8);
	assert_true(st.tablets <= 2 * (st.disk_bytes / (o.split_bytes / 2)) + 1);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* After most rows are erased and compacted away, small neighbours join;
 * content is unchanged and survives a reopen. */
static void test_join_small_neighbours(void **state)
{
	ig_store_options_t o = split_opts();
	ig_store_stats_t st, st2;
	char dir[64], *want, *got;
	ig_store_t *s;
	ig_table_t *t;
	int64_t deadline, ts = 3;
	uint64_t joins1;

	(void)state;
	su_make_dir(dir, sizeof dir);
	(void)grow_until_split(dir);

	/* Joins on; a small log budget makes the Serializer flush (and so
	 * look at joining) every tablet that takes a write. */
	o.join_bytes = 32 * KiB;
	o.log_budget = 64 * KiB;
	s = su_open(dir, &o);
	t = su_table(s, "t");
	(void)erase_rows(t, 0, SPLIT_ROWS, 2, keep_twentieth);
	assert_int_equal(ig_store_compact(s, t), 0);
	st = stats(s);
	assert_true(st.tablets >= 2);
	assert_true(st.disk_bytes < o.join_bytes * st.tablets);
	/* Each round re-erases erased rows across the key space (content
	 * does not change) until a tablet joins. */
	joins1 = st.joins + 1;
	deadline = su_mono_ns() + 20 * (int64_t)1000000000;
	while (!su_wait_stats(s, joins_at_least, &joins1, 20, &st2)) {
		if (su_mono_ns() > deadline)
			fail_msg("no join after 20 s: %" PRIu64 " tablets, %" PRIu64
				 " disk bytes, join_bytes %" PRIu64, st2.tablets, st2.disk_bytes,
				 o.join_bytes);
		for (uint64_t i = 1; i < SPLIT_ROWS; i += 97)
			if (!keep_twentieth(i))
				(void)erase_rows(t, i, 1, ts, NULL);
		ts++;
	}
	/* Let the ConfigWriter record the join, then check everything. */
	assert_int_equal(ig_store_flush(s, NULL), 0);
	st2 = stats(s);
	print_message("join: %" PRIu64 " joins, tablets %" PRIu64 " -> %" PRIu64 "\n",
		      st2.joins, st.tablets, st2.tablets);
	assert_true(st2.tablets < st.tablets);
	want = expect_dump(0, SPLIT_ROWS, SPLIT_VLEN, 13, keep_twentieth);
	got = su_dump(t);
	assert_string_equal(want, got);
	free(got);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	o.log_budget = 0;
	s = su_open(dir, &o);
	t = su_table(s, "t");
	assert_int_equal(stats(s).tablets, st2.tablets);
	got = su_dump(t);
	assert_string_equal(want, got);
	free(got);
	free(want);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* ---- Gc ---------------------------------------------------------------------------------- */

static void test_gc_files_and_segments(void **state)
{
	ig_store_options_t o = {.manual = true, .segment_bytes = 64 * KiB};
	ig_store_stats_t a, b;
	uint64_t want;
	size_t frags0, segs0, segs1;
	char dir[64], *before, *after;
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	for (int f = 0; f < 4; f++) {
		put_rows(t, (uint64_t)f * 300, 300, 200, 1, 17, 0);
		assert_int_equal(ig_store_flush(s, t), 0);
	}
	a = stats(s);
	assert_int_equal(a.fragments, 4);
	frags0 = su_count_files(dir, "frags", ".igf");
	assert_true(frags0 >= 4);
	segs0 = su_count_files(dir, "log", ".igl");
	assert_true(segs0 >= 3);
	before = su_dump(t);

	/* Compaction replaces the 4 files by 1; Gc deletes the 4. */
	assert_int_equal(ig_store_compact(s, t), 0);
	want = a.files_deleted + 4;
	if (!su_wait_stats(s, files_deleted_at_least, &want, 10000, &b))
		fail_msg("Gc deleted %" PRIu64 " files, expected %" PRIu64, b.files_deleted, want);
	assert_int_equal(b.fragments, 1);
	/* 4 files became 1, and the compaction flushed META into its first. */
	assert_true(wait_frag_files(dir, frags0 - 3 + 1, 10000));
	after = su_dump(t);
	assert_string_equal(before, after);
	free(after);

	/* Once every table and META are flushed, the log they covered goes
	 * (the compaction flushed META already). */
	assert_int_equal(ig_store_flush(s, NULL), 0);
	want = a.segments_deleted + 1;
	if (!su_wait_stats(s, segments_deleted_at_least, &want, 10000, &b))
		fail_msg("no log segment deleted (%zu segments)", segs0);
	segs1 = su_count_files(dir, "log", ".igl");
	print_message("gc: %zu -> %zu log segments, %" PRIu64 " deleted; %zu -> %zu fragment "
		      "files\n", segs0, segs1, b.segments_deleted, frags0,
		      su_count_files(dir, "frags", ".igf"));
	assert_true(segs1 < segs0);
	assert_true(b.log_bytes < 64 * KiB * 2);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	s = su_open(dir, &o);
	t = su_table(s, "t");
	after = su_dump(t);
	assert_string_equal(before, after);
	free(before);
	free(after);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* A full compaction leaves nothing for recovery to replay: the configs it
 * writes are the last txn of the log, and the trim passes them, so the
 * segment that held the loaded data goes too. */
static void test_compact_empties_log(void **state)
{
	ig_store_options_t o = {.manual = true};
	ig_store_stats_t b;
	uint64_t disk;
	size_t segs;
	char dir[64];
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");

	/* Past the size at which a trim rolls the segment (1 MiB). */
	put_rows(t, 0, 8000, 200, 1, 5, IG_STORE_SYNC);
	su_files(dir, "log", ".igl", &disk);
	assert_true(disk > 8000 * 200);
	assert_int_equal(ig_store_compact(s, t), 0);
	b = stats(s);
	segs = su_files(dir, "log", ".igl", &disk);
	print_message("after compaction: %zu log segments, %" PRIu64 " bytes on disk, %" PRIu64
		      " to replay\n", segs, disk, b.log_bytes);
	assert_int_equal(segs, 1);
	assert_int_equal(b.log_segments, 1);
	assert_true(disk < 4 * KiB);
	assert_true(b.log_bytes < 4 * KiB);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	s = su_open(dir, &o);
	t = su_table(s, "t");
	assert_int_equal(su_count(t, NULL), 8000);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* A scanner opened before a compaction reads the replaced files to the
 * end, although Gc removes their names meanwhile. */
static void test_gc_spares_open_scanner(void **state)
{
	ig_store_options_t o = {.manual = true};
	ig_scan_options_t so;
	ig_scanner_t *sc;
	ig_cell_t c;
	ig_store_stats_t a, b;
	uint64_t want;
	size_t cap = 1 << 20, len = 0;
	char dir[64], *expect, *got = malloc(cap);
	ig_store_t *s;
	ig_table_t *t;
	int rc;

	(void)state;
	assert_non_null(got);
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	for (int f = 0; f < 3; f++) {
		put_rows(t, (uint64_t)f * 700, 700, 150, 1, 19, 0);
		assert_int_equal(ig_store_flush(s, t), 0);
	}
	a = stats(s);
	assert_int_equal(a.fragments, 3);
	expect = expect_dump(0, 2100, 150, 19, NULL);

	ig_scan_options_init(&so);
	so.max_versions = 1;
	assert_int_equal(ig_scanner_open(t, &so, &sc), 0);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(ig_scanner_next(sc, &c), 1);
		len += (size_t)snprintf(got + len, cap - len, "%.*s=%.*s\n", (int)c.key.row_len,
					(const char *)c.key.row, (int)c.value_len,
					(const char *)c.value);
	}

	assert_int_equal(ig_store_compact(s, t), 0);
	want = a.files_deleted + 3;
	if (!su_wait_stats(s, files_deleted_at_least, &want, 10000, &b))
		fail_msg("Gc deleted %" PRIu64 " files, expected %" PRIu64, b.files_deleted, want);
	assert_true(wait_frag_files(dir, 2, 10000)); /* the table's one and META's */

	while ((rc = ig_scanner_next(sc, &c)) == 1) {
		assert_true(len + c.key.row_len + c.value_len + 3 < cap);
		len += (size_t)snprintf(got + len, cap - len, "%.*s=%.*s\n", (int)c.key.row_len,
					(const char *)c.key.row, (int)c.value_len,
					(const char *)c.value);
	}
	if (rc != 0)
		fail_msg("scan after Gc: %s", ig_scanner_error(sc));
	ig_scanner_close(sc);
	assert_string_equal(expect, got);
	free(got);
	got = su_dump(t);
	assert_string_equal(expect, got);
	free(got);
	free(expect);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static void test_drop_table_collects_files(void **state)
{
	ig_store_options_t o = {.manual = true};
	ig_store_stats_t a, b;
	uint64_t want;
	size_t files, f1;
	char dir[64], why[256], *want1, *want2, *got;
	ig_store_t *s;
	ig_table_t *t1, *t2;
	ig_cell_t cell = su_cell("x", "a:q", 9, "late");
	size_t len;
	void *blk;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "gone");
	su_create_table(s, "kept");
	t1 = su_table(s, "gone");
	t2 = su_table(s, "kept");
	for (int f = 0; f < 3; f++) {
		put_rows(t1, (uint64_t)f * 100, 100, 50, 1, 23, 0);
		assert_int_equal(ig_store_flush(s, t1), 0);
	}
	f1 = stats(s).fragments;
	assert_int_equal(f1, 3);
	for (int f = 0; f < 2; f++) {
		put_rows(t2, (uint64_t)f * 100, 100, 50, 1, 29, 0);
		assert_int_equal(ig_store_flush(s, t2), 0);
	}
	a = stats(s);
	files = su_count_files(dir, "frags", ".igf");
	assert_true(files >= 5);
	want1 = expect_dump(0, 300, 50, 23, NULL);
	want2 = expect_dump(0, 200, 50, 29, NULL);

	assert_int_equal(ig_store_drop_table(s, "gone"), 0);
	assert_int_equal(ig_store_drop_table(s, "gone"), IG_ENOTFOUND);
	want = a.files_deleted + f1;
	if (!su_wait_stats(s, files_deleted_at_least, &want, 10000, &b))
		fail_msg("Gc deleted %" PRIu64 " files after the drop, expected %" PRIu64,
			 b.files_deleted, want);
	assert_true(wait_frag_files(dir, files - f1, 10000));
	assert_int_equal(b.tables, 1);
	assert_int_equal(b.fragments, 2);

	/* The handle still reads the dropped data; writes through it fail. */
	got = su_dump(t1);
	assert_string_equal(want1, got);
	free(got);
	blk = su_pack(&cell, 1, &len);
	assert_int_equal(ig_store_apply(t1, blk, len, IG_STORE_ANY_TXN, IG_STORE_SYNC, NULL, why,
					sizeof why), IG_ENOTFOUND);
	free(blk);
	ig_table_release(t1);
	got = su_dump(t2);
	assert_string_equal(want2, got);
	free(got);
	ig_table_release(t2);
	assert_int_equal(ig_store_close(s), 0);

	s = su_open(dir, &o);
	assert_int_equal(ig_store_table(s, "gone", &t1), IG_ENOTFOUND);
	t2 = su_table(s, "kept");
	got = su_dump(t2);
	assert_string_equal(want2, got);
	free(got);
	assert_int_equal(su_count_files(dir, "frags", ".igf"), files - f1);
	ig_table_release(t2);
	assert_int_equal(ig_store_close(s), 0);
	free(want1);
	free(want2);
	su_remove_dir(dir);
}

/* ---- throttling ------------------------------------------------------------------------- */

/* A slow Serializer (zstd level 19) against a 1 MiB budget: writers slow
 * down instead of failing, and memory stays bounded. */
static void test_throttle_memory(void **state)
{
	ig_store_options_t o = {.memory_budget = 1 * MiB, .log_queue_bytes = 64 * KiB,
				.io_threads = 1, .split_bytes = UINT64_MAX,
				.compact_min_merge = 16, .compact_max_merge = 16};
	const uint64_t rows = 6144, vlen = 1000, per = 16;
	uint64_t peak = 0;
	ig_store_stats_t st;
	char dir[64];
	ig_store_t *s;
	ig_table_t *t;
	int64_t t0;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	create_g(s, "t", 0, 0, 19);
	t = su_table(s, "t");
	t0 = su_mono_ns();
	for (uint64_t i = 0; i < rows; i += per) {
		put_rows(t, i, per, vlen, 1, 31, 0); /* fails the test on any error */
		st = stats(s);
		if (st.memory_bytes > peak)
			peak = st.memory_bytes;
	}
	assert_int_equal(ig_store_sync(s, 0, IG_FOREVER), 0);
	st = stats(s);
	print_message("throttle (memory): %" PRIu64 " KiB in %" PRId64 " ms, throttled %" PRIu64
		      " ms, memory peak %" PRIu64 " KiB, %" PRIu64 " flushes\n",
		      rows * vlen / KiB, (su_mono_ns() - t0) / 1000000, st.throttled_ns / 1000000,
		      peak / KiB, st.flushes);
	assert_true(st.throttled_ns > 0);
	assert_true(peak <= 2 * o.memory_budget + 64 * KiB);
	assert_dump(t, 0, rows, vlen, 31, NULL);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static bool replay_under(const ig_store_stats_t *st, void *arg)
{
	return st->log_bytes < *(uint64_t *)arg;
}

/* A table that stops taking writes must not hold the log: its config,
 * written when it last flushed, says "replay from then", and no flush
 * rewrites it while it stays idle. Writes to another table then grow the
 * log recovery would replay until the throttle stops them for good (at
 * 1.5 log budgets), unless the Serializer brings the idle table's config
 * up to date. The busy table's writes stay under that mark here, so the
 * old code fails on the wait, not by hanging. */
static void test_idle_table_releases_log(void **state)
{
	ig_store_options_t o = {.log_budget = 64 * KiB};
	const uint64_t vlen = 1000, per = 4, under = 72, more = 640;
	uint64_t half = o.log_budget / 2;
	ig_store_stats_t st;
	char dir[64];
	ig_store_t *s;
	ig_table_t *idle, *busy;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "idle");
	su_create_table(s, "busy");
	idle = su_table(s, "idle");
	busy = su_table(s, "busy");
	put_rows(idle, 0, 8, vlen, 1, 5, 0);
	assert_int_equal(ig_store_flush(s, idle), 0);
	/* About 72 KiB: past half the budget (the Serializer acts), under
	 * 1.5 budgets (where the old code would block this thread). */
	for (uint64_t i = 0; i < under; i += per)
		put_rows(busy, i, per, vlen, 1, 7, 0);
	if (!su_wait_stats(s, replay_under, &half, 10000, &st))
		fail_msg("the log to replay stays at %" PRIu64 " KiB (budget %" PRIu64
			 " KiB): the idle table holds it", st.log_bytes / KiB, o.log_budget / KiB);
	/* Ten budgets more, none of it blocked for good. */
	for (uint64_t i = under; i < more; i += per)
		put_rows(busy, i, per, vlen, 1, 7, 0);
	assert_int_equal(ig_store_sync(s, 0, IG_FOREVER), 0);
	st = stats(s);
	print_message("idle table: %" PRIu64 " KiB written to the busy one, %" PRIu64
		      " KiB of log to replay, %" PRIu64 " flushes, throttled %" PRIu64 " ms\n",
		      more * vlen / KiB, st.log_bytes / KiB, st.flushes, st.throttled_ns / 1000000);
	assert_true(st.log_bytes <= o.log_budget + o.log_budget / 2);
	ig_table_release(idle);
	ig_table_release(busy);
	assert_int_equal(ig_store_close(s), 0);

	s = su_open(dir, &o);
	idle = su_table(s, "idle");
	busy = su_table(s, "busy");
	assert_dump(idle, 0, 8, vlen, 5, NULL);
	assert_dump(busy, 0, more, vlen, 7, NULL);
	ig_table_release(idle);
	ig_table_release(busy);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* Compaction debt alone must slow writers once it passes debt_soft. The
 * writer flushes every 64 KiB (memory stays far under its budget), so
 * similar small files pile up faster than a slow group (zstd 19) merges
 * them. Stats showing debt past debt_hard while no writer was ever slowed
 * break the promise of <ingot/store.h>. */
static void test_throttle_debt(void **state)
{
	ig_store_options_t o = {.split_bytes = UINT64_MAX, .debt_soft = 16 * KiB,
				.debt_hard = 64 * KiB};
	const uint64_t rows = 3072, vlen = 1000, per = 16;
	uint64_t max_debt = 0;
	ig_store_stats_t st;
	char dir[64];
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	create_g(s, "t", 0, 0, 19);
	t = su_table(s, "t");
	for (uint64_t i = 0; i < rows; i += per) {
		put_rows_perm(t, i, per, vlen, 1, 37, 32, 0, perm_rows, rows);
		if ((i / per) % 4 == 3)
			assert_int_equal(ig_store_flush(s, t), 0);
		st = stats(s);
		if (st.compaction_debt > max_debt)
			max_debt = st.compaction_debt;
	}
	assert_int_equal(ig_store_sync(s, 0, IG_FOREVER), 0);
	st = stats(s);
	print_message("throttle (debt): debt max %" PRIu64 " KiB (soft %" PRIu64 ", hard %"
		      PRIu64 "), throttled %" PRIu64 " ms, %" PRIu64 " flushes, %" PRIu64
		      " compactions\n", max_debt / KiB, o.debt_soft / KiB, o.debt_hard / KiB,
		      st.throttled_ns / 1000000, st.flushes, st.compactions);
	assert_true(max_debt > o.debt_hard); /* the load did build debt */
	assert_true(st.throttled_ns > 0);
	assert_dump(t, 0, rows, vlen, 37, NULL);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* ---- concurrency: every scan is one snapshot ------------------------------------------ */

#define CC_WRITERS 3
#define CC_PAIRS 48
#define CC_WRITES 700
#define CC_VLEN 300

typedef struct cc {
	ig_store_t *s;
	ig_table_t *t;
	atomic_int writers_left;
	atomic_int errors;
	atomic_int open_failures;       /* ig_scanner_open errors (not snapshots) */
	atomic_uint_fast64_t scans;
	char first_error[256];
	pthread_mutex_t mu;
} cc_t;

typedef struct cc_writer {
	cc_t *cc;
	int id;
} cc_writer_t;

static void cc_fail(cc_t *cc, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&cc->mu);
	if (atomic_fetch_add(&cc->errors, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(cc->first_error, sizeof cc->first_error, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&cc->mu);
}

/* Writer w's pair k is rows "a<w>_<k>" and "z<w>_<k>", far apart (other
 * tablets once the table splits), always written together with one value
 * "<i>|<letters>". */
static void *cc_write(void *arg)
{
	cc_writer_t *w = arg;
	char ra[16], rz[16], val[CC_VLEN + 16];

	for (int i = 1; i <= CC_WRITES; i++) {
		int k = (i * 7) % CC_PAIRS;
		ig_cell_t c[2];
		size_t len;
		void *b;
		char why[256];
		int rc;

		snprintf(ra, sizeof ra, "a%d_%02d", w->id, k);
		snprintf(rz, sizeof rz, "z%d_%02d", w->id, k);
		snprintf(val, sizeof val, "%d|", i);
		su_fill(val + strlen(val), CC_VLEN, (uint64_t)i * 31 + (uint64_t)w->id);
		c[0] = su_cell(ra, "a:q", i, val);
		c[1] = su_cell(rz, "a:q", i, val);
		if (ig_packed_size(c, 2, &len) != 0 || !(b = malloc(len)) ||
		    ig_packed_encode(c, 2, 0, b, len, &len) != 0) {
			cc_fail(w->cc, "encode");
			break;
		}
		rc = ig_store_apply(w->cc->t, b, len, IG_STORE_ANY_TXN,
				    i % 50 == 0 ? IG_STORE_SYNC : 0, NULL, why, sizeof why);
		free(b);
		if (rc != 0) {
			cc_fail(w->cc, "writer %d: apply %d: %s", w->id, i, why);
			break;
		}
	}
	atomic_fetch_sub(&w->cc->writers_left, 1);
	return NULL;
}

/* One scan: each z row must carry its a row's value, and no pair may be
 * half there. Returns the pairs seen. */
static int cc_scan_once(cc_t *cc, uint64_t *last_snap)
{
	int a_val[CC_WRITERS][CC_PAIRS], seen = 0, rc;
	ig_scan_options_t so;
	ig_scanner_t *sc;
	ig_cell_t c;

	memset(a_val, 0, sizeof a_val); /* 0: not seen */
	ig_scan_options_init(&so);
	so.max_versions = 1;
	if ((rc = ig_scanner_open(cc->t, &so, &sc)) != 0) {
		/* Counted apart, so snapshot checks go on meanwhile. */
		if (atomic_fetch_add(&cc->open_failures, 1) == 0)
			print_message("concurrent: ig_scanner_open: %s\n", ig_strerror(rc));
		return -1;
	}
	if (ig_scanner_snapshot(sc) < *last_snap)
		cc_fail(cc, "snapshot went back from %" PRIu64 " to %" PRIu64, *last_snap,
			ig_scanner_snapshot(sc));
	*last_snap = ig_scanner_snapshot(sc);
	while ((rc = ig_scanner_next(sc, &c)) == 1) {
		const char *r = c.key.row;
		int w = -1, k = -1, v = 0;

		/* rows are "a<w>_<kk>" (not NUL-terminated); values "<i>|..." */
		if (c.key.row_len == 5 && r[2] == '_')
			w = r[1] - '0', k = (r[3] - '0') * 10 + (r[4] - '0');
		for (uint32_t i = 0; i < c.value_len && ((const char *)c.value)[i] != '|'; i++)
			v = v * 10 + (((const char *)c.value)[i] - '0');
		if (w < 0 || w >= CC_WRITERS || k < 0 || k >= CC_PAIRS || v <= 0) {
			cc_fail(cc, "unexpected cell %.*s", (int)c.key.row_len, r);
			continue;
		}
		if (r[0] == 'a') {
			a_val[w][k] = v;
		} else if (a_val[w][k] != v) {
			cc_fail(cc, "snapshot %" PRIu64 ": %.*s has %d but its pair has %d",
				ig_scanner_snapshot(sc), (int)c.key.row_len, r, v, a_val[w][k]);
		} else {
			a_val[w][k] = -v; /* matched */
			seen++;
		}
	}
	if (rc != 0)
		cc_fail(cc, "scan: %s", ig_scanner_error(sc));
	for (int w = 0; w < CC_WRITERS; w++)
		for (int k = 0; k < CC_PAIRS; k++)
			if (a_val[w][k] > 0)
				cc_fail(cc, "snapshot %" PRIu64 ": a%d_%02d without z%d_%02d",
					ig_scanner_snapshot(sc), w, k, w, k);
	ig_scanner_close(sc);
	atomic_fetch_add(&cc->scans, 1);
	return seen;
}

static void *cc_scan(void *arg)
{
	cc_t *cc = arg;
	uint64_t snap = 0;
	int last = 0;

	while (atomic_load(&cc->writers_left) > 0 && atomic_load(&cc->errors) == 0) {
		int seen = cc_scan_once(cc, &snap);

		if (seen < 0)
			continue;
		if (seen < last)
			cc_fail(cc, "a later scan saw %d pairs, an earlier one %d", seen, last);
		if (seen > last)
			last = seen;
	}
	return NULL;
}

static void test_concurrent_scans_see_snapshots(void **state)
{
	ig_store_options_t o = {.memory_budget = 1 * MiB, .split_bytes = 512 * KiB};
	pthread_t wt[CC_WRITERS], st_thread;
	cc_writer_t w[CC_WRITERS];
	cc_t cc = {0};
	ig_store_stats_t st;
	uint64_t snap = 0, maint = 0;
	char dir[64];

	(void)state;
	su_make_dir(dir, sizeof dir);
	cc.s = su_open(dir, &o);
	su_create_table(cc.s, "t");
	cc.t = su_table(cc.s, "t");
	pthread_mutex_init(&cc.mu, NULL);
	atomic_init(&cc.writers_left, CC_WRITERS);
	for (int i = 0; i < CC_WRITERS; i++) {
		w[i] = (cc_writer_t){.cc = &cc, .id = i};
		assert_int_equal(pthread_create(&wt[i], NULL, cc_write, &w[i]), 0);
	}
	assert_int_equal(pthread_create(&st_thread, NULL, cc_scan, &cc), 0);
	/* Flushes and compactions race the writers and the scanner. */
	while (atomic_load(&cc.writers_left) > 0 && atomic_load(&cc.errors) == 0) {
		assert_int_equal(ig_store_flush(cc.s, maint % 2 ? cc.t : NULL), 0);
		if (maint % 3 == 2)
			assert_int_equal(ig_store_compact(cc.s, cc.t), 0);
		maint++;
	}
	for (int i = 0; i < CC_WRITERS; i++)
		pthread_join(wt[i], NULL);
	pthread_join(st_thread, NULL);
	assert_int_equal(ig_store_sync(cc.s, 0, IG_FOREVER), 0);
	if (atomic_load(&cc.errors) == 0 &&
	    cc_scan_once(&cc, &snap) != CC_WRITERS * CC_PAIRS)
		cc_fail(&cc, "the final scan misses pairs");
	st = stats(cc.s);
	print_message("concurrent: %" PRIu64 " scans (%d failed to open), %" PRIu64
		      " maintenance rounds, %" PRIu64 " tablets, %" PRIu64 " splits, %" PRIu64
		      " flushes, %" PRIu64 " compactions\n", (uint64_t)atomic_load(&cc.scans),
		      atomic_load(&cc.open_failures), maint, st.tablets, st.splits, st.flushes,
		      st.compactions);
	if (atomic_load(&cc.errors))
		fail_msg("%d inconsistencies; first: %s", atomic_load(&cc.errors), cc.first_error);
	/* <ingot/store.h> lists no IG_EAGAIN for ig_scanner_open: writers
	 * must not make a scan fail to open. */
	assert_int_equal(atomic_load(&cc.open_failures), 0);
	assert_true(atomic_load(&cc.scans) > 0);
	pthread_mutex_destroy(&cc.mu);
	ig_table_release(cc.t);
	assert_int_equal(ig_store_close(cc.s), 0);
	su_remove_dir(dir);
}

/* ---- checksum errors ------------------------------------------------------------------------ */

/* The big-endian u64 at off in path (off < 0: from the end). */
static uint64_t read_be64(const char *path, long off)
{
	FILE *f = fopen(path, "rb");
	uint8_t b[8];
	uint64_t v = 0;

	assert_non_null(f);
	assert_int_equal(fseek(f, off, off < 0 ? SEEK_END : SEEK_SET), 0);
	assert_int_equal(fread(b, 1, 8, f), 8);
	fclose(f);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void flip_byte(const char *path, long off)
{
	FILE *f = fopen(path, "r+b");
	int ch;

	assert_non_null(f);
	assert_int_equal(fseek(f, off, SEEK_SET), 0);
	ch = fgetc(f);
	assert_int_equal(fseek(f, off, SEEK_SET), 0);
	assert_int_equal(fputc(ch ^ 0x5a, f), ch ^ 0x5a);
	assert_int_equal(fclose(f), 0);
}

static void test_checksum_error_names_file_and_block(void **state)
{
	ig_store_options_t o = {.manual = true};
	char dir[64], path[256], name[64] = "";
	ig_scanner_t *sc;
	ig_cell_t c;
	ig_store_t *s;
	ig_table_t *t;
	DIR *d;
	struct dirent *e;
	uint64_t data_end;
	int rc, n = 0;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = su_open(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	put_rows(t, 0, 500, 100, 1, 41, 0);
	assert_int_equal(ig_store_flush(s, t), 0);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	/* The table's one fragment file: flip a byte two thirds into its data
	 * blocks (the footer's index offset is where they end). */
	snprintf(path, sizeof path, "%s/frags", dir);
	assert_non_null(d = opendir(path));
	while ((e = readdir(d)))
		if (strlen(e->d_name) == 20 && strstr(e->d_name, ".igf"))
			snprintf(name, sizeof name, "%s", e->d_name);
	closedir(d);
	assert_int_equal(su_count_files(dir, "frags", ".igf"), 1);
	snprintf(path, sizeof path, "%s/frags/%s", dir, name);
	data_end = read_be64(path, -80 + 8);
	assert_true(data_end > 3 * 4096);
	flip_byte(path, (long)(data_end * 2 / 3));

	s = su_open(dir, &o);
	t = su_table(s, "t");
	assert_int_equal(ig_scanner_open(t, NULL, &sc), 0);
	while ((rc = ig_scanner_next(sc, &c)) == 1)
		n++;
	print_message("checksum: %d cells, then: %s\n", n, ig_scanner_error(sc));
	assert_int_equal(rc, IG_ECORRUPT);
	assert_true(n > 0 && n < 500); /* the cells before the bad block, none after */
	assert_non_null(strstr(ig_scanner_error(sc), name));
	assert_non_null(strstr(ig_scanner_error(sc), "block "));
	assert_int_equal(ig_scanner_next(sc, &c), IG_ECORRUPT); /* sticky */
	ig_scanner_close(sc);

	/* A bad first block fails the open itself (it reads that block). */
	flip_byte(path, 40);
	rc = ig_scanner_open(t, NULL, &sc);
	if (rc == 0) {
		while ((rc = ig_scanner_next(sc, &c)) == 1)
			fail_msg("a cell came from a corrupt block");
		ig_scanner_close(sc);
	}
	assert_int_equal(rc, IG_ECORRUPT);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

/* ---- the example of docs/store.md ----------------------------------------------------------- */

/* The program between the markers is the one in docs/store.md, byte for
 * byte (test_doc_example compares the two); its main is
 * renamed so this file can call it. */
#define main doc_example_main
/* doc-example-begin */
/* sensors.c: a small program on the embedded store. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ingot/store.h>

/* Writes one reading (two cells of one row) as one mutation: one txn,
 * visible to scans all at once, durable when the call returns. */
static int put_reading(ig_table_t *t, const char *row, int64_t ts, const char *temp,
		       const char *json)
{
	ig_cell_t cells[2] = {
		{.key = {.row = row, .row_len = (uint32_t)strlen(row), .column = "m:temp",
			 .column_len = 6, .timestamp = ts},
		 .kind = IG_CELL_SET, .value = temp, .value_len = (uint32_t)strlen(temp)},
		{.key = {.row = row, .row_len = (uint32_t)strlen(row), .column = "raw:json",
			 .column_len = 8, .timestamp = ts},
		 .kind = IG_CELL_SET, .value = json, .value_len = (uint32_t)strlen(json)},
	};
	uint8_t block[1024];
	size_t len;
	char why[256];
	int rc = ig_packed_encode(cells, 2, 0, block, sizeof block, &len);

	if (rc != 0) {
		fprintf(stderr, "encode %s: %s\n", row, ig_strerror(rc));
		return rc;
	}
	rc = ig_store_apply(t, block, len, IG_STORE_ANY_TXN, IG_STORE_SYNC, NULL, why,
			    sizeof why);
	if (rc != 0)
		fprintf(stderr, "apply %s: %s\n", row, why);
	return rc;
}

/* Erases one column of a row: hides every version at or below ts. */
static int erase_temp(ig_table_t *t, const char *row, int64_t ts)
{
	ig_cell_t cell = {.key = {.row = row, .row_len = (uint32_t)strlen(row),
				  .column = "m:temp", .column_len = 6, .timestamp = ts},
			  .kind = IG_CELL_ERASURE};
	uint8_t block[256];
	size_t len;
	char why[256];
	int rc = ig_packed_encode(&cell, 1, 0, block, sizeof block, &len);

	if (rc == 0)
		rc = ig_store_apply(t, block, len, IG_STORE_ANY_TXN, IG_STORE_SYNC, NULL, why,
				    sizeof why);
	return rc;
}

/* Prints the newest temperature of every row starting with prefix;
 * returns how many it printed, or a negative error. */
static int print_temps(ig_table_t *t, const char *prefix)
{
	static const char *const fams[] = {"m"};
	ig_scan_options_t o;
	ig_scanner_t *sc;
	ig_cell_t c;
	int rc, n = 0;

	ig_scan_options_init(&o);
	o.prefix = prefix;
	o.prefix_len = (uint32_t)strlen(prefix);
	o.families = fams;
	o.nfamilies = 1;
	o.max_versions = 1;
	if ((rc = ig_scanner_open(t, &o, &sc)) != 0)
		return rc;
	while ((rc = ig_scanner_next(sc, &c)) == 1) {
		printf("%.*s %.*s\n", (int)c.key.row_len, (const char *)c.key.row,
		       (int)c.value_len, (const char *)c.value);
		n++;
	}
	if (rc < 0)
		fprintf(stderr, "scan: %s\n", ig_scanner_error(sc));
	ig_scanner_close(sc);
	return rc < 0 ? rc : n;
}

int main(int argc, char **argv)
{
	static const char *const metrics[] = {"m"}, *const payload[] = {"raw"};
	ig_group_config_t groups[2] = {
		{.name = "metrics", .families = metrics, .nfamilies = 1,
		 .compression = IG_COMPRESSION_ZSTD, .level = 3, .max_history = 10},
		{.name = "payload", .families = payload, .nfamilies = 1,
		 .compression = IG_COMPRESSION_ZSTD, .level = 9, .block_size = 256 << 10,
		 .max_age = 30 * 24 * 3600},
	};
	ig_schema_config_t schema = {.groups = groups, .ngroups = 2};
	ig_store_options_t opts = {.memory_budget = 16 << 20};
	const char *dir = argc > 1 ? argv[1] : "sensors.db";
	int64_t now = (int64_t)time(NULL) * 1000000; /* microseconds */
	ig_store_stats_t st;
	ig_store_t *s;
	ig_table_t *t;
	char why[256];
	int rc, n;

	if ((rc = ig_store_open(dir, &opts, &s, why, sizeof why)) != 0) {
		fprintf(stderr, "open %s: %s\n", dir, why);
		return 1;
	}
	rc = ig_store_create_table(s, "readings", &schema, why, sizeof why);
	if (rc != 0 && rc != IG_EEXIST) {
		fprintf(stderr, "create: %s\n", why);
		ig_store_close(s);
		return 1;
	}
	if ((rc = ig_store_table(s, "readings", &t)) != 0) {
		fprintf(stderr, "table: %s\n", ig_strerror(rc));
		ig_store_close(s);
		return 1;
	}
	rc = put_reading(t, "dev1/0001", now, "21.5", "{\"t\":21.5}");
	if (rc == 0)
		rc = put_reading(t, "dev1/0002", now, "22.0", "{\"t\":22.0}");
	if (rc == 0)
		rc = put_reading(t, "dev2/0001", now, "19.0", "{\"t\":19.0}");
	if (rc == 0)
		rc = erase_temp(t, "dev1/0002", now);
	n = rc == 0 ? print_temps(t, "dev1/") : rc;   /* prints dev1/0001 21.5 */

	/* Maintenance runs on its own; these force it now. */
	if (n == 1)
		rc = ig_store_compact(s, NULL);
	ig_store_stats(s, &st);
	printf("txn %" PRIu64 ", %" PRIu64 " fragments, %" PRIu64 " cells on disk\n",
	       st.durable_txn, st.fragments, st.disk_cells);
	ig_table_release(t);
	if (ig_store_close(s) != 0 || n != 1 || rc != 0)
		return 1;

	/* Reopening recovers the same table. */
	if (ig_store_open(dir, &opts, &s, why, sizeof why) != 0) {
		fprintf(stderr, "reopen %s: %s\n", dir, why);
		return 1;
	}
	rc = ig_store_table(s, "readings", &t);
	n = rc == 0 ? print_temps(t, "dev") : rc;     /* dev1/0001 and dev2/0001 */
	if (rc == 0)
		ig_table_release(t);
	ig_store_close(s);
	return n == 2 ? 0 : 1;
}
/* doc-example-end */
#undef main

/* The text between the markers in `path` (after the line holding begin,
 * up to the line holding end), or NULL if the file is not there.
 * Ownership: the caller frees it. */
static char *region(const char *path, const char *begin, const char *end)
{
	FILE *f = fopen(path, "rb");
	char *buf, *b, *e;
	long len;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	if (!(b = strstr(buf, begin)) || !(b = strchr(b + strlen(begin), '\n')) ||
	    !(e = strstr(b + 1, end))) {
		free(buf);
		return NULL;
	}
	while (e > b && e[-1] != '\n')
		e--;
	memmove(buf, b + 1, (size_t)(e - b - 1));
	buf[e - b - 1] = 0;
	return buf;
}

/* A file of the source tree (the build passes its root). */
static void source_path(const char *rel, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", INGOT_SOURCE_ROOT, rel);
}

static void test_doc_example(void **state)
{
	char dir[64], sub[96], doc_path[600], src_path[600];
	char *argv[] = {"sensors", sub, NULL};
	char *doc, *src;
	ig_store_t *s;
	ig_table_t *t;

	(void)state;
	su_make_dir(dir, sizeof dir);
	snprintf(sub, sizeof sub, "%s/sensors.db", dir);
	assert_int_equal(doc_example_main(2, argv), 0);
	/* Run again: the table exists, the readings are rewritten. */
	assert_int_equal(doc_example_main(2, argv), 0);
	s = su_open(sub, NULL);
	t = su_table(s, "readings");
	{
		ig_scan_options_t so;

		ig_scan_options_init(&so);
		so.max_versions = 1;
		/* dev1/0001 and dev2/0001 temps, three payloads (dev1/0002's
		 * temp is erased) */
		assert_int_equal(su_count(t, &so), 5);
	}
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);

	source_path("docs/store.md", doc_path, sizeof doc_path);
	source_path("tests/actors/test_store_maint.c", src_path, sizeof src_path);
	doc = region(doc_path, "<!-- example: test_doc_example -->\n```c", "```\n");
	src = region(src_path, "/* doc-example-begin */", "/* doc-example-end */");
	assert_non_null(doc);
	assert_non_null(src);
	assert_string_equal(doc, src);
	free(doc);
	free(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_moves_memory_to_disk),
		cmocka_unit_test(test_auto_flush_bounds_memory),
		cmocka_unit_test(test_compact_one_fragment_per_group),
		cmocka_unit_test(test_compact_reclaims_erasures),
		cmocka_unit_test(test_compact_max_history),
		cmocka_unit_test(test_compact_max_age),
		cmocka_unit_test(test_tiered_debt_exposed_and_paid),
		cmocka_unit_test(test_tiered_bounds_fragments),
		cmocka_unit_test(test_split_at_median),
		cmocka_unit_test(test_sequential_flushes_stay),
		cmocka_unit_test(test_join_small_neighbours),
		cmocka_unit_test(test_gc_files_and_segments),
		cmocka_unit_test(test_compact_empties_log),
		cmocka_unit_test(test_gc_spares_open_scanner),
		cmocka_unit_test(test_drop_table_collects_files),
		cmocka_unit_test(test_throttle_memory),
		cmocka_unit_test(test_throttle_debt),
		cmocka_unit_test(test_idle_table_releases_log),
		cmocka_unit_test(test_concurrent_scans_see_snapshots),
		cmocka_unit_test(test_checksum_error_names_file_and_block),
		cmocka_unit_test(test_doc_example),
	};

	/* STORE_TEST_FILTER=test_gc_* runs some of them (cmocka's glob). */
	if (getenv("STORE_TEST_FILTER"))
		cmocka_set_test_filter(getenv("STORE_TEST_FILTER"));
	wd_start(150);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
