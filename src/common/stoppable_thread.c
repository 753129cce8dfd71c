#include "common/stoppable_thread.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"

void crid_stoppable_thread_init(struct crid_stoppable_thread *t)
{
	memset(t, 0, sizeof(*t));
	t->stop_fd = -1;
}

int crid_stoppable_thread_start(struct crid_stoppable_thread *t, void *(*fn)(void *), void *arg, const char *what,
				struct crid_err *err)
{
	sigset_t all, old;
	int r;

	if (t->stop_fd < 0)
		t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stop_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "start the %s", what);
	/* Signals go to the main thread's handling, never to this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&t->thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return crid_err_set(err, CRID_INTERNAL, r, "start the %s", what);
	t->started = true;
	return 0;
}

void crid_stoppable_thread_stop(struct crid_stoppable_thread *t, const char *what)
{
	uint64_t one = 1;

	if (t->started) {
		if (write(t->stop_fd, &one, sizeof(one)) < 0)
			log_error("cannot stop a thread", "thread", what, "error", strerror(errno));
		pthread_join(t->thread, NULL);
		t->started = false;
	}
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	t->stop_fd = -1;
}
