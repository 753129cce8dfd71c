/* Containers, the questions and the side doors: ContainerStatus,
 * ListContainers and StreamContainers (from memory), ExecSync (a runtime exec with captured
 * output and a deadline), ReopenContainerLog (asks the shim), and
 * UpdateContainerResources (a runtime update). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/unix_socket.h"
#include "oci/oci_spec.h"
#include "container/container.h"
#include "oci/oci_runtime.h"
#include "runtime/objects.h"
#include "runtime/views.h"
#include "shim/protocol.h"

#define STREAM_BATCH 100 /* items per StreamContainers message */
/* Room in an ExecSync response for what is not output. */
#define EXEC_RESPONSE_SLACK 4096

/* ---- status and lists ---- */

/* ContainerStatus.user: process.user of the config the runtime ran. */
static int fill_user(json_t *process, Runtime__V1__ContainerUser *user, Runtime__V1__LinuxContainerUser *l,
		     int64_t **gids, struct crid_err *err)
{
	json_t *u = json_object_get(process, "user"), *g, *all = json_object_get(u, "additionalGids");
	size_t i;

	l->uid = (int64_t)json_integer_value(json_object_get(u, "uid"));
	l->gid = (int64_t)json_integer_value(json_object_get(u, "gid"));
	*gids = calloc(json_array_size(all) + 1, sizeof(**gids));
	if (!*gids)
		return crid_err_nomem(err, "container status");
	json_array_foreach(all, i, g)
		(*gids)[l->n_supplemental_groups++] = (int64_t)json_integer_value(g);
	l->supplemental_groups = *gids;
	user->linux = l;
	return 0;
}

static int container_status(void *data, const ProtobufCMessage *request, struct crid_call *call,
			    struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__ContainerStatusRequest *req = (const Runtime__V1__ContainerStatusRequest *)request;
	Runtime__V1__ContainerStatusResponse resp = RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INIT;
	struct crid_container_view v;
	Runtime__V1__ContainerStatusResponse__InfoEntry entry = RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INFO_ENTRY__INIT;
	Runtime__V1__ContainerStatusResponse__InfoEntry *entries[] = { &entry };
	Runtime__V1__ContainerResources resources = RUNTIME__V1__CONTAINER_RESOURCES__INIT;
	Runtime__V1__ContainerUser user = RUNTIME__V1__CONTAINER_USER__INIT;
	Runtime__V1__LinuxContainerUser luser = RUNTIME__V1__LINUX_CONTAINER_USER__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	_cleanup_free_ char *info = NULL;
	struct crid_resources_report report;
	_cleanup_free_ int64_t *gids = NULL;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	if ((r = crid_container_find(rt, req->container_id, &c, err)) < 0)
		return r;
	/* The state lock only: never held across a runtime call. */
	if (!crid_call_lock(call, &c->state_lock))
		return CRID_CALL_TO_WORKER;
	crid_container_view_fill(c, &v);
	/* What the runtime was given (after updates), and who the process
	 * runs as: the kubelet shows these as they took effect. */
	crid_spec_resources_report(c->resources, c->process, &report);
	resources.linux = &report.linux;
	v.status.resources = &resources;
	if ((r = fill_user(c->process, &user, &luser, &gids, err)) < 0) {
		pthread_mutex_unlock(&c->state_lock);
		return r;
	}
	v.status.user = &user;
	if (req->verbose) {
		/* Verbose is for people debugging: the spec is read from the bundle
		 * rather than kept in memory for every container. */
		_cleanup_free_ char *spec_path = NULL;
		json_t *spec = asprintf(&spec_path, "%s/config.json", c->dir) < 0 ? NULL
											: json_load_file(spec_path, 0, NULL);
		json_t *doc = json_pack("{s:s, s:i, s:i, s:s, s:s, s:o?}", "sandboxID", c->pod_id, "pid",
					(json_int_t)c->pid, "shimPid", (json_int_t)c->shim_pid, "bundle", c->dir,
					"runtimeHandler", c->handler->name, "runtimeSpec", spec);

		info = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
		if (info) {
			entry.key = (char *)"info";
			entry.value = info;
			resp.n_info = 1;
			resp.info = entries;
		}
	}
	resp.status = &v.status;
	r = crid_call_send(call, &resp.base, err);
	pthread_mutex_unlock(&c->state_lock);
	return r;
}

