/* The worker pool of workers.h: a mutex-protected FIFO and threads that grow
 * on demand while every thread is busy. */
#include "rpc/workers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/log.h"

struct work {
	crid_work_fn fn;
	void *arg;
	struct work *next;
};

struct crid_workers {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct work *head, *tail;
	pthread_t *threads;
	unsigned n_threads, max_threads, idle, queued;
	bool stopping;
};

int crid_workers_new(struct crid_workers **out, unsigned max_threads, struct crid_err *err)
{
	struct crid_workers *w = calloc(1, sizeof(*w));

	if (!w)
		return crid_err_nomem(err, "worker pool");
	if (max_threads == 0)
		max_threads = 1;
	w->threads = calloc(max_threads, sizeof(pthread_t));
	if (!w->threads) {
		free(w);
		return crid_err_nomem(err, "worker pool");
	}
	w->max_threads = max_threads;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	*out = w;
	return 0;
}

static void *worker_main(void *arg)
{
	struct crid_workers *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct work *job;

		while (!w->head && !w->stopping) {
			w->idle++;
			pthread_cond_wait(&w->wake, &w->lock);
			w->idle--;
		}
		job = w->head;
		if (!job)
			break; /* stopping, queue drained */
		w->head = job->next;
		w->queued--;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->lock);
		job->fn(job->arg);
		free(job);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Called with the lock held. Handlers must never get the daemon's signals:
 * those are read from a signalfd by the loop. */
static int spawn_locked(struct crid_workers *w)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&w->threads[w->n_threads], NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	w->n_threads++;
	return 0;
}

int crid_workers_submit(struct crid_workers *w, crid_work_fn fn, void *arg, struct crid_err *err)
{
	struct work *job = malloc(sizeof(*job));

	if (!job)
		return crid_err_nomem(err, "work item");
	job->fn = fn;
	job->arg = arg;
	job->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		free(job);
		return crid_err_set(err, CRID_UNAVAILABLE, 0, "crid is shutting down");
	}
	if (w->tail)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
	w->queued++;
	/* Queue depth beyond idle threads: grow, so one slow call never holds up
	 * another while the limit allows. */
	if (w->queued > w->idle && w->n_threads < w->max_threads) {
		int r = spawn_locked(w);

		if (r < 0 && w->n_threads == 0) {
			/* No thread at all would strand the job: undo it. */
			w->head = w->tail = NULL;
			w->queued = 0;
			pthread_mutex_unlock(&w->lock);
			free(job);
			return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, -r, "start worker thread");
		}
		if (r < 0)
			log_warn("cannot start another worker thread; the call waits for a free one",
				 "threads", "busy");
	}
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void crid_workers_free(struct crid_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w->threads);
	free(w);
}
