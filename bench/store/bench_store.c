/* bench/store: ingot's embedded store against RocksDB, one binary, one run.
 *
 * Phases, each run for one engine at a time (only one database is open at
 * any moment, so neither's background threads steal the other's cores):
 *
 *  0. the machine's limits in the data directory (machine.c);
 *  1. sequential load: N keys in ascending order, batches of B keys, each
 *     batch one commit with the log synced; then settle (flush, wait for
 *     compaction); the database is then deleted;
 *  2. random load: the same N keys in a random order (one permutation for
 *     both engines), same batches; settle (timed), disk space;
 *  3. close, drop the page cache (as root), reopen: R cold random point
 *     reads of loaded keys, each checked;
 *  4. full scan in key order, hashing every key and value; both hashes must
 *     equal the one computed from the generator, or the run fails;
 *  5. synced single-key writes from 1, 4 and 16 threads for S seconds each
 *     (each rewrites a random key with its own value, so the data stays);
 *  6. full manual compaction (timed), disk space.
 *
 * Keys: 16 bytes, the key's index in decimal, zero-padded. Values: 100
 * bytes, 50 from a PRNG seeded by the index and 50 of a shifted alphabet
 * (repeated across values), so zstd gets about half (the run prints the
 * ratio it measured).
 *
 * Output: progress lines as the phases go, then one table with each
 * measure for both engines, the ratio ingot/RocksDB and PASS/FAIL against
 * the goal. Exit status: 0, 1 if an engine failed or data differed, 2 for
 * bad arguments.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define KEY_LEN 16
#define VALUE_LEN 100
#define MAX_ENGINES 2
#define MAX_WRITERS 8

/* ---- options -------------------------------------------------------------- */

typedef struct opts {
	uint64_t keys;          /* N */
	uint64_t reads;         /* R */
	uint32_t batch;         /* B */
	double sync_seconds;    /* S per writer count */
	unsigned writers[MAX_WRITERS];
	unsigned nwriters;
	const char *dir;        /* parent of the databases (made if missing) */
	const char *engines;    /* comma-separated names */
	bool drop_caches;
	bool keep;              /* keep the databases at the end */
	double settle_timeout;  /* seconds */
	uint64_t seed;
	unsigned rounds;        /* rounds of reads and synced writes, engines alternating */
	unsigned sync_probes;   /* fdatasync samples */
	uint64_t probe_bytes;   /* sequential-write probe */
	bench_settings_t set;
} opts_t;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-store [options]\n"
		"  --dir DIR            data directory (default $TMPDIR or /tmp, a fresh\n"
		"                       bench-store.XXXXXX in it); databases are deleted at the end\n"
		"  --keys N             keys loaded (default 10000000)\n"
		"  --reads N            cold random point reads (default 1000000)\n"
		"  --batch N            keys per synced load batch (default 1000)\n"
		"  --sync-seconds S     seconds of synced single writes per writer count (default 5)\n"
		"  --writers LIST       writer counts (default 1,4,16)\n"
		"  --engines LIST       engines to run (default ingot,rocksdb)\n"
		"  --rounds N           rounds of reads and synced writes, the engines taking\n"
		"                       turns in alternating order (default 2)\n"
		"  --no-drop-caches     do not drop the page cache before the reads\n"
		"  --keep               keep the databases\n"
		"  --settle-timeout S   longest wait for compaction to settle (default 900)\n"
		"  --seed N             PRNG seed (default 42)\n"
		"  --zstd-level N --block-size N --bloom-bits N --memory-mb N --cache-mb N\n"
		"  --bg-threads N       engine settings (defaults 3, 16384, 10, 64, 0, 2)\n");
}

static uint64_t parse_u64(const char *s, const char *name)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || end == s) {
		fprintf(stderr, "bench-store: bad %s: %s\n", name, s);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv, opts_t *o)
{
	*o = (opts_t){
		.keys = 10000000,
		.reads = 1000000,
		.batch = 1000,
		.sync_seconds = 5,
		.writers = {1, 4, 16},
		.nwriters = 3,
		.engines = "ingot,rocksdb",
		.drop_caches = true,
		.settle_timeout = 900,
		.seed = 42,
		.rounds = 2,
		.sync_probes = 1000,
		.probe_bytes = 256u << 20,
		.set = {.zstd_level = 3,
			.block_size = 16384,
			.bloom_bits = 10,
			.memory_budget = 64u << 20,
			.cache_bytes = 0,
			.bg_threads = 2},
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && (v || (usage(stderr), exit(2), 0)) && ++i)
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--no-drop-caches") == 0) {
			o->drop_caches = false;
		} else if (strcmp(a, "--keep") == 0) {
			o->keep = true;
		} else if (ARG("--dir")) {
			o->dir = v;
		} else if (ARG("--keys")) {
			o->keys = parse_u64(v, a);
		} else if (ARG("--reads")) {
			o->reads = parse_u64(v, a);
		} else if (ARG("--batch")) {
			o->batch = (uint32_t)parse_u64(v, a);
		} else if (ARG("--sync-seconds")) {
			o->sync_seconds = (double)parse_u64(v, a);
		} else if (ARG("--writers")) {
			char *copy = strdup(v), *save = NULL;
			o->nwriters = 0;
			for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (o->nwriters == MAX_WRITERS) {
					fprintf(stderr, "bench-store: at most %d writer counts\n",
						MAX_WRITERS);
					exit(2);
				}
				o->writers[o->nwriters++] = (unsigned)parse_u64(t, a);
			}
			free(copy);
		} else if (ARG("--engines")) {
			o->engines = v;
		} else if (ARG("--settle-timeout")) {
			o->settle_timeout = (double)parse_u64(v, a);
		} else if (ARG("--seed")) {
			o->seed = parse_u64(v, a);
		} else if (ARG("--rounds")) {
			o->rounds = (unsigned)parse_u64(v, a);
			if (o->rounds == 0)
				o->rounds = 1;
		} else if (ARG("--zstd-level")) {
			o->set.zstd_level = (int)parse_u64(v, a);
		} else if (ARG("--block-size")) {
			o->set.block_size = (uint32_t)parse_u64(v, a);
		} else if (ARG("--bloom-bits")) {
			o->set.bloom_bits = (int)parse_u64(v, a);
		} else if (ARG("--memory-mb")) {
			o->set.memory_budget = parse_u64(v, a) << 20;
		} else if (ARG("--cache-mb")) {
			o->set.cache_bytes = parse_u64(v, a) << 20;
		} else if (ARG("--bg-threads")) {
			o->set.bg_threads = (unsigned)parse_u64(v, a);
		} else {
			usage(stderr);
			exit(2);
		}
