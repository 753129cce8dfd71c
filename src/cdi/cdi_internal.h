/* What the registry (cdi_registry.c) and its watch (cdi_watch.c) share;
 * private to src/cdi/. */
#ifndef CRID_CDI_CDI_INTERNAL_H
#define CRID_CDI_CDI_INTERNAL_H

#include <pthread.h>

#include "cdi/cdi.h"
#include "common/stoppable_thread.h"

/* One device: "vendor.com/class=name", the spec that defines it. */
struct crid_cdi_entry {
	char *qualified;
	size_t kind_len; /* qualified[kind_len] is '=' */
	size_t dir;	 /* index in dirs: a later one overrides */
	char *file;
	json_t *spec;	/* the whole checked spec (a reference) */
	json_t *device; /* its entry in spec's devices (borrowed from spec) */
};

struct crid_cdi {
	char **dirs;
	size_t n_dirs;
	pthread_mutex_t lock; /* entries, errors */
	struct crid_cdi_entry *entries;
	size_t n_entries;
	json_t *errors; /* spec file → why it was refused; NULL when none */
	/* the watch */
	struct crid_stoppable_thread watcher;
};

/* Loads the directories and keeps watching them until stopped. */
int crid_cdi_watch_start(struct crid_cdi *cdi, struct crid_err *err);
void crid_cdi_watch_stop(struct crid_cdi *cdi);

#endif
