package main

import (
	"context"
	"time"
)

// singleCalls are timed one by one at the relist's pod count. Version does
// no work in any runtime: its latency is the client, the transport and the
// runtime's RPC layer, so another call's p50 minus Version's estimates the
// time the runtime spends on that call itself.
var singleCalls = []string{"Version", "ContainerStatus", "ListContainers", "ListPodSandbox"}

func timeSingleCalls(s *session, ctrIDs []string, rounds int) map[string]latency {
	api := s.api
	fns := map[string]func(ctx context.Context, r int) error{
		"Version": func(ctx context.Context, r int) error {
			_, err := api.Version(ctx, "v1")
			return err
		},
		"ContainerStatus": func(ctx context.Context, r int) error {
			id := ctrIDs[r%len(ctrIDs)]
			st, err := api.ContainerStatus(ctx, id)
			if err == nil && (st.ID != id || st.State != "CONTAINER_RUNNING") {
				fatalf("ContainerStatus(%s): %s %s, expected that container CONTAINER_RUNNING", id, st.ID, st.State)
			}
			return err
		},
		"ListContainers": func(ctx context.Context, r int) error {
			l, err := api.ListContainers(ctx, &containerFilter{})
			if err == nil && len(l) != len(ctrIDs) {
				fatalf("ListContainers: %d containers, expected %d", len(l), len(ctrIDs))
			}
			return err
		},
		"ListPodSandbox": func(ctx context.Context, r int) error {
			l, err := api.ListPodSandbox(ctx, nil)
			if err == nil && len(l) != len(ctrIDs) {
				fatalf("ListPodSandbox: %d pods, expected %d", len(l), len(ctrIDs))
			}
			return err
		},
	}
	out := map[string]latency{}
	quiet := s.quiet
	s.quiet = true
	// Interleaved, so that load from elsewhere on the machine falls on
	// every call alike.
	ds := make([][]time.Duration, len(singleCalls))
	for r := 0; r < rounds+10; r++ {
		for i, name := range singleCalls {
			fn := fns[name]
			d := s.call(name, func(ctx context.Context) error { return fn(ctx, r) })
			if r >= 10 {
				ds[i] = append(ds[i], d)
			}
		}
	}
	s.quiet = quiet
	for i, name := range singleCalls {
		out[name] = summarize(ds[i])
		s.logf("%-16s alone, %d rounds: p50 %.3f ms, p99 %.3f ms", name, rounds, out[name].P50Ms, out[name].P99Ms)
	}
	return out
}
