/* Reads one crid YAML config file into a struct crid_config. Uses libyaml's
 * document API so every node keeps its line, and every error can say
 * "file:line: reason". */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "common/cleanup.h"
#include "config/config_internal.h"

struct yctx {
	const char *path;
	yaml_document_t *doc;
	struct crid_config *cfg;
	struct crid_err *err;
};

static void parser_deletep(yaml_parser_t *p)
{
	yaml_parser_delete(p);
}

static void document_deletep(yaml_document_t *d)
{
	yaml_document_delete(d);
}

static size_t line_of(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

static int yerr(struct yctx *c, const yaml_node_t *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int yerr(struct yctx *c, const yaml_node_t *at, const char *fmt, ...)
{
	char reason[CRID_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "%s:%zu: %s", c->path, line_of(at),
			    reason);
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* "key:" with nothing after it, or ~ / null. */
static bool is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < CRID_ARRAY_SIZE(nulls); i++)
		if (strcmp(scalar(n), nulls[i]) == 0)
			return true;
	return false;
}

static const char *kind_of(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return is_null(n) ? "nothing" : "a single value";
	}
}

/* The value of a setting; where names it in messages ("socket",
 * "runtimes.crun.path"). keynode is blamed when the value is missing, as a
 * null value's own mark may be on the next line. */
static int scalar_value(struct yctx *c, const yaml_node_t *keynode, const yaml_node_t *v,
			const char *where, const char **out)
{
	if (is_null(v))
		return yerr(c, keynode, "%s: needs a value", where);
	if (v->type != YAML_SCALAR_NODE)
		return yerr(c, v, "%s: expected a single value, found %s", where, kind_of(v));
	if (strlen(scalar(v)) != v->data.scalar.length)
		return yerr(c, v, "%s: value holds a NUL byte", where);
	*out = scalar(v);
	return 0;
}

/* Keys must be scalars, and unique: libyaml keeps duplicates, and silently
 * taking the last one would hide a mistake. where is NULL at the top level. */
static int check_keys(struct yctx *c, const yaml_node_t *map, const char *where)
{
	const char *pre = where ? where : "";
	const char *sep = where ? ": " : "";

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);

		if (k->type != YAML_SCALAR_NODE)
			return yerr(c, k, "%s%skeys must be names, found %s", pre, sep, kind_of(k));
		if (strlen(scalar(k)) != k->data.scalar.length)
			return yerr(c, k, "%s%skey holds a NUL byte", pre, sep);
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			const yaml_node_t *prev = yaml_document_get_node(c->doc, q->key);

			if (prev->type == YAML_SCALAR_NODE && strcmp(scalar(prev), scalar(k)) == 0)
				return yerr(c, k, "%s%sduplicate key \"%s\" (first at line %zu)", pre, sep,
					    scalar(k), line_of(prev));
		}
	}
	return 0;
}

static int ywrap(struct yctx *c, const yaml_node_t *at, const char *where)
{
	return crid_err_wrap(c->err, "%s:%zu: %s: ", c->path, line_of(at), where);
}

/* Sets *out to a message's name for a setting ("registries[docker.io].ca_file"). */
static int name_of(struct yctx *c, char **out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int name_of(struct yctx *c, char **out, const char *fmt, ...)
{
	va_list ap;
	int n;

	free(*out);
	va_start(ap, fmt);
	n = vasprintf(out, fmt, ap);
	va_end(ap);
	if (n < 0) {
		*out = NULL;
		return crid_err_nomem(c->err, "config key name");
	}
	return 0;
}

/* The value of key in map (whose keys check_keys accepted), and its key
 * node; NULL when map lacks the key. */
static const yaml_node_t *lookup(struct yctx *c, const yaml_node_t *map, const char *key,
				 const yaml_node_t **keynode)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);

		if (strcmp(scalar(k), key) == 0) {
			if (keynode)
				*keynode = k;
			return yaml_document_get_node(c->doc, p->value);
		}
	}
	return NULL;
}

static int check_known_keys(struct yctx *c, const yaml_node_t *map, const char *const *keys,
			    size_t n, const char *where)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		size_t i = 0;

		while (i < n && strcmp(scalar(k), keys[i]) != 0)
			i++;
		if (i == n)
			return yerr(c, k, "%s: unknown key \"%s\"", where, scalar(k));
	}
	return 0;
}

