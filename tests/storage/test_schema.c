/* Tests of schemas (storage/schema.c): building and reading back, the
 * family -> group map with and without a wildcard group, every validation
 * rule with the exact reason it gives, and the check of packed mutations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ingot/storage.h>

#include "cells.h"

static const char *const hot_fams[] = {"meta", "idx"};
static const char *const cold_fams[] = {"raw", "blob"};

/* A valid two-group schema; tests copy and break it. */
static ig_group_config_t groups[2];

static int reset(void **unused)
{
	(void)unused;
	groups[0] = (ig_group_config_t){
		.name = "hot", .families = hot_fams, .nfamilies = 2,
		.compression = IG_COMPRESSION_NONE, .block_size = 4096, .in_memory = true,
		.max_history = 1,
	};
	groups[1] = (ig_group_config_t){
		.name = "cold", .families = cold_fams, .nfamilies = 2,
		.compression = IG_COMPRESSION_ZSTD, .level = 3, .max_age = 86400,
	};
	return 0;
}

static const ig_schema_config_t two = {.groups = groups, .ngroups = 2};

/* Asserts ig_schema_validate and ig_schema_create both refuse cfg with
 * exactly this reason, and create leaves *out alone. */
static void assert_refused(const ig_schema_config_t *cfg, const char *reason)
{
	char why[512];
	ig_schema_t *s = (ig_schema_t *)&why;  /* a sentinel, never dereferenced */

	memset(why, 0, sizeof why);
	assert_int_equal(ig_schema_validate(cfg, why, sizeof why), IG_EINVAL);
	assert_string_equal(why, reason);
	memset(why, 0, sizeof why);
	assert_int_equal(ig_schema_create(cfg, &s, why, sizeof why), IG_EINVAL);
	assert_string_equal(why, reason);
	assert_ptr_equal(s, (ig_schema_t *)&why);
	/* why is optional. */
	assert_int_equal(ig_schema_validate(cfg, NULL, 0), IG_EINVAL);
}

/* ---- building and lookup ------------------------------------------------------ */

static void test_create_and_read_back(void **unused)
{
	(void)unused;
	char name0[] = "hot", fam0[] = "meta";
	const char *fams[] = {fam0, "idx"};
	char why[128] = "untouched";
	ig_schema_t *s = NULL;

	groups[0].name = name0;
	groups[0].families = fams;
	assert_int_equal(ig_schema_validate(&two, why, sizeof why), 0);
	assert_int_equal(ig_schema_create(&two, &s, why, sizeof why), 0);
	assert_string_equal(why, "untouched");
	assert_non_null(s);

	/* The schema holds its own copies. */
	name0[0] = 'X';
	fam0[0] = 'X';
	assert_int_equal(ig_schema_group_count(s), 2);
	const ig_group_config_t *g = ig_schema_group(s, 0);
	assert_string_equal(g->name, "hot");
	assert_int_equal(g->nfamilies, 2);
	assert_string_equal(g->families[0], "meta");
	assert_string_equal(g->families[1], "idx");
	assert_int_equal(g->block_size, 4096);
	assert_true(g->in_memory);
	assert_int_equal(g->max_history, 1);
	g = ig_schema_group(s, 1);
	assert_string_equal(g->name, "cold");
	assert_int_equal(g->compression, IG_COMPRESSION_ZSTD);
	assert_int_equal(g->level, 3);
	assert_int_equal(g->block_size, IG_BLOCK_SIZE_DEFAULT);  /* 0 resolved */
	assert_int_equal(g->max_age, 86400);
	assert_false(g->wildcard);
	assert_null(ig_schema_group(s, 2));

	/* References: the last unref frees (ASan's leak check sees the rest). */
	assert_ptr_equal(ig_schema_ref(s), s);
	ig_schema_unref(s);
	assert_string_equal(ig_schema_group(s, 0)->name, "hot");
	ig_schema_unref(s);
	ig_schema_unref(NULL);
}

