/* Image files under the state root: blobs/sha256/<hex> (manifests,
 * configs), layers/<chain ID hex>/ (one unpacked layer each, an overlay
 * lower directory), tmp/ (work in progress, emptied at start). Everything
 * appears by rename, so a crash leaves only tmp/ to clean. Knows files
 * only; the records are the store's. */
#ifndef CRID_IMAGE_IMAGE_FILES_H
#define CRID_IMAGE_IMAGE_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct crid_image_files {
	char *layers_path; /* <state_root>/layers */
	char *tmp_path;	   /* <state_root>/tmp */
	int blobs_fd;	   /* blobs/sha256 */
	int layers_fd;
	int tmp_fd;
};

/* Creates the directories and empties tmp/. */
int crid_image_files_open(struct crid_image_files *f, const char *state_root, struct crid_err *err);
void crid_image_files_close(struct crid_image_files *f);

/* digest is "sha256:<hex>" and must have been checked by the caller. */
int crid_image_files_put_blob(struct crid_image_files *f, const char *digest, const void *data, size_t len,
			      struct crid_err *err);
int crid_image_files_get_blob(struct crid_image_files *f, const char *digest, char **data, size_t *len,
			      struct crid_err *err);
int crid_image_files_has_blob(struct crid_image_files *f, const char *digest);
int crid_image_files_remove_blob(struct crid_image_files *f, const char *digest);

int crid_image_files_has_layer(struct crid_image_files *f, const char *chain_id);

/* A new empty directory under tmp/: *name relative to tmp, *path absolute. */
int crid_image_files_tmp_dir(struct crid_image_files *f, char **name, char **path, struct crid_err *err);
void crid_image_files_drop_tmp(struct crid_image_files *f, const char *name);

/* Moves tmp/<name> to layers/<chain hex>. When the layer is there already
 * (another pull won), the new copy is dropped; both are success. */
int crid_image_files_commit_layer(struct crid_image_files *f, const char *tmp_name, const char *chain_id,
				  struct crid_err *err);

/* Removes layers/<chain hex>: renamed into tmp/ first, so a crash midway
 * leaves nothing that looks like a layer. */
int crid_image_files_remove_layer(struct crid_image_files *f, const char *chain_id, struct crid_err *err);

/* "<layers_path>/<hex>" (malloc'd). */
char *crid_image_files_layer_path(struct crid_image_files *f, const char *chain_id);

/* Names of the layer directories and blobs present (chain IDs / digests in
 * "sha256:<hex>" form), for start-up clean-up. */
int crid_image_files_list_layers(struct crid_image_files *f, char ***out, size_t *n, struct crid_err *err);
int crid_image_files_list_blobs(struct crid_image_files *f, char ***out, size_t *n, struct crid_err *err);

/* Bytes and inodes the blobs take. */
int crid_image_files_blob_usage(struct crid_image_files *f, uint64_t *bytes, uint64_t *inodes);

#endif
