"""The CRI methods crid serves today, on runtime.v1 and runtime.v1alpha2, and
UNIMPLEMENTED for every other method of the CRI."""

import json
import threading
import time

import grpc
import pytest

from conftest import all_methods, is_server_streaming, message_class, status_info_config

VERSIONS = ["v1", "v1alpha2"]
DONE = {"Version", "Status", "RuntimeConfig", "UpdateRuntimeConfig", "GetContainerEvents",
        "ListImages", "StreamImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo",
        "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus", "ListPodSandbox",
        "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer", "ContainerStatus",
        "ListContainers", "ExecSync", "ReopenContainerLog", "UpdateContainerResources",
        "StreamPodSandboxes", "StreamContainers", "ContainerStats", "ListContainerStats",
        "StreamContainerStats", "PodSandboxStats", "ListPodSandboxStats", "StreamPodSandboxStats",
        "ListMetricDescriptors", "ListPodSandboxMetrics", "StreamPodSandboxMetrics",
        "UpdatePodSandboxResources", "Exec", "Attach", "PortForward"}


@pytest.mark.parametrize("ver", VERSIONS)
def test_version(shared_daemon, api, ver):
    resp = shared_daemon.rt(ver).Version(api.VersionRequest(version="0.1.0"))
    assert resp.version == "0.1.0"
    assert resp.runtime_name == "crid"
    assert resp.runtime_version == "0.1.0"
    assert resp.runtime_api_version == ver


@pytest.mark.parametrize("ver", VERSIONS)
def test_status_conditions(shared_daemon, api, ver):
    resp = shared_daemon.rt(ver).Status(api.StatusRequest())
    conds = {c.type: c for c in resp.status.conditions}
    assert "RuntimeReady" in conds, resp
    assert conds["RuntimeReady"].status is True, conds["RuntimeReady"]
    assert "NetworkReady" in conds, resp
    # The test daemon's CNI directory holds a loopback network: ready
    # (test_network.py covers readiness without a valid configuration).
    net = conds["NetworkReady"]
    assert net.status is True, net
    assert not net.reason and not net.message, net


@pytest.mark.parametrize("ver", VERSIONS)
def test_status_verbose_has_config(shared_daemon, api, ver):
    resp = shared_daemon.rt(ver).Status(api.StatusRequest(verbose=True))
    cfg = status_info_config(resp)
    assert cfg.get("socket") == shared_daemon.socket_path, cfg
    assert cfg.get("default_runtime") == "crun", cfg


@pytest.mark.parametrize("ver", VERSIONS)
def test_status_runtime_handlers(shared_daemon, api, ver):
    resp = shared_daemon.rt(ver).Status(api.StatusRequest())
    names = [h.name for h in resp.runtime_handlers]
    assert sorted(names) == sorted(["", "crun", "runc"]), names


@pytest.mark.parametrize("ver", VERSIONS)
def test_status_default_runtime_missing(daemon_factory, api, ver):
    d = daemon_factory(args=["--runtime", "crun=/nonexistent/crun"]).start()
    resp = d.rt(ver).Status(api.StatusRequest())
    conds = {c.type: c for c in resp.status.conditions}
    ready = conds["RuntimeReady"]
    assert ready.status is False, f"RuntimeReady true with /nonexistent/crun: {ready}"
    assert ready.reason, ready
    assert "/nonexistent/crun" in ready.message, ready


@pytest.mark.parametrize("ver", VERSIONS)
def test_runtime_config_cgroup_driver(shared_daemon, api, ver):
    resp = shared_daemon.rt(ver).RuntimeConfig(api.RuntimeConfigRequest())
    assert resp.HasField("linux"), resp
    assert resp.linux.cgroup_driver == api.CGROUPFS, resp
    assert api.CGROUPFS == 1


def _update_cidr(rt, api, cidr):
    req = api.UpdateRuntimeConfigRequest()
    req.runtime_config.network_config.pod_cidr = cidr
    return rt.UpdateRuntimeConfig(req)


def _pod_cidr(rt, api):
    info = dict(rt.Status(api.StatusRequest(verbose=True)).info)
    assert "podCIDR" in info, f"no podCIDR in Status verbose info: {sorted(info)}"
    return json.loads(info["podCIDR"])


@pytest.mark.parametrize("ver", VERSIONS)
def test_update_runtime_config_pod_cidr(daemon, api, ver):
    rt = daemon.rt(ver)
    resp = _update_cidr(rt, api, "10.88.0.0/16")
    assert isinstance(resp, api.UpdateRuntimeConfigResponse)
    assert _pod_cidr(rt, api) == "10.88.0.0/16"
    # The other service version sees the same state.
    other = daemon.rt("v1alpha2" if ver == "v1" else "v1")
    assert _pod_cidr(other, api) == "10.88.0.0/16"


