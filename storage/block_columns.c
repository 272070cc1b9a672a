/* The columnar coding of disk fragment blocks (block_columns_int.h says
 * why it exists; docs/formats.md, "Block frame", gives the layout). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ingot/storage.h>

#include "block_columns_int.h"
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

/* Byte b of word w of entry i in the planes that follow the header. */
static size_t plane_at(size_t n, size_t w, size_t b, size_t i)
{
	return IG_PACKED_HEADER + (w * 4 + b) * n + i;
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
		for (size_t b = 0; b < 4; b++)
			out[plane_at(x->n, k, b, i)] = (uint8_t)(w[k] >> (24 - 8 * b));
}

/* The streams: new row suffixes, new columns, values, in cell order. */
static size_t put_streams(const enc_t *x, uint8_t *out)
{
	uint8_t *o = out;

	for (int s = 0; s < 3; s++) {
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

typedef struct dec {
	const uint8_t *in;
	uint8_t *out;
	size_t n, pool, raw_len;
	size_t rows, cols, vals;   /* stream sizes */
	size_t *err;
} dec_t;

static int bad(dec_t *d, size_t at)
{
	*d->err = at;
	return IG_ECORRUPT;
}

/* Undoes the planes into out's entries: words still coded. It is the hot
 * loop of a read, so each word stands alone (no carried sum) and the four
 * planes of a word are read together. */
static void undo_planes(dec_t *d)
{
	for (size_t k = 0; k < WORDS; k++) {
		const uint8_t *p0 = d->in + plane_at(d->n, k, 0, 0), *p1 = p0 + d->n,
			      *p2 = p1 + d->n, *p3 = p2 + d->n;
		uint8_t *o = d->out + IG_PACKED_HEADER + 4 * k;

		for (size_t i = 0; i < d->n; i++, o += IG_PACKED_ENTRY) {
			o[0] = p0[i];
			o[1] = p1[i];
			o[2] = p2[i];
			o[3] = p3[i];
		}
	}
}

static bool row_shared(size_t i, uint32_t prefix, const entry_t *e, const entry_t *l)
{
	return i && prefix == e->row_len && prefix == l->row_len;
}

/* Checks the coded words and sizes the streams and the pool they fill. */
static int size_streams(dec_t *d)
{
	entry_t l = {0};
	size_t need = 0;

	for (size_t i = 0; i < d->n; i++) {
		entry_t e = entry_at(d->out + IG_PACKED_HEADER + i * IG_PACKED_ENTRY);
		uint32_t prefix = e.row_off, col_shared = e.col_off;

		if (e.val_off != 0)
			return bad(d, plane_at(d->n, W_VAL, 0, i));
		if (col_shared > 1 || (col_shared && (i == 0 || e.col_len != l.col_len)))
			return bad(d, plane_at(d->n, W_COL, 0, i));
		if (!row_shared(i, prefix, &e, &l)) {
			if (prefix > e.row_len || prefix > l.row_len)
				return bad(d, plane_at(d->n, W_ROW, 0, i));
			d->rows += e.row_len - prefix;
			need += e.row_len;
		}
		if (!col_shared) {
			d->cols += e.col_len;
			need += e.col_len;
		}
		d->vals += e.val_len;
		need += e.val_len;
		l = e;
	}
	if (need != d->raw_len - IG_PACKED_TRAILER - d->pool)
		return bad(d, d->pool);
	return 0;
}

/* Places cell strings from the pool's end down, as the builder does. */
static void place(dec_t *d)
{
	const uint8_t *rs = d->in + d->pool, *cs = rs + d->rows, *vs = cs + d->cols;
	uint8_t *pool = d->out + d->pool;
	size_t cursor = d->raw_len - IG_PACKED_TRAILER - d->pool;
	entry_t l = {0};

	for (size_t i = 0; i < d->n; i++) {
		uint8_t *p = d->out + IG_PACKED_HEADER + i * IG_PACKED_ENTRY;
		entry_t e = entry_at(p), coded = e;
		bool new_row = !row_shared(i, coded.row_off, &e, &l), new_col = !coded.col_off;

		cursor -= (new_row ? e.row_len : 0) + (new_col ? e.col_len : 0) + (size_t)e.val_len;
		size_t at = cursor;
		e.row_off = new_row ? (uint32_t)at : l.row_off;
		if (new_row) {
			memcpy(pool + at, pool + l.row_off, coded.row_off);
			memcpy(pool + at + coded.row_off, rs, e.row_len - coded.row_off);
			rs += e.row_len - coded.row_off;
			at += e.row_len;
		}
		e.col_off = new_col ? (uint32_t)at : l.col_off;
		if (new_col) {
			memcpy(pool + at, cs, e.col_len);
			cs += e.col_len;
			at += e.col_len;
		}
		e.val_off = e.val_len ? (uint32_t)at : 0;
		memcpy(pool + at, vs, e.val_len);
		vs += e.val_len;
		ig__st32(p + IG__PK_E_ROW_OFF, e.row_off);
		ig__st32(p + IG__PK_E_COL_OFF, e.col_off);
		ig__st32(p + IG__PK_E_VAL_OFF, e.val_off);
		l = e;
	}
}

int ig__columns_decode(const uint8_t *in, size_t len, uint8_t *out, size_t raw_len,
		       size_t *err_offset)
{
	dec_t d = {.in = in, .out = out, .raw_len = raw_len, .err = err_offset};

	if (len < IG_PACKED_OVERHEAD || raw_len < IG_PACKED_OVERHEAD || len > raw_len)
		return bad(&d, 0);
	d.n = ig__ld32(in + IG__PK_H_COUNT);
	if (d.n > (len - IG_PACKED_OVERHEAD) / IG_PACKED_ENTRY)
		return bad(&d, IG__PK_H_COUNT);
	d.pool = IG_PACKED_HEADER + d.n * IG_PACKED_ENTRY;
	memcpy(out, in, IG_PACKED_HEADER);
	undo_planes(&d);
	int rc = size_streams(&d);
	if (rc != 0)
		return rc;
	if (d.pool + d.rows + d.cols + d.vals + IG_PACKED_TRAILER != len)
		return bad(&d, d.pool);
	place(&d);
	memcpy(out + raw_len - IG_PACKED_TRAILER, in + len - IG_PACKED_TRAILER, IG_PACKED_TRAILER);
	return 0;
}
