/* Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus, ListPodSandbox, UpdatePodSandboxResources. A pod is its
 * namespaces and files (pod_ns), its user namespace when it asks for one,
 * and its cgroup's resources (pod_cgroup.c); no infra container. Status
 * and lists answer from memory. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STREAM_BATCH 100 /* items per StreamPodSandboxes message */

#include "common/clock.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/idmap.h"
#include "common/log.h"
#include "container/container.h"
#include "network/network.h"
#include "pod/pod.h"
#include "pod/pod_sandbox.h"
#include "runtime/objects.h"
#include "runtime/views.h"

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
	/* Containers' cgroups go under it even when the pod asks no resources. */
	if (c->linux && c->linux->cgroup_parent && *c->linux->cgroup_parent &&
	    !crid_pod_cgroup_parent_ok(c->linux->cgroup_parent))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "config.linux.cgroup_parent \"%.64s\" is not a cgroup path (no \".\", \"..\" or odd characters)",
				    c->linux->cgroup_parent);
	return crid_pod_metadata_check(c, err);
}

#define USERNS_FIELD "linux.security_context.namespace_options.userns_options"

/* The pod's user namespace mappings (mode POD), n 0 when it has none. */
static int userns_mappings(const Runtime__V1__PodSandboxConfig *c, struct crid_idmap *uids, size_t *n_uids,
			   struct crid_idmap *gids, size_t *n_gids, struct crid_err *err)
{
	const Runtime__V1__NamespaceOption *o =
		c->linux && c->linux->security_context ? c->linux->security_context->namespace_options : NULL;
	const Runtime__V1__UserNamespace *u = o ? o->userns_options : NULL;

	*n_uids = *n_gids = 0;
	if (!u || u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE) {
		if (u && (u->n_uids || u->n_gids))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, USERNS_FIELD ": mode NODE takes no mappings");
		return 0;
	}
	if (u->mode != RUNTIME__V1__NAMESPACE_MODE__POD)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, USERNS_FIELD ".mode: only POD and NODE are supported");
	if (u->n_uids > CRID_IDMAP_MAX || u->n_gids > CRID_IDMAP_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, USERNS_FIELD ": more than %d mappings",
				    CRID_IDMAP_MAX);
	for (size_t i = 0; i < u->n_uids; i++)
		uids[i] = (struct crid_idmap){ u->uids[i]->container_id, u->uids[i]->host_id, u->uids[i]->length };
	for (size_t i = 0; i < u->n_gids; i++)
		gids[i] = (struct crid_idmap){ u->gids[i]->container_id, u->gids[i]->host_id, u->gids[i]->length };
	*n_uids = u->n_uids;
	*n_gids = u->n_gids;
	if (*n_uids == 0 || *n_gids == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, USERNS_FIELD ": mode POD needs uids and gids");
	{
		uint32_t host_id;

		/* The pod's root must be someone: it owns the root file system. */
		if (!crid_idmap_outside(uids, *n_uids, 0, &host_id) || !crid_idmap_outside(gids, *n_gids, 0, &host_id))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, USERNS_FIELD ": ID 0 is not mapped");
	}
	if (c->linux->security_context->privileged)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "linux.security_context.privileged: not with a user namespace");
	return 0;
}

/* Everything about the request that needs no kernel state. */
static int check_pod_security(struct crid_runtime *rt, const Runtime__V1__PodSandboxConfig *c,
			      const struct crid_spec_host *host, struct crid_err *err)
{
	const Runtime__V1__LinuxSandboxSecurityContext *psc = c->linux ? c->linux->security_context : NULL;
	int r;

	if ((r = crid_spec_pod_lsm_check(psc, host, err)) < 0)
		return r;
	/* The pod's own seccomp profile has no process to apply to here,
	 * but a missing or broken Localhost file is the request's fault. */
	if (psc && psc->seccomp && psc->seccomp->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost) {
		_cleanup_(json_decrefp) json_t *profile = NULL;

		r = crid_spec_seccomp_load(psc->seccomp->localhost_ref, host->held_caps, host, &profile, err);
		if (r < 0)
			return crid_err_wrap(err, "linux.security_context.seccomp: localhost profile ");
	}
	return 0;
}

