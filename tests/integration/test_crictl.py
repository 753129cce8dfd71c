"""crictl (cri-tools, a grpc-go client, as node administrators use it)
against a real crid and the suite's registries: version, info, pull (plain,
with --creds and --auth, failing), images, inspecti, imagefsinfo, rmi (by
name, by ID, --prune), runp, pods, inspectp, create, start, ps, inspect,
logs (--tail, -t, -f), exec -s, stop, rm, stopp, rmp (and their -f forms),
run, under crun (the default) and runc; truncated IDs; a crid restart; a
pod on a CNI bridge network (its IP, a hostPort, NetworkReady in info).

Each scenario checks what crictl prints (-o json parsed where crictl offers
it, and its tables), not only its exit status. crictl is found at
../shared/bin/crictl next to the repository or on PATH; without it every
test here is skipped with a message saying so.

Every test ends with pod_helpers' leak checks (mounts, processes, cgroups,
files named after a pod or container)."""

import base64
import ipaddress
import os
import socket
import time
import urllib.error
import urllib.request
import warnings

import pytest

from cni_helpers import BridgeNet
from conftest import CNI_CONFLIST_NAME
from crictl_helpers import (GO_ZERO_TIME, SKIP_REASON, TRUNC, Crictl, find_crictl,
                            human_size, parse_table, rfc3339_ns)
import pod_helpers as ph
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401

CRICTL = find_crictl()
if CRICTL is None:
    warnings.warn(SKIP_REASON, pytest.PytestWarning)

pytestmark = [pytest.mark.skipif(CRICTL is None, reason=SKIP_REASON),
              pytest.mark.usefixtures("hugetlb_v1")]

S = 1_000_000_000  # ns

# A container that says hello on both streams, prints five numbered lines,
# then idles; SIGTERM makes it say so and exit 0.
IDLE_SCRIPT = ("trap 'echo got TERM; exit 0' TERM; "
               "echo \"greeting=$GREETING\"; echo to-stderr >&2; "
               "for i in 1 2 3 4 5; do echo line$i; done; "
               "while true; do sleep 0.1; done")


@pytest.fixture
def crictl(pod_env):
    return Crictl(CRICTL, pod_env)


def busybox(env, registry=None):
    """(image name, expected digests) of the suite's busybox on a registry."""
    reg = registry or env.rs.plain
    return env.image("busybox", host=reg.host), env.rs.expected("busybox")


def digest_ref(reg, exp):
    return f"{reg.host}/busybox@{exp['manifest_digest']}"


def runp(c, pod_cfg, handler=""):
    args = ["runp"] + (["--runtime", handler] if handler else []) + [c.pod_file(pod_cfg)]
    return c.track_pod(c.ok(*args).strip())


def create(c, pod_id, pod_cfg, ctr_cfg):
    return c.track_ctr(c.ok("create", pod_id, c.ctr_file(ctr_cfg), c.pod_file(pod_cfg)).strip())


def inspect(c, cid):
    return c.json("inspect", cid)


def state_of(c, cid):
    return inspect(c, cid)["status"]["state"]


def wait_state(c, cid, state, timeout=30.0):
    return c.wait_for(f"container {cid[:TRUNC]} in state {state}",
                      lambda: inspect(c, cid) if state_of(c, cid) == state else None, timeout)


def logs(c, *args):
    """(stdout lines, stderr lines) of `crictl logs ARGS`: crictl writes the
    container's stdout to its stdout and the container's stderr to its stderr."""
    r = c.run("logs", *args)
    if r.rc != 0:
        raise AssertionError(c.describe(f"crictl logs failed (exit status {r.rc})", r))
    return r.out.splitlines(), r.err.splitlines()


def wait_log_line(c, cid, line, err_line=None, timeout=20.0):
    """Polls `crictl logs` until line is on stdout (and err_line on stderr)."""
    def done():
        out, err = logs(c, cid)
        return (out, err) if line in out and (err_line is None or err_line in err) else None
    return c.wait_for(f"{line!r} in the log of {cid[:TRUNC]}", done, timeout)


def ids(c, command, *args):
    """IDs printed by `crictl COMMAND -q ARGS` (flags go before arguments)."""
    return c.lines(command, "-q", *args)


def log_tail(env, path, n):
    """(stdout lines, stderr lines, records) of the last n records of the CRI
    log file: what `crictl logs --tail n` prints on each stream. The order
    of stdout and stderr lines in the file depends on when the shim read
    each pipe, so expectations come from the file."""
    recs = ph.read_log(path)[-n:]
    return ([r.content for r in recs if r.stream == "stdout"],
            [r.content for r in recs if r.stream == "stderr"], recs)


def not_found(r, what):
    """crictl's error for an ID crid does not know: gRPC NotFound."""
    assert "code = NotFound" in r.err, f"expected NotFound for {what}:\n{r.err}"


# ---------------------------------------------------------------------------
# The runtime


def test_version_and_info(crictl, pod_env):
    c, env = crictl, pod_env
    a = env.api
    grpc_version = env.rt.Version(a.VersionRequest(version="v1"))

    fields = {}
    for line in c.lines("version"):
        key, sep, value = line.partition(":")
        assert sep, f"unexpected line in crictl version: {line!r}"
        fields[key.strip()] = value.strip()
    assert fields == {"Version": grpc_version.version,
                      "RuntimeName": "crid",
                      "RuntimeVersion": grpc_version.runtime_version,
                      "RuntimeApiVersion": "v1"}, fields
    assert grpc_version.runtime_version, grpc_version

    info = c.json("info")
    conds = {x["type"]: x for x in info["status"]["conditions"]}
    assert set(conds) == {"RuntimeReady", "NetworkReady"}, info["status"]
    assert conds["RuntimeReady"]["status"] is True, conds
    # The test daemon's CNI directory holds a loopback-only network.
    assert conds["NetworkReady"]["status"] is True, conds
    # The verbose part: crid's effective configuration.
    cfg = info["config"]
    assert cfg["socket"] == env.d.socket_path, cfg
    assert cfg["default_runtime"] == "crun" and set(cfg["runtimes"]) == {"crun", "runc"}, cfg
    assert env.rs.plain.host in [r["host"] for r in cfg["registries"]], cfg


