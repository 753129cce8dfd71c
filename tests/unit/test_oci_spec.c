/* Unit tests of src/runtime/oci_spec*.c: config.json built from CRI
 * ContainerConfig messages made here with the generated *__init functions,
 * checked with jansson: process arguments (Docker's rules), environment,
 * working directory, user, root, mounts, namespaces, resources, OOM score,
 * masked paths, devices, annotations, every refusal naming its field, and
 * behaviour when memory runs out. Capabilities and user resolution are in
 * test_oci_spec_caps.c. */
#include "oci_spec_fixture.h"

/* ---- process arguments ---- */

static const char *const EP[] = { "/entry", NULL };
static const char *const EP_EMPTY[] = { "", NULL };
static const char *const CMD[] = { "serve", "--port=80", NULL };
static const char *const COMMAND[] = { "/bin/sh", "-c", NULL };
static const char *const ARGS[] = { "echo hi", NULL };
static const char *const NONE[] = { NULL };

static const struct {
	const char *const *ep, *const *cmd, *const *command, *const *args;
	const char *want[6];
} args_cases[] = {
	{ EP, CMD, NONE, NONE, { "/entry", "serve", "--port=80" } },
	{ EP, CMD, NONE, ARGS, { "/entry", "echo hi" } },
	{ EP, CMD, COMMAND, NONE, { "/bin/sh", "-c" } },
	{ EP, CMD, COMMAND, ARGS, { "/bin/sh", "-c", "echo hi" } },
	{ NONE, CMD, NONE, NONE, { "serve", "--port=80" } },
	{ NONE, CMD, NONE, ARGS, { "echo hi" } },
	{ NONE, NONE, COMMAND, ARGS, { "/bin/sh", "-c", "echo hi" } },
	{ EP, NONE, NONE, ARGS, { "/entry", "echo hi" } },
	{ EP, NONE, NONE, NONE, { "/entry" } },
	{ EP_EMPTY, CMD, NONE, NONE, { "serve", "--port=80" } },
	{ NONE, CMD, COMMAND, NONE, { "/bin/sh", "-c" } },
};

static size_t strv_len(const char *const *v)
{
	size_t n = 0;

	while (v[n])
		n++;
	return n;
}

START_TEST(test_args_rules)
{
	struct crid_image_defaults img = { 0 };
	Runtime__V1__ContainerConfig c;
	struct crid_err e = { 0 };
	char **argv = NULL;
	size_t argc = 0, want_n = 0;

	runtime__v1__container_config__init(&c);
	img.entrypoint = (char **)args_cases[_i].ep;
	img.n_entrypoint = strv_len(args_cases[_i].ep);
	img.cmd = (char **)args_cases[_i].cmd;
	img.n_cmd = strv_len(args_cases[_i].cmd);
	c.command = (char **)args_cases[_i].command;
	c.n_command = strv_len(args_cases[_i].command);
	c.args = (char **)args_cases[_i].args;
	c.n_args = strv_len(args_cases[_i].args);
	ck_assert_int_eq(crid_spec_process_args(&img, &c, &argv, &argc, &e), 0);
	while (args_cases[_i].want[want_n])
		want_n++;
	ck_assert_uint_eq(argc, want_n);
	for (size_t k = 0; k < want_n; k++)
		ck_assert_str_eq(argv[k], args_cases[_i].want[k]);
	ck_assert_ptr_null(argv[argc]);
	free(argv);
}
END_TEST

START_TEST(test_args_none)
{
	struct crid_image_defaults img = { 0 };
	Runtime__V1__ContainerConfig c;
	struct crid_err e = { 0 };
	char **argv = (char **)1;
	size_t argc = 7;

	runtime__v1__container_config__init(&c);
	ck_assert_int_lt(crid_spec_process_args(&img, &c, &argv, &argc, &e), 0);
	ck_assert_int_eq(e.status, CRID_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "no command given and the image has none"));
	ck_assert_ptr_null(argv);
	ck_assert_uint_eq(argc, 0);
	/* No image at all, and an entrypoint reset with no cmd. */
	ck_assert_int_lt(crid_spec_process_args(NULL, &c, &argv, &argc, &e), 0);
	img.entrypoint = (char **)EP_EMPTY;
	img.n_entrypoint = 1;
	ck_assert_int_lt(crid_spec_process_args(&img, &c, &argv, &argc, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "no command given"));
	/* A command whose first element is empty. */
	c.command = (char **)EP_EMPTY;
	c.n_command = 1;
	ck_assert_int_lt(crid_spec_process_args(&img, &c, &argv, &argc, &e), 0);
	ck_assert_int_eq(e.status, CRID_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "command[0] is empty"));
}
END_TEST

START_TEST(test_args_in_spec)
{
	struct fx f;
	json_t *j;
	static const char *const want[] = { "/entry", "serve", "--port=80" };

	fx_init(&f);
	j = build_ok(&f);
	assert_strv(jget(j, "process.args"), want, 3);
	json_decref(j);
	f.img.n_entrypoint = f.img.n_cmd = 0;
	build_fails(&f, CRID_INVALID_ARGUMENT, "no command given");
}
END_TEST

/* ---- environment ---- */

START_TEST(test_env_merge)
{
	static const char *const want[] = { "PATH=/img/bin", "HOSTNAME=pod-1", "A=override", "B=2", "C=3" };
	struct fx f;
	json_t *j;

	fx_init(&f);
	set_env(&f, 0, "A", "override");
	set_env(&f, 1, "C", "3");
	j = build_ok(&f);
	assert_strv(jget(j, "process.env"), want, CRID_ARRAY_SIZE(want));
	json_decref(j);
}
END_TEST

START_TEST(test_env_default_path)
{
	static char *env[] = { "X=1", "=nameless", "UNSET_ME" };
	static const char *const want[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=pod-1", "X=1", "E="
	};
	struct fx f;
	json_t *j;

	fx_init(&f);
	f.img.env = env;
	f.img.n_env = 3;
	set_env(&f, 0, "E", "");
	j = build_ok(&f);
	assert_strv(jget(j, "process.env"), want, CRID_ARRAY_SIZE(want));
	json_decref(j);
}
END_TEST

START_TEST(test_env_override_path_hostname)
{
	static const char *const want[] = { "PATH=/mine", "HOSTNAME=other", "A=1", "B=2", "V=a=b" };
	struct fx f;
	json_t *j;

	fx_init(&f);
	set_env(&f, 0, "HOSTNAME", "other");
	set_env(&f, 1, "PATH", "/mine");
	set_env(&f, 2, "V", "a=b");
	j = build_ok(&f);
	assert_strv(jget(j, "process.env"), want, CRID_ARRAY_SIZE(want));
	json_decref(j);
	/* No image at all: the defaults only. */
	f.in.image = NULL;
	f.c.n_envs = 0;
	f.c.command = (char **)COMMAND;
	f.c.n_command = 2;
	j = build_ok(&f);
	ck_assert_uint_eq(json_array_size(jget(j, "process.env")), 2);
	ck_assert_str_eq(jstr(j, "process.cwd"), "/");
	json_decref(j);
}
END_TEST

