/* ingot-demo: a small supervised pipeline whose acks are its backpressure.
 *
 * Until the database exists, this is what `bash scripts/demo.sh` shows: the
 * same shape the ingest pipeline will have (DESIGN.md, "actors/: the
 * pipeline and its acks"), with four actors and nothing else.
 *
 *   /user/source --record--> /user/supervisor/worker --result--> /user/sink
 *        ^                                                           |
 *        +---------------------------- ack(seq) ---------------------+
 *
 * - The source emits numbered records while fewer than WATERMARK are unacked.
 * - The worker squares each record's value. It fails (returns an error) on
 *   the first delivery of every FAIL_EVERY-th record; its supervisor
 *   restarts it: one-for-one, at most MAX_RESTARTS restarts within 1 s.
 * - The sink accepts records in sequence order only and acks the highest
 *   sequence number it has accepted (a cumulative ack). A record lost to a
 *   failure leaves a gap: the acks stop moving, the source notices on its
 *   periodic timer, rewinds to the last acked record and replays.
 *
 * So every record lands exactly once in the sink's sum, however many times
 * it was sent. The program exits 0 when that checks out.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <ingot/runtime.h>

#define RECORDS 200            /* records the source emits, seq 1..RECORDS */
#define WATERMARK 16           /* at most this many sent but unacked */
#define FAIL_EVERY 60          /* the worker fails on these, first time only */
#define MAX_RESTARTS 3         /* the supervisor's limit within 1 s */
#define ACK_TIMEOUT IG_MS(100) /* no ack progress for this long: rewind */
#define REPORT_EVERY 50        /* progress line every this many acks */

/* Message types: anything below IG_MSG_SYSTEM_BASE is ours. */
enum {
	MSG_RUN = 1,      /* main -> source: start; replied to with MSG_DONE */
	MSG_RECORD,       /* source -> worker: record_t */
	MSG_RESULT,       /* worker -> sink, sent on behalf of the source: record_t */
	MSG_ACK,          /* sink -> source: ack_t */
	MSG_TICK,         /* source's periodic timer */
	MSG_SPAWN_WORKER, /* main -> supervisor; replied to with MSG_WORKER */
	MSG_WORKER,       /* the worker's ig_ref_t */
	MSG_DONE,         /* source -> main: source_report_t */
	MSG_GET_REPORT,   /* main -> sink; replied to with MSG_SINK_REPORT */
	MSG_SINK_REPORT,  /* sink_report_t */
};

typedef struct record {
	uint64_t seq;   /* 1..RECORDS */
	uint64_t value; /* the payload: seq at the source, seq^2 after the worker */
	bool replay;    /* sent before: the source rewound past it */
} record_t;

typedef struct ack {
	uint64_t seq; /* every record up to and including seq is in the sink */
} ack_t;

typedef struct source_report {
	uint64_t acked;   /* highest acked seq */
	uint64_t sent;    /* records sent, replays included */
	uint64_t replays; /* records sent again after a rewind */
	uint64_t rewinds;
	int64_t elapsed;  /* ns from MSG_RUN to the last ack */
	int err;          /* 0, or why the source gave up */
} source_report_t;

typedef struct sink_report {
	uint64_t accepted;  /* records added to the sum, in order */
	uint64_t discarded; /* duplicates and records past a gap */
	uint64_t sum;       /* sum of the accepted values */
} sink_report_t;

/* What main shares with the actors: passed as every actor's spawn arg, so
 * it lives on main's stack until the system has shut down. */
typedef struct demo {
	ig_ref_t sink;                 /* set before the worker is spawned */
	ig_ref_t worker;               /* set before the source is spawned */
	atomic_uint restarts;          /* worker restarts, counted by the worker */
} demo_t;

/* ---- sink ------------------------------------------------------------------ */

typedef struct sink {
	uint64_t next; /* the seq it accepts next */
	sink_report_t report;
} sink_t;

static int sink_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	(void)arg;
	sink_t *s = state;
	s->next = 1;
	return 0;
}

static int sink_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	sink_t *s = state;

	switch (msg->type) {
	case MSG_RESULT: {
		record_t r;
		memcpy(&r, msg->data, sizeof r);
		if (r.seq == s->next) {
			s->report.sum += r.value;
			s->report.accepted++;
			s->next++;
		} else {
			s->report.discarded++; /* a duplicate, or past a gap */
		}
		/* The worker sent this on the source's behalf, so the reply
		 * (the ack) goes straight back to the source. */
		ack_t a = {.seq = s->next - 1};
		return ig_reply(ctx, msg, MSG_ACK, &a, sizeof a);
	}
	case MSG_GET_REPORT:
		return ig_reply(ctx, msg, MSG_SINK_REPORT, &s->report, sizeof s->report);
	default:
		return 0;
	}
}

