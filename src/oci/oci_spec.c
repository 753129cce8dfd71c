/* config.json for a container (OCI runtime spec 1.0.2, as runc 1.1 and crun
 * 1.8 read it), with containerd's CRI plugin as the reference for what a
 * Kubernetes container gets by default. This file: the whole document and
 * its process and namespaces; mounts, capabilities, seccomp, AppArmor and
 * SELinux, resources, devices and users are in oci_spec_*.c. Left out on
 * purpose:
 *   - sysctls: the pod sets them in the namespaces it pins, which every
 *     container joins;
 *   - a cgroup namespace: none on a cgroup v1 host, as containerd and
 *     Docker do there. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define NOFILE_LIMIT 1048576 /* containerd's and Docker's default */

int crid_spec_process_args(const struct crid_image_defaults *image, const Runtime__V1__ContainerConfig *config,
			   char ***argv, size_t *argc, struct crid_err *err)
{
	char *const *ep = NULL, *const *cmd = NULL;
	size_t n_ep = 0, n_cmd = 0, n, size;
	bool has_command = config && config->n_command > 0;
	char **v, *p;

	*argv = NULL;
	*argc = 0;
	if (has_command) {
		ep = config->command;
		n_ep = config->n_command;
	} else if (image && !(image->n_entrypoint == 1 && image->entrypoint[0][0] == '\0')) {
		/* ENTRYPOINT [""] in a Dockerfile resets the entrypoint. */
		ep = image->entrypoint;
		n_ep = image->n_entrypoint;
	}
	if (config && config->n_args > 0) {
		cmd = config->args;
		n_cmd = config->n_args;
	} else if (!has_command && image) {
		cmd = image->cmd;
		n_cmd = image->n_cmd;
	}
	n = n_ep + n_cmd;
	if (n == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "command: no command given and the image has none");

	/* One allocation: the NULL-terminated array, then the strings. */
	size = (n + 1) * sizeof(char *);
	for (size_t i = 0; i < n; i++)
		size += strlen(i < n_ep ? ep[i] : cmd[i - n_ep]) + 1;
	v = malloc(size);
	if (!v)
		return crid_err_nomem(err, "process arguments");
	p = (char *)(v + n + 1);
	for (size_t i = 0; i < n; i++) {
		const char *s = i < n_ep ? ep[i] : cmd[i - n_ep];
		size_t len = strlen(s) + 1;

		v[i] = memcpy(p, s, len);
		p += len;
	}
	v[n] = NULL;
	if (v[0][0] == '\0') {
		free(v);
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s[0] is empty",
				    has_command ? "command" : n_ep ? "the image's entrypoint" : "args");
	}
	*argv = v;
	*argc = n;
	return 0;
}

/* ---- environment ---- */

struct envv {
	char **v;
	size_t n, cap;
};

static void envv_free(struct envv *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
}

/* Takes entry ("KEY=VALUE"): replaces the variable of the same name in
 * place, or appends it; "KEY" without '=' unsets it (containerd's rule). */
static int env_put(struct envv *e, char *entry)
{
	size_t klen = strcspn(entry, "=");
	bool unset = entry[klen] == '\0';

	if (klen == 0) {
		free(entry); /* "=x": no name, nothing to set */
		return 0;
	}
	for (size_t i = 0; i < e->n; i++) {
		if (strncmp(e->v[i], entry, klen) != 0 || e->v[i][klen] != '=')
			continue;
		free(e->v[i]);
		if (unset) {
			free(entry);
			memmove(&e->v[i], &e->v[i + 1], (e->n - i - 1) * sizeof(char *));
			e->n--;
		} else {
			e->v[i] = entry;
		}
		return 0;
	}
	if (unset) {
		free(entry);
		return 0;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		char **grown = realloc(e->v, cap * sizeof(char *));

		if (!grown) {
			free(entry);
			return -ENOMEM;
		}
		e->v = grown;
		e->cap = cap;
	}
	e->v[e->n++] = entry;
	return 0;
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		uint32_t cp;

		if (len == 0 || i + len > n || (len == 2 && c < 0xc2))
			return false;
		cp = len == 1 ? c : c & (0x7f >> len);
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += len;
	}
	return true;
}

