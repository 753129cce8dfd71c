/* The HTTP/2 request checks of RFC 9113 section 8 that crid makes itself
 * instead of nghttp2: nghttp2's own checks refuse an :authority holding a
 * socket path, which is what grpc-go (every kubelet) sends. On a Unix socket
 * the authority means nothing, so any is accepted; everything else a
 * malformed request can get wrong is checked here. Pure state machine: it
 * never touches a session or a socket. */
#ifndef CRID_RPC_REQUEST_HEADERS_H
#define CRID_RPC_REQUEST_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crid_request_headers {
	unsigned pseudo_seen; /* bit per known pseudo-header */
	bool regular_seen;
	bool trailers_seen;
	int64_t content_length; /* -1 when absent */
	uint64_t data_len;      /* DATA payload received so far */
	char malformed[160];    /* why the request is malformed; "" while it is not */
};

void crid_request_headers_init(struct crid_request_headers *h);

/* One field of the request's header block (the first HEADERS frame and its
 * CONTINUATIONs). */
void crid_request_headers_field(struct crid_request_headers *h, const uint8_t *name, size_t namelen,
				const uint8_t *value, size_t valuelen);

/* The request's header block ended: the required pseudo-headers must be
 * there. */
void crid_request_headers_end(struct crid_request_headers *h);

/* A later header block (trailers) begins; it must end the stream. */
void crid_request_trailers_begin(struct crid_request_headers *h, bool end_stream);

/* One field of a trailer block: no pseudo-headers there. */
void crid_request_trailers_field(struct crid_request_headers *h, const uint8_t *name, size_t namelen,
				 const uint8_t *value, size_t valuelen);

/* len more bytes of DATA arrived: no more than content-length allows. */
void crid_request_headers_data(struct crid_request_headers *h, size_t len);

/* The client ended the stream: DATA must add up to content-length. */
void crid_request_headers_stream_end(struct crid_request_headers *h);

static inline bool crid_request_headers_malformed(const struct crid_request_headers *h)
{
	return h->malformed[0] != '\0';
}

#endif
