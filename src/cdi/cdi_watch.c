/* The watch on the CDI spec directories (cdi_internal.h): one thread
 * blocked on inotify that reloads the registry after every change, so a
 * spec a device plugin or driver installer writes while crid runs is used
 * at the next CreateContainer. A directory missing at start (often
 * /var/run/cdi) is looked for again once a second. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cdi/cdi_internal.h"
#include "common/cleanup.h"
#include "common/log.h"

#define WATCH_MASK                                                                                          \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB |     \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define REWATCH_MS 1000

struct watch {
	struct crid_cdi *cdi;
	int fd;	  /* inotify */
	int *wds; /* per directory, -1 while it is missing */
};

static void watch_free(struct watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->wds);
	free(w);
}

/* Watches the directories not watched yet; true when one was added. */
static bool rewatch(struct watch *w, bool *missing)
{
	bool added = false;

	*missing = false;
	for (size_t i = 0; i < w->cdi->n_dirs; i++) {
		if (w->wds[i] >= 0)
			continue;
		w->wds[i] = inotify_add_watch(w->fd, w->cdi->dirs[i], WATCH_MASK);
		if (w->wds[i] >= 0)
			added = true;
		else
			*missing = true;
	}
	return added;
}

static void forget(struct watch *w, int wd)
{
	for (size_t i = 0; i < w->cdi->n_dirs; i++) {
		if (w->wds[i] == wd)
			w->wds[i] = -1;
	}
}

static void *watch_main(void *data)
{
	struct watch *w = data;
	struct crid_cdi *cdi = w->cdi;
	bool missing = false;

	/* A directory that appeared since the start: its specs too. */
	if (rewatch(w, &missing))
		crid_cdi_refresh(cdi);
	for (;;) {
		struct pollfd p[2] = { { .fd = w->fd, .events = POLLIN }, { .fd = cdi->watcher.stop_fd, .events = POLLIN } };
		bool changed = false;

		if (missing && rewatch(w, &missing))
			crid_cdi_refresh(cdi);
		if (poll(p, 2, missing ? REWATCH_MS : -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		/* Every queued event at once: a burst of writes is one reload. */
		for (;;) {
			char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
			ssize_t n = read(w->fd, buf, sizeof(buf));

			if (n <= 0)
				break;
			for (char *q = buf; q < buf + n;) {
				const struct inotify_event *ev = (const struct inotify_event *)q;

				if (ev->mask & IN_IGNORED) {
					forget(w, ev->wd); /* the directory went away */
					missing = true;
				}
				if (ev->mask & IN_MOVE_SELF) { /* the watch would follow it elsewhere */
					inotify_rm_watch(w->fd, ev->wd);
					forget(w, ev->wd);
					missing = true;
				}
				changed = true;
				q += sizeof(*ev) + ev->len;
			}
		}
		if (changed)
			crid_cdi_refresh(cdi);
	}
	watch_free(w);
	return NULL;
}

int crid_cdi_watch_start(struct crid_cdi *cdi, struct crid_err *err)
{
	struct watch *w = calloc(1, sizeof(*w));
	bool missing;
	int r;

	if (!w)
		return crid_err_nomem(err, "CDI spec watch");
	w->cdi = cdi;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	w->wds = malloc(cdi->n_dirs * sizeof(*w->wds));
	if (!w->wds) {
		watch_free(w);
		return crid_err_nomem(err, "CDI spec watch");
	}
	if (w->fd < 0) {
		r = crid_err_set(err, CRID_INTERNAL, errno, "watch the CDI spec directories");
		watch_free(w);
		return r;
	}
	for (size_t i = 0; i < cdi->n_dirs; i++)
		w->wds[i] = -1;
	/* The watches exist before the first load: no change falls between. */
	rewatch(w, &missing);
	crid_cdi_refresh(cdi);
	r = crid_stoppable_thread_start(&cdi->watcher, watch_main, w, "CDI spec watch", err);
	if (r < 0)
		watch_free(w);
	return r;
}

void crid_cdi_watch_stop(struct crid_cdi *cdi)
{
	crid_stoppable_thread_stop(&cdi->watcher, "CDI spec watch");
}
