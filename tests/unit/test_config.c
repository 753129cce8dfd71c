/* Unit tests of src/config: defaults, files, drop-ins, flags, and the exact
 * error messages (the registries' settings: test_config_registries.c). Every
 * test points --config and --config-dir into its own temporary directory so
 * the machine's /etc/crid is never read. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "config/config.h"
#include "config/config_internal.h"
#include "config_fixture.h"


static void assert_runtime(const struct crid_config *cfg, const char *name, const char *path)
{
	const struct crid_runtime_handler *h = crid_config_find_runtime(cfg, name);

	ck_assert_msg(h != NULL, "runtime %s missing", name);
	ck_assert_str_eq(h->name, name);
	ck_assert_str_eq(h->path, path);
}

static void assert_defaults(const struct crid_config *cfg)
{
	ck_assert_str_eq(cfg->socket_path, "/run/crid/crid.sock");
	ck_assert_str_eq(cfg->run_root, "/run/crid");
	ck_assert_str_eq(cfg->state_root, "/var/lib/crid");
	ck_assert_int_eq(cfg->log_level, CRID_LOG_INFO);
	ck_assert_int_eq(cfg->log_format, CRID_LOG_LOGFMT);
	ck_assert_int_eq(cfg->cgroup_driver, CRID_CGROUP_CGROUPFS);
	ck_assert_str_eq(cfg->default_runtime, "crun");
	ck_assert_uint_eq(cfg->n_runtimes, 2);
	assert_runtime(cfg, "crun", "/usr/bin/crun");
	assert_runtime(cfg, "runc", "/usr/bin/runc");
	ck_assert_uint_eq(cfg->grpc_max_recv_bytes, 16777216);
	ck_assert_uint_eq(cfg->grpc_max_send_bytes, 16777216);
	ck_assert_uint_eq(cfg->worker_threads, 32);
	ck_assert_uint_eq(cfg->shutdown_grace_s, 30);
	ck_assert_uint_eq(cfg->max_concurrent_downloads, 4);
	ck_assert_uint_eq(cfg->pull_progress_timeout_s, 60);
	ck_assert_uint_eq(cfg->event_queue_length, 1024);
	ck_assert_uint_eq(cfg->layer_usage_period_s, 10);
	ck_assert_uint_eq(cfg->layer_usage_files_per_s, 20000);
	ck_assert_str_eq(cfg->metrics_address, "");
	ck_assert(!cfg->seccomp_default);
	ck_assert_uint_eq(cfg->n_pinned_images, 0);
	ck_assert_ptr_null(cfg->pinned_images);
	ck_assert_uint_eq(cfg->n_registries, 0);
	ck_assert_ptr_null(cfg->registries);
	ck_assert_str_eq(cfg->cni_conf_dir, "/etc/cni/net.d");
	ck_assert_uint_eq(cfg->n_cni_bin_dirs, 2);
	ck_assert_str_eq(cfg->cni_bin_dirs[0], "/opt/cni/bin");
	ck_assert_str_eq(cfg->cni_bin_dirs[1], "/usr/lib/cni");
	ck_assert_uint_eq(cfg->cni_plugin_timeout_s, 30);
	ck_assert_uint_eq(cfg->n_cdi_spec_dirs, 2);
	ck_assert_str_eq(cfg->cdi_spec_dirs[0], "/etc/cdi");
	ck_assert_str_eq(cfg->cdi_spec_dirs[1], "/var/run/cdi");
	ck_assert_str_eq(cfg->stream_address, "127.0.0.1:0");
	ck_assert_ptr_null(cfg->stream_tls_cert);
	ck_assert_ptr_null(cfg->stream_tls_key);
	ck_assert_uint_eq(cfg->stream_idle_timeout_s, 14400);
	ck_assert_uint_eq(cfg->stream_max_sessions, 128);
}

START_TEST(test_defaults)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	assert_defaults(&cfg);
	ck_assert_str_eq(cfg.config_file, main_path);
	ck_assert_str_eq(cfg.config_dir, dropin_dir);
	crid_config_free(&cfg);
	assert_zeroed(&cfg);
	crid_config_free(&cfg); /* safe twice */
}
END_TEST

START_TEST(test_comments_only_and_null_file)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("# nothing here\n\n   # still nothing\n");
	write_dropin("10-null.yaml", "~\n");
	write_dropin("20-empty-runtimes.yaml", "runtimes:\n");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	assert_defaults(&cfg);
	crid_config_free(&cfg);
}
END_TEST

static const char full_file[] = "socket: /srv/crid/api.sock\n"
				"run_root: /srv/run\n"
				"state_root: /srv/state\n"
				"log_level: debug\n"
				"log_format: json\n"
				"cgroup_driver: systemd\n"
				"default_runtime: runc\n"
				"runtimes:\n"
				"  runc:\n"
				"    path: /opt/runc\n"
				"  youki:\n"
				"    path: youki\n"
				"grpc_max_recv_bytes: 1024\n"
				"grpc_max_send_bytes: 1073741824\n"
				"worker_threads: 1024\n"
				"shutdown_grace_s: 0\n"
				"max_concurrent_downloads: 64\n"
				"pull_progress_timeout_s: 1\n"
				"event_queue_length: 65536\n"
				"layer_usage_period_s: 3600\n"
				"layer_usage_files_per_s: 100\n"
				"metrics_address: \"[::1]:9090\"\n"
				"seccomp_default: true\n";

