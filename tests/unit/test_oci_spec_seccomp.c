/* Unit tests of src/oci/oci_spec_seccomp*.c, oci_spec_resources.c's host
 * checks and report, and common/idmap.c's mapping checks: the default
 * profile for each capability set, architecture and kernel; which profile a
 * security context gets; Localhost files in the OCI and Docker formats and
 * every way they can be wrong; cpusets, swap, hugepages and unified keys
 * against a host; ID mappings. */
#include <fcntl.h>

#include "common/idmap.h"
#include "oci_spec_fixture.h"

#define CAPBIT(n) (UINT64_C(1) << (n))
#define DEFAULT_CAPS (CAPBIT(0) | CAPBIT(1) | CAPBIT(3) | CAPBIT(18)) /* a few, no SYS_ADMIN */
#define SYS_ADMIN CAPBIT(21)
#define SYS_PTRACE CAPBIT(19)

static struct crid_spec_host host_of(const char *arch, int major, int minor)
{
	struct crid_spec_host h;

	memset(&h, 0, sizeof(h));
	snprintf(h.arch, sizeof(h.arch), "%s", arch);
	h.kernel[0] = major;
	h.kernel[1] = minor;
	h.held_caps = (UINT64_C(1) << 41) - 1;
	h.hugetlb = h.swap = true;
	snprintf(h.cpus, sizeof(h.cpus), "0-3,8");
	snprintf(h.mems, sizeof(h.mems), "0");
	return h;
}

/* The names the first (plain allow) rule lists. */
static json_t *allowed_names(json_t *p)
{
	json_t *r = json_array_get(json_object_get(p, "syscalls"), 0);

	ck_assert_str_eq(json_string_value(json_object_get(r, "action")), "SCMP_ACT_ALLOW");
	ck_assert_ptr_null(json_object_get(r, "args"));
	return json_object_get(r, "names");
}

/* The rule for name with an argument check, if any. */
static json_t *arg_rule(json_t *p, const char *name, size_t nth)
{
	size_t i;
	json_t *r;

	json_array_foreach(json_object_get(p, "syscalls"), i, r) {
		if (i > 0 && arr_has(json_object_get(r, "names"), name) && nth-- == 0)
			return r;
	}
	return NULL;
}

static json_t *default_profile(uint64_t caps, const struct crid_spec_host *h)
{
	struct crid_err e = { 0 };
	json_t *p = NULL;

	ck_assert_int_eq(crid_spec_seccomp_default(caps, h, &p, &e), 0);
	return p;
}

