"""The kubelet-style Go client (tests/criclient, built into
build/criclient/criclient by `make criclient`, which `make check` runs)
against a real crid, under runtime.v1 and runtime.v1alpha2.

The client dials the socket path as the kubelet does (grpc-go, the path as
:authority, 16 MiB limits), uses the generated Go types of each API, and
checks every answer itself; these tests give it a crid with the session's
registries and assert that it found every answer right. The pods it makes
get a cgroup parent and log directory of the PodEnv, so the PodEnv's leak
checks cover them. The node scenario runs on a CNI bridge network of the
test's own (cni_helpers.BridgeNet): its pod must report an address of the
subnet and answer HTTP on it and on a hostPort.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time

import pytest

from cni_helpers import BridgeNet
from conftest import REPO
from pod_helpers import hugetlb_v1, pod_env_factory, registry_set  # noqa: F401 (fixtures)

CRICLIENT = os.path.join(REPO, "build", "criclient", "criclient")
CALL_TIMEOUT = "60s"
METHOD = re.compile(r"\bmethod=(/runtime\.[\w.]+/\w+)")


@pytest.fixture(scope="module")
def criclient():
    if not (os.path.isfile(CRICLIENT) and os.access(CRICLIENT, os.X_OK)):
        pytest.fail(f"{CRICLIENT} is missing: `make criclient` builds it (`make check` does)",
                    pytrace=False)
    return CRICLIENT


def run_client(env, criclient, command, api, args, timeout):
    """Runs the client against env's crid; returns (exit code, output, the
    JSON results or None). The pods it makes are known to env's leak checks."""
    parent = f"/crid-it-{secrets.token_hex(5)}"
    env.cgroup_parents.append(parent)
    result_path = os.path.join(env.d.tmp, f"criclient-{command}-{api}.json")
    argv = [criclient, command, "--socket", env.d.socket_path, "--api", api,
            "--call-timeout", CALL_TIMEOUT, "--log-dir", env.log_root,
            "--cgroup-parent", parent, "--json", result_path] + list(args)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGTERM)  # the client cleans up what it made
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    res = None
    if os.path.exists(result_path):
        with open(result_path) as f:
            res = json.load(f)
        env.pod_ids += [p for p in res["pods"] if p not in env.pod_ids]
        env.ctr_ids += [c for c in res["containers"] if c not in env.ctr_ids]
    if timed_out:
        pytest.fail(f"criclient {command} --api {api} did not finish within {timeout}s\n"
                    f"argv: {' '.join(argv)}\n--- output ---\n{out}", pytrace=False)
    return proc.returncode, out, res


def assert_ok(rc, out, res, what):
    assert rc == 0 and res is not None and res["ok"], (
        f"{what} failed (exit code {rc}): {res and res.get('error')}\n--- client output ---\n{out}")


def methods_called(env):
    return set(METHOD.findall(env.d.stderr()))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("api,handler", [("v1", ""), ("v1alpha2", "runc")])
def test_node(pod_env_factory, registry_set, criclient, api, handler, tmp_path):  # noqa: F811
    """A node's whole work through the Go client: Version, Status,
    RuntimeConfig, pulls with and without credentials, images, a pod on a
    CNI bridge network with a long-running, a short-lived and a web
    container (its IP and hostPort answering HTTP), exec (output, exit code,
    5 MiB, timeout), Exec over WebSocket (v4 channels and status), Attach
    and PortForward URLs and what a wrong client is told, logs and their
    rotation, the relist and its filters, container and pod stats, events,
    metrics and the streaming lists (v1), wrong requests, stop and removal
    of everything."""
    net = BridgeNet(str(tmp_path))
    try:
        env = pod_env_factory(network=net)
    except BaseException:
        net.cleanup()
        raise
    rs = registry_set
    before = methods_called(env)
    t0 = time.monotonic()
    rc, out, res = run_client(env, criclient, "node", api, [
        "--image", f"{rs.plain.host}/busybox:latest",
        "--auth-image", f"{rs.basic.host}/busybox:latest",
        "--username", rs.username, "--password", rs.password,
        "--expect-image-id", rs.expected("busybox")["image_id"],
        "--runtime-handler", handler, "--cgroup-driver", "cgroupfs",
        "--pod-cidr", str(net.subnet), "--host-port", str(free_port()),
    ], timeout=240)
    took = time.monotonic() - t0
    assert_ok(rc, out, res, f"criclient node --api {api}")
    print(out)
    print(f"criclient node --api {api}: {took:.1f}s")
    if res["warnings"]:
        print("client warnings:\n  " + "\n  ".join(res["warnings"]))

    assert len(res["pods"]) == 1 and len(res["containers"]) == 3, res
    steps = {s["name"] for s in res["steps"]}
    for name in ("Version", "Status", "PullImage with credentials", "PullImage", "ListImages",
                 "ImageStatus", "ImageFsInfo", "RunPodSandbox", "PodSandboxStatus",
                 "CreateContainer", "StartContainer", "ExecSync", "ExecSync timeout",
                 "ReopenContainerLog", "ListPodSandbox", "ListPodSandbox READY",
                 "ListContainers", "ListContainers RUNNING", "ContainerStatus", "StopContainer",
                 "RemoveContainer", "StopPodSandbox", "RemovePodSandbox", "RemoveImage",
                 "pod IP reachable", "hostPort reachable",
                 "Exec", "Attach", "PortForward"):
        assert name in steps, f"the client did not report the step {name!r}: {sorted(steps)}"

    # Every call crid saw from the client came in on the API asked for.
    called = methods_called(env) - before
    other = "v1alpha2" if api == "v1" else "v1"
    assert not {m for m in called if m.startswith(f"/runtime.{other}.")}, sorted(called)
    for m in ("RuntimeService/RunPodSandbox", "RuntimeService/ExecSync", "ImageService/PullImage",
              "RuntimeService/Exec", "RuntimeService/Attach", "RuntimeService/PortForward",
              "RuntimeService/ReopenContainerLog", "RuntimeService/ListContainers"):
        assert f"/runtime.{api}.{m}" in called, sorted(called)
    if api == "v1":
        assert "/runtime.v1.RuntimeService/GetContainerEvents" in called, sorted(called)
        assert "/runtime.v1.RuntimeService/RuntimeConfig" in called, sorted(called)
        for m in ("StreamPodSandboxes", "StreamContainers", "StreamContainerStats",
                  "StreamPodSandboxStats", "StreamPodSandboxMetrics", "ListMetricDescriptors",
                  "ListPodSandboxMetrics"):
            assert f"/runtime.v1.RuntimeService/{m}" in called, sorted(called)
        # The client checks the events strictly; here: it saw them all.
        want = ["CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT",
                "CONTAINER_DELETED_EVENT"]
        for cid in res["containers"] + res["pods"]:
            assert [e["type"] for e in res["events"] if e["container_id"] == cid] == want, res["events"]
    for m in ("ContainerStats", "ListContainerStats", "PodSandboxStats", "ListPodSandboxStats"):
        assert f"/runtime.{api}.RuntimeService/{m}" in called, sorted(called)


