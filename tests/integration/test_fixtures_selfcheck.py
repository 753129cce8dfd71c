"""Self-check of registry_fixtures.py and image_builder.py against the real
docker-registry (no crid involved). Run:

    /usr/bin/python3 -m pytest -v tests/integration/test_fixtures_selfcheck.py
"""

import base64
import hashlib
import io
import json
import os
import pathlib
import re
import socket
import ssl
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import image_builder as ib
import registry_fixtures as rf
from registry_fixtures import registry_set, separate_registry  # noqa: F401,F811 (fixtures)

REGISTRY_NAMES = ("plain", "tls", "basic", "token")


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def walk_manifests(obj):
    """[(image, descriptor-or-None)] for an Image or every Image of an Index."""
    if isinstance(obj, ib.Index):
        return obj.entries
    return [(obj, None)]


# ---------------------------------------------------------------------------
# image_builder alone


def test_builds_are_deterministic():
    fresh = [ib.Layer(e, "gzip") for e in ib.busybox_entries()]
    assert [l.digest for l in fresh] == [l.digest for l in ib.busybox_layers("gzip")]
    z1 = ib.Layer(ib.busybox_entries()[2], "zstd")
    assert z1.digest == ib.busybox_layers("zstd")[2].digest


def test_busybox_layers_content():
    l1, l2, l3 = ib.busybox_layers("gzip")
    m1 = {m.name: m for m in l1.members()}
    with open("/bin/busybox", "rb") as f:
        bb = f.read()
    assert m1["bin/busybox"].isfile() and m1["bin/busybox"].mode == 0o755
    tar = tarfile.open(fileobj=io.BytesIO(l1.tar_bytes()))
    assert tar.extractfile("bin/busybox").read() == bb
    for applet in ib.BUSYBOX_APPLETS:
        assert m1[f"bin/{applet}"].issym() and m1[f"bin/{applet}"].linkname == "busybox"
    assert m1["tmp"].isdir() and m1["tmp"].mode == 0o1777
    assert m1["etc"].isdir() and m1["data"].isdir()
    assert all(m.mtime == ib.FIXED_MTIME for m in m1.values())

    m2 = {m.name: m for m in l2.members()}
    assert m2["bin/suid"].mode == 0o4755
    t2 = tarfile.open(fileobj=io.BytesIO(l2.tar_bytes()))
    assert b"app:x:1000:1000::/home/app:/bin/sh" in t2.extractfile("etc/passwd").read()
    for n in ("etc/group", "data/removed.txt", "data/olddir/old.txt", "data/kept.txt"):
        assert m2[n].isfile()

    names3 = l3.names()
    assert "data/.wh.removed.txt" in names3
    assert "data/olddir/.wh..wh..opq" in names3
    assert "data/olddir/new.txt" in names3
    # diff_id is the sha256 of the uncompressed tar, digest that of the blob
    for l in (l1, l2, l3):
        assert l.diff_id == sha(l.tar_bytes())
        assert l.digest == sha(l.blob) and l.size == len(l.blob)


def test_zstd_layers():
    gz = ib.busybox_layers("gzip")
    zs = ib.busybox_layers("zstd")
    for g, z in zip(gz, zs):
        assert z.blob[:4] == b"\x28\xb5\x2f\xfd"  # zstd frame magic
        assert g.diff_id == z.diff_id  # same tar inside
        assert g.digest != z.digest
        assert z.media_type() == ib.OCI_LAYER_ZSTD
    img = ib.standard_images()["busybox-zstd"]
    assert {l["mediaType"] for l in img.manifest["layers"]} == {ib.OCI_LAYER_ZSTD}


