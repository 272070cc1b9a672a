/* Tests of the msgpack envelope codec (runtime/codec.c): round trips, the
 * exact bytes of the format (docs/formats.md), and the refusal of every
 * malformed input with IG_ECORRUPT and the offset where decoding stopped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ingot/runtime.h>

#define PAYLOAD_MAX ((size_t)64 << 20)

static ig_system_t *sys;

static int noop_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
	return 0;
}

static const ig_props_t noop_props = {.behavior = noop_behavior};

static int setup(void **unused)
{
	(void)unused;
	ig_system_config_t cfg = {.name = "codec", .threads = 1};
	return ig_system_create(&cfg, &sys);
}

static int teardown(void **unused)
{
	(void)unused;
	ig_system_destroy(sys);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

/* What a decode wrote; sentinels show which out-params it touched. */
typedef struct decoded {
	int rc;
	uint32_t type;
	void *payload;
	size_t len;
	ig_ref_t sender;
	size_t off;
} decoded_t;

#define SENTINEL_TYPE 0xdeadbeefu
#define SENTINEL_LEN ((size_t)0x5a5a)
#define SENTINEL_OFF ((size_t)-1)
static char sentinel_byte;

static decoded_t decode(const void *buf, size_t len)
{
	decoded_t d = {.type = SENTINEL_TYPE,
		       .payload = &sentinel_byte,
		       .len = SENTINEL_LEN,
		       .sender = {0x77},
		       .off = SENTINEL_OFF};
	d.rc = ig_msg_decode(sys, buf, len, &d.type, &d.payload, &d.len, &d.sender, &d.off);
	return d;
}

/* Asserts a clean refusal at offset `at`: no out-param but the offset. */
static void assert_corrupt_at(const void *buf, size_t len, size_t at)
{
	decoded_t d = decode(buf, len);
	assert_int_equal(d.rc, IG_ECORRUPT);
	assert_int_equal(d.off, at);
	assert_int_equal(d.type, SENTINEL_TYPE);
	assert_ptr_equal(d.payload, &sentinel_byte);
	assert_int_equal(d.len, SENTINEL_LEN);
	assert_int_equal(d.sender.h, 0x77);
}

static void encode(const ig_msg_t *msg, unsigned char **out, size_t *len)
{
	void *p = NULL;
	assert_int_equal(ig_msg_encode(sys, msg, &p, len), 0);
	assert_non_null(p);
	*out = p;
}

/* Encodes, decodes and checks that the three fields came back. */
static void round_trip(uint32_t type, const void *data, size_t size, ig_ref_t sender,
		       ig_ref_t expect_sender)
{
	ig_msg_t msg = {.type = type, .size = (uint32_t)size, .sender = sender, .data = data};
	unsigned char *buf;
	size_t len;
	encode(&msg, &buf, &len);
	decoded_t d = decode(buf, len);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.type, type);
	assert_int_equal(d.len, size);
	if (size) {
		assert_non_null(d.payload);
		assert_memory_equal(d.payload, data, size);
	} else {
		assert_null(d.payload);
	}
	assert_int_equal(d.sender.h, expect_sender.h);
	free(d.payload);
	free(buf);
}

static ig_ref_t spawn_named(const char *name)
{
	ig_ref_t r;
	assert_int_equal(ig_system_spawn(sys, &noop_props, name, NULL, &r), 0);
	return r;
}

/* ---- round trips --------------------------------------------------------------- */

static void test_round_trip_inline(void **unused)
{
	(void)unused;
	const char hello[] = "hello, envelope";
	round_trip(42, hello, sizeof hello, IG_NOREF, IG_NOREF);
	round_trip(0, "x", 1, IG_NOREF, IG_NOREF);
	round_trip(UINT32_MAX, "y", 1, IG_NOREF, IG_NOREF);
	unsigned char inl[IG_MSG_INLINE_MAX];
	for (size_t i = 0; i < sizeof inl; i++)
		inl[i] = (unsigned char)(i * 7);
	round_trip(127, inl, sizeof inl, IG_NOREF, IG_NOREF);
	round_trip(128, inl, sizeof inl, IG_NOREF, IG_NOREF);
	round_trip(65536, inl, sizeof inl, IG_NOREF, IG_NOREF);
}

static void test_round_trip_empty(void **unused)
{
	(void)unused;
	round_trip(7, NULL, 0, IG_NOREF, IG_NOREF);
	ig_ref_t a = spawn_named("empty-sender");
	round_trip(8, NULL, 0, a, a);
	ig_stop(a);
}

