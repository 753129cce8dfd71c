/* A pod's cgroup (pod.h): the cgroup_parent its containers' cgroups live
 * in, given the pod's resources (which the CRI defines as the sum of its
 * containers' plus the pod overhead) with the cgroupfs driver. The kubelet
 * sizes this cgroup itself and writes the same values; without one (crictl,
 * tests) nobody else would. The values come from crid_spec_resources, so
 * they are checked and, on cgroup v1, translated the same way as a
 * container's. Files are written relative to each hierarchy's directory;
 * the parent path is checked to stay inside it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "pod/pod.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

/* "/kubepods/burstable/pod123": components of letters, digits and
 * "._-:@", none "." or "..". */
bool crid_pod_cgroup_parent_ok(const char *p)
{
	const char *s = p;

	if (!*p || strlen(p) > 512)
		return false;
	while (*s) {
		size_t n;

		while (*s == '/')
			s++;
		n = strcspn(s, "/");
		if (n == 0)
			break;
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++) {
			char ch = s[i];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			      strchr("._-:@", ch)))
				return false;
		}
		s += n;
	}
	return true;
}

static int write_at(int dirfd, const char *file, const char *value, const char *dir, struct crid_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = strlen(value);

	if (fd < 0 || write(fd, value, len) != (ssize_t)len)
		return crid_err_set(err, errno == EINVAL || errno == EBUSY ? CRID_INVALID_ARGUMENT : CRID_INTERNAL, errno,
				    "write \"%s\" to %s/%s", value, dir, file);
	return 0;
}

static int read_at(int dirfd, const char *file, char *buf, size_t size)
{
	_cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);

	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* mkdir -p of parent under root, each level's directory opened without
 * following anything; the last one's fd in *fd. cpuset v1 levels start
 * empty and must be given their parent's CPUs and nodes to be usable. */
static int open_parent(const char *root, const char *parent, bool cpuset_v1, int *fd, struct crid_err *err)
{
	_cleanup_close_ int cur = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *copy = strdup(parent);
	char *save = NULL;

	*fd = -1;
	if (!copy)
		return crid_err_nomem(err, "cgroup path");
	if (cur < 0)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, errno, "open %s", root);
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		bool made = mkdirat(cur, c, 0755) == 0;
		int next;

		if (!made && errno != EEXIST)
			return crid_err_set(err, CRID_INTERNAL, errno, "create cgroup %s%s", root, parent);
		next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "open cgroup %s%s", root, parent);
		if (cpuset_v1) {
			char v[4096];

			for (int k = 0; k < 2; k++) {
				const char *f = k ? "cpuset.mems" : "cpuset.cpus";
				char mine[8];

				if (read_at(next, f, mine, sizeof(mine)) == 0 && mine[0])
					continue;
				if (read_at(cur, f, v, sizeof(v)) < 0 || write_at(next, f, v, root, err) < 0) {
					close(next);
					return crid_err_set(err, CRID_INTERNAL, errno, "initialise %s of %s%s", f, root,
							    parent);
				}
			}
		}
		close(cur);
		cur = next;
	}
	*fd = take_fd(&cur);
	return 0;
}

static json_int_t num(json_t *o, const char *k, bool *has)
{
	json_t *v = json_object_get(o, k);

	*has = json_is_integer(v);
	return json_integer_value(v);
}

