/* A pod's sandbox container, for a runtime handler that runs one sandbox
 * per pod (gVisor): a container of crid-sandbox-init alone, in the pod's
 * pinned network, IPC and UTS namespaces, run under crid-shim in
 * <pod dir>/sandbox with the pod's ID as its container ID. The pod's
 * containers join it (container_bundle.c). Never used for other handlers. */
#ifndef CRID_POD_POD_SANDBOX_H
#define CRID_POD_POD_SANDBOX_H

#include <stdbool.h>

#include "common/error.h"
#include "runtime/objects.h"

/* Creates and starts the sandbox; p's namespaces and network are set up. */
int crid_pod_sandbox_start(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err);

/* Ends the sandbox's init (SIGTERM, then SIGKILL) and waits for its shim
 * to record the exit. Idempotent. */
int crid_pod_sandbox_stop(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err);

/* Stops, then deletes the sandbox from the runtime and removes its
 * directory. Idempotent. */
int crid_pod_sandbox_remove(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err);

/* A ready pod whose sandbox exited (its shim recorded the exit, or is
 * gone) is made not ready, recorded and announced (CONTAINER_STOPPED),
 * unless p's lock is busy. Lock of p not held. */
void crid_pod_sandbox_check(struct crid_runtime *rt, struct crid_pod *p);

/* Start-up: whether the recorded sandbox still runs (its shim alive, no
 * exit recorded). */
bool crid_pod_sandbox_alive(const struct crid_pod *p);

#endif
