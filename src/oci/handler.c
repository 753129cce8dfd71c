/* Runtime handler binaries (handler.h). */
#include "oci/handler.h"

#include <jansson.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "oci/oci_runtime.h"

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

void crid_handlers_resolve(struct crid_config *cfg)
{
	for (size_t i = 0; i < cfg->n_runtimes; i++) {
		struct crid_runtime_handler *h = &cfg->runtimes[i];
		char path[PATH_MAX];
		struct crid_err err;
		char *resolved;

		if (strchr(h->path, '/'))
			continue;
		crid_err_clear(&err);
		if (crid_handler_binary(h, path, sizeof(path), &err) < 0) {
			log_warn("runtime handler not found", "handler", h->name, "error", err.msg);
			continue;
		}
		resolved = strdup(path);
		if (!resolved) {
			log_warn("runtime handler path not resolved: out of memory", "handler", h->name);
			continue;
		}
		free(h->path);
		h->path = resolved;
	}
}

static bool listed(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

void crid_handler_features(const struct crid_runtime_handler *h, struct crid_handler_features *out)
{
	struct crid_oci_runtime oci = { .handler = h->name, .root = "/" };
	json_auto_t *f = NULL;
	struct crid_err err;
	char path[4096], version[128];
	int major = 0, minor = 0;

	memset(out, 0, sizeof(*out));
	if (crid_handler_binary(h, path, sizeof(path), &err) < 0)
		return;
	oci.path = path;
	if (crid_oci_features(&oci, &f, &err) == 0) {
		out->user_namespaces = listed(json_object_get(json_object_get(f, "linux"), "namespaces"), "user");
		out->rro = listed(json_object_get(f, "mountOptions"), "rro");
		return;
	}
	/* crun before 1.9 has no "features"; it has done user namespaces
	 * all along, and "rro" since 1.4. */
	if (crid_oci_version(&oci, version, sizeof(version), &err) == 0 &&
	    sscanf(version, "crun version %d.%d", &major, &minor) == 2) {
		out->user_namespaces = true;
		out->rro = major > 1 || (major == 1 && minor >= 4);
	}
}
