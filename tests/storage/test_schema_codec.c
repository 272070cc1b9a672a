/* Tests of the table schema record (storage/schema_codec.c): round trips of
 * several schemas (wildcard groups, every option at its limits), the
 * documented layout written by hand, every truncation and every flipped
 * byte refused (or, behind a resealed checksum, refused or decoded to a
 * valid schema that re-encodes to the same bytes), each structural rule
 * refused at its byte, and well-formed records of invalid schemas refused
 * with ig_schema_create's reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ingot/error.h>
#include <ingot/storage.h>

#include "packed_int.h"
#include "schema_codec_int.h"

/* ---- fixtures ----------------------------------------------------------- */

static ig_schema_t *build(const ig_group_config_t *g, size_t n)
{
	ig_schema_config_t cfg = { g, n };
	ig_schema_t *s = NULL;
	char why[256] = "";
	int rc = ig_schema_create(&cfg, &s, why, sizeof why);
	if (rc != 0)
		fail_msg("fixture schema refused: %s", why);
	return s;
}

static void assert_same_group(const ig_group_config_t *a, const ig_group_config_t *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->nfamilies, b->nfamilies);
	for (size_t j = 0; j < a->nfamilies; j++)
		assert_string_equal(a->families[j], b->families[j]);
	assert_int_equal(a->wildcard, b->wildcard);
	assert_int_equal(a->compression, b->compression);
	assert_int_equal(a->level, b->level);
	assert_int_equal(a->block_size, b->block_size);
	assert_int_equal(a->in_memory, b->in_memory);
	assert_int_equal(a->max_history, b->max_history);
	assert_int_equal(a->max_age, b->max_age);
}

static void assert_same(const ig_schema_t *a, const ig_schema_t *b)
{
	assert_int_equal(ig_schema_group_count(a), ig_schema_group_count(b));
	for (size_t i = 0; i < ig_schema_group_count(a); i++)
		assert_same_group(ig_schema_group(a, i), ig_schema_group(b, i));
}

/* Encodes s, decodes it, checks the copy and that it re-encodes to the
 * same bytes. Ownership: returns the record; the caller frees it. */
static uint8_t *roundtrip(const ig_schema_t *s, size_t *len)
{
	uint8_t *buf, *again;
	size_t n;
	assert_int_equal(ig__schema_encode(s, &buf, len), 0);
	ig_schema_t *d = NULL;
	assert_int_equal(ig__schema_decode(buf, *len, &d, NULL, NULL, 0), 0);
	assert_same(s, d);
	assert_int_equal(ig__schema_encode(d, &again, &n), 0);
	assert_int_equal(n, *len);
	assert_memory_equal(again, buf, n);
	free(again);
	ig_schema_unref(d);
	return buf;
}

static const char *const hot_fams[] = { "a", "b" };
static const char *const cold_fams[] = { "archive", "log" };

/* Two named groups and a wildcard group, with every option set somewhere. */
static ig_schema_t *sample(void)
{
	const ig_group_config_t g[] = {
		{ .name = "hot", .families = hot_fams, .nfamilies = 2,
		  .compression = IG_COMPRESSION_NONE, .in_memory = true, .max_history = 3 },
		{ .name = "cold", .families = cold_fams, .nfamilies = 2,
		  .compression = IG_COMPRESSION_ZSTD, .level = 19, .block_size = 1u << 20,
		  .max_age = 86400 },
		{ .name = "rest", .wildcard = true, .compression = IG_COMPRESSION_ZSTD,
		  .level = 1 },
	};
	return build(g, 3);
}

/* Fills the length field and the CRC32C of a record of len bytes. */
static void reseal(uint8_t *buf, size_t len)
{
	ig__st32(buf + IG__SC_H_LENGTH, (uint32_t)len);
	ig__st32(buf + len - 4, ig_crc32c(0, buf, len - 4));
}

/* ---- round trips -------------------------------------------------------- */

static void test_roundtrip(void **state)
{
	(void)state;
	size_t len;
	ig_schema_t *s = sample();
	free(roundtrip(s, &len));
	ig_schema_unref(s);

	/* The smallest schema: one wildcard group, defaults resolved. */
	const ig_group_config_t w = { .name = "w", .wildcard = true };
	s = build(&w, 1);
	uint8_t *buf = roundtrip(s, &len);
	assert_int_equal(len, IG__SC_HEADER + 1 + 1 + IG__SC_G_FIXED + 4);
	assert_int_equal(ig__ld32(buf + IG__SC_HEADER + 2 + IG__SC_G_BLOCK),
			 IG_BLOCK_SIZE_DEFAULT);
	free(buf);
	ig_schema_unref(s);

	/* A wildcard group that also names families, no other group. */
	const ig_group_config_t wf = { .name = "all", .families = hot_fams, .nfamilies = 2,
				       .wildcard = true, .in_memory = true };
	s = build(&wf, 1);
	free(roundtrip(s, &len));
	ig_schema_unref(s);
}