START_TEST(test_env_invalid)
{
	struct fx f;

	fx_init(&f);
	set_env(&f, 0, "OK", "1");
	set_env(&f, 1, "", "x");
	build_fails(&f, CRID_INVALID_ARGUMENT, "envs[1].key");
	set_env(&f, 1, "A=B", "x");
	build_fails(&f, CRID_INVALID_ARGUMENT, "envs[1].key");
	set_env(&f, 1, "K\xc3", "x");
	build_fails(&f, CRID_INVALID_ARGUMENT, "envs[1].key");
	set_env(&f, 1, "NUL", "x");
	f.kv[1].value.data = (uint8_t *)"a\0b";
	f.kv[1].value.len = 3;
	build_fails(&f, CRID_INVALID_ARGUMENT, "envs[1].value");
	f.kv[1].value.data = (uint8_t *)"\xff\xfe";
	f.kv[1].value.len = 2;
	build_fails(&f, CRID_INVALID_ARGUMENT, "envs[1].value");
	f.kv[1].value.data = (uint8_t *)"caf\xc3\xa9";
	f.kv[1].value.len = 5;
	json_decref(build_ok(&f));
}
END_TEST

/* ---- working directory, user, root, hostname ---- */

START_TEST(test_cwd)
{
	struct fx f;
	json_t *j;

	fx_init(&f);
	j = build_ok(&f);
	ck_assert_str_eq(jstr(j, "process.cwd"), "/app");
	json_decref(j);
	f.c.working_dir = "/work";
	j = build_ok(&f);
	ck_assert_str_eq(jstr(j, "process.cwd"), "/work");
	json_decref(j);
	f.c.working_dir = "";
	f.img.working_dir = NULL;
	j = build_ok(&f);
	ck_assert_str_eq(jstr(j, "process.cwd"), "/");
	json_decref(j);
	f.img.working_dir = "srv/app";
	j = build_ok(&f);
	ck_assert_str_eq(jstr(j, "process.cwd"), "/srv/app");
	json_decref(j);
	f.c.working_dir = "relative";
	build_fails(&f, CRID_INVALID_ARGUMENT, "working_dir");
}
END_TEST

START_TEST(test_user)
{
	static int64_t supp[] = { 20, 30 };
	struct fx f;
	json_t *j;

	fx_init(&f);
	f.sc.supplemental_groups = supp;
	f.sc.n_supplemental_groups = 2;
	j = build_ok(&f);
	ck_assert_int_eq(jint(j, "process.user.uid"), 1000);
	ck_assert_int_eq(jint(j, "process.user.gid"), 1000);
	assert_gids(j, (const json_int_t[]){ 1000, 10, 20, 30 }, 4);
	json_decref(j);

	f.sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
	j = build_ok(&f);
	assert_gids(j, (const json_int_t[]){ 1000, 20, 30 }, 3);
	json_decref(j);

	f.in.user = NULL;
	f.sc.n_supplemental_groups = 0;
	j = build_ok(&f);
	ck_assert_int_eq(jint(j, "process.user.uid"), 0);
	ck_assert_int_eq(jint(j, "process.user.gid"), 0);
	assert_gids(j, (const json_int_t[]){ 0 }, 1);
	json_decref(j);

	supp[1] = -1;
	f.sc.n_supplemental_groups = 2;
	build_fails(&f, CRID_INVALID_ARGUMENT, "linux.security_context.supplemental_groups[1]");
	supp[1] = 30;
}
END_TEST

START_TEST(test_root_and_terminal)
{
	struct fx f;
	json_t *j;

	fx_init(&f);
	j = build_ok(&f);
	ck_assert_str_eq(jstr(j, "ociVersion"), "1.0.2");
	ck_assert_str_eq(jstr(j, "root.path"), "/run/crid/containers/c1/rootfs");
	ck_assert(json_is_false(jget(j, "root.readonly")));
	ck_assert(json_is_false(jget(j, "process.terminal")));
	ck_assert(json_is_false(jget(j, "process.noNewPrivileges")));
	ck_assert(mount_opt(find_mount(j, "/etc/hosts"), "rw"));
	ck_assert_str_eq(jstr(j, "hostname"), "pod-1");
	ck_assert_str_eq(jstr(j, "linux.cgroupsPath"), "/kubepods/podu1/c1");
	json_decref(j);

	f.in.readonly_rootfs = true;
	f.c.tty = 1;
	f.sc.no_new_privs = 1;
	j = build_ok(&f);
	ck_assert(json_is_true(jget(j, "root.readonly")));
	ck_assert(json_is_true(jget(j, "process.terminal")));
	ck_assert(json_is_true(jget(j, "process.noNewPrivileges")));
	json_decref(j);

	f.in.readonly_rootfs = false;
	f.sc.readonly_rootfs = 1;
	j = build_ok(&f);
	ck_assert(json_is_true(jget(j, "root.readonly")));
	/* The pod's files follow a read-only root (containerd). */
	ck_assert(mount_opt(find_mount(j, "/etc/hosts"), "ro"));
	ck_assert(mount_opt(find_mount(j, "/etc/resolv.conf"), "ro"));
	ck_assert(mount_opt(find_mount(j, "/etc/hostname"), "ro"));
	ck_assert(!mount_opt(find_mount(j, "/dev/shm"), "ro"));
	json_decref(j);
}
END_TEST

START_TEST(test_rlimits)
{
	struct fx f;
	json_t *j, *rl;

	fx_init(&f);
	j = build_ok(&f);
	rl = json_array_get(jget(j, "process.rlimits"), 0);
	ck_assert_str_eq(jstr(rl, "type"), "RLIMIT_NOFILE");
	ck_assert_int_gt(jint(rl, "hard"), 0);
	ck_assert_int_le(jint(rl, "hard"), 1048576);
	ck_assert_int_eq(jint(rl, "soft"), jint(rl, "hard"));
	json_decref(j);
}
END_TEST

/* ---- mounts ---- */

START_TEST(test_default_mounts)
{
	struct fx f;
	json_t *j, *m;

	fx_init(&f);
	j = build_ok(&f);
	m = find_mount(j, "/proc");
	ck_assert_str_eq(jstr(m, "type"), "proc");
	ck_assert(mount_opt(m, "nosuid") && mount_opt(m, "noexec") && mount_opt(m, "nodev"));
	m = find_mount(j, "/dev");
	ck_assert_str_eq(jstr(m, "type"), "tmpfs");
	ck_assert(mount_opt(m, "mode=755") && mount_opt(m, "strictatime") && mount_opt(m, "size=65536k"));
	m = find_mount(j, "/dev/pts");
	ck_assert_str_eq(jstr(m, "type"), "devpts");
	ck_assert(mount_opt(m, "newinstance") && mount_opt(m, "ptmxmode=0666") && mount_opt(m, "gid=5"));
	m = find_mount(j, "/dev/mqueue");
	ck_assert_str_eq(jstr(m, "type"), "mqueue");
	m = find_mount(j, "/sys");
	ck_assert_str_eq(jstr(m, "type"), "sysfs");
	ck_assert(mount_opt(m, "ro"));
	m = find_mount(j, "/sys/fs/cgroup");
	ck_assert_str_eq(jstr(m, "type"), "cgroup");
	ck_assert(mount_opt(m, "ro") && mount_opt(m, "relatime"));
	/* The pod's files and /dev/shm. */
	m = find_mount(j, "/dev/shm");
	ck_assert_str_eq(jstr(m, "type"), "bind");
	ck_assert_str_eq(jstr(m, "source"), "/run/crid/pods/p1/shm");
	ck_assert(mount_opt(m, "rbind") && mount_opt(m, "rw"));
	ck_assert_str_eq(jstr(find_mount(j, "/etc/hosts"), "source"), "/run/crid/pods/p1/hosts");
	ck_assert_str_eq(jstr(find_mount(j, "/etc/resolv.conf"), "source"), "/run/crid/pods/p1/resolv.conf");
	ck_assert_str_eq(jstr(find_mount(j, "/etc/hostname"), "source"), "/run/crid/pods/p1/hostname");
	ck_assert(mount_opt(find_mount(j, "/etc/hostname"), "rbind"));
	ck_assert(mount_opt(find_mount(j, "/etc/hostname"), "rprivate"));
	ck_assert_ptr_null(jget(j, "linux.rootfsPropagation"));
	json_decref(j);

	/* Without pod files: a private /dev/shm, no /etc binds. */
	f.in.shm_path = NULL;
	f.in.hosts_file = f.in.resolv_conf_file = f.in.hostname_file = NULL;
	j = build_ok(&f);
	m = find_mount(j, "/dev/shm");
	ck_assert_str_eq(jstr(m, "type"), "tmpfs");
	ck_assert(mount_opt(m, "mode=1777") && mount_opt(m, "nosuid") && mount_opt(m, "noexec"));
	ck_assert_ptr_null(find_mount(j, "/etc/hosts"));
	ck_assert_ptr_null(find_mount(j, "/etc/resolv.conf"));
	ck_assert_ptr_null(find_mount(j, "/etc/hostname"));
	json_decref(j);
}
END_TEST

