/* OCI whiteouts in the form overlayfs reads (whiteout.h). Runs in the
 * unpacker child, chrooted into the layer, so every path here is inside it. */
#include "image/whiteout.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"
#define OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"

/* The length of path without trailing slashes ("a/b/" is "a/b"). */
static size_t trimmed_len(const char *path)
{
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	return len;
}

bool crid_whiteout_is(const char *path)
{
	size_t len = trimmed_len(path);
	size_t base = len;

	while (base > 0 && path[base - 1] != '/')
		base--;
	return len - base >= strlen(WH_PREFIX) && strncmp(path + base, WH_PREFIX, strlen(WH_PREFIX)) == 0;
}

/* mkdir -p dir, 0755 like the parents libarchive creates. dir holds no
 * symlink (checked by the caller), so this never leaves the layer. */
static int make_dirs(char *dir, struct crid_err *err)
{
	struct stat st;

	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (p[-1] != '/') {
			char saved = *p;

			*p = '\0';
			if (mkdir(dir, 0755) < 0 && errno != EEXIST)
				return crid_err_set(err, CRID_INTERNAL, errno, "create directory %s", dir);
			*p = saved;
		}
		if (*p == '\0')
			break;
	}
	if (lstat(dir, &st) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "stat %s", dir);
	if (!S_ISDIR(st.st_mode))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, ENOTDIR, "%s", dir);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? errno : 0;
}

/* Removes whatever is at path, a whole tree when it is a directory. */
static int remove_any(const char *path, struct crid_err *err)
{
	struct stat st;
	int r;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return crid_err_set(err, CRID_INTERNAL, errno, "stat %s", path);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "remove %s", path);
		return 0;
	}
	r = nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (r != 0)
		return crid_err_set(err, CRID_INTERNAL, r > 0 ? r : errno, "remove directory %s", path);
	return 0;
}

int crid_whiteout_apply(const char *path, uid_t uid, gid_t gid, struct crid_err *err)
{
	char copy[PATH_MAX];
	char target[PATH_MAX];
	char here[] = ".";
	size_t len = trimmed_len(path);
	char *dir, *slash;
	const char *base, *name;
	int r;

	if (len >= sizeof(copy))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, ENAMETOOLONG, "whiteout");
	memcpy(copy, path, len);
	copy[len] = '\0';
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
		dir = copy;
		base = slash + 1;
		if (dir[0] == '\0')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "whiteout with an absolute path");
	} else {
		dir = here;
		base = copy;
	}

	if (strcmp(base, WH_OPAQUE) == 0) {
		r = make_dirs(dir, err);
		if (r < 0)
			return crid_err_wrap(err, "opaque whiteout: ");
		if (lsetxattr(dir, OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "opaque whiteout: set %s on %s",
					    OVERLAY_OPAQUE_XATTR, dir);
		return 0;
	}
	if (strncmp(base, WH_META_PREFIX, strlen(WH_META_PREFIX)) == 0)
		return 0; /* other metadata whiteouts (".wh..wh.plnk"...) mean nothing here */

	name = base + strlen(WH_PREFIX);
	if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "invalid whiteout name");
	if (snprintf(target, sizeof(target), "%s/%s", dir, name) >= (int)sizeof(target))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, ENAMETOOLONG, "whiteout");
	r = make_dirs(dir, err);
	if (r < 0)
		return crid_err_wrap(err, "whiteout: ");
	r = remove_any(target, err);
	if (r < 0)
		return crid_err_wrap(err, "whiteout: ");
	if (mknod(target, S_IFCHR | 0000, makedev(0, 0)) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "whiteout: create device 0:0 %s", target);
	if (lchown(target, uid, gid) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "whiteout: chown %s", target);
	return 0;
}