START_TEST(test_main_file_values)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main(full_file);
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_str_eq(cfg.socket_path, "/srv/crid/api.sock");
	ck_assert_str_eq(cfg.run_root, "/srv/run");
	ck_assert_str_eq(cfg.state_root, "/srv/state");
	ck_assert_int_eq(cfg.log_level, CRID_LOG_DEBUG);
	ck_assert_int_eq(cfg.log_format, CRID_LOG_JSON);
	ck_assert_int_eq(cfg.cgroup_driver, CRID_CGROUP_SYSTEMD);
	ck_assert_str_eq(cfg.default_runtime, "runc");
	ck_assert_uint_eq(cfg.n_runtimes, 3);
	assert_runtime(&cfg, "crun", "/usr/bin/crun");
	assert_runtime(&cfg, "runc", "/opt/runc");
	assert_runtime(&cfg, "youki", "youki");
	ck_assert_uint_eq(cfg.grpc_max_recv_bytes, 1024);
	ck_assert_uint_eq(cfg.grpc_max_send_bytes, 1073741824);
	ck_assert_uint_eq(cfg.worker_threads, 1024);
	ck_assert_uint_eq(cfg.shutdown_grace_s, 0);
	ck_assert_uint_eq(cfg.max_concurrent_downloads, 64);
	ck_assert_uint_eq(cfg.pull_progress_timeout_s, 1);
	ck_assert_uint_eq(cfg.event_queue_length, 65536);
	ck_assert_uint_eq(cfg.layer_usage_period_s, 3600);
	ck_assert_uint_eq(cfg.layer_usage_files_per_s, 100);
	ck_assert_str_eq(cfg.metrics_address, "[::1]:9090");
	ck_assert(cfg.seccomp_default);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_dropins_override_in_name_order)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("worker_threads: 10\nlog_level: debug\nshutdown_grace_s: 5\n");
	/* Written out of order: the name decides, not creation order. */
	write_dropin("20-b.yaml", "worker_threads: 30\n");
	write_dropin("10-a.yaml", "worker_threads: 20\nshutdown_grace_s: 6\n");
	/* Not *.yaml, or a dot file: never read, so their errors do not matter. */
	write_dropin("30-c.yml", "worker_threads: bad\n");
	write_dropin("README", "bad\n");
	write_dropin(".40-d.yaml", "worker_threads: bad\n");
	write_dropin("50-e.yaml.bak", "worker_threads: bad\n");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.worker_threads, 30);
	ck_assert_uint_eq(cfg.shutdown_grace_s, 6);
	ck_assert_int_eq(cfg.log_level, CRID_LOG_DEBUG);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_runtimes_from_dropin_and_flag)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("runtimes:\n  kata:\n    path: /opt/kata/bin/kata-runtime\n");
	write_dropin("10-rt.yaml", "runtimes:\n"
				   "  runc:\n"
				   "    path: /usr/local/bin/runc\n"
				   "  gvisor:\n"
				   "    path: runsc\n"
				   "  kata:\n"      /* an existing handler keeps its path */
				   "  crun: {}\n"); /* ... whether the entry is null or {} */
	ck_assert_int_eq(load(&cfg, &err, "--runtime", "youki=/usr/bin/youki", "--runtime=crun=/opt/crun",
			      "--default-runtime", "gvisor", NULL),
			 CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.n_runtimes, 5);
	assert_runtime(&cfg, "crun", "/opt/crun");
	assert_runtime(&cfg, "runc", "/usr/local/bin/runc");
	assert_runtime(&cfg, "kata", "/opt/kata/bin/kata-runtime");
	assert_runtime(&cfg, "gvisor", "runsc");
	assert_runtime(&cfg, "youki", "/usr/bin/youki");
	ck_assert_str_eq(crid_config_find_runtime(&cfg, "")->name, "gvisor");
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_runtime_handler_options)
{
	const struct crid_runtime_handler *h;
	struct crid_config cfg;
	struct crid_err err;

	write_main("runtimes:\n"
		   "  gvisor:\n"
		   "    path: /usr/bin/runsc\n"
		   "    runtime_args: [\"--platform=ptrace\", --debug-log=/var/log/runsc/, --rootless]\n"
		   "    root: /run/gvisor\n"
		   "  kata:\n"
		   "    path: /opt/kata/bin/kata-runtime\n"
		   "    sandbox_per_pod: true\n");
	/* A drop-in turns gVisor's sandbox off and keeps its flags. */
	write_dropin("10-rt.yaml", "runtimes:\n  gvisor:\n    sandbox_per_pod: false\n");
	ck_assert_int_eq(load(&cfg, &err, "--runtime", "runsc=/opt/gvisor/runsc", NULL), CRID_CONFIG_RUN);
	h = crid_config_find_runtime(&cfg, "runsc"); /* a binary named runsc: one sandbox per pod */
	ck_assert(h && h->sandbox_per_pod && h->n_runtime_args == 0 && h->root == NULL);
	h = crid_config_find_runtime(&cfg, "gvisor");
	ck_assert(h && !h->sandbox_per_pod);
	ck_assert_uint_eq(h->n_runtime_args, 3);
	ck_assert_str_eq(h->runtime_args[0], "--platform=ptrace");
	ck_assert_str_eq(h->runtime_args[1], "--debug-log=/var/log/runsc/");
	ck_assert_str_eq(h->root, "/run/gvisor");
	ck_assert(crid_config_find_runtime(&cfg, "kata")->sandbox_per_pod);
	ck_assert(!crid_config_find_runtime(&cfg, "crun")->sandbox_per_pod);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_flags_override_files)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main(full_file);
	write_dropin("10-x.yaml", "worker_threads: 7\nlog_level: error\n");
	ck_assert_int_eq(load(&cfg, &err, "--socket", "/flag/s.sock", "--run-root=/flag/run",
			      "--state-root", "/flag/state", "--log-level=warn", "--log-format", "logfmt",
			      "--cgroup-driver=cgroupfs", "--default-runtime=crun",
			      "--grpc-max-recv-bytes", "2048", "--grpc-max-send-bytes=4096",
			      "--worker-threads", "8", "--shutdown-grace=3600", "--worker-threads=9",
			      "--max-concurrent-downloads", "1", "--pull-progress-timeout=3600",
			      "--seccomp-default", "false", NULL),
			 CRID_CONFIG_RUN);
	ck_assert_str_eq(cfg.socket_path, "/flag/s.sock");
	ck_assert_str_eq(cfg.run_root, "/flag/run");
	ck_assert_str_eq(cfg.state_root, "/flag/state");
	ck_assert_int_eq(cfg.log_level, CRID_LOG_WARN);
	ck_assert_int_eq(cfg.log_format, CRID_LOG_LOGFMT);
	ck_assert_int_eq(cfg.cgroup_driver, CRID_CGROUP_CGROUPFS);
	ck_assert_str_eq(cfg.default_runtime, "crun");
	ck_assert_uint_eq(cfg.grpc_max_recv_bytes, 2048);
	ck_assert_uint_eq(cfg.grpc_max_send_bytes, 4096);
	ck_assert_uint_eq(cfg.worker_threads, 9); /* the last of a repeated flag wins */
	ck_assert_uint_eq(cfg.shutdown_grace_s, 3600);
	ck_assert_uint_eq(cfg.max_concurrent_downloads, 1);
	ck_assert_uint_eq(cfg.pull_progress_timeout_s, 3600);
	ck_assert(!cfg.seccomp_default); /* the flag over the file's true */
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_config_flag_equals_form)
{
	struct crid_config cfg;
	struct crid_err err;
	char other[PATH_MAX], other_dir[PATH_MAX], arg_file[PATH_MAX + 16], arg_dir[PATH_MAX + 16];

	FMT(other, "%s/other.yaml", test_dir);
	FMT(other_dir, "%s/other.d", test_dir);
	FMT(arg_file, "--config=%s", other);
	FMT(arg_dir, "--config-dir=%s", other_dir);
	write_main("worker_threads: 2\n");
	write_dropin("10-x.yaml", "worker_threads: 3\n");
	write_file(other, "worker_threads: 4\n");
	ck_assert_int_eq(load(&cfg, &err, arg_file, arg_dir, NULL), CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.worker_threads, 4);
	ck_assert_str_eq(cfg.config_file, other);
	ck_assert_str_eq(cfg.config_dir, other_dir);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_default_file_missing_is_fine)
{
	struct crid_config cfg;
	struct crid_err err;
	char missing[PATH_MAX];
	char *argv[] = { "crid", NULL };

	FMT(missing, "%s/missing.yaml", test_dir);
	write_dropin("10-x.yaml", "worker_threads: 3\n");
	ck_assert_int_eq(crid_config_load_at(&cfg, 1, argv, missing, dropin_dir, &err), CRID_CONFIG_RUN);
	ck_assert_ptr_null(cfg.config_file);
	ck_assert_str_eq(cfg.config_dir, dropin_dir);
	ck_assert_uint_eq(cfg.worker_threads, 3);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_explicit_config_missing_is_error)
{
	struct crid_config cfg;
	struct crid_err err;
	char missing[PATH_MAX], expect[2 * PATH_MAX];

	FMT(missing, "%s/missing.yaml", test_dir);
	FMT(expect, "read config file %s: No such file or directory", missing);
	ck_assert_int_eq(load(&cfg, &err, "--config", missing, NULL), -ENOENT);
	ck_assert_str_eq(err.msg, expect);
	assert_zeroed(&cfg);
}
END_TEST

