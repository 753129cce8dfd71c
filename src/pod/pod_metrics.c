/* The CRI's own metrics, for a kubelet that serves /metrics/cadvisor from
 * the runtime: ListMetricDescriptors (a fixed list, cAdvisor's names and
 * labels) and ListPodSandboxMetrics / StreamPodSandboxMetrics (the values,
 * read on demand from the same sources as the stats, so timestamps are 0
 * as the CRI asks of uncached values). Every label value is borrowed from
 * the pods, containers and readings, which outlive the reply. */
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "pod/pod.h"

#define STREAM_BATCH 20 /* pods per StreamPodSandboxMetrics message */
#define MAX_LABELS 8

enum label_set {
	LABELS_BASE,	/* container, id, image, name, namespace, pod */
	LABELS_IFACE,	/* base, interface */
	LABELS_FAILURE, /* base, failure_type, scope */
	LABELS_DEVICE,	/* base, device */
};

enum metric_id {
	M_CPU,
	M_MEM_USAGE,
	M_MEM_WS,
	M_MEM_RSS,
	M_MEM_SWAP,
	M_MEM_LIMIT,
	M_MEM_FAILURES,
	M_START,
	M_PROCESSES,
	M_FS_USAGE,
	M_FS_INODES,
	M_RX_BYTES,
	M_RX_PACKETS,
	M_RX_ERRORS,
	M_RX_DROPPED,
	M_TX_BYTES,
	M_TX_PACKETS,
	M_TX_ERRORS,
	M_TX_DROPPED,
	N_METRICS,
};

static const struct {
	const char *name, *help;
	enum label_set labels;
	Runtime__V1__MetricType type;
} descs[N_METRICS] = {
#define COUNTER RUNTIME__V1__METRIC_TYPE__COUNTER
#define GAUGE RUNTIME__V1__METRIC_TYPE__GAUGE
	[M_CPU] = { "container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", LABELS_BASE,
		    COUNTER },
	[M_MEM_USAGE] = { "container_memory_usage_bytes", "Current memory usage in bytes, including all memory "
							  "regardless of when it was accessed",
			  LABELS_BASE, GAUGE },
	[M_MEM_WS] = { "container_memory_working_set_bytes", "Current working set in bytes.", LABELS_BASE, GAUGE },
	[M_MEM_RSS] = { "container_memory_rss", "Size of RSS in bytes.", LABELS_BASE, GAUGE },
	[M_MEM_SWAP] = { "container_memory_swap", "Container swap usage in bytes.", LABELS_BASE, GAUGE },
	[M_MEM_LIMIT] = { "container_spec_memory_limit_bytes", "Memory limit for the container.", LABELS_BASE, GAUGE },
	[M_MEM_FAILURES] = { "container_memory_failures_total", "Cumulative count of memory allocation failures.",
			     LABELS_FAILURE, COUNTER },
	[M_START] = { "container_start_time_seconds", "Start time of the container since unix epoch in seconds.",
		      LABELS_BASE, GAUGE },
	[M_PROCESSES] = { "container_processes", "Number of processes running inside the container.", LABELS_BASE,
			  GAUGE },
	[M_FS_USAGE] = { "container_fs_usage_bytes", "Number of bytes that are consumed by the container on this "
						     "filesystem.",
			 LABELS_DEVICE, GAUGE },
	[M_FS_INODES] = { "container_fs_inodes_used", "Number of inodes the container's writable layer uses.",
			  LABELS_DEVICE, GAUGE },
	[M_RX_BYTES] = { "container_network_receive_bytes_total", "Cumulative count of bytes received",
			 LABELS_IFACE, COUNTER },
	[M_RX_PACKETS] = { "container_network_receive_packets_total", "Cumulative count of packets received",
			   LABELS_IFACE, COUNTER },
	[M_RX_ERRORS] = { "container_network_receive_errors_total",
			  "Cumulative count of errors encountered while receiving", LABELS_IFACE, COUNTER },
	[M_RX_DROPPED] = { "container_network_receive_packets_dropped_total",
			   "Cumulative count of packets dropped while receiving", LABELS_IFACE, COUNTER },
	[M_TX_BYTES] = { "container_network_transmit_bytes_total", "Cumulative count of bytes transmitted",
			 LABELS_IFACE, COUNTER },
	[M_TX_PACKETS] = { "container_network_transmit_packets_total", "Cumulative count of packets transmitted",
			   LABELS_IFACE, COUNTER },
	[M_TX_ERRORS] = { "container_network_transmit_errors_total",
			  "Cumulative count of errors encountered while transmitting", LABELS_IFACE, COUNTER },
	[M_TX_DROPPED] = { "container_network_transmit_packets_dropped_total",
			   "Cumulative count of packets dropped while transmitting", LABELS_IFACE, COUNTER },
#undef COUNTER
#undef GAUGE
};

