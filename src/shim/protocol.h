/* What crid and crid-shim agree on. crid starts one crid-shim per
 * container; the shim detaches (crid may restart, the shim stays), runs
 * "<runtime> create", relays the container's stdout/stderr into the CRI log,
 * reaps the container's processes as their subreaper, and records the exit.
 * Everything lives in the container's state directory (DIR below), owned by
 * crid, under the run root. */
#ifndef CRID_SHIM_PROTOCOL_H
#define CRID_SHIM_PROTOCOL_H

/* Command line (all required unless marked optional):
 *   crid-shim --id ID --bundle BUNDLE --runtime PATH --runtime-root DIR
 *             --state-dir DIR --log-path FILE --sync-fd N
 *             [--log-dir DIR] [--stdin] [--stdin-once] [--tty]
 *             [--runtime-arg ARG]...
 * BUNDLE holds config.json and rootfs; --runtime-arg adds a global runtime
 * flag before the subcommand (e.g. --cgroup-manager=cgroupfs). With
 * --log-dir, FILE must lie below DIR and is opened (and reopened) relative
 * to it, never leaving it and following no symlink.
 *
 * Start-up: crid passes the write end of a pipe as fd N. The shim forks
 * twice (the monitor is re-parented away from crid, in its own session),
 * runs "<runtime> [--root DIR] [ARGs] create --bundle BUNDLE --pid-file
 * DIR/container.pid [--console-socket ...] ID" with the container's stdio
 * wired to the shim, then writes exactly one line to fd N and closes it:
 *     "ok <shim pid> <container pid>\n"
 *  or "error <message>\n"   (the runtime's own stderr, one line)
 * On error the shim exits after writing. */

#define CRID_SHIM_PID_FILE "shim.pid"           /* the monitor's pid, decimal */
#define CRID_SHIM_CONTAINER_PID_FILE "container.pid"

/* Written (atomically: temp file, fsync, rename) once the container's init
 * has exited and its output is drained into the log:
 *     {"exit_code": N, "exited_at": <unix ns>, "signal": S}
 * exit_code is the shell convention: 128+S when killed by signal S (signal
 * 0 otherwise). The shim exits right after. */
#define CRID_SHIM_EXIT_FILE "exit"

/* A stream Unix socket the shim serves while it runs. One request line per
 * connection, one answer line:
 *     "reopen\n"  → reopen the log file at the same path; answered "ok\n"
 *                   only once the new file exists ("error <why>\n" else)
 * More verbs come with attach. */
#define CRID_SHIM_CONTROL_SOCKET "ctl"

/* Where the runtime's and the shim's own error messages go. */
#define CRID_SHIM_LOG_FILE "shim.log"

/* CRI log lines longer than this are split into partial ("P") records. */
#define CRID_SHIM_LOG_LINE_MAX (16 * 1024)

#endif
