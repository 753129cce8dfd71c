/* libFuzzer target: bytes a client sends on crid's socket, through the real
 * server (rpc/): the event loop in a thread, nghttp2, crid's own frame
 * filter and RFC 9113 request checks, gRPC framing, dispatch, the string
 * checks and decoding, and two handlers (a unary and a streaming one). Each
 * input is one connection: written, half-closed, read until crid closes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "rpc/methods.h"
#include "rpc/server.h"
#include "runtime/v1/api.pb-c.h"

static char dir[] = "/tmp/crid-fuzz-grpc-XXXXXX";
static char socket_path[sizeof(dir) + 16];
static struct crid_server *server;

static int version(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	Runtime__V1__VersionResponse resp = RUNTIME__V1__VERSION_RESPONSE__INIT;

	resp.version = (char *)"0.1.0";
	resp.runtime_name = (char *)"crid";
	return crid_call_send(call, &resp.base, err);
}

static int list_images(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	Runtime__V1__StreamImagesResponse resp = RUNTIME__V1__STREAM_IMAGES_RESPONSE__INIT;
	int r = crid_call_send(call, &resp.base, err);

	if (r == 0)
		r = crid_call_send(call, &resp.base, err);
	return r;
}

/* The socket and its lock go with the directory. */
static void remove_dir(void)
{
	struct crid_err err;

	crid_rmtree_at(AT_FDCWD, dir, &err);
}

static void *serve(void *arg)
{
	struct crid_err err;

	crid_server_run(server, &err);
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct crid_rpc_handler_entry rt[] = { { "Version", version } };
	static const struct crid_rpc_handler_entry img[] = { { "StreamImages", list_images } };
	struct crid_server_options opts = {
		.max_recv_bytes = 1 << 20,
		.max_send_bytes = 1 << 20,
		.max_pending_bytes = 4 << 20,
		.request_timeout_s = 30,
		.max_connections = 64,
		.preface_timeout_s = 10,
		.idle_timeout_s = 60,
		.worker_threads = 4,
		.shutdown_grace_s = 1,
	};
	struct crid_rpc_methods *methods;
	struct crid_err err;
	sigset_t sigs;
	pthread_t thread;

	crid_log_setup(CRID_LOG_ERROR, CRID_LOG_LOGFMT);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir)) {
		perror("crid fuzz_grpc: temporary directory");
		exit(1);
	}
	snprintf(socket_path, sizeof(socket_path), "%s/crid.sock", dir);
	atexit(remove_dir);
	opts.socket_path = socket_path;
	if (crid_rpc_methods_new(&methods, &err) < 0 ||
	    crid_rpc_methods_register_all(methods, "RuntimeService", rt, 1, NULL, &err) < 0 ||
	    crid_rpc_methods_register_all(methods, "ImageService", img, 1, NULL, &err) < 0 ||
	    crid_server_new(&server, &opts, methods, &err) < 0) {
		fprintf(stderr, "crid fuzz_grpc: %s\n", err.msg);
		exit(1);
	}
	if (pthread_create(&thread, NULL, serve, NULL) != 0)
		exit(1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t off = 0;

	if (fd < 0)
		abort();
	memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		abort();
	if (size == 0)
		shutdown(fd, SHUT_WR);
	/* Written while the answers are read, so neither side blocks. */
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (off < size ? POLLOUT : 0) };
		char buf[65536];

		if (poll(&p, 1, 2000) <= 0)
			break; /* crid keeps the connection: a call still waits, fine */
		if ((p.revents & POLLOUT) && off < size) {
			ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				off = size;
			if (off == size)
				shutdown(fd, SHUT_WR);
			continue;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n == 0 || (n < 0 && errno != EAGAIN))
				break;
		}
	}
	close(fd);
	return 0;
}
