/* The command line: every setting of the table as --flag VALUE or
 * --flag=VALUE, plus --runtime, the image and registry list flags, --config,
 * --config-dir, --help, --version.
 * Hand-rolled rather than getopt_long so it keeps no state between calls. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "config/config_internal.h"

struct special_flag {
	const char *flag;
	enum crid_arg_kind kind;
	const char *metavar; /* NULL: takes no value */
	const char *help;
};

static const struct special_flag specials[] = {
	{ "--config", CRID_ARG_CONFIG, "FILE",
	  "main config file; must exist when given (default " CRID_DEFAULT_CONFIG_FILE
	  ", skipped when missing)" },
	{ "--config-dir", CRID_ARG_CONFIG_DIR, "DIR",
	  "drop-in directory whose *.yaml files are read in name order after the main file "
	  "(default " CRID_DEFAULT_CONFIG_DIR ")" },
	{ "--runtime", CRID_ARG_RUNTIME, "NAME=PATH",
	  "add a runtime handler or replace its path; repeatable" },
	{ "--pinned-image", CRID_ARG_PINNED_IMAGE, "REF",
	  "report this image pinned, so kubelet image GC keeps it; repeatable" },
	{ "--registry-mirror", CRID_ARG_REGISTRY_MIRROR, "HOST=URL",
	  "try this mirror of registry HOST, after those already listed; repeatable" },
	{ "--insecure-registry", CRID_ARG_INSECURE_REGISTRY, "HOST",
	  "speak plain HTTP to registry HOST; repeatable" },
	{ "--registry-ca", CRID_ARG_REGISTRY_CA, "HOST=FILE",
	  "trust the CA certificates (PEM) in FILE for registry HOST; repeatable" },
	{ "--registry-mirrors-only", CRID_ARG_REGISTRY_MIRRORS_ONLY, "HOST",
	  "never contact registry HOST itself, only its mirrors; repeatable" },
	{ "--cni-bin-dirs", CRID_ARG_CNI_BIN_DIRS, "DIR[:DIR...]",
	  "where CNI plugins are looked for, in order; replaces the list (default " CRID_DEFAULT_CNI_BIN_DIRS ")" },
	{ "--cdi-spec-dirs", CRID_ARG_CDI_SPEC_DIRS, "DIR[:DIR...]",
	  "CDI spec directories, later ones overriding earlier ones; replaces the list, \"\" turns CDI off "
	  "(default " CRID_DEFAULT_CDI_SPEC_DIRS ")" },
	{ "--help", CRID_ARG_HELP, NULL, "print this help and exit" },
	{ "--version", CRID_ARG_VERSION, NULL, "print the version and exit" },
};

static bool name_is(const char *flag, const char *name, size_t len)
{
	return strlen(flag) == len && strncmp(flag, name, len) == 0;
}

/* Fills kind, flag and setting of *arg from the flag's name (len bytes of
 * name, which may go on with "=VALUE"). False for an unknown flag. */
static bool lookup_flag(const char *name, size_t len, struct crid_arg *arg)
{
	size_t n;
	const struct crid_setting *s = crid_config_settings(&n);

	for (size_t i = 0; i < n; i++) {
		if (name_is(s[i].flag, name, len)) {
			arg->kind = CRID_ARG_SETTING;
			arg->flag = s[i].flag;
			arg->setting = &s[i];
			return true;
		}
	}
	for (size_t i = 0; i < CRID_ARRAY_SIZE(specials); i++) {
		if (name_is(specials[i].flag, name, len)) {
			arg->kind = specials[i].kind;
			arg->flag = specials[i].flag;
			return true;
		}
	}
	return false;
}

/* "--socket --run-root /x" is a forgotten value, not a socket named
 * "--run-root"; a lone "-1" is still taken as a value. */
static bool looks_like_flag(const char *s)
{
	return s[0] == '-' && s[1] == '-' && s[2] != '\0';
}

void crid_config_args_free(struct crid_args *args)
{
	free(args->v);
	memset(args, 0, sizeof(*args));
}

