/* Private to src/network (and its unit test): the pieces network.c puts
 * together. Network configuration lists (cni_config.c), the watch on their
 * directory (cni_watch.c), plugin calls (cni_exec.c), what a pod gives its
 * plugins (cni_args.c), results (cni_result.c), attachments in the store
 * (cni_cache.c). None of them runs a plugin but cni_exec.c. */
#ifndef CRID_NETWORK_CNI_H
#define CRID_NETWORK_CNI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/stoppable_thread.h"
#include "network/network.h"

#define CRID_CNI_IFNAME "eth0"
/* Bounds on what is read from disk and from plugins. */
#define CRID_CNI_CONF_MAX (1u << 20)
#define CRID_CNI_OUTPUT_MAX (1u << 20)
#define CRID_CNI_STDERR_MAX (16u << 10)
#define CRID_CNI_PLUGINS_MAX 64

/* ---- network configuration lists (cni_config.c) ---- */

/* A list as plugins get it: {cniVersion, name, plugins: [...]} (a single
 * plugin's .conf wrapped into one), checked. Immutable, shared. */
struct crid_cni_conflist {
	atomic_int refs;
	char *file;	    /* where it was read from, "" for a recorded one */
	const char *name;    /* in list */
	const char *version; /* cniVersion, in list */
	bool disable_check;
	size_t n_plugins;
	json_t *list;
};

/* The versions crid speaks: 1.0.0, 0.4.0, 0.3.1, 0.3.0. */
bool crid_cni_version_supported(const char *v);
/* strcmp for "major.minor.patch" versions (both supported ones). */
int crid_cni_version_cmp(const char *a, const char *b);

/* Checks a list (json: a .conflist, or with single a .conf's plugin) and
 * makes a conflist of it. INVALID_ARGUMENT with the reason, naming the
 * field ("plugins[1].type: ..."). */
int crid_cni_conflist_new(const char *file, json_t *json, bool single, struct crid_cni_conflist **out,
			  struct crid_err *err);
/* Reads and checks one file (.conflist, .conf or .json). */
int crid_cni_conflist_read(int dirfd, const char *dir, const char *name, struct crid_cni_conflist **out,
			   struct crid_err *err);
/* The lexically first valid file of dir. On failure *out is NULL and why
 * says what is wrong (missing directory, no file, the first file's fault). */
void crid_cni_conflist_load_dir(const char *dir, struct crid_cni_conflist **out, char *why, size_t why_len);

struct crid_cni_conflist *crid_cni_conflist_ref(struct crid_cni_conflist *l);
void crid_cni_conflist_unref(struct crid_cni_conflist *l);
/* The type of plugin i. */
const char *crid_cni_plugin_type(const struct crid_cni_conflist *l, size_t i);

/* ---- plugin calls (cni_exec.c) ---- */

struct crid_cni_exec {
	char *const *bin_dirs;
	size_t n_bin_dirs;
	char *cni_path; /* bin_dirs joined with ':' */
	unsigned timeout_s;
};

struct crid_cni_invocation {
	const char *command;	  /* "ADD", "DEL", "CHECK" */
	const char *container_id;
	const char *netns;	  /* "" when there is none any more (DEL) */
	const char *ifname;
	const char *args;	  /* CNI_ARGS */
};

/* Runs plugin type with conf on its stdin. *result is its parsed answer,
 * NULL when it printed nothing (DEL, CHECK). Errors: FAILED_PRECONDITION
 * with errnum ENOENT when no bin dir holds the plugin, DEADLINE_EXCEEDED
 * when it outlived the timeout (it and what it started are killed),
 * UNKNOWN with the plugin's error (its JSON msg and details, its stderr). */
int crid_cni_exec_plugin(const struct crid_cni_exec *x, const char *type, const struct crid_cni_invocation *inv,
			 const json_t *conf, json_t **result, struct crid_err *err);

/* The message of a plugin's error output: "msg: details (code N)", or a
 * short excerpt of out when it is not a CNI error. */
void crid_cni_error_text(const char *out, size_t len, char *buf, size_t size);

