/* Tests of the I/O reactor (runtime/reactor.c, docs/reactor.md): an echo
 * server made of actors (an acceptor that hands each connection to its own
 * handler) talked to by plain blocking-socket clients in C threads; flow
 * control, closes from either side, connect failures, the write-buffer
 * limit, owner death and shutdown. Waits are condition variables or probes
 * with deadlines, never sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ingot/runtime.h>

#define WAIT_SECONDS 60               /* every wait's deadline */
#define WBUF_LIMIT ((size_t)4 << 20)  /* the reactor's documented limit */
#define HANDLER_READ 65536            /* what handlers ask for per read */
#define MAX_HANDLERS 512

/* The tests' own message types. */
enum { T_START = 1, T_MORE, T_WATCH };

/* ---- shared state between actors and the test thread ------------------------ */

typedef struct world world_t;

typedef struct handler_arg {
	world_t *w;
	ig_tcp_t conn;
} handler_arg_t;

enum { N_TCP = IG_MSG_TCP_WRITTEN - IG_MSG_TCP_ACCEPTED + 1 };

struct world {
	ig_system_t *sys;
	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cv;  /* broadcast on every change */
	/* Echo server: what handlers do. */
	bool echo;          /* write back what they read */
	bool auto_read;     /* ask for the next read after each DATA */
	bool verify;        /* check incoming bytes against pattern() */
	size_t read_size;   /* max per read; 0 = HANDLER_READ */
	ig_tcp_t listener;
	uint16_t port;
	handler_arg_t args[MAX_HANDLERS]; /* spawn args: live as long as w */
	ig_ref_t handlers[MAX_HANDLERS];
	unsigned accepted;
	unsigned nhandlers;
	unsigned data_msgs;
	uint64_t data_bytes;
	unsigned written;
	unsigned closed;
	int last_closed_err;
	/* Recorder: every TCP message it gets. */
	unsigned rec[N_TCP];
	ig_tcp_event_t rec_ev[N_TCP]; /* the last of each type */
	unsigned char *rec_data;
	size_t rec_len, rec_cap;
	uint64_t rec_written_bytes;
	/* Watcher. */
	bool terminated;
	bool accept_warned; /* a log line about a stalled accept */
	/* Anything a behavior found wrong (asserted on the test thread). */
	unsigned errors;
	char error_text[200];
};

static void note_error(world_t *w, const char *what, int rc)
{
	pthread_mutex_lock(&w->mu);
	if (!w->errors++)
		snprintf(w->error_text, sizeof w->error_text, "%s: %s", what, ig_strerror(rc));
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void check(world_t *w, int rc, const char *what)
{
	if (rc)
		note_error(w, what, rc);
}

static struct timespec deadline_in(int seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += seconds;
	return ts;
}

/* Waits (on w->cv, up to WAIT_SECONDS) until cond holds; cond reads w's
 * fields and is evaluated under w->mu. */
#define WAIT_UNTIL(w, cond)                                                         \
	do {                                                                        \
		struct timespec dl_ = deadline_in(WAIT_SECONDS);                    \
		int rc_ = 0;                                                        \
		pthread_mutex_lock(&(w)->mu);                                       \
		while (!(cond) && rc_ != ETIMEDOUT)                                 \
			rc_ = pthread_cond_timedwait(&(w)->cv, &(w)->mu, &dl_);     \
		bool ok_ = (cond);                                                  \
		pthread_mutex_unlock(&(w)->mu);                                     \
		if (!ok_)                                                           \
			fail_msg("timed out waiting for: %s", #cond);               \
	} while (0)

/* WAIT_UNTIL(w, *flag) that reports instead of failing the test. */
static bool wait_flag(world_t *w, const bool *flag)
{
	struct timespec dl = deadline_in(WAIT_SECONDS);
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	while (!*flag && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
	bool ok = *flag;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

/* Reads a field of w under its lock. */
#define LOCKED(w, expr)                                                             \
	__extension__({                                                             \
		pthread_mutex_lock(&(w)->mu);                                       \
		__typeof__(expr) v_ = (expr);                                       \
		pthread_mutex_unlock(&(w)->mu);                                     \
		v_;                                                                 \
	})

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 9) + (i >> 17));
}

static void fill_pattern(unsigned char *b, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pattern(off + i);
}

static bool matches_pattern(const unsigned char *b, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != pattern(off + i))
			return false;
	return true;
}

/* ---- actors --------------------------------------------------------------------- */

typedef struct handler {
	world_t *w;
	ig_tcp_t conn;
	uint64_t off; /* bytes seen, for verify */
} handler_t;

static int handler_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	handler_t *h = state;
	handler_arg_t *a = arg;
	h->w = a->w;
	h->conn = a->conn;
	return 0;
}

static size_t read_size(world_t *w)
{
	pthread_mutex_lock(&w->mu);
	size_t n = w->read_size ? w->read_size : HANDLER_READ;
	pthread_mutex_unlock(&w->mu);
	return n;
}

