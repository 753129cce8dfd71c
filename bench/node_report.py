"""The node benchmark's report: its table, from the JSON document that
node_bench.py writes (or reads back with --from-json).

    derive(doc)               adds the figures computed from others
    report(doc, markdown)     prints the header and the table (and Markdown)
"""

import common

from floor import CNI_BIN_DIR  # noqa: E402



def _g(d, *path):
    for p in path:
        if d is None:
            return None
        d = d.get(p) if isinstance(d, dict) else None
    return d


def rows(doc):
    """(label, unit, crid, containerd, floor, target text, met) of the report."""
    R = doc["results"]
    c, k, fl = R.get("crid"), R.get("containerd"), R.get("floor")
    out = []

    def add(label, unit, path, floor_path=None, target=None):
        cv, kv = _g(c, *path), _g(k, *path)
        fv = _g(fl, *floor_path) if floor_path else None
        met = None
        text = ""
        if target:
            text, fn = target
            met = fn(cv, kv, fv)
        out.append((label, unit, cv, kv, fv, text, met))

    def half(cv, kv, fv):
        return None if cv is None or kv is None else cv <= 0.5 * kv

    add("1 pod start p50", "ms", ("podstart", "pod_start_ms", "p50"), ("total", "p50"),
        ("<= 0.5x containerd, <= 1.3x floor",
         lambda cv, kv, fv: None if None in (cv, kv, fv) else (cv <= 0.5 * kv and cv <= 1.3 * fv)))
    for step in ("namespaces", "network", "rootfs", "container"):
        add(f"8   floor: {step} p50", "ms", ("-",), (step, "p50"))
    add("1 pod start p95", "ms", ("podstart", "pod_start_ms", "p95"), ("total", "p95"))
    add("1 RunPodSandbox p50", "ms", ("podstart", "run_pod_sandbox_ms", "p50"))
    add("1 CreateContainer p50", "ms", ("podstart", "create_container_ms", "p50"))
    add("1 CreateContainer p95", "ms", ("podstart", "create_container_ms", "p95"), None,
        ("p95 <= 1.5x p50", lambda cv, kv, fv: None if cv is None else
         cv <= 1.5 * _g(c, "podstart", "create_container_ms", "p50")))
    add("1 StartContainer p50", "ms", ("podstart", "start_container_ms", "p50"))
    add("2 teardown p50", "ms", ("podstart", "teardown_ms", "p50"), ("teardown", "p50"),
        ("<= 0.5x containerd", half))
    add("2 teardown p95", "ms", ("podstart", "teardown_ms", "p95"), ("teardown", "p95"))
    add("3 burst wall time", "s", ("burst", "wall_s"))
    add("4 ExecSync p50", "ms", ("exec", "p50"), ("exec", "p50"), ("<= 0.5x containerd", half))
    add("4 ExecSync p95", "ms", ("exec", "p95"), ("exec", "p95"))
    add("5 relist round p50", "ms", ("relist", "round", "p50_ms"))
    add("5 relist round p99", "ms", ("relist", "round", "p99_ms"))
    add("5 relist CPU / 1000 rounds", "s", ("relist", "runtime_cpu_s_per_1000_rounds"), None,
        ("<= 0.3x containerd", lambda cv, kv, fv: None if None in (cv, kv) else cv <= 0.3 * kv))
    for call in ("Version", "ContainerStatus", "ListContainers", "ListPodSandbox"):
        add(f"5 {call} p50", "ms", ("relist", "single_calls", call, "p50_ms"))
    add("5 ListContainerStats p50", "ms", ("relist", "list_container_stats", "p50_ms"))
    add("5 Version inside crid, mean (its metrics)", "µs", ("inside_mean_us", "Version"))
    for call in ("ContainerStatus", "ListContainers", "ListPodSandbox"):
        add(f"5 {call} inside crid, mean (its metrics)", "µs", ("inside_mean_us", call), None,
            ("< 50 µs", lambda cv, kv, fv: None if cv is None else cv < 50))
        add(f"5 {call} p50 - Version p50", "µs", ("inside_us", call))
    add("6 daemon PSS idle", "MiB", ("mem_mib", "idle"), None,
        ("<= 0.1x containerd", lambda cv, kv, fv: None if None in (cv, kv) else cv <= 0.1 * kv))
    add("6 daemon PSS with the pods", "MiB", ("mem_mib", "daemon"))
    add("6 shims' PSS, summed", "MiB", ("mem_mib", "shims"))
    add("6 pod infra PSS, summed", "MiB", ("mem_mib", "infra"))
    add("6 per-pod overhead (PSS)", "MiB", ("mem_mib", "per_pod"), None,
        ("<= 0.5 MiB", lambda cv, kv, fv: None if cv is None else cv <= 0.5))
    for img in ("big", "busybox"):
        for kind in ("cold", "warm"):
            add(f"7 pull {img} {kind}", "ms", ("pulls", img, kind), ("pulls", img, kind),
                ("<= 0.5x containerd", half))
    return out


