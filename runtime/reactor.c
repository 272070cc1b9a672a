/* The I/O reactor: one epoll thread per system that turns socket readiness
 * into messages, so TCP servers and clients are actors (ig_tcp_* in
 * <ingot/runtime.h>; the contract in prose is docs/reactor.md).
 *
 * Threads. Callers (behaviors on any dispatcher thread, or plain threads)
 * never touch a socket after handing it over. They validate the connection
 * id and reserve write-buffer room under r->lock, append a command to the
 * reactor's queue and wake it through an eventfd. The reactor thread alone
 * owns file descriptors, write queues and read state, so the data path needs
 * no per-connection lock; the few fields callers read live under r->lock or
 * are atomics (owner, local port, queued bytes).
 *
 * Flow control. Sockets are registered edge-triggered once. The reactor only
 * records readiness; it reads when the owner armed a read (ig_tcp_read), at
 * most one recv per arming, then waits for the next arming. Unread bytes stay
 * in the kernel, whose buffers fill and close the TCP window: a slow actor
 * pushes back on its peer. Writes are bounded per connection (WBUF_LIMIT).
 *
 * Lifetimes. A connection leaves the id table under r->lock the moment it is
 * closed (later calls get IG_ECLOSED) but its memory is freed only at the end
 * of the reactor's loop iteration, so epoll events and commands resolved in
 * the same iteration never point at freed memory. The reactor itself is
 * reached through sys->reactor inside an RCU read-side section; the stop
 * function swaps in a sentinel and waits a grace period before freeing it, so
 * a call racing with shutdown sees either a live reactor or IG_ESTOPPED.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <urcu/urcu-memb.h>

#include "runtime_int.h"

#define WBUF_LIMIT ((size_t)4 << 20) /* queued, unwritten bytes per connection */
#define READ_MAX ((size_t)256 << 10) /* one DATA message carries at most this */
#define EVENTS 128                   /* epoll events per wake-up */
#define IOV_BATCH 64                 /* queued writes per sendmsg */
#define ACCEPT_RETRY_MS 100          /* after EMFILE and friends */

/* ---- structures ------------------------------------------------------------ */

enum cmd_kind {
	CMD_START, /* a new listener or outgoing connection: register it */
	CMD_READ,  /* len = max bytes */
	CMD_WRITE, /* data[len]; becomes a write-queue entry as is */
	CMD_CLOSE,
};

/* A command from a caller; a CMD_WRITE stays alive as the queued write. */
typedef struct cmd {
	struct cmd *next;
	struct conn *conn;   /* resolved by the reactor when it takes the queue */
	ig_tcp_t id;
	enum cmd_kind kind;
	size_t len;          /* READ: max bytes; WRITE: payload bytes */
	size_t off;          /* WRITE: bytes already sent */
	unsigned char data[];
} cmd_t;

typedef struct conn {
	ig_tcp_t id;                /* set when inserted, then read-only */
	bool listener;
	_Atomic uint64_t owner;     /* ig_ref_t.h; ig_tcp_set_owner changes it */
	_Atomic uint16_t port;      /* local port once known, else 0 */
	_Atomic size_t wbytes;      /* accepted by ig_tcp_write, not yet sent */
	bool closing;               /* under r->lock: no new reads, writes, closes */
	/* The reactor thread's alone from here on. */
	int fd;                     /* -1 until an outgoing connect made it */
	bool in_epoll;
	bool connecting;
	bool readable, writable;    /* edge-triggered readiness not yet used up */
	bool hup_seen;              /* EOF or error pending: short reads prove nothing */
	bool read_armed;
	bool close_when_flushed;
	bool closed_sent;           /* the owner got IG_MSG_TCP_CLOSED */
	bool dead;                  /* closed; freed at the end of the iteration */
	bool accept_retry;          /* listener: on r->retry after EMFILE */
	bool accept_stalled;        /* listener: warned about it; quiet until it clears */
	size_t read_max;
	cmd_t *wq_head, *wq_tail;   /* queued writes, in order */
	struct conn *next;          /* r->grave or r->retry */
	struct sockaddr_storage addr; /* outgoing connect target */
	socklen_t addrlen;
} conn_t;

typedef struct reactor {
	ig_system_t *sys;
	pthread_t thread;
	int epfd;
	int efd;                    /* eventfd: commands are waiting */
	_Atomic bool stop;
	pthread_mutex_t lock;
	/* Under lock: the id table and the command queue. An id is the slot's
	 * generation (high 32 bits) and the slot index + 1 (low 32 bits). */
	conn_t **slots;
	uint32_t *gens;             /* generation of the slot's current or next conn */
	uint32_t *free_idx;
	uint32_t nslots, cap, nfree;
	cmd_t *cmd_head, *cmd_tail;
	bool wake_pending;          /* an eventfd write is on its way */
	/* The reactor thread's alone. */
	conn_t *grave;              /* closed this iteration */
	conn_t *retry;              /* listeners to accept on again */
	unsigned char *scratch;     /* READ_MAX bytes */
} reactor_t;

