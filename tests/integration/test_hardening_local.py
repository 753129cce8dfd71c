"""Hardening against other local users: nothing under the state root is
reachable by an unprivileged user (layers with setuid binaries, writable
layers, crid.db with every container's environment), nor a pod's run
directory (its /dev/shm), an older installation's modes are fixed at
start-up, and a container's log_path
cannot send its output to another file (an absolute path, "..", or a
symlink planted in the pod's log directory).

The unprivileged user is created by the test (useradd) and removed at the
end; its commands run through setpriv and runuser."""

import contextlib
import json
import os
import secrets
import stat
import subprocess

import grpc
import pytest

import pod_helpers as ph
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401

pytestmark = pytest.mark.usefixtures("hugetlb_v1")


@pytest.fixture
def stranger():
    """A throwaway unprivileged user: (name, uid, gid)."""
    name = f"crid-it-{secrets.token_hex(4)}"
    r = subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin",
                        name], capture_output=True, text=True)
    assert r.returncode == 0, f"useradd failed: {r.stderr}"
    try:
        out = subprocess.run(["id", "-u", name], capture_output=True, text=True, check=True)
        uid = int(out.stdout)
        gid = int(subprocess.run(["id", "-g", name], capture_output=True, text=True,
                                 check=True).stdout)
        yield name, uid, gid
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


# Runs as the stranger: what each path allows it to do.
PROBE = r"""
import json, os, sys
out = {}
for p in json.loads(sys.argv[1]):
    try:
        st = os.lstat(p)
        res = "stat"
        if os.path.isfile(p):
            try:
                with open(p, "rb") as f:
                    f.read(1)
                res = "read"
            except OSError:
                pass
    except OSError as e:
        res = "denied" if e.errno == 13 else f"errno {e.errno}"
    out[p] = res
print(json.dumps(out))
"""


def probe_as(user, paths):
    _, uid, gid = user
    r = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--",
                        "/usr/bin/python3", "-c", PROBE, json.dumps(paths)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"probe as uid {uid} failed: {r.stderr}"
    return json.loads(r.stdout)


def exec_as(user, argv):
    """runuser, not setpriv: setpriv keeps its capabilities until the exec
    itself, so the exec's path lookup would still pass as root."""
    return subprocess.run(["runuser", "-u", user[0], "--"] + argv, capture_output=True, text=True,
                          timeout=30)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def open_the_way(d):
    """The test daemon lives in a 0700 temporary directory; a real one's
    state root sits in /var/lib (0755). Open the way down to it."""
    os.chmod(d.tmp, 0o755)


def secret_paths(d, cid, pod_id=None):
    st = d.state_root
    layers = [os.path.join(st, "layers", h) for h in os.listdir(os.path.join(st, "layers"))]
    paths = [os.path.join(st, "crid.db"), os.path.join(st, "crid.db-wal"),
             os.path.join(st, "containers", cid, "upper", "suidcopy"),
             os.path.join(st, "containers", cid, "upper")]
    if pod_id:
        # The pod's /dev/shm (a tmpfs open to all) is in its run directory.
        paths += [os.path.join(d.run_root, "pods", pod_id, "shm"),
                  os.path.join(d.run_root, "pods", pod_id, "shm", "secret")]
    for lay in layers:
        paths.append(lay)
        if os.path.exists(os.path.join(lay, "bin", "busybox")):
            paths.append(os.path.join(lay, "bin", "busybox"))
    return paths


def assert_unreachable(user, paths):
    got = probe_as(user, paths)
    reached = {p: r for p, r in got.items() if r not in ("denied",)}
    assert not reached, f"an unprivileged user reaches paths under the state root: {reached}"


