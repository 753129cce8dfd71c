/* The pull jobs of pull_queue.h. One lock guards the jobs, their waiting
 * calls and the threads' queue. A call's cancel hook (run on the event
 * loop) finds its waiter by the call itself, under the lock, so a job that
 * completes meanwhile and a hook that fires meanwhile never race on a
 * waiter's memory. */
#include "image/pull_queue.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "image/images_internal.h"
#include "stats/metrics.h"
#include "runtime/v1/api.pb-c.h"

struct waiter {
	struct crid_call *call; /* a reference held */
	struct waiter *next;
};

struct job {
	char *image;
	char *username, *password, *identity_token, *registry_token;
	struct waiter *waiters;
	atomic_bool cancel; /* every waiter has gone, or crid stops */
	bool running;
	struct job *next;	/* all jobs not done, oldest first */
};

struct crid_pull_queue {
	struct crid_images *im;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *jobs;
	pthread_t *threads;
	unsigned n_threads, max_threads, idle;
	bool stopping;
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->image);
	free(j->username);
	free(j->password);
	free(j->identity_token);
	free(j->registry_token);
	free(j);
}

static bool same(const char *a, const char *b)
{
	return (!a || !*a) ? (!b || !*b) : (b && strcmp(a, b) == 0);
}

static bool job_matches(const struct job *j, const char *image, const struct crid_registry_auth *a)
{
	return strcmp(j->image, image) == 0 && same(j->username, a->username) && same(j->password, a->password) &&
	       same(j->identity_token, a->identity_token) && same(j->registry_token, a->registry_token);
}

static char *dup_opt(const char *s, bool *failed)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*failed = true;
	return d;
}

static struct job *job_new(const char *image, const struct crid_registry_auth *a)
{
	struct job *j = calloc(1, sizeof(*j));
	bool failed = false;

	if (!j)
		return NULL;
	atomic_init(&j->cancel, false);
	j->image = strdup(image);
	j->username = dup_opt(a->username, &failed);
	j->password = dup_opt(a->password, &failed);
	j->identity_token = dup_opt(a->identity_token, &failed);
	j->registry_token = dup_opt(a->registry_token, &failed);
	if (!j->image || failed) {
		job_free(j);
		return NULL;
	}
	return j;
}

static void unlink_job_locked(struct crid_pull_queue *q, struct job *j)
{
	for (struct job **p = &q->jobs; *p; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			return;
		}
	}
}

/* Takes call out of the job it waits on, if it still does; the job is
 * cancelled when it was the last. Lock held. */
static bool forget_call_locked(struct crid_pull_queue *q, struct crid_call *call)
{
	for (struct job *j = q->jobs; j; j = j->next) {
		for (struct waiter **w = &j->waiters; *w; w = &(*w)->next) {
			struct waiter *found = *w;

			if (found->call != call)
				continue;
			*w = found->next;
			crid_call_unref(found->call);
			free(found);
			if (!j->waiters) {
				atomic_store(&j->cancel, true);
				log_info("cancelling a pull: every client waiting for it has gone", "image", j->image);
				/* Not started: nobody needs it. */
				if (!j->running) {
					unlink_job_locked(q, j);
					job_free(j);
				}
			}
			return true;
		}
	}
	return false;
}

/* The event loop: the call's client went away, or its deadline passed. */
static void on_call_cancelled(struct crid_call *call, void *data)
{
	struct crid_pull_queue *q = data;

	pthread_mutex_lock(&q->lock);
	forget_call_locked(q, call);
	pthread_mutex_unlock(&q->lock);
}

static void answer(struct waiter *waiters, int r, const char *image_id, const struct crid_err *err)
{
	while (waiters) {
		struct waiter *w = waiters;
		struct crid_err e;

		waiters = w->next;
		crid_err_clear(&e);
		if (r == 0) {
			Runtime__V1__PullImageResponse resp = RUNTIME__V1__PULL_IMAGE_RESPONSE__INIT;

			resp.image_ref = (char *)image_id;
			if (crid_call_send(w->call, &resp.base, &e) < 0)
				crid_call_finish(w->call, e.status, e.msg);
			else
				crid_call_finish(w->call, CRID_OK, NULL);
		} else {
			crid_call_finish(w->call, err->status ? err->status : CRID_INTERNAL, err->msg);
		}
		crid_call_unref(w->call);
		free(w);
	}
}

static void run_job(struct crid_pull_queue *q, struct job *j)
{
	struct crid_registry_auth auth = { .username = j->username,
					   .password = j->password,
					   .identity_token = j->identity_token,
					   .registry_token = j->registry_token };
	_cleanup_free_ char *id = NULL;
	struct waiter *waiters;
	struct crid_err err;
	int r;
	int64_t start = crid_monotonic_ns();
	uint64_t fetched = 0;

	crid_err_clear(&err);
	r = crid_images_pull(q->im, j->image, &auth, &j->cancel, &id, &fetched, &err);
	crid_metrics_pull_done(q->im->metrics, fetched, crid_monotonic_ns() - start, r == 0);
	if (r == 0)
		log_info("pulled image", "image", j->image, "id", id);
	pthread_mutex_lock(&q->lock);
	unlink_job_locked(q, j);
	waiters = take_ptr(&j->waiters);
	pthread_mutex_unlock(&q->lock);
	answer(waiters, r, id, &err);
	job_free(j);
}

