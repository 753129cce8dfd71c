/* Calls to an OCI runtime binary (crun, runc, runsc) for one handler: start,
 * kill, delete, state, update, and exec with captured output for ExecSync.
 * "create" is the shim's. Each call is a short-lived child process; its
 * stderr becomes the error message. Never touches crid's records. */
#ifndef CRID_OCI_OCI_RUNTIME_H
#define CRID_OCI_OCI_RUNTIME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "config/config.h"

/* Global flags of one call at most: the handler's, and the pod's. */
#define CRID_OCI_MAX_ARGS 20

struct crid_oci_runtime {
	const char *handler; /* the CRI runtime handler name, for messages */
	const char *path;    /* the binary */
	const char *root;    /* --root: the runtime's state directory */
	/* Global flags after --root, before the command: the handler's
	 * runtime_args, then what the pod needs of a sandbox-per-pod runtime
	 * (gVisor's --network=host for a pod on the node's network). */
	const char *args[CRID_OCI_MAX_ARGS + 1]; /* NULL-terminated */
	size_t n_args;
};

/* The runtime of handler h, its state kept in the handler's root, else
 * under <run_root>/runtime/<name> (written into root_buf, which out points
 * at). host_network: the pod uses the node's network. */
void crid_oci_runtime_for(const char *run_root, const struct crid_runtime_handler *h, char *root_buf, size_t size,
			  struct crid_oci_runtime *out);
void crid_oci_runtime_for_pod(const char *run_root, const struct crid_runtime_handler *h, bool host_network,
			      char *root_buf, size_t size, struct crid_oci_runtime *out);

int crid_oci_start(const struct crid_oci_runtime *rt, const char *id, struct crid_err *err);

/* Sends sig to the container's init (all its processes with all). */
int crid_oci_kill(const struct crid_oci_runtime *rt, const char *id, int sig, int all, struct crid_err *err);

/* delete --force; a container the runtime does not know is success. */
int crid_oci_delete(const struct crid_oci_runtime *rt, const char *id, struct crid_err *err);

/* "state": the runtime's JSON; NOT_FOUND when it does not know id. */
int crid_oci_state(const struct crid_oci_runtime *rt, const char *id, json_t **state, struct crid_err *err);

/* "features" (runc 1.1 and later): what the runtime supports, as JSON.
 * FAILED_PRECONDITION when it has no such command (crun 1.8). */
int crid_oci_features(const struct crid_oci_runtime *rt, json_t **features, struct crid_err *err);

/* "--version": its first line ("crun version 1.8.1"), into buf. */
int crid_oci_version(const struct crid_oci_runtime *rt, char *buf, size_t size, struct crid_err *err);

/* "events --stats" (gVisor): a container's CPU time and memory as the
 * sandbox's kernel counts them, for a container that has no cgroup of its
 * own. NOT_FOUND when the runtime does not know id. */
int crid_oci_stats(const struct crid_oci_runtime *rt, const char *id, uint64_t *cpu_ns, uint64_t *mem_bytes,
		   struct crid_err *err);

/* "update --resources -" with the OCI linux.resources object. */
int crid_oci_update(const struct crid_oci_runtime *rt, const char *id, json_t *resources, struct crid_err *err);

struct crid_exec_result {
	int exit_code;
	char *out; /* malloc'd, NUL-terminated, at most max_output bytes */
	size_t out_len;
	char *errout;
	size_t err_len;
	int timed_out;
};

/* Runs process (an OCI process object) in the container and waits, at most
 * until deadline_ns (CLOCK_MONOTONIC; 0: no limit), when the process is
 * killed and timed_out set. Output beyond max_output per stream is dropped. */
int crid_oci_exec_sync(const struct crid_oci_runtime *rt, const char *id, json_t *process, int64_t deadline_ns,
		       size_t max_output, const char *tmp_dir, struct crid_exec_result *res, struct crid_err *err);

void crid_exec_result_free(struct crid_exec_result *r);

/* Starts "<runtime> --root ROOT [ARGS] exec --process PROCESS --pid-file
 * PID_FILE [--tty --console-socket CONSOLE] ID" in a session of its own with
 * the given stdio fds (-1: /dev/null), without waiting: the runtime stays
 * until the process exits and exits with its status. runtime_args: the
 * global flags (NULL-terminated; NULL: none). */
int crid_oci_exec_spawn(const char *runtime_path, const char *runtime_root, char *const *runtime_args,
			const char *id, const char *process_path,
			const char *pid_path, const char *console_path, int in_fd, int out_fd, int err_fd, pid_t *pid,
			struct crid_err *err);

#endif
