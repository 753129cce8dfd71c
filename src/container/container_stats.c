/* Containers' resource use: ContainerStats, ListContainerStats and
 * StreamContainerStats. Each container's cgroup files are read once per
 * call (stats/cgroup.h); CPU nano-cores come from the container's previous
 * reading; the writable layer's size is the background walker's last
 * measurement, so no call walks a file system. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "container/container.h"
#include "runtime/views.h"

#define STREAM_BATCH 100

/* A container in its pod's sandbox has no cgroup of its own: the
 * sandbox's kernel counts its use. */
static void sandboxed_usage(struct crid_runtime *rt, struct crid_container *c, struct crid_cgroup_sample *cg)
{
	char root[PATH_MAX];
	struct crid_oci_runtime oci;
	struct crid_err err;
	uint64_t cpu, mem;

	crid_container_oci(rt, c, root, sizeof(root), &oci);
	if (crid_oci_stats(&oci, c->id, &cpu, &mem, &err) < 0)
		return;
	cg->timestamp = crid_realtime_ns();
	cg->has_cpu = true;
	cg->cpu_usage_ns = cpu;
	cg->has_memory = true;
	cg->mem_usage = cg->mem_working_set = cg->mem_rss = mem;
	cg->mem_limit = CRID_CGROUP_NO_LIMIT;
}

void crid_container_usage_read(struct crid_runtime *rt, struct crid_container *c, struct crid_container_usage *u)
{
	struct crid_err err;

	memset(u, 0, sizeof(*u));
	pthread_mutex_lock(&c->state_lock);
	u->state = c->state;
	u->started_at = c->started_at;
	pthread_mutex_unlock(&c->state_lock);
	/* An exited container's cgroup is gone with its processes. */
	if (c->handler->sandbox_per_pod) {
		if (u->state == CRID_CTR_RUNNING) /* a created one has nothing in the sandbox yet */
			sandboxed_usage(rt, c, &u->cg);
	} else if (u->state != CRID_CTR_EXITED)
		crid_cgroup_read(&rt->cgroups, c->cgroups_path, &u->cg, &err);
	if (u->state != CRID_CTR_EXITED && u->cg.has_cpu)
		u->has_rate = crid_cpu_rate_update(&c->cpu, u->cg.cpu_usage_ns, crid_monotonic_ns(), &u->nano_cores);
	if (!u->cg.timestamp)
		u->cg.timestamp = crid_realtime_ns();
	u->has_fs = crid_layer_usage_get(rt->layers, c->id, &u->fs);
}

static Runtime__V1__UInt64Value *u64(Runtime__V1__UInt64Value *v, uint64_t value)
{
	runtime__v1__uint64_value__init(v);
	v->value = value;
	return v;
}

void crid_cpu_usage_fill(const struct crid_cgroup_sample *s, bool has_rate, uint64_t nano_cores,
			 struct crid_cpu_msg *m)
{
	runtime__v1__cpu_usage__init(&m->cpu);
	m->cpu.timestamp = s->timestamp;
	m->cpu.usage_core_nano_seconds = u64(&m->total, s->cpu_usage_ns);
	if (has_rate)
		m->cpu.usage_nano_cores = u64(&m->rate, nano_cores);
}

void crid_memory_usage_fill(const struct crid_cgroup_sample *s, struct crid_memory_msg *m)
{
	runtime__v1__memory_usage__init(&m->mem);
	m->mem.timestamp = s->timestamp;
	m->mem.working_set_bytes = u64(&m->working_set, s->mem_working_set);
	m->mem.usage_bytes = u64(&m->usage, s->mem_usage);
	m->mem.rss_bytes = u64(&m->rss, s->mem_rss);
	m->mem.page_faults = u64(&m->faults, s->mem_pgfault);
	m->mem.major_page_faults = u64(&m->major_faults, s->mem_pgmajfault);
	/* As the kubelet: what the limit leaves above the working set. */
	if (s->mem_limit != CRID_CGROUP_NO_LIMIT)
		m->mem.available_bytes =
			u64(&m->available, s->mem_limit > s->mem_working_set ? s->mem_limit - s->mem_working_set : 0);
}

void crid_container_stats_fill(struct crid_runtime *rt, struct crid_container *c,
			       const struct crid_container_usage *u, struct crid_container_stats_msg *m)
{
	runtime__v1__container_stats__init(&m->stats);
	runtime__v1__container_attributes__init(&m->attrs);
	m->attrs.id = c->id;
	m->attrs.metadata = c->config->metadata;
	m->attrs.n_labels = c->config->n_labels;
	m->attrs.labels = (Runtime__V1__ContainerAttributes__LabelsEntry **)c->config->labels;
	m->attrs.n_annotations = c->config->n_annotations;
	m->attrs.annotations = (Runtime__V1__ContainerAttributes__AnnotationsEntry **)c->config->annotations;
	m->stats.attributes = &m->attrs;
	if (u->cg.has_cpu) {
		crid_cpu_usage_fill(&u->cg, u->has_rate, u->nano_cores, &m->cpu);
		m->stats.cpu = &m->cpu.cpu;
	}
	if (u->cg.has_memory) {
		crid_memory_usage_fill(&u->cg, &m->mem);
		m->stats.memory = &m->mem.mem;
	}
	if (u->cg.has_swap) {
		runtime__v1__swap_usage__init(&m->swap);
		m->swap.timestamp = u->cg.timestamp;
		m->swap.swap_usage_bytes = u64(&m->swap_usage, u->cg.swap_usage);
		if (u->cg.swap_limit != CRID_CGROUP_NO_LIMIT)
			m->swap.swap_available_bytes = u64(&m->swap_available, u->cg.swap_limit > u->cg.swap_usage
										? u->cg.swap_limit - u->cg.swap_usage
										: 0);
		m->stats.swap = &m->swap;
	}
	/* Before its first walk, a new layer is known to hold nothing yet. */
	runtime__v1__filesystem_usage__init(&m->fs);
	runtime__v1__filesystem_identifier__init(&m->fs_id);
	m->fs_id.mountpoint = (char *)crid_layer_usage_mountpoint(rt->layers);
	m->fs.fs_id = &m->fs_id;
	m->fs.timestamp = u->has_fs ? u->fs.timestamp : u->cg.timestamp;
	m->fs.used_bytes = u64(&m->fs_bytes, u->has_fs ? u->fs.bytes : 0);
	m->fs.inodes_used = u64(&m->fs_inodes, u->has_fs ? u->fs.inodes : 0);
	m->stats.writable_layer = &m->fs;
}

