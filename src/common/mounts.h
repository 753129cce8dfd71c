/* Mount points under a directory: detaching every one, deepest first, until
 * none is left. Reads /proc/self/mountinfo; never makes a mount. */
#ifndef CRID_COMMON_MOUNTS_H
#define CRID_COMMON_MOUNTS_H

#include "common/error.h"

/* Detaches (MNT_DETACH) every mount strictly below dir (a canonical
 * absolute path), deepest first, rereading until none is left. */
int crid_unmount_below(const char *dir, struct crid_err *err);

#endif
