/* Savina fork-join creation for ingot: the main thread spawns N workers and
 * sends each one message; a worker does a little arithmetic, tells the sink
 * and stops; the sink tells main when all N are done.
 * Usage: fjcreate REPS N. Counts N (spawn + message) per rep. */
#include "harness.c"

#include <math.h>

enum { M_WORK = 1, M_DONE };

struct sink_state {
	ig_ref_t main;
	int left;
};

struct rep_arg {
	ig_ref_t sink, main;
	int n;
};

static int worker_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(ig_ref_t *)state = ((const struct rep_arg *)arg)->sink;
	return 0;
}

static int worker_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	if (msg->type == M_WORK) {
		double x = sin(37.2 + *(const int *)msg->data);
		x *= x;
		CHECK(ig_tell(*(ig_ref_t *)state, M_DONE, &x, sizeof x, ig_self(ctx)));
		ig_stop_self(ctx);
	}
	return 0;
}

static int sink_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	struct sink_state *s = state;
	const struct rep_arg *a = arg;
	s->main = a->main;
	s->left = a->n;
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
	.behavior = worker_fn, .state_size = sizeof(ig_ref_t), .init = worker_init};
static const ig_props_t sink_props = {
	.behavior = sink_fn, .state_size = sizeof(struct sink_state), .init = sink_init};

int main(int argc, char **argv)
{
	long a[2];
	bench_args(argc, argv, 2, a, "REPS N");
	int reps = (int)a[0], n = (int)a[1];
	ig_system_t *sys = bench_system();
	ig_ref_t waiter = bench_waiter_spawn(sys);
	double secs[reps];
	struct rep_arg args[reps]; /* spawn args must outlive their actors */
	for (int r = 0; r < reps; r++) {
		struct rep_arg *arg = &args[r];
		*arg = (struct rep_arg){.main = waiter, .n = n};
		CHECK(ig_system_spawn(sys, &sink_props, NULL, arg, &arg->sink));
		double t0 = bench_now();
		for (int i = 0; i < n; i++) {
			ig_ref_t w;
			CHECK(ig_system_spawn(sys, &worker_props, NULL, arg, &w));
			CHECK(ig_tell(w, M_WORK, &i, sizeof i, IG_NOREF));
		}
		bench_wait(sys, waiter);
		secs[r] = bench_now() - t0;
		ig_stop(arg->sink);
	}
	bench_report("fjcreate", (double)n / bench_median(secs, reps), "msgs/s");
	ig_system_destroy(sys);
	return 0;
}
