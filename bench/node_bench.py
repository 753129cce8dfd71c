#!/usr/bin/python3
"""Node benchmark: crid versus containerd's CRI plugin, and the floor.

One daemon after the other (crid, then containerd), each with crun, its own
temporary root, its own CNI config dir holding the same conflist (loopback,
bridge + host-local, portmap; a bridge and /24 of its own) and the same
local registry, runs the node's workloads through the Go client
(build/criclient/criclient bench ..., which times every RPC itself):

  1. pod start with CNI: RunPodSandbox + CreateContainer + StartContainer of
     a busybox `sleep` pod, --pods times in sequence (p50, p95, each RPC)
  2. pod teardown: StopPodSandbox + RemovePodSandbox of those pods
  3. burst: --pods pods started --concurrency at a time: wall time
  4. ExecSync of `true`: --exec-rounds calls
  5. the kubelet's relist with --relist-pods pods running: p50, p99, daemon
     CPU per 1,000 rounds; and Version, ContainerStatus, ListContainers,
     ListPodSandbox alone (time inside the daemon ~ p50 minus Version's)
  6. memory (PSS, /proc/PID/smaps_rollup): the daemon idle, and with the
     relist's pods: per-pod overhead = (shims + pod infra processes + the
     daemon's growth) / pods
  7. image pull: the ~100 MB test image and busybox, cold then warm
  8. the floor: the pod start of 1 done with the bare pieces (floor.py)

It prints each figure for both daemons, crid / containerd, the floor and
the issue's target, and writes everything to --json. It asserts nothing
about speed. See bench/README.md.

  /usr/bin/python3 bench/node_bench.py [--pods N] [--json FILE] [--markdown]
  /usr/bin/python3 bench/node_bench.py --smoke --skip-containerd   # < 1 min
  /usr/bin/python3 bench/node_bench.py --from-json FILE --markdown # table again
"""

import argparse
import datetime
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from node_report import derive, report  # noqa: E402
from common import log  # noqa: E402

CRICLIENT = os.path.join(common.REPO, "build", "criclient", "criclient")
DEFAULT_JSON = os.path.join(common.REPO, "build", "bench", "node.json")
from floor import CNI_BIN_DIR  # noqa: E402
PAUSE_CMD = ["/bin/sleep", "2147483647"]
SLEEP_CMD = ["sleep", "3600"]
RUN_CONTAINERD = "/run/containerd"
CNI_CACHE = "/var/lib/cni/results"
SHIMS = ("crid-shim", "containerd-shim-runc-v2")
READY_LINE = "criclient: pods ready"


class BenchFailed(RuntimeError):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    v = sorted(values)
    if not v:
        return None
    i = max(0, min(len(v) - 1, int(p * len(v) + 0.999999) - 1))
    return v[i]


def summary(ms):
    return {"p50": pct(ms, 0.50), "p95": pct(ms, 0.95), "mean": statistics.fmean(ms) if ms else None,
            "max": max(ms) if ms else None, "n": len(ms)}


# ---------------------------------------------------------------------------
# One daemon's run


