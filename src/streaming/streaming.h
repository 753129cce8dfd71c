/* The streaming server behind Exec, Attach and PortForward: an HTTP/1.1
 * listener with threads of its own (never crid's gRPC loop), single-use
 * tokens naming what each URL may do, and the sessions that relay a
 * container's stdio or a pod's ports over SPDY/3.1 or WebSocket. It never
 * looks up pods or containers: a request carries all a session needs. */
#ifndef CRID_STREAMING_STREAMING_H
#define CRID_STREAMING_STREAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "config/config.h"

enum crid_stream_kind {
	CRID_STREAM_EXEC,
	CRID_STREAM_ATTACH,
	CRID_STREAM_PORTFORWARD,
};

/* What one token allows. Strings are malloc'd and owned. */
struct crid_stream_request {
	enum crid_stream_kind kind;
	char id[65]; /* the container's (exec, attach) or the pod's (port-forward) */
	bool tty, in, out, err;

	/* exec: "<runtime_path> --root <runtime_root> exec --process ..." */
	char *runtime_path;
	char *runtime_root;
	char **runtime_args; /* global flags, NULL-terminated; NULL: none */
	char *process;	/* the OCI process object (JSON): args, env, terminal */
	char *cmd_text; /* "[sh -c exit 3]", for the status message */

	/* attach: crid-shim's state directory, where its attach socket is */
	char *attach_socket;

	/* port-forward: the pod's pinned network namespace, NULL for the host's */
	char *netns;
	uint16_t *ports; /* the ports the request named; none: any */
	size_t n_ports;
};

void crid_stream_request_free(struct crid_stream_request *r);

struct crid_streaming;

/* Binds cfg->stream_address (TLS with cfg->stream_tls_cert/key), makes
 * <run_root>/streams for its temporary files, and starts serving. */
int crid_streaming_new(struct crid_streaming **out, const struct crid_config *cfg, struct crid_err *err);

/* Hands out a token for req and the URL to give the client
 * ("http://127.0.0.1:PORT/exec/TOKEN", malloc'd). req is taken on success.
 * RESOURCE_EXHAUSTED when too many tokens are outstanding. */
int crid_streaming_register(struct crid_streaming *s, struct crid_stream_request *req, char **url,
			    struct crid_err *err);

/* Stops accepting, ends every session (an exec's processes are killed) and
 * waits for their threads. */
void crid_streaming_free(struct crid_streaming *s);

#endif
