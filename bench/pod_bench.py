#!/usr/bin/python3
"""Pod + container start benchmark: crid versus containerd's CRI plugin.

For N rounds (default 10), on each daemon (order alternating per round):
time RunPodSandbox -> CreateContainer (busybox `sleep 3600`) ->
StartContainer until ContainerStatus says RUNNING ("start"), then time
StopPodSandbox + RemovePodSandbox ("teardown"). Then, for each daemon in
turn, 10 such pods are run at once and memory is read: the daemon's VmRSS
plus the summed PSS (/proc/PID/smaps_rollup) of its per-pod helper
processes (crid: crid-shim; containerd: containerd-shim-runc-v2 and the
pause containers).

Both daemons use runc and host-network pods (no CNI is configured here).
containerd's sandbox image is a tiny "pause" image (busybox layer, Cmd
/bin/sleep 2147483647) built with image_builder and pushed to the local
registry, pulled once before the timed rounds, like the busybox image.

This prints figures; it asserts nothing about speed. See bench/README.md.

Usage: /usr/bin/python3 bench/pod_bench.py [--rounds N] [--pods N] [--json FILE]
"""

import argparse
import datetime
import json
import os
import platform
import secrets
import signal
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import log  # noqa: E402

BUSYBOX_REPO = "bench/busybox"
PAUSE_REPO = "bench/pause"
TAG = "latest"
PAUSE_CMD = ["/bin/sleep", "2147483647"]
CALL_TIMEOUT_S = 60.0
RUN_CONTAINERD = "/run/containerd"


class BenchFailed(RuntimeError):
    pass


# ---------------------------------------------------------------------------
# containerd with a sandbox image and runc options


class PodContainerd(common.ContainerdDaemon):
    """common.ContainerdDaemon plus sandbox_image and runc SystemdCgroup=false."""

    def __init__(self, root, api, registry_host, sandbox_image, binary=common.CONTAINERD_BIN):
        super().__init__(root, api, registry_host, binary=binary)
        self.sandbox_image = sandbox_image

    def start(self):
        saved = common.CONTAINERD_TOML
        runc_line = '        runtime_type = "io.containerd.runc.v2"\n'
        assert "{extra_cri}" in saved and runc_line in saved
        common.CONTAINERD_TOML = saved.replace(
            "{extra_cri}", f'    sandbox_image = "{self.sandbox_image}"\n'
            # Lowering oom_score_adj (containerd gives sandboxes -998) needs
            # CAP_SYS_RESOURCE, which a root in a container may lack: runc then
            # fails with "can't get final child's PID from pipe: EOF".
            '    restrict_oom_score_adj = true\n{extra_cri}').replace(
            runc_line, runc_line +
            '        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
            '          SystemdCgroup = false\n')
        try:
            return super().start()
        finally:
            common.CONTAINERD_TOML = saved


# ---------------------------------------------------------------------------
# Processes, memory, cgroups


