"""`make install`: the daemon, a systemd unit and a commented default config
land in the usual places, and what was installed runs."""

import os
import subprocess

import pytest

from conftest import REPO, Daemon


@pytest.fixture
def destdir(tmp_path):
    return str(tmp_path / "root")


def make_install(destdir):
    variant = "asan" if "/build/asan/" in os.environ.get("CRID_BIN", "") else "release"
    res = subprocess.run(["make", "-C", REPO, "install", f"VARIANT={variant}", f"DESTDIR={destdir}",
                          "PREFIX=/usr/local"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_install_layout_and_installed_daemon_serves(destdir, crid_bin):
    make_install(destdir)
    binary = os.path.join(destdir, "usr/local/bin/crid")
    unit = os.path.join(destdir, "lib/systemd/system/crid.service")
    config = os.path.join(destdir, "etc/crid/crid.yaml")
    assert os.access(binary, os.X_OK)
    assert os.access(os.path.join(destdir, "usr/local/bin/crid-shim"), os.X_OK)
    assert os.path.isdir(os.path.join(destdir, "etc/crid/crid.d"))
    with open(os.path.join(destdir, "etc/apparmor.d/crid-default")) as f:
        assert "profile crid-default " in f.read()
    with open(unit) as f:
        text = f.read()
    assert "ExecStart=/usr/local/bin/crid\n" in text
    assert "KillMode=process" in text  # containers' monitors outlive a restart
    with open(config) as f:
        lines = f.read().splitlines()
    assert any(line.startswith("#") for line in lines)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "crid 0.1.0"
    # The installed daemon with the installed config serves (paths moved
    # into a temporary directory by flags).
    d = Daemon(binary)
    with open(config) as src, open(d.config_path, "w") as dst:
        dst.write(src.read())
    try:
        d.start()
        assert d.rt().Version().runtime_name == "crid"
        rc, _ = d.stop()
        assert rc == 0
    finally:
        d.cleanup()


def test_install_keeps_an_existing_config(destdir):
    make_install(destdir)
    config = os.path.join(destdir, "etc/crid/crid.yaml")
    with open(config, "w") as f:
        f.write("log_level: debug\n")
    res = make_install(destdir)
    with open(config) as f:
        assert f.read() == "log_level: debug\n"
    assert "keeping existing" in res.stdout
