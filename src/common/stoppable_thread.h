/* A background thread that runs until told to stop: it polls stop_fd (an
 * eventfd) beside its own fds and returns once it is readable. Owns the
 * thread's start with every signal blocked, and the stop: signal, join,
 * close. */
#ifndef CRID_COMMON_STOPPABLE_THREAD_H
#define CRID_COMMON_STOPPABLE_THREAD_H

#include <pthread.h>
#include <stdbool.h>

#include "common/error.h"

struct crid_stoppable_thread {
	pthread_t thread;
	int stop_fd; /* -1 until started */
	bool started;
};

/* Not started: what stop may be called on. */
void crid_stoppable_thread_init(struct crid_stoppable_thread *t);
/* Makes stop_fd and runs fn(arg) in a new thread; what names it in errors. */
int crid_stoppable_thread_start(struct crid_stoppable_thread *t, void *(*fn)(void *), void *arg, const char *what,
				struct crid_err *err);
/* Tells the thread to stop and waits for it; safe when never started. */
void crid_stoppable_thread_stop(struct crid_stoppable_thread *t, const char *what);

#endif
