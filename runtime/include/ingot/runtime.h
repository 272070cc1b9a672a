/* ingot runtime: the public API of the actor runtime (libingot-runtime).
 *
 * An actor is a behavior function, a state and a mailbox. Actors are named by
 * ig_ref_t handles: small values that stay safe to use after the actor is
 * gone (messages to a dead actor become dead letters). All types but the
 * message envelope and the plain config structs are opaque.
 *
 * Threads: every function may be called from any thread unless its doc says
 * "behavior only" (then it takes the ig_ctx_t of the running behavior and may
 * only be called during that behavior call).
 *
 * Errors: 0 on success or a negative IG_E... / -errno code (<ingot/error.h>);
 * out-parameters are written only on success.
 */
#ifndef INGOT_RUNTIME_H
#define INGOT_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ingot/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- time ------------------------------------------------------------ */

/** Durations and deadlines are int64 nanoseconds. */
typedef int64_t ig_duration_t;
#define IG_NS(x) ((ig_duration_t)(x))
#define IG_US(x) ((ig_duration_t)(x) * 1000)
#define IG_MS(x) ((ig_duration_t)(x) * 1000000)
#define IG_SEC(x) ((ig_duration_t)(x) * 1000000000)
#define IG_FOREVER INT64_MAX

/* ---- handles ----------------------------------------------------------- */

typedef struct ig_system ig_system_t;
typedef struct ig_dispatcher ig_dispatcher_t;
typedef struct ig_ctx ig_ctx_t;
typedef struct ig_future ig_future_t;

/** A reference to an actor: a slot and a generation. Copy it freely; it
 *  never dangles. IG_NOREF (all zero) names no actor ("no sender"). */
typedef struct ig_ref {
	uint64_t h;
} ig_ref_t;
#define IG_NOREF ((ig_ref_t){0})
static inline bool ig_ref_eq(ig_ref_t a, ig_ref_t b) { return a.h == b.h; }
static inline bool ig_ref_is_none(ig_ref_t a) { return a.h == 0; }

/* ---- messages ---------------------------------------------------------- */

/** The envelope a behavior receives. Read-only; borrowed for the call: the
 *  runtime frees the message (and runs the payload's destructor) after the
 *  behavior returns, unless the behavior stashed or forwarded it. */
typedef struct ig_msg {
	uint32_t type;    /* user types are < IG_MSG_SYSTEM_BASE */
	uint32_t size;    /* payload bytes */
	ig_ref_t sender;  /* IG_NOREF when sent from outside any actor */
	const void *data; /* the payload; NULL when size is 0 */
} ig_msg_t;

/** Payloads up to this many bytes travel inside the message block itself.
 *  A copied payload (ig_tell) is aligned to 16 bytes, so msg->data may be
 *  cast to any type the sender copied in. */
#define IG_MSG_INLINE_MAX 64

/* Types at or above IG_MSG_SYSTEM_BASE are the runtime's own. (Macros,
 * not an enum: ISO C enums stop at INT_MAX.) */
#define IG_MSG_SYSTEM_BASE 0xFFFF0000u
#define IG_MSG_TERMINATED (IG_MSG_SYSTEM_BASE + 1u)   /* ig_terminated_t: a watched actor stopped */
#define IG_MSG_POISON_PILL (IG_MSG_SYSTEM_BASE + 2u)  /* stop once processed, in mailbox order */
#define IG_MSG_DEAD_LETTER (IG_MSG_SYSTEM_BASE + 3u)  /* ig_dead_letter_t, on the event stream */
#define IG_MSG_LOG (IG_MSG_SYSTEM_BASE + 4u)          /* ig_log_event_t, on the event stream */
#define IG_MSG_TCP_ACCEPTED (IG_MSG_SYSTEM_BASE + 5u) /* ig_tcp_event_t: listener got a connection */
#define IG_MSG_TCP_CONNECTED (IG_MSG_SYSTEM_BASE + 6u)/* ig_tcp_event_t: outgoing connect done */
#define IG_MSG_TCP_DATA (IG_MSG_SYSTEM_BASE + 7u)     /* bytes read (payload) after ig_tcp_read */
#define IG_MSG_TCP_CLOSED (IG_MSG_SYSTEM_BASE + 8u)   /* ig_tcp_event_t: peer closed or error */
#define IG_MSG_TCP_WRITTEN (IG_MSG_SYSTEM_BASE + 9u)  /* ig_tcp_event_t: a write finished */
#define IG_MSG_SYSTEM_USER_END (IG_MSG_SYSTEM_BASE + 10u) /* first value the runtime uses internally */

