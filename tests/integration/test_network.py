"""Pod networking through CNI, with Debian's containernetworking-plugins on a
bridge and subnet each test makes for itself (cni_helpers.BridgeNet): pod
IPs, pods reaching each other and the host, hostPorts through portmap,
readiness following the configuration directory, and no address, veth or
iptables rule left behind — after a normal removal, a kill -9 of crid at
any point, a wiped run root, a missing or hanging plugin.

Traffic stays on the test's bridge and the host: the networks have no
default route and no masquerading."""

import concurrent.futures
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import grpc
import pytest

import pod_helpers as ph
from cni_helpers import BridgeNet, install_test_plugin, read_calls
from conftest import LOOPBACK_CONFLIST
from pod_helpers import hugetlb_v1, pod_env_factory, registry_set  # noqa: F401 (fixtures)

HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec /bin/busybox httpd -f -p {port} -h /www"
WAIT_S = 10.0
# Debian's busybox wget crashes with -T: ExecSync's timeout bounds it instead.
WGET = ("/bin/busybox", "wget", "-q", "-O", "-")


@pytest.fixture
def bridge_net(tmp_path):
    net = BridgeNet(str(tmp_path))
    yield net
    net.cleanup()


def status_ips(env, pod_id):
    net = env.pod_status(pod_id).status.network
    return net.ip, [x.ip for x in net.additional_ips]


def in_pod(env, cid, *cmd, timeout=10):
    r = env.exec_sync(cid, list(cmd), timeout=timeout)
    return r.exit_code, r.stdout.decode(), r.stderr.decode()


def http_get(url, timeout=WAIT_S):
    """The body at url, retried until timeout (a server may still be
    starting); raises the last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def refused(url):
    """True when nothing answers at url (connection refused or reset)."""
    try:
        urllib.request.urlopen(url, timeout=2).read()
        return False
    except (urllib.error.URLError, OSError):
        return True


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_httpd(env, pod_id, cfg, name, port, text):
    cid, _ = env.run(pod_id, cfg, name, ["sh", "-c", HTTPD.format(text=text, port=port)])
    return cid


def wait_ready(d, ready, timeout=WAIT_S):
    """Status until NetworkReady is `ready`; returns the condition."""
    api = ph.api()
    deadline = time.monotonic() + timeout
    while True:
        conds = {c.type: c for c in d.rt().Status(api.StatusRequest()).status.conditions}
        net = conds["NetworkReady"]
        if net.status is ready or time.monotonic() > deadline:
            return net
        time.sleep(0.05)


def cni_info(d):
    resp = d.rt().Status(ph.api().StatusRequest(verbose=True))
    return json.loads(dict(resp.info)["cni"])


def record_ids(d, kind="network"):
    """IDs of crid's records of a kind, read from its SQLite store."""
    import sqlite3
    db = sqlite3.connect(os.path.join(d.state_root, "crid.db"))
    try:
        return [r[0] for r in db.execute("SELECT id FROM objects WHERE kind = ?", (kind,))]
    finally:
        db.close()


# ---------------------------------------------------------------------------
# Addresses and reachability