/* Every field at its largest, and the most groups a schema may have. */
static void test_roundtrip_limits(void **state)
{
	(void)state;
	static char names[IG_GROUPS_MAX][IG_GROUP_NAME_MAX + 1];
	static char fams[IG_GROUPS_MAX][IG_FAMILY_MAX + 1];
	static const char *fam_ptr[IG_GROUPS_MAX];
	static ig_group_config_t g[IG_GROUPS_MAX];
	for (size_t i = 0; i < IG_GROUPS_MAX; i++) {
		memset(names[i], 'g', IG_GROUP_NAME_MAX);
		snprintf(names[i], 8, "g%03zu", i);
		names[i][4] = '_';  /* snprintf's NUL, overwritten: 64 bytes in all */
		memset(fams[i], '~', IG_FAMILY_MAX);
		snprintf(fams[i], 8, "f%03zu", i);
		fams[i][4] = '!';
		fam_ptr[i] = fams[i];
		g[i] = (ig_group_config_t){
			.name = names[i], .families = &fam_ptr[i], .nfamilies = 1,
			.compression = IG_COMPRESSION_ZSTD, .level = IG_ZSTD_LEVEL_MAX,
			.block_size = i % 2 ? IG_BLOCK_SIZE_MAX : IG_BLOCK_SIZE_MIN,
			.in_memory = i % 2, .max_history = UINT32_MAX, .max_age = IG_MAX_AGE_MAX,
		};
	}
	g[7].wildcard = true;
	ig_schema_t *s = build(g, IG_GROUPS_MAX);
	assert_int_equal(strlen(ig_schema_group(s, 9)->name), IG_GROUP_NAME_MAX);
	assert_int_equal(strlen(ig_schema_group(s, 9)->families[0]), IG_FAMILY_MAX);
	size_t len;
	free(roundtrip(s, &len));
	ig_schema_unref(s);
}

static void test_encode_refuses(void **state)
{
	(void)state;
	uint8_t *buf;
	size_t len;
	ig_schema_t *s = sample();
	assert_int_equal(ig__schema_encode(NULL, &buf, &len), IG_EINVAL);
	assert_int_equal(ig__schema_encode(s, NULL, &len), IG_EINVAL);
	assert_int_equal(ig__schema_encode(s, &buf, NULL), IG_EINVAL);
	ig_schema_unref(s);

	/* A valid schema too large for one record: 66000 families of 255
	 * bytes pass 16 MiB. */
	enum { N = 66000 };
	char *names = malloc((size_t)N * (IG_FAMILY_MAX + 1));
	const char **fp = malloc(N * sizeof *fp);
	assert_non_null(names);
	assert_non_null(fp);
	for (size_t i = 0; i < N; i++) {
		char *f = names + i * (IG_FAMILY_MAX + 1);
		memset(f, 'x', IG_FAMILY_MAX);
		f[IG_FAMILY_MAX] = '\0';
		char num[16];
		int n = snprintf(num, sizeof num, "%zu", i);
		memcpy(f, num, (size_t)n);
		fp[i] = f;
	}
	const ig_group_config_t big = { .name = "big", .families = fp, .nfamilies = N };
	s = build(&big, 1);
	free(fp);
	free(names);
	assert_int_equal(ig__schema_encode(s, &buf, &len), IG_ERANGE);
	ig_schema_unref(s);
}

/* ---- the documented layout ---------------------------------------------- */

typedef struct bw {
	uint8_t b[256];
	size_t n;
} bw_t;

static void put8(bw_t *w, uint8_t v)
{
	w->b[w->n++] = v;
}

static void put32(bw_t *w, uint32_t v)
{
	ig__st32(w->b + w->n, v);
	w->n += 4;
}

static void put_str(bw_t *w, const char *s)
{
	put8(w, (uint8_t)strlen(s));
	memcpy(w->b + w->n, s, strlen(s));
	w->n += strlen(s);
}

static void put_head(bw_t *w, uint16_t ngroups)
{
	w->n = 0;
	put32(w, IG__SC_MAGIC);
	put8(w, IG__SC_VERSION);
	put8(w, 0);
	ig__st16(w->b + w->n, ngroups);
	w->n += 2;
	put32(w, 0);  /* length: seal() */
}