@pytest.mark.parametrize("ver", VERSIONS)
@pytest.mark.parametrize("cidr", ["10.88.0.0/99", "banana"])
def test_update_runtime_config_bad_cidr(daemon, api, ver, cidr):
    rt = daemon.rt(ver)
    _update_cidr(rt, api, "10.88.0.0/16")
    with pytest.raises(grpc.RpcError) as ei:
        _update_cidr(rt, api, cidr)
    err = ei.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert "pod_cidr" in (err.details() or ""), err.details()
    # A rejected update changes nothing.
    assert _pod_cidr(rt, api) == "10.88.0.0/16"


def _unimplemented_cases():
    cases = []
    for svc, m in all_methods():
        if m.name in DONE:
            continue
        for ver in VERSIONS:
            cases.append(pytest.param(ver, svc, m.name, id=f"{ver}-{svc}-{m.name}"))
    return cases


@pytest.mark.parametrize("ver,svc,name", _unimplemented_cases())
def test_not_yet_implemented(shared_daemon, api, ver, svc, name):
    mdesc = api.DESCRIPTOR.services_by_name[svc].methods_by_name[name]
    path = f"/runtime.{ver}.{svc}/{name}"
    req_cls = message_class(mdesc.input_type)
    resp_cls = message_class(mdesc.output_type)
    ch = shared_daemon.default_channel()
    with pytest.raises(grpc.RpcError) as ei:
        if is_server_streaming(mdesc):
            call = ch.unary_stream(path, request_serializer=req_cls.SerializeToString,
                                   response_deserializer=resp_cls.FromString)
            got = list(call(req_cls(), timeout=10))
            pytest.fail(f"{path} streamed {got} and ended OK")
        else:
            call = ch.unary_unary(path, request_serializer=req_cls.SerializeToString,
                                  response_deserializer=resp_cls.FromString)
            call(req_cls(), timeout=10)
    err = ei.value
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED, f"{path}: {err.code()} {err.details()!r}"
    assert name in (err.details() or ""), f"{path}: details {err.details()!r} do not name the method"


# ---------------------------------------------------------------------------
# GetContainerEvents


@pytest.mark.parametrize("ver", VERSIONS)
def test_container_events_deadline(shared_daemon, api, ver):
    rt = shared_daemon.rt(ver)
    got = []
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as ei:
        for msg in rt.GetContainerEvents(api.GetEventsRequest(), timeout=1.0):
            got.append(msg)
    elapsed = time.monotonic() - t0
    assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, ei.value
    assert got == [], f"events without containers: {got}"
    assert 0.8 <= elapsed <= 4.0, f"stream ended after {elapsed:.2f}s, want about 1s"


class _StreamReader(threading.Thread):
    def __init__(self, call):
        super().__init__(daemon=True)
        self.call = call
        self.messages = []
        self.error = None

    def run(self):
        try:
            for m in self.call:
                self.messages.append(m)
        except grpc.RpcError as e:
            self.error = e


@pytest.mark.parametrize("ver", VERSIONS)
def test_container_events_stays_open_while_others_served(daemon, api, ver):
    rt = daemon.rt(ver)
    call = rt.GetContainerEvents(api.GetEventsRequest(), timeout=60)
    reader = _StreamReader(call)
    reader.start()
    try:
        other_ch = daemon.channel()
        deadline = time.monotonic() + 2.0
        n = 0
        while time.monotonic() < deadline:
            # Same connection as the stream, and another one.
            assert rt.Version(timeout=5).runtime_name == "crid"
            assert daemon.rt(ver, channel=other_ch).Status(timeout=5).status.conditions
            n += 1
        assert n > 0
        assert reader.is_alive(), f"stream ended early: {reader.error!r}"
        assert reader.messages == [], reader.messages
        assert call.is_active()
    finally:
        call.cancel()
        reader.join(10)
    assert not reader.is_alive()
    assert reader.error is not None and reader.error.code() == grpc.StatusCode.CANCELLED, reader.error


def test_many_event_streams_do_not_block_calls(daemon_factory, api):
    """Kubelet keeps GetContainerEvents open for ever: open streams must not
    tie up the workers that serve other calls."""
    d = daemon_factory(args=["--worker-threads", "2"]).start()
    calls = []
    readers = []
    try:
        for _ in range(8):
            c = d.rt().GetContainerEvents(api.GetEventsRequest(), timeout=60)
            r = _StreamReader(c)
            r.start()
            calls.append(c)
            readers.append(r)
        time.sleep(0.5)
        for _ in range(20):
            assert d.rt().Version(timeout=5).runtime_name == "crid"
        assert all(r.is_alive() for r in readers), [r.error for r in readers]
    finally:
        for c in calls:
            c.cancel()
        for r in readers:
            r.join(10)
    d.assert_serving("after cancelling 8 event streams")
