/* Packed list entries and answers (packed_list.h). */
#include "runtime/packed_list.h"

#include <stdlib.h>
#include <string.h>

bool crid_packed_entry_valid(const struct crid_packed_entry *e, int state, int64_t created_at)
{
	return e->data && e->state == state && e->created_at == created_at;
}

int crid_packed_entry_set(struct crid_packed_entry *e, const ProtobufCMessage *msg, int state, int64_t created_at,
			  struct crid_err *err)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *data = malloc(len ? len : 1);

	if (!data)
		return crid_err_nomem(err, "list entry");
	protobuf_c_message_pack(msg, data);
	free(e->data);
	e->data = data;
	e->len = len;
	e->state = state;
	e->created_at = created_at;
	return 0;
}

void crid_packed_entry_clear(struct crid_packed_entry *e)
{
	free(e->data);
	memset(e, 0, sizeof(*e));
}

void crid_packed_list_begin(struct crid_packed_list *l)
{
	l->len = 0;
}

static size_t put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int crid_packed_list_add(struct crid_packed_list *l, const ProtobufCMessageDescriptor *desc,
			 const struct crid_packed_entry *e, struct crid_err *err)
{
	/* Field key (number, wire type 2) and length: 10 bytes each at most. */
	size_t need = l->len + 20 + e->len;

	if (desc->n_fields != 1 || desc->fields[0].label != PROTOBUF_C_LABEL_REPEATED ||
	    desc->fields[0].type != PROTOBUF_C_TYPE_MESSAGE)
		return crid_err_set(err, CRID_INTERNAL, 0, "%s is not a list of messages", desc->name);
	if (need > l->cap) {
		size_t cap = l->cap ? l->cap : 4096;
		uint8_t *grown;

		while (cap < need)
			cap *= 2;
		grown = realloc(l->buf, cap);
		if (!grown)
			return crid_err_nomem(err, "list answer");
		l->buf = grown;
		l->cap = cap;
	}
	l->len += put_varint(l->buf + l->len, (uint64_t)desc->fields[0].id << 3 | 2);
	l->len += put_varint(l->buf + l->len, e->len);
	memcpy(l->buf + l->len, e->data, e->len);
	l->len += e->len;
	return 0;
}

/* Enough for the answer of some 1,000 objects without labels. */
#define KEEP_AT_MOST (256 << 10)

void crid_packed_list_end(struct crid_packed_list *l)
{
	if (l->cap > KEEP_AT_MOST)
		crid_packed_list_free(l);
	l->len = 0;
}

void crid_packed_list_free(struct crid_packed_list *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}
