/* Runtime handlers as the node sees them: finding the OCI runtime binary that
 * a configured handler names. */
#ifndef CRID_OCI_HANDLER_H
#define CRID_OCI_HANDLER_H

#include <stddef.h>

#include "common/error.h"
#include "config/config.h"

/* Resolves h->path (absolute, or a bare name searched in PATH) to an
 * executable file, written to out. FAILED_PRECONDITION naming the handler and
 * the path when there is none. */
int crid_handler_binary(const struct crid_runtime_handler *h, char *out, size_t out_size, struct crid_err *err);

#endif