# ---------------------------------------------------------------------------
# Images


def test_pull_images_inspecti_rmi(crictl, pod_env):
    c, env = crictl, pod_env
    plain, basic = env.rs.plain, env.rs.basic
    image, exp = busybox(env)
    image_id = exp["image_id"]

    assert c.lines("images", "-q") == []
    assert c.ok("pull", image).strip() == f"Image is up to date for {image_id}"

    # images: table, -q, --digests, -o json, and a repository filter
    header, rows = c.table("images")
    assert header == ["IMAGE", "TAG", "IMAGE ID", "SIZE"], header
    assert rows == [{"IMAGE": f"{plain.host}/busybox", "TAG": "latest",
                     "IMAGE ID": image_id.split(":", 1)[1][:TRUNC],
                     "SIZE": human_size(exp["size"])}], rows
    assert ids(c, "images") == [image_id]
    header, rows = c.table("images", "--digests")
    assert header == ["IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"], header
    assert [r["DIGEST"] for r in rows] == [exp["manifest_digest"].split(":", 1)[1][:TRUNC]], rows
    listed = c.json("images", "-o", "json")["images"]
    assert len(listed) == 1, listed
    img = listed[0]
    assert img["id"] == image_id, img
    assert img["repoTags"] == [image], img
    assert img["repoDigests"] == [digest_ref(plain, exp)], img
    assert img["size"] == str(exp["size"]), img
    assert ids(c, "images", f"{plain.host}/busybox") == [image_id]
    assert ids(c, "images", image) == [image_id]
    assert ids(c, "images", f"{plain.host}/nothere") == []

    # inspecti by name and by ID: JSON with the verbose info, and the table
    for ref in (image, image_id):
        st = c.json("inspecti", ref)
        assert st["status"]["id"] == image_id, st["status"]
        assert st["status"]["repoTags"] == [image], st["status"]
        assert st["status"]["repoDigests"] == [digest_ref(plain, exp)], st["status"]
        assert st["status"]["size"] == str(exp["size"]), st["status"]
        assert st["status"]["pinned"] is False, st["status"]
        spec = st["info"]["imageSpec"]
        assert spec["config"]["Cmd"] == ["/bin/sh"], spec
        assert spec["rootfs"]["diff_ids"] == exp["diff_ids"], spec
    table = c.lines("inspecti", "-q", "-o", "table", image)
    assert table == [f"ID: {image_id}", f"Tag: {image}", f"Digest: {digest_ref(plain, exp)}",
                     f"Size: {human_size(exp['size'])}"], table
    r = c.fails("inspecti", f"{plain.host}/busybox:nope")
    assert f'no such image "{plain.host}/busybox:nope" present' in r.msg, r.err

    # imagefsinfo: the layers are counted on crid's image file system
    fs = c.json("imagefsinfo")["status"]
    assert fs["fsId"]["mountpoint"].startswith(env.d.state_root + "/"), fs
    assert int(fs["usedBytes"]["value"]) > 0 and int(fs["inodesUsed"]["value"]) > 0, fs

    # the same image through the htpasswd registry, with --creds and --auth
    basic_image = f"{basic.host}/busybox:latest"
    out = c.ok("pull", "--creds", f"{env.rs.username}:{env.rs.password}", basic_image)
    assert out.strip() == f"Image is up to date for {image_id}"
    listed = c.json("images", "-o", "json")["images"]
    assert len(listed) == 1, f"one image with two names: {listed}"
    assert sorted(listed[0]["repoTags"]) == sorted([image, basic_image]), listed
    assert sorted(listed[0]["repoDigests"]) == sorted(
        [digest_ref(plain, exp), digest_ref(basic, exp)]), listed
    header, rows = c.table("images")
    assert sorted((r["IMAGE"], r["TAG"], r["IMAGE ID"]) for r in rows) == sorted(
        [(f"{plain.host}/busybox", "latest", image_id[7:7 + TRUNC]),
         (f"{basic.host}/busybox", "latest", image_id[7:7 + TRUNC])]), rows
    auth = base64.b64encode(f"{env.rs.username}:{env.rs.password}".encode()).decode()
    assert c.ok("pull", "--auth", auth, basic_image).strip() == \
        f"Image is up to date for {image_id}"

    # rmi by a name removes that name only; by ID the image with every name
    out = c.ok("rmi", basic_image)
    assert f"Deleted: {basic_image}" in out.splitlines(), out
    listed = c.json("images", "-o", "json")["images"]
    assert [(i["id"], i["repoTags"]) for i in listed] == [(image_id, [image])], listed
    c.ok("pull", "--creds", f"{env.rs.username}:{env.rs.password}", basic_image)
    out = c.ok("rmi", image_id)
    assert sorted(out.splitlines()) == sorted([f"Deleted: {image}", f"Deleted: {basic_image}"]), \
        out
    assert c.lines("images", "-q") == []
    assert c.json("images", "-o", "json")["images"] == []
    r = c.fails("rmi", image)
    assert f"no such image {image}" in r.err, r.err


