/* Savina fork-join throughput for ingot: the main thread sends N messages
 * to each of A workers (round by round); each message costs a little
 * arithmetic; a worker that got N tells the sink, the sink tells main when
 * all A are done. Usage: fjthrput REPS A N. Counts A*N messages per rep. */
#include "harness.c"

#include <math.h>

enum { M_WORK = 1, M_DONE };

struct worker_state {
	ig_ref_t sink;
	int n, count;
	double acc;
};

struct sink_state {
	ig_ref_t main;
	int left;
};

struct rep_arg {
	ig_ref_t sink, main;
	int a, n;
};

static int worker_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	struct worker_state *s = state;
	const struct rep_arg *a = arg;
	s->sink = a->sink;
	s->n = a->n;
	return 0;
}

static int worker_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	struct worker_state *s = state;
	if (msg->type == M_WORK) {
		double x = sin(37.2 + s->count);
		s->acc += x * x;
		if (++s->count == s->n)
			CHECK(ig_tell(s->sink, M_DONE, &s->acc, sizeof s->acc, ig_self(ctx)));
	}
	return 0;
}

static int sink_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	struct sink_state *s = state;
	const struct rep_arg *a = arg;
	s->main = a->main;
	s->left = a->a;
	return 0;
}

static int sink_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	struct sink_state *s = state;
	if (msg->type == M_DONE && --s->left == 0)
		CHECK(ig_tell(s->main, BENCH_DONE, NULL, 0, ig_self(ctx)));
	return 0;
}

static const ig_props_t worker_props = {
	.behavior = worker_fn, .state_size = sizeof(struct worker_state), .init = worker_init};
static const ig_props_t sink_props = {
	.behavior = sink_fn, .state_size = sizeof(struct sink_state), .init = sink_init};

int main(int argc, char **argv)
{
	long a[3];
	bench_args(argc, argv, 3, a, "REPS A N");
	int reps = (int)a[0], nw = (int)a[1], n = (int)a[2];
	ig_system_t *sys = bench_system();
	ig_ref_t waiter = bench_waiter_spawn(sys);
	ig_ref_t *workers = malloc(sizeof *workers * (size_t)nw);
	double secs[reps];
	struct rep_arg args[reps]; /* spawn args must outlive their actors */
	for (int r = 0; r < reps; r++) {
		struct rep_arg *arg = &args[r];
		*arg = (struct rep_arg){.main = waiter, .a = nw, .n = n};
		CHECK(ig_system_spawn(sys, &sink_props, NULL, arg, &arg->sink));
		for (int i = 0; i < nw; i++)
			CHECK(ig_system_spawn(sys, &worker_props, NULL, arg, &workers[i]));
		double t0 = bench_now();
		for (int m = 0; m < n; m++)
			for (int i = 0; i < nw; i++)
				CHECK(ig_tell(workers[i], M_WORK, NULL, 0, IG_NOREF));
		bench_wait(sys, waiter);
		secs[r] = bench_now() - t0;
		for (int i = 0; i < nw; i++)
			ig_stop(workers[i]);
		ig_stop(arg->sink);
	}
	bench_report("fjthrput", (double)nw * n / bench_median(secs, reps), "msgs/s");
	ig_system_destroy(sys);
	free(workers);
	return 0;
}
