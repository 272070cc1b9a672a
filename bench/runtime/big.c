/* Savina big for ingot: W workers; each sends N pings, one at a time, to a
 * neighbor picked at random (Park-Miller, seeded by the worker's index); a
 * ping is answered with a pong, and each pong triggers the next ping. A
 * worker whose N pongs came back tells the sink; the sink tells main once
 * all W are done. Usage: big REPS W N. Counts 2*W*N messages per rep. */
#include "harness.c"

#include <stdint.h>

enum { M_PEERS = 1, M_START, M_PING, M_PONG, M_DONE };

struct peers {
	const ig_ref_t *refs;
	size_t count;
};

struct worker_state {
	struct peers peers;
	ig_ref_t sink;
	int64_t seed;
	int sent, n;
};

struct worker_arg {
	ig_ref_t sink;
	int index, n;
};

struct sink_state {
	ig_ref_t main;
	int left;
};

struct sink_arg {
	ig_ref_t main;
	int w;
};

static int worker_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	struct worker_state *s = state;
	const struct worker_arg *a = arg;
	s->sink = a->sink;
	s->seed = a->index + 1;
	s->n = a->n;
	return 0;
}

static void ping_random(ig_ctx_t *ctx, struct worker_state *s)
{
	s->seed = s->seed * 48271 % 2147483647;
	s->sent++;
	CHECK(ig_tell(s->peers.refs[(size_t)s->seed % s->peers.count], M_PING, NULL, 0,
		      ig_self(ctx)));
}

static int worker_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	struct worker_state *s = state;
	switch (msg->type) {
	case M_PEERS:
		s->peers = *(const struct peers *)msg->data;
		break;
	case M_START:
		ping_random(ctx, s);
		break;
	case M_PING:
		CHECK(ig_reply(ctx, msg, M_PONG, NULL, 0));
		break;
	case M_PONG:
		if (s->sent == s->n)
			CHECK(ig_tell(s->sink, M_DONE, NULL, 0, ig_self(ctx)));
		else
			ping_random(ctx, s);
		break;
	}
	return 0;
}

static int sink_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	struct sink_state *s = state;
	const struct sink_arg *a = arg;
	s->main = a->main;
	s->left = a->w;
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
	bench_args(argc, argv, 3, a, "REPS W N");
	int reps = (int)a[0], w = (int)a[1], n = (int)a[2];
	ig_system_t *sys = bench_system();
	ig_ref_t waiter = bench_waiter_spawn(sys);
	double secs[reps];
	/* spawn args and the peer lists must outlive their actors */
	struct sink_arg *sargs = calloc((size_t)reps, sizeof *sargs);
	struct worker_arg *wargs = calloc((size_t)reps * (size_t)w, sizeof *wargs);
	ig_ref_t *refs = calloc((size_t)reps * (size_t)w, sizeof *refs);
	for (int r = 0; r < reps; r++) {
		ig_ref_t sink, *workers = &refs[(size_t)r * (size_t)w];
		sargs[r] = (struct sink_arg){.main = waiter, .w = w};
		CHECK(ig_system_spawn(sys, &sink_props, NULL, &sargs[r], &sink));
		for (int i = 0; i < w; i++) {
			struct worker_arg *wa = &wargs[(size_t)r * (size_t)w + (size_t)i];
			*wa = (struct worker_arg){.sink = sink, .index = i, .n = n};
			CHECK(ig_system_spawn(sys, &worker_props, NULL, wa, &workers[i]));
		}
		struct peers peers = {.refs = workers, .count = (size_t)w};
		for (int i = 0; i < w; i++)
			CHECK(ig_tell(workers[i], M_PEERS, &peers, sizeof peers, IG_NOREF));
		double t0 = bench_now();
		for (int i = 0; i < w; i++)
			CHECK(ig_tell(workers[i], M_START, NULL, 0, IG_NOREF));
		bench_wait(sys, waiter);
		secs[r] = bench_now() - t0;
		for (int i = 0; i < w; i++)
			ig_stop(workers[i]);
		ig_stop(sink);
	}
	bench_report("big", 2.0 * w * n / bench_median(secs, reps), "msgs/s");
	ig_system_destroy(sys);
	free(refs);
	free(wargs);
	free(sargs);
	return 0;
}
