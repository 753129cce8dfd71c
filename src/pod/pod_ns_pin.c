/* Making a pod's user, network, IPC and UTS namespaces (pod_ns.h). The
 * daemon is multi-threaded, so it never unshares itself: a forked child
 * does, and between _Fork and its end that child makes only system calls
 * that are async-signal-safe (no allocation, no locks, no stdio): setns and
 * setresuid into the pod's user namespace, unshare, sethostname, a socket
 * and two ioctls for the loopback interface, open and write of /proc/sys
 * files, a write of its report to a pipe, pause. The parent then
 * bind-mounts the child's /proc/<pid>/ns/<kind> on "<dir>/ns/<kind>", which
 * keeps each namespace alive without any process, and kills the child. A
 * user namespace is made first (idmap.h) and pinned the same way; the
 * child joins it before it unshares, so that it owns the others. */
#include "pod/pod_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"

/* What the child did last: its report says where it stopped. */
enum ns_step {
	STEP_DONE = 0,
	STEP_USERNS,
	STEP_UNSHARE,
	STEP_HOSTNAME,
	STEP_LOOPBACK,
	STEP_SYSCTL_OPEN,
	STEP_SYSCTL_WRITE,
};

struct ns_report {
	int step;   /* enum ns_step */
	int index;  /* the sysctl, for the STEP_SYSCTL_* */
	int errnum; /* 0 for STEP_DONE */
};

static const struct {
	int flag;
	const char *name; /* in /proc/<pid>/ns and under <dir>/ns */
	const char *what; /* for messages */
} kinds[] = {
	{ CLONE_NEWNET, "net", "network" },
	{ CLONE_NEWIPC, "ipc", "IPC" },
	{ CLONE_NEWUTS, "uts", "UTS" },
};

/* Everything the child needs, prepared before the fork. */
struct ns_child {
	int flags;
	const char *hostname;
	size_t hostname_len;
	char *const *sysctl_paths;
	char *const *sysctl_values;
	size_t n_sysctls;
	int report_fd;
	int userns_fd; /* -1: none */
	pid_t parent;
};

/* ---- the child: async-signal-safe only ---- */

static void child_report(int fd, int step, int index, int errnum)
{
	struct ns_report rep = { .step = step, .index = index, .errnum = errnum };
	const char *p = (const char *)&rep;
	size_t left = sizeof(rep);

	while (left > 0) {
		ssize_t n = write(fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		left -= (size_t)n;
	}
}

static int loopback_up(void)
{
	struct ifreq ifr;
	int fd, r = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		r = errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			r = errno;
	}
	close(fd);
	return r;
}

