"""Clients for crid's streaming server, written for the tests from the
specifications: SPDY/3.1 (framing, zlib header compression with the SPDY/3
dictionary) and the Kubernetes channel protocols on top of it, plus helpers
over Debian's python3-websocket for the WebSocket side.

    SpdyConn(url, protocols)       the HTTP upgrade, then streams:
        .status, .headers          the HTTP answer (101 when upgraded)
        .open(headers)             -> stream id (waits for SYN_REPLY)
        .send(sid, data, fin)      DATA frames
        .read_all(sid, timeout)    data until FIN or RST
    spdy_exec(url, ...)            -> ExecResult(out, err, status, error_text)
    ws_exec(url, ...)              the same over WebSocket channel protocols
    http_request(url, headers)     a plain request: (status, headers, body)
"""

import base64
import collections
import json
import socket
import struct
import threading
import time
import urllib.parse
import zlib

# The SPDY/3 header compression dictionary, as the specification lays it
# out: length-prefixed names and values, then common strings.
_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status").split() + [
    "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
SPDY_DICT = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) + _DICT_TAIL.encode()

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 1

EXEC_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")

ExecResult = collections.namedtuple("ExecResult", "out err status error_text")


def _split(url):
    u = urllib.parse.urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    return u.hostname, u.port, path


def _read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, rest


def http_request(url, headers=(), method="GET", timeout=10):
    """A plain HTTP/1.1 request on its own connection: (status, {name: [values]}, body)."""
    host, port, path = _split(url)
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        req = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        for k, v in headers:
            req += f"{k}: {v}\r\n"
        s.sendall((req + "\r\n").encode())
        status, hdrs, rest = _read_head(s)
        body = rest
        n = int(hdrs.get("content-length", ["0"])[0])
        while len(body) < n:
            chunk = s.recv(4096)
            if not chunk:
                break
            body += chunk
        return status, hdrs, body
    finally:
        s.close()


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.data = bytearray()
        self.fin = False
        self.reset = None
        self.replied = False


class SpdyConn:
    """One SPDY/3.1 connection to the streaming server, client side."""

    def __init__(self, url, protocols=EXEC_PROTOCOLS, method="POST", timeout=30, sock=None):
        host, port, path = _split(url)
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        req = (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n")
        for p in protocols:
            req += f"X-Stream-Protocol-Version: {p}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        self.status, self.headers, rest = _read_head(self.sock)
        self.protocol = (self.headers.get("x-stream-protocol-version") or [None])[0]
        self._comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9,
                                      zlib.Z_DEFAULT_STRATEGY, SPDY_DICT)
        self._decomp = zlib.decompressobj(zdict=SPDY_DICT)
        self._buf = bytearray(rest)
        self._lock = threading.Condition()
        self._wlock = threading.Lock()
        self.streams = {}
        self.next_sid = 1
        self.goaway = None
        self.pings = []
        self.closed = False
        self.window_updates = 0
        if self.status == 101:
            self._reader = threading.Thread(target=self._read_loop, daemon=True)
            self._reader.start()

    # -- frames ----------------------------------------------------------

    def _control(self, ftype, payload, flags=0):
        return struct.pack(">HHI", 0x8000 | 3, ftype, (flags << 24) | len(payload)) + payload

    def _header_block(self, headers):
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            raw += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
        return self._comp.compress(raw) + self._comp.flush(zlib.Z_SYNC_FLUSH)

    def _send(self, data):
        with self._wlock:
            self.sock.sendall(data)

    def open(self, headers, timeout=30, fin=False):
        # Stream IDs rise and header blocks share one compression context:
        # both must reach the wire in the order they were made.
        with self._wlock:
            with self._lock:
                sid = self.next_sid
                self.next_sid += 2
                self.streams[sid] = Stream(sid)
            payload = struct.pack(">IIH", sid, 0, 0) + self._header_block(headers)
            self.sock.sendall(self._control(SYN_STREAM, payload, FLAG_FIN if fin else 0))
        self.wait(lambda: self.streams[sid].replied or self.streams[sid].reset is not None
                  or self.closed, timeout)
        return sid

    def send(self, sid, data=b"", fin=False):
        view = memoryview(data)
        while True:
            part = view[:65536]
            view = view[65536:]
            last = len(view) == 0
            self._send(struct.pack(">II", sid, ((FLAG_FIN if fin and last else 0) << 24) | len(part))
                       + bytes(part))
            if last:
                return

    def ping(self, pid):
        self._send(self._control(PING, struct.pack(">I", pid)))

    def send_raw(self, data):
        self._send(data)

    def close(self):
        # The reader thread's recv holds the socket: shut it down first, so
        # the connection really ends now.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def wait(self, pred, timeout=30):
        deadline = time.monotonic() + timeout
        with self._lock:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("SPDY: condition not met in time; streams: " + ", ".join(
                        f"{s.sid}: {len(s.data)} bytes fin={s.fin} reset={s.reset}"
                        for s in self.streams.values()))
                self._lock.wait(min(left, 0.5))

    def read_all(self, sid, timeout=30):
        st = self.streams[sid]
        self.wait(lambda: st.fin or st.reset is not None or self.closed, timeout)
        return bytes(st.data)

    def _read_loop(self):
        try:
            while True:
                while len(self._buf) < 8:
                    if not self._fill():
                        return
                length = int.from_bytes(self._buf[5:8], "big")
                while len(self._buf) < 8 + length:
                    if not self._fill():
                        return
                frame = bytes(self._buf[:8 + length])
                del self._buf[:8 + length]
                self._frame(frame)
        except OSError:
            pass
        finally:
            with self._lock:
                self.closed = True
                self._lock.notify_all()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self._buf += chunk
        return True

    def _frame(self, f):
        flags = f[4]
        payload = f[8:]
        with self._lock:
            if f[0] & 0x80:
                ftype = int.from_bytes(f[2:4], "big")
                if ftype == SYN_REPLY:
                    sid = int.from_bytes(payload[:4], "big") & 0x7fffffff
                    self._decomp.decompress(payload[4:])
                    if sid in self.streams:
                        self.streams[sid].replied = True
                        if flags & FLAG_FIN:
                            self.streams[sid].fin = True
                elif ftype == RST_STREAM:
                    sid = int.from_bytes(payload[:4], "big") & 0x7fffffff
                    st = self.streams.setdefault(sid, Stream(sid))
                    st.reset = int.from_bytes(payload[4:8], "big")
                elif ftype == PING:
                    self.pings.append(int.from_bytes(payload[:4], "big"))
                elif ftype == GOAWAY:
                    self.goaway = int.from_bytes(payload[4:8], "big")
                elif ftype == WINDOW_UPDATE:
                    self.window_updates += 1
            else:
                sid = int.from_bytes(f[:4], "big") & 0x7fffffff
                st = self.streams.setdefault(sid, Stream(sid))
                st.data += payload
                if flags & FLAG_FIN:
                    st.fin = True
            self._lock.notify_all()