static void handler_data(ig_ctx_t *ctx, handler_t *h, const ig_msg_t *msg)
{
	world_t *w = h->w;
	ig_system_t *sys = ig_ctx_system(ctx);
	pthread_mutex_lock(&w->mu);
	bool echo = w->echo, again = w->auto_read, verify = w->verify;
	pthread_mutex_unlock(&w->mu);
	if (msg->size == 0 || msg->size > read_size(w))
		note_error(w, "DATA size out of range", IG_ERANGE);
	if (verify && !matches_pattern(msg->data, msg->size, h->off))
		note_error(w, "DATA does not match the pattern", IG_ECORRUPT);
	h->off += msg->size;
	if (echo)
		check(w, ig_tcp_write(sys, h->conn, msg->data, msg->size), "handler write");
	if (again)
		check(w, ig_tcp_read(sys, h->conn, read_size(w)), "handler read");
	pthread_mutex_lock(&w->mu);
	w->data_msgs++;
	w->data_bytes += msg->size;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int handler_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	handler_t *h = state;
	world_t *w = h->w;
	switch (msg->type) {
	case T_START:
	case T_MORE:
		check(w, ig_tcp_read(ig_ctx_system(ctx), h->conn, read_size(w)), "handler arm");
		break;
	case IG_MSG_TCP_DATA:
		handler_data(ctx, h, msg);
		break;
	case IG_MSG_TCP_WRITTEN:
		pthread_mutex_lock(&w->mu);
		w->written++;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		break;
	case IG_MSG_TCP_CLOSED: {
		const ig_tcp_event_t *ev = msg->data;
		if (ev->conn != h->conn)
			note_error(w, "CLOSED for another connection", IG_EINVAL);
		pthread_mutex_lock(&w->mu);
		w->closed++;
		w->last_closed_err = ev->err;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		ig_stop_self(ctx);
		break;
	}
	default:
		note_error(w, "handler: unexpected message", IG_EINVAL);
	}
	return 0;
}

static const ig_props_t handler_props = {
	.behavior = handler_behavior,
	.state_size = sizeof(handler_t),
	.init = handler_init,
};

static int world_ptr_init(ig_ctx_t *ctx, void *state, void *arg)
{
	(void)ctx;
	*(world_t **)state = arg;
	return 0;
}

/* Owns the listener: gives each connection its own handler, hands it over,
 * and only then lets the handler arm its first read. */
static int acceptor_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	world_t *w = *(world_t **)state;
	ig_system_t *sys = ig_ctx_system(ctx);
	if (msg->type != IG_MSG_TCP_ACCEPTED) {
		note_error(w, "acceptor: unexpected message", IG_EINVAL);
		return 0;
	}
	const ig_tcp_event_t *ev = msg->data;
	pthread_mutex_lock(&w->mu);
	unsigned i = w->accepted;
	if (i < MAX_HANDLERS) {
		w->args[i] = (handler_arg_t){.w = w, .conn = ev->conn};
		w->accepted++;
	}
	bool listener_ok = ev->listener == w->listener;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (i >= MAX_HANDLERS || !listener_ok || strncmp(ev->peer, "127.0.0.1:", 10) != 0) {
		note_error(w, "acceptor: bad ACCEPTED", IG_EINVAL);
		return 0;
	}
	ig_ref_t h;
	int rc = ig_spawn(ctx, &handler_props, NULL, &w->args[i], &h);
	if (rc == 0)
		rc = ig_tcp_set_owner(sys, ev->conn, h);
	if (rc == 0)
		rc = ig_tell(h, T_START, NULL, 0, ig_self(ctx));
	check(w, rc, "acceptor: hand over");
	pthread_mutex_lock(&w->mu);
	w->handlers[i] = h;
	w->nhandlers++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static const ig_props_t acceptor_props = {
	.behavior = acceptor_behavior,
	.state_size = sizeof(world_t *),
	.init = world_ptr_init,
};

