/* Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus, ListPodSandbox. A pod is its namespaces and files
 * (pod_ns), no infra container; status and lists answer from memory. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "container/container.h"
#include "pod/pod.h"
#include "runtime/objects.h"

static int ns_mode(const Runtime__V1__PodSandboxConfig *c, int which)
{
	const Runtime__V1__NamespaceOption *o = NULL;

	if (c->linux && c->linux->security_context)
		o = c->linux->security_context->namespace_options;
	if (!o)
		return RUNTIME__V1__NAMESPACE_MODE__POD;
	return which == 0 ? o->network : which == 1 ? o->pid : o->ipc;
}

static int validate_pod_config(const Runtime__V1__PodSandboxConfig *c, struct crid_err *err)
{
	if (!c)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config is missing");
	if (!c->metadata || !c->metadata->name || !*c->metadata->name)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.metadata.name is empty");
	if (!c->metadata->namespace_ || !*c->metadata->namespace_)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.metadata.namespace is empty");
	if (!c->metadata->uid || !*c->metadata->uid)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.metadata.uid is empty");
	if (c->log_directory && *c->log_directory && (c->log_directory[0] != '/' || strstr(c->log_directory, "..")))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "config.log_directory must be an absolute path without \"..\"");
	return crid_pod_metadata_check(c, err);
}

/* Sets up the pod's namespaces and files (the slow part, outside locks). */
static int set_up_pod(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err)
{
	const Runtime__V1__PodSandboxConfig *c = p->config;
	struct crid_pod_ns_options o = { 0 };
	_cleanup_free_ char **keys = NULL, **values = NULL;
	int r;

	/* Private: the pod's /dev/shm is in it. */
	r = crid_mkdir_private(p->dir, err);
	if (r == 0 && c->log_directory && *c->log_directory)
		r = crid_mkdir_p(c->log_directory, 0755, err); /* the kubelet may not have made it */
	if (r < 0)
		return r;
	o.dir = p->dir;
	/* None given: the node's, as the kubelet expects (pod names may be
	 * longer than a host name can be). */
	o.hostname = c->hostname ? c->hostname : "";
	o.host_network = ns_mode(c, 0) == RUNTIME__V1__NAMESPACE_MODE__NODE;
	o.host_uts = o.host_network;
	o.host_ipc = ns_mode(c, 2) == RUNTIME__V1__NAMESPACE_MODE__NODE;
	o.host_pid = ns_mode(c, 1) == RUNTIME__V1__NAMESPACE_MODE__NODE;
	o.shared_pid = ns_mode(c, 1) == RUNTIME__V1__NAMESPACE_MODE__POD;
	o.dns = c->dns_config;
	if (c->linux && c->linux->n_sysctls) {
		keys = calloc(c->linux->n_sysctls, sizeof(*keys));
		values = calloc(c->linux->n_sysctls, sizeof(*values));
		if (!keys || !values)
			return crid_err_nomem(err, "sysctls");
		for (size_t i = 0; i < c->linux->n_sysctls; i++) {
			keys[i] = c->linux->sysctls[i]->key;
			values[i] = c->linux->sysctls[i]->value;
		}
		o.sysctl_keys = keys;
		o.sysctl_values = values;
		o.n_sysctls = c->linux->n_sysctls;
	}
	return crid_pod_ns_create(&o, &p->ns, err);
}

