/* Image references of reference.h: the grammar of distribution/reference
 * (github.com/distribution/reference) and Docker's normalisation, with one
 * restriction: sha256 is the only digest algorithm accepted.
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path
 *   domain     := ( domain-name | "[" ipv6 "]" ) [ ":" port ]
 *   path       := component ( "/" component )*
 *   component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
 *   digest     := "sha256:" [a-f0-9]{64}
 */
#include "image/reference.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DEFAULT_DOMAIN "index.docker.io"
#define OFFICIAL_REPO_PREFIX "library/"
#define NAME_TOTAL_LENGTH_MAX 255
#define TAG_LENGTH_MAX 128
#define SHA256_PREFIX "sha256:"
#define SHA256_HEX_LEN 64

/* How much of a rejected reference its error message repeats. */
#define QUOTE_INPUT_MAX 300

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_lower_alnum(char c)
{
	return is_lower(c) || is_digit(c);
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || is_upper(c);
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return true;
}

/* Characters that may appear anywhere in a reference; everything else is
 * refused before the grammar is looked at, so messages can name it. */
static bool is_ref_char(char c)
{
	return is_alnum(c) || strchr("._-/:@[]", c) != NULL;
}

/* s as it may appear between double quotes in a message: printable ASCII as
 * is, '"' and '\' escaped, other bytes as \xNN, and "..." when cut short. */
static const char *quote(char *buf, size_t size, const char *s)
{
	size_t o = 0, i;

	for (i = 0; i < QUOTE_INPUT_MAX && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		int n;

		if (c == '"' || c == '\\')
			n = snprintf(buf + o, size - o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			n = snprintf(buf + o, size - o, "\\x%02x", c);
		else
			n = snprintf(buf + o, size - o, "%c", c);
		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
	if (s[i] && o + 4 <= size)
		memcpy(buf + o, "...", 4);
	else
		buf[o] = '\0';
	return buf;
}

/* INVALID_ARGUMENT: invalid image reference "<s>": <why>. */
static int bad(struct crid_err *err, const char *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct crid_err *err, const char *s, const char *fmt, ...)
{
	char q[QUOTE_INPUT_MAX * 4 + 4];
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(why, sizeof(why), fmt, ap) < 0)
		why[0] = '\0';
	va_end(ap);
	return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "invalid image reference \"%s\": %s",
			    quote(q, sizeof(q), s), why);
}

int crid_digest_valid(const char *s)
{
	if (!s || strncmp(s, SHA256_PREFIX, strlen(SHA256_PREFIX)) != 0)
		return 0;
	s += strlen(SHA256_PREFIX);
	return strlen(s) == SHA256_HEX_LEN && is_lower_hex(s, SHA256_HEX_LEN);
}

static int check_digest(const char *s, const char *digest, struct crid_err *err)
{
	size_t alg_len = strcspn(digest, ":");
	bool alg_ok = alg_len > 0 && digest[alg_len] == ':' && !is_digit(digest[0]) &&
		      strchr("._-", digest[0]) == NULL;

	if (crid_digest_valid(digest))
		return 0;
	/* A well-formed algorithm other than sha256 ("sha512", "blake3") is
	 * refused as such; anything else is just malformed. */
	for (size_t i = 0; i < alg_len && alg_ok; i++)
		alg_ok = is_alnum(digest[i]) || strchr("._-", digest[i]) != NULL;
	if (alg_ok && !(alg_len == strlen("sha256") && strncasecmp(digest, "sha256", alg_len) == 0))
		return bad(err, s, "unsupported digest algorithm \"%.*s\" (only sha256 is supported)",
			   (int)alg_len, digest);
	return bad(err, s, "digest \"%s\" is not \"sha256:\" followed by 64 lowercase hex digits", digest);
}

static int check_tag(const char *s, const char *tag, struct crid_err *err)
{
	size_t n = strlen(tag);

	if (n == 0)
		return bad(err, s, "nothing after ':' (expected a tag)");
	if (n > TAG_LENGTH_MAX)
		return bad(err, s, "tag is %zu characters long, more than %d", n, TAG_LENGTH_MAX);
	if (!is_alnum(tag[0]) && tag[0] != '_')
		return bad(err, s, "tag \"%s\" must start with a letter, a digit or '_'", tag);
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(tag[i]) && !strchr("_.-", tag[i]))
			return bad(err, s, "tag \"%s\" may hold only letters, digits, '_', '.' and '-'", tag);
	return 0;
}

