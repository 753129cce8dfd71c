package main

import (
	"context"
	"io"

	v1 "crid/cri/v1"
)

// Stats, metrics and the streaming lists over runtime.v1.

func v1CtrStats(s *v1.ContainerStats) ctrStats {
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

func v1PodStats(s *v1.PodSandboxStats) podStats {
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
		out.Containers = append(out.Containers, v1CtrStats(c))
	}
	return out
}

func v1CtrStatsFilter(f *statsFilter) *v1.ContainerStatsFilter {
	if f == nil {
		return nil
	}
	return &v1.ContainerStatsFilter{Id: f.ID, PodSandboxId: f.PodSandboxID, LabelSelector: f.LabelSelector}
}

func v1PodStatsFilter(f *statsFilter) *v1.PodSandboxStatsFilter {
	if f == nil {
		return nil
	}
	return &v1.PodSandboxStatsFilter{Id: f.ID, LabelSelector: f.LabelSelector}
}

func (a *apiV1) ContainerStats(ctx context.Context, id string) (*ctrStats, error) {
	r, err := a.rt.ContainerStats(ctx, &v1.ContainerStatsRequest{ContainerId: id})
	if err != nil || r.Stats == nil {
		return nil, err
	}
	s := v1CtrStats(r.Stats)
	return &s, nil
}

func (a *apiV1) ListContainerStats(ctx context.Context, f *statsFilter) ([]ctrStats, error) {
	r, err := a.rt.ListContainerStats(ctx, &v1.ListContainerStatsRequest{Filter: v1CtrStatsFilter(f)})
	if err != nil {
		return nil, err
	}
	out := []ctrStats{}
	for _, s := range r.Stats {
		out = append(out, v1CtrStats(s))
	}
	return out, nil
}

func (a *apiV1) PodSandboxStats(ctx context.Context, id string) (*podStats, error) {
	r, err := a.rt.PodSandboxStats(ctx, &v1.PodSandboxStatsRequest{PodSandboxId: id})
	if err != nil || r.Stats == nil {
		return nil, err
	}
	s := v1PodStats(r.Stats)
	return &s, nil
}

func (a *apiV1) ListPodSandboxStats(ctx context.Context, f *statsFilter) ([]podStats, error) {
	r, err := a.rt.ListPodSandboxStats(ctx, &v1.ListPodSandboxStatsRequest{Filter: v1PodStatsFilter(f)})
	if err != nil {
		return nil, err
	}
	out := []podStats{}
	for _, s := range r.Stats {
		out = append(out, v1PodStats(s))
	}
	return out, nil
}

func (a *apiV1) ContainerFsInfo(ctx context.Context) ([]fsUsage, error) {
	r, err := a.img.ImageFsInfo(ctx, &v1.ImageFsInfoRequest{})
	if err != nil {
		return nil, err
	}
	var out []fsUsage
	for _, f := range r.ContainerFilesystems {
		u := fsUsage{Timestamp: f.Timestamp, Mountpoint: f.GetFsId().GetMountpoint()}
		if f.UsedBytes != nil {
			v := f.UsedBytes.Value
			u.UsedBytes = &v
		}
		if f.InodesUsed != nil {
			v := f.InodesUsed.Value
			u.InodesUsed = &v
		}
		out = append(out, u)
	}
	return out, nil
}

func (a *apiV1) ListMetricDescriptors(ctx context.Context) ([]metricDesc, error) {
	r, err := a.rt.ListMetricDescriptors(ctx, &v1.ListMetricDescriptorsRequest{})
	if err != nil {
		return nil, err
	}
	var out []metricDesc
	for _, d := range r.Descriptors {
		out = append(out, metricDesc{d.Name, d.LabelKeys})
	}
	return out, nil
}

func v1Metrics(ms []*v1.Metric) []metric {
	var out []metric
	for _, m := range ms {
		out = append(out, metric{m.Name, m.MetricType.String(), m.LabelValues, m.GetValue().GetValue()})
	}
	return out
}

func v1PodMetrics(p *v1.PodSandboxMetrics) podMetrics {
	out := podMetrics{PodSandboxID: p.PodSandboxId, Metrics: v1Metrics(p.Metrics), Containers: map[string][]metric{}}
	for _, c := range p.ContainerMetrics {
		out.Containers[c.ContainerId] = v1Metrics(c.Metrics)
	}
	return out
}

