/* YAML spec files as JSON (cdi.h): one document through libyaml's loader,
 * then the node graph turned into jansson values, so one validator serves
 * both formats. Aliases are followed, but the depth and the number of
 * values made are bounded: a hostile file cannot nest or multiply its way
 * to unbounded memory. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cdi/cdi.h"
#include "common/cleanup.h"

#define DEPTH_MAX 32
#define VALUES_MAX 100000

struct conv {
	yaml_document_t *doc;
	size_t values;
	struct crid_err *err;
};

static bool is_one_of(const char *s, const char *const *words)
{
	for (; *words; words++) {
		if (strcmp(s, *words) == 0)
			return true;
	}
	return false;
}

/* An integer as YAML 1.1 writes it: [-+]decimal, 0x hex, 0 octal, 0o
 * octal. False when s is not one or overflows. */
static bool parse_int(const char *s, json_int_t *out)
{
	const char *p = s;
	bool neg = false;
	int base = 10;
	char *end;
	long long v;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!*p)
		return false;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	} else if (p[0] == '0' && p[1] == 'o') {
		base = 8;
		p += 2;
	} else if (p[0] == '0' && p[1]) {
		base = 8;
		p += 1;
	}
	if (!*p || strspn(p, base == 16 ? "0123456789abcdefABCDEF" : base == 8 ? "01234567" : "0123456789") !=
			   strlen(p))
		return false;
	errno = 0;
	v = strtoll(p, &end, base);
	if (errno || *end)
		return false;
	*out = neg ? -v : v;
	return true;
}

static json_t *scalar(const yaml_node_t *n)
{
	static const char *const nulls[] = { "null", "Null", "NULL", "~", "", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL };
	const char *s = (const char *)n->data.scalar.value;
	json_int_t i;
	char *end;
	double d;

	if (n->data.scalar.length != strlen(s))
		return NULL; /* a NUL inside: no C string can carry it */
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_string(s);
	if (is_one_of(s, nulls))
		return json_null();
	if (is_one_of(s, trues))
		return json_true();
	if (is_one_of(s, falses))
		return json_false();
	if (parse_int(s, &i))
		return json_integer(i);
	if (strspn(s, "+-0123456789.eE") == strlen(s) && strpbrk(s, "0123456789")) {
		errno = 0;
		d = strtod(s, &end);
		if (!errno && !*end && isfinite(d))
			return json_real(d);
	}
	return json_string(s);
}

static int convert(struct conv *c, const yaml_node_t *n, int depth, json_t **out)
{
	json_auto_t *v = NULL;
	int r;

	*out = NULL;
	if (!n)
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "YAML: a node refers to nothing");
	if (depth > DEPTH_MAX)
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "YAML: nested deeper than %d levels", DEPTH_MAX);
	if (++c->values > VALUES_MAX)
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "YAML: more than %d values", VALUES_MAX);
	switch (n->type) {
	case YAML_SCALAR_NODE:
		v = scalar(n);
		if (!v)
			return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0,
					    "YAML line %zu: a value holds a NUL byte or is not UTF-8",
					    n->start_mark.line + 1);
		break;
	case YAML_SEQUENCE_NODE:
		v = json_array();
		if (!v)
			return crid_err_nomem(c->err, "YAML");
		for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			json_t *item;

			r = convert(c, yaml_document_get_node(c->doc, *i), depth + 1, &item);
			if (r < 0)
				return r;
			if (json_array_append_new(v, item) < 0)
				return crid_err_nomem(c->err, "YAML");
		}
		break;
	case YAML_MAPPING_NODE:
		v = json_object();
		if (!v)
			return crid_err_nomem(c->err, "YAML");
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
			json_t *item;
			const char *key;

			if (!k || k->type != YAML_SCALAR_NODE || k->data.scalar.length != strlen((char *)k->data.scalar.value))
				return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0,
						    "YAML line %zu: a mapping key is not a plain string",
						    n->start_mark.line + 1);
			key = (const char *)k->data.scalar.value;
			if (json_object_get(v, key))
				return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "YAML line %zu: key \"%s\" twice",
						    k->start_mark.line + 1, key);
			r = convert(c, yaml_document_get_node(c->doc, p->value), depth + 1, &item);
			if (r < 0)
				return r;
			if (json_object_set_new(v, key, item) < 0)
				return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0,
						    "YAML line %zu: key \"%s\" is not UTF-8", k->start_mark.line + 1, key);
		}
		break;
	default:
		return crid_err_set(c->err, CRID_INVALID_ARGUMENT, 0, "YAML: an empty node");
	}
	*out = take_ptr(&v);
	return 0;
}

static void parser_deletep(yaml_parser_t *p)
{
	yaml_parser_delete(p);
}

static void document_deletep(yaml_document_t *d)
{
	yaml_document_delete(d);
}

int crid_cdi_yaml_to_json(const char *text, size_t len, json_t **out, struct crid_err *err)
{
	_cleanup_(parser_deletep) yaml_parser_t parser;
	_cleanup_(document_deletep) yaml_document_t doc;
	struct conv c = { &doc, 0, err };
	const yaml_node_t *root;

	*out = NULL;
	memset(&doc, 0, sizeof(doc));
	if (!yaml_parser_initialize(&parser))
		return crid_err_nomem(err, "YAML parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		memset(&doc, 0, sizeof(doc));
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "YAML line %zu: %s", parser.problem_mark.line + 1,
				    parser.problem ? parser.problem : "not YAML");
	}
	root = yaml_document_get_root_node(&doc);
	if (!root)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "YAML: the file is empty");
	return convert(&c, root, 0, out);
}
