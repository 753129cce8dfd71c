"""Resource use as the kubelet reads it: ContainerStats, ListContainerStats,
PodSandboxStats and ListPodSandboxStats against real containers under crun,
read back from the same cgroup files the kernel keeps; the writable layer
measured by the background walker (and ImageFsInfo's container file
systems); pod network counters from inside the pod's namespace; the
cAdvisor-style metrics RPCs; the streaming lists; and the Prometheus
endpoint."""

import os
import re
import secrets
import socket
import subprocess
import time
import urllib.request

import grpc
import pytest

import pod_helpers as ph
from pod_helpers import hugetlb_v1, registry_set  # noqa: F401

MiB = 1024 * 1024


@pytest.fixture
def stats_env(daemon_factory, registry_set, hugetlb_v1):  # noqa: F811
    """stats_env(extra_yaml="") -> a started PodEnv with extra settings."""
    made = []

    def make(extra=""):
        ph.ensure_hugetlb()
        d = daemon_factory(config=ph.daemon_config(registry_set) + extra).start()
        env = ph.PodEnv(d, registry_set)
        made.append(env)
        return env

    yield make
    errors = []
    for env in made:
        try:
            env.teardown()
        except BaseException as e:  # pytest.fail raises a BaseException subclass
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


def read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


def ctr_stats(env, cid):
    return env.rt.ContainerStats(ph.api().ContainerStatsRequest(container_id=cid), timeout=30).stats


