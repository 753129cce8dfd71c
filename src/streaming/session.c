/* One streaming connection after its upgrade (stream_internal.h): reads
 * the client's SPDY frames or WebSocket messages, hands stream data to the
 * application, frames what the application sends, and runs the poll loop
 * over the client's socket and the application's fds until the
 * application is done, the client goes away or the server stops. */
#include "streaming/stream_internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "streaming/websocket.h"

#define MAX_POLL 64
/* After the application is done, queued output gets this long. */
#define FLUSH_TIMEOUT_NS (5 * NS_PER_S)
/* A SPDY stream's window is replenished once this much was received. */
#define WINDOW_STEP (32 * 1024)

const char *crid_spdy_nv_get(const struct crid_spdy_nv *nv, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(nv[i].name, name) == 0)
			return nv[i].value;
	}
	return NULL;
}

bool crid_sess_tx_full(const struct crid_sess *s)
{
	return s->tx.len >= CRID_SESS_TX_HIGH;
}

/* ---- output ---- */

/* Where SPDY frames are built: straight into tx, or (tunnelled) into
 * spdy_tx, wrapped by spdy_commit. */
static struct crid_buf *spdy_out(struct crid_sess *s)
{
	return s->proto == CRID_PROTO_WS_SPDY ? &s->spdy_tx : &s->tx;
}

static int spdy_commit(struct crid_sess *s)
{
	int r = 0;

	if (s->proto == CRID_PROTO_WS_SPDY && s->spdy_tx.len > 0) {
		r = crid_ws_put_frame(&s->tx, CRID_WS_BINARY, crid_buf_head(&s->spdy_tx), s->spdy_tx.len);
		crid_buf_consume(&s->spdy_tx, s->spdy_tx.len);
	}
	return r;
}

static int ws_send(struct crid_sess *s, int channel, const void *d, size_t n)
{
	int r = 0;

	if (s->base64) {
		size_t b64 = 4 * ((n + 2) / 3);
		char *msg = malloc(b64 + 2);

		if (!msg)
			return -ENOMEM;
		msg[0] = (char)('0' + channel);
		EVP_EncodeBlock((unsigned char *)msg + 1, d, (int)n);
		r = crid_ws_put_frame(&s->tx, CRID_WS_TEXT, msg, 1 + b64);
		free(msg);
		return r;
	}
	{
		uint8_t ch = (uint8_t)channel;
		uint8_t h[10];
		size_t hn;

		/* The frame header, the channel byte and the data, without a copy. */
		h[0] = 0x80 | CRID_WS_BINARY;
		if (n + 1 < 126) {
			h[1] = (uint8_t)(n + 1);
			hn = 2;
		} else if (n + 1 <= 0xffff) {
			h[1] = 126;
			h[2] = (uint8_t)((n + 1) >> 8);
			h[3] = (uint8_t)(n + 1);
			hn = 4;
		} else {
			h[1] = 127;
			for (int i = 0; i < 8; i++)
				h[2 + i] = (uint8_t)((uint64_t)(n + 1) >> (56 - 8 * i));
			hn = 10;
		}
		if ((r = crid_buf_add(&s->tx, h, hn)) < 0 || (r = crid_buf_add(&s->tx, &ch, 1)) < 0)
			return r;
		return crid_buf_add(&s->tx, d, n);
	}
}

int crid_sess_send(struct crid_sess *s, struct crid_chan *c, const void *d, size_t n)
{
	int r;

	if (!c->open || c->fin_sent)
		return -EPIPE;
	if (s->proto == CRID_PROTO_WS) {
		r = ws_send(s, c->ws, d, n);
	} else {
		r = crid_spdy_put_data(spdy_out(s), c->sid, 0, d, n);
		if (r == 0)
			r = spdy_commit(s);
	}
	if (r == -ENOMEM) {
		/* Output would go missing unnoticed: the session ends instead. */
		log_warn("streaming: out of memory for a session's output", "id", s->req->id);
		s->broken = true;
	}
	return r;
}

int crid_sess_fin(struct crid_sess *s, struct crid_chan *c)
{
	int r = 0;

	if (!c->open || c->fin_sent)
		return 0;
	c->fin_sent = true;
	if (s->proto == CRID_PROTO_WS) {
		/* v5 tells the client a channel is closed; older ones cannot. */
		if (s->version >= 5 && !s->base64) {
			uint8_t msg[2] = { 255, (uint8_t)c->ws };

			r = crid_ws_put_frame(&s->tx, CRID_WS_BINARY, msg, sizeof(msg));
		}
		return r;
	}
	r = crid_spdy_put_data(spdy_out(s), c->sid, CRID_SPDY_FLAG_FIN, NULL, 0);
	if (r == 0)
		r = spdy_commit(s);
	return r;
}