static int write_sysctl(const char *path, const char *value, int *step)
{
	size_t len = strlen(value);
	int fd, r = 0;

	*step = STEP_SYSCTL_OPEN;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno;
	*step = STEP_SYSCTL_WRITE;
	for (;;) {
		ssize_t n = write(fd, value, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = errno;
		else if ((size_t)n != len)
			r = EIO;
		break;
	}
	close(fd);
	return r;
}

static __attribute__((noreturn)) void child_main(const struct ns_child *c)
{
	int fd = c->report_fd, r, step;

	/* The other fds of the daemon (another thread's pipes among them)
	 * are not ours to hold while we live; the user namespace's is dup'ed
	 * next to the report's first. */
	if (c->userns_fd >= 0 && c->userns_fd != fd + 1) {
		if (dup3(c->userns_fd, fd + 1, O_CLOEXEC) < 0) {
			child_report(fd, STEP_USERNS, 0, errno);
			_exit(1);
		}
	}
	if (fd > STDERR_FILENO + 1)
		close_range(STDERR_FILENO + 1, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + (c->userns_fd >= 0 ? 2 : 1), ~0U, 0);
	/* Dies with the thread that forked it, should that thread die. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != c->parent)
		_exit(1);
	/* Root of the pod's user namespace (its 0 is mapped), so that the
	 * namespaces made next are its, and its sysctl files take writes
	 * from it. Raw system calls: this thread alone changes. */
	if (c->userns_fd >= 0 &&
	    (setns(fd + 1, CLONE_NEWUSER) < 0 || syscall(SYS_setresgid, 0, 0, 0) < 0 ||
	     syscall(SYS_setresuid, 0, 0, 0) < 0)) {
		child_report(fd, STEP_USERNS, 0, errno);
		_exit(1);
	}
	if (unshare(c->flags) < 0) {
		child_report(fd, STEP_UNSHARE, 0, errno);
		_exit(1);
	}
	if ((c->flags & CLONE_NEWUTS) && c->hostname_len > 0 && sethostname(c->hostname, c->hostname_len) < 0) {
		child_report(fd, STEP_HOSTNAME, 0, errno);
		_exit(1);
	}
	if ((c->flags & CLONE_NEWNET) && (r = loopback_up()) != 0) {
		child_report(fd, STEP_LOOPBACK, 0, r);
		_exit(1);
	}
	/* /proc/sys/net and the IPC sysctls show the namespaces of the task
	 * that opens them: ours, now. */
	for (size_t i = 0; i < c->n_sysctls; i++) {
		if ((r = write_sysctl(c->sysctl_paths[i], c->sysctl_values[i], &step)) != 0) {
			child_report(fd, step, (int)i, r);
			_exit(1);
		}
	}
	child_report(fd, STEP_DONE, 0, 0);
	for (;;)
		pause(); /* until the parent's SIGKILL */
}

/* ---- the parent ---- */

static void kill_childp(pid_t *pid)
{
	int status;

	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
		;
	*pid = -1;
}

static int read_report(int fd, struct ns_report *rep)
{
	char *p = (char *)rep;
	size_t got = 0;

	while (got < sizeof(*rep)) {
		ssize_t n = read(fd, p + got, sizeof(*rep) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

static int report_error(const struct ns_report *rep, const struct crid_pod_ns_options *o,
			char *const *sysctl_paths, struct crid_err *err)
{
	const char *key = rep->index >= 0 && (size_t)rep->index < o->n_sysctls ? o->sysctl_keys[rep->index] : "?";
	int e = rep->errnum;

	switch (rep->step) {
	case STEP_USERNS:
		return crid_err_set(err, CRID_INTERNAL, e, "enter the pod's user namespace");
	case STEP_UNSHARE:
		/* ENOSPC: a limit of user.max_*_namespaces was reached. */
		return crid_err_set(err, e == ENOSPC || e == ENOMEM ? CRID_RESOURCE_EXHAUSTED : CRID_INTERNAL, e,
				    "create the pod's namespaces");
	case STEP_HOSTNAME:
		return crid_err_set(err, e == EINVAL ? CRID_INVALID_ARGUMENT : CRID_INTERNAL, e, "set hostname %s",
				    o->hostname);
	case STEP_LOOPBACK:
		return crid_err_set(err, CRID_INTERNAL, e, "bring up the loopback interface");
	case STEP_SYSCTL_OPEN:
		if (e == ENOENT || e == ENOTDIR)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "sysctl \"%s\": no such sysctl (%s)", key,
					    sysctl_paths[rep->index]);
		if (e == EACCES || e == EPERM || e == EROFS)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, e, "sysctl \"%s\": cannot be written", key);
		return crid_err_set(err, CRID_INTERNAL, e, "sysctl \"%s\": open %s", key, sysctl_paths[rep->index]);
	case STEP_SYSCTL_WRITE:
		if (e == EINVAL || e == ERANGE || e == EOVERFLOW || e == EIO || e == EACCES || e == EPERM)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, e, "sysctl \"%s\": set to \"%s\"", key,
					    o->sysctl_values[rep->index]);
		return crid_err_set(err, CRID_INTERNAL, e, "sysctl \"%s\": write %s", key, sysctl_paths[rep->index]);
	default:
		return crid_err_set(err, CRID_INTERNAL, 0, "the namespace helper sent a bad report");
	}
}

/* Unmounts the pins made so far (a mask of kinds), leaving their files. */
static void unpin(const char *dir, int done)
{
	char target[PATH_MAX];

	for (int k = 0; k < (int)CRID_ARRAY_SIZE(kinds); k++) {
		if (!(done & kinds[k].flag))
			continue;
		snprintf(target, sizeof(target), "%s/ns/%s", dir, kinds[k].name);
		umount2(target, MNT_DETACH);
	}
}

/* Makes the pod's user namespace and pins it on "<dir>/ns/user". */
static int pin_userns(int nsfd, const struct crid_pod_ns_options *o, int *userns, struct crid_err *err)
{
	char src[64], target[PATH_MAX];
	int r, fd;

	r = crid_userns_create(o->uids, o->n_uids, o->gids, o->n_gids, userns, err);
	if (r < 0)
		return crid_err_wrap(err, "linux.security_context.namespace_options.userns_options: ");
	fd = openat(nsfd, "user", O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "pin user namespace at %s/ns/user: create the file",
				    o->dir);
	close(fd);
	snprintf(src, sizeof(src), "/proc/self/fd/%d", *userns);
	if (snprintf(target, sizeof(target), "%s/ns/user", o->dir) >= (int)sizeof(target))
		return crid_err_set(err, CRID_INTERNAL, ENAMETOOLONG, "pin user namespace at %s/ns/user", o->dir);
	if (mount(src, target, NULL, MS_BIND, NULL) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "pin user namespace at %s", target);
	return 0;
}

static int pin_all(int dirfd, const struct crid_pod_ns_options *o, char *const *sysctl_paths, struct crid_err *err)
{
	_cleanup_close_ int nsfd = -1, report_rd = -1, report_wr = -1, userns = -1;
	_cleanup_(kill_childp) pid_t child = -1;
	struct ns_child c = { .userns_fd = -1 };
	struct ns_report rep;
	int fds[2], r, k, done = 0;

	c.flags = (o->host_network ? 0 : CLONE_NEWNET) | (o->host_ipc ? 0 : CLONE_NEWIPC) |
		  (o->host_uts ? 0 : CLONE_NEWUTS);
	if (c.flags == 0 && o->n_uids == 0)
		return 0;
	c.hostname = o->hostname ? o->hostname : "";
	c.hostname_len = strlen(c.hostname);
	c.sysctl_paths = sysctl_paths;
	c.sysctl_values = o->sysctl_values;
	c.n_sysctls = o->n_sysctls;
	c.parent = getpid();

	nsfd = crid_open_dir_at(dirfd, "ns", 0755, err);
	if (nsfd < 0)
		return crid_err_wrap(err, "pin the pod's namespaces: ");
	if (o->n_uids > 0) {
		if ((r = pin_userns(nsfd, o, &userns, err)) < 0)
			return r; /* the caller's take-down unmounts what was pinned */
		c.userns_fd = userns;
	}
	for (k = 0; k < (int)CRID_ARRAY_SIZE(kinds); k++) {
		int fd;

		if (!(c.flags & kinds[k].flag))
			continue;
		fd = openat(nsfd, kinds[k].name, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0444);
		if (fd < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "pin %s namespace at %s/ns/%s: create the file",
					    kinds[k].what, o->dir, kinds[k].name);
		close(fd);
	}

	if (c.flags == 0)
		return 0;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create the pod's namespaces: pipe");
	report_rd = fds[0];
	report_wr = fds[1];
	c.report_fd = report_wr;
	/* _Fork: no atfork handlers (of the libraries the daemon links) run
	 * in a child that may only make async-signal-safe calls anyway. */
	child = _Fork();
	if (child < 0)
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, errno, "create the pod's namespaces: fork");
	if (child == 0)
		child_main(&c);
	close(take_fd(&report_wr));

	r = read_report(report_rd, &rep);
	if (r < 0)
		return crid_err_set(err, CRID_INTERNAL, r == -EPIPE ? 0 : -r,
				    "create the pod's namespaces: the helper ended without a report");
	if (rep.step != STEP_DONE)
		return report_error(&rep, o, sysctl_paths, err);

	for (k = 0; k < (int)CRID_ARRAY_SIZE(kinds); k++) {
		char src[64], target[PATH_MAX];

		if (!(c.flags & kinds[k].flag))
			continue;
		snprintf(src, sizeof(src), "/proc/%d/ns/%s", (int)child, kinds[k].name);
		if (snprintf(target, sizeof(target), "%s/ns/%s", o->dir, kinds[k].name) >= (int)sizeof(target)) {
			unpin(o->dir, done);
			return crid_err_set(err, CRID_INTERNAL, ENAMETOOLONG, "pin %s namespace at %s/ns/%s",
					    kinds[k].what, o->dir, kinds[k].name);
		}
		if (mount(src, target, NULL, MS_BIND, NULL) < 0) {
			r = errno;
			unpin(o->dir, done);
			return crid_err_set(err, CRID_INTERNAL, r, "pin %s namespace at %s", kinds[k].what, target);
		}
		done |= kinds[k].flag;
	}
	return 0; /* the child is killed on the way out: the pins hold */
}

int crid_pod_ns_pin(int dirfd, const struct crid_pod_ns_options *o, char *const *sysctl_paths, struct crid_err *err)
{
	int r = pin_all(dirfd, o, sysctl_paths, err);

	if (r < 0 && o->n_uids > 0) {
		char target[PATH_MAX];

		snprintf(target, sizeof(target), "%s/ns/user", o->dir);
		umount2(target, MNT_DETACH); /* EINVAL when it never was */
	}
	return r;
}
