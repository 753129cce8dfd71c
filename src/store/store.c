/* The SQLite store of store.h, its queries: one connection behind a mutex
 * (store_file.c opens it and keeps it on disk), WAL journal, foreign keys
 * on; every multi-row change in one IMMEDIATE transaction. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "store/store_internal.h"

static int db_error(struct crid_store *s, struct crid_err *err, const char *what)
{
	int code = sqlite3_errcode(s->db);
	int status = code == SQLITE_FULL ? CRID_RESOURCE_EXHAUSTED : CRID_INTERNAL;

	return crid_err_set(err, status, 0, "%s: %s", what, sqlite3_errmsg(s->db));
}

static void stmt_finalizep(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(stmt_finalizep)

void crid_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void crid_image_record_free(struct crid_image_record *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->manifest_digest);
	crid_strv_free(r->repo_tags, r->n_repo_tags);
	crid_strv_free(r->repo_digests, r->n_repo_digests);
	for (size_t i = 0; i < r->n_layers; i++) {
		free(r->layers[i].chain_id);
		free(r->layers[i].diff_id);
		free(r->layers[i].blob_digest);
	}
	free(r->layers);
	memset(r, 0, sizeof(*r));
}

void crid_image_records_free(struct crid_image_record *r, size_t n)
{
	if (!r)
		return;
	for (size_t i = 0; i < n; i++)
		crid_image_record_free(&r[i]);
	free(r);
}

static void unlockp(struct crid_store **s)
{
	if (*s)
		pthread_mutex_unlock(&(*s)->lock);
}

/* Every use of the database first makes sure it is still on disk. */
static struct crid_store *lock_store(struct crid_store *s)
{
	pthread_mutex_lock(&s->lock);
	crid_store_check_locked(s);
	return s;
}
#define STORE_LOCKED(s) _cleanup_(unlockp) __attribute__((unused)) struct crid_store *locked_ = lock_store(s)

static int prepare(struct crid_store *s, const char *sql, sqlite3_stmt **st, struct crid_err *err)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_error(s, err, "prepare statement");
	return 0;
}

/* Runs a statement with text parameters to completion. */
static int exec_text(struct crid_store *s, const char *sql, struct crid_err *err, int n, ...)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	va_list ap;
	int r = prepare(s, sql, &st, err);

	if (r < 0)
		return r;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
	va_end(ap);
	r = sqlite3_step(st);
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		return db_error(s, err, "update the store");
	return 0;
}

static void rollback(struct crid_store *s)
{
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int begin(struct crid_store *s, struct crid_err *err)
{
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_error(s, err, "begin transaction");
	return 0;
}

static int commit(struct crid_store *s, struct crid_err *err)
{
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		int r = db_error(s, err, "commit transaction");

		rollback(s);
		return r;
	}
	return 0;
}

