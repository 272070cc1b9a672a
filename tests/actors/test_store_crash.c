/* Crash tests of the embedded store (<ingot/store.h>): "opening a data
 * directory after a kill -9 at any moment restores every synced mutation
 * and nothing half-written".
 *
 * A child process opens a store directory and runs a mixed load on one
 * table with two locality groups (synced applies of blocks of several
 * cells: sets of varied sizes, overwrites, erasures, a moving "dead zone"
 * of rows being erased so tablets shrink and join; now and then unsynced
 * applies followed by ig_store_sync, ig_store_flush, ig_store_compact).
 * Small budgets make flushes, compactions, log trimming, splits and joins
 * frequent. Before each apply the child tells the parent, through a pipe,
 * what it is about to write; after the call returned (synced) it
 * acknowledges it. The parent kills the child with SIGKILL at a random
 * moment, and the next round's child first recovers the directory and
 * checks it against the parent's model before loading on: the recovered
 * contents must be exactly the acknowledged state plus a prefix (possibly
 * empty) of the mutations that were in flight, so every acknowledged
 * mutation is there with its value, acknowledged erasures are honoured, an
 * in-flight mutation is whole or absent (its cells span both groups), and
 * no value was never written (every value's bytes are checked). Recovering
 * a recovered store is exercised every round.
 *
 * test_kill_during_maintenance kills right after the child asked for
 * ig_store_compact or ig_store_flush. Both tests check that the directory's
 * fragment files and log segments stay bounded across rounds (Gc works
 * after recovery), and end with a child that recovers, compacts, closes,
 * reopens and checks again.
 *
 * The parent never opens a store itself: it forks a child per round, and a
 * process that ran a store (liburcu's call_rcu thread stays behind) must
 * not fork a child that opens one. Waits are on pipe messages with
 * deadlines; nothing sleeps to wait for something.
 *
 * Environment: INGOT_CRASH_ROUNDS (rounds of the random-kill test; the
 * maintenance test runs a quarter as many), INGOT_CRASH_SEED (the seed;
 * printed either way).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store_util.h"
#include "watchdog.h"

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)

/* Rounds of test_kill_random when INGOT_CRASH_ROUNDS is not set: what fits
 * the suite's timeout under ASan on two cores. */
#define DEFAULT_ROUNDS 300

/* ---- the data model ------------------------------------------------------------------ */

/* Slots are (row, column) pairs: row k%05u, column "a:q" (group g, zstd,
 * max_history 1) for even slots and "b:q" (group h, no compression, every
 * version kept) for odd ones. A block may touch both groups. */
#define NROWS 1536u
#define NSLOTS (2 * NROWS)
#define ZONES 8u                   /* the dead zone moves over these */
#define ZONE_OPS 600u              /* ops per dead-zone position */
#define MAXCELLS 12u
#define MAXPEND 16u                /* in-flight ops at most (one batch) */
#define ERASE UINT32_MAX
#define VHEAD 26u                  /* "o%016llx s%05u/" */

typedef struct op {
	uint64_t id;                /* also every cell's timestamp */
	uint32_t n;
	uint32_t synced;            /* applied with IG_STORE_SYNC */
	uint32_t slot[MAXCELLS];
	uint32_t vlen[MAXCELLS];    /* ERASE for an erasure */
} op_t;

/* What the parent knows. A child inherits a copy at fork. */
typedef struct model {
	uint64_t val[NSLOTS];       /* op id of the slot's value; 0: none */
	uint32_t len[NSLOTS];
	op_t pend[MAXPEND];         /* begun, not acknowledged, in order */
	uint32_t npend;
	uint64_t next_op;           /* ids below it may have been used */
} model_t;

static model_t M;

static void model_apply(uint64_t *val, uint32_t *len, const op_t *op)
{
	for (uint32_t i = 0; i < op->n; i++) {
		val[op->slot[i]] = op->vlen[i] == ERASE ? 0 : op->id;
		len[op->slot[i]] = op->vlen[i] == ERASE ? 0 : op->vlen[i];
	}
}

/* The value op writes to slot: a header naming both, then letters from
 * a generator seeded by them, vlen bytes in all. */
static void make_value(char *buf, uint64_t op, uint32_t slot, uint32_t vlen)
{
	uint64_t x = op * 0x9e3779b97f4a7c15ull ^ ((uint64_t)slot << 32) ^ vlen;
	char head[VHEAD + 1];

	snprintf(head, sizeof head, "o%016" PRIx64 " s%05u/", op, slot);
	memcpy(buf, head, VHEAD);
	for (uint32_t i = VHEAD; i < vlen; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (char)('0' + (x >> 58)); /* 64 printable bytes */
	}
}

/* row gets 7 bytes: "k%05u" and its NUL. */
static void slot_row(uint32_t slot, char *row)
{
	unsigned r = slot / 2 % 100000;

	row[0] = 'k';
	for (int i = 5; i >= 1; i--, r /= 10)
		row[i] = (char)('0' + r % 10);
	row[6] = 0;
}

