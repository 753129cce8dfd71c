/* The optional HTTP endpoint that serves /metrics (metrics.h) in the
 * Prometheus text format. One thread answers one connection at a time,
 * each bounded in size and time, so a slow or hostile client costs at most
 * a few seconds of scrapes and never touches the CRI socket's loop. */
#ifndef CRID_STATS_METRICS_HTTP_H
#define CRID_STATS_METRICS_HTTP_H

#include "common/error.h"
#include "stats/metrics.h"

struct crid_metrics_http;

/* Listens on address ("127.0.0.1:9090", "[::1]:9090", ":9090" for every
 * address) and serves m until stopped. */
int crid_metrics_http_start(struct crid_metrics_http **out, const char *address, struct crid_metrics *m,
			    struct crid_err *err);

/* Splits "host:port" (host may be "[v6]" or empty); -EINVAL when malformed.
 * host receives "" for every address. Pure, shared with the config checks. */
int crid_metrics_address_split(const char *address, char *host, size_t host_size, char *port, size_t port_size);

void crid_metrics_http_stop(struct crid_metrics_http *h);

#endif