/* Kills plugins left running for one of the containers ids (CNI_COMMAND
 * and CNI_CONTAINERID in their environment: a crid that crashed started
 * them), and waits a moment for them to go. */
void crid_cni_kill_orphans(const char *const *ids, size_t n);

/* ---- what a pod gives its plugins (cni_args.c) ---- */

/* CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;
 * K8S_POD_INFRA_CONTAINER_ID=..;K8S_POD_UID=..". INVALID_ARGUMENT for a
 * metadata field that cannot be passed (';', '=', control characters). */
int crid_cni_pod_args(const Runtime__V1__PodSandboxConfig *c, const char *pod_id, char **out, struct crid_err *err);

/* The capability arguments ("runtimeConfig") of a pod: portMappings (those
 * with a host port), bandwidth (from the kubernetes.io/ingress-bandwidth
 * and egress-bandwidth annotations), ipRanges (one set per pod CIDR) and
 * dns. INVALID_ARGUMENT naming the field or annotation at fault. */
int crid_cni_runtime_config(const Runtime__V1__PodSandboxConfig *c, const char *pod_cidr, json_t **out,
			    struct crid_err *err);

/* A Kubernetes quantity ("10M", "1.5Gi", "100k") as bits per second, as
 * the kubelet reads the bandwidth annotations: 1k to 1P. */
int crid_cni_parse_bandwidth(const char *s, uint64_t *bps);

/* What plugin i is given: its own configuration with the list's name and
 * cniVersion, the runtimeConfig entries it declares capabilities for, and
 * prevResult when given. New reference, NULL on out of memory. */
json_t *crid_cni_plugin_conf(const struct crid_cni_conflist *l, size_t i, const json_t *runtime_config,
			     const json_t *prev_result);

/* ---- results (cni_result.c) ---- */

/* The addresses of result on ifname (or on no named interface), loopback
 * addresses left out, IPv4 ones first; without prefix lengths. */
int crid_cni_result_ips(const json_t *result, const char *ifname, char ***ips, size_t *n, struct crid_err *err);
/* Whether a plugin's answer is a result at all (an object, and for
 * 0.3.0 and later "ips" and "interfaces" lists when given). */
int crid_cni_result_check(const json_t *result, struct crid_err *err);

/* ---- the network and its attachments (network.c, cni_cache.c) ---- */

struct crid_network_attachment {
	char pod_id[65];
	char *netns;
	char *args;
	struct crid_cni_conflist *conflist; /* the list ADD used, kept for DEL */
	json_t *runtime_config;
	json_t *result; /* NULL until ADD finished */
	bool added;	/* the record says ADD finished */
	bool detached;
	char **ips;
	size_t n_ips;
};

struct crid_network {
	const struct crid_config *cfg;
	struct crid_store *db;
	struct crid_cni_exec exec;
	pthread_mutex_t lock;		     /* current, why */
	struct crid_cni_conflist *current;   /* NULL when none is valid */
	char why[512];
	/* the watch (cni_watch.c) */
	struct crid_stoppable_thread watcher;
	/* attachments read at start, not claimed yet */
	struct crid_network_attachment **pending;
	size_t n_pending;
};

/* Reloads the directory's configuration into net (under its lock). */
void crid_cni_reload(struct crid_network *net);
/* Starts and stops the thread that reloads on every change of the
 * directory (inotify). */
int crid_cni_watch_start(struct crid_network *net, struct crid_err *err);
void crid_cni_watch_stop(struct crid_network *net);

/* The attachment's record: written before ADD runs (added false) and after
 * it finished, removed once DEL succeeded. */
int crid_cni_cache_put(struct crid_store *db, const struct crid_network_attachment *a, struct crid_err *err);
int crid_cni_cache_forget(struct crid_store *db, const char *pod_id, struct crid_err *err);
/* Every recorded attachment (start-up). Unreadable records are logged and
 * skipped. */
int crid_cni_cache_load(struct crid_store *db, struct crid_network_attachment ***out, size_t *n,
			struct crid_err *err);

#endif