def test_pull_failures_are_clear(crictl, pod_env):
    c, env = crictl, pod_env
    basic = env.rs.basic
    image = f"{basic.host}/busybox:latest"

    r = c.fails("pull", "--creds", f"{env.rs.username}:wrong-password", image)
    assert "code = Unauthenticated" in r.err, r.err
    assert image in r.err and "credentials" in r.err, \
        f"the error names the image and says the credentials were refused:\n{r.err}"
    assert "s3cret" not in r.err and "wrong-password" not in r.err, "no password in errors"

    r = c.fails("pull", image)
    assert "code = Unauthenticated" in r.err and "credentials" in r.err, r.err

    missing = f"{env.rs.plain.host}/busybox:no-such-tag"
    r = c.fails("pull", missing)
    assert "code = NotFound" in r.err and missing in r.err, r.err

    r = c.fails("pull", f"{env.rs.plain.host}/Not A Name")
    assert "code = InvalidArgument" in r.err, r.err

    assert c.lines("images", "-q") == [], "a failed pull leaves no image"


# ---------------------------------------------------------------------------
# Pods and containers


@pytest.mark.parametrize("handler", ["", "runc"], ids=["default-crun", "runc"])
def test_pod_and_container_lifecycle(crictl, pod_env, handler):
    c, env = crictl, pod_env
    image, exp = busybox(env)
    c.ok("pull", image)

    # -- runp, pods, inspectp
    pod = c.pod_config(hostname="crictl-host", labels={"app": "crictl-it", "tier": "web"},
                       annotations={"note": "a=b"})
    meta = pod["metadata"]
    t0 = time.time_ns()
    pid = runp(c, pod, handler)
    t1 = time.time_ns()

    header, rows = c.table("pods")
    assert header == ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["CREATED"].endswith(" ago"), row
    assert {k: v for k, v in row.items() if k != "CREATED"} == {
        "POD ID": pid[:TRUNC], "STATE": "Ready", "NAME": meta["name"],
        "NAMESPACE": meta["namespace"], "ATTEMPT": "1",
        "RUNTIME": handler or "(default)"}, row

    items = c.json("pods", "-o", "json")["items"]
    assert len(items) == 1, items
    p = items[0]
    assert p["id"] == pid and p["state"] == "SANDBOX_READY", p
    assert p["metadata"] == meta, p
    assert t0 - S <= int(p["createdAt"]) <= t1 + S, (p["createdAt"], t0, t1)
    assert p["labels"] == pod["labels"] and p["annotations"] == pod["annotations"], p
    assert p["runtimeHandler"] == handler, p

    assert ids(c, "pods") == [pid]
    assert ids(c, "pods", "--id", pid[:TRUNC]) == [pid]
    assert ids(c, "pods", "--name", meta["name"]) == [pid]
    assert ids(c, "pods", "--name", "^no-such-pod$") == []
    assert ids(c, "pods", "--namespace", meta["namespace"]) == [pid]
    assert ids(c, "pods", "--label", "app=crictl-it") == [pid]
    assert ids(c, "pods", "--label", "app=crictl-it", "--label", "tier=web") == [pid]
    assert ids(c, "pods", "--label", "app=other") == []
    assert ids(c, "pods", "--state", "ready") == [pid]
    assert ids(c, "pods", "--state", "notready") == []

    ps = c.json("inspectp", pid)
    st = ps["status"]
    assert st["id"] == pid and st["state"] == "SANDBOX_READY", st
    assert st["metadata"] == meta, st
    assert rfc3339_ns(st["createdAt"]) == int(p["createdAt"]), (st["createdAt"], p["createdAt"])
    assert st["linux"]["namespaces"]["options"]["network"] == "POD", st
    assert st["linux"]["namespaces"]["options"]["pid"] == "CONTAINER", st
    assert st["linux"]["namespaces"]["options"]["ipc"] == "POD", st
    assert st["labels"] == pod["labels"] and st["annotations"] == pod["annotations"], st
    assert st["runtimeHandler"] == handler, st
    assert isinstance(ps.get("info"), dict), f"inspectp shows the verbose info: {ps}"

    # -- create
    labels = {"io.kubernetes.pod.name": meta["name"], "role": "main"}
    host_dir = os.path.join(c.dir, "shared")
    os.makedirs(host_dir, exist_ok=True)
    with open(os.path.join(host_dir, "note.txt"), "w") as f:
        f.write("from the host\n")
    mount = {"container_path": "/data", "host_path": host_dir, "readonly": True}
    ctr = c.ctr_config("main", image, ["sh", "-c", IDLE_SCRIPT],
                       envs={"GREETING": "hello-crictl"}, labels=labels, mounts=[mount])
    t2 = time.time_ns()
    cid = create(c, pid, pod, ctr)
    t3 = time.time_ns()

    assert ids(c, "ps") == [], "plain ps lists running containers only"
    assert ids(c, "ps", "-a") == [cid]
    assert ids(c, "ps", "-a", "--state", "created") == [cid]
    header, rows = c.table("ps", "-a")
    assert header == ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID",
                      "POD"], header
    assert [{k: v for k, v in r.items() if k != "CREATED"} for r in rows] == [{
        "CONTAINER": cid[:TRUNC], "IMAGE": image, "STATE": "Created", "NAME": "main",
        "ATTEMPT": "0", "POD ID": pid[:TRUNC], "POD": meta["name"]}], rows

    st = inspect(c, cid)["status"]
    assert st["id"] == cid and st["state"] == "CONTAINER_CREATED", st
    assert st["metadata"] == {"name": "main", "attempt": 0}, st
    created_at = rfc3339_ns(st["createdAt"])
    assert t2 - S <= created_at <= t3 + S, (st["createdAt"], t2, t3)
    assert st["startedAt"] == GO_ZERO_TIME and st["finishedAt"] == GO_ZERO_TIME, st
    assert st["exitCode"] == 0, st
    assert st["logPath"] == os.path.join(pod["log_directory"], "main.0.log"), st
    assert st["labels"] == labels, st
    assert [(m["containerPath"], m["hostPath"], m["readonly"]) for m in st["mounts"]] == \
        [("/data", host_dir, True)], st["mounts"]

    # -- start, logs
    assert c.ok("start", cid).strip() == cid
    out, err = wait_log_line(c, cid, "line5", "to-stderr")
    assert out == ["greeting=hello-crictl", "line1", "line2", "line3", "line4", "line5"], out
    assert err == ["to-stderr"], err
    log_path = os.path.join(pod["log_directory"], "main.0.log")
    for n in (1, 2, 6):
        want_out, want_err, _ = log_tail(env, log_path, n)
        assert logs(c, "--tail", str(n), cid) == (want_out, want_err), n
    out, err = logs(c, "-t", "--tail", "1", cid)
    (last,) = log_tail(env, log_path, 1)[2]
    (stamped,) = out if last.stream == "stdout" else err
    ts, _, text = stamped.partition(" ")
    assert (text, rfc3339_ns(ts)) == (last.content, last.ts_ns), (stamped, last)

    # -- ps while running
    assert ids(c, "ps") == [cid]
    assert ids(c, "ps", "--state", "running") == [cid]
    assert ids(c, "ps", "-a", "--state", "exited") == []
    assert ids(c, "ps", "--pod", pid) == [cid]
    assert ids(c, "ps", "-a", "--pod", "0" * 64) == []
    assert ids(c, "ps", "--name", "^ma") == [cid]
    assert ids(c, "ps", "--label", "role=main") == [cid]
    assert ids(c, "ps", "--label", "role=other") == []
    assert ids(c, "ps", "--image", image) == [cid]
    assert ids(c, "ps", "--id", cid[:TRUNC]) == [cid]
    listed = c.json("ps", "-o", "json")["containers"]
    assert len(listed) == 1, listed
    lc = listed[0]
    assert (lc["id"], lc["podSandboxId"], lc["state"]) == (cid, pid, "CONTAINER_RUNNING"), lc
    assert lc["metadata"] == {"name": "main", "attempt": 0}, lc
    assert lc["image"]["image"] == image, lc
    assert lc["imageRef"] in (exp["image_id"], digest_ref(env.rs.plain, exp)), lc
    assert int(lc["createdAt"]) == created_at, lc
    assert lc["labels"] == labels, lc
    rows = c.table("ps")[1]
    assert [(r["CONTAINER"], r["STATE"], r["POD"]) for r in rows] == \
        [(cid[:TRUNC], "Running", meta["name"])], rows

    # -- inspect while running
    ins = inspect(c, cid)
    st = ins["status"]
    assert st["state"] == "CONTAINER_RUNNING", st
    started_at = rfc3339_ns(st["startedAt"])
    assert started_at >= created_at, st
    assert started_at - S <= rfc3339_ns(ts) <= time.time_ns() + S, (ts, st)
    assert st["finishedAt"] == GO_ZERO_TIME and st["exitCode"] == 0 and st["reason"] == "", st
    assert st["logPath"] == log_path, st
    info = ins["info"]
    assert isinstance(info.get("pid"), int) and info["pid"] > 0, \
        f"inspect's info has the container's pid (crictl users read .info.pid): {info}"
    with open(f"/proc/{info['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sh", b"-c"], "info.pid is the container's process"

    # -- exec -s: the config's environment, the pod's hostname, the mount
    assert c.ok("exec", "-s", cid, "sh", "-c", "echo $GREETING; hostname; cat /data/note.txt") \
        == "hello-crictl\ncrictl-host\nfrom the host\n\n\n"
    r = c.fails("exec", "-s", cid, "sh", "-c", "echo x > /data/new.txt")
    assert "exited with" in r.msg and "Read-only file system" in r.msg, r.err

    # -- stop (the container exits 0 on SIGTERM)
    t4 = time.monotonic()
    assert c.ok("stop", "--timeout", "20", cid).strip() == cid
    assert time.monotonic() - t4 < 15, "the container handles SIGTERM: no wait for the timeout"
    st = inspect(c, cid)["status"]
    assert st["state"] == "CONTAINER_EXITED", st
    assert (st["exitCode"], st["reason"]) == (0, "Completed"), st
    assert rfc3339_ns(st["finishedAt"]) >= started_at, st
    assert logs(c, "--tail", "1", cid) == (["got TERM"], [])
    assert ids(c, "ps") == []
    assert ids(c, "ps", "-a", "--state", "exited") == [cid]
    rows = c.table("ps", "-a")[1]
    assert [(r["CONTAINER"], r["STATE"]) for r in rows] == [(cid[:TRUNC], "Exited")], rows
    r = c.fails("exec", "-s", cid, "echo", "hi")
    assert "code = FailedPrecondition" in r.err and "not running" in r.err, r.err
    assert c.ok("stop", cid).strip() == cid, "stopping an exited container is fine"

    # -- rm
    assert c.ok("rm", cid).strip() == cid
    assert ids(c, "ps", "-a") == []
    not_found(c.fails("inspect", cid), "a removed container")

    # -- stopp, rmp
    assert c.ok("stopp", pid).strip() == f"Stopped sandbox {pid}"
    rows = c.table("pods")[1]
    assert [(r["POD ID"], r["STATE"]) for r in rows] == [(pid[:TRUNC], "NotReady")], rows
    assert ids(c, "pods", "--state", "notready") == [pid]
    assert ids(c, "pods", "--state", "ready") == []
    assert c.json("inspectp", pid)["status"]["state"] == "SANDBOX_NOTREADY"
    assert c.ok("rmp", pid).strip() == f"Removed sandbox {pid}"
    assert ids(c, "pods") == []
    assert c.json("pods", "-o", "json")["items"] == []
    not_found(c.fails("inspectp", pid), "a removed pod")


