/* crid's metadata in SQLite (WAL) under the state root: images, the names
 * they go by, and the layers they are made of. Every change that spans rows
 * is one transaction, so a crash leaves the old state or the new one. The
 * store only records: it never touches layer files or runs anything. */
#ifndef CRID_STORE_H
#define CRID_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct crid_store;

/* Opens (creating) <state_root>/crid.db, 0600. */
int crid_store_open(struct crid_store **out, const char *state_root, struct crid_err *err);
void crid_store_close(struct crid_store *s);

/* Whether the database had no tables when opened: new, emptied or lost. */
bool crid_store_was_empty(struct crid_store *s);

/* Looks whether crid.db (or its WAL) was deleted or replaced while crid
 * runs, and then writes it back from the open connection, logging at error
 * level. Every use of the store does this too. */
void crid_store_check(struct crid_store *s);

struct crid_layer_record {
	char *chain_id; /* "sha256:<hex>": the directory key */
	char *diff_id;
	char *blob_digest; /* the compressed blob it came from */
	int64_t blob_size;
	uint64_t disk_bytes, disk_inodes; /* measured once, when unpacked */
};

struct crid_image_record {
	char *id;	       /* "sha256:<config digest hex>" */
	char *manifest_digest; /* the image manifest (not the index) */
	int64_t size;	       /* config + compressed layers */
	int64_t pulled_at;     /* unix ns */
	char **repo_tags;      /* "docker.io/library/busybox:latest" */
	size_t n_repo_tags;
	char **repo_digests; /* "docker.io/library/busybox@sha256:..." */
	size_t n_repo_digests;
	struct crid_layer_record *layers; /* bottom first */
	size_t n_layers;
};

void crid_image_record_free(struct crid_image_record *r);
void crid_image_records_free(struct crid_image_record *r, size_t n);

/* Records an image, its layers, and its names in one transaction. A name
 * that pointed at another image moves to this one. An image already
 * recorded keeps its other names. */
int crid_store_image_put(struct crid_store *s, const struct crid_image_record *img, struct crid_err *err);

/* Finds an image by full ID, by the hex of its ID, by a unique ID prefix
 * (at least 3 hex characters), by a repo tag or by a repo digest. *id is
 * malloc'd. NOT_FOUND when nothing matches. */
int crid_store_image_resolve(struct crid_store *s, const char *name, char **id, struct crid_err *err);

int crid_store_image_get(struct crid_store *s, const char *id, struct crid_image_record *out, struct crid_err *err);

int crid_store_image_list(struct crid_store *s, struct crid_image_record **out, size_t *n, struct crid_err *err);

/* Removes one name; when the image has no repo tag left, the whole image.
 * Then, in the same transaction, the layers no image uses any more are
 * deleted and their chain IDs returned (malloc'd array of malloc'd
 * strings) for the caller to remove from disk. *image_removed says which. */
int crid_store_image_remove_name(struct crid_store *s, const char *name, int *image_removed, char ***orphans,
				 size_t *n_orphans, struct crid_err *err);

/* Removes an image with all its names; orphaned layers as above. */
int crid_store_image_remove(struct crid_store *s, const char *id, char ***orphans, size_t *n_orphans,
			    struct crid_err *err);

/* Layers a container's root file system is made of: they stay while the
 * container does, even when every image using them is removed. Dropping
 * the last user removes the layers no one uses any more, as above. */
int crid_store_layer_users_add(struct crid_store *s, const char *user, char *const *chain_ids, size_t n,
			       struct crid_err *err);
int crid_store_layer_users_drop(struct crid_store *s, const char *user, char ***orphans, size_t *n_orphans,
				struct crid_err *err);

/* Layers a pull is about to put in place (those not recorded yet), until
 * an image records them or the pull gives them up: at start-up, a layer
 * directory neither recorded nor pending is one the database lost. */
int crid_store_layers_pending_add(struct crid_store *s, char *const *chain_ids, size_t n, struct crid_err *err);
int crid_store_layer_pending_drop(struct crid_store *s, const char *chain_id, struct crid_err *err);
int crid_store_layers_pending(struct crid_store *s, char ***out, size_t *n, struct crid_err *err);

/* Whether a layer is recorded. */
int crid_store_layer_known(struct crid_store *s, const char *chain_id, struct crid_err *err);

/* Every recorded layer's chain ID, and every blob digest an image refers to
 * (configs, manifests, repo digests), for start-up clean-up. */
int crid_store_layer_ids(struct crid_store *s, char ***out, size_t *n, struct crid_err *err);
int crid_store_blob_refs(struct crid_store *s, char ***out, size_t *n, struct crid_err *err);

/* Sums over recorded layers. */
int crid_store_layer_usage(struct crid_store *s, uint64_t *bytes, uint64_t *inodes, struct crid_err *err);

void crid_strv_free(char **v, size_t n);

/* Runtime objects (kind "pod" or "container"): the CRI config as sent
 * (protobuf wire form) and crid's state of the object as JSON. */
struct crid_object_record {
	char *id;
	uint8_t *config;
	size_t config_len;
	char *state;
};

/* Inserts or replaces one object. */
int crid_store_object_put(struct crid_store *s, const char *kind, const char *id, const uint8_t *config,
			  size_t config_len, const char *state, struct crid_err *err);
int crid_store_object_delete(struct crid_store *s, const char *kind, const char *id, struct crid_err *err);
int crid_store_object_list(struct crid_store *s, const char *kind, struct crid_object_record **out, size_t *n,
			   struct crid_err *err);
void crid_object_records_free(struct crid_object_record *r, size_t n);

#endif