START_TEST(test_default_profile)
{
	struct crid_spec_host h = host_of("x86_64", 6, 1);
	json_t *p = default_profile(DEFAULT_CAPS, &h), *names = allowed_names(p), *r;
	static const char *const denied[] = { "mount", "umount2", "unshare", "setns", "sethostname", "bpf",
					      "perf_event_open", "kexec_load", "add_key", "keyctl", "reboot",
					      "init_module", "process_vm_readv", "clock_settime", "io_uring_setup" };

	ck_assert_str_eq(jstr(p, "defaultAction"), "SCMP_ACT_ERRNO");
	ck_assert_int_eq(jint(p, "defaultErrnoRet"), 1);
	assert_strv(json_object_get(p, "architectures"),
		    (const char *const[]){ "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" }, 3);
	ck_assert(arr_has(names, "read") && arr_has(names, "execve") && arr_has(names, "arch_prctl"));
	ck_assert(arr_has(names, "chroot")); /* CAP_SYS_CHROOT held */
	ck_assert(arr_has(names, "ptrace")); /* kernel >= 4.8 */
	ck_assert(!arr_has(names, "set_tls"));
	for (size_t i = 0; i < CRID_ARRAY_SIZE(denied); i++)
		ck_assert_msg(!arr_has(names, denied[i]), "%s allowed", denied[i]);
	/* clone only without namespace flags, clone3 ENOSYS. */
	r = arg_rule(p, "clone", 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(r, "args"), 0), "op"), "SCMP_CMP_MASKED_EQ");
	ck_assert_int_eq(jint(json_array_get(json_object_get(r, "args"), 0), "value"), 0x7E020000);
	ck_assert_int_eq(jint(json_array_get(json_object_get(r, "args"), 0), "index"), 0);
	ck_assert(!arr_has(names, "clone") && !arr_has(names, "clone3"));
	{
		size_t i;
		bool enosys = false;

		json_array_foreach(json_object_get(p, "syscalls"), i, r) {
			if (arr_has(json_object_get(r, "names"), "clone3"))
				enosys = strcmp(jstr(r, "action"), "SCMP_ACT_ERRNO") == 0 && jint(r, "errnoRet") == 38;
		}
		ck_assert(enosys);
	}
	/* personality: five values; socket: anything but vsock. */
	for (size_t k = 0; k < 5; k++)
		ck_assert_ptr_nonnull(arg_rule(p, "personality", k));
	ck_assert_ptr_null(arg_rule(p, "personality", 5));
	r = arg_rule(p, "socket", 0);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(r, "args"), 0), "op"), "SCMP_CMP_NE");
	ck_assert_int_eq(jint(json_array_get(json_object_get(r, "args"), 0), "value"), 40);
	json_decref(p);

	/* With CAP_SYS_ADMIN: what it gates, clone and clone3 unfiltered. */
	p = default_profile(DEFAULT_CAPS | SYS_ADMIN, &h);
	names = allowed_names(p);
	ck_assert(arr_has(names, "mount") && arr_has(names, "unshare") && arr_has(names, "setns") &&
		  arr_has(names, "clone") && arr_has(names, "clone3") && arr_has(names, "bpf"));
	ck_assert(!arr_has(names, "keyctl") && !arr_has(names, "reboot"));
	ck_assert_ptr_null(arg_rule(p, "clone", 0));
	json_decref(p);
}
END_TEST

START_TEST(test_default_profile_arches_and_kernels)
{
	struct crid_spec_host arm = host_of("aarch64", 5, 10), old = host_of("x86_64", 4, 4), odd = host_of("mips", 6, 0);
	json_t *p;

	p = default_profile(DEFAULT_CAPS, &arm);
	assert_strv(json_object_get(p, "architectures"), (const char *const[]){ "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM" },
		    2);
	ck_assert(arr_has(allowed_names(p), "set_tls") && !arr_has(allowed_names(p), "arch_prctl"));
	json_decref(p);
	/* Before 4.8, ptrace could get around the filter: CAP_SYS_PTRACE only. */
	p = default_profile(DEFAULT_CAPS, &old);
	ck_assert(!arr_has(allowed_names(p), "ptrace"));
	json_decref(p);
	p = default_profile(DEFAULT_CAPS | SYS_PTRACE, &old);
	ck_assert(arr_has(allowed_names(p), "ptrace") && arr_has(allowed_names(p), "process_vm_readv"));
	json_decref(p);
	/* An architecture not known here: the native ABI only. */
	p = default_profile(DEFAULT_CAPS, &odd);
	ck_assert_uint_eq(json_array_size(json_object_get(p, "architectures")), 0);
	json_decref(p);
}
END_TEST

static void choose_ok(const Runtime__V1__LinuxContainerSecurityContext *sc, bool dflt, bool want_filter)
{
	struct crid_spec_host h = host_of("x86_64", 6, 1);
	struct crid_err e = { 0 };
	json_t *p = NULL;

	ck_assert_msg(crid_spec_seccomp(sc, dflt, DEFAULT_CAPS, &h, &p, &e) == 0, "%s", e.msg);
	ck_assert_msg((p != NULL) == want_filter, "filter %s", p ? "given" : "missing");
	json_decref(p);
}

static void choose_fails(const Runtime__V1__LinuxContainerSecurityContext *sc, const char *needle)
{
	struct crid_spec_host h = host_of("x86_64", 6, 1);
	struct crid_err e = { 0 };
	json_t *p = NULL;

	ck_assert_int_lt(crid_spec_seccomp(sc, false, DEFAULT_CAPS, &h, &p, &e), 0);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(e.status, CRID_INVALID_ARGUMENT);
	ck_assert_msg(strstr(e.msg, needle), "\"%s\" lacks \"%s\"", e.msg, needle);
}

