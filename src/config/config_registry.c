/* Image pulling settings that are lists: pinned images and per-registry
 * entries with their mirrors. Their checks, the entries' life, lookup and
 * JSON; the YAML reader and flag parser fill them through these functions. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "config/config_internal.h"

/* Whitespace would split a reference or URL wherever one is written out
 * (logs, HTTP request lines); control characters have no place either. */
static bool has_space_or_control(const char *s)
{
	for (; *s; s++)
		if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
			return true;
	return false;
}

/* What is wrong with host[:port] ("registry.local:5000", "[::1]:5000"), the
 * first len bytes of a; NULL when nothing is. */
static const char *authority_problem(const char *a, size_t len)
{
	const char *end = a + len, *host_end, *port = NULL;
	unsigned long n = 0;

	if (len > 0 && a[0] == '[') {
		host_end = memchr(a, ']', len);
		if (!host_end)
			return "unclosed '['";
		if (host_end == a + 1)
			return "no host name";
		host_end++;
		if (host_end < end && *host_end != ':')
			return "only a port may follow ']'";
	} else {
		host_end = memchr(a, ':', len);
		if (!host_end)
			host_end = end;
		if (host_end == a)
			return "no host name";
	}
	if (host_end < end)
		port = host_end + 1;
	if (!port)
		return NULL;
	if (port == end || end - port > 5)
		return "port is not a number from 1 to 65535";
	for (const char *p = port; p < end; p++) {
		if (*p < '0' || *p > '9')
			return "port is not a number from 1 to 65535";
		n = n * 10 + (unsigned long)(*p - '0');
	}
	if (n < 1 || n > 65535)
		return "port is not a number from 1 to 65535";
	return NULL;
}

int crid_config_check_image_ref(const char *ref, struct crid_err *err)
{
	if (ref[0] == '\0')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "image reference is empty");
	if (has_space_or_control(ref))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "\"%s\" is not an image reference (holds whitespace or control "
				    "characters)",
				    ref);
	return 0;
}

int crid_config_check_registry_host(const char *host, struct crid_err *err)
{
	const char *problem;

	if (host[0] == '\0')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "registry host is empty");
	if (has_space_or_control(host))
		problem = "holds whitespace or control characters";
	else if (strstr(host, "://"))
		problem = "write it without a scheme, as in image names";
	else if (strchr(host, '/'))
		problem = "holds a '/'; write only host[:port]";
	else
		problem = authority_problem(host, strlen(host));
	if (problem)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not a registry host (%s)",
				    host, problem);
	return 0;
}

int crid_config_check_mirror_url(const char *url, struct crid_err *err)
{
	const char *problem = NULL, *authority, *end;

	if (url[0] == '\0')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "mirror url is empty");
	if (strncmp(url, "https://", 8) == 0)
		authority = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		authority = url + 7;
	else
		authority = NULL;
	end = authority ? strchrnul(authority, '/') : NULL;
	if (has_space_or_control(url))
		problem = "holds whitespace or control characters";
	else if (!authority)
		problem = "needs http:// or https://";
	else if (strpbrk(url, "?#"))
		problem = "no query or fragment allowed";
	/* Credentials would show in logs and in the Status verbose info. */
	else if (memchr(authority, '@', (size_t)(end - authority)))
		problem = "credentials do not belong in the URL";
	else
		problem = authority_problem(authority, (size_t)(end - authority));
	if (problem)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not a mirror URL (%s)",
				    url, problem);
	return 0;
}

int crid_config_check_ca_file(const char *path, struct crid_err *err)
{
	if (path[0] != '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "\"%s\" is not an absolute path",
				    path);
	return 0;
}

int crid_config_pin_image(struct crid_config *cfg, const char *ref, struct crid_err *err)
{
	_cleanup_free_ char *copy = NULL;
	char **grown;
	int r;

	r = crid_config_check_image_ref(ref, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < cfg->n_pinned_images; i++)
		if (strcmp(cfg->pinned_images[i], ref) == 0)
			return 0;
	copy = strdup(ref);
	if (!copy)
		return crid_err_nomem(err, "pinned image");
	grown = reallocarray(cfg->pinned_images, cfg->n_pinned_images + 1, sizeof(*grown));
	if (!grown)
		return crid_err_nomem(err, "pinned images");
	cfg->pinned_images = grown;
	grown[cfg->n_pinned_images++] = take_ptr(&copy);
	return 0;
}

static struct crid_registry_config *find_registry(const struct crid_config *cfg, const char *host)
{
	for (size_t i = 0; i < cfg->n_registries; i++)
		if (strcasecmp(cfg->registries[i].host, host) == 0)
			return &cfg->registries[i];
	return NULL;
}