/* YAML 1.2's booleans; not 1.1's yes/no/on/off, which surprise people. */
static int bool_value(struct yctx *c, const yaml_node_t *keynode, const yaml_node_t *v,
		      const char *where, bool *out)
{
	static const char *const trues[] = { "true", "True", "TRUE" };
	static const char *const falses[] = { "false", "False", "FALSE" };
	const char *value;
	int r;

	r = scalar_value(c, keynode, v, where, &value);
	if (r < 0)
		return r;
	for (size_t i = 0; i < CRID_ARRAY_SIZE(trues); i++) {
		if (strcmp(value, trues[i]) == 0 || strcmp(value, falses[i]) == 0) {
			*out = strcmp(value, trues[i]) == 0;
			return 0;
		}
	}
	return yerr(c, v, "%s: \"%s\" is not true or false", where, value);
}

/* runtimes.NAME.runtime_args: a list of flags. */
static int runtime_args_value(struct yctx *c, const char *name, const char *where, const yaml_node_t *list)
{
	_cleanup_free_ char **args = NULL;
	size_t n = 0;
	int r;

	if (list->type != YAML_SEQUENCE_NODE)
		return yerr(c, list, "%s: expected a list of flags, found %s", where, kind_of(list));
	args = calloc((size_t)(list->data.sequence.items.top - list->data.sequence.items.start) + 1, sizeof(*args));
	if (!args)
		return crid_err_nomem(c->err, "runtime arguments");
	for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top; i++) {
		const yaml_node_t *item = yaml_document_get_node(c->doc, *i);
		const char *v;

		r = scalar_value(c, item, item, where, &v);
		if (r < 0)
			return r;
		args[n++] = (char *)v;
	}
	r = crid_config_runtime_set_args(c->cfg, name, args, n, c->err);
	return r < 0 ? ywrap(c, list, where) : 0;
}

/* One entry of runtimes; a handler that already exists keeps what this entry
 * does not set, so a drop-in can change one field. */
static int apply_runtime(struct yctx *c, const yaml_node_t *namenode, const yaml_node_t *v)
{
	static const char *const keys[] = { "path", "sandbox_per_pod", "runtime_args", "root" };
	const char *name = scalar(namenode);
	_cleanup_free_ char *where = NULL;
	const yaml_node_t *pathkey = NULL, *pathnode = NULL, *k, *node;
	const char *path;
	int r;

	r = crid_config_check_runtime_name(name, c->err);
	if (r < 0)
		return crid_err_wrap(c->err, "%s:%zu: runtimes: ", c->path, line_of(namenode));
	if (asprintf(&where, "runtimes.%s", name) < 0)
		return crid_err_nomem(c->err, "config key name");
	if (!is_null(v)) {
		if (v->type != YAML_MAPPING_NODE)
			return yerr(c, v, "%s: expected a mapping with a path, found %s", where,
				    kind_of(v));
		r = check_keys(c, v, where);
		if (r < 0)
			return r;
		for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
		     p++) {
			bool known = false;

			k = yaml_document_get_node(c->doc, p->key);
			for (size_t i = 0; i < CRID_ARRAY_SIZE(keys); i++)
				known = known || strcmp(scalar(k), keys[i]) == 0;
			if (!known)
				return yerr(c, k, "%s: unknown key \"%s\" (known: path, sandbox_per_pod, runtime_args, "
					    "root)", where, scalar(k));
		}
		pathnode = lookup(c, v, "path", &pathkey);
	}
	if (!pathnode) {
		if (!crid_config_find_runtime(c->cfg, name))
			return yerr(c, namenode, "%s: path is required", where);
	} else {
		r = name_of(c, &where, "runtimes.%s.path", name);
		if (r == 0)
			r = scalar_value(c, pathkey, pathnode, where, &path);
		if (r < 0)
			return r;
		r = crid_config_runtime_set(c->cfg, name, path, c->err);
		if (r < 0)
			return crid_err_wrap(c->err, "%s:%zu: %s: ", c->path, line_of(pathnode), where);
	}
	if (is_null(v))
		return 0;
	if ((node = lookup(c, v, "sandbox_per_pod", &k))) {
		bool b;

		if ((r = name_of(c, &where, "runtimes.%s.sandbox_per_pod", name)) < 0 ||
		    (r = bool_value(c, k, node, where, &b)) < 0)
			return r;
		if ((r = crid_config_runtime_set_sandbox(c->cfg, name, b, c->err)) < 0)
			return ywrap(c, node, where);
	}
	if ((node = lookup(c, v, "runtime_args", &k))) {
		if ((r = name_of(c, &where, "runtimes.%s.runtime_args", name)) < 0 ||
		    (r = runtime_args_value(c, name, where, node)) < 0)
			return r;
	}
	if ((node = lookup(c, v, "root", &k))) {
		const char *root;

		if ((r = name_of(c, &where, "runtimes.%s.root", name)) < 0 ||
		    (r = scalar_value(c, k, node, where, &root)) < 0)
			return r;
		if ((r = crid_config_runtime_set_root(c->cfg, name, root, c->err)) < 0)
			return ywrap(c, node, where);
	}
	return 0;
}