START_TEST(test_which_profile)
{
	Runtime__V1__LinuxContainerSecurityContext sc = RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
	Runtime__V1__SecurityProfile sp = RUNTIME__V1__SECURITY_PROFILE__INIT;

	choose_ok(NULL, false, false);
	choose_ok(NULL, true, true);
	choose_ok(&sc, true, true);
	sc.seccomp = &sp;
	choose_ok(&sc, false, true); /* RuntimeDefault */
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	choose_ok(&sc, true, false);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	sp.localhost_ref = "rel/profile.json";
	choose_fails(&sc, "not an absolute path");
	sp.localhost_ref = "/nonexistent/crid/profile.json";
	choose_fails(&sc, "linux.security_context.seccomp: localhost profile /nonexistent/crid/profile.json");
	/* Privileged: no filter, whatever is asked (a bad name still is bad). */
	sc.privileged = 1;
	choose_ok(&sc, false, false);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
	choose_ok(&sc, false, false);
	sc.privileged = 0;
	sp.profile_type = 9;
	choose_fails(&sc, "profile_type");
	sc.seccomp = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	sc.seccomp_profile_path = "runtime/default";
	choose_ok(&sc, false, true);
	sc.seccomp_profile_path = "docker/default";
	choose_ok(&sc, false, true);
	sc.seccomp_profile_path = "unconfined";
	choose_ok(&sc, true, false);
	sc.seccomp_profile_path = "localhost/rel.json";
	choose_fails(&sc, "seccomp_profile_path: localhost profile \"rel.json\" is not an absolute path");
	sc.seccomp_profile_path = "/etc/profile.json";
	choose_fails(&sc, "is not runtime/default, docker/default, unconfined or localhost/<path>");
#pragma GCC diagnostic pop
}
END_TEST

/* ---- Localhost files ---- */

static char tmpdir[64];

static const char *write_tmp(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static json_t *load_ok(const char *text, uint64_t caps, const struct crid_spec_host *h)
{
	struct crid_err e = { 0 };
	json_t *p = NULL;

	ck_assert_msg(crid_spec_seccomp_load(write_tmp("ok.json", text), caps, h, &p, &e) == 0, "%s", e.msg);
	return p;
}

static void load_fails(const char *text, const char *needle)
{
	struct crid_spec_host h = host_of("x86_64", 6, 1);
	struct crid_err e = { 0 };
	json_t *p = NULL;
	const char *path = write_tmp("bad.json", text);

	ck_assert_int_lt(crid_spec_seccomp_load(path, DEFAULT_CAPS, &h, &p, &e), 0);
	ck_assert_ptr_null(p);
	ck_assert_msg(e.status == CRID_INVALID_ARGUMENT, "%s: %s", crid_status_name(e.status), e.msg);
	ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, needle), "\"%s\" lacks the file or \"%s\"", e.msg, needle);
}

START_TEST(test_localhost_oci)
{
	struct crid_spec_host h = host_of("x86_64", 6, 1);
	json_t *p = load_ok("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":38,"
			    "\"architectures\":[\"SCMP_ARCH_X86_64\"],\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"],"
			    "\"syscalls\":[{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"},"
			    "{\"name\":\"personality\",\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,"
			    "\"value\":8,\"op\":\"SCMP_CMP_EQ\"}]}]}",
			    DEFAULT_CAPS, &h);

	ck_assert_str_eq(jstr(p, "defaultAction"), "SCMP_ACT_ERRNO");
	ck_assert_int_eq(jint(p, "defaultErrnoRet"), 38);
	assert_strv(json_object_get(p, "architectures"), (const char *const[]){ "SCMP_ARCH_X86_64" }, 1);
	assert_strv(json_object_get(p, "flags"), (const char *const[]){ "SECCOMP_FILTER_FLAG_LOG" }, 1);
	ck_assert_uint_eq(json_array_size(json_object_get(p, "syscalls")), 2);
	/* The old "name" becomes "names". */
	assert_strv(jget(json_array_get(json_object_get(p, "syscalls"), 1), "names"),
		    (const char *const[]){ "personality" }, 1);
	ck_assert_int_eq(jint(json_array_get(jget(json_array_get(json_object_get(p, "syscalls"), 1), "args"), 0),
			      "value"),
			 8);
	json_decref(p);
}
END_TEST

