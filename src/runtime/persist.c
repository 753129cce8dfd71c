/* Pods and containers in the store, and their recovery at start-up: what
 * crid remembers is checked against what the machine still has (pinned
 * namespaces, live shims, exit files), so after a crash or a reboot every
 * object is reported as it really is, and everything left over can be
 * removed through the normal RPCs. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "runtime/runtime_internal.h"
#include "shim/protocol.h"
#include "store/store.h"

static int put(struct crid_runtime *rt, const char *kind, const char *id, const ProtobufCMessage *config,
	       json_t *state)
{
	size_t len = protobuf_c_message_get_packed_size(config);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	_cleanup_free_ char *text = state ? json_dumps(state, JSON_COMPACT) : NULL;
	struct crid_err err;
	int r;

	json_decref(state);
	if (!buf || !text) {
		log_error("cannot record object: out of memory", "id", id);
		return -ENOMEM;
	}
	protobuf_c_message_pack(config, buf);
	r = crid_store_object_put(rt->db, kind, id, buf, len, text, &err);
	if (r < 0)
		log_error("cannot record object", "id", id, "error", err.msg);
	return r;
}

int crid_pod_persist(struct crid_runtime *rt, struct crid_pod *p)
{
	return put(rt, "pod", p->id, &p->config->base,
		   json_pack("{s:s, s:I, s:b, s:i}", "handler", p->handler_name, "created_at", (json_int_t)p->created_at,
			     "ready", (int)atomic_load(&p->ready), "init_pid", (int)p->ns.init_pid));
}

int crid_container_persist(struct crid_runtime *rt, struct crid_container *c)
{
	return put(rt, "container", c->id, &c->config->base,
		   json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:i, s:I, s:I, s:I, s:i, s:s?, s:s?, s:s, s:s, s:i, s:i, s:i, s:O?}",
			     "pod_id", c->pod_id, "handler", c->handler->name, "image_name", c->image_name, "image_id",
			     c->image_id ? c->image_id : "", "image_shown", c->image_shown, "image_ref", c->image_ref,
			     "state", (int)c->state, "created_at",
			     (json_int_t)c->created_at, "started_at", (json_int_t)c->started_at, "finished_at",
			     (json_int_t)c->finished_at, "exit_code", c->exit_code, "reason", c->reason, "message",
			     c->message, "log_path", c->log_path, "cgroups_path", c->cgroups_path, "stop_signal",
			     c->stop_signal, "shim_pid", (int)c->shim_pid, "pid", (int)c->pid, "process", c->process));
}

void crid_object_forget(struct crid_runtime *rt, const char *kind, const char *id)
{
	struct crid_err err;

	if (crid_store_object_delete(rt->db, kind, id, &err) < 0)
		log_error("cannot forget object", "id", id, "error", err.msg);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void recover_pod(struct crid_runtime *rt, const struct crid_object_record *rec)
{
	struct crid_pod *p = calloc(1, sizeof(*p));
	json_t *st = json_loads(rec->state, 0, NULL);
	struct crid_err err;
	struct stat sb;
	const Runtime__V1__PodSandboxMetadata *m;

	if (!p || !st)
		goto fail;
	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->lock, NULL);
	snprintf(p->id, sizeof(p->id), "%s", rec->id);
	p->config = runtime__v1__pod_sandbox_config__unpack(NULL, rec->config_len, rec->config);
	if (!p->config || !p->config->metadata)
		goto fail;
	m = p->config->metadata;
	p->handler_name = strdup(jstr(st, "handler"));
	p->handler = crid_config_find_runtime(rt->cfg, p->handler_name);
	if (!p->handler)
		p->handler = crid_config_find_runtime(rt->cfg, ""); /* the handler left the configuration */
	p->created_at = json_integer_value(json_object_get(st, "created_at"));
	atomic_init(&p->ready, json_is_true(json_object_get(st, "ready")));
	if (!p->handler_name || asprintf(&p->name_key, "%s_%s_%s_%u", m->name, m->namespace_, m->uid, m->attempt) < 0 ||
	    asprintf(&p->dir, "%s/%s", rt->pods_dir, p->id) < 0)
		goto fail;
	if (stat(p->dir, &sb) < 0) {
		atomic_store(&p->ready, false); /* the run directory is gone: a reboot */
	} else if (crid_pod_ns_load(p->dir, (pid_t)json_integer_value(json_object_get(st, "init_pid")), &p->ns,
				    &err) < 0) {
		log_warn("pod sandbox namespaces are gone", "pod", p->id, "error", err.msg);
		atomic_store(&p->ready, false);
	}
	if (p->ns.init_pid && kill(p->ns.init_pid, 0) < 0)
		atomic_store(&p->ready, false); /* its shared PID namespace died with its init */
	json_decref(st);
	p->next = rt->pods;
	rt->pods = p;
	crid_pod_persist(rt, p);
	log_info("recovered pod sandbox", "pod", p->id, "ready", atomic_load(&p->ready) ? "true" : "false");
	return;
