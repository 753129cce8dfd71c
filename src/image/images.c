/* ImageService handlers (images.h) over the store's records and the image
 * files, plus the start-up clean-up of what a crash left behind. */
#include "common/clock.h"
#include "image/images.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "image/images_internal.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/unpack.h"
#include "runtime/v1/api.pb-c.h"

static bool listed(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static void remove_layer(struct crid_images *im, const char *chain_id)
{
	struct crid_err e;

	log_info("removing a layer no image uses", "layer", chain_id);
	if (crid_image_files_remove_layer(&im->files, chain_id, &e) < 0)
		log_warn("cannot remove layer", "layer", chain_id, "error", e.msg);
}

static void remove_blob(struct crid_images *im, const char *digest)
{
	crid_image_files_remove_blob(&im->files, digest);
}

/* Removes what list_present finds on disk that list_known does not name. */
static int remove_unknown(struct crid_images *im,
			  int (*list_known)(struct crid_store *, char ***, size_t *, struct crid_err *),
			  int (*list_present)(struct crid_image_files *, char ***, size_t *, struct crid_err *),
			  void (*remove)(struct crid_images *, const char *), struct crid_err *err)
{
	char **known = NULL, **present = NULL;
	size_t n_known = 0, n_present = 0;
	int r;

	if ((r = list_known(im->db, &known, &n_known, err)) < 0)
		return r;
	if ((r = list_present(&im->files, &present, &n_present, err)) < 0) {
		crid_strv_free(known, n_known);
		return r;
	}
	for (size_t i = 0; i < n_present; i++)
		if (!listed(known, n_known, present[i]))
			remove(im, present[i]);
	crid_strv_free(known, n_known);
	crid_strv_free(present, n_present);
	return 0;
}

/* Layer directories no record names: those a pull had marked pending were
 * left by an interrupted pull and go; the others are kept, as the database
 * lost their records (never remove what a running container may use
 * because the database does not say so). Returns how many were kept. */
static size_t collect_layers(struct crid_images *im, struct crid_err *err)
{
	char **known = NULL, **pending = NULL, **present = NULL;
	size_t n_known = 0, n_pending = 0, n_present = 0, kept = 0;
	char example[80] = "";

	if (crid_store_layer_ids(im->db, &known, &n_known, err) < 0 ||
	    crid_store_layers_pending(im->db, &pending, &n_pending, err) < 0 ||
	    crid_image_files_list_layers(&im->files, &present, &n_present, err) < 0) {
		log_error("cannot check the layers at start-up: none removed", "error", err->msg);
		crid_strv_free(known, n_known);
		crid_strv_free(pending, n_pending);
		return 0;
	}
	for (size_t i = 0; i < n_present; i++) {
		if (listed(known, n_known, present[i]))
			continue;
		if (listed(pending, n_pending, present[i])) {
			log_info("removing a layer an interrupted pull left", "layer", present[i]);
			remove_layer(im, present[i]);
		} else if (kept++ == 0) {
			snprintf(example, sizeof(example), "%s", present[i]);
		}
	}
	/* Pending marks are done with: the layers are recorded or gone. */
	for (size_t i = 0; i < n_pending; i++)
		crid_store_layer_pending_drop(im->db, pending[i], err);
	if (kept) {
		char count[24];

		snprintf(count, sizeof(count), "%zu", kept);
		log_error("crid.db records none of these layer directories: the database lost them; they are kept "
			  "(pulling their images again records them; remove the others by hand once no container "
			  "uses them)",
			  "count", count, "example", example, "dir", im->files.layers_path);
	}
	crid_strv_free(known, n_known);
	crid_strv_free(pending, n_pending);
	crid_strv_free(present, n_present);
	return kept;
}

size_t crid_images_collect_startup(struct crid_images *im, bool db_lost)
{
	struct crid_err err;
	size_t kept;

	crid_err_clear(&err);
	kept = collect_layers(im, &err);
	/* Blobs are small, and the images a lost database knew may need them. */
	if (!db_lost && !kept &&
	    remove_unknown(im, crid_store_blob_refs, crid_image_files_list_blobs, remove_blob, &err) < 0)
		log_warn("cannot remove unused blobs", "error", err.msg);
	return kept;
}

int crid_images_new(struct crid_images **out, const struct crid_config *cfg, struct crid_store *db,
		    struct crid_err *err)
{
	struct crid_images *im = calloc(1, sizeof(*im));
	int r;

	if (!im)
		return crid_err_nomem(err, "image service");
	im->cfg = cfg;
	im->db = db;
	atomic_init(&im->stop, false);
	pthread_mutex_init(&im->lock, NULL);
	pthread_cond_init(&im->slot_done, NULL);
	{
		_cleanup_free_ char *tmp = NULL;

		/* A previous crid's unpackers must not write into tmp/ while it
		 * is emptied. */
		if (asprintf(&tmp, "%s/tmp", cfg->state_root) < 0) {
			crid_images_free(im);
			return crid_err_nomem(err, "image store paths");
		}
		crid_unpack_kill_strays(tmp);
	}
	r = crid_image_files_open(&im->files, cfg->state_root, err);
	if (r == 0)
		r = crid_pull_queue_new(&im->pulls, im, cfg->max_concurrent_pulls, err);
	if (r < 0) {
		crid_images_free(im);
		return r;
	}
	*out = im;
	return 0;
}

void crid_images_shutdown(struct crid_images *im)
{
	atomic_store(&im->stop, true);
}

void crid_images_stop_pulls(struct crid_images *im)
{
	atomic_store(&im->stop, true);
	crid_pull_queue_stop(im->pulls);
}

void crid_images_free(struct crid_images *im)
{
	if (!im)
		return;
	crid_pull_queue_free(im->pulls);
	crid_image_files_close(&im->files);
	while (im->slots) {
		struct fetch_slot *s = im->slots;

		im->slots = s->next;
		free(s->key);
		free(s);
	}
	pthread_cond_destroy(&im->slot_done);
	pthread_mutex_destroy(&im->lock);
	free(im);
}

void crid_images_collect_locked(struct crid_images *im, char **chain_ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct crid_err err;

		if (crid_images_pinned_locked(im, chain_ids[i]))
			continue; /* a pull in progress needs it and will record it */
		if (crid_image_files_remove_layer(&im->files, chain_ids[i], &err) < 0)
			log_warn("cannot remove layer", "layer", chain_ids[i], "error", err.msg);
	}
}