START_TEST(test_localhost_docker)
{
	static const char doc[] =
		"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"archMap\":["
		"{\"architecture\":\"SCMP_ARCH_X86_64\",\"subArchitectures\":[\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]},"
		"{\"architecture\":\"SCMP_ARCH_AARCH64\",\"subArchitectures\":[\"SCMP_ARCH_ARM\"]}],"
		"\"syscalls\":["
		"{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\",\"comment\":\"everyone\"},"
		"{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":[\"CAP_SYS_ADMIN\"]}},"
		"{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"excludes\":{\"caps\":[\"CAP_SYS_ADMIN\"]}},"
		"{\"names\":[\"arch_prctl\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"arches\":[\"amd64\"]}},"
		"{\"names\":[\"set_tls\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"arches\":[\"arm64\"]}},"
		"{\"names\":[\"ptrace\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"minKernel\":\"4.8\"}},"
		"{\"names\":[\"future\"],\"action\":\"SCMP_ACT_ALLOW\",\"excludes\":{\"minKernel\":\"4.8\"}}]}";
	struct crid_spec_host x86 = host_of("x86_64", 6, 1), arm = host_of("aarch64", 4, 4);
	json_t *p, *rules;

	p = load_ok(doc, DEFAULT_CAPS, &x86);
	assert_strv(json_object_get(p, "architectures"),
		    (const char *const[]){ "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" }, 3);
	rules = json_object_get(p, "syscalls");
	ck_assert_uint_eq(json_array_size(rules), 4); /* read, clone, arch_prctl, ptrace */
	ck_assert_ptr_null(jget(json_array_get(rules, 0), "comment"));
	ck_assert(arr_has(jget(json_array_get(rules, 1), "names"), "clone"));
	ck_assert(arr_has(jget(json_array_get(rules, 2), "names"), "arch_prctl"));
	ck_assert(arr_has(jget(json_array_get(rules, 3), "names"), "ptrace"));
	json_decref(p);
	p = load_ok(doc, DEFAULT_CAPS | SYS_ADMIN, &arm);
	assert_strv(json_object_get(p, "architectures"), (const char *const[]){ "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM" },
		    2);
	rules = json_object_get(p, "syscalls");
	ck_assert_uint_eq(json_array_size(rules), 4); /* read, mount, set_tls, future */
	ck_assert(arr_has(jget(json_array_get(rules, 1), "names"), "mount"));
	ck_assert(arr_has(jget(json_array_get(rules, 2), "names"), "set_tls"));
	ck_assert(arr_has(jget(json_array_get(rules, 3), "names"), "future"));
	json_decref(p);
}
END_TEST

START_TEST(test_localhost_errors)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
		{ "{not json", "not JSON" },
		{ "[1]", "not a JSON object" },
		{ "{}", "defaultAction is missing" },
		{ "{\"defaultAction\":\"SCMP_ACT_MAYBE\"}", "defaultAction: \"SCMP_ACT_MAYBE\" is not a seccomp action" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"defaultAction\":\"SCMP_ACT_KILL\"}", "duplicate" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"extra\":1}", "unknown key \"extra\"" },
		{ "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":-1}", "defaultErrnoRet" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"amd64\"]}", "architectures[0]" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"archMap\":[{\"architecture\":\"x\"}]}", "archMap[0]" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":{}}", "syscalls: not a list" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"action\":\"SCMP_ACT_ALLOW\"}]}",
		  "syscalls[0]: no system call names" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"a b\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
		  "syscalls[0].names[0]" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"]}]}",
		  "syscalls[0].action is missing" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\","
		  "\"errnoRet\":99999}]}",
		  "syscalls[0].errnoRet" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\","
		  "\"args\":[{\"index\":6,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
		  "syscalls[0].args[0].index" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\","
		  "\"args\":[{\"index\":0,\"value\":1,\"op\":\"EQ\"}]}]}",
		  "syscalls[0].args[0].op" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\","
		  "\"args\":[{\"index\":0,\"value\":-1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
		  "value and valueTwo" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\","
		  "\"includes\":{\"caps\":[\"CAP_FLY\"]}}]}",
		  "syscalls[0].includes.caps[0]" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\","
		  "\"excludes\":{\"minKernel\":\"five\"}}]}",
		  "syscalls[0].excludes: not a kernel version" },
		{ "{\"defaultAction\":\"SCMP_ACT_NOTIFY\"}", "SCMP_ACT_NOTIFY needs a listenerPath" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"rel\"}", "listenerPath" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"FAST\"]}", "flags[0]" },
	};
	struct crid_spec_host h = host_of("x86_64", 6, 1);
	struct crid_err e = { 0 };
	json_t *p = NULL;
	char big[128];

	for (size_t i = 0; i < CRID_ARRAY_SIZE(cases); i++)
		load_fails(cases[i].text, cases[i].needle);
	/* Not there, not a file, too big, not absolute. */
	ck_assert_int_lt(crid_spec_seccomp_load("/nonexistent/x.json", DEFAULT_CAPS, &h, &p, &e), 0);
	ck_assert(e.status == CRID_INVALID_ARGUMENT && strstr(e.msg, "/nonexistent/x.json") &&
		  strstr(e.msg, "No such file"));
	ck_assert_int_lt(crid_spec_seccomp_load(tmpdir, DEFAULT_CAPS, &h, &p, &e), 0);
	ck_assert(e.status == CRID_INVALID_ARGUMENT && strstr(e.msg, "not a regular file"));
	snprintf(big, sizeof(big), "%s/big.json", tmpdir);
	{
		int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, (2 << 20)), 0);
		close(fd);
	}
	ck_assert_int_lt(crid_spec_seccomp_load(big, DEFAULT_CAPS, &h, &p, &e), 0);
	ck_assert(e.status == CRID_INVALID_ARGUMENT && strstr(e.msg, "larger than"));
	ck_assert_int_lt(crid_spec_seccomp_load("x.json", DEFAULT_CAPS, &h, &p, &e), 0);
	ck_assert(e.status == CRID_INVALID_ARGUMENT);
	ck_assert_ptr_null(p);
}
END_TEST