static int apply_runtimes(struct yctx *c, const yaml_node_t *map)
{
	int r;

	/* "runtimes:" with every entry commented out adds nothing. */
	if (is_null(map))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return yerr(c, map, "runtimes: expected a mapping of handler names, found %s",
			    kind_of(map));
	r = check_keys(c, map, "runtimes");
	if (r < 0)
		return r;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		r = apply_runtime(c, yaml_document_get_node(c->doc, p->key),
				  yaml_document_get_node(c->doc, p->value));
		if (r < 0)
			return r;
	}
	return 0;
}

/* Each file's pinned_images add to the list the files before it built. */
static int apply_pinned_images(struct yctx *c, const yaml_node_t *list)
{
	int r;

	if (is_null(list))
		return 0;
	if (list->type != YAML_SEQUENCE_NODE)
		return yerr(c, list, "pinned_images: expected a list of image references, found %s",
			    kind_of(list));
	for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top;
	     i++) {
		const yaml_node_t *item = yaml_document_get_node(c->doc, *i);
		const char *ref;

		r = scalar_value(c, item, item, "pinned_images", &ref);
		if (r < 0)
			return r;
		/* Items before this one are scalars: they were checked. */
		for (yaml_node_item_t *j = list->data.sequence.items.start; j < i; j++) {
			const yaml_node_t *prev = yaml_document_get_node(c->doc, *j);

			if (strcmp(scalar(prev), ref) == 0)
				return yerr(c, item,
					    "pinned_images: duplicate image \"%s\" (first at line %zu)", ref,
					    line_of(prev));
		}
		r = crid_config_pin_image(c->cfg, ref, c->err);
		if (r < 0)
			return ywrap(c, item, "pinned_images");
	}
	return 0;
}

static const char *const mirror_keys[] = { "url", "ca_file" };

/* One entry of a mirrors list, appended to *mirrors. */
static int read_mirror(struct yctx *c, const char *where, const yaml_node_t *m,
		       struct crid_registry_mirror **mirrors, size_t *n)
{
	const yaml_node_t *urlkey = NULL, *urlnode, *cakey = NULL, *canode;
	_cleanup_free_ char *field = NULL;
	const char *url, *ca_file = NULL;
	int r;

	if (m->type != YAML_MAPPING_NODE)
		return yerr(c, m, "%s: expected a mapping with a url, found %s", where, kind_of(m));
	r = check_keys(c, m, where);
	if (r < 0)
		return r;
	r = check_known_keys(c, m, mirror_keys, CRID_ARRAY_SIZE(mirror_keys), where);
	if (r < 0)
		return r;
	urlnode = lookup(c, m, "url", &urlkey);
	if (!urlnode)
		return yerr(c, m, "%s: url is required", where);
	r = name_of(c, &field, "%s.url", where);
	if (r < 0)
		return r;
	r = scalar_value(c, urlkey, urlnode, field, &url);
	if (r < 0)
		return r;
	r = crid_config_check_mirror_url(url, c->err);
	if (r < 0)
		return ywrap(c, urlnode, field);
	canode = lookup(c, m, "ca_file", &cakey);
	if (canode) {
		r = name_of(c, &field, "%s.ca_file", where);
		if (r < 0)
			return r;
		r = scalar_value(c, cakey, canode, field, &ca_file);
		if (r < 0)
			return r;
		r = crid_config_check_ca_file(ca_file, c->err);
		if (r < 0)
			return ywrap(c, canode, field);
	}
	r = crid_config_mirror_add(mirrors, n, url, ca_file, c->err);
	if (r < 0)
		return ywrap(c, m, where);
	return 0;
}