class DaemonRun:
    """One daemon, its CNI network, and the workloads run against it."""

    def __init__(self, name, args, tmp, api, registry, refs, cleanup):
        import cni_helpers

        self.name, self.args, self.api, self.refs = name, args, api, refs
        self.root = os.path.join(tmp, name)
        os.makedirs(self.root)
        self.net = cni_helpers.BridgeNet(self.root, name=f"bench-{name}-{secrets.token_hex(3)}")
        cleanup.nets.append(self.net)
        self.cgroup_parent = f"/bench-{secrets.token_hex(5)}"
        cleanup.cgroups.append(self.cgroup_parent)
        conflist = self.net.conflist()
        if name == "crid":
            conf_dir = os.path.join(self.root, "cni-conf")
            os.makedirs(conf_dir)
            with open(os.path.join(conf_dir, "10-bench.conflist"), "w") as f:
                f.write(conflist)
            # Its Prometheus endpoint: the time of each call inside crid.
            self.metrics = f"127.0.0.1:{free_port()}"
            self.d = common.CridDaemon(
                os.path.join(self.root, "daemon"), api, registry.host, binary=args.crid,
                extra_args=["--cni-conf-dir", conf_dir, "--cni-bin-dirs", CNI_BIN_DIR,
                            "--runtime", f"crun={args.crun}", "--default-runtime", "crun",
                            "--metrics-address", self.metrics])
        else:
            self.d = common.ContainerdDaemon(
                os.path.join(self.root, "daemon"), api, registry.host, binary=args.containerd,
                sandbox_image=refs["pause"], oci_runtime=args.crun, cni_bin_dir=CNI_BIN_DIR,
                cni_conflist=conflist)
        cleanup.daemons.append(self.d)
        self.res = {}

    def criclient(self, mode, extra, on_ready=None):
        """criclient bench MODE against the daemon; answers its JSON report."""
        out = os.path.join(self.root, f"{mode}.json")
        argv = [self.args.criclient, "bench", mode, "--socket", self.d.socket_path, "--json", out] + extra
        log(f"{self.name}: criclient {' '.join(argv[2:])}")
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, preexec_fn=common._child_setup)
        lines = []
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                if line == READY_LINE and on_ready is not None:
                    try:
                        on_ready()
                    finally:
                        proc.stdin.write("\n")
                        proc.stdin.flush()
                elif not line.startswith("criclient"):
                    log(f"  {line}")
            proc.wait()
        except BaseException:
            proc.send_signal(signal.SIGTERM)  # it removes its pods, then exits
            proc.wait(timeout=600)
            raise
        rep = None
        if os.path.exists(out):
            with open(out) as f:
                rep = json.load(f)
        if proc.returncode != 0 or rep is None or not rep.get("ok"):
            raise BenchFailed(f"{self.name}: criclient bench {mode} failed (exit code {proc.returncode}): "
                              f"{rep and rep.get('error')}\n" + "\n".join(lines[-20:]) +
                              f"\n--- {self.name} log (tail) ---\n{self.d.proc.log_tail()}")
        return rep

    def pod_args(self):
        return ["--image", self.refs["busybox"], "--log-dir", os.path.join(self.root, "pod-logs"),
                "--cgroup-parent", self.cgroup_parent]

    def rpc_durations(self):
        """{method: (seconds summed, calls)} from crid's metrics; {} elsewhere."""
        if self.name != "crid":
            return {}
        import urllib.request

        with urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=10) as f:
            text = f.read().decode()
        out = {}
        for line in text.splitlines():
            for kind in ("sum", "count"):
                pre = f"crid_grpc_request_duration_seconds_{kind}{{"
                if line.startswith(pre) and 'RuntimeService"' in line:
                    method = line.split('method="', 1)[1].split('"', 1)[0]
                    v = float(line.rsplit(" ", 1)[1])
                    s, n = out.get(method, (0.0, 0))
                    out[method] = (v, n) if kind == "sum" else (s, int(v))
        return out

    def pss(self):
        return common.pss_kb(self.d.pid)

    def helpers(self):
        """{pid: kind} of the per-pod processes: shims, and the pods' own
        processes other than the `sleep` containers (pause, pod init)."""
        out = {}
        for pid, argv, cgs in common.processes():
            if argv and os.path.basename(argv[0]) in SHIMS and self.d.root in " ".join(argv):
                out[pid] = "shim"
            elif common.in_cgroup(cgs, [self.cgroup_parent]) and argv != SLEEP_CMD:
                out[pid] = "pod infra"
        return out

    def run(self):
        a, r = self.args, self.res
        self.d.start()
        v = self.d.client.version()
        r["version"] = f"{v.runtime_name} {v.runtime_version} (CRI {v.runtime_api_version})"
        time.sleep(1.0)
        r["pss_idle_kb"] = self.pss()
        r["rss_idle_kb"] = common.proc_status_kb(self.d.pid, "VmRSS")

        # 7: pulls, first: the image store is empty.
        pulls = [self.refs["busybox"]] + ([self.refs["big"]] if "big" in self.refs else [])
        rep = self.criclient("pull", [x for p in pulls for x in ("--pull-image", p)])
        r["pulls"] = {k: rep["bench"]["pulls"][ref] for k, ref in self.refs.items() if ref in pulls}
        if self.name == "containerd":
            self.d.client.pull(self.refs["pause"])  # untimed, as a node has it

        # 1 + 2
        rep = self.criclient("podstart", self.pod_args() + ["--pods", str(a.pods)])["bench"]
        r["podstart"] = {k: summary(rep[k]) for k in ("pod_start_ms", "run_pod_sandbox_ms",
                                                      "create_container_ms", "start_container_ms",
                                                      "teardown_ms")}
        r["podstart_raw"] = rep
        # 3
        rep = self.criclient("burst", self.pod_args() + ["--pods", str(a.pods),
                                                         "--concurrency", str(a.concurrency)])["bench"]
        r["burst"] = {"wall_s": rep["burst_wall_s"], "pods": rep["pods"], "concurrency": rep["concurrency"],
                      "pod_start_ms": summary(rep["burst_pod_start_ms"])}
        # 4
        rep = self.criclient("exec", self.pod_args() + ["--rounds", str(a.exec_rounds)])["bench"]
        r["exec"] = summary(rep["exec_sync_ms"])

        # 5 + 6
        r["pss_before_pods_kb"] = self.pss()
        mem = {}

        def read_memory():
            time.sleep(1.0)  # let the shims settle
            helpers = self.helpers()
            mem["daemon_pss_kb"] = self.pss()
            mem["shims"] = sum(1 for k in helpers.values() if k == "shim")
            mem["pod_infra"] = sum(1 for k in helpers.values() if k == "pod infra")
            mem["shims_pss_kb"] = sum(common.pss_kb(p) for p, k in helpers.items() if k == "shim")
            mem["pod_infra_pss_kb"] = sum(common.pss_kb(p) for p, k in helpers.items() if k == "pod infra")
            growth = mem["daemon_pss_kb"] - r["pss_before_pods_kb"]
            mem["daemon_growth_kb"] = growth
            mem["per_pod_kb"] = (mem["shims_pss_kb"] + mem["pod_infra_pss_kb"] + growth) / a.relist_pods
            log(f"{self.name}: memory with {a.relist_pods} pods: {mem}")

        before = {}

        def at_ready():
            read_memory()
            before.update(self.rpc_durations())

        rep = self.criclient("relist", self.pod_args() + [
            "--pods", str(a.relist_pods), "--rounds", str(a.relist_rounds), "--warmup", "10",
            "--stats-rounds", str(a.stats_rounds), "--call-rounds", str(a.call_rounds), "--pid", str(self.d.pid),
            "--hold"], on_ready=at_ready)
        r["relist"] = rep["relist"]
        after = self.rpc_durations()
        # Mean time inside the daemon per call, from its own histogram, over
        # the relist and single calls at --relist-pods pods (crid only).
        r["inside_mean_us"] = {}
        for m in ("ContainerStatus", "ListContainers", "ListPodSandbox", "Version"):
            if m in after:
                s0, n0 = before.get(m, (0.0, 0))
                s1, n1 = after[m]
                if n1 > n0:
                    r["inside_mean_us"][m] = (s1 - s0) / (n1 - n0) * 1e6
        r["memory"] = mem
        self.d.stop()