def test_pods_reach_each_other_and_the_host(pod_env_factory, bridge_net):
    """Two pods on the test's bridge: each reports an address of the
    subnet, the one its eth0 holds; one fetches from the other by IP, and
    both reach a server on the host's bridge address."""
    net = bridge_net
    env = pod_env_factory(network=net)
    env.pull()
    a_id, a_cfg = env.new_pod()
    b_id, b_cfg = env.new_pod()
    a_ip, a_more = status_ips(env, a_id)
    b_ip, _ = status_ips(env, b_id)
    assert ipaddress.ip_address(a_ip) in net.subnet and ipaddress.ip_address(b_ip) in net.subnet, (a_ip, b_ip)
    assert a_ip != b_ip and a_more == []
    assert sorted(net.leases()) == sorted([a_ip, b_ip])
    assert len(net.veths()) == 2, net.veths()

    a_web = run_httpd(env, a_id, a_cfg, "web", 80, "hello-from-a")
    b_cli, _ = env.run(b_id, b_cfg, "cli", ["sleep", "1000"])
    code, out, _ = in_pod(env, b_cli, "/bin/busybox", "ip", "-o", "-4", "addr", "show", "eth0")
    assert code == 0 and f" {b_ip}/{net.subnet.prefixlen} " in out, out
    deadline = time.monotonic() + WAIT_S
    while True:
        code, out, err = in_pod(env, b_cli, *WGET, f"http://{a_ip}/")
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (code, out) == (0, "hello-from-a\n"), (code, out, err)

    # The host: a server on the bridge's address, which pods route to.
    srv = socket.socket()
    srv.bind((str(net.gateway), 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    got = []

    def serve():
        srv.settimeout(WAIT_S)
        try:
            c, peer = srv.accept()
            got.append(peer[0])
            c.recv(1024)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nthe-host")
            c.close()
        except OSError:
            pass

    t = threading.Thread(target=serve)
    t.start()
    try:
        code, out, err = in_pod(env, a_web, *WGET, f"http://{net.gateway}:{port}/")
    finally:
        t.join()
        srv.close()
    assert (code, out) == (0, "the-host"), (code, out, err)
    assert got == [a_ip], f"the host saw the pod as {got}, expected {a_ip}"

    for pid in (a_id, b_id):
        env.stop_pod(pid)
        assert status_ips(env, pid) == ("", []), "a stopped pod keeps reporting its address"
    assert net.leases() == [] and net.veths() == [], (net.leases(), net.veths())
    for pid in (a_id, b_id):
        env.remove_pod(pid)
    assert record_ids(env.d) == []


def test_host_port_and_container_port(pod_env_factory, bridge_net):
    """A busybox httpd behind a hostPort answers on the host's loopback and
    on the pod IP; the hostIP of a mapping is honoured; a container port
    without a hostPort needs no mapping and answers on the pod IP; portmap's
    rules go with the pod."""
    net = bridge_net
    env = pod_env_factory(network=net)
    env.pull()
    api = env.api
    lo_port, any_port = free_port(), free_port()
    cfg = env.pod_config()
    cfg.port_mappings.add(protocol=api.TCP, container_port=80, host_port=lo_port, host_ip="127.0.0.1")
    cfg.port_mappings.add(protocol=api.TCP, container_port=81, host_port=any_port)
    cfg.port_mappings.add(protocol=api.TCP, container_port=8080)  # no host port
    pod_id = env.run_pod(cfg)
    ip, _ = status_ips(env, pod_id)
    run_httpd(env, pod_id, cfg, "web", 80, "on-80")
    run_httpd(env, pod_id, cfg, "web81", 81, "on-81")
    run_httpd(env, pod_id, cfg, "web8080", 8080, "on-8080")

    assert http_get(f"http://127.0.0.1:{lo_port}/") == "on-80\n"
    assert http_get(f"http://{ip}:80/") == "on-80\n"
    assert http_get(f"http://{ip}:8080/") == "on-8080\n"
    # hostIP 127.0.0.1: the port is not mapped on the host's other addresses.
    assert refused(f"http://{net.gateway}:{lo_port}/"), "a hostIP 127.0.0.1 mapping answered elsewhere"
    # No hostIP: every address of the host.
    assert http_get(f"http://127.0.0.1:{any_port}/") == "on-81\n"
    assert http_get(f"http://{net.gateway}:{any_port}/") == "on-81\n"
    rules = net.rules([pod_id])
    assert any(str(lo_port) in r for r in rules) and any(str(any_port) in r for r in rules), rules
    assert not any("8080" in r for r in rules), f"a container port without hostPort was mapped: {rules}"

    env.stop_pod(pod_id)
    assert refused(f"http://127.0.0.1:{lo_port}/")
    assert net.rules([pod_id]) == [], net.rules([pod_id])
    env.remove_pod(pod_id)


def test_parallel_pods_get_distinct_addresses(pod_env_factory, bridge_net):
    """20 pods started at once get 20 distinct addresses of the subnet;
    once removed, no lease, veth or record is left."""
    net = bridge_net
    env = pod_env_factory(network=net)
    cfgs = [env.pod_config() for _ in range(20)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(env.run_pod, cfgs))
    ips = [status_ips(env, i)[0] for i in ids]
    assert len(set(ips)) == 20, ips
    assert all(ipaddress.ip_address(x) in net.subnet for x in ips), ips
    assert sorted(net.leases()) == sorted(ips)
    assert len(net.veths()) == 20
    assert sorted(record_ids(env.d)) == sorted(ids)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda i: (env.stop_pod(i), env.remove_pod(i)), ids))
    assert net.wait_no_leaks(ids) == {}
    assert record_ids(env.d) == []