static int build_env(const struct crid_spec_input *in, const char *hostname, json_t **out, struct crid_err *err)
{
	_cleanup_(envv_free) struct envv e = { 0 };
	const Runtime__V1__ContainerConfig *c = in->config;
	json_auto_t *a = NULL;
	char *s;
	int bad = 0;

	/* containerd's order: PATH, HOSTNAME, the image's, the config's. */
	s = strdup(DEFAULT_PATH);
	if (!s || env_put(&e, s) < 0)
		return crid_err_nomem(err, "process.env");
	if (asprintf(&s, "HOSTNAME=%s", hostname) < 0 || env_put(&e, s) < 0)
		return crid_err_nomem(err, "process.env");
	for (size_t i = 0; in->image && i < in->image->n_env; i++) {
		s = strdup(in->image->env[i]);
		if (!s || env_put(&e, s) < 0)
			return crid_err_nomem(err, "process.env");
	}
	for (size_t i = 0; i < c->n_envs; i++) {
		const Runtime__V1__KeyValue *kv = c->envs[i];
		const char *key = kv->key ? kv->key : "";
		size_t klen = strlen(key);

		if (klen == 0 || strchr(key, '=') || !utf8_valid((const uint8_t *)key, klen))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "envs[%zu].key \"%s\" is %s", i, key,
					    klen == 0 ? "empty" : strchr(key, '=') ? "not a name (has '=')" : "not UTF-8");
		if (kv->value.len && memchr(kv->value.data, '\0', kv->value.len))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "envs[%zu].value of %s has a NUL byte", i,
					    key);
		if (!utf8_valid(kv->value.data, kv->value.len))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "envs[%zu].value of %s is not UTF-8", i,
					    key);
		s = malloc(klen + 1 + kv->value.len + 1);
		if (!s)
			return crid_err_nomem(err, "process.env");
		memcpy(s, key, klen);
		s[klen] = '=';
		if (kv->value.len)
			memcpy(s + klen + 1, kv->value.data, kv->value.len);
		s[klen + 1 + kv->value.len] = '\0';
		if (env_put(&e, s) < 0)
			return crid_err_nomem(err, "process.env");
	}
	a = json_array();
	if (!a)
		return crid_err_nomem(err, "process.env");
	for (size_t i = 0; i < e.n; i++)
		bad |= json_array_append_new(a, json_string(e.v[i]));
	if (bad)
		return crid_err_nomem(err, "process.env");
	*out = take_ptr(&a);
	return 0;
}

/* ---- process ---- */

static int add_gid(json_t *a, uint32_t gid)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) {
		if (json_integer_value(v) == (json_int_t)gid)
			return 0;
	}
	return json_array_append_new(a, json_integer(gid));
}

/* uid, gid and the additional gids: the primary gid first (containerd,
 * after CVE-2023-25173), then /etc/group's unless the policy is Strict,
 * then the security context's supplemental groups. */
static int build_user(const struct crid_spec_input *in, const Runtime__V1__LinuxContainerSecurityContext *sc,
		      json_t **out, struct crid_err *err)
{
	static const struct crid_user_ids root = { 0 };
	const struct crid_user_ids *u = in->user ? in->user : &root;
	json_auto_t *o = json_object();
	json_t *gids = json_array();
	int bad = 0;

	bad |= json_object_set_new(o, "uid", json_integer(u->uid));
	bad |= json_object_set_new(o, "gid", json_integer(u->gid));
	bad |= json_object_set_new(o, "additionalGids", gids);
	if (bad)
		return crid_err_nomem(err, "process.user");
	bad |= add_gid(gids, u->gid);
	if (!(sc && sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict)) {
		for (size_t i = 0; i < u->n_additional_gids; i++)
			bad |= add_gid(gids, u->additional_gids[i]);
	}
	for (size_t i = 0; sc && i < sc->n_supplemental_groups; i++) {
		int64_t g = sc->supplemental_groups[i];

		if (g < 0 || g > INT32_MAX)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "linux.security_context.supplemental_groups[%zu]: %lld is out of range", i,
					    (long long)g);
		bad |= add_gid(gids, (uint32_t)g);
	}
	if (bad)
		return crid_err_nomem(err, "process.user");
	*out = take_ptr(&o);
	return 0;
}

/* RLIMIT_NOFILE at containerd's 1048576, but never above crid's own hard
 * limit: raising it needs CAP_SYS_RESOURCE, which the runtime may lack. */
