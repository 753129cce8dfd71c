/* Pod networking (network.h): the configuration in use and its readiness,
 * and a pod's attachment run as libcni runs a network list — ADD through
 * the plugins in order, each given the result of the one before; DEL in
 * reverse with the cached result; CHECK in order — with the attachment
 * recorded before ADD starts, so that a crash at any point leaves a record
 * from which start-up releases what was made. */
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "network/cni.h"

void crid_cni_reload(struct crid_network *net)
{
	struct crid_cni_conflist *l = NULL, *old;
	char why[sizeof(net->why)] = "";
	bool same;

	crid_cni_conflist_load_dir(net->cfg->cni_conf_dir, &l, why, sizeof(why));
	pthread_mutex_lock(&net->lock);
	old = net->current;
	same = (!old && !l && strcmp(why, net->why) == 0) ||
	       (old && l && strcmp(old->file, l->file) == 0 && json_equal(old->list, l->list));
	net->current = l;
	snprintf(net->why, sizeof(net->why), "%s", why);
	pthread_mutex_unlock(&net->lock);
	if (!same && l)
		log_info("CNI network configuration in use", "file", l->file, "network", l->name, "cni_version",
			 l->version);
	else if (!same)
		log_warn("no CNI network configuration in use", "reason", why);
	crid_cni_conflist_unref(old);
}

/* The configuration in use (a reference), or NULL and why there is none. */
static struct crid_cni_conflist *current(struct crid_network *net, char *why, size_t size)
{
	struct crid_cni_conflist *l;

	pthread_mutex_lock(&net->lock);
	l = crid_cni_conflist_ref(net->current);
	if (!l && why)
		snprintf(why, size, "%s", net->why);
	pthread_mutex_unlock(&net->lock);
	return l;
}

/* A plugin a crashed crid left running would race with the DEL or CHECK
 * recovery runs for the same pod. */
static void kill_orphans(struct crid_network *net)
{
	_cleanup_free_ const char **ids = calloc(net->n_pending ? net->n_pending : 1, sizeof(*ids));

	if (!ids)
		return;
	for (size_t i = 0; i < net->n_pending; i++)
		ids[i] = net->pending[i]->pod_id;
	crid_cni_kill_orphans(ids, net->n_pending);
}

int crid_network_new(struct crid_network **out, const struct crid_config *cfg, struct crid_store *db,
		     struct crid_err *err)
{
	struct crid_network *net = calloc(1, sizeof(*net));
	size_t len = 0;
	int r;

	*out = NULL;
	if (!net)
		return crid_err_nomem(err, "network");
	net->cfg = cfg;
	net->db = db;
	crid_stoppable_thread_init(&net->watcher);
	pthread_mutex_init(&net->lock, NULL);
	net->exec.bin_dirs = cfg->cni_bin_dirs;
	net->exec.n_bin_dirs = cfg->n_cni_bin_dirs;
	net->exec.timeout_s = cfg->cni_plugin_timeout_s;
	for (size_t i = 0; i < cfg->n_cni_bin_dirs; i++)
		len += strlen(cfg->cni_bin_dirs[i]) + 1;
	net->exec.cni_path = calloc(1, len + 1);
	if (!net->exec.cni_path) {
		crid_network_free(net);
		return crid_err_nomem(err, "network");
	}
	for (size_t i = 0; i < cfg->n_cni_bin_dirs; i++) {
		if (i)
			strcat(net->exec.cni_path, ":");
		strcat(net->exec.cni_path, cfg->cni_bin_dirs[i]);
	}
	/* As the kubelet's other runtimes do: the directory a network's
	 * installer writes into exists from the start. */
	if ((r = crid_mkdir_p(cfg->cni_conf_dir, 0755, err)) < 0)
		log_warn("cannot make the CNI configuration directory", "error", err->msg);
	if ((r = crid_cni_cache_load(db, &net->pending, &net->n_pending, err)) < 0 ||
	    (r = crid_cni_watch_start(net, err)) < 0) {
		crid_network_free(net);
		return r;
	}
	kill_orphans(net);
	*out = net;
	return 0;
}

void crid_network_free(struct crid_network *net)
{
	if (!net)
		return;
	crid_cni_watch_stop(net);
	for (size_t i = 0; i < net->n_pending; i++)
		crid_network_attachment_free(net->pending[i]);
	free(net->pending);
	crid_cni_conflist_unref(net->current);
	free(net->exec.cni_path);
	pthread_mutex_destroy(&net->lock);
	free(net);
}

void crid_network_readiness(struct crid_network *net, struct crid_network_readiness *out)
{
	struct crid_cni_conflist *l = current(net, out->message, sizeof(out->message));

	out->ready = l != NULL;
	snprintf(out->reason, sizeof(out->reason), "%s", l ? "" : "NetworkPluginNotReady");
	if (l)
		out->message[0] = '\0';
	crid_cni_conflist_unref(l);
}

