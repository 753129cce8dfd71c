/* Private to src/streaming: one connection's session after the upgrade
 * (session.c: framing, channels, the poll loop) and the applications that
 * run on it: stdio (exec and attach, stdio.c with exec.c and attach.c) and
 * port-forward (portforward.c). */
#ifndef CRID_STREAMING_STREAM_INTERNAL_H
#define CRID_STREAMING_STREAM_INTERNAL_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "common/error.h"
#include "streaming/buf.h"
#include "streaming/http.h"
#include "streaming/spdy.h"
#include "streaming/streaming.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

/* Output queued to the client past which local sources are not read. */
#define CRID_SESS_TX_HIGH (1024 * 1024)
/* Input queued toward a local fd past which the client is not read. */
#define CRID_SESS_RX_HIGH (512 * 1024)
/* Largest piece read from a local fd and sent as one frame. */
#define CRID_SESS_CHUNK (32 * 1024)
/* Streams the client must open (SPDY) come within this. */
#define CRID_SESS_STREAM_WAIT_NS (30 * NS_PER_S)

enum crid_sess_proto {
	CRID_PROTO_SPDY,
	CRID_PROTO_WS,
	CRID_PROTO_WS_SPDY, /* SPDY/3.1 frames carried in WebSocket binary messages */
};

/* One logical stream to the client: a SPDY stream or a WebSocket channel. */
struct crid_chan {
	bool open;
	uint32_t sid; /* SPDY */
	int ws;	      /* WebSocket channel number */
	bool fin_sent, fin_recv;
	uint32_t unacked; /* SPDY bytes received since the last WINDOW_UPDATE */
};

struct crid_sess;

struct crid_sess_app {
	/* SPDY: a stream the client opened; returns the channel it binds, or
	 * NULL with *status (an RST_STREAM code). */
	struct crid_chan *(*stream)(struct crid_sess *s, const struct crid_spdy_nv *nv, size_t n_nv, uint32_t sid,
				    uint32_t *status);
	/* SPDY: the channel of a stream, NULL when none. */
	struct crid_chan *(*find)(struct crid_sess *s, uint32_t sid);
	/* WebSocket: the channel numbered n, NULL when there is none. */
	struct crid_chan *(*ws_chan)(struct crid_sess *s, unsigned n);
	void (*data)(struct crid_sess *s, struct crid_chan *c, const uint8_t *d, size_t n);
	/* The client will send no more on c (FIN, RST_STREAM, v5 close). */
	void (*fin)(struct crid_sess *s, struct crid_chan *c, bool reset);
	/* Adds the app's fds; may lower *wake_ns (CLOCK_MONOTONIC). */
	int (*poll_fill)(struct crid_sess *s, struct pollfd *p, int max, int64_t *wake_ns);
	void (*poll_done)(struct crid_sess *s, const struct pollfd *p, int n);
	/* Too much is waiting for a local fd: stop reading the client. */
	bool (*input_stalled)(struct crid_sess *s);
	/* All said: the session flushes and closes. */
	bool (*done)(struct crid_sess *s);
	/* The client went away or crid stops: end what runs, at once. */
	void (*end)(struct crid_sess *s);
	void (*free)(struct crid_sess *s);
};

struct crid_sess {
	struct crid_stream_request *req;
	int fd;
	SSL *ssl;
	bool ssl_wants_write;
	int stop_fd; /* readable once the server stops */
	enum crid_sess_proto proto;
	int version;	 /* exec/attach: the channel protocol, 1-5 */
	bool base64;	 /* WebSocket base64.channel.k8s.io */
	const char *tmp_dir; /* <run_root>/streams */
	struct crid_buf rx, tx;
	struct crid_buf spdy_rx; /* WS_SPDY: the SPDY bytes carried so far */
	struct crid_buf spdy_tx;
	struct crid_buf ws_msg;	 /* a fragmented message being gathered */
	uint8_t ws_msg_op;
	struct crid_spdy_zlib *z;
	uint32_t last_sid;
	bool client_eof, broken, closing;
	int64_t idle_ns, last_activity_ns;
	const struct crid_sess_app *app;
	void *app_data;
};

/* Queues data on c (framed for the protocol). -ENOMEM, or -EPIPE when c
 * is not open or already finished. */
int crid_sess_send(struct crid_sess *s, struct crid_chan *c, const void *d, size_t n);
/* No more data on c. */
int crid_sess_fin(struct crid_sess *s, struct crid_chan *c);
void crid_sess_reset(struct crid_sess *s, struct crid_chan *c, uint32_t status);
bool crid_sess_tx_full(const struct crid_sess *s);
/* SPDY: answers a client stream (SYN_REPLY). */
int crid_sess_reply(struct crid_sess *s, struct crid_chan *c);

/* Runs the session until it ends; frees nothing of s. */
void crid_sess_run(struct crid_sess *s);

/* The value of a SPDY header of name, NULL when none. */
const char *crid_spdy_nv_get(const struct crid_spdy_nv *nv, size_t n, const char *name);

/* Applications: set s->app and s->app_data, or fail with an HTTP answer
 * already decided (the caller answers 500). */
int crid_stdio_app_init(struct crid_sess *s, struct crid_err *err);
int crid_portforward_app_init(struct crid_sess *s, const struct crid_http_request *http, struct crid_err *err);

/* ---- exec.c: the runtime's "exec" for a session ---- */

struct crid_exec_proc {
	pid_t pid;	   /* the runtime */
	int pidfd;
	char pid_path[256]; /* the exec'd process's pid, written by the runtime */
	char process_path[256];
	int in_fd, out_fd, err_fd; /* ours: stdin write end, stdout/stderr read ends; a pty master twice */
	int rt_err_fd;		   /* with a TTY: the runtime's own stderr */
	bool exited;
	int status;
};

int crid_exec_start(const struct crid_stream_request *req, const char *tmp_dir, struct crid_exec_proc *p,
		    struct crid_err *err);
/* Reaps the runtime if it exited (pidfd readable). */
void crid_exec_reap(struct crid_exec_proc *p);
/* Kills the runtime and the process tree it started, waits, reaps. */
void crid_exec_kill(struct crid_exec_proc *p);
void crid_exec_cleanup(struct crid_exec_proc *p);

/* ---- attach.c: crid-shim's attach socket ---- */

/* Connects to the attach socket in crid-shim's state directory dir. */
int crid_attach_connect(const char *dir, int *fd, struct crid_err *err);

#endif
