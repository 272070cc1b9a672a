/* Recovery tests of the embedded store (<ingot/store.h>): what opening a
 * data directory makes of what a close, a kill -9 or damage left in it.
 *
 * Synced applies come back from the log alone; a torn log tail is cut
 * (the torn mutation absent, never half there) while damage in synced
 * log records refuses the open naming the segment and byte offset; a
 * stray root.tmp is ignored; a damaged root file, a missing fragment file
 * and a damaged fragment index refuse the open naming the file; a damaged
 * data block fails the scans that read it, naming file and block; the
 * log a crash leaves stays near log_budget, so recovery is bounded; table
 * creates and drops survive a kill.
 *
 * The tests edit the files of a closed store the way a crash or a bad
 * disk would, using the byte layouts of docs/formats.md (parsed here, not
 * through internal headers). The fork tests run first: a process that ran
 * a store (liburcu's call_rcu thread stays behind) must not fork a child
 * that opens one, so their children write, get killed and recover while
 * the parent only watches. No test sleeps to wait for an event: waits are
 * on pipes with deadlines, and maintenance is driven by ig_store_flush.
 */
#include "store_util.h"
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((uint64_t)1 << 10)

/* Set once this process opened a store (see the header comment). */
static bool opened_here;

/* ---- files ------------------------------------------------------------------------ */

/* Reads a whole file. Ownership: the caller frees the result. */
static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *b;
	FILE *f = fopen(path, "rb");

	if (!f)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(fstat(fileno(f), &st), 0);
	b = malloc((size_t)st.st_size + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*len = (size_t)st.st_size;
	return b;
}

static void spill(const char *path, const void *buf, size_t len, const char *mode)
{
	FILE *f = fopen(path, mode);

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void flip_byte(const char *path, uint64_t off)
{
	size_t len;
	uint8_t *b = slurp(path, &len);

	assert_true(off < len);
	b[off] ^= 0x5a;
	spill(path, b, len, "wb");
	free(b);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Total bytes of the files in dir/sub. */
static uint64_t dir_bytes(const char *dir, const char *sub)
{
	char path[512];
	struct dirent *e;
	uint64_t total = 0;
	DIR *d;

	snprintf(path, sizeof path, "%s/%s", dir, sub);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, 0) == 0)
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

/* ---- log segments (docs/formats.md, "Write-ahead log") --------------------------- */

#define SEG_NAME_LEN 24 /* "log-" 16 hex ".igl" */
#define MAX_SEGS 256

static int seg_filter(const struct dirent *e)
{
	size_t l = strlen(e->d_name);

	return l == SEG_NAME_LEN && strncmp(e->d_name, "log-", 4) == 0 &&
	       strcmp(e->d_name + l - 4, ".igl") == 0;
}

/* The segment names of dir's log, oldest first (fixed-width hex sorts as
 * numbers). Returns how many. */
static size_t list_segments(const char *dir, char (*names)[SEG_NAME_LEN + 1], size_t max)
{
	char path[512];
	struct dirent **v;
	int n;

	snprintf(path, sizeof path, "%s/log", dir);
	n = scandir(path, &v, seg_filter, alphasort);
	assert_true(n >= 0);
	assert_true((size_t)n <= max);
	for (int i = 0; i < n; i++) {
		memcpy(names[i], v[i]->d_name, SEG_NAME_LEN + 1); /* seg_filter checked the length */
		free(v[i]);
	}
	free(v);
	return (size_t)n;
}

typedef struct rec {
	uint64_t off, len, first, last;
} rec_t;

/* Splits a segment into its records (header: length at 8, txn range at
 * 16 and 24), failing unless they tile the file. Returns how many. */
static size_t read_records(const char *path, rec_t *v, size_t max)
{
	size_t len, n = 0;
	uint8_t *b = slurp(path, &len);

	for (uint64_t off = 0; off < len; off += v[n++].len) {
		assert_true(n < max && len - off >= 48);
		assert_memory_equal(b + off, "IGLR", 4);
		v[n] = (rec_t){off, be(b + off + 8, 4), be(b + off + 16, 8), be(b + off + 24, 8)};
		assert_true(v[n].len >= 48 && v[n].len <= len - off);
	}
	free(b);
	return n;
}

/* The index of the record holding txn. */
static size_t record_of(const rec_t *v, size_t n, uint64_t txn)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].first <= txn && txn <= v[i].last)
			return i;
	fail_msg("no record holds txn %" PRIu64, txn);
	return 0;
}

/* ---- fragments (docs/formats.md, "Disk fragment") --------------------------------- */

typedef struct fblock {
	uint64_t off;
	uint32_t size, cells;
	char row[32];      /* the block's first row */
} fblock_t;

typedef struct frag {
	char name[64], path[512];
	uint64_t index_off;
	uint32_t nblocks;
	fblock_t blocks[256];
} frag_t;

/* Finds the one fragment file of dir holding the bytes needle (a row in
 * its uncompressed index). */
static void find_fragment(const char *dir, const char *needle, frag_t *f)
{
	char path[512];
	struct dirent *e;
	int found = 0;
	DIR *d;

	snprintf(path, sizeof path, "%s/frags", dir);
	assert_non_null(d = opendir(path));
	while ((e = readdir(d))) {
		size_t len;
		uint8_t *b;

		if (!strstr(e->d_name, ".igf"))
			continue;
		snprintf(path, sizeof path, "%s/frags/%s", dir, e->d_name);
		b = slurp(path, &len);
		if (memmem(b, len, needle, strlen(needle))) {
			snprintf(f->name, sizeof f->name, "%.63s", e->d_name);
			snprintf(f->path, sizeof f->path, "%s", path);
			found++;
		}
		free(b);
	}
	closedir(d);
	assert_int_equal(found, 1);
}