# ---------------------------------------------------------------------------
# The floor


def run_floor(args, tmp, layer_tars, refs, cleanup):
    import cni_helpers
    import floor

    root = os.path.join(tmp, "floor")
    os.makedirs(root)
    net = cni_helpers.BridgeNet(root, name=f"bench-floor-{secrets.token_hex(3)}")
    cleanup.nets.append(net)
    parent = f"/bench-{secrets.token_hex(5)}"
    cleanup.cgroups.append(parent)
    f = floor.Floor(os.path.join(root, "bare"), layer_tars, net.conflist(), crun=args.crun,
                    cgroup_parent=parent, cni_bin_dir=CNI_BIN_DIR)
    cleanup.floor = f
    res = {"pulls": {}}
    for key in ("busybox", "big"):
        if key in refs:
            cold = floor.pull(refs["_registry"], f"bench/{key}", "latest", os.path.join(root, f"pull-{key}"))
            common.remove_tree(os.path.join(root, f"pull-{key}"))
            res["pulls"][key] = {"cold": cold * 1000}
    p, _ = f.start_pod()  # warm-up, untimed
    f.teardown(p)
    pods, steps = [], {}
    for _ in range(args.pods):
        p, t = f.start_pod()
        pods.append(p)
        for k, v in t.items():
            steps.setdefault(k, []).append(v * 1000)
    f.exec(pods[0], ["true"])  # warm-up
    execs = [f.exec(pods[0], ["true"]) * 1000 for _ in range(args.exec_rounds)]
    res["exec"] = summary(execs)
    down = [f.teardown(p) * 1000 for p in pods]
    log(f"floor: {args.pods} pods started and torn down")
    return res | {k: summary(v) for k, v in steps.items()} | {"teardown": summary(down)}


# ---------------------------------------------------------------------------
# Clean-up of everything the run made


