/* crid's configuration: the settings table, defaults, the order files and
 * flags are applied in, and the accessors of config.h. The YAML reader is
 * config_yaml.c, the flag parser config_flags.c. */
#include "config/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <stdbool.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "config/config_internal.h"

/* bind() needs the socket path and its NUL to fit in sun_path. */
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

static const struct crid_setting settings[] = {
	{ "socket", "--socket", "PATH", CRID_DEFAULT_SOCKET, "the CRI gRPC unix socket to listen on",
	  CRID_SETTING_ABS_PATH, offsetof(struct crid_config, socket_path), 0, SOCKET_PATH_MAX },
	{ "run_root", "--run-root", "DIR", CRID_DEFAULT_RUN_ROOT,
	  "runtime state that must not survive a reboot", CRID_SETTING_ABS_PATH,
	  offsetof(struct crid_config, run_root), 0, 0 },
	{ "state_root", "--state-root", "DIR", CRID_DEFAULT_STATE_ROOT,
	  "persistent state: images, pods, containers", CRID_SETTING_ABS_PATH,
	  offsetof(struct crid_config, state_root), 0, 0 },
	{ "log_level", "--log-level", "LEVEL", "info", "least severe level logged: debug, info, warn, error",
	  CRID_SETTING_LOG_LEVEL, offsetof(struct crid_config, log_level), 0, 0 },
	{ "log_format", "--log-format", "FORMAT", "logfmt", "log line format: logfmt or json",
	  CRID_SETTING_LOG_FORMAT, offsetof(struct crid_config, log_format), 0, 0 },
	{ "cgroup_driver", "--cgroup-driver", "DRIVER", "cgroupfs",
	  "cgroup manager, the same as the kubelet's: cgroupfs or systemd", CRID_SETTING_CGROUP_DRIVER,
	  offsetof(struct crid_config, cgroup_driver), 0, 0 },
	{ "default_runtime", "--default-runtime", "NAME", "crun",
	  "runtime handler used when a pod names none", CRID_SETTING_NAME,
	  offsetof(struct crid_config, default_runtime), 0, 0 },
	{ "grpc_max_recv_bytes", "--grpc-max-recv-bytes", "N", "16777216",
	  "largest gRPC request accepted, in bytes", CRID_SETTING_SIZE,
	  offsetof(struct crid_config, grpc_max_recv_bytes), 1024, 1ULL << 30 },
	{ "grpc_max_send_bytes", "--grpc-max-send-bytes", "N", "16777216",
	  "largest gRPC response sent, in bytes", CRID_SETTING_SIZE,
	  offsetof(struct crid_config, grpc_max_send_bytes), 1024, 1ULL << 30 },
	{ "grpc_max_pending_bytes", "--grpc-max-pending-bytes", "N", "33554432",
	  "bytes all unfinished requests may buffer together (at least one largest request)", CRID_SETTING_SIZE,
	  offsetof(struct crid_config, grpc_max_pending_bytes), 65536, 1ULL << 34 },
	{ "grpc_request_timeout_s", "--grpc-request-timeout", "SECONDS", "30",
	  "refuse a request whose message has not ended this long after it began", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, grpc_request_timeout_s), 1, 3600 },
	{ "grpc_max_connections", "--grpc-max-connections", "N", "4096",
	  "client connections at once; a new one then replaces the longest idle", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, grpc_max_connections), 1, 1 << 20 },
	{ "grpc_preface_timeout_s", "--grpc-preface-timeout", "SECONDS", "10",
	  "close a connection that has not begun HTTP/2 this long after connecting", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, grpc_preface_timeout_s), 1, 3600 },
	{ "grpc_idle_timeout_s", "--grpc-idle-timeout", "SECONDS", "600",
	  "close a connection without calls after this long", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, grpc_idle_timeout_s), 1, 86400 },
	{ "worker_threads", "--worker-threads", "N", "32", "most requests handled at once",
	  CRID_SETTING_UNSIGNED, offsetof(struct crid_config, worker_threads), 1, 1024 },
	{ "shutdown_grace_s", "--shutdown-grace", "SECONDS", "30",
	  "how long SIGTERM waits for in-flight requests", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, shutdown_grace_s), 0, 3600 },
	{ "seccomp_default", "--seccomp-default", "BOOL", "false",
	  "run containers that name no seccomp profile under RuntimeDefault (the kubelet's seccompDefault)",
	  CRID_SETTING_BOOL, offsetof(struct crid_config, seccomp_default), 0, 0 },
	{ "max_concurrent_pulls", "--max-concurrent-pulls", "N", "8",
	  "images pulled at once; more wait in a queue", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, max_concurrent_pulls), 1, 256 },
	{ "max_concurrent_downloads", "--max-concurrent-downloads", "N", "4",
	  "layers of one image downloaded at once", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, max_concurrent_downloads), 1, 64 },
	{ "pull_progress_timeout_s", "--pull-progress-timeout", "SECONDS", "60",
	  "abort a registry transfer that makes no progress this long", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, pull_progress_timeout_s), 1, 3600 },
	{ "cni_conf_dir", "--cni-conf-dir", "DIR", CRID_DEFAULT_CNI_CONF_DIR,
	  "CNI network configurations; the lexically first valid file is used", CRID_SETTING_ABS_PATH,
	  offsetof(struct crid_config, cni_conf_dir), 0, 0 },
	{ "cni_plugin_timeout_s", "--cni-plugin-timeout", "SECONDS", "30",
	  "kill a CNI plugin call that takes longer", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, cni_plugin_timeout_s), 1, 3600 },
	{ "event_queue_length", "--event-queue-length", "N", "1024",
	  "container events kept for a subscriber that reads slowly; the oldest go first", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, event_queue_length), 16, 65536 },
	{ "layer_usage_period_s", "--layer-usage-period", "SECONDS", "10",
	  "how often each container's writable layer is measured", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, layer_usage_period_s), 1, 3600 },
	{ "layer_usage_files_per_s", "--layer-usage-files-per-second", "N", "20000",
	  "most files per second the writable-layer walker looks at", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, layer_usage_files_per_s), 100, 10000000 },
	{ "metrics_address", "--metrics-address", "HOST:PORT", "",
	  "serve Prometheus metrics over HTTP on this address (\"\": off)", CRID_SETTING_LISTEN_ADDRESS,
	  offsetof(struct crid_config, metrics_address), 0, 0 },
	{ "stream_address", "--stream-address", "HOST:PORT", "127.0.0.1:0",
	  "exec/attach/port-forward server address (port 0: a free port)", CRID_SETTING_ADDRESS,
	  offsetof(struct crid_config, stream_address), 0, 0 },
	{ "stream_tls_cert", "--stream-tls-cert", "FILE", "",
	  "PEM certificate of the streaming server (with --stream-tls-key: HTTPS)", CRID_SETTING_OPT_PATH,
	  offsetof(struct crid_config, stream_tls_cert), 0, 0 },
	{ "stream_tls_key", "--stream-tls-key", "FILE", "", "PEM private key of the streaming server",
	  CRID_SETTING_OPT_PATH, offsetof(struct crid_config, stream_tls_key), 0, 0 },
	{ "stream_idle_timeout_s", "--stream-idle-timeout", "SECONDS", "14400",
	  "close a streaming session with no traffic this long", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, stream_idle_timeout_s), 1, 86400 },
	{ "stream_max_sessions", "--stream-max-sessions", "N", "128",
	  "streaming connections (exec, attach, port-forward) served at once", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, stream_max_sessions), 1, 4096 },
	{ "pull_min_bytes_per_s", "--pull-min-rate", "BYTES", "1024",
	  "abort a registry transfer slower than this over pull_rate_window_s", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, pull_min_bytes_per_s), 0, UINT32_MAX },
	{ "pull_rate_window_s", "--pull-rate-window", "SECONDS", "60",
	  "the window of the minimum transfer rate; 0 turns the check off", CRID_SETTING_UNSIGNED,
	  offsetof(struct crid_config, pull_rate_window_s), 0, 3600 },
	{ "state_free_reserve_bytes", "--state-free-reserve", "BYTES", "536870912",
	  "stop a pull before the state file system has less free space than this", CRID_SETTING_SIZE,
	  offsetof(struct crid_config, state_free_reserve_bytes), 0, 1ULL << 50 },
};