static const char *slot_col(uint32_t slot)
{
	return slot % 2 ? "b:q" : "a:q";
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- messages (child to parent) -------------------------------------------------------- */

/* Each message is one write() of at most PIPE_BUF bytes, so it arrives
 * whole or (if the child died writing it) not at all. */
enum {
	M_READY = 1,   /* ready_t: recovered and checked */
	M_BEGIN,       /* op_t: about to apply */
	M_ACK,         /* ack_t: applied and synced */
	M_MAINT,       /* maint_t: a flush or compaction begins or ended */
	M_STATS,       /* ig_store_stats_t */
	M_FINAL,       /* final_t: the last check's numbers */
	M_FAIL,        /* text */
};

typedef struct msg_head {
	uint32_t type, len;
} msg_head_t;

typedef struct ready {
	uint32_t prefix;            /* in-flight ops found recovered */
	uint32_t pad;
	uint64_t frag_files, log_files, tmp_files;
	uint64_t open_ns, cells;
	ig_store_stats_t st;
} ready_t;

typedef struct ack {
	uint64_t op, txn;
} ack_t;

enum { MAINT_FLUSH = 1, MAINT_COMPACT = 2 };

typedef struct maint {
	uint32_t kind, end;
	uint64_t ns;                /* how long it took (end only) */
} maint_t;

typedef struct final {
	uint64_t frag_files, log_files, cells;
	ig_store_stats_t st;        /* after compact, close and reopen */
} final_t;

#define MSG_MAX 4000u

static void send_msg(int fd, uint32_t type, const void *p, uint32_t len)
{
	char buf[sizeof(msg_head_t) + MSG_MAX];
	msg_head_t h = {type, len};

	if (len > MSG_MAX)
		_exit(90);
	memcpy(buf, &h, sizeof h);
	memcpy(buf + sizeof h, p, len);
	if (write(fd, buf, sizeof h + len) != (ssize_t)(sizeof h + len))
		_exit(91); /* the parent is gone */
}

/* In the child: reports a failure and ends the process. */
static void child_fail(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void child_fail(int fd, const char *fmt, ...)
{
	char text[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	send_msg(fd, M_FAIL, text, (uint32_t)strlen(text) + 1);
	_exit(1);
}

/* In the parent: the next message, waiting at most until deadline
 * (monotonic ns). Returns 1 with a message, 0 at end of file (the child
 * is gone), -1 if the deadline passed first. */
static int recv_msg(int fd, int64_t deadline, msg_head_t *h, void *buf)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	size_t got = 0;

	for (;;) {
		int64_t left = deadline - mono_ns();
		int r;

		if (left < 0)
			left = 0;
		r = poll(&pf, 1, (int)((left + 999999) / 1000000));
		if (r < 0 && errno == EINTR)
			continue;
		assert_true(r >= 0);
		if (r > 0)
			break;
		if (mono_ns() >= deadline)
			return -1;
	}
	/* A message is one atomic write: once its first byte is here, all
	 * of it is. */
	while (got < sizeof *h) {
		ssize_t r = read(fd, (char *)h + got, sizeof *h - got);

		if (r == 0 && got == 0)
			return 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail_msg("pipe: a message header was cut (%zd)", r);
		got += (size_t)r;
	}
	if (h->len > MSG_MAX)
		fail_msg("pipe: message of %u bytes", h->len);
	for (got = 0; got < h->len;) {
		ssize_t r = read(fd, (char *)buf + got, h->len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail_msg("pipe: a message body was cut");
		got += (size_t)r;
	}
	return 1;
}

/* ---- files ------------------------------------------------------------------------------ */

static uint64_t count_files(const char *dir, const char *sub, const char *suffix)
{
	char path[600];
	DIR *d;
	struct dirent *e;
	uint64_t n = 0;
	size_t sl = strlen(suffix);

	snprintf(path, sizeof path, "%s/%s", dir, sub);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* ---- the child ---------------------------------------------------------------------------- */

enum { MODE_RANDOM, MODE_MAINT, MODE_FINAL };

typedef struct child {
	const char *dir;
	int fd;
	int mode;
	uint64_t seed;
	ig_store_t *s;
	ig_table_t *t;
	char *vbuf;                 /* one value */
	void *block;
	size_t block_cap;
} child_t;

static void crash_options(ig_store_options_t *o)
{
	*o = (ig_store_options_t){.memory_budget = 1 * MiB,
				  .log_budget = 4 * MiB,
				  .segment_bytes = 256 * KiB,
				  .split_bytes = 256 * KiB,
				  .join_bytes = 32 * KiB};
}

static void child_create_table(child_t *c)
{
	static const char *const fa[] = {"a"}, *const fb[] = {"b"};
	ig_group_config_t g[2] = {
		{.name = "g", .families = fa, .nfamilies = 1, .compression = IG_COMPRESSION_ZSTD,
		 .level = 1, .block_size = 4096, .max_history = 1},
		{.name = "h", .families = fb, .nfamilies = 1, .compression = IG_COMPRESSION_NONE,
		 .block_size = 16384},
	};
	ig_schema_config_t sc = {.groups = g, .ngroups = 2};
	char why[256] = "";
	int rc = ig_store_create_table(c->s, "crash", &sc, why, sizeof why);

	if (rc != 0)
		child_fail(c->fd, "create table: %s: %s", ig_strerror(rc), why);
}

/* Parses "k%05u" and the column into a slot; -1 if it is not one. */
static long parse_slot(const ig_cell_t *cell)
{
	const char *r = cell->key.row;
	unsigned v = 0;

	if (cell->key.row_len != 6 || r[0] != 'k' || cell->key.column_len != 3)
		return -1;
	for (int i = 1; i < 6; i++) {
		if (r[i] < '0' || r[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(r[i] - '0');
	}
	if (v >= NROWS)
		return -1;
	if (memcmp(cell->key.column, "a:q", 3) == 0)
		return 2 * (long)v;
	if (memcmp(cell->key.column, "b:q", 3) == 0)
		return 2 * (long)v + 1;
	return -1;
}

/* Scans the table and checks every cell's bytes: a value must be exactly
 * what the op its header names wrote to this slot (its timestamp is that
 * op). Fills got[]/glen[] with what each slot holds. */
static void child_scan(child_t *c, uint64_t *got, uint32_t *glen, uint64_t *ncells)
{
	ig_scan_options_t o;
	ig_scanner_t *sc;
	ig_cell_t cell;
	int rc;

	memset(got, 0, NSLOTS * sizeof *got);
	memset(glen, 0, NSLOTS * sizeof *glen);
	*ncells = 0;
	ig_scan_options_init(&o);
	o.max_versions = 1;
	if ((rc = ig_scanner_open(c->t, &o, &sc)) != 0)
		child_fail(c->fd, "scanner open: %s", ig_strerror(rc));
	while ((rc = ig_scanner_next(sc, &cell)) == 1) {
		long slot = parse_slot(&cell);
		char head[VHEAD + 1];
		uint64_t op;
		unsigned vs;

		(*ncells)++;
		if (slot < 0)
			child_fail(c->fd, "recovered a cell never written: row '%.*s' column '%.*s'",
				   (int)cell.key.row_len, (const char *)cell.key.row,
				   (int)cell.key.column_len, (const char *)cell.key.column);
		if (got[slot])
			child_fail(c->fd, "slot %ld: two versions with max_versions 1", slot);
		if (cell.value_len < VHEAD)
			child_fail(c->fd, "slot %ld: a value of %u bytes was never written", slot,
				   cell.value_len);
		memcpy(head, cell.value, VHEAD);
		head[VHEAD] = 0;
		if (sscanf(head, "o%16" SCNx64 " s%5u/", &op, &vs) != 2 || vs != (unsigned)slot ||
		    op == 0 || (int64_t)op != cell.key.timestamp)
			child_fail(c->fd, "slot %ld (ts %" PRId64 "): a value never written: '%s'", slot,
				   cell.key.timestamp, head);
		make_value(c->vbuf, op, (uint32_t)slot, cell.value_len);
		if (memcmp(c->vbuf, cell.value, cell.value_len) != 0)
			child_fail(c->fd, "slot %ld: op %" PRIu64 "'s value of %u bytes is damaged",
				   slot, op, cell.value_len);
		got[slot] = op;
		glen[slot] = cell.value_len;
	}
	if (rc != 0)
		child_fail(c->fd, "scan: %s: %s", ig_strerror(rc), ig_scanner_error(sc));
	ig_scanner_close(sc);
}

/* Checks the recovered table against the model: the acknowledged state
 * plus some prefix of the in-flight ops. Returns that prefix's length (the
 * longest that matches; several can when an op only erased absent slots).
 * On a mismatch, reports what differs and exits. */
static uint32_t child_check(child_t *c, uint64_t *ncells)
{
	static uint64_t got[NSLOTS], want[NSLOTS];
	static uint32_t glen[NSLOTS], wlen[NSLOTS];
	char text[MSG_MAX];
	size_t tl = 0;
	long match = -1;
	unsigned shown = 0;

	child_scan(c, got, glen, ncells);
	memcpy(want, M.val, sizeof want);
	memcpy(wlen, M.len, sizeof wlen);
	for (uint32_t k = 0;; k++) {
		if (memcmp(want, got, sizeof want) == 0 && memcmp(wlen, glen, sizeof wlen) == 0)
			match = k;
		if (k == M.npend)
			break;
		model_apply(want, wlen, &M.pend[k]);
	}
	if (match >= 0)
		return (uint32_t)match;

	/* What differs from the acknowledged state, and which in-flight op
	 * shows up only in part. */
	tl += (size_t)snprintf(text + tl, sizeof text - tl,
			       "recovered contents are not the acked state plus a prefix of the "
			       "%u op(s) in flight;", M.npend);
	for (uint32_t k = 0; k < M.npend; k++) {
		const op_t *op = &M.pend[k];
		unsigned sets = 0, there = 0;

		for (uint32_t i = 0; i < op->n; i++)
			if (op->vlen[i] != ERASE) {
				sets++;
				there += got[op->slot[i]] == op->id;
			}
		tl += (size_t)snprintf(text + tl, sizeof text - tl,
				       " in flight: op %" PRIu64 " (%u cells, %u sets, %u of them "
				       "there);", op->id, op->n, sets, there);
	}
	for (uint32_t i = 0; i < NSLOTS && shown < 12 && tl < sizeof text - 200; i++) {
		bool inflight = false;

		if (got[i] == M.val[i] && glen[i] == M.len[i])
			continue;
		for (uint32_t k = 0; k < M.npend; k++)
			for (uint32_t j = 0; j < M.pend[k].n; j++)
				inflight |= M.pend[k].slot[j] == i && got[i] == (M.pend[k].vlen[j] ==
									   ERASE ? 0 : M.pend[k].id);
		if (inflight)
			continue;
		shown++;
		tl += (size_t)snprintf(text + tl, sizeof text - tl,
				       " slot %u (row k%05u %s): recovered op %" PRIu64
				       " (%u bytes), last acked op %" PRIu64 " (%u bytes);",
				       i, i / 2, slot_col(i), got[i], glen[i], M.val[i], M.len[i]);
	}
	child_fail(c->fd, "%s", text);
	return 0;
}

static void child_open(child_t *c, uint64_t *open_ns)
{
	ig_store_options_t o;
	char why[512] = "";
	int64_t t0 = mono_ns();
	int rc;

	crash_options(&o);
	if ((rc = ig_store_open(c->dir, &o, &c->s, why, sizeof why)) != 0)
		child_fail(c->fd, "open: %s: %s", ig_strerror(rc), why);
	*open_ns = (uint64_t)(mono_ns() - t0);
	rc = ig_store_table(c->s, "crash", &c->t);
	if (rc == IG_ENOTFOUND && M.next_op == 1) {
		child_create_table(c);
		rc = ig_store_table(c->s, "crash", &c->t);
	}
	if (rc != 0)
		child_fail(c->fd, "table 'crash': %s", ig_strerror(rc));
}

/* Opens, checks, tells the parent, and makes the model match. */
static void child_recover(child_t *c)
{
	ready_t r = {0};
	uint64_t tmp;

	/* Temporary files a crash left are counted before open removes them. */
	tmp = count_files(c->dir, "frags", ".tmp");
	child_open(c, &r.open_ns);
	r.prefix = child_check(c, &r.cells);
	r.frag_files = count_files(c->dir, "frags", ".igf");
	r.log_files = count_files(c->dir, "log", ".igl");
	r.tmp_files = tmp;
	ig_store_stats(c->s, &r.st);
	for (uint32_t k = 0; k < r.prefix; k++)
		model_apply(M.val, M.len, &M.pend[k]);
	M.npend = 0;
	send_msg(c->fd, M_READY, &r, sizeof r);
}

/* A value size: mostly small, some of a few KiB, a few large. */
static uint32_t pick_vlen(uint64_t *seed)
{
	uint64_t r = rng(seed) % 1000;

	if (r < 600)
		return VHEAD + (uint32_t)(rng(seed) % 200);
	if (r < 900)
		return 200 + (uint32_t)(rng(seed) % 3800);
	if (r < 990)
		return 4000 + (uint32_t)(rng(seed) % 16000);
	return 20000 + (uint32_t)(rng(seed) % 80000);
}

static bool has_slot(const op_t *op, uint32_t slot)
{
	for (uint32_t i = 0; i < op->n; i++)
		if (op->slot[i] == slot)
			return true;
	return false;
}

/* The next op. Rows of the dead zone (which moves every ZONE_OPS ops) are
 * only erased, in runs, so their tablets empty and may join; elsewhere
 * ops set, overwrite and erase random slots of both groups. */
static void gen_op(uint64_t *seed, op_t *op)
{
	uint32_t zone_rows = NROWS / ZONES;
	uint32_t dead = (uint32_t)((M.next_op / ZONE_OPS) % ZONES);
	uint64_t kind = rng(seed) % 100;

	memset(op, 0, sizeof *op);
	op->id = M.next_op++;
	if (kind < 12) {
		uint32_t first = dead * zone_rows + (uint32_t)(rng(seed) % zone_rows);
		uint32_t n = 4 + (uint32_t)(rng(seed) % 9);

		for (uint32_t r = first; r < (dead + 1) * zone_rows && op->n + 1 < MAXCELLS && n--;
		     r++) {
			op->slot[op->n] = 2 * r;
			op->vlen[op->n++] = ERASE;
			op->slot[op->n] = 2 * r + 1;
			op->vlen[op->n++] = ERASE;
		}
		return;
	}
	for (uint32_t want = 1 + (uint32_t)(rng(seed) % 8); op->n < want;) {
		uint32_t slot = (uint32_t)(rng(seed) % NSLOTS);

		if (slot / 2 / zone_rows == dead || has_slot(op, slot))
			continue;
		op->slot[op->n] = slot;
		/* Erase some slots that hold a value; set the rest. */
		op->vlen[op->n++] = kind < 30 && M.val[slot] ? ERASE : pick_vlen(seed);
	}
}

static size_t child_block(child_t *c, const op_t *op)
{
	ig_cell_t cells[MAXCELLS];
	char rows[MAXCELLS][8];
	char *vals[MAXCELLS] = {0};
	size_t len = 0, vtotal = 0;
	int rc;

	for (uint32_t i = 0; i < op->n; i++)
		vtotal += op->vlen[i] == ERASE ? 0 : op->vlen[i];
	for (uint32_t i = 0; i < op->n; i++) {
		slot_row(op->slot[i], rows[i]);
		cells[i] = (ig_cell_t){.key = {.row = rows[i], .row_len = 6,
					       .column = slot_col(op->slot[i]), .column_len = 3,
					       .timestamp = (int64_t)op->id}};
		if (op->vlen[i] == ERASE) {
			cells[i].kind = IG_CELL_ERASURE;
			continue;
		}
		if (!(vals[i] = malloc(op->vlen[i])))
			child_fail(c->fd, "out of memory");
		make_value(vals[i], op->id, op->slot[i], op->vlen[i]);
		cells[i].kind = IG_CELL_SET;
		cells[i].value = vals[i];
		cells[i].value_len = op->vlen[i];
	}
	if ((rc = ig_packed_size(cells, op->n, &len)) != 0)
		child_fail(c->fd, "packed size: %s", ig_strerror(rc));
	if (len > c->block_cap) {
		free(c->block);
		c->block_cap = 2 * len;
		if (!(c->block = malloc(c->block_cap)))
			child_fail(c->fd, "out of memory");
	}
	if ((rc = ig_packed_encode(cells, op->n, 0, c->block, c->block_cap, &len)) != 0)
		child_fail(c->fd, "packed encode: %s", ig_strerror(rc));
	for (uint32_t i = 0; i < op->n; i++)
		free(vals[i]);
	(void)vtotal;
	return len;
}

/* Tells the parent, then applies op; returns its txn. */
static uint64_t child_apply(child_t *c, op_t *op, bool sync)
{
	size_t len = child_block(c, op);
	uint64_t txn = 0;
	char why[256] = "";
	int rc;

	op->synced = sync;
	send_msg(c->fd, M_BEGIN, op, sizeof *op);
	rc = ig_store_apply(c->t, c->block, len, IG_STORE_ANY_TXN, sync ? IG_STORE_SYNC : 0,
			    &txn, why, sizeof why);
	if (rc != 0)
		child_fail(c->fd, "apply of op %" PRIu64 ": %s: %s", op->id, ig_strerror(rc), why);
	/* The child's own view goes on with what it applied. */
	model_apply(M.val, M.len, op);
	return txn;
}

static void child_maint(child_t *c, uint32_t kind, bool whole_store)
{
	maint_t m = {.kind = kind};
	int64_t t0;
	int rc;

	send_msg(c->fd, M_MAINT, &m, sizeof m);
	t0 = mono_ns();
	rc = kind == MAINT_FLUSH ? ig_store_flush(c->s, whole_store ? NULL : c->t)
				 : ig_store_compact(c->s, whole_store ? NULL : c->t);
	if (rc != 0)
		child_fail(c->fd, "%s: %s", kind == MAINT_FLUSH ? "flush" : "compact",
			   ig_strerror(rc));
	m.end = 1;
	m.ns = (uint64_t)(mono_ns() - t0);
	send_msg(c->fd, M_MAINT, &m, sizeof m);
}

/* The load, until killed. */
static void child_load(child_t *c)
{
	uint64_t seed = c->seed;
	op_t batch[MAXPEND];

	for (uint64_t step = 1;; step++) {
		uint64_t r = rng(&seed) % 1000;

		if (step % 64 == 1) {
			ig_store_stats_t st;

			ig_store_stats(c->s, &st);
			send_msg(c->fd, M_STATS, &st, sizeof st);
		}
		if (c->mode == MODE_MAINT && step % 24 == 0) {
			child_maint(c, rng(&seed) % 3 ? MAINT_COMPACT : MAINT_FLUSH, r & 1);
		} else if (r < 12) {
			child_maint(c, MAINT_FLUSH, r & 1);
		} else if (r < 15) {
			child_maint(c, MAINT_COMPACT, r & 1);
		} else if (r < 130) {
			/* Unsynced applies, then one sync covers them. */
			uint32_t n = 2 + (uint32_t)(rng(&seed) % 5);
			uint64_t last = 0, txn[MAXPEND];
			int rc;

			for (uint32_t i = 0; i < n; i++) {
				gen_op(&seed, &batch[i]);
				last = txn[i] = child_apply(c, &batch[i], false);
			}
			rc = ig_store_sync(c->s, r & 1 ? 0 : last, IG_SEC(120));
			if (rc != 0)
				child_fail(c->fd, "sync: %s", ig_strerror(rc));
			for (uint32_t i = 0; i < n; i++) {
				ack_t a = {batch[i].id, txn[i]};

				send_msg(c->fd, M_ACK, &a, sizeof a);
			}
		} else {
			ack_t a;

			gen_op(&seed, &batch[0]);
			a.op = batch[0].id;
			a.txn = child_apply(c, &batch[0], true);
			send_msg(c->fd, M_ACK, &a, sizeof a);
		}
	}
}

/* The last check: recover, compact everything, close, reopen, check
 * again, and count what the directory holds. */
static void child_final(child_t *c)
{
	final_t f = {0};
	uint64_t open_ns;
	int rc;

	child_recover(c);
	if ((rc = ig_store_compact(c->s, NULL)) != 0)
		child_fail(c->fd, "final compact: %s", ig_strerror(rc));
	ig_table_release(c->t);
	if ((rc = ig_store_close(c->s)) != 0)
		child_fail(c->fd, "final close: %s", ig_strerror(rc));
	child_open(c, &open_ns);
	if (child_check(c, &f.cells) != 0)
		child_fail(c->fd, "after a clean close, in-flight ops appeared");
	ig_store_stats(c->s, &f.st);
	f.frag_files = count_files(c->dir, "frags", ".igf");
	f.log_files = count_files(c->dir, "log", ".igl");
	ig_table_release(c->t);
	if ((rc = ig_store_close(c->s)) != 0)
		child_fail(c->fd, "last close: %s", ig_strerror(rc));
	send_msg(c->fd, M_FINAL, &f, sizeof f);
}

static void child_main(child_t *c)
{
	if (!(c->vbuf = malloc(256 * KiB)))
		child_fail(c->fd, "out of memory");
	if (c->mode == MODE_FINAL)
		child_final(c);
	else {
		child_recover(c);
		child_load(c);
	}
	_exit(0);
}

/* ---- the parent ------------------------------------------------------------------------------ */

typedef struct totals {
	int rounds, killed_in_open, killed_in_maint;
	uint64_t acks, begun, lost_inflight, kept_inflight;
	uint64_t flushes, compactions, splits, joins, files_deleted, segments_deleted;
	uint64_t max_frag_files, max_log_files, max_tmp_files, max_tablets, max_fragments;
	uint64_t max_open_ns, sum_open_ns, max_recovered, max_log_bytes;
	uint64_t maint_ns_sum, maint_n;
} totals_t;

typedef struct round {
	pid_t pid;
	int fd;
	int n;                      /* round number */
	bool ready, acked, maint_pending;
	ig_store_stats_t last;      /* the child's last stats */
} round_t;

static const char *maint_name(uint32_t k)
{
	return k == MAINT_FLUSH ? "flush" : "compact";
}

static void kill_child(round_t *r)
{
	int status;

	(void)kill(r->pid, SIGKILL);
	(void)waitpid(r->pid, &status, 0);
	close(r->fd);
}

/* Handles one message from the child of round r. */
static void on_msg(round_t *r, totals_t *t, const msg_head_t *h, const char *buf)
{
	switch (h->type) {
	case M_FAIL:
		kill_child(r);
		fail_msg("round %d: the child failed: %s", r->n, buf);
		break;
	case M_READY: {
		const ready_t *rd = (const void *)buf;

		assert_int_equal(h->len, sizeof *rd);
		assert_true(rd->prefix <= M.npend);
		t->kept_inflight += rd->prefix;
		t->lost_inflight += M.npend - rd->prefix;
		for (uint32_t k = 0; k < rd->prefix; k++)
			model_apply(M.val, M.len, &M.pend[k]);
		M.npend = 0;
		r->ready = true;
		if (rd->frag_files > t->max_frag_files)
			t->max_frag_files = rd->frag_files;
		if (rd->log_files > t->max_log_files)
			t->max_log_files = rd->log_files;
		if (rd->tmp_files > t->max_tmp_files)
			t->max_tmp_files = rd->tmp_files;
		if (rd->st.tablets > t->max_tablets)
			t->max_tablets = rd->st.tablets;
		if (rd->st.fragments > t->max_fragments)
			t->max_fragments = rd->st.fragments;
		if (rd->open_ns > t->max_open_ns)
			t->max_open_ns = rd->open_ns;
		if (rd->st.recovered_txns > t->max_recovered)
			t->max_recovered = rd->st.recovered_txns;
		if (rd->st.log_bytes > t->max_log_bytes)
			t->max_log_bytes = rd->st.log_bytes;
		t->sum_open_ns += rd->open_ns;
		r->last = rd->st;
		break;
	}
	case M_BEGIN: {
		const op_t *op = (const void *)buf;

		assert_int_equal(h->len, sizeof *op);
		assert_true(r->ready);
		assert_true(op->id >= M.next_op);
		assert_true(M.npend < MAXPEND);
		M.pend[M.npend++] = *op;
		M.next_op = op->id + 1;
		t->begun++;
		break;
	}
	case M_ACK: {
		const ack_t *a = (const void *)buf;

		assert_int_equal(h->len, sizeof *a);
		if (M.npend == 0 || M.pend[0].id != a->op)
			fail_msg("round %d: ack of op %" PRIu64 " out of order", r->n, a->op);
		model_apply(M.val, M.len, &M.pend[0]);
		memmove(M.pend, M.pend + 1, --M.npend * sizeof *M.pend);
		r->acked = true;
		t->acks++;
		break;
	}
	case M_MAINT: {
		const maint_t *m = (const void *)buf;

		r->maint_pending = !m->end;
		if (m->end && m->kind == MAINT_COMPACT) {
			t->maint_ns_sum += m->ns;
			t->maint_n++;
		}
		break;
	}
	case M_STATS:
		assert_int_equal(h->len, sizeof(ig_store_stats_t));
		memcpy(&r->last, buf, sizeof r->last);
		break;
	default:
		fail_msg("round %d: unknown message %u", r->n, h->type);
	}
}

/* Reads messages until until() holds or the deadline passes (the latter
 * fails the test when stall is set: the child hung). Returns whether the
 * child is still there (not at end of file). */
static bool pump(round_t *r, totals_t *t, int64_t deadline, bool stall,
		 bool (*until)(const round_t *, const msg_head_t *, const char *), const char *what)
{
	static char buf[MSG_MAX + 1];
	msg_head_t h;

	for (;;) {
		int rc = recv_msg(r->fd, deadline, &h, buf);

		if (rc == 0)
			return false;
		if (rc < 0) {
			if (stall) {
				kill_child(r);
				fail_msg("round %d: the child stalled (no %s within the deadline)", r->n,
					 what);
			}
			return true;
		}
		buf[h.len] = 0;
		on_msg(r, t, &h, buf);
		if (until && until(r, &h, buf))
			return true;
	}
}

static bool until_ready(const round_t *r, const msg_head_t *h, const char *b)
{
	(void)h;
	(void)b;
	return r->ready;
}

static bool until_ack(const round_t *r, const msg_head_t *h, const char *b)
{
	(void)b;
	return r->acked && h->type == M_ACK;
}

static uint32_t want_maint;

static bool until_maint(const round_t *r, const msg_head_t *h, const char *b)
{
	const maint_t *m = (const void *)b;

	(void)r;
	return h->type == M_MAINT && !m->end && m->kind == want_maint;
}

/* A child that was not killed died: say how. */
static void died(round_t *r, const char *when)
{
	int status;

	assert_int_equal(waitpid(r->pid, &status, 0), r->pid);
	close(r->fd);
	if (WIFSIGNALED(status))
		fail_msg("round %d: the child died of signal %d %s", r->n, WTERMSIG(status), when);
	fail_msg("round %d: the child exited with %d %s", r->n, WEXITSTATUS(status), when);
}

static round_t start_child(const char *dir, int n, int mode, uint64_t seed)
{
	round_t r = {.n = n};
	int p[2];

	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	fflush(stderr);
	r.pid = fork();
	assert_true(r.pid >= 0);
	if (r.pid == 0) {
		child_t c = {.dir = dir, .fd = p[1], .mode = mode, .seed = seed};

		close(p[0]);
		child_main(&c);
	}
	close(p[1]);
	r.fd = p[0];
	return r;
}

/* One round: start a child, kill it at a moment chosen by mode and the
 * seed, collect everything it reported. */
static void one_round(const char *dir, int n, int mode, uint64_t *seed, totals_t *t)
{
	const int64_t stall = IG_SEC(90);
	round_t r = start_child(dir, n, mode, rng(seed));
	uint64_t pick = rng(seed) % 1000;
	int64_t kill_at;
	int status;

	t->rounds++;
	if (pick < 40 && t->rounds > 1) {
		/* Now and then while it recovers. */
		int64_t avg = (int64_t)(t->sum_open_ns / (uint64_t)(t->rounds - 1));

		kill_at = mono_ns() + (int64_t)(rng(seed) % (uint64_t)(avg + 1));
		if (!pump(&r, t, kill_at, false, until_ready, "ready"))
			died(&r, "while recovering");
		if (!r.ready)
			t->killed_in_open++;
		else if (!pump(&r, t, kill_at, false, NULL, "anything"))
			died(&r, "right after recovering");
	} else {
		if (!pump(&r, t, mono_ns() + stall, true, until_ready, "ready"))
			died(&r, "while recovering");
		if (!pump(&r, t, mono_ns() + stall, true, until_ack, "first ack"))
			died(&r, "before its first ack");
		if (mode == MODE_MAINT) {
			/* Right after it asks for a compaction (or a flush). */
			int64_t avg = t->maint_n ? (int64_t)(t->maint_ns_sum / t->maint_n)
						 : IG_MS(200);

			want_maint = rng(seed) % 4 ? MAINT_COMPACT : MAINT_FLUSH;
			if (!pump(&r, t, mono_ns() + stall, true, until_maint, maint_name(want_maint)))
				died(&r, "before a flush or compaction");
			t->killed_in_maint++;
			kill_at = mono_ns() + (int64_t)(rng(seed) % (uint64_t)(avg * 3 / 2 + 1));
		} else if (pick < 140) {
			kill_at = mono_ns(); /* at the first ack */
		} else if (pick < 750) {
			kill_at = mono_ns() + (int64_t)(rng(seed) % (uint64_t)IG_MS(300));
		} else {
			kill_at = mono_ns() + IG_MS(300) + (int64_t)(rng(seed) % (uint64_t)IG_MS(1200));
		}
		if (!pump(&r, t, kill_at, false, NULL, "anything"))
			died(&r, "while loading");
	}
	assert_int_equal(kill(r.pid, SIGKILL), 0);
	assert_int_equal(waitpid(r.pid, &status, 0), r.pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("round %d: the child ended with status %#x before the kill", n, status);
	/* What it reported before the kill is still in the pipe. */
	(void)pump(&r, t, mono_ns() + stall, true, NULL, "end of file");
	close(r.fd);
	t->flushes += r.last.flushes;
	t->compactions += r.last.compactions;
	t->splits += r.last.splits;
	t->joins += r.last.joins;
	t->files_deleted += r.last.files_deleted;
	t->segments_deleted += r.last.segments_deleted;
}

static void final_round(const char *dir, uint64_t *seed, totals_t *t, final_t *f)
{
	static char buf[MSG_MAX + 1];
	round_t r = start_child(dir, t->rounds, MODE_FINAL, rng(seed));
	bool got = false;
	msg_head_t h;
	int status, rc;

	while ((rc = recv_msg(r.fd, mono_ns() + IG_SEC(120), &h, buf)) == 1) {
		buf[h.len] = 0;
		if (h.type == M_FINAL) {
			assert_int_equal(h.len, sizeof *f);
			memcpy(f, buf, sizeof *f);
			got = true;
		} else {
			on_msg(&r, t, &h, buf);
		}
	}
	if (rc < 0) {
		kill_child(&r);
		fail_msg("the final check stalled");
	}
	assert_int_equal(waitpid(r.pid, &status, 0), r.pid);
	close(r.fd);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the final check ended with status %#x", status);
	assert_true(got);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void run(int mode, int rounds, uint64_t seed)
{
	static totals_t t;
	char dir[64];
	final_t f = {0};
	int64_t t0 = mono_ns();
	uint64_t live = 0;

	memset(&t, 0, sizeof t);
	memset(&M, 0, sizeof M);
	M.next_op = 1;
	su_make_dir(dir, sizeof dir);
	print_message("crash test (%s): %d rounds, seed %" PRIu64 " (INGOT_CRASH_SEED)\n",
		      mode == MODE_MAINT ? "kills during flush/compact" : "random kills", rounds,
		      seed);
	for (int n = 0; n < rounds; n++)
		one_round(dir, n, mode, &seed, &t);
	final_round(dir, &seed, &t, &f);
	for (uint32_t i = 0; i < NSLOTS; i++)
		live += M.val[i] != 0;
	print_message("  %d rounds in %.1f s (%d killed while recovering, %d during flush or "
		      "compact); %" PRIu64 " ops begun, %" PRIu64 " acked; in flight at a kill: "
		      "%" PRIu64 " recovered, %" PRIu64 " lost\n",
		      t.rounds, (double)(mono_ns() - t0) / 1e9, t.killed_in_open, t.killed_in_maint,
		      t.begun, t.acks, t.kept_inflight, t.lost_inflight);
	print_message("  store work seen: %" PRIu64 " flushes, %" PRIu64 " compactions, %" PRIu64
		      " splits, %" PRIu64 " joins, %" PRIu64 " files and %" PRIu64
		      " log segments deleted\n",
		      t.flushes, t.compactions, t.splits, t.joins, t.files_deleted,
		      t.segments_deleted);
	print_message("  at recovery: at most %" PRIu64 " fragment files (%" PRIu64
		      " .tmp), %" PRIu64 " log segments, %" PRIu64 " tablets, %" PRIu64
		      " fragments, %" PRIu64 " log bytes, %" PRIu64 " records replayed; "
		      "open %.0f ms on average, %.0f ms at most\n",
		      t.max_frag_files, t.max_tmp_files, t.max_log_files, t.max_tablets,
		      t.max_fragments, t.max_log_bytes, t.max_recovered,
		      (double)t.sum_open_ns / 1e6 / (t.rounds ? t.rounds : 1),
		      (double)t.max_open_ns / 1e6);
	print_message("  final: %" PRIu64 " cells (%" PRIu64 " expected), %" PRIu64
		      " fragment files for %" PRIu64 " fragments in %" PRIu64 " tablets, %" PRIu64
		      " log segments\n",
		      f.cells, live, f.frag_files, f.st.fragments, f.st.tablets, f.log_files);

	/* The load is real: data survived, and rounds acknowledged work. */
	assert_int_equal(f.cells, live);
	assert_true(t.acks > (uint64_t)rounds);
	/* Gc works after recovery: files and segments stay bounded across
	 * the rounds (a store that never collected what crashes left would
	 * pass these within a few dozen rounds) ... */
	assert_true(t.max_frag_files <= 4 * t.max_fragments + 64);
	assert_true(t.max_log_files <= 3 * (4 * MiB) / (256 * KiB) + 8);
	/* ... and after a clean compact and close nothing but live files is
	 * left. META's own fragments are not in st.fragments. */
	assert_true(f.frag_files <= f.st.fragments + 8);
	assert_true(f.log_files <= 4);
	su_remove_dir(dir);
}

static int default_rounds(void)
{
	return (int)env_u64("INGOT_CRASH_ROUNDS", DEFAULT_ROUNDS);
}

static uint64_t the_seed(void)
{
	static uint64_t seed;

	if (!seed)
		seed = env_u64("INGOT_CRASH_SEED",
			       (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20)) | 1;
	return seed;
}

static void test_kill_random(void **state)
{
	(void)state;
	run(MODE_RANDOM, default_rounds(), the_seed());
}

static void test_kill_during_maintenance(void **state)
{
	int rounds = default_rounds() / 4;

	(void)state;
	run(MODE_MAINT, rounds < 2 ? 2 : rounds, the_seed() ^ 0x5deece66dull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_random),
		cmocka_unit_test(test_kill_during_maintenance),
	};

	wd_start(570);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