static json_t *build_rlimits(void)
{
	struct rlimit rl;
	json_int_t n = NOFILE_LIMIT;
	json_t *a = json_array(), *o = json_object();
	int bad = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)n)
		n = (json_int_t)rl.rlim_max;
	bad |= json_object_set_new(o, "type", json_string("RLIMIT_NOFILE"));
	bad |= json_object_set_new(o, "hard", json_integer(n));
	bad |= json_object_set_new(o, "soft", json_integer(n));
	bad |= json_array_append_new(a, o);
	if (bad) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static int build_process(const struct crid_spec_input *in, const Runtime__V1__LinuxContainerSecurityContext *sc,
			 const struct crid_spec_host *host, const char *hostname, json_t **out, struct crid_err *err)
{
	const Runtime__V1__ContainerConfig *c = in->config;
	const Runtime__V1__LinuxContainerResources *res = c->linux ? c->linux->resources : NULL;
	json_auto_t *p = json_object();
	json_t *v = NULL;
	_cleanup_free_ char **argv = NULL;
	size_t argc = 0;
	const char *cwd = "/";
	_cleanup_free_ char *image_cwd = NULL;
	int r, bad = 0;

	if (!p)
		return crid_err_nomem(err, "process");
	bad |= json_object_set_new(p, "terminal", json_boolean(c->tty));

	r = build_user(in, sc, &v, err);
	if (r < 0)
		return r;
	bad |= json_object_set_new(p, "user", v);

	r = crid_spec_process_args(in->image, c, &argv, &argc, err);
	if (r < 0)
		return r;
	v = json_array();
	for (size_t i = 0; i < argc && v; i++)
		bad |= json_array_append_new(v, json_string(argv[i]));
	bad |= json_object_set_new(p, "args", v);

	r = build_env(in, hostname, &v, err);
	if (r < 0)
		return r;
	bad |= json_object_set_new(p, "env", v);

	/* The config's working directory, else the image's, else "/". */
	if (c->working_dir && *c->working_dir) {
		if (c->working_dir[0] != '/')
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "working_dir \"%s\" is not absolute",
					    c->working_dir);
		cwd = c->working_dir;
	} else if (in->image && in->image->working_dir && *in->image->working_dir) {
		cwd = in->image->working_dir;
		if (cwd[0] != '/') { /* Docker takes a relative WORKDIR from / */
			if (asprintf(&image_cwd, "/%s", cwd) < 0) {
				image_cwd = NULL;
				return crid_err_nomem(err, "process.cwd");
			}
			cwd = image_cwd;
		}
	}
	bad |= json_object_set_new(p, "cwd", json_string(cwd));

	r = crid_spec_capabilities(sc, host->held_caps, &v, err);
	if (r < 0)
		return r;
	bad |= json_object_set_new(p, "capabilities", v);
	bad |= json_object_set_new(p, "rlimits", build_rlimits());
	bad |= json_object_set_new(p, "noNewPrivileges", json_boolean(sc && sc->no_new_privs));
	{
		int64_t adj;
		bool set;

		r = crid_spec_oom_score_adj(res, host, &adj, &set, err);
		if (r < 0)
			return crid_err_wrap(err, "linux.resources.");
		if (set)
			bad |= json_object_set_new(p, "oomScoreAdj", json_integer(adj));
	}
	if (bad)
		return crid_err_nomem(err, "process");
	*out = take_ptr(&p);
	return 0;
}

/* ---- namespaces ---- */

static int add_ns(json_t *a, const char *type, const char *path)
{
	json_t *o = json_object();
	int bad = json_object_set_new(o, "type", json_string(type));

	if (path)
		bad |= json_object_set_new(o, "path", json_string(path));
	return bad | json_array_append_new(a, o);
}

/* Network and IPC: the host's, or the pod's pinned namespace. UTS: the
 * pod's, or the host's when the pod has none. PID: the host's, a new one
 * (mode CONTAINER, or a pod that shares none), the pod's; for TARGET the
 * caller passes the target container's in ns.pid. Mount: always new. */
