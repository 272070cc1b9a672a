/* Packed cell blocks, writing side: the in-place builder, the exact sizing
 * function and the one-call encoder (docs/formats.md, "Packed cell block").
 *
 * The entry count is unknown until finish, yet entries must precede the
 * pool. So entries grow up from the header while the pool grows down from
 * the end of the caller's buffer; finish slides the pool down against the
 * last entry (one memmove) and rewrites the pool offsets, which were kept
 * as distances from the buffer's end until then. No allocation, one pass
 * over the cells, and the result does not depend on the buffer's size.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ingot/storage.h>

#include "cell_int.h"
#include "packed_int.h"

/* The builder shares a row (or column) with the previous cell when the
 * bytes are equal: a row with many columns, or a column with many versions,
 * stores its bytes once. Both ig_packed_size and the builder use this rule,
 * so the size is exact. */
static bool shares_row(const ig_cell_key_t *prev, const ig_cell_key_t *k)
{
	return prev != NULL && ig__bytes_eq(prev->row, prev->row_len, k->row, k->row_len);
}

static bool shares_col(const ig_cell_key_t *prev, const ig_cell_key_t *k)
{
	return prev != NULL &&
	       ig__bytes_eq(prev->column, prev->column_len, k->column, k->column_len);
}

size_t ig_packed_cell_size(const ig_cell_t *cell)
{
	return (size_t)IG_PACKED_ENTRY + cell->key.row_len + cell->key.column_len +
	       cell->value_len;
}

int ig_packed_size(const ig_cell_t *cells, size_t n, size_t *out_len)
{
	size_t total = IG_PACKED_OVERHEAD;

	if (n > 0 && cells == NULL)
		return IG_EINVAL;
	if (n > UINT32_MAX)
		return IG_ERANGE;
	for (size_t i = 0; i < n; i++) {
		const ig_cell_key_t *prev = i ? &cells[i - 1].key : NULL;
		const ig_cell_t *c = &cells[i];

		if (ig_cell_check(c) != 0)
			return IG_EINVAL;
		total += IG_PACKED_ENTRY + c->value_len;
		if (!shares_row(prev, &c->key))
			total += c->key.row_len;
		if (!shares_col(prev, &c->key))
			total += c->key.column_len;
		/* Each step adds at most ~192 KiB + 64 MiB, so checking after
		 * the addition cannot miss an overflow of size_t. */
		if (total > IG_PACKED_MAX)
			return IG_ERANGE;
	}
	*out_len = total;
	return 0;
}

int ig_packed_builder_init(ig_packed_builder_t *b, void *buf, size_t cap, unsigned flags)
{
	if (b == NULL || buf == NULL || cap < IG_PACKED_OVERHEAD || (flags & ~IG__PK_FLAGS_KNOWN))
		return IG_EINVAL;
	memset(b, 0, sizeof *b);
	b->buf = buf;
	/* Offsets and the length field are 32-bit: a larger buffer is simply
	 * not used past 4 GiB. */
	b->cap = cap < IG_PACKED_MAX ? cap : IG_PACKED_MAX;
	b->pool_lo = b->cap - IG_PACKED_TRAILER;
	b->flags = flags;
	return 0;
}

uint32_t ig_packed_builder_count(const ig_packed_builder_t *b)
{
	return b->count;
}

static size_t pool_top(const ig_packed_builder_t *b)
{
	return b->cap - IG_PACKED_TRAILER;
}

size_t ig_packed_builder_size(const ig_packed_builder_t *b)
{
	return IG_PACKED_HEADER + (size_t)b->count * IG_PACKED_ENTRY +
	       (pool_top(b) - b->pool_lo) + IG_PACKED_TRAILER;
}

/* Copies n bytes to the bottom of the pool; returns their distance from the
 * pool's top (the temporary offset kept in the entry until finish). */
static uint32_t pool_push(ig_packed_builder_t *b, const void *src, uint32_t n)
{
	b->pool_lo -= n;
	if (n > 0)
		memmove(b->buf + b->pool_lo, src, n);
	return (uint32_t)(pool_top(b) - b->pool_lo);
}

