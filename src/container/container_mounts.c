/* What a container mounts before its runtime runs (container.h): its root
 * file system, an overlay of the image's layers with a private upper
 * directory, and the sources the runtime binds. Each volume's host path is
 * resolved once, on the host (symbolic links followed as the host sees
 * them), opened, and that very file system object is copied as a mount to
 * <dir>/mounts/<n>: nothing swapped into the path later can redirect the
 * runtime. In a pod with a user namespace the layers and volumes are
 * ID-mapped through it, so the pod's root owns what the host's root owns.
 * Image volumes are the layers of a pulled image, read-only. Everything
 * lives below the container's directory, so one walk of it undoes it all. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/idmap.h"
#include "common/mounts.h"
#include "container/container.h"
#include "runtime/objects.h"

#define OVERLAY_OPTIONS_MAX 4096 /* a page: what mount(2) reads of them */

static void image_use_freep(struct crid_image_use *u)
{
	crid_image_use_free(u);
}

/* ---- layers ---- */

/* An ID-mapped copy of each layer at <dirfd>/<prefix><k>; their paths (as
 * <dir>/<prefix><k>) replace the layer directories. */
static int map_layers(int dirfd, const char *dir, const char *prefix, char *const *layers, size_t n, int userns_fd,
		      char ***mapped, struct crid_err *err)
{
	char **v = calloc(n + 1, sizeof(*v));

	*mapped = v;
	if (!v)
		return crid_err_nomem(err, "layer paths");
	for (size_t k = 0; k < n; k++) {
		_cleanup_close_ int fd = open(layers[k], O_PATH | O_DIRECTORY | O_CLOEXEC), tree = -1;
		char name[32];
		int r;

		snprintf(name, sizeof(name), "%s%zu", prefix, k);
		if (fd < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "open layer %s", layers[k]);
		r = crid_mount_copy(fd, false, userns_fd, CRID_PROPAGATION_PRIVATE, "the image's layers", &tree, err);
		if (r < 0)
			return r;
		if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
			return crid_err_set(err, CRID_INTERNAL, errno, "mkdir %s/%s", dir, name);
		if ((r = crid_mount_attach(tree, dirfd, name, err)) < 0)
			return r;
		if (asprintf(&v[k], "%s/%s", dir, name) < 0) {
			v[k] = NULL;
			return crid_err_nomem(err, "layer paths");
		}
	}
	return 0;
}

/* The copies are only needed while overlayfs opens them: it keeps its own. */
static void unmap_layers(int dirfd, char **mapped, size_t n)
{
	for (size_t k = 0; mapped && k < n && mapped[k]; k++) {
		umount2(mapped[k], MNT_DETACH);
		unlinkat(dirfd, strrchr(mapped[k], '/') + 1, AT_REMOVEDIR);
		free(mapped[k]);
	}
	free(mapped);
}

/* The layers of an overlay are named in its options, which the kernel
 * reads as one page; 64-hex layer paths fill it after a few dozen layers.
 * So the layers are given by short names relative to a directory, and the
 * mount is made from a thread whose working directory that is: up to
 * overlayfs' own limit of CRID_MAX_LAYERS fit. */
struct overlay_job {
	int cwd_fd;
	const char *target;
	const char *options;
	unsigned long flags;
	int error; /* errno of the mount, 0 on success */
};

/* The working directory is per process: this thread gets its own first,
 * so no other thread's relative paths change meaning. */
static void *overlay_from(void *arg)
{
	struct overlay_job *job = arg;

	if (unshare(CLONE_FS) < 0 || fchdir(job->cwd_fd) < 0)
		job->error = errno;
	else if (mount("overlay", job->target, "overlay", job->flags, job->options) < 0)
		job->error = errno;
	return NULL;
}

/* overlay at target: layers (bottom first; names relative to cwd_fd, or
 * absolute paths when cwd_fd is -1), and upper and work when given
 * (without, the overlay is read-only). */