static const struct crid_default_runtime default_runtimes[] = {
	{ "crun", "/usr/bin/crun" },
	{ "runc", "/usr/bin/runc" },
};

const struct crid_setting *crid_config_settings(size_t *n)
{
	*n = CRID_ARRAY_SIZE(settings);
	return settings;
}

const struct crid_default_runtime *crid_config_default_runtimes(size_t *n)
{
	*n = CRID_ARRAY_SIZE(default_runtimes);
	return default_runtimes;
}

const struct crid_setting *crid_config_setting_by_key(const char *key)
{
	for (size_t i = 0; i < CRID_ARRAY_SIZE(settings); i++)
		if (strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

static int set_string(char **field, const char *value, const char *what, struct crid_err *err)
{
	char *copy = strdup(value);

	if (!copy)
		return crid_err_nomem(err, what);
	free(*field);
	*field = copy;
	return 0;
}

/* Decimal digits only: no sign, no spaces, no 0x, no exponent. */
static int parse_whole(const char *s, unsigned long long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	return 0;
}

static int parse_ranged(const struct crid_setting *s, const char *value, unsigned long long *out,
			struct crid_err *err)
{
	int r = parse_whole(value, out);

	if (r == -EINVAL)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not a whole number", value);
	if (r < 0 || *out < s->min || *out > s->max)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is out of range %llu..%llu",
				    value, s->min, s->max);
	return 0;
}

/* host:port, host:port with an IPv6 host in brackets, or :port; the host
 * itself is resolved when the endpoint starts. */
static int check_listen_address(const char *s)
{
	const char *colon = s[0] == '[' ? strchr(s, ']') : strrchr(s, ':');
	unsigned long long port;

	if (!colon)
		return -EINVAL;
	if (s[0] == '[') {
		if (colon == s + 1 || colon[1] != ':')
			return -EINVAL;
		colon++;
	} else if (memchr(s, ':', (size_t)(colon - s))) {
		return -EINVAL; /* a bare IPv6 address needs brackets */
	}
	if (strpbrk(s, " /\t") || parse_whole(colon + 1, &port) < 0 || port < 1 || port > 65535)
		return -EINVAL;
	return 0;
}

int crid_config_setting_apply(struct crid_config *cfg, const struct crid_setting *s,
			      const char *value, struct crid_err *err)
{
	void *field = (char *)cfg + s->offset;
	unsigned long long n;
	int r;

	switch (s->kind) {
	case CRID_SETTING_ABS_PATH:
		if (value[0] != '/')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not an absolute path",
					    value);
		if (s->max && strlen(value) > s->max)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "\"%s\" is longer than %llu bytes", value, s->max);
		return set_string(field, value, s->key, err);
	case CRID_SETTING_LISTEN_ADDRESS:
		if (*value && check_listen_address(value) < 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "\"%s\" is not host:port (\"127.0.0.1:9090\", \"[::1]:9090\", \":9090\")", value);
		return set_string(field, value, s->key, err);
	case CRID_SETTING_NAME:
		r = crid_config_check_runtime_name(value, err);
		if (r < 0)
			return r;
		return set_string(field, value, s->key, err);
	case CRID_SETTING_LOG_LEVEL:
		if (crid_log_level_parse(value, field) < 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "\"%s\" is not one of debug, info, warn, error", value);
		return 0;
	case CRID_SETTING_LOG_FORMAT:
		if (crid_log_format_parse(value, field) < 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not one of logfmt, json",
					    value);
		return 0;
	case CRID_SETTING_CGROUP_DRIVER:
		if (strcmp(value, "cgroupfs") == 0)
			*(enum crid_cgroup_driver *)field = CRID_CGROUP_CGROUPFS;
		else if (strcmp(value, "systemd") == 0)
			*(enum crid_cgroup_driver *)field = CRID_CGROUP_SYSTEMD;
		else
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "\"%s\" is not one of cgroupfs, systemd", value);
		return 0;
	case CRID_SETTING_SIZE:
		r = parse_ranged(s, value, &n, err);
		if (r < 0)
			return r;
		*(size_t *)field = (size_t)n;
		return 0;
	case CRID_SETTING_UNSIGNED:
		r = parse_ranged(s, value, &n, err);
		if (r < 0)
			return r;
		*(unsigned *)field = (unsigned)n;
		return 0;
	case CRID_SETTING_BOOL:
		/* YAML 1.2's spellings, the same for flags. */
		if (strcmp(value, "true") == 0 || strcmp(value, "True") == 0 || strcmp(value, "TRUE") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "False") == 0 || strcmp(value, "FALSE") == 0)
			*(bool *)field = false;
		else
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not true or false", value);
		return 0;
	case CRID_SETTING_OPT_PATH:
		if (value[0] == '\0') {
			free(*(char **)field);
			*(char **)field = NULL;
			return 0;
		}
		if (value[0] != '/')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not an absolute path",
					    value);
		return set_string(field, value, s->key, err);
	case CRID_SETTING_ADDRESS:
		r = crid_config_parse_address(value, NULL, 0, NULL, err);
		if (r < 0)
			return r;
		return set_string(field, value, s->key, err);
	}
	return crid_err_set(err, CRID_INTERNAL, 0, "setting %s has no parser", s->key);
}

