/* The streaming server of streaming.h: a listening socket served by an
 * accept thread, single-use tokens, and one thread per connection that
 * reads the HTTP/1.1 request, checks its token, negotiates SPDY/3.1 or
 * WebSocket and a sub-protocol, and runs the session. Everything is
 * bounded: tokens outstanding, connections at once, the request's size and
 * the time it may take to arrive. */
#include "streaming/streaming.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/lazylib.h"
#include "common/log.h"
#include "streaming/stream_internal.h"
#include "streaming/websocket.h"

#define MAX_TOKENS 256
#define TOKEN_LEN 32
#define TOKEN_TTL_NS (60 * NS_PER_S)
/* The request (and a TLS handshake) must arrive within this. */
#define REQUEST_TIMEOUT_S 10

struct token {
	char value[TOKEN_LEN + 1]; /* "" when the slot is free */
	int64_t expires_ns;
	struct crid_stream_request *req;
};

struct crid_streaming {
	int listen_fd, stop_fd;
	SSL_CTX *ssl_ctx;
	pthread_t acceptor;
	bool acceptor_started;
	char base_url[96]; /* "http://127.0.0.1:39001" */
	char *tmp_dir;	   /* <run_root>/streams */
	int64_t idle_ns;
	unsigned max_sessions;

	pthread_mutex_t lock; /* tokens, sessions */
	pthread_cond_t idle;  /* sessions reached 0 */
	struct token tokens[MAX_TOKENS];
	unsigned sessions;
};

struct conn {
	struct crid_streaming *srv;
	int fd;
	char peer[64];
};

static const char *const exec_protocols[] = { "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
					      "channel.k8s.io" };
static const char *const pf_protocols[] = { "portforward.k8s.io" };
static const char *const ws_exec_protocols[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
						 "channel.k8s.io", "base64.channel.k8s.io" };
static const char *const ws_pf_protocols[] = { "SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io",
					       "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io" };

void crid_stream_request_free(struct crid_stream_request *r)
{
	if (!r)
		return;
	free(r->runtime_path);
	free(r->runtime_root);
	for (size_t i = 0; r->runtime_args && r->runtime_args[i]; i++)
		free(r->runtime_args[i]);
	free(r->runtime_args);
	free(r->process);
	free(r->cmd_text);
	free(r->attach_socket);
	free(r->netns);
	free(r->ports);
	free(r);
}

/* ---- tokens ---- */

static void purge_expired_locked(struct crid_streaming *s, int64_t now)
{
	for (size_t i = 0; i < MAX_TOKENS; i++) {
		struct token *t = &s->tokens[i];

		if (t->value[0] && now >= t->expires_ns) {
			crid_stream_request_free(t->req);
			memset(t, 0, sizeof(*t));
		}
	}
}

static const char *kind_path(enum crid_stream_kind k)
{
	return k == CRID_STREAM_EXEC ? "exec" : k == CRID_STREAM_ATTACH ? "attach" : "portforward";
}

int crid_streaming_register(struct crid_streaming *s, struct crid_stream_request *req, char **url,
			    struct crid_err *err)
{
	char value[TOKEN_LEN + 1];
	int64_t now = crid_monotonic_ns();
	struct token *slot = NULL;
	int r = crid_random_hex(value, TOKEN_LEN, err);

	if (r < 0)
		return r;
	if (asprintf(url, "%s/%s/%s", s->base_url, kind_path(req->kind), value) < 0) {
		*url = NULL;
		return crid_err_nomem(err, "streaming URL");
	}
	pthread_mutex_lock(&s->lock);
	purge_expired_locked(s, now);
	for (size_t i = 0; i < MAX_TOKENS && !slot; i++) {
		if (!s->tokens[i].value[0])
			slot = &s->tokens[i];
	}
	if (slot) {
		memcpy(slot->value, value, sizeof(value));
		slot->expires_ns = now + TOKEN_TTL_NS;
		slot->req = req;
	}
	pthread_mutex_unlock(&s->lock);
	if (!slot) {
		free(take_ptr(url));
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, 0,
				    "%d streaming requests are outstanding already; retry when some are used or expired",
				    MAX_TOKENS);
	}
	return 0;
}

/* The request of a token, taken: a token is good once. */
static struct crid_stream_request *consume_token(struct crid_streaming *s, const char *value, enum crid_stream_kind kind)
{
	struct crid_stream_request *req = NULL;
	int64_t now = crid_monotonic_ns();