static int run_pod_sandbox(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__RunPodSandboxRequest *req = (const Runtime__V1__RunPodSandboxRequest *)request;
	Runtime__V1__RunPodSandboxResponse resp = RUNTIME__V1__RUN_POD_SANDBOX_RESPONSE__INIT;
	const Runtime__V1__PodSandboxConfig *c = req->config;
	const struct crid_runtime_handler *h;
	_cleanup_(crid_pod_unrefp) struct crid_pod *p = NULL;
	int r;

	if ((r = validate_pod_config(c, err)) < 0)
		return r;
	h = crid_config_find_runtime(rt->cfg, req->runtime_handler ? req->runtime_handler : "");
	if (!h)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "runtime_handler \"%s\" is not configured",
				    req->runtime_handler);
	p = calloc(1, sizeof(*p));
	if (!p)
		return crid_err_nomem(err, "pod");
	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->lock, NULL);
	p->handler = h;
	if ((r = crid_new_id(p->id, err)) < 0)
		return r;
	p->config = (Runtime__V1__PodSandboxConfig *)crid_message_copy(&c->base);
	p->handler_name = strdup(req->runtime_handler ? req->runtime_handler : "");
	if (!p->config || !p->handler_name ||
	    asprintf(&p->name_key, "%s_%s_%s_%u", c->metadata->name, c->metadata->namespace_, c->metadata->uid,
		     c->metadata->attempt) < 0 ||
	    asprintf(&p->dir, "%s/%s", rt->pods_dir, p->id) < 0)
		return crid_err_nomem(err, "pod");

	/* Reserve the name: a second pod of that name waits for none of this. */
	pthread_mutex_lock(&rt->lock);
	if ((r = crid_pods_admit_locked(rt, crid_pod_list_weight(p->config, p->handler_name), err)) < 0) {
		pthread_mutex_unlock(&rt->lock);
		return r;
	}
	for (struct crid_pod *q = rt->pods; q; q = q->next) {
		if (strcmp(q->name_key, p->name_key) == 0) {
			r = crid_err_set(err, CRID_ALREADY_EXISTS, 0, "pod sandbox name %s is taken by pod %s",
					 p->name_key, q->id);
			pthread_mutex_unlock(&rt->lock);
			return r;
		}
	}
	atomic_fetch_add(&p->refs, 1);
	p->next = rt->pods;
	rt->pods = p;
	pthread_mutex_unlock(&rt->lock);

	r = set_up_pod(rt, p, err);
	/* A client that gave up will retry: leave no pod holding the name. */
	if (r == 0 && crid_call_cancelled(call))
		r = crid_err_set(err, CRID_CANCELLED, ECANCELED, "the client cancelled RunPodSandbox");
	if (r < 0) {
		struct crid_err ignored;

		crid_pod_ns_remove(p->dir, &ignored);
		crid_pod_unlink(rt, p);
		return crid_err_wrap(err, "run pod sandbox %s: ", p->name_key);
	}
	pthread_mutex_lock(&p->lock);
	p->created_at = crid_realtime_ns();
	p->ready = true;
	crid_pod_persist(rt, p);
	pthread_mutex_unlock(&p->lock);
	log_info("pod sandbox ready", "pod", p->id, "name", p->name_key);
	resp.pod_sandbox_id = p->id;
	return crid_call_send(call, &resp.base, err);
}

