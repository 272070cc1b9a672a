/* The columnar coding of disk fragment blocks (block_columns_int.h says
 * why it exists; docs/formats.md, "Block frame", gives the layout). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ingot/storage.h>

#include "block_columns_int.h"
#include "cell_int.h"
#include "packed_int.h"

/* An entry as eight 32-bit words; the coding replaces the three offsets. */
enum { W_ROW = 2, W_COL = 3, W_VAL = 4, WORDS = IG_PACKED_ENTRY / 4 };

typedef struct entry {
	uint32_t row_off, col_off, val_off, val_len;
	uint32_t row_len, col_len;
} entry_t;

static entry_t entry_at(const uint8_t *e)
{
	return (entry_t){
		.row_off = ig__ld32(e + IG__PK_E_ROW_OFF),
		.col_off = ig__ld32(e + IG__PK_E_COL_OFF),
		.val_off = ig__ld32(e + IG__PK_E_VAL_OFF),
		.val_len = ig__ld32(e + IG__PK_E_VAL_LEN),
		.row_len = ig__ld16(e + IG__PK_E_ROW_LEN),
		.col_len = ig__ld16(e + IG__PK_E_COL_LEN),
	};
}

static uint32_t common_prefix(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen, p = 0;

	while (p < n && a[p] == b[p])
		p++;
	return (uint32_t)p;
}

/* Word k of entry i in the planes that follow the header. */
static size_t plane_at(size_t n, size_t k, size_t i)
{
	return IG_PACKED_HEADER + 4 * (k * n + i);
}

/* ---- encoding --------------------------------------------------------------------- */

typedef struct enc {
	const uint8_t *blk, *pool;
	size_t n;
	size_t cursor;          /* canonical placement, from the pool's end */
	entry_t last;           /* the previous entry */
} enc_t;

/* Checks entry i against the canonical arrangement and returns its coded
 * words in w; *prefix gets what its row shares with the previous row. */
static bool canonical(enc_t *x, size_t i, const entry_t *e, uint32_t *prefix)
{
	const entry_t *l = &x->last;
	bool new_row = i == 0 || e->row_off != l->row_off;
	bool new_col = i == 0 || e->col_off != l->col_off;
	const uint8_t *row = x->pool + e->row_off;

	if ((!new_row && e->row_len != l->row_len) || (!new_col && e->col_len != l->col_len))
		return false;
	*prefix = i ? common_prefix(x->pool + l->row_off, l->row_len, row, e->row_len) : 0;
	/* The builder shares a string exactly when it equals the previous. */
	if (new_row && i && *prefix == e->row_len && e->row_len == l->row_len)
		return false;
	if (new_col && i && e->col_len == l->col_len &&
	    memcmp(x->pool + l->col_off, x->pool + e->col_off, e->col_len) == 0)
		return false;
	size_t nb = (new_row ? e->row_len : 0) + (new_col ? e->col_len : 0) + (size_t)e->val_len;
	if (nb > x->cursor)
		return false;
	x->cursor -= nb;
	size_t at = x->cursor + (new_row ? e->row_len : 0);
	return (!new_row || e->row_off == x->cursor) && (!new_col || e->col_off == at) &&
	       e->val_off == (e->val_len ? at + (new_col ? e->col_len : 0) : 0);
}

static void put_words(const enc_t *x, uint8_t *out, size_t i, const uint32_t *w)
{
	for (size_t k = 0; k < WORDS; k++)
		ig__st32(out + plane_at(x->n, k, i), w[k]);
}

/* The stream sizes, then the streams: new row suffixes, new columns,
 * values, in cell order. Returns the bytes written. */
