"""The floor of a pod start: the same pod made from the bare pieces, no CRI.

What every CRI runtime has to do for a pod with a busybox `sleep` container
on a CNI network, and nothing more, each step timed from here:

    namespaces  `unshare --net=F --ipc=F --uts=F true`: the pod's network, IPC
                and UTS namespaces, pinned by bind mounts (as runtimes pin
                them), in one process
    network     the CNI plugins of the conflist called directly, in order
                (loopback, bridge + host-local, portmap), each with the
                previous one's result, as libcni does (CNI_COMMAND=ADD)
    rootfs      an overlay mount of the unpacked busybox layer (one mount(2))
    container   `crun create` + `crun start` of that bundle, joining the
                pinned namespaces; stdout/stderr to a log file

Teardown (timed too): crun kill + delete, CNI DEL in reverse order,
unmounts. Everything is kept under the caller's temp dir, crun's state
under its own --root; cleanup() undoes whatever is left, also after a
failure half-way.

    f = Floor(tmp, layer_tars, conflist_text, crun="/usr/bin/crun", cgroup_parent="/bench-x")
    times = f.start_pod()          # {"namespaces": s, "network": s, "rootfs": s, "container": s, "total": s}
    f.exec(pod, ["true"])          # seconds: crun exec, the floor of ExecSync
    f.teardown(pod)                # seconds
    f.cleanup()
"""

import copy
import ctypes
import io
import json
import os
import secrets
import subprocess
import tarfile
import time

CNI_BIN_DIR = "/usr/lib/cni"
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
MNT_DETACH = 2

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _mount(src, target, fstype, flags, data):
    if _libc.mount(src.encode() if src else None, target.encode(),
                   fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                   data.encode() if data else None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {src} on {target}: {os.strerror(e)}")


def _umount(target):
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"umount {target}: {os.strerror(e)}")


def _run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: "
                           f"{(r.stderr or b'').decode(errors='replace').strip()}")
    return r


class FloorPod:
    def __init__(self, pid):
        self.id = pid
        self.ns = {}          # kind -> pinned file
        self.cni_done = []    # plugin confs whose ADD succeeded
        self.rootfs = None
        self.created = False


