"""Mounts and namespaces, seen from inside the container: bind propagation
(private, host-to-container, bidirectional), read-only and recursive
read-only volumes, mount_options, sources that are or contain symbolic links
(resolved once on the host: a link swapped later changes nothing), image
volumes from a pulled image, devices with their permissions, and the PID
namespace modes NODE and TARGET. Every test ends with pod_helpers' leak
checks."""

import os
import subprocess

import grpc
import pytest

import pod_helpers as ph
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401

pytestmark = pytest.mark.usefixtures("hugetlb_v1")


def sh(*argv):
    subprocess.run(list(argv), check=True, capture_output=True)


@pytest.fixture
def host_mounts():
    """Mount points the test makes on the host, unmounted at the end."""
    made = []
    yield made
    for path in reversed(made):
        subprocess.run(["umount", "-l", path], capture_output=True)


def test_propagation(pod_env, host_mounts):
    env, a = pod_env, pod_env.api
    env.pull()
    base = os.path.join(env.d.tmp, "prop")
    dirs = {k: os.path.join(base, k) for k in ("private", "slave", "shared")}
    for d in dirs.values():
        os.makedirs(d)
        # A shared mount of its own, as the kubelet's directories are.
        sh("mount", "--bind", d, d)
        host_mounts.append(d)
        sh("mount", "--make-shared", d)
    pcfg = env.pod_config()
    pcfg.linux.security_context.privileged = True
    pid = env.run_pod(pcfg)
    c = env.ctr_config("prop", ["sh", "-c", "mkdir -p /mnt/shared/inner && "
                                            "mount -t tmpfs inner /mnt/shared/inner && "
                                            "echo ready && sleep 300"], mounts=[
        a.Mount(container_path="/mnt/private", host_path=dirs["private"]),
        a.Mount(container_path="/mnt/slave", host_path=dirs["slave"],
                propagation=a.PROPAGATION_HOST_TO_CONTAINER),
        a.Mount(container_path="/mnt/shared", host_path=dirs["shared"],
                propagation=a.PROPAGATION_BIDIRECTIONAL)])
    c.linux.security_context.privileged = True
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    env.wait_output(pcfg, c, "ready")
    # Host to container: a mount made on the host after the start.
    for k in ("private", "slave"):
        sub = os.path.join(dirs[k], "late")
        os.makedirs(sub)
        sh("mount", "-t", "tmpfs", "late-" + k, sub)
        host_mounts.append(sub)
    seen = env.exec_sync(cid, ["sh", "-c", "grep -o 'late-[a-z]*' /proc/self/mountinfo | sort"]).stdout.decode()
    assert seen.split() == ["late-slave"], seen
    # Container to host: only the bidirectional volume's.
    inner = os.path.join(dirs["shared"], "inner")
    assert any(m[0] == inner for m in ph.mountinfo()), "the container's mount did not reach the host"
    host_mounts.append(inner)
    env.stop(cid)
    env.remove(cid)


def test_read_only_volumes_and_options(pod_env, host_mounts):
    env, a = pod_env, pod_env.api
    env.pull()
    vol = os.path.join(env.d.tmp, "vol")
    os.makedirs(os.path.join(vol, "sub"))
    sh("mount", "-t", "tmpfs", "sub", os.path.join(vol, "sub"))
    host_mounts.append(os.path.join(vol, "sub"))
    with open(os.path.join(vol, "tool"), "w") as f:
        f.write("#!/bin/sh\necho ran\n")
    os.chmod(os.path.join(vol, "tool"), 0o755)
    pid, cfg = env.new_pod()
    feats = {h.name: h.features for h in env.rt.Status(a.StatusRequest()).runtime_handlers}
    assert feats[""].recursive_read_only_mounts, feats
    assert env.rt.Status(a.StatusRequest()).features.mount_options
    script = ("for d in ro rro rw; do "
              "if echo x > /v/$d/top 2>/dev/null; then echo $d-top=rw; else echo $d-top=ro; fi; "
              "if echo x > /v/$d/sub/f 2>/dev/null; then echo $d-sub=rw; else echo $d-sub=ro; fi; done; "
              "if /v/noexec/tool >/dev/null 2>&1; then echo exec=yes; else echo exec=no; fi")
    st, out = env.run_to_exit(pid, cfg, "ro", ["sh", "-c", script], mounts=[
        a.Mount(container_path="/v/ro", host_path=vol, readonly=True),
        a.Mount(container_path="/v/rro", host_path=vol, readonly=True, recursive_read_only=True),
        a.Mount(container_path="/v/rw", host_path=vol),
        a.Mount(container_path="/v/noexec", host_path=vol, readonly=True, mount_options=["noexec"])])
    got = dict(x.split("=") for x in out)
    # A plain read-only bind leaves submounts writable; rro does not.
    assert got == {"ro-top": "ro", "ro-sub": "rw", "rro-top": "ro", "rro-sub": "ro", "rw-top": "rw",
                   "rw-sub": "rw", "exec": "no"}, got
    c = env.ctr_config("bad-rro", ["true"], mounts=[
        a.Mount(container_path="/x", host_path=vol, recursive_read_only=True)])
    code, details = ph.rpc_code(env.create, pid, cfg, c)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "recursive_read_only needs readonly" in details


