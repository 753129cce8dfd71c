/* linux.devices and the device cgroup rules (linux.resources.devices): the
 * default allow list, the config's devices (stat'ed on the host for their
 * type and numbers, as containerd and CRI-O do; a directory brings every
 * device below it) and, for a privileged container, every host device with
 * all devices allowed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

#define WALK_DEPTH_MAX 8

/* Docker's and runc's defaults: mknod of anything, then the character
 * devices every container gets. -1 is a wildcard (omitted in the rule). */
static const struct {
	char type;
	int major, minor;
	const char *access;
} default_rules[] = {
	{ 'c', -1, -1, "m" }, /* mknod */
	{ 'b', -1, -1, "m" },
	{ 'c', 1, 3, "rwm" },	/* /dev/null */
	{ 'c', 1, 5, "rwm" },	/* /dev/zero */
	{ 'c', 1, 7, "rwm" },	/* /dev/full */
	{ 'c', 1, 8, "rwm" },	/* /dev/random */
	{ 'c', 1, 9, "rwm" },	/* /dev/urandom */
	{ 'c', 5, 0, "rwm" },	/* /dev/tty */
	{ 'c', 5, 1, "rwm" },	/* /dev/console */
	{ 'c', 5, 2, "rwm" },	/* /dev/ptmx */
	{ 'c', 136, -1, "rwm" }, /* /dev/pts/N */
};

static json_t *rule(bool allow, char type, long long major, long long minor, const char *access)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	bad |= json_object_set_new(o, "allow", json_boolean(allow));
	if (type) {
		char t[2] = { type, 0 };

		bad |= json_object_set_new(o, "type", json_string(t));
	}
	if (major >= 0)
		bad |= json_object_set_new(o, "major", json_integer(major));
	if (minor >= 0)
		bad |= json_object_set_new(o, "minor", json_integer(minor));
	bad |= json_object_set_new(o, "access", json_string(access));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static bool has_path(json_t *devices, const char *path)
{
	size_t i;
	json_t *d;

	json_array_foreach(devices, i, d) {
		if (strcmp(json_string_value(json_object_get(d, "path")), path) == 0)
			return true;
	}
	return false;
}

struct dev_sink {
	json_t *devices, *rules; /* rules NULL: all devices are allowed */
	const char *access;
};

/* One device node; the first entry for a container path wins. */
static int add_device(struct dev_sink *s, const char *cpath, const struct stat *st, struct crid_err *err)
{
	char t = S_ISBLK(st->st_mode) ? 'b' : 'c';
	char type[2] = { t, 0 };
	json_t *o;
	int bad = 0;

	if (has_path(s->devices, cpath))
		return 0;
	o = json_object();
	if (json_array_append_new(s->devices, o) < 0)
		return crid_err_nomem(err, "linux.devices");
	bad |= json_object_set_new(o, "path", json_string(cpath));
	bad |= json_object_set_new(o, "type", json_string(type));
	bad |= json_object_set_new(o, "major", json_integer(major(st->st_rdev)));
	bad |= json_object_set_new(o, "minor", json_integer(minor(st->st_rdev)));
	bad |= json_object_set_new(o, "fileMode", json_integer(st->st_mode & 0777));
	bad |= json_object_set_new(o, "uid", json_integer(st->st_uid));
	bad |= json_object_set_new(o, "gid", json_integer(st->st_gid));
	if (s->rules)
		bad |= json_array_append_new(s->rules,
					     rule(true, t, major(st->st_rdev), minor(st->st_rdev), s->access));
	return bad ? crid_err_nomem(err, "linux.devices") : 0;
}

/* Names never taken from a host directory of devices (containerd's and
 * runc's list): other file systems the runtime mounts itself, LXC/LXD and
 * udev internals, and the console the runtime provides. */
static bool skipped(const char *name, bool dir)
{
	static const char *const dirs[] = { "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev" };

	if (!dir)
		return strcmp(name, "console") == 0;
	for (size_t i = 0; i < CRID_ARRAY_SIZE(dirs); i++) {
		if (strcmp(name, dirs[i]) == 0)
			return true;
	}
	return false;
}

