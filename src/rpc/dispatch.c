/* From a complete HTTP/2 request to a handler: every check a request must
 * pass, each failure a gRPC status that says what was wrong, then the
 * handler's run on a worker thread, or on the loop for the methods that
 * answer from memory without blocking. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "rpc/grpc_wire.h"
#include "rpc/proto_check.h"
#include "rpc/rpc_internal.h"

/* The request's message, checked and decoded; NULL when it was neither
 * (the call is then finished with the reason). The bytes stay the call's. */
static ProtobufCMessage *decode_request(struct crid_call *call)
{
	const struct crid_rpc_method *m = call->method;
	ProtobufCMessage *request;
	struct crid_err err;
	const uint8_t *msg;
	size_t msg_len;

	crid_err_clear(&err);
	if (crid_grpc_unary_body(call->req, call->req_len, &msg, &msg_len, &err) < 0) {
		crid_call_finish(call, err.status, err.msg);
		return NULL;
	}
	/* Strings are checked on the wire, where a NUL is still visible. */
	if (crid_proto_check_strings(m->input, msg, msg_len, &err) < 0) {
		crid_call_finish(call, err.status, err.msg);
		return NULL;
	}
	request = protobuf_c_message_unpack(m->input, NULL, msg_len, msg);
	if (!request) {
		char text[256];

		snprintf(text, sizeof(text), "cannot decode the %s of %s: not a valid protobuf message",
			 m->input->name, crid_call_method(call));
		crid_call_finish(call, CRID_INVALID_ARGUMENT, text);
	}
	return request;
}

/* Runs the handler on request, which it frees, and ends the call unless
 * the handler keeps it open or hands it to a worker (returned then). */
static int invoke(struct crid_call *call, ProtobufCMessage *request)
{
	const struct crid_rpc_method *m = call->method;
	struct crid_err err;
	int r;

	crid_err_clear(&err);
	r = m->handler(m->data, request, call, &err);
	protobuf_c_message_free_unpacked(request, NULL);
	if (r < 0)
		crid_call_finish(call, err.status ? err.status : CRID_INTERNAL, err.msg);
	else if (r == CRID_CALL_TO_WORKER && call->on_loop)
		return r;
	else if (r != CRID_CALL_PENDING)
		crid_call_finish(call, CRID_OK, NULL);
	return r;
}

static void run_handler(void *arg)
{
	struct crid_call *call = arg;
	ProtobufCMessage *request;

	if (crid_call_cancelled(call))
		goto out; /* the deadline passed or the client left while queued */
	request = decode_request(call);
	crid_call_drop_request(call); /* decoded: the bytes are no longer needed */
	if (request)
		invoke(call, request);
out:
	crid_call_drop_request(call);
	crid_call_unref(call);
}

/* A request with its verbose flag set (e.g. ContainerStatus for crictl
 * inspect) may read files: a worker's work. */
static bool wants_worker(const ProtobufCMessage *request)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(request->descriptor, "verbose");

	return f && f->type == PROTOBUF_C_TYPE_BOOL && *(const protobuf_c_boolean *)((const char *)request + f->offset);
}

/* A method answered from memory runs right here on the loop: no hand-off
 * to a worker and back. Returns true when the call was served; false when
 * a worker must (the request's bytes are still there for it). */
static bool serve_on_loop(struct crid_call *call)
{
	ProtobufCMessage *request = decode_request(call);
	int r;

	if (!request) {
		crid_call_drop_request(call);
		return true;
	}
	if (wants_worker(request)) {
		protobuf_c_message_free_unpacked(request, NULL);
		return false;
	}
	call->on_loop = true;
	r = invoke(call, request);
	call->on_loop = false;
	if (r == CRID_CALL_TO_WORKER)
		return false;
	crid_call_drop_request(call);
	return true;
}

/* Returns 0 when the request may run, else the status it ends with. */
static int check_request(struct crid_server *s, struct crid_call *call, char *text, size_t size)
{
	const struct crid_rpc_method *m;
	struct crid_err err;
	const uint8_t *msg;
	size_t msg_len;

	if (!call->method_post) {
		call->http_status = 405;
		snprintf(text, size, "gRPC requests use POST");
		return CRID_INVALID_ARGUMENT;
	}
	if (!call->content_type_grpc) {
		call->http_status = 415;
		snprintf(text, size, "content-type must be application/grpc");
		return CRID_INVALID_ARGUMENT;
	}
	if (call->encoding) {
		snprintf(text, size, "grpc-encoding %s is not supported; crid accepts identity", call->encoding);
		return CRID_UNIMPLEMENTED;
	}
	if (call->bad_timeout) {
		snprintf(text, size, "malformed grpc-timeout header");
		return CRID_INVALID_ARGUMENT;
	}
	m = crid_rpc_methods_find(crid_server_methods(s), crid_call_method(call), strlen(crid_call_method(call)),
				  &call->api_version);
	if (!m) {
		snprintf(text, size, "unknown method %s", crid_call_method(call));
		return CRID_UNIMPLEMENTED;
	}
	if (!m->handler) {
		snprintf(text, size, "method %s is not implemented yet", crid_call_method(call));
		return CRID_UNIMPLEMENTED;
	}
	call->method = m;
	crid_err_clear(&err);
	if (crid_grpc_unary_body(call->req, call->req_len, &msg, &msg_len, &err) < 0) {
		snprintf(text, size, "%s: %s", crid_call_method(call), err.msg);
		return err.status;
	}
	if (call->deadline_ns && call->deadline_ns <= crid_now_ns()) {
		snprintf(text, size, "deadline exceeded before %s could start", crid_call_method(call));
		return CRID_DEADLINE_EXCEEDED;
	}
	if (crid_server_stopping(s)) {
		snprintf(text, size, "crid is shutting down");
		return CRID_UNAVAILABLE;
	}
	return 0;
}

void crid_server_dispatch(struct crid_server *s, struct crid_call *call)
{
	char text[2048];
	struct crid_err err;
	int status;

	if (call->finished)
		return; /* answered while it arrived (message too large) */
	status = check_request(s, call, text, sizeof(text));
	if (status != 0) {
		crid_call_drop_request(call);
		crid_call_finish(call, status, text);
		return;
	}
	crid_err_clear(&err);
	call->handled = true; /* from here the request is the handler's */
	if (call->method->on_loop && serve_on_loop(call))
		return;
	if (crid_server_run_handler(s, run_handler, crid_call_ref(call), &err) < 0) {
		call->handled = false;
		crid_call_unref(call);
		crid_call_drop_request(call);
		crid_call_finish(call, err.status, err.msg);
	}
}
