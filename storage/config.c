/* Tablet configs and the root config file (storage/config_int.h; bytes in
 * docs/formats.md, "Tablet config and root file").
 *
 * Encoders size the output first and then fill it, so they never write a
 * byte the decoder would refuse: both sides share the rules in tc_check and
 * the decoder repeats each check at the byte it concerns so that errors
 * carry an offset. Decoders check lengths and the CRC32C before parsing and
 * bound every allocation by the bytes that remain, so hostile input costs
 * at most a few times its own size. Encoders write only the current
 * version; decoders also read version 1 tablet configs, written before
 * fragments carried a txn range and a clip, so old META rows still load.
 *
 * The root file is replaced the only way that survives a crash: write a
 * temporary, fdatasync it, rename it over the old name, fsync the
 * directory so the rename itself is on disk. Readers only ever open
 * "root"; a torn "root.tmp" is garbage the next write truncates.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ingot/error.h>
#include <ingot/storage.h>

#include "config_int.h"
#include "packed_int.h"

/* ---- shared rules ------------------------------------------------------- */

/* Rows compare as unsigned bytes, a prefix before its extensions. */
static int row_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* A fragment name must stay inside its directory when joined to it. */
static bool name_ok(const uint8_t *s, size_t n)
{
	if (n == 0 || n > IG__TC_NAME_MAX)
		return false;
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	return memchr(s, '/', n) == NULL && memchr(s, '\0', n) == NULL;
}

static bool logdir_ok(const uint8_t *s, size_t n)
{
	return n >= 1 && n <= IG__TC_LOGDIR_MAX && memchr(s, '\0', n) == NULL;
}

/* A row range [lo, hi) is non-empty; hi_len 0 is +inf, lo_len 0 is -inf. */
static bool rows_ordered(const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len)
{
	return hi_len == 0 || row_cmp(lo, lo_len, hi, hi_len) < 0;
}

static bool range_ok(const ig__tconf_t *c)
{
	return rows_ordered(c->first_row, c->first_len, c->last_row, c->last_len);
}

static bool frag_ok(const ig__tc_frag_t *f)
{
	if (!f->name || !name_ok((const uint8_t *)f->name, strnlen(f->name, IG__TC_NAME_MAX + 1)))
		return false;
	if (f->min_txn > f->max_txn || f->lo_len > IG__TC_ROW_MAX || f->hi_len > IG__TC_ROW_MAX)
		return false;
	if ((f->lo_len && !f->lo) || (f->hi_len && !f->hi))
		return false;
	return rows_ordered(f->lo, f->lo_len, f->hi, f->hi_len);
}

static bool group_ok(const ig__tc_group_t *g)
{
	if (g->nfrags > IG__TC_FRAGS_MAX || (g->nfrags && !g->frags))
		return false;
	for (uint32_t i = 0; i < g->nfrags; i++) {
		if (!frag_ok(&g->frags[i]))
			return false;
		if (i > 0 && g->frags[i].max_txn > g->frags[i - 1].max_txn)
			return false;
	}
	return true;
}

static bool tc_check(const ig__tconf_t *c)
{
	if (!c || c->first_len > IG__TC_ROW_MAX || c->last_len > IG__TC_ROW_MAX)
		return false;
	if ((c->first_len && !c->first_row) || (c->last_len && !c->last_row))
		return false;
	if (!c->log_dir ||
	    !logdir_ok((const uint8_t *)c->log_dir, strnlen(c->log_dir, IG__TC_LOGDIR_MAX + 1)))
		return false;
	if (!range_ok(c) || c->ngroups > IG__TC_GROUPS_MAX || (c->ngroups && !c->groups))
		return false;
	for (uint32_t g = 0; g < c->ngroups; g++)
		if (!group_ok(&c->groups[g]))
			return false;
	return true;
}

/* ---- tablet config: encode ---------------------------------------------- */