static void test_group_of(void **unused)
{
	(void)unused;
	ig_schema_t *s;
	size_t g = 99;

	assert_int_equal(ig_schema_create(&two, &s, NULL, 0), 0);
	assert_int_equal(ig_schema_group_of(s, "meta", 4, &g), 0);
	assert_int_equal(g, 0);
	assert_int_equal(ig_schema_group_of(s, "idx", 3, &g), 0);
	assert_int_equal(g, 0);
	assert_int_equal(ig_schema_group_of(s, "blob", 4, &g), 0);
	assert_int_equal(g, 1);
	assert_int_equal(ig_schema_group_of(s, "raw", 3, &g), 0);
	assert_int_equal(g, 1);
	g = 99;
	assert_int_equal(ig_schema_group_of(s, "me", 2, &g), IG_ENOTFOUND);  /* a prefix */
	assert_int_equal(ig_schema_group_of(s, "metas", 5, &g), IG_ENOTFOUND);
	assert_int_equal(ig_schema_group_of(s, "zzz", 3, &g), IG_ENOTFOUND);
	assert_int_equal(ig_schema_group_of(s, "", 0, &g), IG_ENOTFOUND);
	assert_int_equal(g, 99);
	ig_schema_unref(s);

	/* A wildcard group takes what the others do not name, and may name
	 * families of its own. */
	ig_group_config_t three[3] = {groups[0], groups[1],
				      {.name = "rest", .wildcard = true, .families = NULL}};
	ig_schema_config_t cfg = {three, 3};
	assert_int_equal(ig_schema_create(&cfg, &s, NULL, 0), 0);
	assert_int_equal(ig_schema_group_of(s, "zzz", 3, &g), 0);
	assert_int_equal(g, 2);
	assert_int_equal(ig_schema_group_of(s, "raw", 3, &g), 0);
	assert_int_equal(g, 1);
	ig_schema_unref(s);

	three[2].families = (const char *const[]){"own"};
	three[2].nfamilies = 1;
	assert_int_equal(ig_schema_create(&cfg, &s, NULL, 0), 0);
	assert_int_equal(ig_schema_group_of(s, "own", 3, &g), 0);
	assert_int_equal(g, 2);
	assert_int_equal(ig_schema_group_of(s, "other", 5, &g), 0);
	assert_int_equal(g, 2);
	ig_schema_unref(s);
}

/* A schema with many families finds each one (the index is sorted). */
static void test_many_families(void **unused)
{
	(void)unused;
	enum { G = 16, F = 40 };
	static char names[G][F][12];
	static const char *lists[G][F];
	static char gnames[G][8];
	ig_group_config_t gs[G];
	ig_schema_t *s;

	for (int i = 0; i < G; i++) {
		snprintf(gnames[i], sizeof gnames[i], "g%d", i);
		for (int j = 0; j < F; j++) {
			/* Interleave the groups' names in sorted order. */
			snprintf(names[i][j], sizeof names[i][j], "f%03d", j * G + (G - 1 - i));
			lists[i][j] = names[i][j];
		}
		gs[i] = (ig_group_config_t){.name = gnames[i], .families = lists[i], .nfamilies = F};
	}
	ig_schema_config_t cfg = {gs, G};
	assert_int_equal(ig_schema_create(&cfg, &s, NULL, 0), 0);
	for (int i = 0; i < G; i++)
		for (int j = 0; j < F; j++) {
			size_t g;
			assert_int_equal(ig_schema_group_of(s, names[i][j], strlen(names[i][j]), &g), 0);
			assert_int_equal(g, i);
		}
	ig_schema_unref(s);
}

/* ---- validation --------------------------------------------------------------- */

static void test_refuses_shape(void **unused)
{
	(void)unused;
	assert_refused(NULL, "no schema description given");
	assert_refused(&(ig_schema_config_t){NULL, 2}, "no schema description given");
	assert_refused(&(ig_schema_config_t){groups, 0},
		       "a schema needs at least one locality group");
	static ig_group_config_t many[IG_GROUPS_MAX + 1];
	assert_refused(&(ig_schema_config_t){many, IG_GROUPS_MAX + 1},
		       "a schema has at most 256 locality groups, not 257");
}

static void test_refuses_names(void **unused)
{
	(void)unused;
	groups[1].name = NULL;
	assert_refused(&two, "group 1: the name is missing");
	groups[1].name = "";
	assert_refused(&two, "group 1: name '' must be 1..64 characters from [A-Za-z0-9_-]");
	groups[1].name = "has space";
	assert_refused(&two, "group 1: name 'has space' must be 1..64 characters from "
			     "[A-Za-z0-9_-]");
	groups[1].name = "tab\there";
	assert_refused(&two, "group 1: name 'tab\\x09here' must be 1..64 characters from "
			     "[A-Za-z0-9_-]");
	char longname[66];
	memset(longname, 'n', 65);
	longname[65] = '\0';
	groups[1].name = longname;
	assert_refused(&two, "group 1: name 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
			     "...' must be 1..64 characters from [A-Za-z0-9_-]");
	longname[64] = '\0';  /* exactly 64 is fine */
	assert_int_equal(ig_schema_validate(&two, NULL, 0), 0);

	groups[1].name = "hot";
	assert_refused(&two, "group name 'hot' is used twice (groups 0 and 1)");
}