START_TEST(test_bind_mounts)
{
	struct fx f;
	json_t *j, *m;

	fx_init(&f);
	add_mount(&f, "/data", "/srv/data")->readonly = 1;
	add_mount(&f, "/cache/", "/srv/cache");
	add_mount(&f, "/in", "/srv/in")->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
	j = build_ok(&f);
	m = find_mount(j, "/data");
	ck_assert_str_eq(jstr(m, "type"), "bind");
	ck_assert_str_eq(jstr(m, "source"), "/srv/data");
	ck_assert(mount_opt(m, "rbind") && mount_opt(m, "rprivate") && mount_opt(m, "ro") && !mount_opt(m, "rw"));
	m = find_mount(j, "/cache"); /* cleaned */
	ck_assert_ptr_nonnull(m);
	ck_assert(mount_opt(m, "rw") && !mount_opt(m, "ro"));
	m = find_mount(j, "/in");
	ck_assert(mount_opt(m, "rslave") && !mount_opt(m, "rprivate"));
	ck_assert_str_eq(jstr(j, "linux.rootfsPropagation"), "rslave");
	json_decref(j);

	add_mount(&f, "/out", "/srv/out")->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL;
	f.m[3].selinux_relabel = 1;
	j = build_ok(&f);
	ck_assert(mount_opt(find_mount(j, "/out"), "rshared"));
	ck_assert_str_eq(jstr(j, "linux.rootfsPropagation"), "rshared");
	json_decref(j);
}
END_TEST

START_TEST(test_recursive_read_only)
{
	struct fx f;
	json_t *j;
	Runtime__V1__Mount *m;

	fx_init(&f);
	m = add_mount(&f, "/ro", "/srv/ro");
	m->readonly = 1;
	m->recursive_read_only = 1;
	j = build_ok(&f);
	ck_assert(mount_opt(find_mount(j, "/ro"), "rro"));
	json_decref(j);
	m->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[0].recursive_read_only");
	m->propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE;
	m->readonly = 0;
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[0].recursive_read_only");
}
END_TEST

START_TEST(test_config_mounts_replace_defaults)
{
	struct fx f;
	json_t *j;

	fx_init(&f);
	add_mount(&f, "/etc/hosts", "/srv/my-hosts");
	add_mount(&f, "/dev/shm", "/srv/shm");
	add_mount(&f, "//etc/./resolv.conf", "/srv/resolv");
	j = build_ok(&f);
	ck_assert_str_eq(jstr(find_mount(j, "/etc/hosts"), "source"), "/srv/my-hosts");
	ck_assert_str_eq(jstr(find_mount(j, "/dev/shm"), "source"), "/srv/shm");
	ck_assert_str_eq(jstr(find_mount(j, "/etc/resolv.conf"), "source"), "/srv/resolv");
	ck_assert_str_eq(jstr(find_mount(j, "/etc/hostname"), "source"), "/run/crid/pods/p1/hostname");
	json_decref(j);

	/* A /dev of the config's replaces every default under /dev. */
	fx_init(&f);
	add_mount(&f, "/dev", "/srv/dev");
	j = build_ok(&f);
	ck_assert_str_eq(jstr(find_mount(j, "/dev"), "source"), "/srv/dev");
	ck_assert_ptr_null(find_mount(j, "/dev/pts"));
	ck_assert_ptr_null(find_mount(j, "/dev/shm"));
	ck_assert_ptr_null(find_mount(j, "/dev/mqueue"));
	ck_assert_ptr_nonnull(find_mount(j, "/proc"));
	json_decref(j);
}
END_TEST

START_TEST(test_mounts_sorted)
{
	struct fx f;
	json_t *j, *m;
	size_t i, prev = 0, data = SIZE_MAX, sub = SIZE_MAX;

	fx_init(&f);
	add_mount(&f, "/data/sub/deeper", "/srv/deeper");
	add_mount(&f, "/data/sub", "/srv/sub");
	add_mount(&f, "/data", "/srv/data");
	j = build_ok(&f);
	json_array_foreach(json_object_get(j, "mounts"), i, m) {
		const char *d = jstr(m, "destination");
		size_t depth = 0;

		for (const char *p = d; *p; p++)
			depth += *p == '/';
		ck_assert_msg(depth >= prev, "%s comes after a deeper mount", d);
		prev = depth;
		if (strcmp(d, "/data") == 0)
			data = i;
		if (strcmp(d, "/data/sub") == 0)
			sub = i;
	}
	ck_assert_uint_lt(data, sub);
	/* The defaults keep their order among equals: /dev before /dev/pts. */
	ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "mounts"), 0), "destination"), "/proc");
	json_decref(j);
}
END_TEST

START_TEST(test_mount_errors)
{
	struct fx f;
	Runtime__V1__ImageSpec image;

	fx_init(&f);
	add_mount(&f, "/ok", "/srv/ok");
	add_mount(&f, "/x", "relative/path");
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[1].host_path");
	f.m[1].host_path = "";
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[1].host_path");
	f.m[1].host_path = "/srv/x";
	f.m[1].container_path = "x";
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[1].container_path");
	f.m[1].container_path = "";
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[1].container_path");
	f.m[1].container_path = "/ok/";
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[1].container_path /ok is also mounts[0]'s");
	f.m[1].container_path = "/a/..";
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[1].container_path");
	f.m[1].container_path = "/x";
	runtime__v1__image_spec__init(&image);
	image.image = "docker.io/library/busybox:latest";
	f.m[1].image = &image;
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[1]: host_path and image are mutually exclusive");
	f.m[1].host_path = "";
	/* The caller mounts image volumes; the spec binds what it made. */
	build_fails(&f, CRID_INTERNAL, "mounts[1].image");
	{
		char *sources[] = { NULL, "/run/crid/containers/c1/mounts/1" };
		json_t *j;

		f.in.mount_sources = sources;
		j = build_ok(&f);
		ck_assert_str_eq(jstr(find_mount(j, "/x"), "source"), "/run/crid/containers/c1/mounts/1");
		ck_assert(mount_opt(find_mount(j, "/x"), "ro"));
		ck_assert_str_eq(jstr(find_mount(j, "/ok"), "source"), "/srv/ok");
		json_decref(j);
		f.in.mount_sources = NULL;
	}
	f.m[1].image = NULL;
	f.m[1].host_path = "/srv/x";
	f.m[1].image_sub_path = "sub";
	build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[1].image_sub_path needs image");
	f.m[1].image_sub_path = "";
	{
		char *opts[] = { "noexec", "nosuid" }, *bad[] = { "remount" };
		json_t *j;

		f.m[1].mount_options = opts;
		f.m[1].n_mount_options = 2;
		j = build_ok(&f);
		ck_assert(mount_opt(find_mount(j, "/x"), "noexec") && mount_opt(find_mount(j, "/x"), "nosuid"));
		json_decref(j);
		f.m[1].mount_options = bad;
		f.m[1].n_mount_options = 1;
		build_fails(&f, CRID_INVALID_ARGUMENT, "mounts[1].mount_options[0]");
		f.m[1].n_mount_options = 0;
	}
}
END_TEST

