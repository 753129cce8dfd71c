"""Integration tests of crid-shim, the per-container monitor (src/shim/protocol.h).

Each test builds OCI bundles in its own temporary directory (a rootfs holding
a copy of Debian's static busybox, /bin/sh a symlink to it, config.json from
`runc spec` edited here), starts crid-shim the way crid does (a pipe's write
end passed as --sync-fd), reads the one start-up line, starts the container
with `runc start` itself, and reads the effects as crid and the kubelet would:
the CRI log file, DIR/exit, DIR/shim.pid, the control socket, /proc.

runc, not crun: crun does not work on this host's hybrid cgroup layout. Runs
as root. The binary is $CRID_SHIM_BIN (default build/asan/crid-shim).
Clean-up runs even when a test fails: `runc delete -f` for every container,
SIGKILL for shim processes still alive (by pid, checked to be crid-shim),
temporary directories removed.
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_SHIM = os.path.join(REPO, "build", "asan", "crid-shim")
RUNC = "/usr/bin/runc"
BUSYBOX = "/bin/busybox"

SYNC_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 20.0
LINE_MAX = 16 * 1024  # CRID_SHIM_LOG_LINE_MAX
PSS_LIMIT_KIB = 1024  # the design's goal for a monitor: under 1 MiB

RECORD = re.compile(rb"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$", re.S)
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "LeakSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "runtime error:",
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="crid-shim tests run containers: root needed"),
    pytest.mark.skipif(not os.access(RUNC, os.X_OK), reason=f"{RUNC} missing (apt-get install runc)"),
    pytest.mark.skipif(
        not os.access(BUSYBOX, os.X_OK), reason=f"{BUSYBOX} missing (apt-get install busybox-static)"
    ),
]


# ---------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def shim_bin():
    path = os.environ.get("CRID_SHIM_BIN", DEFAULT_SHIM)
    if not os.path.isabs(path):
        path = os.path.join(REPO, path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"crid-shim not found at {path!r}: build it (make VARIANT=asan all) or set CRID_SHIM_BIN",
            pytrace=False,
        )
    return path


def proc_alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def proc_stat_fields(pid):
    """/proc/PID/stat fields after the command name: [state, ppid, pgrp, session, ...]."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rindex(")") + 2:].split()