def test_state_root_is_private(pod_env, stranger):
    env, d = pod_env, pod_env.d
    env.pull()
    pid, cfg = env.new_pod()
    # A root container writes a setuid binary into its writable layer.
    cid, _ = env.run(pid, cfg, "suid", [
        "sh", "-c", "cp /bin/busybox /suidcopy && chmod 4755 /suidcopy && echo s3cret > /dev/shm/secret "
                    "&& sleep 1000"])
    env.wait_state(cid, env.api.CONTAINER_RUNNING)
    upper = os.path.join(d.state_root, "containers", cid, "upper")
    ph_wait(lambda: os.path.exists(os.path.join(upper, "suidcopy")))
    open_the_way(d)

    assert mode(d.state_root) == 0o700
    for sub in ("layers", "containers", "blobs", "tmp"):
        assert mode(os.path.join(d.state_root, sub)) == 0o700, sub
    for f in ("crid.db", "crid.db-wal", "crid.db-shm"):
        path = os.path.join(d.state_root, f)
        if os.path.exists(path):
            assert mode(path) == 0o600, (f, oct(mode(path)))
    paths = secret_paths(d, cid, pid)
    assert any(p.endswith("/bin/busybox") for p in paths), paths
    ph_wait(lambda: os.path.exists(os.path.join(d.run_root, "pods", pid, "shm", "secret")))
    assert_unreachable(stranger, paths)
    # The layer's busybox cannot be run from outside, by any path.
    busybox = next(p for p in paths if p.endswith("/bin/busybox"))
    r = exec_as(stranger, [busybox, "true"])
    assert r.returncode != 0 and "denied" in r.stderr.lower(), (r.returncode, r.stderr)
    # The container itself still works for its non-root processes.
    res = env.exec_sync(cid, ["sh", "-c", "su_ok=$(ls /); echo $su_ok | grep -q bin && echo fine"])
    assert res.stdout.strip() == b"fine", res


def ph_wait(pred, timeout=10.0):
    import time
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_old_installation_modes_fixed_at_start(pod_env, stranger):
    env, d = pod_env, pod_env.d
    env.pull()
    pid, cfg = env.new_pod()
    cid, _ = env.run(pid, cfg, "sleeper", ["sleep", "1000"])
    env.wait_state(cid, env.api.CONTAINER_RUNNING)
    env.kill_daemon()
    # What an older crid left: world-traversable directories, a readable database.
    os.chmod(d.state_root, 0o711)
    for sub in ("layers", "containers"):
        os.chmod(os.path.join(d.state_root, sub), 0o711)
    os.chmod(os.path.join(d.state_root, "containers", cid), 0o755)
    os.chmod(os.path.join(d.run_root, "pods", pid), 0o711)
    for f in ("crid.db", "crid.db-wal", "crid.db-shm"):
        path = os.path.join(d.state_root, f)
        if os.path.exists(path):
            os.chmod(path, 0o644)
    open_the_way(d)
    paths = secret_paths(d, cid, pid)
    reached = probe_as(stranger, paths)
    assert any(r != "denied" for r in reached.values()), \
        f"the old modes should have let the user in (test set-up): {reached}"

    env.start_daemon()
    assert mode(d.state_root) == 0o700
    assert mode(os.path.join(d.state_root, "layers")) == 0o700
    assert mode(os.path.join(d.state_root, "containers")) == 0o700
    assert mode(os.path.join(d.state_root, "crid.db")) == 0o600
    assert mode(os.path.join(d.run_root, "pods", pid)) == 0o700
    assert_unreachable(stranger, paths)
    assert env.status(cid).state == env.api.CONTAINER_RUNNING


# ---------------------------------------------------------------------------
# log_path


@pytest.mark.parametrize("log_path", ["ABSOLUTE", "../escape.log", "sub/../../x.log"])
def test_log_path_outside_log_directory_refused(pod_env, log_path, tmp_path):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    target = tmp_path / "evil.log"
    if log_path == "ABSOLUTE":
        log_path = str(target)
    ccfg = env.ctr_config("evil", ["sh", "-c", "echo pwned"], log_path=log_path)
    with pytest.raises(grpc.RpcError) as e:
        env.create(pid, cfg, ccfg)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
    assert "log_path" in e.value.details(), e.value.details()
    assert env.list_ctrs() == []
    assert not target.exists()


def test_log_path_through_symlink_refused(pod_env, tmp_path):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    # Planted in the pod's log directory: the file itself, and a directory.
    os.symlink(str(victim), os.path.join(cfg.log_directory, "evil_0.log"))
    os.symlink(str(tmp_path), os.path.join(cfg.log_directory, "evildir"))
    for name, path in (("evil", "evil_0.log"), ("evildir", "evildir/victim")):
        ccfg = env.ctr_config(name, ["sh", "-c", "echo pwned"], log_path=path)
        with pytest.raises(grpc.RpcError) as e:
            env.create(pid, cfg, ccfg)
        assert e.value.code() != grpc.StatusCode.OK
        assert "log" in e.value.details(), e.value.details()
    assert victim.read_text() == "precious\n"
    assert env.list_ctrs() == []
    # A log in a subdirectory the kubelet made works as before.
    os.makedirs(os.path.join(cfg.log_directory, "web"))
    cid, ccfg = env.run(pid, cfg, "web", ["sh", "-c", "echo hello"], log_path="web/0.log")
    env.wait_exited(cid)
    assert env.output(cfg, ccfg) == ["hello"]