/* ---- namespaces ---- */

START_TEST(test_namespaces_pod)
{
	struct fx f;
	json_t *j, *n;

	fx_init(&f);
	f.in.ns.pid = "/proc/42/ns/pid";
	j = build_ok(&f);
	ck_assert_str_eq(jstr(find_ns(j, "pid"), "path"), "/proc/42/ns/pid");
	ck_assert_str_eq(jstr(find_ns(j, "network"), "path"), "/run/crid/pods/p1/ns/net");
	ck_assert_str_eq(jstr(find_ns(j, "ipc"), "path"), "/run/crid/pods/p1/ns/ipc");
	ck_assert_str_eq(jstr(find_ns(j, "uts"), "path"), "/run/crid/pods/p1/ns/uts");
	n = find_ns(j, "mount");
	ck_assert_ptr_nonnull(n);
	ck_assert_ptr_null(json_object_get(n, "path"));
	ck_assert_ptr_null(find_ns(j, "cgroup"));
	ck_assert_ptr_null(find_ns(j, "user"));
	json_decref(j);

	/* The container asks for its own PID namespace. */
	f.nsopt.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	j = build_ok(&f);
	n = find_ns(j, "pid");
	ck_assert_ptr_nonnull(n);
	ck_assert_ptr_null(json_object_get(n, "path"));
	json_decref(j);

	/* A pod that shares none: a new one too. */
	f.nsopt.pid = RUNTIME__V1__NAMESPACE_MODE__POD;
	f.in.ns.pid = NULL;
	j = build_ok(&f);
	n = find_ns(j, "pid");
	ck_assert_ptr_nonnull(n);
	ck_assert_ptr_null(json_object_get(n, "path"));
	json_decref(j);

	/* TARGET: the caller passes the target's namespace. */
	f.nsopt.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	f.nsopt.target_id = "abc";
	build_fails(&f, CRID_INVALID_ARGUMENT, "namespace_options.pid");
	f.in.ns.pid = "/proc/77/ns/pid";
	j = build_ok(&f);
	ck_assert_str_eq(jstr(find_ns(j, "pid"), "path"), "/proc/77/ns/pid");
	json_decref(j);
}
END_TEST

START_TEST(test_namespaces_host)
{
	struct fx f;
	json_t *j;

	fx_init(&f);
	f.in.ns.host_network = f.in.ns.host_ipc = f.in.ns.host_pid = true;
	f.in.ns.network = f.in.ns.ipc = f.in.ns.uts = NULL;
	f.nsopt.network = f.nsopt.pid = f.nsopt.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
	j = build_ok(&f);
	ck_assert_ptr_null(find_ns(j, "pid"));
	ck_assert_ptr_null(find_ns(j, "network"));
	ck_assert_ptr_null(find_ns(j, "ipc"));
	ck_assert_ptr_null(find_ns(j, "uts"));
	ck_assert_ptr_nonnull(find_ns(j, "mount"));
	/* runc refuses a hostname with the host's UTS namespace. */
	ck_assert_ptr_null(json_object_get(j, "hostname"));
	ck_assert(arr_has(jget(j, "process.env"), "HOSTNAME=pod-1"));
	json_decref(j);

	/* No hostname given: the host's. */
	f.in.hostname = NULL;
	j = build_ok(&f);
	{
		char host[256] = "", want[300];

		gethostname(host, sizeof(host) - 1);
		snprintf(want, sizeof(want), "HOSTNAME=%s", host);
		ck_assert(arr_has(jget(j, "process.env"), want));
	}
	json_decref(j);

	/* A path and a host flag: the host wins. */
	f.in.ns.network = "/run/x/net";
	j = build_ok(&f);
	ck_assert_ptr_null(find_ns(j, "network"));
	json_decref(j);
}
END_TEST

START_TEST(test_namespaces_inconsistent)
{
	struct fx f;
	Runtime__V1__UserNamespace u;

	fx_init(&f);
	f.in.ns.network = NULL;
	build_fails(&f, CRID_INTERNAL, "network namespace");
	fx_init(&f);
	f.in.ns.ipc = NULL;
	build_fails(&f, CRID_INTERNAL, "IPC namespace");
	fx_init(&f);
	runtime__v1__user_namespace__init(&u);
	u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	f.nsopt.userns_options = &u;
	f.in.userns = &u;
	f.in.userns_path = "/run/crid/pods/p1/ns/user";
	f.sc.privileged = 1;
	f.psc.privileged = 1;
	build_fails(&f, CRID_INVALID_ARGUMENT, "privileged: not with a user namespace");
}
END_TEST

START_TEST(test_namespaces_user)
{
	Runtime__V1__IDMapping m = RUNTIME__V1__IDMAPPING__INIT, *mp[1] = { &m };
	Runtime__V1__UserNamespace u;
	struct fx f;
	json_t *j, *a;

	fx_init(&f);
	runtime__v1__user_namespace__init(&u);
	u.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	m.host_id = 65536;
	m.container_id = 0;
	m.length = 65536;
	u.uids = u.gids = mp;
	u.n_uids = u.n_gids = 1;
	f.in.userns = &u;
	f.in.userns_path = "/run/crid/pods/p1/ns/user";
	j = build_ok(&f);
	/* Joined first, with the mappings the runtime needs. */
	ck_assert_str_eq(jstr(json_array_get(jget(j, "linux.namespaces"), 0), "type"), "user");
	ck_assert_str_eq(jstr(find_ns(j, "user"), "path"), "/run/crid/pods/p1/ns/user");
	a = jget(j, "linux.uidMappings");
	ck_assert_uint_eq(json_array_size(a), 1);
	ck_assert_int_eq(jint(json_array_get(a, 0), "hostID"), 65536);
	ck_assert_int_eq(jint(json_array_get(a, 0), "containerID"), 0);
	ck_assert_int_eq(jint(json_array_get(a, 0), "size"), 65536);
	ck_assert_uint_eq(json_array_size(jget(j, "linux.gidMappings")), 1);
	/* procMount Unmasked: the kubelet's two empty lists, only honoured
	 * in a user namespace (outside, they mean "not sent"). */
	ck_assert_ptr_null(jget(j, "linux.maskedPaths"));
	ck_assert_ptr_null(jget(j, "linux.readonlyPaths"));
	json_decref(j);
	{
		static char *masked[] = { "/proc/kcore" };

		f.sc.masked_paths = masked;
		f.sc.n_masked_paths = 1;
		j = build_ok(&f);
		assert_strv(jget(j, "linux.maskedPaths"), (const char *const[]){ "/proc/kcore" }, 1);
		json_decref(j);
		f.sc.n_masked_paths = 0;
	}
	f.in.userns = NULL;
	f.in.userns_path = NULL;
	j = build_ok(&f);
	ck_assert_ptr_null(find_ns(j, "user"));
	ck_assert_ptr_null(jget(j, "linux.uidMappings"));
	ck_assert_uint_gt(json_array_size(jget(j, "linux.maskedPaths")), 5);
	json_decref(j);
}
END_TEST

