"""Hardening of the gRPC server against clients that hold its resources:
streams that never end (their bytes are bounded together, they time out,
and they do not hold up SIGTERM), connections that never speak or go quiet
(closed), and thousands of idle connections (the longest idle makes room, so
a new client always gets in).

Raw HTTP/2 through h2 (conftest.H2Client) and plain sockets; grpc-python for
the calls that must still be answered."""

import resource
import signal
import socket
import time

import grpc
import h2.exceptions
import pytest

from conftest import H2_PREFACE, grpc_frame, load_api
from test_go_client import criclient  # noqa: F401
from test_hardening_images import run_hostile

MiB = 1 << 20
VERSION = "/runtime.v1.RuntimeService/Version"


def version_ms(d, channel=None, timeout=5.0):
    a = load_api()
    t0 = time.monotonic()
    resp = d.rt(channel=channel).Version(a.VersionRequest(), timeout=timeout)
    assert resp.runtime_name == "crid"
    return (time.monotonic() - t0) * 1000


def push_unended(c, sid, nbytes, deadline):
    """Sends nbytes of a request's DATA on sid without ending the stream,
    as flow control allows; stops early when crid resets or ends it."""
    payload = grpc_frame(b"\0" * nbytes)[: nbytes]
    sent = 0
    st = c.streams[sid]
    while sent < len(payload) and not st.ended and time.monotonic() < deadline:
        window = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size)
        if window <= 0:
            try:
                c.read_until(lambda: st.ended or c.conn.local_flow_control_window(sid) > 0, timeout=1.0)
            except TimeoutError:
                pass
            continue
        chunk = payload[sent: sent + window]
        try:
            c.conn.send_data(sid, chunk, end_stream=False)
            c.flush()
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return sent
        sent += len(chunk)
    return sent


def test_unended_streams_are_bounded_together(daemon_factory, h2_factory):
    """2 connections x 64 streams, each sending 2 MiB it never ends: with
    the default bound of 32 MiB for every unfinished request together,
    crid's memory stays near it, the oldest unfinished streams give way to
    newer ones, and Version answers meanwhile."""
    d = daemon_factory().start()
    version_ms(d)
    base = d.rss_bytes()
    clients = [h2_factory(d.socket_path) for _ in range(2)]
    refused = 0
    deadline = time.monotonic() + 60
    for c in clients:
        sids = [c.start_call(VERSION, end_stream=False).sid for _ in range(64)]
        for sid in sids:
            push_unended(c, sid, 2 * MiB, deadline)
    for c in clients:
        try:
            c.read_until(lambda: False, timeout=0.5)
        except (TimeoutError, ConnectionError):
            pass
        for st in c.streams.values():
            if st.ended and st.grpc_status == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]:
                refused += 1
                assert ("had not arrived whole" in st.grpc_message
                        or "requests in progress" in st.grpc_message), st.describe()
    grown = d.rss_bytes() - base
    assert refused > 0, "no stream was refused"
    assert grown < 96 * MiB, f"unfinished requests raised crid's RSS by {grown // MiB} MiB"
    # The streams still open hold the bound, yet a request that ends gets in.
    assert version_ms(d) < 1000


def test_request_that_never_ends_times_out(daemon_factory, h2_factory):
    d = daemon_factory(config="grpc_request_timeout_s: 2\n").start()
    c = h2_factory(d.socket_path)
    st = c.start_call(VERSION, body=grpc_frame(b"")[:3], end_stream=False)
    t0 = time.monotonic()
    c.read_until(lambda: st.ended, timeout=10)
    took = time.monotonic() - t0
    assert 1.5 <= took <= 5, took
    assert st.grpc_status == grpc.StatusCode.DEADLINE_EXCEEDED.value[0], st.describe()
    assert "did not arrive whole within 2 s" in st.grpc_message
    d.assert_serving()


def test_unfinished_request_does_not_delay_sigterm(daemon_factory, h2_factory):
    d = daemon_factory(config="shutdown_grace_s: 30\n").start()
    c = h2_factory(d.socket_path)
    st = c.start_call(VERSION, body=b"\0\0", end_stream=False)
    c.ping(b"12345678")  # crid has the stream
    t0 = time.monotonic()
    rc, err = d.stop(timeout=20)
    took = time.monotonic() - t0
    assert rc == 0, err
    assert took < 5, f"SIGTERM took {took:.1f}s with an unfinished request open"
    c.read_until(lambda: st.ended or c.closed, timeout=5)
    if st.ended and st.grpc_status is not None:
        assert st.grpc_status == grpc.StatusCode.UNAVAILABLE.value[0], st.describe()


def test_connection_without_preface_closed(daemon_factory):
    d = daemon_factory(config="grpc_preface_timeout_s: 1\n").start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.socket_path)
    s.settimeout(10)
    t0 = time.monotonic()
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    took = time.monotonic() - t0
    s.close()
    assert took < 4, f"a silent connection stayed open {took:.1f}s"
    d.assert_serving()


def test_idle_connection_closed_but_not_a_watch(daemon_factory, h2_factory):
    d = daemon_factory(config="grpc_idle_timeout_s: 1\n").start()
    a = load_api()
    idle = h2_factory(d.socket_path)
    idle.ping(b"abcdefgh")
    watch_ch = d.channel()
    events = d.rt(channel=watch_ch).GetContainerEvents(a.GetEventsRequest(), timeout=30)
    time.sleep(0.2)
    t0 = time.monotonic()
    idle.read_until(lambda: idle.closed, timeout=10)
    assert time.monotonic() - t0 < 4
    assert idle.goaway is not None, "closed without GOAWAY"
    time.sleep(1.5)
    # The watch's connection has a call open: it stays.
    assert not events.done(), "an event stream was closed as idle"
    events.cancel()
    d.assert_serving()


def test_idle_connections_never_lock_out_a_new_client(daemon_factory, criclient):  # noqa: F811
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(5000, hard - 300)
    assert n >= 1000, f"RLIMIT_NOFILE hard limit {hard} is too low for this test"
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 300), hard))
    limit = min(4096, n - 100)
    d = daemon_factory(config="" if limit == 4096 else f"grpc_max_connections: {limit}\n").start()
    held = []
    try:
        for i in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.socket_path)
            # A complete, well-behaved client that then says nothing.
            s.sendall(H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            held.append(s)
        time.sleep(0.5)
        # A new client (the kubelet) is answered at once.
        ch = d.channel()
        ms = version_ms(d, channel=ch, timeout=5)
        assert ms < 2000, f"Version took {ms:.0f} ms behind {n} idle connections"
        # And the kubelet-style Go client gets in as well.
        rc, out = run_hostile(criclient, d.socket_path, "v1", "latency", "--max-ms", "1000")
        assert rc == 0, out
        # It was the idle ones that made room: crid kept to its limit.
        fds = d.fd_count()
        assert fds < limit + 200, f"crid holds {fds} descriptors with a limit of {limit} connections"
    finally:
        for s in held:
            s.close()
    d.assert_serving()