static void test_round_trip_large(void **unused)
{
	(void)unused;
	/* The bin8/bin16/bin32 boundaries, 1 MiB, and the 64 MiB limit itself. */
	size_t sizes[] = {255, 256, 65535, 65536, 1u << 20, PAYLOAD_MAX};
	unsigned char *big = malloc(PAYLOAD_MAX);
	assert_non_null(big);
	for (size_t i = 0; i < PAYLOAD_MAX; i += 4096)
		big[i] = (unsigned char)(i >> 12);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		round_trip(9, big, sizes[i], IG_NOREF, IG_NOREF);
	free(big);
}

static void test_round_trip_sender(void **unused)
{
	(void)unused;
	ig_ref_t named = spawn_named("codec-sender");
	ig_ref_t anon;
	assert_int_equal(ig_system_spawn(sys, &noop_props, NULL, NULL, &anon), 0);
	round_trip(1, "abc", 3, named, named);
	round_trip(2, "abc", 3, anon, anon);
	/* A name that makes the path longer than a fixstr (str8). */
	char name[64];
	memset(name, 'n', 63);
	name[63] = '\0';
	ig_ref_t longname = spawn_named(name);
	round_trip(3, "abc", 3, longname, longname);
	ig_stop(named);
	ig_stop(anon);
	ig_stop(longname);
}

/* A sender that is gone by encode time is written as nil. */
static void test_dead_sender_is_nil(void **unused)
{
	(void)unused;
	ig_ref_t dead = {((uint64_t)0xfffffe << 40) | 12345}; /* a slot never used */
	round_trip(5, "z", 1, dead, IG_NOREF);
}

/* The bytes are the ones docs/formats.md describes. */
static void test_exact_bytes(void **unused)
{
	(void)unused;
	ig_msg_t msg = {.type = 300, .size = 2, .data = "\x01\x02"};
	unsigned char *buf;
	size_t len;
	encode(&msg, &buf, &len);
	const unsigned char want[] = {0x94, 0x01, 0xcd, 0x01, 0x2c, 0xc0, 0xc4, 0x02, 0x01, 0x02};
	assert_int_equal(len, sizeof want);
	assert_memory_equal(buf, want, sizeof want);
	free(buf);

	ig_ref_t a = spawn_named("b");
	msg = (ig_msg_t){.type = 5, .sender = a};
	encode(&msg, &buf, &len);
	const unsigned char want2[] = {0x94, 0x01, 0x05, 0xa7, '/', 'u', 's', 'e', 'r', '/', 'b',
				       0xc4, 0x00};
	assert_int_equal(len, sizeof want2);
	assert_memory_equal(buf, want2, sizeof want2);
	free(buf);
	ig_stop(a);
}

/* Valid msgpack that is not the smallest encoding is still accepted. */
static void test_non_canonical_accepted(void **unused)
{
	(void)unused;
	const unsigned char in[] = {0xdc, 0x00, 0x04,             /* array16 of 4 */
				    0xce, 0x00, 0x00, 0x00, 0x01, /* version as uint32 */
				    0xd0, 0x05,                   /* type 5 as int8 */
				    0xd9, 0x02, '/', 'q',         /* path as str8 */
				    0xc6, 0x00, 0x00, 0x00, 0x01, 0xab};
	decoded_t d = decode(in, sizeof in);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.type, 5);
	assert_int_equal(d.len, 1);
	assert_int_equal(((unsigned char *)d.payload)[0], 0xab);
	assert_true(ig_ref_is_none(d.sender)); /* "/q" names no actor */
	free(d.payload);
}

static void test_bad_arguments(void **unused)
{
	(void)unused;
	void *p;
	size_t n;
	uint32_t t;
	ig_msg_t msg = {.type = 1, .size = 4, .data = NULL};
	assert_int_equal(ig_msg_encode(sys, &msg, &p, &n), IG_EINVAL);
	assert_int_equal(ig_msg_encode(sys, NULL, &p, &n), IG_EINVAL);
	msg = (ig_msg_t){.type = 1, .size = (uint32_t)PAYLOAD_MAX + 1, .data = "x"};
	assert_int_equal(ig_msg_encode(sys, &msg, &p, &n), IG_ERANGE);
	assert_int_equal(ig_msg_decode(sys, NULL, 3, &t, &p, &n, NULL, NULL), IG_EINVAL);
	assert_int_equal(ig_msg_decode(sys, "x", 1, NULL, &p, &n, NULL, NULL), IG_EINVAL);
	/* err_offset and sender may be NULL */
	assert_int_equal(ig_msg_decode(sys, "x", 1, &t, &p, &n, NULL, NULL), IG_ECORRUPT);
}

