/* gRPC-over-HTTP/2 wire details that need no socket: the 5-byte message
 * prefix, the grpc-timeout header, grpc-message percent-encoding. Pure
 * functions, so they are unit-tested on their own. */
#ifndef CRID_RPC_GRPC_WIRE_H
#define CRID_RPC_GRPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define CRID_GRPC_PREFIX_LEN 5

/* Writes the prefix of an uncompressed message of len bytes into out[5]. */
void crid_grpc_prefix_write(uint8_t out[CRID_GRPC_PREFIX_LEN], uint32_t len);

/* Reads a prefix: whether the message is compressed and its length. */
void crid_grpc_prefix_read(const uint8_t in[CRID_GRPC_PREFIX_LEN], int *compressed, uint32_t *len);

/* Finds the one message of a unary request body. On success *msg and *msg_len
 * point into body. A body that is not exactly one prefixed message, or whose
 * message is compressed, is INTERNAL, as gRPC treats framing errors. */
int crid_grpc_unary_body(const uint8_t *body, size_t body_len, const uint8_t **msg, size_t *msg_len,
			 struct crid_err *err);

/* Parses a grpc-timeout value ("100m", "5S", "1n": up to 8 digits and a unit
 * of H M S m u n) into nanoseconds. -EINVAL when malformed. */
int crid_grpc_timeout_parse(const char *value, size_t len, int64_t *ns);

/* Percent-encodes a grpc-message value: bytes outside 0x20-0x7e and '%'
 * become %XX. Returns the length written (without NUL), or -ENOSPC when out
 * (of size out_size) is too small; out_size 3*len+1 always suffices. */
int crid_grpc_message_encode(const char *msg, char *out, size_t out_size);

/* The inverse, in place; malformed escapes are kept as they are. */
size_t crid_grpc_message_decode(char *s);

/* Whether a content-type names gRPC: "application/grpc" or
 * "application/grpc+proto" (and any ";params"). */
int crid_grpc_content_type_ok(const char *value, size_t len);

#endif
