/* Spec files (cdi.h): the CDI JSON specification, versions 0.3.0 to 0.8.0,
 * checked field by field. As the reference loader does, an unknown field
 * and a field newer than the file's cdiVersion are refused: a file meant
 * for a newer runtime must not be half understood. Pure: the host is only
 * looked at when edits are merged (cdi_edits.c). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cdi/cdi.h"
#include "common/cleanup.h"

#define VERSION_MIN 3 /* 0.3.0 */
#define VERSION_MAX 8 /* 0.8.0 */
#define NAME_MAX_LEN 253
#define LIST_MAX 4096

/* What a field is and from which minor version of 0.x it exists. */
enum kind { K_STRING, K_ABS_PATH, K_UINT32, K_INT64, K_BOOL, K_STRINGS, K_ENV, K_GIDS, K_OBJECT, K_ARRAY, K_MAP };

struct field {
	const char *name;
	enum kind kind;
	int since; /* minor version */
	bool required;
};

struct ctx {
	int version; /* minor */
	struct crid_err *err;
};

static int bad(struct ctx *c, const char *where, const char *what)
{
	return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "%s: %s", where, what);
}

static int bad_field(struct ctx *c, const char *where, const char *field, const char *what)
{
	return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "%s.%s: %s", where, field, what);
}

static bool env_ok(const char *s)
{
	const char *eq = strchr(s, '=');

	return eq && eq != s;
}

/* Checks o against fields: every key known, new enough, of its kind;
 * required ones present. Objects, arrays and maps are checked by the
 * caller (K_MAP: strings to strings, checked here). */
static int check_fields(struct ctx *c, const char *where, const json_t *o, const struct field *fields, size_t n)
{
	const char *key;
	json_t *v;
	char path[512];

	if (!json_is_object(o))
		return bad(c, where, "expected an object");
	json_object_foreach((json_t *)o, key, v) {
		const struct field *f = NULL;

		for (size_t i = 0; i < n && !f; i++)
			f = strcmp(fields[i].name, key) == 0 ? &fields[i] : NULL;
		snprintf(path, sizeof(path), "%s.%s", where, key);
		if (!f)
			return bad(c, path, "unknown field");
		if (c->version < f->since) {
			return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "%s: needs cdiVersion 0.%d.0 or later", path,
					    f->since);
		}
		if (json_is_null(v) && !f->required)
			continue;
		switch (f->kind) {
		case K_STRING:
			if (!json_is_string(v))
				return bad(c, path, "expected a string");
			break;
		case K_ABS_PATH:
			if (!json_is_string(v) || json_string_value(v)[0] != '/')
				return bad(c, path, "expected an absolute path");
			break;
		case K_UINT32:
			if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
				return bad(c, path, "expected an integer from 0 to 4294967295");
			break;
		case K_INT64:
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				return bad(c, path, "expected a non-negative integer");
			break;
		case K_BOOL:
			if (!json_is_boolean(v))
				return bad(c, path, "expected true or false");
			break;
		case K_STRINGS:
		case K_ENV:
		case K_GIDS: {
			size_t i;
			json_t *item;

			if (!json_is_array(v) || json_array_size(v) > LIST_MAX)
				return bad(c, path, "expected a list (of at most 4096)");
			json_array_foreach(v, i, item) {
				if (f->kind == K_GIDS ? !json_is_integer(item) || json_integer_value(item) < 0 ||
								json_integer_value(item) > UINT32_MAX
						      : !json_is_string(item))
					return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "%s[%zu]: expected %s", path,
							    i, f->kind == K_GIDS ? "a group ID" : "a string");
				if (f->kind == K_ENV && !env_ok(json_string_value(item)))
					return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0,
							    "%s[%zu]: \"%s\" is not NAME=VALUE", path, i,
							    json_string_value(item));
			}
			break;
		}
		case K_OBJECT:
			if (!json_is_object(v))
				return bad(c, path, "expected an object");
			break;
		case K_ARRAY:
			if (!json_is_array(v) || json_array_size(v) > LIST_MAX)
				return bad(c, path, "expected a list (of at most 4096)");
			break;
		case K_MAP: {
			const char *k;
			json_t *s;

			if (!json_is_object(v))
				return bad(c, path, "expected a map of strings");
			json_object_foreach(v, k, s) {
				if (!json_is_string(s))
					return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "%s.%s: expected a string",
							    path, k);
			}
			break;
		}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (fields[i].required && !json_object_get(o, fields[i].name)) {
			snprintf(path, sizeof(path), "%s.%s", where, fields[i].name);
			return bad(c, path, "is missing");
		}
	}
	return 0;
}

