/* Tests of the dispatchers (runtime/dispatcher.c): an actor blocked in a
 * long behavior does not hold up the others (including the one it woke
 * just before blocking, parked in its worker's runnext slot), the
 * throughput setting bounds an actor's turn so a huge backlog cannot
 * starve another actor, a second dispatcher runs its actors on its own
 * named threads, an idle system uses next to no CPU, and a burst of sends
 * to the actor waiting in the sender's runnext is drained as it goes.
 *
 * Waits are latches (condition variables with deadlines) and futures.
 * Two places watch time pass on purpose and say so: the idle-CPU
 * measurement, and waiting (polled, with a deadline) until the workers have
 * parked for good, a state that has no event of its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <ingot/runtime.h>

#include "test_util.h"

#define WAIT IG_SEC(10)
#define GATE_MAX IG_SEC(5)

/* ---- actors ------------------------------------------------------------------------ */

enum {
	T_BLOCK = 1,   /* tell the ref in the payload (if any) T_PING, then block on the gate */
	T_PING,        /* count in the actor's latch */
	T_WHO,         /* reply T_WHO_R: who_t of the running thread */
	T_WHO_R,
	T_LOG,         /* append the actor's letter to the order log */
	T_ECHO,        /* reply T_ECHO_R */
	T_ECHO_R,
	T_BOUNCE,      /* int64 n: send n-1 to the ref in the state, until 0 */
};

typedef struct who {
	pthread_t thread;
	char name[16];
} who_t;

/* What an actor shares with the test. */
typedef struct aarg {
	latch_t pinged;
	latch_t blocked, gate;
	char letter;
	ig_ref_t peer;       /* T_BOUNCE */
	latch_t bounced;     /* T_BOUNCE reached 0 */
} aarg_t;

static void aarg_init(aarg_t *a, char letter)
{
	memset(a, 0, sizeof *a);
	latch_init(&a->pinged);
	latch_init(&a->blocked);
	latch_init(&a->gate);
	latch_init(&a->bounced);
	a->letter = letter;
}

/* Set to end every T_BOUNCE rally early. */
static _Atomic bool stop_bouncing;

/* The order log: letters in processing order. */
#define LOG_MAX 8192
static char order_log[LOG_MAX];
static _Atomic int order_len;
static latch_t order_done;

static int actor_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(aarg_t **)state = arg;
	return 0;
}

static int actor_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	aarg_t *a = *(aarg_t **)state;
	switch (msg->type) {
	case T_BLOCK:
		if (msg->size == sizeof(ig_ref_t)) {
			ig_ref_t to;
			memcpy(&to, msg->data, sizeof to);
			/* Sent from this actor's turn: the receiver goes to this
			 * worker's runnext slot. */
			ig_tell(to, T_PING, NULL, 0, ig_self(ctx));
		}
		latch_add(&a->blocked, 1);
		latch_wait(&a->gate, 1, GATE_MAX);
		return 0;
	case T_PING:
		latch_add(&a->pinged, 1);
		return 0;
	case T_WHO: {
		who_t w;
		memset(&w, 0, sizeof w);
		w.thread = pthread_self();
		pthread_getname_np(w.thread, w.name, sizeof w.name);
		ig_reply(ctx, msg, T_WHO_R, &w, sizeof w);
		return 0;
	}
	case T_LOG: {
		int i = atomic_fetch_add(&order_len, 1);
		if (i < LOG_MAX)
			order_log[i] = a->letter;
		latch_add(&order_done, 1);
		return 0;
	}
	case T_ECHO:
		ig_reply(ctx, msg, T_ECHO_R, NULL, 0);
		return 0;
	case T_BOUNCE: {
		int64_t n;
		memcpy(&n, msg->data, sizeof n);
		if (n == 0 || atomic_load_explicit(&stop_bouncing, memory_order_relaxed)) {
			latch_add(&a->bounced, 1);
			return 0;
		}
		n--;
		if ((n & 1023) <= 1) /* either parity: each side counts */
			latch_add(&a->pinged, 1); /* the rally is going */
		return ig_tell(msg->sender, T_BOUNCE, &n, sizeof n, ig_self(ctx));
	}
	default:
		return 0;
	}
}

