/* One client connection (rpc_internal.h): nghttp2 turns bytes into gRPC
 * requests; finished requests go to the server for dispatch, and call output
 * goes back out through nghttp2 data providers. Loop thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "rpc/grpc_wire.h"
#include "rpc/rpc_internal.h"

#define MAX_PATH_LEN 256
#define MAX_STATUS_MSG 2048
/* Enough for a kubelet's parallel calls; bounds what one client can hold. */
#define MAX_CONCURRENT_STREAMS 1024

static void call_link(struct crid_conn *conn, struct crid_call *call)
{
	call->conn_next = conn->calls;
	call->conn_prev = NULL;
	if (conn->calls)
		conn->calls->conn_prev = call;
	conn->calls = call;
}

static void call_unlink(struct crid_conn *conn, struct crid_call *call)
{
	if (call->conn_prev)
		call->conn_prev->conn_next = call->conn_next;
	else
		conn->calls = call->conn_next;
	if (call->conn_next)
		call->conn_next->conn_prev = call->conn_prev;
	call->conn_prev = call->conn_next = NULL;
	call->conn = NULL;
}

static struct crid_call *stream_call(nghttp2_session *session, int32_t stream_id)
{
	return nghttp2_session_get_stream_user_data(session, stream_id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct crid_conn *conn = user_data;
	struct crid_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
		call = stream_call(session, frame->hd.stream_id);
		if (call)
			crid_request_trailers_begin(&call->hdrs, frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
		return 0;
	}
	call = crid_call_new(conn->server, conn, frame->hd.stream_id);
	if (!call)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets just this stream */
	if (nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call) != 0) {
		crid_call_unref(call);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	call_link(conn, call);
	return 0;
}

static bool header_is(const uint8_t *name, size_t namelen, const char *want)
{
	return strlen(want) == namelen && memcmp(name, want, namelen) == 0;
}

static char *dup_value(const uint8_t *value, size_t len)
{
	char *s = malloc(len + 1);

	if (s) {
		memcpy(s, value, len);
		s[len] = '\0';
	}
	return s;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
	struct crid_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	call = stream_call(session, frame->hd.stream_id);
	if (!call)
		return 0;
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
		crid_request_trailers_field(&call->hdrs, name, namelen, value, valuelen);
		return 0;
	}
	crid_request_headers_field(&call->hdrs, name, namelen, value, valuelen);
	if (header_is(name, namelen, ":path")) {
		if (valuelen > MAX_PATH_LEN)
			valuelen = MAX_PATH_LEN; /* no CRI method is this long: stays unknown */
		free(call->path);
		call->path = dup_value(value, valuelen);
		if (!call->path)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	} else if (header_is(name, namelen, ":method")) {
		call->method_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (header_is(name, namelen, "content-type")) {
		call->content_type_grpc = crid_grpc_content_type_ok((const char *)value, valuelen);
	} else if (header_is(name, namelen, "grpc-encoding")) {
		if (valuelen == 8 && memcmp(value, "identity", 8) == 0)
			return 0;
		free(call->encoding);
		call->encoding = dup_value(value, valuelen > 64 ? 64 : valuelen);
		if (!call->encoding)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	} else if (header_is(name, namelen, "grpc-timeout")) {
		int64_t ns;

		if (crid_grpc_timeout_parse((const char *)value, valuelen, &ns) < 0) {
			call->bad_timeout = true;
		} else {
			call->deadline_ns = ns > INT64_MAX - call->start_ns ? INT64_MAX : call->start_ns + ns;
			if (call->deadline_ns == 0)
				call->deadline_ns = 1;
		}
	}
	return 0;
}

/* A malformed request (RFC 9113 8.1.1) is a stream error: the stream is
 * reset with PROTOCOL_ERROR and never reaches a handler. on_frame_send
 * logs why. */
static void refuse_stream(nghttp2_session *session, struct crid_call *call)
{
	if (call->dispatched)
		return;
	call->dispatched = true;
	nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_PROTOCOL_ERROR);
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
			 void *user_data)
{
	struct crid_call *call = stream_call(session, stream_id);
	size_t limit;

	if (!call)
		return 0;
	crid_request_headers_data(&call->hdrs, len);
	if (crid_request_headers_malformed(&call->hdrs)) {
		refuse_stream(session, call);
		return 0;
	}
	if (call->finished || call->dispatched)
		return 0; /* already answered (e.g. too large): the rest is dropped */
	limit = crid_server_max_recv(call->server) + CRID_GRPC_PREFIX_LEN;
	if (call->req_len + len > limit) {
		uint64_t announced = 0;

		if (call->req_len >= CRID_GRPC_PREFIX_LEN) {
			int compressed;
			uint32_t l;

			crid_grpc_prefix_read(call->req, &compressed, &l);
			announced = l;
		}
		char msg[160];

		snprintf(msg, sizeof(msg), "request message of %llu bytes exceeds the limit of %zu bytes",
			 (unsigned long long)(announced ? announced : call->req_len + len - CRID_GRPC_PREFIX_LEN),
			 crid_server_max_recv(call->server));
		crid_call_drop_request(call);
		crid_call_finish(call, CRID_RESOURCE_EXHAUSTED, msg);
		return 0;
	}
	if (call->req_len + len > call->req_cap) {
		size_t cap = call->req_cap ? call->req_cap : 256;
		uint8_t *grown;
		bool reserved;

		while (cap < call->req_len + len)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		/* Every unfinished request together stays under one bound: a
		 * client cannot hold memory with streams it never ends. And
		 * those must not keep out requests that do end: the oldest
		 * request still arriving gives way. */
		while (!(reserved = crid_server_reserve_request(call->server, cap - call->req_cap)) &&
		       crid_server_evict_request(call->server, call))
			;
		if (!reserved) {
			char msg[192];

			snprintf(msg, sizeof(msg),
				 "requests in progress hold the most memory allowed for them (%zu bytes); retry later",
				 crid_server_max_pending(call->server));
			crid_call_drop_request(call);
			crid_call_finish(call, CRID_RESOURCE_EXHAUSTED, msg);
			return 0;
		}
		call->req_counted += cap - call->req_cap;
		grown = realloc(call->req, cap);
		if (!grown) {
			crid_call_drop_request(call);
			crid_call_finish(call, CRID_RESOURCE_EXHAUSTED, "out of memory for the request message");
			return 0;
		}
		call->req = grown;
		call->req_cap = cap;
	}
	memcpy(call->req + call->req_len, data, len);
	call->req_len += len;
	/* A prefix that announces more than the limit is refused at once rather
	 * than after megabytes arrive. */
	if (call->req_len >= CRID_GRPC_PREFIX_LEN && call->req_len - len < CRID_GRPC_PREFIX_LEN) {
		int compressed;
		uint32_t l;

		crid_grpc_prefix_read(call->req, &compressed, &l);
		if (l > crid_server_max_recv(call->server)) {
			char msg[160];

			snprintf(msg, sizeof(msg), "request message of %u bytes exceeds the limit of %zu bytes", l,
				 crid_server_max_recv(call->server));
			crid_call_finish(call, CRID_RESOURCE_EXHAUSTED, msg);
		}
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct crid_conn *conn = user_data;
	struct crid_call *call;

	if (frame->hd.type == NGHTTP2_GOAWAY) {
		char code[16], text[128];

		snprintf(code, sizeof(code), "%u", frame->goaway.error_code);
		snprintf(text, sizeof(text), "%.*s", (int)(frame->goaway.opaque_data_len < 100 ? frame->goaway.opaque_data_len : 100),
			 frame->goaway.opaque_data ? (const char *)frame->goaway.opaque_data : "");
		log_debug("client sent GOAWAY", "code", code, "debug", text);
	}
	if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK))
		conn->got_settings = true;
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	call = stream_call(session, frame->hd.stream_id);
	if (!call || call->dispatched)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		crid_request_headers_end(&call->hdrs);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
		crid_request_headers_stream_end(&call->hdrs);
	if (crid_request_headers_malformed(&call->hdrs)) {
		refuse_stream(session, call);
		return 0;
	}
	if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	call->dispatched = true;
	crid_server_dispatch(conn->server, call);
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
	struct crid_conn *conn = user_data;
	struct crid_call *call = stream_call(session, stream_id);

	if (!call)
		return 0;
	nghttp2_session_set_stream_user_data(session, stream_id, NULL);
	call_unlink(conn, call);
	if (!call->handled)
		crid_call_drop_request(call);
	if (crid_request_headers_malformed(&call->hdrs)) {
		char text[sizeof(call->hdrs.malformed) + 32];

		snprintf(text, sizeof(text), "malformed request: %s", call->hdrs.malformed);
		crid_call_abort(call, CRID_INTERNAL, text);
	} else {
		crid_call_abort(call, CRID_CANCELLED, "the client cancelled the call");
	}
	crid_call_unref(call); /* the loop's reference */
	return 0;
}