def proc_is_shim(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"crid-shim" in f.read().split(b"\0")[0]
    except OSError:
        return False


def wait_for(cond, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_line(fd, timeout):
    """Everything up to the first newline (or EOF) on fd."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no start-up line within {timeout}s (got {data!r})")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


def parse_log(path):
    """[(timestamp, stream, tag, content bytes)] of a CRI log file."""
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        return []
    assert data.endswith(b"\n"), f"log does not end with a newline: {data[-80:]!r}"
    records = []
    for line in data[:-1].split(b"\n"):
        m = RECORD.match(line)
        assert m, f"not a CRI log record: {line[:200]!r}"
        records.append((m.group(1).decode(), m.group(2).decode(), m.group(3).decode(), m.group(4)))
    return records


def stream_records(records, stream):
    return [(tag, content) for _, s, tag, content in records if s == stream]


def stream_text(records, stream):
    """What the kubelet shows: P contents joined, a newline after each F."""
    out = b""
    for tag, content in stream_records(records, stream):
        out += content + (b"\n" if tag == "F" else b"")
    return out


def ctl_request(state_dir, request, timeout=10.0):
    """Sends one request line on DIR/ctl; returns the whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(os.path.join(state_dir, "ctl"))
        s.sendall(request)
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return answer
            answer += chunk


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        fields = dict(line.split(":", 1) for line in f.read().splitlines()[1:] if ":" in line)
    return int(fields["Pss"].split()[0]), int(fields["Rss"].split()[0])


def uses_asan(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


class Container:
    """One crid-shim start: the sync line and what it names."""

    def __init__(self, harness, cid, state_dir, log_path, bundle):
        self.h = harness
        self.id = cid
        self.state_dir = state_dir
        self.log_path = log_path
        self.bundle = bundle
        self.started_at = time.time_ns()
        self.starter_rc = None
        self.sync_line = b""
        self.sync_pipe = None  # "pipe:[inode]" of the sync pipe
        self.shim_pid = None
        self.pid = None

    def synced(self, line, starter_rc):
        self.sync_line = line
        self.starter_rc = starter_rc
        words = line.split()
        if words[:1] == [b"ok"] and len(words) == 3:
            self.shim_pid, self.pid = int(words[1]), int(words[2])

    @property
    def ok(self):
        return self.shim_pid is not None

    def path(self, name):
        return os.path.join(self.state_dir, name)

    def start(self):
        self.h.runc("start", self.id)

    def records(self):
        return parse_log(self.log_path) if os.path.exists(self.log_path) else []

    def wait_log(self, needle, timeout=EXIT_TIMEOUT_S):
        return wait_for(
            lambda: os.path.exists(self.log_path) and needle in open(self.log_path, "rb").read(),
            timeout,
            f"{needle!r} in {self.log_path}",
        )

    def wait_exit(self, timeout=EXIT_TIMEOUT_S):
        """The exit file, once the monitor has gone; checks shim.log is clean."""
        wait_for(lambda: os.path.exists(self.path("exit")), timeout, f"{self.id}: exit file")
        wait_for(lambda: not proc_alive(self.shim_pid), 10.0, f"{self.id}: shim {self.shim_pid} to exit")
        self.assert_shim_log_clean()
        with open(self.path("exit")) as f:
            return json.load(f)

    def shim_log(self):
        try:
            with open(self.path("shim.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def assert_shim_log_clean(self):
        text = self.shim_log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"sanitizer report in shim.log:\n{text}"


class Harness:
    def __init__(self, shim_bin):
        self.shim_bin = shim_bin
        self.tmp = tempfile.mkdtemp(prefix="crid-shim-test-")
        self.runc_root = os.path.join(self.tmp, "runc")
        self.containers = []
        self.n = 0

    def runc(self, *args, check=True):
        res = subprocess.run([RUNC, "--root", self.runc_root, *args], capture_output=True, text=True, timeout=60)
        if check and res.returncode != 0:
            pytest.fail(f"runc {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
        return res

    def bundle(self, name, args, terminal=False, pid_namespace=True, edit=None):
        bundle = os.path.join(self.tmp, name, "bundle")
        rootfs = os.path.join(bundle, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        os.symlink("busybox", os.path.join(rootfs, "bin", "sh"))
        subprocess.run([RUNC, "spec"], cwd=bundle, check=True, capture_output=True)
        with open(os.path.join(bundle, "config.json")) as f:
            config = json.load(f)
        config["process"]["terminal"] = terminal
        config["process"]["args"] = args
        config["process"]["env"] = ["PATH=/bin", "TERM=xterm"]
        config["root"]["readonly"] = False
        namespaces = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
        if not pid_namespace:
            namespaces = [ns for ns in namespaces if ns["type"] != "pid"]
        config["linux"]["namespaces"] = namespaces
        if edit:
            edit(config)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        return bundle

    def start(self, args, *, flags=(), terminal=False, pid_namespace=True, edit=None, runtime=RUNC,
              state_dir=None):
        """Runs crid-shim as crid would; returns the Container (its sync line read)."""
        self.n += 1
        name = f"c{self.n}"
        cid = f"crid-shim-test-{os.getpid()}-{self.n}"
        bundle = self.bundle(name, args, terminal=terminal, pid_namespace=pid_namespace, edit=edit)
        if state_dir is None:
            state_dir = os.path.join(self.tmp, name, "state")
            os.makedirs(state_dir)
        log_path = os.path.join(self.tmp, name, "container.log")
        c = Container(self, cid, state_dir, log_path, bundle)
        self.containers.append(c)
        rd, wr = os.pipe()
        c.sync_pipe = f"pipe:[{os.fstat(rd).st_ino}]"
        argv = [
            self.shim_bin, "--id", cid, "--bundle", bundle, "--runtime", runtime,
            "--runtime-root", self.runc_root, "--state-dir", state_dir, "--log-path", log_path,
            "--sync-fd", str(wr), *flags,
        ]
        try:
            starter = subprocess.Popen(argv, pass_fds=[wr], stdin=subprocess.DEVNULL)
        except BaseException:
            os.close(rd)
            os.close(wr)
            raise
        os.close(wr)
        try:
            line = read_line(rd, SYNC_TIMEOUT_S)
            # The line is all: the pipe is closed after it.
            rest = read_line(rd, SYNC_TIMEOUT_S)
            assert rest == b"", f"more than one line on the sync fd: {line!r} then {rest!r}"
        finally:
            os.close(rd)
            try:
                rc = starter.wait(timeout=SYNC_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                starter.kill()
                starter.wait()
                pytest.fail("the starter did not exit after the sync line")
        c.synced(line, rc)
        return c

    def cleanup(self):
        for c in self.containers:
            self.runc("delete", "-f", c.id, check=False)
        for c in self.containers:
            pids = [c.shim_pid]
            try:
                with open(c.path("shim.pid")) as f:
                    pids.append(int(f.read()))
            except (OSError, ValueError):
                pass
            for pid in {p for p in pids if p}:
                try:
                    wait_for(lambda: not proc_alive(pid), 5.0, f"shim {pid} to exit")
                except pytest.fail.Exception:
                    if proc_is_shim(pid):
                        os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def harness(shim_bin):
    h = Harness(shim_bin)
    try:
        yield h
    finally:
        h.cleanup()


# ---------------------------------------------------------------------------
# tests


def test_stdout_stderr_and_exit_code(harness):
    c = harness.start(["/bin/sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3"])
    assert c.sync_line.startswith(b"ok "), c.sync_line
    assert c.starter_rc == 0
    with open(c.path("shim.pid")) as f:
        assert int(f.read()) == c.shim_pid
    with open(c.path("container.pid")) as f:
        assert int(f.read()) == c.pid
    assert os.path.exists(c.path("ctl"))
    # The container is created, not started: nothing ran yet.
    assert c.records() == []
    assert not os.path.exists(c.path("exit"))

    c.start()
    exit_info = c.wait_exit()
    assert exit_info["exit_code"] == 3
    assert exit_info["signal"] == 0
    assert c.started_at <= exit_info["exited_at"] <= time.time_ns()

    records = c.records()
    assert stream_records(records, "stdout") == [("F", b"out1"), ("F", b"out2")]
    assert stream_records(records, "stderr") == [("F", b"err1"), ("F", b"err2")]
    for ts, _, _, _ in records:
        assert ts.endswith("Z") and len(ts) == 30
    # The exit was written atomically and the control socket removed.
    assert sorted(os.listdir(c.state_dir)) == ["container.pid", "exit", "shim.log", "shim.pid"]


def test_monitor_detached_from_the_starter(harness):
    c = harness.start(["/bin/sh", "-c", "exec sleep 1000"])
    assert c.ok, c.sync_line
    assert c.starter_rc == 0
    # The starter has exited (it was reaped above); the monitor lives on.
    assert proc_alive(c.shim_pid)
    assert proc_is_shim(c.shim_pid)
    state, ppid, pgrp, session = proc_stat_fields(c.shim_pid)[:4]
    assert int(ppid) != os.getpid(), "the monitor is the test's child"
    assert int(session) != os.getsid(0), "the monitor shares the test's session"
    assert int(pgrp) != os.getpgid(0)
    # Double fork: not the session leader, so it can never get a terminal.
    assert int(session) != c.shim_pid
    # The container's init is the monitor's child (it is their subreaper).
    assert int(proc_stat_fields(c.pid)[1]) == c.shim_pid
    # Only what it needs stays open, nothing of the test's: stdio, the
    # state directory, the signalfd, the control and attach sockets, the log
    # file and the container's stdout and stderr pipes. The sync pipe is closed.
    fds = {int(fd): os.readlink(f"/proc/{c.shim_pid}/fd/{fd}") for fd in os.listdir(f"/proc/{c.shim_pid}/fd")}
    assert fds[0] == "/dev/null" and fds[1] == "/dev/null"
    assert fds[2] == c.path("shim.log")
    assert c.sync_pipe not in fds.values()
    assert c.state_dir in fds.values() and c.log_path in fds.values()
    assert sum(t.startswith("pipe:") for t in fds.values()) == 2, fds
    assert sum(t.startswith("socket:") for t in fds.values()) == 2, fds
    assert len(fds) == 10, fds

    c.start()
    harness.runc("kill", c.id, "KILL")
    assert c.wait_exit()["exit_code"] == 137


def test_long_line_split_and_trailing_partial(harness):
    script = "head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'no newline'"
    c = harness.start(["/bin/sh", "-c", script])
    assert c.ok, c.sync_line
    c.start()
    assert c.wait_exit()["exit_code"] == 0
    out = stream_records(c.records(), "stdout")
    assert [(tag, len(content)) for tag, content in out] == [
        ("P", LINE_MAX), ("P", LINE_MAX), ("F", 40000 - 2 * LINE_MAX), ("P", len("no newline")),
    ]
    assert all(content == b"x" * len(content) for _, content in out[:3])
    assert out[3][1] == b"no newline"
    assert stream_text(c.records(), "stdout") == b"x" * 40000 + b"\nno newline"


def test_killed_by_sigkill(harness):
    c = harness.start(["/bin/sh", "-c", "echo ready; exec sleep 1000"])
    assert c.ok, c.sync_line
    c.start()
    c.wait_log(b"ready")
    assert proc_alive(c.shim_pid)
    harness.runc("kill", c.id, "KILL")
    exit_info = c.wait_exit()
    assert exit_info["exit_code"] == 137
    assert exit_info["signal"] == 9
    assert stream_records(c.records(), "stdout") == [("F", b"ready")]


def test_log_reopen(harness):
    script = "echo before; while [ ! -e /go ]; do sleep 0.05; done; echo after"
    c = harness.start(["/bin/sh", "-c", script])
    assert c.ok, c.sync_line
    c.start()
    c.wait_log(b"before")

    rotated = c.log_path + ".1"
    os.rename(c.log_path, rotated)
    assert not os.path.exists(c.log_path)
    answer = ctl_request(c.state_dir, b"reopen\n")
    # "ok" only once the new file exists.
    exists_at_answer = os.path.exists(c.log_path)
    assert answer == b"ok\n"
    assert exists_at_answer

    assert ctl_request(c.state_dir, b"frobnicate\n") == b"error unknown command\n"
    assert ctl_request(c.state_dir, b"reopen\n") == b"ok\n"  # a second reopen keeps the same file

    open(os.path.join(c.bundle, "rootfs", "go"), "w").close()
    assert c.wait_exit()["exit_code"] == 0
    assert stream_text(parse_log(rotated), "stdout") == b"before\n"
    assert stream_text(c.records(), "stdout") == b"after\n"


def test_reopen_failure_keeps_the_old_file(harness):
    c = harness.start(["/bin/sh", "-c", "echo one; while [ ! -e /go ]; do sleep 0.05; done; echo two"])
    assert c.ok, c.sync_line
    c.start()
    c.wait_log(b"one")
    moved = c.log_path + ".moved"
    os.rename(c.log_path, moved)
    os.mkdir(c.log_path)  # a directory where the new log file should be
    answer = ctl_request(c.state_dir, b"reopen\n")
    assert answer.startswith(b"error reopen " + c.log_path.encode()), answer
    assert answer.endswith(b"\n") and answer.count(b"\n") == 1
    os.rmdir(c.log_path)
    open(os.path.join(c.bundle, "rootfs", "go"), "w").close()
    assert c.wait_exit()["exit_code"] == 0
    # Output went on into the file still open.
    assert stream_text(parse_log(moved), "stdout") == b"one\ntwo\n"
    assert not os.path.exists(c.log_path)


def test_create_failure_missing_binary(harness):
    c = harness.start(["/no/such/binary"])
    assert c.sync_line.startswith(b"error "), c.sync_line
    assert c.sync_line.endswith(b"\n") and c.sync_line.count(b"\n") == 1
    assert b"/no/such/binary" in c.sync_line
    assert c.starter_rc == 0
    with open(c.path("shim.pid")) as f:
        monitor = int(f.read())
    wait_for(lambda: not proc_alive(monitor), 10.0, "the shim to exit after the failed create")
    assert not os.path.exists(c.path("ctl"))
    assert not os.path.exists(c.path("exit"))
    c.assert_shim_log_clean()


def test_create_failure_bad_config(harness):
    c = harness.start([])  # runc refuses empty args
    assert c.sync_line.startswith(b"error "), c.sync_line
    assert b"args must not be empty" in c.sync_line
    with open(c.path("shim.pid")) as f:
        monitor = int(f.read())
    wait_for(lambda: not proc_alive(monitor), 10.0, "the shim to exit after the failed create")
    c.assert_shim_log_clean()


def test_create_failure_missing_runtime(harness):
    c = harness.start(["/bin/true"], runtime="/no/such/runc")
    assert c.sync_line.startswith(b"error "), c.sync_line
    assert b"/no/such/runc" in c.sync_line and b"No such file or directory" in c.sync_line


def test_missing_state_dir(harness):
    c = harness.start(["/bin/true"], state_dir=os.path.join(harness.tmp, "absent"))
    assert c.sync_line.startswith(b"error state directory "), c.sync_line
    assert c.starter_rc == 0


@pytest.mark.parametrize(
    "drop,add,message",
    [
        ("--id", [], b"--id is required"),
        (None, ["--bogus"], b"unknown option \"--bogus\""),
        (None, ["--stdin-once"], b"--stdin-once needs --stdin"),
        (None, ["extra"], b"unexpected argument \"extra\""),
        (None, ["--id", "again"], b"--id given twice"),
    ],
)
def test_bad_command_line(shim_bin, drop, add, message):
    with tempfile.TemporaryDirectory(prefix="crid-shim-test-") as tmp:
        rd, wr = os.pipe()
        opts = {
            "--id": "x", "--bundle": tmp, "--runtime": RUNC, "--runtime-root": tmp,
            "--state-dir": tmp, "--log-path": os.path.join(tmp, "log"), "--sync-fd": str(wr),
        }
        argv = [shim_bin]
        for k, v in opts.items():
            if k != drop:
                argv += [k, v]
        argv += add
        try:
            res = subprocess.run(argv, pass_fds=[wr], capture_output=True, timeout=30)
        finally:
            os.close(wr)
        line = read_line(rd, 5.0)
        os.close(rd)
        assert res.returncode == 2, res
        assert message in res.stderr, res.stderr
        assert b"usage: crid-shim" in res.stderr
        # The sync fd, when given, also gets the one error line.
        assert line == b"error " + res.stderr.split(b"\n")[0][len(b"crid-shim: "):] + b"\n", line
        assert os.listdir(tmp) == [], "nothing may be created on a bad command line"


def test_bad_paths_and_fds(shim_bin):
    base = ["--id", "x", "--bundle", "/b", "--runtime", RUNC, "--runtime-root", "/r", "--state-dir", "/s",
            "--log-path", "/l"]
    for extra, message in [
        (["--sync-fd", "1"], b"must not be stdin, stdout or stderr"),
        (["--sync-fd", "987"], b"--sync-fd 987: Bad file descriptor"),
        (["--sync-fd", "x1"], b"is not a file descriptor number"),
    ]:
        res = subprocess.run([shim_bin, *base, *extra], capture_output=True, timeout=30)
        assert res.returncode == 2 and message in res.stderr, (extra, res)
    rd, wr = os.pipe()
    try:
        argv = [shim_bin, *base, "--sync-fd", str(wr)]
        argv[argv.index("/b")] = "relative/bundle"
        res = subprocess.run(argv, pass_fds=[wr], capture_output=True, timeout=30)
        assert res.returncode == 2 and b"must be an absolute path" in res.stderr, res
    finally:
        os.close(rd)
        os.close(wr)
    res = subprocess.run([shim_bin, "--help"], capture_output=True, timeout=30)
    assert res.returncode == 0 and res.stdout.startswith(b"usage: crid-shim")


def test_stdin_kept_open(harness):
    # With --stdin the container's stdin is a pipe the shim holds open: cat
    # waits (attach writes to it later). Without, stdin is /dev/null.
    held = harness.start(["/bin/sh", "-c", "echo started; cat; echo stdin-ended"], flags=["--stdin"])
    closed = harness.start(["/bin/sh", "-c", "echo started; cat; echo stdin-ended"])
    assert held.ok and closed.ok, (held.sync_line, closed.sync_line)
    held.start()
    closed.start()
    assert closed.wait_exit()["exit_code"] == 0
    assert stream_text(closed.records(), "stdout") == b"started\nstdin-ended\n"
    held.wait_log(b"started")
    time.sleep(1.0)
    assert b"stdin-ended" not in stream_text(held.records(), "stdout")
    assert proc_alive(held.shim_pid) and proc_alive(held.pid)
    harness.runc("kill", held.id, "KILL")
    assert held.wait_exit()["signal"] == 9


def test_tty(harness):
    c = harness.start(["/bin/sh", "-c", "echo hello-tty; echo to-stderr >&2; exit 5"], flags=["--tty"],
                      terminal=True)
    assert c.ok, c.sync_line
    assert not os.path.exists(c.path("console")), "the console socket is removed after create"
    c.start()
    assert c.wait_exit()["exit_code"] == 5
    records = c.records()
    # One terminal: everything is stdout, with the terminal's \r\n.
    assert stream_records(records, "stderr") == []
    assert stream_text(records, "stdout") == b"hello-tty\r\nto-stderr\r\n"


def test_exit_not_held_up_by_orphans(harness):
    # No PID namespace: a background process outlives the init and keeps
    # stdout open. The shim waits a bounded time for it, then records the
    # exit anyway.
    c = harness.start(["/bin/sh", "-c", "sleep 30 & echo main-done; exit 4"], pid_namespace=False)
    assert c.ok, c.sync_line
    c.start()
    t0 = time.monotonic()
    wait_for(lambda: os.path.exists(c.path("exit")), EXIT_TIMEOUT_S, "exit file")
    elapsed = time.monotonic() - t0
    assert elapsed < 10.0, f"exit recorded only after {elapsed:.1f}s"
    assert c.wait_exit()["exit_code"] == 4
    assert stream_text(c.records(), "stdout") == b"main-done\n"


def test_pss_of_a_running_monitor(harness, record_property):
    c = harness.start(["/bin/sh", "-c", "echo up; exec sleep 1000"])
    assert c.ok, c.sync_line
    c.start()
    c.wait_log(b"up")
    pss, rss = pss_kib(c.shim_pid)
    asan = uses_asan(c.shim_pid)
    record_property("shim_pss_kib", pss)
    record_property("shim_rss_kib", rss)
    print(f"\ncrid-shim monitor ({'ASan build' if asan else 'release build'}): PSS {pss} KiB, RSS {rss} KiB")
    if not asan or pss < PSS_LIMIT_KIB:
        assert pss < PSS_LIMIT_KIB, f"monitor PSS {pss} KiB"
    harness.runc("kill", c.id, "KILL")
    assert c.wait_exit()["exit_code"] == 137


def test_no_output_lost_at_exit(harness):
    # Much output, then an immediate exit: everything is in the log before
    # the exit file appears.
    c = harness.start(["/bin/sh", "-c", "seq 1 100000; seq 1 5000 >&2; exit 0"])
    assert c.ok, c.sync_line
    c.start()
    assert c.wait_exit()["exit_code"] == 0
    records = c.records()
    assert stream_text(records, "stdout") == b"".join(b"%d\n" % i for i in range(1, 100001))
    assert stream_text(records, "stderr") == b"".join(b"%d\n" % i for i in range(1, 5001))
    stamps = [ts for ts, _, _, _ in records]
    assert stamps == sorted(stamps), "records out of time order"
