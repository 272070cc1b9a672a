/* Tests of the row bloom filter (storage/bloom.c): no false negatives, a
 * false-positive rate near theory at several sizes, the stored form round
 * trip, and refusal of damaged stored forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ingot/storage.h>

#include "bloom_int.h"
#include "cells.h"

static size_t key_of(char *buf, size_t cap, const char *prefix, unsigned i)
{
	return (size_t)snprintf(buf, cap, "%s%08u", prefix, i);
}

/* e^(-x) for x >= 0 without libm (the tests do not link it): a short
 * Taylor series at x / 1024, then squared ten times. */
static double exp_neg(double x)
{
	double y = -x / 1024, t = 1, sum = 1;

	for (int i = 1; i < 8; i++) {
		t *= y / i;
		sum += t;
	}
	for (int i = 0; i < 10; i++)
		sum *= sum;
	return sum;
}

/* Theory for k probes, m bits, n keys: (1 - e^(-kn/m))^k. */
static double theory(const ig__bloom_t *b, double n)
{
	double base = 1.0 - exp_neg((double)b->k * n / (double)b->m), r = 1;

	for (uint32_t i = 0; i < b->k; i++)
		r *= base;
	return r;
}

static void check_rate(unsigned bits_per_key, unsigned n)
{
	ig__bloom_t b;
	char key[32];
	unsigned fp = 0, probes = 400000;

	assert_int_equal(ig__bloom_init(&b, n, bits_per_key), 0);
	for (unsigned i = 0; i < n; i++)
		ig__bloom_add(&b, key, key_of(key, sizeof key, "row-", i));
	for (unsigned i = 0; i < n; i++)
		assert_true(ig__bloom_may_contain(&b, key, key_of(key, sizeof key, "row-", i)));
	for (unsigned i = 0; i < probes; i++)
		fp += ig__bloom_may_contain(&b, key, key_of(key, sizeof key, "absent-", i));

	double rate = (double)fp / probes, want = theory(&b, n);
	printf("bloom: %u bits/key, k=%u, %u keys: false positives %.4f%% (theory %.4f%%)\n",
	       bits_per_key, b.k, n, rate * 100, want * 100);
	/* Binomial noise at 400k probes is a few percent of the rate; a bad
	 * hash shows up as a rate well above theory. */
	assert_true(rate < want * 1.25 + 0.0002);
	assert_true(rate > want * 0.75 - 0.0002);
	ig__bloom_fini(&b);
}

static void test_rate_default(void **state)
{
	(void)state;
	check_rate(0, 100000);  /* 0 = the default, 10 */
}

static void test_rate_sizes(void **state)
{
	(void)state;
	check_rate(4, 50000);
	check_rate(8, 100000);
	check_rate(16, 20000);
}

/* Short binary keys that differ in one bit or by a trailing zero byte. */
static void test_similar_keys(void **state)
{
	(void)state;
	ig__bloom_t b;
	uint64_t s = 7;
	unsigned fp = 0;

	assert_int_equal(ig__bloom_init(&b, 20000, 10), 0);
	for (uint32_t i = 0; i < 20000; i++) {
		uint8_t k[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
		ig__bloom_add(&b, k, sizeof k);
	}
	for (uint32_t i = 0; i < 20000; i++) {
		uint8_t k[5] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i, 0};
		assert_true(ig__bloom_may_contain(&b, k, 4));
		fp += ig__bloom_may_contain(&b, k, 5);
	}
	for (uint32_t i = 0; i < 20000; i++) {
		uint32_t v = 20000 + (uint32_t)(rng_next(&s) % 1000000);
		uint8_t k[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
		fp += ig__bloom_may_contain(&b, k, 4);
	}
	assert_true((double)fp / 40000 < theory(&b, 20000) * 1.5 + 0.001);
	ig__bloom_fini(&b);
}

static void test_stored_form(void **state)
{
	(void)state;
	ig__bloom_t b, v;
	char key[32];
	size_t off = 0;

	assert_int_equal(ig__bloom_init(&b, 1000, 10), 0);
	for (unsigned i = 0; i < 1000; i++)
		ig__bloom_add(&b, key, key_of(key, sizeof key, "k", i));
	size_t len = ig__bloom_encoded_size(&b);
	assert_int_equal(len, 16 + 10000 / 8 + 4);
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	ig__bloom_encode(&b, buf);
	assert_memory_equal(buf, "IGBF\x01\x07\x00\x00", 8);

	assert_int_equal(ig__bloom_view(buf, len, &v, NULL), 0);
	assert_int_equal(v.m, b.m);
	assert_int_equal(v.k, b.k);
	for (unsigned i = 0; i < 1000; i++)
		assert_true(ig__bloom_may_contain(&v, key, key_of(key, sizeof key, "k", i)));
	ig__bloom_fini(&v);

	/* Every single flipped byte and every truncation is refused. */
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x20;
		assert_int_equal(ig__bloom_view(buf, len, &v, &off), IG_ECORRUPT);
		assert_true(off <= len);
		buf[i] ^= 0x20;
	}
	for (size_t l = 0; l < len; l++)
		assert_int_equal(ig__bloom_view(buf, l, &v, &off), IG_ECORRUPT);
	free(buf);
	ig__bloom_fini(&b);
}

static void test_bad_args(void **state)
{
	(void)state;
	ig__bloom_t b;

	assert_int_equal(ig__bloom_init(&b, 10, 65), IG_EINVAL);
	assert_int_equal(ig__bloom_init(&b, 0, 10), 0);
	assert_int_equal(b.m, IG__BLOOM_BITS_MIN);
	assert_false(ig__bloom_may_contain(&b, "x", 1));
	ig__bloom_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_default),
		cmocka_unit_test(test_rate_sizes),
		cmocka_unit_test(test_similar_keys),
		cmocka_unit_test(test_stored_form),
		cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
