/* WebSocket (RFC 6455) for the streaming server: the handshake's accept
 * key, and frames: parsing what a client sends (always masked) and
 * building what the server sends (never masked). Pure encoding and
 * decoding of hostile bytes; never touches a socket. */
#ifndef CRID_STREAMING_WEBSOCKET_H
#define CRID_STREAMING_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "streaming/buf.h"

enum crid_ws_opcode {
	CRID_WS_CONTINUATION = 0x0,
	CRID_WS_TEXT = 0x1,
	CRID_WS_BINARY = 0x2,
	CRID_WS_CLOSE = 0x8,
	CRID_WS_PING = 0x9,
	CRID_WS_PONG = 0xa,
};

/* Largest message (all its fragments) accepted from a client. */
#define CRID_WS_MAX_MESSAGE (1024 * 1024)

struct crid_ws_frame {
	bool fin;
	uint8_t opcode;
	uint8_t *payload; /* unmasked in place */
	size_t len;
};

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64 of the
 * SHA-1 of the key and the RFC's GUID. out holds 29 bytes. -EINVAL for a
 * key that is not 16 bytes in base64. */
int crid_ws_accept_key(const char *key, char out[29]);

/* Parses (and unmasks, in place) the frame at the start of buf: its total
 * length, 0 when incomplete, -EPROTO (unmasked, reserved bits, a control
 * frame over 125 bytes or fragmented, unknown opcode) or -E2BIG. */
long crid_ws_frame_parse(uint8_t *buf, size_t len, struct crid_ws_frame *f);

/* Appends one unmasked frame with FIN set. */
int crid_ws_put_frame(struct crid_buf *out, uint8_t opcode, const void *data, size_t len);

/* A close frame with a status code and a reason (cut to fit 125 bytes). */
int crid_ws_put_close(struct crid_buf *out, uint16_t code, const char *reason);

#endif