static int mount_overlay(int cwd_fd, const char *target, char *const *layers, size_t n, const char *upper,
			 const char *work, const char *what, struct crid_err *err)
{
	_cleanup_free_ char *opts = malloc(OVERLAY_OPTIONS_MAX);
	struct overlay_job job = { .cwd_fd = cwd_fd, .target = target, .flags = MS_NODEV | (upper ? 0 : MS_RDONLY) };
	pthread_t thread;
	size_t len = 0;
	int r;

	if (!opts)
		return crid_err_nomem(err, "overlay options");
	if (n == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s has no layers", what);
	if (n > CRID_MAX_LAYERS)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s has %zu layers; overlayfs stacks at most %d",
				    what, n, CRID_MAX_LAYERS);
	len = (size_t)snprintf(opts, OVERLAY_OPTIONS_MAX, "lowerdir=");
	/* overlayfs lists the top layer first. */
	for (size_t i = n; i-- > 0 && len < OVERLAY_OPTIONS_MAX;)
		len += (size_t)snprintf(opts + len, OVERLAY_OPTIONS_MAX - len, "%s%s", layers[i], i ? ":" : "");
	if (upper && len < OVERLAY_OPTIONS_MAX)
		len += (size_t)snprintf(opts + len, OVERLAY_OPTIONS_MAX - len, ",upperdir=%s,workdir=%s", upper, work);
	if (len >= OVERLAY_OPTIONS_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "%s: the overlay options for %zu layers exceed one page (state root path too long?)",
				    what, n);
	job.options = opts;
	if (cwd_fd < 0) {
		if (mount("overlay", target, "overlay", job.flags, opts) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "mount %s at %s", what, target);
		return 0;
	}
	r = pthread_create(&thread, NULL, overlay_from, &job);
	if (r != 0)
		return crid_err_set(err, CRID_INTERNAL, r, "mount %s: start a thread", what);
	pthread_join(thread, NULL);
	if (job.error)
		return crid_err_set(err, CRID_INTERNAL, job.error, "mount %s of %zu layers at %s", what, n, target);
	return 0;
}

/* <dir>/lower/<i> → the absolute path of layer i; *lower_fd that
 * directory, *names the links' names. */
static int link_layers(int dirfd, const char *dir, char *const *layers, size_t n, int *lower_fd, char ***names,
		       struct crid_err *err)
{
	_cleanup_close_ int fd = crid_open_private_dir_at(dirfd, "lower", err);
	char **v;

	if (fd < 0)
		return fd;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return crid_err_nomem(err, "layer links");
	*names = v;
	for (size_t i = 0; i < n; i++) {
		if (asprintf(&v[i], "%zu", i) < 0) {
			v[i] = NULL;
			return crid_err_nomem(err, "layer links");
		}
		if (unlinkat(fd, v[i], 0) < 0 && errno != ENOENT)
			return crid_err_set(err, CRID_INTERNAL, errno, "replace %s/lower/%s", dir, v[i]);
		if (symlinkat(layers[i], fd, v[i]) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "link layer %zu at %s/lower", i, dir);
	}
	*lower_fd = take_fd(&fd);
	return 0;
}

