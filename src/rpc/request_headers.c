/* RFC 9113 section 8 request checks (request_headers.h). The first problem
 * found is kept; later fields are not looked at once a request is
 * malformed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rpc/request_headers.h"

enum {
	PSEUDO_METHOD = 1u << 0,
	PSEUDO_SCHEME = 1u << 1,
	PSEUDO_PATH = 1u << 2,
	PSEUDO_AUTHORITY = 1u << 3,
};

static const struct {
	const char *name;
	unsigned bit;
} pseudo_headers[] = {
	{ ":method", PSEUDO_METHOD },
	{ ":scheme", PSEUDO_SCHEME },
	{ ":path", PSEUDO_PATH },
	{ ":authority", PSEUDO_AUTHORITY },
};

/* Fields that belong to one HTTP/1.1 connection hop (RFC 9113 8.2.2). */
static const char *const connection_specific[] = {
	"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
};

/* Clipped and with anything unprintable replaced, so a reason names the
 * field without carrying hostile bytes into a log line. */
#define SHOWN_MAX 40

static void shown(char *out, size_t size, const uint8_t *s, size_t len)
{
	size_t n = len < SHOWN_MAX ? len : SHOWN_MAX;
	size_t i;

	if (size == 0)
		return;
	if (n > size - 1)
		n = size - 1;
	for (i = 0; i < n; i++)
		out[i] = s[i] >= 0x21 && s[i] < 0x7f && s[i] != '"' ? (char)s[i] : '?';
	out[i] = '\0';
}

static void __attribute__((format(printf, 2, 3))) set_malformed(struct crid_request_headers *h, const char *fmt, ...)
{
	va_list ap;

	if (h->malformed[0])
		return;
	va_start(ap, fmt);
	vsnprintf(h->malformed, sizeof(h->malformed), fmt, ap);
	va_end(ap);
	if (!h->malformed[0])
		snprintf(h->malformed, sizeof(h->malformed), "malformed request");
}

static bool is_named(const uint8_t *name, size_t namelen, const char *want)
{
	return strlen(want) == namelen && memcmp(name, want, namelen) == 0;
}