fail:
	json_decref(st);
	if (p) {
		if (p->config)
			protobuf_c_message_free_unpacked(&p->config->base, NULL);
		free(p->handler_name);
		free(p->name_key);
		free(p->dir);
		free(p);
	}
	log_error("cannot recover a pod sandbox record", "pod", rec->id);
}

/* Whether pid is still the crid-shim of container id. */
static bool shim_alive(pid_t pid, const char *id)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return strstr(buf, "crid-shim") && strstr(buf, id);
}

static void recover_container(struct crid_runtime *rt, const struct crid_object_record *rec)
{
	struct crid_container *c = calloc(1, sizeof(*c));
	json_t *st = json_loads(rec->state, 0, NULL);
	const Runtime__V1__ContainerMetadata *m;
	struct crid_err err;

	if (!c || !st)
		goto fail;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->state_lock, NULL);
	pthread_cond_init(&c->changed, NULL);
	snprintf(c->id, sizeof(c->id), "%s", rec->id);
	snprintf(c->pod_id, sizeof(c->pod_id), "%s", jstr(st, "pod_id"));
	c->config = runtime__v1__container_config__unpack(NULL, rec->config_len, rec->config);
	if (!c->config || !c->config->metadata)
		goto fail;
	m = c->config->metadata;
	c->handler = crid_config_find_runtime(rt->cfg, jstr(st, "handler"));
	if (!c->handler)
		c->handler = crid_config_find_runtime(rt->cfg, "");
	c->image_name = strdup(jstr(st, "image_name"));
	c->image_id = strdup(jstr(st, "image_id"));
	/* Records from before these were kept show what they knew. */
	c->image_shown = strdup(json_is_string(json_object_get(st, "image_shown")) ? jstr(st, "image_shown")
										   : jstr(st, "image_name"));
	c->image_ref = strdup(json_is_string(json_object_get(st, "image_ref")) ? jstr(st, "image_ref")
									       : jstr(st, "image_id"));
	c->state = (enum crid_ctr_state)json_integer_value(json_object_get(st, "state"));
	c->created_at = json_integer_value(json_object_get(st, "created_at"));
	c->started_at = json_integer_value(json_object_get(st, "started_at"));
	c->finished_at = json_integer_value(json_object_get(st, "finished_at"));
	c->exit_code = (int)json_integer_value(json_object_get(st, "exit_code"));
	if (json_is_string(json_object_get(st, "reason")))
		c->reason = strdup(jstr(st, "reason"));
	if (json_is_string(json_object_get(st, "message")))
		c->message = strdup(jstr(st, "message"));
	c->log_path = strdup(jstr(st, "log_path"));
	c->cgroups_path = strdup(jstr(st, "cgroups_path"));
	c->stop_signal = (int)json_integer_value(json_object_get(st, "stop_signal"));
	c->shim_pid = (pid_t)json_integer_value(json_object_get(st, "shim_pid"));
	c->pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
	c->process = json_incref(json_object_get(st, "process"));
	if (!c->image_name || !c->image_id || !c->image_shown || !c->image_ref || !c->log_path || !c->cgroups_path ||
	    asprintf(&c->name_key, "%s_%s_%u", m->name, c->pod_id, m->attempt) < 0 ||
	    asprintf(&c->dir, "%s/%s", rt->containers_dir, c->id) < 0 ||
	    asprintf(&c->rootfs, "%s/%s/rootfs", rt->containers_dir, c->id) < 0 ||
	    asprintf(&c->upper, "%s/%s", rt->upper_dir, c->id) < 0)
		goto fail;
	json_decref(st);
	st = NULL;
	if (c->state == CRID_CTR_CREATED || c->state == CRID_CTR_RUNNING) {
		/* The exit may have happened while crid was away: the shim
		 * recorded it. A shim that is gone took the exit code along. */
		if (!crid_container_collect_exit_locked(rt, c)) {
			if (shim_alive(c->shim_pid, c->id)) {
				if (crid_exit_watch_add(rt, c, &err) < 0)
					log_warn("cannot watch container", "container", c->id, "error", err.msg);
				crid_container_collect_exit_locked(rt, c); /* exited just now */
			} else {
				c->state = CRID_CTR_EXITED;
				c->exit_code = 255;
				c->finished_at = c->finished_at ? c->finished_at : c->created_at;
				free(c->reason);
				free(c->message);
				c->reason = strdup("Error");
				c->message = strdup("crid-shim is gone (a reboot?): the exit code is unknown");
			}
		}
	}
	c->next = rt->containers;
	rt->containers = c;
	crid_container_persist(rt, c);
	log_info("recovered container", "container", c->id);
	return;
