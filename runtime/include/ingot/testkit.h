/* ingot testkit: probes, expectations with deadlines, virtual time and
 * captured dead letters and log lines, for testing actors (part of
 * libingot-runtime; docs/testkit.md is the guide).
 *
 * Two kinds of systems, one API:
 *
 * - Deterministic (ig_system_config_t.deterministic = true): no threads.
 *   Actors run on the test's thread, only while a testkit call (or
 *   ig_future_wait) waits; a wait runs turns until its condition holds or
 *   virtual time reaches its deadline. Advancing virtual time fires timers
 *   in deadline order, so a 30 s timeout is tested in microseconds and the
 *   same test always sees the same interleaving. Timeouts are virtual.
 * - Threaded (the default): actors run on dispatcher threads; a wait blocks
 *   on a condition variable until its condition holds or the real deadline
 *   passes. Timeouts are real.
 *
 * Threads: a probe belongs to one test thread; call its functions from that
 * thread only, never from a behavior (a deterministic wait runs behaviors on
 * the calling thread, a threaded one would block a dispatcher thread).
 *
 * Errors: 0 or a negative IG_E... code. A failed expectation returns
 * IG_ETIMEDOUT (nothing suitable arrived in time) or IG_EINVAL (something
 * else arrived) and keeps a one-line description of what was expected and
 * what arrived: ig_probe_last_error() for the probe, ig_testkit_last_error()
 * for the calling thread. Out-parameters are written only on success.
 *
 * Message ownership: every receiving call (ig_probe_expect_*,
 * ig_probe_receive_n, ig_probe_fish) first releases what the previous
 * receiving call on the same probe handed out; a message handed out stays
 * valid until then or until ig_probe_destroy(). Copy what must live longer.
 */
#ifndef INGOT_TESTKIT_H
#define INGOT_TESTKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <ingot/error.h>
#include <ingot/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- systems and virtual time ----------------------------------------- */

/** Creates a system for a test: deterministic or threaded (2 dispatcher
 *  threads), log level IG_LOG_OFF so expected failures do not clutter
 *  stderr (log lines still reach event-stream subscribers).
 *  Ownership: free with ig_system_destroy(). Errors: as ig_system_create. */
int ig_testkit_system_create(bool deterministic, ig_system_t **out);

/** The system's clock in ns: virtual (starting at 0) in a deterministic
 *  system, CLOCK_MONOTONIC in a threaded one. */
int64_t ig_testkit_now(const ig_system_t *sys);

/** Deterministic systems: moves virtual time forward by d, running every
 *  turn that is ready and firing every timer due on the way, in deadline
 *  order, with the clock set to each deadline as it fires; ends with the
 *  clock at now + d. Errors: IG_EINVAL (d < 0), IG_ESTATE (a threaded
 *  system: real time cannot be advanced). */
int ig_testkit_advance(ig_system_t *sys, ig_duration_t d);

/** Deterministic systems: runs turns (and timers already due) until no
 *  actor has work; virtual time does not move. Actors that keep messaging
 *  each other forever make this loop forever. Errors: IG_ESTATE (a threaded
 *  system). */
int ig_testkit_run_until_idle(ig_system_t *sys);

/** The calling thread's last testkit failure description ("" if none).
 *  The string is the thread's and stays valid until its next testkit call. */
const char *ig_testkit_last_error(void);

/** Forgets the calling thread's last failure description. */
void ig_testkit_clear_error(void);

/* ---- probes ------------------------------------------------------------- */

typedef struct ig_probe ig_probe_t;

/** A predicate over a received message (borrowed for the call). */
typedef bool (*ig_probe_pred_fn)(const ig_msg_t *msg, void *arg);

/** Matches any message type in ig_probe_expect_dead_letter. */
#define IG_TESTKIT_ANY_TYPE UINT32_MAX

/** Spawns a probe actor under /system: it copies every message it gets
 *  (type, sender, size bytes of payload; for ig_tell_ptr messages size bytes
 *  at the pointer) into a queue the expectations read, in arrival order.
 *  Ownership: free with ig_probe_destroy(), before or after
 *  ig_system_destroy() (after it the probe is still freed, and only the
 *  probe). Errors: IG_EINVAL, IG_ENOMEM, IG_ESTOPPED (shutting down). */
int ig_probe_create(ig_system_t *sys, ig_probe_t **out);

