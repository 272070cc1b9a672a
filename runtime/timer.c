/* Timers: a hashed timing wheel (1 ms ticks, 512 buckets) driven by one
 * thread per system that sleeps until the next deadline (no timers, no
 * wake-ups), or by virtual time in a deterministic system.
 *
 * Actor timers are owned by their actor: each is on the actor's list, and a
 * fired message carries a reference to its timer, so a timer canceled after
 * firing but before delivery is dropped at delivery.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "runtime_int.h"

#define SLOTS 512
#define TICK_NS 1000000

struct ig__wheel {
	ig_system_t *sys;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stop;
	int64_t sleep_until;  /* what the thread waits for; INT64_MAX = no timer */
	int64_t done_tick;    /* every bucket up to this tick has been fired */
	size_t count;
	ig__timer_t *slots[SLOTS];
};

static size_t slot_of(int64_t tick)
{
	return (size_t)(((tick % SLOTS) + SLOTS) % SLOTS);
}

static size_t bucket_of(int64_t deadline)
{
	return slot_of(deadline / TICK_NS);
}

void ig__timer_unref(ig__timer_t *t)
{
	if (atomic_fetch_sub(&t->refs, 1) == 1)
		free(t);
}

static void unref_dtor(void *t)
{
	ig__timer_unref(t);
}

int ig__wheel_create(ig_system_t *sys, ig__wheel_t **out)
{
	ig__wheel_t *w = calloc(1, sizeof *w);
	if (!w)
		return IG_ENOMEM;
	w->sys = sys;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->sleep_until = INT64_MAX;
	w->done_tick = ig_system_now(sys) / TICK_NS - 1;
	*out = w;
	return 0;
}

static void insert_locked(ig__wheel_t *w, ig__timer_t *t)
{
	size_t b = bucket_of(t->deadline);
	t->next = w->slots[b];
	w->slots[b] = t;
	t->in_wheel = true;
	w->count++;
}

void ig__wheel_add(ig__wheel_t *w, ig__timer_t *t)
{
	pthread_mutex_lock(&w->mu);
	insert_locked(w, t);
	if (t->deadline < w->sleep_until)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static bool unlink_locked(ig__wheel_t *w, ig__timer_t *t)
{
	if (!t->in_wheel)
		return false;
	for (ig__timer_t **pp = &w->slots[bucket_of(t->deadline)]; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			t->in_wheel = false;
			w->count--;
			return true;
		}
	}
	IG_ASSERT(!"timer marked in wheel but not found");
	return false;
}

void ig__wheel_remove(ig__wheel_t *w, ig__timer_t *t)
{
	pthread_mutex_lock(&w->mu);
	bool was = unlink_locked(w, t);
	pthread_mutex_unlock(&w->mu);
	if (was)
		ig__timer_unref(t);
}

/* Earliest deadline: buckets in time order for one revolution, then the
 * rare far-future timers by a full scan. Caller holds mu. */
static int64_t next_deadline_locked(ig__wheel_t *w)
{
	if (!w->count)
		return INT64_MAX;
	int64_t horizon = (w->done_tick + 1 + SLOTS) * TICK_NS;
	for (int64_t tick = w->done_tick + 1; tick <= w->done_tick + SLOTS; tick++) {
		int64_t best = INT64_MAX;
		for (ig__timer_t *t = w->slots[slot_of(tick)]; t; t = t->next)
			if (t->deadline < horizon && t->deadline < best)
				best = t->deadline;
		if (best != INT64_MAX)
			return best;
	}
	int64_t best = INT64_MAX;
	for (size_t b = 0; b < SLOTS; b++)
		for (ig__timer_t *t = w->slots[b]; t; t = t->next)
			if (t->deadline < best)
				best = t->deadline;
	return best;
}

int64_t ig__wheel_next_deadline(ig__wheel_t *w)
{
	pthread_mutex_lock(&w->mu);
	int64_t d = next_deadline_locked(w);
	pthread_mutex_unlock(&w->mu);
	return d;
}

/* Sorts a list of due timers by deadline (stable merge sort): timers that
 * fall due in one pass fire in deadline order. */