/* Where a group entry's parts start. */
typedef struct group_at {
	size_t name, fixed, nfam;
} group_at_t;

/* The fixed fields and families after a name; at->fixed is set. */
static void put_fixed(bw_t *w, group_at_t *at, uint8_t flags, uint8_t comp, uint8_t level,
		      uint32_t block, uint32_t hist, uint64_t age, const char *const *fams,
		      uint32_t nfam)
{
	at->fixed = w->n;
	put8(w, flags);
	put8(w, comp);
	put8(w, level);
	put32(w, block);
	put32(w, hist);
	ig__st64(w->b + w->n, age);
	w->n += 8;
	at->nfam = w->n;
	put32(w, nfam);
	for (uint32_t j = 0; j < nfam; j++)
		put_str(w, fams[j]);
}

static group_at_t put_group(bw_t *w, const char *name, uint8_t flags, uint8_t comp,
			    uint8_t level, uint32_t block, uint32_t hist, uint64_t age,
			    const char *const *fams, uint32_t nfam)
{
	group_at_t at = { .name = w->n };
	put_str(w, name);
	put_fixed(w, &at, flags, comp, level, block, hist, age, fams, nfam);
	return at;
}

static void seal(bw_t *w)
{
	w->n += 4;
	reseal(w->b, w->n);
}

/* One group "hot" (families a, b; zstd 3; 4096-byte blocks; in memory; 2
 * versions; a day) and a wildcard group "rest" (none, default blocks). */
static void put_example(bw_t *w)
{
	put_head(w, 2);
	put_group(w, "hot", IG__SC_IN_MEMORY, IG_COMPRESSION_ZSTD, 3, 4096, 2, 86400,
		  hot_fams, 2);
	put_group(w, "rest", IG__SC_WILDCARD, IG_COMPRESSION_NONE, 0, IG_BLOCK_SIZE_DEFAULT, 0,
		  0, NULL, 0);
	seal(w);
}

static void test_layout(void **state)
{
	(void)state;
	const ig_group_config_t g[] = {
		{ .name = "hot", .families = hot_fams, .nfamilies = 2, .in_memory = true,
		  .compression = IG_COMPRESSION_ZSTD, .level = 3, .block_size = 4096,
		  .max_history = 2, .max_age = 86400 },
		{ .name = "rest", .wildcard = true },
	};
	ig_schema_t *s = build(g, 2);
	uint8_t *buf;
	size_t len;
	assert_int_equal(ig__schema_encode(s, &buf, &len), 0);
	bw_t w;
	put_example(&w);
	assert_int_equal(len, w.n);
	assert_memory_equal(buf, w.b, len);
	free(buf);
	ig_schema_unref(s);
}

/* ---- corruption --------------------------------------------------------- */

static void assert_corrupt_at(const uint8_t *buf, size_t len, size_t want, const char *what)
{
	ig_schema_t *d = NULL;
	size_t off = SIZE_MAX;
	char why[160] = "";
	assert_int_equal(ig__schema_decode(buf, len, &d, &off, why, sizeof why), IG_ECORRUPT);
	assert_null(d);
	if (off != want || !strstr(why, what))
		fail_msg("want offset %zu '%s', got %zu '%s'", want, what, off, why);
}

static void test_truncations(void **state)
{
	(void)state;
	ig_schema_t *s = sample();
	uint8_t *buf;
	size_t len;
	assert_int_equal(ig__schema_encode(s, &buf, &len), 0);
	for (size_t n = 0; n < len; n++) {
		ig_schema_t *d = NULL;
		size_t off = SIZE_MAX;
		char why[160] = "";
		assert_int_equal(ig__schema_decode(buf, n, &d, &off, why, sizeof why),
				 IG_ECORRUPT);
		assert_true(off <= n);
		assert_true(why[0] != '\0');
	}
	free(buf);
	ig_schema_unref(s);
}

/* Decodes a resealed mutant: refused, or a valid schema that re-encodes
 * to exactly the same bytes. */
