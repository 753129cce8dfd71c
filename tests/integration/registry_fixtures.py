"""Real OCI registries on 127.0.0.1 for crid's integration tests.

Runs Debian's docker-registry (distribution 2.8.2, /usr/bin/docker-registry)
and fills it with the images of image_builder.standard_images(). Nothing is
mocked; all traffic stays on 127.0.0.1.

    Registry(workdir, name)      one docker-registry process
        .start(storage_dir, tls=None, htpasswd=None, token=None, port=None,
               readonly=False)
        .stop()
        .host  '127.0.0.1:PORT'   .url 'http(s)://127.0.0.1:PORT'
        .port  .scheme  .ca_file (TLS only)  .log_path  .config_path
        .storage_dir  .pid  .credentials ((user, pw) for htpasswd)
        .token_server (TokenServer for token auth)
        .ssl_context()  .request(method, path, headers=, data=, auth="auto")
        .get_manifest(repo, ref, accept=ALL_MANIFEST_TYPES)  .get_blob(repo, digest)
        .responses()  parsed "response completed" log lines
        .blob_get_count(repo, digest)  .manifest_get_count(repo, ref=None)
        .blob_path(digest)  .tamper_blob(digest, mode="flip")
    TokenServer(workdir)         Docker bearer-token server (/token)
        .start() .stop() .realm .service .issuer .cert_file .token_requests
        .requests .issue(sub, access, ttl=300)  .users
        .refresh_tokens .refresh_error_status .post_requests (OAuth2 POST)
    push(registry, repo, ref, image_or_index) -> manifest digest
    make_tls(dir) -> TLSFiles(ca_file, cert_file, key_file)
    make_htpasswd(path, user, password)
    free_port()  closed_port()
    http_request(method, url, ...) -> Response(status, headers, body)
    RegistrySet(...)  context manager: plain, tls, basic, token registries
                      sharing one storage with every standard image pushed
    pytest fixtures (import them into a test module or conftest):
        registry_set        session-wide RegistrySet (one per process)
        separate_registry   factory -> own Registry on its own storage
"""

import base64
import collections
import ctypes
import datetime
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import image_builder as ib

REGISTRY_BIN = os.environ.get("CRID_TEST_REGISTRY_BIN", "/usr/bin/docker-registry")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
LOOPBACK = "127.0.0.1"

USERNAME = "crid"
PASSWORD = "s3cret"
TOKEN_SERVICE = "crid-test-registry"
TOKEN_ISSUER = "crid-test-token-issuer"

# ---------------------------------------------------------------------------
# Small helpers


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port with nothing listening (connect gets ECONNREFUSED)."""
    for _ in range(20):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as c:
            c.settimeout(1)
            if c.connect_ex((LOOPBACK, port)) != 0:
                return port
    raise RuntimeError("could not find a closed port")


Response = collections.namedtuple("Response", "status headers body")

# No proxies for loopback traffic, whatever the environment says.
_NO_PROXY = urllib.request.ProxyHandler({})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def http_request(method, url, data=None, headers=None, ssl_context=None, basic=None,
                 timeout=30.0, follow_redirects=True):
    """One HTTP request with urllib; never raises for HTTP status codes.
    basic=(user, password) adds an Authorization: Basic header."""
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"refusing non-loopback URL {url}")
    h = dict(headers or {})
    if basic is not None:
        h["Authorization"] = "Basic " + base64.b64encode(
            f"{basic[0]}:{basic[1]}".encode()).decode()
    req = urllib.request.Request(url, data=data, headers=h, method=method)
    handlers = [_NO_PROXY, urllib.request.HTTPSHandler(context=ssl_context)]
    if not follow_redirects:
        handlers.append(_NoRedirect())
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        body = e.read() if e.fp is not None else b""
        return Response(e.code, e.headers, body)


def _set_pdeathsig():
    """Child: get SIGTERM if the parent (pytest) dies, so no registry outlives it."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _yaml_str(s):
    return json.dumps(str(s))  # a JSON string is a valid YAML scalar


# ---------------------------------------------------------------------------
# TLS material (python3-cryptography)

