#!/usr/bin/python3
"""Writes the seed corpora of crid's libFuzzer targets (tests/fuzz/corpus/
<target>/) from what the tests send: the integration tests' image builder
(layers, manifests, indexes, configs), CRI requests like the kubelet's and
the tests' (through the generated protobuf classes), HTTP/2 sessions of a
gRPC client, references, challenges, configuration files and CDI specs.

Run by hand when the formats change: /usr/bin/python3 tests/fuzz/make_seeds.py
The corpora it writes are committed; make fuzz adds what the fuzzers find
under build/fuzz/corpus instead."""

import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import image_builder as ib  # noqa: E402


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def load_api():
    out = tempfile.mkdtemp(prefix="crid-seeds-")
    subprocess.run(["protoc", f"--python_out={out}", f"-I{REPO}/proto",
                    f"{REPO}/proto/runtime/v1/api.proto"], check=True)
    sys.path.insert(0, out)
    import importlib
    return importlib.import_module("runtime.v1.api_pb2"), out


# ---------------------------------------------------------------------------
# CRI requests


def sample_requests(a):
    pod = a.PodSandboxConfig(
        metadata=a.PodSandboxMetadata(name="web", uid="8d6e5c1a-uid", namespace="default", attempt=1),
        hostname="web-0", log_directory="/var/log/pods/default_web_uid",
        labels={"app": "web", "io.kubernetes.pod.name": "web"},
        annotations={"kubernetes.io/config.seen": "2024-01-01T00:00:00Z"},
        dns_config=a.DNSConfig(servers=["10.96.0.10"], searches=["default.svc.cluster.local"],
                               options=["ndots:5"]),
        port_mappings=[a.PortMapping(protocol=a.TCP, container_port=80, host_port=8080)])
    pod.linux.cgroup_parent = "/kubepods/besteffort/pod8d6e"
    pod.linux.sysctls["net.ipv4.ip_forward"] = "1"
    ns = pod.linux.security_context.namespace_options
    ns.network, ns.pid, ns.ipc = a.POD, a.CONTAINER, a.POD
    ctr = a.ContainerConfig(
        metadata=a.ContainerMetadata(name="nginx", attempt=0),
        image=a.ImageSpec(image="docker.io/library/nginx:1.25"),
        command=["/bin/sh", "-c"], args=["echo hi; sleep 1000"], working_dir="/srv",
        envs=[a.KeyValue(key="A", value=b"1" if _bytes_value(a) else "1")],
        mounts=[a.Mount(container_path="/data", host_path="/var/lib/data", readonly=True)],
        devices=[a.Device(container_path="/dev/fuse", host_path="/dev/fuse", permissions="rwm")],
        labels={"io.kubernetes.container.name": "nginx"}, annotations={"hash": "abc"},
        log_path="nginx/0.log", stdin=True, tty=False)
    r = ctr.linux.resources
    r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes = 512, 50000, 100000, 64 << 20
    r.oom_score_adj = 1000
    sc = ctr.linux.security_context
    sc.run_as_user.value = 1000
    sc.run_as_group.value = 1000
    sc.readonly_rootfs = True
    sc.capabilities.add_capabilities.append("NET_ADMIN")
    sc.capabilities.drop_capabilities.append("ALL")
    sc.no_new_privs = True
    sc.supplemental_groups.extend([5, 6])
    out = {
        "Version": a.VersionRequest(version="0.1.0"),
        "RunPodSandbox": a.RunPodSandboxRequest(config=pod, runtime_handler="runc"),
        "StopPodSandbox": a.StopPodSandboxRequest(pod_sandbox_id="ab" * 32),
        "RemovePodSandbox": a.RemovePodSandboxRequest(pod_sandbox_id="ab" * 32),
        "PodSandboxStatus": a.PodSandboxStatusRequest(pod_sandbox_id="ab", verbose=True),
        "ListPodSandbox": a.ListPodSandboxRequest(filter=a.PodSandboxFilter(
            id="ab", state=a.PodSandboxStateValue(state=a.SANDBOX_READY), label_selector={"app": "web"})),
        "CreateContainer": a.CreateContainerRequest(pod_sandbox_id="ab" * 32, config=ctr, sandbox_config=pod),
        "StartContainer": a.StartContainerRequest(container_id="cd" * 32),
        "StopContainer": a.StopContainerRequest(container_id="cd" * 32, timeout=10),
        "RemoveContainer": a.RemoveContainerRequest(container_id="cd" * 32),
        "ListContainers": a.ListContainersRequest(filter=a.ContainerFilter(
            pod_sandbox_id="ab", state=a.ContainerStateValue(state=a.CONTAINER_RUNNING))),
        "ContainerStatus": a.ContainerStatusRequest(container_id="cd", verbose=True),
        "UpdateContainerResources": a.UpdateContainerResourcesRequest(container_id="cd" * 32,
                                                                      linux=r),
        "ReopenContainerLog": a.ReopenContainerLogRequest(container_id="cd"),
        "ExecSync": a.ExecSyncRequest(container_id="cd", cmd=["sh", "-c", "echo hi"], timeout=5),
        "Status": a.StatusRequest(verbose=True),
        "UpdateRuntimeConfig": a.UpdateRuntimeConfigRequest(runtime_config=a.RuntimeConfig(
            network_config=a.NetworkConfig(pod_cidr="10.244.0.0/24,fd00::/64"))),
        "ListImages": a.ListImagesRequest(filter=a.ImageFilter(image=a.ImageSpec(image="busybox"))),
        "ImageStatus": a.ImageStatusRequest(image=a.ImageSpec(image="busybox:1.36"), verbose=True),
        "PullImage": a.PullImageRequest(image=a.ImageSpec(image="registry.local:5000/app@sha256:" + "0" * 64),
                                        auth=a.AuthConfig(username="u", password="p"), sandbox_config=pod),
        "RemoveImage": a.RemoveImageRequest(image=a.ImageSpec(image="busybox:1.29-2")),
    }
    return out, pod


