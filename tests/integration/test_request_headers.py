"""The request header checks of RFC 9113 section 8 that crid makes itself.

grpc-go, the library of the kubelet, crictl and critest, sends the socket
path as :authority; any authority must be accepted. Everything else that
makes a request malformed resets its stream with PROTOCOL_ERROR, says why in
crid's log at the default level, and leaves the connection serving."""

import struct

import pytest

from conftest import grpc_frame

VERSION_PATH = b"/runtime.v1.RuntimeService/Version"
PROTOCOL_ERROR = 1


def _version_body(api):
    return grpc_frame(api.VersionRequest(version="0.1.0").SerializeToString())


def _headers(authority=b"localhost", path=VERSION_PATH, extra=(), drop=()):
    hdrs = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path)]
    if authority is not None:
        hdrs.append((b":authority", authority))
    hdrs += [(b"content-type", b"application/grpc"), (b"te", b"trailers")]
    hdrs = [h for h in hdrs if h[0] not in drop]
    return hdrs + [(k, v) for k, v in extra]


def _assert_version_ok(st, api):
    assert st.reset is None, st.describe()
    assert st.grpc_status == 0, st.describe()
    resp = api.VersionResponse.FromString(st.messages()[0][1])
    assert resp.runtime_name == "crid", resp


@pytest.fixture
def info_daemon(daemon_factory):
    """crid at its default log level (info): what it says there is what an
    operator sees."""
    return daemon_factory(log_level="").start()


@pytest.mark.parametrize("authority", [
    b"/run/crid/crid.sock",      # what grpc-go sends for a socket path
    b"%2Frun%2Fcrid%2Fcrid.sock",
    b"localhost",
    b"127.0.0.1:10010",
    b"[::1]:443",
    b"",
    None,                        # no :authority at all
], ids=["socket-path", "escaped-path", "localhost", "ipv4", "ipv6", "empty", "absent"])
def test_any_authority_is_accepted(daemon, api, h2_factory, authority):
    c = h2_factory(daemon.socket_path, validate=False)
    st = c.start_call(None, _version_body(api), headers=_headers(authority=authority))
    c.read_until(lambda: st.ended)
    _assert_version_ok(st, api)


def test_matching_content_length_and_trailers_are_accepted(daemon, api, h2_factory):
    c = h2_factory(daemon.socket_path, validate=False)
    body = _version_body(api)
    st = c.start_call(None, body, headers=_headers(extra=[(b"content-length", str(len(body)).encode())]))
    c.read_until(lambda: st.ended)
    _assert_version_ok(st, api)

    # A request that ends with a (pseudo-header free) trailer block.
    sid = c.conn.get_next_available_stream_id()
    from conftest import H2Stream
    st = c.streams[sid] = H2Stream(sid)
    c.conn.send_headers(sid, _headers(), end_stream=False)
    c.conn.send_data(sid, body, end_stream=False)
    c.conn.send_headers(sid, [(b"x-trailer", b"fine")], end_stream=True)
    c.flush()
    c.read_until(lambda: st.ended)
    _assert_version_ok(st, api)