def test_standard_image_configs_and_media_types():
    s = ib.standard_images()
    bb = s["busybox"]
    assert bb.config["config"]["Cmd"] == ["/bin/sh"]
    assert bb.config["config"]["Env"] == [ib.DEFAULT_PATH_ENV]
    assert bb.config["rootfs"]["diff_ids"] == bb.diff_ids
    assert bb.media_type == ib.OCI_MANIFEST and bb.manifest["config"]["mediaType"] == ib.OCI_CONFIG
    assert bb.image_id == bb.config_digest == sha(bb.config_bytes)
    assert s["nonroot"].config["config"]["User"] == "1000"
    assert s["nonroot-named"].config["config"]["User"] == "app"
    assert s["nonroot"].layer_digests == bb.layer_digests

    d = s["docker-v2"]
    assert d.media_type == ib.DOCKER_MANIFEST
    assert d.manifest["config"]["mediaType"] == ib.DOCKER_CONFIG
    assert {l["mediaType"] for l in d.manifest["layers"]} == {ib.DOCKER_LAYER_GZIP}
    assert d.layer_digests == bb.layer_digests

    ma = s["multiarch"]
    assert ma.media_type == ib.OCI_INDEX
    plats = [d.get("platform") for d in ma.manifest["manifests"]]
    assert {"architecture": "amd64", "os": "linux"} in plats
    assert {"architecture": "arm64", "os": "linux", "variant": "v8"} in plats
    assert {"architecture": "unknown", "os": "unknown"} in plats
    att = [d for d in ma.manifest["manifests"] if d["platform"]["os"] == "unknown"][0]
    assert att["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
    for arch in ("amd64", "arm64"):
        img = ma.image_for(arch)
        tar = tarfile.open(fileobj=io.BytesIO(img.layers[-1].tar_bytes()))
        assert tar.extractfile("platform").read() == f"{arch}\n".encode()
        assert img.config["architecture"] == arch
    assert ma.image_for("arm64").config["variant"] == "v8"

    md = s["multiarch-docker"]
    assert md.media_type == ib.DOCKER_MANIFEST_LIST
    assert all(d["mediaType"] == ib.DOCKER_MANIFEST for d in md.manifest["manifests"])


EVIL_EXPECT = {
    "evil-dotdot": ("../escape-dotdot", tarfile.REGTYPE, ""),
    "evil-abs": ("/abs-escape", tarfile.REGTYPE, ""),
    "evil-hardlink": ("hl", tarfile.LNKTYPE, "../../etc/passwd"),
    "evil-hardlink-abs": ("hl", tarfile.LNKTYPE, "/etc/passwd"),
}


@pytest.mark.parametrize("name", sorted(ib.EVIL_ENTRIES))
def test_evil_layers_contain_crafted_entries(name):
    img = ib.standard_images()[name]
    assert img.layers[0].digest == ib.busybox_layers("gzip")[0].digest
    # Read the raw blob as a registry would serve it, not through the builder.
    with tarfile.open(fileobj=io.BytesIO(img.layers[1].blob), mode="r:gz") as tf:
        members = tf.getmembers()
    by_name = {m.name: m for m in members}
    if name in EVIL_EXPECT:
        n, typ, link = EVIL_EXPECT[name]
        assert n in by_name, [m.name for m in members]
        assert by_name[n].type == typ and by_name[n].linkname == link
    elif name == "evil-symlink":
        assert [m.name for m in members] == ["link", "link/tmp/escape-symlink"]
        assert members[0].issym() and members[0].linkname == "/"
        assert members[1].isfile()
    elif name == "evil-symlink-rel":
        assert [m.name for m in members] == ["up", "up/escape-rel"]
        assert members[0].issym() and members[0].linkname == "../../.."
        assert members[1].isfile()
    else:
        pytest.fail(f"unchecked evil image {name}")


def test_write_oci_layout():
    with tempfile.TemporaryDirectory(prefix="crid-oci-layout-") as d:
        _check_oci_layout(pathlib.Path(d))


def _check_oci_layout(tmp_path):
    idx = ib.standard_images()["multiarch"]
    ib.write_oci_layout(idx, str(tmp_path))
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["manifests"][0]["digest"] == idx.digest
    for img in idx.images:
        for d in list(img.blobs()) + [img.digest]:
            p = tmp_path / "blobs" / "sha256" / d.split(":")[1]
            assert sha(p.read_bytes()) == d


# ---------------------------------------------------------------------------
# Images served by every registry


def test_registry_set_basics(registry_set):
    rs = registry_set
    assert set(rs.registries) == set(REGISTRY_NAMES)
    for name in REGISTRY_NAMES:
        reg = rs.registries[name]
        assert reg.alive(), reg.log_text()[-2000:]
        assert reg.host.startswith("127.0.0.1:")
        assert reg.storage_dir == rs.storage_dir
    assert rs.tls.url.startswith("https://") and rs.tls.ca_file == rs.ca_file
    assert rs.plain.url.startswith("http://")
    assert set(rs.repos) == set(rf.RegistrySet.REPOS)
    exp = rs.expected("busybox")
    assert exp["manifest_digest"] == rs.images["busybox"].digest
    assert exp["image_id"] == rs.images["busybox"].config_digest
    assert len(exp["layer_digests"]) == 3
    print("RegistrySet timings:", {k: round(v, 2) for k, v in rs.timings.items()})


@pytest.mark.parametrize("regname", REGISTRY_NAMES)
@pytest.mark.parametrize("repo", rf.RegistrySet.REPOS)
def test_image_served(registry_set, regname, repo):
    reg = registry_set.registries[regname]
    obj = registry_set.images[repo]
    r = reg.get_manifest(repo, "latest", accept=obj.media_type)
    assert r.status == 200, (r.status, r.body[:300])
    assert r.headers["Content-Type"] == obj.media_type
    assert r.headers["Docker-Content-Digest"] == obj.digest
    assert sha(r.body) == obj.digest
    assert r.body == obj.manifest_bytes
    seen = set()
    for img, desc in walk_manifests(obj):
        if desc is not None:  # index child, by digest
            r = reg.get_manifest(repo, img.digest, accept=img.media_type)
            assert r.status == 200 and sha(r.body) == img.digest == desc["digest"]
            assert len(r.body) == desc["size"]
        for digest, data in img.blobs().items():
            if digest in seen:
                continue
            seen.add(digest)
            r = reg.get_blob(repo, digest)
            assert r.status == 200, (digest, r.status, r.body[:200])
            assert sha(r.body) == digest and r.body == data


def test_manifest_by_digest_and_head(registry_set):
    reg = registry_set.plain
    img = registry_set.images["busybox"]
    r = reg.get_manifest("busybox", img.digest, accept=ib.OCI_MANIFEST)
    assert r.status == 200 and sha(r.body) == img.digest
    r = reg.request("HEAD", "/v2/busybox/manifests/latest", {"Accept": ib.ALL_MANIFEST_TYPES})
    assert r.status == 200 and r.headers["Docker-Content-Digest"] == img.digest
    assert reg.get_manifest("busybox", "nope").status == 404
    assert reg.get_blob("busybox", "sha256:" + "0" * 64).status == 404


def test_oci_manifest_needs_oci_accept(registry_set):
    """distribution 2.8.2 answers 404 MANIFEST_UNKNOWN for an OCI manifest
    when Accept does not list the OCI type, and rewrites a Docker schema 2
    manifest to signed schema 1 when Accept does not list schema 2."""
    r = registry_set.plain.get_manifest("busybox", accept="application/json")
    assert r.status == 404 and b"OCI manifest found" in r.body
    r = registry_set.plain.get_manifest("docker-v2", accept="application/json")
    assert r.status == 200 and json.loads(r.body)["schemaVersion"] == 1


def test_shared_registries_are_read_only(registry_set):
    r = registry_set.tls.request("POST", "/v2/busybox/blobs/uploads/", data=b"")
    assert r.status == 405


# ---------------------------------------------------------------------------
# TLS


def test_tls_needs_the_ca(registry_set):
    reg = registry_set.tls
    url = reg.url + "/v2/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(
                                             context=ssl.create_default_context()))
    with pytest.raises(urllib.error.URLError) as ei:
        opener.open(url, timeout=10)
    assert isinstance(ei.value.reason, ssl.SSLCertVerificationError), ei.value
    ctx = ssl.create_default_context(cafile=reg.ca_file)
    r = rf.http_request("GET", url, ssl_context=ctx)
    assert r.status == 200
    # the certificate also names localhost
    r = rf.http_request("GET", f"https://localhost:{reg.port}/v2/", ssl_context=ctx)
    assert r.status == 200
    # plain HTTP to the TLS port is refused with 400
    r = rf.http_request("GET", f"http://{reg.host}/v2/")
    assert r.status == 400


