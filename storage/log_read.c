/* The write-ahead log's reader: validates segments record by record and
 * replays them in txn order, telling a torn tail (the end of the last
 * write, cut by a crash: stop cleanly) from corruption (a damaged record
 * that synced data follows: refuse, naming file and offset).
 * Format and the torn-tail rule: docs/formats.md, "Write-ahead log".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_int.h"
#include "packed_int.h"

/* How a record failed. A torn write can only produce INCOMPLETE failures
 * (a header that does not check, a record running past the end, a trailer
 * that does not match), so only those may be a torn tail. A record whose
 * checksums hold but whose content is wrong was written that way: that is
 * always corruption. */
enum rec_status { REC_OK, REC_INCOMPLETE, REC_BAD };

static void set_err(ig_log_error_t *err, const char *file, uint64_t off, const char *fmt, ...)
{
	va_list ap;
	char why[200];
	const char *base;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	base = strrchr(file, '/');
	base = base ? base + 1 : file;
	snprintf(err->file, sizeof err->file, "%s", base);
	err->offset = off;
	snprintf(err->msg, sizeof err->msg, "%s: offset %llu: %s", file, (unsigned long long)off,
		 why);
}

static bool header_checks(const uint8_t *h)
{
	return ig__ld32(h + IG__LOG_H_MAGIC) == IG__LOG_MAGIC &&
	       ig_crc32c(0, h, IG__LOG_H_HCRC) == ig__ld32(h + IG__LOG_H_HCRC);
}

/* Validates the record at b[off..len). On REC_OK fills *rec; otherwise
 * writes the reason into why. */
static enum rec_status check_record(const uint8_t *b, size_t len, size_t off, ig_log_record_t *rec,
				    char *why, size_t why_len)
{
	const uint8_t *h = b + off;
	size_t rest = len - off;
	uint32_t rlen, count, pos;
	uint64_t first, last, batch;

	if (rest < IG__LOG_HEADER) {
		snprintf(why, why_len, "record header cut short (%zu of %u bytes)", rest,
			 IG__LOG_HEADER);
		return REC_INCOMPLETE;
	}
	if (ig__ld32(h + IG__LOG_H_MAGIC) != IG__LOG_MAGIC) {
		snprintf(why, why_len, "no record magic");
		return REC_INCOMPLETE;
	}
	if (ig_crc32c(0, h, IG__LOG_H_HCRC) != ig__ld32(h + IG__LOG_H_HCRC)) {
		snprintf(why, why_len, "record header checksum mismatch");
		return REC_INCOMPLETE;
	}
	/* From here the header is what a writer wrote. */
	if (h[IG__LOG_H_VERSION] != IG__LOG_VERSION) {
		snprintf(why, why_len, "unsupported record version %u", h[IG__LOG_H_VERSION]);
		return REC_BAD;
	}
	if (h[IG__LOG_H_FLAGS] || h[IG__LOG_H_RESERVED] || h[IG__LOG_H_RESERVED + 1]) {
		snprintf(why, why_len, "unknown flags or reserved bytes set");
		return REC_BAD;
	}
	rlen = ig__ld32(h + IG__LOG_H_LENGTH);
	count = ig__ld32(h + IG__LOG_H_COUNT);
	first = ig__ld64(h + IG__LOG_H_FIRST);
	last = ig__ld64(h + IG__LOG_H_LAST);
	batch = ig__ld64(h + IG__LOG_H_BATCH);
	if (rlen < IG__LOG_OVERHEAD || rlen > IG_LOG_RECORD_MAX) {
		snprintf(why, why_len, "record length %u outside %u..%u", rlen, IG__LOG_OVERHEAD,
			 IG_LOG_RECORD_MAX);
		return REC_BAD;
	}
	if (first == IG_TXN_NONE || first > last) {
		snprintf(why, why_len, "bad txn range %llu..%llu", (unsigned long long)first,
			 (unsigned long long)last);
		return REC_BAD;
	}
	if (batch > off) {
		snprintf(why, why_len, "batch offset %llu after the record",
			 (unsigned long long)batch);
		return REC_BAD;
	}
	if (rlen > rest) {
		snprintf(why, why_len, "record of %u bytes cut short at %zu", rlen, rest);
		return REC_INCOMPLETE;
	}
	if (ig_crc32c(0, h, rlen - IG__LOG_TRAILER) != ig__ld32(h + rlen - IG__LOG_TRAILER)) {
		snprintf(why, why_len, "record checksum mismatch");
		return REC_INCOMPLETE;
	}
	/* Entries: exactly count of them, filling the payload. */
	pos = IG__LOG_HEADER;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t blen;
		ig_packed_t p;
		size_t bad = 0;
		int rc;

		if (rlen - IG__LOG_TRAILER - pos < IG__LOG_ENTRY) {
			snprintf(why, why_len, "entry %u at offset %zu: header past the payload", i,
				 off + pos);
			return REC_BAD;
		}
		blen = ig__ld32(h + pos + IG__LOG_E_LENGTH);
		pos += IG__LOG_ENTRY;
		if (blen > rlen - IG__LOG_TRAILER - pos) {
			snprintf(why, why_len, "entry %u at offset %zu: block of %u bytes past the payload",
				 i, off + pos - IG__LOG_ENTRY, blen);
			return REC_BAD;
		}
		rc = ig_packed_open(h + pos, blen, &p, &bad);
		if (rc != 0) {
			snprintf(why, why_len, "entry %u: packed block at offset %zu refused at byte %zu (%s)",
				 i, off + pos, bad, ig_strerror(rc));
			return REC_BAD;
		}
		pos += blen;
	}
	if (pos != rlen - IG__LOG_TRAILER) {
		snprintf(why, why_len, "%u bytes after the last entry", rlen - IG__LOG_TRAILER - pos);
		return REC_BAD;
	}
	rec->first_txn = first;
	rec->last_txn = last;
	rec->offset = off;
	rec->len = rlen;
	rec->nentries = count;
	rec->payload = h + IG__LOG_HEADER;
	rec->payload_len = rlen - IG__LOG_OVERHEAD;
	return REC_OK;
}