json_t *crid_network_describe(struct crid_network *net)
{
	char why[sizeof(net->why)];
	struct crid_cni_conflist *l = current(net, why, sizeof(why));
	json_t *j;

	if (!l)
		return json_pack("{s:s, s:s}", "confDir", net->cfg->cni_conf_dir, "error", why);
	j = json_pack("{s:s, s:s, s:O}", "confDir", net->cfg->cni_conf_dir, "file", l->file, "network", l->list);
	crid_cni_conflist_unref(l);
	return j;
}

void crid_network_attachment_free(struct crid_network_attachment *a)
{
	if (!a)
		return;
	crid_cni_conflist_unref(a->conflist);
	json_decref(a->runtime_config);
	json_decref(a->result);
	for (size_t i = 0; i < a->n_ips; i++)
		free(a->ips[i]);
	free(a->ips);
	free(a->netns);
	free(a->args);
	free(a);
}

bool crid_network_attachment_detached(const struct crid_network_attachment *a)
{
	return a->detached;
}

size_t crid_network_attachment_ips(const struct crid_network_attachment *a, const char *const **ips)
{
	*ips = (const char *const *)a->ips;
	return a->n_ips;
}

json_t *crid_network_attachment_describe(const struct crid_network_attachment *a)
{
	return json_pack("{s:s, s:s, s:O?, s:b}", "network", a->conflist->name, "cniVersion", a->conflist->version,
			 "result", a->result, "detached", (int)a->detached);
}

static void invocation(const struct crid_network_attachment *a, const char *command, const char *netns,
		       struct crid_cni_invocation *inv)
{
	inv->command = command;
	inv->container_id = a->pod_id;
	inv->netns = netns;
	inv->ifname = CRID_CNI_IFNAME;
	inv->args = a->args;
}

/* Calls plugin i; *result may be NULL (DEL, CHECK). Errors name the
 * plugin's place in the list. */
static int call_plugin(struct crid_network *net, const struct crid_network_attachment *a, size_t i,
		       const char *command, const char *netns, const json_t *prev, json_t **result, struct crid_err *err)
{
	const struct crid_cni_conflist *l = a->conflist;
	_cleanup_(json_decrefp) json_t *conf = crid_cni_plugin_conf(l, i, a->runtime_config, prev);
	struct crid_cni_invocation inv;

	*result = NULL;
	if (!conf)
		return crid_err_nomem(err, "plugin configuration");
	invocation(a, command, netns, &inv);
	return crid_cni_exec_plugin(&net->exec, crid_cni_plugin_type(l, i), &inv, conf, result, err);
}

/* Whether the recorded namespace still exists: DEL is told of it only
 * then (after a reboot the pin is gone, and plugins must not be given a
 * path that is no namespace). */
static const char *live_netns(const struct crid_network_attachment *a)
{
	struct statfs sf;

	return statfs(a->netns, &sf) == 0 && sf.f_type == NSFS_MAGIC ? a->netns : "";
}

/* DEL of plugins [0, upto), in reverse; every one is called, the first
 * failure is kept. skip: a plugin that never ran (its binary is missing). */
static int del_plugins(struct crid_network *net, struct crid_network_attachment *a, size_t upto, size_t skip,
		       const json_t *prev, struct crid_err *err)
{
	const char *netns = live_netns(a);
	/* 0.3.x plugins get no prevResult on DEL, as libcni gives none. */
	const json_t *cached = crid_cni_version_cmp(a->conflist->version, "0.4.0") >= 0 ? prev : NULL;
	int first = 0;

	for (size_t i = upto; i-- > 0;) {
		struct crid_err e;
		json_t *ignored = NULL;
		int r;

		if (i == skip)
			continue;
		crid_err_clear(&e);
		r = call_plugin(net, a, i, "DEL", netns, cached, &ignored, &e);
		json_decref(ignored);
		if (r < 0 && !first) {
			first = r;
			*err = e;
		}
	}
	return first;
}

static int new_attachment(const struct crid_network_pod *pod, struct crid_cni_conflist *l,
			  struct crid_network_attachment **out, struct crid_err *err)
{
	struct crid_network_attachment *a = calloc(1, sizeof(*a));
	int r;

	*out = NULL;
	if (!a) {
		crid_cni_conflist_unref(l);
		return crid_err_nomem(err, "network attachment");
	}
	a->conflist = l;
	snprintf(a->pod_id, sizeof(a->pod_id), "%s", pod->id);
	if (!(a->netns = strdup(pod->netns))) {
		crid_network_attachment_free(a);
		return crid_err_nomem(err, "network attachment");
	}
	if ((r = crid_cni_pod_args(pod->config, pod->id, &a->args, err)) < 0 ||
	    (r = crid_cni_runtime_config(pod->config, pod->pod_cidr, &a->runtime_config, err)) < 0) {
		crid_network_attachment_free(a);
		return r;
	}
	*out = a;
	return 0;
}