/* Records every TCP message; the test thread drives its connections. */
static int recorder_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	(void)ctx;
	world_t *w = *(world_t **)state;
	if (msg->type < IG_MSG_TCP_ACCEPTED || msg->type > IG_MSG_TCP_WRITTEN) {
		note_error(w, "recorder: unexpected message", IG_EINVAL);
		return 0;
	}
	unsigned k = msg->type - IG_MSG_TCP_ACCEPTED;
	pthread_mutex_lock(&w->mu);
	w->rec[k]++;
	if (msg->type == IG_MSG_TCP_DATA) {
		if (w->rec_len + msg->size > w->rec_cap) {
			size_t cap = (w->rec_len + msg->size) * 2;
			unsigned char *p = realloc(w->rec_data, cap);
			if (p) {
				w->rec_data = p;
				w->rec_cap = cap;
			}
		}
		if (w->rec_len + msg->size <= w->rec_cap) {
			memcpy(w->rec_data + w->rec_len, msg->data, msg->size);
			w->rec_len += msg->size;
		}
	} else if (msg->size == sizeof(ig_tcp_event_t)) {
		w->rec_ev[k] = *(const ig_tcp_event_t *)msg->data;
		if (msg->type == IG_MSG_TCP_WRITTEN)
			w->rec_written_bytes += w->rec_ev[k].bytes;
	} else {
		w->errors++;
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static const ig_props_t recorder_props = {
	.behavior = recorder_behavior,
	.state_size = sizeof(world_t *),
	.init = world_ptr_init,
};

/* Watches the ref it is sent and notes the Terminated; notes log lines
 * about accept when subscribed to IG_MSG_LOG. */
static int watcher_behavior(ig_ctx_t *ctx, void *state, const ig_msg_t *msg)
{
	world_t *w = *(world_t **)state;
	if (msg->type == T_WATCH && msg->size == sizeof(ig_ref_t)) {
		check(w, ig_watch(ctx, *(const ig_ref_t *)msg->data), "watch");
	} else if (msg->type == IG_MSG_TERMINATED) {
		pthread_mutex_lock(&w->mu);
		w->terminated = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	} else if (msg->type == IG_MSG_LOG && msg->size == sizeof(ig_log_event_t)) {
		const ig_log_event_t *ev = msg->data;
		pthread_mutex_lock(&w->mu);
		if (strstr(ev->text, "accept"))
			w->accept_warned = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	return 0;
}

static const ig_props_t watcher_props = {
	.behavior = watcher_behavior,
	.state_size = sizeof(world_t *),
	.init = world_ptr_init,
};

/* ---- set-up ---------------------------------------------------------------------- */

static world_t *world_new(void)
{
	world_t *w = calloc(1, sizeof *w);
	assert_non_null(w);
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	ig_system_config_t cfg = {.name = "reactor-test", .threads = 2};
	assert_int_equal(ig_system_create(&cfg, &w->sys), 0);
	return w;
}

/* The system goes first: its actors point into w. */
static void world_free(world_t *w)
{
	ig_system_destroy(w->sys);
	assert_int_equal(w->errors, 0);
	free(w->rec_data);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static void assert_no_errors(world_t *w)
{
	pthread_mutex_lock(&w->mu);
	unsigned n = w->errors;
	char text[sizeof w->error_text];
	memcpy(text, w->error_text, sizeof text);
	pthread_mutex_unlock(&w->mu);
	if (n)
		fail_msg("%u error(s) inside actors; first: %s", n, text);
}

static ig_ref_t spawn(world_t *w, const ig_props_t *props)
{
	ig_ref_t ref;
	assert_int_equal(ig_system_spawn(w->sys, props, NULL, w, &ref), 0);
	return ref;
}

/* An echo server on 127.0.0.1 at an ephemeral port (w->port). */
static void start_server(world_t *w, bool echo, bool auto_read)
{
	w->echo = echo;
	w->auto_read = auto_read;
	ig_ref_t acceptor = spawn(w, &acceptor_props);
	ig_tcp_t l;
	/* The acceptor compares ev->listener with w->listener: set it before
	 * any client can connect. */
	pthread_mutex_lock(&w->mu);
	int rc = ig_tcp_listen(w->sys, acceptor, NULL, 0, 512, &l);
	w->listener = l;
	pthread_mutex_unlock(&w->mu);
	assert_int_equal(rc, 0);
	assert_int_equal(ig_tcp_local_port(w->sys, l, &w->port), 0);
	assert_int_not_equal(w->port, 0);
}

/* ---- plain sockets ------------------------------------------------------------------- */

static void set_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = WAIT_SECONDS};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* A blocking client socket with timeouts, or -errno. */
static int client_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_timeouts(fd);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in a = loopback(port);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* A blocking listener on an ephemeral loopback port. */
static int plain_listen(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	set_timeouts(fd); /* accept honours SO_RCVTIMEO */
	struct sockaddr_in a = loopback(0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 16), 0);
	socklen_t len = sizeof a;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int plain_accept(int lfd)
{
	int fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	set_timeouts(fd);
	return fd;
}

/* A loopback port nothing listens on (bound, then released). */
static uint16_t closed_port(void)
{
	uint16_t port;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = loopback(0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n) {
		ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

static bool read_all(int fd, void *p, size_t n)
{
	unsigned char *b = p;
	while (n) {
		ssize_t k = recv(fd, b, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

/* ---- tests: echo ----------------------------------------------------------------------- */

static void test_echo_round_trip(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	start_server(w, true, true);
	int fd = client_connect(w->port);
	assert_true(fd >= 0);
	const char msg[] = "hello, reactor";
	char back[sizeof msg];
	assert_true(write_all(fd, msg, sizeof msg));
	assert_true(read_all(fd, back, sizeof back));
	assert_memory_equal(back, msg, sizeof msg);
	close(fd);
	WAIT_UNTIL(w, w->closed == 1);
	assert_int_equal(LOCKED(w, w->last_closed_err), 0);
	assert_int_equal(LOCKED(w, w->accepted), 1);
	assert_int_equal(LOCKED(w, w->data_bytes), sizeof msg);
	assert_no_errors(w);
	world_free(w);
}

enum { CLIENT_THREADS = 8, CONNS_PER_THREAD = 25, ROUNDS = 40, MSG_MAX = 3000 };

typedef struct client_job {
	uint16_t port;
	unsigned id;
	uint64_t bytes;
	bool ok;
	char why[160];
} client_job_t;

static size_t msg_len(unsigned id, unsigned k, unsigned round)
{
	return 1 + ((size_t)id * 7919 + (size_t)k * 104729 + (size_t)round * 1299709) % MSG_MAX;
}

static uint64_t msg_seed(unsigned id, unsigned k, unsigned round)
{
	return ((uint64_t)id << 40) ^ ((uint64_t)k << 20) ^ round;
}

/* Keeps CONNS_PER_THREAD connections open at once and, round after round,
 * writes a message on each, then reads every echo back and compares. */
static void *client_main(void *arg)
{
	client_job_t *job = arg;
	int fds[CONNS_PER_THREAD];
	unsigned n = 0;
	static _Thread_local unsigned char out[MSG_MAX], in[MSG_MAX];
	for (; n < CONNS_PER_THREAD; n++) {
		fds[n] = client_connect(job->port);
		if (fds[n] < 0) {
			snprintf(job->why, sizeof job->why, "connect: %s", strerror(-fds[n]));
			goto out;
		}
	}
	for (unsigned r = 0; r < ROUNDS; r++) {
		for (unsigned k = 0; k < n; k++) {
			size_t len = msg_len(job->id, k, r);
			fill_pattern(out, len, msg_seed(job->id, k, r));
			if (!write_all(fds[k], out, len)) {
				snprintf(job->why, sizeof job->why, "write: %s", strerror(errno));
				goto out;
			}
			job->bytes += len;
		}
		for (unsigned k = 0; k < n; k++) {
			size_t len = msg_len(job->id, k, r);
			if (!read_all(fds[k], in, len)) {
				snprintf(job->why, sizeof job->why, "read conn %u round %u: %s", k, r,
					 errno ? strerror(errno) : "EOF");
				goto out;
			}
			if (!matches_pattern(in, len, msg_seed(job->id, k, r))) {
				snprintf(job->why, sizeof job->why, "conn %u round %u: wrong bytes", k,
					 r);
				goto out;
			}
		}
	}
	job->ok = true;
out:
	for (unsigned k = 0; k < n; k++)
		close(fds[k]);
	return NULL;
}

static void test_many_connections(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	start_server(w, true, true);
	pthread_t th[CLIENT_THREADS];
	client_job_t jobs[CLIENT_THREADS];
	for (unsigned i = 0; i < CLIENT_THREADS; i++) {
		jobs[i] = (client_job_t){.port = w->port, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, client_main, &jobs[i]), 0);
	}
	uint64_t total = 0;
	for (unsigned i = 0; i < CLIENT_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (!jobs[i].ok)
			fail_msg("client %u: %s", i, jobs[i].why);
		total += jobs[i].bytes;
	}
	const unsigned nconn = CLIENT_THREADS * CONNS_PER_THREAD;
	WAIT_UNTIL(w, w->closed == nconn);
	assert_int_equal(LOCKED(w, w->accepted), nconn);
	assert_int_equal(LOCKED(w, w->data_bytes), total);
	assert_int_equal(LOCKED(w, w->last_closed_err), 0);
	assert_no_errors(w);
	world_free(w);
}

/* Tiny reads: one message comes back as many DATA, still in order. */
static void test_small_reads(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	w->read_size = 7;
	start_server(w, true, true);
	int fd = client_connect(w->port);
	assert_true(fd >= 0);
	static unsigned char out[20000], in[sizeof out];
	fill_pattern(out, sizeof out, 12345);
	assert_true(write_all(fd, out, sizeof out));
	assert_true(read_all(fd, in, sizeof in));
	assert_memory_equal(in, out, sizeof out);
	close(fd);
	WAIT_UNTIL(w, w->closed == 1);
	assert_true(LOCKED(w, w->data_msgs) >= sizeof out / 7);
	assert_no_errors(w);
	world_free(w);
}

enum { CHURN_THREADS = 4, CHURN_CONNS = 100 };

typedef struct churn_job {
	uint16_t port;
	unsigned id;
	bool ok;
	char why[160];
} churn_job_t;

/* Short connections one after another: connect, one echo, close. */
static void *churn_main(void *arg)
{
	churn_job_t *job = arg;
	for (unsigned i = 0; i < CHURN_CONNS; i++) {
		int fd = client_connect(job->port);
		if (fd < 0) {
			snprintf(job->why, sizeof job->why, "connect %u: %s", i, strerror(-fd));
			return NULL;
		}
		unsigned char out[64], in[64];
		size_t len = 1 + (job->id * 31 + i) % sizeof out;
		fill_pattern(out, len, ((uint64_t)job->id << 32) | i);
		bool ok = write_all(fd, out, len) && read_all(fd, in, len) &&
			  memcmp(in, out, len) == 0;
		close(fd);
		if (!ok) {
			snprintf(job->why, sizeof job->why, "echo %u failed", i);
			return NULL;
		}
	}
	job->ok = true;
	return NULL;
}

static void test_connection_churn(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	start_server(w, true, true);
	pthread_t th[CHURN_THREADS];
	churn_job_t jobs[CHURN_THREADS];
	for (unsigned i = 0; i < CHURN_THREADS; i++) {
		jobs[i] = (churn_job_t){.port = w->port, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, churn_main, &jobs[i]), 0);
	}
	for (unsigned i = 0; i < CHURN_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (!jobs[i].ok)
			fail_msg("churn client %u: %s", i, jobs[i].why);
	}
	WAIT_UNTIL(w, w->closed == CHURN_THREADS * CHURN_CONNS);
	assert_int_equal(LOCKED(w, w->accepted), CHURN_THREADS * CHURN_CONNS);
	assert_int_equal(LOCKED(w, w->last_closed_err), 0);
	assert_no_errors(w);
	world_free(w);
}

/* ---- tests: flow control ---------------------------------------------------------------- */

/* Sends the pattern from *off without blocking until the socket refuses
 * (EAGAIN) or limit bytes went out. Returns true on EAGAIN. */
static bool send_until_blocked(int fd, uint64_t *off, uint64_t limit)
{
	static unsigned char chunk[65536];
	while (*off < limit) {
		fill_pattern(chunk, sizeof chunk, *off);
		ssize_t k = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (k < 0 && errno == EINTR)
			continue;
		assert_true(k > 0);
		*off += (uint64_t)k;
	}
	return false;
}

static void test_flow_control(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	w->verify = true;
	start_server(w, false, false); /* handlers read once per T_START/T_MORE */
	int fd = client_connect(w->port);
	assert_true(fd >= 0);

	/* The handler asks for one read and no more, so the reactor reads
	 * nothing after it: the kernel buffers fill and the client's writes
	 * stop. */
	uint64_t sent = 0;
	bool blocked = send_until_blocked(fd, &sent, (uint64_t)1 << 30);
	assert_true(blocked);
	WAIT_UNTIL(w, w->data_msgs >= 1);
	assert_true(sent > 4 * HANDLER_READ);
	assert_int_equal(LOCKED(w, w->data_msgs), 1);
	assert_true(LOCKED(w, w->data_bytes) <= HANDLER_READ);

	/* One more request, exactly one more DATA. */
	ig_ref_t handler = LOCKED(w, w->handlers[0]);
	assert_int_equal(ig_tell(handler, T_MORE, NULL, 0, IG_NOREF), 0);
	WAIT_UNTIL(w, w->data_msgs == 2);
	assert_true(send_until_blocked(fd, &sent, sent + ((uint64_t)1 << 30)));
	assert_int_equal(LOCKED(w, w->data_msgs), 2);
	assert_true(LOCKED(w, w->data_bytes) <= 2 * HANDLER_READ);

	/* Now the handler reads after every DATA: the pressure goes away and
	 * everything sent arrives, in order (the handler checks the bytes). */
	pthread_mutex_lock(&w->mu);
	w->auto_read = true;
	pthread_mutex_unlock(&w->mu);
	assert_int_equal(ig_tell(handler, T_MORE, NULL, 0, IG_NOREF), 0);
	uint64_t target = sent + ((uint64_t)8 << 20);
	while (sent < target) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		assert_int_equal(poll(&p, 1, WAIT_SECONDS * 1000), 1);
		send_until_blocked(fd, &sent, target);
	}
	close(fd);
	WAIT_UNTIL(w, w->closed == 1);
	assert_int_equal(LOCKED(w, w->data_bytes), sent);
	assert_int_equal(LOCKED(w, w->last_closed_err), 0);
	assert_true(LOCKED(w, w->data_msgs) > 2);
	assert_no_errors(w);
	world_free(w);
}

/* ---- tests: closing ------------------------------------------------------------------ */

static void test_peer_close(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	start_server(w, true, true);
	int fd = client_connect(w->port);
	assert_true(fd >= 0);
	char back[3];
	assert_true(write_all(fd, "bye", 3));
	assert_true(read_all(fd, back, 3));
	assert_memory_equal(back, "bye", 3);
	close(fd);
	WAIT_UNTIL(w, w->closed == 1);
	assert_int_equal(LOCKED(w, w->last_closed_err), 0);

	/* The id is dead now, and says so; ids never issued are unknown. */
	ig_tcp_t conn = LOCKED(w, w->args[0].conn);
	assert_int_equal(ig_tcp_write(w->sys, conn, "x", 1), IG_ECLOSED);
	assert_int_equal(ig_tcp_read(w->sys, conn, 10), IG_ECLOSED);
	assert_int_equal(ig_tcp_close(w->sys, conn), IG_ECLOSED);
	assert_int_equal(ig_tcp_set_owner(w->sys, conn, w->handlers[0]), IG_ECLOSED);
	assert_int_equal(ig_tcp_write(w->sys, conn + ((uint64_t)1000 << 32), "x", 1),
			 IG_ENOTFOUND);
	assert_int_equal(ig_tcp_read(w->sys, 0, 10), IG_ENOTFOUND);
	assert_int_equal(ig_tcp_read(w->sys, 999999, 10), IG_ENOTFOUND);
	/* A listener is not a stream; zero-byte reads are meaningless. */
	assert_int_equal(ig_tcp_read(w->sys, w->listener, 10), IG_EINVAL);
	assert_int_equal(ig_tcp_write(w->sys, w->listener, "x", 1), IG_EINVAL);
	assert_int_equal(ig_tcp_read(w->sys, conn, 0), IG_EINVAL);
	assert_no_errors(w);
	world_free(w);
}

static void test_connect_refused(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	ig_ref_t rec = spawn(w, &recorder_props);
	ig_tcp_t c;
	assert_int_equal(ig_tcp_connect(w->sys, rec, "127.0.0.1", closed_port(), &c), 0);
	WAIT_UNTIL(w, w->rec[IG_MSG_TCP_CLOSED - IG_MSG_TCP_ACCEPTED] == 1);
	ig_tcp_event_t ev = LOCKED(w, w->rec_ev[IG_MSG_TCP_CLOSED - IG_MSG_TCP_ACCEPTED]);
	assert_int_equal(ev.conn, c);
	assert_int_equal(ev.err, -ECONNREFUSED);
	assert_int_equal(LOCKED(w, w->rec[IG_MSG_TCP_CONNECTED - IG_MSG_TCP_ACCEPTED]), 0);
	assert_int_equal(ig_tcp_write(w->sys, c, "x", 1), IG_ECLOSED);
	assert_int_equal(ig_tcp_connect(w->sys, rec, "127.0.0.1", 0, &c), IG_EINVAL);
	assert_int_equal(ig_tcp_connect(w->sys, IG_NOREF, "127.0.0.1", 80, &c), IG_EINVAL);
	assert_no_errors(w);
	world_free(w);
}

#define REC(w, type) ((w)->rec[(type) - IG_MSG_TCP_ACCEPTED])
#define REC_EV(w, type) ((w)->rec_ev[(type) - IG_MSG_TCP_ACCEPTED])

/* An actor as the client: connect, write, read the echo, close. */
static void test_connect_and_echo(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	start_server(w, true, true);
	ig_ref_t rec = spawn(w, &recorder_props);
	ig_tcp_t c;
	assert_int_equal(ig_tcp_connect(w->sys, rec, NULL, w->port, &c), 0);
	/* Writes and reads may be queued before the connection is up. */
	assert_int_equal(ig_tcp_write(w->sys, c, "ping", 4), 0);
	assert_int_equal(ig_tcp_read(w->sys, c, 100), 0);
	WAIT_UNTIL(w, REC(w, IG_MSG_TCP_DATA) == 1 && REC(w, IG_MSG_TCP_WRITTEN) == 1);
	ig_tcp_event_t ev = LOCKED(w, REC_EV(w, IG_MSG_TCP_CONNECTED));
	assert_int_equal(LOCKED(w, REC(w, IG_MSG_TCP_CONNECTED)), 1);
	assert_int_equal(ev.conn, c);
	char peer[64];
	snprintf(peer, sizeof peer, "127.0.0.1:%u", (unsigned)w->port);
	assert_string_equal(ev.peer, peer);
	uint16_t local;
	assert_int_equal(ig_tcp_local_port(w->sys, c, &local), 0);
	assert_int_not_equal(local, 0);
	assert_int_equal(LOCKED(w, w->rec_len), 4);
	assert_memory_equal(w->rec_data, "ping", 4);
	ev = LOCKED(w, REC_EV(w, IG_MSG_TCP_WRITTEN));
	assert_int_equal(ev.conn, c);
	assert_int_equal(ev.bytes, 4);

	/* A zero-length write is a marker: it completes in order. */
	assert_int_equal(ig_tcp_write(w->sys, c, NULL, 0), 0);
	WAIT_UNTIL(w, REC(w, IG_MSG_TCP_WRITTEN) == 2);
	assert_int_equal(LOCKED(w, REC_EV(w, IG_MSG_TCP_WRITTEN).bytes), 0);

	assert_int_equal(ig_tcp_close(w->sys, c), 0);
	assert_int_equal(ig_tcp_close(w->sys, c), IG_ECLOSED);
	WAIT_UNTIL(w, REC(w, IG_MSG_TCP_CLOSED) == 1 && w->closed == 1);
	assert_int_equal(LOCKED(w, REC_EV(w, IG_MSG_TCP_CLOSED).err), 0);
	assert_int_equal(LOCKED(w, w->last_closed_err), 0); /* the server saw EOF */
	assert_no_errors(w);
	world_free(w);
}

/* An outgoing connection to a plain peer; returns the peer's socket. */
static int connect_to_plain(world_t *w, ig_ref_t owner, ig_tcp_t *c)
{
	uint16_t port;
	int lfd = plain_listen(&port);
	assert_int_equal(ig_tcp_connect(w->sys, owner, "127.0.0.1", port, c), 0);
	int fd = plain_accept(lfd);
	close(lfd);
	WAIT_UNTIL(w, REC(w, IG_MSG_TCP_CONNECTED) == 1);
	return fd;
}

static void test_write_limit(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	ig_ref_t rec = spawn(w, &recorder_props);
	ig_tcp_t c;
	int peer = connect_to_plain(w, rec, &c);

	/* The peer reads nothing: kernel buffers fill, then the reactor's
	 * queue, then writes are refused. */
	static unsigned char chunk[65536];
	uint64_t accepted = 0;
	unsigned writes = 0;
	int rc = 0;
	for (unsigned i = 0; i < 100000 && rc == 0; i++) {
		fill_pattern(chunk, sizeof chunk, accepted);
		rc = ig_tcp_write(w->sys, c, chunk, sizeof chunk);
		if (rc == 0) {
			accepted += sizeof chunk;
			writes++;
		}
	}
	assert_int_equal(rc, IG_EFULL);
	assert_true(accepted >= WBUF_LIMIT);
	static unsigned char big[WBUF_LIMIT + 1];
	assert_int_equal(ig_tcp_write(w->sys, c, big, sizeof big), IG_EFULL);

	/* Everything accepted arrives, in order, and each write reports. */
	static unsigned char in[65536];
	for (uint64_t got = 0; got < accepted;) {
		size_t n = accepted - got < sizeof in ? (size_t)(accepted - got) : sizeof in;
		assert_true(read_all(peer, in, n));
		assert_true(matches_pattern(in, n, got));
		got += n;
	}
	WAIT_UNTIL(w, REC(w, IG_MSG_TCP_WRITTEN) == writes);
	assert_int_equal(LOCKED(w, w->rec_written_bytes), accepted);
	assert_int_equal(ig_tcp_write(w->sys, c, "more", 4), 0); /* room again */
	char more[4];
	assert_true(read_all(peer, more, 4));
	assert_memory_equal(more, "more", 4);
	close(peer);
	assert_no_errors(w);
	world_free(w);
}

static void test_close_flushes(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	ig_ref_t rec = spawn(w, &recorder_props);
	ig_tcp_t c;
	int peer = connect_to_plain(w, rec, &c);
	static unsigned char chunk[65536];
	enum { CHUNKS = 16 };
	for (unsigned i = 0; i < CHUNKS; i++) {
		fill_pattern(chunk, sizeof chunk, (uint64_t)i * sizeof chunk);
		assert_int_equal(ig_tcp_write(w->sys, c, chunk, sizeof chunk), 0);
	}
	assert_int_equal(ig_tcp_close(w->sys, c), 0); /* before the bytes are out */
	assert_int_equal(ig_tcp_write(w->sys, c, "late", 4), IG_ECLOSED);
	uint64_t got = 0;
	for (;;) {
		ssize_t n = recv(peer, chunk, sizeof chunk, 0);
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_true(matches_pattern(chunk, (size_t)n, got));
		got += (uint64_t)n;
	}
	assert_int_equal(got, (uint64_t)CHUNKS * sizeof chunk);
	WAIT_UNTIL(w, REC(w, IG_MSG_TCP_CLOSED) == 1);
	assert_int_equal(LOCKED(w, REC(w, IG_MSG_TCP_WRITTEN)), CHUNKS);
	assert_int_equal(LOCKED(w, REC_EV(w, IG_MSG_TCP_CLOSED).err), 0);
	close(peer);
	assert_no_errors(w);
	world_free(w);
}

/* Sends a reset (RST) instead of a FIN when closed. */
static void close_with_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	close(fd);
}

/* A reset peer: CLOSED(-ECONNRESET), whether a read was armed or not. */
static void test_peer_reset(void **unused)
{
	(void)unused;
	for (int armed = 0; armed < 2; armed++) {
		world_t *w = world_new();
		ig_ref_t rec = spawn(w, &recorder_props);
		ig_tcp_t c;
		int peer = connect_to_plain(w, rec, &c);
		if (armed)
			assert_int_equal(ig_tcp_read(w->sys, c, 100), 0);
		close_with_reset(peer);
		WAIT_UNTIL(w, REC(w, IG_MSG_TCP_CLOSED) == 1);
		ig_tcp_event_t ev = LOCKED(w, REC_EV(w, IG_MSG_TCP_CLOSED));
		assert_int_equal(ev.conn, c);
		assert_int_equal(ev.err, -ECONNRESET);
		assert_int_equal(ig_tcp_write(w->sys, c, "x", 1), IG_ECLOSED);
		assert_no_errors(w);
		world_free(w);
	}
}

/* When the owner dies, the next message for it closes the connection. */
static void test_owner_death_closes(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	ig_ref_t rec = spawn(w, &recorder_props);
	ig_ref_t watcher = spawn(w, &watcher_props);
	ig_tcp_t c;
	int peer = connect_to_plain(w, rec, &c);
	assert_int_equal(ig_tcp_read(w->sys, c, 100), 0);
	assert_int_equal(ig_tell(watcher, T_WATCH, &rec, sizeof rec, IG_NOREF), 0);
	assert_int_equal(ig_stop(rec), 0);
	WAIT_UNTIL(w, w->terminated);
	assert_true(write_all(peer, "x", 1));
	char b;
	assert_int_equal(recv(peer, &b, 1, 0), 0); /* EOF within SO_RCVTIMEO */
	assert_int_equal(ig_tcp_write(w->sys, c, "x", 1), IG_ECLOSED);
	assert_int_equal(LOCKED(w, REC(w, IG_MSG_TCP_DATA)), 0);
	close(peer);
	assert_no_errors(w);
	world_free(w);
}

static void test_listener_close(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	ig_ref_t rec = spawn(w, &recorder_props);
	ig_tcp_t l;
	uint16_t port;
	assert_int_equal(ig_tcp_listen(w->sys, rec, "127.0.0.1", 0, 0, &l), 0);
	assert_int_equal(ig_tcp_local_port(w->sys, l, &port), 0);
	/* The port is taken while the listener lives. */
	ig_tcp_t l2;
	assert_int_equal(ig_tcp_listen(w->sys, rec, "127.0.0.1", port, 0, &l2), -EADDRINUSE);
	assert_int_equal(ig_tcp_listen(w->sys, IG_NOREF, NULL, 0, 0, &l2), IG_EINVAL);

	int fd = client_connect(port);
	assert_true(fd >= 0);
	WAIT_UNTIL(w, REC(w, IG_MSG_TCP_ACCEPTED) == 1);
	ig_tcp_event_t ev = LOCKED(w, REC_EV(w, IG_MSG_TCP_ACCEPTED));
	assert_int_equal(ev.listener, l);
	assert_int_not_equal(ev.conn, 0);
	close(fd);

	assert_int_equal(ig_tcp_close(w->sys, l), 0);
	WAIT_UNTIL(w, REC(w, IG_MSG_TCP_CLOSED) == 1);
	assert_int_equal(LOCKED(w, REC_EV(w, IG_MSG_TCP_CLOSED).conn), l);
	assert_int_equal(client_connect(port), -ECONNREFUSED);
	assert_int_equal(ig_tcp_close(w->sys, l), IG_ECLOSED);
	assert_no_errors(w);
	world_free(w);
}

/* Shutdown closes every socket, and the TCP calls stop working. */
static void test_shutdown_closes(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	start_server(w, true, true);
	int fd = client_connect(w->port);
	assert_true(fd >= 0);
	char back[2];
	assert_true(write_all(fd, "hi", 2));
	assert_true(read_all(fd, back, 2));
	ig_tcp_t conn = LOCKED(w, w->args[0].conn);
	assert_int_equal(ig_system_shutdown(w->sys, IG_SEC(WAIT_SECONDS)), 0);
	assert_int_equal(recv(fd, back, 1, 0), 0);
	ig_tcp_t l;
	assert_int_equal(ig_tcp_listen(w->sys, w->handlers[0], NULL, 0, 0, &l), IG_ESTOPPED);
	assert_int_equal(ig_tcp_read(w->sys, conn, 10), IG_ESTOPPED);
	assert_int_equal(ig_system_shutdown(w->sys, IG_SEC(1)), 0); /* idempotent */
	close(fd);
	assert_no_errors(w);
	world_free(w);
}

/* The highest open file descriptor of this process. */
static int highest_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int hi = -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.' && atoi(e->d_name) > hi)
			hi = atoi(e->d_name);
	closedir(d);
	return hi;
}

/* Out of file descriptors, the listener waits (the connection stays in the
 * backlog) and accepts it once one is free again. */
static void test_accept_waits_for_descriptors(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	start_server(w, true, true);
	ig_ref_t watcher = spawn(w, &watcher_props);
	assert_int_equal(ig_subscribe(w->sys, watcher, IG_MSG_LOG), 0);

	/* Fill every hole below the highest descriptor, then allow exactly
	 * three more: client A, its accepted side, and client B. */
	int dummies[1024], ndummies = 0, hi = highest_fd();
	for (;;) {
		assert_true(ndummies < 1024);
		int d = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(d >= 0);
		dummies[ndummies++] = d;
		if (d > hi)
			break;
	}
	struct rlimit old, tight;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	tight = old;
	tight.rlim_cur = (rlim_t)dummies[ndummies - 1] + 1 + 3;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);

	/* No assert until the limit is restored: a failure would leave the
	 * process without descriptors. */
	int a = client_connect(w->port);
	char back;
	bool a_ok = a >= 0 && write_all(a, "a", 1) && read_all(a, &back, 1) && back == 'a';
	int b = a_ok ? client_connect(w->port) : -1; /* takes the last descriptor */
	bool b_ok = b >= 0 && write_all(b, "b", 1);
	bool warned = b_ok && wait_flag(w, &w->accept_warned); /* accept4: EMFILE */
	if (a >= 0)
		close(a); /* its handler closes the accepted side: one is free */
	b_ok = b_ok && read_all(b, &back, 1) && back == 'b';
	if (b >= 0)
		close(b);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	for (int i = 0; i < ndummies; i++)
		close(dummies[i]);
	assert_true(a_ok);
	assert_true(warned);
	assert_true(b_ok);
	WAIT_UNTIL(w, w->closed == 2);
	assert_int_equal(LOCKED(w, w->accepted), 2);
	assert_no_errors(w);
	world_free(w);
}

typedef struct hammer {
	ig_system_t *sys;
	ig_tcp_t conn;
	unsigned calls;
	int unexpected; /* the first code outside the allowed set, or 0 */
	int last;
} hammer_t;

/* Writes and reads from a plain thread until the system says it stopped. */
static void *hammer_main(void *arg)
{
	hammer_t *h = arg;
	for (;;) {
		int rc = (h->calls & 1) ? ig_tcp_read(h->sys, h->conn, 16)
					: ig_tcp_write(h->sys, h->conn, "x", 1);
		h->calls++;
		h->last = rc;
		if (rc == IG_ESTOPPED)
			return NULL;
		if (rc != 0 && rc != IG_EFULL && rc != IG_ECLOSED && !h->unexpected)
			h->unexpected = rc;
	}
}

/* Calls racing with shutdown finish against the live reactor or get
 * IG_ESTOPPED; nothing is touched after it is freed (ASan, TSan). */
static void test_calls_race_shutdown(void **unused)
{
	(void)unused;
	world_t *w = world_new();
	start_server(w, true, true);
	int fd = client_connect(w->port);
	assert_true(fd >= 0);
	char back[2];
	assert_true(write_all(fd, "hi", 2));
	assert_true(read_all(fd, back, 2));
	hammer_t h = {.sys = w->sys, .conn = LOCKED(w, w->args[0].conn)};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, hammer_main, &h), 0);
	WAIT_UNTIL(w, w->written > 100); /* the hammer is busy */
	assert_int_equal(ig_system_shutdown(w->sys, IG_SEC(WAIT_SECONDS)), 0);
	pthread_join(th, NULL);
	assert_int_equal(h.last, IG_ESTOPPED);
	assert_int_equal(h.unexpected, 0);
	assert_true(h.calls > 100);
	close(fd);
	world_free(w);
}

/* ---- main ------------------------------------------------------------------------------- */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_round_trip),
		cmocka_unit_test(test_many_connections),
		cmocka_unit_test(test_small_reads),
		cmocka_unit_test(test_connection_churn),
		cmocka_unit_test(test_flow_control),
		cmocka_unit_test(test_peer_close),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_connect_and_echo),
		cmocka_unit_test(test_write_limit),
		cmocka_unit_test(test_close_flushes),
		cmocka_unit_test(test_peer_reset),
		cmocka_unit_test(test_owner_death_closes),
		cmocka_unit_test(test_listener_close),
		cmocka_unit_test(test_shutdown_closes),
		cmocka_unit_test(test_calls_race_shutdown),
		cmocka_unit_test(test_accept_waits_for_descriptors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
