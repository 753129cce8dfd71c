"""ImageService against real registries (Debian's docker-registry on
127.0.0.1, filled with images built from busybox-static): pull by tag and
digest, mirrors, TLS, credentials, broken and hostile registries, the store
on disk, list/status/remove/fs info, concurrency and restarts."""

import base64
import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time

import grpc
import pytest

import image_builder as ib
from netfault import FaultProxy
from registry_fixtures import push, registry_set, separate_registry  # noqa: F401

PULL_TIMEOUT_S = 60


def registries_yaml(rs, extra=""):
    return f"""
registries:
  - host: {rs.plain.host}
    insecure: true
  - host: {rs.tls.host}
    ca_file: {rs.ca_file}
  - host: {rs.basic.host}
    insecure: true
  - host: {rs.token.host}
    insecure: true
{extra}"""


@pytest.fixture
def images_daemon(daemon_factory, registry_set):  # noqa: F811
    """A crid that knows the four test registries."""
    return daemon_factory(config=registries_yaml(registry_set)).start()


def pull(d, image, auth=None, timeout=PULL_TIMEOUT_S):
    api = d_api()
    req = api.PullImageRequest(image=api.ImageSpec(image=image))
    if auth is not None:
        req.auth.CopyFrom(auth)
    return d.img().PullImage(req, timeout=timeout).image_ref


def d_api():
    from conftest import load_api
    return load_api()


def status(d, image, verbose=False):
    api = d_api()
    return d.img().ImageStatus(api.ImageStatusRequest(image=api.ImageSpec(image=image), verbose=verbose))


def list_images(d, image=None):
    api = d_api()
    req = api.ListImagesRequest()
    if image is not None:
        req.filter.image.image = image
    return list(d.img().ListImages(req).images)


def remove(d, image):
    api = d_api()
    d.img().RemoveImage(api.RemoveImageRequest(image=api.ImageSpec(image=image)))


def layer_dirs(d):
    path = os.path.join(d.state_root, "layers")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def tmp_entries(d):
    path = os.path.join(d.state_root, "tmp")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def chain_ids(diff_ids):
    import hashlib
    out = []
    for i, diff in enumerate(diff_ids):
        if i == 0:
            out.append(diff)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out


@contextlib.contextmanager
def overlay_of(d, image_id):
    """Mounts the image's layers as a read-only overlay; yields the mount."""
    st = status(d, image_id, verbose=True)
    info = json.loads(st.info["info"])
    lowers = [os.path.join(d.state_root, "layers", c.split(":", 1)[1]) for c in info["chainIDs"]]
    mnt = tempfile.mkdtemp(prefix="crid-it-overlay-")
    opts = "lowerdir=" + ":".join(reversed(lowers))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, mnt], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", mnt], check=False)
        os.rmdir(mnt)


def assert_busybox_rootfs(root):
    exp = ib.BUSYBOX_EXPECTED
    for p in exp["present"]:
        assert os.path.lexists(os.path.join(root, p)), f"{p} missing from the image"
    for p in exp["absent"]:
        assert not os.path.lexists(os.path.join(root, p)), f"{p} should be hidden by a whiteout"
    for p, mode in exp["modes"].items():
        assert os.lstat(os.path.join(root, p)).st_mode & 0o7777 == mode, p
    for p, data in exp["contents"].items():
        with open(os.path.join(root, p), "rb") as f:
            assert f.read() == data, p


# ---------------------------------------------------------------------------
# Pulling


