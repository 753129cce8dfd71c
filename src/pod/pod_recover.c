/* Pods at start-up (pod.h): each recorded pod is checked against what the
 * machine still has (its run directory, pinned namespaces, pod init); a
 * pod whose kernel state is gone (a reboot) is reported not ready and can
 * be removed through the normal RPCs. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "network/network.h"
#include "oci/oci_runtime.h"
#include "pod/pod.h"
#include "pod/pod_sandbox.h"
#include "runtime/objects.h"
#include "store/store.h"

/* The pod's network attachment: checked while the pod is ready; released
 * at once when it is not (its namespace is gone after a reboot, or the
 * pod is done), so no address waits for the kubelet to stop the pod. */
static void recover_network(struct crid_runtime *rt, struct crid_pod *p)
{
	struct crid_err err;

	p->net = crid_network_claim(rt->net, p->id);
	if (!p->net)
		return;
	crid_err_clear(&err);
	if (atomic_load(&p->ready)) {
		if (crid_network_check(rt->net, p->net, &err) < 0)
			log_warn("pod network check failed", "pod", p->id, "error", err.msg);
	} else if (crid_network_detach(rt->net, p->net, &err) < 0) {
		log_warn("cannot release the network of a pod that is not ready; StopPodSandbox will try again",
			 "pod", p->id, "error", err.msg);
	} else {
		log_info("released the network of a pod that is not ready", "pod", p->id);
	}
}

void crid_pod_recover(struct crid_runtime *rt, const struct crid_object_record *rec)
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
	crid_cpu_rate_init(&p->cpu);
	snprintf(p->id, sizeof(p->id), "%s", rec->id);
	p->config = runtime__v1__pod_sandbox_config__unpack(NULL, rec->config_len, rec->config);
	if (!p->config || !p->config->metadata)
		goto fail;
	m = p->config->metadata;
	p->handler_name = strdup(crid_record_str(st, "handler"));
	p->handler = crid_config_find_runtime(rt->cfg, p->handler_name);
	if (!p->handler)
		p->handler = crid_config_find_runtime(rt->cfg, ""); /* the handler left the configuration */
	p->created_at = json_integer_value(json_object_get(st, "created_at"));
	p->resources = json_incref(json_object_get(st, "resources"));
	atomic_init(&p->ready, json_is_true(json_object_get(st, "ready")));
	if (!p->handler_name || asprintf(&p->name_key, "%s_%s_%s_%u", m->name, m->namespace_, m->uid, m->attempt) < 0 ||
	    asprintf(&p->dir, "%s/%s", rt->pods_dir, p->id) < 0)
		goto fail;
	if (stat(p->dir, &sb) == 0 && (sb.st_mode & 077))
		chmod(p->dir, 0700); /* an older crid's: its /dev/shm was open to all */
	if (stat(p->dir, &sb) < 0) {
		atomic_store(&p->ready, false); /* the run directory is gone: a reboot */
	} else if (crid_pod_ns_load(p->dir, (pid_t)json_integer_value(json_object_get(st, "init_pid")), &p->ns,
				    &err) < 0) {
		log_warn("pod sandbox namespaces are gone", "pod", p->id, "error", err.msg);
		atomic_store(&p->ready, false);
	}
	if (p->ns.init_pid && kill(p->ns.init_pid, 0) < 0)
		atomic_store(&p->ready, false); /* its shared PID namespace died with its init */
	p->sandbox_shim_pid = (pid_t)json_integer_value(json_object_get(st, "sandbox_shim_pid"));
	p->sandbox_pid = (pid_t)json_integer_value(json_object_get(st, "sandbox_pid"));
	if (p->handler->sandbox_per_pod && atomic_load(&p->ready) && !crid_pod_sandbox_alive(p)) {
		log_warn("pod sandbox container is gone", "pod", p->id);
		atomic_store(&p->ready, false);
	}
	recover_network(rt, p);
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
		json_decref(p->resources);
		free(p->handler_name);
		free(p->name_key);
		free(p->dir);
		free(p);
	}
	log_error("cannot recover a pod sandbox record", "pod", rec->id);
}

void crid_pods_adopt_or_remove_unknown(struct crid_runtime *rt)
{
	_cleanup_closedir_ DIR *d = opendir(rt->pods_dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		bool known = false;
		struct crid_err err;

		if (strlen(de->d_name) != CRID_ID_LEN)
			continue;
		for (struct crid_pod *p = rt->pods; p && !known; p = p->next)
			known = strcmp(p->id, de->d_name) == 0;
		if (known)
			continue;
		snprintf(path, sizeof(path), "%s/%s", rt->pods_dir, de->d_name);
		/* Recorded once (its directory holds a copy): crid.db lost it. */
		{
			struct crid_object_record rec;

			if (crid_object_adopt(rt, "pod", path, de->d_name, &rec) == 0) {
				crid_pod_recover(rt, &rec);
				crid_object_record_clear(&rec);
				continue;
			}
		}
		log_info("removing what an interrupted create left", "path", path);
		/* A sandbox container that RunPodSandbox had started. */
		for (size_t i = 0; i < rt->cfg->n_runtimes; i++) {
			const struct crid_runtime_handler *h = &rt->cfg->runtimes[i];
			char root[PATH_MAX];
			struct crid_oci_runtime oci;

			if (!h->sandbox_per_pod)
				continue;
			crid_oci_runtime_for(rt->cfg->run_root, h, root, sizeof(root), &oci);
			if (crid_oci_delete(&oci, de->d_name, &err) < 0)
				log_warn("cannot delete a leftover sandbox", "pod", de->d_name, "error", err.msg);
		}
		crid_pod_ns_remove(path, &err);
	}
}