def wait_for(what, fn, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        ok, last = fn()
        if ok:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s; last: {last}")
        time.sleep(0.3)


def test_container_stats_memory_and_layer(stats_env):
    """A container that holds 50 MiB shows a working set of at least that
    (and the same numbers the cgroup files hold); one that writes 20 MiB to
    its root shows it in its writable layer within the walker's period, and
    ImageFsInfo's container file systems count it too."""
    env = stats_env("layer_usage_period_s: 2\n")
    api = ph.api()
    env.pull()
    pod_id, pod_cfg = env.new_pod(labels={"app": "stats"})
    hold = ("a=$(head -c 52428800 /dev/zero | tr '\\000' x); echo held; "
            "while true; do sleep 1; done")
    mem_id, mem_cfg = env.run(pod_id, pod_cfg, "mem", command=["sh", "-c", hold],
                              labels={"role": "mem"}, memory_limit=256 * MiB)
    env.wait_output(pod_cfg, mem_cfg, "held", timeout=60)
    write = "dd if=/dev/zero of=/big bs=1M count=20 && sync && echo wrote; while true; do sleep 1; done"
    disk_id, disk_cfg = env.run(pod_id, pod_cfg, "disk", command=["sh", "-c", write],
                                labels={"role": "disk"})
    env.wait_output(pod_cfg, disk_cfg, "wrote", timeout=60)

    s = ctr_stats(env, mem_id)
    assert s.attributes.id == mem_id
    assert s.attributes.metadata.name == "mem"
    assert dict(s.attributes.labels) == {"role": "mem"}
    m = s.memory
    assert m.working_set_bytes.value >= 50 * MiB, s
    assert m.usage_bytes.value >= m.working_set_bytes.value
    assert m.rss_bytes.value >= 50 * MiB, s
    assert m.page_faults.value > 0
    # The limit is there: available is what it leaves above the working set.
    assert m.available_bytes.value == 256 * MiB - m.working_set_bytes.value
    assert s.cpu.usage_core_nano_seconds.value > 0
    cg = f"/sys/fs/cgroup/memory{pod_cfg.linux.cgroup_parent}/{mem_id}"
    kernel_usage = read_int(f"{cg}/memory.usage_in_bytes")
    assert abs(m.usage_bytes.value - kernel_usage) < 8 * MiB, (m.usage_bytes.value, kernel_usage)
    now = time.time_ns()
    assert now - 60 * 10**9 < m.timestamp <= now

    def layer_grown():
        w = ctr_stats(env, disk_id).writable_layer
        return w.used_bytes.value >= 20 * MiB, w
    w = wait_for("the writable layer shows the 20 MiB written", layer_grown, 15)
    assert w.inodes_used.value >= 2
    assert w.fs_id.mountpoint == os.path.join(env.d.state_root, "containers")
    fs = env.d.img().ImageFsInfo(api.ImageFsInfoRequest()).container_filesystems
    assert len(fs) == 1 and fs[0].used_bytes.value >= 20 * MiB, fs
    assert fs[0].fs_id.mountpoint == w.fs_id.mountpoint

    # Lists: by pod, by label, by ID prefix; the unary and streaming forms
    # answer the same containers.
    lst = env.rt.ListContainerStats(api.ListContainerStatsRequest(), timeout=30).stats
    assert {x.attributes.id for x in lst} == {mem_id, disk_id}
    f = api.ContainerStatsFilter(pod_sandbox_id=pod_id, label_selector={"role": "disk"})
    lst = env.rt.ListContainerStats(api.ListContainerStatsRequest(filter=f), timeout=30).stats
    assert [x.attributes.id for x in lst] == [disk_id]
    lst = env.rt.ListContainerStats(
        api.ListContainerStatsRequest(filter=api.ContainerStatsFilter(id=mem_id[:12])), timeout=30).stats
    assert [x.attributes.id for x in lst] == [mem_id]
    streamed = [x for r in env.rt.StreamContainerStats(api.StreamContainerStatsRequest(), timeout=30)
                for x in r.container_stats]
    assert sorted(x.attributes.id for x in streamed) == sorted([mem_id, disk_id])

    # Pod stats: its cgroup parent holds both containers.
    ps = env.rt.PodSandboxStats(api.PodSandboxStatsRequest(pod_sandbox_id=pod_id), timeout=30).stats
    assert ps.attributes.id == pod_id and dict(ps.attributes.labels) == {"app": "stats"}
    assert ps.linux.memory.working_set_bytes.value >= 50 * MiB
    assert ps.linux.cpu.usage_core_nano_seconds.value >= s.cpu.usage_core_nano_seconds.value
    assert ps.linux.process.process_count.value >= 2
    assert sorted(c.attributes.id for c in ps.linux.containers) == sorted([mem_id, disk_id])
    lst = env.rt.ListPodSandboxStats(api.ListPodSandboxStatsRequest(), timeout=30).stats
    assert [p.attributes.id for p in lst] == [pod_id]
    f = api.PodSandboxStatsFilter(label_selector={"app": "other"})
    assert list(env.rt.ListPodSandboxStats(api.ListPodSandboxStatsRequest(filter=f), timeout=30).stats) == []

    # Unknown IDs and empty requests are errors naming the field.
    for fn, req in ((env.rt.ContainerStats, api.ContainerStatsRequest(container_id="f" * 64)),
                    (env.rt.PodSandboxStats, api.PodSandboxStatsRequest(pod_sandbox_id="f" * 64))):
        with pytest.raises(grpc.RpcError) as e:
            fn(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        env.rt.ContainerStats(api.ContainerStatsRequest(), timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "container_id" in e.value.details()


def test_created_container_listed_with_what_is_known(stats_env):
    env = stats_env()
    api = ph.api()
    env.pull()
    pod_id, pod_cfg = env.new_pod()
    cid = env.create(pod_id, pod_cfg, env.ctr_config("waits", command=["sleep", "100"]))
    lst = env.rt.ListContainerStats(api.ListContainerStatsRequest(), timeout=30).stats
    assert [x.attributes.id for x in lst] == [cid]
    # Its cgroup exists (the runtime made it at create): memory is known.
    assert lst[0].HasField("memory") and lst[0].HasField("writable_layer")
    env.stop(cid)
    # Exited containers have no cgroup left: the list leaves them out,
    # ContainerStats still answers what it knows.
    assert list(env.rt.ListContainerStats(api.ListContainerStatsRequest(), timeout=30).stats) == []
    assert ctr_stats(env, cid).attributes.id == cid


def test_cpu_nano_cores_of_a_half_core_spinner(stats_env):
    """A spinner limited to half a core: crid's usage_nano_cores (from its
    previous reading) agrees with the kernel's counter over the same time,
    and is about 0.5e9."""
    env = stats_env()
    api = ph.api()
    env.pull()
    pod_id, pod_cfg = env.new_pod()
    cfg = env.ctr_config("spin", command=["sh", "-c", "while :; do :; done"])
    cfg.linux.resources.cpu_period = 100000
    cfg.linux.resources.cpu_quota = 50000
    cid = env.create(pod_id, pod_cfg, cfg)
    env.start(cid)
    acct = f"/sys/fs/cgroup/cpuacct{pod_cfg.linux.cgroup_parent}/{cid}/cpuacct.usage"
    time.sleep(1)
    first = ctr_stats(env, cid)
    assert not first.cpu.HasField("usage_nano_cores")  # nothing to compare with yet
    u0, t0 = read_int(acct), time.monotonic()
    time.sleep(4)
    u1, t1 = read_int(acct), time.monotonic()
    s = ctr_stats(env, cid)
    kernel_rate = (u1 - u0) / (t1 - t0)
    rate = s.cpu.usage_nano_cores.value
    assert abs(rate - kernel_rate) <= 0.15 * kernel_rate, (rate, kernel_rate)
    assert 0.35e9 <= rate <= 0.65e9, f"usage_nano_cores {rate} (kernel: {kernel_rate})"
    ps = env.rt.PodSandboxStats(api.PodSandboxStatsRequest(pod_sandbox_id=pod_id), timeout=30).stats
    assert ps.linux.cpu.usage_core_nano_seconds.value >= s.cpu.usage_core_nano_seconds.value


def _in_netns(path, argv, **kw):
    return subprocess.run(["nsenter", f"--net={path}"] + argv, check=True, capture_output=True,
                          text=True, timeout=30, **kw)


def test_network_counters_of_two_pods(stats_env):
    """Two pods joined by a veth pair (eth0 in each): UDP traffic from one to
    the other raises the sender's tx and the receiver's rx counters, as
    PodSandboxStats reads them from inside each pod's namespace."""
    env = stats_env()
    api = ph.api()
    a_id, _ = env.new_pod()
    b_id, _ = env.new_pod()
    a_ns = os.path.join(env.d.run_root, "pods", a_id, "ns", "net")
    b_ns = os.path.join(env.d.run_root, "pods", b_id, "ns", "net")
    peer = f"crid{secrets.token_hex(4)}"
    holder = subprocess.Popen(["nsenter", f"--net={b_ns}", "sleep", "60"])
    try:
        _in_netns(a_ns, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", peer])
        _in_netns(a_ns, ["ip", "link", "set", peer, "netns", str(holder.pid)])
    finally:
        holder.kill()
        holder.wait()
    _in_netns(b_ns, ["ip", "link", "set", peer, "name", "eth0"])
    _in_netns(a_ns, ["ip", "addr", "add", "10.199.0.1/24", "dev", "eth0"])
    _in_netns(b_ns, ["ip", "addr", "add", "10.199.0.2/24", "dev", "eth0"])
    for ns in (a_ns, b_ns):
        _in_netns(ns, ["ip", "link", "set", "eth0", "up"])
        _in_netns(ns, ["ip", "link", "set", "lo", "up"])

    def net(pod_id):
        ps = env.rt.PodSandboxStats(api.PodSandboxStatsRequest(pod_sandbox_id=pod_id), timeout=30).stats
        return ps.linux.network

    a0, b0 = net(a_id), net(b_id)
    assert a0.default_interface.name == "eth0" and b0.default_interface.name == "eth0"
    assert [i.name for i in a0.interfaces] == ["eth0"]  # loopback is not reported
    sender = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "for _ in range(300):\n    s.sendto(b'x' * 1000, ('10.199.0.2', 9))\n")
    _in_netns(a_ns, ["/usr/bin/python3", "-c", sender])
    time.sleep(0.5)
    a1, b1 = net(a_id), net(b_id)
    sent = a1.default_interface.tx_bytes.value - a0.default_interface.tx_bytes.value
    got = b1.default_interface.rx_bytes.value - b0.default_interface.rx_bytes.value
    assert sent >= 300 * 1000, (a0, a1)
    assert got >= 300 * 1000, (b0, b1)
    assert a1.timestamp > a0.timestamp
    # The metrics RPCs report the same counters, cAdvisor-style.
    metrics = env.rt.ListPodSandboxMetrics(api.ListPodSandboxMetricsRequest(), timeout=30).pod_metrics
    by_pod = {m.pod_sandbox_id: m for m in metrics}
    rx = [m for m in by_pod[b_id].metrics if m.name == "container_network_receive_bytes_total"]
    assert len(rx) == 1 and rx[0].value.value >= got and rx[0].label_values[-1] == "eth0"


def test_metric_descriptors_and_pod_metrics(stats_env):
    """Every metric ListPodSandboxMetrics sends is described, with as many
    label values as its descriptor has keys (the kubelet drops the rest);
    the streaming form answers the same pods."""
    env = stats_env()
    api = ph.api()
    env.pull()
    pod_id, pod_cfg = env.new_pod()
    cid, _ = env.run(pod_id, pod_cfg, "m", command=["sleep", "1000"])
    env.wait_state(cid, api.CONTAINER_RUNNING)
    descs = env.rt.ListMetricDescriptors(api.ListMetricDescriptorsRequest(), timeout=30).descriptors
    keys = {d.name: list(d.label_keys) for d in descs}
    for name in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                 "container_network_receive_bytes_total", "container_fs_usage_bytes"):
        assert name in keys, sorted(keys)
    resp = env.rt.ListPodSandboxMetrics(api.ListPodSandboxMetricsRequest(), timeout=30)
    assert [m.pod_sandbox_id for m in resp.pod_metrics] == [pod_id]
    pm = resp.pod_metrics[0]
    assert [c.container_id for c in pm.container_metrics] == [cid]
    names = set()
    for m in list(pm.metrics) + list(pm.container_metrics[0].metrics):
        assert m.name in keys, m.name
        assert len(m.label_values) == len(keys[m.name]), m
        names.add(m.name)
    ws = [m for m in pm.container_metrics[0].metrics if m.name == "container_memory_working_set_bytes"]
    assert len(ws) == 1 and ws[0].value.value > 0
    labels = dict(zip(keys[ws[0].name], ws[0].label_values))
    assert labels["container"] == "m" and labels["name"] == cid
    assert labels["pod"] == pod_cfg.metadata.name and labels["namespace"] == pod_cfg.metadata.namespace
    streamed = [m for r in env.rt.StreamPodSandboxMetrics(api.StreamPodSandboxMetricsRequest(), timeout=30)
                for m in r.pod_sandbox_metrics]
    assert [m.pod_sandbox_id for m in streamed] == [pod_id]


def test_streaming_lists_answer_what_lists_answer(stats_env):
    """StreamPodSandboxes, StreamContainers and StreamPodSandboxStats with
    the same filters as their unary forms return the same items, each once,
    in batches; a filter that matches nothing ends the stream with no
    message."""
    env = stats_env()
    api = ph.api()
    env.pull()
    pods = []
    for i in range(3):
        pod_id, pod_cfg = env.new_pod(labels={"n": str(i), "group": "s"})
        cid, _ = env.run(pod_id, pod_cfg, f"c{i}", command=["sleep", "1000"], labels={"n": str(i)})
        pods.append((pod_id, cid))
    env.stop_pod(pods[2][0])
    for f in (None, api.PodSandboxFilter(label_selector={"group": "s"}),
              api.PodSandboxFilter(id=pods[0][0][:10]),
              api.PodSandboxFilter(state=api.PodSandboxStateValue(state=api.SANDBOX_READY))):
        unary = env.rt.ListPodSandbox(api.ListPodSandboxRequest(filter=f), timeout=30).items
        streamed = [p for r in env.rt.StreamPodSandboxes(api.StreamPodSandboxesRequest(filter=f), timeout=30)
                    for p in r.pod_sandboxes]
        assert sorted(p.SerializeToString() for p in unary) == sorted(p.SerializeToString() for p in streamed)
    for f in (None, api.ContainerFilter(pod_sandbox_id=pods[1][0]),
              api.ContainerFilter(label_selector={"n": "0"}),
              api.ContainerFilter(state=api.ContainerStateValue(state=api.CONTAINER_EXITED))):
        unary = env.rt.ListContainers(api.ListContainersRequest(filter=f), timeout=30).containers
        streamed = [c for r in env.rt.StreamContainers(api.StreamContainersRequest(filter=f), timeout=30)
                    for c in r.containers]
        assert sorted(c.SerializeToString() for c in unary) == sorted(c.SerializeToString() for c in streamed)
    unary = env.rt.ListPodSandboxStats(api.ListPodSandboxStatsRequest(), timeout=30).stats
    streamed = [p for r in env.rt.StreamPodSandboxStats(api.StreamPodSandboxStatsRequest(), timeout=30)
                for p in r.pod_sandbox_stats]
    assert sorted(p.attributes.id for p in unary) == sorted(p.attributes.id for p in streamed) \
        == sorted([pods[0][0], pods[1][0]])
    none = api.PodSandboxFilter(id="0" * 64)
    assert list(env.rt.StreamPodSandboxes(api.StreamPodSandboxesRequest(filter=none), timeout=30)) == []


# ---- the Prometheus endpoint ----

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? '
                    r'(-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$')


def check_exposition(text):
    """The checks promtool's 'check metrics' makes of the text format, with
    the Prometheus client library's parser besides: each family declared
    once with HELP and TYPE before its samples, names and labels well
    formed, counters named *_total, histograms with cumulative buckets
    ending in +Inf equal to _count. Returns {sample text: value}."""
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families, "no metric families"
    types, helps, seen_done, current = {}, {}, set(), None
    samples = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helps, f"HELP twice for {name}"
            helps[name] = True
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert METRIC_NAME.match(name) and typ in ("counter", "gauge", "histogram", "summary", "untyped")
            assert name not in types, f"TYPE twice for {name}"
            if current:
                seen_done.add(current)
            types[name], current = typ, name
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            base = re.sub(r"_(bucket|sum|count)$", "", m.group(1)) if types.get(current) == "histogram" \
                else m.group(1)
            assert base == current, f"sample {m.group(1)} outside its family {current}"
            samples[line.rsplit(" ", 1)[0]] = float(m.group(4))
    for name, typ in types.items():
        assert name in helps, f"{name} has no HELP"
        if typ == "counter":
            assert name.endswith("_total"), name
    for name, typ in types.items():
        if typ != "histogram":
            continue
        series = {}
        for key, v in samples.items():
            if key.startswith(name + "_bucket{"):
                le = re.search(r'le="([^"]+)"', key).group(1)
                rest = re.sub(r',?le="[^"]+"', "", key[len(name + "_bucket"):])
                series.setdefault(rest, []).append((float(le), v))
        for rest, buckets in series.items():
            les = [le for le, _ in buckets]
            assert les == sorted(les) and les[-1] == float("inf"), buckets
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), f"{name}{rest}: buckets not cumulative: {buckets}"
            label_part = "" if rest in ("{}", "") else rest
            assert samples[f"{name}_count{label_part}"] == counts[-1]
    return samples


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def test_prometheus_endpoint(stats_env):
    port = free_port()
    env = stats_env(f"metrics_address: 127.0.0.1:{port}\n")
    api = ph.api()
    before = check_exposition(scrape(port))
    for _ in range(3):
        env.rt.Version(api.VersionRequest(), timeout=10)
    with pytest.raises(grpc.RpcError):
        env.rt.ContainerStatus(api.ContainerStatusRequest(container_id="0" * 64), timeout=10)
    env.pull()
    pod_id, pod_cfg = env.new_pod()
    cid, _ = env.run(pod_id, pod_cfg, "p", command=["sleep", "1000"])
    env.wait_state(cid, api.CONTAINER_RUNNING)
    after = check_exposition(scrape(port))

    def delta(key):
        return after.get(key, 0) - before.get(key, 0)
    v = 'service="RuntimeService",method="Version"'
    assert delta(f"crid_grpc_requests_total{{{v}}}") == 3
    assert delta(f"crid_grpc_request_duration_seconds_count{{{v}}}") == 3
    assert delta('crid_grpc_errors_total{service="RuntimeService",method="ContainerStatus",code="NOT_FOUND"}') == 1
    assert delta('crid_grpc_requests_total{service="ImageService",method="PullImage"}') == 1
    assert after['crid_image_pulls_total{result="success"}'] >= 1
    assert after["crid_image_pull_bytes_total"] > 0
    assert after['crid_pods{state="ready"}'] == 1
    assert after['crid_containers{state="running"}'] == 1
    assert after["crid_shims"] == 1
    assert after["process_resident_memory_bytes"] > 1 * MiB
    assert after["process_open_fds"] > 3
    # Only GET /metrics; a request too large is refused, not buffered.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
    assert e.value.code == 404
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
        assert s.recv(100).startswith(b"HTTP/1.1 431")
    # A client that connects and says nothing costs a scrape seconds, no more.
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        t = time.monotonic()
        check_exposition(scrape(port))
        assert time.monotonic() - t < 8
    finally:
        idle.close()


def test_metrics_endpoint_off_by_default_and_bad_address(daemon_factory):
    d = daemon_factory().start()
    cfg = ph.info_json(d.rt().Status(ph.api().StatusRequest(verbose=True)), "config")
    assert cfg["metrics_address"] == ""
    for bad in ("127.0.0.1:notaport", "::1:9090", "127.0.0.1:0"):
        rc, _, err = daemon_factory(config=f"metrics_address: \"{bad}\"\n").run_to_exit()
        assert rc == 2 and "metrics_address" in err, (rc, err)