void crid_sess_reset(struct crid_sess *s, struct crid_chan *c, uint32_t status)
{
	if (!c->open)
		return;
	if (s->proto != CRID_PROTO_WS && !(c->fin_sent && c->fin_recv)) {
		crid_spdy_put_rst(spdy_out(s), c->sid, status);
		spdy_commit(s);
	}
	c->fin_sent = c->fin_recv = true;
}

int crid_sess_reply(struct crid_sess *s, struct crid_chan *c)
{
	int r;

	if (s->proto == CRID_PROTO_WS)
		return 0;
	r = crid_spdy_put_syn_reply(spdy_out(s), s->z, c->sid, 0, NULL, 0);
	if (r == 0)
		r = spdy_commit(s);
	return r;
}

/* ---- SPDY input ---- */

static void spdy_fatal(struct crid_sess *s, const char *why)
{
	log_warn("streaming: closing a SPDY connection", "id", s->req->id, "reason", why);
	crid_spdy_put_goaway(spdy_out(s), s->last_sid, 1 /* PROTOCOL_ERROR */);
	spdy_commit(s);
	s->broken = true;
}

static struct crid_chan *find_sid(struct crid_sess *s, uint32_t sid, bool *known)
{
	struct crid_chan *c = s->app->find(s, sid);

	*known = c != NULL;
	return c;
}

static void spdy_syn_stream(struct crid_sess *s, const struct crid_spdy_frame *f)
{
	struct crid_spdy_nv nv[CRID_SPDY_MAX_NV];
	struct crid_chan *c;
	uint32_t status = CRID_SPDY_REFUSED_STREAM;
	size_t n_nv;
	bool known;
	int r;

	if (f->len < 10) {
		spdy_fatal(s, "SYN_STREAM too short");
		return;
	}
	r = crid_spdy_headers_decode(s->z, f->payload + 10, f->len - 10, nv, &n_nv);
	if (r < 0) {
		spdy_fatal(s, "SYN_STREAM header block does not decode");
		return;
	}
	/* Client streams are odd and increasing. */
	if (f->stream_id == 0 || !(f->stream_id & 1) || f->stream_id <= s->last_sid) {
		spdy_fatal(s, "SYN_STREAM with a stream ID out of order");
		return;
	}
	s->last_sid = f->stream_id;
	if (find_sid(s, f->stream_id, &known) && known) {
		crid_spdy_put_rst(spdy_out(s), f->stream_id, CRID_SPDY_STREAM_IN_USE);
		spdy_commit(s);
		return;
	}
	c = s->app->stream(s, nv, n_nv, f->stream_id, &status);
	if (!c) {
		crid_spdy_put_rst(spdy_out(s), f->stream_id, status);
		spdy_commit(s);
		return;
	}
	if (f->flags & CRID_SPDY_FLAG_FIN) {
		c->fin_recv = true;
		s->app->fin(s, c, false);
	}
}

static void spdy_data(struct crid_sess *s, const struct crid_spdy_frame *f)
{
	bool known;
	struct crid_chan *c = find_sid(s, f->stream_id, &known);

	if (!c || c->fin_recv) {
		/* A stream we reset or never saw: tell the client once more. */
		crid_spdy_put_rst(spdy_out(s), f->stream_id, c ? CRID_SPDY_STREAM_ALREADY_CLOSED : CRID_SPDY_INVALID_STREAM);
		spdy_commit(s);
		return;
	}
	if (f->len > 0) {
		s->app->data(s, c, f->payload, f->len);
		c->unacked += f->len;
		if (c->unacked >= WINDOW_STEP) {
			crid_spdy_put_window_update(spdy_out(s), c->sid, c->unacked);
			crid_spdy_put_window_update(spdy_out(s), 0, c->unacked);
			spdy_commit(s);
			c->unacked = 0;
		}
	}
	if (f->flags & CRID_SPDY_FLAG_FIN) {
		c->fin_recv = true;
		s->app->fin(s, c, false);
	}
}

