/* The registry client: the OCI Distribution API over HTTP(S) with libcurl,
 * one per pull. It tries the configured mirrors, then the registry itself
 * (unless the mirrors replace it), answers auth challenges (bearer tokens,
 * basic auth), follows redirects to blob storage, retries what can be
 * retried, and verifies every byte against its digest. Never writes to
 * disk itself. */
#ifndef CRID_IMAGE_REGISTRY_H
#define CRID_IMAGE_REGISTRY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "config/config.h"

/* Credentials from PullImageRequest.auth; any field may be NULL. */
struct crid_registry_auth {
	const char *username;
	const char *password;
	const char *identity_token; /* an OAuth2 refresh token */
	const char *registry_token; /* a bearer token to send as it is */
};

struct crid_registry_options {
	const struct crid_config *cfg;
	const char *domain; /* as in the image name: "docker.io", "localhost:5000" */
	const struct crid_registry_auth *auth;
	const atomic_bool *stop;   /* set on shutdown: transfers abort */
	const atomic_bool *cancel; /* set when nobody waits for the pull any more; may be NULL */
};

struct crid_registry;

int crid_registry_new(struct crid_registry **out, const struct crid_registry_options *o, struct crid_err *err);
void crid_registry_free(struct crid_registry *r);

/* Fetches the manifest repo:reference (a tag or a digest). *body is
 * malloc'd and NUL-terminated; *content_type may be NULL; *digest is the
 * sha256 of the body. When reference is a digest, the body must match it. */
int crid_registry_get_manifest(struct crid_registry *r, const char *repo, const char *reference, char **body,
			       size_t *len, char **content_type, char **digest, struct crid_err *err);

/* Receives a blob's bytes in order, each exactly once, across retries. */
typedef int (*crid_blob_sink)(void *data, const void *buf, size_t len, struct crid_err *err);

/* Streams the blob repo@digest into sink. size is the manifest's (a blob
 * of another size is refused). Fails with DATA_LOSS when the bytes do not
 * match the digest; the sink must then discard what it got. */
int crid_registry_get_blob(struct crid_registry *r, const char *repo, const char *digest, int64_t size,
			   crid_blob_sink sink, void *data, struct crid_err *err);

/* libcurl's global state: loaded and set up by the first crid_registry_new
 * (an idle daemon never maps libcurl), released at exit. */
int crid_registry_global_init(struct crid_err *err);
void crid_registry_global_cleanup(void);

#endif
