/* Tests of src/stats: the parsers of both cgroup versions' files with
 * fixture text as the kernel writes it (so cgroup v2 is covered on hosts
 * that are v1 or hybrid), /proc/net/dev, the CPU rate, the Prometheus
 * text and the metrics address; then the readers against the real kernel
 * (root): a v1 memory and cpuacct cgroup, and the unified hierarchy's
 * cpu.stat and cgroup.procs where the host has one. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "stats/cgroup.h"
#include "stats/cpu_rate.h"
#include "stats/layer_usage.h"
#include "stats/metrics.h"
#include "stats/metrics_http.h"
#include "stats/netdev.h"

#define MiB (1024ULL * 1024)

/* memory.stat of cgroup v1 (kernel 6.x), trimmed to what matters. */
static const char v1_memory_stat[] = "cache 10485760\n"
				     "rss 52428800\n"
				     "rss_huge 0\n"
				     "shmem 0\n"
				     "mapped_file 0\n"
				     "pgfault 1000\n"
				     "pgmajfault 3\n"
				     "inactive_anon 0\n"
				     "active_anon 52428800\n"
				     "inactive_file 8388608\n"
				     "active_file 2097152\n"
				     "hierarchical_memory_limit 268435456\n"
				     "hierarchical_memsw_limit 9223372036854771712\n"
				     "total_cache 10485760\n"
				     "total_rss 52428800\n"
				     "total_pgfault 1200\n"
				     "total_pgmajfault 4\n"
				     "total_inactive_file 8388608\n"
				     "total_active_file 2097152\n";

/* memory.stat of cgroup v2. */
static const char v2_memory_stat[] = "anon 41943040\n"
				     "file 20971520\n"
				     "kernel 1048576\n"
				     "shmem 0\n"
				     "file_mapped 0\n"
				     "active_anon 41943040\n"
				     "inactive_anon 0\n"
				     "active_file 4194304\n"
				     "inactive_file 16777216\n"
				     "pgfault 5000\n"
				     "pgmajfault 7\n"
				     "workingset_refault_anon 0\n";

static const char v2_cpu_stat[] = "usage_usec 1234567\n"
				  "user_usec 1000000\n"
				  "system_usec 234567\n"
				  "nr_periods 10\n"
				  "nr_throttled 2\n"
				  "throttled_usec 500\n";

START_TEST(test_parse_u64)
{
	uint64_t v;

	ck_assert_int_eq(crid_cgroup_parse_u64("12345\n", &v), 0);
	ck_assert_uint_eq(v, 12345);
	ck_assert_int_eq(crid_cgroup_parse_u64("max\n", &v), 0);
	ck_assert(v == CRID_CGROUP_NO_LIMIT);
	ck_assert_int_eq(crid_cgroup_parse_u64("18446744073709551615", &v), 0);
	ck_assert(v == UINT64_MAX);
	ck_assert_int_eq(crid_cgroup_parse_u64("18446744073709551616", &v), -ERANGE);
	ck_assert_int_eq(crid_cgroup_parse_u64("", &v), -EINVAL);
	ck_assert_int_eq(crid_cgroup_parse_u64("-1", &v), -EINVAL);
	ck_assert_int_eq(crid_cgroup_parse_u64("12 34", &v), -EINVAL);
	ck_assert_int_eq(crid_cgroup_parse_u64("maximum", &v), -EINVAL);
	ck_assert_int_eq(crid_cgroup_parse_u64(NULL, &v), -EINVAL);
}
END_TEST

