/* crid-shim's parts, behind the contract of protocol.h: the command line
 * (options.c), the monitor's set-up and loop (monitor.c), the runtime's
 * "create" (create.c) and the attach socket (attach.c). They run in crid-shim only, never in the daemon, and
 * need nothing but libc: a monitor per container must stay small. */
#ifndef CRID_SHIM_SHIM_H
#define CRID_SHIM_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include "common/error.h"
#include "shim/cri_log.h"

/* Exit status for a bad command line. */
#define CRID_SHIM_EXIT_USAGE 2

struct crid_shim_options {
	const char *id;
	const char *bundle;
	const char *runtime;
	const char *runtime_root;
	const char *state_dir;
	const char *log_path;
	const char *log_dir; /* NULL, or log_path's directory, opened beneath */
	int sync_fd; /* -1 until given */
	bool stdin_open;
	bool stdin_once;
	bool tty;
	bool subcontainer; /* joins a pod's sandbox: started and waited for through the runtime */
	const char **runtime_args; /* --runtime-arg values, in order */
	size_t n_runtime_args;
};

/* Parses and checks argv (argv[0] is the program). Strings point into argv.
 * On failure, err says what is wrong in a sentence fit for stderr; *help is
 * set when --help was asked for (returns 0 then, nothing else filled). */
int crid_shim_parse_args(struct crid_shim_options *o, int argc, char **argv, bool *help, struct crid_err *err);
void crid_shim_options_free(struct crid_shim_options *o);
extern const char crid_shim_usage[];

/* A control connection waiting for its request line. */
#define CRID_SHIM_MAX_CLIENTS 8
#define CRID_SHIM_REQUEST_MAX 64

struct crid_shim_client {
	int fd; /* -1: free slot */
	int64_t deadline_ns; /* CLOCK_MONOTONIC */
	size_t len;
	char buf[CRID_SHIM_REQUEST_MAX];
};

/* An attach client (protocol.h). */
#define CRID_SHIM_MAX_ATTACH 16

struct crid_shim_attach_client {
	int fd; /* -1: free slot */
	bool has_stdin;
};

/* The monitor: the process that outlives crid, from set-up to exit. */
struct crid_shim {
	const struct crid_shim_options *opts;
	int sync_fd;   /* until the start-up line is written */
	int dir_fd;    /* the state directory, also the working directory */
	int signal_fd; /* SIGCHLD */
	int ctl_fd;    /* listening control socket */
	int log_fd;    /* the CRI log, O_APPEND */
	bool logging;  /* stderr is DIR/shim.log (before: still crid's) */
	bool log_failed; /* a write failed since the last (re)open: said once */

	/* Set by crid_shim_create. */
	pid_t container_pid;
	int out_fd;   /* container stdout (or the pty master with --tty) */
	int err_fd;   /* container stderr, -1 with --tty */
	int stdin_fd; /* write end of the container's stdin (--stdin), kept open */

	struct crid_cri_log_stream *out, *err; /* allocated, never zeroed */

	/* --subcontainer (subcontainer.c): the runtime hands the container the
	 * stdio of "<runtime> start", so the shim keeps the other ends of its
	 * pipes until then; "<runtime> wait" tells the exit. */
	int start_stdio[3]; /* -1 once given away */
	bool started;
	pid_t waiter_pid;   /* "<runtime> wait", 0 before start */
	int waiter_out;	    /* its stdout: {"id":..,"exitStatus":N} */

	bool exited;
	int exit_status; /* from waitpid */
	int64_t exited_at_ns;
	int64_t drain_deadline_ns; /* CLOCK_MONOTONIC: output awaited until then */

	struct crid_shim_client clients[CRID_SHIM_MAX_CLIENTS];

	/* attach.c */
	int attach_fd; /* listening SOCK_SEQPACKET socket */
	struct crid_shim_attach_client attach[CRID_SHIM_MAX_ATTACH];
	bool stdin_done;   /* no more input for the container */
	char *in_buf;	   /* input not yet taken by the container, CRID_SHIM_ATTACH_DATA_MAX bytes */
	size_t in_off, in_len;
};

/* The attach socket (attach.c): set up, its fds for poll (returns how
 * many it filled; at most CRID_SHIM_ATTACH_POLL_SLOTS), what poll said,
 * output for every client, and the end. */
#define CRID_SHIM_ATTACH_POLL_SLOTS (CRID_SHIM_MAX_ATTACH + 2)
int crid_shim_attach_setup(struct crid_shim *s, struct crid_err *err);
void crid_shim_attach_poll_fill(struct crid_shim *s, struct pollfd *p);
void crid_shim_attach_poll_done(struct crid_shim *s, const struct pollfd *p);
void crid_shim_attach_output(struct crid_shim *s, int type, const char *buf, size_t len);
void crid_shim_attach_free(struct crid_shim *s);

/* The detached monitor's set-up: sync fd kept (close-on-exec), every other
 * inherited fd closed, signals, subreaper, DIR as working directory,
 * stdio on /dev/null and DIR/shim.log, DIR/shim.pid, the CRI log file, the
 * control socket. */
int crid_shim_setup(struct crid_shim *s, const struct crid_shim_options *o, struct crid_err *err);

/* Runs "<runtime> create" with the container's stdio wired to the shim
 * and waits for it; fills container_pid and the stdio fds. A failure
 * carries the runtime's own message when it gave one. */
int crid_shim_create(struct crid_shim *s, struct crid_err *err);

/* Relays the container's output into the log until its init has exited
 * and the output is drained, then writes DIR/exit. Returns the process's
 * exit status. */
int crid_shim_run(struct crid_shim *s);

void crid_shim_free(struct crid_shim *s);

/* --subcontainer (subcontainer.c): the control request "start" runs
 * "<runtime> start" with the container's stdio, then "<runtime> wait";
 * answer gets "ok" or "error <why>". A finished waiter's status, as
 * waitpid would give it for the container's init. */
void crid_shim_sub_start(struct crid_shim *s, char *answer, size_t size);
int crid_shim_sub_exit_status(struct crid_shim *s, int waiter_status);

/* Writes line and a newline to *sync_fd (control characters made spaces:
 * it stays one line), closes it and sets it to -1; nothing when < 0. */
void crid_shim_sync(int *sync_fd, const char *line);

/* A listening stream socket named name in the working directory (the
 * state directory, dir_fd), mode 0600, non-blocking, replacing a stale one. */
int crid_shim_listen(int dir_fd, const char *name, int *out, struct crid_err *err);
/* The same with another socket type (SOCK_SEQPACKET). */
int crid_shim_listen_type(int dir_fd, const char *name, int type, int *out, struct crid_err *err);

#endif