/* A registry's mirrors, read whole: a file gives the list, it does not add to
 * an earlier file's. Null or [] is no mirror. */
static int read_mirrors(struct yctx *c, const char *label, const yaml_node_t *list,
			struct crid_registry_mirror **mirrors, size_t *n)
{
	_cleanup_free_ char *where = NULL;
	_cleanup_free_ char *item_where = NULL;
	size_t idx = 0;
	int r;

	if (is_null(list))
		return 0;
	r = name_of(c, &where, "%s.mirrors", label);
	if (r < 0)
		return r;
	if (list->type != YAML_SEQUENCE_NODE)
		return yerr(c, list, "%s: expected a list of mirrors, found %s", where, kind_of(list));
	for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top;
	     i++, idx++) {
		const yaml_node_t *m = yaml_document_get_node(c->doc, *i);
		const yaml_node_t *url;

		r = name_of(c, &item_where, "%s[%zu]", where, idx);
		if (r < 0)
			return r;
		r = read_mirror(c, item_where, m, mirrors, n);
		if (r < 0)
			return r;
		url = lookup(c, m, "url", NULL);
		for (yaml_node_item_t *j = list->data.sequence.items.start; j < i; j++) {
			const yaml_node_t *prev =
				lookup(c, yaml_document_get_node(c->doc, *j), "url", NULL);

			if (strcmp(scalar(prev), scalar(url)) == 0)
				return yerr(c, url, "%s: duplicate mirror \"%s\" (first at line %zu)",
					    where, scalar(url), line_of(prev));
		}
	}
	return 0;
}

static int set_mirrors(struct yctx *c, const char *label, const yaml_node_t *v,
		       struct crid_registry_config *reg)
{
	struct crid_registry_mirror *mirrors = NULL;
	size_t n = 0;
	int r;

	r = read_mirrors(c, label, v, &mirrors, &n);
	if (r < 0) {
		crid_config_mirrors_free(mirrors, n);
		return r;
	}
	crid_config_mirrors_free(reg->mirrors, reg->n_mirrors);
	reg->mirrors = mirrors;
	reg->n_mirrors = n;
	return 0;
}

static const char *const registry_keys[] = { "host", "insecure", "ca_file", "mirrors",
					     "mirrors_only" };

/* The fields of a registries entry other than host. */
static int apply_registry_fields(struct yctx *c, const char *label, const yaml_node_t *e,
				 struct crid_registry_config *reg)
{
	const yaml_node_t *blame = e;
	_cleanup_free_ char *where = NULL;
	const char *value;
	int r;

	for (yaml_node_pair_t *p = e->data.mapping.pairs.start; p < e->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = scalar(k);

		if (strcmp(key, "host") == 0)
			continue;
		r = name_of(c, &where, "%s.%s", label, key);
		if (r < 0)
			return r;
		if (strcmp(key, "insecure") == 0) {
			r = bool_value(c, k, v, where, &reg->insecure);
		} else if (strcmp(key, "mirrors_only") == 0) {
			r = bool_value(c, k, v, where, &reg->mirrors_only);
			blame = k;
		} else if (strcmp(key, "ca_file") == 0) {
			r = scalar_value(c, k, v, where, &value);
			if (r >= 0 && crid_config_registry_set_ca(reg, value, c->err) < 0)
				r = ywrap(c, v, where);
		} else {
			r = set_mirrors(c, label, v, reg);
			if (blame == e)
				blame = k;
		}
		if (r < 0)
			return r;
	}
	/* Blames mirrors_only when this entry set it, else the mirrors it
	 * emptied: an earlier file's entry was checked. */
	if (reg->mirrors_only && reg->n_mirrors == 0)
		return yerr(c, blame, "%s: mirrors_only needs at least one mirror", label);
	return 0;
}

/* One entry of registries. An entry for a host an earlier file listed
 * changes only the fields it gives, so a drop-in can change one. */