# ---------------------------------------------------------------------------
# htpasswd


def test_basic_auth(registry_set):
    reg = registry_set.basic
    path = "/v2/busybox/manifests/latest"
    acc = {"Accept": ib.OCI_MANIFEST}
    r = reg.request("GET", path, acc, auth=None)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="crid-basic-realm"'
    r = rf.http_request("GET", reg.url + path, headers=acc, basic=("crid", "wrong"))
    assert r.status == 401
    r = rf.http_request("GET", reg.url + path, headers=acc, basic=("crid", "s3cret"))
    assert r.status == 200 and sha(r.body) == registry_set.images["busybox"].digest
    assert reg.credentials == ("crid", "s3cret")


# ---------------------------------------------------------------------------
# Bearer tokens


def _parse_challenge(value):
    scheme, _, rest = value.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', rest))


def _jwt_parts(tok):
    def dec(s):
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    h, p, _ = tok.split(".")
    return dec(h), dec(p)


def test_token_flow_end_to_end(registry_set):
    reg = registry_set.token
    ts = registry_set.token_server
    img = registry_set.images["busybox"]
    acc = {"Accept": ib.OCI_MANIFEST}
    r = reg.request("GET", "/v2/busybox/manifests/latest", acc, auth=None)
    assert r.status == 401
    scheme, params = _parse_challenge(r.headers["WWW-Authenticate"])
    assert scheme == "Bearer"
    assert params["realm"] == ts.realm
    assert params["service"] == ts.service
    assert params["scope"] == "repository:busybox:pull"

    before = ts.token_requests
    q = urllib.parse.urlencode({"service": params["service"], "scope": params["scope"]})
    anon = rf.http_request("GET", f"{params['realm']}?{q}")
    assert anon.status == 401
    bad = rf.http_request("GET", f"{params['realm']}?{q}", basic=("crid", "nope"))
    assert bad.status == 401
    t = rf.http_request("GET", f"{params['realm']}?{q}", basic=("crid", "s3cret"))
    assert t.status == 200
    assert ts.token_requests == before + 3
    body = json.loads(t.body)
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    header, claims = _jwt_parts(body["token"])
    assert header["alg"] == "RS256" and len(header["x5c"]) == 1
    assert claims["iss"] == ts.issuer and claims["aud"] == ts.service and claims["sub"] == "crid"
    assert claims["access"] == [{"type": "repository", "name": "busybox", "actions": ["pull"]}]
    assert claims["nbf"] <= claims["iat"] < claims["exp"]

    auth = {"Authorization": "Bearer " + body["token"]}
    r = reg.request("GET", "/v2/busybox/manifests/latest", dict(acc, **auth), auth=None)
    assert r.status == 200 and sha(r.body) == img.digest
    r = reg.request("GET", f"/v2/busybox/blobs/{img.layer_digests[1]}", auth, auth=None)
    assert r.status == 200 and sha(r.body) == img.layer_digests[1]

    # the token is scoped: another repository is refused
    r = reg.request("GET", "/v2/nonroot/manifests/latest", dict(acc, **auth), auth=None)
    assert r.status == 401
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    # expired tokens are refused
    old = ts.issue("crid", claims["access"], ttl=-120)
    r = reg.request("GET", "/v2/busybox/manifests/latest",
                    dict(acc, Authorization="Bearer " + old), auth=None)
    assert r.status == 401


