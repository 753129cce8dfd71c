/* The writable-layer walker of layer_usage.h. One thread; the entries it
 * measures sit in a list under one mutex, which a walk never holds: it
 * copies the directory's path, walks, then stores the result if the entry
 * is still there. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "stats/layer_usage.h"

#define LINKED_MAX (1u << 20) /* hard-linked inodes remembered per walk */

struct entry {
	char *id, *dir;
	bool measured;
	struct crid_fs_usage usage;
	int64_t due_ns; /* CLOCK_MONOTONIC: next walk */
	struct entry *next;
};

struct crid_layer_usage {
	char *mountpoint;
	int64_t period_ns;
	unsigned files_per_s;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* CLOCK_MONOTONIC */
	struct entry *entries;
	bool stop;
	pthread_t thread;
	bool started;
	bool warned_depth;
};

/* The inodes with more than one link seen in this walk. */
struct linked {
	ino_t *slots;
	size_t cap, n;
};

static int linked_add(struct linked *s, ino_t ino)
{
	size_t i;

	if (ino == 0 || s->n >= LINKED_MAX)
		return 1;
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		ino_t *slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return 1; /* counted again: better than not at all */
		for (size_t j = 0; j < s->cap; j++) {
			if (!s->slots[j])
				continue;
			for (i = s->slots[j] % cap; slots[i]; i = (i + 1) % cap)
				;
			slots[i] = s->slots[j];
		}
		free(s->slots);
		s->slots = slots;
		s->cap = cap;
	}
	for (i = ino % s->cap; s->slots[i]; i = (i + 1) % s->cap)
		if (s->slots[i] == ino)
			return 0;
	s->slots[i] = ino;
	s->n++;
	return 1;
}

/* One walk's pace: it sleeps whenever it ran ahead of files_per_s. */
struct pace {
	int64_t start_ns;
	uint64_t files;
};

/* Counts one file; false when the walker must stop. */
static bool pace_step(struct crid_layer_usage *lu, struct pace *p)
{
	int64_t ahead;

	if (++p->files % 256 != 0)
		return true;
	ahead = (int64_t)(p->files * 1000000000ULL / lu->files_per_s) - (crid_monotonic_ns() - p->start_ns);
	pthread_mutex_lock(&lu->lock);
	if (ahead > 0 && !lu->stop) {
		int64_t until = crid_monotonic_ns() + ahead;
		struct timespec ts = { .tv_sec = until / 1000000000LL, .tv_nsec = until % 1000000000LL };

		pthread_cond_timedwait(&lu->wake, &lu->lock, &ts);
	}
	ahead = lu->stop;
	pthread_mutex_unlock(&lu->lock);
	return !ahead;
}

static int walk(struct crid_layer_usage *lu, const char *dir, struct crid_fs_usage *u)
{
	DIR *stack[CRID_LAYER_WALK_MAX_DEPTH];
	struct linked linked = { 0 };
	struct pace pace = { .start_ns = crid_monotonic_ns() };
	size_t depth = 0;
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	dev_t dev;
	int r = 0;

	u->bytes = u->inodes = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !(stack[0] = fdopendir(fd))) {
		r = -errno;
		close(fd);
		return r;
	}
	dev = st.st_dev;
	u->bytes = (uint64_t)st.st_blocks * 512;
	u->inodes = 1;
	depth = 1;
	while (depth > 0) {
		DIR *d = stack[depth - 1];
		struct dirent *de;

		errno = 0;
		de = readdir(d);
		if (!de) {
			closedir(d);
			depth--;
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!pace_step(lu, &pace)) {
			r = -ECANCELED;
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
			continue;
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !linked_add(&linked, st.st_ino))
			continue;
		u->bytes += (uint64_t)st.st_blocks * 512;
		u->inodes++;
		if (!S_ISDIR(st.st_mode))
			continue;
		if (depth == CRID_LAYER_WALK_MAX_DEPTH) {
			if (!lu->warned_depth) {
				lu->warned_depth = true;
				log_warn("writable layer nested too deep: its deepest directories are not counted",
					 "dir", dir, "max_depth", "128");
			}
			continue;
		}
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		stack[depth] = fdopendir(fd);
		if (!stack[depth]) {
			close(fd);
			continue;
		}
		depth++;
	}
	while (depth > 0)
		closedir(stack[--depth]);
	free(linked.slots);
	return r;
}

