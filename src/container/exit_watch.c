/* The exit watcher: one thread, one inotify descriptor, a watch on every
 * container's state directory. When a shim renames its exit file into
 * place, the container's record learns the exit at once, waiters in
 * StopContainer wake, and the CONTAINER_STOPPED event goes out. Status and
 * lists read only memory; StopContainer's wait also looks at the file, so
 * it never depends on one event alone. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/log.h"
#include "container/container.h"
#include "runtime/objects.h"
#include "shim/protocol.h"

struct crid_exit_watch {
	int wd;
	char id[CRID_ID_LEN + 1];
};

static void on_exit_file(struct crid_runtime *rt, int wd)
{
	char id[CRID_ID_LEN + 1] = "";
	struct crid_container *c = NULL;
	struct crid_err err;

	pthread_mutex_lock(&rt->watch_lock);
	for (size_t i = 0; i < rt->n_watches; i++) {
		if (rt->watches[i].wd == wd) {
			memcpy(id, rt->watches[i].id, sizeof(id));
			rt->watches[i] = rt->watches[--rt->n_watches];
			break;
		}
	}
	pthread_mutex_unlock(&rt->watch_lock);
	if (!*id || crid_container_find(rt, id, &c, &err) < 0)
		return;
	inotify_rm_watch(rt->inotify_fd, wd);
	/* The exit's CONTAINER_STOPPED event goes out as it is collected,
	 * whoever collects it first: this watcher, or a stop or remove. */
	pthread_mutex_lock(&c->lock);
	crid_container_collect_exit_locked(rt, c);
	pthread_mutex_unlock(&c->lock);
	crid_container_unref(c);
}

static void *watch_main(void *arg)
{
	struct crid_runtime *rt = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		struct pollfd p[2] = { { .fd = rt->inotify_fd, .events = POLLIN }, { .fd = rt->watcher.stop_fd, .events = POLLIN } };
		ssize_t n;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		n = read(rt->inotify_fd, buf, sizeof(buf));
		if (n <= 0)
			continue;
		for (char *q = buf; q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;

			if (ev->len && strcmp(ev->name, CRID_SHIM_EXIT_FILE) == 0)
				on_exit_file(rt, ev->wd);
			q += sizeof(*ev) + ev->len;
		}
	}
	return NULL;
}

int crid_exit_watch_start(struct crid_runtime *rt, struct crid_err *err)
{
	rt->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (rt->inotify_fd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "set up the exit watcher");
	return crid_stoppable_thread_start(&rt->watcher, watch_main, rt, "exit watcher", err);
}

int crid_exit_watch_add(struct crid_runtime *rt, struct crid_container *c, struct crid_err *err)
{
	int wd = inotify_add_watch(rt->inotify_fd, c->dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);

	if (wd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "watch %s", c->dir);
	pthread_mutex_lock(&rt->watch_lock);
	if (rt->n_watches == rt->cap_watches) {
		size_t cap = rt->cap_watches ? rt->cap_watches * 2 : 64;
		struct crid_exit_watch *grown = realloc(rt->watches, cap * sizeof(*grown));

		if (!grown) {
			pthread_mutex_unlock(&rt->watch_lock);
			inotify_rm_watch(rt->inotify_fd, wd);
			return crid_err_nomem(err, "exit watch");
		}
		rt->watches = grown;
		rt->cap_watches = cap;
	}
	rt->watches[rt->n_watches].wd = wd;
	memcpy(rt->watches[rt->n_watches].id, c->id, sizeof(c->id));
	rt->n_watches++;
	pthread_mutex_unlock(&rt->watch_lock);
	return 0;
}

void crid_exit_watch_stop(struct crid_runtime *rt)
{
	crid_stoppable_thread_stop(&rt->watcher, "exit watcher");
	if (rt->inotify_fd >= 0)
		close(rt->inotify_fd);
	rt->inotify_fd = -1;
	free(rt->watches);
	rt->watches = NULL;
	rt->n_watches = rt->cap_watches = 0;
}
