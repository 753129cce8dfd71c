/* List answers from packed entries: each pod's and container's entry of
 * ListPodSandbox and ListContainers is packed once and kept with what it
 * was packed for (its CRI state and creation time; the rest of an entry
 * never changes), and a list answer is those bytes one after the other.
 * Guarded by the runtime's table lock, which the lists hold; never packs
 * anything but what it is given. */
#ifndef CRID_RUNTIME_PACKED_LIST_H
#define CRID_RUNTIME_PACKED_LIST_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct crid_packed_entry {
	uint8_t *data; /* NULL: not packed yet */
	size_t len;
	int state;
	int64_t created_at;
};

/* Whether e holds the entry as packed for state and created_at. */
bool crid_packed_entry_valid(const struct crid_packed_entry *e, int state, int64_t created_at);
/* Packs msg into e, for state and created_at. */
int crid_packed_entry_set(struct crid_packed_entry *e, const ProtobufCMessage *msg, int state, int64_t created_at,
			  struct crid_err *err);
void crid_packed_entry_clear(struct crid_packed_entry *e);

/* A response message whose only field is a repeated message, built from
 * packed entries in a buffer that is kept for the next answer. */
struct crid_packed_list {
	uint8_t *buf;
	size_t len, cap;
};

/* Empties l for an answer of type desc. */
void crid_packed_list_begin(struct crid_packed_list *l);
/* Appends e as the field of desc's single repeated field. */
int crid_packed_list_add(struct crid_packed_list *l, const ProtobufCMessageDescriptor *desc,
			 const struct crid_packed_entry *e, struct crid_err *err);
/* After the answer was sent: a large buffer is not kept. */
void crid_packed_list_end(struct crid_packed_list *l);
void crid_packed_list_free(struct crid_packed_list *l);

#endif
