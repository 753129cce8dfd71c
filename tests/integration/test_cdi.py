"""CDI devices, as a device plugin hands them to the kubelet and the kubelet
to the runtime: ContainerConfig.CDI_devices and the older cdi.k8s.io/
annotations, resolved against spec files the test writes (JSON and YAML)
into directories it gives crid, for harmless host devices: /dev/null,
/dev/zero and a loop device the test makes with losetup. Seen from inside
the container (device numbers, modes, what the device cgroup allows, the
spec's environment and mounts), from the host (a hook's marker file) and
through Status' verbose info (the registry, refused files). Every test
ends with pod_helpers' leak checks."""

import json
import os
import shutil
import subprocess
import tempfile
import time

import grpc
import pytest

import pod_helpers as ph
from crictl_helpers import SKIP_REASON, Crictl, find_crictl
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401

pytestmark = pytest.mark.usefixtures("hugetlb_v1")

CRICTL = find_crictl()
KIND = "example.com/test"


@pytest.fixture
def loop_device():
    """A loop device over a small file: (path, major, minor); detached at
    the end."""
    tmp = tempfile.mkdtemp(prefix="crid-it-cdi-loop-")
    backing = os.path.join(tmp, "disk.img")
    with open(backing, "wb") as f:
        f.truncate(1 << 20)
    dev = subprocess.run(["losetup", "--find", "--show", backing], check=True,
                         capture_output=True, text=True).stdout.strip()
    try:
        st = os.stat(dev)
        yield dev, os.major(st.st_rdev), os.minor(st.st_rdev)
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


