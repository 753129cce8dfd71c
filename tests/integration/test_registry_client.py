"""crid's registry client (src/image/registry.c) against real registries:
a registry_token sent as it is, an identity_token traded at the realm
(OAuth2 refresh-token grant), retries of 5xx/429, redirects and the
protocols they may lead to, a registry that hangs up at once.

Debian's docker-registry on 127.0.0.1 (registry_fixtures), with
netfault.FaultProxy in front where the wire or the answers are made worse."""

import socket
import time

import grpc
import pytest

from conftest import load_api
from netfault import FaultProxy
from registry_fixtures import registry_set  # noqa: F401

PULL_TIMEOUT_S = 60


def pull(d, image, auth=None, timeout=PULL_TIMEOUT_S):
    api = load_api()
    req = api.PullImageRequest(image=api.ImageSpec(image=image))
    if auth is not None:
        req.auth.CopyFrom(auth)
    return d.img().PullImage(req, timeout=timeout).image_ref


def pull_error(d, image, auth=None):
    """Pulls expecting a failure; returns (grpc error, seconds taken)."""
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, image, auth=auth)
    return e.value, time.monotonic() - t0


def auth_config(**kw):
    return load_api().AuthConfig(**kw)


def list_images(d):
    return list(d.img().ListImages(load_api().ListImagesRequest()).images)


def insecure(*hosts):
    """crid config: plain-HTTP registries."""
    return "registries:\n" + "".join(f"  - host: {h}\n    insecure: true\n" for h in hosts)


def blob_digests(rs, repo="busybox"):
    exp = rs.expected(repo)
    return [exp["config_digest"]] + list(exp["layer_digests"])


@pytest.fixture
def proxies():
    """proxies(target_port, **FaultProxy options) -> FaultProxy, closed at teardown."""
    made = []

    def make(port, **kw):
        p = FaultProxy(port, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def token_daemon(daemon_factory, registry_set):  # noqa: F811
    return daemon_factory(config=insecure(registry_set.token.host)).start()


# ---------------------------------------------------------------------------
# registry_token: a bearer token sent as it is


def test_registry_token_is_sent_as_bearer(token_daemon, registry_set):  # noqa: F811
    rs, ts = registry_set, registry_set.token_server
    token = ts.issue("crid", [{"type": "repository", "name": "busybox", "actions": ["pull"]}])
    before = ts.token_requests
    ref = pull(token_daemon, f"{rs.token.host}/busybox:latest", auth=auth_config(registry_token=token))
    assert ref == rs.expected("busybox")["image_id"]
    assert ts.token_requests == before, "crid asked the token server although it had a token"


def _bad_registry_token(ts, kind):
    if kind == "garbage":
        return "not-a-jwt"
    if kind == "other-repository":
        return ts.issue("crid", [{"type": "repository", "name": "nonroot", "actions": ["pull"]}])
    if kind == "expired":
        return ts.issue("crid", [{"type": "repository", "name": "busybox", "actions": ["pull"]}], ttl=-60)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["garbage", "other-repository", "expired"])
def test_bad_registry_token_is_unauthenticated(token_daemon, registry_set, kind):  # noqa: F811
    rs, ts = registry_set, registry_set.token_server
    token = _bad_registry_token(ts, kind)
    before = ts.token_requests
    err, _ = pull_error(token_daemon, f"{rs.token.host}/busybox:latest", auth=auth_config(registry_token=token))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err.details()
    assert rs.token.host in err.details(), err.details()
    assert ts.token_requests == before
    assert list_images(token_daemon) == []


# ---------------------------------------------------------------------------
# identity_token: an OAuth2 refresh token traded at the realm


def test_identity_token_is_traded_with_a_post(token_daemon, registry_set):  # noqa: F811
    rs, ts = registry_set, registry_set.token_server
    seen = len(ts.requests)
    ref = pull(token_daemon, f"{rs.token.host}/busybox:latest",
               auth=auth_config(identity_token=ts.REFRESH_TOKEN))
    assert ref == rs.expected("busybox")["image_id"]
    new = list(ts.requests)[seen:]
    # One access token for the repository serves the manifest and every blob.
    assert [r["method"] for r in new] == ["POST"], new
    (req,) = new
    assert req["status"] == 200, req
    assert req["grant_type"] == "refresh_token" and req["refresh_token"] == ts.REFRESH_TOKEN, req
    assert req["service"] == ts.service, req
    assert req["scopes"] == ["repository:busybox:pull"], req
    assert (req["content_type"] or "").startswith("application/x-www-form-urlencoded"), req


# 401: what distribution's own token server answers for an unknown refresh
# token; 400 {"error": "invalid_grant"}: what RFC 6749 5.2 prescribes.
@pytest.mark.parametrize("error_status", [401, 400])
def test_wrong_identity_token_is_unauthenticated(token_daemon, registry_set, error_status):  # noqa: F811
    rs, ts = registry_set, registry_set.token_server
    seen = len(ts.requests)
    ts.refresh_error_status = error_status
    try:
        err, _ = pull_error(token_daemon, f"{rs.token.host}/busybox:latest",
                            auth=auth_config(identity_token="not-the-refresh-token"))
    finally:
        ts.refresh_error_status = 401
    new = list(ts.requests)[seen:]
    assert [(r["method"], r["status"]) for r in new] == [("POST", error_status)], new
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err.details()
    assert list_images(token_daemon) == []


# ---------------------------------------------------------------------------
# 5xx and 429: retried with back-off, then UNAVAILABLE


def _retried(proxy):
    """Each request line that got a canned error was sent again later."""
    lines = [r.split(b"\r\n", 1)[0].decode("latin-1") for r in proxy.requests]
    return all(lines.count(a) > proxy.answered.count(a) for a in set(proxy.answered))


