/* Image files (image_files.h). Names below the state root are digests that
 * were validated as "sha256:" + 64 hex, never other request text. */
#include "image/image_files.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "store/store.h"

static const char *hex_of(const char *digest)
{
	return strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
}

int crid_image_files_open(struct crid_image_files *f, const char *state_root, struct crid_err *err)
{
	_cleanup_close_ int root_fd = -1, blobs_root = -1;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r, dup_fd;

	memset(f, 0, sizeof(*f));
	f->blobs_fd = f->layers_fd = f->tmp_fd = -1;
	root_fd = open(state_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", state_root);
	if ((blobs_root = crid_open_private_dir_at(root_fd, "blobs", err)) < 0 ||
	    (f->blobs_fd = crid_open_private_dir_at(blobs_root, "sha256", err)) < 0 ||
	    (f->layers_fd = crid_open_private_dir_at(root_fd, "layers", err)) < 0 ||
	    (f->tmp_fd = crid_open_private_dir_at(root_fd, "tmp", err)) < 0) {
		r = crid_err_wrap(err, "image store %s: ", state_root);
		crid_image_files_close(f);
		return r;
	}
	if (asprintf(&f->layers_path, "%s/layers", state_root) < 0 ||
	    asprintf(&f->tmp_path, "%s/tmp", state_root) < 0) {
		crid_image_files_close(f);
		return crid_err_nomem(err, "image store paths");
	}
	/* Whatever is in tmp/ was cut short by a crash or a stop. */
	dup_fd = fcntl(f->tmp_fd, F_DUPFD_CLOEXEC, 3);
	d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		crid_image_files_close(f);
		return crid_err_set(err, CRID_INTERNAL, errno, "read %s/tmp", state_root);
	}
	while ((de = readdir(d))) {
		struct crid_err ignored;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (crid_rmtree_at(f->tmp_fd, de->d_name, &ignored) < 0)
			log_warn("cannot remove a leftover", "path", de->d_name, "error", ignored.msg);
	}
	return 0;
}

void crid_image_files_close(struct crid_image_files *f)
{
	if (f->blobs_fd >= 0)
		close(f->blobs_fd);
	if (f->layers_fd >= 0)
		close(f->layers_fd);
	if (f->tmp_fd >= 0)
		close(f->tmp_fd);
	free(f->layers_path);
	free(f->tmp_path);
	memset(f, 0, sizeof(*f));
	f->blobs_fd = f->layers_fd = f->tmp_fd = -1;
}

int crid_image_files_put_blob(struct crid_image_files *f, const char *digest, const void *data, size_t len,
			      struct crid_err *err)
{
	return crid_write_file_at(f->blobs_fd, hex_of(digest), data, len, 0600, err);
}

int crid_image_files_get_blob(struct crid_image_files *f, const char *digest, char **data, size_t *len,
			      struct crid_err *err)
{
	return crid_read_file_at(f->blobs_fd, hex_of(digest), 16 << 20, data, len, err);
}