static const char *const base_keys[] = { "container", "id", "image", "name", "namespace", "pod" };
#define N_BASE 6

static size_t label_keys(enum label_set set, const char **keys)
{
	size_t n = 0;

	for (; n < N_BASE; n++)
		keys[n] = base_keys[n];
	if (set == LABELS_IFACE)
		keys[n++] = "interface";
	else if (set == LABELS_FAILURE) {
		keys[n++] = "failure_type";
		keys[n++] = "scope";
	} else if (set == LABELS_DEVICE)
		keys[n++] = "device";
	return n;
}

static int list_metric_descriptors(void *data, const ProtobufCMessage *request, struct crid_call *call,
				   struct crid_err *err)
{
	Runtime__V1__ListMetricDescriptorsResponse resp = RUNTIME__V1__LIST_METRIC_DESCRIPTORS_RESPONSE__INIT;
	Runtime__V1__MetricDescriptor d[N_METRICS], *ptrs[N_METRICS];
	const char *keys[N_METRICS][MAX_LABELS];

	for (size_t i = 0; i < N_METRICS; i++) {
		runtime__v1__metric_descriptor__init(&d[i]);
		d[i].name = (char *)descs[i].name;
		d[i].help = (char *)descs[i].help;
		d[i].n_label_keys = label_keys(descs[i].labels, keys[i]);
		d[i].label_keys = (char **)keys[i];
		ptrs[i] = &d[i];
	}
	resp.n_descriptors = N_METRICS;
	resp.descriptors = ptrs;
	return crid_call_send(call, &resp.base, err);
}

/* ---- values ---- */

struct slot {
	Runtime__V1__Metric m;
	Runtime__V1__UInt64Value v;
	const char *labels[MAX_LABELS];
};

/* What the base labels say of one pod or container. */
struct who {
	const char *container, *id, *image, *name, *ns, *pod;
};

struct slots {
	struct slot *v;
	size_t n, cap;
	Runtime__V1__Metric **ptrs;
};

static void add(struct slots *s, enum metric_id id, const struct who *w, uint64_t value, const char *x1,
		const char *x2)
{
	struct slot *sl;
	size_t n = N_BASE;

	if (s->n == s->cap)
		return; /* sized for the worst case: never */
	sl = &s->v[s->n];
	runtime__v1__metric__init(&sl->m);
	runtime__v1__uint64_value__init(&sl->v);
	sl->m.name = (char *)descs[id].name;
	sl->m.metric_type = descs[id].type;
	sl->v.value = value;
	sl->m.value = &sl->v;
	sl->labels[0] = w->container;
	sl->labels[1] = w->id;
	sl->labels[2] = w->image;
	sl->labels[3] = w->name;
	sl->labels[4] = w->ns;
	sl->labels[5] = w->pod;
	if (x1)
		sl->labels[n++] = x1;
	if (x2)
		sl->labels[n++] = x2;
	sl->m.n_label_values = n;
	sl->m.label_values = (char **)sl->labels;
	s->ptrs[s->n++] = &sl->m;
}

