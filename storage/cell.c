/* Cells: the store's key order and the limits every cell obeys.
 *
 * The order is the one DESIGN.md fixes (row ascending, column ascending,
 * timestamp descending) plus one tie-break of our own: at an equal key an
 * erasure sorts before a set, so a scan meets the erasure first and hides
 * what it covers without buffering.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ingot/storage.h>

#include "cell_int.h"

int ig_cell_key_cmp(const ig_cell_key_t *a, const ig_cell_key_t *b)
{
	int c = ig__bytes_cmp(a->row, a->row_len, b->row, b->row_len);

	if (c != 0)
		return c;
	c = ig__bytes_cmp(a->column, a->column_len, b->column, b->column_len);
	if (c != 0)
		return c;
	/* Descending: the newer version of a column comes first, so a reader
	 * wanting the latest value stops at the first cell it meets. Compared,
	 * never subtracted: INT64_MIN - 1 would overflow. */
	return (a->timestamp < b->timestamp) - (a->timestamp > b->timestamp);
}

int ig_cell_cmp(const ig_cell_t *a, const ig_cell_t *b)
{
	int c = ig_cell_key_cmp(&a->key, &b->key);

	if (c != 0)
		return c;
	/* IG_CELL_ERASURE (1) before IG_CELL_SET (0). */
	return (a->kind == IG_CELL_SET) - (b->kind == IG_CELL_SET);
}

bool ig_family_valid(const void *name, size_t len)
{
	const unsigned char *p = name;

	if (len == 0 || len > IG_FAMILY_MAX || p == NULL)
		return false;
	/* Printable ASCII only: a family appears in schemas, error messages
	 * and file listings, and ':' ends it inside a column. */
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ':')
			return false;
	return true;
}

uint32_t ig_column_family_len(const void *column, uint32_t column_len)
{
	const unsigned char *p = column;

	if (p == NULL)
		return 0;
	/* The family may not hold ':', so the first one ends it; looking past
	 * IG_FAMILY_MAX bytes cannot find a valid family. */
	uint32_t n = column_len < IG_FAMILY_MAX + 1 ? column_len : IG_FAMILY_MAX + 1;
	const unsigned char *colon = memchr(p, ':', n);

	if (colon == NULL)
		return 0;
	uint32_t flen = (uint32_t)(colon - p);
	return ig_family_valid(p, flen) ? flen : 0;
}

int ig_cell_check(const ig_cell_t *cell)
{
	const ig_cell_key_t *k = &cell->key;

	if (k->row_len == 0 || k->row_len > IG_ROW_MAX || k->row == NULL)
		return IG_EINVAL;
	if (k->column_len > IG_COLUMN_MAX || k->column == NULL)
		return IG_EINVAL;
	if (ig_column_family_len(k->column, k->column_len) == 0)
		return IG_EINVAL;
	if (cell->value_len > IG_VALUE_MAX || (cell->value_len > 0 && cell->value == NULL))
		return IG_EINVAL;
	if (cell->kind == IG_CELL_ERASURE) {
		if (cell->value_len != 0)
			return IG_EINVAL;
	} else if (cell->kind != IG_CELL_SET) {
		return IG_EINVAL;
	}
	return 0;
}