int crid_config_parse_address(const char *value, char *host, size_t host_size, unsigned *port,
			      struct crid_err *err)
{
	unsigned char buf[sizeof(struct in6_addr)];
	char h[INET6_ADDRSTRLEN + 1];
	const char *colon, *start = value;
	size_t len;
	unsigned long long p;
	bool v6 = value[0] == '[';

	if (v6) {
		const char *close = strchr(value, ']');

		if (!close || close[1] != ':')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "\"%s\" is not HOST:PORT (an IPv6 address goes in brackets)", value);
		start = value + 1;
		len = (size_t)(close - start);
		colon = close + 1;
	} else {
		colon = strrchr(value, ':');
		if (!colon)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not HOST:PORT", value);
		len = (size_t)(colon - value);
	}
	if (len == 0 || len >= sizeof(h))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\": the host must be an IP address", value);
	memcpy(h, start, len);
	h[len] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, h, buf) != 1)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\": \"%s\" is not an IP%s address", value,
				    h, v6 ? "v6" : "v4");
	if (parse_whole(colon + 1, &p) < 0 || p > 65535)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\": the port must be 0-65535", value);
	if (host) {
		if (len >= host_size)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, ENAMETOOLONG, "address %s", value);
		memcpy(host, h, len + 1);
	}
	if (port)
		*port = (unsigned)p;
	return 0;
}

