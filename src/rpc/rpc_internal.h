/* Types shared by the files of the rpc component only: a call's full state,
 * a connection, and the server's hand-off queue. Nothing outside src/rpc
 * includes this. */
#ifndef CRID_RPC_INTERNAL_H
#define CRID_RPC_INTERNAL_H

#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc/call.h"
#include "rpc/methods.h"
#include "rpc/request_headers.h"

struct crid_server;

/* What an epoll event's data.ptr points at starts with one of these. */
enum crid_poll_kind {
	CRID_POLL_LISTENER = 1,
	CRID_POLL_NOTIFY,
	CRID_POLL_SIGNAL,
	CRID_POLL_TIMER,
	CRID_POLL_CONN,
};

/* One client connection: an nghttp2 server session over a socket. */
struct crid_conn {
	int kind; /* CRID_POLL_CONN */
	int fd;
	int epfd;
	uint32_t events; /* epoll interest now registered */
	struct crid_server *server;
	nghttp2_session *session;
	uint8_t *wbuf; /* bytes nghttp2 produced that the socket did not take yet */
	size_t wlen, woff;
	struct crid_call *calls; /* open streams */
	struct crid_conn *prev, *next;
	bool closed; /* waits in the server's list of connections to free */
	/* Incoming frame boundaries (conn.c, feed()). */
	size_t preface_left; /* client magic still to pass through */
	size_t frame_left;   /* payload of the current frame to pass through */
	size_t drop_left;    /* payload of a dropped frame to skip */
	uint8_t head[9];     /* a frame header being gathered */
	size_t head_len;
	char last_error[128]; /* nghttp2's account of the last error it found */
	/* Housekeeping (server.c): connections that never speak, or go
	 * quiet, are closed; the longest idle makes room for a new one. */
	int64_t created_ns, active_ns; /* CLOCK_MONOTONIC */
	bool got_settings;	       /* the client's preface is complete */
	bool owes_reply;	       /* a handled call's reply may still be unsent */
};

struct crid_call {
	atomic_int refs;
	struct crid_server *server;
	int64_t start_ns;    /* CLOCK_MONOTONIC */
	int64_t deadline_ns; /* 0: none */
	atomic_bool cancelled;

	/* Owned by the loop thread. */
	struct crid_conn *conn; /* NULL once the stream is gone */
	int32_t stream_id;
	struct crid_call *conn_prev, *conn_next;
	bool headers_submitted;
	bool dispatched;
	char *path;
	const struct crid_rpc_method *method;
	const char *api_version;
	bool method_post;
	bool content_type_grpc;
	char *encoding; /* grpc-encoding, NULL when absent */
	bool bad_timeout;
	struct crid_request_headers hdrs; /* RFC 9113 checks; why the stream was refused */
	uint8_t *req;
	size_t req_len, req_cap;
	size_t req_counted; /* of req_cap, in the server's pending bytes */
	bool handled;	    /* handed to a worker: req is the handler's */
	bool on_loop;	    /* its handler runs on the loop right now */

	/* On the server's notify queue; guarded by the server's queue lock. */
	bool queued;
	struct crid_call *queue_next;

	/* The way back; guarded by lock. */
	pthread_mutex_t lock;
	uint8_t *out;
	size_t out_len, out_off;
	bool sent_any;
	bool finished;
	int status;
	char *status_msg;
	int http_status;
	void (*cancel_fn)(struct crid_call *call, void *data);
	void *cancel_data;
	void (*drain_fn)(struct crid_call *call, void *data);
	void *drain_data;
};

/* Created by the loop for a new stream, with one reference for the loop. */
struct crid_call *crid_call_new(struct crid_server *server, struct crid_conn *conn, int32_t stream_id);

/* The loop learned the stream ended or timed out, or the server is going:
 * cancels the call if it is still open (runs its cancel hook), then finishes
 * it with status and message. */
void crid_call_abort(struct crid_call *call, int status, const char *message);

/* Server side: the call has new output or finished; the loop must look. */
void crid_server_notify(struct crid_server *server, struct crid_call *call);
size_t crid_server_max_send(const struct crid_server *server);
/* A call ended with status: counted by the server's observer, if any. */
void crid_server_observe_end(struct crid_server *server, const struct crid_call *call, int status);

int64_t crid_now_ns(void);

/* The bytes of requests not yet taken by a handler, bounded for the whole
 * server: false when n more would pass the bound. Thread-safe. */
bool crid_server_reserve_request(struct crid_server *server, size_t n);
void crid_server_release_request(struct crid_server *server, size_t n);
size_t crid_server_max_pending(const struct crid_server *server);
/* When the bound is reached: refuses the oldest request still arriving,
 * other than keep, freeing its bytes. False when there is none. Loop
 * thread only. */
bool crid_server_evict_request(struct crid_server *server, const struct crid_call *keep);
/* How long a request may take to arrive whole. */
int64_t crid_server_request_timeout_ns(const struct crid_server *server);
/* Frees the request bytes and returns them to the server's bound. Called
 * by the loop before a call is handed to a handler, by the handler after. */
void crid_call_drop_request(struct crid_call *call);

/* Connection side, all on the loop thread. */
struct crid_conn *crid_conn_new(struct crid_server *server, int fd);
/* Reads and writes what the socket allows; returns < 0 when the connection
 * is finished with and must be freed. */
int crid_conn_on_readable(struct crid_conn *conn);
int crid_conn_on_writable(struct crid_conn *conn);
int crid_conn_flush(struct crid_conn *conn);
void crid_conn_free(struct crid_conn *conn);
/* Puts a call's new output or its end on the wire. */
void crid_conn_push_call(struct crid_conn *conn, struct crid_call *call);
/* GOAWAY: no new streams; those under way finish. */
void crid_conn_goaway(struct crid_conn *conn);
int crid_conn_fd(const struct crid_conn *conn);
bool crid_conn_idle(const struct crid_conn *conn);
/* Whether a handler runs for one of its calls, or a handled call's reply
 * is still being written: what shutdown waits for. */
bool crid_conn_serving(const struct crid_conn *conn);
/* Shutdown: requests still arriving are refused, not waited for. */
void crid_conn_refuse_unhandled(struct crid_conn *conn, int status, const char *message);
/* Earliest deadline among the connection's calls still open, 0 when none;
 * with expire set, aborts those already past now_ns. */
int64_t crid_conn_deadlines(struct crid_conn *conn, int64_t now_ns, bool expire);
void crid_conn_abort_calls(struct crid_conn *conn, int status, const char *message);

/* Checks a complete request and hands it to its method's handler on a
 * worker (dispatch.c). */
void crid_server_dispatch(struct crid_server *server, struct crid_call *call);
size_t crid_server_max_recv(const struct crid_server *server);
const struct crid_rpc_methods *crid_server_methods(const struct crid_server *server);
bool crid_server_stopping(const struct crid_server *server);
/* Rate limit of the warnings a client's protocol errors cause; *suppressed
 * as in crid_ratelimit_allow. Loop thread only. */
bool crid_server_warn_allowed(struct crid_server *server, unsigned *suppressed);
int crid_server_run_handler(struct crid_server *server, void (*fn)(void *), void *arg, struct crid_err *err);

#endif
