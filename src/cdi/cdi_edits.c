/* Container edits (cdi.h): merging the edits of the requested devices into
 * one set, device nodes completed from the host (type, numbers and mode
 * when the spec leaves them out), two devices that want different things
 * for the same variable, path or RDT class refused; then that set applied
 * to config.json. The merged set is JSON:
 *   env [NAME=VALUE], deviceNodes [{path, type, major, minor, fileMode,
 *   uid, gid, permissions}], mounts [OCI mounts], hooks {name: [OCI
 *   hooks]}, additionalGids [gid], intelRdt {...}, owners {what: device}
 * where owners remembers which device brought each item, for messages. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cdi/cdi.h"
#include "common/cleanup.h"

static json_t *member(json_t *o, const char *key, json_t *(*make)(void))
{
	json_t *v = json_object_get(o, key);

	if (v)
		return v;
	v = make();
	if (!v || json_object_set_new(o, key, v) < 0)
		return NULL;
	return v;
}

/* Records owner for what; when another device has it with a different
 * value, the conflict. *dup is true when the same value is already
 * there (nothing to add). */
static int claim(json_t *merged, const char *what, const json_t *value, const json_t *existing, const char *owner,
		 bool *dup, struct crid_err *err)
{
	json_t *owners = member(merged, "owners", json_object);
	const char *other;

	*dup = false;
	if (!owners)
		return crid_err_nomem(err, "CDI edits");
	if (existing) {
		if (json_equal((json_t *)existing, (json_t *)value)) {
			*dup = true;
			return 0;
		}
		other = json_string_value(json_object_get(owners, what));
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "CDI devices %s and %s conflict: they set %s differently", other ? other : "?", owner,
				    what);
	}
	if (json_object_set_new(owners, what, json_string(owner)) < 0)
		return crid_err_nomem(err, "CDI edits");
	return 0;
}

static int merge_env(json_t *merged, const json_t *env, const char *owner, struct crid_err *err)
{
	json_t *out = member(merged, "env", json_array);
	size_t i, k;
	json_t *e, *have;
	int r;

	if (!out)
		return crid_err_nomem(err, "CDI edits");
	json_array_foreach(env, i, e) {
		const char *s = json_string_value(e);
		size_t klen = strcspn(s, "=");
		json_t *existing = NULL;
		char what[300];
		bool dup;

		json_array_foreach(out, k, have) {
			if (strncmp(json_string_value(have), s, klen + 1) == 0)
				existing = have;
		}
		snprintf(what, sizeof(what), "environment variable %.*s", (int)(klen > 200 ? 200 : klen), s);
		if ((r = claim(merged, what, e, existing, owner, &dup, err)) < 0)
			return r;
		if (!dup && json_array_append(out, e) < 0)
			return crid_err_nomem(err, "CDI edits");
	}
	return 0;
}

/* A device node as config.json needs it: what the spec leaves out taken
 * from the host device (hostPath, else path). */