/* ---- turning records into CRI messages ---- */

/* The user an image runs as: a number → uid, a name → username. */
static void image_user(struct crid_images *im, const char *id, Runtime__V1__Image *img,
		       Runtime__V1__Int64Value *uid, char **username)
{
	_cleanup_free_ char *config = NULL, *user = NULL;
	struct crid_image_config cfg = { 0 };
	struct crid_err err;
	size_t len;
	char *end;
	long long n;

	*username = NULL;
	if (crid_image_files_get_blob(&im->files, id, &config, &len, &err) < 0 ||
	    crid_image_config_parse(config, len, &cfg, &err) < 0)
		return;
	user = strdup(cfg.user ? cfg.user : "");
	crid_image_config_free(&cfg);
	if (!user)
		return;
	user[strcspn(user, ":")] = '\0'; /* "uid:gid" or "name:group" */
	if (!*user) {
		uid->value = 0;
		img->uid = uid;
		return;
	}
	errno = 0;
	n = strtoll(user, &end, 10);
	if (!errno && *end == '\0' && n >= 0) {
		uid->value = n;
		img->uid = uid;
	} else {
		*username = take_ptr(&user);
		img->username = *username;
	}
}

static bool is_pinned(struct crid_images *im, const struct crid_image_record *rec)
{
	for (size_t i = 0; i < im->cfg->n_pinned_images; i++) {
		struct crid_image_ref ref;
		struct crid_err err;
		_cleanup_free_ char *name = NULL;

		if (crid_image_ref_parse(im->cfg->pinned_images[i], &ref, &err) < 0)
			continue;
		name = crid_image_ref_string(&ref);
		crid_image_ref_free(&ref);
		if (!name)
			continue;
		for (size_t j = 0; j < rec->n_repo_tags; j++)
			if (strcmp(rec->repo_tags[j], name) == 0)
				return true;
		for (size_t j = 0; j < rec->n_repo_digests; j++)
			if (strcmp(rec->repo_digests[j], name) == 0)
				return true;
	}
	return false;
}

/* A CRI Image that borrows from rec; what it allocates is kept in holder. */
struct image_msg {
	Runtime__V1__Image img;
	Runtime__V1__Int64Value uid;
	Runtime__V1__ImageSpec spec;
	char *username;
};