def test_pull_by_tag_records_image(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    exp = rs.expected("busybox")
    ref = pull(d, f"{rs.plain.host}/busybox:latest")
    assert ref == exp["image_id"]
    imgs = list_images(d)
    assert [i.id for i in imgs] == [exp["image_id"]]
    img = imgs[0]
    assert list(img.repo_tags) == [f"{rs.plain.host}/busybox:latest"]
    assert list(img.repo_digests) == [f"{rs.plain.host}/busybox@{exp['manifest_digest']}"]
    assert img.size == exp["size"]
    assert img.HasField("uid") and img.uid.value == 0
    assert not img.pinned
    # One directory per layer, keyed by chain ID.
    want = sorted(c.split(":", 1)[1] for c in chain_ids(exp["diff_ids"]))
    assert layer_dirs(d) == want
    assert tmp_entries(d) == []


def test_pull_by_digest(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    exp = rs.expected("busybox")
    ref = pull(d, f"{rs.plain.host}/busybox@{exp['manifest_digest']}")
    assert ref == exp["image_id"]
    st = status(d, f"{rs.plain.host}/busybox@{exp['manifest_digest']}")
    assert st.image.id == exp["image_id"]
    assert list(st.image.repo_tags) == []
    assert list(st.image.repo_digests) == [f"{rs.plain.host}/busybox@{exp['manifest_digest']}"]


def test_pull_wrong_digest_is_not_found(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    bogus = "sha256:" + "0" * 64
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{rs.plain.host}/busybox@{bogus}")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value.details()
    assert list_images(d) == []


def test_whiteouts_honoured_when_layers_stacked(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    ref = pull(d, f"{rs.plain.host}/busybox:latest")
    with overlay_of(d, ref) as root:
        assert_busybox_rootfs(root)
    # In the top layer itself: a 0:0 character device and an opaque dir.
    top = os.path.join(d.state_root, "layers", layer_dirs_for(d, ref)[-1])
    st = os.lstat(os.path.join(top, "data", "removed.txt"))
    assert (st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0
    assert os.getxattr(os.path.join(top, "data", "olddir"), "trusted.overlay.opaque") == b"y"


def layer_dirs_for(d, image_id):
    info = json.loads(status(d, image_id, verbose=True).info["info"])
    return [c.split(":", 1)[1] for c in info["chainIDs"]]


def test_zstd_layers(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    ref = pull(d, f"{rs.plain.host}/busybox-zstd:latest")
    assert ref == rs.expected("busybox-zstd")["image_id"]
    with overlay_of(d, ref) as root:
        assert_busybox_rootfs(root)


def test_docker_schema2_manifest(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    ref = pull(d, f"{rs.plain.host}/docker-v2:latest")
    assert ref == rs.expected("docker-v2")["image_id"]


@pytest.mark.parametrize("repo", ["multiarch", "multiarch-docker"])
def test_index_picks_host_platform(images_daemon, registry_set, repo):  # noqa: F811
    d, rs = images_daemon, registry_set
    index = rs.images[repo]
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    want = index.image_for(arch, "linux", "v8" if arch == "arm64" else None)
    ref = pull(d, f"{rs.plain.host}/{repo}:latest")
    assert ref == want.image_id
    st = status(d, ref)
    assert list(st.image.repo_digests) == [f"{rs.plain.host}/{repo}@{index.digest}"]
    with overlay_of(d, ref) as root:
        with open(os.path.join(root, "platform")) as f:
            assert f.read().strip() == arch


def test_user_from_image_config(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    pull(d, f"{rs.plain.host}/nonroot:latest")
    pull(d, f"{rs.plain.host}/nonroot-named:latest")
    numeric = status(d, f"{rs.plain.host}/nonroot:latest").image
    assert numeric.HasField("uid") and numeric.uid.value == 1000 and numeric.username == ""
    named = status(d, f"{rs.plain.host}/nonroot-named:latest").image
    assert not named.HasField("uid") and named.username == "app"


def test_malformed_reference_is_invalid_argument(images_daemon):
    for bad in ["Busybox", "busybox:", "a//b", "http://x/y", "busybox@sha256:abc", " "]:
        with pytest.raises(grpc.RpcError) as e:
            pull(images_daemon, bad)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (bad, e.value.details())
        assert bad.strip() in e.value.details() or "image" in e.value.details(), e.value.details()


def test_unknown_tag_is_not_found(images_daemon, registry_set):  # noqa: F811
    with pytest.raises(grpc.RpcError) as e:
        pull(images_daemon, f"{registry_set.plain.host}/busybox:no-such-tag")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value.details()
    assert "no-such-tag" in e.value.details()


# ---------------------------------------------------------------------------
# Mirrors, TLS, credentials


def test_pull_through_mirror_only(daemon_factory, registry_set):  # noqa: F811
    rs = registry_set
    d = daemon_factory(config=f"""
registries:
  - host: registry.invalid
    mirrors:
      - url: http://{rs.plain.host}
    mirrors_only: true
""").start()
    before = rs.plain.manifest_get_count("busybox")
    ref = pull(d, "registry.invalid/busybox:latest")
    assert ref == rs.expected("busybox")["image_id"]
    assert rs.plain.manifest_get_count("busybox") == before + 1
    assert [i.repo_tags[0] for i in list_images(d)] == ["registry.invalid/busybox:latest"]


def test_mirror_down_falls_back_to_registry(daemon_factory, registry_set):  # noqa: F811
    rs = registry_set
    d = daemon_factory(config=f"""
registries:
  - host: {rs.plain.host}
    insecure: true
    mirrors:
      - url: http://127.0.0.1:{rs.closed_port()}
""").start()
    assert pull(d, f"{rs.plain.host}/busybox:latest") == rs.expected("busybox")["image_id"]


def test_mirrors_only_never_reaches_registry(daemon_factory, registry_set):  # noqa: F811
    rs = registry_set
    d = daemon_factory(config=f"""
registries:
  - host: {rs.plain.host}
    insecure: true
    mirrors:
      - url: http://127.0.0.1:{rs.closed_port()}
    mirrors_only: true
""").start()
    before = rs.plain.manifest_get_count("busybox")
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{rs.plain.host}/busybox:latest")
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
    assert rs.plain.manifest_get_count("busybox") == before


def test_tls_registry_with_ca(images_daemon, registry_set):  # noqa: F811
    ref = pull(images_daemon, f"{registry_set.tls.host}/busybox:latest")
    assert ref == registry_set.expected("busybox")["image_id"]


def test_tls_registry_without_ca_fails_clearly(daemon_factory, registry_set):  # noqa: F811
    d = daemon_factory().start()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{registry_set.tls.host}/busybox:latest")
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
    assert "certificate" in e.value.details().lower(), e.value.details()


def auth_config(**kw):
    return d_api().AuthConfig(**kw)


def test_basic_auth_right_credentials(images_daemon, registry_set):  # noqa: F811
    rs = registry_set
    ref = pull(images_daemon, f"{rs.basic.host}/busybox:latest",
               auth=auth_config(username=rs.username, password=rs.password))
    assert ref == rs.expected("busybox")["image_id"]


def test_basic_auth_encoded_auth_field(images_daemon, registry_set):  # noqa: F811
    rs = registry_set
    token = base64.b64encode(f"{rs.username}:{rs.password}".encode()).decode()
    ref = pull(images_daemon, f"{rs.basic.host}/busybox:latest", auth=auth_config(auth=token))
    assert ref == rs.expected("busybox")["image_id"]


@pytest.mark.parametrize("which", ["basic", "token"])
def test_wrong_credentials_fail_clearly(images_daemon, registry_set, which):  # noqa: F811
    reg = getattr(registry_set, which)
    with pytest.raises(grpc.RpcError) as e:
        pull(images_daemon, f"{reg.host}/busybox:latest",
             auth=auth_config(username="crid", password="wrong"))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value.details()
    assert "credentials" in e.value.details(), e.value.details()
    assert list_images(images_daemon) == []


@pytest.mark.parametrize("which", ["basic", "token"])
def test_missing_credentials_fail_clearly(images_daemon, registry_set, which):  # noqa: F811
    reg = getattr(registry_set, which)
    with pytest.raises(grpc.RpcError) as e:
        pull(images_daemon, f"{reg.host}/busybox:latest")
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value.details()


def test_bearer_token_flow(images_daemon, registry_set):  # noqa: F811
    rs = registry_set
    before = rs.token_server.token_requests
    ref = pull(images_daemon, f"{rs.token.host}/busybox:latest",
               auth=auth_config(username=rs.username, password=rs.password))
    assert ref == rs.expected("busybox")["image_id"]
    # One token for the repository serves the manifest and every blob.
    assert rs.token_server.token_requests == before + 1


# ---------------------------------------------------------------------------
# Broken and hostile registries


def test_blob_digest_mismatch_stores_nothing(daemon_factory, registry_set, separate_registry):  # noqa: F811
    reg = separate_registry()
    exp = registry_set.expected("busybox")
    reg.tamper_blob(exp["layer_digests"][1])
    d = daemon_factory(config=f"registries:\n  - host: {reg.host}\n    insecure: true\n").start()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.host}/busybox:latest")
    assert e.value.code() == grpc.StatusCode.DATA_LOSS, e.value.details()
    assert "digest" in e.value.details()
    assert list_images(d) == []
    assert tmp_entries(d) == []
    # Layers that did arrive intact are not kept for an image that failed.
    assert layer_dirs(d) == []


def test_registry_down_fails_fast(daemon_factory, registry_set):  # noqa: F811
    port = registry_set.closed_port()
    d = daemon_factory(config=f"registries:\n  - host: 127.0.0.1:{port}\n    insecure: true\n").start()
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"127.0.0.1:{port}/busybox:latest")
    assert time.monotonic() - t0 < 10
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
    assert "unreachable" in e.value.details(), e.value.details()


ESCAPES = {
    "evil-dotdot": ["escape-dotdot"],
    "evil-abs": ["abs-escape"],
    "evil-symlink": ["tmp/escape-symlink"],
    "evil-symlink-rel": ["escape-rel"],
    "evil-hardlink": [],
    "evil-hardlink-abs": [],
}


@pytest.mark.parametrize("repo", sorted(ESCAPES))
def test_layer_escape_refused(images_daemon, registry_set, repo):  # noqa: F811
    d, rs = images_daemon, registry_set
    with open("/etc/passwd", "rb") as f:
        passwd = f.read()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{rs.plain.host}/{repo}:latest")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert "entry" in e.value.details(), e.value.details()
    for name in ESCAPES[repo]:
        for root in ("/", d.state_root, os.path.join(d.state_root, "tmp"), d.tmp):
            assert not os.path.lexists(os.path.join(root, name)), f"{name} written under {root}"
    with open("/etc/passwd", "rb") as f:
        assert f.read() == passwd
    assert list_images(d) == []
    assert tmp_entries(d) == []


# ---------------------------------------------------------------------------
# Concurrency


def test_concurrent_pulls_download_each_blob_once(daemon_factory, registry_set, separate_registry):  # noqa: F811
    reg = separate_registry()
    exp = registry_set.expected("busybox")
    d = daemon_factory(config=f"registries:\n  - host: {reg.host}\n    insecure: true\n").start()
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        refs = list(pool.map(lambda _: pull(d, f"{reg.host}/busybox:latest"), range(10)))
    assert refs == [exp["image_id"]] * 10
    for digest in exp["layer_digests"] + [exp["config_digest"]]:
        assert reg.blob_get_count("busybox", digest) == 1, digest
    assert len(list_images(d)) == 1


# ---------------------------------------------------------------------------
# List, status, remove, fs info


def test_list_filter_and_stream(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    a = pull(d, f"{rs.plain.host}/busybox:latest")
    b = pull(d, f"{rs.plain.host}/nonroot-named:latest")
    assert sorted(i.id for i in list_images(d)) == sorted([a, b])
    assert [i.id for i in list_images(d, f"{rs.plain.host}/nonroot-named:latest")] == [b]
    assert [i.id for i in list_images(d, a)] == [a]
    assert list_images(d, f"{rs.plain.host}/missing:latest") == []
    api = d_api()
    streamed = [i.id for r in d.img().StreamImages(api.StreamImagesRequest()) for i in r.images]
    assert sorted(streamed) == sorted([a, b])


def test_status_of_missing_image_is_empty(images_daemon):
    st = status(images_daemon, "docker.io/library/nothing:here")
    assert not st.HasField("image")


def test_status_by_id_prefix_and_verbose(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    ref = pull(d, f"{rs.plain.host}/busybox:latest")
    st = status(d, ref.split(":", 1)[1][:12], verbose=True)
    assert st.image.id == ref
    info = json.loads(st.info["info"])
    assert info["imageSpec"]["rootfs"]["diff_ids"] == rs.expected("busybox")["diff_ids"]
    assert info["chainIDs"] == chain_ids(rs.expected("busybox")["diff_ids"])


def test_remove_one_tag_keeps_image(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    ref = pull(d, f"{rs.plain.host}/busybox:latest")
    assert pull(d, f"{rs.tls.host}/busybox:latest") == ref
    assert sorted(status(d, ref).image.repo_tags) == sorted(
        [f"{rs.plain.host}/busybox:latest", f"{rs.tls.host}/busybox:latest"])
    remove(d, f"{rs.plain.host}/busybox:latest")
    assert list(status(d, ref).image.repo_tags) == [f"{rs.tls.host}/busybox:latest"]
    assert layer_dirs(d)
    remove(d, f"{rs.tls.host}/busybox:latest")
    assert not status(d, ref).HasField("image")
    assert layer_dirs(d) == []
    # Removing what is gone is not an error.
    remove(d, f"{rs.tls.host}/busybox:latest")
    remove(d, ref)


def test_shared_layers_stay_until_unused(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    a = pull(d, f"{rs.plain.host}/busybox:latest")
    b = pull(d, f"{rs.plain.host}/nonroot:latest")
    shared = set(layer_dirs_for(d, a)) & set(layer_dirs_for(d, b))
    assert shared, "busybox and nonroot share their layers"
    remove(d, a)  # by ID: every name goes
    assert not status(d, a).HasField("image")
    assert shared <= set(layer_dirs(d))
    remove(d, f"{rs.plain.host}/nonroot:latest")
    assert layer_dirs(d) == []
    blobs = os.listdir(os.path.join(d.state_root, "blobs", "sha256"))
    assert blobs == []


def test_remove_by_repo_digest(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    exp = rs.expected("busybox")
    ref = pull(d, f"{rs.plain.host}/busybox@{exp['manifest_digest']}")
    remove(d, f"{rs.plain.host}/busybox@{exp['manifest_digest']}")
    assert not status(d, ref).HasField("image")


def test_image_fs_info(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    api = d_api()
    empty = d.img().ImageFsInfo(api.ImageFsInfoRequest()).image_filesystems[0]
    assert empty.fs_id.mountpoint == os.path.join(d.state_root, "layers")
    pull(d, f"{rs.plain.host}/busybox:latest")
    full = d.img().ImageFsInfo(api.ImageFsInfoRequest()).image_filesystems[0]
    # The busybox binary alone is about a megabyte.
    assert full.used_bytes.value >= empty.used_bytes.value + 1_000_000
    assert full.inodes_used.value >= empty.inodes_used.value + 15
    assert full.timestamp > 0


def test_image_fs_info_counts_hard_links_once(daemon_factory, registry_set, separate_registry):  # noqa: F811
    """A file hard-linked at 300 names takes its blocks once on disk, and
    ImageFsInfo says so (busybox images link hundreds of applets)."""
    reg = separate_registry(repos=())
    blob = os.urandom(1024 * 1024)
    entries = [ib.Dir("/bin"), ib.File("/bin/tool", blob, 0o755)]
    entries += [ib.Hardlink(f"/bin/applet{i}", "bin/tool") for i in range(300)]
    push(reg, "links", "latest", ib.Image([ib.Layer(entries)]))
    d = daemon_factory(config=f"registries:\n  - host: {reg.host}\n    insecure: true\n").start()
    api = d_api()
    empty = d.img().ImageFsInfo(api.ImageFsInfoRequest()).image_filesystems[0]
    pull(d, f"{reg.host}/links:latest")
    full = d.img().ImageFsInfo(api.ImageFsInfoRequest()).image_filesystems[0]
    (layer,) = layer_dirs(d)
    tool = os.stat(os.path.join(d.state_root, "layers", layer, "bin", "tool"))
    assert tool.st_nlink == 301, tool
    used = full.used_bytes.value - empty.used_bytes.value
    du = int(subprocess.run(["du", "-s", "-B1", os.path.join(d.state_root, "layers", layer)],
                            capture_output=True, text=True, check=True).stdout.split()[0])
    # Besides the layer: its manifest and config blobs, a few KiB.
    assert du <= used <= du + 64 * 1024, f"ImageFsInfo counts {used} bytes for a layer du measures at {du}"
    assert 1024 * 1024 <= used < 2 * 1024 * 1024, used
    # The layer holds three inodes (its root, bin, tool) however many names
    # tool has; the blobs one each.
    blobs = os.listdir(os.path.join(d.state_root, "blobs", "sha256"))
    assert full.inodes_used.value - empty.inodes_used.value == 3 + len(blobs), full


def test_pinned_images_from_config(daemon_factory, registry_set):  # noqa: F811
    rs = registry_set
    d = daemon_factory(config=registries_yaml(rs, f"pinned_images:\n  - {rs.plain.host}/busybox:latest\n")).start()
    a = pull(d, f"{rs.plain.host}/busybox:latest")
    b = pull(d, f"{rs.plain.host}/nonroot-named:latest")
    assert status(d, a).image.pinned
    assert not status(d, b).image.pinned


def test_v1alpha2_image_service(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    api = d_api()
    req = api.PullImageRequest(image=api.ImageSpec(image=f"{rs.plain.host}/busybox:latest"))
    ref = d.img("v1alpha2").PullImage(req, timeout=PULL_TIMEOUT_S).image_ref
    assert [i.id for i in d.img("v1alpha2").ListImages(api.ListImagesRequest()).images] == [ref]


# ---------------------------------------------------------------------------
# Restarts and crashes


def restart(d, sig=signal.SIGTERM):
    if sig == signal.SIGKILL:
        d.kill()
    else:
        rc, _ = d.stop(sig)
        assert rc == 0
    d.close_channels()
    d._default_channel = None
    d.proc = None
    return d.start()


def test_restart_keeps_every_image(images_daemon, registry_set):  # noqa: F811
    d, rs = images_daemon, registry_set
    a = pull(d, f"{rs.plain.host}/busybox:latest")
    b = pull(d, f"{rs.plain.host}/nonroot:latest")
    before = {i.id: (sorted(i.repo_tags), sorted(i.repo_digests), i.size) for i in list_images(d)}
    layers = layer_dirs(d)
    restart(d)
    after = {i.id: (sorted(i.repo_tags), sorted(i.repo_digests), i.size) for i in list_images(d)}
    assert after == before and sorted(after) == sorted([a, b])
    assert layer_dirs(d) == layers
    assert status(d, f"{rs.plain.host}/nonroot:latest").image.uid.value == 1000


def test_kill_during_pull_leaves_all_or_nothing(daemon_factory, registry_set, separate_registry):  # noqa: F811
    reg = separate_registry(repos=())
    big = ib.big_image()
    push(reg, "big", "latest", big)
    # 20 MB/s: the 100 MB pull is surely under way when crid is killed.
    proxy = FaultProxy(reg.port, rate=20_000_000)
    try:
        d = daemon_factory(config=f"registries:\n  - host: {proxy.host}\n    insecure: true\n").start()
        api = d_api()
        req = api.PullImageRequest(image=api.ImageSpec(image=f"{proxy.host}/big:latest"))
        call = d.default_channel().unary_unary(
            "/runtime.v1.ImageService/PullImage",
            request_serializer=api.PullImageRequest.SerializeToString,
            response_deserializer=api.PullImageResponse.FromString).future(req, timeout=PULL_TIMEOUT_S)
        deadline = time.monotonic() + 20
        while not tmp_entries(d) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(1.0)
        d.kill()
        with pytest.raises(grpc.RpcError):
            call.result()
        restart(d, signal.SIGKILL)
        assert list_images(d) == []
        assert tmp_entries(d) == []
        assert layer_dirs(d) == []
        # And the pull works afterwards.
        assert pull(d, f"{proxy.host}/big:latest") == big.image_id
    finally:
        proxy.close()


def test_dropped_connection_resumes_blob(daemon_factory, registry_set, separate_registry):  # noqa: F811
    reg = separate_registry(repos=())
    big = ib.big_image()
    push(reg, "big", "latest", big)
    # Manifest and config are small; the first layer's answer is cut.
    proxy = FaultProxy(reg.port, drop_after=5_000_000, drop_times=1)
    try:
        d = daemon_factory(config=f"registries:\n  - host: {proxy.host}\n    insecure: true\n").start()
        assert pull(d, f"{proxy.host}/big:latest") == big.image_id
        assert proxy.range_requests(), "the retry should resume with a Range request"
        for digest in big.layer_digests:
            assert reg.blob_get_count("big", digest) >= 1
    finally:
        proxy.close()


def test_stalled_transfer_is_aborted(daemon_factory, registry_set, separate_registry):  # noqa: F811
    reg = separate_registry()
    proxy = FaultProxy(reg.port, stall_after=3000)
    try:
        d = daemon_factory(config=f"pull_progress_timeout_s: 1\nregistries:\n"
                                  f"  - host: {proxy.host}\n    insecure: true\n").start()
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            pull(d, f"{proxy.host}/busybox:latest")
        assert time.monotonic() - t0 < 30
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
        assert "no progress" in e.value.details(), e.value.details()
        assert list_images(d) == [] and tmp_entries(d) == []
    finally:
        proxy.close()


def test_layer_not_matching_its_diff_id_is_refused(daemon_factory, registry_set, separate_registry):  # noqa: F811
    """A layer is stored under the chain ID its image's config claims: a
    config that lies about a layer's content must not plant that content
    in another, honest image."""
    reg = separate_registry(repos=())
    real = ib.Layer([ib.File("file", b"real content\n")])
    evil = ib.Layer([ib.File("file", b"EVIL content\n")])
    honest = ib.Image([real])
    forged_config = json.loads(json.dumps(honest.config))
    forged = ib.Image([evil], raw_config=forged_config)  # claims real's diff_id
    push(reg, "forged", "latest", forged)
    push(reg, "honest", "latest", honest)
    d = daemon_factory(config=f"registries:\n  - host: {reg.host}\n    insecure: true\n").start()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.host}/forged:latest")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert "does not match its diff_id" in e.value.details(), e.value.details()
    assert layer_dirs(d) == [] and list_images(d) == []
    ref = pull(d, f"{reg.host}/honest:latest")
    (layer,) = layer_dirs_for(d, ref)
    with open(os.path.join(d.state_root, "layers", layer, "file"), "rb") as f:
        assert f.read() == b"real content\n"