int ig_packed_builder_append(ig_packed_builder_t *b, const ig_cell_t *cell)
{
	if (b->finished)
		return IG_ESTATE;
	if (ig_cell_check(cell) != 0)
		return IG_EINVAL;

	const ig_cell_key_t *k = &cell->key;
	const ig_cell_key_t *prev = b->count ? &b->last : NULL;

	if ((b->flags & IG_PACKED_SORTED) && prev && ig_cell_key_cmp(prev, k) >= 0)
		return IG_EINVAL;
	if (b->count == UINT32_MAX)
		return IG_EFULL;

	bool srow = shares_row(prev, k), scol = shares_col(prev, k);
	size_t need = (size_t)IG_PACKED_ENTRY + cell->value_len + (srow ? 0 : k->row_len) +
		      (scol ? 0 : k->column_len);
	size_t entries_end = IG_PACKED_HEADER + (size_t)b->count * IG_PACKED_ENTRY;

	if (need > b->pool_lo - entries_end)
		return IG_EFULL;

	/* Pushed value first, so in the finished pool a cell's fresh strings
	 * read row, column, value in ascending addresses. */
	uint32_t val_d = pool_push(b, cell->value, cell->value_len);
	uint32_t col_d, row_d;
	uint8_t *lo;

	if (scol) {
		col_d = (uint32_t)(pool_top(b) - (size_t)((const uint8_t *)b->last.column - b->buf));
	} else {
		col_d = pool_push(b, k->column, k->column_len);
	}
	if (srow) {
		row_d = (uint32_t)(pool_top(b) - (size_t)((const uint8_t *)b->last.row - b->buf));
	} else {
		row_d = pool_push(b, k->row, k->row_len);
	}

	uint8_t *e = b->buf + entries_end;
	ig__st64(e + IG__PK_E_TIMESTAMP, ig__i2u64(k->timestamp));
	ig__st32(e + IG__PK_E_ROW_OFF, row_d);
	ig__st32(e + IG__PK_E_COL_OFF, col_d);
	ig__st32(e + IG__PK_E_VAL_OFF, val_d);
	ig__st32(e + IG__PK_E_VAL_LEN, cell->value_len);
	ig__st16(e + IG__PK_E_ROW_LEN, (uint16_t)k->row_len);
	ig__st16(e + IG__PK_E_COL_LEN, (uint16_t)k->column_len);
	e[IG__PK_E_KIND] = (uint8_t)cell->kind;
	memset(e + IG__PK_E_RESERVED, 0, 3);

	/* Remember where this key's bytes now live, for sharing and for the
	 * sorted check of the next append. */
	lo = b->buf + pool_top(b);
	b->last.row = lo - row_d;
	b->last.row_len = k->row_len;
	b->last.column = lo - col_d;
	b->last.column_len = k->column_len;
	b->last.timestamp = k->timestamp;
	b->count++;
	return 0;
}

int ig_packed_builder_finish(ig_packed_builder_t *b, size_t *out_len)
{
	if (b->finished)
		return IG_ESTATE;

	size_t pool_len = pool_top(b) - b->pool_lo;
	size_t entries_end = IG_PACKED_HEADER + (size_t)b->count * IG_PACKED_ENTRY;
	size_t len = entries_end + pool_len + IG_PACKED_TRAILER;
	uint8_t *buf = b->buf;

	if (pool_len > 0)
		memmove(buf + entries_end, buf + b->pool_lo, pool_len);
	/* A string at distance d below the pool's top starts at pool_len - d
	 * from the pool's start. Empty values get offset 0, the one canonical
	 * spelling the reader insists on. */
	for (uint32_t i = 0; i < b->count; i++) {
		uint8_t *e = buf + IG_PACKED_HEADER + (size_t)i * IG_PACKED_ENTRY;
		uint32_t p = (uint32_t)pool_len;

		ig__st32(e + IG__PK_E_ROW_OFF, p - ig__ld32(e + IG__PK_E_ROW_OFF));
		ig__st32(e + IG__PK_E_COL_OFF, p - ig__ld32(e + IG__PK_E_COL_OFF));
		if (ig__ld32(e + IG__PK_E_VAL_LEN) == 0)
			ig__st32(e + IG__PK_E_VAL_OFF, 0);
		else
			ig__st32(e + IG__PK_E_VAL_OFF, p - ig__ld32(e + IG__PK_E_VAL_OFF));
	}

	ig__st32(buf + IG__PK_H_MAGIC, IG__PK_MAGIC);
	buf[IG__PK_H_VERSION] = IG_PACKED_VERSION;
	buf[IG__PK_H_FLAGS] = (uint8_t)b->flags;
	ig__st16(buf + IG__PK_H_RESERVED, 0);
	ig__st32(buf + IG__PK_H_COUNT, b->count);
	ig__st32(buf + IG__PK_H_LENGTH, (uint32_t)len);
	ig__st32(buf + len - IG_PACKED_TRAILER, ig_crc32c(0, buf, len - IG_PACKED_TRAILER));

	b->finished = true;
	*out_len = len;
	return 0;
}

int ig_packed_encode(const ig_cell_t *cells, size_t n, unsigned flags, void *buf, size_t cap,
		     size_t *out_len)
{
	ig_packed_builder_t b;
	int rc;

	if (n > 0 && cells == NULL)
		return IG_EINVAL;
	rc = ig_packed_builder_init(&b, buf, cap, flags);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		rc = ig_packed_builder_append(&b, &cells[i]);
		if (rc != 0)
			return rc;
	}
	return ig_packed_builder_finish(&b, out_len);
}
