"""The node benchmark (bench/node_bench.py) in its smoke mode, against crid
alone: every workload runs and yields its figures, and the run leaves
nothing behind. Asserts nothing about speed: it keeps the harness working."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO  # noqa: F401

NODE_BENCH = os.path.join(REPO, "bench", "node_bench.py")
CRICLIENT = os.path.join(REPO, "build", "criclient", "criclient")


def test_node_bench_smoke(crid_bin, tmp_path):
    if not os.path.exists(CRICLIENT):
        pytest.fail(f"{CRICLIENT} is missing: `make criclient` builds it", pytrace=False)
    out = tmp_path / "node.json"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    r = subprocess.run([sys.executable, NODE_BENCH, "--smoke", "--skip-containerd", "--crid", crid_bin,
                        "--tmpdir", str(run_dir), "--json", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"node_bench failed ({r.returncode}):\n{r.stdout}\n{r.stderr[-6000:]}"
    doc = json.loads(out.read_text())
    c, fl = doc["results"]["crid"], doc["results"]["floor"]
    assert doc["skipped"] == {"containerd": "--skip-containerd"}
    assert "containerd" not in doc["results"]

    ps = c["podstart"]
    for k in ("pod_start_ms", "run_pod_sandbox_ms", "create_container_ms", "start_container_ms", "teardown_ms"):
        assert ps[k]["n"] == 2 and ps[k]["p50"] > 0, (k, ps[k])
    assert ps["pod_start_ms"]["p50"] >= ps["run_pod_sandbox_ms"]["p50"]
    assert c["burst"]["pods"] == 2 and c["burst"]["wall_s"] > 0
    assert c["exec"]["n"] == 2 and c["exec"]["p50"] > 0
    rl = c["relist"]
    assert rl["pods"] == 2 and rl["rounds"] == 2 and rl["round"]["p50_ms"] > 0
    assert set(rl["single_calls"]) == {"Version", "ContainerStatus", "ListContainers", "ListPodSandbox"}
    assert set(c["inside_us"]) == {"ContainerStatus", "ListContainers", "ListPodSandbox"}
    m = c["memory"]
    # crid runs one crid-shim per container and no pause process.
    assert m["shims"] == 2 and m["shims_pss_kb"] > 0 and m["pod_infra"] == 0, m
    assert m["daemon_pss_kb"] > 0 and c["pss_idle_kb"] > 0
    assert set(c["pulls"]) == {"busybox"} and c["pulls"]["busybox"]["cold"] > 0
    for k in ("namespaces", "network", "rootfs", "container", "total", "teardown", "exec"):
        assert fl[k]["n"] == 2 and fl[k]["p50"] > 0, (k, fl[k])
    assert set(fl["pulls"]) == {"busybox"} and fl["pulls"]["busybox"]["cold"] > 0

    # Nothing left: temp dir, bridges, cgroups, CNI result cache.
    assert os.listdir(run_dir) == []
    made = doc["made"]
    assert len(made["bridges"]) == 2  # crid's network and the floor's
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for b in made["bridges"]:
        assert f" {b}:" not in links and f" {b}@" not in links, b
    for parent in made["cgroup_parents"]:
        for hier in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
            assert not os.path.exists(hier + parent), hier + parent
    if os.path.isdir("/var/lib/cni/results"):
        left = [n for n in os.listdir("/var/lib/cni/results") if any(n.startswith(x + "-") for x in made["networks"])]
        assert left == []

    # The README's table from the JSON file, without a run.
    r = subprocess.run([sys.executable, NODE_BENCH, "--from-json", str(out), "--markdown"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "| 1 pod start p50 | ms |" in r.stdout and "| 6 per-pod overhead (PSS) | MiB |" in r.stdout
