/* OCI runtime calls (oci_runtime.h): each one a posix_spawn of the runtime
 * binary with its output on pipes, read with poll until it exits. */
#include "common/clock.h"
#include "oci/oci_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/proctree.h"
#include "common/spawn.h"

#define RUNTIME_CALL_TIMEOUT_NS (60LL * 1000000000LL)
#define MAX_RUNTIME_STDERR 8192
/* After the runtime exits, output still in flight is read for this long: a
 * background process the command left may hold the pipes open for ever. */
#define DRAIN_AFTER_EXIT_NS (50LL * 1000000)
/* A timed-out exec's processes must be gone before ExecSync answers. */
#define KILL_WAIT_MS 2000

/* A bounded output buffer: keeps the first max bytes, drops the rest. */
struct sink {
	char *data;
	size_t len, cap, max;
};

static int sink_add(struct sink *s, const char *buf, size_t n)
{
	size_t take = s->len + n > s->max ? s->max - s->len : n;

	if (take == 0)
		return 0;
	if (s->len + take + 1 > s->cap) {
		/* Doubling: megabytes of output cost linear time, not quadratic. */
		size_t cap = s->cap ? s->cap : 4096;
		char *grown;

		while (cap < s->len + take + 1)
			cap *= 2;
		if (cap > s->max + 1)
			cap = s->max + 1;
		grown = realloc(s->data, cap);
		if (!grown)
			return -ENOMEM;
		s->data = grown;
		s->cap = cap;
	}
	memcpy(s->data + s->len, buf, take);
	s->len += take;
	s->data[s->len] = '\0';
	return 0;
}

struct run {
	const char *const *argv;
	const char *stdin_data;		/* NULL: /dev/null */
	int64_t deadline_ns;		/* 0: the default bound */
	const char *pid_file;		/* exec: kill this pid at the deadline */
	struct sink out, errout;
	int status;			/* waitpid status */
	int timed_out;
};

static pid_t read_pid_file(const char *path)
{
	char buf[32] = { 0 };
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	long pid = 0;

	if (fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0)
		pid = strtol(buf, NULL, 10);
	return pid > 1 && pid < INT32_MAX ? (pid_t)pid : 0;
}

/* At the deadline: the runtime, the process it started in the container
 * (the pid file) and everything either started, orphans of their process
 * groups included. */
static void kill_call(const struct run *r, pid_t pid)
{
	if (r->pid_file) {
		pid_t roots[] = { pid, read_pid_file(r->pid_file) };

		crid_kill_tree(roots, CRID_ARRAY_SIZE(roots), KILL_WAIT_MS);
	}
	kill(pid, SIGKILL);
}

/* Spawns argv[0] and collects its output until it exits. Signals: the child
 * starts with an empty mask and default dispositions (crid blocks its
 * shutdown signals and ignores SIGPIPE). */
