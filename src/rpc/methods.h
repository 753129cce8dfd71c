/* The method table: which handler serves each CRI method path. Services
 * register by short service and method name ("RuntimeService", "Version");
 * every handler is served under runtime.v1 and runtime.v1alpha2 alike. A path
 * of the CRI that has no handler yet is told apart from an unknown path. */
#ifndef CRID_RPC_METHODS_H
#define CRID_RPC_METHODS_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "common/error.h"
#include "rpc/call.h"

/* Returns 0 when the reply was sent (crid_call_send), CRID_CALL_PENDING when
 * the call stays open, or a negative errno with err set. */
typedef int (*crid_rpc_handler)(void *data, const ProtobufCMessage *request, struct crid_call *call,
				struct crid_err *err);

struct crid_rpc_method {
	const char *service; /* "RuntimeService" or "ImageService" */
	const char *name;    /* "Version" */
	const ProtobufCMessageDescriptor *input;
	crid_rpc_handler handler; /* NULL: known to the CRI, not done yet */
	void *data;
	bool on_loop; /* answered from memory, never blocking: run on the event loop */
};

struct crid_rpc_methods;

int crid_rpc_methods_new(struct crid_rpc_methods **out, struct crid_err *err);
void crid_rpc_methods_free(struct crid_rpc_methods *m);

/* Sets the handler of a CRI method; -ENOENT when the CRI has no such method. */
int crid_rpc_methods_register(struct crid_rpc_methods *m, const char *service, const char *name,
			      crid_rpc_handler handler, void *data, struct crid_err *err);

/* Marks a registered method as one whose handler answers from memory and
 * never blocks (no runtime call, no disk, no lock held across either): it
 * runs on the event loop, saving the hand-off to a worker and back. A
 * request with its verbose flag set still goes to a worker. */
int crid_rpc_methods_run_on_loop(struct crid_rpc_methods *m, const char *service, const char *name,
				 struct crid_err *err);

struct crid_rpc_handler_entry {
	const char *name; /* "Version" */
	crid_rpc_handler fn;
};

/* Registers a table of handlers of one service, all with the same data. */
int crid_rpc_methods_register_all(struct crid_rpc_methods *m, const char *service,
				  const struct crid_rpc_handler_entry *entries, size_t n, void *data,
				  struct crid_err *err);

/* Looks up a full path. NULL when it is no CRI method at all; *api_version
 * is set to "v1" or "v1alpha2". */
const struct crid_rpc_method *crid_rpc_methods_find(const struct crid_rpc_methods *m, const char *path,
						    size_t path_len, const char **api_version);

#endif
