/* Tests of src/runtime/pod_ns*.c and pod_init.c against the real kernel
 * (root): each test gets a fresh pod directory under /run (or $TMPDIR),
 * creates namespaces, files, shm and the pod init there, and reads the
 * effect as a user would: /proc/self/mountinfo, a forked child that
 * setns()es into the pins, /proc/<init>/{status,fd,ns}, statfs. The pod
 * init is this binary run again (/proc/self/exe), dispatched in main.
 *
 * Where PID 1 of the machine does not reap orphans (some sandboxes), a
 * killed pod init stays a zombie of that PID 1: "gone" below means
 * /proc/<pid> is missing or a zombie. One test makes this process a
 * subreaper to see the init reaped for real. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "pod/pod_ns.h"

#define FMT(buf, ...) ck_assert_int_lt(snprintf(buf, sizeof(buf), __VA_ARGS__), (int)sizeof(buf))
#define MiB (1024ULL * 1024)

static char parent_dir[PATH_MAX];
static char dir[PATH_MAX];
static struct crid_err err;

/* ---- helpers ---- */

static size_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return len;
}

static void in(char *buf, size_t size, const char *rel)
{
	ck_assert_int_lt(snprintf(buf, size, "%s/%s", dir, rel), (int)size);
}

static void assert_file(const char *rel, const char *want)
{
	char path[PATH_MAX], got[8192];
	struct stat st;

	in(path, sizeof(path), rel);
	read_file(path, got, sizeof(got));
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0644);
}

/* Number of mounts below d; their types, joined by ' ', into types. */
static int mounts_below(const char *d, char *types, size_t size)
{
	size_t dlen = strlen(d);
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int n = 0;

	if (!f) /* no ck_assert: main uses this outside any test too */
		return -1;
	if (types)
		types[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], fstype[64];
		const char *sep = strstr(line, " - ");

		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || strncmp(mnt, d, dlen) != 0 || mnt[dlen] != '/')
			continue;
		n++;
		if (types && sep && sscanf(sep + 3, "%63s", fstype) == 1) {
			strncat(types, fstype, size - strlen(types) - 1);
			strncat(types, " ", size - strlen(types) - 1);
		}
	}
	fclose(f);
	return n;
}

/* The mount options of the mount at path (fields 6 and the last). */
static bool mount_has_opts(const char *path, const char *const *opts)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool found = false;

	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], o[1024];

		if (sscanf(line, "%*s %*s %*s %*s %4095s %1023s", mnt, o) != 2 || strcmp(mnt, path) != 0)
			continue;
		found = true;
		for (size_t i = 0; opts[i]; i++) {
			if (!strstr(o, opts[i]) && !strstr(strstr(line, " - "), opts[i]))
				found = false;
		}
	}
	fclose(f);
	return found;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the opendir's own */
}

static char proc_state(pid_t pid)
{
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static bool running(pid_t pid)
{
	char s = proc_state(pid);

	return s != 0 && s != 'Z' && s != 'X';
}

static bool wait_until_not_running(pid_t pid)
{
	for (int i = 0; i < 500; i++) {
		if (!running(pid))
			return true;
		usleep(10000);
	}
	return false;
}

/* Children of this process, zombies included. */
static int count_children(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		char path[300], buf[1024], *p;
		int fd, ppid;
		ssize_t len;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		p = strrchr(buf, ')');
		if (p && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == getpid())
			n++;
	}
	closedir(d);
	return n;
}

/* Live pod inits whose cmdline names d. */
static int inits_of(const char *d)
{
	DIR *pd = opendir("/proc");
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(pd);
	while ((de = readdir(pd))) {
		char path[300], buf[PATH_MAX + 64];
		ssize_t len;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		const char *a1 = buf + strlen(buf) + 1;

		if (a1 < buf + len && strcmp(a1, CRID_POD_INIT_ARG) == 0 && a1 + strlen(a1) + 1 < buf + len &&
		    strcmp(a1 + strlen(a1) + 1, d) == 0 && running(atoi(de->d_name)))
			n++;
	}
	closedir(pd);
	return n;
}