/* Lets the group of the pod's root (inside GID 0, as the host sees it)
 * search dir: the OCI runtime, already in the pod's user namespace, must
 * reach the pod's files, and crid's own pod init launcher, host root
 * without capabilities, must still write there. Other users get nothing. */
static int open_to_pod_root(const char *dir, const struct crid_pod_ns_options *o, struct crid_err *err)
{
	gid_t gid = (gid_t)-1;

	for (size_t i = 0; i < o->n_gids; i++)
		if (o->gids[i].inside == 0)
			gid = o->gids[i].outside;
	if (gid == (gid_t)-1)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "the pod's user namespace maps no group 0");
	if (chown(dir, (uid_t)-1, gid) < 0 || chmod(dir, 0710) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s to the pod's root", dir);
	return 0;
}

/* Sets up the pod's namespaces and files (the slow part, outside locks). */
static int set_up_pod(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err)
{
	const Runtime__V1__PodSandboxConfig *c = p->config;
	struct crid_pod_ns_options o = { 0 };
	_cleanup_free_ char **keys = NULL, **values = NULL;
	_cleanup_free_ struct crid_idmap *ids = NULL;
	struct crid_spec_host host;
	int r;

	crid_spec_host_probe(&host);
	if ((r = check_pod_security(rt, c, &host, err)) < 0)
		return r;
	ids = calloc(2 * CRID_IDMAP_MAX, sizeof(*ids));
	if (!ids)
		return crid_err_nomem(err, "ID mappings");
	r = userns_mappings(c, ids, &o.n_uids, ids + CRID_IDMAP_MAX, &o.n_gids, err);
	/* A user-namespaced runtime reaches root file systems and volumes
	 * through these as the pod's root, an "other" user to them. */
	if (r == 0 && o.n_uids && ((r = crid_check_searchable(rt->containers_dir, err)) < 0 ||
				   (r = crid_check_searchable(rt->pods_dir, err)) < 0))
		r = crid_err_wrap(err, USERNS_FIELD ": ");
	if (r == 0 && o.n_uids) {
		struct crid_handler_features f;

		crid_runtime_features(rt, p->handler, &f);
		if (!f.user_namespaces)
			r = crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					 USERNS_FIELD ": runtime handler %s cannot run user namespaces here (it needs a "
					 "runtime that joins one, ID-mapped mounts on %s, and run directories "
					 "searchable by others)",
					 p->handler->name, rt->cfg->state_root);
	}
	if (r < 0)
		return r;
	o.uids = ids;
	o.gids = ids + CRID_IDMAP_MAX;
	/* Private: the pod's /dev/shm is in it. */
	r = crid_mkdir_private(p->dir, err);
	if (r == 0 && o.n_uids)
		r = open_to_pod_root(p->dir, &o, err);
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
	/* In a sandbox the runtime's own kernel shares the PID namespace. */
	o.shared_pid = ns_mode(c, 1) == RUNTIME__V1__NAMESPACE_MODE__POD && !p->handler->sandbox_per_pod;
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
	r = crid_pod_ns_create(&o, &p->ns, err);
	if (r == 0 && c->linux && c->linux->resources)
		r = crid_pod_cgroup_apply(c->linux->cgroup_parent, c->linux->resources, &host, &p->resources, err);
	return r;
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

