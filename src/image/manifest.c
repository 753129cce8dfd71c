/* Manifests, indexes and image configs of manifest.h: the OCI image spec
 * (image-spec/manifest.md, image-index.md, config.md) and Docker's image
 * manifest v2 schema 2, which has the same shape. */
#include "image/manifest.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include "common/cleanup.h"
#include "image/reference.h"

#define MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

#define SCHEMA1_REFUSED \
	"Docker schema 1 manifests are no longer supported; push the image again with a current tool"

/* Room for one string from a document in a message. */
#define QUOTE_MAX 160

static const struct {
	const char *media_type;
	enum crid_manifest_kind kind;
} manifest_types[] = {
	{ CRID_MT_OCI_MANIFEST, CRID_MANIFEST_IMAGE },
	{ CRID_MT_DOCKER_MANIFEST, CRID_MANIFEST_IMAGE },
	{ CRID_MT_OCI_INDEX, CRID_MANIFEST_INDEX },
	{ CRID_MT_DOCKER_LIST, CRID_MANIFEST_INDEX },
};

static const struct {
	const char *media_type;
	enum crid_layer_compression compression;
} layer_types[] = {
	{ "application/vnd.oci.image.layer.v1.tar", CRID_LAYER_TAR },
	{ "application/vnd.oci.image.layer.v1.tar+gzip", CRID_LAYER_GZIP },
	{ "application/vnd.oci.image.layer.v1.tar+zstd", CRID_LAYER_ZSTD },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar", CRID_LAYER_TAR },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", CRID_LAYER_GZIP },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", CRID_LAYER_ZSTD },
	{ "application/vnd.docker.image.rootfs.diff.tar.gzip", CRID_LAYER_GZIP },
	{ "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", CRID_LAYER_GZIP },
};

/* s fit for a message: control and non-ASCII bytes as '?', "..." when cut
 * short. Strings from registries end up in the kubelet's logs. */
static const char *printable(char *buf, size_t size, const char *s)
{
	size_t i;

	if (!s)
		s = "(null)";
	for (i = 0; s[i] && i + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	buf[i] = '\0';
	if (s[i] && size >= 4)
		memcpy(buf + size - 4, "...", 4);
	return buf;
}

#define Q(buf, s) printable(buf, sizeof(buf), s)

/* INVALID_ARGUMENT: "invalid <doc>: <why>". */
static int invalid(struct crid_err *err, const char *doc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int invalid(struct crid_err *err, const char *doc, const char *fmt, ...)
{
	char why[CRID_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(why, sizeof(why), fmt, ap) < 0)
		why[0] = '\0';
	va_end(ap);
	return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "invalid %s: %s", doc, why);
}

static int schema1_refused(struct crid_err *err)
{
	return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "%s", SCHEMA1_REFUSED);
}

/* "layers[2].digest" from "layers[2]" and "digest"; just key at the top. */
static const char *field_name(char *buf, size_t size, const char *where, const char *key)
{
	if (snprintf(buf, size, "%s%s%s", where, where[0] ? "." : "", key) < 0)
		buf[0] = '\0';
	return buf;
}

static int load(const char *json, size_t len, const char *doc, json_t **out, struct crid_err *err)
{
	json_error_t jerr;
	json_t *root;

	*out = NULL;
	if (!json || len == 0)
		return invalid(err, doc, "the document is empty");
	/* Duplicate keys would let two readers of one document disagree. */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson says nothing when it could not even start. */
		if (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')
			return crid_err_nomem(err, doc);
		return invalid(err, doc, "not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
			       jerr.column);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return invalid(err, doc, "not a JSON object");
	}
	*out = root;
	return 0;
}

/* obj[key] as a string; *out NULL when absent or null. */
static int opt_string(json_t *obj, const char *key, const char *doc, const char *where, const char **out,
		      struct crid_err *err)
{
	json_t *v = json_object_get(obj, key);
	char f[96];

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return invalid(err, doc, "%s is not a string", field_name(f, sizeof(f), where, key));
	*out = json_string_value(v);
	return 0;
}

static int req_string(json_t *obj, const char *key, const char *doc, const char *where, const char **out,
		      struct crid_err *err)
{
	char f[96];
	int r = opt_string(obj, key, doc, where, out, err);

	if (r < 0)
		return r;
	if (!*out)
		return invalid(err, doc, "%s is missing", field_name(f, sizeof(f), where, key));
	if ((*out)[0] == '\0')
		return invalid(err, doc, "%s is empty", field_name(f, sizeof(f), where, key));
	return 0;
}

