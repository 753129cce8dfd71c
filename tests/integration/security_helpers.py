"""Helpers of the security and resource tests (test_security.py,
test_resources.py, test_mounts.py, test_userns.py): the sysprobe image — the
standard busybox layers plus /bin/sysprobe, a static program built here from
sysprobe.c that tries system calls and prints what the kernel answered — and
readers of what a container sees of itself (/proc/self/status).

    probe_image(rs)          pushes sysprobe:latest to the plain registry
                             (once per process) and returns its reference
    probe(env, pod, cfg, name, calls, **kw) -> {call: "OK" | "EPERM" | ...}
    status_fields(lines)     {"CapEff": "...", ...} from /proc/self/status
    caps_of(hexmask)         {"CAP_CHOWN", ...}
"""

import functools
import os
import subprocess
import tempfile

import image_builder as ib
from registry_fixtures import push

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_SOURCE = os.path.join(HERE, "sysprobe.c")
PROBE_REPO = "sysprobe"
# The image's users: root and app (1000, from the busybox layers); app is
# also a member of extra (2000).
PROBE_GROUP = "root:x:0:\napp:x:1000:\nextra:x:2000:app\n"

CAP_NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
DOCKER_DEFAULT_CAPS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}


@functools.lru_cache(maxsize=None)
def probe_binary():
    """The static sysprobe, compiled once per process (its bytes)."""
    with tempfile.TemporaryDirectory(prefix="crid-sysprobe-") as d:
        out = os.path.join(d, "sysprobe")
        r = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", out, PROBE_SOURCE],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"building sysprobe failed:\n{r.stderr}"
        with open(out, "rb") as f:
            return f.read()


@functools.lru_cache(maxsize=None)
def probe_image_obj():
    layers = list(ib.busybox_layers("gzip"))
    layers.append(ib.Layer([ib.Dir("/bin"), ib.File("/bin/sysprobe", probe_binary(), 0o755),
                            ib.Dir("/etc"), ib.File("/etc/group", PROBE_GROUP)],
                           comment="sysprobe, and app in group extra"))
    return ib.Image(layers, cmd=["/bin/sh"], env=[ib.DEFAULT_PATH_ENV], name=PROBE_REPO)


_PUSHED = set()


def probe_image(rs):
    """sysprobe:latest on the session's plain registry; its reference."""
    if rs.plain.host not in _PUSHED:
        push(rs.plain, PROBE_REPO, "latest", probe_image_obj())
        _PUSHED.add(rs.plain.host)
    return f"{rs.plain.host}/{PROBE_REPO}:latest"


def parse_probe(lines):
    out = {}
    for line in lines:
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def status_fields(lines):
    out = {}
    for line in lines:
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


def caps_of(mask):
    m = int(mask, 16)
    return {name for i, name in enumerate(CAP_NAMES) if m & (1 << i)}
