/* Unpacking a layer (unpack.h). The parent side runs inside the
 * multi-threaded daemon, so it only spawns (posix_spawn, no code of ours
 * between fork and exec) and moves bytes through pipes. The child chroots
 * into the layer directory and extracts with libarchive, refusing every
 * entry that names a place outside it or goes through a symlink, so a
 * hostile layer fails to unpack instead of writing elsewhere. */
#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "common/lazylib.h"
#include "common/spawn.h"
#include "image/reference.h"
#include "image/whiteout.h"

/* The child's exit statuses. */
enum {
	UNPACK_EXIT_OK = 0,
	UNPACK_EXIT_BAD_LAYER = 1, /* refused or malformed: INVALID_ARGUMENT */
	UNPACK_EXIT_SYSTEM = 2,    /* the host failed: INTERNAL */
	UNPACK_EXIT_NO_SPACE = 3,  /* the free reserve, or the disk, is used up: RESOURCE_EXHAUSTED */
};

/* How often the child looks at the free space: every this many bytes
 * written, and every this many entries. */
#define RESERVE_CHECK_BYTES (1 << 20)
#define RESERVE_CHECK_ENTRIES 256
/* Inodes a layer must leave free, when there is a reserve at all. */
#define RESERVE_INODES 4096
/* What a tar may be followed by in its compressed stream (padding to a
 * record): not gigabytes of a bomb to decompress and hash. */
#define TRAILER_MAX (1 << 20)

/* How much of the child's stderr is kept for the error message. */
#define UNPACK_STDERR_MAX 4096
#define UNPACK_READ_BLOCK (128 * 1024)
#define QUOTE_MAX 256

#define OVERLAY_XATTR_PREFIX "trusted.overlay."

/* ---- parent side ---- */

/* Moves *fd above 0-2 so that the dup2 onto the child's stdin and stderr
 * can never overwrite another of our descriptors. */
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

static int make_pipe(int *rd, int *wr)
{
	int fds[2], r;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	*rd = fds[0];
	*wr = fds[1];
	if ((r = above_stdio(rd)) < 0 || (r = above_stdio(wr)) < 0)
		return r;
	return 0;
}

/* posix_spawn: the daemon has other threads, so nothing of ours may run in
 * the child before exec. The child gets an empty signal mask and default
 * dispositions (the daemon blocks its shutdown signals and ignores
 * SIGPIPE, and both would be inherited), stdin the stream, stdout
 * /dev/null, stderr the error pipe, and nothing else: every other fd of
 * the daemon is O_CLOEXEC. Returns an errno value, 0 on success. */
static int spawn_child(pid_t *pid, const char *dir, const char *diff_id, uint64_t free_reserve, int stream_rd,
		       int err_wr)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	char parent[24], reserve[24];
	char *const argv[] = { "crid", CRID_UNPACK_ARG, (char *)dir, (char *)diff_id, parent, reserve, NULL };
	struct crid_spawn sp;
	int r = crid_spawn_init(&sp, 0);

	if (r != 0)
		return r;
	snprintf(parent, sizeof(parent), "%d", (int)getpid());
	snprintf(reserve, sizeof(reserve), "%llu", (unsigned long long)free_reserve);
	if ((r = posix_spawn_file_actions_adddup2(&sp.actions, stream_rd, STDIN_FILENO)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&sp.actions, err_wr, STDERR_FILENO)) == 0 &&
	    (r = posix_spawn_file_actions_addopen(&sp.actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)) == 0)
		r = posix_spawn(pid, "/proc/self/exe", &sp.actions, &sp.attr, argv, envp);
	crid_spawn_destroy(&sp);
	return r;
}

int crid_unpack_start(struct crid_unpack *u, const char *dir, const char *diff_id, struct crid_err *err)
{
	return crid_unpack_start_reserved(u, dir, diff_id, 0, err);
}

int crid_unpack_start_reserved(struct crid_unpack *u, const char *dir, const char *diff_id, uint64_t free_reserve,
			       struct crid_err *err)
{
	_cleanup_close_ int stream_rd = -1, stream_wr = -1, err_rd = -1, err_wr = -1;
	pid_t pid;
	int r;

