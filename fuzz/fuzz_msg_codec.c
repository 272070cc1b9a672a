/* libFuzzer target for the runtime's msgpack envelope codec
 * (ig_msg_decode on untrusted bytes, runtime/codec.c).
 *
 * Every input is decoded. A refusal must be IG_ECORRUPT with an offset
 * inside the input (or IG_ENOMEM). An accepted input is encoded again and
 * that encoding decoded: the fields must survive, and encoding the result
 * once more must give the same bytes (the encoder's output is canonical).
 * A system with one named actor lets sender paths resolve, so lookups are
 * fuzzed too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/runtime.h>

static ig_system_t *sys;

#define CHECK(e)                                                                   \
	do {                                                                       \
		if (!(e)) {                                                        \
			fprintf(stderr, "fuzz_msg_codec: check failed: %s (%s:%d)\n", \
				#e, __FILE__, __LINE__);                           \
			abort();                                                   \
		}                                                                  \
	} while (0)

static int idle_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
	return 0;
}

static const ig_props_t idle_props = {.behavior = idle_behavior};

static void destroy_system(void)
{
	ig_system_destroy(sys);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ig_system_config_t cfg = {.name = "fuzz", .threads = 1, .log_level = IG_LOG_OFF};
	ig_ref_t r;
	CHECK(ig_system_create(&cfg, &sys) == 0);
	/* "/user/s" resolves; the seeds use it */
	CHECK(ig_system_spawn(sys, &idle_props, "s", NULL, &r) == 0);
	atexit(destroy_system);
	return 0;
}

typedef struct fields {
	uint32_t type;
	void *payload;
	size_t len;
	ig_ref_t sender;
} fields_t;

static int decode(const void *buf, size_t len, fields_t *f, size_t *off)
{
	return ig_msg_decode(sys, buf, len, &f->type, &f->payload, &f->len, &f->sender, off);
}

static void encode(const fields_t *f, void **out, size_t *out_len)
{
	ig_msg_t msg = {.type = f->type, .size = (uint32_t)f->len, .sender = f->sender,
			.data = f->payload};
	CHECK(ig_msg_encode(sys, &msg, out, out_len) == 0);
}

static void check_round_trip(const fields_t *a)
{
	void *enc1, *enc2;
	size_t len1, len2, off = 0;
	fields_t b;
	encode(a, &enc1, &len1);
	CHECK(decode(enc1, len1, &b, &off) == 0);
	CHECK(b.type == a->type);
	CHECK(b.len == a->len);
	CHECK((b.payload == NULL) == (a->len == 0));
	CHECK(a->len == 0 || memcmp(a->payload, b.payload, a->len) == 0);
	/* the actor stays alive, so a resolved sender resolves again */
	CHECK(ig_ref_eq(a->sender, b.sender));
	encode(&b, &enc2, &len2);
	CHECK(len1 == len2 && memcmp(enc1, enc2, len1) == 0);
	free(b.payload);
	free(enc1);
	free(enc2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fields_t f;
	size_t off = (size_t)-1;
	int rc = decode(data, size, &f, &off);
	if (rc == 0) {
		check_round_trip(&f);
		free(f.payload);
		return 0;
	}
	CHECK(rc == IG_ECORRUPT || rc == IG_ENOMEM);
	CHECK(rc != IG_ECORRUPT || off <= size);
	return 0;
}