static const ig_props_t actor_props = {
	.behavior = actor_behavior,
	.state_size = sizeof(aarg_t *),
	.init = actor_init,
};

/* ---- fixtures ------------------------------------------------------------------------- */

static ig_system_t *g_sys;

static int teardown(void **unused)
{
	(void)unused;
	ig_system_destroy(g_sys);
	g_sys = NULL;
	return 0;
}

static int setup_two_threads(void **unused)
{
	(void)unused;
	ig_system_config_t cfg = {.name = "disp", .threads = 2, .log_level = IG_LOG_OFF};
	return ig_system_create(&cfg, &g_sys);
}

static ig_ref_t spawn_on(aarg_t *a, char letter, ig_dispatcher_t *d)
{
	static ig_props_t props[64];
	static int nprops;
	aarg_init(a, letter);
	const ig_props_t *p = &actor_props;
	if (d) {
		/* Props are borrowed for the actor's life: keep them static. */
		assert_true(nprops < 64);
		props[nprops] = actor_props;
		props[nprops].dispatcher = d;
		p = &props[nprops++];
	}
	ig_ref_t r;
	assert_int_equal(ig_system_spawn(g_sys, p, NULL, a, &r), 0);
	return r;
}

static who_t who(ig_ref_t r)
{
	ig_future_t *f;
	who_t w;
	assert_int_equal(ig_ask(g_sys, r, T_WHO, NULL, 0, WAIT, &f), 0);
	const ig_msg_t *m;
	assert_int_equal(ig_future_wait(f, IG_FOREVER, &m), 0);
	assert_int_equal(m->size, sizeof w);
	memcpy(&w, m->data, sizeof w);
	ig_future_free(f);
	return w;
}

static void echo(ig_ref_t r)
{
	ig_future_t *f;
	assert_int_equal(ig_ask(g_sys, r, T_ECHO, NULL, 0, WAIT, &f), 0);
	assert_int_equal(ig_future_wait(f, IG_FOREVER, NULL), 0);
	ig_future_free(f);
}

/* Context switches of this process's threads whose name starts with
 * prefix; -1 if there is none. */
static long thread_switches(const char *prefix, int *nthreads)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	long total = -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], line[256];
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		bool ours = fgets(line, sizeof line, f) && strncmp(line, prefix, strlen(prefix)) == 0;
		fclose(f);
		if (!ours)
			continue;
		n++;
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		while (fgets(line, sizeof line, f)) {
			long v;
			if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
				total = (total < 0 ? 0 : total) + v;
		}
		fclose(f);
	}
	closedir(d);
	if (nthreads)
		*nthreads = n;
	return total;
}

/* Waits (polling /proc, with a deadline) until the default workers have
 * parked for good: no context switch for 20 ms, ten times the period of
 * the timed park a worker uses while another one is busy. */
static bool wait_workers_parked_for_good(void)
{
	latch_t never;
	latch_init(&never);
	int64_t deadline = mono_ns() + WAIT;
	long prev = thread_switches("ig-defaul", NULL);
	while (mono_ns() < deadline) {
		latch_wait(&never, 1, IG_MS(20));
		long now = thread_switches("ig-defaul", NULL);
		if (now == prev && now >= 0)
			return true;
		prev = now;
	}
	return false;
}

/* ---- a blocked actor ------------------------------------------------------------------- */

static void test_actor_blocked_in_a_behavior_does_not_stop_other_actors(void **unused)
{
	(void)unused;
	static aarg_t x, z;
	ig_ref_t xr = spawn_on(&x, 'x', NULL), zr = spawn_on(&z, 'z', NULL);
	assert_int_equal(ig_tell(xr, T_BLOCK, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&x.blocked, 1, WAIT));
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ig_tell(zr, T_PING, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&z.pinged, 1000, WAIT));
	echo(zr);
	latch_add(&x.gate, 1);
	echo(xr);
}

enum rescue_mode { AFTER_IDLE, OTHER_WORKER_BUSY };

