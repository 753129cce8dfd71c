/* The port-forward application of a streaming session: each forwarded
 * connection is a pair of streams, data and error. Over SPDY (and SPDY
 * tunnelled in WebSocket) the client opens the pair for every connection
 * it accepts, naming the port and a request ID; over the WebSocket
 * channel protocols the ports come from the URL (?port=80&port=8080) and
 * channels 2i and 2i+1 carry the i-th, each opened with its port number
 * in two little-endian bytes. Each connection is dialed on 127.0.0.1
 * inside the pod's network namespace, which this session's thread (and
 * only it) enters. A refused port is told on its error stream; the
 * session goes on. */
#include "streaming/stream_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"

#define MAX_PAIRS 128

struct pair {
	bool used, closed;
	char request_id[64];
	uint16_t port;
	struct crid_chan data, error;
	int fd;
	bool connecting;
	struct crid_buf out; /* toward the target */
	bool client_fin;     /* the client sends no more */
	bool target_eof;
	bool shut_wr;
};

struct pf_app {
	struct pair pairs[MAX_PAIRS];
	size_t n_ws; /* WebSocket: the pairs made from the URL */
	bool websocket;
};

static struct pf_app *app_of(struct crid_sess *s)
{
	return s->app_data;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static bool port_allowed(const struct crid_stream_request *req, unsigned port)
{
	if (port == 0 || port > 65535)
		return false;
	if (req->n_ports == 0)
		return true;
	for (size_t i = 0; i < req->n_ports; i++) {
		if (req->ports[i] == port)
			return true;
	}
	return false;
}

static void pair_close(struct crid_sess *s, struct pair *p)
{
	if (p->closed)
		return;
	p->closed = true;
	close_fd(&p->fd);
	crid_buf_free(&p->out);
	crid_sess_fin(s, &p->data);
	crid_sess_fin(s, &p->error);
}

static void pair_fail(struct crid_sess *s, struct pair *p, const char *why)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "error forwarding port %u to pod %s: %s", p->port, s->req->id, why);
	log_debug("streaming: port-forward connection failed", "pod", s->req->id, "error", msg);
	crid_sess_send(s, &p->error, msg, strlen(msg));
	pair_close(s, p);
}

static void dial(struct crid_sess *s, struct pair *p)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(p->port) };

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->fd < 0) {
		pair_fail(s, p, strerror(errno));
		return;
	}
	if (connect(p->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno == EINPROGRESS) {
			p->connecting = true;
			return;
		}
		char why[128];

		snprintf(why, sizeof(why), "dial 127.0.0.1:%u: %s", p->port, strerror(errno));
		pair_fail(s, p, why);
	}
}

static struct pair *new_pair(struct pf_app *a)
{
	for (size_t i = 0; i < MAX_PAIRS; i++) {
		struct pair *p = &a->pairs[i];

		if (!p->used || p->closed) {
			crid_buf_free(&p->out);
			memset(p, 0, sizeof(*p));
			p->used = true;
			p->fd = -1;
			return p;
		}
	}
	return NULL;
}

/* ---- the client's side ---- */

static struct crid_chan *on_stream(struct crid_sess *s, const struct crid_spdy_nv *nv, size_t n_nv, uint32_t sid,
				   uint32_t *status)
{
	struct pf_app *a = app_of(s);
	const char *type = crid_spdy_nv_get(nv, n_nv, "streamtype");
	const char *port_s = crid_spdy_nv_get(nv, n_nv, "port");
	const char *rid = crid_spdy_nv_get(nv, n_nv, "requestid");
	struct pair *p = NULL;
	struct crid_chan *c;
	bool is_data;
	char *end;
	long port;

	if (!type || (strcmp(type, "data") != 0 && strcmp(type, "error") != 0) || !port_s) {
		*status = CRID_SPDY_REFUSED_STREAM;
		return NULL;
	}
	is_data = strcmp(type, "data") == 0;
	errno = 0;
	port = strtol(port_s, &end, 10);
	if (errno || end == port_s || *end || port <= 0 || port > 65535) {
		*status = CRID_SPDY_REFUSED_STREAM;
		return NULL;
	}
	if (!rid)
		rid = port_s; /* clients before request IDs: one connection per port at a time */
	for (size_t i = 0; i < MAX_PAIRS && !p; i++) {
		struct pair *q = &a->pairs[i];

		if (q->used && !q->closed && q->port == port && strcmp(q->request_id, rid) == 0 &&
		    !(is_data ? q->data.open : q->error.open))
			p = q;
	}
	if (!p) {
		p = new_pair(a);
		if (!p) {
			*status = CRID_SPDY_REFUSED_STREAM;
			return NULL;
		}
		p->port = (uint16_t)port;
		snprintf(p->request_id, sizeof(p->request_id), "%s", rid);
	}
	c = is_data ? &p->data : &p->error;
	c->open = true;
	c->sid = sid;
	if (crid_sess_reply(s, c) < 0)
		return NULL;
	if (p->data.open && p->error.open) {
		if (!port_allowed(s->req, p->port))
			pair_fail(s, p, "the port is not one the PortForward request named");
		else
			dial(s, p);
	}
	return c;
}

