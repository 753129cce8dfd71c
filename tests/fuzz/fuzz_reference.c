/* libFuzzer target: image references (image/reference.c) as a kubelet or a
 * hostile client writes them, through parsing and every way crid prints
 * them back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct crid_image_ref ref;
	struct crid_err err;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	crid_digest_valid(s);
	if (crid_image_ref_parse(s, &ref, &err) == 0) {
		char *a = crid_image_ref_repository(&ref);
		char *b = crid_image_ref_string(&ref);
		char *c = crid_image_ref_tagged(&ref);
		char *d = crid_image_ref_with_digest(&ref, "sha256:0000000000000000000000000000000000000000000000000000000000000000");
		struct crid_image_ref again;

		/* What crid prints must parse again, to the same name. */
		if (b && crid_image_ref_parse(b, &again, &err) == 0) {
			char *b2 = crid_image_ref_string(&again);

			if (b2 && strcmp(b, b2) != 0)
				abort();
			free(b2);
			crid_image_ref_free(&again);
		} else if (b) {
			abort();
		}
		free(a);
		free(b);
		free(c);
		free(d);
		crid_image_ref_free(&ref);
	}
	free(s);
	return 0;
}