typedef struct ig_terminated {
	ig_ref_t ref; /* the actor that stopped */
	int reason;   /* 0 when stopped normally, else the failure that stopped it */
} ig_terminated_t;

typedef struct ig_dead_letter {
	ig_ref_t sender;
	ig_ref_t recipient;
	uint32_t type;
	uint32_t size;
	int reason; /* IG_ENOACTOR, IG_EFULL (dropped by overflow), IG_ESTOPPED */
} ig_dead_letter_t;

/* IG_LOG_DEFAULT in a config means WARN, so a zeroed config is a sane one. */
enum ig_log_level { IG_LOG_DEFAULT = 0, IG_LOG_DEBUG, IG_LOG_INFO, IG_LOG_WARN, IG_LOG_ERROR, IG_LOG_OFF };

typedef struct ig_log_event {
	int level;
	ig_ref_t source;  /* the actor that logged, or IG_NOREF */
	char text[200];   /* NUL-terminated, truncated with "..." if longer */
} ig_log_event_t;

/* ---- systems and dispatchers ------------------------------------------ */

typedef struct ig_system_config {
	const char *name;         /* for logs and paths; default "ingot" */
	unsigned threads;         /* default dispatcher threads; 0 = online cores */
	unsigned throughput;      /* messages per actor turn; 0 = 64 */
	unsigned spin_us;         /* idle spin before parking; 0 = 50 us */
	int log_level;            /* lines at or above go to stderr; 0 = WARN */
	bool deterministic;       /* testkit: no threads, calling-thread dispatch,
	                             virtual time (see <ingot/testkit.h>) */
} ig_system_config_t;

/** Creates a system: its default dispatcher threads, its timer wheel and the
 *  guardians /user and /system. cfg may be NULL for defaults.
 *  Ownership: free with ig_system_destroy(). Errors: IG_EINVAL, IG_ENOMEM,
 *  -errno from thread creation. */
int ig_system_create(const ig_system_config_t *cfg, ig_system_t **out);

/** Graceful shutdown: stops /user (children first, post_stop runs for each),
 *  then /system, waits up to timeout for every actor to terminate, then
 *  stops the threads. Returns IG_ETIMEDOUT if actors were still running at
 *  the deadline (threads are stopped anyway). Idempotent. Not from a
 *  behavior (it would wait for itself). */
int ig_system_shutdown(ig_system_t *sys, ig_duration_t timeout);

/** Shuts down (if not yet, with a 10 s timeout) and frees the system.
 *  Refs into it become dead. */
void ig_system_destroy(ig_system_t *sys);

/** The system's clock (monotonic ns; virtual in a deterministic system). */
int64_t ig_system_now(const ig_system_t *sys);

/** Dead letters counted since the system started. */
uint64_t ig_system_dead_letters(const ig_system_t *sys);

/** Live actors (including guardians); for tests and stats. */
uint64_t ig_system_actor_count(const ig_system_t *sys);

typedef struct ig_dispatcher_config {
	const char *name;
	unsigned threads;    /* 0 = online cores */
	unsigned throughput; /* 0 = the system's */
} ig_dispatcher_config_t;

/** Adds a dispatcher (its own threads and run queues), for example to keep
 *  blocking actors off the default one. Owned by the system; it stops with
 *  it. In a deterministic system it is the calling-thread dispatcher too. */
int ig_dispatcher_create(ig_system_t *sys, const ig_dispatcher_config_t *cfg,
			 ig_dispatcher_t **out);

/* ---- RCU (liburcu-memb), shared with the store ------------------------ */