/* Says whether a record of a LATER write than the one damaged at off
 * starts after it: a header that checks (so a writer wrote it) and whose
 * batch offset is past off. Later writes happen only after the damaged
 * one was synced, so then the damage is in synced data, not a torn tail.
 * Headers of the damaged write itself (batch offset <= off) are part of
 * the tail. Scanning starts at from (past the damaged record when its own
 * header checks, so its payload is not searched). */
static bool later_write_follows(const uint8_t *b, size_t len, size_t off, size_t from)
{
	static const uint8_t magic[4] = {0x49, 0x47, 0x4c, 0x52};

	while (from + IG__LOG_HEADER <= len) {
		const uint8_t *m = memmem(b + from, len - from, magic, sizeof magic);
		size_t h;

		if (!m)
			return false;
		h = (size_t)(m - b);
		if (h + IG__LOG_HEADER > len)
			return false;
		if (header_checks(m) && ig__ld64(m + IG__LOG_H_BATCH) > off &&
		    ig__ld64(m + IG__LOG_H_BATCH) <= h)
			return true;
		from = h + 1;
	}
	return false;
}

int ig_log_scan_buf(const void *buf, size_t len, const char *file, uint64_t seg_txn,
		    bool last_segment, uint64_t from_txn, uint64_t *prev_txn, ig_log_cb cb,
		    void *arg, ig_log_scan_t *out, ig_log_error_t *err)
{
	const uint8_t *b = buf;
	uint64_t prev = *prev_txn, records = 0;
	size_t off = 0;
	char why[200];

	if (!file)
		file = "<buffer>";
	if ((!b && len > 0) || !out)
		return IG_EINVAL;
	while (off < len) {
		ig_log_record_t rec;
		enum rec_status st = check_record(b, len, off, &rec, why, sizeof why);

		if (st == REC_OK && rec.first_txn <= prev) {
			snprintf(why, sizeof why, "txn %llu not above the previous txn %llu",
				 (unsigned long long)rec.first_txn, (unsigned long long)prev);
			st = REC_BAD;
		} else if (st == REC_OK && off == 0 && seg_txn != IG_TXN_NONE &&
			   rec.first_txn < seg_txn) {
			/* Above it is fine: a trim may start an empty segment
			 * named by the next txn, and txns may skip. */
			snprintf(why, sizeof why, "first txn %llu is below the segment's name %llu",
				 (unsigned long long)rec.first_txn, (unsigned long long)seg_txn);
			st = REC_BAD;
		}
		if (st == REC_OK) {
			rec.file = file;
			if (rec.last_txn >= from_txn && cb) {
				int rc = cb(arg, &rec);
				if (rc != 0)
					return rc;
			}
			prev = rec.last_txn;
			*prev_txn = prev;
			records++;
			off += rec.len;
			continue;
		}
		if (st == REC_INCOMPLETE && last_segment) {
			/* Past a damaged record whose header checks, only its
			 * successors count; otherwise any later byte may start one. */
			const uint8_t *h = b + off;
			size_t from = off + 1;

			if (len - off >= IG__LOG_HEADER && header_checks(h)) {
				uint64_t end = (uint64_t)off + ig__ld32(h + IG__LOG_H_LENGTH);
				from = end > len ? len : (size_t)end;
			}
			if (!later_write_follows(b, len, off, from)) {
				out->records = records;
				out->last_txn = prev;
				out->valid_end = off;
				out->torn_bytes = len - off;
				return 0;
			}
			set_err(err, file, off, "%s, and records of later writes follow", why);
			return IG_ECORRUPT;
		}
		set_err(err, file, off, "%s", why);
		return IG_ECORRUPT;
	}
	out->records = records;
	out->last_txn = prev;
	out->valid_end = len;
	out->torn_bytes = 0;
	return 0;
}

