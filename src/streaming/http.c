/* HTTP/1.1 request heads (http.h): the request line and header fields of
 * RFC 9112, strict about what a streaming client sends. */
#include "streaming/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t crid_http_head_len(const char *buf, size_t len)
{
	for (size_t i = 3; i < len; i++) {
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return i + 1;
	}
	return 0;
}

static bool is_tchar(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

int crid_http_parse(const char *buf, size_t len, struct crid_http_request *req, const char **why)
{
	char *line, *next, *sp;

	memset(req, 0, sizeof(*req));
	if (len > CRID_HTTP_HEAD_MAX) {
		*why = "request head too large";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\0') {
			*why = "NUL byte in request head";
			return -EINVAL;
		}
	}
	req->storage = malloc(len + 1);
	if (!req->storage) {
		*why = "out of memory";
		return -ENOMEM;
	}
	memcpy(req->storage, buf, len);
	req->storage[len] = '\0';

	line = req->storage;
	next = strstr(line, "\r\n");
	if (!next) {
		*why = "no request line";
		return -EINVAL;
	}
	*next = '\0';
	next += 2;
	/* method SP target SP HTTP/1.1 */
	sp = strchr(line, ' ');
	if (!sp || sp == line) {
		*why = "malformed request line";
		return -EINVAL;
	}
	*sp = '\0';
	req->method = line;
	for (const char *p = line; *p; p++) {
		if (!is_tchar((unsigned char)*p)) {
			*why = "malformed method";
			return -EINVAL;
		}
	}
	req->target = sp + 1;
	sp = strchr(req->target, ' ');
	if (!sp || sp == req->target || (strcmp(sp + 1, "HTTP/1.1") != 0 && strcmp(sp + 1, "HTTP/1.0") != 0)) {
		*why = "malformed request line (HTTP/1.1 expected)";
		return -EINVAL;
	}
	*sp = '\0';
	for (const unsigned char *p = (const unsigned char *)req->target; *p; p++) {
		if (*p <= ' ' || *p >= 0x7f) {
			*why = "malformed request target";
			return -EINVAL;
		}
	}
	if (req->target[0] != '/') {
		*why = "request target must be a path";
		return -EINVAL;
	}
	req->path = req->target;
	sp = strchr(req->target, '?');
	if (sp) {
		/* The path keeps its own copy boundary: split in place. */
		*sp = '\0';
		req->query = sp + 1;
	} else {
		req->query = req->target + strlen(req->target);
	}

	for (line = next; *line; line = next) {
		char *colon, *name;

		next = strstr(line, "\r\n");
		if (!next) {
			*why = "header line without CRLF";
			return -EINVAL;
		}
		*next = '\0';
		next += 2;
		if (line[0] == '\0')
			break; /* the blank line */
		if (line[0] == ' ' || line[0] == '\t') {
			*why = "obsolete line folding";
			return -EINVAL;
		}
		colon = strchr(line, ':');
		if (!colon || colon == line) {
			*why = "malformed header field";
			return -EINVAL;
		}
		*colon = '\0';
		name = line;
		for (const char *p = name; *p; p++) {
			if (!is_tchar((unsigned char)*p)) {
				*why = "malformed header field name";
				return -EINVAL;
			}
		}
		if (req->n_headers == CRID_HTTP_MAX_HEADERS) {
			*why = "too many header fields";
			return -EINVAL;
		}
		for (const unsigned char *p = (const unsigned char *)colon + 1; *p; p++) {
			if ((*p < ' ' && *p != '\t') || *p == 0x7f) {
				*why = "control character in header field";
				return -EINVAL;
			}
		}
		req->headers[req->n_headers].name = name;
		req->headers[req->n_headers].value = trim(colon + 1);
		req->n_headers++;
	}
	return 0;
}

void crid_http_request_free(struct crid_http_request *req)
{
	free(req->storage);
	memset(req, 0, sizeof(*req));
}

const char *crid_http_header(const struct crid_http_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++) {
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	}
	return NULL;
}

bool crid_http_header_each(const struct crid_http_request *req, const char *name,
			   bool (*fn)(const char *item, size_t len, void *ctx), void *ctx)
{
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *p;

		if (strcasecmp(req->headers[i].name, name) != 0)
			continue;
		for (p = req->headers[i].value; *p;) {
			size_t n = strcspn(p, ","), k = n;
			const char *s = p;

			while (k > 0 && (*s == ' ' || *s == '\t')) {
				s++;
				k--;
			}
			while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t'))
				k--;
			if (k > 0 && fn(s, k, ctx))
				return true;
			p += n;
			if (*p == ',')
				p++;
		}
	}
	return false;
}

struct token_ctx {
	const char *token;
};

static bool token_is(const char *item, size_t len, void *ctx)
{
	const struct token_ctx *t = ctx;

	return strlen(t->token) == len && strncasecmp(item, t->token, len) == 0;
}

bool crid_http_header_has_token(const struct crid_http_request *req, const char *name, const char *token)
{
	struct token_ctx t = { token };

	return crid_http_header_each(req, name, token_is, &t);
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

void crid_http_query_each(const char *query, const char *key, bool (*fn)(const char *value, void *ctx), void *ctx)
{
	size_t key_len = strlen(key);

	for (const char *p = query; *p;) {
		size_t n = strcspn(p, "&");

		if (n > key_len && strncmp(p, key, key_len) == 0 && p[key_len] == '=') {
			char value[256];
			size_t o = 0;

			for (size_t i = key_len + 1; i < n && o + 1 < sizeof(value); i++) {
				if (p[i] == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
					value[o++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
					i += 2;
				} else {
					value[o++] = p[i] == '+' ? ' ' : p[i];
				}
			}
			value[o] = '\0';
			if (!fn(value, ctx))
				return;
		}
		p += n;
		if (*p == '&')
			p++;
	}
}