class Cleanup:
    def __init__(self):
        self.daemons, self.nets, self.cgroups = [], [], []
        self.floor = None
        self.registry = None

    def run(self, tmp):
        for d in self.daemons:
            try:
                if d.client is not None and d.proc is not None and d.proc.alive():
                    remove_all_pods(d)
                d.stop()
            except Exception as e:
                log(f"stopping {d.name}: {e}")
        common.kill_leftover_shims([d.root for d in self.daemons], SHIMS)
        if self.floor is not None:
            for p in self.floor.cleanup():
                log(p)
        for parent in self.cgroups:
            common.remove_cgroup(parent)
        for net in self.nets:
            if net.leases() or net.veths():
                log(f"CNI network {net.name} left: {net.leaks()}")
            net.cleanup()
            if os.path.isdir(CNI_CACHE):  # libcni's result cache, named <network>-<id>-<ifname>
                for n in os.listdir(CNI_CACHE):
                    if n.startswith(net.name + "-"):
                        os.unlink(os.path.join(CNI_CACHE, n))
        if self.registry is not None:
            try:
                self.registry.stop()
            except Exception as e:
                log(f"stopping the registry: {e}")
        common.remove_tree(tmp)


def remove_all_pods(d):
    a = d.api
    try:
        pods = d.client.call("RuntimeService", "ListPodSandbox", a.ListPodSandboxRequest(), 30).items
    except Exception as e:
        log(f"{d.name}: ListPodSandbox: {e}")
        return
    for p in pods:
        for m, req in (("StopPodSandbox", a.StopPodSandboxRequest(pod_sandbox_id=p.id)),
                       ("RemovePodSandbox", a.RemovePodSandboxRequest(pod_sandbox_id=p.id))):
            try:
                d.client.call("RuntimeService", m, req, 60)
            except Exception as e:
                log(f"{d.name}: {m}({p.id[:12]}): {e}")