static void spdy_frame(struct crid_sess *s, const struct crid_spdy_frame *f)
{
	bool known;
	struct crid_chan *c;

	if (!f->control) {
		spdy_data(s, f);
		return;
	}
	switch (f->type) {
	case CRID_SPDY_SYN_STREAM:
		spdy_syn_stream(s, f);
		break;
	case CRID_SPDY_RST_STREAM:
		if (f->len != 8) {
			spdy_fatal(s, "RST_STREAM of the wrong length");
			break;
		}
		c = find_sid(s, f->stream_id, &known);
		if (c && !(c->fin_recv && c->fin_sent)) {
			c->fin_recv = c->fin_sent = true;
			s->app->fin(s, c, true);
		}
		break;
	case CRID_SPDY_SETTINGS:
		if (f->len < 4 || (uint64_t)crid_spdy_u32(f->payload) * 8 != f->len - 4)
			spdy_fatal(s, "SETTINGS of the wrong length");
		break; /* nothing in them changes what we send */
	case CRID_SPDY_PING:
		if (f->len != 4) {
			spdy_fatal(s, "PING of the wrong length");
			break;
		}
		/* The client's pings are odd: echoed. Ours would be even; we send none. */
		if (crid_spdy_u32(f->payload) & 1) {
			crid_spdy_put_ping(spdy_out(s), crid_spdy_u32(f->payload));
			spdy_commit(s);
		}
		break;
	case CRID_SPDY_GOAWAY:
		/* The client opens no more streams; what runs goes on until it closes. */
		break;
	case CRID_SPDY_WINDOW_UPDATE:
		if (f->len != 8 || (crid_spdy_u32(f->payload + 4) & 0x7fffffff) == 0)
			spdy_fatal(s, "WINDOW_UPDATE malformed");
		break; /* our output is bounded by the socket, not by windows */
	case CRID_SPDY_SYN_REPLY:
	case CRID_SPDY_HEADERS:
		break; /* we open no streams; extra headers mean nothing here */
	default:
		break; /* unknown control frames are ignored, as SPDY says */
	}
}

static void spdy_input(struct crid_sess *s, struct crid_buf *in)
{
	while (!s->broken && in->len > 0) {
		struct crid_spdy_frame f;
		long n = crid_spdy_frame_parse((const uint8_t *)crid_buf_head(in), in->len, &f);

		if (n == 0)
			return;
		if (n < 0) {
			spdy_fatal(s, n == -E2BIG ? "frame too large" : "not SPDY/3");
			return;
		}
		spdy_frame(s, &f);
		crid_buf_consume(in, (size_t)n);
	}
}

/* ---- WebSocket input ---- */

static void ws_fatal(struct crid_sess *s, uint16_t code, const char *why)
{
	log_warn("streaming: closing a WebSocket connection", "id", s->req->id, "reason", why);
	crid_ws_put_close(&s->tx, code, why);
	s->broken = true;
}

static void ws_channel_message(struct crid_sess *s, uint8_t op, uint8_t *d, size_t n)
{
	struct crid_chan *c;
	unsigned ch;

	if (s->proto == CRID_PROTO_WS_SPDY) {
		if (op != CRID_WS_BINARY) {
			ws_fatal(s, 1003, "SPDY is carried in binary messages");
			return;
		}
		if (crid_buf_add(&s->spdy_rx, d, n) < 0) {
			ws_fatal(s, 1011, "out of memory");
			return;
		}
		spdy_input(s, &s->spdy_rx);
		return;
	}
	if (n == 0)
		return;
	if (s->base64) {
		int len;

		if (op != CRID_WS_TEXT || d[0] < '0' || d[0] > '9') {
			ws_fatal(s, 1003, "base64 channel messages are text starting with a digit");
			return;
		}
		size_t pad = 0;

		ch = (unsigned)(d[0] - '0');
		/* EVP_DecodeBlock counts padding as data: counted first, as the
		 * decoding happens in place (base64 only shrinks). */
		if (n > 1 && d[n - 1] == '=')
			pad++;
		if (n > 2 && d[n - 2] == '=')
			pad++;
		if ((n - 1) % 4 != 0 || (len = EVP_DecodeBlock(d + 1, d + 1, (int)(n - 1))) < 0) {
			ws_fatal(s, 1007, "bad base64");
			return;
		}
		len -= (int)pad;
		d++;
		n = (size_t)len;
	} else {
		if (op != CRID_WS_BINARY) {
			ws_fatal(s, 1003, "channel messages are binary");
			return;
		}
		ch = d[0];
		d++;
		n--;
		if (ch == 255 && s->version >= 5) { /* v5: the client closes a channel */
			if (n == 1 && (c = s->app->ws_chan(s, d[0])) && c->open && !c->fin_recv) {
				c->fin_recv = true;
				s->app->fin(s, c, false);
			}
			return;
		}
	}
	c = s->app->ws_chan(s, ch);
	if (!c || !c->open || c->fin_recv)
		return; /* a channel the client may not write: dropped */
	if (n > 0)
		s->app->data(s, c, d, n);
}

