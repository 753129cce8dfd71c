"""Hardening against hostile registries and images: images of many layers
run (the overlay's options fit one page), a decompression bomb stops at the
state file system's free-space reserve and leaves nothing behind, and the
layer unpacker dies with crid.

Real registries (registry_fixtures), real crun, real kernel."""

import gzip
import io
import os
import shutil
import signal
import tarfile
import time
import zlib

import grpc
import pytest

import image_builder as ib
import pod_helpers as ph
from netfault import FaultProxy
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401
from registry_fixtures import push
from test_images import layer_dirs, tmp_entries

pytestmark = pytest.mark.usefixtures("hugetlb_v1")


def many_layer_image(n):
    """busybox's binary layer under n - 1 layers of one small file each."""
    layers = [ib.busybox_layers("gzip")[0]]
    for i in range(1, n):
        layers.append(ib.Layer([ib.Dir("/l"), ib.File(f"/l/{i:03d}", f"{i}\n")], "gzip",
                               comment=f"layer {i}"))
    return ib.Image(layers, cmd=["/bin/sh"], env=[ib.DEFAULT_PATH_ENV], name=f"layers-{n}")


def test_image_of_64_layers_runs(pod_env):
    env = pod_env
    push(env.rs.plain, "layers64", "latest", many_layer_image(64))
    env.pull("layers64")
    pid, cfg = env.new_pod()
    cid, ccfg = env.run(pid, cfg, "many", ["sh", "-c", "ls /l | wc -l; cat /l/063"],
                        repo="layers64")
    st = env.wait_exited(cid)
    assert st.exit_code == 0, st
    assert [x.strip() for x in env.output(cfg, ccfg)] == ["63", "63"]
    # The mount names its layers by short links: the options stay short.
    env.remove(cid)
