/* File system helpers relative to trusted directory fds: atomic writes,
 * whole-file reads, recursive removal that never follows symlinks or leaves
 * the directory it was given. */
#ifndef CRID_COMMON_FSUTIL_H
#define CRID_COMMON_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* mkdir -p of an absolute path from the configuration (not from requests). */
int crid_mkdir_p(const char *path, mode_t mode, struct crid_err *err);

/* Opens (creating with mode if missing) the directory name under dirfd,
 * without following a symlink. */
int crid_open_dir_at(int dirfd, const char *name, mode_t mode, struct crid_err *err);

/* Like crid_open_dir_at, for a directory no other user may enter: created
 * 0700, and an existing one's group and other bits cleared (an older
 * installation's). */
int crid_open_private_dir_at(int dirfd, const char *name, struct crid_err *err);

/* mkdir -p of path (from the configuration), its last component private as
 * with crid_open_private_dir_at. */
int crid_mkdir_private(const char *path, struct crid_err *err);

/* Clears the group and other bits of dirfd/name if it exists (a file of an
 * older installation). Missing is success; symlinks are never followed. */
int crid_make_private_at(int dirfd, const char *name, struct crid_err *err);

/* Writes data to dirfd/name atomically: a temporary file, fsync, rename. */
int crid_write_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		       struct crid_err *err);

/* The same without the fsync: survives a crash of crid, not of the
 * machine; for copies that are not the record of last resort. */
int crid_replace_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			 struct crid_err *err);

/* Reads all of dirfd/name (at most max bytes) into a malloc'd buffer with a
 * NUL after the data. NOT_FOUND when missing. */
int crid_read_file_at(int dirfd, const char *name, size_t max, char **data, size_t *len, struct crid_err *err);

/* rm -rf of dirfd/name: never follows symlinks, never crosses into other
 * mounts' contents. Missing is success. */
int crid_rmtree_at(int dirfd, const char *name, struct crid_err *err);

/* Bytes (st_blocks * 512) and inodes below dirfd/name, the directory
 * itself included, each inode once however many names it has; does not
 * cross mounts. */
int crid_disk_usage_at(int dirfd, const char *name, uint64_t *bytes, uint64_t *inodes, struct crid_err *err);

/* Whether others may search dir and each of its parents (a process of a
 * user namespace, to which host root's files belong to "others", walks
 * through them). FAILED_PRECONDITION naming the first that is not. */
int crid_check_searchable(const char *dir, struct crid_err *err);
/* Whether path has a ".." component. */
bool crid_path_has_dotdot(const char *path);

/* A random lowercase hex string of n characters (n < out_size). */
int crid_random_hex(char *out, size_t n, struct crid_err *err);

#endif
