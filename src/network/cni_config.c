/* Network configuration lists (cni.h): one file's list checked as plugins
 * will need it, and the lexically first valid file of the directory, as
 * the kubelet's other runtimes choose. Reads files only; runs nothing. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "network/cni.h"

static const char *const versions[] = { "1.0.0", "0.4.0", "0.3.1", "0.3.0" };

bool crid_cni_version_supported(const char *v)
{
	for (size_t i = 0; v && i < CRID_ARRAY_SIZE(versions); i++)
		if (strcmp(v, versions[i]) == 0)
			return true;
	return false;
}

int crid_cni_version_cmp(const char *a, const char *b)
{
	unsigned va[3] = { 0 }, vb[3] = { 0 };

	sscanf(a, "%u.%u.%u", &va[0], &va[1], &va[2]);
	sscanf(b, "%u.%u.%u", &vb[0], &vb[1], &vb[2]);
	for (int i = 0; i < 3; i++)
		if (va[i] != vb[i])
			return va[i] < vb[i] ? -1 : 1;
	return 0;
}

struct crid_cni_conflist *crid_cni_conflist_ref(struct crid_cni_conflist *l)
{
	if (l)
		atomic_fetch_add(&l->refs, 1);
	return l;
}

void crid_cni_conflist_unref(struct crid_cni_conflist *l)
{
	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	json_decref(l->list);
	free(l->file);
	free(l);
}

const char *crid_cni_plugin_type(const struct crid_cni_conflist *l, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(l->list, "plugins"), i), "type"));
}

/* As the CNI specification allows network names: a letter or digit, then
 * letters, digits, '_', '.', '-'. */
static bool valid_name(const char *s)
{
	if (!isalnum((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

/* A plugin type is a file name in a bin dir, nothing more. */
static bool valid_type(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 255 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (*s == '/' || iscntrl((unsigned char)*s))
			return false;
	return true;
}

static int check_plugin(json_t *p, size_t i, bool single, struct crid_err *err)
{
	const char *type;
	json_t *caps;
	char where[32] = "";

	if (!single)
		snprintf(where, sizeof(where), "plugins[%zu].", i);
	if (!json_is_object(p))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "plugins[%zu] is not an object", i);
	type = json_string_value(json_object_get(p, "type"));
	if (!type || !*type)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%stype is missing", where);
	if (!valid_type(type))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%stype \"%.64s\" is not a plugin name", where,
				    type);
	caps = json_object_get(p, "capabilities");
	if (caps && !json_is_object(caps))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%scapabilities is not an object", where);
	return 0;
}

int crid_cni_conflist_new(const char *file, json_t *json, bool single, struct crid_cni_conflist **out,
			  struct crid_err *err)
{
	_cleanup_free_ struct crid_cni_conflist *l = NULL;
	json_t *plugins, *dc, *list;
	const char *name, *version;
	size_t n;
	int r;

	*out = NULL;
	if (!json_is_object(json))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "not a JSON object");
	/* A .conf holding a list is taken as one, as other runtimes do. */
	if (single && !json_object_get(json, "type") && json_object_get(json, "plugins"))
		single = false;
	version = json_string_value(json_object_get(json, "cniVersion"));
	name = json_string_value(json_object_get(json, "name"));
	if (!version)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cniVersion is missing");
	if (!crid_cni_version_supported(version))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "cniVersion \"%.32s\" is not one crid speaks (1.0.0, 0.4.0, 0.3.1, 0.3.0)",
				    version);
	if (!name || !*name)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "name is missing");
	if (!valid_name(name) || strlen(name) > 128)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "name \"%.64s\" is not a network name (letters, digits, '_', '.', '-')", name);
	dc = json_object_get(json, "disableCheck");
	if (dc && !json_is_boolean(dc))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "disableCheck is not true or false");
	if (single) {
		if ((r = check_plugin(json, 0, true, err)) < 0)
			return r;
		list = json_pack("{s:s, s:s, s:[O]}", "cniVersion", version, "name", name, "plugins", json);
	} else {
		plugins = json_object_get(json, "plugins");
		if (!json_is_array(plugins) || json_array_size(plugins) == 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "plugins is not a list of plugins");
		if (json_array_size(plugins) > CRID_CNI_PLUGINS_MAX)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "plugins: more than %d", CRID_CNI_PLUGINS_MAX);
		for (size_t i = 0; i < json_array_size(plugins); i++)
			if ((r = check_plugin(json_array_get(plugins, i), i, false, err)) < 0)
				return r;
		list = json_pack("{s:s, s:s, s:O}", "cniVersion", version, "name", name, "plugins", plugins);
	}
	if (!list || (dc && json_object_set(list, "disableCheck", dc) < 0)) {
		json_decref(list);
		return crid_err_nomem(err, "CNI network list");
	}
	/* A private copy: the caller's document may change, the list may not. */
	n = json_array_size(json_object_get(list, "plugins"));
	l = calloc(1, sizeof(*l));
	if (!l || !(l->file = strdup(file ? file : ""))) {
		json_decref(list);
		if (l)
			free(l->file);
		return crid_err_nomem(err, "CNI network list");
	}
	l->list = json_deep_copy(list);
	json_decref(list);
	if (!l->list) {
		free(l->file);
		return crid_err_nomem(err, "CNI network list");
	}
	atomic_init(&l->refs, 1);
	l->name = json_string_value(json_object_get(l->list, "name"));
	l->version = json_string_value(json_object_get(l->list, "cniVersion"));
	l->disable_check = dc && json_is_true(dc);
	l->n_plugins = n;
	*out = take_ptr(&l);
	return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls > lx && strcmp(s + ls - lx, suffix) == 0;
}

