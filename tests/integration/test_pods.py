"""Pod sandboxes: RunPodSandbox / PodSandboxStatus / ListPodSandbox /
StopPodSandbox / RemovePodSandbox, with no pause image (namespaces pinned by
crid), and what a container sees of its pod: network namespace, hostname,
DNS, /etc/hosts, /dev/shm, sysctls, the shared PID namespace.

Every test ends with pod_helpers' leak checks (mounts, processes, cgroups,
files named after a pod or container)."""

import os
import time

import grpc
import pytest

import pod_helpers as ph
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401

pytestmark = pytest.mark.usefixtures("hugetlb_v1")


def host_sysctl(path):
    with open(path) as f:
        return f.read().strip()


def net_dev_names(lines):
    """Interface names from /proc/net/dev lines (the two header lines skipped)."""
    names = []
    for line in lines:
        if ":" in line and "|" not in line:
            names.append(line.split(":", 1)[0].strip())
    return sorted(names)


def host_net_dev_names():
    with open("/proc/net/dev") as f:
        return net_dev_names(f.read().splitlines())


def section(lines, start, end):
    """The lines strictly between marker lines start and end."""
    assert start in lines and end in lines, f"markers {start}/{end} missing from {lines}"
    return lines[lines.index(start) + 1:lines.index(end)]


