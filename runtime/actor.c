/* Actors: spawning, sending, the turn that runs a behavior over the
 * mailbox, and the stop sequence (children first, then post_stop, then
 * Terminated to watchers, then the memory after an RCU grace period).
 */
#include <string.h>

#include "runtime_int.h"

/* ---- small helpers ---------------------------------------------------------- */

ig__actor_ext_t *ig__actor_ext(ig_actor_t *a)
{
	ig__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_relaxed);
	if (!ext) {
		ext = calloc(1, sizeof *ext);
		if (ext)
			atomic_store_explicit(&a->ext, ext, memory_order_release);
	}
	return ext;
}

static ig__actor_ext_t *ext_of(ig_actor_t *a)
{
	return atomic_load_explicit(&a->ext, memory_order_relaxed);
}

static ig_system_t *sys_of(ig_actor_t *a)
{
	return a->disp->sys;
}

/* Guardians' child lists are also changed by ig_system_spawn from any
 * thread; every other actor's list only by its own turn. */
static void tree_lock(ig_actor_t *a)
{
	if (atomic_load_explicit(&a->flags, memory_order_relaxed) & IG__AF_GUARDIAN)
		pthread_mutex_lock(&sys_of(a)->lock);
}

static void tree_unlock(ig_actor_t *a)
{
	if (atomic_load_explicit(&a->flags, memory_order_relaxed) & IG__AF_GUARDIAN)
		pthread_mutex_unlock(&sys_of(a)->lock);
}

static void list_append(ig__node_t **head, ig__node_t **tail, ig__node_t *n)
{
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	if (*tail)
		atomic_store_explicit(&(*tail)->next, n, memory_order_relaxed);
	else
		*head = n;
	*tail = n;
}

static ig__node_t *list_pop(ig__node_t **head, ig__node_t **tail)
{
	ig__node_t *n = *head;
	if (n) {
		*head = atomic_load_explicit(&n->next, memory_order_relaxed);
		if (!*head)
			*tail = NULL;
	}
	return n;
}

/* ---- sending ------------------------------------------------------------------ */

/* Runtime messages and Terminated get through a full bounded mailbox
 * (Akka delivers Terminated whatever the mailbox). */
static bool never_dropped(const ig__msg_t *m)
{
	return (m->flags & IG__MF_SYSTEM) || m->env.type == IG_MSG_TERMINATED;
}

int ig__deliver(ig_actor_t *a, ig__msg_t *m)
{
	uint32_t f = atomic_load_explicit(&a->flags, memory_order_relaxed);
	if (f & IG__AF_COUNTED) {
		int32_t n = atomic_fetch_add_explicit(&a->mq_count, 1, memory_order_relaxed) + 1;
		if (a->capacity && (uint32_t)n > a->capacity && !never_dropped(m)) {
			ig_overflow_t pol = a->props->overflow;
			if (pol != IG_OVERFLOW_DROP_OLDEST) {
				atomic_fetch_sub_explicit(&a->mq_count, 1, memory_order_relaxed);
				ig_ref_t to = ig__ref_of(a);
				ig__dead_letter(sys_of(a), to, m, IG_EFULL);
				return pol == IG_OVERFLOW_REJECT ? IG_EFULL : 0;
			}
		}
	}
	if (ig__mb_push(&a->mq, &m->node))
		ig__schedule(a);
	else
		ig__sent(a);
	return 0;
}

int ig__send(ig_ref_t to, ig__msg_t *m)
{
	ig__rcu_read_lock();
	ig_actor_t *a = ig__slot_resolve(to);
	int rc = a ? ig__deliver(a, m) : IG_ENOACTOR;
	ig__rcu_read_unlock();
	if (rc == IG_ENOACTOR)
		ig__dead_letter(NULL, to, m, IG_ENOACTOR);
	return rc;
}

static ig__msg_t *sys_msg(uint32_t sys_type, uint64_t aux, void *ptr)
{
	ig__msg_t *m = ig__msg_alloc(0);
	if (!m)
		return NULL;
	m->env = (ig_msg_t){.type = sys_type};
	m->flags |= IG__MF_SYSTEM;
	m->aux = aux;
	m->ptr = ptr;
	return m;
}