int crid_container_mount_rootfs(struct crid_container *c, const struct crid_image_use *img, int userns_fd,
				uid_t root_uid, gid_t root_gid, struct crid_err *err)
{
	_cleanup_free_ char *upper = NULL, *work = NULL;
	_cleanup_close_ int dirfd = -1, lower_fd = -1;
	char **names = NULL;
	char what[128];
	int r;

	snprintf(what, sizeof(what), "the root file system of image %s", img->id);
	if (asprintf(&upper, "%s/upper", c->upper) < 0 || asprintf(&work, "%s/work", c->upper) < 0) {
		upper = work = NULL;
		return crid_err_nomem(err, "overlay paths");
	}
	/* The writable layer's own directory is private; upper/ is the
	 * container's "/", whose mode its users need. */
	if ((r = crid_mkdir_private(c->upper, err)) < 0 || (r = crid_mkdir_p(upper, 0755, err)) < 0 ||
	    (r = crid_mkdir_p(work, 0700, err)) < 0 || (r = crid_mkdir_p(c->rootfs, 0755, err)) < 0)
		return r;
	dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", c->dir);
	if (userns_fd < 0) {
		r = link_layers(dirfd, c->dir, img->layer_dirs, img->n_layers, &lower_fd, &names, err);
		if (r == 0)
			r = mount_overlay(lower_fd, c->rootfs, names, img->n_layers, upper, work, what, err);
		crid_strv_free(names, img->n_layers);
		return r;
	}
	/* The pod's root owns the top directory; what it writes lands in the
	 * upper directory with the pod's host IDs, what it reads through the
	 * layers shows the image's owners. */
	if (chown(upper, root_uid, root_gid) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "chown %s", upper);
	r = map_layers(dirfd, c->dir, "l", img->layer_dirs, img->n_layers, userns_fd, &names, err);
	if (r == 0) {
		/* The copies are at <dir>/l<k>: short names from there. */
		char **rel = calloc(img->n_layers + 1, sizeof(*rel));

		if (!rel)
			r = crid_err_nomem(err, "layer names");
		for (size_t k = 0; r == 0 && k < img->n_layers; k++)
			rel[k] = strrchr(names[k], '/') + 1;
		if (r == 0)
			r = mount_overlay(dirfd, c->rootfs, rel, img->n_layers, upper, work, what, err);
		free(rel);
	}
	unmap_layers(dirfd, names, img->n_layers);
	return r;
}

/* ---- volumes ---- */

static enum crid_propagation propagation_of(const Runtime__V1__Mount *m)
{
	switch (m->propagation) {
	case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL:
		return CRID_PROPAGATION_SHARED;
	case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER:
		return CRID_PROPAGATION_SLAVE;
	default:
		return CRID_PROPAGATION_PRIVATE;
	}
}

/* The user namespace a mount's own mappings describe. */
static int mount_userns(const Runtime__V1__Mount *m, size_t i, int *fd, struct crid_err *err)
{
	struct crid_idmap uids[CRID_IDMAP_MAX], gids[CRID_IDMAP_MAX];
	int r;

	if (!m->n_uidmappings || !m->n_gidmappings)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "mounts[%zu]: uidMappings and gidMappings go together",
				    i);
	if (m->n_uidmappings > CRID_IDMAP_MAX || m->n_gidmappings > CRID_IDMAP_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "mounts[%zu]: more than %d mappings", i,
				    CRID_IDMAP_MAX);
	for (size_t k = 0; k < m->n_uidmappings; k++)
		uids[k] = (struct crid_idmap){ m->uidmappings[k]->container_id, m->uidmappings[k]->host_id,
					       m->uidmappings[k]->length };
	for (size_t k = 0; k < m->n_gidmappings; k++)
		gids[k] = (struct crid_idmap){ m->gidmappings[k]->container_id, m->gidmappings[k]->host_id,
					       m->gidmappings[k]->length };
	r = crid_userns_create(uids, m->n_uidmappings, gids, m->n_gidmappings, fd, err);
	return r < 0 ? crid_err_wrap(err, "mounts[%zu]: ", i) : 0;
}

/* A file or directory named name in dirfd, of the kind of st, for a mount
 * to land on. */
static int make_target(int dirfd, const char *name, const struct stat *st, struct crid_err *err)
{
	if (S_ISDIR(st->st_mode)) {
		if (mkdirat(dirfd, name, 0711) < 0 && errno != EEXIST)
			return crid_err_set(err, CRID_INTERNAL, errno, "mkdir %s", name);
		return 0;
	}
	{
		_cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "create %s", name);
	}
	return 0;
}

