"""Shared helpers for crid's benchmarks (bench/*.py).

Nothing here asserts anything about speed: benchmarks print figures.

    REPO, CRID_BIN                 paths in the work tree
    load_api(tmpdir)               protoc → runtime.v1.api_pb2 (generated into tmpdir)
    CriClient(socket, api)         generic unary CRI calls over a unix socket
    Proc                           one daemon we started (stop: SIGTERM, SIGKILL after 10 s)
    CridDaemon, ContainerdDaemon   start/stop with a private root under a temp dir
    proc_status_kb(pid, field)     VmRSS / VmHWM from /proc/PID/status, in KiB
    umount_under(prefix)           unmount everything mounted below prefix
    processes(), pss_kb(pid)       live processes; PSS from /proc/PID/smaps_rollup
    remove_cgroup(parent)          a benchmark's /bench-<hex> cgroup, in every hierarchy
    kill_leftover_shims(roots)     shims still running for a daemon root, by PID
    read_text(path)                a file's text, or None
    stats(values)                  (min, median, max)
    Table                          plain-text table printing

Every process started here is started in its own session (so a Ctrl-C in
the terminal reaches only the benchmark, which then stops the daemons in
order) and with PR_SET_PDEATHSIG, so none outlives a benchmark that is
SIGKILLed. Processes are only ever signalled by the PID we got from Popen.
"""

import ctypes
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CRID_BIN = os.path.join(REPO, "build", "release", "crid")
CONTAINERD_BIN = "/usr/bin/containerd"
PROTO_DIR = os.path.join(REPO, "proto")
PROTO_FILE = os.path.join(PROTO_DIR, "runtime", "v1", "api.proto")
INTEGRATION_DIR = os.path.join(REPO, "tests", "integration")

STOP_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0

if INTEGRATION_DIR not in sys.path:
    sys.path.insert(0, INTEGRATION_DIR)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Generated protobuf module


def load_api(tmpdir):
    """Generates runtime/v1/api_pb2.py into tmpdir and imports it."""
    if shutil.which("protoc") is None:
        raise RuntimeError("protoc not found (apt-get install protobuf-compiler)")
    res = subprocess.run(["protoc", f"--python_out={tmpdir}", f"-I{PROTO_DIR}", PROTO_FILE],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"protoc failed ({res.returncode}): {res.stderr}")
    sys.path.insert(0, tmpdir)
    import importlib

    return importlib.import_module("runtime.v1.api_pb2")


# ---------------------------------------------------------------------------
# CRI client


class CriClient:
    """Generic unary calls: cli.call("ImageService", "PullImage", req, timeout)."""

    def __init__(self, socket_path, api):
        import grpc

        self.api = api
        self.socket_path = socket_path
        self.channel = grpc.insecure_channel(
            f"unix://{socket_path}",
            options=[("grpc.max_receive_message_length", 64 << 20),
                     ("grpc.enable_http_proxy", 0)])

    def call(self, service, method, request, timeout=30.0):
        svc = self.api.DESCRIPTOR.services_by_name[service]
        m = svc.methods_by_name[method]
        req_cls = getattr(self.api, m.input_type.name)
        resp_cls = getattr(self.api, m.output_type.name)
        assert isinstance(request, req_cls), (type(request), req_cls)
        mc = self.channel.unary_unary(f"/runtime.v1.{service}/{method}",
                                      request_serializer=req_cls.SerializeToString,
                                      response_deserializer=resp_cls.FromString)
        return mc(request, timeout=timeout)

    def version(self, timeout=5.0):
        return self.call("RuntimeService", "Version", self.api.VersionRequest(), timeout)

    def pull(self, image, timeout=600.0):
        req = self.api.PullImageRequest(image=self.api.ImageSpec(image=image))
        return self.call("ImageService", "PullImage", req, timeout).image_ref

    def remove(self, image, timeout=120.0):
        req = self.api.RemoveImageRequest(image=self.api.ImageSpec(image=image))
        return self.call("ImageService", "RemoveImage", req, timeout)

    def status(self, image, timeout=30.0):
        req = self.api.ImageStatusRequest(image=self.api.ImageSpec(image=image))
        return self.call("ImageService", "ImageStatus", req, timeout)

    def close(self):
        try:
            self.channel.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------