# ---------------------------------------------------------------------------
# Log-based counters


def test_blob_get_count_counts_each_get(registry_set):
    reg = registry_set.plain
    img = registry_set.images["nonroot"]
    digest = img.layer_digests[1]
    n0 = reg.blob_get_count("nonroot", digest)
    assert reg.get_blob("nonroot", digest).status == 200
    assert reg.blob_get_count("nonroot", digest) == n0 + 1
    assert reg.get_blob("nonroot", digest).status == 200
    assert reg.blob_get_count("nonroot", digest) == n0 + 2
    # HEAD, 404s and other repositories don't count
    reg.request("HEAD", f"/v2/nonroot/blobs/{digest}")
    reg.get_blob("nonroot", "sha256:" + "1" * 64)
    reg.get_blob("busybox", digest)
    assert reg.blob_get_count("nonroot", digest) == n0 + 2

    m0 = reg.manifest_get_count("nonroot")
    reg.get_manifest("nonroot", "latest")
    reg.get_manifest("nonroot", img.digest)
    assert reg.manifest_get_count("nonroot") == m0 + 2
    assert reg.manifest_get_count("nonroot", img.digest) >= 1


def test_counts_on_token_registry(registry_set):
    reg = registry_set.token
    digest = registry_set.images["nonroot-named"].config_digest
    n0 = reg.blob_get_count("nonroot-named", digest)
    reg.request("GET", f"/v2/nonroot-named/blobs/{digest}", auth=None)  # 401: not counted
    assert reg.get_blob("nonroot-named", digest).status == 200
    assert reg.blob_get_count("nonroot-named", digest) == n0 + 1


