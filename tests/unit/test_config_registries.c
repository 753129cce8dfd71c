/* Unit tests of src/config's registries: pinned_images, registries and
 * their mirrors from files, drop-ins and flags, as Status shows them, and
 * the lookup by host. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "config/config.h"
#include "config_fixture.h"

/* pinned_images and registries with every field, in every YAML form taken. */
static const char registries_file[] = "pinned_images:\n"
				      "  - registry.k8s.io/pause:3.9\n"
				      "  - \"docker.io/library/busybox@sha256:0123abcd\"\n"
				      "registries:\n"
				      "  - host: docker.io\n"
				      "    insecure: false\n"
				      "    ca_file: /etc/crid/certs/docker.io/ca.pem\n"
				      "    mirrors:\n"
				      "      - url: https://mirror.local:5443\n"
				      "        ca_file: /etc/crid/certs/mirror-ca.pem\n"
				      "      - url: http://10.0.0.5:5000/docker-hub/\n"
				      "    mirrors_only: True\n"
				      "  - host: localhost:5000\n"
				      "    insecure: TRUE\n"
				      "  - {host: \"[::1]:5000\", insecure: true, mirrors: []}\n"
				      "  - host: quay.io\n"
				      "    mirrors:\n"
				      "      - {url: \"https://[fd00::1]:8443/quay\"}\n"
				      "    mirrors_only: false\n";

static const struct crid_registry_config *assert_registry(const struct crid_config *cfg, size_t i,
							  const char *host, bool insecure,
							  const char *ca_file, size_t n_mirrors,
							  bool mirrors_only)
{
	const struct crid_registry_config *reg;

	ck_assert_uint_lt(i, cfg->n_registries);
	reg = &cfg->registries[i];
	ck_assert_str_eq(reg->host, host);
	ck_assert_msg(reg->insecure == insecure, "%s: insecure is %d", host, reg->insecure);
	ck_assert_pstr_eq(reg->ca_file, ca_file);
	ck_assert_uint_eq(reg->n_mirrors, n_mirrors);
	ck_assert_msg(reg->mirrors_only == mirrors_only, "%s: mirrors_only is %d", host,
		      reg->mirrors_only);
	ck_assert_ptr_eq(crid_config_find_registry(cfg, host), reg);
	return reg;
}

static void assert_mirror(const struct crid_registry_config *reg, size_t i, const char *url,
			  const char *ca_file)
{
	ck_assert_uint_lt(i, reg->n_mirrors);
	ck_assert_str_eq(reg->mirrors[i].url, url);
	ck_assert_pstr_eq(reg->mirrors[i].ca_file, ca_file);
}