static bool dir_is_empty(const char *d)
{
	DIR *dd = opendir(d);
	struct dirent *de;
	bool empty = true;

	ck_assert_ptr_nonnull(dd);
	while ((de = readdir(dd)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(dd);
	return empty;
}

static ino_t ino_of(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return st.st_ino;
}

/* Runs probe in a forked child that has joined each non-NULL namespace;
 * what probe prints to its FILE comes back in out. */
static void in_pod(const struct crid_pod_ns *ns, void (*probe)(FILE *), char *out, size_t size)
{
	const char *paths[] = { ns->net_path, ns->ipc_path, ns->uts_path };
	int fds[2], status;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		FILE *f = fdopen(fds[1], "w");

		for (size_t i = 0; i < 3; i++) {
			int fd = paths[i] ? open(paths[i], O_RDONLY | O_CLOEXEC) : -1;

			if (paths[i] && (fd < 0 || setns(fd, 0) < 0)) {
				fprintf(f, "setns %s: %s\n", paths[i], strerror(errno));
				fclose(f);
				_exit(1);
			}
			if (fd >= 0)
				close(fd);
		}
		probe(f);
		fclose(f);
		_exit(0);
	}
	close(fds[1]);
	while (len + 1 < size && (n = read(fds[0], out + len, size - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "probe failed: %s", out);
}

static void print_file(FILE *f, const char *name, const char *path)
{
	char buf[256] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (n > 0)
		buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fprintf(f, "%s=%s\n", name, fd < 0 ? strerror(errno) : buf);
	if (fd >= 0)
		close(fd);
}

static void probe_pod(FILE *f)
{
	char host[128] = "";
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	gethostname(host, sizeof(host));
	fprintf(f, "hostname=%s\n", host);
	memcpy(ifr.ifr_name, "lo", 3);
	fprintf(f, "lo=%s\n", s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP) ? "up" : "down");
	if (s >= 0)
		close(s);
	print_file(f, "ping", "/proc/sys/net/ipv4/ping_group_range");
	print_file(f, "port", "/proc/sys/net/ipv4/ip_unprivileged_port_start");
	print_file(f, "shmmax", "/proc/sys/kernel/shmmax");
}

static void host_values(char *out, size_t size)
{
	FILE *f = fmemopen(out, size, "w");

	ck_assert_ptr_nonnull(f);
	probe_pod(f);
	fclose(f);
}

static void setup(void)
{
	FMT(dir, "%s/pod-XXXXXX", parent_dir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0711), 0);
	crid_err_clear(&err);
}

static void teardown(void)
{
	struct crid_err e;

	crid_pod_ns_remove(dir, &e);
}

static struct crid_pod_ns_options opts(void)
{
	struct crid_pod_ns_options o = { .dir = dir, .hostname = "pod-a" };

	return o;
}

static int create(const struct crid_pod_ns_options *o, struct crid_pod_ns *ns)
{
	int r = crid_pod_ns_create(o, ns, &err);

	if (r < 0)
		ck_assert_int_eq(ns->init_pid, 0);
	return r;
}

#define ASSERT_OK(expr) ck_assert_msg((expr) == 0, "%s: %s", #expr, err.msg)

/* After a refused create: nothing mounted, running or left in dir. */
static void assert_nothing_left(void)
{
	ck_assert_int_eq(mounts_below(dir, NULL, 0), 0);
	ck_assert_msg(dir_is_empty(dir), "%s is not empty", dir);
	ck_assert_int_eq(inits_of(dir), 0);
	ck_assert_int_eq(count_children(), 0);
}

static void assert_refused(struct crid_pod_ns_options *o, const char *needle)
{
	struct crid_pod_ns ns;

	ck_assert_int_lt(create(o, &ns), 0);
	ck_assert_msg(err.status == CRID_INVALID_ARGUMENT, "status %s: %s", crid_status_name(err.status), err.msg);
	ck_assert_msg(strstr(err.msg, needle), "\"%s\" does not name %s", err.msg, needle);
	ck_assert_ptr_null(ns.net_path);
	assert_nothing_left();
}

/* ---- namespaces ---- */

START_TEST(test_new_namespaces)
{
	char *keys[] = { "net.ipv4.ping_group_range", "kernel.shmmax" };
	char *values[] = { "0 2147483647", "123456789" };
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	char types[256], inside[1024], host[1024], path[PATH_MAX];

	o.sysctl_keys = keys;
	o.sysctl_values = values;
	o.n_sysctls = 2;
	ASSERT_OK(create(&o, &ns));
	in(path, sizeof(path), "ns/net");
	ck_assert_str_eq(ns.net_path, path);
	in(path, sizeof(path), "ns/ipc");
	ck_assert_str_eq(ns.ipc_path, path);
	in(path, sizeof(path), "ns/uts");
	ck_assert_str_eq(ns.uts_path, path);
	ck_assert_int_eq(ns.init_pid, 0);
	ck_assert_ptr_null(ns.pid_ns_path);
	ck_assert_int_eq(mounts_below(dir, types, sizeof(types)), 4);
	ck_assert_str_eq(types, "nsfs nsfs nsfs tmpfs ");
	ck_assert_uint_ne(ino_of(ns.net_path), ino_of("/proc/self/ns/net"));
	ck_assert_uint_ne(ino_of(ns.ipc_path), ino_of("/proc/self/ns/ipc"));
	ck_assert_uint_ne(ino_of(ns.uts_path), ino_of("/proc/self/ns/uts"));

	in_pod(&ns, probe_pod, inside, sizeof(inside));
	ck_assert_msg(strstr(inside, "hostname=pod-a\n"), "%s", inside);
	ck_assert_msg(strstr(inside, "lo=up\n"), "%s", inside);
	ck_assert_msg(strstr(inside, "ping=0\t2147483647\n"), "%s", inside);
	ck_assert_msg(strstr(inside, "shmmax=123456789\n"), "%s", inside);
	host_values(host, sizeof(host));
	ck_assert_msg(!strstr(host, "ping=0\t2147483647\n") && !strstr(host, "shmmax=123456789\n"), "%s", host);
	assert_file("hostname", "pod-a\n");
	crid_pod_ns_free(&ns);
	ck_assert_ptr_null(ns.net_path);
}
END_TEST

/* A key with slashes (sysctl(8)'s other form) and a second net sysctl. */
START_TEST(test_sysctl_slash_form)
{
	char *keys[] = { "net/ipv4/ip_unprivileged_port_start" };
	char *values[] = { "0" };
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	char inside[1024];

	o.sysctl_keys = keys;
	o.sysctl_values = values;
	o.n_sysctls = 1;
	ASSERT_OK(create(&o, &ns));
	in_pod(&ns, probe_pod, inside, sizeof(inside));
	ck_assert_msg(strstr(inside, "port=0\n"), "%s", inside);
	crid_pod_ns_free(&ns);
}
END_TEST

static const struct {
	const char *key, *value, *needle;
	bool host_network, host_ipc;
} refused_sysctls[] = {
	{ "net.ipv4.no_such_sysctl", "1", "net.ipv4.no_such_sysctl", false, false }, /* found by the child */
	{ "net.ipv4.ip_unprivileged_port_start", "banana", "net.ipv4.ip_unprivileged_port_start", false, false },
	{ "net.ipv4.ip_forward", "1", "net.ipv4.ip_forward", true, false },
	{ "kernel.shmmax", "1", "kernel.shmmax", false, true },
	{ "fs.mqueue.msg_max", "20", "fs.mqueue.msg_max", false, true },
	{ "vm.swappiness", "1", "vm.swappiness", false, false },
	{ "kernel.hostname", "x", "kernel.hostname", false, false },
	{ "net..ipv4", "1", "net..ipv4", false, false },
	{ "net/../kernel/x", "1", "net/../kernel/x", false, false },
	{ "net.ipv4.", "1", "net.ipv4.", false, false },
	{ "", "1", "empty", false, false },
};

START_TEST(test_sysctl_refused)
{
	char *key = (char *)refused_sysctls[_i].key, *value = (char *)refused_sysctls[_i].value;
	struct crid_pod_ns_options o = opts();

	o.sysctl_keys = &key;
	o.sysctl_values = &value;
	o.n_sysctls = 1;
	o.host_network = o.host_uts = refused_sysctls[_i].host_network;
	o.host_ipc = refused_sysctls[_i].host_ipc;
	assert_refused(&o, refused_sysctls[_i].needle);
}
END_TEST

START_TEST(test_host_network)
{
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	char types[256], hosts[8192];

	o.host_network = o.host_uts = true;
	ASSERT_OK(create(&o, &ns));
	ck_assert_ptr_null(ns.net_path);
	ck_assert_ptr_null(ns.uts_path);
	ck_assert_ptr_nonnull(ns.ipc_path);
	ck_assert_int_eq(mounts_below(dir, types, sizeof(types)), 2);
	ck_assert_str_eq(types, "nsfs tmpfs ");
	read_file("/etc/hosts", hosts, sizeof(hosts));
	assert_file("hosts", hosts);
	assert_file("hostname", "pod-a\n");
	crid_pod_ns_free(&ns);
}
END_TEST

START_TEST(test_all_host)
{
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	char types[256], path[PATH_MAX];
	struct stat st;

	o.host_network = o.host_uts = o.host_ipc = true;
	o.host_pid = o.shared_pid = true; /* shared_pid is ignored then */
	ASSERT_OK(create(&o, &ns));
	ck_assert_ptr_null(ns.net_path);
	ck_assert_ptr_null(ns.ipc_path);
	ck_assert_ptr_null(ns.uts_path);
	ck_assert_int_eq(ns.init_pid, 0);
	ck_assert_int_eq(mounts_below(dir, types, sizeof(types)), 1);
	ck_assert_str_eq(types, "tmpfs ");
	in(path, sizeof(path), "ns");
	ck_assert_int_eq(stat(path, &st), -1);
	crid_pod_ns_free(&ns);
}
END_TEST

START_TEST(test_bad_hostname)
{
	struct crid_pod_ns_options o = opts();

	o.hostname = "two words";
	assert_refused(&o, "hostname \"two words\"");
	o.hostname = "a123456789012345678901234567890123456789012345678901234567890123456789";
	assert_refused(&o, "longer than 64");
}
END_TEST

/* ---- files and shm ---- */

START_TEST(test_resolv_from_dns)
{
	char *servers[] = { "10.96.0.10", "fd00::a" }, *searches[] = { "ns1.svc.cluster.local", "svc.cluster.local" };
	char *options[] = { "ndots:5", "edns0" };
	Runtime__V1__DNSConfig dns = RUNTIME__V1__DNSCONFIG__INIT;
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;

	dns.n_servers = 2;
	dns.servers = servers;
	dns.n_searches = 2;
	dns.searches = searches;
	dns.n_options = 2;
	dns.options = options;
	o.dns = &dns;
	ASSERT_OK(create(&o, &ns));
	assert_file("resolv.conf", "search ns1.svc.cluster.local svc.cluster.local\n"
				   "nameserver 10.96.0.10\n"
				   "nameserver fd00::a\n"
				   "options ndots:5 edns0\n");
	assert_file("hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
	assert_file("hostname", "pod-a\n");
	ck_assert_str_eq(ns.resolv_path + strlen(dir), "/resolv.conf");
	ck_assert_str_eq(ns.hosts_path + strlen(dir), "/hosts");
	ck_assert_str_eq(ns.hostname_path + strlen(dir), "/hostname");
	crid_pod_ns_free(&ns);
}
END_TEST

START_TEST(test_resolv_invalid)
{
	char *good[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4" };
	char *bad_ip[] = { "10.0.0.1", "10.0.0.300" }, *not_ip[] = { "dns.example.com" };
	char *spaced[] = { "svc.local", "a b" }, *empty[] = { "" };
	Runtime__V1__DNSConfig dns = RUNTIME__V1__DNSCONFIG__INIT;
	struct crid_pod_ns_options o = opts();

	o.dns = &dns;
	dns.servers = bad_ip, dns.n_servers = 2;
	assert_refused(&o, "dns_config.servers[1] \"10.0.0.300\"");
	dns.servers = not_ip, dns.n_servers = 1;
	assert_refused(&o, "dns_config.servers[0]");
	dns.servers = good, dns.n_servers = 4;
	assert_refused(&o, "dns_config.servers: 4 nameservers");
	dns.n_servers = 3;
	dns.searches = spaced, dns.n_searches = 2;
	assert_refused(&o, "dns_config.searches[1] \"a b\"");
	dns.n_searches = 1;
	dns.options = empty, dns.n_options = 1;
	assert_refused(&o, "dns_config.options[0]");
}
END_TEST

START_TEST(test_resolv_host_copy)
{
	Runtime__V1__DNSConfig empty = RUNTIME__V1__DNSCONFIG__INIT;
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	char host[8192] = "";

	if (access("/etc/resolv.conf", F_OK) == 0)
		read_file("/etc/resolv.conf", host, sizeof(host));
	o.dns = _i ? &empty : NULL;
	ASSERT_OK(create(&o, &ns));
	assert_file("resolv.conf", host);
	crid_pod_ns_free(&ns);
}
END_TEST

START_TEST(test_shm)
{
	static const char *const want_opts[] = { "nosuid", "nodev", "noexec", NULL };
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	struct statfs sf;
	struct stat st;

	o.shm_size = _i ? 16 * MiB : 0;
	o.host_network = o.host_ipc = o.host_uts = true;
	ASSERT_OK(create(&o, &ns));
	ck_assert_int_eq(statfs(ns.shm_path, &sf), 0);
	ck_assert_int_eq(sf.f_type, 0x01021994); /* TMPFS_MAGIC */
	ck_assert_uint_eq((uint64_t)sf.f_blocks * (uint64_t)sf.f_bsize, _i ? 16 * MiB : 64 * MiB);
	ck_assert_int_eq(stat(ns.shm_path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 01777);
	ck_assert(mount_has_opts(ns.shm_path, want_opts));
	crid_pod_ns_free(&ns);
}
END_TEST

/* A later step fails (shm cannot be mounted on a file, the init cannot
 * record its pid over a directory): the pins made before are undone. */
START_TEST(test_failure_after_pins)
{
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	char path[PATH_MAX];

	o.shared_pid = true;
	if (_i == 0) {
		in(path, sizeof(path), "shm");
		ck_assert_int_eq(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)), 0);
	} else {
		in(path, sizeof(path), "init.pid");
		ck_assert_int_eq(mkdir(path, 0755), 0);
		in(path, sizeof(path), "init.pid/keep");
		ck_assert_int_eq(mkdir(path, 0755), 0);
	}
	ck_assert_int_lt(create(&o, &ns), 0);
	ck_assert_msg(strstr(err.msg, _i == 0 ? "shm" : "pod init"), "%s", err.msg);
	ck_assert_ptr_null(ns.net_path);
	assert_nothing_left();
}
END_TEST

/* ---- the pod init ---- */

static int nspid_last(pid_t pid)
{
	char path[64], buf[4096], *line, *last;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	read_file(path, buf, sizeof(buf));
	line = strstr(buf, "\nNSpid:");
	ck_assert_ptr_nonnull(line);
	line[strcspn(line + 1, "\n") + 1] = '\0';
	last = strrchr(line, '\t');
	ck_assert_ptr_nonnull(last);
	return atoi(last + 1);
}

/* -1 when pid is gone. */
static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[4096], *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "\nPPid:");
	return p ? atoi(p + 6) : -1;
}