int crid_network_attach(struct crid_network *net, const struct crid_network_pod *pod,
			struct crid_network_attachment **out, struct crid_err *err)
{
	char why[sizeof(net->why)];
	struct crid_cni_conflist *l = current(net, why, sizeof(why));
	struct crid_network_attachment *a;
	json_t *prev = NULL;
	size_t i;
	int r;

	*out = NULL;
	if (!l)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "the pod network is not ready: %s", why);
	if ((r = new_attachment(pod, l, &a, err)) < 0)
		return r;
	/* Recorded first: if crid dies while the plugins run, start-up finds
	 * what to release. */
	if ((r = crid_cni_cache_put(net->db, a, err)) < 0) {
		crid_network_attachment_free(a);
		return r;
	}
	for (i = 0; i < l->n_plugins; i++) {
		json_t *result = NULL;

		r = call_plugin(net, a, i, "ADD", a->netns, prev, &result, err);
		if (r == 0 && !result)
			r = crid_err_set(err, CRID_UNKNOWN, 0, "plugin %s (ADD) answered no result", crid_cni_plugin_type(l, i));
		if (r == 0 && (r = crid_cni_result_check(result, err)) < 0)
			crid_err_wrap(err, "plugin %s (ADD): ", crid_cni_plugin_type(l, i));
		if (r < 0) {
			json_decref(result);
			break;
		}
		json_decref(prev);
		prev = result;
	}
	if (r == 0) {
		a->result = take_ptr(&prev);
		a->added = true;
		r = crid_cni_result_ips(a->result, CRID_CNI_IFNAME, &a->ips, &a->n_ips, err);
		if (r == 0)
			r = crid_cni_cache_put(net->db, a, err);
		if (r < 0)
			i = l->n_plugins - 1; /* all ran: all are undone */
	}
	if (r < 0) {
		struct crid_err e;
		/* What ran is undone; a plugin that could not be found never ran. */
		size_t skip = err->errnum == ENOENT && err->status == CRID_FAILED_PRECONDITION ? i : (size_t)-1;

		crid_err_clear(&e);
		if (del_plugins(net, a, i + 1, skip, prev ? prev : a->result, &e) < 0)
			log_error("cannot undo a failed network set-up; start-up will try again", "pod", a->pod_id,
				  "error", e.msg);
		else if (crid_cni_cache_forget(net->db, a->pod_id, &e) < 0)
			log_error("cannot forget a network attachment", "pod", a->pod_id, "error", e.msg);
		json_decref(prev);
		crid_err_wrap(err, "set up network %s (%s): ", l->name, *l->file ? l->file : "recorded");
		crid_network_attachment_free(a);
		return r;
	}
	log_debug("pod network set up", "pod", a->pod_id, "network", l->name, "ip", a->n_ips ? a->ips[0] : "");
	*out = a;
	return 0;
}

int crid_network_detach(struct crid_network *net, struct crid_network_attachment *a, struct crid_err *err)
{
	int r;

	if (a->detached)
		return 0;
	r = del_plugins(net, a, a->conflist->n_plugins, (size_t)-1, a->result, err);
	if (r == 0)
		r = crid_cni_cache_forget(net->db, a->pod_id, err);
	if (r < 0)
		return crid_err_wrap(err, "tear down network %s: ", a->conflist->name);
	a->detached = true;
	log_debug("pod network torn down", "pod", a->pod_id, "network", a->conflist->name);
	return 0;
}

int crid_network_check(struct crid_network *net, struct crid_network_attachment *a, struct crid_err *err)
{
	const struct crid_cni_conflist *l = a->conflist;
	const char *netns = live_netns(a);

	if (a->detached || !a->added || !a->result || l->disable_check ||
	    crid_cni_version_cmp(l->version, "0.4.0") < 0 || !*netns)
		return 0;
	for (size_t i = 0; i < l->n_plugins; i++) {
		json_t *ignored = NULL;
		int r = call_plugin(net, a, i, "CHECK", netns, a->result, &ignored, err);

		json_decref(ignored);
		if (r < 0)
			return crid_err_wrap(err, "check network %s: ", l->name);
	}
	return 0;
}

struct crid_network_attachment *crid_network_claim(struct crid_network *net, const char *pod_id)
{
	for (size_t i = 0; i < net->n_pending; i++) {
		struct crid_network_attachment *a = net->pending[i];

		if (strcmp(a->pod_id, pod_id) == 0) {
			net->pending[i] = net->pending[--net->n_pending];
			return a;
		}
	}
	return NULL;
}

void crid_network_release_unclaimed(struct crid_network *net)
{
	for (size_t i = 0; i < net->n_pending; i++) {
		struct crid_network_attachment *a = net->pending[i];
		struct crid_err err;

		crid_err_clear(&err);
		if (crid_network_detach(net, a, &err) < 0)
			log_error("cannot release the network of a pod whose creation was cut short", "pod", a->pod_id,
				  "error", err.msg);
		else
			log_info("released the network of a pod whose creation was cut short", "pod", a->pod_id);
		crid_network_attachment_free(a);
	}
	net->n_pending = 0;
}
