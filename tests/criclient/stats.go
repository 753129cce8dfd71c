package main

import (
	"context"
	"os"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// checkStats: what the kubelet's stats provider reads while a pod runs one
// container (main) and has one that exited (oneshot): the container's CPU,
// memory and writable layer, the pod's with its containers, the filters;
// under v1 also the metrics RPCs, ImageFsInfo's container file systems and
// the streaming lists, which must answer what their unary forms answer.
func checkStats(s *session, podID, uid, mainID, oneID string, mainLabels map[string]string, start time.Time) {
	api := s.api
	var cs *ctrStats
	s.call("ContainerStats", func(ctx context.Context) (err error) {
		cs, err = api.ContainerStats(ctx, mainID)
		return
	})
	if cs == nil || cs.ID != mainID || cs.Name != "main" {
		fatalf("ContainerStats(%s): %+v", mainID, cs)
	}
	if !cs.HasCPU || cs.CoreNanoSeconds == 0 || !cs.HasMemory || cs.WorkingSet == 0 || cs.MemUsage < cs.WorkingSet {
		fatalf("ContainerStats of a running container: no CPU time or memory: %+v", *cs)
	}
	expectTime("ContainerStats.cpu.timestamp", cs.CPUTimestamp, start, time.Now())
	expectTime("ContainerStats.memory.timestamp", cs.MemTimestamp, start, time.Now())
	if !cs.HasLayer {
		fatalf("ContainerStats: no writable_layer: %+v", *cs)
	}
	if fi, err := os.Stat(cs.LayerMountpoint); err != nil || !fi.IsDir() {
		fatalf("ContainerStats.writable_layer.fs_id.mountpoint %q is not a directory here: %v", cs.LayerMountpoint, err)
	}
	s.expectCode("ContainerStats of an unknown container", codes.NotFound, func(ctx context.Context) error {
		_, err := api.ContainerStats(ctx, strings.Repeat("f", 64))
		return err
	})

	ids := func(l []ctrStats) []string {
		var out []string
		for _, c := range l {
			out = append(out, c.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    *statsFilter
		want []string
	}{
		{"ListContainerStats", nil, []string{mainID}}, // the exited oneshot is not listed
		{"ListContainerStats by pod", &statsFilter{PodSandboxID: podID}, []string{mainID}},
		{"ListContainerStats by ID prefix", &statsFilter{ID: mainID[:12]}, []string{mainID}},
		{"ListContainerStats by labels", &statsFilter{LabelSelector: mainLabels}, []string{mainID}},
		{"ListContainerStats by other labels", &statsFilter{LabelSelector: map[string]string{"no": "such"}}, nil},
	} {
		c := c
		s.call(c.name, func(ctx context.Context) error {
			l, err := api.ListContainerStats(ctx, c.f)
			if err == nil {
				expectIDSet(c.name, ids(l), c.want)
			}
			return err
		})
	}

	var ps *podStats
	s.call("PodSandboxStats", func(ctx context.Context) (err error) {
		ps, err = api.PodSandboxStats(ctx, podID)
		return
	})
	if ps == nil || ps.ID != podID || ps.UID != uid {
		fatalf("PodSandboxStats(%s): %+v", podID, ps)
	}
	if !ps.HasCPU || ps.CoreNanoSeconds < cs.CoreNanoSeconds || !ps.HasMemory || ps.WorkingSet == 0 {
		fatalf("PodSandboxStats: the pod's CPU and memory should hold its running container's: %+v", *ps)
	}
	if !ps.HasProcesses || ps.Processes == 0 {
		fatalf("PodSandboxStats: no process count for a pod with a running container: %+v", *ps)
	}
	expectIDSet("PodSandboxStats.linux.containers", ids(ps.Containers), []string{mainID})
	s.call("ListPodSandboxStats", func(ctx context.Context) error {
		l, err := api.ListPodSandboxStats(ctx, &statsFilter{LabelSelector: map[string]string{"io.kubernetes.pod.uid": uid}})
		if err == nil && (len(l) != 1 || l[0].ID != podID) {
			fatalf("ListPodSandboxStats by the pod's uid label: %+v", l)
		}
		return err
	})
	if api.Name() != "v1" {
		return
	}

	var fss []fsUsage
	s.call("ImageFsInfo container_filesystems", func(ctx context.Context) (err error) {
		fss, err = api.ContainerFsInfo(ctx)
		return
	})
	if len(fss) != 1 || fss[0].Mountpoint != cs.LayerMountpoint || fss[0].UsedBytes == nil || fss[0].InodesUsed == nil {
		fatalf("ImageFsInfo.container_filesystems: %+v (the writable layers are under %s)", fss, cs.LayerMountpoint)
	}

	var descs []metricDesc
	s.call("ListMetricDescriptors", func(ctx context.Context) (err error) {
		descs, err = api.ListMetricDescriptors(ctx)
		return
	})
	keys := map[string]int{}
	for _, d := range descs {
		keys[d.Name] = len(d.LabelKeys)
	}
	for _, name := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes"} {
		if _, ok := keys[name]; !ok {
			fatalf("ListMetricDescriptors: no %s among %v", name, descs)
		}
	}
	var pms []podMetrics
	s.call("ListPodSandboxMetrics", func(ctx context.Context) (err error) {
		pms, err = api.ListPodSandboxMetrics(ctx)
		return
	})
	if len(pms) != 1 || pms[0].PodSandboxID != podID || len(pms[0].Containers[mainID]) == 0 {
		fatalf("ListPodSandboxMetrics: %+v", pms)
	}
	all := append([]metric{}, pms[0].Metrics...)
	for _, ms := range pms[0].Containers {
		all = append(all, ms...)
	}
	for _, m := range all {
		n, ok := keys[m.Name]
		if !ok || n != len(m.LabelValues) {
			fatalf("ListPodSandboxMetrics: %s has %d label values, its descriptor %d keys (described: %v)",
				m.Name, len(m.LabelValues), n, ok)
		}
	}
	checkStreams(s, podID, mainID)
}

func sortedIDs(ids []string) []string {
	sort.Strings(ids)
	return ids
}

// checkStreams: each streaming list answers what its unary list answers,
// each item once; nothing matched is a stream with no message.
func checkStreams(s *session, podID, mainID string) {
	api := s.api
	var pods, spods []podSandbox
	s.call("ListPodSandbox", func(ctx context.Context) (err error) { pods, err = api.ListPodSandbox(ctx, nil); return })
	s.call("StreamPodSandboxes", func(ctx context.Context) (err error) {
		spods, _, err = api.StreamPodSandboxes(ctx, nil)
		return
	})
	expectEq("StreamPodSandboxes against ListPodSandbox", sortedIDs(podIDs(spods)), sortedIDs(podIDs(pods)))
	for _, f := range []*containerFilter{nil, {PodSandboxID: podID}, {State: "CONTAINER_EXITED"}} {
		var l, sl []container
		s.call("ListContainers", func(ctx context.Context) (err error) { l, err = api.ListContainers(ctx, f); return })
		s.call("StreamContainers", func(ctx context.Context) (err error) {
			sl, _, err = api.StreamContainers(ctx, f)
			return
		})
		expectEq("StreamContainers against ListContainers", sortedIDs(containerIDs(sl)), sortedIDs(containerIDs(l)))
	}
	var none []container
	var n int
	s.call("StreamContainers matching nothing", func(ctx context.Context) (err error) {
		none, n, err = api.StreamContainers(ctx, &containerFilter{ID: strings.Repeat("f", 64)})
		return
	})
	if len(none) != 0 || n != 0 {
		fatalf("StreamContainers matching nothing: %d messages, %v", n, none)
	}
	var cstats []ctrStats
	s.call("StreamContainerStats", func(ctx context.Context) (err error) {
		cstats, _, err = api.StreamContainerStats(ctx, &statsFilter{PodSandboxID: podID})
		return
	})
	if len(cstats) != 1 || cstats[0].ID != mainID || !cstats[0].HasMemory {
		fatalf("StreamContainerStats of the pod: %+v", cstats)
	}
	var pstats []podStats
	s.call("StreamPodSandboxStats", func(ctx context.Context) (err error) {
		pstats, _, err = api.StreamPodSandboxStats(ctx, &statsFilter{ID: podID})
		return
	})
	if len(pstats) != 1 || pstats[0].ID != podID || len(pstats[0].Containers) != 1 {
		fatalf("StreamPodSandboxStats of the pod: %+v", pstats)
	}
	var pms []podMetrics
	s.call("StreamPodSandboxMetrics", func(ctx context.Context) (err error) {
		pms, _, err = api.StreamPodSandboxMetrics(ctx)
		return
	})
	if len(pms) != 1 || pms[0].PodSandboxID != podID {
		fatalf("StreamPodSandboxMetrics: %+v", pms)
	}
}