START_TEST(test_missing_dropin_dir_is_fine)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("worker_threads: 5\n");
	ck_assert_int_eq(load(&cfg, &err, "--config-dir", "/nonexistent/crid-test/crid.d", NULL),
			 CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.worker_threads, 5);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_config_paths_of_the_wrong_type)
{
	struct crid_config cfg;
	struct crid_err err;
	char expect[2 * PATH_MAX], sub[PATH_MAX];

	/* --config /dev/null: a way to say "no main file". */
	ck_assert_int_eq(load(&cfg, &err, "--config", "/dev/null", NULL), CRID_CONFIG_RUN);
	ck_assert_str_eq(cfg.config_file, "/dev/null");
	assert_defaults(&cfg);
	crid_config_free(&cfg);

	FMT(expect, "read config file %s: Is a directory", test_dir);
	ck_assert_int_eq(load(&cfg, &err, "--config", test_dir, NULL), -EISDIR);
	ck_assert_str_eq(err.msg, expect);
	assert_zeroed(&cfg);

	write_main("");
	FMT(expect, "read config dir %s: Not a directory", main_path);
	ck_assert_int_eq(load(&cfg, &err, "--config-dir", main_path, NULL), -ENOTDIR);
	ck_assert_str_eq(err.msg, expect);
	assert_zeroed(&cfg);

	ck_assert_int_eq(mkdir(dropin_dir, 0755), 0);
	FMT(sub, "%s/10-dir.yaml", dropin_dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	FMT(expect, "read config file %s: Is a directory", sub);
	ck_assert_int_eq(load(&cfg, &err, NULL), -EISDIR);
	ck_assert_str_eq(err.msg, expect);
	assert_zeroed(&cfg);
}
END_TEST

START_TEST(test_stream_settings)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("stream_address: \"[::1]:10010\"\nstream_tls_cert: /etc/crid/tls.pem\n"
		   "stream_tls_key: /etc/crid/tls.key\nstream_idle_timeout_s: 60\nstream_max_sessions: 4\n");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_str_eq(cfg.stream_address, "[::1]:10010");
	ck_assert_str_eq(cfg.stream_tls_cert, "/etc/crid/tls.pem");
	ck_assert_str_eq(cfg.stream_tls_key, "/etc/crid/tls.key");
	ck_assert_uint_eq(cfg.stream_idle_timeout_s, 60);
	ck_assert_uint_eq(cfg.stream_max_sessions, 4);
	crid_config_free(&cfg);
	/* A flag's "" takes TLS away again; then the key alone is refused. */
	ck_assert_int_eq(load(&cfg, &err, "--stream-tls-cert", "", NULL), -EINVAL);
	ck_assert_str_eq(err.msg, "stream_tls_cert and stream_tls_key go together: stream_tls_key is set, "
				  "stream_tls_cert is not");
	ck_assert_int_eq(load(&cfg, &err, "--stream-tls-cert", "", "--stream-tls-key", "", "--stream-address",
			      "0.0.0.0:10010", NULL),
			 CRID_CONFIG_RUN);
	ck_assert_ptr_null(cfg.stream_tls_cert);
	ck_assert_str_eq(cfg.stream_address, "0.0.0.0:10010");
	crid_config_free(&cfg);
}
END_TEST

struct bad_file {
	const char *dropin; /* NULL: the main file */
	const char *yaml;
	int line;
	const char *reason;
};

/* 108 bytes: one more than sun_path holds with its NUL. */
#define LONG_SOCKET                                                                               \
	"/run/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxx.sock"

/* The first two lines of most registries cases. */
#define REG_DOCKER_IO "registries:\n  - host: docker.io\n"