static bool container_labels_match(const Runtime__V1__ContainerConfig *cfg,
				   Runtime__V1__ContainerFilter__LabelSelectorEntry **want, size_t n_want)
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

/* ListContainers and StreamContainers: one answer, or batches of it. */
static int send_containers(struct crid_runtime *rt, const Runtime__V1__ContainerFilter *f, struct crid_call *call,
			   bool stream, struct crid_err *err)
{
	_cleanup_free_ Runtime__V1__Container *items = NULL;
	_cleanup_free_ Runtime__V1__Container **ptrs = NULL;
	_cleanup_free_ Runtime__V1__ImageSpec *images = NULL;
	Runtime__V1__Container one;   /* the entry being packed, for a list */
	Runtime__V1__ImageSpec one_image;
	const ProtobufCMessageDescriptor *desc = &runtime__v1__list_containers_response__descriptor;
	size_t n = 0, cap = 0;
	int r = 0;

	/* ListContainers from each container's entry as packed before, unless
	 * its state changed since. */
	if (!crid_call_lock(call, &rt->lock))
		return CRID_CALL_TO_WORKER;
	crid_packed_list_begin(&rt->container_list);
	for (struct crid_container *c = rt->containers; stream && c; c = c->next)
		cap++;
	if (stream) {
		items = calloc(cap ? cap : 1, sizeof(*items));
		ptrs = calloc(cap ? cap : 1, sizeof(*ptrs));
		images = calloc(cap ? cap : 1, sizeof(*images));
		if (!items || !ptrs || !images) {
			pthread_mutex_unlock(&rt->lock);
			return crid_err_nomem(err, "container list");
		}
	}
	for (struct crid_container *c = rt->containers; c; c = c->next) {
		Runtime__V1__Container *it = stream ? &items[n] : &one;
		Runtime__V1__ImageSpec *image = stream ? &images[n] : &one_image;
		enum crid_ctr_state state;
		int64_t created;

		if (!crid_call_lock(call, &c->state_lock)) {
			r = CRID_CALL_TO_WORKER;
			goto out;
		}
		state = c->state;
		created = c->created_at;
		pthread_mutex_unlock(&c->state_lock);
		if (!created)
			continue; /* still being created */
		if (f && f->id && *f->id && strncmp(c->id, f->id, strlen(f->id)) != 0)
			continue;
		if (f && f->pod_sandbox_id && *f->pod_sandbox_id &&
		    strncmp(c->pod_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id)) != 0)
			continue;
		if (f && f->state && f->state->state != crid_container_cri_state(state))
			continue;
		if (f && !container_labels_match(c->config, f->label_selector, f->n_label_selector))
			continue;
		if (!stream && crid_packed_entry_valid(&c->listed, state, created)) {
			if ((r = crid_packed_list_add(&rt->container_list, desc, &c->listed, err)) < 0)
				goto out;
			continue;
		}
		runtime__v1__container__init(it);
		runtime__v1__image_spec__init(image);
		image->image = c->image_shown;
		image->user_specified_image = c->config->image->user_specified_image;
		it->id = c->id;
		it->pod_sandbox_id = c->pod_id;
		it->metadata = c->config->metadata;
		it->image = image;
		it->image_ref = c->image_ref;
		it->image_id = c->image_id;
		it->state = crid_container_cri_state(state);
		it->created_at = created;
		it->n_labels = c->config->n_labels;
		it->labels = (Runtime__V1__Container__LabelsEntry **)c->config->labels;
		it->n_annotations = c->config->n_annotations;
		it->annotations = (Runtime__V1__Container__AnnotationsEntry **)c->config->annotations;
		if (!stream) {
			if ((r = crid_packed_entry_set(&c->listed, &it->base, state, created, err)) < 0 ||
			    (r = crid_packed_list_add(&rt->container_list, desc, &c->listed, err)) < 0)
				goto out;
			continue;
		}
		ptrs[n++] = it;
	}
	if (stream) {
		r = crid_call_send_items(call, &runtime__v1__stream_containers_response__descriptor, (void *const *)ptrs,
					 n, STREAM_BATCH, err);
	} else {
		r = crid_call_send_packed(call, rt->container_list.buf, rt->container_list.len, err);
	}