static int stage_host_path(const Runtime__V1__Mount *m, size_t i, int dirfd, const char *name, int userns_fd,
			   struct crid_err *err)
{
	_cleanup_close_ int fd = -1, tree = -1;
	char what[PATH_MAX + 32];
	struct stat st;
	int r;

	snprintf(what, sizeof(what), "mounts[%zu].host_path %s", i, m->host_path);
	/* Resolved here, on the host, once: what the path names now is
	 * what the container gets. */
	fd = open(m->host_path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return crid_err_set(err, errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? CRID_INVALID_ARGUMENT
											: CRID_INTERNAL,
				    errno, "%s", what);
	if (fstat(fd, &st) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "%s", what);
	r = crid_mount_copy(fd, true, userns_fd, propagation_of(m), what, &tree, err);
	if (r == 0)
		r = make_target(dirfd, name, &st, err);
	if (r == 0)
		r = crid_mount_attach(tree, dirfd, name, err);
	return r;
}

/* "a/b" inside an image volume: relative, no "..", not empty. */
static bool sub_path_ok(const char *p)
{
	const char *s = p;

	if (!*p || *p == '/')
		return false;
	while (*s) {
		size_t n = strcspn(s, "/");

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return false;
		s += n;
		while (*s == '/')
			s++;
	}
	return true;
}

static int stage_image(struct crid_runtime *rt, struct crid_container *c, const Runtime__V1__Mount *m, size_t i,
		       int dirfd, const char *name, int userns_fd, struct crid_err *err)
{
	_cleanup_(image_use_freep) struct crid_image_use img = { 0 };
	_cleanup_free_ char *full = NULL;
	const char *sub = m->image_sub_path && *m->image_sub_path ? m->image_sub_path : NULL;
	char full_name[64], prefix[48];
	char **mapped = NULL;
	int r;

	if (sub && !sub_path_ok(sub))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "mounts[%zu].image_sub_path \"%.64s\" is not a relative path inside the image", i, sub);
	r = crid_images_use(rt->images, m->image->image, &img, err);
	if (r == 0)
		r = crid_images_hold(rt->images, c->id, &img, err);
	if (r < 0)
		return crid_err_wrap(err, "mounts[%zu].image: ", i);
	if (img.n_layers == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "mounts[%zu].image %s has no layers", i, img.id);
	/* The whole image first; with a sub path, a copy of that part. */
	snprintf(full_name, sizeof(full_name), "%s%s", name, sub ? ".image" : "");
	if (mkdirat(dirfd, full_name, 0711) < 0 && errno != EEXIST)
		return crid_err_set(err, CRID_INTERNAL, errno, "mkdir %s", full_name);
	if (asprintf(&full, "%s/mounts/%s", c->dir, full_name) < 0)
		return crid_err_nomem(err, "image volume path");
	snprintf(prefix, sizeof(prefix), "%s.l", name);
	if (img.n_layers == 1) {
		/* overlayfs wants two layers when it has no upper one: a
		 * read-only copy of the one layer is the same thing. */
		_cleanup_close_ int fd = open(img.layer_dirs[0], O_PATH | O_DIRECTORY | O_CLOEXEC), tree = -1;

		if (fd < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "open layer %s", img.layer_dirs[0]);
		r = crid_mount_copy(fd, false, userns_fd, CRID_PROPAGATION_PRIVATE, "the image volume", &tree, err);
		if (r == 0)
			r = crid_mount_set_readonly(tree, err);
		if (r == 0)
			r = crid_mount_attach(tree, dirfd, full_name, err);
	} else {
		_cleanup_free_ char *dir = NULL;
		char *const *layers = img.layer_dirs;

		if (asprintf(&dir, "%s/mounts", c->dir) < 0)
			return crid_err_nomem(err, "image volume path");
		if (userns_fd >= 0) {
			r = map_layers(dirfd, dir, prefix, img.layer_dirs, img.n_layers, userns_fd, &mapped, err);
			layers = mapped;
		}
		if (r == 0)
			r = mount_overlay(-1, full, layers, img.n_layers, NULL, NULL, "the image volume", err);
		if (userns_fd >= 0)
			unmap_layers(dirfd, mapped, img.n_layers);
	}
	if (r < 0 || !sub)
		return r < 0 ? crid_err_wrap(err, "mounts[%zu].image: ", i) : 0;
	{
		struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
		_cleanup_close_ int root = open(full, O_PATH | O_DIRECTORY | O_CLOEXEC), fd = -1, tree = -1;
		struct stat st;

		if (root >= 0)
			fd = (int)syscall(SYS_openat2, root, sub, &how, sizeof(how));
		if (fd < 0 || fstat(fd, &st) < 0)
			r = crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "mounts[%zu].image_sub_path %s in image %s", i,
					 sub, m->image->image);
		if (r == 0)
			r = crid_mount_copy(fd, false, -1, CRID_PROPAGATION_PRIVATE, "the image volume", &tree, err);
		if (r == 0)
			r = make_target(dirfd, name, &st, err);
		if (r == 0)
			r = crid_mount_attach(tree, dirfd, name, err);
	}
	/* The copy holds the overlay; the whole image needs no mount point. */
	umount2(full, MNT_DETACH);
	unlinkat(dirfd, full_name, AT_REMOVEDIR);
	return r;
}