/* ---- names ---- */

/* first: letters (and digits when digit_first); then letters, digits and
 * the characters of middle; last a letter or digit. */
static bool name_ok(const char *s, size_t len, bool digit_first, const char *middle)
{
	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	if (!(isalpha((unsigned char)s[0]) || (digit_first && isdigit((unsigned char)s[0]))))
		return false;
	if (!isalnum((unsigned char)s[len - 1]))
		return false;
	for (size_t i = 1; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && !strchr(middle, s[i]))
			return false;
	}
	return true;
}

static bool vendor_ok(const char *s, size_t len)
{
	return name_ok(s, len, false, "-_.");
}

static bool class_ok(const char *s, size_t len)
{
	return name_ok(s, len, false, "-_.");
}

static bool device_name_ok(const char *s)
{
	return s[0] && name_ok(s, strlen(s), true, "-_.:");
}

static int check_kind(struct ctx *c, const char *kind)
{
	const char *slash = strchr(kind, '/');
	const char *cls = slash ? slash + 1 : "";

	if (!slash || !vendor_ok(kind, (size_t)(slash - kind)) || !class_ok(cls, strlen(cls)))
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0,
				    "kind: \"%s\" is not vendor/class (vendor a domain-like name, class letters, digits, "
				    "'-', '_')",
				    kind);
	if (strchr(cls, '.') && c->version < 6)
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "kind: a '.' in the class needs cdiVersion 0.6.0");
	return 0;
}

int crid_cdi_parse_qualified(const char *qualified, char *buf, const char **kind, const char **name,
			     struct crid_err *err)
{
	char *slash, *eq;

	strcpy(buf, qualified);
	slash = strchr(buf, '/');
	eq = strchr(buf, '=');
	if (!slash || !eq || eq < slash || !vendor_ok(buf, (size_t)(slash - buf)) ||
	    !class_ok(slash + 1, (size_t)(eq - slash - 1)) || !device_name_ok(eq + 1))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "CDI device \"%.300s\" is not a fully-qualified name (vendor.com/class=name)", qualified);
	*eq = '\0';
	*kind = buf;
	*name = eq + 1;
	return 0;
}

/* ---- container edits ---- */

static const struct field edit_fields[] = {
	{ "env", K_ENV, 3, false },	     { "deviceNodes", K_ARRAY, 3, false },
	{ "hooks", K_ARRAY, 3, false },	     { "mounts", K_ARRAY, 3, false },
	{ "intelRdt", K_OBJECT, 7, false },  { "additionalGids", K_GIDS, 7, false },
};

static const struct field node_fields[] = {
	{ "path", K_ABS_PATH, 3, true },  { "hostPath", K_ABS_PATH, 5, false }, { "type", K_STRING, 3, false },
	{ "major", K_INT64, 3, false },	  { "minor", K_INT64, 3, false },	{ "fileMode", K_UINT32, 3, false },
	{ "permissions", K_STRING, 3, false }, { "uid", K_UINT32, 3, false },	{ "gid", K_UINT32, 3, false },
};

static const struct field hook_fields[] = {
	{ "hookName", K_STRING, 3, true }, { "path", K_ABS_PATH, 3, true }, { "args", K_STRINGS, 3, false },
	{ "env", K_ENV, 3, false },	   { "timeout", K_INT64, 3, false },
};

static const struct field mount_fields[] = {
	{ "hostPath", K_STRING, 3, true },
	{ "containerPath", K_ABS_PATH, 3, true },
	{ "type", K_STRING, 4, false },
	{ "options", K_STRINGS, 3, false },
};

static const struct field rdt_fields[] = {
	{ "closID", K_STRING, 7, false },      { "l3CacheSchema", K_STRING, 7, false },
	{ "memBwSchema", K_STRING, 7, false }, { "enableCMT", K_BOOL, 7, false },
	{ "enableMBM", K_BOOL, 7, false },
};

