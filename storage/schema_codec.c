/* The table schema record (storage/schema_codec_int.h; bytes in
 * docs/formats.md, "Table schema record").
 *
 * The encoder sizes the record first and then fills it. The decoder checks
 * the header, the length and the CRC32C before it parses anything, then
 * checks only what makes the bytes well-formed (lengths inside the record,
 * no NUL inside a name, known flag bits, a resolved block size, nothing
 * left over) and leaves every rule about values to ig_schema_create, so
 * there is one definition of a valid schema. Allocations are bounded by
 * the record: every count is compared with the bytes that remain before
 * anything is allocated for it.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ingot/error.h>
#include <ingot/storage.h>

#include "packed_int.h"
#include "schema_codec_int.h"

/* Smallest group entry: empty name, the fixed fields, no families. */
#define SC_GROUP_MIN (1 + IG__SC_G_FIXED)
/* Smallest record: header, one such group, CRC. */
#define SC_RECORD_MIN (IG__SC_HEADER + SC_GROUP_MIN + 4)

/* ---- encode ------------------------------------------------------------- */

static size_t group_size(const ig_group_config_t *g)
{
	size_t n = 1 + strlen(g->name) + IG__SC_G_FIXED;
	for (size_t j = 0; j < g->nfamilies; j++)
		n += 1 + strlen(g->families[j]);
	return n;
}

/* A u8 length and the bytes: schema validation keeps names within 255. */
static uint8_t *put_str8(uint8_t *p, const char *s)
{
	size_t n = strlen(s);
	*p = (uint8_t)n;
	memcpy(p + 1, s, n);
	return p + 1 + n;
}

static uint8_t *put_group(uint8_t *p, const ig_group_config_t *g)
{
	p = put_str8(p, g->name);
	p[IG__SC_G_FLAGS] = (uint8_t)((g->wildcard ? IG__SC_WILDCARD : 0) |
				      (g->in_memory ? IG__SC_IN_MEMORY : 0));
	p[IG__SC_G_COMPRESSION] = (uint8_t)g->compression;
	p[IG__SC_G_LEVEL] = (uint8_t)g->level;
	ig__st32(p + IG__SC_G_BLOCK, g->block_size);
	ig__st32(p + IG__SC_G_HISTORY, g->max_history);
	ig__st64(p + IG__SC_G_AGE, (uint64_t)g->max_age);
	ig__st32(p + IG__SC_G_NFAMILIES, (uint32_t)g->nfamilies);
	p += IG__SC_G_FIXED;
	for (size_t j = 0; j < g->nfamilies; j++)
		p = put_str8(p, g->families[j]);
	return p;
}

int ig__schema_encode(const ig_schema_t *s, uint8_t **out, size_t *out_len)
{
	if (!s || !out || !out_len)
		return IG_EINVAL;
	size_t ng = ig_schema_group_count(s), len = IG__SC_HEADER + 4;
	for (size_t i = 0; i < ng && len <= IG__SC_BYTES_MAX; i++)
		len += group_size(ig_schema_group(s, i));
	if (len > IG__SC_BYTES_MAX)
		return IG_ERANGE;
	uint8_t *buf = malloc(len);
	if (!buf)
		return IG_ENOMEM;
	ig__st32(buf + IG__SC_H_MAGIC, IG__SC_MAGIC);
	buf[IG__SC_H_VERSION] = IG__SC_VERSION;
	buf[IG__SC_H_FLAGS] = 0;
	ig__st16(buf + IG__SC_H_GROUPS, (uint16_t)ng);
	ig__st32(buf + IG__SC_H_LENGTH, (uint32_t)len);
	uint8_t *p = buf + IG__SC_HEADER;
	for (size_t i = 0; i < ng; i++)
		p = put_group(p, ig_schema_group(s, i));
	ig__st32(p, ig_crc32c(0, buf, len - 4));
	*out = buf;
	*out_len = len;
	return 0;
}

/* ---- decode: a cursor over untrusted bytes ------------------------------ */

