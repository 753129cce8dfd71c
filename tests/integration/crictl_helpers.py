"""Running crictl (cri-tools, grpc-go) against a test crid.

    find_crictl()          path of crictl, or None: <repo>/../shared/bin/crictl,
                           then `crictl` on PATH
    SKIP_REASON            the plain message tests skip with when it is missing
    Crictl(binary, env)    crictl bound to a PodEnv's crid through a config
                           file (runtime-endpoint, image-endpoint, timeout)
        .run(*args)        -> Result(argv, rc, out, err); never raises for
                           the exit status
        .ok(*args)         stdout; fails the test (showing crictl's stdout
                           and stderr and crid's log) unless the exit status is 0
        .fails(*args)      Result; fails the test if the exit status is 0
                           (Result.msg: stderr with logrus' quoting undone)
        .json(*args)       the parsed stdout of a command run with -o json
        .table(*args)      the parsed table output: [{column: value}]
        .lines(*args)      stdout lines without empty ones
        .pod_file(...) / .ctr_file(...)  pod and container config JSON files
                           in crictl's format (as in cri-tools' docs)
        .track_pod(id) / .track_ctr(id)  tell the PodEnv about objects made
                           through crictl (its leak checks look for them)
    rfc3339_ns(text)       crictl's RFC 3339 times -> Unix ns (None for Go's
                           zero time, which crictl prints for "never")
    human_size(n)          crictl's SIZE column for n bytes
"""

import calendar
import collections
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid

from conftest import REPO

CRICTL_TIMEOUT_S = 120.0
# crictl's own per-call timeout (config key `timeout`, seconds): long enough
# for pulls, pod and container creation on a loaded machine with ASan.
CRICTL_RPC_TIMEOUT_S = 60

SKIP_REASON = ("crictl scenarios skipped: crictl is not present "
               "(looked for ../shared/bin/crictl next to the repository and for "
               "crictl on PATH)")

# Environment variables crictl reads that would point it elsewhere.
_CRICTL_ENV = ("CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT", "CRI_CONFIG_FILE")

HEX64 = re.compile(r"^[0-9a-f]{64}$")
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
TRUNC = 13  # crictl's truncated ID length


def find_crictl():
    candidates = [os.path.normpath(os.path.join(REPO, "..", "shared", "bin", "crictl"))]
    on_path = shutil.which("crictl")
    if on_path:
        candidates.append(on_path)
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


class Result(collections.namedtuple("Result", "argv rc out err")):
    @property
    def msg(self):
        """stderr with logrus' escaping of quotes in msg="..." undone, so
        messages read as crictl composed them."""
        return self.err.replace('\\"', '"')


def rfc3339_ns(text):
    """'2024-01-02T03:04:05.123456789Z' (or with an offset, fraction trimmed
    as Go's RFC3339Nano does) -> Unix ns; None for Go's zero time."""
    if text == GO_ZERO_TIME:
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    assert m, f"not an RFC 3339 time: {text!r}"
    secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = int((m.group(2) or "0").ljust(9, "0"))
    off = 0
    if m.group(3) != "Z":
        sign = 1 if m.group(3)[0] == "+" else -1
        hh, mm = m.group(3)[1:].split(":")
        off = sign * (int(hh) * 3600 + int(mm) * 60)
    return (secs - off) * 1_000_000_000 + frac


def human_size(n):
    """go-units HumanSizeWithPrecision(n, 3): decimal units, 3 significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    size = float(n)
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g}{units[i]}"


def parse_table(text):
    """crictl's tabwriter tables: columns are separated by 2+ spaces (values
    such as 'Less than a second ago' hold single spaces)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines, f"no table in crictl's output: {text!r}"
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = []
    for ln in lines[1:]:
        cells = re.split(r"\s{2,}", ln.strip())
        assert len(cells) == len(header), \
            f"table row has {len(cells)} cells for {len(header)} columns {header}: {ln!r}"
        rows.append(dict(zip(header, cells)))
    return header, rows


