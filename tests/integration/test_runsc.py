"""Pods under gVisor (Debian's runsc) as a runtime handler that runs one
sandbox per pod: the pod's sandbox container and its containers joining it
through the io.kubernetes.cri.* annotations, their logs, ExecSync, stop and
removal of single containers, the pod's stop and removal leaving nothing
behind, crid killed and restarted, a runc pod beside a runsc pod, Status'
handler features and a handler whose binary is missing.

This runsc (2022-12-19) decides that it runs in the host's network namespace
when /proc/sys/net/core/rmem_default exists, which every network namespace
of a newer kernel has: its own network stack (netstack) refuses to start in
a pod's namespace. The handler the tests configure therefore passes
--network=host: the sandbox still joins the pod's pinned namespace, and the
Sentry uses the host kernel's stack in it (test_netstack_refused shows the
refusal)."""

import json
import os
import re
import shutil
import subprocess
import time

import grpc
import pytest

from pod_helpers import (hugetlb_v1, info_json, mounts_under, pid_alive,  # noqa: F401
                         pod_env_factory, procs_mentioning, registry_set, rpc_code)

RUNSC = shutil.which("runsc") or "/usr/bin/runsc"
pytestmark = pytest.mark.skipif(not os.access(RUNSC, os.X_OK), reason="runsc is not installed")

RUNSC_DROPIN = """
runtimes:
  runsc:
    path: %s
    runtime_args: ["--network=host"]
""" % RUNSC

GVISOR_BOOT = "Starting gVisor..."


def runsc_env(pod_env_factory, **kw):  # noqa: F811
    return pod_env_factory(dropins={"50-runsc.yaml": RUNSC_DROPIN}, **kw)


def runsc_root(env):
    return os.path.join(env.d.run_root, "runtime", "runsc")


def runsc_ids(env):
    """The container IDs runsc's state directory holds."""
    r = subprocess.run([RUNSC, "--root", runsc_root(env), "list", "--quiet"], capture_output=True,
                       text=True, timeout=30)
    return set(r.stdout.split()) if r.returncode == 0 else set()


def sh(cmd):
    return ["/bin/sh", "-c", cmd]


def test_two_containers_share_one_sandbox(pod_env_factory):  # noqa: F811
    env = runsc_env(pod_env_factory)
    env.pull()
    pod, pcfg = env.new_pod(runtime_handler="runsc")
    st = env.pod_status(pod, verbose=True)
    assert st.status.state == env.api.SANDBOX_READY
    sandbox_pid = info_json(st)["sandboxPid"]
    assert sandbox_pid > 0 and pid_alive(sandbox_pid)
    with open(f"/proc/{sandbox_pid}/cmdline", "rb") as f:
        assert b"runsc-sandbox" in f.read()
    # The sandbox container runs in the pod's pinned network namespace.
    netns = info_json(st)["netns"]
    assert os.stat(f"/proc/{sandbox_pid}/ns/net").st_ino == os.stat(netns).st_ino
    assert pod in runsc_ids(env)

    script = ("dmesg | head -1; uname -r; echo out-line; echo err-line >&2; "
              "nc -l -p 7070 -e echo served & exec sleep 1000")
    a, acfg = env.run(pod, pcfg, "a", command=sh(script))
    b, bcfg = env.run(pod, pcfg, "b", command=sh("dmesg | head -1; uname -r; exec sleep 1000"))
    env.wait_output(pcfg, acfg, "out-line")
    env.wait_output(pcfg, acfg, "err-line", stream="stderr")
    env.wait_output(pcfg, bcfg, "4.4.0")
    host_release = os.uname().release
    for cfg in (acfg, bcfg):
        out = env.output(pcfg, cfg)
        assert out[0].startswith("[") and GVISOR_BOOT in out[0], out
        assert out[1] != host_release and out[1] == "4.4.0", out  # gVisor's kernel
    assert env.output(pcfg, acfg, "stderr") == ["err-line"]
    # One sandbox: both containers are runsc's, joined to the pod's.
    assert {a, b} <= runsc_ids(env)
    for cid in (a, b):
        with open(os.path.join(env.d.run_root, "containers", cid, "config.json")) as f:
            ann = json.load(f)["annotations"]
        assert ann["io.kubernetes.cri.container-type"] == "container"
        assert ann["io.kubernetes.cri.sandbox-id"] == pod
        assert env.status(cid).pid if hasattr(env.status(cid), "pid") else True

    # One network: b reaches a's listener on the pod's loopback.
    deadline = time.monotonic() + 15
    while True:
        r = env.exec_sync(b, sh("nc 127.0.0.1 7070 </dev/null"), timeout=10)
        if b"served" in r.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert b"served" in r.stdout, r
    # The pod's IPC: POSIX shared memory (the pod's /dev/shm) made in one
    # container is seen in the other.
    r = env.exec_sync(a, sh("echo shared > /dev/shm/seg-a"))
    assert r.exit_code == 0, r
    r = env.exec_sync(b, sh("cat /dev/shm/seg-a"))
    assert r.stdout == b"shared\n", r
    r = env.exec_sync(a, sh("uname -r"))
    assert r.exit_code == 0 and r.stdout.strip() == b"4.4.0"
    r = env.exec_sync(a, sh("echo to-stdout; echo to-stderr >&2; exit 3"))
    assert (r.exit_code, r.stdout, r.stderr) == (3, b"to-stdout\n", b"to-stderr\n")
    r = env.exec_sync(b, ["/no/such/binary"])
    assert r.exit_code != 0

    # Stop and remove a while b runs on.
    env.stop(a, timeout=5)
    st_a = env.wait_exited(a)
    assert st_a.exit_code == 143 or st_a.exit_code == 137, st_a
    env.remove(a)
    assert a not in runsc_ids(env)
    assert env.status(b).state == env.api.CONTAINER_RUNNING
    r = env.exec_sync(b, sh("echo still-here"))
    assert r.stdout == b"still-here\n"

    # The pod: its containers first, the sandbox last; nothing left.
    env.stop_pod(pod)
    assert env.status(b).state == env.api.CONTAINER_EXITED
    assert not pid_alive(sandbox_pid)
    env.remove_pod(pod)
    assert runsc_ids(env) == set()
    assert not os.path.exists(os.path.join(env.d.run_root, "pods", pod))
    assert [p for p in procs_mentioning(runsc_root(env))] == []
    assert mounts_under(env.d.run_root, env.d.state_root) == []