out:
	crid_packed_list_end(&rt->container_list);
	pthread_mutex_unlock(&rt->lock);
	return r;
}

static int list_containers(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	const Runtime__V1__ListContainersRequest *req = (const Runtime__V1__ListContainersRequest *)request;

	return send_containers(data, req->filter, call, false, err);
}

static int stream_containers(void *data, const ProtobufCMessage *request, struct crid_call *call,
			     struct crid_err *err)
{
	const Runtime__V1__StreamContainersRequest *req = (const Runtime__V1__StreamContainersRequest *)request;

	return send_containers(data, req->filter, call, true, err);
}

/* ---- exec, logs, resources ---- */

static int exec_sync(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__ExecSyncRequest *req = (const Runtime__V1__ExecSyncRequest *)request;
	Runtime__V1__ExecSyncResponse resp = RUNTIME__V1__EXEC_SYNC_RESPONSE__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	_cleanup_(json_decrefp) json_t *process = NULL;
	struct crid_exec_result res;
	char runtime_root[PATH_MAX];
	struct crid_oci_runtime oci;
	json_t *args;
	int64_t deadline = 0;
	size_t room;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	if (req->n_cmd == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cmd is empty");
	if ((r = crid_container_find(rt, req->container_id, &c, err)) < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	crid_container_collect_exit_locked(rt, c);
	if (c->state != CRID_CTR_RUNNING) {
		pthread_mutex_unlock(&c->lock);
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "container %s is not running", c->id);
	}
	process = json_deep_copy(c->process);
	pthread_mutex_unlock(&c->lock);
	args = json_array();
	if (!process || !args) {
		json_decref(args);
		return crid_err_nomem(err, "exec process");
	}
	for (size_t i = 0; i < req->n_cmd; i++)
		json_array_append_new(args, json_string(req->cmd[i]));
	json_object_set_new(process, "args", args);
	json_object_set_new(process, "terminal", json_false());
	if (req->timeout > 0)
		deadline = crid_monotonic_ns() + req->timeout * 1000000000LL;
	crid_container_oci(rt, c, runtime_root, sizeof(runtime_root), &oci);
	/* Output past what one response can carry is dropped, not refused:
	 * each stream keeps its first half of the response's room. */
	room = rt->cfg->grpc_max_send_bytes;
	room = room > 2 * EXEC_RESPONSE_SLACK ? (room - EXEC_RESPONSE_SLACK) / 2 : room / 4;
	r = crid_oci_exec_sync(&oci, c->id, process, deadline, room, c->dir, &res, err);
	if (r < 0)
		return r;
	if (res.timed_out) {
		crid_exec_result_free(&res);
		return crid_err_set(err, CRID_DEADLINE_EXCEEDED, 0, "command timed out after %lld s",
				    (long long)req->timeout);
	}
	resp.stdout.data = (uint8_t *)res.out;
	resp.stdout.len = res.out_len;
	resp.stderr.data = (uint8_t *)res.errout;
	resp.stderr.len = res.err_len;
	resp.exit_code = res.exit_code;
	r = crid_call_send(call, &resp.base, err);
	crid_exec_result_free(&res);
	return r;
}

static int reopen_container_log(void *data, const ProtobufCMessage *request, struct crid_call *call,
				struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__ReopenContainerLogRequest *req = (const Runtime__V1__ReopenContainerLogRequest *)request;
	Runtime__V1__ReopenContainerLogResponse resp = RUNTIME__V1__REOPEN_CONTAINER_LOG_RESPONSE__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	_cleanup_close_ int fd = -1;
	char answer[256];
	ssize_t n, got = 0;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	if ((r = crid_container_find(rt, req->container_id, &c, err)) < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	crid_container_collect_exit_locked(rt, c);
	r = c->state == CRID_CTR_RUNNING;
	pthread_mutex_unlock(&c->lock);
	if (!r)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "container %s is not running", c->id);
	fd = crid_unix_connect_in(c->dir, CRID_SHIM_CONTROL_SOCKET, SOCK_STREAM);
	if (fd < 0)
		return crid_err_set(err, CRID_UNAVAILABLE, -fd, "reach crid-shim of container %s", c->id);
	if (write(fd, "reopen\n", 7) != 7)
		return crid_err_set(err, CRID_UNAVAILABLE, errno, "ask crid-shim of container %s", c->id);
	while (got < (ssize_t)sizeof(answer) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 10000) <= 0)
			break;
		n = read(fd, answer + got, sizeof(answer) - 1 - (size_t)got);
		if (n <= 0)
			break;
		got += n;
		if (memchr(answer, '\n', (size_t)got))
			break;
	}
	answer[got] = '\0';
	answer[strcspn(answer, "\n")] = '\0';
	if (strcmp(answer, "ok") != 0)
		return crid_err_set(err, CRID_INTERNAL, 0, "reopen the log of container %s: %s", c->id,
				    got ? answer : "no answer");
	return crid_call_send(call, &resp.base, err);
}