/* host[:port] where host is a domain name or a bracketed IPv6 address. */
static bool domain_valid(const char *d)
{
	const char *p = d;

	if (*p == '[') {
		const char *end = strchr(p, ']');

		if (!end || end == p + 1 || !memchr(p, ':', (size_t)(end - p)))
			return false;
		for (p++; p < end; p++)
			if (!is_hex(*p) && *p != ':')
				return false;
		p++;
	} else {
		for (;;) {
			if (!is_alnum(*p))
				return false;
			while (is_alnum(*p) || *p == '-')
				p++;
			if (p[-1] == '-')
				return false;
			if (*p != '.')
				break;
			p++;
		}
	}
	if (*p == ':') {
		unsigned long port = 0;
		size_t digits = 0;

		for (p++; is_digit(*p) && digits < 6; p++, digits++)
			port = port * 10 + (unsigned long)(*p - '0');
		if (digits == 0 || port == 0 || port > 65535)
			return false;
	}
	return *p == '\0';
}

/* One path component of n bytes. */
static bool component_valid(const char *c, size_t n)
{
	size_t i = 0;

	for (;;) {
		if (i >= n || !is_lower_alnum(c[i]))
			return false;
		while (i < n && is_lower_alnum(c[i]))
			i++;
		if (i == n)
			return true;
		if (c[i] == '.')
			i++;
		else if (c[i] == '_')
			i += (i + 1 < n && c[i + 1] == '_') ? 2 : 1;
		else if (c[i] == '-')
			while (i < n && c[i] == '-')
				i++;
		else
			return false;
	}
}

static int check_path(const char *s, const char *path, struct crid_err *err)
{
	const char *c = path;

	for (const char *p = path; *p; p++)
		if (is_upper(*p))
			return bad(err, s, "repository name must be lowercase");
	for (;;) {
		size_t n = strcspn(c, "/");

		if (n == 0)
			return bad(err, s, "empty path component (\"//\", or '/' at the start or end)");
		if (!component_valid(c, n))
			return bad(err, s,
				   "path component \"%.*s\" is not valid (lowercase letters and digits, "
				   "separated by '.', '_', '__' or '-')",
				   (int)n, c);
		if (c[n] == '\0')
			return 0;
		c += n + 1;
	}
}

/* Whether the first component of a name is a registry host rather than the
 * start of a Docker Hub path: Docker's rule. */
static bool is_domain(const char *first, size_t n)
{
	if (memchr(first, '.', n) || memchr(first, ':', n))
		return true;
	if (n == strlen("localhost") && memcmp(first, "localhost", n) == 0)
		return true;
	/* Docker Hub paths are lowercase; "Registry/app" names a host. */
	for (size_t i = 0; i < n; i++)
		if (is_upper(first[i]))
			return true;
	return false;
}

