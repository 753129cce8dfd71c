/* Containers at start-up (container.h): each recorded container is checked
 * against its shim and exit file, so an exit that happened while crid was
 * away is reported as it happened, and a container whose shim is gone (a
 * reboot) is reported exited with an unknown code. What an interrupted
 * CreateContainer left is removed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "container/container.h"
#include "oci/oci_runtime.h"
#include "runtime/objects.h"
#include "shim/protocol.h"
#include "store/store.h"

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

void crid_container_recover(struct crid_runtime *rt, const struct crid_object_record *rec)
{
	struct crid_container *c = calloc(1, sizeof(*c));
	json_t *st = json_loads(rec->state, 0, NULL);
	const Runtime__V1__ContainerMetadata *m;
	struct crid_err err;

	if (!c || !st)
		goto fail;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	crid_cpu_rate_init(&c->cpu);
	pthread_mutex_init(&c->state_lock, NULL);
	pthread_cond_init(&c->changed, NULL);
	snprintf(c->id, sizeof(c->id), "%s", rec->id);
	snprintf(c->pod_id, sizeof(c->pod_id), "%s", crid_record_str(st, "pod_id"));
	c->config = runtime__v1__container_config__unpack(NULL, rec->config_len, rec->config);
	if (!c->config || !c->config->metadata)
		goto fail;
	m = c->config->metadata;
	c->handler = crid_config_find_runtime(rt->cfg, crid_record_str(st, "handler"));
	if (!c->handler)
		c->handler = crid_config_find_runtime(rt->cfg, "");
	c->host_network = json_is_true(json_object_get(st, "host_network"));
	c->image_name = strdup(crid_record_str(st, "image_name"));
	c->image_id = strdup(crid_record_str(st, "image_id"));
	/* Records from before these were kept show what they knew. */
	c->image_shown = strdup(json_is_string(json_object_get(st, "image_shown")) ? crid_record_str(st, "image_shown")
										   : crid_record_str(st, "image_name"));
	c->image_ref = strdup(json_is_string(json_object_get(st, "image_ref")) ? crid_record_str(st, "image_ref")
									       : crid_record_str(st, "image_id"));
	c->state = (enum crid_ctr_state)json_integer_value(json_object_get(st, "state"));
	c->created_at = json_integer_value(json_object_get(st, "created_at"));
	c->started_at = json_integer_value(json_object_get(st, "started_at"));
	c->finished_at = json_integer_value(json_object_get(st, "finished_at"));
	c->exit_code = (int)json_integer_value(json_object_get(st, "exit_code"));
	if (json_is_string(json_object_get(st, "reason")))
		c->reason = strdup(crid_record_str(st, "reason"));
	if (json_is_string(json_object_get(st, "message")))
		c->message = strdup(crid_record_str(st, "message"));
	c->log_path = strdup(crid_record_str(st, "log_path"));
	c->cgroups_path = strdup(crid_record_str(st, "cgroups_path"));
	c->stop_signal = (int)json_integer_value(json_object_get(st, "stop_signal"));
	c->shim_pid = (pid_t)json_integer_value(json_object_get(st, "shim_pid"));
	c->pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
	c->process = json_incref(json_object_get(st, "process"));
	c->resources = json_incref(json_object_get(st, "resources"));
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
	/* At start-up nobody listens to events yet: none are due. */
	c->stop_published = c->state == CRID_CTR_EXITED;
	c->next = rt->containers;
	rt->containers = c;
	crid_container_persist(rt, c);
	crid_container_measure_layer(rt, c);
	log_info("recovered container", "container", c->id);
	return;
fail:
	json_decref(st);
	if (c) {
		if (c->config)
			protobuf_c_message_free_unpacked(&c->config->base, NULL);
		json_decref(c->process);
		json_decref(c->resources);
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

/* Directories under dir whose names are no known container: what a crash
 * in the middle of a create left. run_dir: the bundle directories, whose
 * container the runtime may know and whose rootfs may be mounted. */
static void remove_unknown_dirs(struct crid_runtime *rt, const char *dir, bool run_dir)
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
		for (struct crid_container *c = rt->containers; c && !known; c = c->next)
			known = strcmp(c->id, de->d_name) == 0;
		if (known)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		log_info("removing what an interrupted create left", "path", path);
		if (run_dir) {
			/* A create the runtime finished: its process waits to start. */
			for (size_t i = 0; i < rt->cfg->n_runtimes; i++) {
				char root[PATH_MAX];
				struct crid_oci_runtime oci;

				crid_oci_runtime_for(rt->cfg->run_root, &rt->cfg->runtimes[i], root, sizeof(root),
						     &oci);
				crid_oci_delete(&oci, de->d_name, &err);
			}
			/* Its root file system and staged volumes. */
			if (crid_container_unmount_all(path, &err) < 0)
				log_warn("cannot unmount a leftover", "path", path, "error", err.msg);
		}
		if (crid_rmtree_at(AT_FDCWD, path, &err) < 0)
			log_warn("cannot remove a leftover", "path", path, "error", err.msg);
		if (run_dir)
			crid_images_release(rt->images, de->d_name);
	}
}

static bool known(struct crid_runtime *rt, const char *id)
{
	for (struct crid_container *c = rt->containers; c; c = c->next)
		if (strcmp(c->id, id) == 0)
			return true;
	return false;
}

/* An adopted container's layers are those its overlay was made of (the
 * links in its bundle's lower/): they stay while it does. */
static void adopt_layer_users(struct crid_runtime *rt, const char *id)
{
	char lower[PATH_MAX];
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	char **ids = NULL;
	size_t n = 0, cap = 0;
	struct crid_err err;

	snprintf(lower, sizeof(lower), "%s/%s/lower", rt->containers_dir, id);
	d = opendir(lower);
	if (!d)
		return; /* not mounted (a reboot): nothing to keep */
	while ((de = readdir(d))) {
		char target[PATH_MAX], *hex;
		ssize_t len = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);

		if (len <= 0)
			continue;
		target[len] = '\0';
		hex = strrchr(target, '/');
		hex = hex ? hex + 1 : target;
		if (strlen(hex) != 64)
			continue;
		if (n == cap) {
			char **grown = realloc(ids, (cap ? cap * 2 : 16) * sizeof(*ids));

			if (!grown)
				break;
			ids = grown;
			cap = cap ? cap * 2 : 16;
		}
		if (asprintf(&ids[n], "sha256:%s", hex) < 0)
			break;
		n++;
	}
	if (n && crid_store_layer_users_add(rt->db, id, ids, n, &err) < 0)
		log_error("cannot record the layers of an adopted container", "container", id, "error", err.msg);
	crid_strv_free(ids, n);
}

/* Writable layer directories no record names but holding a record copy:
 * containers crid.db lost, running or not. */
static void adopt_unknown(struct crid_runtime *rt)
{
	_cleanup_closedir_ DIR *d = opendir(rt->upper_dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct crid_object_record rec;
		char path[PATH_MAX];

		if (strlen(de->d_name) != CRID_ID_LEN || known(rt, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", rt->upper_dir, de->d_name);
		if (crid_object_adopt(rt, "container", path, de->d_name, &rec) < 0)
			continue;
		crid_container_recover(rt, &rec);
		crid_object_record_clear(&rec);
		if (known(rt, de->d_name))
			adopt_layer_users(rt, de->d_name);
	}
}

void crid_containers_adopt_or_remove_unknown(struct crid_runtime *rt)
{
	adopt_unknown(rt);
	remove_unknown_dirs(rt, rt->containers_dir, true);
	remove_unknown_dirs(rt, rt->upper_dir, false);
}
