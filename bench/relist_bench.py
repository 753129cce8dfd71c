#!/usr/bin/python3
"""The kubelet's relist at scale: crid versus containerd's CRI plugin.

On each daemon in turn, the Go client build/criclient/criclient (`make
criclient`) runs `criclient relist`: it creates N pods (default 100) with one
busybox `sleep 3600` container each, then times R rounds (default 1000) of
the kubelet's relist -- ListPodSandbox, ListPodSandbox(state READY),
ListContainers, ListContainers(state RUNNING) -- checking that every answer
lists exactly those pods and containers, and reads the daemon's CPU time
(utime+stime) over the rounds. Then it times S calls (default 100) of the
kubelet's stats poll, ListContainerStats over every container, checking each
has CPU and memory. Then it removes every pod.

Setup as in pod_bench.py: a local docker-registry with busybox and a tiny
pause image (containerd's sandbox_image), runc in both daemons, host-network
pods. This prints figures; it asserts nothing about speed (a wrong answer
from a daemon stops the benchmark). See bench/README.md.

Usage: /usr/bin/python3 bench/relist_bench.py [--pods N] [--rounds N] [--json FILE]
"""

import argparse
import datetime
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import pod_bench  # noqa: E402
from common import log  # noqa: E402

CRICLIENT = os.path.join(common.REPO, "build", "criclient", "criclient")
CALLS = ("ListPodSandbox", "ListPodSandbox READY", "ListContainers", "ListContainers RUNNING")


class BenchFailed(RuntimeError):
    pass


