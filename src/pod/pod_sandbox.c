/* A pod's sandbox container (pod_sandbox.h). Its root file system is a
 * directory holding crid-sandbox-init alone, read-only; its config.json is
 * built here, not from a CRI config: no image, no mounts of the pod's. */
#include "pod/pod_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "container/container.h"
#include "oci/handler.h"
#include "oci/oci_runtime.h"
#include "runtime/views.h"
#include "shim/protocol.h"

#define SANDBOX_DIR "sandbox"
#define INIT_NAME "init"
#define STOP_GRACE_NS (10LL * 1000000000LL)
#define KILL_WAIT_NS (20LL * 1000000000LL)

static bool host_network(const struct crid_pod *p)
{
	return p->ns.net_path == NULL;
}

static void oci_of(const struct crid_runtime *rt, const struct crid_pod *p, char *root, size_t size,
		   struct crid_oci_runtime *oci)
{
	crid_oci_runtime_for_pod(rt->cfg->run_root, p->handler, host_network(p), root, size, oci);
}

/* Copies crid-sandbox-init into the sandbox's root, read-only. */
static int copy_init(const char *from, int root_fd, struct crid_err *err)
{
	_cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, errno, "%s (installed next to crid-shim)", from);
	out = openat(root_fd, INIT_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0555);
	if (out < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "create the sandbox's init");
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "read %s", from);
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return crid_err_set(err, CRID_INTERNAL, errno, "write the sandbox's init");
			off += w;
		}
	}
	return 0;
}

static json_t *ns_entry(const char *type, const char *path)
{
	return path ? json_pack("{s:s, s:s}", "type", type, "path", path) : json_pack("{s:s}", "type", type);
}

/* config.json of the sandbox container. */
static json_t *sandbox_spec(const struct crid_pod *p)
{
	const Runtime__V1__PodSandboxConfig *c = p->config;
	const char *parent = c->linux && c->linux->cgroup_parent && *c->linux->cgroup_parent ? c->linux->cgroup_parent
											       : "/crid";
	char cgroups_path[PATH_MAX];
	json_t *ns = json_array(), *spec;

	snprintf(cgroups_path, sizeof(cgroups_path), "%s%s/%s", parent[0] == '/' ? "" : "/", parent, p->id);
	if (!ns || json_array_append_new(ns, ns_entry("pid", NULL)) < 0 ||
	    json_array_append_new(ns, ns_entry("mount", NULL)) < 0 ||
	    json_array_append_new(ns, ns_entry("ipc", p->ns.ipc_path)) < 0 ||
	    json_array_append_new(ns, ns_entry("uts", p->ns.uts_path)) < 0 ||
	    (p->ns.net_path && json_array_append_new(ns, ns_entry("network", p->ns.net_path)) < 0)) {
		json_decref(ns);
		return NULL;
	}
	spec = json_pack("{s:s, s:{s:b, s:[s], s:[s], s:s, s:{s:i, s:i}, s:b}, s:{s:s, s:b}, s:s?,"
			 " s:[{s:s, s:s, s:s}, {s:s, s:s, s:s, s:[s, s]}, {s:s, s:s, s:s, s:[s, s, s, s]}],"
			 " s:{s:s, s:s, s:s, s:s, s:s}, s:{s:o, s:s}}",
			 "ociVersion", "1.0.2",
			 "process", "terminal", 0, "args", "/" INIT_NAME, "env", "PATH=/", "cwd", "/", "user", "uid", 0,
			 "gid", 0, "noNewPrivileges", 1,
			 "root", "path", "rootfs", "readonly", 1,
			 "hostname", c->hostname && *c->hostname ? c->hostname : NULL,
			 "mounts",
			 "destination", "/proc", "type", "proc", "source", "proc",
			 "destination", "/dev", "type", "tmpfs", "source", "tmpfs", "options", "nosuid", "mode=755",
			 "destination", "/sys", "type", "sysfs", "source", "sysfs", "options", "nosuid", "noexec",
			 "nodev", "ro",
			 "annotations", "io.kubernetes.cri.container-type", "sandbox", "io.kubernetes.cri.sandbox-id",
			 p->id, "io.kubernetes.cri.sandbox-name", c->metadata->name,
			 "io.kubernetes.cri.sandbox-namespace", c->metadata->namespace_, "io.kubernetes.cri.sandbox-uid",
			 c->metadata->uid,
			 "linux", "namespaces", ns, "cgroupsPath", cgroups_path);
	return spec;
}

/* Some gVisor releases take every network namespace of a newer kernel for
 * the host's and refuse their own network stack in it: say what works. */
static void hint_network_flag(const struct crid_runtime_handler *h, struct crid_err *err)
{
	size_t len = strlen(err->msg);

	if (!strstr(err->msg, "root network namespace"))
		return;
	for (size_t i = 0; i < h->n_runtime_args; i++)
		if (strncmp(h->runtime_args[i], "--network", 9) == 0)
			return;
	snprintf(err->msg + len, sizeof(err->msg) - len,
		 " (this runsc cannot use its own network stack in the pod's namespace on this kernel: give the "
		 "handler runtime_args: [\"--network=host\"], see the README's RuntimeClass section)");
}

