/* The watch on the configuration directory (cni.h): one thread blocked on
 * inotify that reloads the configuration after every change, so a network
 * installed after crid started (Flannel, Calico and Cilium write theirs
 * into the directory) is picked up without a restart. Only while the
 * directory itself is missing does it look again, once a second. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "network/cni.h"

#define WATCH_MASK                                                                                          \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB |     \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define REWATCH_MS 1000

struct watch {
	struct crid_network *net;
	int fd; /* inotify */
	int wd; /* the directory's watch, -1 while it is missing */
};

static void *watch_main(void *data)
{
	struct watch *w = data;
	struct crid_network *net = w->net;
	const char *dir = net->cfg->cni_conf_dir;

	for (;;) {
		struct pollfd p[2] = { { .fd = w->fd, .events = POLLIN }, { .fd = net->watcher.stop_fd, .events = POLLIN } };
		bool changed = false;

		if (w->wd < 0) {
			w->wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
			if (w->wd >= 0) {
				log_info("watching the CNI configuration directory again", "dir", dir);
				crid_cni_reload(net);
			}
		}
		if (poll(p, 2, w->wd < 0 ? REWATCH_MS : -1) < 0 && errno != EINTR)
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

				if (ev->mask & IN_IGNORED && ev->wd == w->wd)
					w->wd = -1; /* the directory went away */
				/* Moved away, the watch would follow it elsewhere. */
				if (ev->mask & IN_MOVE_SELF && ev->wd == w->wd) {
					inotify_rm_watch(w->fd, w->wd);
					w->wd = -1;
				}
				changed = true;
				q += sizeof(*ev) + ev->len;
			}
		}
		if (changed)
			crid_cni_reload(net);
	}
	close(w->fd);
	free(w);
	return NULL;
}

int crid_cni_watch_start(struct crid_network *net, struct crid_err *err)
{
	struct watch *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return crid_err_nomem(err, "CNI configuration watch");
	w->net = net;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		r = crid_err_set(err, CRID_INTERNAL, errno, "watch %s", net->cfg->cni_conf_dir);
		free(w);
		return r;
	}
	/* The watch exists before the first load: no change can fall between. */
	w->wd = inotify_add_watch(w->fd, net->cfg->cni_conf_dir, WATCH_MASK);
	if (w->wd < 0)
		log_warn("cannot watch the CNI configuration directory", "dir", net->cfg->cni_conf_dir, "error",
			 strerror(errno));
	crid_cni_reload(net);
	r = crid_stoppable_thread_start(&net->watcher, watch_main, w, "CNI configuration watch", err);
	if (r < 0) {
		close(w->fd);
		free(w);
	}
	return r;
}

void crid_cni_watch_stop(struct crid_network *net)
{
	crid_stoppable_thread_stop(&net->watcher, "CNI configuration watch");
}