int crid_image_files_has_blob(struct crid_image_files *f, const char *digest)
{
	return faccessat(f->blobs_fd, hex_of(digest), F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int crid_image_files_remove_blob(struct crid_image_files *f, const char *digest)
{
	return unlinkat(f->blobs_fd, hex_of(digest), 0) < 0 && errno != ENOENT ? -errno : 0;
}

int crid_image_files_has_layer(struct crid_image_files *f, const char *chain_id)
{
	struct stat st;

	return fstatat(f->layers_fd, hex_of(chain_id), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int crid_image_files_tmp_dir(struct crid_image_files *f, char **name, char **path, struct crid_err *err)
{
	char rnd[33];
	int r = crid_random_hex(rnd, 32, err);

	if (r < 0)
		return r;
	if (mkdirat(f->tmp_fd, rnd, 0755) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create %s/%s", f->tmp_path, rnd);
	*name = strdup(rnd);
	if (!*name || asprintf(path, "%s/%s", f->tmp_path, rnd) < 0) {
		free(*name);
		*name = NULL;
		unlinkat(f->tmp_fd, rnd, AT_REMOVEDIR);
		return crid_err_nomem(err, "temporary directory");
	}
	return 0;
}

void crid_image_files_drop_tmp(struct crid_image_files *f, const char *name)
{
	struct crid_err err;

	if (crid_rmtree_at(f->tmp_fd, name, &err) < 0)
		log_warn("cannot remove a temporary directory", "path", name, "error", err.msg);
}

int crid_image_files_commit_layer(struct crid_image_files *f, const char *tmp_name, const char *chain_id,
				  struct crid_err *err)
{
	if (renameat(f->tmp_fd, tmp_name, f->layers_fd, hex_of(chain_id)) == 0)
		return 0;
	if (errno == EEXIST || errno == ENOTEMPTY) {
		crid_image_files_drop_tmp(f, tmp_name);
		return 0;
	}
	return crid_err_set(err, CRID_INTERNAL, errno, "move layer %s into place", chain_id);
}

int crid_image_files_remove_layer(struct crid_image_files *f, const char *chain_id, struct crid_err *err)
{
	char trash[48], rnd[17];
	int r = crid_random_hex(rnd, 16, err);

	if (r < 0)
		return r;
	snprintf(trash, sizeof(trash), "trash-%s", rnd);
	if (renameat(f->layers_fd, hex_of(chain_id), f->tmp_fd, trash) < 0) {
		if (errno == ENOENT)
			return 0;
		return crid_err_set(err, CRID_INTERNAL, errno, "remove layer %s", chain_id);
	}
	return crid_rmtree_at(f->tmp_fd, trash, err);
}

char *crid_image_files_layer_path(struct crid_image_files *f, const char *chain_id)
{
	char *p;

	return asprintf(&p, "%s/%s", f->layers_path, hex_of(chain_id)) < 0 ? NULL : p;
}

static int list_dir(int dirfd, bool want_dirs, char ***out, size_t *n, struct crid_err *err)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	char **v = NULL;
	size_t len = 0, cap = 0;
	int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);

	if (dup_fd < 0 || !(d = fdopendir(dup_fd))) {
		if (dup_fd >= 0)
			close(dup_fd);
		return crid_err_set(err, CRID_INTERNAL, errno, "list image files");
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		struct stat st;
		char *name;

		if (strlen(de->d_name) != 64 || fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode) != want_dirs)
			continue;
		if (len == cap) {
			char **grown = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));

			if (!grown) {
				crid_strv_free(v, len);
				return crid_err_nomem(err, "file list");
			}
			v = grown;
			cap = cap ? cap * 2 : 16;
		}
		if (asprintf(&name, "sha256:%s", de->d_name) < 0) {
			crid_strv_free(v, len);
			return crid_err_nomem(err, "file list");
		}
		v[len++] = name;
	}
	*out = v;
	*n = len;
	return 0;
}

int crid_image_files_list_layers(struct crid_image_files *f, char ***out, size_t *n, struct crid_err *err)
{
	return list_dir(f->layers_fd, true, out, n, err);
}

int crid_image_files_list_blobs(struct crid_image_files *f, char ***out, size_t *n, struct crid_err *err)
{
	return list_dir(f->blobs_fd, false, out, n, err);
}

int crid_image_files_blob_usage(struct crid_image_files *f, uint64_t *bytes, uint64_t *inodes)
{
	char **names = NULL;
	size_t n = 0;
	struct crid_err err;

	*bytes = *inodes = 0;
	if (list_dir(f->blobs_fd, false, &names, &n, &err) < 0)
		return -EIO;
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (fstatat(f->blobs_fd, names[i] + 7, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			*bytes += (uint64_t)st.st_blocks * 512;
			*inodes += 1;
		}
	}
	crid_strv_free(names, n);
	return 0;
}
