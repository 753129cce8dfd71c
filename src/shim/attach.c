/* The attach socket of crid-shim (protocol.h): a SOCK_SEQPACKET socket in
 * the state directory whose clients each get the container's output as it
 * goes to the CRI log, and whose input goes to the container's stdin (the
 * pipe, or the terminal with --tty). Nothing here may block the monitor:
 * output to a client that cannot keep up drops the client, input waits in
 * one small buffer while the container is not reading. */
#include "shim/shim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "shim/protocol.h"

/* Output queued in the kernel for one client before it counts as stuck. */
#define CLIENT_SNDBUF (512 * 1024)

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Where input goes: the stdin pipe, or the terminal's master. */
static int stdin_target(const struct crid_shim *s)
{
	if (!s->opts->stdin_open || s->stdin_done)
		return -1;
	return s->opts->tty ? s->out_fd : s->stdin_fd;
}

int crid_shim_attach_setup(struct crid_shim *s, struct crid_err *err)
{
	return crid_shim_listen_type(s->dir_fd, CRID_SHIM_ATTACH_SOCKET, SOCK_SEQPACKET, &s->attach_fd, err);
}

void crid_shim_attach_free(struct crid_shim *s)
{
	for (size_t i = 0; i < CRID_SHIM_MAX_ATTACH; i++)
		close_fd(&s->attach[i].fd);
	if (s->attach_fd >= 0)
		unlinkat(s->dir_fd, CRID_SHIM_ATTACH_SOCKET, 0);
	close_fd(&s->attach_fd);
	free(s->in_buf);
	s->in_buf = NULL;
}

/* With --stdin-once the container's stdin ends with its first client's. */
static void stdin_client_left(struct crid_shim *s)
{
	if (!s->opts->stdin_once || s->stdin_done)
		return;
	s->stdin_done = true;
	s->in_len = s->in_off = 0;
	if (!s->opts->tty)
		close_fd(&s->stdin_fd);
}

static void drop_client(struct crid_shim *s, struct crid_shim_attach_client *c)
{
	close_fd(&c->fd);
	if (c->has_stdin)
		stdin_client_left(s);
	c->has_stdin = false;
}

void crid_shim_attach_output(struct crid_shim *s, int type, const char *buf, size_t len)
{
	char msg[1 + CRID_SHIM_ATTACH_DATA_MAX];
	uint8_t t = type == CRID_CRI_LOG_STDERR ? CRID_SHIM_ATTACH_STDERR : CRID_SHIM_ATTACH_STDOUT;

	while (len > 0) {
		size_t n = len < CRID_SHIM_ATTACH_DATA_MAX ? len : CRID_SHIM_ATTACH_DATA_MAX;

		msg[0] = (char)t;
		memcpy(msg + 1, buf, n);
		for (size_t i = 0; i < CRID_SHIM_MAX_ATTACH; i++) {
			struct crid_shim_attach_client *c = &s->attach[i];

			if (c->fd >= 0 && send(c->fd, msg, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EINTR) {
				if (errno == EAGAIN)
					log_warn("attach client too slow for the container's output: disconnected");
				drop_client(s, c);
			}
		}
		buf += n;
		len -= n;
	}
}

static void accept_client(struct crid_shim *s)
{
	for (size_t i = 0; i < CRID_SHIM_MAX_ATTACH; i++) {
		struct crid_shim_attach_client *c = &s->attach[i];
		int size = CLIENT_SNDBUF;

		if (c->fd >= 0)
			continue;
		c->fd = accept4(s->attach_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c->fd < 0)
			return;
		c->has_stdin = false;
		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		return;
	}
}

static void flush_input(struct crid_shim *s)
{
	int fd = stdin_target(s);

	while (s->in_len > 0) {
		ssize_t n;

		if (fd < 0) {
			s->in_len = s->in_off = 0;
			return;
		}
		n = write(fd, s->in_buf + s->in_off, s->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) { /* nobody reads the container's stdin any more */
			s->in_len = s->in_off = 0;
			return;
		}
		s->in_off += (size_t)n;
		s->in_len -= (size_t)n;
	}
	s->in_off = 0;
}

static void client_message(struct crid_shim *s, struct crid_shim_attach_client *c)
{
	char msg[1 + CRID_SHIM_ATTACH_DATA_MAX];
	ssize_t n = recv(c->fd, msg, sizeof(msg), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop_client(s, c);
		return;
	}
	switch ((uint8_t)msg[0]) {
	case CRID_SHIM_ATTACH_STDIN:
		c->has_stdin = true;
		if (n > 1 && stdin_target(s) >= 0) {
			if (!s->in_buf && !(s->in_buf = malloc(CRID_SHIM_ATTACH_DATA_MAX))) {
				log_error("out of memory for attach input: dropped");
				return;
			}
			memcpy(s->in_buf, msg + 1, (size_t)n - 1);
			s->in_off = 0;
			s->in_len = (size_t)n - 1;
			flush_input(s);
		}
		break;
	case CRID_SHIM_ATTACH_STDIN_CLOSE:
		if (c->has_stdin) {
			c->has_stdin = false;
			stdin_client_left(s);
		}
		break;
	case CRID_SHIM_ATTACH_RESIZE:
		if (n == 5 && s->opts->tty && s->out_fd >= 0) {
			struct winsize ws = {
				.ws_row = (unsigned short)((uint8_t)msg[1] << 8 | (uint8_t)msg[2]),
				.ws_col = (unsigned short)((uint8_t)msg[3] << 8 | (uint8_t)msg[4]),
			};

			ioctl(s->out_fd, TIOCSWINSZ, &ws);
		}
		break;
	default:
		break; /* unknown: ignored, for clients newer than this shim */
	}
}

void crid_shim_attach_poll_fill(struct crid_shim *s, struct pollfd *p)
{
	bool room = false, pending = s->in_len > 0;

	for (size_t i = 0; i < CRID_SHIM_MAX_ATTACH; i++) {
		struct crid_shim_attach_client *c = &s->attach[i];

		if (c->fd < 0)
			room = true;
		/* While input waits, clients are not read: their input waits in the socket. */
		p[1 + i] = (struct pollfd){ .fd = c->fd, .events = pending ? 0 : POLLIN };
	}
	p[0] = (struct pollfd){ .fd = room && !s->exited ? s->attach_fd : -1, .events = POLLIN };
	p[1 + CRID_SHIM_MAX_ATTACH] = (struct pollfd){ .fd = pending ? stdin_target(s) : -1, .events = POLLOUT };
}

void crid_shim_attach_poll_done(struct crid_shim *s, const struct pollfd *p)
{
	if (p[1 + CRID_SHIM_MAX_ATTACH].revents)
		flush_input(s);
	for (size_t i = 0; i < CRID_SHIM_MAX_ATTACH; i++) {
		struct crid_shim_attach_client *c = &s->attach[i];

		if (c->fd >= 0 && c->fd == p[1 + i].fd && p[1 + i].revents)
			client_message(s, c);
	}
	if (p[0].revents)
		accept_client(s);
}
