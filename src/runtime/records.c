/* Pods and containers in the store (objects.h): each change is one row of
 * the object's CRI config in wire form and crid's state as JSON, so a
 * restart finds every object as it was last seen. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "runtime/objects.h"
#include "store/store.h"

static int put(struct crid_runtime *rt, const char *kind, const char *id, const ProtobufCMessage *config,
	       json_t *state)
{
	size_t len = protobuf_c_message_get_packed_size(config);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	_cleanup_free_ char *text = state ? json_dumps(state, JSON_COMPACT) : NULL;
	struct crid_err err;
	int r;

	json_decref(state);
	if (!buf || !text) {
		log_error("cannot record object: out of memory", "id", id);
		return -ENOMEM;
	}
	protobuf_c_message_pack(config, buf);
	r = crid_store_object_put(rt->db, kind, id, buf, len, text, &err);
	if (r < 0)
		log_error("cannot record object", "id", id, "error", err.msg);
	return r;
}

int crid_pod_persist(struct crid_runtime *rt, struct crid_pod *p)
{
	return put(rt, "pod", p->id, &p->config->base,
		   json_pack("{s:s, s:I, s:b, s:i, s:O?}", "handler", p->handler_name, "created_at",
			     (json_int_t)p->created_at, "ready", (int)atomic_load(&p->ready), "init_pid",
			     (int)p->ns.init_pid, "resources", p->resources));
}

int crid_container_persist(struct crid_runtime *rt, struct crid_container *c)
{
	return put(rt, "container", c->id, &c->config->base,
		   json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:i, s:I, s:I, s:I, s:i, s:s?, s:s?, s:s, s:s, s:i, s:i, s:i, s:O?, s:O?}",
			     "pod_id", c->pod_id, "handler", c->handler->name, "image_name", c->image_name, "image_id",
			     c->image_id ? c->image_id : "", "image_shown", c->image_shown, "image_ref", c->image_ref,
			     "state", (int)c->state, "created_at",
			     (json_int_t)c->created_at, "started_at", (json_int_t)c->started_at, "finished_at",
			     (json_int_t)c->finished_at, "exit_code", c->exit_code, "reason", c->reason, "message",
			     c->message, "log_path", c->log_path, "cgroups_path", c->cgroups_path, "stop_signal",
			     c->stop_signal, "shim_pid", (int)c->shim_pid, "pid", (int)c->pid, "process", c->process, "resources",
			     c->resources));
}

void crid_object_forget(struct crid_runtime *rt, const char *kind, const char *id)
{
	struct crid_err err;

	if (crid_store_object_delete(rt->db, kind, id, &err) < 0)
		log_error("cannot forget object", "id", id, "error", err.msg);
}
