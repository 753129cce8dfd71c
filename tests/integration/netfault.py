"""A TCP proxy on 127.0.0.1 that puts network faults between crid and a real
registry: a bandwidth limit, a connection dropped after some bytes, a
transfer that stalls, canned HTTP answers (5xx/429, redirects) in place of
some requests. The registry behind it is real; only the wire is made
worse."""

import http
import re
import socket
import threading
import time

MAX_REQUEST_HEAD = 64 * 1024


def http_response(status, headers=(), body=b""):
    """Bytes of a complete HTTP/1.1 answer that closes the connection."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


BLOB_PATH = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")


class FaultProxy:
    """FaultProxy(target_port, rate=None, drop_after=None, drop_times=1,
    stall_after=None) forwards 127.0.0.1:<port> to 127.0.0.1:target_port.

    rate:        bytes per second from the registry, per connection
    drop_after:  close the first drop_times connections after this many
                 response bytes
    stall_after: stop forwarding responses after this many bytes (the
                 connection stays open) on every connection

    drop_after=0 closes the connection right after accepting it, before
    reading anything (nothing reaches the registry); drop_times=None drops
    every connection.

    HTTP-aware options (requests are split at the end of their head plus any
    Content-Length body; a canned answer closes the connection):
    http_errors:       answer the first N requests whose request line
                       matches `match` with http_error_status (503, 429...),
                       Content-Length: 0, without forwarding them
    match:             regex (str) searched in the request line
                       ("GET /v2/x/blobs/... HTTP/1.1"): only matching
                       requests get a canned answer; None matches all
    redirect_blobs:    answer each blob GET (/v2/<repo>/blobs/sha256:...)
                       with redirect_status (307) and a Location of
                       redirect_blobs + path (a str), or of
                       redirect_blobs(path) (a callable)
    answer:            answer(method, path, head) -> bytes or None: a raw
                       answer to send instead of forwarding (see
                       http_response), or None to forward
    parse_http:        split and record requests (whole heads) even with
                       none of the above

    Counters: connections, requests (the first 2 KiB of each chunk sent,
    or each whole request head in HTTP-aware mode), answered (request lines
    given a canned answer), http_errors_sent.
    """

    def __init__(self, target_port, rate=None, drop_after=None, drop_times=1, stall_after=None,
                 http_errors=0, http_error_status=503, match=None, redirect_blobs=None,
                 redirect_status=307, answer=None, parse_http=False):
        self.target_port = target_port
        self.rate = rate
        self.drop_after = drop_after
        if drop_after is None:
            self.drops_left = 0
        else:
            self.drops_left = float("inf") if drop_times is None else drop_times
        self.stall_after = stall_after
        self.http_errors_left = http_errors
        self.http_error_status = http_error_status
        self.match = re.compile(match) if match is not None else None
        self.redirect_blobs = redirect_blobs
        self.redirect_status = redirect_status
        self.answer = answer
        self._http_aware = bool(parse_http or http_errors or redirect_blobs or answer)
        self.connections = 0
        self.requests = []  # first bytes of each request, for assertions
        self.answered = []  # request lines answered with a canned answer
        self.http_errors_sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                drop = None
                if self.drops_left > 0:
                    self.drops_left -= 1
                    drop = self.drop_after
            if drop == 0:
                _close(client)  # closed right after accepting
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump_requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump_responses, args=(upstream, client, drop), daemon=True).start()

    def _pump_requests(self, src, dst):
        if self._http_aware:
            return self._pump_http_requests(src, dst)
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:
                    self.requests.append(data[:2048])
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(dst)

    def _pump_http_requests(self, src, dst):
        buf = b""
        canned = None
        try:
            while not self._stop.is_set() and canned is None:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                while canned is None:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buf) > MAX_REQUEST_HEAD:
                            raise OSError("request head too large")
                        break
                    head = buf[:end + 4]
                    n = _content_length(head)
                    if len(buf) < end + 4 + n:
                        break
                    req, buf = buf[:end + 4 + n], buf[end + 4 + n:]
                    with self._lock:
                        self.requests.append(head)
                    canned = self._canned(head)
                    if canned is None:
                        dst.sendall(req)
            if canned is not None:
                src.sendall(canned)
        except OSError:
            pass
        finally:
            if canned is not None:
                _close(src)
                _close(dst)
            else:
                _shutdown(dst)

    def _canned(self, head):
        """The canned answer for a request head, or None to forward it."""
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
        if self.match is not None and not self.match.search(line):
            return None
        out = None
        with self._lock:
            if self.http_errors_left > 0:
                self.http_errors_left -= 1
                self.http_errors_sent += 1
                out = http_response(self.http_error_status)
        if out is None and self.redirect_blobs is not None and method == "GET" \
                and BLOB_PATH.match(path.split("?", 1)[0]):
            rb = self.redirect_blobs
            loc = rb(path) if callable(rb) else rb.rstrip("/") + path
            out = http_response(self.redirect_status, [("Location", loc)])
        if out is None and self.answer is not None:
            out = self.answer(method, path, head)
        if out is not None:
            with self._lock:
                self.answered.append(line)
        return out

    def _pump_responses(self, src, dst, drop):
        sent = 0
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                data = src.recv(16384)
                if not data:
                    break
                if drop is not None and sent + len(data) >= drop:
                    dst.sendall(data[:max(0, drop - sent)])
                    break
                if self.stall_after is not None and sent + len(data) >= self.stall_after:
                    dst.sendall(data[:max(0, self.stall_after - sent)])
                    self._stop.wait()  # hold the connection open, silent
                    break
                dst.sendall(data)
                sent += len(data)
                if self.rate:
                    ahead = sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        finally:
            _close(dst)
            _close(src)

    def range_requests(self):
        with self._lock:
            return [r for r in self.requests if b"\r\nrange:" in r.lower()]

    def close(self):
        self._stop.set()
        _close(self.listener)
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            _close(s)
        self._thread.join(timeout=5)


def _content_length(head):
    m = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.IGNORECASE)
    return int(m.group(1)) if m else 0


def _shutdown(s):
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _close(s):
    # shutdown first: a plain close leaves the connection up while another
    # thread is still blocked reading the socket.
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