def test_runp_errors_leave_no_pod(crictl, pod_env):
    c, env = crictl, pod_env
    pod = c.pod_config()
    pid = runp(c, pod)

    r = c.fails("runp", c.pod_file(pod))
    assert pod["metadata"]["name"] in r.msg, \
        f"a second pod with the same metadata is refused, naming it:\n{r.err}"
    assert ids(c, "pods") == [pid]

    other = c.pod_config()
    r = c.fails("runp", "--runtime", "no-such-handler", c.pod_file(other))
    assert "no-such-handler" in r.msg, r.err
    assert ids(c, "pods") == [pid]

    c.ok("stopp", pid)
    c.ok("rmp", pid)
    assert c.json("pods", "-o", "json")["items"] == []


def test_inspect_reports_image_name_and_digest_ref(crictl, pod_env):
    """ContainerStatus.image is the image the container was created with,
    image_ref its repository@sha256 digest reference, in every state."""
    c, env = crictl, pod_env
    image, exp = busybox(env)
    ref = digest_ref(env.rs.plain, exp)
    c.ok("pull", image)
    pod = c.pod_config()
    pid = runp(c, pod)
    cid = create(c, pid, pod, c.ctr_config("img", image, ["sh", "-c", "sleep 1; exit 0"]))
    seen = {}
    st = inspect(c, cid)["status"]
    seen["created"] = (st["image"]["image"], st["imageRef"])
    c.ok("start", cid)
    st = inspect(c, cid)["status"]
    seen["running"] = (st["image"]["image"], st["imageRef"])
    st = wait_state(c, cid, "CONTAINER_EXITED")["status"]
    seen["exited"] = (st["image"]["image"], st["imageRef"])
    # created by image ID, as the kubelet does: the image's tag is shown
    by_id = create(c, pid, pod, c.ctr_config("by-id", exp["image_id"], ["true"]))
    st = inspect(c, by_id)["status"]
    seen["created by ID"] = (st["image"]["image"], st["imageRef"])
    listed = {x["id"]: x["image"]["image"] for x in c.json("ps", "-a", "-o", "json")["containers"]}
    assert listed == {cid: image, by_id: image}, listed
    assert seen == {k: (image, ref) for k in ("created", "running", "exited", "created by ID")}, \
        f"inspect's (image, imageRef) by state; expected ({image}, {ref})"
    c.ok("rmp", "-f", pid)