static void runnext_rescue(enum rescue_mode mode)
{
	static aarg_t x, y, z, p, q;
	atomic_store(&stop_bouncing, false);
	ig_ref_t xr = spawn_on(&x, 'x', NULL), yr = spawn_on(&y, 'y', NULL);
	ig_ref_t zr = spawn_on(&z, 'z', NULL);
	ig_ref_t pr = spawn_on(&p, 'p', NULL), qr = spawn_on(&q, 'q', NULL);
	echo(xr);
	echo(yr);
	assert_true(wait_workers_parked_for_good());
	if (mode == OTHER_WORKER_BUSY) {
		/* A rally between p and q keeps one worker busy for good: each
		 * hop lands in that worker's own runnext slot. */
		int64_t n = INT64_MAX - 1;
		assert_int_equal(ig_tell(pr, T_BOUNCE, &n, sizeof n, qr), 0);
		assert_true(latch_wait(&p.pinged, 1, WAIT));
	}
	/* x wakes y from its own turn (y lands in x's runnext slot), then
	 * blocks: another worker must steal y. */
	assert_int_equal(ig_tell(xr, T_BLOCK, &yr, sizeof yr, IG_NOREF), 0);
	assert_true(latch_wait(&x.blocked, 1, WAIT));
	bool rescued = latch_wait(&y.pinged, 1, IG_SEC(2));
	if (!rescued)
		fprintf(stderr, "BUG: y, woken by x just before x blocked, did not run within 2 s "
				"while x was blocked (%s)\n",
			mode == AFTER_IDLE ? "all workers had parked" : "the other worker busy");
	if (!rescued && mode == AFTER_IDLE) {
		/* Diagnostic: an unrelated tell from outside wakes the parked
		 * worker, which then finds y. */
		ig_tell(zr, T_PING, NULL, 0, IG_NOREF);
		bool later = latch_wait(&y.pinged, 1, IG_SEC(2));
		fprintf(stderr, "     after a tell from outside to another actor: y %s\n",
			later ? "ran" : "still did not run");
	}
	atomic_store(&stop_bouncing, true);
	latch_add(&x.gate, 1);
	assert_true(latch_wait(&y.pinged, 1, WAIT));
	echo(pr); /* the rally has ended: both answer */
	echo(qr);
	assert_true(rescued);
}

static void test_actor_woken_just_before_its_waker_blocked_runs_while_other_worker_is_busy(
	void **unused)
{
	(void)unused;
	runnext_rescue(OTHER_WORKER_BUSY);
}

static void test_actor_woken_just_before_its_waker_blocked_runs_once_all_workers_parked(
	void **unused)
{
	(void)unused;
	runnext_rescue(AFTER_IDLE);
}

/* ---- throughput -------------------------------------------------------------------------- */

static int setup_one_thread_throughput_8(void **unused)
{
	(void)unused;
	ig_system_config_t cfg = {.name = "tput", .threads = 1, .throughput = 8,
				  .log_level = IG_LOG_OFF};
	return ig_system_create(&cfg, &g_sys);
}

static int setup_deterministic_throughput_5(void **unused)
{
	(void)unused;
	ig_system_config_t cfg = {.name = "tputdet", .deterministic = true, .throughput = 5,
				  .log_level = IG_LOG_OFF};
	return ig_system_create(&cfg, &g_sys);
}

static int longest_run(const char *log, int from, int to, char c)
{
	int best = 0, cur = 0;
	for (int i = from; i < to; i++) {
		cur = log[i] == c ? cur + 1 : 0;
		if (cur > best)
			best = cur;
	}
	return best;
}

static void order_reset(void)
{
	memset(order_log, 0, sizeof order_log);
	atomic_store(&order_len, 0);
	latch_init(&order_done);
}