# ---------------------------------------------------------------------------
# Separate registries, tampering


def test_tamper_blob(registry_set, separate_registry):
    reg = separate_registry()
    assert reg.storage_dir != registry_set.storage_dir
    img = registry_set.images["busybox"]
    digest = img.layer_digests[0]
    r = reg.get_blob("busybox", digest)
    assert r.status == 200 and sha(r.body) == digest
    path = reg.tamper_blob(digest)
    assert os.path.getsize(path) == img.layers[0].size
    r = reg.get_blob("busybox", digest)
    assert r.status == 200
    assert len(r.body) == img.layers[0].size
    assert sha(r.body) != digest
    # the shared storage is untouched
    r = registry_set.plain.get_blob("busybox", digest)
    assert sha(r.body) == digest


def test_separate_registry_with_tls(registry_set, separate_registry):
    reg = separate_registry(repos=("busybox", "multiarch"), tls=True)
    assert reg.url.startswith("https://")
    r = reg.get_manifest("multiarch")
    assert r.status == 200 and sha(r.body) == registry_set.images["multiarch"].digest
    pid = reg.pid
    reg.stop()
    assert reg.proc is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_start_failure_shows_log(registry_set):
    with tempfile.TemporaryDirectory(prefix="crid-reg-busy-") as d:
        reg = rf.Registry(d, "busy")
        with pytest.raises(rf.RegistryStartError) as ei:
            reg.start(os.path.join(d, "storage"), port=registry_set.plain.port)
        assert "address already in use" in str(ei.value)
        assert reg.proc is None


def test_push_skips_existing_blobs(registry_set, separate_registry):
    reg = separate_registry()
    img = registry_set.images["busybox"]
    puts0 = reg.count_requests("PUT", lambda u: "/blobs/uploads/" in u)
    rf.push(reg, "busybox", "again", img)
    rf.push(reg, "copy", "latest", img)  # cross-repository mount, no upload
    assert reg.count_requests("PUT", lambda u: "/blobs/uploads/" in u) == puts0
    r = reg.get_manifest("copy", "latest")
    assert r.status == 200 and sha(r.body) == img.digest


def test_closed_port():
    port = rf.closed_port()
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0


# ---------------------------------------------------------------------------
# Big image (benchmarks)


def test_big_image(separate_registry):
    t0 = time.monotonic()
    img = ib.big_image.__wrapped__()  # uncached: don't keep 100 MB for the session
    build_s = time.monotonic() - t0
    size = sum(l.size for l in img.layers)
    assert len(img.layers) == 4
    assert 95_000_000 <= size <= 110_000_000, size
    assert build_s < 20, build_s
    # incompressible: gzip -1 does not shrink it
    assert all(l.size >= 25_000_000 for l in img.layers)
    t1 = time.monotonic()
    reg = separate_registry(repos=())
    rf.push(reg, "big", "latest", img)
    push_s = time.monotonic() - t1
    r = reg.get_blob("big", img.layer_digests[3])
    assert sha(r.body) == img.layer_digests[3]
    print(f"big image: {size / 1e6:.1f} MB, build {build_s:.1f}s, push {push_s:.1f}s")
