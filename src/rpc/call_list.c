/* Sending a list (call.h): the reply of a List* call, or the messages of
 * its Stream* twin, built from the response type's one repeated field. */
#include <stdlib.h>

#include "rpc/call.h"

int crid_call_send_items(struct crid_call *call, const ProtobufCMessageDescriptor *desc, void *const *items,
			 size_t n, size_t batch, struct crid_err *err)
{
	const ProtobufCFieldDescriptor *f = desc->n_fields == 1 ? &desc->fields[0] : NULL;
	ProtobufCMessage *msg;
	int r = 0;

	if (!f || f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return crid_err_set(err, CRID_INTERNAL, 0, "%s is not a list of messages", desc->name);
	msg = calloc(1, desc->sizeof_message);
	if (!msg)
		return crid_err_nomem(err, desc->name);
	desc->message_init(msg);
	for (size_t i = 0; r == 0 && (i < n || (batch == 0 && i == 0)); i += batch ? batch : n + 1) {
		size_t k = batch == 0 || n - i < batch ? n - i : batch;

		*(size_t *)((char *)msg + f->quantifier_offset) = k;
		*(void *const **)((char *)msg + f->offset) = items + i;
		r = crid_call_send(call, msg, err);
	}
	free(msg);
	return r;
}