def test_exec_sync(crictl, pod_env):
    c, env = crictl, pod_env
    image, _ = busybox(env)
    c.ok("pull", image)
    pod = c.pod_config()
    pid = runp(c, pod)
    cid = create(c, pid, pod, c.ctr_config("exec", image,
                                           ["sh", "-c", "while true; do sleep 0.1; done"]))
    c.ok("start", cid)

    # crictl prints the command's stdout, a newline, its stderr, a newline
    assert c.ok("exec", "-s", cid, "echo", "hi") == "hi\n\n\n"
    assert c.ok("exec", "-s", cid, "sh", "-c", "echo out; echo err >&2") == "out\n\nerr\n\n"
    assert c.ok("exec", "-s", cid[:TRUNC], "id", "-u") == "0\n\n\n"

    # A non-zero exit code: cri-api's client turns ExecSyncResponse.exit_code
    # into an error naming the code and carrying stderr; crictl then exits 1
    # and drops stdout, so the whole response is also checked over gRPC.
    cmd = ["sh", "-c", "echo hi; echo oops >&2; exit 3"]
    r = c.fails("exec", "-s", cid, *cmd)
    assert "exited with 3: oops" in r.msg, r.err
    resp = env.exec_sync(cid, cmd)
    assert (resp.exit_code, resp.stdout, resp.stderr) == (3, b"hi\n", b"oops\n"), resp

    # The exec timeout is DEADLINE_EXCEEDED, which clients report as a timeout,
    # and the command is killed.
    t0 = time.monotonic()
    r = c.fails("exec", "-s", "--timeout", "1", cid, "sleep", "30")
    assert time.monotonic() - t0 < 20, "the timeout is honoured"
    assert "code = DeadlineExceeded" in r.err, r.err
    assert 'command "sleep 30" timed out' in r.msg, r.err
    procs = c.ok("exec", "-s", cid, "sh", "-c",
                 "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done")
    assert "sleep 30" not in procs, f"the timed-out command still runs:\n{procs}"

    assert c.ok("exec", "-s", cid, "sh", "-c", "exit 0") == "\n\n"
    c.ok("stopp", pid)
    c.ok("rmp", pid)


def test_exited_container_and_truncated_ids(crictl, pod_env):
    """A container that exits by itself with a code, handled with the
    truncated IDs crictl's tables show."""
    c, env = crictl, pod_env
    image, _ = busybox(env)
    c.ok("pull", image)
    pod = c.pod_config()
    pid = runp(c, pod)
    short_pid = pid[:TRUNC]
    cid = create(c, short_pid, pod, c.ctr_config(
        "quitter", image, ["sh", "-c", "echo first; echo second; echo third >&2; exit 7"]))
    short = cid[:TRUNC]
    assert c.ok("start", short).strip() == short
    st = wait_state(c, short, "CONTAINER_EXITED")["status"]
    assert st["id"] == cid, st
    assert (st["exitCode"], st["reason"]) == (7, "Error"), st
    assert rfc3339_ns(st["createdAt"]) <= rfc3339_ns(st["startedAt"]) \
        <= rfc3339_ns(st["finishedAt"]), st
    assert logs(c, short) == (["first", "second"], ["third"])
    for n in (1, 2):
        want_out, want_err, _ = log_tail(env, st["logPath"], n)
        assert logs(c, "--tail", str(n), short) == (want_out, want_err), n
    assert ids(c, "ps", "-a", "--state", "exited") == [cid]
    assert ids(c, "ps", "-a", "--id", short) == [cid]
    assert ids(c, "ps", "-a", "--pod", short_pid) == [cid]
    r = c.fails("start", short)
    assert "code = FailedPrecondition" in r.err, r.err
    assert c.ok("rm", short).strip() == short
    assert ids(c, "ps", "-a") == []
    assert c.ok("stopp", short_pid).strip() == f"Stopped sandbox {short_pid}"
    assert c.ok("rmp", short_pid).strip() == f"Removed sandbox {short_pid}"
    assert ids(c, "pods") == []


