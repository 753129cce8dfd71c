/* The OCI runtime configuration (config.json) of a container: built from the
 * image's config, the CRI ContainerConfig and the pod's namespaces and files.
 * Produces JSON and runs nothing (the caller resolves user names from the
 * image's /etc/passwd beforehand and stages mount sources); it only looks at
 * the host for what the runtime needs to know about it: config devices
 * (stat), a privileged container's /dev, a Localhost seccomp profile's file,
 * RLIMIT_NOFILE, and what struct crid_spec_host describes (probed when the
 * caller gives none). */
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

/* What the host offers that config.json depends on. */
#define CRID_SPEC_LIST_MAX 1024
struct crid_spec_host {
	uint64_t held_caps;   /* crid's permitted set: never granted beyond */
	char arch[32];	      /* uname's machine: "x86_64", "aarch64" */
	int kernel[2];	      /* major, minor */
	bool hugetlb;	      /* a hugetlb cgroup controller is mounted */
	bool cgroup2;	      /* cgroup v2 only: unified resources apply as they are */
	bool swap;	      /* swap limits can be set (v1: memory.memsw.*) */
	bool apparmor;	      /* AppArmor is enabled */
	bool apparmor_default; /* crid's default AppArmor profile is loaded */
	bool selinux;	      /* SELinux is enabled */
	int oom_floor;	      /* the lowest oom_score_adj the runtime can set */
	char cpus[CRID_SPEC_LIST_MAX]; /* online CPUs ("0-3"), "" when unknown */
	char mems[CRID_SPEC_LIST_MAX]; /* online memory nodes, "" when unknown */
};

/* Fills h from the running kernel; what cannot be read is left permissive
 * (all capabilities, no lists). */
void crid_spec_host_probe(struct crid_spec_host *h);

/* The AppArmor profile RuntimeDefault means (packaging/apparmor/). */
#define CRID_APPARMOR_DEFAULT_PROFILE "crid-default"

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
	const struct crid_spec_host *host; /* NULL: probed */
	bool seccomp_default; /* no profile asked for means RuntimeDefault */
	/* The pod's user namespace (pinned at userns_path) and its mappings;
	 * NULL when the pod has none. */
	const char *userns_path;
	const Runtime__V1__UserNamespace *userns;
	/* Per config mount (same index): the source the runtime binds, staged
	 * by the caller (the host path resolved, an image volume); NULL entries
	 * and a NULL array mean the host path as given. */
	char *const *mount_sources;
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
 * create and for UpdateContainerResources), checked against host when
 * given (cpusets within the online CPUs and memory nodes, unified keys
 * translated for cgroup v1). New reference. */
int crid_spec_resources(const Runtime__V1__LinuxContainerResources *r, const struct crid_spec_host *host,
			json_t **out, struct crid_err *err);

/* The oom_score_adj the runtime is given for the one asked for: within
 * -1000..1000 (else INVALID_ARGUMENT), raised to host's floor when lower
 * (lowering it takes CAP_SYS_RESOURCE). *set is false when none was asked
 * for (0, or no resources). */
int crid_spec_oom_score_adj(const Runtime__V1__LinuxContainerResources *r, const struct crid_spec_host *host,
			    int64_t *adj, bool *set, struct crid_err *err);

/* ContainerStatus' resources from what the runtime was given: the OCI
 * linux.resources object and process.oomScoreAdj. Strings and arrays point
 * into res and into report, which must outlive the message. */
struct crid_resources_report {
	Runtime__V1__LinuxContainerResources linux;
	Runtime__V1__HugepageLimit hugepages[8], *hugepage_ptrs[8];
	Runtime__V1__LinuxContainerResources__UnifiedEntry unified[64], *unified_ptrs[64];
	char page_sizes[8][16];
};
void crid_spec_resources_report(json_t *res, json_t *process, struct crid_resources_report *out);

/* Parses a user spec ("1000", "1000:1000", "app", "app:grp") against the
 * contents of the image's /etc/passwd and /etc/group (either may be NULL
 * when the file does not exist). Names not found are NOT_FOUND naming them;
 * numbers are taken as they are (gid from passwd when only a uid is
 * given, else 0). Supplemental groups: those /etc/group lists the user in
 * (with or without an explicit group), plus config's supplemental_groups
 * (passed by the caller). */
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
/* The same as bit masks: the bounding (= effective, permitted) set and the
 * ambient (= inheritable) one. */
int crid_spec_capability_sets(const Runtime__V1__LinuxContainerSecurityContext *sc, uint64_t held, uint64_t *set,
			      uint64_t *ambient, struct crid_err *err);

/* linux.seccomp for the container, *out NULL for none (Unconfined, or
 * privileged): the security context's profile, else the deprecated
 * seccomp_profile_path, else RuntimeDefault when seccomp_default. caps is
 * the container's bounding set (the default profile allows what they
 * allow). INVALID_ARGUMENT for a bad profile name or Localhost file. */
int crid_spec_seccomp(const Runtime__V1__LinuxContainerSecurityContext *sc, bool seccomp_default, uint64_t caps,
		      const struct crid_spec_host *host, json_t **out, struct crid_err *err);
/* The default profile (RuntimeDefault) for caps on host. */
int crid_spec_seccomp_default(uint64_t caps, const struct crid_spec_host *host, json_t **out, struct crid_err *err);
/* A Localhost profile: the Docker/OCI JSON file at path (absolute), checked
 * and turned into linux.seccomp for caps on host (Docker's archMap,
 * includes and excludes resolved). INVALID_ARGUMENT naming the file and the
 * problem. */
int crid_spec_seccomp_load(const char *path, uint64_t caps, const struct crid_spec_host *host, json_t **out,
			   struct crid_err *err);

/* process.apparmorProfile and process.selinuxLabel / linux.mountLabel for
 * the security context, set on process and linux (either may be NULL to
 * check only). A profile the host cannot enforce is FAILED_PRECONDITION. */
int crid_spec_lsm(const Runtime__V1__LinuxContainerSecurityContext *sc, const struct crid_spec_host *host,
		  json_t *process, json_t *linux, struct crid_err *err);
/* The same checks for a pod's security context (RunPodSandbox). */
int crid_spec_pod_lsm_check(const Runtime__V1__LinuxSandboxSecurityContext *psc, const struct crid_spec_host *host,
			    struct crid_err *err);

/* The mounts array; *rootfs_propagation is "rshared", "rslave" or NULL
 * (the runtime's default), as the config's bind mounts need. */
int crid_spec_mounts(const struct crid_spec_input *in, bool privileged, bool readonly, json_t **mounts,
		     const char **rootfs_propagation, struct crid_err *err);

/* linux.maskedPaths and linux.readonlyPaths (both empty when privileged).
 * The kubelet's lists replace the defaults; both empty mean "not sent",
 * except in a user namespace (empty_unmasks), the only place the kubelet
 * lets procMount Unmasked be asked for, which it sends as two empty lists. */
int crid_spec_masked_paths(const Runtime__V1__LinuxContainerSecurityContext *sc, bool empty_unmasks, json_t **masked,
			   json_t **readonly, struct crid_err *err);

/* Bind mount options a Mount's mount_options may add. */
bool crid_spec_mount_option_ok(const char *opt);

/* linux.devices and the device cgroup rules (linux.resources.devices).
 * Not pure: stats the config's host devices and, when privileged, walks
 * the host's /dev (as containerd does). */
int crid_spec_devices(const Runtime__V1__ContainerConfig *config, bool privileged, json_t **devices, json_t **rules,
		      struct crid_err *err);

#endif