/* sys->reactor after the reactor stopped: later calls get IG_ESTOPPED. */
static char reactor_gone;

/* ---- the id table (under r->lock) -------------------------------------------- */

static bool table_grow(reactor_t *r)
{
	uint32_t cap = r->cap ? r->cap * 2 : 64;
	conn_t **s = realloc(r->slots, cap * sizeof *s);
	if (!s)
		return false;
	r->slots = s;
	uint32_t *g = realloc(r->gens, cap * sizeof *g);
	if (!g)
		return false;
	r->gens = g;
	uint32_t *f = realloc(r->free_idx, cap * sizeof *f);
	if (!f)
		return false;
	r->free_idx = f;
	r->cap = cap;
	return true;
}

static int table_insert(reactor_t *r, conn_t *c)
{
	uint32_t i;
	if (r->nfree) {
		i = r->free_idx[--r->nfree];
	} else {
		if (r->nslots == UINT32_MAX - 1)
			return IG_ENOMEM;
		if (r->nslots == r->cap && !table_grow(r))
			return IG_ENOMEM;
		i = r->nslots++;
		r->gens[i] = 1;
	}
	r->slots[i] = c;
	c->id = ((uint64_t)r->gens[i] << 32) | ((uint64_t)i + 1);
	return 0;
}

static void table_remove(reactor_t *r, conn_t *c)
{
	uint32_t i = (uint32_t)(c->id & 0xFFFFFFFFu) - 1;
	IG_ASSERT(i < r->nslots && r->slots[i] == c);
	r->slots[i] = NULL;
	if (++r->gens[i] == 0)
		r->gens[i] = 1;
	r->free_idx[r->nfree++] = i;
}

/* The live connection with this id; else IG_ECLOSED for an id this table
 * issued and closed, IG_ENOTFOUND for one it never issued. */
static conn_t *table_find(reactor_t *r, ig_tcp_t id, int *rc)
{
	uint32_t low = (uint32_t)(id & 0xFFFFFFFFu);
	uint32_t gen = (uint32_t)(id >> 32);
	*rc = IG_ENOTFOUND;
	if (low == 0 || low > r->nslots)
		return NULL;
	conn_t *c = r->slots[low - 1];
	if (c && c->id == id) {
		*rc = 0;
		return c;
	}
	if (gen < r->gens[low - 1])
		*rc = IG_ECLOSED;
	return NULL;
}

/* ---- reaching the reactor from callers ----------------------------------------- */

static void reactor_stop(ig_system_t *sys);
static int reactor_create(ig_system_t *sys, reactor_t **out);

static void *reactor_load(ig_system_t *sys)
{
	return __atomic_load_n(&sys->reactor, __ATOMIC_ACQUIRE);
}

/* The system's reactor, created on first need when create is set. */
static int reactor_get(ig_system_t *sys, bool create, reactor_t **out)
{
	void *p = reactor_load(sys);
	if (p == &reactor_gone)
		return IG_ESTOPPED;
	if (p) {
		*out = p;
		return 0;
	}
	if (!create)
		return IG_ENOTFOUND; /* no reactor: no id was ever issued */
	int rc = 0;
	pthread_mutex_lock(&sys->lock);
	p = sys->reactor;
	if (p == &reactor_gone || (!p && atomic_load(&sys->shutting_down))) {
		rc = IG_ESTOPPED;
	} else if (!p) {
		reactor_t *r;
		rc = reactor_create(sys, &r);
		if (rc == 0) {
			sys->reactor_stop = reactor_stop;
			__atomic_store_n(&sys->reactor, r, __ATOMIC_RELEASE);
			p = r;
		}
	}
	pthread_mutex_unlock(&sys->lock);
	if (rc == 0)
		*out = p;
	return rc;
}

/* Every call runs inside an RCU read-side section: reactor_stop waits for
 * a grace period before it frees what the call may still hold. */
static int enter(ig_system_t *sys, bool create, reactor_t **out)
{
	ig__rcu_read_lock();
	int rc = reactor_get(sys, create, out);
	if (rc)
		ig__rcu_read_unlock();
	return rc;
}

static void leave(reactor_t *r)
{
	IG_TSAN_RELEASE(r); /* TSan cannot see the grace period reactor_stop waits for */
	(void)r;
	ig__rcu_read_unlock();
}