# Processes


def _child_setup():
    """In the child, before exec: die with the benchmark if it is killed."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Proc:
    """One process we started; stop() signals only its PID."""

    def __init__(self, argv, log_path, cwd=None, env=None):
        self.argv = list(argv)
        self.log_path = log_path
        with open(log_path, "ab") as fh:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=fh,
                                          stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                          start_new_session=True, close_fds=True,
                                          preexec_fn=_child_setup)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM, then SIGKILL after `timeout` seconds. Returns the exit code."""
        p = self.popen
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"pid {p.pid} ({os.path.basename(self.argv[0])}) ignored SIGTERM "
                    f"for {timeout:.0f}s: SIGKILL")
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout)
        return p.returncode

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""


def proc_status_kb(pid, field="VmRSS"):
    """VmRSS / VmHWM / ... of a live process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def socket_accepts(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---------------------------------------------------------------------------
# Mounts


def _unescape_mountinfo(s):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mounts_under(prefix):
    prefix = os.path.realpath(prefix).rstrip("/")
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = _unescape_mountinfo(line.split()[4])
                if mp == prefix or mp.startswith(prefix + "/"):
                    found.append(mp)
    except OSError:
        pass
    return found


def umount_under(prefix):
    """Unmounts everything below prefix, deepest first (lazily if busy).
    Returns the mount points it found."""
    found = []
    for _ in range(20):  # mounts may be stacked on one mount point
        now = mounts_under(prefix)
        if not now:
            break
        found += now
        for mp in sorted(now, key=len, reverse=True):  # deepest first
            r = subprocess.run(["umount", mp], capture_output=True, text=True)
            if r.returncode != 0:
                log(f"umount {mp}: {r.stderr.strip()}; trying umount -l")
                subprocess.run(["umount", "-l", mp], capture_output=True)
    else:
        log(f"mounts still left under {prefix}: {mounts_under(prefix)}")
    return found


def remove_tree(path):
    """Unmounts anything below path, then removes it."""
    if not path or not os.path.exists(path):
        return
    left = umount_under(path)
    if left:
        log(f"unmounted {len(left)} mount(s) left under {path}")
    still = mounts_under(path)
    if still:  # never delete through a mount into what it shows
        log(f"not removing {path}: still mounted there: {still}")
        return
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------
# Daemons


class DaemonStartError(RuntimeError):
    pass


class CridDaemon:
    """build/release/crid with everything under `root`."""

    name = "crid"

    def __init__(self, root, api, registry_host, binary=CRID_BIN, max_downloads=None,
                 extra_args=()):
        self.root = root
        self.api = api
        self.binary = binary
        self.registry_host = registry_host
        self.max_downloads = max_downloads
        self.extra_args = list(extra_args)
        self.socket_path = os.path.join(root, "crid.sock")
        self.proc = None
        self.client = None

    def start(self):
        os.makedirs(self.root)
        os.makedirs(os.path.join(self.root, "crid.d"))
        cfg = os.path.join(self.root, "crid.yaml")
        with open(cfg, "w") as f:
            f.write("registries:\n"
                    f"  - host: \"{self.registry_host}\"\n"
                    "    insecure: true\n")
            if self.max_downloads:
                f.write(f"max_concurrent_downloads: {int(self.max_downloads)}\n")
        argv = [self.binary,
                "--socket", self.socket_path,
                "--run-root", os.path.join(self.root, "run"),
                "--state-root", os.path.join(self.root, "state"),
                "--config", cfg,
                "--config-dir", os.path.join(self.root, "crid.d")] + self.extra_args
        self.proc = Proc(argv, os.path.join(self.root, "crid.log"))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if not self.proc.alive():
                raise DaemonStartError(f"crid exited with {self.proc.popen.returncode} "
                                       f"before serving:\n{self.proc.log_tail()}")
            if socket_accepts(self.socket_path):
                break
            if time.monotonic() > deadline:
                raise DaemonStartError(f"crid not serving after {READY_TIMEOUT_S}s:\n"
                                       f"{self.proc.log_tail()}")
            time.sleep(0.02)
        self.client = CriClient(self.socket_path, self.api)
        self.client.version(timeout=10)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is not None:
            self.proc.stop()


CONTAINERD_TOML = """\
version = 2
root = "{root}/root"
state = "{root}/state"
temp = "{root}/tmp"
disabled_plugins = [
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{root}/containerd.sock"

[ttrpc]
  address = "{root}/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{root}/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
{extra_cri}
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
{runc_options}
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{cni_bin_dir}"
      conf_dir = "{root}/cni-conf"

    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]
      endpoint = ["http://{registry}"]
