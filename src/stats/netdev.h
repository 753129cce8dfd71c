/* Network interface counters of a pod: /proc/net/dev as seen from inside
 * the pod's network namespace. Owns the short-lived thread that enters the
 * namespace to read it; it never changes an interface. */
#ifndef CRID_STATS_NETDEV_H
#define CRID_STATS_NETDEV_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define CRID_NETDEV_MAX 64 /* interfaces reported per pod */

struct crid_netdev {
	char name[32];
	uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
	uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};

struct crid_netdev_list {
	int64_t timestamp; /* CLOCK_REALTIME ns */
	struct crid_netdev dev[CRID_NETDEV_MAX];
	size_t n;
};

/* Reads the counters of every interface but loopback in the network
 * namespace pinned at netns_path. */
int crid_netdev_read(const char *netns_path, struct crid_netdev_list *out, struct crid_err *err);

/* Parses /proc/net/dev's text (pure); loopback is left out, and interfaces
 * past CRID_NETDEV_MAX. -EINVAL when the text is not that file's. */
int crid_netdev_parse(const char *text, struct crid_netdev_list *out);

/* The interface the kubelet calls the pod's: eth0 when there is one, else
 * the first listed; NULL when none. */
const struct crid_netdev *crid_netdev_default(const struct crid_netdev_list *l);

#endif