/* ---- resources against a host ---- */

static int resources(const Runtime__V1__LinuxContainerResources *r, const struct crid_spec_host *h, json_t **j,
		     struct crid_err *e)
{
	*j = NULL;
	return crid_spec_resources(r, h, j, e);
}

START_TEST(test_resources_host_checks)
{
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	Runtime__V1__HugepageLimit hl = RUNTIME__V1__HUGEPAGE_LIMIT__INIT, *hlp[1] = { &hl };
	struct crid_spec_host h = host_of("x86_64", 6, 1);
	struct crid_err e = { 0 };
	json_t *j;

	r.cpuset_cpus = "0-3,8";
	ck_assert_int_eq(resources(&r, &h, &j, &e), 0);
	json_decref(j);
	r.cpuset_cpus = "2-5";
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	ck_assert(e.status == CRID_INVALID_ARGUMENT && strstr(e.msg, "cpuset_cpus: CPU 4 is not online") &&
		  strstr(e.msg, "(online: 0-3,8)"));
	r.cpuset_cpus = "0-4294967295";
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	ck_assert(strstr(e.msg, "CPU 4 is not online"));
	r.cpuset_cpus = "3-1";
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	ck_assert(strstr(e.msg, "not a list"));
	r.cpuset_cpus = "";
	r.cpuset_mems = "1";
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	ck_assert(strstr(e.msg, "cpuset_mems: memory node 1 is not online"));
	/* Without the host, syntax alone. */
	ck_assert_int_eq(resources(&r, NULL, &j, &e), 0);
	json_decref(j);
	r.cpuset_mems = "";

	/* Swap: only where it can be limited. */
	r.memory_limit_in_bytes = 1 << 20;
	r.memory_swap_limit_in_bytes = 2 << 20;
	h.swap = false;
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	ck_assert(e.status == CRID_FAILED_PRECONDITION && strstr(e.msg, "memory_swap_limit_in_bytes"));
	h.swap = true;
	r.memory_swap_limit_in_bytes = 0;

	/* Hugepage limits without a controller: nothing to set. */
	hl.page_size = "2MB";
	r.hugepage_limits = hlp;
	r.n_hugepage_limits = 1;
	h.hugetlb = false;
	ck_assert_int_eq(resources(&r, &h, &j, &e), 0);
	ck_assert_ptr_null(json_object_get(j, "hugepageLimits"));
	json_decref(j);
}
END_TEST

