/* The registry (cdi.h): every device of the spec files in the configured
 * directories, by fully-qualified name. A later directory overrides an
 * earlier one for the same name; two files of one directory defining the
 * same name are a conflict, reported against the second (in name order),
 * the first kept. A file that does not parse or validate is reported (log
 * and Status) and left out; the others are unaffected. Reloaded whole and
 * swapped under the lock on every change (cdi_watch.c), so a lookup never
 * sees half a directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdi/cdi_internal.h"
#include "common/cleanup.h"
#include "common/log.h"

#define SPEC_FILE_MAX (1 << 20)
#define SPEC_FILES_MAX 1024

static void entries_free(struct crid_cdi_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].qualified);
		free(v[i].file);
		json_decref(v[i].spec);
	}
	free(v);
}

struct table {
	struct crid_cdi_entry *v;
	size_t n, cap;
	json_t *errors; /* file → message */
};

static void table_clear(struct table *t)
{
	entries_free(t->v, t->n);
	json_decref(t->errors);
	memset(t, 0, sizeof(*t));
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

/* A regular file of at most SPEC_FILE_MAX bytes; the directories are the
 * administrator's, so a symbolic link in them is followed. */
static int read_spec_file(int dfd, const char *name, char **text, size_t *len, struct crid_err *err)
{
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "open");
	if (!S_ISREG(st.st_mode))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "not a regular file");
	if (st.st_size > SPEC_FILE_MAX)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "larger than %d bytes", SPEC_FILE_MAX);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return crid_err_nomem(err, "spec file");
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, errno, "read");
		if (r == 0)
			break; /* shrank meanwhile: the watch will read it again */
		got += (size_t)r;
	}
	buf[got] = '\0';
	*text = take_ptr(&buf);
	*len = got;
	return 0;
}

static int add_error(struct table *t, const char *file, const char *msg)
{
	if (!t->errors && !(t->errors = json_object()))
		return -ENOMEM;
	return json_object_set_new(t->errors, file, json_string(msg));
}

static struct crid_cdi_entry *find(struct crid_cdi_entry *v, size_t n, const char *qualified)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].qualified, qualified) == 0)
			return &v[i];
	}
	return NULL;
}

static int add_devices(struct table *t, size_t dir, const char *file, json_t *spec)
{
	const char *kind = json_string_value(json_object_get(spec, "kind"));
	size_t i;
	json_t *d;

	json_array_foreach(json_object_get(spec, "devices"), i, d) {
		const char *name = json_string_value(json_object_get(d, "name"));
		struct crid_cdi_entry *e;
		char *q;

		if (asprintf(&q, "%s=%s", kind, name) < 0)
			return -ENOMEM;
		e = find(t->v, t->n, q);
		if (e && e->dir == dir) {
			char msg[CRID_ERR_MSG_MAX];

			snprintf(msg, sizeof(msg), "device %s is defined in %s already; this definition is ignored", q,
				 e->file);
			free(q);
			if (add_error(t, file, msg) < 0)
				return -ENOMEM;
			continue;
		}
		if (e) { /* a later directory overrides */
			free(e->qualified);
			free(e->file);
			json_decref(e->spec);
		} else {
			if (t->n == t->cap) {
				size_t cap = t->cap ? t->cap * 2 : 16;
				struct crid_cdi_entry *g = reallocarray(t->v, cap, sizeof(*g));

				if (!g) {
					free(q);
					return -ENOMEM;
				}
				t->v = g;
				t->cap = cap;
			}
			e = &t->v[t->n++];
		}
		e->qualified = q;
		e->kind_len = strlen(kind);
		e->dir = dir;
		e->file = strdup(file);
		e->spec = json_incref(spec);
		e->device = d;
		if (!e->file)
			return -ENOMEM;
	}
	return 0;
}

