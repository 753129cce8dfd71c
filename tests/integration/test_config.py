"""Configuration: YAML file, drop-ins, flags, their precedence and their
errors; --help / --version; the request log line."""

import json
import subprocess

import grpc
import pytest

from conftest import daemon_env, status_info_config

FLAGS = [
    "--socket", "--run-root", "--state-root", "--config", "--config-dir",
    "--log-level", "--log-format", "--runtime", "--default-runtime",
    "--cgroup-driver", "--grpc-max-recv-bytes", "--grpc-max-send-bytes",
    "--worker-threads", "--shutdown-grace", "--help", "--version",
]


def _run_bin(crid_bin, *args):
    return subprocess.run([crid_bin, *args], capture_output=True, text=True,
                          env=daemon_env(), timeout=20, stdin=subprocess.DEVNULL)


def test_help_lists_every_flag(crid_bin):
    res = _run_bin(crid_bin, "--help")
    assert res.returncode == 0, f"--help exit code {res.returncode}; stderr:\n{res.stderr}"
    missing = [f for f in FLAGS if f not in res.stdout]
    assert not missing, f"--help does not mention {missing}; stdout:\n{res.stdout}"


def test_version_flag(crid_bin):
    res = _run_bin(crid_bin, "--version")
    assert res.returncode == 0, f"--version exit code {res.returncode}; stderr:\n{res.stderr}"
    assert res.stdout.strip() == "crid 0.1.0", repr(res.stdout)


def test_unknown_flag_is_an_error(daemon_factory):
    d = daemon_factory(args=["--no-such-flag"])
    rc, _, err = d.run_to_exit()
    assert rc != 0
    assert "no-such-flag" in err, f"stderr does not name the bad flag:\n{err}"


@pytest.mark.parametrize("text,line,key", [
    ("# crid integration test config\nlog_level: debug\nno_such_key: 42\n", 3, "no_such_key"),
    ("runtimes:\n  extra:\n    pth: /bin/true\n", 3, "pth"),
], ids=["top-level", "nested-in-runtimes"])
def test_unknown_key_in_config_file(daemon_factory, text, line, key):
    d = daemon_factory(config=text)
    rc, _, err = d.run_to_exit()
    assert rc != 0, f"crid accepted unknown key {key!r}"
    assert f"{d.config_path}:{line}:" in err, (
        f"stderr does not locate the error as {d.config_path}:{line}:\n{err}")
    assert key in err, f"stderr does not name the key {key!r}:\n{err}"


def test_bad_value_in_config_file(daemon_factory):
    text = "# crid integration test config\nworker_threads: 4\nlog_level: loud\n"
    d = daemon_factory(config=text)
    rc, _, err = d.run_to_exit()
    assert rc != 0, "crid accepted log_level: loud"
    assert f"{d.config_path}:3:" in err, f"stderr does not say {d.config_path}:3:\n{err}"
    assert "log_level" in err, f"stderr does not name log_level:\n{err}"


def test_error_in_dropin_names_the_dropin(daemon_factory):
    d = daemon_factory(config="log_level: debug\n",
                       dropins={"10-bad.yaml": "log_level: info\nbogus_dropin_key: true\n"})
    rc, _, err = d.run_to_exit()
    path = d.dropin_path("10-bad.yaml")
    assert rc != 0, "crid accepted a drop-in with an unknown key"
    assert f"{path}:2:" in err, f"stderr does not say {path}:2:\n{err}"
    assert "bogus_dropin_key" in err, f"stderr does not name the key:\n{err}"


MAIN = "default_runtime: crun\n"
DROPIN = "runtimes:\n  other:\n    path: /bin/true\ndefault_runtime: other\n"


def _verbose_status(d, api):
    return d.rt().Status(api.StatusRequest(verbose=True))


def test_dropin_overrides_main_file(daemon_factory, api):
    d = daemon_factory(config=MAIN, dropins={"50-other.yaml": DROPIN}).start()
    resp = _verbose_status(d, api)
    cfg = status_info_config(resp)
    assert cfg.get("default_runtime") == "other", cfg
    names = [h.name for h in resp.runtime_handlers]
    assert "other" in names, names
    assert "crun" in names and "runc" in names, f"the drop-in's runtime replaced the defaults: {names}"
    ready = {c.type: c for c in resp.status.conditions}["RuntimeReady"]
    assert ready.status, f"default runtime /bin/true exists but RuntimeReady is false: {ready}"


def test_flag_overrides_file_and_dropin(daemon_factory, api):
    d = daemon_factory(config=MAIN, dropins={"50-other.yaml": DROPIN},
                       args=["--default-runtime", "runc"]).start()
    cfg = status_info_config(_verbose_status(d, api))
    assert cfg.get("default_runtime") == "runc", cfg


def test_config_file_settings_take_effect(daemon_factory, api):
    # Settings that only the file gives (no flag) are applied.
    d = daemon_factory(config="log_format: json\ngrpc_max_recv_bytes: 1048576\n").start()
    ch = d.channel(options=[("grpc.max_send_message_length", -1)])
    rt = d.rt(channel=ch)
    big = api.RunPodSandboxRequest()
    big.config.labels["big"] = "x" * (2 * 1024 * 1024)
    with pytest.raises(grpc.RpcError) as ei:
        rt.RunPodSandbox(big)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, ei.value
    rt.Version()
    lines = [ln for ln in d.stderr().splitlines() if ln.strip()]
    assert lines
    for ln in lines:
        assert isinstance(json.loads(ln), dict), ln


def _request_log_lines(text):
    return [ln for ln in text.splitlines()
            if "method=/runtime.v1.RuntimeService/Version" in ln]


def test_request_log_line_logfmt(daemon, api):
    daemon.rt().Version(api.VersionRequest(version="0.1.0"))
    text = daemon.wait_for_stderr(
        lambda t: any("status=OK" in ln and "dur_ms=" in ln for ln in _request_log_lines(t)))
    lines = _request_log_lines(text)
    assert lines, f"no line with method=/runtime.v1.RuntimeService/Version in stderr:\n{text}"
    good = [ln for ln in lines if "status=OK" in ln and "dur_ms=" in ln]
    assert good, f"request log lines lack status=OK / dur_ms=: {lines}"


def test_request_log_line_json(daemon_factory, api):
    d = daemon_factory(args=["--log-format", "json"]).start()
    d.rt().Version(api.VersionRequest(version="0.1.0"))

    def find(text):
        for ln in text.splitlines():
            try:
                obj = json.loads(ln)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("method") == "/runtime.v1.RuntimeService/Version":
                return obj
        return None

    text = d.wait_for_stderr(lambda t: find(t) is not None)
    obj = find(text)
    assert obj is not None, f"no JSON log line for the Version call in stderr:\n{text}"
    for key in ("level", "msg", "method", "status", "dur_ms"):
        assert key in obj, f"JSON log line lacks {key!r}: {obj}"
    assert obj["status"] == "OK", obj
    float(obj["dur_ms"])  # a number, or a string holding one

    bad = []
    for ln in text.splitlines():
        if not ln.strip():
            continue
        try:
            o = json.loads(ln)
        except ValueError:
            bad.append(ln)
            continue
        if not (isinstance(o, dict) and "level" in o and "msg" in o):
            bad.append(ln)
    assert not bad, f"stderr lines that are not JSON log objects with level and msg: {bad[:10]}"
