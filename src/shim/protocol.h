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
 *             [--subcontainer] [--runtime-arg ARG]...
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

/* --subcontainer: the container joins a sandbox the pod's sandbox container
 * runs (gVisor). Such a runtime gives the container the stdio of "<runtime>
 * start", not of "create", so the shim runs the start itself when crid
 * asks for it on the control socket, and learns the exit from "<runtime>
 * wait" (container.pid holds the sandbox's pid). No --tty. */

/* Written (atomically: temp file, rename) once the container's init
 * has exited and its output is drained into the log:
 *     {"exit_code": N, "exited_at": <unix ns>, "signal": S}
 * exit_code is the shell convention: 128+S when killed by signal S (signal
 * 0 otherwise). The shim exits right after. */
#define CRID_SHIM_EXIT_FILE "exit"

/* A stream Unix socket the shim serves while it runs. One request line per
 * connection, one answer line:
 *     "reopen\n"  → reopen the log file at the same path; answered "ok\n"
 *                   only once the new file exists ("error <why>\n" else)
 *     "start\n"   → (--subcontainer) "<runtime> start" with the container's
 *                   stdio; "ok\n" once it succeeded, "error <why>\n" else */
#define CRID_SHIM_CONTROL_SOCKET "ctl"

/* A SOCK_SEQPACKET Unix socket on which the shim serves attach: several
 * clients at once each receive the container's output as it is written to
 * the CRI log, and send input. Every message is one type byte and up to
 * CRID_SHIM_ATTACH_DATA_MAX bytes:
 *   shim → client: STDOUT data, STDERR data (with --tty only STDOUT);
 *                  the socket closes once the container's output ended
 *   client → shim: STDIN data (an empty one first says "this client
 *                  attaches stdin"), STDIN_CLOSE (no more input from this
 *                  client), RESIZE (rows and columns, 2 bytes each, big
 *                  endian; with --tty)
 * With --stdin-once, the container's stdin is closed when the first client
 * that attached stdin closes it or leaves. A client that cannot keep up
 * with the output is disconnected: the log never waits for it. */
#define CRID_SHIM_ATTACH_SOCKET "attach"
#define CRID_SHIM_ATTACH_DATA_MAX 8192
enum crid_shim_attach_type {
	CRID_SHIM_ATTACH_STDIN = 0,
	CRID_SHIM_ATTACH_STDOUT = 1,
	CRID_SHIM_ATTACH_STDERR = 2,
	CRID_SHIM_ATTACH_STDIN_CLOSE = 3,
	CRID_SHIM_ATTACH_RESIZE = 4,
};

/* Where the runtime's and the shim's own error messages go. */
#define CRID_SHIM_LOG_FILE "shim.log"

/* CRI log lines longer than this are split into partial ("P") records. */
#define CRID_SHIM_LOG_LINE_MAX (16 * 1024)

#endif
