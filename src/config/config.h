/* crid's configuration: built-in defaults, then /etc/crid/crid.yaml, then the
 * *.yaml drop-ins in /etc/crid/crid.d in name order, then command-line flags,
 * each overriding the one before. Owns parsing and validation only; it never
 * acts on what it reads. */
#ifndef CRID_CONFIG_H
#define CRID_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/error.h"
#include "common/log.h"

#define CRID_DEFAULT_CONFIG_FILE "/etc/crid/crid.yaml"
#define CRID_DEFAULT_CONFIG_DIR "/etc/crid/crid.d"
#define CRID_DEFAULT_SOCKET "/run/crid/crid.sock"
#define CRID_DEFAULT_RUN_ROOT "/run/crid"
#define CRID_DEFAULT_STATE_ROOT "/var/lib/crid"
#define CRID_DEFAULT_CNI_CONF_DIR "/etc/cni/net.d"
#define CRID_DEFAULT_CNI_BIN_DIRS "/opt/cni/bin:/usr/lib/cni"
#define CRID_DEFAULT_CDI_SPEC_DIRS "/etc/cdi:/var/run/cdi"

enum crid_cgroup_driver {
	CRID_CGROUP_CGROUPFS = 0,
	CRID_CGROUP_SYSTEMD,
};

/* A runtime handler: the name a RunPodSandboxRequest.runtime_handler names,
 * and the OCI runtime binary that runs its containers. */
struct crid_runtime_handler {
	char *name;
	char *path; /* absolute, or a bare name looked up in PATH when used */
	/* The runtime runs one sandbox per pod (gVisor, VM runtimes): the pod
	 * gets a sandbox container of its own, and its containers join it.
	 * Defaults to true for a binary named runsc. */
	bool sandbox_per_pod;
	bool sandbox_per_pod_set; /* given in the configuration, not defaulted */
	char **runtime_args; /* global flags before each runtime command */
	size_t n_runtime_args;
	char *root; /* the runtime's state directory (--root); NULL: <run_root>/runtime/<name> */
};

/* A mirror of a registry, tried before the registry itself. */
struct crid_registry_mirror {
	char *url;     /* "https://mirror.local:5443" (scheme, host, optional path) */
	char *ca_file; /* NULL when none */
};

/* How crid reaches one registry. */
struct crid_registry_config {
	char *host;    /* as in image names: "docker.io", "localhost:5000" */
	bool insecure; /* plain HTTP to the registry itself */
	char *ca_file; /* NULL when none */
	struct crid_registry_mirror *mirrors; /* in the order they are tried */
	size_t n_mirrors;
	bool mirrors_only; /* never contact the registry itself; n_mirrors > 0 */
};

struct crid_config {
	char *config_file; /* main file read, NULL when none existed */
	char *config_dir;  /* drop-in directory */

	char *socket_path;
	char *run_root;
	char *state_root;

	enum crid_log_level log_level;
	enum crid_log_format log_format;

	enum crid_cgroup_driver cgroup_driver;

	char *default_runtime; /* name of one of runtimes[] */
	struct crid_runtime_handler *runtimes;
	size_t n_runtimes;

	size_t grpc_max_recv_bytes; /* largest request message accepted */
	size_t grpc_max_send_bytes; /* largest response message sent */
	size_t grpc_max_pending_bytes; /* all unfinished requests' buffers together */
	unsigned grpc_request_timeout_s; /* a request must end this soon after it began */
	unsigned grpc_max_connections;   /* then the longest-idle connection makes room */
	unsigned grpc_preface_timeout_s; /* a connection must speak HTTP/2 this soon */
	unsigned grpc_idle_timeout_s;    /* a connection without calls is closed after this */
	unsigned worker_threads;    /* most handler threads at once */
	unsigned shutdown_grace_s;  /* how long SIGTERM waits for in-flight calls */

	bool seccomp_default; /* RuntimeDefault for containers that name no seccomp profile */

