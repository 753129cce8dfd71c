/* Image references as the kubelet and users write them, normalised the way
 * Docker does: "busybox" is docker.io/library/busybox:latest. Pure parsing;
 * never touches the network or the disk. */
#ifndef CRID_IMAGE_REFERENCE_H
#define CRID_IMAGE_REFERENCE_H

#include "common/error.h"

struct crid_image_ref {
	char *domain; /* "docker.io", "localhost:5000", "[::1]:5000" */
	char *path;   /* "library/busybox" */
	char *tag;    /* "latest"; NULL when only a digest was given */
	char *digest; /* "sha256:<64 hex>"; NULL when none */
};

/* Parses and normalises s. A malformed reference is INVALID_ARGUMENT with a
 * message naming it and what is wrong. When both a tag and a digest are
 * given ("name:tag@sha256:..."), both are kept and the digest wins for
 * fetching. When neither is given, tag becomes "latest". */
int crid_image_ref_parse(const char *s, struct crid_image_ref *out, struct crid_err *err);

void crid_image_ref_free(struct crid_image_ref *ref);

/* "docker.io/library/busybox" (malloc'd; NULL on out of memory). */
char *crid_image_ref_repository(const struct crid_image_ref *ref);

/* The name an image is found by: "docker.io/library/busybox@sha256:..."
 * when there is a digest (it wins over a tag), else
 * "docker.io/library/busybox:latest" (malloc'd; NULL on out of memory). */
char *crid_image_ref_string(const struct crid_image_ref *ref);

/* "docker.io/library/busybox:latest" when there is a tag, else NULL. */
char *crid_image_ref_tagged(const struct crid_image_ref *ref);

/* "docker.io/library/busybox@<digest>" for the given digest (malloc'd). */
char *crid_image_ref_with_digest(const struct crid_image_ref *ref, const char *digest);

/* Whether s is "sha256:" and 64 lowercase hex digits. */
int crid_digest_valid(const char *s);

#endif
