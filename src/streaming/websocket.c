/* WebSocket frames and handshake (websocket.h). */
#include "streaming/websocket.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int crid_ws_accept_key(const char *key, char out[29])
{
	unsigned char decoded[32], digest[SHA_DIGEST_LENGTH];
	char joined[64 + sizeof(WS_GUID)];
	size_t key_len = strlen(key);

	/* 16 bytes in base64: 24 characters, "==" at the end. */
	if (key_len != 24 || EVP_DecodeBlock(decoded, (const unsigned char *)key, 24) != 18 || key[22] != '=' ||
	    key[23] != '=')
		return -EINVAL;
	memcpy(joined, key, key_len);
	memcpy(joined + key_len, WS_GUID, sizeof(WS_GUID));
	SHA1((const unsigned char *)joined, key_len + sizeof(WS_GUID) - 1, digest);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
	return 0;
}

long crid_ws_frame_parse(uint8_t *buf, size_t len, struct crid_ws_frame *f)
{
	size_t hdr = 2;
	uint64_t plen;
	uint8_t *mask;

	if (len < 2)
		return 0;
	memset(f, 0, sizeof(*f));
	f->fin = buf[0] & 0x80;
	f->opcode = buf[0] & 0x0f;
	if (buf[0] & 0x70)
		return -EPROTO; /* no extension was negotiated */
	if (!(buf[1] & 0x80))
		return -EPROTO; /* client frames are masked */
	switch (f->opcode) {
	case CRID_WS_CONTINUATION:
	case CRID_WS_TEXT:
	case CRID_WS_BINARY:
		break;
	case CRID_WS_CLOSE:
	case CRID_WS_PING:
	case CRID_WS_PONG:
		if (!f->fin || (buf[1] & 0x7f) > 125)
			return -EPROTO;
		break;
	default:
		return -EPROTO;
	}
	plen = buf[1] & 0x7f;
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		hdr = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		hdr = 10;
	}
	if (plen > CRID_WS_MAX_MESSAGE)
		return -E2BIG;
	if (len < hdr + 4 + plen)
		return 0;
	mask = buf + hdr;
	f->payload = buf + hdr + 4;
	f->len = (size_t)plen;
	for (size_t i = 0; i < f->len; i++)
		f->payload[i] ^= mask[i & 3];
	return (long)(hdr + 4 + plen);
}

int crid_ws_put_frame(struct crid_buf *out, uint8_t opcode, const void *data, size_t len)
{
	uint8_t h[10];
	size_t n;
	int r;

	h[0] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		h[1] = (uint8_t)len;
		n = 2;
	} else if (len <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		n = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		n = 10;
	}
	r = crid_buf_add(out, h, n);
	if (r == 0)
		r = crid_buf_add(out, data, len);
	return r;
}

int crid_ws_put_close(struct crid_buf *out, uint16_t code, const char *reason)
{
	uint8_t p[125];
	size_t rlen = strlen(reason);

	if (rlen > sizeof(p) - 2)
		rlen = sizeof(p) - 2;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	memcpy(p + 2, reason, rlen);
	return crid_ws_put_frame(out, CRID_WS_CLOSE, p, rlen + 2);
}