/** Unsubscribes the probe, stops its actor and frees it with every message
 *  it handed out. NULL is ignored. */
void ig_probe_destroy(ig_probe_t *p);

/** The probe actor's ref: pass it as a sender, a reply-to or a subscriber. */
ig_ref_t ig_probe_ref(const ig_probe_t *p);

/** Expects the next message to be of this type, within timeout.
 *  On success *msg_out (may be NULL) points at the probe's copy.
 *  Errors: IG_ETIMEDOUT (nothing came), IG_EINVAL (another type came; it is
 *  consumed), IG_ESTOPPED (the probe actor stopped). */
int ig_probe_expect_type(ig_probe_t *p, uint32_t type, ig_duration_t timeout,
			 const ig_msg_t **msg_out);

/** Expects the next message to satisfy pred(msg, arg), within timeout
 *  (Akka's expectMsgPF: the first message decides). Errors as
 *  ig_probe_expect_type; IG_EINVAL when it does not match (it is consumed). */
int ig_probe_expect_match(ig_probe_t *p, ig_probe_pred_fn pred, void *arg,
			  ig_duration_t timeout, const ig_msg_t **msg_out);

/** Expects the next message to be exactly (type, size bytes at data),
 *  within timeout. Errors as ig_probe_expect_type. */
int ig_probe_expect_msg(ig_probe_t *p, uint32_t type, const void *data, size_t size,
			ig_duration_t timeout, const ig_msg_t **msg_out);

/** Expects no message for d. Deterministic systems run for d of virtual
 *  time (timers due on the way fire); threaded ones wait d of real time.
 *  Returns as soon as one arrives: IG_EINVAL, the message is consumed and
 *  described. Also IG_EINVAL for d < 0. */
int ig_probe_expect_no_msg(ig_probe_t *p, ig_duration_t d);

/** Waits until n messages are queued, within timeout, and takes them:
 *  msgs_out[0..n-1] (an array of n the caller provides; may be NULL) point
 *  at the probe's copies, in arrival order. On IG_ETIMEDOUT nothing is
 *  consumed. Errors: IG_EINVAL (n == 0), IG_ETIMEDOUT, IG_ESTOPPED. */
int ig_probe_receive_n(ig_probe_t *p, size_t n, ig_duration_t timeout,
		       const ig_msg_t **msgs_out);

/** Takes messages until one satisfies pred(msg, arg), within timeout;
 *  the others are dropped (Akka's fishForMessage). Errors: IG_ETIMEDOUT
 *  (the description counts what was skipped), IG_ESTOPPED. */
int ig_probe_fish(ig_probe_t *p, ig_probe_pred_fn pred, void *arg, ig_duration_t timeout,
		  const ig_msg_t **msg_out);

/** Messages queued and not taken yet. A deterministic system first runs
 *  until idle (no virtual time passes), so the count includes everything
 *  the test's sends caused; in a threaded system it is a snapshot. */
size_t ig_probe_pending(ig_probe_t *p);

/** Messages the probe has received since it was created (taken or not);
 *  runs a deterministic system until idle first, like ig_probe_pending. */
uint64_t ig_probe_received(ig_probe_t *p);

/** Sends a copy of (type, size bytes at data) to `to` with the probe as
 *  sender. Errors: as ig_tell. */
int ig_probe_send(ig_probe_t *p, ig_ref_t to, uint32_t type, const void *data, size_t size);

/** Replies to msg's sender with the probe as sender; msg NULL means the
 *  last message the probe took (also one a failed expectation consumed).
 *  Errors: IG_ESTATE (nothing taken yet), IG_ENOACTOR (no sender, nothing
 *  sent), else as ig_tell. */
int ig_probe_reply(ig_probe_t *p, const ig_msg_t *msg, uint32_t type, const void *data,
		   size_t size);

/** Death watch: the probe gets IG_MSG_TERMINATED (an ig_terminated_t) when
 *  ref stops, at once if it is already gone. Returns once the probe actor
 *  has registered the watch. Errors: IG_EINVAL (IG_NOREF or the probe
 *  itself), IG_ENOMEM, IG_ESTOPPED (the probe actor is gone). */
int ig_probe_watch(ig_probe_t *p, ig_ref_t ref);