int crid_config_parse_args(int argc, char **argv, struct crid_args *args, struct crid_err *err)
{
	memset(args, 0, sizeof(*args));
	if (argc > 1) {
		args->v = calloc((size_t)argc, sizeof(*args->v));
		if (!args->v)
			return crid_err_nomem(err, "command-line flags");
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq;
		size_t len;
		struct crid_arg arg = { 0 };

		if (strcmp(a, "-h") == 0)
			a = "--help";
		if (!looks_like_flag(a))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "unexpected argument \"%s\" (crid takes only --flags; see --help)",
					    a);
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		if (!lookup_flag(a, len, &arg))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "unknown flag \"%.*s\" (see --help)", (int)len, a);
		if (arg.kind == CRID_ARG_HELP || arg.kind == CRID_ARG_VERSION) {
			if (eq)
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: takes no value",
						    arg.flag);
			if (arg.kind == CRID_ARG_HELP)
				args->help = true;
			else
				args->version = true;
			continue;
		}
		if (eq)
			arg.value = eq + 1;
		else if (i + 1 < argc && !looks_like_flag(argv[i + 1]))
			arg.value = argv[++i];
		else
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: missing value", arg.flag);
		if (arg.kind == CRID_ARG_CONFIG)
			args->config_file = arg.value;
		else if (arg.kind == CRID_ARG_CONFIG_DIR)
			args->config_dir = arg.value;
		args->v[args->n++] = arg;
	}
	return 0;
}

static int apply_runtime_flag(struct crid_config *cfg, const char *value, struct crid_err *err)
{
	const char *eq = strchr(value, '=');
	_cleanup_free_ char *name = NULL;
	int r;

	if (!eq)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--runtime: \"%s\" is not NAME=PATH",
				    value);
	name = strndup(value, (size_t)(eq - value));
	if (!name)
		return crid_err_nomem(err, "runtime name");
	r = crid_config_runtime_set(cfg, name, eq + 1, err);
	if (r < 0)
		return crid_err_wrap(err, "--runtime: ");
	return 0;
}

/* Splits flag's "HOST=VALUE": *host is allocated, *rest points into value. */
static int split_host(const char *flag, const char *value, const char *what, char **host,
		      const char **rest, struct crid_err *err)
{
	const char *eq = strchr(value, '=');

	if (!eq)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s: \"%s\" is not HOST=%s", flag,
				    value, what);
	*host = strndup(value, (size_t)(eq - value));
	if (!*host)
		return crid_err_nomem(err, "registry host");
	*rest = eq + 1;
	return 0;
}

/* The registry flags: each names a host, whose entry is created when there
 * is none yet. */
static int apply_registry_flag(struct crid_config *cfg, const struct crid_arg *a,
			       struct crid_err *err)
{
	struct crid_registry_config *reg;
	_cleanup_free_ char *host = NULL;
	const char *rest = NULL;
	int r;

	if (a->kind == CRID_ARG_REGISTRY_MIRROR || a->kind == CRID_ARG_REGISTRY_CA) {
		r = split_host(a->flag, a->value, a->kind == CRID_ARG_REGISTRY_CA ? "FILE" : "URL",
			       &host, &rest, err);
		if (r < 0)
			return r;
	}
	r = crid_config_registry_get(cfg, host ? host : a->value, &reg, err);
	if (r >= 0) {
		switch (a->kind) {
		case CRID_ARG_REGISTRY_MIRROR:
			r = crid_config_mirror_add(&reg->mirrors, &reg->n_mirrors, rest, NULL, err);
			break;
		case CRID_ARG_REGISTRY_CA:
			r = crid_config_registry_set_ca(reg, rest, err);
			break;
		case CRID_ARG_INSECURE_REGISTRY:
			reg->insecure = true;
			break;
		default:
			reg->mirrors_only = true;
			break;
		}
	}
	if (r < 0)
		return crid_err_wrap(err, "%s: ", a->flag);
	return 0;
}

/* Files cannot leave a registry with mirrors_only and no mirror (the YAML
 * reader checks each entry), and flags only add mirrors: so a registry in
 * that state got mirrors_only from its flag. */
