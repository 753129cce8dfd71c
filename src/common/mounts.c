/* Mount points as crid finds and ends them: every mount below a directory,
 * read from /proc/self/mountinfo, detached deepest first. Never mounts. */
#include "common/mounts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "common/cleanup.h"

#define UNMOUNT_ROUNDS 8 /* of reading mountinfo and unmounting */

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static int by_length_desc(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

	return la < lb ? 1 : la > lb ? -1 : 0;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The mount points strictly below dir (canonical, not "/"), deepest
 * first; a point mounted twice is listed twice. */
static int mounts_below(const char *dir, char ***out, size_t *n_out, struct crid_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0, dlen = strlen(dir), n = 0, alloc = 0;
	char **v = NULL;

	*out = NULL;
	*n_out = 0;
	if (!f)
		return crid_err_set(err, CRID_INTERNAL, errno, "read /proc/self/mountinfo");
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *mp = NULL, *tok = strtok_r(line, " \n", &save);

		/* id parent major:minor root mountpoint ... */
		for (int i = 0; tok && i < 4; i++)
			tok = strtok_r(NULL, " \n", &save);
		mp = tok;
		if (!mp)
			continue;
		unescape(mp);
		if (strncmp(mp, dir, dlen) != 0 || mp[dlen] != '/')
			continue;
		if (n == alloc) {
			size_t na = alloc ? alloc * 2 : 8;
			char **grown = realloc(v, na * sizeof(*v));

			if (!grown) {
				free_list(v, n);
				return crid_err_nomem(err, "mount list");
			}
			v = grown;
			alloc = na;
		}
		if (!(v[n] = strdup(mp))) {
			free_list(v, n);
			return crid_err_nomem(err, "mount list");
		}
		n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), by_length_desc);
	*out = v;
	*n_out = n;
	return 0;
}

/* Detaches every mount below dir, deepest first, until none is left. */
int crid_unmount_below(const char *dir, struct crid_err *err)
{
	for (int round = 0; round < UNMOUNT_ROUNDS; round++) {
		char **v;
		size_t n;
		int r, failed = 0;
		char *failed_at = NULL;

		r = mounts_below(dir, &v, &n, err);
		if (r < 0)
			return r;
		if (n == 0) {
			free(v);
			return 0;
		}
		for (size_t i = 0; i < n; i++) {
			/* EINVAL: no longer a mount point (raced, or detached
			 * with its parent already). */
			if (umount2(v[i], MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT &&
			    !failed) {
				failed = errno;
				failed_at = v[i];
			}
		}
		if (failed) {
			r = crid_err_set(err, CRID_INTERNAL, failed, "unmount %s", failed_at);
			free_list(v, n);
			return r;
		}
		free_list(v, n);
	}
	return crid_err_set(err, CRID_INTERNAL, EBUSY, "unmount everything below %s", dir);
}