int crid_config_check_runtime_name(const char *name, struct crid_err *err)
{
	if (name[0] == '\0')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "runtime name is empty");
	if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
	    strlen(name))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "\"%s\" is not a valid runtime name (use letters, digits, '.', '_', '-')",
				    name);
	/* Handler names may end up as path components under run_root. */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not a valid runtime name",
				    name);
	return 0;
}

int crid_config_check_runtime_path(const char *path, struct crid_err *err)
{
	if (path[0] == '\0')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "runtime path is empty");
	/* A bare name is looked up in PATH when used; "bin/crun" would depend on
	 * the daemon's working directory. */
	if (path[0] != '/' && strchr(path, '/'))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "\"%s\" is a relative path (use an absolute path or a bare name found in PATH)",
				    path);
	return 0;
}

/* gVisor's runsc runs one sandbox per pod whatever it is called by. */
static bool is_runsc(const char *path)
{
	const char *base = strrchr(path, '/');

	return strcmp(base ? base + 1 : path, "runsc") == 0;
}

static struct crid_runtime_handler *find_handler(const struct crid_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_runtimes; i++)
		if (strcmp(cfg->runtimes[i].name, name) == 0)
			return &cfg->runtimes[i];
	return NULL;
}

int crid_config_runtime_set(struct crid_config *cfg, const char *name, const char *path,
			    struct crid_err *err)
{
	struct crid_runtime_handler *h, *grown;
	_cleanup_free_ char *path_copy = NULL;
	_cleanup_free_ char *name_copy = NULL;
	int r;

	r = crid_config_check_runtime_name(name, err);
	if (r < 0)
		return r;
	r = crid_config_check_runtime_path(path, err);
	if (r < 0)
		return r;
	path_copy = strdup(path);
	if (!path_copy)
		return crid_err_nomem(err, "runtime path");
	h = find_handler(cfg, name);
	if (h) {
		free(h->path);
		h->path = take_ptr(&path_copy);
		if (!h->sandbox_per_pod_set)
			h->sandbox_per_pod = is_runsc(h->path);
		return 0;
	}
	name_copy = strdup(name);
	if (!name_copy)
		return crid_err_nomem(err, "runtime name");
	grown = reallocarray(cfg->runtimes, cfg->n_runtimes + 1, sizeof(*grown));
	if (!grown)
		return crid_err_nomem(err, "runtime handlers");
	cfg->runtimes = grown;
	memset(&grown[cfg->n_runtimes], 0, sizeof(grown[cfg->n_runtimes]));
	grown[cfg->n_runtimes].name = take_ptr(&name_copy);
	grown[cfg->n_runtimes].path = take_ptr(&path_copy);
	grown[cfg->n_runtimes].sandbox_per_pod = is_runsc(grown[cfg->n_runtimes].path);
	cfg->n_runtimes++;
	return 0;
}

int crid_config_runtime_set_sandbox(struct crid_config *cfg, const char *name, bool sandbox_per_pod,
				    struct crid_err *err)
{
	struct crid_runtime_handler *h = find_handler(cfg, name);

