/* Scope-bound ownership: variables that free, close or unref what they hold
 * when they leave scope, and take_* helpers that hand ownership out. */
#ifndef CRID_COMMON_CLEANUP_H
#define CRID_COMMON_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void crid_freep(void *p)
{
	free(*(void **)p);
}

static inline void crid_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void crid_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void crid_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(crid_freep)
#define _cleanup_close_ _cleanup_(crid_closep)
#define _cleanup_fclose_ _cleanup_(crid_fclosep)
#define _cleanup_closedir_ _cleanup_(crid_closedirp)

static inline int take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

#define take_ptr(p)                          \
	({                                   \
		__typeof__(*(p)) taken_ = *(p); \
		*(p) = NULL;                 \
		taken_;                      \
	})

#define CRID_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