static void image_msg_fill(struct crid_images *im, const struct crid_image_record *rec, struct image_msg *m)
{
	runtime__v1__image__init(&m->img);
	runtime__v1__int64_value__init(&m->uid);
	runtime__v1__image_spec__init(&m->spec);
	m->img.id = rec->id;
	m->img.n_repo_tags = rec->n_repo_tags;
	m->img.repo_tags = rec->repo_tags;
	m->img.n_repo_digests = rec->n_repo_digests;
	m->img.repo_digests = rec->repo_digests;
	m->img.size = rec->size > 0 ? (uint64_t)rec->size : 0;
	m->img.pinned = is_pinned(im, rec);
	m->spec.image = rec->id;
	m->img.spec = &m->spec;
	image_user(im, rec->id, &m->img, &m->uid, &m->username);
}

static void image_msg_clear(struct image_msg *m)
{
	free(m->username);
}

/* The image an ImageSpec names: a reference (normalised) or an ID. */
static int resolve_spec(struct crid_images *im, const Runtime__V1__ImageSpec *spec, const char *field, char **id,
			struct crid_err *err)
{
	struct crid_image_ref ref;
	_cleanup_free_ char *name = NULL;
	int r;

	if (!spec || !spec->image || !*spec->image)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "%s.image is empty", field);
	r = crid_store_image_resolve(im->db, spec->image, id, err);
	if (r == 0 || err->status != CRID_NOT_FOUND)
		return r;
	/* Not an ID or a stored name as written: try it normalised. */
	if (crid_image_ref_parse(spec->image, &ref, err) < 0)
		return crid_err_set(err, CRID_NOT_FOUND, 0, "image %s not found", spec->image);
	name = crid_image_ref_string(&ref);
	crid_image_ref_free(&ref);
	if (!name)
		return crid_err_nomem(err, "image name");
	return crid_store_image_resolve(im->db, name, id, err);
}

/* The tag and the repo digest to report for a container made from name:
 * the tag it named (else the image's first), and a repo digest in the same
 * repository (else the image's first). What containerd and CRI-O report,
 * so `kubectl describe` shows names, not IDs. */
/* Whether name is one of rec's names, as written or normalised. */
static bool names_image(const struct crid_image_record *rec, const char *name)
{
	struct crid_image_ref ref;
	struct crid_err ignored;
	_cleanup_free_ char *full = NULL;

	if (crid_image_ref_parse(name, &ref, &ignored) == 0) {
		full = crid_image_ref_string(&ref);
		crid_image_ref_free(&ref);
	}
	for (size_t i = 0; i < rec->n_repo_tags; i++)
		if (strcmp(rec->repo_tags[i], name) == 0 || (full && strcmp(rec->repo_tags[i], full) == 0))
			return true;
	for (size_t i = 0; i < rec->n_repo_digests; i++)
		if (strcmp(rec->repo_digests[i], name) == 0 || (full && strcmp(rec->repo_digests[i], full) == 0))
			return true;
	return false;
}

static int pick_names(const char *name, const struct crid_image_record *rec, struct crid_image_use *out)
{
	struct crid_image_ref ref;
	struct crid_err ignored;
	_cleanup_free_ char *repo = NULL;
	bool parsed;

	/* An ID is not a name, though it may parse as one ("sha256:<hex>"
	 * reads as repository sha256 with a tag). */
	out->by_id = !names_image(rec, name);
	parsed = !out->by_id && crid_image_ref_parse(name, &ref, &ignored) == 0;
	if (parsed) {
		out->repo_tag = crid_image_ref_tagged(&ref);
		if (ref.tag && !out->repo_tag) {
			crid_image_ref_free(&ref);
			return -ENOMEM;
		}
		repo = crid_image_ref_repository(&ref);
		crid_image_ref_free(&ref);
		if (!repo)
			return -ENOMEM;
	}
	if (!out->repo_tag && rec->n_repo_tags > 0 && !(out->repo_tag = strdup(rec->repo_tags[0])))
		return -ENOMEM;
	for (size_t i = 0; repo && i < rec->n_repo_digests; i++) {
		const char *at = strchr(rec->repo_digests[i], '@');

		if (at && (size_t)(at - rec->repo_digests[i]) == strlen(repo) &&
		    strncmp(rec->repo_digests[i], repo, strlen(repo)) == 0)
			return (out->repo_digest = strdup(rec->repo_digests[i])) ? 0 : -ENOMEM;
	}
	if (rec->n_repo_digests > 0 && !(out->repo_digest = strdup(rec->repo_digests[0])))
		return -ENOMEM;
	return 0;
}

