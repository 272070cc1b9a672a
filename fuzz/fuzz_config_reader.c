/* libFuzzer target for tablet configs and the root file (ig__tconf_decode,
 * ig__root_decode, storage/config.c; format in docs/formats.md, "Tablet
 * config and root file").
 *
 * Each input is decoded as a tablet config and as a root file image, as
 * given and resealed (length field and CRC32C rewritten) so the fuzzer
 * reaches the structural checks behind the checksum. A refusal must be
 * IG_ECORRUPT with an offset inside the input; an accepted input must
 * re-encode to the same bytes.
 */
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
	CHECK(len == n && memcmp(out, p, n) == 0);
	free(out);
	ig__tconf_free(c);
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
	CHECK(len == n && memcmp(out, p, n) == 0);
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