static int stop_pod_sandbox(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__StopPodSandboxRequest *req = (const Runtime__V1__StopPodSandboxRequest *)request;
	Runtime__V1__StopPodSandboxResponse resp = RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
	_cleanup_(crid_pod_unrefp) struct crid_pod *p = NULL;
	int r;

	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod_sandbox_id is empty");
	r = crid_pod_find(rt, req->pod_sandbox_id, &p, err);
	if (r < 0 && err->status == CRID_NOT_FOUND)
		return crid_call_send(call, &resp.base, err); /* idempotent, as the kubelet expects */
	if (r < 0)
		return r;
	r = crid_containers_stop_pod(rt, p->id, err);
	if (r < 0)
		return crid_err_wrap(err, "stop pod sandbox %s: ", p->id);
	pthread_mutex_lock(&p->lock);
	r = crid_pod_ns_stop(&p->ns, err);
	if (r == 0) {
		p->ready = false;
		crid_pod_persist(rt, p);
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		return crid_err_wrap(err, "stop pod sandbox %s: ", p->id);
	return crid_call_send(call, &resp.base, err);
}

/* The cgroup parent's directories, removed when empty: the OCI runtime
 * made them for the containers and removes only the containers' own. */
static void remove_cgroup_parent(const char *parent)
{
	static const char *const hierarchies[] = { "cpu",     "cpuacct", "cpuset", "memory", "devices", "freezer",
						   "blkio",   "pids",	 "hugetlb", "net_cls", "net_prio",
						   "perf_event", "systemd", "unified", "" };

	if (!parent || !*parent || strcmp(parent, "/") == 0 || strstr(parent, ".."))
		return;
	for (size_t i = 0; i < CRID_ARRAY_SIZE(hierarchies); i++) {
		char path[4096];

		snprintf(path, sizeof(path), "/sys/fs/cgroup%s%s%s", *hierarchies[i] ? "/" : "", hierarchies[i],
			 parent[0] == '/' ? parent : "/");
		if (parent[0] != '/')
			strncat(path, parent, sizeof(path) - strlen(path) - 1);
		rmdir(path); /* fails harmlessly when busy, missing or not ours */
	}
}

static int remove_pod_sandbox(void *data, const ProtobufCMessage *request, struct crid_call *call,
			      struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__RemovePodSandboxRequest *req = (const Runtime__V1__RemovePodSandboxRequest *)request;
	Runtime__V1__RemovePodSandboxResponse resp = RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT;
	_cleanup_(crid_pod_unrefp) struct crid_pod *p = NULL;
	int r;

	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod_sandbox_id is empty");
	r = crid_pod_find(rt, req->pod_sandbox_id, &p, err);
	if (r < 0 && err->status == CRID_NOT_FOUND)
		return crid_call_send(call, &resp.base, err); /* already gone */
	if (r < 0)
		return r;
	r = crid_containers_remove_pod(rt, p->id, err);
	if (r < 0)
		return crid_err_wrap(err, "remove pod sandbox %s: ", p->id);
	pthread_mutex_lock(&p->lock);
	crid_pod_ns_stop(&p->ns, err);
	r = crid_pod_ns_remove(p->dir, err);
	if (r == 0 && p->config->linux)
		remove_cgroup_parent(p->config->linux->cgroup_parent);
	if (r == 0)
		p->removed = true;
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		return crid_err_wrap(err, "remove pod sandbox %s: ", p->id);
	crid_object_forget(rt, "pod", p->id);
	crid_pod_unlink(rt, p);
	log_info("pod sandbox removed", "pod", p->id);
	return crid_call_send(call, &resp.base, err);
}

/* Map fields of the request's config, echoed back. */
static Runtime__V1__PodSandboxStatus__LabelsEntry **labels_of(const Runtime__V1__PodSandboxConfig *c, size_t *n)
{
	*n = c->n_labels;
	return (Runtime__V1__PodSandboxStatus__LabelsEntry **)c->labels;
}

static bool labels_match(Runtime__V1__PodSandboxConfig__LabelsEntry **have, size_t n_have,
			 Runtime__V1__PodSandboxFilter__LabelSelectorEntry **want, size_t n_want)
{
	for (size_t i = 0; i < n_want; i++) {
		bool ok = false;

		for (size_t j = 0; j < n_have && !ok; j++)
			ok = strcmp(have[j]->key, want[i]->key) == 0 && strcmp(have[j]->value, want[i]->value) == 0;
		if (!ok)
			return false;
	}
	return true;
}

struct pod_view {
	Runtime__V1__PodSandboxStatus status;
	Runtime__V1__PodSandboxNetworkStatus network;
	Runtime__V1__LinuxPodSandboxStatus linux_status;
	Runtime__V1__Namespace ns;
	Runtime__V1__NamespaceOption ns_options;
};

static void pod_status_fill(struct crid_pod *p, struct pod_view *v)
{
	const Runtime__V1__PodSandboxConfig *c = p->config;
	const Runtime__V1__NamespaceOption *opts = c->linux && c->linux->security_context
							   ? c->linux->security_context->namespace_options
							   : NULL;

	runtime__v1__pod_sandbox_status__init(&v->status);
	runtime__v1__pod_sandbox_network_status__init(&v->network);
	runtime__v1__linux_pod_sandbox_status__init(&v->linux_status);
	runtime__v1__namespace__init(&v->ns);
	runtime__v1__namespace_option__init(&v->ns_options);
	v->status.id = p->id;
	v->status.metadata = c->metadata;
	v->status.state = atomic_load(&p->ready) ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
				   : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
	v->status.created_at = p->created_at;
	v->network.ip = (char *)"";
	v->status.network = &v->network;
	v->ns.options = opts ? (Runtime__V1__NamespaceOption *)opts : &v->ns_options;
	v->linux_status.namespaces = &v->ns;
	v->status.linux = &v->linux_status;
	v->status.labels = labels_of(c, &v->status.n_labels);
	v->status.n_annotations = c->n_annotations;
	v->status.annotations = (Runtime__V1__PodSandboxStatus__AnnotationsEntry **)c->annotations;
	v->status.runtime_handler = p->handler_name;
}

static int pod_sandbox_status(void *data, const ProtobufCMessage *request, struct crid_call *call,
			      struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__PodSandboxStatusRequest *req = (const Runtime__V1__PodSandboxStatusRequest *)request;
	Runtime__V1__PodSandboxStatusResponse resp = RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INIT;
	Runtime__V1__PodSandboxStatusResponse__InfoEntry entry = RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INFO_ENTRY__INIT;
	Runtime__V1__PodSandboxStatusResponse__InfoEntry *entries[] = { &entry };
	_cleanup_(crid_pod_unrefp) struct crid_pod *p = NULL;
	_cleanup_free_ char *info = NULL;
	struct pod_view v;
	int r;

	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod_sandbox_id is empty");
	r = crid_pod_find(rt, req->pod_sandbox_id, &p, err);
	if (r < 0)
		return r;
	/* From memory and without the pod's lock, which Stop and Remove hold
	 * across slow work; only the verbose details wait for it. */
	pod_status_fill(p, &v);
	if (req->verbose) {
		pthread_mutex_lock(&p->lock);
		json_t *doc = json_pack("{s:s, s:s?, s:s?, s:s?, s:i, s:s?}", "dir", p->dir, "netns", p->ns.net_path,
					"ipcns", p->ns.ipc_path, "utsns", p->ns.uts_path, "pid", (json_int_t)p->ns.init_pid,
					"runtimePath", p->handler->path);

		info = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
		if (info) {
			entry.key = (char *)"info";
			entry.value = info;
			resp.n_info = 1;
			resp.info = entries;
		}
		pthread_mutex_unlock(&p->lock);
	}
	resp.status = &v.status;
	return crid_call_send(call, &resp.base, err);
}

static int list_pod_sandbox(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__ListPodSandboxRequest *req = (const Runtime__V1__ListPodSandboxRequest *)request;
	const Runtime__V1__PodSandboxFilter *f = req->filter;
	Runtime__V1__ListPodSandboxResponse resp = RUNTIME__V1__LIST_POD_SANDBOX_RESPONSE__INIT;
	_cleanup_free_ Runtime__V1__PodSandbox *items = NULL;
	_cleanup_free_ Runtime__V1__PodSandbox **ptrs = NULL;
	size_t n = 0, cap = 0;
	int r;

	/* The table lock is held while the reply is built: no runtime call
	 * happens under it, and answers come from memory. */
	pthread_mutex_lock(&rt->lock);
	for (struct crid_pod *p = rt->pods; p; p = p->next)
		cap++;
	items = calloc(cap ? cap : 1, sizeof(*items));
	ptrs = calloc(cap ? cap : 1, sizeof(*ptrs));
	if (!items || !ptrs) {
		pthread_mutex_unlock(&rt->lock);
		return crid_err_nomem(err, "pod list");
	}
	for (struct crid_pod *p = rt->pods; p; p = p->next) {
		Runtime__V1__PodSandbox *it = &items[n];
		bool ready = atomic_load(&p->ready);

		if (!p->created_at)
			continue; /* still being created */
		if (f && f->id && *f->id && strncmp(p->id, f->id, strlen(f->id)) != 0)
			continue;
		if (f && f->state &&
		    (int)f->state->state != (ready ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
						   : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY))
			continue;
		if (f && !labels_match(p->config->labels, p->config->n_labels, f->label_selector, f->n_label_selector))
			continue;
		runtime__v1__pod_sandbox__init(it);
		it->id = p->id;
		it->metadata = p->config->metadata;
		it->state = ready ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
				  : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
		it->created_at = p->created_at;
		it->n_labels = p->config->n_labels;
		it->labels = (Runtime__V1__PodSandbox__LabelsEntry **)p->config->labels;
		it->n_annotations = p->config->n_annotations;
		it->annotations = (Runtime__V1__PodSandbox__AnnotationsEntry **)p->config->annotations;
		it->runtime_handler = p->handler_name;
		ptrs[n++] = it;
	}
	resp.n_items = n;
	resp.items = ptrs;
	r = crid_call_send(call, &resp.base, err);
	pthread_mutex_unlock(&rt->lock);
	return r;
}

int crid_pods_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "RunPodSandbox", run_pod_sandbox },	    { "StopPodSandbox", stop_pod_sandbox },
		{ "RemovePodSandbox", remove_pod_sandbox }, { "PodSandboxStatus", pod_sandbox_status },
		{ "ListPodSandbox", list_pod_sandbox },
	};
	return crid_rpc_methods_register_all(m, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);
}
