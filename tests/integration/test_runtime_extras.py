"""Container resources updated in place, container events on the
GetContainerEvents stream, and the clean-up at start-up of what a crash in
the middle of a create left."""

import os
import queue
import re
import secrets
import subprocess
import time
import threading

import pod_helpers as ph
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401

MiB = 1024 * 1024


def memory_limit_of(cgroup_parent, cid):
    with open(f"/sys/fs/cgroup/memory{cgroup_parent}/{cid}/memory.limit_in_bytes") as f:
        return int(f.read())


def test_update_container_resources(pod_env):
    env = pod_env
    env.pull()
    pod_id, pod_cfg = env.new_pod()
    cid, _ = env.run(pod_id, pod_cfg, "u", command=["sleep", "1000"], memory_limit=64 * MiB)
    parent = pod_cfg.linux.cgroup_parent
    assert memory_limit_of(parent, cid) == 64 * MiB
    api = ph.api()
    req = api.UpdateContainerResourcesRequest(container_id=cid)
    req.linux.memory_limit_in_bytes = 96 * MiB
    req.linux.cpu_shares = 512
    env.rt.UpdateContainerResources(req, timeout=30)
    assert memory_limit_of(parent, cid) == 96 * MiB
    with open(f"/sys/fs/cgroup/cpu{parent}/{cid}/cpu.shares") as f:
        assert int(f.read()) == 512
    # The process is still the one it was: an update, not a restart.
    assert env.status(cid).state == api.CONTAINER_RUNNING


def test_container_events(pod_env):
    env = pod_env
    api = ph.api()
    env.pull()
    events = queue.Queue()
    stream = env.rt.GetContainerEvents(api.GetEventsRequest(), timeout=60)

    def read():
        try:
            for ev in stream:
                events.put((ev.container_id, ev.container_event_type))
        except Exception:  # the stream ends with the test
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    pod_id, pod_cfg = env.new_pod()
    cid, _ = env.run(pod_id, pod_cfg, "ev", command=["sh", "-c", "exit 0"])
    env.wait_exited(cid)
    env.remove(cid)
    seen = []
    while len(seen) < 4:
        ev = events.get(timeout=15)
        if ev[0] == cid:  # the pod's own events come too (test_events.py)
            seen.append(ev)
    stream.cancel()
    assert seen == [(cid, api.CONTAINER_CREATED_EVENT), (cid, api.CONTAINER_STARTED_EVENT),
                    (cid, api.CONTAINER_STOPPED_EVENT), (cid, api.CONTAINER_DELETED_EVENT)]


def test_start_up_removes_what_an_interrupted_create_left(pod_env):
    """A crash between making a container's directories and recording it
    leaves an overlay mount and directories no record names: the next start
    removes them. Made here by hand, as a crash would leave them."""
    env = pod_env
    d = env.d
    ghost = secrets.token_hex(32)
    run_dir = os.path.join(d.run_root, "containers", ghost)
    upper = os.path.join(d.state_root, "containers", ghost)
    pod_dir = os.path.join(d.run_root, "pods", secrets.token_hex(32))
    rootfs = os.path.join(run_dir, "rootfs")
    os.makedirs(rootfs)
    os.makedirs(os.path.join(upper, "upper"))
    os.makedirs(os.path.join(pod_dir, "shm"))
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", rootfs], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(pod_dir, "shm")], check=True)
    env.kill_daemon()
    env.start_daemon()
    assert not os.path.exists(run_dir)
    assert not os.path.exists(upper)
    assert not os.path.exists(pod_dir)
    assert ph.mounts_under(run_dir, pod_dir) == []


def test_stop_signal_from_config(pod_env):
    """StopContainer sends the config's stop signal: here SIGUSR1, which the
    container turns into exit code 7 (SIGTERM would end it with 143)."""
    env = pod_env
    api = ph.api()
    env.pull()
    pod_id, pod_cfg = env.new_pod()
    cfg = env.ctr_config("sig", command=["sh", "-c", "trap 'exit 7' USR1; while true; do sleep 0.2; done"])
    cfg.stop_signal = api.SIGNAL_SIGUSR1
    cid = env.create(pod_id, pod_cfg, cfg)
    env.start(cid)
    env.wait_state(cid, api.CONTAINER_RUNNING)
    time.sleep(0.5)  # the trap is set
    env.stop(cid, timeout=20)
    st = env.status(cid)
    assert st.state == api.CONTAINER_EXITED and st.exit_code == 7, st


def test_create_abandoned_by_the_client_does_not_keep_the_name(pod_env):
    """The kubelet gives up on a slow CreateContainer and retries: the first
    create must not hold the name forever (it is rolled back once it sees
    its client gone), so a retry succeeds and exactly one container has the
    name."""
    import grpc
    env = pod_env
    api = ph.api()
    env.pull()
    pod_id, pod_cfg = env.new_pod()
    cfg = env.ctr_config("retry", command=["sleep", "1000"])
    req = api.CreateContainerRequest(pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg)
    try:
        env.rt.CreateContainer(req, timeout=0.005)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
    deadline = time.monotonic() + 20
    while True:
        try:
            cid = env.rt.CreateContainer(req, timeout=30).container_id
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e
            assert time.monotonic() < deadline, "the name stayed reserved"
            time.sleep(0.1)
    env.ctr_ids.append(cid)
    named = [c for c in env.list_ctrs(pod=pod_id) if c.metadata.name == "retry"]
    assert [c.id for c in named] == [cid]
    # The first create ran (it was not refused at the door) and what it made
    # is gone: only the retry's container has a directory.
    assert re.search(r"method=/runtime.v1.RuntimeService/CreateContainer status=(CANCELLED|DEADLINE_EXCEEDED)",
                     env.d.stderr())
    assert os.listdir(os.path.join(env.d.run_root, "containers")) == [cid]
    assert os.listdir(os.path.join(env.d.state_root, "containers")) == [cid]


def test_relative_log_directory_is_refused(pod_env):
    import grpc
    env = pod_env
    cfg = env.pod_config()
    cfg.log_directory = "relative/logs"
    code, details = ph.rpc_code(env.run_pod, cfg)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "log_directory" in details, (code, details)


def test_pod_without_hostname_and_a_long_name(pod_env):
    """Pod names may be longer than a host name can be: with no hostname in
    the config the pod keeps the node's, as with other runtimes."""
    env = pod_env
    env.pull()
    name = "p" * 200
    pod_id, pod_cfg = env.new_pod(name=name)
    cid, _ = env.run(pod_id, pod_cfg, "h", command=["sleep", "1000"])
    out = env.exec_sync(cid, ["cat", "/proc/sys/kernel/hostname"], timeout=10)
    assert out.exit_code == 0 and out.stdout.decode().strip() == os.uname().nodename, out
