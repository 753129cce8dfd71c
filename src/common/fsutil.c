/* File system helpers of fsutil.h. */
#include "common/fsutil.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"

int crid_mkdir_p(const char *path, mode_t mode, struct crid_err *err)
{
	_cleanup_free_ char *copy = strdup(path);

	if (!copy)
		return crid_err_nomem(err, "path");
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			return crid_err_set(err, CRID_INTERNAL, errno, "create %s", copy);
		*p = '/';
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST)
		return crid_err_set(err, CRID_INTERNAL, errno, "create %s", copy);
	return 0;
}

int crid_open_dir_at(int dirfd, const char *name, mode_t mode, struct crid_err *err)
{
	int fd;

	if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
		return crid_err_set(err, CRID_INTERNAL, errno, "create directory %s", name);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open directory %s", name);
	return fd;
}

/* Clears the group and other bits of what fd is open on. */
static int make_private(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((st.st_mode & 077) && fchmod(fd, st.st_mode & 07700) < 0)
		return -errno;
	return 0;
}

int crid_open_private_dir_at(int dirfd, const char *name, struct crid_err *err)
{
	int fd = crid_open_dir_at(dirfd, name, 0700, err);
	int r;

	if (fd < 0)
		return fd;
	r = make_private(fd);
	if (r < 0) {
		close(fd);
		return crid_err_set(err, CRID_INTERNAL, -r, "make directory %s private", name);
	}
	return fd;
}

int crid_mkdir_private(const char *path, struct crid_err *err)
{
	_cleanup_close_ int fd = -1;
	int r = crid_mkdir_p(path, 0700, err);

	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", path);
	r = make_private(fd);
	if (r < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "make directory %s private", path);
	return 0;
}

int crid_make_private_at(int dirfd, const char *name, struct crid_err *err)
{
	/* O_PATH does not allow fchmod: a regular open without following. */
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return errno == ENOENT ? 0 : crid_err_set(err, CRID_INTERNAL, errno, "open %s", name);
	r = make_private(fd);
	if (r < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "make %s private", name);
	return 0;
}

bool crid_path_has_dotdot(const char *path)
{
	for (const char *c = path; *c;) {
		size_t n = strcspn(c, "/");

		if (n == 2 && c[0] == '.' && c[1] == '.')
			return true;
		c += n;
		c += strspn(c, "/");
	}
	return false;
}

int crid_random_hex(char *out, size_t n, struct crid_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char buf[64];
	size_t got = 0;

	if (n / 2 + 1 > sizeof(buf))
		return crid_err_set(err, CRID_INTERNAL, EINVAL, "random string of %zu characters", n);
	while (got < n / 2 + 1) {
		ssize_t r = getrandom(buf + got, n / 2 + 1 - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "getrandom");
		got += (size_t)r;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = hex[(buf[i / 2] >> ((i % 2) * 4)) & 0xf];
	out[n] = '\0';
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_file(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync,
		      struct crid_err *err);

int crid_write_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		       struct crid_err *err)
{
	return write_file(dirfd, name, data, len, mode, true, err);
}

int crid_replace_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			 struct crid_err *err)
{
	return write_file(dirfd, name, data, len, mode, false, err);
}

static int write_file(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync,
		      struct crid_err *err)
{
	char tmp[64], rnd[17];
	_cleanup_close_ int fd = -1;
	int r;

	r = crid_random_hex(rnd, 16, err);
	if (r < 0)
		return r;
	snprintf(tmp, sizeof(tmp), ".tmp-%s", rnd);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create %s", name);
	r = write_all(fd, data, len);
	if (r == 0 && sync && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return crid_err_set(err, CRID_INTERNAL, -r, "write %s", name);
	}
	return 0;
}

int crid_read_file_at(int dirfd, const char *name, size_t max, char **data, size_t *len, struct crid_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	size_t used = 0, cap = 0;

	if (fd < 0)
		return crid_err_set(err, errno == ENOENT ? CRID_NOT_FOUND : CRID_INTERNAL, errno, "open %s", name);
	for (;;) {
		ssize_t n;

		if (used + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			char *grown;

			if (ncap > max + 1)
				ncap = max + 1;
			if (used + 1 >= ncap)
				return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, EFBIG, "read %s: larger than %zu bytes",
						    name, max);
			grown = realloc(buf, ncap);
			if (!grown)
				return crid_err_nomem(err, name);
			buf = grown;
			cap = ncap;
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "read %s", name);
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf)
			return crid_err_nomem(err, name);
	}
	buf[used] = '\0';
	*data = take_ptr(&buf);
	*len = used;
	return 0;
}

