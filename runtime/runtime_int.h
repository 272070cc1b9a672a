/* Internal structures of the actor runtime, shared by its source files.
 *
 * Memory model in one paragraph: senders resolve an ig_ref_t through the
 * global slot table inside an RCU read-side section (liburcu-memb), push a
 * message block onto the target's intrusive MPSC mailbox, and schedule the
 * actor if the push found its mailbox idle. A stopped actor's memory is
 * returned only after an RCU grace period, so a sender that raced with the
 * stop pushes into memory that is still valid; the dead actor turns such
 * messages into dead letters.
 */
#ifndef INGOT_RUNTIME_INT_H
#define INGOT_RUNTIME_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <ingot/runtime.h>

#define IG_CACHE_LINE 64

/* Thread-locals on the message path: initial-exec avoids a call to
 * __tls_get_addr per access (the library is linked, not dlopen'ed late). */
#define IG_TLS _Thread_local __attribute__((tls_model("initial-exec")))

/* IG_ASSERT stays on in release builds: broken invariants only, never input. */
void ig__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define IG_ASSERT(e) ((e) ? (void)0 : ig__assert_fail(#e, __FILE__, __LINE__))

#if defined(__SANITIZE_THREAD__)
#define IG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IG_TSAN 1
#endif
#endif
#ifdef IG_TSAN
/* TSan cannot see liburcu's grace periods; these tell it that a read-side
 * section happens before the reclaim that follows the grace period. */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define IG_TSAN_RELEASE(a) __tsan_release(a)
#define IG_TSAN_ACQUIRE(a) __tsan_acquire(a)
#else
#define IG_TSAN_RELEASE(a) ((void)0)
#define IG_TSAN_ACQUIRE(a) ((void)0)
#endif

typedef struct ig_actor ig_actor_t;
typedef struct ig__worker ig__worker_t;

/* ---- intrusive MPSC queue (mailboxes, injection queues) ----------------- */

typedef struct ig__node {
	_Atomic(struct ig__node *) next;
} ig__node_t;

/* Vyukov's intrusive MPSC queue (injection queues). The low bit of head
 * marks the queue "idle" (empty and its owner unscheduled): the push that
 * clears it is the one that must schedule the owner. */
typedef struct ig__mpsc {
	_Atomic(uintptr_t) head; /* last pushed node; producers exchange it */
	ig__node_t *tail;        /* consumer only */
	ig__node_t stub;
} ig__mpsc_t;

void ig__mpsc_init(ig__mpsc_t *q, bool idle);
/* Returns true when the queue was idle before this push. */
bool ig__mpsc_push(ig__mpsc_t *q, ig__node_t *n);
/* Consumer only. NULL when empty or when a producer is mid-push. */
ig__node_t *ig__mpsc_pop(ig__mpsc_t *q);

/* Mailboxes: the same queue, but the node last popped stays behind as the
 * queue's stub (as in Pony's messageq), so draining the last message costs
 * no extra exchange. The consumer gets the previous stub back to free. An
 * actor is scheduled at most once: the idle bit again. */
typedef ig__mpsc_t ig__mailbox_t;
void ig__mb_init(ig__mailbox_t *q, bool idle);
bool ig__mb_push(ig__mailbox_t *q, ig__node_t *n);
/* Consumer only: the next node (which becomes the stub) or NULL; *retired
 * is the node it replaces, or NULL when that was the embedded stub. */
ig__node_t *ig__mb_pop(ig__mailbox_t *q, ig__node_t **retired);
/* Consumer only: marks the mailbox idle if it is empty. False means a
 * message arrived (or is arriving) and the consumer must run again. */
bool ig__mb_mark_idle(ig__mailbox_t *q);
/* The node currently serving as stub, if it is a message block. */
ig__node_t *ig__mb_stub_block(ig__mailbox_t *q);

/* ---- message blocks ------------------------------------------------------ */

enum {
	IG__MF_POOLED = 1u << 0, /* a fixed-size block from the thread cache */
	IG__MF_KEEP = 1u << 1,   /* stashed or forwarded: dispatch must not free */
	IG__MF_SYSTEM = 1u << 2, /* runtime message: env.type is an IG__SYS_* */
	IG__MF_TIMER = 1u << 3,  /* from a timer: ptr is the ig__timer_t (dtor unrefs) */
	IG__MF_INQ = 1u << 4,    /* still its mailbox's stub: free releases only the payload */
};

typedef struct ig__msg {
	ig__node_t node;       /* mailbox link; first member */
	ig_msg_t env;          /* what the behavior sees */
	void (*dtor)(void *);  /* for ig_tell_ptr payloads */
	void *ptr;             /* the owned pointer payload */
	uint64_t aux;          /* system messages' argument */
	uint32_t flags;
	uint32_t pad;
	/* inline payload (IG_MSG_INLINE_MAX in pooled blocks); 16-aligned as
	 * the public header promises, since blocks come from malloc */
	_Alignas(16) unsigned char inl[];
} ig__msg_t;

#define IG__MSG_BLOCK (sizeof(ig__msg_t) + IG_MSG_INLINE_MAX)

/* Allocates a block able to hold size inline bytes (pooled if it fits). */
ig__msg_t *ig__msg_alloc(size_t size);
/* Runs the payload destructor and returns the block (unless the block is
 * still its mailbox's stub: then the mailbox frees it later). */
void ig__msg_free(ig__msg_t *m);
/* A message the caller may keep or pass on: m itself, or for a mailbox
 * stub a copy that takes over m's payload. NULL on allocation failure. */
ig__msg_t *ig__msg_detach(ig__msg_t *m);
/* Frees a block the mailbox retired (its payload is already released). */
void ig__msg_retire(ig__msg_t *m);
/* A message copying data (size bytes), or NULL. */
ig__msg_t *ig__msg_copy(uint32_t type, const void *data, size_t size, ig_ref_t from);
/* Makes the calling thread known to the runtime (RCU reader, caches that
 * are flushed when it exits). Cheap after the first call; false only if
 * registration failed (then the thread uses no caches). */
bool ig__thread_init_slow(void);
extern IG_TLS bool ig__thread_registered;
static inline bool ig__thread_init(void)
{
	return ig__thread_registered || ig__thread_init_slow();
}
/* Returns the calling thread's cached blocks to malloc (thread exit). */
void ig__msg_cache_flush(void);

/* Runtime message types (env.type with IG__MF_SYSTEM). */
enum {
	IG__SYS_STOP = 1,      /* wake-up for a prompt stop (flag IG__AF_STOP_REQ) */
	IG__SYS_WATCH,         /* aux = watcher ref */
	IG__SYS_UNWATCH,       /* aux = watcher ref */
	IG__SYS_FAILED,        /* to the parent: aux = child actor*, env.size = err in ptr */
	IG__SYS_DIRECTIVE,     /* to a child: aux = directive, ptr = (intptr) err */
	IG__SYS_CHILD_DONE,    /* to the parent: aux = child actor* (unlink, then reclaim) */
	IG__SYS_RECLAIM,       /* after the grace period: free the actor */
	IG__SYS_TIMER,         /* aux = struct ig__timer* (one reference) */
};

/* ---- actors -------------------------------------------------------------- */

enum ig__status {
	IG__ST_NEW = 0,    /* init and pre_start not run yet */
	IG__ST_RUNNING,
	IG__ST_SUSPENDED,  /* failed; waiting for the parent's directive */
	IG__ST_STOPPING,   /* waiting for children to stop */
	IG__ST_DEAD,       /* post_stop done; messages become dead letters */
};

enum {
	IG__AF_STOP_REQ = 1u << 0, /* ig_stop() was called */
	IG__AF_COUNTED = 1u << 1,  /* keep mq_count (bounded, or routed by size) */
	IG__AF_GUARDIAN = 1u << 2,
};

typedef struct ig__timer ig__timer_t;

/* Rarely used per-actor parts, allocated on first need by the actor's own
 * turn (or by the spawner before the actor is published). */
typedef struct ig__actor_ext {
	char *name;                /* NULL for anonymous actors ("$<slot>") */
	char *path;                /* registered full path of a named actor */
	ig_behavior_fn *stack;     /* become stack (bottom = props->behavior) */
	unsigned stack_len, stack_cap;
	ig__node_t *front, *front_tail; /* consumed before the mailbox */
	ig__node_t *stash, *stash_tail;
	ig_ref_t *watchers;        /* who gets Terminated */
	unsigned nwatchers, watchers_cap;
	ig_ref_t *watching;        /* whom we watch (to drop late Terminated) */
	unsigned nwatching, watching_cap;
	ig__timer_t *timers;       /* this actor's live timers */
	int stop_reason;
	bool init_failed;          /* post_stop and fini are skipped */
	bool restart_pending;      /* restarting once the old children are gone */
	int restart_err;
} ig__actor_ext_t;

struct ig_actor {
	/* Touched by senders. */
	ig__mailbox_t mq;
	_Atomic int32_t mq_count;  /* IG__AF_COUNTED only */
	_Atomic uint32_t flags;    /* IG__AF_* */
	/* The owning turn's, unless noted. */
	ig__node_t sched;          /* link in a dispatcher's injection queue */
	ig_behavior_fn behavior;
	void *state;
	const ig_props_t *props;
	void *arg;
	ig_dispatcher_t *disp;
	ig_actor_t *parent;
	ig_actor_t *child_first;
	union {
		struct { ig_actor_t *sib_next, *sib_prev; };
		struct { void *rcu_next, *rcu_func; }; /* struct rcu_head, once unlinked */
	};
	_Atomic(ig__actor_ext_t *) ext; /* set once, before or by the actor's turn */
	uint32_t slot, gen;
	uint32_t capacity;
	uint16_t status;           /* enum ig__status */
	uint16_t restarts;         /* parent-owned: restarts in the window */
	int64_t window_start;      /* parent-owned: restart window start */
};

/* Slot table: a ref is (gen << 40 | system id << 32 | slot + 1); a->gen
 * holds the top 32 bits, so a dead ref still names its system. */
int ig__slot_alloc(ig_actor_t *a, ig_system_t *sys); /* sets a->slot, a->gen */
void ig__slot_publish(ig_actor_t *a);        /* refs resolve from here on */
void ig__slot_release(ig_actor_t *a);        /* the ref dies here */
/* Resolves inside an RCU read-side section (caller holds it). */
ig_actor_t *ig__slot_resolve(ig_ref_t ref);
static inline ig_ref_t ig__ref_of(const ig_actor_t *a)
{
	return (ig_ref_t){((uint64_t)a->gen << 32) | ((uint64_t)a->slot + 1)};
}

/* RCU read-side helpers; register the calling thread on first use. */
void ig__rcu_read_lock(void);
void ig__rcu_read_unlock(void);
/* Dispatcher threads: enter a long read-side section, pass quiescent
 * points now and then (and leave it before parking). */
void ig__rcu_worker_enter(void);
void ig__rcu_worker_quiescent(void);
void ig__rcu_worker_leave(void);
void ig__rcu_thread_offline(void); /* flushes caches; at thread exit */
void ig__rcu_defer_reclaim(ig_actor_t *a);
void ig__rcu_barrier(void);

/* Pushes m to a (already resolved) and schedules a if needed. Applies the
 * bounded-mailbox policy; on IG_EFULL the message is freed. */
int ig__deliver(ig_actor_t *a, ig__msg_t *m);
/* Resolves and delivers; dead targets turn m into a dead letter. */
int ig__send(ig_ref_t to, ig__msg_t *m);
/* A runtime message to an actor. */
int ig__send_sys(ig_ref_t to, uint32_t sys_type, uint64_t aux, void *ptr);
int ig__send_sys_actor(ig_actor_t *a, uint32_t sys_type, uint64_t aux, void *ptr);

/* Spawns with internal flags (IG__AF_*) under parent. */
int ig__spawn(ig_system_t *sys, ig_actor_t *parent, const ig_props_t *props,
	      const char *name, void *arg, uint32_t flags, ig_actor_t **out_actor,
	      ig_ref_t *out);

/* Runs up to the throughput of a's messages. Returns true if a still has
 * work and must be scheduled again; false if it went idle or was freed. */
bool ig__actor_turn(ig_actor_t *a, unsigned throughput);

ig__actor_ext_t *ig__actor_ext(ig_actor_t *a);

/* Supervision (supervision.c). */
void ig__child_failed(ig_actor_t *parent, ig_actor_t *child, int err);
void ig__apply_directive(ig_actor_t *a, ig_directive_t d, int err);
void ig__actor_fail(ig_actor_t *a, int err);
void ig__actor_begin_stop(ig_actor_t *a, int reason);
void ig__actor_restart(ig_actor_t *a, int err);
void ig__actor_child_done(ig_actor_t *parent, ig_actor_t *child);
void ig__actor_stop_children(ig_actor_t *a);
/* Finishes a restart that waited for the old children to stop. */
void ig__restart_continue(ig_actor_t *a);

/* The running behavior's context: one per worker thread, reused. */
struct ig_ctx {
	ig_actor_t *actor;
	ig__msg_t *cur;  /* the message being handled */
	bool stop_self;
};

/* ---- dispatchers ---------------------------------------------------------- */

#define IG__RING 256

struct ig__worker {
	ig_dispatcher_t *disp;
	unsigned index;
	pthread_t thread;
	bool started;
	/* Stolen from by other workers. */
	_Alignas(IG_CACHE_LINE) _Atomic(ig_actor_t *) runnext;
	_Atomic uint32_t head;
	_Atomic uint32_t tail;
	_Atomic uint64_t turns;       /* progress, for stale-runnext stealing */
	_Atomic uint32_t parked;      /* futex word: 1 while parked */
	_Atomic(ig_actor_t *) ring[IG__RING];
	unsigned streak;              /* runnext turns in a row (fairness) */
	bool blocking;                /* between ig_blocking_begin and _end */
	unsigned runnext_sends;       /* sends to the actor waiting in runnext */
	bool helping;                 /* running a nested turn (see ig__sent) */
	unsigned tick;                /* turns, for the injection-queue check */
	uint64_t *seen_turns;         /* per victim, for stale-runnext stealing */
	int64_t stale_check;          /* when seen_turns was last taken */
};

struct ig_dispatcher {
	ig_system_t *sys;
	ig_dispatcher_t *next;        /* the system's list */
	char name[32];
	unsigned nworkers;
	unsigned throughput;
	ig__worker_t *workers;
	/* Injection queue: actors scheduled from outside this dispatcher. */
	_Alignas(IG_CACHE_LINE) ig__mpsc_t inj;
	_Atomic int64_t inj_len;      /* what others may read: the queue's own
	                                 emptiness is the consumer's to know */
	atomic_flag inj_lock;         /* one consumer at a time */
	_Atomic int nparked;
	_Atomic int nspinning;
	_Atomic bool stopping;
};

int ig__dispatcher_init(ig_dispatcher_t *d, ig_system_t *sys, const char *name,
			unsigned threads, unsigned throughput);
int ig__dispatcher_start(ig_dispatcher_t *d);
void ig__dispatcher_stop(ig_dispatcher_t *d);
void ig__dispatcher_fini(ig_dispatcher_t *d);
void ig__schedule(ig_actor_t *a);
/* After a push to an actor that was already scheduled: a sender that keeps
 * feeding the actor waiting in its own worker's runnext runs that actor's
 * turn itself now and then, so the backlog stays small and hot in cache. */
void ig__sent(ig_actor_t *a);
/* The worker running on this thread, or NULL. */
ig__worker_t *ig__current_worker(void);
/* ig_blocking_begin's hand-off of the calling worker's queued actors, and
 * ig_blocking_end's return to normal scheduling. */
void ig__worker_blocking(void);
void ig__worker_unblocking(void);
/* Deterministic systems: run queued turns on this thread until none are
 * left or max turns ran. Returns the number of turns. */
size_t ig__dispatcher_drain(ig_dispatcher_t *d, size_t max);

/* ---- timers --------------------------------------------------------------- */

struct ig__timer {
	ig__timer_t *next;            /* wheel bucket */
	ig__timer_t *actor_next;      /* owner's list */
	uint64_t id;
	int64_t deadline;
	int64_t period;               /* 0 = once */
	_Atomic int refs;
	_Atomic bool canceled;
	bool in_wheel;
	ig_system_t *sys;
	ig_ref_t target;
	uint32_t type, size;
	unsigned char data[IG_MSG_INLINE_MAX];
};

typedef struct ig__wheel ig__wheel_t;
int ig__wheel_create(ig_system_t *sys, ig__wheel_t **out);
void ig__wheel_destroy(ig__wheel_t *w);
int ig__wheel_start(ig__wheel_t *w);
void ig__wheel_stop(ig__wheel_t *w);
/* Adds t (takes one reference for the wheel). */
void ig__wheel_add(ig__wheel_t *w, ig__timer_t *t);
/* Removes t if present (drops the wheel's reference). */
void ig__wheel_remove(ig__wheel_t *w, ig__timer_t *t);
/* Deterministic systems: fire everything due at `now`. Returns how many. */
size_t ig__wheel_fire_due(ig__wheel_t *w, int64_t now);
/* Earliest pending deadline, or INT64_MAX. */
int64_t ig__wheel_next_deadline(ig__wheel_t *w);
void ig__timer_unref(ig__timer_t *t);
void ig__timer_cancel(ig__timer_t *t);
/* ig_timer_start without the check on runtime message types. */
int ig__timer_start(ig_ctx_t *ctx, ig_duration_t delay, bool periodic, uint32_t type,
		    const void *data, size_t size, ig_timer_t *out);
/* Delivery of an IG__SYS_TIMER message: false if it was canceled. */
bool ig__timer_deliverable(ig_actor_t *a, ig__timer_t *t);
void ig__actor_cancel_timers(ig_actor_t *a);

/* ---- systems -------------------------------------------------------------- */

typedef struct ig__sub {
	uint32_t type;
	ig_ref_t ref;
} ig__sub_t;

struct ig_system {
	char name[32];
	uint8_t id;                    /* index in the process's system table */
	ig_system_config_t cfg;
	ig_dispatcher_t *def;          /* default dispatcher */
	ig_dispatcher_t *dispatchers;  /* all, default first */
	pthread_mutex_t lock;          /* tree changes under guardians, dispatchers list */
	pthread_cond_t cond;           /* shutdown progress */
	ig_actor_t *root, *user, *system;
	_Atomic uint64_t actors;       /* live (not yet reclaimed) actors */
	_Atomic uint64_t dead_letters;
	_Atomic bool shutting_down;
	bool shut_down;
	_Atomic int64_t virtual_now;   /* deterministic systems */
	int64_t epoch;                 /* monotonic ns at creation */
	ig__wheel_t *wheel;
	_Atomic uint64_t next_timer_id;
	/* Event stream. */
	pthread_rwlock_t es_lock;
	ig__sub_t *subs;
	unsigned nsubs, subs_cap;
	/* Named actors: full path -> ref. */
	pthread_mutex_t names_lock;
	struct ig__name_entry **names;
	size_t names_cap, names_len;
	/* Parts owned by optional modules. */
	void *reactor;
	void (*reactor_stop)(ig_system_t *sys);
	void *testkit;
};

void ig__system_actor_gone(ig_system_t *sys);
void ig__dead_letter(ig_system_t *sys, ig_ref_t to, ig__msg_t *m, int reason);
int ig__names_add(ig_system_t *sys, const char *path, ig_ref_t ref);
void ig__names_remove(ig_system_t *sys, const char *path);
int ig__names_find(ig_system_t *sys, const char *path, ig_ref_t *out);
void ig__names_free(ig_system_t *sys);
int ig__actor_path(ig_actor_t *a, char *buf, size_t len);
int64_t ig__mono_ns(void);
/* The live system a ref (dead or alive) was made in, or NULL. */
ig_system_t *ig__system_by_id(unsigned id);
/* Deterministic systems: runs turns on this thread, firing virtual timers
 * in deadline order, until done(arg) is true (returns 0), virtual time
 * would pass `until` (IG_ETIMEDOUT, clock left at `until`), or nothing is
 * left to run and no timer is due by `until`. done may be NULL. */
int ig__det_run(ig_system_t *sys, int64_t until, bool (*done)(void *), void *arg);

#endif
