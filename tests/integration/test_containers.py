"""Containers in pods: CreateContainer / StartContainer / StopContainer /
RemoveContainer / ContainerStatus / ListContainers / ExecSync /
ReopenContainerLog, the CRI log format, what the image and the config say
about the process (command, args, env, user, working dir, mounts,
read-only rootfs), OOM kills, and crid restarts (crash, and a reboot that
wiped the run root).

Every test ends with pod_helpers' leak checks (mounts, processes, cgroups,
files named after a pod or container)."""

import json
import os
import shutil
import time

import grpc
import pytest

import image_builder as ib
import pod_helpers as ph
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401
from registry_fixtures import push, separate_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("hugetlb_v1")

S = 1_000_000_000  # ns


def repo_digest(env, repo="busybox"):
    """What ContainerStatus.image_ref is, as with containerd and CRI-O:
    repository@sha256:<manifest digest>."""
    return f"{env.rs.plain.host}/{repo}@{env.rs.expected(repo)['manifest_digest']}"


# ---------------------------------------------------------------------------
# Lifecycle, status, logs


@pytest.mark.parametrize("handler", ["", "runc"], ids=["default-crun", "runc"])
def test_container_lifecycle(pod_env, handler):
    env, a = pod_env, pod_env.api
    image_id = env.pull()
    pid, cfg = env.new_pod(runtime_handler=handler)
    ccfg = env.ctr_config("main", ["sh", "-c", "echo out; echo err >&2; sleep 1; exit 3"],
                          labels={"role": "main"}, annotations={"note": "x=y"})
    t0 = time.time_ns()
    cid = env.create(pid, cfg, ccfg)
    t1 = time.time_ns()
    assert ph.HEX64.match(cid), f"container id {cid!r} is not 64 lowercase hex characters"

    st = env.status(cid)
    assert st.id == cid
    assert st.state == a.CONTAINER_CREATED, st
    assert st.metadata == ccfg.metadata
    assert t0 - S <= st.created_at <= t1 + S, (st.created_at, t0, t1)
    assert st.started_at == 0 and st.finished_at == 0, st
    assert dict(st.labels) == dict(ccfg.labels)
    assert dict(st.annotations) == dict(ccfg.annotations)
    assert st.image.image == env.image(), st.image
    assert st.image_ref == repo_digest(env), st.image_ref
    assert st.image_id == image_id == env.rs.expected("busybox")["image_id"], st
    assert st.log_path == env.log_path(cfg, ccfg), \
        "log_path is the full path (log_directory joined with the container's log_path)"

    env.start(cid)
    st = env.status(cid)
    assert st.state == a.CONTAINER_RUNNING, st
    assert st.started_at >= st.created_at > 0

    st = env.wait_exited(cid, 30)
    assert st.exit_code == 3, st
    assert st.reason == "Error", st
    assert 0 < st.created_at <= st.started_at <= st.finished_at, st
    assert st.finished_at - st.started_at >= 0.9 * S, st
    assert st.image.image == env.image() and st.image_ref == repo_digest(env), st

    recs = env.records(cfg, ccfg)  # every line in CRI format, or AssertionError
    assert [(r.stream, r.tag, r.content) for r in recs if r.stream == "stdout"] == \
        [("stdout", "F", "out")], recs
    assert [(r.stream, r.tag, r.content) for r in recs if r.stream == "stderr"] == \
        [("stderr", "F", "err")], recs
    for r in recs:
        assert st.started_at - S <= r.ts_ns <= st.finished_at + S, (r, st)

    (c,) = env.list_ctrs()
    assert (c.id, c.pod_sandbox_id, c.state) == (cid, pid, a.CONTAINER_EXITED)
    assert c.metadata == ccfg.metadata and c.created_at == st.created_at
    assert c.image.image == env.image() and c.image_ref == repo_digest(env), c
    assert c.image_id == image_id, c
    assert dict(c.labels) == dict(ccfg.labels) and dict(c.annotations) == dict(ccfg.annotations)

    env.remove(cid)
    assert env.list_ctrs() == []
    code, details = ph.rpc_code(env.status, cid)
    assert code == grpc.StatusCode.NOT_FOUND, (code, details)
    assert env.container_leaks(cid, cfg.linux.cgroup_parent) == []


