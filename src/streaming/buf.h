/* A growable byte buffer with a consumed prefix, for the streaming
 * sessions' queues. Bounded by its users: it never decides a limit. */
#ifndef CRID_STREAMING_BUF_H
#define CRID_STREAMING_BUF_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct crid_buf {
	char *data;
	size_t off, len, cap; /* live bytes are data[off, off + len) */
};

static inline char *crid_buf_head(const struct crid_buf *b)
{
	return b->data + b->off;
}

/* Appends n bytes; -ENOMEM leaves the buffer as it was. */
static inline int crid_buf_add(struct crid_buf *b, const void *d, size_t n)
{
	if (n == 0)
		return 0;
	if (b->off + b->len + n > b->cap && b->off > 0) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *grown;

		while (cap < b->len + n)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (!grown)
			return -ENOMEM;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->off + b->len, d, n);
	b->len += n;
	return 0;
}

static inline void crid_buf_consume(struct crid_buf *b, size_t n)
{
	if (n >= b->len) {
		b->off = b->len = 0;
		return;
	}
	b->off += n;
	b->len -= n;
}

static inline void crid_buf_free(struct crid_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

#endif
