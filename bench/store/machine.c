/* bench/store: the machine's own limits, measured in the data directory in
 * the same run as the engines: the latency of a small durable append (what
 * one synced commit costs at least), the bandwidth of large durable
 * sequential writes (what a load can at most write), and the latency of a
 * 4 KiB random read that misses the page cache (what a cold point read
 * costs at least). */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int bench_fail(bench_err_t *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* n 4 KiB writes at ascending offsets, each followed by fdatasync, in one
 * of three kinds of file: mode 0 grows the file (each sync also writes the
 * new size and block allocation, as an append to a plain log does), mode 1
 * writes into space preallocated with fallocate(KEEP_SIZE) (as RocksDB's
 * WAL does), mode 2 overwrites blocks already written and synced (the
 * floor: data only). Median and 99th percentile, in microseconds. */
static int measure_fdatasync(const char *path, int mode, unsigned n, double *p50, double *p99,
			     bench_err_t *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return bench_fail(err, "open %s: %s", path, strerror(errno));
	double *lat = malloc(n * sizeof *lat);
	char buf[4096];
	memset(buf, 0x5a, sizeof buf);
	int rc = lat ? 0 : bench_fail(err, "out of memory");
	if (rc == 0 && mode == 1 &&
	    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)n * (off_t)sizeof buf) != 0)
		mode = 0; /* no fallocate here: measure appends instead */
	for (unsigned i = 0; rc == 0 && mode == 2 && i < n; i++)
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
			rc = bench_fail(err, "write %s: %s", path, strerror(errno));
	if (rc == 0 && mode == 2 && (fsync(fd) != 0 || lseek(fd, 0, SEEK_SET) != 0))
		rc = bench_fail(err, "fsync %s: %s", path, strerror(errno));
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		double t0 = now_s();
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0) {
			rc = bench_fail(err, "write+fdatasync %s: %s", path, strerror(errno));
			break;
		}
		lat[i] = (now_s() - t0) * 1e6;
	}
	if (rc == 0) {
		qsort(lat, n, sizeof *lat, cmp_double);
		*p50 = lat[n / 2];
		if (p99)
			*p99 = lat[(size_t)((double)n * 0.99)];
	}
	free(lat);
	close(fd);
	unlink(path);
	return rc;
}

/* 1 MiB writes to a new file, O_DIRECT if the file system takes it (else
 * buffered), fdatasync at the end inside the timing. Leaves the file for
 * the random-read probe. */
static int measure_seq_write(const char *path, uint64_t bytes, bench_machine_t *out, bench_err_t *err)
{
	const size_t bs = 1u << 20;
	void *buf;
	if (posix_memalign(&buf, 4096, bs) != 0)
		return bench_fail(err, "out of memory");
	/* Bytes zstd or a deduplicating disk cannot shrink. */
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < bs / 8; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		((uint64_t *)buf)[i] = x;
	}
	bool direct = true;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (fd < 0 && errno == EINVAL) {
		direct = false;
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	}
	if (fd < 0) {
		free(buf);
		return bench_fail(err, "open %s: %s", path, strerror(errno));
	}
	int rc = 0;
	uint64_t blocks = (bytes + bs - 1) / bs;
	double t0 = now_s();
	for (uint64_t i = 0; i < blocks; i++) {
		((uint64_t *)buf)[0] = i; /* every block distinct */
		if (write(fd, buf, bs) != (ssize_t)bs) {
			rc = bench_fail(err, "write %s: %s", path, strerror(errno));
			break;
		}
	}
	if (rc == 0 && fdatasync(fd) != 0)
		rc = bench_fail(err, "fdatasync %s: %s", path, strerror(errno));
	double dt = now_s() - t0;
	close(fd);
	free(buf);
	if (rc == 0) {
		out->seq_write_mbps = (double)(blocks * bs) / dt / 1e6;
		out->seq_write_direct = direct;
	}
	return rc;
}

/* 4 KiB O_DIRECT reads at random aligned offsets of the file just written
 * (it bypasses the page cache, so every read goes to the device). */
static void measure_rand_read(const char *path, uint64_t bytes, bench_machine_t *out)
{
	const unsigned n = 2000;
	int fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return; /* no O_DIRECT here: not measured */
	void *buf;
	double *lat = malloc(n * sizeof *lat);
	if (!lat || posix_memalign(&buf, 4096, 4096) != 0) {
		free(lat);
		close(fd);
		return;
	}
	uint64_t pages = bytes / 4096, x = 0x2545f4914f6cdd1dull;
	unsigned got = 0;
	for (unsigned i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		double t0 = now_s();
		if (pread(fd, buf, 4096, (off_t)((x % pages) * 4096)) != 4096)
			break;
		lat[got++] = (now_s() - t0) * 1e6;
	}
	if (got == n) {
		qsort(lat, n, sizeof *lat, cmp_double);
		out->rand_read_us_p50 = lat[n / 2];
	}
	free(buf);
	free(lat);
	close(fd);
}

int bench_machine_measure(const char *dir, unsigned syncs, uint64_t seq_bytes, bench_machine_t *out,
			  bench_err_t *err)
{
	char path[4096];
	bench_machine_t m = {0};
	if (syncs < 10)
		syncs = 10;
	snprintf(path, sizeof path, "%s/machine-probe", dir);
	if (measure_fdatasync(path, 0, syncs, &m.fdatasync_us_p50, &m.fdatasync_us_p99, err) != 0 ||
	    measure_fdatasync(path, 1, syncs, &m.fdatasync_prealloc_us, NULL, err) != 0 ||
	    measure_fdatasync(path, 2, syncs, &m.fdatasync_overwrite_us, NULL, err) != 0)
		return -1;
	int rc = measure_seq_write(path, seq_bytes, &m, err);
	if (rc == 0)
		measure_rand_read(path, seq_bytes, &m);
	unlink(path);
	if (rc == 0)
		*out = m;
	return rc;
}