/* Under r->lock: queues cmd; returns whether the caller must write the
 * eventfd (after unlocking), which at most one caller per wake-up does. */
static bool push_cmd(reactor_t *r, cmd_t *cmd)
{
	cmd->next = NULL;
	if (r->cmd_tail)
		r->cmd_tail->next = cmd;
	else
		r->cmd_head = cmd;
	r->cmd_tail = cmd;
	bool wake = !r->wake_pending;
	r->wake_pending = true;
	return wake;
}

static void wake(reactor_t *r)
{
	uint64_t one = 1;
	/* Fails only with EAGAIN at a counter near 2^64: already awake. */
	ssize_t n = write(r->efd, &one, sizeof one);
	(void)n;
}

/* Ownership: the returned command is the caller's until queued. */
static cmd_t *cmd_new(enum cmd_kind kind, ig_tcp_t id, size_t extra)
{
	cmd_t *c = malloc(sizeof *c + extra);
	if (c)
		*c = (cmd_t){.kind = kind, .id = id};
	return c;
}

/* ---- addresses ------------------------------------------------------------------- */

static int resolve(const char *host, uint16_t port, bool passive, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
	};
	char serv[8];
	snprintf(serv, sizeof serv, "%u", (unsigned)port);
	struct addrinfo *res;
	int e = getaddrinfo(host ? host : "127.0.0.1", serv, &hints, &res);
	if (e) {
		if (e == EAI_SYSTEM)
			return errno ? -errno : IG_EINVAL;
		if (e == EAI_MEMORY)
			return IG_ENOMEM;
		return e == EAI_NONAME || e == EAI_AGAIN || e == EAI_FAIL ? IG_ENOTFOUND
									  : IG_EINVAL;
	}
	int rc = IG_EINVAL;
	if (res->ai_addrlen <= sizeof *ss) {
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		rc = 0;
	}
	freeaddrinfo(res);
	return rc;
}

/* "host:port" (IPv6 as "[host]:port"); "?" if the family is unknown. */
static void format_addr(const struct sockaddr *sa, char out[64])
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
		snprintf(out, 64, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
		snprintf(out, 64, "[%s]:%u", host, port);
	} else {
		snprintf(out, 64, "?");
	}
}

static uint16_t local_port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

