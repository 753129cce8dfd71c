/* Containers: CreateContainer, StartContainer, StopContainer,
 * RemoveContainer. A container is an overlay root file system and staged
 * volumes (container_mounts.c), a bundle, and a crid-shim that runs
 * "<runtime> create" and watches it; start, stop and exec are runtime
 * calls. Status and lists answer from memory (container_queries.c). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cdi/cdi.h"
#include "common/clock.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/spawn.h"
#include "container/container.h"
#include "oci/oci_runtime.h"
#include "oci/oci_spec.h"
#include "runtime/objects.h"
#include "runtime/views.h"
#include "shim/protocol.h"

#define SHIM_START_TIMEOUT_MS 60000

static void image_use_freep(struct crid_image_use *u)
{
	crid_image_use_free(u);
}

/* ---- the container's files ---- */

/* Undoes everything CreateContainer made on disk; safe to repeat. */
static int remove_container_files(struct crid_container *c, struct crid_err *err)
{
	int r;

	/* The root file system and every staged volume are below it. */
	r = crid_container_unmount_all(c->dir, err);
	if (r == 0)
		r = crid_rmtree_at(AT_FDCWD, c->dir, err);
	if (r == 0)
		r = crid_rmtree_at(AT_FDCWD, c->upper, err);
	return r;
}

void crid_container_oci(const struct crid_runtime *rt, const struct crid_container *c, char *root_buf, size_t size,
			struct crid_oci_runtime *out)
{
	crid_oci_runtime_for_pod(rt->cfg->run_root, c->handler, c->host_network, root_buf, size, out);
}

/* ---- crid-shim ---- */

/* Starts the shim and reads its one line: "ok <shim pid> <pid>". */
int crid_shim_start(const char *shim_path, const struct crid_shim_launch *l, pid_t *shim_pid_out, pid_t *pid_out,
		    struct crid_err *err)
{
	int sync[2];
	char sync_fd[16], line[1024];
	const char *argv[28 + 2 * CRID_OCI_MAX_ARGS];
	size_t k = 0, got = 0;
	struct crid_spawn sp;
	pid_t pid;
	int r;

	if (pipe2(sync, O_CLOEXEC) < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "start crid-shim: pipe");
	/* The write end must survive exec as fd 3 in the shim. */
	snprintf(sync_fd, sizeof(sync_fd), "%d", 3);
	argv[k++] = shim_path;
	argv[k++] = "--id";
	argv[k++] = l->id;
	argv[k++] = "--bundle";
	argv[k++] = l->dir;
	argv[k++] = "--runtime";
	argv[k++] = l->oci->path;
	argv[k++] = "--runtime-root";
	argv[k++] = l->oci->root;
	for (size_t i = 0; i < l->oci->n_args; i++) {
		argv[k++] = "--runtime-arg";
		argv[k++] = l->oci->args[i];
	}
	if (l->subcontainer)
		argv[k++] = "--subcontainer";
	argv[k++] = "--state-dir";
	argv[k++] = l->dir;
	argv[k++] = "--log-path";
	argv[k++] = l->log_path && *l->log_path ? l->log_path : "/dev/null";
	if (l->log_path && *l->log_path) {
		/* Opened beneath the pod's log directory, through no symlink. */
		argv[k++] = "--log-dir";
		argv[k++] = l->log_dir;
	}
	argv[k++] = "--sync-fd";
	argv[k++] = sync_fd;
	if (l->stdin_open)
		argv[k++] = "--stdin";
	if (l->stdin_once)
		argv[k++] = "--stdin-once";
	if (l->tty)
		argv[k++] = "--tty";
	argv[k] = NULL;
	r = crid_spawn_init(&sp, 0);
	if (r == 0) {
		if ((r = posix_spawn_file_actions_addopen(&sp.actions, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
		    (r = posix_spawn_file_actions_addopen(&sp.actions, 1, "/dev/null", O_WRONLY, 0)) == 0 &&
		    (r = posix_spawn_file_actions_adddup2(&sp.actions, sync[1], 3)) == 0)
			r = posix_spawn(&pid, shim_path, &sp.actions, &sp.attr, (char *const *)argv, environ);
		crid_spawn_destroy(&sp);
	}
	close(sync[1]);
	if (r != 0) {
		close(sync[0]);
		return crid_err_set(err, CRID_INTERNAL, r, "start %s", shim_path);
	}
	for (;;) {
		struct pollfd p = { .fd = sync[0], .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, SHIM_START_TIMEOUT_MS) <= 0)
			break;
		n = read(sync[0], line + got, sizeof(line) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(line, '\n', got) || got == sizeof(line) - 1)
			break;
	}
	close(sync[0]);
	line[got] = '\0';
	/* The shim's first process exits once the monitor is set up. */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	line[strcspn(line, "\n")] = '\0';
	if (strncmp(line, "ok ", 3) == 0) {
		long shim_pid, ctr_pid;

		if (sscanf(line + 3, "%ld %ld", &shim_pid, &ctr_pid) == 2 && shim_pid > 0 && ctr_pid > 0) {
			*shim_pid_out = (pid_t)shim_pid;
			*pid_out = (pid_t)ctr_pid;
			return 0;
		}
	}
	if (strncmp(line, "error ", 6) == 0)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "%s: %s%s", l->oci->handler, line + 6,
				    strstr(line, "hybrid mode")
					    ? " (this crun needs every controller on cgroup v1: mount hugetlb as a v1 "
					      "hierarchy at /sys/fs/cgroup/hugetlb, or use the runc handler)"
					    : "");
	return crid_err_set(err, CRID_INTERNAL, 0, "crid-shim gave no answer%s%s", got ? ": " : "", line);
}