static void test_huge_backlog_does_not_starve_another_actor_turns_end_at_throughput(
	void **unused)
{
	(void)unused;
	static aarg_t g, a, b;
	order_reset();
	/* One worker: g blocks it while both backlogs are queued. */
	ig_ref_t gr = spawn_on(&g, 'g', NULL), ar = spawn_on(&a, 'A', NULL);
	ig_ref_t br = spawn_on(&b, 'B', NULL);
	assert_int_equal(ig_tell(gr, T_BLOCK, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&g.blocked, 1, WAIT));
	const int na = 4000, nb = 100;
	for (int i = 0; i < na; i++)
		assert_int_equal(ig_tell(ar, T_LOG, NULL, 0, IG_NOREF), 0);
	for (int i = 0; i < nb; i++)
		assert_int_equal(ig_tell(br, T_LOG, NULL, 0, IG_NOREF), 0);
	latch_add(&g.gate, 1);
	assert_true(latch_wait(&order_done, na + nb, WAIT));
	int n = atomic_load(&order_len);
	assert_int_equal(n, na + nb);
	const char *end_b = strrchr(order_log, 'B'), *first_b = strchr(order_log, 'B');
	const char *end_a = strrchr(order_log, 'A');
	assert_non_null(end_b);
	int fb = (int)(first_b - order_log), lb = (int)(end_b - order_log);
	int la = (int)(end_a - order_log);
	printf("# first B at %d, last B at %d, last A at %d; longest A run before B: %d\n", fb,
	       lb, la, longest_run(order_log, 0, fb, 'A'));
	/* B finished long before A's backlog did: they interleaved. */
	assert_true(lb < la);
	assert_true(lb < na / 2);
	/* No turn of B ran past the throughput, nor any turn of A while B
	 * had work. */
	assert_true(longest_run(order_log, 0, n, 'B') <= 8);
	assert_true(longest_run(order_log, fb, lb, 'A') <= 8);
}

static void test_deterministic_dispatcher_alternates_turns_of_exactly_throughput_messages(
	void **unused)
{
	(void)unused;
	static aarg_t a, b;
	order_reset();
	ig_ref_t ar = spawn_on(&a, 'A', NULL), br = spawn_on(&b, 'B', NULL);
	for (int i = 0; i < 23; i++)
		assert_int_equal(ig_tell(ar, T_LOG, NULL, 0, IG_NOREF), 0);
	for (int i = 0; i < 12; i++)
		assert_int_equal(ig_tell(br, T_LOG, NULL, 0, IG_NOREF), 0);
	echo(ar); /* runs everything queued before it */
	echo(br);
	assert_int_equal(atomic_load(&order_len), 35);
	assert_string_equal(order_log, "AAAAABBBBBAAAAABBBBBAAAAABBAAAAAAAA");
}

/* ---- a second dispatcher ------------------------------------------------------------------- */

static void test_second_dispatcher_runs_its_actors_on_its_own_named_threads(void **unused)
{
	(void)unused;
	static aarg_t def[8], own[8];
	ig_dispatcher_t *d;
	ig_dispatcher_config_t dc = {.name = "blocking", .threads = 2};
	assert_int_equal(ig_dispatcher_create(g_sys, &dc, &d), 0);
	ig_ref_t dr[8], orf[8];
	for (int i = 0; i < 8; i++) {
		dr[i] = spawn_on(&def[i], 'd', NULL);
		orf[i] = spawn_on(&own[i], 'o', d);
	}
	who_t dw[8], ow[8];
	for (int i = 0; i < 8; i++) {
		dw[i] = who(dr[i]);
		ow[i] = who(orf[i]);
	}
	for (int i = 0; i < 8; i++) {
		assert_true(strncmp(dw[i].name, "ig-", 3) == 0);
		assert_true(strncmp(ow[i].name, "ig-", 3) == 0);
		assert_true(strncmp(dw[i].name, "ig-defaul", 9) == 0);
		assert_true(strncmp(ow[i].name, "ig-blocki", 9) == 0);
		for (int k = 0; k < 8; k++)
			assert_false(pthread_equal(ow[i].thread, dw[k].thread));
		assert_false(pthread_equal(ow[i].thread, pthread_self()));
	}
	int n = 0;
	assert_true(thread_switches("ig-blocki", &n) >= 0);
	assert_int_equal(n, 2);
}