# ---------------------------------------------------------------------------
# Main


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=50, help="pods of the start, teardown, burst and floor (50)")
    ap.add_argument("--concurrency", type=int, default=10, help="pods started at once in the burst (10)")
    ap.add_argument("--exec-rounds", type=int, default=200, help="ExecSync calls (200)")
    ap.add_argument("--relist-pods", type=int, default=100, help="pods running for the relist and memory (100)")
    ap.add_argument("--relist-rounds", type=int, default=1000, help="timed relist rounds (1000)")
    ap.add_argument("--call-rounds", type=int, default=1000,
                    help="timed calls each of Version, ContainerStatus, ListContainers, ListPodSandbox (1000)")
    ap.add_argument("--stats-rounds", type=int, default=100,
                    help="timed ListContainerStats calls over every container, after the relist (100)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="sets --exec-rounds, --relist-rounds and --call-rounds at once")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, no big image: shows the harness works (--pods 2 --rounds 2)")
    ap.add_argument("--skip-containerd", action="store_true", help="crid (and the floor) only")
    ap.add_argument("--skip-floor", action="store_true")
    ap.add_argument("--skip-big-pull", action="store_true", help="pull busybox only (no ~100 MB image)")
    ap.add_argument("--json", default=DEFAULT_JSON, help=f"write every figure to this file ({DEFAULT_JSON})")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown (the README's)")
    ap.add_argument("--from-json", default=None, help="print the report of an earlier --json file; run nothing")
    ap.add_argument("--crid", default=common.CRID_BIN)
    ap.add_argument("--containerd", default=common.CONTAINERD_BIN)
    ap.add_argument("--crun", default="/usr/bin/crun")
    ap.add_argument("--criclient", default=CRICLIENT)
    ap.add_argument("--tmpdir", default=None, help="parent of the temp dir (must allow overlayfs)")
    args = ap.parse_args()
    if args.smoke:
        args.pods, args.concurrency, args.relist_pods = 2, 2, 2
        args.rounds = 2 if args.rounds is None else args.rounds
        args.skip_big_pull = True
    if args.rounds is not None:
        args.exec_rounds = args.relist_rounds = args.call_rounds = args.stats_rounds = args.rounds
    if min(args.pods, args.concurrency, args.exec_rounds, args.relist_pods, args.relist_rounds,
           args.call_rounds) < 1:
        ap.error("sizes must be at least 1")
    if args.from_json:
        return args
    if os.geteuid() != 0:
        ap.error("run as root")
    for path, how in ((args.crid, "make VARIANT=release all"), (args.criclient, "make criclient"),
                      (args.crun, "sh scripts/install-deps.sh run")):
        if not os.access(path, os.X_OK):
            ap.error(f"{path} missing: run `{how}`")
    return args


def main():
    args = parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            doc = json.load(f)
        derive(doc)
        report(doc, args.markdown)
        return 0

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    run_containerd_existed = os.path.exists(RUN_CONTAINERD)
    tmp = tempfile.mkdtemp(prefix="crid-nodebench-", dir=args.tmpdir)
    cleanup = Cleanup()
    hugetlb_held = False
    t_start = time.monotonic()
    try:
        # crun needs the hugetlb v1 hierarchy on hybrid-cgroup hosts; the
        # tests mount it and unmount it when the last user leaves: held
        # (reference counted) for the whole run.
        import pod_helpers
        if os.path.ismount("/sys/fs/cgroup/unified"):
            pod_helpers.ensure_hugetlb()
            hugetlb_held = True
        proto_dir = os.path.join(tmp, "proto")
        os.makedirs(proto_dir)
        api = common.load_api(proto_dir)
        import image_builder as ib
        import registry_fixtures as rf

        busybox = ib.standard_images()["busybox"]
        pause = ib.Image([ib.busybox_layers("gzip")[0]], cmd=PAUSE_CMD, env=[ib.DEFAULT_PATH_ENV],
                         name="pause")
        registry = rf.Registry(os.path.join(tmp, "registry"), "bench")
        cleanup.registry = registry
        registry.start(os.path.join(tmp, "registry", "storage"))
        refs = {}
        images = [("busybox", busybox), ("pause", pause)]
        if not args.skip_big_pull:
            log("building the ~100 MB image (image_builder.big_image())")
            images.append(("big", ib.big_image()))
        for key, img in images:
            rf.push(registry, f"bench/{key}", "latest", img)
            refs[key] = f"{registry.host}/bench/{key}:latest"
        log(f"registry on {registry.host} (pid {registry.pid})")

        crun_v = subprocess.run([args.crun, "--version"], capture_output=True, text=True).stdout
        info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
                "loadavg_at_start": " ".join(common.read_text("/proc/loadavg").split()[:3]),
                "crun_version": (crun_v.split("\n")[0].split() or ["?"])[-1],
                "pods": args.pods, "concurrency": args.concurrency, "exec_rounds": args.exec_rounds,
                "relist_pods": args.relist_pods, "relist_rounds": args.relist_rounds,
                "call_rounds": args.call_rounds, "stats_rounds": args.stats_rounds}
        doc = {"info": info, "results": {}, "skipped": {}}
        names = ["crid"] + ([] if args.skip_containerd else ["containerd"])
        if args.skip_containerd:
            doc["skipped"]["containerd"] = "--skip-containerd"
        for name in names:
            run = DaemonRun(name, args, tmp, api, registry, refs, cleanup)
            try:
                run.run()
            except common.DaemonStartError as e:
                if name == "crid":
                    raise
                doc["skipped"][name] = f"did not start: {str(e).splitlines()[0]}"
                continue
            doc["results"][name] = run.res
        if args.skip_floor:
            doc["skipped"]["floor"] = "--skip-floor"
        else:
            doc["results"]["floor"] = run_floor(args, tmp, [l.tar_bytes() for l in busybox.layers],
                                                 refs | {"_registry": registry.host}, cleanup)
        info["loadavg_at_end"] = " ".join(common.read_text("/proc/loadavg").split()[:3])
        info["duration_s"] = time.monotonic() - t_start
        derive(doc)
        # What the run made and removed at the end: for checks that it did.
        doc["made"] = {"bridges": [n.bridge for n in cleanup.nets], "networks": [n.name for n in cleanup.nets],
                       "cgroup_parents": list(cleanup.cgroups), "tmp": tmp}
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            log(f"figures written to {args.json}")
            with open(args.json, "w") as f:
                json.dump(doc, f, indent=1)
        report(doc, args.markdown)
        return 0
    except (BenchFailed, common.DaemonStartError, RuntimeError) as e:
        print(f"\nBENCHMARK FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup.run(tmp)
        if hugetlb_held:
            pod_helpers.release_hugetlb()
        if not run_containerd_existed and os.path.isdir(RUN_CONTAINERD):
            for dirpath, _, _ in sorted(os.walk(RUN_CONTAINERD), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    log(f"leaving {dirpath}: {e}")


if __name__ == "__main__":
    sys.exit(main())
