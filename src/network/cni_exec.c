/* Plugin calls (cni.h): a plugin binary found in the bin dirs, started in
 * a session of its own with the CNI environment and its configuration on
 * stdin; its answer and complaints read with poll until it exits or its
 * time is up, when it and everything it started are killed. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/proctree.h"
#include "common/spawn.h"
#include "network/cni.h"

#define NS_PER_S 1000000000LL
/* After the plugin exits, output still in flight is read for this long: a
 * process it left behind may hold the pipes open. */
#define DRAIN_AFTER_EXIT_NS (200LL * 1000000)
/* After the kill at the deadline, how long the pipes are still read. */
#define DRAIN_AFTER_KILL_NS (2LL * NS_PER_S)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ENV_MAX 4096 /* entries of crid's own environment passed on */

extern char **environ;

struct sink {
	char *data;
	size_t len, max;
	bool overflow;
};

static int sink_add(struct sink *s, const char *buf, size_t n)
{
	char *grown;

	if (s->len + n > s->max) {
		s->overflow = true;
		n = s->max - s->len;
		if (n == 0)
			return 0;
	}
	grown = realloc(s->data, s->len + n + 1);
	if (!grown)
		return -ENOMEM;
	s->data = grown;
	memcpy(s->data + s->len, buf, n);
	s->len += n;
	s->data[s->len] = '\0';
	return 0;
}

static void sink_free(struct sink *s)
{
	free(s->data);
	s->data = NULL;
}

/* The first bin dir holding an executable regular file named type. */
static int find_plugin(const struct crid_cni_exec *x, const char *type, char *path, size_t size, struct crid_err *err)
{
	for (size_t i = 0; i < x->n_bin_dirs; i++) {
		struct stat st;

		if (snprintf(path, size, "%s/%s", x->bin_dirs[i], type) >= (int)size)
			continue;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
			return 0;
	}
	crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "plugin \"%s\" is in none of the CNI bin dirs (%s)", type,
		     x->cni_path);
	err->errnum = ENOENT;
	return -ENOENT;
}

struct envp {
	char **v;
	size_t n;
	char *own[6]; /* the CNI_* entries, allocated */
};

static void envp_free(struct envp *e)
{
	for (size_t i = 0; i < CRID_ARRAY_SIZE(e->own); i++)
		free(e->own[i]);
	free(e->v);
}

/* crid's environment without any CNI_* of its own, PATH (which plugins use
 * to find iptables) defaulted, and the call's CNI_* variables. */
static int make_env(const struct crid_cni_exec *x, const struct crid_cni_invocation *inv, struct envp *e,
		    struct crid_err *err)
{
	size_t n_env = 0, k = 0;
	bool have_path = false;

	while (environ[n_env] && n_env < ENV_MAX)
		n_env++;
	e->v = calloc(n_env + CRID_ARRAY_SIZE(e->own) + 2, sizeof(*e->v));
	if (!e->v)
		return crid_err_nomem(err, "plugin environment");
	if (asprintf(&e->own[0], "CNI_COMMAND=%s", inv->command) < 0 ||
	    asprintf(&e->own[1], "CNI_CONTAINERID=%s", inv->container_id) < 0 ||
	    asprintf(&e->own[2], "CNI_NETNS=%s", inv->netns ? inv->netns : "") < 0 ||
	    asprintf(&e->own[3], "CNI_IFNAME=%s", inv->ifname) < 0 ||
	    asprintf(&e->own[4], "CNI_ARGS=%s", inv->args ? inv->args : "") < 0 ||
	    asprintf(&e->own[5], "CNI_PATH=%s", x->cni_path) < 0) {
		memset(e->own, 0, sizeof(e->own)); /* asprintf leaves failures undefined */
		return crid_err_nomem(err, "plugin environment");
	}
	for (size_t i = 0; i < n_env; i++) {
		if (strncmp(environ[i], "CNI_", 4) == 0)
			continue;
		have_path = have_path || strncmp(environ[i], "PATH=", 5) == 0;
		e->v[k++] = environ[i];
	}
	if (!have_path)
		e->v[k++] = (char *)"PATH=" DEFAULT_PATH;
	for (size_t i = 0; i < CRID_ARRAY_SIZE(e->own); i++)
		e->v[k++] = e->own[i];
	e->v[k] = NULL;
	e->n = k;
	return 0;
}

