/* The functions of libcurl, libarchive and OpenSSL that crid calls,
 * defined in the crid binary itself: each finds the library's own on its
 * first call (lazylib.h) and forwards to it. Linked into crid only, which
 * therefore has none of these libraries in its DT_NEEDED; the unit tests
 * and fuzzers link the libraries as usual.
 *
 * Every definition repeats the library header's prototype, so the
 * compiler checks it; a function crid starts to use needs a line here. */
#define CURL_DISABLE_TYPECHECK /* curl_easy_setopt & co. are macros otherwise */
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "common/lazylib.h"

/* The library's function name, resolved once. */
#define REAL(lib, name)                                                                                \
	({                                                                                             \
		static __typeof__(&name) _Atomic real_;                                                \
		__typeof__(&name) f_ = atomic_load_explicit(&real_, memory_order_acquire);             \
		if (!f_) {                                                                             \
			f_ = (__typeof__(&name))crid_lazylib_sym(lib, #name);                          \
			atomic_store_explicit(&real_, f_, memory_order_release);                       \
		}                                                                                      \
		f_;                                                                                    \
	})

#define FORWARD(lib, ret, name, params, args) \
	ret name params                       \
	{                                     \
		return REAL(lib, name) args;  \
	}
#define FORWARD_VOID(lib, name, params, args) \
	void name params                      \
	{                                     \
		REAL(lib, name) args;         \
	}

/* libcurl */
#define C CRID_LIB_CURL
FORWARD(C, CURLcode, curl_global_init, (long flags), (flags))
FORWARD_VOID(C, curl_global_cleanup, (void), ())
FORWARD(C, CURL *, curl_easy_init, (void), ())
FORWARD_VOID(C, curl_easy_cleanup, (CURL *h), (h))
FORWARD(C, CURLcode, curl_easy_perform, (CURL *h), (h))
FORWARD(C, const char *, curl_easy_strerror, (CURLcode code), (code))
FORWARD(C, char *, curl_easy_escape, (CURL *h, const char *s, int len), (h, s, len))
FORWARD_VOID(C, curl_free, (void *p), (p))
FORWARD(C, CURLSH *, curl_share_init, (void), ())
FORWARD(C, CURLSHcode, curl_share_cleanup, (CURLSH *sh), (sh))
FORWARD(C, struct curl_slist *, curl_slist_append, (struct curl_slist *list, const char *s), (list, s))
FORWARD_VOID(C, curl_slist_free_all, (struct curl_slist *list), (list))

/* The variadic ones take one argument whose type the option names. */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	CURLcode r;
	va_list ap;

	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		r = REAL(C, curl_easy_setopt)(h, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		r = REAL(C, curl_easy_setopt)(h, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		r = REAL(C, curl_easy_setopt)(h, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		r = REAL(C, curl_easy_setopt)(h, opt, va_arg(ap, curl_off_t));
	else
		r = REAL(C, curl_easy_setopt)(h, opt, va_arg(ap, void *));
	va_end(ap);
	return r;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	CURLcode r;
	va_list ap;

	va_start(ap, info);
	r = REAL(C, curl_easy_getinfo)(h, info, va_arg(ap, void *));
	va_end(ap);
	return r;
}

CURLSHcode curl_share_setopt(CURLSH *sh, CURLSHoption opt, ...)
{
	CURLSHcode r;
	va_list ap;

	va_start(ap, opt);
	switch (opt) {
	case CURLSHOPT_SHARE:
	case CURLSHOPT_UNSHARE:
		r = REAL(C, curl_share_setopt)(sh, opt, va_arg(ap, int));
		break;
	case CURLSHOPT_LOCKFUNC:
	case CURLSHOPT_UNLOCKFUNC:
		r = REAL(C, curl_share_setopt)(sh, opt, va_arg(ap, void (*)(void)));
		break;
	default:
		r = REAL(C, curl_share_setopt)(sh, opt, va_arg(ap, void *));
		break;
	}
	va_end(ap);
	return r;
}
#undef C

/* libarchive */
#define A CRID_LIB_ARCHIVE
FORWARD(A, struct archive *, archive_read_new, (void), ())
FORWARD(A, int, archive_read_free, (struct archive *a), (a))
FORWARD(A, int, archive_read_support_filter_gzip, (struct archive *a), (a))
FORWARD(A, int, archive_read_support_filter_zstd, (struct archive *a), (a))
FORWARD(A, int, archive_read_support_format_empty, (struct archive *a), (a))
FORWARD(A, int, archive_read_support_format_raw, (struct archive *a), (a))
FORWARD(A, int, archive_read_support_format_tar, (struct archive *a), (a))
FORWARD(A, int, archive_read_open,
	(struct archive *a, void *data, archive_open_callback *o, archive_read_callback *r,
	 archive_close_callback *c),
	(a, data, o, r, c))
FORWARD(A, int, archive_read_open_fd, (struct archive *a, int fd, size_t block), (a, fd, block))
FORWARD(A, int, archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e))
FORWARD(A, int, archive_read_data_block,
	(struct archive *a, const void **buf, size_t *size, la_int64_t *off), (a, buf, size, off))
FORWARD(A, int, archive_errno, (struct archive *a), (a))
FORWARD(A, const char *, archive_error_string, (struct archive *a), (a))
FORWARD(A, struct archive *, archive_write_disk_new, (void), ())
FORWARD(A, int, archive_write_disk_set_options, (struct archive *a, int flags), (a, flags))
FORWARD(A, int, archive_write_header, (struct archive *a, struct archive_entry *e), (a, e))
FORWARD(A, la_ssize_t, archive_write_data_block, (struct archive *a, const void *buf, size_t n, la_int64_t off),
	(a, buf, n, off))
FORWARD(A, int, archive_write_finish_entry, (struct archive *a), (a))
FORWARD(A, int, archive_write_close, (struct archive *a), (a))
FORWARD(A, int, archive_write_free, (struct archive *a), (a))
FORWARD(A, time_t, archive_entry_atime, (struct archive_entry *e), (e))
FORWARD(A, int, archive_entry_atime_is_set, (struct archive_entry *e), (e))
FORWARD(A, long, archive_entry_atime_nsec, (struct archive_entry *e), (e))
FORWARD(A, time_t, archive_entry_mtime, (struct archive_entry *e), (e))
FORWARD(A, int, archive_entry_mtime_is_set, (struct archive_entry *e), (e))
FORWARD(A, long, archive_entry_mtime_nsec, (struct archive_entry *e), (e))
FORWARD(A, __LA_MODE_T, archive_entry_filetype, (struct archive_entry *e), (e))
FORWARD(A, la_int64_t, archive_entry_uid, (struct archive_entry *e), (e))
FORWARD(A, la_int64_t, archive_entry_gid, (struct archive_entry *e), (e))
FORWARD(A, const char *, archive_entry_hardlink, (struct archive_entry *e), (e))
FORWARD(A, const char *, archive_entry_pathname, (struct archive_entry *e), (e))
FORWARD(A, int, archive_entry_xattr_reset, (struct archive_entry *e), (e))
FORWARD(A, int, archive_entry_xattr_next,
	(struct archive_entry *e, const char **name, const void **value, size_t *size), (e, name, value, size))

void archive_set_error(struct archive *a, int err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	REAL(A, archive_set_error)(a, err, "%s", msg);
}
#undef A

/* libcrypto */
#define K CRID_LIB_CRYPTO
FORWARD(K, EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())
FORWARD_VOID(K, EVP_MD_CTX_free, (EVP_MD_CTX *ctx), (ctx))
FORWARD(K, const EVP_MD *, EVP_sha256, (void), ())
FORWARD(K, int, EVP_DigestInit_ex, (EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl), (ctx, type, impl))
FORWARD(K, int, EVP_DigestUpdate, (EVP_MD_CTX *ctx, const void *d, size_t n), (ctx, d, n))
FORWARD(K, int, EVP_DigestFinal_ex, (EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s), (ctx, md, s))
FORWARD(K, int, EVP_Digest,
	(const void *data, size_t n, unsigned char *md, unsigned int *size, const EVP_MD *type, ENGINE *impl),
	(data, n, md, size, type, impl))
FORWARD(K, int, EVP_EncodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n))
FORWARD(K, int, EVP_DecodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n))
FORWARD(K, unsigned char *, SHA1, (const unsigned char *d, size_t n, unsigned char *md), (d, n, md))
FORWARD(K, unsigned long, ERR_get_error, (void), ())
FORWARD_VOID(K, ERR_clear_error, (void), ())
FORWARD_VOID(K, ERR_error_string_n, (unsigned long e, char *buf, size_t len), (e, buf, len))
#undef K