static void test_refuses_families(void **unused)
{
	(void)unused;
	groups[0].nfamilies = 0;
	assert_refused(&two, "group 'hot' names no family and is not the wildcard group");
	groups[0].nfamilies = 2;
	groups[0].families = NULL;
	assert_refused(&two, "group 'hot': families is NULL but nfamilies is 2");

	const char *withnull[] = {"ok", NULL};
	groups[0].families = withnull;
	assert_refused(&two, "group 'hot': family 1 is NULL");

	const char *colon[] = {"a:b"};
	groups[0].families = colon;
	groups[0].nfamilies = 1;
	assert_refused(&two, "group 'hot': family 'a:b' is not a valid family name "
			     "(1..255 printable ASCII characters, no ':')");
	const char *empty[] = {""};
	groups[0].families = empty;
	assert_refused(&two, "group 'hot': family '' is not a valid family name "
			     "(1..255 printable ASCII characters, no ':')");
	const char *ctl[] = {"new\nline"};
	groups[0].families = ctl;
	assert_refused(&two, "group 'hot': family 'new\\x0aline' is not a valid family name "
			     "(1..255 printable ASCII characters, no ':')");
	static char longfam[300];
	memset(longfam, 'f', 256);
	const char *toolong[] = {longfam};
	groups[0].families = toolong;
	char want[512];
	snprintf(want, sizeof want,
		 "group 'hot': family '%.64s...' is not a valid family name "
		 "(1..255 printable ASCII characters, no ':')",
		 longfam);
	assert_refused(&two, want);
	longfam[255] = '\0';
	assert_int_equal(ig_schema_validate(&two, NULL, 0), 0);
}

static void test_refuses_duplicate_families(void **unused)
{
	(void)unused;
	const char *twice[] = {"meta", "idx", "meta"};
	groups[0].families = twice;
	groups[0].nfamilies = 3;
	assert_refused(&two, "group 'hot' names family 'meta' twice");

	/* Across groups: named with both groups, in configuration order. */
	reset(NULL);
	const char *shared[] = {"raw", "idx"};
	groups[1].families = shared;
	assert_refused(&two, "family 'idx' is in both group 'hot' and group 'cold'");

	/* Two duplicates: the one whose second mention comes first wins,
	 * whatever the names' sort order. */
	const char *g0[] = {"zz", "aa"};
	const char *g1[] = {"zz", "aa"};
	groups[0].families = g0;
	groups[1].families = g1;
	assert_refused(&two, "family 'zz' is in both group 'hot' and group 'cold'");
}

static void test_refuses_wildcards(void **unused)
{
	(void)unused;
	groups[0].wildcard = true;
	groups[1].wildcard = true;
	assert_refused(&two, "groups 'hot' and 'cold' are both wildcard groups; "
			     "a table has at most one");
	groups[1].wildcard = false;
	assert_int_equal(ig_schema_validate(&two, NULL, 0), 0);
}

static void test_refuses_settings(void **unused)
{
	(void)unused;
	groups[1].level = 0;
	assert_refused(&two, "group 'cold': zstd level 0 is outside 1..22");
	groups[1].level = 23;
	assert_refused(&two, "group 'cold': zstd level 23 is outside 1..22");
	groups[1].level = -5;
	assert_refused(&two, "group 'cold': zstd level -5 is outside 1..22");
	groups[1].level = 22;
	assert_int_equal(ig_schema_validate(&two, NULL, 0), 0);
	groups[1].level = 1;
	assert_int_equal(ig_schema_validate(&two, NULL, 0), 0);

	groups[0].level = 3;
	assert_refused(&two, "group 'hot': compression none takes no level, not 3");
	groups[0].level = 0;
	groups[0].compression = (ig_compression_t)7;
	assert_refused(&two, "group 'hot': unknown compression 7");
	groups[0].compression = IG_COMPRESSION_NONE;

	groups[0].block_size = 511;
	assert_refused(&two, "group 'hot': block size 511 is outside 512..16777216");
	groups[0].block_size = (16u << 20) + 1;
	assert_refused(&two, "group 'hot': block size 16777217 is outside 512..16777216");
	groups[0].block_size = 512;
	assert_int_equal(ig_schema_validate(&two, NULL, 0), 0);
	groups[0].block_size = 16u << 20;
	assert_int_equal(ig_schema_validate(&two, NULL, 0), 0);

	groups[1].max_age = -1;
	assert_refused(&two, "group 'cold': max-age -1 is outside 0..9223372036854 seconds "
			     "(0 keeps versions forever)");
	groups[1].max_age = IG_MAX_AGE_MAX + 1;
	assert_refused(&two, "group 'cold': max-age 9223372036855 is outside "
			     "0..9223372036854 seconds (0 keeps versions forever)");
	groups[1].max_age = IG_MAX_AGE_MAX;
	assert_int_equal(ig_schema_validate(&two, NULL, 0), 0);

	groups[1].max_history = UINT32_MAX;  /* any count is a policy */
	assert_int_equal(ig_schema_validate(&two, NULL, 0), 0);
}

