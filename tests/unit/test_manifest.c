/* Unit tests of src/image/manifest.c: manifests and indexes as registries
 * serve them, platform selection, image configs and chain IDs. The JSON
 * documents are written with ' for " to stay readable; J() turns them into
 * JSON. */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/cleanup.h"
#include "image/manifest.h"
#include "image/reference.h"

#define D1 "sha256:ca0df2c95aa144c1d0ff2ff3c8f967fdc1de9ef0c4120b3726416701b519d619"
#define D2 "sha256:29c1b289e7522195b362e44f54e05470b69ad20540ab60a18a05e5bf6951f13d"
#define D3 "sha256:153812ae5fea0b73a011bf28bd7cea93644437c3fe3260b7b2d7e1e2f9f46bde"
#define D4 "sha256:2396a1256ac4b1c6849c931ddb8018bdd984bb2383be21bb819a33b95d8d603f"
#define D5 "sha256:b5f2031eb62e37c6d38287b38f83afeaed2665f0424eb3c29c1a38a596a13d57"
#define D6 "sha256:e341fcc488934e2578956254b5b7de15bdcc07eca1ae5d9877aeaaae523e6e19"
#define D7 "sha256:018c267d72f6381a2ec828ada8fb4995323745e5dce6222890ebac36f5323e68"
#define D8 "sha256:59360be607459a4cd3efe15db65685824902e82ac0f7374d648f814d14f1541b"
#define D9 "sha256:b3af560ffaf071918d8d64d6201533061cc1f9a76c6a2264b670fc1f0032f0d6"
#define D10 "sha256:133e572155b4e767b73366d3b7bd7fbd8a7b061da07a5ab352673ff307bb11e8"
#define D11 "sha256:bb85e451e092b31aedb250d1883a6dd8f7f8de1e302fa7167ab7f9044b0f8040"
#define D12 "sha256:a8274014a4c678f4a2a235d286cfca12c105bec6223eb318a8876aac4f2e1683"

#define MT_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MT_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_DOCKER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_DOCKER_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define MT_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"

#define SCHEMA1_MSG \
	"Docker schema 1 manifests are no longer supported; push the image again with a current tool"

/* clang-format off */
/* An OCI image manifest as BuildKit pushes it. */
static const char oci_manifest[] =
	"{\n"
	"  'schemaVersion': 2,\n"
	"  'mediaType': 'application/vnd.oci.image.manifest.v1+json',\n"
	"  'config': {\n"
	"    'mediaType': 'application/vnd.oci.image.config.v1+json',\n"
	"    'digest': '" D1 "',\n"
	"    'size': 1469\n"
	"  },\n"
	"  'layers': [\n"
	"    {\n"
	"      'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip',\n"
	"      'digest': '" D2 "',\n"
	"      'size': 3408729\n"
	"    },\n"
	"    {\n"
	"      'mediaType': 'application/vnd.oci.image.layer.v1.tar+zstd',\n"
	"      'digest': '" D3 "',\n"
	"      'size': 0\n"
	"    },\n"
	"    {\n"
	"      'mediaType': 'application/vnd.oci.image.layer.v1.tar',\n"
	"      'digest': '" D4 "',\n"
	"      'size': 10240,\n"
	"      'annotations': { 'org.opencontainers.image.title': 'app.tar' }\n"
	"    }\n"
	"  ],\n"
	"  'annotations': {\n"
	"    'org.opencontainers.image.created': '2024-01-27T00:00:00Z',\n"
	"    'org.opencontainers.image.base.name': 'docker.io/library/alpine:3.19'\n"
	"  }\n"
	"}\n";

/* A Docker image manifest v2 schema 2 as Docker Hub serves it. */
static const char docker_manifest[] =
	"{\n"
	"   'schemaVersion': 2,\n"
	"   'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
	"   'config': {\n"
	"      'mediaType': 'application/vnd.docker.container.image.v1+json',\n"
	"      'size': 1457,\n"
	"      'digest': '" D5 "'\n"
	"   },\n"
	"   'layers': [\n"
	"      {\n"
	"         'mediaType': 'application/vnd.docker.image.rootfs.diff.tar.gzip',\n"
	"         'size': 2220094,\n"
	"         'digest': '" D6 "'\n"
	"      },\n"
	"      {\n"
	"         'mediaType': 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',\n"
	"         'size': 1654,\n"
	"         'digest': '" D7 "',\n"
	"         'urls': [ 'https://mcr.microsoft.com/v2/windows/servercore/blobs/" D7 "' ]\n"
	"      }\n"
	"   ]\n"
	"}";

/* An OCI index as BuildKit pushes it: two platforms, arm64 without a
 * variant, and an attestation manifest for the amd64 one. */
static const char oci_index[] =
	"{\n"
	"  'schemaVersion': 2,\n"
	"  'mediaType': 'application/vnd.oci.image.index.v1+json',\n"
	"  'manifests': [\n"
	"    {\n"
	"      'mediaType': 'application/vnd.oci.image.manifest.v1+json',\n"
	"      'digest': '" D1 "',\n"
	"      'size': 1234,\n"
	"      'platform': { 'architecture': 'amd64', 'os': 'linux' }\n"
	"    },\n"
	"    {\n"
	"      'mediaType': 'application/vnd.oci.image.manifest.v1+json',\n"
	"      'digest': '" D2 "',\n"
	"      'size': 1235,\n"
	"      'platform': { 'architecture': 'arm64', 'os': 'linux' }\n"
	"    },\n"
	"    {\n"
	"      'mediaType': 'application/vnd.oci.image.manifest.v1+json',\n"
	"      'digest': '" D3 "',\n"
	"      'size': 566,\n"
	"      'annotations': {\n"
	"        'vnd.docker.reference.digest': '" D1 "',\n"
	"        'vnd.docker.reference.type': 'attestation-manifest'\n"
	"      },\n"
	"      'platform': { 'architecture': 'unknown', 'os': 'unknown' }\n"
	"    }\n"
	"  ]\n"
	"}\n";

/* A Docker manifest list as Docker Hub serves it for an official image. */
static const char docker_list[] =
	"{\n"
	"   'manifests': [\n"
	"      { 'digest': '" D4 "', 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
	"        'platform': { 'architecture': 'amd64', 'os': 'linux' }, 'size': 528 },\n"
	"      { 'digest': '" D5 "', 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
	"        'platform': { 'architecture': 'arm', 'os': 'linux', 'variant': 'v5' }, 'size': 529 },\n"
	"      { 'digest': '" D6 "', 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
	"        'platform': { 'architecture': 'arm', 'os': 'linux', 'variant': 'v6' }, 'size': 530 },\n"
	"      { 'digest': '" D7 "', 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
	"        'platform': { 'architecture': 'arm', 'os': 'linux', 'variant': 'v7' }, 'size': 531 },\n"
	"      { 'digest': '" D8 "', 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
	"        'platform': { 'architecture': 'arm64', 'os': 'linux', 'variant': 'v8' }, 'size': 532 },\n"
	"      { 'digest': '" D9 "', 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
	"        'platform': { 'architecture': '386', 'os': 'linux' }, 'size': 533 },\n"
	"      { 'digest': '" D10 "', 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
	"        'platform': { 'architecture': 's390x', 'os': 'linux' }, 'size': 534 },\n"
	"      { 'digest': '" D11 "', 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
	"        'platform': { 'architecture': 'amd64', 'os': 'windows', 'os.version': '10.0.17763.5329' },\n"
	"        'size': 1125 }\n"
	"   ],\n"
	"   'mediaType': 'application/vnd.docker.distribution.manifest.list.v2+json',\n"
	"   'schemaVersion': 2\n"
	"}";