/* Reads the footer (last 80 bytes) and the block index of f->path. */
static void read_index(frag_t *f)
{
	size_t len;
	uint8_t *b = slurp(f->path, &len), *foot = b + len - 80;
	uint64_t at;

	assert_memory_equal(foot, "IGDF", 4);
	f->index_off = be(foot + 8, 8);
	f->nblocks = (uint32_t)be(foot + 64, 4);
	assert_true(f->nblocks <= 256);
	at = f->index_off;
	for (uint32_t i = 0; i < f->nblocks; i++) {
		fblock_t *k = &f->blocks[i];
		uint32_t rlen, clen;

		assert_true(at + 28 <= len - 80);
		rlen = (uint32_t)be(b + at + 24, 2);
		clen = (uint32_t)be(b + at + 26, 2);
		k->off = be(b + at, 8);
		k->size = (uint32_t)be(b + at + 8, 4);
		k->cells = (uint32_t)be(b + at + 12, 4);
		assert_true(rlen < sizeof k->row);
		memcpy(k->row, b + at + 28, rlen);
		k->row[rlen] = 0;
		at += 28 + rlen + clen;
	}
	free(b);
}

/* ---- opening ------------------------------------------------------------------------ */

static ig_store_t *open_store(const char *dir, const ig_store_options_t *o)
{
	opened_here = true;
	return su_open(dir, o);
}

/* Opens dir expecting a failure: returns the error, why gets the text.
 * A store that opens anyway is closed. */
static int open_fails(const char *dir, const ig_store_options_t *o, char *why, size_t len)
{
	ig_store_t *s = NULL;
	int rc;

	opened_here = true;
	why[0] = 0;
	rc = ig_store_open(dir, o, &s, why, len);
	if (rc == 0)
		assert_int_equal(ig_store_close(s), 0);
	print_message("open: %s: %s\n", ig_strerror(rc), why);
	return rc;
}

/* ---- a small model: rows r00000.. with cells a:q and b:q ---------------------------- */

#define NROWS 64u

typedef struct model {
	unsigned ts[NROWS];    /* timestamp of the row's values; 0: absent */
	unsigned clock;
} model_t;

static void row_name(char *buf, unsigned row)
{
	snprintf(buf, 16, "r%05u", row);
}

static void row_value(char *buf, char col, unsigned row, unsigned ts)
{
	snprintf(buf, 32, "%c%05u@%u", col, row, ts);
}

/* Sets (or erases) both cells of row as one synced mutation. */
static uint64_t put_row(ig_table_t *t, model_t *m, unsigned row, bool erase)
{
	char r[16], va[32], vb[32];
	unsigned ts = ++m->clock;
	ig_cell_t c[2];

	row_name(r, row);
	row_value(va, 'a', row, ts);
	row_value(vb, 'b', row, ts);
	c[0] = su_cell(r, "a:q", ts, erase ? NULL : va);
	c[1] = su_cell(r, "b:q", ts, erase ? NULL : vb);
	m->ts[row] = erase ? 0 : ts;
	return su_apply(t, c, 2, IG_STORE_SYNC);
}

static uint64_t put_rows(ig_table_t *t, model_t *m, unsigned from, unsigned to)
{
	uint64_t txn = 0;

	for (unsigned i = from; i < to; i++)
		txn = put_row(t, m, i, false);
	return txn;
}

/* What su_dump gives for m. Ownership: the caller frees it. */
static char *expected_dump(const model_t *m)
{
	char *out = malloc(NROWS * 64 + 1), *at = out;

	assert_non_null(out);
	*at = 0;
	for (unsigned i = 0; i < NROWS; i++) {
		char r[16], va[32], vb[32];

		if (!m->ts[i])
			continue;
		row_name(r, i);
		row_value(va, 'a', i, m->ts[i]);
		row_value(vb, 'b', i, m->ts[i]);
		at += sprintf(at, "%s=%s\n%s=%s\n", r, va, r, vb);
	}
	return out;
}

/* Table "t" of s holds exactly what m says. */
static void check_table(ig_store_t *s, const model_t *m)
{
	ig_table_t *t = su_table(s, "t");
	char *got = su_dump(t), *want = expected_dump(m);

	assert_string_equal(got, want);
	free(got);
	free(want);
	ig_table_release(t);
}

/* A new store in dir with table "t" holding rows [0, n) (synced, not
 * flushed), closed. Returns the last apply's txn. */
static uint64_t make_store(const char *dir, const ig_store_options_t *o, model_t *m, unsigned n)
{
	ig_store_t *s = open_store(dir, o);
	ig_table_t *t;
	uint64_t txn;

	su_create_table(s, "t");
	t = su_table(s, "t");
	txn = put_rows(t, m, 0, n);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	return txn;
}

/* ---- pipes to children ------------------------------------------------------------- */

typedef struct child {
	pid_t pid;
	int fd;                 /* the parent's read end */
} child_t;

/* Forks a child that runs fn(write end, arg) and exits with _exit (so
 * neither cmocka nor atexit handlers run in it). */
static child_t spawn(void (*fn)(int fd, const void *arg), const void *arg)
{
	child_t c;
	int p[2];

	assert_false(opened_here); /* the fork tests must run first */
	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	fflush(stderr);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		close(p[0]);
		fn(p[1], arg);
		_exit(0);
	}
	close(p[1]);
	c.fd = p[0];
	return c;
}

/* Reads exactly len bytes from c before deadline (monotonic ns).
 * Returns false at end of file; when the deadline passes it kills c (no
 * child is left behind) and fails the test. */