static int load_dir(struct table *t, size_t index, const char *dir)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent **names = NULL;
	int n, r = 0, files = 0;

	if (dfd < 0)
		return 0; /* missing: nothing from it (the watch looks again) */
	n = scandirat(dfd, ".", &names, NULL, alphasort);
	if (n < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		bool yaml = has_suffix(name, ".yaml") || has_suffix(name, ".yml");
		_cleanup_free_ char *text = NULL, *path = NULL;
		json_auto_t *spec = NULL;
		struct crid_err err;
		size_t len = 0;

		if (r < 0 || name[0] == '.' || !(yaml || has_suffix(name, ".json")))
			continue;
		if (asprintf(&path, "%s/%s", dir, name) < 0) {
			path = NULL;
			r = -ENOMEM;
			continue;
		}
		if (++files > SPEC_FILES_MAX) {
			r = add_error(t, path, "more than 1024 spec files in the directory: ignored");
			continue;
		}
		if (read_spec_file(dfd, name, &text, &len, &err) < 0 ||
		    crid_cdi_spec_parse(text, len, yaml, &spec, &err) < 0) {
			if (err.status == CRID_RESOURCE_EXHAUSTED)
				r = -ENOMEM;
			else
				r = add_error(t, path, err.msg);
			continue;
		}
		r = add_devices(t, index, path, spec);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

void crid_cdi_refresh(struct crid_cdi *cdi)
{
	struct table t = { 0 };
	int r = 0;

	for (size_t i = 0; i < cdi->n_dirs && r == 0; i++)
		r = load_dir(&t, i, cdi->dirs[i]);
	if (r < 0) {
		log_error("CDI specs not reloaded: out of memory");
		table_clear(&t);
		return;
	}
	pthread_mutex_lock(&cdi->lock);
	/* Each refusal is logged once, not again at every reload. */
	{
		const char *file;
		json_t *msg;

		json_object_foreach(t.errors, file, msg) {
			if (!json_equal(msg, json_object_get(cdi->errors, file)))
				log_warn("CDI spec file refused", "file", file, "error", json_string_value(msg));
		}
	}
	entries_free(cdi->entries, cdi->n_entries);
	json_decref(cdi->errors);
	cdi->entries = t.v;
	cdi->n_entries = t.n;
	cdi->errors = t.errors;
	pthread_mutex_unlock(&cdi->lock);
	log_debug("CDI specs loaded");
}

int crid_cdi_new(struct crid_cdi **out, char *const *dirs, size_t n, struct crid_err *err)
{
	struct crid_cdi *cdi = calloc(1, sizeof(*cdi));
	int r;

	*out = NULL;
	if (!cdi)
		return crid_err_nomem(err, "CDI registry");
	pthread_mutex_init(&cdi->lock, NULL);
	crid_stoppable_thread_init(&cdi->watcher);
	cdi->dirs = calloc(n + 1, sizeof(*cdi->dirs));
	if (!cdi->dirs) {
		crid_cdi_free(cdi);
		return crid_err_nomem(err, "CDI registry");
	}
	for (size_t i = 0; i < n; i++) {
		if (!(cdi->dirs[i] = strdup(dirs[i]))) {
			crid_cdi_free(cdi);
			return crid_err_nomem(err, "CDI registry");
		}
		cdi->n_dirs++;
	}
	if (n > 0 && (r = crid_cdi_watch_start(cdi, err)) < 0) {
		crid_cdi_free(cdi);
		return r;
	}
	*out = cdi;
	return 0;
}

void crid_cdi_free(struct crid_cdi *cdi)
{
	if (!cdi)
		return;
	crid_cdi_watch_stop(cdi);
	entries_free(cdi->entries, cdi->n_entries);
	json_decref(cdi->errors);
	for (size_t i = 0; i < cdi->n_dirs; i++)
		free(cdi->dirs[i]);
	free(cdi->dirs);
	pthread_mutex_destroy(&cdi->lock);
	free(cdi);
}

json_t *crid_cdi_describe(struct crid_cdi *cdi)
{
	json_auto_t *o = json_object();
	json_t *dirs = json_array(), *devices = json_object();
	int bad = 0;

	bad |= json_object_set_new(o, "specDirs", dirs);
	bad |= json_object_set_new(o, "devices", devices);
	if (bad || !o)
		return NULL;
	for (size_t i = 0; i < cdi->n_dirs; i++)
		bad |= json_array_append_new(dirs, json_string(cdi->dirs[i]));
	pthread_mutex_lock(&cdi->lock);
	for (size_t i = 0; i < cdi->n_entries; i++)
		bad |= json_object_set_new(devices, cdi->entries[i].qualified, json_string(cdi->entries[i].file));
	bad |= json_object_set_new(o, "errors", cdi->errors ? json_deep_copy(cdi->errors) : json_object());
	pthread_mutex_unlock(&cdi->lock);
	return bad ? NULL : take_ptr(&o);
}

/* ---- requests ---- */

static bool listed(const char **v, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(v[i]) == len && strncmp(v[i], s, len) == 0)
			return true;
	}
	return false;
}

