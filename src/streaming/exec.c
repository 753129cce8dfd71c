/* The runtime's "exec" behind a streaming session (stream_internal.h):
 * the process object in a file, pipes for stdin, stdout and stderr, or
 * with a TTY a console socket on which the runtime sends the pty master;
 * and at the end, when the client went away, the whole process tree
 * killed. Files live under <run_root>/streams with random names. */
#include "streaming/stream_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/proctree.h"
#include "common/unix_socket.h"
#include "oci/oci_runtime.h"
#include "shim/protocol.h"

/* The runtime must hand over the terminal within this. */
#define CONSOLE_TIMEOUT_MS 30000
#define KILL_WAIT_MS 2000

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
}

static int write_file(const char *path, const char *text, struct crid_err *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	size_t len = strlen(text);

	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create %s", path);
	while (len > 0) {
		ssize_t n = write(fd, text, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "write %s", path);
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

static int listen_console(const char *path, int *out, struct crid_err *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(path) >= sizeof(addr.sun_path))
		return crid_err_set(err, CRID_INTERNAL, ENAMETOOLONG, "console socket %s", path);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "console socket");
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "console socket %s", path);
	*out = take_fd(&fd);
	return 0;
}

/* Waits for the runtime to connect and send the pty master, or to fail. */
static int receive_console(int listen_fd, struct crid_exec_proc *p, struct crid_err *err)
{
	_cleanup_close_ int conn = -1;
	struct pollfd pf[2] = { { .fd = listen_fd, .events = POLLIN }, { .fd = p->pidfd, .events = POLLIN } };
	int master, r;

	if (poll(pf, 2, CONSOLE_TIMEOUT_MS) <= 0 || !(pf[0].revents & POLLIN))
		return crid_err_set(err, CRID_INTERNAL, 0, "the runtime did not hand over the terminal");
	conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "accept the runtime's console connection");
	struct pollfd cp = { .fd = conn, .events = POLLIN };

	if (poll(&cp, 1, CONSOLE_TIMEOUT_MS) <= 0)
		return crid_err_set(err, CRID_INTERNAL, 0, "the runtime sent no terminal");
	if ((r = crid_unix_recv_fd(conn, &master)) < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "receive the terminal from the runtime");
	if (master < 0)
		return crid_err_set(err, CRID_INTERNAL, 0, "the runtime sent no terminal file descriptor");
	p->in_fd = p->out_fd = master;
	return 0;
}

int crid_exec_start(const struct crid_stream_request *req, const char *tmp_dir, struct crid_exec_proc *p,
		    struct crid_err *err)
{
	char rnd[17], console_path[256];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	_cleanup_close_ int console_fd = -1;
	int r;

	p->pid = -1;
	if ((r = crid_random_hex(rnd, 16, err)) < 0)
		return r;
	snprintf(p->process_path, sizeof(p->process_path), "%s/exec-%s.json", tmp_dir, rnd);
	snprintf(p->pid_path, sizeof(p->pid_path), "%s/exec-%s.pid", tmp_dir, rnd);
	snprintf(console_path, sizeof(console_path), "%s/exec-%s.sock", tmp_dir, rnd);
	if ((r = write_file(p->process_path, req->process, err)) < 0)
		return r;
	if (req->tty) {
		if ((r = listen_console(console_path, &console_fd, err)) < 0)
			return r;
		if (pipe2(errp, O_CLOEXEC) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "exec: pipe");
	} else if ((req->in && pipe2(in, O_CLOEXEC) < 0) || (req->out && pipe2(out, O_CLOEXEC) < 0) ||
		   (req->err && pipe2(errp, O_CLOEXEC) < 0)) {
		r = crid_err_set(err, CRID_INTERNAL, errno, "exec: pipe");
		goto fail;
	}
	r = crid_oci_exec_spawn(req->runtime_path, req->runtime_root, req->runtime_args, req->id, p->process_path, p->pid_path,
				req->tty ? console_path : NULL, in[0], out[1], errp[1], &p->pid, err);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&errp[1]);
	if (r < 0) {
		p->pid = -1;
		goto fail;
	}
	p->pidfd = pidfd_open(p->pid, 0);
	if (p->pidfd < 0) {
		r = crid_err_set(err, CRID_INTERNAL, errno, "exec: pidfd_open");
		goto fail;
	}
	if (req->tty) {
		p->rt_err_fd = errp[0];
		errp[0] = -1;
		set_nonblock(p->rt_err_fd);
		r = receive_console(console_fd, p, err);
		unlink(console_path);
		if (r < 0) {
			char why[512];
			ssize_t n = read(p->rt_err_fd, why, sizeof(why) - 1);

			if (n > 0) {
				why[n] = '\0';
				why[strcspn(why, "\n")] = '\0';
				crid_err_wrap(err, "%s: ", why);
			}
			goto fail;
		}
		set_nonblock(p->out_fd);
	} else {
		p->in_fd = in[1];
		p->out_fd = out[0];
		p->err_fd = errp[0];
		in[1] = out[0] = errp[0] = -1;
		if (p->in_fd >= 0)
			set_nonblock(p->in_fd);
		if (p->out_fd >= 0)
			set_nonblock(p->out_fd);
		if (p->err_fd >= 0)
			set_nonblock(p->err_fd);
	}
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&errp[i]);
	}
	unlink(console_path);
	crid_exec_kill(p);
	return r;
}

void crid_exec_reap(struct crid_exec_proc *p)
{
	if (p->pid <= 0 || p->exited)
		return;
	if (waitpid(p->pid, &p->status, WNOHANG) == p->pid)
		p->exited = true;
}

static pid_t read_pid(const char *path)
{
	char buf[32] = { 0 };
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	long v = 0;

	if (fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0)
		v = strtol(buf, NULL, 10);
	return v > 1 && v < 0x3fffffff ? (pid_t)v : 0;
}

void crid_exec_kill(struct crid_exec_proc *p)
{
	pid_t roots[2];

	if (p->pid <= 0)
		return;
	crid_exec_reap(p);
	if (!p->exited) {
		roots[0] = p->pid;
		roots[1] = read_pid(p->pid_path);
		crid_kill_tree(roots, 2, KILL_WAIT_MS);
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
			;
		p->exited = true;
	}
}

void crid_exec_cleanup(struct crid_exec_proc *p)
{
	crid_exec_kill(p);
	if (p->out_fd == p->in_fd)
		p->in_fd = -1;
	close_fd(&p->in_fd);
	close_fd(&p->out_fd);
	close_fd(&p->err_fd);
	close_fd(&p->rt_err_fd);
	close_fd(&p->pidfd);
	if (p->process_path[0])
		unlink(p->process_path);
	if (p->pid_path[0])
		unlink(p->pid_path);
	p->process_path[0] = p->pid_path[0] = '\0';
	p->pid = -1;
}

int crid_attach_connect(const char *dir, int *fd, struct crid_err *err)
{
	int s = crid_unix_connect_in(dir, CRID_SHIM_ATTACH_SOCKET, SOCK_SEQPACKET | SOCK_NONBLOCK);

	if (s == -ENOENT || s == -ECONNREFUSED)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, -s,
				    "attach: the container's crid-shim does not serve attach");
	if (s < 0)
		return crid_err_set(err, CRID_INTERNAL, -s, "attach: container directory %s", dir);
	*fd = s;
	return 0;
}
