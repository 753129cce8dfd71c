"""Build OCI / Docker schema 2 images as blobs, in memory, for crid's tests.

Nothing here talks to the network; registry_fixtures.py pushes what is built
here into real docker-registry processes.

Building blocks
    File, Dir, Symlink, Hardlink, Whiteout, Opaque, Raw   tar entries
    Layer(entries, compression="gzip"|"zstd"|"none", level=None)
        .blob, .digest, .size, .diff_id, .tar_bytes(), .members(),
        .media_type(docker=False)
    Layer.from_bytes(data, media_type)    a non-tar blob (e.g. in-toto JSON)
    Image(layers, cmd=, entrypoint=, env=, user=, working_dir=, architecture=,
          os=, variant=, docker=False, labels=, annotations=, config_extra=)
        .config_bytes, .config_digest (= .image_id), .manifest_bytes,
        .digest, .media_type, .layer_digests, .diff_ids, .blobs(),
        .descriptor(platform=None), .platform
    Index(entries, docker=False, attestations=())
        .manifest_bytes, .digest, .media_type, .images, .image_for(arch, ...)
    write_oci_layout(obj, path, ref_name="latest")

Standard set
    standard_images()  -> dict repo-name -> Image | Index (built once, cached)
    big_image()        -> ~100 MB Image of incompressible layers (cached)
    BUSYBOX_EXPECTED   what the merged busybox rootfs must / must not contain

Everything is deterministic: fixed mtimes, uid/gid 0 unless asked, gzip with
mtime 0, the zstd CLI, seeded PRNG for big_image(); digests are the same in
every run on the same host (the busybox binary is copied from the host).
"""

import functools
import gzip
import hashlib
import io
import json
import os
import platform as _platform
import random
import shutil
import subprocess
import tarfile

FIXED_MTIME = 1700000000  # 2023-11-14T22:13:20Z
CREATED = "2023-11-14T22:13:20Z"

# ---------------------------------------------------------------------------
# Media types

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"  # not official

IN_TOTO = "application/vnd.in-toto+json"

# Accept header value listing every manifest type built here.
ALL_MANIFEST_TYPES = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])

_LAYER_TYPES = {
    (False, "gzip"): OCI_LAYER_GZIP,
    (False, "zstd"): OCI_LAYER_ZSTD,
    (False, "none"): OCI_LAYER,
    (True, "gzip"): DOCKER_LAYER_GZIP,
    (True, "zstd"): DOCKER_LAYER_ZSTD,
    (True, "none"): DOCKER_LAYER,
}


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    """Compact JSON with the dict's own key order (deterministic for our dicts)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def host_arch():
    """The host's architecture in OCI/Go spelling (amd64, arm64, ...)."""
    m = _platform.machine().lower()
    return {
        "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
        "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
        "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
    }.get(m, m)


# ---------------------------------------------------------------------------
# Compression


def compress(data, compression, level=None):
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6 if level is None else level, mtime=0)
    if compression == "zstd":
        if shutil.which("zstd") is None:
            raise RuntimeError("zstd CLI not found (apt-get install zstd)")
        lvl = 3 if level is None else level
        r = subprocess.run(["zstd", "-q", "-c", f"-{lvl}", "-T1"], input=data,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"zstd failed: {r.stderr.decode(errors='replace')}")
        return r.stdout
    if compression == "none":
        return bytes(data)
    raise ValueError(f"unknown compression {compression!r}")


def decompress(blob, compression):
    if compression == "gzip":
        return gzip.decompress(blob)
    if compression == "zstd":
        r = subprocess.run(["zstd", "-q", "-d", "-c"], input=blob, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"zstd -d failed: {r.stderr.decode(errors='replace')}")
        return r.stdout
    if compression == "none":
        return bytes(blob)
    raise ValueError(f"unknown compression {compression!r}")


# ---------------------------------------------------------------------------
# Tar entries


def _clean(path):
    """'/bin/sh' -> 'bin/sh' (what image layers normally hold)."""
    p = path.lstrip("/")
    while p.startswith("./"):
        p = p[2:]
    return p.rstrip("/") if p not in ("", "/") else p