#undef ARG
	}
	if (o->keys < 1000 || o->keys > UINT32_MAX || o->batch == 0 || o->reads == 0) {
		fprintf(stderr, "bench-store: --keys must be in 1000..%u, --batch and --reads > 0\n",
			UINT32_MAX);
		exit(2);
	}
}

/* ---- time, numbers ------------------------------------------------------------ */

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

/* Percentiles of a sorted array. */
static double pct(const double *sorted, size_t n, double p)
{
	if (n == 0)
		return NAN;
	size_t i = (size_t)(p / 100.0 * (double)n);
	return sorted[i < n ? i : n - 1];
}

/* ---- data: keys, values, hash ----------------------------------------------- */

static uint64_t g_seed;

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void make_key(uint64_t i, uint8_t *k)
{
	for (int d = KEY_LEN - 1; d >= 0; d--, i /= 10)
		k[d] = (uint8_t)('0' + i % 10);
}

static void make_value(uint64_t i, uint8_t *v)
{
	uint64_t x = g_seed ^ (i * 0xd1342543de82ef95ull);
	for (int j = 0; j < 50; j += 8) {
		uint64_t r = splitmix(&x);
		memcpy(v + j, &r, j + 8 <= 50 ? 8 : 50 - j);
	}
	for (int j = 50; j < VALUE_LEN; j++)
		v[j] = (uint8_t)('a' + (i + (uint64_t)j) % 26);
}

/* An order-dependent 64-bit hash of (key, value) pairs: FNV-1a over 64-bit
 * words (lengths included), finished with a murmur mix per pair. */
static uint64_t hash_words(uint64_t h, const uint8_t *p, size_t n)
{
	uint64_t w;
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x100000001b3ull;
	}
	w = 0;
	memcpy(&w, p, n);
	return (h ^ w ^ ((uint64_t)n << 56)) * 0x100000001b3ull;
}

static uint64_t hash_pair(uint64_t h, const void *k, size_t kl, const void *v, size_t vl)
{
	uint64_t c = 0xcbf29ce484222325ull;
	c = (c ^ (kl << 32 | vl)) * 0x100000001b3ull;
	c = hash_words(c, k, kl);
	c = hash_words(c, v, vl);
	c ^= c >> 33, c *= 0xff51afd7ed558ccdull, c ^= c >> 33;
	return (h ^ c) * 0x100000001b3ull + 1;
}

/* zstd at the engines' level over the data in blocks of block_size raw
 * bytes (key then value, in key order): the ratio the data allows. */
static double data_ratio(uint64_t keys, int level, uint32_t block_size)
{
	uint64_t n = keys < 200000 ? keys : 200000;
	size_t raw = 0, packed = 0, cap = ZSTD_compressBound(block_size + KEY_LEN + VALUE_LEN);
	uint8_t *in = malloc(block_size + KEY_LEN + VALUE_LEN), *out = malloc(cap);
	size_t used = 0;
	for (uint64_t i = 0; i < n && in && out; i++) {
		make_key(i, in + used);
		make_value(i, in + used + KEY_LEN);
		used += KEY_LEN + VALUE_LEN;
		if (used >= block_size || i + 1 == n) {
			size_t z = ZSTD_compress(out, cap, in, used, level);
			if (ZSTD_isError(z))
				break;
			raw += used;
			packed += z;
			used = 0;
		}
	}
	free(in);
	free(out);
	return raw ? (double)packed / (double)raw : NAN;
}

/* ---- files ------------------------------------------------------------------ */

static uint64_t g_du_alloc, g_du_apparent;

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path, (void)ftw;
	if (flag == FTW_F) {
		g_du_alloc += (uint64_t)st->st_blocks * 512;
		g_du_apparent += (uint64_t)st->st_size;
	}
	return 0;
}

/* Bytes the files under dir take on disk (allocated blocks, as du). */
static uint64_t disk_usage(const char *dir, uint64_t *apparent)
{
	g_du_alloc = g_du_apparent = 0;
	nftw(dir, du_one, 16, FTW_PHYS);
	if (apparent)
		*apparent = g_du_apparent;
	return g_du_alloc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Bytes this process has caused to be written to storage so far
 * (/proc/self/io write_bytes less cancelled_write_bytes), or 0. */
static uint64_t io_written(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	unsigned long long w = 0, c = 0, v;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "write_bytes: %llu", &v) == 1)
			w = v;
		else if (sscanf(line, "cancelled_write_bytes: %llu", &v) == 1)
			c = v;
	}
	fclose(f);
	return w > c ? w - c : 0;
}

/* Writes the dirty pages out, then drops the page cache. Returns whether it
 * could (it needs root). */
static bool drop_page_cache(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return false;
	bool ok = write(fd, "3\n", 2) == 2;
	close(fd);
	return ok;
}

/* ---- results ---------------------------------------------------------------- */

typedef struct load_res {
	bool ok;
	double seconds;       /* sum of the write calls' times */
	double keys_per_s;
	double lat[5];        /* batch latency, ms: p50 p90 p99 p99.9 max */
	double worst_window;  /* slowest 1 s window's rate / the mean rate */
	double settle_s;      /* flush + wait for compaction after the load */
	uint64_t written;     /* bytes the process wrote, load + settle */
	uint64_t disk;        /* disk bytes after settle */
	char info[512];
} load_res_t;

