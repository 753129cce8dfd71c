"""Exec, Attach and PortForward through crid's streaming server, with real
crun and runc, real containers and real clients: the suite's own SPDY/3.1
client (streaming_client.py, written from the specification) and Debian's
python3-websocket. crictl's exec -it, attach and port-forward (SPDY, as
kubelets and crictl 1.26 speak it) are in test_crictl_streaming.py."""

import json
import os
import socket
import ssl
import struct
import subprocess
import threading
import time

import grpc
import pytest

from pod_helpers import (  # noqa: F401  (fixtures)
    hugetlb_v1, pod_env, pod_env_factory, procs_with_argv, pid_alive, processes, registry_set, rpc_code)
from streaming_client import (EXEC_PROTOCOLS, SpdyConn, http_request, spdy_exec, ws_exec, ws_url)

HTTPD_PORT = 8080
PAGE = b"crid port-forward page\n"


def exec_url(env, cid, cmd, stdin=False, stdout=True, stderr=True, tty=False):
    return env.rt.Exec(env.api.ExecRequest(container_id=cid, cmd=cmd, stdin=stdin, stdout=stdout,
                                           stderr=stderr, tty=tty)).url


def attach_url(env, cid, stdin=False, stdout=True, stderr=True, tty=False):
    return env.rt.Attach(env.api.AttachRequest(container_id=cid, stdin=stdin, stdout=stdout,
                                               stderr=stderr, tty=tty)).url


def pf_url(env, pod_id, ports=()):
    return env.rt.PortForward(env.api.PortForwardRequest(pod_sandbox_id=pod_id, port=list(ports))).url


def sleeper(env, pod, cfg, name="main", runtime_handler=""):
    cid, _ = env.run(pod, cfg, name, command=["sleep", "3600"])
    return cid


def assert_success(res):
    assert res.status == {"metadata": {}, "status": "Success"}, res


def test_exec_over_every_protocol(pod_env):
    """echo hello over SPDY v4, v3, v2, v1 and WebSocket v5, v4, channel.k8s.io
    and base64.channel.k8s.io; stdout and stderr apart; the URL's shape."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    cid = sleeper(env, pod, cfg)
    cmd = ["sh", "-c", "echo hello; echo oops >&2"]
    url = exec_url(env, cid, cmd)
    assert url.startswith("http://127.0.0.1:") and "/exec/" in url, url
    for proto in EXEC_PROTOCOLS:
        res = spdy_exec(exec_url(env, cid, cmd), protocols=[proto])
        assert res.out == b"hello\n" and res.err == b"oops\n", (proto, res)
        if proto == "v4.channel.k8s.io":
            assert_success(res)
        else:
            assert res.error_text == "", (proto, res)
    for proto in ("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io",
                  "v4.base64.channel.k8s.io"):
        res = ws_exec(exec_url(env, cid, cmd), protocol=proto)
        assert res.out == b"hello\n" and res.err == b"oops\n", (proto, res)
        if proto.startswith(("v4.", "v5.")):
            assert_success(res)
    # Input over the base64 protocols: lengths that need one and two '='.
    for proto in ("base64.channel.k8s.io", "v4.base64.channel.k8s.io"):
        for line in (b"xy\n", b"xyzw\n"):
            res = ws_exec(exec_url(env, cid, ["sh", "-c", "read l; echo \"$l\""], stdin=True), protocol=proto,
                          stdin=line)
            assert res.out == line, (proto, res)


def test_exec_exit_code_stdin_and_tty(pod_env):
    """A non-zero exit code in the v4 status (and as text before v4); 10 MiB
    through cat over stdin and back, unchanged, over SPDY and WebSocket v5;
    a TTY whose size, set through the resize stream, stty sees."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    cid = sleeper(env, pod, cfg)

    res = spdy_exec(exec_url(env, cid, ["sh", "-c", "exit 3"]))
    st = res.status
    assert st["status"] == "Failure" and st["reason"] == "NonZeroExitCode", st
    assert st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}], st
    res = spdy_exec(exec_url(env, cid, ["sh", "-c", "exit 3"]), protocols=["v2.channel.k8s.io"])
    assert "non-zero exit code" in res.error_text and "exit code 3" in res.error_text, res
    res = ws_exec(exec_url(env, cid, ["sh", "-c", "exit 3"]), protocol="v5.channel.k8s.io")
    assert res.status["reason"] == "NonZeroExitCode", res

    data = os.urandom(10 * 1024 * 1024)
    t0 = time.monotonic()
    res = spdy_exec(exec_url(env, cid, ["cat"], stdin=True, stderr=False), stdin=data, stderr=False,
                    timeout=120)
    assert len(res.out) == len(data) and res.out == data, (len(res.out), res.status)
    assert_success(res)
    res = ws_exec(exec_url(env, cid, ["cat"], stdin=True, stderr=False), protocol="v5.channel.k8s.io",
                  stdin=data, timeout=120)
    assert len(res.out) == len(data) and res.out == data, (len(res.out), res.status)
    assert time.monotonic() - t0 < 90

    # A terminal: stty reports the size the client set.
    for proto in ("v4.channel.k8s.io", "v3.channel.k8s.io"):
        def interact(c, in_sid, out_sid):
            c.wait(lambda: b"$" in c.streams[out_sid].data or b"#" in c.streams[out_sid].data, 30)
            c.send(in_sid, b"stty size; exit 7\n")

        res = spdy_exec(exec_url(env, cid, ["sh"], stdin=True, stderr=False, tty=True), stdin=b"",
                        tty=True, stderr=False, resize=(123, 45), protocols=[proto],
                        keep_stdin_open=True, interact=interact)
        assert b"45 123" in res.out, (proto, res)
        if proto == "v4.channel.k8s.io":
            assert res.status["details"]["causes"][0]["message"] == "7", res
    res = ws_exec(exec_url(env, cid, ["sh", "-c", "sleep 1; stty size"], stdin=False, stderr=False, tty=True),
                  protocol="v5.channel.k8s.io", resize=(77, 22), tty=True)
    assert b"22 77" in res.out, res


