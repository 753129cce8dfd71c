/* The RuntimeService as far as it stands: version, status and readiness, the
 * runtime configuration the kubelet reads and updates, and container events.
 * Owns the runtime-wide state (pod CIDR, event bus); never touches images. */
#ifndef CRID_RUNTIME_H
#define CRID_RUNTIME_H

#include "common/error.h"
#include "config/config.h"
#include "rpc/methods.h"

struct crid_runtime;

struct crid_images;

struct crid_store;

struct crid_layer_usage;

struct crid_metrics;

struct crid_streaming;

/* Recovers the pods and containers recorded in db (start-up). Containers'
 * writable layers are measured by layers; metrics (NULL: none) gets the
 * pod and container gauges. Exec, Attach and PortForward hand out URLs of
 * streaming. */
int crid_runtime_new(struct crid_runtime **out, const struct crid_config *cfg, struct crid_images *images,
		     struct crid_store *db, struct crid_layer_usage *layers, struct crid_metrics *metrics,
		     struct crid_streaming *streaming, struct crid_err *err);

/* How many pods and containers start-up adopted again because crid.db had
 * lost their records. */
unsigned crid_runtime_adopted(const struct crid_runtime *rt);

/* Registers this service's handlers in the method table. */
int crid_runtime_register(struct crid_runtime *rt, struct crid_rpc_methods *methods, struct crid_err *err);

/* Shutdown began: ends the calls that would stay open (event streams). */
void crid_runtime_shutdown(void *rt);

void crid_runtime_free(struct crid_runtime *rt);

#endif