static int check_digest(const char *doc, const char *field, const char *digest, struct crid_err *err)
{
	const char *colon = strchr(digest, ':');
	char q[QUOTE_MAX];

	if (crid_digest_valid(digest))
		return 0;
	if (colon && colon != digest && !(colon - digest == 6 && strncasecmp(digest, "sha256", 6) == 0)) {
		char alg[32];

		snprintf(alg, sizeof(alg), "%.*s", (int)(colon - digest), digest);
		return invalid(
			err, doc,
			"%s \"%s\" uses an unsupported digest algorithm \"%s\" (only sha256 is supported)",
			field, Q(q, digest), printable(alg, sizeof(alg), alg));
	}
	return invalid(err, doc, "%s \"%s\" is not \"sha256:\" followed by 64 lowercase hex digits", field,
		       Q(q, digest));
}

static bool is_schema1(const char *media_type)
{
	return strcasecmp(media_type, MT_DOCKER_SCHEMA1) == 0 ||
	       strcasecmp(media_type, MT_DOCKER_SCHEMA1_SIGNED) == 0;
}

/* The manifest or index media type mt names, in its canonical spelling. */
static const char *manifest_type(const char *mt, enum crid_manifest_kind *kind)
{
	for (size_t i = 0; i < CRID_ARRAY_SIZE(manifest_types); i++)
		if (strcasecmp(mt, manifest_types[i].media_type) == 0) {
			if (kind)
				*kind = manifest_types[i].kind;
			return manifest_types[i].media_type;
		}
	return NULL;
}

/* The media type of a Content-Type header: parameters and blanks dropped.
 * Empty when it does not fit. */
static const char *content_media_type(char *buf, size_t size, const char *content_type)
{
	const char *start = content_type, *end;

	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strcspn(start, ";");
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if ((size_t)(end - start) >= size)
		end = start;
	memcpy(buf, start, (size_t)(end - start));
	buf[end - start] = '\0';
	return buf;
}

static int parse_descriptor(json_t *d, const char *doc, const char *where, struct crid_descriptor *out,
			    struct crid_err *err)
{
	_cleanup_(crid_descriptor_free) struct crid_descriptor desc = { 0 };
	const char *media_type, *digest;
	json_t *size;
	char f[96];
	int r;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(d))
		return invalid(err, doc, "%s is %s", where, d ? "not an object" : "missing");
	r = req_string(d, "mediaType", doc, where, &media_type, err);
	if (r < 0)
		return r;
	r = req_string(d, "digest", doc, where, &digest, err);
	if (r < 0)
		return r;
	r = check_digest(doc, field_name(f, sizeof(f), where, "digest"), digest, err);
	if (r < 0)
		return r;
	size = json_object_get(d, "size");
	field_name(f, sizeof(f), where, "size");
	if (!size)
		return invalid(err, doc, "%s is missing", f);
	if (!json_is_integer(size))
		return invalid(err, doc, "%s is not an integer", f);
	if (json_integer_value(size) < 0)
		return invalid(err, doc, "%s is negative (%lld)", f, (long long)json_integer_value(size));
	desc.size = (int64_t)json_integer_value(size);
	desc.media_type = strdup(media_type);
	desc.digest = strdup(digest);
	if (!desc.media_type || !desc.digest)
		return crid_err_nomem(err, "descriptor");
	*out = desc;
	memset(&desc, 0, sizeof(desc));
	return 0;
}

static int parse_layers(json_t *layers, struct crid_manifest *m, struct crid_err *err)
{
	size_t n;

	if (!layers)
		return invalid(err, "manifest", "layers is missing");
	if (!json_is_array(layers))
		return invalid(err, "manifest", "layers is not an array");
	n = json_array_size(layers);
	if (n == 0)
		return 0;
	m->layers = calloc(n, sizeof(*m->layers));
	if (!m->layers)
		return crid_err_nomem(err, "manifest layers");
	for (size_t i = 0; i < n; i++) {
		struct crid_layer_desc *l = &m->layers[i];
		char where[32], q[QUOTE_MAX];
		size_t t;
		int r;

		snprintf(where, sizeof(where), "layers[%zu]", i);
		r = parse_descriptor(json_array_get(layers, i), "manifest", where, &l->desc, err);
		if (r < 0)
			return r;
		m->n_layers++;
		for (t = 0; t < CRID_ARRAY_SIZE(layer_types); t++)
			if (strcmp(l->desc.media_type, layer_types[t].media_type) == 0)
				break;
		if (t == CRID_ARRAY_SIZE(layer_types))
			return invalid(err, "manifest",
				       "layer %zu has the unsupported media type \"%s\" (expected a tar, "
				       "tar+gzip or tar+zstd layer)",
				       i, Q(q, l->desc.media_type));
		l->compression = layer_types[t].compression;
	}
	return 0;
}