	if (strlen(value) != TOKEN_LEN)
		return NULL;
	pthread_mutex_lock(&s->lock);
	purge_expired_locked(s, now);
	for (size_t i = 0; i < MAX_TOKENS; i++) {
		struct token *t = &s->tokens[i];

		if (t->value[0] && strcmp(t->value, value) == 0) {
			if (t->req->kind == kind) {
				req = t->req;
				memset(t, 0, sizeof(*t));
			}
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return req;
}

/* ---- answers before the upgrade ---- */

static int write_all_plain(int fd, SSL *ssl, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = ssl ? SSL_write(ssl, buf, (int)len) : send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && !ssl && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void answer(int fd, SSL *ssl, int code, const char *reason, const char *extra, const char *body)
{
	char msg[1024];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n%s\r\n%s",
			 code, reason, strlen(body) + 1, extra ? extra : "", body);

	if (n > 0 && (size_t)n < sizeof(msg) - 1) {
		msg[n++] = '\n';
		write_all_plain(fd, ssl, msg, (size_t)n);
	}
}

/* ---- negotiation ---- */

struct pick {
	const char *const *ours;
	size_t n_ours;
	const char *chosen;
	bool any;
};

/* The client's first protocol that we speak. */
static bool pick_item(const char *item, size_t len, void *ctx)
{
	struct pick *p = ctx;

	p->any = true;
	for (size_t i = 0; i < p->n_ours; i++) {
		if (strlen(p->ours[i]) == len && strncmp(item, p->ours[i], len) == 0) {
			p->chosen = p->ours[i];
			return true;
		}
	}
	return false;
}

static int version_of(const char *protocol)
{
	if (strncmp(protocol, "v5.", 3) == 0)
		return 5;
	if (strncmp(protocol, "v4.", 3) == 0)
		return 4;
	if (strncmp(protocol, "v3.", 3) == 0)
		return 3;
	if (strncmp(protocol, "v2.", 3) == 0)
		return 2;
	return 1;
}

static void join_list(const char *const *v, size_t n, char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && o < size; i++) {
		int k = snprintf(out + o, size - o, "%s%s", i ? ", " : "", v[i]);

		if (k < 0)
			break;
		o += (size_t)k;
	}
}

/* Reads the request head (bytes past it stay in in), within
 * REQUEST_TIMEOUT_S, giving up at once when the server stops. */
static int read_head(int fd, SSL *ssl, int stop_fd, struct crid_buf *in, size_t *head_len)
{
	int64_t deadline = crid_monotonic_ns() + REQUEST_TIMEOUT_S * NS_PER_S;
	char buf[4096];

	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
		int64_t left = deadline - crid_monotonic_ns();
		ssize_t n;

		if (!ssl || !SSL_pending(ssl)) {
			if (left <= 0 || poll(p, 2, (int)(left / NS_PER_MS) + 1) <= 0 || p[1].revents)
				return -ETIMEDOUT;
		}
		n = ssl ? SSL_read(ssl, buf, sizeof(buf)) : recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && !ssl && errno == EINTR)
			continue;
		if (n <= 0)
			return -ECONNRESET;
		if (crid_buf_add(in, buf, (size_t)n) < 0)
			return -ENOMEM;
		*head_len = crid_http_head_len(crid_buf_head(in), in->len);
		if (*head_len)
			return 0;
		if (in->len > CRID_HTTP_HEAD_MAX)
			return -E2BIG;
	}
}

