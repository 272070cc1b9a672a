/* Helpers shared by the storage tests: cells from C strings, and a
 * deterministic PRNG so random tests repeat exactly. */
#ifndef INGOT_TESTS_STORAGE_CELLS_H
#define INGOT_TESTS_STORAGE_CELLS_H

#include <stdint.h>
#include <string.h>

#include <ingot/storage.h>

static inline ig_cell_t cell_set(const char *row, const char *col, int64_t ts, const char *val)
{
	ig_cell_t c = {
		.key = {.row = row, .row_len = (uint32_t)strlen(row), .column = col,
			.column_len = (uint32_t)strlen(col), .timestamp = ts},
		.value = val, .value_len = (uint32_t)strlen(val), .kind = IG_CELL_SET,
	};
	return c;
}

static inline ig_cell_t cell_erase(const char *row, const char *col, int64_t ts)
{
	ig_cell_t c = {
		.key = {.row = row, .row_len = (uint32_t)strlen(row), .column = col,
			.column_len = (uint32_t)strlen(col), .timestamp = ts},
		.kind = IG_CELL_ERASURE,
	};
	return c;
}

static inline int bytes_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Same key, kind and value bytes. */
static inline int cells_equal(const ig_cell_t *a, const ig_cell_t *b)
{
	return bytes_eq(a->key.row, a->key.row_len, b->key.row, b->key.row_len) &&
	       bytes_eq(a->key.column, a->key.column_len, b->key.column, b->key.column_len) &&
	       a->key.timestamp == b->key.timestamp && a->kind == b->kind &&
	       bytes_eq(a->value, a->value_len, b->value, b->value_len);
}

/* xorshift64*: small, fast, and the same sequence on every machine. */
static inline uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

#endif
