/* A container's root file system (container.h): an overlay of its image's
 * layers with a private upper directory. overlayfs takes all its options in
 * one page, which 64-hex layer paths fill after a few dozen layers; so the
 * layers are named by short relative links ("0", "1", ... bottom first) in
 * the bundle's "lower" directory, and the mount is made from a thread whose
 * working directory is that directory. Up to overlayfs' own limit of 500
 * layers fit. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "container/container.h"

/* What the kernel accepts in one mount's options. */
#define MOUNT_OPTIONS_MAX 4096
#define LOWER_DIR "lower"

struct mount_job {
	int cwd_fd;
	const char *target;
	const char *options;
	int error; /* errno of the mount, 0 on success */
};

/* The working directory is per process: this thread gets its own before
 * it moves, so no other thread's relative paths change meaning. */
static void *mount_from(void *arg)
{
	struct mount_job *job = arg;

	if (unshare(CLONE_FS) < 0 || fchdir(job->cwd_fd) < 0)
		job->error = errno;
	else if (mount("overlay", job->target, "overlay", MS_NODEV, job->options) < 0)
		job->error = errno;
	return NULL;
}

/* <dir>/lower/<i> → the absolute path of layer i. */
static int link_layers(const struct crid_container *c, const struct crid_image_use *img, int *out_fd,
		       struct crid_err *err)
{
	_cleanup_close_ int dir_fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int lower_fd = -1;

	if (dir_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", c->dir);
	lower_fd = crid_open_private_dir_at(dir_fd, LOWER_DIR, err);
	if (lower_fd < 0)
		return lower_fd;
	for (size_t i = 0; i < img->n_layers; i++) {
		char name[24];

		snprintf(name, sizeof(name), "%zu", i);
		if (unlinkat(lower_fd, name, 0) < 0 && errno != ENOENT)
			return crid_err_set(err, CRID_INTERNAL, errno, "replace layer link %s", name);
		if (symlinkat(img->layer_dirs[i], lower_fd, name) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "link layer %zu of image %s", i, img->id);
	}
	*out_fd = take_fd(&lower_fd);
	return 0;
}

int crid_container_mount_rootfs(const struct crid_container *c, const struct crid_image_use *img,
				struct crid_err *err)
{
	_cleanup_free_ char *upper = NULL, *work = NULL, *opts = NULL;
	_cleanup_close_ int lower_fd = -1;
	struct mount_job job = { .target = c->rootfs };
	pthread_t thread;
	size_t len = 0;
	int r;

	if (img->n_layers == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "image %s has no layers", img->id);
	if (img->n_layers > CRID_MAX_LAYERS)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "image %s has %zu layers; overlayfs stacks at most %d", img->id, img->n_layers,
				    CRID_MAX_LAYERS);
	if (asprintf(&upper, "%s/upper", c->upper) < 0 || asprintf(&work, "%s/work", c->upper) < 0) {
		upper = work = NULL;
		return crid_err_nomem(err, "overlay paths");
	}
	/* The writable layer's own directory is private; upper/ is the
	 * container's "/", whose mode its users need. */
	if ((r = crid_mkdir_private(c->upper, err)) < 0 || (r = crid_mkdir_p(upper, 0755, err)) < 0 ||
	    (r = crid_mkdir_p(work, 0700, err)) < 0 || (r = crid_mkdir_p(c->rootfs, 0755, err)) < 0)
		return r;
	if ((r = link_layers(c, img, &lower_fd, err)) < 0)
		return r;
	opts = malloc(MOUNT_OPTIONS_MAX + 1);
	if (!opts)
		return crid_err_nomem(err, "overlay options");
	/* overlayfs lists the top layer first. */
	len = (size_t)snprintf(opts, MOUNT_OPTIONS_MAX + 1, "lowerdir=");
	for (size_t i = img->n_layers; i-- > 0 && len <= MOUNT_OPTIONS_MAX;)
		len += (size_t)snprintf(opts + len, MOUNT_OPTIONS_MAX + 1 - len, "%zu%s", i, i ? ":" : "");
	if (len <= MOUNT_OPTIONS_MAX)
		len += (size_t)snprintf(opts + len, MOUNT_OPTIONS_MAX + 1 - len, ",upperdir=%s,workdir=%s", upper,
					work);
	if (len >= MOUNT_OPTIONS_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "image %s: the overlay options for %zu layers exceed one page (state root path "
				    "too long?)",
				    img->id, img->n_layers);
	job.cwd_fd = lower_fd;
	job.options = opts;
	r = pthread_create(&thread, NULL, mount_from, &job);
	if (r != 0)
		return crid_err_set(err, CRID_INTERNAL, r, "mount the root file system: start a thread");
	pthread_join(thread, NULL);
	if (job.error)
		return crid_err_set(err, CRID_INTERNAL, job.error, "mount the root file system of %zu layers at %s",
				    img->n_layers, c->rootfs);
	return 0;
}
