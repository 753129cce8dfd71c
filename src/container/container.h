/* Containers: CreateContainer, StartContainer, StopContainer,
 * RemoveContainer (containers.c); their bundles (container_bundle.c) and
 * mounts (container_mounts.c); ContainerStatus, ListContainers,
 * StreamContainers, ExecSync, ReopenContainerLog, UpdateContainerResources
 * (container_queries.c); Exec and Attach (container_streams.c);
 * ContainerStats, ListContainerStats and StreamContainerStats
 * (container_stats.c); learning exits from crid-shim's exit files
 * (exit_watch.c); recovery at start-up (container_recover.c). Each
 * container's process is run by the OCI runtime under its own crid-shim. */
#ifndef CRID_CONTAINER_CONTAINER_H
#define CRID_CONTAINER_CONTAINER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "oci/oci_runtime.h"
#include "oci/oci_spec.h"
#include "rpc/methods.h"
#include "runtime/objects.h"
#include "store/store.h"

int crid_containers_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);
int crid_container_queries_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);
int crid_container_stats_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);

/* ---- resource use (container_stats.c), also for the pod's stats ---- */

/* One container's use now: its cgroup, CPU rate, writable layer. */
struct crid_container_usage {
	enum crid_ctr_state state;
	int64_t started_at;
	struct crid_cgroup_sample cg;
	bool has_rate;
	uint64_t nano_cores;
	bool has_fs;
	struct crid_fs_usage fs;
};

void crid_container_usage_read(struct crid_runtime *rt, struct crid_container *c, struct crid_container_usage *u);

/* The CRI messages of usage; they borrow from the sample and c. */
struct crid_cpu_msg {
	Runtime__V1__CpuUsage cpu;
	Runtime__V1__UInt64Value total, rate;
};

struct crid_memory_msg {
	Runtime__V1__MemoryUsage mem;
	Runtime__V1__UInt64Value working_set, available, usage, rss, faults, major_faults;
};

struct crid_container_stats_msg {
	Runtime__V1__ContainerStats stats;
	Runtime__V1__ContainerAttributes attrs;
	struct crid_cpu_msg cpu;
	struct crid_memory_msg mem;
	Runtime__V1__SwapUsage swap;
	Runtime__V1__UInt64Value swap_usage, swap_available;
	Runtime__V1__FilesystemUsage fs;
	Runtime__V1__FilesystemIdentifier fs_id;
	Runtime__V1__UInt64Value fs_bytes, fs_inodes;
};

void crid_cpu_usage_fill(const struct crid_cgroup_sample *s, bool has_rate, uint64_t nano_cores,
			 struct crid_cpu_msg *m);
void crid_memory_usage_fill(const struct crid_cgroup_sample *s, struct crid_memory_msg *m);
void crid_container_stats_fill(struct crid_runtime *rt, struct crid_container *c,
			       const struct crid_container_usage *u, struct crid_container_stats_msg *m);

/* The containers (a reference taken on each) whose ID and pod ID start
 * with id and pod_id (NULL or "": any) and whose labels match; exited ones
 * only when with_exited. Never one still being created. */
int crid_containers_matching(struct crid_runtime *rt, const char *id, const char *pod_id,
			     Runtime__V1__ContainerStatsFilter__LabelSelectorEntry **want, size_t n_selector,
			     bool with_exited, struct crid_container ***out, size_t *n, struct crid_err *err);
/* Exec and Attach (container_streams.c): URLs on the streaming server. */
int crid_container_streams_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err);

/* Stops every container of a pod (StopPodSandbox). */
int crid_containers_stop_pod(struct crid_runtime *rt, const char *pod_id, struct crid_err *err);
/* Removes every container of a pod (RemovePodSandbox). */
int crid_containers_remove_pod(struct crid_runtime *rt, const char *pod_id, struct crid_err *err);

/* The OCI runtime's calls for c (its handler's root and flags, and
 * what its pod needs of them), root_buf holding the root. */
void crid_container_oci(const struct crid_runtime *rt, const struct crid_container *c, char *root_buf, size_t size,
			struct crid_oci_runtime *out);

/* What crid-shim is started with (shim/protocol.h): a container's, or a
 * pod's sandbox container's. */
struct crid_shim_launch {
	const char *id;	 /* the runtime's container ID */
	const char *dir; /* bundle and state directory */
	const struct crid_oci_runtime *oci;
	const char *log_path; /* NULL or "": none */
	const char *log_dir;  /* the pod's log directory, with a log_path */
	bool stdin_open, stdin_once, tty;
	bool subcontainer; /* joins the pod's sandbox */
};