static int run_process(struct run *r, struct crid_err *err)
{
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, in_pipe[2] = { -1, -1 };
	struct crid_spawn sp;
	size_t in_off = 0, in_len = r->stdin_data ? strlen(r->stdin_data) : 0;
	int64_t deadline = r->deadline_ns ? r->deadline_ns : crid_monotonic_ns() + RUNTIME_CALL_TIMEOUT_NS;
	int64_t exited_at = 0; /* when the pidfd said the runtime exited */
	_cleanup_close_ int pidfd = -1;
	bool killed = false;
	pid_t pid;
	int rc;

	if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0 ||
	    (r->stdin_data && pipe2(in_pipe, O_CLOEXEC) < 0)) {
		rc = crid_err_set(err, CRID_INTERNAL, errno, "run %s: create pipe", r->argv[0]);
		goto close_pipes;
	}
	/* Its own session: a signal to crid's process group is not its. */
	rc = crid_spawn_init(&sp, POSIX_SPAWN_SETSID);
	if (rc == 0) {
		if (r->stdin_data)
			rc = posix_spawn_file_actions_adddup2(&sp.actions, in_pipe[0], STDIN_FILENO);
		else
			rc = posix_spawn_file_actions_addopen(&sp.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
		if (rc == 0 && (rc = posix_spawn_file_actions_adddup2(&sp.actions, out_pipe[1], STDOUT_FILENO)) == 0 &&
		    (rc = posix_spawn_file_actions_adddup2(&sp.actions, err_pipe[1], STDERR_FILENO)) == 0)
			rc = posix_spawn(&pid, r->argv[0], &sp.actions, &sp.attr, (char *const *)r->argv, environ);
		crid_spawn_destroy(&sp);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	out_pipe[1] = err_pipe[1] = -1;
	if (in_pipe[0] >= 0) {
		close(in_pipe[0]);
		in_pipe[0] = -1;
	}
	if (rc != 0) {
		rc = crid_err_set(err, CRID_FAILED_PRECONDITION, rc, "run %s", r->argv[0]);
		goto close_pipes;
	}
	if (in_pipe[1] >= 0)
		fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
	/* Without a pidfd (old kernels) the pipes' end is the only sign. */
	pidfd = pidfd_open(pid, 0);
	for (;;) {
		struct pollfd p[4];
		int n = 0, timeout;
		int64_t now = crid_monotonic_ns(), wake;

		if (out_pipe[0] >= 0)
			p[n++] = (struct pollfd){ .fd = out_pipe[0], .events = POLLIN };
		if (err_pipe[0] >= 0)
			p[n++] = (struct pollfd){ .fd = err_pipe[0], .events = POLLIN };
		if (in_pipe[1] >= 0)
			p[n++] = (struct pollfd){ .fd = in_pipe[1], .events = POLLOUT };
		if (n == 0)
			break;
		if (exited_at && now >= exited_at + DRAIN_AFTER_EXIT_NS)
			break;
		if (pidfd >= 0 && !exited_at)
			p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		if (now >= deadline && !killed && !exited_at) {
			kill_call(r, pid);
			killed = true;
			r->timed_out = 1;
			now = crid_monotonic_ns();
		}
		wake = exited_at ? exited_at + DRAIN_AFTER_EXIT_NS : killed ? now + 1000000000LL : deadline;
		timeout = wake > now ? (int)((wake - now) / 1000000 + 1) : 0;
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			char buf[8192];
			ssize_t got;

			if (!p[i].revents)
				continue;
			if (p[i].fd == pidfd) {
				exited_at = crid_monotonic_ns();
				continue;
			}
			if (p[i].fd == in_pipe[1]) {
				got = write(in_pipe[1], r->stdin_data + in_off, in_len - in_off);
				if (got > 0)
					in_off += (size_t)got;
				if (got < 0 && errno != EAGAIN) {
					close(in_pipe[1]);
					in_pipe[1] = -1;
				} else if (in_off == in_len) {
					close(in_pipe[1]);
					in_pipe[1] = -1;
				}
				continue;
			}
			got = read(p[i].fd, buf, sizeof(buf));
			if (got > 0) {
				struct sink *s = p[i].fd == out_pipe[0] ? &r->out : &r->errout;

				if (sink_add(s, buf, (size_t)got) < 0) {
					kill_call(r, pid);
					killed = true;
				}
			} else if (got == 0 || errno != EINTR) {
				if (p[i].fd == out_pipe[0]) {
					close(out_pipe[0]);
					out_pipe[0] = -1;
				} else {
					close(err_pipe[0]);
					err_pipe[0] = -1;
				}
			}
		}
		/* Output pipes may stay open in processes the call left behind. */
		if (killed && crid_monotonic_ns() > deadline + 5000000000LL)
			break;
	}
	while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
		;
	rc = 0;
close_pipes:
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
		if (in_pipe[i] >= 0)
			close(in_pipe[i]);
	}
	return rc;
}

static void run_clear(struct run *r)
{
	free(r->out.data);
	free(r->errout.data);
	r->out.data = r->errout.data = NULL;
}

/* The runtime's complaint, one line, for an error message. */
static const char *complaint(struct run *r)
{
	char *s = r->errout.data;
	size_t len;

	if (!s || !*s)
		return "no error output";
	/* runc and crun log JSON or "level=error msg=..." lines: keep the last. */
	len = strlen(s);
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
		s[--len] = '\0';
	return strrchr(s, '\n') ? strrchr(s, '\n') + 1 : s;
}