static bool is_conf_name(const char *name)
{
	return name[0] != '.' &&
	       (has_suffix(name, ".conflist") || has_suffix(name, ".conf") || has_suffix(name, ".json"));
}

/* The directory is the operator's: a file may be a symlink (as Kubernetes
 * mounts configuration), so links are followed; but only a regular file
 * is read, so a FIFO cannot stall the reload. */
static int read_conf(int dirfd, const char *path, const char *name, char **data, size_t *len,
		     struct crid_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t used = 0;

	if (fd < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "%s", path);
	if (fstat(fd, &st) < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "%s", path);
	if (!S_ISREG(st.st_mode))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: not a regular file", path);
	if (st.st_size > CRID_CNI_CONF_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: larger than %u bytes", path, CRID_CNI_CONF_MAX);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return crid_err_nomem(err, path);
	while (used < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + used, (size_t)st.st_size - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "%s", path);
		if (n == 0)
			break; /* shrunk while read: parsed as it is */
		used += (size_t)n;
	}
	buf[used] = '\0';
	*data = take_ptr(&buf);
	*len = used;
	return 0;
}

int crid_cni_conflist_read(int dirfd, const char *dir, const char *name, struct crid_cni_conflist **out,
			   struct crid_err *err)
{
	_cleanup_free_ char *data = NULL, *path = NULL;
	json_error_t jerr;
	json_t *json;
	size_t len = 0;
	int r;

	*out = NULL;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return crid_err_nomem(err, "CNI configuration path");
	r = read_conf(dirfd, path, name, &data, &len, err);
	if (r < 0)
		return r;
	json = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: not valid JSON: line %d: %s", path, jerr.line,
				    jerr.text);
	r = crid_cni_conflist_new(path, json, !has_suffix(name, ".conflist"), out, err);
	json_decref(json);
	if (r < 0)
		return crid_err_wrap(err, "%s: ", path);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct names {
	char **v;
	size_t n;
};

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
}

void crid_cni_conflist_load_dir(const char *dir, struct crid_cni_conflist **out, char *why, size_t why_len)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_(names_free) struct names names = { 0 };
	struct crid_err err, first;
	size_t cap = 0;
	struct dirent *de;
	int fd;

	*out = NULL;
	crid_err_clear(&first);
	d = opendir(dir);
	if (!d) {
		snprintf(why, why_len, "cannot read the CNI configuration directory %s: %s", dir, strerror(errno));
		return;
	}
	fd = dirfd(d);
	while ((de = readdir(d))) {
		if (!is_conf_name(de->d_name))
			continue;
		if (names.n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			char **grown = reallocarray(names.v, nc, sizeof(*names.v));

			if (!grown) {
				snprintf(why, why_len, "out of memory reading %s", dir);
				return;
			}
			names.v = grown;
			cap = nc;
		}
		if (!(names.v[names.n] = strdup(de->d_name))) {
			snprintf(why, why_len, "out of memory reading %s", dir);
			return;
		}
		names.n++;
	}
	if (names.n == 0) {
		snprintf(why, why_len, "no CNI network configuration in %s (a .conflist, .conf or .json file)", dir);
		return;
	}
	qsort(names.v, names.n, sizeof(*names.v), cmp_names);
	for (size_t i = 0; i < names.n; i++) {
		if (crid_cni_conflist_read(fd, dir, names.v[i], out, &err) == 0)
			return;
		if (!first.msg[0])
			first = err;
	}
	snprintf(why, why_len, "no valid CNI network configuration in %s: %s", dir, first.msg);
}