/* Starts processes in the pod's PID namespace (setns, fork): y there,
 * which forks z and exits. The kernel gives an orphan to the reaper of
 * its dead parent's namespace, so z (whose parent y was in the pod's)
 * must be adopted by the init, and reaped by it once it ends. */
static void check_init_reaps(const struct crid_pod_ns *ns)
{
	int hold[2], status;
	pid_t x, z = 0;

	ck_assert_int_eq(pipe2(hold, O_CLOEXEC), 0);
	x = fork();
	ck_assert_int_ge(x, 0);
	if (x == 0) {
		int fd = open(ns->pid_ns_path, O_RDONLY | O_CLOEXEC);
		pid_t y;

		if (fd < 0 || setns(fd, CLONE_NEWPID) < 0)
			_exit(1);
		y = fork();
		if (y == 0) {
			pid_t z_here = fork();

			if (z_here == 0) {
				char c;

				close(hold[1]);
				while (read(hold[0], &c, 1) < 0 && errno == EINTR)
					;
				_exit(0); /* when the test closes its end */
			}
			_exit(0);
		}
		if (y < 0 || waitpid(y, &status, 0) != y)
			_exit(1);
		_exit(0);
	}
	close(hold[0]);
	ck_assert_int_eq(waitpid(x, &status, 0), x);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* z, seen from here: the process other than the init whose parent
	 * is the init. */
	for (int i = 0; i < 500 && !z; i++) {
		DIR *d = opendir("/proc");
		struct dirent *de;

		ck_assert_ptr_nonnull(d);
		while (!z && (de = readdir(d))) {
			pid_t p = atoi(de->d_name);

			if (p > 0 && p != ns->init_pid && running(p) && ppid_of(p) == ns->init_pid)
				z = p;
		}
		closedir(d);
		if (!z)
			usleep(10000);
	}
	ck_assert_int_gt(z, 0);
	ck_assert_int_gt(nspid_last(z), 1);
	close(hold[1]);
	for (int i = 0; i < 500 && proc_state(z) != 0; i++)
		usleep(10000);
	ck_assert_msg(proc_state(z) == 0, "process %d was not reaped by the pod init", (int)z);
}

