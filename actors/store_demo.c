/* ingot-store-demo: the embedded store surviving kill -9.
 *
 * A child process streams events into a table (blocks of 500 cells, each
 * apply synced) and tells the parent, through a pipe, the last event id
 * each acknowledged apply covered. The parent kills the child with SIGKILL
 * at a random moment, reopens the directory, and checks that every
 * acknowledged event is there and nothing is half there. Three rounds, then
 * the store's statistics (flushes, compactions, recovery time).
 *
 * The parent never opens the store itself: a process that ran a store
 * keeps liburcu's threads, and must not fork a child that opens one. So
 * each check runs in a child too and reports through a pipe.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ingot/store.h>

#define BLOCK 500
#define ROUNDS 3

static const ig_store_options_t opts = {.memory_budget = 8u << 20, .log_budget = 32u << 20};

static void die(const char *what, const char *why)
{
	fprintf(stderr, "store-demo: %s: %s\n", what, why);
	exit(1);
}

static ig_store_t *open_store(const char *dir)
{
	ig_store_t *s;
	char why[512] = "";

	if (ig_store_open(dir, &opts, &s, why, sizeof why) != 0)
		die("open", why);
	return s;
}

static ig_table_t *events_table(ig_store_t *s)
{
	static const char *const fams[] = {"e"};
	ig_group_config_t g = {.name = "events", .families = fams, .nfamilies = 1,
			       .compression = IG_COMPRESSION_ZSTD, .level = 3};
	ig_schema_config_t sc = {.groups = &g, .ngroups = 1};
	ig_table_t *t;
	char why[256] = "";
	int rc = ig_store_create_table(s, "events", &sc, why, sizeof why);

	if (rc != 0 && rc != IG_EEXIST)
		die("create table", why);
	if (ig_store_table(s, "events", &t) != 0)
		die("table", "events is missing");
	return t;
}

/* Writes events from `from` on, forever; reports each synced block's end. */
static void child(const char *dir, uint64_t from, int out)
{
	ig_store_t *s = open_store(dir);
	ig_table_t *t = events_table(s);
	static ig_cell_t c[BLOCK];
	static char rows[BLOCK][24], vals[BLOCK][64];
	static uint8_t buf[BLOCK * 128];
	char why[256];

	for (uint64_t id = from;; id += BLOCK) {
		size_t len;

		for (int i = 0; i < BLOCK; i++) {
			snprintf(rows[i], sizeof rows[i], "ev%012" PRIu64, id + (uint64_t)i);
			snprintf(vals[i], sizeof vals[i], "{\"id\":%" PRIu64 ",\"kind\":\"click\"}",
				 id + (uint64_t)i);
			c[i] = (ig_cell_t){.key = {.row = rows[i], .row_len = (uint32_t)strlen(rows[i]),
						   .column = "e:json", .column_len = 6,
						   .timestamp = (int64_t)(id + (uint64_t)i)},
					   .value = vals[i], .value_len = (uint32_t)strlen(vals[i])};
		}
		if (ig_packed_encode(c, BLOCK, 0, buf, sizeof buf, &len) != 0)
			die("encode", "block too large");
		if (ig_store_apply(t, buf, len, IG_STORE_ANY_TXN, IG_STORE_SYNC, NULL, why,
				   sizeof why) != 0)
			die("apply", why);
		uint64_t acked = id + BLOCK;
		if (write(out, &acked, sizeof acked) != sizeof acked)
			_exit(0); /* the parent is gone */
	}
}

/* Counts the events; every one below `acked` must be there, and the total
 * must be a whole number of blocks (an apply is all or nothing). */