START_TEST(test_parse_keyed)
{
	uint64_t v;

	ck_assert_int_eq(crid_cgroup_parse_keyed(v1_memory_stat, "rss", &v), 0);
	ck_assert_uint_eq(v, 52428800);
	/* A key that is a prefix of another is not that other. */
	ck_assert_int_eq(crid_cgroup_parse_keyed(v1_memory_stat, "total_rss", &v), 0);
	ck_assert_uint_eq(v, 52428800);
	ck_assert_int_eq(crid_cgroup_parse_keyed(v1_memory_stat, "total_rs", &v), -ENOENT);
	ck_assert_int_eq(crid_cgroup_parse_keyed("a 1\nb x\n", "b", &v), -EINVAL);
	ck_assert_int_eq(crid_cgroup_parse_keyed("a 1", "a", &v), 0); /* no final newline */
	ck_assert_int_eq(crid_cgroup_parse_keyed("", "a", &v), -ENOENT);
	ck_assert_uint_eq(crid_cgroup_count_lines("1\n22\n333\n"), 3);
	ck_assert_uint_eq(crid_cgroup_count_lines(""), 0);
	ck_assert_uint_eq(crid_cgroup_count_lines("1\n\n2"), 2);
}
END_TEST

START_TEST(test_v1_memory)
{
	struct crid_cgroup_sample s = { 0 };

	ck_assert_int_eq(crid_cgroup_v1_memory_parse("62914560\n", "268435456\n", v1_memory_stat, "62914560\n",
						     "9223372036854771712\n", &s),
			 0);
	ck_assert(s.has_memory);
	ck_assert_uint_eq(s.mem_usage, 62914560);
	/* Working set: usage less the total inactive file pages. */
	ck_assert_uint_eq(s.mem_working_set, 62914560 - 8388608);
	ck_assert_uint_eq(s.mem_rss, 52428800);
	ck_assert_uint_eq(s.mem_pgfault, 1200);
	ck_assert_uint_eq(s.mem_pgmajfault, 4);
	ck_assert_uint_eq(s.mem_limit, 268435456);
	ck_assert(s.has_swap);
	ck_assert_uint_eq(s.swap_usage, 0);
	ck_assert(s.swap_limit == CRID_CGROUP_NO_LIMIT);

	/* No limit: v1 writes a page-rounded huge number. No swap accounting:
	 * no memsw files. */
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(crid_cgroup_v1_memory_parse("4096\n", "9223372036854771712\n", "total_inactive_file 8192\n",
						     NULL, NULL, &s),
			 0);
	ck_assert(s.mem_limit == CRID_CGROUP_NO_LIMIT);
	ck_assert_uint_eq(s.mem_working_set, 0); /* never below zero */
	ck_assert(!s.has_swap);

	/* Swap in use, with a memsw limit above the memory limit. */
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(crid_cgroup_v1_memory_parse("1048576\n", "2097152\n", "", "1572864\n", "3145728\n", &s), 0);
	ck_assert_uint_eq(s.swap_usage, 524288);
	ck_assert_uint_eq(s.swap_limit, 1048576);
	ck_assert_int_eq(crid_cgroup_v1_memory_parse("garbage", "1", "", NULL, NULL, &s), -EINVAL);
}
END_TEST

START_TEST(test_v2_memory_and_cpu)
{
	struct crid_cgroup_sample s = { 0 };
	uint64_t ns;

	ck_assert_int_eq(crid_cgroup_v2_memory_parse("67108864\n", "max\n", v2_memory_stat, "1048576\n", "max\n", &s),
			 0);
	ck_assert(s.has_memory);
	ck_assert_uint_eq(s.mem_usage, 67108864);
	ck_assert_uint_eq(s.mem_working_set, 67108864 - 16777216);
	ck_assert_uint_eq(s.mem_rss, 41943040);
	ck_assert_uint_eq(s.mem_pgfault, 5000);
	ck_assert_uint_eq(s.mem_pgmajfault, 7);
	ck_assert(s.mem_limit == CRID_CGROUP_NO_LIMIT);
	ck_assert(s.has_swap);
	ck_assert_uint_eq(s.swap_usage, 1048576);
	ck_assert(s.swap_limit == CRID_CGROUP_NO_LIMIT);

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(crid_cgroup_v2_memory_parse("100\n", "268435456\n", "", NULL, NULL, &s), 0);
	ck_assert_uint_eq(s.mem_limit, 268435456);
	ck_assert(!s.has_swap);

	ck_assert_int_eq(crid_cgroup_v2_cpu_parse(v2_cpu_stat, &ns), 0);
	ck_assert_uint_eq(ns, 1234567000ULL);
	ck_assert_int_eq(crid_cgroup_v2_cpu_parse("user_usec 1\n", &ns), -ENOENT);
	ck_assert_int_eq(crid_cgroup_v2_cpu_parse("usage_usec 99999999999999999\n", &ns), -ERANGE);
}
END_TEST

