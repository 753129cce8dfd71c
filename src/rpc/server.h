/* The gRPC server: the Unix socket, one epoll loop for every connection, the
 * worker pool that runs handlers, and an orderly shutdown on SIGTERM or
 * SIGINT (stop accepting, let calls in flight finish, then return). */
#ifndef CRID_RPC_SERVER_H
#define CRID_RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "rpc/methods.h"

struct crid_server;

struct crid_server_options {
	const char *socket_path;
	size_t max_recv_bytes;
	size_t max_send_bytes;
	size_t max_pending_bytes;   /* request bytes buffered by all unfinished calls */
	unsigned request_timeout_s; /* a request must arrive whole within this */
	unsigned max_connections;   /* then the longest idle one makes room */
	unsigned preface_timeout_s; /* a connection must begin HTTP/2 within this */
	unsigned idle_timeout_s;    /* a connection without calls is closed after this */
	unsigned worker_threads;
	unsigned shutdown_grace_s;
	/* Told of every call's end (metrics): service and method as in the
	 * CRI, NULL for a path that is none of its methods. Any thread. */
	void (*on_call_end)(void *data, const char *service, const char *method, int status, int64_t dur_ns);
	void *on_call_end_data;
};

/* Binds the socket (creating its directory, replacing a stale socket, and
 * refusing when another crid holds it). SIGTERM, SIGINT and SIGHUP must be
 * blocked in every thread before this is called. */
int crid_server_new(struct crid_server **out, const struct crid_server_options *opts,
		    const struct crid_rpc_methods *methods, struct crid_err *err);

/* fn(data) runs on the loop once shutdown begins, to end calls that would
 * otherwise stay open (event streams). */
void crid_server_on_shutdown(struct crid_server *s, void (*fn)(void *data), void *data);

/* Serves until a shutdown signal, then drains. */
int crid_server_run(struct crid_server *s, struct crid_err *err);

/* Closes connections, joins the workers, removes the socket. */
void crid_server_free(struct crid_server *s);

#endif