/* A token character of RFC 9110 5.6.2, lowercase only. */
static bool name_char_ok(uint8_t c)
{
	if (c >= 'a' && c <= 'z')
		return true;
	if (c >= '0' && c <= '9')
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool name_ok(struct crid_request_headers *h, const uint8_t *name, size_t namelen)
{
	char show[SHOWN_MAX + 1];
	size_t start = namelen > 0 && name[0] == ':' ? 1 : 0;

	if (namelen == start) {
		set_malformed(h, "empty header field name");
		return false;
	}
	for (size_t i = start; i < namelen; i++) {
		if (!name_char_ok(name[i])) {
			shown(show, sizeof(show), name, namelen);
			if (name[i] >= 'A' && name[i] <= 'Z')
				set_malformed(h, "header field name \"%s\" is not lowercase", show);
			else
				set_malformed(h, "header field name \"%s\" has an invalid character", show);
			return false;
		}
	}
	return true;
}

static bool value_ok(struct crid_request_headers *h, const uint8_t *name, size_t namelen, const uint8_t *value,
		     size_t valuelen)
{
	char show[SHOWN_MAX + 1];

	for (size_t i = 0; i < valuelen; i++) {
		if (value[i] == '\0' || value[i] == '\r' || value[i] == '\n') {
			shown(show, sizeof(show), name, namelen);
			set_malformed(h, "header field \"%s\" has NUL, CR or LF in its value", show);
			return false;
		}
	}
	if (valuelen > 0 && (value[0] == ' ' || value[0] == '\t' || value[valuelen - 1] == ' ' ||
			     value[valuelen - 1] == '\t')) {
		shown(show, sizeof(show), name, namelen);
		set_malformed(h, "header field \"%s\" has white space around its value", show);
		return false;
	}
	return true;
}

void crid_request_headers_init(struct crid_request_headers *h)
{
	memset(h, 0, sizeof(*h));
	h->content_length = -1;
}

static void content_length_field(struct crid_request_headers *h, const uint8_t *value, size_t valuelen)
{
	int64_t n = 0;

	if (h->content_length >= 0) {
		set_malformed(h, "repeated content-length");
		return;
	}
	if (valuelen == 0 || valuelen > 18) {
		set_malformed(h, "content-length is not a number");
		return;
	}
	for (size_t i = 0; i < valuelen; i++) {
		if (value[i] < '0' || value[i] > '9') {
			set_malformed(h, "content-length is not a number");
			return;
		}
		n = n * 10 + (value[i] - '0');
	}
	h->content_length = n;
}

static void regular_field(struct crid_request_headers *h, const uint8_t *name, size_t namelen, const uint8_t *value,
			  size_t valuelen)
{
	for (size_t i = 0; i < sizeof(connection_specific) / sizeof(connection_specific[0]); i++) {
		if (is_named(name, namelen, connection_specific[i])) {
			set_malformed(h, "connection-specific header field \"%s\"", connection_specific[i]);
			return;
		}
	}
	if (is_named(name, namelen, "te") && !(valuelen == 8 && memcmp(value, "trailers", 8) == 0)) {
		set_malformed(h, "te header field other than \"trailers\"");
		return;
	}
}

void crid_request_headers_field(struct crid_request_headers *h, const uint8_t *name, size_t namelen,
				const uint8_t *value, size_t valuelen)
{
	char show[SHOWN_MAX + 1];

	if (h->malformed[0] || !name_ok(h, name, namelen) || !value_ok(h, name, namelen, value, valuelen))
		return;
	if (name[0] != ':') {
		h->regular_seen = true;
		if (is_named(name, namelen, "content-length"))
			content_length_field(h, value, valuelen);
		else
			regular_field(h, name, namelen, value, valuelen);
		return;
	}
	shown(show, sizeof(show), name, namelen);
	if (h->regular_seen) {
		set_malformed(h, "pseudo-header %s after regular header fields", show);
		return;
	}
	for (size_t i = 0; i < sizeof(pseudo_headers) / sizeof(pseudo_headers[0]); i++) {
		if (!is_named(name, namelen, pseudo_headers[i].name))
			continue;
		if (h->pseudo_seen & pseudo_headers[i].bit) {
			set_malformed(h, "repeated pseudo-header %s", show);
			return;
		}
		h->pseudo_seen |= pseudo_headers[i].bit;
		if (pseudo_headers[i].bit != PSEUDO_AUTHORITY && valuelen == 0)
			set_malformed(h, "empty pseudo-header %s", show);
		else if (pseudo_headers[i].bit == PSEUDO_PATH && value[0] != '/')
			set_malformed(h, ":path is not an absolute path");
		return;
	}
	set_malformed(h, "unknown pseudo-header %s", show);
}

void crid_request_headers_end(struct crid_request_headers *h)
{
	/* Every pseudo-header but :authority is required. */
	for (size_t i = 0; i < sizeof(pseudo_headers) / sizeof(pseudo_headers[0]); i++) {
		if (pseudo_headers[i].bit != PSEUDO_AUTHORITY && !(h->pseudo_seen & pseudo_headers[i].bit)) {
			set_malformed(h, "request without %s", pseudo_headers[i].name);
			return;
		}
	}
}

void crid_request_trailers_begin(struct crid_request_headers *h, bool end_stream)
{
	if (h->trailers_seen)
		set_malformed(h, "a second trailer block");
	else if (!end_stream)
		set_malformed(h, "a header block after the request's that does not end the stream");
	h->trailers_seen = true;
}

void crid_request_trailers_field(struct crid_request_headers *h, const uint8_t *name, size_t namelen,
				 const uint8_t *value, size_t valuelen)
{
	char show[SHOWN_MAX + 1];

	if (h->malformed[0] || !name_ok(h, name, namelen) || !value_ok(h, name, namelen, value, valuelen))
		return;
	if (name[0] == ':') {
		shown(show, sizeof(show), name, namelen);
		set_malformed(h, "pseudo-header %s in trailers", show);
		return;
	}
	regular_field(h, name, namelen, value, valuelen);
}

void crid_request_headers_data(struct crid_request_headers *h, size_t len)
{
	h->data_len += len;
	if (h->content_length >= 0 && h->data_len > (uint64_t)h->content_length)
		set_malformed(h, "more DATA than the content-length of %lld bytes", (long long)h->content_length);
}

void crid_request_headers_stream_end(struct crid_request_headers *h)
{
	if (h->content_length >= 0 && h->data_len != (uint64_t)h->content_length)
		set_malformed(h, "content-length of %lld bytes disagrees with the %llu bytes of DATA received",
			      (long long)h->content_length, (unsigned long long)h->data_len);
}
