/* PullImage: reference → manifest (through an index when there is one) →
 * config → layers, downloaded in parallel and unpacked while they stream,
 * then one store transaction that makes the image visible. Two pulls of one
 * blob or layer download it once: the second waits on the first's slot. */
#include <errno.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "image/images_internal.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/unpack.h"

#define MAX_CONFIG_BYTES (8 << 20)

/* ---- fetch slots ---- */

static struct fetch_slot *slot_find(struct crid_images *im, const char *key)
{
	for (struct fetch_slot *s = im->slots; s; s = s->next)
		if (strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

static struct fetch_slot *slot_get_locked(struct crid_images *im, const char *key)
{
	struct fetch_slot *s = slot_find(im, key);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->key = strdup(key);
	if (!s->key) {
		free(s);
		return NULL;
	}
	s->next = im->slots;
	im->slots = s;
	return s;
}

static void slot_put_locked(struct crid_images *im, struct fetch_slot *s)
{
	if (s->users || s->pins || s->busy)
		return;
	for (struct fetch_slot **p = &im->slots; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	free(s->key);
	free(s);
}

/* Waits until nobody fetches key, then takes it. Returns 0, or -ENOMEM. */
static int slot_acquire(struct crid_images *im, const char *key, struct fetch_slot **out)
{
	struct fetch_slot *s;

	pthread_mutex_lock(&im->lock);
	s = slot_get_locked(im, key);
	if (!s) {
		pthread_mutex_unlock(&im->lock);
		return -ENOMEM;
	}
	s->users++;
	while (s->busy)
		pthread_cond_wait(&im->slot_done, &im->lock);
	s->busy = true;
	pthread_mutex_unlock(&im->lock);
	*out = s;
	return 0;
}

static void slot_release(struct crid_images *im, struct fetch_slot *s)
{
	pthread_mutex_lock(&im->lock);
	s->busy = false;
	s->users--;
	pthread_cond_broadcast(&im->slot_done);
	slot_put_locked(im, s);
	pthread_mutex_unlock(&im->lock);
}

bool crid_images_pinned_locked(struct crid_images *im, const char *chain_id)
{
	struct fetch_slot *s = slot_find(im, chain_id);

	return s && s->pins > 0;
}

static int pin(struct crid_images *im, char **chain_ids, size_t n)
{
	pthread_mutex_lock(&im->lock);
	for (size_t i = 0; i < n; i++) {
		struct fetch_slot *s = slot_get_locked(im, chain_ids[i]);

		if (!s) {
			for (size_t j = 0; j < i; j++) {
				struct fetch_slot *t = slot_find(im, chain_ids[j]);

				t->pins--;
				slot_put_locked(im, t);
			}
			pthread_mutex_unlock(&im->lock);
			return -ENOMEM;
		}
		s->pins++;
	}
	pthread_mutex_unlock(&im->lock);
	return 0;
}

/* Unpins; layers that ended up recorded by no image and pinned by no one
 * (this pull failed) are removed. */
static void unpin(struct crid_images *im, char **chain_ids, size_t n, bool committed)
{
	pthread_mutex_lock(&im->lock);
	for (size_t i = 0; i < n; i++) {
		struct fetch_slot *s = slot_find(im, chain_ids[i]);
		struct crid_err err;

		if (!s)
			continue;
		s->pins--;
		if (!committed && s->pins == 0 && !s->busy && crid_store_layer_known(im->db, chain_ids[i], &err) == 0 &&
		    crid_image_files_remove_layer(&im->files, chain_ids[i], &err) == 0)
			crid_store_layer_pending_drop(im->db, chain_ids[i], &err);
		slot_put_locked(im, s);
	}
	pthread_mutex_unlock(&im->lock);
}

/* ---- one pull ---- */

struct layer_job {
	struct crid_layer_record rec;
	const struct crid_layer_desc *desc;
	bool fetched; /* unpacked by this pull (usage measured) */
};

struct pull {
	struct crid_images *im;
	struct crid_registry *reg;
	const char *repo; /* path in the registry: "library/busybox" */
	struct layer_job *jobs;
	size_t n_jobs;
	pthread_mutex_t lock;
	size_t next_job;
	int first_error;
	struct crid_err err;
	atomic_uint_fast64_t fetched; /* blob bytes fetched from registries */
};

static int sink_to_unpacker(void *data, const void *buf, size_t len, struct crid_err *err)
{
	return crid_unpack_write(data, buf, len, err);
}

/* Downloads and unpacks one layer into layers/<chain>, unless it is there. */
static int fetch_layer(struct pull *p, struct layer_job *job, struct crid_err *err)
{
	struct crid_images *im = p->im;
	_cleanup_free_ char *tmp_name = NULL, *tmp_path = NULL;
	struct fetch_slot *slot;
	struct crid_unpack u;
	int r;

	if (slot_acquire(im, job->rec.chain_id, &slot) < 0)
		return crid_err_nomem(err, "layer slot");
	if (crid_image_files_has_layer(&im->files, job->rec.chain_id)) {
		slot_release(im, slot);
		return 0;
	}
	r = crid_image_files_tmp_dir(&im->files, &tmp_name, &tmp_path, err);
	if (r < 0)
		goto out;
	r = crid_unpack_start_reserved(&u, tmp_path, job->rec.diff_id, im->cfg->state_free_reserve_bytes, err);
	if (r < 0)
		goto out;
	r = crid_registry_get_blob(p->reg, p->repo, job->desc->desc.digest, job->desc->desc.size, sink_to_unpacker, &u,
				   err);
	if (r < 0) {
		crid_unpack_abort(&u);
		goto out;
	}
	atomic_fetch_add(&p->fetched, (uint64_t)(job->desc->desc.size > 0 ? job->desc->desc.size : 0));
	r = crid_unpack_finish(&u, err);
	if (r < 0)
		goto out;
	r = crid_disk_usage_at(im->files.tmp_fd, tmp_name, &job->rec.disk_bytes, &job->rec.disk_inodes, err);
	if (r < 0)
		goto out;
	r = crid_image_files_commit_layer(&im->files, tmp_name, job->rec.chain_id, err);
	if (r == 0) {
		free(take_ptr(&tmp_name));
		job->fetched = true;
	}
out:
	if (tmp_name)
		crid_image_files_drop_tmp(&im->files, tmp_name);
	slot_release(im, slot);
	if (r < 0)
		return crid_err_wrap(err, "layer %s: ", job->desc->desc.digest);
	return r;
}

static void *layer_worker(void *arg)
{
	struct pull *p = arg;

	for (;;) {
		struct crid_err err;
		size_t i;
		int r;

		pthread_mutex_lock(&p->lock);
		if (p->first_error || p->next_job >= p->n_jobs) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		i = p->next_job++;
		pthread_mutex_unlock(&p->lock);
		crid_err_clear(&err);
		r = fetch_layer(p, &p->jobs[i], &err);
		if (r < 0) {
			pthread_mutex_lock(&p->lock);
			if (!p->first_error) {
				p->first_error = r;
				p->err = err;
			}
			pthread_mutex_unlock(&p->lock);
		}
	}
}

/* Runs the layer jobs on up to max_concurrent_downloads threads; the
 * calling thread is one of them. */
static int fetch_layers(struct pull *p, struct crid_err *err)
{
	pthread_t threads[64];
	size_t want = p->im->cfg->max_concurrent_downloads, started = 0;

	if (want > CRID_ARRAY_SIZE(threads) + 1)
		want = CRID_ARRAY_SIZE(threads) + 1;
	if (want > p->n_jobs)
		want = p->n_jobs;
	for (size_t i = 1; i < want; i++) {
		if (pthread_create(&threads[started], NULL, layer_worker, p) != 0)
			break; /* fewer helpers: slower, not wrong */
		started++;
	}
	layer_worker(p);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (p->first_error) {
		*err = p->err;
		return p->first_error;
	}
	return 0;
}

/* Gets a small blob (the config), from the store or the registry; stores it. */
struct buf_sink {
	char *data;
	size_t len, cap;
};

static int sink_to_buffer(void *data, const void *buf, size_t len, struct crid_err *err)
{
	struct buf_sink *b = data;

	if (b->len + len > MAX_CONFIG_BYTES)
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, 0, "image config larger than %d bytes",
				    MAX_CONFIG_BYTES);
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 8192;
		char *grown;

		while (cap < b->len + len + 1)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (!grown)
			return crid_err_nomem(err, "image config");
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

static int fetch_config(struct pull *p, const struct crid_descriptor *d, char **data, size_t *len,
			struct crid_err *err)
{
	struct crid_images *im = p->im;
	struct buf_sink b = { 0 };
	struct fetch_slot *slot;
	int r;

	if (slot_acquire(im, d->digest, &slot) < 0)
		return crid_err_nomem(err, "config slot");
	if (crid_image_files_has_blob(&im->files, d->digest)) {
		r = crid_image_files_get_blob(&im->files, d->digest, data, len, err);
		slot_release(im, slot);
		return r;
	}
	r = crid_registry_get_blob(p->reg, p->repo, d->digest, d->size, sink_to_buffer, &b, err);
	if (r == 0)
		atomic_fetch_add(&p->fetched, b.len);
	if (r == 0 && !b.data)
		r = sink_to_buffer(&b, "", 0, err);
	if (r == 0)
		r = crid_image_files_put_blob(&im->files, d->digest, b.data, b.len, err);
	slot_release(im, slot);
	if (r < 0) {
		free(b.data);
		return crid_err_wrap(err, "image config %s: ", d->digest);
	}
	*data = b.data;
	*len = b.len;
	return 0;
}

static void registry_freep(struct crid_registry **r)
{
	crid_registry_free(*r);
}

static void ref_freep(struct crid_image_ref *ref)
{
	crid_image_ref_free(ref);
}

static void manifest_freep(struct crid_manifest *m)
{
	crid_manifest_free(m);
}

static void config_freep(struct crid_image_config *c)
{
	crid_image_config_free(c);
}

static void descriptor_freep(struct crid_descriptor *d)
{
	crid_descriptor_free(d);
}

/* Makes the pulled image visible: checks its layers are all in place,
 * then records everything in one transaction. */
static int commit_image(struct pull *p, const struct crid_image_ref *ref, const char *top_digest,
			const char *manifest_digest, const char *config_digest, int64_t size, struct crid_err *err)
{
	struct crid_images *im = p->im;
	/* A tag given with a digest may point elsewhere: only the digest counts. */
	_cleanup_free_ char *tagged = ref->digest ? NULL : crid_image_ref_tagged(ref);
	_cleanup_free_ char *digested = crid_image_ref_with_digest(ref, top_digest);
	_cleanup_free_ struct crid_layer_record *layers = calloc(p->n_jobs ? p->n_jobs : 1, sizeof(*layers));
	char *tags[1], *digests[1];
	struct crid_image_record rec = {
		.id = (char *)config_digest,
		.manifest_digest = (char *)manifest_digest,
		.size = size,
		.pulled_at = crid_realtime_ns(),
		.repo_digests = digests,
		.n_repo_digests = 1,
		.layers = layers,
		.n_layers = p->n_jobs,
	};
	int r;

	if (!digested || !layers || (ref->tag && !ref->digest && !tagged))
		return crid_err_nomem(err, "image record");
	digests[0] = digested;
	if (tagged) {
		tags[0] = tagged;
		rec.repo_tags = tags;
		rec.n_repo_tags = 1;
	}
	for (size_t i = 0; i < p->n_jobs; i++) {
		struct layer_job *job = &p->jobs[i];

		/* A layer another pull unpacked is measured here if unrecorded. */
		if (!job->fetched && crid_store_layer_known(im->db, job->rec.chain_id, err) == 0) {
			const char *hex = job->rec.chain_id + 7;

			crid_disk_usage_at(im->files.layers_fd, hex, &job->rec.disk_bytes, &job->rec.disk_inodes, err);
		}
		layers[i] = job->rec;
	}
	pthread_mutex_lock(&im->lock);
	for (size_t i = 0; i < p->n_jobs; i++) {
		if (!crid_image_files_has_layer(&im->files, layers[i].chain_id)) {
			pthread_mutex_unlock(&im->lock);
			return crid_err_set(err, CRID_ABORTED, 0, "layer %s vanished during the pull; pull again",
					    layers[i].chain_id);
		}
	}
	r = crid_store_image_put(im->db, &rec, err);
	pthread_mutex_unlock(&im->lock);
	return r;
}

static void layer_jobs_free(struct layer_job *jobs, size_t n)
{
	if (!jobs)
		return;
	for (size_t i = 0; i < n; i++)
		free(jobs[i].rec.chain_id);
	free(jobs);
}

int crid_images_pull(struct crid_images *im, const char *image, const struct crid_registry_auth *auth,
		     const atomic_bool *cancel, char **image_id, uint64_t *fetched, struct crid_err *err)
{
	_cleanup_(ref_freep) struct crid_image_ref ref = { 0 };
	_cleanup_(registry_freep) struct crid_registry *reg = NULL;
	_cleanup_(manifest_freep) struct crid_manifest m = { 0 };
	_cleanup_(config_freep) struct crid_image_config cfg = { 0 };
	_cleanup_(descriptor_freep) struct crid_descriptor chosen = { 0 };
	_cleanup_free_ char *body = NULL, *ctype = NULL, *top_digest = NULL;
	_cleanup_free_ char *mbody = NULL, *mctype = NULL, *mdigest = NULL;
	_cleanup_free_ char *config = NULL;
	_cleanup_free_ char **chain_ids = NULL;
	struct crid_platform host;
	struct crid_registry_options opts = { .cfg = im->cfg, .auth = auth, .stop = &im->stop, .cancel = cancel };
	struct pull p = { .im = im };
	size_t len = 0, mlen = 0, config_len = 0;
	int64_t size;
	bool pinned = false;
	int r;

	r = crid_image_ref_parse(image, &ref, err);
	if (r < 0)
		return r;
	opts.domain = ref.domain;
	r = crid_registry_new(&reg, &opts, err);
	if (r < 0)
		return r;
	p.reg = reg;
	p.repo = ref.path;
	pthread_mutex_init(&p.lock, NULL);

	r = crid_registry_get_manifest(reg, ref.path, ref.digest ? ref.digest : ref.tag, &body, &len, &ctype,
				       &top_digest, err);
	if (r < 0)
		goto out;
	r = crid_manifest_parse(body, len, ctype, &m, err);
	if (r < 0)
		goto out;
	if (m.kind == CRID_MANIFEST_INDEX) {
		crid_platform_host(&host);
		r = crid_manifest_index_select(body, len, &host, &chosen, err);
		if (r < 0)
			goto out;
		crid_manifest_free(&m);
		memset(&m, 0, sizeof(m));
		r = crid_registry_get_manifest(reg, ref.path, chosen.digest, &mbody, &mlen, &mctype, &mdigest, err);
		if (r < 0)
			goto out;
		r = crid_manifest_parse(mbody, mlen, mctype ? mctype : chosen.media_type, &m, err);
		if (r < 0)
			goto out;
		if (m.kind != CRID_MANIFEST_IMAGE) {
			r = crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "index entry %s is itself an index", mdigest);
			goto out;
		}
	}
	r = fetch_config(&p, &m.config, &config, &config_len, err);
	if (r < 0)
		goto out;
	r = crid_image_config_parse(config, config_len, &cfg, err);
	if (r < 0)
		goto out;
	if (cfg.n_diff_ids != m.n_layers) {
		r = crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				 "the image config lists %zu layers (rootfs.diff_ids) but the manifest has %zu",
				 cfg.n_diff_ids, m.n_layers);
		goto out;
	}
	chain_ids = calloc(m.n_layers ? m.n_layers : 1, sizeof(*chain_ids));
	p.jobs = calloc(m.n_layers ? m.n_layers : 1, sizeof(*p.jobs));
	if (!chain_ids || !p.jobs) {
		r = crid_err_nomem(err, "layer list");
		goto out;
	}
	p.n_jobs = m.n_layers;
	r = crid_chain_ids(cfg.diff_ids, cfg.n_diff_ids, chain_ids, err);
	if (r < 0)
		goto out;
	size = m.config.size;
	for (size_t i = 0; i < m.n_layers; i++) {
		p.jobs[i].desc = &m.layers[i];
		p.jobs[i].rec.chain_id = chain_ids[i];
		p.jobs[i].rec.diff_id = cfg.diff_ids[i];
		p.jobs[i].rec.blob_digest = m.layers[i].desc.digest;
		p.jobs[i].rec.blob_size = m.layers[i].desc.size;
		size += m.layers[i].desc.size;
	}
	r = pin(im, chain_ids, m.n_layers);
	if (r < 0) {
		r = crid_err_nomem(err, "layer pins");
		goto out;
	}
	pinned = true;
	/* Marked before any appears: start-up tells an interrupted pull's
	 * layers from those a lost database no longer names. */
	r = crid_store_layers_pending_add(im->db, chain_ids, m.n_layers, err);
	if (r < 0)
		goto out;
	r = fetch_layers(&p, err);
	if (r < 0)
		goto out;
	/* Manifests are kept for status and for pulling again by digest. */
	r = crid_image_files_put_blob(&im->files, top_digest, body, len, err);
	if (r == 0 && mbody)
		r = crid_image_files_put_blob(&im->files, mdigest, mbody, mlen, err);
	if (r < 0)
		goto out;
	r = commit_image(&p, &ref, top_digest, mdigest ? mdigest : top_digest, m.config.digest, size, err);
	if (r < 0)
		goto out;
	*image_id = strdup(m.config.digest);
	if (!*image_id)
		r = crid_err_nomem(err, "image ID");
out:
	if (pinned)
		unpin(im, chain_ids, m.n_layers, r == 0);
	if (chain_ids) {
		for (size_t i = 0; i < p.n_jobs; i++)
			p.jobs[i].rec.chain_id = NULL; /* owned by chain_ids */
		crid_strv_free(take_ptr(&chain_ids), m.n_layers);
	}
	layer_jobs_free(p.jobs, p.n_jobs);
	pthread_mutex_destroy(&p.lock);
	*fetched = atomic_load(&p.fetched);
	if (r < 0)
		return crid_err_wrap(err, "pull %s: ", image);
	return 0;
}
