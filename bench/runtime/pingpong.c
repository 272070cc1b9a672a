/* Savina ping-pong for ingot: two actors bounce one message N times.
 * Usage: pingpong REPS N. Counts 2N messages (ping + pong) per rep and
 * prints "RESULT pingpong <msgs/s> msgs/s" from the median rep. */
#include "harness.c"

enum { M_START = 1, M_PING, M_PONG };

struct ping_state {
	ig_ref_t pong, main;
	long left;
};

struct ping_arg {
	ig_ref_t pong, main;
	long n;
};

static int ping_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	struct ping_state *s = state;
	const struct ping_arg *a = arg;
	s->pong = a->pong;
	s->main = a->main;
	s->left = a->n;
	return 0;
}

static int ping_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	struct ping_state *s = state;
	if (msg->type == M_START || (msg->type == M_PONG && --s->left > 0))
		CHECK(ig_tell(s->pong, M_PING, NULL, 0, ig_self(ctx)));
	else if (msg->type == M_PONG)
		CHECK(ig_tell(s->main, BENCH_DONE, NULL, 0, ig_self(ctx)));
	return 0;
}

static int pong_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	if (msg->type == M_PING)
		CHECK(ig_reply(ctx, msg, M_PONG, NULL, 0));
	return 0;
}

static const ig_props_t ping_props = {
	.behavior = ping_fn, .state_size = sizeof(struct ping_state), .init = ping_init};
static const ig_props_t pong_props = {.behavior = pong_fn};

int main(int argc, char **argv)
{
	long a[2];
	bench_args(argc, argv, 2, a, "REPS N");
	int reps = (int)a[0];
	long n = a[1];
	ig_system_t *sys = bench_system();
	ig_ref_t waiter = bench_waiter_spawn(sys);
	double secs[reps];
	struct ping_arg args[reps]; /* spawn args must outlive their actors */
	for (int r = 0; r < reps; r++) {
		struct ping_arg *arg = &args[r];
		*arg = (struct ping_arg){.main = waiter, .n = n};
		ig_ref_t ping;
		CHECK(ig_system_spawn(sys, &pong_props, NULL, NULL, &arg->pong));
		CHECK(ig_system_spawn(sys, &ping_props, NULL, arg, &ping));
		double t0 = bench_now();
		CHECK(ig_tell(ping, M_START, NULL, 0, IG_NOREF));
		bench_wait(sys, waiter);
		secs[r] = bench_now() - t0;
		ig_stop(ping);
		ig_stop(arg->pong);
	}
	bench_report("pingpong", 2.0 * n / bench_median(secs, reps), "msgs/s");
	ig_system_destroy(sys);
	return 0;
}
