/* The store's life cycle: opening (directories, runtime, TabletLog,
 * recovery, actors), closing, stats, and small shared helpers
 * (store_int.h has the design). */
#include "store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MiB ((uint64_t)1 << 20)

/* ---- helpers -------------------------------------------------------------- */

int ig__say(char *why, size_t why_len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

void ig__store_rcu_thread(void)
{
	(void)ig_rcu_register_thread();
}

void ig__store_bg_fail(ig_store_t *s, int rc, const char *why)
{
	int none = 0;

	if (atomic_compare_exchange_strong(&s->bg_error, &none, rc))
		snprintf(s->bg_why, sizeof s->bg_why, "%s", why ? why : ig_strerror(rc));
	ig_log(s->sys, NULL, 3, "store %s: %s", s->dir, why ? why : ig_strerror(rc));
}

/* ---- options -------------------------------------------------------------- */

static void defaults(ig_store_options_t *o)
{
	if (!o->memory_budget)
		o->memory_budget = 64 * MiB;
	if (!o->log_budget)
		o->log_budget = 256 * MiB;
	if (!o->log_queue_bytes)
		o->log_queue_bytes = 64 * MiB;
	if (!o->segment_bytes)
		o->segment_bytes = 64 * MiB;
	if (!o->split_bytes)
		o->split_bytes = 512 * MiB;
	if (!o->join_bytes)
		o->join_bytes = o->split_bytes == UINT64_MAX ? 0 : o->split_bytes / 8;
	if (!o->io_threads)
		o->io_threads = 2;
	if (!o->compact_factor)
		o->compact_factor = 4;
	if (!o->compact_min_merge)
		o->compact_min_merge = 4;
	if (!o->compact_max_merge)
		o->compact_max_merge = 16;
	if (!o->debt_soft)
		o->debt_soft = 1024 * MiB;
	if (!o->debt_hard)
		o->debt_hard = 4 * o->debt_soft;
}

static int check_options(const ig_store_options_t *o, char *why, size_t why_len)
{
	if (o->compact_factor < 2)
		return ig__say(why, why_len, IG_EINVAL, "compact_factor must be at least 2");
	if (o->compact_min_merge < 2 || o->compact_max_merge < o->compact_min_merge)
		return ig__say(why, why_len, IG_EINVAL,
			       "need 2 <= compact_min_merge <= compact_max_merge");
	if (o->debt_hard < o->debt_soft)
		return ig__say(why, why_len, IG_EINVAL, "debt_hard is below debt_soft");
	if (o->join_bytes >= o->split_bytes / 2)
		return ig__say(why, why_len, IG_EINVAL,
			       "join_bytes must be under half of split_bytes (or tablets "
			       "would split and join forever)");
	if (o->memory_budget < MiB)
		return ig__say(why, why_len, IG_EINVAL, "memory_budget is under 1 MiB");
	return 0;
}

/* ---- opening ---------------------------------------------------------------- */

static char *join_path(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

static int make_dir(const char *path, char *why, size_t why_len)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	return ig__say(why, why_len, -errno, "%s: %s", path, strerror(errno));
}

static int make_dirs(ig_store_t *s, char *why, size_t why_len)
{
	int rc;

	s->log_dir = join_path(s->dir, IG__STORE_LOG);
	s->frag_dir = join_path(s->dir, IG__STORE_FRAGS);
	if (!s->log_dir || !s->frag_dir)
		return IG_ENOMEM;
	if ((rc = make_dir(s->dir, why, why_len)) != 0)
		return rc;
	return make_dir(s->frag_dir, why, why_len);
}

static int init_sync(ig_store_t *s)
{
	pthread_mutex_init(&s->wmu, NULL);
	pthread_mutex_init(&s->tmu, NULL);
	pthread_mutex_init(&s->fs_mu, NULL);
	pthread_mutex_init(&s->pos_mu, NULL);
	pthread_mutex_init(&s->cw_mu, NULL);
	pthread_mutex_init(&s->thr_mu, NULL);
	pthread_cond_init(&s->thr_cv, NULL);
	s->logpos = calloc(IG__LOGPOS_RING, sizeof *s->logpos);
	return s->logpos ? 0 : IG_ENOMEM;
}

static int start_runtime(ig_store_t *s)
{
	ig_dispatcher_config_t dc = {.name = "store-io", .threads = s->o.io_threads + 1};
	int rc;

	if (s->o.system) {
		s->sys = s->o.system;
	} else {
		ig_system_config_t sc = {.name = "ingot-store"};

		if ((rc = ig_system_create(&sc, &s->sys)) != 0)
			return rc;
		s->own_sys = true;
	}
	return ig_dispatcher_create(s->sys, &dc, &s->io);
}

static int start_log(ig_store_t *s, char *why, size_t why_len)
{
	ig_log_error_t err = {0};
	ig__tablet_log_config_t lc = {.dir = s->log_dir,
				      .max_bytes = s->o.log_queue_bytes,
				      .log = {.segment_max = s->o.segment_bytes},
				      .open_err = &err};
	int rc = ig__tablet_log_start(s->sys, &lc, &s->tl);

	if (rc == IG_ECORRUPT && err.msg[0])
		return ig__say(why, why_len, rc, "%s", err.msg);
	if (rc != 0)
		return ig__say(why, why_len, rc, "%s: cannot open the log: %s", s->log_dir,
			       ig_strerror(rc));
	s->seq = ig__tablet_log_seq(s->tl);
	return 0;
}

static int start_actors(ig_store_t *s)
{
	int rc = ig__config_writer_spawn(s);

	if (rc == 0)
		rc = ig__gc_spawn(s);
	if (rc == 0)
		rc = ig__serializer_spawn(s);
	if (rc == 0)
		rc = ig__compactor_spawn(s);
	return rc;
}

static void free_store(ig_store_t *s)
{
	ig__tables_release(s->tables, s->ntables);
	ig__table_unref(s->meta);
	for (size_t i = 0; i < s->nroot_names; i++)
		free(s->root_names[i]);
	free(s->root_names);
	free(s->inflight);
	free(s->logpos);
	free(s->dir);
	free(s->log_dir);
	free(s->frag_dir);
	pthread_mutex_destroy(&s->wmu);
	pthread_mutex_destroy(&s->tmu);
	pthread_mutex_destroy(&s->fs_mu);
	pthread_mutex_destroy(&s->pos_mu);
	pthread_mutex_destroy(&s->cw_mu);
	pthread_mutex_destroy(&s->thr_mu);
	pthread_cond_destroy(&s->thr_cv);
	free(s);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_steps(ig_store_t *s, char *why, size_t why_len)
{
	int64_t t0;
	int rc;

	if ((rc = check_options(&s->o, why, why_len)) != 0 || (rc = init_sync(s)) != 0 ||
	    (rc = make_dirs(s, why, why_len)) != 0)
		return rc;
	if ((rc = start_runtime(s)) != 0)
		return ig__say(why, why_len, rc, "cannot start the runtime: %s", ig_strerror(rc));
	if ((rc = start_log(s, why, why_len)) != 0)
		return rc;
	ig__store_rcu_thread();
	t0 = mono_ns();
	if ((rc = ig__store_recover(s, why, why_len)) != 0)
		return rc;
	s->recovery_ns = (uint64_t)(mono_ns() - t0);
	if ((rc = start_actors(s)) != 0)
		return ig__say(why, why_len, rc, "cannot start the store's actors: %s",
			       ig_strerror(rc));
	return 0;
}

int ig_store_open(const char *dir, const ig_store_options_t *opts, ig_store_t **out,
		  char *why, size_t why_len)
{
	ig_store_t *s;
	int rc;

	if (!dir || !*dir || !out)
		return ig__say(why, why_len, IG_EINVAL, "no directory given");
	if (!(s = calloc(1, sizeof *s)) || !(s->dir = strdup(dir))) {
		free(s);
		return IG_ENOMEM;
	}
	if (opts)
		s->o = *opts;
	defaults(&s->o);
	rc = open_steps(s, why, why_len);
	if (rc != 0) {
		atomic_store(&s->closing, true);
		(void)ig_store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* ---- closing ----------------------------------------------------------------- */

/* Stops one actor after what it has queued, and waits until it is gone. */
static void stop_actor(ig_ref_t *ref)
{
	if (ig_ref_is_none(*ref))
		return;
	(void)ig__store_barrier(*ref);
	(void)ig_stop(*ref);
	/* Handled before the stop took effect, or dropped with the mailbox
	 * after its last turn: either way the actor is done with the store. */
	(void)ig__store_barrier(*ref);
	*ref = IG_NOREF;
}

int ig_store_close(ig_store_t *s)
{
	int rc = 0, r2;

	if (!s)
		return 0;
	atomic_store(&s->closing, true);
	ig__store_rcu_thread();
	/* Background work first, so nothing new reaches the ConfigWriter;
	 * then its last write, then Gc, then the log. */
	stop_actor(&s->serializer);
	stop_actor(&s->compactor);
	if (!ig_ref_is_none(s->config_writer)) {
		stop_actor(&s->config_writer);
		rc = ig__config_write_dirty(s, NULL, 0);
	}
	stop_actor(&s->gc);
	if (s->tl && (r2 = ig__tablet_log_stop(s->tl)) != 0 && rc == 0)
		rc = r2;
	if (s->own_sys) {
		ig_system_shutdown(s->sys, IG_SEC(10));
		ig_system_destroy(s->sys);
	}
	free_store(s);
	return rc;
}

/* ---- stats --------------------------------------------------------------- */

static void add_table_stats(ig_store_t *s, ig_table_t *t, ig_store_stats_t *out)
{
	ig__tablet_t **v;
	size_t n;

	if (ig__range_map_range(t->map, NULL, 0, NULL, 0, &v, &n) != 0)
		return;
	out->tablets += n;
	for (size_t i = 0; i < n; i++) {
		ig__tablet_size_t z;

		ig__tablet_size(s, t, v[i], &z);
		out->memory_bytes += z.mem_bytes;
		out->disk_bytes += z.disk_bytes;
		out->disk_cells += z.disk_cells;
		out->fragments += z.fragments;
		out->compaction_debt += z.debt;
		ig__tablet_unref(v[i]);
	}
	free(v);
}

void ig_store_stats(ig_store_t *s, ig_store_stats_t *out)
{
	ig__tablet_log_stats_t ls;
	ig_table_t **v;
	size_t n;
	uint64_t min_replay;

	*out = (ig_store_stats_t){0};
	ig__store_rcu_thread();
	if (ig__store_tables(s, false, &v, &n) == 0) {
		out->tables = n;
		for (size_t i = 0; i < n; i++)
			add_table_stats(s, v[i], out);
		ig__tables_release(v, n);
	}
	min_replay = ig__durable_min_replay(s);
	out->applied_txn = atomic_load(&s->applied);
	out->durable_txn = ig_seq_committed(s->seq);
	out->log_bytes = atomic_load(&s->log_bytes) - ig__log_bytes_at(s, min_replay);
	ig__tablet_log_stats(s->tl, &ls);
	out->log_segments = ls.segments;
	out->segments_deleted = ls.segments_deleted;
	out->log_batches = ls.batches;
	out->log_fsyncs = ls.fsyncs;
	out->log_commits = ls.commits;
	out->flushes = atomic_load(&s->flushes);
	out->compactions = atomic_load(&s->compactions);
	out->splits = atomic_load(&s->splits);
	out->joins = atomic_load(&s->joins);
	out->bytes_flushed = atomic_load(&s->bytes_flushed);
	out->bytes_compacted = atomic_load(&s->bytes_compacted);
	out->files_deleted = atomic_load(&s->files_deleted);
	out->throttled_ns = atomic_load(&s->throttled_ns);
	out->recovered_txns = s->recovered_txns;
	out->recovery_ns = s->recovery_ns;
}