/* A signed Docker schema 1 manifest. */
static const char schema1_manifest[] =
	"{\n"
	"   'schemaVersion': 1,\n"
	"   'name': 'library/hello-world',\n"
	"   'tag': 'latest',\n"
	"   'architecture': 'amd64',\n"
	"   'fsLayers': [ { 'blobSum': '" D1 "' } ],\n"
	"   'history': [ { 'v1Compatibility': '{}' } ],\n"
	"   'signatures': [ { 'header': { 'alg': 'ES256' }, 'signature': 'x', 'protected': 'y' } ]\n"
	"}";

/* An image config as Docker builds it. */
static const char docker_config[] =
	"{\n"
	"  'architecture': 'amd64',\n"
	"  'config': {\n"
	"    'User': 'nobody:nogroup',\n"
	"    'Env': [ 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' ],\n"
	"    'Cmd': [ 'sh' ],\n"
	"    'WorkingDir': '/',\n"
	"    'OnBuild': null\n"
	"  },\n"
	"  'created': '2023-07-18T23:19:33.655005962Z',\n"
	"  'history': [ { 'created_by': 'ADD file:... in / ' }, { 'created_by': 'CMD [\\'sh\\']', "
	"'empty_layer': true } ],\n"
	"  'os': 'linux',\n"
	"  'rootfs': {\n"
	"    'type': 'layers',\n"
	"    'diff_ids': [ '" D1 "', '" D2 "' ]\n"
	"  }\n"
	"}";
/* clang-format on */

