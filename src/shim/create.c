/* "<runtime> create" for the monitor (shim.h). The runtime gets the
 * container's stdio as its own (runc and crun hand theirs to the
 * container's process): pipes whose read ends the shim keeps, or with
 * --tty a console socket on which the runtime sends the pty master. So
 * that the runtime's own complaints are not taken for the container's
 * output, they are asked for in DIR/shim.log (--log, JSON lines), and a
 * failed create is explained by the last error line found there. */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spawn.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/unix_socket.h"
#include "shim/protocol.h"

extern char **environ;

#define CONSOLE_SOCKET "console"
/* How much of the end of shim.log is searched for the runtime's error. */
#define RUNTIME_LOG_TAIL (64 * 1024)
/* How much of the runtime's stderr is kept when its log says nothing. */
#define RUNTIME_STDERR_MAX 4096
#define MESSAGE_MAX 900

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int make_pipe(int *rd, int *wr)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	*rd = fds[0];
	*wr = fds[1];
	return 0;
}

static int set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* ---- the runtime's message ---- */

static void put_utf8(char *out, size_t size, size_t *o, unsigned cp)
{
	char enc[3];
	size_t n;

	if (cp < 0x20) {
		enc[0] = ' ';
		n = 1;
	} else if (cp < 0x80) {
		enc[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		enc[0] = (char)(0xc0 | (cp >> 6));
		enc[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp >= 0xd800 && cp < 0xe000) {
		enc[0] = '?'; /* half a surrogate pair: not worth more */
		n = 1;
	} else {
		enc[0] = (char)(0xe0 | (cp >> 12));
		enc[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		enc[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	if (*o + n < size) {
		memcpy(out + *o, enc, n);
		*o += n;
	}
}

/* The string value of "key" in a one-line JSON object, decoded into out.
 * Enough for the flat objects runc, crun and crid log; not a parser. */
static bool json_string_field(const char *line, const char *key, char *out, size_t size)
{
	size_t key_len = strlen(key);

	for (const char *p = strchr(line, '"'); p; p = strchr(p + 1, '"')) {
		const char *v;
		size_t o = 0;

		if ((p > line && p[-1] == '\\') || strncmp(p + 1, key, key_len) != 0 || p[1 + key_len] != '"')
			continue;
		v = p + 2 + key_len;
		v += strspn(v, " \t");
		if (*v != ':')
			continue;
		v++;
		v += strspn(v, " \t");
		if (*v != '"')
			continue;
		for (v++; *v && *v != '"'; v++) {
			unsigned cp = (unsigned char)*v;

			if (*v == '\\' && v[1]) {
				v++;
				switch (*v) {
				case 'u': {
					char hex[5] = { 0 };
					char *end;

					memcpy(hex, v + 1, strnlen(v + 1, 4));
					cp = (unsigned)strtoul(hex, &end, 16);
					if (end != hex + 4)
						return false;
					v += 4;
					break;
				}
				case 'n':
				case 'r':
				case 't':
				case 'b':
				case 'f':
					cp = ' ';
					break;
				default: /* '"', '\\', '/' */
					cp = (unsigned char)*v;
				}
				put_utf8(out, size, &o, cp);
			} else if (o + 1 < size) {
				out[o++] = cp < 0x20 ? ' ' : *v;
			}
		}
		out[o] = '\0';
		return true;
	}
	return false;
}

/* A line's message: "msg" of a JSON line, else the line itself. */
static void line_message(const char *line, char *out, size_t size)
{
	size_t len;

	if (line[0] == '{' && json_string_field(line, "msg", out, size) && out[0])
		return;
	len = strnlen(line, size - 1); /* cut when long */
	memcpy(out, line, len);
	out[len] = '\0';
}

/* From DIR/shim.log, what the runtime wrote there since offset: the last
 * line at level "error", else the last line. */
static bool runtime_log_message(int dir_fd, off_t offset, char *out, size_t size)
{
	_cleanup_close_ int fd = openat(dir_fd, CRID_SHIM_LOG_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_free_ char *buf = NULL;
	const char *last = NULL, *last_error = NULL;
	struct stat st;
	size_t len = 0;

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= offset)
		return false;
	if (st.st_size - offset > RUNTIME_LOG_TAIL)
		offset = st.st_size - RUNTIME_LOG_TAIL;
	buf = malloc(RUNTIME_LOG_TAIL + 1);
	if (!buf)
		return false;
	while (len < RUNTIME_LOG_TAIL) {
		ssize_t n = pread(fd, buf + len, RUNTIME_LOG_TAIL - len, offset + (off_t)len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	for (char *line = buf, *next; line && *line; line = next) {
		char level[16];

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!line[strspn(line, " \t\r")])
			continue;
		last = line;
		if (line[0] == '{' && json_string_field(line, "level", level, sizeof(level)) &&
		    (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0))
			last_error = line;
	}
	if (!last)
		return false;
	line_message(last_error ? last_error : last, out, size);
	return out[0] != '\0';
}

/* The runtime's stderr, when its log was empty (it failed before it could
 * write one): the last non-empty line. */
static bool runtime_stderr_message(int fd, char *out, size_t size)
{
	char buf[RUNTIME_STDERR_MAX + 1];
	size_t len = 0;
	char *last = NULL;

	if (fd < 0 || set_nonblock(fd) < 0)
		return false;
	while (len < RUNTIME_STDERR_MAX) {
		ssize_t n = read(fd, buf + len, RUNTIME_STDERR_MAX - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (line[strspn(line, " \t\r")])
			last = line;
	}
	if (!last)
		return false;
	line_message(last, out, size);
	return true;
}

/* ---- running the runtime ---- */

/* Nothing of ours runs between fork and exec. The runtime (and through
 * it the container) gets an empty signal mask and default dispositions:
 * the shim blocks SIGCHLD and ignores SIGPIPE. Only 0-2 are inherited:
 * every other fd is close-on-exec. Returns an errno value, 0 on success. */
static int spawn_runtime(pid_t *pid, char *const argv[], int in_fd, int out_fd, int err_fd)
{
	const int from[3] = { in_fd, out_fd, err_fd };
	struct crid_spawn sp;
	int r = crid_spawn_init(&sp, 0);

	if (r != 0)
		return r;
	/* A source that already is its target is inherited as is (0-2 are
	 * not close-on-exec); every other source is above 2. */
	for (int target = 0; r == 0 && target < 3; target++) {
		if (from[target] != target)
			r = posix_spawn_file_actions_adddup2(&sp.actions, from[target], target);
	}
	if (r == 0)
		r = posix_spawn(pid, argv[0], &sp.actions, &sp.attr, argv, environ);
	crid_spawn_destroy(&sp);
	return r;
}

static int wait_pid(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int read_pid_file(int dir_fd, const char *name, pid_t *out, struct crid_err *err)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char buf[32], *end;
	ssize_t n;
	long v;

	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "read %s", name);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "read %s", name);
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || v <= 0 || v > 0x3fffffff)
		return crid_err_set(err, CRID_INTERNAL, 0, "%s holds no pid: \"%.20s\"", name, buf);
	*out = (pid_t)v;
	return 0;
}

/* Takes the pty master the runtime sent on the console socket. It has
 * exited by now, so its connection and message are queued or never came. */
static int receive_console(int listen_fd, int *master, struct crid_err *err)
{
	_cleanup_close_ int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	int r;

	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno == EAGAIN ? 0 : errno,
				    "the runtime did not connect to the console socket");
	if ((r = crid_unix_recv_fd(fd, master)) < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "receive the console from the runtime");
	if (*master < 0)
		return crid_err_set(err, CRID_INTERNAL, 0, "the runtime sent no console file descriptor");
	return 0;
}

/* The runtime's command line, protocol.h's, with --log so its messages
 * land in shim.log (after crid's own runtime args: the last one wins). */
static int build_argv(const struct crid_shim_options *o, const char *log_path, const char *pid_path,
		      const char *console_path, char ***out, struct crid_err *err)
{
	size_t n = 0;
	char **argv = calloc(20 + o->n_runtime_args, sizeof(*argv));

	if (!argv)
		return crid_err_nomem(err, "runtime arguments");
	argv[n++] = (char *)o->runtime;
	argv[n++] = "--root";
	argv[n++] = (char *)o->runtime_root;
	for (size_t i = 0; i < o->n_runtime_args; i++)
		argv[n++] = (char *)o->runtime_args[i];
	argv[n++] = "--log";
	argv[n++] = (char *)log_path;
	argv[n++] = "--log-format";
	argv[n++] = "json";
	argv[n++] = "create";
	argv[n++] = "--bundle";
	argv[n++] = (char *)o->bundle;
	argv[n++] = "--pid-file";
	argv[n++] = (char *)pid_path;
	if (console_path) {
		argv[n++] = "--console-socket";
		argv[n++] = (char *)console_path;
	}
	argv[n++] = (char *)o->id;
	argv[n] = NULL;
	*out = argv;
	return 0;
}

/* Why the runtime failed, as one line for crid. */
static int runtime_failed(struct crid_shim *s, off_t log_offset, int stderr_fd, int status, struct crid_err *err)
{
	char msg[MESSAGE_MAX];

	if (runtime_log_message(s->dir_fd, log_offset, msg, sizeof(msg)) ||
	    runtime_stderr_message(stderr_fd, msg, sizeof(msg)))
		return crid_err_set(err, CRID_INTERNAL, 0, "%s", msg);
	if (WIFSIGNALED(status))
		return crid_err_set(err, CRID_INTERNAL, 0, "%s create was killed by signal %d", s->opts->runtime,
				    WTERMSIG(status));
	return crid_err_set(err, CRID_INTERNAL, 0, "%s create exited with status %d and said nothing",
			    s->opts->runtime, WEXITSTATUS(status));
}

int crid_shim_create(struct crid_shim *s, struct crid_err *err)
{
	const struct crid_shim_options *o = s->opts;
	_cleanup_close_ int null_fd = -1, console_fd = -1;
	_cleanup_close_ int in_rd = -1, in_wr = -1, out_rd = -1, out_wr = -1, err_rd = -1, err_wr = -1;
	_cleanup_free_ char *log_path = NULL, *pid_path = NULL, *console_path = NULL;
	_cleanup_free_ char **argv = NULL;
	struct sockaddr_un addr;
	struct stat st;
	off_t log_offset;
	pid_t pid;
	int status, r;

	if (asprintf(&log_path, "%s/%s", o->state_dir, CRID_SHIM_LOG_FILE) < 0 ||
	    asprintf(&pid_path, "%s/%s", o->state_dir, CRID_SHIM_CONTAINER_PID_FILE) < 0 ||
	    (o->tty && asprintf(&console_path, "%s/%s", o->state_dir, CONSOLE_SOCKET) < 0)) {
		log_path = pid_path = console_path = NULL; /* undefined after a failed asprintf */
		return crid_err_nomem(err, "paths");
	}
	/* A stale pid file would name another process. */
	if (unlinkat(s->dir_fd, CRID_SHIM_CONTAINER_PID_FILE, 0) < 0 && errno != ENOENT)
		return crid_err_set(err, CRID_INTERNAL, errno, "remove stale %s", pid_path);

	if (o->tty) {
		/* The runtime dials the path: when the state directory's is too
		 * long for a socket address, it goes through our fd of it. */
		if (strlen(console_path) >= sizeof(addr.sun_path)) {
			free(console_path);
			if (asprintf(&console_path, "/proc/%d/fd/%d/%s", (int)getpid(), s->dir_fd, CONSOLE_SOCKET) < 0) {
				console_path = NULL;
				return crid_err_nomem(err, "paths");
			}
		}
		r = crid_shim_listen(s->dir_fd, CONSOLE_SOCKET, &console_fd, err);
		if (r < 0)
			return r;
	} else {
		if ((r = make_pipe(&out_rd, &out_wr)) < 0 || (r = make_pipe(&err_rd, &err_wr)) < 0)
			return crid_err_set(err, CRID_INTERNAL, -r, "create the container's stdio pipes");
	}
	if (o->stdin_open && !o->tty) {
		if ((r = make_pipe(&in_rd, &in_wr)) < 0)
			return crid_err_set(err, CRID_INTERNAL, -r, "create the container's stdin pipe");
	} else {
		null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null_fd < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "open /dev/null");
	}
	r = build_argv(o, log_path, pid_path, console_path, &argv, err);
	if (r < 0)
		return r;

	/* Only what the runtime writes from now on explains its failure. */
	log_offset = fstat(STDERR_FILENO, &st) == 0 ? st.st_size : 0;
	/* With --tty the runtime's stdout and stderr are not the container's:
	 * they go to shim.log with the rest of its messages. */
	r = spawn_runtime(&pid, argv, in_rd >= 0 ? in_rd : null_fd, o->tty ? STDERR_FILENO : out_wr,
			  o->tty ? STDERR_FILENO : err_wr);
	if (r != 0)
		return crid_err_set(err, CRID_INTERNAL, r, "run %s", o->runtime);
	if (o->subcontainer) {
		/* Its stdio is given at start (subcontainer.c). */
		s->start_stdio[0] = in_rd >= 0 ? take_fd(&in_rd) : take_fd(&null_fd);
		s->start_stdio[1] = take_fd(&out_wr);
		s->start_stdio[2] = take_fd(&err_wr);
	}
	/* The container holds the write ends now; EOF comes when it is done. */
	close_fd(&out_wr);
	close_fd(&err_wr);
	close_fd(&in_rd);
	r = wait_pid(pid, &status);
	if (r < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "wait for %s create", o->runtime);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return runtime_failed(s, log_offset, err_rd, status, err);

	r = read_pid_file(s->dir_fd, CRID_SHIM_CONTAINER_PID_FILE, &s->container_pid, err);
	if (r < 0)
		return crid_err_wrap(err, "%s create succeeded but: ", o->runtime);
	if (o->tty) {
		int master = -1;

		r = receive_console(console_fd, &master, err);
		unlinkat(s->dir_fd, CONSOLE_SOCKET, 0);
		if (r < 0) {
			/* Nobody would watch a container whose output goes nowhere. */
			kill(s->container_pid, SIGKILL);
			return crid_err_wrap(err, "%s create: ", o->runtime);
		}
		out_rd = master;
	}
	if ((r = set_nonblock(out_rd)) < 0 || (err_rd >= 0 && (r = set_nonblock(err_rd)) < 0)) {
		kill(s->container_pid, SIGKILL);
		return crid_err_set(err, CRID_INTERNAL, -r, "set up the container's output");
	}
	s->out_fd = take_fd(&out_rd);
	s->err_fd = take_fd(&err_rd);
	s->stdin_fd = take_fd(&in_wr);
	return 0;
}
