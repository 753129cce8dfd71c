/* Pods' resource use: PodSandboxStats, ListPodSandboxStats and
 * StreamPodSandboxStats. A pod's CPU, memory and processes come from the
 * cgroup parent the kubelet gave it, or, for a pod without one (its
 * containers then share crid's default parent with other pods), from the
 * sum of its containers; its network counters from inside its network
 * namespace; its containers' stats from container/ (a deliberate sideways
 * call, as stopping a pod is). */
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "container/container.h"
#include "pod/pod.h"

#define STREAM_BATCH 50 /* pods per StreamPodSandboxStats message: each carries its containers */

static bool has_own_cgroup(const struct crid_pod *p)
{
	return p->config->linux && p->config->linux->cgroup_parent && *p->config->linux->cgroup_parent;
}

static void add_sample(struct crid_cgroup_sample *sum, const struct crid_cgroup_sample *s)
{
	if (s->has_cpu) {
		sum->has_cpu = true;
		sum->cpu_usage_ns += s->cpu_usage_ns;
	}
	if (s->has_memory) {
		sum->has_memory = true;
		sum->mem_usage += s->mem_usage;
		sum->mem_working_set += s->mem_working_set;
		sum->mem_rss += s->mem_rss;
		sum->mem_pgfault += s->mem_pgfault;
		sum->mem_pgmajfault += s->mem_pgmajfault;
	}
	if (s->has_pids) {
		sum->has_pids = true;
		sum->pids += s->pids;
	}
}

int crid_pod_usage_read(struct crid_runtime *rt, struct crid_pod *p, struct crid_pod_usage *u, struct crid_err *err)
{
	_cleanup_free_ char *netns = NULL;
	struct crid_err ignored;
	int r;

	memset(u, 0, sizeof(*u));
	r = crid_containers_matching(rt, NULL, p->id, NULL, 0, false, &u->ctrs, &u->n, err);
	if (r < 0)
		return r;
	u->cu = calloc(u->n ? u->n : 1, sizeof(*u->cu));
	if (!u->cu) {
		crid_pod_usage_free(u);
		return crid_err_nomem(err, "pod stats");
	}
	for (size_t i = 0; i < u->n; i++)
		crid_container_usage_read(rt, u->ctrs[i], &u->cu[i]);
	if (!has_own_cgroup(p) ||
	    crid_cgroup_read(&rt->cgroups, p->config->linux->cgroup_parent, &u->cg, &ignored) < 0 ||
	    (!u->cg.has_cpu && !u->cg.has_memory)) {
		memset(&u->cg, 0, sizeof(u->cg));
		u->cg.timestamp = crid_realtime_ns();
		u->cg.mem_limit = CRID_CGROUP_NO_LIMIT;
		for (size_t i = 0; i < u->n; i++)
			add_sample(&u->cg, &u->cu[i].cg);
	}
	if (u->cg.has_cpu)
		u->has_rate = crid_cpu_rate_update(&p->cpu, u->cg.cpu_usage_ns, crid_monotonic_ns(), &u->nano_cores);
	/* The path is copied under the lock: StopPodSandbox may free it. */
	pthread_mutex_lock(&p->lock);
	if (atomic_load(&p->ready) && p->ns.net_path)
		netns = strdup(p->ns.net_path);
	pthread_mutex_unlock(&p->lock);
	if (netns) {
		u->net = malloc(sizeof(*u->net));
		if (u->net && crid_netdev_read(netns, u->net, &ignored) < 0) {
			log_debug("no network counters", "pod", p->id, "error", ignored.msg);
			free(u->net);
			u->net = NULL;
		}
	}
	return 0;
}

void crid_pod_usage_free(struct crid_pod_usage *u)
{
	for (size_t i = 0; i < u->n; i++)
		crid_container_unref(u->ctrs[i]);
	free(u->ctrs);
	free(u->cu);
	free(u->net);
	memset(u, 0, sizeof(*u));
}

/* One pod's stats message and everything it points to. */
struct pod_msg {
	struct crid_pod_usage u;
	Runtime__V1__PodSandboxStats stats;
	Runtime__V1__PodSandboxAttributes attrs;
	Runtime__V1__LinuxPodSandboxStats linux;
	struct crid_cpu_msg cpu;
	struct crid_memory_msg mem;
	Runtime__V1__ProcessUsage process;
	Runtime__V1__UInt64Value process_count;
	Runtime__V1__NetworkUsage network;
	Runtime__V1__NetworkInterfaceUsage ifaces[CRID_NETDEV_MAX];
	Runtime__V1__NetworkInterfaceUsage *iface_ptrs[CRID_NETDEV_MAX];
	Runtime__V1__UInt64Value counters[CRID_NETDEV_MAX][4];
	struct crid_container_stats_msg *ctr_msgs;
	Runtime__V1__ContainerStats **ctr_ptrs;
};