@pytest.mark.parametrize("handler", ["", "runc"], ids=["default-crun", "runc"])
def test_short_lived_containers_start_before_they_finish(crictl, pod_env, handler):
    """inspect's times of containers that exit at once: created <= started
    <= finished, for each of several (the order must not depend on whether
    the process ended before `<runtime> start` returned)."""
    c, env = crictl, pod_env
    image, _ = busybox(env)
    c.ok("pull", image)
    pod = c.pod_config()
    pid = runp(c, pod, handler)
    cids = []
    for i in range(12):
        cid = create(c, pid, pod, c.ctr_config(f"blink{i}", image, ["sh", "-c", "exit 3"]))
        c.ok("start", cid)
        cids.append(cid)
    wrong = []
    for cid in cids:
        st = wait_state(c, cid, "CONTAINER_EXITED")["status"]
        assert st["exitCode"] == 3, st
        times = [rfc3339_ns(st[k]) for k in ("createdAt", "startedAt", "finishedAt")]
        if not times[0] <= times[1] <= times[2]:
            wrong.append(f"{st['metadata']['name']}: createdAt {st['createdAt']} "
                         f"startedAt {st['startedAt']} finishedAt {st['finishedAt']} "
                         f"(started {(times[1] - times[2]) / 1e6:.3f} ms after finishing)")
    assert not wrong, "containers reported as started after they finished:\n" + "\n".join(wrong)
    c.ok("rmp", "-f", pid)


def test_logs_follow_ends_when_the_container_exits(crictl, pod_env):
    c, env = crictl, pod_env
    image, _ = busybox(env)
    c.ok("pull", image)
    pod = c.pod_config()
    pid = runp(c, pod)
    cid = create(c, pid, pod, c.ctr_config(
        "ticker", image, ["sh", "-c", "for i in 1 2 3 4; do echo tick$i; sleep 0.3; done"]))
    c.ok("start", cid)
    t0 = time.monotonic()
    r = c.run("logs", "-f", cid, timeout=60)
    assert r.rc == 0, c.describe("crictl logs -f failed", r)
    assert r.out.splitlines() == ["tick1", "tick2", "tick3", "tick4"], r.out
    assert time.monotonic() - t0 < 30, "logs -f returns once the container has exited"
    assert state_of(c, cid) == "CONTAINER_EXITED"
    c.ok("rmp", "-f", pid)


def test_force_removal_of_running_containers_and_pods(crictl, pod_env):
    c, env = crictl, pod_env
    image, exp = busybox(env)
    unused = env.image("nonroot")
    c.ok("pull", image)
    c.ok("pull", unused)
    pod = c.pod_config()
    pid = runp(c, pod)
    cids = []
    for name in ("one", "two", "three"):
        cid = create(c, pid, pod, c.ctr_config(name, image,
                                               ["sh", "-c", "while true; do sleep 0.1; done"]))
        c.ok("start", cid)
        cids.append(cid)
    assert sorted(ids(c, "ps")) == sorted(cids)

    # rmi --prune keeps the image the containers use
    assert c.ok("rmi", "--prune").splitlines() == [f"Deleted: {unused}"]
    assert ids(c, "images") == [exp["image_id"]]

    r = c.fails("rm", cids[0])
    assert "is running" in r.err, r.err
    assert sorted(ids(c, "ps")) == sorted(cids)
    out = c.ok("rm", "-f", cids[0])
    assert out.splitlines() == [cids[0], cids[0]], \
        f"crictl rm -f prints the ID once stopped and once removed: {out!r}"
    assert sorted(ids(c, "ps", "-a")) == sorted(cids[1:])

    r = c.fails("rmp", pid)
    assert "is running" in r.err, r.err
    out = c.ok("rmp", "-f", pid)
    assert out.splitlines() == [f"Stopped sandbox {pid}", f"Removed sandbox {pid}"], out
    assert ids(c, "pods") == []
    assert ids(c, "ps", "-a") == [], "removing a pod removes its containers"
    assert c.ok("rmi", "--prune").splitlines() == [f"Deleted: {image}"]
    assert ids(c, "images") == []


def test_same_answers_after_crid_restarts(crictl, pod_env):
    """crid killed and started again: crictl sees the same images, pods and
    containers, field for field, and can go on working with them."""
    c, env = crictl, pod_env
    image, _ = busybox(env)
    c.ok("pull", image)
    pod = c.pod_config(labels={"app": "restart"})
    pid = runp(c, pod)
    ticker = create(c, pid, pod, c.ctr_config(
        "ticker", image,
        ["sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done"],
        labels={"role": "ticker"}))
    c.ok("start", ticker)
    done = create(c, pid, pod, c.ctr_config("done", image, ["sh", "-c", "exit 4"]))
    c.ok("start", done)
    created = create(c, pid, pod, c.ctr_config("created", image, ["true"]))
    wait_state(c, done, "CONTAINER_EXITED")
    wait_log_line(c, ticker, "tick1")

    def views():
        out = {"images": c.json("images", "-o", "json"),
               "pods": c.json("pods", "-o", "json"),
               "ps": c.json("ps", "-a", "-o", "json"),
               "inspectp": c.json("inspectp", "-q", pid)}
        for cid in (ticker, done, created):
            out[f"inspect {cid[:TRUNC]}"] = c.json("inspect", "-q", cid)
        return out

    before = views()
    env.kill_daemon()
    env.start_daemon()
    after = views()
    for key in before:
        assert after[key] == before[key], f"crictl {key} differs after crid restarted"

    n = len(logs(c, ticker)[0])
    wait_log_line(c, ticker, f"tick{n + 1}")
    assert c.ok("exec", "-s", ticker, "echo", "still-here") == "still-here\n\n\n"
    assert c.ok("start", created).strip() == created
    assert wait_state(c, created, "CONTAINER_EXITED")["status"]["exitCode"] == 0
    assert c.ok("stop", ticker).strip() == ticker
    assert state_of(c, ticker) == "CONTAINER_EXITED"
    for cid in (ticker, done, created):
        assert c.ok("rm", cid).strip() == cid
    assert c.ok("stopp", pid).strip() == f"Stopped sandbox {pid}"
    assert c.ok("rmp", pid).strip() == f"Removed sandbox {pid}"
    assert ids(c, "pods") == [] and ids(c, "ps", "-a") == []