static void set_nodelay(int fd)
{
	/* Actors write whole replies; Nagle would only add latency. Failure
	 * is harmless (not TCP, or the socket is already dying). */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- messages to owners (reactor thread) ------------------------------------------ */

static void close_conn(reactor_t *r, conn_t *c, int err, bool notify);

static ig_ref_t owner_of(conn_t *c)
{
	return (ig_ref_t){atomic_load_explicit(&c->owner, memory_order_acquire)};
}

/* Sends a runtime TCP message (ig_tell refuses runtime types). Returns
 * ig__send's result; m is consumed either way. */
static int send_to_owner(conn_t *c, ig__msg_t *m)
{
	return m ? ig__send(owner_of(c), m) : IG_ENOMEM;
}

/* Sends an ig_tcp_event_t. When the owner is gone the connection dies with
 * it, silently. Returns false when c is closed afterwards. */
static bool send_event(reactor_t *r, conn_t *c, uint32_t type, const ig_tcp_event_t *ev)
{
	int rc = send_to_owner(c, ig__msg_copy(type, ev, sizeof *ev, IG_NOREF));
	if (rc == IG_ENOACTOR)
		close_conn(r, c, 0, false);
	else if (rc == IG_ENOMEM || rc == IG_EFULL)
		close_conn(r, c, rc, true); /* the stream lost an event: it is broken */
	return !c->dead;
}

static void send_closed(conn_t *c, int err)
{
	if (c->closed_sent)
		return;
	c->closed_sent = true;
	ig_tcp_event_t ev = {.conn = c->id, .err = err};
	/* The connection is ending anyway; a dead owner changes nothing. */
	send_to_owner(c, ig__msg_copy(IG_MSG_TCP_CLOSED, &ev, sizeof ev, IG_NOREF));
}

/* Ownership: the payload is malloc'd here and freed by the runtime (free)
 * after the owner's behavior returns. */
static void send_data(reactor_t *r, conn_t *c, size_t n)
{
	void *buf = malloc(n);
	ig__msg_t *m = buf ? ig__msg_alloc(0) : NULL;
	if (!m) {
		free(buf);
		close_conn(r, c, IG_ENOMEM, true);
		return;
	}
	memcpy(buf, r->scratch, n);
	m->env = (ig_msg_t){.type = IG_MSG_TCP_DATA, .size = (uint32_t)n, .data = buf};
	m->ptr = buf;
	m->dtor = free;
	int rc = ig__send(owner_of(c), m);
	if (rc == IG_ENOACTOR)
		close_conn(r, c, 0, false);
	else if (rc)
		close_conn(r, c, rc, true); /* bytes were lost: the stream is broken */
}

/* ---- closing ------------------------------------------------------------------------ */

static void retry_unlink(reactor_t *r, conn_t *c)
{
	for (conn_t **p = &r->retry; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	c->accept_retry = false;
}

static void free_writes(cmd_t *w)
{
	while (w) {
		cmd_t *next = w->next;
		free(w);
		w = next;
	}
}

/* Closes now: the id dies, the socket closes, queued writes are dropped and
 * the owner gets CLOSED(err) if notify. The memory goes at the end of the
 * iteration (bury). Idempotent. */
static void close_conn(reactor_t *r, conn_t *c, int err, bool notify)
{
	if (c->dead)
		return;
	c->dead = true;
	pthread_mutex_lock(&r->lock);
	c->closing = true;
	table_remove(r, c);
	pthread_mutex_unlock(&r->lock);
	if (c->accept_retry)
		retry_unlink(r, c);
	if (c->fd >= 0) {
		/* Explicit: a forked child holding a copy would keep the
		 * registration (and our pointer) alive past close. */
		if (c->in_epoll)
			epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	free_writes(c->wq_head);
	c->wq_head = c->wq_tail = NULL;
	if (notify)
		send_closed(c, err);
	c->next = r->grave;
	r->grave = c;
}

static void bury(reactor_t *r)
{
	while (r->grave) {
		conn_t *c = r->grave;
		r->grave = c->next;
		free(c);
	}
}

/* ---- reading (reactor thread) -------------------------------------------------------- */

/* One recv for an armed read: DATA, or CLOSED on EOF or error. */
static void do_read(reactor_t *r, conn_t *c)
{
	while (c->read_armed && c->readable && !c->dead) {
		size_t want = c->read_max < READ_MAX ? c->read_max : READ_MAX;
		ssize_t n = recv(c->fd, r->scratch, want, 0);
		if (n > 0) {
			c->read_armed = false;
			/* A short read drained the socket (epoll(7)), so the next
			 * bytes bring a new edge; unless EOF or an error is
			 * pending, which brings none. */
			if ((size_t)n < want && !c->hup_seen)
				c->readable = false;
			send_data(r, c, (size_t)n);
			return;
		}
		if (n == 0) {
			/* EOF. No half-close: the owner hears CLOSED(0) now and
			 * writes already queued still go out. */
			c->read_armed = false;
			pthread_mutex_lock(&r->lock);
			c->closing = true;
			pthread_mutex_unlock(&r->lock);
			send_closed(c, 0);
			if (!c->wq_head)
				close_conn(r, c, 0, false);
			else
				c->close_when_flushed = true;
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->readable = false;
			return;
		}
		close_conn(r, c, -errno, true);
	}
}

/* ---- writing (reactor thread) ---------------------------------------------------------- */

/* Retires the queued writes that n more sent bytes complete, telling the
 * owner about each. Returns false if c closed meanwhile. */
static bool complete_writes(reactor_t *r, conn_t *c, size_t n)
{
	while (c->wq_head) {
		cmd_t *w = c->wq_head;
		size_t take = w->len - w->off < n ? w->len - w->off : n;
		w->off += take;
		n -= take;
		if (w->off < w->len)
			break;
		c->wq_head = w->next;
		if (!c->wq_head)
			c->wq_tail = NULL;
		ig_tcp_event_t ev = {.conn = c->id, .bytes = w->len};
		free(w);
		if (!send_event(r, c, IG_MSG_TCP_WRITTEN, &ev))
			return false;
	}
	return true;
}

static void flush(reactor_t *r, conn_t *c)
{
	while (c->wq_head && c->writable && !c->dead) {
		struct iovec iov[IOV_BATCH];
		int k = 0;
		size_t total = 0;
		for (cmd_t *w = c->wq_head; w && k < IOV_BATCH; w = w->next) {
			if (w->off == w->len)
				continue; /* empty writes complete in order below */
			iov[k].iov_base = w->data + w->off;
			iov[k].iov_len = w->len - w->off;
			total += iov[k].iov_len;
			k++;
		}
		size_t sent = 0;
		if (total) {
			struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
			ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					c->writable = false;
					return;
				}
				close_conn(r, c, -errno, true);
				return;
			}
			sent = (size_t)n;
			if (sent < total)
				c->writable = false; /* buffer full: EPOLLOUT will come */
			atomic_fetch_sub_explicit(&c->wbytes, sent, memory_order_relaxed);
		}
		if (!complete_writes(r, c, sent))
			return;
	}
	if (!c->dead && !c->wq_head && c->close_when_flushed)
		close_conn(r, c, 0, true);
}

/* ---- connecting and accepting (reactor thread) -------------------------------------------- */

/* Registers c; on failure closes it, telling the owner if notify. */
static bool epoll_add(reactor_t *r, conn_t *c, uint32_t events, bool notify)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		int err = -errno;
		if (!notify)
			ig_log(r->sys, NULL, IG_LOG_WARN, "tcp: dropping a connection: %s",
			       ig_strerror(err));
		close_conn(r, c, err, notify);
		return false;
	}
	c->in_epoll = true;
	return true;
}