START_TEST(test_unified)
{
	Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	Runtime__V1__LinuxContainerResources__UnifiedEntry u[4], *up[4];
	struct crid_spec_host h = host_of("x86_64", 6, 1);
	struct crid_err e = { 0 };
	json_t *j;

	for (size_t i = 0; i < 4; i++) {
		runtime__v1__linux_container_resources__unified_entry__init(&u[i]);
		up[i] = &u[i];
	}
	r.unified = up;
	r.n_unified = 4;
	u[0].key = "cpu.weight", u[0].value = "10000";
	u[1].key = "cpu.max", u[1].value = "max 50000";
	u[2].key = "memory.max", u[2].value = "1048576";
	u[3].key = "pids.max", u[3].value = "max";
	r.cpu_shares = 2;
	/* cgroup v1: in v1 terms, over the fields they stand for. */
	ck_assert_int_eq(resources(&r, &h, &j, &e), 0);
	ck_assert_int_eq(jint(j, "cpu.shares"), 262144);
	ck_assert_int_eq(jint(j, "cpu.quota"), -1);
	ck_assert_int_eq(jint(j, "cpu.period"), 50000);
	ck_assert_int_eq(jint(j, "memory.limit"), 1048576);
	ck_assert_int_eq(jint(j, "pids.limit"), -1);
	ck_assert_ptr_null(json_object_get(j, "unified"));
	json_decref(j);
	u[3].key = "memory.high";
	u[3].value = "100";
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	ck_assert(e.status == CRID_FAILED_PRECONDITION && strstr(e.msg, "unified[memory.high]"));
	u[3].key = "cpu.weight";
	u[3].value = "0";
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	ck_assert(e.status == CRID_INVALID_ARGUMENT && strstr(e.msg, "unified[cpu.weight]"));
	/* cgroup v2: as they are. */
	h.cgroup2 = true;
	u[3].key = "memory.high";
	u[3].value = "100";
	ck_assert_int_eq(resources(&r, &h, &j, &e), 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "unified"), "memory.high")), "100");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "unified"), "cpu.max")), "max 50000");
	ck_assert_int_eq(jint(j, "cpu.shares"), 2);
	json_decref(j);
	/* Never a cgroup core file, never a path. */
	u[3].key = "cgroup.procs";
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	ck_assert(e.status == CRID_INVALID_ARGUMENT && strstr(e.msg, "cgroup.procs"));
	u[3].key = "../cpu.max";
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	u[3].key = "memory.high";
	u[3].value = "1\n2";
	ck_assert_int_lt(resources(&r, &h, &j, &e), 0);
	ck_assert(strstr(e.msg, "not one line"));
}
END_TEST