/** Registers the calling thread with liburcu-memb, once (it is
 *  unregistered when the thread exits). Code sharing the runtime's RCU
 *  flavor (the store's scans) calls this instead of
 *  urcu_memb_register_thread, which must not run twice on a thread.
 *  Returns false only if the thread-exit hook could not be set. */
bool ig_rcu_register_thread(void);

/** Brackets a stretch of a behavior that blocks for long or waits for an
 *  RCU grace period (synchronize_rcu): dispatcher threads otherwise hold
 *  one long read-side section, and a grace period waited for inside it
 *  never ends. No-ops outside a dispatcher thread; do not nest. */
void ig_blocking_begin(void);
void ig_blocking_end(void);

/* ---- behaviors and props --------------------------------------------- */

/** A behavior handles one message. Return 0, or a negative error code to
 *  report failure: the actor is suspended and its supervisor decides. */
typedef int (*ig_behavior_fn)(ig_ctx_t *ctx, void *state, const ig_msg_t *msg);

typedef enum ig_mailbox_kind {
	IG_MAILBOX_UNBOUNDED = 0,
	IG_MAILBOX_BOUNDED,
} ig_mailbox_kind_t;

typedef enum ig_overflow {
	IG_OVERFLOW_REJECT = 0, /* tell returns IG_EFULL to the sender */
	IG_OVERFLOW_DROP_NEWEST,/* the new message becomes a dead letter; tell returns 0 */
	IG_OVERFLOW_DROP_OLDEST,/* the oldest queued message becomes a dead letter */
} ig_overflow_t;

typedef enum ig_directive {
	IG_RESUME = 0, /* keep state, drop the failing message, go on */
	IG_RESTART,    /* drop the failing message, fresh state, go on */
	IG_STOP,       /* stop the child */
	IG_ESCALATE,   /* fail the supervisor itself with the same error */
} ig_directive_t;

/** Maps a child's failure code to a directive. */
typedef ig_directive_t (*ig_decider_fn)(int err, void *arg);

typedef struct ig_supervisor {
	bool all_for_one;            /* apply restart/stop to all siblings */
	ig_decider_fn decider;       /* NULL = always IG_RESTART */
	void *decider_arg;
	unsigned max_restarts;       /* 0 = unlimited; else stop after more than
	                                this many restarts within `within` */
	ig_duration_t within;        /* window for max_restarts; 0 = forever */
} ig_supervisor_t;

typedef struct ig_props {
	ig_behavior_fn behavior;     /* required: the initial behavior */
	size_t state_size;           /* bytes of state allocated with the actor, zeroed */
	/* Lifecycle, all optional. init builds the state from the spawn arg
	 * (again on restart, after fini); returning an error fails the spawn or
	 * the restart. */
	int (*init)(ig_ctx_t *ctx, void *state, void *arg);
	void (*fini)(void *state);
	void (*pre_start)(ig_ctx_t *ctx, void *state);
	void (*post_stop)(ig_ctx_t *ctx, void *state);
	/* Default pre_restart stops the children and calls post_stop; default
	 * post_restart calls pre_start (as Akka). */
	void (*pre_restart)(ig_ctx_t *ctx, void *state, int err);
	void (*post_restart)(ig_ctx_t *ctx, void *state, int err);
	ig_mailbox_kind_t mailbox;
	uint32_t capacity;           /* bounded mailboxes: messages */
	ig_overflow_t overflow;
	ig_dispatcher_t *dispatcher; /* NULL = the system's default */
	const ig_supervisor_t *supervisor; /* for this actor's children; NULL = restart, unlimited */
} ig_props_t;

/* Props, the spawn arg and a supervisor are borrowed for the actor's whole
 * life (restarts reuse them): keep them static, or free them only after
 * the actor's Terminated. */

/** Spawns a top-level actor under /user. name may be NULL (the actor is
 *  then named "$<slot>") and must be unique among siblings, non-empty, at
 *  most 63 bytes and free of '/' and a leading '$'. init and pre_start run
 *  on the actor's dispatcher before its first message (messages sent
 *  meanwhile wait); if init fails the actor stops with that reason, which
 *  watchers see in Terminated. Errors: IG_EINVAL, IG_EEXIST, IG_ENOMEM,
 *  IG_ESTOPPED. */