#define STREAM_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

/* The socket is connected or failed: SO_ERROR says which. ev_mask holds the
 * epoll events that prompted the check (0 after an immediate connect). */
static void finish_connect(reactor_t *r, conn_t *c, uint32_t ev_mask)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err) {
		close_conn(r, c, -err, true);
		return;
	}
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) != 0) {
		/* Not connected and no error: still in progress, and a later
		 * edge finishes it; unless the socket hung up, when no edge
		 * will come. */
		if (errno != ENOTCONN || (ev_mask & EPOLLHUP))
			close_conn(r, c, -errno, true);
		return;
	}
	c->connecting = false;
	c->readable = c->writable = true; /* optimistic: EAGAIN corrects it */
	atomic_store_explicit(&c->port, local_port_of(c->fd), memory_order_relaxed);
	ig_tcp_event_t ev = {.conn = c->id};
	format_addr((struct sockaddr *)&peer, ev.peer);
	if (!send_event(r, c, IG_MSG_TCP_CONNECTED, &ev))
		return;
	flush(r, c);
	if (!c->dead && c->read_armed)
		do_read(r, c);
	if (!c->dead && c->close_when_flushed && !c->wq_head)
		close_conn(r, c, 0, true);
}

static void start_connect(reactor_t *r, conn_t *c)
{
	c->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		close_conn(r, c, -errno, true);
		return;
	}
	set_nodelay(c->fd);
	c->connecting = true;
	int rc = connect(c->fd, (struct sockaddr *)&c->addr, c->addrlen);
	if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
		close_conn(r, c, -errno, true);
		return;
	}
	/* Registered only now: a socket that has not started connecting
	 * polls as EPOLLOUT|EPOLLHUP, which would look like a finished one. */
	if (!epoll_add(r, c, STREAM_EVENTS, true))
		return;
	if (rc == 0)
		finish_connect(r, c, 0);
}

/* Takes one accepted socket. Returns false if the listener closed. */
static bool take_accepted(reactor_t *r, conn_t *l, int fd, const struct sockaddr_storage *peer)
{
	conn_t *c = calloc(1, sizeof *c);
	int rc = c ? 0 : IG_ENOMEM;
	if (rc == 0) {
		c->fd = fd;
		c->readable = c->writable = true; /* optimistic: EAGAIN corrects it */
		atomic_init(&c->owner, atomic_load(&l->owner));
		atomic_init(&c->port, local_port_of(fd));
		atomic_init(&c->wbytes, 0);
		pthread_mutex_lock(&r->lock);
		rc = table_insert(r, c);
		pthread_mutex_unlock(&r->lock);
	}
	if (rc) {
		ig_log(r->sys, NULL, IG_LOG_WARN, "tcp: dropping an accepted connection: %s",
		       ig_strerror(rc));
		close(fd);
		free(c);
		return true;
	}
	set_nodelay(fd);
	if (!epoll_add(r, c, STREAM_EVENTS, false)) /* the owner never heard of it */
		return true;
	ig_tcp_event_t ev = {.conn = c->id, .listener = l->id};
	format_addr((const struct sockaddr *)peer, ev.peer);
	int src = send_to_owner(c, ig__msg_copy(IG_MSG_TCP_ACCEPTED, &ev, sizeof ev, IG_NOREF));
	if (src == 0)
		return true;
	close_conn(r, c, 0, false);
	if (src == IG_ENOACTOR) {
		close_conn(r, l, 0, false); /* nobody is left to accept for */
		return false;
	}
	return true;
}

static void accept_all(reactor_t *r, conn_t *l)
{
	while (!l->dead) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof peer;
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			l->accept_stalled = false;
			if (!take_accepted(r, l, fd, &peer))
				return;
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EAGAIN != EWOULDBLOCK
		case EWOULDBLOCK:
#endif
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM: /* a firewall refused this one */
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* The connection waits in the backlog; no new edge will
			 * come for it, so try again on a timer. */
			if (!l->accept_stalled)
				ig_log(r->sys, NULL, IG_LOG_WARN,
				       "tcp: accept: %s; retrying every %d ms", strerror(errno),
				       ACCEPT_RETRY_MS);
			l->accept_stalled = true;
			if (!l->accept_retry) {
				l->accept_retry = true;
				l->next = r->retry;
				r->retry = l;
			}
			return;
		default:
			close_conn(r, l, -errno, true);
			return;
		}
	}
}

