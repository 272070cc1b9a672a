/* libFuzzer target for packed cell blocks (ig_packed_open on untrusted
 * bytes, storage/packed_read.c; format in docs/formats.md, "Packed cell
 * block").
 *
 * Each input is read twice: as given, and with its length field and CRC32C
 * trailer rewritten to match, so the fuzzer reaches the entry checks behind
 * the checksum instead of spending itself on forging it. A refusal must be
 * IG_ECORRUPT with an offset inside the input. An accepted block must give
 * only valid cells inside its bytes, in strict order if it says sorted, and
 * seek must find each of them; encoding its cells again must give a block
 * holding the same cells, and encoding that once more the same bytes (the
 * builder's output is canonical). A fixed schema checks the families.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/storage.h>

#define CHECK(e)                                                                       \
	do {                                                                           \
		if (!(e)) {                                                            \
			fprintf(stderr, "fuzz_packed_cells: check failed: %s (%s:%d)\n", \
				#e, __FILE__, __LINE__);                               \
			abort();                                                       \
		}                                                                      \
	} while (0)

static ig_schema_t *schema;

static void drop_schema(void)
{
	ig_schema_unref(schema);
}

/* Families a, b, f in one group, c in another, no wildcard: inputs hit
 * both the accept and the reject path of ig_schema_check_packed. */
static ig_schema_t *get_schema(void)
{
	static const char *const g0[] = {"a", "b", "f"};
	static const char *const g1[] = {"c"};
	static const ig_group_config_t groups[] = {
		{.name = "g0", .families = g0, .nfamilies = 3},
		{.name = "g1", .families = g1, .nfamilies = 1,
		 .compression = IG_COMPRESSION_ZSTD, .level = 3},
	};
	static const ig_schema_config_t cfg = {groups, 2};
	char why[256];

	if (schema == NULL) {
		CHECK(ig_schema_create(&cfg, &schema, why, sizeof why) == 0);
		atexit(drop_schema);
	}
	return schema;
}

static int same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int same_cell(const ig_cell_t *x, const ig_cell_t *y)
{
	return same_bytes(x->key.row, x->key.row_len, y->key.row, y->key.row_len) &&
	       same_bytes(x->key.column, x->key.column_len, y->key.column, y->key.column_len) &&
	       x->key.timestamp == y->key.timestamp && x->kind == y->kind &&
	       same_bytes(x->value, x->value_len, y->value, y->value_len);
}

static int inside(const void *p, size_t n, const uint8_t *b, size_t len)
{
	const uint8_t *q = p;
	return n == 0 || (q >= b && q + n <= b + len);
}

static void read_block(const uint8_t *b, size_t len)
{
	ig_packed_t p;
	size_t off = SIZE_MAX;
	int rc = ig_packed_open(b, len, &p, &off);

	if (rc != 0) {
		CHECK(rc == IG_ECORRUPT);
		CHECK(off <= len);
		return;
	}

	uint32_t n = ig_packed_count(&p);
	ig_cell_t *cells = malloc(((size_t)n + 1) * sizeof *cells);
	CHECK(cells != NULL);
	for (uint32_t i = 0; i < n; i++) {
		ig_cell_t *c = &cells[i];
		CHECK(ig_packed_cell(&p, i, c) == 0);
		CHECK(ig_cell_check(c) == 0);
		CHECK(inside(c->key.row, c->key.row_len, b, len));
		CHECK(inside(c->key.column, c->key.column_len, b, len));
		CHECK(inside(c->value, c->value_len, b, len));
		if (i > 0 && ig_packed_is_sorted(&p))
			CHECK(ig_cell_key_cmp(&cells[i - 1].key, &c->key) < 0);
	}
	CHECK(ig_packed_cell(&p, n, &cells[n]) == IG_ERANGE);
	if (ig_packed_is_sorted(&p)) {
		for (uint32_t i = 0; i < n; i++) {
			uint32_t at;
			CHECK(ig_packed_seek(&p, &cells[i].key, &at) == 0);
			CHECK(at == i);
		}
	}

	uint32_t bad = UINT32_MAX;
	rc = ig_schema_check_packed(get_schema(), &p, &bad, NULL, 0);
	if (rc != 0) {
		size_t g;
		CHECK(rc == IG_EINVAL && bad < n);
		const ig_cell_t *c = &cells[bad];
		uint32_t flen = ig_column_family_len(c->key.column, c->key.column_len);
		CHECK(ig_schema_group_of(get_schema(), c->key.column, flen, &g) == IG_ENOTFOUND);
	}

	/* Re-encode: same cells, then a fixed point. */
	unsigned flags = ig_packed_is_sorted(&p) ? IG_PACKED_SORTED : 0;
	size_t need, len1, len2;
	CHECK(ig_packed_size(cells, n, &need) == 0);
	uint8_t *one = malloc(need), *two = malloc(need);
	CHECK(one != NULL && two != NULL);
	CHECK(ig_packed_encode(cells, n, flags, one, need, &len1) == 0);
	CHECK(len1 == need);

	ig_packed_t q;
	CHECK(ig_packed_open(one, len1, &q, NULL) == 0);
	CHECK(ig_packed_count(&q) == n);
	CHECK(ig_packed_is_sorted(&q) == ig_packed_is_sorted(&p));
	ig_cell_t *again = malloc(((size_t)n + 1) * sizeof *again);
	CHECK(again != NULL);
	for (uint32_t i = 0; i < n; i++) {
		CHECK(ig_packed_cell(&q, i, &again[i]) == 0);
		CHECK(same_cell(&again[i], &cells[i]));
	}
	CHECK(ig_packed_encode(again, n, flags, two, need, &len2) == 0);
	CHECK(len2 == len1 && memcmp(one, two, len1) == 0);

	free(again);
	free(two);
	free(one);
	free(cells);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_block(data, size);

	/* The same bytes with a matching length and checksum. */
	if (size >= IG_PACKED_OVERHEAD && size <= IG_PACKED_MAX) {
		uint8_t *b = malloc(size);
		CHECK(b != NULL);
		memcpy(b, data, size);
		uint32_t n = (uint32_t)size;
		b[12] = (uint8_t)(n >> 24);
		b[13] = (uint8_t)(n >> 16);
		b[14] = (uint8_t)(n >> 8);
		b[15] = (uint8_t)n;
		uint32_t crc = ig_crc32c(0, b, size - 4);
		b[size - 4] = (uint8_t)(crc >> 24);
		b[size - 3] = (uint8_t)(crc >> 16);
		b[size - 2] = (uint8_t)(crc >> 8);
		b[size - 1] = (uint8_t)crc;
		read_block(b, size);
		free(b);
	}
	return 0;
}
