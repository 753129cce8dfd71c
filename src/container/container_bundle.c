/* A container's bundle (container.h): config.json from the image's config,
 * the CRI ContainerConfig and the pod (its namespaces, its user namespace,
 * a TARGET container's PID namespace), the user resolved against the
 * image's own /etc/passwd and /etc/group. Reads the image's files inside
 * its root only; never mounts and never runs anything. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cdi/cdi.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "container/container.h"
#include "oci/oci_spec.h"
#include "runtime/objects.h"

/* ---- the image's defaults ---- */

static char **json_strv(json_t *arr, size_t *n)
{
	size_t count = json_is_array(arr) ? json_array_size(arr) : 0;
	char **v = calloc(count + 1, sizeof(*v));

	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		const char *s = json_string_value(json_array_get(arr, i));

		if (s)
			v[(*n)++] = (char *)s; /* borrowed from the document */
	}
	return v;
}

void crid_container_image_clear(struct crid_container_image *h)
{
	free(h->d.entrypoint);
	free(h->d.cmd);
	free(h->d.env);
	json_decref(h->doc);
}

int crid_container_image_load(const char *config, size_t len, struct crid_container_image *h, struct crid_err *err)
{
	json_t *c;

	memset(h, 0, sizeof(*h));
	h->doc = json_loadb(config, len, 0, NULL);
	if (!h->doc)
		return crid_err_set(err, CRID_INTERNAL, 0, "the image config is not JSON");
	c = json_object_get(h->doc, "config");
	h->d.entrypoint = json_strv(json_object_get(c, "Entrypoint"), &h->d.n_entrypoint);
	h->d.cmd = json_strv(json_object_get(c, "Cmd"), &h->d.n_cmd);
	h->d.env = json_strv(json_object_get(c, "Env"), &h->d.n_env);
	h->d.working_dir = json_string_value(json_object_get(c, "WorkingDir"));
	h->d.user = json_string_value(json_object_get(c, "User"));
	h->stop_signal = json_string_value(json_object_get(c, "StopSignal"));
	if (!h->d.entrypoint || !h->d.cmd || !h->d.env)
		return crid_err_nomem(err, "image config");
	if (!h->d.user)
		h->d.user = "";
	return 0;
}

/* "SIGTERM", "TERM", "15", "RTMIN+3" → a signal number; SIGTERM when the
 * name means nothing (an image's StopSignal is free text). */
static int signal_number(const char *name)
{
	char *end;
	long n;

	if (!name || !*name)
		return SIGTERM;
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	if (strncasecmp(name, "RTMIN", 5) == 0) {
		n = name[5] == '+' ? strtol(name + 6, &end, 10) : (end = (char *)name + 5, 0);
		return *end == '\0' && SIGRTMIN + n <= SIGRTMAX ? SIGRTMIN + (int)n : SIGTERM;
	}
	for (int sig = 1; sig < NSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);

		if (abbrev && strcasecmp(abbrev, name) == 0)
			return sig;
	}
	n = strtol(name, &end, 10);
	return *end == '\0' && n > 0 && n < NSIG ? (int)n : SIGTERM;
}

/* The config's stop signal (a CRI enum named after the signal) wins over
 * the image's. */
int crid_container_stop_signal(const Runtime__V1__ContainerConfig *config, const char *image_signal)
{
	const ProtobufCEnumValue *v;

	if (config->stop_signal == RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT)
		return signal_number(image_signal);
	v = protobuf_c_enum_descriptor_get_value(&runtime__v1__signal__descriptor, config->stop_signal);
	if (!v || strncmp(v->name, "SIGNAL_", 7) != 0)
		return signal_number(image_signal);
	if (strncmp(v->name + 7, "SIGRTMINPLUS", 12) == 0)
		return SIGRTMIN + atoi(v->name + 19);
	if (strncmp(v->name + 7, "SIGRTMAXMINUS", 13) == 0)
		return SIGRTMAX - atoi(v->name + 20);
	if (strcmp(v->name + 7, "SIGRTMAX") == 0)
		return SIGRTMAX;
	return signal_number(v->name + 7);
}

/* Reads a file of the container's root file system, resolving symbolic
 * links inside it (RESOLVE_IN_ROOT): an image's /etc/passwd may be a link
 * pointing anywhere. NULL when the file is absent. */
static char *read_in_root(const char *root, const char *path)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	_cleanup_close_ int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *data = NULL;
	size_t len = 0, cap = 0;

	if (root_fd < 0)
		return NULL;
	fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t n;

		if (len + 4097 > cap) {
			char *grown;

			if (cap >= (1 << 20))
				return NULL; /* no sane passwd file is this big */
			grown = realloc(data, cap ? cap * 2 : 8192);
			if (!grown)
				return NULL;
			data = grown;
			cap = cap ? cap * 2 : 8192;
		}
		n = read(fd, data + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!data)
		return strdup("");
	data[len] = '\0';
	return take_ptr(&data);
}

/* The pod's user namespace as the container config must echo it: the
 * kubelet sends the pod's options again for each container. NULL when the
 * pod has none. */
