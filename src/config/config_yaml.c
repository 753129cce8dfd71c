/* Reads one crid YAML config file into a struct crid_config. Uses libyaml's
 * document API so every node keeps its line, and every error can say
 * "file:line: reason". */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

/* One entry of runtimes; a handler that already exists keeps what this entry
 * does not set, so a drop-in can change one field. */
static int apply_runtime(struct yctx *c, const yaml_node_t *namenode, const yaml_node_t *v)
{
	const char *name = scalar(namenode);
	_cleanup_free_ char *where = NULL;
	const yaml_node_t *pathkey = NULL, *pathnode = NULL;
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
			const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);

			if (strcmp(scalar(k), "path") != 0)
				return yerr(c, k, "%s: unknown key \"%s\"", where, scalar(k));
			pathkey = k;
			pathnode = yaml_document_get_node(c->doc, p->value);
		}
	}
	if (!pathnode) {
		if (crid_config_find_runtime(c->cfg, name))
			return 0;
		return yerr(c, namenode, "%s: path is required", where);
	}
	free(take_ptr(&where));
	if (asprintf(&where, "runtimes.%s.path", name) < 0)
		return crid_err_nomem(c->err, "config key name");
	r = scalar_value(c, pathkey, pathnode, where, &path);
	if (r < 0)
		return r;
	r = crid_config_runtime_set(c->cfg, name, path, c->err);
	if (r < 0)
		return crid_err_wrap(c->err, "%s:%zu: %s: ", c->path, line_of(pathnode), where);
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

		if (strcmp(scalar(k), "runtimes") == 0) {
			r = apply_runtimes(c, v);
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
