/* Pool routers (ig_router_spawn): an actor that spawns and supervises a
 * pool of identical routees and passes each message on to one of them
 * (round-robin, smallest-mailbox, consistent-hash) or to all (broadcast),
 * keeping the original sender.
 *
 * The router is an ordinary actor: its props carry the routees' supervisor,
 * so supervision of the pool is the runtime's own; it watches its routees,
 * drops those that stop for good, and stops itself when none are left.
 * A PoisonPill stops it like any actor, and stopping an actor stops its
 * children first. Its props and config (the spawn arg, heap-allocated
 * here) must outlive every restart, so they are freed only by the final
 * fini; the pool and the hash ring live in the runtime-allocated state.
 */
#include <string.h>

#include "runtime_int.h"

/* Points per routee on the hash ring: enough that keys spread within a few
 * percent of evenly, and that a removed routee's keys scatter over all the
 * others rather than moving to one neighbour. */
#define VNODES 128
/* Keeps the state size (pool + ring) far from overflow. */
#define ROUTEES_MAX 65536u

typedef struct routee {
	ig_ref_t ref;
	uint32_t id; /* spawn index: the routee's identity on the ring */
} routee_t;

typedef struct ring_point {
	uint64_t hash;
	uint32_t id;
} ring_point_t;

/* The spawn arg; owned by the router, freed by its final fini. */
typedef struct router_spec {
	ig_props_t props;         /* the router's own; supervisor = cfg.supervisor */
	ig_router_config_t cfg;   /* a copy; what it points to stays borrowed */
} router_spec_t;

/* The router's state, allocated with the actor (props.state_size) and
 * zeroed on restart; pool and ring follow it in the same block. */
typedef struct router_state {
	router_spec_t *spec;
	bool stopped;      /* post_stop ran: the next fini is the last */
	unsigned n;        /* live routees in pool, in spawn order */
	unsigned next;     /* round-robin cursor */
	size_t nring;      /* points on the ring (consistent hash only) */
	routee_t *pool;
	ring_point_t *ring;
} router_state_t;

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

static size_t pool_offset(void)
{
	return ALIGN8(sizeof(router_state_t));
}

static size_t ring_offset(unsigned routees)
{
	return ALIGN8(pool_offset() + routees * sizeof(routee_t));
}

static size_t state_size(const ig_router_config_t *cfg)
{
	size_t ring = cfg->kind == IG_ROUTER_CONSISTENT_HASH
			      ? (size_t)cfg->routees * VNODES * sizeof(ring_point_t)
			      : 0;
	return ring_offset(cfg->routees) + ring;
}

/* ---- hashing ------------------------------------------------------------------ */

/* A 64-bit finalizer (xor-shift-multiply): user keys are often small
 * consecutive integers, which must land all over the ring. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t hash_bytes(const void *data, size_t size)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (size_t i = 0; i < size; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static int point_cmp(const void *a, const void *b)
{
	const ring_point_t *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* A routee's points depend only on its spawn index, so the ring of a pool
 * is the same in every run and every restart. */
static void ring_add(router_state_t *s, uint32_t id)
{
	for (uint32_t v = 0; v < VNODES; v++) {
		uint64_t h = mix64(((uint64_t)id << 32 | v) ^ 0x7f4a7c159e3779b9ull);
		s->ring[s->nring++] = (ring_point_t){.hash = h, .id = id};
	}
}

/* Removing a routee's points keeps the ring sorted, and every key that did
 * not map to it keeps its routee. */
static void ring_remove(router_state_t *s, uint32_t id)
{
	size_t k = 0;
	for (size_t i = 0; i < s->nring; i++)
		if (s->ring[i].id != id)
			s->ring[k++] = s->ring[i];
	s->nring = k;
}

/* The routee owning key: the first point at or after it, wrapping. */
static uint32_t ring_lookup(const router_state_t *s, uint64_t key)
{
	uint64_t h = mix64(key);
	size_t lo = 0, hi = s->nring;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->ring[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return s->ring[lo == s->nring ? 0 : lo].id;
}

/* ---- the pool ------------------------------------------------------------------ */

static int pool_find_ref(const router_state_t *s, ig_ref_t ref)
{
	for (unsigned i = 0; i < s->n; i++)
		if (ig_ref_eq(s->pool[i].ref, ref))
			return (int)i;
	return -1;
}

static int pool_find_id(const router_state_t *s, uint32_t id)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->pool[i].id == id)
			return (int)i;
	return -1;
}

/* Order is kept: smallest-mailbox breaks ties by spawn order. */
static void pool_remove(router_state_t *s, unsigned i)
{
	if (s->spec->cfg.kind == IG_ROUTER_CONSISTENT_HASH)
		ring_remove(s, s->pool[i].id);
	memmove(&s->pool[i], &s->pool[i + 1], (s->n - i - 1) * sizeof s->pool[0]);
	s->n--;
	if (i < s->next)
		s->next--;
	if (s->next >= s->n)
		s->next = 0;
}