def test_handler_named_by_command_name(pod_env_factory):
    # Runtimes are spawned without a PATH search: crid resolves a bare name.
    env = pod_env_factory(dropins={"50-bare.yaml": "runtimes:\n  bare-runc:\n    path: runc\n"})
    env.pull()
    pid, cfg = env.new_pod(runtime_handler="bare-runc")
    cid, _ = env.run(pid, cfg, "bare", ["sh", "-c", "echo up; sleep 1000"])
    r = env.exec_sync(cid, ["echo", "exec"], timeout=20)
    assert (r.stdout, r.exit_code) == (b"exec\n", 0), r
    env.stop(cid)
    env.remove(cid)
    status = env.rt.Status(env.api.StatusRequest(verbose=True))
    runtimes = json.loads(status.info["config"])["runtimes"]
    assert runtimes["bare-runc"]["path"] == shutil.which("runc"), runtimes["bare-runc"]


def test_image_names_of_a_container_made_by_id(pod_env):
    """The kubelet creates containers by image ID (what PullImage answered);
    status shows a name and the repo digest, as containerd and CRI-O do,
    and keeps them across a restart of crid."""
    env = pod_env
    image_id = env.pull()
    pid, cfg = env.new_pod()
    by_id = env.create(pid, cfg, env.ctr_config("byid", ["sleep", "60"], image=image_id))
    short = env.create(pid, cfg, env.ctr_config("short", ["sleep", "60"], image=image_id[7:19]))
    told = env.ctr_config("told", ["sleep", "60"], image=image_id)
    told.image.user_specified_image = "busybox-as-written"
    told_id = env.create(pid, cfg, told)
    by_digest = env.create(pid, cfg, env.ctr_config("bydigest", ["sleep", "60"], image=repo_digest(env)))

    def check():
        want = {by_id: env.image(), short: env.image(), told_id: "busybox-as-written",
                by_digest: repo_digest(env)}
        for cid, shown in want.items():
            st = env.status(cid)
            assert st.image.image == shown, (cid[:12], st.image)
            assert st.image_ref == repo_digest(env), st
            assert st.image_id == image_id, st
        assert env.status(told_id).image.user_specified_image == "busybox-as-written"
        listed = {c.id: c for c in env.list_ctrs()}
        for cid, shown in want.items():
            assert listed[cid].image.image == shown and listed[cid].image_ref == repo_digest(env), listed[cid]

    check()
    env.kill_daemon()
    env.start_daemon()
    check()
    for cid in (by_id, short, told_id, by_digest):
        env.remove(cid)


