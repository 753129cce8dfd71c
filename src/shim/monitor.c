/* The monitor of shim.h: one thread, one poll loop over SIGCHLD (a
 * signalfd), the container's stdout and stderr, the control socket and the
 * attach socket's fds (attach.c).
 * Output is written to the CRI log as it arrives; the exit is recorded
 * only once the output the container wrote is in the log. */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "shim/protocol.h"

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

/* After the init exits, processes it left behind may still hold the
 * pipes: the output is awaited this long, then what is there is taken. */
#define DRAIN_AFTER_EXIT_NS (2 * NS_PER_S)
/* What is read from a pipe at the very end, at most, per stream. */
#define FINAL_DRAIN_MAX (1024 * 1024)
/* A control client has this long to send its request line. */
#define CLIENT_TIMEOUT_NS (5 * NS_PER_S)
/* One read of container output; records are written straight from it. */
#define READ_CHUNK 8192

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

void crid_shim_sync(int *sync_fd, const char *line)
{
	char buf[CRID_ERR_MSG_MAX + 16];
	size_t len;
	int r;

	if (*sync_fd < 0)
		return;
	/* Exactly one line: whatever the message holds stays on it. */
	snprintf(buf, sizeof(buf) - 1, "%s", line);
	len = strlen(buf);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	}
	buf[len++] = '\n';
	r = write_all(*sync_fd, buf, len);
	if (r < 0) /* crid is gone; it finds the container again by its state directory */
		log_warn("cannot write the start-up line", "error", strerror(-r));
	close_fd(sync_fd);
}

/* ---- set-up ---- */

/* fds 0-2 open, so nothing opened later lands on them and is then
 * closed as a stdio stand-in. */
static void ensure_stdio_open(void)
{
	for (int fd = 0; fd <= STDERR_FILENO; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int null_fd = open("/dev/null", O_RDWR);

			if (null_fd >= 0 && null_fd != fd) /* cannot be: fd was the lowest free one */
				close(null_fd);
		}
	}
}

/* Ignored dispositions survive exec: crid's (SIGPIPE, maybe SIGCHLD, which
 * would make the kernel reap our children) are put back to the default.
 * Handlers are left alone (a sanitizer's, in the ASan build). SIGPIPE is
 * ignored: a control client or the sync pipe may go away. */
static void reset_signals(void)
{
	sigset_t mask;

	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;

		if (sig != SIGPIPE && sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			signal(sig, SIG_DFL);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_SETMASK, &mask, NULL);
}

/* stdin and stdout on /dev/null, stderr (the shim's own log lines and,
 * in the ASan build, sanitizer reports) appended to DIR/shim.log: nothing
 * of crid's stays open here, so crid never waits on the monitor. */
static int setup_stdio(int dir_fd, struct crid_err *err)
{
	_cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	_cleanup_close_ int log_fd =
		openat(dir_fd, CRID_SHIM_LOG_FILE, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);

	if (null_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open /dev/null");
	if (log_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", CRID_SHIM_LOG_FILE);
	if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "set up stdio");
	return 0;
}

/* name.tmp, written, then renamed over name: readers see the whole file or
 * none. No fsync: the directory is on the run root, which does not outlive
 * a reboot, and the rename is all a crash of crid or of the shim needs. */
static int write_file_atomic(int dir_fd, const char *name, const char *data, struct crid_err *err)
{
	char tmp[64];
	_cleanup_close_ int fd = -1;
	int r;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create %s", tmp);
	r = write_all(fd, data, strlen(data));
	if (close(take_fd(&fd)) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dir_fd, tmp, 0);
		return crid_err_set(err, CRID_INTERNAL, -r, "write %s", name);
	}
	return 0;
}

/* With --log-dir the log is opened relative to that directory, beneath
 * it and through no symlink: a link planted in the pod's log directory
 * must not send the container's output to another file. */
