/* Savina thread ring for ingot: A actors in a ring pass one token H times
 * (each hop decrements it; the actor that sees 0 reports done).
 * Usage: threadring REPS A H. Counts H+1 messages per rep. */
#include "harness.c"

enum { M_NEXT = 1, M_TOKEN };

struct node_state {
	ig_ref_t next, main;
};

static int node_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	((struct node_state *)state)->main = *(const ig_ref_t *)arg;
	return 0;
}

static int node_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	struct node_state *s = state;
	if (msg->type == M_NEXT) {
		s->next = *(const ig_ref_t *)msg->data;
	} else if (msg->type == M_TOKEN) {
		int hops = *(const int *)msg->data;
		if (hops == 0) {
			CHECK(ig_tell(s->main, BENCH_DONE, NULL, 0, ig_self(ctx)));
		} else {
			hops--;
			CHECK(ig_tell(s->next, M_TOKEN, &hops, sizeof hops, ig_self(ctx)));
		}
	}
	return 0;
}

static const ig_props_t node_props = {
	.behavior = node_fn, .state_size = sizeof(struct node_state), .init = node_init};

int main(int argc, char **argv)
{
	long a[3];
	bench_args(argc, argv, 3, a, "REPS A H");
	int reps = (int)a[0], nodes = (int)a[1], h = (int)a[2];
	ig_system_t *sys = bench_system();
	ig_ref_t waiter = bench_waiter_spawn(sys); /* every node's spawn arg */
	ig_ref_t *ring = malloc(sizeof *ring * (size_t)nodes);
	double secs[reps];
	for (int r = 0; r < reps; r++) {
		for (int i = 0; i < nodes; i++)
			CHECK(ig_system_spawn(sys, &node_props, NULL, &waiter, &ring[i]));
		for (int i = 0; i < nodes; i++)
			CHECK(ig_tell(ring[i], M_NEXT, &ring[(i + 1) % nodes], sizeof(ig_ref_t),
				      IG_NOREF));
		double t0 = bench_now();
		CHECK(ig_tell(ring[0], M_TOKEN, &h, sizeof h, IG_NOREF));
		bench_wait(sys, waiter);
		secs[r] = bench_now() - t0;
		for (int i = 0; i < nodes; i++)
			ig_stop(ring[i]);
	}
	bench_report("threadring", (h + 1.0) / bench_median(secs, reps), "msgs/s");
	ig_system_destroy(sys);
	free(ring);
	return 0;
}