/* One measure's latencies and time, over all its rounds. */
typedef struct samples {
	double *lat;
	size_t n, cap;
	double secs;
} samples_t;

static void samples_add(samples_t *s, const double *lat, size_t n, double secs)
{
	if (s->n + n > s->cap) {
		size_t cap = s->n + n;
		double *p = realloc(s->lat, (cap ? cap : 1) * sizeof *p);
		if (!p) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		s->lat = p;
		s->cap = cap;
	}
	memcpy(s->lat + s->n, lat, n * sizeof *lat);
	s->n += n;
	s->secs += secs;
}

/* The rate over all rounds and p50, p99 and max in microseconds; frees
 * the samples. */
static double samples_finish(samples_t *s, double us[3])
{
	double rate = s->secs > 0 ? (double)s->n / s->secs : 0;
	qsort(s->lat, s->n, sizeof *s->lat, cmp_double);
	us[0] = pct(s->lat, s->n, 50) * 1e6;
	us[1] = pct(s->lat, s->n, 99) * 1e6;
	us[2] = pct(s->lat, s->n, 100) * 1e6;
	free(s->lat);
	*s = (samples_t){0};
	return rate;
}

typedef struct eng_res {
	const bench_engine_t *eng;
	bool failed;
	char error[600];
	load_res_t seq, rnd;
	double open_s;        /* reopen before the reads */
	bool reads_ok;
	samples_t reads;      /* every round's */
	double reads_per_s, read_lat[3]; /* us: p50 p99 max */
	uint64_t read_bad;
	bool scan_ok;
	double scan_cells_per_s, scan_s;
	uint64_t scan_cells, hash;
	bool sync_ok[MAX_WRITERS];
	samples_t sync[MAX_WRITERS];
	double sync_rate[MAX_WRITERS], sync_lat[MAX_WRITERS][3]; /* us: p50 p99 max */
	bool compact_ok;
	double compact_s;
	uint64_t disk_compacted, disk_compacted_apparent;
	char info_compacted[512];
} eng_res_t;

static void failed(eng_res_t *r, const char *phase, const bench_err_t *err)
{
	r->failed = true;
	snprintf(r->error, sizeof r->error, "%s: %s", phase, err->msg);
	printf("  %s FAILED in %s: %s\n", r->eng->name, phase, err->msg);
	fflush(stdout);
}

/* ---- phases --------------------------------------------------------------------- */

static const opts_t *O;
static uint32_t *g_perm; /* random load order */

static void db_path(char *buf, size_t len, const char *engine, const char *what)
{
	snprintf(buf, len, "%s/%s-%s", O->dir, engine, what);
}

/* Loads all keys in order (perm NULL) or in perm's order. */
static int load(eng_res_t *r, void *db, const uint32_t *perm, load_res_t *lr)
{
	uint64_t n = O->keys, nb = (n + O->batch - 1) / O->batch;
	uint8_t *buf = malloc((size_t)O->batch * (KEY_LEN + VALUE_LEN));
	bench_kv_t *kv = malloc(O->batch * sizeof *kv);
	double *lat = malloc(nb * sizeof *lat);
	double *end = malloc(nb * sizeof *end); /* cumulative write time at each batch's end */
	bench_err_t err;
	int rc = 0;
	if (!buf || !kv || !lat || !end) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	double total = 0, next_report = now_s() + 10;
	uint64_t b = 0;
	for (uint64_t at = 0; at < n; at += O->batch, b++) {
		uint32_t m = (uint32_t)(n - at < O->batch ? n - at : O->batch);
		for (uint32_t j = 0; j < m; j++) {
			uint64_t i = perm ? perm[at + j] : at + j;
			uint8_t *k = buf + (size_t)j * (KEY_LEN + VALUE_LEN);
			make_key(i, k);
			make_value(i, k + KEY_LEN);
			kv[j] = (bench_kv_t){k, k + KEY_LEN, KEY_LEN, VALUE_LEN};
		}
		double t0 = now_s();
		rc = r->eng->write(db, kv, m, true, &err);
		double dt = now_s() - t0;
		if (rc != 0) {
			failed(r, perm ? "random load" : "sequential load", &err);
			break;
		}
		total += dt;
		lat[b] = dt;
		end[b] = total;
		if (t0 > next_report) {
			printf("    %s: %llu keys, %.0f keys/s so far\n", r->eng->name,
			       (unsigned long long)(at + m), (double)(at + m) / total);
			fflush(stdout);
			next_report = t0 + 10;
		}
	}
	if (rc == 0) {
		lr->ok = true;
		lr->seconds = total;
		lr->keys_per_s = (double)n / total;
		/* Slowest 1 s window of write time (the whole load if shorter). */
		double worst = INFINITY;
		uint64_t first = 0;
		double w = total < 1.0 ? total : 1.0;
		for (uint64_t i = 0; i < nb; i++) {
			/* keys whose batch ended in the window (end[i] - w, end[i]] */
			while (end[first] <= end[i] - w)
				first++;
			if (end[i] >= w) {
				double rate = (double)(i - first + 1) * O->batch / w;
				if (rate < worst)
					worst = rate;
			}
		}
		lr->worst_window = worst / lr->keys_per_s;
		qsort(lat, nb, sizeof *lat, cmp_double);
		static const double ps[5] = {50, 90, 99, 99.9, 100};
		for (int i = 0; i < 5; i++)
			lr->lat[i] = pct(lat, nb, ps[i]) * 1e3;
	}
	free(buf);
	free(kv);
	free(lat);
	free(end);
	return rc;
}

