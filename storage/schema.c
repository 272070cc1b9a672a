/* Table schemas: locality groups of column families, their validation with
 * readable reasons, the family -> group map, and the check that rejects a
 * mutation whose families the schema does not hold.
 *
 * A schema is immutable once built and reference-counted, so tablets,
 * scans and a pending ALTER can share one without copying or locking.
 * Families are kept in one sorted array and found by binary search: a
 * table has tens of families, and mutations usually repeat the previous
 * cell's family, which the packed check catches before searching.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/storage.h>

#include "cell_int.h"

/* One family name and the group that holds it. */
typedef struct fam {
	const char *name;
	size_t len;
	size_t group;  /* index in the schema's groups */
	size_t pos;    /* index in its group's family list (for messages) */
} fam_t;

struct ig_schema {
	atomic_size_t refs;
	size_t ngroups;
	ig_group_config_t *groups;  /* our copies; names point into strings */
	const char **famptrs;       /* every group's family list, back to back */
	char *strings;              /* every name, NUL-terminated */
	fam_t *fams;                /* nfams, sorted by name */
	size_t nfams;
	size_t wildcard;            /* the wildcard group, or SIZE_MAX */
};

/* ---- reasons ---------------------------------------------------------- */

static int fail(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes a reason (cut to why_len, always NUL-terminated) and returns
 * IG_EINVAL, so every check reads `return fail(...)`. */
static int fail(char *why, size_t why_len, const char *fmt, ...)
{
	if (why != NULL && why_len > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return IG_EINVAL;
}

/* Quoted names may come from anywhere (a SQL statement, a mutation), so
 * they are shown escaped: printable ASCII as is, anything else as \xNN, and
 * at most 64 source bytes followed by "..." when longer. */
typedef struct quoted {
	char s[64 * 4 + 4];
} quoted_t;

static quoted_t quote(const void *name, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = name;
	quoted_t q;
	size_t o = 0, n = len > 64 ? 64 : len;

	for (size_t i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '\'') {
			q.s[o++] = (char)p[i];
		} else {
			q.s[o++] = '\\';
			q.s[o++] = 'x';
			q.s[o++] = hex[p[i] >> 4];
			q.s[o++] = hex[p[i] & 15];
		}
	}
	if (n < len) {
		memcpy(q.s + o, "...", 3);
		o += 3;
	}
	q.s[o] = '\0';
	return q;
}

/* ---- validation ------------------------------------------------------- */

static bool group_name_valid(const char *name, size_t *len_out)
{
	size_t len = 0;

	if (name == NULL)
		return false;
	/* Names become parts of file names, so a conservative alphabet. */
	for (; name[len] != '\0'; len++) {
		char c = name[len];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-';
		if (!ok || len >= IG_GROUP_NAME_MAX)
			return false;
	}
	*len_out = len;
	return len > 0;
}

/* Checks one group on its own (not against the others). */
static int check_group(const ig_group_config_t *g, size_t gi, char *why, size_t why_len)
{
	size_t nlen;

	if (g->name == NULL)
		return fail(why, why_len, "group %zu: the name is missing", gi);
	if (!group_name_valid(g->name, &nlen))
		return fail(why, why_len,
			    "group %zu: name '%s' must be 1..%u characters from [A-Za-z0-9_-]", gi,
			    quote(g->name, strnlen(g->name, 256)).s, IG_GROUP_NAME_MAX);

	const char *gn = g->name;
	if (g->nfamilies > 0 && g->families == NULL)
		return fail(why, why_len, "group '%s': families is NULL but nfamilies is %zu", gn,
			    g->nfamilies);
	if (g->nfamilies == 0 && !g->wildcard)
		return fail(why, why_len, "group '%s' names no family and is not the wildcard group",
			    gn);
	for (size_t j = 0; j < g->nfamilies; j++) {
		const char *f = g->families[j];
		if (f == NULL)
			return fail(why, why_len, "group '%s': family %zu is NULL", gn, j);
		size_t flen = strnlen(f, IG_FAMILY_MAX + 1);
		if (!ig_family_valid(f, flen))
			return fail(why, why_len,
				    "group '%s': family '%s' is not a valid family name "
				    "(1..%u printable ASCII characters, no ':')",
				    gn, quote(f, flen).s, IG_FAMILY_MAX);
	}

	switch (g->compression) {
	case IG_COMPRESSION_NONE:
		if (g->level != 0)
			return fail(why, why_len,
				    "group '%s': compression none takes no level, not %d", gn,
				    g->level);
		break;
	case IG_COMPRESSION_ZSTD:
		if (g->level < IG_ZSTD_LEVEL_MIN || g->level > IG_ZSTD_LEVEL_MAX)
			return fail(why, why_len, "group '%s': zstd level %d is outside %d..%d", gn,
				    g->level, IG_ZSTD_LEVEL_MIN, IG_ZSTD_LEVEL_MAX);
		break;
	default:
		return fail(why, why_len, "group '%s': unknown compression %d", gn,
			    (int)g->compression);
	}

	if (g->block_size != 0 &&
	    (g->block_size < IG_BLOCK_SIZE_MIN || g->block_size > IG_BLOCK_SIZE_MAX))
		return fail(why, why_len, "group '%s': block size %" PRIu32 " is outside %u..%u",
			    gn, g->block_size, IG_BLOCK_SIZE_MIN, IG_BLOCK_SIZE_MAX);
	if (g->max_age < 0 || g->max_age > IG_MAX_AGE_MAX)
		return fail(why, why_len,
			    "group '%s': max-age %" PRId64 " is outside 0..%" PRId64
			    " seconds (0 keeps versions forever)",
			    gn, g->max_age, (int64_t)IG_MAX_AGE_MAX);
	return 0;
}

/* Checks each group, then the rules between groups that do not involve
 * families: unique names, at most one wildcard group. */
static int check_groups(const ig_schema_config_t *cfg, char *why, size_t why_len)
{
	if (cfg == NULL || (cfg->ngroups > 0 && cfg->groups == NULL))
		return fail(why, why_len, "no schema description given");
	if (cfg->ngroups == 0)
		return fail(why, why_len, "a schema needs at least one locality group");
	if (cfg->ngroups > IG_GROUPS_MAX)
		return fail(why, why_len, "a schema has at most %u locality groups, not %zu",
			    IG_GROUPS_MAX, cfg->ngroups);

	size_t wild = SIZE_MAX;
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const ig_group_config_t *g = &cfg->groups[i];
		int rc = check_group(g, i, why, why_len);
		if (rc != 0)
			return rc;
		/* Quadratic, but over at most IG_GROUPS_MAX short names. */
		for (size_t k = 0; k < i; k++)
			if (strcmp(cfg->groups[k].name, g->name) == 0)
				return fail(why, why_len,
					    "group name '%s' is used twice (groups %zu and %zu)",
					    g->name, k, i);
		if (g->wildcard) {
			if (wild != SIZE_MAX)
				return fail(why, why_len,
					    "groups '%s' and '%s' are both wildcard groups; "
					    "a table has at most one",
					    cfg->groups[wild].name, g->name);
			wild = i;
		}
	}
	return 0;
}

