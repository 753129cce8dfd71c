/* libFuzzer target: a registry's WWW-Authenticate header
 * (image/challenge.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/challenge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct crid_challenge c;
	struct crid_err err;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (crid_challenge_parse(s, &c, &err) == 0) {
		if ((c.realm && strlen(c.realm) > CRID_CHALLENGE_VALUE_MAX) ||
		    (c.scope && strlen(c.scope) > CRID_CHALLENGE_VALUE_MAX))
			abort();
		crid_challenge_free(&c);
	}
	free(s);
	return 0;
}