static char *J(const char *s)
{
	char *d = strdup(s);

	ck_assert_ptr_nonnull(d);
	for (char *p = d; *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static int parse(const char *doc, const char *content_type, struct crid_manifest *m, struct crid_err *err)
{
	_cleanup_free_ char *json = J(doc);

	return crid_manifest_parse(json, strlen(json), content_type, m, err);
}

static int select_from(const char *doc, const char *os, const char *arch, const char *variant,
		       struct crid_descriptor *d, struct crid_err *err)
{
	_cleanup_free_ char *json = J(doc);
	struct crid_platform p = { (char *)os, (char *)arch, (char *)variant };

	return crid_manifest_index_select(json, strlen(json), &p, d, err);
}

static int config(const char *doc, struct crid_image_config *c, struct crid_err *err)
{
	_cleanup_free_ char *json = J(doc);

	return crid_image_config_parse(json, strlen(json), c, err);
}

START_TEST(test_oci_manifest)
{
	struct crid_manifest m;
	struct crid_err err = { 0 };

	ck_assert_msg(parse(oci_manifest, CRID_MT_OCI_MANIFEST, &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_IMAGE);
	ck_assert_str_eq(m.media_type, CRID_MT_OCI_MANIFEST);
	ck_assert_str_eq(m.config.media_type, CRID_MT_OCI_CONFIG);
	ck_assert_str_eq(m.config.digest, D1);
	ck_assert_int_eq(m.config.size, 1469);
	ck_assert_uint_eq(m.n_layers, 3);
	ck_assert_str_eq(m.layers[0].desc.media_type, MT_GZIP);
	ck_assert_str_eq(m.layers[0].desc.digest, D2);
	ck_assert_int_eq(m.layers[0].desc.size, 3408729);
	ck_assert_int_eq(m.layers[0].compression, CRID_LAYER_GZIP);
	ck_assert_str_eq(m.layers[1].desc.digest, D3);
	ck_assert_int_eq(m.layers[1].desc.size, 0);
	ck_assert_int_eq(m.layers[1].compression, CRID_LAYER_ZSTD);
	ck_assert_str_eq(m.layers[2].desc.digest, D4);
	ck_assert_int_eq(m.layers[2].compression, CRID_LAYER_TAR);
	crid_manifest_free(&m);
	ck_assert_ptr_null(m.layers);
	crid_manifest_free(&m);
}
END_TEST

START_TEST(test_docker_manifest)
{
	struct crid_manifest m;
	struct crid_err err = { 0 };

	ck_assert_msg(parse(docker_manifest, NULL, &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_IMAGE);
	ck_assert_str_eq(m.media_type, CRID_MT_DOCKER_MANIFEST);
	ck_assert_str_eq(m.config.media_type, CRID_MT_DOCKER_CONFIG);
	ck_assert_str_eq(m.config.digest, D5);
	ck_assert_int_eq(m.config.size, 1457);
	ck_assert_uint_eq(m.n_layers, 2);
	ck_assert_str_eq(m.layers[0].desc.digest, D6);
	ck_assert_int_eq(m.layers[0].desc.size, 2220094);
	ck_assert_int_eq(m.layers[0].compression, CRID_LAYER_GZIP);
	ck_assert_str_eq(m.layers[1].desc.media_type, MT_DOCKER_FOREIGN);
	ck_assert_int_eq(m.layers[1].compression, CRID_LAYER_GZIP);
	crid_manifest_free(&m);
}
END_TEST

static const struct {
	const char *media_type;
	enum crid_layer_compression compression;
} layer_types[] = {
	{ MT_TAR, CRID_LAYER_TAR },
	{ MT_GZIP, CRID_LAYER_GZIP },
	{ MT_ZSTD, CRID_LAYER_ZSTD },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar", CRID_LAYER_TAR },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", CRID_LAYER_GZIP },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", CRID_LAYER_ZSTD },
	{ MT_DOCKER_GZIP, CRID_LAYER_GZIP },
	{ MT_DOCKER_FOREIGN, CRID_LAYER_GZIP },
};

/* An OCI manifest whose layers are the given media types, each with the
 * digest D<i+2> and size 100 + i. */
static void manifest_with_layers(char *buf, size_t size, const char *const *types, size_t n)
{
	size_t o;

	o = (size_t)snprintf(buf, size,
			     "{'schemaVersion': 2, 'mediaType': '" CRID_MT_OCI_MANIFEST "', "
			     "'config': {'mediaType': '" CRID_MT_OCI_CONFIG "', 'digest': '" D1
			     "', 'size': 7}, "
			     "'layers': [");
	for (size_t i = 0; i < n; i++) {
		static const char *const digests[] = { D2, D3, D4, D5 };

		o += (size_t)snprintf(buf + o, size - o, "%s{'mediaType': '%s', 'digest': '%s', 'size': %zu}",
				      i ? ", " : "", types[i], digests[i % 4], 100 + i);
		ck_assert_uint_lt(o, size);
	}
	o += (size_t)snprintf(buf + o, size - o, "]}");
	ck_assert_uint_lt(o, size);
}

START_TEST(test_layer_media_type)
{
	const char *types[] = { layer_types[_i].media_type };
	struct crid_manifest m;
	struct crid_err err = { 0 };
	char doc[2048];

	manifest_with_layers(doc, sizeof(doc), types, 1);
	ck_assert_msg(parse(doc, NULL, &m, &err) == 0, "%s: %s", types[0], err.msg);
	ck_assert_uint_eq(m.n_layers, 1);
	ck_assert_str_eq(m.layers[0].desc.media_type, types[0]);
	ck_assert_int_eq(m.layers[0].compression, layer_types[_i].compression);
	ck_assert_int_eq(m.layers[0].desc.size, 100);
	crid_manifest_free(&m);
}
END_TEST

/* clang-format off */
static const char *const bad_layer_types[] = {
	"application/vnd.oci.image.layer.v1.tar+bzip2",
	"application/vnd.docker.image.rootfs.diff.tar",
	"application/vnd.cncf.helm.chart.content.v1.tar+gzip",
	"application/octet-stream",
	"application/vnd.oci.image.layer.v1.tar+GZIP",
};
/* clang-format on */

START_TEST(test_unsupported_layer_media_type)
{
	const char *types[] = { MT_GZIP, MT_ZSTD, bad_layer_types[_i], MT_GZIP };
	struct crid_manifest m;
	struct crid_err err = { 0 };
	char doc[2048], want[256];

	manifest_with_layers(doc, sizeof(doc), types, 4);
	memset(&m, 0xaa, sizeof(m));
	ck_assert_int_eq(parse(doc, NULL, &m, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	snprintf(want, sizeof(want), "invalid manifest: layer 2 has the unsupported media type \"%s\"",
		 bad_layer_types[_i]);
	ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
	ck_assert_ptr_null(m.layers);
	ck_assert_ptr_null(m.media_type);
}
END_TEST

START_TEST(test_empty_layers)
{
	struct crid_manifest m;
	struct crid_err err = { 0 };

	char doc[512];

	manifest_with_layers(doc, sizeof(doc), NULL, 0);
	ck_assert_msg(parse(doc, NULL, &m, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(m.n_layers, 0);
	ck_assert_ptr_null(m.layers);
	crid_manifest_free(&m);
}
END_TEST

/* The kind from the Content-Type when the document has no mediaType, from
 * the shape when neither says. */
START_TEST(test_kind_without_media_type)
{
	static const char image[] =
		"{'schemaVersion': 2, 'config': {'mediaType': '" CRID_MT_DOCKER_CONFIG "', 'digest': '" D1
		"', 'size': 1}, 'layers': [{'mediaType': '" MT_DOCKER_GZIP "', 'digest': '" D2
		"', 'size': 2}]}";
	static const char index[] =
		"{'schemaVersion': 2, 'manifests': [{'mediaType': '" CRID_MT_DOCKER_MANIFEST
		"', 'digest': '" D1 "', 'size': 1, 'platform': {'os': 'linux', "
		"'architecture': 'amd64'}}]}";
	struct crid_manifest m;
	struct crid_err err = { 0 };

	ck_assert_msg(parse(image, CRID_MT_DOCKER_MANIFEST "; charset=utf-8", &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_IMAGE);
	ck_assert_str_eq(m.media_type, CRID_MT_DOCKER_MANIFEST);
	crid_manifest_free(&m);

	ck_assert_msg(parse(image, "application/json", &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_IMAGE);
	ck_assert_str_eq(m.media_type, CRID_MT_OCI_MANIFEST);
	crid_manifest_free(&m);

	ck_assert_msg(parse(image, NULL, &m, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(m.media_type, CRID_MT_OCI_MANIFEST);
	ck_assert_uint_eq(m.n_layers, 1);
	crid_manifest_free(&m);

	ck_assert_msg(parse(index, " " CRID_MT_DOCKER_LIST " ", &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_INDEX);
	ck_assert_str_eq(m.media_type, CRID_MT_DOCKER_LIST);
	crid_manifest_free(&m);

	ck_assert_msg(parse(index, NULL, &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_INDEX);
	ck_assert_str_eq(m.media_type, CRID_MT_OCI_INDEX);
	crid_manifest_free(&m);
}
END_TEST

START_TEST(test_document_media_type_wins)
{
	struct crid_manifest m;
	struct crid_err err = { 0 };

	ck_assert_msg(parse(oci_manifest, CRID_MT_DOCKER_LIST, &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_IMAGE);
	ck_assert_str_eq(m.media_type, CRID_MT_OCI_MANIFEST);
	crid_manifest_free(&m);
	ck_assert_msg(parse(docker_list, "application/octet-stream", &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_INDEX);
	ck_assert_str_eq(m.media_type, CRID_MT_DOCKER_LIST);
	crid_manifest_free(&m);
}
END_TEST

START_TEST(test_indexes_parse)
{
	struct crid_manifest m;
	struct crid_err err = { 0 };

	ck_assert_msg(parse(oci_index, CRID_MT_OCI_INDEX, &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_INDEX);
	ck_assert_str_eq(m.media_type, CRID_MT_OCI_INDEX);
	ck_assert_uint_eq(m.n_layers, 0);
	crid_manifest_free(&m);
	ck_assert_msg(parse(docker_list, NULL, &m, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(m.kind, CRID_MANIFEST_INDEX);
	crid_manifest_free(&m);
}
END_TEST

/* clang-format off */
static const struct {
	const char *doc, *content_type;
} schema1_cases[] = {
	{ schema1_manifest, MT_SCHEMA1_SIGNED },
	{ schema1_manifest, MT_SCHEMA1 },
	{ schema1_manifest, "application/json" },
	{ schema1_manifest, NULL },
	/* The media types alone are enough. */
	{ "{'schemaVersion': 2, 'mediaType': '" MT_SCHEMA1 "'}", NULL },
	{ "{'schemaVersion': 2, 'mediaType': '" MT_SCHEMA1_SIGNED "'}", CRID_MT_OCI_MANIFEST },
	{ "{'schemaVersion': 2}", MT_SCHEMA1_SIGNED "; charset=utf-8" },
	/* schemaVersion 1 whatever else the document says. */
	{ "{'schemaVersion': 1, 'mediaType': '" CRID_MT_OCI_MANIFEST "'}", NULL },
};
/* clang-format on */

START_TEST(test_schema1_refused)
{
	struct crid_manifest m;
	struct crid_err err = { 0 };

	ck_assert_int_eq(parse(schema1_cases[_i].doc, schema1_cases[_i].content_type, &m, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_FAILED_PRECONDITION);
	ck_assert_str_eq(err.msg, SCHEMA1_MSG);
	ck_assert_ptr_null(m.media_type);
}
END_TEST

#define OCI_START "{'schemaVersion': 2, 'mediaType': '" CRID_MT_OCI_MANIFEST "', "
#define GOOD_CONFIG "'config': {'mediaType': '" CRID_MT_OCI_CONFIG "', 'digest': '" D1 "', 'size': 7}"
#define GOOD_LAYER "{'mediaType': '" MT_GZIP "', 'digest': '" D2 "', 'size': 8}"
#define GOOD_LAYERS "'layers': [" GOOD_LAYER "]"
#define CONFIG_WITH(fields) "'config': {" fields "}"
#define CFG_MT "'mediaType': '" CRID_MT_OCI_CONFIG "', "

/* clang-format off */
static const struct {
	const char *doc;
	const char *what; /* the message, or its start */
} bad_manifests[] = {
	{ "", "invalid manifest: the document is empty" },
	{ "{", "invalid manifest: not valid JSON: " },
	{ "[]", "invalid manifest: not a JSON object" },
	{ "'manifest'", "invalid manifest: not valid JSON" },
	{ "{'mediaType': '" CRID_MT_OCI_MANIFEST "', " GOOD_CONFIG ", " GOOD_LAYERS "}",
	  "invalid manifest: schemaVersion is missing" },
	{ "{'schemaVersion': 3, " GOOD_CONFIG ", " GOOD_LAYERS "}", "invalid manifest: schemaVersion is 3, expected 2" },
	{ "{'schemaVersion': '2', " GOOD_CONFIG ", " GOOD_LAYERS "}",
	  "invalid manifest: schemaVersion is not an integer" },
	{ "{'schemaVersion': 2, 'mediaType': 'application/vnd.example.thing.v1+json', " GOOD_CONFIG ", " GOOD_LAYERS "}",
	  "invalid manifest: unsupported media type \"application/vnd.example.thing.v1+json\"" },
	{ "{'schemaVersion': 2, 'mediaType': 42, " GOOD_CONFIG ", " GOOD_LAYERS "}",
	  "invalid manifest: mediaType is not a string" },
	{ "{'schemaVersion': 2, 'schemaVersion': 2, " GOOD_CONFIG ", " GOOD_LAYERS "}",
	  "invalid manifest: not valid JSON: duplicate object key" },
	{ "{'schemaVersion': 2, 'mediaType': '" CRID_MT_OCI_MANIFEST "\\u0000x', " GOOD_CONFIG "}",
	  "invalid manifest: not valid JSON" },
	{ OCI_START GOOD_LAYERS "}", "invalid manifest: config is missing" },
	{ OCI_START "'config': [], " GOOD_LAYERS "}", "invalid manifest: config is not an object" },
	{ OCI_START CONFIG_WITH("'digest': '" D1 "', 'size': 7") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.mediaType is missing" },
	{ OCI_START CONFIG_WITH("'mediaType': '', 'digest': '" D1 "', 'size': 7") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.mediaType is empty" },
	{ OCI_START CONFIG_WITH(CFG_MT "'size': 7") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.digest is missing" },
	{ OCI_START CONFIG_WITH(CFG_MT "'digest': 7, 'size': 7") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.digest is not a string" },
	{ OCI_START CONFIG_WITH(CFG_MT "'size': 7, 'digest': "
				"'sha512:9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca7"
				"2323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043'") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.digest \"sha512:9b71" },
	{ OCI_START CONFIG_WITH(CFG_MT "'digest': 'sha256:abc', 'size': 7") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.digest \"sha256:abc\" is not \"sha256:\" followed by 64 lowercase hex digits" },
	{ OCI_START CONFIG_WITH(CFG_MT "'size': 7, "
				"'digest': 'sha256:CA0DF2C95AA144C1D0FF2FF3C8F967FDC1DE9EF0C4120B3726416701B519D619'") ", "
		GOOD_LAYERS "}",
	  "invalid manifest: config.digest \"sha256:CA0DF2C95AA144C1D0FF2FF3C8F967FDC1DE9EF0C4120B3726416701B519D619\" "
	  "is not" },
	{ OCI_START CONFIG_WITH(CFG_MT "'digest': '" D1 "'") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.size is missing" },
	{ OCI_START CONFIG_WITH(CFG_MT "'digest': '" D1 "', 'size': -1") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.size is negative (-1)" },
	{ OCI_START CONFIG_WITH(CFG_MT "'digest': '" D1 "', 'size': '7'") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.size is not an integer" },
	{ OCI_START CONFIG_WITH(CFG_MT "'digest': '" D1 "', 'size': 7.5") ", " GOOD_LAYERS "}",
	  "invalid manifest: config.size is not an integer" },
	{ OCI_START GOOD_CONFIG "}", "invalid manifest: layers is missing" },
	{ OCI_START GOOD_CONFIG ", 'layers': {}}", "invalid manifest: layers is not an array" },
	{ OCI_START GOOD_CONFIG ", 'layers': [" GOOD_LAYER ", 'x']}", "invalid manifest: layers[1] is not an object" },
	{ OCI_START GOOD_CONFIG ", 'layers': [{'mediaType': '" MT_GZIP "', 'digest': 'sha256:', 'size': 1}]}",
	  "invalid manifest: layers[0].digest \"sha256:\" is not" },
	{ OCI_START GOOD_CONFIG ", 'layers': [{'mediaType': '" MT_GZIP "', 'digest': 'md5:d41d8cd98f00b204e9800998ecf8427e', "
	  "'size': 1}]}",
	  "invalid manifest: layers[0].digest \"md5:d41d8cd98f00b204e9800998ecf8427e\" uses an unsupported digest "
	  "algorithm \"md5\" (only sha256 is supported)" },
	{ OCI_START GOOD_CONFIG ", 'layers': [" GOOD_LAYER ", " GOOD_LAYER ", {'mediaType': '" MT_GZIP "', 'digest': '" D3
	  "', 'size': -5}]}",
	  "invalid manifest: layers[2].size is negative (-5)" },
	{ OCI_START GOOD_CONFIG ", 'layers': [{'digest': '" D3 "', 'size': 5}]}",
	  "invalid manifest: layers[0].mediaType is missing" },
	{ OCI_START GOOD_CONFIG ", 'layers': [{'mediaType': '" MT_GZIP "', 'digest': '" D3 "', 'size': null}]}",
	  "invalid manifest: layers[0].size is not an integer" },
	{ "{'schemaVersion': 2, 'annotations': {}}",
	  "invalid manifest: no mediaType, and neither a manifests array (an index) nor config and layers" },
	{ "{'schemaVersion': 2, 'mediaType': '" CRID_MT_OCI_INDEX "'}", "invalid index: manifests is missing" },
	{ "{'schemaVersion': 2, 'mediaType': '" CRID_MT_OCI_INDEX "', 'manifests': {}}",
	  "invalid index: manifests is not an array" },
	{ "{'schemaVersion': 2, 'mediaType': '" CRID_MT_OCI_INDEX "', 'manifests': [7]}",
	  "invalid index: manifests[0] is not an object" },
	/* Control characters from a registry do not reach the message. */
	{ "{'schemaVersion': 2, 'mediaType': 'text/x\\n\\u001b[31mred'}",
	  "invalid manifest: unsupported media type \"text/x??[31mred\"" },
};
/* clang-format on */

START_TEST(test_bad_manifest)
{
	struct crid_manifest m;
	struct crid_err err = { 0 };

	memset(&m, 0xaa, sizeof(m));
	ck_assert_msg(parse(bad_manifests[_i].doc, NULL, &m, &err) == -EINVAL, "parsed: %s",
		      bad_manifests[_i].doc);
	ck_assert_msg(err.status == CRID_INVALID_ARGUMENT, "%s: %s", crid_status_name(err.status), err.msg);
	ck_assert_msg(strncmp(err.msg, bad_manifests[_i].what, strlen(bad_manifests[_i].what)) == 0,
		      "message \"%s\", expected \"%s\"", err.msg, bad_manifests[_i].what);
	ck_assert_ptr_null(m.media_type);
	ck_assert_ptr_null(m.layers);
	ck_assert_ptr_null(m.config.digest);
	crid_manifest_free(&m);
}
END_TEST

START_TEST(test_null_document)
{
	struct crid_manifest m;
	struct crid_err err = { 0 };

	ck_assert_int_eq(crid_manifest_parse(NULL, 0, NULL, &m, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	/* len bounds the document: the bytes after it are not read. */
	ck_assert_int_eq(crid_manifest_parse("{\"schemaVersion\": 2}garbage", 20, NULL, &m, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "no mediaType"), "%s", err.msg);
}
END_TEST

/* clang-format off */
static const struct {
	const char *doc;
	const char *os, *arch, *variant;
	const char *digest; /* NULL: NOT_FOUND */
	int64_t size;
} selections[] = {
	{ oci_index, "linux", "amd64", NULL, D1, 1234 },
	/* The arm64 entry has no variant: v8 is implied. */
	{ oci_index, "linux", "arm64", "v8", D2, 1235 },
	{ oci_index, "linux", "arm64", NULL, D2, 1235 },
	{ oci_index, "linux", "arm", "v7", NULL, 0 },
	{ oci_index, "unknown", "unknown", NULL, NULL, 0 },
	{ docker_list, "linux", "amd64", NULL, D4, 528 },
	{ docker_list, "linux", "amd64", "v1", D4, 528 },
	{ docker_list, "linux", "arm64", "v8", D8, 532 },
	{ docker_list, "linux", "arm64", NULL, D8, 532 },
	{ docker_list, "linux", "arm", "v7", D7, 531 },
	{ docker_list, "linux", "arm", NULL, D7, 531 },
	{ docker_list, "linux", "arm", "v6", D6, 530 },
	{ docker_list, "linux", "arm", "v5", D5, 529 },
	{ docker_list, "linux", "386", NULL, D9, 533 },
	{ docker_list, "linux", "s390x", NULL, D10, 534 },
	{ docker_list, "windows", "amd64", NULL, D11, 1125 },
	{ docker_list, "linux", "ppc64le", NULL, NULL, 0 },
	{ docker_list, "linux", "arm", "v8", NULL, 0 },
	{ docker_list, "linux", "amd64", "v3", NULL, 0 },
	{ docker_list, "darwin", "arm64", NULL, NULL, 0 },
};
/* clang-format on */

START_TEST(test_index_select)
{
	struct crid_descriptor d;
	struct crid_err err = { 0 };
	int r;

	r = select_from(selections[_i].doc, selections[_i].os, selections[_i].arch, selections[_i].variant,
			&d, &err);
	if (!selections[_i].digest) {
		ck_assert_msg(r == -EINVAL && err.status == CRID_NOT_FOUND, "%s/%s: r=%d %s",
			      selections[_i].os, selections[_i].arch, r, r == 0 ? d.digest : err.msg);
		ck_assert_ptr_null(d.digest);
		return;
	}
	ck_assert_msg(r == 0, "%s/%s: %s", selections[_i].os, selections[_i].arch, err.msg);
	ck_assert_str_eq(d.digest, selections[_i].digest);
	ck_assert_int_eq(d.size, selections[_i].size);
	ck_assert_msg(strcmp(d.media_type, CRID_MT_OCI_MANIFEST) == 0 ||
			      strcmp(d.media_type, CRID_MT_DOCKER_MANIFEST) == 0,
		      "%s", d.media_type);
	crid_descriptor_free(&d);
	crid_descriptor_free(&d);
}
END_TEST

static const char index_variants[] =
	"{'schemaVersion': 2, 'mediaType': '" CRID_MT_OCI_INDEX "', 'manifests': ["
	"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D1 "', 'size': 1, "
	"  'platform': {'os': 'linux', 'architecture': 'arm64'}},"
	"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D2 "', 'size': 2, "
	"  'platform': {'os': 'linux', 'architecture': 'arm64', 'variant': 'v8'}},"
	"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D3 "', 'size': 3, "
	"  'platform': {'os': 'linux', 'architecture': 'arm'}},"
	"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D4 "', 'size': 4, "
	"  'platform': {'os': 'linux', 'architecture': 'arm', 'variant': 'v6'}}"
	"]}";

START_TEST(test_index_select_variants)
{
	struct crid_descriptor d;
	struct crid_err err = { 0 };

	/* An entry that states the variant beats one that implies it. */
	ck_assert_msg(select_from(index_variants, "linux", "arm64", "v8", &d, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(d.digest, D2);
	crid_descriptor_free(&d);
	/* arm without a variant is v7. */
	ck_assert_msg(select_from(index_variants, "linux", "arm", "v7", &d, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(d.digest, D3);
	crid_descriptor_free(&d);
	ck_assert_msg(select_from(index_variants, "linux", "arm", "v6", &d, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(d.digest, D4);
	crid_descriptor_free(&d);
	/* ... and so not a v5 machine's. */
	ck_assert_int_eq(select_from(index_variants, "linux", "arm", "v5", &d, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_NOT_FOUND);
	ck_assert_str_eq(err.msg,
			 "no manifest for linux/arm/v5 in the index (it offers linux/arm64, linux/arm64/v8, "
			 "linux/arm, linux/arm/v6)");
}
END_TEST

START_TEST(test_index_select_not_found_message)
{
	static const char doc[] =
		"{'schemaVersion': 2, 'mediaType': '" CRID_MT_OCI_INDEX "', 'manifests': ["
		"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D1 "', 'size': 1, "
		"  'platform': {'os': 'linux', 'architecture': 'arm64', 'variant': 'v8'}},"
		"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D2 "', 'size': 2, "
		"  'platform': {'os': 'linux', 'architecture': 's390x'}},"
		"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D5 "', 'size': 2, "
		"  'platform': {'os': 'linux', 'architecture': 's390x'}},"
		"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D3 "', 'size': 3, "
		"  'platform': {'os': 'unknown', 'architecture': 'unknown'}},"
		"{'mediaType': 'application/vnd.in-toto+json', 'digest': '" D4 "', 'size': 4, "
		"  'platform': {'os': 'linux', 'architecture': 'amd64'}},"
		"{'mediaType': '" CRID_MT_OCI_INDEX "', 'digest': '" D6 "', 'size': 4, "
		"  'platform': {'os': 'linux', 'architecture': 'amd64'}},"
		"{'digest': '" D7 "', 'size': 4, 'platform': {'os': 'linux', 'architecture': 'amd64'}},"
		"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D8 "', 'size': 1}"
		"]}";
	static const char only_attestations[] =
		"{'schemaVersion': 2, 'mediaType': '" CRID_MT_OCI_INDEX "', 'manifests': ["
		"{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D3 "', 'size': 3, "
		"  'platform': {'os': 'unknown', 'architecture': 'unknown'}}]}";
	struct crid_descriptor d;
	struct crid_err err = { 0 };

	ck_assert_int_eq(select_from(doc, "linux", "amd64", NULL, &d, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_NOT_FOUND);
	ck_assert_str_eq(err.msg,
			 "no manifest for linux/amd64 in the index (it offers linux/arm64/v8, linux/s390x)");
	ck_assert_ptr_null(d.digest);

	ck_assert_int_eq(select_from(only_attestations, "linux", "arm64", "v8", &d, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_NOT_FOUND);
	ck_assert_str_eq(
		err.msg,
		"no manifest for linux/arm64/v8 in the index (it lists no platform-specific manifests)");
}
END_TEST

START_TEST(test_index_select_many_offers)
{
	char doc[64 * 1024];
	size_t o;
	struct crid_descriptor d;
	struct crid_err err = { 0 };

	o = (size_t)snprintf(doc, sizeof(doc), "{'schemaVersion': 2, 'manifests': [");
	for (int i = 0; i < 200; i++)
		o += (size_t)snprintf(doc + o, sizeof(doc) - o,
				      "%s{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D1
				      "', 'size': 1, "
				      "'platform': {'os': 'linux', 'architecture': 'arch%d'}}",
				      i ? "," : "", i);
	snprintf(doc + o, sizeof(doc) - o, "]}");
	ck_assert_uint_lt(strlen(doc), sizeof(doc) - 1);
	ck_assert_int_eq(select_from(doc, "linux", "amd64", NULL, &d, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_NOT_FOUND);
	ck_assert_msg(strstr(err.msg, "(it offers linux/arch0, linux/arch1, "), "%s", err.msg);
	ck_assert_msg(strstr(err.msg, ", ...)"), "%s", err.msg);
	ck_assert_uint_lt(strlen(err.msg), CRID_ERR_MSG_MAX - 1);
}
END_TEST

/* clang-format off */
static const struct {
	const char *doc;
	const char *what;
} bad_indexes[] = {
	{ "{'schemaVersion': 2, 'manifests': [{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': 'sha256:0', "
	  "'size': 1, 'platform': {'os': 'linux', 'architecture': 'amd64'}}]}",
	  "invalid index: manifests[0].digest \"sha256:0\" is not" },
	{ "{'schemaVersion': 2, 'manifests': [{'mediaType': '" CRID_MT_OCI_MANIFEST "', 'digest': '" D1 "', "
	  "'size': 1, 'platform': {'os': 'linux', 'architecture': 'arm64'}}, {'mediaType': '" CRID_MT_OCI_MANIFEST
	  "', 'digest': '" D1 "', 'size': -1, 'platform': {'os': 'linux', 'architecture': 'amd64'}}]}",
	  "invalid index: manifests[1].size is negative (-1)" },
	{ oci_manifest, "invalid index: mediaType \"" CRID_MT_OCI_MANIFEST "\" is not an index" },
	{ "{'schemaVersion': 2}", "invalid index: manifests is missing" },
	{ "{'schemaVersion': 2, 'manifests': 'x'}", "invalid index: manifests is not an array" },
	{ "{'schemaVersion': 2, 'manifests': [null]}", "invalid index: manifests[0] is not an object" },
	{ "nope", "invalid index: not valid JSON" },
};
/* clang-format on */

START_TEST(test_bad_index)
{
	struct crid_descriptor d;
	struct crid_err err = { 0 };

	ck_assert_int_eq(select_from(bad_indexes[_i].doc, "linux", "amd64", NULL, &d, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_msg(strncmp(err.msg, bad_indexes[_i].what, strlen(bad_indexes[_i].what)) == 0,
		      "message \"%s\", expected \"%s\"", err.msg, bad_indexes[_i].what);
	ck_assert_ptr_null(d.digest);
	ck_assert_ptr_null(d.media_type);
}
END_TEST

START_TEST(test_index_select_no_platform)
{
	struct crid_descriptor d;
	struct crid_err err = { 0 };
	_cleanup_free_ char *json = J(oci_index);

	ck_assert_int_eq(crid_manifest_index_select(json, strlen(json), NULL, &d, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_platform_host)
{
	struct crid_platform p;
	struct utsname u;

	crid_platform_host(&p);
	ck_assert_str_eq(p.os, "linux");
	ck_assert_ptr_nonnull(p.architecture);
	ck_assert_int_eq(uname(&u), 0);
	if (strcmp(u.machine, "x86_64") == 0) {
		ck_assert_str_eq(p.architecture, "amd64");
		ck_assert_ptr_null(p.variant);
	} else if (strcmp(u.machine, "aarch64") == 0) {
		ck_assert_str_eq(p.architecture, "arm64");
		ck_assert_str_eq(p.variant, "v8");
	} else if (strcmp(u.machine, "armv7l") == 0) {
		ck_assert_str_eq(p.architecture, "arm");
		ck_assert_str_eq(p.variant, "v7");
	}
	/* The host's own platform is found in an index that offers it. */
	if (strcmp(p.architecture, "amd64") == 0 || strcmp(p.architecture, "arm64") == 0) {
		struct crid_descriptor d;
		struct crid_err err = { 0 };
		_cleanup_free_ char *json = J(docker_list);

		ck_assert_msg(crid_manifest_index_select(json, strlen(json), &p, &d, &err) == 0, "%s",
			      err.msg);
		ck_assert_str_eq(d.digest, strcmp(p.architecture, "amd64") == 0 ? D4 : D8);
		crid_descriptor_free(&d);
	}
}
END_TEST

START_TEST(test_config)
{
	struct crid_image_config c;
	struct crid_err err = { 0 };

	ck_assert_msg(config(docker_config, &c, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(c.n_diff_ids, 2);
	ck_assert_str_eq(c.diff_ids[0], D1);
	ck_assert_str_eq(c.diff_ids[1], D2);
	ck_assert_str_eq(c.user, "nobody:nogroup");
	ck_assert_str_eq(c.os, "linux");
	ck_assert_str_eq(c.architecture, "amd64");
	crid_image_config_free(&c);
	ck_assert_ptr_null(c.diff_ids);
	crid_image_config_free(&c);
}
END_TEST

/* clang-format off */
static const struct {
	const char *doc;
	size_t n_diff_ids;
} configs_without_user[] = {
	{ "{'architecture': 'arm64', 'os': 'linux', 'config': {'Cmd': ['/pause']}, "
	  "'rootfs': {'type': 'layers', 'diff_ids': ['" D3 "']}}",
	  1 },
	{ "{'architecture': 'arm64', 'os': 'linux', 'config': {'User': ''}, "
	  "'rootfs': {'type': 'layers', 'diff_ids': []}}",
	  0 },
	{ "{'architecture': 'arm64', 'os': 'linux', 'config': {'User': null}, 'rootfs': {'type': 'layers'}}", 0 },
	{ "{'architecture': 'arm64', 'os': 'linux', 'rootfs': {'type': 'layers', 'diff_ids': null}}", 0 },
	{ "{'architecture': 'arm64', 'os': 'linux', 'config': null, "
	  "'rootfs': {'type': 'layers', 'diff_ids': ['" D3 "', '" D4 "', '" D3 "']}}",
	  3 },
};
/* clang-format on */

START_TEST(test_config_without_user)
{
	struct crid_image_config c;
	struct crid_err err = { 0 };

	ck_assert_msg(config(configs_without_user[_i].doc, &c, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(c.user, "");
	ck_assert_str_eq(c.os, "linux");
	ck_assert_str_eq(c.architecture, "arm64");
	ck_assert_uint_eq(c.n_diff_ids, configs_without_user[_i].n_diff_ids);
	if (c.n_diff_ids)
		ck_assert_str_eq(c.diff_ids[0], D3);
	crid_image_config_free(&c);
}
END_TEST

START_TEST(test_config_without_platform)
{
	struct crid_image_config c;
	struct crid_err err = { 0 };

	ck_assert_msg(config("{'rootfs': {'type': 'layers', 'diff_ids': []}}", &c, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(c.os, "");
	ck_assert_str_eq(c.architecture, "");
	crid_image_config_free(&c);
}
END_TEST

/* clang-format off */
static const struct {
	const char *doc;
	const char *what;
} bad_configs[] = {
	{ "{'os': 'linux'}", "invalid image config: rootfs is missing" },
	{ "{'rootfs': 'layers'}", "invalid image config: rootfs is not an object" },
	{ "{'rootfs': {'diff_ids': []}}", "invalid image config: rootfs.type is missing" },
	{ "{'rootfs': {'type': 'snapshot', 'diff_ids': []}}",
	  "invalid image config: rootfs.type is \"snapshot\", expected \"layers\"" },
	{ "{'rootfs': {'type': 'Layers', 'diff_ids': []}}", "invalid image config: rootfs.type is \"Layers\"" },
	{ "{'rootfs': {'type': 'layers', 'diff_ids': '" D1 "'}}", "invalid image config: rootfs.diff_ids is not an array" },
	{ "{'rootfs': {'type': 'layers', 'diff_ids': ['" D1 "', 'sha256:xyz']}}",
	  "invalid image config: rootfs.diff_ids[1] \"sha256:xyz\" is not \"sha256:\" followed by 64 lowercase hex digits" },
	{ "{'rootfs': {'type': 'layers', 'diff_ids': ['" D1 "', '" D2 "', 'sha384:"
	  "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b']}}",
	  "invalid image config: rootfs.diff_ids[2] \"sha384:38b0" },
	{ "{'rootfs': {'type': 'layers', 'diff_ids': [7]}}", "invalid image config: rootfs.diff_ids[0] is not a string" },
	{ "{'rootfs': {'type': 'layers', 'diff_ids': []}, 'config': {'User': 0}}",
	  "invalid image config: config.User is not a string" },
	{ "{'rootfs': {'type': 'layers', 'diff_ids': []}, 'config': []}", "invalid image config: config is not an object" },
	{ "{'rootfs': {'type': 'layers', 'diff_ids': []}, 'os': ['linux']}", "invalid image config: os is not a string" },
	{ "{'rootfs': {'type': 'layers', 'diff_ids': []}, 'architecture': 64}",
	  "invalid image config: architecture is not a string" },
	{ "{'rootfs': {'type': 'layers'}", "invalid image config: not valid JSON" },
	{ "", "invalid image config: the document is empty" },
};
/* clang-format on */

START_TEST(test_bad_config)
{
	struct crid_image_config c;
	struct crid_err err = { 0 };

	memset(&c, 0xaa, sizeof(c));
	ck_assert_int_eq(config(bad_configs[_i].doc, &c, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_msg(strncmp(err.msg, bad_configs[_i].what, strlen(bad_configs[_i].what)) == 0,
		      "message \"%s\", expected \"%s\"", err.msg, bad_configs[_i].what);
	ck_assert_ptr_null(c.diff_ids);
	ck_assert_ptr_null(c.user);
	crid_image_config_free(&c);
}
END_TEST

/* sha256 of the diff IDs A, B, C below and the chain IDs, computed with
 * sha256sum: printf '%s %s' "$A" "$B" | sha256sum. */
#define DIFF_A "sha256:589f0d58b9053a4ff7329b8fdb4f9dd120e29354c086ad0b3b10733f6cfd6de3"
#define DIFF_B "sha256:55fea2a37a9fc5963f1beccd0d162b856e6bd05ca07cdd3726847846ab740f0d"
#define DIFF_C "sha256:e6c65c655ca8172ab7a2b634dab3220a45472dd6571b6efd956ccc05e229a201"
#define CHAIN_AB "sha256:267c5fd16af60e52927fabf0a36a31f3b5a2069347f7f00c7bd7f93f6ebc01f4"
#define CHAIN_ABC "sha256:82c0ed5f6c15be9b9180a8c04b9f2c676d74af6db13c711f5bb47a0fa43b56df"

START_TEST(test_chain_ids_known)
{
	char *diff[] = { (char *)DIFF_A, (char *)DIFF_B, (char *)DIFF_C };
	char *chain[3];
	struct crid_err err = { 0 };

	ck_assert_msg(crid_chain_ids(diff, 3, chain, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(chain[0], DIFF_A);
	ck_assert_ptr_ne(chain[0], diff[0]);
	ck_assert_str_eq(chain[1], CHAIN_AB);
	ck_assert_str_eq(chain[2], CHAIN_ABC);
	for (int i = 0; i < 3; i++)
		free(chain[i]);
}
END_TEST

/* chain[i] from EVP_Q_digest, a different OpenSSL entry point. */
static void expected_chain(char *const *diff, size_t n, char out[][72])
{
	snprintf(out[0], 72, "%s", diff[0]);
	for (size_t i = 1; i < n; i++) {
		char input[160];
		unsigned char md[32];
		size_t md_len = 0;
		int len = snprintf(input, sizeof(input), "%s %s", out[i - 1], diff[i]);

		ck_assert(EVP_Q_digest(NULL, "SHA256", NULL, input, (size_t)len, md, &md_len));
		ck_assert_uint_eq(md_len, 32);
		strcpy(out[i], "sha256:");
		for (size_t k = 0; k < 32; k++)
			sprintf(out[i] + 7 + 2 * k, "%02x", md[k]);
	}
}

START_TEST(test_chain_ids_independent)
{
	char *diff[] = { (char *)D1, (char *)D2, (char *)D3, (char *)D4, (char *)D5, (char *)D1, (char *)D1 };
	const size_t n = CRID_ARRAY_SIZE(diff);
	char want[CRID_ARRAY_SIZE(diff)][72];
	char *chain[CRID_ARRAY_SIZE(diff)];
	struct crid_err err = { 0 };

	expected_chain(diff, n, want);
	ck_assert_msg(crid_chain_ids(diff, n, chain, &err) == 0, "%s", err.msg);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(chain[i], want[i]);
		ck_assert_msg(crid_digest_valid(chain[i]), "%s", chain[i]);
		free(chain[i]);
	}
	/* The same layer twice in a row still changes the chain. */
	ck_assert_str_ne(want[5], want[6]);
}
END_TEST

START_TEST(test_chain_ids_edges)
{
	char *one[] = { (char *)D7 };
	char *bad[] = { (char *)D1, (char *)D2, (char *)"sha256:D3", (char *)D4 };
	char *chain[4] = { (char *)1, (char *)1, (char *)1, (char *)1 };
	struct crid_err err = { 0 };

	ck_assert_int_eq(crid_chain_ids(one, 0, chain, &err), 0);
	ck_assert_int_eq(crid_chain_ids(one, 1, chain, &err), 0);
	ck_assert_str_eq(chain[0], D7);
	free(chain[0]);

	ck_assert_int_eq(crid_chain_ids(bad, 4, chain, &err), -EINVAL);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	ck_assert_str_eq(
		err.msg,
		"chain IDs: diff ID 2 \"sha256:D3\" is not \"sha256:\" followed by 64 lowercase hex digits");
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_null(chain[i]);
}
END_TEST

/* jansson's allocations fail after the first fail_after. */
static int allocations, fail_after;

static void *failing_malloc(size_t size)
{
	if (allocations++ >= fail_after)
		return NULL;
	return malloc(size);
}

/* When jansson runs out of memory the parse fails cleanly, leaking nothing,
 * and RESOURCE_EXHAUSTED where jansson says that was the cause. */
START_TEST(test_out_of_memory_in_json)
{
	_cleanup_free_ char *json = J(docker_manifest);
	json_malloc_t saved_malloc;
	json_free_t saved_free;
	int r = -ENOMEM;

	json_get_alloc_funcs(&saved_malloc, &saved_free);
	for (fail_after = 0; r != 0; fail_after++) {
		struct crid_manifest m;
		struct crid_err err = { 0 };

		ck_assert_int_lt(fail_after, 10000);
		allocations = 0;
		json_set_alloc_funcs(failing_malloc, free);
		r = crid_manifest_parse(json, strlen(json), NULL, &m, &err);
		json_set_alloc_funcs(saved_malloc, saved_free);
		if (r == 0) {
			ck_assert_uint_eq(m.n_layers, 2);
			crid_manifest_free(&m);
			break;
		}
		/* jansson reports some failed allocations (in its lexer) as
		 * syntax errors; those cannot be told apart. */
		ck_assert_msg((r == -ENOMEM && err.status == CRID_RESOURCE_EXHAUSTED) ||
				      (r == -EINVAL && strstr(err.msg, "invalid manifest: not valid JSON: ")),
			      "after %d: %s", fail_after, err.msg);
		if (fail_after == 0)
			ck_assert_int_eq(err.status, CRID_RESOURCE_EXHAUSTED);
		ck_assert_ptr_null(m.layers);
	}
	ck_assert_int_gt(fail_after, 10);
}
END_TEST

START_TEST(test_free_zeroed)
{
	struct crid_manifest m = { 0 };
	struct crid_descriptor d = { 0 };
	struct crid_image_config c = { 0 };

	crid_manifest_free(&m);
	crid_descriptor_free(&d);
	crid_image_config_free(&c);
}
END_TEST

static Suite *manifest_suite(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("manifest");
	TCase *ti = tcase_create("index");
	TCase *tcfg = tcase_create("config");

	tcase_add_test(tc, test_oci_manifest);
	tcase_add_test(tc, test_docker_manifest);
	tcase_add_loop_test(tc, test_layer_media_type, 0, (int)CRID_ARRAY_SIZE(layer_types));
	tcase_add_loop_test(tc, test_unsupported_layer_media_type, 0, (int)CRID_ARRAY_SIZE(bad_layer_types));
	tcase_add_test(tc, test_empty_layers);
	tcase_add_test(tc, test_kind_without_media_type);
	tcase_add_test(tc, test_document_media_type_wins);
	tcase_add_test(tc, test_indexes_parse);
	tcase_add_loop_test(tc, test_schema1_refused, 0, (int)CRID_ARRAY_SIZE(schema1_cases));
	tcase_add_loop_test(tc, test_bad_manifest, 0, (int)CRID_ARRAY_SIZE(bad_manifests));
	tcase_add_test(tc, test_null_document);
	tcase_add_test(tc, test_out_of_memory_in_json);
	tcase_add_test(tc, test_free_zeroed);
	suite_add_tcase(s, tc);

	tcase_add_loop_test(ti, test_index_select, 0, (int)CRID_ARRAY_SIZE(selections));
	tcase_add_test(ti, test_index_select_variants);
	tcase_add_test(ti, test_index_select_not_found_message);
	tcase_add_test(ti, test_index_select_many_offers);
	tcase_add_loop_test(ti, test_bad_index, 0, (int)CRID_ARRAY_SIZE(bad_indexes));
	tcase_add_test(ti, test_index_select_no_platform);
	tcase_add_test(ti, test_platform_host);
	suite_add_tcase(s, ti);

	tcase_add_test(tcfg, test_config);
	tcase_add_loop_test(tcfg, test_config_without_user, 0, (int)CRID_ARRAY_SIZE(configs_without_user));
	tcase_add_test(tcfg, test_config_without_platform);
	tcase_add_loop_test(tcfg, test_bad_config, 0, (int)CRID_ARRAY_SIZE(bad_configs));
	tcase_add_test(tcfg, test_chain_ids_known);
	tcase_add_test(tcfg, test_chain_ids_independent);
	tcase_add_test(tcfg, test_chain_ids_edges);
	suite_add_tcase(s, tcfg);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(manifest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