static int fam_cmp(const void *a, const void *b)
{
	const fam_t *x = a, *y = b;
	int c = ig__bytes_cmp(x->name, x->len, y->name, y->len);

	if (c != 0)
		return c;
	/* Ties in configuration order, so a run of duplicates starts with the
	 * first two places the name appears. */
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

static bool fam_before(const fam_t *x, const fam_t *y)
{
	return x->group < y->group || (x->group == y->group && x->pos < y->pos);
}

/* Builds the sorted family index of groups that passed check_groups and
 * refuses a family named twice. Ownership: *out is malloc'd (NULL when
 * there are no families); the caller frees it. */
static int index_families(const ig_group_config_t *groups, size_t ngroups, fam_t **out,
			  size_t *nout, char *why, size_t why_len)
{
	size_t n = 0;

	for (size_t i = 0; i < ngroups; i++)
		n += groups[i].nfamilies;
	fam_t *fams = NULL;
	if (n > 0) {
		fams = calloc(n, sizeof *fams);
		if (fams == NULL)
			return IG_ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < ngroups; i++)
		for (size_t j = 0; j < groups[i].nfamilies; j++)
			fams[k++] = (fam_t){groups[i].families[j], strlen(groups[i].families[j]),
					    i, j};
	if (n > 1)
		qsort(fams, n, sizeof *fams, fam_cmp);

	/* Report the duplicate whose second mention comes first in the
	 * configuration, as a person reading it top-down would find it. */
	const fam_t *dup = NULL;
	for (size_t i = 1; i < n; i++)
		if (ig__bytes_eq(fams[i - 1].name, fams[i - 1].len, fams[i].name, fams[i].len) &&
		    (i < 2 || !ig__bytes_eq(fams[i - 2].name, fams[i - 2].len, fams[i].name,
					    fams[i].len)) &&
		    (dup == NULL || fam_before(&fams[i], dup)))
			dup = &fams[i];
	if (dup != NULL) {
		const fam_t *first = dup - 1;
		int rc;
		if (first->group == dup->group)
			rc = fail(why, why_len, "group '%s' names family '%s' twice",
				  groups[dup->group].name, dup->name);
		else
			rc = fail(why, why_len, "family '%s' is in both group '%s' and group '%s'",
				  dup->name, groups[first->group].name, groups[dup->group].name);
		free(fams);
		return rc;
	}
	*out = fams;
	*nout = n;
	return 0;
}

int ig_schema_validate(const ig_schema_config_t *cfg, char *why, size_t why_len)
{
	fam_t *fams;
	size_t n;
	int rc = check_groups(cfg, why, why_len);

	if (rc != 0)
		return rc;
	rc = index_families(cfg->groups, cfg->ngroups, &fams, &n, why, why_len);
	if (rc != 0)
		return rc;
	free(fams);
	return 0;
}

/* ---- building --------------------------------------------------------- */

static void schema_free(ig_schema_t *s)
{
	free(s->fams);
	free(s->strings);
	free(s->famptrs);
	free(s->groups);
	free(s);
}

static char *copy_str(char **at, const char *src)
{
	size_t n = strlen(src) + 1;
	char *dst = *at;

	memcpy(dst, src, n);
	*at += n;
	return dst;
}

int ig_schema_create(const ig_schema_config_t *cfg, ig_schema_t **out, char *why,
		     size_t why_len)
{
	int rc = check_groups(cfg, why, why_len);
	if (rc != 0)
		return rc;
	if (out == NULL)
		return fail(why, why_len, "no place to return the schema");

	size_t ng = cfg->ngroups, nf = 0, bytes = 0;
	for (size_t i = 0; i < ng; i++) {
		const ig_group_config_t *g = &cfg->groups[i];
		bytes += strlen(g->name) + 1;
		nf += g->nfamilies;
		for (size_t j = 0; j < g->nfamilies; j++)
			bytes += strlen(g->families[j]) + 1;
	}

	ig_schema_t *s = calloc(1, sizeof *s);
	if (s == NULL)
		return IG_ENOMEM;
	s->groups = calloc(ng, sizeof *s->groups);
	s->famptrs = nf ? calloc(nf, sizeof *s->famptrs) : NULL;
	s->strings = malloc(bytes);
	if (s->groups == NULL || (nf && s->famptrs == NULL) || s->strings == NULL) {
		schema_free(s);
		return IG_ENOMEM;
	}

	char *at = s->strings;
	const char **fp = s->famptrs;
	s->ngroups = ng;
	s->wildcard = SIZE_MAX;
	for (size_t i = 0; i < ng; i++) {
		ig_group_config_t *g = &s->groups[i];
		*g = cfg->groups[i];
		g->name = copy_str(&at, cfg->groups[i].name);
		g->families = g->nfamilies ? fp : NULL;
		for (size_t j = 0; j < g->nfamilies; j++)
			*fp++ = copy_str(&at, cfg->groups[i].families[j]);
		if (g->block_size == 0)
			g->block_size = IG_BLOCK_SIZE_DEFAULT;
		if (g->wildcard)
			s->wildcard = i;
	}

	rc = index_families(s->groups, ng, &s->fams, &s->nfams, why, why_len);
	if (rc != 0) {
		schema_free(s);
		return rc;
	}
	atomic_init(&s->refs, 1);
	*out = s;
	return 0;
}

ig_schema_t *ig_schema_ref(ig_schema_t *s)
{
	/* Relaxed: a new reference is made from an existing one, which
	 * already orders the schema's contents for this thread. */
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void ig_schema_unref(ig_schema_t *s)
{
	if (s == NULL)
		return;
	/* Release on every drop and acquire before the free, so no thread's
	 * last reads of the schema can be reordered after it is freed. */
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_release) == 1) {
		atomic_thread_fence(memory_order_acquire);
		schema_free(s);
	}
}