/* A client's protocol error at warning level: at the default level crid
 * must not refuse calls in silence, yet a broken client must not flood the
 * log either. */
static void warn_protocol(struct crid_conn *conn, const char *msg, struct crid_call *call, const char *code,
			  const char *reason)
{
	unsigned suppressed;
	char sid[16], dropped[16];

	if (!crid_server_warn_allowed(conn->server, &suppressed))
		return;
	snprintf(sid, sizeof(sid), "%d", call ? call->stream_id : 0);
	snprintf(dropped, sizeof(dropped), "%u", suppressed);
	log_warn(msg, "code", code, "reason", reason && *reason ? reason : NULL, "stream", call ? sid : NULL,
		 "method", call && call->path ? call->path : NULL, "suppressed", suppressed ? dropped : NULL);
}

/* After a complete response, a client still sending its request is told to
 * stop (RFC 9113 8.1), so a refused oversized message does not keep flowing. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct crid_conn *conn = user_data;

	if (frame->hd.type == NGHTTP2_GOAWAY) {
		if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
			warn_protocol(conn, "closing a connection: HTTP/2 protocol error", NULL,
				      nghttp2_http2_strerror(frame->goaway.error_code), conn->last_error);
		else
			log_debug("sent GOAWAY");
	}
	if (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code != NGHTTP2_NO_ERROR) {
		struct crid_call *call = stream_call(session, frame->hd.stream_id);

		warn_protocol(conn, "reset a stream", call,
			      nghttp2_http2_strerror(frame->rst_stream.error_code),
			      call && call->hdrs.malformed[0] ? call->hdrs.malformed : conn->last_error);
	}
	if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	if (nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0)
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

#define NV(n, v, vlen)                                                                            \
	{                                                                                         \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NONE       \
	}

/* Status headers: grpc-status and a percent-encoded grpc-message. Call lock
 * held; nghttp2 copies what it is given. */
