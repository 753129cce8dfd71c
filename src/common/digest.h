/* sha256 content digests in the OCI form "sha256:<64 hex>". */
#ifndef CRID_COMMON_DIGEST_H
#define CRID_COMMON_DIGEST_H

#include <stddef.h>

#include "common/error.h"

#define CRID_DIGEST_LEN (7 + 64) /* "sha256:" + hex, without the NUL */

struct crid_sha256;

int crid_sha256_new(struct crid_sha256 **out, struct crid_err *err);
void crid_sha256_update(struct crid_sha256 *h, const void *data, size_t len);
/* Writes "sha256:<hex>" and a NUL to out. */
void crid_sha256_final(struct crid_sha256 *h, char out[CRID_DIGEST_LEN + 1]);
void crid_sha256_free(struct crid_sha256 *h);

/* One-shot: the digest of data. */
int crid_sha256_digest(const void *data, size_t len, char out[CRID_DIGEST_LEN + 1], struct crid_err *err);

#endif
