"""gRPC over HTTP/2 as crid speaks it: concurrency on one and many
connections, message size limits, hand-made HTTP/2 requests (h2)."""

import gzip
import struct
import threading
import time

import grpc
import pytest

from conftest import grpc_frame

VERSION_PATH = "/runtime.v1.RuntimeService/Version"
MiB = 1024 * 1024


def test_200_concurrent_calls_on_one_channel(daemon, api):
    ch = daemon.channel()
    version = ch.unary_unary(VERSION_PATH,
                             request_serializer=api.VersionRequest.SerializeToString,
                             response_deserializer=api.VersionResponse.FromString)
    rtconf = ch.unary_unary("/runtime.v1.RuntimeService/RuntimeConfig",
                            request_serializer=api.RuntimeConfigRequest.SerializeToString,
                            response_deserializer=api.RuntimeConfigResponse.FromString)
    futures = []
    for i in range(200):
        if i % 2:
            futures.append(("v", version.future(api.VersionRequest(version="0.1.0"), timeout=60)))
        else:
            futures.append(("r", rtconf.future(api.RuntimeConfigRequest(), timeout=60)))
    errors = []
    for kind, f in futures:
        try:
            resp = f.result()
        except grpc.RpcError as e:
            errors.append(f"{kind}: {e.code()} {e.details()}")
            continue
        if kind == "v":
            assert resp.runtime_name == "crid" and resp.runtime_api_version == "v1", resp
        else:
            assert resp.linux.cgroup_driver == api.CGROUPFS, resp
    assert not errors, f"{len(errors)} of 200 calls failed: {errors[:10]}"


def test_50_channels_at_once(daemon, api):
    n_chan, n_calls = 50, 20
    barrier = threading.Barrier(n_chan)
    errors = []
    ok = []
    lock = threading.Lock()

    def client():
        try:
            ch = daemon.channel()  # its own connection
            rt = daemon.rt(channel=ch)
            barrier.wait(timeout=30)
            for _ in range(n_calls):
                r = rt.Version(api.VersionRequest(version="0.1.0"), timeout=30)
                assert r.runtime_name == "crid", r
                with lock:
                    ok.append(1)
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(n_chan)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert not errors, f"{len(errors)} clients failed: {errors[:5]}"
    assert len(ok) == n_chan * n_calls


def _big_channel(d):
    return d.channel(options=[("grpc.max_send_message_length", -1)])


def _expect_code(fn, code):
    with pytest.raises(grpc.RpcError) as ei:
        fn()
    assert ei.value.code() == code, f"want {code}, got {ei.value.code()} {ei.value.details()!r}"
    return ei.value


def _sandbox_request(api, size):
    req = api.RunPodSandboxRequest()
    req.config.labels["big"] = ""
    overhead = req.ByteSize()
    req.config.labels["big"] = "x" * max(0, size - overhead - 8)
    return req


def test_request_over_configured_limit(daemon_factory, api):
    d = daemon_factory(args=["--grpc-max-recv-bytes", "1048576"]).start()
    rt = d.rt(channel=_big_channel(d))

    req = _sandbox_request(api, 2 * MiB)
    assert 2 * MiB - 16 <= req.ByteSize() <= 2 * MiB + 16
    _expect_code(lambda: rt.RunPodSandbox(req, timeout=30), grpc.StatusCode.RESOURCE_EXHAUSTED)

    upd = api.UpdateRuntimeConfigRequest()
    upd.runtime_config.network_config.pod_cidr = "1" * (2 * MiB)
    _expect_code(lambda: rt.UpdateRuntimeConfig(upd, timeout=30), grpc.StatusCode.RESOURCE_EXHAUSTED)

    # Under the limit the method is reached (and refuses the nameless pod).
    small = _sandbox_request(api, 512 * 1024)
    _expect_code(lambda: rt.RunPodSandbox(small, timeout=30), grpc.StatusCode.INVALID_ARGUMENT)

    assert rt.Version(timeout=10).runtime_name == "crid"
    d.assert_serving()