static int apply_registry(struct yctx *c, const yaml_node_t *list, const yaml_node_item_t *item)
{
	const yaml_node_t *e = yaml_document_get_node(c->doc, *item);
	const yaml_node_t *hostkey = NULL, *hostnode;
	_cleanup_free_ char *label = NULL;
	struct crid_registry_config *reg;
	const char *host = NULL;
	int r;

	if (e->type != YAML_MAPPING_NODE)
		return yerr(c, e, "registries: expected a mapping with a host, found %s", kind_of(e));
	r = check_keys(c, e, "registries");
	if (r < 0)
		return r;
	hostnode = lookup(c, e, "host", &hostkey);
	if (hostnode) {
		r = scalar_value(c, hostkey, hostnode, "registries.host", &host);
		if (r < 0)
			return r;
		r = crid_config_check_registry_host(host, c->err);
		if (r < 0)
			return ywrap(c, hostnode, "registries.host");
		/* Entries before this one are mappings with a valid host. */
		for (const yaml_node_item_t *j = list->data.sequence.items.start; j < item; j++) {
			const yaml_node_t *prev =
				lookup(c, yaml_document_get_node(c->doc, *j), "host", NULL);

			if (strcasecmp(scalar(prev), host) == 0)
				return yerr(c, hostnode,
					    "registries: duplicate host \"%s\" (first at line %zu)", host,
					    line_of(prev));
		}
		r = name_of(c, &label, "registries[%s]", host);
	} else {
		r = name_of(c, &label, "registries");
	}
	if (r < 0)
		return r;
	/* Before "host is required": a misspelt "hots" is the likelier cause. */
	r = check_known_keys(c, e, registry_keys, CRID_ARRAY_SIZE(registry_keys), label);
	if (r < 0)
		return r;
	if (!hostnode)
		return yerr(c, e, "registries: host is required");
	r = crid_config_registry_get(c->cfg, host, &reg, c->err);
	if (r < 0)
		return ywrap(c, hostnode, "registries.host");
	return apply_registry_fields(c, label, e, reg);
}

static int apply_registries(struct yctx *c, const yaml_node_t *list)
{
	int r;

	/* "registries:" with every entry commented out adds nothing. */
	if (is_null(list))
		return 0;
	if (list->type != YAML_SEQUENCE_NODE)
		return yerr(c, list, "registries: expected a list of registries, found %s",
			    kind_of(list));
	for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top;
	     i++) {
		r = apply_registry(c, list, i);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A file's cni_bin_dirs replace the list before it: directories are
 * searched in order, so adding to the end would rarely be what is meant. */
static int apply_cni_bin_dirs(struct yctx *c, const yaml_node_t *list)
{
	_cleanup_free_ const char **dirs = NULL;
	size_t n = 0;
	int r;

	if (list->type != YAML_SEQUENCE_NODE)
		return yerr(c, list, "cni_bin_dirs: expected a list of directories, found %s", kind_of(list));
	dirs = calloc((size_t)(list->data.sequence.items.top - list->data.sequence.items.start) + 1,
		      sizeof(*dirs));
	if (!dirs)
		return crid_err_nomem(c->err, "cni_bin_dirs");
	for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top;
	     i++) {
		const yaml_node_t *item = yaml_document_get_node(c->doc, *i);

		r = scalar_value(c, item, item, "cni_bin_dirs", &dirs[n]);
		if (r < 0)
			return r;
		r = crid_config_check_cni_bin_dir(dirs[n], c->err);
		if (r < 0)
			return ywrap(c, item, "cni_bin_dirs");
		n++;
	}
	r = crid_config_set_cni_bin_dirs(c->cfg, dirs, n, c->err);
	if (r < 0)
		return ywrap(c, list, "cni_bin_dirs");
	return 0;
}

/* Like cni_bin_dirs, but the list may be empty: no CDI. */
static int apply_cdi_spec_dirs(struct yctx *c, const yaml_node_t *list)
{
	_cleanup_free_ const char **dirs = NULL;
	size_t n = 0;
	int r;

	if (list->type != YAML_SEQUENCE_NODE)
		return yerr(c, list, "cdi_spec_dirs: expected a list of directories, found %s", kind_of(list));
	dirs = calloc((size_t)(list->data.sequence.items.top - list->data.sequence.items.start) + 1,
		      sizeof(*dirs));
	if (!dirs)
		return crid_err_nomem(c->err, "cdi_spec_dirs");
	for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top;
	     i++) {
		const yaml_node_t *item = yaml_document_get_node(c->doc, *i);

		r = scalar_value(c, item, item, "cdi_spec_dirs", &dirs[n]);
		if (r < 0)
			return r;
		r = crid_config_check_cni_bin_dir(dirs[n], c->err);
		if (r < 0)
			return ywrap(c, item, "cdi_spec_dirs");
		n++;
	}
	r = crid_config_set_cdi_spec_dirs(c->cfg, dirs, n, c->err);
	if (r < 0)
		return ywrap(c, list, "cdi_spec_dirs");
	return 0;
}