static void print_load(const char *what, const eng_res_t *r, const load_res_t *lr)
{
	double logical = (double)O->keys * (KEY_LEN + VALUE_LEN);
	printf("  %-8s %s load: %.0f keys/s (%.1f s, %.1f MB/s logical), batch latency ms p50 %.2f "
	       "p90 %.2f p99 %.2f p99.9 %.2f max %.2f, slowest 1 s window %.0f%% of the mean\n",
	       r->eng->name, what, lr->keys_per_s, lr->seconds, logical / lr->seconds / 1e6,
	       lr->lat[0], lr->lat[1], lr->lat[2], lr->lat[3], lr->lat[4], lr->worst_window * 100);
	printf("  %-8s   settle %.1f s; disk %.1f MB after (%.3f of logical); written %.1f MB "
	       "during load+settle (%.2fx logical)\n",
	       r->eng->name, lr->settle_s, (double)lr->disk / 1e6, (double)lr->disk / logical,
	       (double)lr->written / 1e6, (double)lr->written / logical);
	printf("  %-8s   %s\n", r->eng->name, lr->info);
	fflush(stdout);
}

/* Phase 1 and 2 for one engine: a fresh database, a load, settle. Keeps the
 * database open in *dbp when keep is set, else closes it. */
static void phase_load(eng_res_t *r, const char *what, const uint32_t *perm, load_res_t *lr,
		       void **dbp)
{
	char path[4096];
	bench_err_t err;
	void *db;
	db_path(path, sizeof path, r->eng->name, what);
	rm_rf(path);
	if (r->eng->open(path, &O->set, &db, &err) != 0) {
		failed(r, "open", &err);
		return;
	}
	uint64_t w0 = io_written();
	if (load(r, db, perm, lr) == 0) {
		double t0 = now_s();
		if (r->eng->settle(db, O->settle_timeout, &err) != 0) {
			failed(r, "settle", &err);
			lr->ok = false;
		}
		lr->settle_s = now_s() - t0;
		lr->written = io_written() - w0;
		lr->disk = disk_usage(path, NULL);
		r->eng->info(db, lr->info, sizeof lr->info);
		if (lr->ok)
			print_load(what, r, lr);
	}
	if (dbp && lr->ok) {
		*dbp = db;
		return;
	}
	if (r->eng->close(db, &err) != 0)
		failed(r, "close", &err);
}

static void phase_reads(eng_res_t *r, void *db)
{
	bench_err_t err;
	double *lat = malloc(O->reads * sizeof *lat);
	uint8_t key[KEY_LEN], want[VALUE_LEN], got[VALUE_LEN + 16];
	uint64_t x = O->seed * 7919 + 1;
	if (!lat) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	double t_start = now_s();
	for (uint64_t q = 0; q < O->reads; q++) {
		uint64_t i = splitmix(&x) % O->keys;
		size_t vl = 0;
		make_key(i, key);
		double t0 = now_s();
		int rc = r->eng->get(db, key, KEY_LEN, got, sizeof got, &vl, &err);
		lat[q] = now_s() - t0;
		if (rc < 0) {
			failed(r, "random reads", &err);
			free(lat);
			return;
		}
		make_value(i, want);
		if (rc == 0 || vl != VALUE_LEN || memcmp(got, want, VALUE_LEN) != 0) {
			if (r->read_bad++ < 5)
				printf("  %s: read of key %.16s %s\n", r->eng->name, (char *)key,
				       rc == 0 ? "found nothing" : "returned a wrong value");
		}
	}
	double total = now_s() - t_start;
	r->reads_ok = r->read_bad == 0;
	qsort(lat, O->reads, sizeof *lat, cmp_double);
	printf("  %-8s random reads: %.0f reads/s (%.1f s), latency us p50 %.1f p99 %.1f max %.0f, "
	       "%llu wrong\n",
	       r->eng->name, (double)O->reads / total, total, pct(lat, O->reads, 50) * 1e6,
	       pct(lat, O->reads, 99) * 1e6, pct(lat, O->reads, 100) * 1e6,
	       (unsigned long long)r->read_bad);
	fflush(stdout);
	samples_add(&r->reads, lat, O->reads, total);
	free(lat);
}

typedef struct scan_state {
	uint64_t cells, hash, bad;
	uint8_t last[KEY_LEN];
} scan_state_t;

static int scan_cb(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
	scan_state_t *s = arg;
	if (kl != KEY_LEN || (s->cells && memcmp(s->last, k, KEY_LEN) >= 0))
		s->bad++;
	else
		memcpy(s->last, k, KEY_LEN);
	s->hash = hash_pair(s->hash, k, kl, v, vl);
	s->cells++;
	return 0;
}

static void phase_scan(eng_res_t *r, void *db, uint64_t expected_hash)
{
	bench_err_t err;
	scan_state_t s = {.hash = 0};
	double t0 = now_s();
	if (r->eng->scan(db, scan_cb, &s, &err) != 0) {
		failed(r, "scan", &err);
		return;
	}
	r->scan_s = now_s() - t0;
	r->scan_cells = s.cells;
	r->hash = s.hash;
	r->scan_cells_per_s = (double)s.cells / r->scan_s;
	r->scan_ok = s.cells == O->keys && s.bad == 0 && s.hash == expected_hash;
	printf("  %-8s scan: %.0f cells/s (%llu cells in %.2f s), content hash %016llx %s%s\n",
	       r->eng->name, r->scan_cells_per_s, (unsigned long long)s.cells, r->scan_s,
	       (unsigned long long)s.hash, s.hash == expected_hash ? "(as expected)" : "(WRONG)",
	       s.bad ? ", keys out of order" : "");
	fflush(stdout);
}

typedef struct writer {
	eng_res_t *r;
	void *db;
	uint64_t seed;
	double deadline;
	double *lat;
	size_t nlat, cap;
	int rc;
	bench_err_t err;
	pthread_barrier_t *start;
} writer_t;