static void pod_msg_clear(struct pod_msg *m)
{
	crid_pod_usage_free(&m->u);
	free(m->ctr_msgs);
	free(m->ctr_ptrs);
}

static Runtime__V1__UInt64Value *u64(Runtime__V1__UInt64Value *v, uint64_t value)
{
	runtime__v1__uint64_value__init(v);
	v->value = value;
	return v;
}

static void fill_network(struct pod_msg *m)
{
	const struct crid_netdev_list *l = m->u.net;
	const struct crid_netdev *def = crid_netdev_default(l);

	runtime__v1__network_usage__init(&m->network);
	m->network.timestamp = l->timestamp;
	for (size_t i = 0; i < l->n; i++) {
		Runtime__V1__NetworkInterfaceUsage *it = &m->ifaces[i];

		runtime__v1__network_interface_usage__init(it);
		it->name = (char *)l->dev[i].name;
		it->rx_bytes = u64(&m->counters[i][0], l->dev[i].rx_bytes);
		it->rx_errors = u64(&m->counters[i][1], l->dev[i].rx_errors);
		it->tx_bytes = u64(&m->counters[i][2], l->dev[i].tx_bytes);
		it->tx_errors = u64(&m->counters[i][3], l->dev[i].tx_errors);
		m->iface_ptrs[i] = it;
		if (&l->dev[i] == def)
			m->network.default_interface = it;
	}
	m->network.n_interfaces = l->n;
	m->network.interfaces = m->iface_ptrs;
	m->linux.network = &m->network;
}

static int pod_msg_fill(struct crid_runtime *rt, struct crid_pod *p, struct pod_msg *m, struct crid_err *err)
{
	int r;

	memset(m, 0, sizeof(*m));
	if ((r = crid_pod_usage_read(rt, p, &m->u, err)) < 0)
		return r;
	runtime__v1__pod_sandbox_stats__init(&m->stats);
	runtime__v1__pod_sandbox_attributes__init(&m->attrs);
	runtime__v1__linux_pod_sandbox_stats__init(&m->linux);
	m->attrs.id = p->id;
	m->attrs.metadata = p->config->metadata;
	m->attrs.n_labels = p->config->n_labels;
	m->attrs.labels = (Runtime__V1__PodSandboxAttributes__LabelsEntry **)p->config->labels;
	m->attrs.n_annotations = p->config->n_annotations;
	m->attrs.annotations = (Runtime__V1__PodSandboxAttributes__AnnotationsEntry **)p->config->annotations;
	m->stats.attributes = &m->attrs;
	m->stats.linux = &m->linux;
	if (m->u.cg.has_cpu) {
		crid_cpu_usage_fill(&m->u.cg, m->u.has_rate, m->u.nano_cores, &m->cpu);
		m->linux.cpu = &m->cpu.cpu;
	}
	if (m->u.cg.has_memory) {
		crid_memory_usage_fill(&m->u.cg, &m->mem);
		m->linux.memory = &m->mem.mem;
	}
	if (m->u.cg.has_pids) {
		runtime__v1__process_usage__init(&m->process);
		m->process.timestamp = m->u.cg.timestamp;
		m->process.process_count = u64(&m->process_count, m->u.cg.pids);
		m->linux.process = &m->process;
	}
	if (m->u.net)
		fill_network(m);
	m->ctr_msgs = calloc(m->u.n ? m->u.n : 1, sizeof(*m->ctr_msgs));
	m->ctr_ptrs = calloc(m->u.n ? m->u.n : 1, sizeof(*m->ctr_ptrs));
	if (!m->ctr_msgs || !m->ctr_ptrs) {
		pod_msg_clear(m);
		return crid_err_nomem(err, "pod stats");
	}
	for (size_t i = 0; i < m->u.n; i++) {
		crid_container_stats_fill(rt, m->u.ctrs[i], &m->u.cu[i], &m->ctr_msgs[i]);
		m->ctr_ptrs[i] = &m->ctr_msgs[i].stats;
	}
	m->linux.n_containers = m->u.n;
	m->linux.containers = m->ctr_ptrs;
	return 0;
}

static int pod_sandbox_stats(void *data, const ProtobufCMessage *request, struct crid_call *call,
			     struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__PodSandboxStatsRequest *req = (const Runtime__V1__PodSandboxStatsRequest *)request;
	Runtime__V1__PodSandboxStatsResponse resp = RUNTIME__V1__POD_SANDBOX_STATS_RESPONSE__INIT;
	_cleanup_(crid_pod_unrefp) struct crid_pod *p = NULL;
	_cleanup_free_ struct pod_msg *m = malloc(sizeof(*m));
	int r;

	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod_sandbox_id is empty");
	if (!m)
		return crid_err_nomem(err, "pod stats");
	if ((r = crid_pod_find(rt, req->pod_sandbox_id, &p, err)) < 0)
		return r;
	if ((r = pod_msg_fill(rt, p, m, err)) < 0)
		return r;
	resp.stats = &m->stats;
	r = crid_call_send(call, &resp.base, err);
	pod_msg_clear(m);
	return r;
}