MALFORMED = {
    # name: (headers, reason crid logs)
    "no-method": (_headers(drop=(b":method",)), "request without :method"),
    "no-scheme": (_headers(drop=(b":scheme",)), "request without :scheme"),
    "no-path": (_headers(drop=(b":path",)), "request without :path"),
    "relative-path": (_headers(path=b"runtime.v1.RuntimeService/Version"),
                      ":path is not an absolute path"),
    "asterisk-path": (_headers(path=b"*"), ":path is not an absolute path"),
    "pseudo-after-regular": (_headers(authority=None, extra=[(b":authority", b"x")]),
                             "pseudo-header :authority after regular header fields"),
    "repeated-path": ([(b":method", b"POST"), (b":scheme", b"http"), (b":path", VERSION_PATH),
                       (b":path", VERSION_PATH), (b"content-type", b"application/grpc")],
                      "repeated pseudo-header :path"),
    "repeated-method": ([(b":method", b"POST"), (b":method", b"POST"), (b":scheme", b"http"),
                         (b":path", VERSION_PATH), (b"content-type", b"application/grpc")],
                        "repeated pseudo-header :method"),
    "unknown-pseudo": ([(b":method", b"POST"), (b":scheme", b"http"), (b":path", VERSION_PATH),
                        (b":status", b"200"), (b"content-type", b"application/grpc")],
                       "unknown pseudo-header :status"),
    "protocol-pseudo": ([(b":method", b"POST"), (b":protocol", b"websocket"), (b":scheme", b"http"),
                         (b":path", VERSION_PATH), (b"content-type", b"application/grpc")],
                        "unknown pseudo-header :protocol"),
    "connection": (_headers(extra=[(b"connection", b"keep-alive")]),
                   'connection-specific header field "connection"'),
    "keep-alive": (_headers(extra=[(b"keep-alive", b"timeout=5")]),
                   'connection-specific header field "keep-alive"'),
    "proxy-connection": (_headers(extra=[(b"proxy-connection", b"close")]),
                         'connection-specific header field "proxy-connection"'),
    "transfer-encoding": (_headers(extra=[(b"transfer-encoding", b"chunked")]),
                          'connection-specific header field "transfer-encoding"'),
    "upgrade": (_headers(extra=[(b"upgrade", b"h2c")]),
                'connection-specific header field "upgrade"'),
    "te-gzip": ([h for h in _headers() if h[0] != b"te"] + [(b"te", b"gzip")],
                'te header field other than "trailers"'),
    "uppercase-name": ([h for h in _headers() if h[0] != b"content-type"]
                       + [(b"Content-Type", b"application/grpc")],
                       'header field name "Content-Type" is not lowercase'),
    "space-in-name": (_headers(extra=[(b"x y", b"1")]),
                      'header field name "x?y" has an invalid character'),
    "newline-in-value": (_headers(extra=[(b"x-note", b"a\r\nb")]),
                         'header field "x-note" has NUL, CR or LF in its value'),
    "content-length-not-number": (_headers(extra=[(b"content-length", b"12a")]),
                                  "content-length is not a number"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_reset(info_daemon, api, h2_factory, case):
    hdrs, reason = MALFORMED[case]
    c = h2_factory(info_daemon.socket_path, validate=False)
    st = c.start_call(None, _version_body(api), headers=hdrs)
    c.read_until(lambda: st.ended)
    assert st.reset == PROTOCOL_ERROR, f"want RST_STREAM PROTOCOL_ERROR: {st.describe()}"
    assert not st.messages(), st.describe()

    # The connection goes on serving well-formed calls.
    st = c.call(VERSION_PATH.decode(), _version_body(api))
    _assert_version_ok(st, api)
    assert c.goaway is None, c.goaway

    # Said at the default log level, with the reason.
    log = info_daemon.stderr()
    lines = [line for line in log.splitlines() if "reset a stream" in line]
    assert lines, f"no warning about the reset stream in crid's log:\n{log[-2000:]}"
    logged = reason.replace('"', '\\"')  # as logfmt quotes it
    assert any("level=warn" in line and logged in line for line in lines), \
        f"warning does not name {reason!r}:\n" + "\n".join(lines)
    info_daemon.assert_serving()


@pytest.mark.parametrize("declared,sent", [(3, 10), (100, 10), (0, 10)],
                         ids=["more-data", "less-data", "zero-declared"])
def test_content_length_disagreeing_with_data_is_reset(info_daemon, api, h2_factory, declared, sent):
    c = h2_factory(info_daemon.socket_path, validate=False)
    body = grpc_frame(b"\x0a\x050.1.0")[:sent]
    assert len(body) == sent
    st = c.start_call(None, body, headers=_headers(extra=[(b"content-length", str(declared).encode())]))
    c.read_until(lambda: st.ended)
    assert st.reset == PROTOCOL_ERROR, st.describe()
    assert "content-length" in info_daemon.stderr()
    _assert_version_ok(c.call(VERSION_PATH.decode(), _version_body(api)), api)


@pytest.mark.parametrize("trailers,end_stream,reason", [
    ([(b":path", VERSION_PATH)], True, "pseudo-header :path in trailers"),
    ([(b"x-trailer", b"1")], False, "does not end the stream"),
], ids=["pseudo-in-trailers", "trailers-without-end-stream"])
def test_malformed_trailers_are_reset(info_daemon, api, h2_factory, trailers, end_stream, reason):
    from conftest import H2Stream

    c = h2_factory(info_daemon.socket_path, validate=False)
    sid = c.conn.get_next_available_stream_id()
    st = c.streams[sid] = H2Stream(sid)
    c.conn.send_headers(sid, _headers(), end_stream=False)
    c.conn.send_data(sid, _version_body(api), end_stream=False)
    if end_stream:
        c.conn.send_headers(sid, trailers, end_stream=True)
        c.flush()
    else:
        # h2 refuses to send this: a HEADERS frame (END_HEADERS only) by hand,
        # encoded with the connection's own HPACK context.
        c.flush()
        block = c.conn.encoder.encode(trailers)
        c.sock.sendall(struct.pack(">I", len(block))[1:] + bytes([0x1, 0x4])
                       + struct.pack(">I", sid) + block)
    c.read_until(lambda: st.ended)
    assert st.reset == PROTOCOL_ERROR, st.describe()
    assert reason in info_daemon.stderr()
    _assert_version_ok(c.call(VERSION_PATH.decode(), _version_body(api)), api)


def test_get_is_refused_with_405(daemon, api, h2_factory):
    """A well-formed request with another method is answered, not reset:
    HTTP 405 and a gRPC status naming POST."""
    c = h2_factory(daemon.socket_path)
    hdrs = [h for h in _headers() if h[0] != b":method"]
    st = c.start_call(None, _version_body(api), headers=[(b":method", b"GET")] + hdrs)
    c.read_until(lambda: st.ended)
    assert st.header(":status") == "405", st.describe()
    assert st.grpc_status == 3, st.describe()
    assert "POST" in (st.grpc_message or ""), st.describe()


def test_reset_warnings_are_rate_limited(info_daemon, api, h2_factory):
    c = h2_factory(info_daemon.socket_path, validate=False)
    hdrs = _headers(extra=[(b"connection", b"close")])
    streams = [c.start_call(None, _version_body(api), headers=hdrs) for _ in range(200)]
    c.read_until(lambda: all(s.ended for s in streams), timeout=30)
    assert all(s.reset == PROTOCOL_ERROR for s in streams)
    _assert_version_ok(c.call(VERSION_PATH.decode(), _version_body(api)), api)
    warned = [line for line in info_daemon.stderr().splitlines() if "reset a stream" in line]
    assert 1 <= len(warned) <= 20, f"{len(warned)} warnings for 200 resets"
