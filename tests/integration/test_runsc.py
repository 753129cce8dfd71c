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

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time

import grpc
import pytest

from cni_helpers import BridgeNet
from test_go_client import assert_ok, criclient, free_port, run_client  # noqa: F401
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

    # Stats come from gVisor's own accounting: the containers have no cgroup.
    st = env.rt.ContainerStats(env.api.ContainerStatsRequest(container_id=a)).stats
    assert st.cpu.usage_core_nano_seconds.value > 0 and st.memory.working_set_bytes.value > 0, st

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


def test_containers_share_the_sandbox_ipc(pod_env_factory):  # noqa: F811
    """A System V segment made in one container of the pod is found from
    another, and not from a container of another runsc pod."""
    from security_helpers import probe_image

    env = runsc_env(pod_env_factory)
    image = probe_image(env.rs)
    env.pull("sysprobe")
    pod, pcfg = env.new_pod(runtime_handler="runsc")
    other, ocfg = env.new_pod(runtime_handler="runsc")
    _, out = env.run_to_exit(pod, pcfg, "make", command=["/bin/sysprobe", "shmmake"], image=image)
    assert out == ["shmmake=OK"]
    _, out = env.run_to_exit(pod, pcfg, "find", command=["/bin/sysprobe", "shmfind"], image=image)
    assert out == ["shmfind=OK"]
    _, out = env.run_to_exit(other, ocfg, "find", command=["/bin/sysprobe", "shmfind"], image=image)
    assert out == ["shmfind=ENOENT"]
    for p in (pod, other):
        env.stop_pod(p)
        env.remove_pod(p)


def test_exit_codes_and_restart_recovery(pod_env_factory):  # noqa: F811
    env = runsc_env(pod_env_factory)
    env.pull()
    pod, pcfg = env.new_pod(runtime_handler="runsc")
    st, out = env.run_to_exit(pod, pcfg, "seven", command=sh("echo bye; exit 7"))
    assert (st.exit_code, st.reason, out) == (7, "Error", ["bye"])
    st, _ = env.run_to_exit(pod, pcfg, "zero", command=sh("true"))
    assert (st.exit_code, st.reason) == (0, "Completed")
    cid, cfg = env.run(pod, pcfg, "ticker", command=sh("i=0; while true; do echo tick-$i; i=$((i+1)); "
                                                         "sleep 0.2; done"))
    env.wait_output(pcfg, cfg, "tick-2")
    sandbox_pid = info_json(env.pod_status(pod, verbose=True))["sandboxPid"]

    env.kill_daemon()
    time.sleep(0.5)
    assert pid_alive(sandbox_pid)  # the sandbox outlives crid
    env.start_daemon()
    assert env.pod_status(pod).status.state == env.api.SANDBOX_READY
    assert env.status(cid).state == env.api.CONTAINER_RUNNING
    assert env.status(env.ctr_ids[0]).exit_code == 7
    r = env.exec_sync(cid, sh("echo after-restart; uname -r"))
    assert r.stdout == b"after-restart\n4.4.0\n", r
    n = len(env.output(pcfg, cfg))
    env.wait_log(env.log_path(pcfg, cfg), lambda rs: len(rs) > n + 2)  # still logged
    env.stop(cid, timeout=2)
    assert env.wait_exited(cid).exit_code in (143, 137)
    env.stop_pod(pod)
    env.remove_pod(pod)
    assert runsc_ids(env) == set()


def test_container_memory_limit_is_not_this_gvisors(pod_env_factory):  # noqa: F811
    """The evidence for the README: this runsc does not hold a container of
    the sandbox to its own memory limit (only the pod's cgroup bounds the
    whole sandbox), so no OOM kill happens for crid to report. A container
    limited to 32 MiB holds 150 MB and exits 0."""
    env = runsc_env(pod_env_factory)
    env.pull()
    pod, pcfg = env.new_pod(runtime_handler="runsc")
    st, out = env.run_to_exit(pod, pcfg, "hog", timeout=90, memory_limit=32 * 1024 * 1024,
                              command=sh("head -c 150000000 /dev/zero | tail >/dev/null; echo survived"))
    assert (st.exit_code, st.reason, out) == (0, "Completed", ["survived"])
    with open(os.path.join(env.d.run_root, "containers", env.ctr_ids[-1], "config.json")) as f:
        assert json.load(f)["linux"]["resources"]["memory"]["limit"] == 32 * 1024 * 1024
    env.stop_pod(pod)
    env.remove_pod(pod)


