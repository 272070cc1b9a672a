/* The write-ahead log's writer: segment files in a directory, each batch
 * of records written with one pwrite and made durable with one fdatasync
 * (group commit), rolling to a new segment past a size limit, deleting
 * segments the store no longer needs. Also segment names and listing.
 * Format: docs/formats.md, "Write-ahead log".
 *
 * Durability rules (KDI's log "sync" was only fflush; ours is not): an
 * append returns only after fdatasync of the segment succeeded; a new
 * segment's directory entry is fsynced before anything in it counts; a
 * failed write or sync breaks the log for good, because after a failed
 * fsync the kernel may have dropped the dirty pages and a second fsync
 * would report success for data that is gone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_int.h"
#include "packed_int.h"

#define SEGMENT_MAX_DEFAULT (64u << 20)

struct ig_log {
	char *dir;                 /* directory path, owned */
	int dirfd;                 /* the directory, for fsync */
	int fd;                    /* segment being appended to, or -1 */
	uint64_t seg_size;         /* bytes in it */
	uint64_t last_txn;         /* last txn written */
	uint64_t segment_max;      /* roll past this many bytes */
	ig_log_fault_fn fault;
	void *fault_arg;
	int broken;                /* 0, or the error that broke the log */
	uint8_t *buf;              /* encoding buffer for a batch, owned */
	size_t buf_cap;
	uint64_t *segs;            /* first txns of the segments, ascending, owned */
	size_t nsegs, segs_cap;
	ig_log_stats_t stats;
};

/* ---- names and listing -------------------------------------------------- */

void ig_log_segment_name(uint64_t first_txn, char *buf)
{
	snprintf(buf, IG_LOG_NAME_LEN + 1, "log-%016" PRIx64 ".igl", first_txn);
}

