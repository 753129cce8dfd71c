/* Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus, ListPodSandbox, PortForward, and the pods' recovery at start-up. A
 * pod is its pinned namespaces and files (pod_ns.h), never an infra
 * container. A pod's containers are container/'s: stopping and removing a
 * pod asks it to end them first. */
#ifndef CRID_POD_POD_H
#define CRID_POD_POD_H

#include "common/error.h"
#include "rpc/methods.h"
#include "runtime/objects.h"
#include "store/store.h"

int crid_pods_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);
/* PortForward (pod_portforward.c): a URL on the streaming server. */
int crid_pod_portforward_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);

/* Start-up: puts a recorded pod back in the table, checked against what
 * the machine still has. A record that cannot be read is logged and left. */
void crid_pod_recover(struct crid_runtime *rt, const struct crid_object_record *rec);

/* Start-up, after recovery: removes pod directories no pod owns (what an
 * interrupted RunPodSandbox left). */
void crid_pods_remove_unknown(struct crid_runtime *rt);

#endif
