"""Helpers for the pod and container lifecycle tests (test_pods.py,
test_containers.py): a crid configured with crun (default) and runc that
knows the session's registries, and the common steps of a kubelet — pull,
run a pod, create and start a container, wait for a state, read the CRI log —
plus the leak checks every test ends with.

Fixtures (import them into a test module):
    hugetlb_v1       session: mounts the hugetlb v1 hierarchy crun needs on
                     this hybrid-cgroup host, and unmounts it at the end if
                     the tests mounted it (reference counted across
                     concurrent test processes, see ensure_hugetlb)
    pod_env_factory  pod_env_factory(extra_registries=(), network=None,
                     extra_config="", args=(), conflist=None,
                     searchable=False) -> PodEnv, started; network is a
                     cni_helpers.BridgeNet whose leaks are checked,
                     conflist the text of the CNI directory's file
                     (default: the network's, or loopback only; "" for
                     none); searchable makes the daemon's directory 0711
    pod_env          a PodEnv with the default configuration, started

Every PodEnv is torn down like a kubelet would before the daemon is stopped:
every pod crid lists is stopped and removed, and then the test FAILS if
anything is left: a mount under the daemon's directories, a process of the
daemon's (crid-shim, pod init, container) or in the test's cgroups, a
cgroup directory for the test's cgroup_parent (or named after a container),
a file or directory under the run or state root named after a pod or a
container, and with a network of the test's own an address host-local still
leases, an interface on its bridge or an iptables rule naming a pod or the
network. Leftovers are then removed (processes killed by pid, mounts
unmounted, empty cgroup directories removed) so the next test starts clean.
"""

import calendar
import collections
import contextlib
import fcntl
import json
import os
import re
import secrets
import signal
import subprocess
import time
import uuid

import grpc
import pytest

from conftest import LOOPBACK_CONFLIST, load_api
from registry_fixtures import registry_set  # noqa: F401  (re-exported fixture)
from test_images import registries_yaml

SLOW_CALL_S = 60.0  # RunPodSandbox, CreateContainer, Stop*, Remove*
PULL_TIMEOUT_S = 60.0
RUNTIMES_YAML = """
default_runtime: crun
runtimes:
  crun: {path: /usr/bin/crun}
  runc: {path: /usr/bin/runc}
"""
HEX64 = re.compile(r"^[0-9a-f]{64}$")
LOG_LINE = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)", re.S)
HUGETLB = "/sys/fs/cgroup/hugetlb"


def api():
    return load_api()


# ---------------------------------------------------------------------------
# The host's hybrid cgroups


# Several pytest processes (engineers, CI) may run these tests at once: the
# mount is shared by every test process on the host, so it is reference
# counted under a lock. Each process registers itself (a file named after its
# pid, holding its start time); the mount is made by whoever finds it missing
# and marked as the tests' own; the last process to leave removes it, and
# only if the tests made it.
HUGETLB_LOCK = "/run/crid-it-hugetlb.lock"
HUGETLB_USERS = "/run/crid-it-hugetlb.users"
HUGETLB_MARK = "/run/crid-it-hugetlb.mounted"  # "dir" when the directory was made too


@contextlib.contextmanager
def _hugetlb_locked():
    fd = os.open(HUGETLB_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _start_time(pid):
    stat = _read(f"/proc/{pid}/stat")
    return stat.rpartition(")")[2].split()[19] if stat else None


def ensure_hugetlb():
    """Registers this process as a user of the hugetlb v1 mount and mounts
    it if it is missing (again, if another process removed it)."""
    with _hugetlb_locked():
        os.makedirs(HUGETLB_USERS, exist_ok=True)
        with open(os.path.join(HUGETLB_USERS, str(os.getpid())), "w") as f:
            f.write(_start_time(os.getpid()) or "")
        if os.path.ismount(HUGETLB):
            return
        made_dir = not os.path.isdir(HUGETLB)
        os.makedirs(HUGETLB, exist_ok=True)
        r = subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", HUGETLB],
                           capture_output=True, text=True)
        if r.returncode != 0:
            if made_dir:
                os.rmdir(HUGETLB)
            pytest.fail(f"mount -t cgroup -o hugetlb cgroup {HUGETLB} failed: {r.stderr}",
                        pytrace=False)
        if not os.path.exists(HUGETLB_MARK):
            with open(HUGETLB_MARK, "w") as f:
                f.write("dir" if made_dir else "")