static bool exited_ok(const struct run *r)
{
	return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

/* Runs "<runtime> --root ROOT <args...>". */
static int call(const struct crid_oci_runtime *rt, const char *const *args, size_t n, const char *stdin_data,
		struct run *r, struct crid_err *err)
{
	const char *argv[16 + CRID_OCI_MAX_ARGS];
	size_t k = 0;

	if (n + rt->n_args + 4 > CRID_ARRAY_SIZE(argv))
		return crid_err_set(err, CRID_INTERNAL, E2BIG, "runtime call with %zu arguments", n);
	argv[k++] = rt->path;
	argv[k++] = "--root";
	argv[k++] = rt->root;
	for (size_t i = 0; i < rt->n_args; i++)
		argv[k++] = rt->args[i];
	for (size_t i = 0; i < n; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	memset(r, 0, sizeof(*r));
	r->argv = argv;
	r->stdin_data = stdin_data;
	r->out.max = r->errout.max = MAX_RUNTIME_STDERR;
	return run_process(r, err);
}

static int simple(const struct crid_oci_runtime *rt, const char *verb, const char *const *args, size_t n,
		  const char *id, struct crid_err *err)
{
	struct run r;
	int rc = call(rt, args, n, NULL, &r, err);

	if (rc == 0 && !exited_ok(&r))
		rc = crid_err_set(err, CRID_INTERNAL, 0, "%s %s of container %s: %s", rt->handler, verb, id,
				  complaint(&r));
	run_clear(&r);
	return rc;
}

#define FEATURES_OUTPUT_MAX 65536

int crid_oci_features(const struct crid_oci_runtime *rt, json_t **features, struct crid_err *err)
{
	const char *argv[] = { rt->path, "features", NULL };
	struct run r = { .argv = argv };
	int rc;

	*features = NULL;
	r.out.max = FEATURES_OUTPUT_MAX;
	r.errout.max = MAX_RUNTIME_STDERR;
	rc = run_process(&r, err);
	if (rc == 0 && exited_ok(&r))
		*features = json_loadb(r.out.data ? r.out.data : "", r.out.len, 0, NULL);
	if (rc == 0 && !*features)
		rc = crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "%s features: %s", rt->handler, complaint(&r));
	run_clear(&r);
	return rc;
}

int crid_oci_version(const struct crid_oci_runtime *rt, char *buf, size_t size, struct crid_err *err)
{
	const char *argv[] = { rt->path, "--version", NULL };
	struct run r = { .argv = argv };
	int rc;

	r.out.max = r.errout.max = MAX_RUNTIME_STDERR;
	rc = run_process(&r, err);
	if (rc == 0 && !(exited_ok(&r) && r.out.data))
		rc = crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "%s --version: %s", rt->handler, complaint(&r));
	if (rc == 0)
		snprintf(buf, size, "%.*s", (int)strcspn(r.out.data, "\n"), r.out.data);
	run_clear(&r);
	return rc;
}

int crid_oci_start(const struct crid_oci_runtime *rt, const char *id, struct crid_err *err)
{
	const char *args[] = { "start", id };

	return simple(rt, "start", args, 2, id, err);
}

int crid_oci_kill(const struct crid_oci_runtime *rt, const char *id, int sig, int all, struct crid_err *err)
{
	char signum[16];
	const char *args[] = { "kill", all ? "--all" : id, all ? id : signum, signum };

	snprintf(signum, sizeof(signum), "%d", sig);
	return simple(rt, "kill", args, all ? 4 : 3, id, err);
}

int crid_oci_delete(const struct crid_oci_runtime *rt, const char *id, struct crid_err *err)
{
	const char *args[] = { "delete", "--force", id };
	struct run r;
	int rc = call(rt, args, 3, NULL, &r, err);

	/* "does not exist" / "not found": nothing to delete. */
	if (rc == 0 && !exited_ok(&r)) {
		const char *why = complaint(&r);

		if (!strstr(why, "does not exist") && !strstr(why, "not found") && !strstr(why, "No such file"))
			rc = crid_err_set(err, CRID_INTERNAL, 0, "%s delete of container %s: %s", rt->handler, id,
					  why);
	}
	run_clear(&r);
	return rc;
}

