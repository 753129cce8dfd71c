/* Exec and Attach: check the request and the container, then hand the
 * streaming server (streaming/) what a session will need and answer with
 * its URL. Nothing runs until the client connects to that URL. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "container/container.h"
#include "oci/handler.h"
#include "oci/oci_runtime.h"
#include "runtime/objects.h"
#include "streaming/streaming.h"

static void request_freep(struct crid_stream_request **r)
{
	crid_stream_request_free(*r);
}

/* The checks Exec and Attach share: the stream flags and a running container. */
static int check_streams(bool in, bool out, bool errs, bool tty, struct crid_err *err)
{
	if (!in && !out && !errs)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "one of stdin, stdout and stderr must be set");
	if (tty && errs)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "tty and stderr cannot both be set: a terminal has one output stream");
	return 0;
}

static int running_container(struct crid_runtime *rt, const char *id, struct crid_container **out,
			     struct crid_err *err)
{
	struct crid_container *c = NULL;
	int r;

	if (!id || !*id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	if ((r = crid_container_find(rt, id, &c, err)) < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	crid_container_collect_exit_locked(rt, c);
	r = c->state == CRID_CTR_RUNNING;
	pthread_mutex_unlock(&c->lock);
	if (!r) {
		r = crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "container %s is not running", c->id);
		crid_container_unref(c);
		return r;
	}
	*out = c;
	return 0;
}

/* "[sh -c exit 3]", as the kubelet words the command in its messages. */
static char *cmd_text(char **cmd, size_t n)
{
	size_t len = 3;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(cmd[i]) + 1;
	if (len > 4096)
		len = 4096;
	s = malloc(len);
	if (!s)
		return NULL;
	p = s;
	*p++ = '[';
	for (size_t i = 0; i < n && p < s + len - 2; i++) {
		int k = snprintf(p, (size_t)(s + len - 1 - p), "%s%s", i ? " " : "", cmd[i]);

		if (k < 0)
			break;
		p += k < s + len - 1 - p ? k : s + len - 2 - p;
	}
	*p++ = ']';
	*p = '\0';
	return s;
}

static int exec_rpc(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__ExecRequest *req = (const Runtime__V1__ExecRequest *)request;
	Runtime__V1__ExecResponse resp = RUNTIME__V1__EXEC_RESPONSE__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	_cleanup_(request_freep) struct crid_stream_request *sr = NULL;
	_cleanup_(json_decrefp) json_t *process = NULL;
	_cleanup_free_ char *url = NULL;
	char binary[PATH_MAX], root[PATH_MAX];
	struct crid_oci_runtime oci;
	json_t *args;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	if (req->n_cmd == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cmd is empty");
	if ((r = check_streams(req->stdin, req->stdout, req->stderr, req->tty, err)) < 0)
		return r;
	if ((r = running_container(rt, req->container_id, &c, err)) < 0)
		return r;
	if ((r = crid_handler_binary(c->handler, binary, sizeof(binary), err)) < 0)
		return r;
	crid_container_oci(rt, c, root, sizeof(root), &oci);
	pthread_mutex_lock(&c->lock);
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
	json_object_set_new(process, "terminal", json_boolean(req->tty));
	sr = calloc(1, sizeof(*sr));
	if (!sr)
		return crid_err_nomem(err, "exec request");
	sr->kind = CRID_STREAM_EXEC;
	snprintf(sr->id, sizeof(sr->id), "%s", c->id);
	sr->tty = req->tty;
	sr->in = req->stdin;
	sr->out = req->stdout;
	sr->err = req->stderr;
	sr->runtime_path = strdup(binary);
	sr->runtime_root = strdup(oci.root);
	sr->runtime_args = calloc(oci.n_args + 1, sizeof(*sr->runtime_args));
	for (size_t i = 0; sr->runtime_args && i < oci.n_args; i++)
		if (!(sr->runtime_args[i] = strdup(oci.args[i])))
			return crid_err_nomem(err, "exec request");
	if (!sr->runtime_args)
		return crid_err_nomem(err, "exec request");
	sr->process = json_dumps(process, JSON_COMPACT);
	sr->cmd_text = cmd_text(req->cmd, req->n_cmd);
	if (!sr->runtime_path || !sr->runtime_root || !sr->process || !sr->cmd_text)
		return crid_err_nomem(err, "exec request");
	if ((r = crid_streaming_register(rt->streaming, sr, &url, err)) < 0)
		return r;
	sr = NULL; /* the server's now */
	resp.url = url;
	return crid_call_send(call, &resp.base, err);
}

static int attach_rpc(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__AttachRequest *req = (const Runtime__V1__AttachRequest *)request;
	Runtime__V1__AttachResponse resp = RUNTIME__V1__ATTACH_RESPONSE__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	_cleanup_(request_freep) struct crid_stream_request *sr = NULL;
	_cleanup_free_ char *url = NULL;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	if ((r = check_streams(req->stdin, req->stdout, req->stderr, req->tty, err)) < 0)
		return r;
	if ((r = running_container(rt, req->container_id, &c, err)) < 0)
		return r;
	/* A tty that differs from the container's is no error: the client
	 * gets the streams it asked for, fed from those the container has. */
	sr = calloc(1, sizeof(*sr));
	if (!sr)
		return crid_err_nomem(err, "attach request");
	sr->kind = CRID_STREAM_ATTACH;
	snprintf(sr->id, sizeof(sr->id), "%s", c->id);
	sr->tty = req->tty;
	sr->in = req->stdin && c->config->stdin; /* a container without stdin takes no input */
	sr->out = req->stdout;
	sr->err = req->stderr;
	sr->attach_socket = strdup(c->dir);
	if (!sr->attach_socket)
		return crid_err_nomem(err, "attach request");
	if ((r = crid_streaming_register(rt->streaming, sr, &url, err)) < 0)
		return r;
	sr = NULL;
	resp.url = url;
	return crid_call_send(call, &resp.base, err);
}

int crid_container_streams_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "Exec", exec_rpc },
		{ "Attach", attach_rpc },
	};
	return crid_rpc_methods_register_all(m, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);
}