def release_hugetlb():
    """Unregisters this process; the last user unmounts what the tests mounted."""
    with _hugetlb_locked():
        try:
            os.unlink(os.path.join(HUGETLB_USERS, str(os.getpid())))
        except FileNotFoundError:
            pass
        users = os.listdir(HUGETLB_USERS) if os.path.isdir(HUGETLB_USERS) else []
        for name in users:
            recorded = _read(os.path.join(HUGETLB_USERS, name))
            if not name.isdigit() or _start_time(int(name)) != (recorded or None):
                os.unlink(os.path.join(HUGETLB_USERS, name))  # gone (or pid reused)
        if os.path.isdir(HUGETLB_USERS):
            if os.listdir(HUGETLB_USERS):
                return
            os.rmdir(HUGETLB_USERS)
        mark = _read(HUGETLB_MARK)
        if mark is None:
            return  # not the tests' mount
        if os.path.ismount(HUGETLB):
            subprocess.run(["umount", HUGETLB], capture_output=True)
        if mark == "dir" and not os.path.ismount(HUGETLB):
            try:
                os.rmdir(HUGETLB)
            except OSError:
                pass
        os.unlink(HUGETLB_MARK)


@pytest.fixture(scope="session")
def hugetlb_v1():
    """crun 1.8.1 refuses hybrid cgroups while a controller (hugetlb here) is
    bound to the cgroup2 hierarchy: hugetlb is mounted as a v1 hierarchy for
    the session, and unmounted at the end if the tests mounted it (see
    ensure_hugetlb / release_hugetlb)."""
    ensure_hugetlb()
    try:
        yield
    finally:
        release_hugetlb()


# ---------------------------------------------------------------------------
# /proc and /sys scans