static const ig_props_t sink_props = {
	.behavior = sink_behavior,
	.state_size = sizeof(sink_t),
	.init = sink_init,
};

/* ---- worker ------------------------------------------------------------------ */

typedef struct worker {
	demo_t *demo;
	uint64_t handled; /* since the last (re)start: fresh state shows here */
} worker_t;

static int worker_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	worker_t *w = state;
	w->demo = arg;
	return 0;
}

static int worker_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	worker_t *w = state;

	if (msg->type != MSG_RECORD)
		return 0;
	record_t r;
	memcpy(&r, msg->data, sizeof r);
	if (r.seq % FAIL_EVERY == 0 && !r.replay) {
		printf("worker:     record %" PRIu64 " hits a (deliberate) fault after %" PRIu64
		       " good records: failing\n", r.seq, w->handled);
		return IG_ECORRUPT; /* the supervisor's decider sees this code */
	}
	w->handled++;
	r.value = r.seq * r.seq;
	/* Sent with the source as sender: the sink acks to it directly. */
	return ig_tell(w->demo->sink, MSG_RESULT, &r, sizeof r, msg->sender);
}

static void worker_post_restart(ig_ctx_t *ctx, void *state, int err)
{
	(void)ctx;
	(void)err;
	worker_t *w = state; /* fresh: init ran again with the same arg */
	unsigned n = atomic_fetch_add(&w->demo->restarts, 1) + 1;
	printf("worker:     restarted with fresh state (restart %u; the limit is %u within 1 s)\n",
	       n, MAX_RESTARTS);
}

static const ig_props_t worker_props = {
	.behavior = worker_behavior,
	.state_size = sizeof(worker_t),
	.init = worker_init,
	.post_restart = worker_post_restart,
};

/* ---- supervisor -------------------------------------------------------------- */

static ig_directive_t supervisor_decide(int err, void *arg)
{
	(void)arg;
	printf("supervisor: worker failed (%s): restart it\n", ig_strerror(err));
	return IG_RESTART;
}

static const ig_supervisor_t worker_supervision = {
	.all_for_one = false,
	.decider = supervisor_decide,
	.max_restarts = MAX_RESTARTS,
	.within = IG_SEC(1),
};

typedef struct supervisor {
	demo_t *demo;
} supervisor_t;

static int supervisor_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	supervisor_t *s = state;
	s->demo = arg;
	return 0;
}

static int supervisor_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	supervisor_t *s = state;

	if (msg->type != MSG_SPAWN_WORKER)
		return 0;
	ig_ref_t worker;
	int err = ig_spawn(ctx, &worker_props, "worker", s->demo, &worker);
	if (err)
		return err;
	return ig_reply(ctx, msg, MSG_WORKER, &worker, sizeof worker);
}

static const ig_props_t supervisor_props = {
	.behavior = supervisor_behavior,
	.state_size = sizeof(supervisor_t),
	.init = supervisor_init,
	.supervisor = &worker_supervision, /* applies to its children */
};

/* ---- source -------------------------------------------------------------------- */

typedef struct source {
	const demo_t *demo;
	ig_ref_t client;     /* who sent MSG_RUN; gets MSG_DONE */
	uint64_t next;       /* seq to send next */
	uint64_t acked;      /* highest seq the sink acked */
	uint64_t max_sent;   /* highest seq ever sent */
	uint64_t acked_at_tick; /* acked at the previous tick */
	uint64_t next_report;
	int64_t started;
	ig_timer_t tick;     /* the periodic ack check */
	bool done;
	source_report_t report;
} source_t;

static int source_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	source_t *s = state;
	s->demo = arg;
	s->next = 1;
	s->next_report = REPORT_EVERY;
	return 0;
}

static void source_finish(ig_ctx_t *ctx, source_t *s, int err)
{
	if (s->done)
		return;
	s->done = true;
	ig_unwatch(ctx, s->demo->worker); /* its Terminated would be a dead letter */
	s->report.acked = s->acked;
	s->report.elapsed = ig_system_now(ig_ctx_system(ctx)) - s->started;
	s->report.err = err;
	ig_tell(s->client, MSG_DONE, &s->report, sizeof s->report, ig_self(ctx));
}