static void test_blocking_one_dispatcher_leaves_the_other_running(void **unused)
{
	(void)unused;
	static aarg_t def[2], own[2], dfree, ofree;
	ig_dispatcher_t *d;
	ig_dispatcher_config_t dc = {.name = "io", .threads = 2};
	assert_int_equal(ig_dispatcher_create(g_sys, &dc, &d), 0);
	ig_ref_t ofr = spawn_on(&ofree, 'o', d), dfr = spawn_on(&dfree, 'd', NULL);
	/* Every thread of the second dispatcher blocked: the default runs. */
	for (int i = 0; i < 2; i++) {
		ig_ref_t r = spawn_on(&own[i], 'o', d);
		assert_int_equal(ig_tell(r, T_BLOCK, NULL, 0, IG_NOREF), 0);
		assert_true(latch_wait(&own[i].blocked, 1, WAIT));
	}
	for (int i = 0; i < 100; i++)
		echo(dfr);
	for (int i = 0; i < 2; i++)
		latch_add(&own[i].gate, 1);
	/* And the other way round. */
	for (int i = 0; i < 2; i++) {
		ig_ref_t r = spawn_on(&def[i], 'd', NULL);
		assert_int_equal(ig_tell(r, T_BLOCK, NULL, 0, IG_NOREF), 0);
		assert_true(latch_wait(&def[i].blocked, 1, WAIT));
	}
	/* Asks need no default worker: replies go to a temporary actor... on
	 * the default dispatcher. So count pings instead. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(ig_tell(ofr, T_PING, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&ofree.pinged, 100, WAIT));
	for (int i = 0; i < 2; i++)
		latch_add(&def[i].gate, 1);
	echo(ofr);
}

static void test_ping_pong_between_two_dispatchers_completes(void **unused)
{
	(void)unused;
	static aarg_t a, b;
	ig_dispatcher_t *d;
	ig_dispatcher_config_t dc = {.name = "other", .threads = 1};
	assert_int_equal(ig_dispatcher_create(g_sys, &dc, &d), 0);
	ig_ref_t ar = spawn_on(&a, 'a', NULL), br = spawn_on(&b, 'b', d);
	int64_t n = 20000; /* a and b bounce it down to 0, which lands at a */
	assert_int_equal(ig_tell(ar, T_BOUNCE, &n, sizeof n, br), 0);
	assert_true(latch_wait(&a.bounced, 1, WAIT));
	echo(br);
}

static void test_second_dispatcher_in_a_deterministic_system_runs_on_the_calling_thread(
	void **unused)
{
	(void)unused;
	static aarg_t own;
	ig_dispatcher_t *d;
	ig_dispatcher_config_t dc = {.name = "det2", .threads = 3};
	assert_int_equal(ig_dispatcher_create(g_sys, &dc, &d), 0);
	ig_ref_t r = spawn_on(&own, 'o', d);
	who_t w = who(r);
	assert_true(pthread_equal(w.thread, pthread_self()));
	int n = -1;
	thread_switches("ig-det2", &n);
	assert_int_equal(n, 0);
}

/* ---- idle CPU ----------------------------------------------------------------------------- */

static int64_t cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static void test_idle_system_uses_almost_no_cpu(void **unused)
{
	(void)unused;
	static aarg_t a, b, c;
	ig_dispatcher_t *d;
	ig_dispatcher_config_t dc = {.name = "idle2", .threads = 2};
	assert_int_equal(ig_dispatcher_create(g_sys, &dc, &d), 0);
	ig_ref_t ar = spawn_on(&a, 'a', NULL), br = spawn_on(&b, 'b', NULL);
	ig_ref_t cr = spawn_on(&c, 'c', d);
	/* Some work first, on both dispatchers, so every worker has run. */
	int64_t n = 20000;
	assert_int_equal(ig_tell(ar, T_BOUNCE, &n, sizeof n, br), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ig_tell(cr, T_PING, NULL, 0, IG_NOREF), 0);
	assert_true(latch_wait(&c.pinged, 1000, WAIT));
	assert_true(latch_wait(&a.bounced, 1, WAIT));
	/* The idle interval is the quantity measured, so this sleeps through
	 * it: 300 ms of wall time, then the CPU the process used meanwhile
	 * (spin-down included: workers spin ~50 us, then park). */
	int64_t c0 = cpu_ns(), t0 = mono_ns();
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 300 * 1000000};
	nanosleep(&ts, NULL);
	int64_t used = cpu_ns() - c0, wall = mono_ns() - t0;
	printf("# idle: %.2f ms CPU over %.0f ms (%.2f%%)\n", used / 1e6, wall / 1e6,
	       100.0 * (double)used / (double)wall);
	assert_true(used < wall * 15 / 100);
}