	u->pid = -1;
	u->stream_fd = u->err_fd = -1;
	if ((r = make_pipe(&stream_rd, &stream_wr)) < 0 || (r = make_pipe(&err_rd, &err_wr)) < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "unpack layer into %s: create pipe", dir);
	if (!diff_id || !crid_digest_valid(diff_id))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "unpack layer into %s: bad diff_id", dir);
	r = spawn_child(&pid, dir, diff_id, free_reserve, stream_rd, err_wr);
	if (r != 0)
		return crid_err_set(err, CRID_INTERNAL, r, "unpack layer into %s: start the unpacker", dir);
	u->pid = pid;
	u->stream_fd = take_fd(&stream_wr);
	u->err_fd = take_fd(&err_rd);
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Reads the child's stderr to its end, keeping the first size - 1 bytes
 * as one line (newlines become "; ", other control bytes spaces). */
static void read_stderr(int fd, char *buf, size_t size)
{
	char discard[1024];
	size_t len = 0;

	for (;;) {
		ssize_t n;

		if (len + 1 < size)
			n = read(fd, buf + len, size - 1 - len);
		else
			n = read(fd, discard, sizeof(discard));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len + 1 < size)
			len += (size_t)n;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\n' && i + 1 < len && len + 1 < size) {
			/* "; " needs one more byte: make room when there is. */
			memmove(buf + i + 2, buf + i + 1, len - i - 1);
			buf[i] = ';';
			buf[i + 1] = ' ';
			len++;
			buf[len] = '\0';
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			buf[i] = ' ';
		}
	}
}

static int wait_child(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Ends the stream, collects the child's reason and exit status, and turns
 * them into the result of the unpack. */
static int reap(struct crid_unpack *u, bool stream_complete, struct crid_err *err)
{
	char reason[UNPACK_STDERR_MAX];
	int status = 0, r;

	close_fd(&u->stream_fd);
	read_stderr(u->err_fd, reason, sizeof(reason));
	close_fd(&u->err_fd);
	r = wait_child(u->pid, &status);
	u->pid = -1;
	if (r < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "unpack layer: wait for the unpacker");
	if (WIFEXITED(status) && WEXITSTATUS(status) == UNPACK_EXIT_OK) {
		if (stream_complete)
			return 0;
		crid_err_set(err, CRID_INTERNAL, 0, "unpack layer: the unpacker ended before the layer did");
		return -EPIPE;
	}
	if (WIFSIGNALED(status)) {
		crid_err_set(err, CRID_INTERNAL, 0, "unpack layer: the unpacker was killed by signal %d%s%s",
			     WTERMSIG(status), reason[0] ? ": " : "", reason);
		return -EIO;
	}
	if (WEXITSTATUS(status) == UNPACK_EXIT_BAD_LAYER)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "unpack layer: %s",
				    reason[0] ? reason : "the layer was refused");
	if (WEXITSTATUS(status) == UNPACK_EXIT_NO_SPACE)
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, 0, "unpack layer: %s",
				    reason[0] ? reason : "out of space");
	crid_err_set(err, CRID_INTERNAL, 0, "unpack layer: %s",
		     reason[0] ? reason : "the unpacker failed without saying why");
	return -EIO;
}