def test_exec_errors_and_tokens(pod_env):
    """Bad requests get clear gRPC errors; a token is good once (404 after),
    an unknown one is 404, a request without the protocol header 400, with
    only unknown protocols 403 listing ours, without an upgrade 400."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    cid = sleeper(env, pod, cfg)
    rt, a = env.rt, env.api
    code, msg = rpc_code(rt.Exec, a.ExecRequest(container_id=cid, cmd=["true"], tty=True, stdout=True,
                                                 stderr=True))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "tty" in msg and "stderr" in msg, (code, msg)
    code, msg = rpc_code(rt.Exec, a.ExecRequest(container_id=cid, cmd=["true"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "stdin" in msg, (code, msg)
    code, msg = rpc_code(rt.Exec, a.ExecRequest(container_id=cid, cmd=[], stdout=True))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cmd" in msg, (code, msg)
    code, msg = rpc_code(rt.Exec, a.ExecRequest(container_id="0" * 64, cmd=["true"], stdout=True))
    assert code == grpc.StatusCode.NOT_FOUND, (code, msg)
    code, msg = rpc_code(rt.Attach, a.AttachRequest(container_id="", stdout=True))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "container_id" in msg, (code, msg)
    code, msg = rpc_code(rt.PortForward, a.PortForwardRequest(pod_sandbox_id="f" * 64, port=[80]))
    assert code == grpc.StatusCode.NOT_FOUND, (code, msg)
    code, msg = rpc_code(rt.PortForward, a.PortForwardRequest(pod_sandbox_id=pod, port=[70000]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "port[0]" in msg, (code, msg)

    url = exec_url(env, cid, ["echo", "once"])
    assert spdy_exec(url).out == b"once\n"
    c = SpdyConn(url)
    assert c.status == 404, (c.status, c.headers)
    c.close()
    base, _, token = url.rpartition("/")
    status, _, _ = http_request(base + "/" + "0" * len(token))
    assert status == 404
    status, _, _ = http_request(attach_url(env, cid).replace("/attach/", "/exec/"))
    assert status == 404  # a token is good for its own kind only

    status, hdrs, body = http_request(exec_url(env, cid, ["true"]),
                                      headers=[("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")])
    assert status == 400 and b"X-Stream-Protocol-Version" in body, (status, body)
    c = SpdyConn(exec_url(env, cid, ["true"]), protocols=["v9.channel.k8s.io"])
    assert c.status == 403, c.status
    assert "v4.channel.k8s.io" in c.headers["x-accepted-stream-protocol-versions"][0], c.headers
    c.close()
    status, _, body = http_request(exec_url(env, cid, ["true"]))
    assert status == 400 and b"upgrade" in body, (status, body)
    status, _, _ = http_request(exec_url(env, cid, ["true"]), method="DELETE")
    assert status == 405
    env.d.assert_serving()


def test_exec_token_expires(pod_env):
    """An unused token is refused (404) after its minute."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    cid = sleeper(env, pod, cfg)
    url = exec_url(env, cid, ["echo", "late"])
    time.sleep(61)
    c = SpdyConn(url)
    assert c.status == 404, c.status
    c.close()