static struct crid_chan *find(struct crid_sess *s, uint32_t sid)
{
	struct pf_app *a = app_of(s);

	for (size_t i = 0; i < MAX_PAIRS; i++) {
		struct pair *p = &a->pairs[i];

		if (!p->used)
			continue;
		if (p->data.open && p->data.sid == sid)
			return &p->data;
		if (p->error.open && p->error.sid == sid)
			return &p->error;
	}
	return NULL;
}

static struct crid_chan *ws_chan(struct crid_sess *s, unsigned n)
{
	struct pf_app *a = app_of(s);

	if (n / 2 >= a->n_ws)
		return NULL;
	return n % 2 ? &a->pairs[n / 2].error : &a->pairs[n / 2].data;
}

static struct pair *pair_of(struct pf_app *a, struct crid_chan *c, bool *is_data)
{
	for (size_t i = 0; i < MAX_PAIRS; i++) {
		if (c == &a->pairs[i].data || c == &a->pairs[i].error) {
			*is_data = c == &a->pairs[i].data;
			return &a->pairs[i];
		}
	}
	return NULL;
}

static void on_data(struct crid_sess *s, struct crid_chan *c, const uint8_t *d, size_t n)
{
	bool is_data;
	struct pair *p = pair_of(app_of(s), c, &is_data);

	if (!p || !is_data || p->closed || p->client_fin)
		return;
	if (crid_buf_add(&p->out, d, n) < 0)
		pair_fail(s, p, "out of memory");
}

static void on_fin(struct crid_sess *s, struct crid_chan *c, bool reset)
{
	bool is_data;
	struct pair *p = pair_of(app_of(s), c, &is_data);

	if (!p)
		return;
	if (reset) {
		pair_close(s, p);
		return;
	}
	if (is_data)
		p->client_fin = true;
}

/* ---- the targets ---- */

static int poll_fill(struct crid_sess *s, struct pollfd *pfd, int max, int64_t *wake)
{
	struct pf_app *a = app_of(s);
	bool room = !crid_sess_tx_full(s);
	int n = 0;

	for (size_t i = 0; i < MAX_PAIRS && n < max; i++) {
		struct pair *p = &a->pairs[i];
		short ev;

		if (!p->used || p->closed || p->fd < 0)
			continue;
		ev = p->connecting ? POLLOUT
				   : (short)((room && !p->target_eof ? POLLIN : 0) | (p->out.len > 0 ? POLLOUT : 0));
		pfd[n++] = (struct pollfd){ .fd = ev ? p->fd : -1, .events = ev };
	}
	return n;
}

static void pair_io(struct crid_sess *s, struct pair *p, short revents)
{
	char buf[CRID_SESS_CHUNK];

	if (p->connecting) {
		int e = 0;
		socklen_t len = sizeof(e);

		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			e = errno;
		if (e != 0) {
			char why[128];

			snprintf(why, sizeof(why), "dial 127.0.0.1:%u: %s", p->port, strerror(e));
			pair_fail(s, p, why);
			return;
		}
		p->connecting = false;
		return;
	}
	if (revents & POLLOUT && p->out.len > 0) {
		ssize_t k = send(p->fd, crid_buf_head(&p->out), p->out.len, MSG_NOSIGNAL);

		if (k > 0)
			crid_buf_consume(&p->out, (size_t)k);
		else if (k < 0 && errno != EAGAIN && errno != EINTR) {
			pair_close(s, p);
			return;
		}
	}
	if (revents & (POLLIN | POLLHUP | POLLERR) && !p->target_eof) {
		ssize_t k = recv(p->fd, buf, sizeof(buf), 0);

		if (k > 0) {
			crid_sess_send(s, &p->data, buf, (size_t)k);
		} else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
			p->target_eof = true;
			crid_sess_fin(s, &p->data);
		}
	}
}

static void settle(struct crid_sess *s, struct pair *p)
{
	if (p->closed || p->fd < 0 || p->connecting)
		return;
	if (p->client_fin && p->out.len == 0 && !p->shut_wr) {
		shutdown(p->fd, SHUT_WR);
		p->shut_wr = true;
	}
	/* Over the WebSocket channels the client cannot say it is done
	 * sending: the target's end is the connection's. */
	if (p->target_eof && (p->shut_wr || (app_of(s)->websocket && p->out.len == 0)))
		pair_close(s, p);
}