	if (!h)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "runtime handler \"%s\" has no path", name);
	h->sandbox_per_pod = sandbox_per_pod;
	h->sandbox_per_pod_set = true;
	return 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* --root is crid's to give (the handler's root): "--root", "-root DIR",
 * "--root=DIR", but not "--rootless". */
static bool is_root_flag(const char *arg)
{
	arg += arg[1] == '-' ? 2 : 1;
	return strncmp(arg, "root", 4) == 0 && (arg[4] == '\0' || arg[4] == '=');
}

/* A runtime runs a handful of commands per container: each flag goes on
 * all of them, so a bounded few. */
#define MAX_RUNTIME_ARGS 16

int crid_config_runtime_set_args(struct crid_config *cfg, const char *name, char *const *args, size_t n,
				 struct crid_err *err)
{
	struct crid_runtime_handler *h = find_handler(cfg, name);
	char **copy;

	if (!h)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "runtime handler \"%s\" has no path", name);
	if (n > MAX_RUNTIME_ARGS)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "more than %d runtime arguments",
				    MAX_RUNTIME_ARGS);
	for (size_t i = 0; i < n; i++) {
		if (args[i][0] != '-' || strlen(args[i]) < 2 || strcmp(args[i], "--") == 0 || strlen(args[i]) > 1024 ||
		    strpbrk(args[i], "\n\r"))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "\"%s\" is not a runtime flag (one \"--name=value\" per item)", args[i]);
		if (is_root_flag(args[i]))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "\"%s\": set the handler's root instead", args[i]);
	}
	copy = calloc(n + 1, sizeof(*copy));
	if (!copy)
		return crid_err_nomem(err, "runtime arguments");
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(args[i]);
		if (!copy[i]) {
			free_strv(copy, i);
			return crid_err_nomem(err, "runtime arguments");
		}
	}
	free_strv(h->runtime_args, h->n_runtime_args);
	h->runtime_args = copy;
	h->n_runtime_args = n;
	return 0;
}

int crid_config_runtime_set_root(struct crid_config *cfg, const char *name, const char *root, struct crid_err *err)
{
	struct crid_runtime_handler *h = find_handler(cfg, name);
	char *copy;

	if (!h)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "runtime handler \"%s\" has no path", name);
	if (root[0] != '/' || crid_path_has_dotdot(root) || strlen(root) > 1024)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not an absolute path without \"..\"",
				    root);
	copy = strdup(root);
	if (!copy)
		return crid_err_nomem(err, "runtime root");
	free(h->root);
	h->root = copy;
	return 0;
}

static void free_dirs(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int crid_config_check_cni_bin_dir(const char *dir, struct crid_err *err)
{
	if (dir[0] != '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not an absolute path", dir);
	/* CNI_PATH, which plugins that call other plugins read, is split at ':'. */
	if (strchr(dir, ':'))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" holds a ':'", dir);
	return 0;
}

int crid_config_set_cni_bin_dirs(struct crid_config *cfg, const char *const *dirs, size_t n,
				 struct crid_err *err)
{
	char **copy;
	int r;

	if (n == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "needs at least one directory");
	for (size_t i = 0; i < n; i++)
		if ((r = crid_config_check_cni_bin_dir(dirs[i], err)) < 0)
			return r;
	copy = calloc(n, sizeof(*copy));
	if (!copy)
		return crid_err_nomem(err, "cni_bin_dirs");
	for (size_t i = 0; i < n; i++) {
		if (!(copy[i] = strdup(dirs[i]))) {
			free_dirs(copy, i);
			return crid_err_nomem(err, "cni_bin_dirs");
		}
	}
	free_dirs(cfg->cni_bin_dirs, cfg->n_cni_bin_dirs);
	cfg->cni_bin_dirs = copy;
	cfg->n_cni_bin_dirs = n;
	return 0;
}

int crid_config_set_cni_bin_path(struct crid_config *cfg, const char *path, struct crid_err *err)
{
	_cleanup_free_ char *copy = strdup(path);
	_cleanup_free_ const char **dirs = NULL;
	size_t n = 0;
	char *save = NULL;

	if (!copy || !(dirs = calloc(strlen(path) / 2 + 1, sizeof(*dirs))))
		return crid_err_nomem(err, "cni_bin_dirs");
	/* "a::b" or a trailing ':' is an empty directory, refused as such. */
	if (path[0] == ':' || strstr(path, "::") || (*path && path[strlen(path) - 1] == ':'))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" holds an empty directory", path);
	for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
		dirs[n++] = tok;
	return crid_config_set_cni_bin_dirs(cfg, dirs, n, err);
}