/* Empties the directory fd refers to; dev is the device it must stay on. */
static int empty_dir(int fd, dev_t dev, int depth)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int dup_fd, first_err = 0;

	if (depth > 4096)
		return -ELOOP;
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return -errno;
	d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT && !first_err)
				first_err = -errno;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			int sub, r;

			if (st.st_dev != dev) {
				/* A mount inside: leave it, and say so. */
				if (!first_err)
					first_err = -EBUSY;
				continue;
			}
			sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				if (!first_err)
					first_err = -errno;
				continue;
			}
			r = empty_dir(sub, dev, depth + 1);
			close(sub);
			if (r < 0 && !first_err)
				first_err = r;
			if (unlinkat(fd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT && !first_err)
				first_err = -errno;
		} else if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT && !first_err) {
			first_err = -errno;
		}
	}
	if (errno && !first_err)
		first_err = -errno;
	return first_err;
}

int crid_rmtree_at(int dirfd, const char *name, struct crid_err *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return crid_err_set(err, CRID_INTERNAL, errno, "remove %s", name);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return crid_err_set(err, CRID_INTERNAL, errno, "remove %s", name);
		return 0;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", name);
	r = empty_dir(fd, st.st_dev, 0);
	if (r < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "remove the contents of %s", name);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return crid_err_set(err, CRID_INTERNAL, errno, "remove %s", name);
	return 0;
}

/* The inodes with more than one link already counted by a walk: a file
 * hard-linked at many names (busybox's hundreds of applets) counts once. */
struct inode_set {
	ino_t *slots; /* open addressing; 0 marks a free slot */
	size_t cap, n;
};

static void inode_set_free(struct inode_set *set)
{
	free(set->slots);
}

/* 1 when ino is new (and now recorded), 0 when seen, -ENOMEM. */
static int inode_set_add(struct inode_set *set, ino_t ino)
{
	size_t i;

	if (ino == 0)
		return 1; /* never a real inode here; not worth a slot */
	if ((set->n + 1) * 2 > set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 256;
		ino_t *slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (size_t j = 0; j < set->cap; j++) {
			if (!set->slots[j])
				continue;
			for (i = set->slots[j] % cap; slots[i]; i = (i + 1) % cap)
				;
			slots[i] = set->slots[j];
		}
		free(set->slots);
		set->slots = slots;
		set->cap = cap;
	}
	for (i = ino % set->cap; set->slots[i]; i = (i + 1) % set->cap)
		if (set->slots[i] == ino)
			return 0;
	set->slots[i] = ino;
	set->n++;
	return 1;
}

static int usage_dir(int fd, dev_t dev, struct inode_set *linked, uint64_t *bytes, uint64_t *inodes, int depth)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int dup_fd;

	if (depth > 4096)
		return -ELOOP;
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return -errno;
	d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
			continue;
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
			int fresh = inode_set_add(linked, st.st_ino);

			if (fresh < 0)
				return fresh;
			if (!fresh)
				continue;
		}
		*bytes += (uint64_t)st.st_blocks * 512;
		*inodes += 1;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0) {
				int r = usage_dir(sub, dev, linked, bytes, inodes, depth + 1);

				close(sub);
				if (r == -ENOMEM)
					return r;
			}
		}
	}
	return 0;
}

int crid_disk_usage_at(int dirfd, const char *name, uint64_t *bytes, uint64_t *inodes, struct crid_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	*bytes = *inodes = 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		return crid_err_set(err, errno == ENOENT ? CRID_NOT_FOUND : CRID_INTERNAL, errno, "measure %s", name);
	*bytes = (uint64_t)st.st_blocks * 512;
	*inodes = 1;
	{
		struct inode_set linked = { 0 };
		int r = usage_dir(fd, st.st_dev, &linked, bytes, inodes, 0);

		inode_set_free(&linked);
		if (r == -ENOMEM)
			return crid_err_nomem(err, "measure the disk usage of a directory");
	}
	return 0;
}

int crid_check_searchable(const char *dir, struct crid_err *err)
{
	_cleanup_free_ char *path = realpath(dir, NULL);
	bool last = false;

	if (!path)
		return crid_err_set(err, CRID_INTERNAL, errno, "%s", dir);
	/* The directory, then each parent up to "/". */
	while (!last) {
		const char *shown = *path ? path : "/";
		char *slash = strrchr(path, '/');
		struct stat st;

		if (stat(shown, &st) == 0 && !(st.st_mode & S_IXOTH))
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					    "%s (mode %04o) is not searchable by others, so a user namespace's root "
					    "cannot reach the files below it",
					    shown, (unsigned)(st.st_mode & 07777));
		last = !*path || !slash;
		if (slash)
			*slash = '\0';
	}
	return 0;
}
