/* libFuzzer target for the table schema record (ig__schema_decode,
 * storage/schema_codec.c; format in docs/formats.md, "Table schema
 * record").
 *
 * Each input is decoded as given and resealed (length field and CRC32C
 * rewritten) so the fuzzer reaches the structural checks and the schema
 * rules behind the checksum. A refusal must be IG_ECORRUPT with an offset
 * inside the input, or IG_EINVAL (well-formed, invalid schema), either
 * with a reason. An accepted input must re-encode to the same bytes, and
 * every family it names must map to its own group.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/error.h>
#include <ingot/storage.h>

#include "../storage/packed_int.h"
#include "../storage/schema_codec_int.h"

#define CHECK(e)                                                                     \
	do {                                                                         \
		if (!(e)) {                                                          \
			fprintf(stderr, "fuzz_schema_codec: check failed: %s (%s:%d)\n", \
				#e, __FILE__, __LINE__);                             \
			abort();                                                     \
		}                                                                    \
	} while (0)

/* The decoded schema answers lookups as its groups say. */
static void check_lookups(const ig_schema_t *s)
{
	for (size_t i = 0; i < ig_schema_group_count(s); i++) {
		const ig_group_config_t *g = ig_schema_group(s, i);
		for (size_t j = 0; j < g->nfamilies; j++) {
			size_t at = SIZE_MAX;
			const char *f = g->families[j];
			CHECK(ig_schema_group_of(s, f, strlen(f), &at) == 0 && at == i);
		}
	}
}

static void try_schema(const uint8_t *p, size_t n)
{
	ig_schema_t *s = NULL;
	size_t off = SIZE_MAX;
	char why[256] = "";
	int rc = ig__schema_decode(p, n, &s, &off, why, sizeof why);
	if (rc != 0) {
		CHECK((rc == IG_ECORRUPT && off <= n) || rc == IG_EINVAL);
		CHECK(why[0] != '\0' && s == NULL);
		return;
	}
	uint8_t *out;
	size_t len;
	CHECK(ig__schema_encode(s, &out, &len) == 0);
	CHECK(len == n && memcmp(out, p, n) == 0);
	check_lookups(s);
	free(out);
	ig_schema_unref(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	try_schema(data, size);
	if (size < IG__SC_HEADER + 4)
		return 0;
	uint8_t *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	ig__st32(copy + IG__SC_H_LENGTH, (uint32_t)size);
	ig__st32(copy + size - 4, ig_crc32c(0, copy, size - 4));
	try_schema(copy, size);
	free(copy);
	return 0;
}