def hex64_paths(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            if any(ph.HEX64.match(part) for part in n.replace(".", "-").split("-")) \
                    or ph.HEX64.match(n):
                out.append(os.path.join(dirpath, n))
    return out


def runtime_state_kind(cid, roots):
    """'runc' or 'crun' from the OCI runtime's state directory named after
    the container (runc keeps state.json, crun a status file), else None."""
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            if os.path.basename(dirpath) == cid:
                if "state.json" in filenames:
                    return "runc"
                if "status" in filenames:
                    return "crun"
    return None


def nsfs_mounts_under(root):
    return [m for m in ph.mounts_under(root) if m[1] == "nsfs"]


# ---------------------------------------------------------------------------
# Run, status, list, stop, remove


@pytest.mark.parametrize("handler", ["", "runc"], ids=["default-crun", "runc"])
def test_pod_lifecycle(pod_env, handler):
    env, a = pod_env, pod_env.api
    env.pull()
    cfg = env.pod_config(labels={"app": "lifecycle", "tier": "t1"},
                         annotations={"note": "hello", "example.com/key": "v=1"})
    t0 = time.time_ns()
    pid = env.run_pod(cfg, handler)
    t1 = time.time_ns()
    assert ph.HEX64.match(pid), f"pod id {pid!r} is not 64 lowercase hex characters"

    st = env.pod_status(pid).status
    assert st.id == pid
    assert st.metadata == cfg.metadata, st.metadata
    assert st.state == a.SANDBOX_READY
    assert t0 - 1_000_000_000 <= st.created_at <= t1 + 1_000_000_000, \
        f"created_at {st.created_at} not in ns between {t0} and {t1}"
    assert dict(st.labels) == dict(cfg.labels)
    assert dict(st.annotations) == dict(cfg.annotations)
    assert st.runtime_handler == handler
    opts = st.linux.namespaces.options
    assert (opts.network, opts.pid, opts.ipc) == (a.POD, a.CONTAINER, a.POD), opts

    items = env.list_pods()
    assert [p.id for p in items] == [pid]
    p = items[0]
    assert p.metadata == cfg.metadata
    assert p.state == a.SANDBOX_READY
    assert p.created_at == st.created_at
    assert dict(p.labels) == dict(cfg.labels)
    assert dict(p.annotations) == dict(cfg.annotations)
    assert p.runtime_handler == handler

    # A container of the pod runs under the handler's OCI runtime, in the
    # pod's cgroup_parent.
    cid, ccfg = env.run(pid, cfg, "main", ["sh", "-c", "echo started; sleep 1000"])
    env.wait_output(cfg, ccfg, "started")
    kind = runtime_state_kind(cid, [env.d.run_root, env.d.state_root, "/run/crun", "/run/runc"])
    assert kind == ("runc" if handler == "runc" else "crun"), \
        f"handler {handler!r}: container state kept by {kind!r}"
    # (busybox sh execs its last command: the container's process is `sleep 1000`.)
    procs = ph.wait_procs_with_argv(["sleep", "1000"], cfg.linux.cgroup_parent)
    assert procs, (f"no container process in cgroup {cfg.linux.cgroup_parent}; "
                   f"processes there: {ph.procs_in_cgroup(cfg.linux.cgroup_parent)}; "
                   f"`sleep 1000` processes: {ph.procs_with_argv(['sleep', '1000'])}")

    env.stop_pod(pid)
    assert env.pod_status(pid).status.state == a.SANDBOX_NOTREADY
    assert env.status(cid).state == a.CONTAINER_EXITED
    assert [(q.id, q.state) for q in env.list_pods()] == [(pid, a.SANDBOX_NOTREADY)]
    env.remove_pod(pid)
    assert env.list_pods() == []
    assert env.list_ctrs() == []
    code, details = ph.rpc_code(env.pod_status, pid)
    assert code == grpc.StatusCode.NOT_FOUND, (code, details)
    assert env.wait_no_leaks() == {}


def test_list_pod_filters(pod_env):
    env, a = pod_env, pod_env.api
    p1 = env.run_pod(env.pod_config(labels={"app": "a", "tier": "front"}))
    p2 = env.run_pod(env.pod_config(labels={"app": "b", "tier": "front"}))
    p3 = env.run_pod(env.pod_config(labels={"app": "a", "tier": "back"}))
    env.stop_pod(p3)

    def ids(**kw):
        return sorted(p.id for p in env.list_pods(**kw))

    assert ids() == sorted([p1, p2, p3])
    assert ids(id=p1) == [p1]
    assert ids(id=p2[:12]) == [p2], "a unique id prefix filters like the id"
    assert ids(id="f" * 64) == []
    assert ids(state=a.SANDBOX_READY) == sorted([p1, p2])
    assert ids(state=a.SANDBOX_NOTREADY) == [p3]
    assert ids(labels={"tier": "front"}) == sorted([p1, p2])
    assert ids(labels={"app": "a"}) == sorted([p1, p3])
    assert ids(labels={"app": "a", "tier": "front"}) == [p1]
    assert ids(labels={"app": "c"}) == []
    assert ids(labels={"nokey": "a"}) == []
    assert ids(state=a.SANDBOX_READY, labels={"app": "a"}) == [p1]
    assert ids(id=p3, state=a.SANDBOX_READY) == []
    assert ids(id=p3, state=a.SANDBOX_NOTREADY, labels={"tier": "back"}) == [p3]


def test_id_prefix_accepted_everywhere(pod_env):
    env, a = pod_env, pod_env.api
    pid = env.run_pod()
    other = env.run_pod()
    prefix = pid[:12]
    assert not other.startswith(prefix)
    assert env.pod_status(prefix).status.id == pid
    env.stop_pod(prefix)
    assert env.pod_status(pid).status.state == a.SANDBOX_NOTREADY
    assert env.pod_status(other).status.state == a.SANDBOX_READY
    env.remove_pod(prefix)
    assert [p.id for p in env.list_pods()] == [other]


def test_unknown_pod_ids(pod_env):
    """Status of an unknown pod is NOT_FOUND; Stop and Remove of an unknown
    pod succeed (CRI: both are idempotent; containerd and CRI-O answer OK,
    as the critest idempotence cases require)."""
    env = pod_env
    unknown = "0123456789abcdef" * 4
    code, details = ph.rpc_code(env.pod_status, unknown)
    assert code == grpc.StatusCode.NOT_FOUND, (code, details)
    code, details = ph.rpc_code(env.stop_pod, unknown)
    assert code is None, f"StopPodSandbox of an unknown pod: {code} {details}"
    code, details = ph.rpc_code(env.remove_pod, unknown)
    assert code is None, f"RemovePodSandbox of an unknown pod: {code} {details}"


def test_unknown_runtime_handler_leaves_nothing(pod_env):
    env = pod_env
    cfg = env.pod_config()
    with pytest.raises(grpc.RpcError) as e:
        env.run_pod(cfg, runtime_handler="no-such-handler")
    assert e.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), \
        (e.value.code(), e.value.details())
    assert "no-such-handler" in (e.value.details() or ""), e.value.details()
    assert env.list_pods() == []
    assert ph.mounts_under(env.d.run_root, env.d.state_root) == []
    assert hex64_paths(env.d.run_root) == [], "a pod's files were left behind"
    assert ph.cgroup_dirs_for(cfg.linux.cgroup_parent) == []
    assert ph.procs_mentioning(env.d.run_root, exclude={env.d.pid}) == []


