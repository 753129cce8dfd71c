/* Runtime handler binaries (handler.h). */
#include "oci/handler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int executable_file(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EISDIR;
	if (access(path, X_OK) < 0)
		return -errno;
	return 0;
}

int crid_handler_binary(const struct crid_runtime_handler *h, char *out, size_t out_size, struct crid_err *err)
{
	const char *search;
	int r;

	if (strchr(h->path, '/')) {
		r = executable_file(h->path);
		if (r < 0)
			return crid_err_set(err, CRID_FAILED_PRECONDITION, -r, "runtime handler %s: %s", h->name,
					    h->path);
		if ((size_t)snprintf(out, out_size, "%s", h->path) >= out_size)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, ENAMETOOLONG, "runtime handler %s: %s",
					    h->name, h->path);
		return 0;
	}
	search = getenv("PATH");
	if (!search || !*search)
		search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*search) {
		size_t len = strcspn(search, ":");
		int n = snprintf(out, out_size, "%.*s/%s", (int)len, search, h->path);

		if (len > 0 && n > 0 && (size_t)n < out_size && executable_file(out) == 0)
			return 0;
		search += len;
		if (*search == ':')
			search++;
	}
	return crid_err_set(err, CRID_FAILED_PRECONDITION, ENOENT, "runtime handler %s: %s not found in PATH",
			    h->name, h->path);
}