/* Containers share its PID namespace: the init must give them nothing
 * of the host (/proc/1/root, capabilities, ptrace). */
static void check_init_confined(pid_t init)
{
	static const char *const zero[] = { "\nCapInh:\t0000000000000000\n", "\nCapPrm:\t0000000000000000\n",
					    "\nCapEff:\t0000000000000000\n", "\nCapBnd:\t0000000000000000\n",
					    "\nCapAmb:\t0000000000000000\n", "\nNoNewPrivs:\t1\n" };
	char path[64], buf[8192];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int lines = 0;

	FMT(path, "/proc/%d/status", (int)init);
	read_file(path, buf, sizeof(buf));
	for (size_t i = 0; i < CRID_ARRAY_SIZE(zero); i++)
		ck_assert_msg(strstr(buf, zero[i]), "no %s in %s", zero[i], buf);
	/* Not dumpable: its /proc files belong to root, whatever its uid. */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_uid, 0);
	FMT(path, "/proc/%d/root", (int)init);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		ck_assert_msg(de->d_name[0] == '.', "%s/%s exists", path, de->d_name);
	closedir(d);
	FMT(path, "/proc/%d/mountinfo", (int)init);
	read_file(path, buf, sizeof(buf));
	for (char *p = buf; (p = strchr(p, '\n')); p++)
		lines++;
	ck_assert_msg(lines == 1 && strstr(buf, " / / ro,") && strstr(buf, " tmpfs "), "%s", buf);
}