static void serve(struct conn *c)
{
	struct crid_streaming *srv = c->srv;
	struct crid_http_request http = { 0 };
	struct crid_stream_request *req = NULL;
	struct crid_sess sess = { .fd = c->fd, .stop_fd = srv->stop_fd };
	struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_S };
	enum crid_stream_kind kind;
	const char *why = NULL, *token, *upgrade;
	char extra[512], list[256];
	struct crid_err err;
	size_t head_len = 0;
	struct pick pick = { 0 };
	bool websocket;
	int r, one = 1;

	crid_err_clear(&err);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (srv->ssl_ctx) {
		sess.ssl = SSL_new(srv->ssl_ctx);
		if (!sess.ssl || SSL_set_fd(sess.ssl, c->fd) != 1 || SSL_accept(sess.ssl) != 1) {
			log_debug("streaming: TLS handshake failed", "peer", c->peer);
			ERR_clear_error();
			goto out;
		}
	}
	r = read_head(c->fd, sess.ssl, srv->stop_fd, &sess.rx, &head_len);
	if (r == -E2BIG) {
		answer(c->fd, sess.ssl, 431, "Request Header Fields Too Large", NULL, "request head too large");
		goto out;
	}
	if (r < 0)
		goto out;
	if (crid_http_parse(crid_buf_head(&sess.rx), head_len, &http, &why) < 0) {
		answer(c->fd, sess.ssl, 400, "Bad Request", NULL, why);
		goto out;
	}
	crid_buf_consume(&sess.rx, head_len);
	if (strcmp(http.method, "GET") != 0 && strcmp(http.method, "POST") != 0) {
		answer(c->fd, sess.ssl, 405, "Method Not Allowed", "Allow: GET, POST\r\n", "GET or POST");
		goto out;
	}
	if (strncmp(http.path, "/exec/", 6) == 0) {
		kind = CRID_STREAM_EXEC;
		token = http.path + 6;
	} else if (strncmp(http.path, "/attach/", 8) == 0) {
		kind = CRID_STREAM_ATTACH;
		token = http.path + 8;
	} else if (strncmp(http.path, "/portforward/", 13) == 0) {
		kind = CRID_STREAM_PORTFORWARD;
		token = http.path + 13;
	} else {
		answer(c->fd, sess.ssl, 404, "Not Found", NULL, "no such streaming endpoint");
		goto out;
	}
	req = consume_token(srv, token, kind);
	if (!req) {
		answer(c->fd, sess.ssl, 404, "Not Found", NULL, "unknown, expired or already used token");
		goto out;
	}
	sess.req = req;
	upgrade = crid_http_header(&http, "Upgrade");
	websocket = upgrade && strcasecmp(upgrade, "websocket") == 0;
	if (!upgrade || !crid_http_header_has_token(&http, "Connection", "upgrade") ||
	    (!websocket && strcasecmp(upgrade, "SPDY/3.1") != 0)) {
		answer(c->fd, sess.ssl, 400, "Bad Request", NULL,
		       "an upgrade to SPDY/3.1 or websocket is required (Connection: Upgrade)");
		goto out;
	}
	if (websocket) {
		const char *key = crid_http_header(&http, "Sec-WebSocket-Key");
		const char *version = crid_http_header(&http, "Sec-WebSocket-Version");
		char accept[29];

		pick.ours = kind == CRID_STREAM_PORTFORWARD ? ws_pf_protocols : ws_exec_protocols;
		pick.n_ours = kind == CRID_STREAM_PORTFORWARD ? CRID_ARRAY_SIZE(ws_pf_protocols)
							     : CRID_ARRAY_SIZE(ws_exec_protocols);
		if (!version || strcmp(version, "13") != 0) {
			answer(c->fd, sess.ssl, 426, "Upgrade Required", "Sec-WebSocket-Version: 13\r\n",
			       "WebSocket version 13 is required");
			goto out;
		}
		if (!key || crid_ws_accept_key(key, accept) < 0) {
			answer(c->fd, sess.ssl, 400, "Bad Request", NULL, "missing or malformed Sec-WebSocket-Key");
			goto out;
		}
		crid_http_header_each(&http, "Sec-WebSocket-Protocol", pick_item, &pick);
		join_list(pick.ours, pick.n_ours, list, sizeof(list));
		if (!pick.any) {
			answer(c->fd, sess.ssl, 400, "Bad Request", NULL, "missing Sec-WebSocket-Protocol header");
			goto out;
		}
		if (!pick.chosen) {
			snprintf(extra, sizeof(extra), "Sec-WebSocket-Protocol: %s\r\n", list);
			answer(c->fd, sess.ssl, 403, "Forbidden", extra,
			       "none of the requested sub-protocols is supported");
			goto out;
		}
		snprintf(extra, sizeof(extra),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
			 accept, pick.chosen);
		sess.proto = strncmp(pick.chosen, "SPDY/", 5) == 0 ? CRID_PROTO_WS_SPDY : CRID_PROTO_WS;
		sess.base64 = strstr(pick.chosen, "base64") != NULL;
	} else {
		pick.ours = kind == CRID_STREAM_PORTFORWARD ? pf_protocols : exec_protocols;
		pick.n_ours = kind == CRID_STREAM_PORTFORWARD ? CRID_ARRAY_SIZE(pf_protocols)
							     : CRID_ARRAY_SIZE(exec_protocols);
		crid_http_header_each(&http, "X-Stream-Protocol-Version", pick_item, &pick);
		join_list(pick.ours, pick.n_ours, list, sizeof(list));
		if (!pick.any) {
			answer(c->fd, sess.ssl, 400, "Bad Request", NULL, "missing X-Stream-Protocol-Version header");
			goto out;
		}
		if (!pick.chosen) {
			snprintf(extra, sizeof(extra), "X-Accepted-Stream-Protocol-Versions: %s\r\n", list);
			answer(c->fd, sess.ssl, 403, "Forbidden", extra,
			       "none of the requested X-Stream-Protocol-Version values is supported");
			goto out;
		}
		snprintf(extra, sizeof(extra),
			 "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
			 "X-Stream-Protocol-Version: %s\r\n\r\n",
			 pick.chosen);
		sess.proto = CRID_PROTO_SPDY;
	}
	sess.version = version_of(pick.chosen);
	sess.tmp_dir = srv->tmp_dir;
	sess.idle_ns = srv->idle_ns;
	if (sess.proto != CRID_PROTO_WS && crid_spdy_zlib_new(&sess.z) < 0) {
		answer(c->fd, sess.ssl, 500, "Internal Server Error", NULL, "out of memory");
		goto out;
	}
	r = kind == CRID_STREAM_PORTFORWARD ? crid_portforward_app_init(&sess, &http, &err)
					    : crid_stdio_app_init(&sess, &err);
	if (r < 0) {
		int code = err.status == CRID_INVALID_ARGUMENT ? 400 : 500;

		answer(c->fd, sess.ssl, code, code == 400 ? "Bad Request" : "Internal Server Error", NULL, err.msg);
		goto out;
	}
	if (write_all_plain(c->fd, sess.ssl, extra, strlen(extra)) < 0) {
		sess.app->end(&sess);
		sess.app->free(&sess);
		goto out;
	}
	log_debug("streaming: session started", "id", req->id, "kind", kind_path(kind), "protocol", pick.chosen,
		  "transport", websocket ? "websocket" : "spdy", "peer", c->peer);
	if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) == 0)
		crid_sess_run(&sess);
	else
		sess.app->end(&sess);
	sess.app->free(&sess);
	log_debug("streaming: session ended", "id", req->id, "kind", kind_path(kind), "peer", c->peer);