def test_bandwidth_annotations_shape_traffic(pod_env_factory, bridge_net):
    """The kubelet's bandwidth annotations reach the bandwidth plugin: the
    pod's host-side veth gets a token bucket at the ingress rate, and its
    egress goes through an ifb device at the egress rate, which DEL
    removes."""
    net = bridge_net
    env = pod_env_factory(network=net, conflist=net.conflist(
        after=[{"type": "bandwidth", "capabilities": {"bandwidth": True}}]))
    pod_id, _ = env.new_pod(annotations={"kubernetes.io/ingress-bandwidth": "10M",
                                         "kubernetes.io/egress-bandwidth": "20M"})
    (veth,) = net.veths()
    qdisc = subprocess.run(["tc", "qdisc", "show", "dev", veth], capture_output=True, text=True).stdout
    assert re.search(r"qdisc tbf .* rate 10Mbit", qdisc), qdisc
    filters = subprocess.run(["tc", "filter", "show", "dev", veth, "parent", "ffff:"],
                             capture_output=True, text=True).stdout
    m = re.search(r"to device (\S+)\)", filters)
    assert m, f"no redirect of the pod's egress on {veth}: {filters}"
    ifb = m.group(1)
    qdisc = subprocess.run(["tc", "qdisc", "show", "dev", ifb], capture_output=True, text=True).stdout
    assert re.search(r"qdisc tbf .* rate 20Mbit", qdisc), qdisc
    env.stop_pod(pod_id)
    assert subprocess.run(["ip", "link", "show", ifb], capture_output=True).returncode != 0, \
        f"the egress device {ifb} outlived the pod's network"
    env.remove_pod(pod_id)


def test_dual_stack(pod_env_factory, tmp_path):
    """A configuration with an IPv4 and an IPv6 range: the IPv4 address is
    the pod's primary IP, the IPv6 one its additional IP."""
    if not os.path.exists("/proc/net/if_inet6"):
        pytest.skip("this kernel has no IPv6")
    net = BridgeNet(str(tmp_path), v6=True)
    try:
        env = pod_env_factory(network=net)
    except BaseException:
        net.cleanup()
        raise
    pod_id, _ = env.new_pod()
    ip, more = status_ips(env, pod_id)
    assert ipaddress.ip_address(ip) in net.subnet, ip
    assert len(more) == 1 and ipaddress.ip_address(more[0]) in net.subnet6, more
    assert sorted(net.leases()) == sorted([ip, str(ipaddress.ip_address(more[0]))])
    env.stop_pod(pod_id)
    env.remove_pod(pod_id)


def test_host_network_pods_skip_cni(pod_env_factory, tmp_path):
    """A pod on the node's network runs whatever the CNI configuration is
    (here one whose plugin does not exist) and reports no address."""
    bad = json.dumps({"cniVersion": "1.0.0", "name": "broken",
                      "plugins": [{"type": "crid-it-no-such-plugin"}]})
    env = pod_env_factory(conflist=bad)
    api = env.api
    pod_id, _ = env.new_pod(network=api.NODE)
    assert status_ips(env, pod_id) == ("", [])
    assert record_ids(env.d) == []
    env.stop_pod(pod_id)
    env.remove_pod(pod_id)
    # The same configuration fails a pod with its own network.
    code, msg = ph.rpc_code(env.run_pod, env.pod_config())
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "crid-it-no-such-plugin" in msg, (code, msg)


# ---------------------------------------------------------------------------
# Failures leave nothing


def assert_nothing_left(env, net, what):
    assert env.list_pods() == [], f"{what}: a pod is listed"
    assert net.wait_no_leaks() == {}, what
    assert record_ids(env.d) == [], f"{what}: an attachment record is left"
    pods_dir = os.path.join(env.d.run_root, "pods")
    assert os.listdir(pods_dir) == [], f"{what}: pod directories are left: {os.listdir(pods_dir)}"
    assert ph.mounts_under(env.d.run_root) == [], f"{what}: mounts are left"


def test_missing_plugin_fails_cleanly(pod_env_factory, bridge_net):
    """A plugin that does not exist after the bridge: RunPodSandbox fails
    naming it and the bin dirs, and the bridge's address and veth are
    released."""
    net = bridge_net
    env = pod_env_factory(network=net, conflist=net.conflist(after=[{"type": "crid-it-no-such-plugin"}]))
    code, msg = ph.rpc_code(env.run_pod, env.pod_config())
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, msg)
    assert "crid-it-no-such-plugin" in msg and "/usr/lib/cni" in msg, msg
    assert_nothing_left(env, net, "after a missing plugin")