static int apply_v1(const char *parent, json_t *res, struct crid_err *err)
{
	json_t *cpu = json_object_get(res, "cpu"), *mem = json_object_get(res, "memory"), *v;
	char val[64];
	size_t i;
	bool has;
	int r;

	if (cpu && (json_object_get(cpu, "shares") || json_object_get(cpu, "quota") || json_object_get(cpu, "period"))) {
		_cleanup_close_ int fd = -1;
		json_int_t n;

		if ((r = open_parent(CGROUP_ROOT "/cpu", parent, false, &fd, err)) < 0)
			return r;
		n = num(cpu, "shares", &has);
		if (has && (snprintf(val, sizeof(val), "%lld", (long long)n),
			    (r = write_at(fd, "cpu.shares", val, CGROUP_ROOT "/cpu", err)) < 0))
			return r;
		n = num(cpu, "period", &has);
		if (has && (snprintf(val, sizeof(val), "%lld", (long long)n),
			    (r = write_at(fd, "cpu.cfs_period_us", val, CGROUP_ROOT "/cpu", err)) < 0))
			return r;
		n = num(cpu, "quota", &has);
		if (has && (snprintf(val, sizeof(val), "%lld", (long long)n),
			    (r = write_at(fd, "cpu.cfs_quota_us", val, CGROUP_ROOT "/cpu", err)) < 0))
			return r;
	}
	if (cpu && (json_object_get(cpu, "cpus") || json_object_get(cpu, "mems"))) {
		_cleanup_close_ int fd = -1;

		if ((r = open_parent(CGROUP_ROOT "/cpuset", parent, true, &fd, err)) < 0)
			return r;
		if ((v = json_object_get(cpu, "mems")) &&
		    (r = write_at(fd, "cpuset.mems", json_string_value(v), CGROUP_ROOT "/cpuset", err)) < 0)
			return r;
		if ((v = json_object_get(cpu, "cpus")) &&
		    (r = write_at(fd, "cpuset.cpus", json_string_value(v), CGROUP_ROOT "/cpuset", err)) < 0)
			return r;
	}
	if (mem) {
		_cleanup_close_ int fd = -1;
		json_int_t limit = num(mem, "limit", &has), swap;
		bool has_swap;

		swap = num(mem, "swap", &has_swap);
		if ((r = open_parent(CGROUP_ROOT "/memory", parent, false, &fd, err)) < 0)
			return r;
		/* memory+swap never below memory: which goes first depends
		 * on the direction. */
		if (has_swap) {
			snprintf(val, sizeof(val), "%lld", (long long)swap);
			if (write_at(fd, "memory.memsw.limit_in_bytes", val, CGROUP_ROOT "/memory", err) == 0)
				has_swap = false;
		}
		if (has && (snprintf(val, sizeof(val), "%lld", (long long)limit),
			    (r = write_at(fd, "memory.limit_in_bytes", val, CGROUP_ROOT "/memory", err)) < 0))
			return r;
		if (has_swap && (snprintf(val, sizeof(val), "%lld", (long long)swap),
				 (r = write_at(fd, "memory.memsw.limit_in_bytes", val, CGROUP_ROOT "/memory", err)) < 0))
			return r;
	}
	json_array_foreach(json_object_get(res, "hugepageLimits"), i, v) {
		_cleanup_close_ int fd = -1;
		char file[64];

		if ((r = open_parent(CGROUP_ROOT "/hugetlb", parent, false, &fd, err)) < 0)
			return r;
		snprintf(file, sizeof(file), "hugetlb.%s.limit_in_bytes",
			 json_string_value(json_object_get(v, "pageSize")));
		snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(json_object_get(v, "limit")));
		if ((r = write_at(fd, file, val, CGROUP_ROOT "/hugetlb", err)) < 0)
			return r;
	}
	if ((v = json_object_get(json_object_get(res, "pids"), "limit"))) {
		_cleanup_close_ int fd = -1;

		if ((r = open_parent(CGROUP_ROOT "/pids", parent, false, &fd, err)) < 0)
			return r;
		if (json_integer_value(v) < 0)
			snprintf(val, sizeof(val), "max");
		else
			snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(v));
		if ((r = write_at(fd, "pids.max", val, CGROUP_ROOT "/pids", err)) < 0)
			return r;
	}
	return 0;
}

/* cgroup v2: the controllers enabled down to the parent's parent, then
 * the files. */
