#!/usr/bin/python3
"""Image pull benchmark: crid versus containerd's CRI plugin.

Measures the time of a CRI PullImage of a ~100 MB image (4 layers of random
data, image_builder.big_image()) from a local docker-registry on 127.0.0.1,
pull + unpack, with crid (build/release/crid) and with containerd 1.6
(/usr/bin/containerd, CRI plugin, overlayfs snapshotter), in the same run on
the same machine. Also: a warm re-pull (image already present), a cold pull
of the small busybox image (image_builder.standard_images()["busybox"]),
CPU time used by each daemon (and its reaped children) per cold pull, and
memory: VmRSS after the pulls, VmHWM, and the sampled peak RSS of the daemon
plus its child processes during the cold pull.

Each round starts both daemons on fresh, empty roots (untimed), times the
pulls (the order of the two daemons alternates from round to round), then
removes the images with RemoveImage and stops both daemons, deleting their
roots (untimed). A sync(2) precedes every timed pull so that one daemon's
dirty pages are not written back during the other's measurement.

This prints figures; it asserts nothing about speed. See bench/README.md.

Usage: /usr/bin/python3 bench/pull_bench.py [--rounds N] [--json FILE] ...
(`make bench` installs what is needed, builds crid and runs this.)
"""

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in bench/ or tests/integration/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import log  # noqa: E402

BIG_REPO = "bench/big"
SMALL_REPO = "bench/busybox"
TAG = "latest"
MB = 1_000_000
CRID_DEFAULT_MAX_DOWNLOADS = 4  # crid's default max_concurrent_downloads


class PullFailed(RuntimeError):
    pass


# ---------------------------------------------------------------------------
# Process-tree sampling


def _ppid_map():
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            out[int(name)] = int(rest[1])
        except (OSError, IndexError, ValueError):
            pass
    return out