int crid_config_set_cdi_spec_dirs(struct crid_config *cfg, const char *const *dirs, size_t n,
				  struct crid_err *err)
{
	char **copy;
	int r;

	for (size_t i = 0; i < n; i++)
		if ((r = crid_config_check_cni_bin_dir(dirs[i], err)) < 0)
			return r;
	copy = calloc(n + 1, sizeof(*copy));
	if (!copy)
		return crid_err_nomem(err, "cdi_spec_dirs");
	for (size_t i = 0; i < n; i++) {
		if (!(copy[i] = strdup(dirs[i]))) {
			free_dirs(copy, i);
			return crid_err_nomem(err, "cdi_spec_dirs");
		}
	}
	free_dirs(cfg->cdi_spec_dirs, cfg->n_cdi_spec_dirs);
	cfg->cdi_spec_dirs = copy;
	cfg->n_cdi_spec_dirs = n;
	return 0;
}

int crid_config_set_cdi_spec_path(struct crid_config *cfg, const char *path, struct crid_err *err)
{
	_cleanup_free_ char *copy = strdup(path);
	_cleanup_free_ const char **dirs = NULL;
	size_t n = 0;
	char *save = NULL;

	if (!copy || !(dirs = calloc(strlen(path) / 2 + 1, sizeof(*dirs))))
		return crid_err_nomem(err, "cdi_spec_dirs");
	if (path[0] == ':' || strstr(path, "::") || (*path && path[strlen(path) - 1] == ':'))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" holds an empty directory", path);
	for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
		dirs[n++] = tok;
	return crid_config_set_cdi_spec_dirs(cfg, dirs, n, err);
}

static int set_defaults(struct crid_config *cfg, struct crid_err *err)
{
	int r;

	/* The defaults go through the same parsers as files and flags, so the
	 * table's text is the one place they are written down. */
	for (size_t i = 0; i < CRID_ARRAY_SIZE(settings); i++) {
		r = crid_config_setting_apply(cfg, &settings[i], settings[i].def, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < CRID_ARRAY_SIZE(default_runtimes); i++) {
		r = crid_config_runtime_set(cfg, default_runtimes[i].name, default_runtimes[i].path, err);
		if (r < 0)
			return r;
	}
	r = crid_config_set_cni_bin_path(cfg, CRID_DEFAULT_CNI_BIN_DIRS, err);
	if (r < 0)
		return r;
	return crid_config_set_cdi_spec_path(cfg, CRID_DEFAULT_CDI_SPEC_DIRS, err);
}

/* Reads one YAML file. *found is false when it does not exist and
 * missing_ok allowed that. */
static int read_file(struct crid_config *cfg, const char *path, bool missing_ok, bool *found,
		     struct crid_err *err)
{
	_cleanup_fclose_ FILE *f = NULL;
	struct stat st;

	*found = false;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && missing_ok)
			return 0;
		return crid_err_set(err, crid_status_from_errno(errno), errno, "read config file %s",
				    path);
	}
	if (fstat(fileno(f), &st) < 0)
		return crid_err_set(err, crid_status_from_errno(errno), errno, "read config file %s",
				    path);
	/* Not only regular files: --config /dev/null is a way to say "none". */
	if (S_ISDIR(st.st_mode))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, EISDIR, "read config file %s", path);
	*found = true;
	return crid_config_read_yaml(cfg, path, f, err);
}

struct strv {
	char **v;
	size_t n;
};

static void strv_freep(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static int strv_push(struct strv *s, const char *str)
{
	_cleanup_free_ char *copy = strdup(str);
	char **grown;

	if (!copy)
		return -ENOMEM;
	grown = reallocarray(s->v, s->n + 1, sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	s->v = grown;
	s->v[s->n++] = take_ptr(&copy);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Like the shell's *.yaml: dot files (editor leftovers) are not read. */
static bool is_dropin_name(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".yaml") == 0;
}

static int read_dropins(struct crid_config *cfg, const char *dir, struct crid_err *err)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	_cleanup_(strv_freep) struct strv names = { 0 };
	struct dirent *de;
	bool found;
	int r;

	if (!d) {
		if (errno == ENOENT)
			return 0;
		return crid_err_set(err, crid_status_from_errno(errno), errno, "read config dir %s",
				    dir);
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				return crid_err_set(err, crid_status_from_errno(errno), errno,
						    "read config dir %s", dir);
			break;
		}
		if (is_dropin_name(de->d_name) && strv_push(&names, de->d_name) < 0)
			return crid_err_nomem(err, "drop-in file names");
	}
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(*names.v), cmp_str);
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *path = NULL;

		if (asprintf(&path, "%s/%s", dir, names.v[i]) < 0)
			return crid_err_nomem(err, "drop-in file path");
		r = read_file(cfg, path, false, &found, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_default_runtime(const struct crid_config *cfg, struct crid_err *err)
{
	char list[512] = "";
	size_t len = 0;

	if (find_handler(cfg, cfg->default_runtime))
		return 0;
	for (size_t i = 0; i < cfg->n_runtimes && len < sizeof(list); i++) {
		int n = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
				 cfg->runtimes[i].name);
		if (n < 0)
			break;
		len += (size_t)n;
	}
	return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
			    "default_runtime \"%s\" is not a configured runtime (configured: %s)",
			    cfg->default_runtime, cfg->n_runtimes ? list : "none");
}

