package main

import (
	"context"

	v1 "crid/cri/v1"

	"google.golang.org/grpc"
)

// apiV1 speaks runtime.v1, the API of kubelets 1.26 and later (1.23-1.25
// try it first).
type apiV1 struct {
	rt  v1.RuntimeServiceClient
	img v1.ImageServiceClient
}

func newV1(conn *grpc.ClientConn) criAPI {
	return &apiV1{rt: v1.NewRuntimeServiceClient(conn), img: v1.NewImageServiceClient(conn)}
}

func (a *apiV1) Name() string { return "v1" }

func (a *apiV1) Version(ctx context.Context, version string) (*versionInfo, error) {
	r, err := a.rt.Version(ctx, &v1.VersionRequest{Version: version})
	if err != nil {
		return nil, err
	}
	return &versionInfo{r.Version, r.RuntimeName, r.RuntimeVersion, r.RuntimeApiVersion}, nil
}

func (a *apiV1) Status(ctx context.Context, verbose bool) (*runtimeStatus, error) {
	r, err := a.rt.Status(ctx, &v1.StatusRequest{Verbose: verbose})
	if err != nil {
		return nil, err
	}
	out := &runtimeStatus{Info: r.Info}
	for _, c := range r.GetStatus().GetConditions() {
		out.Conditions = append(out.Conditions, condition{c.Type, c.Status, c.Reason, c.Message})
	}
	return out, nil
}

func (a *apiV1) RuntimeConfig(ctx context.Context) (string, error) {
	r, err := a.rt.RuntimeConfig(ctx, &v1.RuntimeConfigRequest{})
	if err != nil {
		return "", err
	}
	if r.Linux == nil {
		return "", nil
	}
	return r.Linux.CgroupDriver.String(), nil
}

func (a *apiV1) ContainerEvents(ctx context.Context) (func() (*containerEvent, error), error) {
	stream, err := a.rt.GetContainerEvents(ctx, &v1.GetEventsRequest{})
	if err != nil {
		return nil, err
	}
	return func() (*containerEvent, error) {
		e, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		out := &containerEvent{ContainerID: e.ContainerId, Type: e.ContainerEventType.String(),
			CreatedAt: e.CreatedAt}
		if s := e.PodSandboxStatus; s != nil {
			out.PodSandboxID = s.Id
			out.PodUID = s.GetMetadata().GetUid()
		}
		for _, c := range e.ContainersStatuses {
			out.ContainerStatuses = append(out.ContainerStatuses, c.Id)
		}
		return out, nil
	}, nil
}

func (a *apiV1) PullImage(ctx context.Context, image string, auth *authConfig, pod *podConfig) (string, error) {
	req := &v1.PullImageRequest{Image: &v1.ImageSpec{Image: image}, SandboxConfig: v1PodConfig(pod)}
	if auth != nil {
		req.Auth = &v1.AuthConfig{Username: auth.Username, Password: auth.Password}
	}
	r, err := a.img.PullImage(ctx, req)
	if err != nil {
		return "", err
	}
	return r.ImageRef, nil
}

func v1Image(i *v1.Image) imageInfo {
	out := imageInfo{ID: i.Id, RepoTags: i.RepoTags, RepoDigests: i.RepoDigests, Size: i.Size,
		Username: i.Username, Pinned: i.Pinned}
	if i.Uid != nil {
		uid := i.Uid.Value
		out.UID = &uid
	}
	return out
}

func (a *apiV1) ListImages(ctx context.Context) ([]imageInfo, error) {
	r, err := a.img.ListImages(ctx, &v1.ListImagesRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]imageInfo, 0, len(r.Images))
	for _, i := range r.Images {
		out = append(out, v1Image(i))
	}
	return out, nil
}

func (a *apiV1) ImageStatus(ctx context.Context, image string) (*imageInfo, error) {
	r, err := a.img.ImageStatus(ctx, &v1.ImageStatusRequest{Image: &v1.ImageSpec{Image: image}})
	if err != nil || r.Image == nil {
		return nil, err
	}
	i := v1Image(r.Image)
	return &i, nil
}