/* ---- resources ---- */

START_TEST(test_resources_mapping)
{
	Runtime__V1__LinuxContainerResources r;
	Runtime__V1__HugepageLimit h[2], *hp[2] = { &h[0], &h[1] };
	struct crid_err e = { 0 };
	json_t *j = NULL, *hl;

	runtime__v1__linux_container_resources__init(&r);
	runtime__v1__hugepage_limit__init(&h[0]);
	runtime__v1__hugepage_limit__init(&h[1]);
	r.cpu_shares = 512;
	r.cpu_quota = 50000;
	r.cpu_period = 100000;
	r.cpuset_cpus = "0-1,3";
	r.cpuset_mems = "0";
	r.memory_limit_in_bytes = 128 << 20;
	r.memory_swap_limit_in_bytes = 256 << 20;
	h[0].page_size = "2MB";
	h[0].limit = 0;
	h[1].page_size = "1GB";
	h[1].limit = 1ULL << 30;
	r.hugepage_limits = hp;
	r.n_hugepage_limits = 2;
	r.oom_score_adj = 500;
	ck_assert_int_eq(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_int_eq(jint(j, "cpu.shares"), 512);
	ck_assert_int_eq(jint(j, "cpu.quota"), 50000);
	ck_assert_int_eq(jint(j, "cpu.period"), 100000);
	ck_assert_str_eq(jstr(j, "cpu.cpus"), "0-1,3");
	ck_assert_str_eq(jstr(j, "cpu.mems"), "0");
	ck_assert_int_eq(jint(j, "memory.limit"), 128 << 20);
	ck_assert_int_eq(jint(j, "memory.swap"), 256 << 20);
	hl = json_object_get(j, "hugepageLimits");
	ck_assert_uint_eq(json_array_size(hl), 2);
	ck_assert_str_eq(jstr(json_array_get(hl, 0), "pageSize"), "2MB");
	ck_assert_int_eq(jint(json_array_get(hl, 0), "limit"), 0);
	ck_assert_str_eq(jstr(json_array_get(hl, 1), "pageSize"), "1GB");
	ck_assert_int_eq(jint(json_array_get(hl, 1), "limit"), 1 << 30);
	ck_assert_ptr_null(json_object_get(j, "oomScoreAdj"));
	ck_assert_ptr_null(json_object_get(j, "unified"));
	json_decref(j);
}
END_TEST

START_TEST(test_resources_unset)
{
	Runtime__V1__LinuxContainerResources r;
	struct crid_err e = { 0 };
	json_t *j = NULL;

	ck_assert_int_eq(crid_spec_resources(NULL, NULL, &j, &e), 0);
	ck_assert(json_is_object(j) && json_object_size(j) == 0);
	json_decref(j);
	runtime__v1__linux_container_resources__init(&r);
	ck_assert_int_eq(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_uint_eq(json_object_size(j), 0);
	json_decref(j);
	/* Only a quota (-1: unlimited), only memory without swap. */
	r.cpu_quota = -1;
	r.memory_limit_in_bytes = 1 << 20;
	ck_assert_int_eq(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_int_eq(jint(j, "cpu.quota"), -1);
	ck_assert_ptr_null(jget(j, "cpu.shares"));
	ck_assert_ptr_null(jget(j, "cpu.period"));
	ck_assert_ptr_null(jget(j, "memory.swap"));
	json_decref(j);
}
END_TEST

START_TEST(test_resources_errors)
{
	Runtime__V1__LinuxContainerResources r;
	Runtime__V1__HugepageLimit h, *hp[1] = { &h };
	struct crid_err e = { 0 };
	json_t *j = NULL;
	struct fx f;

	runtime__v1__linux_container_resources__init(&r);
	r.cpu_shares = -2;
	ck_assert_int_lt(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_int_eq(e.status, CRID_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "cpu_shares"));
	r.cpu_shares = 0;
	r.cpu_period = -1;
	ck_assert_int_lt(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "cpu_period"));
	r.cpu_period = 0;
	r.cpuset_cpus = "0-a";
	ck_assert_int_lt(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "cpuset_cpus"));
	r.cpuset_cpus = "";
	r.cpuset_mems = "1,";
	ck_assert_int_lt(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "cpuset_mems"));
	r.cpuset_mems = "";
	r.memory_limit_in_bytes = -5;
	ck_assert_int_lt(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "memory_limit_in_bytes"));
	r.memory_limit_in_bytes = 0;
	r.memory_swap_limit_in_bytes = -5;
	ck_assert_int_lt(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "memory_swap_limit_in_bytes"));
	r.memory_swap_limit_in_bytes = 0;
	runtime__v1__hugepage_limit__init(&h);
	r.hugepage_limits = hp;
	r.n_hugepage_limits = 1;
	ck_assert_int_lt(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "hugepage_limits[0].page_size"));
	h.page_size = "../x";
	ck_assert_int_lt(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "hugepage_limits[0].page_size"));
	h.page_size = "2MB";
	h.limit = UINT64_MAX;
	ck_assert_int_lt(crid_spec_resources(&r, NULL, &j, &e), 0);
	ck_assert_ptr_nonnull(strstr(e.msg, "hugepage_limits[0].limit"));
	ck_assert_ptr_null(j);

	/* Through crid_spec_build, the path to the field. */
	fx_init(&f);
	f.res.cpu_shares = -2;
	build_fails(&f, CRID_INVALID_ARGUMENT, "linux.resources.cpu_shares");
}
END_TEST

static bool hugetlb_present(void)
{
	char line[512] = "";
	FILE *f;
	bool v2;

	if (access("/sys/fs/cgroup/hugetlb", F_OK) == 0)
		return true;
	f = fopen("/sys/fs/cgroup/cgroup.controllers", "re");
	if (!f)
		return false;
	v2 = fgets(line, sizeof(line), f) && strstr(line, "hugetlb");
	fclose(f);
	return v2;
}