static int load_all(struct crid_config *cfg, const struct crid_args *args, const char *default_file,
		    const char *default_dir, struct crid_err *err)
{
	const char *file = args->config_file ? args->config_file : default_file;
	const char *dir = args->config_dir ? args->config_dir : default_dir;
	bool found;
	int r;

	r = set_defaults(cfg, err);
	if (r < 0)
		return r;
	r = set_string(&cfg->config_dir, dir, "config_dir", err);
	if (r < 0)
		return r;
	/* Only the default file may be missing: a --config that names nothing is
	 * almost certainly a typo. */
	r = read_file(cfg, file, args->config_file == NULL, &found, err);
	if (r < 0)
		return r;
	if (found) {
		r = set_string(&cfg->config_file, file, "config_file", err);
		if (r < 0)
			return r;
	}
	r = read_dropins(cfg, dir, err);
	if (r < 0)
		return r;
	r = crid_config_apply_args(cfg, args, err);
	if (r < 0)
		return r;
	r = check_default_runtime(cfg, err);
	if (r < 0)
		return r;
	if (!cfg->stream_tls_cert != !cfg->stream_tls_key)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "stream_tls_cert and stream_tls_key go together: %s is set, %s is not",
				    cfg->stream_tls_cert ? "stream_tls_cert" : "stream_tls_key",
				    cfg->stream_tls_cert ? "stream_tls_key" : "stream_tls_cert");
	return 0;
}

int crid_config_load_at(struct crid_config *cfg, int argc, char **argv, const char *default_file,
			const char *default_dir, struct crid_err *err)
{
	_cleanup_(crid_config_args_free) struct crid_args args = { 0 };
	int r;

	memset(cfg, 0, sizeof(*cfg));
	r = crid_config_parse_args(argc, argv, &args, err);
	if (r < 0)
		return r;
	/* Before reading any file, so --help works whatever the files hold. */
	if (args.help) {
		crid_config_print_help(stdout);
		fflush(stdout);
		return CRID_CONFIG_EXIT;
	}
	if (args.version) {
		printf("crid %s\n", CRID_VERSION);
		fflush(stdout);
		return CRID_CONFIG_EXIT;
	}
	r = load_all(cfg, &args, default_file, default_dir, err);
	if (r < 0) {
		crid_config_free(cfg);
		return r;
	}
	return CRID_CONFIG_RUN;
}

int crid_config_load(struct crid_config *cfg, int argc, char **argv, struct crid_err *err)
{
	return crid_config_load_at(cfg, argc, argv, CRID_DEFAULT_CONFIG_FILE, CRID_DEFAULT_CONFIG_DIR,
				   err);
}

void crid_config_free(struct crid_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->config_file);
	free(cfg->config_dir);
	free(cfg->socket_path);
	free(cfg->run_root);
	free(cfg->state_root);
	free(cfg->metrics_address);
	free(cfg->default_runtime);
	free(cfg->stream_address);
	free(cfg->stream_tls_cert);
	free(cfg->stream_tls_key);
	for (size_t i = 0; i < cfg->n_runtimes; i++) {
		free(cfg->runtimes[i].name);
		free(cfg->runtimes[i].path);
		free(cfg->runtimes[i].root);
		free_strv(cfg->runtimes[i].runtime_args, cfg->runtimes[i].n_runtime_args);
	}
	free(cfg->runtimes);
	crid_config_registries_free(cfg);
	free(cfg->cni_conf_dir);
	free_dirs(cfg->cni_bin_dirs, cfg->n_cni_bin_dirs);
	free_dirs(cfg->cdi_spec_dirs, cfg->n_cdi_spec_dirs);
	memset(cfg, 0, sizeof(*cfg));
}