def test_failing_plugin_fails_cleanly(pod_env_factory, bridge_net):
    """A plugin that answers an error: its message and stderr become the
    RPC's, and DEL undoes what ran before it (and it itself)."""
    net = bridge_net
    log = os.path.join(str(bridge_net.data_dir) + "-calls.log")
    env = pod_env_factory(network=net, conflist=net.conflist(
        after=[{"type": "crid-it-plugin", "logFile": log, "failOn": ["ADD"]}]))
    install_test_plugin(env.d.cni_bin_dir)
    code, msg = ph.rpc_code(env.run_pod, env.pod_config())
    assert code == grpc.StatusCode.UNKNOWN, (code, msg)
    assert "the test plugin was told to fail: failOn ADD" in msg and "test plugin: failing ADD" in msg, msg
    assert [c["command"] for c in read_calls(log)] == ["ADD", "DEL"], read_calls(log)
    assert_nothing_left(env, net, "after a failing plugin")


def test_hanging_plugin_times_out(pod_env_factory, bridge_net):
    """A plugin that sleeps past cni_plugin_timeout_s: the RPC fails with
    DEADLINE_EXCEEDED naming it, the plugin is killed, nothing is left."""
    net = bridge_net
    log = os.path.join(str(bridge_net.data_dir) + "-calls.log")
    env = pod_env_factory(network=net, extra_config="cni_plugin_timeout_s: 2\n", conflist=net.conflist(
        after=[{"type": "crid-it-plugin", "logFile": log, "sleepOn": ["ADD"]}]))
    install_test_plugin(env.d.cni_bin_dir)
    t0 = time.monotonic()
    code, msg = ph.rpc_code(env.run_pod, env.pod_config())
    took = time.monotonic() - t0
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED, (code, msg)
    assert "crid-it-plugin (ADD) did not finish within 2 s" in msg, msg
    assert 1.5 < took < 20, took
    calls = read_calls(log)
    assert [c["command"] for c in calls] == ["ADD", "DEL"], calls
    assert not ph.pid_alive(calls[0]["pid"]), "the plugin that hung still runs"
    assert_nothing_left(env, net, "after a plugin that hung")


def test_bad_pod_settings_are_refused(pod_env_factory, bridge_net):
    """What plugins cannot take is refused before anything is made, naming
    the field or annotation."""
    env = pod_env_factory(network=bridge_net)
    api = env.api
    cases = []
    cfg = env.pod_config(annotations={"kubernetes.io/ingress-bandwidth": "lots"})
    cases.append((cfg, "kubernetes.io/ingress-bandwidth"))
    cfg = env.pod_config(annotations={"kubernetes.io/egress-bandwidth": "10"})
    cases.append((cfg, "out of range"))
    cfg = env.pod_config()
    cfg.port_mappings.add(protocol=api.TCP, container_port=70000, host_port=8080)
    cases.append((cfg, "config.port_mappings[0].container_port"))
    cfg = env.pod_config()
    cfg.port_mappings.add(protocol=api.TCP, container_port=80, host_port=8080, host_ip="not-an-ip")
    cases.append((cfg, "config.port_mappings[0].host_ip"))
    cfg = env.pod_config(name="semi;colon")
    cases.append((cfg, "config.metadata.name"))
    for cfg, needle in cases:
        code, msg = ph.rpc_code(env.run_pod, cfg)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and needle in msg, (needle, code, msg)
    assert_nothing_left(env, bridge_net, "after refused pods")


# ---------------------------------------------------------------------------
# Crashes, restarts and reboots


def test_kill9_between_run_and_stop(pod_env_factory, bridge_net):
    """kill -9 of crid while a pod with a hostPort runs; after the restart
    the pod keeps its address, and StopPodSandbox releases it and removes
    portmap's rules with the configuration ADD used."""
    net = bridge_net
    env = pod_env_factory(network=net)
    cfg = env.pod_config()
    cfg.port_mappings.add(protocol=env.api.TCP, container_port=80, host_port=free_port())
    pod_id = env.run_pod(cfg)
    ip, _ = status_ips(env, pod_id)
    env.kill_daemon()
    # The directory changes while crid is down: DEL still uses what ADD did.
    env.d.write_cni_conflist(LOOPBACK_CONFLIST)
    env.start_daemon()
    assert status_ips(env, pod_id) == (ip, [])
    assert net.leases() == [ip] and net.rules([pod_id]), "the pod lost its network in the restart"
    env.stop_pod(pod_id)
    assert net.wait_no_leaks([pod_id]) == {}
    env.remove_pod(pod_id)
    assert record_ids(env.d) == []


