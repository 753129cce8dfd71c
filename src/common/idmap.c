/* User namespaces from ID mappings, and ID-mapped copies of mount trees
 * (idmap.h). A namespace is made by a forked child that only unshares and
 * waits, making async-signal-safe calls alone between _Fork and its end;
 * crid writes its maps from outside (as root of the parent namespace, any
 * mapping is allowed) and keeps an fd of it. */
#include "common/idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"

int crid_idmap_check(const struct crid_idmap *m, size_t n, const char *what, struct crid_err *err)
{
	if (n == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: no mapping given", what);
	if (n > CRID_IDMAP_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: more than %d mappings", what, CRID_IDMAP_MAX);
	for (size_t i = 0; i < n; i++) {
		if (m[i].count == 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s[%zu]: the length is 0", what, i);
		/* uid_t (uint32) -1 is never an ID. */
		if ((uint64_t)m[i].inside + m[i].count > UINT32_MAX ||
		    (uint64_t)m[i].outside + m[i].count > UINT32_MAX)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s[%zu]: the range goes past 4294967294",
					    what, i);
		for (size_t k = 0; k < i; k++) {
			bool in = m[i].inside < m[k].inside + m[k].count && m[k].inside < m[i].inside + m[i].count;
			bool out = m[i].outside < m[k].outside + m[k].count && m[k].outside < m[i].outside + m[i].count;

			if (in || out)
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s[%zu] overlaps %s[%zu]", what, i,
						    what, k);
		}
	}
	return 0;
}

bool crid_idmap_outside(const struct crid_idmap *m, size_t n, uint32_t id, uint32_t *out)
{
	for (size_t i = 0; i < n; i++) {
		if (id >= m[i].inside && id - m[i].inside < m[i].count) {
			*out = m[i].outside + (id - m[i].inside);
			return true;
		}
	}
	return false;
}

/* ---- making a user namespace ---- */

/* Closes every fd from 3 on but keep[0] and keep[1]. */
static void close_others(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0U, 0);
}

static __attribute__((noreturn)) void child_main(int ready_fd, int hold_fd, pid_t parent)
{
	char c = 0;

	/* Other threads' pipes are not ours to keep open. */
	close_others(ready_fd, hold_fd);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if (unshare(CLONE_NEWUSER) < 0)
		_exit(2);
	if (write(ready_fd, &c, 1) != 1)
		_exit(3);
	/* Until the parent is done with our namespace and kills us. */
	while (read(hold_fd, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

static void kill_childp(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static int write_map(pid_t pid, const char *file, const struct crid_idmap *m, size_t n, struct crid_err *err)
{
	char path[64], buf[CRID_IDMAP_MAX * 33];
	size_t len = 0;
	_cleanup_close_ int fd = -1;

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i].inside, m[i].outside,
					m[i].count);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		return crid_err_set(err, errno == EPERM || errno == EINVAL ? CRID_INVALID_ARGUMENT : CRID_INTERNAL, errno,
				    "write the user namespace's %s", file);
	return 0;
}

int crid_userns_create(const struct crid_idmap *uids, size_t n_uids, const struct crid_idmap *gids, size_t n_gids,
		       int *fd, struct crid_err *err)
{
	_cleanup_close_ int ready_rd = -1, ready_wr = -1, hold_rd = -1, hold_wr = -1;
	_cleanup_(kill_childp) pid_t child = -1;
	char path[64], c;
	int fds[2], r;
	pid_t parent = getpid();

	*fd = -1;
	if ((r = crid_idmap_check(uids, n_uids, "uids", err)) < 0 || (r = crid_idmap_check(gids, n_gids, "gids", err)) < 0)
		return r;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create a user namespace: pipe");
	ready_rd = fds[0];
	ready_wr = fds[1];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create a user namespace: pipe");
	hold_rd = fds[0];
	hold_wr = fds[1];
	child = _Fork();
	if (child < 0)
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, errno, "create a user namespace: fork");
	if (child == 0) {
		close(hold_wr);
		child_main(ready_wr, hold_rd, parent);
	}
	close(take_fd(&ready_wr));
	close(take_fd(&hold_rd));
	do
		r = (int)read(ready_rd, &c, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1) {
		int status = 0;

		/* ENOSPC from user.max_user_namespaces shows as exit 2. */
		waitpid(child, &status, 0);
		child = -1;
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
				    "create a user namespace: the kernel refused (user namespaces disabled, or "
				    "user.max_user_namespaces reached)");
	}
	if ((r = write_map(child, "uid_map", uids, n_uids, err)) < 0 ||
	    (r = write_map(child, "gid_map", gids, n_gids, err)) < 0)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)child);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", path);
	return 0; /* the child is killed on the way out: the fd holds it */
}

/* ---- copies of mount trees ---- */

int crid_mount_copy(int fd, bool recursive, int userns_fd, enum crid_propagation prop, const char *what, int *tree,
		    struct crid_err *err)
{
	static const unsigned long props[] = { 0, MS_PRIVATE, MS_SLAVE, MS_SHARED };
	_cleanup_close_ int t = -1;
	struct mount_attr attr = { 0 };
	unsigned int flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);

	*tree = -1;
	t = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | flags);
	if (t < 0)
		return crid_err_set(err, errno == ENOSYS ? CRID_FAILED_PRECONDITION : CRID_INTERNAL, errno,
				    "%s: copy the mount", what);
	if (userns_fd >= 0) {
		attr.attr_set = MOUNT_ATTR_IDMAP;
		attr.userns_fd = (uint64_t)userns_fd;
		if (mount_setattr(t, "", flags, &attr, sizeof(attr)) < 0) {
			/* EINVAL: a file system without ID-mapped mounts
			 * (or a submount of one); ENOSYS: a kernel older
			 * than 5.12. */
			if (errno == EINVAL || errno == ENOSYS || errno == EPERM)
				return crid_err_set(err, CRID_FAILED_PRECONDITION, errno,
						    "%s: its file system cannot be ID-mapped for the pod's user "
						    "namespace",
						    what);
			return crid_err_set(err, CRID_INTERNAL, errno, "%s: ID-map the mount", what);
		}
		memset(&attr, 0, sizeof(attr));
	}
	if (prop != CRID_PROPAGATION_KEEP) {
		attr.propagation = props[prop];
		if (mount_setattr(t, "", flags, &attr, sizeof(attr)) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "%s: set the mount's propagation", what);
	}
	*tree = take_fd(&t);
	return 0;
}

int crid_mount_set_readonly(int tree, struct crid_err *err)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };

	if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "make a mount read-only");
	return 0;
}

int crid_mount_attach(int tree, int dirfd, const char *name, struct crid_err *err)
{
	if (move_mount(tree, "", dirfd, name, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "attach a mount at %s", name);
	return 0;
}

bool crid_idmap_supported(const char *path)
{
	static const struct crid_idmap probe = { 0, 1000000, 65536 };
	_cleanup_close_ int userns = -1, fd = -1, tree = -1;
	struct crid_err err;

	if (crid_userns_create(&probe, 1, &probe, 1, &userns, &err) < 0)
		return false;
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 && crid_mount_copy(fd, false, userns, CRID_PROPAGATION_KEEP, path, &tree, &err) == 0;
}
