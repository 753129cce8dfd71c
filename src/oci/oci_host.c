/* What the host offers that a container's config.json depends on
 * (struct crid_spec_host): the capabilities crid holds, the architecture and
 * kernel (for the seccomp profile), the cgroup layout, the LSMs, the online
 * CPUs and memory nodes. Reads /proc and /sys only; never changes them. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "oci/oci_spec.h"

#define CAP_SYS_RESOURCE_BIT 24

/* The first line of a small file, without its newline; false when absent. */
static bool read_line(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return false;
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

/* Whether the AppArmor profile name is loaded: each line of the profiles
 * file is "<name> (<mode>)". */
static bool apparmor_profile_loaded(const char *name)
{
	_cleanup_fclose_ FILE *f = fopen("/sys/kernel/security/apparmor/profiles", "re");
	char line[512];
	size_t len = strlen(name);

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, len) == 0 && line[len] == ' ')
			return true;
	}
	return false;
}

static bool controller_listed(const char *path, const char *name)
{
	char line[512], *save = NULL;

	if (!read_line(path, line, sizeof(line)))
		return false;
	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (strcmp(t, name) == 0)
			return true;
	}
	return false;
}

void crid_spec_host_probe(struct crid_spec_host *h)
{
	struct utsname u;
	struct statfs sf;
	char buf[64];

	memset(h, 0, sizeof(*h));
	h->held_caps = crid_spec_held_capabilities();
	if (uname(&u) == 0) {
		snprintf(h->arch, sizeof(h->arch), "%.31s", u.machine);
		if (sscanf(u.release, "%d.%d", &h->kernel[0], &h->kernel[1]) != 2)
			h->kernel[0] = h->kernel[1] = 0;
	}
	h->cgroup2 = statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
	if (h->cgroup2) {
		h->hugetlb = controller_listed("/sys/fs/cgroup/cgroup.controllers", "hugetlb");
		h->swap = true; /* memory.swap.max: the kernel's swap accounting is on by default */
	} else {
		/* A hybrid host's unified hierarchy may hold hugetlb, but
		 * the runtimes set v1 files there: only a v1 one counts. */
		h->hugetlb = access("/sys/fs/cgroup/hugetlb", F_OK) == 0;
		h->swap = access("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", F_OK) == 0;
	}
	h->apparmor = read_line("/sys/module/apparmor/parameters/enabled", buf, sizeof(buf)) && buf[0] == 'Y' &&
		      access("/sys/kernel/security/apparmor", F_OK) == 0;
	h->apparmor_default = h->apparmor && apparmor_profile_loaded(CRID_APPARMOR_DEFAULT_PROFILE);
	h->selinux = access("/sys/fs/selinux/enforce", F_OK) == 0;
	/* Without CAP_SYS_RESOURCE a process cannot go below what it
	 * inherited; crid's own value is a safe bound for its children. */
	if (h->held_caps & (UINT64_C(1) << CAP_SYS_RESOURCE_BIT))
		h->oom_floor = -1000;
	else if (read_line("/proc/self/oom_score_adj", buf, sizeof(buf)))
		h->oom_floor = atoi(buf);
	read_line("/sys/devices/system/cpu/online", h->cpus, sizeof(h->cpus));
	if (!read_line("/sys/devices/system/node/online", h->mems, sizeof(h->mems)))
		snprintf(h->mems, sizeof(h->mems), "0"); /* no NUMA: node 0 only */
}