static void retry_accepts(reactor_t *r)
{
	conn_t *list = r->retry;
	r->retry = NULL;
	while (list) {
		conn_t *l = list;
		list = l->next;
		l->accept_retry = false;
		accept_all(r, l);
	}
}

/* ---- events and commands (reactor thread) ------------------------------------------------- */

static void on_event(reactor_t *r, conn_t *c, uint32_t ev)
{
	if (c->dead)
		return;
	if (c->listener) {
		accept_all(r, c);
		return;
	}
	if (c->connecting) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			finish_connect(r, c, ev);
		return;
	}
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->hup_seen = true;
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	if (c->wq_head)
		flush(r, c);
	if (!c->dead && c->read_armed)
		do_read(r, c);
	if (!c->dead && (ev & EPOLLERR)) {
		/* An error nobody's read or write consumed: report it now
		 * rather than at the owner's next call. */
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
			close_conn(r, c, -err, true);
	}
}

static void run_cmd(reactor_t *r, cmd_t *cmd)
{
	conn_t *c = cmd->conn;
	if (!c || c->dead) {
		free(cmd); /* closed since it was queued */
		return;
	}
	switch (cmd->kind) {
	case CMD_START:
		free(cmd);
		if (!c->listener)
			start_connect(r, c);
		else if (epoll_add(r, c, EPOLLIN | EPOLLET, true))
			accept_all(r, c);
		return;
	case CMD_READ:
		c->read_armed = true;
		c->read_max = cmd->len;
		free(cmd);
		if (!c->connecting)
			do_read(r, c);
		return;
	case CMD_WRITE:
		if (c->wq_tail)
			c->wq_tail->next = cmd;
		else
			c->wq_head = cmd;
		c->wq_tail = cmd;
		cmd->next = NULL;
		if (!c->connecting)
			flush(r, c);
		return;
	case CMD_CLOSE:
		free(cmd);
		/* c->closing was set by the caller. Nothing more is read;
		 * a connect still in progress with nothing to send is simply
		 * abandoned. */
		c->read_armed = false;
		if (c->listener || !c->wq_head)
			close_conn(r, c, 0, true);
		else
			c->close_when_flushed = true;
		return;
	}
}

static void run_cmds(reactor_t *r)
{
	pthread_mutex_lock(&r->lock);
	r->wake_pending = false;
	cmd_t *list = r->cmd_head;
	r->cmd_head = r->cmd_tail = NULL;
	/* Resolved now, under the lock: a conn found here stays in memory
	 * until bury() at the end of this iteration. */
	for (cmd_t *cmd = list; cmd; cmd = cmd->next) {
		int rc;
		cmd->conn = table_find(r, cmd->id, &rc);
	}
	pthread_mutex_unlock(&r->lock);
	while (list) {
		cmd_t *cmd = list;
		list = cmd->next;
		run_cmd(r, cmd);
	}
}

static void drain_eventfd(reactor_t *r)
{
	uint64_t v;
	ssize_t n = read(r->efd, &v, sizeof v);
	(void)n; /* EAGAIN: another wake-up already cleared it */
}

static void *reactor_main(void *arg)
{
	reactor_t *r = arg;
	struct epoll_event evs[EVENTS];
	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		int n = epoll_wait(r->epfd, evs, EVENTS, r->retry ? ACCEPT_RETRY_MS : -1);
		IG_ASSERT(n >= 0 || errno == EINTR);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr)
				on_event(r, evs[i].data.ptr, evs[i].events);
			else
				drain_eventfd(r);
		}
		if (r->retry)
			retry_accepts(r);
		run_cmds(r);
		bury(r);
	}
	return NULL;
}

/* ---- creation and stop -------------------------------------------------------------------- */

static void reactor_free(reactor_t *r)
{
	for (uint32_t i = 0; i < r->nslots; i++) {
		conn_t *c = r->slots[i];
		if (!c)
			continue;
		if (c->fd >= 0)
			close(c->fd);
		free_writes(c->wq_head);
		free(c);
	}
	free_writes(r->cmd_head);
	bury(r);
	free(r->slots);
	free(r->gens);
	free(r->free_idx);
	free(r->scratch);
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->efd >= 0)
		close(r->efd);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Ownership: *out belongs to sys (sys->reactor); reactor_stop frees it. */
