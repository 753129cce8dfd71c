/* Disk use of containers' writable layers, kept fresh by one background
 * thread that walks each registered directory once a period at a bounded
 * rate of files per second, so stats and ImageFsInfo only read numbers. It
 * only looks: it never changes, follows a link out of, or crosses a mount
 * below a directory it walks. */
#ifndef CRID_STATS_LAYER_USAGE_H
#define CRID_STATS_LAYER_USAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* Directories deeper than this below a layer's root are not walked (each
 * level holds a descriptor open); a warning says so. */
#define CRID_LAYER_WALK_MAX_DEPTH 128

struct crid_fs_usage {
	int64_t timestamp; /* CLOCK_REALTIME ns of the walk that measured it */
	uint64_t bytes;	   /* allocated blocks * 512, each inode once */
	uint64_t inodes;
};

struct crid_layer_usage;

/* mountpoint: the directory holding the layers (reported as the file
 * system's identity). Starts the walker. */
int crid_layer_usage_new(struct crid_layer_usage **out, const char *mountpoint, unsigned period_s,
			 unsigned files_per_s, struct crid_err *err);

/* Starts measuring dir (absolute) for id; it is walked soon, then every
 * period. Adding an id again replaces its directory. */
int crid_layer_usage_add(struct crid_layer_usage *lu, const char *id, const char *dir, struct crid_err *err);
void crid_layer_usage_remove(struct crid_layer_usage *lu, const char *id);

/* The last measurement of id; false before the first walk finished. */
bool crid_layer_usage_get(struct crid_layer_usage *lu, const char *id, struct crid_fs_usage *out);

/* All layers measured so far, summed; timestamp is the oldest walk's. */
void crid_layer_usage_total(struct crid_layer_usage *lu, struct crid_fs_usage *out);

const char *crid_layer_usage_mountpoint(const struct crid_layer_usage *lu);

/* Stops the walker (a walk in progress ends early) and frees. */
void crid_layer_usage_free(struct crid_layer_usage *lu);

#endif
