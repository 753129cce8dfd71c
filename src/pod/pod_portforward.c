/* PortForward: checks the pod and the ports, then hands the streaming
 * server (streaming/) the pod's network namespace and answers with the
 * session's URL. Dialing happens in the session, inside that namespace. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "pod/pod.h"
#include "runtime/objects.h"
#include "streaming/streaming.h"

static void request_freep(struct crid_stream_request **r)
{
	crid_stream_request_free(*r);
}

static int port_forward(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__PortForwardRequest *req = (const Runtime__V1__PortForwardRequest *)request;
	Runtime__V1__PortForwardResponse resp = RUNTIME__V1__PORT_FORWARD_RESPONSE__INIT;
	_cleanup_(crid_pod_unrefp) struct crid_pod *p = NULL;
	_cleanup_(request_freep) struct crid_stream_request *sr = NULL;
	_cleanup_free_ char *url = NULL;
	int r;

	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod_sandbox_id is empty");
	for (size_t i = 0; i < req->n_port; i++) {
		if (req->port[i] <= 0 || req->port[i] > 65535)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "port[%zu]: %d is not a port (1-65535)", i,
					    req->port[i]);
	}
	if ((r = crid_pod_find(rt, req->pod_sandbox_id, &p, err)) < 0)
		return r;
	if (!atomic_load(&p->ready))
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "pod %s is not ready", p->id);
	sr = calloc(1, sizeof(*sr));
	if (!sr)
		return crid_err_nomem(err, "port-forward request");
	sr->kind = CRID_STREAM_PORTFORWARD;
	snprintf(sr->id, sizeof(sr->id), "%s", p->id);
	pthread_mutex_lock(&p->lock);
	if (p->ns.net_path && !(sr->netns = strdup(p->ns.net_path))) {
		pthread_mutex_unlock(&p->lock);
		return crid_err_nomem(err, "port-forward request");
	}
	pthread_mutex_unlock(&p->lock);
	if (req->n_port > 0) {
		sr->ports = calloc(req->n_port, sizeof(*sr->ports));
		if (!sr->ports)
			return crid_err_nomem(err, "port-forward request");
		for (size_t i = 0; i < req->n_port; i++)
			sr->ports[i] = (uint16_t)req->port[i];
		sr->n_ports = req->n_port;
	}
	if ((r = crid_streaming_register(rt->streaming, sr, &url, err)) < 0)
		return r;
	sr = NULL;
	resp.url = url;
	return crid_call_send(call, &resp.base, err);
}

int crid_pod_portforward_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "PortForward", port_forward },
	};
	return crid_rpc_methods_register_all(m, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);
}
