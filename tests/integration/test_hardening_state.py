"""Losing state: crid must never kill or remove a running container, its
mounts or an image's layers because crid.db does not mention them. A
database deleted, emptied or missing its WAL while crid is down is noticed
at start-up (error level): pods and containers still on the machine are
adopted again from the record copies next to them, layers are kept. A
database deleted while crid runs is noticed and written back from crid's
open connection.

Real crun, real kernel; the PodEnv leak checks run at the end of each test."""

import os
import time

import pytest

import pod_helpers as ph
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401
from test_go_client import criclient  # noqa: F401
from test_hardening_images import run_hostile
from test_images import layer_dirs

pytestmark = pytest.mark.usefixtures("hugetlb_v1")

DB_FILES = ("crid.db", "crid.db-wal", "crid.db-shm")


def sleeper_proc(env, cfg, tag):
    procs = [p for p in ph.procs_in_cgroup(cfg.linux.cgroup_parent)
             if p.argv[:2] == ["sleep", tag]]
    assert len(procs) == 1, procs
    return procs[0]


def setup_node(env):
    """A pod with a running container and an exited one; returns what the
    checks need."""
    env.pull()
    pid, cfg = env.new_pod()
    running, rcfg = env.run(pid, cfg, "running", ["sleep", "2024"])
    done, _ = env.run(pid, cfg, "done", ["sh", "-c", "echo bye; exit 3"])
    env.wait_state(running, env.api.CONTAINER_RUNNING)
    env.wait_exited(done)
    return pid, cfg, running, rcfg, done


def lose_database(d, how):
    for name in DB_FILES:
        path = os.path.join(d.state_root, name)
        if how == "deleted" and os.path.exists(path):
            os.unlink(path)
        elif how == "emptied":
            if name == "crid.db":
                open(path, "w").close()
            elif os.path.exists(path):
                os.unlink(path)
        elif how == "wal-lost" and name != "crid.db" and os.path.exists(path):
            os.unlink(path)


@pytest.mark.parametrize("how", ["deleted", "emptied", "wal-lost"])
def test_lost_database_keeps_what_runs(pod_env, how, criclient):  # noqa: F811
    env, a = pod_env, pod_env.api
    pid, cfg, running, rcfg, done = setup_node(env)
    proc = sleeper_proc(env, cfg, "2024")
    layers = layer_dirs(env.d)
    assert layers
    env.kill_daemon()
    lose_database(env.d, how)
    env.start_daemon()

    # Nothing that ran was killed, unmounted or removed ...
    assert ph.pid_alive(proc.pid), "a running container was killed because crid.db lost it"
    assert layer_dirs(env.d) == layers, "layers were removed because crid.db lost them"
    rootfs = os.path.join(env.d.run_root, "containers", running, "rootfs")
    assert os.path.ismount(rootfs)
    # ... it is served again ...
    assert [(p.id, p.state) for p in env.list_pods()] == [(pid, a.SANDBOX_READY)]
    assert env.status(running).state == a.CONTAINER_RUNNING
    st = env.status(done)
    assert (st.state, st.exit_code) == (a.CONTAINER_EXITED, 3), st
    assert env.exec_sync(running, ["echo", "alive"]).stdout == b"alive\n"
    # The kubelet-style Go client reads the adopted objects too.
    rc, out = run_hostile(criclient, env.d.socket_path, "v1", "decode")
    assert rc == 0, out
    # ... and said loudly.
    err = env.d.stderr()
    if how != "wal-lost":
        assert "level=error" in err and "adopted again" in err, err[-3000:]
    # The image's layers are adopted by a new pull, not fetched again.
    env.pull()
    assert layer_dirs(env.d) == layers
    # And everything can be ended the normal way (leak checks follow).
    env.stop(running, timeout=1)
    assert not ph.pid_alive(proc.pid)


def test_database_deleted_while_running_is_written_back(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    first, _ = env.new_pod()
    for name in DB_FILES:
        path = os.path.join(env.d.state_root, name)
        if os.path.exists(path):
            os.unlink(path)
    env.rt.Status(a.StatusRequest())
    err = env.d.wait_for_stderr(lambda t: "crid.db written back" in t, timeout=5)
    assert "deleted or replaced while crid ran" in err, err[-2000:]
    assert os.path.exists(os.path.join(env.d.state_root, "crid.db"))
    second, _ = env.new_pod()
    env.kill_daemon()
    env.start_daemon()
    assert sorted(p.id for p in env.list_pods()) == sorted([first, second])
    assert [i.id for i in env.list_images()], "the image record was lost"
    assert "adopted again" not in env.d.stderr()


def test_interrupted_creates_are_still_cleaned(pod_env):
    """Objects never recorded (no record copy) are what an interrupted
    create left: start-up still removes them."""
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    env.kill_daemon()
    ghost_pod = os.path.join(env.d.run_root, "pods", "a" * 64)
    ghost_upper = os.path.join(env.d.state_root, "containers", "b" * 64, "upper")
    os.makedirs(ghost_pod)
    os.makedirs(ghost_upper)
    env.start_daemon()
    assert not os.path.exists(ghost_pod)
    assert not os.path.exists(os.path.dirname(ghost_upper))
    assert [p.id for p in env.list_pods()] == [pid]
    assert "adopted again" not in env.d.stderr()