def _bytes_value(a):
    from google.protobuf.descriptor import FieldDescriptor
    return a.KeyValue.DESCRIPTOR.fields_by_name["value"].type == FieldDescriptor.TYPE_BYTES


def request_seeds(a):
    samples, _ = sample_requests(a)
    methods = []
    for svc in ("RuntimeService", "ImageService"):
        methods += [(svc, m) for m in a.DESCRIPTOR.services_by_name[svc].methods]
    for i, (svc, m) in enumerate(methods):
        msg = samples.get(m.name)
        if msg is None:
            msg = getattr(a, m.input_type.name)()
        write("request", f"{i:02d}-{m.name}", bytes([i]) + msg.SerializeToString())
    return samples


# ---------------------------------------------------------------------------
# HTTP/2 sessions of a gRPC client


def grpc_session(calls, end=True):
    import h2.config
    import h2.connection
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    for path, payload in calls:
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", path),
                             (":authority", "/run/crid/crid.sock"), ("content-type", "application/grpc"),
                             ("te", "trailers"), ("grpc-timeout", "10S")], end_stream=False)
        c.send_data(sid, struct.pack(">BI", 0, len(payload)) + payload, end_stream=end)
    return c.data_to_send()


def grpc_seeds(samples):
    v = samples["Version"].SerializeToString()
    write("grpc", "version", grpc_session([("/runtime.v1.RuntimeService/Version", v)]))
    write("grpc", "version-v1alpha2", grpc_session([("/runtime.v1alpha2.RuntimeService/Version", v)]))
    write("grpc", "stream-images", grpc_session([("/runtime.v1.ImageService/StreamImages", b"")]))
    write("grpc", "two-calls", grpc_session([("/runtime.v1.RuntimeService/Version", v),
                                             ("/runtime.v1.RuntimeService/ListPodSandbox", b"")]))
    write("grpc", "unended", grpc_session([("/runtime.v1.RuntimeService/Version", v)], end=False))
    write("grpc", "unknown-method", grpc_session([("/runtime.v1.RuntimeService/NoSuch", b"")]))
    write("grpc", "bad-utf8", grpc_session([("/runtime.v1.RuntimeService/RunPodSandbox",
                                             b"\x0a\x06\x0a\x04p\xff\xfeq")]))
    write("grpc", "http1", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    write("grpc", "preface-only", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")


# ---------------------------------------------------------------------------
# Images


def image_seeds():
    imgs = ib.standard_images()
    busybox = imgs["busybox"]
    write("manifest", "oci-manifest", b"\x01" + busybox.manifest_bytes)
    write("manifest", "docker-manifest", b"\x03" + imgs["docker-v2"].manifest_bytes)
    write("manifest", "oci-index", b"\x02" + imgs["multiarch"].manifest_bytes)
    write("manifest", "docker-list", b"\x04" + imgs["multiarch-docker"].manifest_bytes)
    write("manifest", "untyped-index", b"\x00" + imgs["multiarch"].manifest_bytes)
    write("manifest", "config", b"\x80" + busybox.config_bytes)
    write("manifest", "config-nonroot", b"\x80" + imgs["nonroot-named"].config_bytes)
    layers = list(ib.busybox_layers("gzip"))[1:] + list(ib.busybox_layers("zstd"))[1:]
    for i, lay in enumerate(layers):
        write("unpack", f"busybox-{i}-{lay.compression}", lay.blob)
    for name, mk in ib.EVIL_ENTRIES.items():
        write("unpack", name, ib.Layer(mk()).blob)
    plain = ib.Layer([ib.Dir("/etc"), ib.File("/etc/x", "x\n"), ib.Symlink("/etc/l", "x"),
                      ib.Hardlink("/etc/h", "/etc/x")], compression="none")
    write("unpack", "plain-tar", plain.blob)
    write("unpack", "empty", b"")


def reference_seeds():
    refs = ["busybox", "busybox:1.36", "docker.io/library/busybox:latest", "localhost:5000/a/b:c",
            "[::1]:5000/x@sha256:" + "a" * 64, "registry.k8s.io/pause:3.9", "a/b/c/d:tag@sha256:" + "b" * 64,
            "sha256:" + "c" * 64, "UPPER/case", "x:", "x@sha256:short", "127.0.0.1:5000/busybox:t0",
            "busybox:1.29-2", "ghcr.io/o/p_q-r.s:v1.2.3"]
    for i, r in enumerate(refs):
        write("reference", f"ref-{i:02d}", r)


def challenge_seeds():
    heads = ['Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
             'scope="repository:library/busybox:pull"',
             'Basic realm="Registry Realm"',
             'bearer realm=http://127.0.0.1:5001/token, service=crid-test-registry',
             'Bearer realm="a\\"b", error="invalid_token"',
             'Negotiate abc==, Basic realm="x"',
             'Bearer   realm = "x" ,, scope="a b"']
    for i, h in enumerate(heads):
        write("challenge", f"challenge-{i}", h)


def config_seeds():
    with open(os.path.join(REPO, "packaging", "crid.yaml")) as f:
        text = f.read()
    write("config", "packaged", text)
    # The packaged file with every setting uncommented.
    unc = "\n".join(ln[1:] if re.match(r"#[a-z_]+:|#  ", ln) else ln for ln in text.splitlines())
    write("config", "packaged-uncommented", unc)
    write("config", "registries", """registries:
  - host: docker.io
    mirrors:
      - url: https://mirror.local:5443
      - url: http://10.0.0.5:5000/hub
    mirrors_only: true
  - host: registry.local:5000
    insecure: true
pinned_images: [registry.k8s.io/pause:3.9, busybox]
runtimes:
  crun: {path: /usr/bin/crun}
  runsc: {path: runsc}
default_runtime: crun
""")
    write("config", "numbers", "grpc_max_pending_bytes: 65536\npull_min_bytes_per_s: 0\n"
                               "state_free_reserve_bytes: 0\nworker_threads: 1024\n")
    write("config", "anchors", "a: &x {b: 1}\nc: *x\n")


def cdi_seeds():
    """CDI spec files: the first byte chooses JSON (0) or YAML (1)."""
    write("cdi", "json-full", b"\x00" + b"""{"cdiVersion": "0.7.0", "kind": "vendor.com/dev",
 "annotations": {"a": "b"},
 "containerEdits": {"env": ["SPEC=1"], "hooks": [{"hookName": "createContainer",
   "path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}]},
 "devices": [
  {"name": "null", "containerEdits": {"deviceNodes": [{"path": "/dev/n", "hostPath": "/dev/null",
    "permissions": "rw", "fileMode": 416, "uid": 1, "gid": 2}],
    "mounts": [{"hostPath": "/tmp", "containerPath": "/t", "type": "bind", "options": ["ro"]}],
    "additionalGids": [5], "intelRdt": {"closID": "c", "enableMBM": true}}},
  {"name": "blk", "containerEdits": {"deviceNodes": [{"path": "/dev/b", "type": "b", "major": 7,
    "minor": 0}, {"path": "/dev/f", "type": "p"}]}}]}
""")
    write("cdi", "yaml-full", b"\x01" + b"""cdiVersion: 0.5.0
kind: vendor.com/gpu
devices:
  - name: "0"
    containerEdits:
      env: [GPU=0]
      deviceNodes:
        - {path: /dev/g0, hostPath: /dev/zero, fileMode: 0640}
  - name: all
    containerEdits: {env: ['ALL=1']}
""")
    write("cdi", "yaml-anchors", b"\x01cdiVersion: 0.6.0\nkind: a.b/c\ncontainerEdits: &e {env: [A=1]}\n"
                                b"devices: [{name: a, containerEdits: *e}]\n")


def main():
    corpus = os.path.join(HERE, "corpus")
    shutil.rmtree(corpus, ignore_errors=True)
    a, tmp = load_api()
    try:
        samples = request_seeds(a)
        grpc_seeds(samples)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    image_seeds()
    reference_seeds()
    challenge_seeds()
    config_seeds()
    cdi_seeds()
    total = sum(len(files) for _, _, files in os.walk(corpus))
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(corpus) for f in fs)
    print(f"wrote {total} seeds, {size} bytes, under {corpus}")


if __name__ == "__main__":
    main()
