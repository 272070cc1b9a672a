/* Actor refs and names: the global slot table that turns an ig_ref_t into a
 * live actor, the RCU glue that keeps a resolved actor's memory valid for
 * the sender, per-thread registration, and the path registry of named
 * actors.
 */
/* The inlined read-side fast path, except under ThreadSanitizer: liburcu's
 * inline code uses plain volatile accesses TSan would flag; its library
 * functions are not instrumented. */
#if !defined(__SANITIZE_THREAD__)
#define _LGPL_SOURCE
#endif
#include <urcu/urcu-memb.h>

#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "runtime_int.h"

/* ---- threads and RCU ------------------------------------------------------ */

static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
IG_TLS bool ig__thread_registered;
/* Dispatcher threads stay inside one read-side section and pass quiescent
 * points between batches of turns and before they park, so their sends
 * need no read lock of their own. */
static IG_TLS bool in_worker_section;

static void slot_cache_flush(void);

static void thread_exit(void *unused)
{
	(void)unused;
	ig__msg_cache_flush();
	slot_cache_flush();
	if (ig__thread_registered) {
		urcu_memb_unregister_thread();
		ig__thread_registered = false;
	}
}

static void make_key(void)
{
	IG_ASSERT(pthread_key_create(&thread_key, thread_exit) == 0);
}

bool ig__thread_init_slow(void)
{
	pthread_once(&thread_once, make_key);
	if (pthread_setspecific(thread_key, (void *)1) != 0)
		return false;
	urcu_memb_register_thread();
	ig__thread_registered = true;
	return true;
}

void ig__rcu_read_lock(void)
{
	if (in_worker_section)
		return;
	IG_ASSERT(ig__thread_init());
	urcu_memb_read_lock();
}

#ifdef IG_TSAN
/* Every read-side section "releases" here and every reclaim "acquires":
 * the happens-before that a grace period gives, in terms TSan sees. */
static char tsan_rcu_sync;
/* And every callback releases here; rcu_barrier() acquires. */
static char tsan_barrier_sync;
#define RCU_SECTION_END() IG_TSAN_RELEASE(&tsan_rcu_sync)
#else
#define RCU_SECTION_END() ((void)0)
#endif

void ig__rcu_read_unlock(void)
{
	if (!in_worker_section) {
		RCU_SECTION_END();
		urcu_memb_read_unlock();
	}
}

void ig__rcu_worker_enter(void)
{
	IG_ASSERT(ig__thread_init());
	urcu_memb_read_lock();
	in_worker_section = true;
}

void ig__rcu_worker_quiescent(void)
{
	RCU_SECTION_END();
	urcu_memb_read_unlock();
	urcu_memb_read_lock();
}

void ig__rcu_worker_leave(void)
{
	in_worker_section = false;
	RCU_SECTION_END();
	urcu_memb_read_unlock();
}

/* A behavior that blocks, or waits for a grace period, steps out of the
 * worker's section; mid-turn is as safe a quiescent point as between
 * turns, because an actor is only reclaimed in a turn of its own. */
static IG_TLS bool left_for_blocking;

void ig_blocking_begin(void)
{
	ig__worker_blocking();
	if (!in_worker_section)
		return;
	ig__rcu_worker_leave();
	left_for_blocking = true;
}

void ig_blocking_end(void)
{
	ig__worker_unblocking();
	if (!left_for_blocking)
		return;
	left_for_blocking = false;
	ig__rcu_worker_enter();
}

bool ig_rcu_register_thread(void)
{
	return ig__thread_init();
}

void ig__rcu_thread_offline(void)
{
	thread_exit(NULL);
}

_Static_assert(sizeof(struct rcu_head) == 2 * sizeof(void *), "rcu_head fits the union");

static void reclaim_cb(struct rcu_head *head)
{
	ig_actor_t *a = (ig_actor_t *)((char *)head - offsetof(ig_actor_t, rcu_next));
#ifdef IG_TSAN
	IG_TSAN_ACQUIRE(&tsan_rcu_sync);
#endif
	/* No sender can reach a any more; a may still be queued on a
	 * dispatcher, so it frees itself in its own turn. */
	IG_ASSERT(ig__send_sys_actor(a, IG__SYS_RECLAIM, 0, NULL) == 0);
#ifdef IG_TSAN
	IG_TSAN_RELEASE(&tsan_barrier_sync); /* ordered before rcu_barrier() returns */
#endif
}

void ig__rcu_defer_reclaim(ig_actor_t *a)
{
	urcu_memb_call_rcu((struct rcu_head *)&a->rcu_next, reclaim_cb);
}

void ig__rcu_barrier(void)
{
	urcu_memb_barrier();
#ifdef IG_TSAN
	IG_TSAN_ACQUIRE(&tsan_barrier_sync);
#endif
}

/* ---- slot table ------------------------------------------------------------- */

#define SEG_BITS 16
#define SEG_SIZE (1u << SEG_BITS)
#define MAX_SEGS (1u << 15)
#define NO_SLOT UINT32_MAX
#define TCACHE 64