static bool read_full(const child_t *c, void *buf, size_t len, int64_t deadline)
{
	struct pollfd pf = {.fd = c->fd, .events = POLLIN};
	size_t got = 0;

	while (got < len) {
		int64_t left = deadline - su_mono_ns();
		ssize_t r;

		if (left <= 0) {
			(void)kill(c->pid, SIGKILL);
			(void)waitpid(c->pid, NULL, 0);
			fail_msg("a child did not answer in time");
		}
		if (poll(&pf, 1, (int)(left / 1000000) + 1) <= 0)
			continue;
		r = read(c->fd, (char *)buf + got, len - got);
		if (r == 0)
			return false;
		if (r < 0 && errno != EINTR)
			fail_msg("pipe: %s", strerror(errno));
		got += r > 0 ? (size_t)r : 0;
	}
	return true;
}

static void send_all(int fd, const void *buf, size_t len)
{
	if (write(fd, buf, len) != (ssize_t)len)
		_exit(91); /* the parent is gone */
}

/* Kills c (SIGKILL), or with kill_it false waits for its clean exit. */
static void reap(child_t *c, bool kill_it)
{
	int status;

	if (kill_it)
		assert_int_equal(kill(c->pid, SIGKILL), 0);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	if (kill_it && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		fail_msg("the child ended with status %#x before the kill", status);
	if (!kill_it && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		fail_msg("the child ended with status %#x", status);
}

/* In a child (no cmocka there): creates name with su_create_table's
 * schema. Returns the error. */
static int child_create(ig_store_t *s, const char *name)
{
	static const char *const fams[] = {"a", "b"};
	ig_group_config_t g = {.name = "g", .families = fams, .nfamilies = 2,
			       .compression = IG_COMPRESSION_ZSTD, .level = 3,
			       .block_size = 4096};
	ig_schema_config_t c = {.groups = &g, .ngroups = 1};

	return ig_store_create_table(s, name, &c, NULL, 0);
}

/* ---- 8. recovery bounded by log_budget (fork, kill -9) ----------------------------- */

#define LB_BUDGET (256 * KiB)
#define LB_SEGMENT (64 * KiB)
#define LB_CELLS 8u
#define LB_VLEN 1024u
#define LB_APPLY ((uint64_t)LB_CELLS * LB_VLEN)      /* value bytes per apply */
#define LB_TARGET (16 * LB_BUDGET)                    /* kill past this much */
#define LB_MAX ((uint32_t)(4 * LB_TARGET / LB_APPLY)) /* the writer stops here */

static const ig_store_options_t lb_opts = {.log_budget = LB_BUDGET,
					   .segment_bytes = LB_SEGMENT};

/* Apply i, cell j: row "w%06u-%u", a value only (i, j) determine. */
static void lb_cell(uint32_t i, uint32_t j, char *row, char *val, ig_cell_t *c)
{
	snprintf(row, 16, "w%06u-%u", i, j);
	su_fill(val, LB_VLEN, (uint64_t)i * LB_CELLS + j);
	*c = (ig_cell_t){.key = {.row = row, .row_len = (uint32_t)strlen(row), .column = "a:q",
				 .column_len = 3, .timestamp = 1},
			 .kind = IG_CELL_SET, .value = val, .value_len = LB_VLEN};
}

/* In the writer child: apply i, synced. */
static int lb_apply(ig_table_t *t, uint32_t i)
{
	static char rows[LB_CELLS][16], vals[LB_CELLS][LB_VLEN + 1];
	static uint8_t buf[LB_CELLS * (LB_VLEN + 256)];
	ig_cell_t c[LB_CELLS];
	size_t len = 0;

	for (uint32_t j = 0; j < LB_CELLS; j++)
		lb_cell(i, j, rows[j], vals[j], &c[j]);
	if (ig_packed_size(c, LB_CELLS, &len) != 0 || len > sizeof buf ||
	    ig_packed_encode(c, LB_CELLS, 0, buf, len, &len) != 0)
		return IG_EINVAL;
	return ig_store_apply(t, buf, len, IG_STORE_ANY_TXN, IG_STORE_SYNC, NULL, NULL, 0);
}

/* What the writer sends after each apply returned. */
typedef struct lb_ack {
	uint64_t i;                 /* the apply */
	uint64_t log_bytes;         /* its stats.log_bytes then */
} lb_ack_t;

/* The writer child: creates table "t", applies 0, 1, ... and acks each
 * once it returned; the parent kills it mid-way. */
static void lb_writer(int fd, const void *arg)
{
	ig_store_stats_t st;
	ig_store_t *s;
	ig_table_t *t;

	if (ig_store_open(arg, &lb_opts, &s, NULL, 0) != 0)
		_exit(2);
	if (child_create(s, "t") != 0 || ig_store_table(s, "t", &t) != 0)
		_exit(3);
	for (uint32_t i = 0; i < LB_MAX; i++) {
		if (lb_apply(t, i) != 0)
			_exit(4);
		ig_store_stats(s, &st);
		send_all(fd, &(lb_ack_t){i, st.log_bytes}, sizeof(lb_ack_t));
	}
	for (;;)
		pause(); /* written all it may: wait for the kill */
}

typedef struct lb_arg {
	uint32_t acked;             /* the last apply the writer acknowledged */
	uint64_t max_log;           /* the most its stats.log_bytes said */
	char dir[64];
} lb_arg_t;

typedef struct lb_report {
	int rc;
	char why[256];
	ig_store_stats_t st;
	uint64_t cells, bad;        /* cells seen; cells with a wrong row or value */
	uint32_t missing;           /* acked applies not whole */
	uint32_t partial;           /* the in-flight apply half there (0 or 1) */
	uint32_t extra;             /* applies past the in-flight one */
} lb_report_t;

/* Checks one recovered cell against lb_cell; counts it per apply. */
static void lb_check_cell(const ig_cell_t *c, uint8_t *seen, lb_report_t *r)
{
	static char row[16], val[LB_VLEN + 1];
	unsigned i, j;
	ig_cell_t want;

	r->cells++;
	if (c->key.row_len >= sizeof row || c->value_len != LB_VLEN) {
		r->bad++;
		return;
	}
	memcpy(row, c->key.row, c->key.row_len);
	row[c->key.row_len] = 0;
	if (sscanf(row, "w%6u-%u", &i, &j) != 2 || i >= LB_MAX || j >= LB_CELLS) {
		r->bad++;
		return;
	}
	lb_cell(i, j, row, val, &want);
	if (memcmp(c->value, val, LB_VLEN) != 0 || c->key.row_len != strlen(row) ||
	    memcmp(c->key.row, row, c->key.row_len) != 0)
		r->bad++;
	else
		seen[i]++;
}

/* Applies up to acked are whole, acked + 1 whole or absent, none later. */
static void lb_judge(const uint8_t *seen, uint32_t acked, lb_report_t *r)
{
	for (uint32_t i = 0; i < LB_MAX; i++) {
		if (i <= acked && seen[i] != LB_CELLS)
			r->missing++;
		if (i == acked + 1 && seen[i] != 0 && seen[i] != LB_CELLS)
			r->partial++;
		if (i > acked + 1 && seen[i] != 0)
			r->extra++;
	}
}

static void lb_scan(ig_table_t *t, uint32_t acked, lb_report_t *r)
{
	static uint8_t seen[LB_MAX];
	ig_scanner_t *sc;
	ig_cell_t c;
	int rc;

	if ((r->rc = ig_scanner_open(t, NULL, &sc)) != 0) {
		snprintf(r->why, sizeof r->why, "scanner open");
		return;
	}
	while ((rc = ig_scanner_next(sc, &c)) == 1)
		lb_check_cell(&c, seen, r);
	if (rc != 0) {
		r->rc = rc;
		snprintf(r->why, sizeof r->why, "scan: %s", ig_scanner_error(sc));
	}
	ig_scanner_close(sc);
	lb_judge(seen, acked, r);
}

/* The recovering child: opens, checks every cell, reports. */
static void lb_recover(int fd, const void *arg)
{
	const lb_arg_t *a = arg;
	lb_report_t r = {0};
	ig_store_t *s;
	ig_table_t *t;

	r.rc = ig_store_open(a->dir, &lb_opts, &s, r.why, sizeof r.why);
	if (r.rc == 0) {
		ig_store_stats(s, &r.st);
		if ((r.rc = ig_store_table(s, "t", &t)) == 0) {
			lb_scan(t, a->acked, &r);
			ig_table_release(t);
		}
		(void)ig_store_close(s);
	}
	send_all(fd, &r, sizeof r);
}

/* Runs the writer until it acked past LB_TARGET bytes, kills it; a gets
 * the last apply it acknowledged and the most log it reported. */
static void lb_write_and_kill(lb_arg_t *a)
{
	child_t c = spawn(lb_writer, a->dir);
	int64_t deadline = su_mono_ns() + 40 * (int64_t)1000000000;
	uint32_t n = 0;
	lb_ack_t ack;

	a->max_log = 0;
	for (; (uint64_t)n * LB_APPLY < LB_TARGET; n++) {
		if (!read_full(&c, &ack, sizeof ack, deadline)) {
			(void)waitpid(c.pid, NULL, 0);
			fail_msg("the writer died after %u applies", n);
		}
		a->acked = (uint32_t)ack.i;
		a->max_log = ack.log_bytes > a->max_log ? ack.log_bytes : a->max_log;
	}
	reap(&c, true);
	while (read_full(&c, &ack, sizeof ack, deadline)) /* sent before the kill */
		a->acked = (uint32_t)ack.i;
	close(c.fd);
}

static void test_recovery_bounded_by_log_budget(void **state)
{
	const uint64_t bound = 2 * LB_BUDGET + 2 * LB_SEGMENT;
	uint64_t log_bytes;
	lb_report_t r;
	lb_arg_t arg;
	child_t c;

	snprintf(arg.dir, sizeof arg.dir, "%.63s", (const char *)*state);
	lb_write_and_kill(&arg);
	log_bytes = dir_bytes(arg.dir, "log");
	c = spawn(lb_recover, &arg);
	assert_true(read_full(&c, &r, sizeof r, su_mono_ns() + 40 * (int64_t)1000000000));
	reap(&c, false);
	close(c.fd);
	print_message("log budget %" PRIu64 " KiB: %u applies acked (%" PRIu64 " KiB); log at most "
		      "%" PRIu64 " KiB while writing, %" PRIu64 " KiB of files at the kill; %" PRIu64
		      " txns replayed in %.1f ms\n", LB_BUDGET / KiB, arg.acked + 1,
		      (arg.acked + 1) * LB_APPLY / KiB, arg.max_log / KiB, log_bytes / KiB,
		      r.st.recovered_txns, (double)r.st.recovery_ns / 1e6);
	if (r.rc != 0)
		fail_msg("recovery: %s: %s", ig_strerror(r.rc), r.why);
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.missing, 0);
	assert_int_equal(r.partial, 0);
	assert_int_equal(r.extra, 0);
	/* Every replayed record holds an apply (over LB_APPLY bytes) or a
	 * config write (one per flush, so at most one per apply). */
	assert_true(r.st.recovered_txns <= 2 * (bound / LB_APPLY) + 8);
	assert_true(log_bytes <= bound);
	assert_true(r.st.log_bytes <= bound);
	assert_true(arg.max_log <= bound); /* at any moment, not just at this kill */
}

/* ---- 9. creates and drops survive a kill -9 ---------------------------------------- */

static int cd_put(ig_store_t *s, const char *table, const char *row, const char *value)
{
	ig_cell_t c = su_cell(row, "a:q", 1, value);
	uint8_t buf[256];
	ig_table_t *t;
	size_t len = 0;
	int rc = ig_store_table(s, table, &t);

	if (rc != 0)
		return rc;
	if ((rc = ig_packed_size(&c, 1, &len)) == 0 && len <= sizeof buf &&
	    (rc = ig_packed_encode(&c, 1, 0, buf, len, &len)) == 0)
		rc = ig_store_apply(t, buf, len, IG_STORE_ANY_TXN, IG_STORE_SYNC, NULL, NULL, 0);
	ig_table_release(t);
	return rc;
}

/* The killed child: "keep" with a cell, "gone" with a cell then dropped,
 * "empty" created last; then it says so (one byte) and waits. */
static void cd_writer(int fd, const void *arg)
{
	ig_store_t *s;

	if (ig_store_open(arg, NULL, &s, NULL, 0) != 0)
		_exit(2);
	if (child_create(s, "keep") != 0 || child_create(s, "gone") != 0 ||
	    cd_put(s, "keep", "r1", "k1") != 0 || cd_put(s, "gone", "r1", "g1") != 0 ||
	    ig_store_drop_table(s, "gone") != 0 || child_create(s, "empty") != 0)
		_exit(3);
	send_all(fd, "d", 1);
	for (;;)
		pause();
}

/* Appends "name:" to rep, then " row=value" per cell (or the lookup's
 * error), then a newline. */
static void cd_describe(ig_store_t *s, const char *name, char *rep, size_t cap)
{
	size_t at = strlen(rep);
	ig_scanner_t *sc;
	ig_table_t *t;
	ig_cell_t c;
	int rc = ig_store_table(s, name, &t);

	at += (size_t)snprintf(rep + at, cap - at, "%s:", name);
	if (rc != 0) {
		snprintf(rep + at, cap - at, " %s\n", ig_strerror(rc));
		return;
	}
	if ((rc = ig_scanner_open(t, NULL, &sc)) == 0) {
		while ((rc = ig_scanner_next(sc, &c)) == 1 && at + 64 < cap)
			at += (size_t)snprintf(rep + at, cap - at, " %.*s=%.*s", (int)c.key.row_len,
					       (const char *)c.key.row, (int)c.value_len,
					       (const char *)c.value);
		ig_scanner_close(sc);
	}
	snprintf(rep + at, cap - at, "%s\n", rc ? " scan failed" : "");
	ig_table_release(t);
}

/* The recovering child: describes the tables, re-creates "gone" and
 * writes to it, then recovers again and describes them again. */
static void cd_recover(int fd, const void *arg)
{
	static const char *const names[] = {"keep", "gone", "empty"};
	char rep[2048] = "";
	ig_store_t *s;

	for (int round = 0; round < 2; round++) {
		int rc = ig_store_open(arg, NULL, &s, NULL, 0);

		snprintf(rep + strlen(rep), sizeof rep - strlen(rep), "open: %s\n", ig_strerror(rc));
		if (rc != 0)
			break;
		for (int i = 0; i < 3; i++)
			cd_describe(s, names[i], rep, sizeof rep);
		if (round == 0) {
			int created = child_create(s, "gone");
			int put = cd_put(s, "gone", "r2", "g2");

			snprintf(rep + strlen(rep), sizeof rep - strlen(rep), "create: %s\nput: %s\n",
				 ig_strerror(created), ig_strerror(put));
			cd_describe(s, "gone", rep, sizeof rep);
		}
		(void)ig_store_close(s);
	}
	send_all(fd, rep, strlen(rep) + 1);
}

static void test_drop_survives_crash(void **state)
{
	const char *want = "open: success\nkeep: r1=k1\ngone: not found\nempty:\n"
			   "create: success\nput: success\ngone: r2=g2\n"
			   "open: success\nkeep: r1=k1\ngone: r2=g2\nempty:\n";
	int64_t deadline = su_mono_ns() + 30 * (int64_t)1000000000;
	const char *dir = *state;
	char rep[2048] = "", done;
	child_t c;

	c = spawn(cd_writer, dir);
	assert_true(read_full(&c, &done, 1, deadline));
	reap(&c, true);
	close(c.fd);
	c = spawn(cd_recover, dir);
	for (size_t n = 0; n < sizeof rep - 1 && read_full(&c, rep + n, 1, deadline) && rep[n];)
		n++;
	reap(&c, false);
	close(c.fd);
	assert_string_equal(rep, want);
}

/* ---- 1. the log alone brings synced applies back ----------------------------------- */

static void test_reopen_replays_log(void **state)
{
	ig_store_options_t o = {.manual = true};
	ig_store_stats_t st;
	model_t m = {0};
	ig_store_t *s;
	ig_table_t *t;
	const char *dir = *state;

	s = open_store(dir, &o);
	su_create_table(s, "t");
	t = su_table(s, "t");
	put_rows(t, &m, 0, 40);
	put_rows(t, &m, 0, 10); /* overwrites */
	put_row(t, &m, 5, true); /* an erasure */
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	assert_int_equal(su_count_files(dir, "frags", ".igf"), 0); /* all in the log */

	for (int round = 0; round < 2; round++) { /* recovering twice gives the same */
		s = open_store(dir, &o);
		ig_store_stats(s, &st);
		print_message("round %d: %" PRIu64 " txns replayed in %.1f ms\n", round,
			      st.recovered_txns, (double)st.recovery_ns / 1e6);
		assert_true(st.recovered_txns >= 51);
		assert_true(st.recovery_ns > 0);
		check_table(s, &m);
		assert_int_equal(ig_store_close(s), 0);
	}
}

/* ---- 2. a torn log tail is cut, the torn mutation absent --------------------------- */

/* The newest segment's path; v/n get its records. */
static void last_segment(const char *dir, char *path, size_t len, rec_t *v, size_t *n)
{
	char names[MAX_SEGS][SEG_NAME_LEN + 1];
	size_t k = list_segments(dir, names, MAX_SEGS);

	assert_true(k > 0);
	snprintf(path, len, "%.400s/log/%.24s", dir, names[k - 1]);
	*n = read_records(path, v, 4096);
}

static void test_torn_log_tail(void **state)
{
	ig_store_options_t o = {.manual = true};
	static rec_t v[4096];
	const char *dir = *state;
	char path[512], junk[100];
	model_t m = {0};
	uint64_t txn, cut;
	ig_store_t *s;
	ig_table_t *t;
	size_t n;

	make_store(dir, &o, &m, 20);
	s = open_store(dir, &o);
	t = su_table(s, "t");
	txn = put_row(t, &m, 20, false); /* the one to tear: two cells */
	m.ts[20] = 0;
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	/* Cut its record (the last one) in the middle. */
	last_segment(dir, path, sizeof path, v, &n);
	assert_int_equal(record_of(v, n, txn), n - 1);
	cut = v[n - 1].off + v[n - 1].len / 2;
	assert_int_equal(truncate(path, (off_t)cut), 0);
	s = open_store(dir, &o);
	assert_int_equal(file_size(path), v[n - 1].off); /* the writer cut the torn bytes */
	check_table(s, &m);
	t = su_table(s, "t");
	put_row(t, &m, 21, false); /* the log goes on after the cut */
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	/* Garbage after the last record (a write that never landed). */
	cut = file_size(path);
	memset(junk, 'x', sizeof junk);
	spill(path, junk, sizeof junk, "ab");
	s = open_store(dir, &o);
	assert_int_equal(file_size(path), cut);
	check_table(s, &m);
	assert_int_equal(ig_store_close(s), 0);
}

/* ---- 3. damage before synced records refuses the open ------------------------------ */

/* Flips a payload byte of the record holding txn in segment `seg` (0:
 * oldest, SIZE_MAX: newest); open must fail naming file and offset. */
static void corrupt_record(const char *dir, const ig_store_options_t *o, size_t seg,
			   uint64_t txn, bool last_record)
{
	char names[MAX_SEGS][SEG_NAME_LEN + 1], path[512], why[512], at[64];
	static rec_t v[4096];
	size_t k = list_segments(dir, names, MAX_SEGS), n, r;
	uint64_t size;

	seg = seg == SIZE_MAX ? k - 1 : seg;
	snprintf(path, sizeof path, "%.400s/log/%.24s", dir, names[seg]);
	n = read_records(path, v, 4096);
	r = last_record ? n - 1 : record_of(v, n, txn);
	assert_true(last_record || r + 1 < n); /* valid records follow */
	flip_byte(path, v[r].off + v[r].len - 10);
	size = file_size(path);
	assert_int_equal(open_fails(dir, o, why, sizeof why), IG_ECORRUPT);
	assert_non_null(strstr(why, names[seg]));
	snprintf(at, sizeof at, "offset %" PRIu64 ":", v[r].off);
	assert_non_null(strstr(why, at));
	assert_int_equal(file_size(path), size); /* nothing was cut */
	assert_int_equal(open_fails(dir, o, why, sizeof why), IG_ECORRUPT); /* and still */
}

static void test_corrupt_log_middle(void **state)
{
	ig_store_options_t o = {.manual = true}, small = {.manual = true, .segment_bytes = 4096};
	char names[MAX_SEGS][SEG_NAME_LEN + 1], older[512], newest[512];
	model_t m = {0};
	uint64_t first;

	snprintf(older, sizeof older, "%s/older", (const char *)*state);
	snprintf(newest, sizeof newest, "%s/newest", (const char *)*state);
	/* The last record of an older segment: not a tail, since the next
	 * segment began only after it was synced. */
	make_store(older, &small, &m, 60);
	assert_true(list_segments(older, names, MAX_SEGS) >= 3);
	corrupt_record(older, &small, 0, 0, true);

	/* An early record of the newest segment, valid records after it. */
	memset(&m, 0, sizeof m);
	first = make_store(newest, &o, &m, 20) - 19;
	corrupt_record(newest, &o, SIZE_MAX, first + 4, false);
}

/* ---- 4. a stray root.tmp is ignored, then replaced -------------------------------- */

static void test_root_tmp_ignored(void **state)
{
	ig_store_options_t o = {.manual = true};
	const char *dir = *state;
	char root[512], tmp[512], junk[300];
	uint64_t gen;
	model_t m = {0};
	ig_store_t *s;
	ig_table_t *t;
	size_t len;
	uint8_t *b;

	make_store(dir, &o, &m, 10);
	snprintf(root, sizeof root, "%s/root", dir);
	snprintf(tmp, sizeof tmp, "%s/root.tmp", dir);
	b = slurp(root, &len);
	gen = be(b + 8, 8);
	free(b);
	su_fill(junk, sizeof junk - 1, 7);
	memcpy(junk, "IGRT\x01", 5); /* a half-written root looks like one */
	spill(tmp, junk, sizeof junk, "wb");

	s = open_store(dir, &o);
	check_table(s, &m);
	t = su_table(s, "t");
	put_rows(t, &m, 10, 20);
	assert_int_equal(ig_store_flush(s, NULL), 0); /* writes the root */
	ig_table_release(t);
	b = slurp(root, &len);
	assert_true(be(b + 8, 8) > gen);
	free(b);
	if (access(tmp, F_OK) == 0) { /* gone, or at least not the garbage */
		b = slurp(tmp, &len);
		assert_false(len == sizeof junk && memcmp(b, junk, len) == 0);
		free(b);
	}
	assert_int_equal(ig_store_close(s), 0);
	s = open_store(dir, &o);
	check_table(s, &m);
	assert_int_equal(ig_store_close(s), 0);
}

/* ---- 5. a damaged or missing root file refuses the open ------------------------------ */

/* Writes bytes as dir's root; open must fail naming root and offset. */
static void bad_root(const char *dir, const uint8_t *bytes, size_t len, uint64_t off)
{
	ig_store_options_t o = {.manual = true};
	char root[512], why[512], at[64];

	snprintf(root, sizeof root, "%s/root", dir);
	spill(root, bytes, len, "wb");
	assert_int_equal(open_fails(dir, &o, why, sizeof why), IG_ECORRUPT);
	assert_non_null(strstr(why, "/root"));
	snprintf(at, sizeof at, "byte offset %" PRIu64 ":", off);
	assert_non_null(strstr(why, at));
}

/* A store in dir with rows [0, n) of "t" in fragments (flushed), closed. */
static void make_flushed(const char *dir, model_t *m, unsigned n)
{
	ig_store_options_t o = {.manual = true};
	ig_store_t *s;

	make_store(dir, &o, m, n);
	s = open_store(dir, &o);
	assert_int_equal(ig_store_flush(s, NULL), 0);
	assert_int_equal(ig_store_close(s), 0);
	assert_true(su_count_files(dir, "frags", ".igf") >= 2); /* "t" and META */
}

static void test_bad_root(void **state)
{
	ig_store_options_t o = {.manual = true};
	const char *dir = *state;
	char root[512];
	model_t m = {0};
	ig_store_t *s;
	uint8_t *good, *b;
	size_t len;

	make_flushed(dir, &m, 10);
	snprintf(root, sizeof root, "%s/root", dir);
	good = slurp(root, &len);
	assert_non_null(b = malloc(len));
	memcpy(b, good, len);
	b[len / 2] ^= 0x5a;
	bad_root(dir, b, len, len - 4); /* a checksum mismatch: the CRC field */
	bad_root(dir, good, 12, 12);    /* cut short: the length it has */
	free(b);

	spill(root, good, len, "wb"); /* the good root back: all is there */
	free(good);
	s = open_store(dir, &o);
	check_table(s, &m);
	assert_int_equal(ig_store_close(s), 0);
}

/* A root file gone from a directory holding a log and fragments is
 * damage, not a new store: taking it for one would drop every table. */
static void test_missing_root(void **state)
{
	ig_store_options_t o = {.manual = true};
	const char *dir = *state;
	char root[512], why[512] = "";
	model_t m = {0};
	ig_store_t *s;
	ig_table_t *t;
	int rc;

	make_flushed(dir, &m, 10);
	snprintf(root, sizeof root, "%s/root", dir);
	assert_int_equal(unlink(root), 0);
	opened_here = true;
	if ((rc = ig_store_open(dir, &o, &s, why, sizeof why)) == 0) {
		if ((rc = ig_store_table(s, "t", &t)) == 0)
			ig_table_release(t);
		assert_int_equal(ig_store_close(s), 0);
		fail_msg("no root beside %zu fragment files and a log, and the open succeeded "
			 "(table \"t\": %s)", su_count_files(dir, "frags", ".igf"), ig_strerror(rc));
	}
	print_message("open: %s: %s\n", ig_strerror(rc), why);
	assert_non_null(strstr(why, "root"));
}

/* ---- 6. a fragment file a durable config names is missing ---------------------------- */

static void test_missing_fragment(void **state)
{
	ig_store_options_t o = {.manual = true};
	const char *dir = *state;
	char why[512];
	model_t m = {0};
	frag_t f;

	make_flushed(dir, &m, 10);
	find_fragment(dir, "r00000", &f); /* "t"'s file, not META's */
	assert_int_equal(unlink(f.path), 0);
	assert_int_not_equal(open_fails(dir, &o, why, sizeof why), 0);
	assert_non_null(strstr(why, f.name));
	/* The failed open did not forget the file: it fails again. */
	assert_int_not_equal(open_fails(dir, &o, why, sizeof why), 0);
	assert_non_null(strstr(why, f.name));
}

/* ---- 7. a damaged data block or index fails what reads it ---------------------------- */

#define CK_ROWS 600u
#define CK_PER 50u
#define CK_VLEN 200u

/* A store in dir whose table "t" holds rows c00000.. (one cell each) in
 * one flushed fragment, closed; f gets the file and its blocks. */
static void make_fragment(const char *dir, frag_t *f)
{
	static char rows[CK_PER][16], vals[CK_PER][CK_VLEN + 1];
	ig_store_options_t o = {.manual = true};
	ig_store_t *s = open_store(dir, &o);
	ig_cell_t c[CK_PER];
	ig_table_t *t;

	su_create_table(s, "t");
	t = su_table(s, "t");
	for (unsigned i = 0; i < CK_ROWS; i += CK_PER) {
		for (unsigned j = 0; j < CK_PER; j++) {
			snprintf(rows[j], sizeof rows[j], "c%05u", i + j);
			su_fill(vals[j], CK_VLEN, i + j);
			c[j] = su_cell(rows[j], "a:q", 1, vals[j]);
		}
		su_apply(t, c, CK_PER, IG_STORE_SYNC);
	}
	assert_int_equal(ig_store_flush(s, NULL), 0);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
	find_fragment(dir, "c00000", f);
	read_index(f);
	assert_true(f->nblocks >= 8);
}

/* Scans rows [start, end) (end: end_len bytes) of t; *n gets the cells
 * read, err the scanner's error text ("" if the open itself failed).
 * Returns 0 at the end, or the error (the open's included). */
static int scan_range(ig_table_t *t, const char *start, const char *end, uint32_t end_len,
		      uint64_t *n, char *err, size_t err_len)
{
	ig_scan_options_t o;
	ig_scanner_t *sc;
	ig_cell_t c;
	int rc;

	ig_scan_options_init(&o);
	o.row_start = start;
	o.row_start_len = (uint32_t)strlen(start);
	o.row_end = end;
	o.row_end_len = end_len;
	*n = 0;
	err[0] = 0;
	if ((rc = ig_scanner_open(t, &o, &sc)) != 0)
		return rc;
	while ((rc = ig_scanner_next(sc, &c)) == 1)
		(*n)++;
	snprintf(err, err_len, "%s", ig_scanner_error(sc));
	if (rc != 0)
		assert_int_equal(ig_scanner_next(sc, &c), rc); /* sticky */
	ig_scanner_close(sc);
	return rc;
}

/* err names f's file and block k at its offset. */
static void assert_names_block(const char *err, const frag_t *f, uint32_t k)
{
	char at[64];

	snprintf(at, sizeof at, "block %u at offset %" PRIu64 ":", k, f->blocks[k].off);
	if (!strstr(err, f->name) || !strstr(err, at))
		fail_msg("'%s' does not name %s and %s", err, f->name, at);
}

static void test_checksum_error_on_read(void **state)
{
	ig_store_options_t o = {.manual = true};
	const char *dir = *state;
	char err[512], at[64];
	const fblock_t *b;
	ig_store_t *s;
	ig_table_t *t;
	uint32_t k;
	uint64_t n;
	frag_t f;

	make_fragment(dir, &f);
	k = f.nblocks / 2;
	b = f.blocks;
	flip_byte(f.path, b[k].off + b[k].size / 2);

	s = open_store(dir, &o); /* blocks are read when a scan needs them */
	t = su_table(s, "t");
	/* Rows of block 0 only: the damage elsewhere is not in the way. */
	assert_int_equal(scan_range(t, b[0].row, b[1].row, (uint32_t)strlen(b[1].row), &n, err,
				    sizeof err), 0);
	assert_int_equal(n, b[0].cells);
	/* From block k - 1 across block k: k - 1's cells, then the error. */
	assert_int_equal(scan_range(t, b[k - 1].row, b[k + 1].row, (uint32_t)strlen(b[k + 1].row),
				    &n, err, sizeof err), IG_ECORRUPT);
	print_message("range scan: %" PRIu64 " cells, then: %s\n", n, err);
	assert_int_equal(n, b[k - 1].cells);
	assert_names_block(err, &f, k);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);

	/* A damaged block index: the open itself reads it, and refuses. */
	flip_byte(f.path, f.index_off + 3);
	assert_int_equal(open_fails(dir, &o, err, sizeof err), IG_ECORRUPT);
	snprintf(at, sizeof at, "index at offset %" PRIu64 ":", f.index_off);
	assert_non_null(strstr(err, f.name));
	assert_non_null(strstr(err, at));
}