static struct entry *find(struct crid_layer_usage *lu, const char *id)
{
	for (struct entry *e = lu->entries; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void *walker_main(void *arg)
{
	struct crid_layer_usage *lu = arg;

	pthread_mutex_lock(&lu->lock);
	while (!lu->stop) {
		struct entry *next = NULL;
		int64_t now = crid_monotonic_ns();

		for (struct entry *e = lu->entries; e; e = e->next)
			if (!next || e->due_ns < next->due_ns)
				next = e;
		if (next && next->due_ns <= now) {
			char *id = strdup(next->id), *dir = strdup(next->dir);
			struct crid_fs_usage u = { 0 };
			int r = -ENOMEM;

			next->due_ns = now + lu->period_ns;
			pthread_mutex_unlock(&lu->lock);
			if (id && dir)
				r = walk(lu, dir, &u);
			u.timestamp = crid_realtime_ns();
			pthread_mutex_lock(&lu->lock);
			if (id && r == 0 && (next = find(lu, id)) && strcmp(next->dir, dir) == 0) {
				next->usage = u;
				next->measured = true;
			}
			free(id);
			free(dir);
			continue;
		}
		if (next) {
			struct timespec ts = { .tv_sec = next->due_ns / 1000000000LL,
					       .tv_nsec = next->due_ns % 1000000000LL };

			pthread_cond_timedwait(&lu->wake, &lu->lock, &ts);
		} else {
			pthread_cond_wait(&lu->wake, &lu->lock);
		}
	}
	pthread_mutex_unlock(&lu->lock);
	return NULL;
}

int crid_layer_usage_new(struct crid_layer_usage **out, const char *mountpoint, unsigned period_s,
			 unsigned files_per_s, struct crid_err *err)
{
	struct crid_layer_usage *lu = calloc(1, sizeof(*lu));
	pthread_condattr_t attr;
	sigset_t all, old;
	int r;

	if (!lu || !(lu->mountpoint = strdup(mountpoint))) {
		free(lu);
		return crid_err_nomem(err, "writable layer walker");
	}
	lu->period_ns = (int64_t)(period_s ? period_s : 1) * 1000000000LL;
	lu->files_per_s = files_per_s ? files_per_s : 1;
	pthread_mutex_init(&lu->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&lu->wake, &attr);
	pthread_condattr_destroy(&attr);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&lu->thread, NULL, walker_main, lu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		crid_layer_usage_free(lu);
		return crid_err_set(err, CRID_INTERNAL, r, "start the writable layer walker");
	}
	lu->started = true;
	*out = lu;
	return 0;
}

int crid_layer_usage_add(struct crid_layer_usage *lu, const char *id, const char *dir, struct crid_err *err)
{
	struct entry *e;
	char *dir_copy = strdup(dir);

	if (!dir_copy)
		return crid_err_nomem(err, "writable layer entry");
	pthread_mutex_lock(&lu->lock);
	e = find(lu, id);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->id = strdup(id))) {
			pthread_mutex_unlock(&lu->lock);
			free(e);
			free(dir_copy);
			return crid_err_nomem(err, "writable layer entry");
		}
		e->next = lu->entries;
		lu->entries = e;
	}
	free(e->dir);
	e->dir = dir_copy;
	e->measured = false;
	e->due_ns = 0;
	pthread_cond_broadcast(&lu->wake);
	pthread_mutex_unlock(&lu->lock);
	return 0;
}

static void entry_free(struct entry *e)
{
	free(e->id);
	free(e->dir);
	free(e);
}

void crid_layer_usage_remove(struct crid_layer_usage *lu, const char *id)
{
	pthread_mutex_lock(&lu->lock);
	for (struct entry **p = &lu->entries; *p; p = &(*p)->next) {
		if (strcmp((*p)->id, id) == 0) {
			struct entry *gone = *p;

			*p = gone->next;
			entry_free(gone);
			break;
		}
	}
	pthread_mutex_unlock(&lu->lock);
}

bool crid_layer_usage_get(struct crid_layer_usage *lu, const char *id, struct crid_fs_usage *out)
{
	struct entry *e;
	bool ok = false;

	pthread_mutex_lock(&lu->lock);
	e = find(lu, id);
	if (e && e->measured) {
		*out = e->usage;
		ok = true;
	}
	pthread_mutex_unlock(&lu->lock);
	return ok;
}

void crid_layer_usage_total(struct crid_layer_usage *lu, struct crid_fs_usage *out)
{
	*out = (struct crid_fs_usage){ .timestamp = crid_realtime_ns() };
	pthread_mutex_lock(&lu->lock);
	for (struct entry *e = lu->entries; e; e = e->next) {
		if (!e->measured)
			continue;
		out->bytes += e->usage.bytes;
		out->inodes += e->usage.inodes;
		if (e->usage.timestamp < out->timestamp)
			out->timestamp = e->usage.timestamp;
	}
	pthread_mutex_unlock(&lu->lock);
}

const char *crid_layer_usage_mountpoint(const struct crid_layer_usage *lu)
{
	return lu->mountpoint;
}

void crid_layer_usage_free(struct crid_layer_usage *lu)
{
	if (!lu)
		return;
	if (lu->started) {
		pthread_mutex_lock(&lu->lock);
		lu->stop = true;
		pthread_cond_broadcast(&lu->wake);
		pthread_mutex_unlock(&lu->lock);
		pthread_join(lu->thread, NULL);
	}
	while (lu->entries) {
		struct entry *e = lu->entries;

		lu->entries = e->next;
		entry_free(e);
	}
	pthread_cond_destroy(&lu->wake);
	pthread_mutex_destroy(&lu->lock);
	free(lu->mountpoint);
	free(lu);
}