static void check_mutant(const uint8_t *buf, size_t len)
{
	ig_schema_t *d = NULL;
	size_t off = SIZE_MAX;
	char why[160] = "";
	int rc = ig__schema_decode(buf, len, &d, &off, why, sizeof why);
	if (rc == IG_ECORRUPT) {
		assert_true(off < len);
	} else if (rc == IG_EINVAL) {
		assert_null(d);
	} else {
		assert_int_equal(rc, 0);
		uint8_t *again;
		size_t n;
		assert_int_equal(ig__schema_encode(d, &again, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(again, buf, len);
		free(again);
		ig_schema_unref(d);
	}
	if (rc != 0)
		assert_true(why[0] != '\0');
}

static void test_flips(void **state)
{
	(void)state;
	ig_schema_t *s = sample();
	uint8_t *buf;
	size_t len;
	assert_int_equal(ig__schema_encode(s, &buf, &len), 0);
	uint8_t *copy = malloc(len);
	assert_non_null(copy);
	for (size_t i = 0; i < len; i++) {
		for (unsigned x = 1; x < 256; x++) {
			memcpy(copy, buf, len);
			copy[i] ^= (uint8_t)x;
			/* As stored: the checksum catches every change. */
			ig_schema_t *d = NULL;
			size_t off = SIZE_MAX;
			assert_int_equal(ig__schema_decode(copy, len, &d, &off, NULL, 0),
					 IG_ECORRUPT);
			assert_true(off < len);
			/* Resealed: the structural checks and the schema rules. */
			if (i < IG__SC_H_LENGTH || i >= IG__SC_H_LENGTH + 4) {
				if (i < len - 4)
					reseal(copy, len);
				check_mutant(copy, len);
			}
		}
	}
	free(copy);
	free(buf);
	ig_schema_unref(s);
}

static void test_bad_crc(void **state)
{
	(void)state;
	bw_t w;
	put_example(&w);
	w.b[w.n - 1] ^= 1;
	assert_corrupt_at(w.b, w.n, w.n - 4, "checksum mismatch");
	w.b[w.n - 1] ^= 1;
	w.b[IG__SC_HEADER + 1] = 'H';  /* the name, CRC left as it was */
	assert_corrupt_at(w.b, w.n, w.n - 4, "checksum mismatch");
}

/* Each structural rule, behind a valid checksum, at its byte. */
static void test_structure(void **state)
{
	(void)state;
	bw_t w;
	put_example(&w);
	ig_schema_t *d = NULL;
	assert_int_equal(ig__schema_decode(w.b, w.n, &d, NULL, NULL, 0), 0);
	ig_schema_unref(d);

	assert_corrupt_at(w.b, 10, 10, "fewer than the smallest record");
	w.b[IG__SC_H_VERSION] = 2;
	reseal(w.b, w.n);
	assert_corrupt_at(w.b, w.n, IG__SC_H_VERSION, "unknown version 2");
	put_example(&w);
	w.b[IG__SC_H_FLAGS] = 1;
	reseal(w.b, w.n);
	assert_corrupt_at(w.b, w.n, IG__SC_H_FLAGS, "unknown flags");
	put_example(&w);
	w.b[0] = 'X';
	reseal(w.b, w.n);
	assert_corrupt_at(w.b, w.n, IG__SC_H_MAGIC, "magic");
	put_example(&w);
	ig__st32(w.b + IG__SC_H_LENGTH, (uint32_t)w.n + 1);
	assert_corrupt_at(w.b, w.n, IG__SC_H_LENGTH, "length field");

	const uint16_t counts[] = { 0, IG_GROUPS_MAX + 1, 5 };  /* 5: cannot fit */
	for (size_t i = 0; i < 3; i++) {
		put_example(&w);
		ig__st16(w.b + IG__SC_H_GROUPS, counts[i]);
		reseal(w.b, w.n);
		assert_corrupt_at(w.b, w.n, IG__SC_H_GROUPS, "group count");
	}
	put_example(&w);
	ig__st16(w.b + IG__SC_H_GROUPS, 1);  /* the second group is left over */
	reseal(w.b, w.n);
	assert_corrupt_at(w.b, w.n, IG__SC_HEADER + 1 + 3 + IG__SC_G_FIXED + 2 + 2,
			  "left over");

	put_head(&w, 1);
	group_at_t at = { .name = w.n };
	put8(&w, 3);
	memcpy(w.b + w.n, "h\0t", 3);
	w.n += 3;
	put_fixed(&w, &at, IG__SC_WILDCARD, 0, 0, 4096, 0, 0, NULL, 0);
	seal(&w);
	assert_corrupt_at(w.b, w.n, at.name + 2, "a group name holds a NUL byte");

	put_head(&w, 1);
	at = put_group(&w, "g", 0x04, 0, 0, 4096, 0, 0, NULL, 0);
	seal(&w);
	assert_corrupt_at(w.b, w.n, at.fixed + IG__SC_G_FLAGS, "unknown group flags");

	put_head(&w, 1);
	at = put_group(&w, "g", IG__SC_WILDCARD, 0, 0, 0, 0, 0, NULL, 0);
	seal(&w);
	assert_corrupt_at(w.b, w.n, at.fixed + IG__SC_G_BLOCK, "block size 0");

	put_head(&w, 1);
	at = put_group(&w, "g", 0, 0, 0, 4096, 0, 0, hot_fams, 2);
	seal(&w);
	ig__st32(w.b + at.nfam, 5);  /* 4 bytes of families, and more claimed */
	reseal(w.b, w.n);
	assert_corrupt_at(w.b, w.n, at.nfam, "family count 5 cannot fit");
	ig__st32(w.b + at.nfam, 3);
	reseal(w.b, w.n);
	assert_corrupt_at(w.b, w.n, w.n - 4, "a family name runs past the end");

	put_head(&w, 1);
	const char *const nul_fam[] = { "x" };
	at = put_group(&w, "g", 0, 0, 0, 4096, 0, 0, nul_fam, 1);
	seal(&w);
	w.b[at.nfam + 5] = '\0';
	reseal(w.b, w.n);
	assert_corrupt_at(w.b, w.n, at.nfam + 5, "a family name holds a NUL byte");
}

/* Well-formed records of schemas ig_schema_create refuses. */
static void assert_invalid(const bw_t *w, const char *what)
{
	ig_schema_t *d = NULL;
	size_t off = 12345;
	char why[160] = "";
	assert_int_equal(ig__schema_decode(w->b, w->n, &d, &off, why, sizeof why), IG_EINVAL);
	assert_null(d);
	assert_int_equal(off, 12345);  /* an offset only for corrupt bytes */
	if (!strstr(why, what))
		fail_msg("want '%s', got '%s'", what, why);
}

static void test_invalid_schema(void **state)
{
	(void)state;
	bw_t w;
	put_head(&w, 2);
	put_group(&w, "a", IG__SC_WILDCARD, 0, 0, 4096, 0, 0, NULL, 0);
	put_group(&w, "b", IG__SC_WILDCARD, 0, 0, 4096, 0, 0, NULL, 0);
	seal(&w);
	assert_invalid(&w, "both wildcard groups");

	put_head(&w, 1);
	put_group(&w, "z", 0, IG_COMPRESSION_ZSTD, 23, 4096, 0, 0, hot_fams, 1);
	seal(&w);
	assert_invalid(&w, "zstd level 23 is outside 1..22");

	put_head(&w, 1);
	put_group(&w, "c", 0, 7, 0, 4096, 0, 0, hot_fams, 1);
	seal(&w);
	assert_invalid(&w, "unknown compression 7");

	put_head(&w, 2);
	put_group(&w, "a", 0, 0, 0, 4096, 0, 0, hot_fams, 2);
	put_group(&w, "b", 0, 0, 0, 4096, 0, 0, hot_fams, 1);
	seal(&w);
	assert_invalid(&w, "family 'a' is in both group 'a' and group 'b'");

	put_head(&w, 1);
	put_group(&w, "bad name", IG__SC_WILDCARD, 0, 0, 4096, 0, 0, NULL, 0);
	seal(&w);
	assert_invalid(&w, "must be 1..64 characters");

	put_head(&w, 1);
	put_group(&w, "g", IG__SC_WILDCARD, 0, 0, 100, 0, 0, NULL, 0);
	seal(&w);
	assert_invalid(&w, "block size 100 is outside");

	put_head(&w, 1);
	put_group(&w, "g", IG__SC_WILDCARD, 0, 0, 4096, 0, UINT64_MAX, NULL, 0);
	seal(&w);
	assert_invalid(&w, "max-age -1 is outside");

	put_head(&w, 1);
	put_group(&w, "g", 0, 0, 0, 4096, 0, 0, NULL, 0);
	seal(&w);
	assert_invalid(&w, "names no family and is not the wildcard group");

	/* A why too short, or none, still gives the code. */
	char tiny[8];
	ig_schema_t *d = NULL;
	assert_int_equal(ig__schema_decode(w.b, w.n, &d, NULL, tiny, sizeof tiny), IG_EINVAL);
	assert_int_equal(strlen(tiny), sizeof tiny - 1);
	assert_int_equal(ig__schema_decode(w.b, w.n, &d, NULL, NULL, 0), IG_EINVAL);
	w.b[0] ^= 1;
	assert_int_equal(ig__schema_decode(w.b, w.n, &d, NULL, tiny, sizeof tiny), IG_ECORRUPT);
	assert_int_equal(strlen(tiny), sizeof tiny - 1);
	assert_int_equal(ig__schema_decode(NULL, 1, &d, NULL, NULL, 0), IG_EINVAL);
	assert_int_equal(ig__schema_decode(w.b, w.n, NULL, NULL, NULL, 0), IG_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_roundtrip_limits),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_flips),
		cmocka_unit_test(test_bad_crc),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_invalid_schema),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