@pytest.mark.parametrize("parent", ["/kubepods/../../escape", "kubepods/./x", "/kube pods", "/a\nb"],
                         ids=["dotdot", "dot", "space", "newline"])
def test_cgroup_parent_outside_the_hierarchy_refused(pod_env, parent):
    # Refused even without pod resources: the containers' cgroups would go there.
    env = pod_env
    cfg = env.pod_config()
    cfg.linux.cgroup_parent = parent
    with pytest.raises(grpc.RpcError) as e:
        env.run_pod(cfg)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.value.code(), e.value.details())
    assert "linux.cgroup_parent" in (e.value.details() or ""), e.value.details()
    assert env.list_pods() == []
    assert hex64_paths(env.d.run_root) == [], "a pod's files were left behind"


def test_same_metadata_already_exists(pod_env):
    env, a = pod_env, pod_env.api
    cfg = env.pod_config()
    first = env.run_pod(cfg)
    with pytest.raises(grpc.RpcError) as e:
        env.run_pod(cfg)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS, (e.value.code(), e.value.details())
    assert first in (e.value.details() or ""), \
        f"the error should name the pod holding the name: {e.value.details()!r}"
    assert [p.id for p in env.list_pods()] == [first]

    again = a.PodSandboxConfig()
    again.CopyFrom(cfg)
    again.metadata.attempt = cfg.metadata.attempt + 1
    second = env.run_pod(again)
    assert second != first
    assert sorted((p.id, p.state) for p in env.list_pods()) == sorted(
        [(first, a.SANDBOX_READY), (second, a.SANDBOX_READY)])
    assert env.pod_status(second).status.metadata.attempt == 1


