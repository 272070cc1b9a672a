/* Savina chameneos for ingot: C chameneos meet through a mall N times.
 * A chameneo sends MEET(color) to the mall; the mall parks the first and
 * forwards the second's MEET to it (ig_forward keeps the sender); the
 * parked one takes the complement color, sends CHANGE(color) to the other,
 * and both go back to the mall. After N meetings the mall answers meets
 * with EXIT; each chameneo then reports DONE and stops; the mall tells main
 * once all C reported. Usage: chameneos REPS C N. Counts 4N messages. */
#include "harness.c"

enum { M_START = 1, M_MEET, M_CHANGE, M_EXIT, M_DONE };

struct mall_state {
	ig_ref_t main, waiting;
	int left, live;
	long total, want; /* meetings reported; each meeting counts twice */
};

struct mall_arg {
	ig_ref_t main;
	int c, n;
};

struct cham_state {
	ig_ref_t mall;
	int color, meetings;
};

struct cham_arg {
	ig_ref_t mall;
	int color;
};

static int complement(int a, int b) { return a == b ? a : 3 - a - b; }

static int mall_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	struct mall_state *s = state;
	const struct mall_arg *a = arg;
	s->main = a->main;
	s->left = a->n;
	s->live = a->c;
	s->want = 2L * a->n;
	return 0;
}

static int mall_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	struct mall_state *s = state;
	if (msg->type == M_MEET) {
		if (s->left == 0) {
			CHECK(ig_reply(ctx, msg, M_EXIT, NULL, 0));
		} else if (ig_ref_is_none(s->waiting)) {
			s->waiting = msg->sender;
		} else {
			CHECK(ig_forward(ctx, msg, s->waiting));
			s->waiting = IG_NOREF;
			s->left--;
		}
	} else if (msg->type == M_DONE) {
		s->total += *(const int *)msg->data;
		if (--s->live > 0)
			return 0;
		if (s->total != s->want)
			fprintf(stderr, "chameneos: %ld meetings, want %ld\n", s->total, s->want);
		CHECK(ig_tell(s->main, BENCH_DONE, NULL, 0, ig_self(ctx)));
	}
	return 0;
}

static int cham_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	struct cham_state *s = state;
	const struct cham_arg *a = arg;
	s->mall = a->mall;
	s->color = a->color;
	return 0;
}

static int cham_fn(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	struct cham_state *s = state;
	switch (msg->type) {
	case M_START:
		break;
	case M_MEET: /* forwarded by the mall: the sender is the other chameneo */
		s->color = complement(s->color, *(const int *)msg->data);
		s->meetings++;
		CHECK(ig_reply(ctx, msg, M_CHANGE, &s->color, sizeof s->color));
		break;
	case M_CHANGE:
		s->color = *(const int *)msg->data;
		s->meetings++;
		break;
	case M_EXIT:
		CHECK(ig_tell(s->mall, M_DONE, &s->meetings, sizeof s->meetings, ig_self(ctx)));
		ig_stop_self(ctx);
		return 0;
	default:
		return 0;
	}
	/* M_START, M_MEET, M_CHANGE: (back) to the mall */
	CHECK(ig_tell(s->mall, M_MEET, &s->color, sizeof s->color, ig_self(ctx)));
	return 0;
}

static const ig_props_t mall_props = {
	.behavior = mall_fn, .state_size = sizeof(struct mall_state), .init = mall_init};
static const ig_props_t cham_props = {
	.behavior = cham_fn, .state_size = sizeof(struct cham_state), .init = cham_init};

int main(int argc, char **argv)
{
	long a[3];
	bench_args(argc, argv, 3, a, "REPS C N");
	int reps = (int)a[0], c = (int)a[1], n = (int)a[2];
	ig_system_t *sys = bench_system();
	ig_ref_t waiter = bench_waiter_spawn(sys);
	double secs[reps];
	/* spawn args must outlive their actors */
	struct mall_arg *malls = calloc((size_t)reps, sizeof *malls);
	struct cham_arg *chargs = calloc((size_t)reps * (size_t)c, sizeof *chargs);
	ig_ref_t *chams = malloc(sizeof *chams * (size_t)c);
	for (int r = 0; r < reps; r++) {
		ig_ref_t mall;
		malls[r] = (struct mall_arg){.main = waiter, .c = c, .n = n};
		CHECK(ig_system_spawn(sys, &mall_props, NULL, &malls[r], &mall));
		for (int i = 0; i < c; i++) {
			struct cham_arg *ca = &chargs[(size_t)r * (size_t)c + (size_t)i];
			*ca = (struct cham_arg){.mall = mall, .color = i % 3};
			CHECK(ig_system_spawn(sys, &cham_props, NULL, ca, &chams[i]));
		}
		double t0 = bench_now();
		for (int i = 0; i < c; i++)
			CHECK(ig_tell(chams[i], M_START, NULL, 0, IG_NOREF));
		bench_wait(sys, waiter);
		secs[r] = bench_now() - t0;
		ig_stop(mall);
	}
	bench_report("chameneos", 4.0 * n / bench_median(secs, reps), "msgs/s");
	ig_system_destroy(sys);
	free(chams);
	free(chargs);
	free(malls);
	return 0;
}
