/* SPDY/3.1 framing: frame headers, the control frames a streaming session
 * exchanges, and name/value header blocks compressed with zlib and the
 * SPDY/3 dictionary (one compression context per direction for the
 * connection's life). Pure encoding and decoding of hostile bytes; never
 * touches a socket. */
#ifndef CRID_STREAMING_SPDY_H
#define CRID_STREAMING_SPDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaming/buf.h"

#define CRID_SPDY_VERSION 3
#define CRID_SPDY_HEADER_LEN 8
/* Largest frame payload accepted (the wire allows 16 MiB). */
#define CRID_SPDY_MAX_PAYLOAD (1024 * 1024)
#define CRID_SPDY_MAX_HEADER_BLOCK (64 * 1024)
#define CRID_SPDY_MAX_NV 64

enum crid_spdy_type {
	CRID_SPDY_SYN_STREAM = 1,
	CRID_SPDY_SYN_REPLY = 2,
	CRID_SPDY_RST_STREAM = 3,
	CRID_SPDY_SETTINGS = 4,
	CRID_SPDY_PING = 6,
	CRID_SPDY_GOAWAY = 7,
	CRID_SPDY_HEADERS = 8,
	CRID_SPDY_WINDOW_UPDATE = 9,
};

#define CRID_SPDY_FLAG_FIN 0x01
#define CRID_SPDY_FLAG_UNIDIRECTIONAL 0x02

/* RST_STREAM status codes */
enum {
	CRID_SPDY_PROTOCOL_ERROR = 1,
	CRID_SPDY_INVALID_STREAM = 2,
	CRID_SPDY_REFUSED_STREAM = 3,
	CRID_SPDY_CANCEL = 5,
	CRID_SPDY_INTERNAL_ERROR = 6,
	CRID_SPDY_STREAM_IN_USE = 8,
	CRID_SPDY_STREAM_ALREADY_CLOSED = 9,
	CRID_SPDY_FRAME_TOO_LARGE = 11,
};

struct crid_spdy_frame {
	bool control;
	uint16_t type;	   /* control frames */
	uint8_t flags;
	uint32_t stream_id; /* data frames, and the control frames that name one */
	const uint8_t *payload;
	uint32_t len;
};

/* Frame at the start of buf: returns its total length (header and
 * payload), 0 when incomplete, -EINVAL (version other than 3) or -E2BIG
 * (payload over CRID_SPDY_MAX_PAYLOAD). */
long crid_spdy_frame_parse(const uint8_t *buf, size_t len, struct crid_spdy_frame *f);

/* The header block codec of one connection. */
struct crid_spdy_zlib;

int crid_spdy_zlib_new(struct crid_spdy_zlib **out);
void crid_spdy_zlib_free(struct crid_spdy_zlib *z);

struct crid_spdy_nv {
	char name[64];
	char value[256]; /* a value longer than this is cut; NULs separate multiple values */
	size_t value_len;
};

/* Inflates a header block into at most CRID_SPDY_MAX_NV pairs (names
 * lowercased as SPDY/3 requires them). -EINVAL for a malformed block: the
 * connection cannot go on, since the decompression context is lost. */
int crid_spdy_headers_decode(struct crid_spdy_zlib *z, const uint8_t *block, size_t len, struct crid_spdy_nv *nv,
			     size_t *n_nv);

/* Appends whole frames to out. */
int crid_spdy_put_data(struct crid_buf *out, uint32_t stream_id, uint8_t flags, const void *data, size_t len);
int crid_spdy_put_syn_reply(struct crid_buf *out, struct crid_spdy_zlib *z, uint32_t stream_id, uint8_t flags,
			    const char *const *nv, size_t n_pairs);
/* A SYN_STREAM: what a client sends (the test suite's client uses its own). */
int crid_spdy_put_syn_stream(struct crid_buf *out, struct crid_spdy_zlib *z, uint32_t stream_id, uint8_t flags,
			     const char *const *nv, size_t n_pairs);
int crid_spdy_put_rst(struct crid_buf *out, uint32_t stream_id, uint32_t status);
int crid_spdy_put_ping(struct crid_buf *out, uint32_t id);
int crid_spdy_put_goaway(struct crid_buf *out, uint32_t last_stream_id, uint32_t status);
int crid_spdy_put_window_update(struct crid_buf *out, uint32_t stream_id, uint32_t delta);

static inline uint32_t crid_spdy_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