static void spawn_routees(ig_ctx_t *ctx, router_state_t *s)
{
	const ig_router_config_t *cfg = &s->spec->cfg;
	ig_system_t *sys = ig_ctx_system(ctx);
	/* smallest-mailbox reads the routees' queue lengths */
	uint32_t flags = cfg->kind == IG_ROUTER_SMALLEST_MAILBOX ? IG__AF_COUNTED : 0;
	for (uint32_t id = 0; id < cfg->routees; id++) {
		ig_ref_t ref;
		int rc = ig__spawn(sys, ctx->actor, cfg->routee_props, NULL, cfg->routee_arg,
				   flags, NULL, &ref);
		if (rc == 0 && (rc = ig_watch(ctx, ref)) != 0)
			ig_stop(ref); /* an unwatched routee could not be dropped */
		if (rc) {
			ig_log(sys, ctx, IG_LOG_ERROR, "router: routee %u not spawned: %s", id,
			       ig_strerror(rc));
			continue;
		}
		s->pool[s->n++] = (routee_t){.ref = ref, .id = id};
		if (cfg->kind == IG_ROUTER_CONSISTENT_HASH)
			ring_add(s, id);
	}
	if (cfg->kind == IG_ROUTER_CONSISTENT_HASH)
		qsort(s->ring, s->nring, sizeof s->ring[0], point_cmp);
	if (s->n == 0)
		ig_stop(ig_self(ctx)); /* nothing to route to; watchers see it */
}

/* ---- choosing a routee ------------------------------------------------------------ */

/* A routee's load as smallest-mailbox sees it: queued messages, plus one
 * unless it is idle (its mailbox's idle bit, the low bit of mq.head, is
 * set only while it is empty and not running). 0 means idle and empty.
 * Caller holds the RCU read lock. */
static int64_t routee_load(ig_ref_t ref)
{
	ig_actor_t *a = ig__slot_resolve(ref);
	if (!a)
		return INT64_MAX; /* gone: its Terminated is on the way */
	int32_t queued = atomic_load_explicit(&a->mq_count, memory_order_relaxed);
	bool idle = atomic_load_explicit(&a->mq.head, memory_order_relaxed) & 1u;
	return (queued > 0 ? queued : 0) + (idle ? 0 : 1);
}

/* The first idle routee, else the least loaded; ties go to the first. */
static unsigned pick_smallest(const router_state_t *s)
{
	unsigned best = 0;
	int64_t best_load = INT64_MAX;
	ig__rcu_read_lock();
	for (unsigned i = 0; i < s->n; i++) {
		int64_t l = routee_load(s->pool[i].ref);
		if (l < best_load) {
			best = i;
			best_load = l;
		}
		if (l == 0)
			break;
	}
	ig__rcu_read_unlock();
	return best;
}

static unsigned pick_round_robin(router_state_t *s)
{
	unsigned i = s->next;
	s->next = i + 1 < s->n ? i + 1 : 0;
	return i;
}

/* An ig_tell_ptr payload: data is the sender's pointer, and size is only
 * informative, so its bytes can be neither copied nor hashed. Timer
 * messages hold their timer in ptr but carry a copied payload. */
static bool is_ptr_payload(const ig_ctx_t *ctx)
{
	const ig__msg_t *m = ctx->cur;
	if (m->flags & IG__MF_TIMER)
		return false;
	return m->dtor || (m->env.data && m->env.data != (const void *)m->inl);
}

/* Turns the current message into a dead letter (the runtime frees it). */
static void reject(ig_ctx_t *ctx, const ig_msg_t *msg, int reason)
{
	ig__msg_t *m = ctx->cur;
	if (!m || &m->env != msg)
		return;
	ctx->cur = NULL;
	ig__dead_letter(ig_ctx_system(ctx), ig_self(ctx), m, reason);
}

static void broadcast(ig_ctx_t *ctx, const router_state_t *s, const ig_msg_t *msg)
{
	if (is_ptr_payload(ctx)) {
		reject(ctx, msg, IG_EINVAL);
		return;
	}
	for (unsigned i = 0; i < s->n; i++) {
		int rc = ig_tell(s->pool[i].ref, msg->type, msg->data, msg->size, msg->sender);
		if (rc && rc != IG_ENOACTOR) /* ENOACTOR: a dead letter already */
			ig_log(ig_ctx_system(ctx), ctx, IG_LOG_WARN,
			       "router: broadcast to routee %u failed: %s", s->pool[i].id,
			       ig_strerror(rc));
	}
}

/* The pool index for msg, or -1 when msg cannot be routed (and was
 * rejected). */