START_TEST(test_shared_pid)
{
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	char path[PATH_MAX], buf[PATH_MAX], want[64];
	DIR *d;
	struct dirent *de;
	pid_t init;

	o.shared_pid = true;
	ASSERT_OK(create(&o, &ns));
	init = ns.init_pid;
	ck_assert_int_gt(init, 1);
	ck_assert(running(init));
	FMT(want, "/proc/%d/ns/pid", (int)init);
	ck_assert_str_eq(ns.pid_ns_path, want);
	ck_assert_uint_ne(ino_of(ns.pid_ns_path), ino_of("/proc/self/ns/pid"));
	ck_assert_int_eq(nspid_last(init), 1);
	ck_assert_int_ne(ppid_of(init), getpid()); /* not our child */
	FMT(want, "%d\n", (int)init);
	in(path, sizeof(path), "init.pid");
	read_file(path, buf, sizeof(buf));
	ck_assert_str_eq(buf, want);
	/* It lives in the pod's other namespaces too. */
	FMT(path, "/proc/%d/ns/net", (int)init);
	ck_assert_uint_eq(ino_of(path), ino_of(ns.net_path));
	FMT(path, "/proc/%d/ns/uts", (int)init);
	ck_assert_uint_eq(ino_of(path), ino_of(ns.uts_path));
	/* None of our fds. */
	FMT(path, "/proc/%d/fd", (int)init);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		char fdp[PATH_MAX + 300];
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		ck_assert_int_le(atoi(de->d_name), 2);
		FMT(fdp, "%s/%s", path, de->d_name);
		n = readlink(fdp, buf, sizeof(buf) - 1);
		ck_assert_int_gt(n, 0);
		buf[n] = '\0';
		ck_assert_str_eq(buf, "/dev/null");
	}
	closedir(d);
	check_init_confined(init);
	check_init_reaps(&ns);

	ASSERT_OK(crid_pod_ns_stop(&ns, &err));
	ck_assert(wait_until_not_running(init));
	ck_assert_int_eq(ns.init_pid, 0);
	ck_assert_ptr_null(ns.pid_ns_path);
	in(path, sizeof(path), "init.pid");
	ck_assert_int_eq(access(path, F_OK), -1);
	ASSERT_OK(crid_pod_ns_stop(&ns, &err));
	ck_assert_int_eq(count_children(), 0);
	crid_pod_ns_free(&ns);
}
END_TEST

