/* crid-shim's command line (protocol.h): "--name VALUE" or "--name=VALUE",
 * every required option exactly once, absolute paths (the monitor changes
 * its working directory), and a sync fd that is open and not stdio. */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

const char crid_shim_usage[] =
	"usage: crid-shim --id ID --bundle BUNDLE --runtime PATH --runtime-root DIR\n"
	"                 --state-dir DIR --log-path FILE --sync-fd N\n"
	"                 [--log-dir DIR] [--stdin] [--stdin-once] [--tty] [--subcontainer]\n"
	"                 [--runtime-arg ARG]...\n";

enum value_kind {
	VALUE_NONE,   /* a flag */
	VALUE_STRING, /* any non-empty string */
	VALUE_PATH,   /* an absolute path */
	VALUE_OPTIONAL_PATH, /* an absolute path that may be left out */
};

struct option_def {
	const char *name;
	enum value_kind kind;
	size_t offset; /* of the const char * or bool in the options */
};

#define OPT(name, kind, field) { name, kind, offsetof(struct crid_shim_options, field) }

static const struct option_def option_defs[] = {
	OPT("id", VALUE_STRING, id),
	OPT("bundle", VALUE_PATH, bundle),
	OPT("runtime", VALUE_PATH, runtime),
	OPT("runtime-root", VALUE_PATH, runtime_root),
	OPT("state-dir", VALUE_PATH, state_dir),
	OPT("log-path", VALUE_PATH, log_path),
	OPT("log-dir", VALUE_OPTIONAL_PATH, log_dir),
	OPT("stdin", VALUE_NONE, stdin_open),
	OPT("stdin-once", VALUE_NONE, stdin_once),
	OPT("tty", VALUE_NONE, tty),
	OPT("subcontainer", VALUE_NONE, subcontainer),
};

static int parse_fd(const char *s, int *out, struct crid_err *err)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > INT_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--sync-fd \"%s\" is not a file descriptor number", s);
	if (v <= 2)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "--sync-fd %ld: must not be stdin, stdout or stderr (the shim detaches from them)", v);
	if (fcntl((int)v, F_GETFD) < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "--sync-fd %ld", v);
	*out = (int)v;
	return 0;
}

/* Container IDs become file names and runtime arguments. */
static int check_id(const char *id, struct crid_err *err)
{
	if (strlen(id) > 1024)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--id: longer than 1024 bytes");
	if (id[0] == '-' || id[0] == '.')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--id \"%s\": must not start with '%c'", id, id[0]);
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		if (*p <= ' ' || *p == '/' || *p >= 0x7f)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "--id: must not hold '/', spaces or control characters");
	}
	return 0;
}

static int set_value(struct crid_shim_options *o, const struct option_def *def, const char *value,
		     struct crid_err *err)
{
	const char **slot = (const char **)((char *)o + def->offset);

	if (*slot)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--%s given twice", def->name);
	if (!value[0])
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--%s: empty value", def->name);
	if ((def->kind == VALUE_PATH || def->kind == VALUE_OPTIONAL_PATH) && value[0] != '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--%s \"%s\": must be an absolute path", def->name,
				    value);
	if ((def->kind == VALUE_PATH || def->kind == VALUE_OPTIONAL_PATH) && strlen(value) >= PATH_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, ENAMETOOLONG, "--%s", def->name);
	*slot = value;
	return 0;
}

/* Splits "--name=value" / "--name"; returns the option name's length. */
static size_t option_name(const char *arg, const char **inline_value)
{
	const char *eq = strchr(arg, '=');

	*inline_value = eq ? eq + 1 : NULL;
	return eq ? (size_t)(eq - arg) : strlen(arg);
}

int crid_shim_parse_args(struct crid_shim_options *o, int argc, char **argv, bool *help, struct crid_err *err)
{
	bool sync_seen = false;
	int r;

	memset(o, 0, sizeof(*o));
	o->sync_fd = -1;
	*help = false;
	o->runtime_args = calloc(argc > 0 ? (size_t)argc : 1, sizeof(*o->runtime_args));
	if (!o->runtime_args)
		return crid_err_nomem(err, "arguments");
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value, *name;
		const struct option_def *def = NULL;
		bool is_sync, is_runtime_arg;
		size_t len;

		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "unexpected argument \"%s\"", arg);
		name = arg + 2;
		len = option_name(name, &value);
		if (len == 4 && strncmp(name, "help", 4) == 0) {
			*help = true;
			return 0;
		}
		for (size_t k = 0; k < sizeof(option_defs) / sizeof(option_defs[0]); k++) {
			if (strlen(option_defs[k].name) == len && strncmp(option_defs[k].name, name, len) == 0) {
				def = &option_defs[k];
				break;
			}
		}
		is_sync = len == 7 && strncmp(name, "sync-fd", 7) == 0;
		is_runtime_arg = len == 11 && strncmp(name, "runtime-arg", 11) == 0;

		if (!def && !is_sync && !is_runtime_arg)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "unknown option \"--%.*s\"", (int)len, name);
		if (def && def->kind == VALUE_NONE) {
			bool *flag = (bool *)((char *)o + def->offset);

			if (value)
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--%s takes no value", def->name);
			if (*flag)
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--%s given twice", def->name);
			*flag = true;
			continue;
		}
		if (!value) {
			if (i + 1 >= argc)
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--%.*s needs a value", (int)len, name);
			value = argv[++i];
		}
		if (is_runtime_arg) {
			if (!value[0])
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--runtime-arg: empty value");
			o->runtime_args[o->n_runtime_args++] = value;
		} else if (is_sync) {
			if (sync_seen)
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--sync-fd given twice");
			sync_seen = true;
			r = parse_fd(value, &o->sync_fd, err);
			if (r < 0)
				return r;
		} else {
			r = set_value(o, def, value, err);
			if (r < 0)
				return r;
		}
	}
	for (size_t k = 0; k < sizeof(option_defs) / sizeof(option_defs[0]); k++) {
		const struct option_def *def = &option_defs[k];

		if (def->kind != VALUE_NONE && def->kind != VALUE_OPTIONAL_PATH &&
		    !*(const char **)((char *)o + def->offset))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--%s is required", def->name);
	}
	if (!sync_seen)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--sync-fd is required");
	if (o->log_dir) {
		size_t n = strlen(o->log_dir);

		while (n > 1 && o->log_dir[n - 1] == '/')
			n--;
		if (strncmp(o->log_path, o->log_dir, n) != 0 || o->log_path[n] != '/' || !o->log_path[n + 1])
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "--log-path \"%s\" is not below --log-dir \"%s\"", o->log_path, o->log_dir);
	}
	if (o->subcontainer && o->tty)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--tty is not supported with --subcontainer");
	if (o->stdin_once && !o->stdin_open)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "--stdin-once needs --stdin");
	return check_id(o->id, err);
}

void crid_shim_options_free(struct crid_shim_options *o)
{
	free(o->runtime_args);
	o->runtime_args = NULL;
	o->n_runtime_args = 0;
}
