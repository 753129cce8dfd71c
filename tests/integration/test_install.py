"""`make install`: the daemon, a systemd unit, a commented default config and,
into an empty CNI configuration directory, a default pod network land in the
usual places, and what was installed runs."""

import json
import os
import struct
import subprocess

import pytest

from conftest import REPO, Daemon, load_api


@pytest.fixture
def destdir(tmp_path):
    return str(tmp_path / "root")


def make_install(destdir):
    variant = "asan" if "/build/asan/" in os.environ.get("CRID_BIN", "") else "release"
    res = subprocess.run(["make", "-C", REPO, "install", f"VARIANT={variant}", f"DESTDIR={destdir}",
                          "PREFIX=/usr/local"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_install_layout_and_installed_daemon_serves(destdir, crid_bin):
    make_install(destdir)
    binary = os.path.join(destdir, "usr/local/bin/crid")
    unit = os.path.join(destdir, "lib/systemd/system/crid.service")
    config = os.path.join(destdir, "etc/crid/crid.yaml")
    assert os.access(binary, os.X_OK)
    assert os.access(os.path.join(destdir, "usr/local/bin/crid-shim"), os.X_OK)
    # Static: it is the only file of a sandbox's root file system.
    init = os.path.join(destdir, "usr/local/bin/crid-sandbox-init")
    assert os.access(init, os.X_OK)
    with open(init, "rb") as f:
        elf = f.read()
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    types = [struct.unpack_from("<I", elf, phoff + i * phentsize)[0] for i in range(phnum)]
    assert 3 not in types, "crid-sandbox-init has a program interpreter (PT_INTERP)"
    assert os.path.isdir(os.path.join(destdir, "etc/crid/crid.d"))
    with open(os.path.join(destdir, "etc/apparmor.d/crid-default")) as f:
        assert "profile crid-default " in f.read()
    with open(unit) as f:
        text = f.read()
    assert "ExecStart=/usr/local/bin/crid\n" in text
    assert "KillMode=process" in text  # containers' monitors outlive a restart
    with open(config) as f:
        lines = f.read().splitlines()
    assert any(line.startswith("#") for line in lines)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "crid 0.1.0"
    # The default pod network: loopback, bridge crid0 on 10.85.0.0/16 with
    # host-local, portmap; no masquerading.
    net_dir = os.path.join(destdir, "etc/cni/net.d")
    assert os.listdir(net_dir) == ["10-crid-bridge.conflist"], os.listdir(net_dir)
    with open(os.path.join(net_dir, "10-crid-bridge.conflist")) as f:
        net = json.load(f)
    assert (net["cniVersion"], net["name"]) == ("1.0.0", "crid"), net
    assert [p["type"] for p in net["plugins"]] == ["loopback", "bridge", "portmap"], net
    bridge = net["plugins"][1]
    assert bridge["bridge"] == "crid0" and bridge["ipMasq"] is False and bridge["isGateway"] is True, bridge
    assert bridge["ipam"]["type"] == "host-local", bridge
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.85.0.0/16"}]], bridge
    assert net["plugins"][2]["capabilities"] == {"portMappings": True}, net
    # The installed daemon with the installed config serves (paths moved
    # into a temporary directory by flags), and takes the installed network
    # (read only: no pod is made on it).
    d = Daemon(binary, cni_conflist=None)
    with open(config) as src, open(d.config_path, "w") as dst:
        dst.write(src.read())
    d.extra_args += ["--cni-conf-dir", net_dir]
    try:
        d.start()
        assert d.rt().Version().runtime_name == "crid"
        api = load_api()
        resp = d.rt().Status(api.StatusRequest(verbose=True))
        ready = {c.type: c.status for c in resp.status.conditions}
        assert ready == {"RuntimeReady": True, "NetworkReady": True}, resp.status
        cni = json.loads(dict(resp.info)["cni"])
        assert cni["file"] == os.path.join(net_dir, "10-crid-bridge.conflist"), cni
        assert cni["network"]["name"] == "crid", cni
        rc, _ = d.stop()
        assert rc == 0
    finally:
        d.cleanup()


def test_install_keeps_an_existing_config(destdir):
    make_install(destdir)
    config = os.path.join(destdir, "etc/crid/crid.yaml")
    with open(config, "w") as f:
        f.write("log_level: debug\n")
    res = make_install(destdir)
    with open(config) as f:
        assert f.read() == "log_level: debug\n"
    assert "keeping existing" in res.stdout


def test_install_leaves_a_cluster_network_alone(destdir):
    """A CNI directory that holds a network already (a cluster's own) gets
    no default network beside it."""
    net_dir = os.path.join(destdir, "etc/cni/net.d")
    os.makedirs(net_dir)
    with open(os.path.join(net_dir, "10-flannel.conflist"), "w") as f:
        f.write('{"cniVersion": "0.3.1", "name": "cbr0", "plugins": [{"type": "flannel"}]}')
    res = make_install(destdir)
    assert os.listdir(net_dir) == ["10-flannel.conflist"], os.listdir(net_dir)
    assert "already holds a network configuration" in res.stdout, res.stdout
