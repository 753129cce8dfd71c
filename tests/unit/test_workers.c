/* Unit tests of src/rpc/workers: every job runs exactly once, a job that
 * blocks never holds up a job submitted after it while the thread limit
 * allows, the limit is kept, one thread means FIFO, free drains the queue,
 * and handlers run with the daemon's signals blocked. Waits are bounded so a
 * stalled pool fails the test instead of hanging it. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "rpc/workers.h"

#define WAIT_S 5 /* how long a job that should run gets before the test fails */

/* ------------------------------------------------------------- helpers */

/* Waits for a semaphore; false after WAIT_S seconds (or ms when given). */
static bool sem_wait_ms(sem_t *s, long ms)
{
	struct timespec ts;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	do
		r = sem_timedwait(s, &ts);
	while (r < 0 && errno == EINTR);
	return r == 0;
}

static bool sem_wait_bounded(sem_t *s)
{
	return sem_wait_ms(s, WAIT_S * 1000L);
}

/* A gate jobs block on until the test opens it. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
};

static void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->open = false;
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void gate_destroy(struct gate *g)
{
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
}

/* A job that says it started, blocks on its gate, then says it is done. */
struct blocker {
	struct gate gate;
	sem_t started, done;
	atomic_int returned;
};

static void blocker_init(struct blocker *b)
{
	gate_init(&b->gate);
	sem_init(&b->started, 0, 0);
	sem_init(&b->done, 0, 0);
	atomic_init(&b->returned, 0);
}

static void blocker_destroy(struct blocker *b)
{
	gate_destroy(&b->gate);
	sem_destroy(&b->started);
	sem_destroy(&b->done);
}

static void blocker_job(void *arg)
{
	struct blocker *b = arg;

	sem_post(&b->started);
	pthread_mutex_lock(&b->gate.lock);
	while (!b->gate.open)
		pthread_cond_wait(&b->gate.cond, &b->gate.lock);
	pthread_mutex_unlock(&b->gate.lock);
	atomic_fetch_add(&b->returned, 1);
	sem_post(&b->done);
}

/* Reads an atomic counter into a plain int, so assertion messages stay short. */
static int load(atomic_int *a)
{
	return atomic_load(a);
}

/* A job that only says it ran. */
static void post_job(void *arg)
{
	sem_post(arg);
}

static struct crid_workers *new_pool(unsigned max_threads)
{
	struct crid_workers *w = NULL;
	struct crid_err err;

	crid_err_clear(&err);
	ck_assert_msg(crid_workers_new(&w, max_threads, &err) == 0, "crid_workers_new: %s", err.msg);
	ck_assert_ptr_nonnull(w);
	return w;
}

static void submit(struct crid_workers *w, crid_work_fn fn, void *arg)
{
	struct crid_err err;

	crid_err_clear(&err);
	ck_assert_msg(crid_workers_submit(w, fn, arg, &err) == 0, "crid_workers_submit: %s", err.msg);
}

/* ------------------------------------------------------------- run once */

#define N_JOBS 1000

static atomic_int run_counts[N_JOBS];
static atomic_int run_total;

static void count_job(void *arg)
{
	int *idx = arg;

	atomic_fetch_add(&run_counts[*idx], 1);
	atomic_fetch_add(&run_total, 1);
}

static void check_all_run_once(unsigned max_threads)
{
	static int idx[N_JOBS];
	struct crid_workers *w = new_pool(max_threads);

	for (int i = 0; i < N_JOBS; i++) {
		idx[i] = i;
		atomic_init(&run_counts[i], 0);
	}
	atomic_init(&run_total, 0);
	for (int i = 0; i < N_JOBS; i++)
		submit(w, count_job, &idx[i]);
	crid_workers_free(w);
	ck_assert_int_eq(load(&run_total), N_JOBS);
	for (int i = 0; i < N_JOBS; i++)
		ck_assert_msg(load(&run_counts[i]) == 1, "job %d ran %d times", i, load(&run_counts[i]));
}

START_TEST(test_all_jobs_run_once)
{
	check_all_run_once(4);
}
END_TEST

