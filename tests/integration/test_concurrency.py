"""Many clients at once, each on its own connection."""

import threading
import time

import grpc


def _hammer(daemon, api, n_clients, n_calls, join_timeout):
    barrier = threading.Barrier(n_clients)
    results = [None] * n_clients  # per client: (ok count, [errors])

    def client(idx):
        ok, errors = 0, []
        try:
            ch = daemon.channel()  # own connection (local subchannel pool)
            rt = daemon.rt(channel=ch)
            req = api.VersionRequest(version="0.1.0")
            barrier.wait(timeout=60)
            for _ in range(n_calls):
                try:
                    r = rt.Version(req, timeout=60)
                except grpc.RpcError as e:
                    errors.append(f"{e.code()} {e.details()}")
                    continue
                if r.runtime_name == "crid" and r.runtime_api_version == "v1":
                    ok += 1
                else:
                    errors.append(f"wrong response {r}")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        results[idx] = (ok, errors)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join_timeout)
    hung = sum(t.is_alive() for t in threads)
    assert hung == 0, f"{hung} clients still running after {join_timeout}s (hang guard)"
    errors = [e for _, errs in results for e in errs]
    total_ok = sum(ok for ok, _ in results)
    assert not errors, f"{len(errors)} failed calls, e.g. {errors[:10]}"
    assert total_ok == n_clients * n_calls
    daemon.assert_serving()


def test_64_clients_500_calls_each(daemon, api):
    _hammer(daemon, api, n_clients=64, n_calls=500, join_timeout=300)


def test_clients_with_a_single_worker(daemon_factory, api):
    d = daemon_factory(args=["--worker-threads", "1"]).start()
    _hammer(d, api, n_clients=8, n_calls=50, join_timeout=120)


def test_calls_abandoned_mid_flight(daemon, api):
    """Clients that give up on calls (tiny deadlines, cancels, streams opened
    and dropped) while other calls run: the daemon must not trip over calls
    whose client is gone (the ASan build catches use-after-free here)."""
    n_clients, rounds = 16, 150
    barrier = threading.Barrier(n_clients)
    bad = []
    lock = threading.Lock()
    allowed = {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}

    def client(idx):
        try:
            ch = daemon.channel()
            rt = daemon.rt(channel=ch)
            version = ch.unary_unary("/runtime.v1.RuntimeService/Version",
                                     request_serializer=api.VersionRequest.SerializeToString,
                                     response_deserializer=api.VersionResponse.FromString)
            barrier.wait(timeout=60)
            for i in range(rounds):
                kind = (idx + i) % 4
                try:
                    if kind == 0:
                        rt.Version(timeout=0.0005)
                    elif kind == 1:
                        f = version.future(api.VersionRequest(), timeout=10)
                        f.cancel()
                    elif kind == 2:
                        s = rt.GetContainerEvents(api.GetEventsRequest(), timeout=10)
                        s.cancel()
                    else:
                        s = rt.GetContainerEvents(api.GetEventsRequest(), timeout=0.002)
                        for _ in s:
                            pass
                except grpc.RpcError as e:
                    if e.code() not in allowed:
                        with lock:
                            bad.append(f"kind {kind}: {e.code()} {e.details()}")
                except grpc.FutureCancelledError:
                    pass
            ch.close()
        except Exception as e:  # noqa: BLE001
            with lock:
                bad.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert not bad, f"unexpected failures: {bad[:10]}"
    daemon.assert_serving("after abandoned calls")

    # Every abandoned event stream is unsubscribed again (crid reports the
    # count in Status verbose info when it has one).
    info = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = dict(daemon.rt().Status(api.StatusRequest(verbose=True)).info)
        if info.get("eventSubscribers", "0") == "0":
            break
        time.sleep(0.1)
    assert info.get("eventSubscribers", "0") == "0", info.get("eventSubscribers")
