"""Container security, read from inside the container: seccomp (RuntimeDefault,
Localhost, Unconfined, privileged, the deprecated names, seccomp_default),
capabilities (/proc/self/status CapEff and CapAmb), users and groups (`id`,
ContainerStatus.user, the supplemental groups policies), no_new_privs, masked
and read-only /proc paths, sysctls, and AppArmor/SELinux requests this host
cannot enforce. Bad requests each get a clear error and leave nothing.

The calls are tried by sysprobe (security_helpers.py), a static program in
the sysprobe image. Every test ends with pod_helpers' leak checks."""

import json
import os

import grpc
import pytest

import pod_helpers as ph
import security_helpers as sh
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401

pytestmark = pytest.mark.usefixtures("hugetlb_v1")

PROBES = ["userns", "mount", "sethostname", "keyctl", "clone3", "personality", "vsock", "mkdir",
          "chroot"]


def probe_env(env):
    ref = sh.probe_image(env.rs)
    env.d.img().PullImage(env.api.PullImageRequest(image=env.api.ImageSpec(image=ref)),
                          timeout=ph.PULL_TIMEOUT_S)
    return ref


def run_probe(env, pid, cfg, name, ref, calls=PROBES, tweak=None, runtime_status=True):
    """Runs sysprobe in a container; returns ({call: result}, status fields)."""
    script = "grep -E '^(Seccomp|Cap|NoNewPrivs)' /proc/self/status; sysprobe " + " ".join(calls)
    c = env.ctr_config(name, ["sh", "-c", script], image=ref)
    if tweak:
        tweak(c)
    cid = env.create(pid, cfg, c)
    env.start(cid)
    st = env.wait_exited(cid)
    out = env.output(cfg, c)
    assert st.exit_code == 0, (name, st, out)
    return sh.parse_probe([x for x in out if "=" in x]), sh.status_fields(out)


def seccomp(kind, ref=""):
    def tweak(c):
        c.linux.security_context.seccomp.profile_type = kind
        if ref:
            c.linux.security_context.seccomp.localhost_ref = ref
    return tweak


def assert_refused(env, pid, cfg, c, code, *needles):
    """CreateContainer fails with code naming needles; nothing is left."""
    got, details = ph.rpc_code(env.create, pid, cfg, c)
    assert got == code, (got, details)
    for n in needles:
        assert n in details, f"{n!r} not in {details!r}"
    assert env.list_ctrs(pod=pid) == [] or all(
        x.metadata.name != c.metadata.name for x in env.list_ctrs(pod=pid))
    assert env.container_leaks("", cfg.linux.cgroup_parent) == [], "leftovers after a refused create"
    return details


# ---------------------------------------------------------------------------
# Seccomp


@pytest.mark.parametrize("handler", ["", "runc"], ids=["crun", "runc"])
def test_runtime_default_seccomp(pod_env, handler):
    env, a = pod_env, pod_env.api
    ref = probe_env(env)
    pid, cfg = env.new_pod(runtime_handler=handler)
    rd = a.SecurityProfile.RuntimeDefault

    # The default filter: namespaces, mounts and the hostname are denied
    # without CAP_SYS_ADMIN (which the container lacks: also the capability
    # check would refuse those, but unshare(CLONE_NEWUSER) needs none),
    # keyrings and vsock always, clone3 is ENOSYS so that glibc uses clone.
    res, st = run_probe(env, pid, cfg, "default", ref, tweak=seccomp(rd))
    assert st["Seccomp"] == "2", st
    assert res["userns"] == "EPERM", res
    assert res["mount"] == "EPERM" and res["sethostname"] == "EPERM", res
    assert res["keyctl"] == "EPERM" and res["vsock"] == "EPERM", res
    assert res["personality"] == "EPERM", res
    assert res["clone3"] == "ENOSYS", res
    assert res["mkdir"] == "OK" and res["chroot"] == "OK", res

    # Unconfined: unshare(CLONE_NEWUSER) works (no capability needed),
    # mount still fails, for want of the capability.
    res, st = run_probe(env, pid, cfg, "unconfined", ref, tweak=seccomp(a.SecurityProfile.Unconfined))
    assert st["Seccomp"] == "0", st
    assert res["userns"] == "OK" and res["clone3"] == "OK" and res["personality"] == "OK", res
    assert res["keyctl"] != "EPERM", res
    assert res["mount"] == "EPERM", res

    # The filter follows the capabilities: with CAP_SYS_ADMIN added, what
    # it gates goes through.
    def admin(c):
        seccomp(rd)(c)
        c.linux.security_context.capabilities.add_capabilities.append("CAP_SYS_ADMIN")
    res, st = run_probe(env, pid, cfg, "admin", ref, tweak=admin)
    assert st["Seccomp"] == "2", st
    assert res["mount"] == "OK" and res["sethostname"] == "OK" and res["userns"] == "OK", res
    assert res["clone3"] == "OK", res
    assert res["keyctl"] == "EPERM", res


