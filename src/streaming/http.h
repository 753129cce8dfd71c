/* The HTTP/1.1 request head the streaming server reads before an upgrade:
 * request line, header fields, query parameters. Pure parsing of hostile
 * bytes; never touches a socket. */
#ifndef CRID_STREAMING_HTTP_H
#define CRID_STREAMING_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define CRID_HTTP_HEAD_MAX (16 * 1024)
#define CRID_HTTP_MAX_HEADERS 64

struct crid_http_header {
	char *name; /* as sent; compared ignoring case */
	char *value; /* leading and trailing blanks removed */
};

struct crid_http_request {
	char *method;
	char *target; /* path and query as sent */
	char *path;   /* target without the query */
	char *query;  /* after '?', "" when none */
	struct crid_http_header headers[CRID_HTTP_MAX_HEADERS];
	size_t n_headers;
	char *storage; /* one allocation the strings point into */
};

/* Length of the head in buf (through the blank line), 0 when incomplete. */
size_t crid_http_head_len(const char *buf, size_t len);

/* Parses a complete head of len bytes. Returns 0, or -EINVAL with *why a
 * static reason fit for a 400 answer. */
int crid_http_parse(const char *buf, size_t len, struct crid_http_request *req, const char **why);
void crid_http_request_free(struct crid_http_request *req);

/* The first field of that name, NULL when none. */
const char *crid_http_header(const struct crid_http_request *req, const char *name);

/* Whether a comma-separated field of that name (any of its lines) lists
 * token, ignoring case ("Connection: keep-alive, Upgrade"). */
bool crid_http_header_has_token(const struct crid_http_request *req, const char *name, const char *token);

/* Calls fn for every comma-separated item of every field of that name, in
 * order, trimmed; stops when fn returns true and returns that. */
bool crid_http_header_each(const struct crid_http_request *req, const char *name,
			   bool (*fn)(const char *item, size_t len, void *ctx), void *ctx);

/* Every value of query parameter key, percent-decoded, in order: fn is
 * called for each; stops when fn returns false. */
void crid_http_query_each(const char *query, const char *key, bool (*fn)(const char *value, void *ctx), void *ctx);

#endif