static void *writer_main(void *arg)
{
	writer_t *w = arg;
	uint8_t kvbuf[KEY_LEN + VALUE_LEN];
	uint64_t x = w->seed;
	pthread_barrier_wait(w->start);
	for (;;) {
		double t0 = now_s();
		if (t0 >= w->deadline)
			break;
		uint64_t i = splitmix(&x) % O->keys;
		make_key(i, kvbuf);
		make_value(i, kvbuf + KEY_LEN);
		bench_kv_t kv = {kvbuf, kvbuf + KEY_LEN, KEY_LEN, VALUE_LEN};
		if ((w->rc = w->r->eng->write(w->db, &kv, 1, true, &w->err)) != 0)
			break;
		if (w->nlat == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 4096;
			double *l = realloc(w->lat, w->cap * sizeof *l);
			if (!l) {
				w->rc = bench_fail(&w->err, "out of memory");
				break;
			}
			w->lat = l;
		}
		w->lat[w->nlat++] = now_s() - t0;
	}
	return NULL;
}

static void phase_sync(eng_res_t *r, void *db, unsigned wi)
{
	unsigned nw = O->writers[wi];
	writer_t *w = calloc(nw, sizeof *w);
	pthread_t *th = calloc(nw, sizeof *th);
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, nw + 1);
	for (unsigned i = 0; i < nw; i++) {
		w[i] = (writer_t){.r = r, .db = db, .seed = O->seed * 1000003 + i * 7 + wi,
				  .deadline = INFINITY, .start = &start};
		pthread_create(&th[i], NULL, writer_main, &w[i]);
	}
	double t0 = now_s();
	for (unsigned i = 0; i < nw; i++)
		w[i].deadline = t0 + O->sync_seconds; /* before the barrier: published by it */
	pthread_barrier_wait(&start);
	size_t total = 0;
	int bad = -1;
	for (unsigned i = 0; i < nw; i++) {
		pthread_join(th[i], NULL);
		total += w[i].nlat;
		if (w[i].rc != 0 && bad < 0)
			bad = (int)i;
	}
	double dt = now_s() - t0;
	pthread_barrier_destroy(&start);
	if (bad >= 0) {
		failed(r, "synced writes", &w[bad].err);
	} else {
		double *all = malloc((total ? total : 1) * sizeof *all);
		size_t k = 0;
		for (unsigned i = 0; i < nw; i++)
			for (size_t j = 0; j < w[i].nlat; j++)
				all[k++] = w[i].lat[j];
		qsort(all, total, sizeof *all, cmp_double);
		r->sync_ok[wi] = true;
		printf("  %-8s synced writes, %2u writers: %.0f commits/s (%zu in %.1f s), latency us "
		       "p50 %.0f p99 %.0f max %.0f\n",
		       r->eng->name, nw, (double)total / dt, total, dt, pct(all, total, 50) * 1e6,
		       pct(all, total, 99) * 1e6, pct(all, total, 100) * 1e6);
		fflush(stdout);
		samples_add(&r->sync[wi], all, total, dt);
		free(all);
	}
	for (unsigned i = 0; i < nw; i++)
		free(w[i].lat);
	free(w);
	free(th);
}

/* ---- reopen, rounds, compaction -------------------------------------------------- */

static bool drop_cache_before_reads(bool *cold)
{
	if (O->drop_caches && !drop_page_cache()) {
		if (*cold)
			printf("  (cannot drop the page cache, not root: reads are WARM)\n");
		*cold = false;
	}
	return *cold;
}

/* Reopens the random load's database (after dropping the page cache). */
static void reopen(eng_res_t *r, void **db, bool *cold)
{
	bench_err_t err;
	char path[4096];

	*db = NULL;
	if (r->failed || !r->rnd.ok)
		return;
	db_path(path, sizeof path, r->eng->name, "rnd");
	drop_cache_before_reads(cold);
	double t0 = now_s();
	if (r->eng->open(path, &O->set, db, &err) != 0) {
		failed(r, "reopen", &err);
		*db = NULL;
		return;
	}
	r->open_s = now_s() - t0;
	printf("  %-8s reopened in %.2f s\n", r->eng->name, r->open_s);
}

static void finish_reads(eng_res_t *r)
{
	r->reads_per_s = samples_finish(&r->reads, r->read_lat);
	printf("  %-8s random reads, all rounds: %.0f reads/s, latency us p50 %.1f p99 %.1f max "
	       "%.0f\n", r->eng->name, r->reads_per_s, r->read_lat[0], r->read_lat[1],
	       r->read_lat[2]);
}

static void finish_syncs(eng_res_t *r)
{
	for (unsigned w = 0; w < O->nwriters; w++) {
		if (!r->sync_ok[w] || r->failed)
			continue;
		r->sync_rate[w] = samples_finish(&r->sync[w], r->sync_lat[w]);
		printf("  %-8s synced writes, %2u writers, all rounds: %.0f commits/s, latency us "
		       "p50 %.0f p99 %.0f max %.0f\n", r->eng->name, O->writers[w], r->sync_rate[w],
		       r->sync_lat[w][0], r->sync_lat[w][1], r->sync_lat[w][2]);
	}
}

/* Compacts fully, closes, measures the disk, and removes the database. */
static void compact_and_close(eng_res_t *r, void *db)
{
	bench_err_t err;
	char path[4096];

	db_path(path, sizeof path, r->eng->name, "rnd");
	if (!r->failed) {
		double t0 = now_s();
		if (r->eng->compact(db, &err) != 0) {
			failed(r, "full compaction", &err);
		} else {
			r->compact_ok = true;
			r->compact_s = now_s() - t0;
			r->eng->info(db, r->info_compacted, sizeof r->info_compacted);
		}
	}
	if (r->eng->close(db, &err) != 0)
		failed(r, "close", &err);
	if (r->compact_ok) {
		r->disk_compacted = disk_usage(path, &r->disk_compacted_apparent);
		printf("  %-8s full compaction %.1f s; disk %.1f MB after (%.1f MB apparent); %s\n",
		       r->eng->name, r->compact_s, (double)r->disk_compacted / 1e6,
		       (double)r->disk_compacted_apparent / 1e6, r->info_compacted);
	}
	if (!O->keep)
		rm_rf(path);
}

