"""A TCP proxy on 127.0.0.1 that puts network faults between crid and a real
registry: a bandwidth limit, a connection dropped after some bytes, a
transfer that stalls. The registry behind it is real; only the wire is
made worse."""

import socket
import threading
import time


class FaultProxy:
    """FaultProxy(target_port, rate=None, drop_after=None, drop_times=1,
    stall_after=None) forwards 127.0.0.1:<port> to 127.0.0.1:target_port.

    rate:        bytes per second from the registry, per connection
    drop_after:  close the first drop_times connections after this many
                 response bytes
    stall_after: stop forwarding responses after this many bytes (the
                 connection stays open) on every connection
    """

    def __init__(self, target_port, rate=None, drop_after=None, drop_times=1, stall_after=None):
        self.target_port = target_port
        self.rate = rate
        self.drop_after = drop_after
        self.drops_left = drop_times if drop_after is not None else 0
        self.stall_after = stall_after
        self.connections = 0
        self.requests = []  # first bytes of each request, for assertions
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
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump_requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump_responses, args=(upstream, client, drop), daemon=True).start()

    def _pump_requests(self, src, dst):
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