static int apply_v2(const char *parent, json_t *res, struct crid_err *err)
{
	_cleanup_close_ int cur = open(CGROUP_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *copy = strdup(parent);
	json_t *cpu = json_object_get(res, "cpu"), *mem = json_object_get(res, "memory"), *v;
	char *save = NULL, val[128], avail[512];
	const char *k;
	size_t i;
	bool has, has2;
	int r;

	if (!copy)
		return crid_err_nomem(err, "cgroup path");
	if (cur < 0)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, errno, "open " CGROUP_ROOT);
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int next;

		if (read_at(cur, "cgroup.controllers", avail, sizeof(avail)) == 0) {
			char want[512] = "", *s2 = NULL;

			for (char *t = strtok_r(avail, " ", &s2); t; t = strtok_r(NULL, " ", &s2)) {
				if (strcmp(t, "cpu") == 0 || strcmp(t, "cpuset") == 0 || strcmp(t, "memory") == 0 ||
				    strcmp(t, "hugetlb") == 0 || strcmp(t, "pids") == 0)
					snprintf(want + strlen(want), sizeof(want) - strlen(want), "+%s ", t);
			}
			if (*want)
				write_at(cur, "cgroup.subtree_control", want, parent, err); /* best effort */
		}
		if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST)
			return crid_err_set(err, CRID_INTERNAL, errno, "create cgroup " CGROUP_ROOT "%s", parent);
		next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "open cgroup " CGROUP_ROOT "%s", parent);
		close(cur);
		cur = next;
	}
	crid_err_clear(err);
	if (json_object_get(cpu, "shares")) {
		/* shares 2..262144 onto weight 1..10000 */
		json_int_t s = num(cpu, "shares", &has);

		snprintf(val, sizeof(val), "%lld", (long long)(1 + ((s - 2) * 9999) / 262142));
		if ((r = write_at(cur, "cpu.weight", val, parent, err)) < 0)
			return r;
	}
	if (json_object_get(cpu, "quota") || json_object_get(cpu, "period")) {
		json_int_t q = num(cpu, "quota", &has), p = num(cpu, "period", &has2);

		if (has && q > 0)
			snprintf(val, sizeof(val), "%lld %lld", (long long)q, (long long)(has2 ? p : 100000));
		else
			snprintf(val, sizeof(val), "max %lld", (long long)(has2 ? p : 100000));
		if ((r = write_at(cur, "cpu.max", val, parent, err)) < 0)
			return r;
	}
	if ((v = json_object_get(cpu, "mems")) && (r = write_at(cur, "cpuset.mems", json_string_value(v), parent, err)) < 0)
		return r;
	if ((v = json_object_get(cpu, "cpus")) && (r = write_at(cur, "cpuset.cpus", json_string_value(v), parent, err)) < 0)
		return r;
	if (json_object_get(mem, "limit")) {
		json_int_t l = num(mem, "limit", &has), s = num(mem, "swap", &has2);

		if (l < 0)
			snprintf(val, sizeof(val), "max");
		else
			snprintf(val, sizeof(val), "%lld", (long long)l);
		if ((r = write_at(cur, "memory.max", val, parent, err)) < 0)
			return r;
		/* OCI's swap is memory plus swap; v2's file is swap alone. */
		if (has2) {
			if (s < 0)
				snprintf(val, sizeof(val), "max");
			else
				snprintf(val, sizeof(val), "%lld", (long long)(s > l ? s - l : 0));
			if ((r = write_at(cur, "memory.swap.max", val, parent, err)) < 0)
				return r;
		}
	}
	json_array_foreach(json_object_get(res, "hugepageLimits"), i, v) {
		char file[64];

		snprintf(file, sizeof(file), "hugetlb.%s.max", json_string_value(json_object_get(v, "pageSize")));
		snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(json_object_get(v, "limit")));
		if ((r = write_at(cur, file, val, parent, err)) < 0)
			return r;
	}
	json_object_foreach(json_object_get(res, "unified"), k, v) {
		if ((r = write_at(cur, k, json_string_value(v), parent, err)) < 0)
			return r;
	}
	return 0;
}

int crid_pod_cgroup_apply(const char *parent, const Runtime__V1__LinuxContainerResources *resources,
			  const struct crid_spec_host *host, json_t **applied, struct crid_err *err)
{
	json_auto_t *res = NULL;
	int r;

	*applied = NULL;
	r = crid_spec_resources(resources, host, &res, err);
	if (r < 0)
		return crid_err_wrap(err, "linux.resources.");
	if (json_object_size(res) == 0)
		return 0;
	if (!parent || !*parent)
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0,
				    "linux.resources: a pod's resources need its linux.cgroup_parent");
	if (!crid_pod_cgroup_parent_ok(parent))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "linux.cgroup_parent \"%.64s\" is not a cgroup path",
				    parent);
	r = host->cgroup2 ? apply_v2(parent, res, err) : apply_v1(parent, res, err);
	if (r < 0)
		return crid_err_wrap(err, "the pod's cgroup: ");
	*applied = take_ptr(&res);
	return 0;
}