/* Ends a shim this create started (rolling back): it must be gone before
 * its directory is removed, or it writes into it meanwhile. */
static void kill_shim(pid_t pid)
{
	char path[64];

	if (pid <= 0 || kill(pid, SIGKILL) < 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 200; i++) {
		char buf[256];
		const char *state;
		ssize_t n;
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return;
		buf[n] = '\0';
		state = strrchr(buf, ')');
		if (state && (state[2] == 'Z' || state[2] == 'X'))
			return; /* dead, waiting for its parent to reap it */
		usleep(10000);
	}
}

/* ---- CreateContainer ---- */

static int validate_container_config(const Runtime__V1__ContainerConfig *c, struct crid_err *err)
{
	const Runtime__V1__LinuxContainerSecurityContext *sc = c && c->linux ? c->linux->security_context : NULL;

	if (!c)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config is missing");
	if (!c->metadata || !c->metadata->name || !*c->metadata->name)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.metadata.name is empty");
	if (!c->image || !c->image->image || !*c->image->image)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.image.image is empty");
	if (c->log_path && c->log_path[0] == '/')
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "config.log_path must be relative to the pod's log_directory, not absolute");
	if (c->log_path && crid_path_has_dotdot(c->log_path))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "config.log_path must not contain \"..\"");
	/* A group alone would pair with the image's user, which the pod did
	 * not ask for; the peers refuse it too. */
	if (sc && sc->run_as_group && !sc->run_as_user && !(sc->run_as_username && *sc->run_as_username))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "config.linux.security_context.run_as_group is set without run_as_user or "
				    "run_as_username");
	return crid_container_metadata_check(c, err);
}

/* What the kubelet and kubectl show: the kubelet creates containers by
 * image ID, and the peers answer with the name the user wrote (or the
 * image's tag) and a repo digest, not the ID twice. */
static int name_image(struct crid_container *c, const struct crid_image_use *img)
{
	const Runtime__V1__ImageSpec *spec = c->config->image;
	const char *shown = c->image_name;

	if (spec->user_specified_image && *spec->user_specified_image)
		shown = spec->user_specified_image;
	else if (img->by_id && img->repo_tag)
		shown = img->repo_tag;
	c->image_id = strdup(img->id);
	c->image_shown = strdup(shown);
	c->image_ref = strdup(img->repo_digest ? img->repo_digest : img->id);
	return c->image_id && c->image_shown && c->image_ref ? 0 : -ENOMEM;
}

