/* The RuntimeService of runtime.h: it assembles the runtime (its tables,
 * the pods and containers recovered from the store, the exit watcher) and
 * registers every handler; its own are Version, Status, RuntimeConfig,
 * UpdateRuntimeConfig and GetContainerEvents. The one file of runtime/
 * that calls into pod/ and container/; the rest of runtime/ is below them. */
#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdi/cdi.h"
#include "common/cleanup.h"
#include "common/fsutil.h"

#include "common/log.h"
#include "container/container.h"
#include "network/network.h"
#include "oci/handler.h"
#include "pod/pod.h"
#include "runtime/events.h"
#include "runtime/objects.h"
#include "runtime/v1/api.pb-c.h"

#define CRID_RUNTIME_NAME "crid"

/* Every recorded pod and container back in the tables, checked against the
 * machine; then what no record owns is removed. */
static int recover(struct crid_runtime *rt, struct crid_err *err)
{
	struct crid_object_record *recs = NULL;
	size_t n = 0;
	int r;

	if ((r = crid_store_object_list(rt->db, "pod", &recs, &n, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		crid_pod_recover(rt, &recs[i]);
	crid_object_records_free(recs, n);
	if ((r = crid_store_object_list(rt->db, "container", &recs, &n, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		crid_container_recover(rt, &recs[i]);
	crid_object_records_free(recs, n);
	/* Before the namespaces of unknown pods go: DEL still finds them. */
	crid_network_release_unclaimed(rt->net);
	crid_pods_adopt_or_remove_unknown(rt);
	crid_containers_adopt_or_remove_unknown(rt);
	if (rt->adopted) {
		char count[16];

		snprintf(count, sizeof(count), "%u", rt->adopted);
		log_error("crid.db had lost pods or containers still on the machine: they were adopted again; "
			  "restore crid.db from a backup to get back its images' names",
			  "adopted", count, "database_was_empty", crid_store_was_empty(rt->db) ? "true" : "false");
	}
	return 0;
}

unsigned crid_runtime_adopted(const struct crid_runtime *rt)
{
	return rt->adopted;
}

/* The gauges of /metrics, counted at each scrape. */
static void count_objects(void *data, struct crid_metrics_gauges *g)
{
	struct crid_runtime *rt = data;

	pthread_mutex_lock(&rt->lock);
	for (struct crid_pod *p = rt->pods; p; p = p->next) {
		if (!p->created_at)
			continue;
		if (atomic_load(&p->ready))
			g->pods_ready++;
		else
			g->pods_notready++;
	}
	for (struct crid_container *c = rt->containers; c; c = c->next) {
		pthread_mutex_lock(&c->state_lock);
		if (c->created_at) {
			switch (c->state) {
			case CRID_CTR_CREATED:
				g->containers_created++;
				break;
			case CRID_CTR_RUNNING:
				g->containers_running++;
				break;
			case CRID_CTR_EXITED:
				g->containers_exited++;
				break;
			default:
				g->containers_unknown++;
			}
		}
		pthread_mutex_unlock(&c->state_lock);
		/* A shim lives until its container exits and it wrote the exit. */
		if (c->shim_pid > 0 && kill(c->shim_pid, 0) == 0)
			g->shims++;
	}
	pthread_mutex_unlock(&rt->lock);
}

int crid_runtime_new(struct crid_runtime **out, const struct crid_config *cfg, struct crid_images *images,
		     struct crid_store *db, struct crid_layer_usage *layers, struct crid_metrics *metrics,
		     struct crid_streaming *streaming, struct crid_err *err)
{
	struct crid_runtime *rt = calloc(1, sizeof(*rt));
	char exe[PATH_MAX];
	ssize_t n;
	int r;

	if (!rt)
		return crid_err_nomem(err, "runtime");
	rt->cfg = cfg;
	rt->images = images;
	rt->db = db;
	rt->layers = layers;
	rt->metrics = metrics;
	rt->streaming = streaming;
	rt->inotify_fd = -1;
	crid_stoppable_thread_init(&rt->watcher);
	rt->cgroups.v1_cpu_fd = rt->cgroups.v1_memory_fd = rt->cgroups.v1_pids_fd = rt->cgroups.v2_fd = -1;
	pthread_mutex_init(&rt->lock, NULL);
	pthread_mutex_init(&rt->watch_lock, NULL);
	pthread_mutex_init(&rt->features_lock, NULL);
	/* crid-shim is installed next to crid. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		crid_runtime_free(rt);
		return crid_err_set(err, CRID_INTERNAL, errno, "find crid's own executable");
	}
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	if (asprintf(&rt->shim_path, "%s/crid-shim", exe) < 0 ||
	    asprintf(&rt->sandbox_init_path, "%s/crid-sandbox-init", exe) < 0 ||
	    asprintf(&rt->pods_dir, "%s/pods", cfg->run_root) < 0 ||
	    asprintf(&rt->containers_dir, "%s/containers", cfg->run_root) < 0 ||
	    asprintf(&rt->upper_dir, "%s/containers", cfg->state_root) < 0) {
		crid_runtime_free(rt);
		return crid_err_nomem(err, "runtime paths");
	}
	if ((r = crid_cgroup_layout_open(&rt->cgroups, "/sys/fs/cgroup", err)) < 0 ||
	    (r = crid_events_new(&rt->events, cfg->event_queue_length, err)) < 0 ||
	    (r = crid_network_new(&rt->net, cfg, db, err)) < 0 ||
	    (r = crid_cdi_new(&rt->cdi, cfg->cdi_spec_dirs, cfg->n_cdi_spec_dirs, err)) < 0 ||
	    (r = crid_mkdir_p(rt->pods_dir, 0711, err)) < 0 ||
	    (r = crid_mkdir_p(rt->containers_dir, 0711, err)) < 0 || (r = crid_mkdir_private(rt->upper_dir, err)) < 0 ||
	    (r = crid_exit_watch_start(rt, err)) < 0 || (r = recover(rt, err)) < 0) {
		crid_runtime_free(rt);
		return r;
	}
	if (metrics)
		crid_metrics_set_gauges(metrics, count_objects, rt);
	*out = rt;
	return 0;
}

void crid_runtime_shutdown(void *data)
{
	struct crid_runtime *rt = data;

	crid_events_close(rt->events);
}

/* Containers and pods keep running: only crid's memory of them goes. */
void crid_runtime_free(struct crid_runtime *rt)
{
	if (!rt)
		return;
	crid_exit_watch_stop(rt);
	if (rt->metrics)
		crid_metrics_set_gauges(rt->metrics, NULL, NULL);
	crid_cgroup_layout_close(&rt->cgroups);
	while (rt->containers) {
		struct crid_container *c = rt->containers;

		rt->containers = c->next;
		crid_container_unref(c);
	}
	while (rt->pods) {
		struct crid_pod *p = rt->pods;

		rt->pods = p->next;
		crid_pod_unref(p);
	}
	crid_packed_list_free(&rt->pod_list);
	crid_packed_list_free(&rt->container_list);
	crid_events_free(rt->events);
	crid_network_free(rt->net);
	crid_cdi_free(rt->cdi);
	pthread_mutex_destroy(&rt->lock);
	pthread_mutex_destroy(&rt->watch_lock);
	pthread_mutex_destroy(&rt->features_lock);
	free(rt->handler_features);
	free(rt->pod_cidr);
	free(rt->shim_path);
	free(rt->sandbox_init_path);
	free(rt->pods_dir);
	free(rt->containers_dir);
	free(rt->upper_dir);
	free(rt);
}

static int version(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	Runtime__V1__VersionResponse resp = RUNTIME__V1__VERSION_RESPONSE__INIT;

	/* "version" is the CRI API version the kubelet checks for v1alpha2. */
	resp.version = (char *)"0.1.0";
	resp.runtime_name = (char *)CRID_RUNTIME_NAME;
	resp.runtime_version = (char *)CRID_VERSION;
	resp.runtime_api_version = (char *)crid_call_api_version(call);
	return crid_call_send(call, &resp.base, err);
}

static char *json_text(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	json_decref(j);
	return s;
}

/* Holds the strings of Status' verbose info until the reply is packed. */
#define STATUS_INFO_MAX 8

struct status_info {
	Runtime__V1__StatusResponse__InfoEntry entries[STATUS_INFO_MAX];
	Runtime__V1__StatusResponse__InfoEntry *ptrs[STATUS_INFO_MAX];
	char *values[STATUS_INFO_MAX];
	size_t n;
};

static void status_info_free(struct status_info *info)
{
	for (size_t i = 0; i < info->n; i++)
		free(info->values[i]);
}

static int status_info_add(struct status_info *info, const char *key, json_t *value, struct crid_err *err)
{
	char *text;

	if (info->n == STATUS_INFO_MAX) {
		json_decref(value);
		return crid_err_set(err, CRID_INTERNAL, 0, "status info: more than %d keys", STATUS_INFO_MAX);
	}
	text = json_text(value);
	if (!text)
		return crid_err_nomem(err, "status info");
	runtime__v1__status_response__info_entry__init(&info->entries[info->n]);
	info->entries[info->n].key = (char *)key;
	info->entries[info->n].value = text;
	info->ptrs[info->n] = &info->entries[info->n];
	info->values[info->n] = text;
	info->n++;
	return 0;
}

static int status(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__StatusRequest *req = (const Runtime__V1__StatusRequest *)request;
	const struct crid_config *cfg = rt->cfg;
	Runtime__V1__StatusResponse resp = RUNTIME__V1__STATUS_RESPONSE__INIT;
	Runtime__V1__RuntimeStatus rs = RUNTIME__V1__RUNTIME_STATUS__INIT;
	Runtime__V1__RuntimeCondition runtime_ready = RUNTIME__V1__RUNTIME_CONDITION__INIT;
	Runtime__V1__RuntimeCondition network_ready = RUNTIME__V1__RUNTIME_CONDITION__INIT;
	Runtime__V1__RuntimeCondition *conditions[] = { &runtime_ready, &network_ready };
	Runtime__V1__RuntimeFeatures features = RUNTIME__V1__RUNTIME_FEATURES__INIT;
	_cleanup_free_ Runtime__V1__RuntimeHandlerFeatures *handler_features = NULL;
	_cleanup_free_ Runtime__V1__RuntimeHandler *handlers = NULL;
	_cleanup_free_ Runtime__V1__RuntimeHandler **handler_ptrs = NULL;
	_cleanup_(status_info_free) struct status_info info = { .n = 0 };
	struct crid_network_readiness net;
	struct crid_err binary_err;
	char binary[PATH_MAX];
	int r;

	/* The kubelet asks every few seconds: a crid.db deleted meanwhile is
	 * noticed and written back here at the latest. */
	crid_store_check(rt->db);
	runtime_ready.type = (char *)"RuntimeReady";
	crid_err_clear(&binary_err);
	if (crid_handler_binary(crid_config_find_runtime(cfg, ""), binary, sizeof(binary), &binary_err) < 0) {
		runtime_ready.status = 0;
		runtime_ready.reason = (char *)"OCIRuntimeNotFound";
		runtime_ready.message = binary_err.msg;
	} else {
		runtime_ready.status = 1;
	}
	crid_network_readiness(rt->net, &net);
	network_ready.type = (char *)"NetworkReady";
	network_ready.status = net.ready;
	network_ready.reason = net.ready ? NULL : net.reason;
	network_ready.message = net.ready ? NULL : net.message;
	rs.n_conditions = CRID_ARRAY_SIZE(conditions);
	rs.conditions = conditions;
	resp.status = &rs;

	/* The default handler is listed under "" as well, as the kubelet
	 * asks for it by that name. */
	handlers = calloc(cfg->n_runtimes + 1, sizeof(*handlers));
	handler_ptrs = calloc(cfg->n_runtimes + 1, sizeof(*handler_ptrs));
	handler_features = calloc(cfg->n_runtimes + 1, sizeof(*handler_features));
	if (!handlers || !handler_ptrs || !handler_features)
		return crid_err_nomem(err, "runtime handler list");
	for (size_t i = 0; i <= cfg->n_runtimes; i++) {
		const struct crid_runtime_handler *h = i == 0 ? crid_config_find_runtime(cfg, "") : &cfg->runtimes[i - 1];
		struct crid_handler_features hf;

		crid_runtime_features(rt, h, &hf);
		runtime__v1__runtime_handler__init(&handlers[i]);
		runtime__v1__runtime_handler_features__init(&handler_features[i]);
		handlers[i].name = i == 0 ? (char *)"" : cfg->runtimes[i - 1].name;
		handler_features[i].user_namespaces = hf.user_namespaces;
		handler_features[i].recursive_read_only_mounts = hf.rro;
		handlers[i].features = &handler_features[i];
		handler_ptrs[i] = &handlers[i];
	}
	resp.n_runtime_handlers = cfg->n_runtimes + 1;
	resp.runtime_handlers = handler_ptrs;
	/* Strict groups and mount_options take effect with any runtime;
	 * a user namespace with the host's network is refused. */
	features.supplemental_groups_policy = true;
	features.mount_options = true;
	resp.features = &features;

	if (req->verbose) {
		json_t *cidr;

		pthread_mutex_lock(&rt->lock);
		cidr = json_string(rt->pod_cidr ? rt->pod_cidr : "");
		pthread_mutex_unlock(&rt->lock);
		if ((r = status_info_add(&info, "config", crid_config_to_json(cfg), err)) < 0 ||
		    (r = status_info_add(&info, "podCIDR", cidr, err)) < 0 ||
		    (r = status_info_add(&info, "eventSubscribers",
					 json_integer(crid_events_subscribers(rt->events)), err)) < 0 ||
		    (r = status_info_add(&info, "cni", crid_network_describe(rt->net), err)) < 0 ||
		    (r = status_info_add(&info, "cdi", crid_cdi_describe(rt->cdi), err)) < 0 ||
		    (r = status_info_add(&info, "eventsDropped",
					 json_integer((json_int_t)crid_events_dropped(rt->events)), err)) < 0)
			return r;
		resp.n_info = info.n;
		resp.info = info.ptrs;
	}
	return crid_call_send(call, &resp.base, err);
}

static int runtime_config(void *data, const ProtobufCMessage *request, struct crid_call *call,
			  struct crid_err *err)
{
	struct crid_runtime *rt = data;
	Runtime__V1__RuntimeConfigResponse resp = RUNTIME__V1__RUNTIME_CONFIG_RESPONSE__INIT;
	Runtime__V1__LinuxRuntimeConfiguration linux_cfg = RUNTIME__V1__LINUX_RUNTIME_CONFIGURATION__INIT;

	linux_cfg.cgroup_driver = rt->cfg->cgroup_driver == CRID_CGROUP_SYSTEMD ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
										   : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
	resp.linux = &linux_cfg;
	return crid_call_send(call, &resp.base, err);
}

/* One CIDR: an IPv4 or IPv6 address, '/', a prefix length in range. */
static bool valid_cidr(const char *s, size_t len)
{
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char buf[sizeof(struct in6_addr)];
	const char *slash = memchr(s, '/', len);
	size_t alen, plen;
	long max, prefix = 0;

	if (!slash)
		return false;
	alen = (size_t)(slash - s);
	plen = len - alen - 1;
	if (alen == 0 || alen >= sizeof(addr) || plen == 0 || plen > 3)
		return false;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, buf) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, addr, buf) == 1)
		max = 128;
	else
		return false;
	for (size_t i = 0; i < plen; i++) {
		if (slash[1 + i] < '0' || slash[1 + i] > '9')
			return false;
		prefix = prefix * 10 + (slash[1 + i] - '0');
	}
	return prefix <= max;
}

/* pod_cidr may list one CIDR per address family, comma-separated. */
static bool valid_pod_cidr(const char *s)
{
	while (*s) {
		size_t len = strcspn(s, ",");

		if (!valid_cidr(s, len))
			return false;
		s += len;
		if (*s == ',' && *++s == '\0')
			return false;
	}
	return true;
}

static int update_runtime_config(void *data, const ProtobufCMessage *request, struct crid_call *call,
				 struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__UpdateRuntimeConfigRequest *req = (const Runtime__V1__UpdateRuntimeConfigRequest *)request;
	Runtime__V1__UpdateRuntimeConfigResponse resp = RUNTIME__V1__UPDATE_RUNTIME_CONFIG_RESPONSE__INIT;
	const char *cidr = NULL;

	if (req->runtime_config && req->runtime_config->network_config)
		cidr = req->runtime_config->network_config->pod_cidr;
	if (cidr && *cidr) {
		char *copy;

		if (!valid_pod_cidr(cidr))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "runtime_config.network_config.pod_cidr: \"%.64s\" is not a CIDR "
					    "(or two, comma-separated)",
					    cidr);
		copy = strdup(cidr);
		if (!copy)
			return crid_err_nomem(err, "pod CIDR");
		pthread_mutex_lock(&rt->lock);
		free(rt->pod_cidr);
		rt->pod_cidr = copy;
		pthread_mutex_unlock(&rt->lock);
	}
	return crid_call_send(call, &resp.base, err);
}

static int get_container_events(void *data, const ProtobufCMessage *request, struct crid_call *call,
				struct crid_err *err)
{
	struct crid_runtime *rt = data;
	int r = crid_events_subscribe(rt->events, call, err);

	return r < 0 ? r : CRID_CALL_PENDING;
}

int crid_runtime_register(struct crid_runtime *rt, struct crid_rpc_methods *methods, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "Version", version },
		{ "Status", status },
		{ "RuntimeConfig", runtime_config },
		{ "UpdateRuntimeConfig", update_runtime_config },
		{ "GetContainerEvents", get_container_events },
	};
	static const char *const from_memory[] = {
		"Version", "ListPodSandbox", "ListContainers", "ContainerStatus",
	};
	int r = crid_rpc_methods_register_all(methods, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);

	if (r == 0)
		r = crid_pods_register(rt, methods, err);
	if (r == 0)
		r = crid_containers_register(rt, methods, err);
	if (r == 0)
		r = crid_pod_stats_register(rt, methods, err);
	if (r == 0)
		r = crid_container_streams_register(rt, methods, err);
	if (r == 0)
		r = crid_pod_portforward_register(rt, methods, err);
	/* The kubelet's relist and status polls, answered from the tables and
	 * the objects' state under short locks: served on the loop. */
	for (size_t i = 0; r == 0 && i < CRID_ARRAY_SIZE(from_memory); i++)
		r = crid_rpc_methods_run_on_loop(methods, "RuntimeService", from_memory[i], err);
	return r;
}