def test_symlink_sources_resolved_once_on_the_host(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    base = os.path.join(env.d.tmp, "links")
    real, other = os.path.join(base, "real"), os.path.join(base, "other")
    os.makedirs(real)
    os.makedirs(other)
    with open(os.path.join(real, "which"), "w") as f:
        f.write("real\n")
    with open(os.path.join(other, "which"), "w") as f:
        f.write("other\n")
    link = os.path.join(base, "link")        # the source is a link
    os.symlink("real", link)
    via = os.path.join(base, "via")          # the source's parent is a link
    os.symlink(base, via)
    pid, cfg = env.new_pod()
    c = env.ctr_config("links", ["sh", "-c", "echo ready; sleep 300"], mounts=[
        a.Mount(container_path="/a", host_path=link, readonly=True),
        a.Mount(container_path="/b", host_path=os.path.join(via, "real", "which"), readonly=True)])
    cid = env.create(pid, cfg, c)
    # Swapped between create and start: what was asked at create stays.
    os.unlink(link)
    os.symlink("other", link)
    env.start(cid)
    env.wait_output(cfg, c, "ready")
    out = env.exec_sync(cid, ["cat", "/a/which", "/b"]).stdout.decode().split()
    assert out == ["real", "real"], out
    # A source that does not exist is refused, naming it.
    c = env.ctr_config("missing", ["true"], mounts=[
        a.Mount(container_path="/m", host_path=os.path.join(base, "nope"))])
    code, details = ph.rpc_code(env.create, pid, cfg, c)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "mounts[0].host_path" in details \
        and "nope" in details, (code, details)


def test_image_volume(pod_env):
    env, a = pod_env, pod_env.api
    image_id = env.pull()
    pid, cfg = env.new_pod()
    script = ("cat /img/data/kept.txt /sub/kept.txt; ls /sub; "
              "if echo x > /img/new 2>/dev/null; then echo img=rw; else echo img=ro; fi")
    st, out = env.run_to_exit(pid, cfg, "imgvol", ["sh", "-c", script], mounts=[
        a.Mount(container_path="/img", image=a.ImageSpec(image=image_id)),
        a.Mount(container_path="/sub", image=a.ImageSpec(image=env.image()), image_sub_path="data")])
    assert st.exit_code == 0, (st, out)
    assert out[:2] == ["kept", "kept"] and "olddir" in out and out[-1] == "img=ro", out
    for mount, code, needle in (
            (a.Mount(container_path="/x", image=a.ImageSpec(image="registry.invalid/none:1")),
             grpc.StatusCode.NOT_FOUND, "mounts[0].image"),
            (a.Mount(container_path="/x", image=a.ImageSpec(image=image_id), image_sub_path="no/such"),
             grpc.StatusCode.INVALID_ARGUMENT, "mounts[0].image_sub_path no/such"),
            (a.Mount(container_path="/x", image=a.ImageSpec(image=image_id), image_sub_path="../etc"),
             grpc.StatusCode.INVALID_ARGUMENT, "mounts[0].image_sub_path")):
        c = env.ctr_config("bad-img", ["true"], mounts=[mount])
        code, details = ph.rpc_code(env.create, pid, cfg, c)
        assert code == code and needle in details, (code, details)
        assert all(x.metadata.name != "bad-img" for x in env.list_ctrs())
        assert env.container_leaks("", cfg.linux.cgroup_parent) == []


def test_devices_with_permissions(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    pid, cfg = env.new_pod()
    # Opening is what the device cgroup checks: "true <" opens for reading,
    # "true >" for writing (":" is special: a failed redirection would end sh).
    script = ("if true < /dev/crid-r; then echo read=ok; else echo read=no; fi; "
              "if true > /dev/crid-r; then echo write=ok; else echo write=no; fi; "
              "if true > /dev/crid-rw; then echo rw=ok; else echo rw=no; fi")
    c = env.ctr_config("dev", ["sh", "-c", script])
    c.devices.add(container_path="/dev/crid-r", host_path="/dev/loop-control", permissions="r")
    c.devices.add(container_path="/dev/crid-rw", host_path="/dev/fuse", permissions="rw")
    cid = env.create(pid, cfg, c)
    env.start(cid)
    env.wait_exited(cid)
    assert env.output(cfg, c) == ["read=ok", "write=no", "rw=ok"]
    for dev, needle in ((dict(container_path="/dev/x", host_path="/dev/null", permissions="rwx"),
                         "devices[0].permissions"),
                        (dict(container_path="/dev/x", host_path="/etc/hostname"), "is not a device")):
        c = env.ctr_config("bad-dev", ["true"])
        c.devices.add(**dev)
        code, details = ph.rpc_code(env.create, pid, cfg, c)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and needle in details, (code, details)


def test_pid_namespace_node_and_target(pod_env):
    env, a = pod_env, pod_env.api
    env.pull()
    # NODE: the host's processes, this test's among them.
    pid, cfg = env.new_pod(pid=a.NODE)
    st, out = env.run_to_exit(pid, cfg, "node", ["sh", "-c", f"test -d /proc/{os.getpid()} && echo host"])
    assert out == ["host"], out
    # TARGET: the target container's namespace, its process visible.
    pid2, cfg2 = env.new_pod(pid=a.CONTAINER)
    t, tcfg = env.run(pid2, cfg2, "target", ["sh", "-c", "echo up; exec sleep 1011"])
    env.wait_output(cfg2, tcfg, "up")
    c = env.ctr_config("debug", ["sh", "-c", "echo pid1=$(tr '\\000' ' ' < /proc/1/cmdline)"])
    c.linux.security_context.namespace_options.pid = a.TARGET
    c.linux.security_context.namespace_options.target_id = t
    cid = env.create(pid2, cfg2, c)
    env.start(cid)
    env.wait_exited(cid)
    env.wait_output(cfg2, c, "pid1=sleep 1011")
    # A target that is not in the pod, or not there at all.
    for target in ("0" * 64, env.ctr_ids[0]):
        c = env.ctr_config("bad-target", ["true"])
        c.linux.security_context.namespace_options.pid = a.TARGET
        c.linux.security_context.namespace_options.target_id = target
        code, details = ph.rpc_code(env.create, pid2, cfg2, c)
        assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION), (code, details)
        assert "target_id" in details, details


def test_volume_with_its_own_id_mappings(pod_env):
    """Mount.uidMappings/gidMappings: the volume ID-mapped as asked (disk ID
    container_id shows as host_id), outside any user namespace."""
    env, a = pod_env, pod_env.api
    env.pull()
    vol = os.path.join(env.d.tmp, "mapped")
    os.makedirs(vol)
    with open(os.path.join(vol, "f"), "w") as f:
        f.write("x\n")
    os.chown(os.path.join(vol, "f"), 0, 0)
    pid, cfg = env.new_pod()
    m = a.Mount(container_path="/m", host_path=vol, readonly=True)
    m.uidMappings.add(container_id=0, host_id=4321, length=1)
    m.gidMappings.add(container_id=0, host_id=4322, length=1)
    st, out = env.run_to_exit(pid, cfg, "mapped", ["sh", "-c", "stat -c %u:%g /m/f"], mounts=[m])
    assert out == ["4321:4322"], (st, out)
    del m.gidMappings[:]
    c = env.ctr_config("half", ["true"], mounts=[m])
    code, details = ph.rpc_code(env.create, pid, cfg, c)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "uidMappings and gidMappings go together" in details