/* The top-level keys whose values are not single values. */
static const struct {
	const char *key;
	int (*apply)(struct yctx *c, const yaml_node_t *v);
} structured[] = {
	{ "runtimes", apply_runtimes },
	{ "pinned_images", apply_pinned_images },
	{ "registries", apply_registries },
	{ "cni_bin_dirs", apply_cni_bin_dirs },
	{ "cdi_spec_dirs", apply_cdi_spec_dirs },
};

static int apply_root(struct yctx *c, const yaml_node_t *root)
{
	int r;

	/* A file of comments only, or a bare "~", changes nothing. */
	if (is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return yerr(c, root, "expected a mapping of settings, found %s", kind_of(root));
	r = check_keys(c, root, NULL);
	if (r < 0)
		return r;
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const struct crid_setting *s;
		const char *value;
		size_t i = 0;

		while (i < CRID_ARRAY_SIZE(structured) && strcmp(scalar(k), structured[i].key) != 0)
			i++;
		if (i < CRID_ARRAY_SIZE(structured)) {
			r = structured[i].apply(c, v);
			if (r < 0)
				return r;
			continue;
		}
		s = crid_config_setting_by_key(scalar(k));
		if (!s)
			return yerr(c, k, "unknown key \"%s\"", scalar(k));
		r = scalar_value(c, k, v, s->key, &value);
		if (r < 0)
			return r;
		r = crid_config_setting_apply(c->cfg, s, value, c->err);
		if (r < 0)
			return crid_err_wrap(c->err, "%s:%zu: %s: ", c->path, line_of(v), s->key);
	}
	return 0;
}

/* The line of a reader error (bad encoding), which libyaml gives only as a
 * byte offset. */
static size_t line_at_offset(FILE *f, size_t offset)
{
	size_t line = 1;
	int ch;

	if (fseek(f, 0, SEEK_SET) < 0)
		return 0;
	for (size_t i = 0; i < offset && (ch = getc(f)) != EOF; i++)
		if (ch == '\n')
			line++;
	return line;
}

static int syntax_error(const char *path, const yaml_parser_t *p, FILE *f, struct crid_err *err)
{
	size_t line;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return crid_err_nomem(err, "YAML document");
	case YAML_READER_ERROR:
		line = line_at_offset(f, p->problem_offset);
		break;
	default:
		line = p->problem_mark.line + 1;
		break;
	}
	/* The context names where the construct that went wrong began, often
	 * lines before the problem ("while parsing a flow sequence"). */
	if (p->context)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "%s:%zu: invalid YAML: %s (%s at line %zu)", path, line,
				    p->problem ? p->problem : "syntax error", p->context,
				    p->context_mark.line + 1);
	return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s:%zu: invalid YAML: %s", path, line,
			    p->problem ? p->problem : "syntax error");
}

int crid_config_read_yaml(struct crid_config *cfg, const char *path, FILE *f,
			  struct crid_err *err)
{
	_cleanup_(parser_deletep) yaml_parser_t parser = { 0 };
	_cleanup_(document_deletep) yaml_document_t doc = { 0 };
	_cleanup_(document_deletep) yaml_document_t next = { 0 };
	struct yctx c = { .path = path, .doc = &doc, .cfg = cfg, .err = err };
	const yaml_node_t *root, *next_root;
	int r;

	if (!yaml_parser_initialize(&parser))
		return crid_err_nomem(err, "YAML parser");
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc))
		return syntax_error(path, &parser, f, err);
	root = yaml_document_get_root_node(&doc);
	if (!root)
		return 0; /* an empty file */
	r = apply_root(&c, root);
	if (r < 0)
		return r;
	/* A second document after "---" would otherwise be silently ignored. */
	if (!yaml_parser_load(&parser, &next))
		return syntax_error(path, &parser, f, err);
	next_root = yaml_document_get_root_node(&next);
	if (next_root)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "%s:%zu: only one YAML document is allowed", path,
				    line_of(next_root));
	return 0;
}
