/* Internal to actors/: a one-shot completion a thread waits on while an
 * actor does the work (flush and compact requests, barriers). Shared by
 * the store and its TabletLog. */
#ifndef INGOT_ACTORS_DONE_INT_H
#define INGOT_ACTORS_DONE_INT_H

#include <pthread.h>
#include <stdbool.h>

typedef struct ig__done {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
} ig__done_t;

void ig__done_init(ig__done_t *d);
void ig__done_signal(ig__done_t *d, int rc);

/** Waits for the signal, then destroys d; returns the signalled rc. */
int ig__done_wait(ig__done_t *d);

#endif