int crid_manifest_parse(const char *json, size_t len, const char *content_type, struct crid_manifest *out,
			struct crid_err *err)
{
	_cleanup_(crid_manifest_free) struct crid_manifest m = { 0 };
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *doc_type, *media_type = NULL;
	char ct[128], q[QUOTE_MAX];
	json_t *version, *manifests;
	int r;

	memset(out, 0, sizeof(*out));
	r = load(json, len, "manifest", &root, err);
	if (r < 0)
		return r;

	/* The kind: the document's mediaType, else the Content-Type when it is
	 * one of ours (registries also say application/json), else the shape. */
	r = opt_string(root, "mediaType", "manifest", "", &doc_type, err);
	if (r < 0)
		return r;
	if (doc_type) {
		if (is_schema1(doc_type))
			return schema1_refused(err);
		media_type = manifest_type(doc_type, &m.kind);
		if (!media_type)
			return invalid(err, "manifest", "unsupported media type \"%s\"", Q(q, doc_type));
	} else if (content_type) {
		content_media_type(ct, sizeof(ct), content_type);
		if (is_schema1(ct))
			return schema1_refused(err);
		media_type = manifest_type(ct, &m.kind);
	}

	version = json_object_get(root, "schemaVersion");
	if (json_is_integer(version) && json_integer_value(version) == 1)
		return schema1_refused(err);
	if (!version)
		return invalid(err, "manifest", "schemaVersion is missing");
	if (!json_is_integer(version))
		return invalid(err, "manifest", "schemaVersion is not an integer");
	if (json_integer_value(version) != 2)
		return invalid(err, "manifest", "schemaVersion is %lld, expected 2",
			       (long long)json_integer_value(version));

	manifests = json_object_get(root, "manifests");
	if (!media_type) {
		if (json_is_array(manifests)) {
			m.kind = CRID_MANIFEST_INDEX;
			media_type = CRID_MT_OCI_INDEX;
		} else if (json_object_get(root, "config") && json_object_get(root, "layers")) {
			m.kind = CRID_MANIFEST_IMAGE;
			media_type = CRID_MT_OCI_MANIFEST;
		} else {
			return invalid(
				err, "manifest",
				"no mediaType, and neither a manifests array (an index) nor config and "
				"layers (an image manifest)");
		}
	}
	m.media_type = strdup(media_type);
	if (!m.media_type)
		return crid_err_nomem(err, "manifest");

	if (m.kind == CRID_MANIFEST_INDEX) {
		size_t i;
		json_t *entry;

		if (!manifests)
			return invalid(err, "index", "manifests is missing");
		if (!json_is_array(manifests))
			return invalid(err, "index", "manifests is not an array");
		json_array_foreach(manifests, i, entry)
			if (!json_is_object(entry))
				return invalid(err, "index", "manifests[%zu] is not an object", i);
	} else {
		r = parse_descriptor(json_object_get(root, "config"), "manifest", "config", &m.config, err);
		if (r < 0)
			return r;
		r = parse_layers(json_object_get(root, "layers"), &m, err);
		if (r < 0)
			return r;
	}
	*out = m;
	memset(&m, 0, sizeof(m));
	return 0;
}

void crid_descriptor_free(struct crid_descriptor *d)
{
	free(d->media_type);
	free(d->digest);
	memset(d, 0, sizeof(*d));
}