int ig__send_sys_actor(ig_actor_t *a, uint32_t sys_type, uint64_t aux, void *ptr)
{
	ig__msg_t *m = sys_msg(sys_type, aux, ptr);
	return m ? ig__deliver(a, m) : IG_ENOMEM;
}

int ig__send_sys(ig_ref_t to, uint32_t sys_type, uint64_t aux, void *ptr)
{
	ig__msg_t *m = sys_msg(sys_type, aux, ptr);
	if (!m)
		return IG_ENOMEM;
	ig__rcu_read_lock();
	ig_actor_t *a = ig__slot_resolve(to);
	int rc = a ? ig__deliver(a, m) : IG_ENOACTOR;
	ig__rcu_read_unlock();
	if (rc == IG_ENOACTOR)
		ig__msg_free(m);
	return rc;
}

int ig_tell(ig_ref_t to, uint32_t type, const void *data, size_t size, ig_ref_t from)
{
	if ((type >= IG_MSG_SYSTEM_BASE && type != IG_MSG_POISON_PILL) || (size && !data))
		return IG_EINVAL;
	ig__msg_t *m = ig__msg_copy(type, data, size, from);
	if (!m)
		return IG_ENOMEM;
	return ig__send(to, m);
}

int ig_tell_ptr(ig_ref_t to, uint32_t type, void *ptr, size_t size, void (*dtor)(void *),
		ig_ref_t from)
{
	if (type >= IG_MSG_SYSTEM_BASE || size > UINT32_MAX) {
		if (dtor)
			dtor(ptr);
		return IG_EINVAL;
	}
	ig__msg_t *m = ig__msg_alloc(0);
	if (!m) {
		if (dtor)
			dtor(ptr);
		return IG_ENOMEM;
	}
	m->env = (ig_msg_t){.type = type, .size = (uint32_t)size, .sender = from, .data = ptr};
	m->ptr = ptr;
	m->dtor = dtor;
	return ig__send(to, m);
}

int ig_reply(ig_ctx_t *ctx, const ig_msg_t *msg, uint32_t type, const void *data, size_t size)
{
	return ig_tell(msg->sender, type, data, size, ig_self(ctx));
}

/* Takes the running message out of the turn's hands (a copy if its
 * block still serves as the mailbox's stub). */
static ig__msg_t *take_current(ig_ctx_t *ctx, const ig_msg_t *msg, int *err)
{
	ig__msg_t *m = ctx->cur;
	if (!m || &m->env != msg) {
		*err = IG_EINVAL;
		return NULL;
	}
	ig__msg_t *d = ig__msg_detach(m);
	if (!d) {
		*err = IG_ENOMEM;
		return NULL;
	}
	if (d != m)
		ig__msg_free(m); /* only the stub block stays: its payload moved to d */
	ctx->cur = NULL;
	return d;
}

int ig_forward(ig_ctx_t *ctx, const ig_msg_t *msg, ig_ref_t to)
{
	int err;
	ig__msg_t *m = take_current(ctx, msg, &err);
	if (!m)
		return err;
	m->flags &= ~(uint32_t)IG__MF_TIMER;
	return ig__send(to, m);
}

int ig_poison(ig_ref_t to)
{
	return ig_tell(to, IG_MSG_POISON_PILL, NULL, 0, IG_NOREF);
}

int ig_stop(ig_ref_t ref)
{
	ig__rcu_read_lock();
	ig_actor_t *a = ig__slot_resolve(ref);
	int rc = IG_ENOACTOR;
	if (a) {
		atomic_fetch_or(&a->flags, IG__AF_STOP_REQ);
		rc = ig__send_sys_actor(a, IG__SYS_STOP, 0, NULL);
	}
	ig__rcu_read_unlock();
	return rc;
}

/* ---- spawning -------------------------------------------------------------------- */

static bool name_ok(const char *name)
{
	size_t l = strlen(name);
	return l > 0 && l < 64 && !strchr(name, '/') && name[0] != '$';
}

