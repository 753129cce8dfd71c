"""Hardening against hostile clients: strings that are not UTF-8 or hold a
NUL byte are refused naming the field (they used to be stored and echoed,
breaking every later list for grpc-python and grpc-go, or cut short:
RemoveImage of "busybox:1.29-2\\0evil" removed the real tag), labels and
annotations are capped so that lists always fit in one response, and
ExecSync output beyond what a response can carry is truncated rather than
refused, with bounded memory.

Raw request bytes go through grpc-python with an identity serializer;
Version is asked at the end of each case."""

import threading
import time

import grpc
import pytest

import pod_helpers as ph
from conftest import load_api
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401
from test_go_client import assert_ok, criclient, run_client  # noqa: F401
from test_images import images_daemon, pull, list_images  # noqa: F401

RT = "/runtime.v1.RuntimeService/"
IMG = "/runtime.v1.ImageService/"


def pod_request(name="pod", labels=None, annotations=None):
    a = load_api()
    return a.RunPodSandboxRequest(config=a.PodSandboxConfig(
        metadata=a.PodSandboxMetadata(name=name, uid="uid-1", namespace="ns"),
        labels=labels or {}, annotations=annotations or {}))


def patched(msg, marker, replacement):
    """msg's wire bytes with marker (same length as replacement) replaced."""
    raw = msg.SerializeToString()
    assert len(marker) == len(replacement) and raw.count(marker) == 1, (marker, raw)
    return raw.replace(marker, replacement)


def raw_error(d, path, payload):
    with pytest.raises(grpc.RpcError) as e:
        d.raw_call(path, payload)
    return e.value


BAD_STRINGS = [
    (b"\xff\xfe", "not valid UTF-8"),
    (b"\xc0\xaf", "not valid UTF-8"),          # overlong "/"
    (b"\xed\xa0\x80", "not valid UTF-8"),      # a UTF-16 surrogate
    (b"a\x00b", "NUL"),
]


@pytest.mark.parametrize("bad,why", BAD_STRINGS, ids=["ff", "overlong", "surrogate", "nul"])
def test_bad_strings_refused_naming_the_field(daemon, bad, why):
    d, a = daemon, load_api()
    marker = b"Q" * len(bad)
    cases = [
        (RT + "RunPodSandbox", patched(pod_request(name="p" + marker.decode()), marker, bad),
         "config.metadata.name"),
        (RT + "RunPodSandbox", patched(pod_request(labels={"k" + marker.decode(): "v"}), marker, bad),
         "config.labels"),
        (RT + "RunPodSandbox", patched(pod_request(annotations={"k": "v" + marker.decode()}), marker, bad),
         "config.annotations"),
        (IMG + "RemoveImage", patched(a.RemoveImageRequest(image=a.ImageSpec(image="busybox" + marker.decode())),
                                      marker, bad), "image.image"),
        (RT + "ExecSync", patched(a.ExecSyncRequest(container_id="c", cmd=["sh", "x" + marker.decode()]),
                                  marker, bad), "cmd"),
    ]
    for path, payload, field in cases:
        e = raw_error(d, path, payload)
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (path, e.code(), e.details())
        assert field in e.details() and why in e.details(), (path, e.details())
    # Nothing was created, and every list still decodes.
    assert list(d.rt().ListPodSandbox(a.ListPodSandboxRequest()).items) == []
    d.assert_serving()


def test_nul_cannot_cut_an_image_name_short(images_daemon, registry_set):  # noqa: F811
    d, a = images_daemon, load_api()
    image = f"{registry_set.plain.host}/busybox:latest"
    pull(d, image)
    marker = b"QQQQQ"
    payload = patched(a.RemoveImageRequest(image=a.ImageSpec(image=image + "QQQQQevil")), marker,
                      b"\x00QQQQ")
    e = raw_error(d, IMG + "RemoveImage", payload)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.details()
    assert "image.image" in e.details() and "NUL" in e.details()
    assert [i.repo_tags for i in list_images(d)] == [[image]]


def test_labels_and_annotations_capped(daemon):
    d, a = daemon, load_api()
    big = {f"k{i}": "v" * 1000 for i in range(300)}  # ~300 KiB
    for field in ("labels", "annotations"):
        with pytest.raises(grpc.RpcError) as e:
            d.rt().RunPodSandbox(pod_request(**{field: big}))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
        assert "config.labels" in e.value.details() and "262144" in e.value.details(), e.value.details()
    assert list(d.rt().ListPodSandbox(a.ListPodSandboxRequest()).items) == []
    d.assert_serving()


def test_lists_always_fit(pod_env_factory, daemon_factory):
    """With a 1 MiB response limit, pods of 200 KiB of annotations are
    admitted only while ListPodSandbox still fits; the lists answer."""
    env = pod_env_factory()
    a = env.api
    env.d.stop()
    env.d.extra_args += ["--grpc-max-send-bytes", str(1 << 20)]
    env.d.proc = None
    env.start_daemon()
    admitted, refused = 0, None
    for i in range(8):
        cfg = env.pod_config(annotations={f"a{j}": "x" * 1000 for j in range(200)})
        try:
            env.run_pod(cfg)
            admitted += 1
        except grpc.RpcError as e:
            refused = e
            break
    assert refused is not None, "every pod was admitted"
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.details()
    assert "ListPodSandbox" in refused.details(), refused.details()
    assert 2 <= admitted <= 5, admitted
    items = env.list_pods()
    assert len(items) == admitted
    assert all(len(p.annotations) == 200 for p in items)
    assert len(env.list_pods(labels={"none": "such"})) == 0