def test_stop_pod_stops_every_container(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    c1, _ = env.run(pid, cfg, "sleeper", ["sleep", "1001"])
    c2, c2cfg = env.run(pid, cfg, "stubborn",
                        ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"])
    c3, _ = env.run(pid, cfg, "done", ["true"])
    env.wait_output(cfg, c2cfg, "ready")
    env.wait_exited(c3)
    for c in (c1, c2):
        assert env.status(c).state == a.CONTAINER_RUNNING

    env.stop_pod(pid)
    st = env.pod_status(pid).status
    assert st.state == a.SANDBOX_NOTREADY
    for c in (c1, c2, c3):
        s = env.status(c)
        assert s.state == a.CONTAINER_EXITED, f"{c[:12]} after StopPodSandbox:\n{s}"
        assert s.finished_at > 0
    assert ph.procs_in_cgroup(cfg.linux.cgroup_parent) == []
    assert sorted(c.id for c in env.list_ctrs(pod=pid)) == sorted([c1, c2, c3])

    env.stop_pod(pid)  # again: fine
    assert env.pod_status(pid).status.state == a.SANDBOX_NOTREADY

    env.remove_pod(pid)
    assert env.list_ctrs() == [], "RemovePodSandbox must remove the pod's containers"
    for c in (c1, c2, c3):
        code, details = ph.rpc_code(env.status, c)
        assert code == grpc.StatusCode.NOT_FOUND, (c[:12], code, details)
    env.remove_pod(pid)  # again: fine
    env.stop_pod(pid)  # and stopping what is gone too
    assert env.list_pods() == []


def test_remove_running_pod_leaves_nothing(pod_env):
    """RemovePodSandbox without StopPodSandbox first: the running container
    is removed by force; then no mount, process, shim, cgroup or run
    directory of the pod is left."""
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    cid, ccfg = env.run(pid, cfg, "main", ["sh", "-c", "echo up; sleep 1002"])
    env.wait_output(cfg, ccfg, "up")
    assert nsfs_mounts_under(env.d.run_root), "the pod's namespaces are not pinned under the run root"
    assert ph.procs_in_cgroup(cfg.linux.cgroup_parent)

    env.remove_pod(pid)
    assert env.list_pods() == [] and env.list_ctrs() == []
    found = env.wait_no_leaks()
    assert found == {}, f"left behind by RemovePodSandbox: {found}"
    assert ph.procs_with_argv(["sleep", "1002"]) == []


# ---------------------------------------------------------------------------
# No pause image; the pod's network namespace


def test_no_image_pulled_and_netns_pinned(pod_env):
    env = pod_env
    pid = env.run_pod()
    assert env.list_images() == [], "RunPodSandbox pulled an image (there is no pause image)"
    pins = nsfs_mounts_under(env.d.run_root)
    assert pins, (f"no namespace pinned under {env.d.run_root} while the pod exists; "
                  f"mounts there: {ph.mounts_under(env.d.run_root)}")
    env.stop_pod(pid)
    env.remove_pod(pid)
    assert ph.mounts_under(env.d.tmp) == []


def test_pod_network_has_only_loopback_up(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    script = ("echo BEGIN; cat /proc/net/dev; echo END; "
              "echo flags=$(cat /sys/class/net/lo/flags); echo done; sleep 1003")
    cid, ccfg = env.run(pid, cfg, "net", ["sh", "-c", script])
    env.wait_output(cfg, ccfg, "done")
    out = env.output(cfg, ccfg)
    assert net_dev_names(section(out, "BEGIN", "END")) == ["lo"], out
    flags = [ln for ln in out if ln.startswith("flags=")]
    assert flags and flags[0] != "flags=", out
    assert int(flags[0].split("=", 1)[1], 16) & 0x1, f"lo is not up: {flags[0]}"

    # The container's network namespace is the one pinned under the run root.
    procs = ph.wait_procs_with_argv(["sleep", "1003"], cfg.linux.cgroup_parent)
    assert len(procs) == 1, (procs, ph.procs_with_argv(["sleep", "1003"]))
    proc = procs[0]
    ns_ino = os.stat(f"/proc/{proc.pid}/ns/net").st_ino
    assert ns_ino != os.stat("/proc/self/ns/net").st_ino, "the container shares the host's netns"
    pinned = {os.stat(m[0]).st_ino for m in nsfs_mounts_under(env.d.run_root)}
    assert ns_ino in pinned, "the container's netns is not the pod's pinned one"


def test_host_network(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod(network=a.NODE)
    st, out = env.run_to_exit(pid, cfg, "net", ["sh", "-c", "echo BEGIN; cat /proc/net/dev; echo END"])
    assert st.exit_code == 0, st
    assert net_dev_names(section(out, "BEGIN", "END")) == host_net_dev_names(), out
    assert env.pod_status(pid).status.linux.namespaces.options.network == a.NODE


# ---------------------------------------------------------------------------
# What a container sees of its pod


def test_hostname(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod(hostname="crid-it-host")
    st, out = env.run_to_exit(pid, cfg, "h", ["sh", "-c", "hostname; cat /proc/sys/kernel/hostname"])
    assert st.exit_code == 0, st
    assert out == ["crid-it-host", "crid-it-host"], out
    assert os.uname().nodename != "crid-it-host"


def test_dns_config(pod_env):
    env = pod_env
    env.pull()
    dns = {"servers": ["10.96.0.10", "10.96.0.11"],
           "searches": ["ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"],
           "options": ["ndots:5", "timeout:2"]}
    pid, cfg = env.new_pod(dns=dns)
    st, out = env.run_to_exit(pid, cfg, "dns", ["cat", "/etc/resolv.conf"])
    assert st.exit_code == 0, st
    servers, searches, options = [], [], []
    for line in out:
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "nameserver":
            servers += parts[1:]
        elif parts[0] == "search":
            searches += parts[1:]
        elif parts[0] == "options":
            options += parts[1:]
    assert servers == dns["servers"], out
    assert searches == dns["searches"], out
    assert options == dns["options"], out


def test_etc_hosts_has_localhost(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod(hostname="crid-it-hosts")
    st, out = env.run_to_exit(pid, cfg, "hosts", ["cat", "/etc/hosts"])
    assert st.exit_code == 0, st
    assert any(ln.split()[:1] == ["127.0.0.1"] and "localhost" in ln.split()[1:]
               for ln in out if ln.strip()), out


def test_dev_shm_tmpfs_shared_by_the_pod(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    writer, wcfg = env.run(pid, cfg, "writer", [
        "sh", "-c", "echo shared-data > /dev/shm/crid-it && echo written; sleep 1004"])
    env.wait_output(cfg, wcfg, "written")
    st, out = env.run_to_exit(pid, cfg, "reader", [
        "sh", "-c", "cat /dev/shm/crid-it; grep ' /dev/shm ' /proc/mounts"])
    assert st.exit_code == 0, (st, out)
    assert out[0] == "shared-data", out
    mounts = [ln.split() for ln in out[1:]]
    assert mounts and mounts[-1][1] == "/dev/shm" and mounts[-1][2] == "tmpfs", out
    # Not the host's /dev/shm.
    assert not os.path.exists("/dev/shm/crid-it")


def test_pod_sysctls(pod_env):
    env = pod_env
    env.pull()
    key = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
    host_before = host_sysctl(key)
    assert host_before != "0", "precondition: the host's value differs from the pod's"
    pid, cfg = env.new_pod(sysctls={"net.ipv4.ip_unprivileged_port_start": "0"})
    st, out = env.run_to_exit(pid, cfg, "sysctl", ["cat", key])
    assert st.exit_code == 0, st
    assert out == ["0"], out
    assert host_sysctl(key) == host_before, "the pod's sysctl changed the host's value"


PS_SCRIPT = ("echo \"pid1=$(tr '\\000' ' ' < /proc/1/cmdline)\"; "
             "for d in /proc/[0-9]*; do "
             "echo \"proc=$(tr '\\000' ' ' < $d/cmdline 2>/dev/null)\"; done")


def _procs_seen(out):
    pid1 = [ln[len("pid1="):].strip() for ln in out if ln.startswith("pid1=")]
    procs = [ln[len("proc="):].strip() for ln in out if ln.startswith("proc=")]
    assert pid1, out
    return pid1[0], procs


def test_shared_pid_namespace(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod(pid=a.POD)
    assert env.pod_status(pid).status.linux.namespaces.options.pid == a.POD
    c1, _ = env.run(pid, cfg, "sleeper", ["sleep", "1005"])
    env.wait_state(c1, a.CONTAINER_RUNNING)
    # The other container sees the first one's process...
    st, out = env.run_to_exit(pid, cfg, "ps", ["sh", "-c", PS_SCRIPT])
    assert st.exit_code == 0, (st, out)
    pid1, procs = _procs_seen(out)
    assert "sleep 1005" in procs, f"container 2 does not see container 1's process: {procs}"
    # ...and PID 1 is neither container's command but the pod's init.
    assert pid1 and pid1 != "sleep 1005" and not pid1.startswith("sh -c"), \
        f"PID 1 in a shared-PID pod is {pid1!r}"
    # And the first sees the second's (a third lists from inside the first's view).
    c2, c2cfg = env.run(pid, cfg, "sleeper2", ["sh", "-c", "echo up; sleep 1006"])
    env.wait_output(cfg, c2cfg, "up")
    st, out = env.run_to_exit(pid, cfg, "ps2", ["sh", "-c", PS_SCRIPT])
    _, procs = _procs_seen(out)
    assert "sleep 1005" in procs and "sleep 1006" in procs, procs


def test_container_pid_namespace_is_private(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod(pid=a.CONTAINER)
    c1, _ = env.run(pid, cfg, "sleeper", ["sleep", "1007"])
    env.wait_state(c1, a.CONTAINER_RUNNING)
    st, out = env.run_to_exit(pid, cfg, "ps", ["sh", "-c", PS_SCRIPT])
    pid1, procs = _procs_seen(out)
    assert pid1.startswith("sh -c"), f"PID 1 is {pid1!r}, not the container's own command"
    assert "sleep 1007" not in procs, procs
