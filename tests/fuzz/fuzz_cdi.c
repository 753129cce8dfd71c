/* libFuzzer target: a CDI spec file (cdi/cdi_spec.c, cdi/cdi_yaml.c), the
 * first byte choosing JSON (even) or YAML (odd); a spec that validates has
 * its edits and each device's merged (device nodes are looked up on the
 * host, read only) and applied to a small config.json. */
#include <stdint.h>
#include <stdlib.h>

#include "cdi/cdi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct crid_err err;
	json_t *spec = NULL, *merged, *config;
	size_t i;
	json_t *d;

	if (size == 0)
		return 0;
	if (crid_cdi_spec_parse((const char *)data + 1, size - 1, data[0] & 1, &spec, &err) < 0)
		return 0;
	merged = json_object();
	config = json_pack("{s:{s:[s], s:{s:i, s:i}}, s:[], s:{s:{s:[]}}}", "process", "env", "PATH=/bin", "user", "uid",
			   0, "gid", 0, "mounts", "linux", "resources", "devices");
	if (!merged || !config)
		abort();
	if (crid_cdi_edits_merge(merged, json_object_get(spec, "containerEdits"), "fuzz.example/c=spec", &err) == 0) {
		json_array_foreach(json_object_get(spec, "devices"), i, d) {
			if (crid_cdi_edits_merge(merged, json_object_get(d, "containerEdits"), "fuzz.example/c=d", &err) < 0)
				break;
		}
		json_object_del(merged, "owners");
		if (crid_cdi_apply(merged, config, &err) < 0 && err.status != CRID_RESOURCE_EXHAUSTED)
			abort(); /* applying merged edits cannot fail otherwise */
	}
	json_decref(config);
	json_decref(merged);
	json_decref(spec);
	return 0;
}
