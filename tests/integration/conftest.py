"""Fixtures and helpers for crid's integration tests.

Every test talks to a real crid started from $CRID_BIN with its own temporary
socket, run root, state root, config file, (empty) config dir and CNI
configuration directory, so neither the machine's /etc/crid nor its
/etc/cni/net.d is ever read. The CNI directory holds a loopback-only network
by default (pods get lo, and NetworkReady is true); tests of networking
give their own (cni_helpers.py). Message classes are generated from
proto/runtime/v1/api.proto with protoc at test time.

Helpers offered to tests:
  api              the generated runtime.v1.api_pb2 module
  crid_bin         path of the daemon binary
  daemon_factory   daemon_factory(args=[...], config="yaml", dropins={...},
                   cni_conflist=LOOPBACK_CONFLIST or None for an empty CNI dir)
                   -> Daemon (not started; call .start() or .run_to_exit())
  daemon           a default daemon, started
  shared_daemon    one started daemon per module, for read-only tests
  h2_factory       h2_factory(socket_path) -> H2Client (raw HTTP/2)
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import grpc
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROTO_DIR = os.path.join(REPO, "proto")
PROTO_FILE = os.path.join(PROTO_DIR, "runtime", "v1", "api.proto")

ASAN_OPTIONS = "quarantine_size_mb=16:detect_leaks=1"
READY_TIMEOUT_S = 20.0
CALL_TIMEOUT_S = 10.0

# Lines that mean a sanitizer found a bug in the daemon.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "LeakSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
)
# UBSan: "src/x.c:12:3: runtime error: ..."
UBSAN_LINE = re.compile(r"\.[ch]:\d+:\d+: runtime error: ")

SERVICE_PREFIXES = ("runtime.v1", "runtime.v1alpha2")

# The network of every test daemon unless a test gives its own: loopback
# only, so pods cost one cheap plugin call and get no address.
LOOPBACK_CONFLIST = json.dumps({"cniVersion": "1.0.0", "name": "crid-it-lo",
                                "plugins": [{"type": "loopback"}]})
CNI_CONFLIST_NAME = "50-crid-it.conflist"
# Debian's containernetworking-plugins; the daemon's own bin dir comes first
# so tests can add plugins of their own.
SYSTEM_CNI_BIN_DIRS = ("/opt/cni/bin", "/usr/lib/cni")

# ---------------------------------------------------------------------------
# Generated protobuf module


_API = None
_API_DIR = None


def _remove_api_dir():
    if _API_DIR and os.path.isdir(_API_DIR):
        shutil.rmtree(_API_DIR, ignore_errors=True)


def load_api():
    """Runs protoc once per session and imports runtime.v1.api_pb2.

    Used by the `api` fixture and by pytest_generate_tests (which needs the
    method list from the descriptor at collection time)."""
    global _API, _API_DIR
    if _API is not None:
        return _API
    if shutil.which("protoc") is None:
        raise RuntimeError("protoc not found (apt-get install protobuf-compiler)")
    _API_DIR = tempfile.mkdtemp(prefix="crid-proto-")
    atexit.register(_remove_api_dir)
    res = subprocess.run(
        ["protoc", f"--python_out={_API_DIR}", f"-I{PROTO_DIR}", PROTO_FILE],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise RuntimeError(f"protoc failed ({res.returncode}): {res.stderr}")
    sys.path.insert(0, _API_DIR)
    import importlib

    _API = importlib.import_module("runtime.v1.api_pb2")
    return _API


def method_descriptor(service_path):
    """('/runtime.v1alpha2.RuntimeService/Version') -> MethodDescriptor or None.

    The v1alpha2 services use the v1 messages."""
    api = load_api()
    parts = service_path.lstrip("/").split("/")
    if len(parts) != 2:
        return None
    svc_full, name = parts
    svc_short = svc_full.rsplit(".", 1)[-1]
    svc = api.DESCRIPTOR.services_by_name.get(svc_short)
    if svc is None:
        return None
    return svc.methods_by_name.get(name)


def message_class(desc):
    return getattr(load_api(), desc.name)


def all_methods():
    """[(service short name, MethodDescriptor)] for every method of the proto."""
    api = load_api()
    out = []
    for svc_name, svc in api.DESCRIPTOR.services_by_name.items():
        for m in svc.methods:
            out.append((svc_name, m))
    return out


def is_server_streaming(mdesc):
    if hasattr(mdesc, "server_streaming"):
        return bool(mdesc.server_streaming)
    from google.protobuf import descriptor_pb2

    sp = descriptor_pb2.ServiceDescriptorProto()
    mdesc.containing_service.CopyToProto(sp)
    for m in sp.method:
        if m.name == mdesc.name:
            return bool(m.server_streaming)
    raise KeyError(mdesc.name)


@pytest.fixture(scope="session")
def api():
    return load_api()


# ---------------------------------------------------------------------------
# Daemon binary


@pytest.fixture(scope="session")
def crid_bin():
    path = os.environ.get("CRID_BIN")
    if not path:
        pytest.fail(
            "CRID_BIN is not set: run e.g. "
            "`make VARIANT=asan all && CRID_BIN=$PWD/build/asan/crid "
            "/usr/bin/python3 -m pytest -v tests/integration`",
            pytrace=False,
        )
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        pytest.fail(f"CRID_BIN={path!r} does not exist or is not executable", pytrace=False)
    return os.path.abspath(path)


def daemon_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ASAN_OPTIONS
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


# ---------------------------------------------------------------------------
# Daemon helper

# Daemons alive or finished during the current test: their stderr is
# attached to the report of a failing test.
_CURRENT = []
_RECENT = []


class DaemonExited(AssertionError):
    pass


class Stub:
    """stub.Version(req) calls /<service>/Version with the proto's types.

    Unary methods return the response; server-streaming methods return the
    grpc call object (an iterator of responses)."""

    def __init__(self, channel, service):
        self._channel = channel
        self._service = service  # e.g. "runtime.v1alpha2.RuntimeService"

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        path = f"/{self._service}/{name}"
        desc = method_descriptor(path)
        if desc is None:
            raise AttributeError(f"no method {path} in the proto")
        req_cls = message_class(desc.input_type)
        resp_cls = message_class(desc.output_type)
        streaming = is_server_streaming(desc)
        ch = self._channel

        def call(request=None, timeout=CALL_TIMEOUT_S, **kw):
            if request is None:
                request = req_cls()
            if streaming:
                mc = ch.unary_stream(
                    path,
                    request_serializer=req_cls.SerializeToString,
                    response_deserializer=resp_cls.FromString,
                )
            else:
                mc = ch.unary_unary(
                    path,
                    request_serializer=req_cls.SerializeToString,
                    response_deserializer=resp_cls.FromString,
                )
            return mc(request, timeout=timeout, **kw)

        call.__name__ = name
        return call


class Daemon:
    """One crid process with its own temporary directories.

    d = Daemon(bin, args=[...], config="...", dropins={"10-x.yaml": "..."})
    d.start()              # waits until the socket accepts connections
    d.rt().Version()       # v1 RuntimeService stub; d.rt("v1alpha2") etc.
    rc, err = d.stop()     # SIGTERM, wait, exit code and stderr
    d.cleanup()            # kills if still running, removes the temp dir
    """

    def __init__(self, binary, args=(), config="", dropins=None, socket_path=None,
                 log_level="debug", tmp_root=None, cni_conflist=LOOPBACK_CONFLIST):
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="crid-it-", dir=tmp_root or "/tmp")
        self.socket_path = socket_path or os.path.join(self.tmp, "crid.sock")
        self.run_root = os.path.join(self.tmp, "run")
        self.state_root = os.path.join(self.tmp, "state")
        self.config_path = os.path.join(self.tmp, "crid.yaml")
        self.config_dir = os.path.join(self.tmp, "crid.d")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self.stdout_path = os.path.join(self.tmp, "stdout.log")
        self.cni_conf_dir = os.path.join(self.tmp, "cni", "net.d")
        self.cni_bin_dir = os.path.join(self.tmp, "cni", "bin")
        os.makedirs(self.config_dir)
        os.makedirs(self.cni_conf_dir)
        os.makedirs(self.cni_bin_dir)
        if cni_conflist:
            self.write_cni_conflist(cni_conflist)
        with open(self.config_path, "w") as f:
            f.write(config)
        for name, text in (dropins or {}).items():
            with open(os.path.join(self.config_dir, name), "w") as f:
                f.write(text)
        self.extra_args = list(args)
        self.log_level = log_level
        self.proc = None
        self.returncode = None
        self._channels = []
        self._lock = threading.Lock()
        self._stderr_cache = None

    # -- process -----------------------------------------------------------

    @property
    def argv(self):
        argv = [
            self.binary,
            "--socket", self.socket_path,
            "--run-root", self.run_root,
            "--state-root", self.state_root,
            "--config", self.config_path,
            "--config-dir", self.config_dir,
            "--cni-conf-dir", self.cni_conf_dir,
            "--cni-bin-dirs", ":".join((self.cni_bin_dir,) + SYSTEM_CNI_BIN_DIRS),
        ]
        if self.log_level:
            argv += ["--log-level", self.log_level]
        return argv + self.extra_args

    @property
    def pid(self):
        return self.proc.pid

    def dropin_path(self, name):
        return os.path.join(self.config_dir, name)

    def write_cni_conflist(self, text, name=CNI_CONFLIST_NAME):
        """Puts a network configuration into the daemon's CNI directory
        (atomically: written aside, then renamed, as installers do)."""
        path = os.path.join(self.cni_conf_dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
        return path

    def _spawn(self):
        assert self.proc is None, "daemon already started"
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=daemon_env(), close_fds=True,
            )
        finally:
            out.close()
            err.close()
        self.started_at = time.monotonic()

    def start(self, timeout=READY_TIMEOUT_S):
        """Starts crid and waits until its socket accepts connections."""
        self._spawn()
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise DaemonExited(
                    f"crid exited with code {rc} before serving.\n"
                    f"argv: {' '.join(self.argv)}\nstderr:\n{self.stderr()}"
                )
            if self.accepts_connections():
                return self
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"crid did not accept connections on {self.socket_path} within "
                    f"{timeout}s.\nargv: {' '.join(self.argv)}\nstderr:\n{self.stderr()}",
                    pytrace=False,
                )
            time.sleep(0.05)

    def run_to_exit(self, timeout=20.0):
        """Starts crid expecting it to exit by itself (bad config, second
        instance...). Returns (exit code, stdout, stderr)."""
        self._spawn()
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            serving = self.accepts_connections()
            self.kill()
            pytest.fail(
                f"crid did not exit within {timeout}s (serving: {serving}).\n"
                f"argv: {' '.join(self.argv)}\nstderr:\n{self.stderr()}",
                pytrace=False,
            )
        return self.returncode, self.stdout(), self.stderr()

    def accepts_connections(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect(self.socket_path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        assert self.alive(), "daemon is not running"
        os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit code or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Sends sig (SIGTERM), waits; returns (exit code, stderr).

        Fails the test (after SIGKILL) when crid does not exit in time."""
        if self.proc is None:
            raise AssertionError("daemon was never started")
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            raise AssertionError(
                f"crid (pid {self.proc.pid}) did not exit within {timeout}s of "
                f"signal {sig}.\nstderr:\n{self.stderr_tail()}"
            )
        return rc, self.stderr()

    def kill(self):
        """SIGKILL our own process (by pid) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.returncode = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close_channels(self):
        with self._lock:
            chans, self._channels = self._channels, []
        for ch in chans:
            try:
                ch.close()
            except Exception:
                pass

    def cleanup(self):
        self.close_channels()
        self.kill()
        self._stderr_cache = self._read(self.stderr_path)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- output ------------------------------------------------------------

    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr(self):
        if self._stderr_cache is not None:
            return self._stderr_cache
        return self._read(self.stderr_path)

    def stdout(self):
        return self._read(self.stdout_path)

    def stderr_tail(self, lines=150):
        text = self.stderr().splitlines()
        head = ""
        if len(text) > lines:
            head = f"[... {len(text) - lines} earlier lines ...]\n"
        return head + "\n".join(text[-lines:])

    def sanitizer_report(self):
        """The sanitizer lines in stderr, or '' when there are none."""
        hits = [ln for ln in self.stderr().splitlines()
                if any(m in ln for m in SANITIZER_MARKERS) or UBSAN_LINE.search(ln)]
        return "\n".join(hits)

    def wait_for_stderr(self, predicate, timeout=5.0):
        """Polls stderr until predicate(text) is true; returns the text."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                return text
            time.sleep(0.05)

    # -- /proc -------------------------------------------------------------

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    parts = line.split()
                    assert parts[2] == "kB", line
                    return int(parts[1]) * 1024
        raise AssertionError("no VmRSS in /proc/%d/status" % self.proc.pid)

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    # -- gRPC --------------------------------------------------------------

    def channel(self, options=(), own_connection=True):
        """A new grpc channel to the daemon. With own_connection (default)
        it does not share its connection with other channels."""
        opts = list(options)
        if own_connection:
            opts.append(("grpc.use_local_subchannel_pool", 1))
        ch = grpc.insecure_channel(f"unix:{self.socket_path}", options=opts)
        with self._lock:
            self._channels.append(ch)
        return ch

    def stub(self, service="runtime.v1.RuntimeService", channel=None):
        if channel is None:
            channel = self.default_channel()
        return Stub(channel, service)

    def rt(self, version="v1", channel=None):
        return self.stub(f"runtime.{version}.RuntimeService", channel)

    def img(self, version="v1", channel=None):
        return self.stub(f"runtime.{version}.ImageService", channel)

    def default_channel(self):
        ch = getattr(self, "_default_channel", None)
        if ch is None:
            ch = self._default_channel = self.channel()
        return ch

    def raw_call(self, path, payload, timeout=CALL_TIMEOUT_S, channel=None, streaming=False):
        """Calls path with payload bytes as the request message; returns the
        response bytes (or the call iterator when streaming)."""
        ch = channel or self.default_channel()
        ident = lambda x: x  # noqa: E731
        if streaming:
            mc = ch.unary_stream(path, request_serializer=ident, response_deserializer=ident)
        else:
            mc = ch.unary_unary(path, request_serializer=ident, response_deserializer=ident)
        return mc(payload, timeout=timeout)

    def assert_serving(self, msg=""):
        """The process is alive and answers Version on a fresh connection."""
        rc = self.proc.poll()
        assert rc is None, f"crid died (exit code {rc}) {msg}\nstderr:\n{self.stderr_tail()}"
        ch = self.channel()
        try:
            resp = self.rt(channel=ch).Version(load_api().VersionRequest(version="0.1.0"),
                                               timeout=CALL_TIMEOUT_S)
        finally:
            ch.close()
        assert resp.runtime_name == "crid", resp
        return resp