/* ---- refusals --------------------------------------------------------------------- */

static void test_truncated_every_length(void **unused)
{
	(void)unused;
	ig_ref_t a = spawn_named("truncation-sender");
	unsigned char payload[300];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (unsigned char)i;
	ig_msg_t msg = {.type = 70000, .size = sizeof payload, .sender = a, .data = payload};
	unsigned char *buf;
	size_t len;
	encode(&msg, &buf, &len);
	/* Item starts: array 0, version 1, type 2 (uint32), path 7, payload 8+plen. */
	size_t path_at = 7, pay_at = 7 + 1 + strlen("/user/truncation-sender");
	for (size_t l = 0; l < len; l++) {
		/* an exact-size copy, so ASan sees any read past the end */
		unsigned char *cut = malloc(l ? l : 1);
		assert_non_null(cut);
		memcpy(cut, buf, l);
		size_t at = l == 0 ? 0 : l < 2 ? 1 : l < path_at ? 2 : l < pay_at ? path_at : pay_at;
		assert_corrupt_at(cut, l, at);
		free(cut);
	}
	decoded_t d = decode(buf, len);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.sender.h, a.h);
	free(d.payload);
	free(buf);
	ig_stop(a);
}

static void test_wrong_version(void **unused)
{
	(void)unused;
	const unsigned char v0[] = {0x94, 0x00, 0x01, 0xc0, 0xc4, 0x00};
	const unsigned char v2[] = {0x94, 0x02, 0x01, 0xc0, 0xc4, 0x00};
	const unsigned char vneg[] = {0x94, 0xff, 0x01, 0xc0, 0xc4, 0x00};
	const unsigned char vstr[] = {0x94, 0xa1, '1', 0x01, 0xc0, 0xc4, 0x00};
	const unsigned char vbig[] = {0x94, 0xcf, 0, 0, 0, 1, 0, 0, 0, 1, 0x01, 0xc0, 0xc4, 0x00};
	/* A future version with more items is refused at its version. */
	const unsigned char v2five[] = {0x95, 0x02, 0x01, 0xc0, 0xc4, 0x00, 0xc0};
	assert_corrupt_at(v0, sizeof v0, 1);
	assert_corrupt_at(v2, sizeof v2, 1);
	assert_corrupt_at(vneg, sizeof vneg, 1);
	assert_corrupt_at(vstr, sizeof vstr, 1);
	assert_corrupt_at(vbig, sizeof vbig, 1);
	assert_corrupt_at(v2five, sizeof v2five, 1);
}