static int complete_node(const json_t *n, json_t **out, struct crid_err *err)
{
	const char *path = json_string_value(json_object_get(n, "path"));
	const char *host = json_string_value(json_object_get(n, "hostPath"));
	const char *type = json_string_value(json_object_get(n, "type"));
	const char *perms = json_string_value(json_object_get(n, "permissions"));
	json_int_t major = json_integer_value(json_object_get(n, "major"));
	json_int_t minor = json_integer_value(json_object_get(n, "minor"));
	json_t *mode = json_is_integer(json_object_get(n, "fileMode")) ? json_object_get(n, "fileMode") : NULL;
	json_auto_t *o = NULL, *host_mode = NULL;
	char t[2] = { 0, 0 };
	struct stat st;
	int bad = 0;

	*out = NULL;
	if (!host || !*host)
		host = path;
	if (type && *type)
		t[0] = type[0];
	/* Type and numbers given (a FIFO has none): the host is not asked. */
	if (!(t[0] && (major != 0 || t[0] == 'p'))) {
		if (stat(host, &st) < 0)
			return crid_err_set(err, CRID_FAILED_PRECONDITION, errno, "device node %s: host device %s", path,
					    host);
		if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISFIFO(st.st_mode))
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "device node %s: %s is not a device", path,
					    host);
		if (!t[0]) {
			t[0] = S_ISBLK(st.st_mode) ? 'b' : S_ISCHR(st.st_mode) ? 'c' : 'p';
		} else if ((t[0] == 'b') != !!S_ISBLK(st.st_mode) || (t[0] == 'p') != !!S_ISFIFO(st.st_mode)) {
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
					    "device node %s: type \"%s\" but host device %s is another type", path, t, host);
		}
		if (t[0] != 'p' && major == 0 && minor == 0) {
			major = major(st.st_rdev);
			minor = minor(st.st_rdev);
		}
		if (!mode)
			host_mode = json_integer(st.st_mode & 07777);
	}
	o = json_object();
	if (!o)
		return crid_err_nomem(err, "CDI device node");
	bad |= json_object_set_new(o, "path", json_string(path));
	bad |= json_object_set_new(o, "type", json_string(t));
	if (t[0] != 'p') {
		bad |= json_object_set_new(o, "major", json_integer(major));
		bad |= json_object_set_new(o, "minor", json_integer(minor));
	}
	if (mode || host_mode)
		bad |= json_object_set(o, "fileMode", mode ? mode : host_mode);
	/* Absent or null: the runtime's default owner. */
	if (json_is_integer(json_object_get(n, "uid")))
		bad |= json_object_set(o, "uid", json_object_get(n, "uid"));
	if (json_is_integer(json_object_get(n, "gid")))
		bad |= json_object_set(o, "gid", json_object_get(n, "gid"));
	bad |= json_object_set_new(o, "permissions", json_string(perms && *perms ? perms : "rwm"));
	if (bad)
		return crid_err_nomem(err, "CDI device node");
	*out = take_ptr(&o);
	return 0;
}

/* Adds item to the list key of merged unless an entry with the same
 * value of id (what names it in messages) is there already. */
static int merge_keyed(json_t *merged, const char *key, json_t *item, const char *id_key, const char *noun,
		       const char *owner, struct crid_err *err)
{
	json_t *out = member(merged, key, json_array);
	const char *id = json_string_value(json_object_get(item, id_key));
	json_t *existing = NULL, *have;
	char what[600];
	size_t i;
	bool dup;
	int r;

	if (!out)
		return crid_err_nomem(err, "CDI edits");
	json_array_foreach(out, i, have) {
		if (strcmp(json_string_value(json_object_get(have, id_key)), id) == 0)
			existing = have;
	}
	snprintf(what, sizeof(what), "%s %.500s", noun, id);
	if ((r = claim(merged, what, item, existing, owner, &dup, err)) < 0)
		return r;
	if (!dup && json_array_append(out, item) < 0)
		return crid_err_nomem(err, "CDI edits");
	return 0;
}

static int merge_nodes(json_t *merged, const json_t *nodes, const char *owner, struct crid_err *err)
{
	size_t i;
	json_t *n;
	int r;

	json_array_foreach(nodes, i, n) {
		json_auto_t *node = NULL;

		if ((r = complete_node(n, &node, err)) < 0)
			return crid_err_wrap(err, "CDI device %s: ", owner);
		if ((r = merge_keyed(merged, "deviceNodes", node, "path", "the device node", owner, err)) < 0)
			return r;
	}
	return 0;
}

static bool has_option(const json_t *options, const char *opt)
{
	size_t i;
	json_t *o;

	json_array_foreach(options, i, o) {
		if (strcmp(json_string_value(o), opt) == 0)
			return true;
	}
	return false;
}

/* A CDI mount as an OCI one: no type means a bind mount, which the
 * runtime recognises by its option. */
static int merge_mounts(json_t *merged, const json_t *mounts, const char *owner, struct crid_err *err)
{
	size_t i;
	json_t *m;
	int r;

	json_array_foreach(mounts, i, m) {
		const char *type = json_string_value(json_object_get(m, "type"));
		const json_t *opts = json_object_get(m, "options");
		json_auto_t *o = json_object();
		json_t *options = json_is_array(opts) ? json_deep_copy(opts) : json_array();
		int bad = 0;

		if (!type || !*type)
			type = "bind";
		if (options && strcmp(type, "bind") == 0 && !has_option(options, "bind") && !has_option(options, "rbind"))
			bad |= json_array_insert_new(options, 0, json_string("rbind"));
		bad |= !o || !options;
		bad |= json_object_set_new(o, "destination", json_string(json_string_value(json_object_get(m, "containerPath"))));
		bad |= json_object_set_new(o, "type", json_string(type));
		bad |= json_object_set_new(o, "source", json_string(json_string_value(json_object_get(m, "hostPath"))));
		bad |= json_object_set_new(o, "options", options);
		if (bad)
			return crid_err_nomem(err, "CDI mount");
		if ((r = merge_keyed(merged, "mounts", o, "destination", "the mount at", owner, err)) < 0)
			return r;
	}
	return 0;
}