int crid_images_use(struct crid_images *im, const char *name, struct crid_image_use *out, struct crid_err *err)
{
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	struct crid_image_record rec = { 0 };
	_cleanup_free_ char *id = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	spec.image = (char *)name;
	r = resolve_spec(im, &spec, "image", &id, err);
	if (r < 0)
		return r;
	r = crid_store_image_get(im->db, id, &rec, err);
	if (r < 0)
		return r;
	out->layer_dirs = calloc(rec.n_layers ? rec.n_layers : 1, sizeof(char *));
	out->chain_ids = calloc(rec.n_layers ? rec.n_layers : 1, sizeof(char *));
	out->id = strdup(rec.id);
	if (!out->layer_dirs || !out->chain_ids || !out->id || pick_names(name, &rec, out) < 0) {
		crid_image_record_free(&rec);
		crid_image_use_free(out);
		return crid_err_nomem(err, "image layers");
	}
	for (size_t i = 0; i < rec.n_layers; i++) {
		out->layer_dirs[i] = crid_image_files_layer_path(&im->files, rec.layers[i].chain_id);
		out->chain_ids[i] = strdup(rec.layers[i].chain_id);
		if (!out->layer_dirs[i] || !out->chain_ids[i]) {
			free(out->layer_dirs[i]);
			free(out->chain_ids[i]);
			crid_image_record_free(&rec);
			crid_image_use_free(out);
			return crid_err_nomem(err, "image layers");
		}
		out->n_layers++;
	}
	crid_image_record_free(&rec);
	r = crid_image_files_get_blob(&im->files, out->id, &out->config, &out->config_len, err);
	if (r < 0)
		crid_image_use_free(out);
	return r;
}

void crid_image_use_free(struct crid_image_use *u)
{
	free(u->id);
	free(u->repo_tag);
	free(u->repo_digest);
	crid_strv_free(u->layer_dirs, u->n_layers);
	crid_strv_free(u->chain_ids, u->n_layers);
	free(u->config);
	memset(u, 0, sizeof(*u));
}

int crid_images_hold(struct crid_images *im, const char *user, const struct crid_image_use *u, struct crid_err *err)
{
	int r;

	pthread_mutex_lock(&im->lock);
	/* Under the lock that RemoveImage takes: the layers are still there. */
	for (size_t i = 0; i < u->n_layers; i++) {
		if (!crid_image_files_has_layer(&im->files, u->chain_ids[i])) {
			pthread_mutex_unlock(&im->lock);
			return crid_err_set(err, CRID_NOT_FOUND, 0, "image %s was removed meanwhile", u->id);
		}
	}
	r = crid_store_layer_users_add(im->db, user, u->chain_ids, u->n_layers, err);
	pthread_mutex_unlock(&im->lock);
	return r;
}

void crid_images_release(struct crid_images *im, const char *user)
{
	char **orphans = NULL;
	size_t n = 0;
	struct crid_err err;

	pthread_mutex_lock(&im->lock);
	if (crid_store_layer_users_drop(im->db, user, &orphans, &n, &err) < 0)
		log_warn("cannot release the layers of a container", "container", user, "error", err.msg);
	else
		crid_images_collect_locked(im, orphans, n);
	pthread_mutex_unlock(&im->lock);
	crid_strv_free(orphans, n);
}

/* ---- handlers ---- */

static int pull_image(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_images *im = data;
	const Runtime__V1__PullImageRequest *req = (const Runtime__V1__PullImageRequest *)request;
	struct crid_registry_auth auth = { 0 };
	_cleanup_free_ char *decoded = NULL;
	int r;

	if (!req->image || !req->image->image || !*req->image->image)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "image.image is empty");
	if (req->auth) {
		auth.username = req->auth->username;
		auth.password = req->auth->password;
		auth.identity_token = req->auth->identity_token;
		auth.registry_token = req->auth->registry_token;
		if (req->auth->auth && *req->auth->auth) {
			/* "auth" is base64 of "user:password". */
			size_t len = strlen(req->auth->auth);
			char *colon;
			int n;

			decoded = calloc(1, len + 3);
			if (!decoded)
				return crid_err_nomem(err, "credentials");
			n = EVP_DecodeBlock((unsigned char *)decoded, (const unsigned char *)req->auth->auth, (int)len);
			colon = n > 0 ? strchr(decoded, ':') : NULL;
			if (!colon)
				return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
						    "auth.auth is not base64 of \"user:password\"");
			*colon = '\0';
			auth.username = decoded;
			auth.password = colon + 1;
		}
	}
	/* A pull thread answers: this worker is free for other calls. */
	r = crid_pull_queue_submit(im->pulls, req->image->image, &auth, call, err);
	return r < 0 ? r : CRID_CALL_PENDING;
}