int crid_container_userns(const struct crid_pod *pod, const Runtime__V1__ContainerConfig *cfg,
			  const Runtime__V1__UserNamespace **out, struct crid_err *err)
{
	const Runtime__V1__LinuxSandboxSecurityContext *psc =
		pod->config->linux ? pod->config->linux->security_context : NULL;
	const Runtime__V1__LinuxContainerSecurityContext *sc = cfg->linux ? cfg->linux->security_context : NULL;
	const Runtime__V1__UserNamespace *pu = psc && psc->namespace_options ? psc->namespace_options->userns_options
									     : NULL;
	const Runtime__V1__UserNamespace *cu = sc && sc->namespace_options ? sc->namespace_options->userns_options
									   : NULL;
	bool pod_has = pu && pu->mode == RUNTIME__V1__NAMESPACE_MODE__POD;

	*out = pod_has ? pu : NULL;
	if (!cu)
		return 0; /* the pod's, whatever it is */
	if (cu->mode != RUNTIME__V1__NAMESPACE_MODE__POD && cu->mode != RUNTIME__V1__NAMESPACE_MODE__NODE)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "linux.security_context.namespace_options.userns_options.mode: only POD and NODE are "
				    "supported");
	if ((cu->mode == RUNTIME__V1__NAMESPACE_MODE__POD) != pod_has)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "linux.security_context.namespace_options.userns_options: mode %s, but the pod "
				    "sandbox %s a user namespace",
				    pod_has ? "NODE" : "POD", pod_has ? "has" : "has no");
	if (!pod_has || (cu->n_uids == 0 && cu->n_gids == 0))
		return 0;
	if (cu->n_uids != pu->n_uids || cu->n_gids != pu->n_gids)
		goto differ;
	for (size_t i = 0; i < cu->n_uids; i++) {
		if (cu->uids[i]->host_id != pu->uids[i]->host_id || cu->uids[i]->container_id != pu->uids[i]->container_id ||
		    cu->uids[i]->length != pu->uids[i]->length)
			goto differ;
	}
	for (size_t i = 0; i < cu->n_gids; i++) {
		if (cu->gids[i]->host_id != pu->gids[i]->host_id || cu->gids[i]->container_id != pu->gids[i]->container_id ||
		    cu->gids[i]->length != pu->gids[i]->length)
			goto differ;
	}
	return 0;
differ:
	return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
			    "linux.security_context.namespace_options.userns_options: the mappings differ from the "
			    "pod sandbox's");
}

/* The host ID that ID 0 of the namespace maps to (the pod requires it). */
uint32_t crid_container_userns_root(Runtime__V1__IDMapping *const *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (m[i]->container_id == 0 && m[i]->length > 0)
			return m[i]->host_id;
	}
	return 65534;
}

/* TARGET: the PID namespace of another container of the pod, one that
 * has a process (created or running). */
static int target_pid_ns(struct crid_runtime *rt, const struct crid_container *c, char *buf, size_t size,
			 const char **out, struct crid_err *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc =
		c->config->linux ? c->config->linux->security_context : NULL;
	const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
	_cleanup_(crid_container_unrefp) struct crid_container *t = NULL;
	pid_t pid = 0;

	*out = NULL;
	if (!o || o->pid != RUNTIME__V1__NAMESPACE_MODE__TARGET)
		return 0;
	if (!o->target_id || !*o->target_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "linux.security_context.namespace_options.target_id is empty (pid is TARGET)");
	if (crid_container_find(rt, o->target_id, &t, err) < 0 || strcmp(t->pod_id, c->pod_id) != 0 || t == c)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "linux.security_context.namespace_options.target_id %.64s is no other container of "
				    "the pod",
				    o->target_id);
	pthread_mutex_lock(&t->state_lock);
	if (t->state == CRID_CTR_CREATED || t->state == CRID_CTR_RUNNING)
		pid = t->pid;
	pthread_mutex_unlock(&t->state_lock);
	if (pid <= 0)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0,
				    "linux.security_context.namespace_options.target_id: container %s is not running",
				    t->id);
	snprintf(buf, size, "/proc/%d/ns/pid", (int)pid);
	*out = buf;
	return 0;
}

/* A container of a pod whose runtime runs one sandbox per pod joins the
 * pod's sandbox: the annotations CRI-O and containerd set, which gVisor
 * (and Kata) read. The sandbox container's ID is the pod's. */
static int join_sandbox(json_t *spec, const struct crid_pod *pod, const struct crid_container *c,
			struct crid_err *err)
{
	const Runtime__V1__PodSandboxMetadata *m = pod->config->metadata;
	json_t *a = json_object_get(spec, "annotations");

