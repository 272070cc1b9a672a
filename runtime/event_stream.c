/* The event stream (publish by type to subscribers), dead letters (counted,
 * then published with sender, recipient and type) and log lines.
 */
#include <stdarg.h>
#include <string.h>

#include "runtime_int.h"

int ig_subscribe(ig_system_t *sys, ig_ref_t subscriber, uint32_t type)
{
	if (!sys || ig_ref_is_none(subscriber))
		return IG_EINVAL;
	int rc = 0;
	pthread_rwlock_wrlock(&sys->es_lock);
	for (unsigned i = 0; i < sys->nsubs; i++)
		if (sys->subs[i].type == type && ig_ref_eq(sys->subs[i].ref, subscriber))
			goto out;
	if (sys->nsubs == sys->subs_cap) {
		unsigned cap = sys->subs_cap ? sys->subs_cap * 2 : 8;
		ig__sub_t *s = realloc(sys->subs, cap * sizeof *s);
		if (!s) {
			rc = IG_ENOMEM;
			goto out;
		}
		sys->subs = s;
		sys->subs_cap = cap;
	}
	sys->subs[sys->nsubs++] = (ig__sub_t){.type = type, .ref = subscriber};
out:
	pthread_rwlock_unlock(&sys->es_lock);
	return rc;
}

int ig_unsubscribe(ig_system_t *sys, ig_ref_t subscriber, uint32_t type)
{
	if (!sys)
		return IG_EINVAL;
	int rc = IG_ENOTFOUND;
	pthread_rwlock_wrlock(&sys->es_lock);
	for (unsigned i = 0; i < sys->nsubs; i++) {
		if (sys->subs[i].type == type && ig_ref_eq(sys->subs[i].ref, subscriber)) {
			sys->subs[i] = sys->subs[--sys->nsubs];
			rc = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&sys->es_lock);
	return rc;
}

/* Sends without turning a failure into another dead letter (a dead
 * subscriber must not feed the stream it is subscribed to). */
static bool deliver_quietly(ig_ref_t to, ig__msg_t *m)
{
	ig__rcu_read_lock();
	ig_actor_t *a = ig__slot_resolve(to);
	int rc = a ? ig__deliver(a, m) : IG_ENOACTOR;
	ig__rcu_read_unlock();
	if (rc == IG_ENOACTOR)
		ig__msg_free(m);
	return rc == 0;
}

static int publish(ig_system_t *sys, uint32_t type, const void *data, size_t size,
		   unsigned *delivered)
{
	unsigned n = 0;
	int rc = 0;
	pthread_rwlock_rdlock(&sys->es_lock);
	for (unsigned i = 0; i < sys->nsubs; i++) {
		if (sys->subs[i].type != type)
			continue;
		ig__msg_t *m = ig__msg_copy(type, data, size, IG_NOREF);
		if (!m) {
			rc = IG_ENOMEM;
			break;
		}
		n += deliver_quietly(sys->subs[i].ref, m);
	}
	pthread_rwlock_unlock(&sys->es_lock);
	if (delivered)
		*delivered = n;
	return rc;
}

int ig_publish(ig_system_t *sys, uint32_t type, const void *data, size_t size,
	       unsigned *delivered)
{
	if (!sys || (size && !data) ||
	    (type >= IG_MSG_SYSTEM_BASE && type != IG_MSG_LOG && type != IG_MSG_DEAD_LETTER))
		return IG_EINVAL;
	return publish(sys, type, data, size, delivered);
}

void ig__dead_letter(ig_system_t *sys, ig_ref_t to, ig__msg_t *m, int reason)
{
	if (!sys)
		sys = ig__system_by_id((unsigned)(to.h >> 32) & 0xff);
	if (sys) {
		atomic_fetch_add_explicit(&sys->dead_letters, 1, memory_order_relaxed);
		/* Runtime messages to the dead are expected and not news. */
		if (!(m->flags & IG__MF_SYSTEM) && m->env.type != IG_MSG_DEAD_LETTER &&
		    m->env.type != IG_MSG_LOG) {
			ig_dead_letter_t dl = {.sender = m->env.sender,
					       .recipient = to,
					       .type = m->env.type,
					       .size = m->env.size,
					       .reason = reason};
			publish(sys, IG_MSG_DEAD_LETTER, &dl, sizeof dl, NULL);
		}
	}
	ig__msg_free(m);
}

uint64_t ig_system_dead_letters(const ig_system_t *sys)
{
	return atomic_load(&((ig_system_t *)sys)->dead_letters);
}

void ig_log(ig_system_t *sys, const ig_ctx_t *ctx, int level, const char *fmt, ...)
{
	if (!sys || level < IG_LOG_DEBUG || level >= IG_LOG_OFF)
		return;
	ig_log_event_t ev = {.level = level, .source = ctx ? ig_self(ctx) : IG_NOREF};
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(ev.text, sizeof ev.text, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof ev.text)
		memcpy(ev.text + sizeof ev.text - 4, "...", 4);
	publish(sys, IG_MSG_LOG, &ev, sizeof ev, NULL);
	if (level >= sys->cfg.log_level) {
		static const char *names[] = {"", "debug", "info", "warn", "error"};
		char path[128] = "";
		if (ctx)
			ig_ref_path(ev.source, path, sizeof path);
		fprintf(stderr, "[%s %s]%s%s %s\n", sys->name, names[level], path[0] ? " " : "",
			path, ev.text);
	}
}
