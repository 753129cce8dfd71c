/* PullImage calls wait on pull jobs that a bounded pool of pull threads of
 * their own runs, so a pull never holds a thread that answers other RPCs.
 * One job serves every call asking for the same image with the same
 * credentials; a job whose every call has gone (client gone, deadline) is
 * cancelled. Never answers a call but through crid_call_*. */
#ifndef CRID_IMAGE_PULL_QUEUE_H
#define CRID_IMAGE_PULL_QUEUE_H

#include "common/error.h"
#include "image/registry.h"
#include "rpc/call.h"

struct crid_images;
struct crid_pull_queue;

/* At most max_threads pulls run at once; later ones wait in order. */
int crid_pull_queue_new(struct crid_pull_queue **out, struct crid_images *im, unsigned max_threads,
			struct crid_err *err);

/* Makes call wait for image, pulled with auth (copied). The call is
 * answered (PullImageResponse, or the pull's error) from a pull thread;
 * returns 0 when it will be, else an error and the call is not taken. */
int crid_pull_queue_submit(struct crid_pull_queue *q, const char *image, const struct crid_registry_auth *auth,
			   struct crid_call *call, struct crid_err *err);

/* Cancels every job, answers their calls with UNAVAILABLE and joins the
 * threads. Before the server goes: the calls need it. Idempotent. */
void crid_pull_queue_stop(struct crid_pull_queue *q);
void crid_pull_queue_free(struct crid_pull_queue *q);

#endif