static const char netdev_text[] =
	"Inter-|   Receive                                                |  Transmit\n"
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
	"carrier compressed\n"
	"    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0 "
	"         0\n"
	"  eth1:     500       5    1    2    0     0          0         0      700       7    3    4    0     0       "
	"0          0\n"
	"  eth0: 3000000    2000    0    0    0     0          0         0  4000000    3000    0    0    0     0       "
	"0          0\n";

START_TEST(test_netdev_parse)
{
	struct crid_netdev_list *l = calloc(1, sizeof(*l));
	const struct crid_netdev *d;

	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(crid_netdev_parse(netdev_text, l), 0);
	ck_assert_uint_eq(l->n, 2); /* loopback left out */
	ck_assert_str_eq(l->dev[0].name, "eth1");
	ck_assert_uint_eq(l->dev[0].rx_bytes, 500);
	ck_assert_uint_eq(l->dev[0].rx_errors, 1);
	ck_assert_uint_eq(l->dev[0].rx_dropped, 2);
	ck_assert_uint_eq(l->dev[0].tx_bytes, 700);
	ck_assert_uint_eq(l->dev[0].tx_packets, 7);
	ck_assert_uint_eq(l->dev[0].tx_errors, 3);
	ck_assert_uint_eq(l->dev[0].tx_dropped, 4);
	d = crid_netdev_default(l);
	ck_assert_str_eq(d->name, "eth0"); /* eth0 wins, wherever it is listed */
	ck_assert_uint_eq(d->rx_bytes, 3000000);
	ck_assert_int_eq(crid_netdev_parse("header\nheader\nnot a line\n", l), -EINVAL);
	ck_assert_int_eq(crid_netdev_parse("header\nheader\n eth0: 1 2 3\n", l), -EINVAL);
	ck_assert_int_eq(crid_netdev_parse("", l), -EINVAL);
	ck_assert_int_eq(crid_netdev_parse("h\nh\n", l), 0);
	ck_assert_ptr_null(crid_netdev_default(l));
	free(l);
}
END_TEST

START_TEST(test_cpu_rate)
{
	struct crid_cpu_rate r;
	uint64_t nc = 0;

	ck_assert_uint_eq(crid_cpu_rate_compute(0, 500000000, 1000000000), 500000000);
	ck_assert_uint_eq(crid_cpu_rate_compute(100, 50, 1000000000), 0); /* went back */
	ck_assert_uint_eq(crid_cpu_rate_compute(0, 1, 0), 0);
	/* Hours of many cores do not overflow. */
	ck_assert_uint_eq(crid_cpu_rate_compute(0, 64ULL * 3600 * 1000000000ULL, 3600LL * 1000000000LL),
			  64000000000ULL);
	crid_cpu_rate_init(&r);
	ck_assert(!crid_cpu_rate_update(&r, 1000, 0, &nc));
	ck_assert(!crid_cpu_rate_update(&r, 2000, 500000000, &nc)); /* too soon */
	ck_assert(crid_cpu_rate_update(&r, 1000 + 2000000000ULL, 2000000000LL, &nc));
	ck_assert_uint_eq(nc, 1000000000); /* one core over two seconds */
	ck_assert(crid_cpu_rate_update(&r, 1000 + 2000000000ULL, 2100000000LL, &nc));
	ck_assert_uint_eq(nc, 1000000000); /* a quick second call keeps the last rate */
	ck_assert(!crid_cpu_rate_update(&r, 5, 5000000000LL, &nc)); /* a new cgroup: start over */
	crid_cpu_rate_destroy(&r);
}
END_TEST