func (a *apiV1) ImageFsInfo(ctx context.Context) ([]fsUsage, error) {
	r, err := a.img.ImageFsInfo(ctx, &v1.ImageFsInfoRequest{})
	if err != nil {
		return nil, err
	}
	var out []fsUsage
	for _, f := range r.ImageFilesystems {
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

func (a *apiV1) RemoveImage(ctx context.Context, image string) error {
	_, err := a.img.RemoveImage(ctx, &v1.RemoveImageRequest{Image: &v1.ImageSpec{Image: image}})
	return err
}

func v1NamespaceOption(hostNetwork bool) *v1.NamespaceOption {
	ns := &v1.NamespaceOption{Network: v1.NamespaceMode_POD, Pid: v1.NamespaceMode_CONTAINER,
		Ipc: v1.NamespaceMode_POD}
	if hostNetwork {
		ns.Network = v1.NamespaceMode_NODE
	}
	return ns
}

func v1PodConfig(c *podConfig) *v1.PodSandboxConfig {
	if c == nil {
		return nil
	}
	out := &v1.PodSandboxConfig{Hostname: c.Hostname, LogDirectory: c.LogDirectory,
		Labels: c.Labels, Annotations: c.Annotations,
		Linux: &v1.LinuxPodSandboxConfig{CgroupParent: c.CgroupParent,
			SecurityContext: &v1.LinuxSandboxSecurityContext{
				NamespaceOptions: v1NamespaceOption(c.HostNetwork)}}}
	if m := c.Metadata; m != nil {
		out.Metadata = &v1.PodSandboxMetadata{Name: m.Name, Uid: m.UID, Namespace: m.Namespace,
			Attempt: m.Attempt}
	}
	for _, p := range c.PortMappings {
		out.PortMappings = append(out.PortMappings, &v1.PortMapping{
			Protocol: v1.Protocol(v1.Protocol_value[p.Protocol]), ContainerPort: p.ContainerPort,
			HostPort: p.HostPort, HostIp: p.HostIP})
	}
	return out
}

func (a *apiV1) RunPodSandbox(ctx context.Context, cfg *podConfig, handler string) (string, error) {
	r, err := a.rt.RunPodSandbox(ctx, &v1.RunPodSandboxRequest{Config: v1PodConfig(cfg),
		RuntimeHandler: handler})
	if err != nil {
		return "", err
	}
	return r.PodSandboxId, nil
}

func v1PodMetadata(m *v1.PodSandboxMetadata) podMetadata {
	return podMetadata{m.GetName(), m.GetUid(), m.GetNamespace(), m.GetAttempt()}
}

func (a *apiV1) PodSandboxStatus(ctx context.Context, id string) (*podStatus, error) {
	r, err := a.rt.PodSandboxStatus(ctx, &v1.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return nil, err
	}
	s := r.Status
	if s == nil {
		return nil, nil
	}
	ns := s.GetLinux().GetNamespaces().GetOptions()
	var additionalIPs []string
	for _, ip := range s.GetNetwork().GetAdditionalIps() {
		additionalIPs = append(additionalIPs, ip.GetIp())
	}
	return &podStatus{
		podSandbox: podSandbox{ID: s.Id, Metadata: v1PodMetadata(s.Metadata), State: s.State.String(),
			CreatedAt: s.CreatedAt, Labels: s.Labels, Annotations: s.Annotations,
			RuntimeHandler: s.RuntimeHandler},
		HasMetadata: s.Metadata != nil, IP: s.GetNetwork().GetIp(), AdditionalIPs: additionalIPs,
		Network: ns.GetNetwork().String(), PID: ns.GetPid().String(), IPC: ns.GetIpc().String(),
		Info: r.Info}, nil
}

func (a *apiV1) ListPodSandbox(ctx context.Context, f *podFilter) ([]podSandbox, error) {
	req := &v1.ListPodSandboxRequest{}
	if f != nil {
		req.Filter = &v1.PodSandboxFilter{Id: f.ID, LabelSelector: f.LabelSelector}
		if f.State != "" {
			req.Filter.State = &v1.PodSandboxStateValue{
				State: v1.PodSandboxState(v1.PodSandboxState_value[f.State])}
		}
	}
	r, err := a.rt.ListPodSandbox(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]podSandbox, 0, len(r.Items))
	for _, p := range r.Items {
		out = append(out, podSandbox{ID: p.Id, Metadata: v1PodMetadata(p.Metadata),
			State: p.State.String(), CreatedAt: p.CreatedAt, Labels: p.Labels,
			Annotations: p.Annotations, RuntimeHandler: p.RuntimeHandler})
	}
	return out, nil
}

func (a *apiV1) StopPodSandbox(ctx context.Context, id string) error {
	_, err := a.rt.StopPodSandbox(ctx, &v1.StopPodSandboxRequest{PodSandboxId: id})
	return err
}

func (a *apiV1) RemovePodSandbox(ctx context.Context, id string) error {
	_, err := a.rt.RemovePodSandbox(ctx, &v1.RemovePodSandboxRequest{PodSandboxId: id})
	return err
}

func (a *apiV1) CreateContainer(ctx context.Context, podID string, c *containerConfig, pod *podConfig) (string, error) {
	cfg := &v1.ContainerConfig{
		Metadata: &v1.ContainerMetadata{Name: c.Name, Attempt: c.Attempt},
		Image:    &v1.ImageSpec{Image: c.Image},
		Command:  c.Command, Args: c.Args, WorkingDir: c.WorkingDir,
		Labels: c.Labels, Annotations: c.Annotations, LogPath: c.LogPath,
		Linux: &v1.LinuxContainerConfig{
			Resources: &v1.LinuxContainerResources{CpuShares: c.CPUShares},
			SecurityContext: &v1.LinuxContainerSecurityContext{
				NamespaceOptions: v1NamespaceOption(c.HostNetwork)}},
	}
	for _, kv := range c.Envs {
		cfg.Envs = append(cfg.Envs, &v1.KeyValue{Key: kv[0], Value: []byte(kv[1])})
	}
	r, err := a.rt.CreateContainer(ctx, &v1.CreateContainerRequest{PodSandboxId: podID, Config: cfg,
		SandboxConfig: v1PodConfig(pod)})
	if err != nil {
		return "", err
	}
	return r.ContainerId, nil
}

func (a *apiV1) StartContainer(ctx context.Context, id string) error {
	_, err := a.rt.StartContainer(ctx, &v1.StartContainerRequest{ContainerId: id})
	return err
}

func (a *apiV1) StopContainer(ctx context.Context, id string, timeoutS int64) error {
	_, err := a.rt.StopContainer(ctx, &v1.StopContainerRequest{ContainerId: id, Timeout: timeoutS})
	return err
}

func (a *apiV1) RemoveContainer(ctx context.Context, id string) error {
	_, err := a.rt.RemoveContainer(ctx, &v1.RemoveContainerRequest{ContainerId: id})
	return err
}

func (a *apiV1) ContainerStatus(ctx context.Context, id string) (*containerStatus, error) {
	r, err := a.rt.ContainerStatus(ctx, &v1.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return nil, err
	}
	s := r.Status
	if s == nil {
		return nil, nil
	}
	return &containerStatus{ID: s.Id, HasMetadata: s.Metadata != nil, Name: s.GetMetadata().GetName(),
		Attempt: s.GetMetadata().GetAttempt(), State: s.State.String(), CreatedAt: s.CreatedAt,
		StartedAt: s.StartedAt, FinishedAt: s.FinishedAt, ExitCode: s.ExitCode,
		Image: s.GetImage().GetImage(), ImageRef: s.ImageRef, Reason: s.Reason, Message: s.Message,
		Labels: s.Labels, Annotations: s.Annotations, Mounts: len(s.Mounts), LogPath: s.LogPath}, nil
}

func (a *apiV1) ListContainers(ctx context.Context, f *containerFilter) ([]container, error) {
	req := &v1.ListContainersRequest{}
	if f != nil {
		req.Filter = &v1.ContainerFilter{Id: f.ID, PodSandboxId: f.PodSandboxID,
			LabelSelector: f.LabelSelector}
		if f.State != "" {
			req.Filter.State = &v1.ContainerStateValue{
				State: v1.ContainerState(v1.ContainerState_value[f.State])}
		}
	}
	r, err := a.rt.ListContainers(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]container, 0, len(r.Containers))
	for _, c := range r.Containers {
		out = append(out, container{ID: c.Id, PodSandboxID: c.PodSandboxId,
			Name: c.GetMetadata().GetName(), Attempt: c.GetMetadata().GetAttempt(),
			Image: c.GetImage().GetImage(), ImageRef: c.ImageRef, State: c.State.String(),
			CreatedAt: c.CreatedAt, Labels: c.Labels, Annotations: c.Annotations})
	}
	return out, nil
}

