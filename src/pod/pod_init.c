/* The pod init (pod_ns.h): PID 1 of the PID namespace that a pod's
 * containers share. crid starts it without running any code of its own
 * between fork and exec: it posix_spawns itself ("crid --internal-pod-init
 * <dir>") as a launcher. The launcher, single-threaded after the exec,
 * joins the pod's pinned net/ipc/uts namespaces, unshares CLONE_NEWPID and
 * CLONE_NEWNS, confines itself (an empty read-only root, no capabilities,
 * not dumpable), forks the init (PID 1 there), records the init's pid in
 * "<dir>/init.pid", tells crid that pid on its stdout and exits.
 *
 * In a pod with a user namespace, the launcher joins that first, so the
 * PID namespace belongs to it and its containers can mount their /proc.
 *
 * So the init is never crid's child: it is reparented at once to the
 * nearest subreaper (or the host's PID 1), a crid that stops, crashes or
 * restarts leaves no zombie behind, and stopping it never depends on who
 * its parent is. The init holds none of crid's fds (0-2 are /dev/null),
 * reaps every process its namespace gives it and exits on SIGTERM or
 * SIGINT. */
#include "pod/pod_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/spawn.h"
#include "common/cleanup.h"
#include "common/fsutil.h"

#define INIT_COMM "crid-pod-init" /* its /proc/<pid>/comm (at most 15 bytes) */
#define LAUNCH_TIMEOUT_MS 30000	  /* exec of crid, a fork, a small write */
#define KILL_TIMEOUT_MS 10000	  /* SIGKILL of the init and its namespace */
#define LAUNCH_OUTPUT_MAX 1024

/* ---- the launcher and the init (crid re-executed) ---- */

/* null: /dev/null, opened before the root went empty. */
static __attribute__((noreturn)) void init_loop(int null)
{
	sigset_t set;

	/* Out of crid's session: a terminal's ^C to crid is not for pods. */
	setsid();
	prctl(PR_SET_NAME, INIT_COMM);
	/* Stdout is the launcher's pipe to crid, which sees its end only
	 * once this copy is gone too. */
	if (dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0)
		_exit(1);
	close_range(STDERR_FILENO + 1, ~0U, 0);
	if (chdir("/") < 0)
		_exit(1);
	/* Blocked since before the fork (the launcher did it): as PID 1 of
	 * its namespace the init would not even see a SIGTERM whose
	 * disposition is the default, but a blocked one waits for
	 * sigwaitinfo. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		siginfo_t si;
		int sig;

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		sig = sigwaitinfo(&set, &si);
		if (sig == SIGTERM || sig == SIGINT)
			_exit(0);
	}
}

static __attribute__((noreturn, format(printf, 2, 3))) void launch_fail(int errnum, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	if (errnum)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(errnum));
	if (n >= (int)sizeof(msg))
		n = (int)sizeof(msg) - 1;
	if (write(STDOUT_FILENO, msg, (size_t)n) < 0) {
		/* crid is gone: nobody to tell */
	}
	_exit(1);
}

/* The init shares a PID namespace with the pod's containers, so a
 * container that may ptrace or read /proc/1/root could reach whatever the
 * init has: it gets nothing. Its own mount namespace holds one empty
 * read-only tmpfs as its root (the host's tree detached), and it keeps no
 * capability, cannot gain any, and is not dumpable. Runs in the launcher
 * (single-threaded) before the fork: a failure is still reported. */
