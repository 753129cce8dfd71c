"""Hostile or broken clients. After each case crid must still be alive and
answer Version over gRPC."""

import random
import socket
import struct
import time

import grpc
import h2.config
import h2.connection
import pytest

from conftest import H2_PREFACE, grpc_frame

VERSION_PATH = "/runtime.v1.RuntimeService/Version"
MiB = 1024 * 1024


@pytest.fixture
def d(daemon):
    """The default daemon. Each test ends with d.assert_serving()."""
    return daemon


def _connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def _wait_closed(s, timeout=5.0):
    """Reads until EOF; returns what the server sent. Fails if the
    connection is still open after timeout."""
    got = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"crid kept the connection open for {timeout}s (sent {got[:100]!r})")
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk


def _frame(ftype, flags, sid, payload, length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


EMPTY_SETTINGS = _frame(0x4, 0, 0, b"")


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    random.Random(1234).randbytes(64),
    b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
    b"\x00" * 4096,
], ids=["http1", "random64", "bad-preface", "zeros"])
def test_garbage_instead_of_preface(d, garbage):
    s = _connect(d.socket_path)
    try:
        try:
            s.sendall(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass
        _wait_closed(s)
    finally:
        s.close()
    d.assert_serving()


@pytest.mark.parametrize("violation", [
    _frame(0x0, 0x1, 0, b"data on stream 0"),              # DATA on stream 0
    _frame(0x1, 0x5, 2, b"\xff\xff\xff\xff"),              # HEADERS, even id, bad HPACK
    _frame(0x8, 0, 0, struct.pack(">I", 0)),               # WINDOW_UPDATE of 0
    _frame(0x4, 0, 0, b"\x00\x05\x00\x00\x00\x01"),        # SETTINGS_MAX_FRAME_SIZE 1
    _frame(0x0, 0, 1, b"x" * 20000),                        # frame over 16384
], ids=["data-stream0", "bad-hpack", "window-update-0", "bad-settings", "oversized-frame"])
def test_http2_protocol_violation_closes_connection(d, violation):
    s = _connect(d.socket_path)
    try:
        s.sendall(H2_PREFACE + EMPTY_SETTINGS + violation)
        _wait_closed(s)
    finally:
        s.close()
    d.assert_serving()


@pytest.mark.parametrize("stall", [
    H2_PREFACE[:10],
    H2_PREFACE + _frame(0x1, 0x4, 1, b"\x00" * 10, length=100),
], ids=["partial-preface", "half-frame"])
def test_stalled_connection_does_not_block_others(d, api, stall):
    s = _connect(d.socket_path)
    try:
        s.sendall(stall)
        time.sleep(0.2)
        for i in range(20):
            ch = d.channel()
            t0 = time.monotonic()
            r = d.rt(channel=ch).Version(api.VersionRequest(version="0.1.0"), timeout=5)
            took = time.monotonic() - t0
            ch.close()
            assert r.runtime_name == "crid"
            assert took < 2.0, f"Version took {took:.2f}s while a connection stalls"
    finally:
        s.close()
    d.assert_serving()


def _h2(d, h2_factory):
    return h2_factory(d.socket_path)


@pytest.mark.parametrize("body,codes", [
    (struct.pack(">BI", 0, 100) + b"abc", {13}),
    (struct.pack(">BI", 0, 2) + b"\x0a\x00" + b"\x00" * 8, {13, 3}),
    (b"\x00\x00\x00", {13}),
], ids=["says-100-sends-3", "says-2-sends-10", "prefix-cut"])
def test_wrong_length_prefix(d, h2_factory, body, codes):
    c = _h2(d, h2_factory)
    st = c.call(VERSION_PATH, body)
    assert st.grpc_status in codes, f"want grpc-status in {codes}: {st.describe()}"
    assert st.grpc_message, f"no grpc-message: {st.describe()}"
    assert not st.messages(), st.describe()
    d.assert_serving()


def test_no_request_message(d, h2_factory):
    # HEADERS with END_STREAM and no DATA: a unary call without its message.
    c = _h2(d, h2_factory)
    st = c.start_call(VERSION_PATH, body=None, end_stream=True)
    c.read_until(lambda: st.ended)
    assert st.reset is not None or (st.grpc_status not in (None, 0) and st.grpc_message), \
        st.describe()
    d.assert_serving()


def test_announced_huge_message(d, h2_factory):
    """A prefix announcing 4 GiB, then END_STREAM after 10 bytes: an error
    status, and nothing like 4 GiB allocated."""
    c = _h2(d, h2_factory)
    rss0 = d.rss_bytes()
    st = c.start_call(VERSION_PATH, struct.pack(">BI", 0, 0xFFFFFFFF) + b"\x00" * 10,
                      end_stream=True)
    c.read_until(lambda: st.ended, timeout=10)
    assert st.reset is not None or st.grpc_status in (8, 13), st.describe()
    assert d.rss_bytes() - rss0 < 64 * MiB
    d.assert_serving()


@pytest.mark.parametrize("path", [VERSION_PATH, "/runtime.v1.RuntimeService/Status",
                                  "/runtime.v1.RuntimeService/UpdateRuntimeConfig"])
def test_undecodable_protobuf(d, path):
    with pytest.raises(grpc.RpcError) as ei:
        d.raw_call(path, b"\xff\xff\xff\xff")
    err = ei.value
    assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL), \
        f"{err.code()} {err.details()!r}"
    assert err.details(), "no error message"
    d.assert_serving()


