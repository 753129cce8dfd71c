"""Images and the containers made from them: the layers of a container's
root file system stay while the container does, even when its image is
removed, and go once nothing uses them."""

import os

import pytest

import pod_helpers as ph
from pod_helpers import hugetlb_v1, pod_env, pod_env_factory, registry_set  # noqa: F401


def layer_dirs(env):
    path = os.path.join(env.d.state_root, "layers")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_removed_image_keeps_layers_of_running_container(pod_env):
    env = pod_env
    image_id = env.pull()
    pod_id, pod_cfg = env.new_pod()
    cid, _ = env.run(pod_id, pod_cfg, "user", command=["sleep", "1000"])
    layers = layer_dirs(env)
    assert layers
    api = ph.api()
    env.d.img().RemoveImage(api.RemoveImageRequest(image=api.ImageSpec(image=image_id)))
    assert not env.d.img().ImageStatus(
        api.ImageStatusRequest(image=api.ImageSpec(image=image_id))).HasField("image")
    # The container still reads its root file system through the layers.
    assert layer_dirs(env) == layers
    out = env.exec_sync(cid, ["cat", "/data/kept.txt"], timeout=10)
    assert out.exit_code == 0 and out.stdout == b"kept\n"
    env.stop(cid)
    env.remove(cid)
    assert layer_dirs(env) == []


def test_container_layers_survive_restart_then_go(pod_env):
    env = pod_env
    image_id = env.pull()
    pod_id, pod_cfg = env.new_pod(runtime_handler="runc")
    cid, _ = env.run(pod_id, pod_cfg, "user", command=["sleep", "1000"])
    api = ph.api()
    env.d.img().RemoveImage(api.RemoveImageRequest(image=api.ImageSpec(image=image_id)))
    env.kill_daemon()
    env.start_daemon()
    assert layer_dirs(env), "a restart must not collect layers a container uses"
    env.stop(cid)
    env.remove(cid)
    assert layer_dirs(env) == []