/* ---- lookups ---------------------------------------------------------- */

size_t ig_schema_group_count(const ig_schema_t *s)
{
	return s->ngroups;
}

const ig_group_config_t *ig_schema_group(const ig_schema_t *s, size_t i)
{
	return i < s->ngroups ? &s->groups[i] : NULL;
}

int ig_schema_group_of(const ig_schema_t *s, const void *family, size_t family_len,
		       size_t *group)
{
	size_t lo = 0, hi = s->nfams;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ig__bytes_cmp(s->fams[mid].name, s->fams[mid].len, family, family_len);
		if (c == 0) {
			*group = s->fams[mid].group;
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (s->wildcard == SIZE_MAX)
		return IG_ENOTFOUND;
	*group = s->wildcard;
	return 0;
}

int ig_schema_check_packed(const ig_schema_t *s, const ig_packed_t *p, uint32_t *bad_cell,
			   char *why, size_t why_len)
{
	/* ig_packed_open already proved every family well formed, and the
	 * wildcard group takes any well-formed family. */
	if (s->wildcard != SIZE_MAX)
		return 0;

	const void *last = NULL;
	uint32_t last_len = 0;
	for (uint32_t i = 0; i < ig_packed_count(p); i++) {
		ig_cell_t c;
		size_t g;

		ig_packed_cell(p, i, &c);
		uint32_t flen = ig_column_family_len(c.key.column, c.key.column_len);
		if (ig__bytes_eq(last, last_len, c.key.column, flen))
			continue;
		if (ig_schema_group_of(s, c.key.column, flen, &g) != 0) {
			if (bad_cell != NULL)
				*bad_cell = i;
			return fail(why, why_len,
				    "cell %" PRIu32 ": column family '%s' is in no locality group "
				    "of the schema",
				    i, quote(c.key.column, flen).s);
		}
		last = c.key.column;
		last_len = flen;
	}
	return 0;
}