static void poll_done(struct crid_sess *s, const struct pollfd *pfd, int n)
{
	struct pf_app *a = app_of(s);
	int k = 0;

	for (size_t i = 0; i < MAX_PAIRS && k < n; i++) {
		struct pair *p = &a->pairs[i];

		if (!p->used || p->closed || p->fd < 0)
			continue;
		if (pfd[k].fd >= 0 && pfd[k].revents)
			pair_io(s, p, pfd[k].revents);
		k++;
	}
	for (size_t i = 0; i < MAX_PAIRS; i++) {
		if (a->pairs[i].used)
			settle(s, &a->pairs[i]);
	}
}

static bool input_stalled(struct crid_sess *s)
{
	struct pf_app *a = app_of(s);

	for (size_t i = 0; i < MAX_PAIRS; i++) {
		if (a->pairs[i].used && !a->pairs[i].closed && a->pairs[i].out.len >= CRID_SESS_RX_HIGH)
			return true;
	}
	return false;
}

/* SPDY sessions end when the client closes; WebSocket ones when every
 * connection of the URL is done. */
static bool done(struct crid_sess *s)
{
	struct pf_app *a = app_of(s);

	for (size_t i = 0; i < MAX_PAIRS; i++) {
		if (a->pairs[i].used && !a->pairs[i].closed)
			settle(s, &a->pairs[i]);
	}
	if (!a->websocket)
		return false;
	for (size_t i = 0; i < a->n_ws; i++) {
		if (!a->pairs[i].closed)
			return false;
	}
	return true;
}

static void end(struct crid_sess *s)
{
	struct pf_app *a = app_of(s);

	for (size_t i = 0; i < MAX_PAIRS; i++)
		close_fd(&a->pairs[i].fd);
}

static void app_free(struct crid_sess *s)
{
	struct pf_app *a = app_of(s);

	if (!a)
		return;
	for (size_t i = 0; i < MAX_PAIRS; i++) {
		close_fd(&a->pairs[i].fd);
		crid_buf_free(&a->pairs[i].out);
	}
	free(a);
	s->app_data = NULL;
}

static const struct crid_sess_app pf_app = {
	.stream = on_stream,
	.find = find,
	.ws_chan = ws_chan,
	.data = on_data,
	.fin = on_fin,
	.poll_fill = poll_fill,
	.poll_done = poll_done,
	.input_stalled = input_stalled,
	.done = done,
	.end = end,
	.free = app_free,
};

struct port_list {
	uint16_t ports[MAX_PAIRS];
	size_t n;
	bool bad;
};

static bool add_ports(const char *value, void *ctx)
{
	struct port_list *l = ctx;

	for (const char *p = value; *p;) {
		char *end;
		long v;

		errno = 0;
		v = strtol(p, &end, 10);
		if (errno || end == p || v <= 0 || v > 65535 || (*end && *end != ',') || l->n == MAX_PAIRS) {
			l->bad = true;
			return false;
		}
		l->ports[l->n++] = (uint16_t)v;
		p = *end ? end + 1 : end;
	}
	return true;
}

int crid_portforward_app_init(struct crid_sess *s, const struct crid_http_request *http, struct crid_err *err)
{
	struct pf_app *a;
	struct port_list ports = { .n = 0 };

	if (s->proto == CRID_PROTO_WS) {
		crid_http_query_each(http->query, "port", add_ports, &ports);
		if (ports.bad || ports.n == 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "port-forward over WebSocket needs ?port=N (1-65535, at most %d)", MAX_PAIRS);
		for (size_t i = 0; i < ports.n; i++) {
			if (!port_allowed(s->req, ports.ports[i]))
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
						    "port %u is not one the PortForward request named", ports.ports[i]);
		}
	}
	/* This thread serves this session only: it enters the pod's network
	 * namespace for good, and every socket it makes from now on is the pod's. */
	if (s->req->netns) {
		_cleanup_close_ int ns = open(s->req->netns, O_RDONLY | O_CLOEXEC);

		if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "enter the network namespace of pod %s", s->req->id);
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return crid_err_nomem(err, "port-forward session");
	for (size_t i = 0; i < MAX_PAIRS; i++)
		a->pairs[i].fd = -1;
	s->app = &pf_app;
	s->app_data = a;
	if (s->proto == CRID_PROTO_WS) {
		a->websocket = true;
		a->n_ws = ports.n;
		for (size_t i = 0; i < ports.n; i++) {
			struct pair *p = &a->pairs[i];
			uint8_t le[2] = { (uint8_t)ports.ports[i], (uint8_t)(ports.ports[i] >> 8) };

			p->used = true;
			p->port = ports.ports[i];
			p->data = (struct crid_chan){ .open = true, .ws = (int)(2 * i) };
			p->error = (struct crid_chan){ .open = true, .ws = (int)(2 * i + 1) };
			crid_sess_send(s, &p->data, le, 2);
			crid_sess_send(s, &p->error, le, 2);
			dial(s, p);
		}
	}
	return 0;
}
