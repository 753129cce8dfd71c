"""CNI networks of the tests' own, and what they leave behind.

BridgeNet is a bridge network no other test and no other test process
shares: a unique bridge name, a /24 (and, asked for, an IPv6 /64) reserved
under /run/crid-it-cni so that parallel runs never pick the same, and
host-local's lease store under the test's temporary directory. No default
route and no masquerading: pods reach each other and the host over the
bridge, and nothing else.

    net = BridgeNet(tmp)                 # tmp: a directory of the test's
    text = net.conflist()                # loopback, bridge, portmap
    net.leases()                         # addresses host-local holds
    net.veths()                          # interfaces on the bridge
    net.rules(ids)                       # iptables rules naming ids or net
    net.leaks(ids)                       # all three, {kind: [...]}
    net.cleanup()                        # bridge gone, reservation released

TEST_PLUGIN is a CNI plugin for the tests (Python): it records every call
(command, CNI_* variables, its configuration) as a line of JSON into the
file its configuration names, answers ADD with its prevResult, and does
what its configuration asks on a command: "sleepOn", "failOn", or
"gateOn" (the first such call touches <gate>.entered, then waits for
<gate>.open; later ones pass).
"""

import ipaddress
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import time

RESERVATIONS = "/run/crid-it-cni"
# Subnets the tests take their /24s from: far from what hosts usually use.
V4_POOL = ipaddress.ip_network("10.200.0.0/13")


def _run(argv):
    return subprocess.run(argv, capture_output=True, text=True)


def _start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[19]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _routes():
    """Every IPv4 destination the host routes somewhere."""
    out = []
    for line in _run(["ip", "-4", "route", "show", "table", "all"]).stdout.splitlines():
        dst = line.split()[0] if line.split() else ""
        if dst in ("default", "broadcast", "local", "unreachable", "multicast"):
            dst = line.split()[1] if len(line.split()) > 1 else ""
        try:
            out.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            pass
    return out


def _reserve(subnet):
    """Takes subnet for this process, unless another live process holds it."""
    os.makedirs(RESERVATIONS, exist_ok=True)
    path = os.path.join(RESERVATIONS, str(subnet).replace("/", "_"))
    me = f"{os.getpid()} {_start_time(os.getpid())}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    pid, _, start = f.read().partition(" ")
                if pid.isdigit() and _start_time(int(pid)) == start:
                    return None  # held by a live test process
                os.unlink(path)  # stale: its process is gone
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return path
    return None