int ig_system_spawn(ig_system_t *sys, const ig_props_t *props, const char *name,
		    void *arg, ig_ref_t *out);

/** Spawns a child of the running actor. Behavior only. Same errors. */
int ig_spawn(ig_ctx_t *ctx, const ig_props_t *props, const char *name, void *arg,
	     ig_ref_t *out);

/* ---- sending ----------------------------------------------------------- */

/** Sends a copy of size bytes at data. Payloads up to IG_MSG_INLINE_MAX
 *  travel inline with no allocation. from is the sender the receiver sees
 *  (IG_NOREF for none). Returns 0, IG_ENOACTOR (delivered to dead letters),
 *  IG_EFULL (bounded mailbox with REJECT policy), IG_ENOMEM, IG_EINVAL
 *  (a system type). Order is kept between each sender and receiver. */
int ig_tell(ig_ref_t to, uint32_t type, const void *data, size_t size, ig_ref_t from);

/** Sends ptr itself: ownership moves to the runtime, which calls
 *  dtor(ptr) after the receiver's behavior returns, or when the message
 *  becomes a dead letter (dtor may be NULL). On error the runtime has
 *  already called dtor too, so the caller never frees ptr after this call.
 *  size is informative (shown as msg->size). */
int ig_tell_ptr(ig_ref_t to, uint32_t type, void *ptr, size_t size,
		void (*dtor)(void *), ig_ref_t from);

/** Replies to msg's sender with self as sender. Behavior only. */
int ig_reply(ig_ctx_t *ctx, const ig_msg_t *msg, uint32_t type, const void *data,
	     size_t size);

/** Passes msg on to another actor without copying, keeping its original
 *  sender; msg is no longer the caller's after this. Behavior only. */
int ig_forward(ig_ctx_t *ctx, const ig_msg_t *msg, ig_ref_t to);

/** Sends a PoisonPill: the actor stops when it reaches it in its mailbox. */
int ig_poison(ig_ref_t to);

/** Stops an actor promptly: it finishes the current message, stops its
 *  children, runs post_stop, and watchers get Terminated. Messages still
 *  queued become dead letters. */
int ig_stop(ig_ref_t ref);

/* ---- asking ------------------------------------------------------------ */

/** Sends a message whose sender is a temporary actor, and returns a future
 *  for the first reply. After timeout the future fails with IG_ETIMEDOUT
 *  (IG_FOREVER: no deadline).
 *  Ownership: free the future with ig_future_free() (after which a late
 *  reply becomes a dead letter). Errors: as ig_tell, IG_ENOMEM. */
int ig_ask(ig_system_t *sys, ig_ref_t to, uint32_t type, const void *data, size_t size,
	   ig_duration_t timeout, ig_future_t **out);

/** Waits up to timeout for the future. On success *reply points at the
 *  reply envelope, valid until ig_future_free(). Returns the future's error
 *  (IG_ETIMEDOUT from the ask deadline) or IG_EAGAIN if this wait's own
 *  timeout passed first. In a deterministic system, waiting runs the
 *  calling-thread dispatcher and advances virtual time as needed. */
int ig_future_wait(ig_future_t *f, ig_duration_t timeout, const ig_msg_t **reply);

/** Like wait with a zero timeout: IG_EAGAIN while pending. */
int ig_future_poll(ig_future_t *f, const ig_msg_t **reply);

/** Calls cb once when the future completes, on the completing thread (or
 *  now, on this thread, if it already has). err is 0 or the failure; reply
 *  is valid during the call. At most one callback per future. */
int ig_future_on_complete(ig_future_t *f,
			  void (*cb)(ig_future_t *f, int err, const ig_msg_t *reply, void *arg),
			  void *arg);

/** Frees a future; safe while it is still pending. */
void ig_future_free(ig_future_t *f);

/* ---- inside a behavior ------------------------------------------------ */

ig_ref_t ig_self(const ig_ctx_t *ctx);
ig_ref_t ig_parent(const ig_ctx_t *ctx);
ig_system_t *ig_ctx_system(const ig_ctx_t *ctx);