static void assert_pinned(const struct crid_config *cfg, size_t n, ...)
{
	va_list ap;

	ck_assert_uint_eq(cfg->n_pinned_images, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(cfg->pinned_images[i], va_arg(ap, const char *));
	va_end(ap);
}

START_TEST(test_registries_file_values)
{
	struct crid_config cfg;
	struct crid_err err;
	const struct crid_registry_config *reg;

	write_main(registries_file);
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	assert_pinned(&cfg, 2, "registry.k8s.io/pause:3.9",
		      "docker.io/library/busybox@sha256:0123abcd");
	ck_assert_uint_eq(cfg.n_registries, 4);
	reg = assert_registry(&cfg, 0, "docker.io", false, "/etc/crid/certs/docker.io/ca.pem", 2, true);
	assert_mirror(reg, 0, "https://mirror.local:5443", "/etc/crid/certs/mirror-ca.pem");
	assert_mirror(reg, 1, "http://10.0.0.5:5000/docker-hub/", NULL);
	assert_registry(&cfg, 1, "localhost:5000", true, NULL, 0, false);
	ck_assert_ptr_null(assert_registry(&cfg, 2, "[::1]:5000", true, NULL, 0, false)->mirrors);
	reg = assert_registry(&cfg, 3, "quay.io", false, NULL, 1, false);
	assert_mirror(reg, 0, "https://[fd00::1]:8443/quay", NULL);
	/* The rest keeps its defaults. */
	ck_assert_uint_eq(cfg.max_concurrent_downloads, 4);
	ck_assert_uint_eq(cfg.pull_progress_timeout_s, 60);
	crid_config_free(&cfg);
	assert_zeroed(&cfg);
}
END_TEST

START_TEST(test_registries_dropin_override)
{
	struct crid_config cfg;
	struct crid_err err;
	const struct crid_registry_config *reg;

	write_main(registries_file);
	/* Host names match ignoring case; the entry keeps its first spelling. */
	write_dropin("10-a.yaml", "registries:\n"
				  "  - host: Docker.IO\n"
				  "    insecure: true\n"
				  "  - host: ghcr.io\n"
				  "    ca_file: /etc/crid/ghcr.pem\n");
	/* A mirrors list given replaces the earlier one whole; [] empties it. */
	write_dropin("20-b.yaml", "registries:\n"
				  "  - host: docker.io\n"
				  "    mirrors:\n"
				  "      - url: https://new-mirror.local\n"
				  "  - host: quay.io\n"
				  "    mirrors: []\n"
				  "  - host: localhost:5000\n"
				  "    insecure: false\n"
				  "    ca_file: /etc/crid/local.pem\n"
				  "pinned_images:\n"
				  "  - alpine:3.19\n"
				  "  - registry.k8s.io/pause:3.9\n"); /* pinned already: not twice */
	/* Empty lists and nulls change nothing. */
	write_dropin("30-c.yaml", "registries: []\npinned_images:\n");
	write_dropin("40-d.yaml", "registries:\npinned_images: []\n");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.n_registries, 5);
	reg = assert_registry(&cfg, 0, "docker.io", true, "/etc/crid/certs/docker.io/ca.pem", 1, true);
	assert_mirror(reg, 0, "https://new-mirror.local", NULL);
	assert_registry(&cfg, 1, "localhost:5000", false, "/etc/crid/local.pem", 0, false);
	assert_registry(&cfg, 2, "[::1]:5000", true, NULL, 0, false);
	assert_registry(&cfg, 3, "quay.io", false, NULL, 0, false);
	assert_registry(&cfg, 4, "ghcr.io", false, "/etc/crid/ghcr.pem", 0, false);
	assert_pinned(&cfg, 3, "registry.k8s.io/pause:3.9", "docker.io/library/busybox@sha256:0123abcd",
		      "alpine:3.19");
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_dropin_cannot_strand_mirrors_only)
{
	struct crid_config cfg;
	struct crid_err err;
	char path[PATH_MAX], expect[CRID_ERR_MSG_MAX];

	write_main("registries:\n"
		   "  - host: docker.io\n"
		   "    mirrors_only: true\n"
		   "    mirrors:\n"
		   "      - url: https://m.local\n");
	/* Emptying the mirrors of a mirrors_only registry blames the mirrors. */
	write_dropin("10-x.yaml", "# clear them\nregistries:\n  - host: docker.io\n    mirrors:\n");
	dropin_path(path, sizeof(path), "10-x.yaml");
	FMT(expect, "%s:4: registries[docker.io]: mirrors_only needs at least one mirror", path);
	ck_assert_int_lt(load(&cfg, &err, NULL), 0);
	ck_assert_str_eq(err.msg, expect);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	assert_zeroed(&cfg);

	/* Turning mirrors_only off in the same entry makes it valid. */
	write_dropin("10-x.yaml", "registries:\n"
				  "  - host: docker.io\n"
				  "    mirrors: []\n"
				  "    mirrors_only: false\n");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	assert_registry(&cfg, 0, "docker.io", false, NULL, 0, false);
	crid_config_free(&cfg);

	/* So does a flag that adds a mirror back. */
	write_dropin("10-x.yaml", "registries:\n  - host: docker.io\n    mirrors_only: false\n"
				  "    mirrors: []\n");
	write_dropin("20-y.yaml", "registries:\n  - host: docker.io\n    mirrors_only: true\n"
				  "    mirrors: [{url: 'https://y.local'}]\n");
	ck_assert_int_eq(load(&cfg, &err, "--registry-mirror", "docker.io=https://z.local", NULL),
			 CRID_CONFIG_RUN);
	assert_mirror(assert_registry(&cfg, 0, "docker.io", false, NULL, 2, true), 1, "https://z.local",
		      NULL);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_registry_flags)
{
	struct crid_config cfg;
	struct crid_err err;
	const struct crid_registry_config *reg;

	write_main(registries_file);
	ck_assert_int_eq(
		load(&cfg, &err, "--registry-mirror", "docker.io=https://flag-mirror.local/v2",
		     /* a mirror listed already is not added twice */
		     "--registry-mirror=DOCKER.IO=https://mirror.local:5443",
		     /* mirrors_only before the mirror that makes it valid */
		     "--registry-mirrors-only", "gcr.io", "--registry-mirror",
		     "gcr.io=http://gcr-mirror:80", "--insecure-registry", "localhost:5001",
		     "--insecure-registry=quay.io", "--registry-ca", "quay.io=/etc/quay-ca.pem",
		     "--registry-ca=quay.io=/etc/quay-ca2.pem", "--registry-ca", "[::1]:5000=/etc/v6.pem",
		     "--pinned-image", "alpine:3.19", "--pinned-image=registry.k8s.io/pause:3.9",
		     "--pinned-image", "alpine:3.19", NULL),
		CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.n_registries, 6);
	reg = assert_registry(&cfg, 0, "docker.io", false, "/etc/crid/certs/docker.io/ca.pem", 3, true);
	assert_mirror(reg, 0, "https://mirror.local:5443", "/etc/crid/certs/mirror-ca.pem");
	assert_mirror(reg, 1, "http://10.0.0.5:5000/docker-hub/", NULL);
	assert_mirror(reg, 2, "https://flag-mirror.local/v2", NULL);
	assert_registry(&cfg, 1, "localhost:5000", true, NULL, 0, false);
	assert_registry(&cfg, 2, "[::1]:5000", true, "/etc/v6.pem", 0, false);
	assert_registry(&cfg, 3, "quay.io", true, "/etc/quay-ca2.pem", 1, false);
	assert_mirror(assert_registry(&cfg, 4, "gcr.io", false, NULL, 1, true), 0,
		      "http://gcr-mirror:80", NULL);
	assert_registry(&cfg, 5, "localhost:5001", true, NULL, 0, false);
	assert_pinned(&cfg, 3, "registry.k8s.io/pause:3.9", "docker.io/library/busybox@sha256:0123abcd",
		      "alpine:3.19");
	crid_config_free(&cfg);

	/* Flags alone, no file. */
	write_main("");
	ck_assert_int_eq(load(&cfg, &err, "--insecure-registry", "[::1]:5000", NULL), CRID_CONFIG_RUN);
	assert_registry(&cfg, 0, "[::1]:5000", true, NULL, 0, false);
	ck_assert_uint_eq(cfg.n_registries, 1);
	assert_pinned(&cfg, 0);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_to_json_registries)
{
	struct crid_config cfg;
	struct crid_err err;
	json_t *j;
	_cleanup_free_ char *pinned = NULL;
	_cleanup_free_ char *registries = NULL;

	write_main(registries_file);
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	j = crid_config_to_json(&cfg);
	ck_assert_ptr_nonnull(j);
	pinned = json_dumps(json_object_get(j, "pinned_images"), JSON_COMPACT);
	registries = json_dumps(json_object_get(j, "registries"), JSON_COMPACT);
	ck_assert_str_eq(pinned,
			 "[\"registry.k8s.io/pause:3.9\",\"docker.io/library/busybox@sha256:0123abcd\"]");
	ck_assert_str_eq(registries,
			 "[{\"host\":\"docker.io\",\"insecure\":false,"
			 "\"ca_file\":\"/etc/crid/certs/docker.io/ca.pem\",\"mirrors_only\":true,"
			 "\"mirrors\":[{\"url\":\"https://mirror.local:5443\","
			 "\"ca_file\":\"/etc/crid/certs/mirror-ca.pem\"},"
			 "{\"url\":\"http://10.0.0.5:5000/docker-hub/\",\"ca_file\":null}]},"
			 "{\"host\":\"localhost:5000\",\"insecure\":true,\"ca_file\":null,"
			 "\"mirrors_only\":false,\"mirrors\":[]},"
			 "{\"host\":\"[::1]:5000\",\"insecure\":true,\"ca_file\":null,"
			 "\"mirrors_only\":false,\"mirrors\":[]},"
			 "{\"host\":\"quay.io\",\"insecure\":false,\"ca_file\":null,"
			 "\"mirrors_only\":false,"
			 "\"mirrors\":[{\"url\":\"https://[fd00::1]:8443/quay\",\"ca_file\":null}]}]");
	json_decref(j);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_find_registry)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_ptr_null(crid_config_find_registry(&cfg, "docker.io"));
	crid_config_free(&cfg);

	write_main(registries_file);
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_ptr_eq(crid_config_find_registry(&cfg, "docker.io"), &cfg.registries[0]);
	ck_assert_ptr_eq(crid_config_find_registry(&cfg, "Docker.IO"), &cfg.registries[0]);
	ck_assert_ptr_eq(crid_config_find_registry(&cfg, "localhost:5000"), &cfg.registries[1]);
	ck_assert_ptr_eq(crid_config_find_registry(&cfg, "[::1]:5000"), &cfg.registries[2]);
	ck_assert_ptr_eq(crid_config_find_registry(&cfg, "quay.io"), &cfg.registries[3]);
	/* Exact hosts only: no port defaulting, no docker.io aliases. */
	ck_assert_ptr_null(crid_config_find_registry(&cfg, "localhost"));
	ck_assert_ptr_null(crid_config_find_registry(&cfg, "localhost:5001"));
	ck_assert_ptr_null(crid_config_find_registry(&cfg, "index.docker.io"));
	ck_assert_ptr_null(crid_config_find_registry(&cfg, ""));
	ck_assert_ptr_null(crid_config_find_registry(&cfg, NULL));
	crid_config_free(&cfg);
}
END_TEST

static Suite *registries_suite(void)
{
	Suite *s = suite_create("config registries");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_registries_file_values);
	tcase_add_test(tc, test_registries_dropin_override);
	tcase_add_test(tc, test_dropin_cannot_strand_mirrors_only);
	tcase_add_test(tc, test_registry_flags);
	tcase_add_test(tc, test_to_json_registries);
	tcase_add_test(tc, test_find_registry);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_config_suite(registries_suite());
}