def test_sandbox_killed_while_crid_is_away(pod_env_factory):  # noqa: F811
    """The sandbox dies while crid is down: at restart the pod is not ready,
    its container exited, and both are removed without leftovers."""
    env = runsc_env(pod_env_factory)
    env.pull()
    pod, pcfg = env.new_pod(runtime_handler="runsc")
    cid, _ = env.run(pod, pcfg, "c", command=sh("exec sleep 1000"))
    sandbox_pid = info_json(env.pod_status(pod, verbose=True))["sandboxPid"]
    env.kill_daemon()
    os.kill(sandbox_pid, 9)
    deadline = time.monotonic() + 10
    while pid_alive(sandbox_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    env.start_daemon()
    assert env.pod_status(pod).status.state == env.api.SANDBOX_NOTREADY
    st = env.wait_exited(cid)
    assert st.exit_code != 0, st
    env.stop_pod(pod)
    env.remove_pod(pod)
    assert runsc_ids(env) == set()


def test_sandbox_killed_while_crid_runs(pod_env_factory):  # noqa: F811
    env = runsc_env(pod_env_factory)
    env.pull()
    pod, pcfg = env.new_pod(runtime_handler="runsc")
    cid, _ = env.run(pod, pcfg, "c", command=sh("exec sleep 1000"))
    sandbox_pid = info_json(env.pod_status(pod, verbose=True))["sandboxPid"]
    os.kill(sandbox_pid, 9)
    deadline = time.monotonic() + 15
    while env.pod_status(pod).status.state != env.api.SANDBOX_NOTREADY:
        assert time.monotonic() < deadline, "the pod stays ready without its sandbox"
        time.sleep(0.2)
    assert env.wait_exited(cid).exit_code != 0
    with pytest.raises(grpc.RpcError) as e:
        env.create(pod, pcfg, env.ctr_config("late", command=sh("true")))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    env.stop_pod(pod)
    env.remove_pod(pod)
    assert runsc_ids(env) == set()


def test_runc_pod_beside_runsc_pod(pod_env_factory):  # noqa: F811
    env = runsc_env(pod_env_factory)
    env.pull()
    g_pod, g_cfg = env.new_pod(runtime_handler="runsc")
    r_pod, r_cfg = env.new_pod(runtime_handler="runc")
    g, _ = env.run(g_pod, g_cfg, "g", command=sh("exec sleep 1000"))
    r, _ = env.run(r_pod, r_cfg, "r", command=sh("exec sleep 1000"))
    assert env.exec_sync(g, sh("uname -r")).stdout.strip() == b"4.4.0"
    assert env.exec_sync(r, sh("uname -r")).stdout.strip().decode() == os.uname().release
    # The runc pod has no sandbox container and its container no annotations.
    assert info_json(env.pod_status(r_pod, verbose=True))["sandboxPid"] == 0
    with open(os.path.join(env.d.run_root, "containers", r, "config.json")) as f:
        assert "io.kubernetes.cri.sandbox-id" not in json.load(f).get("annotations", {})
    assert runsc_ids(env) == {g_pod, g}
    for pod in (g_pod, r_pod):
        env.stop_pod(pod)
        env.remove_pod(pod)
    assert runsc_ids(env) == set()


def test_host_network_pod_gets_runsc_host_network(pod_env_factory):  # noqa: F811
    env = runsc_env(pod_env_factory)
    env.pull()
    pod, pcfg = env.new_pod(runtime_handler="runsc", network=env.api.NODE)
    sandbox_pid = info_json(env.pod_status(pod, verbose=True))["sandboxPid"]
    with open(f"/proc/{sandbox_pid}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    assert b"--network=host" in argv
    assert os.stat(f"/proc/{sandbox_pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    cid, _ = env.run(pod, pcfg, "h", command=sh("exec sleep 1000"))
    r = env.exec_sync(cid, sh("echo host-net-ok"))
    assert r.stdout == b"host-net-ok\n"
    env.stop_pod(pod)
    env.remove_pod(pod)


def test_status_features_and_missing_binary(pod_env_factory):  # noqa: F811
    dropin = RUNSC_DROPIN + "  ghost:\n    path: /nonexistent/runsc\n"
    env = pod_env_factory(dropins={"50-runsc.yaml": dropin})
    resp = env.rt.Status(env.api.StatusRequest(verbose=True))
    handlers = {h.name: h for h in resp.runtime_handlers}
    assert {"runsc", "ghost", "runc", "crun"} <= set(handlers)
    # This runsc has no "features" command and supports neither.
    assert not handlers["runsc"].features.recursive_read_only_mounts
    assert not handlers["runsc"].features.user_namespaces
    assert not handlers["ghost"].features.user_namespaces
    cfg = json.loads(dict(resp.info)["config"])["runtimes"]
    assert cfg["runsc"]["sandbox_per_pod"] is True
    assert cfg["runsc"]["runtime_args"] == ["--network=host"]
    assert cfg["runc"]["sandbox_per_pod"] is False
    with pytest.raises(grpc.RpcError) as e:
        env.run_pod(env.pod_config(), runtime_handler="ghost")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "runtime handler ghost" in e.value.details() and "/nonexistent/runsc" in e.value.details()
    assert env.list_pods() == []


def test_tty_and_user_namespace_refused(pod_env_factory):  # noqa: F811
    env = runsc_env(pod_env_factory, searchable=True)  # only the handler stands in the way
    env.pull()
    pod, pcfg = env.new_pod(runtime_handler="runsc")
    cfg = env.ctr_config("t", command=sh("sleep 1"))
    cfg.tty = True
    with pytest.raises(grpc.RpcError) as e:
        env.create(pod, pcfg, cfg)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config.tty" in e.value.details() and "runsc" in e.value.details()
    assert env.list_ctrs() == []
    ucfg = env.pod_config()
    ns = ucfg.linux.security_context.namespace_options
    ns.userns_options.mode = env.api.POD
    ns.userns_options.uids.add(container_id=0, host_id=200000, length=65536)
    ns.userns_options.gids.add(container_id=0, host_id=200000, length=65536)
    with pytest.raises(grpc.RpcError) as e:
        env.run_pod(ucfg, runtime_handler="runsc")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "runtime handler runsc cannot run user namespaces" in e.value.details()
    assert [p.id for p in env.list_pods()] == [pod]


def test_netstack_refused_in_pod_namespace(pod_env_factory):  # noqa: F811
    """Without --network=host this runsc refuses its own network stack in
    the pod's namespace (see the module's docstring); the pod fails whole
    and leaves nothing."""
    dropin = "runtimes:\n  gvisor:\n    path: %s\n" % RUNSC
    env = pod_env_factory(dropins={"50-runsc.yaml": dropin})
    with pytest.raises(grpc.RpcError) as e:
        env.run_pod(env.pod_config(), runtime_handler="gvisor")
    assert e.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.FAILED_PRECONDITION)
    assert "root network namespace" in e.value.details(), e.value.details()
    assert 'runtime_args: ["--network=host"]' in e.value.details(), e.value.details()
    assert env.list_pods() == []
    assert runsc_ids_at(os.path.join(env.d.run_root, "runtime", "gvisor")) == set()


def runsc_ids_at(root):
    r = subprocess.run([RUNSC, "--root", root, "list", "--quiet"], capture_output=True, text=True,
                       timeout=30)
    return set(r.stdout.split()) if r.returncode == 0 else set()


def test_cni_network_and_own_root(pod_env_factory, tmp_path):  # noqa: F811
    """A bridge network's address reaches a server in a runsc container; the
    handler's root holds its state and its runtime_args reach every runsc
    command."""
    net = BridgeNet(str(tmp_path))
    root = str(tmp_path / "runsc-root")
    logs = tmp_path / "runsc-logs"
    logs.mkdir()
    dropin = ("runtimes:\n  runsc:\n    path: %s\n    root: %s\n"
              "    runtime_args: [--network=host, --debug, --debug-log=%s/]\n" % (RUNSC, root, logs))
    env = pod_env_factory(network=net, dropins={"50-runsc.yaml": dropin})
    env.pull()
    pod, pcfg = env.new_pod(runtime_handler="runsc")
    ip = env.pod_status(pod).status.network.ip
    assert ipaddress.ip_address(ip) in net.subnet
    cid, _ = env.run(pod, pcfg, "srv", command=sh("while true; do nc -l -p 8080 -e echo from-gvisor; done"))
    assert runsc_ids_at(root) == {pod, cid}
    assert not os.path.exists(runsc_root(env))
    # The handler's flags reach every command: its debug logs name them.
    commands = {name.split(".")[-2] for name in os.listdir(logs)}
    assert {"create", "start", "boot", "gofer"} <= commands, commands
    deadline, got = time.monotonic() + 20, b""
    while b"from-gvisor" not in got and time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, 8080), timeout=3) as conn:
                got = conn.recv(100)
        except OSError:
            time.sleep(0.3)
    assert got == b"from-gvisor\n"
    env.stop_pod(pod)
    env.remove_pod(pod)
    assert runsc_ids_at(root) == set()
    assert "delete" in {name.split(".")[-2] for name in os.listdir(logs)}


