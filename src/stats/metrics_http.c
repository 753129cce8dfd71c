/* The /metrics endpoint of metrics_http.h: HTTP/1.1 GET only, one request
 * per connection, answered then closed. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/stoppable_thread.h"
#include "stats/metrics_http.h"

#define REQUEST_MAX 8192
#define IO_TIMEOUT_MS 5000

struct crid_metrics_http {
	struct crid_metrics *metrics;
	int listen_fd;
	struct crid_stoppable_thread thread;
};

int crid_metrics_address_split(const char *address, char *host, size_t host_size, char *port, size_t port_size)
{
	const char *colon, *h = address;
	size_t hlen;
	char *end;
	long p;

	if (address[0] == '[') {
		const char *close = strchr(address, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = address + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(address, ':');
		if (!colon || memchr(address, ':', (size_t)(colon - address)))
			return -EINVAL;
		hlen = (size_t)(colon - address);
	}
	if (hlen >= host_size || strlen(colon + 1) >= port_size || !colon[1])
		return -EINVAL;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (*end || errno || p < 1 || p > 65535 || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, port_size, "%ld", p);
	return 0;
}

/* Waits until fd can do events, or the connection's deadline passes. */
static bool wait_fd(int fd, short events, int64_t deadline)
{
	int64_t left = (deadline - crid_monotonic_ns()) / 1000000;
	struct pollfd p = { .fd = fd, .events = events };

	if (left <= 0)
		return false;
	return poll(&p, 1, (int)left) == 1 && (p.revents & events);
}

static void send_all(int fd, const char *data, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n;

		if (!wait_fd(fd, POLLOUT, deadline))
			return;
		n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

static void reply(int fd, const char *status, const char *type, const char *body, size_t len, bool head,
		  int64_t deadline)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
			 type, len);

	send_all(fd, hdr, (size_t)n, deadline);
	if (!head)
		send_all(fd, body, len, deadline);
}

static void serve_one(struct crid_metrics_http *h, int fd)
{
	int64_t deadline = crid_monotonic_ns() + (int64_t)IO_TIMEOUT_MS * 1000000;
	char req[REQUEST_MAX + 1];
	size_t len = 0;
	char *sp1, *sp2, *q;
	bool head;

	/* The whole head, within the size and time bounds. */
	while (!memmem(req, len, "\r\n\r\n", 4)) {
		ssize_t n;

		if (len == REQUEST_MAX) {
			reply(fd, "431 Request Header Fields Too Large", "text/plain", "", 0, false, deadline);
			return;
		}
		if (!wait_fd(fd, POLLIN, deadline))
			return;
		n = recv(fd, req + len, REQUEST_MAX - len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return;
		len += (size_t)n;
	}
	req[len] = '\0';
	sp1 = strchr(req, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		reply(fd, "400 Bad Request", "text/plain", "bad request\n", 12, false, deadline);
		return;
	}
	*sp1 = *sp2 = '\0';
	head = strcmp(req, "HEAD") == 0;
	if (strcmp(req, "GET") != 0 && !head) {
		reply(fd, "405 Method Not Allowed", "text/plain", "only GET\n", 9, false, deadline);
		return;
	}
	if ((q = strchr(sp1 + 1, '?')))
		*q = '\0';
	if (strcmp(sp1 + 1, "/metrics") != 0) {
		reply(fd, "404 Not Found", "text/plain", "not found: try /metrics\n", 24, head, deadline);
		return;
	}
	{
		_cleanup_free_ char *text = NULL;
		struct crid_err err;
		size_t tlen;

		if (crid_metrics_render(h->metrics, &text, &tlen, &err) < 0) {
			reply(fd, "500 Internal Server Error", "text/plain", err.msg, strlen(err.msg), head, deadline);
			return;
		}
		reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", text, tlen, head, deadline);
	}
}

static void *http_main(void *arg)
{
	struct crid_metrics_http *h = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = h->listen_fd, .events = POLLIN },
				       { .fd = h->thread.stop_fd, .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(100000); /* out of fds: do not spin */
			continue;
		}
		serve_one(h, fd);
		close(fd);
	}
	return NULL;
}

int crid_metrics_http_start(struct crid_metrics_http **out, const char *address, struct crid_metrics *m,
			    struct crid_err *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	struct crid_metrics_http *h;
	char host[256], port[8];
	int one = 1, r;

	if (crid_metrics_address_split(address, host, sizeof(host), port, sizeof(port)) < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "metrics_address \"%s\" is not host:port", address);
	r = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (r != 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "metrics_address %s: %s", address, gai_strerror(r));
	h = calloc(1, sizeof(*h));
	if (!h) {
		freeaddrinfo(ai);
		return crid_err_nomem(err, "metrics endpoint");
	}
	h->metrics = m;
	crid_stoppable_thread_init(&h->thread);
	h->listen_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->listen_fd >= 0)
		setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (h->listen_fd < 0 || bind(h->listen_fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(h->listen_fd, 16) < 0) {
		r = errno;
		freeaddrinfo(ai);
		if (h->listen_fd >= 0)
			close(h->listen_fd);
		free(h);
		return crid_err_set(err, CRID_INTERNAL, r, "listen for metrics on %s", address);
	}
	freeaddrinfo(ai);
	if ((r = crid_stoppable_thread_start(&h->thread, http_main, h, "metrics endpoint", err)) < 0) {
		crid_stoppable_thread_stop(&h->thread, "metrics endpoint");
		close(h->listen_fd);
		free(h);
		return r;
	}
	log_info("serving metrics", "address", address);
	*out = h;
	return 0;
}

void crid_metrics_http_stop(struct crid_metrics_http *h)
{
	if (!h)
		return;
	crid_stoppable_thread_stop(&h->thread, "metrics endpoint");
	close(h->listen_fd);
	free(h);
}
