package main

import (
	"context"

	v1alpha2 "crid/cri/v1alpha2"
)

// Stats over runtime.v1alpha2, which has no metrics RPCs, no streaming
// lists and no container_filesystems in ImageFsInfo.

func v1alpha2CtrStats(s *v1alpha2.ContainerStats) ctrStats {
	out := ctrStats{ID: s.GetAttributes().GetId(), Name: s.GetAttributes().GetMetadata().GetName(),
		Labels: s.GetAttributes().GetLabels()}
	if c := s.Cpu; c != nil {
		out.HasCPU, out.CPUTimestamp = true, c.Timestamp
		out.CoreNanoSeconds = c.GetUsageCoreNanoSeconds().GetValue()
		if c.UsageNanoCores != nil {
			out.HasNanoCores, out.NanoCores = true, c.UsageNanoCores.Value
		}
	}
	if m := s.Memory; m != nil {
		out.HasMemory, out.MemTimestamp = true, m.Timestamp
		out.WorkingSet, out.MemUsage = m.GetWorkingSetBytes().GetValue(), m.GetUsageBytes().GetValue()
	}
	if w := s.WritableLayer; w != nil {
		out.HasLayer, out.LayerMountpoint = true, w.GetFsId().GetMountpoint()
		out.LayerBytes, out.LayerInodes = w.GetUsedBytes().GetValue(), w.GetInodesUsed().GetValue()
	}
	return out
}

func v1alpha2PodStats(s *v1alpha2.PodSandboxStats) podStats {
	out := podStats{ID: s.GetAttributes().GetId(), UID: s.GetAttributes().GetMetadata().GetUid(),
		Labels: s.GetAttributes().GetLabels()}
	l := s.GetLinux()
	if l.GetCpu() != nil {
		out.HasCPU, out.CoreNanoSeconds = true, l.Cpu.GetUsageCoreNanoSeconds().GetValue()
	}
	if l.GetMemory() != nil {
		out.HasMemory, out.WorkingSet = true, l.Memory.GetWorkingSetBytes().GetValue()
	}
	if l.GetProcess() != nil {
		out.HasProcesses, out.Processes = true, l.Process.GetProcessCount().GetValue()
	}
	if l.GetNetwork() != nil {
		out.HasNetwork = true
		for _, i := range l.Network.Interfaces {
			out.Interfaces = append(out.Interfaces, i.Name)
		}
	}
	for _, c := range l.GetContainers() {
		out.Containers = append(out.Containers, v1alpha2CtrStats(c))
	}
	return out
}

func (a *apiV1alpha2) ContainerStats(ctx context.Context, id string) (*ctrStats, error) {
	r, err := a.rt.ContainerStats(ctx, &v1alpha2.ContainerStatsRequest{ContainerId: id})
	if err != nil || r.Stats == nil {
		return nil, err
	}
	s := v1alpha2CtrStats(r.Stats)
	return &s, nil
}

func (a *apiV1alpha2) ListContainerStats(ctx context.Context, f *statsFilter) ([]ctrStats, error) {
	req := &v1alpha2.ListContainerStatsRequest{}
	if f != nil {
		req.Filter = &v1alpha2.ContainerStatsFilter{Id: f.ID, PodSandboxId: f.PodSandboxID,
			LabelSelector: f.LabelSelector}
	}
	r, err := a.rt.ListContainerStats(ctx, req)
	if err != nil {
		return nil, err
	}
	out := []ctrStats{}
	for _, s := range r.Stats {
		out = append(out, v1alpha2CtrStats(s))
	}
	return out, nil
}

func (a *apiV1alpha2) PodSandboxStats(ctx context.Context, id string) (*podStats, error) {
	r, err := a.rt.PodSandboxStats(ctx, &v1alpha2.PodSandboxStatsRequest{PodSandboxId: id})
	if err != nil || r.Stats == nil {
		return nil, err
	}
	s := v1alpha2PodStats(r.Stats)
	return &s, nil
}

func (a *apiV1alpha2) ListPodSandboxStats(ctx context.Context, f *statsFilter) ([]podStats, error) {
	req := &v1alpha2.ListPodSandboxStatsRequest{}
	if f != nil {
		req.Filter = &v1alpha2.PodSandboxStatsFilter{Id: f.ID, LabelSelector: f.LabelSelector}
	}
	r, err := a.rt.ListPodSandboxStats(ctx, req)
	if err != nil {
		return nil, err
	}
	out := []podStats{}
	for _, s := range r.Stats {
		out = append(out, v1alpha2PodStats(s))
	}
	return out, nil
}

func (a *apiV1alpha2) ContainerFsInfo(ctx context.Context) ([]fsUsage, error) {
	return nil, errNotInAPI
}

func (a *apiV1alpha2) ListMetricDescriptors(ctx context.Context) ([]metricDesc, error) {
	return nil, errNotInAPI
}

func (a *apiV1alpha2) ListPodSandboxMetrics(ctx context.Context) ([]podMetrics, error) {
	return nil, errNotInAPI
}

func (a *apiV1alpha2) StreamPodSandboxes(ctx context.Context, f *podFilter) ([]podSandbox, int, error) {
	return nil, 0, errNotInAPI
}

func (a *apiV1alpha2) StreamContainers(ctx context.Context, f *containerFilter) ([]container, int, error) {
	return nil, 0, errNotInAPI
}

func (a *apiV1alpha2) StreamContainerStats(ctx context.Context, f *statsFilter) ([]ctrStats, int, error) {
	return nil, 0, errNotInAPI
}

func (a *apiV1alpha2) StreamPodSandboxStats(ctx context.Context, f *statsFilter) ([]podStats, int, error) {
	return nil, 0, errNotInAPI
}

func (a *apiV1alpha2) StreamPodSandboxMetrics(ctx context.Context) ([]podMetrics, int, error) {
	return nil, 0, errNotInAPI
}