def _read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def processes():
    """[(pid, argv, cgroup paths)] of live (non-zombie) processes."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        raw, stat = _read(f"/proc/{name}/cmdline", "rb"), _read(f"/proc/{name}/stat")
        if not raw or stat is None or stat.rpartition(")")[2].split()[0] == "Z":
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]]
        cgs = [l.split(":", 2)[2] for l in (_read(f"/proc/{name}/cgroup") or "").splitlines()
               if l.count(":") >= 2]
        out.append((int(name), argv, cgs))
    return out


def _in_cgroup(cgs, parents):
    return any(c == p or c.startswith(p + "/") for c in cgs for p in parents)


def helper_pids(daemon, cgroup_parents):
    """Per-pod helper processes of `daemon` (see module doc)."""
    out = []
    for pid, argv, cgs in processes():
        exe = os.path.basename(argv[0]) if argv else ""
        line = " ".join(argv)
        if daemon.name == "crid":
            if exe == "crid-shim" and daemon.root in line:
                out.append(pid)
        else:
            if exe == "containerd-shim-runc-v2" and daemon.root in line:
                out.append(pid)
            elif argv == PAUSE_CMD and _in_cgroup(cgs, cgroup_parents):
                out.append(pid)
    return out


def pss_kb(pid):
    for line in (_read(f"/proc/{pid}/smaps_rollup") or "").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def cgroup_mounts():
    out = set()
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] and right.split()[0] in ("cgroup", "cgroup2"):
            out.add(common._unescape_mountinfo(left.split()[4]))
    return sorted(out)


def remove_cgroup(parent):
    """Removes the cgroup directories of `parent` (one of ours, /bench-<hex>)
    in every hierarchy, bottom-up. Processes still in them (left by a failed
    run; started by our daemons) are SIGKILLed by PID first."""
    rel = parent.strip("/")
    assert rel.startswith("bench-")
    for m in cgroup_mounts():
        top = os.path.join(m, rel)
        if not os.path.isdir(top):
            continue
        pids = set()
        for dirpath, _, files in os.walk(top):
            for p in (_read(os.path.join(dirpath, "cgroup.procs")) or "").split():
                pids.add(int(p))
        for p in pids:
            log(f"killing pid {p}, left in cgroup {top}")
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            for _ in range(50):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                log(f"could not remove cgroup {dirpath}")


# ---------------------------------------------------------------------------
# Pods


class PodRunner:
    """Runs pods with one busybox `sleep 3600` container on one daemon."""

    def __init__(self, daemon, api, image, log_root, cgroup_parents):
        self.d = daemon
        self.api = api
        self.image = image
        self.log_root = log_root
        self.cgroup_parents = cgroup_parents
        self.n = 0

    def call(self, method, req, timeout=CALL_TIMEOUT_S):
        import grpc

        try:
            return self.d.client.call("RuntimeService", method, req, timeout)
        except grpc.RpcError as e:
            raise BenchFailed(f"{self.d.name}: {method} failed: {e.code().name}: {e.details()}"
                              f"\n--- {self.d.name} log (tail) ---\n{self.d.proc.log_tail()}") \
                from None

    def configs(self):
        a = self.api
        self.n += 1
        name = f"bench-{self.n}-{secrets.token_hex(3)}"
        uid = secrets.token_hex(16)
        log_dir = os.path.join(self.log_root, f"bench_{name}_{uid}_0")
        os.makedirs(log_dir, exist_ok=True)
        parent = f"/bench-{secrets.token_hex(5)}"
        self.cgroup_parents.append(parent)
        pod = a.PodSandboxConfig(
            metadata=a.PodSandboxMetadata(name=name, uid=uid, namespace="bench", attempt=0),
            hostname="", log_directory=log_dir)
        pod.linux.cgroup_parent = parent
        ns = pod.linux.security_context.namespace_options
        ns.network = a.NODE
        ns.pid = a.CONTAINER
        ns.ipc = a.POD
        ctr = a.ContainerConfig(metadata=a.ContainerMetadata(name="sleep", attempt=0),
                                image=a.ImageSpec(image=self.image),
                                command=["sleep", "3600"], log_path="sleep_0.log")
        return pod, ctr

    def start_pod(self):
        """Returns (pod_id, {run, create, start, total} seconds)."""
        a = self.api
        pod, ctr = self.configs()
        t0 = time.perf_counter()
        pid = self.call("RunPodSandbox", a.RunPodSandboxRequest(config=pod)).pod_sandbox_id
        t1 = time.perf_counter()
        cid = self.call("CreateContainer", a.CreateContainerRequest(
            pod_sandbox_id=pid, config=ctr, sandbox_config=pod)).container_id
        t2 = time.perf_counter()
        self.call("StartContainer", a.StartContainerRequest(container_id=cid))
        while True:
            st = self.call("ContainerStatus", a.ContainerStatusRequest(container_id=cid))
            if st.status.state == a.CONTAINER_RUNNING:
                break
            if st.status.state == a.CONTAINER_EXITED or time.perf_counter() - t2 > 30:
                raise BenchFailed(f"{self.d.name}: container {cid} not RUNNING: "
                                  f"{a.ContainerState.Name(st.status.state)}")
            time.sleep(0.001)
        t3 = time.perf_counter()
        return pid, {"run": t1 - t0, "create": t2 - t1, "start": t3 - t2, "total": t3 - t0}

    def remove_pod(self, pid):
        a = self.api
        t0 = time.perf_counter()
        self.call("StopPodSandbox", a.StopPodSandboxRequest(pod_sandbox_id=pid))
        self.call("RemovePodSandbox", a.RemovePodSandboxRequest(pod_sandbox_id=pid))
        return time.perf_counter() - t0

    def remove_all(self):
        """Best effort: stop and remove every pod the daemon lists."""
        a = self.api
        try:
            pods = self.d.client.call("RuntimeService", "ListPodSandbox",
                                      a.ListPodSandboxRequest(), 30).items
        except Exception as e:
            log(f"{self.d.name}: ListPodSandbox: {e}")
            return
        for p in pods:
            for m, req in (("StopPodSandbox", a.StopPodSandboxRequest(pod_sandbox_id=p.id)),
                           ("RemovePodSandbox", a.RemovePodSandboxRequest(pod_sandbox_id=p.id))):
                try:
                    self.d.client.call("RuntimeService", m, req, CALL_TIMEOUT_S)
                except Exception as e:
                    log(f"{self.d.name}: {m}({p.id[:12]}): {e}")


def measure_memory(runner, npods, cgroup_parents):
    d = runner.d
    idle_rss = common.proc_status_kb(d.pid, "VmRSS")
    pods = []
    try:
        for _ in range(npods):
            pods.append(runner.start_pod()[0])
        time.sleep(1.0)  # let the helpers settle
        rss = common.proc_status_kb(d.pid, "VmRSS")
        helpers = helper_pids(d, cgroup_parents)
        pss = sum(pss_kb(p) for p in helpers)
    finally:
        for p in pods:
            runner.remove_pod(p)
    return {"idle_rss_kb": idle_rss, "rss_kb": rss, "helpers": len(helpers),
            "helpers_pss_kb": pss, "per_pod_kb": (rss + pss) / npods,
            "per_pod_extra_kb": (rss - idle_rss + pss) / npods}


# ---------------------------------------------------------------------------
# Main


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10, help="rounds (default 10)")
    ap.add_argument("--pods", type=int, default=10,
                    help="pods running at once for the memory figures (default 10)")
    ap.add_argument("--crid", default=common.CRID_BIN)
    ap.add_argument("--containerd", default=common.CONTAINERD_BIN)
    ap.add_argument("--runc", default="/usr/bin/runc")
    ap.add_argument("--tmpdir", default=None, help="parent of the temp dir (must allow overlayfs)")
    ap.add_argument("--json", default=None, help="also write raw results to this file")
    args = ap.parse_args()
    if args.rounds < 1 or args.pods < 1:
        ap.error("--rounds and --pods must be at least 1")
    if os.geteuid() != 0:
        ap.error("run as root")
    if not os.access(args.crid, os.X_OK):
        ap.error(f"{args.crid} missing: run `make all`")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)

    # containerd's shim keeps runc state under /run/containerd (runc --root):
    # removed at the end (empty directories only) if this run created it.
    run_containerd_existed = os.path.exists(RUN_CONTAINERD)
    tmp = tempfile.mkdtemp(prefix="crid-podbench-", dir=args.tmpdir)
    registry = None
    live = []      # daemons started
    runners = []   # their PodRunners
    cgroup_parents = []
    try:
        proto_dir = os.path.join(tmp, "proto")
        os.makedirs(proto_dir)
        api = common.load_api(proto_dir)
        import image_builder as ib
        import registry_fixtures as rf

        busybox = ib.standard_images()["busybox"]
        pause = ib.Image([ib.busybox_layers("gzip")[0]], cmd=PAUSE_CMD,
                         env=[ib.DEFAULT_PATH_ENV], name="pause")
        registry = rf.Registry(os.path.join(tmp, "registry"), "bench")
        registry.start(os.path.join(tmp, "registry", "storage"))
        rf.push(registry, BUSYBOX_REPO, TAG, busybox)
        rf.push(registry, PAUSE_REPO, TAG, pause)
        busybox_ref = f"{registry.host}/{BUSYBOX_REPO}:{TAG}"
        pause_ref = f"{registry.host}/{PAUSE_REPO}:{TAG}"
        log(f"registry on {registry.host} (pid {registry.pid})")

        crid = common.CridDaemon(os.path.join(tmp, "crid"), api, registry.host,
                                 binary=args.crid,
                                 extra_args=["--runtime", f"runc={args.runc}",
                                             "--default-runtime", "runc"])
        live.append(crid)
        crid.start()
        ctrd = None
        ctrd_missing = None
        try:
            ctrd = PodContainerd(os.path.join(tmp, "containerd"), api, registry.host, pause_ref,
                                 binary=args.containerd)
            live.append(ctrd)
            ctrd.start()
        except common.DaemonStartError as e:
            ctrd_missing = f"containerd did not start: {str(e).splitlines()[0]}"
        daemons = [crid] + ([ctrd] if ctrd_missing is None else [])
        for d in daemons:
            d.client.pull(busybox_ref)
        if ctrd_missing is None:
            ctrd.client.pull(pause_ref)
        info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
                "loadavg_at_start": " ".join((_read("/proc/loadavg") or "").split()[:3]),
                "rounds": args.rounds, "pods": args.pods}
        for d in daemons:
            v = d.client.version()
            info[d.name] = f"{v.runtime_name} {v.runtime_version} (CRI {v.runtime_api_version})"
        log_root = os.path.join(tmp, "pod-logs")
        rn = {}
        for d in daemons:
            rn[d.name] = PodRunner(d, api, busybox_ref, log_root, cgroup_parents)
            runners.append(rn[d.name])

        # One untimed warm-up pod each; a containerd that cannot run pods is
        # reported, crid's figures are still given.
        for d in list(daemons):
            try:
                p, _ = rn[d.name].start_pod()
                rn[d.name].remove_pod(p)
            except BenchFailed as e:
                if d is crid:
                    raise
                ctrd_missing = f"containerd could not run a pod: {str(e).splitlines()[0]}"
                log(str(e))
                daemons.remove(d)

        results = []
        for rnd in range(args.rounds):
            order = daemons if rnd % 2 == 0 else daemons[::-1]
            res = {}
            for d in order:
                pid, t = rn[d.name].start_pod()
                t["teardown"] = rn[d.name].remove_pod(pid)
                res[d.name] = t
                log(f"round {rnd + 1}/{args.rounds} {d.name:10s} start {t['total']:.3f}s "
                    f"(run {t['run']:.3f} create {t['create']:.3f} start {t['start']:.3f}) "
                    f"teardown {t['teardown']:.3f}s")
            results.append(res)

        mem = {}
        for d in daemons:
            mem[d.name] = measure_memory(rn[d.name], args.pods, cgroup_parents)
            log(f"{d.name}: memory with {args.pods} pods: {mem[d.name]}")

        # ---- report
        names = [d.name for d in daemons]
        T = common.Table(["measurement", "runtime", "min", "median", "max", "unit"])
        med = {}
        for key, label in (("total", "pod+container start"), ("run", "  RunPodSandbox"),
                           ("create", "  CreateContainer"),
                           ("start", "  StartContainer..RUNNING"),
                           ("teardown", "stop+remove pod")):
            lab = label
            for n in names:
                lo, md, hi = common.stats([r[n][key] * 1000 for r in results])
                med[(key, n)] = md
                T.add(lab, n, f"{lo:.1f}", f"{md:.1f}", f"{hi:.1f}", "ms")
                lab = ""
        M = common.Table(["memory, %d pods running" % args.pods, "runtime", "value", "unit"])
        for key, label, div in (("idle_rss_kb", "daemon VmRSS before the pods", 1024),
                                ("rss_kb", "daemon VmRSS with the pods", 1024),
                                ("helpers", "helper processes", None),
                                ("helpers_pss_kb", "helpers' PSS, summed", 1024),
                                ("per_pod_kb", "(VmRSS + helpers' PSS) / pods", 1024),
                                ("per_pod_extra_kb", "(VmRSS growth + PSS) / pods", 1024)):
            lab = label
            for n in names:
                v = mem[n][key]
                M.add(lab, n, str(v) if div is None else f"{v / div:.2f}",
                      "" if div is None else "MiB")
                lab = ""
        R = common.Table(["ratio containerd / crid", "value"])
        if "containerd" in names:
            for key, label in (("total", "pod+container start (medians)"),
                               ("teardown", "stop+remove pod (medians)")):
                R.add(label, f"{med[(key, 'containerd')] / med[(key, 'crid')]:.2f}")
            for key, label in (("per_pod_kb", "(VmRSS + helpers' PSS) / pods"),
                               ("per_pod_extra_kb", "(VmRSS growth + PSS) / pods")):
                R.add(label, f"{mem['containerd'][key] / mem['crid'][key]:.2f}")

        print()
        print(f"crid pod benchmark  {info['date']}  {info['host']}  {info['cpus']} CPUs  "
              f"kernel {info['kernel']}  load average at start {info['loadavg_at_start']}")
        for n in ("crid", "containerd"):
            if n in info:
                print(f"{n}: {info[n]}")
        print(f"runc: {args.runc}; host-network pods; container busybox `sleep 3600`; "
              f"rounds: {args.rounds}")
        if ctrd_missing:
            print(f"NOTE: no containerd figures: {ctrd_missing}")
        print()
        print(T.render())
        print()
        print(M.render())
        if R.rows:
            print()
            print(R.render())
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"info": info, "rounds": results, "memory": mem,
                           "containerd_missing": ctrd_missing}, f, indent=2)
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
        for r in runners:
            r.remove_all()
        for d in live:
            try:
                d.stop()
            except Exception as e:
                log(f"stopping {d.name}: {e}")
        # shims our daemons started and that outlived them (failed runs only)
        for d in live:
            for pid, argv, _ in processes():
                if argv and os.path.basename(argv[0]) in ("crid-shim", "containerd-shim-runc-v2") \
                        and d.root in " ".join(argv):
                    log(f"killing leftover {argv[0]} pid {pid}")
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        for parent in cgroup_parents:
            remove_cgroup(parent)
        if registry is not None:
            try:
                registry.stop()
            except Exception as e:
                log(f"stopping the registry: {e}")
        common.remove_tree(tmp)
        if not run_containerd_existed and os.path.isdir(RUN_CONTAINERD):
            for dirpath, _, _ in sorted(os.walk(RUN_CONTAINERD), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    log(f"leaving {dirpath}: {e}")


if __name__ == "__main__":
    sys.exit(main())
