/* libFuzzer target for the columnar coding of disk blocks
 * (storage/block_columns.c, block_columns_int.h; docs/formats.md, "Block
 * frame"). A disk fragment's reader decodes codings it did not write, so
 * the decoder meets untrusted bytes; the encoder only meets blocks the
 * builder finished, but must say "not canonical" for any other valid block
 * rather than produce a coding that decodes to different bytes.
 *
 * Each input is read two ways:
 *  - as a coding, decoded into a buffer of exactly raw_len bytes (so
 *    AddressSanitizer sees any byte written or read outside) for a raw_len
 *    taken from the header's length field (what a real coding carries), and
 *    for the input's length plus 0, 1 and a delta from its first bytes. A
 *    refusal must be IG_ECORRUPT at a byte of the input. The decoder checks
 *    every entry on the way, so a decoded block whose header is right must
 *    pass all of the packed reader's checks but the CRC; it then goes
 *    through the round trip below;
 *  - as a packed block, with its length field and CRC32C rewritten to
 *    match (so the fuzzer need not forge them): when ig_packed_open accepts
 *    it, the round trip.
 * The round trip encodes into a buffer of exactly the room the encoder
 * asks for; it must accept exactly the blocks the builder would write for
 * the same cells, and its coding must decode to the same bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/storage.h>

#include "block_columns_int.h"
#include "packed_int.h"

#define CHECK(e)                                                                         \
	do {                                                                             \
		if (!(e)) {                                                              \
			fprintf(stderr, "fuzz_block_columns: check failed: %s (%s:%d)\n", \
				#e, __FILE__, __LINE__);                                 \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* Decoded blocks larger than this are not tried (a length field can ask
 * for 4 GiB). */
enum { RAW_MAX = 1 << 20 };

static uint8_t *alloc(size_t n)
{
	uint8_t *b = malloc(n ? n : 1);

	CHECK(b != NULL);
	return b;
}

/* The header checks of the packed reader: what the decoder leaves to it. */
static bool header_ok(const uint8_t *b, size_t len)
{
	return ig__ld32(b + IG__PK_H_MAGIC) == IG__PK_MAGIC &&
	       b[IG__PK_H_VERSION] == IG_PACKED_VERSION &&
	       (b[IG__PK_H_FLAGS] & ~IG__PK_FLAGS_KNOWN) == 0 &&
	       ig__ld16(b + IG__PK_H_RESERVED) == 0 && ig__ld32(b + IG__PK_H_LENGTH) == len;
}

/* Whether the builder, given b's cells and flags, writes exactly b. */
static bool builder_writes(const ig_packed_t *p, const uint8_t *b, size_t len)
{
	uint32_t n = ig_packed_count(p);
	ig_cell_t *cells = malloc(((size_t)n + 1) * sizeof *cells);
	size_t need, got;
	bool same = false;

	CHECK(cells != NULL);
	for (uint32_t i = 0; i < n; i++)
		CHECK(ig_packed_cell(p, i, &cells[i]) == 0);
	CHECK(ig_packed_size(cells, n, &need) == 0);
	if (need == len) {
		uint8_t *again = alloc(len);
		unsigned flags = ig_packed_is_sorted(p) ? IG_PACKED_SORTED : 0;

		CHECK(ig_packed_encode(cells, n, flags, again, len, &got) == 0);
		CHECK(got == len);
		/* The trailers may differ: a decoded block keeps the coding's. */
		same = memcmp(again, b, len - IG_PACKED_TRAILER) == 0;
		free(again);
	}
	free(cells);
	return same;
}

/* b[0, len) passed the packed block's structural checks. */
static void round_trip(const ig_packed_t *p, const uint8_t *b, size_t len)
{
	uint8_t *coded = alloc(len + IG__COLUMNS_SIZES);
	size_t clen = SIZE_MAX;
	bool ok = ig__columns_encode(b, len, coded, &clen);

	CHECK(ok == builder_writes(p, b, len));
	if (ok) {
		uint8_t *tight = alloc(clen), *back = alloc(len);
		size_t err = SIZE_MAX;

		CHECK(clen >= IG_PACKED_OVERHEAD && clen <= len + IG__COLUMNS_SIZES);
		memcpy(tight, coded, clen);
		CHECK(ig__columns_decode(tight, clen, back, len, &err) == 0);
		CHECK(memcmp(back, b, len) == 0);
		free(back);
		free(tight);
	}
	free(coded);
}

static void decode_as(const uint8_t *in, size_t len, size_t raw_len)
{
	uint8_t *out = alloc(raw_len);
	size_t err = SIZE_MAX;
	int rc = ig__columns_decode(in, len, out, raw_len, &err);

	if (rc != 0) {
		CHECK(rc == IG_ECORRUPT);
		CHECK(err < len || (len == 0 && err == 0));
		free(out);
		return;
	}
	ig_packed_t p;
	size_t off = SIZE_MAX;
	rc = ig_packed_open(out, raw_len, &p, &off);
	if (rc != 0) {
		CHECK(rc == IG_ECORRUPT && off <= raw_len);
		/* The checksum is the coding's own; judge the rest. */
		rc = ig__packed_open_checked(out, raw_len, &p, &off);
	}
	if (header_ok(out, raw_len))
		CHECK(rc == 0);
	if (rc == 0) {
		for (uint32_t i = 0; i < ig_packed_count(&p); i++) {
			ig_cell_t c;
			CHECK(ig_packed_cell(&p, i, &c) == 0);
			CHECK(ig_cell_check(&c) == 0);
		}
		round_trip(&p, out, raw_len);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* As a coding. */
	if (size >= IG_PACKED_HEADER) {
		size_t l = ig__ld32(data + IG__PK_H_LENGTH);
		if (l <= RAW_MAX)
			decode_as(data, size, l);
	}
	decode_as(data, size, size);
	decode_as(data, size, size + 1);
	if (size >= 2)
		decode_as(data, size, size + (((size_t)data[0] << 8 | data[1]) % 4096));

	/* As a packed block, its length and checksum made to match. */
	if (size >= IG_PACKED_OVERHEAD && size <= RAW_MAX) {
		uint8_t *b = alloc(size);
		ig_packed_t p;

		memcpy(b, data, size);
		ig__st32(b + IG__PK_H_LENGTH, (uint32_t)size);
		ig__st32(b + size - IG_PACKED_TRAILER,
			 ig_crc32c(0, b, size - IG_PACKED_TRAILER));
		if (ig_packed_open(b, size, &p, NULL) == 0)
			round_trip(&p, b, size);
		free(b);
	}
	return 0;
}