static void add_cgroup(struct slots *s, const struct who *w, const struct crid_cgroup_sample *cg)
{
	if (cg->has_cpu)
		add(s, M_CPU, w, cg->cpu_usage_ns / 1000000000ULL, NULL, NULL);
	if (cg->has_memory) {
		add(s, M_MEM_USAGE, w, cg->mem_usage, NULL, NULL);
		add(s, M_MEM_WS, w, cg->mem_working_set, NULL, NULL);
		add(s, M_MEM_RSS, w, cg->mem_rss, NULL, NULL);
		add(s, M_MEM_LIMIT, w, cg->mem_limit == CRID_CGROUP_NO_LIMIT ? 0 : cg->mem_limit, NULL, NULL);
		add(s, M_MEM_FAILURES, w, cg->mem_pgfault, "pgfault", "container");
		add(s, M_MEM_FAILURES, w, cg->mem_pgmajfault, "pgmajfault", "container");
	}
	if (cg->has_swap)
		add(s, M_MEM_SWAP, w, cg->swap_usage, NULL, NULL);
	if (cg->has_pids)
		add(s, M_PROCESSES, w, cg->pids, NULL, NULL);
}

#define CGROUP_METRICS 9
#define CONTAINER_METRICS (CGROUP_METRICS + 3)
#define IFACE_METRICS 8

/* One pod's PodSandboxMetrics and everything it points to. */
struct pod_metrics_msg {
	struct crid_pod_usage u;
	Runtime__V1__PodSandboxMetrics pm;
	struct slots pod;
	Runtime__V1__ContainerMetrics *cm;
	Runtime__V1__ContainerMetrics **cm_ptrs;
	struct slots *ctr;
	struct who pod_who, *ctr_who;
};

static void slots_free(struct slots *s)
{
	free(s->v);
	free(s->ptrs);
}

static int slots_alloc(struct slots *s, size_t cap)
{
	s->v = calloc(cap, sizeof(*s->v));
	s->ptrs = calloc(cap, sizeof(*s->ptrs));
	s->cap = cap;
	s->n = 0;
	return s->v && s->ptrs ? 0 : -1;
}

static void pod_metrics_clear(struct pod_metrics_msg *m)
{
	for (size_t i = 0; m->ctr && i < m->u.n; i++)
		slots_free(&m->ctr[i]);
	slots_free(&m->pod);
	free(m->ctr);
	free(m->cm);
	free(m->cm_ptrs);
	free(m->ctr_who);
	crid_pod_usage_free(&m->u);
}

static int pod_metrics_fill(struct crid_runtime *rt, struct crid_pod *p, struct pod_metrics_msg *m,
			    struct crid_err *err)
{
	const Runtime__V1__PodSandboxMetadata *md = p->config->metadata;
	const char *device = crid_layer_usage_mountpoint(rt->layers);
	size_t n_ifaces;
	int r;

