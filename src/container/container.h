/* Containers: CreateContainer, StartContainer, StopContainer,
 * RemoveContainer (containers.c); ContainerStatus, ListContainers,
 * ExecSync, ReopenContainerLog, UpdateContainerResources
 * (container_queries.c); learning exits from crid-shim's exit files
 * (exit_watch.c); recovery at start-up (container_recover.c). Each
 * container's process is run by the OCI runtime under its own crid-shim. */
#ifndef CRID_CONTAINER_CONTAINER_H
#define CRID_CONTAINER_CONTAINER_H

#include <stdbool.h>

#include "common/error.h"
#include "rpc/methods.h"
#include "runtime/objects.h"
#include "store/store.h"

int crid_containers_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);
int crid_container_queries_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);

/* Stops every container of a pod (StopPodSandbox). */
int crid_containers_stop_pod(struct crid_runtime *rt, const char *pod_id, struct crid_err *err);
/* Removes every container of a pod (RemovePodSandbox). */
int crid_containers_remove_pod(struct crid_runtime *rt, const char *pod_id, struct crid_err *err);

/* The exit watcher: learns from the shims' exit files. */
int crid_exit_watch_start(struct crid_runtime *rt, struct crid_err *err);
int crid_exit_watch_add(struct crid_runtime *rt, struct crid_container *c, struct crid_err *err);
void crid_exit_watch_stop(struct crid_runtime *rt);

/* overlayfs' limit on the layers of one mount. */
#define CRID_MAX_LAYERS 500

/* Mounts c's root file system at c->rootfs: the image's layers under a
 * private writable layer in c->upper (rootfs.c). */
int crid_container_mount_rootfs(const struct crid_container *c, const struct crid_image_use *img,
				struct crid_err *err);

/* The OCI runtime's error when c's process never ran (its init's exec
 * failed and said so as the log's only record), malloc'd; else NULL. */
char *crid_container_start_failure(const struct crid_container *c);

/* Reads an exit file, if there is one, into c (lock held). */
bool crid_container_collect_exit_locked(struct crid_runtime *rt, struct crid_container *c);

/* Start-up: puts a recorded container back in the table, checked against
 * its shim and exit file. A record that cannot be read is logged and left. */
void crid_container_recover(struct crid_runtime *rt, const struct crid_object_record *rec);

/* Start-up, after recovery: containers no record names whose writable
 * layer directory holds a record copy are adopted again (crid.db lost
 * them); the other bundles and writable layers are removed (what an
 * interrupted CreateContainer left). */
void crid_containers_adopt_or_remove_unknown(struct crid_runtime *rt);

#endif
