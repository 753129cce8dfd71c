/* A pod's namespaces, files, shm and init (pod_ns.h): creating them in
 * order, loading them after a restart, and taking them down again from
 * the directory alone. The steps live in pod_ns_files.c (files),
 * pod_ns_pin.c (net/ipc/uts namespaces) and pod_init.c (the PID
 * namespace's init); this file holds them together and makes every failure
 * and every removal leave nothing mounted and nothing running. */
#include "pod/pod_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/mounts.h"

#define DEFAULT_SHM_SIZE (64ULL << 20)
#define USERNS_FIELD "linux.security_context.namespace_options.userns_options"
#define SYSCTL_VALUE_MAX 4096 /* one page: what a /proc/sys write takes */

static const struct {
	const char *name, *what;
	size_t field; /* offsetof the path in struct crid_pod_ns */
} pins[] = {
	{ "user", "user", offsetof(struct crid_pod_ns, user_path) },
	{ "net", "network", offsetof(struct crid_pod_ns, net_path) },
	{ "ipc", "IPC", offsetof(struct crid_pod_ns, ipc_path) },
	{ "uts", "UTS", offsetof(struct crid_pod_ns, uts_path) },
};

static char **pin_field(struct crid_pod_ns *ns, size_t k)
{
	return (char **)((char *)ns + pins[k].field);
}

void crid_pod_ns_free(struct crid_pod_ns *ns)
{
	if (!ns)
		return;
	free(ns->user_path);
	free(ns->net_path);
	free(ns->ipc_path);
	free(ns->uts_path);
	free(ns->hosts_path);
	free(ns->resolv_path);
	free(ns->hostname_path);
	free(ns->shm_path);
	free(ns->pid_ns_path);
	memset(ns, 0, sizeof(*ns));
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- taking a pod down ---- */

/* Kills the init whose pid "<dir>/init.pid" records, if it still is that. */
static int kill_recorded_init(int dirfd, const char *dir, struct crid_err *err)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	char *end;
	long v;
	int r;

	r = crid_read_file_at(dirfd, "init.pid", 64, &data, &len, err);
	/* Missing, or not a file (a directory, a symlink): nothing recorded. */
	if (r < 0 && (err->status == CRID_NOT_FOUND || err->errnum == EISDIR || err->errnum == ELOOP))
		return 0;
	if (r < 0)
		return r;
	errno = 0;
	v = strtol(data, &end, 10);
	if (errno || end == data || (*end && *end != '\n') || v <= 1 || v > INT_MAX)
		return 0; /* cut short by a crash: nothing this could kill */
	return crid_pod_init_kill((pid_t)v, dir, err);
}

/* Removes everything in dirfd, leaving the directory itself. */
static int empty_dir(int dirfd, const char *dir, struct crid_err *err)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct crid_err e2;
	struct dirent *de;
	int dup_fd, r, first = 0;

	dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "empty %s", dir);
	d = fdopendir(dup_fd);
	if (!d) {
		r = crid_err_set(err, CRID_INTERNAL, errno, "empty %s", dir);
		close(dup_fd);
		return r;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((r = crid_rmtree_at(dirfd, de->d_name, &e2)) < 0 && !first)
			first = r, *err = e2;
	}
	return first;
}

/* Kills the init, unmounts, and removes the whole tree (remove_dir) or
 * only what is in it. Every step runs; the first error is reported. */
