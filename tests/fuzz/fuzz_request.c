/* libFuzzer target: every CRI request message, as a client may send it,
 * through what crid does before a handler acts: the string checks on the
 * wire (rpc/proto_check.c), decoding, and the validation of what the
 * request carries (pod and container configs, OCI spec building, resource
 * updates, image references). The first byte picks the method. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/reference.h"
#include "oci/oci_spec.h"
#include "pod/pod_ns.h"
#include "rpc/proto_check.h"
#include "runtime/objects.h"
#include "runtime/v1/api.pb-c.h"

static const ProtobufCServiceDescriptor *const services[] = {
	&runtime__v1__runtime_service__descriptor,
	&runtime__v1__image_service__descriptor,
};

static const ProtobufCMessageDescriptor *method_input(uint8_t pick)
{
	unsigned n = 0;

	for (size_t i = 0; i < 2; i++)
		n += services[i]->n_methods;
	pick %= n;
	for (size_t i = 0; i < 2; i++) {
		if (pick < services[i]->n_methods)
			return services[i]->methods[pick].input;
		pick -= services[i]->n_methods;
	}
	return NULL;
}

static void check_pod(const Runtime__V1__PodSandboxConfig *c)
{
	struct crid_err err;

	if (!c)
		return;
	crid_pod_metadata_check(c, &err);
	crid_pod_list_weight(c, "");
	if (c->hostname)
		crid_pod_ns_check_hostname(c->hostname, &err);
	if (c->dns_config) {
		char *text = NULL;
		size_t len;

		if (crid_pod_ns_render_resolv(c->dns_config, &text, &len, &err) == 0)
			free(text);
	}
	for (size_t i = 0; c->linux && i < c->linux->n_sysctls; i++) {
		char *path = NULL;

		if (crid_pod_ns_sysctl_path(c->linux->sysctls[i]->key, false, false, &path, &err) == 0)
			free(path);
	}
}

static void check_container(const Runtime__V1__ContainerConfig *c, const Runtime__V1__PodSandboxConfig *pod)
{
	static char *cmd[] = { "/bin/sh", NULL };
	static char *env[] = { "PATH=/bin", NULL };
	const Runtime__V1__LinuxContainerSecurityContext *sc = c && c->linux ? c->linux->security_context : NULL;
	struct crid_image_defaults image = { .cmd = cmd, .n_cmd = 1, .env = env, .n_env = 1, .user = "" };
	struct crid_user_ids user = { 0 };
	struct crid_spec_input in = {
		.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		.rootfs = "/nonexistent/rootfs",
		.cgroups_path = "/crid-fuzz/ctr",
		.image = &image,
		.user = &user,
	};
	struct crid_err err;
	json_t *spec = NULL;

	if (!c)
		return;
	crid_container_metadata_check(c, &err);
	crid_container_list_weight(c);
	if (sc && sc->run_as_username && *sc->run_as_username) {
		struct crid_user_ids ids;

		if (crid_spec_resolve_user(sc->run_as_username, "root:x:0:0::/:/bin/sh\n", "root:x:0:\n", &ids,
					   &err) == 0)
			crid_user_ids_free(&ids);
	}
	/* A privileged container's spec walks the host's /dev: not per input. */
	if (sc && sc->privileged)
		return;
	in.config = c;
	in.pod_linux = pod ? pod->linux : NULL;
	if (crid_spec_build(&in, &spec, &err) == 0)
		json_decref(spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *desc;
	ProtobufCMessage *msg;
	struct crid_err err;

	if (size < 1)
		return 0;
	desc = method_input(data[0]);
	if (crid_proto_check_strings(desc, data + 1, size - 1, &err) < 0)
		return 0;
	msg = protobuf_c_message_unpack(desc, NULL, size - 1, data + 1);
	if (!msg)
		return 0;
	if (desc == &runtime__v1__run_pod_sandbox_request__descriptor) {
		check_pod(((Runtime__V1__RunPodSandboxRequest *)msg)->config);
	} else if (desc == &runtime__v1__create_container_request__descriptor) {
		const Runtime__V1__CreateContainerRequest *r = (const void *)msg;

		check_container(r->config, r->sandbox_config);
	} else if (desc == &runtime__v1__update_container_resources_request__descriptor) {
		const Runtime__V1__UpdateContainerResourcesRequest *r = (const void *)msg;
		static struct crid_spec_host host;
		static bool probed;
		json_t *res = NULL;

		if (!probed) {
			crid_spec_host_probe(&host);
			probed = true;
		}
		if (r->linux && crid_spec_resources(r->linux, &host, &res, &err) == 0)
			json_decref(res);
	} else if (desc == &runtime__v1__pull_image_request__descriptor) {
		const Runtime__V1__PullImageRequest *r = (const void *)msg;
		struct crid_image_ref ref;

		if (r->image && r->image->image && crid_image_ref_parse(r->image->image, &ref, &err) == 0)
			crid_image_ref_free(&ref);
	}
	/* What passed the checks holds no NUL: C strings are whole. */
	{
		size_t len = protobuf_c_message_get_packed_size(msg);
		uint8_t *again = malloc(len ? len : 1);

		if (again) {
			protobuf_c_message_pack(msg, again);
			if (len != size - 1 && crid_proto_check_strings(desc, again, len, &err) < 0)
				abort();
			free(again);
		}
	}
	protobuf_c_message_free_unpacked(msg, NULL);
	return 0;
}