static const struct bad_file bad_files[] = {
	{ NULL,
	  "socket: /run/x.sock\nrun_root: /run/x\nstate_root: /var/lib/x\n# a comment\n\n"
	  "worker_threads: 4\nlog_level: loud\n",
	  7, "log_level: \"loud\" is not one of debug, info, warn, error" },
	{ "10-x.yaml", "# first\n\nsockets: /run/x.sock\n", 3, "unknown key \"sockets\"" },
	{ NULL, "runtimes:\n  crun:\n    pth: /x\n", 3,
	  "runtimes.crun: unknown key \"pth\" (known: path, sandbox_per_pod, runtime_args, root)" },
	{ NULL, "runtimes:\n  runsc:\n    path: /r\n    sandbox_per_pod: maybe\n", 4,
	  "runtimes.runsc.sandbox_per_pod: \"maybe\" is not true or false" },
	{ NULL, "runtimes:\n  runsc:\n    path: /r\n    runtime_args: --debug\n", 4,
	  "runtimes.runsc.runtime_args: expected a list of flags, found a single value" },
	{ NULL, "runtimes:\n  runsc:\n    path: /r\n    runtime_args: [debug]\n", 4,
	  "runtimes.runsc.runtime_args: \"debug\" is not a runtime flag (one \"--name=value\" per item)" },
	{ NULL, "runtimes:\n  runsc:\n    path: /r\n    runtime_args: [--root=/x]\n", 4,
	  "runtimes.runsc.runtime_args: \"--root=/x\": set the handler's root instead" },
	{ NULL, "runtimes:\n  runsc:\n    path: /r\n    runtime_args: [-root]\n", 4,
	  "runtimes.runsc.runtime_args: \"-root\": set the handler's root instead" },
	{ NULL, "runtimes:\n  runsc:\n    path: /r\n    root: /run/../etc\n", 4,
	  "runtimes.runsc.root: \"/run/../etc\" is not an absolute path without \"..\"" },
	{ NULL, "runtimes:\n  runsc:\n    path: /r\n    root: rel/dir\n", 4,
	  "runtimes.runsc.root: \"rel/dir\" is not an absolute path without \"..\"" },
	{ NULL, "runtimes:\n  newone:\n    sandbox_per_pod: true\n", 2,
	  "runtimes.newone: path is required" },
	{ NULL, "log_format: xml\n", 1, "log_format: \"xml\" is not one of logfmt, json" },
	{ NULL, "cgroup_driver: systemd2\n", 1,
	  "cgroup_driver: \"systemd2\" is not one of cgroupfs, systemd" },
	/* wrong types */
	{ NULL, "worker_threads: 3\nsocket:\n  path: /x\n", 3,
	  "socket: expected a single value, found a mapping" },
	{ NULL, "run_root: [/a, /b]\n", 1, "run_root: expected a single value, found a list" },
	{ NULL, "runtimes:\n  - crun\n", 2,
	  "runtimes: expected a mapping of handler names, found a list" },
	{ NULL, "runtimes: crun\n", 1,
	  "runtimes: expected a mapping of handler names, found a single value" },
	{ NULL, "runtimes:\n  crun: /usr/bin/crun\n", 2,
	  "runtimes.crun: expected a mapping with a path, found a single value" },
	{ NULL, "runtimes:\n  crun:\n    path:\n      - /a\n", 4,
	  "runtimes.crun.path: expected a single value, found a list" },
	{ NULL, "- socket\n", 1, "expected a mapping of settings, found a list" },
	{ NULL, "just words\n", 1, "expected a mapping of settings, found a single value" },
	{ NULL, "socket:\nrun_root: /x\n", 1, "socket: needs a value" },
	{ NULL, "? [a, b]\n: c\n", 1, "keys must be names, found a list" },
	/* numbers */
	{ NULL, "worker_threads: abc\n", 1, "worker_threads: \"abc\" is not a whole number" },
	{ NULL, "worker_threads: 0\n", 1, "worker_threads: \"0\" is out of range 1..1024" },
	{ NULL, "worker_threads: 1025\n", 1, "worker_threads: \"1025\" is out of range 1..1024" },
	{ NULL, "worker_threads: 99999999999999999999999\n", 1,
	  "worker_threads: \"99999999999999999999999\" is out of range 1..1024" },
	{ NULL, "shutdown_grace_s: -1\n", 1, "shutdown_grace_s: \"-1\" is not a whole number" },
	{ NULL, "shutdown_grace_s: 3601\n", 1, "shutdown_grace_s: \"3601\" is out of range 0..3600" },
	/* the streaming server */
	{ NULL, "stream_address: localhost:10010\n", 1,
	  "stream_address: \"localhost:10010\": \"localhost\" is not an IPv4 address" },
	{ NULL, "stream_address: 127.0.0.1\n", 1, "stream_address: \"127.0.0.1\" is not HOST:PORT" },
	{ NULL, "stream_address: 127.0.0.1:65536\n", 1,
	  "stream_address: \"127.0.0.1:65536\": the port must be 0-65535" },
	{ NULL, "stream_address: ::1:80\n", 1, "stream_address: \"::1:80\": \"::1\" is not an IPv4 address" },
	{ NULL, "stream_address: \"[::1]80\"\n", 1,
	  "stream_address: \"[::1]80\" is not HOST:PORT (an IPv6 address goes in brackets)" },
	{ NULL, "stream_tls_cert: cert.pem\n", 1, "stream_tls_cert: \"cert.pem\" is not an absolute path" },
	{ NULL, "stream_idle_timeout_s: 0\n", 1, "stream_idle_timeout_s: \"0\" is out of range 1..86400" },
	{ NULL, "stream_max_sessions: 4097\n", 1, "stream_max_sessions: \"4097\" is out of range 1..4096" },
	{ NULL, "grpc_max_recv_bytes: 1023\n", 1,
	  "grpc_max_recv_bytes: \"1023\" is out of range 1024..1073741824" },
	{ NULL, "grpc_max_send_bytes: 1073741825\n", 1,
	  "grpc_max_send_bytes: \"1073741825\" is out of range 1024..1073741824" },
	{ NULL, "grpc_max_send_bytes: 1.5e6\n", 1,
	  "grpc_max_send_bytes: \"1.5e6\" is not a whole number" },
	{ NULL, "worker_threads: \" 4\"\n", 1, "worker_threads: \" 4\" is not a whole number" },
	/* paths */
	{ NULL, "socket: run/crid.sock\n", 1, "socket: \"run/crid.sock\" is not an absolute path" },
	{ NULL, "run_root: ./run\n", 1, "run_root: \"./run\" is not an absolute path" },
	{ NULL, "state_root: \"\"\n", 1, "state_root: \"\" is not an absolute path" },
	{ NULL, "socket: " LONG_SOCKET "\n", 1,
	  "socket: \"" LONG_SOCKET "\" is longer than 107 bytes" },
	/* runtimes */
	{ NULL, "runtimes:\n  b@d:\n    path: /x\n", 2,
	  "runtimes: \"b@d\" is not a valid runtime name (use letters, digits, '.', '_', '-')" },
	{ NULL, "runtimes:\n  \"\":\n    path: /x\n", 2, "runtimes: runtime name is empty" },
	{ NULL, "runtimes:\n  ..:\n    path: /x\n", 2, "runtimes: \"..\" is not a valid runtime name" },
	{ NULL, "runtimes:\n  kata: {}\n", 2, "runtimes.kata: path is required" },
	{ NULL, "runtimes:\n  kata:\n", 2, "runtimes.kata: path is required" },
	{ NULL, "runtimes:\n  kata:\n    path:\n", 3, "runtimes.kata.path: needs a value" },
	{ NULL, "runtimes:\n  kata:\n    path: bin/kata\n", 3,
	  "runtimes.kata.path: \"bin/kata\" is a relative path (use an absolute path or a bare name "
	  "found in PATH)" },
	{ NULL, "runtimes:\n  kata:\n    path: \"\"\n", 3,
	  "runtimes.kata.path: runtime path is empty" },
	{ NULL, "default_runtime: a/b\n", 1,
	  "default_runtime: \"a/b\" is not a valid runtime name (use letters, digits, '.', '_', '-')" },
	/* duplicates */
	{ NULL, "socket: /a\nworker_threads: 2\nsocket: /b\n", 3,
	  "duplicate key \"socket\" (first at line 1)" },
	{ NULL, "runtimes:\n  crun: {path: /a}\n  crun: {path: /b}\n", 3,
	  "runtimes: duplicate key \"crun\" (first at line 2)" },
	{ NULL, "runtimes:\n  crun:\n    path: /a\n    path: /b\n", 4,
	  "runtimes.crun: duplicate key \"path\" (first at line 3)" },
	/* syntax */
	{ "50-y.yaml", "socket: /a\nrun_root: [/b\nstate_root: /c\n", 3,
	  "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 2)" },
	{ NULL, "socket: /a\n  run_root: /b\n", 2,
	  "invalid YAML: mapping values are not allowed in this context" },
	{ NULL, "socket: *nothing\n", 1, "invalid YAML: found undefined alias" },
	{ NULL, "socket: /a\n---\nsocket: /b\n", 3, "only one YAML document is allowed" },
	{ NULL, "socket: /a\nrun_root: /b\xff\n", 2,
	  "invalid YAML: invalid leading UTF-8 octet" },
	/* image pulling */
	{ NULL, "max_concurrent_downloads: 0\n", 1,
	  "max_concurrent_downloads: \"0\" is out of range 1..64" },
	{ NULL, "max_concurrent_downloads: 65\n", 1,
	  "max_concurrent_downloads: \"65\" is out of range 1..64" },
	{ NULL, "pull_progress_timeout_s: 0\n", 1,
	  "pull_progress_timeout_s: \"0\" is out of range 1..3600" },
	{ NULL, "pull_progress_timeout_s: 3601\n", 1,
	  "pull_progress_timeout_s: \"3601\" is out of range 1..3600" },
	{ NULL, "pull_progress_timeout_s: 1m\n", 1,
	  "pull_progress_timeout_s: \"1m\" is not a whole number" },
	/* seccomp */
	{ NULL, "seccomp_default: yes\n", 1, "seccomp_default: \"yes\" is not true or false" },
	/* pinned_images */
	{ NULL, "pinned_images: busybox\n", 1,
	  "pinned_images: expected a list of image references, found a single value" },
	{ NULL, "pinned_images:\n  busybox: latest\n", 2,
	  "pinned_images: expected a list of image references, found a mapping" },
	{ NULL, "pinned_images:\n  - busybox\n  -\n", 3, "pinned_images: needs a value" },
	{ NULL, "pinned_images:\n  - [busybox]\n", 2,
	  "pinned_images: expected a single value, found a list" },
	{ NULL, "pinned_images:\n  - \"\"\n", 2, "pinned_images: image reference is empty" },
	{ NULL, "pinned_images:\n  - \"busy box\"\n", 2,
	  "pinned_images: \"busy box\" is not an image reference (holds whitespace or control "
	  "characters)" },
	{ NULL, "pinned_images:\n  - \"busybox\\t\"\n", 2,
	  "pinned_images: \"busybox\t\" is not an image reference (holds whitespace or control "
	  "characters)" },
	{ NULL, "pinned_images:\n  - busybox\n  - alpine\n  - busybox\n", 4,
	  "pinned_images: duplicate image \"busybox\" (first at line 2)" },
	/* registries: shape */
	{ NULL, "registries:\n  docker.io: {}\n", 2,
	  "registries: expected a list of registries, found a mapping" },
	{ NULL, "registries: docker.io\n", 1,
	  "registries: expected a list of registries, found a single value" },
	{ NULL, "registries:\n  - docker.io\n", 2,
	  "registries: expected a mapping with a host, found a single value" },
	{ NULL, "registries:\n  - host: a.io\n  -\n", 3,
	  "registries: expected a mapping with a host, found nothing" },
	{ NULL, "registries:\n  - insecure: true\n", 2, "registries: host is required" },
	{ NULL, "registries:\n  - {}\n", 2, "registries: host is required" },
	{ NULL, "registries:\n  - hots: docker.io\n", 2, "registries: unknown key \"hots\"" },
	{ NULL, REG_DOCKER_IO "    insecure: false\n    insecur: true\n", 4,
	  "registries[docker.io]: unknown key \"insecur\"" },
	{ NULL, REG_DOCKER_IO "    host: quay.io\n", 3,
	  "registries: duplicate key \"host\" (first at line 2)" },
	{ NULL, REG_DOCKER_IO "  - host: quay.io\n  - host: Docker.IO\n", 4,
	  "registries: duplicate host \"Docker.IO\" (first at line 2)" },
	/* registries: host */
	{ NULL, "registries:\n  - host:\n    insecure: true\n", 2, "registries.host: needs a value" },
	{ NULL, "registries:\n  - host: [a.io]\n", 2,
	  "registries.host: expected a single value, found a list" },
	{ NULL, "registries:\n  - host: \"\"\n", 2, "registries.host: registry host is empty" },
	{ NULL, "registries:\n  - host: https://docker.io\n", 2,
	  "registries.host: \"https://docker.io\" is not a registry host (write it without a scheme, "
	  "as in image names)" },
	{ NULL, "registries:\n  - host: docker.io/library\n", 2,
	  "registries.host: \"docker.io/library\" is not a registry host (holds a '/'; write only "
	  "host[:port])" },
	{ NULL, "registries:\n  - host: \"docker .io\"\n", 2,
	  "registries.host: \"docker .io\" is not a registry host (holds whitespace or control "
	  "characters)" },
	{ NULL, "registries:\n  - host: \":5000\"\n", 2,
	  "registries.host: \":5000\" is not a registry host (no host name)" },
	{ NULL, "registries:\n  - host: localhost:http\n", 2,
	  "registries.host: \"localhost:http\" is not a registry host (port is not a number from 1 to "
	  "65535)" },
	{ NULL, "registries:\n  - host: localhost:65536\n", 2,
	  "registries.host: \"localhost:65536\" is not a registry host (port is not a number from 1 to "
	  "65535)" },
	{ NULL, "registries:\n  - host: \"localhost:\"\n", 2,
	  "registries.host: \"localhost:\" is not a registry host (port is not a number from 1 to "
	  "65535)" },
	{ NULL, "registries:\n  - host: \"[::1:5000\"\n", 2,
	  "registries.host: \"[::1:5000\" is not a registry host (unclosed '[')" },
	{ NULL, "registries:\n  - host: \"[::1]5000\"\n", 2,
	  "registries.host: \"[::1]5000\" is not a registry host (only a port may follow ']')" },
	{ NULL, "registries:\n  - host: \"[]:5000\"\n", 2,
	  "registries.host: \"[]:5000\" is not a registry host (no host name)" },
	/* registries: insecure, ca_file, mirrors_only */
	{ NULL, REG_DOCKER_IO "    insecure: yes\n", 3,
	  "registries[docker.io].insecure: \"yes\" is not true or false" },
	{ NULL, REG_DOCKER_IO "    insecure:\n", 3, "registries[docker.io].insecure: needs a value" },
	{ NULL, REG_DOCKER_IO "    mirrors_only: 1\n", 3,
	  "registries[docker.io].mirrors_only: \"1\" is not true or false" },
	{ NULL, REG_DOCKER_IO "    ca_file: certs/ca.pem\n", 3,
	  "registries[docker.io].ca_file: \"certs/ca.pem\" is not an absolute path" },
	{ NULL, REG_DOCKER_IO "    ca_file: \"\"\n", 3,
	  "registries[docker.io].ca_file: \"\" is not an absolute path" },
	{ NULL, REG_DOCKER_IO "    ca_file: {path: /x}\n", 3,
	  "registries[docker.io].ca_file: expected a single value, found a mapping" },
	{ NULL, REG_DOCKER_IO "    insecure: false\n    mirrors_only: true\n", 4,
	  "registries[docker.io]: mirrors_only needs at least one mirror" },
	{ NULL, REG_DOCKER_IO "    mirrors_only: true\n    mirrors: []\n", 3,
	  "registries[docker.io]: mirrors_only needs at least one mirror" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n    mirrors_only: true\n", 4,
	  "registries[docker.io]: mirrors_only needs at least one mirror" },
	/* registries: mirrors */
	{ NULL, REG_DOCKER_IO "    mirrors: https://m.local\n", 3,
	  "registries[docker.io].mirrors: expected a list of mirrors, found a single value" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - https://m.local\n", 4,
	  "registries[docker.io].mirrors[0]: expected a mapping with a url, found a single value" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://a.local\n      - ca_file: /ca.pem\n",
	  5, "registries[docker.io].mirrors[1]: url is required" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://a.local\n"
			      "        uri: https://b.local\n",
	  5, "registries[docker.io].mirrors[0]: unknown key \"uri\"" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://a.local\n"
			      "        url: https://b.local\n",
	  5, "registries[docker.io].mirrors[0]: duplicate key \"url\" (first at line 4)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url:\n", 4,
	  "registries[docker.io].mirrors[0].url: needs a value" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: \"\"\n", 4,
	  "registries[docker.io].mirrors[0].url: mirror url is empty" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://a.local\n"
			      "      - url: mirror.local:5000\n",
	  5, "registries[docker.io].mirrors[1].url: \"mirror.local:5000\" is not a mirror URL (needs "
	  "http:// or https://)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: ftp://mirror.local\n", 4,
	  "registries[docker.io].mirrors[0].url: \"ftp://mirror.local\" is not a mirror URL (needs "
	  "http:// or https://)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: HTTPS://mirror.local\n", 4,
	  "registries[docker.io].mirrors[0].url: \"HTTPS://mirror.local\" is not a mirror URL (needs "
	  "http:// or https://)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://\n", 4,
	  "registries[docker.io].mirrors[0].url: \"https://\" is not a mirror URL (no host name)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https:///v2\n", 4,
	  "registries[docker.io].mirrors[0].url: \"https:///v2\" is not a mirror URL (no host name)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://:5000\n", 4,
	  "registries[docker.io].mirrors[0].url: \"https://:5000\" is not a mirror URL (no host "
	  "name)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://mirror.local:99999\n", 4,
	  "registries[docker.io].mirrors[0].url: \"https://mirror.local:99999\" is not a mirror URL "
	  "(port is not a number from 1 to 65535)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://mirror.local/v2?ns=docker.io\n", 4,
	  "registries[docker.io].mirrors[0].url: \"https://mirror.local/v2?ns=docker.io\" is not a "
	  "mirror URL (no query or fragment allowed)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: \"https://mirror.local/#top\"\n", 4,
	  "registries[docker.io].mirrors[0].url: \"https://mirror.local/#top\" is not a mirror URL (no "
	  "query or fragment allowed)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://user:secret@mirror.local\n", 4,
	  "registries[docker.io].mirrors[0].url: \"https://user:secret@mirror.local\" is not a mirror "
	  "URL (credentials do not belong in the URL)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: \"https://mirror local\"\n", 4,
	  "registries[docker.io].mirrors[0].url: \"https://mirror local\" is not a mirror URL (holds "
	  "whitespace or control characters)" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://a.local\n        ca_file: ca.pem\n",
	  5, "registries[docker.io].mirrors[0].ca_file: \"ca.pem\" is not an absolute path" },
	{ NULL, REG_DOCKER_IO "    mirrors:\n      - url: https://a.local\n      - url: https://b.local\n"
		  "      - {url: https://a.local, ca_file: /ca.pem}\n", 6,
	  "registries[docker.io].mirrors: duplicate mirror \"https://a.local\" (first at line 4)" },
	/* a drop-in's registries are checked like the main file's */
	{ "20-reg.yaml",
	  "pinned_images: [busybox]\nregistries:\n  - host: quay.io\n    insecure: maybe\n", 4,
	  "registries[quay.io].insecure: \"maybe\" is not true or false" },
};