/* Bytes c encodes to; tc_check(c) must hold. */
static size_t tc_size(const ig__tconf_t *c)
{
	size_t n = IG__TC_HEADER + 2 + c->first_len + 2 + c->last_len + 2 + strlen(c->log_dir);
	for (uint32_t g = 0; g < c->ngroups; g++) {
		n += 2;
		for (uint32_t i = 0; i < c->groups[g].nfrags; i++) {
			const ig__tc_frag_t *f = &c->groups[g].frags[i];
			n += 1 + strlen(f->name) + 8 + 8 + 2 + f->lo_len + 2 + f->hi_len;
		}
	}
	return n + 4;
}

static uint8_t *put_bytes(uint8_t *p, const void *s, size_t n)
{
	if (n)
		memcpy(p, s, n);
	return p + n;
}

static uint8_t *put_str16(uint8_t *p, const void *s, size_t n)
{
	ig__st16(p, (uint16_t)n);
	return put_bytes(p + 2, s, n);
}

static uint8_t *put_frag(uint8_t *p, const ig__tc_frag_t *f)
{
	size_t n = strlen(f->name);
	*p++ = (uint8_t)n;
	p = put_bytes(p, f->name, n);
	ig__st64(p, f->max_txn);
	ig__st64(p + 8, f->min_txn);
	p = put_str16(p + 16, f->lo, f->lo_len);
	return put_str16(p, f->hi, f->hi_len);
}

static void tc_fill(const ig__tconf_t *c, uint8_t *buf, size_t len)
{
	ig__st32(buf + IG__TC_H_MAGIC, IG__TC_MAGIC);
	buf[IG__TC_H_VERSION] = IG__TC_VERSION;
	buf[IG__TC_H_FLAGS] = 0;
	ig__st16(buf + IG__TC_H_GROUPS, (uint16_t)c->ngroups);
	ig__st32(buf + IG__TC_H_LENGTH, (uint32_t)len);
	ig__st64(buf + IG__TC_H_TABLE, c->table_id);
	ig__st64(buf + IG__TC_H_TABLET, c->tablet_id);
	ig__st64(buf + IG__TC_H_REPLAY, c->replay_txn);
	uint8_t *p = buf + IG__TC_HEADER;
	p = put_str16(p, c->first_row, c->first_len);
	p = put_str16(p, c->last_row, c->last_len);
	p = put_str16(p, c->log_dir, strlen(c->log_dir));
	for (uint32_t g = 0; g < c->ngroups; g++) {
		const ig__tc_group_t *gr = &c->groups[g];
		ig__st16(p, (uint16_t)gr->nfrags);
		p += 2;
		for (uint32_t i = 0; i < gr->nfrags; i++)
			p = put_frag(p, &gr->frags[i]);
	}
	ig__st32(p, ig_crc32c(0, buf, len - 4));
}

int ig__tconf_encode(const ig__tconf_t *c, uint8_t **out, size_t *out_len)
{
	if (!out || !out_len || !tc_check(c))
		return IG_EINVAL;
	size_t len = tc_size(c);
	if (len > IG__TC_BYTES_MAX)
		return IG_EINVAL;
	uint8_t *buf = malloc(len);
	if (!buf)
		return IG_ENOMEM;
	tc_fill(c, buf, len);
	*out = buf;
	*out_len = len;
	return 0;
}

/* ---- tablet config: decode ---------------------------------------------- */

/* A cursor over untrusted bytes; the first failure records its offset. */
typedef struct rd {
	const uint8_t *p;
	size_t end;        /* parsing stops here (the CRC is past it) */
	size_t off;
	size_t bad;
	unsigned version;  /* of the tablet config being read */
} rd_t;

static int rd_fail(rd_t *r, size_t at)
{
	r->bad = at;
	return IG_ECORRUPT;
}

static int rd_need(rd_t *r, size_t n)
{
	return r->end - r->off < n ? rd_fail(r, r->end) : 0;
}

static int rd_u16(rd_t *r, uint32_t *v)
{
	if (rd_need(r, 2))
		return IG_ECORRUPT;
	*v = ig__ld16(r->p + r->off);
	r->off += 2;
	return 0;
}

