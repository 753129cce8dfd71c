/* libFuzzer target: a YAML configuration file (config/config_yaml.c), read
 * over the built-in defaults, then turned into Status' JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[] = { "crid", NULL };
	struct crid_config cfg = { 0 };
	struct crid_err err;
	FILE *f;

	/* The defaults, with no file or drop-in read. */
	if (crid_config_load_at(&cfg, 1, argv, "/nonexistent/crid-fuzz.yaml", "/nonexistent/crid-fuzz.d", &err) < 0)
		abort();
	f = size ? fmemopen((void *)data, size, "r") : NULL;
	if (f) {
		if (crid_config_read_yaml(&cfg, "fuzz.yaml", f, &err) == 0) {
			json_t *j = crid_config_to_json(&cfg);

			json_decref(j);
		}
		fclose(f);
	}
	crid_config_free(&cfg);
	return 0;
}