def derive(doc):
    """Adds the figures computed from others (in place)."""
    for name in ("crid", "containerd"):
        r = doc["results"].get(name)
        if not r:
            continue
        calls = _g(r, "relist", "single_calls") or {}
        base = _g(calls, "Version", "p50_ms")
        r["inside_us"] = {c: max(0.0, (calls[c]["p50_ms"] - base) * 1000)
                          for c in ("ContainerStatus", "ListContainers", "ListPodSandbox")
                          if base is not None and c in calls}
        m = r.get("memory") or {}
        r["mem_mib"] = {"idle": r["pss_idle_kb"] / 1024}
        if m:
            r["mem_mib"].update(daemon=m["daemon_pss_kb"] / 1024, shims=m["shims_pss_kb"] / 1024,
                                infra=m["pod_infra_pss_kb"] / 1024, per_pod=m["per_pod_kb"] / 1024)


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def ratio(a, b):
    return "–" if a is None or b in (None, 0) else f"{a / b:.2f}"


def render(doc, markdown=False):
    head = ["measurement", "unit", "crid", "containerd", "crid / containerd", "floor", "crid / floor",
            "target", "met"]
    body = []
    for label, unit, cv, kv, fv, text, met in rows(doc):
        body.append([label, unit, fmt(cv), fmt(kv), ratio(cv, kv), fmt(fv), ratio(cv, fv), text,
                     "" if not text else ("–" if met is None else ("yes" if met else "NO"))])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    T = common.Table(head, aligns=["<", "<", ">", ">", ">", ">", ">", "<", "<"])
    for r in body:
        T.add(*r)
    return T.render()


def header(doc):
    i = doc["info"]
    out = [f"crid node benchmark  {i['date']}  {i['host']}  {i['cpus']} CPUs  kernel {i['kernel']}  "
           f"load average at start {i['loadavg_at_start']}, at end {i.get('loadavg_at_end', '?')}"]
    for n in ("crid", "containerd"):
        v = _g(doc["results"], n, "version")
        if v:
            out.append(f"{n}: {v}")
    out.append(f"crun {i.get('crun_version', '?')}; CNI: loopback, bridge + host-local, portmap "
               f"({CNI_BIN_DIR}); pods: {i['pods']} in sequence, burst {i['pods']} by {i['concurrency']}; "
               f"ExecSync x{i['exec_rounds']}; relist/memory {i['relist_pods']} pods, "
               f"{i['relist_rounds']} rounds, ListContainerStats x{i.get('stats_rounds', 0)}; took {i.get('duration_s', 0):.0f} s")
    for n, why in (doc.get("skipped") or {}).items():
        out.append(f"NOTE: no {n} figures: {why}")
    return "\n".join(out)


def report(doc, markdown):
    print()
    print(header(doc))
    print()
    print(render(doc))
    if markdown:
        print()
        print(render(doc, markdown=True))
