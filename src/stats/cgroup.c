/* The cgroup readers of cgroup.h: which hierarchy serves each controller,
 * and the files of each version, read relative to the hierarchies' root
 * fds opened once at start-up. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "stats/cgroup.h"

/* The largest cgroup file read here (memory.stat) is a few KiB. */
#define CGROUP_FILE_MAX 16384

static bool is_fs(int fd, long magic)
{
	struct statfs sf;

	return fstatfs(fd, &sf) == 0 && sf.f_type == magic;
}

static int open_hierarchy(int rootfd, const char *name, long magic)
{
	int fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0 && !is_fs(fd, magic)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads dirfd/name into buf (NUL-terminated); false when it cannot. */
static bool read_small(int dirfd, const char *name, char *buf, size_t size)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = 0;

	if (fd < 0)
		return false;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return true;
}

static bool has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += wl)
		if ((p == list || p[-1] == ' ') && (p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n'))
			return true;
	return false;
}

int crid_cgroup_layout_open(struct crid_cgroup_layout *l, const char *root, struct crid_err *err)
{
	_cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char controllers[1024];

	memset(l, 0, sizeof(*l));
	l->v1_cpu_fd = l->v1_memory_fd = l->v1_pids_fd = l->v2_fd = -1;
	if (rootfd < 0)
		return crid_err_set(err, CRID_INTERNAL, errno, "open %s", root);
	if (is_fs(rootfd, CGROUP2_SUPER_MAGIC)) {
		l->v2_fd = take_fd(&rootfd);
	} else {
		l->v1_cpu_fd = open_hierarchy(rootfd, "cpuacct", CGROUP_SUPER_MAGIC);
		l->v1_memory_fd = open_hierarchy(rootfd, "memory", CGROUP_SUPER_MAGIC);
		l->v1_pids_fd = open_hierarchy(rootfd, "pids", CGROUP_SUPER_MAGIC);
		l->v2_fd = open_hierarchy(rootfd, "unified", CGROUP2_SUPER_MAGIC);
	}
	if (l->v2_fd >= 0 && read_small(l->v2_fd, "cgroup.controllers", controllers, sizeof(controllers))) {
		l->v2_memory = has_word(controllers, "memory");
		l->v2_pids = has_word(controllers, "pids");
	}
	l->cpu = l->v1_cpu_fd >= 0 ? CRID_CGROUP_V1 : l->v2_fd >= 0 ? CRID_CGROUP_V2 : CRID_CGROUP_NONE;
	l->memory = l->v1_memory_fd >= 0 ? CRID_CGROUP_V1 : l->v2_memory ? CRID_CGROUP_V2 : CRID_CGROUP_NONE;
	l->pids = l->v1_pids_fd >= 0 ? CRID_CGROUP_V1 : l->v2_pids ? CRID_CGROUP_V2 : CRID_CGROUP_NONE;
	return 0;
}

void crid_cgroup_layout_close(struct crid_cgroup_layout *l)
{
	int *fds[] = { &l->v1_cpu_fd, &l->v1_memory_fd, &l->v1_pids_fd, &l->v2_fd };

	for (size_t i = 0; i < CRID_ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* ---- v1 ---- */

void crid_cgroup_v1_read_cpu(int dirfd, struct crid_cgroup_sample *out)
{
	char buf[64];

	out->has_cpu = read_small(dirfd, "cpuacct.usage", buf, sizeof(buf)) &&
		       crid_cgroup_parse_u64(buf, &out->cpu_usage_ns) == 0;
}

void crid_cgroup_v1_read_memory(int dirfd, struct crid_cgroup_sample *out)
{
	char usage[64], limit[64], memsw[64], memsw_limit[64], stat[CGROUP_FILE_MAX];
	bool has_memsw;

	if (!read_small(dirfd, "memory.usage_in_bytes", usage, sizeof(usage)) ||
	    !read_small(dirfd, "memory.stat", stat, sizeof(stat)))
		return;
	if (!read_small(dirfd, "memory.limit_in_bytes", limit, sizeof(limit)))
		limit[0] = '\0';
	/* Without swap accounting (swapaccount=0) the memsw files are absent. */
	has_memsw = read_small(dirfd, "memory.memsw.usage_in_bytes", memsw, sizeof(memsw));
	if (!has_memsw || !read_small(dirfd, "memory.memsw.limit_in_bytes", memsw_limit, sizeof(memsw_limit)))
		memsw_limit[0] = '\0';
	if (crid_cgroup_v1_memory_parse(usage, limit, stat, has_memsw ? memsw : NULL,
					memsw_limit[0] ? memsw_limit : NULL, out) < 0)
		out->has_memory = out->has_swap = false;
}

void crid_cgroup_v1_read_pids(int dirfd, struct crid_cgroup_sample *out)
{
	char buf[64];

	out->has_pids = read_small(dirfd, "pids.current", buf, sizeof(buf)) &&
			crid_cgroup_parse_u64(buf, &out->pids) == 0;
}

/* ---- v2 ---- */

void crid_cgroup_v2_read_cpu(int dirfd, struct crid_cgroup_sample *out)
{
	char buf[1024];

	out->has_cpu = read_small(dirfd, "cpu.stat", buf, sizeof(buf)) &&
		       crid_cgroup_v2_cpu_parse(buf, &out->cpu_usage_ns) == 0;
}

void crid_cgroup_v2_read_memory(int dirfd, struct crid_cgroup_sample *out)
{
	char current[64], max[64], swap[64], swap_max[64], stat[CGROUP_FILE_MAX];
	bool has_swap;

	if (!read_small(dirfd, "memory.current", current, sizeof(current)) ||
	    !read_small(dirfd, "memory.stat", stat, sizeof(stat)))
		return;
	if (!read_small(dirfd, "memory.max", max, sizeof(max)))
		max[0] = '\0';
	has_swap = read_small(dirfd, "memory.swap.current", swap, sizeof(swap));
	if (!has_swap || !read_small(dirfd, "memory.swap.max", swap_max, sizeof(swap_max)))
		swap_max[0] = '\0';
	if (crid_cgroup_v2_memory_parse(current, max, stat, has_swap ? swap : NULL, swap_max[0] ? swap_max : NULL,
					out) < 0)
		out->has_memory = out->has_swap = false;
}

void crid_cgroup_v2_read_pids(int dirfd, struct crid_cgroup_sample *out)
{
	char buf[64];

	out->has_pids = read_small(dirfd, "pids.current", buf, sizeof(buf)) &&
			crid_cgroup_parse_u64(buf, &out->pids) == 0;
}

/* ---- one cgroup ---- */

static int open_cgroup(int rootfd, const char *rel)
{
	return openat(rootfd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int crid_cgroup_read(const struct crid_cgroup_layout *l, const char *path, struct crid_cgroup_sample *out,
		     struct crid_err *err)
{
	const char *rel = path;
	int v1_cpu = -1, v1_mem = -1, v1_pids = -1, v2 = -1;

	memset(out, 0, sizeof(*out));
	out->timestamp = crid_realtime_ns();
	while (*rel == '/')
		rel++;
	/* Paths come from requests' cgroup parents: never leave the roots. */
	for (const char *p = rel; (p = strstr(p, "..")); p += 2)
		if ((p == rel || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "cgroup path %s has \"..\"", path);
	if (l->cpu == CRID_CGROUP_V1 || l->memory == CRID_CGROUP_V1 || l->pids == CRID_CGROUP_V1) {
		if (l->cpu == CRID_CGROUP_V1 && (v1_cpu = open_cgroup(l->v1_cpu_fd, rel)) >= 0)
			crid_cgroup_v1_read_cpu(v1_cpu, out);
		if (l->memory == CRID_CGROUP_V1 && (v1_mem = open_cgroup(l->v1_memory_fd, rel)) >= 0)
			crid_cgroup_v1_read_memory(v1_mem, out);
		if (l->pids == CRID_CGROUP_V1 && (v1_pids = open_cgroup(l->v1_pids_fd, rel)) >= 0)
			crid_cgroup_v1_read_pids(v1_pids, out);
	}
	if ((l->cpu == CRID_CGROUP_V2 || l->memory == CRID_CGROUP_V2 || l->pids == CRID_CGROUP_V2) &&
	    (v2 = open_cgroup(l->v2_fd, rel)) >= 0) {
		if (l->cpu == CRID_CGROUP_V2)
			crid_cgroup_v2_read_cpu(v2, out);
		if (l->memory == CRID_CGROUP_V2)
			crid_cgroup_v2_read_memory(v2, out);
		if (l->pids == CRID_CGROUP_V2)
			crid_cgroup_v2_read_pids(v2, out);
	}
	{
		int fds[] = { v1_cpu, v1_mem, v1_pids, v2 };

		for (size_t i = 0; i < CRID_ARRAY_SIZE(fds); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	return 0;
}