static uint64_t verify(const char *dir, uint64_t acked, double *ms)
{
	struct timespec a, b;
	ig_store_t *s;
	ig_table_t *t;
	ig_scanner_t *sc;
	ig_cell_t cell;
	uint64_t n = 0;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &a);
	s = open_store(dir);
	clock_gettime(CLOCK_MONOTONIC, &b);
	*ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	t = events_table(s);
	if (ig_scanner_open(t, NULL, &sc) != 0)
		die("scan", "cannot open");
	while ((rc = ig_scanner_next(sc, &cell)) == 1) {
		char want[24];

		snprintf(want, sizeof want, "ev%012" PRIu64, n);
		if (cell.key.row_len != strlen(want) || memcmp(cell.key.row, want, cell.key.row_len))
			die("verify", "an event is missing or out of place");
		n++;
	}
	if (rc != 0)
		die("scan", ig_scanner_error(sc));
	ig_scanner_close(sc);
	ig_table_release(t);
	ig_store_close(s);
	if (n < acked)
		die("verify", "an acknowledged event was lost");
	if (n % BLOCK)
		die("verify", "half an apply was recovered");
	return n;
}

/* What a check child reports. */
typedef struct report {
	uint64_t events;
	double open_ms;
	ig_store_stats_t st;
} report_t;

/* Runs verify (and gathers stats) in a child; dies if the child did. */
static report_t check(const char *dir, uint64_t acked)
{
	report_t r = {0};
	int p[2], status;
	pid_t pid;

	if (pipe(p) != 0)
		die("pipe", strerror(errno));
	if ((pid = fork()) == 0) {
		ig_store_t *s;

		close(p[0]);
		r.events = verify(dir, acked, &r.open_ms);
		s = open_store(dir);
		ig_store_stats(s, &r.st);
		ig_store_close(s);
		_exit(write(p[1], &r, sizeof r) == sizeof r ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &r, sizeof r) != sizeof r)
		die("check", "the checking process failed (see above)");
	close(p[0]);
	waitpid(pid, &status, 0);
	return r;
}

static uint64_t run_round(const char *dir, uint64_t from, unsigned delay_ms)
{
	int p[2];
	pid_t pid;
	uint64_t acked = from, v;
	struct timespec start, now;

	if (pipe(p) != 0)
		die("pipe", strerror(errno));
	if ((pid = fork()) == 0) {
		close(p[0]);
		child(dir, from, p[1]);
	}
	close(p[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	/* Read acks until the moment comes, then kill mid-stream. */
	for (;;) {
		if (read(p[0], &v, sizeof v) != sizeof v)
			die("child", "exited early");
		acked = v;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >=
		    delay_ms)
			break;
	}
	kill(pid, SIGKILL);
	while (read(p[0], &v, sizeof v) == sizeof v)
		acked = v; /* acks already in the pipe were given before the kill */
	close(p[0]);
	waitpid(pid, NULL, 0);
	return acked;
}

int main(void)
{
	char dir[] = "/tmp/ingot-store-demo-XXXXXX";
	uint64_t have = 0;
	report_t r = {0};
	char cmd[128];

	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	srand((unsigned)time(NULL));
	printf("store demo in %s: a child streams synced events; we kill -9 it and reopen\n\n",
	       dir);
	for (int round = 1; round <= ROUNDS; round++) {
		unsigned delay = 1500 + (unsigned)(rand() % 1500);
		uint64_t acked = run_round(dir, have, delay);

		r = check(dir, acked);
		have = r.events;
		printf("round %d: killed after %u ms; %" PRIu64 " events acknowledged, %" PRIu64
		       " recovered in %.1f ms (%" PRIu64 " log records replayed), none lost, "
		       "no half apply\n",
		       round, delay, acked, have, r.open_ms, r.st.recovered_txns);
	}
	printf("\nstore now: %" PRIu64 " tablets, %" PRIu64 " disk fragments (%.1f MiB), %" PRIu64
	       " log segments (%.1f MiB a crash would replay)\n",
	       r.st.tablets, r.st.fragments, (double)r.st.disk_bytes / (1 << 20),
	       r.st.log_segments, (double)r.st.log_bytes / (1 << 20));
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "store-demo: could not remove %s\n", dir);
	printf("every acknowledged event survived %d kills\n", ROUNDS);
	return 0;
}