bool ig_log_segment_parse(const char *name, uint64_t *first_txn)
{
	uint64_t v = 0;

	if (strlen(name) != IG_LOG_NAME_LEN || memcmp(name, "log-", 4) != 0 ||
	    memcmp(name + 20, ".igl", 4) != 0)
		return false;
	/* Lowercase only, so a name maps to one txn and back. */
	for (int i = 4; i < 20; i++) {
		char c = name[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	if (v == IG_TXN_NONE)
		return false;
	*first_txn = v;
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int ig_log_list(const char *dir, uint64_t **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t *v = NULL;
	size_t cnt = 0, cap = 0;

	if (!d) {
		if (errno == ENOENT) {
			*out = NULL;
			*n = 0;
			return 0;
		}
		return -errno;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		uint64_t txn;
		if (!ig_log_segment_parse(de->d_name, &txn))
			continue;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			uint64_t *nv = realloc(v, nc * sizeof *nv);
			if (!nv) {
				free(v);
				closedir(d);
				return IG_ENOMEM;
			}
			v = nv;
			cap = nc;
		}
		v[cnt++] = txn;
	}
	if (errno != 0) {
		int rc = -errno;
		free(v);
		closedir(d);
		return rc;
	}
	closedir(d);
	if (cnt > 1)
		qsort(v, cnt, sizeof *v, cmp_u64);
	*out = v;
	*n = cnt;
	return 0;
}

/* ---- system calls, through the fault hook ------------------------------ */

static int hook(ig_log_t *log, ig_log_op_t op)
{
	log->stats.ops[op]++;
	return log->fault ? log->fault(log->fault_arg, op) : 0;
}

static int do_dirsync(ig_log_t *log)
{
	int rc = hook(log, IG_LOG_OP_DIRSYNC);
	if (rc == 0 && fsync(log->dirfd) != 0)
		rc = -errno;
	return rc;
}

static int do_datasync(ig_log_t *log, int fd)
{
	int rc = hook(log, IG_LOG_OP_SYNC);
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	return rc;
}

static int do_unlink(ig_log_t *log, uint64_t txn)
{
	char name[IG_LOG_NAME_LEN + 1];
	int rc = hook(log, IG_LOG_OP_UNLINK);

	ig_log_segment_name(txn, name);
	if (rc == 0 && unlinkat(log->dirfd, name, 0) != 0)
		rc = -errno;
	return rc;
}

/* The new directory's own entry must be durable too: fsync its parent. */
static int sync_parent(const char *dir)
{
	char *copy = strdup(dir);
	int fd, rc = 0;

	if (!copy)
		return IG_ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

static int segs_push(ig_log_t *log, uint64_t txn)
{
	if (log->nsegs == log->segs_cap) {
		size_t nc = log->segs_cap ? log->segs_cap * 2 : 16;
		uint64_t *nv = realloc(log->segs, nc * sizeof *nv);
		if (!nv)
			return IG_ENOMEM;
		log->segs = nv;
		log->segs_cap = nc;
	}
	log->segs[log->nsegs++] = txn;
	return 0;
}

/* ---- open and close ---------------------------------------------------- */

static void set_err(ig_log_error_t *err, const char *dir, uint64_t txn, const char *what, int rc)
{
	char name[IG_LOG_NAME_LEN + 1];

	if (!err)
		return;
	ig_log_segment_name(txn, name);
	snprintf(err->file, sizeof err->file, "%s", name);
	err->offset = 0;
	snprintf(err->msg, sizeof err->msg, "%s/%s: %s: %s", dir, name, what, ig_strerror(rc));
}

/* Opens the last segment for appending, cutting a torn tail and deleting
 * it when nothing valid is left; repeats for the one before if needed so
 * the log always ends on a segment whose name is its first record. */
static int open_tail(ig_log_t *log, ig_log_scan_t *scan, ig_log_error_t *err)
{
	bool cut = false;

	while (log->nsegs > 0) {
		uint64_t txn = log->segs[log->nsegs - 1], prev = IG_TXN_NONE;
		char name[IG_LOG_NAME_LEN + 1];
		ig_log_scan_t s;
		int rc, fd;

		/* Only the segment that was last when we came may hold a torn
		 * tail; an earlier one was complete before the next began. */
		rc = ig__log_scan_file(log->dir, txn, !cut, 0, &prev, NULL, NULL, &s, err);
		if (rc != 0)
			return rc;
		if (!cut && scan)
			*scan = s;
		cut = true;
		if (s.valid_end == 0 && log->nsegs == 1) {
			/* The only segment, empty: a trim rolled past every
			 * record. Its name is the next txn, which nothing else
			 * remembers: keep it and append to it. */
			ig_log_segment_name(txn, name);
			if ((fd = openat(log->dirfd, name, O_WRONLY | O_CLOEXEC)) < 0) {
				rc = -errno;
				set_err(err, log->dir, txn, "cannot open", rc);
				return rc;
			}
			log->fd = fd;
			log->seg_size = 0;
			log->last_txn = txn - 1;
			return 0;
		}
		if (s.valid_end == 0) {
			rc = do_unlink(log, txn);
			if (rc == 0)
				rc = do_dirsync(log);
			if (rc != 0) {
				set_err(err, log->dir, txn, "cannot delete empty segment", rc);
				return rc;
			}
			log->nsegs--;
			continue;
		}
		ig_log_segment_name(txn, name);
		fd = openat(log->dirfd, name, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			set_err(err, log->dir, txn, "cannot open", rc);
			return rc;
		}
		if (s.torn_bytes > 0) {
			rc = hook(log, IG_LOG_OP_TRUNCATE);
			if (rc == 0 && ftruncate(fd, (off_t)s.valid_end) != 0)
				rc = -errno;
			if (rc == 0)
				rc = do_datasync(log, fd);
			if (rc != 0) {
				close(fd);
				set_err(err, log->dir, txn, "cannot cut the torn tail", rc);
				return rc;
			}
		}
		log->fd = fd;
		log->seg_size = s.valid_end;
		log->last_txn = s.last_txn;
		return 0;
	}
	return 0;
}

int ig_log_open(const char *dir, const ig_log_options_t *opts, ig_log_t **out,
		ig_log_scan_t *scan, ig_log_error_t *err)
{
	ig_log_t *log;
	size_t n = 0;
	int rc;

	if (!dir || !*dir || !out)
		return IG_EINVAL;
	log = calloc(1, sizeof *log);
	if (!log || !(log->dir = strdup(dir))) {
		free(log);
		return IG_ENOMEM;
	}
	log->dirfd = -1;
	log->fd = -1;
	log->segment_max = opts && opts->segment_max ? opts->segment_max : SEGMENT_MAX_DEFAULT;
	log->fault = opts ? opts->fault : NULL;
	log->fault_arg = opts ? opts->fault_arg : NULL;
	if (scan)
		memset(scan, 0, sizeof *scan);

	if (mkdir(dir, 0755) == 0) {
		rc = sync_parent(dir);
		if (rc != 0)
			goto fail_msg;
	} else if (errno != EEXIST) {
		rc = -errno;
		goto fail_msg;
	}
	log->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (log->dirfd < 0) {
		rc = -errno;
		goto fail_msg;
	}
	rc = ig_log_list(dir, &log->segs, &n);
	if (rc != 0)
		goto fail_msg;
	log->nsegs = log->segs_cap = n;
	rc = open_tail(log, scan, err);
	if (rc != 0)
		goto fail;
	*out = log;
	return 0;

fail_msg:
	if (err) {
		snprintf(err->file, sizeof err->file, "%s", "");
		err->offset = 0;
		snprintf(err->msg, sizeof err->msg, "%s: cannot open log directory: %s", dir,
			 ig_strerror(rc));
	}
fail:
	ig_log_close(log);
	return rc;
}

int ig_log_close(ig_log_t *log)
{
	int rc = 0;

	if (!log)
		return 0;
	if (log->fd >= 0 && close(log->fd) != 0)
		rc = -errno;
	if (log->dirfd >= 0)
		close(log->dirfd);
	free(log->buf);
	free(log->segs);
	free(log->dir);
	free(log);
	return rc;
}

/* ---- append ------------------------------------------------------------ */

/* Checks a batch and returns its encoded size. */
static int batch_size(const ig_log_t *log, const ig_log_rec_t *recs, size_t n, size_t *out)
{
	uint64_t prev = log->last_txn, total = 0;

	if (!recs || n == 0)
		return IG_EINVAL;
	for (size_t i = 0; i < n; i++) {
		const ig_log_rec_t *r = &recs[i];
		uint64_t len = IG__LOG_OVERHEAD;

		if (r->first_txn == IG_TXN_NONE || r->first_txn > r->last_txn ||
		    r->first_txn <= prev || (r->nentries > 0 && !r->entries))
			return IG_EINVAL;
		prev = r->last_txn;
		for (uint32_t j = 0; j < r->nentries; j++) {
			const ig_log_entry_t *e = &r->entries[j];
			ig_packed_t p;

			/* A block the reader would refuse would make the whole
			 * log unreadable after it: refuse it here instead. */
			if (!e->block || ig_packed_open(e->block, e->block_len, &p, NULL) != 0)
				return IG_EINVAL;
			len += IG__LOG_ENTRY + (uint64_t)e->block_len;
		}
		if (len > IG_LOG_RECORD_MAX)
			return IG_ERANGE;
		total += len;
	}
	if (total > SIZE_MAX / 2)
		return IG_ERANGE;
	*out = (size_t)total;
	return 0;
}

static void encode_batch(uint8_t *b, const ig_log_rec_t *recs, size_t n, uint64_t batch_off)
{
	for (size_t i = 0; i < n; i++) {
		const ig_log_rec_t *r = &recs[i];
		uint8_t *h = b;
		size_t pos = IG__LOG_HEADER;

		for (uint32_t j = 0; j < r->nentries; j++) {
			const ig_log_entry_t *e = &r->entries[j];
			ig__st64(h + pos + IG__LOG_E_TABLE, e->table_id);
			ig__st64(h + pos + IG__LOG_E_TABLET, e->tablet_id);
			ig__st32(h + pos + IG__LOG_E_LENGTH, e->block_len);
			pos += IG__LOG_ENTRY;
			memcpy(h + pos, e->block, e->block_len);
			pos += e->block_len;
		}
		pos += IG__LOG_TRAILER;
		ig__st32(h + IG__LOG_H_MAGIC, IG__LOG_MAGIC);
		h[IG__LOG_H_VERSION] = IG__LOG_VERSION;
		h[IG__LOG_H_FLAGS] = 0;
		h[IG__LOG_H_RESERVED] = 0;
		h[IG__LOG_H_RESERVED + 1] = 0;
		ig__st32(h + IG__LOG_H_LENGTH, (uint32_t)pos);
		ig__st32(h + IG__LOG_H_COUNT, r->nentries);
		ig__st64(h + IG__LOG_H_FIRST, r->first_txn);
		ig__st64(h + IG__LOG_H_LAST, r->last_txn);
		ig__st64(h + IG__LOG_H_BATCH, batch_off);
		ig__st32(h + IG__LOG_H_HCRC, ig_crc32c(0, h, IG__LOG_H_HCRC));
		ig__st32(h + pos - IG__LOG_TRAILER, ig_crc32c(0, h, pos - IG__LOG_TRAILER));
		b += pos;
	}
}

/* Starts segment first_txn: create it, then fsync the directory so its
 * name survives a crash before its first record counts. */
static int roll(ig_log_t *log, uint64_t first_txn)
{
	char name[IG_LOG_NAME_LEN + 1];
	int rc, fd;

	if (segs_push(log, first_txn) != 0)
		return IG_ENOMEM;
	ig_log_segment_name(first_txn, name);
	rc = hook(log, IG_LOG_OP_CREATE);
	if (rc == 0) {
		fd = openat(log->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			rc = -errno;
	}
	if (rc != 0) {
		/* Nothing changed on disk that matters: the log stays usable. */
		log->nsegs--;
		return rc;
	}
	if (log->fd >= 0)
		close(log->fd);
	log->fd = fd;
	log->seg_size = 0;
	rc = do_dirsync(log);
	if (rc != 0)
		log->broken = rc;
	return rc;
}

int ig_log_append(ig_log_t *log, const ig_log_rec_t *recs, size_t n)
{
	size_t total = 0, done = 0;
	int rc;

	if (!log)
		return IG_EINVAL;
	if (log->broken)
		return IG_ESTATE;
	rc = batch_size(log, recs, n, &total);
	if (rc != 0)
		return rc;
	if (total > log->buf_cap) {
		size_t cap = log->buf_cap ? log->buf_cap : 4096;
		uint8_t *nb;
		while (cap < total)
			cap *= 2;
		nb = realloc(log->buf, cap);
		if (!nb)
			return IG_ENOMEM;
		log->buf = nb;
		log->buf_cap = cap;
	}
	if (log->fd < 0 || log->seg_size >= log->segment_max) {
		rc = roll(log, recs[0].first_txn);
		if (rc != 0)
			return rc;
	}
	encode_batch(log->buf, recs, n, log->seg_size);

	/* One write; a short write (disk full, a signal) is continued, and any
	 * failure leaves a partial batch that reopening cuts as a torn tail. */
	rc = hook(log, IG_LOG_OP_WRITE);
	while (rc == 0 && done < total) {
		ssize_t w = pwrite(log->fd, log->buf + done, total - done,
				   (off_t)(log->seg_size + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = -errno;
		else if (w == 0)
			rc = -EIO;
		else
			done += (size_t)w;
	}
	if (rc == 0)
		rc = do_datasync(log, log->fd);
	if (rc != 0) {
		log->broken = rc;
		return rc;
	}
	log->seg_size += total;
	log->last_txn = recs[n - 1].last_txn;
	log->stats.batches++;
	log->stats.records += n;
	log->stats.bytes += total;
	return 0;
}

/* ---- deletion and accessors -------------------------------------------- */

/* A fully trimmed segment this big is replaced by an empty one: an idle
 * log then holds at most this much disk. */
static uint64_t roll_bytes(const ig_log_t *log)
{
	uint64_t b = log->segment_max / 8;

	return b < (1u << 20) ? (b ? b : 1) : (1u << 20);
}

int ig_log_delete_below(ig_log_t *log, uint64_t txn, size_t *deleted)
{
	size_t k = 0;
	int rc = 0;

	if (!log)
		return IG_EINVAL;
	/* Every record is below txn and the current segment is worth freeing:
	 * start an empty one named by the next txn (so the numbering survives)
	 * and let the loop delete the rest. */
	if (txn > log->last_txn && log->fd >= 0 && log->seg_size >= roll_bytes(log) &&
	    (rc = roll(log, log->last_txn + 1)) != 0)
		return rc;
	/* Oldest first, so a crash midway leaves a contiguous suffix. The last
	 * segment is the one being appended to: never deleted. */
	while (k + 1 < log->nsegs && log->segs[k + 1] <= txn) {
		rc = do_unlink(log, log->segs[k]);
		if (rc != 0)
			break;
		k++;
	}
	if (k > 0) {
		memmove(log->segs, log->segs + k, (log->nsegs - k) * sizeof *log->segs);
		log->nsegs -= k;
		int src = do_dirsync(log);
		if (rc == 0)
			rc = src;
	}
	if (deleted)
		*deleted = k;
	return rc;
}

uint64_t ig_log_last_txn(const ig_log_t *log)
{
	return log->last_txn;
}

void ig_log_stats(const ig_log_t *log, ig_log_stats_t *out)
{
	*out = log->stats;
	out->segments = log->nsegs;
}
