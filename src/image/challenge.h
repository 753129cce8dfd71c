/* A registry's WWW-Authenticate challenge (RFC 7235): its scheme and the
 * parameters crid uses (realm, service, scope). Pure parsing of hostile
 * text: bounded, never reads past the header. */
#ifndef CRID_IMAGE_CHALLENGE_H
#define CRID_IMAGE_CHALLENGE_H

#include "common/error.h"

/* Longest parameter value kept. */
#define CRID_CHALLENGE_VALUE_MAX 2048

enum crid_challenge_scheme {
	CRID_CHALLENGE_OTHER = 0,
	CRID_CHALLENGE_BEARER,
	CRID_CHALLENGE_BASIC,
};

struct crid_challenge {
	enum crid_challenge_scheme scheme;
	char scheme_name[32]; /* as sent, cut short; for messages */
	char *realm, *service, *scope; /* malloc'd, NULL when absent */
};

/* Parses the first challenge of header (later ones are ignored). Parameter
 * names are case-insensitive; values are tokens or quoted strings with
 * backslash escapes. INVALID_ARGUMENT when the header is malformed or a
 * value is longer than CRID_CHALLENGE_VALUE_MAX. */
int crid_challenge_parse(const char *header, struct crid_challenge *out, struct crid_err *err);
void crid_challenge_free(struct crid_challenge *c);

#endif
