/* The features Status reports and RunPodSandbox relies on (objects.h),
 * found once and kept: user namespaces need the kernel to make them and to
 * ID-map the state root's file system, run directories a namespace's root
 * can walk through, and a runtime that joins one; recursive read-only mounts
 * need mount_setattr and a runtime that knows "rro". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "common/fsutil.h"
#include "common/idmap.h"
#include "common/log.h"
#include "runtime/objects.h"

static void probe(struct crid_runtime *rt)
{
	struct crid_err err;

	rt->handler_features = calloc(rt->cfg->n_runtimes ? rt->cfg->n_runtimes : 1, sizeof(*rt->handler_features));
	if (!rt->handler_features)
		return; /* tried again next time */
	for (size_t i = 0; i < rt->cfg->n_runtimes; i++)
		crid_handler_features(&rt->cfg->runtimes[i], &rt->handler_features[i]);
	rt->userns_ok = crid_idmap_supported(rt->cfg->state_root) && crid_check_searchable(rt->containers_dir, &err) == 0 &&
			crid_check_searchable(rt->pods_dir, &err) == 0;
	rt->rro_ok = !(mount_setattr(-1, "", 0, NULL, 0) < 0 && errno == ENOSYS);
	rt->features_probed = true;
	log_info("runtime features", "user_namespaces", rt->userns_ok ? "true" : "false", "recursive_read_only",
		 rt->rro_ok ? "true" : "false");
}

void crid_runtime_features(struct crid_runtime *rt, const struct crid_runtime_handler *h,
			   struct crid_handler_features *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&rt->features_lock);
	if (!rt->features_probed)
		probe(rt);
	if (rt->features_probed && h && h >= rt->cfg->runtimes && h < rt->cfg->runtimes + rt->cfg->n_runtimes) {
		const struct crid_handler_features *f = &rt->handler_features[h - rt->cfg->runtimes];

		out->user_namespaces = f->user_namespaces && rt->userns_ok;
		out->rro = f->rro && rt->rro_ok;
	}
	pthread_mutex_unlock(&rt->features_lock);
}