@pytest.mark.parametrize("handler", ["", "runc"], ids=["default-crun", "runc"])
def test_run_pulls_with_credentials_and_starts(crictl, pod_env, handler):
    """crictl run: pod, pull (here from the htpasswd registry with --creds),
    container, start, in one step; the pod shares one PID namespace."""
    c, env = crictl, pod_env
    image, exp = busybox(env, env.rs.basic)
    pod = c.pod_config(pid_mode=None)
    ctr = c.ctr_config("runner", image,
                       ["sh", "-c", "echo ran-by-crictl; while true; do sleep 0.1; done"])
    args = ["run", "--creds", f"{env.rs.username}:{env.rs.password}"]
    if handler:
        args += ["--runtime", handler]
    out = c.ok(*args, c.ctr_file(ctr), c.pod_file(pod))
    cid = c.track_ctr(out.strip().splitlines()[-1])
    (pid,) = ids(c, "pods")
    c.track_pod(pid)

    img = c.json("inspecti", image)["status"]
    assert img["id"] == exp["image_id"] and img["repoTags"] == [image], img

    p = c.json("pods", "-o", "json")["items"][0]
    assert p["metadata"] == pod["metadata"] and p["state"] == "SANDBOX_READY", p
    assert p["runtimeHandler"] == handler, p
    assert c.json("inspectp", pid)["status"]["linux"]["namespaces"]["options"]["pid"] == "POD"

    (lc,) = c.json("ps", "-o", "json")["containers"]
    assert (lc["id"], lc["podSandboxId"], lc["state"]) == (cid, pid, "CONTAINER_RUNNING"), lc
    assert lc["metadata"]["name"] == "runner" and lc["image"]["image"] == image, lc
    out, _ = wait_log_line(c, cid, "ran-by-crictl")
    assert out == ["ran-by-crictl"], out
    assert c.ok("exec", "-s", cid, "echo", "inside") == "inside\n\n\n"

    out = c.ok("rmp", "-f", pid)
    assert out.splitlines() == [f"Stopped sandbox {pid}", f"Removed sandbox {pid}"], out
    assert ids(c, "ps", "-a") == [] and ids(c, "pods") == []


def test_pod_network(pod_env_factory, tmp_path):
    """A pod on a CNI bridge network of the test's own, through crictl:
    info shows NetworkReady and the network in use; runp with a port
    mapping; inspectp shows the pod IP and the CNI result; a web container
    answers on the pod IP and on its hostPort; stopp releases the address;
    with the configuration gone, info says why the network is not ready and
    runp is refused with that reason."""
    net = BridgeNet(str(tmp_path))
    try:
        env = pod_env_factory(network=net)
    except BaseException:
        net.cleanup()
        raise
    c = Crictl(CRICTL, env)
    image, _ = busybox(env)
    c.ok("pull", image)

    info = c.json("info")
    conds = {x["type"]: x for x in info["status"]["conditions"]}
    assert conds["NetworkReady"]["status"] is True, conds
    assert info["cni"]["network"]["name"] == net.name, info["cni"]

    host_port = free_port()
    pod = c.pod_config()
    pod["port_mappings"] = [{"protocol": 0, "container_port": 80, "host_port": host_port,
                             "host_ip": "127.0.0.1"}]
    pid = runp(c, pod)
    st = c.json("inspectp", pid)
    ip = st["status"]["network"]["ip"]
    assert ipaddress.ip_address(ip) in net.subnet, st["status"]["network"]
    assert st["status"]["network"].get("additionalIps", []) == [], st["status"]["network"]
    assert st["info"]["cni"]["network"] == net.name, st["info"]
    assert [x["address"] for x in st["info"]["cni"]["result"]["ips"]] == [f"{ip}/24"], st["info"]

    web = c.ctr_config("web", image, ["sh", "-c", "mkdir -p /www && echo from-crictl > /www/index.html"
                                      " && exec /bin/busybox httpd -f -p 80 -h /www"])
    cid = create(c, pid, pod, web)
    c.ok("start", cid)
    for url in (f"http://{ip}/", f"http://127.0.0.1:{host_port}/"):
        body = c.wait_for(f"an answer at {url}", lambda: _get(url), timeout=15)
        assert body == "from-crictl\n", (url, body)

    assert c.ok("stopp", pid).strip() == f"Stopped sandbox {pid}"
    assert c.json("inspectp", pid)["status"]["network"]["ip"] == ""
    assert net.wait_no_leaks([pid]) == {}

    os.unlink(os.path.join(env.d.cni_conf_dir, CNI_CONFLIST_NAME))
    conds = c.wait_for("NetworkReady false", lambda: (lambda x: x if x["status"] is False else None)(
        {x["type"]: x for x in c.json("info")["status"]["conditions"]}["NetworkReady"]))
    assert conds["reason"] == "NetworkPluginNotReady" and env.d.cni_conf_dir in conds["message"], conds
    r = c.fails("runp", c.pod_file(c.pod_config()))
    assert "FailedPrecondition" in r.err and env.d.cni_conf_dir in r.err, r.err
    assert c.ok("rmp", pid).strip() == f"Removed sandbox {pid}"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read().decode()
    except (urllib.error.URLError, OSError):
        return None