def spdy_exec(url, stdin=None, tty=False, stdout=True, stderr=True, protocols=EXEC_PROTOCOLS,
              resize=None, timeout=60, keep_stdin_open=False, interact=None):
    """Runs an exec (or attach) session to its end the way client-go does:
    error stream first, then stdin, stdout, stderr, resize. Returns an
    ExecResult; status is the parsed v4 Status (None before v4)."""
    c = SpdyConn(url, protocols)
    assert c.status == 101, f"upgrade refused: {c.status} {c.headers}"
    try:
        err_sid = c.open({"streamtype": "error"})
        in_sid = c.open({"streamtype": "stdin"}) if stdin is not None else None
        out_sid = c.open({"streamtype": "stdout"}) if stdout else None
        errs_sid = c.open({"streamtype": "stderr"}) if stderr and not tty else None
        rs_sid = c.open({"streamtype": "resize"}) if tty and c.protocol in (
            "v4.channel.k8s.io", "v3.channel.k8s.io") else None
        if resize and rs_sid:
            c.send(rs_sid, json.dumps({"Width": resize[0], "Height": resize[1]}).encode())
        if interact:
            interact(c, in_sid, out_sid)
        if in_sid is not None:
            if stdin:
                c.send(in_sid, stdin)
            if not keep_stdin_open:
                c.send(in_sid, b"", fin=True)
        out = c.read_all(out_sid, timeout) if out_sid else b""
        err = c.read_all(errs_sid, timeout) if errs_sid else b""
        etext = c.read_all(err_sid, timeout)
        status = json.loads(etext) if c.protocol == "v4.channel.k8s.io" and etext else None
        return ExecResult(out, err, status, etext.decode("utf-8", "replace"))
    finally:
        c.close()


def ws_url(url):
    return "ws" + url[len("http"):]


def ws_exec(url, protocol="v4.channel.k8s.io", stdin=None, tty=False, resize=None,
            timeout=60, close_stdin=True, stdout=True, stderr=True):
    """An exec (or attach) session over the WebSocket channel protocols.
    Returns ExecResult; status parsed for v4 and v5."""
    import websocket

    b64 = protocol.endswith("base64.channel.k8s.io")
    ws = websocket.create_connection(ws_url(url), subprotocols=[protocol], timeout=timeout)
    out, err, etext = bytearray(), bytearray(), bytearray()

    def send(ch, data):
        if b64:
            ws.send(str(ch) + base64.b64encode(data).decode())
        else:
            ws.send_binary(bytes([ch]) + data)

    try:
        assert ws.getsubprotocol() == protocol, ws.getsubprotocol()
        if resize:
            send(4, json.dumps({"Width": resize[0], "Height": resize[1]}).encode())
        feeder = None
        if stdin is not None:
            # Written while the output is read: neither side may wait for the other.
            def feed():
                view = memoryview(stdin)
                try:
                    while len(view):
                        send(0, bytes(view[:32768]))
                        view = view[32768:]
                    if close_stdin and protocol.startswith("v5."):
                        ws.send_binary(bytes([255, 0]))
                except (OSError, websocket.WebSocketException):
                    pass

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
        while True:
            try:
                op, data = ws.recv_data(control_frame=False)
            except websocket.WebSocketConnectionClosedException:
                break
            if op == websocket.ABNF.OPCODE_CLOSE or (not data and op != websocket.ABNF.OPCODE_TEXT
                                                     and op != websocket.ABNF.OPCODE_BINARY):
                break
            if b64:
                data = data.decode() if isinstance(data, bytes) else data
                ch, payload = int(data[0]), base64.b64decode(data[1:])
            else:
                ch, payload = data[0], data[1:]
            if ch == 1:
                out += payload
            elif ch == 2:
                err += payload
            elif ch == 3:
                etext += payload
        status = json.loads(etext) if protocol.startswith(("v4.", "v5.")) and etext else None
        if feeder:
            feeder.join(timeout)
        return ExecResult(bytes(out), bytes(err), status, etext.decode("utf-8", "replace"))
    finally:
        ws.close()