START_TEST(test_resources_in_spec)
{
	Runtime__V1__HugepageLimit h, *hp[1] = { &h };
	struct fx f;
	json_t *j, *rules;

	fx_init(&f);
	runtime__v1__hugepage_limit__init(&h);
	h.page_size = "2MB";
	f.res.cpu_shares = 2;
	f.res.cpu_quota = 20000;
	f.res.cpu_period = 100000;
	f.res.cpuset_cpus = "0";
	f.res.memory_limit_in_bytes = 64 << 20;
	f.res.hugepage_limits = hp;
	f.res.n_hugepage_limits = 1;
	j = build_ok(&f);
	ck_assert_int_eq(jint(j, "linux.resources.cpu.shares"), 2);
	ck_assert_int_eq(jint(j, "linux.resources.cpu.quota"), 20000);
	ck_assert_int_eq(jint(j, "linux.resources.cpu.period"), 100000);
	ck_assert_str_eq(jstr(j, "linux.resources.cpu.cpus"), "0");
	ck_assert_int_eq(jint(j, "linux.resources.memory.limit"), 64 << 20);
	/* Hugepage limits only where a hugetlb controller can enforce them. */
	ck_assert(hugetlb_present() == (jget(j, "linux.resources.hugepageLimits") != NULL) || !f.host.hugetlb);
	f.host.hugetlb = false;
	json_decref(j);
	j = build_ok(&f);
	ck_assert_ptr_null(jget(j, "linux.resources.hugepageLimits"));
	f.host.hugetlb = true;
	json_decref(j);
	j = build_ok(&f);
	ck_assert_ptr_nonnull(jget(j, "linux.resources.hugepageLimits"));
	/* Device rules: deny all first, then the standard devices. */
	rules = jget(j, "linux.resources.devices");
	ck_assert_uint_gt(json_array_size(rules), 5);
	ck_assert(json_is_false(json_object_get(json_array_get(rules, 0), "allow")));
	ck_assert_str_eq(jstr(json_array_get(rules, 0), "access"), "rwm");
	{
		bool null_dev = false, pts = false;
		size_t i;
		json_t *r;

		json_array_foreach(rules, i, r) {
			json_t *maj = json_object_get(r, "major"), *min = json_object_get(r, "minor");

			if (json_is_true(json_object_get(r, "allow")) && maj && json_integer_value(maj) == 1 && min &&
			    json_integer_value(min) == 3)
				null_dev = true;
			if (json_is_true(json_object_get(r, "allow")) && maj && json_integer_value(maj) == 136 && !min)
				pts = true;
		}
		ck_assert(null_dev && pts);
	}
	ck_assert_ptr_null(jget(j, "linux.devices"));
	ck_assert_ptr_null(jget(j, "linux.sysctl"));
	ck_assert_ptr_null(jget(j, "linux.seccomp"));
	json_decref(j);
}
END_TEST

START_TEST(test_oom_score_adj)
{
	static const struct {
		int64_t in, floor;
		int64_t want; /* -2000: absent */
	} cases[] = {
		/* Without CAP_SYS_RESOURCE, no lower than crid's own. */
		{ -997, 0, 0 }, { -1, 0, 0 }, { -997, -999, -997 }, { -997, -500, -500 }, { 0, 0, -2000 },
		{ 1, 0, 1 },	{ 500, 0, 500 }, { 1000, 0, 1000 },
	};
	struct fx f;

	fx_init(&f);
	for (size_t i = 0; i < CRID_ARRAY_SIZE(cases); i++) {
		json_t *j;

		f.res.oom_score_adj = cases[i].in;
		f.host.oom_floor = (int)cases[i].floor;
		j = build_ok(&f);
		if (cases[i].want == -2000)
			ck_assert_msg(jget(j, "process.oomScoreAdj") == NULL, "oomScoreAdj for %lld",
				      (long long)cases[i].in);
		else
			ck_assert_int_eq(jint(j, "process.oomScoreAdj"), cases[i].want);
		json_decref(j);
	}
	f.res.oom_score_adj = 1001;
	build_fails(&f, CRID_INVALID_ARGUMENT, "linux.resources.oom_score_adj");
	f.res.oom_score_adj = -1001;
	build_fails(&f, CRID_INVALID_ARGUMENT, "linux.resources.oom_score_adj");
	f.res.oom_score_adj = 0;
	/* No resources at all. */
	f.lc.resources = NULL;
	json_decref(build_ok(&f));
}
END_TEST

/* ---- privileged, masked paths, security profiles ---- */

START_TEST(test_masked_paths_default)
{
	static const char *const masked[] = { "/proc/acpi",	   "/proc/kcore",      "/proc/keys",
					      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
					      "/proc/sched_debug",   "/proc/scsi",	      "/sys/firmware" };
	static const char *const ro[] = { "/proc/asound", "/proc/bus", "/proc/fs",
					  "/proc/irq",	  "/proc/sys", "/proc/sysrq-trigger" };
	static char *given_m[] = { "/proc/only" }, *given_r[] = { "/proc/ro-only" };
	struct fx f;
	json_t *j;

	fx_init(&f);
	j = build_ok(&f);
	for (size_t i = 0; i < CRID_ARRAY_SIZE(masked); i++)
		ck_assert_msg(arr_has(jget(j, "linux.maskedPaths"), masked[i]), "%s not masked", masked[i]);
	ck_assert_uint_eq(json_array_size(jget(j, "linux.readonlyPaths")), CRID_ARRAY_SIZE(ro));
	for (size_t i = 0; i < CRID_ARRAY_SIZE(ro); i++)
		ck_assert(arr_has(jget(j, "linux.readonlyPaths"), ro[i]));
	json_decref(j);

	/* The kubelet's lists replace the defaults. */
	f.sc.masked_paths = given_m;
	f.sc.n_masked_paths = 1;
	f.sc.readonly_paths = given_r;
	f.sc.n_readonly_paths = 1;
	j = build_ok(&f);
	assert_strv(jget(j, "linux.maskedPaths"), (const char *const[]){ "/proc/only" }, 1);
	assert_strv(jget(j, "linux.readonlyPaths"), (const char *const[]){ "/proc/ro-only" }, 1);
	json_decref(j);
	given_m[0] = "proc/x";
	build_fails(&f, CRID_INVALID_ARGUMENT, "linux.security_context.masked_paths[0]");
	given_m[0] = "/proc/only";
}
END_TEST

START_TEST(test_privileged)
{
	struct fx f;
	json_t *j, *rules;

	fx_init(&f);
	f.sc.privileged = 1;
	build_fails(&f, CRID_INVALID_ARGUMENT, "linux.security_context.privileged");
	f.in.pod_linux = NULL;
	build_fails(&f, CRID_INVALID_ARGUMENT, "linux.security_context.privileged");
	f.in.pod_linux = &f.pod;
	f.psc.privileged = 1;
	j = build_ok(&f);
	ck_assert_ptr_null(jget(j, "linux.maskedPaths"));
	ck_assert_ptr_null(jget(j, "linux.readonlyPaths"));
	ck_assert(mount_opt(find_mount(j, "/sys"), "rw") && !mount_opt(find_mount(j, "/sys"), "ro"));
	ck_assert(mount_opt(find_mount(j, "/sys/fs/cgroup"), "rw"));
	rules = jget(j, "linux.resources.devices");
	ck_assert_uint_eq(json_array_size(rules), 1);
	ck_assert(json_is_true(json_object_get(json_array_get(rules, 0), "allow")));
	ck_assert_str_eq(jstr(json_array_get(rules, 0), "access"), "rwm");
	/* The host's devices, /dev/null among them; never /dev/console. */
	{
		size_t i;
		json_t *d;
		bool null_dev = false;

		json_array_foreach(jget(j, "linux.devices"), i, d) {
			const char *p = jstr(d, "path");

			ck_assert_str_ne(p, "/dev/console");
			ck_assert_msg(strncmp(p, "/dev/pts/", 9) != 0, "%s", p);
			if (strcmp(p, "/dev/null") == 0) {
				null_dev = true;
				ck_assert_str_eq(jstr(d, "type"), "c");
				ck_assert_int_eq(jint(d, "major"), 1);
				ck_assert_int_eq(jint(d, "minor"), 3);
			}
		}
		ck_assert(null_dev || access("/dev/null", F_OK) != 0);
	}
	json_decref(j);
}
END_TEST

