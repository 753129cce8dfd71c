/* The ImageService: pulls images from registries into the image store and
 * answers ListImages, ImageStatus, RemoveImage, ImageFsInfo and
 * StreamImages. Owns image files and image records; never runs containers. */
#ifndef CRID_IMAGE_IMAGES_H
#define CRID_IMAGE_IMAGES_H

#include <stdbool.h>

#include "common/error.h"
#include "config/config.h"
#include "rpc/methods.h"
#include "store/store.h"

struct crid_images;

/* Opens the image files under the state root and removes temporary files
 * a crash left. */
int crid_images_new(struct crid_images **out, const struct crid_config *cfg, struct crid_store *db,
		    struct crid_err *err);

/* Start-up, after the runtime's recovery: removes the layers an interrupted
 * pull left and, unless the database lost records, blobs no record refers
 * to. Layers no record names and no pull left are kept and reported at
 * error level; returns how many. */
size_t crid_images_collect_startup(struct crid_images *im, bool db_lost);

int crid_images_register(struct crid_images *im, struct crid_rpc_methods *methods, struct crid_err *err);

struct crid_layer_usage;
struct crid_metrics;

/* Where ImageFsInfo finds the containers' writable layers' use, and where
 * pulls are counted (metrics may be NULL). Set once, before serving. */
void crid_images_observe(struct crid_images *im, struct crid_layer_usage *layers, struct crid_metrics *metrics);

/* What a container needs of an image. */
struct crid_image_use {
	char *id;	   /* "sha256:..." */
	char *repo_tag;	   /* the tag the name gave, else the image's first; NULL when none */
	char *repo_digest; /* "repository@sha256:...", same repository first; NULL when none */
	bool by_id;	   /* the name given was the image's ID (or a prefix), not one of its names */
	char **layer_dirs; /* absolute, bottom layer first */
	char **chain_ids;  /* of the same layers */
	size_t n_layers;
	char *config;	   /* the image config JSON */
	size_t config_len;
};

/* Finds the image a container names (reference, digest reference or ID).
 * NOT_FOUND naming it when absent: the kubelet pulls first. */
int crid_images_use(struct crid_images *im, const char *name, struct crid_image_use *out, struct crid_err *err);
void crid_image_use_free(struct crid_image_use *u);

/* Keeps the layers of u for user (a container ID) until released, even
 * when the image is removed meanwhile. */
int crid_images_hold(struct crid_images *im, const char *user, const struct crid_image_use *u, struct crid_err *err);
/* Lets go of them; layers no one uses any more are removed. Idempotent. */
void crid_images_release(struct crid_images *im, const char *user);

/* Shutdown began: transfers in progress abort. */
void crid_images_shutdown(struct crid_images *im);

/* Ends the pulls and answers their calls: before the server is freed. */
void crid_images_stop_pulls(struct crid_images *im);

void crid_images_free(struct crid_images *im);

#endif