def test_wiped_run_root_releases_the_address(pod_env_factory, bridge_net):
    """A reboot, as crid sees one: crid killed, the run root's mounts and
    files gone. At the next start the pod is not ready and its address,
    its rules (a real reboot would have flushed those) and its record are
    released before any RPC; Stop and Remove then just succeed."""
    net = bridge_net
    env = pod_env_factory(network=net)
    cfg = env.pod_config()
    cfg.port_mappings.add(protocol=env.api.TCP, container_port=80, host_port=free_port())
    pod_id = env.run_pod(cfg)
    assert len(net.leases()) == 1
    env.kill_daemon()
    ph.unmount_all_under(env.d.run_root)
    shutil.rmtree(env.d.run_root)
    env.start_daemon()
    assert net.wait_no_leaks([pod_id]) == {}
    assert record_ids(env.d) == []
    assert env.pod_status(pod_id).status.state == env.api.SANDBOX_NOTREADY
    assert status_ips(env, pod_id) == ("", [])
    env.stop_pod(pod_id)
    env.remove_pod(pod_id)


def gated_env(pod_env_factory, net, command):
    """A PodEnv whose network ends with the test plugin gated on command."""
    gate = os.path.join(net.data_dir + "-gate")
    log = net.data_dir + "-calls.log"
    env = pod_env_factory(network=net, conflist=net.conflist(
        after=[{"type": "crid-it-plugin", "logFile": log, "gate": gate, "gateOn": [command]}]))
    install_test_plugin(env.d.cni_bin_dir)
    return env, gate, log


def wait_file(path, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout}s"
        time.sleep(0.05)


def test_kill9_during_add(pod_env_factory, bridge_net):
    """kill -9 of crid while ADD runs (the bridge has leased an address and
    made a veth; the last plugin hangs): the next start kills the plugin
    left running, DELs the attachment it recorded first, and removes the
    half-made pod; nothing is listed and nothing is left."""
    net = bridge_net
    env, gate, log = gated_env(pod_env_factory, net, "ADD")
    result = []
    t = threading.Thread(target=lambda: result.append(ph.rpc_code(env.run_pod, env.pod_config())))
    t.start()
    wait_file(gate + ".entered")
    assert len(net.leases()) == 1
    env.kill_daemon()
    t.join()
    plugin_pid = read_calls(log)[-1]["pid"]
    assert ph.pid_alive(plugin_pid), "the plugin died with crid: the test proves nothing"
    env.start_daemon()
    assert not ph.pid_alive(plugin_pid), "the plugin left running was not ended"
    assert [c["command"] for c in read_calls(log)] == ["ADD", "DEL"], read_calls(log)
    assert_nothing_left(env, net, "after kill -9 during ADD")


def test_kill9_during_del(pod_env_factory, bridge_net):
    """kill -9 of crid while StopPodSandbox's DEL runs (before the bridge
    released the address): after the restart the pod is still there, and
    the kubelet's next StopPodSandbox releases everything."""
    net = bridge_net
    env, gate, log = gated_env(pod_env_factory, net, "DEL")
    pod_id = env.run_pod(env.pod_config())
    t = threading.Thread(target=lambda: ph.rpc_code(env.stop_pod, pod_id))
    t.start()
    wait_file(gate + ".entered")
    env.kill_daemon()
    t.join()
    plugin_pid = read_calls(log)[-1]["pid"]
    env.start_daemon()
    assert not ph.pid_alive(plugin_pid), "the plugin left running was not ended"
    assert len(net.leases()) == 1
    env.stop_pod(pod_id)
    env.remove_pod(pod_id)
    assert net.wait_no_leaks([pod_id]) == {}
    assert record_ids(env.d) == []


# ---------------------------------------------------------------------------
# What plugins are given


