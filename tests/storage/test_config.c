/* Tests of tablet configs and the root file (storage/config.c): encode and
 * decode round trips (fragments with txn ranges and clips), every
 * truncation and every single-bit flip refused with an offset, each
 * fragment rule refused at its byte in hand-built records, version 1
 * records still read, a root replace failing at each step (write, fdatasync,
 * rename, directory fsync) leaving the old or the new root, and a crash
 * test killing a replacing child with SIGKILL.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <ingot/error.h>
#include <ingot/storage.h>

#include "config_int.h"
#include "packed_int.h"

/* ---- fixtures ----------------------------------------------------------- */

/* Clips of every shape: both ends, upper only, lower only, none. */
static ig__tc_frag_t g0[] = {
	{ .name = "f3.igf", .min_txn = 201, .max_txn = 300,
	  .lo = (uint8_t *)"apple", .lo_len = 5, .hi = (uint8_t *)"apples", .hi_len = 6 },
	{ .name = "f2.igf", .min_txn = 200, .max_txn = 200,
	  .hi = (uint8_t *)"\xff\x00", .hi_len = 2 },
	{ .name = "f1.igf", .min_txn = 0, .max_txn = 100, .lo = (uint8_t *)"b", .lo_len = 1 },
};
static ig__tc_frag_t g2[] = { { .name = "x.igf", .min_txn = 7, .max_txn = 7 } };
static ig__tc_group_t groups[] = { { 3, g0 }, { 0, NULL }, { 1, g2 } };

static ig__tconf_t sample(uint64_t replay)
{
	ig__tconf_t c = {
		.table_id = 1, .tablet_id = 42,
		.first_row = (uint8_t *)"apple", .first_len = 5,
		.last_row = NULL, .last_len = 0,
		.log_dir = "logs/t42", .replay_txn = replay,
		.ngroups = 3, .groups = groups,
	};
	return c;
}

static void assert_same_clip(const ig__tc_frag_t *a, const ig__tc_frag_t *b)
{
	assert_int_equal(a->min_txn, b->min_txn);
	assert_int_equal(a->lo_len, b->lo_len);
	assert_int_equal(a->hi_len, b->hi_len);
	if (a->lo_len)
		assert_memory_equal(a->lo, b->lo, a->lo_len);
	if (a->hi_len)
		assert_memory_equal(a->hi, b->hi, a->hi_len);
}

static void assert_same(const ig__tconf_t *a, const ig__tconf_t *b)
{
	assert_int_equal(a->table_id, b->table_id);
	assert_int_equal(a->tablet_id, b->tablet_id);
	assert_int_equal(a->replay_txn, b->replay_txn);
	assert_int_equal(a->first_len, b->first_len);
	assert_memory_equal(a->first_row, b->first_row, a->first_len);
	assert_int_equal(a->last_len, b->last_len);
	assert_string_equal(a->log_dir, b->log_dir);
	assert_int_equal(a->ngroups, b->ngroups);
	for (uint32_t g = 0; g < a->ngroups; g++) {
		assert_int_equal(a->groups[g].nfrags, b->groups[g].nfrags);
		for (uint32_t i = 0; i < a->groups[g].nfrags; i++) {
			assert_string_equal(a->groups[g].frags[i].name, b->groups[g].frags[i].name);
			assert_int_equal(a->groups[g].frags[i].max_txn, b->groups[g].frags[i].max_txn);
			assert_same_clip(&a->groups[g].frags[i], &b->groups[g].frags[i]);
		}
	}
}

