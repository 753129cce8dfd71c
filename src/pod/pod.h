/* Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus, ListPodSandbox, StreamPodSandboxes, PortForward,
 * their stats and metrics, and the pods' recovery at start-up. A
 * pod is its pinned namespaces and files (pod_ns.h), never an infra
 * container. A pod's containers are container/'s: stopping and removing a
 * pod asks it to end them first. */
#ifndef CRID_POD_POD_H
#define CRID_POD_POD_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "container/container.h" /* a pod's stats include its containers' */
#include "oci/oci_spec.h"
#include "rpc/methods.h"
#include "runtime/objects.h"
#include "stats/netdev.h"
#include "store/store.h"

int crid_pods_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);
/* PortForward (pod_portforward.c): a URL on the streaming server. */
int crid_pod_portforward_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);

/* PodSandboxStats, ListPodSandboxStats, StreamPodSandboxStats (pod_stats.c),
 * and ListMetricDescriptors, ListPodSandboxMetrics,
 * StreamPodSandboxMetrics (pod_metrics.c). */
int crid_pod_stats_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);
int crid_pod_metrics_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);

/* One pod's use now: its cgroup (or its containers' summed), CPU rate,
 * network counters (NULL when the pod uses the host's network or has
 * none to read), and each created or running container's use. */
struct crid_pod_usage {
	struct crid_cgroup_sample cg;
	bool has_rate;
	uint64_t nano_cores;
	struct crid_netdev_list *net;
	struct crid_container **ctrs; /* referenced */
	struct crid_container_usage *cu;
	size_t n;
};

int crid_pod_usage_read(struct crid_runtime *rt, struct crid_pod *p, struct crid_pod_usage *u, struct crid_err *err);
void crid_pod_usage_free(struct crid_pod_usage *u);

/* The pods (a reference taken on each) that filter (NULL: all) matches;
 * ready ones only when ready_only. Never one still being created. */
int crid_pods_matching(struct crid_runtime *rt, const Runtime__V1__PodSandboxStatsFilter *f, bool ready_only,
		       struct crid_pod ***out, size_t *n, struct crid_err *err);
/* A cgroup_parent that stays inside the cgroup hierarchies: relative
 * components of letters, digits and "._-:@", none "." or "..". */
bool crid_pod_cgroup_parent_ok(const char *parent);
/* Gives the pod's cgroup (cgroup_parent, cgroupfs layout) the resources,
 * checked as a container's are; *applied is what was written (OCI
 * linux.resources), NULL when nothing was asked for. */
int crid_pod_cgroup_apply(const char *parent, const Runtime__V1__LinuxContainerResources *resources,
			  const struct crid_spec_host *host, json_t **applied, struct crid_err *err);

/* Start-up: puts a recorded pod back in the table, checked against what
 * the machine still has. A record that cannot be read is logged and left. */
void crid_pod_recover(struct crid_runtime *rt, const struct crid_object_record *rec);

/* Start-up, after recovery: pod directories no record names are adopted
 * again when they hold a record copy (crid.db lost them), else removed
 * (what an interrupted RunPodSandbox left). */
void crid_pods_adopt_or_remove_unknown(struct crid_runtime *rt);

#endif
