"""Resources, read where they take effect: the container's own cgroup files
from inside it (CPU shares, quota and period, cpuset, memory, hugepages),
/proc/self/oom_score_adj, the values ContainerStatus reports and their
update in place, unified (cgroup v2) keys on this cgroup v1 host, and the
pod's cgroup given the pod's resources and resized by
UpdatePodSandboxResources. Bad values each get a clear error and leave
nothing behind. Every test ends with pod_helpers' leak checks."""

import os

import grpc
import pytest

import pod_helpers as ph
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401

pytestmark = pytest.mark.usefixtures("hugetlb_v1")

MiB = 1024 * 1024
CGROUP2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
READ_CGROUPS = ("cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                "/sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpuset/cpuset.cpus "
                "/sys/fs/cgroup/memory/memory.limit_in_bytes "
                "/sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes /proc/1/oom_score_adj")

needs_v1 = pytest.mark.skipif(CGROUP2, reason="reads cgroup v1 files")


def online_cpus():
    with open("/sys/devices/system/cpu/online") as f:
        return f.read().strip()


def last_cpu():
    return int(online_cpus().replace("-", ",").split(",")[-1])


def res_of(env, **kw):
    r = env.api.LinuxContainerResources(**kw)
    return r


@needs_v1
@pytest.mark.parametrize("handler", ["", "runc"], ids=["crun", "runc"])
def test_container_cgroup_limits(pod_env, handler):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod(runtime_handler=handler)
    cpu = str(last_cpu())
    c = env.ctr_config("limits", ["sh", "-c", "while true; do sleep 1; done"])
    r = c.linux.resources
    r.cpu_shares, r.cpu_quota, r.cpu_period = 256, 25000, 50000
    r.cpuset_cpus = cpu
    r.memory_limit_in_bytes = 96 * MiB
    r.oom_score_adj = 500
    r.hugepage_limits.add(page_size="2MB", limit=0)
    cid = env.create(pid, cfg, c)
    env.start(cid)
    out = env.exec_sync(cid, ["sh", "-c", READ_CGROUPS]).stdout.decode().split()
    assert out == ["256", "25000", "50000", cpu, str(96 * MiB), "0", "500"], out
    got = env.status(cid).resources.linux
    assert (got.cpu_shares, got.cpu_quota, got.cpu_period, got.cpuset_cpus, got.memory_limit_in_bytes,
            got.oom_score_adj) == (256, 25000, 50000, cpu, 96 * MiB, 500), got
    assert [(h.page_size, h.limit) for h in got.hugepage_limits] == [("2MB", 0)], got

    # Updated in place: the new values in the files and in the status,
    # the ones not sent kept.
    req = a.UpdateContainerResourcesRequest(container_id=cid)
    req.linux.cpu_shares = 512
    req.linux.memory_limit_in_bytes = 128 * MiB
    env.rt.UpdateContainerResources(req, timeout=30)
    out = env.exec_sync(cid, ["sh", "-c", READ_CGROUPS]).stdout.decode().split()
    assert out[0] == "512" and out[1] == "25000" and out[4] == str(128 * MiB), out
    got = env.status(cid).resources.linux
    assert (got.cpu_shares, got.cpu_quota, got.memory_limit_in_bytes) == (512, 25000, 128 * MiB), got

    # A bad update changes nothing.
    req = a.UpdateContainerResourcesRequest(container_id=cid)
    req.linux.cpuset_cpus = "0-4095"
    code, details = ph.rpc_code(env.rt.UpdateContainerResources, req, timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cpuset_cpus" in details, (code, details)
    assert env.status(cid).resources.linux.cpuset_cpus == cpu


@needs_v1
def test_oom_score_adj_and_unified(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    # A guaranteed pod's -997 needs CAP_SYS_RESOURCE: crid applies the
    # lowest it can and reports that.
    with open("/proc/self/status") as f:
        held = int(f.read().split("CapPrm:")[1].split()[0], 16)
    floor = -997 if held & (1 << 24) else 0
    c = env.ctr_config("oom", ["sh", "-c", "cat /proc/self/oom_score_adj /sys/fs/cgroup/cpu/cpu.shares "
                                           "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
    c.linux.resources.oom_score_adj = -997
    # cgroup v2 files in v1 terms: cpu.weight 100 is shares 2+99*262142/9999.
    c.linux.resources.unified["cpu.weight"] = "100"
    c.linux.resources.unified["memory.max"] = str(80 * MiB)
    cid = env.create(pid, cfg, c)
    env.start(cid)
    env.wait_exited(cid)
    out = env.output(cfg, c)
    assert out == [str(floor), str(2 + 99 * 262142 // 9999), str(80 * MiB)], out
    got = env.status(cid).resources.linux
    assert got.oom_score_adj == floor and got.memory_limit_in_bytes == 80 * MiB, got


def test_bad_resources_leave_nothing(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    swap = os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or CGROUP2
    cases = [
        (dict(cpuset_cpus=f"{last_cpu() + 1}"), grpc.StatusCode.INVALID_ARGUMENT,
         ["linux.resources.cpuset_cpus", f"CPU {last_cpu() + 1} is not online", online_cpus()]),
        (dict(cpuset_cpus="1-0"), grpc.StatusCode.INVALID_ARGUMENT, ["cpuset_cpus", "not a list"]),
        (dict(cpuset_mems="7"), grpc.StatusCode.INVALID_ARGUMENT, ["cpuset_mems", "memory node 7"]),
        (dict(oom_score_adj=1001), grpc.StatusCode.INVALID_ARGUMENT, ["oom_score_adj", "-1000..1000"]),
        (dict(cpu_quota=-5), grpc.StatusCode.INVALID_ARGUMENT, ["cpu_quota"]),
        (dict(unified={"cgroup.procs": "1"}), grpc.StatusCode.INVALID_ARGUMENT, ["unified", "cgroup.procs"]),
        (dict(unified={"cpu.weight": "0"}), grpc.StatusCode.INVALID_ARGUMENT
         if not CGROUP2 else grpc.StatusCode.UNKNOWN, ["unified[cpu.weight]"]),
    ]
    if not CGROUP2:
        cases.append((dict(unified={"memory.high": "1000000"}), grpc.StatusCode.FAILED_PRECONDITION,
                      ["unified[memory.high]", "v1"]))
    if not swap:
        cases.append((dict(memory_limit_in_bytes=64 * MiB, memory_swap_limit_in_bytes=64 * MiB),
                      grpc.StatusCode.FAILED_PRECONDITION, ["memory_swap_limit_in_bytes", "swap"]))
    for i, (fields, code, needles) in enumerate(cases):
        if code == grpc.StatusCode.UNKNOWN:
            continue  # cgroup v2 hosts check it in the kernel
        c = env.ctr_config(f"bad{i}", ["true"])
        c.linux.resources.CopyFrom(a.LinuxContainerResources(**fields))
        got, details = ph.rpc_code(env.create, pid, cfg, c)
        assert got == code, (fields, got, details)
        for n in needles:
            assert n in details, (fields, n, details)
        assert env.list_ctrs() == []
        assert env.container_leaks("", cfg.linux.cgroup_parent) == [], fields


def pod_cgroup(parent, controller, file):
    path = f"/sys/fs/cgroup/{controller}{parent}/{file}"
    with open(path) as f:
        return f.read().strip()


@needs_v1
def test_pod_resources(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    cfg = env.pod_config()
    cfg.linux.resources.cpu_shares = 768
    cfg.linux.resources.cpu_quota = 150000
    cfg.linux.resources.cpu_period = 100000
    cfg.linux.resources.memory_limit_in_bytes = 300 * MiB
    cfg.linux.overhead.memory_limit_in_bytes = 20 * MiB
    pid = env.run_pod(cfg)
    parent = cfg.linux.cgroup_parent
    assert pod_cgroup(parent, "cpu", "cpu.shares") == "768"
    assert pod_cgroup(parent, "cpu", "cpu.cfs_quota_us") == "150000"
    assert pod_cgroup(parent, "memory", "memory.limit_in_bytes") == str(300 * MiB)
    # The containers' cgroups are below it, and held by its limits.
    st, out = env.run_to_exit(pid, cfg, "inside", ["cat", "/proc/self/cgroup"])
    assert any(line.endswith(parent + "/" + env.ctr_ids[-1]) for line in out), out

    req = a.UpdatePodSandboxResourcesRequest(pod_sandbox_id=pid)
    req.resources.cpu_shares = 1024
    req.resources.memory_limit_in_bytes = 400 * MiB
    env.rt.UpdatePodSandboxResources(req, timeout=30)
    assert pod_cgroup(parent, "cpu", "cpu.shares") == "1024"
    assert pod_cgroup(parent, "memory", "memory.limit_in_bytes") == str(400 * MiB)
    info = ph.info_json(env.pod_status(pid, verbose=True))
    assert info["resources"]["cpu"]["shares"] == 1024, info

    # Bad values: refused, nothing changed.
    req = a.UpdatePodSandboxResourcesRequest(pod_sandbox_id=pid)
    req.resources.cpuset_cpus = "0-4095"
    code, details = ph.rpc_code(env.rt.UpdatePodSandboxResources, req, timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cpuset_cpus" in details, (code, details)
    code, _ = ph.rpc_code(env.rt.UpdatePodSandboxResources,
                          a.UpdatePodSandboxResourcesRequest(pod_sandbox_id="nosuchpod"), timeout=30)
    assert code == grpc.StatusCode.NOT_FOUND
    bad = env.pod_config()
    bad.linux.resources.cpuset_mems = "9"
    code, details = ph.rpc_code(env.run_pod, bad)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cpuset_mems" in details, (code, details)
    assert ph.cgroup_dirs_for(bad.linux.cgroup_parent) == []