void crid_manifest_free(struct crid_manifest *m)
{
	free(m->media_type);
	crid_descriptor_free(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		crid_descriptor_free(&m->layers[i].desc);
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

/* The variant an architecture means when none is given: arm64 is v8, arm
 * is v7; amd64 v1 is plain amd64. NULL for no variant. */
static const char *normal_variant(const char *arch, const char *variant)
{
	if (variant && variant[0] == '\0')
		variant = NULL;
	if (strcmp(arch, "arm64") == 0 && !variant)
		return "v8";
	if (strcmp(arch, "arm") == 0 && !variant)
		return "v7";
	if (strcmp(arch, "amd64") == 0 && variant && strcmp(variant, "v1") == 0)
		return NULL;
	return variant;
}

/* How well an index entry fits the wanted platform: 0 not at all, 1 when
 * its variant is only implied, 2 when it is stated (or there is none). */
static int platform_score(const struct crid_platform *want, const char *os, const char *arch,
			  const char *variant)
{
	const char *w, *h;

	if (strcmp(want->os, os) != 0 || strcmp(want->architecture, arch) != 0)
		return 0;
	w = normal_variant(arch, want->variant);
	h = normal_variant(arch, variant);
	if (!w && !h)
		return 2;
	if (!w || !h || strcmp(w, h) != 0)
		return 0;
	return variant && variant[0] ? 2 : 1;
}

struct offers {
	char text[640];
	size_t len;
	bool full;
};

/* Whether item is one of the ", "-separated entries of list. */
static bool listed(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && memcmp(p, item, n) == 0)
			return true;
		p += len;
		p += strspn(p, ", ");
	}
	return false;
}

/* Adds "os/arch[/variant]" to the list the NOT_FOUND message shows. */
static void offers_add(struct offers *o, const char *os, const char *arch, const char *variant)
{
	char a[48], b[48], c[48], item[160];
	bool has_variant = variant && variant[0];
	int n;

	if (o->full)
		return;
	n = snprintf(item, sizeof(item), "%s/%s%s%s", Q(a, os), Q(b, arch), has_variant ? "/" : "",
		     has_variant ? Q(c, variant) : "");
	if (n < 0 || listed(o->text, item))
		return;
	if (o->len + 2 + (size_t)n + sizeof(", ...") > sizeof(o->text)) {
		memcpy(o->text + o->len, ", ...", sizeof(", ..."));
		o->full = true;
		return;
	}
	if (o->len) {
		memcpy(o->text + o->len, ", ", 2);
		o->len += 2;
	}
	memcpy(o->text + o->len, item, (size_t)n + 1);
	o->len += (size_t)n;
}

int crid_manifest_index_select(const char *json, size_t len, const struct crid_platform *platform,
			       struct crid_descriptor *out, struct crid_err *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	struct offers offers = { .len = 0 };
	json_t *manifests, *entry, *best = NULL;
	const char *doc_type;
	size_t i, best_i = 0;
	int best_score = 0;
	char where[32], a[48], b[48], c[48], q[QUOTE_MAX];
	int r;

	memset(out, 0, sizeof(*out));
	if (!platform || !platform->os || !platform->architecture)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "select from index: no platform given");
	r = load(json, len, "index", &root, err);
	if (r < 0)
		return r;
	r = opt_string(root, "mediaType", "index", "", &doc_type, err);
	if (r < 0)
		return r;
	if (doc_type) {
		enum crid_manifest_kind kind = 0;

		if (!manifest_type(doc_type, &kind) || kind != CRID_MANIFEST_INDEX)
			return invalid(err, "index", "mediaType \"%s\" is not an index", Q(q, doc_type));
	}
	manifests = json_object_get(root, "manifests");
	if (!manifests)
		return invalid(err, "index", "manifests is missing");
	if (!json_is_array(manifests))
		return invalid(err, "index", "manifests is not an array");

	json_array_foreach(manifests, i, entry) {
		const char *mt, *os, *arch, *variant;
		enum crid_manifest_kind kind = 0;
		json_t *p;
		int score;

		if (!json_is_object(entry))
			return invalid(err, "index", "manifests[%zu] is not an object", i);
		/* Attestations, signatures, nested indexes: not for running. */
		mt = json_string_value(json_object_get(entry, "mediaType"));
		if (!mt || !manifest_type(mt, &kind) || kind != CRID_MANIFEST_IMAGE)
			continue;
		p = json_object_get(entry, "platform");
		if (!json_is_object(p))
			continue;
		os = json_string_value(json_object_get(p, "os"));
		arch = json_string_value(json_object_get(p, "architecture"));
		variant = json_string_value(json_object_get(p, "variant"));
		if (!os || !arch || (strcmp(os, "unknown") == 0 && strcmp(arch, "unknown") == 0))
			continue;
		offers_add(&offers, os, arch, variant);
		score = platform_score(platform, os, arch, variant);
		if (score > best_score) {
			best = entry;
			best_i = i;
			best_score = score;
		}
	}
	if (!best)
		return crid_err_set(err, CRID_NOT_FOUND, 0, "no manifest for %s/%s%s%s in the index (%s%s)",
				    Q(a, platform->os), Q(b, platform->architecture),
				    platform->variant && platform->variant[0] ? "/" : "",
				    platform->variant && platform->variant[0] ? Q(c, platform->variant) : "",
				    offers.len ? "it offers " : "it lists no platform-specific manifests",
				    offers.text);
	snprintf(where, sizeof(where), "manifests[%zu]", best_i);
	return parse_descriptor(best, "index", where, out, err);
}