class Entry:
    """Base class: to_tar() returns (TarInfo, data-bytes-or-None)."""

    def to_tar(self):
        raise NotImplementedError


def _info(name, type_, mode, uid, gid, mtime):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    ti.uid = uid
    ti.gid = gid
    ti.uname = ""
    ti.gname = ""
    ti.mtime = mtime
    return ti


class File(Entry):
    def __init__(self, path, content=b"", mode=0o644, uid=0, gid=0, mtime=FIXED_MTIME):
        if isinstance(content, str):
            content = content.encode()
        self.path, self.content, self.mode = path, bytes(content), mode
        self.uid, self.gid, self.mtime = uid, gid, mtime

    def to_tar(self):
        ti = _info(_clean(self.path), tarfile.REGTYPE, self.mode, self.uid, self.gid, self.mtime)
        ti.size = len(self.content)
        return ti, self.content


class Dir(Entry):
    def __init__(self, path, mode=0o755, uid=0, gid=0, mtime=FIXED_MTIME):
        self.path, self.mode, self.uid, self.gid, self.mtime = path, mode, uid, gid, mtime

    def to_tar(self):
        return _info(_clean(self.path), tarfile.DIRTYPE, self.mode, self.uid, self.gid,
                     self.mtime), None


class Symlink(Entry):
    """Symlink(path, target): target is stored verbatim (may be absolute or ../)."""

    def __init__(self, path, target, uid=0, gid=0, mtime=FIXED_MTIME):
        self.path, self.target, self.uid, self.gid, self.mtime = path, target, uid, gid, mtime

    def to_tar(self):
        ti = _info(_clean(self.path), tarfile.SYMTYPE, 0o777, self.uid, self.gid, self.mtime)
        ti.linkname = self.target
        return ti, None


class Hardlink(Entry):
    """Hardlink(path, target): target is stored verbatim (normally an earlier
    entry's name, e.g. 'bin/busybox'; crafted layers put '../x' or '/x')."""

    def __init__(self, path, target, mode=0o644, uid=0, gid=0, mtime=FIXED_MTIME):
        self.path, self.target, self.mode = path, target, mode
        self.uid, self.gid, self.mtime = uid, gid, mtime

    def to_tar(self):
        ti = _info(_clean(self.path), tarfile.LNKTYPE, self.mode, self.uid, self.gid, self.mtime)
        ti.linkname = self.target
        return ti, None


class Whiteout(File):
    """Whiteout('/data/removed.txt') -> empty file 'data/.wh.removed.txt'."""

    def __init__(self, path, mtime=FIXED_MTIME):
        p = _clean(path)
        d, base = os.path.split(p)
        super().__init__(os.path.join(d, ".wh." + base), b"", 0o644, 0, 0, mtime)


class Opaque(File):
    """Opaque('/data/olddir') -> empty file 'data/olddir/.wh..wh..opq'."""

    def __init__(self, dirpath, mtime=FIXED_MTIME):
        super().__init__(os.path.join(_clean(dirpath), ".wh..wh..opq"), b"", 0o644, 0, 0, mtime)


class Raw(Entry):
    """A TarInfo written as is (its name is NOT cleaned), for crafted entries."""

    def __init__(self, tarinfo, data=None):
        self.tarinfo, self.data = tarinfo, data

    def to_tar(self):
        if self.data is not None:
            self.tarinfo.size = len(self.data)
        return self.tarinfo, self.data


def raw_file(name, content=b"", mode=0o644, type_=tarfile.REGTYPE, linkname="",
             uid=0, gid=0, mtime=FIXED_MTIME):
    """Convenience: Raw entry with an arbitrary (uncleaned) name."""
    if isinstance(content, str):
        content = content.encode()
    ti = _info(name, type_, mode, uid, gid, mtime)
    ti.linkname = linkname
    return Raw(ti, content if type_ in (tarfile.REGTYPE, tarfile.AREGTYPE) else None)