START_TEST(test_all_jobs_run_once_one_thread)
{
	check_all_run_once(1);
}
END_TEST

START_TEST(test_all_jobs_run_once_many_threads)
{
	check_all_run_once(64);
}
END_TEST

/* Jobs counted as they finish, without free: the pool runs work as it is
 * submitted, not only when it is shut down. */
static sem_t ran_sem;

static void ran_job(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	sem_post(&ran_sem);
}

START_TEST(test_jobs_run_before_free)
{
	struct crid_workers *w = new_pool(4);
	atomic_int n;

	atomic_init(&n, 0);
	sem_init(&ran_sem, 0, 0);
	for (int i = 0; i < 100; i++)
		submit(w, ran_job, &n);
	for (int i = 0; i < 100; i++)
		ck_assert_msg(sem_wait_bounded(&ran_sem), "only %d of 100 jobs ran", i);
	ck_assert_int_eq(load(&n), 100);
	crid_workers_free(w);
	ck_assert_int_eq(load(&n), 100);
	sem_destroy(&ran_sem);
}
END_TEST

/* ------------------------------------------------------- no stall */

START_TEST(test_blocked_job_does_not_stall_next)
{
	struct crid_workers *w = new_pool(4);
	struct blocker b;
	sem_t fast;

	blocker_init(&b);
	sem_init(&fast, 0, 0);
	submit(w, blocker_job, &b);
	ck_assert_msg(sem_wait_bounded(&b.started), "blocking job never started");
	submit(w, post_job, &fast);
	ck_assert_msg(sem_wait_bounded(&fast), "a job submitted after a blocking one did not run");
	ck_assert_int_eq(load(&b.returned), 0); /* the first still blocks */
	gate_open(&b.gate);
	ck_assert(sem_wait_bounded(&b.done));
	crid_workers_free(w);
	blocker_destroy(&b);
	sem_destroy(&fast);
}
END_TEST

/* The same without waiting for the blocker to start: the submits race the
 * threads picking jobs up. */
START_TEST(test_blocked_jobs_submitted_back_to_back)
{
	struct crid_workers *w = new_pool(4);
	struct blocker b[3];
	sem_t fast;

	sem_init(&fast, 0, 0);
	for (int i = 0; i < 3; i++) {
		blocker_init(&b[i]);
		submit(w, blocker_job, &b[i]);
	}
	submit(w, post_job, &fast);
	ck_assert_msg(sem_wait_bounded(&fast), "fourth job stalled behind three blocking ones");
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(sem_wait_bounded(&b[i].started), "blocker %d never started", i);
		ck_assert_int_eq(load(&b[i].returned), 0);
	}
	for (int i = 0; i < 3; i++)
		gate_open(&b[i].gate);
	for (int i = 0; i < 3; i++)
		ck_assert(sem_wait_bounded(&b[i].done));
	crid_workers_free(w);
	for (int i = 0; i < 3; i++)
		blocker_destroy(&b[i]);
	sem_destroy(&fast);
}
END_TEST

/* Threads that went idle are reused and still never leave a job behind a
 * blocked one: many rounds on one pool, so idle accounting is exercised. */
START_TEST(test_no_stall_with_idle_threads_reused)
{
	struct crid_workers *w = new_pool(4);

	for (int round = 0; round < 200; round++) {
		struct blocker b;
		sem_t fast;

		blocker_init(&b);
		sem_init(&fast, 0, 0);
		submit(w, blocker_job, &b);
		if (round % 2)
			ck_assert(sem_wait_bounded(&b.started));
		submit(w, post_job, &fast);
		ck_assert_msg(sem_wait_bounded(&fast), "round %d: job stalled behind a blocking one", round);
		ck_assert_int_eq(load(&b.returned), 0);
		gate_open(&b.gate);
		ck_assert(sem_wait_bounded(&b.done));
		/* Let the blocker's thread get back to idle before the next round
		 * on odd rounds; race it on even ones. */
		if (round % 2)
			usleep(1000);
		sem_destroy(&fast);
		/* The blocker touches nothing of b after posting done. */
		blocker_destroy(&b);
	}
	crid_workers_free(w);
}
END_TEST

