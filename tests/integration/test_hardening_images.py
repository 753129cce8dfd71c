"""Hardening against hostile registries and images: images of many layers
run (the overlay's options fit one page), a decompression bomb stops at the
state file system's free-space reserve and leaves nothing behind, and the
layer unpacker dies with crid.

Real registries (registry_fixtures), real crun, real kernel."""

import gzip
import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
import zlib

import grpc
import pytest

import image_builder as ib
import pod_helpers as ph
from conftest import load_api
from netfault import FaultProxy
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401
from registry_fixtures import push, separate_registry  # noqa: F401
from test_go_client import criclient  # noqa: F401
from test_images import layer_dirs, tmp_entries

pytestmark = pytest.mark.usefixtures("hugetlb_v1")


def many_layer_image(n):
    """busybox's binary layer under n - 1 layers of one small file each."""
    layers = [ib.busybox_layers("gzip")[0]]
    for i in range(1, n):
        layers.append(ib.Layer([ib.Dir("/l"), ib.File(f"/l/{i:03d}", f"{i}\n")], "gzip",
                               comment=f"layer {i}"))
    return ib.Image(layers, cmd=["/bin/sh"], env=[ib.DEFAULT_PATH_ENV], name=f"layers-{n}")


def test_image_of_64_layers_runs(pod_env):
    env = pod_env
    push(env.rs.plain, "layers64", "latest", many_layer_image(64))
    env.pull("layers64")
    pid, cfg = env.new_pod()
    cid, ccfg = env.run(pid, cfg, "many", ["sh", "-c", "ls /l | wc -l; cat /l/063"],
                        repo="layers64")
    st = env.wait_exited(cid)
    assert st.exit_code == 0, st
    assert [x.strip() for x in env.output(cfg, ccfg)] == ["63", "63"]
    # The mount names its layers by short links: the options stay short.
    env.remove(cid)


# ---------------------------------------------------------------------------
# Pulls never starve other calls; abandoned and crawling pulls end