def build_tar(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            ti, data = e.to_tar()
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# Layer


class Layer:
    """One layer blob.

    Layer(entries, compression="gzip", level=None)  builds a tar of entries
    Layer.from_tar(tar_bytes, compression=...)        wraps a ready tar
    Layer.from_bytes(data, media_type)                 non-tar blob, stored as is

    Attributes: blob (bytes as served by the registry), digest, size, diff_id
    (sha256 of the uncompressed tar), compression, tar_bytes() (decompressed),
    members() (list of TarInfo), media_type(docker=False)."""

    def __init__(self, entries=None, compression="gzip", level=None, *, _tar=None,
                 _blob=None, _media_type=None, comment=None):
        self.compression = compression
        self.comment = comment
        self._fixed_media_type = _media_type
        if _blob is not None:
            self.blob = bytes(_blob)
            self.diff_id = sha256_digest(self.blob)
        else:
            tar = build_tar(entries or []) if _tar is None else _tar
            self.diff_id = sha256_digest(tar)
            self.blob = compress(tar, compression, level)
            self.uncompressed_size = len(tar)
        self.digest = sha256_digest(self.blob)
        self.size = len(self.blob)

    @classmethod
    def from_tar(cls, tar_bytes, compression="gzip", level=None, comment=None):
        return cls(compression=compression, level=level, _tar=tar_bytes, comment=comment)

    @classmethod
    def from_bytes(cls, data, media_type, comment=None):
        return cls(compression="none", _blob=data, _media_type=media_type, comment=comment)

    def media_type(self, docker=False):
        if self._fixed_media_type:
            return self._fixed_media_type
        return _LAYER_TYPES[(bool(docker), self.compression)]

    def tar_bytes(self):
        return decompress(self.blob, self.compression)

    def members(self):
        with tarfile.open(fileobj=io.BytesIO(self.tar_bytes()), mode="r:") as tf:
            return tf.getmembers()

    def names(self):
        return [m.name for m in self.members()]

    def descriptor(self, docker=False):
        return {"mediaType": self.media_type(docker), "digest": self.digest, "size": self.size}

    def __repr__(self):
        return f"<Layer {self.digest[:19]} {self.size}B {self.compression}>"


# ---------------------------------------------------------------------------
# Image


class Image:
    """An image: layers + config -> config blob + manifest.

    docker=False: OCI manifest/config media types; docker=True: Docker schema 2.
    Attributes (computed once): config (dict), config_bytes, config_digest,
    image_id (= config_digest), manifest (dict), manifest_bytes, digest
    (manifest digest), media_type, config_media_type, layer_digests,
    diff_ids, platform (dict), blobs() -> {digest: bytes} (config + layers)."""

    def __init__(self, layers, *, cmd=None, entrypoint=None, env=None, user=None,
                 working_dir=None, architecture=None, os="linux", variant=None,
                 docker=False, labels=None, annotations=None, config_extra=None,
                 raw_config=None, config_media_type=None, name=None):
        self.layers = list(layers)
        self.docker = bool(docker)
        self.name = name
        self.architecture = architecture or host_arch()
        self.os = os
        self.variant = variant
        self.annotations = annotations
        self.config_media_type = config_media_type or (DOCKER_CONFIG if docker else OCI_CONFIG)
        if raw_config is not None:
            self.config = raw_config
        else:
            cfg = {}
            if user is not None:
                cfg["User"] = user
            if env is not None:
                cfg["Env"] = list(env)
            if entrypoint is not None:
                cfg["Entrypoint"] = list(entrypoint)
            if cmd is not None:
                cfg["Cmd"] = list(cmd)
            if working_dir is not None:
                cfg["WorkingDir"] = working_dir
            if labels:
                cfg["Labels"] = dict(labels)
            if config_extra:
                cfg.update(config_extra)
            c = {"created": CREATED, "author": "crid test fixtures",
                 "architecture": self.architecture, "os": self.os}
            if variant:
                c["variant"] = variant
            c["config"] = cfg
            c["rootfs"] = {"type": "layers", "diff_ids": [l.diff_id for l in self.layers]}
            c["history"] = [{"created": CREATED,
                             "created_by": l.comment or f"crid fixture layer {i}"}
                            for i, l in enumerate(self.layers)]
            self.config = c
        self.config_bytes = canonical_json(self.config)
        self.config_digest = sha256_digest(self.config_bytes)
        self.image_id = self.config_digest
        self.media_type = DOCKER_MANIFEST if self.docker else OCI_MANIFEST
        m = {"schemaVersion": 2, "mediaType": self.media_type,
             "config": {"mediaType": self.config_media_type, "digest": self.config_digest,
                        "size": len(self.config_bytes)},
             "layers": [l.descriptor(self.docker) for l in self.layers]}
        if annotations and not self.docker:
            m["annotations"] = dict(annotations)
        self.manifest = m
        self.manifest_bytes = canonical_json(m)
        self.digest = sha256_digest(self.manifest_bytes)

    @property
    def layer_digests(self):
        return [l.digest for l in self.layers]

    @property
    def diff_ids(self):
        return [l.diff_id for l in self.layers]

    @property
    def platform(self):
        p = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            p["variant"] = self.variant
        return p

    @property
    def size(self):
        """Sum of the compressed layer sizes plus config (what a pull downloads)."""
        return sum(l.size for l in self.layers) + len(self.config_bytes)

    def blobs(self):
        out = {self.config_digest: self.config_bytes}
        for l in self.layers:
            out[l.digest] = l.blob
        return out

    def descriptor(self, platform=None, annotations=None):
        d = {"mediaType": self.media_type, "digest": self.digest,
             "size": len(self.manifest_bytes)}
        if annotations:
            d["annotations"] = dict(annotations)
        if platform is not False:
            d["platform"] = dict(platform or self.platform)
        return d

    def expected(self):
        """Digests for assertions."""
        return {"manifest_digest": self.digest, "media_type": self.media_type,
                "config_digest": self.config_digest, "image_id": self.image_id,
                "layer_digests": self.layer_digests, "diff_ids": self.diff_ids,
                "size": self.size}

    def __repr__(self):
        return f"<Image {self.name or ''} {self.digest[:19]} {self.media_type}>"


class Index:
    """OCI image index (docker=False) or Docker manifest list (docker=True).

    entries: list of Image or (Image, platform-dict) pairs (platform defaults
    to the image's). attestations: list of (attestation_image, for_image);
    each becomes an entry with platform unknown/unknown and the BuildKit
    annotations vnd.docker.reference.{type,digest}."""

    def __init__(self, entries, docker=False, attestations=(), annotations=None, name=None):
        self.docker = bool(docker)
        self.name = name
        self.media_type = DOCKER_MANIFEST_LIST if self.docker else OCI_INDEX
        self.entries = []  # (image, descriptor)
        for e in entries:
            img, plat = (e if isinstance(e, tuple) else (e, None))
            self.entries.append((img, img.descriptor(plat)))
        for att, target in attestations:
            desc = att.descriptor({"architecture": "unknown", "os": "unknown"}, annotations={
                "vnd.docker.reference.digest": target.digest,
                "vnd.docker.reference.type": "attestation-manifest"})
            self.entries.append((att, desc))
        m = {"schemaVersion": 2, "mediaType": self.media_type,
             "manifests": [d for _, d in self.entries]}
        if annotations and not self.docker:
            m["annotations"] = dict(annotations)
        self.manifest = m
        self.manifest_bytes = canonical_json(m)
        self.digest = sha256_digest(self.manifest_bytes)

    @property
    def images(self):
        return [img for img, _ in self.entries]

    def image_for(self, architecture, os="linux", variant=None):
        for img, d in self.entries:
            p = d.get("platform", {})
            if p.get("architecture") == architecture and p.get("os") == os and (
                    variant is None or p.get("variant") == variant):
                return img
        raise KeyError(f"no {os}/{architecture}/{variant} in index")

    def blobs(self):
        out = {}
        for img in self.images:
            out.update(img.blobs())
        return out

    def expected(self):
        return {"manifest_digest": self.digest, "media_type": self.media_type,
                "manifests": [dict(d, **{"image": img.expected()}) for img, d in self.entries]}

    def __repr__(self):
        return f"<Index {self.name or ''} {self.digest[:19]} {len(self.entries)} entries>"


def write_oci_layout(obj, path, ref_name="latest"):
    """Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...)."""
    bdir = os.path.join(path, "blobs", "sha256")
    os.makedirs(bdir, exist_ok=True)

    def put(digest, data):
        p = os.path.join(bdir, digest.split(":", 1)[1])
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(data)

    images = obj.images if isinstance(obj, Index) else [obj]
    for img in images:
        for d, data in img.blobs().items():
            put(d, data)
        put(img.digest, img.manifest_bytes)
    if isinstance(obj, Index):
        put(obj.digest, obj.manifest_bytes)
    desc = {"mediaType": obj.media_type, "digest": obj.digest, "size": len(obj.manifest_bytes),
            "annotations": {"org.opencontainers.image.ref.name": ref_name}}
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(path, "index.json"), "wb") as f:
        f.write(canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]}))
    return path