static const char *const hook_names[] = { "prestart",	     "createRuntime", "createContainer",
					  "startContainer", "poststart",     "poststop" };

static bool hook_name_ok(const char *name)
{
	for (size_t i = 0; i < CRID_ARRAY_SIZE(hook_names); i++) {
		if (strcmp(name, hook_names[i]) == 0)
			return true;
	}
	return false;
}

static int check_node(struct ctx *c, const char *where, const json_t *n)
{
	const char *type, *perms;
	int r = check_fields(c, where, n, node_fields, CRID_ARRAY_SIZE(node_fields));

	if (r < 0)
		return r;
	type = json_string_value(json_object_get(n, "type"));
	if (type && *type && strcmp(type, "b") && strcmp(type, "c") && strcmp(type, "u") && strcmp(type, "p")) {
		return bad_field(c, where, "type", "expected \"b\", \"c\", \"u\" or \"p\"");
	}
	perms = json_string_value(json_object_get(n, "permissions"));
	if (perms && strspn(perms, "rwm") != strlen(perms)) {
		return bad_field(c, where, "permissions", "only r, w and m are allowed");
	}
	if (json_integer_value(json_object_get(n, "fileMode")) > 07777) {
		return bad_field(c, where, "fileMode", "more than permission bits (07777)");
	}
	return 0;
}

static int check_hook(struct ctx *c, const char *where, const json_t *h)
{
	int r = check_fields(c, where, h, hook_fields, CRID_ARRAY_SIZE(hook_fields));

	if (r < 0)
		return r;
	if (!hook_name_ok(json_string_value(json_object_get(h, "hookName")))) {
		return bad_field(c, where, "hookName",
			   "expected prestart, createRuntime, createContainer, startContainer, poststart or poststop");
	}
	return 0;
}

static int check_mount(struct ctx *c, const char *where, const json_t *m)
{
	int r = check_fields(c, where, m, mount_fields, CRID_ARRAY_SIZE(mount_fields));

	if (r < 0)
		return r;
	if (!*json_string_value(json_object_get(m, "hostPath"))) {
		return bad_field(c, where, "hostPath", "is empty");
	}
	return 0;
}

static int check_rdt(struct ctx *c, const char *where, const json_t *o)
{
	const char *clos;
	int r = check_fields(c, where, o, rdt_fields, CRID_ARRAY_SIZE(rdt_fields));

	if (r < 0)
		return r;
	/* A directory name in resctrl, nothing more. */
	clos = json_string_value(json_object_get(o, "closID"));
	if (clos && (strchr(clos, '/') || strcmp(clos, ".") == 0 || strcmp(clos, "..") == 0 || strlen(clos) > 255))
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "%s.closID: \"%s\" is not a directory name", where,
				    clos);
	return 0;
}

typedef int (*item_check)(struct ctx *c, const char *where, const json_t *item);

static int check_list(struct ctx *c, const char *where, const json_t *edits, const char *key, item_check check)
{
	const json_t *list = json_object_get(edits, key);
	char path[512];
	size_t i;
	json_t *item;
	int r;

	json_array_foreach(list, i, item) {
		snprintf(path, sizeof(path), "%s.%s[%zu]", where, key, i);
		if ((r = check(c, path, item)) < 0)
			return r;
	}
	return 0;
}

static bool edits_empty(const json_t *e)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)e, key, v) {
		if (json_is_object(v) || json_array_size(v) > 0)
			return false;
	}
	return true;
}

static int check_edits(struct ctx *c, const char *where, const json_t *e)
{
	int r;

	if ((r = check_fields(c, where, e, edit_fields, CRID_ARRAY_SIZE(edit_fields))) < 0 ||
	    (r = check_list(c, where, e, "deviceNodes", check_node)) < 0 ||
	    (r = check_list(c, where, e, "hooks", check_hook)) < 0 ||
	    (r = check_list(c, where, e, "mounts", check_mount)) < 0)
		return r;
	if (json_is_object(json_object_get(e, "intelRdt"))) {
		char path[512];

		snprintf(path, sizeof(path), "%s.intelRdt", where);
		return check_rdt(c, path, json_object_get(e, "intelRdt"));
	}
	return 0;
}

