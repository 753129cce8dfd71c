"""The listening socket: creation, permissions, stale files, single instance,
removal on shutdown."""

import os
import signal
import socket
import stat
import time


def test_parent_dir_created_and_mode_0660(daemon_factory):
    d = daemon_factory()
    nested = os.path.join(d.tmp, "a", "b", "c")
    assert not os.path.exists(os.path.join(d.tmp, "a"))
    d.socket_path = os.path.join(nested, "crid.sock")
    d.start()

    assert os.path.isdir(nested), "socket's parent directories were not created"
    st = os.stat(d.socket_path)
    assert stat.S_ISSOCK(st.st_mode), f"{d.socket_path} is not a socket (mode {st.st_mode:o})"
    assert stat.S_IMODE(st.st_mode) == 0o660, f"socket mode is {stat.S_IMODE(st.st_mode):04o}, want 0660"
    assert d.rt().Version().runtime_name == "crid"


def test_stale_socket_is_replaced(daemon_factory):
    d = daemon_factory()
    # What a crash leaves behind: a socket file nobody listens on.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(d.socket_path)
    s.close()
    assert stat.S_ISSOCK(os.stat(d.socket_path).st_mode)
    assert not d.accepts_connections()

    d.start()
    resp = d.rt().Version()
    assert resp.runtime_name == "crid"
    assert stat.S_IMODE(os.stat(d.socket_path).st_mode) == 0o660


def test_second_instance_on_same_socket_is_refused(daemon_factory):
    first = daemon_factory().start()
    inode_before = os.stat(first.socket_path).st_ino

    second = daemon_factory(socket_path=first.socket_path)
    t0 = time.monotonic()
    rc, _, err = second.run_to_exit(timeout=15)
    elapsed = time.monotonic() - t0

    assert rc != 0, f"second crid exited with 0; stderr:\n{err}"
    assert elapsed < 10, f"second crid took {elapsed:.1f}s to give up"
    assert "already" in err, f"stderr of the second crid does not say 'already':\n{err}"
    assert first.socket_path in err, f"stderr of the second crid does not name the socket:\n{err}"

    # The first one is untouched: same socket file, still serving.
    assert first.alive()
    assert os.path.exists(first.socket_path), "the second crid removed the first one's socket"
    assert os.stat(first.socket_path).st_ino == inode_before, "the socket file was replaced"
    first.assert_serving("after a second instance was refused")


def test_socket_removed_after_sigterm(daemon_factory):
    d = daemon_factory().start()
    d.rt().Version()
    rc, err = d.stop(signal.SIGTERM, timeout=30)
    assert rc == 0, f"exit code {rc} after SIGTERM"
    assert not os.path.exists(d.socket_path), "socket file still exists after SIGTERM"
