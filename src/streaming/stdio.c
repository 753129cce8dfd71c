/* The stdio application of a streaming session: exec and attach over the
 * Kubernetes channel protocols. Streams (SPDY) or channels (WebSocket):
 * stdin 0, stdout 1, stderr 2, error 3, resize 4. The process (exec.c) or
 * crid-shim's attach socket (attach.c) is started once the client has
 * opened every stream the request needs; at the end the error stream
 * carries the outcome: a v4 Status object (Success, or NonZeroExitCode
 * with the code) or, before v4, the failure's text. */
#include "streaming/stream_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "shim/protocol.h"

enum { CH_STDIN, CH_STDOUT, CH_STDERR, CH_ERROR, CH_RESIZE, N_CH };

static const char *const stream_types[N_CH] = { "stdin", "stdout", "stderr", "error", "resize" };

/* After the process exits, its output is awaited this long (a child it
 * left may hold the pipes). */
#define DRAIN_AFTER_EXIT_NS (2 * NS_PER_S)
#define RESIZE_BUF_MAX 4096
#define RT_ERR_MAX 1024

struct stdio_app {
	struct crid_chan ch[N_CH];
	bool want[N_CH];
	bool started, finished;
	int64_t wait_deadline;
	bool exec;
	struct crid_exec_proc proc;
	int attach_fd;
	struct crid_buf in; /* toward the process's stdin / the shim */
	bool in_fin;	    /* the client sent all its input */
	bool in_closed;	    /* and that was passed on */
	struct crid_buf resize;
	bool out_eof, err_eof;
	int64_t exited_ns, last_output_ns;
	char rt_err[RT_ERR_MAX]; /* the runtime's own complaint (TTY exec) */
	size_t rt_err_len;
	char failure[CRID_ERR_MSG_MAX]; /* why the session failed, "" when it did not */
};

static struct stdio_app *app_of(struct crid_sess *s)
{
	return s->app_data;
}

/* ---- the outcome ---- */

static void send_status(struct crid_sess *s, int exit_code, const char *failure)
{
	struct stdio_app *a = app_of(s);
	struct crid_chan *e = &a->ch[CH_ERROR];
	char *text = NULL, msg[CRID_ERR_MSG_MAX + 128];
	json_t *st = NULL;

	if (a->finished)
		return;
	a->finished = true;
	crid_sess_fin(s, &a->ch[CH_STDOUT]);
	crid_sess_fin(s, &a->ch[CH_STDERR]);
	if (failure)
		snprintf(msg, sizeof(msg), "%s", failure);
	else if (exit_code != 0)
		snprintf(msg, sizeof(msg), "command terminated with non-zero exit code: error executing command %s, exit code %d",
			 s->req->cmd_text ? s->req->cmd_text : "[]", exit_code);
	if (s->version >= 4) {
		if (failure) {
			st = json_pack("{s:{}, s:s, s:s, s:s, s:{s:[{s:s}]}, s:i}", "metadata", "status", "Failure",
				       "message", msg, "reason", "InternalError", "details", "causes", "message", msg,
				       "code", 500);
		} else if (exit_code != 0) {
			char code[16];

			snprintf(code, sizeof(code), "%d", exit_code);
			st = json_pack("{s:{}, s:s, s:s, s:s, s:{s:[{s:s, s:s}]}}", "metadata", "status", "Failure",
				       "message", msg, "reason", "NonZeroExitCode", "details", "causes", "reason",
				       "ExitCode", "message", code);
		} else {
			st = json_pack("{s:{}, s:s}", "metadata", "status", "Success");
		}
		text = st ? json_dumps(st, JSON_COMPACT) : NULL;
		json_decref(st);
		if (text)
			crid_sess_send(s, e, text, strlen(text));
		free(text);
	} else if (failure || exit_code != 0) {
		crid_sess_send(s, e, msg, strlen(msg));
	}
	crid_sess_fin(s, e);
	crid_sess_fin(s, &a->ch[CH_STDIN]);
	crid_sess_fin(s, &a->ch[CH_RESIZE]);
}

