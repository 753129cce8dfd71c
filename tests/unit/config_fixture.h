/* The fixture of the config unit tests: one temporary directory per test
 * holding crid.yaml and crid.d, crid_config_load pointed at them, and the
 * main() that runs a suite and removes the run's parent directory. */
#ifndef CRID_TESTS_CONFIG_FIXTURE_H
#define CRID_TESTS_CONFIG_FIXTURE_H

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

/* One parent directory per run, removed by main() even when tests fail (a
 * failing forked test never reaches its teardown); one subdirectory per test. */
/* snprintf that fails the test rather than truncate a path. */
#define FMT(buf, ...) ck_assert_int_lt(snprintf(buf, sizeof(buf), __VA_ARGS__), (int)sizeof(buf))

static char parent_dir[PATH_MAX];
static char test_dir[PATH_MAX];
static char main_path[PATH_MAX];
static char dropin_dir[PATH_MAX];

static inline void setup(void)
{
	FMT(test_dir, "%s/t-XXXXXX", parent_dir);
	ck_assert_ptr_nonnull(mkdtemp(test_dir));
	FMT(main_path, "%s/crid.yaml", test_dir);
	FMT(dropin_dir, "%s/crid.d", test_dir);
}

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static inline void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void teardown(void)
{
	rm_rf(test_dir);
}

static inline void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "we");

	ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
	ck_assert_int_ge(fputs(content, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static inline void write_main(const char *content)
{
	write_file(main_path, content);
}

static inline void dropin_path(char *buf, size_t size, const char *name)
{
	ck_assert_int_lt(snprintf(buf, size, "%s/%s", dropin_dir, name), (int)size);
}

static inline void write_dropin(const char *name, const char *content)
{
	char path[PATH_MAX];

	ck_assert(mkdir(dropin_dir, 0755) == 0 || errno == EEXIST);
	dropin_path(path, sizeof(path), name);
	write_file(path, content);
}

/* crid_config_load with "--config <tmp>/crid.yaml --config-dir <tmp>/crid.d"
 * and then the NULL-terminated extra arguments (a later --config wins). */
static inline int load(struct crid_config *cfg, struct crid_err *err, ...)
{
	char *argv[64];
	int argc = 0;
	va_list ap;
	char *a;

	argv[argc++] = "crid";
	argv[argc++] = "--config";
	argv[argc++] = main_path;
	argv[argc++] = "--config-dir";
	argv[argc++] = dropin_dir;
	va_start(ap, err);
	while ((a = va_arg(ap, char *)) && argc < 63)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	crid_err_clear(err);
	return crid_config_load(cfg, argc, argv, err);
}

static inline void assert_zeroed(const struct crid_config *cfg)
{
	ck_assert_ptr_null(cfg->socket_path);
	ck_assert_ptr_null(cfg->config_dir);
	ck_assert_ptr_null(cfg->runtimes);
	ck_assert_uint_eq(cfg->n_runtimes, 0);
	ck_assert_ptr_null(cfg->pinned_images);
	ck_assert_uint_eq(cfg->n_pinned_images, 0);
	ck_assert_ptr_null(cfg->registries);
	ck_assert_uint_eq(cfg->n_registries, 0);
}

/* main(): a parent directory for the run, removed even when tests fail (a
 * failing forked test never reaches its teardown). */
static inline int run_config_suite(Suite *s)
{
	SRunner *sr;
	int failed;

	if (snprintf(parent_dir, sizeof(parent_dir), "%s/crid-test-config-XXXXXX",
		     getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") >= (int)sizeof(parent_dir) ||
	    !mkdtemp(parent_dir)) {
		perror("mkdtemp");
		return 1;
	}
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_rf(parent_dir);
	return failed == 0 ? 0 : 1;
}

#endif