/* Registers a's full path; a has its slot and parent already. */
static int set_name(ig_actor_t *a, const char *name)
{
	ig__actor_ext_t *ext = ig__actor_ext(a);
	if (!ext || !(ext->name = strdup(name)))
		return IG_ENOMEM;
	char path[512];
	int rc = ig__actor_path(a, path, sizeof path);
	if (rc)
		return rc;
	if (!(ext->path = strdup(path)))
		return IG_ENOMEM;
	return ig__names_add(sys_of(a), path, ig__ref_of(a));
}

static void free_ext(ig_actor_t *a)
{
	ig__actor_ext_t *ext = ext_of(a);
	if (!ext)
		return;
	free(ext->name);
	free(ext->path);
	free(ext->stack);
	free(ext->watchers);
	free(ext->watching);
	free(ext);
	atomic_store_explicit(&a->ext, NULL, memory_order_relaxed);
}

/* Fails once the parent is stopping: a child linked after the parent
 * stopped its children would never be stopped. */
static int link_child(ig_actor_t *parent, ig_actor_t *a)
{
	tree_lock(parent);
	if (parent->status >= IG__ST_STOPPING) {
		tree_unlock(parent);
		return IG_ESTOPPED;
	}
	a->sib_prev = NULL;
	a->sib_next = parent->child_first;
	if (parent->child_first)
		parent->child_first->sib_prev = a;
	parent->child_first = a;
	tree_unlock(parent);
	return 0;
}

int ig__spawn(ig_system_t *sys, ig_actor_t *parent, const ig_props_t *props, const char *name,
	      void *arg, uint32_t flags, ig_actor_t **out_actor, ig_ref_t *out)
{
	if (!props || !props->behavior || (name && !name_ok(name)) ||
	    (props->mailbox == IG_MAILBOX_BOUNDED && props->capacity == 0))
		return IG_EINVAL;
	if (atomic_load_explicit(&sys->shutting_down, memory_order_acquire) &&
	    !(flags & IG__AF_GUARDIAN))
		return IG_ESTOPPED;
	size_t state_off = (sizeof(ig_actor_t) + 15) & ~(size_t)15;
	ig_actor_t *a = malloc(state_off + props->state_size);
	if (!a)
		return IG_ENOMEM;
	memset(a, 0, state_off + props->state_size);
	/* An actor with start-up hooks is scheduled at once so its first turn
	 * runs them; one without needs no turn until its first message. */
	bool needs_start = props->init || props->pre_start;
	ig__mb_init(&a->mq, !needs_start);
	a->status = needs_start ? IG__ST_NEW : IG__ST_RUNNING;
	if (props->mailbox == IG_MAILBOX_BOUNDED) {
		flags |= IG__AF_COUNTED;
		a->capacity = props->capacity;
	}
	atomic_init(&a->flags, flags);
	a->behavior = props->behavior;
	a->state = props->state_size ? (char *)a + state_off : NULL;
	a->props = props;
	a->arg = arg;
	a->disp = props->dispatcher ? props->dispatcher : sys->def;
	a->parent = parent;
	int rc = ig__slot_alloc(a, sys);
	if (rc) {
		free(a);
		return rc;
	}
	if ((name && (rc = set_name(a, name)) != 0) || (parent && (rc = link_child(parent, a)))) {
		ig__actor_ext_t *ext = ext_of(a);
		if (rc != IG_EEXIST && ext && ext->path)
			ig__names_remove(sys, ext->path);
		ig__slot_release(a);
		free_ext(a);
		free(a);
		return rc;
	}
	ig__slot_publish(a);
	atomic_fetch_add(&sys->actors, 1);
	ig_ref_t ref = ig__ref_of(a);
	if (out_actor)
		*out_actor = a;
	if (out)
		*out = ref;
	if (needs_start)
		ig__schedule(a);
	return 0;
}

int ig_system_spawn(ig_system_t *sys, const ig_props_t *props, const char *name, void *arg,
		    ig_ref_t *out)
{
	if (!sys)
		return IG_EINVAL;
	return ig__spawn(sys, sys->user, props, name, arg, 0, NULL, out);
}

