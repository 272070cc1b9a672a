/* Packed cell blocks, reading side: validation of untrusted bytes, cell
 * access and binary search (docs/formats.md, "Packed cell block").
 *
 * ig_packed_open checks everything once, so the accessors after it can
 * trust the entries and never re-check bounds. Every length is compared
 * against what is left, in 64-bit arithmetic, before anything is read; on
 * failure the offset of the first wrong byte is reported.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ingot/storage.h>

#include "packed_int.h"

static const uint8_t magic[4] = {'I', 'G', 'P', 'C'};

/* Stops validation: sets the error offset and returns IG_ECORRUPT. */
static int corrupt(size_t *err_offset, size_t at)
{
	if (err_offset != NULL)
		*err_offset = at;
	return IG_ECORRUPT;
}

static const uint8_t *entry_at(const ig_packed_t *p, uint32_t i)
{
	return p->base + IG_PACKED_HEADER + (size_t)i * IG_PACKED_ENTRY;
}

static void key_at(const ig_packed_t *p, uint32_t i, ig_cell_key_t *k)
{
	const uint8_t *e = entry_at(p, i);

	k->row = p->pool + ig__ld32(e + IG__PK_E_ROW_OFF);
	k->row_len = ig__ld16(e + IG__PK_E_ROW_LEN);
	k->column = p->pool + ig__ld32(e + IG__PK_E_COL_OFF);
	k->column_len = ig__ld16(e + IG__PK_E_COL_LEN);
	k->timestamp = ig__u2i64(ig__ld64(e + IG__PK_E_TIMESTAMP));
}

/* Checks entry i of a block whose header is already valid. */
static int check_entry(const ig_packed_t *p, uint32_t i, size_t *err_offset)
{
	const uint8_t *e = entry_at(p, i);
	size_t at = (size_t)(e - p->base);
	uint64_t pool_len = p->pool_len;
	uint32_t row_off = ig__ld32(e + IG__PK_E_ROW_OFF);
	uint32_t col_off = ig__ld32(e + IG__PK_E_COL_OFF);
	uint32_t val_off = ig__ld32(e + IG__PK_E_VAL_OFF);
	uint32_t val_len = ig__ld32(e + IG__PK_E_VAL_LEN);
	uint16_t row_len = ig__ld16(e + IG__PK_E_ROW_LEN);
	uint16_t col_len = ig__ld16(e + IG__PK_E_COL_LEN);
	uint8_t kind = e[IG__PK_E_KIND];

	if (kind != IG_CELL_SET && kind != IG_CELL_ERASURE)
		return corrupt(err_offset, at + IG__PK_E_KIND);
	for (unsigned j = 0; j < 3; j++)
		if (e[IG__PK_E_RESERVED + j] != 0)
			return corrupt(err_offset, at + IG__PK_E_RESERVED + j);
	if (row_len == 0)
		return corrupt(err_offset, at + IG__PK_E_ROW_LEN);
	if ((uint64_t)row_off + row_len > pool_len)
		return corrupt(err_offset, at + IG__PK_E_ROW_OFF);
	if (col_len < 2)
		return corrupt(err_offset, at + IG__PK_E_COL_LEN);
	if ((uint64_t)col_off + col_len > pool_len)
		return corrupt(err_offset, at + IG__PK_E_COL_OFF);
	if (ig_column_family_len(p->pool + col_off, col_len) == 0)
		return corrupt(err_offset, (size_t)(p->pool - p->base) + col_off);
	if (val_len > IG_VALUE_MAX || (kind == IG_CELL_ERASURE && val_len != 0))
		return corrupt(err_offset, at + IG__PK_E_VAL_LEN);
	if ((uint64_t)val_off + val_len > pool_len || (val_len == 0 && val_off != 0))
		return corrupt(err_offset, at + IG__PK_E_VAL_OFF);
	return 0;
}