int crid_unpack_write(struct crid_unpack *u, const void *buf, size_t len, struct crid_err *err)
{
	const char *p = buf;

	if (u->pid <= 0 || u->stream_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, EPIPE, "unpack layer: the unpacker has ended");
	while (len > 0) {
		ssize_t n = write(u->stream_fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE) /* the child gave up: say why */
				return reap(u, false, err);
			return crid_err_set(err, CRID_INTERNAL, errno, "unpack layer: write to the unpacker");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int crid_unpack_finish(struct crid_unpack *u, struct crid_err *err)
{
	if (u->pid <= 0)
		return crid_err_set(err, CRID_INTERNAL, EPIPE, "unpack layer: the unpacker has ended");
	return reap(u, true, err);
}

void crid_unpack_abort(struct crid_unpack *u)
{
	int status;

	if (u->pid > 0)
		kill(u->pid, SIGKILL);
	close_fd(&u->stream_fd);
	close_fd(&u->err_fd);
	if (u->pid > 0)
		wait_child(u->pid, &status);
	u->pid = -1;
}

/* Whether /proc/<pid>/cmdline is an unpacker of a layer in tmp_dir. */
static bool is_stray(const char *pid, const char *tmp_dir)
{
	char path[64], buf[4096];
	size_t len = strlen(tmp_dir);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* argv[0] \0 CRID_UNPACK_ARG \0 <tmp_dir>/<name> \0 ... */
	{
		const char *arg1 = buf + strlen(buf) + 1;
		const char *arg2;

		if (arg1 >= buf + n || strcmp(arg1, CRID_UNPACK_ARG) != 0)
			return false;
		arg2 = arg1 + strlen(arg1) + 1;
		return arg2 < buf + n && strncmp(arg2, tmp_dir, len) == 0 && arg2[len] == '/';
	}
}

void crid_unpack_kill_strays(const char *tmp_dir)
{
	for (int round = 0; round < 100; round++) {
		_cleanup_closedir_ DIR *d = opendir("/proc");
		struct dirent *de;
		bool found = false;

		if (!d)
			return;
		while ((de = readdir(d))) {
			long pid = strtol(de->d_name, NULL, 10);

			if (pid <= 1 || pid == getpid() || !is_stray(de->d_name, tmp_dir))
				continue;
			found = true;
			kill((pid_t)pid, SIGKILL);
		}
		if (!found)
			return;
		usleep(50000); /* until they are gone (zombies of init's do not read as strays) */
	}
}

/* ---- child side ---- */

/* s as it may appear between double quotes in a message: printable ASCII as
 * is, '"' and '\' escaped, other bytes as \xNN, and "..." when cut short. */
static const char *quote(char *buf, size_t size, const char *s)
{
	size_t o = 0, i;

	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		int n;

		if (c == '"' || c == '\\')
			n = snprintf(buf + o, size - o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			n = snprintf(buf + o, size - o, "\\x%02x", c);
		else
			n = snprintf(buf + o, size - o, "%c", c);
		if (n < 0 || (size_t)n >= size - o - 3)
			break;
		o += (size_t)n;
	}
	if (s[i])
		memcpy(buf + o, "...", 4);
	else
		buf[o] = '\0';
	return buf;
}

/* A directory's times, set again once everything is written: libarchive
 * defers them only for the directories it creates, not for one that
 * already existed (the layer root, a parent made for an earlier entry),
 * and every entry written into a directory changes its mtime. */
struct dir_time {
	char *path;
	struct timespec times[2];
};

struct unpacker {
	uint64_t free_reserve;	/* bytes to leave free on the file system; 0: none */
	uint64_t written;	/* since the last look at the free space */
	unsigned entries;	/* likewise */
	struct archive *stream; /* stdin, decompressed: one raw entry */
	struct archive *tar;    /* the entries, read from stream */
	struct archive *disk;
	char last[QUOTE_MAX];   /* the last entry read, quoted, for errors */
	struct dir_time *dirs;
	size_t n_dirs, cap_dirs;
	struct crid_sha256 *content; /* of the decompressed stream: the diff ID */
};

static void unpacker_free(struct unpacker *up)
{
	if (up->tar)
		archive_read_free(up->tar);
	if (up->stream)
		archive_read_free(up->stream);
	if (up->disk)
		archive_write_free(up->disk);
	for (size_t i = 0; i < up->n_dirs; i++)
		free(up->dirs[i].path);
	free(up->dirs);
}

/* A failure of the host rather than of the layer. */
static bool is_system_errno(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case ENOMEM:
	case EIO:
	case EROFS:
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
		return true;
	default:
		return false;
	}
}

static int archive_status(struct archive *a)
{
	if (archive_errno(a) == ENOSPC || archive_errno(a) == EDQUOT)
		return CRID_RESOURCE_EXHAUSTED;
	return is_system_errno(archive_errno(a)) ? CRID_INTERNAL : CRID_INVALID_ARGUMENT;
}

/* The layer may not eat into the state file system's reserve (a
 * decompression bomb would fill it). */
static int check_reserve(struct unpacker *up, struct crid_err *err)
{
	struct statvfs st;
	uint64_t free_bytes;

	up->written = 0;
	up->entries = 0;
	if (!up->free_reserve)
		return 0;
	if (statvfs("/", &st) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "check the free space");
	free_bytes = (uint64_t)st.f_bavail * st.f_frsize;
	if (free_bytes < up->free_reserve)
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, 0,
				    "stopped with %llu bytes free on the state file system, less than its reserve of "
				    "%llu bytes (state_free_reserve_bytes)",
				    (unsigned long long)free_bytes, (unsigned long long)up->free_reserve);
	if (st.f_files > 0 && st.f_favail < RESERVE_INODES)
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, 0,
				    "stopped with %llu inodes free on the state file system, less than %d",
				    (unsigned long long)st.f_favail, RESERVE_INODES);
	return 0;
}