/* Copies n bytes out as a NUL-terminated string the caller owns. */
static int rd_dup(rd_t *r, size_t n, char **out)
{
	if (rd_need(r, n))
		return IG_ECORRUPT;
	char *s = malloc(n + 1);
	if (!s)
		return IG_ENOMEM;
	if (n)
		memcpy(s, r->p + r->off, n);
	s[n] = '\0';
	r->off += n;
	*out = s;
	return 0;
}

/* A length-prefixed row of at most IG__TC_ROW_MAX bytes (u16 guarantees it). */
static int rd_row(rd_t *r, uint8_t **row, uint32_t *len)
{
	int rc = rd_u16(r, len);
	return rc ? rc : rd_dup(r, *len, (char **)row);
}

static int rd_logdir(rd_t *r, ig__tconf_t *c)
{
	uint32_t n;
	size_t at = r->off;
	int rc = rd_u16(r, &n);
	if (rc)
		return rc;
	if (n > IG__TC_LOGDIR_MAX)
		return rd_fail(r, at);
	if (rd_need(r, n))
		return IG_ECORRUPT;
	if (!logdir_ok(r->p + r->off, n))
		return rd_fail(r, r->off);
	return rd_dup(r, n, &c->log_dir);
}

static int rd_u64(rd_t *r, uint64_t *v)
{
	if (rd_need(r, 8))
		return IG_ECORRUPT;
	*v = ig__ld64(r->p + r->off);
	r->off += 8;
	return 0;
}

/* Version 2's part of a fragment entry, after max_txn: min txn, clip. */
static int rd_frag_v2(rd_t *r, ig__tc_frag_t *f)
{
	size_t at = r->off;
	int rc = rd_u64(r, &f->min_txn);
	if (rc)
		return rc;
	if (f->min_txn > f->max_txn)
		return rd_fail(r, at);
	if ((rc = rd_row(r, &f->lo, &f->lo_len)) != 0)
		return rc;
	at = r->off;
	if ((rc = rd_row(r, &f->hi, &f->hi_len)) != 0)
		return rc;
	return rows_ordered(f->lo, f->lo_len, f->hi, f->hi_len) ? 0 : rd_fail(r, at);
}

/* A version 1 entry stops after max_txn: its fragment then reads as
 * holding txns 0..max_txn, unclipped, which is what version 1 meant. */
static int rd_frag(rd_t *r, ig__tc_frag_t *f, const ig__tc_frag_t *newer)
{
	if (rd_need(r, 1))
		return IG_ECORRUPT;
	size_t n = r->p[r->off++];
	if (rd_need(r, n + 8))
		return IG_ECORRUPT;
	if (!name_ok(r->p + r->off, n))
		return rd_fail(r, r->off - 1);
	int rc = rd_dup(r, n, &f->name);
	if (rc)
		return rc;
	f->max_txn = ig__ld64(r->p + r->off);
	if (newer && f->max_txn > newer->max_txn)
		return rd_fail(r, r->off);
	r->off += 8;
	return r->version >= 2 ? rd_frag_v2(r, f) : 0;
}

/* Smallest fragment entry: 1-byte name length, 1 name byte, max txn; in
 * version 2 also min txn and two empty clip rows. */
static size_t frag_min(unsigned version)
{
	return version >= 2 ? 1 + 1 + 8 + 8 + 2 + 2 : 1 + 1 + 8;
}

static int rd_group(rd_t *r, ig__tc_group_t *g)
{
	uint32_t n;
	size_t at = r->off;
	int rc = rd_u16(r, &n);
	if (rc)
		return rc;
	if (n > IG__TC_FRAGS_MAX || (size_t)n * frag_min(r->version) > r->end - r->off)
		return rd_fail(r, at);
	if (n == 0)
		return 0;
	g->frags = calloc(n, sizeof *g->frags);
	if (!g->frags)
		return IG_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		rc = rd_frag(r, &g->frags[i], i ? &g->frags[i - 1] : NULL);
		g->nfrags = i + 1;  /* so ig__tconf_free frees what was read */
		if (rc)
			return rc;
	}
	return 0;
}