class BridgeNet:
    def __init__(self, tmp, v6=False, name=None):
        suffix = os.urandom(4).hex()
        self.name = name or f"crid-it-{suffix}"
        self.bridge = f"crt{suffix}"  # 11 characters: within IFNAMSIZ
        self.data_dir = os.path.join(tmp, "cni-ipam")
        self._reservation = None
        taken = _routes()
        for _ in range(200):
            net = ipaddress.ip_network((int(V4_POOL.network_address) + random.randrange(2048) * 256, 24))
            if any(net.overlaps(r) for r in taken if r.prefixlen > 0):
                continue
            self._reservation = _reserve(net)
            if self._reservation:
                self.subnet = net
                break
        else:
            raise RuntimeError("no free /24 in %s for a test bridge" % V4_POOL)
        self.gateway = self.subnet.network_address + 1
        self.subnet6 = None
        if v6:
            self.subnet6 = ipaddress.ip_network(f"fd00:c1d:{suffix[:4]}:{suffix[4:]}::/64")
            self.gateway6 = self.subnet6.network_address + 1

    # -- configuration -----------------------------------------------------

    def ranges(self):
        r = [[{"subnet": str(self.subnet), "gateway": str(self.gateway)}]]
        if self.subnet6:
            r.append([{"subnet": str(self.subnet6), "gateway": str(self.gateway6)}])
        return r

    def bridge_plugin(self, **extra):
        p = {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": self.ranges(), "dataDir": self.data_dir}}
        p.update(extra)
        return p

    def conflist(self, before=(), after=None, version="1.0.0", portmap=True, **top):
        """loopback, bridge, portmap (unless portmap=False), with `before`
        plugins ahead of the bridge and `after` ones at the end."""
        plugins = [{"type": "loopback"}] + list(before) + [self.bridge_plugin()]
        if portmap:
            plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
        plugins += list(after or ())
        doc = {"cniVersion": version, "name": self.name, "plugins": plugins}
        doc.update(top)
        return json.dumps(doc, indent=1)

    # -- what is left ------------------------------------------------------

    def leases(self):
        """Addresses host-local holds: its files named after an address."""
        d = os.path.join(self.data_dir, self.name)
        if not os.path.isdir(d):
            return []
        out = []
        for n in os.listdir(d):
            try:
                ipaddress.ip_address(n)
                out.append(n)
            except ValueError:
                pass  # lock, last_reserved_ip.N
        return sorted(out)

    def veths(self):
        out = _run(["ip", "-o", "link", "show", "master", self.bridge])
        return [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines() if ":" in line]

    def rules(self, ids=()):
        """iptables and ip6tables rules that name this network or one of ids."""
        needles = [self.name] + [i for i in ids if i]
        found = []
        for tool in ("iptables-save", "ip6tables-save"):
            if not shutil.which(tool):
                continue
            for line in _run([tool]).stdout.splitlines():
                if any(n in line for n in needles):
                    found.append(f"{tool}: {line}")
        return found

    def leaks(self, ids=()):
        found = {}
        if self.leases():
            found["addresses leased by host-local"] = self.leases()
        if self.veths():
            found[f"interfaces on bridge {self.bridge}"] = self.veths()
        rules = self.rules(ids)
        if rules:
            found["iptables rules"] = rules
        return found

    def wait_no_leaks(self, ids=(), timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            found = self.leaks(ids)
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def cleanup(self, ids=()):
        """Removes the bridge (the bridge plugin never does), the rules
        naming this network and the reservation."""
        _run(["ip", "link", "del", self.bridge])
        for tool in ("iptables", "ip6tables"):
            if not shutil.which(tool):
                continue
            save = _run([tool + "-save", "-t", "nat"]).stdout
            for line in save.splitlines():
                if line.startswith("-A ") and any(n in line for n in [self.name] + list(ids)):
                    _run([tool, "-t", "nat"] + shlex.split(re.sub(r"^-A ", "-D ", line)))
        if self._reservation:
            try:
                os.unlink(self._reservation)
            except FileNotFoundError:
                pass
            self._reservation = None


TEST_PLUGIN = r'''#!/usr/bin/python3
# A CNI plugin of crid's tests: records each call, then does what its
# configuration asks.
import json, os, sys, time

conf = json.load(sys.stdin)
cmd = os.environ.get("CNI_COMMAND", "")
env = {k: v for k, v in os.environ.items() if k.startswith("CNI_")}
if conf.get("logFile"):
    with open(conf["logFile"], "a") as f:
        f.write(json.dumps({"command": cmd, "env": env, "conf": conf, "pid": os.getpid()}) + "\n")
if cmd == "VERSION":
    print(json.dumps({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]}))
    sys.exit(0)
gate = conf.get("gate")
if gate and cmd in conf.get("gateOn", []) and not os.path.exists(gate + ".entered"):
    # The first call only: later ones (after a restart) pass.
    open(gate + ".entered", "w").close()
    while not os.path.exists(gate + ".open"):
        time.sleep(0.05)
if cmd in conf.get("sleepOn", []):
    time.sleep(3600)
if cmd in conf.get("failOn", []):
    print(json.dumps({"cniVersion": conf.get("cniVersion", "1.0.0"), "code": 11,
                      "msg": "the test plugin was told to fail", "details": "failOn " + cmd}))
    sys.stderr.write("test plugin: failing " + cmd + "\n")
    sys.exit(1)
if cmd == "ADD":
    prev = conf.get("prevResult") or {"cniVersion": conf.get("cniVersion", "1.0.0"),
                                      "interfaces": [], "ips": []}
    print(json.dumps(prev))
sys.exit(0)
'''


def install_test_plugin(bin_dir, name="crid-it-plugin"):
    path = os.path.join(bin_dir, name)
    with open(path, "w") as f:
        f.write(TEST_PLUGIN)
    os.chmod(path, 0o755)
    return path


def read_calls(log_file):
    """The test plugin's record: [{command, env, conf, pid}]."""
    try:
        with open(log_file) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