START_TEST(test_bad_file)
{
	const struct bad_file *c = &bad_files[_i];
	struct crid_config cfg;
	struct crid_err err;
	char path[PATH_MAX], expect[CRID_ERR_MSG_MAX];

	/* A valid main file and drop-in before the bad one: what they allocated
	 * must be freed too. */
	if (c->dropin) {
		write_main("socket: /run/ok.sock\nruntimes:\n  kata:\n    path: /k\n");
		write_dropin("00-ok.yaml", "run_root: /run/ok\n");
		write_dropin(c->dropin, c->yaml);
		write_dropin("99-never-read.yaml", "bad: 1\n");
		dropin_path(path, sizeof(path), c->dropin);
	} else {
		write_main(c->yaml);
		FMT(path, "%s", main_path);
	}
	FMT(expect, "%s:%d: %s", path, c->line, c->reason);
	ck_assert_int_lt(load(&cfg, &err, NULL), 0);
	ck_assert_str_eq(err.msg, expect);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	assert_zeroed(&cfg);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_default_runtime_not_configured)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("default_runtime: kata\n");
	ck_assert_int_eq(load(&cfg, &err, NULL), -EINVAL);
	ck_assert_str_eq(err.msg,
			 "default_runtime \"kata\" is not a configured runtime (configured: crun, runc)");
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	assert_zeroed(&cfg);

	/* Adding the handler by flag makes it valid. */
	ck_assert_int_eq(load(&cfg, &err, "--runtime", "kata=kata-runtime", NULL), CRID_CONFIG_RUN);
	ck_assert_str_eq(crid_config_find_runtime(&cfg, NULL)->path, "kata-runtime");
	crid_config_free(&cfg);
}
END_TEST

