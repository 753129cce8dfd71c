/* State shared by the files of the image component (pull.c, images.c). */
#ifndef CRID_IMAGE_IMAGES_INTERNAL_H
#define CRID_IMAGE_IMAGES_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "image/image_files.h"
#include "image/images.h"
#include "image/pull_queue.h"
#include "image/registry.h"
#include "stats/layer_usage.h"
#include "stats/metrics.h"

/* A blob or layer being fetched: later askers wait for the first. Pins
 * keep a layer from being removed while a pull that needs it runs. */
struct fetch_slot {
	char *key;
	unsigned users;
	unsigned pins;
	bool busy;
	struct fetch_slot *next;
};

struct crid_images {
	const struct crid_config *cfg;
	struct crid_store *db;
	struct crid_image_files files;
	atomic_bool stop;

	pthread_mutex_t lock; /* slots; and commit versus removal of layers */
	pthread_cond_t slot_done;
	struct fetch_slot *slots;

	struct crid_layer_usage *layers; /* containers' writable layers, for ImageFsInfo */
	struct crid_metrics *metrics;	 /* pull counts and times; NULL: none */
	struct crid_pull_queue *pulls;
};

/* Pulls image (a reference as the kubelet gives it); *image_id is the
 * pulled image's ID (malloc'd), *fetched the blob bytes downloaded (also
 * on failure). Stops with CANCELLED once *cancel is set. */
int crid_images_pull(struct crid_images *im, const char *image, const struct crid_registry_auth *auth,
		     const atomic_bool *cancel, char **image_id, uint64_t *fetched, struct crid_err *err);

/* Removes layer directories and blobs that no record refers to, except
 * layers pinned by pulls in progress. Called with im->lock held. */
void crid_images_collect_locked(struct crid_images *im, char **chain_ids, size_t n);

bool crid_images_pinned_locked(struct crid_images *im, const char *chain_id);

#endif