START_TEST(test_thread_limit_kept)
{
	struct crid_workers *w = new_pool(4);
	struct blocker b[4];
	sem_t fifth;

	sem_init(&fifth, 0, 0);
	for (int i = 0; i < 4; i++) {
		blocker_init(&b[i]);
		submit(w, blocker_job, &b[i]);
	}
	for (int i = 0; i < 4; i++)
		ck_assert_msg(sem_wait_bounded(&b[i].started), "blocker %d never started: limit 4 not reached", i);
	/* All four threads block: a fifth job waits for one of them. */
	submit(w, post_job, &fifth);
	ck_assert_msg(!sem_wait_ms(&fifth, 300), "a fifth job ran while 4 jobs blocked a pool of 4 threads");
	gate_open(&b[2].gate);
	ck_assert_msg(sem_wait_bounded(&fifth), "queued job did not run once a thread was free");
	for (int i = 0; i < 4; i++)
		gate_open(&b[i].gate);
	for (int i = 0; i < 4; i++)
		ck_assert(sem_wait_bounded(&b[i].done));
	crid_workers_free(w);
	for (int i = 0; i < 4; i++)
		blocker_destroy(&b[i]);
	sem_destroy(&fifth);
}
END_TEST

START_TEST(test_zero_threads_means_one)
{
	struct crid_workers *w = new_pool(0);
	struct blocker b;
	sem_t second;

	blocker_init(&b);
	sem_init(&second, 0, 0);
	submit(w, blocker_job, &b);
	ck_assert_msg(sem_wait_bounded(&b.started), "a pool made with max_threads 0 runs nothing");
	submit(w, post_job, &second);
	ck_assert_msg(!sem_wait_ms(&second, 200), "a pool made with max_threads 0 ran two jobs at once");
	gate_open(&b.gate);
	ck_assert(sem_wait_bounded(&second));
	crid_workers_free(w);
	blocker_destroy(&b);
	sem_destroy(&second);
}
END_TEST

/* ------------------------------------------------------------- FIFO */

#define N_FIFO 300

static int fifo_order[N_FIFO];
static int fifo_len;
static pthread_mutex_t fifo_lock = PTHREAD_MUTEX_INITIALIZER;

static void fifo_job(void *arg)
{
	pthread_mutex_lock(&fifo_lock);
	if (fifo_len < N_FIFO)
		fifo_order[fifo_len] = *(int *)arg;
	fifo_len++;
	pthread_mutex_unlock(&fifo_lock);
}

START_TEST(test_one_thread_is_fifo)
{
	static int idx[N_FIFO];
	struct crid_workers *w = new_pool(1);
	struct blocker b;

	fifo_len = 0;
	/* Hold the only thread so every job below is queued, then let go. */
	blocker_init(&b);
	submit(w, blocker_job, &b);
	ck_assert(sem_wait_bounded(&b.started));
	for (int i = 0; i < N_FIFO; i++) {
		idx[i] = i;
		submit(w, fifo_job, &idx[i]);
	}
	gate_open(&b.gate);
	crid_workers_free(w);
	ck_assert_int_eq(fifo_len, N_FIFO);
	for (int i = 0; i < N_FIFO; i++)
		ck_assert_msg(fifo_order[i] == i, "position %d ran job %d", i, fifo_order[i]);
	blocker_destroy(&b);
}
END_TEST

START_TEST(test_one_thread_is_fifo_while_running)
{
	/* Jobs submitted while the thread is busy running earlier ones. */
	static int idx[N_FIFO];
	struct crid_workers *w = new_pool(1);

	fifo_len = 0;
	for (int i = 0; i < N_FIFO; i++) {
		idx[i] = i;
		submit(w, fifo_job, &idx[i]);
		if (i % 37 == 0)
			usleep(500);
	}
	crid_workers_free(w);
	ck_assert_int_eq(fifo_len, N_FIFO);
	for (int i = 0; i < N_FIFO; i++)
		ck_assert_msg(fifo_order[i] == i, "position %d ran job %d", i, fifo_order[i]);
}
END_TEST

