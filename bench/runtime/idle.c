/* Idle actors for ingot: spawns N actors that wait for a message, from the
 * main thread, then asks the last one a ping. Prints the spawn rate (N /
 * time of the spawns + that ask) and the RSS growth per actor (resident
 * pages from /proc/self/statm, after minus before, / N).
 * Usage: idle N. */
#include "harness.c"

enum { M_PING = 1, M_PONG };

static int idle_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)state;
	if (msg->type == M_PING)
		CHECK(ig_reply(ctx, msg, M_PONG, NULL, 0));
	return 0;
}

static const ig_props_t idle_props = {.behavior = idle_fn};

int main(int argc, char **argv)
{
	long a[1];
	bench_args(argc, argv, 1, a, "N");
	long n = a[0];
	ig_system_t *sys = bench_system();
	long before = bench_rss_bytes();
	double t0 = bench_now();
	ig_ref_t last = IG_NOREF;
	for (long i = 0; i < n; i++)
		CHECK(ig_system_spawn(sys, &idle_props, NULL, NULL, &last));
	ig_future_t *f;
	const ig_msg_t *reply;
	CHECK(ig_ask(sys, last, M_PING, NULL, 0, IG_SEC(600), &f));
	CHECK(ig_future_wait(f, IG_FOREVER, &reply));
	ig_future_free(f);
	double secs = bench_now() - t0;
	long after = bench_rss_bytes();
	bench_report("spawn", (double)n / secs, "spawns/s");
	bench_report("idle_bytes", (double)(after - before) / (double)n, "bytes/actor");
	double t1 = bench_now();
	ig_system_destroy(sys);
	fprintf(stderr, "idle: shutdown of %ld actors took %.2f s\n", n, bench_now() - t1);
	return 0;
}