/* Sends records while the unacked window is below the watermark. */
static void source_pump(ig_ctx_t *ctx, source_t *s)
{
	while (!s->done && s->next <= RECORDS && (s->next - 1) - s->acked < WATERMARK) {
		record_t r = {.seq = s->next, .value = s->next, .replay = s->next <= s->max_sent};
		int err = ig_tell(s->demo->worker, MSG_RECORD, &r, sizeof r, ig_self(ctx));
		if (err) {
			printf("source:     cannot send record %" PRIu64 " (%s): giving up\n",
			       r.seq, ig_strerror(err));
			source_finish(ctx, s, err);
			return;
		}
		s->report.sent++;
		if (r.replay)
			s->report.replays++;
		if (s->next > s->max_sent)
			s->max_sent = s->next;
		s->next++;
	}
}

static int source_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	source_t *s = state;

	switch (msg->type) {
	case MSG_RUN: {
		s->client = msg->sender;
		s->started = ig_system_now(ig_ctx_system(ctx));
		int err = ig_watch(ctx, s->demo->worker);
		if (err == 0)
			err = ig_timer_start(ctx, ACK_TIMEOUT, true, MSG_TICK, NULL, 0, &s->tick);
		if (err) {
			source_finish(ctx, s, err);
			return 0;
		}
		source_pump(ctx, s);
		return 0;
	}
	case MSG_ACK: {
		ack_t a;
		memcpy(&a, msg->data, sizeof a);
		if (a.seq <= s->acked)
			return 0; /* a duplicate ack: nothing new */
		s->acked = a.seq;
		if (s->next <= s->acked)
			s->next = s->acked + 1; /* acks overtook a rewind */
		if (s->acked == RECORDS) {
			source_finish(ctx, s, 0);
			return 0;
		}
		source_pump(ctx, s);
		if (s->acked >= s->next_report) {
			printf("source:     %3" PRIu64 "/%d acked, %2" PRIu64 " in flight, %3" PRIu64
			       " sent (%" PRIu64 " replays)\n", s->acked, RECORDS,
			       (s->next - 1) - s->acked, s->report.sent, s->report.replays);
			while (s->next_report <= s->acked)
				s->next_report += REPORT_EVERY;
		}
		return 0;
	}
	case MSG_TICK:
		if (!s->done && s->acked == s->acked_at_tick && s->next - 1 > s->acked) {
			printf("source:     no ack past record %" PRIu64 " for %d ms: rewinding,"
			       " replaying from record %" PRIu64 "\n", s->acked,
			       (int)(ACK_TIMEOUT / IG_MS(1)), s->acked + 1);
			s->report.rewinds++;
			s->next = s->acked + 1;
			source_pump(ctx, s);
		}
		s->acked_at_tick = s->acked;
		return 0;
	case IG_MSG_TERMINATED:
		/* The worker is gone for good: the supervisor ran out of restarts. */
		if (!s->done) {
			printf("source:     the worker has stopped: giving up\n");
			source_finish(ctx, s, IG_ENOACTOR);
		}
		return 0;
	default:
		return 0;
	}
}

static const ig_props_t source_props = {
	.behavior = source_behavior,
	.state_size = sizeof(source_t),
	.init = source_init,
};

/* ---- dead letters ------------------------------------------------------------------ */

/* Subscribed to IG_MSG_DEAD_LETTER on the event stream: prints each one. */
static int dead_letters_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	if (msg->type != IG_MSG_DEAD_LETTER || msg->size != sizeof(ig_dead_letter_t))
		return 0;
	ig_dead_letter_t d;
	memcpy(&d, msg->data, sizeof d);
	char to[128];
	if (ig_ref_path(d.recipient, to, sizeof to) != 0)
		strcpy(to, "a stopped actor");
	printf("dead letter: message type %" PRIu32 " to %s (%s)\n", d.type, to,
	       ig_strerror(d.reason));
	return 0;
}

static const ig_props_t dead_letters_props = {
	.behavior = dead_letters_behavior,
};

/* ---- main ---------------------------------------------------------------------- */

/* Asks `to` and copies the reply's payload (exactly size bytes) to out. */
static int ask_copy(ig_system_t *sys, ig_ref_t to, uint32_t type, ig_duration_t timeout,
		    uint32_t reply_type, void *out, size_t size)
{
	ig_future_t *f;
	const ig_msg_t *reply;
	int err = ig_ask(sys, to, type, NULL, 0, timeout, &f);
	if (err)
		return err;
	err = ig_future_wait(f, timeout, &reply);
	if (err == 0) {
		if (reply->type == reply_type && reply->size == size)
			memcpy(out, reply->data, size);
		else
			err = IG_EINVAL;
	}
	ig_future_free(f);
	return err;
}

