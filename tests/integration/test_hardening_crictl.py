"""The hardening seen through crictl (cri-tools 1.26, a grpc-go client, as
node administrators use it): a log_path out of the pod's log directory and
oversized labels are refused naming the field, 100 MB of exec output comes
back truncated, and a container whose process never ran says why. Skipped,
saying so, when crictl is not present."""

import os
import warnings

import pytest

from crictl_helpers import SKIP_REASON, Crictl, find_crictl
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401
from test_crictl import busybox, create, inspect, runp, wait_state

CRICTL = find_crictl()
if CRICTL is None:
    warnings.warn(SKIP_REASON, pytest.PytestWarning)

pytestmark = [pytest.mark.skipif(CRICTL is None, reason=SKIP_REASON),
              pytest.mark.usefixtures("hugetlb_v1")]


@pytest.fixture
def crictl(pod_env):
    return Crictl(CRICTL, pod_env)


def test_refusals_name_the_field(crictl, pod_env, tmp_path):
    c, env = crictl, pod_env
    image, _ = busybox(env)
    c.ok("pull", image)
    heavy = c.pod_config(labels={f"k{i}": "v" * 1000 for i in range(300)})
    r = c.fails("runp", c.pod_file(heavy))
    assert "config.labels" in r.msg and "262144" in r.msg, r.err
    pod = c.pod_config()
    pid = runp(c, pod)
    target = tmp_path / "evil.log"
    ctr = c.ctr_config("evil", image, ["sh", "-c", "echo pwned"], log_path=str(target))
    r = c.fails("create", pid, c.ctr_file(ctr), c.pod_file(pod))
    assert "log_path" in r.msg and "relative" in r.msg, r.err
    assert not target.exists()
    c.ok("rmp", "-f", pid)


def test_exec_output_truncated(crictl, pod_env):
    c, env = crictl, pod_env
    image, _ = busybox(env)
    c.ok("pull", image)
    pod = c.pod_config()
    pid = runp(c, pod)
    cid = create(c, pid, pod, c.ctr_config("exec", image, ["sleep", "1000"]))
    c.ok("start", cid)
    out = c.ok("exec", "-s", cid, "sh", "-c", "head -c 100000000 /dev/zero; echo done >&2")
    cap = ((16 << 20) - 4096) // 2
    # stdout, a newline, stderr, a newline
    assert out == "\0" * cap + "\n" + "done\n" + "\n", (len(out), out[-20:])
    c.ok("rmp", "-f", pid)


def test_inspect_says_why_the_process_never_ran(crictl, pod_env):
    c, env = crictl, pod_env
    image, _ = busybox(env)
    c.ok("pull", image)
    pod = c.pod_config()
    pid = runp(c, pod)
    ctr = c.ctr_config("bigenv", image, ["sh", "-c", "echo never"], envs={"BIG": "x" * (1 << 20)})
    cid = create(c, pid, pod, ctr)
    c.ok("start", cid)
    st = wait_state(c, cid, "CONTAINER_EXITED")["status"]
    assert st["reason"] == "StartError", st
    assert "argument list too long" in st["message"].lower(), st["message"]
    assert inspect(c, cid)["status"]["message"] == st["message"]
    c.ok("rmp", "-f", pid)