int ig_spawn(ig_ctx_t *ctx, const ig_props_t *props, const char *name, void *arg, ig_ref_t *out)
{
	if (!ctx || !ctx->actor)
		return IG_EINVAL;
	ig_actor_t *self = ctx->actor;
	if (self->status >= IG__ST_STOPPING)
		return IG_ESTOPPED;
	return ig__spawn(sys_of(self), self, props, name, arg, 0, NULL, out);
}

/* ---- the context --------------------------------------------------------------- */

ig_ref_t ig_self(const ig_ctx_t *ctx)
{
	return ig__ref_of(ctx->actor);
}

ig_ref_t ig_parent(const ig_ctx_t *ctx)
{
	ig_actor_t *p = ctx->actor->parent;
	return p ? ig__ref_of(p) : IG_NOREF;
}

ig_system_t *ig_ctx_system(const ig_ctx_t *ctx)
{
	return sys_of(ctx->actor);
}

int ig_become(ig_ctx_t *ctx, ig_behavior_fn fn, bool discard_old)
{
	ig_actor_t *a = ctx->actor;
	if (!fn)
		return IG_EINVAL;
	if (!discard_old) {
		ig__actor_ext_t *ext = ig__actor_ext(a);
		if (!ext)
			return IG_ENOMEM;
		if (ext->stack_len == ext->stack_cap) {
			unsigned cap = ext->stack_cap ? ext->stack_cap * 2 : 4;
			ig_behavior_fn *s = realloc(ext->stack, cap * sizeof *s);
			if (!s)
				return IG_ENOMEM;
			ext->stack = s;
			ext->stack_cap = cap;
		}
		ext->stack[ext->stack_len++] = a->behavior;
	}
	a->behavior = fn;
	return 0;
}

void ig_unbecome(ig_ctx_t *ctx)
{
	ig_actor_t *a = ctx->actor;
	ig__actor_ext_t *ext = ext_of(a);
	if (ext && ext->stack_len)
		a->behavior = ext->stack[--ext->stack_len];
	else
		a->behavior = a->props->behavior;
}

int ig_stash(ig_ctx_t *ctx, const ig_msg_t *msg)
{
	ig__actor_ext_t *ext = ig__actor_ext(ctx->actor);
	if (!ext)
		return IG_ENOMEM;
	int err;
	ig__msg_t *m = take_current(ctx, msg, &err);
	if (!m)
		return err;
	list_append(&ext->stash, &ext->stash_tail, &m->node);
	return 0;
}

static void unstash(ig_actor_t *a)
{
	ig__actor_ext_t *ext = ext_of(a);
	if (!ext || !ext->stash)
		return;
	atomic_store_explicit(&ext->stash_tail->next, ext->front, memory_order_relaxed);
	if (!ext->front)
		ext->front_tail = ext->stash_tail;
	ext->front = ext->stash;
	ext->stash = ext->stash_tail = NULL;
}

void ig_unstash_all(ig_ctx_t *ctx)
{
	unstash(ctx->actor);
}

void ig_stop_self(ig_ctx_t *ctx)
{
	ctx->stop_self = true;
}

/* ---- death watch ------------------------------------------------------------------ */

static bool ref_list_add(ig_ref_t **list, unsigned *n, unsigned *cap, ig_ref_t r)
{
	for (unsigned i = 0; i < *n; i++)
		if (ig_ref_eq((*list)[i], r))
			return true;
	if (*n == *cap) {
		unsigned c = *cap ? *cap * 2 : 4;
		ig_ref_t *l = realloc(*list, c * sizeof *l);
		if (!l)
			return false;
		*list = l;
		*cap = c;
	}
	(*list)[(*n)++] = r;
	return true;
}

static bool ref_list_remove(ig_ref_t *list, unsigned *n, ig_ref_t r)
{
	for (unsigned i = 0; i < *n; i++) {
		if (ig_ref_eq(list[i], r)) {
			list[i] = list[--*n];
			return true;
		}
	}
	return false;
}

static void send_terminated(ig_ref_t to, ig_ref_t dead, int reason)
{
	ig_terminated_t t = {.ref = dead, .reason = reason};
	ig__msg_t *m = ig__msg_copy(IG_MSG_TERMINATED, &t, sizeof t, dead);
	if (m)
		ig__send(to, m);
}

