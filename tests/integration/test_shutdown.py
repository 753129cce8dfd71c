"""SIGTERM: in-flight calls end, crid exits 0 within the grace, cleanly."""

import os
import signal
import threading
import time

import grpc

OK_END = (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
GRACE_S = 3
SLACK_S = 3  # LeakSanitizer's exit-time scan, scheduling


def _assert_clean_exit(d, rc, err):
    assert rc == 0, f"exit code {rc} after SIGTERM"
    assert d.sanitizer_report() == "", f"sanitizer report:\n{d.sanitizer_report()}"
    assert "ERROR: AddressSanitizer" not in err and "LeakSanitizer" not in err
    assert not os.path.exists(d.socket_path), "socket left behind"


def test_sigterm_with_open_event_stream(daemon_factory, api):
    d = daemon_factory(args=["--shutdown-grace", str(GRACE_S)]).start()
    call = d.rt().GetContainerEvents(api.GetEventsRequest(), timeout=120)
    outcome = {}

    def read():
        try:
            outcome["messages"] = list(call)
            outcome["code"] = grpc.StatusCode.OK
        except grpc.RpcError as e:
            outcome["code"] = e.code()
            outcome["details"] = e.details()
        outcome["at"] = time.monotonic()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # The stream is established and served: other calls work meanwhile.
    assert d.rt().Version().runtime_name == "crid"
    time.sleep(0.3)
    assert reader.is_alive(), f"stream ended before SIGTERM: {outcome}"

    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    rc = d.wait(GRACE_S + SLACK_S)
    exited_after = time.monotonic() - t0
    reader.join(10)
    try:
        assert rc is not None, (
            f"crid did not exit within {GRACE_S + SLACK_S}s of SIGTERM "
            f"(grace {GRACE_S}s) with an event stream open")
        assert not reader.is_alive(), "the event stream did not end (client hangs)"
        assert outcome["code"] in OK_END, f"stream ended with {outcome}"
        _assert_clean_exit(d, rc, d.stderr())
        assert exited_after <= GRACE_S + SLACK_S
    finally:
        call.cancel()


def test_sigterm_while_clients_hammer(daemon_factory, api):
    d = daemon_factory(args=["--shutdown-grace", str(GRACE_S)]).start()
    stop = threading.Event()
    lock = threading.Lock()
    ok = [0]
    bad = []
    unavailable = [0]

    def client():
        ch = d.channel()
        rt = d.rt(channel=ch)
        while not stop.is_set():
            try:
                r = rt.Version(api.VersionRequest(version="0.1.0"), timeout=10)
                assert r.runtime_name == "crid", r
                with lock:
                    ok[0] += 1
            except grpc.RpcError as e:
                with lock:
                    if e.code() == grpc.StatusCode.UNAVAILABLE:
                        unavailable[0] += 1
                    else:
                        bad.append(f"{e.code()} {e.details()}")
                if e.code() == grpc.StatusCode.UNAVAILABLE and not d.alive():
                    break
            except Exception as e:  # noqa: BLE001
                with lock:
                    bad.append(repr(e))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while ok[0] < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ok[0] >= 200, f"only {ok[0]} calls succeeded before SIGTERM; failures: {bad[:5]}"

    d.send_signal(signal.SIGTERM)
    rc = d.wait(GRACE_S + SLACK_S)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert rc is not None, f"crid did not exit within {GRACE_S + SLACK_S}s of SIGTERM"
    assert not bad, f"calls failed with other than UNAVAILABLE: {bad[:10]}"
    _assert_clean_exit(d, rc, d.stderr())
