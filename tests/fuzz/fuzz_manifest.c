/* libFuzzer target: what a registry sends about an image (image/manifest.c):
 * manifests and indexes under each media type, the platform choice in an
 * index, image configs and the chain IDs of their diff IDs. The first byte
 * picks what the rest is read as. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/manifest.h"

static const char *const types[] = {
	NULL, CRID_MT_OCI_MANIFEST, CRID_MT_OCI_INDEX, CRID_MT_DOCKER_MANIFEST, CRID_MT_DOCKER_LIST,
	"application/vnd.docker.distribution.manifest.v1+prettyjws", "text/plain",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct crid_err err;
	const char *json;
	size_t len;

	if (size < 1)
		return 0;
	json = (const char *)data + 1;
	len = size - 1;
	if (data[0] & 0x80) {
		struct crid_image_config cfg;

		if (crid_image_config_parse(json, len, &cfg, &err) == 0) {
			char **chain = calloc(cfg.n_diff_ids ? cfg.n_diff_ids : 1, sizeof(*chain));

			if (chain && crid_chain_ids(cfg.diff_ids, cfg.n_diff_ids, chain, &err) == 0)
				for (size_t i = 0; i < cfg.n_diff_ids; i++)
					free(chain[i]);
			free(chain);
			crid_image_config_free(&cfg);
		}
	} else {
		struct crid_manifest m;
		const char *type = types[data[0] % (sizeof(types) / sizeof(types[0]))];

		if (crid_manifest_parse(json, len, type, &m, &err) == 0) {
			if (m.kind == CRID_MANIFEST_INDEX) {
				struct crid_platform host;
				struct crid_descriptor d;

				crid_platform_host(&host);
				if (crid_manifest_index_select(json, len, &host, &d, &err) == 0)
					crid_descriptor_free(&d);
			}
			crid_manifest_free(&m);
		}
	}
	return 0;
}