def run_relist(client, daemon, image, args, tmp, cgroup_parents):
    """criclient relist against daemon; returns its JSON results."""
    parent = f"/bench-{secrets.token_hex(5)}"
    cgroup_parents.append(parent)
    out_json = os.path.join(tmp, f"relist-{daemon.name}.json")
    log_dir = os.path.join(tmp, f"pod-logs-{daemon.name}")
    argv = [client, "relist", "--socket", daemon.socket_path, "--api", "v1",
            "--image", image, "--log-dir", log_dir, "--cgroup-parent", parent,
            "--host-network", "--pods", str(args.pods), "--rounds", str(args.rounds),
            "--warmup", str(args.warmup), "--stats-rounds", str(args.stats_rounds),
            "--pid", str(daemon.pid), "--json", out_json]
    log(f"{daemon.name}: {' '.join(argv[1:])}")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=common._child_setup)
    try:
        out, _ = proc.communicate()
    except BaseException:
        proc.send_signal(signal.SIGTERM)  # the client removes its pods, then exits
        proc.communicate(timeout=300)
        raise
    for line in out.splitlines():
        log(f"  {line}")
    res = None
    if os.path.exists(out_json):
        with open(out_json) as f:
            res = json.load(f)
    if proc.returncode != 0 or res is None or not res["ok"]:
        raise BenchFailed(f"{daemon.name}: criclient relist failed (exit code {proc.returncode}): "
                          f"{res and res.get('error')}\n--- {daemon.name} log (tail) ---\n"
                          f"{daemon.proc.log_tail()}")
    return res["relist"]


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=100, help="pods, one running container each (100)")
    ap.add_argument("--rounds", type=int, default=1000, help="timed relist rounds (1000)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed rounds first (10)")
    ap.add_argument("--stats-rounds", type=int, default=100,
                    help="timed ListContainerStats calls over every container, after the relist (100)")
    ap.add_argument("--crid", default=common.CRID_BIN)
    ap.add_argument("--containerd", default=common.CONTAINERD_BIN)
    ap.add_argument("--no-containerd", action="store_true", help="crid's figures only")
    ap.add_argument("--criclient", default=CRICLIENT)
    ap.add_argument("--runc", default="/usr/bin/runc")
    ap.add_argument("--tmpdir", default=None, help="parent of the temp dir (must allow overlayfs)")
    ap.add_argument("--json", default=None, help="also write raw results to this file")
    args = ap.parse_args()
    if args.pods < 1 or args.rounds < 1 or args.warmup < 0:
        ap.error("--pods and --rounds must be at least 1")
    if os.geteuid() != 0:
        ap.error("run as root")
    for path, how in ((args.crid, "make all"), (args.criclient, "make criclient")):
        if not os.access(path, os.X_OK):
            ap.error(f"{path} missing: run `{how}`")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)

    run_containerd_existed = os.path.exists(pod_bench.RUN_CONTAINERD)
    tmp = tempfile.mkdtemp(prefix="crid-relistbench-", dir=args.tmpdir)
    registry = None
    live = []
    cgroup_parents = []
    hugetlb_held = False
    try:
        # On hybrid-cgroup hosts the integration tests mount and unmount the
        # hugetlb v1 hierarchy; one that vanishes while runc creates a
        # container fails the create. Held, as the tests hold it, for the
        # whole run (reference counted; unmounted at the end only if it was
        # mounted for this run and nobody else uses it).
        if os.path.ismount("/sys/fs/cgroup/unified"):
            import pod_helpers
            pod_helpers.ensure_hugetlb()
            hugetlb_held = True
        proto_dir = os.path.join(tmp, "proto")
        os.makedirs(proto_dir)
        api = common.load_api(proto_dir)
        import image_builder as ib
        import registry_fixtures as rf

        busybox = ib.standard_images()["busybox"]
        pause = ib.Image([ib.busybox_layers("gzip")[0]], cmd=pod_bench.PAUSE_CMD,
                         env=[ib.DEFAULT_PATH_ENV], name="pause")
        registry = rf.Registry(os.path.join(tmp, "registry"), "bench")
        registry.start(os.path.join(tmp, "registry", "storage"))
        rf.push(registry, pod_bench.BUSYBOX_REPO, pod_bench.TAG, busybox)
        rf.push(registry, pod_bench.PAUSE_REPO, pod_bench.TAG, pause)
        busybox_ref = f"{registry.host}/{pod_bench.BUSYBOX_REPO}:{pod_bench.TAG}"
        pause_ref = f"{registry.host}/{pod_bench.PAUSE_REPO}:{pod_bench.TAG}"
        log(f"registry on {registry.host} (pid {registry.pid})")

        info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
                "loadavg_at_start": " ".join((pod_bench._read("/proc/loadavg") or "").split()[:3]),
                "pods": args.pods, "rounds": args.rounds}
        results = {}
        ctrd_missing = "--no-containerd" if args.no_containerd else None

        # One daemon at a time: the other is not even running.
        crid = common.CridDaemon(os.path.join(tmp, "crid"), api, registry.host,
                                 binary=args.crid,
                                 extra_args=["--runtime", f"runc={args.runc}",
                                             "--default-runtime", "runc"])
        live.append(crid)
        crid.start()
        v = crid.client.version()
        info["crid"] = f"{v.runtime_name} {v.runtime_version} (CRI {v.runtime_api_version})"
        results["crid"] = run_relist(args.criclient, crid, busybox_ref, args, tmp, cgroup_parents)
        crid.stop()

        if ctrd_missing is None:
            ctrd = pod_bench.PodContainerd(os.path.join(tmp, "containerd"), api, registry.host,
                                           pause_ref, binary=args.containerd)
            try:
                live.append(ctrd)
                ctrd.start()
                ctrd.client.pull(pause_ref)
            except common.DaemonStartError as e:
                ctrd_missing = f"containerd did not start: {str(e).splitlines()[0]}"
            if ctrd_missing is None:
                v = ctrd.client.version()
                info["containerd"] = (f"{v.runtime_name} {v.runtime_version} "
                                      f"(CRI {v.runtime_api_version})")
                results["containerd"] = run_relist(args.criclient, ctrd, busybox_ref, args, tmp,
                                                   cgroup_parents)
                ctrd.stop()

        # ---- report
        names = list(results)
        T = common.Table(["per relist round", "runtime", "p50", "p99", "mean", "unit"])
        for key, label in [("round", "round (4 calls)")] + [(c, "  " + c) for c in CALLS]:
            lab = label
            for n in names:
                r = results[n]["round"] if key == "round" else results[n]["calls"][key]
                T.add(lab, n, f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['mean_ms']:.3f}",
                      "ms")
                lab = ""
        S = common.Table(["ListContainerStats, every container", "runtime", "p50", "p99", "mean", "unit"])
        lab = f"{args.pods} containers"
        for n in names:
            r = results[n].get("list_container_stats") or {}
            if r:
                S.add(lab, n, f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['mean_ms']:.3f}", "ms")
                lab = ""
        C = common.Table(["CPU time per 1000 rounds", "runtime", "value", "unit"])
        lab = "daemon (utime+stime)"
        for n in names:
            C.add(lab, n, f"{results[n]['runtime_cpu_s_per_1000_rounds']:.3f}", "s")
            lab = ""
        lab = "the Go client"
        for n in names:
            C.add(lab, n, f"{results[n]['client_cpu_s_per_1000_rounds']:.3f}", "s")
            lab = ""
        R = common.Table(["ratio containerd / crid", "value"])
        if "containerd" in results:
            c, d = results["crid"], results["containerd"]
            R.add("round p50", f"{d['round']['p50_ms'] / c['round']['p50_ms']:.2f}")
            R.add("round p99", f"{d['round']['p99_ms'] / c['round']['p99_ms']:.2f}")
            if c.get("list_container_stats") and d.get("list_container_stats"):
                ratio = d["list_container_stats"]["p50_ms"] / c["list_container_stats"]["p50_ms"]
                R.add("ListContainerStats p50", f"{ratio:.2f}")
            R.add("daemon CPU per 1000 rounds",
                  f"{d['runtime_cpu_s_per_1000_rounds'] / c['runtime_cpu_s_per_1000_rounds']:.2f}")

        print()
        print(f"crid relist benchmark  {info['date']}  {info['host']}  {info['cpus']} CPUs  "
              f"kernel {info['kernel']}  load average at start {info['loadavg_at_start']}")
        for n in ("crid", "containerd"):
            if n in info:
                print(f"{n}: {info[n]}")
        print(f"{args.pods} host-network pods with one busybox `sleep 3600` container each (runc); "
              f"{args.rounds} timed rounds after {args.warmup} untimed; Go client, CRI v1")
        if ctrd_missing:
            print(f"NOTE: no containerd figures: {ctrd_missing}")
        print()
        print(T.render())
        print()
        if S.rows:
            print(S.render())
            print()
        print(C.render())
        if R.rows:
            print()
            print(R.render())
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"info": info, "results": results, "containerd_missing": ctrd_missing},
                          f, indent=2)
        return 0
    except (BenchFailed, common.DaemonStartError) as e:
        print(f"\nBENCHMARK FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for d in live:
            try:
                d.stop()
            except Exception as e:
                log(f"stopping {d.name}: {e}")
        for d in live:
            for pid, argv, _ in pod_bench.processes():
                if argv and os.path.basename(argv[0]) in ("crid-shim", "containerd-shim-runc-v2") \
                        and d.root in " ".join(argv):
                    log(f"killing leftover {argv[0]} pid {pid}")
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        for parent in cgroup_parents:
            pod_bench.remove_cgroup(parent)
        if registry is not None:
            try:
                registry.stop()
            except Exception as e:
                log(f"stopping the registry: {e}")
        common.remove_tree(tmp)
        if hugetlb_held:
            pod_helpers.release_hugetlb()
        if not run_containerd_existed and os.path.isdir(pod_bench.RUN_CONTAINERD):
            for dirpath, _, _ in sorted(os.walk(pod_bench.RUN_CONTAINERD),
                                        key=lambda t: -len(t[0])):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    log(f"leaving {dirpath}: {e}")


if __name__ == "__main__":
    sys.exit(main())