START_TEST(test_metrics_text)
{
	struct crid_metrics *m;
	struct crid_err err;
	char *text = NULL;
	size_t len;

	ck_assert_int_eq(crid_metrics_new(&m, &err), 0);
	crid_metrics_rpc_done(m, "RuntimeService", "Version", 0, 300000);
	crid_metrics_rpc_done(m, "RuntimeService", "Version", 5, 2000000000LL);
	crid_metrics_rpc_done(m, "ImageService", "PullImage", 0, 1000000);
	crid_metrics_rpc_done(m, "RuntimeService", "NoSuchMethod", 12, 1000);
	crid_metrics_rpc_done(m, NULL, NULL, 12, 1000);
	crid_metrics_pull_done(m, 4096, 1500000000LL, true);
	ck_assert_int_eq(crid_metrics_render(m, &text, &len, &err), 0);
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_ptr_nonnull(
		strstr(text, "crid_grpc_requests_total{service=\"RuntimeService\",method=\"Version\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(
		text, "crid_grpc_errors_total{service=\"RuntimeService\",method=\"Version\",code=\"NOT_FOUND\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "crid_grpc_requests_total{service=\"unknown\",method=\"unknown\"} 2\n"));
	/* Cumulative buckets: 0.3 ms falls in 0.0005, 2 s in 2.5. */
	ck_assert_ptr_nonnull(strstr(text, "crid_grpc_request_duration_seconds_bucket{service=\"RuntimeService\","
					   "method=\"Version\",le=\"0.0005\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "crid_grpc_request_duration_seconds_bucket{service=\"RuntimeService\","
					   "method=\"Version\",le=\"1\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "crid_grpc_request_duration_seconds_bucket{service=\"RuntimeService\","
					   "method=\"Version\",le=\"2.5\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "crid_grpc_request_duration_seconds_bucket{service=\"RuntimeService\","
					   "method=\"Version\",le=\"+Inf\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "crid_grpc_request_duration_seconds_count{service=\"RuntimeService\","
					   "method=\"Version\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "crid_image_pull_bytes_total 4096\n"));
	ck_assert_ptr_nonnull(strstr(text, "crid_image_pull_duration_seconds_bucket{le=\"2.5\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE crid_grpc_requests_total counter\n"));
	/* Methods never called leave no series. */
	ck_assert_ptr_null(strstr(text, "method=\"ListImages\""));
	free(text);
	crid_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_address)
{
	char host[64], port[8];

	ck_assert_int_eq(crid_metrics_address_split("127.0.0.1:9090", host, sizeof(host), port, sizeof(port)), 0);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_str_eq(port, "9090");
	ck_assert_int_eq(crid_metrics_address_split("[::1]:80", host, sizeof(host), port, sizeof(port)), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(crid_metrics_address_split(":9090", host, sizeof(host), port, sizeof(port)), 0);
	ck_assert_str_eq(host, "");
	ck_assert_int_eq(crid_metrics_address_split("::1:80", host, sizeof(host), port, sizeof(port)), -EINVAL);
	ck_assert_int_eq(crid_metrics_address_split("host", host, sizeof(host), port, sizeof(port)), -EINVAL);
	ck_assert_int_eq(crid_metrics_address_split("h:0", host, sizeof(host), port, sizeof(port)), -EINVAL);
	ck_assert_int_eq(crid_metrics_address_split("h:65536", host, sizeof(host), port, sizeof(port)), -EINVAL);
	ck_assert_int_eq(crid_metrics_address_split("h:", host, sizeof(host), port, sizeof(port)), -EINVAL);
	ck_assert_int_eq(crid_metrics_address_split("h:+1", host, sizeof(host), port, sizeof(port)), -EINVAL);
}
END_TEST

/* ---- the kernel ---- */

static bool is_fs(const char *path, long magic)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && sf.f_type == magic;
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_msg(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write %s: %s", path, strerror(errno));
	close(fd);
}

/* A child that allocates and touches mb MiB, spins for spin_ms, then waits. */
static pid_t busy_child(const char *procs_a, const char *procs_b, size_t mb, int spin_ms)
{
	int ready[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(ready), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char self[16];
		struct timespec t0, t;

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves no spinner */
		snprintf(self, sizeof(self), "%d", getpid());
		write_text(procs_a, self);
		if (procs_b)
			write_text(procs_b, self);
		if (mb) {
			volatile char *p = malloc(mb * MiB);

			if (!p)
				_exit(1);
			for (size_t i = 0; i < mb * MiB; i += 4096)
				p[i] = 1; /* volatile: the pages are touched, not optimised away */
		}
		/* CPU time, not wall time: a loaded machine must not shorten it. */
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
		do
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
		while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < spin_ms);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return pid;
}

static void end_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

START_TEST(test_v1_readers_on_the_kernel)
{
	char name[64], mem[256], cpu[256], procs_mem[300], procs_cpu[300];
	struct crid_cgroup_layout l;
	struct crid_cgroup_sample s = { 0 };
	struct crid_err err;
	int r_layout, r_read;
	pid_t pid;

	if (!is_fs("/sys/fs/cgroup/memory", CGROUP_SUPER_MAGIC) || !is_fs("/sys/fs/cgroup/cpuacct", CGROUP_SUPER_MAGIC))
		return; /* a v2-only host: the v2 test below covers it */
	snprintf(name, sizeof(name), "crid-unit-stats-%d", getpid());
	snprintf(mem, sizeof(mem), "/sys/fs/cgroup/memory/%s", name);
	snprintf(cpu, sizeof(cpu), "/sys/fs/cgroup/cpuacct/%s", name);
	ck_assert_int_eq(mkdir(mem, 0755), 0);
	ck_assert_int_eq(mkdir(cpu, 0755), 0);
	snprintf(procs_mem, sizeof(procs_mem), "%s/cgroup.procs", mem);
	snprintf(procs_cpu, sizeof(procs_cpu), "%s/cgroup.procs", cpu);
	pid = busy_child(procs_mem, procs_cpu, 40, 300);
	r_layout = crid_cgroup_layout_open(&l, "/sys/fs/cgroup", &err);
	r_read = r_layout == 0 ? crid_cgroup_read(&l, name, &s, &err) : -1;
	/* Cleaned up before the checks, so a failure leaves nothing behind. */
	end_child(pid);
	ck_assert_int_eq(rmdir(mem), 0);
	ck_assert_int_eq(rmdir(cpu), 0);
	ck_assert_int_eq(r_layout, 0);
	ck_assert_int_eq(l.memory, CRID_CGROUP_V1);
	ck_assert_int_eq(l.cpu, CRID_CGROUP_V1);
	ck_assert_int_eq(r_read, 0);
	ck_assert(s.has_memory && s.has_cpu);
	ck_assert_uint_ge(s.mem_working_set, 40 * MiB);
	ck_assert_uint_ge(s.mem_rss, 40 * MiB);
	ck_assert_uint_ge(s.cpu_usage_ns, 250000000ULL);
	ck_assert(s.mem_limit == CRID_CGROUP_NO_LIMIT);
	/* A cgroup that is not there: nothing known, no error. */
	ck_assert_int_eq(crid_cgroup_read(&l, "/crid-unit-no-such-cgroup", &s, &err), 0);
	ck_assert(!s.has_memory && !s.has_cpu && !s.has_pids);
	ck_assert_int_eq(crid_cgroup_read(&l, "/a/../../etc", &s, &err), -EINVAL);
	crid_cgroup_layout_close(&l);
}
END_TEST

static bool v2_has_memory(const char *root)
{
	char path[256], buf[512] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, "memory") != NULL;
}

START_TEST(test_v2_readers_on_the_kernel)
{
	const char *root = is_fs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC)		 ? "/sys/fs/cgroup"
			   : is_fs("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC) ? "/sys/fs/cgroup/unified"
										  : NULL;
	char dir[256], procs[300];
	struct crid_cgroup_sample s = { 0 };
	pid_t pid;
	int fd;

	if (!root)
		return; /* no unified hierarchy at all */
	snprintf(dir, sizeof(dir), "%s/crid-unit-stats-%d", root, getpid());
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	pid = busy_child(procs, NULL, 0, 300);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		/* cpu.stat is in every v2 cgroup, whatever controllers are on. */
		crid_cgroup_v2_read_cpu(fd, &s);
		crid_cgroup_v2_read_memory(fd, &s);
		close(fd);
	}
	end_child(pid);
	ck_assert_int_eq(rmdir(dir), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert(s.has_cpu);
	ck_assert_uint_ge(s.cpu_usage_ns, 250000000ULL);
	/* Memory, where the controller is enabled (not on a hybrid host's
	 * unified mount, which then has no memory files: nothing known). */
	if (strcmp(root, "/sys/fs/cgroup/unified") == 0 && !v2_has_memory(root))
		ck_assert(!s.has_memory);
}
END_TEST

/* ---- the writable layer walker ---- */

START_TEST(test_layer_walker)
{
	char root[] = "/tmp/crid-unit-layer-XXXXXX", path[256], link2[300];
	struct crid_layer_usage *lu;
	struct crid_fs_usage u, total;
	struct crid_err err;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/a", root);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/f", root);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	{
		char *buf = calloc(1, MiB);

		for (int i = 0; i < 3; i++)
			ck_assert_int_eq(write(fd, buf, MiB), (ssize_t)MiB);
		free(buf);
	}
	fsync(fd);
	close(fd);
	/* A hard link counts once; a symlink out is not followed. */
	snprintf(link2, sizeof(link2), "%s/a/g", root);
	ck_assert_int_eq(link(path, link2), 0);
	snprintf(path, sizeof(path), "%s/out", root);
	ck_assert_int_eq(symlink("/usr", path), 0);

	ck_assert_int_eq(crid_layer_usage_new(&lu, root, 1, 100000, &err), 0);
	ck_assert_int_eq(crid_layer_usage_add(lu, "c1", root, &err), 0);
	for (int i = 0; i < 200 && !crid_layer_usage_get(lu, "c1", &u); i++)
		usleep(20000);
	ck_assert(crid_layer_usage_get(lu, "c1", &u));
	ck_assert_uint_ge(u.bytes, 3 * MiB);
	ck_assert_uint_lt(u.bytes, 4 * MiB);
	ck_assert_uint_eq(u.inodes, 4); /* root, a, f (= g), out */
	crid_layer_usage_total(lu, &total);
	ck_assert_uint_eq(total.bytes, u.bytes);
	ck_assert_str_eq(crid_layer_usage_mountpoint(lu), root);
	crid_layer_usage_remove(lu, "c1");
	ck_assert(!crid_layer_usage_get(lu, "c1", &u));
	crid_layer_usage_free(lu);
	ck_assert_int_eq(crid_rmtree_at(AT_FDCWD, root, &err), 0);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *pure = tcase_create("parsers");
	TCase *kernel = tcase_create("kernel");

	tcase_add_test(pure, test_parse_u64);
	tcase_add_test(pure, test_parse_keyed);
	tcase_add_test(pure, test_v1_memory);
	tcase_add_test(pure, test_v2_memory_and_cpu);
	tcase_add_test(pure, test_netdev_parse);
	tcase_add_test(pure, test_cpu_rate);
	tcase_add_test(pure, test_metrics_text);
	tcase_add_test(pure, test_metrics_address);
	suite_add_tcase(s, pure);
	tcase_set_timeout(kernel, 30);
	tcase_add_test(kernel, test_v1_readers_on_the_kernel);
	tcase_add_test(kernel, test_v2_readers_on_the_kernel);
	tcase_add_test(kernel, test_layer_walker);
	suite_add_tcase(s, kernel);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stats_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