struct call {
	pid_t pid;
	struct sink out, errout;
	int status;
	bool timed_out;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Feeds stdin and reads stdout and stderr until the plugin exits and its
 * output is drained, or the deadline passes and its session is killed. */
static void pump(struct call *c, int in_fd, int out_fd, int err_fd, const char *in, size_t in_len, int64_t deadline)
{
	_cleanup_close_ int pidfd = pidfd_open(c->pid, 0);
	int64_t exited_at = 0, killed_at = 0;
	size_t in_off = 0;

	if (in_len == 0)
		close_fd(&in_fd);
	for (;;) {
		struct pollfd p[4];
		int n = 0, timeout;
		int64_t now = crid_monotonic_ns(), wake;

		if (out_fd >= 0)
			p[n++] = (struct pollfd){ .fd = out_fd, .events = POLLIN };
		if (err_fd >= 0)
			p[n++] = (struct pollfd){ .fd = err_fd, .events = POLLIN };
		if (in_fd >= 0)
			p[n++] = (struct pollfd){ .fd = in_fd, .events = POLLOUT };
		/* Closed pipes are not an exit: a plugin may close them and go
		 * on, so its end (or its deadline) is still waited for. */
		if (out_fd < 0 && err_fd < 0 && (exited_at || killed_at || pidfd < 0))
			break;
		if ((exited_at && now >= exited_at + DRAIN_AFTER_EXIT_NS) ||
		    (killed_at && now >= killed_at + DRAIN_AFTER_KILL_NS))
			break;
		if (pidfd >= 0 && !exited_at)
			p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		if (now >= deadline && !killed_at && !exited_at) {
			/* Its own session: the group holds what it started too. */
			kill(-c->pid, SIGKILL);
			kill(c->pid, SIGKILL);
			killed_at = now;
			c->timed_out = true;
			close_fd(&in_fd);
		}
		wake = exited_at ? exited_at + DRAIN_AFTER_EXIT_NS : killed_at ? killed_at + DRAIN_AFTER_KILL_NS : deadline;
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
			if (p[i].fd == in_fd) {
				got = write(in_fd, in + in_off, in_len - in_off);
				if (got > 0)
					in_off += (size_t)got;
				if ((got < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len)
					close_fd(&in_fd); /* EOF tells the plugin its configuration is whole */
				continue;
			}
			got = read(p[i].fd, buf, sizeof(buf));
			if (got > 0) {
				struct sink *s = p[i].fd == out_fd ? &c->out : &c->errout;

				if (sink_add(s, buf, (size_t)got) < 0 || c->out.overflow) {
					kill(-c->pid, SIGKILL);
					kill(c->pid, SIGKILL);
					killed_at = killed_at ? killed_at : crid_monotonic_ns();
				}
			} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
				if (p[i].fd == out_fd)
					close_fd(&out_fd);
				else
					close_fd(&err_fd);
			}
		}
	}
	close_fd(&in_fd);
	close_fd(&out_fd);
	close_fd(&err_fd);
	while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
		;
}

static int start(const char *path, char *const *envp, int in[2], int out[2], int errp[2], pid_t *pid,
		 struct crid_err *err)
{
	char *const argv[] = { (char *)path, NULL };
	struct crid_spawn sp;
	int r;

	r = crid_spawn_init(&sp, POSIX_SPAWN_SETSID);
	if (r != 0)
		return crid_err_set(err, CRID_INTERNAL, r, "start plugin %s", path);
	if ((r = posix_spawn_file_actions_adddup2(&sp.actions, in[0], STDIN_FILENO)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&sp.actions, out[1], STDOUT_FILENO)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&sp.actions, errp[1], STDERR_FILENO)) == 0)
		r = posix_spawn(pid, path, &sp.actions, &sp.attr, argv, envp);
	crid_spawn_destroy(&sp);
	if (r != 0)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, r, "start plugin %s", path);
	return 0;
}

/* The last non-empty line of a plugin's stderr, in place. */
static const char *last_line(char *s)
{
	size_t len;
	char *nl;

	if (!s)
		return "";
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	nl = strrchr(s, '\n');
	return nl ? nl + 1 : s;
}

void crid_cni_error_text(const char *out, size_t len, char *buf, size_t size)
{
	json_t *j = out && len ? json_loadb(out, len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "msg"));
	const char *details = json_string_value(json_object_get(j, "details"));
	json_int_t code = json_integer_value(json_object_get(j, "code"));

	if (msg && details && *details)
		snprintf(buf, size, "%s: %s (code %lld)", msg, details, (long long)code);
	else if (msg)
		snprintf(buf, size, "%s (code %lld)", msg, (long long)code);
	else if (out && len)
		snprintf(buf, size, "%.*s", (int)(len > 200 ? 200 : len), out);
	else
		snprintf(buf, size, "no error output");
	json_decref(j);
}

