/* The object tables of objects.h: IDs, references, lookups by ID or
 * prefix, and adding and removing objects. */
#include "runtime/objects.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fsutil.h"

int crid_new_id(char out[CRID_ID_LEN + 1], struct crid_err *err)
{
	return crid_random_hex(out, CRID_ID_LEN, err);
}

static void pod_free(struct crid_pod *p)
{
	if (p->config)
		protobuf_c_message_free_unpacked(&p->config->base, NULL);
	crid_pod_ns_free(&p->ns);
	crid_network_attachment_free(p->net);
	crid_cpu_rate_destroy(&p->cpu);
	crid_packed_entry_clear(&p->listed);
	free(p->name_key);
	free(p->handler_name);
	free(p->dir);
	json_decref(p->resources);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void crid_pod_unref(struct crid_pod *p)
{
	if (p && atomic_fetch_sub(&p->refs, 1) == 1)
		pod_free(p);
}

/* Finds by ID or unique ID prefix; with the table lock held. */
#define FIND_BY_PREFIX(list, type, id, out, what, err)                                                       \
	({                                                                                                    \
		type *found_ = NULL;                                                                          \
		int n_ = 0;                                                                                   \
		size_t len_ = strlen(id);                                                                     \
		for (type *o_ = (list); o_ && len_ > 0; o_ = o_->next) {                                      \
			if (strncmp(o_->id, (id), len_) == 0) {                                               \
				found_ = o_;                                                                  \
				n_++;                                                                         \
				if (len_ == CRID_ID_LEN)                                                      \
					break;                                                                \
			}                                                                                     \
		}                                                                                             \
		int r_ = 0;                                                                                   \
		if (n_ == 0)                                                                                  \
			r_ = crid_err_set((err), CRID_NOT_FOUND, 0, what " %s not found", (id));              \
		else if (n_ > 1)                                                                              \
			r_ = crid_err_set((err), CRID_INVALID_ARGUMENT, 0, what " ID prefix %s is ambiguous", \
					  (id));                                                              \
		else {                                                                                        \
			atomic_fetch_add(&found_->refs, 1);                                                   \
			*(out) = found_;                                                                      \
		}                                                                                             \
		r_;                                                                                           \
	})

int crid_pod_find(struct crid_runtime *rt, const char *id, struct crid_pod **out, struct crid_err *err)
{
	int r;

	pthread_mutex_lock(&rt->lock);
	r = FIND_BY_PREFIX(rt->pods, struct crid_pod, id, out, "pod sandbox", err);
	pthread_mutex_unlock(&rt->lock);
	return r;
}

int crid_container_find(struct crid_runtime *rt, const char *id, struct crid_container **out, struct crid_err *err)
{
	int r;

	pthread_mutex_lock(&rt->lock);
	r = FIND_BY_PREFIX(rt->containers, struct crid_container, id, out, "container", err);
	pthread_mutex_unlock(&rt->lock);
	return r;
}

static void container_free(struct crid_container *c)
{
	if (c->config)
		protobuf_c_message_free_unpacked(&c->config->base, NULL);
	json_decref(c->process);
	json_decref(c->resources);
	free(c->name_key);
	free(c->image_name);
	free(c->image_id);
	free(c->image_shown);
	free(c->image_ref);
	free(c->reason);
	free(c->message);
	free(c->log_path);
	free(c->dir);
	free(c->rootfs);
	free(c->upper);
	free(c->cgroups_path);
	crid_cpu_rate_destroy(&c->cpu);
	crid_packed_entry_clear(&c->listed);
	pthread_cond_destroy(&c->changed);
	pthread_mutex_destroy(&c->state_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void crid_container_unref(struct crid_container *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		container_free(c);
}

ProtobufCMessage *crid_message_copy(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return NULL;
	protobuf_c_message_pack(m, buf);
	return protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
}

void crid_pod_unlink(struct crid_runtime *rt, struct crid_pod *p)
{
	pthread_mutex_lock(&rt->lock);
	for (struct crid_pod **q = &rt->pods; *q; q = &(*q)->next) {
		if (*q == p) {
			*q = p->next;
			crid_pod_unref(p);
			break;
		}
	}
	pthread_mutex_unlock(&rt->lock);
}

void crid_container_unlink(struct crid_runtime *rt, struct crid_container *c)
{
	pthread_mutex_lock(&rt->lock);
	for (struct crid_container **q = &rt->containers; *q; q = &(*q)->next) {
		if (*q == c) {
			*q = c->next;
			crid_container_unref(c);
			break;
		}
	}
	pthread_mutex_unlock(&rt->lock);
}


/* ---- what objects weigh in lists ---- */

/* Room for what a list item holds besides metadata, labels and
 * annotations (IDs, state, times, image references, framing). */
#define LIST_ITEM_OVERHEAD 512
/* Room kept in a list response for its own framing. */
#define LIST_RESPONSE_SLACK (64 * 1024)

static size_t entries_bytes(ProtobufCMessage *const *entries, size_t n)
{
	size_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += protobuf_c_message_get_packed_size(entries[i]) + 8;
	return sum;
}

static size_t message_bytes(const ProtobufCMessage *m)
{
	return m ? protobuf_c_message_get_packed_size(m) + 8 : 0;
}

static size_t pod_metadata_bytes(const Runtime__V1__PodSandboxConfig *c)
{
	return message_bytes(c->metadata ? &c->metadata->base : NULL) +
	       entries_bytes((ProtobufCMessage *const *)c->labels, c->n_labels) +
	       entries_bytes((ProtobufCMessage *const *)c->annotations, c->n_annotations);
}

static size_t container_metadata_bytes(const Runtime__V1__ContainerConfig *c)
{
	return message_bytes(c->metadata ? &c->metadata->base : NULL) +
	       message_bytes(c->image ? &c->image->base : NULL) +
	       entries_bytes((ProtobufCMessage *const *)c->labels, c->n_labels) +
	       entries_bytes((ProtobufCMessage *const *)c->annotations, c->n_annotations);
}

size_t crid_pod_list_weight(const Runtime__V1__PodSandboxConfig *c, const char *handler)
{
	return pod_metadata_bytes(c) + (handler ? strlen(handler) : 0) + LIST_ITEM_OVERHEAD;
}

size_t crid_container_list_weight(const Runtime__V1__ContainerConfig *c)
{
	/* The image appears twice: as asked for, and as shown. */
	return container_metadata_bytes(c) + message_bytes(c->image ? &c->image->base : NULL) +
	       LIST_ITEM_OVERHEAD;
}

static int metadata_check(size_t bytes, struct crid_err *err)
{
	if (bytes > CRID_MAX_OBJECT_METADATA)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "config.labels, config.annotations and config.metadata hold %zu bytes together, "
				    "more than the limit of %d",
				    bytes, CRID_MAX_OBJECT_METADATA);
	return 0;
}

int crid_pod_metadata_check(const Runtime__V1__PodSandboxConfig *c, struct crid_err *err)
{
	return metadata_check(pod_metadata_bytes(c), err);
}

int crid_container_metadata_check(const Runtime__V1__ContainerConfig *c, struct crid_err *err)
{
	return metadata_check(container_metadata_bytes(c), err);
}

static int admit(size_t have, size_t weight, size_t limit, const char *list, struct crid_err *err)
{
	if (limit < LIST_RESPONSE_SLACK || have + weight > limit - LIST_RESPONSE_SLACK)
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, 0,
				    "%s would exceed the largest response of %zu bytes (its objects' labels, "
				    "annotations and names take %zu bytes): remove some first",
				    list, limit, have);
	return 0;
}

int crid_pods_admit_locked(struct crid_runtime *rt, size_t weight, struct crid_err *err)
{
	size_t have = 0;

	for (struct crid_pod *p = rt->pods; p; p = p->next)
		have += crid_pod_list_weight(p->config, p->handler_name);
	return admit(have, weight, rt->cfg->grpc_max_send_bytes, "ListPodSandbox", err);
}

int crid_containers_admit_locked(struct crid_runtime *rt, size_t weight, struct crid_err *err)
{
	size_t have = 0;

	for (struct crid_container *c = rt->containers; c; c = c->next)
		have += crid_container_list_weight(c->config);
	return admit(have, weight, rt->cfg->grpc_max_send_bytes, "ListContainers", err);
}