/* ---- the table ---------------------------------------------------------------- */

/* kind: '>' higher is better, goal is the least ratio; '<' lower is
 * better, goal the largest ratio; 0 no goal. */
static int g_pass, g_goals;

static void row(const char *label, bool ok_a, double a, bool ok_b, double b, int kind,
		double goal, const char *fmt)
{
	char sa[32] = "n/a", sb[32] = "n/a", sr[16] = "n/a", sg[16] = "", res[8] = "";
	if (ok_a)
		snprintf(sa, sizeof sa, fmt, a);
	if (ok_b)
		snprintf(sb, sizeof sb, fmt, b);
	bool have = ok_a && ok_b && b > 0;
	if (have)
		snprintf(sr, sizeof sr, "%.2f", a / b);
	if (kind) {
		snprintf(sg, sizeof sg, "%s %.1fx", kind == '>' ? ">=" : "<=", goal);
		bool pass = have && (kind == '>' ? a / b >= goal : a / b <= goal);
		snprintf(res, sizeof res, "%s", !have ? "n/a" : pass ? "PASS" : "FAIL");
		g_goals++;
		g_pass += pass;
	}
	printf("| %-34s | %14s | %14s | %6s | %-8s | %-4s |\n", label, sa, sb, sr, sg, res);
}

static eng_res_t *find(eng_res_t *res, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(res[i].eng->name, name) == 0)
			return &res[i];
	return NULL;
}

/* ---- main --------------------------------------------------------------------- */

static const bench_engine_t *const all_engines[] = {
#ifdef BENCH_HAVE_INGOT
	&bench_engine_ingot,
#endif
	&bench_engine_rocksdb,
};

