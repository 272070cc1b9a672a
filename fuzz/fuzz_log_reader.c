/* libFuzzer target for the write-ahead log reader (ig_log_scan_buf on
 * untrusted bytes, storage/log_read.c; format in docs/formats.md,
 * "Write-ahead log").
 *
 * Each input is scanned as a segment twice: as given, and with every
 * record's header and trailer checksums rewritten where its length field
 * fits, so the fuzzer reaches the entry and packed block checks behind the
 * checksums instead of spending itself on forging them. Each scan runs as
 * the last segment (torn tails allowed) and as an earlier one (no torn
 * tails). A refusal must be IG_ECORRUPT at an offset inside the input.
 * An accepted input must deliver records inside the input, back to back
 * from offset 0, with rising txns, whose entries hold valid cells inside
 * their record; valid_end + torn_bytes must be the input's length, and
 * scanning just the valid part as an earlier segment must accept the same
 * records with nothing torn.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/storage.h>

#include "log_int.h"

#define CHECK(e)                                                                       \
	do {                                                                           \
		if (!(e)) {                                                            \
			fprintf(stderr, "fuzz_log_reader: check failed: %s (%s:%d)\n", \
				#e, __FILE__, __LINE__);                               \
			abort();                                                       \
		}                                                                      \
	} while (0)

typedef struct ctx {
	const uint8_t *base;
	size_t len;
	uint64_t next_off;   /* where the next record must start */
	uint64_t prev_txn;
	uint64_t records;
} ctx_t;

static int check_record(void *arg, const ig_log_record_t *r)
{
	ctx_t *c = arg;
	ig_log_item_t it;
	size_t pos = 0;
	uint32_t items = 0;
	const uint8_t *lo = c->base + r->offset, *hi = lo + r->len;

	CHECK(r->offset == c->next_off);
	CHECK(r->len >= 48 && r->offset + r->len <= c->len);
	CHECK(r->first_txn > c->prev_txn && r->first_txn <= r->last_txn);
	CHECK(r->payload >= lo && r->payload + r->payload_len <= hi);
	while (ig_log_record_next(r, &pos, &it)) {
		uint32_t n = ig_packed_count(&it.block);
		for (uint32_t i = 0; i < n; i++) {
			ig_cell_t cell;
			CHECK(ig_packed_cell(&it.block, i, &cell) == 0);
			CHECK(ig_cell_check(&cell) == 0);
			CHECK((const uint8_t *)cell.key.row >= r->payload &&
			      (const uint8_t *)cell.key.row + cell.key.row_len <= hi);
			CHECK((const uint8_t *)cell.key.column >= r->payload &&
			      (const uint8_t *)cell.key.column + cell.key.column_len <= hi);
			CHECK(cell.value_len == 0 ||
			      ((const uint8_t *)cell.value >= r->payload &&
			       (const uint8_t *)cell.value + cell.value_len <= hi));
		}
		items++;
	}
	CHECK(items == r->nentries);
	CHECK(pos == r->payload_len);
	c->next_off = r->offset + r->len;
	c->prev_txn = r->last_txn;
	c->records++;
	return 0;
}

static void scan(const uint8_t *b, size_t len)
{
	for (int last = 0; last < 2; last++) {
		ctx_t c = {.base = b, .len = len};
		ig_log_scan_t out;
		ig_log_error_t err;
		uint64_t prev = 0;
		int rc = ig_log_scan_buf(b, len, "fuzz", IG_TXN_NONE, last, 0, &prev,
					 check_record, &c, &out, &err);
		if (rc != 0) {
			CHECK(rc == IG_ECORRUPT);
			CHECK(len == 0 || err.offset < len);
			CHECK(strstr(err.msg, "fuzz: offset ") == err.msg);
			continue;
		}
		CHECK(out.records == c.records);
		CHECK(out.valid_end == c.next_off);
		CHECK(out.valid_end + out.torn_bytes == len);
		CHECK(last || out.torn_bytes == 0);
		CHECK(out.last_txn == prev && prev == c.prev_txn);
		if (last && out.torn_bytes > 0) {
			/* The valid part alone is a complete segment. */
			ctx_t d = {.base = b, .len = (size_t)out.valid_end};
			ig_log_scan_t o2;
			uint64_t p2 = 0;
			CHECK(ig_log_scan_buf(b, (size_t)out.valid_end, "fuzz", IG_TXN_NONE, false, 0,
					      &p2, check_record, &d, &o2, &err) == 0);
			CHECK(o2.records == out.records && o2.torn_bytes == 0);
		}
	}
}

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b;
	size_t off = 0;

	scan(data, size);

	/* Reseal: fix the checksums of each record whose length fits. */
	b = malloc(size ? size : 1);
	CHECK(b != NULL);
	memcpy(b, data, size);
	while (off + 44 <= size) {
		uint32_t rlen = get32(b + off + 8);
		put32(b + off + 40, ig_crc32c(0, b + off, 40));
		if (rlen < 48 || rlen > size - off)
			break;
		put32(b + off + rlen - 4, ig_crc32c(0, b + off, rlen - 4));
		off += rlen;
	}
	scan(b, size);
	free(b);
	return 0;
}