static ig__timer_t *sort_due(ig__timer_t *list)
{
	if (!list || !list->next)
		return list;
	ig__timer_t *slow = list, *fast = list->next;
	while (fast && fast->next) {
		slow = slow->next;
		fast = fast->next->next;
	}
	ig__timer_t *b = sort_due(slow->next);
	slow->next = NULL;
	ig__timer_t *a = sort_due(list), *out = NULL, **tail = &out;
	while (a && b) {
		ig__timer_t **min = b->deadline < a->deadline ? &b : &a;
		*tail = *min;
		tail = &(*min)->next;
		*min = (*min)->next;
	}
	*tail = a ? a : b;
	return out;
}

/* Takes every timer due at now out of the wheel (the wheel's reference
 * moves to the returned list, in deadline order). Caller holds mu. */
static ig__timer_t *take_due_locked(ig__wheel_t *w, int64_t now)
{
	ig__timer_t *due = NULL;
	int64_t tick = now / TICK_NS;
	int64_t from = w->done_tick + 1;
	if (tick - from >= SLOTS)
		from = tick - SLOTS + 1; /* a full revolution covers every bucket */
	for (int64_t k = from; k <= tick; k++) {
		for (ig__timer_t **pp = &w->slots[slot_of(k)]; *pp;) {
			ig__timer_t *t = *pp;
			if (t->deadline <= now) {
				*pp = t->next;
				t->in_wheel = false;
				w->count--;
				t->next = due;
				due = t;
			} else {
				pp = &t->next;
			}
		}
	}
	/* The current tick's bucket may hold timers later in this same
	 * millisecond: it is not done until the tick has passed. */
	if (tick - 1 > w->done_tick)
		w->done_tick = tick - 1;
	return sort_due(due);
}

static void fire(ig__wheel_t *w, ig__timer_t *t, int64_t now)
{
	if (atomic_load(&t->canceled)) {
		ig__timer_unref(t);
		return;
	}
	ig__msg_t *m = ig__msg_copy(t->type, t->data, t->size, IG_NOREF);
	if (m) {
		atomic_fetch_add(&t->refs, 1);
		m->flags |= IG__MF_TIMER;
		m->ptr = t;
		m->dtor = unref_dtor;
		ig__send(t->target, m);
	}
	if (t->period && !atomic_load(&t->canceled)) {
		t->deadline = now + t->period; /* fixed delay: no bursts after a stall */
		ig__wheel_add(w, t);
	} else {
		ig__timer_unref(t);
	}
}

size_t ig__wheel_fire_due(ig__wheel_t *w, int64_t now)
{
	pthread_mutex_lock(&w->mu);
	ig__timer_t *due = take_due_locked(w, now);
	pthread_mutex_unlock(&w->mu);
	size_t n = 0;
	while (due) {
		ig__timer_t *t = due;
		due = t->next;
		fire(w, t, now);
		n++;
	}
	return n;
}