static int packed_open(const void *buf, size_t len, bool check_crc, bool check_entries,
		       ig_packed_t *out, size_t *err_offset)
{
	const uint8_t *b = buf;
	ig_packed_t p;

	if (out == NULL || (buf == NULL && len > 0))
		return IG_EINVAL;

	/* Header, field by field, so a short input is reported as cut short
	 * only where its bytes run out, and a wrong field before that wins. */
	for (size_t i = 0; i < sizeof magic; i++) {
		if (i >= len)
			return corrupt(err_offset, len);
		if (b[i] != magic[i])
			return corrupt(err_offset, IG__PK_H_MAGIC);
	}
	if (len <= IG__PK_H_VERSION)
		return corrupt(err_offset, len);
	if (b[IG__PK_H_VERSION] != IG_PACKED_VERSION)
		return corrupt(err_offset, IG__PK_H_VERSION);
	if (len <= IG__PK_H_FLAGS)
		return corrupt(err_offset, len);
	if (b[IG__PK_H_FLAGS] & ~IG__PK_FLAGS_KNOWN)
		return corrupt(err_offset, IG__PK_H_FLAGS);
	for (size_t i = IG__PK_H_RESERVED; i < IG__PK_H_COUNT; i++) {
		if (i >= len)
			return corrupt(err_offset, len);
		if (b[i] != 0)
			return corrupt(err_offset, i);
	}
	if (len < IG_PACKED_HEADER)
		return corrupt(err_offset, len);

	uint32_t count = ig__ld32(b + IG__PK_H_COUNT);
	uint32_t blen = ig__ld32(b + IG__PK_H_LENGTH);

	if (blen < IG_PACKED_OVERHEAD)
		return corrupt(err_offset, IG__PK_H_LENGTH);
	if (blen > len)
		return corrupt(err_offset, len);
	if (blen < len)
		return corrupt(err_offset, blen);
	uint64_t fixed = (uint64_t)IG_PACKED_OVERHEAD + (uint64_t)count * IG_PACKED_ENTRY;
	if (fixed > blen)
		return corrupt(err_offset, IG__PK_H_COUNT);

	/* The checksum before the entries: random damage is then reported as
	 * what it is, and only checksummed (so deliberate) bytes reach the
	 * per-entry checks. */
	size_t body = blen - IG_PACKED_TRAILER;
	if (check_crc && ig__ld32(b + body) != ig_crc32c(0, b, body))
		return corrupt(err_offset, body);

	p.base = b;
	p.len = blen;
	p.count = count;
	p.pool = b + IG_PACKED_HEADER + (size_t)count * IG_PACKED_ENTRY;
	p.pool_len = (uint32_t)(blen - fixed);
	p.flags = b[IG__PK_H_FLAGS];

	ig_cell_key_t prev, cur;
	for (uint32_t i = 0; check_entries && i < count; i++) {
		int rc = check_entry(&p, i, err_offset);
		if (rc != 0)
			return rc;
		if (p.flags & IG_PACKED_SORTED) {
			key_at(&p, i, &cur);
			if (i > 0 && ig_cell_key_cmp(&prev, &cur) >= 0)
				return corrupt(err_offset, (size_t)(entry_at(&p, i) - b));
			prev = cur;
		}
	}
	*out = p;
	return 0;
}

uint32_t ig_packed_count(const ig_packed_t *p)
{
	return p->count;
}

bool ig_packed_is_sorted(const ig_packed_t *p)
{
	return (p->flags & IG_PACKED_SORTED) != 0;
}

int ig_packed_cell(const ig_packed_t *p, uint32_t i, ig_cell_t *out)
{
	if (i >= p->count)
		return IG_ERANGE;

	const uint8_t *e = entry_at(p, i);
	key_at(p, i, &out->key);
	out->value = p->pool + ig__ld32(e + IG__PK_E_VAL_OFF);
	out->value_len = ig__ld32(e + IG__PK_E_VAL_LEN);
	out->kind = (ig_cell_kind_t)e[IG__PK_E_KIND];
	return 0;
}

int ig_packed_seek(const ig_packed_t *p, const ig_cell_key_t *key, uint32_t *index)
{
	if (!(p->flags & IG_PACKED_SORTED))
		return IG_ESTATE;

	/* Lower bound over [lo, hi): fixed-width entries make cell i one
	 * multiplication away, so no cell is decoded but those compared. */
	uint32_t lo = 0, hi = p->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		ig_cell_key_t k;

		key_at(p, mid, &k);
		if (ig_cell_key_cmp(&k, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*index = lo;
	return 0;
}

int ig_packed_open(const void *buf, size_t len, ig_packed_t *out, size_t *err_offset)
{
	return packed_open(buf, len, true, true, out, err_offset);
}

int ig__packed_open_checked(const void *buf, size_t len, ig_packed_t *out, size_t *err_offset)
{
	return packed_open(buf, len, false, true, out, err_offset);
}

int ig__packed_open_entries_checked(const void *buf, size_t len, ig_packed_t *out,
				    size_t *err_offset)
{
	return packed_open(buf, len, false, false, out, err_offset);
}