typedef struct slot {
	_Atomic(ig_actor_t *) actor;
	uint32_t gen;       /* generation of the next (or current) incarnation */
	uint32_t next_free;
} slot_t;

static _Atomic(slot_t *) segs[MAX_SEGS];
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t free_head = NO_SLOT; /* global free list, under slot_lock */
static uint32_t high_water;          /* slots ever handed out */

static IG_TLS struct {
	uint32_t idx[TCACHE];
	unsigned n;
} tcache;

static slot_t *slot_at(uint32_t i)
{
	slot_t *seg = atomic_load_explicit(&segs[i >> SEG_BITS], memory_order_acquire);
	return seg ? &seg[i & (SEG_SIZE - 1)] : NULL;
}

/* Fills the thread cache with up to half its size, under the lock. */
static int slot_refill(void)
{
	pthread_mutex_lock(&slot_lock);
	while (tcache.n < TCACHE / 2) {
		uint32_t i;
		if (free_head != NO_SLOT) {
			i = free_head;
			free_head = slot_at(i)->next_free;
		} else {
			if (high_water >= MAX_SEGS * SEG_SIZE)
				break;
			i = high_water;
			if ((i & (SEG_SIZE - 1)) == 0) {
				slot_t *seg = calloc(SEG_SIZE, sizeof(slot_t));
				if (!seg)
					break;
				for (uint32_t k = 0; k < SEG_SIZE; k++)
					seg[k].gen = 1;
				atomic_store_explicit(&segs[i >> SEG_BITS], seg,
						      memory_order_release);
			}
			high_water++;
		}
		tcache.idx[tcache.n++] = i;
	}
	pthread_mutex_unlock(&slot_lock);
	return tcache.n ? 0 : IG_ENOMEM;
}

static void slot_give_back(unsigned keep)
{
	pthread_mutex_lock(&slot_lock);
	while (tcache.n > keep) {
		uint32_t i = tcache.idx[--tcache.n];
		slot_at(i)->next_free = free_head;
		free_head = i;
	}
	pthread_mutex_unlock(&slot_lock);
}

static void slot_cache_flush(void)
{
	if (tcache.n)
		slot_give_back(0);
}

int ig__slot_alloc(ig_actor_t *a, ig_system_t *sys)
{
	if (!tcache.n) {
		int rc = slot_refill();
		if (rc)
			return rc;
		ig__thread_init(); /* so the cache goes back when the thread exits */
	}
	uint32_t i = tcache.idx[--tcache.n];
	slot_t *s = slot_at(i);
	a->slot = i;
	a->gen = (s->gen << 8) | sys->id;
	return 0;
}

void ig__slot_publish(ig_actor_t *a)
{
	atomic_store_explicit(&slot_at(a->slot)->actor, a, memory_order_release);
}

void ig__slot_release(ig_actor_t *a)
{
	slot_t *s = slot_at(a->slot);
	atomic_store_explicit(&s->actor, NULL, memory_order_release);
	s->gen = (s->gen + 1) & 0xFFFFFF;
	if (s->gen == 0)
		s->gen = 1;
	if (tcache.n == TCACHE)
		slot_give_back(TCACHE / 2);
	tcache.idx[tcache.n++] = a->slot;
	ig__thread_init();
}

ig_actor_t *ig__slot_resolve(ig_ref_t ref)
{
	uint32_t i = (uint32_t)ref.h;
	if (i == 0)
		return NULL;
	slot_t *s = slot_at(i - 1);
	if (!s)
		return NULL;
	ig_actor_t *a = atomic_load_explicit(&s->actor, memory_order_acquire);
	if (!a || a->gen != (uint32_t)(ref.h >> 32))
		return NULL;
	return a;
}

/* ---- paths ----------------------------------------------------------------- */

/* Caller holds the RCU read lock or runs in a's (or a descendant's) turn. */
int ig__actor_path(ig_actor_t *a, char *buf, size_t len)
{
	const char *parts[64];
	char anon[64][12];
	unsigned n = 0;
	for (ig_actor_t *x = a; x && x->parent; x = x->parent) {
		if (n == 64)
			return IG_ERANGE;
		ig__actor_ext_t *ext = atomic_load_explicit(&x->ext, memory_order_acquire);
		if (ext && ext->name) {
			parts[n] = ext->name;
		} else {
			snprintf(anon[n], sizeof anon[n], "$%" PRIu32, x->slot);
			parts[n] = anon[n];
		}
		n++;
	}
	size_t used = 0;
	if (n == 0) {
		if (len < 2)
			return IG_ERANGE;
		memcpy(buf, "/", 2);
		return 0;
	}
	while (n--) {
		size_t l = strlen(parts[n]);
		if (used + 1 + l + 1 > len)
			return IG_ERANGE;
		buf[used++] = '/';
		memcpy(buf + used, parts[n], l);
		used += l;
	}
	buf[used] = '\0';
	return 0;
}

int ig_ref_path(ig_ref_t ref, char *buf, size_t len)
{
	if (!buf)
		return IG_EINVAL;
	ig__rcu_read_lock();
	ig_actor_t *a = ig__slot_resolve(ref);
	int rc = a ? ig__actor_path(a, buf, len) : IG_ENOACTOR;
	ig__rcu_read_unlock();
	return rc;
}