	unsigned max_concurrent_pulls;     /* images pulled at once; others wait their turn */
	unsigned max_concurrent_downloads; /* layers of one image downloaded at once */
	unsigned pull_progress_timeout_s;  /* a transfer stalled this long is aborted */
	unsigned pull_min_bytes_per_s;     /* a transfer slower than this ... */
	unsigned pull_rate_window_s;       /* ... over this window is aborted (0: never) */
	size_t state_free_reserve_bytes;   /* a pull stops before the state file system has less free */
	char **pinned_images; /* references as written, no duplicates */
	size_t n_pinned_images;
	struct crid_registry_config *registries; /* hosts unique, ignoring case */
	size_t n_registries;

	char *cni_conf_dir;	       /* network configurations: the first valid file wins */
	char **cni_bin_dirs;	       /* where plugins are looked for, in order; never empty */
	size_t n_cni_bin_dirs;
	unsigned cni_plugin_timeout_s; /* one plugin call longer than this is killed */
	char **cdi_spec_dirs;	       /* CDI specs; a later directory overrides; empty: CDI off */
	size_t n_cdi_spec_dirs;
	unsigned event_queue_length;	  /* events queued per slow subscriber */
	unsigned layer_usage_period_s;	  /* writable layers measured this often */
	unsigned layer_usage_files_per_s; /* the walker's pace */
	char *metrics_address;		  /* "" when the metrics endpoint is off */
	/* The exec/attach/port-forward server. */
	char *stream_address;	       /* "127.0.0.1:0": port 0 picks a free one */
	char *stream_tls_cert;	       /* PEM files; both or neither (NULL: plain HTTP) */
	char *stream_tls_key;
	unsigned stream_idle_timeout_s; /* a session with no traffic this long is closed */
	unsigned stream_max_sessions;   /* streaming connections served at once */
};

enum crid_config_outcome {
	CRID_CONFIG_RUN = 0,  /* configuration loaded: run the daemon */
	CRID_CONFIG_EXIT = 1, /* --help or --version was printed: exit 0 */
};

/* Loads the configuration from files and argv. Returns CRID_CONFIG_RUN or
 * CRID_CONFIG_EXIT, or a negative errno with err->msg naming the file, line
 * and reason ("/etc/crid/crid.yaml:7: log_level: \"loud\" is not one of
 * debug, info, warn, error") or the flag at fault. */
int crid_config_load(struct crid_config *cfg, int argc, char **argv, struct crid_err *err);

void crid_config_free(struct crid_config *cfg);

/* The handler a request's runtime_handler names; "" means the default.
 * NULL when there is no such handler. */
const struct crid_runtime_handler *crid_config_find_runtime(const struct crid_config *cfg,
							     const char *name);

/* The settings of the registry host names ("docker.io", "localhost:5000";
 * compared ignoring case, as host names are). NULL when there are none. */
const struct crid_registry_config *crid_config_find_registry(const struct crid_config *cfg,
							      const char *host);

/* The effective configuration as a JSON object (Status verbose info).
 * New reference, NULL on out of memory. */
json_t *crid_config_to_json(const struct crid_config *cfg);

/* Handler options (config.c): one sandbox per pod, extra runtime flags
 * (each starting with "-"), the runtime's root (an absolute path). */
int crid_config_runtime_set_sandbox(struct crid_config *cfg, const char *name, bool sandbox_per_pod,
				    struct crid_err *err);
int crid_config_runtime_set_args(struct crid_config *cfg, const char *name, char *const *args, size_t n,
				 struct crid_err *err);
int crid_config_runtime_set_root(struct crid_config *cfg, const char *name, const char *root, struct crid_err *err);

const char *crid_cgroup_driver_name(enum crid_cgroup_driver d);

/* Splits "127.0.0.1:10010" or "[::1]:0" (an IP literal and a port 0-65535)
 * into host (without brackets; NULL: not wanted) and port (NULL: same).
 * INVALID_ARGUMENT with only the reason in err->msg. */
int crid_config_parse_address(const char *value, char *host, size_t host_size, unsigned *port,
			      struct crid_err *err);

#endif
