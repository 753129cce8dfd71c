/* WWW-Authenticate parsing (challenge.h):
 *   challenge  = scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param = token BWS "=" BWS ( token / quoted-string )
 * A comma that follows a complete parameter list and starts "scheme x" or
 * "scheme" alone begins the next challenge, which is not ours to read. */
#include "image/challenge.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int bad(struct crid_err *err, const char *why)
{
	return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "malformed WWW-Authenticate challenge: %s", why);
}

/* Reads a token or a quoted string at *pp into a new string. */
static int read_value(const char **pp, char **out, struct crid_err *err)
{
	const char *p = *pp;
	char *v = malloc(CRID_CHALLENGE_VALUE_MAX + 1);
	size_t n = 0;

	if (!v)
		return crid_err_nomem(err, "challenge value");
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\0') {
				free(v);
				return bad(err, "unterminated quoted string");
			}
			if (*p == '\\' && p[1])
				p++;
			if (n == CRID_CHALLENGE_VALUE_MAX) {
				free(v);
				return bad(err, "value too long");
			}
			v[n++] = *p;
		}
		p++;
	} else {
		/* token68 characters too: '/' and '=' appear in unquoted values. */
		for (; is_tchar(*p) || *p == '/' || *p == '=' || *p == ':'; p++) {
			if (n == CRID_CHALLENGE_VALUE_MAX) {
				free(v);
				return bad(err, "value too long");
			}
			v[n++] = *p;
		}
	}
	v[n] = '\0';
	*out = v;
	*pp = p;
	return 0;
}

static char **slot_for(struct crid_challenge *c, const char *name, size_t len)
{
	if (len == 5 && strncasecmp(name, "realm", 5) == 0)
		return &c->realm;
	if (len == 7 && strncasecmp(name, "service", 7) == 0)
		return &c->service;
	if (len == 5 && strncasecmp(name, "scope", 5) == 0)
		return &c->scope;
	return NULL;
}

int crid_challenge_parse(const char *header, struct crid_challenge *c, struct crid_err *err)
{
	const char *p = skip_ows(header), *start = p;
	size_t len;

	memset(c, 0, sizeof(*c));
	while (is_tchar(*p))
		p++;
	len = (size_t)(p - start);
	if (len == 0)
		return bad(err, "no scheme");
	snprintf(c->scheme_name, sizeof(c->scheme_name), "%.*s", (int)(len < 31 ? len : 31), start);
	if (len == 6 && strncasecmp(start, "Bearer", 6) == 0)
		c->scheme = CRID_CHALLENGE_BEARER;
	else if (len == 5 && strncasecmp(start, "Basic", 5) == 0)
		c->scheme = CRID_CHALLENGE_BASIC;
	for (;;) {
		const char *name;
		char *value = NULL, **slot;
		int r;

		p = skip_ows(p);
		while (*p == ',')
			p = skip_ows(p + 1);
		if (*p == '\0')
			return 0;
		name = p;
		while (is_tchar(*p))
			p++;
		len = (size_t)(p - name);
		if (len == 0) {
			crid_challenge_free(c);
			return bad(err, "expected a parameter name");
		}
		p = skip_ows(p);
		if (*p != '=') {
			/* "scheme" or "scheme x": the next challenge begins. A
			 * token68 ("Basic abc==") is all that follows its scheme. */
			return 0;
		}
		p = skip_ows(p + 1);
		if ((r = read_value(&p, &value, err)) < 0) {
			crid_challenge_free(c);
			return r;
		}
		slot = slot_for(c, name, len);
		if (slot && !*slot)
			*slot = value; /* the first of a repeated parameter counts */
		else
			free(value);
		p = skip_ows(p);
		if (*p != ',' && *p != '\0') {
			crid_challenge_free(c);
			return bad(err, "expected ',' between parameters");
		}
	}
}

void crid_challenge_free(struct crid_challenge *c)
{
	free(c->realm);
	free(c->service);
	free(c->scope);
	c->realm = c->service = c->scope = NULL;
}