static void free_names(struct dirent **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Every device below the directory dfd, as cprefix/<relative path>, in
 * name order; symbolic links are not followed. */
static int walk(int dfd, const char *cprefix, int depth, struct dev_sink *s, struct crid_err *err)
{
	struct dirent **names = NULL;
	int n, r = 0;

	n = scandirat(dfd, ".", &names, NULL, alphasort);
	if (n < 0)
		return 0; /* unreadable: nothing to take from it */
	for (int i = 0; i < n && r == 0; i++) {
		const char *name = names[i]->d_name;
		_cleanup_free_ char *cpath = NULL;
		struct stat st;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (skipped(name, S_ISDIR(st.st_mode)))
			continue;
		if (asprintf(&cpath, "%s/%s", strcmp(cprefix, "/") == 0 ? "" : cprefix, name) < 0) {
			cpath = NULL;
			r = crid_err_nomem(err, "linux.devices");
		} else if (S_ISDIR(st.st_mode) && depth < WALK_DEPTH_MAX) {
			_cleanup_close_ int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0)
				r = walk(sub, cpath, depth + 1, s, err);
		} else if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && st.st_rdev != 0) {
			r = add_device(s, cpath, &st, err);
		}
	}
	free_names(names, n);
	return r;
}

static bool access_ok(const char *a)
{
	return *a && strspn(a, "rwm") == strlen(a);
}

static int config_device(const Runtime__V1__Device *d, size_t i, struct dev_sink *s, struct crid_err *err)
{
	const char *perms = d->permissions && *d->permissions ? d->permissions : "rwm";
	struct stat st;

	if (!d->container_path || d->container_path[0] != '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "devices[%zu].container_path \"%s\" is not absolute",
				    i, d->container_path ? d->container_path : "");
	if (!d->host_path || d->host_path[0] != '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "devices[%zu].host_path \"%s\" is not absolute", i,
				    d->host_path ? d->host_path : "");
	if (!access_ok(perms))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "devices[%zu].permissions \"%s\": only r, w and m are allowed", i, perms);
	if (stat(d->host_path, &st) < 0)
		return crid_err_set(err, crid_status_from_errno(errno), errno, "devices[%zu].host_path %s", i,
				    d->host_path);
	s->access = perms;
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int dfd = open(d->host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0)
			return crid_err_set(err, crid_status_from_errno(errno), errno, "devices[%zu].host_path %s", i,
					    d->host_path);
		return walk(dfd, d->container_path, 1, s, err);
	}
	if (!(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "devices[%zu].host_path %s is not a device", i,
				    d->host_path);
	return add_device(s, d->container_path, &st, err);
}

int crid_spec_devices(const Runtime__V1__ContainerConfig *config, bool privileged, json_t **devices, json_t **rules,
		      struct crid_err *err)
{
	json_auto_t *devs = json_array();
	json_auto_t *rls = json_array();
	struct dev_sink s = { devs, privileged ? NULL : rls, "rwm" };
	int r, bad = 0;

	*devices = *rules = NULL;
	if (!devs || !rls)
		return crid_err_nomem(err, "linux.devices");
	if (privileged) {
		bad |= json_array_append_new(rls, rule(true, 0, -1, -1, "rwm"));
	} else {
		bad |= json_array_append_new(rls, rule(false, 0, -1, -1, "rwm"));
		for (size_t i = 0; i < CRID_ARRAY_SIZE(default_rules); i++)
			bad |= json_array_append_new(rls, rule(true, default_rules[i].type, default_rules[i].major,
							       default_rules[i].minor, default_rules[i].access));
	}
	if (bad)
		return crid_err_nomem(err, "linux.resources.devices");
	/* The config's devices first, so that they win over host ones. */
	for (size_t i = 0; config && i < config->n_devices; i++) {
		r = config_device(config->devices[i], i, &s, err);
		if (r < 0)
			return r;
	}
	if (privileged) {
		_cleanup_close_ int dfd = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		s.access = "rwm";
		if (dfd >= 0) {
			r = walk(dfd, "/dev", 1, &s, err);
			if (r < 0)
				return r;
		}
	}
	*devices = take_ptr(&devs);
	*rules = take_ptr(&rls);
	return 0;
}
