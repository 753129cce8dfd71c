/* Image manifests and indexes (OCI image spec and Docker schema 2): which
 * manifest of an index fits this host, and what an image manifest and its
 * config say. Pure JSON parsing; never touches the network or the disk. */
#ifndef CRID_IMAGE_MANIFEST_H
#define CRID_IMAGE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define CRID_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define CRID_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define CRID_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define CRID_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define CRID_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define CRID_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

/* The Accept header value a registry client sends for manifests. */
#define CRID_MANIFEST_ACCEPT                                                                  \
	CRID_MT_OCI_INDEX ", " CRID_MT_OCI_MANIFEST ", " CRID_MT_DOCKER_LIST ", " CRID_MT_DOCKER_MANIFEST

enum crid_manifest_kind {
	CRID_MANIFEST_IMAGE = 1, /* OCI image manifest or Docker schema 2 */
	CRID_MANIFEST_INDEX,     /* OCI index or Docker manifest list */
};

enum crid_layer_compression {
	CRID_LAYER_TAR = 0,
	CRID_LAYER_GZIP,
	CRID_LAYER_ZSTD,
};

struct crid_descriptor {
	char *media_type;
	char *digest; /* "sha256:<hex>" */
	int64_t size;
};

struct crid_layer_desc {
	struct crid_descriptor desc;
	enum crid_layer_compression compression;
};

struct crid_platform {
	char *os;	    /* "linux" */
	char *architecture; /* GOARCH names: "amd64", "arm64", "arm" */
	char *variant;	    /* "v7", "v8"; NULL when none */
};

struct crid_manifest {
	enum crid_manifest_kind kind;
	char *media_type;
	/* CRID_MANIFEST_IMAGE */
	struct crid_descriptor config;
	struct crid_layer_desc *layers;
	size_t n_layers;
};

/* Parses a manifest or index. content_type is the registry's Content-Type
 * header (may be NULL); the document's own mediaType wins when present.
 * Docker schema 1 is refused (FAILED_PRECONDITION, saying it is no longer
 * supported); unknown media types, missing fields, non-sha256 or malformed
 * digests, negative sizes, and layer media types that are not tar, gzip or
 * zstd are INVALID_ARGUMENT naming the field. */
int crid_manifest_parse(const char *json, size_t len, const char *content_type, struct crid_manifest *out,
			struct crid_err *err);

/* For an index: picks the entry matching platform (os, architecture, then
 * variant with the usual defaults: arm64 means v8, arm means v7 unless the
 * entry says otherwise), ignoring non-manifest entries (e.g. attestation
 * manifests with platform unknown/unknown). NOT_FOUND listing what the index
 * offers when none fits. out->digest etc. are copies. */
int crid_manifest_index_select(const char *json, size_t len, const struct crid_platform *platform,
			       struct crid_descriptor *out, struct crid_err *err);

void crid_manifest_free(struct crid_manifest *m);
void crid_descriptor_free(struct crid_descriptor *d);

/* The host's platform in OCI terms (from uname: x86_64 → amd64, aarch64 →
 * arm64/v8, armv7l → arm/v7, ...). Strings are static. */
void crid_platform_host(struct crid_platform *out);

/* What CRI needs from an image config: the layers' diff IDs, and the user. */
struct crid_image_config {
	char **diff_ids; /* "sha256:<hex>" each */
	size_t n_diff_ids;
	char *user;	 /* config.User, "" when unset */
	char *os, *architecture;
};

/* Parses an image config; INVALID_ARGUMENT naming the field when malformed
 * (rootfs.type must be "layers", diff_ids valid digests). */
int crid_image_config_parse(const char *json, size_t len, struct crid_image_config *out, struct crid_err *err);
void crid_image_config_free(struct crid_image_config *c);

/* Chain IDs of the OCI image spec: chain[0] = diff[0], chain[i] =
 * sha256(chain[i-1] + " " + diff[i]). out receives n malloc'd strings. */
int crid_chain_ids(char *const *diff_ids, size_t n, char **out, struct crid_err *err);

#endif