/* ---- starting ---- */

static void start(struct crid_sess *s)
{
	struct stdio_app *a = app_of(s);
	struct crid_err err;

	a->started = true;
	crid_err_clear(&err);
	if (a->exec) {
		if (crid_exec_start(s->req, s->tmp_dir, &a->proc, &err) < 0) {
			log_warn("streaming: exec failed", "container", s->req->id, "error", err.msg);
			snprintf(a->failure, sizeof(a->failure), "%s", err.msg);
			return;
		}
		if (!s->req->out)
			a->out_eof = true;
		if (!s->req->err || s->req->tty)
			a->err_eof = true;
	} else {
		if (crid_attach_connect(s->req->attach_socket, &a->attach_fd, &err) < 0) {
			log_warn("streaming: attach failed", "container", s->req->id, "error", err.msg);
			snprintf(a->failure, sizeof(a->failure), "%s", err.msg);
			return;
		}
		if (s->req->in) {
			uint8_t hello = CRID_SHIM_ATTACH_STDIN;

			send(a->attach_fd, &hello, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
	}
	/* WebSocket clients learn the session is up from a first, empty
	 * message on the lowest channel they read. */
	if (s->proto == CRID_PROTO_WS) {
		int ch = s->req->out ? CH_STDOUT : s->req->err ? CH_STDERR : CH_ERROR;

		crid_sess_send(s, &a->ch[ch], "", 0);
	}
}

static bool all_streams(struct stdio_app *a)
{
	for (int i = 0; i < N_CH; i++) {
		if (a->want[i] && !a->ch[i].open)
			return false;
	}
	return true;
}

/* ---- the client's side ---- */

static struct crid_chan *on_stream(struct crid_sess *s, const struct crid_spdy_nv *nv, size_t n_nv, uint32_t sid,
				   uint32_t *status)
{
	struct stdio_app *a = app_of(s);
	const char *type = crid_spdy_nv_get(nv, n_nv, "streamtype");

	for (int i = 0; type && i < N_CH; i++) {
		struct crid_chan *c = &a->ch[i];

		if (strcmp(type, stream_types[i]) != 0)
			continue;
		if (c->open) {
			*status = CRID_SPDY_STREAM_IN_USE;
			return NULL;
		}
		c->open = true;
		c->sid = sid;
		if (crid_sess_reply(s, c) < 0)
			return NULL;
		if (!a->started && all_streams(a))
			start(s);
		return c;
	}
	*status = CRID_SPDY_REFUSED_STREAM;
	return NULL;
}

static struct crid_chan *find(struct crid_sess *s, uint32_t sid)
{
	struct stdio_app *a = app_of(s);

	for (int i = 0; i < N_CH; i++) {
		if (a->ch[i].open && a->ch[i].sid == sid)
			return &a->ch[i];
	}
	return NULL;
}

static struct crid_chan *ws_chan(struct crid_sess *s, unsigned n)
{
	return n < N_CH ? &app_of(s)->ch[n] : NULL;
}

static void apply_resize(struct crid_sess *s, unsigned width, unsigned height)
{
	struct stdio_app *a = app_of(s);

	if (width > 0xffff || height > 0xffff || !s->req->tty)
		return;
	if (a->exec && a->proc.out_fd >= 0) {
		struct winsize ws = { .ws_row = (unsigned short)height, .ws_col = (unsigned short)width };

		if (ioctl(a->proc.out_fd, TIOCSWINSZ, &ws) < 0)
			log_debug("streaming: resize failed", "error", strerror(errno));
	} else if (!a->exec && a->attach_fd >= 0) {
		uint8_t msg[5] = { CRID_SHIM_ATTACH_RESIZE, (uint8_t)(height >> 8), (uint8_t)height, (uint8_t)(width >> 8),
				   (uint8_t)width };

		send(a->attach_fd, msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
}

/* Resize messages are JSON objects, {"Width":80,"Height":24}, one after
 * the other (SPDY) or one per message (WebSocket). */
static void parse_resizes(struct crid_sess *s)
{
	struct stdio_app *a = app_of(s);

	while (a->resize.len > 0) {
		json_error_t jerr;
		json_t *o;
		const char *p = crid_buf_head(&a->resize);
		size_t skip = 0;

		while (skip < a->resize.len && (p[skip] == ' ' || p[skip] == '\n' || p[skip] == '\r' || p[skip] == '\t'))
			skip++;
		crid_buf_consume(&a->resize, skip);
		if (a->resize.len == 0)
			return;
		o = json_loadb(crid_buf_head(&a->resize), a->resize.len, JSON_DISABLE_EOF_CHECK, &jerr);
		if (!o) {
			/* Incomplete: wait for more, unless it can never parse. */
			if (a->resize.len >= RESIZE_BUF_MAX || jerr.position < (int)a->resize.len)
				crid_buf_consume(&a->resize, a->resize.len);
			return;
		}
		apply_resize(s, (unsigned)json_integer_value(json_object_get(o, "Width")),
			     (unsigned)json_integer_value(json_object_get(o, "Height")));
		json_decref(o);
		crid_buf_consume(&a->resize, jerr.position > 0 ? (size_t)jerr.position : a->resize.len);
	}
}

static void on_data(struct crid_sess *s, struct crid_chan *c, const uint8_t *d, size_t n)
{
	struct stdio_app *a = app_of(s);

	if (c == &a->ch[CH_STDIN]) {
		if (!a->in_fin && s->req->in && crid_buf_add(&a->in, d, n) < 0)
			s->broken = true;
	} else if (c == &a->ch[CH_RESIZE]) {
		if (crid_buf_add(&a->resize, d, n) < 0)
			s->broken = true;
		else
			parse_resizes(s);
	}
}

static void on_fin(struct crid_sess *s, struct crid_chan *c, bool reset)
{
	struct stdio_app *a = app_of(s);

	if (c == &a->ch[CH_STDIN])
		a->in_fin = true;
}

/* ---- the local side ---- */

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Input went through; the client's end of input is passed on. */
static void pass_stdin_close(struct crid_sess *s)
{
	struct stdio_app *a = app_of(s);

	if (!a->in_fin || a->in.len > 0 || a->in_closed || !a->started)
		return;
	a->in_closed = true;
	if (a->exec) {
		/* A terminal has no end of input to pass: the client's shell exits. */
		if (!s->req->tty)
			close_fd(&a->proc.in_fd);
	} else if (a->attach_fd >= 0 && s->req->in) {
		uint8_t msg = CRID_SHIM_ATTACH_STDIN_CLOSE;

		send(a->attach_fd, &msg, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
}

static void read_output(struct crid_sess *s, int *fd, struct crid_chan *c, bool *eof)
{
	char buf[CRID_SESS_CHUNK];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n > 0) {
		app_of(s)->last_output_ns = crid_monotonic_ns();
		crid_sess_send(s, c, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	*eof = true; /* EOF, or EIO from a terminal nobody holds any more */
}

static void write_input(struct crid_sess *s, int fd)
{
	struct stdio_app *a = app_of(s);
	ssize_t n = write(fd, crid_buf_head(&a->in), a->in.len);

	if (n > 0) {
		crid_buf_consume(&a->in, (size_t)n);
	} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		/* The process stopped reading for good: drop what is left. */
		crid_buf_consume(&a->in, a->in.len);
		a->in_fin = true;
	}
}

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static int poll_fill(struct crid_sess *s, struct pollfd *p, int max, int64_t *wake)
{
	struct stdio_app *a = app_of(s);
	bool room = !crid_sess_tx_full(s);
	int n = 0;

	if (!a->started) {
		if (*wake > a->wait_deadline)
			*wake = a->wait_deadline;
		return 0;
	}
	if (a->finished || a->failure[0])
		return 0;
	if (a->exec) {
		struct crid_exec_proc *pr = &a->proc;

		if (pr->out_fd >= 0 && pr->out_fd == pr->in_fd) { /* a terminal */
			short ev = (short)((room && !a->out_eof ? POLLIN : 0) | (a->in.len > 0 ? POLLOUT : 0));

			p[n++] = (struct pollfd){ .fd = ev ? pr->out_fd : -1, .events = ev };
		} else {
			p[n++] = (struct pollfd){ .fd = room && !a->out_eof ? pr->out_fd : -1, .events = POLLIN };
			p[n++] = (struct pollfd){ .fd = a->in.len > 0 ? pr->in_fd : -1, .events = POLLOUT };
		}
		p[n++] = (struct pollfd){ .fd = room && !a->err_eof ? pr->err_fd : -1, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = !pr->exited ? pr->pidfd : -1, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = pr->rt_err_fd, .events = POLLIN };
		if (pr->exited) {
			int64_t from = a->last_output_ns > a->exited_ns ? a->last_output_ns : a->exited_ns;

			if (*wake > from + DRAIN_AFTER_EXIT_NS)
				*wake = from + DRAIN_AFTER_EXIT_NS;
		}
	} else {
		short ev = (short)((room ? POLLIN : 0) | (a->in.len > 0 ? POLLOUT : 0));

		/* No events, no fd: a hang-up would wake poll again and again. */
		p[n++] = (struct pollfd){ .fd = ev ? a->attach_fd : -1, .events = ev };
	}
	(void)max;
	return n;
}

static void attach_input(struct crid_sess *s)
{
	struct stdio_app *a = app_of(s);

	while (a->in.len > 0) {
		uint8_t msg[1 + CRID_SHIM_ATTACH_DATA_MAX];
		size_t n = a->in.len < CRID_SHIM_ATTACH_DATA_MAX ? a->in.len : CRID_SHIM_ATTACH_DATA_MAX;

		msg[0] = CRID_SHIM_ATTACH_STDIN;
		memcpy(msg + 1, crid_buf_head(&a->in), n);
		if (send(a->attach_fd, msg, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			if (errno != EAGAIN && errno != EINTR)
				crid_buf_consume(&a->in, a->in.len);
			return;
		}
		crid_buf_consume(&a->in, n);
	}
}

static void attach_output(struct crid_sess *s)
{
	struct stdio_app *a = app_of(s);
	uint8_t msg[1 + CRID_SHIM_ATTACH_DATA_MAX];
	ssize_t n = recv(a->attach_fd, msg, sizeof(msg), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The container's output ended (or the shim went away). */
		a->out_eof = a->err_eof = true;
		close_fd(&a->attach_fd);
		return;
	}
	if (msg[0] == CRID_SHIM_ATTACH_STDOUT && s->req->out)
		crid_sess_send(s, &a->ch[CH_STDOUT], msg + 1, (size_t)n - 1);
	else if (msg[0] == CRID_SHIM_ATTACH_STDERR && s->req->err)
		crid_sess_send(s, &a->ch[CH_STDERR], msg + 1, (size_t)n - 1);
}

static void poll_done(struct crid_sess *s, const struct pollfd *p, int n)
{
	struct stdio_app *a = app_of(s);

	if (!a->started || a->finished || a->failure[0])
		return;
	for (int i = 0; i < n; i++) {
		struct crid_exec_proc *pr = &a->proc;

		if (!p[i].revents || p[i].fd < 0)
			continue;
		if (!a->exec) {
			if (p[i].revents & POLLOUT)
				attach_input(s);
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
				attach_output(s);
			continue;
		}
		if (p[i].fd == pr->pidfd) {
			crid_exec_reap(pr);
			if (pr->exited)
				a->exited_ns = crid_monotonic_ns();
			continue;
		}
		if (p[i].fd == pr->rt_err_fd) {
			ssize_t k = read(pr->rt_err_fd, a->rt_err + a->rt_err_len, sizeof(a->rt_err) - 1 - a->rt_err_len);

			if (k > 0)
				a->rt_err_len += (size_t)k;
			else if (k == 0 || (errno != EAGAIN && errno != EINTR) || a->rt_err_len == sizeof(a->rt_err) - 1)
				close_fd(&pr->rt_err_fd);
			continue;
		}
		if ((p[i].revents & POLLOUT) && p[i].fd == pr->in_fd)
			write_input(s, pr->in_fd);
		if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) && p[i].fd == pr->out_fd && !a->out_eof)
			read_output(s, &pr->out_fd, &a->ch[CH_STDOUT], &a->out_eof);
		else if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) && p[i].fd == pr->err_fd && !a->err_eof)
			read_output(s, &pr->err_fd, &a->ch[CH_STDERR], &a->err_eof);
	}
	pass_stdin_close(s);
}

static bool input_stalled(struct crid_sess *s)
{
	return app_of(s)->in.len >= CRID_SESS_RX_HIGH;
}

static bool done(struct crid_sess *s)
{
	struct stdio_app *a = app_of(s);
	int64_t now;

	if (a->finished)
		return true;
	now = crid_monotonic_ns();
	if (!a->started) {
		if (now < a->wait_deadline)
			return false;
		log_warn("streaming: the client did not open its streams in time", "id", s->req->id);
		s->broken = true;
		return true;
	}
	if (a->failure[0]) {
		send_status(s, 0, a->failure);
		return true;
	}
	pass_stdin_close(s);
	if (a->exec) {
		if (!a->proc.exited)
			return false;
		/* Output still comes, or waits for the client to take what is
		 * queued: the drain's clock runs from the last output read. */
		if (!(a->out_eof && a->err_eof) &&
		    (crid_sess_tx_full(s) || now < (a->last_output_ns > a->exited_ns ? a->last_output_ns : a->exited_ns) +
							  DRAIN_AFTER_EXIT_NS))
			return false;
		if (a->rt_err_len > 0 && exit_code_of(a->proc.status) != 0) {
			/* With a TTY the runtime's own complaint has no stream. */
			a->rt_err[a->rt_err_len] = '\0';
			log_debug("streaming: the runtime's exec said", "container", s->req->id, "output", a->rt_err);
		}
		send_status(s, exit_code_of(a->proc.status), NULL);
		return true;
	}
	if (a->attach_fd >= 0 || (s->req->out && !a->out_eof))
		return false;
	send_status(s, 0, NULL);
	return true;
}

static void end(struct crid_sess *s)
{
	struct stdio_app *a = app_of(s);

	if (a->exec && a->started)
		crid_exec_kill(&a->proc);
	close_fd(&a->attach_fd);
}

static void app_free(struct crid_sess *s)
{
	struct stdio_app *a = app_of(s);

	if (!a)
		return;
	if (a->exec)
		crid_exec_cleanup(&a->proc);
	close_fd(&a->attach_fd);
	crid_buf_free(&a->in);
	crid_buf_free(&a->resize);
	free(a);
	s->app_data = NULL;
}

static const struct crid_sess_app stdio_app = {
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

int crid_stdio_app_init(struct crid_sess *s, struct crid_err *err)
{
	struct stdio_app *a = calloc(1, sizeof(*a));
	const struct crid_stream_request *req = s->req;

	if (!a)
		return crid_err_nomem(err, "streaming session");
	a->exec = req->kind == CRID_STREAM_EXEC;
	a->attach_fd = -1;
	a->proc.in_fd = a->proc.out_fd = a->proc.err_fd = a->proc.rt_err_fd = a->proc.pidfd = -1;
	a->want[CH_ERROR] = true;
	a->want[CH_STDIN] = req->in;
	a->want[CH_STDOUT] = req->out;
	a->want[CH_STDERR] = req->err && !req->tty;
	a->want[CH_RESIZE] = req->tty && s->version >= 3 && s->proto != CRID_PROTO_WS;
	a->wait_deadline = crid_monotonic_ns() + CRID_SESS_STREAM_WAIT_NS;
	for (int i = 0; i < N_CH; i++)
		a->ch[i].ws = i;
	s->app = &stdio_app;
	s->app_data = a;
	if (s->proto == CRID_PROTO_WS) {
		/* Every channel exists from the start. */
		for (int i = 0; i < N_CH; i++)
			a->ch[i].open = true;
		start(s);
	}
	return 0;
}