static void ws_input(struct crid_sess *s)
{
	while (!s->broken && s->rx.len > 0) {
		struct crid_ws_frame f;
		long n = crid_ws_frame_parse((uint8_t *)crid_buf_head(&s->rx), s->rx.len, &f);

		if (n == 0)
			return;
		if (n < 0) {
			ws_fatal(s, n == -E2BIG ? 1009 : 1002, n == -E2BIG ? "message too big" : "protocol error");
			return;
		}
		switch (f.opcode) {
		case CRID_WS_PING:
			crid_ws_put_frame(&s->tx, CRID_WS_PONG, f.payload, f.len);
			break;
		case CRID_WS_PONG:
			break;
		case CRID_WS_CLOSE:
			/* Answered, then the connection ends. */
			crid_ws_put_close(&s->tx, 1000, "");
			s->client_eof = true;
			s->broken = true;
			break;
		case CRID_WS_CONTINUATION:
			if (s->ws_msg_op == 0) {
				ws_fatal(s, 1002, "continuation without a message");
				break;
			}
			if (s->ws_msg.len + f.len > CRID_WS_MAX_MESSAGE || crid_buf_add(&s->ws_msg, f.payload, f.len) < 0) {
				ws_fatal(s, 1009, "message too big");
				break;
			}
			if (f.fin) {
				ws_channel_message(s, s->ws_msg_op, (uint8_t *)crid_buf_head(&s->ws_msg), s->ws_msg.len);
				crid_buf_consume(&s->ws_msg, s->ws_msg.len);
				s->ws_msg_op = 0;
			}
			break;
		default: /* text, binary */
			if (s->ws_msg_op != 0) {
				ws_fatal(s, 1002, "new message inside a fragmented one");
				break;
			}
			if (f.fin) {
				ws_channel_message(s, f.opcode, f.payload, f.len);
			} else {
				s->ws_msg_op = f.opcode;
				if (crid_buf_add(&s->ws_msg, f.payload, f.len) < 0)
					ws_fatal(s, 1011, "out of memory");
			}
		}
		crid_buf_consume(&s->rx, (size_t)n);
	}
}

/* ---- the socket ---- */

static ssize_t sock_read(struct crid_sess *s, void *buf, size_t n)
{
	if (s->ssl) {
		int r = SSL_read(s->ssl, buf, (int)n);

		if (r > 0)
			return r;
		switch (SSL_get_error(s->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			errno = EAGAIN;
			return -1;
		case SSL_ERROR_WANT_WRITE:
			s->ssl_wants_write = true;
			errno = EAGAIN;
			return -1;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		default:
			ERR_clear_error();
			errno = ECONNRESET;
			return -1;
		}
	}
	return recv(s->fd, buf, n, 0);
}

static ssize_t sock_write(struct crid_sess *s, const void *buf, size_t n)
{
	if (s->ssl) {
		int r = SSL_write(s->ssl, buf, (int)n);

		s->ssl_wants_write = false;
		if (r > 0)
			return r;
		switch (SSL_get_error(s->ssl, r)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			errno = EAGAIN;
			return -1;
		default:
			ERR_clear_error();
			errno = EPIPE;
			return -1;
		}
	}
	return send(s->fd, buf, n, MSG_NOSIGNAL);
}

static void process_input(struct crid_sess *s)
{
	if (s->proto == CRID_PROTO_SPDY)
		spdy_input(s, &s->rx);
	else
		ws_input(s);
}

static void read_client(struct crid_sess *s)
{
	char buf[65536];

	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = sock_read(s, buf, sizeof(buf));

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			s->client_eof = true;
			return;
		}
		s->last_activity_ns = crid_monotonic_ns();
		if (crid_buf_add(&s->rx, buf, (size_t)n) < 0) {
			s->broken = true;
			return;
		}
		process_input(s);
		if (s->broken || (s->app->input_stalled && s->app->input_stalled(s)))
			return;
		if (!s->ssl || !SSL_pending(s->ssl))
			if ((size_t)n < sizeof(buf))
				return;
	}
}