static int build_namespaces(const struct crid_spec_input *in, const Runtime__V1__LinuxContainerSecurityContext *sc,
			    json_t **out, struct crid_err *err)
{
	const struct crid_pod_namespaces *ns = &in->ns;
	const Runtime__V1__NamespaceOption *opt = sc ? sc->namespace_options : NULL;
	int pid_mode = opt ? (int)opt->pid : RUNTIME__V1__NAMESPACE_MODE__POD;
	json_auto_t *a = json_array();
	int bad = 0;

	if (!a)
		return crid_err_nomem(err, "linux.namespaces");
	/* First, so that the others are joined or made from inside it. */
	if (in->userns_path)
		bad |= add_ns(a, "user", in->userns_path);
	if (!ns->host_network && !ns->network)
		return crid_err_set(err, CRID_INTERNAL, 0, "pod network namespace: no path and not the host's");
	if (!ns->host_ipc && !ns->ipc)
		return crid_err_set(err, CRID_INTERNAL, 0, "pod IPC namespace: no path and not the host's");

	if (!ns->host_pid) {
		if (pid_mode == RUNTIME__V1__NAMESPACE_MODE__CONTAINER)
			bad |= add_ns(a, "pid", NULL);
		else if (pid_mode == RUNTIME__V1__NAMESPACE_MODE__TARGET && !ns->pid)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
					    "linux.security_context.namespace_options.pid: TARGET (%s) names no running "
					    "container of the pod",
					    opt->target_id ? opt->target_id : "");
		else
			bad |= add_ns(a, "pid", ns->pid);
	}
	if (!ns->host_network)
		bad |= add_ns(a, "network", ns->network);
	if (!ns->host_ipc)
		bad |= add_ns(a, "ipc", ns->ipc);
	if (ns->uts)
		bad |= add_ns(a, "uts", ns->uts);
	bad |= add_ns(a, "mount", NULL);
	if (bad)
		return crid_err_nomem(err, "linux.namespaces");
	*out = take_ptr(&a);
	return 0;
}

/* ---- linux ---- */

/* linux.uidMappings / gidMappings: the pod's, which the runtime needs
 * even when it joins the namespace rather than making it. */
static json_t *id_mappings(Runtime__V1__IDMapping *const *m, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_pack("{s:I, s:I, s:I}", "containerID", (json_int_t)m[i]->container_id,
						       "hostID", (json_int_t)m[i]->host_id, "size",
						       (json_int_t)m[i]->length)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int build_linux(const struct crid_spec_input *in, const Runtime__V1__LinuxContainerSecurityContext *sc,
		       const struct crid_spec_host *host, const char *propagation, json_t **out, struct crid_err *err)
{
	const Runtime__V1__ContainerConfig *c = in->config;
	bool privileged = sc && sc->privileged;
	json_auto_t *l = json_object();
	json_auto_t *res = NULL;
	json_t *v = NULL, *devices = NULL, *rules = NULL, *masked = NULL, *ro = NULL;
	int r, bad = 0;

	if (!l)
		return crid_err_nomem(err, "linux");
	r = build_namespaces(in, sc, &v, err);
	if (r < 0)
		return r;
	bad |= json_object_set_new(l, "namespaces", v);
	if (in->cgroups_path && *in->cgroups_path)
		bad |= json_object_set_new(l, "cgroupsPath", json_string(in->cgroups_path));

	if (in->userns) {
		bad |= json_object_set_new(l, "uidMappings", id_mappings(in->userns->uids, in->userns->n_uids));
		bad |= json_object_set_new(l, "gidMappings", id_mappings(in->userns->gids, in->userns->n_gids));
	}
	r = crid_spec_resources(c->linux ? c->linux->resources : NULL, host, &res, err);
	if (r < 0)
		return crid_err_wrap(err, "linux.resources.");
	r = crid_spec_devices(c, privileged, &devices, &rules, err);
	if (r < 0)
		return r;
	bad |= json_object_set_new(res, "devices", rules);
	bad |= json_object_set(l, "resources", res);
	if (json_array_size(devices) > 0)
		bad |= json_object_set_new(l, "devices", devices);
	else
		json_decref(devices);

	r = crid_spec_masked_paths(sc, in->userns != NULL, &masked, &ro, err);
	if (r < 0)
		return r;
	if (json_array_size(masked) > 0)
		bad |= json_object_set_new(l, "maskedPaths", masked);
	else
		json_decref(masked);
	if (json_array_size(ro) > 0)
		bad |= json_object_set_new(l, "readonlyPaths", ro);
	else
		json_decref(ro);
	if (propagation)
		bad |= json_object_set_new(l, "rootfsPropagation", json_string(propagation));
	if (bad)
		return crid_err_nomem(err, "linux");
	*out = take_ptr(&l);
	return 0;
}

/* ---- checks ---- */

static int check_security(const struct crid_spec_input *in, const Runtime__V1__LinuxContainerSecurityContext *sc,
			  struct crid_err *err)
{
	const Runtime__V1__LinuxSandboxSecurityContext *psc = in->pod_linux ? in->pod_linux->security_context : NULL;

	if (!sc)
		return 0;
	if (sc->privileged && !(psc && psc->privileged))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "linux.security_context.privileged: the pod sandbox is not privileged");
	/* All capabilities in a user namespace are none outside it: the
	 * kubelet never asks for both. */
	if (sc->privileged && in->userns)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "linux.security_context.privileged: not with a user namespace");
	return 0;
}