	if (!a) {
		a = json_object();
		if (!a || json_object_set_new(spec, "annotations", a) < 0)
			return crid_err_nomem(err, "annotations");
	}
	if (json_object_set_new(a, "io.kubernetes.cri.container-type", json_string("container")) < 0 ||
	    json_object_set_new(a, "io.kubernetes.cri.sandbox-id", json_string(pod->id)) < 0 ||
	    json_object_set_new(a, "io.kubernetes.cri.sandbox-name", json_string(m->name)) < 0 ||
	    json_object_set_new(a, "io.kubernetes.cri.sandbox-namespace", json_string(m->namespace_)) < 0 ||
	    json_object_set_new(a, "io.kubernetes.cri.sandbox-uid", json_string(m->uid)) < 0 ||
	    json_object_set_new(a, "io.kubernetes.cri.container-name", json_string(c->config->metadata->name)) < 0 ||
	    json_object_set_new(a, "io.kubernetes.cri.image-name", json_string(c->image_name)) < 0)
		return crid_err_nomem(err, "annotations");
	return 0;
}

/* The bundle: config.json built from the image, the config and the pod. */
int crid_container_write_bundle(struct crid_runtime *rt, struct crid_container *c, struct crid_pod *pod,
				const struct crid_container_image *img, const struct crid_spec_host *host,
				const Runtime__V1__UserNamespace *userns, char *const *sources, const json_t *cdi_edits,
				struct crid_err *err)
{
	_cleanup_free_ char *passwd = read_in_root(c->rootfs, "/etc/passwd");
	_cleanup_free_ char *group = read_in_root(c->rootfs, "/etc/group");
	_cleanup_free_ char *text = NULL, *user_spec = NULL;
	_cleanup_(json_decrefp) json_t *spec = NULL;
	_cleanup_close_ int dirfd = -1;
	const Runtime__V1__LinuxContainerSecurityContext *sc = c->config->linux ? c->config->linux->security_context
										 : NULL;
	struct crid_user_ids ids = { 0 };
	struct crid_spec_input in = { 0 };
	char target_ns[64];
	int r;

	/* run_as_user / run_as_username win over the image's user. */
	if (sc && sc->run_as_username && *sc->run_as_username) {
		user_spec = strdup(sc->run_as_username);
	} else if (sc && sc->run_as_user) {
		if (asprintf(&user_spec, "%lld", (long long)sc->run_as_user->value) < 0)
			user_spec = NULL;
	} else {
		user_spec = strdup(img->d.user);
	}
	if (!user_spec)
		return crid_err_nomem(err, "user");
	if (sc && sc->run_as_group && strchr(user_spec, ':') == NULL) {
		char *with_group;

		if (asprintf(&with_group, "%s:%lld", user_spec, (long long)sc->run_as_group->value) < 0)
			return crid_err_nomem(err, "user");
		free(user_spec);
		user_spec = with_group;
	}
	r = crid_spec_resolve_user(user_spec, passwd, group, &ids, err);
	if (r < 0)
		return crid_err_wrap(err, "user %s: ", user_spec);
	in.container_id = c->id;
	in.rootfs = c->rootfs;
	in.hostname = pod->config->hostname; /* empty: the node's */
	in.hosts_file = pod->ns.hosts_path;
	in.resolv_conf_file = pod->ns.resolv_path;
	in.hostname_file = pod->ns.hostname_path;
	in.shm_path = pod->ns.shm_path;
	in.cgroups_path = c->cgroups_path;
	in.ns.network = pod->ns.net_path;
	in.ns.ipc = pod->ns.ipc_path;
	in.ns.uts = pod->ns.uts_path;
	in.ns.pid = pod->ns.pid_ns_path;
	in.ns.host_network = pod->ns.net_path == NULL;
	in.ns.host_ipc = pod->ns.ipc_path == NULL;
	in.ns.host_pid = pod->config->linux && pod->config->linux->security_context &&
			 pod->config->linux->security_context->namespace_options &&
			 pod->config->linux->security_context->namespace_options->pid ==
				 RUNTIME__V1__NAMESPACE_MODE__NODE;
	r = target_pid_ns(rt, c, target_ns, sizeof(target_ns), &in.ns.pid, err);
	if (r < 0) {
		crid_user_ids_free(&ids);
		return r;
	}
	if (!in.ns.pid)
		in.ns.pid = pod->ns.pid_ns_path;
	in.image = &img->d;
	in.config = c->config;
	in.pod_linux = pod->config->linux;
	in.user = &ids;
	in.host = host;
	in.seccomp_default = rt->cfg->seccomp_default;
	in.userns = userns;
	in.userns_path = userns ? pod->ns.user_path : NULL;
	in.mount_sources = sources;
	r = crid_spec_build(&in, &spec, err);
	crid_user_ids_free(&ids);
	if (r == 0)
		r = crid_cdi_apply(cdi_edits, spec, err);
	if (r == 0 && c->handler->sandbox_per_pod)
		r = join_sandbox(spec, pod, c, err);
	if (r < 0)
		return r;
	c->process = json_deep_copy(json_object_get(spec, "process"));
	c->resources = json_deep_copy(json_object_get(json_object_get(spec, "linux"), "resources"));
	text = json_dumps(spec, JSON_COMPACT);
	if (!text || !c->process || !c->resources)
		return crid_err_nomem(err, "config.json");
	dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", c->dir);
	return crid_replace_file_at(dirfd, "config.json", text, strlen(text), 0600, err);
}