static const char *archive_reason(struct archive *a)
{
	const char *s = archive_error_string(a);

	return s && s[0] ? s : "unknown error";
}

/* The tar reader's input: the decompressed bytes, handed over without a
 * copy (libarchive keeps them valid until the next call). */
static la_ssize_t stream_read(struct archive *tar, void *data, const void **buf)
{
	struct unpacker *up = data;

	for (;;) {
		size_t size;
		la_int64_t offset;
		int r = archive_read_data_block(up->stream, buf, &size, &offset);

		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK) {
			const char *why = archive_error_string(up->stream);

			archive_set_error(tar, archive_errno(up->stream), "%s",
					  why && why[0] ? why : "truncated or corrupt stream");
			return -1;
		}
		if (size > 0) {
			crid_sha256_update(up->content, *buf, size);
			return (la_ssize_t)size;
		}
	}
}

/* Fails an entry: INVALID_ARGUMENT, `entry "<path>"<why>`. */
static int refuse(struct crid_err *err, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct crid_err *err, const char *path, const char *fmt, ...)
{
	char q[QUOTE_MAX];
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "entry \"%s\"%s", quote(q, sizeof(q), path), why);
}

/* Whether path, as a tar names it, stays below the directory it is
 * unpacked into: not absolute, and no ".." component. */
static const char *outside_reason(const char *path)
{
	if (path[0] == '/')
		return " (absolute path)";
	for (const char *c = path; *c;) {
		size_t n = strcspn(c, "/");

		if (n == 2 && c[0] == '.' && c[1] == '.')
			return " (\"..\")";
		c += n;
		c += strspn(c, "/");
	}
	return NULL;
}

/* Refuses a path one of whose directories is a symlink on disk: writing
 * through it would land where the tar did not say. The last component may
 * be a symlink; libarchive replaces it. */
static int symlink_dir(const char *path, char *found, size_t size)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len);
	buf[len] = '\0';
	for (size_t i = 1; i < len; i++) {
		struct stat st;

		if (buf[i] != '/' || buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		if (lstat(buf, &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				return 0; /* nothing further exists */
			return -errno;
		}
		if (S_ISLNK(st.st_mode)) {
			snprintf(found, size, "%s", buf);
			return 1;
		}
		buf[i] = '/';
	}
	return 0;
}

static int check_symlink_dirs(const char *entry, const char *path, const char *what, struct crid_err *err)
{
	char found[PATH_MAX];
	char q[QUOTE_MAX];
	int r = symlink_dir(path, found, sizeof(found));

	if (r == -ENAMETOOLONG)
		return refuse(err, entry, ": path too long");
	if (r < 0)
		return crid_err_set(err, CRID_INTERNAL, -r, "entry \"%s\": check %s", quote(q, sizeof(q), entry), what);
	if (r > 0)
		return refuse(err, entry, ": %s goes through the symbolic link \"%s\"", what,
			      quote(q, sizeof(q), found));
	return 0;
}

/* The checks made before libarchive sees an entry; the chroot would
 * contain a write anyway, but a layer that tries is refused outright. */
static int check_entry(struct archive_entry *entry, const char *path, struct crid_err *err)
{
	const char *link = archive_entry_hardlink(entry);
	const char *why, *name;
	const void *value;
	char q[QUOTE_MAX];
	size_t size;
	int r;

	why = outside_reason(path);
	if (why)
		return refuse(err, path, " escapes the layer directory%s", why);
	if (link) {
		why = outside_reason(link);
		if (why)
			return refuse(err, path, ": hard link target \"%s\" escapes the layer directory%s",
				      quote(q, sizeof(q), link), why);
	}
	if ((r = check_symlink_dirs(path, path, "path", err)) < 0)
		return r;
	if (link && (r = check_symlink_dirs(path, link, "hard link target", err)) < 0)
		return r;
	/* Overlay metadata comes from whiteouts only: a layer may not smuggle
	 * in opaque dirs, redirects or metacopy files of its own. */
	archive_entry_xattr_reset(entry);
	while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
		if (strncmp(name, OVERLAY_XATTR_PREFIX, strlen(OVERLAY_XATTR_PREFIX)) == 0)
			return refuse(err, path, ": xattr \"%s\" is reserved for overlayfs", quote(q, sizeof(q), name));
	}
	return 0;
}