const struct crid_runtime_handler *crid_config_find_runtime(const struct crid_config *cfg,
							     const char *name)
{
	if (!name || name[0] == '\0')
		name = cfg->default_runtime;
	if (!name)
		return NULL;
	return find_handler(cfg, name);
}

static json_t *runtime_to_json(const struct crid_runtime_handler *h)
{
	json_t *args = json_array();

	for (size_t i = 0; args && i < h->n_runtime_args; i++)
		if (json_array_append_new(args, json_string(h->runtime_args[i])) < 0) {
			json_decref(args);
			return NULL;
		}
	return args ? json_pack("{s:s, s:b, s:o, s:s?}", "path", h->path, "sandbox_per_pod", h->sandbox_per_pod,
				"runtime_args", args, "root", h->root)
		    : NULL;
}

json_t *crid_config_to_json(const struct crid_config *cfg)
{
	_cleanup_(json_decrefp) json_t *o = NULL; /* json_decrefp: jansson's */
	json_t *runtimes, *bin_dirs;

	o = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:s, s:s?}", "config_file", cfg->config_file,
		      "config_dir", cfg->config_dir, "socket", cfg->socket_path, "run_root", cfg->run_root,
		      "state_root", cfg->state_root, "log_level", crid_log_level_name(cfg->log_level),
		      "log_format", crid_log_format_name(cfg->log_format), "cgroup_driver",
		      crid_cgroup_driver_name(cfg->cgroup_driver), "default_runtime", cfg->default_runtime);
	if (!o)
		return NULL;
	/* Every number of the settings table, under its key. */
	for (size_t i = 0; i < CRID_ARRAY_SIZE(settings); i++) {
		const void *field = (const char *)cfg + settings[i].offset;
		json_int_t v;

		if (settings[i].kind == CRID_SETTING_SIZE)
			v = (json_int_t) * (const size_t *)field;
		else if (settings[i].kind == CRID_SETTING_UNSIGNED)
			v = (json_int_t) * (const unsigned *)field;
		else
			continue;
		if (json_object_set_new(o, settings[i].key, json_integer(v)) < 0)
			return NULL;
	}
	if (json_object_set_new(o, "cni_conf_dir", json_string(cfg->cni_conf_dir)) < 0 ||
	    json_object_set_new(o, "metrics_address",
				json_string(cfg->metrics_address ? cfg->metrics_address : "")) < 0)
		return NULL;
	bin_dirs = json_array();
	if (json_object_set_new(o, "cni_bin_dirs", bin_dirs) < 0)
		return NULL;
	for (size_t i = 0; i < cfg->n_cni_bin_dirs; i++)
		if (json_array_append_new(bin_dirs, json_string(cfg->cni_bin_dirs[i])) < 0)
			return NULL;
	bin_dirs = json_array();
	if (json_object_set_new(o, "cdi_spec_dirs", bin_dirs) < 0)
		return NULL;
	for (size_t i = 0; i < cfg->n_cdi_spec_dirs; i++)
		if (json_array_append_new(bin_dirs, json_string(cfg->cdi_spec_dirs[i])) < 0)
			return NULL;
	runtimes = json_object();
	if (json_object_set_new(o, "runtimes", runtimes) < 0)
		return NULL;
	for (size_t i = 0; i < cfg->n_runtimes; i++)
		if (json_object_set_new(runtimes, cfg->runtimes[i].name, runtime_to_json(&cfg->runtimes[i])) < 0)
			return NULL;
	if (json_object_set_new(o, "seccomp_default", json_boolean(cfg->seccomp_default)) < 0)
		return NULL;
	if (crid_config_registries_to_json(cfg, o) < 0)
		return NULL;
	if (json_object_set_new(o, "stream_address", json_string(cfg->stream_address)) < 0 ||
	    json_object_set_new(o, "stream_tls_cert", cfg->stream_tls_cert ? json_string(cfg->stream_tls_cert)
									: json_null()) < 0 ||
	    json_object_set_new(o, "stream_tls_key", cfg->stream_tls_key ? json_string(cfg->stream_tls_key)
								      : json_null()) < 0 ||
	    json_object_set_new(o, "stream_idle_timeout_s", json_integer(cfg->stream_idle_timeout_s)) < 0 ||
	    json_object_set_new(o, "stream_max_sessions", json_integer(cfg->stream_max_sessions)) < 0)
		return NULL;
	return take_ptr(&o);
}

const char *crid_cgroup_driver_name(enum crid_cgroup_driver d)
{
	return d == CRID_CGROUP_SYSTEMD ? "systemd" : "cgroupfs";
}
