/* Checks a request's protobuf wire bytes before they are decoded: every
 * string field, at any depth, must be valid UTF-8 without NUL bytes (the
 * decoder accepts both, and a NUL would silently cut a C string short).
 * Pure: reads the bytes and the message descriptors, allocates nothing. */
#ifndef CRID_RPC_PROTO_CHECK_H
#define CRID_RPC_PROTO_CHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Nesting deeper than this is refused: no CRI message comes close. */
#define CRID_PROTO_MAX_DEPTH 32

/* INVALID_ARGUMENT naming the field ("config.metadata.name: not valid
 * UTF-8") when a string field is bad; malformed wire bytes are left for
 * the decoder to refuse, except nesting beyond CRID_PROTO_MAX_DEPTH. */
int crid_proto_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
			     struct crid_err *err);

/* Whether s[0..len) is valid UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF). NUL bytes are valid UTF-8. */
bool crid_utf8_valid(const uint8_t *s, size_t len);

#endif