static int check_mirrors_only(const struct crid_config *cfg, struct crid_err *err)
{
	for (size_t i = 0; i < cfg->n_registries; i++) {
		const struct crid_registry_config *reg = &cfg->registries[i];

		if (reg->mirrors_only && reg->n_mirrors == 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "--registry-mirrors-only: %s: mirrors_only needs at least "
					    "one mirror (add one with --registry-mirror %s=URL)",
					    reg->host, reg->host);
	}
	return 0;
}

int crid_config_apply_args(struct crid_config *cfg, const struct crid_args *args,
			   struct crid_err *err)
{
	int r;

	for (size_t i = 0; i < args->n; i++) {
		const struct crid_arg *a = &args->v[i];

		switch (a->kind) {
		case CRID_ARG_SETTING:
			r = crid_config_setting_apply(cfg, a->setting, a->value, err);
			if (r < 0)
				return crid_err_wrap(err, "%s: ", a->flag);
			break;
		case CRID_ARG_RUNTIME:
			r = apply_runtime_flag(cfg, a->value, err);
			if (r < 0)
				return r;
			break;
		case CRID_ARG_PINNED_IMAGE:
			r = crid_config_pin_image(cfg, a->value, err);
			if (r < 0)
				return crid_err_wrap(err, "%s: ", a->flag);
			break;
		case CRID_ARG_REGISTRY_MIRROR:
		case CRID_ARG_INSECURE_REGISTRY:
		case CRID_ARG_REGISTRY_CA:
		case CRID_ARG_REGISTRY_MIRRORS_ONLY:
			r = apply_registry_flag(cfg, a, err);
			if (r < 0)
				return r;
			break;
		case CRID_ARG_CNI_BIN_DIRS:
			r = crid_config_set_cni_bin_path(cfg, a->value, err);
			if (r < 0)
				return crid_err_wrap(err, "%s: ", a->flag);
			break;
		case CRID_ARG_CDI_SPEC_DIRS:
			r = crid_config_set_cdi_spec_path(cfg, a->value, err);
			if (r < 0)
				return crid_err_wrap(err, "%s: ", a->flag);
			break;
		default:
			break; /* --config and --config-dir were used to find the files */
		}
	}
	return check_mirrors_only(cfg, err);
}

static void print_flag(FILE *out, const char *flag, const char *metavar, const char *help,
		       const char *def)
{
	char left[64];

	snprintf(left, sizeof(left), "%s%s%s", flag, metavar ? " " : "", metavar ? metavar : "");
	fprintf(out, "  %-32s %s", left, help);
	if (def)
		fprintf(out, " (default %s)", def);
	fputc('\n', out);
}

void crid_config_print_help(FILE *out)
{
	size_t n, n_rt, len = 0;
	const struct crid_setting *s = crid_config_settings(&n);
	const struct crid_default_runtime *rt = crid_config_default_runtimes(&n_rt);
	char runtimes[256] = "";

	for (size_t j = 0; j < n_rt && len < sizeof(runtimes); j++) {
		int w = snprintf(runtimes + len, sizeof(runtimes) - len, "%s%s=%s", j ? ", " : "",
				 rt[j].name, rt[j].path);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	fprintf(out,
		"Usage: crid [FLAG]...\n"
		"Runs crid, a Kubernetes CRI container runtime daemon.\n"
		"\n"
		"Settings come from the built-in defaults, then the config file, then the\n"
		"drop-in directory, then these flags, each overriding the one before.\n"
		"Write a flag's value as --flag VALUE or --flag=VALUE.\n"
		"\n");
	for (size_t i = 0; i < n; i++)
		print_flag(out, s[i].flag, s[i].metavar, s[i].help, s[i].def);
	for (size_t i = 0; i < CRID_ARRAY_SIZE(specials); i++)
		print_flag(out, specials[i].flag, specials[i].metavar, specials[i].help,
			   specials[i].kind == CRID_ARG_RUNTIME ? runtimes : NULL);
}