int crid_container_stage_mounts(struct crid_runtime *rt, struct crid_container *c, int userns_fd, char ***sources,
				struct crid_err *err)
{
	const Runtime__V1__ContainerConfig *cfg = c->config;
	_cleanup_close_ int dirfd = -1, cdir = -1;
	char **v;
	int r;

	*sources = NULL;
	if (cfg->n_mounts == 0)
		return 0;
	v = calloc(cfg->n_mounts + 1, sizeof(*v));
	if (!v)
		return crid_err_nomem(err, "mount sources");
	*sources = v;
	cdir = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cdir < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", c->dir);
	/* Traversable by a user-namespaced runtime, which binds from here. */
	dirfd = crid_open_dir_at(cdir, "mounts", 0711, err);
	if (dirfd < 0)
		return dirfd;
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const Runtime__V1__Mount *m = cfg->mounts[i];
		_cleanup_close_ int own_userns = -1;
		int ns = userns_fd;
		char name[24];

		snprintf(name, sizeof(name), "%zu", i);
		if (m->n_uidmappings || m->n_gidmappings) {
			if ((r = mount_userns(m, i, &own_userns, err)) < 0)
				return r;
			ns = own_userns;
		}
		if (m->image && m->image->image && *m->image->image)
			r = stage_image(rt, c, m, i, dirfd, name, ns, err);
		else if (m->host_path && m->host_path[0] == '/')
			r = stage_host_path(m, i, dirfd, name, ns, err);
		else
			continue; /* refused with the reason by the spec's checks */
		if (r < 0)
			return r;
		if (asprintf(&v[i], "%s/mounts/%s", c->dir, name) < 0) {
			v[i] = NULL;
			return crid_err_nomem(err, "mount sources");
		}
	}
	return 0;
}

void crid_container_mount_sources_free(char **sources, size_t n)
{
	for (size_t i = 0; sources && i < n; i++)
		free(sources[i]);
	free(sources);
}

int crid_container_unmount_all(const char *dir, struct crid_err *err)
{
	_cleanup_free_ char *real = realpath(dir, NULL);

	if (!real)
		return errno == ENOENT ? 0 : crid_err_set(err, CRID_INTERNAL, errno, "%s", dir);
	if (strcmp(real, "/") == 0)
		return crid_err_set(err, CRID_INTERNAL, EINVAL, "container directory %s is /", dir);
	return crid_unmount_below(real, err);
}