static int annotation_cmp(const void *a, const void *b)
{
	const Runtime__V1__ContainerConfig__AnnotationsEntry *const *x = a, *const *y = b;

	return strcmp((*x)->key, (*y)->key);
}

static bool cdi_annotation(const char *key)
{
	return strncmp(key, CRID_CDI_ANNOTATION_PREFIX, strlen(CRID_CDI_ANNOTATION_PREFIX)) == 0;
}

int crid_cdi_requested(const Runtime__V1__ContainerConfig *config, const char ***names, size_t *n,
		       struct crid_err *err)
{
	_cleanup_free_ Runtime__V1__ContainerConfig__AnnotationsEntry **ann = NULL;
	_cleanup_free_ char *block = NULL;
	size_t cap = config->n_cdi_devices, size = 0, na = 0, k = 0;
	const char **v;
	char *p;

	*names = NULL;
	*n = 0;
	for (size_t i = 0; i < config->n_annotations; i++) {
		if (cdi_annotation(config->annotations[i]->key)) {
			size += strlen(config->annotations[i]->value) + 1;
			cap += strlen(config->annotations[i]->value) / 2 + 1; /* "a,b,c" */
			na++;
		}
	}
	if (cap == 0)
		return 0;
	/* One allocation: the array, then the names cut out of the
	 * annotations' values. */
	ann = calloc(na + 1, sizeof(*ann));
	block = malloc(cap * sizeof(*v) + size + 1);
	if (!ann || !block)
		return crid_err_nomem(err, "CDI devices");
	v = (const char **)(void *)block;
	p = block + cap * sizeof(*v);
	for (size_t i = 0; i < config->n_cdi_devices; i++) {
		const char *s = config->cdi_devices[i]->name ? config->cdi_devices[i]->name : "";

		if (!*s)
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "CDI_devices[%zu].name is empty", i);
		if (!listed(v, k, s, strlen(s)))
			v[k++] = s;
	}
	na = 0;
	for (size_t i = 0; i < config->n_annotations; i++) {
		if (cdi_annotation(config->annotations[i]->key))
			ann[na++] = config->annotations[i];
	}
	qsort(ann, na, sizeof(*ann), annotation_cmp);
	for (size_t i = 0; i < na; i++) {
		const char *s = ann[i]->value;

		while (*s) {
			size_t len = strcspn(s, ",");
			const char *start = s;

			s += len + (s[len] == ',');
			/* Spaces around the commas are the writer's, not the name's. */
			while (len && (*start == ' ' || *start == '\t')) {
				start++;
				len--;
			}
			while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
				len--;
			if (len == 0 || listed(v, k, start, len))
				continue;
			memcpy(p, start, len);
			p[len] = '\0';
			v[k++] = p;
			p += len + 1;
		}
	}
	*names = (const char **)(void *)take_ptr(&block);
	*n = k;
	return 0;
}