START_TEST(test_security_profiles)
{
	Runtime__V1__SecurityProfile sp;
	Runtime__V1__SELinuxOption se = RUNTIME__V1__SELINUX_OPTION__INIT;
	struct fx f;
	json_t *j;

	fx_init(&f);
	runtime__v1__security_profile__init(&sp);
	/* AppArmor RuntimeDefault and Unconfined on a host without AppArmor:
	 * nothing to apply. */
	f.sc.apparmor = &sp;
	j = build_ok(&f);
	ck_assert_ptr_null(jget(j, "process.apparmorProfile"));
	json_decref(j);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	json_decref(build_ok(&f));
	/* A profile that must be enforced cannot be. */
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	sp.localhost_ref = "k8s-nginx";
	build_fails(&f, CRID_FAILED_PRECONDITION, "linux.security_context.apparmor: localhost profile k8s-nginx");
	/* With AppArmor: the named profile, or crid's for RuntimeDefault. */
	f.host.apparmor = true;
	j = build_ok(&f);
	ck_assert_str_eq(jstr(j, "process.apparmorProfile"), "k8s-nginx");
	json_decref(j);
	sp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault;
	build_fails(&f, CRID_FAILED_PRECONDITION, "crid-default is not loaded");
	f.host.apparmor_default = true;
	j = build_ok(&f);
	ck_assert_str_eq(jstr(j, "process.apparmorProfile"), "crid-default");
	json_decref(j);
	f.sc.apparmor = NULL;
	j = build_ok(&f);
	ck_assert_str_eq(jstr(j, "process.apparmorProfile"), "crid-default");
	json_decref(j);
	f.host.apparmor = f.host.apparmor_default = false;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	f.sc.apparmor_profile = "runtime/default";
	json_decref(build_ok(&f));
	f.sc.apparmor_profile = "localhost/k8s-nginx";
	build_fails(&f, CRID_FAILED_PRECONDITION, "AppArmor is not enabled");
	f.sc.apparmor_profile = "whatever";
	build_fails(&f, CRID_INVALID_ARGUMENT, "apparmor_profile");
	f.sc.apparmor_profile = "";
#pragma GCC diagnostic pop

	/* SELinux options: refused without SELinux, a label with it. */
	se.type = "spc_t";
	se.level = "s0:c1,c2";
	f.sc.selinux_options = &se;
	build_fails(&f, CRID_FAILED_PRECONDITION, "selinux_options");
	f.host.selinux = true;
	j = build_ok(&f);
	ck_assert_str_eq(jstr(j, "process.selinuxLabel"), "system_u:system_r:spc_t:s0:c1,c2");
	ck_assert_str_eq(jstr(j, "linux.mountLabel"), "system_u:object_r:container_file_t:s0:c1,c2");
	json_decref(j);
	se.type = "a b";
	build_fails(&f, CRID_INVALID_ARGUMENT, "selinux_options");
}
END_TEST

/* ---- devices ---- */

START_TEST(test_devices)
{
	struct fx f;
	json_t *j, *d, *rules, *last;

	if (access("/dev/null", F_OK) != 0)
		return;
	fx_init(&f);
	f.c.n_devices = 1;
	f.d[0].container_path = "/dev/mynull";
	f.d[0].host_path = "/dev/null";
	f.d[0].permissions = "rw";
	j = build_ok(&f);
	ck_assert_uint_eq(json_array_size(jget(j, "linux.devices")), 1);
	d = json_array_get(jget(j, "linux.devices"), 0);
	ck_assert_str_eq(jstr(d, "path"), "/dev/mynull");
	ck_assert_str_eq(jstr(d, "type"), "c");
	ck_assert_int_eq(jint(d, "major"), 1);
	ck_assert_int_eq(jint(d, "minor"), 3);
	ck_assert(json_is_integer(json_object_get(d, "fileMode")));
	rules = jget(j, "linux.resources.devices");
	last = json_array_get(rules, json_array_size(rules) - 1);
	ck_assert(json_is_true(json_object_get(last, "allow")));
	ck_assert_str_eq(jstr(last, "type"), "c");
	ck_assert_int_eq(jint(last, "major"), 1);
	ck_assert_int_eq(jint(last, "minor"), 3);
	ck_assert_str_eq(jstr(last, "access"), "rw");
	json_decref(j);

	/* No permissions: rwm. */
	f.d[0].permissions = "";
	j = build_ok(&f);
	rules = jget(j, "linux.resources.devices");
	ck_assert_str_eq(jstr(json_array_get(rules, json_array_size(rules) - 1), "access"), "rwm");
	json_decref(j);
}
END_TEST

START_TEST(test_device_errors)
{
	char tmp[] = "/tmp/test_oci_spec.XXXXXX";
	int fd = mkstemp(tmp);
	struct fx f;

	ck_assert_int_ge(fd, 0);
	close(fd);
	fx_init(&f);
	f.c.n_devices = 2;
	f.d[0].container_path = "/dev/a";
	f.d[0].host_path = "/dev/null";
	f.d[1].container_path = "dev/b";
	f.d[1].host_path = "/dev/null";
	build_fails(&f, CRID_INVALID_ARGUMENT, "devices[1].container_path");
	f.d[1].container_path = "/dev/b";
	f.d[1].host_path = "null";
	build_fails(&f, CRID_INVALID_ARGUMENT, "devices[1].host_path");
	f.d[1].host_path = "/dev/null";
	f.d[1].permissions = "rwx";
	build_fails(&f, CRID_INVALID_ARGUMENT, "devices[1].permissions");
	f.d[1].permissions = "r";
	f.d[1].host_path = "/dev/no-such-device-here";
	build_fails(&f, CRID_NOT_FOUND, "devices[1].host_path /dev/no-such-device-here");
	f.d[1].host_path = tmp;
	build_fails(&f, CRID_INVALID_ARGUMENT, "is not a device");
	unlink(tmp);
}
END_TEST

/* ---- annotations, required keys, validation ---- */

START_TEST(test_annotations)
{
	Runtime__V1__ContainerConfig__AnnotationsEntry a[2], *ap[2] = { &a[0], &a[1] };
	struct fx f;
	json_t *j, *an;

	fx_init(&f);
	runtime__v1__container_config__annotations_entry__init(&a[0]);
	runtime__v1__container_config__annotations_entry__init(&a[1]);
	a[0].key = "example.com/x";
	a[0].value = "y";
	a[1].key = "io.kubernetes.cri.container-type";
	a[1].value = "sandbox";
	f.c.annotations = ap;
	f.c.n_annotations = 2;
	j = build_ok(&f);
	an = json_object_get(j, "annotations");
	ck_assert_str_eq(json_string_value(json_object_get(an, "example.com/x")), "y");
	ck_assert_str_eq(json_string_value(json_object_get(an, "io.kubernetes.cri.container-type")), "container");
	ck_assert_str_eq(json_string_value(json_object_get(an, "io.kubernetes.cri.container-name")), "web");
	json_decref(j);
}
END_TEST