START_TEST(test_resources_report)
{
	json_t *res = json_pack("{s:{s:i, s:i, s:i, s:s}, s:{s:I, s:I}, s:[{s:s, s:i}], s:{s:s}}", "cpu", "shares",
				512, "quota", 20000, "period", 100000, "cpus", "0-1", "memory", "limit",
				(json_int_t)(64 << 20), "swap", (json_int_t)(128 << 20), "hugepageLimits", "pageSize",
				"2MB", "limit", 0, "unified", "memory.high", "1000");
	json_t *process = json_pack("{s:i}", "oomScoreAdj", -500);
	struct crid_resources_report rep;

	crid_spec_resources_report(res, process, &rep);
	ck_assert_int_eq(rep.linux.cpu_shares, 512);
	ck_assert_int_eq(rep.linux.cpu_quota, 20000);
	ck_assert_int_eq(rep.linux.cpu_period, 100000);
	ck_assert_str_eq(rep.linux.cpuset_cpus, "0-1");
	ck_assert_str_eq(rep.linux.cpuset_mems, "");
	ck_assert_int_eq(rep.linux.memory_limit_in_bytes, 64 << 20);
	ck_assert_int_eq(rep.linux.memory_swap_limit_in_bytes, 128 << 20);
	ck_assert_int_eq(rep.linux.oom_score_adj, -500);
	ck_assert_uint_eq(rep.linux.n_hugepage_limits, 1);
	ck_assert_str_eq(rep.linux.hugepage_limits[0]->page_size, "2MB");
	ck_assert_uint_eq(rep.linux.n_unified, 1);
	ck_assert_str_eq(rep.linux.unified[0]->key, "memory.high");
	json_decref(res);
	json_decref(process);
	/* Nothing recorded: zeros, not a crash. */
	crid_spec_resources_report(NULL, NULL, &rep);
	ck_assert_int_eq(rep.linux.cpu_shares, 0);
	ck_assert_str_eq(rep.linux.cpuset_cpus, "");
}
END_TEST

/* ---- ID mappings ---- */

START_TEST(test_idmap_check)
{
	struct crid_idmap ok[] = { { 0, 100000, 65536 }, { 65536, 300000, 10 } };
	struct crid_idmap overlap_in[] = { { 0, 100000, 10 }, { 5, 200000, 10 } };
	struct crid_idmap overlap_out[] = { { 0, 100000, 10 }, { 100, 100005, 10 } };
	struct crid_idmap empty[] = { { 0, 100000, 0 } };
	struct crid_idmap overflow[] = { { 0, 4294967200u, 1000 } };
	struct crid_err e = { 0 };
	uint32_t out;

	ck_assert_int_eq(crid_idmap_check(ok, 2, "uids", &e), 0);
	ck_assert_int_lt(crid_idmap_check(ok, 0, "uids", &e), 0);
	ck_assert(strstr(e.msg, "uids: no mapping"));
	ck_assert_int_lt(crid_idmap_check(overlap_in, 2, "uids", &e), 0);
	ck_assert(strstr(e.msg, "uids[1] overlaps uids[0]"));
	ck_assert_int_lt(crid_idmap_check(overlap_out, 2, "gids", &e), 0);
	ck_assert(strstr(e.msg, "gids[1] overlaps gids[0]"));
	ck_assert_int_lt(crid_idmap_check(empty, 1, "uids", &e), 0);
	ck_assert(strstr(e.msg, "uids[0]: the length is 0"));
	ck_assert_int_lt(crid_idmap_check(overflow, 1, "uids", &e), 0);
	ck_assert(e.status == CRID_INVALID_ARGUMENT && strstr(e.msg, "uids[0]"));
	ck_assert_int_lt(crid_idmap_check(ok, CRID_IDMAP_MAX + 1, "uids", &e), 0);
	ck_assert(crid_idmap_outside(ok, 2, 0, &out) && out == 100000);
	ck_assert(crid_idmap_outside(ok, 2, 65545, &out) && out == 300009);
	ck_assert(!crid_idmap_outside(ok, 2, 65546, &out));
}
END_TEST

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/crid-seccomp-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

int main(void)
{
	Suite *s = suite_create("oci_spec_seccomp");
	TCase *tc = tcase_create("seccomp");
	TCase *tr = tcase_create("resources");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
	tcase_add_test(tc, test_default_profile);
	tcase_add_test(tc, test_default_profile_arches_and_kernels);
	tcase_add_test(tc, test_which_profile);
	tcase_add_test(tc, test_localhost_oci);
	tcase_add_test(tc, test_localhost_docker);
	tcase_add_test(tc, test_localhost_errors);
	suite_add_tcase(s, tc);
	tcase_add_test(tr, test_resources_host_checks);
	tcase_add_test(tr, test_unified);
	tcase_add_test(tr, test_resources_report);
	tcase_add_test(tr, test_idmap_check);
	suite_add_tcase(s, tr);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