fail:
	json_decref(st);
	if (c) {
		if (c->config)
			protobuf_c_message_free_unpacked(&c->config->base, NULL);
		json_decref(c->process);
		free(c->image_name);
		free(c->image_id);
		free(c->image_shown);
		free(c->image_ref);
		free(c->reason);
		free(c->message);
		free(c->log_path);
		free(c->cgroups_path);
		free(c->name_key);
		free(c->dir);
		free(c->rootfs);
		free(c->upper);
		free(c);
	}
	log_error("cannot recover a container record", "container", rec->id);
}

/* Directories under dir whose names are no known object: what a crash in
 * the middle of a create left. */
static void remove_unknown_dirs(struct crid_runtime *rt, const char *dir, bool pods, bool containers_run_dir)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		bool known = false;
		struct crid_err err;

		if (strlen(de->d_name) != CRID_ID_LEN)
			continue;
		if (pods) {
			for (struct crid_pod *p = rt->pods; p && !known; p = p->next)
				known = strcmp(p->id, de->d_name) == 0;
		} else {
			for (struct crid_container *c = rt->containers; c && !known; c = c->next)
				known = strcmp(c->id, de->d_name) == 0;
		}
		if (known)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		log_info("removing what an interrupted create left", "path", path);
		if (pods) {
			crid_pod_ns_remove(path, &err);
			continue;
		}
		if (containers_run_dir) {
			char rootfs[PATH_MAX + 8];

			/* A create the runtime finished: its process waits to start. */
			for (size_t i = 0; i < rt->cfg->n_runtimes; i++) {
				char root[PATH_MAX];
				struct crid_oci_runtime oci;

				crid_oci_runtime_for(rt, &rt->cfg->runtimes[i], root, sizeof(root), &oci);
				crid_oci_delete(&oci, de->d_name, &err);
			}
			snprintf(rootfs, sizeof(rootfs), "%s/rootfs", path);
			umount2(rootfs, MNT_DETACH);
		}
		if (crid_rmtree_at(AT_FDCWD, path, &err) < 0)
			log_warn("cannot remove a leftover", "path", path, "error", err.msg);
		if (containers_run_dir)
			crid_images_release(rt->images, de->d_name);
	}
}

int crid_runtime_recover(struct crid_runtime *rt, struct crid_err *err)
{
	struct crid_object_record *recs = NULL;
	size_t n = 0;
	int r;

	if ((r = crid_store_object_list(rt->db, "pod", &recs, &n, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		recover_pod(rt, &recs[i]);
	crid_object_records_free(recs, n);
	if ((r = crid_store_object_list(rt->db, "container", &recs, &n, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		recover_container(rt, &recs[i]);
	crid_object_records_free(recs, n);
	remove_unknown_dirs(rt, rt->pods_dir, true, false);
	remove_unknown_dirs(rt, rt->containers_dir, false, true);
	remove_unknown_dirs(rt, rt->upper_dir, false, false);
	return 0;
}
