/* Tests of tablet configs and the root file (storage/config.c): encode and
 * decode round trips, every truncation and every single-bit flip refused
 * with an offset, a root replace failing at each step (write, fdatasync,
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

#include "config_int.h"

/* ---- fixtures ----------------------------------------------------------- */

static ig__tc_frag_t g0[] = { { "f3.igf", 300 }, { "f2.igf", 200 }, { "f1.igf", 100 } };
static ig__tc_frag_t g2[] = { { "x.igf", 7 } };
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
	ig__tc_frag_t bad[] = { { "a", 1 }, { "b", 2 } };  /* not newest first */
	ig__tc_group_t bg = { 2, bad };
	c = sample(1);
	c.ngroups = 1;
	c.groups = &bg;
	assert_int_equal(ig__tconf_encode(&c, &buf, &len), IG_EINVAL);
	bad[1].max_txn = 0;
	bad[1].name = "../x";
	assert_int_equal(ig__tconf_encode(&c, &buf, &len), IG_EINVAL);
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
		cmocka_unit_test(test_truncations_and_flips),
		cmocka_unit_test(test_root_truncations_and_flips),
		cmocka_unit_test(test_root_missing_and_torn_tmp),
		cmocka_unit_test(test_root_faults),
		cmocka_unit_test(test_root_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