/* Hooks add up: the same hook brought twice (a spec's own edits, by two
 * of its devices) runs once. */
static int merge_hooks(json_t *merged, const json_t *hooks, const char *owner, struct crid_err *err)
{
	json_t *out = member(merged, "hooks", json_object);
	size_t i, k;
	json_t *h, *have;

	if (!out)
		return crid_err_nomem(err, "CDI edits");
	json_array_foreach(hooks, i, h) {
		json_auto_t *o = json_object();
		json_t *list = member(out, json_string_value(json_object_get(h, "hookName")), json_array);
		bool dup = false;
		int bad = 0;

		if (!o || !list)
			return crid_err_nomem(err, "CDI hook");
		bad |= json_object_set(o, "path", json_object_get(h, "path"));
		if (json_array_size(json_object_get(h, "args")))
			bad |= json_object_set(o, "args", json_object_get(h, "args"));
		if (json_array_size(json_object_get(h, "env")))
			bad |= json_object_set(o, "env", json_object_get(h, "env"));
		if (json_integer_value(json_object_get(h, "timeout")) > 0)
			bad |= json_object_set(o, "timeout", json_object_get(h, "timeout"));
		if (bad)
			return crid_err_nomem(err, "CDI hook");
		json_array_foreach(list, k, have)
			dup |= json_equal(have, o);
		if (!dup && json_array_append(list, o) < 0)
			return crid_err_nomem(err, "CDI hook");
	}
	return 0;
}

static int merge_gids(json_t *merged, const json_t *gids, struct crid_err *err)
{
	json_t *out = member(merged, "additionalGids", json_array);
	size_t i, k;
	json_t *g, *have;

	if (!out)
		return crid_err_nomem(err, "CDI edits");
	json_array_foreach(gids, i, g) {
		bool dup = json_integer_value(g) == 0; /* root's group: nothing to add */

		json_array_foreach(out, k, have)
			dup |= json_integer_value(have) == json_integer_value(g);
		if (!dup && json_array_append(out, g) < 0)
			return crid_err_nomem(err, "CDI edits");
	}
	return 0;
}

int crid_cdi_edits_merge(json_t *merged, const json_t *e, const char *owner, struct crid_err *err)
{
	const json_t *rdt = json_object_get(e, "intelRdt");
	int r;

	if (!e)
		return 0;
	if ((r = merge_env(merged, json_object_get(e, "env"), owner, err)) < 0 ||
	    (r = merge_nodes(merged, json_object_get(e, "deviceNodes"), owner, err)) < 0 ||
	    (r = merge_mounts(merged, json_object_get(e, "mounts"), owner, err)) < 0 ||
	    (r = merge_hooks(merged, json_object_get(e, "hooks"), owner, err)) < 0 ||
	    (r = merge_gids(merged, json_object_get(e, "additionalGids"), err)) < 0)
		return r;
	if (json_is_object(rdt)) {
		json_auto_t *set = json_object();
		const char *key;
		json_t *v;
		bool dup;

		/* Null members are unset ones: the runtime is not shown them. */
		if (!set)
			return crid_err_nomem(err, "CDI edits");
		json_object_foreach((json_t *)rdt, key, v) {
			if (!json_is_null(v) && json_object_set(set, key, v) < 0)
				return crid_err_nomem(err, "CDI edits");
		}
		r = claim(merged, "intelRdt", set, json_object_get(merged, "intelRdt"), owner, &dup, err);
		if (r < 0)
			return r;
		if (!dup && json_object_set(merged, "intelRdt", set) < 0)
			return crid_err_nomem(err, "CDI edits");
	}
	return 0;
}

/* ---- config.json ---- */

static json_t *path_object(json_t *root, const char *a, const char *b)
{
	json_t *o = member(root, a, json_object);

	return o && b ? member(o, b, json_object) : o;
}