static int set_up_container(struct crid_runtime *rt, struct crid_container *c, struct crid_pod *pod,
			    const json_t *cdi_edits, struct crid_err *err)
{
	_cleanup_(image_use_freep) struct crid_image_use img = { 0 };
	struct crid_container_image defaults;
	const Runtime__V1__UserNamespace *userns = NULL;
	_cleanup_close_ int userns_fd = -1;
	char **sources = NULL;
	char runtime_root[PATH_MAX];
	struct crid_oci_runtime oci;
	struct crid_spec_host host;
	uid_t root_uid = 0;
	gid_t root_gid = 0;
	int r;

	crid_spec_host_probe(&host);
	/* A joining container's stdio is wired at its start, which the shim
	 * runs with its pipes (shim/subcontainer.c); it holds no terminal. */
	if (c->handler->sandbox_per_pod && c->config->tty)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "config.tty: not supported by runtime handler %s (one sandbox per pod)",
				    c->handler->name);
	if ((r = crid_container_userns(pod, c->config, &userns, err)) < 0)
		return r;
	if (userns) {
		if (!pod->ns.user_path)
			return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "the pod sandbox's user namespace is gone");
		userns_fd = open(pod->ns.user_path, O_RDONLY | O_CLOEXEC);
		if (userns_fd < 0)
			return crid_err_set(err, CRID_FAILED_PRECONDITION, errno, "the pod's user namespace %s",
					    pod->ns.user_path);
		root_uid = crid_container_userns_root(userns->uids, userns->n_uids);
		root_gid = crid_container_userns_root(userns->gids, userns->n_gids);
	}
	r = crid_images_use(rt->images, c->image_name, &img, err);
	if (r == 0)
		r = crid_images_hold(rt->images, c->id, &img, err);
	if (r < 0)
		return r;
	r = name_image(c, &img);
	if (r < 0)
		return crid_err_nomem(err, "image names");
	r = crid_container_image_load(img.config, img.config_len, &defaults, err);
	if (r < 0) {
		crid_container_image_clear(&defaults);
		return r;
	}
	c->stop_signal = crid_container_stop_signal(c->config, defaults.stop_signal);
	/* 0711: a user-namespaced runtime passes through as "other". */
	r = crid_mkdir_p(c->dir, 0711, err);
	if (r == 0)
		r = crid_container_mount_rootfs(c, &img, userns_fd, root_uid, root_gid, err);
	if (r == 0)
		r = crid_container_stage_mounts(rt, c, userns_fd, &sources, err);
	if (r == 0)
		r = crid_container_write_bundle(rt, c, pod, &defaults, &host, userns, sources, cdi_edits, err);
	crid_container_mount_sources_free(sources, c->config->n_mounts);
	crid_container_image_clear(&defaults);
	if (r < 0)
		return r;
	crid_container_oci(rt, c, runtime_root, sizeof(runtime_root), &oci);
	r = crid_mkdir_p(runtime_root, 0700, err);
	{
		struct crid_shim_launch l = {
			.id = c->id, .dir = c->dir, .oci = &oci, .log_path = c->log_path,
			.log_dir = pod->config->log_directory, .stdin_open = c->config->stdin,
			.stdin_once = c->config->stdin_once, .tty = c->config->tty,
			.subcontainer = c->handler->sandbox_per_pod,
		};

		if (r == 0)
			r = crid_shim_start(rt->shim_path, &l, &c->shim_pid, &c->pid, err);
	}
	if (r == 0)
		r = crid_exit_watch_add(rt, c, err);
	return r;
}

/* The container edits of the CDI devices the config asks for. */
static int resolve_cdi_devices(struct crid_runtime *rt, const Runtime__V1__ContainerConfig *config, json_t **edits,
			       struct crid_err *err)
{
	_cleanup_free_ const char **names = NULL;
	size_t n;
	int r;