static int update_container_resources(void *data, const ProtobufCMessage *request, struct crid_call *call,
				      struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__UpdateContainerResourcesRequest *req =
		(const Runtime__V1__UpdateContainerResourcesRequest *)request;
	Runtime__V1__UpdateContainerResourcesResponse resp = RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_RESPONSE__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	_cleanup_(json_decrefp) json_t *res = NULL;
	json_t *applied;
	char runtime_root[PATH_MAX];
	struct crid_oci_runtime oci;
	struct crid_spec_host host;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	if (!req->linux)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "linux resources are missing");
	if ((r = crid_container_find(rt, req->container_id, &c, err)) < 0)
		return r;
	crid_spec_host_probe(&host);
	if ((r = crid_spec_resources(req->linux, &host, &res, err)) < 0)
		return crid_err_wrap(err, "linux.");
	crid_container_oci(rt, c, runtime_root, sizeof(runtime_root), &oci);
	pthread_mutex_lock(&c->lock);
	crid_container_collect_exit_locked(rt, c);
	if (c->state == CRID_CTR_EXITED) {
		pthread_mutex_unlock(&c->lock);
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "container %s is not running", c->id);
	}
	r = crid_oci_update(&oci, c->id, res, err);
	if (r == 0) {
		/* What the runtime now holds: the old values with the new
		 * ones over them, as "update" sets only what it is given. */
		applied = json_deep_copy(c->resources);
		if (applied && json_object_update_recursive(applied, res) == 0) {
			pthread_mutex_lock(&c->state_lock);
			json_decref(c->resources);
			c->resources = applied;
			crid_container_persist(rt, c);
			pthread_mutex_unlock(&c->state_lock);
		} else {
			json_decref(applied);
			log_warn("cannot record updated resources: out of memory", "container", c->id);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return r;
	return crid_call_send(call, &resp.base, err);
}

int crid_container_queries_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "ContainerStatus", container_status },
		{ "ListContainers", list_containers },
		{ "StreamContainers", stream_containers },
		{ "ExecSync", exec_sync },
		{ "ReopenContainerLog", reopen_container_log },
		{ "UpdateContainerResources", update_container_resources },
	};
	return crid_rpc_methods_register_all(m, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);
}
