package main

import (
	"context"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type eventRecord struct {
	ContainerID       string   `json:"container_id"`
	Type              string   `json:"type"`
	CreatedAt         int64    `json:"created_at"`
	PodSandboxID      string   `json:"pod_sandbox_id,omitempty"`
	PodUID            string   `json:"pod_uid,omitempty"`
	ContainerStatuses []string `json:"containers_statuses"`
}

// eventWatch: GetContainerEvents held open for the whole scenario, as the
// kubelet's evented PLEG holds it, read by its own goroutine.
type eventWatch struct {
	cancel  context.CancelFunc
	mu      sync.Mutex
	cond    *sync.Cond
	events  []eventRecord
	err     error // why the stream ended
	ended   bool
	stopped bool
}

func watchEvents(s *session) *eventWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &eventWatch{cancel: cancel}
	w.cond = sync.NewCond(&w.mu)
	recv, err := s.api.ContainerEvents(ctx)
	if err != nil {
		cancel()
		fatalf("GetContainerEvents: %s", describeErr(err))
	}
	go func() {
		for {
			e, err := recv()
			w.mu.Lock()
			if err != nil {
				w.err, w.ended = err, true
				w.cond.Broadcast()
				w.mu.Unlock()
				return
			}
			w.events = append(w.events, eventRecord{e.ContainerID, e.Type, e.CreatedAt, e.PodSandboxID,
				e.PodUID, e.ContainerStatuses})
			w.cond.Broadcast()
			w.mu.Unlock()
		}
	}()
	s.logf("GetContainerEvents: stream open")
	waitSubscribed(s)
	return w
}

// waitSubscribed: the stream is open on the runtime's side before anything
// happens that it should report. crid counts its subscribers in Status'
// verbose info; with another runtime, a short pause has to do.
func waitSubscribed(s *session) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st *runtimeStatus
		s.call("Status verbose (event subscribers)", func(ctx context.Context) (err error) {
			st, err = s.api.Status(ctx, true)
			return
		})
		v, ok := st.Info["eventSubscribers"]
		if !ok {
			time.Sleep(200 * time.Millisecond)
			return
		}
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			fatalf("GetContainerEvents: Status still reports eventSubscribers %s after 10 s", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor: an event of type typ for container id arrives within 10 s.
func (w *eventWatch) waitFor(s *session, id, typ string) {
	timer := time.AfterFunc(10*time.Second, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(10 * time.Second)
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for _, e := range w.events {
			if e.ContainerID == id && e.Type == typ {
				s.logf("GetContainerEvents: %s for %s", typ, id)
				return
			}
		}
		if w.ended {
			fatalf("GetContainerEvents ended (%s) before %s for %s; events so far: %+v",
				describeErr(w.err), typ, id, w.events)
		}
		if time.Now().After(deadline) {
			fatalf("GetContainerEvents: no %s for %s within 10 s; events so far: %+v", typ, id, w.events)
		}
		w.cond.Wait()
	}
}

// stop cancels the stream and waits for its reader.
func (w *eventWatch) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	w.cancel()
	w.mu.Lock()
	for !w.ended {
		w.cond.Wait()
	}
	w.mu.Unlock()
}

// check: the stream stayed open until the client left, and told of the pod
// and each of the scenario's containers: created, started, stopped,
// deleted, in that order, stamped in that order within the scenario, each
// event with the pod's status (and its metadata: the kubelet's evented PLEG
// drops events without it) and, while a container lives, its status among
// the pod's containers'.
func (w *eventWatch) check(s *session, names map[string]string, podID, uid string, start time.Time) {
	s.rep.Events = w.events
	if status.Code(w.err) != codes.Canceled {
		fatalf("GetContainerEvents ended by itself while the client listened: %s", describeErr(w.err))
	}
	byID := map[string][]eventRecord{}
	for _, e := range w.events {
		if _, ok := names[e.ContainerID]; !ok && e.ContainerID != podID {
			fatalf("GetContainerEvents: event for a container the scenario never made: %+v", e)
		}
		expectTime("GetContainerEvents: created_at of "+e.Type, e.CreatedAt, start, time.Now())
		if e.PodSandboxID != podID || e.PodUID != uid {
			fatalf("GetContainerEvents: event without the pod's status and metadata (pod %s, uid %s): %+v",
				podID, uid, e)
		}
		byID[e.ContainerID] = append(byID[e.ContainerID], e)
	}
	want := []string{"CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT",
		"CONTAINER_DELETED_EVENT"}
	all := map[string]string{podID: "the pod sandbox"}
	for id, name := range names {
		all[id] = name
	}
	for id, name := range all {
		var seq []string
		for _, e := range byID[id] {
			seq = append(seq, e.Type)
		}
		expectEq("GetContainerEvents: the events of "+name+" "+id, seq, want)
		for i := 1; i < len(byID[id]); i++ {
			if e, prev := byID[id][i], byID[id][i-1]; e.CreatedAt < prev.CreatedAt {
				fatalf("GetContainerEvents: %s of %s has created_at %s before the %s sent ahead of it",
					e.Type, name, time.Duration(prev.CreatedAt-e.CreatedAt), prev.Type)
			}
		}
		if id == podID {
			continue
		}
		for _, e := range byID[id][:3] {
			if !contains(e.ContainerStatuses, id) {
				fatalf("GetContainerEvents: %s of %s: containers_statuses %v lack the container itself",
					e.Type, name, e.ContainerStatuses)
			}
		}
	}
	s.logf("GetContainerEvents: %d events checked", len(w.events))
}