def test_plugin_inputs(pod_env_factory, bridge_net):
    """The test plugin records what crid gives it: CNI_* variables with the
    kubelet's CNI_ARGS, runtimeConfig holding only the capabilities it
    declares (port mappings with a host port, bandwidth from the
    annotations, the pod CIDR as ipRanges, DNS), the bridge's result as
    prevResult; CHECK after a restart and DEL with the cached result, in
    reverse order, with the configuration ADD used."""
    net = bridge_net
    log = net.data_dir + "-calls.log"
    caps = {"portMappings": True, "bandwidth": True, "ipRanges": True, "dns": True}
    # Without portmap, whose CHECK (Debian's 1.1.1) fails for IPv4-only
    # pods with port mappings, and which would stop the CHECKs after it.
    env = pod_env_factory(network=net, conflist=net.conflist(portmap=False, after=[
        {"type": "crid-it-plugin", "logFile": log, "capabilities": caps, "n": 1},
        {"type": "crid-it-plugin", "logFile": log, "n": 2}]))
    install_test_plugin(env.d.cni_bin_dir)
    api = env.api
    req = api.UpdateRuntimeConfigRequest()
    req.runtime_config.network_config.pod_cidr = "10.99.0.0/24,fd00:99::/64"
    env.rt.UpdateRuntimeConfig(req)
    host_port = free_port()
    cfg = env.pod_config(annotations={"kubernetes.io/ingress-bandwidth": "10M",
                                      "kubernetes.io/egress-bandwidth": "1Mi"},
                         dns={"servers": ["10.96.0.10"], "searches": ["ns.svc.cluster.local"],
                              "options": ["ndots:5"]})
    cfg.port_mappings.add(protocol=api.UDP, container_port=53, host_port=host_port, host_ip="127.0.0.1")
    cfg.port_mappings.add(protocol=api.TCP, container_port=8080)
    pod_id = env.run_pod(cfg)
    ip, _ = status_ips(env, pod_id)

    calls = read_calls(log)
    assert [(c["command"], c["conf"]["n"]) for c in calls] == [("ADD", 1), ("ADD", 2)], calls
    md = cfg.metadata
    assert calls[0]["env"] == {
        "CNI_COMMAND": "ADD", "CNI_CONTAINERID": pod_id,
        "CNI_NETNS": os.path.join(env.d.run_root, "pods", pod_id, "ns", "net"),
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={md.namespace};K8S_POD_NAME={md.name};"
                     f"K8S_POD_INFRA_CONTAINER_ID={pod_id};K8S_POD_UID={md.uid}"),
        "CNI_PATH": ":".join([env.d.cni_bin_dir, "/opt/cni/bin", "/usr/lib/cni"]),
    }, calls[0]["env"]
    first, second = calls[0]["conf"], calls[1]["conf"]
    assert (first["name"], first["cniVersion"]) == (net.name, "1.0.0"), first
    assert first["runtimeConfig"] == {
        "portMappings": [{"hostPort": host_port, "containerPort": 53, "protocol": "udp",
                          "hostIP": "127.0.0.1"}],
        "bandwidth": {"ingressRate": 10_000_000, "ingressBurst": 4294967295,
                      "egressRate": 1048576, "egressBurst": 4294967295},
        "ipRanges": [[{"subnet": "10.99.0.0/24"}], [{"subnet": "fd00:99::/64"}]],
        "dns": {"servers": ["10.96.0.10"], "searches": ["ns.svc.cluster.local"], "options": ["ndots:5"]},
    }, first["runtimeConfig"]
    assert "runtimeConfig" not in second, "a plugin without capabilities got runtimeConfig"
    assert [x["address"] for x in first["prevResult"]["ips"]] == [f"{ip}/24"], first["prevResult"]
    assert second["prevResult"] == first["prevResult"]  # the test plugin passes it on

    # A restart: CHECK of every plugin with the cached result.
    rc, _ = env.d.stop()
    assert rc == 0
    env.start_daemon()
    checks = [c for c in read_calls(log) if c["command"] == "CHECK"]
    assert [c["conf"]["n"] for c in checks] == [1, 2], checks
    assert all(c["conf"]["prevResult"] == first["prevResult"] for c in checks)
    assert checks[0]["env"]["CNI_ARGS"] == calls[0]["env"]["CNI_ARGS"]

    # The directory changes: DEL still gets the list ADD used.
    env.d.write_cni_conflist(LOOPBACK_CONFLIST)
    assert wait_ready(env.d, True).status
    deadline = time.monotonic() + WAIT_S
    while cni_info(env.d)["network"]["name"] != "crid-it-lo" and time.monotonic() < deadline:
        time.sleep(0.05)
    env.stop_pod(pod_id)
    dels = [c for c in read_calls(log) if c["command"] == "DEL"]
    assert [c["conf"]["n"] for c in dels] == [2, 1], dels
    assert dels[1]["conf"]["runtimeConfig"] == first["runtimeConfig"]
    assert dels[1]["conf"]["prevResult"] == first["prevResult"]
    assert dels[1]["env"]["CNI_NETNS"] == calls[0]["env"]["CNI_NETNS"]
    assert net.wait_no_leaks([pod_id]) == {}
    env.remove_pod(pod_id)


