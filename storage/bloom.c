/* Bloom filters on rows: sizing, the hash, probing, and the stored form
 * (storage/bloom_int.h; docs/formats.md, "Disk fragment", bloom section).
 *
 * The filter is written into files and read back on any machine, so the
 * hash reads its input bytes in a fixed (little-endian) order and the
 * probe positions are computed in 64-bit arithmetic: the same key sets the
 * same bits everywhere.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/storage.h>

#include "bloom_int.h"
#include "packed_int.h"

static const uint8_t magic[4] = {'I', 'G', 'B', 'F'};
#define BLOOM_VERSION 1

static uint64_t load_le(const uint8_t *p, size_t n)
{
	uint64_t w = 0;

	for (size_t i = 0; i < n; i++)
		w |= (uint64_t)p[i] << (8 * i);
	return w;
}

static uint64_t rotl(uint64_t x, unsigned r)
{
	return x << r | x >> (64 - r);
}

/* Spreads every input bit over every output bit: two multiply and
 * xor-shift rounds with odd constants. */
static uint64_t avalanche(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	x ^= x >> 33;
	return x;
}

uint64_t ig__bloom_hash(const void *key, size_t len)
{
	const uint8_t *p = key;
	/* The length goes in first so "a" and "a\0" differ. */
	uint64_t h = 0x6a09e667f3bcc908ull ^ ((uint64_t)len * 0x9e3779b97f4a7c15ull);

	while (len >= 8) {
		h ^= load_le(p, 8) * 0xc2b2ae3d27d4eb4full;
		h = rotl(h, 29) * 0x9fb21c651e98df25ull + 0x165667b19e3779f9ull;
		p += 8;
		len -= 8;
	}
	if (len > 0) {
		h ^= load_le(p, len) * 0xc2b2ae3d27d4eb4full;
		h = rotl(h, 29) * 0x9fb21c651e98df25ull;
	}
	return avalanche(h);
}

int ig__bloom_init(ig__bloom_t *b, uint64_t nkeys, unsigned bits_per_key)
{
	if (bits_per_key == 0)
		bits_per_key = IG__BLOOM_BITS_PER_KEY;
	if (bits_per_key > 64 || nkeys > (UINT64_MAX >> 8))
		return IG_EINVAL;

	uint64_t m = nkeys * bits_per_key;
	if (m < IG__BLOOM_BITS_MIN)
		m = IG__BLOOM_BITS_MIN;
	m = (m + 7) & ~(uint64_t)7;
	if (m / 8 > SIZE_MAX - IG__BLOOM_HEADER - IG__BLOOM_TRAILER)
		return IG_ENOMEM;
	/* k = b ln 2 rounded, the optimum for b bits per key (integer
	 * arithmetic: storage/ does not link libm). */
	long k = ((long)bits_per_key * 6931 + 5000) / 10000;
	if (k < 1)
		k = 1;
	if (k > (long)IG__BLOOM_K_MAX)
		k = IG__BLOOM_K_MAX;

	uint8_t *bits = calloc(1, (size_t)(m / 8));
	if (bits == NULL)
		return IG_ENOMEM;
	b->bits = bits;
	b->m = m;
	b->k = (uint32_t)k;
	b->owned = true;
	return 0;
}

void ig__bloom_fini(ig__bloom_t *b)
{
	if (b->owned)
		free(b->bits);
	b->bits = NULL;
	b->owned = false;
}

void ig__bloom_add_hash(ig__bloom_t *b, uint64_t h)
{
	uint64_t h1 = h & 0xffffffffu, h2 = h >> 32;

	for (uint32_t i = 0; i < b->k; i++) {
		uint64_t bit = (h1 + (uint64_t)i * h2) % b->m;
		b->bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
	}
}

void ig__bloom_add(ig__bloom_t *b, const void *key, size_t len)
{
	ig__bloom_add_hash(b, ig__bloom_hash(key, len));
}

bool ig__bloom_may_contain(const ig__bloom_t *b, const void *key, size_t len)
{
	uint64_t h = ig__bloom_hash(key, len);
	uint64_t h1 = h & 0xffffffffu, h2 = h >> 32;

	for (uint32_t i = 0; i < b->k; i++) {
		uint64_t bit = (h1 + (uint64_t)i * h2) % b->m;
		if (!(b->bits[bit >> 3] & (1u << (bit & 7))))
			return false;
	}
	return true;
}

size_t ig__bloom_encoded_size(const ig__bloom_t *b)
{
	return IG__BLOOM_HEADER + (size_t)(b->m / 8) + IG__BLOOM_TRAILER;
}

void ig__bloom_encode(const ig__bloom_t *b, void *buf)
{
	uint8_t *p = buf;
	size_t nbytes = (size_t)(b->m / 8);

	memcpy(p, magic, sizeof magic);
	p[4] = BLOOM_VERSION;
	p[5] = (uint8_t)b->k;
	p[6] = p[7] = 0;
	ig__st64(p + 8, b->m);
	memcpy(p + IG__BLOOM_HEADER, b->bits, nbytes);
	ig__st32(p + IG__BLOOM_HEADER + nbytes, ig_crc32c(0, p, IG__BLOOM_HEADER + nbytes));
}

static int corrupt(size_t *err_offset, size_t at)
{
	if (err_offset != NULL)
		*err_offset = at;
	return IG_ECORRUPT;
}

int ig__bloom_view(const void *buf, size_t len, ig__bloom_t *out, size_t *err_offset)
{
	const uint8_t *p = buf;

	if (len < IG__BLOOM_HEADER + IG__BLOOM_TRAILER)
		return corrupt(err_offset, len);
	if (memcmp(p, magic, sizeof magic) != 0)
		return corrupt(err_offset, 0);
	if (p[4] != BLOOM_VERSION)
		return corrupt(err_offset, 4);
	if (p[5] < 1 || p[5] > IG__BLOOM_K_MAX)
		return corrupt(err_offset, 5);
	if (p[6] != 0 || p[7] != 0)
		return corrupt(err_offset, p[6] != 0 ? 6 : 7);

	uint64_t m = ig__ld64(p + 8);
	if (m < IG__BLOOM_BITS_MIN || m % 8 != 0 ||
	    m / 8 != (uint64_t)(len - IG__BLOOM_HEADER - IG__BLOOM_TRAILER))
		return corrupt(err_offset, 8);
	size_t body = len - IG__BLOOM_TRAILER;
	if (ig__ld32(p + body) != ig_crc32c(0, p, body))
		return corrupt(err_offset, body);
	out->bits = (uint8_t *)p + IG__BLOOM_HEADER;
	out->m = m;
	out->k = p[5];
	out->owned = false;
	return 0;
}