START_TEST(test_required_keys)
{
	struct fx f;
	json_t *j;
	char *text;

	fx_init(&f);
	j = build_ok(&f);
	ck_assert(json_is_string(jget(j, "ociVersion")));
	ck_assert(json_is_object(jget(j, "root")));
	ck_assert(json_is_string(jget(j, "root.path")));
	ck_assert(json_is_object(jget(j, "process")));
	ck_assert(json_is_array(jget(j, "process.args")) && json_array_size(jget(j, "process.args")) > 0);
	ck_assert(json_is_string(jget(j, "process.cwd")));
	ck_assert(json_is_integer(jget(j, "process.user.uid")));
	ck_assert(json_is_integer(jget(j, "process.user.gid")));
	ck_assert(json_is_array(jget(j, "process.env")));
	ck_assert(json_is_object(jget(j, "process.capabilities")));
	ck_assert(json_is_array(jget(j, "mounts")));
	ck_assert(json_is_object(jget(j, "linux")));
	ck_assert(json_is_array(jget(j, "linux.namespaces")));
	ck_assert(json_is_object(jget(j, "linux.resources")));
	ck_assert(json_is_object(jget(j, "annotations")));
	/* Every mount has a destination, a type, a source and options. */
	{
		size_t i;
		json_t *m;

		json_array_foreach(json_object_get(j, "mounts"), i, m) {
			ck_assert(json_is_string(json_object_get(m, "destination")));
			ck_assert(json_string_value(json_object_get(m, "destination"))[0] == '/');
			ck_assert(json_is_string(json_object_get(m, "type")));
			ck_assert(json_is_string(json_object_get(m, "source")));
			ck_assert(json_is_array(json_object_get(m, "options")));
		}
	}
	text = json_dumps(j, JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	free(text);
	json_decref(j);
}
END_TEST

START_TEST(test_invalid_input)
{
	struct crid_err e = { 0 };
	json_t *j = NULL;
	struct fx f;

	fx_init(&f);
	f.in.config = NULL;
	ck_assert_int_lt(crid_spec_build(&f.in, &j, &e), 0);
	ck_assert_int_eq(e.status, CRID_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "config"));
	ck_assert_int_lt(crid_spec_build(NULL, &j, &e), 0);
	ck_assert_int_eq(e.status, CRID_INVALID_ARGUMENT);

	fx_init(&f);
	f.c.metadata = NULL;
	build_fails(&f, CRID_INVALID_ARGUMENT, "metadata.name is empty");
	f.c.metadata = &f.md;
	f.md.name = "";
	build_fails(&f, CRID_INVALID_ARGUMENT, "metadata.name is empty");
	f.md.name = "web";
	f.in.rootfs = "rootfs";
	build_fails(&f, CRID_INVALID_ARGUMENT, "rootfs");
	f.in.rootfs = NULL;
	build_fails(&f, CRID_INVALID_ARGUMENT, "rootfs");
	f.in.rootfs = "/r";
	/* No linux section at all: defaults. */
	f.c.linux = NULL;
	json_decref(build_ok(&f));
}
END_TEST

/* ---- out of memory ---- */

static int fail_after, allocations;

static void *failing_malloc(size_t n)
{
	return allocations++ >= fail_after ? NULL : malloc(n);
}

/* Every jansson allocation failing in turn: RESOURCE_EXHAUSTED each time,
 * never a crash or a leak (ASan), until the whole document is built. */
static void oom_sweep(bool privileged)
{
	Runtime__V1__HugepageLimit h, *hp[1] = { &h };
	json_malloc_t saved_malloc;
	json_free_t saved_free;
	struct fx f;
	int r = -ENOMEM;

	fx_init(&f);
	set_env(&f, 0, "A", "2");
	add_mount(&f, "/data", "/srv/data")->readonly = 1;
	add_mount(&f, "/data/in", "/srv/in")->propagation =
		RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
	runtime__v1__hugepage_limit__init(&h);
	h.page_size = "2MB";
	f.res.hugepage_limits = hp;
	f.res.n_hugepage_limits = 1;
	f.res.cpu_shares = 2;
	f.res.memory_limit_in_bytes = 1 << 20;
	f.res.oom_score_adj = 10;
	if (access("/dev/null", F_OK) == 0) {
		f.c.n_devices = 1;
		f.d[0].container_path = "/dev/x";
		f.d[0].host_path = "/dev/null";
	}
	f.sc.privileged = f.psc.privileged = privileged;
	/* The default seccomp profile is the largest part of the document. */
	f.in.seccomp_default = !privileged;
	json_get_alloc_funcs(&saved_malloc, &saved_free);
	for (fail_after = 0; r != 0; fail_after++) {
		struct crid_err e = { 0 };
		json_t *j = NULL;

		ck_assert_int_lt(fail_after, 100000);
		allocations = 0;
		json_set_alloc_funcs(failing_malloc, free);
		r = crid_spec_build(&f.in, &j, &e);
		json_set_alloc_funcs(saved_malloc, saved_free);
		if (r == 0) {
			ck_assert_ptr_nonnull(jget(j, "process.args"));
			json_decref(j);
			break;
		}
		ck_assert_msg(r == -ENOMEM && e.status == CRID_RESOURCE_EXHAUSTED, "after %d: %d %s", fail_after, r,
			      e.msg);
		ck_assert_ptr_null(j);
	}
	ck_assert_int_gt(fail_after, 100);
}

START_TEST(test_out_of_memory)
{
	oom_sweep(false);
}
END_TEST

START_TEST(test_out_of_memory_privileged)
{
	oom_sweep(true);
}
END_TEST

static Suite *oci_spec_suite(void)
{
	Suite *s = suite_create("oci_spec");
	TCase *tp = tcase_create("process");
	TCase *tm = tcase_create("mounts");
	TCase *tl = tcase_create("linux");
	TCase *to = tcase_create("out of memory");

	tcase_add_loop_test(tp, test_args_rules, 0, (int)CRID_ARRAY_SIZE(args_cases));
	tcase_add_test(tp, test_args_none);
	tcase_add_test(tp, test_args_in_spec);
	tcase_add_test(tp, test_env_merge);
	tcase_add_test(tp, test_env_default_path);
	tcase_add_test(tp, test_env_override_path_hostname);
	tcase_add_test(tp, test_env_invalid);
	tcase_add_test(tp, test_cwd);
	tcase_add_test(tp, test_user);
	tcase_add_test(tp, test_root_and_terminal);
	tcase_add_test(tp, test_rlimits);
	tcase_add_test(tp, test_oom_score_adj);
	suite_add_tcase(s, tp);

	tcase_add_test(tm, test_default_mounts);
	tcase_add_test(tm, test_bind_mounts);
	tcase_add_test(tm, test_recursive_read_only);
	tcase_add_test(tm, test_config_mounts_replace_defaults);
	tcase_add_test(tm, test_mounts_sorted);
	tcase_add_test(tm, test_mount_errors);
	suite_add_tcase(s, tm);

	tcase_add_test(tl, test_namespaces_pod);
	tcase_add_test(tl, test_namespaces_host);
	tcase_add_test(tl, test_namespaces_inconsistent);
	tcase_add_test(tl, test_namespaces_user);
	tcase_add_test(tl, test_resources_mapping);
	tcase_add_test(tl, test_resources_unset);
	tcase_add_test(tl, test_resources_errors);
	tcase_add_test(tl, test_resources_in_spec);
	tcase_add_test(tl, test_masked_paths_default);
	tcase_add_test(tl, test_privileged);
	tcase_add_test(tl, test_security_profiles);
	tcase_add_test(tl, test_devices);
	tcase_add_test(tl, test_device_errors);
	tcase_add_test(tl, test_annotations);
	tcase_add_test(tl, test_required_keys);
	tcase_add_test(tl, test_invalid_input);
	suite_add_tcase(s, tl);

	/* The privileged sweep walks the host's /dev at every step. */
	tcase_set_timeout(to, 120);
	tcase_add_test(to, test_out_of_memory);
	tcase_add_test(to, test_out_of_memory_privileged);
	suite_add_tcase(s, to);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(oci_spec_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