class Floor:
    def __init__(self, tmp, layer_tars, conflist, crun="/usr/bin/crun", cgroup_parent="/bench-floor",
                 cni_bin_dir=CNI_BIN_DIR):
        self.tmp = tmp
        self.crun = crun
        self.cni_bin_dir = cni_bin_dir
        self.cgroup_parent = cgroup_parent
        self.conflist = json.loads(conflist)
        self.pods = []
        self.ns_dir = os.path.join(tmp, "ns")
        self.crun_root = os.path.join(tmp, "crun")
        self.lower = os.path.join(tmp, "busybox")
        for d in (self.ns_dir, self.crun_root, self.lower, os.path.join(tmp, "pods")):
            os.makedirs(d, exist_ok=True)
        for t in layer_tars:
            with tarfile.open(fileobj=io.BytesIO(t)) as tf:
                tf.extractall(self.lower)
        # Namespace files can only be bind-mounted onto a private mount.
        _mount(self.ns_dir, self.ns_dir, None, MS_BIND, None)
        self.ns_mounted = True
        _mount(None, self.ns_dir, None, MS_PRIVATE, None)
        out = _run([crun, "spec", "-b", tmp])
        del out
        with open(os.path.join(tmp, "config.json")) as f:
            self.spec = json.load(f)

    # -- one pod -----------------------------------------------------------

    def _cni(self, pod, command, plugins, prev=None):
        netns = pod.ns["net"]
        for p in plugins:
            conf = dict(p)
            conf["name"] = self.conflist["name"]
            conf["cniVersion"] = self.conflist["cniVersion"]
            if prev is not None:
                conf["prevResult"] = prev
            env = {"CNI_COMMAND": command, "CNI_CONTAINERID": pod.id, "CNI_NETNS": netns,
                   "CNI_IFNAME": "eth0", "CNI_PATH": self.cni_bin_dir, "PATH": os.environ["PATH"]}
            r = subprocess.run([os.path.join(self.cni_bin_dir, p["type"])], input=json.dumps(conf).encode(),
                               env=env, capture_output=True)
            if r.returncode != 0:
                raise RuntimeError(f"CNI {command} {p['type']}: exit {r.returncode}: "
                                   f"{r.stdout.decode(errors='replace')} {r.stderr.decode(errors='replace')}")
            if command == "ADD":
                pod.cni_done.append(p)
                if r.stdout.strip():
                    prev = json.loads(r.stdout)
        return prev

    def _bundle(self, pod):
        spec = copy.deepcopy(self.spec)
        spec["process"]["args"] = ["sleep", "3600"]
        spec["process"]["terminal"] = False
        spec["process"]["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        spec["root"] = {"path": pod.rootfs, "readonly": False}
        spec["hostname"] = pod.id[:12]
        ns = [n for n in spec["linux"]["namespaces"] if n["type"] not in ("network", "ipc", "uts")]
        for kind, typ in (("net", "network"), ("ipc", "ipc"), ("uts", "uts")):
            ns.append({"type": typ, "path": pod.ns[kind]})
        spec["linux"]["namespaces"] = ns
        spec["linux"]["cgroupsPath"] = f"{self.cgroup_parent}/{pod.id}"
        bundle = os.path.join(self.tmp, "pods", pod.id)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        return bundle

    def start_pod(self):
        """Starts one pod; answers (pod, {step: seconds})."""
        pod = FloorPod("floor" + secrets.token_hex(8))
        self.pods.append(pod)
        pdir = os.path.join(self.tmp, "pods", pod.id)
        for d in ("upper", "work", "rootfs"):
            os.makedirs(os.path.join(pdir, d))
        files = {k: os.path.join(self.ns_dir, f"{pod.id}-{k}") for k in ("net", "ipc", "uts")}
        for f in files.values():
            open(f, "w").close()
        t = {}
        t0 = time.perf_counter()
        r = subprocess.run(["unshare", f"--net={files['net']}", f"--ipc={files['ipc']}",
                            f"--uts={files['uts']}", "true"], capture_output=True)
        pod.ns = files  # unmounted in teardown even if unshare failed half-way
        if r.returncode != 0:
            raise RuntimeError(f"unshare: {r.stderr.decode(errors='replace').strip()}")
        t1 = time.perf_counter()
        self._cni(pod, "ADD", self.conflist["plugins"])
        t2 = time.perf_counter()
        rootfs = os.path.join(pdir, "rootfs")
        _mount("overlay", rootfs, "overlay", 0,
               f"lowerdir={self.lower},upperdir={pdir}/upper,workdir={pdir}/work")
        pod.rootfs = rootfs
        t3 = time.perf_counter()
        bundle = self._bundle(pod)
        # The container inherits stdout and stderr: a file, never a pipe
        # (a pipe would stay open as long as the container runs).
        log_path = os.path.join(pdir, "sleep.log")
        with open(log_path, "ab") as log:
            r = subprocess.run([self.crun, "--root", self.crun_root, "create", "--bundle", bundle, pod.id],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if r.returncode != 0:
            with open(log_path, "rb") as log:
                raise RuntimeError(f"crun create: {log.read()[-2000:].decode(errors='replace').strip()}")
        pod.created = True
        _run([self.crun, "--root", self.crun_root, "start", pod.id])
        t4 = time.perf_counter()
        t.update(namespaces=t1 - t0, network=t2 - t1, rootfs=t3 - t2, container=t4 - t3, total=t4 - t0)
        return pod, t

    def exec(self, pod, argv):
        """`crun exec` of argv in pod's container, output to a pipe (it
        ends with the command); answers the seconds it took."""
        t0 = time.perf_counter()
        _run([self.crun, "--root", self.crun_root, "exec", pod.id] + list(argv))
        return time.perf_counter() - t0

    def teardown(self, pod):
        """Stops and removes pod; answers the seconds it took."""
        t0 = time.perf_counter()
        if pod.created:
            subprocess.run([self.crun, "--root", self.crun_root, "kill", pod.id, "KILL"],
                           capture_output=True)
            _run([self.crun, "--root", self.crun_root, "delete", "--force", pod.id])
            pod.created = False
        if pod.cni_done:
            self._cni(pod, "DEL", list(reversed(pod.cni_done)))
            pod.cni_done = []
        if pod.rootfs:
            _umount(pod.rootfs)
            pod.rootfs = None
        for f in pod.ns.values():
            try:
                _umount(f)
            except OSError:
                pass  # never pinned
        pod.ns = {}
        d = time.perf_counter() - t0
        self.pods.remove(pod)
        return d

    def cleanup(self):
        """Tears down every pod left, then the namespace mount."""
        problems = []
        for pod in list(self.pods):
            try:
                self.teardown(pod)
            except Exception as e:  # keep going: the rest must go too
                problems.append(f"floor pod {pod.id}: {e}")
                if pod in self.pods:
                    self.pods.remove(pod)
        if self.ns_mounted:
            try:
                _umount(self.ns_dir)
            except OSError as e:
                problems.append(str(e))
            self.ns_mounted = False
        return problems


# -- the floor of a pull ------------------------------------------------------


def pull(registry_host, repo, tag, dest):
    """What any pull of repo:tag from a plain-HTTP registry must do, and no
    more: GET the manifest, the config and each layer (checking each
    digest), and unpack the layers into dest with tar (gzip in-process by
    tar's child). Answers the seconds it took."""
    import hashlib
    import urllib.request

    accept = ", ".join(("application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json"))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    base = f"http://{registry_host}/v2/{repo}"

    def get(path, digest=None, headers=None):
        with opener.open(urllib.request.Request(base + path, headers=headers or {}), timeout=120) as r:
            data = r.read()
        if digest and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError(f"{path}: digest mismatch")
        return data

    os.makedirs(dest, exist_ok=True)
    t0 = time.perf_counter()
    manifest = json.loads(get(f"/manifests/{tag}", headers={"Accept": accept}))
    get(f"/blobs/{manifest['config']['digest']}", manifest["config"]["digest"])
    for layer in manifest["layers"]:
        blob = get(f"/blobs/{layer['digest']}", layer["digest"])
        r = subprocess.run(["tar", "-xz", "-C", dest], input=blob, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"tar: {r.stderr.decode(errors='replace').strip()}")
    return time.perf_counter() - t0