static int disk_error(struct unpacker *up, const char *path, struct crid_err *err)
{
	char q[QUOTE_MAX];

	return crid_err_set(err, archive_status(up->disk), 0, "entry \"%s\": %s", quote(q, sizeof(q), path),
			    archive_reason(up->disk));
}

static int read_error(struct archive *a, const char *last, struct crid_err *err)
{
	int status = archive_errno(a) == ENOMEM ? CRID_INTERNAL : CRID_INVALID_ARGUMENT;
	const char *why = archive_error_string(a);

	/* libarchive says nothing when a gzip stream ends inside its trailer */
	if (!why || !why[0])
		why = "truncated or corrupt stream";
	if (last[0])
		return crid_err_set(err, status, 0, "read layer after entry \"%s\": %s", last, why);
	return crid_err_set(err, status, 0, "read layer: %s", why);
}

static int remember_dir_time(struct unpacker *up, struct archive_entry *entry, const char *path,
			     struct crid_err *err)
{
	size_t len = strlen(path);
	struct dir_time *d;

	if (up->n_dirs == up->cap_dirs) {
		size_t cap = up->cap_dirs ? 2 * up->cap_dirs : 64;
		struct dir_time *grown = reallocarray(up->dirs, cap, sizeof(*grown));

		if (!grown)
			return crid_err_nomem(err, "directory list");
		up->dirs = grown;
		up->cap_dirs = cap;
	}
	/* "d/" is "d": a trailing slash would follow a symlink put there later. */
	while (len > 1 && path[len - 1] == '/')
		len--;
	d = &up->dirs[up->n_dirs];
	d->path = strndup(path, len);
	if (!d->path)
		return crid_err_nomem(err, "directory list");
	if (archive_entry_atime_is_set(entry)) {
		d->times[0].tv_sec = archive_entry_atime(entry);
		d->times[0].tv_nsec = archive_entry_atime_nsec(entry);
	} else {
		d->times[0].tv_nsec = UTIME_OMIT;
	}
	d->times[1].tv_sec = archive_entry_mtime(entry);
	d->times[1].tv_nsec = archive_entry_mtime_nsec(entry);
	up->n_dirs++;
	return 0;
}

/* In archive order, so the last entry for a directory wins; one that a
 * later entry replaced or moved behind a symlink is left alone. */