	*edits = NULL;
	r = crid_cdi_requested(config, &names, &n, err);
	if (r < 0 || n == 0)
		return r;
	return crid_cdi_resolve(rt->cdi, names, n, edits, err);
}

/* No log without a pod log directory: a relative path alone would be
 * relative to wherever crid runs. */
static char *join_log_path(const char *dir, const char *rel)
{
	char *p;

	if (!rel || !*rel || !dir || !*dir)
		return strdup("");
	return asprintf(&p, "%s/%s", dir, rel) < 0 ? NULL : p;
}

static int create_container(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__CreateContainerRequest *req = (const Runtime__V1__CreateContainerRequest *)request;
	Runtime__V1__CreateContainerResponse resp = RUNTIME__V1__CREATE_CONTAINER_RESPONSE__INIT;
	_cleanup_(crid_pod_unrefp) struct crid_pod *pod = NULL;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	json_auto_t *cdi_edits = NULL;
	const char *cgroup_parent;
	bool ready;
	int r;

	if (!req->pod_sandbox_id || !*req->pod_sandbox_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "pod_sandbox_id is empty");
	if ((r = validate_container_config(req->config, err)) < 0)
		return r;
	/* Before anything exists: an unknown or conflicting device leaves
	 * nothing to undo. */
	if ((r = resolve_cdi_devices(rt, req->config, &cdi_edits, err)) < 0)
		return crid_err_wrap(err, "create container %s: ", req->config->metadata->name);
	r = crid_pod_find(rt, req->pod_sandbox_id, &pod, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&pod->lock);
	ready = atomic_load(&pod->ready);
	pthread_mutex_unlock(&pod->lock);
	if (!ready)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "pod sandbox %s is not ready", pod->id);
	c = calloc(1, sizeof(*c));
	if (!c)
		return crid_err_nomem(err, "container");
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	crid_cpu_rate_init(&c->cpu);
	pthread_mutex_init(&c->state_lock, NULL);
	pthread_cond_init(&c->changed, NULL);
	c->handler = pod->handler;
	c->host_network = pod->ns.net_path == NULL;
	memcpy(c->pod_id, pod->id, sizeof(c->pod_id));
	if ((r = crid_new_id(c->id, err)) < 0)
		return r;
	cgroup_parent = pod->config->linux && pod->config->linux->cgroup_parent && *pod->config->linux->cgroup_parent
				? pod->config->linux->cgroup_parent
				: "/crid";
	c->config = (Runtime__V1__ContainerConfig *)crid_message_copy(&req->config->base);
	c->image_name = strdup(req->config->image->image);
	c->log_path = join_log_path(pod->config->log_directory, req->config->log_path);
	if (!c->config || !c->image_name || !c->log_path ||
	    asprintf(&c->name_key, "%s_%s_%u", req->config->metadata->name, pod->id, req->config->metadata->attempt) < 0 ||
	    asprintf(&c->dir, "%s/%s", rt->containers_dir, c->id) < 0 ||
	    asprintf(&c->rootfs, "%s/%s/rootfs", rt->containers_dir, c->id) < 0 ||
	    asprintf(&c->upper, "%s/%s", rt->upper_dir, c->id) < 0 ||
	    asprintf(&c->cgroups_path, "%s%s%s", cgroup_parent[0] == '/' ? "" : "/", cgroup_parent, "") < 0)
		return crid_err_nomem(err, "container");
	{
		char *full;

		if (asprintf(&full, "%s/%s", c->cgroups_path, c->id) < 0)
			return crid_err_nomem(err, "container");
		free(c->cgroups_path);
		c->cgroups_path = full;
	}
	c->state = CRID_CTR_CREATED;

	pthread_mutex_lock(&rt->lock);
	if ((r = crid_containers_admit_locked(rt, crid_container_list_weight(c->config), err)) < 0) {
		pthread_mutex_unlock(&rt->lock);
		return r;
	}
	for (struct crid_container *q = rt->containers; q; q = q->next) {
		if (strcmp(q->name_key, c->name_key) == 0) {
			r = crid_err_set(err, CRID_ALREADY_EXISTS, 0, "container name %s is taken by container %s",
					 c->name_key, q->id);
			pthread_mutex_unlock(&rt->lock);
			return r;
		}
	}
	atomic_fetch_add(&c->refs, 1);
	c->next = rt->containers;
	rt->containers = c;
	pthread_mutex_unlock(&rt->lock);

	r = set_up_container(rt, c, pod, cdi_edits, err);
	if (r == 0 && crid_call_cancelled(call))
		r = crid_err_set(err, CRID_CANCELLED, ECANCELED, "the client cancelled CreateContainer");
	if (r < 0) {
		char runtime_root[PATH_MAX];
		struct crid_oci_runtime oci;
		struct crid_err ignored;

		crid_container_oci(rt, c, runtime_root, sizeof(runtime_root), &oci);
		kill_shim(c->shim_pid);
		crid_oci_delete(&oci, c->id, &ignored);
		remove_container_files(c, &ignored);
		crid_images_release(rt->images, c->id);
		crid_container_unlink(rt, c);
		return crid_err_wrap(err, "create container %s: ", c->name_key);
	}
	crid_container_measure_layer(rt, c);
	pthread_mutex_lock(&c->lock);
	pthread_mutex_lock(&c->state_lock);
	c->created_at = crid_realtime_ns();
	pthread_mutex_unlock(&c->state_lock);
	crid_container_persist(rt, c);
	crid_event_container(rt, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT, c->created_at);
	pthread_mutex_unlock(&c->lock);
	log_info("container created", "container", c->id, "name", c->name_key, "pod", pod->id);
	resp.container_id = c->id;
	return crid_call_send(call, &resp.base, err);
}

