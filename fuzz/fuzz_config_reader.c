/* libFuzzer target for tablet configs and the root file (ig__tconf_decode,
 * ig__root_decode, storage/config.c; format in docs/formats.md, "Tablet
 * config and root file").
 *
 * Each input is decoded as a tablet config and as a root file image, as
 * given and resealed (length field and CRC32C rewritten) so the fuzzer
 * reaches the structural checks behind the checksum. A refusal must be
 * IG_ECORRUPT with an offset inside the input. An accepted input must
 * re-encode to the same bytes when every tablet config in it is of the
 * current version; an older one re-encodes (upgraded) to bytes that decode
 * to the same config and re-encode to themselves.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/error.h>
#include <ingot/storage.h>

#include "../storage/config_int.h"
#include "../storage/packed_int.h"

#define CHECK(e)                                                                      \
	do {                                                                          \
		if (!(e)) {                                                           \
			fprintf(stderr, "fuzz_config_reader: check failed: %s (%s:%d)\n", \
				#e, __FILE__, __LINE__);                              \
			abort();                                                      \
		}                                                                     \
	} while (0)

static bool same_row(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool same_frag(const ig__tc_frag_t *a, const ig__tc_frag_t *b)
{
	return strcmp(a->name, b->name) == 0 && a->min_txn == b->min_txn &&
	       a->max_txn == b->max_txn && same_row(a->lo, a->lo_len, b->lo, b->lo_len) &&
	       same_row(a->hi, a->hi_len, b->hi, b->hi_len);
}

static bool same_tconf(const ig__tconf_t *a, const ig__tconf_t *b)
{
	if (a->table_id != b->table_id || a->tablet_id != b->tablet_id ||
	    a->replay_txn != b->replay_txn || strcmp(a->log_dir, b->log_dir) != 0 ||
	    !same_row(a->first_row, a->first_len, b->first_row, b->first_len) ||
	    !same_row(a->last_row, a->last_len, b->last_row, b->last_len) ||
	    a->ngroups != b->ngroups)
		return false;
	for (uint32_t g = 0; g < a->ngroups; g++) {
		if (a->groups[g].nfrags != b->groups[g].nfrags)
			return false;
		for (uint32_t i = 0; i < a->groups[g].nfrags; i++)
			if (!same_frag(&a->groups[g].frags[i], &b->groups[g].frags[i]))
				return false;
	}
	return true;
}

/* out (c re-encoded) must decode to c again and re-encode to itself. */
static void check_stable(const ig__tconf_t *c, const uint8_t *out, size_t len)
{
	ig__tconf_t *d = NULL;
	CHECK(ig__tconf_decode(out, len, &d, NULL) == 0);
	CHECK(same_tconf(c, d));
	uint8_t *again;
	size_t n;
	CHECK(ig__tconf_encode(d, &again, &n) == 0);
	CHECK(n == len && memcmp(again, out, n) == 0);
	free(again);
	ig__tconf_free(d);
}

static void try_tconf(const uint8_t *p, size_t n)
{
	ig__tconf_t *c = NULL;
	size_t off = SIZE_MAX;
	int rc = ig__tconf_decode(p, n, &c, &off);
	if (rc != 0) {
		CHECK(rc == IG_ECORRUPT && off <= n);
		return;
	}
	uint8_t *out;
	size_t len;
	CHECK(ig__tconf_encode(c, &out, &len) == 0);
	if (p[IG__TC_H_VERSION] == IG__TC_VERSION)
		CHECK(len == n && memcmp(out, p, n) == 0);
	check_stable(c, out, len);
	free(out);
	ig__tconf_free(c);
}

/* Whether every tablet config in an accepted root image is current. */
static bool root_current(const uint8_t *p, const ig__root_t *r)
{
	size_t at = IG__RT_HEADER;
	for (uint32_t i = 0; i < r->nconfigs; i++) {
		if (p[at + 4 + IG__TC_H_VERSION] != IG__TC_VERSION)
			return false;
		at += 4 + ig__ld32(p + at);
	}
	return true;
}

static void try_root(const uint8_t *p, size_t n)
{
	ig__root_t *r = NULL;
	size_t off = SIZE_MAX;
	int rc = ig__root_decode(p, n, &r, &off);
	if (rc != 0) {
		CHECK(rc == IG_ECORRUPT && off <= n);
		return;
	}
	uint8_t *out;
	size_t len;
	CHECK(ig__root_encode(r, &out, &len) == 0);
	if (root_current(p, r))
		CHECK(len == n && memcmp(out, p, n) == 0);
	ig__root_t *d = NULL;
	CHECK(ig__root_decode(out, len, &d, NULL) == 0);
	CHECK(d->generation == r->generation && d->nconfigs == r->nconfigs);
	for (uint32_t i = 0; i < r->nconfigs; i++)
		CHECK(same_tconf(r->configs[i], d->configs[i]));
	ig__root_free(d);
	free(out);
	ig__root_free(r);
}

/* Rewrites the whole-length field at len_at and the trailing CRC32C. */
static void reseal(uint8_t *p, size_t n, size_t len_at)
{
	if (n < len_at + 4 || n < 8)
		return;
	ig__st32(p + len_at, (uint32_t)n);
	ig__st32(p + n - 4, ig_crc32c(0, p, n - 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	try_tconf(data, size);
	try_root(data, size);
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	reseal(copy, size, IG__TC_H_LENGTH);
	try_tconf(copy, size);
	memcpy(copy, data, size);
	reseal(copy, size, IG__RT_H_LENGTH);
	try_root(copy, size);
	free(copy);
	return 0;
}