int ig_log_record_next(const ig_log_record_t *r, size_t *pos, ig_log_item_t *out)
{
	const uint8_t *e;
	uint32_t blen;
	size_t bad;

	if (*pos + IG__LOG_ENTRY > r->payload_len)
		return 0;
	e = r->payload + *pos;
	blen = ig__ld32(e + IG__LOG_E_LENGTH);
	out->table_id = ig__ld64(e + IG__LOG_E_TABLE);
	out->tablet_id = ig__ld64(e + IG__LOG_E_TABLET);
	/* The reader opened this block already; it cannot fail here. */
	if (ig_packed_open(e + IG__LOG_ENTRY, blen, &out->block, &bad) != 0)
		return 0;
	*pos += IG__LOG_ENTRY + blen;
	return 1;
}

/* Reads a whole file into a malloc'd buffer (NULL when empty). Read, not
 * mmap: a file cut short under us then gives a short read, not SIGBUS. */
static int read_file(const char *path, uint8_t **out, size_t *out_len)
{
	struct stat st;
	uint8_t *b = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto done;
	}
	if (st.st_size > 0) {
		b = malloc((size_t)st.st_size);
		if (!b) {
			rc = IG_ENOMEM;
			goto done;
		}
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto done;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
done:
	close(fd);
	if (rc != 0) {
		free(b);
		return rc;
	}
	*out = b;
	*out_len = got;
	return 0;
}

/* Scans one segment file of dir (used by the replay and by the writer's
 * open). */
int ig__log_scan_file(const char *dir, uint64_t seg_txn, bool last_segment, uint64_t from_txn,
		      uint64_t *prev_txn, ig_log_cb cb, void *arg, ig_log_scan_t *out,
		      ig_log_error_t *err)
{
	char name[IG_LOG_NAME_LEN + 1];
	char *path;
	uint8_t *b = NULL;
	size_t len = 0;
	int rc;

	ig_log_segment_name(seg_txn, name);
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return IG_ENOMEM;
	rc = read_file(path, &b, &len);
	if (rc != 0) {
		set_err(err, path, 0, "cannot read: %s", ig_strerror(rc));
	} else if (len == 0 && !last_segment) {
		/* The writer deletes an empty last segment before creating
		 * another, so an empty one in the middle lost its records. */
		set_err(err, path, 0, "empty segment before the last one");
		rc = IG_ECORRUPT;
	} else {
		rc = ig_log_scan_buf(b, len, path, seg_txn, last_segment, from_txn, prev_txn, cb,
				     arg, out, err);
	}
	free(b);
	free(path);
	return rc;
}

int ig_log_replay(const char *dir, uint64_t from_txn, ig_log_cb cb, void *arg,
		  ig_log_scan_t *out, ig_log_error_t *err)
{
	uint64_t *segs = NULL, prev = IG_TXN_NONE, records = 0;
	ig_log_scan_t s = {0};
	size_t n = 0;
	int rc;

	if (!dir || !out)
		return IG_EINVAL;
	rc = ig_log_list(dir, &segs, &n);
	if (rc != 0) {
		set_err(err, dir, 0, "cannot list: %s", ig_strerror(rc));
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && segs[i + 1] <= from_txn) {
			/* Every txn here is below from_txn: not even read. */
			prev = segs[i + 1] - 1;
			continue;
		}
		rc = ig__log_scan_file(dir, segs[i], i + 1 == n, from_txn, &prev, cb, arg, &s, err);
		if (rc != 0)
			break;
		records += s.records;
	}
	free(segs);
	if (rc != 0)
		return rc;
	out->records = records;
	out->last_txn = prev;
	out->valid_end = s.valid_end;
	out->torn_bytes = s.torn_bytes;
	return 0;
}