def test_privileged_has_no_filter(pod_env):
    env, a = pod_env, pod_env.api
    ref = probe_env(env)
    pcfg = env.pod_config()
    pcfg.linux.security_context.privileged = True
    pid = env.run_pod(pcfg)

    def priv(c):
        seccomp(a.SecurityProfile.RuntimeDefault)(c)
        c.linux.security_context.privileged = True
    res, st = run_probe(env, pid, pcfg, "priv", ref, tweak=priv)
    assert st["Seccomp"] == "0", st
    assert res["mount"] == "OK" and res["sethostname"] == "OK" and res["userns"] == "OK", res
    assert res["keyctl"] != "EPERM", res


def write_profile(env, name, doc):
    path = os.path.join(env.d.tmp, name)
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return path


NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def test_localhost_profile(pod_env):
    env, a = pod_env, pod_env.api
    ref = probe_env(env)
    pid, cfg = env.new_pod()
    path = write_profile(env, "no-mkdir.json", NO_MKDIR)
    res, st = run_probe(env, pid, cfg, "local", ref, tweak=seccomp(a.SecurityProfile.Localhost, path))
    assert st["Seccomp"] == "2", st
    assert res["mkdir"] == "EPERM", res
    assert res["userns"] == "OK", ("only what the profile names is denied", res)

    # The deprecated field, "localhost/<path>".
    def deprecated(c):
        c.linux.security_context.seccomp_profile_path = "localhost/" + path
    res, _ = run_probe(env, pid, cfg, "local-old", ref, ["mkdir"], tweak=deprecated)
    assert res["mkdir"] == "EPERM", res

    # Docker's format: archMap for the host, a rule kept only when the
    # container holds CAP_SYS_ADMIN (it does not), another only on a
    # kernel from 99.0 on (this one is older).
    docker = {"defaultAction": "SCMP_ACT_ALLOW",
              "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                           "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                          {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                            "includes": {"caps": ["CAP_SYS_ADMIN"]}, "comment": "admins only"},
                           {"names": ["chroot"], "action": "SCMP_ACT_ERRNO",
                            "includes": {"minKernel": "99.0"}},
                           {"name": "keyctl", "action": "SCMP_ACT_ERRNO",
                            "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    path2 = write_profile(env, "docker.json", docker)
    res, _ = run_probe(env, pid, cfg, "docker", ref, ["mkdir", "chroot", "keyctl"],
                       tweak=seccomp(a.SecurityProfile.Localhost, path2))
    assert res == {"mkdir": "OK", "chroot": "OK", "keyctl": "EPERM"}, res


def test_seccomp_default_option(pod_env_factory):
    env = pod_env_factory(extra_config="seccomp_default: true\n")
    a = env.api
    ref = probe_env(env)
    pid, cfg = env.new_pod()
    res, st = run_probe(env, pid, cfg, "none", ref, ["userns"])
    assert st["Seccomp"] == "2" and res["userns"] == "EPERM", (st, res)
    res, st = run_probe(env, pid, cfg, "unconfined", ref, ["userns"],
                        tweak=seccomp(a.SecurityProfile.Unconfined))
    assert st["Seccomp"] == "0" and res["userns"] == "OK", (st, res)
    for name, want in (("runtime/default", "2"), ("docker/default", "2"), ("unconfined", "0")):
        def old(c, name=name):
            c.linux.security_context.seccomp_profile_path = name
        _, st = run_probe(env, pid, cfg, "old-" + name.replace("/", "-"), ref, [], tweak=old)
        assert st["Seccomp"] == want, (name, st)
    info = json.loads(dict(env.rt.Status(a.StatusRequest(verbose=True)).info)["config"])
    assert info["seccomp_default"] is True


def test_bad_seccomp_profiles(pod_env):
    env, a = pod_env, pod_env.api
    ref = probe_env(env)
    pid, cfg = env.new_pod()
    lh = a.SecurityProfile.Localhost
    missing = os.path.join(env.d.tmp, "missing.json")
    cases = [
        (missing, ["missing.json", "No such file"]),
        (write_profile(env, "broken.json", "{not json"), ["broken.json", "not JSON"]),
        (write_profile(env, "action.json", {"defaultAction": "SCMP_ACT_ALLOW",
                                            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_MAYBE"}]}),
         ["action.json", "syscalls[0].action", "SCMP_ACT_MAYBE"]),
        (write_profile(env, "arch.json", {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86"]}),
         ["arch.json", "architectures[0]"]),
        (write_profile(env, "key.json", {"defaultAction": "SCMP_ACT_ALLOW", "syscall": []}),
         ["key.json", "unknown key \"syscall\""]),
        ("relative/profile.json", ["not an absolute path"]),
    ]
    for i, (path, needles) in enumerate(cases):
        c = env.ctr_config(f"bad{i}", ["true"], image=ref)
        seccomp(lh, path)(c)
        assert_refused(env, pid, cfg, c, grpc.StatusCode.INVALID_ARGUMENT,
                       "linux.security_context.seccomp: localhost profile", *needles)
    c = env.ctr_config("bad-old", ["true"], image=ref)
    c.linux.security_context.seccomp_profile_path = "strict"
    assert_refused(env, pid, cfg, c, grpc.StatusCode.INVALID_ARGUMENT, "seccomp_profile_path", "strict")
    # A pod whose own profile file is missing is refused before anything is made.
    pcfg = env.pod_config()
    pcfg.linux.security_context.seccomp.profile_type = lh
    pcfg.linux.security_context.seccomp.localhost_ref = missing
    code, details = ph.rpc_code(env.run_pod, pcfg)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "missing.json" in details, (code, details)
    assert len(env.list_pods()) == 1


# ---------------------------------------------------------------------------
# Capabilities


def test_capabilities(pod_env):
    env, a = pod_env, pod_env.api
    ref = probe_env(env)
    pid, cfg = env.new_pod()

    _, st = run_probe(env, pid, cfg, "defaults", ref, [])
    assert sh.caps_of(st["CapEff"]) == sh.DOCKER_DEFAULT_CAPS, sh.caps_of(st["CapEff"])
    assert sh.caps_of(st["CapAmb"]) == set(), st

    def add_drop(c):
        c.linux.security_context.capabilities.add_capabilities.extend(["NET_ADMIN", "cap_sys_time"])
        c.linux.security_context.capabilities.drop_capabilities.append("CHOWN")
    _, st = run_probe(env, pid, cfg, "add-drop", ref, [], tweak=add_drop)
    assert sh.caps_of(st["CapEff"]) == \
        (sh.DOCKER_DEFAULT_CAPS | {"CAP_NET_ADMIN", "CAP_SYS_TIME"}) - {"CAP_CHOWN"}, st

    def only_bind(c):
        c.linux.security_context.capabilities.drop_capabilities.append("ALL")
        c.linux.security_context.capabilities.add_capabilities.append("NET_BIND_SERVICE")
        c.linux.security_context.capabilities.add_ambient_capabilities.append("NET_BIND_SERVICE")
        c.linux.security_context.run_as_user.value = 1000
    _, st = run_probe(env, pid, cfg, "ambient", ref, [], tweak=only_bind)
    # A non-root process keeps an ambient capability across execve.
    assert sh.caps_of(st["CapEff"]) == {"CAP_NET_BIND_SERVICE"}, st
    assert sh.caps_of(st["CapAmb"]) == {"CAP_NET_BIND_SERVICE"}, st

    def no_new_privs(c):
        c.linux.security_context.no_new_privs = True
    _, st = run_probe(env, pid, cfg, "nnp", ref, [], tweak=no_new_privs)
    assert st["NoNewPrivs"] == "1", st

    for field, name, code in (("add_capabilities", "CAP_FLY", grpc.StatusCode.INVALID_ARGUMENT),
                              ("drop_capabilities", "NOPE", grpc.StatusCode.INVALID_ARGUMENT)):
        c = env.ctr_config("bad-" + field, ["true"], image=ref)
        getattr(c.linux.security_context.capabilities, field).append(name)
        assert_refused(env, pid, cfg, c, code, f"capabilities.{field}[0]", name)


def test_privileged_capabilities_and_paths(pod_env):
    env, a = pod_env, pod_env.api
    ref = probe_env(env)
    pcfg = env.pod_config()
    pcfg.linux.security_context.privileged = True
    pid = env.run_pod(pcfg)
    script = ("grep CapEff /proc/self/status; "
              "if cat /proc/sys/kernel/hostname > /proc/sys/kernel/hostname; "
              "then echo procsys=rw; else echo procsys=ro; fi; "
              "echo devices=$(ls /dev | wc -l); "
              "grep -E ' /sys (ro|rw),' /proc/self/mountinfo | cut -d' ' -f6 | cut -c1-2 | sed 's/^/sysfs=/'; "
              "echo masked=$(grep -c ' /proc/kcore ' /proc/self/mountinfo)")
    c = env.ctr_config("priv", ["sh", "-c", script], image=ref)
    c.linux.security_context.privileged = True
    cid = env.create(pid, pcfg, c)
    env.start(cid)
    assert env.wait_exited(cid).exit_code == 0
    out = env.output(pcfg, c)
    fields = dict(x.split("=", 1) for x in out if "=" in x)
    with open("/proc/self/status") as f:
        held = sh.caps_of(sh.status_fields(f.read().splitlines())["CapPrm"])
    assert sh.caps_of(sh.status_fields(out)["CapEff"]) == held, out
    assert fields["procsys"] == "rw" and fields["sysfs"] == "rw" and fields["masked"] == "0", out
    assert int(fields["devices"]) > 20, ("the host's devices", out)
    # And a privileged container needs a privileged pod.
    pid2, cfg2 = env.new_pod()
    c2 = env.ctr_config("priv2", ["true"], image=ref)
    c2.linux.security_context.privileged = True
    assert_refused(env, pid2, cfg2, c2, grpc.StatusCode.INVALID_ARGUMENT, "the pod sandbox is not privileged")


# ---------------------------------------------------------------------------
# Users and groups


def test_users_and_groups(pod_env):
    env, a = pod_env, pod_env.api
    ref = probe_env(env)
    pid, cfg = env.new_pod()
    feats = env.rt.Status(a.StatusRequest()).features
    assert feats.supplemental_groups_policy, feats

    def run_id(name, tweak):
        c = env.ctr_config(name, ["sh", "-c", "id -u; id -g; id -G"], image=ref)
        tweak(c.linux.security_context)
        cid = env.create(pid, cfg, c)
        env.start(cid)
        assert env.wait_exited(cid).exit_code == 0
        out = env.output(cfg, c)
        return cid, int(out[0]), int(out[1]), sorted(int(g) for g in out[2].split())

    # The image's /etc/group lists "app" in group extra (2000): merged.
    def merge(sc):
        sc.run_as_username = "app"
        sc.supplemental_groups.append(3000)
    cid, uid, gid, groups = run_id("merge", merge)
    assert (uid, gid, groups) == (1000, 1000, [1000, 2000, 3000]), (uid, gid, groups)
    user = env.status(cid).user.linux
    assert (user.uid, user.gid, sorted(user.supplemental_groups)) == (1000, 1000, [1000, 2000, 3000]), user

    def strict(sc):
        merge(sc)
        sc.supplemental_groups_policy = a.Strict
    cid, uid, gid, groups = run_id("strict", strict)
    assert groups == [1000, 3000], ("Strict: no groups from the image", groups)
    assert sorted(env.status(cid).user.linux.supplemental_groups) == [1000, 3000]

    # run_as_group with a uid: the group asked for, and the user's groups.
    def uid_gid(sc):
        sc.run_as_user.value = 1000
        sc.run_as_group.value = 500
    _, uid, gid, groups = run_id("uid-gid", uid_gid)
    assert (uid, gid) == (1000, 500) and 500 in groups and 2000 in groups, (uid, gid, groups)

    c = env.ctr_config("nobody", ["true"], image=ref)
    c.linux.security_context.run_as_username = "nobody-here"
    assert_refused(env, pid, cfg, c, grpc.StatusCode.NOT_FOUND, "no user nobody-here")


def test_masked_and_readonly_paths(pod_env):
    env, a = pod_env, pod_env.api
    ref = probe_env(env)
    pid, cfg = env.new_pod()
    script = ("echo keys=$(grep -c ' /proc/keys ' /proc/self/mountinfo); "
              "if echo 1 > /proc/sys/kernel/hostname 2>/dev/null; then echo sys=rw; else echo sys=ro; fi; "
              "if [ -e /proc/timer_list ]; then echo timer=$(wc -c < /proc/timer_list); fi")
    st, out = env.run_to_exit(pid, cfg, "defaults", ["sh", "-c", script], image=ref)
    assert "keys=1" in out and "sys=ro" in out and "timer=0" in out, out
    # The kubelet's own lists replace the defaults.
    c = env.ctr_config("given", ["sh", "-c", script], image=ref)
    c.linux.security_context.masked_paths.append("/proc/timer_list")
    c.linux.security_context.readonly_paths.append("/proc/bus")
    cid = env.create(pid, cfg, c)
    env.start(cid)
    env.wait_exited(cid)
    out = env.output(cfg, c)
    assert "sys=rw" in out and "timer=0" in out and "keys=0" in out, out
    bad = env.ctr_config("bad-masked", ["true"], image=ref)
    bad.linux.security_context.masked_paths.append("proc/kcore")
    assert_refused(env, pid, cfg, bad, grpc.StatusCode.INVALID_ARGUMENT, "masked_paths[0]")


def test_non_namespaced_sysctl_refused(pod_env):
    env = pod_env
    before = len(env.list_pods())
    for key in ("vm.swappiness", "kernel.panic", "net.core.rmem_max"):
        pcfg = env.pod_config(sysctls={key: "1"})
        code, details = ph.rpc_code(env.run_pod, pcfg)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and key in details, (key, code, details)
    assert len(env.list_pods()) == before
    assert ph.paths_named(env.d.run_root + "/pods", [""]) == [] or \
        os.listdir(env.d.run_root + "/pods") == []


# ---------------------------------------------------------------------------
# AppArmor and SELinux on a host with neither


def test_lsm_requests_without_lsm(pod_env):
    env, a = pod_env, pod_env.api
    if os.path.exists("/sys/kernel/security/apparmor") or os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("this host runs AppArmor or SELinux")
    ref = probe_env(env)
    pid, cfg = env.new_pod()
    # Nothing in particular asked for: accepted.
    c = env.ctr_config("aa-default", ["true"], image=ref)
    c.linux.security_context.apparmor.profile_type = a.SecurityProfile.RuntimeDefault
    cid = env.create(pid, cfg, c)
    env.remove(cid)
    # A profile that must be enforced, and SELinux labels: refused.
    c = env.ctr_config("aa-local", ["true"], image=ref)
    c.linux.security_context.apparmor.profile_type = a.SecurityProfile.Localhost
    c.linux.security_context.apparmor.localhost_ref = "k8s-nginx"
    assert_refused(env, pid, cfg, c, grpc.StatusCode.FAILED_PRECONDITION, "k8s-nginx",
                   "AppArmor is not enabled")
    c = env.ctr_config("se", ["true"], image=ref)
    c.linux.security_context.selinux_options.type = "spc_t"
    assert_refused(env, pid, cfg, c, grpc.StatusCode.FAILED_PRECONDITION, "selinux_options",
                   "SELinux is not enabled")
    pcfg = env.pod_config()
    pcfg.linux.security_context.selinux_options.level = "s0:c1,c2"
    code, details = ph.rpc_code(env.run_pod, pcfg)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "SELinux" in details, (code, details)
