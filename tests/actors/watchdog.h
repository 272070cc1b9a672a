/* A last-resort watchdog for the store's test binaries: if the binary is
 * still running after its deadline (set below meson's timeout), it prints
 * every thread's stack, with locals, through gdb, then aborts. A hang then
 * leaves a report in the CI log instead of a bare "TIMEOUT", which is all
 * meson's SIGTERM would leave. It never makes a test pass or wait: tests
 * still wait on their own events with their own deadlines.
 *
 * Header-only (one test binary is one translation unit), like store_util.h.
 */
#ifndef INGOT_TEST_WATCHDOG_H
#define INGOT_TEST_WATCHDOG_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv = PTHREAD_COND_INITIALIZER;

/* gdb, when installed, attached to this process: every thread's stack
 * with its locals (the store's pressure, txns and flags are there). */
static void wd_dump_stacks(void)
{
	char pid[32];
	pid_t child;

	snprintf(pid, sizeof pid, "%d", (int)getpid());
	/* Yama's ptrace_scope=1 lets only an ancestor trace us: allow any. */
	(void)prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	child = fork();
	if (child == 0) {
		execlp("gdb", "gdb", "-q", "-batch", "-nx", "-p", pid, "-ex", "set pagination off",
		       "-ex", "thread apply all bt full 30", (char *)NULL);
		fprintf(stderr, "watchdog: no gdb to print the stacks (%s)\n", strerror(errno));
		_exit(127);
	}
	if (child > 0)
		(void)waitpid(child, NULL, 0);
}

static void *wd_main(void *arg)
{
	struct timespec dl;
	unsigned seconds = (unsigned)(uintptr_t)arg;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += seconds;
	/* Nothing signals wd_cv: this is a deadline, not a wait for an event. */
	pthread_mutex_lock(&wd_mu);
	while (rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&wd_cv, &wd_mu, &dl);
	pthread_mutex_unlock(&wd_mu);
	/* cmocka's "[ RUN ]" line above says which test hangs. */
	fprintf(stdout, "\nwatchdog: still running after %u s; stacks follow\n", seconds);
	fflush(stdout);
	fflush(stderr);
	wd_dump_stacks();
	fprintf(stdout, "watchdog: aborting\n");
	fflush(stdout);
	abort();
	return NULL;
}

/* Arms the watchdog for the whole binary, to fire after `seconds` (30 s
 * below meson's timeout leaves gdb time to attach): WD_SECONDS in the
 * environment overrides it (0 disarms it, for a debugger session). */
static inline void wd_start(unsigned seconds)
{
	const char *env = getenv("WD_SECONDS");

	if (env)
		seconds = (unsigned)strtoul(env, NULL, 10);
	pthread_t th;

	if (seconds == 0)
		return;
	if (pthread_create(&th, NULL, wd_main, (void *)(uintptr_t)seconds) == 0)
		pthread_detach(th);
}

#endif