int ig_watch(ig_ctx_t *ctx, ig_ref_t ref)
{
	ig_actor_t *a = ctx->actor;
	ig__actor_ext_t *ext = ig__actor_ext(a);
	if (!ext)
		return IG_ENOMEM;
	if (ig_ref_eq(ref, ig_self(ctx)) || ig_ref_is_none(ref))
		return IG_EINVAL;
	if (!ref_list_add(&ext->watching, &ext->nwatching, &ext->watching_cap, ref))
		return IG_ENOMEM;
	if (ig__send_sys(ref, IG__SYS_WATCH, ig_self(ctx).h, NULL) == IG_ENOACTOR)
		send_terminated(ig_self(ctx), ref, 0);
	return 0;
}

int ig_unwatch(ig_ctx_t *ctx, ig_ref_t ref)
{
	ig__actor_ext_t *ext = ext_of(ctx->actor);
	if (!ext || !ref_list_remove(ext->watching, &ext->nwatching, ref))
		return IG_ENOTFOUND;
	ig__send_sys(ref, IG__SYS_UNWATCH, ig_self(ctx).h, NULL);
	return 0;
}

/* A Terminated is delivered only while the actor still watches its
 * subject (Akka drops it after unwatch). */
static bool terminated_wanted(ig_actor_t *a, ig__msg_t *m)
{
	ig__actor_ext_t *ext = ext_of(a);
	return ext && ref_list_remove(ext->watching, &ext->nwatching, m->env.sender);
}

/* ---- stopping ------------------------------------------------------------------------ */

static void dead_letters_from(ig_actor_t *a, ig__node_t **head, ig__node_t **tail)
{
	ig__node_t *n;
	while ((n = list_pop(head, tail)))
		ig__dead_letter(sys_of(a), ig__ref_of(a), (ig__msg_t *)n, IG_ENOACTOR);
}

static void finish_stop(ig_actor_t *a)
{
	ig_system_t *sys = sys_of(a);
	ig__actor_ext_t *ext = ext_of(a);
	int reason = ext ? ext->stop_reason : 0;
	bool started = !(ext && ext->init_failed);
	ig_ref_t self = ig__ref_of(a);
	if (started) {
		ig_ctx_t ctx = {.actor = a};
		if (a->props->post_stop)
			a->props->post_stop(&ctx, a->state);
		if (a->props->fini)
			a->props->fini(a->state);
	}
	if (ext && ext->path)
		ig__names_remove(sys, ext->path);
	ig__slot_release(a);
	a->status = IG__ST_DEAD;
	if (ext) {
		for (unsigned i = 0; i < ext->nwatchers; i++)
			send_terminated(ext->watchers[i], self, reason);
		ext->nwatchers = 0;
		dead_letters_from(a, &ext->stash, &ext->stash_tail);
		dead_letters_from(a, &ext->front, &ext->front_tail);
	}
	if (a->parent)
		IG_ASSERT(ig__send_sys_actor(a->parent, IG__SYS_CHILD_DONE, (uintptr_t)a, NULL) == 0);
	else
		ig__rcu_defer_reclaim(a);
}

void ig__actor_begin_stop(ig_actor_t *a, int reason)
{
	if (a->status >= IG__ST_STOPPING)
		return;
	ig__actor_ext_t *ext = ig__actor_ext(a);
	IG_ASSERT(ext);
	ext->stop_reason = reason;
	ig__actor_cancel_timers(a);
	tree_lock(a);
	a->status = IG__ST_STOPPING;
	ig_actor_t *c = a->child_first;
	tree_unlock(a);
	if (!c) {
		finish_stop(a);
		return;
	}
	tree_lock(a);
	for (c = a->child_first; c; c = c->sib_next) {
		atomic_fetch_or(&c->flags, IG__AF_STOP_REQ);
		ig__send_sys_actor(c, IG__SYS_STOP, 0, NULL);
	}
	tree_unlock(a);
}

void ig__actor_stop_children(ig_actor_t *a)
{
	tree_lock(a);
	for (ig_actor_t *c = a->child_first; c; c = c->sib_next) {
		atomic_fetch_or(&c->flags, IG__AF_STOP_REQ);
		ig__send_sys_actor(c, IG__SYS_STOP, 0, NULL);
	}
	tree_unlock(a);
}