static void *wheel_main(void *arg)
{
	ig__wheel_t *w = arg;
	ig__thread_init();
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		int64_t now = ig__mono_ns();
		ig__timer_t *due = take_due_locked(w, now);
		if (due) {
			pthread_mutex_unlock(&w->mu);
			while (due) {
				ig__timer_t *t = due;
				due = t->next;
				fire(w, t, now);
			}
			pthread_mutex_lock(&w->mu);
			continue;
		}
		w->sleep_until = next_deadline_locked(w);
		if (w->sleep_until == INT64_MAX) {
			pthread_cond_wait(&w->cv, &w->mu);
		} else {
			struct timespec ts = {.tv_sec = w->sleep_until / 1000000000,
					      .tv_nsec = w->sleep_until % 1000000000};
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		}
		w->sleep_until = INT64_MAX;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int ig__wheel_start(ig__wheel_t *w)
{
	int rc = pthread_create(&w->thread, NULL, wheel_main, w);
	if (rc)
		return -rc;
	pthread_setname_np(w->thread, "ig-timers");
	w->running = true;
	return 0;
}

void ig__wheel_stop(ig__wheel_t *w)
{
	if (!w->running)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->running = false;
}

void ig__wheel_destroy(ig__wheel_t *w)
{
	if (!w)
		return;
	ig__wheel_stop(w);
	for (size_t b = 0; b < SLOTS; b++) {
		while (w->slots[b]) {
			ig__timer_t *t = w->slots[b];
			w->slots[b] = t->next;
			ig__timer_unref(t);
		}
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* ---- actor timers -------------------------------------------------------------- */

/* Saturates: IG_FOREVER (or any far delay) means "never", not overflow. */
static int64_t deadline_after(const ig_system_t *sys, ig_duration_t delay)
{
	int64_t now = ig_system_now(sys);
	return delay > INT64_MAX - now ? INT64_MAX : now + delay;
}

int ig_timer_start(ig_ctx_t *ctx, ig_duration_t delay, bool periodic, uint32_t type,
		   const void *data, size_t size, ig_timer_t *out)
{
	if (type >= IG_MSG_SYSTEM_BASE)
		return IG_EINVAL;
	return ig__timer_start(ctx, delay, periodic, type, data, size, out);
}

int ig__timer_start(ig_ctx_t *ctx, ig_duration_t delay, bool periodic, uint32_t type,
		    const void *data, size_t size, ig_timer_t *out)
{
	if (!ctx || delay < 0 || size > IG_MSG_INLINE_MAX || (size && !data) ||
	    (periodic && delay == 0))
		return IG_EINVAL;
	ig_actor_t *a = ctx->actor;
	ig_system_t *sys = a->disp->sys;
	ig__actor_ext_t *ext = ig__actor_ext(a);
	ig__timer_t *t = calloc(1, sizeof *t);
	if (!ext || !t) {
		free(t);
		return IG_ENOMEM;
	}
	t->id = atomic_fetch_add(&sys->next_timer_id, 1) + 1;
	t->sys = sys;
	t->deadline = deadline_after(sys, delay);
	t->period = periodic ? delay : 0;
	t->target = ig__ref_of(a);
	t->type = type;
	t->size = (uint32_t)size;
	if (size)
		memcpy(t->data, data, size);
	atomic_init(&t->refs, 2); /* the actor's list and the wheel */
	t->actor_next = ext->timers;
	ext->timers = t;
	ig__wheel_add(sys->wheel, t);
	if (out)
		*out = t->id;
	return 0;
}

void ig__timer_cancel(ig__timer_t *t)
{
	atomic_store(&t->canceled, true);
	ig__wheel_remove(t->sys->wheel, t);
}

/* Unlinks t from a's list (dropping the list's reference). */
static bool drop_from_actor(ig_actor_t *a, ig__timer_t *t)
{
	ig__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_relaxed);
	if (!ext)
		return false;
	for (ig__timer_t **pp = &ext->timers; *pp; pp = &(*pp)->actor_next) {
		if (*pp == t) {
			*pp = t->actor_next;
			ig__timer_unref(t);
			return true;
		}
	}
	return false;
}

int ig_timer_cancel(ig_ctx_t *ctx, ig_timer_t id)
{
	ig__actor_ext_t *ext = atomic_load_explicit(&ctx->actor->ext, memory_order_relaxed);
	for (ig__timer_t *t = ext ? ext->timers : NULL; t; t = t->actor_next) {
		if (t->id == id) {
			ig__timer_cancel(t);
			drop_from_actor(ctx->actor, t);
			return 0;
		}
	}
	return IG_ENOTFOUND;
}

bool ig__timer_deliverable(ig_actor_t *a, ig__timer_t *t)
{
	if (atomic_load(&t->canceled))
		return false;
	ig__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_relaxed);
	bool mine = false;
	for (ig__timer_t *x = ext ? ext->timers : NULL; x; x = x->actor_next)
		mine |= x == t;
	if (mine && !t->period)
		drop_from_actor(a, t); /* a one-shot timer is done once delivered */
	return mine;
}

void ig__actor_cancel_timers(ig_actor_t *a)
{
	ig__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_relaxed);
	while (ext && ext->timers) {
		ig__timer_t *t = ext->timers;
		ext->timers = t->actor_next;
		ig__timer_cancel(t);
		ig__timer_unref(t);
	}
}