static size_t put_streams(const enc_t *x, uint8_t *out)
{
	uint8_t *o = out + IG__COLUMNS_SIZES;

	for (int s = 0; s < 3; s++) {
		uint8_t *from = o;

		for (size_t i = 0; i < x->n; i++) {
			entry_t e = entry_at(x->blk + IG_PACKED_HEADER + i * IG_PACKED_ENTRY);
			entry_t l = i ? entry_at(x->blk + IG_PACKED_HEADER + (i - 1) * IG_PACKED_ENTRY)
				      : (entry_t){0};
			const uint8_t *src = x->pool;
			size_t len = 0;

			if (s == 0 && (i == 0 || e.row_off != l.row_off)) {
				uint32_t p = i ? common_prefix(x->pool + l.row_off, l.row_len,
							       x->pool + e.row_off, e.row_len) : 0;
				src += e.row_off + p;
				len = e.row_len - p;
			} else if (s == 1 && (i == 0 || e.col_off != l.col_off)) {
				src += e.col_off;
				len = e.col_len;
			} else if (s == 2) {
				src += e.val_off;
				len = e.val_len;
			}
			memcpy(o, src, len);
			o += len;
		}
		if (s < 2)
			ig__st32(out + 4 * s, (uint32_t)(o - from));
	}
	return (size_t)(o - out);
}

bool ig__columns_encode(const uint8_t *blk, size_t len, uint8_t *out, size_t *out_len)
{
	size_t n = ig__ld32(blk + IG__PK_H_COUNT);
	size_t pool = IG_PACKED_HEADER + n * IG_PACKED_ENTRY;
	enc_t x = {.blk = blk, .pool = blk + pool, .n = n, .cursor = len - IG_PACKED_TRAILER - pool};

	memcpy(out, blk, IG_PACKED_HEADER);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = blk + IG_PACKED_HEADER + i * IG_PACKED_ENTRY;
		entry_t e = entry_at(p);
		uint32_t w[WORDS], prefix;

		if (!canonical(&x, i, &e, &prefix))
			return false;
		for (size_t k = 0; k < WORDS; k++)
			w[k] = ig__ld32(p + 4 * k);
		w[W_ROW] = prefix;
		w[W_COL] = i && e.col_off == x.last.col_off;
		w[W_VAL] = 0;
		put_words(&x, out, i, w);
		x.last = e;
	}
	if (x.cursor != 0) /* pool bytes no entry points at */
		return false;
	size_t at = pool + put_streams(&x, out + pool);
	memcpy(out + at, blk + len - IG_PACKED_TRAILER, IG_PACKED_TRAILER);
	*out_len = at + IG_PACKED_TRAILER;
	return true;
}

/* ---- decoding --------------------------------------------------------------------- */

/* One pass: each entry is read from the planes, checked, its strings
 * placed from the pool's end down as the builder does, and written out. */
typedef struct dec {
	const uint8_t *in;
	uint8_t *out, *pool;       /* out's pool */
	size_t n;
	const uint8_t *plane[WORDS];          /* word k of entry 0 */
	const uint8_t *rs, *cs, *vs, *end[3]; /* the streams: next byte, ends */
	size_t cursor;             /* pool offset of the last strings placed */
	size_t *err;
} dec_t;

static int bad(dec_t *d, size_t at)
{
	*d->err = at;
	return IG_ECORRUPT;
}

static uint32_t word(const dec_t *d, size_t k, size_t i)
{
	return ig__ld32(d->plane[k] + 4 * i);
}

/* What ig_packed_open checks of an entry but its offsets (the decoder
 * places every string inside the pool itself), and the coded words. */
static int check_words(dec_t *d, size_t i, const entry_t *e, const entry_t *l, uint32_t prefix,
		       uint32_t col_shared, bool row_shared)
{
	uint32_t kind = word(d, IG__PK_E_KIND / 4, i);

	if ((kind != (uint32_t)IG_CELL_SET << 24 && kind != (uint32_t)IG_CELL_ERASURE << 24))
		return bad(d, plane_at(d->n, IG__PK_E_KIND / 4, i));
	if (e->row_len == 0 || e->col_len < 2)
		return bad(d, plane_at(d->n, IG__PK_E_ROW_LEN / 4, i));
	if (e->val_len > IG_VALUE_MAX || (kind >> 24 == IG_CELL_ERASURE && e->val_len != 0))
		return bad(d, plane_at(d->n, IG__PK_E_VAL_LEN / 4, i));
	if (word(d, W_VAL, i) != 0)
		return bad(d, plane_at(d->n, W_VAL, i));
	if (col_shared > 1 || (col_shared && (i == 0 || e->col_len != l->col_len)))
		return bad(d, plane_at(d->n, W_COL, i));
	if (!row_shared && (prefix > e->row_len || prefix > l->row_len))
		return bad(d, plane_at(d->n, W_ROW, i));
	return 0;
}