/* ---- a producer feeding the actor in its runnext ------------------------------------ */

/* The producer sends BURST messages to the sink from one behavior call. On
 * a one-thread system nothing else could run the sink meanwhile; the
 * sender's worker runs the sink's turns itself every 256 such sends, so the
 * backlog stays bounded and the order is kept. */
#define BURST 100000

static _Atomic long sent_so_far;

typedef struct {
	long received, max_backlog;
	bool in_order;
	latch_t done;
} burst_sink_t;

static burst_sink_t g_burst;

static int burst_sink(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	long seq = *(const long *)msg->data;
	g_burst.in_order &= seq == g_burst.received;
	g_burst.received++;
	long backlog = atomic_load(&sent_so_far) - g_burst.received;
	if (backlog > g_burst.max_backlog)
		g_burst.max_backlog = backlog;
	if (g_burst.received == BURST)
		latch_add(&g_burst.done, 1);
	return 0;
}

static int burst_producer(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	ig_ref_t sink = *(const ig_ref_t *)msg->data;
	for (long i = 0; i < BURST; i++) {
		atomic_store(&sent_so_far, i + 1);
		if (ig_tell(sink, 1, &i, sizeof i, ig_self(ctx)) != 0)
			return IG_EFAILED;
	}
	return 0;
}

static const ig_props_t burst_sink_props = {.behavior = burst_sink};
static const ig_props_t burst_producer_props = {.behavior = burst_producer};

static void test_a_burst_to_the_runnext_actor_keeps_its_backlog_bounded(void **unused)
{
	(void)unused;
	g_burst = (burst_sink_t){.in_order = true};
	latch_init(&g_burst.done);
	atomic_store(&sent_so_far, 0);
	ig_ref_t sink, producer;
	assert_int_equal(ig_system_spawn(g_sys, &burst_sink_props, NULL, NULL, &sink), 0);
	assert_int_equal(ig_system_spawn(g_sys, &burst_producer_props, NULL, NULL, &producer), 0);
	assert_int_equal(ig_tell(producer, 1, &sink, sizeof sink, IG_NOREF), 0);
	assert_true(latch_wait(&g_burst.done, 1, WAIT));
	assert_int_equal(g_burst.received, BURST);
	assert_true(g_burst.in_order);
	/* 256 sends, then a nested turn of up to 256 messages: never far behind */
	printf("# largest backlog seen: %ld of %d messages\n", g_burst.max_backlog, BURST);
	assert_true(g_burst.max_backlog <= 1024);
	latch_destroy(&g_burst.done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_two_threads, teardown)
		T(test_actor_blocked_in_a_behavior_does_not_stop_other_actors),
		T(test_actor_woken_just_before_its_waker_blocked_runs_while_other_worker_is_busy),
		T(test_actor_woken_just_before_its_waker_blocked_runs_once_all_workers_parked),
		cmocka_unit_test_setup_teardown(
			test_huge_backlog_does_not_starve_another_actor_turns_end_at_throughput,
			setup_one_thread_throughput_8, teardown),
		cmocka_unit_test_setup_teardown(
			test_deterministic_dispatcher_alternates_turns_of_exactly_throughput_messages,
			setup_deterministic_throughput_5, teardown),
		T(test_second_dispatcher_runs_its_actors_on_its_own_named_threads),
		T(test_blocking_one_dispatcher_leaves_the_other_running),
		T(test_ping_pong_between_two_dispatchers_completes),
		cmocka_unit_test_setup_teardown(
			test_second_dispatcher_in_a_deterministic_system_runs_on_the_calling_thread,
			setup_deterministic_throughput_5, teardown),
		T(test_idle_system_uses_almost_no_cpu),
		cmocka_unit_test_setup_teardown(
			test_a_burst_to_the_runnext_actor_keeps_its_backlog_bounded,
			setup_one_thread_throughput_8, teardown),
#undef T
	};
	return cmocka_run_group_tests_name("dispatcher", tests, NULL, NULL);
}
