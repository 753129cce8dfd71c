/* SPDY/3.1 frames and header blocks (spdy.h). The zlib dictionary is the
 * one the SPDY/3 specification defines: length-prefixed header names and
 * values, then a run of common status codes, dates and content types. */
#include "streaming/spdy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *const dict_words[] = {
	"options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
	"accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
	"content-base", "content-encoding", "content-language", "content-length", "content-location",
	"content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
	"if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
	"location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
	"retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
	"warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
	"public", "set-cookie", "keep-alive", "origin",
};

static const char dict_tail[] =
	"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
	"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
	"401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
	"503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
	"Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
	"application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
	"gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

#define DICT_MAX 1500

struct crid_spdy_zlib {
	z_stream in, out;
	bool in_ready, out_ready;
	uint8_t dict[DICT_MAX];
	size_t dict_len;
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t build_dict(uint8_t *d)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(dict_words) / sizeof(dict_words[0]); i++) {
		size_t len = strlen(dict_words[i]);

		put32(d + n, (uint32_t)len);
		memcpy(d + n + 4, dict_words[i], len);
		n += 4 + len;
	}
	memcpy(d + n, dict_tail, sizeof(dict_tail) - 1);
	return n + sizeof(dict_tail) - 1;
}

int crid_spdy_zlib_new(struct crid_spdy_zlib **out)
{
	struct crid_spdy_zlib *z = calloc(1, sizeof(*z));

	if (!z)
		return -ENOMEM;
	z->dict_len = build_dict(z->dict);
	if (inflateInit(&z->in) != Z_OK) {
		free(z);
		return -ENOMEM;
	}
	z->in_ready = true;
	if (deflateInit(&z->out, Z_DEFAULT_COMPRESSION) != Z_OK ||
	    deflateSetDictionary(&z->out, z->dict, (uInt)z->dict_len) != Z_OK) {
		crid_spdy_zlib_free(z);
		return -ENOMEM;
	}
	z->out_ready = true;
	*out = z;
	return 0;
}

void crid_spdy_zlib_free(struct crid_spdy_zlib *z)
{
	if (!z)
		return;
	if (z->in_ready)
		inflateEnd(&z->in);
	if (z->out_ready)
		deflateEnd(&z->out);
	free(z);
}