out:
	if (sess.ssl) {
		SSL_shutdown(sess.ssl);
		SSL_free(sess.ssl);
		ERR_clear_error();
	}
	crid_spdy_zlib_free(sess.z);
	crid_buf_free(&sess.rx);
	crid_buf_free(&sess.tx);
	crid_buf_free(&sess.spdy_rx);
	crid_buf_free(&sess.spdy_tx);
	crid_buf_free(&sess.ws_msg);
	crid_http_request_free(&http);
	crid_stream_request_free(req);
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	struct crid_streaming *srv = c->srv;

	pthread_setname_np(pthread_self(), "crid-stream"); /* for ps and /proc: who holds a session */
	serve(c);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&srv->lock);
	if (--srv->sessions == 0)
		pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

static void peer_name(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	snprintf(out, size, "%s:%u", host, port);
}

static void accept_one(struct crid_streaming *s)
{
	pthread_attr_t attr;
	pthread_t t;
	struct conn *c;
	bool room;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			usleep(50 * 1000); /* poll would say "ready" again at once */
		return;
	}
	pthread_mutex_lock(&s->lock);
	room = s->sessions < s->max_sessions;
	if (room)
		s->sessions++;
	pthread_mutex_unlock(&s->lock);
	if (!room) {
		static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

		if (!s->ssl_ctx)
			send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c) {
		c->srv = s;
		c->fd = fd;
		peer_name(fd, c->peer, sizeof(c->peer));
	}
	if (!c || pthread_attr_init(&attr) != 0) {
		free(c);
		close(fd);
		goto undo;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512 * 1024); /* frames and buffers of a few tens of KiB */
	if (pthread_create(&t, &attr, conn_thread, c) != 0) {
		pthread_attr_destroy(&attr);
		free(c);
		close(fd);
		goto undo;
	}
	pthread_attr_destroy(&attr);
	return;