static int image_status(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_images *im = data;
	const Runtime__V1__ImageStatusRequest *req = (const Runtime__V1__ImageStatusRequest *)request;
	Runtime__V1__ImageStatusResponse resp = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INIT;
	Runtime__V1__ImageStatusResponse__InfoEntry entry = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INFO_ENTRY__INIT;
	Runtime__V1__ImageStatusResponse__InfoEntry *entries[] = { &entry };
	struct crid_image_record rec = { 0 };
	struct image_msg m = { 0 };
	_cleanup_free_ char *id = NULL, *info = NULL, *config = NULL;
	int r;

	r = resolve_spec(im, req->image, "image", &id, err);
	if (r < 0 && err->status == CRID_NOT_FOUND)
		return crid_call_send(call, &resp.base, err); /* CRI: absent image, no error */
	if (r < 0)
		return r;
	r = crid_store_image_get(im->db, id, &rec, err);
	if (r < 0 && err->status == CRID_NOT_FOUND)
		return crid_call_send(call, &resp.base, err);
	if (r < 0)
		return r;
	image_msg_fill(im, &rec, &m);
	resp.image = &m.img;
	if (req->verbose) {
		json_t *doc = json_object(), *chain = json_array(), *spec = NULL;
		size_t len;
		struct crid_err e;

		if (crid_image_files_get_blob(&im->files, rec.id, &config, &len, &e) == 0)
			spec = json_loadb(config, len, 0, NULL);
		for (size_t i = 0; chain && i < rec.n_layers; i++)
			json_array_append_new(chain, json_string(rec.layers[i].chain_id));
		if (doc) {
			json_object_set_new(doc, "imageId", json_string(rec.id));
			json_object_set_new(doc, "manifestDigest", json_string(rec.manifest_digest));
			json_object_set_new(doc, "chainIDs", chain ? chain : json_null());
			json_object_set_new(doc, "imageSpec", spec ? spec : json_null());
			info = json_dumps(doc, JSON_COMPACT);
		} else {
			json_decref(chain);
			json_decref(spec);
		}
		json_decref(doc);
		if (!info) {
			image_msg_clear(&m);
			crid_image_record_free(&rec);
			return crid_err_nomem(err, "image info");
		}
		entry.key = (char *)"info";
		entry.value = info;
		resp.n_info = 1;
		resp.info = entries;
	}
	r = crid_call_send(call, &resp.base, err);
	image_msg_clear(&m);
	crid_image_record_free(&rec);
	return r;
}

/* ListImages and StreamImages: every image, or the one the filter names. */
static int list_matching(struct crid_images *im, const Runtime__V1__ImageFilter *filter,
			 struct crid_image_record **recs, size_t *n, struct crid_err *err)
{
	_cleanup_free_ char *id = NULL;
	int r;

	if (!filter || !filter->image || !filter->image->image || !*filter->image->image)
		return crid_store_image_list(im->db, recs, n, err);
	r = resolve_spec(im, filter->image, "filter.image", &id, err);
	*recs = calloc(1, sizeof(**recs));
	*n = 0;
	if (!*recs)
		return crid_err_nomem(err, "image list");
	if (r < 0)
		return err->status == CRID_NOT_FOUND ? 0 : r;
	r = crid_store_image_get(im->db, id, *recs, err);
	if (r < 0)
		return err->status == CRID_NOT_FOUND ? 0 : r;
	*n = 1;
	return 0;
}