func (a *apiV1) ExecSync(ctx context.Context, id string, cmd []string, timeoutS int64) (*execResult, error) {
	r, err := a.rt.ExecSync(ctx, &v1.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeoutS})
	if err != nil {
		return nil, err
	}
	return &execResult{r.Stdout, r.Stderr, r.ExitCode}, nil
}

func (a *apiV1) ReopenContainerLog(ctx context.Context, id string) error {
	_, err := a.rt.ReopenContainerLog(ctx, &v1.ReopenContainerLogRequest{ContainerId: id})
	return err
}

func (a *apiV1) Exec(ctx context.Context, id string, cmd []string, tty, stdin, stdout, stderr bool) (string, error) {
	r, err := a.rt.Exec(ctx, &v1.ExecRequest{ContainerId: id, Cmd: cmd, Tty: tty, Stdin: stdin, Stdout: stdout,
		Stderr: stderr})
	if err != nil {
		return "", err
	}
	return r.Url, nil
}

func (a *apiV1) Attach(ctx context.Context, id string, tty, stdin, stdout, stderr bool) (string, error) {
	r, err := a.rt.Attach(ctx, &v1.AttachRequest{ContainerId: id, Tty: tty, Stdin: stdin, Stdout: stdout,
		Stderr: stderr})
	if err != nil {
		return "", err
	}
	return r.Url, nil
}

func (a *apiV1) PortForward(ctx context.Context, podID string, ports []int32) (string, error) {
	r, err := a.rt.PortForward(ctx, &v1.PortForwardRequest{PodSandboxId: podID, Port: ports})
	if err != nil {
		return "", err
	}
	return r.Url, nil
}