def test_crictl_runp_with_runtime_runsc(pod_env_factory):  # noqa: F811
    from crictl_helpers import SKIP_REASON, Crictl, find_crictl

    binary = find_crictl()
    if binary is None:
        pytest.skip(SKIP_REASON)
    env = runsc_env(pod_env_factory)
    c = Crictl(binary, env)
    image = env.image("busybox")
    c.ok("pull", image)
    pod = c.pod_config()
    pid = c.track_pod(c.ok("runp", "--runtime", "runsc", c.pod_file(pod)).strip())
    rows = c.table("pods")[1]
    assert [r["RUNTIME"] for r in rows] == ["runsc"], rows
    assert c.json("inspectp", pid)["status"]["runtimeHandler"] == "runsc"
    cids = []
    for name in ("one", "two"):
        cfg = c.ctr_config(name, image, ["sh", "-c", "echo hello-%s; uname -r; exec sleep 1000" % name])
        cid = c.track_ctr(c.ok("create", pid, c.ctr_file(cfg), c.pod_file(pod)).strip())
        c.ok("start", cid)
        cids.append(cid)
    for name, cid in zip(("one", "two"), cids):
        c.wait_for(f"the log of {name}",
                   lambda cid=cid, name=name: c.ok("logs", cid).splitlines() == [f"hello-{name}", "4.4.0"]
                   or None)
    assert c.ok("exec", "-s", cids[0], "sh", "-c", "uname -r") == "4.4.0\n\n\n"
    assert c.ok("exec", cids[1], "sh", "-c", "echo streamed") == "streamed\n"
    r = c.fails("exec", "-s", cids[0], "sh", "-c", "echo oops >&2; exit 4")
    assert "exited with 4: oops" in r.msg, r.err
    c.ok("stop", cids[0])
    c.ok("rm", cids[0])
    assert c.json("inspect", cids[1])["status"]["state"] == "CONTAINER_RUNNING"
    c.ok("stopp", pid)
    c.ok("rmp", pid)
    assert c.lines("pods", "-q") == []
    assert runsc_ids(env) == set()


def test_go_client_node_under_runsc(pod_env_factory, registry_set, criclient, tmp_path):  # noqa: F811
    """The kubelet-style Go client's whole node scenario (see test_go_client)
    with its pod under the runsc handler on a CNI bridge."""
    net = BridgeNet(str(tmp_path))
    try:
        env = runsc_env(pod_env_factory, network=net)
    except BaseException:
        net.cleanup()
        raise
    rs = registry_set
    rc, out, res = run_client(env, criclient, "node", "v1", [
        "--image", f"{rs.plain.host}/busybox:latest",
        "--auth-image", f"{rs.basic.host}/busybox:latest",
        "--username", rs.username, "--password", rs.password,
        "--expect-image-id", rs.expected("busybox")["image_id"],
        "--runtime-handler", "runsc", "--cgroup-driver", "cgroupfs",
        "--pod-cidr", str(net.subnet), "--host-port", str(free_port()),
    ], timeout=300)
    assert_ok(rc, out, res, "criclient node --runtime-handler runsc")
    assert runsc_ids(env) == set()