static int send_images(struct crid_images *im, const Runtime__V1__ImageFilter *filter, struct crid_call *call,
		       bool stream, struct crid_err *err)
{
	struct crid_image_record *recs = NULL;
	struct image_msg *msgs;
	Runtime__V1__Image **ptrs;
	size_t n = 0;
	int r = list_matching(im, filter, &recs, &n, err);

	if (r < 0)
		return r;
	msgs = calloc(n ? n : 1, sizeof(*msgs));
	ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	if (!msgs || !ptrs) {
		r = crid_err_nomem(err, "image list");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		image_msg_fill(im, &recs[i], &msgs[i]);
		ptrs[i] = &msgs[i].img;
	}
	if (stream) {
		/* Batches keep each message well under the size limit. */
		for (size_t i = 0; i < n && r == 0; i += 100) {
			Runtime__V1__StreamImagesResponse resp = RUNTIME__V1__STREAM_IMAGES_RESPONSE__INIT;

			resp.images = ptrs + i;
			resp.n_images = n - i < 100 ? n - i : 100;
			r = crid_call_send(call, &resp.base, err);
		}
	} else {
		Runtime__V1__ListImagesResponse resp = RUNTIME__V1__LIST_IMAGES_RESPONSE__INIT;

		resp.images = ptrs;
		resp.n_images = n;
		r = crid_call_send(call, &resp.base, err);
	}
	for (size_t i = 0; i < n; i++)
		image_msg_clear(&msgs[i]);
out:
	free(msgs);
	free(ptrs);
	crid_image_records_free(recs, n ? n : 1);
	return r;
}

static int list_images(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	const Runtime__V1__ListImagesRequest *req = (const Runtime__V1__ListImagesRequest *)request;

	return send_images(data, req->filter, call, false, err);
}

static int stream_images(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	const Runtime__V1__StreamImagesRequest *req = (const Runtime__V1__StreamImagesRequest *)request;

	return send_images(data, req->filter, call, true, err);
}

/* Removes the blobs of a removed image that no other image refers to. */
static void remove_blobs_locked(struct crid_images *im, const struct crid_image_record *rec)
{
	char **refs = NULL;
	size_t n_refs = 0;
	struct crid_err err;

	/* A pull in progress may be relying on a blob it found: leave blobs to
	 * the next start-up's clean-up then. */
	if (im->slots || crid_store_blob_refs(im->db, &refs, &n_refs, &err) < 0)
		return;
	for (size_t i = 0; i < rec->n_repo_digests + 2; i++) {
		const char *digest = i == 0 ? rec->id : i == 1 ? rec->manifest_digest
							 : strchr(rec->repo_digests[i - 2], '@');
		if (!digest)
			continue;
		if (*digest == '@')
			digest++;
		if (!listed(refs, n_refs, digest))
			crid_image_files_remove_blob(&im->files, digest);
	}
	crid_strv_free(refs, n_refs);
}

static int remove_image(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_images *im = data;
	const Runtime__V1__RemoveImageRequest *req = (const Runtime__V1__RemoveImageRequest *)request;
	Runtime__V1__RemoveImageResponse resp = RUNTIME__V1__REMOVE_IMAGE_RESPONSE__INIT;
	struct crid_image_record rec = { 0 };
	_cleanup_free_ char *id = NULL, *name = NULL;
	struct crid_image_ref ref;
	char **orphans = NULL;
	size_t n_orphans = 0;
	int removed = 0, r;

	if (!req->image || !req->image->image || !*req->image->image)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "image.image is empty");
	/* A name the image goes by (as written or normalised): that name goes,
	 * and the image with its last tag. Else an ID: the image with every
	 * name. Nothing found: nothing to do, and no error (CRI). */
	if (crid_store_image_resolve(im->db, req->image->image, &id, err) == 0 &&
	    strchr(req->image->image, ':') && strncmp(req->image->image, "sha256:", 7) != 0) {
		name = strdup(req->image->image);
	} else if (crid_image_ref_parse(req->image->image, &ref, err) == 0) {
		free(id);
		id = NULL;
		name = crid_image_ref_string(&ref);
		crid_image_ref_free(&ref);
		if (name && crid_store_image_resolve(im->db, name, &id, err) < 0) {
			free(name);
			name = NULL;
		}
	}
	if (!id && crid_store_image_resolve(im->db, req->image->image, &id, err) < 0)
		return err->status == CRID_NOT_FOUND ? crid_call_send(call, &resp.base, err) : -EIO;
	pthread_mutex_lock(&im->lock);
	r = crid_store_image_get(im->db, id, &rec, err);
	if (r == 0 && name)
		r = crid_store_image_remove_name(im->db, name, &removed, &orphans, &n_orphans, err);
	else if (r == 0) {
		r = crid_store_image_remove(im->db, id, &orphans, &n_orphans, err);
		removed = r == 0;
	}
	if (r == 0) {
		crid_images_collect_locked(im, orphans, n_orphans);
		if (removed)
			remove_blobs_locked(im, &rec);
	}
	pthread_mutex_unlock(&im->lock);
	crid_strv_free(orphans, n_orphans);
	crid_image_record_free(&rec);
	if (r < 0 && err->status != CRID_NOT_FOUND)
		return r;
	if (removed)
		log_info("removed image", "image", req->image->image, "id", id);
	return crid_call_send(call, &resp.base, err);
}