class Specs:
    """Two spec directories (the second overrides the first) and a data
    directory the specs mount."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="crid-it-cdi-")
        self.dirs = [os.path.join(self.root, "etc-cdi"), os.path.join(self.root, "run-cdi")]
        for d in self.dirs:
            os.makedirs(d)
        self.data = os.path.join(self.root, "data")
        os.makedirs(self.data)
        with open(os.path.join(self.data, "hello.txt"), "w") as f:
            f.write("hello from the spec\n")
        self.markers = os.path.join(self.root, "markers")
        os.makedirs(self.markers)

    def write(self, name, spec, dir_index=0, text=None):
        """Writes a spec (a dict as JSON, or text as it is) atomically."""
        path = os.path.join(self.dirs[dir_index], name)
        tmp = os.path.join(self.root, "." + name)
        with open(tmp, "w") as f:
            f.write(text if text is not None else json.dumps(spec, indent=1))
        os.rename(tmp, path)
        return path

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def specs():
    s = Specs()
    yield s
    s.cleanup()


def base_spec(specs, loop):
    """example.com/test: null (rw, mode 0640, owner 1000:1001), zero (with
    the data mount), loop (the block device, read only, its numbers and
    mode from the spec); a spec-wide variable. (/dev/null and /dev/zero are
    in every container's device cgroup allow list: the loop device is the
    one whose permissions show.)"""
    dev, major, minor = loop
    return {
        "cdiVersion": "0.6.0",
        "kind": KIND,
        "containerEdits": {"env": ["CDI_SPEC=example"]},
        "devices": [
            {"name": "null", "containerEdits": {
                "env": ["CDI_NULL=yes"],
                "deviceNodes": [{"path": "/dev/cdi-null", "hostPath": "/dev/null",
                                 "permissions": "rw", "fileMode": 0o640,
                                 "uid": 1000, "gid": 1001}]}},
            {"name": "zero", "containerEdits": {
                "deviceNodes": [{"path": "/dev/cdi-zero", "hostPath": "/dev/zero",
                                 "permissions": "r"}],
                "mounts": [{"hostPath": specs.data, "containerPath": "/cdi-data",
                            "options": ["ro", "bind"]}]}},
            {"name": "loop", "containerEdits": {
                "deviceNodes": [{"path": "/dev/cdi-loop", "hostPath": dev, "type": "b",
                                 "major": major, "minor": minor, "fileMode": 0o600,
                                 "permissions": "r"}]}},
        ],
    }


def cdi_env(pod_env_factory, specs, flag=True):
    if flag:
        return pod_env_factory(args=["--cdi-spec-dirs", ":".join(specs.dirs)])
    return pod_env_factory(extra_config="cdi_spec_dirs: [%s]\n" % ", ".join(specs.dirs))


def cdi_info(env):
    resp = env.rt.Status(env.api.StatusRequest(verbose=True))
    return ph.info_json(resp, "cdi")


def wait_devices(env, names, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        info = cdi_info(env)
        if all(n in info["devices"] for n in names):
            return info
        assert time.monotonic() < deadline, f"CDI devices {names} not listed: {info}"
        time.sleep(0.1)


def with_cdi(cfg, *names):
    for n in names:
        cfg.CDI_devices.add(name=n)
    return cfg


# Prints what the test checks: type, numbers (hex, as stat shows them),
# mode and owner of each node, what the device cgroup lets through, the
# spec's variables and mount.
PROBE = ("for d in /dev/cdi-null /dev/cdi-zero /dev/cdi-loop; do "
         "  if [ -e $d ]; then echo \"$d $(stat -c '%F %t:%T %a %u:%g' $d)\"; else echo \"$d none\"; fi; done; "
         "if true > /dev/cdi-null; then echo null-write=ok; else echo null-write=no; fi; "
         "if true < /dev/cdi-zero; then echo zero-read=ok; else echo zero-read=no; fi; "
         "if true > /dev/cdi-loop; then echo loop-write=ok; else echo loop-write=no; fi; "
         "if head -c 512 /dev/cdi-loop > /dev/null; then echo loop-read=ok; else echo loop-read=no; fi; "
         "echo env=$CDI_SPEC,$CDI_NULL; cat /cdi-data/hello.txt 2>/dev/null || echo no-mount")


def node_line(path, kind, major, minor, mode, owner):
    return f"{path} {kind} {major:x}:{minor:x} {mode} {owner}"


@pytest.mark.parametrize("handler", ["crun", "runc"])
def test_devices_env_and_mounts_in_the_container(pod_env_factory, specs, loop_device, handler):
    dev, lmaj, lmin = loop_device
    specs.write("test.json", base_spec(specs, loop_device))
    env = cdi_env(pod_env_factory, specs)
    env.pull()
    pid, pcfg = env.new_pod(runtime_handler=handler)
    c = with_cdi(env.ctr_config("cdi", ["sh", "-c", PROBE]),
                 f"{KIND}=null", f"{KIND}=zero", f"{KIND}=loop")
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    assert env.wait_exited(cid).exit_code == 0
    zero_mode = f"{os.stat('/dev/zero').st_mode & 0o777:o}"
    assert env.output(pcfg, c) == [
        node_line("/dev/cdi-null", "character special file", 1, 3, "640", "1000:1001"),
        node_line("/dev/cdi-zero", "character special file", 1, 5, zero_mode, "0:0"),
        node_line("/dev/cdi-loop", "block special file", lmaj, lmin, "600", "0:0"),
        "null-write=ok", "zero-read=ok", "loop-write=no", "loop-read=ok",
        "env=example,yes", "hello from the spec"]
    # The spec-wide edits came once although three devices brought them.
    spec = ph.info_json(env.status_resp(cid, verbose=True))["runtimeSpec"]
    assert spec["process"]["env"].count("CDI_SPEC=example") == 1
    rules = [(r.get("type"), r.get("major"), r.get("minor"), r["access"])
             for r in spec["linux"]["resources"]["devices"] if r["allow"]]
    assert ("c", 1, 5, "r") in rules and ("b", lmaj, lmin, "r") in rules, rules


def test_all_and_a_device_named_all(pod_env_factory, specs, loop_device):
    specs.write("test.json", base_spec(specs, loop_device))
    # A kind that defines "all" itself: that device, not every one.
    specs.write("gpu.yaml", None, text=(
        "cdiVersion: 0.5.0\n"
        "kind: example.com/gpu\n"
        "devices:\n"
        "  - name: all\n"
        "    containerEdits:\n"
        "      env: [GPU=all]\n"
        "  - name: gpu0\n"
        "    containerEdits:\n"
        "      env: [GPU0=yes]\n"
        "      deviceNodes:\n"
        "        - {path: /dev/cdi-gpu0, hostPath: /dev/null}\n"))
    env = cdi_env(pod_env_factory, specs, flag=False)
    env.pull()
    pid, pcfg = env.new_pod()
    c = with_cdi(env.ctr_config("all", ["sh", "-c", PROBE + "; echo gpu=$GPU,$GPU0; "
                                        "test -e /dev/cdi-gpu0 && echo gpu0-node"]),
                 f"{KIND}=all", "example.com/gpu=all")
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    env.wait_exited(cid)
    out = env.output(pcfg, c)
    assert [ln.split(" ")[0] for ln in out[:3]] == ["/dev/cdi-null", "/dev/cdi-zero", "/dev/cdi-loop"]
    assert all(" none" not in ln for ln in out[:3]), out
    assert "env=example,yes" in out and "hello from the spec" in out, out
    assert "gpu=all," in out and "gpu0-node" not in out, out


@pytest.mark.parametrize("handler", ["crun", "runc"])
def test_hooks_reach_the_runtime(pod_env_factory, specs, handler):
    marker = os.path.join(specs.markers, "createContainer")
    runtime_marker = os.path.join(specs.markers, "createRuntime")
    poststop = os.path.join(specs.markers, "poststop")
    poststart = os.path.join(specs.markers, "poststart")
    specs.write("hooks.json", {
        "cdiVersion": "0.3.0", "kind": "example.com/hooked",
        "devices": [{"name": "h", "containerEdits": {"hooks": [
            {"hookName": "createContainer", "path": "/bin/sh",
             "args": ["sh", "-c", f"echo $MARK > {marker}"], "env": ["MARK=created"]},
            {"hookName": "createRuntime", "path": "/bin/sh",
             "args": ["sh", "-c", f"echo runtime > {runtime_marker}"]},
            {"hookName": "poststop", "path": "/bin/sh",
             "args": ["sh", "-c", f"echo stopped > {poststop}"], "timeout": 10},
            # In the container, before its process: the path is the image's.
            {"hookName": "startContainer", "path": "/bin/sh",
             "args": ["sh", "-c", "echo in-container > /tmp/start-marker"]},
            {"hookName": "poststart", "path": "/bin/sh",
             "args": ["sh", "-c", f"echo started > {poststart}"]},
        ]}}]})
    env = cdi_env(pod_env_factory, specs)
    env.pull()
    pid, pcfg = env.new_pod(runtime_handler=handler)
    c = with_cdi(env.ctr_config("hooked", ["sh", "-c", "echo up; cat /tmp/start-marker; sleep 300"]),
                 "example.com/hooked=h")
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    env.wait_output(pcfg, c, "in-container")
    hooks = ph.info_json(env.status_resp(cid, verbose=True))["runtimeSpec"]["hooks"]
    assert hooks["createContainer"] == [{"path": "/bin/sh", "args": ["sh", "-c", f"echo $MARK > {marker}"],
                                         "env": ["MARK=created"]}], hooks
    assert set(hooks) == {"createContainer", "createRuntime", "startContainer", "poststart", "poststop"}, hooks
    with open(marker) as f:
        assert f.read() == "created\n"
    with open(runtime_marker) as f:
        assert f.read() == "runtime\n"
    with open(poststart) as f:
        assert f.read() == "started\n"
    assert not os.path.exists(poststop)
    env.stop(cid)
    env.remove(cid)
    with open(poststop) as f:
        assert f.read() == "stopped\n"


def test_spec_added_while_running_and_later_directory_wins(pod_env_factory, specs):
    env = cdi_env(pod_env_factory, specs)
    env.pull()
    pid, pcfg = env.new_pod()
    assert cdi_info(env)["devices"] == {}
    assert cdi_info(env)["specDirs"] == specs.dirs
    specs.write("late.yaml", None, text=(
        "cdiVersion: \"0.8.0\"\nkind: example.com/late\ndevices:\n"
        "  - name: dev\n    containerEdits:\n      env: [\"WHERE=etc\"]\n"
        "      deviceNodes: [{path: /dev/cdi-late, hostPath: /dev/zero, fileMode: 0600}]\n"))
    # The watch picks it up on its own, before any container asks.
    wait_devices(env, ["example.com/late=dev"])
    check = "echo where=$WHERE; stat -c '%t:%T %a' /dev/cdi-late"
    c = with_cdi(env.ctr_config("late", ["sh", "-c", check]), "example.com/late=dev")
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    env.wait_exited(cid)
    assert env.output(pcfg, c) == ["where=etc", "1:5 600"]
    # The same device in the second directory overrides the first's.
    specs.write("late.json", {"cdiVersion": "0.8.0", "kind": "example.com/late", "devices": [
        {"name": "dev", "containerEdits": {"env": ["WHERE=run"],
                                           "deviceNodes": [{"path": "/dev/cdi-late",
                                                            "hostPath": "/dev/null"}]}}]},
                dir_index=1)
    late_json = os.path.join(specs.dirs[1], "late.json")
    deadline = time.monotonic() + 10
    while cdi_info(env)["devices"]["example.com/late=dev"] != late_json:
        assert time.monotonic() < deadline, cdi_info(env)
        time.sleep(0.1)
    c = with_cdi(env.ctr_config("late2", ["sh", "-c", check]), "example.com/late=dev")
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    env.wait_exited(cid)
    out = env.output(pcfg, c)
    assert out[0] == "where=run" and out[1].startswith("1:3 "), out


def test_unknown_and_conflicting_devices_are_refused(pod_env_factory, specs, loop_device):
    specs.write("test.json", base_spec(specs, loop_device))
    specs.write("other.json", {
        "cdiVersion": "0.6.0", "kind": "example.com/other",
        "devices": [{"name": "null", "containerEdits": {"deviceNodes": [
            {"path": "/dev/cdi-null", "hostPath": "/dev/zero"}]}},
                    {"name": "env", "containerEdits": {"env": ["CDI_SPEC=other"]}}]})
    env = cdi_env(pod_env_factory, specs)
    env.pull()
    pid, pcfg = env.new_pod()
    before = set(os.listdir(os.path.join(env.d.run_root, "containers")))
    cases = [
        ([f"{KIND}=nope"], [f"{KIND}=nope", specs.dirs[0], specs.dirs[1]]),
        (["example.com/missing=x"], ["example.com/missing=x", specs.dirs[0]]),
        (["not-qualified"], ["not-qualified", "fully-qualified"]),
        ([f"{KIND}=null", "example.com/other=null"],
         [f"{KIND}=null", "example.com/other=null", "/dev/cdi-null"]),
        ([f"{KIND}=zero", "example.com/other=env"],
         [f"{KIND}=zero", "example.com/other=env", "CDI_SPEC"]),
    ]
    for i, (names, needles) in enumerate(cases):
        c = with_cdi(env.ctr_config(f"bad{i}", ["true"]), *names)
        code, details = ph.rpc_code(env.create, pid, pcfg, c)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (names, code, details)
        for n in needles:
            assert n in details, (names, n, details)
    # Nothing was left: no container, no directory, the names free.
    assert env.list_ctrs() == []
    assert set(os.listdir(os.path.join(env.d.run_root, "containers"))) == before
    c = with_cdi(env.ctr_config("bad0", ["true"]), f"{KIND}=null")
    env.create(pid, pcfg, c)


def test_malformed_specs_do_not_break_the_valid_ones(pod_env_factory, specs, loop_device):
    specs.write("test.json", base_spec(specs, loop_device))
    broken = {
        "a-not-json.json": "{\"cdiVersion\": \"0.6.0\", ",
        "b-not-yaml.yaml": "cdiVersion: [unclosed\n",
        "c-bad-version.json": json.dumps({"cdiVersion": "9.9.9", "kind": "example.com/x",
                                          "devices": [{"name": "a", "containerEdits": {"env": ["A=1"]}}]}),
        "d-bad-kind.json": json.dumps({"cdiVersion": "0.6.0", "kind": "no-slash",
                                       "devices": [{"name": "a", "containerEdits": {"env": ["A=1"]}}]}),
        "e-unknown-field.json": json.dumps({"cdiVersion": "0.6.0", "kind": "example.com/x",
                                            "devices": [{"name": "a", "bogus": 1,
                                                         "containerEdits": {"env": ["A=1"]}}]}),
        "f-too-new.json": json.dumps({"cdiVersion": "0.3.0", "kind": "example.com/x",
                                      "devices": [{"name": "a", "containerEdits": {"additionalGids": [5]}}]}),
        "g-relative.json": json.dumps({"cdiVersion": "0.6.0", "kind": "example.com/x",
                                       "devices": [{"name": "a", "containerEdits": {
                                           "deviceNodes": [{"path": "dev/x"}]}}]}),
        "h-bad-hook.json": json.dumps({"cdiVersion": "0.6.0", "kind": "example.com/x",
                                       "devices": [{"name": "a", "containerEdits": {
                                           "hooks": [{"hookName": "whenever", "path": "/bin/true"}]}}]}),
        # The same device again in the same directory: the first file keeps it.
        "z-duplicate.json": json.dumps({"cdiVersion": "0.6.0", "kind": KIND,
                                        "devices": [{"name": "null", "containerEdits": {"env": ["DUP=1"]}}]}),
    }
    for name, text in broken.items():
        specs.write(name, None, text=text)
    env = cdi_env(pod_env_factory, specs)
    info = wait_devices(env, [f"{KIND}=null", f"{KIND}=zero", f"{KIND}=loop"])
    errors = info["errors"]
    for name in broken:
        assert os.path.join(specs.dirs[0], name) in errors, (name, errors)
    assert "cdiVersion" in errors[os.path.join(specs.dirs[0], "c-bad-version.json")]
    assert "kind" in errors[os.path.join(specs.dirs[0], "d-bad-kind.json")]
    assert "bogus" in errors[os.path.join(specs.dirs[0], "e-unknown-field.json")]
    assert "0.7.0" in errors[os.path.join(specs.dirs[0], "f-too-new.json")]
    assert "hookName" in errors[os.path.join(specs.dirs[0], "h-bad-hook.json")]
    test_json = os.path.join(specs.dirs[0], "test.json")
    assert test_json in errors[os.path.join(specs.dirs[0], "z-duplicate.json")]
    assert info["devices"][f"{KIND}=null"] == test_json, info
    assert not any(d.startswith("example.com/x=") for d in info["devices"]), info
    assert "CDI spec file refused" in env.d.stderr()
    env.pull()
    pid, pcfg = env.new_pod()
    c = with_cdi(env.ctr_config("valid", ["sh", "-c", PROBE]), f"{KIND}=zero")
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    env.wait_exited(cid)
    assert "hello from the spec" in env.output(pcfg, c)
    # A file fixed while crid runs is taken.
    specs.write("c-bad-version.json", None, text=json.dumps(
        {"cdiVersion": "0.7.0", "kind": "example.com/x",
         "devices": [{"name": "a", "containerEdits": {"env": ["A=1"], "additionalGids": [4242]}}]}))
    info = wait_devices(env, ["example.com/x=a"])
    assert os.path.join(specs.dirs[0], "c-bad-version.json") not in info["errors"]
    # Logged when refused, not again at each reload since.
    refused = [ln for ln in env.d.stderr().splitlines() if "CDI spec file refused" in ln]
    assert sum("a-not-json.json" in ln for ln in refused) == 1, refused
    c = with_cdi(env.ctr_config("gids", ["sh", "-c", "echo a=$A; id -G"]), "example.com/x=a")
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    env.wait_exited(cid)
    out = env.output(pcfg, c)
    assert out[0] == "a=1" and "4242" in out[1].split(), out


def test_plain_devices_beside_cdi(pod_env_factory, specs, loop_device):
    specs.write("test.json", base_spec(specs, loop_device))
    env = cdi_env(pod_env_factory, specs)
    env.pull()
    pid, pcfg = env.new_pod()
    c = with_cdi(env.ctr_config("both", ["sh", "-c",
                                         "stat -c '%t:%T' /dev/plain-null /dev/cdi-zero; "
                                         "if true > /dev/plain-null; then echo plain=ok; fi"]),
                 f"{KIND}=zero")
    c.devices.add(container_path="/dev/plain-null", host_path="/dev/null", permissions="rw")
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    env.wait_exited(cid)
    assert env.output(pcfg, c) == ["1:3", "1:5", "plain=ok"]


@pytest.mark.skipif(CRICTL is None, reason=SKIP_REASON)
def test_crictl_annotations(pod_env_factory, specs, loop_device):
    """crictl 1.26 predates CDI_devices: the annotations carry the names,
    as older kubelets sent them."""
    specs.write("test.json", base_spec(specs, loop_device))
    env = cdi_env(pod_env_factory, specs)
    c = Crictl(CRICTL, env)
    env.pull()
    info = c.json("info")
    assert f"{KIND}=loop" in info["cdi"]["devices"], info.get("cdi")
    pod = c.pod_config()
    pod_id = c.track_pod(c.ok("runp", c.pod_file(pod)).strip())
    ctr = c.ctr_config("cdi", env.image(), ["sh", "-c", "echo ready; sleep 300"])
    ctr["annotations"] = {"cdi.k8s.io/test": f"{KIND}=null, {KIND}=zero",
                          "cdi.k8s.io/more": f"{KIND}=null"}
    cid = c.track_ctr(c.ok("create", pod_id, c.ctr_file(ctr), c.pod_file(pod)).strip())
    c.ok("start", cid)
    out = c.ok("exec", "-s", cid, "sh", "-c",
               "stat -c '%n %t:%T' /dev/cdi-null /dev/cdi-zero; echo $CDI_SPEC; "
               "test -e /dev/cdi-loop || echo no-loop")
    assert out.split("\n")[:4] == ["/dev/cdi-null 1:3", "/dev/cdi-zero 1:5", "example", "no-loop"], out
    bad = c.ctr_config("bad", env.image(), ["true"])
    bad["annotations"] = {"cdi.k8s.io/test": f"{KIND}=gone"}
    r = c.fails("create", pod_id, c.ctr_file(bad), c.pod_file(pod))
    assert f"{KIND}=gone" in r.err and "InvalidArgument" in r.err, r.err
    assert [x for x in c.json("ps", "-a", "-o", "json")["containers"]
            if x["metadata"]["name"] == "bad"] == []


def test_go_client(pod_env_factory, specs, loop_device):
    """The Go client as a kubelet of 1.28 and later: the devices in
    CDI_devices, Status' verbose info listing them, an unknown one
    refused."""
    from test_go_client import CRICLIENT, assert_ok, run_client
    if not os.access(CRICLIENT, os.X_OK):
        pytest.fail(f"{CRICLIENT} is missing: `make criclient` builds it", pytrace=False)
    specs.write("test.json", base_spec(specs, loop_device))
    env = cdi_env(pod_env_factory, specs)
    rc, out, res = run_client(env, CRICLIENT, "cdi", "v1", [
        "--image", env.image(),
        "--devices", f"{KIND}=null,{KIND}=loop",
        "--check", "stat -c '%n %t:%T' /dev/cdi-null; test -e /dev/cdi-zero || echo no-zero; "
                   "echo $CDI_SPEC,$CDI_NULL",
        "--want", "/dev/cdi-null 1:3\nno-zero\nexample,yes\n",
        "--unknown", f"{KIND}=missing"], timeout=120)
    assert_ok(rc, out, res, "criclient cdi")
    assert len(res["pods"]) == 1 and len(res["containers"]) == 1, res


def test_directory_made_after_start(pod_env_factory, specs):
    """/var/run/cdi often appears only when a device plugin starts: a spec
    directory missing at start is watched once it exists."""
    os.rmdir(specs.dirs[1])
    env = cdi_env(pod_env_factory, specs)
    assert cdi_info(env)["devices"] == {}
    os.makedirs(specs.dirs[1])
    specs.write("plugin.json", {"cdiVersion": "0.5.0", "kind": "example.com/plugin", "devices": [
        {"name": "p0", "containerEdits": {"env": ["PLUGIN=p0"]}}]}, dir_index=1)
    info = wait_devices(env, ["example.com/plugin=p0"], timeout=15)
    assert info["devices"]["example.com/plugin=p0"] == os.path.join(specs.dirs[1], "plugin.json")
    # And a later change in it is seen as well.
    specs.write("plugin.json", {"cdiVersion": "0.5.0", "kind": "example.com/plugin", "devices": [
        {"name": "p1", "containerEdits": {"env": ["PLUGIN=p1"]}}]}, dir_index=1)
    deadline = time.monotonic() + 10
    while "example.com/plugin=p0" in cdi_info(env)["devices"]:
        assert time.monotonic() < deadline, cdi_info(env)
        time.sleep(0.1)
    assert "example.com/plugin=p1" in cdi_info(env)["devices"]