/* Takes len bytes from stream s (0 rows, 1 columns, 2 values) to dst. */
static bool take(dec_t *d, int s, uint8_t *dst, size_t len)
{
	const uint8_t **src = s == 0 ? &d->rs : s == 1 ? &d->cs : &d->vs;

	if (len > (size_t)(d->end[s] - *src))
		return false;
	memcpy(dst, *src, len);
	*src += len;
	return true;
}

/* Places cell i's new strings (e's offsets are set here) below the
 * previous cell's. */
static int place(dec_t *d, size_t i, entry_t *e, const entry_t *l, uint32_t prefix,
		 bool new_row, bool new_col)
{
	size_t nb = (new_row ? e->row_len : 0) + (new_col ? e->col_len : 0) + (size_t)e->val_len;

	if (nb > d->cursor)
		return bad(d, plane_at(d->n, IG__PK_E_VAL_LEN / 4, i));
	d->cursor -= nb;
	size_t at = d->cursor;
	e->row_off = new_row ? (uint32_t)at : l->row_off;
	if (new_row) {
		memcpy(d->pool + at, d->pool + l->row_off, prefix);
		if (!take(d, 0, d->pool + at + prefix, e->row_len - prefix))
			return bad(d, (size_t)(d->end[0] - d->in));
		at += e->row_len;
	}
	e->col_off = new_col ? (uint32_t)at : l->col_off;
	if (new_col) {
		if (!take(d, 1, d->pool + at, e->col_len))
			return bad(d, (size_t)(d->end[1] - d->in));
		at += e->col_len;
	}
	e->val_off = e->val_len ? (uint32_t)at : 0;
	if (!take(d, 2, d->pool + at, e->val_len))
		return bad(d, (size_t)(d->end[2] - d->in));
	return 0;
}

/* ig__bytes_cmp of two rows from byte p on. Past a true common prefix the
 * first byte almost always decides, and a call to memcmp would cost more
 * than the rest of a cell's decoding. */
static int cmp_past(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, size_t p)
{
	if (p < alen && p < blen && a[p] != b[p])
		return a[p] < b[p] ? -1 : 1;
	return ig__bytes_cmp(a + p, alen - p, b + p, blen - p);
}

/* Checks the strings of cell i, just placed: a new column names a valid
 * family, and in a sorted block the key follows the previous cell's. A new
 * row's first `prefix` bytes were copied from the previous row, so rows
 * are compared past them. */
static int check_key(dec_t *d, size_t i, const entry_t *e, const entry_t *l, uint32_t prefix,
		     bool new_row, bool new_col)
{
	if (new_col && ig_column_family_len(d->pool + e->col_off, e->col_len) == 0)
		return bad(d, plane_at(d->n, W_COL, i));
	if (i == 0 || !(d->out[IG__PK_H_FLAGS] & IG_PACKED_SORTED))
		return 0;
	int c = new_row ? cmp_past(d->pool + l->row_off, l->row_len, d->pool + e->row_off,
				   e->row_len, prefix) : 0;
	if (c == 0 && new_col)
		c = ig__bytes_cmp(d->pool + l->col_off, l->col_len, d->pool + e->col_off, e->col_len);
	if (c == 0) {
		int64_t a = ig__u2i64((uint64_t)word(d, 0, i - 1) << 32 | word(d, 1, i - 1));
		int64_t b = ig__u2i64((uint64_t)word(d, 0, i) << 32 | word(d, 1, i));
		c = (a < b) - (a > b);
	}
	return c < 0 ? 0 : bad(d, plane_at(d->n, 0, i));
}