class Crictl:
    def __init__(self, binary, env):
        self.binary = binary
        self.env = env
        self.dir = os.path.join(env.d.tmp, "crictl")
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "crictl.yaml")
        endpoint = f"unix://{env.d.socket_path}"
        with open(self.config, "w") as f:
            f.write(f"runtime-endpoint: {endpoint}\n"
                    f"image-endpoint: {endpoint}\n"
                    f"timeout: {CRICTL_RPC_TIMEOUT_S}\n"
                    "debug: false\n")
        self._n = 0

    # -- running -----------------------------------------------------------

    def run(self, *args, timeout=CRICTL_TIMEOUT_S):
        argv = [self.binary, "--config", self.config] + [str(a) for a in args]
        env = {k: v for k, v in os.environ.items() if k not in _CRICTL_ENV}
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               env=env, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(self._describe(
                f"crictl did not finish within {timeout}s",
                Result(argv, None, _text(e.stdout), _text(e.stderr)))) from None
        return Result(argv, p.returncode, _text(p.stdout), _text(p.stderr))

    def ok(self, *args, timeout=CRICTL_TIMEOUT_S):
        r = self.run(*args, timeout=timeout)
        if r.rc != 0:
            raise AssertionError(self._describe(f"crictl failed (exit status {r.rc})", r))
        return r.out

    def fails(self, *args, timeout=CRICTL_TIMEOUT_S):
        r = self.run(*args, timeout=timeout)
        if r.rc == 0:
            raise AssertionError(self._describe("crictl succeeded where it should fail", r))
        return r

    def json(self, *args):
        r = self.run(*args)
        if r.rc != 0:
            raise AssertionError(self._describe(f"crictl failed (exit status {r.rc})", r))
        try:
            return json.loads(r.out)
        except ValueError as e:
            raise AssertionError(self._describe(f"crictl's output is not JSON ({e})", r)) \
                from None

    def table(self, *args):
        """(header, rows) of a table command."""
        return parse_table(self.ok(*args))

    def lines(self, *args):
        return [ln for ln in self.ok(*args).splitlines() if ln.strip()]

    def describe(self, msg, r):
        return self._describe(msg, r)

    def _describe(self, msg, r):
        return (f"{msg}\n$ {' '.join(r.argv)}\nexit status: {r.rc}\n"
                f"--- stdout ---\n{r.out}\n--- stderr ---\n{r.err}\n"
                f"--- crid's log (last lines) ---\n{self.env.d.stderr_tail(40)}")

    def wait_for(self, what, fn, timeout=20.0):
        """Polls fn() until it returns a true value; returns it."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = fn()
            if last:
                return last
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout}s; last: {last!r}\n"
                                     f"--- crid's log ---\n{self.env.d.stderr_tail(40)}")
            time.sleep(0.1)

    # -- config files ------------------------------------------------------

    def write_json(self, name, obj):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(obj, f, indent=2)
        return path

    def pod_config(self, name=None, namespace="crid-crictl", hostname=None, labels=None,
                   annotations=None, pid_mode=1, attempt=1):
        """A pod config like crictl's docs (metadata, log_directory, linux with a
        security context), with its own cgroup_parent for the leak checks.
        pid_mode: 0 POD (shared PID namespace), 1 CONTAINER; None leaves
        namespace_options out."""
        self._n += 1
        name = name or f"crictl-pod{self._n}-{secrets.token_hex(3)}"
        uid = uuid.uuid4().hex
        log_dir = os.path.join(self.env.log_root, f"{namespace}_{name}_{uid}")
        os.makedirs(log_dir, exist_ok=True)
        cgroup_parent = f"/crid-it-{secrets.token_hex(5)}"
        self.env.cgroup_parents.append(cgroup_parent)
        linux = {"cgroup_parent": cgroup_parent, "security_context": {}}
        if pid_mode is not None:
            linux["security_context"]["namespace_options"] = {
                "network": 0, "pid": pid_mode, "ipc": 0}
        cfg = {"metadata": {"name": name, "namespace": namespace, "attempt": attempt,
                            "uid": uid},
               "log_directory": log_dir,
               "labels": labels or {},
               "annotations": annotations or {},
               "linux": linux}
        if hostname:
            cfg["hostname"] = hostname
        return cfg

    def pod_file(self, cfg):
        return self.write_json(f"pod-{cfg['metadata']['name']}.json", cfg)

    def ctr_config(self, name, image, command, envs=None, labels=None, log_path=None,
                   mounts=()):
        """A container config like crictl's docs (metadata, image, command,
        log_path). mounts: [{"container_path", "host_path", "readonly"}]."""
        return {"metadata": {"name": name},
                "image": {"image": image},
                "command": list(command),
                "envs": [{"key": k, "value": v} for k, v in (envs or {}).items()],
                "labels": labels or {},
                "mounts": list(mounts),
                "log_path": log_path or f"{name}.0.log",
                "linux": {}}

    def ctr_file(self, cfg, tag=""):
        self._n += 1
        return self.write_json(f"ctr-{cfg['metadata']['name']}-{self._n}{tag}.json", cfg)

    # -- bookkeeping ---------------------------------------------------------

    def track_pod(self, pod_id):
        assert HEX64.match(pod_id), f"crictl printed {pod_id!r} where a pod ID belongs"
        if pod_id not in self.env.pod_ids:
            self.env.pod_ids.append(pod_id)
        return pod_id

    def track_ctr(self, cid):
        assert HEX64.match(cid), f"crictl printed {cid!r} where a container ID belongs"
        if cid not in self.env.ctr_ids:
            self.env.ctr_ids.append(cid)
        return cid


def _text(b):
    if b is None:
        return ""
    if isinstance(b, str):
        return b
    return b.decode("utf-8", "replace")