# ---------------------------------------------------------------------------
# The standard image set

BUSYBOX_PATH = "/bin/busybox"
BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "sleep", "id", "env", "true", "false")
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\n"

# What the busybox rootfs (all three layers applied) must and must not hold.
BUSYBOX_EXPECTED = {
    "present": ["bin/busybox", "bin/sh", "bin/suid", "etc/passwd", "etc/group",
                "data/kept.txt", "data/olddir/new.txt", "tmp"],
    "absent": ["data/removed.txt", "data/.wh.removed.txt", "data/olddir/old.txt",
               "data/olddir/.wh..wh..opq"],
    "modes": {"bin/busybox": 0o755, "tmp": 0o1777, "bin/suid": 0o4755},
    "contents": {"data/kept.txt": b"kept\n", "data/olddir/new.txt": b"new\n",
                 "etc/passwd": PASSWD.encode(), "bin/suid": b"x"},
}


def _busybox_bytes():
    with open(BUSYBOX_PATH, "rb") as f:
        return f.read()


def busybox_entries():
    """Entries of the three busybox layers: [layer1, layer2, layer3]."""
    l1 = [Dir("/bin"), File("/bin/busybox", _busybox_bytes(), 0o755)]
    l1 += [Symlink(f"/bin/{a}", "busybox") for a in BUSYBOX_APPLETS]
    l1 += [Dir("/etc"), Dir("/tmp", 0o1777), Dir("/data")]
    l2 = [Dir("/etc"), File("/etc/passwd", PASSWD), File("/etc/group", GROUP),
          Dir("/home"), Dir("/home/app", 0o755, uid=1000, gid=1000),
          Dir("/data"), File("/data/removed.txt", "removed\n"),
          Dir("/data/olddir"), File("/data/olddir/old.txt", "old\n"),
          File("/data/kept.txt", "kept\n"),
          Dir("/bin"), File("/bin/suid", "x", 0o4755)]
    l3 = [Dir("/data"), Whiteout("/data/removed.txt"),
          Dir("/data/olddir"), Opaque("/data/olddir"), File("/data/olddir/new.txt", "new\n")]
    return [l1, l2, l3]


