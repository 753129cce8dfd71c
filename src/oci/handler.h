/* Runtime handlers as the node sees them: finding the OCI runtime binary that
 * a configured handler names, and what that runtime supports. */
#ifndef CRID_OCI_HANDLER_H
#define CRID_OCI_HANDLER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "config/config.h"

/* Resolves h->path (absolute, or a bare name searched in PATH) to an
 * executable file, written to out. FAILED_PRECONDITION naming the handler and
 * the path when there is none. */
int crid_handler_binary(const struct crid_runtime_handler *h, char *out, size_t out_size, struct crid_err *err);

/* At start-up, before any thread: a handler named by a bare command name
 * gets the path PATH gives it now, since runtimes are spawned without a
 * PATH search. One not found stays as it is (its pods then fail with
 * crid_handler_binary's FAILED_PRECONDITION) and is logged. */
void crid_handlers_resolve(struct crid_config *cfg);

/* What the handler's runtime can do for crid's features. */
struct crid_handler_features {
	bool user_namespaces; /* joins a user namespace by path, with its mappings */
	bool rro;	      /* the "rro" mount option (recursive read-only) */
};

/* Asks the runtime ("features", runc 1.1 on), else goes by what its
 * version is known to support (crun); unknown runtimes support neither.
 * Runs the binary: slow, cache the answer. */
void crid_handler_features(const struct crid_runtime_handler *h, struct crid_handler_features *out);

#endif