static int choose(ig_ctx_t *ctx, router_state_t *s, const ig_msg_t *msg)
{
	const ig_router_config_t *cfg = &s->spec->cfg;
	switch (cfg->kind) {
	case IG_ROUTER_ROUND_ROBIN:
		return (int)pick_round_robin(s);
	case IG_ROUTER_SMALLEST_MAILBOX:
		return (int)pick_smallest(s);
	case IG_ROUTER_CONSISTENT_HASH: {
		if (!cfg->key && is_ptr_payload(ctx)) {
			reject(ctx, msg, IG_EINVAL);
			return -1;
		}
		uint64_t key = cfg->key ? cfg->key(msg) : hash_bytes(msg->data, msg->size);
		int i = pool_find_id(s, ring_lookup(s, key));
		IG_ASSERT(i >= 0); /* the ring holds exactly the pool's points */
		return i;
	}
	case IG_ROUTER_BROADCAST:
		break;
	}
	IG_ASSERT(!"not a single-routee router");
	return -1;
}

/* ---- the router actor -------------------------------------------------------------- */

static void routee_terminated(ig_ctx_t *ctx, router_state_t *s, const ig_msg_t *msg)
{
	if (msg->size < sizeof(ig_terminated_t))
		return;
	ig_terminated_t t;
	memcpy(&t, msg->data, sizeof t);
	int i = pool_find_ref(s, t.ref);
	if (i < 0)
		return; /* a routee from before a restart */
	pool_remove(s, (unsigned)i);
	ig_system_t *sys = ig_ctx_system(ctx);
	ig_log(sys, ctx, IG_LOG_INFO, "router: routee stopped (%s); %u left",
	       ig_strerror(t.reason), s->n);
	if (s->n == 0) {
		ig_log(sys, ctx, IG_LOG_WARN, "router: no routees left; stopping");
		ig_stop_self(ctx);
	}
}

static int router_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	router_state_t *s = state;
	if (msg->type == IG_MSG_TERMINATED) {
		routee_terminated(ctx, s, msg);
		return 0;
	}
	if (s->n == 0) {
		reject(ctx, msg, IG_ENOACTOR); /* stopping: nobody to route to */
		return 0;
	}
	if (s->spec->cfg.kind == IG_ROUTER_BROADCAST) {
		broadcast(ctx, s, msg);
		return 0;
	}
	int i = choose(ctx, s, msg);
	if (i >= 0)
		ig_forward(ctx, msg, s->pool[i].ref); /* a dead routee: a dead letter */
	return 0;
}

static int router_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	router_state_t *s = state;
	s->spec = arg;
	s->pool = (routee_t *)((char *)state + pool_offset());
	s->ring = s->spec->cfg.kind == IG_ROUTER_CONSISTENT_HASH
			  ? (ring_point_t *)((char *)state + ring_offset(s->spec->cfg.routees))
			  : NULL;
	return 0; /* never fails: a failed init would skip fini and leak spec */
}

static void router_pre_start(ig_ctx_t *ctx, void *state)
{
	spawn_routees(ctx, state);
}

/* The default would also run post_stop, which here means "stopped for
 * good"; a restart only needs the old routees gone (the runtime waits for
 * them before init and post_restart, which spawns new ones). */
static void router_pre_restart(ig_ctx_t *ctx, void *state, int err)
{
	(void)state;
	(void)err;
	ig__actor_stop_children(ctx->actor);
}

static void router_post_stop(ig_ctx_t *ctx, void *state)
{
	(void)ctx;
	router_state_t *s = state;
	s->stopped = true;
}

/* fini also runs before each restart's init; spec must outlive those. The
 * runtime reads nothing of props after the final fini. */
static void router_fini(void *state)
{
	router_state_t *s = state;
	if (s->stopped)
		free(s->spec);
}

static bool config_ok(const ig_router_config_t *cfg)
{
	return cfg && cfg->routees >= 1 && cfg->routees <= ROUTEES_MAX && cfg->routee_props &&
	       cfg->routee_props->behavior && cfg->kind >= IG_ROUTER_ROUND_ROBIN &&
	       cfg->kind <= IG_ROUTER_BROADCAST;
}

int ig_router_spawn(ig_system_t *sys, ig_ctx_t *ctx, const ig_router_config_t *cfg,
		    const char *name, ig_ref_t *out)
{
	if ((!sys && !ctx) || (ctx && !ctx->actor) || !config_ok(cfg))
		return IG_EINVAL;
	ig_actor_t *parent;
	if (ctx) {
		if (sys && sys != ig_ctx_system(ctx))
			return IG_EINVAL;
		sys = ig_ctx_system(ctx);
		parent = ctx->actor;
		if (parent->status >= IG__ST_STOPPING)
			return IG_ESTOPPED;
	} else {
		parent = sys->user;
	}
	router_spec_t *spec = calloc(1, sizeof *spec);
	if (!spec)
		return IG_ENOMEM;
	spec->cfg = *cfg;
	spec->props = (ig_props_t){
		.behavior = router_behavior,
		.state_size = state_size(cfg),
		.init = router_init,
		.fini = router_fini,
		.pre_start = router_pre_start,
		.post_stop = router_post_stop,
		.pre_restart = router_pre_restart,
		.supervisor = cfg->supervisor,
	};
	/* From here spec is the router's: its final fini frees it. */
	int rc = ig__spawn(sys, parent, &spec->props, name, spec, 0, NULL, out);
	if (rc)
		free(spec);
	return rc;
}
