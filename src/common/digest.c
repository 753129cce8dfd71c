/* sha256 digests (digest.h) with OpenSSL's EVP interface. */
#include "common/digest.h"

#include <errno.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lazylib.h"

struct crid_sha256 {
	EVP_MD_CTX *ctx;
};

int crid_sha256_new(struct crid_sha256 **out, struct crid_err *err)
{
	struct crid_sha256 *h = calloc(1, sizeof(*h));

	if (!h)
		return crid_err_nomem(err, "sha256 context");
	if (crid_lazylib_load(CRID_LIB_CRYPTO, err) < 0) {
		free(h);
		return -ENOENT;
	}
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		crid_sha256_free(h);
		return crid_err_set(err, CRID_INTERNAL, 0, "set up sha256");
	}
	*out = h;
	return 0;
}

void crid_sha256_update(struct crid_sha256 *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->ctx, data, len);
}

void crid_sha256_final(struct crid_sha256 *h, char out[CRID_DIGEST_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(h->ctx, md, &n);
	memcpy(out, "sha256:", 7);
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	out[CRID_DIGEST_LEN] = '\0';
}

void crid_sha256_free(struct crid_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int crid_sha256_digest(const void *data, size_t len, char out[CRID_DIGEST_LEN + 1], struct crid_err *err)
{
	struct crid_sha256 *h;
	int r = crid_sha256_new(&h, err);

	if (r < 0)
		return r;
	crid_sha256_update(h, data, len);
	crid_sha256_final(h, out);
	crid_sha256_free(h);
	return 0;
}
