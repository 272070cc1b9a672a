/* Shared helpers for the ingot Savina programs in this folder: argument
 * parsing, timing, the median of reps, the "RESULT name value unit" line
 * that compare.sh reads (the CAF and Erlang programs print the same), and a
 * "waiter" actor the main thread uses to wait for a benchmark to finish.
 *
 * Each benchmark #includes this file (the folder holds .c files only; it is
 * never compiled on its own). Everything here is static inline so a
 * benchmark that uses only part of it still builds with -Werror.
 *
 * The waiter: benchmark actors tell it BENCH_DONE (as the CAF programs tell
 * their scoped_actor and the Erlang ones their main process); the main
 * thread asks it BENCH_WAIT, and the reply comes once DONE has arrived
 * (before or after the ask).
 */
#include <ingot/runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call)                                                             \
	do {                                                                    \
		int rc_ = (call);                                               \
		if (rc_ != 0) {                                                 \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, \
				ig_strerror(rc_));                              \
			exit(1);                                                \
		}                                                               \
	} while (0)

/* Message types of the waiter, away from the small numbers benchmarks use. */
enum { BENCH_WAIT = 0x7000, BENCH_DONE = 0x7001, BENCH_READY = 0x7002 };

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses argv[1..] as `count` positive integers, or prints usage and exits. */
static inline void bench_args(int argc, char **argv, int count, long *out, const char *usage)
{
	if (argc != count + 1) {
		fprintf(stderr, "usage: %s %s\n", argv[0], usage);
		exit(2);
	}
	for (int i = 0; i < count; i++) {
		char *end;
		out[i] = strtol(argv[i + 1], &end, 10);
		if (*end != '\0' || out[i] <= 0) {
			fprintf(stderr, "usage: %s %s\n", argv[0], usage);
			exit(2);
		}
	}
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Sorts secs[0..n), lists them on stderr and returns the median. */
static inline double bench_median(double *secs, int n)
{
	qsort(secs, (size_t)n, sizeof *secs, bench_cmp_double);
	fprintf(stderr, "reps (s):");
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %.4f", secs[i]);
	fprintf(stderr, "\n");
	return secs[n / 2];
}

static inline void bench_report(const char *name, double value, const char *unit)
{
	printf("RESULT %s %.0f %s\n", name, value, unit);
	fflush(stdout);
}

static inline ig_system_t *bench_system(void)
{
	ig_system_t *sys;
	CHECK(ig_system_create(NULL, &sys));
	return sys;
}

/* Resident bytes of this process, from /proc/self/statm. */
static inline long bench_rss_bytes(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2) {
		fprintf(stderr, "cannot read /proc/self/statm\n");
		exit(1);
	}
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

/* ---- the waiter -------------------------------------------------------- */

struct bench_waiter {
	ig_ref_t asker; /* IG_NOREF until BENCH_WAIT arrives */
	bool done;
};

static inline int bench_waiter_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	struct bench_waiter *w = state;
	if (msg->type == BENCH_WAIT)
		w->asker = msg->sender;
	else if (msg->type == BENCH_DONE)
		w->done = true;
	if (w->done && !ig_ref_is_none(w->asker)) {
		CHECK(ig_tell(w->asker, BENCH_READY, NULL, 0, ig_self(ctx)));
		w->asker = IG_NOREF;
		w->done = false;
	}
	return 0;
}

static const ig_props_t bench_waiter_props = {
	.behavior = bench_waiter_fn,
	.state_size = sizeof(struct bench_waiter),
};

static inline ig_ref_t bench_waiter_spawn(ig_system_t *sys)
{
	ig_ref_t ref;
	CHECK(ig_system_spawn(sys, &bench_waiter_props, NULL, NULL, &ref));
	return ref;
}

/* Blocks until the waiter has got BENCH_DONE (once per call). */
static inline void bench_wait(ig_system_t *sys, ig_ref_t waiter)
{
	ig_future_t *f;
	const ig_msg_t *reply;
	CHECK(ig_ask(sys, waiter, BENCH_WAIT, NULL, 0, IG_SEC(600), &f));
	CHECK(ig_future_wait(f, IG_FOREVER, &reply));
	ig_future_free(f);
}