/* "exits on SIGTERM/SIGINT", even as PID 1 of its namespace. */
START_TEST(test_init_signals)
{
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	pid_t init;

	o.shared_pid = true;
	o.host_network = o.host_uts = o.host_ipc = true;
	ASSERT_OK(create(&o, &ns));
	init = ns.init_pid;
	ck_assert_int_eq(kill(init, _i ? SIGINT : SIGTERM), 0);
	ck_assert(wait_until_not_running(init));
	ASSERT_OK(crid_pod_ns_stop(&ns, &err)); /* gone already: fine */
	crid_pod_ns_free(&ns);
}
END_TEST

/* When crid is a subreaper the orphaned init is its child: stop reaps it. */
START_TEST(test_stop_reaps_as_subreaper)
{
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	pid_t init;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	o.shared_pid = true;
	ASSERT_OK(create(&o, &ns));
	init = ns.init_pid;
	ck_assert_int_eq(ppid_of(init), getpid());
	ASSERT_OK(crid_pod_ns_stop(&ns, &err));
	ck_assert_int_eq(proc_state(init), 0); /* reaped: /proc/<pid> is gone */
	ck_assert_int_eq(count_children(), 0);
	crid_pod_ns_free(&ns);
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}
END_TEST

/* ---- remove and load ---- */