void crid_container_measure_layer(struct crid_runtime *rt, struct crid_container *c)
{
	char path[PATH_MAX];
	struct crid_err err;

	snprintf(path, sizeof(path), "%s/upper", c->upper);
	if (crid_layer_usage_add(rt->layers, c->id, path, &err) < 0)
		log_warn("writable layer not measured", "container", c->id, "error", err.msg);
}

/* ---- exits ---- */

/* OOM kills the container's memory cgroup counted (v1 memory.oom_control
 * "oom_kill", v2 memory.events "oom_kill"). */
static bool oom_killed(const char *cgroups_path)
{
	for (int i = 0; i < 3; i++) {
		char path[PATH_MAX], buf[512];
		ssize_t n;
		int fd;
		const char *p;

		if (i == 0)
			snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.oom_control", cgroups_path);
		else if (i == 1)
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.events", cgroups_path);
		else
			snprintf(path, sizeof(path), "/sys/fs/cgroup/unified%s/memory.events", cgroups_path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		p = strstr(buf, "oom_kill ");
		if (p && strtol(p + 9, NULL, 10) > 0)
			return true;
	}
	return false;
}

bool crid_container_collect_exit_locked(struct crid_runtime *rt, struct crid_container *c)
{
	_cleanup_free_ char *path = NULL;
	json_t *doc;
	struct crid_err err;
	char *text = NULL;
	size_t len;

	if (c->state == CRID_CTR_EXITED)
		return true;
	if (asprintf(&path, "%s/%s", c->dir, CRID_SHIM_EXIT_FILE) < 0)
		return false;
	if (crid_read_file_at(AT_FDCWD, path, 4096, &text, &len, &err) < 0)
		return false;
	doc = json_loadb(text, len, 0, NULL);
	free(text);
	if (!doc)
		return false;
	{
		bool oom = oom_killed(c->cgroups_path);
		char *start_failure;

		pthread_mutex_lock(&c->state_lock);
		c->exit_code = (int)json_integer_value(json_object_get(doc, "exit_code"));
		c->finished_at = json_integer_value(json_object_get(doc, "exited_at"));
		if (!c->finished_at)
			c->finished_at = crid_realtime_ns();
		if (!c->started_at)
			c->started_at = c->finished_at;
		c->state = CRID_CTR_EXITED;
		free(c->reason);
		c->reason = strdup(oom ? "OOMKilled" : c->exit_code == 0 ? "Completed" : "Error");
		if (!oom && (start_failure = crid_container_start_failure(c))) {
			/* The process never ran: say why, as the peers do. */
			free(c->reason);
			free(c->message);
			c->reason = strdup("StartError");
			c->message = start_failure;
		}
		/* Recorded before anyone can see it: after a reboot the exit file
		 * (on the run root) is gone and the record is all there is. */
		crid_container_persist(rt, c);
		pthread_mutex_unlock(&c->state_lock);
	}
	json_decref(doc);
	crid_container_publish_stop_locked(rt, c);
	pthread_cond_broadcast(&c->changed);
	return true;
}

void crid_container_publish_stop_locked(struct crid_runtime *rt, struct crid_container *c)
{
	if (c->stop_published)
		return;
	c->stop_published = true;
	crid_event_container(rt, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT, c->finished_at);
	log_debug("container exited", "container", c->id);
}

/* Waits (lock held) until the container exited or deadline (CLOCK_REALTIME ns). */
static bool wait_exit_locked(struct crid_runtime *rt, struct crid_container *c, int64_t deadline)
{
	while (!crid_container_collect_exit_locked(rt, c)) {
		struct timespec ts;
		int64_t until = crid_realtime_ns() + 200000000LL; /* re-check the file: a missed event is no hang */

		if (until > deadline)
			until = deadline;
		if (crid_realtime_ns() >= deadline)
			return false;
		ts.tv_sec = until / 1000000000LL;
		ts.tv_nsec = until % 1000000000LL;
		pthread_cond_timedwait(&c->changed, &c->lock, &ts);
	}
	return true;
}

/* ---- start, stop, remove ---- */

/* A container that joins its pod's sandbox is started by its shim, which
 * holds the stdio the runtime hands the container at start. */
static int start_in_sandbox(struct crid_container *c, struct crid_err *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	char answer[CRID_ERR_MSG_MAX + 16];
	size_t got = 0;

	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", c->dir, CRID_SHIM_CONTROL_SOCKET) >=
	    sizeof(addr.sun_path))
		return crid_err_set(err, CRID_INTERNAL, ENAMETOOLONG, "control socket of container %s", c->id);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return crid_err_set(err, CRID_UNAVAILABLE, errno, "reach crid-shim of container %s", c->id);
	if (write(fd, "start\n", 6) != 6)
		return crid_err_set(err, CRID_UNAVAILABLE, errno, "ask crid-shim of container %s", c->id);
	while (got < sizeof(answer) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, SHIM_START_TIMEOUT_MS) <= 0)
			break;
		n = read(fd, answer + got, sizeof(answer) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(answer, '\n', got))
			break;
	}
	answer[got] = '\0';
	answer[strcspn(answer, "\n")] = '\0';
	if (strcmp(answer, "ok") == 0)
		return 0;
	if (strncmp(answer, "error ", 6) == 0)
		return crid_err_set(err, CRID_INTERNAL, 0, "%s start of container %s: %s", c->handler->name, c->id,
				    answer + 6);
	return crid_err_set(err, CRID_INTERNAL, 0, "crid-shim of container %s gave no answer to start", c->id);
}