static char *make_dir(void)
{
	char *d = strdup("/tmp/ig-config-XXXXXX");
	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_dir(char *d)
{
	char p[512];
	snprintf(p, sizeof p, "%s/root", d);
	unlink(p);
	snprintf(p, sizeof p, "%s/root.tmp", d);
	unlink(p);
	assert_int_equal(rmdir(d), 0);
	free(d);
}

static int write_gen(const char *dir, uint64_t gen)
{
	ig__tconf_t c = sample(gen * 10);
	ig__tconf_t *cs[] = { &c };
	ig__root_t r = { .generation = gen, .nconfigs = 1, .configs = cs };
	return ig__root_write(dir, &r);
}

/* The root in dir must be complete and be generation gen. */
static void assert_root_gen(const char *dir, uint64_t gen)
{
	ig__root_t *r = NULL;
	assert_int_equal(ig__root_read(dir, &r, NULL), 0);
	assert_int_equal(r->generation, gen);
	ig__tconf_t want = sample(gen * 10);
	assert_int_equal(r->nconfigs, 1);
	assert_same(&want, r->configs[0]);
	ig__root_free(r);
}

/* ---- tablet config ------------------------------------------------------ */

static void test_roundtrip(void **state)
{
	(void)state;
	ig__tconf_t c = sample(99);
	c.last_row = (uint8_t *)"banana";
	c.last_len = 6;
	uint8_t *buf;
	size_t len;
	assert_int_equal(ig__tconf_encode(&c, &buf, &len), 0);
	ig__tconf_t *d = NULL;
	assert_int_equal(ig__tconf_decode(buf, len, &d, NULL), 0);
	assert_same(&c, d);
	assert_memory_equal(d->last_row, "banana", 6);
	ig__tconf_free(d);
	free(buf);

	/* Whole-table range, no groups. */
	ig__tconf_t e = { .log_dir = "l", .ngroups = 0 };
	assert_int_equal(ig__tconf_encode(&e, &buf, &len), 0);
	assert_int_equal(ig__tconf_decode(buf, len, &d, NULL), 0);
	assert_same(&e, d);
	ig__tconf_free(d);
	free(buf);
}

/* c with its one group holding just f. */
static int encode_frag(ig__tc_frag_t f)
{
	ig__tc_group_t g = { 1, &f };
	ig__tconf_t c = sample(1);
	c.ngroups = 1;
	c.groups = &g;
	uint8_t *buf = NULL;
	size_t len;
	int rc = ig__tconf_encode(&c, &buf, &len);
	free(buf);
	return rc;
}

static void test_encode_refuses(void **state)
{
	(void)state;
	uint8_t *buf;
	size_t len;
	ig__tconf_t c = sample(1);
	c.last_row = (uint8_t *)"apple";  /* empty range */
	c.last_len = 5;
	assert_int_equal(ig__tconf_encode(&c, &buf, &len), IG_EINVAL);
	c = sample(1);
	c.log_dir = "";
	assert_int_equal(ig__tconf_encode(&c, &buf, &len), IG_EINVAL);
	ig__tc_frag_t bad[] = { { .name = "a", .max_txn = 1 }, { .name = "b", .max_txn = 2 } };
	ig__tc_group_t bg = { 2, bad };  /* not newest first */
	c = sample(1);
	c.ngroups = 1;
	c.groups = &bg;
	assert_int_equal(ig__tconf_encode(&c, &buf, &len), IG_EINVAL);
	bad[1].max_txn = 0;
	bad[1].name = "../x";
	assert_int_equal(ig__tconf_encode(&c, &buf, &len), IG_EINVAL);
}

static void test_encode_refuses_frag(void **state)
{
	(void)state;
	static uint8_t big[IG__TC_ROW_MAX + 1];
	ig__tc_frag_t ok = { .name = "a", .min_txn = 3, .max_txn = 3,
			     .lo = (uint8_t *)"k", .lo_len = 1, .hi = (uint8_t *)"k\0", .hi_len = 2 };
	assert_int_equal(encode_frag(ok), 0);
	ig__tc_frag_t f = ok;
	f.min_txn = 4;  /* min above max */
	assert_int_equal(encode_frag(f), IG_EINVAL);
	f = ok;
	f.hi_len = 1;  /* lo == hi: an empty clip */
	assert_int_equal(encode_frag(f), IG_EINVAL);
	f = ok;
	f.lo = (uint8_t *)"l";  /* lo > hi */
	assert_int_equal(encode_frag(f), IG_EINVAL);
	f = ok;
	f.lo = NULL;  /* bytes missing */
	assert_int_equal(encode_frag(f), IG_EINVAL);
	f = ok;
	f.hi = big;  /* longer than a row may be */
	f.hi_len = sizeof big;
	assert_int_equal(encode_frag(f), IG_EINVAL);
	f.hi_len = IG__TC_ROW_MAX;
	big[0] = 'z';
	assert_int_equal(encode_frag(f), 0);
}

static void test_truncations_and_flips(void **state)
{
	(void)state;
	ig__tconf_t c = sample(5);
	uint8_t *buf;
	size_t len;
	assert_int_equal(ig__tconf_encode(&c, &buf, &len), 0);
	ig__tconf_t *d = NULL;
	for (size_t n = 0; n < len; n++) {
		size_t off = SIZE_MAX;
		assert_int_equal(ig__tconf_decode(buf, n, &d, &off), IG_ECORRUPT);
		assert_true(off <= n);
	}
	for (size_t bit = 0; bit < len * 8; bit++) {
		size_t off = SIZE_MAX;
		buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
		assert_int_equal(ig__tconf_decode(buf, len, &d, &off), IG_ECORRUPT);
		assert_true(off < len);
		buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
	}
	free(buf);
}

static void test_root_truncations_and_flips(void **state)
{
	(void)state;
	ig__tconf_t c = sample(5);
	ig__tconf_t *cs[] = { &c, &c };
	ig__root_t r = { .generation = 3, .nconfigs = 2, .configs = cs };
	uint8_t *buf;
	size_t len;
	assert_int_equal(ig__root_encode(&r, &buf, &len), 0);
	ig__root_t *d = NULL;
	assert_int_equal(ig__root_decode(buf, len, &d, NULL), 0);
	assert_int_equal(d->generation, 3);
	assert_int_equal(d->nconfigs, 2);
	assert_same(&c, d->configs[1]);
	ig__root_free(d);
	for (size_t n = 0; n < len; n++) {
		size_t off = SIZE_MAX;
		assert_int_equal(ig__root_decode(buf, n, &d, &off), IG_ECORRUPT);
		assert_true(off <= n);
	}
	for (size_t bit = 0; bit < len * 8; bit++) {
		size_t off = SIZE_MAX;
		buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
		assert_int_equal(ig__root_decode(buf, len, &d, &off), IG_ECORRUPT);
		assert_true(off < len);
		buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
	}
	free(buf);
}

/* ---- hand-built records ------------------------------------------------- */

/* A record written byte by byte from docs/formats.md, so the tests check
 * the documented layout and not just that the codec agrees with itself. */
typedef struct bw {
	uint8_t b[256];
	size_t n;
} bw_t;

static void put8(bw_t *w, uint8_t v)
{
	w->b[w->n++] = v;
}

static void put16(bw_t *w, uint16_t v)
{
	ig__st16(w->b + w->n, v);
	w->n += 2;
}

static void put64(bw_t *w, uint64_t v)
{
	ig__st64(w->b + w->n, v);
	w->n += 8;
}

/* A u16 length and the bytes; returns where the length field is. */
static size_t put_row(bw_t *w, const char *s, size_t n)
{
	size_t at = w->n;
	put16(w, (uint16_t)n);
	memcpy(w->b + w->n, s, n);
	w->n += n;
	return at;
}

/* Header of table 1, tablet 42, replay 9, range [-inf, +inf), log dir "l",
 * and one group of nfrags fragments, whose entries the caller writes. */
static void put_head(bw_t *w, uint8_t version, uint16_t nfrags)
{
	w->n = 0;
	put16(w, 0x4947);
	put16(w, 0x5443);
	put8(w, version);
	put8(w, 0);
	put16(w, 1);
	w->n += 4;  /* length: seal() */
	put64(w, 1);
	put64(w, 42);
	put64(w, 9);
	put_row(w, "", 0);
	put_row(w, "", 0);
	put_row(w, "l", 1);
	put16(w, nfrags);
}

/* Fills the length field and appends the CRC32C. */
static void seal(bw_t *w)
{
	ig__st32(w->b + 8, (uint32_t)(w->n + 4));
	uint32_t crc = ig_crc32c(0, w->b, w->n);
	ig__st32(w->b + w->n, crc);
	w->n += 4;
}

/* Offsets of a version 2 fragment entry's fields. */
typedef struct frag_at {
	size_t min, lo, hi;
} frag_at_t;

static frag_at_t put_frag(bw_t *w, const char *name, uint64_t max, uint64_t min,
			  const char *lo, size_t lo_len, const char *hi, size_t hi_len)
{
	frag_at_t at;
	put8(w, (uint8_t)strlen(name));
	memcpy(w->b + w->n, name, strlen(name));
	w->n += strlen(name);
	put64(w, max);
	at.min = w->n;
	put64(w, min);
	at.lo = put_row(w, lo, lo_len);
	at.hi = put_row(w, hi, hi_len);
	return at;
}

static void assert_corrupt_at(const bw_t *w, size_t want)
{
	ig__tconf_t *d = NULL;
	size_t off = SIZE_MAX;
	assert_int_equal(ig__tconf_decode(w->b, w->n, &d, &off), IG_ECORRUPT);
	assert_int_equal(off, want);
	assert_null(d);
}

/* The layout in docs/formats.md is the one the encoder writes. */
static void test_v2_layout(void **state)
{
	(void)state;
	bw_t w;
	put_head(&w, 2, 2);
	put_frag(&w, "b", 20, 11, "m", 1, "", 0);
	put_frag(&w, "a", 10, 10, "", 0, "m", 1);
	seal(&w);
	ig__tc_frag_t f[] = {
		{ .name = "b", .min_txn = 11, .max_txn = 20, .lo = (uint8_t *)"m", .lo_len = 1 },
		{ .name = "a", .min_txn = 10, .max_txn = 10, .hi = (uint8_t *)"m", .hi_len = 1 },
	};
	ig__tc_group_t g = { 2, f };
	ig__tconf_t c = { .table_id = 1, .tablet_id = 42, .replay_txn = 9, .log_dir = "l",
			  .ngroups = 1, .groups = &g };
	uint8_t *buf;
	size_t len;
	assert_int_equal(ig__tconf_encode(&c, &buf, &len), 0);
	assert_int_equal(len, w.n);
	assert_memory_equal(buf, w.b, len);
	free(buf);
}

/* Each fragment rule is refused at the byte that breaks it. */
static void test_v2_rejections(void **state)
{
	(void)state;
	bw_t w;
	put_head(&w, 2, 1);
	frag_at_t at = put_frag(&w, "a", 5, 6, "", 0, "", 0);
	seal(&w);
	assert_corrupt_at(&w, at.min);  /* min_txn above max_txn */

	put_head(&w, 2, 1);
	at = put_frag(&w, "a", 5, 5, "k", 1, "k", 1);
	seal(&w);
	assert_corrupt_at(&w, at.hi);  /* lo == hi */

	put_head(&w, 2, 1);
	at = put_frag(&w, "a", 5, 5, "k\xff", 2, "kz", 2);
	seal(&w);
	assert_corrupt_at(&w, at.hi);  /* lo > hi */

	put_head(&w, 2, 1);
	at = put_frag(&w, "a", 5, 5, "k", 1, "", 0);
	seal(&w);
	ig__st16(w.b + at.lo, 0xffff);  /* a clip row running past the end */
	ig__st32(w.b + w.n - 4, ig_crc32c(0, w.b, w.n - 4));
	assert_corrupt_at(&w, w.n - 4);

	/* Both clip ends unbounded, and -inf below any hi, are fine. */
	ig__tconf_t *d = NULL;
	put_head(&w, 2, 1);
	put_frag(&w, "a", 5, 0, "", 0, "\0", 1);
	seal(&w);
	assert_int_equal(ig__tconf_decode(w.b, w.n, &d, NULL), 0);
	assert_int_equal(d->groups[0].frags[0].hi_len, 1);
	ig__tconf_free(d);
}

/* A version 1 entry (name, max txn) reads as txns 0..max, unclipped. */
static void put_v1(bw_t *w)
{
	put_head(w, 1, 2);
	const char *names[] = { "new.igf", "old.igf" };
	for (int i = 0; i < 2; i++) {
		put8(w, 7);
		memcpy(w->b + w->n, names[i], 7);
		w->n += 7;
		put64(w, 200 - 100 * (uint64_t)i);
	}
	seal(w);
}

static void test_v1_compat(void **state)
{
	(void)state;
	bw_t w;
	put_v1(&w);
	ig__tconf_t *d = NULL;
	assert_int_equal(ig__tconf_decode(w.b, w.n, &d, NULL), 0);
	assert_int_equal(d->replay_txn, 9);
	assert_int_equal(d->groups[0].nfrags, 2);
	for (int i = 0; i < 2; i++) {
		const ig__tc_frag_t *f = &d->groups[0].frags[i];
		assert_int_equal(f->max_txn, 200 - 100 * i);
		assert_int_equal(f->min_txn, 0);
		assert_int_equal(f->lo_len, 0);
		assert_int_equal(f->hi_len, 0);
	}
	assert_string_equal(d->groups[0].frags[1].name, "old.igf");

	/* Re-encoding upgrades it to version 2 and loses nothing. */
	uint8_t *buf;
	size_t len;
	assert_int_equal(ig__tconf_encode(d, &buf, &len), 0);
	assert_int_equal(buf[IG__TC_H_VERSION], IG__TC_VERSION);
	ig__tconf_t *e = NULL;
	assert_int_equal(ig__tconf_decode(buf, len, &e, NULL), 0);
	assert_same(d, e);
	ig__tconf_free(e);
	free(buf);

	/* A root file may still hold it. */
	uint8_t root[IG__RT_HEADER + 4 + sizeof w.b + 4];
	size_t rlen = IG__RT_HEADER + 4 + w.n + 4;
	memset(root, 0, IG__RT_HEADER);
	ig__st32(root + IG__RT_H_MAGIC, IG__RT_MAGIC);
	root[IG__RT_H_VERSION] = IG__RT_VERSION;
	ig__st64(root + IG__RT_H_GEN, 1);
	ig__st32(root + IG__RT_H_COUNT, 1);
	ig__st32(root + IG__RT_H_LENGTH, (uint32_t)rlen);
	ig__st32(root + IG__RT_HEADER, (uint32_t)w.n);
	memcpy(root + IG__RT_HEADER + 4, w.b, w.n);
	ig__st32(root + rlen - 4, ig_crc32c(0, root, rlen - 4));
	ig__root_t *rd = NULL;
	assert_int_equal(ig__root_decode(root, rlen, &rd, NULL), 0);
	assert_same(d, rd->configs[0]);
	ig__root_free(rd);
	ig__tconf_free(d);
}

static void test_v1_rejections(void **state)
{
	(void)state;
	bw_t w;
	put_v1(&w);
	for (size_t n = 0; n < w.n; n++) {
		size_t off = SIZE_MAX;
		ig__tconf_t *d = NULL;
		assert_int_equal(ig__tconf_decode(w.b, n, &d, &off), IG_ECORRUPT);
		assert_true(off <= n);
	}
	/* Unknown versions, either side. */
	w.b[IG__TC_H_VERSION] = 0;
	ig__st32(w.b + w.n - 4, ig_crc32c(0, w.b, w.n - 4));
	assert_corrupt_at(&w, IG__TC_H_VERSION);
	w.b[IG__TC_H_VERSION] = IG__TC_VERSION + 1;
	ig__st32(w.b + w.n - 4, ig_crc32c(0, w.b, w.n - 4));
	assert_corrupt_at(&w, IG__TC_H_VERSION);

	/* A version 2 body labelled version 1 ends where v1's entry should. */
	put_head(&w, 1, 1);
	frag_at_t at = put_frag(&w, "a", 5, 5, "", 0, "", 0);
	seal(&w);
	assert_corrupt_at(&w, at.min);
}

/* ---- root file ---------------------------------------------------------- */

static void test_root_missing_and_torn_tmp(void **state)
{
	(void)state;
	char *dir = make_dir();
	ig__root_t *r = NULL;
	assert_int_equal(ig__root_read(dir, &r, NULL), IG_ENOTFOUND);
	assert_int_equal(write_gen(dir, 1), 0);
	char p[512];
	snprintf(p, sizeof p, "%s/root.tmp", dir);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("IGRT torn", f);
	assert_int_equal(fclose(f), 0);
	assert_root_gen(dir, 1);
	assert_int_equal(write_gen(dir, 2), 0);
	assert_root_gen(dir, 2);
	rm_dir(dir);
}

static void test_root_faults(void **state)
{
	(void)state;
	for (int op = 0; op < IG__CF_NOPS; op++) {
		char *dir = make_dir();
		assert_int_equal(write_gen(dir, 1), 0);
		ig__config_fault((ig__cf_op_t)op, 1, -EIO);
		assert_int_equal(write_gen(dir, 2), -EIO);
		ig__config_fault((ig__cf_op_t)op, 0, 0);
		/* Only a failed directory fsync comes after the rename. */
		assert_root_gen(dir, op == IG__CF_DIRSYNC ? 2 : 1);
		assert_int_equal(write_gen(dir, 3), 0);
		assert_root_gen(dir, 3);
		rm_dir(dir);
	}
}

/* The child replaces the root forever, reporting each generation done. */
static void child_loop(const char *dir, int wfd)
{
	for (uint64_t g = 2;; g++) {
		if (write_gen(dir, g) != 0)
			_exit(2);
		if (write(wfd, &g, sizeof g) != (ssize_t)sizeof g)
			_exit(3);
	}
}

static void test_root_crash(void **state)
{
	(void)state;
	srand((unsigned)time(NULL));
	for (int round = 0; round < 30; round++) {
		char *dir = make_dir();
		assert_int_equal(write_gen(dir, 1), 0);
		int fds[2];
		assert_int_equal(pipe(fds), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child_loop(dir, fds[1]);
		}
		close(fds[1]);
		/* Wait for a random number of reports, then kill mid-flight. */
		uint64_t last = 1, g;
		int want = 1 + rand() % 8;
		for (int i = 0; i < want; i++) {
			assert_int_equal(read(fds[0], &g, sizeof g), sizeof g);
			last = g;
		}
		assert_int_equal(kill(pid, SIGKILL), 0);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st));
		while (read(fds[0], &g, sizeof g) == (ssize_t)sizeof g)
			last = g;
		close(fds[0]);
		ig__root_t *r = NULL;
		assert_int_equal(ig__root_read(dir, &r, NULL), 0);
		assert_true(r->generation == last || r->generation == last + 1);
		uint64_t gen = r->generation;
		ig__root_free(r);
		assert_root_gen(dir, gen);
		rm_dir(dir);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_encode_refuses_frag),
		cmocka_unit_test(test_v2_layout),
		cmocka_unit_test(test_v2_rejections),
		cmocka_unit_test(test_v1_compat),
		cmocka_unit_test(test_v1_rejections),
		cmocka_unit_test(test_truncations_and_flips),
		cmocka_unit_test(test_root_truncations_and_flips),
		cmocka_unit_test(test_root_missing_and_torn_tmp),
		cmocka_unit_test(test_root_faults),
		cmocka_unit_test(test_root_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