int crid_oci_state(const struct crid_oci_runtime *rt, const char *id, json_t **state, struct crid_err *err)
{
	const char *args[] = { "state", id };
	struct run r;
	int rc = call(rt, args, 2, NULL, &r, err);

	if (rc == 0 && !exited_ok(&r))
		rc = crid_err_set(err, CRID_NOT_FOUND, 0, "%s state of container %s: %s", rt->handler, id,
				  complaint(&r));
	if (rc == 0) {
		*state = json_loads(r.out.data ? r.out.data : "", 0, NULL);
		if (!*state)
			rc = crid_err_set(err, CRID_INTERNAL, 0, "%s state of container %s: not JSON", rt->handler,
					  id);
	}
	run_clear(&r);
	return rc;
}

int crid_oci_stats(const struct crid_oci_runtime *rt, const char *id, uint64_t *cpu_ns, uint64_t *mem_bytes,
		   struct crid_err *err)
{
	const char *args[] = { "events", "--stats", id };
	json_auto_t *doc = NULL;
	json_t *data, *cpu, *mem;
	struct run r;
	int rc = call(rt, args, 3, NULL, &r, err);

	if (rc == 0 && !exited_ok(&r))
		rc = crid_err_set(err, CRID_NOT_FOUND, 0, "%s events of container %s: %s", rt->handler, id,
				  complaint(&r));
	if (rc == 0) {
		doc = json_loadb(r.out.data ? r.out.data : "", r.out.len, 0, NULL);
		data = json_object_get(doc, "data");
		cpu = json_object_get(json_object_get(json_object_get(data, "cpu"), "usage"), "total");
		mem = json_object_get(json_object_get(json_object_get(data, "memory"), "usage"), "usage");
		if (!json_is_integer(cpu) || !json_is_integer(mem))
			rc = crid_err_set(err, CRID_INTERNAL, 0, "%s events of container %s: no CPU or memory usage",
					  rt->handler, id);
		else
			*cpu_ns = (uint64_t)json_integer_value(cpu), *mem_bytes = (uint64_t)json_integer_value(mem);
	}
	run_clear(&r);
	return rc;
}

int crid_oci_update(const struct crid_oci_runtime *rt, const char *id, json_t *resources, struct crid_err *err)
{
	_cleanup_free_ char *text = json_dumps(resources, JSON_COMPACT);
	const char *args[] = { "update", "--resources", "-", id };
	struct run r;
	int rc;

	if (!text)
		return crid_err_nomem(err, "resources");
	rc = call(rt, args, 4, text, &r, err);
	if (rc == 0 && !exited_ok(&r))
		rc = crid_err_set(err, CRID_INTERNAL, 0, "%s update of container %s: %s", rt->handler, id,
				  complaint(&r));
	run_clear(&r);
	return rc;
}

void crid_oci_runtime_for_pod(const char *run_root, const struct crid_runtime_handler *h, bool host_network,
			      char *root_buf, size_t size, struct crid_oci_runtime *out)
{
	memset(out, 0, sizeof(*out));
	if (h->root)
		snprintf(root_buf, size, "%s", h->root);
	else
		snprintf(root_buf, size, "%s/runtime/%s", run_root, h->name);
	out->handler = h->name;
	out->path = h->path;
	out->root = root_buf;
	for (size_t i = 0; i < h->n_runtime_args && out->n_args < CRID_OCI_MAX_ARGS - 1; i++)
		out->args[out->n_args++] = h->runtime_args[i];
	/* Last: gVisor takes the last of a flag given twice. */
	if (h->sandbox_per_pod && host_network)
		out->args[out->n_args++] = "--network=host";
	out->args[out->n_args] = NULL;
}

void crid_oci_runtime_for(const char *run_root, const struct crid_runtime_handler *h, char *root_buf, size_t size,
			  struct crid_oci_runtime *out)
{
	crid_oci_runtime_for_pod(run_root, h, false, root_buf, size, out);
}

void crid_exec_result_free(struct crid_exec_result *r)
{
	free(r->out);
	free(r->errout);
	memset(r, 0, sizeof(*r));
}

