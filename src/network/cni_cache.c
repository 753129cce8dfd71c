/* Attachments in the store (cni.h): one record per pod, kind "network",
 * holding everything DEL needs — the network list ADD used, CNI_ARGS, the
 * capability arguments, the namespace and the result — so DEL works the
 * same after a restart, a crash or a reboot, whatever the configuration
 * directory holds by then. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "network/cni.h"

#define KIND "network"

int crid_cni_cache_put(struct crid_store *db, const struct crid_network_attachment *a, struct crid_err *err)
{
	json_t *j = json_pack("{s:s, s:s, s:O, s:O, s:b, s:O?}", "netns", a->netns, "args", a->args, "network",
			      a->conflist->list, "runtimeConfig", a->runtime_config, "added", (int)a->added, "result",
			      a->result);
	_cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int r;

	json_decref(j);
	if (!text)
		return crid_err_nomem(err, "network attachment record");
	r = crid_store_object_put(db, KIND, a->pod_id, NULL, 0, text, err);
	if (r < 0)
		return crid_err_wrap(err, "record the network attachment of pod %s: ", a->pod_id);
	return 0;
}

int crid_cni_cache_forget(struct crid_store *db, const char *pod_id, struct crid_err *err)
{
	int r = crid_store_object_delete(db, KIND, pod_id, err);

	if (r < 0)
		return crid_err_wrap(err, "forget the network attachment of pod %s: ", pod_id);
	return 0;
}

static int from_record(const struct crid_object_record *rec, struct crid_network_attachment **out,
		       struct crid_err *err)
{
	_cleanup_(json_decrefp) json_t *j = json_loads(rec->state, 0, NULL);
	struct crid_network_attachment *a;
	const char *netns, *args;
	json_t *result, *rc;
	int r;

	*out = NULL;
	netns = json_string_value(json_object_get(j, "netns"));
	args = json_string_value(json_object_get(j, "args"));
	rc = json_object_get(j, "runtimeConfig");
	result = json_object_get(j, "result");
	if (!j || !netns || !args || !json_is_object(rc) || strlen(rec->id) >= sizeof(a->pod_id))
		return crid_err_set(err, CRID_DATA_LOSS, 0, "the record is not an attachment");
	if (!(a = calloc(1, sizeof(*a))))
		return crid_err_nomem(err, "network attachment");
	strcpy(a->pod_id, rec->id);
	a->added = json_is_true(json_object_get(j, "added"));
	a->runtime_config = json_incref(rc);
	a->result = json_is_object(result) ? json_incref(result) : NULL;
	if (!(a->netns = strdup(netns)) || !(a->args = strdup(args))) {
		crid_network_attachment_free(a);
		return crid_err_nomem(err, "network attachment");
	}
	r = crid_cni_conflist_new("", json_object_get(j, "network"), false, &a->conflist, err);
	if (r == 0 && a->result)
		r = crid_cni_result_ips(a->result, CRID_CNI_IFNAME, &a->ips, &a->n_ips, err);
	if (r < 0) {
		crid_network_attachment_free(a);
		return r;
	}
	*out = a;
	return 0;
}

int crid_cni_cache_load(struct crid_store *db, struct crid_network_attachment ***out, size_t *n,
			struct crid_err *err)
{
	struct crid_object_record *recs = NULL;
	struct crid_network_attachment **v;
	size_t n_recs = 0;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = crid_store_object_list(db, KIND, &recs, &n_recs, err)) < 0)
		return crid_err_wrap(err, "read the network attachments: ");
	v = calloc(n_recs ? n_recs : 1, sizeof(*v));
	if (!v) {
		crid_object_records_free(recs, n_recs);
		return crid_err_nomem(err, "network attachments");
	}
	for (size_t i = 0; i < n_recs; i++) {
		struct crid_err e;

		if (from_record(&recs[i], &v[*n], &e) < 0)
			log_error("cannot read a network attachment record", "pod", recs[i].id, "error", e.msg);
		else
			(*n)++;
	}
	crid_object_records_free(recs, n_recs);
	*out = v;
	return 0;
}
