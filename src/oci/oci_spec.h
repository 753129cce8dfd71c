/* The OCI runtime configuration (config.json) of a container: built from the
 * image's config, the CRI ContainerConfig and the pod's namespaces and files.
 * Produces JSON and runs nothing (the caller resolves user names from the
 * image's /etc/passwd beforehand); it only looks at the host for what the
 * runtime needs to know about it: config devices (stat), a privileged
 * container's /dev, whether a hugetlb controller exists, crid's own
 * capabilities and RLIMIT_NOFILE. */
#ifndef CRID_OCI_OCI_SPEC_H
#define CRID_OCI_OCI_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "runtime/v1/api.pb-c.h"

/* What the image's config says (config.Entrypoint, Cmd, Env, WorkingDir,
 * User, StopSignal). Borrowed strings. */
struct crid_image_defaults {
	char **entrypoint;
	size_t n_entrypoint;
	char **cmd;
	size_t n_cmd;
	char **env; /* "KEY=VALUE" */
	size_t n_env;
	const char *working_dir;
	const char *user; /* "", "1000", "1000:1000", "app", "app:grp" */
};

/* A user resolved to numbers. */
struct crid_user_ids {
	uint32_t uid;
	uint32_t gid;
	uint32_t *additional_gids;
	size_t n_additional_gids;
};

/* Namespace paths of the pod, NULL for "share the host's" — except pid:
 * NULL there means "a new PID namespace for this container". */
struct crid_pod_namespaces {
	const char *network; /* e.g. "<run_root>/pods/<id>/ns/net" */
	const char *ipc;
	const char *uts;
	const char *pid; /* the pod's infra process ns, when the pod shares one */
	bool host_network, host_ipc, host_pid;
};

struct crid_spec_input {
	const char *container_id;
	const char *rootfs;    /* absolute path of the mounted root file system */
	bool readonly_rootfs;
	const char *hostname;  /* the pod's */
	const char *hosts_file;	      /* bind-mounted at /etc/hosts (may be NULL) */
	const char *resolv_conf_file; /* at /etc/resolv.conf (may be NULL) */
	const char *hostname_file;    /* at /etc/hostname (may be NULL) */
	const char *shm_path;	      /* bind-mounted at /dev/shm; NULL: a private tmpfs */
	const char *cgroups_path;     /* "/kubepods/pod<uid>/<id>" (cgroupfs) */
	struct crid_pod_namespaces ns;
	const struct crid_image_defaults *image;
	const Runtime__V1__ContainerConfig *config;
	const Runtime__V1__LinuxPodSandboxConfig *pod_linux; /* may be NULL */
	const struct crid_user_ids *user; /* resolved by the caller */
	/* Masked and read-only paths, capabilities: defaults unless privileged. */
};

/* The process arguments under Docker's rules: config command overrides
 * the image entrypoint, config args override the image cmd; with a
 * command and no args, the image cmd is dropped. Empty result is
 * INVALID_ARGUMENT ("no command given and the image has none").
 * *argv is one allocation (the NULL-terminated array and the strings):
 * free(*argv) releases it. */
int crid_spec_process_args(const struct crid_image_defaults *image, const Runtime__V1__ContainerConfig *config,
			   char ***argv, size_t *argc, struct crid_err *err);

/* Builds config.json. *out is a new reference. */
int crid_spec_build(const struct crid_spec_input *in, json_t **out, struct crid_err *err);

/* Turns LinuxContainerResources into the OCI linux.resources object (for
 * create and for UpdateContainerResources). New reference. */
int crid_spec_resources(const Runtime__V1__LinuxContainerResources *r, json_t **out, struct crid_err *err);

/* Parses a user spec ("1000", "1000:1000", "app", "app:grp") against the
 * contents of the image's /etc/passwd and /etc/group (either may be NULL
 * when the file does not exist). Names not found are NOT_FOUND naming them;
 * numbers are taken as they are (gid from passwd when only a uid is
 * given, else 0). Supplemental groups: those /etc/group lists the user in,
 * plus config's supplemental_groups (passed by the caller). */
int crid_spec_resolve_user(const char *user, const char *passwd, const char *group, struct crid_user_ids *out,
			   struct crid_err *err);
void crid_user_ids_free(struct crid_user_ids *u);

/* The parts crid_spec_build is made of (oci_spec_*.c), exported for tests
 * and for callers that need one piece. */

/* The capabilities crid's own process holds (permitted set), one bit per
 * capability number; the runtime cannot grant a container more. */
uint64_t crid_spec_held_capabilities(void);
/* "CAP_CHOWN" for 0, ... up to CAP_CHECKPOINT_RESTORE (40); NULL beyond. */
const char *crid_spec_capability_name(int cap);
/* process.capabilities for a security context (NULL: the defaults), never
 * more than held. A capability added by name that crid does not hold is
 * FAILED_PRECONDITION; an unknown name is INVALID_ARGUMENT. */
int crid_spec_capabilities(const Runtime__V1__LinuxContainerSecurityContext *sc, uint64_t held, json_t **out,
			   struct crid_err *err);

/* The mounts array; *rootfs_propagation is "rshared", "rslave" or NULL
 * (the runtime's default), as the config's bind mounts need. */
int crid_spec_mounts(const struct crid_spec_input *in, bool privileged, bool readonly, json_t **mounts,
		     const char **rootfs_propagation, struct crid_err *err);

/* linux.maskedPaths and linux.readonlyPaths (both empty when privileged). */
int crid_spec_masked_paths(const Runtime__V1__LinuxContainerSecurityContext *sc, json_t **masked,
			   json_t **readonly, struct crid_err *err);

/* linux.devices and the device cgroup rules (linux.resources.devices).
 * Not pure: stats the config's host devices and, when privileged, walks
 * the host's /dev (as containerd does). */
int crid_spec_devices(const Runtime__V1__ContainerConfig *config, bool privileged, json_t **devices, json_t **rules,
		      struct crid_err *err);

#endif
