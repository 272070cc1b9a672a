/* The Compactor actor: merges fragment chains by the size-tiered policy
 * (storage/compact_policy.c: runs of similar-sized files, smallest tier
 * first, so each byte is rewritten about once per tier and write
 * amplification stays near log_factor of the data size), applies purge
 * policies and drops what erasures hide. After each pass it publishes the
 * compaction debt (the bytes the policy would still rewrite), which the
 * write path turns into smooth backpressure between debt_soft and
 * debt_hard. ig_store_compact asks it for full merges.
 */
#include "store_int.h"

#include <stdlib.h>

/* Compacts every tablet of t; returns the debt left. */
static uint64_t compact_table(ig_store_t *s, ig_table_t *t, bool full, int *rc)
{
	ig__tablet_t **v;
	size_t n;
	uint64_t debt = 0;
	char why[512];

	if (ig__range_map_range(t->map, NULL, 0, NULL, 0, &v, &n) != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		size_t did = 0;
		ig__tablet_size_t z;

		if (*rc == 0 && (*rc = ig__tablet_compact(s, t, v[i], full, &did, why, sizeof why)))
			ig__store_bg_fail(s, *rc, why);
		if (did) {
			atomic_store(&t->dirty, true);
			(void)ig_tell(s->config_writer, IG__ST_MSG_DIRTY, NULL, 0, IG_NOREF);
		}
		ig__tablet_size(s, t, v[i], &z);
		debt += z.debt;
		ig__tablet_unref(v[i]);
	}
	free(v);
	return debt;
}

static int compact_all(ig_store_t *s, ig_table_t *only, bool full)
{
	ig_table_t **v;
	size_t n;
	uint64_t debt = 0;
	int rc = ig__store_tables(s, true, &v, &n);

	for (size_t i = 0; i < n; i++)
		if (!only || v[i] == only)
			debt += compact_table(s, v[i], full, &rc);
	ig__tables_release(v, n);
	if (!only)
		atomic_store(&s->debt, debt);
	ig__throttle_wake(s);
	return rc;
}

static void on_compact(ig_store_t *s, ig__st_req_t *r)
{
	int rc = compact_all(s, r->table, r->full);

	if (rc == 0)
		rc = ig__store_request(s->config_writer, IG__ST_MSG_DIRTY, NULL, false);
	r->done.rc = rc;
}

static int cmp_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	ig_store_t *s = *(ig_store_t **)state;

	(void)ctx;
	ig_blocking_begin();
	switch (msg->type) {
	case IG__ST_MSG_TICK:
		if (!s->o.manual && !atomic_load(&s->bg_error))
			(void)compact_all(s, NULL, false);
		break;
	case IG__ST_MSG_COMPACT:
		on_compact(s, (ig__st_req_t *)msg->data);
		break;
	case IG__ST_MSG_BARRIER:
		((ig__st_req_t *)msg->data)->done.rc = 0;
		break;
	}
	ig_blocking_end();
	return 0;
}

static int cmp_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(ig_store_t **)state = arg;
	return 0;
}

int ig__compactor_spawn(ig_store_t *s)
{
	s->cmp_props = (ig_props_t){.behavior = cmp_behavior,
				    .state_size = sizeof(ig_store_t *),
				    .init = cmp_init,
				    .dispatcher = s->io};
	return ig_system_spawn(s->sys, &s->cmp_props, NULL, s, &s->compactor);
}
