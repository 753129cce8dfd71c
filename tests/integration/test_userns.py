"""User namespaces: a pod with userns_options mode POD runs its containers in a
user namespace with the kubelet's mappings (read back in /proc/self/uid_map),
with its root file system and volumes ID-mapped so that what the host's root
owns, the pod's root owns; what the pod writes is its own on the host. Status
reports the support per handler. Bad requests each get a clear error and
leave nothing behind. Every test ends with pod_helpers' leak checks."""

import os

import grpc
import pytest

import pod_helpers as ph
import security_helpers as sh
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401

pytestmark = pytest.mark.usefixtures("hugetlb_v1")

BASE = 3_000_000_000 // 65536 * 65536  # far from any real user's IDs
LENGTH = 65536


def userns_pod(env, base=BASE, handler="", **kw):
    a = env.api
    cfg = env.pod_config(**kw)
    u = cfg.linux.security_context.namespace_options.userns_options
    u.mode = a.POD
    u.uids.add(host_id=base, container_id=0, length=LENGTH)
    u.gids.add(host_id=base, container_id=0, length=LENGTH)
    return cfg


def userns_ctr(env, pcfg, name, command, **kw):
    c = env.ctr_config(name, command, **kw)
    c.linux.security_context.namespace_options.userns_options.CopyFrom(
        pcfg.linux.security_context.namespace_options.userns_options)
    return c


@pytest.fixture
def userns_env(pod_env_factory):
    return pod_env_factory(searchable=True)


def test_status_reports_user_namespaces(userns_env):
    env, a = userns_env, userns_env.api
    handlers = {h.name: h.features for h in env.rt.Status(a.StatusRequest()).runtime_handlers}
    assert set(handlers) == {"", "crun", "runc"}, handlers
    for name, f in handlers.items():
        assert f.user_namespaces, f"handler {name!r} reports no user namespaces on this host"
        assert f.recursive_read_only_mounts, name


@pytest.mark.parametrize("handler", ["", "runc"], ids=["crun", "runc"])
def test_userns_pod(userns_env, handler):
    env, a = userns_env, userns_env.api
    ref = sh.probe_image(env.rs)
    env.d.img().PullImage(a.PullImageRequest(image=a.ImageSpec(image=ref)), timeout=ph.PULL_TIMEOUT_S)
    vol = os.path.join(env.d.tmp, "vol")
    os.makedirs(vol)
    with open(os.path.join(vol, "hosts-1234"), "w") as f:
        f.write("x\n")
    os.chown(os.path.join(vol, "hosts-1234"), 1234, 1234)
    pcfg = userns_pod(env)
    pid = env.run_pod(pcfg, runtime_handler=handler)
    script = ("cat /proc/self/uid_map /proc/self/gid_map; id -u; "
              "stat -c 'root=%u:%g' /; stat -c 'busybox=%u:%g' /bin/busybox; "
              "stat -c 'volfile=%u:%g' /vol/hosts-1234; "
              "echo hi > /created && stat -c 'created=%u:%g' /created; "
              "echo vol > /vol/by-root && chown 1000:1000 /vol/by-root && echo chown=ok; "
              "grep -E '^(CapEff|Seccomp)' /proc/self/status; sysprobe mount userns")
    c = userns_ctr(env, pcfg, "inside", ["sh", "-c", script], image=ref,
                   mounts=[a.Mount(container_path="/vol", host_path=vol)])
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    st = env.wait_exited(cid)
    out = env.output(pcfg, c)
    assert st.exit_code == 0, (st, out)
    maps = [line.split() for line in out[:2]]
    assert maps == [["0", str(BASE), str(LENGTH)]] * 2, out
    fields = dict(x.split("=", 1) for x in out if "=" in x)
    assert out[2] == "0", out
    # What the host's root owns, the pod's root owns: the image's files,
    # and a volume's (a host file of uid 1234 shows as 1234).
    assert fields["root"] == "0:0" and fields["busybox"] == "0:0", out
    assert fields["volfile"] == "1234:1234", out
    assert fields["created"] == "0:0" and fields["chown"] == "ok", out
    # On the host, through the ID-mapped volume, the pod's IDs are the
    # ones it used; nothing gets the host's root from the pod.
    st_vol = os.stat(os.path.join(vol, "by-root"))
    assert (st_vol.st_uid, st_vol.st_gid) == (1000, 1000), st_vol
    # Root in its own namespace: capabilities there, not on the host.
    probe = sh.parse_probe([x for x in out if x.startswith(("mount=", "userns="))])
    assert probe["mount"] == "EPERM", ("no CAP_SYS_ADMIN by default", probe)

    # A running container's process is the pod's host IDs.
    c2 = userns_ctr(env, pcfg, "sleeper", ["sleep", "300"], image=ref)
    cid2 = env.create(pid, pcfg, c2)
    env.start(cid2)
    env.wait_state(cid2, a.CONTAINER_RUNNING)
    host_pid = ph.info_json(env.status_resp(cid2, verbose=True))["pid"]
    with open(f"/proc/{host_pid}/status") as f:
        uids = sh.status_fields(f.read().splitlines())["Uid"].split()
    assert uids[0] == str(BASE), uids
    r = env.exec_sync(cid2, ["sh", "-c", "id -u; cat /proc/self/uid_map"])
    assert r.exit_code == 0 and r.stdout.decode().split()[:4] == ["0", "0", str(BASE), str(LENGTH)], r


