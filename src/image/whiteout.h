/* OCI whiteouts turned into the form overlayfs reads: ".wh.<name>" becomes a
 * 0:0 character device <name>, ".wh..wh..opq" the trusted.overlay.opaque
 * xattr on its directory. Only the unpacker child calls this, after it has
 * confined itself to the layer; it never follows a symlink. */
#ifndef CRID_IMAGE_WHITEOUT_H
#define CRID_IMAGE_WHITEOUT_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* Whether the last component of path starts with ".wh.": such an entry is a
 * whiteout and never becomes a file of that name. */
bool crid_whiteout_is(const char *path);

/* Applies the whiteout entry path, relative to the current directory and
 * already checked to name no ".." and no symlink among its directories.
 * Missing directories are created (0755). ".wh.<name>" replaces whatever is
 * at <name> with a character device 0:0 owned by uid:gid; ".wh..wh..opq"
 * marks its directory opaque; other ".wh..wh." names are ignored. A
 * malformed name (".wh.", ".wh..") is INVALID_ARGUMENT. */
int crid_whiteout_apply(const char *path, uid_t uid, gid_t gid, struct crid_err *err);

#endif