/* A point lookup (row_start = row, row_end = row + NUL) of a row in the
 * damaged block gets no cell and an error naming file and block. */
static void test_point_scan_names_bad_block(void **state)
{
	ig_store_options_t o = {.manual = true};
	const char *dir = *state;
	char err[512], end[40];
	ig_store_t *s;
	ig_table_t *t;
	uint64_t n;
	uint32_t k, len;
	frag_t f;
	int rc;

	make_fragment(dir, &f);
	k = f.nblocks / 2;
	flip_byte(f.path, f.blocks[k].off + f.blocks[k].size / 2);
	len = (uint32_t)strlen(f.blocks[k].row);
	memcpy(end, f.blocks[k].row, len + 1); /* row, then a NUL byte */

	s = open_store(dir, &o);
	t = su_table(s, "t");
	rc = scan_range(t, f.blocks[k].row, end, len + 1, &n, err, sizeof err);
	print_message("point scan: %s: %s\n", ig_strerror(rc), err);
	assert_int_equal(n, 0);
	assert_int_equal(rc, IG_ECORRUPT);
	if (!err[0])
		fail_msg("ig_scanner_open failed with %s and no scanner is left to say which "
			 "file and block (store.h: a checksum failure names them)",
			 ig_strerror(rc));
	assert_names_block(err, &f, k);
	ig_table_release(t);
	assert_int_equal(ig_store_close(s), 0);
}

/* ---- setup ------------------------------------------------------------------------- */

/* Each test gets a fresh scratch directory in *state, removed even when
 * the test fails. */
static int make_scratch(void **state)
{
	char *dir = malloc(64);

	if (!dir)
		return -1;
	su_make_dir(dir, 64);
	*state = dir;
	return 0;
}

static int remove_scratch(void **state)
{
	su_remove_dir(*state);
	free(*state);
	return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, make_scratch, remove_scratch)

/* ---- the list --------------------------------------------------------------------- */

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* These two fork: they must come before any test opens a store. */
		T(test_recovery_bounded_by_log_budget),
		T(test_drop_survives_crash),
		T(test_reopen_replays_log),
		T(test_torn_log_tail),
		T(test_corrupt_log_middle),
		T(test_root_tmp_ignored),
		T(test_bad_root),
		T(test_missing_root),
		T(test_missing_fragment),
		T(test_checksum_error_on_read),
		T(test_point_scan_names_bad_block),
	};

	wd_start(150);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