static void print_path(const char *what, ig_ref_t ref)
{
	char path[128];
	if (ig_ref_path(ref, path, sizeof path) != 0)
		strcpy(path, "?");
	printf("  %-11s %s\n", what, path);
}

#define CHECK(call)                                                              \
	do {                                                                     \
		int err_ = (call);                                               \
		if (err_ != 0) {                                                 \
			fprintf(stderr, "ingot-demo: %s: %s\n", #call, ig_strerror(err_)); \
			goto out;                                                \
		}                                                                \
	} while (0)

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* lines appear as they happen, piped too */

	ig_system_t *sys = NULL;
	demo_t demo = {0};
	atomic_init(&demo.restarts, 0);
	ig_ref_t supervisor, source;
	source_report_t src = {0};
	sink_report_t snk = {0};
	bool ok = false;

	ig_system_config_t cfg = {.name = "demo", .log_level = IG_LOG_WARN};
	CHECK(ig_system_create(&cfg, &sys));

	printf("ingot demo: a supervised actor pipeline whose acks are its backpressure\n\n");
	ig_ref_t dead_letters;
	CHECK(ig_system_spawn(sys, &dead_letters_props, "dead-letters", NULL, &dead_letters));
	CHECK(ig_subscribe(sys, dead_letters, IG_MSG_DEAD_LETTER));
	CHECK(ig_system_spawn(sys, &sink_props, "sink", &demo, &demo.sink));
	CHECK(ig_system_spawn(sys, &supervisor_props, "supervisor", &demo, &supervisor));
	CHECK(ask_copy(sys, supervisor, MSG_SPAWN_WORKER, IG_SEC(5), MSG_WORKER, &demo.worker,
		       sizeof demo.worker));
	CHECK(ig_system_spawn(sys, &source_props, "source", &demo, &source));
	print_path("source:", source);
	print_path("worker:", demo.worker);
	print_path("sink:", demo.sink);
	printf("\n  The source sends %d records and keeps at most %d of them unacked.\n"
	       "  The worker fails on the first delivery of every %dth record; its supervisor\n"
	       "  restarts it (one-for-one, at most %d restarts within 1 s). The sink acks\n"
	       "  in order only, so after a failure the acks stall until the source, on its\n"
	       "  %d ms timer, rewinds to the last acked record and replays.\n\n",
	       RECORDS, WATERMARK, FAIL_EVERY, MAX_RESTARTS, (int)(ACK_TIMEOUT / IG_MS(1)));

	CHECK(ask_copy(sys, source, MSG_RUN, IG_SEC(30), MSG_DONE, &src, sizeof src));
	CHECK(ask_copy(sys, demo.sink, MSG_GET_REPORT, IG_SEC(5), MSG_SINK_REPORT, &snk,
		       sizeof snk));
	CHECK(ig_system_shutdown(sys, IG_SEC(5)));

	const uint64_t expected = (uint64_t)RECORDS * (RECORDS + 1) * (2 * RECORDS + 1) / 6;
	ok = src.err == 0 && snk.accepted == RECORDS && snk.sum == expected;
	printf("\nsummary\n");
	printf("  records in the sink:  %" PRIu64 " of %d, each once, in order\n", snk.accepted,
	       RECORDS);
	printf("  sum of squares:       %" PRIu64 " (expected %" PRIu64 ")\n", snk.sum, expected);
	printf("  records sent:         %" PRIu64 " (%" PRIu64 " replayed after %" PRIu64
	       " rewinds)\n", src.sent, src.replays, src.rewinds);
	printf("  discarded by sink:    %" PRIu64 " (duplicates, or past a gap)\n", snk.discarded);
	printf("  worker restarts:      %u\n", atomic_load(&demo.restarts));
	printf("  dead letters:         %" PRIu64 "\n", ig_system_dead_letters(sys));
	printf("  time:                 %.3f s\n", (double)src.elapsed / 1e9);
	printf("\n%s\n", ok ? "ok: every record landed exactly once"
			    : "FAILED: the pipeline lost or duplicated records");
out:
	if (sys)
		ig_system_destroy(sys);
	return ok ? 0 : 1;
}
