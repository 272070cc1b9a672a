/* Internal to storage/: byte-string helpers shared by the cell order, the
 * packed block reader and the schema lookup. */
#ifndef INGOT_STORAGE_CELL_INT_H
#define INGOT_STORAGE_CELL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Bytewise order with a prefix first (memcmp over the common length, then
 * the shorter one wins). memcmp is skipped for n == 0 because its pointers
 * must be valid even then, and an empty view may carry NULL. */
static inline int ig__bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

static inline bool ig__bytes_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

#endif