static bool labels_match(const Runtime__V1__ContainerConfig *cfg,
			 Runtime__V1__ContainerStatsFilter__LabelSelectorEntry **want, size_t n_want)
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

int crid_containers_matching(struct crid_runtime *rt, const char *id, const char *pod_id,
			     Runtime__V1__ContainerStatsFilter__LabelSelectorEntry **want, size_t n_selector,
			     bool with_exited, struct crid_container ***out, size_t *n, struct crid_err *err)
{
	size_t count = 0;

	*n = 0;
	pthread_mutex_lock(&rt->lock);
	for (struct crid_container *c = rt->containers; c; c = c->next)
		count++;
	*out = calloc(count ? count : 1, sizeof(**out));
	if (!*out) {
		pthread_mutex_unlock(&rt->lock);
		return crid_err_nomem(err, "container list");
	}
	for (struct crid_container *c = rt->containers; c; c = c->next) {
		bool listed;

		pthread_mutex_lock(&c->state_lock);
		listed = c->created_at && (with_exited || c->state != CRID_CTR_EXITED);
		pthread_mutex_unlock(&c->state_lock);
		if (!listed || (id && *id && strncmp(c->id, id, strlen(id)) != 0) ||
		    (pod_id && *pod_id && strncmp(c->pod_id, pod_id, strlen(pod_id)) != 0) ||
		    !labels_match(c->config, want, n_selector))
			continue;
		atomic_fetch_add(&c->refs, 1);
		(*out)[(*n)++] = c;
	}
	pthread_mutex_unlock(&rt->lock);
	return 0;
}

static int container_stats(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__ContainerStatsRequest *req = (const Runtime__V1__ContainerStatsRequest *)request;
	Runtime__V1__ContainerStatsResponse resp = RUNTIME__V1__CONTAINER_STATS_RESPONSE__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	struct crid_container_stats_msg m;
	struct crid_container_usage u;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	if ((r = crid_container_find(rt, req->container_id, &c, err)) < 0)
		return r;
	crid_container_usage_read(rt, c, &u);
	crid_container_stats_fill(rt, c, &u, &m);
	resp.stats = &m.stats;
	return crid_call_send(call, &resp.base, err);
}

/* ListContainerStats and StreamContainerStats: the created and running
 * containers the filter matches. */
static int send_stats(struct crid_runtime *rt, const Runtime__V1__ContainerStatsFilter *f, struct crid_call *call,
		      bool stream, struct crid_err *err)
{
	struct crid_container **list = NULL;
	struct crid_container_stats_msg *msgs = NULL;
	Runtime__V1__ContainerStats **ptrs = NULL;
	size_t n = 0;
	int r;

	r = crid_containers_matching(rt, f ? f->id : NULL, f ? f->pod_sandbox_id : NULL, f ? f->label_selector : NULL,
				     f ? f->n_label_selector : 0, false, &list, &n, err);
	if (r < 0)
		return r;
	msgs = calloc(n ? n : 1, sizeof(*msgs));
	ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	if (!msgs || !ptrs) {
		r = crid_err_nomem(err, "container stats");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct crid_container_usage u;

		crid_container_usage_read(rt, list[i], &u);
		crid_container_stats_fill(rt, list[i], &u, &msgs[i]);
		ptrs[i] = &msgs[i].stats;
	}
	r = crid_call_send_items(call,
				 stream ? &runtime__v1__stream_container_stats_response__descriptor
					: &runtime__v1__list_container_stats_response__descriptor,
				 (void *const *)ptrs, n, stream ? STREAM_BATCH : 0, err);
out:
	for (size_t i = 0; i < n; i++)
		crid_container_unref(list[i]);
	free(list);
	free(msgs);
	free(ptrs);
	return r;
}

static int list_container_stats(void *data, const ProtobufCMessage *request, struct crid_call *call,
				struct crid_err *err)
{
	const Runtime__V1__ListContainerStatsRequest *req = (const Runtime__V1__ListContainerStatsRequest *)request;

	return send_stats(data, req->filter, call, false, err);
}

static int stream_container_stats(void *data, const ProtobufCMessage *request, struct crid_call *call,
				  struct crid_err *err)
{
	const Runtime__V1__StreamContainerStatsRequest *req = (const Runtime__V1__StreamContainerStatsRequest *)request;

	return send_stats(data, req->filter, call, true, err);
}

int crid_container_stats_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "ContainerStats", container_stats },
		{ "ListContainerStats", list_container_stats },
		{ "StreamContainerStats", stream_container_stats },
	};
	return crid_rpc_methods_register_all(m, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);
}