static int put_locked(struct crid_store *s, const struct crid_image_record *img, struct crid_err *err)
{
	_cleanup_stmt_ sqlite3_stmt *image_st = NULL, *layer_st = NULL, *link_st = NULL, *name_st = NULL;
	int r;

	if ((r = prepare(s, "INSERT INTO images(id, manifest_digest, size, pulled_at) VALUES(?1, ?2, ?3, ?4) "
			    "ON CONFLICT(id) DO UPDATE SET manifest_digest = ?2, size = ?3, pulled_at = ?4",
			 &image_st, err)) < 0 ||
	    (r = prepare(s, "INSERT OR IGNORE INTO layers(chain_id, diff_id, blob_digest, blob_size, disk_bytes, "
			    "disk_inodes) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
			 &layer_st, err)) < 0 ||
	    (r = prepare(s, "INSERT OR REPLACE INTO image_layers(image_id, position, chain_id) VALUES(?1, ?2, ?3)",
			 &link_st, err)) < 0 ||
	    (r = prepare(s, "INSERT OR REPLACE INTO image_names(name, image_id, is_digest) VALUES(?1, ?2, ?3)",
			 &name_st, err)) < 0)
		return r;
	sqlite3_bind_text(image_st, 1, img->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(image_st, 2, img->manifest_digest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(image_st, 3, img->size);
	sqlite3_bind_int64(image_st, 4, img->pulled_at);
	if (sqlite3_step(image_st) != SQLITE_DONE)
		return db_error(s, err, "record image");
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct crid_layer_record *l = &img->layers[i];

		sqlite3_reset(layer_st);
		sqlite3_bind_text(layer_st, 1, l->chain_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(layer_st, 2, l->diff_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(layer_st, 3, l->blob_digest, -1, SQLITE_STATIC);
		sqlite3_bind_int64(layer_st, 4, l->blob_size);
		sqlite3_bind_int64(layer_st, 5, (sqlite3_int64)l->disk_bytes);
		sqlite3_bind_int64(layer_st, 6, (sqlite3_int64)l->disk_inodes);
		if (sqlite3_step(layer_st) != SQLITE_DONE)
			return db_error(s, err, "record layer");
		sqlite3_reset(link_st);
		sqlite3_bind_text(link_st, 1, img->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(link_st, 2, (sqlite3_int64)i);
		sqlite3_bind_text(link_st, 3, l->chain_id, -1, SQLITE_STATIC);
		if (sqlite3_step(link_st) != SQLITE_DONE)
			return db_error(s, err, "record image layer");
	}
	for (int kind = 0; kind < 2; kind++) {
		char **names = kind ? img->repo_digests : img->repo_tags;
		size_t n = kind ? img->n_repo_digests : img->n_repo_tags;

		for (size_t i = 0; i < n; i++) {
			sqlite3_reset(name_st);
			sqlite3_bind_text(name_st, 1, names[i], -1, SQLITE_STATIC);
			sqlite3_bind_text(name_st, 2, img->id, -1, SQLITE_STATIC);
			sqlite3_bind_int(name_st, 3, kind);
			if (sqlite3_step(name_st) != SQLITE_DONE)
				return db_error(s, err, "record image name");
		}
	}
	return 0;
}

int crid_store_image_put(struct crid_store *s, const struct crid_image_record *img, struct crid_err *err)
{
	STORE_LOCKED(s);
	int r = begin(s, err);

	if (r < 0)
		return r;
	r = put_locked(s, img, err);
	/* Recorded: no longer pending. */
	for (size_t i = 0; r == 0 && i < img->n_layers; i++)
		r = exec_text(s, "DELETE FROM pending_layers WHERE chain_id = ?1", err, 1, img->layers[i].chain_id);
	if (r < 0) {
		rollback(s);
		return crid_err_wrap(err, "record image %s: ", img->id);
	}
	return commit(s, err);
}

/* Collects column 0 of every row as strings. */
static int collect_strings(struct crid_store *s, sqlite3_stmt *st, char ***out, size_t *n, struct crid_err *err)
{
	char **v = NULL;
	size_t len = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		char *copy;

		if (len == cap) {
			char **grown = realloc(v, (cap ? cap * 2 : 8) * sizeof(*v));

			if (!grown) {
				crid_strv_free(v, len);
				return crid_err_nomem(err, "query result");
			}
			v = grown;
			cap = cap ? cap * 2 : 8;
		}
		copy = strdup(text ? text : "");
		if (!copy) {
			crid_strv_free(v, len);
			return crid_err_nomem(err, "query result");
		}
		v[len++] = copy;
	}
	if (rc != SQLITE_DONE) {
		crid_strv_free(v, len);
		return db_error(s, err, "query the store");
	}
	*out = v;
	*n = len;
	return 0;
}

static int query_strings(struct crid_store *s, const char *sql, const char *param, char ***out, size_t *n,
			 struct crid_err *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = prepare(s, sql, &st, err);

	if (r < 0)
		return r;
	if (param)
		sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
	return collect_strings(s, st, out, n, err);
}

static bool all_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

int crid_store_image_resolve(struct crid_store *s, const char *name, char **id, struct crid_err *err)
{
	STORE_LOCKED(s);
	char **found = NULL;
	size_t n = 0;
	int r;

	/* A name first: a tag like "abc:1" must not be read as an ID prefix. */
	r = query_strings(s, "SELECT image_id FROM image_names WHERE name = ?1", name, &found, &n, err);
	if (r < 0)
		return r;
	if (n == 0) {
		const char *hex = strncmp(name, "sha256:", 7) == 0 ? name + 7 : name;
		_cleanup_free_ char *pattern = NULL;

		crid_strv_free(found, n);
		found = NULL;
		if (strlen(hex) < 3 || strlen(hex) > 64 || !all_hex(hex))
			return crid_err_set(err, CRID_NOT_FOUND, 0, "image %s not found", name);
		if (asprintf(&pattern, "sha256:%s*", hex) < 0) {
			pattern = NULL;
			return crid_err_nomem(err, "query");
		}
		r = query_strings(s, "SELECT id FROM images WHERE id GLOB ?1 LIMIT 2", pattern, &found, &n, err);
		if (r < 0)
			return r;
	}
	if (n == 0) {
		crid_strv_free(found, n);
		return crid_err_set(err, CRID_NOT_FOUND, 0, "image %s not found", name);
	}
	if (n > 1) {
		crid_strv_free(found, n);
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "image ID prefix %s is ambiguous", name);
	}
	*id = found[0];
	free(found);
	return 0;
}

static int load_image_locked(struct crid_store *s, const char *id, struct crid_image_record *out,
			     struct crid_err *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL, *lst = NULL;
	size_t cap = 0;
	int r, rc;

	memset(out, 0, sizeof(*out));
	if ((r = prepare(s, "SELECT id, manifest_digest, size, pulled_at FROM images WHERE id = ?1", &st, err)) < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return crid_err_set(err, CRID_NOT_FOUND, 0, "image %s not found", id);
	if (rc != SQLITE_ROW)
		return db_error(s, err, "read image");
	out->id = strdup((const char *)sqlite3_column_text(st, 0));
	out->manifest_digest = strdup((const char *)sqlite3_column_text(st, 1));
	out->size = sqlite3_column_int64(st, 2);
	out->pulled_at = sqlite3_column_int64(st, 3);
	if (!out->id || !out->manifest_digest)
		goto nomem;
	if ((r = query_strings(s, "SELECT name FROM image_names WHERE image_id = ?1 AND is_digest = 0 ORDER BY name",
			       id, &out->repo_tags, &out->n_repo_tags, err)) < 0 ||
	    (r = query_strings(s, "SELECT name FROM image_names WHERE image_id = ?1 AND is_digest = 1 ORDER BY name",
			       id, &out->repo_digests, &out->n_repo_digests, err)) < 0) {
		crid_image_record_free(out);
		return r;
	}
	if ((r = prepare(s, "SELECT l.chain_id, l.diff_id, l.blob_digest, l.blob_size, l.disk_bytes, l.disk_inodes "
			    "FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id "
			    "WHERE il.image_id = ?1 ORDER BY il.position",
			 &lst, err)) < 0) {
		crid_image_record_free(out);
		return r;
	}
	sqlite3_bind_text(lst, 1, id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(lst)) == SQLITE_ROW) {
		struct crid_layer_record *l;

		if (out->n_layers == cap) {
			struct crid_layer_record *grown = realloc(out->layers, (cap ? cap * 2 : 8) * sizeof(*grown));

			if (!grown)
				goto nomem;
			out->layers = grown;
			cap = cap ? cap * 2 : 8;
		}
		l = &out->layers[out->n_layers++];
		memset(l, 0, sizeof(*l));
		l->chain_id = strdup((const char *)sqlite3_column_text(lst, 0));
		l->diff_id = strdup((const char *)sqlite3_column_text(lst, 1));
		l->blob_digest = strdup((const char *)sqlite3_column_text(lst, 2));
		l->blob_size = sqlite3_column_int64(lst, 3);
		l->disk_bytes = (uint64_t)sqlite3_column_int64(lst, 4);
		l->disk_inodes = (uint64_t)sqlite3_column_int64(lst, 5);
		if (!l->chain_id || !l->diff_id || !l->blob_digest)
			goto nomem;
	}
	if (rc != SQLITE_DONE) {
		crid_image_record_free(out);
		return db_error(s, err, "read image layers");
	}
	return 0;
nomem:
	crid_image_record_free(out);
	return crid_err_nomem(err, "image record");
}

int crid_store_image_get(struct crid_store *s, const char *id, struct crid_image_record *out, struct crid_err *err)
{
	STORE_LOCKED(s);

	return load_image_locked(s, id, out, err);
}

int crid_store_image_list(struct crid_store *s, struct crid_image_record **out, size_t *n, struct crid_err *err)
{
	STORE_LOCKED(s);
	struct crid_image_record *recs;
	char **ids = NULL;
	size_t n_ids = 0;
	int r = query_strings(s, "SELECT id FROM images ORDER BY pulled_at, id", NULL, &ids, &n_ids, err);

	if (r < 0)
		return r;
	recs = calloc(n_ids ? n_ids : 1, sizeof(*recs));
	if (!recs) {
		crid_strv_free(ids, n_ids);
		return crid_err_nomem(err, "image list");
	}
	for (size_t i = 0; i < n_ids; i++) {
		r = load_image_locked(s, ids[i], &recs[i], err);
		if (r < 0) {
			crid_image_records_free(recs, i);
			crid_strv_free(ids, n_ids);
			return r;
		}
	}
	crid_strv_free(ids, n_ids);
	*out = recs;
	*n = n_ids;
	return 0;
}

/* Deletes layers no image refers to; returns their chain IDs. */
static int drop_orphans_locked(struct crid_store *s, char ***orphans, size_t *n, struct crid_err *err)
{
	int r = query_strings(s,
			      "SELECT chain_id FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM image_layers) "
			      "AND chain_id NOT IN (SELECT chain_id FROM layer_users)",
			      NULL, orphans, n, err);

	if (r < 0)
		return r;
	r = exec_text(s,
		      "DELETE FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM image_layers) "
		      "AND chain_id NOT IN (SELECT chain_id FROM layer_users)",
		      err, 0);
	if (r < 0) {
		crid_strv_free(*orphans, *n);
		*orphans = NULL;
		*n = 0;
	}
	return r;
}

static int remove_image_locked(struct crid_store *s, const char *id, char ***orphans, size_t *n,
			       struct crid_err *err)
{
	int r = exec_text(s, "DELETE FROM images WHERE id = ?1", err, 1, id);

	if (r < 0)
		return r;
	return drop_orphans_locked(s, orphans, n, err);
}

int crid_store_image_remove(struct crid_store *s, const char *id, char ***orphans, size_t *n_orphans,
			    struct crid_err *err)
{
	STORE_LOCKED(s);
	int r = begin(s, err);

	*orphans = NULL;
	*n_orphans = 0;
	if (r < 0)
		return r;
	r = remove_image_locked(s, id, orphans, n_orphans, err);
	if (r < 0) {
		rollback(s);
		return r;
	}
	r = commit(s, err);
	if (r < 0) {
		crid_strv_free(*orphans, *n_orphans);
		*orphans = NULL;
		*n_orphans = 0;
	}
	return r;
}

int crid_store_image_remove_name(struct crid_store *s, const char *name, int *image_removed, char ***orphans,
				 size_t *n_orphans, struct crid_err *err)
{
	STORE_LOCKED(s);
	char **ids = NULL, **tags = NULL;
	size_t n_ids = 0, n_tags = 0;
	int r;

	*image_removed = 0;
	*orphans = NULL;
	*n_orphans = 0;
	r = begin(s, err);
	if (r < 0)
		return r;
	r = query_strings(s, "SELECT image_id FROM image_names WHERE name = ?1", name, &ids, &n_ids, err);
	if (r < 0)
		goto fail;
	if (n_ids == 0) {
		r = crid_err_set(err, CRID_NOT_FOUND, 0, "image %s not found", name);
		goto fail;
	}
	r = exec_text(s, "DELETE FROM image_names WHERE name = ?1", err, 1, name);
	if (r < 0)
		goto fail;
	r = query_strings(s, "SELECT name FROM image_names WHERE image_id = ?1 AND is_digest = 0", ids[0], &tags,
			  &n_tags, err);
	if (r < 0)
		goto fail;
	if (n_tags == 0) {
		r = remove_image_locked(s, ids[0], orphans, n_orphans, err);
		if (r < 0)
			goto fail;
		*image_removed = 1;
	}
	crid_strv_free(ids, n_ids);
	crid_strv_free(tags, n_tags);
	r = commit(s, err);
	if (r < 0) {
		crid_strv_free(*orphans, *n_orphans);
		*orphans = NULL;
		*n_orphans = 0;
		*image_removed = 0;
	}
	return r;
fail:
	crid_strv_free(ids, n_ids);
	crid_strv_free(tags, n_tags);
	crid_strv_free(*orphans, *n_orphans);
	*orphans = NULL;
	*n_orphans = 0;
	rollback(s);
	return r;
}

int crid_store_layers_pending_add(struct crid_store *s, char *const *chain_ids, size_t n, struct crid_err *err)
{
	STORE_LOCKED(s);
	int r = begin(s, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++)
		r = exec_text(s,
			      "INSERT OR IGNORE INTO pending_layers(chain_id) SELECT ?1 "
			      "WHERE NOT EXISTS (SELECT 1 FROM layers WHERE chain_id = ?1)",
			      err, 1, chain_ids[i]);
	if (r < 0) {
		rollback(s);
		return r;
	}
	return commit(s, err);
}

int crid_store_layer_pending_drop(struct crid_store *s, const char *chain_id, struct crid_err *err)
{
	STORE_LOCKED(s);

	return exec_text(s, "DELETE FROM pending_layers WHERE chain_id = ?1", err, 1, chain_id);
}

int crid_store_layers_pending(struct crid_store *s, char ***out, size_t *n, struct crid_err *err)
{
	STORE_LOCKED(s);

	return query_strings(s, "SELECT chain_id FROM pending_layers", NULL, out, n, err);
}

int crid_store_layer_known(struct crid_store *s, const char *chain_id, struct crid_err *err)
{
	STORE_LOCKED(s);
	char **v = NULL;
	size_t n = 0;
	int r = query_strings(s, "SELECT chain_id FROM layers WHERE chain_id = ?1", chain_id, &v, &n, err);

	if (r < 0)
		return r;
	crid_strv_free(v, n);
	return n > 0;
}

int crid_store_layer_ids(struct crid_store *s, char ***out, size_t *n, struct crid_err *err)
{
	STORE_LOCKED(s);

	return query_strings(s, "SELECT chain_id FROM layers", NULL, out, n, err);
}

int crid_store_blob_refs(struct crid_store *s, char ***out, size_t *n, struct crid_err *err)
{
	STORE_LOCKED(s);

	/* A repo digest names the manifest or index that was pulled. */
	return query_strings(s,
			     "SELECT id FROM images UNION SELECT manifest_digest FROM images "
			     "UNION SELECT substr(name, instr(name, '@') + 1) FROM image_names WHERE is_digest = 1",
			     NULL, out, n, err);
}

int crid_store_layer_usage(struct crid_store *s, uint64_t *bytes, uint64_t *inodes, struct crid_err *err)
{
	STORE_LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = prepare(s, "SELECT coalesce(sum(disk_bytes), 0), coalesce(sum(disk_inodes), 0) FROM layers", &st, err);

	if (r < 0)
		return r;
	if (sqlite3_step(st) != SQLITE_ROW)
		return db_error(s, err, "sum layer usage");
	*bytes = (uint64_t)sqlite3_column_int64(st, 0);
	*inodes = (uint64_t)sqlite3_column_int64(st, 1);
	return 0;
}

int crid_store_object_put(struct crid_store *s, const char *kind, const char *id, const uint8_t *config,
			  size_t config_len, const char *state, struct crid_err *err)
{
	STORE_LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = prepare(s, "INSERT OR REPLACE INTO objects(kind, id, config, state) VALUES(?1, ?2, ?3, ?4)", &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, config_len ? config : (const void *)"", (int)config_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_error(s, err, "record object");
	return 0;
}

int crid_store_object_delete(struct crid_store *s, const char *kind, const char *id, struct crid_err *err)
{
	STORE_LOCKED(s);

	return exec_text(s, "DELETE FROM objects WHERE kind = ?1 AND id = ?2", err, 2, kind, id);
}

void crid_object_records_free(struct crid_object_record *r, size_t n)
{
	if (!r)
		return;
	for (size_t i = 0; i < n; i++) {
		free(r[i].id);
		free(r[i].config);
		free(r[i].state);
	}
	free(r);
}

int crid_store_object_list(struct crid_store *s, const char *kind, struct crid_object_record **out, size_t *n,
			   struct crid_err *err)
{
	STORE_LOCKED(s);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct crid_object_record *v = NULL;
	size_t len = 0, cap = 0;
	int r = prepare(s, "SELECT id, config, state FROM objects WHERE kind = ?1 ORDER BY rowid", &st, err), rc;

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct crid_object_record *o;
		int blen = sqlite3_column_bytes(st, 1);

		if (len == cap) {
			struct crid_object_record *grown = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));

			if (!grown) {
				crid_object_records_free(v, len);
				return crid_err_nomem(err, "object list");
			}
			v = grown;
			cap = cap ? cap * 2 : 16;
		}
		o = &v[len++];
		o->id = strdup((const char *)sqlite3_column_text(st, 0));
		o->config = malloc(blen > 0 ? (size_t)blen : 1);
		o->config_len = (size_t)blen;
		o->state = strdup((const char *)sqlite3_column_text(st, 2));
		if (!o->id || !o->config || !o->state) {
			crid_object_records_free(v, len);
			return crid_err_nomem(err, "object list");
		}
		if (blen > 0)
			memcpy(o->config, sqlite3_column_blob(st, 1), (size_t)blen);
	}
	if (rc != SQLITE_DONE) {
		crid_object_records_free(v, len);
		return db_error(s, err, "list objects");
	}
	*out = v;
	*n = len;
	return 0;
}

int crid_store_layer_users_add(struct crid_store *s, const char *user, char *const *chain_ids, size_t n,
			       struct crid_err *err)
{
	STORE_LOCKED(s);
	int r = begin(s, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++)
		r = exec_text(s, "INSERT OR IGNORE INTO layer_users(user_id, chain_id) VALUES(?1, ?2)", err, 2, user,
			      chain_ids[i]);
	if (r < 0) {
		rollback(s);
		return r;
	}
	return commit(s, err);
}

int crid_store_layer_users_drop(struct crid_store *s, const char *user, char ***orphans, size_t *n_orphans,
				struct crid_err *err)
{
	STORE_LOCKED(s);
	int r = begin(s, err);

	*orphans = NULL;
	*n_orphans = 0;
	if (r < 0)
		return r;
	r = exec_text(s, "DELETE FROM layer_users WHERE user_id = ?1", err, 1, user);
	if (r == 0)
		r = drop_orphans_locked(s, orphans, n_orphans, err);
	if (r < 0) {
		rollback(s);
		return r;
	}
	r = commit(s, err);
	if (r < 0) {
		crid_strv_free(*orphans, *n_orphans);
		*orphans = NULL;
		*n_orphans = 0;
	}
	return r;
}
