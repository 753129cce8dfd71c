/* A call's life (call.h): references, the reply buffer that handlers fill
 * from any thread, its end, and its cancellation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "rpc/grpc_wire.h"
#include "rpc/rpc_internal.h"

int64_t crid_now_ns(void)
{
	return crid_monotonic_ns();
}

struct crid_call *crid_call_new(struct crid_server *server, struct crid_conn *conn, int32_t stream_id)
{
	struct crid_call *call = calloc(1, sizeof(*call));

	if (!call)
		return NULL;
	atomic_init(&call->refs, 1);
	atomic_init(&call->cancelled, false);
	call->server = server;
	call->conn = conn;
	call->stream_id = stream_id;
	call->start_ns = crid_now_ns();
	call->api_version = "v1";
	crid_request_headers_init(&call->hdrs);
	pthread_mutex_init(&call->lock, NULL);
	return call;
}

struct crid_call *crid_call_ref(struct crid_call *call)
{
	atomic_fetch_add(&call->refs, 1);
	return call;
}

void crid_call_unref(struct crid_call *call)
{
	if (!call || atomic_fetch_sub(&call->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&call->lock);
	crid_call_drop_request(call);
	free(call->path);
	free(call->encoding);
	free(call->out);
	free(call->status_msg);
	free(call);
}

void crid_call_drop_request(struct crid_call *call)
{
	free(call->req);
	call->req = NULL;
	call->req_len = call->req_cap = 0;
	if (call->req_counted) {
		crid_server_release_request(call->server, call->req_counted);
		call->req_counted = 0;
	}
}

const char *crid_call_method(const struct crid_call *call)
{
	return call->path ? call->path : "";
}

const char *crid_call_api_version(const struct crid_call *call)
{
	return call->api_version;
}

bool crid_call_lock(struct crid_call *call, pthread_mutex_t *lock)
{
	if (call->on_loop)
		return pthread_mutex_trylock(lock) == 0;
	pthread_mutex_lock(lock);
	return true;
}

int64_t crid_call_deadline_ns(const struct crid_call *call)
{
	return call->deadline_ns;
}

int crid_call_cancelled(const struct crid_call *call)
{
	return atomic_load(&call->cancelled);
}

/* Appends one length-prefixed message: pack(msg) when msg, else data. */
static int send_bytes(struct crid_call *call, const ProtobufCMessage *msg, const uint8_t *data, size_t len,
		      struct crid_err *err)
{
	size_t need;

	if (len > crid_server_max_send(call->server))
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, 0,
				    "response message of %zu bytes exceeds the limit of %zu bytes", len,
				    crid_server_max_send(call->server));
	pthread_mutex_lock(&call->lock);
	if (call->finished || atomic_load(&call->cancelled)) {
		pthread_mutex_unlock(&call->lock);
		return crid_err_set(err, CRID_CANCELLED, ECANCELED, "send on a call that already ended");
	}
	need = call->out_len + CRID_GRPC_PREFIX_LEN + len;
	if (need > SIZE_MAX / 2) {
		pthread_mutex_unlock(&call->lock);
		return crid_err_nomem(err, "response buffer");
	}
	{
		uint8_t *grown = realloc(call->out, need);

		if (!grown) {
			pthread_mutex_unlock(&call->lock);
			return crid_err_nomem(err, "response buffer");
		}
		call->out = grown;
	}
	crid_grpc_prefix_write(call->out + call->out_len, (uint32_t)len);
	if (msg)
		protobuf_c_message_pack(msg, call->out + call->out_len + CRID_GRPC_PREFIX_LEN);
	else if (len)
		memcpy(call->out + call->out_len + CRID_GRPC_PREFIX_LEN, data, len);
	call->out_len = need;
	call->sent_any = true;
	pthread_mutex_unlock(&call->lock);
	crid_server_notify(call->server, call);
	return 0;
}

int crid_call_send(struct crid_call *call, const ProtobufCMessage *msg, struct crid_err *err)
{
	return send_bytes(call, msg, NULL, protobuf_c_message_get_packed_size(msg), err);
}

int crid_call_send_packed(struct crid_call *call, const uint8_t *data, size_t len, struct crid_err *err)
{
	return send_bytes(call, NULL, data, len, err);
}

size_t crid_call_unsent(struct crid_call *call)
{
	size_t n;

	pthread_mutex_lock(&call->lock);
	n = call->out_len - call->out_off;
	pthread_mutex_unlock(&call->lock);
	return n;
}

void crid_call_on_drain(struct crid_call *call, void (*fn)(struct crid_call *call, void *data), void *data)
{
	pthread_mutex_lock(&call->lock);
	if (!call->finished) {
		call->drain_fn = fn;
		call->drain_data = data;
	}
	pthread_mutex_unlock(&call->lock);
}

static void log_end(struct crid_call *call, int status)
{
	char dur[32];

	crid_server_observe_end(call->server, call, status);
	if (!crid_log_enabled(CRID_LOG_DEBUG))
		return;
	snprintf(dur, sizeof(dur), "%.3f", (double)(crid_now_ns() - call->start_ns) / 1e6);
	log_debug("rpc", "method", crid_call_method(call), "status", crid_status_name(status), "dur_ms", dur,
		  "error", status == CRID_OK ? NULL : call->status_msg);
}

/* Returns true when this was the call's end. */
static bool finish_locked(struct crid_call *call, int status, const char *message)
{
	if (call->finished)
		return false;
	call->finished = true;
	call->drain_fn = NULL;
	call->status = status;
	if (message && *message) {
		call->status_msg = strdup(message);
		/* Without memory the status still goes out, with no message. */
	}
	return true;
}

void crid_call_finish(struct crid_call *call, int status, const char *message)
{
	bool ended;

	pthread_mutex_lock(&call->lock);
	ended = finish_locked(call, status, message);
	if (ended)
		call->cancel_fn = NULL; /* finished normally: the hook is not wanted */
	pthread_mutex_unlock(&call->lock);
	if (ended) {
		log_end(call, status);
		crid_server_notify(call->server, call);
	}
}

void crid_call_on_cancel(struct crid_call *call, void (*fn)(struct crid_call *call, void *data), void *data)
{
	pthread_mutex_lock(&call->lock);
	call->cancel_fn = fn;
	call->cancel_data = data;
	pthread_mutex_unlock(&call->lock);
}

void crid_call_abort(struct crid_call *call, int status, const char *message)
{
	void (*fn)(struct crid_call *, void *);
	void *data;
	bool ended;

	atomic_store(&call->cancelled, true);
	pthread_mutex_lock(&call->lock);
	ended = finish_locked(call, status, message);
	fn = call->cancel_fn;
	data = call->cancel_data;
	call->cancel_fn = NULL;
	pthread_mutex_unlock(&call->lock);
	if (fn)
		fn(call, data);
	if (ended) {
		log_end(call, status);
		crid_server_notify(call->server, call);
	}
}