static int image_fs_info(void *data, const ProtobufCMessage *request, struct crid_call *call, struct crid_err *err)
{
	struct crid_images *im = data;
	Runtime__V1__ImageFsInfoResponse resp = RUNTIME__V1__IMAGE_FS_INFO_RESPONSE__INIT;
	Runtime__V1__FilesystemUsage usage = RUNTIME__V1__FILESYSTEM_USAGE__INIT;
	Runtime__V1__FilesystemIdentifier fs_id = RUNTIME__V1__FILESYSTEM_IDENTIFIER__INIT;
	Runtime__V1__UInt64Value used = RUNTIME__V1__UINT64_VALUE__INIT;
	Runtime__V1__UInt64Value inodes = RUNTIME__V1__UINT64_VALUE__INIT;
	Runtime__V1__FilesystemUsage *list[] = { &usage };
	Runtime__V1__FilesystemUsage ctr_usage = RUNTIME__V1__FILESYSTEM_USAGE__INIT;
	Runtime__V1__FilesystemIdentifier ctr_fs_id = RUNTIME__V1__FILESYSTEM_IDENTIFIER__INIT;
	Runtime__V1__UInt64Value ctr_used = RUNTIME__V1__UINT64_VALUE__INIT;
	Runtime__V1__UInt64Value ctr_inodes = RUNTIME__V1__UINT64_VALUE__INIT;
	Runtime__V1__FilesystemUsage *ctr_list[] = { &ctr_usage };
	uint64_t layer_bytes, layer_inodes, blob_bytes, blob_inodes;
	int r;

	r = crid_store_layer_usage(im->db, &layer_bytes, &layer_inodes, err);
	if (r < 0)
		return r;
	crid_image_files_blob_usage(&im->files, &blob_bytes, &blob_inodes);

	/* The directory holding the layers, as the kubelet looks up its
	 * file system by this path. */
	fs_id.mountpoint = im->files.layers_path;
	used.value = layer_bytes + blob_bytes;
	inodes.value = layer_inodes + blob_inodes;
	usage.timestamp = crid_realtime_ns();
	usage.fs_id = &fs_id;
	usage.used_bytes = &used;
	usage.inodes_used = &inodes;
	resp.n_image_filesystems = 1;
	resp.image_filesystems = list;
	/* Containers' writable layers, as the walker last measured them. */
	if (im->layers) {
		struct crid_fs_usage total;

		crid_layer_usage_total(im->layers, &total);
		ctr_fs_id.mountpoint = (char *)crid_layer_usage_mountpoint(im->layers);
		ctr_used.value = total.bytes;
		ctr_inodes.value = total.inodes;
		ctr_usage.timestamp = total.timestamp;
		ctr_usage.fs_id = &ctr_fs_id;
		ctr_usage.used_bytes = &ctr_used;
		ctr_usage.inodes_used = &ctr_inodes;
		resp.n_container_filesystems = 1;
		resp.container_filesystems = ctr_list;
	}
	return crid_call_send(call, &resp.base, err);
}

void crid_images_observe(struct crid_images *im, struct crid_layer_usage *layers, struct crid_metrics *metrics)
{
	im->layers = layers;
	im->metrics = metrics;
}

int crid_images_register(struct crid_images *im, struct crid_rpc_methods *methods, struct crid_err *err)
{
	static const struct crid_rpc_handler_entry handlers[] = {
		{ "ListImages", list_images },	 { "StreamImages", stream_images }, { "ImageStatus", image_status },
		{ "PullImage", pull_image },	 { "RemoveImage", remove_image },   { "ImageFsInfo", image_fs_info },
	};
	return crid_rpc_methods_register_all(methods, "ImageService", handlers, CRID_ARRAY_SIZE(handlers), im, err);
}