undo:
	pthread_mutex_lock(&s->lock);
	if (--s->sessions == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

static void *accept_thread(void *arg)
{
	struct crid_streaming *s = arg;

	pthread_setname_np(pthread_self(), "crid-stream-acc");
	for (;;) {
		struct pollfd p[2] = { { .fd = s->listen_fd, .events = POLLIN }, { .fd = s->stop_fd, .events = POLLIN } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("streaming: poll failed; no more sessions", "error", strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		if (p[0].revents)
			accept_one(s);
	}
}

/* ---- set-up ---- */

static int setup_tls(struct crid_streaming *s, const struct crid_config *cfg, struct crid_err *err)
{
	char why[256];
	int r = crid_lazylib_load(CRID_LIB_SSL, err);

	if (r < 0)
		return crid_err_wrap(err, "streaming TLS: ");
	s->ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (!s->ssl_ctx)
		return crid_err_nomem(err, "TLS context");
	SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(s->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, cfg->stream_tls_cert) != 1) {
		ERR_error_string_n(ERR_get_error(), why, sizeof(why));
		ERR_clear_error();
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "stream_tls_cert %s: %s", cfg->stream_tls_cert, why);
	}
	if (SSL_CTX_use_PrivateKey_file(s->ssl_ctx, cfg->stream_tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(s->ssl_ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), why, sizeof(why));
		ERR_clear_error();
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "stream_tls_key %s: %s", cfg->stream_tls_key, why);
	}
	return 0;
}

static int bind_listener(struct crid_streaming *s, const char *address, struct crid_err *err)
{
	char host[INET6_ADDRSTRLEN + 1];
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	unsigned port;
	bool v6;
	int one = 1, r;

	r = crid_config_parse_address(address, host, sizeof(host), &port, err);
	if (r < 0)
		return crid_err_wrap(err, "stream_address: ");
	v6 = strchr(host, ':') != NULL;
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &a->sin6_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &a->sin_addr);
		len = sizeof(*a);
	}
	s->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "streaming server: socket");
	setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->listen_fd, (struct sockaddr *)&ss, len) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "streaming server: bind %s", address);
	if (listen(s->listen_fd, 128) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "streaming server: listen on %s", address);
	len = sizeof(ss);
	if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &len) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "streaming server: getsockname");
	port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(s->base_url, sizeof(s->base_url), "%s://%s%s%s:%u", s->ssl_ctx ? "https" : "http", v6 ? "[" : "",
		 host, v6 ? "]" : "", port);
	return 0;
}

int crid_streaming_new(struct crid_streaming **out, const struct crid_config *cfg, struct crid_err *err)
{
	struct crid_streaming *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return crid_err_nomem(err, "streaming server");
	s->listen_fd = s->stop_fd = -1;
	s->idle_ns = (int64_t)cfg->stream_idle_timeout_s * NS_PER_S;
	s->max_sessions = cfg->stream_max_sessions;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	if (asprintf(&s->tmp_dir, "%s/streams", cfg->run_root) < 0) {
		s->tmp_dir = NULL;
		crid_streaming_free(s);
		return crid_err_nomem(err, "streaming server");
	}
	/* Leftovers of a crid that died: exec process files, console sockets. */
	if ((r = crid_rmtree_at(AT_FDCWD, s->tmp_dir, err)) < 0 || (r = crid_mkdir_p(s->tmp_dir, 0700, err)) < 0 ||
	    (cfg->stream_tls_cert && (r = setup_tls(s, cfg, err)) < 0) ||
	    (r = bind_listener(s, cfg->stream_address, err)) < 0) {
		crid_streaming_free(s);
		return r;
	}
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		r = crid_err_set(err, CRID_INTERNAL, errno, "streaming server: eventfd");
		crid_streaming_free(s);
		return r;
	}
	if ((r = pthread_create(&s->acceptor, NULL, accept_thread, s)) != 0) {
		crid_streaming_free(s);
		return crid_err_set(err, CRID_INTERNAL, r, "streaming server: start its thread");
	}
	s->acceptor_started = true;
	log_info("streaming server listening", "url", s->base_url);
	*out = s;
	return 0;
}

void crid_streaming_free(struct crid_streaming *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	if (s->stop_fd >= 0 && write(s->stop_fd, &one, sizeof(one)) < 0)
		log_warn("streaming: cannot signal the sessions to stop", "error", strerror(errno));
	if (s->acceptor_started)
		pthread_join(s->acceptor, NULL);
	pthread_mutex_lock(&s->lock);
	while (s->sessions > 0)
		pthread_cond_wait(&s->idle, &s->lock);
	purge_expired_locked(s, INT64_MAX);
	pthread_mutex_unlock(&s->lock);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	SSL_CTX_free(s->ssl_ctx);
	free(s->tmp_dir);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s);
}