static int start_container(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__StartContainerRequest *req = (const Runtime__V1__StartContainerRequest *)request;
	Runtime__V1__StartContainerResponse resp = RUNTIME__V1__START_CONTAINER_RESPONSE__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	char runtime_root[PATH_MAX];
	struct crid_oci_runtime oci;
	int64_t started_at;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	if ((r = crid_container_find(rt, req->container_id, &c, err)) < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	if (c->state != CRID_CTR_CREATED) {
		r = crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "container %s is not in the created state", c->id);
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	crid_container_oci(rt, c, runtime_root, sizeof(runtime_root), &oci);
	/* Taken before: the process may run and exit before start returns, and
	 * the shim's exit time must not come before the start time. */
	started_at = crid_realtime_ns();
	r = c->handler->sandbox_per_pod ? start_in_sandbox(c, err) : crid_oci_start(&oci, c->id, err);
	if (r == 0) {
		pthread_mutex_lock(&c->state_lock);
		c->state = CRID_CTR_RUNNING;
		c->started_at = started_at;
		pthread_mutex_unlock(&c->state_lock);
		/* Under the lock, so STARTED goes out before the exit watcher's
		 * STOPPED, stamped with the start time itself. */
		crid_event_container(rt, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT, started_at);
		if (!crid_container_collect_exit_locked(rt, c)) /* a very short life records itself */
			crid_container_persist(rt, c);
	} else {
		/* The runtime's reason stays with the container: status shows it. */
		pthread_mutex_lock(&c->state_lock);
		free(c->message);
		c->message = strdup(err->msg);
		pthread_mutex_unlock(&c->state_lock);
	}
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return r;
	return crid_call_send(call, &resp.base, err);
}

/* Stops c: its stop signal, then SIGKILL after timeout_s. Lock not held. */
static int stop_one(struct crid_runtime *rt, struct crid_container *c, int64_t timeout_s, struct crid_err *err)
{
	char runtime_root[PATH_MAX];
	struct crid_oci_runtime oci;
	int r = 0;

	crid_container_oci(rt, c, runtime_root, sizeof(runtime_root), &oci);
	pthread_mutex_lock(&c->lock);
	if (c->state == CRID_CTR_CREATED) {
		/* Never started: its init waits to exec; kill it so it ends.
		 * In a sandbox there is no process yet, only its shim. */
		if (c->handler->sandbox_per_pod)
			kill_shim(c->shim_pid);
		else
			crid_oci_kill(&oci, c->id, SIGKILL, 0, err);
		wait_exit_locked(rt, c, crid_realtime_ns() + (c->handler->sandbox_per_pod ? 0 : 10000000000LL));
		if (c->state != CRID_CTR_EXITED) {
			pthread_mutex_lock(&c->state_lock);
			c->state = CRID_CTR_EXITED;
			c->finished_at = crid_realtime_ns();
			free(c->reason);
			c->reason = strdup("Error");
			crid_container_persist(rt, c);
			pthread_mutex_unlock(&c->state_lock);
			crid_container_publish_stop_locked(rt, c);
		}
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (c->state != CRID_CTR_RUNNING) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (timeout_s > 0) {
		crid_oci_kill(&oci, c->id, c->stop_signal, 0, err);
		if (wait_exit_locked(rt, c, crid_realtime_ns() + timeout_s * 1000000000LL)) {
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
	}
	crid_oci_kill(&oci, c->id, SIGKILL, 1, err);
	if (!wait_exit_locked(rt, c, crid_realtime_ns() + 30000000000LL))
		r = crid_err_set(err, CRID_DEADLINE_EXCEEDED, 0, "container %s did not exit after SIGKILL", c->id);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int stop_container(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__StopContainerRequest *req = (const Runtime__V1__StopContainerRequest *)request;
	Runtime__V1__StopContainerResponse resp = RUNTIME__V1__STOP_CONTAINER_RESPONSE__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	r = crid_container_find(rt, req->container_id, &c, err);
	if (r < 0 && err->status == CRID_NOT_FOUND)
		return crid_call_send(call, &resp.base, err); /* idempotent, as the kubelet expects */
	if (r < 0)
		return r;
	r = stop_one(rt, c, req->timeout, err);
	if (r < 0)
		return crid_err_wrap(err, "stop container %s: ", c->id);
	return crid_call_send(call, &resp.base, err);
}

static int remove_one(struct crid_runtime *rt, struct crid_container *c, struct crid_err *err)
{
	char runtime_root[PATH_MAX];
	struct crid_oci_runtime oci;
	int r;

	r = stop_one(rt, c, 0, err);
	if (r < 0)
		return r;
	crid_container_oci(rt, c, runtime_root, sizeof(runtime_root), &oci);
	pthread_mutex_lock(&c->lock);
	r = crid_oci_delete(&oci, c->id, err);
	if (r == 0)
		r = remove_container_files(c, err);
	if (r == 0)
		c->removed = true;
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return r;
	crid_object_forget(rt, "container", c->id);
	crid_layer_usage_remove(rt->layers, c->id);
	crid_images_release(rt->images, c->id);
	crid_container_unlink(rt, c);
	crid_event_container(rt, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT, 0);
	log_info("container removed", "container", c->id);
	return 0;
}

static int remove_container(void *data, const ProtobufCMessage *request, struct crid_call *call,
			    struct crid_err *err)
{
	struct crid_runtime *rt = data;
	const Runtime__V1__RemoveContainerRequest *req = (const Runtime__V1__RemoveContainerRequest *)request;
	Runtime__V1__RemoveContainerResponse resp = RUNTIME__V1__REMOVE_CONTAINER_RESPONSE__INIT;
	_cleanup_(crid_container_unrefp) struct crid_container *c = NULL;
	int r;

	if (!req->container_id || !*req->container_id)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "container_id is empty");
	r = crid_container_find(rt, req->container_id, &c, err);
	if (r < 0 && err->status == CRID_NOT_FOUND)
		return crid_call_send(call, &resp.base, err);
	if (r < 0)
		return r;
	r = remove_one(rt, c, err);
	if (r < 0)
		return crid_err_wrap(err, "remove container %s: ", c->id);
	return crid_call_send(call, &resp.base, err);
}

/* The pod's containers, each with a reference taken. */
static int pod_containers(struct crid_runtime *rt, const char *pod_id, struct crid_container ***out, size_t *n,
			  struct crid_err *err)
{
	size_t count = 0, k = 0;

	pthread_mutex_lock(&rt->lock);
	for (struct crid_container *c = rt->containers; c; c = c->next)
		count += strcmp(c->pod_id, pod_id) == 0;
	*out = calloc(count ? count : 1, sizeof(**out));
	if (!*out) {
		pthread_mutex_unlock(&rt->lock);
		return crid_err_nomem(err, "container list");
	}
	for (struct crid_container *c = rt->containers; c; c = c->next) {
		if (strcmp(c->pod_id, pod_id) == 0) {
			atomic_fetch_add(&c->refs, 1);
			(*out)[k++] = c;
		}
	}
	pthread_mutex_unlock(&rt->lock);
	*n = k;
	return 0;
}

static int for_pod(struct crid_runtime *rt, const char *pod_id, bool remove, struct crid_err *err)
{
	struct crid_container **list;
	size_t n = 0;
	int r = pod_containers(rt, pod_id, &list, &n, err), first = 0;

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct crid_err e;

		crid_err_clear(&e);
		r = remove ? remove_one(rt, list[i], &e) : stop_one(rt, list[i], 0, &e);
		if (r < 0 && !first) {
			first = r;
			*err = e;
		}
		crid_container_unref(list[i]);
	}
	free(list);
	return first;
}

int crid_containers_stop_pod(struct crid_runtime *rt, const char *pod_id, struct crid_err *err)
{
	return for_pod(rt, pod_id, false, err);
}

int crid_containers_remove_pod(struct crid_runtime *rt, const char *pod_id, struct crid_err *err)
{
	return for_pod(rt, pod_id, true, err);
}

int crid_containers_register(struct crid_runtime *rt, struct crid_rpc_methods *m, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "CreateContainer", create_container },
		{ "StartContainer", start_container },
		{ "StopContainer", stop_container },
		{ "RemoveContainer", remove_container },
	};
	int r = crid_rpc_methods_register_all(m, "RuntimeService", handlers, CRID_ARRAY_SIZE(handlers), rt, err);

	if (r == 0)
		r = crid_container_queries_register(rt, m, err);
	if (r == 0)
		r = crid_container_stats_register(rt, m, err);
	return r;
}
