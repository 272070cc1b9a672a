/* Savina counting for ingot: a producer sends N increments to a counter,
 * then asks for the total and checks it.
 * Usage: counting REPS N. Counts N+2 messages per rep. */
#include "harness.c"

enum { M_START = 1, M_INC, M_GET, M_TOTAL };

struct producer_state {
	ig_ref_t counter, main;
	long n;
};

static int producer_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(struct producer_state *)state = *(const struct producer_state *)arg;
	return 0;
}

static int producer_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	struct producer_state *s = state;
	if (msg->type == M_START) {
		for (long i = 0; i < s->n; i++)
			CHECK(ig_tell(s->counter, M_INC, NULL, 0, ig_self(ctx)));
		CHECK(ig_tell(s->counter, M_GET, NULL, 0, ig_self(ctx)));
	} else if (msg->type == M_TOTAL) {
		long total = *(const long *)msg->data;
		if (total != s->n)
			fprintf(stderr, "counting: got %ld, want %ld\n", total, s->n);
		CHECK(ig_tell(s->main, BENCH_DONE, NULL, 0, ig_self(ctx)));
	}
	return 0;
}

static int counter_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	long *count = state;
	if (msg->type == M_INC)
		++*count;
	else if (msg->type == M_GET)
		CHECK(ig_reply(ctx, msg, M_TOTAL, count, sizeof *count));
	return 0;
}

static const ig_props_t producer_props = {.behavior = producer_fn,
					  .state_size = sizeof(struct producer_state),
					  .init = producer_init};
static const ig_props_t counter_props = {.behavior = counter_fn, .state_size = sizeof(long)};

int main(int argc, char **argv)
{
	long a[2];
	bench_args(argc, argv, 2, a, "REPS N");
	int reps = (int)a[0];
	long n = a[1];
	ig_system_t *sys = bench_system();
	ig_ref_t waiter = bench_waiter_spawn(sys);
	double secs[reps];
	struct producer_state args[reps]; /* spawn args must outlive their actors */
	for (int r = 0; r < reps; r++) {
		struct producer_state *arg = &args[r];
		*arg = (struct producer_state){.main = waiter, .n = n};
		ig_ref_t producer;
		CHECK(ig_system_spawn(sys, &counter_props, NULL, NULL, &arg->counter));
		CHECK(ig_system_spawn(sys, &producer_props, NULL, arg, &producer));
		double t0 = bench_now();
		CHECK(ig_tell(producer, M_START, NULL, 0, IG_NOREF));
		bench_wait(sys, waiter);
		secs[r] = bench_now() - t0;
		ig_stop(producer);
		ig_stop(arg->counter);
	}
	bench_report("counting", (n + 2.0) / bench_median(secs, reps), "msgs/s");
	ig_system_destroy(sys);
	return 0;
}