int crid_pod_sandbox_start(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err)
{
	_cleanup_(json_decrefp) json_t *spec = NULL;
	_cleanup_free_ char *dir = NULL, *text = NULL;
	_cleanup_close_ int dir_fd = -1, root_fd = -1;
	char binary[PATH_MAX], root[PATH_MAX];
	struct crid_oci_runtime oci;
	int r;

	if ((r = crid_handler_binary(p->handler, binary, sizeof(binary), err)) < 0)
		return r;
	if (asprintf(&dir, "%s/%s", p->dir, SANDBOX_DIR) < 0) {
		dir = NULL;
		return crid_err_nomem(err, "sandbox directory");
	}
	if ((r = crid_mkdir_private(dir, err)) < 0)
		return r;
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", dir);
	/* The runtime's gofer serves it as the sandbox's root: nobody writes. */
	if (mkdirat(dir_fd, "rootfs", 0555) < 0 && errno != EEXIST)
		return crid_err_set(err, CRID_INTERNAL, errno, "create %s/rootfs", dir);
	root_fd = openat(dir_fd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s/rootfs", dir);
	unlinkat(root_fd, INIT_NAME, 0);
	if ((r = copy_init(rt->sandbox_init_path, root_fd, err)) < 0)
		return r;
	spec = sandbox_spec(p);
	text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
	if (!text)
		return crid_err_nomem(err, "sandbox config.json");
	if ((r = crid_write_file_at(dir_fd, "config.json", text, strlen(text), 0600, err)) < 0)
		return r;
	oci_of(rt, p, root, sizeof(root), &oci);
	oci.path = binary;
	if ((r = crid_mkdir_p(root, 0700, err)) < 0)
		return r;
	{
		struct crid_shim_launch l = { .id = p->id, .dir = dir, .oci = &oci };

		r = crid_shim_start(rt->shim_path, &l, &p->sandbox_shim_pid, &p->sandbox_pid, err);
	}
	if (r == 0)
		r = crid_oci_start(&oci, p->id, err);
	if (r < 0) {
		hint_network_flag(p->handler, err);
		return crid_err_wrap(err, "sandbox: ");
	}
	log_info("pod sandbox container started", "pod", p->id, "handler", p->handler->name);
	return 0;
}

/* The shim recorded the sandbox's exit, or is gone. */
static bool exited(const struct crid_pod *p)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s/%s", p->dir, SANDBOX_DIR, CRID_SHIM_EXIT_FILE);
	if (access(path, F_OK) == 0)
		return true;
	return p->sandbox_shim_pid <= 0 || kill(p->sandbox_shim_pid, 0) < 0;
}

static bool wait_exited(const struct crid_pod *p, int64_t timeout_ns)
{
	int64_t deadline = crid_monotonic_ns() + timeout_ns;

	while (!exited(p)) {
		if (crid_monotonic_ns() >= deadline)
			return false;
		usleep(20000);
	}
	return true;
}

bool crid_pod_sandbox_alive(const struct crid_pod *p)
{
	char path[PATH_MAX], cmd[4096];
	ssize_t n;
	int fd;

	if (p->sandbox_shim_pid <= 0 || exited(p))
		return false;
	/* The pid may be another process's after a reboot. */
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)p->sandbox_shim_pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	cmd[n] = '\0';
	return strstr(cmd, "crid-shim") && strstr(cmd, p->id);
}

void crid_pod_sandbox_check(struct crid_runtime *rt, struct crid_pod *p)
{
	if (!p->handler->sandbox_per_pod || !atomic_load(&p->ready) || p->sandbox_shim_pid <= 0 || !exited(p))
		return;
	/* Busy: a Stop or Remove is at work, and ends the readiness itself. */
	if (pthread_mutex_trylock(&p->lock) != 0)
		return;
	if (atomic_exchange(&p->ready, false)) {
		log_warn("the pod's sandbox exited: the pod is not ready", "pod", p->id);
		crid_pod_persist(rt, p);
		crid_event_pod(rt, p, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT, 0);
	}
	pthread_mutex_unlock(&p->lock);
}

int crid_pod_sandbox_stop(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err)
{
	char root[PATH_MAX];
	struct crid_oci_runtime oci;
	struct crid_err ignored;

	if (p->sandbox_shim_pid <= 0 || exited(p))
		return 0;
	oci_of(rt, p, root, sizeof(root), &oci);
	/* A sandbox whose start failed has no init to signal: no grace. */
	if (crid_oci_kill(&oci, p->id, SIGTERM, 0, &ignored) == 0 && wait_exited(p, STOP_GRACE_NS))
		return 0;
	crid_oci_kill(&oci, p->id, SIGKILL, 1, &ignored);
	/* The sandbox process is the shim's child: its exit is the record. */
	if (p->sandbox_pid > 0 && crid_pod_sandbox_alive(p))
		kill(p->sandbox_pid, SIGKILL);
	if (wait_exited(p, KILL_WAIT_NS))
		return 0;
	return crid_err_set(err, CRID_DEADLINE_EXCEEDED, 0, "the sandbox container of pod %s did not exit", p->id);
}

int crid_pod_sandbox_remove(struct crid_runtime *rt, struct crid_pod *p, struct crid_err *err)
{
	char root[PATH_MAX], dir[PATH_MAX];
	struct crid_oci_runtime oci;
	int r;

	if ((r = crid_pod_sandbox_stop(rt, p, err)) < 0)
		return r;
	oci_of(rt, p, root, sizeof(root), &oci);
	if ((r = crid_oci_delete(&oci, p->id, err)) < 0)
		return r;
	snprintf(dir, sizeof(dir), "%s/%s", p->dir, SANDBOX_DIR);
	return crid_rmtree_at(AT_FDCWD, dir, err);
}
