/* User namespaces made from ID mappings, and mount trees copied out of the
 * host's, optionally ID-mapped through such a namespace: what a pod's user
 * namespace and a container's volumes and layers are made of. The daemon
 * is multi-threaded, so a namespace is made by a short-lived child; mounts
 * are made with the new mount API (open_tree, mount_setattr, move_mount),
 * never by path strings that could be swapped meanwhile. */
#ifndef CRID_COMMON_IDMAP_H
#define CRID_COMMON_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* The kernel takes at most this many lines in a uid_map or gid_map. */
#define CRID_IDMAP_MAX 340

/* count IDs from inside (in the namespace) map to outside (the host). */
struct crid_idmap {
	uint32_t inside, outside, count;
};

/* Checks a mapping list: 1 to CRID_IDMAP_MAX entries, no empty or
 * overflowing range, no two overlapping on either side. INVALID_ARGUMENT
 * naming what (e.g. "uids[1]"). */
int crid_idmap_check(const struct crid_idmap *m, size_t n, const char *what, struct crid_err *err);

/* The host ID that inside ID id maps to; false when it is not mapped. */
bool crid_idmap_outside(const struct crid_idmap *m, size_t n, uint32_t id, uint32_t *out);

/* A new user namespace with these mappings (checked first), as an
 * O_CLOEXEC fd in *fd. */
int crid_userns_create(const struct crid_idmap *uids, size_t n_uids, const struct crid_idmap *gids, size_t n_gids,
		       int *fd, struct crid_err *err);

/* How a copied tree propagates mount events: as the original, not at all,
 * receiving the host's only, or both ways. */
enum crid_propagation {
	CRID_PROPAGATION_KEEP = 0,
	CRID_PROPAGATION_PRIVATE,
	CRID_PROPAGATION_SLAVE,
	CRID_PROPAGATION_SHARED,
};

/* A detached copy of the mount tree at fd (from an O_PATH open; its
 * submounts included when recursive), ID-mapped through userns_fd when it
 * is >= 0, with the propagation asked. *tree is an O_CLOEXEC fd; closing it
 * unmounts the copy unless it was attached. A file system that cannot be
 * ID-mapped is FAILED_PRECONDITION naming what (e.g. "mounts[0].host_path
 * /data"). */
int crid_mount_copy(int fd, bool recursive, int userns_fd, enum crid_propagation prop, const char *what, int *tree,
		    struct crid_err *err);

/* Makes a detached tree read-only, its submounts too. */
int crid_mount_set_readonly(int tree, struct crid_err *err);

/* Attaches a detached tree on dirfd/name, which must exist (a directory for
 * a directory, a file for a file). */
int crid_mount_attach(int tree, int dirfd, const char *name, struct crid_err *err);

/* Whether mounts of the file system holding path can be ID-mapped (a user
 * namespace is made and thrown away to find out). */
bool crid_idmap_supported(const char *path);

#endif
