/* Private to src/config (and its unit test): the settings table shared by the
 * YAML reader and the flag parser, so a setting is validated the same way
 * wherever it comes from. Nothing outside src/config includes this. */
#ifndef CRID_CONFIG_INTERNAL_H
#define CRID_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

enum crid_setting_kind {
	CRID_SETTING_ABS_PATH, /* char *, must be absolute */
	CRID_SETTING_NAME,     /* char *, a runtime handler name */
	CRID_SETTING_LOG_LEVEL,
	CRID_SETTING_LOG_FORMAT,
	CRID_SETTING_CGROUP_DRIVER,
	CRID_SETTING_SIZE,     /* size_t within [min, max] */
	CRID_SETTING_UNSIGNED, /* unsigned within [min, max] */
	CRID_SETTING_LISTEN_ADDRESS, /* char *, host:port or "" */
	CRID_SETTING_BOOL,     /* bool: true or false */
	CRID_SETTING_OPT_PATH, /* char *, absolute, or empty for none (NULL) */
	CRID_SETTING_ADDRESS,  /* char *, "host:port": an IP literal ([v6] in brackets), port 0-65535 */
};

/* One scalar setting: its YAML key, its flag, and how to parse it. */
struct crid_setting {
	const char *key;     /* YAML key, "worker_threads" */
	const char *flag;    /* "--worker-threads" */
	const char *metavar; /* "N", shown by --help */
	const char *def;     /* the built-in default, as text */
	const char *help;    /* one line for --help */
	enum crid_setting_kind kind;
	size_t offset; /* of the field in struct crid_config */
	unsigned long long min, max;
};

/* The settings table, in the order --help lists them. */
const struct crid_setting *crid_config_settings(size_t *n);

struct crid_default_runtime {
	const char *name;
	const char *path;
};

const struct crid_default_runtime *crid_config_default_runtimes(size_t *n);
const struct crid_setting *crid_config_setting_by_key(const char *key);

/* Parses text into the setting. On a bad value err->msg holds only the
 * reason ("\"abc\" is not a whole number"); the caller prefixes where it
 * came from (file:line: key, or --flag). */
int crid_config_setting_apply(struct crid_config *cfg, const struct crid_setting *s,
			      const char *value, struct crid_err *err);

int crid_config_check_runtime_name(const char *name, struct crid_err *err);
int crid_config_check_runtime_path(const char *path, struct crid_err *err);
/* Adds the handler, or replaces the path of the handler of that name. */
int crid_config_runtime_set(struct crid_config *cfg, const char *name, const char *path,
			    struct crid_err *err);

/* Pinned images and registries (config_registry.c). The checks, like
 * crid_config_setting_apply, put only the reason in err->msg. */
int crid_config_check_image_ref(const char *ref, struct crid_err *err);
/* host[:port] as in image names: "docker.io", "localhost:5000", "[::1]:5000". */
int crid_config_check_registry_host(const char *host, struct crid_err *err);
/* http:// or https://, a host, an optional port and path; nothing else. */
int crid_config_check_mirror_url(const char *url, struct crid_err *err);
int crid_config_check_ca_file(const char *path, struct crid_err *err);
/* Checks ref and appends it, unless it is pinned already. */
int crid_config_pin_image(struct crid_config *cfg, const char *ref, struct crid_err *err);
/* Checks host and points *out at its entry, appending an empty one when there
 * is none. *out is valid until the next entry is appended. */
int crid_config_registry_get(struct crid_config *cfg, const char *host,
			     struct crid_registry_config **out, struct crid_err *err);
int crid_config_registry_set_ca(struct crid_registry_config *reg, const char *path,
				struct crid_err *err);
/* Checks url and ca_file (NULL: none) and appends the mirror to the list,
 * unless a mirror of that url is in it already. */
int crid_config_mirror_add(struct crid_registry_mirror **mirrors, size_t *n, const char *url,
			   const char *ca_file, struct crid_err *err);
void crid_config_mirrors_free(struct crid_registry_mirror *mirrors, size_t n);
/* Frees pinned_images and registries. */
void crid_config_registries_free(struct crid_config *cfg);
/* Adds "pinned_images" and "registries" to the JSON object o. */
int crid_config_registries_to_json(const struct crid_config *cfg, json_t *o);

/* CNI plugin directories: absolute, without ':'. The list replaces the
 * one before; the path form is "DIR:DIR" as in CNI_PATH. */
int crid_config_check_cni_bin_dir(const char *dir, struct crid_err *err);
int crid_config_set_cni_bin_dirs(struct crid_config *cfg, const char *const *dirs, size_t n,
				 struct crid_err *err);
int crid_config_set_cni_bin_path(struct crid_config *cfg, const char *path, struct crid_err *err);

/* CDI spec directories: absolute, without ':'; the list replaces the one
 * before and may be empty (CDI off); the path form is "DIR:DIR". */
int crid_config_set_cdi_spec_dirs(struct crid_config *cfg, const char *const *dirs, size_t n,
				  struct crid_err *err);
int crid_config_set_cdi_spec_path(struct crid_config *cfg, const char *path, struct crid_err *err);

/* Applies one YAML file to cfg; errors read "path:line: reason". */
int crid_config_read_yaml(struct crid_config *cfg, const char *path, FILE *f,
			  struct crid_err *err);

/* The command line, parsed but not yet applied. */
enum crid_arg_kind {
	CRID_ARG_SETTING,
	CRID_ARG_RUNTIME,
	CRID_ARG_PINNED_IMAGE,
	CRID_ARG_REGISTRY_MIRROR,
	CRID_ARG_INSECURE_REGISTRY,
	CRID_ARG_REGISTRY_CA,
	CRID_ARG_REGISTRY_MIRRORS_ONLY,
	CRID_ARG_CNI_BIN_DIRS,
	CRID_ARG_CDI_SPEC_DIRS,
	CRID_ARG_CONFIG,
	CRID_ARG_CONFIG_DIR,
	CRID_ARG_HELP,
	CRID_ARG_VERSION,
};

struct crid_arg {
	enum crid_arg_kind kind;
	const char *flag; /* as the user wrote it, "--socket" */
	const struct crid_setting *setting; /* for CRID_ARG_SETTING */
	const char *value; /* points into argv; NULL for --help/--version */
};

struct crid_args {
	struct crid_arg *v;
	size_t n;
	const char *config_file; /* last --config, NULL when not given */
	const char *config_dir;  /* last --config-dir, NULL when not given */
	bool help, version;
};

/* Checks flag names and that each has its value; values are checked later by
 * crid_config_apply_args. */
int crid_config_parse_args(int argc, char **argv, struct crid_args *args, struct crid_err *err);
void crid_config_args_free(struct crid_args *args);
int crid_config_apply_args(struct crid_config *cfg, const struct crid_args *args,
			   struct crid_err *err);
void crid_config_print_help(FILE *out);

/* crid_config_load with other default file and directory, so tests can
 * exercise "the default file is missing" without reading /etc/crid. */
int crid_config_load_at(struct crid_config *cfg, int argc, char **argv, const char *default_file,
			const char *default_dir, struct crid_err *err);

#endif