const struct crid_registry_config *crid_config_find_registry(const struct crid_config *cfg,
							      const char *host)
{
	return host ? find_registry(cfg, host) : NULL;
}

int crid_config_registry_get(struct crid_config *cfg, const char *host,
			     struct crid_registry_config **out, struct crid_err *err)
{
	_cleanup_free_ char *copy = NULL;
	struct crid_registry_config *grown;
	int r;

	r = crid_config_check_registry_host(host, err);
	if (r < 0)
		return r;
	*out = find_registry(cfg, host);
	if (*out)
		return 0;
	copy = strdup(host);
	if (!copy)
		return crid_err_nomem(err, "registry host");
	grown = reallocarray(cfg->registries, cfg->n_registries + 1, sizeof(*grown));
	if (!grown)
		return crid_err_nomem(err, "registries");
	cfg->registries = grown;
	*out = &grown[cfg->n_registries++];
	**out = (struct crid_registry_config){ .host = take_ptr(&copy) };
	return 0;
}

int crid_config_registry_set_ca(struct crid_registry_config *reg, const char *path,
				struct crid_err *err)
{
	char *copy;
	int r;

	r = crid_config_check_ca_file(path, err);
	if (r < 0)
		return r;
	copy = strdup(path);
	if (!copy)
		return crid_err_nomem(err, "registry ca_file");
	free(reg->ca_file);
	reg->ca_file = copy;
	return 0;
}

int crid_config_mirror_add(struct crid_registry_mirror **mirrors, size_t *n, const char *url,
			   const char *ca_file, struct crid_err *err)
{
	_cleanup_free_ char *url_copy = NULL;
	_cleanup_free_ char *ca_copy = NULL;
	struct crid_registry_mirror *grown;
	int r;

	r = crid_config_check_mirror_url(url, err);
	if (r < 0)
		return r;
	if (ca_file) {
		r = crid_config_check_ca_file(ca_file, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*mirrors)[i].url, url) == 0)
			return 0;
	url_copy = strdup(url);
	if (!url_copy || (ca_file && !(ca_copy = strdup(ca_file))))
		return crid_err_nomem(err, "registry mirror");
	grown = reallocarray(*mirrors, *n + 1, sizeof(*grown));
	if (!grown)
		return crid_err_nomem(err, "registry mirrors");
	*mirrors = grown;
	grown[*n].url = take_ptr(&url_copy);
	grown[*n].ca_file = take_ptr(&ca_copy);
	(*n)++;
	return 0;
}

void crid_config_mirrors_free(struct crid_registry_mirror *mirrors, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(mirrors[i].url);
		free(mirrors[i].ca_file);
	}
	free(mirrors);
}

void crid_config_registries_free(struct crid_config *cfg)
{
	for (size_t i = 0; i < cfg->n_pinned_images; i++)
		free(cfg->pinned_images[i]);
	free(cfg->pinned_images);
	cfg->pinned_images = NULL;
	cfg->n_pinned_images = 0;
	for (size_t i = 0; i < cfg->n_registries; i++) {
		struct crid_registry_config *reg = &cfg->registries[i];

		free(reg->host);
		free(reg->ca_file);
		crid_config_mirrors_free(reg->mirrors, reg->n_mirrors);
	}
	free(cfg->registries);
	cfg->registries = NULL;
	cfg->n_registries = 0;
}

static json_t *registry_to_json(const struct crid_registry_config *reg)
{
	_cleanup_(json_decrefp) json_t *o = NULL;
	json_t *mirrors;

	o = json_pack("{s:s, s:b, s:s?, s:b}", "host", reg->host, "insecure", reg->insecure,
		      "ca_file", reg->ca_file, "mirrors_only", reg->mirrors_only);
	if (!o)
		return NULL;
	mirrors = json_array();
	if (json_object_set_new(o, "mirrors", mirrors) < 0)
		return NULL;
	for (size_t i = 0; i < reg->n_mirrors; i++)
		if (json_array_append_new(mirrors, json_pack("{s:s, s:s?}", "url", reg->mirrors[i].url,
							     "ca_file", reg->mirrors[i].ca_file)) < 0)
			return NULL;
	return take_ptr(&o);
}

int crid_config_registries_to_json(const struct crid_config *cfg, json_t *o)
{
	json_t *pinned = json_array(), *registries;

	if (json_object_set_new(o, "pinned_images", pinned) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_pinned_images; i++)
		if (json_array_append_new(pinned, json_string(cfg->pinned_images[i])) < 0)
			return -ENOMEM;
	registries = json_array();
	if (json_object_set_new(o, "registries", registries) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_registries; i++)
		if (json_array_append_new(registries, registry_to_json(&cfg->registries[i])) < 0)
			return -ENOMEM;
	return 0;
}