/* ADD in the pod's pinned network namespace, with the node's pod CIDR. */
static int attach_network(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err)
{
	struct crid_network_pod np = { .id = p->id, .netns = p->ns.net_path, .config = p->config };
	_cleanup_free_ char *cidr = NULL;

	pthread_mutex_lock(&rt->lock);
	cidr = rt->pod_cidr ? strdup(rt->pod_cidr) : NULL;
	pthread_mutex_unlock(&rt->lock);
	if (!cidr && rt->pod_cidr)
		return crid_err_nomem(err, "pod CIDR");
	np.pod_cidr = cidr;
	return crid_network_attach(rt->net, &np, &p->net, err);
}

/* DEL, unless there is nothing (left) to tear down; pod lock held. */
static int detach_network(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err)
{
	if (!p->net || crid_network_attachment_detached(p->net))
		return 0;
	return crid_network_detach(rt->net, p->net, err);
}

static int run_pod_sandbox(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__RunPodSandboxRequest *req = (const Runtime__V1__RunPodSandboxRequest *)request;
	Runtime__V1__RunPodSandboxResponse resp = RUNTIME__V1__RUN_POD_SANDBOX_RESPONSE__INIT;
	const Runtime__V1__PodSandboxConfig *c = req->config;
	const struct crid_runtime_handler *h;
	_cleanup_(crid_pod_unrefp) struct crid_pod *p = NULL;
	struct crid_network_readiness ready;
	bool host_network;
	int r;

	if ((r = validate_pod_config(c, err)) < 0)
		return r;
	h = crid_config_find_runtime(rt->cfg, req->runtime_handler ? req->runtime_handler : "");
	if (!h)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "runtime_handler \"%s\" is not configured",
				    req->runtime_handler);
	{
		char binary[PATH_MAX];

		/* No pod that none of its containers could run in. */
		if ((r = crid_handler_binary(h, binary, sizeof(binary), err)) < 0)
			return crid_err_wrap(err, "run pod sandbox %s: ", c->metadata->name);
	}
	/* As the kubelet's other runtimes: no pod network, no pod (but a pod
	 * on the node's network needs none). */
	host_network = ns_mode(c, 0) == RUNTIME__V1__NAMESPACE_MODE__NODE;
	if (!host_network) {
		crid_network_readiness(rt->net, &ready);
		if (!ready.ready)
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					    "run pod sandbox %s: the pod network is not ready: %s", c->metadata->name,
					    ready.message);
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return crid_err_nomem(err, "pod");
	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->lock, NULL);
	crid_cpu_rate_init(&p->cpu);
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
	if (r == 0 && !host_network)
		r = attach_network(rt, p, err);
	/* After the network: gVisor takes the namespace's interfaces as the
	 * sandbox starts. */
	if (r == 0 && h->sandbox_per_pod)
		r = crid_pod_sandbox_start(rt, p, err);
	/* A client that gave up will retry: leave no pod holding the name. */
	if (r == 0 && crid_call_cancelled(call))
		r = crid_err_set(err, CRID_CANCELLED, ECANCELED, "the client cancelled RunPodSandbox");
	if (r < 0) {
		struct crid_err ignored;

		if (h->sandbox_per_pod && crid_pod_sandbox_remove(rt, p, &ignored) < 0)
			log_error("cannot remove the sandbox of a pod that failed", "pod", p->id, "error", ignored.msg);
		/* Its record stays when DEL fails: start-up tries again. */
		if (detach_network(rt, p, &ignored) < 0)
			log_error("cannot tear down the network of a pod that failed", "pod", p->id, "error",
				  ignored.msg);
		crid_pod_ns_remove(p->dir, &ignored);
		/* Only when crid or the sandbox's runtime may have made it: the
		 * kubelet makes its own. */
		if (p->config->linux && (p->config->linux->resources || h->sandbox_per_pod))
			remove_cgroup_parent(p->config->linux->cgroup_parent);
		crid_pod_unlink(rt, p);
		return crid_err_wrap(err, "run pod sandbox %s: ", p->name_key);
	}
	pthread_mutex_lock(&p->lock);
	p->created_at = crid_realtime_ns();
	p->ready = true;
	crid_pod_persist(rt, p);
	/* A pod is created and started in one step; the peers send both. */
	crid_event_pod(rt, p, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT, p->created_at);
	crid_event_pod(rt, p, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT, p->created_at);
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
	/* The sandbox last: the containers ran in it. */
	r = p->handler->sandbox_per_pod ? crid_pod_sandbox_stop(rt, p, err) : 0;
	if (r == 0)
		r = detach_network(rt, p, err);
	if (r == 0)
		r = crid_pod_ns_stop(&p->ns, err);
	if (r == 0 && atomic_exchange(&p->ready, false)) {
		crid_pod_persist(rt, p);
		crid_event_pod(rt, p, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT, 0);
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		return crid_err_wrap(err, "stop pod sandbox %s: ", p->id);
	return crid_call_send(call, &resp.base, err);
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
	r = p->handler->sandbox_per_pod ? crid_pod_sandbox_remove(rt, p, err) : 0;
	if (r == 0)
		r = detach_network(rt, p, err);
	if (r < 0) {
		pthread_mutex_unlock(&p->lock);
		return crid_err_wrap(err, "remove pod sandbox %s: ", p->id);
	}
	crid_pod_ns_stop(&p->ns, err);
	if (atomic_exchange(&p->ready, false)) /* removed without a stop first */
		crid_event_pod(rt, p, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT, 0);
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
	crid_event_pod(rt, p, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT, 0);
	log_info("pod sandbox removed", "pod", p->id);
	return crid_call_send(call, &resp.base, err);
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
	struct crid_pod_view v;
	int r;

	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod_sandbox_id is empty");
	r = crid_pod_find(rt, req->pod_sandbox_id, &p, err);
	if (r < 0)
		return r;
	/* A sandbox that died since is the one thing looked at. */
	crid_pod_sandbox_check(rt, p);
	/* From memory and without the pod's lock, which Stop and Remove hold
	 * across slow work; only the verbose details wait for it. */
	crid_pod_view_fill(p, &v);
	if (req->verbose) {
		pthread_mutex_lock(&p->lock);
		json_t *doc = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:s?, s:O?, s:o?, s:i}", "dir", p->dir,
					"userns", p->ns.user_path, "netns", p->ns.net_path, "ipcns", p->ns.ipc_path,
					"utsns", p->ns.uts_path, "pid", (json_int_t)p->ns.init_pid, "runtimePath",
					p->handler->path, "resources", p->resources, "cni",
					p->net ? crid_network_attachment_describe(p->net) : NULL, "sandboxPid",
					(int)p->sandbox_pid);

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