@functools.lru_cache(maxsize=None)
def busybox_layers(compression="gzip"):
    names = ["busybox binary and applets", "passwd, group, data files",
             "whiteouts and opaque dir"]
    return tuple(Layer(e, compression, comment=n) for e, n in zip(busybox_entries(), names))


def _platform_layer(arch):
    return Layer([File("/platform", arch + "\n")], comment=f"platform {arch}")


def _attestation_image():
    stmt = canonical_json({"_type": "https://in-toto.io/Statement/v0.1",
                           "predicateType": "https://spdx.dev/Document",
                           "subject": [], "predicate": {"note": "crid test attestation"}})
    layer = Layer.from_bytes(stmt, IN_TOTO, comment="attestation")
    cfg = {"architecture": "unknown", "os": "unknown", "config": {},
           "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}
    return Image([layer], raw_config=cfg, architecture="unknown", os="unknown",
                 name="attestation")


EVIL_ENTRIES = {
    "evil-dotdot": lambda: [raw_file("../escape-dotdot", "escaped\n")],
    "evil-abs": lambda: [raw_file("/abs-escape", "escaped\n")],
    "evil-symlink": lambda: [Symlink("link", "/"), File("link/tmp/escape-symlink", "escaped\n")],
    "evil-symlink-rel": lambda: [Symlink("up", "../../.."), File("up/escape-rel", "escaped\n")],
    "evil-hardlink": lambda: [raw_file("hl", type_=tarfile.LNKTYPE, linkname="../../etc/passwd")],
    "evil-hardlink-abs": lambda: [raw_file("hl", type_=tarfile.LNKTYPE, linkname="/etc/passwd")],
}


def _multiarch_pair(docker):
    """(runnable_image, other_image, other_platform) — busybox goes to the
    host's architecture if it is amd64 or arm64, so the runnable entry runs."""
    base = list(busybox_layers("gzip"))
    env = [DEFAULT_PATH_ENV]
    arches = [("amd64", None), ("arm64", "v8")]
    host = host_arch()
    out = []
    for arch, variant in arches:
        runnable = (arch == host) or (host not in ("amd64", "arm64") and arch == "amd64")
        layers = (base if runnable else []) + [_platform_layer(arch)]
        out.append(Image(layers, cmd=["/bin/sh"], env=env, architecture=arch, variant=variant,
                         docker=docker, name=f"multiarch-{arch}"))
    return out


@functools.lru_cache(maxsize=None)
def standard_images():
    """dict repo -> Image/Index, all pushed under tag 'latest' by RegistrySet."""
    env = [DEFAULT_PATH_ENV]
    gz = list(busybox_layers("gzip"))
    zs = list(busybox_layers("zstd"))
    imgs = {}
    imgs["busybox"] = Image(gz, cmd=["/bin/sh"], env=env, name="busybox")
    imgs["busybox-zstd"] = Image(zs, cmd=["/bin/sh"], env=env, name="busybox-zstd")
    imgs["nonroot"] = Image(gz, cmd=["/bin/sh"], env=env, user="1000", name="nonroot")
    imgs["nonroot-named"] = Image(gz, cmd=["/bin/sh"], env=env, user="app", name="nonroot-named")
    amd, arm = _multiarch_pair(docker=False)
    att = _attestation_image()
    imgs["multiarch"] = Index([amd, arm], attestations=[(att, amd)], name="multiarch")
    damd, darm = _multiarch_pair(docker=True)
    imgs["multiarch-docker"] = Index([damd, darm], docker=True, name="multiarch-docker")
    imgs["docker-v2"] = Image(gz, cmd=["/bin/sh"], env=env, docker=True, name="docker-v2")
    for name, mk in EVIL_ENTRIES.items():
        imgs[name] = Image([gz[0], Layer(mk(), comment=name)], cmd=["/bin/sh"], env=env,
                           name=name)
    return imgs


@functools.lru_cache(maxsize=None)
def big_image(layers=4, layer_size=25_000_000, level=1, seed=0xC41D, with_busybox=False):
    """About layers*layer_size bytes of incompressible (seeded PRNG) data,
    gzip level 1, one file /big/blobN per layer; ~100 MB by default.
    with_busybox=True puts busybox layer 1 underneath (runnable image)."""
    rng = random.Random(seed)
    ls = [busybox_layers("gzip")[0]] if with_busybox else []
    for i in range(layers):
        data = rng.randbytes(layer_size)
        ls.append(Layer([Dir("/big"), File(f"/big/blob{i}", data)], "gzip", level,
                        comment=f"big {i}"))
        del data
    return Image(ls, cmd=["/bin/sh"] if with_busybox else None, env=[DEFAULT_PATH_ENV],
                 name="big")