def _unescape_mountinfo(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mountinfo():
    """[(mount point, fstype, source)] of this process's mount namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rf = right.split()
            out.append((_unescape_mountinfo(fields[4]), rf[0] if rf else "",
                        rf[1] if len(rf) > 1 else ""))
    return out


def _under(path, root):
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def mounts_under(*roots):
    return [m for m in mountinfo() if any(_under(m[0], r) for r in roots)]


def cgroup_mounts():
    """Mount points of every cgroup (v1) and cgroup2 hierarchy."""
    return sorted({m[0] for m in mountinfo() if m[1] in ("cgroup", "cgroup2")})


def cgroup_dirs_for(parent):
    """Existing directories for cgroup path `parent` in every hierarchy."""
    rel = parent.strip("/")
    return [os.path.join(m, rel) for m in cgroup_mounts() if os.path.isdir(os.path.join(m, rel))]


def cgroup_dirs_named(ids, max_depth=4):
    """Cgroup directories (any hierarchy, up to max_depth deep) whose name
    contains one of ids."""
    ids = [i for i in ids if i]
    found = []
    if not ids:
        return found
    for root in cgroup_mounts():
        base_depth = root.rstrip("/").count("/")
        for dirpath, dirnames, _ in os.walk(root):
            depth = dirpath.rstrip("/").count("/") - base_depth
            if depth >= max_depth:
                dirnames[:] = []
            for dn in dirnames:
                if any(i in dn for i in ids):
                    found.append(os.path.join(dirpath, dn))
    return found


Proc = collections.namedtuple("Proc", "pid ppid argv cgroups state")


def _read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def processes():
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        raw = _read(f"/proc/{pid}/cmdline", "rb")
        stat = _read(f"/proc/{pid}/stat")
        cg = _read(f"/proc/{pid}/cgroup")
        if raw is None or stat is None:
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]] if raw else []
        after = stat.rpartition(")")[2].split()
        state, ppid = after[0], int(after[1])
        paths = []
        for line in (cg or "").splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3:
                paths.append(parts[2])
        out.append(Proc(pid, ppid, argv, paths, state))
    return out


def procs_in_cgroup(parent):
    return [p for p in processes() if p.state != "Z" and any(_under(c, parent) for c in p.cgroups)]


def procs_mentioning(*needles, exclude=()):
    out = []
    me = os.getpid()
    for p in processes():
        if p.pid == me or p.pid in exclude or p.state == "Z":
            continue
        line = " ".join(p.argv)
        if any(n in line for n in needles):
            out.append(p)
    return out


def procs_with_argv(argv, parent=None):
    """Live processes whose argv is exactly argv (in cgroup `parent` if given)."""
    return [p for p in processes()
            if p.state != "Z" and p.argv == list(argv)
            and (parent is None or any(_under(c, parent) for c in p.cgroups))]


def wait_procs_with_argv(argv, parent=None, timeout=10.0):
    """procs_with_argv, waiting up to timeout for at least one: a line a
    shell logs comes just before it execs its last command."""
    deadline = time.monotonic() + timeout
    while True:
        procs = procs_with_argv(argv, parent)
        if procs or time.monotonic() > deadline:
            return procs
        time.sleep(0.05)


def pid_alive(pid):
    stat = _read(f"/proc/{pid}/stat")
    return stat is not None and stat.rpartition(")")[2].split()[0] != "Z"


def kill_and_wait(pids, timeout=10.0):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def unmount_all_under(*roots):
    """Unmounts every mount under roots, deepest first (lazily if busy)."""
    for _ in range(20):
        ms = sorted({m[0] for m in mounts_under(*roots)}, key=lambda p: -p.count("/"))
        if not ms:
            return
        for mp in ms:
            r = subprocess.run(["umount", mp], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)


def remove_cgroup_tree(path):
    """Kills what runs in the cgroup tree at path, removes its directories
    bottom-up. Returns what could not be removed."""
    pids = []
    for dirpath, _, files in os.walk(path):
        if "cgroup.procs" in files:
            for line in (_read(os.path.join(dirpath, "cgroup.procs")) or "").split():
                pids.append(int(line))
    kill_and_wait(pids)
    left = []
    for dirpath, _, _ in sorted(os.walk(path), key=lambda t: -t[0].count("/")):
        for _ in range(50):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            left.append(dirpath)
    return left


def paths_named(root, ids):
    """Paths under root whose final component contains one of ids."""
    ids = [i for i in ids if i]
    out = []
    if not ids or not os.path.isdir(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            if any(i in n for i in ids):
                out.append(os.path.join(dirpath, n))
    return out


# ---------------------------------------------------------------------------
# CRI logs

LogRecord = collections.namedtuple("LogRecord", "ts ts_ns stream tag content")


def ts_to_ns(ts):
    """'2024-01-02T03:04:05.123456789Z' -> Unix ns."""
    secs = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int(ts[20:29])


def parse_log(data):
    """Parses CRI log bytes into LogRecords. Every complete line must match
    the CRI format; a trailing incomplete line (being written) is ignored.
    Raises AssertionError on a malformed line."""
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    lines.pop()  # '' after the last newline, or an incomplete line
    out = []
    for i, line in enumerate(lines):
        m = LOG_LINE.fullmatch(line)
        assert m, f"log line {i + 1} is not in CRI format: {line[:200]!r}"
        out.append(LogRecord(m.group(1), ts_to_ns(m.group(1)), m.group(2), m.group(3),
                             m.group(4)))
    return out


def read_log(path):
    try:
        with open(path, "rb") as f:
            return parse_log(f.read())
    except FileNotFoundError:
        return []


def joined_lines(records, stream=None):
    """Whole output lines: P records joined with the F record that ends them."""
    out = []
    partial = {}
    for r in records:
        if stream is not None and r.stream != stream:
            continue
        partial[r.stream] = partial.get(r.stream, "") + r.content
        if r.tag == "F":
            out.append(partial.pop(r.stream))
    return out


# ---------------------------------------------------------------------------
# The environment: one crid, the pods and containers a test made


def rpc_code(fn, *a, **kw):
    """Calls fn; returns (None, None) on success, (code, details) on error."""
    try:
        fn(*a, **kw)
        return None, None
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


class PodEnv:
    """A started crid plus the kubelet's steps. Attributes: d (Daemon), rs
    (RegistrySet), api, pod_ids, ctr_ids, cgroup_parents."""

    def __init__(self, d, rs, network=None):
        self.d = d
        self.rs = rs
        self.network = network
        self.api = load_api()
        self.pod_ids = []
        self.ctr_ids = []
        self.cgroup_parents = []
        self.log_root = os.path.join(d.tmp, "logs")
        self._n = 0

    # -- daemon ------------------------------------------------------------

    @property
    def rt(self):
        return self.d.rt()

    def kill_daemon(self):
        """SIGKILL crid (the shims and containers stay)."""
        self.d.kill()
        self.d.close_channels()
        self.d._default_channel = None
        self.d.proc = None

    def start_daemon(self):
        """Starts crid again on the same socket, directories and config."""
        assert self.d.proc is None or not self.d.alive()
        self.d.close_channels()
        self.d._default_channel = None
        self.d.proc = None
        return self.d.start()

    # -- images ------------------------------------------------------------

    def image(self, repo="busybox", host=None):
        return f"{host or self.rs.plain.host}/{repo}:latest"

    def pull(self, repo="busybox", host=None):
        req = self.api.PullImageRequest(image=self.api.ImageSpec(image=self.image(repo, host)))
        return self.d.img().PullImage(req, timeout=PULL_TIMEOUT_S).image_ref

    def list_images(self):
        return list(self.d.img().ListImages(self.api.ListImagesRequest()).images)

    # -- pods --------------------------------------------------------------

    def pod_config(self, name=None, uid=None, namespace="crid-it", attempt=0, hostname="",
                   labels=None, annotations=None, dns=None, sysctls=None,
                   network=None, pid=None, ipc=None, cgroup_parent=None):
        """A PodSandboxConfig like a kubelet's: its own log directory (made
        here, as the kubelet does) and its own cgroup_parent /crid-it-<hex>."""
        a = self.api
        self._n += 1
        name = name or f"pod{self._n}-{secrets.token_hex(3)}"
        uid = uid or uuid.uuid4().hex
        log_dir = os.path.join(self.log_root, f"{namespace}_{name}_{uid}_{attempt}")
        os.makedirs(log_dir, exist_ok=True)
        if cgroup_parent is None:
            cgroup_parent = f"/crid-it-{secrets.token_hex(5)}"
        if cgroup_parent not in self.cgroup_parents:
            self.cgroup_parents.append(cgroup_parent)
        cfg = a.PodSandboxConfig(
            metadata=a.PodSandboxMetadata(name=name, uid=uid, namespace=namespace,
                                          attempt=attempt),
            hostname=hostname, log_directory=log_dir,
            labels=labels or {}, annotations=annotations or {})
        if dns is not None:
            cfg.dns_config.CopyFrom(a.DNSConfig(**dns))
        cfg.linux.cgroup_parent = cgroup_parent
        for k, v in (sysctls or {}).items():
            cfg.linux.sysctls[k] = v
        ns = cfg.linux.security_context.namespace_options
        ns.network = a.POD if network is None else network
        ns.pid = a.CONTAINER if pid is None else pid
        ns.ipc = a.POD if ipc is None else ipc
        return cfg

    def run_pod(self, config=None, runtime_handler="", timeout=SLOW_CALL_S):
        config = config if config is not None else self.pod_config()
        resp = self.rt.RunPodSandbox(
            self.api.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler),
            timeout=timeout)
        self.pod_ids.append(resp.pod_sandbox_id)
        return resp.pod_sandbox_id

    def new_pod(self, runtime_handler="", **kw):
        """(pod id, its PodSandboxConfig)."""
        cfg = self.pod_config(**kw)
        return self.run_pod(cfg, runtime_handler), cfg

    def pod_status(self, pod_id, verbose=False):
        return self.rt.PodSandboxStatus(
            self.api.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose))

    def stop_pod(self, pod_id, timeout=SLOW_CALL_S):
        self.rt.StopPodSandbox(self.api.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                               timeout=timeout)

    def remove_pod(self, pod_id, timeout=SLOW_CALL_S):
        self.rt.RemovePodSandbox(self.api.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                 timeout=timeout)

    def list_pods(self, id=None, state=None, labels=None):
        req = self.api.ListPodSandboxRequest()
        if id is not None or state is not None or labels is not None:
            f = req.filter
            f.id = id or ""
            if state is not None:
                f.state.state = state
            for k, v in (labels or {}).items():
                f.label_selector[k] = v
        return list(self.rt.ListPodSandbox(req).items)

    # -- containers --------------------------------------------------------

    def ctr_config(self, name, command=None, args=None, repo="busybox", image=None,
                   envs=None, working_dir="", mounts=(), labels=None, annotations=None,
                   log_path=None, memory_limit=0, run_as_user=None, readonly_rootfs=False,
                   attempt=0):
        a = self.api
        cfg = a.ContainerConfig(
            metadata=a.ContainerMetadata(name=name, attempt=attempt),
            image=a.ImageSpec(image=image or self.image(repo)),
            command=list(command or []), args=list(args or []), working_dir=working_dir,
            envs=[a.KeyValue(key=k, value=_kv_value(v)) for k, v in (envs or [])],
            mounts=list(mounts), labels=labels or {}, annotations=annotations or {},
            log_path=log_path if log_path is not None else f"{name}_{attempt}.log")
        if memory_limit:
            cfg.linux.resources.memory_limit_in_bytes = memory_limit
        if run_as_user is not None:
            cfg.linux.security_context.run_as_user.value = run_as_user
        if readonly_rootfs:
            cfg.linux.security_context.readonly_rootfs = True
        return cfg

    def create(self, pod_id, pod_cfg, cfg, timeout=SLOW_CALL_S):
        resp = self.rt.CreateContainer(
            self.api.CreateContainerRequest(pod_sandbox_id=pod_id, config=cfg,
                                            sandbox_config=pod_cfg), timeout=timeout)
        self.ctr_ids.append(resp.container_id)
        return resp.container_id

    def start(self, cid, timeout=SLOW_CALL_S):
        self.rt.StartContainer(self.api.StartContainerRequest(container_id=cid),
                               timeout=timeout)

    def run(self, pod_id, pod_cfg, name, command=None, **kw):
        """Creates and starts a container; returns (id, its ContainerConfig)."""
        cfg = self.ctr_config(name, command=command, **kw)
        cid = self.create(pod_id, pod_cfg, cfg)
        self.start(cid)
        return cid, cfg

    def stop(self, cid, timeout=0, call_timeout=SLOW_CALL_S):
        self.rt.StopContainer(self.api.StopContainerRequest(container_id=cid, timeout=timeout),
                              timeout=call_timeout)

    def remove(self, cid, timeout=SLOW_CALL_S):
        self.rt.RemoveContainer(self.api.RemoveContainerRequest(container_id=cid),
                                timeout=timeout)

    def status_resp(self, cid, verbose=False):
        return self.rt.ContainerStatus(
            self.api.ContainerStatusRequest(container_id=cid, verbose=verbose))

    def status(self, cid):
        return self.status_resp(cid).status

    def list_ctrs(self, id=None, state=None, pod=None, labels=None):
        req = self.api.ListContainersRequest()
        if id is not None or state is not None or pod is not None or labels is not None:
            f = req.filter
            f.id = id or ""
            f.pod_sandbox_id = pod or ""
            if state is not None:
                f.state.state = state
            for k, v in (labels or {}).items():
                f.label_selector[k] = v
        return list(self.rt.ListContainers(req).containers)

    def wait_state(self, cid, state, timeout=30.0):
        """Polls ContainerStatus until state; returns the status. Fails with
        the last status on timeout."""
        deadline = time.monotonic() + timeout
        st = None
        while True:
            st = self.status(cid)
            if st.state == state:
                return st
            if time.monotonic() > deadline:
                name = self.api.ContainerState.Name
                raise AssertionError(
                    f"container {cid[:12]} not {name(state)} within {timeout}s: "
                    f"state {name(st.state)}, status:\n{st}")
            time.sleep(0.1)

    def wait_exited(self, cid, timeout=30.0):
        return self.wait_state(cid, self.api.CONTAINER_EXITED, timeout)

    def log_path(self, pod_cfg, cfg):
        return os.path.join(pod_cfg.log_directory, cfg.log_path)

    def records(self, pod_cfg, cfg):
        return read_log(self.log_path(pod_cfg, cfg))

    def output(self, pod_cfg, cfg, stream="stdout"):
        """The container's whole output lines on stream (None: both)."""
        return joined_lines(self.records(pod_cfg, cfg), stream)

    def wait_log(self, path, predicate, timeout=15.0):
        """Polls the CRI log at path until predicate(records); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            recs = read_log(path)
            if predicate(recs):
                return recs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"log {path} did not reach the expected content within {timeout}s; "
                    f"records: {recs[-20:]}")
            time.sleep(0.05)

    def wait_output(self, pod_cfg, cfg, line, timeout=15.0, stream="stdout"):
        return self.wait_log(self.log_path(pod_cfg, cfg),
                             lambda rs: line in joined_lines(rs, stream), timeout)

    def run_to_exit(self, pod_id, pod_cfg, name, command=None, timeout=30.0, **kw):
        """Runs a container until it exits; returns (status, stdout lines)."""
        cid, cfg = self.run(pod_id, pod_cfg, name, command, **kw)
        st = self.wait_exited(cid, timeout)
        return st, self.output(pod_cfg, cfg)

    def exec_sync(self, cid, cmd, timeout=0, call_timeout=None):
        if call_timeout is None:
            call_timeout = (timeout + 20) if timeout else 30
        return self.rt.ExecSync(
            self.api.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=timeout),
            timeout=call_timeout)

    # -- leaks -------------------------------------------------------------

    def known_ids(self):
        return sorted(set(self.pod_ids + self.ctr_ids))

    def leaks(self):
        """What is left of the removed pods and containers: {kind: [...]}."""
        d = self.d
        found = {}
        ms = mounts_under(d.tmp)
        if ms:
            found["mounts under the daemon's directories"] = [f"{m[0]} ({m[1]})" for m in ms]
        exclude = {d.proc.pid} if d.proc is not None else set()
        procs = {p.pid: p for p in procs_mentioning(d.run_root, d.state_root, exclude=exclude)}
        ids = self.known_ids()
        for p in procs_mentioning(*ids, exclude=exclude) if ids else []:
            procs[p.pid] = p
        for parent in self.cgroup_parents:
            for p in procs_in_cgroup(parent):
                if p.pid not in exclude and p.pid != os.getpid():
                    procs[p.pid] = p
        if procs:
            found["processes"] = [f"pid {p.pid} (ppid {p.ppid}) {' '.join(p.argv)[:300]}"
                                  for p in procs.values()]
        cg = []
        for parent in self.cgroup_parents:
            for path in cgroup_dirs_for(parent):
                subs = [os.path.relpath(dp, path) for dp, _, _ in os.walk(path)][1:]
                cg.append(f"{path}" + (f" with subdirectories {subs}" if subs
                                       else " (empty: only the cgroup_parent itself)"))
        for path in cgroup_dirs_named(ids):
            if not any(_under(path, c.split(" ")[0]) for c in cg):
                cg.append(path)
        if cg:
            found["cgroup directories"] = cg
        files = (paths_named(d.run_root, ids) + paths_named(d.state_root, ids)
                 + paths_named("/run/crun", ids) + paths_named("/run/runc", ids))
        if files:
            found["files named after removed pods/containers"] = files[:50]
        if self.network is not None:
            found.update(self.network.leaks(ids))
        return found

    def container_leaks(self, cid, cgroup_parent, timeout=5.0):
        """What is left of one removed (or never created) container while
        its pod lives on: processes in the pod's cgroups or naming it, shims
        under the run root, files and cgroups named after it. Polled up to
        timeout. Returns [] when nothing is."""
        d = self.d
        deadline = time.monotonic() + timeout
        while True:
            exclude = {d.proc.pid} if d.proc is not None else set()
            found = []
            for p in ph_procs(cgroup_parent, exclude):
                found.append(f"process in the pod's cgroups: pid {p.pid} {' '.join(p.argv)}")
            needles = [cid] if cid else []
            for p in procs_mentioning(*needles, exclude=exclude) if needles else []:
                found.append(f"process naming the container: pid {p.pid} {' '.join(p.argv)}")
            for p in procs_mentioning(d.run_root, exclude=exclude):
                if p.argv and "crid-shim" in os.path.basename(p.argv[0]):
                    found.append(f"crid-shim: pid {p.pid} {' '.join(p.argv)}")
            if cid:
                for root in (d.run_root, d.state_root, "/run/crun", "/run/runc"):
                    found += [f"file: {x}" for x in paths_named(root, [cid])]
                found += [f"cgroup: {x}" for x in cgroup_dirs_named([cid])]
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def wait_no_leaks(self, timeout=5.0):
        """Leaks, polled for up to timeout (processes may take a moment to go)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.leaks()
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def force_cleanup(self):
        """Removes whatever the daemon left: processes (by pid), mounts,
        cgroup directories. Used after the checks, and by reboot tests."""
        d = self.d
        exclude = {d.proc.pid} if d.proc is not None and d.alive() else set()
        ids = self.known_ids()
        pids = {p.pid for p in procs_mentioning(d.run_root, d.state_root, exclude=exclude)}
        if ids:
            pids |= {p.pid for p in procs_mentioning(*ids, exclude=exclude)}
        for parent in self.cgroup_parents:
            pids |= {p.pid for p in procs_in_cgroup(parent)}
        pids.discard(os.getpid())
        pids -= exclude
        kill_and_wait(sorted(pids))
        unmount_all_under(d.tmp)
        left = []
        for parent in self.cgroup_parents:
            for path in cgroup_dirs_for(parent):
                left += remove_cgroup_tree(path)
        for path in cgroup_dirs_named(ids):
            left += remove_cgroup_tree(path)
        if self.network is not None:
            self.network.cleanup(ids)
        return left

    def teardown(self):
        problems = []
        d = self.d
        if d.proc is not None and d.alive():
            try:
                for c in self.list_ctrs():
                    if c.id not in self.ctr_ids:
                        self.ctr_ids.append(c.id)
                for p in self.list_pods():
                    if p.id not in self.pod_ids:
                        self.pod_ids.append(p.id)
                    for fn in (self.stop_pod, self.remove_pod):
                        try:
                            fn(p.id)
                        except grpc.RpcError as e:
                            problems.append(f"{fn.__name__}({p.id[:12]}) at teardown: "
                                            f"{e.code().name}: {e.details()}")
                for c in self.list_ctrs():
                    problems.append(f"container {c.id[:12]} still listed after its pod "
                                    f"was removed")
                    try:
                        self.remove(c.id)
                    except grpc.RpcError:
                        pass
            except grpc.RpcError as e:
                problems.append(f"teardown RPC failed: {e.code().name}: {e.details()}")
            found = self.wait_no_leaks()
            for kind, items in found.items():
                problems.append(f"left behind after every pod was removed — {kind}:\n  "
                                + "\n  ".join(items))
        else:
            rc = d.proc.poll() if d.proc is not None else None
            problems.append(f"crid was not running at teardown (exit code {rc}); "
                            f"leftovers cleaned without checking")
        left = self.force_cleanup()
        if left:
            problems.append(f"could not remove cgroup directories: {left}")
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def _kv_value(v):
    """KeyValue.value as the proto declares it (upstream CRI: string; this
    project's copy: bytes; the same on the wire)."""
    from google.protobuf.descriptor import FieldDescriptor
    field = load_api().KeyValue.DESCRIPTOR.fields_by_name["value"]
    if field.type == FieldDescriptor.TYPE_BYTES and isinstance(v, str):
        return v.encode()
    return v