static void assert_removed(pid_t init)
{
	struct stat st;

	ck_assert_int_eq(mounts_below(dir, NULL, 0), 0);
	ck_assert_int_eq(stat(dir, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	if (init > 0)
		ck_assert(!running(init));
	ck_assert_int_eq(count_children(), 0);
}

START_TEST(test_remove)
{
	char *keys[] = { "net.ipv4.ip_unprivileged_port_start" }, *values[] = { "80" };
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns;
	pid_t init;

	o.shared_pid = true;
	o.sysctl_keys = keys;
	o.sysctl_values = values;
	o.n_sysctls = 1;
	ASSERT_OK(create(&o, &ns));
	init = ns.init_pid;
	ck_assert_int_eq(mounts_below(dir, NULL, 0), 4);
	/* Without stop first: remove kills the init from init.pid. */
	ASSERT_OK(crid_pod_ns_remove(dir, &err));
	assert_removed(init);
	ASSERT_OK(crid_pod_ns_remove(dir, &err));
	ASSERT_OK(crid_pod_ns_stop(&ns, &err)); /* the init is gone: fine */
	crid_pod_ns_free(&ns);
}
END_TEST

/* crid dies right after creating the pod: a later crid has only dir. */
START_TEST(test_remove_after_crash)
{
	char path[PATH_MAX], buf[64];
	int status;
	pid_t pid, init;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct crid_pod_ns_options o = opts();
		struct crid_pod_ns ns;

		o.shared_pid = true;
		_exit(crid_pod_ns_create(&o, &ns, &err) == 0 ? 0 : 1); /* no stop, no free: "crash" */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	in(path, sizeof(path), "init.pid");
	read_file(path, buf, sizeof(buf));
	init = atoi(buf);
	ck_assert(running(init));
	ck_assert_int_eq(mounts_below(dir, NULL, 0), 4);
	ASSERT_OK(crid_pod_ns_remove(dir, &err));
	ck_assert(wait_until_not_running(init));
	assert_removed(init);
}
END_TEST

/* init.pid names a process that is not this pod's init (the pid was
 * reused after a reboot-less crash): remove must leave it alone. */
START_TEST(test_remove_spares_reused_pid)
{
	char path[PATH_MAX], line[32];
	int fd, status;
	pid_t other;

	other = fork();
	ck_assert_int_ge(other, 0);
	if (other == 0) {
		pause();
		_exit(0);
	}
	in(path, sizeof(path), "init.pid");
	FMT(line, "%d\n", (int)other);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
	ASSERT_OK(crid_pod_ns_remove(dir, &err));
	ck_assert(running(other));
	kill(other, SIGKILL);
	ck_assert_int_eq(waitpid(other, &status, 0), other);
}
END_TEST

START_TEST(test_load)
{
	struct crid_pod_ns_options o = opts();
	struct crid_pod_ns ns, got;

	o.shared_pid = true;
	o.host_ipc = true;
	ASSERT_OK(create(&o, &ns));
	ASSERT_OK(crid_pod_ns_load(dir, ns.init_pid, &got, &err));
	ck_assert_str_eq(got.net_path, ns.net_path);
	ck_assert_ptr_null(got.ipc_path);
	ck_assert_str_eq(got.uts_path, ns.uts_path);
	ck_assert_str_eq(got.hosts_path, ns.hosts_path);
	ck_assert_str_eq(got.resolv_path, ns.resolv_path);
	ck_assert_str_eq(got.hostname_path, ns.hostname_path);
	ck_assert_str_eq(got.shm_path, ns.shm_path);
	ck_assert_int_eq(got.init_pid, ns.init_pid);
	ck_assert_str_eq(got.pid_ns_path, ns.pid_ns_path);
	crid_pod_ns_free(&got);

	/* Not the init (our own pid): never hand out its PID namespace. */
	ck_assert_int_lt(crid_pod_ns_load(dir, getpid(), &got, &err), 0);
	ck_assert_int_eq(err.status, CRID_FAILED_PRECONDITION);
	ck_assert_ptr_null(got.net_path);
	ASSERT_OK(crid_pod_ns_stop(&ns, &err));
	ASSERT_OK(crid_pod_ns_load(dir, 0, &got, &err));
	ck_assert_int_eq(got.init_pid, 0);
	ck_assert_ptr_null(got.pid_ns_path);
	crid_pod_ns_free(&got);

	/* A pin whose mount was lost. */
	ck_assert_int_eq(umount2(ns.net_path, MNT_DETACH), 0);
	ck_assert_int_lt(crid_pod_ns_load(dir, 0, &got, &err), 0);
	ck_assert_msg(strstr(err.msg, "network namespace pin"), "%s", err.msg);
	ASSERT_OK(crid_pod_ns_remove(dir, &err));
	ck_assert_int_lt(crid_pod_ns_load(dir, 0, &got, &err), 0);
	ck_assert_int_eq(err.status, CRID_NOT_FOUND);
	crid_pod_ns_free(&ns);
}
END_TEST

START_TEST(test_no_leaks)
{
	int before = count_fds();

	for (int i = 0; i < 3; i++) {
		char *keys[] = { "net.ipv4.ping_group_range", "no.such" }, *values[] = { "0 0", "1" };
		struct crid_pod_ns_options o = opts();
		struct crid_pod_ns ns;

		o.shared_pid = true;
		o.sysctl_keys = keys;
		o.sysctl_values = values;
		o.n_sysctls = 1;
		ASSERT_OK(create(&o, &ns));
		ASSERT_OK(crid_pod_ns_stop(&ns, &err));
		crid_pod_ns_free(&ns);
		ASSERT_OK(crid_pod_ns_remove(dir, &err));
		ck_assert_int_eq(mkdir(dir, 0711), 0);
		o.n_sysctls = 2; /* refused */
		ck_assert_int_lt(create(&o, &ns), 0);
		keys[1] = "net.no_such";
		ck_assert_int_lt(create(&o, &ns), 0); /* refused by the child */
	}
	ck_assert_int_eq(count_fds(), before);
	ck_assert_int_eq(count_children(), 0);
	ck_assert_int_eq(mounts_below(dir, NULL, 0), 0);
}
END_TEST

/* crid is multi-threaded: pods made from several threads at once (each
 * forking its namespace child, spawning its init) must all work. */
struct worker {
	char dir[PATH_MAX];
	int index;
	char failure[CRID_ERR_MSG_MAX + 64];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct crid_err e;

	for (int i = 0; i < 4 && !w->failure[0]; i++) {
		char *keys[] = { "net.ipv4.ip_unprivileged_port_start" }, *values[] = { "1000" };
		struct crid_pod_ns_options o = { .dir = w->dir, .hostname = "pod-t" };
		struct crid_pod_ns ns;

		o.shared_pid = (i + w->index) % 2 == 0;
		o.sysctl_keys = keys;
		o.sysctl_values = values;
		o.n_sysctls = 1;
		crid_err_clear(&e);
		if (crid_pod_ns_create(&o, &ns, &e) < 0) {
			snprintf(w->failure, sizeof(w->failure), "create: %s", e.msg);
			break;
		}
		if (o.shared_pid && !running(ns.init_pid))
			snprintf(w->failure, sizeof(w->failure), "init %d is not running", (int)ns.init_pid);
		if (crid_pod_ns_stop(&ns, &e) < 0 || crid_pod_ns_remove(w->dir, &e) < 0)
			snprintf(w->failure, sizeof(w->failure), "stop/remove: %s", e.msg);
		crid_pod_ns_free(&ns);
		if (mkdir(w->dir, 0711) < 0)
			snprintf(w->failure, sizeof(w->failure), "mkdir: %s", strerror(errno));
	}
	return NULL;
}

START_TEST(test_concurrent)
{
	struct worker w[4];
	pthread_t t[4];
	int before = count_fds();

	for (int i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].index = i;
		FMT(w[i].dir, "%s/w%d", dir, i);
		ck_assert_int_eq(mkdir(w[i].dir, 0711), 0);
	}
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(!w[i].failure[0], "worker %d: %s", i, w[i].failure);
	ck_assert_int_eq(count_fds(), before);
	ck_assert_int_eq(count_children(), 0);
	ck_assert_int_eq(mounts_below(dir, NULL, 0), 0);
}
END_TEST

static Suite *pod_ns_suite(void)
{
	Suite *s = suite_create("pod_ns");
	TCase *ns = tcase_create("namespaces");
	TCase *files = tcase_create("files");
	TCase *init = tcase_create("init");
	TCase *life = tcase_create("lifecycle");

	tcase_add_checked_fixture(ns, setup, teardown);
	tcase_add_test(ns, test_new_namespaces);
	tcase_add_test(ns, test_sysctl_slash_form);
	tcase_add_loop_test(ns, test_sysctl_refused, 0, (int)CRID_ARRAY_SIZE(refused_sysctls));
	tcase_add_test(ns, test_host_network);
	tcase_add_test(ns, test_all_host);
	tcase_add_test(ns, test_bad_hostname);
	suite_add_tcase(s, ns);

	tcase_add_checked_fixture(files, setup, teardown);
	tcase_add_test(files, test_resolv_from_dns);
	tcase_add_test(files, test_resolv_invalid);
	tcase_add_loop_test(files, test_resolv_host_copy, 0, 2);
	tcase_add_loop_test(files, test_shm, 0, 2);
	tcase_add_loop_test(files, test_failure_after_pins, 0, 2);
	suite_add_tcase(s, files);

	tcase_add_checked_fixture(init, setup, teardown);
	tcase_set_timeout(init, 60);
	tcase_add_test(init, test_shared_pid);
	tcase_add_loop_test(init, test_init_signals, 0, 2);
	tcase_add_test(init, test_stop_reaps_as_subreaper);
	suite_add_tcase(s, init);

	tcase_add_checked_fixture(life, setup, teardown);
	tcase_set_timeout(life, 60);
	tcase_add_test(life, test_remove);
	tcase_add_test(life, test_remove_after_crash);
	tcase_add_test(life, test_remove_spares_reused_pid);
	tcase_add_test(life, test_load);
	tcase_add_test(life, test_no_leaks);
	tcase_add_test(life, test_concurrent);
	suite_add_tcase(s, life);
	return s;
}

/* Whatever a failed (forked) test left: pods removed by the code under
 * test, then a plain unmount and rm -rf in case that failed too. */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return flag == FTW_DP ? rmdir(path) : unlink(path), 0;
}