long crid_spdy_frame_parse(const uint8_t *buf, size_t len, struct crid_spdy_frame *f)
{
	uint32_t plen;

	if (len < CRID_SPDY_HEADER_LEN)
		return 0;
	memset(f, 0, sizeof(*f));
	f->control = buf[0] & 0x80;
	f->flags = buf[4];
	plen = (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
	if (plen > CRID_SPDY_MAX_PAYLOAD)
		return -E2BIG;
	if (f->control) {
		uint16_t version = (uint16_t)((buf[0] & 0x7f) << 8 | buf[1]);

		if (version != CRID_SPDY_VERSION)
			return -EINVAL;
		f->type = (uint16_t)(buf[2] << 8 | buf[3]);
	} else {
		f->stream_id = crid_spdy_u32(buf) & 0x7fffffff;
	}
	if (len - CRID_SPDY_HEADER_LEN < plen)
		return 0;
	f->payload = buf + CRID_SPDY_HEADER_LEN;
	f->len = plen;
	if (f->control && plen >= 4 && f->type != CRID_SPDY_SETTINGS && f->type != CRID_SPDY_PING &&
	    f->type != CRID_SPDY_GOAWAY)
		f->stream_id = crid_spdy_u32(f->payload) & 0x7fffffff;
	return (long)(CRID_SPDY_HEADER_LEN + plen);
}

/* ---- header blocks ---- */

static int inflate_all(struct crid_spdy_zlib *z, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
		       size_t *out_len)
{
	z->in.next_in = (Bytef *)in;
	z->in.avail_in = (uInt)len;
	z->in.next_out = out;
	z->in.avail_out = (uInt)cap;
	while (z->in.avail_in > 0) {
		int r = inflate(&z->in, Z_SYNC_FLUSH);

		if (r == Z_NEED_DICT) {
			if (inflateSetDictionary(&z->in, z->dict, (uInt)z->dict_len) != Z_OK)
				return -EINVAL;
			continue;
		}
		if (r == Z_BUF_ERROR && z->in.avail_out == 0)
			return -E2BIG;
		if (r != Z_OK)
			return -EINVAL;
		if (z->in.avail_out == 0 && z->in.avail_in > 0)
			return -E2BIG;
	}
	*out_len = cap - z->in.avail_out;
	return 0;
}

int crid_spdy_headers_decode(struct crid_spdy_zlib *z, const uint8_t *block, size_t len, struct crid_spdy_nv *nv,
			     size_t *n_nv)
{
	uint8_t *raw = malloc(CRID_SPDY_MAX_HEADER_BLOCK);
	size_t raw_len = 0, p = 4;
	uint32_t count;
	int r;

	*n_nv = 0;
	if (!raw)
		return -ENOMEM;
	r = inflate_all(z, block, len, raw, CRID_SPDY_MAX_HEADER_BLOCK, &raw_len);
	if (r < 0 || raw_len < 4) {
		free(raw);
		return r < 0 ? r : -EINVAL;
	}
	count = crid_spdy_u32(raw);
	if (count > CRID_SPDY_MAX_NV) {
		free(raw);
		return -E2BIG;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint32_t nlen, vlen;
		struct crid_spdy_nv *e = &nv[i];

		if (raw_len - p < 4 || (nlen = crid_spdy_u32(raw + p)) == 0 || raw_len - p - 4 < nlen ||
		    nlen >= sizeof(e->name))
			goto bad;
		for (uint32_t k = 0; k < nlen; k++)
			e->name[k] = (char)tolower(raw[p + 4 + k]);
		e->name[nlen] = '\0';
		if (memchr(e->name, '\0', nlen))
			goto bad;
		p += 4 + nlen;
		if (raw_len - p < 4 || (vlen = crid_spdy_u32(raw + p)) > raw_len - p - 4)
			goto bad;
		e->value_len = vlen < sizeof(e->value) ? vlen : sizeof(e->value) - 1;
		memcpy(e->value, raw + p + 4, e->value_len);
		e->value[e->value_len] = '\0';
		p += 4 + vlen;
		(*n_nv)++;
	}
	free(raw);
	return 0;
bad:
	free(raw);
	return -EINVAL;
}

static int deflate_block(struct crid_spdy_zlib *z, const char *const *nv, size_t n_pairs, uint8_t *out, size_t cap,
			 size_t *out_len)
{
	uint8_t raw[4096];
	size_t n = 4;

	put32(raw, (uint32_t)n_pairs);
	for (size_t i = 0; i < 2 * n_pairs; i++) {
		size_t len = strlen(nv[i]);

		if (n + 4 + len > sizeof(raw))
			return -E2BIG;
		put32(raw + n, (uint32_t)len);
		memcpy(raw + n + 4, nv[i], len);
		n += 4 + len;
	}
	z->out.next_in = raw;
	z->out.avail_in = (uInt)n;
	z->out.next_out = out;
	z->out.avail_out = (uInt)cap;
	if (deflate(&z->out, Z_SYNC_FLUSH) != Z_OK || z->out.avail_in != 0 || z->out.avail_out == 0)
		return -E2BIG;
	*out_len = cap - z->out.avail_out;
	return 0;
}

static int put_control(struct crid_buf *out, uint16_t type, uint8_t flags, const uint8_t *payload, size_t len)
{
	uint8_t h[8] = { 0x80, CRID_SPDY_VERSION, (uint8_t)(type >> 8), (uint8_t)type, flags,
			 (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };
	int r = crid_buf_add(out, h, sizeof(h));

	if (r == 0)
		r = crid_buf_add(out, payload, len);
	return r;
}

static int put_headers_frame(struct crid_buf *out, struct crid_spdy_zlib *z, uint16_t type, uint32_t stream_id,
			     uint8_t flags, const char *const *nv, size_t n_pairs, size_t prefix)
{
	uint8_t payload[8192];
	size_t blen;
	int r;

	memset(payload, 0, prefix);
	put32(payload, stream_id & 0x7fffffff);
	r = deflate_block(z, nv, n_pairs, payload + prefix, sizeof(payload) - prefix, &blen);
	if (r < 0)
		return r;
	return put_control(out, type, flags, payload, prefix + blen);
}

int crid_spdy_put_syn_reply(struct crid_buf *out, struct crid_spdy_zlib *z, uint32_t stream_id, uint8_t flags,
			    const char *const *nv, size_t n_pairs)
{
	return put_headers_frame(out, z, CRID_SPDY_SYN_REPLY, stream_id, flags, nv, n_pairs, 4);
}

int crid_spdy_put_syn_stream(struct crid_buf *out, struct crid_spdy_zlib *z, uint32_t stream_id, uint8_t flags,
			     const char *const *nv, size_t n_pairs)
{
	/* stream id, associated stream id, priority and slot */
	return put_headers_frame(out, z, CRID_SPDY_SYN_STREAM, stream_id, flags, nv, n_pairs, 10);
}

int crid_spdy_put_data(struct crid_buf *out, uint32_t stream_id, uint8_t flags, const void *data, size_t len)
{
	uint8_t h[8];
	int r;

	put32(h, stream_id & 0x7fffffff);
	h[4] = flags;
	h[5] = (uint8_t)(len >> 16);
	h[6] = (uint8_t)(len >> 8);
	h[7] = (uint8_t)len;
	r = crid_buf_add(out, h, sizeof(h));
	if (r == 0)
		r = crid_buf_add(out, data, len);
	return r;
}

int crid_spdy_put_rst(struct crid_buf *out, uint32_t stream_id, uint32_t status)
{
	uint8_t p[8];

	put32(p, stream_id & 0x7fffffff);
	put32(p + 4, status);
	return put_control(out, CRID_SPDY_RST_STREAM, 0, p, sizeof(p));
}

int crid_spdy_put_ping(struct crid_buf *out, uint32_t id)
{
	uint8_t p[4];

	put32(p, id);
	return put_control(out, CRID_SPDY_PING, 0, p, sizeof(p));
}

int crid_spdy_put_goaway(struct crid_buf *out, uint32_t last_stream_id, uint32_t status)
{
	uint8_t p[8];

	put32(p, last_stream_id & 0x7fffffff);
	put32(p + 4, status);
	return put_control(out, CRID_SPDY_GOAWAY, 0, p, sizeof(p));
}

int crid_spdy_put_window_update(struct crid_buf *out, uint32_t stream_id, uint32_t delta)
{
	uint8_t p[8];

	put32(p, stream_id & 0x7fffffff);
	put32(p + 4, delta & 0x7fffffff);
	return put_control(out, CRID_SPDY_WINDOW_UPDATE, 0, p, sizeof(p));
}