	memset(m, 0, sizeof(*m));
	if ((r = crid_pod_usage_read(rt, p, &m->u, err)) < 0)
		return r;
	n_ifaces = m->u.net ? m->u.net->n : 0;
	m->cm = calloc(m->u.n ? m->u.n : 1, sizeof(*m->cm));
	m->cm_ptrs = calloc(m->u.n ? m->u.n : 1, sizeof(*m->cm_ptrs));
	m->ctr = calloc(m->u.n ? m->u.n : 1, sizeof(*m->ctr));
	m->ctr_who = calloc(m->u.n ? m->u.n : 1, sizeof(*m->ctr_who));
	if (!m->cm || !m->cm_ptrs || !m->ctr || !m->ctr_who ||
	    slots_alloc(&m->pod, CGROUP_METRICS + IFACE_METRICS * n_ifaces) < 0) {
		pod_metrics_clear(m);
		return crid_err_nomem(err, "pod metrics");
	}
	/* The pod itself, as cAdvisor shows a pod's cgroup: no container name. */
	m->pod_who = (struct who){ "", p->id, "", p->id, md->namespace_, md->name };
	add_cgroup(&m->pod, &m->pod_who, &m->u.cg);
	for (size_t i = 0; i < n_ifaces; i++) {
		const struct crid_netdev *d = &m->u.net->dev[i];

		add(&m->pod, M_RX_BYTES, &m->pod_who, d->rx_bytes, d->name, NULL);
		add(&m->pod, M_RX_PACKETS, &m->pod_who, d->rx_packets, d->name, NULL);
		add(&m->pod, M_RX_ERRORS, &m->pod_who, d->rx_errors, d->name, NULL);
		add(&m->pod, M_RX_DROPPED, &m->pod_who, d->rx_dropped, d->name, NULL);
		add(&m->pod, M_TX_BYTES, &m->pod_who, d->tx_bytes, d->name, NULL);
		add(&m->pod, M_TX_PACKETS, &m->pod_who, d->tx_packets, d->name, NULL);
		add(&m->pod, M_TX_ERRORS, &m->pod_who, d->tx_errors, d->name, NULL);
		add(&m->pod, M_TX_DROPPED, &m->pod_who, d->tx_dropped, d->name, NULL);
	}
	runtime__v1__pod_sandbox_metrics__init(&m->pm);
	m->pm.pod_sandbox_id = p->id;
	m->pm.n_metrics = m->pod.n;
	m->pm.metrics = m->pod.ptrs;
	for (size_t i = 0; i < m->u.n; i++) {
		struct crid_container *c = m->u.ctrs[i];
		const struct crid_container_usage *cu = &m->u.cu[i];
		struct who *w = &m->ctr_who[i];

		if (slots_alloc(&m->ctr[i], CONTAINER_METRICS) < 0) {
			pod_metrics_clear(m);
			return crid_err_nomem(err, "pod metrics");
		}
		*w = (struct who){ c->config->metadata->name, c->cgroups_path, c->image_shown, c->id, md->namespace_,
				   md->name };
		add_cgroup(&m->ctr[i], w, &cu->cg);
		if (cu->started_at)
			add(&m->ctr[i], M_START, w, (uint64_t)cu->started_at / 1000000000ULL, NULL, NULL);
		if (cu->has_fs) {
			add(&m->ctr[i], M_FS_USAGE, w, cu->fs.bytes, device, NULL);
			add(&m->ctr[i], M_FS_INODES, w, cu->fs.inodes, device, NULL);
		}
		runtime__v1__container_metrics__init(&m->cm[i]);
		m->cm[i].container_id = c->id;
		m->cm[i].n_metrics = m->ctr[i].n;
		m->cm[i].metrics = m->ctr[i].ptrs;
		m->cm_ptrs[i] = &m->cm[i];
	}
	m->pm.n_container_metrics = m->u.n;
	m->pm.container_metrics = m->cm_ptrs;
	return 0;
}

static int send_metrics(struct crid_runtime *rt, struct crid_call *call, bool stream, struct crid_err *err)
{
	struct crid_pod **pods = NULL;
	struct pod_metrics_msg *msgs = NULL;
	Runtime__V1__PodSandboxMetrics **ptrs = NULL;
	size_t n = 0, filled = 0;
	int r = crid_pods_matching(rt, NULL, true, &pods, &n, err);

	if (r < 0)
		return r;
	msgs = calloc(n ? n : 1, sizeof(*msgs));
	ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	if (!msgs || !ptrs)
		r = crid_err_nomem(err, "pod metrics");
	for (size_t i = 0; i < n && r == 0; i++) {
		r = pod_metrics_fill(rt, pods[i], &msgs[i], err);
		if (r == 0)
			ptrs[filled++] = &msgs[i].pm;
	}
	if (r == 0)
		r = crid_call_send_items(call,
					 stream ? &runtime__v1__stream_pod_sandbox_metrics_response__descriptor
						: &runtime__v1__list_pod_sandbox_metrics_response__descriptor,
					 (void *const *)ptrs, n, stream ? STREAM_BATCH : 0, err);
	for (size_t i = 0; i < filled; i++)
		pod_metrics_clear(&msgs[i]);
	for (size_t i = 0; i < n; i++)
		crid_pod_unref(pods[i]);
	free(pods);
	free(msgs);
	free(ptrs);
	return r;
}

static int list_pod_sandbox_metrics(void *data, const ProtobufCMessage *request, struct crid_call *call,
				    struct crid_err *err)
{
	return send_metrics(data, call, false, err);
}

static int stream_pod_sandbox_metrics(void *data, const ProtobufCMessage *request, struct crid_call *call,
				      struct crid_err *err)
{
	return send_metrics(data, call, true, err);
}

int crid_pod_metrics_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "ListMetricDescriptors", list_metric_descriptors },
		{ "ListPodSandboxMetrics", list_pod_sandbox_metrics },
		{ "StreamPodSandboxMetrics", stream_pod_sandbox_metrics },
	};
	return crid_rpc_methods_register_all(m, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);
}
