/* crid-shim's main (protocol.h): check the command line, detach, set up
 * the monitor, have the runtime create the container, tell crid on the
 * sync fd, then relay output and record the exit.
 *
 * Processes: crid's child (the starter) forks; that child calls setsid()
 * and forks the monitor, then exits; the starter exits with the child's
 * status as soon as it is gone. crid can reap the starter at once; the
 * monitor is nobody's child of crid's, in a session of its own, and
 * reports on the sync fd. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/log.h"
#include "shim/shim.h"

/* Returned by detach() in the monitor only. */
#define DETACHED -1

static void sync_error(int sync_fd, const char *what)
{
	char line[CRID_ERR_MSG_MAX + 8];

	snprintf(line, sizeof(line), "error %s", what);
	crid_shim_sync(&sync_fd, line);
}

static int detach(int sync_fd)
{
	char why[128];
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		snprintf(why, sizeof(why), "fork: %s", strerror(errno));
		sync_error(sync_fd, why);
		return 1;
	}
	if (pid > 0) { /* the starter */
		close(sync_fd);
		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR)
				return 1;
		}
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	/* In a session of its own, no signal to crid's process group or
	 * terminal reaches the monitor. */
	if (setsid() < 0) {
		snprintf(why, sizeof(why), "setsid: %s", strerror(errno));
		sync_error(sync_fd, why);
		_exit(1);
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, sizeof(why), "fork: %s", strerror(errno));
		sync_error(sync_fd, why);
		_exit(1);
	}
	if (pid > 0)
		_exit(0); /* the monitor is re-parented away from crid */
	return DETACHED;
}

static int monitor(const struct crid_shim_options *o)
{
	_cleanup_(crid_shim_free) struct crid_shim s;
	char line[CRID_ERR_MSG_MAX + 8];
	char pid_s[16];
	struct crid_err err;

	crid_err_clear(&err);
	if (crid_shim_setup(&s, o, &err) < 0 || crid_shim_create(&s, &err) < 0) {
		/* Not onto crid's stderr: the sync line tells crid. */
		if (s.logging)
			log_error("cannot create the container", "id", o->id, "error", err.msg);
		snprintf(line, sizeof(line), "error %s", err.msg);
		crid_shim_sync(&s.sync_fd, line);
		return 1;
	}
	snprintf(line, sizeof(line), "ok %d %d", (int)getpid(), (int)s.container_pid);
	crid_shim_sync(&s.sync_fd, line);
	snprintf(pid_s, sizeof(pid_s), "%d", (int)s.container_pid);
	log_info("container created", "id", o->id, "pid", pid_s);
	return crid_shim_run(&s);
}

int main(int argc, char **argv)
{
	_cleanup_(crid_shim_options_free) struct crid_shim_options o;
	struct crid_err err;
	bool help;
	int r;

	crid_err_clear(&err);
	if (crid_shim_parse_args(&o, argc, argv, &help, &err) < 0) {
		fprintf(stderr, "crid-shim: %s\n%s", err.msg, crid_shim_usage);
		sync_error(o.sync_fd, err.msg); /* when it was parsed */
		return CRID_SHIM_EXIT_USAGE;
	}
	if (help) {
		fputs(crid_shim_usage, stdout);
		return 0;
	}
	r = detach(o.sync_fd);
	if (r != DETACHED)
		return r;
	return monitor(&o);
}