/* ---- named actors ------------------------------------------------------------ */

struct ig__name_entry {
	struct ig__name_entry *next;
	ig_ref_t ref;
	char path[];
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static int names_grow(ig_system_t *sys)
{
	size_t cap = sys->names_cap ? sys->names_cap * 2 : 64;
	struct ig__name_entry **tab = calloc(cap, sizeof *tab);
	if (!tab)
		return IG_ENOMEM;
	for (size_t i = 0; i < sys->names_cap; i++) {
		struct ig__name_entry *e = sys->names[i], *next;
		for (; e; e = next) {
			next = e->next;
			size_t b = hash_str(e->path) & (cap - 1);
			e->next = tab[b];
			tab[b] = e;
		}
	}
	free(sys->names);
	sys->names = tab;
	sys->names_cap = cap;
	return 0;
}

int ig__names_add(ig_system_t *sys, const char *path, ig_ref_t ref)
{
	size_t l = strlen(path);
	struct ig__name_entry *e = malloc(sizeof *e + l + 1);
	if (!e)
		return IG_ENOMEM;
	memcpy(e->path, path, l + 1);
	e->ref = ref;
	pthread_mutex_lock(&sys->names_lock);
	int rc = 0;
	if (sys->names_len * 2 >= sys->names_cap)
		rc = names_grow(sys);
	if (rc == 0) {
		size_t b = hash_str(path) & (sys->names_cap - 1);
		for (struct ig__name_entry *x = sys->names[b]; x; x = x->next)
			if (strcmp(x->path, path) == 0)
				rc = IG_EEXIST;
		if (rc == 0) {
			e->next = sys->names[b];
			sys->names[b] = e;
			sys->names_len++;
		}
	}
	pthread_mutex_unlock(&sys->names_lock);
	if (rc)
		free(e);
	return rc;
}

void ig__names_remove(ig_system_t *sys, const char *path)
{
	pthread_mutex_lock(&sys->names_lock);
	if (sys->names_cap) {
		struct ig__name_entry **pp = &sys->names[hash_str(path) & (sys->names_cap - 1)];
		for (; *pp; pp = &(*pp)->next) {
			if (strcmp((*pp)->path, path) == 0) {
				struct ig__name_entry *e = *pp;
				*pp = e->next;
				free(e);
				sys->names_len--;
				break;
			}
		}
	}
	pthread_mutex_unlock(&sys->names_lock);
}

int ig__names_find(ig_system_t *sys, const char *path, ig_ref_t *out)
{
	int rc = IG_ENOTFOUND;
	pthread_mutex_lock(&sys->names_lock);
	if (sys->names_cap) {
		struct ig__name_entry *e = sys->names[hash_str(path) & (sys->names_cap - 1)];
		for (; e; e = e->next) {
			if (strcmp(e->path, path) == 0) {
				*out = e->ref;
				rc = 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&sys->names_lock);
	return rc;
}

void ig__names_free(ig_system_t *sys)
{
	for (size_t i = 0; i < sys->names_cap; i++) {
		struct ig__name_entry *e = sys->names[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(sys->names);
	sys->names = NULL;
	sys->names_cap = sys->names_len = 0;
}

/* "$<slot>" components name anonymous actors; the slot's current actor
 * counts only if its whole path matches. */
static int find_anonymous(ig_system_t *sys, const char *path, ig_ref_t *out)
{
	const char *last = strrchr(path, '/');
	if (!last || last[1] != '$')
		return IG_ENOTFOUND;
	char *end;
	unsigned long long slot = strtoull(last + 2, &end, 10);
	if (*end || end == last + 2 || slot >= (unsigned long long)MAX_SEGS * SEG_SIZE)
		return IG_ENOTFOUND;
	int rc = IG_ENOTFOUND;
	ig__rcu_read_lock();
	slot_t *s = slot_at((uint32_t)slot);
	ig_actor_t *a = s ? atomic_load_explicit(&s->actor, memory_order_acquire) : NULL;
	char buf[512];
	if (a && a->disp->sys == sys && ig__actor_path(a, buf, sizeof buf) == 0 &&
	    strcmp(buf, path) == 0) {
		*out = ig__ref_of(a);
		rc = 0;
	}
	ig__rcu_read_unlock();
	return rc;
}

int ig_lookup(ig_system_t *sys, const char *path, ig_ref_t *out)
{
	if (!sys || !path || path[0] != '/' || !out)
		return IG_EINVAL;
	ig_actor_t *g = NULL;
	if (strcmp(path, "/") == 0)
		g = sys->root;
	else if (strcmp(path, "/user") == 0)
		g = sys->user;
	else if (strcmp(path, "/system") == 0)
		g = sys->system;
	if (g) {
		*out = ig__ref_of(g);
		return 0;
	}
	ig_ref_t r;
	int rc = ig__names_find(sys, path, &r);
	if (rc == IG_ENOTFOUND)
		rc = find_anonymous(sys, path, &r);
	if (rc == 0)
		*out = r;
	return rc;
}