struct bad_flags {
	const char *args[4];
	const char *msg;
};

static const struct bad_flags bad_flags[] = {
	{ { "--worker-threads", "abc" }, "--worker-threads: \"abc\" is not a whole number" },
	{ { "--worker-threads=0" }, "--worker-threads: \"0\" is out of range 1..1024" },
	{ { "--shutdown-grace", "-1" }, "--shutdown-grace: \"-1\" is not a whole number" },
	{ { "--grpc-max-recv-bytes=1k" }, "--grpc-max-recv-bytes: \"1k\" is not a whole number" },
	{ { "--log-level", "loud" }, "--log-level: \"loud\" is not one of debug, info, warn, error" },
	{ { "--log-format=xml" }, "--log-format: \"xml\" is not one of logfmt, json" },
	{ { "--cgroup-driver", "x" }, "--cgroup-driver: \"x\" is not one of cgroupfs, systemd" },
	{ { "--socket", "rel.sock" }, "--socket: \"rel.sock\" is not an absolute path" },
	{ { "--socket=" }, "--socket: \"\" is not an absolute path" },
	{ { "--default-runtime", "b@d" },
	  "--default-runtime: \"b@d\" is not a valid runtime name (use letters, digits, '.', '_', '-')" },
	{ { "--default-runtime", "nope" },
	  "default_runtime \"nope\" is not a configured runtime (configured: crun, runc)" },
	{ { "--runtime", "kata" }, "--runtime: \"kata\" is not NAME=PATH" },
	{ { "--runtime", "=/x" }, "--runtime: runtime name is empty" },
	{ { "--runtime", "kata=" }, "--runtime: runtime path is empty" },
	{ { "--runtime=kata=bin/kata" },
	  "--runtime: \"bin/kata\" is a relative path (use an absolute path or a bare name found in "
	  "PATH)" },
	{ { "--bogus" }, "unknown flag \"--bogus\" (see --help)" },
	{ { "--event-queue-length", "8" }, "--event-queue-length: \"8\" is out of range 16..65536" },
	{ { "--layer-usage-period=0" }, "--layer-usage-period: \"0\" is out of range 1..3600" },
	{ { "--layer-usage-files-per-second", "99" },
	  "--layer-usage-files-per-second: \"99\" is out of range 100..10000000" },
	{ { "--metrics-address", "9090" },
	  "--metrics-address: \"9090\" is not host:port (\"127.0.0.1:9090\", \"[::1]:9090\", \":9090\")" },
	{ { "--metrics-address=::1:9090" },
	  "--metrics-address: \"::1:9090\" is not host:port (\"127.0.0.1:9090\", \"[::1]:9090\", \":9090\")" },
	{ { "--metrics-address=h:70000" },
	  "--metrics-address: \"h:70000\" is not host:port (\"127.0.0.1:9090\", \"[::1]:9090\", \":9090\")" },
	{ { "--bogus=1" }, "unknown flag \"--bogus\" (see --help)" },
	{ { "--sock", "/x" }, "unknown flag \"--sock\" (see --help)" },
	{ { "-x" }, "unexpected argument \"-x\" (crid takes only --flags; see --help)" },
	{ { "serve" }, "unexpected argument \"serve\" (crid takes only --flags; see --help)" },
	{ { "--socket" }, "--socket: missing value" },
	{ { "--socket", "--run-root", "/x" }, "--socket: missing value" },
	{ { "--config" }, "--config: missing value" },
	{ { "--help=yes" }, "--help: takes no value" },
	{ { "--max-concurrent-downloads", "0" },
	  "--max-concurrent-downloads: \"0\" is out of range 1..64" },
	{ { "--max-concurrent-downloads=65" },
	  "--max-concurrent-downloads: \"65\" is out of range 1..64" },
	{ { "--pull-progress-timeout", "0" }, "--pull-progress-timeout: \"0\" is out of range 1..3600" },
	{ { "--pull-progress-timeout=60s" }, "--pull-progress-timeout: \"60s\" is not a whole number" },
	{ { "--pinned-image=" }, "--pinned-image: image reference is empty" },
	{ { "--pinned-image", "busy box" },
	  "--pinned-image: \"busy box\" is not an image reference (holds whitespace or control "
	  "characters)" },
	{ { "--pinned-image", "--insecure-registry", "x.io" }, "--pinned-image: missing value" },
	{ { "--registry-mirror", "docker.io" }, "--registry-mirror: \"docker.io\" is not HOST=URL" },
	{ { "--registry-mirror", "=https://m.local" }, "--registry-mirror: registry host is empty" },
	{ { "--registry-mirror", "docker.io=" }, "--registry-mirror: mirror url is empty" },
	{ { "--registry-mirror=docker.io=mirror.local" },
	  "--registry-mirror: \"mirror.local\" is not a mirror URL (needs http:// or https://)" },
	{ { "--registry-mirror", "https://docker.io=https://m.local" },
	  "--registry-mirror: \"https://docker.io\" is not a registry host (write it without a scheme, "
	  "as in image names)" },
	{ { "--insecure-registry", "docker.io/library" },
	  "--insecure-registry: \"docker.io/library\" is not a registry host (holds a '/'; write only "
	  "host[:port])" },
	{ { "--insecure-registry=" }, "--insecure-registry: registry host is empty" },
	{ { "--registry-ca", "docker.io" }, "--registry-ca: \"docker.io\" is not HOST=FILE" },
	{ { "--registry-ca", "docker.io=ca.pem" }, "--registry-ca: \"ca.pem\" is not an absolute path" },
	{ { "--registry-ca", "local host=/ca.pem" },
	  "--registry-ca: \"local host\" is not a registry host (holds whitespace or control "
	  "characters)" },
	{ { "--registry-mirrors-only", "docker.io" },
	  "--registry-mirrors-only: docker.io: mirrors_only needs at least one mirror (add one with "
	  "--registry-mirror docker.io=URL)" },
	{ { "--registry-mirrors-only", "quay.io", "--registry-mirror", "docker.io=https://m.local" },
	  "--registry-mirrors-only: quay.io: mirrors_only needs at least one mirror (add one with "
	  "--registry-mirror quay.io=URL)" },
	{ { "--registry-mirrors-only" }, "--registry-mirrors-only: missing value" },
	/* a bad flag stops loading even when a later flag is --help */
	{ { "--bogus", "--help" }, "unknown flag \"--bogus\" (see --help)" },
};

START_TEST(test_bad_flag)
{
	const struct bad_flags *c = &bad_flags[_i];
	struct crid_config cfg;
	struct crid_err err;

	write_main("");
	ck_assert_int_lt(load(&cfg, &err, c->args[0], c->args[1], c->args[2], c->args[3], NULL), 0);
	ck_assert_str_eq(err.msg, c->msg);
	ck_assert_int_eq(err.status, CRID_INVALID_ARGUMENT);
	assert_zeroed(&cfg);
}
END_TEST