/* ------------------------------------------------------------- free */

static atomic_int drained;

static void slow_job(void *arg)
{
	usleep(200 * 1000);
	atomic_fetch_add(&drained, 1);
}

static void drain_job(void *arg)
{
	atomic_fetch_add(&drained, 1);
}

START_TEST(test_free_runs_queued_jobs)
{
	struct crid_workers *w = new_pool(1);

	atomic_init(&drained, 0);
	/* The only thread is busy for 200 ms, so the 50 jobs after it are still
	 * queued when free is called. */
	submit(w, slow_job, NULL);
	for (int i = 0; i < 50; i++)
		submit(w, drain_job, NULL);
	crid_workers_free(w);
	ck_assert_int_eq(load(&drained), 51);
}
END_TEST

START_TEST(test_free_runs_queued_jobs_many_threads)
{
	struct crid_workers *w = new_pool(4);

	atomic_init(&drained, 0);
	for (int i = 0; i < 4; i++)
		submit(w, slow_job, NULL);
	for (int i = 0; i < 200; i++)
		submit(w, drain_job, NULL);
	crid_workers_free(w);
	ck_assert_int_eq(load(&drained), 204);
}
END_TEST

START_TEST(test_free_idle_and_null)
{
	crid_workers_free(NULL);
	/* A pool that never ran anything, and one whose threads are all idle. */
	crid_workers_free(new_pool(4));
	{
		struct crid_workers *w = new_pool(4);
		sem_t s;

		sem_init(&s, 0, 0);
		submit(w, post_job, &s);
		ck_assert(sem_wait_bounded(&s));
		usleep(10 * 1000);
		crid_workers_free(w);
		sem_destroy(&s);
	}
}
END_TEST

/* ------------------------------------------------------------- signals */

struct mask_check {
	sigset_t mask;
	sem_t done;
};

static void mask_job(void *arg)
{
	struct mask_check *m = arg;

	pthread_sigmask(SIG_BLOCK, NULL, &m->mask);
	sem_post(&m->done);
}

START_TEST(test_jobs_run_with_signals_blocked)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGPIPE, SIGQUIT };
	struct crid_workers *w = new_pool(2);
	struct mask_check m;
	sigset_t none, caller;

	/* The caller has nothing blocked, and must keep it that way. */
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	sigemptyset(&m.mask);
	sem_init(&m.done, 0, 0);
	submit(w, mask_job, &m);
	ck_assert(sem_wait_bounded(&m.done));
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		ck_assert_msg(sigismember(&m.mask, sigs[i]) == 1, "signal %d not blocked in a worker", sigs[i]);
	pthread_sigmask(SIG_BLOCK, NULL, &caller);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		ck_assert_msg(sigismember(&caller, sigs[i]) == 0, "submit left signal %d blocked in the caller",
			      sigs[i]);
	crid_workers_free(w);
	sem_destroy(&m.done);
}
END_TEST

static Suite *workers_suite(void)
{
	Suite *s = suite_create("workers");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_all_jobs_run_once);
	tcase_add_test(tc, test_all_jobs_run_once_one_thread);
	tcase_add_test(tc, test_all_jobs_run_once_many_threads);
	tcase_add_test(tc, test_jobs_run_before_free);
	tcase_add_test(tc, test_blocked_job_does_not_stall_next);
	tcase_add_test(tc, test_blocked_jobs_submitted_back_to_back);
	tcase_add_test(tc, test_no_stall_with_idle_threads_reused);
	tcase_add_test(tc, test_thread_limit_kept);
	tcase_add_test(tc, test_zero_threads_means_one);
	tcase_add_test(tc, test_one_thread_is_fifo);
	tcase_add_test(tc, test_one_thread_is_fifo_while_running);
	tcase_add_test(tc, test_free_runs_queued_jobs);
	tcase_add_test(tc, test_free_runs_queued_jobs_many_threads);
	tcase_add_test(tc, test_free_idle_and_null);
	tcase_add_test(tc, test_jobs_run_with_signals_blocked);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(workers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
