/* Helpers shared by the store tests (tests/actors/test_store*.c): a
 * scratch directory, a one-group schema, blocks of cells built from
 * "row"/"value" strings, and scanning a table into a string per cell so
 * tests compare whole contents. Everything is static inline.
 */
#ifndef INGOT_TESTS_ACTORS_STORE_UTIL_H
#define INGOT_TESTS_ACTORS_STORE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ingot/store.h>

/* ---- directories ---------------------------------------------------------------- */

static inline void su_make_dir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/ingot-store-XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static inline void su_remove_dir(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- schemas -------------------------------------------------------------------- */

/* One group "g" holding families "a" and "b", zstd 3, small blocks. */
static inline void su_create_table(ig_store_t *s, const char *name)
{
	static const char *const fams[] = {"a", "b"};
	ig_group_config_t g = {.name = "g", .families = fams, .nfamilies = 2,
			       .compression = IG_COMPRESSION_ZSTD, .level = 3,
			       .block_size = 4096};
	ig_schema_config_t c = {.groups = &g, .ngroups = 1};
	char why[256] = "";

	if (ig_store_create_table(s, name, &c, why, sizeof why) != 0)
		fail_msg("create table %s: %s", name, why);
}

/* ---- blocks ---------------------------------------------------------------------- */

/* A block of n cells: rows[i], column "a:q", timestamp ts, values[i]
 * (NULL value: an erasure). Ownership: *out is malloc'd. */
static inline size_t su_block(const char *const *rows, const char *const *values, size_t n,
			      int64_t ts, void **out)
{
	ig_cell_t *c = calloc(n, sizeof *c);
	size_t len = 0;
	void *buf;

	assert_non_null(c);
	for (size_t i = 0; i < n; i++) {
		c[i].key = (ig_cell_key_t){.row = rows[i], .row_len = (uint32_t)strlen(rows[i]),
					   .column = "a:q", .column_len = 3, .timestamp = ts};
		c[i].kind = values[i] ? IG_CELL_SET : IG_CELL_ERASURE;
		c[i].value = values[i];
		c[i].value_len = values[i] ? (uint32_t)strlen(values[i]) : 0;
	}
	assert_int_equal(ig_packed_size(c, n, &len), 0);
	buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(ig_packed_encode(c, n, 0, buf, len, &len), 0);
	free(c);
	*out = buf;
	return len;
}

/* Sets row=value (value NULL: erases row) at ts, synced. */
static inline uint64_t su_put(ig_table_t *t, const char *row, const char *value, int64_t ts)
{
	void *b;
	size_t len = su_block(&row, &value, 1, ts, &b);
	uint64_t txn = 0;
	char why[256] = "";

	if (ig_store_apply(t, b, len, IG_STORE_ANY_TXN, IG_STORE_SYNC, &txn, why, sizeof why))
		fail_msg("apply %s: %s", row, why);
	free(b);
	return txn;
}

/* ---- scanning -------------------------------------------------------------------- */

/* Scans t (all rows, newest version of each column) into "row=value\n"
 * lines. Ownership: the caller frees the result. */
static inline char *su_dump(ig_table_t *t)
{
	ig_scan_options_t o;
	ig_scanner_t *sc;
	ig_cell_t c;
	size_t cap = 256, len = 0;
	char *out = malloc(cap);
	int rc;

	assert_non_null(out);
	out[0] = 0;
	ig_scan_options_init(&o);
	o.max_versions = 1;
	assert_int_equal(ig_scanner_open(t, &o, &sc), 0);
	while ((rc = ig_scanner_next(sc, &c)) == 1) {
		size_t need = len + c.key.row_len + c.value_len + 3;

		if (need > cap) {
			cap = 2 * need;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		memcpy(out + len, c.key.row, c.key.row_len);
		len += c.key.row_len;
		out[len++] = '=';
		memcpy(out + len, c.value, c.value_len);
		len += c.value_len;
		out[len++] = '\n';
		out[len] = 0;
	}
	if (rc != 0)
		fail_msg("scan: %s", ig_scanner_error(sc));
	ig_scanner_close(sc);
	return out;
}

#endif