/* ---- the spec ---- */

static const struct field spec_fields[] = {
	{ "cdiVersion", K_STRING, 0, true },	 { "kind", K_STRING, 0, true },
	{ "annotations", K_MAP, 6, false },	 { "devices", K_ARRAY, 0, true },
	{ "containerEdits", K_OBJECT, 0, false },
};

static const struct field device_fields[] = {
	{ "name", K_STRING, 3, true },
	{ "annotations", K_MAP, 6, false },
	{ "containerEdits", K_OBJECT, 3, true },
};

/* "0.N.P" with N from 3 to 8: N; -1 otherwise. */
static int parse_version(const char *v)
{
	char *end;
	long minor;

	if (strncmp(v, "0.", 2) != 0 || !isdigit((unsigned char)v[2]))
		return -1;
	minor = strtol(v + 2, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]) || strspn(end + 1, "0123456789") != strlen(end + 1) ||
	    strlen(end + 1) > 3)
		return -1;
	return minor >= VERSION_MIN && minor <= VERSION_MAX ? (int)minor : -1;
}

static int check_spec(struct ctx *c, const json_t *spec)
{
	const json_t *version = json_object_get(spec, "cdiVersion");
	const json_t *devices;
	size_t i;
	json_t *d;
	int r;

	if (!json_is_object(spec))
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "the spec is not an object");
	if (!json_is_string(version))
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "cdiVersion: %s",
				    version ? "expected a string" : "is missing");
	c->version = parse_version(json_string_value(version));
	if (c->version < 0)
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "cdiVersion: \"%.40s\" is not one of 0.3.0 to 0.8.0",
				    json_string_value(version));
	if ((r = check_fields(c, "spec", spec, spec_fields, CRID_ARRAY_SIZE(spec_fields))) < 0)
		return r;
	if ((r = check_kind(c, json_string_value(json_object_get(spec, "kind")))) < 0)
		return r;
	devices = json_object_get(spec, "devices");
	if (json_array_size(devices) == 0)
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "devices: the spec defines no device");
	json_array_foreach(devices, i, d) {
		char where[64];
		const char *name;

		snprintf(where, sizeof(where), "devices[%zu]", i);
		if ((r = check_fields(c, where, d, device_fields, CRID_ARRAY_SIZE(device_fields))) < 0)
			return r;
		name = json_string_value(json_object_get(d, "name"));
		if (!device_name_ok(name))
			return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0,
					    "%s.name: \"%.300s\" is not a device name (letters, digits, '-', '_', '.', ':')",
					    where, name);
		if (isdigit((unsigned char)name[0]) && c->version < 5)
			return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0,
					    "%s.name: a leading digit needs cdiVersion 0.5.0", where);
		for (size_t k = 0; k < i; k++) {
			if (strcmp(json_string_value(json_object_get(json_array_get(devices, k), "name")), name) == 0)
				return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "%s.name: \"%s\" is defined twice",
						    where, name);
		}
		strncat(where, ".containerEdits", sizeof(where) - strlen(where) - 1);
		if ((r = check_edits(c, where, json_object_get(d, "containerEdits"))) < 0)
			return r;
		if (edits_empty(json_object_get(d, "containerEdits")))
			return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "%s: no edits", where);
	}
	/* Optional: absent or null is none. */
	if (json_object_get(spec, "containerEdits") && !json_is_null(json_object_get(spec, "containerEdits")))
		return check_edits(c, "containerEdits", json_object_get(spec, "containerEdits"));
	return 0;
}

int crid_cdi_spec_parse(const char *text, size_t len, bool yaml, json_t **spec, struct crid_err *err)
{
	json_auto_t *doc = NULL;
	struct ctx c = { 0, err };
	json_error_t jerr;
	int r;

	*spec = NULL;
	if (yaml) {
		r = crid_cdi_yaml_to_json(text, len, &doc, err);
		if (r < 0)
			return r;
	} else {
		doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
		if (!doc)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "JSON line %d: %s", jerr.line, jerr.text);
	}
	r = check_spec(&c, doc);
	if (r < 0)
		return r;
	*spec = take_ptr(&doc);
	return 0;
}