/* Header checks, in byte order, before anything is allocated. */
static int tc_header(rd_t *r, size_t len)
{
	const uint8_t *b = r->p;
	if (len < IG__TC_HEADER + 6 + 4)
		return rd_fail(r, len);
	if (ig__ld32(b + IG__TC_H_MAGIC) != IG__TC_MAGIC)
		return rd_fail(r, IG__TC_H_MAGIC);
	r->version = b[IG__TC_H_VERSION];
	if (r->version < IG__TC_VERSION_MIN || r->version > IG__TC_VERSION)
		return rd_fail(r, IG__TC_H_VERSION);
	if (b[IG__TC_H_FLAGS] != 0)
		return rd_fail(r, IG__TC_H_FLAGS);
	if (ig__ld16(b + IG__TC_H_GROUPS) > IG__TC_GROUPS_MAX)
		return rd_fail(r, IG__TC_H_GROUPS);
	if (ig__ld32(b + IG__TC_H_LENGTH) != len || len > IG__TC_BYTES_MAX)
		return rd_fail(r, IG__TC_H_LENGTH);
	if (ig__ld32(b + len - 4) != ig_crc32c(0, b, len - 4))
		return rd_fail(r, len - 4);
	return 0;
}

static int tc_body(rd_t *r, ig__tconf_t *c)
{
	size_t at = r->off;
	int rc = rd_row(r, &c->first_row, &c->first_len);
	if (rc)
		return rc;
	at = r->off;
	if ((rc = rd_row(r, &c->last_row, &c->last_len)) != 0)
		return rc;
	if (!range_ok(c))
		return rd_fail(r, at);
	if ((rc = rd_logdir(r, c)) != 0)
		return rc;
	if (c->ngroups) {
		c->groups = calloc(c->ngroups, sizeof *c->groups);
		if (!c->groups)
			return IG_ENOMEM;
	}
	for (uint32_t g = 0; g < c->ngroups; g++)
		if ((rc = rd_group(r, &c->groups[g])) != 0)
			return rc;
	return r->off != r->end ? rd_fail(r, r->off) : 0;
}