/* ListPodSandbox and StreamPodSandboxes: one answer, or batches of it. */
static int send_pods(struct crid_runtime *rt, const Runtime__V1__PodSandboxFilter *f, struct crid_call *call,
		     bool stream, struct crid_err *err)
{
	_cleanup_free_ Runtime__V1__PodSandbox *items = NULL;
	_cleanup_free_ Runtime__V1__PodSandbox **ptrs = NULL;
	Runtime__V1__PodSandbox one; /* the entry being packed, for a list */
	const ProtobufCMessageDescriptor *desc = &runtime__v1__list_pod_sandbox_response__descriptor;
	size_t n = 0, cap = 0;
	int r = 0;

	/* The table lock is held while the reply is built: no runtime call
	 * happens under it, and answers come from memory: ListPodSandbox from
	 * each pod's entry as packed before, unless its state changed since. */
	if (!crid_call_lock(call, &rt->lock))
		return CRID_CALL_TO_WORKER;
	crid_packed_list_begin(&rt->pod_list);
	for (struct crid_pod *p = rt->pods; stream && p; p = p->next)
		cap++;
	if (stream) {
		items = calloc(cap ? cap : 1, sizeof(*items));
		ptrs = calloc(cap ? cap : 1, sizeof(*ptrs));
		if (!items || !ptrs) {
			pthread_mutex_unlock(&rt->lock);
			return crid_err_nomem(err, "pod list");
		}
	}
	for (struct crid_pod *p = rt->pods; p; p = p->next) {
		Runtime__V1__PodSandbox *it = stream ? &items[n] : &one;
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
		if (!stream && crid_packed_entry_valid(&p->listed, ready, p->created_at)) {
			if ((r = crid_packed_list_add(&rt->pod_list, desc, &p->listed, err)) < 0)
				goto out;
			continue;
		}
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
		if (!stream) {
			if ((r = crid_packed_entry_set(&p->listed, &it->base, ready, p->created_at, err)) < 0 ||
			    (r = crid_packed_list_add(&rt->pod_list, desc, &p->listed, err)) < 0)
				goto out;
			continue;
		}
		ptrs[n++] = it;
	}
	if (stream) {
		r = crid_call_send_items(call, &runtime__v1__stream_pod_sandboxes_response__descriptor,
					 (void *const *)ptrs, n, STREAM_BATCH, err);
	} else {
		r = crid_call_send_packed(call, rt->pod_list.buf, rt->pod_list.len, err);
	}
out:
	crid_packed_list_end(&rt->pod_list);
	pthread_mutex_unlock(&rt->lock);
	return r;
}