typedef struct sr {
	const uint8_t *p;
	size_t end;      /* the CRC field: parsing stops here */
	size_t off;
	size_t bad;      /* the first bad byte, once a check failed */
	char *why;       /* the caller's, may be NULL */
	size_t why_len;
	char *strings;   /* names, NUL-terminated, back to back */
	size_t nstr;     /* bytes of strings used */
} sr_t;

static int sr_fail(sr_t *r, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records the offset and the reason "offset N: ..." and returns
 * IG_ECORRUPT, so each check reads `return sr_fail(...)`. */
static int sr_fail(sr_t *r, size_t at, const char *fmt, ...)
{
	r->bad = at;
	if (r->why && r->why_len > 0) {
		int n = snprintf(r->why, r->why_len, "schema record, offset %zu: ", at);
		if (n >= 0 && (size_t)n < r->why_len) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(r->why + n, r->why_len - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return IG_ECORRUPT;
}

static int sr_need(sr_t *r, size_t n, const char *what)
{
	if (r->end - r->off >= n)
		return 0;
	return sr_fail(r, r->end, "%s runs past the end of the record", what);
}

/* A u8-length name, copied into r->strings. A NUL inside would cut the
 * name short, so the schema would silently differ from the record. */
static int sr_str(sr_t *r, const char *what, const char **out)
{
	int rc = sr_need(r, 1, what);
	if (rc)
		return rc;
	size_t n = r->p[r->off];
	if ((rc = sr_need(r, 1 + n, what)) != 0)
		return rc;
	const uint8_t *s = r->p + r->off + 1;
	const uint8_t *nul = memchr(s, '\0', n);
	if (nul)
		return sr_fail(r, (size_t)(nul - r->p), "%s holds a NUL byte", what);
	char *dst = r->strings + r->nstr;
	memcpy(dst, s, n);
	dst[n] = '\0';
	r->nstr += n + 1;
	r->off += 1 + n;
	*out = dst;
	return 0;
}

/* ---- decode: header and groups ------------------------------------------ */

/* Header checks, in byte order, before anything is allocated. */
static int sc_header(sr_t *r, size_t len)
{
	const uint8_t *b = r->p;
	if (len < SC_RECORD_MIN)
		return sr_fail(r, len, "%zu bytes are fewer than the smallest record (%u)", len,
			       (unsigned)SC_RECORD_MIN);
	if (ig__ld32(b + IG__SC_H_MAGIC) != IG__SC_MAGIC)
		return sr_fail(r, IG__SC_H_MAGIC, "not a schema record (magic)");
	if (b[IG__SC_H_VERSION] != IG__SC_VERSION)
		return sr_fail(r, IG__SC_H_VERSION, "unknown version %u", b[IG__SC_H_VERSION]);
	if (b[IG__SC_H_FLAGS] != 0)
		return sr_fail(r, IG__SC_H_FLAGS, "unknown flags 0x%02x", b[IG__SC_H_FLAGS]);
	uint32_t ng = ig__ld16(b + IG__SC_H_GROUPS);
	if (ng == 0 || ng > IG_GROUPS_MAX || (size_t)ng * SC_GROUP_MIN > len - IG__SC_HEADER - 4)
		return sr_fail(r, IG__SC_H_GROUPS, "group count %u is outside 1..%u or cannot fit",
			       ng, IG_GROUPS_MAX);
	uint32_t n = ig__ld32(b + IG__SC_H_LENGTH);
	if (n != len || len > IG__SC_BYTES_MAX)
		return sr_fail(r, IG__SC_H_LENGTH, "length field %u, but the record has %zu bytes",
			       n, len);
	if (ig__ld32(b + len - 4) != ig_crc32c(0, b, len - 4))
		return sr_fail(r, len - 4, "checksum mismatch");
	return 0;
}

/* The fixed fields after a group's name. */
static int sr_fixed(sr_t *r, ig_group_config_t *g, uint32_t *nfam)
{
	int rc = sr_need(r, IG__SC_G_FIXED, "a group's fields");
	if (rc)
		return rc;
	const uint8_t *q = r->p + r->off;
	unsigned flags = q[IG__SC_G_FLAGS];
	if (flags & ~(IG__SC_WILDCARD | IG__SC_IN_MEMORY))
		return sr_fail(r, r->off + IG__SC_G_FLAGS, "unknown group flags 0x%02x", flags);
	g->wildcard = flags & IG__SC_WILDCARD;
	g->in_memory = flags & IG__SC_IN_MEMORY;
	/* Out-of-range compression and level are values ig_schema_create
	 * refuses with a reason; here they only need to be carried over. */
	g->compression = (ig_compression_t)q[IG__SC_G_COMPRESSION];
	g->level = q[IG__SC_G_LEVEL];
	g->block_size = ig__ld32(q + IG__SC_G_BLOCK);
	if (g->block_size == 0)  /* 0 would decode as the default: not canonical */
		return sr_fail(r, r->off + IG__SC_G_BLOCK, "block size 0 (the encoder resolves it)");
	g->max_history = ig__ld32(q + IG__SC_G_HISTORY);
	g->max_age = ig__u2i64(ig__ld64(q + IG__SC_G_AGE));
	*nfam = ig__ld32(q + IG__SC_G_NFAMILIES);
	size_t at = r->off + IG__SC_G_NFAMILIES;
	r->off += IG__SC_G_FIXED;
	/* Each family takes at least its length byte. */
	if (*nfam > r->end - r->off)
		return sr_fail(r, at, "family count %u cannot fit in the %zu bytes left", *nfam,
			       r->end - r->off);
	return 0;
}

/* One group entry. g->families is malloc'd here and freed by sc_free. */
static int sr_group(sr_t *r, ig_group_config_t *g)
{
	uint32_t nfam = 0;
	int rc = sr_str(r, "a group name", &g->name);
	if (rc == 0)
		rc = sr_fixed(r, g, &nfam);
	if (rc || nfam == 0)
		return rc;
	const char **fams = calloc(nfam, sizeof *fams);
	if (!fams)
		return IG_ENOMEM;
	g->families = fams;
	g->nfamilies = nfam;
	for (uint32_t j = 0; j < nfam; j++)
		if ((rc = sr_str(r, "a family name", &fams[j])) != 0)
			return rc;
	return 0;
}

static void sc_free(ig_group_config_t *groups, size_t ng)
{
	for (size_t i = 0; groups && i < ng; i++)
		free((void *)groups[i].families);
	free(groups);
}

/* Parses every group; the names point into r->strings. */
static int sc_groups(sr_t *r, ig_group_config_t *groups, size_t ng)
{
	for (size_t i = 0; i < ng; i++) {
		int rc = sr_group(r, &groups[i]);
		if (rc)
			return rc;
	}
	if (r->off != r->end)
		return sr_fail(r, r->off, "%zu bytes left over after the last group",
			       r->end - r->off);
	return 0;
}

/* Parses the body and builds the schema; the parts are freed either way. */
static int sc_build(sr_t *r, size_t len, ig_schema_t **out)
{
	ig_schema_config_t cfg = { .ngroups = ig__ld16(r->p + IG__SC_H_GROUPS) };
	ig_group_config_t *groups = calloc(cfg.ngroups, sizeof *groups);
	/* A name's length byte pays for its NUL, so len bytes hold them all. */
	r->strings = malloc(len);
	int rc = IG_ENOMEM;
	if (groups && r->strings)
		rc = sc_groups(r, groups, cfg.ngroups);
	cfg.groups = groups;
	if (rc == 0)
		rc = ig_schema_create(&cfg, out, r->why, r->why_len);
	sc_free(groups, cfg.ngroups);
	free(r->strings);
	return rc;
}

int ig__schema_decode(const void *buf, size_t len, ig_schema_t **out, size_t *err_off,
		      char *why, size_t why_len)
{
	if (!out || (!buf && len))
		return IG_EINVAL;
	sr_t r = { .p = buf, .end = len >= 4 ? len - 4 : 0, .off = IG__SC_HEADER,
		   .why = why, .why_len = why_len };
	int rc = sc_header(&r, len);
	if (rc == 0)
		rc = sc_build(&r, len, out);
	if (rc == IG_ECORRUPT && err_off)
		*err_off = r.bad;
	return rc;
}
