/* Message blocks and the intrusive MPSC queue that mailboxes are made of.
 *
 * Blocks of the common size come from a per-thread free list: in a steady
 * flow a message is allocated and freed without touching malloc. A block
 * freed on another thread simply joins that thread's list (bounded).
 */
#include <string.h>

#include "runtime_int.h"

/* ---- MPSC queue ------------------------------------------------------------ */

#define IDLE_BIT ((uintptr_t)1)

void ig__mpsc_init(ig__mpsc_t *q, bool idle)
{
	atomic_init(&q->stub.next, NULL);
	q->tail = &q->stub;
	atomic_init(&q->head, (uintptr_t)&q->stub | (idle ? IDLE_BIT : 0));
}

bool ig__mpsc_push(ig__mpsc_t *q, ig__node_t *n)
{
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	uintptr_t prev = atomic_exchange_explicit(&q->head, (uintptr_t)n, memory_order_acq_rel);
	ig__node_t *p = (ig__node_t *)(prev & ~IDLE_BIT);
	atomic_store_explicit(&p->next, n, memory_order_release);
	return (prev & IDLE_BIT) != 0;
}

/* Pushing the stub back keeps the last real node poppable; only the
 * consumer does it, and only when the queue is down to one node. */
static void push_stub(ig__mpsc_t *q)
{
	atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
	uintptr_t prev = atomic_exchange_explicit(&q->head, (uintptr_t)&q->stub,
						  memory_order_acq_rel);
	ig__node_t *p = (ig__node_t *)(prev & ~IDLE_BIT);
	atomic_store_explicit(&p->next, &q->stub, memory_order_release);
}

ig__node_t *ig__mpsc_pop(ig__mpsc_t *q)
{
	ig__node_t *tail = q->tail;
	ig__node_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (tail == &q->stub) {
		if (!next)
			return NULL;
		q->tail = next;
		tail = next;
		next = atomic_load_explicit(&next->next, memory_order_acquire);
	}
	if (next) {
		q->tail = next;
		return tail;
	}
	uintptr_t head = atomic_load_explicit(&q->head, memory_order_acquire) & ~IDLE_BIT;
	if ((ig__node_t *)head != tail)
		return NULL; /* a producer is between its exchange and its link */
	push_stub(q);
	next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (next) {
		q->tail = next;
		return tail;
	}
	return NULL;
}


/* ---- mailboxes ------------------------------------------------------------ */

void ig__mb_init(ig__mailbox_t *q, bool idle)
{
	ig__mpsc_init(q, idle);
}

bool ig__mb_push(ig__mailbox_t *q, ig__node_t *n)
{
	return ig__mpsc_push(q, n);
}

ig__node_t *ig__mb_pop(ig__mailbox_t *q, ig__node_t **retired)
{
	ig__node_t *tail = q->tail;
	ig__node_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (!next)
		return NULL;
	q->tail = next;
	*retired = tail == &q->stub ? NULL : tail;
	/* the message after this one was written on the sender's core */
	__builtin_prefetch(atomic_load_explicit(&next->next, memory_order_relaxed));
	return next;
}

bool ig__mb_mark_idle(ig__mailbox_t *q)
{
	uintptr_t tail = (uintptr_t)q->tail;
	if (atomic_load_explicit(&q->tail->next, memory_order_acquire))
		return false;
	return atomic_compare_exchange_strong_explicit(&q->head, &tail, tail | IDLE_BIT,
						       memory_order_acq_rel,
						       memory_order_acquire);
}

ig__node_t *ig__mb_stub_block(ig__mailbox_t *q)
{
	return q->tail == &q->stub ? NULL : q->tail;
}

/* ---- message blocks ---------------------------------------------------------- */

#define CACHE_MAX 4096 /* blocks a thread keeps for itself */
#define BATCH 256       /* blocks handed between threads at once */

/* A thread that frees more than it allocates (a consumer) passes full
 * batches to a shared pool, where a thread that allocates more than it
 * frees (a producer) picks them up: blocks flow back to the producer
 * without a cross-thread free() in malloc. A batch is a chain of blocks;
 * its first block's aux links it to the next batch. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static ig__msg_t *pool;
static size_t pool_batches;
#define POOL_MAX 1024 /* batches; beyond, blocks go back to malloc */

static IG_TLS struct {
	ig__msg_t *free;
	unsigned n;
	ig__msg_t *spill; /* a batch being filled for the pool */
	unsigned nspill;
} cache;

