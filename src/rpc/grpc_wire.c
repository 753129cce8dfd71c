/* gRPC wire helpers of grpc_wire.h. */
#include "rpc/grpc_wire.h"

#include <errno.h>
#include <string.h>

void crid_grpc_prefix_write(uint8_t out[CRID_GRPC_PREFIX_LEN], uint32_t len)
{
	out[0] = 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

void crid_grpc_prefix_read(const uint8_t in[CRID_GRPC_PREFIX_LEN], int *compressed, uint32_t *len)
{
	*compressed = in[0] != 0;
	*len = (uint32_t)in[1] << 24 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 8 | in[4];
}

int crid_grpc_unary_body(const uint8_t *body, size_t body_len, const uint8_t **msg, size_t *msg_len,
			 struct crid_err *err)
{
	int compressed;
	uint32_t len;

	if (body_len < CRID_GRPC_PREFIX_LEN)
		return crid_err_set(err, CRID_INTERNAL, 0,
				    "request body of %zu bytes holds no complete gRPC message prefix", body_len);
	crid_grpc_prefix_read(body, &compressed, &len);
	if (compressed)
		return crid_err_set(err, CRID_INTERNAL, 0,
				    "request message is flagged compressed but no grpc-encoding was given");
	if ((size_t)len != body_len - CRID_GRPC_PREFIX_LEN)
		return crid_err_set(err, CRID_INTERNAL, 0,
				    "gRPC message prefix says %u bytes but the request body holds %zu after it",
				    len, body_len - CRID_GRPC_PREFIX_LEN);
	*msg = body + CRID_GRPC_PREFIX_LEN;
	*msg_len = len;
	return 0;
}

int crid_grpc_timeout_parse(const char *value, size_t len, int64_t *ns)
{
	int64_t n = 0, unit;

	/* The spec allows at most 8 digits, so no overflow below. */
	if (len < 2 || len > 9)
		return -EINVAL;
	for (size_t i = 0; i + 1 < len; i++) {
		if (value[i] < '0' || value[i] > '9')
			return -EINVAL;
		n = n * 10 + (value[i] - '0');
	}
	switch (value[len - 1]) {
	case 'H':
		unit = 3600LL * 1000000000LL;
		break;
	case 'M':
		unit = 60LL * 1000000000LL;
		break;
	case 'S':
		unit = 1000000000LL;
		break;
	case 'm':
		unit = 1000000LL;
		break;
	case 'u':
		unit = 1000LL;
		break;
	case 'n':
		unit = 1;
		break;
	default:
		return -EINVAL;
	}
	/* 99999999 hours overflows int64 nanoseconds: clamp to about 292 years. */
	if (n > INT64_MAX / unit)
		*ns = INT64_MAX;
	else
		*ns = n * unit;
	return 0;
}

int crid_grpc_message_encode(const char *msg, char *out, size_t out_size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
			if (o + 1 >= out_size)
				return -ENOSPC;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= out_size)
				return -ENOSPC;
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 0xf];
		}
	}
	if (o >= out_size)
		return -ENOSPC;
	out[o] = '\0';
	return (int)o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t crid_grpc_message_decode(char *s)
{
	size_t r = 0, w = 0;

	while (s[r]) {
		if (s[r] == '%' && hexval(s[r + 1]) >= 0 && hexval(s[r + 2]) >= 0) {
			s[w++] = (char)(hexval(s[r + 1]) << 4 | hexval(s[r + 2]));
			r += 3;
		} else {
			s[w++] = s[r++];
		}
	}
	s[w] = '\0';
	return w;
}

int crid_grpc_content_type_ok(const char *value, size_t len)
{
	static const char base[] = "application/grpc";
	size_t blen = sizeof(base) - 1;

	if (len < blen || strncasecmp(value, base, blen) != 0)
		return 0;
	if (len == blen || value[blen] == ';')
		return 1;
	/* crid speaks protobuf only: "+proto", nothing else after a '+'. */
	return len >= blen + 6 && strncasecmp(value + blen, "+proto", 6) == 0 &&
	       (len == blen + 6 || value[blen + 6] == ';');
}