static int restore_dir_times(struct unpacker *up, struct crid_err *err)
{
	for (size_t i = 0; i < up->n_dirs; i++) {
		const struct dir_time *d = &up->dirs[i];
		char found[PATH_MAX], q[QUOTE_MAX];
		struct stat st;

		if (symlink_dir(d->path, found, sizeof(found)) != 0)
			continue;
		if (lstat(d->path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (utimensat(AT_FDCWD, d->path, d->times, AT_SYMLINK_NOFOLLOW) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "entry \"%s\": set times",
					    quote(q, sizeof(q), d->path));
	}
	return 0;
}

static int extract_entry(struct unpacker *up, struct archive_entry *entry, const char *path,
			 struct crid_err *err)
{
	int r;

	r = check_entry(entry, path, err);
	if (r < 0)
		return r;
	if (crid_whiteout_is(path)) {
		char q[QUOTE_MAX];

		r = crid_whiteout_apply(path, archive_entry_uid(entry), archive_entry_gid(entry), err);
		if (r < 0)
			return crid_err_wrap(err, "entry \"%s\": ", quote(q, sizeof(q), path));
		return 0; /* its data, if any, is skipped by the next header read */
	}
	if (++up->entries >= RESERVE_CHECK_ENTRIES && (r = check_reserve(up, err)) < 0)
		return r;
	if (archive_write_header(up->disk, entry) != ARCHIVE_OK)
		return disk_error(up, path, err);
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t offset;

		r = archive_read_data_block(up->tar, &buf, &size, &offset);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return read_error(up->tar, up->last, err);
		if (archive_write_data_block(up->disk, buf, size, offset) != ARCHIVE_OK)
			return disk_error(up, path, err);
		up->written += size;
		if (up->written >= RESERVE_CHECK_BYTES && (r = check_reserve(up, err)) < 0)
			return r;
	}
	if (archive_write_finish_entry(up->disk) != ARCHIVE_OK)
		return disk_error(up, path, err);
	if (archive_entry_filetype(entry) == AE_IFDIR && archive_entry_mtime_is_set(entry))
		return remember_dir_time(up, entry, path, err);
	return 0;
}

/* Reads what follows the tar's end: the rest of the compressed stream must
 * decompress cleanly (a truncated gzip or zstd stream fails here), and the
 * writer must see every byte taken so it never meets a closed pipe. */
static int finish_stream(struct unpacker *up, struct crid_err *err)
{
	char buf[64 * 1024];
	uint64_t trailer = 0;

	for (;;) {
		const void *data;
		size_t size;
		la_int64_t offset;
		int r = archive_read_data_block(up->stream, &data, &size, &offset);

		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return read_error(up->stream, up->last, err);
		trailer += size;
		if (trailer > TRAILER_MAX)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "read layer: more than %d bytes follow the end of the archive",
					    TRAILER_MAX);
		crid_sha256_update(up->content, data, size);
	}
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n == 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return crid_err_set(err, CRID_INTERNAL, errno, "read layer");
	}
}

static int open_archives(struct unpacker *up, struct crid_err *err)
{
	struct archive_entry *raw;
	int r;

	up->stream = archive_read_new();
	up->tar = archive_read_new();
	up->disk = archive_write_disk_new();
	if (!up->stream || !up->tar || !up->disk)
		return crid_err_nomem(err, "archive reader");
	/* Anything but ARCHIVE_OK means libarchive would run an external
	 * program for it, which here would be one the layer provides. */
	if (archive_read_support_filter_gzip(up->stream) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(up->stream) != ARCHIVE_OK)
		return crid_err_set(err, CRID_INTERNAL, 0,
				    "this libarchive has no built-in gzip or zstd decompressor");
	if (archive_read_support_format_raw(up->stream) != ARCHIVE_OK ||
	    archive_read_support_format_empty(up->stream) != ARCHIVE_OK ||
	    archive_read_support_format_tar(up->tar) != ARCHIVE_OK)
		return crid_err_set(err, CRID_INTERNAL, 0, "set up the archive reader: %s",
				    archive_reason(up->tar));
	if (archive_write_disk_set_options(up->disk,
					   ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
						   ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
						   ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						   ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						   ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
						   ARCHIVE_EXTRACT_UNLINK) != ARCHIVE_OK)
		return crid_err_set(err, CRID_INTERNAL, 0, "set up the archive writer: %s",
				    archive_reason(up->disk));
	if (archive_read_open_fd(up->stream, STDIN_FILENO, UNPACK_READ_BLOCK) != ARCHIVE_OK)
		return read_error(up->stream, "", err);
	r = archive_read_next_header(up->stream, &raw);
	if (r == ARCHIVE_EOF)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "read layer: the stream is empty");
	if (r != ARCHIVE_OK)
		return read_error(up->stream, "", err);
	if (archive_read_open(up->tar, up, NULL, stream_read, NULL) != ARCHIVE_OK)
		return read_error(up->tar, "", err);
	return 0;
}

