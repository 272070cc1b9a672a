/* Tests of the write-ahead log (storage/log.c, storage/log_read.c): the
 * record bytes docs/formats.md describes, append and replay across
 * segments, group commit (one write and one fdatasync per batch), torn
 * tails of every length cut cleanly, corruption in the middle refused with
 * file and offset, segment deletion, injected I/O errors, and a crash test
 * that kills a writing child with SIGKILL and checks every synced txn
 * survives. Everything runs on real files with real fsyncs in a mkdtemp
 * directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <ingot/storage.h>

#include "cells.h"
#include "log_int.h"

/* ---- helpers ------------------------------------------------------------ */

static char *make_dir(void)
{
	char *d = strdup("/tmp/ig-log-XXXXXX");
	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

/* Removes a test directory (flat: segments only). */
static void remove_dir(char *d)
{
	DIR *dh = opendir(d);
	struct dirent *de;

	assert_non_null(dh);
	while ((de = readdir(dh)) != NULL) {
		char p[512];
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", d, de->d_name);
		assert_int_equal(unlink(p), 0);
	}
	closedir(dh);
	assert_int_equal(rmdir(d), 0);
	free(d);
}

static void seg_path(const char *dir, uint64_t txn, char *out, size_t len)
{
	char name[IG_LOG_NAME_LEN + 1];
	ig_log_segment_name(txn, name);
	snprintf(out, len, "%s/%s", dir, name);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* A one-cell block whose row and value say which txn wrote it, so replay
 * can check each record carries its own bytes. vlen pads the value. */
typedef struct blk {
	uint8_t b[70000];
	uint32_t len;
} blk_t;

static void make_block(blk_t *k, uint64_t txn, uint32_t vlen)
{
	static char val[66000];
	char row[32];
	ig_cell_t c;
	size_t len;
	int n;

	assert_true(vlen < sizeof val);
	snprintf(row, sizeof row, "row-%llu", (unsigned long long)txn);
	n = snprintf(val, sizeof val, "v%llu", (unsigned long long)txn);
	if (vlen > (uint32_t)n)
		memset(val + n, 'a' + (int)(txn % 26), vlen - (uint32_t)n);
	c = cell_set(row, "f:q", (int64_t)txn, "");
	c.value = val;
	c.value_len = vlen > (uint32_t)n ? vlen : (uint32_t)n;
	assert_int_equal(ig_packed_encode(&c, 1, 0, k->b, sizeof k->b, &len), 0);
	k->len = (uint32_t)len;
}

/* Asserts an item is the block make_block gave for txn. */
static int item_is(const ig_log_item_t *it, uint64_t txn)
{
	char row[32];
	ig_cell_t c;

	snprintf(row, sizeof row, "row-%llu", (unsigned long long)txn);
	if (ig_packed_count(&it->block) != 1 || ig_packed_cell(&it->block, 0, &c) != 0)
		return 0;
	return bytes_eq(c.key.row, c.key.row_len, row, strlen(row)) &&
	       c.key.timestamp == (int64_t)txn && it->table_id == txn * 3 &&
	       it->tablet_id == txn * 7;
}

/* Appends one batch of records first..first+n-1, each one txn and one
 * entry, with values of vlen bytes. */
static int append_run(ig_log_t *log, uint64_t first, size_t n, uint32_t vlen)
{
	ig_log_rec_t *recs = calloc(n, sizeof *recs);
	ig_log_entry_t *ents = calloc(n, sizeof *ents);
	blk_t *blks = calloc(n, sizeof *blks);
	int rc;

	assert_true(recs && ents && blks);
	for (size_t i = 0; i < n; i++) {
		uint64_t t = first + i;
		make_block(&blks[i], t, vlen);
		ents[i] = (ig_log_entry_t){.table_id = t * 3, .tablet_id = t * 7,
					   .block = blks[i].b, .block_len = blks[i].len};
		recs[i] = (ig_log_rec_t){.first_txn = t, .last_txn = t, .entries = &ents[i],
					 .nentries = 1};
	}
	rc = ig_log_append(log, recs, n);
	free(recs);
	free(ents);
	free(blks);
	return rc;
}

/* Replay collector: txns seen, records' offsets, contents checked. */
typedef struct seen {
	uint64_t txns[4096];
	uint64_t offs[4096];
	size_t n;
	int bad;
} seen_t;

static int collect(void *arg, const ig_log_record_t *r)
{
	seen_t *s = arg;
	ig_log_item_t it;
	size_t pos = 0, items = 0;

	while (ig_log_record_next(r, &pos, &it)) {
		if (!item_is(&it, r->first_txn + items))
			s->bad++;
		items++;
	}
	if (items != r->nentries)
		s->bad++;
	if (s->n < 4096) {
		s->offs[s->n] = r->offset;
		s->txns[s->n++] = r->first_txn;
	}
	return 0;
}

static void open_log(const char *dir, uint64_t segmax, ig_log_t **log)
{
	ig_log_options_t o = {.segment_max = segmax};
	ig_log_error_t err;
	int rc = ig_log_open(dir, &o, log, NULL, &err);
	if (rc != 0)
		fail_msg("open: %s (%s)", ig_strerror(rc), err.msg);
}

/* ---- the bytes of a record ---------------------------------------------- */

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t ld64(const uint8_t *p)
{
	return (uint64_t)ld32(p) << 32 | ld32(p + 4);
}

/* Offsets as docs/formats.md gives them, not taken from log_int.h. */
static void test_record_bytes(void **state)
{
	char *dir = make_dir(), path[512];
	ig_log_t *log;
	blk_t k;
	uint8_t *b;
	size_t len;

	(void)state;
	open_log(dir, 0, &log);
	assert_int_equal(append_run(log, 0x1000, 1, 1), 0);
	assert_int_equal(append_run(log, 0x1001, 1, 1), 0);
	assert_int_equal(ig_log_close(log), 0);
	seg_path(dir, 0x1000, path, sizeof path);
	assert_non_null(strstr(path, "/log-0000000000001000.igl"));
	b = slurp(path, &len);
	make_block(&k, 0x1000, 1);
	uint32_t L = 44 + 20 + k.len + 4;
	assert_true(len > L);
	assert_memory_equal(b, "IGLR", 4);
	assert_int_equal(b[4], 1);
	assert_int_equal(b[5] | b[6] | b[7], 0);
	assert_int_equal(ld32(b + 8), L);
	assert_int_equal(ld32(b + 12), 1);
	assert_int_equal(ld64(b + 16), 0x1000);
	assert_int_equal(ld64(b + 24), 0x1000);
	assert_int_equal(ld64(b + 32), 0);
	assert_int_equal(ld32(b + 40), ig_crc32c(0, b, 40));
	assert_int_equal(ld64(b + 44), 0x1000 * 3);
	assert_int_equal(ld64(b + 52), 0x1000 * 7);
	assert_int_equal(ld32(b + 60), k.len);
	assert_memory_equal(b + 64, k.b, k.len);
	assert_int_equal(ld32(b + L - 4), ig_crc32c(0, b, L - 4));
	/* The second write's record says where that write began. */
	assert_int_equal(ld64(b + L + 32), L);
	free(b);
	remove_dir(dir);
}

/* ---- round trip --------------------------------------------------------- */

static void test_names(void **state)
{
	char name[IG_LOG_NAME_LEN + 1];
	uint64_t t;

	(void)state;
	ig_log_segment_name(0x1000, name);
	assert_string_equal(name, "log-0000000000001000.igl");
	assert_true(ig_log_segment_parse(name, &t));
	assert_int_equal(t, 0x1000);
	ig_log_segment_name(UINT64_MAX, name);
	assert_true(ig_log_segment_parse(name, &t));
	assert_true(t == UINT64_MAX);
	assert_false(ig_log_segment_parse("log-000000000000100A.igl", &t));
	assert_false(ig_log_segment_parse("log-0000000000000000.igl", &t));
	assert_false(ig_log_segment_parse("log-00000000000010.igl", &t));
	assert_false(ig_log_segment_parse("log-0000000000001000.igl.tmp", &t));
	assert_false(ig_log_segment_parse("xog-0000000000001000.igl", &t));
}

static void test_round_trip_segments(void **state)
{
	char *dir = make_dir();
	ig_log_t *log;
	ig_log_stats_t st;
	ig_log_scan_t sc;
	ig_log_error_t err;
	uint64_t *segs, txn = 1;
	size_t nsegs;
	static seen_t s;
	uint64_t rng = 42;

	(void)state;
	open_log(dir, 2048, &log);
	for (int i = 0; i < 60; i++) {
		size_t n = 1 + rng_next(&rng) % 4;
		assert_int_equal(append_run(log, txn, n, (uint32_t)(rng_next(&rng) % 300)), 0);
		txn += n;
		txn += rng_next(&rng) % 3; /* gaps are allowed */
	}
	ig_log_stats(log, &st);
	assert_int_equal(st.batches, 60);
	assert_true(st.segments >= 5);
	assert_int_equal(ig_log_close(log), 0);

	assert_int_equal(ig_log_list(dir, &segs, &nsegs), 0);
	assert_int_equal(nsegs, st.segments);
	memset(&s, 0, sizeof s);
	assert_int_equal(ig_log_replay(dir, 0, collect, &s, &sc, &err), 0);
	assert_int_equal(s.bad, 0);
	assert_int_equal(s.n, st.records);
	assert_int_equal(sc.records, st.records);
	assert_int_equal(sc.torn_bytes, 0);
	for (size_t i = 1; i < s.n; i++)
		assert_true(s.txns[i] > s.txns[i - 1]);
	/* Each segment is named by the first txn in it. */
	for (size_t j = 0, i = 0; j < nsegs; j++) {
		while (i < s.n && s.txns[i] < segs[j])
			i++;
		assert_true(i < s.n);
		assert_int_equal(s.txns[i], segs[j]);
		assert_int_equal(s.offs[i], 0);
	}
	/* from_txn skips what is below it. */
	uint64_t from = s.txns[s.n / 2];
	static seen_t s2;
	memset(&s2, 0, sizeof s2);
	assert_int_equal(ig_log_replay(dir, from, collect, &s2, &sc, &err), 0);
	assert_int_equal(s2.n, s.n - s.n / 2);
	assert_int_equal(s2.txns[0], from);

	/* Reopening continues after the last txn, refusing older ones. */
	open_log(dir, 2048, &log);
	assert_int_equal(ig_log_last_txn(log), s.txns[s.n - 1]);
	assert_int_equal(append_run(log, s.txns[s.n - 1], 1, 1), IG_EINVAL);
	assert_int_equal(append_run(log, s.txns[s.n - 1] + 1, 1, 1), 0);
	assert_int_equal(ig_log_close(log), 0);
	free(segs);
	remove_dir(dir);
}

static void test_bad_appends(void **state)
{
	char *dir = make_dir();
	ig_log_t *log;
	blk_t k;
	uint8_t junk[64] = {0};

	(void)state;
	open_log(dir, 0, &log);
	make_block(&k, 5, 1);
	ig_log_entry_t e = {.table_id = 15, .tablet_id = 35, .block = k.b, .block_len = k.len};
	ig_log_rec_t r = {.first_txn = 5, .last_txn = 5, .entries = &e, .nentries = 1};
	ig_log_rec_t two[2] = {r, r};
	assert_int_equal(ig_log_append(log, &r, 0), IG_EINVAL);
	r.first_txn = 0;
	assert_int_equal(ig_log_append(log, &r, 1), IG_EINVAL);
	r.first_txn = 6;
	assert_int_equal(ig_log_append(log, &r, 1), IG_EINVAL); /* first > last */
	assert_int_equal(ig_log_append(log, two, 2), IG_EINVAL); /* 5 then 5 */
	r.first_txn = 5;
	e.block = junk;
	e.block_len = sizeof junk;
	assert_int_equal(ig_log_append(log, &r, 1), IG_EINVAL); /* not a packed block */
	e.block = k.b;
	e.block_len = k.len;
	/* A record may span txns and carry no entries. */
	ig_log_rec_t span = {.first_txn = 1, .last_txn = 4};
	assert_int_equal(ig_log_append(log, &span, 1), 0);
	assert_int_equal(ig_log_append(log, &r, 1), 0);
	assert_int_equal(ig_log_last_txn(log), 5);
	assert_int_equal(ig_log_close(log), 0);
	remove_dir(dir);
}

/* ---- group commit --------------------------------------------------------- */

static int count_ops(void *arg, ig_log_op_t op)
{
	((unsigned *)arg)[op]++;
	return 0;
}

static void test_group_commit(void **state)
{
	char *dir = make_dir();
	unsigned ops[IG_LOG_OP_COUNT] = {0};
	ig_log_options_t o = {.fault = count_ops, .fault_arg = ops};
	ig_log_t *log;
	ig_log_stats_t st;
	ig_log_scan_t sc;
	ig_log_error_t err;
	static seen_t s;

	(void)state;
	assert_int_equal(ig_log_open(dir, &o, &log, NULL, &err), 0);
	/* The first batch creates a segment: one create, one directory sync. */
	assert_int_equal(append_run(log, 1, 64, 100), 0);
	assert_int_equal(ops[IG_LOG_OP_CREATE], 1);
	assert_int_equal(ops[IG_LOG_OP_DIRSYNC], 1);
	assert_int_equal(ops[IG_LOG_OP_WRITE], 1);
	assert_int_equal(ops[IG_LOG_OP_SYNC], 1);
	/* Then N batches: N writes and N syncs, whatever their sizes. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(append_run(log, 65 + 10 * (uint64_t)i, 10, 50), 0);
	assert_int_equal(ops[IG_LOG_OP_WRITE], 11);
	assert_int_equal(ops[IG_LOG_OP_SYNC], 11);
	assert_int_equal(ops[IG_LOG_OP_DIRSYNC], 1);
	ig_log_stats(log, &st);
	assert_int_equal(st.ops[IG_LOG_OP_SYNC], 11);
	assert_int_equal(st.records, 164);
	assert_int_equal(ig_log_close(log), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(ig_log_replay(dir, 0, collect, &s, &sc, &err), 0);
	assert_int_equal(s.n, 164);
	assert_int_equal(s.bad, 0);
	remove_dir(dir);
}

/* ---- torn tails ------------------------------------------------------------ */

/* A segment of three writes: txns 1-2, 3, then 4-6 (the last write). */
static uint8_t *three_writes(char **dirp, size_t *len, uint64_t *last_write)
{
	char *dir = make_dir(), path[512];
	ig_log_t *log;
	ig_log_stats_t st;
	uint8_t *b;

	open_log(dir, 0, &log);
	assert_int_equal(append_run(log, 1, 2, 30), 0);
	assert_int_equal(append_run(log, 3, 1, 30), 0);
	ig_log_stats(log, &st);
	*last_write = st.bytes;
	assert_int_equal(append_run(log, 4, 3, 30), 0);
	assert_int_equal(ig_log_close(log), 0);
	seg_path(dir, 1, path, sizeof path);
	b = slurp(path, len);
	*dirp = dir;
	return b;
}

static void test_torn_tail_every_length(void **state)
{
	char *dir, path[512];
	size_t len;
	uint64_t w3;
	uint8_t *b = three_writes(&dir, &len, &w3);
	static seen_t s;
	ig_log_scan_t sc;
	ig_log_error_t err;

	(void)state;
	seg_path(dir, 1, path, sizeof path);
	/* Record boundaries in the last write. */
	memset(&s, 0, sizeof s);
	uint64_t prev = 0;
	assert_int_equal(ig_log_scan_buf(b, len, "seg", 1, true, 0, &prev, collect, &s, &sc, &err), 0);
	assert_int_equal(s.n, 6);
	assert_int_equal(s.offs[3], w3);

	for (size_t cut = (size_t)w3; cut < len; cut++) {
		/* The tail cut short, and the tail's end zero-filled. */
		for (int zero = 0; zero < 2; zero++) {
			uint8_t *c = malloc(len);
			size_t clen = zero ? len : cut;
			assert_non_null(c);
			memcpy(c, b, len);
			if (zero)
				memset(c + cut, 0, len - cut);
			static seen_t t;
			memset(&t, 0, sizeof t);
			prev = 0;
			int rc = ig_log_scan_buf(c, clen, "seg", 1, true, 0, &prev, collect, &t, &sc,
						 &err);
			if (rc != 0)
				fail_msg("cut %zu zero %d: %s", cut, zero, err.msg);
			assert_int_equal(t.bad, 0);
			/* Whole records of the torn write before the cut survive;
			 * a record counts only when it is entirely there. */
			size_t expect = 3;
			for (size_t i = 4; i <= 5; i++)
				if (s.offs[i] <= cut)
					expect = i;
			assert_int_equal(t.n, expect);
			assert_int_equal(sc.valid_end, s.offs[expect]);
			assert_int_equal(sc.torn_bytes, clen - s.offs[expect]);
			assert_int_equal(sc.last_txn, expect);

			/* The writer cuts it and goes on, for a sample of cuts. */
			if ((cut % 17) == 0 || cut == (size_t)w3 || cut + 1 == len) {
				ig_log_t *log;
				ig_log_scan_t os;
				struct stat stt;
				spit(path, c, clen);
				assert_int_equal(ig_log_open(dir, NULL, &log, &os, &err), 0);
				assert_int_equal(os.torn_bytes, clen - s.offs[expect]);
				assert_int_equal(stat(path, &stt), 0);
				assert_int_equal((uint64_t)stt.st_size, s.offs[expect]);
				assert_int_equal(ig_log_last_txn(log), expect);
				assert_int_equal(append_run(log, 100, 2, 5), 0);
				assert_int_equal(ig_log_close(log), 0);
				memset(&t, 0, sizeof t);
				assert_int_equal(ig_log_replay(dir, 0, collect, &t, &sc, &err), 0);
				assert_int_equal(t.n, expect + 2);
				assert_int_equal(t.txns[expect], 100);
				assert_int_equal(sc.torn_bytes, 0);
			}
			free(c);
		}
	}
	free(b);
	remove_dir(dir);
}

/* A crash right after a segment was created leaves it empty, or with only
 * part of its first write: reopening deletes it. */
static void test_torn_new_segment(void **state)
{
	char *dir = make_dir(), path[512];
	ig_log_t *log;
	ig_log_error_t err;
	uint64_t *segs;
	size_t n, len;

	(void)state;
	open_log(dir, 100, &log);
	assert_int_equal(append_run(log, 1, 2, 100), 0);
	assert_int_equal(append_run(log, 10, 2, 100), 0);
	assert_int_equal(ig_log_close(log), 0);
	seg_path(dir, 10, path, sizeof path);
	uint8_t *b = slurp(path, &len);
	spit(path, b, 30);
	open_log(dir, 100, &log);
	assert_int_equal(ig_log_last_txn(log), 2);
	assert_int_equal(ig_log_list(dir, &segs, &n), 0);
	assert_int_equal(n, 1);
	free(segs);
	/* The next txn may now be below the deleted segment's name. */
	assert_int_equal(append_run(log, 3, 1, 1), 0);
	assert_int_equal(ig_log_close(log), 0);
	/* An empty last segment replays as nothing... */
	spit(path, b, 0);
	assert_int_equal(ig_log_replay(dir, 0, NULL, NULL, &(ig_log_scan_t){0}, &err), 0);
	/* ...but an empty segment before the last one lost its records. */
	seg_path(dir, 5, path, sizeof path);
	spit(path, b, 0);
	assert_int_equal(ig_log_replay(dir, 0, NULL, NULL, &(ig_log_scan_t){0}, &err), IG_ECORRUPT);
	assert_string_equal(err.file, "log-0000000000000005.igl");
	assert_int_equal(unlink(path), 0);
	free(b);
	remove_dir(dir);
}

/* ---- corruption -------------------------------------------------------------- */

static void test_corrupt_middle(void **state)
{
	char *dir, path[512], name[IG_LOG_NAME_LEN + 1];
	size_t len;
	uint64_t w3;
	uint8_t *b = three_writes(&dir, &len, &w3);
	ig_log_scan_t sc;
	ig_log_error_t err;
	static seen_t s;
	uint64_t prev = 0;

	(void)state;
	seg_path(dir, 1, path, sizeof path);
	ig_log_segment_name(1, name);
	memset(&s, 0, sizeof s);
	assert_int_equal(ig_log_scan_buf(b, len, "seg", 1, true, 0, &prev, collect, &s, &sc, &err), 0);
	/* Every byte of records 0..2 (the synced writes before the last one). */
	for (size_t at = 0; at < w3; at++) {
		size_t rec = at >= s.offs[2] ? 2 : at >= s.offs[1] ? 1 : 0;
		b[at] ^= 0x20;
		spit(path, b, len);
		memset(&err, 0, sizeof err);
		int rc = ig_log_replay(dir, 0, NULL, NULL, &sc, &err);
		if (rc != IG_ECORRUPT)
			fail_msg("flip at %zu: rc %d", at, rc);
		assert_string_equal(err.file, name);
		assert_int_equal(err.offset, s.offs[rec]);
		char want[64];
		snprintf(want, sizeof want, "%s: offset %llu: ", name,
			 (unsigned long long)s.offs[rec]);
		assert_non_null(strstr(err.msg, want));
		assert_non_null(strstr(err.msg, dir));
		/* The writer refuses to open on it too. */
		ig_log_t *log;
		assert_int_equal(ig_log_open(dir, NULL, &log, NULL, &err), IG_ECORRUPT);
		assert_int_equal(err.offset, s.offs[rec]);
		b[at] ^= 0x20;
	}
	spit(path, b, len);
	assert_int_equal(ig_log_replay(dir, 0, NULL, NULL, &sc, &err), 0);
	free(b);
	remove_dir(dir);
}

/* In a segment that is not the last, even damage at its end is corruption:
 * the writer moved on only after it was synced. */
static void test_corrupt_end_of_earlier_segment(void **state)
{
	char *dir = make_dir(), path[512];
	ig_log_t *log;
	ig_log_scan_t sc;
	ig_log_error_t err;
	uint8_t *b;
	size_t len;

	(void)state;
	open_log(dir, 100, &log);
	assert_int_equal(append_run(log, 1, 2, 100), 0);
	assert_int_equal(append_run(log, 10, 2, 100), 0);
	assert_int_equal(ig_log_close(log), 0);
	seg_path(dir, 1, path, sizeof path);
	b = slurp(path, &len);
	spit(path, b, len - 1);
	assert_int_equal(ig_log_replay(dir, 0, NULL, NULL, &sc, &err), IG_ECORRUPT);
	assert_string_equal(err.file, "log-0000000000000001.igl");
	assert_true(err.offset > 0 && err.offset < len);
	b[len - 1] ^= 1;
	spit(path, b, len);
	assert_int_equal(ig_log_replay(dir, 0, NULL, NULL, &sc, &err), IG_ECORRUPT);
	free(b);
	remove_dir(dir);
}

/* ---- deletion ------------------------------------------------------------------ */

static void test_delete_below(void **state)
{
	char *dir = make_dir();
	ig_log_t *log;
	uint64_t *segs;
	size_t n, del;
	ig_log_scan_t sc;
	ig_log_error_t err;
	static seen_t s;

	(void)state;
	open_log(dir, 100, &log);
	for (uint64_t t = 1; t <= 50; t += 10)
		assert_int_equal(append_run(log, t, 5, 100), 0); /* segments 1,11,21,31,41 */
	assert_int_equal(ig_log_list(dir, &segs, &n), 0);
	assert_int_equal(n, 5);
	free(segs);
	assert_int_equal(ig_log_delete_below(log, 11, &del), 0); /* 1..5 are all < 11 */
	assert_int_equal(del, 1);
	assert_int_equal(ig_log_delete_below(log, 20, &del), 0); /* 11..15 < 20 but 21 isn't */
	assert_int_equal(del, 0);
	assert_int_equal(ig_log_delete_below(log, 21, &del), 0);
	assert_int_equal(del, 1);
	assert_int_equal(ig_log_delete_below(log, 45, &del), 0);
	assert_int_equal(del, 2); /* 21..25, 31..35; never the last one */
	assert_int_equal(ig_log_list(dir, &segs, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(segs[0], 41);
	free(segs);
	/* Every record below: an empty segment named by the next txn takes
	 * the old one's place, and carries the numbering across a reopen. */
	assert_int_equal(ig_log_delete_below(log, UINT64_MAX, &del), 0);
	assert_int_equal(del, 1);
	assert_int_equal(ig_log_list(dir, &segs, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(segs[0], 46);
	free(segs);
	assert_int_equal(ig_log_close(log), 0);
	open_log(dir, 100, &log);
	assert_int_equal(ig_log_last_txn(log), 45);
	assert_int_equal(append_run(log, 60, 1, 1), 0);
	assert_int_equal(ig_log_close(log), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(ig_log_replay(dir, 0, collect, &s, &sc, &err), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.txns[0], 60);
	assert_int_equal(s.bad, 0);
	remove_dir(dir);
}

/* ---- injected I/O errors --------------------------------------------------------- */

typedef struct fault {
	ig_log_op_t op;
	int nth;      /* fail the nth call of op (1-based); 0 = never */
	int err;
	int calls;
} fault_t;

static int inject(void *arg, ig_log_op_t op)
{
	fault_t *f = arg;
	if (op == f->op && ++f->calls == f->nth)
		return f->err;
	return 0;
}

static void test_io_errors(void **state)
{
	static const struct {
		ig_log_op_t op;
		int nth;
		int err;
		int broken;
	} cases[] = {
		{IG_LOG_OP_WRITE, 3, -EIO, 1},
		{IG_LOG_OP_SYNC, 3, -EIO, 1},
		{IG_LOG_OP_WRITE, 2, -ENOSPC, 1},
		{IG_LOG_OP_CREATE, 2, -EMFILE, 0},
		{IG_LOG_OP_DIRSYNC, 2, -EIO, 1},
	};

	(void)state;
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		char *dir = make_dir();
		fault_t f = {.op = cases[c].op, .nth = cases[c].nth, .err = cases[c].err};
		ig_log_options_t o = {.segment_max = 300, .fault = inject, .fault_arg = &f};
		ig_log_t *log;
		ig_log_error_t err;
		ig_log_scan_t sc;
		static seen_t s;
		uint64_t t = 1, good = 0;
		int failed = 0;

		assert_int_equal(ig_log_open(dir, &o, &log, NULL, &err), 0);
		for (int i = 0; i < 8; i++, t += 2) {
			int rc = append_run(log, t, 2, 200);
			if (failed && cases[c].broken) {
				assert_int_equal(rc, IG_ESTATE);
			} else if (rc == 0) {
				good += 2;
			} else {
				assert_int_equal(rc, cases[c].err);
				failed = 1;
			}
		}
		assert_true(failed);
		assert_int_equal(ig_log_close(log), 0);
		/* Whatever was acknowledged is there; nothing else is. */
		memset(&s, 0, sizeof s);
		assert_int_equal(ig_log_replay(dir, 0, collect, &s, &sc, &err), 0);
		assert_int_equal(s.bad, 0);
		if (cases[c].op == IG_LOG_OP_SYNC || cases[c].op == IG_LOG_OP_DIRSYNC)
			assert_true(s.n >= good && s.n <= good + 2); /* written, not synced */
		else
			assert_int_equal(s.n, good);
		/* Reopened, it goes on. */
		assert_int_equal(ig_log_open(dir, NULL, &log, NULL, &err), 0);
		assert_int_equal(append_run(log, 100, 1, 1), 0);
		assert_int_equal(ig_log_close(log), 0);
		remove_dir(dir);
	}
}

/* ---- crash test -------------------------------------------------------------------- */

/* The child: opens the log (cutting any torn tail), appends batches of
 * consecutive txns with values up to 48 KiB (so a write spans many pages
 * and a kill can land inside it), and after each append returns reports
 * its last txn through the pipe. Runs until killed. */
static void crash_child(const char *dir, int wfd, uint64_t seed)
{
	ig_log_t *log;
	ig_log_options_t o = {.segment_max = 256 << 10};
	ig_log_error_t err;
	uint64_t t;

	if (ig_log_open(dir, &o, &log, NULL, &err) != 0) {
		fprintf(stderr, "child: open: %s\n", err.msg);
		_exit(2);
	}
	t = ig_log_last_txn(log) + 1;
	for (;;) {
		size_t n = 1 + rng_next(&seed) % 8;
		uint32_t vlen = (uint32_t)(rng_next(&seed) % (48 << 10));
		uint64_t last = t + n - 1;
		if (append_run(log, t, n, vlen) != 0)
			_exit(3);
		if (write(wfd, &last, sizeof last) != sizeof last)
			_exit(4);
		t = last + 1;
	}
}

/* Replay check for the crash test: txns consecutive from 1, each record's
 * blocks its own. */
typedef struct chain {
	uint64_t next;
	int bad;
} chain_t;

static int chain(void *arg, const ig_log_record_t *r)
{
	chain_t *c = arg;
	ig_log_item_t it;
	size_t pos = 0;
	uint64_t t = r->first_txn;

	if (r->first_txn != c->next)
		c->bad++;
	while (ig_log_record_next(r, &pos, &it))
		if (!item_is(&it, t++))
			c->bad++;
	if (t != r->last_txn + 1)
		c->bad++;
	c->next = r->last_txn + 1;
	return 0;
}

static void test_crash_kill9(void **state)
{
	char *dir = make_dir();
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20), reported = 0;
	struct timespec t0, now;
	int iters = 0, torn = 0;

	(void)state;
	print_message("crash test seed %llu\n", (unsigned long long)seed);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int p[2];
		pid_t pid;
		uint64_t want = 1 + rng_next(&seed) % 12, got = 0, v;
		int status;

		clock_gettime(CLOCK_MONOTONIC, &now);
		/* Several dozen iterations, bounded in time on a slow disk. */
		if (iters >= 60 || (iters >= 20 && now.tv_sec - t0.tv_sec > 60))
			break;
		iters++;
		assert_int_equal(pipe(p), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			crash_child(dir, p[1], rng_next(&seed));
		}
		close(p[1]);
		/* Wait for `want` reports, then spin a random while and kill. */
		while (got < want) {
			ssize_t r = read(p[0], &v, sizeof v);
			if (r == 0)
				break;
			assert_int_equal(r, sizeof v);
			assert_true(v > reported);
			reported = v;
			got++;
		}
		for (volatile uint64_t spin = rng_next(&seed) % 3000000; spin > 0; spin--)
			;
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		/* Reports sent before the kill are still in the pipe. */
		for (;;) {
			ssize_t r = read(p[0], &v, sizeof v);
			if (r == 0)
				break;
			assert_int_equal(r, sizeof v);
			assert_true(v > reported);
			reported = v;
		}
		close(p[0]);

		/* Every reported txn is there, consecutive from 1, each record
		 * with its own bytes; a torn tail is the only thing dropped. */
		chain_t c = {1, 0};
		ig_log_scan_t sc;
		ig_log_error_t err;
		int rc = ig_log_replay(dir, 0, chain, &c, &sc, &err);
		if (rc != 0)
			fail_msg("iteration %d: replay: %s", iters, err.msg);
		assert_int_equal(c.bad, 0);
		assert_true(sc.last_txn >= reported);
		assert_int_equal(c.next, sc.last_txn + 1);
		torn += sc.torn_bytes > 0;
	}
	/* A full content check at the end: txns 1..last, all intact. */
	{
		static seen_t s;
		ig_log_scan_t sc;
		ig_log_error_t err;
		uint64_t *segs;
		size_t n;
		memset(&s, 0, sizeof s);
		assert_int_equal(ig_log_replay(dir, 0, collect, &s, &sc, &err), 0);
		assert_int_equal(s.bad, 0);
		assert_true(sc.last_txn >= reported);
		assert_int_equal(ig_log_list(dir, &segs, &n), 0);
		print_message("crash test: %d kills, %d torn tails cut, %llu txns synced, %zu segments\n",
			      iters, torn, (unsigned long long)sc.last_txn, n);
		free(segs);
	}
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_record_bytes),
		cmocka_unit_test(test_round_trip_segments),
		cmocka_unit_test(test_bad_appends),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_torn_tail_every_length),
		cmocka_unit_test(test_torn_new_segment),
		cmocka_unit_test(test_corrupt_middle),
		cmocka_unit_test(test_corrupt_end_of_earlier_segment),
		cmocka_unit_test(test_delete_below),
		cmocka_unit_test(test_io_errors),
		cmocka_unit_test(test_crash_kill9),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
