/* Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus, ListPodSandbox, and the pods' recovery at start-up. A
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

/* Start-up: puts a recorded pod back in the table, checked against what
 * the machine still has. A record that cannot be read is logged and left. */
void crid_pod_recover(struct crid_runtime *rt, const struct crid_object_record *rec);

/* Start-up, after recovery: pod directories no record names are adopted
 * again when they hold a record copy (crid.db lost them), else removed
 * (what an interrupted RunPodSandbox left). */
void crid_pods_adopt_or_remove_unknown(struct crid_runtime *rt);

#endif
