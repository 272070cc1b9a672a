/* Supervision: a failing actor suspends itself and tells its parent; the
 * parent's strategy turns the failure into a directive (resume, restart,
 * stop, escalate) for the child, or for all children (all-for-one), and
 * stops a child that restarts too often within the window.
 */
#include <string.h>

#include "runtime_int.h"

static const ig_supervisor_t default_supervisor = {.decider = NULL};

void ig__actor_fail(ig_actor_t *a, int err)
{
	if (a->status != IG__ST_RUNNING)
		return;
	a->status = IG__ST_SUSPENDED;
	if (a->parent)
		IG_ASSERT(ig__send_sys_actor(a->parent, IG__SYS_FAILED, (uintptr_t)a,
					     (void *)(intptr_t)err) == 0);
	else
		ig__actor_begin_stop(a, err);
}

static ig_directive_t decide(const ig_supervisor_t *s, int err)
{
	return s->decider ? s->decider(err, s->decider_arg) : IG_RESTART;
}

/* Counts a restart of child in its window; false once over the limit. */
static bool restart_allowed(ig_system_t *sys, const ig_supervisor_t *s, ig_actor_t *child)
{
	if (!s->max_restarts)
		return true;
	int64_t now = ig_system_now(sys);
	if (s->within && now - child->window_start > s->within) {
		child->window_start = now;
		child->restarts = 0;
	}
	if (child->restarts >= s->max_restarts)
		return false;
	child->restarts++;
	return true;
}

static void direct(ig_actor_t *child, ig_directive_t d, int err)
{
	ig__send_sys_actor(child, IG__SYS_DIRECTIVE, (uint64_t)d, (void *)(intptr_t)err);
}

void ig__child_failed(ig_actor_t *parent, ig_actor_t *child, int err)
{
	const ig_supervisor_t *s = parent->props->supervisor;
	if (!s)
		s = &default_supervisor;
	ig_directive_t d = decide(s, err);
	if (d == IG_ESCALATE) {
		ig__actor_fail(parent, err);
		return;
	}
	if (d == IG_RESTART && !restart_allowed(parent->disp->sys, s, child))
		d = IG_STOP;
	char path[256];
	if (ig__actor_path(child, path, sizeof path) != 0)
		strcpy(path, "?");
	static const char *names[] = {"resume", "restart", "stop", "escalate"};
	ig_log(parent->disp->sys, NULL, d == IG_STOP ? IG_LOG_WARN : IG_LOG_INFO,
	       "%s failed: %s (%d); supervisor: %s%s", path, ig_strerror(err), err, names[d],
	       s->all_for_one && d != IG_RESUME ? " all" : "");
	if (!s->all_for_one || d == IG_RESUME) {
		direct(child, d, err);
		return;
	}
	for (ig_actor_t *c = parent->child_first; c; c = c->sib_next)
		direct(c, d, err);
}

static bool restart_pending(ig_actor_t *a)
{
	ig__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_relaxed);
	return ext && ext->restart_pending;
}

void ig__apply_directive(ig_actor_t *a, ig_directive_t d, int err)
{
	if (a->status >= IG__ST_STOPPING)
		return;
	switch (d) {
	case IG_RESUME:
		if (a->status == IG__ST_SUSPENDED && !restart_pending(a)) {
			a->status = IG__ST_RUNNING;
			/* A child whose failure this actor escalated waits for us:
			 * resuming us resumes it (Akka does the same). Children
			 * that are running ignore the directive. */
			for (ig_actor_t *c = a->child_first; c; c = c->sib_next)
				direct(c, IG_RESUME, err);
		}
		break;
	case IG_RESTART:
		ig__actor_restart(a, err);
		break;
	case IG_STOP:
	case IG_ESCALATE:
		ig__actor_begin_stop(a, err);
		break;
	}
}

/* Akka's order: pre_restart (default: stop children, post_stop) on the old
 * state, then wait for the children to be gone, then a fresh state, init,
 * post_restart (default: pre_start). The failing message is dropped;
 * stashed messages go back to the mailbox; timers are canceled. */
void ig__actor_restart(ig_actor_t *a, int err)
{
	ig__actor_ext_t *ext = ig__actor_ext(a);
	IG_ASSERT(ext);
	ig_ctx_t ctx = {.actor = a};
	ig__actor_cancel_timers(a);
	ig_unstash_all(&ctx);
	if (a->props->pre_restart) {
		a->props->pre_restart(&ctx, a->state, err);
	} else {
		ig__actor_stop_children(a);
		if (a->props->post_stop)
			a->props->post_stop(&ctx, a->state);
	}
	a->status = IG__ST_SUSPENDED;
	ext->restart_pending = true;
	ext->restart_err = err;
	if (!a->child_first)
		ig__restart_continue(a);
}

void ig__restart_continue(ig_actor_t *a)
{
	ig__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_relaxed);
	if (!ext || !ext->restart_pending)
		return;
	ext->restart_pending = false;
	ig_ctx_t ctx = {.actor = a};
	if (a->props->fini)
		a->props->fini(a->state);
	if (a->props->state_size)
		memset(a->state, 0, a->props->state_size);
	ext->stack_len = 0;
	a->behavior = a->props->behavior;
	a->status = IG__ST_RUNNING;
	if (a->props->init) {
		int rc = a->props->init(&ctx, a->state, a->arg);
		if (rc) {
			ext->init_failed = true;
			ig__actor_begin_stop(a, rc);
			return;
		}
	}
	if (a->props->post_restart)
		a->props->post_restart(&ctx, a->state, ext->restart_err);
	else if (a->props->pre_start)
		a->props->pre_start(&ctx, a->state);
}
