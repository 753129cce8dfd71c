/* The fixture shared by the oci_spec test programs: a container config as
 * the kubelet sends one, and jansson helpers to read the built spec. */
#ifndef CRID_TESTS_OCI_SPEC_FIXTURE_H
#define CRID_TESTS_OCI_SPEC_FIXTURE_H

/* Each program uses some of the helpers. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

/* ---- fixture: a container config as the kubelet sends one ---- */

struct fx {
	Runtime__V1__ContainerConfig c;
	Runtime__V1__ContainerMetadata md;
	Runtime__V1__LinuxContainerConfig lc;
	Runtime__V1__LinuxContainerSecurityContext sc;
	Runtime__V1__LinuxContainerResources res;
	Runtime__V1__Capability caps;
	Runtime__V1__NamespaceOption nsopt;
	Runtime__V1__LinuxPodSandboxConfig pod;
	Runtime__V1__LinuxSandboxSecurityContext psc;
	Runtime__V1__Mount m[4], *mp[4];
	Runtime__V1__Device d[2], *dp[2];
	Runtime__V1__KeyValue kv[4], *kvp[4];
	struct crid_image_defaults img;
	struct crid_user_ids user;
	struct crid_spec_host host;
	struct crid_spec_input in;
};

static char *img_ep[] = { "/entry" };
static char *img_cmd[] = { "serve", "--port=80" };
static char *img_env[] = { "PATH=/img/bin", "A=1", "B=2" };
static uint32_t user_gids[] = { 10, 20 };

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	runtime__v1__container_config__init(&f->c);
	runtime__v1__container_metadata__init(&f->md);
	runtime__v1__linux_container_config__init(&f->lc);
	runtime__v1__linux_container_security_context__init(&f->sc);
	runtime__v1__linux_container_resources__init(&f->res);
	runtime__v1__capability__init(&f->caps);
	runtime__v1__namespace_option__init(&f->nsopt);
	runtime__v1__linux_pod_sandbox_config__init(&f->pod);
	runtime__v1__linux_sandbox_security_context__init(&f->psc);
	for (size_t i = 0; i < CRID_ARRAY_SIZE(f->m); i++) {
		runtime__v1__mount__init(&f->m[i]);
		f->mp[i] = &f->m[i];
	}
	for (size_t i = 0; i < CRID_ARRAY_SIZE(f->d); i++) {
		runtime__v1__device__init(&f->d[i]);
		f->dp[i] = &f->d[i];
	}
	for (size_t i = 0; i < CRID_ARRAY_SIZE(f->kv); i++) {
		runtime__v1__key_value__init(&f->kv[i]);
		f->kvp[i] = &f->kv[i];
	}
	f->md.name = "web";
	f->c.metadata = &f->md;
	f->c.linux = &f->lc;
	f->lc.security_context = &f->sc;
	f->lc.resources = &f->res;
	f->sc.namespace_options = &f->nsopt;
	f->pod.security_context = &f->psc;
	f->c.mounts = f->mp;
	f->c.devices = f->dp;
	f->c.envs = f->kvp;

	f->img.entrypoint = img_ep;
	f->img.n_entrypoint = 1;
	f->img.cmd = img_cmd;
	f->img.n_cmd = 2;
	f->img.env = img_env;
	f->img.n_env = 3;
	f->img.working_dir = "/app";
	f->img.user = "";
	f->user.uid = 1000;
	f->user.gid = 1000;
	f->user.additional_gids = user_gids;
	f->user.n_additional_gids = 2;

	f->in.container_id = "c1";
	f->in.rootfs = "/run/crid/containers/c1/rootfs";
	f->in.hostname = "pod-1";
	f->in.hosts_file = "/run/crid/pods/p1/hosts";
	f->in.resolv_conf_file = "/run/crid/pods/p1/resolv.conf";
	f->in.hostname_file = "/run/crid/pods/p1/hostname";
	f->in.shm_path = "/run/crid/pods/p1/shm";
	f->in.cgroups_path = "/kubepods/podu1/c1";
	f->in.ns.network = "/run/crid/pods/p1/ns/net";
	f->in.ns.ipc = "/run/crid/pods/p1/ns/ipc";
	f->in.ns.uts = "/run/crid/pods/p1/ns/uts";
	f->in.image = &f->img;
	f->in.config = &f->c;
	f->in.pod_linux = &f->pod;
	f->in.user = &f->user;
	/* This machine, with what tests set about it fixed. */
	crid_spec_host_probe(&f->host);
	f->host.oom_floor = 0;
	f->host.held_caps = (UINT64_C(1) << 41) - 1;
	f->host.apparmor = f->host.apparmor_default = f->host.selinux = false;
	f->in.host = &f->host;
}

