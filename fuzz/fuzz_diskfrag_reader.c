/* libFuzzer target for disk fragments (ig__diskfrag_open_buffer and the
 * cursor, storage/diskfrag_read.c; format in docs/formats.md, "Disk
 * fragment").
 *
 * The input is a whole fragment file. Each is read twice: as given, and
 * resealed: every block frame the index points at gets its CRC32C (and, if
 * stored raw, its packed block's CRC32C) rewritten, then the index checksum
 * and the footer's own, so the fuzzer reaches the checks behind them
 * (codecs, zstd, packed entries, keys against the index) instead of
 * spending itself on forging CRCs. A refusal at open must be IG_ECORRUPT;
 * an opened fragment is iterated to the end (cells strictly ascending and
 * valid, or a clean error that sticks), then sought at a few keys taken
 * from the input, and asked about rows through the bloom filter.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/storage.h>

/* The reader's entry points are internal to storage/. */
#include "../storage/diskfrag_int.h"

#define CHECK(e)                                                                        \
	do {                                                                            \
		if (!(e)) {                                                             \
			fprintf(stderr, "fuzz_diskfrag_reader: check failed: %s (%s:%d)\n", \
				#e, __FILE__, __LINE__);                                \
			abort();                                                        \
		}                                                                       \
	} while (0)

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void read_fragment(const uint8_t *b, size_t len)
{
	ig__diskfrag_t *df = NULL;
	char why[256];
	int rc = ig__diskfrag_open_buffer("fuzz", b, len, &df, why, sizeof why);

	if (rc != 0) {
		CHECK(rc == IG_ECORRUPT || rc == IG_ENOMEM);
		CHECK(df == NULL);
		return;
	}

	ig__diskfrag_info_t info;
	ig__diskfrag_info(df, &info);
	ig__diskfrag_iter_t it;
	ig_cell_t c;
	uint64_t n = 0;
	/* The previous key, copied: its bytes may live in a buffer the cursor
	 * reuses when it moves to the next block. */
	static uint8_t prev_bytes[2 * 65536];
	ig_cell_key_t prev = {0};

	ig__diskfrag_iter_init(&it, df);
	while ((rc = ig__diskfrag_iter_next(&it, &c)) == 1) {
		CHECK(ig_cell_check(&c) == 0);
		CHECK(n == 0 || ig_cell_key_cmp(&prev, &c.key) < 0);
		memcpy(prev_bytes, c.key.row, c.key.row_len);
		memcpy(prev_bytes + c.key.row_len, c.key.column, c.key.column_len);
		prev = c.key;
		prev.row = prev_bytes;
		prev.column = prev_bytes + c.key.row_len;
		n++;
		if (n > info.cells)
			break;
	}
	if (rc == 0)
		CHECK(n == info.cells);
	else if (rc < 0)
		CHECK(rc == IG_ECORRUPT || rc == IG_ENOMEM);
	ig__diskfrag_iter_fini(&it);

	/* Seeks at keys made of input bytes, and the bounds. */
	ig_cell_key_t first, last;
	if (ig__diskfrag_bounds(df, &first, &last) == 0) {
		const ig_cell_key_t *keys[2] = {&first, &last};
		for (int k = 0; k < 2; k++) {
			ig__diskfrag_iter_init(&it, df);
			rc = ig__diskfrag_iter_seek(&it, keys[k]);
			if (rc == 0 && ig__diskfrag_iter_next(&it, &c) == 1)
				CHECK(ig_cell_key_cmp(&c.key, keys[k]) >= 0);
			ig__diskfrag_iter_fini(&it);
			(void)ig__diskfrag_may_contain(df, keys[k]->row, keys[k]->row_len);
		}
	}
	for (size_t off = 0; off + 4 <= len && off < 64; off += 16) {
		uint32_t rl = 1 + b[off] % 8;
		if (off + rl > len)
			break;
		ig__diskfrag_iter_init(&it, df);
		if (ig__diskfrag_iter_seek_row(&it, b + off, rl) == 0 &&
		    ig__diskfrag_iter_next(&it, &c) == 1) {
			ig_cell_key_t k = {.row = b + off, .row_len = rl, .timestamp = INT64_MAX};
			CHECK(ig_cell_key_cmp(&c.key, &k) >= 0);
		}
		ig__diskfrag_iter_fini(&it);
		(void)ig__diskfrag_may_contain(df, b + off, rl);
	}
	ig__diskfrag_unref(df);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_fragment(data, size);

	/* Again with the footer's checksums made right. */
	if (size >= IG__DF_FOOTER) {
		uint8_t *b = malloc(size);
		if (b == NULL)
			return 0;
		memcpy(b, data, size);
		uint8_t *f = b + size - IG__DF_FOOTER;
		uint64_t io = get64(f + IG__DF_F_INDEX_OFF), is = get64(f + IG__DF_F_INDEX_SIZE);
		if (io <= size && is <= size - io) {
			/* Walk the index entries as far as they are readable. */
			uint64_t at = 0;
			while (at <= is && is - at >= IG__DF_IE_FIXED) {
				const uint8_t *e = b + io + at;
				uint64_t off = get64(e + IG__DF_IE_OFFSET);
				uint32_t fs = get32(e + IG__DF_IE_SIZE);
				if (off < io && fs > IG__DF_BLOCK_TRAILER && fs <= io - off) {
					uint8_t *fr = b + off;
					size_t n = fs - IG__DF_BLOCK_TRAILER;
					if (fr[n + IG__DF_BT_CODEC] == IG__DF_CODEC_RAW && n >= 4)
						put32(fr + n - 4, ig_crc32c(0, fr, n - 4));
					put32(fr + n + IG__DF_BT_CRC,
					      ig_crc32c(0, fr, n + IG__DF_BT_CRC));
				}
				at += IG__DF_IE_FIXED + ((uint32_t)e[24] << 8 | e[25]) +
				      ((uint32_t)e[26] << 8 | e[27]);
			}
			put32(f + IG__DF_F_INDEX_CRC, ig_crc32c(0, b + io, (size_t)is));
		}
		put32(f + IG__DF_F_CRC, ig_crc32c(0, f, IG__DF_F_CRC));
		read_fragment(b, size);
		free(b);
	}
	return 0;
}