static void chain_free(ig__msg_t *m)
{
	while (m) {
		ig__msg_t *next = (ig__msg_t *)atomic_load_explicit(&m->node.next,
								   memory_order_relaxed);
		free(m);
		m = next;
	}
}

static bool pool_take(void)
{
	pthread_mutex_lock(&pool_lock);
	ig__msg_t *b = pool;
	if (b) {
		pool = (ig__msg_t *)(uintptr_t)b->aux;
		pool_batches--;
	}
	pthread_mutex_unlock(&pool_lock);
	if (!b)
		return false;
	cache.free = b;
	cache.n = BATCH;
	return true;
}

static void pool_give(ig__msg_t *batch)
{
	pthread_mutex_lock(&pool_lock);
	bool kept = pool_batches < POOL_MAX;
	if (kept) {
		batch->aux = (uint64_t)(uintptr_t)pool;
		pool = batch;
		pool_batches++;
	}
	pthread_mutex_unlock(&pool_lock);
	if (!kept)
		chain_free(batch);
}

static void spill(ig__msg_t *m)
{
	atomic_store_explicit(&m->node.next, (ig__node_t *)cache.spill, memory_order_relaxed);
	cache.spill = m;
	if (++cache.nspill == BATCH) {
		pool_give(cache.spill);
		cache.spill = NULL;
		cache.nspill = 0;
	}
}

ig__msg_t *ig__msg_alloc(size_t size)
{
	ig__msg_t *m;
	if (size <= IG_MSG_INLINE_MAX) {
		m = cache.free;
		if (!m && pool_take())
			m = cache.free;
		if (m) {
			cache.free = (ig__msg_t *)atomic_load_explicit(&m->node.next,
								       memory_order_relaxed);
			cache.n--;
			/* blocks often come back from another core: fetch the
			 * next one while this one is filled */
			__builtin_prefetch(cache.free, 1);
		} else {
			m = malloc(IG__MSG_BLOCK);
			if (!m)
				return NULL;
		}
		m->flags = IG__MF_POOLED;
	} else {
		m = malloc(sizeof(ig__msg_t) + size);
		if (!m)
			return NULL;
		m->flags = 0;
	}
	m->dtor = NULL;
	m->ptr = NULL;
	m->aux = 0;
	return m;
}

void ig__msg_free(ig__msg_t *m)
{
	if (m->dtor) {
		m->dtor(m->ptr);
		m->dtor = NULL;
	}
	if (m->flags & IG__MF_INQ)
		return;
	if ((m->flags & IG__MF_POOLED) && ig__thread_init()) {
		if (cache.n >= CACHE_MAX) {
			spill(m);
			return;
		}
		atomic_store_explicit(&m->node.next, (ig__node_t *)cache.free,
				      memory_order_relaxed);
		cache.free = m;
		cache.n++;
		return;
	}
	free(m);
}

void ig__msg_retire(ig__msg_t *m)
{
	m->flags &= ~(uint32_t)IG__MF_INQ;
	ig__msg_free(m);
}

ig__msg_t *ig__msg_detach(ig__msg_t *m)
{
	if (!(m->flags & IG__MF_INQ))
		return m;
	bool inl = m->env.size && m->env.data == m->inl;
	ig__msg_t *c = ig__msg_alloc(inl ? m->env.size : 0);
	if (!c)
		return NULL;
	uint32_t pooled = c->flags & IG__MF_POOLED;
	memcpy(c, m, sizeof *c);
	c->flags = (m->flags & ~(uint32_t)(IG__MF_INQ | IG__MF_POOLED)) | pooled;
	if (inl) {
		memcpy(c->inl, m->inl, m->env.size);
		c->env.data = c->inl;
	}
	m->dtor = NULL; /* the payload belongs to the copy now */
	return c;
}

void ig__msg_cache_flush(void)
{
	chain_free(cache.free);
	chain_free(cache.spill);
	cache.free = cache.spill = NULL;
	cache.n = cache.nspill = 0;
}

ig__msg_t *ig__msg_copy(uint32_t type, const void *data, size_t size, ig_ref_t from)
{
	if (size > UINT32_MAX)
		return NULL;
	ig__msg_t *m = ig__msg_alloc(size);
	if (!m)
		return NULL;
	m->env.type = type;
	m->env.size = (uint32_t)size;
	m->env.sender = from;
	if (size) {
		memcpy(m->inl, data, size);
		m->env.data = m->inl;
	} else {
		m->env.data = NULL;
	}
	return m;
}