def test_exec_client_gone_kills_process(pod_env):
    """A client that disconnects mid-exec leaves no process behind: neither
    the exec'd process tree nor the runtime; the crid process keeps its fd
    count."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    cid = sleeper(env, pod, cfg)
    fds_before = env.d.fd_count()
    for proto, tty in (("spdy", False), ("spdy", True), ("ws", False)):
        marker = str(4000 + len(proto) + tty)
        cmd = ["sh", "-c", f"sleep {marker} & sleep {marker}; wait"]
        url = exec_url(env, cid, cmd, stdin=True, stderr=not tty, tty=tty)
        if proto == "spdy":
            c = SpdyConn(url)
            c.open({"streamtype": "error"})
            c.open({"streamtype": "stdin"})
            c.open({"streamtype": "stdout"})
            if tty:
                c.open({"streamtype": "resize"})
            else:
                c.open({"streamtype": "stderr"})
        else:
            import websocket
            c = websocket.create_connection(ws_url(url), subprotocols=["v4.channel.k8s.io"])
        deadline = time.monotonic() + 30
        while len(procs_with_argv(["sleep", marker])) < 2:
            assert time.monotonic() < deadline, "the exec'd processes never appeared"
            time.sleep(0.1)
        c.close()
        deadline = time.monotonic() + 20
        while procs_with_argv(["sleep", marker]) or [p for p in processes() if "exec" in p.argv
                                                      and cid in p.argv and p.state != "Z"]:
            assert time.monotonic() < deadline, (proto, tty, procs_with_argv(["sleep", marker]))
            time.sleep(0.1)
    deadline = time.monotonic() + 10
    while env.d.fd_count() > fds_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert env.d.fd_count() <= fds_before, (fds_before, env.d.fd_count())
    leftovers = os.listdir(os.path.join(env.d.run_root, "streams"))
    assert leftovers == [], leftovers


def test_attach(pod_env):
    """Attach to a pipe container: two clients see its output, input from
    one reaches it, the CRI log keeps being written; stdin_once closes its
    stdin when the first client leaves; a TTY container answers over its
    terminal."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    ccfg = env.ctr_config("echoer", command=["sh", "-c", "while read l; do echo \"got $l\"; done"])
    ccfg.stdin = True
    cid = env.create(pod, cfg, ccfg)
    env.start(cid)

    second = {}

    def watcher():
        second["res"] = ws_exec(attach_url(env, cid, stdin=False, stderr=False),
                                protocol="v4.channel.k8s.io", stderr=False, timeout=60)

    c = SpdyConn(attach_url(env, cid, stdin=True, stderr=False))
    err_sid = c.open({"streamtype": "error"})
    in_sid = c.open({"streamtype": "stdin"})
    out_sid = c.open({"streamtype": "stdout"})
    t = threading.Thread(target=watcher)
    t.start()
    time.sleep(1.0)
    c.send(in_sid, b"hello\n")
    c.wait(lambda: b"got hello\n" in c.streams[out_sid].data, 30)
    env.wait_output(cfg, ccfg, "got hello")
    c.send(in_sid, b"", fin=True)  # no stdin_once: the container's stdin stays open
    c.close()
    c = SpdyConn(attach_url(env, cid, stdin=True, stderr=False))
    c.open({"streamtype": "error"})
    in_sid = c.open({"streamtype": "stdin"})
    out_sid = c.open({"streamtype": "stdout"})
    c.send(in_sid, b"again\n")
    c.wait(lambda: b"got again\n" in c.streams[out_sid].data, 30)
    c.close()
    env.stop(cid, timeout=1)
    t.join(60)
    assert not t.is_alive()
    assert b"got hello\n" in second["res"].out and b"got again\n" in second["res"].out, second
    assert_success(second["res"])

    # stdin_once: the container sees the end of its input when the client leaves.
    ccfg = env.ctr_config("once", command=["sh", "-c", "cat; echo after-eof"])
    ccfg.stdin = True
    ccfg.stdin_once = True
    cid = env.create(pod, cfg, ccfg)
    env.start(cid)
    res = spdy_exec(attach_url(env, cid, stdin=True, stderr=False), stdin=b"line\n", stderr=False,
                    timeout=60)
    assert b"line\n" in res.out, res
    st = env.wait_exited(cid)
    assert st.exit_code == 0
    assert env.output(cfg, ccfg) == ["line", "after-eof"], env.output(cfg, ccfg)

    # A terminal.
    ccfg = env.ctr_config("term", command=["sh"])
    ccfg.stdin = True
    ccfg.tty = True
    cid = env.create(pod, cfg, ccfg)
    env.start(cid)
    code, msg = rpc_code(env.rt.Attach, env.api.AttachRequest(container_id=cid, stdin=True, stdout=True,
                                                               stderr=True, tty=True))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, msg)

    def interact(conn, in_sid, out_sid):
        conn.send(in_sid, b"stty size; echo tty-$((6*7)); exit\n")

    res = spdy_exec(attach_url(env, cid, stdin=True, stderr=False, tty=True), stdin=b"", tty=True,
                    stderr=False, resize=(91, 33), keep_stdin_open=True, interact=interact)
    assert b"tty-42" in res.out and b"33 91" in res.out, res
    env.wait_exited(cid)