def test_exit_zero_reason_completed(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    st, out = env.run_to_exit(pid, cfg, "ok", ["sh", "-c", "echo fine"])
    assert (st.exit_code, st.reason) == (0, "Completed"), st
    assert out == ["fine"]


def test_long_line_split_into_partial_records(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    n = 40000
    cid, ccfg = env.run(pid, cfg, "long", [
        "sh", "-c", f"head -c {n} /dev/zero | tr '\\000' a; echo; echo short"])
    st = env.wait_exited(cid)
    assert st.exit_code == 0, st
    recs = [r for r in env.records(cfg, ccfg) if r.stream == "stdout"]
    assert ph.joined_lines(recs) == ["a" * n, "short"], [(r.tag, len(r.content)) for r in recs]
    long_recs = recs[:-1]
    assert [r.tag for r in long_recs][-1] == "F"
    assert all(r.tag == "P" for r in long_recs[:-1]), [(r.tag, len(r.content)) for r in recs]
    assert len(long_recs) >= 3, "a 40000-byte line is at least two P records and one F"
    assert max(len(r.content) for r in long_recs) <= 16 * 1024, \
        [(r.tag, len(r.content)) for r in recs]
    assert (recs[-1].tag, recs[-1].content) == ("F", "short")


# ---------------------------------------------------------------------------
# The process: env, command/args, working dir, user, mounts, rootfs


def test_env_from_image_and_config(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    image_path = ib.DEFAULT_PATH_ENV
    st, out = env.run_to_exit(pid, cfg, "plain", ["env"])
    assert st.exit_code == 0, st
    assert [ln for ln in out if ln.startswith("PATH=")] == [image_path], out

    st, out = env.run_to_exit(pid, cfg, "custom", ["env"],
                              envs=[("PATH", "/bin:/crid/custom"), ("CRID_NEW", "new value")])
    assert st.exit_code == 0, st
    assert [ln for ln in out if ln.startswith("PATH=")] == ["PATH=/bin:/crid/custom"], out
    assert "CRID_NEW=new value" in out, out


@pytest.fixture
def entry_env(pod_env_factory, separate_registry):  # noqa: F811
    """A PodEnv whose crid knows a registry holding `entry`: busybox with
    Entrypoint ["/bin/echo", "ep"], Cmd ["c1", "c2"], WorkingDir /data."""
    reg = separate_registry(repos=())
    img = ib.Image(list(ib.busybox_layers("gzip")), entrypoint=["/bin/echo", "ep"],
                   cmd=["c1", "c2"], env=[ib.DEFAULT_PATH_ENV], working_dir="/data",
                   name="entry")
    push(reg, "entry", "latest", img)
    env = pod_env_factory(extra_registries=[reg.host])
    env.entry_image = env.image("entry", reg.host)
    env.pull("entry", reg.host)
    env.pull()
    return env


@pytest.mark.parametrize("command,args,want", [
    ([], [], "ep c1 c2"),
    ([], ["a1", "a2"], "ep a1 a2"),
    (["/bin/echo", "cmd"], [], "cmd"),
    (["/bin/echo", "cmd"], ["a1"], "cmd a1"),
], ids=["image-defaults", "args-replace-cmd", "command-replaces-entrypoint-and-cmd",
        "command-and-args"])
def test_command_and_args(entry_env, command, args, want):
    env = entry_env
    pid, cfg = env.new_pod()
    st, out = env.run_to_exit(pid, cfg, "cmd", command, args=args, image=env.entry_image)
    assert st.exit_code == 0, st
    assert out == [want], out


def test_args_without_entrypoint_replace_cmd(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    st, out = env.run_to_exit(pid, cfg, "args", None, args=["echo", "from", "args"])
    assert st.exit_code == 0, st
    assert out == ["from args"], out


def test_working_dir(entry_env):
    env = entry_env
    pid, cfg = env.new_pod()
    st, out = env.run_to_exit(pid, cfg, "img", ["sh", "-c", "pwd"], image=env.entry_image)
    assert out == ["/data"], ("the image's WorkingDir", out)
    st, out = env.run_to_exit(pid, cfg, "cfg", ["sh", "-c", "pwd"], image=env.entry_image,
                              working_dir="/home/app")
    assert out == ["/home/app"], ("the config's working_dir wins", out)
    st, out = env.run_to_exit(pid, cfg, "none", ["sh", "-c", "pwd"])
    assert out == ["/"], ("no WorkingDir anywhere", out)


@pytest.mark.parametrize("repo", ["nonroot", "nonroot-named"])
def test_user_from_image(pod_env, repo):
    env = pod_env
    env.pull(repo)
    pid, cfg = env.new_pod()
    st, out = env.run_to_exit(pid, cfg, "id", ["sh", "-c", "id -u; id -g"], repo=repo)
    assert st.exit_code == 0, st
    assert out[0] == "1000", (repo, out)
    if repo == "nonroot-named":
        assert out[1] == "1000", ("app's group from /etc/passwd", out)


@pytest.mark.parametrize("repo", ["busybox", "nonroot"])
def test_run_as_user(pod_env, repo):
    """security_context.run_as_user sets the uid, over the image's User."""
    env = pod_env
    env.pull(repo)
    pid, cfg = env.new_pod()
    st, out = env.run_to_exit(pid, cfg, "as", ["id", "-u"], repo=repo, run_as_user=1234)
    assert st.exit_code == 0, st
    assert out == ["1234"], (repo, out)


def test_run_as_group_needs_a_user(pod_env):
    """run_as_group alone is refused (containerd and CRI-O do the same);
    with run_as_user or run_as_username it sets the gid."""
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    alone = env.ctr_config("grp", ["id", "-g"])
    alone.linux.security_context.run_as_group.value = 2345
    code, details = ph.rpc_code(env.create, pid, cfg, alone)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert "run_as_group" in details and "run_as_user" in details, details
    assert env.list_ctrs() == []

    with_user = env.ctr_config("grp2", ["sh", "-c", "id -u; id -g"], run_as_user=1234)
    with_user.linux.security_context.run_as_group.value = 2345
    cid = env.create(pid, cfg, with_user)
    env.start(cid)
    assert env.wait_exited(cid).exit_code == 0
    assert env.output(cfg, with_user) == ["1234", "2345"]

    named = env.ctr_config("grp3", ["sh", "-c", "id -u; id -g"])
    named.linux.security_context.run_as_username = "app"
    named.linux.security_context.run_as_group.value = 3456
    cid = env.create(pid, cfg, named)
    env.start(cid)
    assert env.wait_exited(cid).exit_code == 0
    assert env.output(cfg, named) == ["1000", "3456"]


def test_bind_mounts(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    ro = os.path.join(env.d.tmp, "host-ro")
    rw = os.path.join(env.d.tmp, "host-rw")
    os.makedirs(ro)
    os.makedirs(rw)
    with open(os.path.join(ro, "hello.txt"), "w") as f:
        f.write("hi from host\n")
    pid, cfg = env.new_pod()
    script = ("cat /mnt/ro/hello.txt; "
              "if echo x > /mnt/ro/new 2>/dev/null; then echo RO-WRITE-OK; else echo RO-WRITE-FAILED; fi; "
              "echo from-ctr > /mnt/rw/out && echo RW-WRITE-OK")
    st, out = env.run_to_exit(pid, cfg, "mounts", ["sh", "-c", script], mounts=[
        a.Mount(container_path="/mnt/ro", host_path=ro, readonly=True),
        a.Mount(container_path="/mnt/rw", host_path=rw)])
    assert out == ["hi from host", "RO-WRITE-FAILED", "RW-WRITE-OK"], (out, st)
    assert os.listdir(ro) == ["hello.txt"]
    with open(os.path.join(rw, "out")) as f:
        assert f.read() == "from-ctr\n"


def test_readonly_rootfs(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    script = "if echo x > /crid-file 2>/dev/null; then echo ROOT-RW; else echo ROOT-RO; fi"
    st, out = env.run_to_exit(pid, cfg, "ro", ["sh", "-c", script], readonly_rootfs=True)
    assert out == ["ROOT-RO"], (out, st)
    st, out = env.run_to_exit(pid, cfg, "rw", ["sh", "-c", script])
    assert out == ["ROOT-RW"], (out, st)


# ---------------------------------------------------------------------------
# Stop, remove


def test_stop_kills_after_timeout(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    cid, ccfg = env.run(pid, cfg, "stubborn",
                        ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"])
    env.wait_output(cfg, ccfg, "ready")
    t0 = time.monotonic()
    env.stop(cid, timeout=2)
    took = time.monotonic() - t0
    assert 1.8 <= took <= 5.0, f"StopContainer(timeout=2) of a SIGTERM-ignoring process took {took:.2f}s"
    st = env.status(cid)
    assert st.state == a.CONTAINER_EXITED, st
    assert st.exit_code == 137, st
    assert ph.procs_in_cgroup(cfg.linux.cgroup_parent) == []
    t0 = time.monotonic()
    env.stop(cid, timeout=2)  # again: fine, and at once
    assert time.monotonic() - t0 < 1.5
    assert env.status(cid).exit_code == 137
    env.remove(cid)
    env.remove(cid)  # again: fine
    assert env.list_ctrs() == []
    assert env.container_leaks(cid, cfg.linux.cgroup_parent) == []


def test_remove_running_container(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    cid, _ = env.run(pid, cfg, "runner", ["sleep", "1008"])
    env.wait_state(cid, env.api.CONTAINER_RUNNING)
    # "start" returns once the runtime let the process go; its execve of
    # sleep may come a moment later on a loaded machine.
    deadline = time.monotonic() + 10
    while not ph.procs_with_argv(["sleep", "1008"], cfg.linux.cgroup_parent):
        assert time.monotonic() < deadline, "the container's process never ran"
        time.sleep(0.05)
    env.remove(cid)
    assert env.list_ctrs() == []
    code, details = ph.rpc_code(env.status, cid)
    assert code == grpc.StatusCode.NOT_FOUND, (code, details)
    assert env.container_leaks(cid, cfg.linux.cgroup_parent) == []
    env.remove(cid)  # again: fine


def test_unknown_container_ids(pod_env):
    """Status of an unknown container is NOT_FOUND; Stop and Remove succeed
    (CRI: idempotent; containerd and CRI-O answer OK, as critest requires)."""
    env = pod_env
    unknown = "fedcba9876543210" * 4
    code, details = ph.rpc_code(env.status, unknown)
    assert code == grpc.StatusCode.NOT_FOUND, (code, details)
    code, details = ph.rpc_code(env.stop, unknown, 1)
    assert code is None, f"StopContainer of an unknown container: {code} {details}"
    code, details = ph.rpc_code(env.remove, unknown)
    assert code is None, f"RemoveContainer of an unknown container: {code} {details}"


def test_same_name_already_exists(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    other, other_cfg = env.new_pod()
    first = env.create(pid, cfg, env.ctr_config("dup", ["true"]))
    with pytest.raises(grpc.RpcError) as e:
        env.create(pid, cfg, env.ctr_config("dup", ["true"]))
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS, (e.value.code(), e.value.details())
    assert [c.id for c in env.list_ctrs()] == [first]
    second = env.create(pid, cfg, env.ctr_config("dup", ["true"], attempt=1))
    third = env.create(other, other_cfg, env.ctr_config("dup", ["true"]))
    assert len({first, second, third}) == 3
    assert sorted(c.id for c in env.list_ctrs()) == sorted([first, second, third])


# ---------------------------------------------------------------------------
# ExecSync, ReopenContainerLog


def test_exec_sync(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    cid, _ = env.run(pid, cfg, "target", ["sleep", "1009"])
    env.wait_state(cid, env.api.CONTAINER_RUNNING)
    r = env.exec_sync(cid, ["echo", "hello"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"hello\n", b"", 0), r
    r = env.exec_sync(cid, ["sh", "-c", "echo e >&2; exit 7"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"", b"e\n", 7), r
    r = env.exec_sync(cid[:12], ["sh", "-c", "echo $((6 * 7))"])
    assert (r.stdout, r.exit_code) == (b"42\n", 0), "ExecSync by id prefix"


def test_exec_sync_timeout(pod_env):
    """containerd answers an ExecSync that outlives its timeout with
    DEADLINE_EXCEEDED ("timeout 1s exceeded") after killing the process;
    the kubelet turns that status into a probe timeout."""
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    cid, _ = env.run(pid, cfg, "target", ["sleep", "1010"])
    env.wait_state(cid, env.api.CONTAINER_RUNNING)
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        env.exec_sync(cid, ["sleep", "10"], timeout=1, call_timeout=30)
    took = time.monotonic() - t0
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (e.value.code(), e.value.details())
    assert took <= 3.5, f"ExecSync(timeout=1) returned after {took:.2f}s"
    assert ph.procs_with_argv(["sleep", "10"], cfg.linux.cgroup_parent) == [], \
        "the timed-out exec's process is still running after ExecSync answered"
    assert env.status(cid).state == env.api.CONTAINER_RUNNING
    assert env.exec_sync(cid, ["echo", "still"]).stdout == b"still\n"


def _live_pids(cgroup_parent):
    return {p.pid for p in ph.procs_in_cgroup(cgroup_parent) if p.state != "Z"}


@pytest.mark.parametrize("handler", ["", "runc"], ids=["default-crun", "runc"])
def test_exec_sync_timeout_kills_the_whole_tree(pod_env, handler):
    """Background children, and an orphan whose parent already exited, are
    gone as well by the time ExecSync answers DEADLINE_EXCEEDED."""
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod(runtime_handler=handler)
    cid, _ = env.run(pid, cfg, "target", ["sleep", "1010"])
    env.wait_state(cid, env.api.CONTAINER_RUNNING)
    before = _live_pids(cfg.linux.cgroup_parent)
    assert len(before) == 1, before
    with pytest.raises(grpc.RpcError) as e:
        env.exec_sync(cid, ["sh", "-c", "(sleep 4323 &); sleep 4321 & sleep 4322 & sleep 4320"],
                      timeout=1, call_timeout=30)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
    left = _live_pids(cfg.linux.cgroup_parent) - before
    assert not left, "processes of the timed-out exec still run: " + "; ".join(
        f"{p.pid} {' '.join(p.argv)}" for p in ph.procs_in_cgroup(cfg.linux.cgroup_parent) if p.pid in left)
    assert env.status(cid).state == env.api.CONTAINER_RUNNING


def test_exec_sync_answers_when_the_command_exits(pod_env):
    """A command that leaves a background child holding its stdout is
    answered when the command itself exits, not at the timeout."""
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    cid, _ = env.run(pid, cfg, "target", ["sleep", "1010"])
    env.wait_state(cid, env.api.CONTAINER_RUNNING)
    t0 = time.monotonic()
    r = env.exec_sync(cid, ["sh", "-c", "sleep 300 & echo started"], timeout=20)
    took = time.monotonic() - t0
    assert (r.stdout, r.exit_code) == (b"started\n", 0), r
    assert took < 5, f"ExecSync answered after {took:.1f}s"


@pytest.mark.parametrize("deep_run_root", [False, True], ids=["run_root", "deep_run_root"])
def test_reopen_container_log(pod_env_factory, deep_run_root):
    # A deep run root: the shim's control socket is out of sun_path's reach
    # by its absolute path.
    env = pod_env_factory(deep_run_root=deep_run_root)
    env.pull()
    pid, cfg = env.new_pod()
    cid, ccfg = env.run(pid, cfg, "logger",
                        ["sh", "-c", "echo before; sleep 3; echo after; sleep 1011"])
    env.wait_output(cfg, ccfg, "before")
    path = env.log_path(cfg, ccfg)
    os.rename(path, path + ".1")
    env.rt.ReopenContainerLog(env.api.ReopenContainerLogRequest(container_id=cid))
    assert os.path.exists(path), "ReopenContainerLog returned before the new log file exists"
    env.wait_log(path, lambda rs: "after" in ph.joined_lines(rs), timeout=10)
    assert ph.joined_lines(ph.read_log(path)) == ["after"]
    assert ph.joined_lines(ph.read_log(path + ".1")) == ["before"]


# ---------------------------------------------------------------------------
# Failures: a missing binary, OOM


def test_missing_binary_fails_clearly(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    ccfg = env.ctr_config("missing", ["/no/such/binary"])
    cid = None
    try:
        cid = env.create(pid, cfg, ccfg)
    except grpc.RpcError as e:
        assert "/no/such/binary" in (e.details() or ""), ("CreateContainer", e.details())
        assert env.list_ctrs() == []
    if cid is not None:
        try:
            env.start(cid)
        except grpc.RpcError as e:
            assert "/no/such/binary" in (e.details() or ""), ("StartContainer", e.details())
            st = env.status(cid)
            assert st.state in (a.CONTAINER_CREATED, a.CONTAINER_EXITED), st
        else:
            st = env.wait_exited(cid)
            assert st.exit_code in (127, 128) and st.message, st
        env.remove(cid)
    assert env.container_leaks(cid, cfg.linux.cgroup_parent) == []
    # The pod still works.
    st, out = env.run_to_exit(pid, cfg, "after", ["echo", "ok"])
    assert out == ["ok"]


def test_oom_killed(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    st, out = env.run_to_exit(
        pid, cfg, "hog",
        ["sh", "-c", "x=$(head -c 50000000 /dev/zero | tr '\\000' x); echo survived"],
        memory_limit=20 * 1024 * 1024, timeout=60)
    assert "survived" not in out
    assert st.reason == "OOMKilled", st
    assert st.exit_code == 137, st


# ---------------------------------------------------------------------------
# List and status


def test_list_container_filters(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pa, ca = env.new_pod()
    pb, cb = env.new_pod()
    c1, _ = env.run(pa, ca, "c1", ["sleep", "1012"], labels={"app": "one", "tier": "x"})
    c2, _ = env.run(pa, ca, "c2", ["true"], labels={"app": "two", "tier": "x"})
    c3, _ = env.run(pb, cb, "c3", ["sleep", "1013"], labels={"app": "one"})
    env.wait_exited(c2)
    env.wait_state(c1, a.CONTAINER_RUNNING)
    env.wait_state(c3, a.CONTAINER_RUNNING)

    def ids(**kw):
        return sorted(c.id for c in env.list_ctrs(**kw))

    assert ids() == sorted([c1, c2, c3])
    assert ids(id=c1) == [c1]
    assert ids(id=c3[:12]) == [c3], "a unique id prefix filters like the id"
    assert ids(id="f" * 64) == []
    assert ids(state=a.CONTAINER_RUNNING) == sorted([c1, c3])
    assert ids(state=a.CONTAINER_EXITED) == [c2]
    assert ids(state=a.CONTAINER_CREATED) == []
    assert ids(pod=pa) == sorted([c1, c2])
    assert ids(pod=pb[:12]) == [c3], "a unique pod id prefix filters like the id"
    assert ids(labels={"tier": "x"}) == sorted([c1, c2])
    assert ids(labels={"app": "one", "tier": "x"}) == [c1]
    assert ids(labels={"app": "three"}) == []
    assert ids(pod=pb, labels={"app": "one"}) == [c3]
    assert ids(pod=pa, state=a.CONTAINER_RUNNING) == [c1]
    assert ids(id=c1, pod=pb) == []


def test_container_id_prefix(pod_env):
    """Every container-id-taking RPC accepts a unique prefix."""
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    cid, _ = env.run(pid, cfg, "p", ["sleep", "1016"])
    other, _ = env.run(pid, cfg, "q", ["sleep", "1017"])
    assert not other.startswith(cid[:12])
    env.wait_state(cid, a.CONTAINER_RUNNING)
    assert env.status_resp(cid[:12]).status.id == cid
    assert env.exec_sync(cid[:12], ["echo", "x"]).stdout == b"x\n"
    env.stop(cid[:12], timeout=0)
    assert env.status(cid).state == a.CONTAINER_EXITED
    assert env.status(other).state == a.CONTAINER_RUNNING
    env.remove(cid[:12])
    assert [c.id for c in env.list_ctrs()] == [other]


def test_container_status_verbose(pod_env):
    """verbose: info["info"] is JSON with the pid and the OCI spec under
    "runtimeSpec" (the key containerd and CRI-O use, which crictl inspect
    shows)."""
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    cid, _ = env.run(pid, cfg, "v", ["sleep", "1014"])
    env.wait_state(cid, a.CONTAINER_RUNNING)
    resp = env.status_resp(cid, verbose=True)
    assert resp.status.id == cid
    info = ph.info_json(resp)
    assert isinstance(info.get("pid"), int) and info["pid"] > 0, info
    (proc,) = ph.procs_with_argv(["sleep", "1014"], cfg.linux.cgroup_parent)
    assert info["pid"] == proc.pid, (info["pid"], proc)
    spec = info.get("runtimeSpec")
    assert isinstance(spec, dict) and spec.get("ociVersion"), \
        f"no OCI spec under info['runtimeSpec'] (containerd's and CRI-O's key): {sorted(info)}"
    assert spec["process"]["args"] == ["sleep", "1014"], spec["process"]


# ---------------------------------------------------------------------------
# crid restarts


def test_restart_recovers_running_and_exited(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    ticker, tcfg = env.run(pid, cfg, "ticker", [
        "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done"])
    env.wait_output(cfg, tcfg, "tick 1")
    (tproc,) = [p for p in ph.procs_in_cgroup(cfg.linux.cgroup_parent)
                if p.argv[:2] == ["sh", "-c"] and "tick" in p.argv[2]]
    exiter, _ = env.run(pid, cfg, "exiter", ["sh", "-c", "sleep 3; exit 5"])
    started = env.status(exiter).started_at

    t_kill = time.time_ns()
    env.kill_daemon()
    time.sleep(5)
    t_up = time.time_ns()
    env.start_daemon()

    pods = env.list_pods()
    assert [(p.id, p.state) for p in pods] == [(pid, a.SANDBOX_READY)], pods
    st = env.status(ticker)
    assert st.state == a.CONTAINER_RUNNING, st
    assert ph.pid_alive(tproc.pid), "the running container's process died with crid"
    last = max(int(ln.split()[1]) for ln in env.output(cfg, tcfg) if ln.startswith("tick "))
    env.wait_output(cfg, tcfg, f"tick {last + 1}")

    st = env.status(exiter)
    assert st.state == a.CONTAINER_EXITED, st
    assert st.exit_code == 5, st
    assert st.reason == "Error", st
    assert t_kill <= st.finished_at <= t_up, \
        f"finished_at {st.finished_at} not while crid was down ({t_kill}..{t_up})"
    assert st.finished_at - started >= 2.5 * S, (started, st.finished_at)

    # crid still controls what it found.
    env.stop(ticker, timeout=1)
    assert env.status(ticker).state == a.CONTAINER_EXITED
    assert not ph.pid_alive(tproc.pid)


def test_restart_after_run_root_wiped(pod_env):
    """A reboot: crid dies, every process goes, mounts and cgroups go, the
    run root (tmpfs) is empty; crid starts again on the same state root."""
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    running, _ = env.run(pid, cfg, "running", ["sleep", "1015"])
    done, _ = env.run(pid, cfg, "done", ["true"])
    env.wait_state(running, a.CONTAINER_RUNNING)
    env.wait_exited(done)

    env.kill_daemon()
    left = env.force_cleanup()  # kills by pid, unmounts, removes the cgroups
    assert left == [], left
    shutil.rmtree(env.d.run_root)
    env.start_daemon()

    assert [(p.id, p.state) for p in env.list_pods()] == [(pid, a.SANDBOX_NOTREADY)]
    assert env.pod_status(pid).status.state == a.SANDBOX_NOTREADY
    for c in (running, done):
        st = env.status(c)
        assert st.state == a.CONTAINER_EXITED, (c[:12], st)
    assert env.status(done).exit_code == 0
    env.stop_pod(pid)
    env.remove_pod(pid)
    assert env.list_pods() == [] and env.list_ctrs() == []
    assert env.wait_no_leaks() == {}
