/* Pods and containers in the store (objects.h): each change is one row of
 * the object's CRI config in wire form and crid's state as JSON, so a
 * restart finds every object as it was last seen. A copy of the row also
 * goes next to the object itself (the pod's run directory, the container's
 * writable layer directory): when crid.db is lost, the objects still on
 * the machine are adopted again from their copies instead of being taken
 * for leftovers. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "runtime/objects.h"
#include "store/store.h"

#define RECORD_COPY "record"
/* A copy larger than this is not one of ours. */
#define RECORD_COPY_MAX (64 << 20)

/* Writes the copy into dir when dir is there (a container's writable layer
 * directory is gone after a failed create). Failures are logged: the row is
 * the record, the copy a fallback. */
static void write_copy(const char *dir, const char *kind, const char *id, const uint8_t *config, size_t len,
		       const char *state)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *b64 = NULL, *text = NULL;
	_cleanup_(json_decrefp) json_t *doc = NULL;
	struct crid_err err;

	if (dirfd < 0)
		return;
	b64 = malloc(4 * ((len + 2) / 3) + 1);
	if (!b64)
		goto nomem;
	EVP_EncodeBlock((unsigned char *)b64, config, (int)len);
	doc = json_pack("{s:s, s:s, s:s, s:o}", "kind", kind, "id", id, "config", b64, "state",
			json_loads(state, 0, NULL));
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (!text)
		goto nomem;
	if (crid_replace_file_at(dirfd, RECORD_COPY, text, strlen(text), 0600, &err) < 0)
		log_warn("cannot write the copy of a record", "id", id, "dir", dir, "error", err.msg);
	return;
nomem:
	log_warn("cannot write the copy of a record: out of memory", "id", id);
}

static int put(struct crid_runtime *rt, const char *kind, const char *id, const ProtobufCMessage *config,
	       json_t *state, const char *copy_dir)
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
	if (copy_dir)
		write_copy(copy_dir, kind, id, buf, len, text);
	return r;
}

int crid_pod_persist(struct crid_runtime *rt, struct crid_pod *p)
{
	return put(rt, "pod", p->id, &p->config->base,
		   json_pack("{s:s, s:I, s:b, s:i, s:O?, s:i, s:i}", "handler", p->handler_name, "created_at",
			     (json_int_t)p->created_at, "ready", (int)atomic_load(&p->ready), "init_pid",
			     (int)p->ns.init_pid, "resources", p->resources, "sandbox_shim_pid",
			     (int)p->sandbox_shim_pid, "sandbox_pid", (int)p->sandbox_pid),
		   p->dir);
}

int crid_container_persist(struct crid_runtime *rt, struct crid_container *c)
{
	return put(rt, "container", c->id, &c->config->base,
		   json_pack("{s:s, s:s, s:b, s:s, s:s, s:s?, s:s?, s:i, s:I, s:I, s:I, s:i, s:s?, s:s?, s:s, s:s, s:i, s:i, s:i, s:O?, s:O?}",
			     "pod_id", c->pod_id, "handler", c->handler->name, "host_network", (int)c->host_network, "image_name", c->image_name, "image_id",
			     c->image_id ? c->image_id : "", "image_shown", c->image_shown, "image_ref", c->image_ref,
			     "state", (int)c->state, "created_at",
			     (json_int_t)c->created_at, "started_at", (json_int_t)c->started_at, "finished_at",
			     (json_int_t)c->finished_at, "exit_code", c->exit_code, "reason", c->reason, "message",
			     c->message, "log_path", c->log_path, "cgroups_path", c->cgroups_path, "stop_signal",
			     c->stop_signal, "shim_pid", (int)c->shim_pid, "pid", (int)c->pid, "process", c->process, "resources",
			     c->resources),
		   c->upper);
}

void crid_object_forget(struct crid_runtime *rt, const char *kind, const char *id)
{
	struct crid_err err;

	if (crid_store_object_delete(rt->db, kind, id, &err) < 0)
		log_error("cannot forget object", "id", id, "error", err.msg);
}

void crid_object_record_clear(struct crid_object_record *r)
{
	free(r->id);
	free(r->config);
	free(r->state);
	memset(r, 0, sizeof(*r));
}

/* Reads dir's copy of kind id: -ENOENT when there is none, -EINVAL when it
 * is not a copy of that object. */
static int read_copy(const char *dir, const char *kind, const char *id, struct crid_object_record *out)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	_cleanup_(json_decrefp) json_t *doc = NULL;
	const char *b64, *k, *i;
	struct crid_err err;
	size_t len, b64_len;
	int n;

	memset(out, 0, sizeof(*out));
	if (dirfd < 0)
		return -errno;
	if (crid_read_file_at(dirfd, RECORD_COPY, RECORD_COPY_MAX, &text, &len, &err) < 0)
		return err.status == CRID_NOT_FOUND ? -ENOENT : -EIO;
	doc = json_loadb(text, len, 0, NULL);
	k = json_string_value(json_object_get(doc, "kind"));
	i = json_string_value(json_object_get(doc, "id"));
	b64 = json_string_value(json_object_get(doc, "config"));
	if (!k || !i || !b64 || strcmp(k, kind) != 0 || strcmp(i, id) != 0 ||
	    !json_is_object(json_object_get(doc, "state")))
		return -EINVAL;
	b64_len = strlen(b64);
	out->config = malloc(b64_len / 4 * 3 + 3);
	out->id = strdup(id);
	out->state = json_dumps(json_object_get(doc, "state"), JSON_COMPACT);
	if (!out->config || !out->id || !out->state) {
		crid_object_record_clear(out);
		return -ENOMEM;
	}
	n = EVP_DecodeBlock(out->config, (const unsigned char *)b64, (int)b64_len);
	if (n < 0 || b64_len % 4) {
		crid_object_record_clear(out);
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	while (b64_len > 0 && b64[b64_len - 1] == '=' && n > 0) {
		b64_len--;
		n--;
	}
	out->config_len = (size_t)n;
	return 0;
}

int crid_object_adopt(struct crid_runtime *rt, const char *kind, const char *dir, const char *id,
		      struct crid_object_record *out)
{
	struct crid_err err;
	int r = read_copy(dir, kind, id, out);

	if (r == -EINVAL)
		log_warn("ignoring a record copy that is not one", "dir", dir);
	if (r < 0)
		return r;
	log_error("crid.db does not know this object, yet it is on the machine: the database lost it; adopted "
		  "again from its record copy",
		  "kind", kind, "id", id, "dir", dir);
	if (crid_store_object_put(rt->db, kind, id, out->config, out->config_len, out->state, &err) < 0)
		log_error("cannot record an adopted object again", "id", id, "error", err.msg);
	rt->adopted++;
	return 0;
}