static void write_client(struct crid_sess *s)
{
	while (s->tx.len > 0) {
		ssize_t n = sock_write(s, crid_buf_head(&s->tx), s->tx.len);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			s->client_eof = true;
			s->broken = true;
			crid_buf_consume(&s->tx, s->tx.len);
			return;
		}
		s->last_activity_ns = crid_monotonic_ns();
		crid_buf_consume(&s->tx, (size_t)n);
	}
}

/* Closing with unread input would reset the connection and could make the
 * client drop the end of what it was sent: our side is shut first, then
 * what the client still sends is read (and dropped) for a moment. */
static void linger(struct crid_sess *s)
{
	int64_t deadline = crid_monotonic_ns() + 2 * NS_PER_S;
	char buf[16384];

	if (s->client_eof)
		return;
	if (s->ssl)
		SSL_shutdown(s->ssl);
	shutdown(s->fd, SHUT_WR);
	for (;;) {
		int64_t now = crid_monotonic_ns();
		struct pollfd p[2] = { { .fd = s->fd, .events = POLLIN }, { .fd = s->stop_fd, .events = POLLIN } };
		ssize_t n;

		if (now >= deadline || poll(p, 2, (int)((deadline - now) / NS_PER_MS) + 1) <= 0 || p[1].revents)
			return;
		n = recv(s->fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}

void crid_sess_run(struct crid_sess *s)
{
	struct pollfd p[MAX_POLL];
	int64_t flush_deadline = 0;
	bool ended = false;

	s->last_activity_ns = crid_monotonic_ns();
	if (s->rx.len > 0) /* frames that came with the request */
		process_input(s);
	for (;;) {
		int64_t now = crid_monotonic_ns(), wake = s->last_activity_ns + s->idle_ns;
		bool want_read, app_done;
		int n = 2, napp = 0, timeout;

		app_done = s->app->done(s);
		if (app_done && !s->closing && !s->broken && s->proto != CRID_PROTO_SPDY) {
			crid_ws_put_close(&s->tx, 1000, "");
			s->closing = true;
		}
		if ((s->broken || s->client_eof) && !ended) {
			s->app->end(s);
			ended = true;
		}
		if (app_done || s->broken || s->client_eof) {
			if (s->tx.len == 0 || s->client_eof)
				break;
			if (!flush_deadline)
				flush_deadline = now + FLUSH_TIMEOUT_NS;
			if (now >= flush_deadline)
				break;
			wake = flush_deadline;
		}
		if (now >= s->last_activity_ns + s->idle_ns) {
			log_info("streaming: session idle too long, closed", "id", s->req->id);
			break;
		}
		want_read = !s->client_eof && !s->broken && !(s->app->input_stalled && s->app->input_stalled(s));
		p[0] = (struct pollfd){ .fd = s->fd,
					.events = (short)((want_read ? POLLIN : 0) |
							  (s->tx.len > 0 || s->ssl_wants_write ? POLLOUT : 0)) };
		p[1] = (struct pollfd){ .fd = s->stop_fd, .events = POLLIN };
		if (!ended)
			napp = s->app->poll_fill(s, p + 2, MAX_POLL - 2, &wake);
		n += napp;
		timeout = wake > now ? (int)((wake - now + NS_PER_MS - 1) / NS_PER_MS) : 0;
		/* Data already decrypted waits in OpenSSL, not in the socket. */
		if (want_read && s->ssl && SSL_pending(s->ssl))
			timeout = 0;
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			log_warn("streaming: poll failed", "error", strerror(errno));
			break;
		}
		if (p[1].revents) {
			if (!ended) {
				s->app->end(s);
				ended = true;
			}
			write_client(s);
			break;
		}
		if (want_read && (p[0].revents & (POLLIN | POLLHUP | POLLERR) || (s->ssl && SSL_pending(s->ssl))))
			read_client(s);
		else if (p[0].revents & (POLLHUP | POLLERR))
			s->client_eof = true; /* gone while not read: poll would not wait again */
		if (!ended && napp > 0)
			s->app->poll_done(s, p + 2, napp);
		if (s->tx.len > 0)
			write_client(s);
	}
	if (!ended)
		s->app->end(s);
	linger(s);
}