/** Ends a watch; a Terminated already queued at the probe stays queued.
 *  Errors: IG_ENOTFOUND (not watched), IG_ESTOPPED. */
int ig_probe_unwatch(ig_probe_t *p, ig_ref_t ref);

/** Expects the next message to be the Terminated of ref, within timeout;
 *  *reason_out (may be NULL) gets the stop reason (0 for a normal stop).
 *  Errors as ig_probe_expect_type. */
int ig_probe_expect_terminated(ig_probe_t *p, ig_ref_t ref, ig_duration_t timeout,
			       int *reason_out);

/** The probe's last failure description ("" if its last call succeeded).
 *  Valid until the probe's next call. */
const char *ig_probe_last_error(const ig_probe_t *p);

/* ---- capturing events: dead letters, log lines -------------------------- */

/** A probe subscribed to the event stream for `type` (IG_MSG_DEAD_LETTER,
 *  IG_MSG_LOG, or a user event type): every event published from now on
 *  lands in its queue; read them with the probe functions or the helpers
 *  below. Ownership: ig_probe_destroy() (which unsubscribes). Errors: as
 *  ig_probe_create, ig_subscribe. */
int ig_testkit_capture_create(ig_system_t *sys, uint32_t type, ig_probe_t **out);

/** Fishes for a dead letter of message type `type` (IG_TESTKIT_ANY_TYPE:
 *  any) addressed to `recipient` (IG_NOREF: anyone), within timeout,
 *  skipping other events. *out (may be NULL) gets a copy. Errors: as
 *  ig_probe_fish. */
int ig_probe_expect_dead_letter(ig_probe_t *p, ig_ref_t recipient, uint32_t type,
				ig_duration_t timeout, ig_dead_letter_t *out);

/** Fishes for a log line at min_level or above whose text contains
 *  `substring` (NULL: any text), within timeout, skipping other events.
 *  *out (may be NULL) gets a copy. Errors: as ig_probe_fish. */
int ig_probe_expect_log(ig_probe_t *p, int min_level, const char *substring,
			ig_duration_t timeout, ig_log_event_t *out);

/* ---- assertion macros --------------------------------------------------- */

/* A failed assertion prints the expression, both codes with their names and
 * the testkit's description of what arrived instead (IG_TESTKIT_PRINT), then
 * calls IG_TESTKIT_FAIL(): with <cmocka.h> included first, cmocka's
 * print_error() and fail(), so the message lands in cmocka's report; else
 * stderr and abort(). Define either or both before including this header
 * to plug in another framework. */
#ifndef IG_TESTKIT_FAIL
#ifdef CMOCKA_H_
#define IG_TESTKIT_FAIL() fail()
#else
#define IG_TESTKIT_FAIL() abort()
#endif
#endif
#ifndef IG_TESTKIT_PRINT
#ifdef CMOCKA_H_
#define IG_TESTKIT_PRINT(...) print_error(__VA_ARGS__)
#else
#define IG_TESTKIT_PRINT(...) fprintf(stderr, __VA_ARGS__)
#endif
#endif

/* The expression is stringified by the public macros, before expansion. */
#define IG_TESTKIT_CHECK_(expr, want, text)                                              \
	do {                                                                             \
		ig_testkit_clear_error();                                                \
		int ig_tk_rc_ = (expr);                                                  \
		int ig_tk_want_ = (want);                                                \
		if (ig_tk_rc_ != ig_tk_want_) {                                          \
			const char *ig_tk_why_ = ig_testkit_last_error();                \
			IG_TESTKIT_PRINT("%s:%d: %s returned %d (%s), expected %d (%s)%s%s\n", \
					 __FILE__, __LINE__, text, ig_tk_rc_,            \
					 ig_strerror(ig_tk_rc_), ig_tk_want_,            \
					 ig_strerror(ig_tk_want_),                       \
					 ig_tk_why_[0] ? ": " : "", ig_tk_why_);         \
			IG_TESTKIT_FAIL();                                               \
		}                                                                        \
	} while (0)

/** Asserts that expr (an int-returning call) returns want. */
#define IG_ASSERT_RC(expr, want) IG_TESTKIT_CHECK_((expr), (want), #expr)

/** Asserts that expr returns 0. */
#define IG_ASSERT_OK(expr) IG_TESTKIT_CHECK_((expr), 0, #expr)

#ifdef __cplusplus
}
#endif

#endif
