/* crid's own Prometheus metrics: per-RPC counts, errors by code and
 * latencies, image pulls, and gauges gathered at scrape time (pods and
 * containers by state, shims, the daemon's memory and fds), rendered in the
 * Prometheus text format. Owns the counters only; it never looks at pods
 * or containers itself, the runtime hands it the gauges. */
#ifndef CRID_STATS_METRICS_H
#define CRID_STATS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct crid_metrics;

/* What the runtime counts when asked (at each scrape). */
struct crid_metrics_gauges {
	uint64_t pods_ready, pods_notready;
	uint64_t containers_created, containers_running, containers_exited, containers_unknown;
	uint64_t shims; /* crid-shim processes alive */
};

typedef void (*crid_metrics_gauges_fn)(void *data, struct crid_metrics_gauges *out);

int crid_metrics_new(struct crid_metrics **out, struct crid_err *err);
void crid_metrics_free(struct crid_metrics *m);

/* Where the scrape-time gauges come from (set once, before serving). */
void crid_metrics_set_gauges(struct crid_metrics *m, crid_metrics_gauges_fn fn, void *data);

/* One RPC ended: service and method as in the CRI ("RuntimeService",
 * "Version"), a gRPC status, how long it took. Lock-free; any thread.
 * Names outside the CRI are counted under method "unknown". */
void crid_metrics_rpc_done(struct crid_metrics *m, const char *service, const char *method, int status,
			   int64_t dur_ns);

/* One image pull ended: bytes fetched from registries, and how long. */
void crid_metrics_pull_done(struct crid_metrics *m, uint64_t bytes, int64_t dur_ns, bool ok);

/* The exposition text (malloc'd, *len bytes, NUL-terminated). */
int crid_metrics_render(struct crid_metrics *m, char **text, size_t *len, struct crid_err *err);

#endif