static int decode_entry(dec_t *d, size_t i, entry_t *l)
{
	uint32_t lens = word(d, IG__PK_E_ROW_LEN / 4, i);
	entry_t e = {.val_len = word(d, IG__PK_E_VAL_LEN / 4, i),
		     .row_len = lens >> 16, .col_len = lens & 0xffff};
	uint32_t prefix = word(d, W_ROW, i), col_shared = word(d, W_COL, i);
	bool row_shared = i && prefix == e.row_len && prefix == l->row_len;
	int rc = check_words(d, i, &e, l, prefix, col_shared, row_shared);

	if (rc == 0)
		rc = place(d, i, &e, l, prefix, !row_shared, !col_shared);
	if (rc == 0)
		rc = check_key(d, i, &e, l, prefix, !row_shared, !col_shared);
	if (rc != 0)
		return rc;
	uint8_t *o = d->out + IG_PACKED_HEADER + i * IG_PACKED_ENTRY;
	/* The words kept as they are (the timestamp, lengths, kind). */
	memcpy(o, d->plane[0] + 4 * i, 4);
	memcpy(o + 4, d->plane[1] + 4 * i, 4);
	memcpy(o + 20, d->plane[5] + 4 * i, 4);
	memcpy(o + 24, d->plane[6] + 4 * i, 4);
	memcpy(o + 28, d->plane[7] + 4 * i, 4);
	ig__st32(o + IG__PK_E_ROW_OFF, e.row_off);
	ig__st32(o + IG__PK_E_COL_OFF, e.col_off);
	ig__st32(o + IG__PK_E_VAL_OFF, e.val_off);
	*l = e;
	return 0;
}

int ig__columns_decode(const uint8_t *in, size_t len, uint8_t *out, size_t raw_len,
		       size_t *err_offset)
{
	dec_t d = {.in = in, .out = out, .err = err_offset};
	entry_t l = {0};

	if (len < IG_PACKED_OVERHEAD + IG__COLUMNS_SIZES || raw_len < IG_PACKED_OVERHEAD ||
	    len > raw_len + IG__COLUMNS_SIZES)
		return bad(&d, 0);
	d.n = ig__ld32(in + IG__PK_H_COUNT);
	if (d.n > (raw_len - IG_PACKED_OVERHEAD) / IG_PACKED_ENTRY ||
	    d.n > (len - IG_PACKED_OVERHEAD - IG__COLUMNS_SIZES) / IG_PACKED_ENTRY)
		return bad(&d, IG__PK_H_COUNT);
	size_t pool = IG_PACKED_HEADER + d.n * IG_PACKED_ENTRY, streams = pool + IG__COLUMNS_SIZES;
	size_t left = len - IG_PACKED_TRAILER - streams;
	uint32_t rows = ig__ld32(in + pool), cols = ig__ld32(in + pool + 4);
	if (rows > left || cols > left - rows)
		return bad(&d, pool);
	d.pool = out + pool;
	d.cursor = raw_len - IG_PACKED_TRAILER - pool;
	d.rs = in + streams;
	d.cs = d.end[0] = d.rs + rows;
	d.vs = d.end[1] = d.cs + cols;
	d.end[2] = in + len - IG_PACKED_TRAILER;
	for (size_t k = 0; k < WORDS; k++)
		d.plane[k] = in + plane_at(d.n, k, 0);
	memcpy(out, in, IG_PACKED_HEADER);
	for (size_t i = 0; i < d.n; i++) {
		int rc = decode_entry(&d, i, &l);
		if (rc != 0)
			return rc;
	}
	/* The strings fill the pool and use up every stream. */
	if (d.cursor != 0 || d.rs != d.end[0] || d.cs != d.end[1] || d.vs != d.end[2])
		return bad(&d, pool);
	memcpy(out + raw_len - IG_PACKED_TRAILER, in + len - IG_PACKED_TRAILER, IG_PACKED_TRAILER);
	return 0;
}