@pytest.fixture
def daemon_factory(crid_bin):
    """daemon_factory(args=[...], config="", dropins={}, socket_path=None)
    -> Daemon (not started). Every daemon is stopped and its temp dir
    removed at teardown; a sanitizer report in its stderr fails the test."""
    made = []

    def make(**kw):
        d = Daemon(crid_bin, **kw)
        made.append(d)
        _CURRENT.append(d)
        return d

    yield make
    _teardown_daemons(made)


def _teardown_daemons(daemons):
    problems = []
    for d in daemons:
        try:
            d.close_channels()
            if d.alive():
                try:
                    d.stop(timeout=30)
                except AssertionError as e:
                    problems.append(str(e))
            report = d.sanitizer_report() if d.proc is not None else ""
            if report:
                problems.append(
                    f"sanitizer report in crid's stderr (pid {d.proc.pid}):\n{report}\n"
                    f"--- full stderr tail ---\n{d.stderr_tail(300)}"
                )
        finally:
            d.cleanup()
            if d in _CURRENT:
                _CURRENT.remove(d)
            _RECENT.append(d)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def daemon(daemon_factory):
    """A crid with default flags, serving."""
    return daemon_factory().start()


@pytest.fixture(scope="module")
def shared_daemon(crid_bin):
    """One crid shared by the read-only tests of a module."""
    d = Daemon(crid_bin)
    _CURRENT.append(d)
    try:
        d.start()
        yield d
    finally:
        _teardown_daemons([d])


