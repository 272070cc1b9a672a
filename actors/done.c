/* The one-shot completion of done_int.h. */
#include "done_int.h"

void ig__done_init(ig__done_t *d)
{
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->done = false;
	d->rc = 0;
}

void ig__done_signal(ig__done_t *d, int rc)
{
	pthread_mutex_lock(&d->mu);
	d->rc = rc;
	d->done = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

int ig__done_wait(ig__done_t *d)
{
	int rc;

	pthread_mutex_lock(&d->mu);
	while (!d->done)
		pthread_cond_wait(&d->cv, &d->mu);
	rc = d->rc;
	pthread_mutex_unlock(&d->mu);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	return rc;
}