/* libssl */
#define S CRID_LIB_SSL
FORWARD(S, const SSL_METHOD *, TLS_server_method, (void), ())
FORWARD(S, SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *m), (m))
FORWARD_VOID(S, SSL_CTX_free, (SSL_CTX *ctx), (ctx))
FORWARD(S, long, SSL_CTX_ctrl, (SSL_CTX *ctx, int cmd, long larg, void *parg), (ctx, cmd, larg, parg))
FORWARD(S, int, SSL_CTX_use_certificate_chain_file, (SSL_CTX *ctx, const char *file), (ctx, file))
FORWARD(S, int, SSL_CTX_use_PrivateKey_file, (SSL_CTX *ctx, const char *file, int type), (ctx, file, type))
FORWARD(S, int, SSL_CTX_check_private_key, (const SSL_CTX *ctx), (ctx))
FORWARD(S, SSL *, SSL_new, (SSL_CTX *ctx), (ctx))
FORWARD_VOID(S, SSL_free, (SSL *s), (s))
FORWARD(S, int, SSL_set_fd, (SSL *s, int fd), (s, fd))
FORWARD(S, int, SSL_accept, (SSL *s), (s))
FORWARD(S, int, SSL_read, (SSL *s, void *buf, int n), (s, buf, n))
FORWARD(S, int, SSL_write, (SSL *s, const void *buf, int n), (s, buf, n))
FORWARD(S, int, SSL_pending, (const SSL *s), (s))
FORWARD(S, int, SSL_get_error, (const SSL *s, int ret), (s, ret))
FORWARD(S, int, SSL_shutdown, (SSL *s), (s))
#undef S