/* Runs load with stdout sent to a file, and returns what it printed. */
static char *load_captured(struct crid_config *cfg, struct crid_err *err, const char *flag, int *r)
{
	char out_path[PATH_MAX];
	int saved, fd;
	FILE *f;
	char *text = calloc(1, 65536);

	ck_assert_ptr_nonnull(text);
	FMT(out_path, "%s/stdout.txt", test_dir);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
	close(fd);
	*r = load(cfg, err, flag, NULL);
	fflush(stdout);
	ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0);
	close(saved);
	f = fopen(out_path, "re");
	ck_assert_ptr_nonnull(f);
	fread(text, 1, 65535, f);
	fclose(f);
	return text;
}

START_TEST(test_help)
{
	struct crid_config cfg;
	struct crid_err err;
	_cleanup_free_ char *out = NULL;
	const struct crid_setting *s;
	size_t n;
	int r;
	static const char *const extra[] = { "--runtime NAME=PATH", "--config FILE", "--config-dir DIR",
					     "--help", "--version", "--pinned-image REF ",
					     "--registry-mirror HOST=URL ", "--insecure-registry HOST ",
					     "--registry-ca HOST=FILE ", "--registry-mirrors-only HOST ",
					     "crun=/usr/bin/crun, runc=/usr/bin/runc",
					     CRID_DEFAULT_CONFIG_FILE, CRID_DEFAULT_CONFIG_DIR };

	/* --help works even when the config file is broken. */
	write_main("log_level: loud\n");
	out = load_captured(&cfg, &err, "--help", &r);
	ck_assert_int_eq(r, CRID_CONFIG_EXIT);
	assert_zeroed(&cfg);
	s = crid_config_settings(&n);
	for (size_t i = 0; i < n; i++) {
		char line[256];

		FMT(line, "%s %s ", s[i].flag, s[i].metavar);
		ck_assert_msg(strstr(out, line), "help lacks %s", line);
		FMT(line, "(default %s)\n", s[i].def);
		ck_assert_msg(strstr(out, line), "help lacks %s", line);
	}
	for (size_t i = 0; i < CRID_ARRAY_SIZE(extra); i++)
		ck_assert_msg(strstr(out, extra[i]), "help lacks %s", extra[i]);
	ck_assert_ptr_nonnull(strstr(out, "--shutdown-grace SECONDS"));
	ck_assert_ptr_nonnull(strstr(out, "--pull-progress-timeout SECONDS"));
	ck_assert_ptr_nonnull(strstr(out, "(default 16777216)"));
	free(take_ptr(&out));
	out = load_captured(&cfg, &err, "-h", &r);
	ck_assert_int_eq(r, CRID_CONFIG_EXIT);
	ck_assert_ptr_nonnull(strstr(out, "Usage: crid"));
}
END_TEST

START_TEST(test_version)
{
	struct crid_config cfg;
	struct crid_err err;
	_cleanup_free_ char *out = NULL;
	int r;

	write_main("");
	out = load_captured(&cfg, &err, "--version", &r);
	ck_assert_int_eq(r, CRID_CONFIG_EXIT);
	ck_assert_str_eq(out, "crid " CRID_VERSION "\n");
	assert_zeroed(&cfg);
}
END_TEST

START_TEST(test_to_json)
{
	struct crid_config cfg;
	struct crid_err err;
	json_t *j;
	static const char *const keys[] = {
		"config_file",	   "config_dir",	  "socket",	    "run_root",
		"state_root",	   "log_level",		  "log_format",	    "cgroup_driver",
		"default_runtime", "runtimes",		  "grpc_max_recv_bytes", "grpc_max_send_bytes",
		"worker_threads",  "shutdown_grace_s",	  "max_concurrent_downloads",
		"pull_progress_timeout_s", "pinned_images", "registries",
		"cni_conf_dir",    "cni_bin_dirs",	  "cdi_spec_dirs",	  "cni_plugin_timeout_s", "event_queue_length",
		"layer_usage_period_s", "layer_usage_files_per_s", "metrics_address", "seccomp_default",
		"stream_address", "stream_tls_cert", "stream_tls_key", "stream_idle_timeout_s", "stream_max_sessions",
		"grpc_max_pending_bytes", "grpc_request_timeout_s", "grpc_max_connections",
		"grpc_preface_timeout_s", "grpc_idle_timeout_s", "max_concurrent_pulls",
		"pull_min_bytes_per_s", "pull_rate_window_s", "state_free_reserve_bytes",
	};

	write_main(full_file);
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	j = crid_config_to_json(&cfg);
	ck_assert_ptr_nonnull(j);
	for (size_t i = 0; i < CRID_ARRAY_SIZE(keys); i++)
		ck_assert_msg(json_object_get(j, keys[i]), "json lacks %s", keys[i]);
	ck_assert_uint_eq(json_object_size(j), CRID_ARRAY_SIZE(keys));
	ck_assert_str_eq(json_string_value(json_object_get(j, "config_file")), main_path);
	ck_assert_str_eq(json_string_value(json_object_get(j, "socket")), "/srv/crid/api.sock");
	ck_assert_str_eq(json_string_value(json_object_get(j, "log_level")), "debug");
	ck_assert_str_eq(json_string_value(json_object_get(j, "log_format")), "json");
	ck_assert_str_eq(json_string_value(json_object_get(j, "cgroup_driver")), "systemd");
	ck_assert_str_eq(json_string_value(json_object_get(j, "default_runtime")), "runc");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "grpc_max_send_bytes")), 1073741824);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "worker_threads")), 1024);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "shutdown_grace_s")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "max_concurrent_downloads")), 64);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "pull_progress_timeout_s")), 1);
	ck_assert_uint_eq(json_object_size(json_object_get(j, "runtimes")), 3);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_object_get(j, "runtimes"), "youki"), "path")),
			 "youki");
	json_decref(j);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_to_json_without_config_file)
{
	struct crid_config cfg;
	struct crid_err err;
	char missing[PATH_MAX];
	char *argv[] = { "crid", NULL };
	json_t *j;

	FMT(missing, "%s/missing.yaml", test_dir);
	ck_assert_int_eq(crid_config_load_at(&cfg, 1, argv, missing, dropin_dir, &err), CRID_CONFIG_RUN);
	j = crid_config_to_json(&cfg);
	ck_assert_ptr_nonnull(j);
	ck_assert(json_is_null(json_object_get(j, "config_file")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "log_level")), "info");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "grpc_max_recv_bytes")), 16777216);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "max_concurrent_downloads")), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "pull_progress_timeout_s")), 60);
	ck_assert(json_is_array(json_object_get(j, "pinned_images")));
	ck_assert_uint_eq(json_array_size(json_object_get(j, "pinned_images")), 0);
	ck_assert(json_is_array(json_object_get(j, "registries")));
	ck_assert_uint_eq(json_array_size(json_object_get(j, "registries")), 0);
	json_decref(j);
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_find_runtime)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_str_eq(crid_config_find_runtime(&cfg, "")->name, "crun");
	ck_assert_str_eq(crid_config_find_runtime(&cfg, NULL)->name, "crun");
	ck_assert_str_eq(crid_config_find_runtime(&cfg, "runc")->path, "/usr/bin/runc");
	ck_assert_ptr_null(crid_config_find_runtime(&cfg, "kata"));
	ck_assert_ptr_null(crid_config_find_runtime(&cfg, "CRUN"));
	crid_config_free(&cfg);
}
END_TEST

START_TEST(test_cgroup_driver_name)
{
	ck_assert_str_eq(crid_cgroup_driver_name(CRID_CGROUP_CGROUPFS), "cgroupfs");
	ck_assert_str_eq(crid_cgroup_driver_name(CRID_CGROUP_SYSTEMD), "systemd");
}
END_TEST

START_TEST(test_repeated_loads)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("worker_threads: 11\n");
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(load(&cfg, &err, "--log-level", "debug", NULL), CRID_CONFIG_RUN);
		ck_assert_uint_eq(cfg.worker_threads, 11);
		ck_assert_int_eq(cfg.log_level, CRID_LOG_DEBUG);
		crid_config_free(&cfg);
		ck_assert_int_lt(load(&cfg, &err, "--worker-threads", "x", NULL), 0);
	}
}
END_TEST