static void clean_parent(void)
{
	DIR *d = opendir(parent_dir);
	struct dirent *de;
	struct crid_err e;

	while (d && (de = readdir(d))) {
		char p[PATH_MAX * 2];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", parent_dir, de->d_name);
		if (crid_pod_ns_remove(p, &e) < 0)
			fprintf(stderr, "test_pod_ns: clean up %s: %s\n", p, e.msg);
	}
	if (d)
		closedir(d);
	for (int i = 0; i < 4 && mounts_below(parent_dir, NULL, 0) > 0; i++) {
		char line[4096], mnt[PATH_MAX];
		FILE *f = fopen("/proc/self/mountinfo", "re");

		while (f && fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 &&
			    strncmp(mnt, parent_dir, strlen(parent_dir)) == 0)
				umount2(mnt, MNT_DETACH);
		}
		if (f)
			fclose(f);
	}
	nftw(parent_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : access("/run", W_OK) == 0 ? "/run" : "/tmp";
	SRunner *sr;
	int failed;

	/* The pod init is this binary run again (/proc/self/exe). */
	if (argc > 1 && strcmp(argv[1], CRID_POD_INIT_ARG) == 0)
		return crid_pod_init_main(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (geteuid() != 0) {
		fprintf(stderr, "test_pod_ns needs root (namespaces, mounts)\n");
		return 1;
	}
	if (snprintf(parent_dir, sizeof(parent_dir), "%s/crid-test-pod-ns-XXXXXX", base) >= (int)sizeof(parent_dir) ||
	    !mkdtemp(parent_dir)) {
		perror("mkdtemp");
		return 1;
	}
	sr = srunner_create(pod_ns_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	clean_parent();
	return failed == 0 ? 0 : 1;
}