/* What this binary was built for, for a machine name uname() reports that
 * the table below does not know. */
#if defined(__x86_64__)
#define BUILD_ARCH "amd64"
#define BUILD_VARIANT NULL
#elif defined(__aarch64__)
#define BUILD_ARCH "arm64"
#define BUILD_VARIANT "v8"
#elif defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7
#define BUILD_ARCH "arm"
#define BUILD_VARIANT "v7"
#elif defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH == 6
#define BUILD_ARCH "arm"
#define BUILD_VARIANT "v6"
#elif defined(__arm__)
#define BUILD_ARCH "arm"
#define BUILD_VARIANT "v5"
#elif defined(__i386__)
#define BUILD_ARCH "386"
#define BUILD_VARIANT NULL
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BUILD_ARCH "ppc64le"
#define BUILD_VARIANT NULL
#elif defined(__s390x__)
#define BUILD_ARCH "s390x"
#define BUILD_VARIANT NULL
#elif defined(__riscv) && __riscv_xlen == 64
#define BUILD_ARCH "riscv64"
#define BUILD_VARIANT NULL
#else
#define BUILD_ARCH "unknown"
#define BUILD_VARIANT NULL
#endif

void crid_platform_host(struct crid_platform *out)
{
	/* uname's machine names and the GOARCH names images use. */
	static const struct {
		const char *machine, *arch, *variant;
	} machines[] = {
		{ "x86_64", "amd64", NULL },	{ "amd64", "amd64", NULL },
		{ "aarch64", "arm64", "v8" },	{ "arm64", "arm64", "v8" },
		{ "armv8l", "arm", "v7" },	{ "armv7l", "arm", "v7" },
		{ "armv7", "arm", "v7" },	{ "armv6l", "arm", "v6" },
		{ "armv5tel", "arm", "v5" },	{ "armv5tejl", "arm", "v5" },
		{ "armv5l", "arm", "v5" },	{ "i386", "386", NULL },
		{ "i486", "386", NULL },	{ "i586", "386", NULL },
		{ "i686", "386", NULL },	{ "ppc64le", "ppc64le", NULL },
		{ "ppc64", "ppc64", NULL },	{ "s390x", "s390x", NULL },
		{ "riscv64", "riscv64", NULL }, { "loongarch64", "loong64", NULL },
	};
	struct utsname u;

	out->os = (char *)"linux";
	out->architecture = (char *)BUILD_ARCH;
	out->variant = (char *)BUILD_VARIANT;
	if (uname(&u) < 0)
		return;
	for (size_t i = 0; i < CRID_ARRAY_SIZE(machines); i++)
		if (strcmp(u.machine, machines[i].machine) == 0) {
			out->architecture = (char *)machines[i].arch;
			out->variant = (char *)machines[i].variant;
			return;
		}
}

static int parse_diff_ids(json_t *rootfs, struct crid_image_config *c, struct crid_err *err)
{
	json_t *diff_ids = json_object_get(rootfs, "diff_ids");
	size_t n;

	/* Docker omits an empty list. */
	if (!diff_ids || json_is_null(diff_ids))
		return 0;
	if (!json_is_array(diff_ids))
		return invalid(err, "image config", "rootfs.diff_ids is not an array");
	n = json_array_size(diff_ids);
	if (n == 0)
		return 0;
	c->diff_ids = calloc(n, sizeof(*c->diff_ids));
	if (!c->diff_ids)
		return crid_err_nomem(err, "image config diff IDs");
	for (size_t i = 0; i < n; i++) {
		const char *id = json_string_value(json_array_get(diff_ids, i));
		char f[48];
		int r;

		snprintf(f, sizeof(f), "rootfs.diff_ids[%zu]", i);
		if (!id)
			return invalid(err, "image config", "%s is not a string", f);
		r = check_digest("image config", f, id, err);
		if (r < 0)
			return r;
		c->diff_ids[i] = strdup(id);
		if (!c->diff_ids[i])
			return crid_err_nomem(err, "image config diff IDs");
		c->n_diff_ids++;
	}
	return 0;
}

