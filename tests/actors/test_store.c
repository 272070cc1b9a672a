/* Tests of the embedded store's API (<ingot/store.h>): tables, applies,
 * scans, conflicts, bad input, and reopening a closed store. Flushes,
 * compaction, splits and crashes have their own files. */
#include "store_util.h"
#include "watchdog.h"

static ig_store_t *open_store(const char *dir, bool manual)
{
	ig_store_options_t o = {.manual = manual};
	ig_store_t *s;
	char why[256] = "";

	if (ig_store_open(dir, &o, &s, why, sizeof why) != 0)
		fail_msg("open %s: %s", dir, why);
	return s;
}

static void test_put_scan_reopen(void **state)
{
	char dir[64];
	ig_store_t *s;
	ig_table_t *t;
	char *d;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = open_store(dir, true);
	su_create_table(s, "events");
	assert_int_equal(ig_store_table(s, "events", &t), 0);
	su_put(t, "r2", "two", 1);
	su_put(t, "r1", "one", 1);
	su_put(t, "r3", "three", 1);
	su_put(t, "r2", NULL, 2); /* an erasure hides r2 */
	d = su_dump(t);
	assert_string_equal(d, "r1=one\nr3=three\n");
	free(d);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	/* Everything comes back from the log. */
	s = open_store(dir, true);
	assert_int_equal(ig_store_table(s, "events", &t), 0);
	d = su_dump(t);
	assert_string_equal(d, "r1=one\nr3=three\n");
	free(d);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static void test_flush_then_reopen(void **state)
{
	char dir[64], row[32], val[32];
	ig_store_t *s;
	ig_table_t *t;
	ig_store_stats_t st;
	char *before, *after;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = open_store(dir, true);
	su_create_table(s, "t");
	assert_int_equal(ig_store_table(s, "t", &t), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(row, sizeof row, "row%04d", i);
		snprintf(val, sizeof val, "v%d", i);
		su_put(t, row, val, 1);
	}
	assert_int_equal(ig_store_flush(s, NULL), 0);
	for (int i = 0; i < 200; i += 2) {
		snprintf(row, sizeof row, "row%04d", i);
		su_put(t, row, "new", 2);
	}
	ig_store_stats(s, &st);
	assert_true(st.fragments >= 1);
	assert_true(st.flushes >= 1);
	before = su_dump(t);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	s = open_store(dir, true);
	assert_int_equal(ig_store_table(s, "t", &t), 0);
	after = su_dump(t);
	assert_string_equal(before, after);
	ig_store_stats(s, &st);
	assert_true(st.fragments >= 1);
	free(before);
	free(after);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static void test_bad_block_and_family(void **state)
{
	char dir[64], why[256] = "";
	ig_store_t *s;
	ig_table_t *t;
	uint8_t junk[40] = {1, 2, 3};
	ig_cell_t c = {.key = {.row = "r", .row_len = 1, .column = "zz:q", .column_len = 4},
		       .value = "x", .value_len = 1};
	uint8_t buf[256];
	size_t len;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = open_store(dir, true);
	su_create_table(s, "t");
	assert_int_equal(ig_store_table(s, "t", &t), 0);
	assert_int_equal(ig_store_apply(t, junk, sizeof junk, IG_STORE_ANY_TXN, 0, NULL, why,
					sizeof why), IG_EINVAL);
	assert_non_null(strstr(why, "byte offset"));
	assert_int_equal(ig_packed_encode(&c, 1, 0, buf, sizeof buf, &len), 0);
	assert_int_equal(ig_store_apply(t, buf, len, IG_STORE_ANY_TXN, 0, NULL, why, sizeof why),
			 IG_EINVAL);
	assert_non_null(strstr(why, "zz"));
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static void test_conflict(void **state)
{
	char dir[64], why[256];
	ig_store_t *s;
	ig_table_t *t;
	const char *row = "r", *val = "x";
	void *b;
	size_t len;
	uint64_t t1, t2;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = open_store(dir, true);
	su_create_table(s, "t");
	assert_int_equal(ig_store_table(s, "t", &t), 0);
	t1 = su_put(t, "r", "a", 1);
	t2 = su_put(t, "r", "b", 2);
	len = su_block(&row, &val, 1, 3, &b);
	assert_int_equal(ig_store_apply(t, b, len, t1, 0, NULL, why, sizeof why), IG_ECONFLICT);
	assert_int_equal(ig_store_apply(t, b, len, t2, IG_STORE_SYNC, NULL, why, sizeof why), 0);
	free(b);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

static void test_tables_ddl(void **state)
{
	static const char *const fams[] = {"a", "b"};
	ig_group_config_t g = {.name = "g", .families = fams, .nfamilies = 2,
			       .compression = IG_COMPRESSION_NONE, .max_history = 2};
	ig_schema_config_t c = {.groups = &g, .ngroups = 1};
	char dir[64], why[256];
	ig_store_t *s;
	ig_table_t *t;
	ig_schema_t *sc;

	(void)state;
	su_make_dir(dir, sizeof dir);
	s = open_store(dir, true);
	su_create_table(s, "a");
	su_create_table(s, "b");
	assert_int_equal(ig_store_create_table(s, "a", &c, why, sizeof why), IG_EEXIST);
	assert_int_equal(ig_store_create_table(s, "bad name", &c, why, sizeof why), IG_EINVAL);
	assert_int_equal(ig_store_alter_table(s, "a", &c, why, sizeof why), 0);
	assert_int_equal(ig_store_drop_table(s, "b"), 0);
	assert_int_equal(ig_store_table(s, "b", &t), IG_ENOTFOUND);
	assert_int_equal(ig_store_close(s), 0);

	s = open_store(dir, true);
	assert_int_equal(ig_store_table(s, "b", &t), IG_ENOTFOUND);
	assert_int_equal(ig_store_table(s, "a", &t), 0);
	sc = ig_table_schema(t);
	assert_int_equal(ig_schema_group(sc, 0)->max_history, 2);
	assert_int_equal(ig_schema_group(sc, 0)->compression, IG_COMPRESSION_NONE);
	ig_schema_unref(sc);
	ig_table_release(t);
	su_create_table(s, "b"); /* the name is free again */
	assert_int_equal(ig_store_close(s), 0);
	su_remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_scan_reopen),
		cmocka_unit_test(test_flush_then_reopen),
		cmocka_unit_test(test_bad_block_and_family),
		cmocka_unit_test(test_conflict),
		cmocka_unit_test(test_tables_ddl),
	};

	wd_start(150);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