int ig__tconf_decode(const void *buf, size_t len, ig__tconf_t **out, size_t *err_off)
{
	if (!out || (!buf && len))
		return IG_EINVAL;
	rd_t r = { .p = buf, .end = len >= 4 ? len - 4 : 0, .off = IG__TC_HEADER };
	int rc = tc_header(&r, len);
	if (rc)
		goto fail;
	ig__tconf_t *c = calloc(1, sizeof *c);
	if (!c)
		return IG_ENOMEM;
	c->ngroups = ig__ld16(r.p + IG__TC_H_GROUPS);
	c->table_id = ig__ld64(r.p + IG__TC_H_TABLE);
	c->tablet_id = ig__ld64(r.p + IG__TC_H_TABLET);
	c->replay_txn = ig__ld64(r.p + IG__TC_H_REPLAY);
	rc = tc_body(&r, c);
	if (rc) {
		ig__tconf_free(c);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	if (rc == IG_ECORRUPT && err_off)
		*err_off = r.bad;
	return rc;
}

void ig__tconf_free(ig__tconf_t *c)
{
	if (!c)
		return;
	for (uint32_t g = 0; c->groups && g < c->ngroups; g++) {
		for (uint32_t i = 0; i < c->groups[g].nfrags; i++) {
			free(c->groups[g].frags[i].name);
			free(c->groups[g].frags[i].lo);
			free(c->groups[g].frags[i].hi);
		}
		free(c->groups[g].frags);
	}
	free(c->groups);
	free(c->first_row);
	free(c->last_row);
	free(c->log_dir);
	free(c);
}

/* ---- root file: encode and decode --------------------------------------- */

int ig__root_encode(const ig__root_t *r, uint8_t **out, size_t *out_len)
{
	if (!r || !out || !out_len || r->nconfigs == 0 || r->nconfigs > IG__RT_CONFIGS_MAX ||
	    !r->configs)
		return IG_EINVAL;
	size_t len = IG__RT_HEADER + 4;
	for (uint32_t i = 0; i < r->nconfigs; i++) {
		if (!tc_check(r->configs[i]) || tc_size(r->configs[i]) > IG__TC_BYTES_MAX)
			return IG_EINVAL;
		len += 4 + tc_size(r->configs[i]);
	}
	if (len > IG__RT_BYTES_MAX)
		return IG_EINVAL;
	uint8_t *buf = malloc(len);
	if (!buf)
		return IG_ENOMEM;
	ig__st32(buf + IG__RT_H_MAGIC, IG__RT_MAGIC);
	buf[IG__RT_H_VERSION] = IG__RT_VERSION;
	memset(buf + IG__RT_H_RESERVED, 0, 3);
	ig__st64(buf + IG__RT_H_GEN, r->generation);
	ig__st32(buf + IG__RT_H_COUNT, r->nconfigs);
	ig__st32(buf + IG__RT_H_LENGTH, (uint32_t)len);
	uint8_t *p = buf + IG__RT_HEADER;
	for (uint32_t i = 0; i < r->nconfigs; i++) {
		size_t n = tc_size(r->configs[i]);
		ig__st32(p, (uint32_t)n);
		tc_fill(r->configs[i], p + 4, n);
		p += 4 + n;
	}
	ig__st32(p, ig_crc32c(0, buf, len - 4));
	*out = buf;
	*out_len = len;
	return 0;
}

static int rt_header(rd_t *r, size_t len)
{
	const uint8_t *b = r->p;
	if (len < IG__RT_HEADER + 4)
		return rd_fail(r, len);
	if (ig__ld32(b + IG__RT_H_MAGIC) != IG__RT_MAGIC)
		return rd_fail(r, IG__RT_H_MAGIC);
	if (b[IG__RT_H_VERSION] != IG__RT_VERSION)
		return rd_fail(r, IG__RT_H_VERSION);
	for (size_t i = 0; i < 3; i++)
		if (b[IG__RT_H_RESERVED + i] != 0)
			return rd_fail(r, IG__RT_H_RESERVED + i);
	uint32_t n = ig__ld32(b + IG__RT_H_COUNT);
	/* Each config takes its 4-byte length and at least a bare header. */
	if (n == 0 || n > IG__RT_CONFIGS_MAX || (size_t)n * (4 + IG__TC_HEADER) > len)
		return rd_fail(r, IG__RT_H_COUNT);
	if (ig__ld32(b + IG__RT_H_LENGTH) != len || len > IG__RT_BYTES_MAX)
		return rd_fail(r, IG__RT_H_LENGTH);
	if (ig__ld32(b + len - 4) != ig_crc32c(0, b, len - 4))
		return rd_fail(r, len - 4);
	return 0;
}

static int rt_configs(rd_t *r, ig__root_t *root)
{
	for (uint32_t i = 0; i < root->nconfigs; i++) {
		size_t at = r->off;
		if (rd_need(r, 4))
			return IG_ECORRUPT;
		size_t n = ig__ld32(r->p + r->off);
		r->off += 4;
		if (rd_need(r, n))
			return rd_fail(r, at);
		size_t sub = 0;
		int rc = ig__tconf_decode(r->p + r->off, n, &root->configs[i], &sub);
		if (rc)
			return rc == IG_ECORRUPT ? rd_fail(r, r->off + sub) : rc;
		r->off += n;
	}
	return r->off != r->end ? rd_fail(r, r->off) : 0;
}

int ig__root_decode(const void *buf, size_t len, ig__root_t **out, size_t *err_off)
{
	if (!out || (!buf && len))
		return IG_EINVAL;
	rd_t r = { .p = buf, .end = len >= 4 ? len - 4 : 0, .off = IG__RT_HEADER };
	int rc = rt_header(&r, len);
	if (rc)
		goto fail;
	ig__root_t *root = calloc(1, sizeof *root);
	if (!root)
		return IG_ENOMEM;
	root->generation = ig__ld64(r.p + IG__RT_H_GEN);
	root->nconfigs = ig__ld32(r.p + IG__RT_H_COUNT);
	root->configs = calloc(root->nconfigs, sizeof *root->configs);
	rc = root->configs ? rt_configs(&r, root) : IG_ENOMEM;
	if (rc) {
		ig__root_free(root);
		goto fail;
	}
	*out = root;
	return 0;
fail:
	if (rc == IG_ECORRUPT && err_off)
		*err_off = r.bad;
	return rc;
}

void ig__root_free(ig__root_t *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; r->configs && i < r->nconfigs; i++)
		ig__tconf_free(r->configs[i]);
	free(r->configs);
	free(r);
}