def run_hostile(criclient, socket_path, api, checks, *args, timeout=300):  # noqa: F811
    """criclient hostile: (exit code, output)."""
    r = subprocess.run([criclient, "hostile", "--socket", socket_path, "--api", api, "--checks", checks,
                        "--call-timeout", "30s"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return r.returncode, r.stdout


def pull_future(d, image, timeout):
    a = load_api()
    mc = d.channel().unary_unary(
        "/runtime.v1.ImageService/PullImage", request_serializer=a.PullImageRequest.SerializeToString,
        response_deserializer=a.PullImageResponse.FromString)
    return mc.future(a.PullImageRequest(image=a.ImageSpec(image=image)), timeout=timeout)


def timed_ms(fn):
    t0 = time.monotonic()
    fn()
    return (time.monotonic() - t0) * 1000


def proxied_daemon(daemon_factory, proxy, extra=""):
    return daemon_factory(config=f"{extra}registries:\n  - host: {proxy.host}\n    insecure: true\n").start()


def test_trickling_pulls_leave_other_calls_answering(daemon_factory, registry_set, separate_registry,  # noqa: F811
                                                     criclient):
    """40 pulls of 40 images from a registry that sends 1 byte a second:
    Version, Status and the lists still answer within 100 ms, to grpc-python
    and to the kubelet-style Go client under both APIs."""
    a = load_api()
    reg = separate_registry(repos=())
    img = ib.standard_images()["busybox"]
    for i in range(40):
        push(reg, "busybox", f"t{i}", img)
    proxy = FaultProxy(reg.port, rate=1)
    try:
        d = proxied_daemon(daemon_factory, proxy)
        pulls = [pull_future(d, f"{proxy.host}/busybox:t{i}", timeout=120) for i in range(40)]
        deadline = time.monotonic() + 20
        while proxy.connections < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.connections >= 8, f"only {proxy.connections} pulls reached the registry"
        time.sleep(1)
        rt, img = d.rt(), d.img()
        calls = {
            "Version": lambda: rt.Version(a.VersionRequest(), timeout=5),
            "Status": lambda: rt.Status(a.StatusRequest(), timeout=5),
            "ListPodSandbox": lambda: rt.ListPodSandbox(a.ListPodSandboxRequest(), timeout=5),
            "ListContainers": lambda: rt.ListContainers(a.ListContainersRequest(), timeout=5),
            "ListImages": lambda: img.ListImages(a.ListImagesRequest(), timeout=5),
        }
        for _ in range(3):
            for name, fn in calls.items():
                ms = timed_ms(fn)
                assert ms < 100, f"{name} took {ms:.0f} ms with 40 pulls trickling"
        for api in ("v1", "v1alpha2"):
            rc, out = run_hostile(criclient, d.socket_path, api, "latency,decode")
            assert rc == 0, out
        done = [p.exception() for p in pulls if p.done()]
        assert not done, done[:3]
        for p in pulls:
            p.cancel()
        # Every pull is cancelled once its client has gone.
        text = d.wait_for_stderr(lambda t: t.count("cancelling a pull") >= 40, timeout=15)
        assert text.count("cancelling a pull") >= 40, text.count("cancelling a pull")
    finally:
        proxy.close()


def test_pull_cancelled_when_every_client_gives_up(daemon_factory, registry_set, separate_registry):  # noqa: F811
    reg = separate_registry()
    proxy = FaultProxy(reg.port, stall_after=8192)
    try:
        d = proxied_daemon(daemon_factory, proxy)
        image = f"{proxy.host}/busybox:latest"
        patient = pull_future(d, image, timeout=120)
        hasty = pull_future(d, image, timeout=3)
        with pytest.raises(grpc.RpcError) as e:
            hasty.result()
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(1.5)
        # Another client still waits: the pull goes on.
        assert "cancelling a pull" not in d.stderr()
        assert not patient.done()
        assert tmp_entries(d), "the pull's work disappeared while a client waited"
        patient.cancel()
        d.wait_for_stderr(lambda t: "cancelling a pull" in t, timeout=10)
        deadline = time.monotonic() + 10
        while (tmp_entries(d) or unpackers(d)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tmp_entries(d) == [] and unpackers(d) == [], (tmp_entries(d), unpackers(d))
        assert layer_dirs(d) == []
        d.assert_serving()
    finally:
        proxy.close()


def test_crawling_transfer_aborted_at_min_rate(daemon_factory, registry_set):  # noqa: F811
    proxy = FaultProxy(registry_set.plain.port, rate=300)
    try:
        d = proxied_daemon(daemon_factory, proxy,
                           "pull_min_bytes_per_s: 2000\npull_rate_window_s: 2\n")
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            pull_future(d, f"{proxy.host}/busybox:latest", timeout=60).result()
        took = time.monotonic() - t0
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
        assert "slower than 2000 bytes/s over 2 s" in e.value.details(), e.value.details()
        assert took < 15, took
        assert tmp_entries(d) == [] and layer_dirs(d) == []
    finally:
        proxy.close()


# ---------------------------------------------------------------------------
# Decompression bombs


def unpackers(d):
    return [p for p in ph.processes()
            if len(p.argv) > 2 and p.argv[1] == "--internal-unpack-layer"
            and p.argv[2].startswith(d.state_root + "/")]


def bomb_layer(size):
    """A gzip layer whose tar holds one file of size zero bytes: concatenated
    gzip members of 64 MiB of zeros each, about 1 KB per 1 MB."""
    header = tarfile.TarInfo("bomb")
    header.size = size
    head = gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT))
    zeros = gzip.compress(bytes(64 << 20), compresslevel=9)
    blob = head + zeros * (size // (64 << 20))
    fake_diff_id = "sha256:" + "b" * 64  # never reached: the reserve stops it first
    return ib.Layer.from_bytes(blob, ib.OCI_LAYER_GZIP, comment="bomb"), fake_diff_id


def test_gzip_bomb_stops_at_the_free_space_reserve(daemon_factory, registry_set, separate_registry):  # noqa: F811
    reg = separate_registry(repos=())
    layer, diff_id = bomb_layer(3 << 30)
    img = ib.Image([layer], raw_config={"architecture": ib.host_arch(), "os": "linux", "config": {},
                                        "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    push(reg, "bomb", "latest", img)
    d = daemon_factory(config=f"registries:\n  - host: {reg.host}\n    insecure: true\n").start()
    st = os.statvfs(d.state_root)
    free = st.f_bavail * st.f_frsize
    reserve = free - (300 << 20)
    d.stop()
    d.extra_args += ["--state-free-reserve", str(reserve)]
    d.proc = None
    d.close_channels()
    d._default_channel = None
    d.start()
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        pull_future(d, f"{reg.host}/bomb:latest", timeout=120).result()
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
    assert "state_free_reserve_bytes" in e.value.details(), e.value.details()
    assert time.monotonic() - t0 < 60
    assert tmp_entries(d) == [] and layer_dirs(d) == []
    assert unpackers(d) == []
    st = os.statvfs(d.state_root)
    assert st.f_bavail * st.f_frsize > reserve, "the bomb's bytes were left on disk"


def test_data_after_the_archive_refused(daemon_factory, registry_set, separate_registry):  # noqa: F811
    """An endless stream after the tar's end is refused, not decompressed
    and hashed for ever."""
    reg = separate_registry(repos=())
    tar = ib.build_tar([ib.File("/hello", "hi\n")])
    blob = gzip.compress(tar) + gzip.compress(bytes(64 << 20), compresslevel=9) * 4
    layer = ib.Layer.from_bytes(blob, ib.OCI_LAYER_GZIP, comment="trailer")
    img = ib.Image([layer], raw_config={"architecture": ib.host_arch(), "os": "linux", "config": {},
                                        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "c" * 64]}})
    push(reg, "trailer", "latest", img)
    d = daemon_factory(config=f"registries:\n  - host: {reg.host}\n    insecure: true\n").start()
    with pytest.raises(grpc.RpcError) as e:
        pull_future(d, f"{reg.host}/trailer:latest", timeout=60).result()
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert "follow the end of the archive" in e.value.details(), e.value.details()
    assert tmp_entries(d) == [] and layer_dirs(d) == []


def test_unpacker_dies_with_crid(daemon_factory, registry_set, separate_registry):  # noqa: F811
    reg = separate_registry()
    proxy = FaultProxy(reg.port, stall_after=8192)
    try:
        d = proxied_daemon(daemon_factory, proxy)
        fut = pull_future(d, f"{proxy.host}/busybox:latest", timeout=120)
        deadline = time.monotonic() + 20
        while not unpackers(d) and time.monotonic() < deadline:
            time.sleep(0.05)
        children = unpackers(d)
        assert children, "no unpacker was started"
        d.kill()
        with pytest.raises(grpc.RpcError):
            fut.result()
        deadline = time.monotonic() + 5
        while any(ph.pid_alive(c.pid) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [c.pid for c in children if ph.pid_alive(c.pid)]
        assert not left, f"unpackers outlived crid: {left}"
        assert tmp_entries(d), "the interrupted pull's work should be there for start-up to find"
        d.close_channels()
        d._default_channel = None
        d.proc = None
        d.start()
        assert tmp_entries(d) == [] and layer_dirs(d) == []
    finally:
        proxy.close()