def daemon_config(rs, extra_registries=()):
    extra = "".join(f"  - host: {h}\n    insecure: true\n" for h in extra_registries)
    return registries_yaml(rs, extra) + RUNTIMES_YAML


@pytest.fixture
def pod_env_factory(daemon_factory, registry_set, hugetlb_v1):  # noqa: F811
    """pod_env_factory(extra_registries=(), network=None, extra_config="",
    args=(), conflist=None, searchable=False, dropins=None) -> a started PodEnv whose crid
    knows the session's registries (plus extra_registries, plain HTTP) and
    the crun (default) and runc handlers, with network's conflist in its CNI
    directory (a cni_helpers.BridgeNet; loopback only without one).
    searchable: the daemon's directory is made 0711 (a user namespace's root
    must walk through it); dropins: {name: yaml} for its drop-in
    directory; deep_run_root: the run root is nested so deep that its
    sockets' absolute paths do not fit a socket address. Torn down with
    the leak checks; the network's
    bridge goes with it."""
    made = []

    def make(extra_registries=(), network=None, extra_config="", args=(), conflist=None,
             searchable=False, dropins=None, deep_run_root=False):
        ensure_hugetlb()  # again: another test process may have unmounted it
        if conflist is None:
            conflist = network.conflist() if network is not None else LOOPBACK_CONFLIST
        d = daemon_factory(config=daemon_config(registry_set, extra_registries) + extra_config,
                           args=list(args), cni_conflist=conflist, dropins=dropins)
        if searchable:
            os.chmod(d.tmp, 0o711)
        if deep_run_root:
            d.run_root = os.path.join(d.tmp, "r" * 60, "run")
        try:
            d.start()
        except BaseException:
            if network is not None:
                network.cleanup()
            raise
        env = PodEnv(d, registry_set, network)
        made.append(env)
        return env

    yield make
    errors = []
    for env in made:
        try:
            env.teardown()
        except BaseException as e:  # pytest.fail raises a BaseException subclass
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def pod_env(pod_env_factory):
    return pod_env_factory()


def info_json(resp, key="info"):
    info = dict(resp.info)
    assert key in info, f"verbose info has no {key!r} key: {sorted(info)}"
    return json.loads(info[key])


def ph_procs(cgroup_parent, exclude=()):
    return [p for p in procs_in_cgroup(cgroup_parent)
            if p.pid not in exclude and p.pid != os.getpid()]