static int reactor_create(ig_system_t *sys, reactor_t **out)
{
	reactor_t *r = calloc(1, sizeof *r);
	if (!r)
		return IG_ENOMEM;
	r->sys = sys;
	r->epfd = r->efd = -1;
	pthread_mutex_init(&r->lock, NULL);
	atomic_init(&r->stop, false);
	int rc = 0;
	r->scratch = malloc(READ_MAX);
	if (!r->scratch)
		rc = IG_ENOMEM;
	if (rc == 0 && (r->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		rc = -errno;
	if (rc == 0 && (r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		rc = -errno;
	if (rc == 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->efd, &ev) != 0)
			rc = -errno;
	}
	if (rc == 0) {
		/* The application's signal handlers must not run here. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = -pthread_create(&r->thread, NULL, reactor_main, r);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc == 0)
			pthread_setname_np(r->thread, "ig-reactor");
	}
	if (rc) {
		reactor_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* sys->reactor_stop: ig_system_shutdown calls it once every actor is gone.
 * Closes every socket, joins the thread, frees everything. Idempotent. */
static void reactor_stop(ig_system_t *sys)
{
	pthread_mutex_lock(&sys->lock);
	reactor_t *r = sys->reactor;
	if (r != (void *)&reactor_gone)
		__atomic_store_n(&sys->reactor, (void *)&reactor_gone, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&sys->lock);
	if (!r || r == (void *)&reactor_gone)
		return;
	/* Calls that loaded r before the swap finish within this grace period. */
	urcu_memb_synchronize_rcu();
	IG_TSAN_ACQUIRE(r);
	atomic_store_explicit(&r->stop, true, memory_order_release);
	wake(r);
	pthread_join(r->thread, NULL);
	reactor_free(r);
}

/* ---- the public calls ---------------------------------------------------------------------- */

/* Inserts a new listener or outgoing connection and queues its start.
 * Ownership: c and cmd are the reactor's on success, the caller's on error. */
static int add_conn(ig_system_t *sys, conn_t *c, cmd_t *cmd, ig_tcp_t *out)
{
	reactor_t *r;
	int rc = enter(sys, true, &r);
	if (rc)
		return rc;
	pthread_mutex_lock(&r->lock);
	rc = table_insert(r, c);
	bool w = false;
	ig_tcp_t id = c->id;
	cmd->id = id;
	if (rc == 0)
		w = push_cmd(r, cmd);
	/* From the unlock on, the reactor may close and free c at any time. */
	pthread_mutex_unlock(&r->lock);
	if (w)
		wake(r);
	if (rc == 0)
		*out = id;
	leave(r);
	return rc;
}

static conn_t *conn_new(int fd, ig_ref_t owner)
{
	conn_t *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->fd = fd;
	atomic_init(&c->owner, owner.h);
	atomic_init(&c->port, 0);
	atomic_init(&c->wbytes, 0);
	return c;
}

/* A bound, listening, non-blocking socket, or -errno. */
static int open_listener(const struct sockaddr_storage *ss, socklen_t len, int backlog)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (const struct sockaddr *)ss, len) != 0 ||
	    listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int ig_tcp_listen(ig_system_t *sys, ig_ref_t owner, const char *host, uint16_t port,
		  int backlog, ig_tcp_t *out)
{
	if (!sys || !out || ig_ref_is_none(owner))
		return IG_EINVAL;
	struct sockaddr_storage ss;
	socklen_t len;
	int rc = resolve(host, port, true, &ss, &len);
	if (rc)
		return rc;
	int fd = open_listener(&ss, len, backlog);
	if (fd < 0)
		return fd;
	conn_t *c = conn_new(fd, owner);
	cmd_t *cmd = cmd_new(CMD_START, 0, 0);
	rc = c && cmd ? 0 : IG_ENOMEM;
	if (rc == 0) {
		c->listener = true;
		atomic_store(&c->port, local_port_of(fd));
		rc = add_conn(sys, c, cmd, out);
	}
	if (rc) {
		close(fd);
		free(c);
		free(cmd);
	}
	return rc;
}

int ig_tcp_connect(ig_system_t *sys, ig_ref_t owner, const char *host, uint16_t port,
		   ig_tcp_t *out)
{
	if (!sys || !out || ig_ref_is_none(owner) || port == 0)
		return IG_EINVAL;
	conn_t *c = conn_new(-1, owner);
	cmd_t *cmd = cmd_new(CMD_START, 0, 0);
	/* Name resolution may block: it runs here, on the caller's thread. */
	int rc = c && cmd ? resolve(host, port, false, &c->addr, &c->addrlen) : IG_ENOMEM;
	if (rc == 0)
		rc = add_conn(sys, c, cmd, out);
	if (rc) {
		free(c);
		free(cmd);
	}
	return rc;
}

/* Looks conn up for a caller. Returns with r->lock held on success. */
static int find_locked(ig_system_t *sys, ig_tcp_t id, reactor_t **rp, conn_t **cp)
{
	reactor_t *r;
	int rc = enter(sys, false, &r);
	if (rc)
		return rc;
	pthread_mutex_lock(&r->lock);
	conn_t *c = table_find(r, id, &rc);
	if (!c) {
		pthread_mutex_unlock(&r->lock);
		leave(r);
		return rc;
	}
	*rp = r;
	*cp = c;
	return 0;
}

static void unlock_leave(reactor_t *r, bool wake_it)
{
	pthread_mutex_unlock(&r->lock);
	if (wake_it)
		wake(r);
	leave(r);
}

int ig_tcp_local_port(ig_system_t *sys, ig_tcp_t sock, uint16_t *port)
{
	if (!sys || !port)
		return IG_EINVAL;
	reactor_t *r;
	conn_t *c;
	int rc = find_locked(sys, sock, &r, &c);
	if (rc)
		return rc;
	uint16_t p = atomic_load_explicit(&c->port, memory_order_relaxed);
	unlock_leave(r, false);
	if (!p)
		return IG_EAGAIN; /* an outgoing connection not connected yet */
	*port = p;
	return 0;
}

int ig_tcp_set_owner(ig_system_t *sys, ig_tcp_t conn, ig_ref_t owner)
{
	if (!sys || ig_ref_is_none(owner))
		return IG_EINVAL;
	reactor_t *r;
	conn_t *c;
	int rc = find_locked(sys, conn, &r, &c);
	if (rc)
		return rc;
	/* Takes effect at once: the reactor reads the owner at each send. */
	if (c->closing)
		rc = IG_ECLOSED;
	else
		atomic_store_explicit(&c->owner, owner.h, memory_order_release);
	unlock_leave(r, false);
	return rc;
}

/* Queues cmd for an open stream connection. Ownership: cmd is the
 * reactor's on success, the caller's on error. */
static int submit(ig_system_t *sys, ig_tcp_t id, cmd_t *cmd)
{
	reactor_t *r;
	conn_t *c;
	int rc = find_locked(sys, id, &r, &c);
	if (rc)
		return rc;
	if (c->listener && cmd->kind != CMD_CLOSE)
		rc = IG_EINVAL;
	else if (c->closing)
		rc = IG_ECLOSED;
	else if (cmd->kind == CMD_WRITE) {
		/* Checked and reserved under the lock; the reactor only ever
		 * lowers it, so the check cannot be overtaken. */
		size_t queued = atomic_load_explicit(&c->wbytes, memory_order_relaxed);
		if (queued + cmd->len > WBUF_LIMIT)
			rc = IG_EFULL;
		else
			atomic_fetch_add_explicit(&c->wbytes, cmd->len, memory_order_relaxed);
	} else if (cmd->kind == CMD_CLOSE) {
		c->closing = true;
	}
	bool w = false;
	if (rc == 0)
		w = push_cmd(r, cmd);
	unlock_leave(r, w);
	return rc;
}

int ig_tcp_read(ig_system_t *sys, ig_tcp_t conn, size_t max)
{
	if (!sys || max == 0)
		return IG_EINVAL;
	cmd_t *cmd = cmd_new(CMD_READ, conn, 0);
	if (!cmd)
		return IG_ENOMEM;
	cmd->len = max;
	int rc = submit(sys, conn, cmd);
	if (rc)
		free(cmd);
	return rc;
}

int ig_tcp_write(ig_system_t *sys, ig_tcp_t conn, const void *data, size_t len)
{
	if (!sys || (len && !data))
		return IG_EINVAL;
	if (len > WBUF_LIMIT)
		return IG_EFULL; /* could never fit */
	cmd_t *cmd = cmd_new(CMD_WRITE, conn, len);
	if (!cmd)
		return IG_ENOMEM;
	cmd->len = len;
	if (len)
		memcpy(cmd->data, data, len);
	int rc = submit(sys, conn, cmd);
	if (rc)
		free(cmd);
	return rc;
}

int ig_tcp_close(ig_system_t *sys, ig_tcp_t conn)
{
	if (!sys)
		return IG_EINVAL;
	cmd_t *cmd = cmd_new(CMD_CLOSE, conn, 0);
	if (!cmd)
		return IG_ENOMEM;
	int rc = submit(sys, conn, cmd);
	if (rc)
		free(cmd);
	return rc;
}