int crid_cni_exec_plugin(const struct crid_cni_exec *x, const char *type, const struct crid_cni_invocation *inv,
			 const json_t *conf, json_t **result, struct crid_err *err)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	_cleanup_(envp_free) struct envp env = { 0 };
	_cleanup_free_ char *input = NULL;
	struct call c = { .out.max = CRID_CNI_OUTPUT_MAX, .errout.max = CRID_CNI_STDERR_MAX };
	char path[4096], text[768];
	int64_t t0 = crid_monotonic_ns();
	int r;

	*result = NULL;
	if ((r = find_plugin(x, type, path, sizeof(path), err)) < 0)
		return r;
	if (!(input = json_dumps(conf, JSON_COMPACT)))
		return crid_err_nomem(err, "plugin configuration");
	if ((r = make_env(x, inv, &env, err)) < 0)
		return r;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		r = crid_err_set(err, CRID_INTERNAL, errno, "plugin %s: create pipe", type);
		goto out;
	}
	r = start(path, env.v, in, out, errp, &c.pid, err);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&errp[1]);
	if (r < 0)
		goto out;
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	pump(&c, in[1], out[0], errp[0], input, strlen(input), t0 + (int64_t)x->timeout_s * NS_PER_S);
	in[1] = out[0] = errp[0] = -1; /* pump closed them */
	log_debug("CNI plugin called", "plugin", type, "command", inv->command, "container", inv->container_id);
	if (c.timed_out) {
		r = crid_err_set(err, CRID_DEADLINE_EXCEEDED, 0, "plugin %s (%s) did not finish within %u s and was killed",
				 type, inv->command, x->timeout_s);
	} else if (c.out.overflow) {
		r = crid_err_set(err, CRID_UNKNOWN, 0, "plugin %s (%s) answered more than %u bytes", type, inv->command,
				 CRID_CNI_OUTPUT_MAX);
	} else if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
		const char *line = last_line(c.errout.data);

		crid_cni_error_text(c.out.data, c.out.len, text, sizeof(text));
		if (WIFSIGNALED(c.status))
			r = crid_err_set(err, CRID_UNKNOWN, 0, "plugin %s (%s) was killed by signal %d%s%s", type,
					 inv->command, WTERMSIG(c.status), *line ? ": " : "", line);
		else
			r = crid_err_set(err, CRID_UNKNOWN, 0, "plugin %s (%s) failed: %s%s%s%s", type, inv->command, text,
					 *line ? " (stderr: " : "", line, *line ? ")" : "");
	} else {
		const char *s = c.out.data ? c.out.data : "";
		json_error_t jerr;

		while (isspace((unsigned char)*s))
			s++;
		if (*s) {
			*result = json_loads(s, 0, &jerr);
			if (!*result)
				r = crid_err_set(err, CRID_UNKNOWN, 0, "plugin %s (%s) answered something that is not JSON: %s",
						 type, inv->command, jerr.text);
		}
	}
out:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&errp[i]);
	}
	sink_free(&c.out);
	sink_free(&c.errout);
	return r;
}

/* The container a CNI plugin was started for: CNI_CONTAINERID of an
 * environment that also holds CNI_COMMAND; false for anything else. */
static bool plugin_of(int procfd, const char *pid, char *id, size_t size)
{
	char path[64], buf[65536];
	_cleanup_close_ int fd = -1;
	size_t len = 0;
	bool command = false;

	id[0] = '\0';
	snprintf(path, sizeof(path), "%s/environ", pid);
	fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
		command = command || strncmp(buf + i, "CNI_COMMAND=", 12) == 0;
		if (strncmp(buf + i, "CNI_CONTAINERID=", 16) == 0)
			snprintf(id, size, "%s", buf + i + 16);
	}
	return command && id[0];
}

void crid_cni_kill_orphans(const char *const *ids, size_t n_ids)
{
	_cleanup_closedir_ DIR *d = NULL;
	pid_t pids[256];
	size_t n = 0;
	struct dirent *de;

	if (n_ids == 0 || !(d = opendir("/proc")))
		return;
	while ((de = readdir(d)) && n < CRID_ARRAY_SIZE(pids)) {
		pid_t pid = (pid_t)atoi(de->d_name);
		char id[80];

		if (pid <= 1 || pid == getpid() || !plugin_of(dirfd(d), de->d_name, id, sizeof(id)))
			continue;
		for (size_t i = 0; i < n_ids; i++) {
			if (strcmp(ids[i], id) == 0) {
				log_warn("killing a CNI plugin a crashed crid left running", "pod", id, "pid",
					 de->d_name);
				kill(pid, SIGKILL);
				pids[n++] = pid;
				break;
			}
		}
	}
	/* Bounded: a process in D state is not waited for past two seconds. */
	for (int round = 0; round < 100 && n > 0; round++) {
		size_t alive = 0;

		for (size_t i = 0; i < n; i++) {
			pid_t ppid, pgrp;
			char state = 0;

			if (crid_proc_stat(pids[i], &ppid, &pgrp, &state) == 0 && state != 'Z' && state != 'X')
				pids[alive++] = pids[i];
		}
		n = alive;
		if (n)
			usleep(20000);
	}
}