def test_request_over_default_limit(daemon, api):
    rt = daemon.rt(channel=_big_channel(daemon))
    req = _sandbox_request(api, 17 * MiB)
    _expect_code(lambda: rt.RunPodSandbox(req, timeout=60), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert rt.Version(timeout=10).runtime_name == "crid"

    # 15 MiB is under the default 16 MiB and reaches the method (which
    # refuses the nameless pod).
    req = _sandbox_request(api, 15 * MiB)
    _expect_code(lambda: rt.RunPodSandbox(req, timeout=60), grpc.StatusCode.INVALID_ARGUMENT)
    daemon.assert_serving()


def test_response_over_send_limit(daemon_factory, api):
    # 1024 is the smallest limit crid accepts. A runtime with a 1500-byte
    # path makes the verbose Status (config JSON) about 2.3 KB; a
    # VersionResponse is about 25 bytes.
    long_path = "/nonexistent/" + "p" * 1500
    d = daemon_factory(args=["--grpc-max-send-bytes", "1024",
                             "--runtime", f"long={long_path}"]).start()
    rt = d.rt()
    assert rt.Version().runtime_name == "crid"
    _expect_code(lambda: rt.Status(api.StatusRequest(verbose=True)),
                 grpc.StatusCode.RESOURCE_EXHAUSTED)
    # A response under the limit still goes out.
    assert [h.name for h in rt.Status(api.StatusRequest()).runtime_handlers]
    assert rt.Version().runtime_name == "crid"


# ---------------------------------------------------------------------------
# Hand-made HTTP/2


def test_raw_h2_version_call(daemon, api, h2_factory):
    c = h2_factory(daemon.socket_path)
    body = grpc_frame(api.VersionRequest(version="0.1.0").SerializeToString())
    st = c.call(VERSION_PATH, body)
    assert st.reset is None, st.describe()
    assert st.header(":status") == "200", st.describe()
    ctype = st.header("content-type")
    assert ctype and ctype.startswith("application/grpc"), st.describe()
    assert st.trailers is not None, f"no trailers HEADERS frame: {st.describe()}"
    assert st.trailer("grpc-status") == "0", st.describe()
    msgs = st.messages()
    assert len(msgs) == 1, st.describe()
    flag, payload = msgs[0]
    assert flag == 0
    resp = api.VersionResponse.FromString(payload)
    assert resp.runtime_name == "crid" and resp.runtime_api_version == "v1", resp

    # The connection is reusable for a second call.
    st2 = c.call("/runtime.v1alpha2.RuntimeService/Version", body)
    assert st2.grpc_status == 0, st2.describe()
    resp = api.VersionResponse.FromString(st2.messages()[0][1])
    assert resp.runtime_api_version == "v1alpha2"


def test_raw_h2_gzip_is_unimplemented(daemon, api, h2_factory):
    c = h2_factory(daemon.socket_path)
    payload = gzip.compress(api.VersionRequest(version="0.1.0").SerializeToString())
    st = c.call(VERSION_PATH, grpc_frame(payload, compressed=True),
                extra_headers=[("grpc-encoding", "gzip"), ("grpc-accept-encoding", "identity")])
    assert st.grpc_status == 12, st.describe()
    assert "gzip" in (st.grpc_message or "").lower(), st.describe()
    assert not st.messages(), st.describe()
    daemon.assert_serving()


def test_raw_h2_timeout_already_passed(daemon, api, h2_factory):
    c = h2_factory(daemon.socket_path)
    body = grpc_frame(api.VersionRequest(version="0.1.0").SerializeToString())
    st = c.call(VERSION_PATH, body, extra_headers=[("grpc-timeout", "1n")])
    assert st.grpc_status == 4, f"want DEADLINE_EXCEEDED (4): {st.describe()}"
    # A sane timeout on the same connection works.
    st = c.call(VERSION_PATH, body, extra_headers=[("grpc-timeout", "5S")])
    assert st.grpc_status == 0, st.describe()


def test_raw_h2_event_stream_deadline_ends_stream(daemon, api, h2_factory):
    """The server ends a GetContainerEvents stream when its grpc-timeout
    passes (DEADLINE_EXCEEDED, or a reset), instead of keeping it for ever."""
    c = h2_factory(daemon.socket_path)
    t0 = time.monotonic()
    st = c.call("/runtime.v1.RuntimeService/GetContainerEvents",
                grpc_frame(api.GetEventsRequest().SerializeToString()),
                extra_headers=[("grpc-timeout", "1S")], timeout=10)
    elapsed = st.ended_at - t0
    assert 0.8 <= elapsed <= 5.0, f"stream ended after {elapsed:.2f}s: {st.describe()}"
    assert st.reset is not None or st.grpc_status == 4, st.describe()
    assert not st.messages(), st.describe()


def test_raw_h2_ping(daemon, h2_factory):
    c = h2_factory(daemon.socket_path)
    c.ping(b"crid-png")
    assert b"crid-png" in c.ping_acks
    c.ping(b"\x00\x01\x02\x03\xfc\xfd\xfe\xff")
    assert c.ping_acks[-1] == b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"


NON_ASCII_METHOD = "/runtime.v1.RuntimeService/N\u00f6pe%"


def test_grpc_message_percent_encoded_raw(daemon, api, h2_factory):
    c = h2_factory(daemon.socket_path)
    st = c.call(NON_ASCII_METHOD, grpc_frame(b""))
    assert st.grpc_status == 12, st.describe()
    raw = st.trailer_raw("grpc-message")
    assert raw, st.describe()
    assert all(0x20 <= b <= 0x7E for b in raw), f"grpc-message is not percent-encoded: {raw!r}"
    assert "N\u00f6pe%" in st.grpc_message, f"decoded grpc-message {st.grpc_message!r}"
    daemon.assert_serving()


def test_grpc_message_percent_encoded_grpc_python(daemon):
    try:
        err = _expect_code(lambda: daemon.raw_call(NON_ASCII_METHOD, b""),
                           grpc.StatusCode.UNIMPLEMENTED)
    except (UnicodeError, ValueError) as e:  # client side refused the path
        pytest.skip(f"grpc python cannot send this path: {e!r}")
    assert "N\u00f6pe%" in (err.details() or ""), repr(err.details())


def test_rst_stream_for_unopened_stream_keeps_the_connection(daemon, api, h2_factory):
    """gRPC clients that cancel a call before its HEADERS leave them send
    RST_STREAM for a stream they never opened; RFC 9113 calls that a
    connection error, but ending the connection would fail every other call
    on it. crid drops such a frame and the connection goes on."""
    c = h2_factory(daemon.socket_path)
    # RST_STREAM (type 3), stream 101, error code CANCEL (8): never opened.
    c.sock.sendall(struct.pack(">I", 4)[1:] + bytes([3, 0]) + struct.pack(">I", 101) + struct.pack(">I", 8))
    body = grpc_frame(api.VersionRequest(version="0.1.0").SerializeToString())
    st = c.call(VERSION_PATH, body)
    assert st.grpc_status == 0, st.describe()
    assert c.goaway is None, c.goaway