def test_exec_sync_output_truncated_with_bounded_memory(pod_env):
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    cid, _ = env.run(pid, cfg, "target", ["sleep", "1011"])
    env.wait_state(cid, env.api.CONTAINER_RUNNING)
    env.exec_sync(cid, ["true"])  # warm up
    base = env.d.rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], env.d.rss_bytes())
            time.sleep(0.02)

    # The kubelet's 16 MiB receive limit, not grpc-python's 4 MiB.
    ch = env.d.channel(options=[("grpc.max_receive_message_length", 16 << 20)])
    t = threading.Thread(target=sample)
    t.start()
    try:
        r = env.d.rt(channel=ch).ExecSync(env.api.ExecSyncRequest(
            container_id=cid, cmd=["sh", "-c", "head -c 100000000 /dev/zero; echo done >&2"],
            timeout=60), timeout=120)
    finally:
        done.set()
        t.join()
    cap = ((16 << 20) - 4096) // 2
    assert r.exit_code == 0, r.exit_code
    assert len(r.stdout) == cap and r.stdout == b"\0" * cap, len(r.stdout)
    assert r.stderr == b"done\n"
    grown = peak[0] - base
    assert grown < 48 << 20, f"ExecSync of 100 MB raised crid's RSS by {grown >> 20} MiB"
    assert env.exec_sync(cid, ["echo", "ok"]).stdout == b"ok\n"


def test_exec_sync_answers_soon_after_its_process_exits(pod_env):
    """A background child holding stdout delays the answer by at most
    100 ms beyond the same command without one."""
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod()
    cid, _ = env.run(pid, cfg, "target", ["sleep", "1012"])
    env.wait_state(cid, env.api.CONTAINER_RUNNING)

    def timed(cmd):
        best = None
        for _ in range(3):
            t0 = time.monotonic()
            r = env.exec_sync(cid, ["sh", "-c", cmd], timeout=30)
            took = time.monotonic() - t0
            assert r.stdout == b"started\n", r
            best = took if best is None else min(best, took)
        return best

    plain = timed("echo started")
    held = timed("sleep 300 & echo started")
    assert held - plain < 0.1, f"ExecSync took {held:.3f}s with a background child, {plain:.3f}s without"


@pytest.mark.parametrize("handler", ["", "runc"], ids=["default-crun", "runc"])
def test_start_failure_carries_the_runtimes_error(pod_env, handler):
    """A 1 MiB environment makes the runtime's exec fail: the container
    exits, and ContainerStatus says why."""
    env = pod_env
    env.pull()
    pid, cfg = env.new_pod(runtime_handler=handler)
    ccfg = env.ctr_config("bigenv", ["sh", "-c", "echo never"], envs=[("BIG", "x" * (1 << 20))])
    cid = env.create(pid, cfg, ccfg)
    env.start(cid)
    st = env.wait_exited(cid)
    assert st.exit_code != 0, st
    assert st.reason == "StartError", st.reason
    assert "argument list too long" in st.message.lower(), st.message
    assert "/bin/sh" in st.message, st.message
    # A process that ran and failed on its own keeps the usual reason.
    cid2, _ = env.run(pid, cfg, "fails", ["sh", "-c", "echo 'exec x: y' >&2; exit 1"])
    st2 = env.wait_exited(cid2)
    assert (st2.reason, st2.message) == ("Error", ""), st2


@pytest.mark.parametrize("api", ["v1", "v1alpha2"])
def test_go_client_sees_refusals_and_truncation(pod_env, criclient, api):  # noqa: F811
    """The kubelet-style Go client (grpc-go): NUL bytes, 300 KiB of labels
    and log paths out of the pod's log directory are refused naming the
    field; 100 MB of ExecSync output comes back truncated to what a 16 MiB
    response holds; every list and status decodes."""
    env = pod_env
    rc, out, res = run_client(env, criclient, "hostile", api,
                              ["--image", env.image(), "--checks", "refusals,exec,decode"], timeout=300)
    assert_ok(rc, out, res, f"criclient hostile --api {api}")


def test_lists_decode_for_grpc_go_after_bad_bytes_were_sent(daemon, criclient):  # noqa: F811
    """grpc-python sends names that are not UTF-8 (refused); grpc-go, which
    refuses to decode such strings, still reads every list."""
    d = daemon
    payload = patched(pod_request(name="pQQ"), b"QQ", b"\xff\xfe")
    e = raw_error(d, RT + "RunPodSandbox", payload)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    from test_hardening_images import run_hostile
    rc, out = run_hostile(criclient, d.socket_path, "v1", "decode")
    assert rc == 0, out