static int apply_env(const json_t *env, json_t *process)
{
	json_t *out = member(process, "env", json_array);
	size_t i, k;
	json_t *e, *have;

	if (!out)
		return -ENOMEM;
	json_array_foreach(env, i, e) {
		const char *s = json_string_value(e);
		size_t klen = strcspn(s, "=");
		bool replaced = false;

		json_array_foreach(out, k, have) {
			if (!replaced && strncmp(json_string_value(have), s, klen + 1) == 0) {
				if (json_array_set(out, k, e) < 0)
					return -ENOMEM;
				replaced = true;
			}
		}
		if (!replaced && json_array_append(out, e) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Replaces the entries of list whose key equals item's, else appends. */
static int put_keyed(json_t *list, json_t *item, const char *key)
{
	const char *id = json_string_value(json_object_get(item, key));
	size_t i;
	json_t *have;

	for (i = json_array_size(list); i-- > 0;) {
		have = json_array_get(list, i);
		if (json_is_string(json_object_get(have, key)) &&
		    strcmp(json_string_value(json_object_get(have, key)), id) == 0 && json_array_remove(list, i) < 0)
			return -ENOMEM;
	}
	return json_array_append(list, item);
}

static int apply_nodes(const json_t *nodes, json_t *linux)
{
	json_t *devices = member(linux, "devices", json_array);
	json_t *rules = json_object_get(path_object(linux, "resources", NULL), "devices");
	size_t i;
	json_t *n;

	if (!devices)
		return -ENOMEM;
	if (!rules && (rules = member(path_object(linux, "resources", NULL), "devices", json_array)) == NULL)
		return -ENOMEM;
	json_array_foreach(nodes, i, n) {
		json_auto_t *d = json_deep_copy(n);
		const char *type = json_string_value(json_object_get(n, "type"));
		json_t *rule;

		if (!d || json_object_del(d, "permissions") < 0 || put_keyed(devices, d, "path") < 0)
			return -ENOMEM;
		if (strcmp(type, "p") == 0)
			continue; /* no device cgroup rule for a FIFO */
		rule = json_pack("{s:b, s:s, s:O, s:O, s:O}", "allow", 1, "type", strcmp(type, "b") == 0 ? "b" : "c",
				 "major", json_object_get(n, "major"), "minor", json_object_get(n, "minor"), "access",
				 json_object_get(n, "permissions"));
		if (json_array_append_new(rules, rule) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int apply_hooks(const json_t *hooks, json_t *spec)
{
	json_t *out = path_object(spec, "hooks", NULL);
	const char *name;
	json_t *list;

	if (!out)
		return -ENOMEM;
	json_object_foreach((json_t *)hooks, name, list) {
		json_t *dst = member(out, name, json_array);

		if (!dst || json_array_extend(dst, list) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int apply_gids(const json_t *gids, json_t *process)
{
	json_t *user = path_object(process, "user", NULL);
	json_t *out = user ? member(user, "additionalGids", json_array) : NULL;
	size_t i, k;
	json_t *g, *have;

	if (!out)
		return -ENOMEM;
	json_array_foreach(gids, i, g) {
		bool dup = false;

		json_array_foreach(out, k, have)
			dup |= json_integer_value(have) == json_integer_value(g);
		if (!dup && json_array_append(out, g) < 0)
			return -ENOMEM;
	}
	return 0;
}

int crid_cdi_apply(const json_t *edits, json_t *spec, struct crid_err *err)
{
	json_t *process, *linux, *mounts, *m;
	size_t i;

	if (!edits)
		return 0;
	process = path_object(spec, "process", NULL);
	linux = path_object(spec, "linux", NULL);
	mounts = member(spec, "mounts", json_array);
	if (!process || !linux || !mounts)
		return crid_err_nomem(err, "CDI edits");
	if (apply_env(json_object_get(edits, "env"), process) < 0 ||
	    apply_nodes(json_object_get(edits, "deviceNodes"), linux) < 0 ||
	    apply_hooks(json_object_get(edits, "hooks"), spec) < 0 ||
	    apply_gids(json_object_get(edits, "additionalGids"), process) < 0)
		return crid_err_nomem(err, "CDI edits");
	/* A CDI mount replaces one at the same destination. */
	json_array_foreach(json_object_get(edits, "mounts"), i, m) {
		if (put_keyed(mounts, m, "destination") < 0)
			return crid_err_nomem(err, "CDI mounts");
	}
	if (json_object_get(edits, "intelRdt") &&
	    json_object_set(linux, "intelRdt", json_object_get(edits, "intelRdt")) < 0)
		return crid_err_nomem(err, "CDI intelRdt");
	return 0;
}