def start_httpd(env, pod, cfg, port=HTTPD_PORT):
    cmd = ["sh", "-c", f"mkdir -p /tmp/www && printf '{PAGE.decode()}' > /tmp/www/index.html && "
                       f"exec httpd -f -p {port} -h /tmp/www"]
    cid, _ = env.run(pod, cfg, "httpd", command=cmd)
    # Ready once it listens: asked from inside the pod.
    deadline = time.monotonic() + 30
    while True:
        r = env.exec_sync(cid, ["sh", "-c", f"cat /proc/net/tcp /proc/net/tcp6 | grep -qi ':{port:04X} '"])
        if r.exit_code == 0:
            return cid
        assert time.monotonic() < deadline, "httpd did not listen"
        time.sleep(0.2)


def get_page(c, port, request_id):
    err = c.open({"streamtype": "error", "port": str(port), "requestid": str(request_id)})
    data = c.open({"streamtype": "data", "port": str(port), "requestid": str(request_id)})
    c.send(data, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", fin=True)
    body = c.read_all(data, 60)
    return body, c.streams[err]


def test_port_forward(pod_env):
    """A busybox httpd in a pod: its page over SPDY, 20 connections at once
    in one session; a refused port is told on its error stream and the
    session goes on; over WebSocket (v4 channels) and over SPDY tunnelled
    in WebSocket."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    start_httpd(env, pod, cfg)

    c = SpdyConn(pf_url(env, pod, [HTTPD_PORT, 9]), protocols=["portforward.k8s.io"])
    assert c.status == 101 and c.protocol == "portforward.k8s.io", (c.status, c.headers)
    results = {}

    def one(i):
        results[i] = get_page(c, HTTPD_PORT, i)[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert len(results) == 20
    for i, body in results.items():
        assert body.startswith(b"HTTP/1.") and body.endswith(PAGE), (i, body[:200])
    body, err_stream = get_page(c, 9, 100)
    c.wait(lambda: err_stream.fin or err_stream.reset is not None, 30)
    assert b"error forwarding port 9" in bytes(err_stream.data), bytes(err_stream.data)
    body, _ = get_page(c, HTTPD_PORT, 101)
    assert body.endswith(PAGE), body
    # A port the request did not name.
    body, err_stream = get_page(c, 22, 102)
    c.wait(lambda: err_stream.fin or err_stream.reset is not None, 30)
    assert b"not one the PortForward request named" in bytes(err_stream.data)
    c.close()

    import websocket
    ws = websocket.create_connection(ws_url(pf_url(env, pod)) + f"?port={HTTPD_PORT}",
                                     subprotocols=["v4.channel.k8s.io"], timeout=30)
    got = {0: b"", 1: b""}
    first = {}
    ws.send_binary(b"\x00GET / HTTP/1.0\r\n\r\n")
    while True:
        try:
            op, d = ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            break
        if op == websocket.ABNF.OPCODE_CLOSE:
            break
        if d[0] not in first:
            first[d[0]] = d[1:]
        else:
            got[d[0]] += d[1:]
    ws.close()
    assert first == {0: HTTPD_PORT.to_bytes(2, "little"), 1: HTTPD_PORT.to_bytes(2, "little")}, first
    assert got[0].endswith(PAGE), got

    # SPDY inside WebSocket, as kubectl 1.30 and later speak it.
    ws = websocket.create_connection(ws_url(pf_url(env, pod)), subprotocols=["SPDY/3.1+portforward.k8s.io"],
                                     timeout=30)
    tunnel = _WsSock(ws)
    c = SpdyConn.__new__(SpdyConn)
    _tunnel_init(c, tunnel)
    body, _ = get_page(c, HTTPD_PORT, 0)
    assert body.endswith(PAGE), body
    ws.close()
    env.d.assert_serving()


class _WsSock:
    """A socket-like face of a WebSocket carrying a byte stream."""

    def __init__(self, ws):
        self.ws = ws
        self.pending = b""

    def sendall(self, data):
        self.ws.send_binary(data)

    def recv(self, n):
        import websocket
        while not self.pending:
            try:
                op, d = self.ws.recv_data()
            except (websocket.WebSocketConnectionClosedException, OSError):
                return b""
            if op == websocket.ABNF.OPCODE_CLOSE:
                return b""
            self.pending = d
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def close(self):
        self.ws.close()


def _tunnel_init(c, sock):
    """A SpdyConn over an established tunnel (no HTTP upgrade of its own)."""
    import zlib
    from streaming_client import SPDY_DICT
    c.sock = sock
    c.status, c.headers, c.protocol = 101, {}, "portforward.k8s.io"
    c._comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                               SPDY_DICT)
    c._decomp = zlib.decompressobj(zdict=SPDY_DICT)
    c._buf = bytearray()
    c._lock = threading.Condition()
    c._wlock = threading.Lock()
    c.streams, c.next_sid, c.goaway, c.pings, c.closed, c.window_updates = {}, 1, None, [], False, 0
    c._reader = threading.Thread(target=c._read_loop, daemon=True)
    c._reader.start()


def test_spdy_control_frames(pod_env):
    """PING is echoed; a stream of an unknown type is refused; a session
    survives both."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    cid = sleeper(env, pod, cfg)
    c = SpdyConn(exec_url(env, cid, ["echo", "pong"], stderr=False))
    c.ping(7)
    c.wait(lambda: 7 in c.pings, 10)
    bad = c.open({"streamtype": "video"})
    assert c.streams[bad].reset == 3  # REFUSED_STREAM
    c.open({"streamtype": "error"})
    out = c.open({"streamtype": "stdout"})
    assert c.read_all(out) == b"pong\n"
    c.close()
    env.d.assert_serving()


def test_port_forward_host_network(pod_env):
    """A pod on the host's network: its port is dialed on the host."""
    env = pod_env
    env.pull()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    pod, cfg = env.new_pod(network=env.api.NODE)
    start_httpd(env, pod, cfg, port)
    c = SpdyConn(pf_url(env, pod, [port]), protocols=["portforward.k8s.io"])
    body, _ = get_page(c, port, 0)
    assert body.endswith(PAGE), body
    c.close()


def make_cert(tmp):
    cert, key = os.path.join(tmp, "stream.pem"), os.path.join(tmp, "stream.key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=crid-stream", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return cert, key


def test_tls(pod_env_factory, tmp_path):
    """With a certificate and key configured the URLs are https, and exec
    runs over TLS for SPDY and WebSocket; a plain-text client gets nowhere."""
    cert, key = make_cert(str(tmp_path))
    env = pod_env_factory(extra_config=f"stream_tls_cert: {cert}\nstream_tls_key: {key}\n")
    env.pull()
    pod, cfg = env.new_pod()
    cid = sleeper(env, pod, cfg)
    url = exec_url(env, cid, ["echo", "secret"])
    assert url.startswith("https://127.0.0.1:"), url
    ctx = ssl.create_default_context(cafile=cert)
    host, port = url.split("/")[2].split(":")
    raw = socket.create_connection((host, int(port)), timeout=30)
    c = SpdyConn(url, sock=ctx.wrap_socket(raw, server_hostname=host))
    assert c.status == 101, c.status
    c.open({"streamtype": "error"})
    out = c.open({"streamtype": "stdout"})
    err = c.open({"streamtype": "stderr"})
    assert c.read_all(out) == b"secret\n"
    c.close()

    import websocket
    ws = websocket.create_connection("wss" + exec_url(env, cid, ["echo", "wss"])[len("https"):],
                                     subprotocols=["v4.channel.k8s.io"], sslopt={"ca_certs": cert})
    got = b""
    while True:
        try:
            op, d = ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            break
        if op == websocket.ABNF.OPCODE_CLOSE:
            break
        if d[:1] == b"\x01":
            got += d[1:]
    ws.close()
    assert got == b"wss\n", got

    try:
        status, _, _ = http_request(exec_url(env, cid, ["true"]).replace("https://", "http://"))
    except ConnectionResetError:
        status = 0
    assert status == 0  # no HTTP answer to plain text on a TLS port
    env.d.assert_serving()


def thread_count(pid):
    """crid's session threads (named crid-stream; the worker pool may grow meanwhile)."""
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                n += f.read().strip() == "crid-stream"
        except FileNotFoundError:
            pass
    return n


def test_limits_and_hostile_clients(pod_env_factory):
    """stream_max_sessions: one connection more is answered 503;
    stream_idle_timeout_s closes a silent session; garbage after the
    upgrade (SPDY of another version, a frame bigger than allowed, an
    undecodable header block, unmasked or unknown WebSocket frames) ends
    that connection only; the threads of the sessions are gone after."""
    env = pod_env_factory(extra_config="stream_max_sessions: 2\nstream_idle_timeout_s: 2\n")
    env.pull()
    pod, cfg = env.new_pod()
    cid = sleeper(env, pod, cfg)
    threads_before = thread_count(env.d.pid)
    assert threads_before == 0

    def sessions_gone():
        # Two slots only: each connection below waits for the last to be gone.
        deadline = time.monotonic() + 20
        while thread_count(env.d.pid) > threads_before and time.monotonic() < deadline:
            time.sleep(0.1)

    # Two silent connections hold the two slots; a third is refused.
    held = [socket.create_connection(("127.0.0.1", int(exec_url(env, cid, ["true"]).split(":")[2].split("/")[0])))
            for _ in range(2)]
    time.sleep(0.5)
    status, _, _ = http_request(exec_url(env, cid, ["true"]))
    assert status == 503, status
    for s in held:
        s.close()
    sessions_gone()

    # An idle session is closed after its timeout.
    c = SpdyConn(exec_url(env, cid, ["sleep", "30"], stderr=False))
    c.open({"streamtype": "error"})
    c.open({"streamtype": "stdout"})
    t0 = time.monotonic()
    c.wait(lambda: c.closed, 20)
    assert time.monotonic() - t0 < 15
    c.close()

    hostile = [
        b"\x80\x02\x00\x01\x00\x00\x00\x00",                      # SPDY/2
        b"\x80\x03\x00\x01\x00\xff\xff\xff" + b"x" * 64,         # 16 MiB frame
        b"\x80\x03\x00\x01\x00\x00\x00\x10" + struct.pack(">IIH", 1, 0, 0) + b"garbage!",
        b"\x00\x00\x00\x63\x01\x00\x00\x03abc",                  # DATA on a stream never opened
    ]
    for raw in hostile:
        sessions_gone()
        c = SpdyConn(exec_url(env, cid, ["true"]))
        assert c.status == 101
        c.send_raw(raw)
        c.wait(lambda: c.closed or c.goaway is not None or any(
            s.reset is not None for s in c.streams.values()), 20)
        c.close()
    import websocket
    for raw in (b"\x82\x05hello", b"\x8f\x80abcd", b"\x82\xff" + b"\x7f" * 8 + b"abcd"):
        sessions_gone()
        ws = websocket.create_connection(ws_url(exec_url(env, cid, ["sleep", "30"])),
                                         subprotocols=["v4.channel.k8s.io"], timeout=20)
        ws.sock.sendall(raw)
        deadline = time.monotonic() + 20
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                op, _ = ws.recv_data()
                closed = op == websocket.ABNF.OPCODE_CLOSE
            except (websocket.WebSocketConnectionClosedException, OSError):
                closed = True
        assert closed, raw
        ws.close()

    deadline = time.monotonic() + 20
    while thread_count(env.d.pid) > threads_before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert thread_count(env.d.pid) <= threads_before, (threads_before, thread_count(env.d.pid))
    deadline = time.monotonic() + 20
    while procs_with_argv(["sleep", "30"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not procs_with_argv(["sleep", "30"])
    env.d.assert_serving()


def test_shutdown_ends_sessions(pod_env):
    """SIGTERM while an exec runs: crid ends the session, kills the exec'd
    process and exits in time, a silent connection notwithstanding; the
    container itself lives on."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    cid = sleeper(env, pod, cfg)
    c = SpdyConn(exec_url(env, cid, ["sleep", "4321"], stderr=False))
    c.open({"streamtype": "error"})
    c.open({"streamtype": "stdout"})
    deadline = time.monotonic() + 30
    while not procs_with_argv(["sleep", "4321"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # A client that connected and says nothing does not hold the shutdown up.
    host, port = c.sock.getpeername()
    silent = socket.create_connection((host, port))
    time.sleep(0.3)
    t0 = time.monotonic()
    rc, _ = env.d.stop(timeout=30)
    assert rc == 0
    assert time.monotonic() - t0 < 8, "crid waited for a silent connection's request"
    silent.close()
    c.wait(lambda: c.closed, 10)
    c.close()
    assert not procs_with_argv(["sleep", "4321"])
    assert procs_with_argv(["sleep", "3600"]), "the container went with the session"
    env.start_daemon()


def test_attach_slow_client_is_dropped(pod_env):
    """An attach client that never reads is disconnected by crid-shim once
    its socket is full; the CRI log gets every line and a client that reads
    gets them all too."""
    env = pod_env
    env.pull()
    pod, cfg = env.new_pod()
    n = 20000
    script = ("read go; i=0; while [ $i -lt %d ]; do echo line$i-%s; i=$((i+1)); done; echo all-done; "
              "sleep 3600" % (n, "x" * 90))
    ccfg = env.ctr_config("chatty", command=["sh", "-c", script])
    ccfg.stdin = True
    cid = env.create(pod, cfg, ccfg)
    env.start(cid)
    bundle = json.loads(env.status_resp(cid, verbose=True).info["info"])["bundle"]
    dfd = os.open(bundle, os.O_PATH | os.O_DIRECTORY)
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        slow.connect(f"/proc/self/fd/{dfd}/attach")
        c = SpdyConn(attach_url(env, cid, stdin=True, stderr=False))
        c.open({"streamtype": "error"})
        in_sid = c.open({"streamtype": "stdin"})
        out_sid = c.open({"streamtype": "stdout"})
        time.sleep(0.5)
        c.send(in_sid, b"go\n")
        c.wait(lambda: b"all-done\n" in c.streams[out_sid].data, 120)
        lines = bytes(c.streams[out_sid].data).split(b"\n")
        assert sum(1 for ln in lines if ln.startswith(b"line")) == n
        c.close()
        env.wait_output(cfg, ccfg, "all-done", timeout=60)
        assert len([ln for ln in env.output(cfg, ccfg) if ln.startswith("line")]) == n
        # The slow client: what fit in its socket, then the end.
        got, deadline = 0, time.monotonic() + 30
        slow.settimeout(5)
        while time.monotonic() < deadline:
            msg = slow.recv(65536)
            if not msg:
                break
            got += len(msg)
        else:
            pytest.fail("the slow client was never disconnected")
        assert 0 < got < n * 100, got
    finally:
        slow.close()
        os.close(dfd)
