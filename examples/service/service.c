/* examples/service: a tiny service that embeds libingot-runtime.
 *
 * It is built outside the source tree, against an installed copy, with
 * nothing but pkg-config (see Makefile):
 *
 *   cc service.c $(pkg-config --cflags --libs ingot-runtime)
 *
 * A hit-counter actor, found by its path, counts hits per page; the program
 * sends it HITS hits from the main thread, asks it for each page's total,
 * checks them, and shuts the system down. Exit status 0 means it all worked.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <ingot/runtime.h>

#define PAGES 4
#define HITS 1000

enum {
	MSG_HIT = 1, /* payload: uint32_t page */
	MSG_GET,     /* payload: uint32_t page; replied to with MSG_TOTAL */
	MSG_TOTAL,   /* payload: uint64_t hits */
};

typedef struct counter {
	uint64_t hits[PAGES];
} counter_t;

static int counter_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	counter_t *c = state;
	uint32_t page;

	if (msg->size != sizeof page)
		return 0; /* not ours: ignore */
	memcpy(&page, msg->data, sizeof page);
	if (page >= PAGES)
		return 0;
	switch (msg->type) {
	case MSG_HIT:
		c->hits[page]++;
		return 0;
	case MSG_GET:
		return ig_reply(ctx, msg, MSG_TOTAL, &c->hits[page], sizeof c->hits[page]);
	default:
		return 0;
	}
}

static const ig_props_t counter_props = {
	.behavior = counter_behavior,
	.state_size = sizeof(counter_t),
};

static int total(ig_system_t *sys, ig_ref_t counter, uint32_t page, uint64_t *out)
{
	ig_future_t *f;
	const ig_msg_t *reply;
	int err = ig_ask(sys, counter, MSG_GET, &page, sizeof page, IG_SEC(5), &f);
	if (err)
		return err;
	err = ig_future_wait(f, IG_SEC(5), &reply);
	if (err == 0 && (reply->type != MSG_TOTAL || reply->size != sizeof *out))
		err = IG_EINVAL;
	if (err == 0)
		memcpy(out, reply->data, sizeof *out);
	ig_future_free(f);
	return err;
}

int main(void)
{
	ig_system_t *sys;
	ig_ref_t counter, found;
	int err;

	if ((err = ig_system_create(NULL, &sys)) != 0) {
		fprintf(stderr, "service: ig_system_create: %s\n", ig_strerror(err));
		return 1;
	}
	int rc = 1;
	if ((err = ig_system_spawn(sys, &counter_props, "counter", NULL, &counter)) != 0) {
		fprintf(stderr, "service: spawn: %s\n", ig_strerror(err));
		goto out;
	}
	if ((err = ig_lookup(sys, "/user/counter", &found)) != 0 || !ig_ref_eq(found, counter)) {
		fprintf(stderr, "service: lookup /user/counter: %s\n", ig_strerror(err));
		goto out;
	}
	for (uint32_t i = 0; i < HITS; i++) {
		uint32_t page = i % PAGES;
		if ((err = ig_tell(found, MSG_HIT, &page, sizeof page, IG_NOREF)) != 0) {
			fprintf(stderr, "service: tell: %s\n", ig_strerror(err));
			goto out;
		}
	}
	uint64_t sum = 0;
	for (uint32_t page = 0; page < PAGES; page++) {
		uint64_t n;
		if ((err = total(sys, counter, page, &n)) != 0) {
			fprintf(stderr, "service: ask page %u: %s\n", page, ig_strerror(err));
			goto out;
		}
		printf("service: page %u: %" PRIu64 " hits\n", page, n);
		sum += n;
	}
	if (sum != HITS) {
		fprintf(stderr, "service: counted %" PRIu64 " hits, sent %d\n", sum, HITS);
		goto out;
	}
	if ((err = ig_system_shutdown(sys, IG_SEC(5))) != 0) {
		fprintf(stderr, "service: shutdown: %s\n", ig_strerror(err));
		goto out;
	}
	printf("service: ok, %d hits counted by one actor\n", HITS);
	rc = 0;
out:
	ig_system_destroy(sys);
	return rc;
}