static int check_input(const struct crid_spec_input *in, struct crid_err *err)
{
	const Runtime__V1__ContainerConfig *c = in ? in->config : NULL;

	if (!c)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config is missing");
	if (!c->metadata || !c->metadata->name || !*c->metadata->name)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "metadata.name is empty");
	if (!in->rootfs || in->rootfs[0] != '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "rootfs \"%s\" is not absolute",
				    in->rootfs ? in->rootfs : "");
	return 0;
}

/* ---- the document ---- */

static json_t *build_annotations(const Runtime__V1__ContainerConfig *c)
{
	json_t *o = json_object();
	int bad = 0;

	for (size_t i = 0; o && i < c->n_annotations; i++)
		bad |= json_object_set_new(o, c->annotations[i]->key, json_string(c->annotations[i]->value));
	/* containerd's, for tools that read them. */
	bad |= json_object_set_new(o, "io.kubernetes.cri.container-type", json_string("container"));
	bad |= json_object_set_new(o, "io.kubernetes.cri.container-name", json_string(c->metadata->name));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int crid_spec_build(const struct crid_spec_input *in, json_t **out, struct crid_err *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc;
	const struct crid_spec_host *hostinfo = in ? in->host : NULL;
	struct crid_spec_host probed;
	json_auto_t *spec = NULL;
	json_t *root, *v = NULL, *seccomp = NULL;
	const char *hostname, *propagation = NULL;
	char host[256];
	bool readonly, privileged;
	uint64_t caps, ambient;
	int r, bad = 0;

	*out = NULL;
	r = check_input(in, err);
	if (r < 0)
		return r;
	if (!hostinfo) {
		crid_spec_host_probe(&probed);
		hostinfo = &probed;
	}
	sc = in->config->linux ? in->config->linux->security_context : NULL;
	privileged = sc && sc->privileged;
	readonly = in->readonly_rootfs || (sc && sc->readonly_rootfs);
	r = check_security(in, sc, err);
	if (r < 0)
		return r;

	hostname = in->hostname;
	if (!hostname || !*hostname) {
		if (gethostname(host, sizeof(host)) < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "gethostname");
		host[sizeof(host) - 1] = '\0';
		hostname = host;
	}

	spec = json_object();
	root = json_object();
	if (!spec)
		return crid_err_nomem(err, "config.json");
	bad |= json_object_set_new(spec, "ociVersion", json_string("1.0.2"));
	bad |= json_object_set_new(root, "path", json_string(in->rootfs));
	bad |= json_object_set_new(root, "readonly", json_boolean(readonly));
	bad |= json_object_set_new(spec, "root", root);
	/* Only in a UTS namespace of the pod's: runc refuses a hostname
	 * with the host's. Setting it again there is harmless. */
	if (in->ns.uts)
		bad |= json_object_set_new(spec, "hostname", json_string(hostname));

	r = build_process(in, sc, hostinfo, hostname, &v, err);
	if (r < 0)
		return r;
	bad |= json_object_set_new(spec, "process", v);

	r = crid_spec_mounts(in, privileged, readonly, &v, &propagation, err);
	if (r < 0)
		return r;
	bad |= json_object_set_new(spec, "mounts", v);

	r = build_linux(in, sc, hostinfo, propagation, &v, err);
	if (r < 0)
		return r;
	bad |= json_object_set_new(spec, "linux", v);

	/* The filter allows what the capabilities the process ends up with
	 * allow. */
	r = crid_spec_capability_sets(sc, hostinfo->held_caps, &caps, &ambient, err);
	if (r == 0)
		r = crid_spec_seccomp(sc, in->seccomp_default, caps, hostinfo, &seccomp, err);
	if (r < 0)
		return r;
	if (seccomp)
		bad |= json_object_set_new(v, "seccomp", seccomp);
	r = crid_spec_lsm(sc, hostinfo, json_object_get(spec, "process"), v, err);
	if (r < 0)
		return r;
	bad |= json_object_set_new(spec, "annotations", build_annotations(in->config));
	if (bad)
		return crid_err_nomem(err, "config.json");
	*out = take_ptr(&spec);
	return 0;
}