@pytest.mark.parametrize("version", ["0.4.0", "0.3.1"])
def test_older_cni_versions(pod_env_factory, bridge_net, version):
    """Lists of CNI 0.4.0 and 0.3.1 work; CHECK is only for 0.4.0 and
    later, and a 0.3.x plugin gets no prevResult on DEL."""
    net = bridge_net
    log = net.data_dir + "-calls.log"
    env = pod_env_factory(network=net, conflist=net.conflist(
        version=version, portmap=False, after=[{"type": "crid-it-plugin", "logFile": log}]))
    install_test_plugin(env.d.cni_bin_dir)
    pod_id, _ = env.new_pod()
    ip, _ = status_ips(env, pod_id)
    assert ipaddress.ip_address(ip) in net.subnet, ip
    rc, _ = env.d.stop()
    assert rc == 0
    env.start_daemon()
    env.stop_pod(pod_id)
    commands = [c["command"] for c in read_calls(log)]
    assert commands == (["ADD", "CHECK", "DEL"] if version == "0.4.0" else ["ADD", "DEL"]), commands
    assert ("prevResult" in read_calls(log)[-1]["conf"]) == (version == "0.4.0")
    assert net.wait_no_leaks([pod_id]) == {}
    env.remove_pod(pod_id)


# ---------------------------------------------------------------------------
# Readiness


def test_network_ready_follows_the_directory(pod_env_factory):
    """NetworkReady is false while the directory has no valid configuration
    (with NetworkPluginNotReady and a message naming what is wrong), and a
    pod with its own network is refused; a configuration written later is
    picked up without a restart; the lexically first valid file wins;
    emptying the directory, or removing it, makes it false again."""
    env = pod_env_factory(conflist="")
    d = env.d
    api = env.api
    net = wait_ready(d, False)
    assert net.status is False and net.reason == "NetworkPluginNotReady", net
    assert d.cni_conf_dir in net.message, net
    code, msg = ph.rpc_code(env.run_pod, env.pod_config())
    assert code == grpc.StatusCode.FAILED_PRECONDITION and d.cni_conf_dir in msg, (code, msg)
    assert env.list_pods() == []
    host_pod, _ = env.new_pod(network=api.NODE)  # needs no network

    bad = d.write_cni_conflist("{ not json", name="10-bad.conflist")
    deadline = time.monotonic() + WAIT_S
    while bad not in wait_ready(d, False).message and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bad in wait_ready(d, False).message, wait_ready(d, False)

    good = d.write_cni_conflist(LOOPBACK_CONFLIST, name="20-good.conflist")
    assert wait_ready(d, True).status is True
    assert cni_info(d)["file"] == good
    env.new_pod()
    single = d.write_cni_conflist(json.dumps({"cniVersion": "0.4.0", "name": "single", "type": "loopback"}),
                                  name="15-single.conf")
    deadline = time.monotonic() + WAIT_S
    while cni_info(d).get("file") != single and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cni_info(d)["network"]["plugins"] == [{"cniVersion": "0.4.0", "name": "single", "type": "loopback"}]

    for name in os.listdir(d.cni_conf_dir):
        os.unlink(os.path.join(d.cni_conf_dir, name))
    net = wait_ready(d, False)
    assert net.status is False and net.reason == "NetworkPluginNotReady", net

    # The directory itself removed and made again.
    os.rmdir(d.cni_conf_dir)
    assert d.cni_conf_dir in wait_ready(d, False).message
    os.makedirs(d.cni_conf_dir)
    d.write_cni_conflist(LOOPBACK_CONFLIST)
    assert wait_ready(d, True).status is True
    env.stop_pod(host_pod)