/* ---- root file: atomic replace ------------------------------------------ */

static unsigned fault_nth[IG__CF_NOPS];
static int fault_err[IG__CF_NOPS];

void ig__config_fault(ig__cf_op_t op, unsigned nth, int neg_errno)
{
	if (op >= IG__CF_NOPS)
		return;
	fault_nth[op] = nth;
	fault_err[op] = neg_errno;
}

/* 0 to go ahead, or the injected error when this call is the armed one. */
static int fault_hit(ig__cf_op_t op)
{
	if (fault_nth[op] == 0 || --fault_nth[op] != 0)
		return 0;
	return fault_err[op];
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + 1 + strlen(name) + 1;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		int f = fault_hit(IG__CF_WRITE);
		if (f)
			return f;
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes and fdatasyncs the temporary; afterwards it is complete on disk. */
static int write_tmp(const char *tmp, const uint8_t *buf, size_t len)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = write_all(fd, buf, len);
	if (rc == 0 && (rc = fault_hit(IG__CF_FDATASYNC)) == 0 && fdatasync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Without this the rename may not survive a crash (KDI's bug). */
static int sync_dir(const char *dir)
{
	int rc = fault_hit(IG__CF_DIRSYNC);
	if (rc)
		return rc;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int replace(const char *dir, const char *tmp, const char *root,
		   const uint8_t *buf, size_t len)
{
	int rc = write_tmp(tmp, buf, len);
	if (rc == 0 && (rc = fault_hit(IG__CF_RENAME)) == 0 && rename(tmp, root) != 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);  /* best effort: readers ignore it anyway */
		return rc;
	}
	return sync_dir(dir);
}

int ig__root_write(const char *dir, const ig__root_t *r)
{
	if (!dir)
		return IG_EINVAL;
	uint8_t *buf;
	size_t len;
	int rc = ig__root_encode(r, &buf, &len);
	if (rc)
		return rc;
	char *tmp = path_join(dir, "root.tmp");
	char *root = path_join(dir, "root");
	rc = tmp && root ? replace(dir, tmp, root, buf, len) : IG_ENOMEM;
	free(tmp);
	free(root);
	free(buf);
	return rc;
}

/* Reads the whole file, refusing one larger than a root file may be. */
static int read_file(int fd, uint8_t **out, size_t *out_len, size_t *err_off)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size > (off_t)IG__RT_BYTES_MAX) {
		if (err_off)
			*err_off = IG__RT_BYTES_MAX;
		return IG_ECORRUPT;
	}
	size_t len = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return IG_ENOMEM;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? -errno : IG_ECORRUPT;
			if (n == 0 && err_off)
				*err_off = got;
			free(buf);
			return e;
		}
		got += (size_t)n;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

int ig__root_read(const char *dir, ig__root_t **out, size_t *err_off)
{
	if (!dir || !out)
		return IG_EINVAL;
	char *root = path_join(dir, "root");
	if (!root)
		return IG_ENOMEM;
	int fd = open(root, O_RDONLY | O_CLOEXEC);
	free(root);
	if (fd < 0)
		return errno == ENOENT ? IG_ENOTFOUND : -errno;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = read_file(fd, &buf, &len, err_off);
	close(fd);
	if (rc == 0)
		rc = ig__root_decode(buf, len, out, err_off);
	free(buf);
	return rc;
}
