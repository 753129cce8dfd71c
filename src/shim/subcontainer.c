/* A container that joins its pod's sandbox (shim.h, --subcontainer): gVisor
 * gives such a container the stdio of "<runtime> start", and its init is
 * no process of the host, so the shim starts it with the ends of its pipes
 * and learns the exit from "<runtime> wait". */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/spawn.h"
#include "shim/protocol.h"

/* The runtime's global flags and then the command's words. */
static char **runtime_argv(const struct crid_shim_options *o, const char *verb)
{
	char **argv = calloc(10 + o->n_runtime_args, sizeof(*argv));
	size_t n = 0;

	if (!argv)
		return NULL;
	argv[n++] = (char *)o->runtime;
	argv[n++] = "--root";
	argv[n++] = (char *)o->runtime_root;
	for (size_t i = 0; i < o->n_runtime_args; i++)
		argv[n++] = (char *)o->runtime_args[i];
	argv[n++] = "--log";
	argv[n++] = CRID_SHIM_LOG_FILE; /* relative to the state directory, the working directory */
	argv[n++] = "--log-format";
	argv[n++] = "json";
	argv[n++] = (char *)verb;
	argv[n++] = (char *)o->id;
	argv[n] = NULL;
	return argv;
}

static int spawn(pid_t *pid, char **argv, const int from[3])
{
	struct crid_spawn sp;
	int r = crid_spawn_init(&sp, 0);

	if (r != 0)
		return r;
	for (int target = 0; r == 0 && target < 3; target++)
		r = posix_spawn_file_actions_adddup2(&sp.actions, from[target], target);
	if (r == 0)
		r = posix_spawn(pid, argv[0], &sp.actions, &sp.attr, argv, environ);
	crid_spawn_destroy(&sp);
	return r;
}

/* The last "msg" of the runtime's JSON log lines written after offset. */
static void runtime_complaint(int dir_fd, off_t offset, char *out, size_t size)
{
	_cleanup_close_ int fd = openat(dir_fd, CRID_SHIM_LOG_FILE, O_RDONLY | O_CLOEXEC);
	char buf[8192];
	ssize_t n;

	snprintf(out, size, "no message from the runtime");
	if (fd < 0)
		return;
	{
		struct stat st;

		if (fstat(fd, &st) == 0 && st.st_size - offset > (off_t)sizeof(buf) - 1)
			offset = st.st_size - (off_t)sizeof(buf) + 1;
	}
	n = pread(fd, buf, sizeof(buf) - 1, offset);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *p = buf; (p = strstr(p, "\"msg\":\"")); p++) {
		char *start = p + 7, *end = start;

		while (*end && *end != '"')
			end += end[0] == '\\' && end[1] ? 2 : 1;
		snprintf(out, size, "%.*s", (int)(end - start), start);
	}
}

static void close_start_stdio(struct crid_shim *s)
{
	for (int i = 0; i < 3; i++) {
		if (s->start_stdio[i] >= 0)
			close(s->start_stdio[i]);
		s->start_stdio[i] = -1;
	}
}

void crid_shim_sub_start(struct crid_shim *s, char *answer, size_t size)
{
	const struct crid_shim_options *o = s->opts;
	_cleanup_free_ char **start_argv = runtime_argv(o, "start");
	_cleanup_free_ char **wait_argv = runtime_argv(o, "wait");
	int pipe_fds[2] = { -1, -1 }, null_fd, from[3];
	struct stat st;
	off_t offset;
	pid_t pid;
	int status, r;

	if (s->started || s->start_stdio[1] < 0) {
		snprintf(answer, size, "error the container was started already");
		return;
	}
	if (!start_argv || !wait_argv) {
		snprintf(answer, size, "error out of memory");
		return;
	}
	offset = fstat(STDERR_FILENO, &st) == 0 ? st.st_size : 0;
	r = spawn(&pid, start_argv, s->start_stdio);
	if (r != 0) {
		snprintf(answer, size, "error run %s: %s", o->runtime, strerror(r));
		return;
	}
	/* A second or so; the container's output waits in its pipes. */
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 0xff00;
			break;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char why[CRID_ERR_MSG_MAX - 16];

		runtime_complaint(s->dir_fd, offset, why, sizeof(why));
		snprintf(answer, size, "error %s", why);
		return;
	}
	s->started = true;
	/* The sandbox holds the container's ends now: EOF comes when it ends. */
	close_start_stdio(s);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0 || pipe2(pipe_fds, O_CLOEXEC) < 0) {
		log_error("cannot wait for the container", "id", o->id, "error", strerror(errno));
	} else {
		from[0] = null_fd;
		from[1] = pipe_fds[1];
		from[2] = STDERR_FILENO; /* shim.log */
		r = spawn(&s->waiter_pid, wait_argv, from);
		if (r != 0)
			log_error("cannot run the runtime's wait", "id", o->id, "error", strerror(r));
		else
			s->waiter_out = pipe_fds[0], pipe_fds[0] = -1;
	}
	if (null_fd >= 0)
		close(null_fd);
	for (int i = 0; i < 2; i++)
		if (pipe_fds[i] >= 0)
			close(pipe_fds[i]);
	snprintf(answer, size, "ok");
}

int crid_shim_sub_exit_status(struct crid_shim *s, int waiter_status)
{
	char buf[512];
	ssize_t n = -1;
	const char *p;
	long code;

	if (s->waiter_out >= 0) {
		n = read(s->waiter_out, buf, sizeof(buf) - 1); /* a short line, written before it exited */
		close(s->waiter_out);
		s->waiter_out = -1;
	}
	if (n <= 0 || !WIFEXITED(waiter_status) || WEXITSTATUS(waiter_status) != 0) {
		log_error("the runtime's wait failed: the exit code is unknown", "id", s->opts->id);
		return 255 << 8;
	}
	buf[n] = '\0';
	p = strstr(buf, "\"exitStatus\":");
	code = p ? strtol(p + 13, NULL, 10) : 255;
	/* gVisor reports a signal's death as 128 + the signal. */
	if (code > 128 && code < 128 + NSIG)
		return (int)(code - 128);
	return (int)((code & 0xff) << 8);
}