static int status_nv(struct crid_call *call, nghttp2_nv *nv, char *status_buf, char **msg_buf)
{
	int n = 0;

	snprintf(status_buf, 12, "%d", call->status);
	nv[n++] = (nghttp2_nv)NV("grpc-status", status_buf, strlen(status_buf));
	*msg_buf = NULL;
	if (call->status_msg && call->status != CRID_OK) {
		char clipped[MAX_STATUS_MSG + 1];
		size_t cap = 3 * MAX_STATUS_MSG + 1;
		int len;

		snprintf(clipped, sizeof(clipped), "%s", call->status_msg);
		*msg_buf = malloc(cap);
		if (*msg_buf) {
			len = crid_grpc_message_encode(clipped, *msg_buf, cap);
			if (len > 0)
				nv[n++] = (nghttp2_nv)NV("grpc-message", *msg_buf, (size_t)len);
		}
	}
	return n;
}

static ssize_t read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
			     uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	struct crid_call *call = source->ptr;
	size_t n;

	pthread_mutex_lock(&call->lock);
	if (call->out_len == call->out_off && !call->finished && call->drain_fn) {
		/* Nothing left to send: a streaming handler may hold more back. */
		void (*fn)(struct crid_call *, void *) = call->drain_fn;
		void *data = call->drain_data;

		pthread_mutex_unlock(&call->lock);
		fn(call, data);
		pthread_mutex_lock(&call->lock);
	}
	n = call->out_len - call->out_off;
	if (n > length)
		n = length;
	if (n > 0)
		memcpy(buf, call->out + call->out_off, n);
	call->out_off += n;
	if (call->out_off == call->out_len) {
		call->out_off = call->out_len = 0;
		if (n > 0) {
			free(call->out); /* a stream's idle buffer holds no memory */
			call->out = NULL;
		}
	}
	if (call->out_len == 0 && call->finished) {
		nghttp2_nv nv[2];
		char status_buf[12];
		char *msg_buf;
		int nnv = status_nv(call, nv, status_buf, &msg_buf);

		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(session, stream_id, nv, (size_t)nnv) != 0)
			nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_INTERNAL_ERROR);
		free(msg_buf);
	} else if (n == 0) {
		pthread_mutex_unlock(&call->lock);
		return NGHTTP2_ERR_DEFERRED;
	}
	pthread_mutex_unlock(&call->lock);
	return (ssize_t)n;
}

