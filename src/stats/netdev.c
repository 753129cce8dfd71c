/* The interface counters of netdev.h. setns(2) moves only the calling
 * thread, so a thread of its own enters the pod's namespace, reads
 * /proc/thread-self/net/dev, and ends there: no thread of crid ever has to
 * find its way back. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "stats/netdev.h"

#define NETDEV_TEXT_MAX 65536

int crid_netdev_parse(const char *text, struct crid_netdev_list *out)
{
	const char *line = text;
	int header = 0;

	out->n = 0;
	while (line && *line) {
		const char *end = strchr(line, '\n');
		const char *colon = strchr(line, ':');
		unsigned long long v[16];
		char name[32];
		size_t nlen;
		const char *p;

		if (header < 2) { /* two header lines */
			header++;
			line = end ? end + 1 : NULL;
			continue;
		}
		if (!colon || (end && colon > end))
			return -EINVAL;
		for (p = line; *p == ' '; p++)
			;
		nlen = (size_t)(colon - p);
		if (nlen == 0 || nlen >= sizeof(name))
			return -EINVAL;
		memcpy(name, p, nlen);
		name[nlen] = '\0';
		if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11],
			   &v[12], &v[13], &v[14], &v[15]) != 16)
			return -EINVAL;
		if (strcmp(name, "lo") != 0 && out->n < CRID_NETDEV_MAX) {
			struct crid_netdev *d = &out->dev[out->n++];

			memcpy(d->name, name, nlen + 1);
			d->rx_bytes = v[0];
			d->rx_packets = v[1];
			d->rx_errors = v[2];
			d->rx_dropped = v[3];
			d->tx_bytes = v[8];
			d->tx_packets = v[9];
			d->tx_errors = v[10];
			d->tx_dropped = v[11];
		}
		line = end ? end + 1 : NULL;
	}
	return header == 2 ? 0 : -EINVAL;
}

const struct crid_netdev *crid_netdev_default(const struct crid_netdev_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->dev[i].name, "eth0") == 0)
			return &l->dev[i];
	return l->n ? &l->dev[0] : NULL;
}

struct reader {
	int nsfd;
	char *text;
	size_t len;
	int error; /* errno, 0 when read */
};

static void *read_in_ns(void *arg)
{
	struct reader *rd = arg;
	_cleanup_close_ int fd = -1;

	if (setns(rd->nsfd, CLONE_NEWNET) < 0) {
		rd->error = errno;
		return NULL;
	}
	fd = open("/proc/thread-self/net/dev", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rd->error = errno;
		return NULL;
	}
	while (rd->len + 1 < NETDEV_TEXT_MAX) {
		ssize_t n = read(fd, rd->text + rd->len, NETDEV_TEXT_MAX - 1 - rd->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rd->error = errno;
			return NULL;
		}
		if (n == 0)
			break;
		rd->len += (size_t)n;
	}
	rd->text[rd->len] = '\0';
	return NULL;
}

int crid_netdev_read(const char *netns_path, struct crid_netdev_list *out, struct crid_err *err)
{
	_cleanup_close_ int nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *text = malloc(NETDEV_TEXT_MAX);
	struct reader rd = { .nsfd = nsfd };
	sigset_t all, old;
	pthread_t t;
	int r;

	out->n = 0;
	out->timestamp = crid_realtime_ns();
	if (nsfd < 0)
		return crid_err_set(err, errno == ENOENT ? CRID_NOT_FOUND : CRID_INTERNAL, errno, "open %s",
				    netns_path);
	if (!text)
		return crid_err_nomem(err, "network counters");
	rd.text = text;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&t, NULL, read_in_ns, &rd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, r, "start a thread to read network counters");
	pthread_join(t, NULL);
	if (rd.error)
		return crid_err_set(err, CRID_INTERNAL, rd.error, "read the network counters of %s", netns_path);
	if (crid_netdev_parse(text, out) < 0)
		return crid_err_set(err, CRID_INTERNAL, 0, "/proc/net/dev of %s cannot be parsed", netns_path);
	return 0;
}
