/* Internal to storage/: a bloom filter on rows, built while a disk fragment
 * is written and stored in it (docs/formats.md, "Disk fragment", bloom
 * section), then asked whether a row may be in the fragment.
 *
 * Each key sets k bits chosen by double hashing: one 64-bit hash of the key
 * gives two 32-bit halves h1 and h2, and bit i is (h1 + i * h2) mod m
 * (computed in 64 bits). With b bits per key, k = round(b * ln 2) minimizes
 * the false-positive rate, about (1 - e^(-k/b))^k: 0.8% for b = 10.
 */
#ifndef INGOT_STORAGE_BLOOM_INT_H
#define INGOT_STORAGE_BLOOM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IG__BLOOM_BITS_PER_KEY 10u  /* the default */
#define IG__BLOOM_BITS_MIN 64u      /* smallest filter, bits */
#define IG__BLOOM_K_MAX 30u
/* Stored form: an 16-byte header, the bit array, a CRC32C. */
#define IG__BLOOM_HEADER 16u
#define IG__BLOOM_TRAILER 4u

/** A filter: m bits and k probes. Embed it anywhere. */
typedef struct ig__bloom {
	uint8_t *bits;       /* m / 8 bytes; owned, or borrowed (see _view) */
	uint64_t m;          /* bits, a multiple of 8, >= IG__BLOOM_BITS_MIN */
	uint32_t k;          /* probes per key, 1 .. IG__BLOOM_K_MAX */
	bool owned;          /* bits were allocated by _init */
} ig__bloom_t;

/** The 64-bit hash the filter uses (our own: 8 bytes at a time, multiply
 *  and xor-shift mixing, then a final avalanche). Also used to remember
 *  rows while a fragment is written, before the filter is sized. */
uint64_t ig__bloom_hash(const void *key, size_t len);

/** Sizes an empty filter for nkeys keys at bits_per_key bits each (0 means
 *  IG__BLOOM_BITS_PER_KEY; at most 64). Ownership: free with
 *  ig__bloom_fini. Returns 0, IG_EINVAL or IG_ENOMEM. */
int ig__bloom_init(ig__bloom_t *b, uint64_t nkeys, unsigned bits_per_key);

/** Frees what _init allocated (nothing for a view). */
void ig__bloom_fini(ig__bloom_t *b);

/** Adds a key by its hash (ig__bloom_hash). */
void ig__bloom_add_hash(ig__bloom_t *b, uint64_t h);

/** Adds a key. */
void ig__bloom_add(ig__bloom_t *b, const void *key, size_t len);

/** Says whether the key may have been added: false means certainly not. */
bool ig__bloom_may_contain(const ig__bloom_t *b, const void *key, size_t len);

/** Bytes ig__bloom_encode writes. */
size_t ig__bloom_encoded_size(const ig__bloom_t *b);

/** Writes the stored form into buf (ig__bloom_encoded_size bytes). */
void ig__bloom_encode(const ig__bloom_t *b, void *buf);

/** Validates a stored filter (untrusted bytes) and makes *out a view of it:
 *  the bits stay in buf, which must outlive the view (fini frees nothing).
 *  Returns 0, or IG_ECORRUPT with *err_offset (if not NULL) set to the
 *  offset in buf of the first wrong field. */
int ig__bloom_view(const void *buf, size_t len, ig__bloom_t *out, size_t *err_offset);

#endif