void crid_conn_push_call(struct crid_conn *conn, struct crid_call *call)
{
	bool has_data, finished;
	int rv = 0;

	if (call->conn != conn)
		return;
	pthread_mutex_lock(&call->lock);
	has_data = call->out_len > call->out_off;
	finished = call->finished;
	if (call->handled)
		conn->owes_reply = true;
	if (!call->headers_submitted && finished && !has_data) {
		/* Trailers-Only: one HEADERS frame carrying the status. */
		char http_status[8], status_buf[12];
		char *msg_buf;
		nghttp2_nv nv[6];
		int n = 0;

		snprintf(http_status, sizeof(http_status), "%d", call->http_status ? call->http_status : 200);
		nv[n++] = (nghttp2_nv)NV(":status", http_status, strlen(http_status));
		nv[n++] = (nghttp2_nv)NV("content-type", "application/grpc", 16);
		if (call->encoding)
			nv[n++] = (nghttp2_nv)NV("grpc-accept-encoding", "identity", 8);
		n += status_nv(call, nv + n, status_buf, &msg_buf);
		call->headers_submitted = true;
		pthread_mutex_unlock(&call->lock);
		rv = nghttp2_submit_response(conn->session, call->stream_id, nv, (size_t)n, NULL);
		free(msg_buf);
	} else if (!call->headers_submitted && has_data) {
		nghttp2_nv nv[] = {
			NV(":status", "200", 3),
			NV("content-type", "application/grpc", 16),
		};
		nghttp2_data_provider provider = { .source.ptr = call, .read_callback = read_response };

		call->headers_submitted = true;
		pthread_mutex_unlock(&call->lock);
		rv = nghttp2_submit_response(conn->session, call->stream_id, nv, CRID_ARRAY_SIZE(nv), &provider);
	} else {
		bool submitted = call->headers_submitted;

		pthread_mutex_unlock(&call->lock);
		if (submitted)
			nghttp2_session_resume_data(conn->session, call->stream_id); /* fails harmlessly if not deferred */
	}
	if (rv != 0) {
		log_warn("cannot submit response", "method", crid_call_method(call), "error", nghttp2_strerror(rv));
		nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_INTERNAL_ERROR);
	}
}

/* nghttp2's account of a protocol error it answers itself (a reset or a
 * GOAWAY, logged when sent). */
static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len, void *user_data)
{
	struct crid_conn *conn = user_data;

	snprintf(conn->last_error, sizeof(conn->last_error), "%.*s", (int)(len < 120 ? len : 120), msg);
	return 0;
}

static int on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame, int lib_error_code,
			    void *user_data)
{
	struct crid_conn *conn = user_data;

	snprintf(conn->last_error, sizeof(conn->last_error), "invalid frame of type %u on stream %d: %s",
		 frame->hd.type, frame->hd.stream_id, nghttp2_strerror(lib_error_code));
	return 0;
}

struct crid_conn *crid_conn_new(struct crid_server *server, int fd)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	struct crid_conn *conn = calloc(1, sizeof(*conn));
	nghttp2_settings_entry settings[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
	};
	int rv;

	if (!conn)
		return NULL;
	conn->kind = CRID_POLL_CONN;
	conn->created_ns = conn->active_ns = crid_now_ns();
	conn->preface_left = NGHTTP2_CLIENT_MAGIC_LEN;
	conn->fd = fd;
	conn->epfd = -1;
	conn->server = server;
	if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cbs);
		free(conn);
		return NULL;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
	/* Streams past our advertised limit are refused by nghttp2 itself. */
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	nghttp2_option_set_no_http_messaging(opt, 1);
	rv = nghttp2_session_server_new2(&conn->session, cbs, conn, opt);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	if (rv != 0) {
		free(conn);
		return NULL;
	}
	/* The connection window too: large messages should not crawl. */
	if (nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings, CRID_ARRAY_SIZE(settings)) != 0 ||
	    nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, 1 << 20) != 0) {
		nghttp2_session_del(conn->session);
		free(conn);
		return NULL;
	}
	return conn;
}

int crid_conn_fd(const struct crid_conn *conn)
{
	return conn->fd;
}

