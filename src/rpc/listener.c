/* Binding the daemon's Unix socket (listener.h). The lock comes first: only
 * its holder may remove a stale socket, so two daemons never steal each
 * other's path. */
#include "rpc/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"

/* mkdir -p of the socket's directory; the path comes from the configuration,
 * never from a request. */
static int make_parent_dirs(const char *path, struct crid_err *err)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash;

	if (!dir)
		return crid_err_nomem(err, "socket path");
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char saved = *p;

			*p = '\0';
			if (mkdir(dir, 0755) < 0 && errno != EEXIST)
				return crid_err_set(err, CRID_INTERNAL, errno, "create socket directory %s", dir);
			*p = saved;
			if (saved == '\0')
				break;
		}
	}
	return 0;
}

int crid_listener_open(struct crid_listener *l, const char *path, struct crid_err *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	_cleanup_close_ int lock_fd = -1;
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *lock_path = NULL;
	_cleanup_free_ char *path_copy = NULL;
	struct stat st;
	mode_t old_umask;
	int r;

	l->fd = l->lock_fd = -1;
	l->path = l->lock_path = NULL;
	if (strlen(path) >= sizeof(addr.sun_path))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, ENAMETOOLONG, "socket path %s", path);
	r = make_parent_dirs(path, err);
	if (r < 0)
		return r;
	if (asprintf(&lock_path, "%s.lock", path) < 0) {
		lock_path = NULL;
		return crid_err_nomem(err, "lock path");
	}
	path_copy = strdup(path);
	if (!path_copy)
		return crid_err_nomem(err, "socket path");
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open lock file %s", lock_path);
	if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return crid_err_set(err, CRID_ALREADY_EXISTS, EADDRINUSE,
					    "another crid is already serving %s (it holds %s)", path, lock_path);
		return crid_err_set(err, CRID_INTERNAL, errno, "lock %s", lock_path);
	}
	/* We hold the lock, so a socket still there is a crashed daemon's. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, EEXIST,
					    "socket path %s exists and is not a socket", path);
		if (unlink(path) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "remove stale socket %s", path);
	} else if (errno != ENOENT) {
		return crid_err_set(err, CRID_INTERNAL, errno, "stat %s", path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create socket");
	memcpy(addr.sun_path, path, strlen(path) + 1);
	/* Bind with the final mode: no window where others may connect. */
	old_umask = umask(0117);
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (r < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "bind %s", path);
	if (chmod(path, 0660) < 0) {
		int e = errno;

		unlink(path);
		return crid_err_set(err, CRID_INTERNAL, e, "chmod %s", path);
	}
	if (listen(fd, 1024) < 0) {
		int e = errno;

		unlink(path);
		return crid_err_set(err, CRID_INTERNAL, e, "listen on %s", path);
	}
	l->fd = take_fd(&fd);
	l->lock_fd = take_fd(&lock_fd);
	l->path = take_ptr(&path_copy);
	l->lock_path = take_ptr(&lock_path);
	return 0;
}

void crid_listener_close(struct crid_listener *l)
{
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
		if (l->path)
			unlink(l->path);
	}
	if (l->lock_fd >= 0) {
		/* The lock file stays: removing it would let a daemon starting now
		 * lock an unlinked file while a third locks a new one. */
		close(l->lock_fd);
		l->lock_fd = -1;
	}
	free(l->path);
	free(l->lock_path);
	l->path = l->lock_path = NULL;
}