static void test_wrong_types(void **unused)
{
	(void)unused;
	/* not an array */
	const unsigned char map[] = {0x84, 0x01, 0x01, 0x01, 0x01};
	const unsigned char nil[] = {0xc0};
	/* arrays of the wrong length */
	const unsigned char three[] = {0x93, 0x01, 0x01, 0xc0};
	const unsigned char five[] = {0x95, 0x01, 0x01, 0xc0, 0xc4, 0x00, 0xc0};
	const unsigned char empty[] = {0x90};
	/* type: a str, negative, beyond 32 bits, a float */
	const unsigned char tstr[] = {0x94, 0x01, 0xa1, 'x', 0xc0, 0xc4, 0x00};
	const unsigned char tneg[] = {0x94, 0x01, 0xd0, 0x80, 0xc0, 0xc4, 0x00};
	const unsigned char tbig[] = {0x94, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 0xc4, 0x00};
	const unsigned char tflt[] = {0x94, 0x01, 0xca, 0, 0, 0, 0, 0xc0, 0xc4, 0x00};
	/* sender: an int, a bin, an empty or relative path, a NUL inside */
	const unsigned char sint[] = {0x94, 0x01, 0x01, 0x05, 0xc4, 0x00};
	const unsigned char sbin[] = {0x94, 0x01, 0x01, 0xc4, 0x01, '/', 0xc4, 0x00};
	const unsigned char sempty[] = {0x94, 0x01, 0x01, 0xa0, 0xc4, 0x00};
	const unsigned char srel[] = {0x94, 0x01, 0x01, 0xa4, 'u', 's', 'e', 'r', 0xc4, 0x00};
	const unsigned char snul[] = {0x94, 0x01, 0x01, 0xa6, '/', 'u', 's', 0, 'r', 'x', 0xc4, 0x00};
	/* payload: a str, nil, an array */
	const unsigned char pstr[] = {0x94, 0x01, 0x01, 0xc0, 0xa1, 'x'};
	const unsigned char pnil[] = {0x94, 0x01, 0x01, 0xc0, 0xc0};
	const unsigned char parr[] = {0x94, 0x01, 0x01, 0xc0, 0x91, 0x01};
	/* a valid envelope followed by a stray byte */
	const unsigned char trail[] = {0x94, 0x01, 0x01, 0xc0, 0xc4, 0x00, 0x00};
	assert_corrupt_at(map, sizeof map, 0);
	assert_corrupt_at(nil, sizeof nil, 0);
	assert_corrupt_at(three, sizeof three, 0);
	assert_corrupt_at(five, sizeof five, 0);
	assert_corrupt_at(empty, sizeof empty, 0);
	assert_corrupt_at(tstr, sizeof tstr, 2);
	assert_corrupt_at(tneg, sizeof tneg, 2);
	assert_corrupt_at(tbig, sizeof tbig, 2);
	assert_corrupt_at(tflt, sizeof tflt, 2);
	assert_corrupt_at(sint, sizeof sint, 3);
	assert_corrupt_at(sbin, sizeof sbin, 3);
	assert_corrupt_at(sempty, sizeof sempty, 3);
	assert_corrupt_at(srel, sizeof srel, 3);
	assert_corrupt_at(snul, sizeof snul, 3);
	assert_corrupt_at(pstr, sizeof pstr, 4);
	assert_corrupt_at(pnil, sizeof pnil, 4);
	assert_corrupt_at(parr, sizeof parr, 4);
	assert_corrupt_at(trail, sizeof trail, 6);
}

/* Declared lengths past the limits are refused before anything is read
 * or allocated, even when the bytes are not there. */
static void test_oversize_claims(void **unused)
{
	(void)unused;
	const unsigned char bin_over[] = {0x94, 0x01, 0x01, 0xc0, 0xc6, 0x04, 0x00, 0x00, 0x01};
	const unsigned char bin_huge[] = {0x94, 0x01, 0x01, 0xc0, 0xc6, 0xff, 0xff, 0xff, 0xff};
	/* exactly the limit, but the bytes are missing: truncated */
	const unsigned char bin_short[] = {0x94, 0x01, 0x01, 0xc0, 0xc6, 0x04, 0x00, 0x00, 0x00};
	const unsigned char str_huge[] = {0x94, 0x01, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff};
	const unsigned char arr_huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
	const unsigned char arr16[] = {0xdc, 0xff, 0xff, 0x01};
	assert_corrupt_at(bin_over, sizeof bin_over, 4);
	assert_corrupt_at(bin_huge, sizeof bin_huge, 4);
	assert_corrupt_at(bin_short, sizeof bin_short, 4);
	assert_corrupt_at(str_huge, sizeof str_huge, 3);
	assert_corrupt_at(arr_huge, sizeof arr_huge, 0);
	assert_corrupt_at(arr16, sizeof arr16, 0);

	/* A 512-byte path is accepted (it names nobody), 513 is not. */
	unsigned char in[3 + 3 + 513 + 2];
	size_t n = 0;
	in[n++] = 0x94;
	in[n++] = 0x01;
	in[n++] = 0x01;
	in[n++] = 0xda;
	in[n++] = 0x02;
	in[n++] = 0x00; /* str16 of 512 */
	in[n++] = '/';
	memset(in + n, 'p', 511);
	n += 511;
	in[n++] = 0xc4;
	in[n++] = 0x00;
	decoded_t d = decode(in, n);
	assert_int_equal(d.rc, 0);
	assert_true(ig_ref_is_none(d.sender));
	assert_null(d.payload);
	in[5] = 0x01; /* 513 */
	assert_corrupt_at(in, n, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_inline),
		cmocka_unit_test(test_round_trip_empty),
		cmocka_unit_test(test_round_trip_large),
		cmocka_unit_test(test_round_trip_sender),
		cmocka_unit_test(test_dead_sender_is_nil),
		cmocka_unit_test(test_exact_bytes),
		cmocka_unit_test(test_non_canonical_accepted),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_truncated_every_length),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_oversize_claims),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