@pytest.mark.parametrize("status,match", [(503, None), (429, None), (503, r" /v2/[^ ]+/blobs/")],
                         ids=["503-first-requests", "429-first-requests", "503-blobs"])
def test_transient_errors_are_retried(daemon_factory, registry_set, proxies, status, match):  # noqa: F811
    rs = registry_set
    proxy = proxies(rs.plain.port, http_errors=2, http_error_status=status, match=match)
    d = daemon_factory(config=insecure(proxy.host)).start()
    assert pull(d, f"{proxy.host}/busybox:latest") == rs.expected("busybox")["image_id"]
    assert proxy.http_errors_sent == 2
    assert _retried(proxy), (proxy.answered, proxy.requests)


@pytest.mark.parametrize("status", [503, 429])
def test_persistent_errors_give_unavailable(daemon_factory, registry_set, proxies, status):  # noqa: F811
    rs = registry_set
    proxy = proxies(rs.plain.port, http_errors=10, http_error_status=status)
    d = daemon_factory(config=insecure(proxy.host)).start()
    err, took = pull_error(d, f"{proxy.host}/busybox:latest")
    assert took < 20, f"gave up only after {took:.1f} s"
    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
    assert proxy.host in err.details(), err.details()
    assert str(status) in err.details(), err.details()
    # Retried, but gave up before the registry recovered.
    assert 2 <= proxy.http_errors_sent < 10, proxy.http_errors_sent
    assert list_images(d) == []


# ---------------------------------------------------------------------------
# Redirects


def test_blob_redirect_to_another_host_is_followed(daemon_factory, registry_set, proxies):  # noqa: F811
    rs, reg = registry_set, registry_set.plain
    digests = blob_digests(rs)
    before = {dg: reg.blob_get_count("busybox", dg) for dg in digests}
    proxy = proxies(reg.port, redirect_blobs=reg.url)
    d = daemon_factory(config=insecure(proxy.host)).start()
    assert pull(d, f"{proxy.host}/busybox:latest") == rs.expected("busybox")["image_id"]
    redirected = sorted(line.split(" ")[1] for line in proxy.answered)
    assert redirected == sorted(f"/v2/busybox/blobs/{dg}" for dg in digests)
    # The blobs came from the registry the Location named.
    for dg in digests:
        assert reg.blob_get_count("busybox", dg) == before[dg] + 1, dg


def test_redirect_does_not_leak_the_token(daemon_factory, registry_set, proxies):  # noqa: F811
    """Blobs of the token registry redirected to another host:port (the
    open registry behind a second proxy): the bearer token stays home."""
    rs, ts = registry_set, registry_set.token_server
    token = ts.issue("crid", [{"type": "repository", "name": "busybox", "actions": ["pull"]}])
    other = proxies(rs.plain.port, parse_http=True)
    front = proxies(rs.token.port, redirect_blobs=f"http://{other.host}")
    d = daemon_factory(config=insecure(front.host)).start()
    ref = pull(d, f"{front.host}/busybox:latest", auth=auth_config(registry_token=token))
    assert ref == rs.expected("busybox")["image_id"]
    blob_heads = [r for r in front.requests if b"/blobs/" in r.split(b"\r\n", 1)[0]]
    assert blob_heads and all(token.encode() in r for r in blob_heads), "crid had no token to leak"
    assert len(other.requests) == len(blob_digests(rs))
    for r in other.requests:
        assert token.encode() not in r and b"\r\nauthorization:" not in r.lower(), r


@pytest.mark.parametrize("target", ["file-passwd", "file-blob", "ftp"])
def test_blob_redirect_to_other_protocols_is_refused(daemon_factory, registry_set, proxies,  # noqa: F811
                                                     tmp_path, target):
    """file-blob redirects to a file holding the very bytes of the blob: a
    crid that followed it would pull the image successfully."""
    rs = registry_set
    ftp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        ftp.bind(("127.0.0.1", 0))
        ftp.listen(8)
        ftp_port = ftp.getsockname()[1]
        for dg, data in rs.images["busybox"].blobs().items():
            (tmp_path / dg.split(":", 1)[1]).write_bytes(bytes(data))
        locations = {
            "file-passwd": lambda path: "file:///etc/passwd",
            "file-blob": lambda path: f"file://{tmp_path}/{path.rsplit(':', 1)[1]}",
            "ftp": lambda path: f"ftp://127.0.0.1:{ftp_port}{path}",
        }
        proxy = proxies(rs.plain.port, redirect_blobs=locations[target])
        d = daemon_factory(config=insecure(proxy.host)).start()
        err, took = pull_error(d, f"{proxy.host}/busybox:latest")
        # DATA_LOSS would mean crid read /etc/passwd and found it not the blob.
        assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
        assert "protocol" in err.details().lower(), err.details()
        assert took < 20
        assert proxy.answered, "crid never asked for a blob"
        assert list_images(d) == []
        ftp.setblocking(False)
        with pytest.raises(BlockingIOError):
            ftp.accept()[0].close()  # a connection crid made to the ftp URL
    finally:
        ftp.close()


# ---------------------------------------------------------------------------
# A registry that hangs up at once


def test_registry_closing_every_connection_is_unavailable(daemon_factory, registry_set, proxies):  # noqa: F811
    rs = registry_set
    proxy = proxies(rs.plain.port, drop_after=0, drop_times=None)
    d = daemon_factory(config=insecure(proxy.host)).start()
    err, took = pull_error(d, f"{proxy.host}/busybox:latest")
    assert took < 10, f"gave up only after {took:.1f} s"
    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
    assert proxy.host in err.details(), err.details()
    assert proxy.connections >= 2, "a connection hung up at once is worth a retry"
    assert list_images(d) == []