def test_userns_bad_requests(pod_env_factory):
    env = pod_env_factory(searchable=True)
    a = env.api

    def refused(cfg, code, *needles):
        got, details = ph.rpc_code(env.run_pod, cfg)
        assert got == code, (got, details)
        for n in needles:
            assert n in details, (n, details)

    before = len(env.list_pods())
    cfg = userns_pod(env)
    cfg.linux.security_context.namespace_options.userns_options.mode = a.CONTAINER
    refused(cfg, grpc.StatusCode.INVALID_ARGUMENT, "userns_options.mode", "POD and NODE")
    cfg = userns_pod(env)
    cfg.linux.security_context.namespace_options.userns_options.uids.add(host_id=BASE + 100, container_id=70000,
                                                                         length=10)
    refused(cfg, grpc.StatusCode.INVALID_ARGUMENT, "userns_options.uids[1] overlaps")
    cfg = userns_pod(env)
    del cfg.linux.security_context.namespace_options.userns_options.gids[:]
    refused(cfg, grpc.StatusCode.INVALID_ARGUMENT, "mode POD needs uids and gids")
    cfg = userns_pod(env, network=a.NODE)
    refused(cfg, grpc.StatusCode.INVALID_ARGUMENT, "cannot share the host's network namespace")
    cfg = userns_pod(env)
    u = cfg.linux.security_context.namespace_options.userns_options
    u.uids[0].container_id = 1
    refused(cfg, grpc.StatusCode.INVALID_ARGUMENT, "ID 0 is not mapped")
    assert len(env.list_pods()) == before
    assert os.listdir(os.path.join(env.d.run_root, "pods")) == []

    # A container that does not echo its pod's user namespace.
    ref = sh.probe_image(env.rs)
    env.d.img().PullImage(a.PullImageRequest(image=a.ImageSpec(image=ref)), timeout=ph.PULL_TIMEOUT_S)
    pcfg = userns_pod(env)
    pid = env.run_pod(pcfg)
    c = env.ctr_config("node", ["true"], image=ref)
    c.linux.security_context.namespace_options.userns_options.mode = a.NODE
    code, details = ph.rpc_code(env.create, pid, pcfg, c)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "the pod sandbox has" in details, (code, details)
    c = userns_ctr(env, pcfg, "other-map", ["true"], image=ref)
    c.linux.security_context.namespace_options.userns_options.uids[0].host_id = BASE + LENGTH
    code, details = ph.rpc_code(env.create, pid, pcfg, c)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "differ" in details, (code, details)
    # A volume whose file system cannot be ID-mapped (procfs): refused,
    # naming it, rather than shown to the pod as owned by nobody.
    c = userns_ctr(env, pcfg, "procvol", ["true"], image=ref,
                   mounts=[a.Mount(container_path="/p", host_path="/proc/sys")])
    code, details = ph.rpc_code(env.create, pid, pcfg, c)
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
    assert "mounts[0].host_path /proc/sys" in details and "cannot be ID-mapped" in details, details
    assert env.list_ctrs() == []
    assert env.container_leaks("", pcfg.linux.cgroup_parent) == []


def test_userns_needs_searchable_run_root(pod_env):
    env = pod_env  # its directory is 0700, as mkdtemp makes it
    cfg = userns_pod(env)
    code, details = ph.rpc_code(env.run_pod, cfg)
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
    assert "not searchable by others" in details and env.d.tmp in details, details
    assert env.list_pods() == []


def test_userns_pod_with_shared_pid_namespace_and_sysctls(userns_env):
    """The pod init and the pinned namespaces belong to the pod's user
    namespace: containers of a shared-PID pod mount their /proc and see each
    other, and the pod's namespaced sysctls are set from inside it."""
    env, a = userns_env, userns_env.api
    env.pull()
    pcfg = userns_pod(env, pid=a.POD, sysctls={"net.ipv4.ip_unprivileged_port_start": "0",
                                               "kernel.shmmni": "1000"})
    pid = env.run_pod(pcfg)
    c1 = userns_ctr(env, pcfg, "sleeper", ["sleep", "1013"])
    cid1 = env.create(pid, pcfg, c1)
    env.start(cid1)
    env.wait_state(cid1, a.CONTAINER_RUNNING)
    script = ("cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni; "
              "for f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' < $f; echo; done")
    c2 = userns_ctr(env, pcfg, "looker", ["sh", "-c", script])
    cid2 = env.create(pid, pcfg, c2)
    env.start(cid2)
    assert env.wait_exited(cid2).exit_code == 0
    out = env.output(pcfg, c2)
    assert out[:2] == ["0", "1000"], out
    assert "sleep 1013" in [x.strip() for x in out], out
