/* The pod and container views of views.h, and container events built from
 * them. An event is packed once for every subscriber: the event without
 * its containers' statuses, then each status appended as its own field,
 * packed under that container's state lock (protobuf allows a repeated
 * field's items anywhere in a message), so no two containers' locks are
 * ever held at once. */
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "network/network.h"
#include "runtime/views.h"

void crid_pod_view_fill(struct crid_pod *p, struct crid_pod_view *v)
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
	/* Only while ready: a stopped pod's addresses went back to the pool.
	 * A host-network pod has none of its own. */
	if (v->status.state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY && p->net) {
		const char *const *ips;
		size_t n = crid_network_attachment_ips(p->net, &ips);

		if (n > 0)
			v->network.ip = (char *)ips[0];
		for (size_t i = 1; i < n && i <= CRID_POD_VIEW_MAX_ADDITIONAL_IPS; i++) {
			runtime__v1__pod_ip__init(&v->additional[i - 1]);
			v->additional[i - 1].ip = (char *)ips[i];
			v->additional_ptrs[i - 1] = &v->additional[i - 1];
			v->network.n_additional_ips = i;
		}
		v->network.additional_ips = v->additional_ptrs;
	}
	v->status.network = &v->network;
	v->ns.options = opts ? (Runtime__V1__NamespaceOption *)opts : &v->ns_options;
	v->linux_status.namespaces = &v->ns;
	v->status.linux = &v->linux_status;
	v->status.n_labels = c->n_labels;
	v->status.labels = (Runtime__V1__PodSandboxStatus__LabelsEntry **)c->labels;
	v->status.n_annotations = c->n_annotations;
	v->status.annotations = (Runtime__V1__PodSandboxStatus__AnnotationsEntry **)c->annotations;
	v->status.runtime_handler = p->handler_name;
}

Runtime__V1__ContainerState crid_container_cri_state(enum crid_ctr_state s)
{
	switch (s) {
	case CRID_CTR_CREATED:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
	case CRID_CTR_RUNNING:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	case CRID_CTR_EXITED:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
	default:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
	}
}

void crid_container_view_fill(struct crid_container *c, struct crid_container_view *v)
{
	Runtime__V1__ContainerStatus *st = &v->status;

	runtime__v1__container_status__init(st);
	runtime__v1__image_spec__init(&v->image);
	st->id = c->id;
	st->metadata = c->config->metadata;
	st->state = crid_container_cri_state(c->state);
	st->created_at = c->created_at;
	st->started_at = c->started_at;
	st->finished_at = c->finished_at;
	st->exit_code = c->exit_code;
	v->image.image = c->image_shown;
	v->image.user_specified_image = c->config->image->user_specified_image;
	st->image = &v->image;
	st->image_ref = c->image_ref;
	st->image_id = c->image_id;
	st->reason = c->reason ? c->reason : (char *)"";
	st->message = c->message ? c->message : (char *)"";
	st->n_labels = c->config->n_labels;
	st->labels = (Runtime__V1__ContainerStatus__LabelsEntry **)c->config->labels;
	st->n_annotations = c->config->n_annotations;
	st->annotations = (Runtime__V1__ContainerStatus__AnnotationsEntry **)c->config->annotations;
	st->n_mounts = c->config->n_mounts;
	st->mounts = c->config->mounts;
	st->log_path = c->log_path;
}

/* ---- events ---- */

struct packed {
	uint8_t *data;
	size_t len, cap;
	bool failed;
};

static void append(struct packed *b, const void *data, size_t len)
{
	if (b->failed)
		return;
	if (b->len + len > b->cap) {
		size_t cap = (b->len + len) * 2;
		uint8_t *grown = realloc(b->data, cap);

		if (!grown) {
			b->failed = true;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

/* A message as field number field of the message b holds. */
static void append_field(struct packed *b, unsigned field, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t head[16];
	size_t n = 0;
	_cleanup_free_ uint8_t *body = malloc(len ? len : 1);

	if (!body) {
		b->failed = true;
		return;
	}
	head[n++] = (uint8_t)(field << 3 | 2); /* length-delimited */
	for (size_t v = len; n < sizeof(head); v >>= 7) {
		head[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		if (v < 0x80)
			break;
	}
	protobuf_c_message_pack(m, body);
	append(b, head, n);
	append(b, body, len);
}

/* The pod's containers, each with a reference taken. */
static struct crid_container **pod_containers(struct crid_runtime *rt, const char *pod_id, size_t *n)
{
	struct crid_container **list;
	size_t count = 0;

	*n = 0;
	pthread_mutex_lock(&rt->lock);
	for (struct crid_container *q = rt->containers; q; q = q->next)
		count += strcmp(q->pod_id, pod_id) == 0;
	list = calloc(count ? count : 1, sizeof(*list));
	for (struct crid_container *q = rt->containers; q && list; q = q->next) {
		if (strcmp(q->pod_id, pod_id) == 0) {
			atomic_fetch_add(&q->refs, 1);
			list[(*n)++] = q;
		}
	}
	pthread_mutex_unlock(&rt->lock);
	return list;
}

static void publish(struct crid_runtime *rt, const char *id, struct crid_pod *p, const char *pod_id,
		    Runtime__V1__ContainerEventType type, int64_t at)
{
	Runtime__V1__ContainerEventResponse ev = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
	struct crid_pod_view pv;
	struct packed b = { 0 };
	struct crid_container **list;
	size_t n;

	if (crid_events_subscribers(rt->events) == 0)
		return;
	ev.container_id = (char *)id;
	ev.container_event_type = type;
	ev.created_at = at;
	if (p) {
		crid_pod_view_fill(p, &pv);
		ev.pod_sandbox_status = &pv.status;
	}
	{
		size_t len = protobuf_c_message_get_packed_size(&ev.base);

		b.data = malloc(len + 4096);
		b.cap = len + 4096;
		if (b.data) {
			protobuf_c_message_pack(&ev.base, b.data);
			b.len = len;
		} else {
			b.failed = true;
		}
	}
	list = pod_containers(rt, pod_id, &n);
	if (!list)
		b.failed = true;
	for (size_t i = 0; i < n; i++) {
		struct crid_container_view cv;

		pthread_mutex_lock(&list[i]->state_lock);
		if (list[i]->created_at) { /* not one still being created */
			crid_container_view_fill(list[i], &cv);
			append_field(&b, 5, &cv.status.base); /* containers_statuses */
		}
		pthread_mutex_unlock(&list[i]->state_lock);
		crid_container_unref(list[i]);
	}
	free(list);
	if (b.failed)
		log_error("container event lost: out of memory", "container", id);
	else
		crid_events_publish_packed(rt->events, b.data, b.len);
	free(b.data);
}

void crid_event_container(struct crid_runtime *rt, struct crid_container *c, Runtime__V1__ContainerEventType type,
			  int64_t at)
{
	_cleanup_(crid_pod_unrefp) struct crid_pod *p = NULL;
	struct crid_err err;

	if (crid_pod_find(rt, c->pod_id, &p, &err) < 0)
		p = NULL;
	publish(rt, c->id, p, c->pod_id, type, at ? at : crid_realtime_ns());
}

void crid_event_pod(struct crid_runtime *rt, struct crid_pod *p, Runtime__V1__ContainerEventType type, int64_t at)
{
	publish(rt, p->id, p, p->id, type, at ? at : crid_realtime_ns());
}