bool crid_conn_idle(const struct crid_conn *conn)
{
	return conn->calls == NULL && conn->wlen == conn->woff;
}

bool crid_conn_serving(const struct crid_conn *conn)
{
	for (const struct crid_call *call = conn->calls; call; call = call->conn_next)
		if (call->handled)
			return true;
	return conn->owes_reply && conn->wlen > conn->woff;
}

void crid_conn_refuse_unhandled(struct crid_conn *conn, int status, const char *message)
{
	for (struct crid_call *call = conn->calls; call; call = call->conn_next) {
		if (call->handled)
			continue;
		call->dispatched = true; /* what still arrives is dropped */
		crid_call_drop_request(call);
		crid_call_finish(call, status, message);
	}
}

static int set_interest(struct crid_conn *conn, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = conn };

	if (conn->events == events || conn->epfd < 0)
		return 0;
	if (epoll_ctl(conn->epfd, EPOLL_CTL_MOD, conn->fd, &ev) < 0)
		return -errno;
	conn->events = events;
	return 0;
}

/* Sends what can be sent without blocking; keeps the rest. */
static int write_out(struct crid_conn *conn, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(conn->fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	if (len > 0) {
		uint8_t *grown;

		if (conn->woff > 0) {
			memmove(conn->wbuf, conn->wbuf + conn->woff, conn->wlen - conn->woff);
			conn->wlen -= conn->woff;
			conn->woff = 0;
		}
		grown = realloc(conn->wbuf, conn->wlen + len);
		if (!grown)
			return -ENOMEM;
		conn->wbuf = grown;
		memcpy(conn->wbuf + conn->wlen, data, len);
		conn->wlen += len;
	}
	return 0;
}

int crid_conn_flush(struct crid_conn *conn)
{
	int r;

	/* What the socket refused before goes first, alone. */
	if (conn->woff < conn->wlen) {
		size_t pending = conn->wlen - conn->woff;
		ssize_t n = send(conn->fd, conn->wbuf + conn->woff, pending, MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (n > 0)
			conn->woff += (size_t)n;
		if (conn->woff < conn->wlen)
			return set_interest(conn, EPOLLIN | EPOLLOUT);
		free(conn->wbuf);
		conn->wbuf = NULL;
		conn->wlen = conn->woff = 0;
		conn->active_ns = crid_now_ns();
	}
	for (;;) {
		const uint8_t *data;
		ssize_t len = nghttp2_session_mem_send(conn->session, &data);

		if (len < 0)
			return -EPROTO;
		if (len == 0)
			break;
		r = write_out(conn, data, (size_t)len);
		if (r < 0)
			return r;
		if (conn->wlen > conn->woff)
			return set_interest(conn, EPOLLIN | EPOLLOUT);
	}
	if (conn->wlen == conn->woff && !conn->calls)
		conn->owes_reply = false;
	if (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session))
		return -ESHUTDOWN; /* both sides are done (GOAWAY exchanged, or fatal) */
	return set_interest(conn, EPOLLIN);
}

static ssize_t pass(struct crid_conn *conn, const uint8_t *data, size_t len)
{
	ssize_t used = nghttp2_session_mem_recv(conn->session, data, len);

	return used < 0 ? used : 0;
}

/* Hands bytes to nghttp2 frame by frame, dropping one thing: RST_STREAM
 * for a stream the client never opened. RFC 9113 makes that a connection
 * error, and nghttp2 ends the connection for it, but gRPC clients that
 * cancel a call before its HEADERS leave them send exactly that under load;
 * every other call on the connection would fail with it. */
static ssize_t feed(struct crid_conn *conn, const uint8_t *data, size_t len)
{
	while (len > 0) {
		size_t n;
		uint32_t payload, stream_id;
		ssize_t r;

		if (conn->preface_left || conn->frame_left) {
			size_t *left = conn->preface_left ? &conn->preface_left : &conn->frame_left;

			n = len < *left ? len : *left;
			if ((r = pass(conn, data, n)) < 0)
				return r;
			*left -= n;
		} else if (conn->drop_left) {
			n = len < conn->drop_left ? len : conn->drop_left;
			conn->drop_left -= n;
		} else {
			n = sizeof(conn->head) - conn->head_len;
			if (n > len)
				n = len;
			memcpy(conn->head + conn->head_len, data, n);
			conn->head_len += n;
			if (conn->head_len == sizeof(conn->head)) {
				payload = (uint32_t)conn->head[0] << 16 | (uint32_t)conn->head[1] << 8 | conn->head[2];
				stream_id = ((uint32_t)conn->head[5] << 24 | (uint32_t)conn->head[6] << 16 |
					     (uint32_t)conn->head[7] << 8 | conn->head[8]) &
					    0x7fffffffu;
				conn->head_len = 0;
				if (conn->head[3] == NGHTTP2_RST_STREAM && (stream_id & 1) &&
				    (int32_t)stream_id > nghttp2_session_get_last_proc_stream_id(conn->session)) {
					conn->drop_left = payload;
				} else {
					if ((r = pass(conn, conn->head, sizeof(conn->head))) < 0)
						return r;
					conn->frame_left = payload;
				}
			}
		}
		data += n;
		len -= n;
	}
	return 0;
}

int crid_conn_on_readable(struct crid_conn *conn)
{
	uint8_t buf[32768];

	/* A bounded number of reads per wake-up keeps one busy client from
	 * starving the others. */
	for (int i = 0; i < 8; i++) {
		ssize_t n = recv(conn->fd, buf, sizeof(buf), 0);
		ssize_t used;

		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return -errno;
		conn->active_ns = crid_now_ns();
		used = feed(conn, buf, (size_t)n);
		if (used < 0) {
			/* Say why (GOAWAY, logged as it goes) when the peer speaks
			 * HTTP/2 at all. */
			if (used != NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
				if (!conn->last_error[0])
					snprintf(conn->last_error, sizeof(conn->last_error), "%s",
						 nghttp2_strerror((int)used));
				nghttp2_session_terminate_session(conn->session, NGHTTP2_PROTOCOL_ERROR);
				crid_conn_flush(conn);
			} else {
				warn_protocol(conn, "closing a connection: not an HTTP/2 client", NULL, NULL,
					      "no HTTP/2 connection preface");
			}
			return -EPROTO;
		}
	}
	return crid_conn_flush(conn);
}

int crid_conn_on_writable(struct crid_conn *conn)
{
	return crid_conn_flush(conn);
}

void crid_conn_goaway(struct crid_conn *conn)
{
	nghttp2_submit_goaway(conn->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(conn->session),
			      NGHTTP2_NO_ERROR, NULL, 0);
}

int64_t crid_conn_deadlines(struct crid_conn *conn, int64_t now_ns, bool expire)
{
	int64_t next = 0;

	for (struct crid_call *call = conn->calls, *n; call; call = n) {
		bool finished;

		n = call->conn_next;
		pthread_mutex_lock(&call->lock);
		finished = call->finished;
		pthread_mutex_unlock(&call->lock);
		if (finished)
			continue;
		/* A request that never ends holds its stream and its bytes. */
		if (!call->dispatched) {
			int64_t until = call->start_ns + crid_server_request_timeout_ns(conn->server);

			if (expire && until <= now_ns) {
				char msg[128];

				snprintf(msg, sizeof(msg), "the request did not arrive whole within %lld s",
					 (long long)(crid_server_request_timeout_ns(conn->server) / 1000000000LL));
				call->dispatched = true;
				crid_call_drop_request(call);
				crid_call_finish(call, CRID_DEADLINE_EXCEEDED, msg);
				continue;
			}
			if (!next || until < next)
				next = until;
		}
		if (!call->deadline_ns)
			continue;
		if (expire && call->deadline_ns <= now_ns)
			crid_call_abort(call, CRID_DEADLINE_EXCEEDED, "deadline exceeded");
		else if (!next || call->deadline_ns < next)
			next = call->deadline_ns;
	}
	return next;
}

void crid_conn_abort_calls(struct crid_conn *conn, int status, const char *message)
{
	for (struct crid_call *call = conn->calls; call; call = call->conn_next)
		crid_call_abort(call, status, message);
}

void crid_conn_free(struct crid_conn *conn)
{
	if (!conn)
		return;
	/* nghttp2_session_del does not report stream closes: detach here. */
	while (conn->calls) {
		struct crid_call *call = conn->calls;

		call_unlink(conn, call);
		if (!call->handled)
			crid_call_drop_request(call);
		crid_call_abort(call, CRID_UNAVAILABLE, "the connection closed");
		crid_call_unref(call);
	}
	nghttp2_session_del(conn->session);
	if (conn->fd >= 0)
		close(conn->fd);
	free(conn->wbuf);
	free(conn);
}