void ig__actor_child_done(ig_actor_t *parent, ig_actor_t *child)
{
	tree_lock(parent);
	if (child->sib_prev)
		child->sib_prev->sib_next = child->sib_next;
	else
		parent->child_first = child->sib_next;
	if (child->sib_next)
		child->sib_next->sib_prev = child->sib_prev;
	bool last = parent->child_first == NULL;
	tree_unlock(parent);
	ig__rcu_defer_reclaim(child);
	if (!last)
		return;
	if (parent->status == IG__ST_STOPPING)
		finish_stop(parent);
	else
		ig__restart_continue(parent);
}

static void reclaim(ig_actor_t *a)
{
	ig_system_t *sys = sys_of(a);
	ig__node_t *stub = ig__mb_stub_block(&a->mq);
	if (stub)
		ig__msg_retire((ig__msg_t *)stub);
	free_ext(a);
	free(a);
	ig__system_actor_gone(sys);
}

/* ---- the turn ---------------------------------------------------------------------- */

static void start(ig_actor_t *a, ig_ctx_t *ctx)
{
	a->status = IG__ST_RUNNING;
	if (a->props->init) {
		int rc = a->props->init(ctx, a->state, a->arg);
		if (rc) {
			ig__actor_ext_t *ext = ig__actor_ext(a);
			IG_ASSERT(ext);
			ext->init_failed = true;
			ig__actor_begin_stop(a, rc);
			return;
		}
	}
	if (a->props->pre_start)
		a->props->pre_start(ctx, a->state);
}

/* Returns true when the actor was freed. */
static bool handle_system(ig_actor_t *a, ig__msg_t *m)
{
	ig__actor_ext_t *ext;
	ig_ref_t who = {m->aux};
	switch (m->env.type) {
	case IG__SYS_STOP:
		break; /* the flag does the work */
	case IG__SYS_WATCH:
		if (a->status == IG__ST_DEAD)
			send_terminated(who, ig__ref_of(a), ext_of(a) ? ext_of(a)->stop_reason : 0);
		else if ((ext = ig__actor_ext(a)))
			ref_list_add(&ext->watchers, &ext->nwatchers, &ext->watchers_cap, who);
		break;
	case IG__SYS_UNWATCH:
		if ((ext = ext_of(a)))
			ref_list_remove(ext->watchers, &ext->nwatchers, who);
		break;
	case IG__SYS_FAILED:
		ig__child_failed(a, (ig_actor_t *)(uintptr_t)m->aux, (int)(intptr_t)m->ptr);
		break;
	case IG__SYS_DIRECTIVE:
		ig__apply_directive(a, (ig_directive_t)m->aux, (int)(intptr_t)m->ptr);
		break;
	case IG__SYS_CHILD_DONE:
		ig__actor_child_done(a, (ig_actor_t *)(uintptr_t)m->aux);
		break;
	case IG__SYS_RECLAIM:
		ig__msg_free(m);
		reclaim(a);
		return true;
	default:
		IG_ASSERT(!"unknown runtime message");
	}
	ig__msg_free(m);
	return false;
}

static ig__msg_t *pop_mailbox(ig_actor_t *a)
{
	ig__node_t *retired = NULL;
	ig__msg_t *m = (ig__msg_t *)ig__mb_pop(&a->mq, &retired);
	if (retired)
		ig__msg_retire((ig__msg_t *)retired);
	if (m)
		m->flags |= IG__MF_INQ;
	return m;
}

/* The mailbox's next message, counted off a bounded mailbox. */
static ig__msg_t *pop_counted(ig_actor_t *a)
{
	ig__msg_t *m;
	while ((m = pop_mailbox(a)) &&
	       (atomic_load_explicit(&a->flags, memory_order_relaxed) & IG__AF_COUNTED)) {
		int32_t n = atomic_fetch_sub_explicit(&a->mq_count, 1, memory_order_relaxed);
		if (!a->capacity || (uint32_t)n <= a->capacity || never_dropped(m))
			break;
		/* drop-oldest: the mailbox ran over while we were busy */
		ig__dead_letter(sys_of(a), ig__ref_of(a), m, IG_EFULL);
	}
	return m;
}