static int unpack(struct crid_sha256 *content, const char *diff_id, uint64_t free_reserve, struct crid_err *err)
{
	_cleanup_(unpacker_free) struct unpacker up = { .content = content, .free_reserve = free_reserve };
	char got[CRID_DIGEST_LEN + 1];
	int r;

	r = open_archives(&up, err);
	if (r == 0)
		r = check_reserve(&up, err);
	if (r < 0)
		return r;
	for (;;) {
		struct archive_entry *entry;
		const char *path;

		r = archive_read_next_header(up.tar, &entry);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return read_error(up.tar, up.last, err);
		path = archive_entry_pathname(entry);
		if (!path || !path[0])
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "entry without a path%s%s%s",
					    up.last[0] ? " after \"" : "", up.last, up.last[0] ? "\"" : "");
		quote(up.last, sizeof(up.last), path);
		r = extract_entry(&up, entry, path, err);
		if (r < 0)
			return r;
	}
	r = finish_stream(&up, err);
	if (r < 0)
		return r;
	/* Checked before anything is declared done: the layer is stored under
	 * an ID derived from the diff ID its image claims. */
	crid_sha256_final(content, got);
	if (strcmp(got, diff_id) != 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "layer content does not match its diff_id: the image config says %s, the content "
				    "is %s",
				    diff_id, got);
	/* Directory times and modes are set here, after their contents. */
	if (archive_write_close(up.disk) != ARCHIVE_OK)
		return crid_err_set(err, archive_status(up.disk), 0, "finish the layer: %s",
				    archive_reason(up.disk));
	return restore_dir_times(&up, err);
}

/* The one line the parent reads. */
static void report(const struct crid_err *err)
{
	char line[CRID_ERR_MSG_MAX + 1];
	int n = snprintf(line, sizeof(line), "%s\n", err->msg);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	while (write(STDERR_FILENO, line, (size_t)n) < 0 && errno == EINTR)
		;
}

/* Ends the child without atexit handlers: they run after the chroot, where
 * nothing they might look for (a sanitizer's leak check reads /proc) is. */
static __attribute__((noreturn)) void child_exit(const struct crid_err *err)
{
	if (err->status == CRID_OK)
		_exit(UNPACK_EXIT_OK);
	report(err);
	if (err->status == CRID_INVALID_ARGUMENT)
		_exit(UNPACK_EXIT_BAD_LAYER);
	_exit(err->status == CRID_RESOURCE_EXHAUSTED ? UNPACK_EXIT_NO_SPACE : UNPACK_EXIT_SYSTEM);
}

int crid_unpack_main(int argc, char **argv)
{
	struct crid_sha256 *content = NULL;
	uint64_t free_reserve;
	struct crid_err err;

	crid_err_clear(&err);
	if (argc != 6 || !crid_digest_valid(argv[3])) {
		crid_err_set(&err, CRID_INTERNAL, 0, "usage: crid %s DIR DIFF_ID PARENT_PID FREE_RESERVE",
			     CRID_UNPACK_ARG);
		child_exit(&err);
	}
	/* Dies with crid: a restarted crid empties tmp/, and must not find
	 * an unpacker still writing there. The parent may have gone already. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != (pid_t)strtol(argv[4], NULL, 10)) {
		crid_err_set(&err, CRID_INTERNAL, 0, "crid is gone");
		child_exit(&err);
	}
	free_reserve = strtoull(argv[5], NULL, 10);
	/* Before the chroot: the digest and libarchive load what they need
	 * from the host. */
	if (crid_sha256_new(&content, &err) < 0 || crid_lazylib_load(CRID_LIB_ARCHIVE, &err) < 0)
		child_exit(&err);
	/* Nothing of the daemon's may reach the layer's world. */
	close_range(STDERR_FILENO + 1, ~0U, 0);
	umask(022);
	/* Pax names are UTF-8: in the C locale libarchive refuses every
	 * non-ASCII one. Loaded now: the locale files are out of reach after
	 * the chroot. */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "en_US.UTF-8");
	if (chroot(argv[2]) < 0)
		crid_err_set(&err, CRID_INTERNAL, errno, "confine to %s", argv[2]);
	else if (chdir("/") < 0)
		crid_err_set(&err, CRID_INTERNAL, errno, "confine to %s: chdir", argv[2]);
	else
		unpack(content, argv[3], free_reserve, &err);
	child_exit(&err);
}