/* Starts crid-shim and waits for its answer: "<runtime> create" done,
 * *shim_pid and *pid (the container's process as the runtime said) set. */
int crid_shim_start(const char *shim_path, const struct crid_shim_launch *l, pid_t *shim_pid, pid_t *pid,
		    struct crid_err *err);

/* The exit watcher: learns from the shims' exit files. */
int crid_exit_watch_start(struct crid_runtime *rt, struct crid_err *err);
int crid_exit_watch_add(struct crid_runtime *rt, struct crid_container *c, struct crid_err *err);
void crid_exit_watch_stop(struct crid_runtime *rt);

/* overlayfs' limit on the layers of one mount. */
#define CRID_MAX_LAYERS 500

/* The OCI runtime's error when c's process never ran (its init's exec
 * failed and said so as the log's only record), malloc'd; else NULL. */
char *crid_container_start_failure(const struct crid_container *c);

/* Reads an exit file, if there is one, into c (lock held); the exit is
 * published as a CONTAINER_STOPPED event. */
bool crid_container_collect_exit_locked(struct crid_runtime *rt, struct crid_container *c);

/* Publishes c's CONTAINER_STOPPED event unless it went out already (lock
 * held, c exited). */
void crid_container_publish_stop_locked(struct crid_runtime *rt, struct crid_container *c);

/* Has the writable layer walker measure c's upper directory. */
void crid_container_measure_layer(struct crid_runtime *rt, struct crid_container *c);

/* Start-up: puts a recorded container back in the table, checked against
 * its shim and exit file. A record that cannot be read is logged and left. */
void crid_container_recover(struct crid_runtime *rt, const struct crid_object_record *rec);

/* Start-up, after recovery: containers no record names whose writable
 * layer directory holds a record copy are adopted again (crid.db lost
 * them); the other bundles and writable layers are removed (what an
 * interrupted CreateContainer left). */
void crid_containers_adopt_or_remove_unknown(struct crid_runtime *rt);

/* The image's config as a container needs it (container_bundle.c): its
 * entrypoint, cmd, env, working directory, user and stop signal, borrowed
 * from doc. */
struct crid_container_image {
	json_t *doc;
	struct crid_image_defaults d;
	const char *stop_signal;
};
int crid_container_image_load(const char *config, size_t len, struct crid_container_image *h, struct crid_err *err);
void crid_container_image_clear(struct crid_container_image *h);
/* The signal StopContainer sends: the config's, else the image's, else
 * SIGTERM. */
int crid_container_stop_signal(const Runtime__V1__ContainerConfig *config, const char *image_signal);
/* The pod's user namespace (NULL: none), checked against what the
 * container config echoes of it. */
int crid_container_userns(const struct crid_pod *pod, const Runtime__V1__ContainerConfig *cfg,
			  const Runtime__V1__UserNamespace **out, struct crid_err *err);
/* The host ID that ID 0 of the mappings maps to. */
uint32_t crid_container_userns_root(Runtime__V1__IDMapping *const *m, size_t n);
/* Writes <dir>/config.json and keeps c->process and c->resources. sources:
 * the staged mount sources (crid_container_stage_mounts); cdi_edits: the
 * resolved edits of the container's CDI devices (NULL: none). */
int crid_container_write_bundle(struct crid_runtime *rt, struct crid_container *c, struct crid_pod *pod,
				const struct crid_container_image *img, const struct crid_spec_host *host,
				const Runtime__V1__UserNamespace *userns, char *const *sources, const json_t *cdi_edits,
				struct crid_err *err);

/* The container's mounts (container_mounts.c). The root file system at
 * c->rootfs: the image's layers under a private writable layer in
 * c->upper. userns_fd is the pod's user namespace, -1 for none;
 * root_uid/root_gid its root on the host. */
int crid_container_mount_rootfs(struct crid_container *c, const struct crid_image_use *img, int userns_fd,
				uid_t root_uid, gid_t root_gid, struct crid_err *err);
/* Stages every config mount's source under <dir>/mounts; *sources has one
 * path per config mount (NULL for one the spec's checks will refuse). */
int crid_container_stage_mounts(struct crid_runtime *rt, struct crid_container *c, int userns_fd, char ***sources,
				struct crid_err *err);
void crid_container_mount_sources_free(char **sources, size_t n);
/* Detaches every mount below dir (a container's directory). */
int crid_container_unmount_all(const char *dir, struct crid_err *err);

#endif