# ---------------------------------------------------------------------------
# Reports: attach daemon stderr to failing tests


def pytest_runtest_setup(item):
    _RECENT.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        seen = set()
        for d in list(_CURRENT) + list(_RECENT):
            if id(d) in seen or d.proc is None:
                continue
            seen.add(id(d))
            rc = d.proc.poll()
            rep.sections.append((
                f"crid pid {d.proc.pid} stderr ({'running' if rc is None else f'exit {rc}'})",
                f"argv: {' '.join(d.argv)}\n{d.stderr_tail()}",
            ))


# ---------------------------------------------------------------------------
# Raw HTTP/2 client (h2)

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def grpc_frame(payload, compressed=False, length=None):
    """The 5-byte gRPC prefix + payload; length overrides the stated length."""
    n = len(payload) if length is None else length
    return struct.pack(">BI", 1 if compressed else 0, n) + payload


def grpc_messages(data):
    """Splits a gRPC body into [(compressed flag, bytes)]; asserts framing."""
    out = []
    i = 0
    while i < len(data):
        assert len(data) - i >= 5, f"truncated gRPC prefix in {data!r}"
        flag, n = struct.unpack(">BI", data[i:i + 5])
        assert len(data) - i - 5 >= n, f"truncated gRPC message in {data!r}"
        out.append((flag, data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


class H2Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None  # list of (bytes, bytes)
        self.trailers = None
        self.data = b""
        self.ended = False
        self.reset = None  # error code of a RST_STREAM
        self.ended_at = None

    def _get(self, hdrs, name):
        if hdrs is None:
            return None
        name = name.encode() if isinstance(name, str) else name
        for k, v in hdrs:
            if k == name:
                return v
        return None

    def header(self, name):
        v = self._get(self.headers, name)
        return None if v is None else v.decode("latin-1")

    @property
    def status_trailers(self):
        """Trailers, or the headers of a trailers-only response."""
        if self.trailers is not None:
            return self.trailers
        if self._get(self.headers, b"grpc-status") is not None:
            return self.headers
        return None

    def trailer(self, name):
        v = self._get(self.status_trailers, name)
        return None if v is None else v.decode("latin-1")

    def trailer_raw(self, name):
        return self._get(self.status_trailers, name)

    @property
    def grpc_status(self):
        v = self.trailer("grpc-status")
        return None if v is None else int(v)

    @property
    def grpc_message(self):
        raw = self.trailer_raw("grpc-message")
        if raw is None:
            return None
        return urllib.parse.unquote_to_bytes(raw).decode("utf-8", "replace")

    def messages(self):
        return grpc_messages(self.data)

    def describe(self):
        return (f"stream {self.sid}: headers={self.headers} trailers={self.trailers} "
                f"data={self.data[:200]!r} reset={self.reset} ended={self.ended}")


def _lenient_h2_connection_class():
    import h2.connection
    import hyperframe.frame as hf

    class LenientH2Connection(h2.connection.H2Connection):
        """h2 turns any frame that arrives on a stream both sides already
        ended into a connection error. RFC 9113 5.1 allows RST_STREAM and
        WINDOW_UPDATE shortly after END_STREAM, and gRPC servers do send
        RST_STREAM(NO_ERROR) after their trailers. Such frames are recorded
        in late_frames and otherwise ignored, so one test's quirk does not
        break the connection for the rest of it."""

        late_frames = None

        def _receive_frame(self, frame):
            sid = frame.stream_id
            if (sid != 0 and not isinstance(frame, hf.PriorityFrame)
                    and sid % 2 == 1 and sid <= self.highest_outbound_stream_id
                    and (sid not in self.streams or self.streams[sid].closed)):
                if self.late_frames is None:
                    self.late_frames = []
                self.late_frames.append(frame)
                return []
            return super()._receive_frame(frame)

    return LenientH2Connection


class H2Client:
    """A minimal HTTP/2 client over crid's unix socket, for hand-made gRPC."""

    def __init__(self, socket_path, connect=True, validate=True):
        """validate=False sends header fields exactly as given, malformed
        ones included (h2 would otherwise refuse or normalise them)."""
        import h2.config

        self.socket_path = socket_path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(socket_path)
        self.conn = _lenient_h2_connection_class()(
            config=h2.config.H2Configuration(client_side=True, header_encoding=None,
                                             validate_outbound_headers=validate,
                                             normalize_outbound_headers=validate))
        self.streams = {}
        self.ping_acks = []
        self.goaway = None
        self.closed = False
        if connect:
            self.conn.initiate_connection()
            self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def grpc_headers(self, path, extra=()):
        if isinstance(path, str):
            path = path.encode("utf-8")
        hdrs = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path),
            (b":authority", b"localhost"),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ]
        for k, v in extra:
            hdrs.append((k.encode() if isinstance(k, str) else k,
                         v.encode() if isinstance(v, str) else v))
        return hdrs

    def start_call(self, path, body=None, extra_headers=(), end_stream=True, headers=None):
        """Sends HEADERS (+ DATA body); returns the H2Stream. headers, when
        given, replaces the whole header list (path and extra_headers are
        then unused)."""
        sid = self.conn.get_next_available_stream_id()
        st = self.streams[sid] = H2Stream(sid)
        hdrs = headers if headers is not None else self.grpc_headers(path, extra_headers)
        if body is None:
            self.conn.send_headers(sid, hdrs, end_stream=end_stream)
        else:
            self.conn.send_headers(sid, hdrs, end_stream=False)
            self.conn.send_data(sid, body, end_stream=end_stream)
        self.flush()
        return st

    def call(self, path, body, extra_headers=(), timeout=10.0):
        """A complete unary call: returns the ended H2Stream."""
        st = self.start_call(path, body, extra_headers)
        self.read_until(lambda: st.ended, timeout)
        return st

    def ping(self, opaque, timeout=10.0):
        self.conn.ping(opaque)
        self.flush()
        self.read_until(lambda: opaque in self.ping_acks, timeout)

    def read_until(self, pred, timeout=10.0):
        import h2.events as ev
        import h2.exceptions

        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    "no answer from crid within %.1fs; streams: %s" % (
                        timeout, "; ".join(s.describe() for s in self.streams.values())))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                if pred():
                    return
                raise ConnectionError(
                    "crid closed the connection; goaway=%r; streams: %s" % (
                        self.goaway, "; ".join(s.describe() for s in self.streams.values())))
            for e in self.conn.receive_data(data):
                sid = getattr(e, "stream_id", None)
                st = self.streams.get(sid) if sid else None
                if isinstance(e, ev.ResponseReceived):
                    st.headers = list(e.headers)
                elif isinstance(e, ev.TrailersReceived):
                    st.trailers = list(e.headers)
                elif isinstance(e, ev.DataReceived):
                    if st is not None:
                        st.data += e.data
                    try:
                        self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    except h2.exceptions.StreamClosedError:
                        pass
                elif isinstance(e, ev.StreamEnded):
                    st.ended = True
                    st.ended_at = time.monotonic()
                elif isinstance(e, ev.StreamReset):
                    if st is not None:
                        st.reset = e.error_code
                        st.ended = True
                        st.ended_at = time.monotonic()
                elif isinstance(e, ev.PingAckReceived):
                    self.ping_acks.append(e.ping_data)
                elif isinstance(e, ev.ConnectionTerminated):
                    self.goaway = e
            self.flush()


@pytest.fixture
def h2_factory():
    made = []

    def make(socket_path, **kw):
        c = H2Client(socket_path, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def status_info_config(status_response):
    """The effective config JSON object of a verbose Status response."""
    info = dict(status_response.info)
    assert "config" in info, f"Status verbose info has no 'config' key: {sorted(info)}"
    cfg = json.loads(info["config"])
    assert isinstance(cfg, dict), f"info['config'] is not a JSON object: {info['config']!r}"
    return cfg