/** Replaces the current behavior. discard_old=false pushes it, so
 *  ig_unbecome() returns to it (Akka's become with discardOld=false).
 *  Behavior only. Errors: IG_ENOMEM. */
int ig_become(ig_ctx_t *ctx, ig_behavior_fn fn, bool discard_old);
/** Pops back to the previous behavior (to the initial one at the bottom). */
void ig_unbecome(ig_ctx_t *ctx);

/** Keeps msg aside (it is not freed after the call). Behavior only. */
int ig_stash(ig_ctx_t *ctx, const ig_msg_t *msg);
/** Puts every stashed message back at the front of the mailbox, in the
 *  order they were stashed. Behavior only. */
void ig_unstash_all(ig_ctx_t *ctx);

/** Stops the running actor after the current message. Behavior only. */
void ig_stop_self(ig_ctx_t *ctx);

/** Death watch: the running actor gets IG_MSG_TERMINATED when ref stops
 *  (at once if it is already gone). Behavior only. */
int ig_watch(ig_ctx_t *ctx, ig_ref_t ref);
int ig_unwatch(ig_ctx_t *ctx, ig_ref_t ref);

/* ---- timers ----------------------------------------------------------- */

typedef uint64_t ig_timer_t;

/** Sends (type, payload copy) to the running actor after delay, once, or
 *  every `delay` when periodic. A timer is owned by its actor: it is
 *  canceled when the actor stops or restarts, and once ig_timer_cancel()
 *  returns its message is never delivered, even if already queued.
 *  Behavior only. Errors: IG_ENOMEM, IG_EINVAL (payload > IG_MSG_INLINE_MAX). */
int ig_timer_start(ig_ctx_t *ctx, ig_duration_t delay, bool periodic, uint32_t type,
		   const void *data, size_t size, ig_timer_t *out);
/** Cancels; IG_ENOTFOUND if a one-shot timer was already delivered or the
 *  timer was canceled before. A timer that fired but whose message is still
 *  queued counts as not delivered: 0, and the message is dropped. */
int ig_timer_cancel(ig_ctx_t *ctx, ig_timer_t timer);

/* ---- names, paths, events, logs ---------------------------------------- */

/** Finds a live actor by path, e.g. "/user/parent/child". Errors:
 *  IG_ENOTFOUND, IG_EINVAL. */
int ig_lookup(ig_system_t *sys, const char *path, ig_ref_t *out);

/** Writes ref's path (NUL-terminated) to buf. Errors: IG_ENOACTOR,
 *  IG_ERANGE if it does not fit. */
int ig_ref_path(ig_ref_t ref, char *buf, size_t len);

/** Event stream: subscriber gets every event of this type published in the
 *  system (dead letters, log lines, or user types). */
int ig_subscribe(ig_system_t *sys, ig_ref_t subscriber, uint32_t type);
int ig_unsubscribe(ig_system_t *sys, ig_ref_t subscriber, uint32_t type);
/** Sends a copy of the event to every subscriber of type; returns how many
 *  received it through *delivered (may be NULL). */
int ig_publish(ig_system_t *sys, uint32_t type, const void *data, size_t size,
	       unsigned *delivered);

/** Logs a line: published as IG_MSG_LOG and written to stderr at or above
 *  the system's log level. ctx may be NULL. */