static int take_down(const char *real, pid_t init_pid, bool remove_dir, struct crid_err *err)
{
	_cleanup_close_ int dirfd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct crid_err e2;
	int r, first = 0;

	if (dirfd < 0 && errno == ENOENT)
		return 0;
	if (dirfd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", real);
	if (init_pid > 0 && (r = crid_pod_init_kill(init_pid, real, &e2)) < 0 && !first)
		first = r, *err = e2;
	if ((r = kill_recorded_init(dirfd, real, &e2)) < 0 && !first)
		first = r, *err = e2;
	if ((r = crid_unmount_below(real, &e2)) < 0 && !first)
		first = r, *err = e2;
	if (first)
		return first; /* removing now would stop at a mount or lose the init's pid */
	if (remove_dir)
		return crid_rmtree_at(AT_FDCWD, real, err);
	return empty_dir(dirfd, real, err);
}

/* realpath of a pod directory, refusing "/" (whose removal would be
 * everything). *real NULL and 0 when dir does not exist. */
static int pod_dir_path(const char *dir, char **real, struct crid_err *err)
{
	*real = NULL;
	if (!dir || dir[0] != '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod directory \"%s\" is not an absolute path",
				    dir ? dir : "(null)");
	*real = realpath(dir, NULL);
	if (!*real) {
		if (errno == ENOENT)
			return 0;
		return crid_err_set(err, CRID_INTERNAL, errno, "pod directory %s", dir);
	}
	if (strcmp(*real, "/") == 0) {
		free(take_ptr(real));
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod directory %s is /", dir);
	}
	return 0;
}

int crid_pod_ns_remove(const char *dir, struct crid_err *err)
{
	_cleanup_free_ char *real = NULL;
	int r;

	r = pod_dir_path(dir, &real, err);
	if (r < 0 || !real)
		return r;
	r = take_down(real, 0, true, err);
	if (r < 0)
		return crid_err_wrap(err, "remove pod directory %s: ", dir);
	return 0;
}

int crid_pod_ns_stop(struct crid_pod_ns *ns, struct crid_err *err)
{
	_cleanup_free_ char *dir = NULL;
	char *slash;
	int r, dirfd;

	if (ns->init_pid <= 0)
		return 0;
	if (!ns->hosts_path)
		return crid_err_set(err, CRID_INTERNAL, 0, "stop the pod init %d: the pod's paths are not set",
				    (int)ns->init_pid);
	if (!(dir = strdup(ns->hosts_path)))
		return crid_err_nomem(err, "pod directory");
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	r = crid_pod_init_kill(ns->init_pid, dir, err);
	if (r < 0)
		return r;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd >= 0) {
		unlinkat(dirfd, "init.pid", 0);
		close(dirfd);
	}
	ns->init_pid = 0;
	free(take_ptr(&ns->pid_ns_path));
	return 0;
}

/* ---- creating and loading ---- */

static int fill_paths(struct crid_pod_ns *out, const char *dir, const bool have[4], pid_t init_pid,
		      struct crid_err *err)
{
	int ok = 1;

	for (size_t k = 0; k < CRID_ARRAY_SIZE(pins); k++) {
		if (have[k] && asprintf(pin_field(out, k), "%s/ns/%s", dir, pins[k].name) < 0)
			*pin_field(out, k) = NULL, ok = 0;
	}
	if (asprintf(&out->hosts_path, "%s/hosts", dir) < 0)
		out->hosts_path = NULL, ok = 0;
	if (asprintf(&out->resolv_path, "%s/resolv.conf", dir) < 0)
		out->resolv_path = NULL, ok = 0;
	if (asprintf(&out->hostname_path, "%s/hostname", dir) < 0)
		out->hostname_path = NULL, ok = 0;
	if (asprintf(&out->shm_path, "%s/shm", dir) < 0)
		out->shm_path = NULL, ok = 0;
	if (init_pid > 0 && asprintf(&out->pid_ns_path, "/proc/%d/ns/pid", (int)init_pid) < 0)
		out->pid_ns_path = NULL, ok = 0;
	out->init_pid = init_pid;
	if (!ok) {
		crid_pod_ns_free(out);
		return crid_err_nomem(err, "pod paths");
	}
	return 0;
}

static int mount_shm(int dirfd, const char *dir, uint64_t size, struct crid_err *err)
{
	char target[PATH_MAX], opts[64];

	if (snprintf(target, sizeof(target), "%s/shm", dir) >= (int)sizeof(target))
		return crid_err_set(err, CRID_INTERNAL, ENAMETOOLONG, "mount the pod's shm at %s/shm", dir);
	if (mkdirat(dirfd, "shm", 0755) < 0 && errno != EEXIST)
		return crid_err_set(err, CRID_INTERNAL, errno, "mount the pod's shm at %s: mkdir", target);
	snprintf(opts, sizeof(opts), "mode=1777,size=%" PRIu64, size ? size : (uint64_t)DEFAULT_SHM_SIZE);
	if (mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "mount the pod's shm at %s (%s)", target, opts);
	return 0;
}