static void confine(const char *dir)
{
	struct __user_cap_header_struct head = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	/* Private first, or the tmpfs below would propagate to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		launch_fail(errno, "make the pod init's mounts private");
	/* Over dir, which exists: in this mount namespace only. */
	if (mount("crid-pod-init", dir, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555") < 0)
		launch_fail(errno, "mount the pod init's root");
	/* pivot_root(".", "."): the old root lands on top of the new one,
	 * and detaching it leaves the tmpfs alone (as runc does). */
	if (chdir(dir) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		launch_fail(errno, "give the pod init an empty root");
	for (int cap = 0; cap <= 63; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			launch_fail(errno, "drop capability %d from the bounding set", cap);
	}
	memset(data, 0, sizeof(data));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 || syscall(SYS_capset, &head, data) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		launch_fail(errno, "drop the pod init's privileges");
}

static int launch(const char *dir)
{
	static const struct {
		int flag;
		const char *path, *what;
	} joins[] = {
		/* First: the others are its, and the PID and mount
		 * namespaces made below become its too. */
		{ CLONE_NEWUSER, "ns/user", "user" },
		{ CLONE_NEWNET, "ns/net", "network" },
		{ CLONE_NEWIPC, "ns/ipc", "IPC" },
		{ CLONE_NEWUTS, "ns/uts", "UTS" },
	};
	struct crid_err err;
	char line[32];
	sigset_t set;
	pid_t pid;
	int dirfd, null, n;

	crid_err_clear(&err);
	close_range(STDERR_FILENO + 1, ~0U, 0);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		launch_fail(errno, "open %s", dir);
	for (size_t i = 0; i < CRID_ARRAY_SIZE(joins); i++) {
		int fd = openat(dirfd, joins[i].path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

		if (fd < 0 && errno == ENOENT)
			continue; /* the host's */
		if (fd < 0)
			launch_fail(errno, "open %s/%s", dir, joins[i].path);
		if (setns(fd, joins[i].flag) < 0)
			launch_fail(errno, "join the pod's %s namespace %s/%s", joins[i].what, dir, joins[i].path);
		close(fd);
	}
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		launch_fail(errno, "open /dev/null");
	if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
		launch_fail(errno, "create the pod's PID namespace");
	confine(dir);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		launch_fail(errno, "block signals");
	pid = fork();
	if (pid < 0)
		launch_fail(errno, "fork the pod init");
	if (pid == 0)
		init_loop(null);
	/* Recorded before crid hears of it, so that a crash of crid right now
	 * still leaves the init findable by crid_pod_ns_remove. */
	n = snprintf(line, sizeof(line), "%d\n", (int)pid);
	if (crid_replace_file_at(dirfd, "init.pid", line, (size_t)n, 0644, &err) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		launch_fail(0, "record the pod init's pid: %s", err.msg);
	}
	if (write(STDOUT_FILENO, line, (size_t)n) != n)
		_exit(1); /* crid is gone; the pid file tells the next one */
	_exit(0);
}

int crid_pod_init_main(int argc, char **argv)
{
	if (argc != 3 || argv[2][0] != '/') {
		fprintf(stderr, "usage: crid %s /POD/DIR (started by crid only)\n", CRID_POD_INIT_ARG);
		return 2;
	}
	return launch(argv[2]);
}

/* ---- crid's side ---- */

/* Moves *fd above 0-2, so that the dup2 onto the launcher's stdout can
 * never overwrite another of our fds. */
static int above_stdio(int *fd)
{
	int moved;

	if (*fd > STDERR_FILENO)
		return 0;
	moved = fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	if (moved < 0)
		return -errno;
	close(*fd);
	*fd = moved;
	return 0;
}

/* posix_spawn, as the daemon has other threads; an empty signal mask and
 * default dispositions (the daemon blocks its shutdown signals), stdin
 * /dev/null, stdout the pipe, stderr the daemon's (for sanitizer reports);
 * every other fd of the daemon is O_CLOEXEC. Returns an errno value. */
static int spawn_launcher(pid_t *pid, const char *dir, int out_wr)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	char *const argv[] = { "crid", CRID_POD_INIT_ARG, (char *)dir, NULL };
	struct crid_spawn sp;
	int r = crid_spawn_init(&sp, 0);

	if (r != 0)
		return r;
	if ((r = posix_spawn_file_actions_addopen(&sp.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&sp.actions, out_wr, STDOUT_FILENO)) == 0)
		r = posix_spawn(pid, "/proc/self/exe", &sp.actions, &sp.attr, argv, envp);
	crid_spawn_destroy(&sp);
	return r;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads fd to its end within timeout_ms; -ETIMEDOUT otherwise. */
static int read_all(int fd, char *buf, size_t size, size_t *len, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	*len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char discard[256];
		int64_t left = deadline - now_ms();
		ssize_t n;
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		if (*len + 1 < size)
			n = read(fd, buf + *len, size - 1 - *len);
		else
			n = read(fd, discard, sizeof(discard));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if (*len + 1 < size)
			*len += (size_t)n;
	}
	buf[*len] = '\0';
	return 0;
}

static void chomp(char *s)
{
	size_t len = strlen(s);

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
		s[--len] = '\0';
	for (char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
}

int crid_pod_init_start(const char *dir, pid_t *pid, struct crid_err *err)
{
	_cleanup_close_ int out_rd = -1, out_wr = -1;
	char out[LAUNCH_OUTPUT_MAX];
	size_t len;
	pid_t launcher;
	int fds[2], r, rr, status = 0;
	char *end;
	long v;

	*pid = 0;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "start the pod init: pipe");
	out_rd = fds[0];
	out_wr = fds[1];
	if ((r = above_stdio(&out_rd)) < 0 || (r = above_stdio(&out_wr)) < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "start the pod init: pipe");
	r = spawn_launcher(&launcher, dir, out_wr);
	if (r != 0)
		return crid_err_set(err, CRID_INTERNAL, r, "start the pod init: spawn /proc/self/exe");
	close(take_fd(&out_wr));
	/* EOF once the launcher has exited and the init replaced its stdout. */
	rr = read_all(out_rd, out, sizeof(out), &len, LAUNCH_TIMEOUT_MS);
	if (rr < 0)
		kill(launcher, SIGKILL);
	while (waitpid(launcher, &status, 0) < 0) {
		if (errno != EINTR)
			return crid_err_set(err, CRID_INTERNAL, errno, "start the pod init: wait for the launcher");
	}
	if (rr == -ETIMEDOUT)
		return crid_err_set(err, CRID_DEADLINE_EXCEEDED, 0, "start the pod init: no answer in %d s",
				    LAUNCH_TIMEOUT_MS / 1000);
	if (rr < 0)
		return crid_err_set(err, CRID_INTERNAL, -rr, "start the pod init: read from the launcher");
	chomp(out);
	if (WIFSIGNALED(status))
		return crid_err_set(err, CRID_INTERNAL, 0, "start the pod init: the launcher was killed by signal %d",
				    WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		return crid_err_set(err, CRID_INTERNAL, 0, "start the pod init: %s",
				    out[0] ? out : "the launcher failed without saying why");
	errno = 0;
	v = strtol(out, &end, 10);
	if (errno || end == out || *end || v <= 1 || v > INT_MAX)
		return crid_err_set(err, CRID_INTERNAL, 0, "start the pod init: the launcher said \"%s\"", out);
	*pid = (pid_t)v;
	return 0;
}

/* What /proc/<pid> shows of a pod init: 1 when it is the init of dir, 2
 * when it is some pod init that is already a zombie (its cmdline is gone
 * but its comm stays), 0 when it is something else or gone. */
static int identify(pid_t pid, const char *dir)
{
	char path[64], buf[PATH_MAX + 64];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	size_t len = 0;
	const char *arg1, *arg2;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 0;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len == 0) {
		/* A zombie (or a kernel thread): its comm tells. */
		close(take_fd(&fd));
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
			return 0;
		buf[n] = '\0';
		return strcmp(buf, INIT_COMM "\n") == 0 ? 2 : 0;
	}
	arg1 = buf + strlen(buf) + 1;
	if (arg1 >= buf + len || strcmp(arg1, CRID_POD_INIT_ARG) != 0)
		return 0;
	arg2 = arg1 + strlen(arg1) + 1;
	if (arg2 >= buf + len)
		return 0;
	return strcmp(arg2, dir) == 0 ? 1 : 0;
}

bool crid_pod_init_running(pid_t pid, const char *dir)
{
	_cleanup_free_ char *real = realpath(dir, NULL);

	return pid > 1 && identify(pid, real ? real : dir) == 1;
}

int crid_pod_init_kill(pid_t pid, const char *dir, struct crid_err *err)
{
	_cleanup_free_ char *real = NULL;
	_cleanup_close_ int pidfd = -1;
	int64_t deadline;
	siginfo_t si;
	int who;

	if (pid <= 1)
		return 0;
	/* The init runs with the canonical path of its dir. */
	real = realpath(dir, NULL);
	/* The pidfd first: what is checked below is then what is signalled,
	 * even if pid is reused in between. */
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0 && errno == ESRCH)
		return 0;
	if (pidfd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "stop the pod init %d: pidfd_open", (int)pid);
	who = identify(pid, real ? real : dir);
	if (who == 0)
		return 0; /* gone, or the pid is someone else's now */
	if (who == 1 && pidfd_send_signal(pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
		return crid_err_set(err, CRID_INTERNAL, errno, "stop the pod init %d: kill", (int)pid);
	/* Readable once it has exited, which for PID 1 of a namespace is
	 * after every other process there has. */
	deadline = now_ms() + KILL_TIMEOUT_MS;
	for (;;) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0)
			return crid_err_set(err, CRID_DEADLINE_EXCEEDED, 0,
					    "stop the pod init %d: still running %d s after SIGKILL", (int)pid,
					    KILL_TIMEOUT_MS / 1000);
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return crid_err_set(err, CRID_INTERNAL, errno, "stop the pod init %d: poll", (int)pid);
		if (r > 0)
			break;
	}
	/* Our child only when crid is a subreaper: then the zombie is ours to
	 * reap. Otherwise ECHILD, and its parent reaps it. */
	memset(&si, 0, sizeof(si));
	waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG);
	return 0;
}
