/* The worker pool: threads that run handlers which may block (runtime and
 * CNI calls, pulls, disk), so the event loop never does. Threads start on
 * demand, up to a limit, and stay for reuse. */
#ifndef CRID_RPC_WORKERS_H
#define CRID_RPC_WORKERS_H

#include "common/error.h"

struct crid_workers;

typedef void (*crid_work_fn)(void *arg);

int crid_workers_new(struct crid_workers **out, unsigned max_threads, struct crid_err *err);

/* Queues fn(arg). Fails only when out of memory, or after shutdown began;
 * the caller then still owns arg. */
int crid_workers_submit(struct crid_workers *w, crid_work_fn fn, void *arg, struct crid_err *err);

/* Runs what is queued, then joins every thread and frees the pool. */
void crid_workers_free(struct crid_workers *w);

#endif
