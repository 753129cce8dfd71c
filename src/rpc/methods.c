/* The method table of methods.h, built from the CRI service descriptors that
 * protoc-c generated, so every CRI method is known from the start. */
#include "rpc/methods.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"

#include "runtime/v1/api.pb-c.h"

struct crid_rpc_service {
	const ProtobufCServiceDescriptor *desc;
	struct crid_rpc_method *methods; /* in desc->methods order */
};

struct crid_rpc_methods {
	struct crid_rpc_service services[2];
};

static const char *const api_versions[] = { "v1", "v1alpha2" };

int crid_rpc_methods_new(struct crid_rpc_methods **out, struct crid_err *err)
{
	const ProtobufCServiceDescriptor *descs[] = {
		&runtime__v1__runtime_service__descriptor,
		&runtime__v1__image_service__descriptor,
	};
	struct crid_rpc_methods *m = calloc(1, sizeof(*m));

	if (!m)
		return crid_err_nomem(err, "method table");
	for (size_t s = 0; s < 2; s++) {
		const ProtobufCServiceDescriptor *d = descs[s];

		m->services[s].desc = d;
		m->services[s].methods = calloc(d->n_methods, sizeof(struct crid_rpc_method));
		if (!m->services[s].methods) {
			crid_rpc_methods_free(m);
			return crid_err_nomem(err, "method table");
		}
		for (unsigned i = 0; i < d->n_methods; i++) {
			m->services[s].methods[i].service = d->short_name;
			m->services[s].methods[i].name = d->methods[i].name;
			m->services[s].methods[i].input = d->methods[i].input;
		}
	}
	*out = m;
	return 0;
}

void crid_rpc_methods_free(struct crid_rpc_methods *m)
{
	if (!m)
		return;
	for (size_t s = 0; s < 2; s++)
		free(m->services[s].methods);
	free(m);
}

static struct crid_rpc_method *lookup(const struct crid_rpc_methods *m, const char *service, size_t service_len,
				      const char *name)
{
	for (size_t s = 0; s < 2; s++) {
		const ProtobufCServiceDescriptor *d = m->services[s].desc;
		const ProtobufCMethodDescriptor *md;

		if (strlen(d->short_name) != service_len || memcmp(d->short_name, service, service_len) != 0)
			continue;
		md = protobuf_c_service_descriptor_get_method_by_name(d, name);
		if (!md)
			return NULL;
		return &m->services[s].methods[md - d->methods];
	}
	return NULL;
}

int crid_rpc_methods_register(struct crid_rpc_methods *m, const char *service, const char *name,
			      crid_rpc_handler handler, void *data, struct crid_err *err)
{
	struct crid_rpc_method *method = lookup(m, service, strlen(service), name);

	if (!method)
		return crid_err_set(err, CRID_INTERNAL, ENOENT, "register %s/%s: no such CRI method", service, name);
	method->handler = handler;
	method->data = data;
	return 0;
}

int crid_rpc_methods_run_on_loop(struct crid_rpc_methods *m, const char *service, const char *name,
				 struct crid_err *err)
{
	struct crid_rpc_method *method = lookup(m, service, strlen(service), name);

	if (!method || !method->handler)
		return crid_err_set(err, CRID_INTERNAL, ENOENT, "run %s/%s on the loop: no handler", service, name);
	method->on_loop = true;
	return 0;
}

const struct crid_rpc_method *crid_rpc_methods_find(const struct crid_rpc_methods *m, const char *path,
						    size_t path_len, const char **api_version)
{
	char name[128];
	const char *rest = NULL, *slash;
	size_t rest_len = 0;

	for (size_t v = 0; v < CRID_ARRAY_SIZE(api_versions); v++) {
		char prefix[32];
		int n = snprintf(prefix, sizeof(prefix), "/runtime.%s.", api_versions[v]);

		if (n > 0 && path_len > (size_t)n && memcmp(path, prefix, (size_t)n) == 0) {
			rest = path + n;
			rest_len = path_len - (size_t)n;
			*api_version = api_versions[v];
			break;
		}
	}
	if (!rest)
		return NULL;
	slash = memchr(rest, '/', rest_len);
	if (!slash)
		return NULL;
	if ((size_t)(rest + rest_len - slash - 1) >= sizeof(name) || memchr(slash + 1, '/', (size_t)(rest + rest_len - slash - 1)))
		return NULL;
	memcpy(name, slash + 1, (size_t)(rest + rest_len - slash - 1));
	name[rest + rest_len - slash - 1] = '\0';
	return lookup(m, rest, (size_t)(slash - rest), name);
}

int crid_rpc_methods_register_all(struct crid_rpc_methods *m, const char *service,
				  const struct crid_rpc_handler_entry *entries, size_t n, void *data,
				  struct crid_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int r = crid_rpc_methods_register(m, service, entries[i].name, entries[i].fn, data, err);

		if (r < 0)
			return r;
	}
	return 0;
}