TLSFiles = collections.namedtuple("TLSFiles", "ca_file cert_file key_file")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def make_tls(directory, hosts=("127.0.0.1", "localhost"), prefix=""):
    """CA + server certificate (IP SAN 127.0.0.1, DNS localhost), ECDSA P-256.
    Writes <prefix>ca.pem, <prefix>server.pem, <prefix>server-key.pem."""
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(directory, exist_ok=True)
    now = _now()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crid test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TLSFiles(os.path.join(directory, prefix + "ca.pem"),
                     os.path.join(directory, prefix + "server.pem"),
                     os.path.join(directory, prefix + "server-key.pem"))
    with open(files.ca_file, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(files.cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(files.key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(files.key_file, 0o600)
    return files


def make_htpasswd(path, user=USERNAME, password=PASSWORD):
    """bcrypt htpasswd file via `htpasswd -Bbn` (apache2-utils)."""
    r = subprocess.run(["htpasswd", "-Bbn", user, password], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True)
    with open(path, "wb") as f:
        f.write(r.stdout.strip() + b"\n")
    return path


# ---------------------------------------------------------------------------
# Token server (Docker bearer-token flow)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse_scope(scope):
    """'repository:foo/bar:pull,push' -> ('repository', 'foo/bar', ['pull', 'push'])."""
    typ, rest = scope.split(":", 1)
    name, _, actions = rest.rpartition(":")
    return typ, name, [a for a in actions.split(",") if a]


class TokenServer:
    """Issues RS256 JWTs the registry's auth.token accepts.

    GET /token?service=...&scope=repository:<name>:pull[&scope=...]
    with HTTP Basic credentials from .users (default crid/s3cret); anonymous
    or wrong credentials get 401. Only 'pull' is ever granted.
    Response: {"token": JWT, "access_token": JWT, "expires_in": N, "issued_at": ...}.

    POST /token (OAuth2, as distribution's token server): form
    grant_type=refresh_token&refresh_token=R&service=S&scope=...&client_id=C
    with R a key of .refresh_tokens (default {"crid-refresh-token": "crid"})
    answers {"access_token": JWT, "expires_in": N, "scope": ...} (no
    "token" key). An unknown refresh token or another service gets
    .refresh_error_status: 401 with registry-style errors (what
    distribution's token server sends) or 400 with
    {"error": "invalid_grant"} (RFC 6749 5.2). Missing fields or another
    grant_type get 400.

    Attributes: url, realm (= url + '/token'), service, issuer, cert_file
    (the registry's rootcertbundle: the self-signed signing certificate,
    also sent in the JWT header as x5c), token_requests (count of /token
    requests, any method and outcome), post_requests (count of POSTs),
    requests (list of dicts, "method" GET or POST), expires_in."""

    REFRESH_TOKEN = "crid-refresh-token"

    def __init__(self, workdir, service=TOKEN_SERVICE, issuer=TOKEN_ISSUER, users=None,
                 expires_in=300, refresh_tokens=None):
        self.workdir = workdir
        self.service = service
        self.issuer = issuer
        self.users = dict(users or {USERNAME: PASSWORD})
        self.refresh_tokens = dict(refresh_tokens or {self.REFRESH_TOKEN: USERNAME})
        self.refresh_error_status = 401
        self.expires_in = expires_in
        self.cert_file = os.path.join(workdir, "token-signing.pem")
        self.requests = []
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None
        self._key = None
        self._cert_der = None
        self.port = None

    @property
    def token_requests(self):
        with self._lock:
            return len(self.requests)

    @property
    def post_requests(self):
        with self._lock:
            return sum(1 for r in self.requests if r.get("method") == "POST")

    @property
    def url(self):
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def realm(self):
        return self.url + "/token"

    def _make_key(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crid test token signer")])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self._key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self._key, hashes.SHA256()))
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.cert_file, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, sub, access, ttl=None, audience=None, issuer=None, not_before=None):
        """A signed JWT. access: list of {"type","name","actions"}. ttl<0 gives
        an already expired token (for negative tests)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        ttl = self.expires_in if ttl is None else ttl
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self._cert_der).decode()]}
        claims = {"iss": issuer or self.issuer, "sub": sub, "aud": audience or self.service,
                  "exp": now + ttl, "nbf": (now - 10) if not_before is None else not_before,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(sig)

    def _handle(self, handler):
        u = urllib.parse.urlsplit(handler.path)
        q = urllib.parse.parse_qs(u.query)
        record = {"method": "GET", "path": u.path, "service": (q.get("service") or [None])[0],
                  "scopes": q.get("scope", []), "user": None, "status": None}
        try:
            if u.path != "/token":
                record["status"] = 404
                return 404, {"errors": [{"code": "NOT_FOUND"}]}
            auth = handler.headers.get("Authorization", "")
            user = None
            if auth.startswith("Basic "):
                try:
                    u_, _, p_ = base64.b64decode(auth[6:]).decode().partition(":")
                except Exception:
                    u_, p_ = None, None
                if u_ in self.users and self.users[u_] == p_:
                    user = u_
            record["user"] = user
            if user is None:
                record["status"] = 401
                return 401, {"errors": [{"code": "UNAUTHORIZED",
                                         "message": "authentication required"}]}
            if record["service"] not in (None, self.service):
                record["status"] = 400
                return 400, {"errors": [{"code": "INVALID_SERVICE"}]}
            access = self._granted(record["scopes"])
            tok = self.issue(user, access)
            record["status"] = 200
            return 200, {"token": tok, "access_token": tok, "expires_in": self.expires_in,
                         "issued_at": datetime.datetime.now(datetime.timezone.utc)
                         .strftime("%Y-%m-%dT%H:%M:%SZ")}
        finally:
            with self._lock:
                self.requests.append(record)

    @staticmethod
    def _granted(scopes):
        """Access list for scope strings (each may hold several, space-separated):
        only 'pull' on repositories is granted."""
        access = []
        for scope in scopes:
            for one in scope.split(" "):
                if not one:
                    continue
                try:
                    typ, name, actions = parse_scope(one)
                except ValueError:
                    continue
                granted = [a for a in actions if a == "pull"]
                if typ == "repository" and granted:
                    access.append({"type": typ, "name": name, "actions": granted})
        return access

    def _handle_post(self, handler):
        """OAuth2 refresh-token grant; returns (status, body dict)."""
        u = urllib.parse.urlsplit(handler.path)
        n = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(n).decode("utf-8", "replace") if n > 0 else ""
        form = urllib.parse.parse_qs(raw, keep_blank_values=True)
        one = lambda k: (form.get(k) or [None])[0]  # noqa: E731
        record = {"method": "POST", "path": u.path, "service": one("service"),
                  "scopes": form.get("scope", []), "user": None, "status": None,
                  "grant_type": one("grant_type"), "client_id": one("client_id"),
                  "refresh_token": one("refresh_token"),
                  "content_type": handler.headers.get("Content-Type")}
        try:
            if u.path != "/token":
                record["status"] = 404
                return 404, {"errors": [{"code": "NOT_FOUND"}]}
            for field in ("grant_type", "service", "client_id"):
                if not record[field]:
                    record["status"] = 400
                    return 400, {"errors": [{"code": "MISSING_REQUIRED_FIELD",
                                             "message": f"missing {field} value"}]}
            if record["grant_type"] != "refresh_token" or not record["refresh_token"]:
                record["status"] = 400
                return 400, {"errors": [{"code": "UNSUPPORTED_VALUE"}]}
            user = self.refresh_tokens.get(record["refresh_token"])
            if user is None or record["service"] != self.service:
                record["status"] = self.refresh_error_status
                if self.refresh_error_status == 400:
                    return 400, {"error": "invalid_grant",
                                 "error_description": "invalid refresh token"}
                return self.refresh_error_status, {"errors": [{
                    "code": "UNAUTHORIZED", "message": "invalid refresh token"}]}
            record["user"] = user
            access = self._granted(record["scopes"])
            tok = self.issue(user, access)
            record["status"] = 200
            scope = " ".join(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access)
            return 200, {"access_token": tok, "expires_in": self.expires_in, "scope": scope,
                         "issued_at": datetime.datetime.now(datetime.timezone.utc)
                         .strftime("%Y-%m-%dT%H:%M:%SZ")}
        finally:
            with self._lock:
                self.requests.append(record)

    def start(self):
        self._make_key()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                status, body = server._handle(self)
                self._reply(status, body, status == 401)

            def do_POST(self):
                status, body = server._handle_post(self)
                self._reply(status, body, False)

            def _reply(self, status, body, challenge):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if challenge:
                    self.send_header("WWW-Authenticate", 'Basic realm="crid-token"')
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self._httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="crid-token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------
# Registry process

_LOG_KV = re.compile(r'([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|\S*)')
_LIVE = []  # registries started and not yet stopped (atexit safety net)


def parse_log_line(line):
    """logrus text line -> dict of key=value (quoted values unquoted)."""
    out = {}
    for k, v in _LOG_KV.findall(line):
        if v.startswith('"'):
            try:
                v = json.loads(v)
            except ValueError:
                v = v[1:-1]
        out[k] = v
    return out


class RegistryStartError(RuntimeError):
    pass


class Registry:
    """One /usr/bin/docker-registry process (see module doc)."""

    def __init__(self, workdir, name="registry"):
        self.workdir = workdir
        self.name = name
        self.proc = None
        self.port = None
        self.storage_dir = None
        self.tls = None
        self.ca_file = None
        self.htpasswd = None
        self.credentials = None
        self.token_server = None
        self.readonly = False
        self.config_path = os.path.join(workdir, f"{name}-config.yml")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self._log_fh = None
        self._ctx = None
        self._blob_homes = {}  # digest -> repo holding it (for cross-repo mounts)
        self._token_cache = {}

    # -- properties --------------------------------------------------------
    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def host(self):
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self):
        return f"{self.scheme}://{self.host}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def ref(self, repo, tag="latest"):
        """'127.0.0.1:PORT/repo:tag' (or '@sha256:...' if tag is a digest)."""
        sep = "@" if tag.startswith("sha256:") else ":"
        return f"{self.host}/{repo}{sep}{tag}"

    def ssl_context(self):
        if not self.tls:
            return None
        if self._ctx is None:
            self._ctx = ssl.create_default_context(cafile=self.ca_file)
        return self._ctx

    # -- lifecycle ---------------------------------------------------------
    def _write_config(self, secret):
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  formatter: text",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {_yaml_str(self.storage_dir)}",
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "    readonly:",
            f"      enabled: {'true' if self.readonly else 'false'}",
            "http:",
            f"  addr: {_yaml_str(self.host)}",
            f"  secret: {_yaml_str(secret)}",
        ]
        if self.tls:
            lines += ["  tls:",
                      f"    certificate: {_yaml_str(self.tls.cert_file)}",
                      f"    key: {_yaml_str(self.tls.key_file)}"]
        if self.htpasswd or self.token_server:
            lines.append("auth:")
        if self.htpasswd:
            lines += ["  htpasswd:",
                      f"    realm: {_yaml_str('crid-basic-realm')}",
                      f"    path: {_yaml_str(self.htpasswd)}"]
        if self.token_server:
            ts = self.token_server
            lines += ["  token:",
                      f"    realm: {_yaml_str(ts.realm)}",
                      f"    service: {_yaml_str(ts.service)}",
                      f"    issuer: {_yaml_str(ts.issuer)}",
                      f"    rootcertbundle: {_yaml_str(ts.cert_file)}"]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, storage_dir, tls=None, htpasswd=None, token=None, port=None,
              readonly=False, credentials=(USERNAME, PASSWORD), secret=None):
        """tls: TLSFiles (make_tls); htpasswd: path of an htpasswd file;
        token: a started TokenServer. readonly=True refuses pushes."""
        if self.proc is not None:
            raise RuntimeError(f"registry {self.name} already started")
        if not os.access(REGISTRY_BIN, os.X_OK):
            raise RegistryStartError(f"{REGISTRY_BIN} missing (apt-get install docker-registry)")
        os.makedirs(self.workdir, exist_ok=True)
        os.makedirs(storage_dir, exist_ok=True)
        self.storage_dir = storage_dir
        self.tls = tls
        self.ca_file = tls.ca_file if tls else None
        self.htpasswd = htpasswd
        self.credentials = tuple(credentials) if htpasswd else None
        self.token_server = token
        self.readonly = readonly
        secret = secret or uuid.uuid4().hex
        attempts = 1 if port else 5
        for attempt in range(attempts):
            self.port = port or free_port()
            self._write_config(secret)
            try:
                self._spawn_and_wait()
                return self
            except RegistryStartError as e:
                busy = "address already in use" in self.log_text()
                self.stop()
                if not busy or attempt == attempts - 1:
                    raise e

    def _spawn_and_wait(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self._log_fh = open(self.log_path, "ab")
        log_start = self._log_fh.tell()
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._log_fh,
                                     stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                     preexec_fn=_set_pdeathsig)
        _LIVE.append(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RegistryStartError(
                    f"registry {self.name} exited with {self.proc.returncode}:\n"
                    f"{self.log_text()[-4000:]}")
            # The "listening on" line proves that this process owns the port
            # (another server on a reused port would also answer /v2/).
            if f"listening on {self.host}" not in self.log_text(log_start):
                time.sleep(0.05)
                continue
            try:
                r = http_request("GET", self.url + "/v2/", ssl_context=self.ssl_context(),
                                 timeout=2)
                if r.status in (200, 401) and self.proc.poll() is None:
                    return
                last = f"status {r.status}"
            except (OSError, urllib.error.URLError) as e:
                last = repr(e)
            time.sleep(0.05)
        raise RegistryStartError(
            f"registry {self.name} not ready on {self.url} after {START_TIMEOUT_S}s "
            f"({last}):\n{self.log_text()[-4000:]}")

    def stop(self):
        p = self.proc
        if p is not None:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(STOP_TIMEOUT_S)
            self.proc = None
        if self in _LIVE:
            _LIVE.remove(self)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP --------------------------------------------------------------
    def bearer_token(self, repo, actions="pull"):
        """Token for repository:<repo>:<actions> from the token server."""
        ts = self.token_server
        q = urllib.parse.urlencode({"service": ts.service,
                                    "scope": f"repository:{repo}:{actions}"})
        r = http_request("GET", f"{ts.realm}?{q}", basic=(USERNAME, PASSWORD))
        if r.status != 200:
            raise RuntimeError(f"token server said {r.status}: {r.body!r}")
        return json.loads(r.body)["token"]

    def _auth_headers(self, path, auth):
        if auth is None:
            return {}
        if auth != "auto":
            return dict(auth)
        if self.credentials:
            return {"Authorization": "Basic " + base64.b64encode(
                ("%s:%s" % self.credentials).encode()).decode()}
        if self.token_server:
            m = re.match(r"/v2/(.+)/(manifests|blobs|tags)/", path)
            if m:
                repo = m.group(1)
                if repo not in self._token_cache:
                    self._token_cache[repo] = self.bearer_token(repo)
                return {"Authorization": "Bearer " + self._token_cache[repo]}
        return {}

    def request(self, method, path, headers=None, data=None, auth="auto", timeout=30.0):
        """HTTP request to this registry. auth="auto" uses the registry's
        credentials / a token when needed; auth=None sends none; a dict is
        used as extra headers."""
        h = self._auth_headers(path, auth)
        h.update(headers or {})
        url = path if path.startswith("http") else self.url + path
        return http_request(method, url, data=data, headers=h,
                            ssl_context=self.ssl_context(), timeout=timeout)

    def get_manifest(self, repo, ref="latest", accept=ib.ALL_MANIFEST_TYPES, auth="auto"):
        return self.request("GET", f"/v2/{repo}/manifests/{ref}", {"Accept": accept}, auth=auth)

    def get_blob(self, repo, digest, auth="auto"):
        return self.request("GET", f"/v2/{repo}/blobs/{digest}", auth=auth)

    # -- logs --------------------------------------------------------------
    def log_text(self, offset=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _settle(self, quiet=0.1, limit=2.0):
        """Waits until the log stopped growing for `quiet` s: the registry logs
        'response completed' just after sending the body, so a client may
        finish reading before the line is written."""
        end = time.monotonic() + limit
        last = -1
        while time.monotonic() < end:
            try:
                size = os.path.getsize(self.log_path)
            except OSError:
                size = 0
            if size == last:
                return
            last = size
            time.sleep(quiet)

    def responses(self, settle=True):
        """Parsed 'response completed' lines (successes and errors) as dicts
        with keys like http.request.method, http.request.uri, http.response.status."""
        if settle:
            self._settle()
        out = []
        for line in self.log_text().splitlines():
            if 'msg="response completed' in line:
                d = parse_log_line(line)
                out.append(d)
        return out

    def count_requests(self, method, uri_pred, statuses=range(200, 300), settle=True):
        n = 0
        for d in self.responses(settle):
            if d.get("http.request.method") != method:
                continue
            try:
                st = int(d.get("http.response.status", "0"))
            except ValueError:
                continue
            if st not in statuses:
                continue
            uri = urllib.parse.unquote(d.get("http.request.uri", "").split("?", 1)[0])
            if uri_pred(uri):
                n += 1
        return n

    def blob_get_count(self, repo, digest, settle=True):
        """Number of successful (2xx) GET /v2/<repo>/blobs/<digest> so far."""
        want = f"/v2/{repo}/blobs/{digest}"
        return self.count_requests("GET", lambda u: u == want, settle=settle)

    def manifest_get_count(self, repo, ref=None, settle=True):
        """Successful GET /v2/<repo>/manifests/<ref> (any ref if ref is None)."""
        prefix = f"/v2/{repo}/manifests/"
        if ref is None:
            pred = lambda u: u.startswith(prefix) and "/" not in u[len(prefix):]  # noqa: E731
        else:
            pred = lambda u: u == prefix + ref  # noqa: E731
        return self.count_requests("GET", pred, settle=settle)

    # -- storage -----------------------------------------------------------
    def blob_path(self, digest):
        algo, hexd = digest.split(":", 1)
        return os.path.join(self.storage_dir, "docker", "registry", "v2", "blobs", algo,
                            hexd[:2], hexd, "data")

    def tamper_blob(self, digest, mode="flip"):
        """Changes the stored bytes of a blob so what is served no longer
        matches its digest. mode: 'flip' (same length, inverts some bytes),
        'truncate' (drops the second half), 'append' (adds garbage).
        Affects every registry serving this storage directory."""
        p = self.blob_path(digest)
        with open(p, "rb") as f:
            data = bytearray(f.read())
        if mode == "flip":
            if not data:
                data = bytearray(b"x")
            else:
                for i in sorted({0, len(data) // 2, len(data) - 1}):
                    data[i] ^= 0xFF
        elif mode == "truncate":
            data = data[: len(data) // 2]
        elif mode == "append":
            data += b"tampered"
        else:
            raise ValueError(mode)
        with open(p, "wb") as f:
            f.write(data)
        return p


# ---------------------------------------------------------------------------
# Push


def _push_blob(registry, repo, digest, data):
    r = registry.request("HEAD", f"/v2/{repo}/blobs/{digest}")
    if r.status == 200:
        return "exists"
    start = f"/v2/{repo}/blobs/uploads/"
    home = registry._blob_homes.get(digest)
    if home and home != repo:
        q = urllib.parse.urlencode({"mount": digest, "from": home})
        r = registry.request("POST", f"{start}?{q}", data=b"")
        if r.status == 201:
            return "mounted"
    else:
        r = registry.request("POST", start, data=b"")
    if r.status != 202:
        raise RuntimeError(f"blob upload start {repo} {digest}: {r.status} {r.body[:500]!r}")
    loc = urllib.parse.urljoin(registry.url + start, r.headers["Location"])
    loc += ("&" if "?" in loc else "?") + urllib.parse.urlencode({"digest": digest})
    r = registry.request("PUT", loc, data=bytes(data),
                         headers={"Content-Type": "application/octet-stream"})
    if r.status != 201:
        raise RuntimeError(f"blob upload {repo} {digest}: {r.status} {r.body[:500]!r}")
    registry._blob_homes.setdefault(digest, repo)
    return "uploaded"


def _push_manifest(registry, repo, ref, media_type, body, digest):
    r = registry.request("PUT", f"/v2/{repo}/manifests/{ref}", data=body,
                         headers={"Content-Type": media_type})
    if r.status != 201:
        raise RuntimeError(f"manifest PUT {repo}:{ref}: {r.status} {r.body[:1000]!r}")
    got = r.headers.get("Docker-Content-Digest")
    if got and got != digest:
        raise RuntimeError(f"registry computed {got} for {repo}:{ref}, expected {digest}")


def _push_image(registry, repo, ref, img):
    for digest, data in img.blobs().items():
        _push_blob(registry, repo, digest, data)
    _push_manifest(registry, repo, ref, img.media_type, img.manifest_bytes, img.digest)


def push(registry, repo, tag_or_digest, obj):
    """Pushes an image_builder.Image or Index as <repo>:<tag> (or @digest).
    Children of an index are pushed by digest first. Returns the digest."""
    if isinstance(obj, ib.Index):
        for img in obj.images:
            _push_image(registry, repo, img.digest, img)
        _push_manifest(registry, repo, tag_or_digest, obj.media_type, obj.manifest_bytes,
                       obj.digest)
    else:
        _push_image(registry, repo, tag_or_digest, obj)
    return obj.digest


# ---------------------------------------------------------------------------
# The standard set of registries


WORKDIR_PREFIX = "crid-registries-"
_OWNER_FILE = ".crid-owner"


def _proc_start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def make_workdir(prefix=WORKDIR_PREFIX):
    """mkdtemp that records its owner (pid + start time), and first removes
    such dirs left by processes that are gone (a SIGKILLed pytest)."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        path = os.path.join(base, name)
        if not name.startswith(prefix):
            continue
        try:
            with open(os.path.join(path, _OWNER_FILE)) as f:
                pid, start = f.read().split()
        except (OSError, ValueError):
            continue  # not ours or still being set up
        if _proc_start_time(pid) != start:
            shutil.rmtree(path, ignore_errors=True)
    d = tempfile.mkdtemp(prefix=prefix)
    with open(os.path.join(d, _OWNER_FILE), "w") as f:
        f.write(f"{os.getpid()} {_proc_start_time(os.getpid())}\n")
    return d


class RegistrySet:
    """Context manager. Builds image_builder.standard_images(), pushes each
    under <repo>:latest into one storage directory (through `plain`), and
    serves that storage with four registries:

      plain  HTTP, no auth (the one pushes went through)
      tls    HTTPS (certificate for 127.0.0.1/localhost from .ca_file), no auth
      basic  HTTP + htpasswd (crid / s3cret)
      token  HTTP + bearer tokens from .token_server (Basic crid/s3cret)

    tls, basic and token are read-only (maintenance.readonly).

    Exposes: plain, tls, basic, token, registries (dict name->Registry),
    token_server, images (dict repo->Image/Index), expected(repo) (digests),
    ca_file, tls_files, htpasswd_file, username, password, storage_dir,
    workdir, repos, separate_registry(...), closed_port()."""

    REPOS = ("busybox", "busybox-zstd", "nonroot", "nonroot-named", "multiarch",
             "multiarch-docker", "docker-v2", "evil-dotdot", "evil-abs", "evil-symlink",
             "evil-symlink-rel", "evil-hardlink", "evil-hardlink-abs")

    username = USERNAME
    password = PASSWORD

    def __init__(self, workdir=None, basic_tls=False, token_tls=False):
        self._own_workdir = workdir is None
        self.workdir = workdir
        self.basic_tls = basic_tls
        self.token_tls = token_tls
        self.registries = {}
        self._extra = []
        self.token_server = None
        self.timings = {}

    # registries by name
    plain = property(lambda self: self.registries["plain"])
    tls = property(lambda self: self.registries["tls"])
    basic = property(lambda self: self.registries["basic"])
    token = property(lambda self: self.registries["token"])

    @property
    def repos(self):
        return list(self.images)

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self):
        t0 = time.monotonic()
        if self.workdir is None:
            self.workdir = make_workdir()
        self.storage_dir = os.path.join(self.workdir, "storage")
        self.images = {r: ib.standard_images()[r] for r in self.REPOS}
        self.timings["build"] = time.monotonic() - t0

        t = time.monotonic()
        self.tls_files = make_tls(os.path.join(self.workdir, "tls"))
        self.ca_file = self.tls_files.ca_file
        self.htpasswd_file = make_htpasswd(os.path.join(self.workdir, "htpasswd"))
        self.token_server = TokenServer(os.path.join(self.workdir, "token")).start()
        self.timings["credentials"] = time.monotonic() - t

        t = time.monotonic()
        plain = Registry(self.workdir, "plain")
        self.registries["plain"] = plain
        plain.start(self.storage_dir)
        for repo, obj in self.images.items():
            push(plain, repo, "latest", obj)
        self.timings["push"] = time.monotonic() - t

        t = time.monotonic()
        specs = {"tls": dict(tls=self.tls_files),
                 "basic": dict(htpasswd=self.htpasswd_file,
                               tls=self.tls_files if self.basic_tls else None),
                 "token": dict(token=self.token_server,
                               tls=self.tls_files if self.token_tls else None)}
        for name, kw in specs.items():
            reg = Registry(self.workdir, name)
            self.registries[name] = reg
            reg.start(self.storage_dir, readonly=True, **kw)
        self.timings["start"] = time.monotonic() - t
        self.timings["total"] = time.monotonic() - t0

    def expected(self, repo):
        """Digests of what <repo>:latest holds (see Image.expected/Index.expected)."""
        return self.images[repo].expected()

    def separate_registry(self, repos=("busybox",), tls=False, name=None):
        """A new registry on its own storage with `repos` pushed (for tests
        that tamper or delete). Stopped by close(); may also be used as a
        context manager to stop it earlier."""
        name = name or f"separate-{len(self._extra)}"
        d = os.path.join(self.workdir, name)
        reg = Registry(d, name)
        self._extra.append(reg)
        reg.start(os.path.join(d, "storage"), tls=self.tls_files if tls else None)
        for repo in repos:
            push(reg, repo, "latest", ib.standard_images()[repo])
        return reg

    @staticmethod
    def closed_port():
        return closed_port()

    def close(self):
        for reg in self._extra + list(self.registries.values()):
            try:
                reg.stop()
            except Exception:
                pass
        self._extra.clear()
        if self.token_server is not None:
            self.token_server.stop()
        if self._own_workdir and self.workdir and os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir, ignore_errors=True)


def _atexit_stop_all():
    for reg in list(_LIVE):
        try:
            reg.stop()
        except Exception:
            pass
    if _SHARED["set"] is not None:
        try:
            _SHARED["set"].close()
        except Exception:
            pass
        _SHARED["set"] = None


import atexit  # noqa: E402

atexit.register(_atexit_stop_all)

# ---------------------------------------------------------------------------
# pytest fixtures. Import them where needed:
#     from registry_fixtures import registry_set, separate_registry  # noqa: F401
# One RegistrySet per process even if several modules import the fixture
# (pytest would otherwise create one per importing module).

_SHARED = {"set": None, "users": 0}
_SHARED_LOCK = threading.Lock()


def acquire_registry_set():
    with _SHARED_LOCK:
        if _SHARED["set"] is None:
            rs = RegistrySet()
            rs.__enter__()
            _SHARED["set"] = rs
        _SHARED["users"] += 1
        return _SHARED["set"]


def release_registry_set():
    with _SHARED_LOCK:
        _SHARED["users"] -= 1
        if _SHARED["users"] <= 0 and _SHARED["set"] is not None:
            _SHARED["set"].close()
            _SHARED["set"] = None
            _SHARED["users"] = 0


try:
    import pytest

    @pytest.fixture(scope="session")
    def registry_set():
        rs = acquire_registry_set()
        try:
            yield rs
        finally:
            release_registry_set()

    @pytest.fixture
    def separate_registry(registry_set):
        """Factory: separate_registry(repos=("busybox",), tls=False) -> Registry
        on its own storage; stopped at the end of the test."""
        made = []

        def make(repos=("busybox",), tls=False):
            reg = registry_set.separate_registry(repos, tls=tls)
            made.append(reg)
            return reg

        yield make
        for reg in made:
            reg.stop()
            shutil.rmtree(reg.workdir, ignore_errors=True)
except ImportError:  # usable without pytest too
    pass