def test_stats_statsp_and_imagefsinfo(crictl, pod_env):
    """crictl stats (ListContainerStats, with crictl's own CPU sampling),
    statsp (ListPodSandboxStats) and imagefsinfo (ImageFsInfo) on a pod with
    a container holding 30 MiB: what crid answers, as crictl prints it."""
    c, env = crictl, pod_env
    image, _ = busybox(env)
    c.ok("pull", image)
    pod = c.pod_config()
    pid = runp(c, pod)
    hold = "a=$(head -c 31457280 /dev/zero | tr '\\000' x); echo held; while true; do sleep 1; done"
    cid = create(c, pid, pod, c.ctr_config("stats", image, ["sh", "-c", hold]))
    c.ok("start", cid)
    wait_log_line(c, cid, "held")

    stats = c.json("stats", "-o", "json", "--pod", pid)["stats"]
    assert [s["attributes"]["id"] for s in stats] == [cid], stats
    s = stats[0]
    assert int(s["memory"]["workingSetBytes"]["value"]) >= 30 * 1024 * 1024, s
    assert int(s["cpu"]["usageCoreNanoSeconds"]["value"]) > 0, s
    assert s["writableLayer"]["fsId"]["mountpoint"] == os.path.join(env.d.state_root, "containers")
    # The table starts with a clear-screen sequence (crictl's --watch heritage).
    header, rows = parse_table(c.ok("stats", "--id", cid[:TRUNC]).replace("\x1b[2J\x1b[H", ""))
    assert header == ["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"], header
    assert len(rows) == 1 and cid.startswith(rows[0]["CONTAINER"]) and rows[0]["NAME"] == "stats", rows

    pods = c.json("statsp", "-o", "json", pid)["stats"]
    assert [p["attributes"]["id"] for p in pods] == [pid], pods
    lin = pods[0]["linux"]
    assert int(lin["memory"]["workingSetBytes"]["value"]) >= 30 * 1024 * 1024, lin
    assert [x["attributes"]["id"] for x in lin["containers"]] == [cid], lin

    fs = c.json("imagefsinfo", "-o", "json")
    assert int(fs["status"]["usedBytes"]["value"]) > 0, fs
def test_security_context_and_resources(crictl, pod_env):
    """What a node administrator sets in crictl's container config (seccomp,
    capabilities, user, groups, read-only root, resources) takes effect
    inside the container; `crictl update` changes resources in place; a
    missing Localhost profile is refused with the file named."""
    import security_helpers as sh
    c, env = crictl, pod_env
    image = sh.probe_image(env.rs)
    c.ok("pull", image)
    pod = c.pod_config()
    pid = runp(c, pod)
    cfg = c.ctr_config("restricted", image, ["sh", "-c", "while true; do sleep 0.1; done"])
    cfg["linux"] = {
        "security_context": {
            "seccomp": {"profile_type": 0},  # RuntimeDefault
            "capabilities": {"drop_capabilities": ["ALL"], "add_capabilities": ["NET_BIND_SERVICE"]},
            "run_as_user": {"value": 1000},
            "supplemental_groups": [3000],
            "readonly_rootfs": True,
            "no_new_privs": True,
            "namespace_options": {"network": 0, "pid": 1, "ipc": 0},
        },
        "resources": {"cpu_shares": 300, "memory_limit_in_bytes": 64 * 1024 * 1024},
    }
    cid = create(c, pid, pod, cfg)
    c.ok("start", cid)
    out = c.ok("exec", "-s", cid, "sh", "-c",
               "grep -E '^(Seccomp|CapBnd|NoNewPrivs):' /proc/self/status; id -u; id -G; sysprobe userns; "
               "if touch /x 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi")
    lines = out.split()
    assert "Seccomp:" in lines and lines[lines.index("Seccomp:") + 1] == "2", out
    # The bounding set (a non-root process has no effective ones).
    assert sh.caps_of(lines[lines.index("CapBnd:") + 1]) == {"CAP_NET_BIND_SERVICE"}, out
    assert lines[lines.index("NoNewPrivs:") + 1] == "1", out
    assert "userns=EPERM" in lines and "rootfs=ro" in lines and "1000" in lines and "3000" in lines, out
    st = inspect(c, cid)["status"]
    if "user" in st:  # crictl 1.26 predates ContainerStatus.user
        assert st["user"]["linux"]["uid"] == "1000", st["user"]

    c.ok("update", "--cpu-share", "600", "--memory", str(96 * 1024 * 1024), cid)
    got = env.status(cid).resources.linux
    assert (got.cpu_shares, got.memory_limit_in_bytes) == (600, 96 * 1024 * 1024), got
    assert c.ok("exec", "-s", cid, "cat", "/sys/fs/cgroup/cpu/cpu.shares").split() == ["600"]

    bad = c.ctr_config("bad-profile", image, ["true"])
    missing = os.path.join(env.d.tmp, "missing-profile.json")
    bad["linux"] = {"security_context": {"seccomp": {"profile_type": 2, "localhost_ref": missing}}}
    r = c.fails("create", pid, c.ctr_file(bad), c.pod_file(pod))
    assert "code = InvalidArgument" in r.err and missing in r.msg, r.err
    assert [x.metadata.name for x in env.list_ctrs()] == ["restricted"]
    c.ok("stopp", pid)
    c.ok("rmp", pid)