static int open_log(const struct crid_shim_options *o)
{
	struct open_how how = { .flags = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
				.mode = 0640,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	const char *rel;
	int dir_fd, fd, saved;

	if (!o->log_dir)
		return open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	rel = o->log_path + strlen(o->log_dir);
	while (*rel == '/')
		rel++;
	dir_fd = open(o->log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return -1;
	fd = (int)syscall(SYS_openat2, dir_fd, rel, &how, sizeof(how));
	saved = errno;
	close(dir_fd);
	errno = saved;
	return fd;
}

int crid_shim_listen(int dir_fd, const char *name, int *out, struct crid_err *err)
{
	return crid_shim_listen_type(dir_fd, name, SOCK_STREAM, out, err);
}

int crid_shim_listen_type(int dir_fd, const char *name, int type, int *out, struct crid_err *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	mode_t old_umask;
	int r;

	/* Bound by its name relative to the working directory, the state
	 * directory: no limit on the directory's path length. */
	if (strlen(name) >= sizeof(addr.sun_path))
		return crid_err_set(err, CRID_INTERNAL, ENAMETOOLONG, "socket %s", name);
	if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT)
		return crid_err_set(err, CRID_INTERNAL, errno, "remove stale socket %s", name);
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create socket %s", name);
	memcpy(addr.sun_path, name, strlen(name) + 1);
	old_umask = umask(0177); /* bound 0600: no window where others may connect */
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (r < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "bind %s", name);
	if (listen(fd, CRID_SHIM_MAX_CLIENTS) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "listen on %s", name);
	*out = take_fd(&fd);
	return 0;
}

int crid_shim_setup(struct crid_shim *s, const struct crid_shim_options *o, struct crid_err *err)
{
	char pid_line[32];
	sigset_t chld;
	int r;

	memset(s, 0, sizeof(*s));
	s->opts = o;
	s->sync_fd = o->sync_fd;
	s->dir_fd = s->signal_fd = s->ctl_fd = s->log_fd = s->attach_fd = -1;
	s->out_fd = s->err_fd = s->stdin_fd = -1;
	s->container_pid = -1;
	s->start_stdio[0] = s->start_stdio[1] = s->start_stdio[2] = s->waiter_out = -1;
	for (size_t i = 0; i < CRID_SHIM_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	for (size_t i = 0; i < CRID_SHIM_MAX_ATTACH; i++)
		s->attach[i].fd = -1;

	/* Nothing inherited from crid but the sync pipe, and that one is
	 * not handed on to the runtime and the container. */
	ensure_stdio_open();
	if (s->sync_fd > STDERR_FILENO + 1)
		close_range(STDERR_FILENO + 1, (unsigned)s->sync_fd - 1, 0);
	close_range((unsigned)s->sync_fd + 1, ~0U, 0);
	if (fcntl(s->sync_fd, F_SETFD, FD_CLOEXEC) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "sync fd %d", s->sync_fd);
	reset_signals();
	/* The container's init is re-parented here when the runtime exits. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "become a subreaper");

	s->dir_fd = open(o->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "state directory %s", o->state_dir);
	if (fchdir(s->dir_fd) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "chdir to %s", o->state_dir);
	r = setup_stdio(s->dir_fd, err);
	if (r < 0)
		return crid_err_wrap(err, "state directory %s: ", o->state_dir);
	crid_log_setup(CRID_LOG_INFO, CRID_LOG_JSON); /* like the runtime's lines in shim.log */
	s->logging = true;

	snprintf(pid_line, sizeof(pid_line), "%d\n", (int)getpid());
	r = write_file_atomic(s->dir_fd, CRID_SHIM_PID_FILE, pid_line, err);
	if (r < 0)
		return crid_err_wrap(err, "state directory %s: ", o->state_dir);

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	s->signal_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->signal_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "signalfd");

	/* Only the header is written: the line buffers' pages stay untouched
	 * until a partial line needs them. */
	s->out = malloc(sizeof(*s->out));
	s->err = malloc(sizeof(*s->err));
	if (!s->out || !s->err)
		return crid_err_nomem(err, "log buffers");
	crid_cri_log_stream_init(s->out, CRID_CRI_LOG_STDOUT);
	crid_cri_log_stream_init(s->err, CRID_CRI_LOG_STDERR);

	s->log_fd = open_log(o);
	if (s->log_fd < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "open log file %s", o->log_path);
	r = crid_shim_listen(s->dir_fd, CRID_SHIM_CONTROL_SOCKET, &s->ctl_fd, err);
	if (r < 0)
		return crid_err_wrap(err, "state directory %s: ", o->state_dir);
	r = crid_shim_attach_setup(s, err);
	if (r < 0)
		return crid_err_wrap(err, "state directory %s: ", o->state_dir);
	return 0;
}

void crid_shim_free(struct crid_shim *s)
{
	crid_shim_attach_free(s);
	for (size_t i = 0; i < CRID_SHIM_MAX_CLIENTS; i++)
		close_fd(&s->clients[i].fd);
	close_fd(&s->sync_fd);
	close_fd(&s->out_fd);
	close_fd(&s->err_fd);
	close_fd(&s->stdin_fd);
	for (int i = 0; i < 3; i++)
		close_fd(&s->start_stdio[i]);
	close_fd(&s->waiter_out);
	if (s->ctl_fd >= 0) /* nothing serves it any more */
		unlinkat(s->dir_fd, CRID_SHIM_CONTROL_SOCKET, 0);
	close_fd(&s->ctl_fd);
	close_fd(&s->log_fd);
	close_fd(&s->signal_fd);
	close_fd(&s->dir_fd);
	free(s->out);
	free(s->err);
	s->out = s->err = NULL;
}

/* ---- the container's output ---- */

static int writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* One record, one writev: with O_APPEND, readers of the log (the
 * kubelet) see whole records. */
static int emit_to_log(const struct crid_cri_log_record *rec, void *ctx)
{
	struct crid_shim *s = ctx;
	struct iovec iov[3] = {
		{ .iov_base = (void *)rec->head, .iov_len = rec->head_len },
		{ .iov_base = (void *)rec->content, .iov_len = rec->content_len },
		{ .iov_base = "\n", .iov_len = 1 },
	};
	int r = writev_all(s->log_fd, iov, 3);

	if (r < 0 && !s->log_failed) {
		/* Said once until the next reopen; output goes on being read. */
		s->log_failed = true;
		log_error("cannot write the container log; output is dropped until it works again", "path",
			  s->opts->log_path, "error", strerror(-r));
	}
	return r;
}

static void end_stream(struct crid_shim *s, int *fd, struct crid_cri_log_stream *st)
{
	crid_cri_log_flush(st, now_ns(), emit_to_log, s);
	close_fd(fd);
}

/* Reads what one read gives; at the end of the stream (EOF, or EIO from
 * a pty whose other side is closed) flushes the partial line and closes. */
static void read_stream(struct crid_shim *s, int *fd, struct crid_cri_log_stream *st)
{
	char buf[READ_CHUNK];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n > 0) {
		crid_cri_log_feed(st, buf, (size_t)n, now_ns(), emit_to_log, s);
		crid_shim_attach_output(s, st->kind, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0 && errno != EIO)
		log_warn("cannot read container output", "stream", crid_cri_log_stream_name(st->kind), "error",
			 strerror(errno));
	end_stream(s, fd, st);
}

/* At the end: takes what the pipe holds now (bounded: a process the init
 * left behind may write on), then ends the stream. */
static void drain_stream(struct crid_shim *s, int *fd, struct crid_cri_log_stream *st)
{
	char buf[READ_CHUNK];
	size_t total = 0;

	while (*fd >= 0 && total < FINAL_DRAIN_MAX) {
		ssize_t n = read(*fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		crid_cri_log_feed(st, buf, (size_t)n, now_ns(), emit_to_log, s);
		crid_shim_attach_output(s, st->kind, buf, (size_t)n);
		total += (size_t)n;
	}
	if (*fd >= 0)
		end_stream(s, fd, st);
}

/* ---- children ---- */

static void reap_children(struct crid_shim *s)
{
	struct signalfd_siginfo si;

	while (read(s->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			break;
		/* In a sandbox the runtime's wait tells the init's exit. */
		if (s->opts->subcontainer && s->waiter_pid > 0 && pid == s->waiter_pid && !s->exited)
			status = crid_shim_sub_exit_status(s, status);
		else if (s->opts->subcontainer || pid != s->container_pid)
			continue;
		if (!s->exited) {
			s->exited = true;
			s->exit_status = status;
			s->exited_at_ns = now_ns();
			s->drain_deadline_ns = monotonic_ns() + DRAIN_AFTER_EXIT_NS;
			close_fd(&s->stdin_fd); /* nobody reads it any more */
		}
	}
}

/* ---- control socket ---- */

static void client_close(struct crid_shim_client *c)
{
	close_fd(&c->fd);
	c->len = 0;
}

static void client_answer(struct crid_shim_client *c, const char *answer)
{
	/* A few bytes into an empty socket buffer: never blocks; a client
	 * that went away only loses its answer. */
	if (send(c->fd, answer, strlen(answer), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_warn("cannot answer a control request", "error", strerror(errno));
	client_close(c);
}

/* The new file exists before "ok" is sent; on failure the old one stays
 * in use. Buffered partial lines continue in the new file. */
static void reopen_log(struct crid_shim *s, struct crid_shim_client *c)
{
	char answer[CRID_ERR_MSG_MAX];
	int fd = open_log(s->opts);

	if (fd < 0) {
		int e = errno;

		snprintf(answer, sizeof(answer) - 1, "error reopen %s: %s", s->opts->log_path, strerror(e));
		log_error("cannot reopen the container log", "path", s->opts->log_path, "error", strerror(e));
		strcat(answer, "\n");
		client_answer(c, answer);
		return;
	}
	close(s->log_fd);
	s->log_fd = fd;
	s->log_failed = false;
	client_answer(c, "ok\n");
}

static void handle_request(struct crid_shim *s, struct crid_shim_client *c)
{
	size_t len = c->len;

	c->buf[len] = '\0';
	if (len > 0 && c->buf[len - 1] == '\r')
		c->buf[--len] = '\0';
	if (strcmp(c->buf, "reopen") == 0) {
		reopen_log(s, c);
	} else if (strcmp(c->buf, "start") == 0 && s->opts->subcontainer) {
		char answer[CRID_ERR_MSG_MAX + 8];

		crid_shim_sub_start(s, answer, sizeof(answer) - 1);
		strcat(answer, "\n");
		client_answer(c, answer);
	} else {
		client_answer(c, "error unknown command\n");
	}
}

static void client_read(struct crid_shim *s, struct crid_shim_client *c)
{
	/* One byte of the buffer stays free for the NUL. */
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	char *nl;

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_close(c);
		return;
	}
	if (n == 0) { /* the line's newline is optional at the end */
		if (c->len > 0)
			handle_request(s, c);
		else
			client_close(c);
		return;
	}
	c->len += (size_t)n;
	nl = memchr(c->buf, '\n', c->len);
	if (nl) {
		c->len = (size_t)(nl - c->buf);
		handle_request(s, c);
	} else if (c->len == sizeof(c->buf) - 1) {
		client_answer(c, "error request too long\n");
	}
}

static void accept_clients(struct crid_shim *s)
{
	for (size_t i = 0; i < CRID_SHIM_MAX_CLIENTS; i++) {
		struct crid_shim_client *c = &s->clients[i];

		if (c->fd >= 0)
			continue;
		c->fd = accept4(s->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c->fd < 0)
			return; /* EAGAIN: none waiting; others: the client is gone */
		c->len = 0;
		c->deadline_ns = monotonic_ns() + CLIENT_TIMEOUT_NS;
	}
}

/* ---- the loop ---- */

static int write_exit_file(struct crid_shim *s)
{
	struct crid_err err;
	char json[128];
	int status = s->exit_status, code, sig = 0;

	if (WIFSIGNALED(status)) {
		sig = WTERMSIG(status);
		code = 128 + sig;
	} else {
		code = WEXITSTATUS(status);
	}
	snprintf(json, sizeof(json), "{\"exit_code\": %d, \"exited_at\": %lld, \"signal\": %d}\n", code,
		 (long long)s->exited_at_ns, sig);
	if (write_file_atomic(s->dir_fd, CRID_SHIM_EXIT_FILE, json, &err) < 0) {
		log_error("cannot record the container's exit", "id", s->opts->id, "error", err.msg);
		return -1;
	}
	{
		char code_s[16], sig_s[16];

		snprintf(code_s, sizeof(code_s), "%d", code);
		snprintf(sig_s, sizeof(sig_s), "%d", sig);
		log_info("container exited", "id", s->opts->id, "exit_code", code_s, "signal", sig_s);
	}
	return 0;
}

enum {
	SLOT_SIGNAL,
	SLOT_STDOUT,
	SLOT_STDERR,
	SLOT_CONTROL,
	SLOT_CLIENTS,
	SLOT_ATTACH = SLOT_CLIENTS + CRID_SHIM_MAX_CLIENTS,
	N_SLOTS = SLOT_ATTACH + CRID_SHIM_ATTACH_POLL_SLOTS,
};

int crid_shim_run(struct crid_shim *s)
{
	struct pollfd pfd[N_SLOTS];
	bool poll_failed = false;
	int r;

	reap_children(s); /* the init may have died before we knew its pid */
	for (;;) {
		int64_t now = monotonic_ns(), wait_ns = -1;
		bool room = false;
		int timeout_ms, n;

		if (s->exited && ((s->out_fd < 0 && s->err_fd < 0) || now >= s->drain_deadline_ns))
			break;
		if (s->exited)
			wait_ns = s->drain_deadline_ns - now;
		for (size_t i = 0; i < CRID_SHIM_MAX_CLIENTS; i++) {
			struct crid_shim_client *c = &s->clients[i];

			if (c->fd >= 0 && now >= c->deadline_ns)
				client_close(c); /* said nothing in time */
			if (c->fd < 0) {
				room = true;
			} else if (wait_ns < 0 || c->deadline_ns - now < wait_ns) {
				wait_ns = c->deadline_ns - now;
			}
			pfd[SLOT_CLIENTS + i] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
		}
		pfd[SLOT_SIGNAL] = (struct pollfd){ .fd = s->signal_fd, .events = POLLIN };
		pfd[SLOT_STDOUT] = (struct pollfd){ .fd = s->out_fd, .events = POLLIN };
		pfd[SLOT_STDERR] = (struct pollfd){ .fd = s->err_fd, .events = POLLIN };
		pfd[SLOT_CONTROL] = (struct pollfd){ .fd = room ? s->ctl_fd : -1, .events = POLLIN };
		crid_shim_attach_poll_fill(s, pfd + SLOT_ATTACH);
		timeout_ms = wait_ns < 0 ? -1 : (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS);

		n = poll(pfd, CRID_ARRAY_SIZE(pfd), timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (!poll_failed) /* ENOMEM: try again, a little later */
				log_error("poll failed", "error", strerror(errno));
			poll_failed = true;
			usleep(100 * 1000);
			continue;
		}
		if (pfd[SLOT_SIGNAL].revents)
			reap_children(s);
		if (pfd[SLOT_STDOUT].revents)
			read_stream(s, &s->out_fd, s->out);
		if (pfd[SLOT_STDERR].revents)
			read_stream(s, &s->err_fd, s->err);
		if (pfd[SLOT_CONTROL].revents)
			accept_clients(s);
		for (size_t i = 0; i < CRID_SHIM_MAX_CLIENTS; i++) {
			if (pfd[SLOT_CLIENTS + i].revents && s->clients[i].fd == pfd[SLOT_CLIENTS + i].fd)
				client_read(s, &s->clients[i]);
		}
		crid_shim_attach_poll_done(s, pfd + SLOT_ATTACH);
	}
	/* Whatever is still in the pipes goes in before the exit is told. */
	drain_stream(s, &s->out_fd, s->out);
	drain_stream(s, &s->err_fd, s->err);
	r = write_exit_file(s);
	return r < 0 ? 1 : 0;
}