void ig_log(ig_system_t *sys, const ig_ctx_t *ctx, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- routers ---------------------------------------------------------- */

typedef enum ig_router_kind {
	IG_ROUTER_ROUND_ROBIN = 0,
	IG_ROUTER_SMALLEST_MAILBOX,
	IG_ROUTER_CONSISTENT_HASH,
	IG_ROUTER_BROADCAST,
} ig_router_kind_t;

/** Maps a message to a hash key for consistent-hash routing. NULL hashes
 *  the payload bytes. */
typedef uint64_t (*ig_route_key_fn)(const ig_msg_t *msg);

typedef struct ig_router_config {
	ig_router_kind_t kind;
	unsigned routees;                /* pool size, >= 1 */
	const ig_props_t *routee_props;  /* borrowed for the router's life */
	void *routee_arg;                /* passed to each routee's init */
	ig_route_key_fn key;             /* consistent hash */
	const ig_supervisor_t *supervisor; /* for the routees; NULL = restart */
} ig_router_config_t;

/** Spawns a pool router: an actor that supervises `routees` children and
 *  forwards each message to one (or all, for broadcast) keeping the
 *  original sender. ctx NULL spawns under /user of sys. A PoisonPill sent
 *  to the router stops it and its routees. Broadcast copies the payload, so
 *  ig_tell_ptr messages cannot be broadcast (dead letter, IG_EINVAL). */
int ig_router_spawn(ig_system_t *sys, ig_ctx_t *ctx, const ig_router_config_t *cfg,
		    const char *name, ig_ref_t *out);

/* ---- msgpack codec ------------------------------------------------------ */

/** Encodes an envelope (type, sender path, payload) as msgpack:
 *  [1, type, sender-path-or-nil, payload-bin]. Ownership: *out is malloc'd;
 *  the caller frees it. */
int ig_msg_encode(ig_system_t *sys, const ig_msg_t *msg, void **out, size_t *out_len);

/** Decodes bytes from ig_msg_encode (untrusted input: any bytes are rejected
 *  cleanly with IG_ECORRUPT and *err_offset set to the byte where decoding
 *  stopped). On success *type, *payload (malloc'd, caller frees, NULL when
 *  empty), *payload_len and *sender (resolved by path in sys, IG_NOREF if
 *  none or unknown) are written. */
int ig_msg_decode(ig_system_t *sys, const void *buf, size_t len, uint32_t *type,
		  void **payload, size_t *payload_len, ig_ref_t *sender, size_t *err_offset);

/* ---- TCP through the I/O reactor --------------------------------------- */

/** A connection or listener id; 0 is none. */
typedef uint64_t ig_tcp_t;

typedef struct ig_tcp_event {
	ig_tcp_t conn;    /* the connection (or listener for errors) */
	ig_tcp_t listener;/* ACCEPTED: the listener it came from */
	int err;          /* CLOSED: 0 for orderly EOF, else -errno */
	size_t bytes;     /* WRITTEN: bytes written by that write */
	char peer[64];    /* ACCEPTED/CONNECTED: "host:port" */
} ig_tcp_event_t;

/** Listens on host:port (host NULL = 127.0.0.1; port 0 = any, see
 *  ig_tcp_local_port). owner gets IG_MSG_TCP_ACCEPTED for each connection;
 *  the connection then belongs to owner until handed on with
 *  ig_tcp_set_owner. */
int ig_tcp_listen(ig_system_t *sys, ig_ref_t owner, const char *host, uint16_t port,
		  int backlog, ig_tcp_t *out);
int ig_tcp_local_port(ig_system_t *sys, ig_tcp_t sock, uint16_t *port);
/** Connects; owner gets IG_MSG_TCP_CONNECTED or IG_MSG_TCP_CLOSED(err). */
int ig_tcp_connect(ig_system_t *sys, ig_ref_t owner, const char *host, uint16_t port,
		   ig_tcp_t *out);
int ig_tcp_set_owner(ig_system_t *sys, ig_tcp_t conn, ig_ref_t owner);
/** Asks for the next read: once bytes arrive, the owner gets one
 *  IG_MSG_TCP_DATA (payload: up to max bytes) or IG_MSG_TCP_CLOSED. Nothing
 *  more is read until the owner calls this again (flow control). */
int ig_tcp_read(ig_system_t *sys, ig_tcp_t conn, size_t max);
/** Queues a copy of data; the owner gets IG_MSG_TCP_WRITTEN once it is all
 *  written. Errors: IG_ECLOSED, IG_EFULL past the write buffer limit. */
int ig_tcp_write(ig_system_t *sys, ig_tcp_t conn, const void *data, size_t len);
/** Closes after pending writes; stops a listener. */
int ig_tcp_close(ig_system_t *sys, ig_tcp_t conn);

#ifdef __cplusplus
}
#endif

#endif