def tree_pids(root_pid):
    ppid = _ppid_map()
    children = {}
    for pid, pp in ppid.items():
        children.setdefault(pp, []).append(pid)
    out, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pid):
    """utime+stime of pid plus cutime+cstime (children it has reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # fields after ")" start at field 3 (state): utime=14, stime=15, cutime=16, cstime=17
    return sum(int(rest[i]) for i in (11, 12, 13, 14)) / ticks


class TreeRssSampler:
    """Samples the summed VmRSS of a process and all its descendants every
    `interval` seconds; .peak_kb is the largest sum seen."""

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.max_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        pids = tree_pids(self.pid)
        total = sum(common.proc_status_kb(p, "VmRSS") or 0 for p in pids)
        self.peak_kb = max(self.peak_kb, total)
        self.max_children = max(self.max_children, len(pids) - 1)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


# ---------------------------------------------------------------------------
# Measurements


def timed_pull(daemon, ref, expect_id, sample=False):
    """One PullImage, after sync(). Returns dict(seconds, cpu, peak_tree_kb)."""
    import grpc

    os.sync()
    cpu0 = cpu_seconds(daemon.pid)
    sampler = TreeRssSampler(daemon.pid) if sample else None
    try:
        if sampler:
            sampler.__enter__()
        t0 = time.perf_counter()
        try:
            got = daemon.client.pull(ref)
        except grpc.RpcError as e:
            raise PullFailed(
                f"{daemon.name}: PullImage({ref}) failed: {e.code().name}: {e.details()}\n"
                f"--- {daemon.name} log (tail) ---\n{daemon.proc.log_tail()}") from None
        dt = time.perf_counter() - t0
    finally:
        if sampler:
            sampler.__exit__()
    cpu1 = cpu_seconds(daemon.pid)
    # Time to durable: what the pull left dirty in the page cache, written out.
    t1 = time.perf_counter()
    os.sync()
    dt_sync = dt + (time.perf_counter() - t1)
    if expect_id and got != expect_id:
        # CRI says image_ref is the image id; crid and containerd both return
        # the config digest. Anything else is reported, not fatal.
        log(f"note: {daemon.name} PullImage returned image_ref {got!r}, "
            f"expected {expect_id!r}")
    return {"seconds": dt, "seconds_sync": dt_sync,
            "cpu": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
            "peak_tree_kb": sampler.peak_kb if sampler else None,
            "children": sampler.max_children if sampler else None,
            "image_ref": got}


def check_present(daemon, ref):
    st = daemon.client.status(ref)
    if not st.HasField("image") or not st.image.id:
        raise PullFailed(f"{daemon.name}: ImageStatus({ref}) finds no image after the pull")
    return st.image


def remove_image(daemon, ref, problems):
    import grpc

    try:
        daemon.client.remove(ref)
    except grpc.RpcError as e:
        problems.append(f"{daemon.name}: RemoveImage({ref}): {e.code().name}: {e.details()}")
        return
    try:
        st = daemon.client.status(ref)
        if st.HasField("image") and st.image.id:
            problems.append(f"{daemon.name}: image {ref} still listed after RemoveImage")
    except grpc.RpcError as e:
        problems.append(f"{daemon.name}: ImageStatus({ref}) after RemoveImage: "
                        f"{e.code().name}: {e.details()}")


def du_bytes(path):
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            total += st.st_blocks * 512
    return total


# ---------------------------------------------------------------------------
# Report


def summarize(results, big, small, args, info):
    names = ("crid", "containerd")
    big_mb = big["compressed"] / MB
    T = common.Table(["measurement", "runtime", "min", "median", "max", "unit", "note"],
                     aligns=["<", "<", ">", ">", ">", "<", "<"])
    med = {}

    def row(label, key, unit, scale=1.0, fmt="{:.3f}", note_fn=None):
        for n in names:
            vals = [r[n][key] for r in results if r[n].get(key) is not None]
            if not vals:
                continue
            lo, md, hi = common.stats([v * scale for v in vals])
            med[(key, n)] = md
            T.add(label, n, fmt.format(lo), fmt.format(md), fmt.format(hi), unit,
                  note_fn(md) if note_fn else "")
            label = ""

    row("cold pull, big image", "cold", "s",
        note_fn=lambda md: f"{big_mb / md:.1f} MB/s (compressed)")
    row("  same, until sync(2) returns", "cold_sync", "s",
        note_fn=lambda md: f"{big_mb / md:.1f} MB/s (compressed)")
    row("  CPU time (daemon+children)", "cold_cpu", "s")
    row("  peak RSS daemon+children", "cold_peak_tree_kb", "MiB", 1 / 1024, "{:.1f}")
    T.sep()
    row("warm re-pull, big image", "warm", "s")
    T.sep()
    if small:
        row("cold pull, busybox", "small", "s")
        T.sep()
    row("VmRSS after pulls", "rss_kb", "MiB", 1 / 1024, "{:.1f}")
    row("VmHWM (daemon peak)", "hwm_kb", "MiB", 1 / 1024, "{:.1f}")
    row("disk used by its root", "disk", "MB", 1 / MB, "{:.1f}")

    R = common.Table(["ratio containerd / crid (medians)", "value", "reading"],
                     aligns=["<", ">", "<"])

    def ratio(label, key, is_time=True):
        a, b = med.get((key, "containerd")), med.get((key, "crid"))
        if not a or not b:
            return None
        v = a / b
        word = "faster" if is_time else "uses less"
        reading = f"crid {word}" if v > 1 else f"containerd {word}" if v < 1 else "equal"
        R.add(label, f"{v:.2f}", reading)
        return v

    ratios = {
        "cold": ratio("cold pull time (big)", "cold"),
        "cold_sync": ratio("cold pull time until sync(2) returns", "cold_sync"),
        "cold_cpu": ratio("cold pull CPU time", "cold_cpu", False),
        "warm": ratio("warm re-pull time", "warm"),
        "small": ratio("cold pull time (busybox)", "small") if small else None,
        "rss": ratio("VmRSS after pulls", "rss_kb", False),
        "hwm": ratio("VmHWM", "hwm_kb", False),
        "tree": ratio("peak RSS daemon+children", "cold_peak_tree_kb", False),
        "disk": ratio("disk used by its root", "disk", False),
    }
    return T, R, med, ratios


# ---------------------------------------------------------------------------
# Main


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--crid", default=common.CRID_BIN, help="crid binary (default %(default)s)")
    ap.add_argument("--containerd", default=common.CONTAINERD_BIN,
                    help="containerd binary (default %(default)s)")
    ap.add_argument("--max-concurrent-downloads", type=int, default=CRID_DEFAULT_MAX_DOWNLOADS,
                    help="layers downloaded at once, set in both daemons' configs "
                         "(default %(default)s, crid's default; containerd's is 3). "
                         "0 leaves each daemon at its own default")
    ap.add_argument("--no-small", action="store_true", help="skip the busybox cold pull")
    ap.add_argument("--tmpdir", default=None, help="parent of the temp dir (default $TMPDIR "
                    "or /tmp; must allow overlayfs for containerd)")
    ap.add_argument("--json", default=None, help="also write raw results to this file")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if os.geteuid() != 0:
        ap.error("run as root (containerd's overlayfs snapshotter mounts)")
    for b in (args.crid, args.containerd):
        if not os.access(b, os.X_OK):
            ap.error(f"{b} missing: run `make bench` (installs containerd, builds crid)")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if inherited as ignored
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)

    tmp = tempfile.mkdtemp(prefix="crid-bench-", dir=args.tmpdir)
    registry = None
    live = []
    failed = None
    try:
        proto_dir = os.path.join(tmp, "proto")
        os.makedirs(proto_dir)
        api = common.load_api(proto_dir)
        import image_builder as ib
        import registry_fixtures as rf

        t0 = time.monotonic()
        log("building the ~100 MB image (image_builder.big_image())")
        big_img = ib.big_image()
        small_img = None if args.no_small else ib.standard_images()["busybox"]
        big = {"compressed": sum(l.size for l in big_img.layers),
               "uncompressed": sum(getattr(l, "uncompressed_size", 0) for l in big_img.layers),
               "layers": len(big_img.layers), "id": big_img.image_id}
        small = None
        if small_img is not None:
            small = {"compressed": sum(l.size for l in small_img.layers), "id": small_img.image_id}
        log(f"built in {time.monotonic() - t0:.1f}s: {big['layers']} layers, "
            f"{big['compressed'] / MB:.1f} MB compressed, {big['uncompressed'] / MB:.1f} MB "
            f"uncompressed")

        registry = rf.Registry(os.path.join(tmp, "registry"), "bench")
        registry.start(os.path.join(tmp, "registry", "storage"))
        t0 = time.monotonic()
        rf.push(registry, BIG_REPO, TAG, big_img)
        if small_img is not None:
            rf.push(registry, SMALL_REPO, TAG, small_img)
        log(f"registry on {registry.host} (pid {registry.pid}), pushed in "
            f"{time.monotonic() - t0:.1f}s")
        big_ref = f"{registry.host}/{BIG_REPO}:{TAG}"
        small_ref = f"{registry.host}/{SMALL_REPO}:{TAG}"
        del big_img  # the registry has it; free ~100 MB of our own memory

        containerd_version = subprocess.run([args.containerd, "--version"], capture_output=True,
                                            text=True).stdout.strip()
        crid_version = subprocess.run([args.crid, "--version"], capture_output=True,
                                      text=True).stdout.strip()
        with open("/proc/loadavg") as f:
            loadavg = " ".join(f.read().split()[:3])
        info = {
            "loadavg_at_start": loadavg,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "crid": crid_version, "containerd": containerd_version,
            "rounds": args.rounds, "max_concurrent_downloads": args.max_concurrent_downloads,
            "big": big, "small": small, "registry": registry.host,
        }
        mcd = args.max_concurrent_downloads or None

        results = []
        problems = []
        for rnd in range(args.rounds):
            rdir = os.path.join(tmp, f"round-{rnd}")
            crid = common.CridDaemon(os.path.join(rdir, "crid"), api, registry.host,
                                     binary=args.crid, max_downloads=mcd)
            ctrd = common.ContainerdDaemon(os.path.join(rdir, "containerd"), api, registry.host,
                                           binary=args.containerd, max_downloads=mcd)
            daemons = [crid, ctrd] if rnd % 2 == 0 else [ctrd, crid]
            res = {d.name: {} for d in daemons}
            for d in daemons:
                live.append(d)
                d.start()
            if rnd == 0:
                v = ctrd.client.version()
                info["containerd_cri"] = f"{v.runtime_name} {v.runtime_version} " \
                                         f"(CRI {v.runtime_api_version})"
                v = crid.client.version()
                info["crid_cri"] = f"{v.runtime_name} {v.runtime_version} " \
                                   f"(CRI {v.runtime_api_version})"
            order = " then ".join(d.name for d in daemons)
            log(f"round {rnd + 1}/{args.rounds}: {order}")

            for d in daemons:
                m = timed_pull(d, big_ref, big["id"], sample=True)
                res[d.name].update(cold=m["seconds"], cold_sync=m["seconds_sync"],
                                   cold_cpu=m["cpu"],
                                   cold_peak_tree_kb=m["peak_tree_kb"],
                                   children=m["children"])
                img = check_present(d, big_ref)
                res[d.name]["reported_size"] = img.size
                log(f"  {d.name:10s} cold  {m['seconds']:7.3f}s  (+sync {m['seconds_sync']:.3f}s)  "
                    f"{big['compressed'] / MB / m['seconds']:6.1f} MB/s  cpu "
                    f"{m['cpu']:.2f}s  id {m['image_ref'][:19]}")
            for d in daemons:
                m = timed_pull(d, big_ref, big["id"])
                res[d.name]["warm"] = m["seconds"]
                log(f"  {d.name:10s} warm  {m['seconds']:7.3f}s")
            if small is not None:
                for d in daemons:
                    m = timed_pull(d, small_ref, small["id"])
                    res[d.name]["small"] = m["seconds"]
                    log(f"  {d.name:10s} small {m['seconds']:7.3f}s")
            for d in daemons:
                res[d.name]["rss_kb"] = common.proc_status_kb(d.pid, "VmRSS")
                res[d.name]["hwm_kb"] = common.proc_status_kb(d.pid, "VmHWM")
                res[d.name]["disk"] = du_bytes(d.root)
            for d in daemons:
                remove_image(d, big_ref, problems)
                if small is not None:
                    remove_image(d, small_ref, problems)
            for d in daemons:
                d.stop()
                live.remove(d)
                if d.proc.popen.returncode not in (0, None):
                    problems.append(f"{d.name}: exited with {d.proc.popen.returncode} "
                                    f"on SIGTERM (round {rnd + 1})")
            common.remove_tree(rdir)
            results.append(res)

        T, R, med, ratios = summarize(results, big, small, args, info)
        print()
        print(f"crid pull benchmark  {info['date']}  {info['host']}  {info['cpus']} CPUs  "
              f"kernel {info['kernel']}  load average at start {info['loadavg_at_start']}")
        print(f"crid: {info.get('crid_cri')}  ({args.crid})")
        print(f"containerd: {info.get('containerd_cri')}  [{containerd_version}]")
        print(f"image: {big['layers']} layers, {big['compressed'] / MB:.1f} MB compressed "
              f"(gzip -1), {big['uncompressed'] / MB:.1f} MB unpacked; registry "
              f"docker-registry on {registry.host} (HTTP)")
        print(f"rounds: {args.rounds}; max_concurrent_downloads: "
              f"{args.max_concurrent_downloads or 'each daemon default'}; MB = 10^6 bytes, "
              f"MiB = 2^20")
        print()
        print(T.render())
        print()
        print(R.render())
        if problems:
            print()
            print("problems seen (not fatal):")
            for p in problems:
                print(f"  - {p}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"info": info, "rounds": results, "medians":
                           {f"{k}/{n}": v for (k, n), v in med.items()},
                           "ratios_containerd_over_crid": ratios, "problems": problems},
                          f, indent=2)
        return 0
    except PullFailed as e:
        failed = str(e)
        print(f"\nPULL FAILED: {failed}", file=sys.stderr)
        return 1
    except common.DaemonStartError as e:
        print(f"\nDAEMON START FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for d in live:
            try:
                d.stop()
            except Exception as e:  # keep cleaning
                log(f"stopping {d.name}: {e}")
        if registry is not None:
            try:
                registry.stop()
            except Exception as e:
                log(f"stopping the registry: {e}")
        common.remove_tree(tmp)


if __name__ == "__main__":
    sys.exit(main())