"""


class ContainerdDaemon:
    """/usr/bin/containerd (CRI plugin) with everything under `root`."""

    name = "containerd"

    def __init__(self, root, api, registry_host, binary=CONTAINERD_BIN, max_downloads=None,
                 sandbox_image=None, oci_runtime=None, cni_bin_dir=None, cni_conflist=None):
        """sandbox_image: the pause image of pods; oci_runtime: the binary its
        runc v2 shim runs (BinaryName; cgroupfs, not systemd); cni_bin_dir
        (default: an empty dir of its own) and cni_conflist (text written
        into its own CNI config dir)."""
        self.root = root
        self.api = api
        self.binary = binary
        self.registry_host = registry_host
        self.max_downloads = max_downloads
        self.sandbox_image = sandbox_image
        self.oci_runtime = oci_runtime
        self.cni_bin_dir = cni_bin_dir or os.path.join(root, "cni-bin")
        self.cni_conflist = cni_conflist
        self.socket_path = os.path.join(root, "containerd.sock")
        self.config_path = os.path.join(root, "containerd.toml")
        self.proc = None
        self.client = None

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise DaemonStartError(f"{self.binary} missing "
                                   "(apt-get install -y --no-install-recommends containerd)")
        for d in ("", "root", "state", "tmp", "opt", "cni-bin", "cni-conf"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        extra = ""
        if self.max_downloads:
            extra = f"    max_concurrent_downloads = {int(self.max_downloads)}\n"
        if self.sandbox_image:
            extra += (f'    sandbox_image = "{self.sandbox_image}"\n'
                      # Lowering oom_score_adj (containerd gives sandboxes
                      # -998) needs CAP_SYS_RESOURCE, which a root in a
                      # container may lack: the runtime then fails.
                      '    restrict_oom_score_adj = true\n')
        runc_options = ""
        if self.oci_runtime:
            runc_options = ('        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc'
                            '.options]\n'
                            f'          BinaryName = "{self.oci_runtime}"\n'
                            '          SystemdCgroup = false\n')
        if self.cni_conflist:
            with open(os.path.join(self.root, "cni-conf", "10-bench.conflist"), "w") as f:
                f.write(self.cni_conflist)
        with open(self.config_path, "w") as f:
            f.write(CONTAINERD_TOML.format(root=self.root, registry=self.registry_host,
                                           extra_cri=extra, runc_options=runc_options,
                                           cni_bin_dir=self.cni_bin_dir))
        env = dict(os.environ)
        # Only loopback traffic: never route the registry through a proxy.
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                  "ALL_PROXY"):
            env.pop(k, None)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        self.proc = Proc([self.binary, "--config", self.config_path],
                         os.path.join(self.root, "containerd.log"), env=env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = None
        while True:
            if not self.proc.alive():
                raise DaemonStartError(f"containerd exited with {self.proc.popen.returncode}:"
                                       f"\n{self.proc.log_tail()}")
            if socket_accepts(self.socket_path):
                if self.client is None:
                    self.client = CriClient(self.socket_path, self.api)
                try:
                    self.client.version(timeout=5)
                    break
                except Exception as e:  # CRI service not registered (yet)
                    last = e
            log_text = self.proc.log_tail(200000)
            if 'failed to load plugin io.containerd.grpc.v1.cri' in log_text:
                raise DaemonStartError("containerd's CRI plugin failed to load:\n"
                                       + self.proc.log_tail())
            if time.monotonic() > deadline:
                raise DaemonStartError(f"containerd CRI not answering Version after "
                                       f"{READY_TIMEOUT_S}s ({last}):\n{self.proc.log_tail()}")
            time.sleep(0.05)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is not None:
            self.proc.stop()


# ---------------------------------------------------------------------------
# Processes, memory, cgroups


def read_text(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def processes():
    """[(pid, argv, cgroup paths)] of live (non-zombie) processes."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        raw, stat = read_text(f"/proc/{name}/cmdline", "rb"), read_text(f"/proc/{name}/stat")
        if not raw or stat is None or stat.rpartition(")")[2].split()[0] == "Z":
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]]
        cgs = [l.split(":", 2)[2] for l in (read_text(f"/proc/{name}/cgroup") or "").splitlines()
               if l.count(":") >= 2]
        out.append((int(name), argv, cgs))
    return out