static bool labels_match(const Runtime__V1__PodSandboxConfig *cfg,
			 Runtime__V1__PodSandboxStatsFilter__LabelSelectorEntry **want, size_t n_want)
{
	for (size_t i = 0; i < n_want; i++) {
		bool ok = false;

		for (size_t j = 0; j < cfg->n_labels && !ok; j++)
			ok = strcmp(cfg->labels[j]->key, want[i]->key) == 0 &&
			     strcmp(cfg->labels[j]->value, want[i]->value) == 0;
		if (!ok)
			return false;
	}
	return true;
}

int crid_pods_matching(struct crid_runtime *rt, const Runtime__V1__PodSandboxStatsFilter *f, bool ready_only,
		       struct crid_pod ***out, size_t *n, struct crid_err *err)
{
	size_t count = 0;

	*n = 0;
	pthread_mutex_lock(&rt->lock);
	for (struct crid_pod *p = rt->pods; p; p = p->next)
		count++;
	*out = calloc(count ? count : 1, sizeof(**out));
	if (!*out) {
		pthread_mutex_unlock(&rt->lock);
		return crid_err_nomem(err, "pod list");
	}
	for (struct crid_pod *p = rt->pods; p; p = p->next) {
		if (!p->created_at || (ready_only && !atomic_load(&p->ready)))
			continue;
		if (f && f->id && *f->id && strncmp(p->id, f->id, strlen(f->id)) != 0)
			continue;
		if (f && !labels_match(p->config, f->label_selector, f->n_label_selector))
			continue;
		atomic_fetch_add(&p->refs, 1);
		(*out)[(*n)++] = p;
	}
	pthread_mutex_unlock(&rt->lock);
	return 0;
}

/* ListPodSandboxStats and StreamPodSandboxStats: the ready pods the filter
 * matches (a stopped pod has nothing running to measure). */
static int send_pod_stats(struct crid_runtime *rt, const Runtime__V1__PodSandboxStatsFilter *f,
			  struct crid_call *call, bool stream, struct crid_err *err)
{
	struct crid_pod **pods = NULL;
	struct pod_msg *msgs = NULL;
	Runtime__V1__PodSandboxStats **ptrs = NULL;
	size_t n = 0, filled = 0;
	int r = crid_pods_matching(rt, f, true, &pods, &n, err);

	if (r < 0)
		return r;
	msgs = calloc(n ? n : 1, sizeof(*msgs));
	ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	if (!msgs || !ptrs)
		r = crid_err_nomem(err, "pod stats");
	for (size_t i = 0; i < n && r == 0; i++) {
		r = pod_msg_fill(rt, pods[i], &msgs[i], err);
		if (r == 0)
			ptrs[filled++] = &msgs[i].stats;
	}
	if (r == 0)
		r = crid_call_send_items(call,
					 stream ? &runtime__v1__stream_pod_sandbox_stats_response__descriptor
						: &runtime__v1__list_pod_sandbox_stats_response__descriptor,
					 (void *const *)ptrs, n, stream ? STREAM_BATCH : 0, err);
	for (size_t i = 0; i < filled; i++)
		pod_msg_clear(&msgs[i]);
	for (size_t i = 0; i < n; i++)
		crid_pod_unref(pods[i]);
	free(pods);
	free(msgs);
	free(ptrs);
	return r;
}

static int list_pod_sandbox_stats(void *data, const ProtobufCMessage *request, struct crid_call *call,
				  struct crid_err *err)
{
	const Runtime__V1__ListPodSandboxStatsRequest *req = (const Runtime__V1__ListPodSandboxStatsRequest *)request;

	return send_pod_stats(data, req->filter, call, false, err);
}

static int stream_pod_sandbox_stats(void *data, const ProtobufCMessage *request, struct crid_call *call,
				    struct crid_err *err)
{
	const Runtime__V1__StreamPodSandboxStatsRequest *req =
		(const Runtime__V1__StreamPodSandboxStatsRequest *)request;

	return send_pod_stats(data, req->filter, call, true, err);
}

int crid_pod_stats_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "PodSandboxStats", pod_sandbox_stats },
		{ "ListPodSandboxStats", list_pod_sandbox_stats },
		{ "StreamPodSandboxStats", stream_pod_sandbox_stats },
	};
	int r = crid_rpc_methods_register_all(m, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);

	return r < 0 ? r : crid_pod_metrics_register(rt, m, err);
}