static ig__msg_t *next_msg(ig_actor_t *a)
{
	ig__actor_ext_t *ext = ext_of(a);
	if (ext && ext->front && a->status != IG__ST_SUSPENDED)
		return (ig__msg_t *)list_pop(&ext->front, &ext->front_tail);
	return pop_counted(a);
}

/* Keeps a user message for later, in order, in the front list. */
static void keep_in_front(ig_actor_t *a, ig__msg_t *m)
{
	ig__actor_ext_t *ext = ig__actor_ext(a);
	ig__msg_t *kept = ext ? ig__msg_detach(m) : NULL;
	if (!kept) {
		ig__dead_letter(sys_of(a), ig__ref_of(a), m, IG_ENOMEM);
		return;
	}
	if (kept != m)
		ig__msg_free(m);
	list_append(&ext->front, &ext->front_tail, &kept->node);
}

/* A stop is a flag, seen before the queue, so that queued user messages
 * never run after it (Akka's system messages jump the queue the same
 * way). System messages keep their order all the same: a Watch queued
 * before the stop must be registered before the watchers are told, or
 * its Terminated would trail what this death sets off, such as the
 * parent's. So the queue is read to its end first: system messages are
 * handled now, user messages wait in front (where the stop dead-letters
 * them, as before). Returns true when a system message freed the actor. */
static bool system_before_stop(ig_actor_t *a)
{
	ig__msg_t *m;
	while ((m = pop_counted(a))) {
		if (!(m->flags & IG__MF_SYSTEM))
			keep_in_front(a, m);
		else if (handle_system(a, m))
			return true;
	}
	return false;
}

/* A user message: run the behavior, or park/drop it by state. */
static void handle_user(ig_actor_t *a, ig_ctx_t *ctx, ig__msg_t *m)
{
	switch (a->status) {
	case IG__ST_SUSPENDED:
		keep_in_front(a, m); /* until the supervisor's directive arrives */
		return;
	case IG__ST_STOPPING:
	case IG__ST_DEAD:
		/* Terminated from the children it is stopping is expected, not
		 * a lost message. */
		if (m->env.type == IG_MSG_TERMINATED)
			ig__msg_free(m);
		else
			ig__dead_letter(sys_of(a), ig__ref_of(a), m, IG_ENOACTOR);
		return;
	default:
		break;
	}
	if (((m->flags & IG__MF_TIMER) && !ig__timer_deliverable(a, m->ptr)) ||
	    (m->env.type == IG_MSG_TERMINATED && !terminated_wanted(a, m))) {
		ig__msg_free(m);
		return;
	}
	if (m->env.type == IG_MSG_POISON_PILL) {
		ig__msg_free(m);
		ig__actor_begin_stop(a, 0);
		return;
	}
	ctx->cur = m;
	int rc = a->behavior(ctx, a->state, &m->env);
	if (ctx->cur)
		ig__msg_free(ctx->cur);
	ctx->cur = NULL;
	if (rc)
		ig__actor_fail(a, rc);
	if (ctx->stop_self) {
		ctx->stop_self = false;
		ig__actor_begin_stop(a, 0);
	}
}

bool ig__actor_turn(ig_actor_t *a, unsigned throughput)
{
	ig_ctx_t ctx = {.actor = a};
	if (a->status == IG__ST_NEW)
		start(a, &ctx);
	for (unsigned n = 0; n < throughput; n++) {
		/* Acquire: post_stop must see what the stopper wrote before ig_stop. */
		if ((atomic_load_explicit(&a->flags, memory_order_acquire) & IG__AF_STOP_REQ) &&
		    a->status < IG__ST_STOPPING) {
			if (system_before_stop(a))
				return false;
			if (a->status < IG__ST_STOPPING)
				ig__actor_begin_stop(a, 0);
		}
		ig__msg_t *m = next_msg(a);
		if (!m)
			return !ig__mb_mark_idle(&a->mq);
		if (m->flags & IG__MF_SYSTEM) {
			if (handle_system(a, m))
				return false;
		} else {
			handle_user(a, &ctx, m);
		}
	}
	return true;
}
