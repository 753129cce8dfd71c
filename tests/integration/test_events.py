"""GetContainerEvents as the kubelet's evented PLEG reads it: every event
carries the pod's status and its containers' statuses at that moment; a
pod's lifecycle arrives in order at every subscriber; a subscriber that
stops reading loses its oldest events (logged) and holds nothing up; a
subscriber that leaves is freed."""

import queue
import threading
import time

import pytest

import pod_helpers as ph
from conftest import grpc_frame, grpc_messages
from pod_helpers import hugetlb_v1, registry_set  # noqa: F401
from test_stats import stats_env  # noqa: F401

EVENTS_PATH = "/runtime.v1.RuntimeService/GetContainerEvents"


class Subscriber:
    """GetContainerEvents read by its own thread into a queue."""

    def __init__(self, env):
        self.api = ph.api()
        self.stream = env.rt.GetContainerEvents(self.api.GetEventsRequest(), timeout=300)
        self.q = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for ev in self.stream:
                self.q.put(ev)
        except Exception:  # cancelled at the end of the test
            pass

    def take(self, ids, n, timeout=30):
        """The next n events about ids, in arrival order."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"only {len(got)} of {n} events within {timeout}s: "
                                     f"{[(e.container_id[:12], e.container_event_type) for e in got]}")
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if ev.container_id in ids:
                got.append(ev)
        return got

    def close(self):
        self.stream.cancel()
        self.thread.join(timeout=10)


def wait_subscribers(env, n, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        info = dict(env.rt.Status(ph.api().StatusRequest(verbose=True)).info)
        if int(info["eventSubscribers"]) == n:
            return info
        assert time.monotonic() < deadline, f"eventSubscribers {info['eventSubscribers']}, want {n}"
        time.sleep(0.05)


def test_pod_lifecycle_events_in_order_to_two_subscribers(stats_env):  # noqa: F811
    env = stats_env()
    api = ph.api()
    env.pull()
    subs = [Subscriber(env), Subscriber(env)]
    wait_subscribers(env, 2)
    pod_id, pod_cfg = env.new_pod()
    # A container that lives a moment: its STARTED and STOPPED race.
    cid, _ = env.run(pod_id, pod_cfg, "short", command=["sh", "-c", "exit 3"])
    env.wait_exited(cid)
    env.remove(cid)
    env.stop_pod(pod_id)
    env.remove_pod(pod_id)
    E = api.ContainerEventType
    want = [(pod_id, "CONTAINER_CREATED_EVENT"), (pod_id, "CONTAINER_STARTED_EVENT"),
            (cid, "CONTAINER_CREATED_EVENT"), (cid, "CONTAINER_STARTED_EVENT"),
            (cid, "CONTAINER_STOPPED_EVENT"), (cid, "CONTAINER_DELETED_EVENT"),
            (pod_id, "CONTAINER_STOPPED_EVENT"), (pod_id, "CONTAINER_DELETED_EVENT")]
    seen = [s.take({pod_id, cid}, len(want)) for s in subs]
    for evs in seen:
        assert [(e.container_id, E.Name(e.container_event_type)) for e in evs] == want
    evs = seen[0]
    # Every event names the pod, with its metadata (the evented PLEG drops
    # events without it).
    for e in evs:
        assert e.pod_sandbox_status.id == pod_id
        assert e.pod_sandbox_status.metadata.uid == pod_cfg.metadata.uid
    ready, notready = api.SANDBOX_READY, api.SANDBOX_NOTREADY
    assert [e.pod_sandbox_status.state for e in evs] == [ready] * 6 + [notready] * 2
    # The containers' statuses as they were at each moment.
    by_type = {(e.container_id, E.Name(e.container_event_type)): e for e in evs}
    created = by_type[(cid, "CONTAINER_CREATED_EVENT")]
    assert [(s.id, s.state) for s in created.containers_statuses] == [(cid, api.CONTAINER_CREATED)]
    started = by_type[(cid, "CONTAINER_STARTED_EVENT")]
    assert len(started.containers_statuses) == 1
    st = started.containers_statuses[0]
    stopped = by_type[(cid, "CONTAINER_STOPPED_EVENT")]
    final = stopped.containers_statuses[0]
    assert final.state == api.CONTAINER_EXITED and final.exit_code == 3
    assert st.state in (api.CONTAINER_RUNNING, api.CONTAINER_EXITED)
    # Stamped when each thing happened: started at the start, not after the
    # stop the exit watcher may have seen first.
    assert created.created_at == final.created_at
    assert started.created_at == final.started_at
    assert stopped.created_at == final.finished_at
    times = [by_type[(cid, t)].created_at for t in ("CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT",
                                                     "CONTAINER_STOPPED_EVENT", "CONTAINER_DELETED_EVENT")]
    assert times == sorted(times), times
    assert list(by_type[(cid, "CONTAINER_DELETED_EVENT")].containers_statuses) == []
    pod_times = [e.created_at for e in evs if e.container_id == pod_id]
    assert pod_times == sorted(pod_times)
    for s in subs:
        s.close()
    # Subscribers that leave are freed.
    wait_subscribers(env, 0)


def test_stopped_event_survives_remove_racing_the_exit(stats_env):  # noqa: F811
    """RemoveContainer of a running container collects its exit itself; the
    STOPPED event still goes out, before DELETED, each once."""
    env = stats_env()
    api = ph.api()
    env.pull()
    sub = Subscriber(env)
    wait_subscribers(env, 1)
    pod_id, pod_cfg = env.new_pod()
    ids = []
    for i in range(3):
        cid, _ = env.run(pod_id, pod_cfg, f"r{i}", command=["sleep", "1000"])
        ids.append(cid)
    for cid in ids:
        env.remove(cid)
    E = api.ContainerEventType
    evs = sub.take(set(ids), 12)
    for cid in ids:
        assert [E.Name(e.container_event_type) for e in evs if e.container_id == cid] == [
            "CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT",
            "CONTAINER_DELETED_EVENT"]
    time.sleep(0.5)
    extra = []
    while not sub.q.empty():
        e = sub.q.get()
        if e.container_id in ids:
            extra.append(e)
    assert extra == [], "events sent twice"
    sub.close()


def test_subscriber_that_stops_reading_holds_nothing_up(stats_env, h2_factory):  # noqa: F811
    """A subscriber whose HTTP/2 window stays shut takes no events: its queue
    keeps the newest event_queue_length, the oldest are dropped with a log
    line, RunPodSandbox stays fast, and a reading subscriber gets everything.
    Opened again, the stalled stream delivers what it kept, in order."""
    import h2.settings

    env = stats_env("event_queue_length: 16\n")
    api = ph.api()
    reader = Subscriber(env)
    stalled = h2_factory(env.d.socket_path)
    stalled.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    stalled.flush()
    st = stalled.start_call(EVENTS_PATH, grpc_frame(b""))
    wait_subscribers(env, 2)
    pod_ids, slowest = [], 0.0
    for _ in range(30):
        t = time.monotonic()
        pod_id, _ = env.new_pod()
        slowest = max(slowest, time.monotonic() - t)
        env.stop_pod(pod_id)
        env.remove_pod(pod_id)
        pod_ids.append(pod_id)
    assert slowest < 10, f"RunPodSandbox took {slowest:.1f}s with a stalled subscriber"
    got = reader.take(set(pod_ids), 120)
    assert len(got) == 120  # the reader lost nothing
    assert "reads too slowly" in env.d.wait_for_stderr(lambda s: "reads too slowly" in s, timeout=10)
    info = wait_subscribers(env, 2)
    assert int(info["eventsDropped"]) > 0, info
    # Open the window: what was kept arrives, in the order published.
    stalled.conn.increment_flow_control_window(1 << 24)
    stalled.conn.increment_flow_control_window(1 << 24, stream_id=st.sid)
    stalled.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
    stalled.flush()
    order = {(e.container_id, e.container_event_type): i for i, e in enumerate(got)}

    def kept():
        msgs = grpc_messages(st.data) if st.data else []
        return [api.ContainerEventResponse.FromString(m) for _, m in msgs]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            stalled.read_until(lambda: len(kept()) >= 16 and kept()[-1].container_id == pod_ids[-1]
                               and kept()[-1].container_event_type == api.CONTAINER_DELETED_EVENT,
                               timeout=1)
            break
        except TimeoutError:
            pass
    evs = kept()
    assert 16 <= len(evs) < 120, len(evs)
    positions = [order[(e.container_id, e.container_event_type)] for e in evs]
    assert positions == sorted(positions), positions
    assert positions[-16:] == list(range(104, 120)), positions  # the newest were kept
    reader.close()