/* The reason is cut to the buffer and always terminated. */
static void test_reason_buffer(void **unused)
{
	(void)unused;
	char why[8];

	groups[1].level = 99;
	memset(why, 'x', sizeof why);
	assert_int_equal(ig_schema_validate(&two, why, sizeof why), IG_EINVAL);
	assert_string_equal(why, "group '");
	memset(why, 'x', sizeof why);
	assert_int_equal(ig_schema_validate(&two, why, 1), IG_EINVAL);
	assert_int_equal(why[0], '\0');
	assert_int_equal(why[1], 'x');
	assert_int_equal(ig_schema_validate(&two, why, 0), IG_EINVAL);
	assert_int_equal(why[0], '\0');
}

/* ---- mutations ---------------------------------------------------------------- */

static void test_check_packed(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {
		cell_set("r1", "meta:a", 1, "x"),
		cell_set("r1", "meta:b", 1, "x"),
		cell_erase("r2", "raw:", 1),
		cell_set("r2", "metadata:x", 1, "x"),  /* "meta" is only a prefix */
		cell_set("r3", "blob:z", 1, "x"),
	};
	uint8_t buf[1024];
	size_t len;
	ig_packed_t p;
	ig_schema_t *s;
	uint32_t bad = 77;
	char why[128] = "untouched";

	assert_int_equal(ig_schema_create(&two, &s, NULL, 0), 0);

	assert_int_equal(ig_packed_encode(cells, 3, 0, buf, sizeof buf, &len), 0);
	assert_int_equal(ig_packed_open(buf, len, &p, NULL), 0);
	assert_int_equal(ig_schema_check_packed(s, &p, &bad, why, sizeof why), 0);
	assert_int_equal(bad, 77);
	assert_string_equal(why, "untouched");

	assert_int_equal(ig_packed_encode(cells, 5, 0, buf, sizeof buf, &len), 0);
	assert_int_equal(ig_packed_open(buf, len, &p, NULL), 0);
	assert_int_equal(ig_schema_check_packed(s, &p, &bad, why, sizeof why), IG_EINVAL);
	assert_int_equal(bad, 3);
	assert_string_equal(why, "cell 3: column family 'metadata' is in no locality group "
				 "of the schema");
	assert_int_equal(ig_schema_check_packed(s, &p, NULL, NULL, 0), IG_EINVAL);

	/* The empty mutation is fine. */
	assert_int_equal(ig_packed_encode(NULL, 0, 0, buf, sizeof buf, &len), 0);
	assert_int_equal(ig_packed_open(buf, len, &p, NULL), 0);
	assert_int_equal(ig_schema_check_packed(s, &p, &bad, why, sizeof why), 0);
	ig_schema_unref(s);

	/* With a wildcard group every family has a home. */
	ig_group_config_t three[3] = {groups[0], groups[1], {.name = "rest", .wildcard = true}};
	ig_schema_config_t cfg = {three, 3};
	assert_int_equal(ig_schema_create(&cfg, &s, NULL, 0), 0);
	assert_int_equal(ig_packed_encode(cells, 5, 0, buf, sizeof buf, &len), 0);
	assert_int_equal(ig_packed_open(buf, len, &p, NULL), 0);
	assert_int_equal(ig_schema_check_packed(s, &p, &bad, why, sizeof why), 0);
	ig_schema_unref(s);
}

/* The family cache must not let a different family through after a
 * matching one (same first bytes, different length). */
static void test_check_packed_family_changes(void **unused)
{
	(void)unused;
	const ig_cell_t cells[] = {
		cell_set("r", "raw:1", 1, "x"),
		cell_set("r", "raw:2", 1, "x"),
		cell_set("r", "ra:3", 1, "x"),
	};
	uint8_t buf[512];
	size_t len;
	ig_packed_t p;
	ig_schema_t *s;
	uint32_t bad;

	assert_int_equal(ig_schema_create(&two, &s, NULL, 0), 0);
	assert_int_equal(ig_packed_encode(cells, 3, 0, buf, sizeof buf, &len), 0);
	assert_int_equal(ig_packed_open(buf, len, &p, NULL), 0);
	assert_int_equal(ig_schema_check_packed(s, &p, &bad, NULL, 0), IG_EINVAL);
	assert_int_equal(bad, 2);
	ig_schema_unref(s);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, reset)
	const struct CMUnitTest tests[] = {
		T(test_create_and_read_back),
		T(test_group_of),
		T(test_many_families),
		T(test_refuses_shape),
		T(test_refuses_names),
		T(test_refuses_families),
		T(test_refuses_duplicate_families),
		T(test_refuses_wildcards),
		T(test_refuses_settings),
		T(test_reason_buffer),
		T(test_check_packed),
		T(test_check_packed_family_changes),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