/* Everything that needs no kernel state: refused before anything is made. */
static int check_options(const struct crid_pod_ns_options *o, char **sysctl_paths, struct crid_err *err)
{
	_cleanup_free_ char *resolv = NULL;
	size_t len;
	int r;

	if (o->n_sysctls && (!o->sysctl_keys || !o->sysctl_values))
		return crid_err_set(err, CRID_INTERNAL, EINVAL, "%zu sysctls without keys or values", o->n_sysctls);
	/* What a user namespace does not own, its root cannot use. */
	if (o->n_uids && (o->host_network || o->host_ipc || o->host_pid || o->host_uts))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "linux.security_context.namespace_options: a pod with a user namespace cannot "
				    "share the host's %s namespace",
				    o->host_network ? "network" : o->host_ipc ? "IPC" : o->host_pid ? "PID" : "UTS");
	if (o->n_uids &&
	    ((r = crid_idmap_check(o->uids, o->n_uids, USERNS_FIELD ".uids", err)) < 0 ||
	     (r = crid_idmap_check(o->gids, o->n_gids, USERNS_FIELD ".gids", err)) < 0))
		return r;
	if ((r = crid_pod_ns_render_resolv(o->dns, &resolv, &len, err)) < 0)
		return r;
	if (o->hostname && (r = crid_pod_ns_check_hostname(o->hostname, err)) < 0)
		return r;
	for (size_t i = 0; i < o->n_sysctls; i++) {
		const char *v = o->sysctl_values[i];

		r = crid_pod_ns_sysctl_path(o->sysctl_keys[i], o->host_network, o->host_ipc, &sysctl_paths[i], err);
		if (r < 0)
			return r;
		if (!v)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "sysctl \"%s\": no value",
					    o->sysctl_keys[i]);
		if (strlen(v) > SYSCTL_VALUE_MAX)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "sysctl \"%s\": value longer than %d bytes",
					    o->sysctl_keys[i], SYSCTL_VALUE_MAX);
	}
	return 0;
}

int crid_pod_ns_create(const struct crid_pod_ns_options *o, struct crid_pod_ns *out, struct crid_err *err)
{
	_cleanup_free_ char *real = NULL;
	_cleanup_close_ int dirfd = -1;
	char **sysctl_paths = NULL;
	bool have[4];
	pid_t init_pid = 0;
	int r;

	memset(out, 0, sizeof(*out));
	r = pod_dir_path(o->dir, &real, err);
	if (r < 0)
		return r;
	if (!real)
		return crid_err_set(err, CRID_NOT_FOUND, ENOENT, "pod directory %s", o->dir);
	if (o->n_sysctls && !(sysctl_paths = calloc(o->n_sysctls, sizeof(*sysctl_paths))))
		return crid_err_nomem(err, "sysctl paths");
	r = check_options(o, sysctl_paths, err);
	if (r == 0) {
		dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dirfd < 0)
			r = crid_err_set(err, CRID_INTERNAL, errno, "open pod directory %s", o->dir);
	}
	if (r == 0)
		r = crid_pod_ns_write_files(dirfd, o, err);
	if (r == 0)
		r = crid_pod_ns_pin(dirfd, o, sysctl_paths, err);
	if (r == 0)
		r = mount_shm(dirfd, o->dir, o->shm_size, err);
	/* The init gets the canonical path: that is what its cmdline is
	 * checked against before it is killed. */
	if (r == 0 && o->shared_pid && !o->host_pid)
		r = crid_pod_init_start(real, &init_pid, err);
	free_list(sysctl_paths, o->n_sysctls);
	if (r == 0) {
		have[0] = o->n_uids > 0;
		have[1] = !o->host_network;
		have[2] = !o->host_ipc;
		have[3] = !o->host_uts;
		r = fill_paths(out, o->dir, have, init_pid, err);
	}
	if (r < 0 && dirfd >= 0) {
		struct crid_err ignored;

		crid_err_clear(&ignored);
		take_down(real, init_pid, false, &ignored);
	}
	return r;
}

int crid_pod_ns_load(const char *dir, pid_t init_pid, struct crid_pod_ns *out, struct crid_err *err)
{
	_cleanup_close_ int dirfd = -1;
	char path[PATH_MAX];
	struct statfs sf;
	bool have[4];

	memset(out, 0, sizeof(*out));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return crid_err_set(err, errno == ENOENT ? CRID_NOT_FOUND : CRID_INTERNAL, errno,
				    "load pod directory %s", dir);
	/* A pin that is a plain file (its mount lost) would make a container
	 * fail later with a confusing setns error: say it now. */
	for (size_t k = 0; k < CRID_ARRAY_SIZE(pins); k++) {
		snprintf(path, sizeof(path), "%s/ns/%s", dir, pins[k].name);
		have[k] = faccessat(dirfd, path + strlen(dir) + 1, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
		if (have[k] && (statfs(path, &sf) < 0 || sf.f_type != NSFS_MAGIC))
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					    "load pod directory %s: the %s namespace pin %s is not mounted", dir,
					    pins[k].what, path);
	}
	snprintf(path, sizeof(path), "%s/shm", dir);
	if (statfs(path, &sf) < 0 || sf.f_type != TMPFS_MAGIC)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "load pod directory %s: %s is not mounted", dir,
				    path);
	/* A pid that is no longer the init could be anyone's: containers must
	 * never join its PID namespace. */
	if (init_pid > 0 && !crid_pod_init_running(init_pid, dir))
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
				    "load pod directory %s: the pod init %d is no longer running", dir, (int)init_pid);
	return fill_paths(out, dir, have, init_pid, err);
}