/* ---- resolving ---- */

/* The entries a name stands for, under the lock: the device itself, or
 * for "all" when no spec defines a device of that name, every device of
 * the kind. */
static size_t lookup_locked(struct crid_cdi *cdi, const char *kind, const char *name, const char *qualified,
			    struct crid_cdi_entry **out, size_t max)
{
	struct crid_cdi_entry *e = find(cdi->entries, cdi->n_entries, qualified);
	size_t k = 0, klen = strlen(kind);

	if (e) {
		out[0] = e;
		return 1;
	}
	if (strcmp(name, "all") != 0)
		return 0;
	for (size_t i = 0; i < cdi->n_entries && k < max; i++) {
		if (cdi->entries[i].kind_len == klen && strncmp(cdi->entries[i].qualified, kind, klen) == 0)
			out[k++] = &cdi->entries[i];
	}
	return k;
}

static int unknown(struct crid_cdi *cdi, const char *name, struct crid_err *err)
{
	char dirs[CRID_ERR_MSG_MAX / 2] = "";

	if (cdi->n_dirs == 0)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "CDI device %.300s: no CDI spec directories are configured",
				    name);
	for (size_t i = 0; i < cdi->n_dirs; i++) {
		size_t used = strlen(dirs);

		snprintf(dirs + used, sizeof(dirs) - used, "%s%s", i ? ", " : "", cdi->dirs[i]);
	}
	return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "CDI device %.300s is not defined by any spec in %s", name,
			    dirs);
}

static int merge_locked(struct crid_cdi *cdi, const char *const *names, size_t n, json_t *merged, bool *missing,
			struct crid_err *err)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *buf = malloc(strlen(names[i]) + 1);
		_cleanup_free_ struct crid_cdi_entry **found = NULL;
		const char *kind, *name;
		size_t k;
		int r;

		found = calloc(cdi->n_entries + 1, sizeof(*found));
		if (!buf || !found)
			return crid_err_nomem(err, "CDI devices");
		if ((r = crid_cdi_parse_qualified(names[i], buf, &kind, &name, err)) < 0)
			return r;
		k = lookup_locked(cdi, kind, name, names[i], found, cdi->n_entries);
		if (k == 0) {
			*missing = true;
			return unknown(cdi, names[i], err);
		}
		for (size_t j = 0; j < k; j++) {
			const struct crid_cdi_entry *e = found[j];

			if ((r = crid_cdi_edits_merge(merged, json_object_get(e->spec, "containerEdits"), e->qualified,
						      err)) < 0 ||
			    (r = crid_cdi_edits_merge(merged, json_object_get(e->device, "containerEdits"), e->qualified,
						      err)) < 0)
				return r;
		}
	}
	return 0;
}

int crid_cdi_resolve(struct crid_cdi *cdi, const char *const *names, size_t n, json_t **edits, struct crid_err *err)
{
	*edits = NULL;
	if (n == 0)
		return 0;
	/* A spec written just now may not have reached the watch yet: an
	 * unknown name reads the directories once more before failing. */
	for (int attempt = 0; attempt < 2; attempt++) {
		json_auto_t *merged = json_object();
		bool missing = false;
		int r;

		if (!merged)
			return crid_err_nomem(err, "CDI devices");
		pthread_mutex_lock(&cdi->lock);
		r = merge_locked(cdi, names, n, merged, &missing, err);
		if (r == 0) {
			json_object_del(merged, "owners");
			/* Nothing of the registry's is shared once the lock goes. */
			*edits = json_deep_copy(merged);
		}
		json_decref(take_ptr(&merged));
		pthread_mutex_unlock(&cdi->lock);
		if (r == 0)
			return *edits ? 0 : crid_err_nomem(err, "CDI devices");
		if (!missing || attempt == 1 || cdi->n_dirs == 0)
			return r;
		crid_cdi_refresh(cdi);
	}
	return 0;
}