int crid_oci_exec_sync(const struct crid_oci_runtime *rt, const char *id, json_t *process, int64_t deadline_ns,
		       size_t max_output, const char *tmp_dir, struct crid_exec_result *res, struct crid_err *err)
{
	_cleanup_free_ char *process_path = NULL, *pid_path = NULL;
	_cleanup_free_ char *text = json_dumps(process, JSON_COMPACT);
	char rnd[17];
	const char *argv[10 + CRID_OCI_MAX_ARGS];
	struct run r = { 0 };
	int rc;

	memset(res, 0, sizeof(*res));
	if (!text)
		return crid_err_nomem(err, "exec process");
	if ((rc = crid_random_hex(rnd, 16, err)) < 0)
		return rc;
	if (asprintf(&process_path, "%s/exec-%s.json", tmp_dir, rnd) < 0 ||
	    asprintf(&pid_path, "%s/exec-%s.pid", tmp_dir, rnd) < 0)
		return crid_err_nomem(err, "exec paths");
	{
		_cleanup_close_ int dirfd = open(tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dirfd < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "open %s", tmp_dir);
		rc = crid_replace_file_at(dirfd, strrchr(process_path, '/') + 1, text, strlen(text), 0600, err);
		if (rc < 0)
			return rc;
	}
	{
		size_t k = 0;

		argv[k++] = rt->path;
		argv[k++] = "--root";
		argv[k++] = rt->root;
		for (size_t i = 0; i < rt->n_args; i++)
			argv[k++] = rt->args[i];
		argv[k++] = "exec";
		argv[k++] = "--process";
		argv[k++] = process_path;
		argv[k++] = "--pid-file";
		argv[k++] = pid_path;
		argv[k++] = id;
		argv[k] = NULL;
	}
	r.argv = argv;
	r.deadline_ns = deadline_ns ? deadline_ns : crid_monotonic_ns() + 365LL * 24 * 3600 * 1000000000LL;
	r.pid_file = pid_path;
	r.out.max = r.errout.max = max_output;
	rc = run_process(&r, err);
	unlink(process_path);
	unlink(pid_path);
	if (rc < 0) {
		run_clear(&r);
		return rc;
	}
	res->timed_out = r.timed_out;
	res->exit_code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + (WIFSIGNALED(r.status) ? WTERMSIG(r.status) : 0);
	res->out = r.out.data ? r.out.data : strdup("");
	res->out_len = r.out.len;
	res->errout = r.errout.data ? r.errout.data : strdup("");
	res->err_len = r.errout.len;
	if (!res->out || !res->errout) {
		crid_exec_result_free(res);
		return crid_err_nomem(err, "exec output");
	}
	return 0;
}

int crid_oci_exec_spawn(const char *runtime_path, const char *runtime_root, char *const *runtime_args,
			const char *id, const char *process_path, const char *pid_path, const char *console_path,
			int in_fd, int out_fd, int err_fd, pid_t *pid, struct crid_err *err)
{
	const char *argv[16 + CRID_OCI_MAX_ARGS];
	const int from[3] = { in_fd, out_fd, err_fd };
	struct crid_spawn sp;
	size_t k = 0;
	int rc;

	argv[k++] = runtime_path;
	argv[k++] = "--root";
	argv[k++] = runtime_root;
	for (size_t i = 0; runtime_args && runtime_args[i] && i < CRID_OCI_MAX_ARGS; i++)
		argv[k++] = runtime_args[i];
	argv[k++] = "exec";
	argv[k++] = "--process";
	argv[k++] = process_path;
	argv[k++] = "--pid-file";
	argv[k++] = pid_path;
	if (console_path) {
		argv[k++] = "--tty";
		argv[k++] = "--console-socket";
		argv[k++] = console_path;
	}
	argv[k++] = id;
	argv[k] = NULL;
	rc = crid_spawn_init(&sp, POSIX_SPAWN_SETSID);
	if (rc != 0)
		return crid_err_set(err, CRID_INTERNAL, rc, "run %s exec", runtime_path);
	for (int target = 0; rc == 0 && target < 3; target++) {
		if (from[target] >= 0)
			rc = posix_spawn_file_actions_adddup2(&sp.actions, from[target], target);
		else
			rc = posix_spawn_file_actions_addopen(&sp.actions, target, "/dev/null", target ? O_WRONLY : O_RDONLY, 0);
	}
	if (rc == 0)
		rc = posix_spawn(pid, runtime_path, &sp.actions, &sp.attr, (char *const *)argv, environ);
	crid_spawn_destroy(&sp);
	if (rc != 0)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, rc, "run %s exec", runtime_path);
	return 0;
}