@pytest.mark.parametrize("path,named", [
    ("/runtime.v1.RuntimeService/NoSuchMethod", "NoSuchMethod"),
    ("/nope.Service/X", "nope.Service/X"),
    ("/runtime.v2.RuntimeService/Version", "runtime.v2.RuntimeService/Version"),
])
def test_unknown_method(d, path, named):
    with pytest.raises(grpc.RpcError) as ei:
        d.raw_call(path, b"")
    err = ei.value
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED, f"{err.code()} {err.details()!r}"
    assert named in (err.details() or ""), f"details {err.details()!r} do not name {named}"
    d.assert_serving()


def test_message_over_limit(daemon_factory, api):
    # (test_grpc_protocol.py covers the limits in detail.)
    dm = daemon_factory(args=["--grpc-max-recv-bytes", "1048576"]).start()
    ch = dm.channel(options=[("grpc.max_send_message_length", -1)])
    req = api.UpdateRuntimeConfigRequest()
    req.runtime_config.network_config.pod_cidr = "x" * (2 * MiB)
    with pytest.raises(grpc.RpcError) as ei:
        dm.rt(channel=ch).UpdateRuntimeConfig(req, timeout=30)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, ei.value
    dm.assert_serving("after an oversized message")


def test_reset_stream_mid_request(d, api, h2_factory):
    c = _h2(d, h2_factory)
    body = grpc_frame(api.VersionRequest(version="0.1.0").SerializeToString())
    st = c.start_call(VERSION_PATH, body[:3], end_stream=False)
    c.conn.reset_stream(st.sid, error_code=8)  # CANCEL
    c.flush()
    # The connection stays usable for a new call.
    st2 = c.call(VERSION_PATH, body)
    assert st2.grpc_status == 0, st2.describe()
    d.assert_serving()


def test_client_vanishes_with_open_stream(d, api, h2_factory):
    c = _h2(d, h2_factory)
    c.start_call("/runtime.v1.RuntimeService/GetContainerEvents",
                 grpc_frame(api.GetEventsRequest().SerializeToString()))
    c.start_call(VERSION_PATH, grpc_frame(b"\xff\xff"))
    c.close()
    time.sleep(0.3)
    d.assert_serving()


def _full_request_bytes(api):
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(1, [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", VERSION_PATH.encode()),
        (b":authority", b"localhost"), (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ])
    conn.send_data(1, grpc_frame(api.VersionRequest().SerializeToString()), end_stream=True)
    return conn.data_to_send()


def test_many_dropped_connections(daemon, api):
    d = daemon
    keep = d.channel()
    rt = d.rt(channel=keep)
    full = _full_request_bytes(api)

    def churn(n):
        for i in range(n):
            s = _connect(d.socket_path, timeout=10)
            try:
                if i % 4 == 1:
                    s.sendall(H2_PREFACE)
                elif i % 4 == 3:
                    s.sendall(full)  # and leave before the answer
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                s.close()

    def settle():
        for _ in range(5):
            assert rt.Version(timeout=10).runtime_name == "crid"
        time.sleep(0.5)
        for _ in range(5):
            assert rt.Version(timeout=10).runtime_name == "crid"

    rt.Version()
    settle()
    fd_base = d.fd_count()
    churn(200)
    settle()
    rss_warm = d.rss_bytes()
    churn(1000)
    settle()
    rss_after = d.rss_bytes()
    d.assert_serving("after 1,200 dropped connections")

    growth = rss_after - rss_warm
    assert growth < 20 * MiB, (
        f"VmRSS grew by {growth / MiB:.1f} MiB over 1,000 dropped connections "
        f"({rss_warm / MiB:.1f} -> {rss_after / MiB:.1f} MiB)")

    # Every dropped connection's descriptor is closed again.
    deadline = time.monotonic() + 10
    while d.fd_count() > fd_base + 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert d.fd_count() <= fd_base + 4, (
        f"crid holds {d.fd_count()} fds after the churn, {fd_base} before")
