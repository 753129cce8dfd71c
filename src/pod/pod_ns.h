/* A pod's shared kernel state without any infra container: its network, IPC
 * and UTS namespaces, made by a short-lived child and pinned by bind mounts
 * under the pod's run directory; its /etc/hosts, /etc/resolv.conf and
 * /etc/hostname files; its /dev/shm tmpfs; and, only for a pod whose
 * containers share one PID namespace, crid's own tiny init as the holder of
 * that namespace. Removal needs nothing but the directory, so it also
 * cleans up after a crash. */
#ifndef CRID_POD_POD_NS_H
#define CRID_POD_POD_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/idmap.h"
#include "runtime/v1/api.pb-c.h"

/* The argv[1] with which crid re-executes itself as a pod's init. */
#define CRID_POD_INIT_ARG "--internal-pod-init"

struct crid_pod_ns_options {
	const char *dir;      /* <run_root>/pods/<id>: exists, empty, 0700 */
	const char *hostname; /* may be empty: then the pod ID's first 12 characters? caller decides */
	bool host_network, host_ipc, host_uts;
	bool shared_pid;      /* start the pod init in a new PID namespace */
	bool host_pid;        /* (shared_pid is then ignored) */
	/* Sysctls to set inside the new namespaces ("net.ipv4.ip_forward" ->
	 * "1"); one in a namespace the pod shares with the host is refused. */
	char **sysctl_keys, **sysctl_values;
	size_t n_sysctls;
	const Runtime__V1__DNSConfig *dns; /* NULL: a copy of the host's resolv.conf */
	uint64_t shm_size;		   /* bytes; 0 means 64 MiB */
	/* A user namespace with these mappings owns the pod's other
	 * namespaces (none of which may then be the host's); n_uids 0: none. */
	const struct crid_idmap *uids, *gids;
	size_t n_uids, n_gids;
};

struct crid_pod_ns {
	char *user_path; /* "<dir>/ns/user", NULL when the host's */
	char *net_path; /* "<dir>/ns/net", NULL when the host's */
	char *ipc_path;
	char *uts_path;
	char *hosts_path;    /* "<dir>/hosts" */
	char *resolv_path;   /* "<dir>/resolv.conf" */
	char *hostname_path; /* "<dir>/hostname" */
	char *shm_path;	     /* "<dir>/shm", a tmpfs mount */
	pid_t init_pid;	     /* the pod init, 0 when none */
	char *pid_ns_path;   /* "/proc/<init_pid>/ns/pid", NULL when none */
};

/* Creates everything in dir. On failure nothing is left mounted or
 * running (dir itself stays, empty). */
int crid_pod_ns_create(const struct crid_pod_ns_options *o, struct crid_pod_ns *out, struct crid_err *err);

/* Fills the paths of a pod created earlier (after a restart), from dir and
 * the init pid recorded then (0 for none). */
int crid_pod_ns_load(const char *dir, pid_t init_pid, struct crid_pod_ns *out, struct crid_err *err);

/* Stops the pod init (SIGKILL, reaped or waited for), if any. Idempotent. */
int crid_pod_ns_stop(struct crid_pod_ns *ns, struct crid_err *err);

/* Unmounts everything under dir (namespace pins, shm), kills a pod init
 * whose pid file is in dir, removes dir. Idempotent: a missing dir is
 * success. */
int crid_pod_ns_remove(const char *dir, struct crid_err *err);

void crid_pod_ns_free(struct crid_pod_ns *ns);

/* The pod init's main (crid re-executed with CRID_POD_INIT_ARG): PID 1 of
 * the pod's PID namespace; reaps every child, exits on SIGTERM/SIGINT. */
int crid_pod_init_main(int argc, char **argv);

/* ---- Shared by pod_ns*.c and pod_init.c only (and their unit test) ---- */

/* Checks a hostname for sethostname and /etc/hostname: at most 64 bytes of
 * letters, digits, '-', '.' and '_'. INVALID_ARGUMENT naming it. */
int crid_pod_ns_check_hostname(const char *hostname, struct crid_err *err);

/* Checks one sysctl key and returns its file ("/proc/sys/net/ipv4/...",
 * malloc'd): dots become slashes unless the key already uses slashes (as
 * sysctl(8) does, so that "net/ipv4/conf/eth0.1/forwarding" works). Only
 * namespaced sysctls are accepted, and each only when the pod has its own
 * namespace of that kind; otherwise INVALID_ARGUMENT naming the key. */
int crid_pod_ns_sysctl_path(const char *key, bool host_network, bool host_ipc, char **path, struct crid_err *err);

/* The resolv.conf for dns ("search", "nameserver" lines, "options"), or
 * *out NULL when dns is NULL or empty. INVALID_ARGUMENT naming the field
 * (dns_config.servers[1]) for a bad entry. */
int crid_pod_ns_render_resolv(const Runtime__V1__DNSConfig *dns, char **out, size_t *len, struct crid_err *err);

/* Writes hostname, hosts and resolv.conf (0644) into dirfd. */
int crid_pod_ns_write_files(int dirfd, const struct crid_pod_ns_options *o, struct crid_err *err);

/* Creates the new net/ipc/uts namespaces of o in a forked child, with the
 * hostname, loopback up and the sysctls (sysctl_paths[i] for o's key i),
 * and pins each on "<dir>/ns/<kind>"; with mappings, first a user namespace
 * ("<dir>/ns/user") that owns them. On failure nothing is mounted. */
int crid_pod_ns_pin(int dirfd, const struct crid_pod_ns_options *o, char *const *sysctl_paths, struct crid_err *err);

/* Starts the pod init for dir (which it records in "<dir>/init.pid"). */
int crid_pod_init_start(const char *dir, pid_t *pid, struct crid_err *err);

/* SIGKILLs the pod init pid of dir and waits for it to exit (reaping it
 * when it is our child), unless pid is no longer that init: its
 * /proc/<pid>/cmdline must be crid's CRID_POD_INIT_ARG dir. A pid that is
 * gone or now someone else's is success. */
int crid_pod_init_kill(pid_t pid, const char *dir, struct crid_err *err);

/* Whether pid is still the live pod init of dir (by its cmdline). */
bool crid_pod_init_running(pid_t pid, const char *dir);

#endif