func (a *apiV1) ListPodSandboxMetrics(ctx context.Context) ([]podMetrics, error) {
	r, err := a.rt.ListPodSandboxMetrics(ctx, &v1.ListPodSandboxMetricsRequest{})
	if err != nil {
		return nil, err
	}
	out := []podMetrics{}
	for _, p := range r.PodMetrics {
		out = append(out, v1PodMetrics(p))
	}
	return out, nil
}

// drain reads a server stream to its end: every message, then EOF.
func drain[T any](recv func() (T, error), each func(T)) (int, error) {
	n := 0
	for {
		m, err := recv()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
		each(m)
	}
}

func (a *apiV1) StreamPodSandboxes(ctx context.Context, f *podFilter) ([]podSandbox, int, error) {
	req := &v1.StreamPodSandboxesRequest{}
	if f != nil {
		req.Filter = &v1.PodSandboxFilter{Id: f.ID, LabelSelector: f.LabelSelector}
		if f.State != "" {
			req.Filter.State = &v1.PodSandboxStateValue{State: v1.PodSandboxState(v1.PodSandboxState_value[f.State])}
		}
	}
	st, err := a.rt.StreamPodSandboxes(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	out := []podSandbox{}
	n, err := drain(st.Recv, func(r *v1.StreamPodSandboxesResponse) {
		for _, p := range r.PodSandboxes {
			out = append(out, podSandbox{ID: p.Id, Metadata: v1PodMetadata(p.Metadata), State: p.State.String(),
				CreatedAt: p.CreatedAt, Labels: p.Labels, Annotations: p.Annotations,
				RuntimeHandler: p.RuntimeHandler})
		}
	})
	return out, n, err
}

func (a *apiV1) StreamContainers(ctx context.Context, f *containerFilter) ([]container, int, error) {
	req := &v1.StreamContainersRequest{}
	if f != nil {
		req.Filter = &v1.ContainerFilter{Id: f.ID, PodSandboxId: f.PodSandboxID, LabelSelector: f.LabelSelector}
		if f.State != "" {
			req.Filter.State = &v1.ContainerStateValue{State: v1.ContainerState(v1.ContainerState_value[f.State])}
		}
	}
	st, err := a.rt.StreamContainers(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	out := []container{}
	n, err := drain(st.Recv, func(r *v1.StreamContainersResponse) {
		for _, c := range r.Containers {
			out = append(out, container{ID: c.Id, PodSandboxID: c.PodSandboxId, Name: c.GetMetadata().GetName(),
				Attempt: c.GetMetadata().GetAttempt(), Image: c.GetImage().GetImage(), ImageRef: c.ImageRef,
				State: c.State.String(), CreatedAt: c.CreatedAt, Labels: c.Labels, Annotations: c.Annotations})
		}
	})
	return out, n, err
}

func (a *apiV1) StreamContainerStats(ctx context.Context, f *statsFilter) ([]ctrStats, int, error) {
	st, err := a.rt.StreamContainerStats(ctx, &v1.StreamContainerStatsRequest{Filter: v1CtrStatsFilter(f)})
	if err != nil {
		return nil, 0, err
	}
	out := []ctrStats{}
	n, err := drain(st.Recv, func(r *v1.StreamContainerStatsResponse) {
		for _, s := range r.ContainerStats {
			out = append(out, v1CtrStats(s))
		}
	})
	return out, n, err
}

func (a *apiV1) StreamPodSandboxStats(ctx context.Context, f *statsFilter) ([]podStats, int, error) {
	st, err := a.rt.StreamPodSandboxStats(ctx, &v1.StreamPodSandboxStatsRequest{Filter: v1PodStatsFilter(f)})
	if err != nil {
		return nil, 0, err
	}
	out := []podStats{}
	n, err := drain(st.Recv, func(r *v1.StreamPodSandboxStatsResponse) {
		for _, s := range r.PodSandboxStats {
			out = append(out, v1PodStats(s))
		}
	})
	return out, n, err
}

func (a *apiV1) StreamPodSandboxMetrics(ctx context.Context) ([]podMetrics, int, error) {
	st, err := a.rt.StreamPodSandboxMetrics(ctx, &v1.StreamPodSandboxMetricsRequest{})
	if err != nil {
		return nil, 0, err
	}
	out := []podMetrics{}
	n, err := drain(st.Recv, func(r *v1.StreamPodSandboxMetricsResponse) {
		for _, p := range r.PodSandboxMetrics {
			out = append(out, v1PodMetrics(p))
		}
	})
	return out, n, err
}