int crid_image_ref_parse(const char *s, struct crid_image_ref *out, struct crid_err *err)
{
	_cleanup_(crid_image_ref_free) struct crid_image_ref ref = { 0 };
	_cleanup_free_ char *copy = NULL;
	const char *domain = DEFAULT_DOMAIN;
	char *name, *at, *slash, *colon, *tag = NULL, *digest = NULL, *path;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	if (!s)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "no image reference given");
	if (s[0] == '\0')
		return bad(err, s, "it is empty");
	for (const char *p = s; *p; p++) {
		if (strchr(" \t\n\v\f\r", *p))
			return bad(err, s, "it contains whitespace");
		if (!is_ref_char(*p)) {
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				return bad(err, s, "byte 0x%02x is not allowed", (unsigned char)*p);
			return bad(err, s, "character '%c' is not allowed", *p);
		}
	}
	if (strstr(s, "://"))
		return bad(err, s, "a reference names a registry host, not a URL (remove the \"%.*s://\")",
			   (int)(strstr(s, "://") - s), s);
	if (strlen(s) == SHA256_HEX_LEN && is_lower_hex(s, SHA256_HEX_LEN))
		return bad(err, s, "a 64-character hexadecimal string is an image ID, not a repository name");

	copy = strdup(s);
	if (!copy)
		return crid_err_nomem(err, "image reference");
	name = copy;

	at = strchr(name, '@');
	if (at) {
		*at = '\0';
		digest = at + 1;
		if (digest[0] == '\0')
			return bad(err, s,
				   "nothing after '@' (expected a digest such as sha256:<64 hex digits>)");
		r = check_digest(s, digest, err);
		if (r < 0)
			return r;
	}

	/* A ':' after the last '/' starts the tag; one before it is a port. */
	slash = strrchr(name, '/');
	colon = strrchr(slash ? slash : name, ':');
	if (colon) {
		*colon = '\0';
		tag = colon + 1;
		r = check_tag(s, tag, err);
		if (r < 0)
			return r;
	}

	if (name[0] == '\0')
		return bad(err, s, "no repository name");
	if (name[0] == '/')
		return bad(err, s, "it starts with '/'");

	slash = strchr(name, '/');
	if (slash && is_domain(name, (size_t)(slash - name))) {
		*slash = '\0';
		domain = name;
		path = slash + 1;
		if (!domain_valid(domain))
			return bad(err, s, "registry host \"%s\" is not valid", domain);
		if (strcmp(domain, LEGACY_DEFAULT_DOMAIN) == 0)
			domain = DEFAULT_DOMAIN;
	} else {
		path = name;
	}
	if (path[0] == '\0')
		return bad(err, s, "no repository path after the registry host");
	r = check_path(s, path, err);
	if (r < 0)
		return r;

	ref.domain = strdup(domain);
	if (!ref.domain)
		return crid_err_nomem(err, "image reference");
	if (strcmp(domain, DEFAULT_DOMAIN) == 0 && !strchr(path, '/')) {
		if (asprintf(&ref.path, OFFICIAL_REPO_PREFIX "%s", path) < 0) {
			ref.path = NULL;
			return crid_err_nomem(err, "image reference");
		}
	} else {
		ref.path = strdup(path);
		if (!ref.path)
			return crid_err_nomem(err, "image reference");
	}
	len = strlen(ref.domain) + 1 + strlen(ref.path);
	if (len > NAME_TOTAL_LENGTH_MAX)
		return bad(err, s, "repository name is %zu characters long, more than %d", len,
			   NAME_TOTAL_LENGTH_MAX);

	if (tag || !digest) {
		ref.tag = strdup(tag ? tag : "latest");
		if (!ref.tag)
			return crid_err_nomem(err, "image reference");
	}
	if (digest) {
		ref.digest = strdup(digest);
		if (!ref.digest)
			return crid_err_nomem(err, "image reference");
	}
	*out = ref;
	memset(&ref, 0, sizeof(ref));
	return 0;
}

void crid_image_ref_free(struct crid_image_ref *ref)
{
	free(ref->domain);
	free(ref->path);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof(*ref));
}

/* asprintf that returns the string, NULL on out of memory. */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

char *crid_image_ref_repository(const struct crid_image_ref *ref)
{
	return format("%s/%s", ref->domain, ref->path);
}

/* With both a tag and a digest, the digest names the image and the tag
 * is dropped, as containerd's ParseDockerRef does: the string is a lookup
 * key, and "name:tag" could find an image other than the digest's. */
char *crid_image_ref_string(const struct crid_image_ref *ref)
{
	if (ref->digest)
		return format("%s/%s@%s", ref->domain, ref->path, ref->digest);
	return format("%s/%s:%s", ref->domain, ref->path, ref->tag ? ref->tag : "latest");
}

char *crid_image_ref_tagged(const struct crid_image_ref *ref)
{
	if (!ref->tag)
		return NULL;
	return format("%s/%s:%s", ref->domain, ref->path, ref->tag);
}

char *crid_image_ref_with_digest(const struct crid_image_ref *ref, const char *digest)
{
	return format("%s/%s@%s", ref->domain, ref->path, digest);
}