RELIST_PODS = 100
RELIST_ROUNDS = 1000


def test_relist_at_scale(pod_env_factory, registry_set, criclient):  # noqa: F811
    """The kubelet's relist (ListPodSandbox, ListPodSandbox READY,
    ListContainers, ListContainers RUNNING) against 100 pods with one running
    container each, 1000 rounds; every answer must list exactly the pods and
    containers made, in the right state."""
    env = pod_env_factory()
    rs = registry_set
    t0 = time.monotonic()
    rc, out, res = run_client(env, criclient, "relist", "v1", [
        "--image", f"{rs.plain.host}/busybox:latest", "--runtime-handler", "runc",
        "--pods", str(RELIST_PODS), "--rounds", str(RELIST_ROUNDS), "--pid", str(env.d.pid),
    ], timeout=170)
    took = time.monotonic() - t0
    assert_ok(rc, out, res, "criclient relist")
    print(out)
    rl = res["relist"]
    print(f"criclient relist: {took:.1f}s in all: pods made in {rl['setup_s']:.1f}s, "
          f"{RELIST_ROUNDS} rounds in {rl['wall_s']:.1f}s (round p50 {rl['round']['p50_ms']:.2f} ms, "
          f"p99 {rl['round']['p99_ms']:.2f} ms; crid CPU {rl['runtime_cpu_s_per_1000_rounds']:.2f} s "
          f"per 1000 rounds), removed in {rl['teardown_s']:.1f}s")
    assert len(res["pods"]) == RELIST_PODS and len(res["containers"]) == RELIST_PODS, res
    assert rl["rounds"] == RELIST_ROUNDS and rl["pods"] == RELIST_PODS, rl
    assert rl["runtime_pid"] == env.d.pid and rl["runtime_cpu_s"] > 0, rl
    # crid answered each call of every round.
    calls = METHOD.findall(env.d.stderr())
    for m in ("ListPodSandbox", "ListContainers"):
        n = calls.count(f"/runtime.v1.RuntimeService/{m}")
        assert n >= 2 * RELIST_ROUNDS, f"crid logged {n} {m} calls for {RELIST_ROUNDS} rounds"


def test_security(pod_env_factory, registry_set, criclient):  # noqa: F811
    """The Go client as a kubelet running a pod of the restricted Pod Security
    Standard, a Localhost seccomp profile and a hostUsers: false pod; it
    checks from inside the containers (sysprobe, /proc, id) and in
    ContainerStatus that each setting took effect, and that bad requests
    are refused."""
    import json as _json

    import security_helpers as sh
    env = pod_env_factory(searchable=True)
    ref = sh.probe_image(registry_set)
    profile = os.path.join(env.d.tmp, "no-mkdir.json")
    with open(profile, "w") as f:
        _json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}, f)
    rc, out, res = run_client(env, criclient, "security", "v1", [
        "--image", ref, "--seccomp-profile", profile, "--userns"], timeout=180)
    assert_ok(rc, out, res, "criclient security")
    print(out)
    assert len(res["pods"]) == 2 and len(res["containers"]) == 3, res
    steps = {s["name"] for s in res["steps"]}
    for name in ("UpdateContainerResources", "UpdatePodSandboxResources", "RunPodSandbox userns"):
        assert name in steps, sorted(steps)
