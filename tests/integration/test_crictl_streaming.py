"""crictl's exec -it, attach and port-forward against crid's streaming
server: crictl 1.26 is client-go's SPDY client, the same code a kubelet's
streaming proxy and kubectl run. Interactive commands run under a pty, as a
person at a terminal runs them. Pods and containers are made through gRPC
(pod_helpers); crictl does only the streaming. Skipped, saying so, when
crictl is not present."""

import os
import pty
import select
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import warnings

import pytest

from crictl_helpers import SKIP_REASON, Crictl, find_crictl
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401
from test_streaming import HTTPD_PORT, PAGE, start_httpd

CRICTL = find_crictl()
if CRICTL is None:
    warnings.warn(SKIP_REASON, pytest.PytestWarning)

pytestmark = [pytest.mark.skipif(CRICTL is None, reason=SKIP_REASON),
              pytest.mark.usefixtures("hugetlb_v1")]


class PtyRun:
    """crictl with a pty as its stdin, stdout and stderr."""

    def __init__(self, c, *args):
        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items()
               if k not in ("CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT", "CRI_CONFIG_FILE")}
        self.argv = [c.binary, "--config", c.config] + list(args)
        self.proc = subprocess.Popen(self.argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.out = b""

    def write(self, data):
        os.write(self.master, data)

    def expect(self, needle, timeout=30):
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{needle!r} not seen from {' '.join(self.argv)}; output: {self.out!r}")
        return self.out

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], min(timeout, 1.0))
        if r:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: crictl closed the terminal
                return False
            if not chunk:
                return False
            self.out += chunk
        return True

    def wait(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        if self.proc.poll() is None:
            self.kill()
            raise AssertionError(f"{' '.join(self.argv)} did not exit; output: {self.out!r}")
        while self._read(0.05) and len(self.out) < 1 << 20:
            pass
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self):
        self.kill()
        os.close(self.master)


@pytest.fixture
def crictl(pod_env):
    return Crictl(CRICTL, pod_env)


def test_crictl_exec(crictl, pod_env):
    """exec -it: a shell on a terminal answers and its exit code comes back;
    exec with piped stdin and without a terminal; exec of a command that
    fails."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    cid, _ = env.run(pod, cfg, "main", command=["sleep", "3600"])

    run = PtyRun(crictl, "exec", "-it", cid, "sh")
    try:
        run.expect(b"# ")  # the shell's prompt: it reads from now on
        run.write(b"echo hello-$((40+2))\n")
        run.expect(b"hello-42")
        run.write(b"exit 3\n")
        rc = run.wait()
    finally:
        run.close()
    # crictl 1.26 exits 1 and tells the code it got in the v4 status.
    assert rc == 1 and b"command terminated with exit code 3" in run.out, (rc, run.out)

    r = subprocess.run([crictl.binary, "--config", crictl.config, "exec", "-i", cid, "sh", "-c",
                        "tr a-z A-Z; echo err >&2"], input=b"piped input\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r
    assert r.stdout == b"PIPED INPUT\n" and r.stderr == b"err\n", r
    # Megabytes through stdin and back: flow control with a real SPDY peer.
    data = os.urandom(4 << 20)
    r = subprocess.run([crictl.binary, "--config", crictl.config, "exec", "-i", cid, "cat"], input=data,
                       capture_output=True, timeout=120)
    assert r.returncode == 0 and r.stdout == data, (r.returncode, len(r.stdout), r.stderr[-500:])
    r = crictl.run("exec", cid, "sh", "-c", "echo out; exit 5")
    assert r.rc == 1 and r.out == "out\n" and "exit code 5" in r.err, r


def test_crictl_attach(crictl, pod_env):
    """attach -it to a TTY container: what is typed reaches its shell, its
    answers come back, the CRI log has them; attach without a terminal to a
    pipe container sees its output."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    ccfg = env.ctr_config("term", command=["sh"])
    ccfg.stdin = True
    ccfg.tty = True
    cid = env.create(pod, cfg, ccfg)
    env.start(cid)
    run = PtyRun(crictl, "attach", "-it", cid)
    try:
        time.sleep(1.0)
        run.write(b"\n")  # a fresh prompt shows the shell reads
        run.expect(b"# ")
        run.write(b"echo attached-$((6*7))\n")
        run.expect(b"attached-42")
        run.write(b"exit\n")
        run.wait()
    finally:
        run.close()
    env.wait_exited(cid)
    assert any("attached-42" in line for line in env.output(cfg, ccfg)), env.output(cfg, ccfg)

    cid, ccfg = env.run(pod, cfg, "ticker", command=["sh", "-c", "i=0; while [ $i -lt 100 ]; do "
                                                      "echo tick$i; i=$((i+1)); sleep 0.2; done"])
    r = subprocess.Popen([crictl.binary, "--config", crictl.config, "attach", cid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while seen.count(b"tick") < 3 and time.monotonic() < deadline:
            seen += r.stdout.read1(4096)
        assert seen.count(b"tick") >= 3, seen
    finally:
        r.kill()
        r.wait(10)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_crictl_port_forward(crictl, pod_env):
    """port-forward: a busybox httpd's page through crictl's local port,
    several requests at once."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    start_httpd(env, pod, cfg)
    port = free_port()
    run = PtyRun(crictl, "port-forward", pod, f"{port}:{HTTPD_PORT}")
    try:
        run.expect(b"Forwarding from", timeout=30)
        bodies, errors = [], []

        def get():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
                    bodies.append(resp.read())
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(repr(e))

        threads = [threading.Thread(target=get) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, (errors, run.out)
        assert bodies == [PAGE] * 8, bodies
    finally:
        run.proc.send_signal(signal.SIGINT)
        try:
            run.wait(10)
        except AssertionError:
            pass
        run.close()