static void *pull_thread(void *arg)
{
	struct crid_pull_queue *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct job *j = NULL;

		for (struct job *k = q->jobs; k; k = k->next) {
			if (!k->running) {
				j = k;
				break;
			}
		}
		if (!j && q->stopping)
			break;
		if (!j) {
			q->idle++;
			pthread_cond_wait(&q->wake, &q->lock);
			q->idle--;
			continue;
		}
		j->running = true;
		pthread_mutex_unlock(&q->lock);
		run_job(q, j);
		pthread_mutex_lock(&q->lock);
		if (!q->jobs && q->idle + 1 == q->n_threads) {
			/* The last pull ended: the heap gives back what its
			 * buffers (layers stream through megabytes) left free. */
			pthread_mutex_unlock(&q->lock);
			malloc_trim(0);
			pthread_mutex_lock(&q->lock);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int crid_pull_queue_new(struct crid_pull_queue **out, struct crid_images *im, unsigned max_threads,
			struct crid_err *err)
{
	struct crid_pull_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return crid_err_nomem(err, "pull queue");
	q->im = im;
	q->max_threads = max_threads ? max_threads : 1;
	q->threads = calloc(q->max_threads, sizeof(*q->threads));
	if (!q->threads) {
		free(q);
		return crid_err_nomem(err, "pull queue");
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, NULL);
	*out = q;
	return 0;
}

/* Lock held. Threads start on demand; they never get crid's signals. */
static int grow_locked(struct crid_pull_queue *q)
{
	sigset_t all, old;
	unsigned waiting = 0;
	int r;

	for (struct job *j = q->jobs; j; j = j->next)
		waiting += !j->running;
	if (waiting <= q->idle || q->n_threads >= q->max_threads)
		return 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&q->threads[q->n_threads], NULL, pull_thread, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return q->n_threads ? 0 : -r; /* fewer threads: slower, not wrong */
	q->n_threads++;
	return 0;
}

int crid_pull_queue_submit(struct crid_pull_queue *q, const char *image, const struct crid_registry_auth *auth,
			   struct crid_call *call, struct crid_err *err)
{
	struct waiter *w = calloc(1, sizeof(*w));
	struct job *j = NULL;
	int r;

	if (!w)
		return crid_err_nomem(err, "pull waiter");
	pthread_mutex_lock(&q->lock);
	if (q->stopping) {
		pthread_mutex_unlock(&q->lock);
		free(w);
		return crid_err_set(err, CRID_UNAVAILABLE, 0, "crid is shutting down");
	}
	for (struct job *k = q->jobs; k && !j; k = k->next)
		if (!atomic_load(&k->cancel) && job_matches(k, image, auth))
			j = k;
	if (!j) {
		j = job_new(image, auth);
		if (!j) {
			pthread_mutex_unlock(&q->lock);
			free(w);
			return crid_err_nomem(err, "pull job");
		}
		/* Appended: pulls start in the order they were asked for. */
		struct job **tail = &q->jobs;

		while (*tail)
			tail = &(*tail)->next;
		*tail = j;
		r = grow_locked(q);
		if (r < 0) {
			unlink_job_locked(q, j);
			pthread_mutex_unlock(&q->lock);
			job_free(j);
			free(w);
			return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, -r, "start a pull thread");
		}
		pthread_cond_signal(&q->wake);
	}
	w->call = crid_call_ref(call);
	w->next = j->waiters;
	j->waiters = w;
	pthread_mutex_unlock(&q->lock);
	crid_call_on_cancel(call, on_call_cancelled, q);
	/* Gone before the hook was in place: its hook will never run. */
	if (crid_call_cancelled(call))
		on_call_cancelled(call, q);
	return 0;
}

void crid_pull_queue_stop(struct crid_pull_queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	for (struct job *j = q->jobs; j; j = j->next)
		atomic_store(&j->cancel, true);
	pthread_cond_broadcast(&q->wake);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->n_threads; i++)
		pthread_join(q->threads[i], NULL);
	q->n_threads = 0;
	/* Jobs no thread took: their calls are told. */
	pthread_mutex_lock(&q->lock);
	while (q->jobs) {
		struct job *j = q->jobs;
		struct crid_err err;

		q->jobs = j->next;
		crid_err_set(&err, CRID_UNAVAILABLE, 0, "crid is shutting down");
		pthread_mutex_unlock(&q->lock);
		answer(take_ptr(&j->waiters), -ECANCELED, NULL, &err);
		job_free(j);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
}

void crid_pull_queue_free(struct crid_pull_queue *q)
{
	if (!q)
		return;
	crid_pull_queue_stop(q);
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->lock);
	free(q->threads);
	free(q);
}