def in_cgroup(cgs, parents):
    return any(c == p or c.startswith(p + "/") for c in cgs for p in parents)


def pss_kb(pid):
    for line in (read_text(f"/proc/{pid}/smaps_rollup") or "").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def cgroup_mounts():
    out = set()
    for line in (read_text("/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] and right.split()[0] in ("cgroup", "cgroup2"):
            out.add(_unescape_mountinfo(left.split()[4]))
    return sorted(out)


def remove_cgroup(parent):
    """Removes the cgroup directories of `parent` (one of ours, /bench-<hex>)
    in every hierarchy, bottom-up. Processes still in them (left by a failed
    run; started by our daemons) are SIGKILLed by PID first."""
    rel = parent.strip("/")
    assert rel.startswith("bench-")
    for m in cgroup_mounts():
        top = os.path.join(m, rel)
        if not os.path.isdir(top):
            continue
        pids = set()
        for dirpath, _, files in os.walk(top):
            for p in (read_text(os.path.join(dirpath, "cgroup.procs")) or "").split():
                pids.add(int(p))
        for p in pids:
            log(f"killing pid {p}, left in cgroup {top}")
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            for _ in range(50):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                log(f"could not remove cgroup {dirpath}")



def kill_leftover_shims(roots, names=("crid-shim", "containerd-shim-runc-v2")):
    """SIGKILLs, by PID, shims whose command line names one of roots."""
    for pid, argv, _ in processes():
        if argv and os.path.basename(argv[0]) in names and any(r in " ".join(argv) for r in roots):
            log(f"killing leftover {argv[0]} pid {pid}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------
# Figures


def stats(values):
    v = sorted(values)
    return v[0], statistics.median(v), v[-1]


def fmt_s(x):
    return f"{x:.3f}"


class Table:
    def __init__(self, headers, aligns=None):
        self.headers = list(headers)
        self.rows = []
        self.aligns = aligns or ["<"] + [">"] * (len(headers) - 1)

    def add(self, *row):
        self.rows.append(["" if c is None else str(c) for c in row])

    def sep(self):
        self.rows.append(None)

    def render(self):
        widths = [len(h) for h in self.headers]
        for r in self.rows:
            if r is not None:
                widths = [max(w, len(c)) for w, c in zip(widths, r)]

        def line(cells):
            return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, self.aligns, widths))

        rule = "  ".join("-" * w for w in widths)
        out = [line(self.headers), rule]
        for r in self.rows:
            out.append(rule if r is None else line(r))
        return "\n".join(out)