int main(int argc, char **argv)
{
	opts_t o;
	parse_args(argc, argv, &o);
	O = &o;
	g_seed = o.seed * 0x9e3779b97f4a7c15ull;
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Engines, in the order asked. */
	eng_res_t res[MAX_ENGINES];
	size_t ne = 0;
	memset(res, 0, sizeof res);
	{
		char *copy = strdup(o.engines), *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			const bench_engine_t *e = NULL;
			for (size_t i = 0; i < sizeof all_engines / sizeof *all_engines; i++)
				if (strcmp(all_engines[i]->name, t) == 0)
					e = all_engines[i];
			if (!e) {
				fprintf(stderr, "bench-store: engine %s is not built in%s\n", t,
					strcmp(t, "ingot") == 0 ? " (libingot-actors has no store yet)"
								: "");
				if (strcmp(t, "ingot") == 0)
					continue;
				return 2;
			}
			if (ne < MAX_ENGINES && !find(res, ne, t))
				res[ne++].eng = e;
		}
		free(copy);
	}
	if (ne == 0)
		return 2;

	/* The data directory. */
	char dirbuf[4096];
	bool made_dir = false;
	if (!o.dir) {
		const char *tmp = getenv("TMPDIR");
		snprintf(dirbuf, sizeof dirbuf, "%s/bench-store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dirbuf)) {
			fprintf(stderr, "bench-store: mkdtemp %s: %s\n", dirbuf, strerror(errno));
			return 1;
		}
		o.dir = dirbuf;
		made_dir = true;
	} else if (mkdir(o.dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "bench-store: mkdir %s: %s\n", o.dir, strerror(errno));
		return 1;
	}

	/* The machine. */
	struct utsname un;
	uname(&un);
	char model[512] = "?";
	{
		FILE *f = fopen("/proc/cpuinfo", "r");
		char line[512];
		while (f && fgets(line, sizeof line, f))
			if (strncmp(line, "model name", 10) == 0) {
				char *c = strchr(line, ':');
				snprintf(model, sizeof model, "%s", c ? c + 2 : line);
				model[strcspn(model, "\n")] = 0;
				break;
			}
		if (f)
			fclose(f);
	}
	double load0[3] = {0};
	getloadavg(load0, 3);
	printf("bench-store: %llu keys (%d+%d bytes), batches of %u, %llu reads, %.0f s of synced "
	       "writes per writer count\n",
	       (unsigned long long)o.keys, KEY_LEN, VALUE_LEN, o.batch,
	       (unsigned long long)o.reads, o.sync_seconds);
	printf("machine: %ld cores, %s, %s %s, data in %s, load average %.2f\n",
	       sysconf(_SC_NPROCESSORS_ONLN), model, un.sysname, un.release, o.dir, load0[0]);
	for (size_t i = 0; i < ne; i++) {
		char d[512];
		res[i].eng->describe(&o.set, d, sizeof d);
		printf("  %s\n", d);
	}

	bench_machine_t m;
	bench_err_t err;
	if (bench_machine_measure(o.dir, o.sync_probes, o.probe_bytes, &m, &err) != 0) {
		fprintf(stderr, "bench-store: machine probe: %s\n", err.msg);
		return 1;
	}
	printf("machine limits: 4 KiB write + fdatasync p50: %.0f us appending (p99 %.0f), %.0f us "
	       "into fallocated space, %.0f us overwriting (the floor: at most %.0f synced "
	       "commits/s from one writer); sequential write %.0f MB/s (%s); 4 KiB random read "
	       "%s%.0f us\n",
	       m.fdatasync_us_p50, m.fdatasync_us_p99, m.fdatasync_prealloc_us,
	       m.fdatasync_overwrite_us, 1e6 / m.fdatasync_overwrite_us, m.seq_write_mbps,
	       m.seq_write_direct ? "O_DIRECT" : "buffered + fdatasync",
	       m.rand_read_us_p50 > 0 ? "p50 " : "not measured ", m.rand_read_us_p50);

	double ratio = data_ratio(o.keys, o.set.zstd_level, o.set.block_size);
	printf("data: zstd level %d in %u-byte blocks compresses keys+values to %.3f of raw "
	       "(compressed/raw)\n",
	       o.set.zstd_level, o.set.block_size, ratio);

	/* Expected content hash, and the random order. */
	uint64_t expected = 0;
	{
		uint8_t kv[KEY_LEN + VALUE_LEN];
		for (uint64_t i = 0; i < o.keys; i++) {
			make_key(i, kv);
			make_value(i, kv + KEY_LEN);
			expected = hash_pair(expected, kv, KEY_LEN, kv + KEY_LEN, VALUE_LEN);
		}
	}
	g_perm = malloc(o.keys * sizeof *g_perm);
	if (!g_perm) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	{
		uint64_t x = o.seed;
		for (uint64_t i = 0; i < o.keys; i++)
			g_perm[i] = (uint32_t)i;
		for (uint64_t i = o.keys - 1; i > 0; i--) {
			uint64_t j = splitmix(&x) % (i + 1);
			uint32_t t = g_perm[i];
			g_perm[i] = g_perm[j];
			g_perm[j] = t;
		}
	}
	double t_run = now_s();

	printf("\n[1] sequential load, then settle\n");
	for (size_t i = 0; i < ne; i++) {
		char path[4096];
		phase_load(&res[i], "seq", NULL, &res[i].seq, NULL);
		db_path(path, sizeof path, res[i].eng->name, "seq");
		if (!o.keep)
			rm_rf(path);
	}

	printf("\n[2] random-order load, then settle\n");
	void *dbs[MAX_ENGINES] = {0};
	for (size_t i = 0; i < ne; i++) {
		phase_load(&res[i], "rnd", g_perm, &res[i].rnd, &dbs[i]);
		if (dbs[i] && res[i].eng->close(dbs[i], &err) != 0)
			failed(&res[i], "close", &err);
		dbs[i] = NULL;
	}
	free(g_perm);

	printf("\n[3-5] reopen %s, random reads, scan, synced writes (%u rounds, engines "
	       "alternating)\n", o.drop_caches ? "after dropping the page cache" : "(page cache kept)",
	       o.rounds);
	bool cold = o.drop_caches;
	for (size_t i = 0; i < ne; i++)
		reopen(&res[i], &dbs[i], &cold);
	/* Reads and synced writes are short: a burst of noise on a shared
	 * machine would decide the ratio, so each engine runs them in every
	 * round, in turns, the order reversed each round. */
	for (unsigned rd = 0; rd < o.rounds; rd++) {
		for (size_t k = 0; k < ne; k++) {
			size_t i = rd % 2 ? ne - 1 - k : k;
			if (dbs[i] && !res[i].failed) {
				drop_cache_before_reads(&cold);
				phase_reads(&res[i], dbs[i]);
			}
		}
	}
	for (size_t i = 0; i < ne; i++) {
		if (dbs[i] && !res[i].failed) {
			finish_reads(&res[i]);
			phase_scan(&res[i], dbs[i], expected);
		}
	}
	for (unsigned w = 0; w < o.nwriters; w++)
		for (unsigned rd = 0; rd < o.rounds; rd++)
			for (size_t k = 0; k < ne; k++) {
				size_t i = rd % 2 ? ne - 1 - k : k;
				if (dbs[i] && !res[i].failed)
					phase_sync(&res[i], dbs[i], w);
			}
	for (size_t i = 0; i < ne; i++) {
		if (!dbs[i])
			continue;
		finish_syncs(&res[i]);
		compact_and_close(&res[i], dbs[i]);
	}
	if (made_dir && !o.keep)
		rmdir(o.dir);

	/* ---- summary ---- */
	double logical = (double)o.keys * (KEY_LEN + VALUE_LEN);
	eng_res_t none = {0};
	eng_res_t *a = find(res, ne, "ingot"), *b = find(res, ne, "rocksdb");
	if (!a)
		a = &none;
	if (!b)
		b = &none;
	double load1[3] = {0};
	getloadavg(load1, 3);
	printf("\nmachine shares (engine figure / machine limit):\n");
	for (size_t i = 0; i < ne; i++) {
		eng_res_t *r = &res[i];
		printf("  %-8s", r->eng->name);
		if (r->seq.ok)
			printf(" seq load %.1f MB/s logical = %.2f of bandwidth (%.2f counting all it "
			       "wrote);",
			       r->seq.keys_per_s * (KEY_LEN + VALUE_LEN) / 1e6,
			       r->seq.keys_per_s * (KEY_LEN + VALUE_LEN) / 1e6 / m.seq_write_mbps,
			       (double)r->seq.written / (r->seq.seconds + r->seq.settle_s) / 1e6 / m.seq_write_mbps);
		if (r->rnd.ok)
			printf(" random load %.2f (%.2f);",
			       r->rnd.keys_per_s * (KEY_LEN + VALUE_LEN) / 1e6 / m.seq_write_mbps,
			       (double)r->rnd.written / (r->rnd.seconds + r->rnd.settle_s) / 1e6 / m.seq_write_mbps);
		for (unsigned w = 0; w < o.nwriters; w++)
			if (r->sync_ok[w])
				printf(" %u writer%s %.2f of 1/fdatasync;", o.writers[w],
				       o.writers[w] == 1 ? "" : "s",
				       r->sync_rate[w] * m.fdatasync_overwrite_us / 1e6);
		if (r->reads_ok && m.rand_read_us_p50 > 0)
			printf(" reads %.2f x 1/(4 KiB device read)",
			       r->reads_per_s * m.rand_read_us_p50 / 1e6);
		printf("\n");
	}

	printf("\nresults: %llu keys, ratio = ingot / RocksDB; reads were %s\n",
	       (unsigned long long)o.keys, cold ? "cold (page cache dropped, engine reopened)"
					      : "after a reopen, page cache WARM");
	printf("| %-34s | %14s | %14s | %6s | %-8s | %-4s |\n", "measure", "ingot", "rocksdb",
	       "ratio", "goal", "");
	printf("|%.36s|%.15s:|%.15s:|%.7s:|%.10s|%.6s|\n", "------------------------------------",
	       "----------------", "----------------", "--------", "----------", "------");
	row("sequential load (keys/s)", a->seq.ok, a->seq.keys_per_s, b->seq.ok, b->seq.keys_per_s,
	    '>', 1.2, "%.0f");
	row("random load (keys/s)", a->rnd.ok, a->rnd.keys_per_s, b->rnd.ok, b->rnd.keys_per_s, '>',
	    1.2, "%.0f");
	for (unsigned w = 0; w < o.nwriters; w++) {
		char label[64];
		snprintf(label, sizeof label, "synced writes, %u writer%s (/s)", o.writers[w],
			 o.writers[w] == 1 ? "" : "s");
		row(label, a->sync_ok[w], a->sync_rate[w], b->sync_ok[w], b->sync_rate[w], '>', 1.0,
		    "%.0f");
	}
	row("random reads (reads/s)", a->reads_ok, a->reads_per_s, b->reads_ok, b->reads_per_s, '>',
	    1.0, "%.0f");
	row("scan (cells/s)", a->scan_ok, a->scan_cells_per_s, b->scan_ok, b->scan_cells_per_s, '>',
	    1.0, "%.0f");
	row("disk after full compaction (MB)", a->compact_ok, (double)a->disk_compacted / 1e6,
	    b->compact_ok, (double)b->disk_compacted / 1e6, '<', 1.0, "%.1f");
	row("space amplification (disk/logical)", a->compact_ok, (double)a->disk_compacted / logical,
	    b->compact_ok, (double)b->disk_compacted / logical, 0, 0, "%.3f");
	row("disk after random load+settle (MB)", a->rnd.ok, (double)a->rnd.disk / 1e6, b->rnd.ok,
	    (double)b->rnd.disk / 1e6, 0, 0, "%.1f");
	row("settle after random load (s)", a->rnd.ok, a->rnd.settle_s, b->rnd.ok, b->rnd.settle_s, 0,
	    0, "%.1f");
	row("settle after sequential load (s)", a->seq.ok, a->seq.settle_s, b->seq.ok,
	    b->seq.settle_s, 0, 0, "%.1f");
	row("full compaction (s)", a->compact_ok, a->compact_s, b->compact_ok, b->compact_s, 0, 0,
	    "%.1f");
	row("write amp., random load+settle", a->rnd.ok, (double)a->rnd.written / logical, b->rnd.ok,
	    (double)b->rnd.written / logical, 0, 0, "%.2f");
	static const char *const pn[5] = {"p50", "p90", "p99", "p99.9", "max"};
	for (int p = 0; p < 5; p++) {
		char label[64];
		snprintf(label, sizeof label, "seq load batch latency %s (ms)", pn[p]);
		row(label, a->seq.ok, a->seq.lat[p], b->seq.ok, b->seq.lat[p], 0, 0, "%.2f");
	}
	for (int p = 0; p < 5; p++) {
		char label[64];
		snprintf(label, sizeof label, "rnd load batch latency %s (ms)", pn[p]);
		row(label, a->rnd.ok, a->rnd.lat[p], b->rnd.ok, b->rnd.lat[p], 0, 0, "%.2f");
	}
	row("slowest 1 s of seq load (x mean)", a->seq.ok, a->seq.worst_window, b->seq.ok,
	    b->seq.worst_window, 0, 0, "%.2f");
	row("slowest 1 s of rnd load (x mean)", a->rnd.ok, a->rnd.worst_window, b->rnd.ok,
	    b->rnd.worst_window, 0, 0, "%.2f");
	row("read latency p99 (us)", a->reads_ok, a->read_lat[1], b->reads_ok, b->read_lat[1], 0, 0,
	    "%.1f");
	row("reopen before reads (s)", a->reads_ok, a->open_s, b->reads_ok, b->open_s, 0, 0, "%.2f");
	printf("content hash: expected %016llx, ingot %s, rocksdb %s\n",
	       (unsigned long long)expected,
	       a->scan_cells ? (a->hash == expected ? "same" : "DIFFERENT") : "n/a",
	       b->scan_cells ? (b->hash == expected ? "same" : "DIFFERENT") : "n/a");
	printf("data compressed/raw %.3f (zstd %d, %u-byte blocks); machine: fdatasync %.0f us "
	       "appending, %.0f us overwriting; sequential write %.0f MB/s\n",
	       ratio, o.set.zstd_level, o.set.block_size, m.fdatasync_us_p50,
	       m.fdatasync_overwrite_us, m.seq_write_mbps);
	printf("goals met: %d of %d; run took %.0f s; load average %.2f at start, %.2f at end\n",
	       g_pass, g_goals, now_s() - t_run, load0[0], load1[0]);

	int status = 0;
	for (size_t i = 0; i < ne; i++) {
		eng_res_t *r = &res[i];
		if (r->failed) {
			printf("ERROR: %s failed: %s\n", r->eng->name, r->error);
			status = 1;
		}
		if (r->read_bad) {
			printf("ERROR: %s: %llu of %llu reads wrong\n", r->eng->name,
			       (unsigned long long)r->read_bad, (unsigned long long)o.reads);
			status = 1;
		}
		if (r->scan_cells && !r->scan_ok) {
			printf("ERROR: %s: the scan returned %llu cells, hash %016llx (expected %llu, "
			       "%016llx)\n",
			       r->eng->name, (unsigned long long)r->scan_cells,
			       (unsigned long long)r->hash, (unsigned long long)o.keys,
			       (unsigned long long)expected);
			status = 1;
		}
	}
	if (a->scan_cells && b->scan_cells && a->hash != b->hash) {
		printf("ERROR: the engines hold different data\n");
		status = 1;
	}
	return status;
}