static void set_env(struct fx *f, size_t i, const char *key, const char *value)
{
	f->kv[i].key = (char *)key;
	f->kv[i].value.data = (uint8_t *)value;
	f->kv[i].value.len = strlen(value);
	if (f->c.n_envs < i + 1)
		f->c.n_envs = i + 1;
}

static Runtime__V1__Mount *add_mount(struct fx *f, const char *cpath, const char *hpath)
{
	Runtime__V1__Mount *m = &f->m[f->c.n_mounts++];

	m->container_path = (char *)cpath;
	m->host_path = (char *)hpath;
	return m;
}

static json_t *build_ok(struct fx *f)
{
	struct crid_err e = { 0 };
	json_t *j = NULL;
	int r = crid_spec_build(&f->in, &j, &e);

	ck_assert_msg(r == 0, "crid_spec_build: %d %s", r, e.msg);
	ck_assert_ptr_nonnull(j);
	return j;
}

static void build_fails(struct fx *f, int status, const char *needle)
{
	struct crid_err e = { 0 };
	json_t *j = NULL;
	int r = crid_spec_build(&f->in, &j, &e);

	ck_assert_msg(r < 0, "expected a failure with \"%s\"", needle);
	ck_assert_ptr_null(j);
	ck_assert_msg(e.status == status, "status %s, want %s (%s)", crid_status_name(e.status),
		      crid_status_name(status), e.msg);
	ck_assert_msg(strstr(e.msg, needle) != NULL, "message \"%s\" does not name \"%s\"", e.msg, needle);
}

/* "process.user.uid": object keys separated by dots. */
static json_t *jget(json_t *j, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
		j = json_object_get(j, k);
	return j;
}

static bool arr_has(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

static void assert_strv(json_t *a, const char *const *want, size_t n)
{
	ck_assert_msg(json_is_array(a), "not an array");
	ck_assert_uint_eq(json_array_size(a), n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(json_string_value(json_array_get(a, i)), want[i]);
}

static json_t *find_mount(json_t *spec, const char *dest)
{
	size_t i;
	json_t *m, *found = NULL;
	int count = 0;

	json_array_foreach(json_object_get(spec, "mounts"), i, m) {
		if (strcmp(json_string_value(json_object_get(m, "destination")), dest) == 0) {
			found = m;
			count++;
		}
	}
	ck_assert_msg(count <= 1, "%d mounts at %s", count, dest);
	return found;
}

static bool mount_opt(json_t *m, const char *opt)
{
	return arr_has(json_object_get(m, "options"), opt);
}

static json_t *find_ns(json_t *spec, const char *type)
{
	size_t i;
	json_t *n;

	json_array_foreach(jget(spec, "linux.namespaces"), i, n) {
		if (strcmp(json_string_value(json_object_get(n, "type")), type) == 0)
			return n;
	}
	return NULL;
}

static json_int_t jint(json_t *j, const char *path)
{
	json_t *v = jget(j, path);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", path);
	return json_integer_value(v);
}

static const char *jstr(json_t *j, const char *path)
{
	json_t *v = jget(j, path);

	ck_assert_msg(json_is_string(v), "%s is not a string", path);
	return json_string_value(v);
}


static void assert_gids(json_t *j, const json_int_t *want, size_t n)
{
	json_t *a = jget(j, "process.user.additionalGids");

	ck_assert_uint_eq(json_array_size(a), n);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(json_integer_value(json_array_get(a, i)), want[i]);
}

#endif