static int dup_or_empty(char **field, const char *value, struct crid_err *err)
{
	*field = strdup(value ? value : "");
	return *field ? 0 : crid_err_nomem(err, "image config");
}

int crid_image_config_parse(const char *json, size_t len, struct crid_image_config *out, struct crid_err *err)
{
	_cleanup_(crid_image_config_free) struct crid_image_config c = { 0 };
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *type, *user = NULL, *os, *arch;
	json_t *rootfs, *config;
	char q[QUOTE_MAX];
	int r;

	memset(out, 0, sizeof(*out));
	r = load(json, len, "image config", &root, err);
	if (r < 0)
		return r;
	rootfs = json_object_get(root, "rootfs");
	if (!rootfs)
		return invalid(err, "image config", "rootfs is missing");
	if (!json_is_object(rootfs))
		return invalid(err, "image config", "rootfs is not an object");
	r = req_string(rootfs, "type", "image config", "rootfs", &type, err);
	if (r < 0)
		return r;
	if (strcmp(type, "layers") != 0)
		return invalid(err, "image config", "rootfs.type is \"%s\", expected \"layers\"", Q(q, type));
	r = parse_diff_ids(rootfs, &c, err);
	if (r < 0)
		return r;

	config = json_object_get(root, "config");
	if (config && !json_is_null(config)) {
		if (!json_is_object(config))
			return invalid(err, "image config", "config is not an object");
		r = opt_string(config, "User", "image config", "config", &user, err);
		if (r < 0)
			return r;
	}
	/* Required by the spec, but nothing here depends on them. */
	r = opt_string(root, "os", "image config", "", &os, err);
	if (r < 0)
		return r;
	r = opt_string(root, "architecture", "image config", "", &arch, err);
	if (r < 0)
		return r;
	if ((r = dup_or_empty(&c.user, user, err)) < 0 || (r = dup_or_empty(&c.os, os, err)) < 0 ||
	    (r = dup_or_empty(&c.architecture, arch, err)) < 0)
		return r;
	*out = c;
	memset(&c, 0, sizeof(c));
	return 0;
}

void crid_image_config_free(struct crid_image_config *c)
{
	for (size_t i = 0; i < c->n_diff_ids; i++)
		free(c->diff_ids[i]);
	free(c->diff_ids);
	free(c->user);
	free(c->os);
	free(c->architecture);
	memset(c, 0, sizeof(*c));
}

static int chain_ids_fill(char *const *diff_ids, size_t n, char **out, struct crid_err *err)
{
	static const char hex[] = "0123456789abcdef";
	char q[QUOTE_MAX];

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *input = NULL;
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int md_len = 0;
		char *id;

		if (!crid_digest_valid(diff_ids[i]))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "chain IDs: diff ID %zu \"%s\" is not \"sha256:\" followed by 64 "
					    "lowercase hex digits",
					    i, Q(q, diff_ids[i]));
		if (i == 0) {
			out[0] = strdup(diff_ids[0]);
			if (!out[0])
				return crid_err_nomem(err, "chain IDs");
			continue;
		}
		if (asprintf(&input, "%s %s", out[i - 1], diff_ids[i]) < 0) {
			input = NULL;
			return crid_err_nomem(err, "chain IDs");
		}
		if (!EVP_Digest(input, strlen(input), md, &md_len, EVP_sha256(), NULL) || md_len != 32)
			return crid_err_set(err, CRID_INTERNAL, 0, "chain IDs: sha256 of layer %zu failed",
					    i);
		id = malloc(sizeof("sha256:") + 2 * 32);
		if (!id)
			return crid_err_nomem(err, "chain IDs");
		memcpy(id, "sha256:", strlen("sha256:"));
		for (unsigned int k = 0; k < md_len; k++) {
			id[strlen("sha256:") + 2 * k] = hex[md[k] >> 4];
			id[strlen("sha256:") + 2 * k + 1] = hex[md[k] & 0xf];
		}
		id[strlen("sha256:") + 2 * md_len] = '\0';
		out[i] = id;
	}
	return 0;
}

int crid_chain_ids(char *const *diff_ids, size_t n, char **out, struct crid_err *err)
{
	int r;

	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	r = chain_ids_fill(diff_ids, n, out, err);
	if (r < 0)
		for (size_t i = 0; i < n; i++) {
			free(out[i]);
			out[i] = NULL;
		}
	return r;
}