static int list_pod_sandbox(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	const Runtime__V1__ListPodSandboxRequest *req = (const Runtime__V1__ListPodSandboxRequest *)request;

	return send_pods(data, req->filter, call, false, err);
}

static int stream_pod_sandboxes(void *data, const ProtobufCMessage *request, struct crid_call *call,
				struct crid_err *err)
{
	const Runtime__V1__StreamPodSandboxesRequest *req = (const Runtime__V1__StreamPodSandboxesRequest *)request;

	return send_pods(data, req->filter, call, true, err);
}

/* The kubelet calls this after resizing the pod's cgroup itself; without
 * a kubelet crid is the one that resizes it. */
static int update_pod_sandbox_resources(void *data, const ProtobufCMessage *request, struct crid_call *call,
					struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__UpdatePodSandboxResourcesRequest *req =
		(const Runtime__V1__UpdatePodSandboxResourcesRequest *)request;
	Runtime__V1__UpdatePodSandboxResourcesResponse resp = RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_RESPONSE__INIT;
	_cleanup_(crid_pod_unrefp) struct crid_pod *p = NULL;
	struct crid_spec_host host;
	json_t *applied = NULL;
	int r;

	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod_sandbox_id is empty");
	if ((r = crid_pod_find(rt, req->pod_sandbox_id, &p, err)) < 0)
		return r;
	if (!req->resources)
		return crid_call_send(call, &resp.base, err); /* the overhead alone sizes nothing */
	crid_spec_host_probe(&host);
	pthread_mutex_lock(&p->lock);
	if (!atomic_load(&p->ready)) {
		pthread_mutex_unlock(&p->lock);
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "pod sandbox %s is not ready", p->id);
	}
	r = crid_pod_cgroup_apply(p->config->linux ? p->config->linux->cgroup_parent : NULL, req->resources, &host,
				  &applied, err);
	if (r == 0 && applied) {
		json_decref(p->resources);
		p->resources = applied;
		crid_pod_persist(rt, p);
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		return crid_err_wrap(err, "update pod sandbox %s: ", p->id);
	return crid_call_send(call, &resp.base, err);
}

int crid_pods_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "RunPodSandbox", run_pod_sandbox },	    { "StopPodSandbox", stop_pod_sandbox },
		{ "RemovePodSandbox", remove_pod_sandbox }, { "PodSandboxStatus", pod_sandbox_status },
		{ "ListPodSandbox", list_pod_sandbox },	    { "StreamPodSandboxes", stream_pod_sandboxes },
		{ "UpdatePodSandboxResources", update_pod_sandbox_resources },
	};
	return crid_rpc_methods_register_all(m, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);
}