/* packaging/crid.yaml, found from this file's path (tests/unit/test_config.c,
 * relative to the directory make runs in, or absolute). */
static char *packaged_config(void)
{
	static const char self[] = "tests/unit/test_config.c";
	const char *file = __FILE__;
	size_t prefix = strlen(file) - strlen(self);
	char path[PATH_MAX];
	FILE *f;
	char *text = calloc(1, 65536);

	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(file + prefix, self);
	FMT(path, "%.*spackaging/crid.yaml", (int)prefix, file);
	f = fopen(path, "re");
	ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
	fread(text, 1, 65535, f);
	fclose(f);
	return text;
}

START_TEST(test_packaged_config)
{
	struct crid_config cfg;
	struct crid_err err;
	_cleanup_free_ char *text = packaged_config();
	_cleanup_free_ char *uncommented = calloc(1, strlen(text) + 1);
	_cleanup_free_ char *example = calloc(1, strlen(text) + 1);
	const struct crid_setting *s;
	const struct crid_registry_config *reg;
	size_t n;
	char *out = uncommented, *ex;
	bool in_setting = false;

	/* As shipped, every key is commented out: the built-in defaults apply. */
	write_main(text);
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	assert_defaults(&cfg);
	crid_config_free(&cfg);

	/* Settings are "#key: value" and the "#  nested" lines right after it;
	 * explanations are "# text", and "#  " lines that follow them (indented
	 * explanations and examples). Uncommented, the file must hold every key
	 * and state the defaults. */
	ck_assert_ptr_nonnull(uncommented);
	for (char *line = text; *line;) {
		char *end = strchrnul(line, '\n');
		size_t len = (size_t)(end - line) + (*end ? 1 : 0);
		bool nested = strncmp(line, "#  ", 3) == 0;

		if (line[0] == '#' && ((line[1] != ' ' && !nested) || (nested && in_setting))) {
			memcpy(out, line + 1, len - 1);
			out += len - 1;
			in_setting = line[1] != '\n' && line[1] != '\0';
		} else {
			if (line[0] != '#') {
				memcpy(out, line, len);
				out += len;
			}
			in_setting = false;
		}
		line += len;
	}
	s = crid_config_settings(&n);
	for (size_t i = 0; i < n; i++) {
		char want[128];

		FMT(want, "\n%s: %s\n", s[i].key, *s[i].def ? s[i].def : "\"\""); /* "": written as such */
		ck_assert_msg(strstr(uncommented, want), "packaging/crid.yaml lacks %s", s[i].key);
	}
	ck_assert_ptr_nonnull(strstr(uncommented, "\npinned_images: []\n"));
	ck_assert_ptr_nonnull(strstr(uncommented, "\nregistries: []\n"));
	ck_assert_ptr_nonnull(strstr(uncommented, "\ncni_bin_dirs: [/opt/cni/bin, /usr/lib/cni]\n"));
	ck_assert_ptr_nonnull(strstr(uncommented, "\ncdi_spec_dirs: [/etc/cdi, /var/run/cdi]\n"));
	ck_assert_ptr_nonnull(strstr(uncommented, "\nruntimes:\n  crun:\n    path: /usr/bin/crun\n"));
	write_main(uncommented);
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	assert_defaults(&cfg);
	crid_config_free(&cfg);

	/* The registries example ("# registries:" and the "# " lines after it)
	 * must be valid as documented. */
	ck_assert_ptr_nonnull(example);
	ex = strstr(text, "\n# registries:\n");
	ck_assert_ptr_nonnull(ex);
	out = example;
	for (char *line = ex + 1; strncmp(line, "# ", 2) == 0;) {
		char *end = strchrnul(line, '\n');
		size_t len = (size_t)(end - line) + (*end ? 1 : 0);

		memcpy(out, line + 2, len - 2);
		out += len - 2;
		line += len;
	}
	write_main(example);
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.n_registries, 3);
	reg = crid_config_find_registry(&cfg, "docker.io");
	ck_assert_ptr_nonnull(reg);
	ck_assert_uint_eq(reg->n_mirrors, 2);
	ck_assert_str_eq(reg->mirrors[0].ca_file, "/etc/crid/certs/mirror-ca.pem");
	ck_assert(crid_config_find_registry(&cfg, "registry.local:5000")->insecure);
	ck_assert(crid_config_find_registry(&cfg, "quay.io")->mirrors_only);
	crid_config_free(&cfg);
}
END_TEST

/* cdi_spec_dirs: YAML list, replaced by a drop-in, by the flag; may be
 * empty; entries must be absolute. */
START_TEST(test_cdi_spec_dirs)
{
	struct crid_config cfg;
	struct crid_err err;

	write_main("cdi_spec_dirs: [/a, /b/c]\n");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.n_cdi_spec_dirs, 2);
	ck_assert_str_eq(cfg.cdi_spec_dirs[1], "/b/c");
	crid_config_free(&cfg);
	ck_assert_int_eq(load(&cfg, &err, "--cdi-spec-dirs", "/x:/y:/z", NULL), CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.n_cdi_spec_dirs, 3);
	ck_assert_str_eq(cfg.cdi_spec_dirs[2], "/z");
	crid_config_free(&cfg);
	ck_assert_int_eq(load(&cfg, &err, "--cdi-spec-dirs=", NULL), CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.n_cdi_spec_dirs, 0);
	crid_config_free(&cfg);
	write_main("cdi_spec_dirs: []\n");
	ck_assert_int_eq(load(&cfg, &err, NULL), CRID_CONFIG_RUN);
	ck_assert_uint_eq(cfg.n_cdi_spec_dirs, 0);
	crid_config_free(&cfg);
	write_main("cdi_spec_dirs: [relative]\n");
	ck_assert_int_lt(load(&cfg, &err, NULL), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "cdi_spec_dirs"));
	write_main("cdi_spec_dirs: /etc/cdi\n");
	ck_assert_int_lt(load(&cfg, &err, NULL), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "expected a list"));
	write_main("");
	ck_assert_int_lt(load(&cfg, &err, "--cdi-spec-dirs", "/a::/b", NULL), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "--cdi-spec-dirs"));
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_comments_only_and_null_file);
	tcase_add_test(tc, test_main_file_values);
	tcase_add_test(tc, test_dropins_override_in_name_order);
	tcase_add_test(tc, test_runtimes_from_dropin_and_flag);
	tcase_add_test(tc, test_runtime_handler_options);
	tcase_add_test(tc, test_flags_override_files);
	tcase_add_test(tc, test_config_flag_equals_form);
	tcase_add_test(tc, test_default_file_missing_is_fine);
	tcase_add_test(tc, test_explicit_config_missing_is_error);
	tcase_add_test(tc, test_missing_dropin_dir_is_fine);
	tcase_add_test(tc, test_config_paths_of_the_wrong_type);
	tcase_add_loop_test(tc, test_bad_file, 0, (int)CRID_ARRAY_SIZE(bad_files));
	tcase_add_test(tc, test_stream_settings);
	tcase_add_test(tc, test_default_runtime_not_configured);
	tcase_add_loop_test(tc, test_bad_flag, 0, (int)CRID_ARRAY_SIZE(bad_flags));
	tcase_add_test(tc, test_help);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_to_json);
	tcase_add_test(tc, test_cdi_spec_dirs);
	tcase_add_test(tc, test_to_json_without_config_file);
	tcase_add_test(tc, test_find_runtime);
	tcase_add_test(tc, test_cgroup_driver_name);
	tcase_add_test(tc, test_repeated_loads);
	tcase_add_test(tc, test_packaged_config);
	suite_add_tcase(s, tc);
	return s;
}
int main(void)
{
	return run_config_suite(config_suite());
}
