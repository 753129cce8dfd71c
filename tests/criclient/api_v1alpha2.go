package main

import (
	"context"

	v1alpha2 "crid/cri/v1alpha2"

	"google.golang.org/grpc"
)

// apiV1alpha2 speaks runtime.v1alpha2 with its own generated types, as
// kubelets 1.20-1.25 do (1.23-1.25 when the runtime refuses v1). It has no
// RuntimeConfig and no GetContainerEvents.
type apiV1alpha2 struct {
	rt  v1alpha2.RuntimeServiceClient
	img v1alpha2.ImageServiceClient
}

func newV1alpha2(conn *grpc.ClientConn) criAPI {
	return &apiV1alpha2{rt: v1alpha2.NewRuntimeServiceClient(conn), img: v1alpha2.NewImageServiceClient(conn)}
}

func (a *apiV1alpha2) Name() string { return "v1alpha2" }

func (a *apiV1alpha2) Version(ctx context.Context, version string) (*versionInfo, error) {
	r, err := a.rt.Version(ctx, &v1alpha2.VersionRequest{Version: version})
	if err != nil {
		return nil, err
	}
	return &versionInfo{r.Version, r.RuntimeName, r.RuntimeVersion, r.RuntimeApiVersion}, nil
}

func (a *apiV1alpha2) Status(ctx context.Context, verbose bool) (*runtimeStatus, error) {
	r, err := a.rt.Status(ctx, &v1alpha2.StatusRequest{Verbose: verbose})
	if err != nil {
		return nil, err
	}
	out := &runtimeStatus{Info: r.Info}
	for _, c := range r.GetStatus().GetConditions() {
		out.Conditions = append(out.Conditions, condition{c.Type, c.Status, c.Reason, c.Message})
	}
	return out, nil
}

func (a *apiV1alpha2) RuntimeConfig(ctx context.Context) (string, error) {
	return "", errNotInAPI
}

func (a *apiV1alpha2) ContainerEvents(ctx context.Context) (func() (*containerEvent, error), error) {
	return nil, errNotInAPI
}

func (a *apiV1alpha2) PullImage(ctx context.Context, image string, auth *authConfig, pod *podConfig) (string, error) {
	req := &v1alpha2.PullImageRequest{Image: &v1alpha2.ImageSpec{Image: image}, SandboxConfig: v1alpha2PodConfig(pod)}
	if auth != nil {
		req.Auth = &v1alpha2.AuthConfig{Username: auth.Username, Password: auth.Password}
	}
	r, err := a.img.PullImage(ctx, req)
	if err != nil {
		return "", err
	}
	return r.ImageRef, nil
}

func v1alpha2Image(i *v1alpha2.Image) imageInfo {
	out := imageInfo{ID: i.Id, RepoTags: i.RepoTags, RepoDigests: i.RepoDigests, Size: i.Size,
		Username: i.Username, Pinned: i.Pinned}
	if i.Uid != nil {
		uid := i.Uid.Value
		out.UID = &uid
	}
	return out
}

func (a *apiV1alpha2) ListImages(ctx context.Context) ([]imageInfo, error) {
	r, err := a.img.ListImages(ctx, &v1alpha2.ListImagesRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]imageInfo, 0, len(r.Images))
	for _, i := range r.Images {
		out = append(out, v1alpha2Image(i))
	}
	return out, nil
}

func (a *apiV1alpha2) ImageStatus(ctx context.Context, image string) (*imageInfo, error) {
	r, err := a.img.ImageStatus(ctx, &v1alpha2.ImageStatusRequest{Image: &v1alpha2.ImageSpec{Image: image}})
	if err != nil || r.Image == nil {
		return nil, err
	}
	i := v1alpha2Image(r.Image)
	return &i, nil
}

func (a *apiV1alpha2) ImageFsInfo(ctx context.Context) ([]fsUsage, error) {
	r, err := a.img.ImageFsInfo(ctx, &v1alpha2.ImageFsInfoRequest{})
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

func (a *apiV1alpha2) RemoveImage(ctx context.Context, image string) error {
	_, err := a.img.RemoveImage(ctx, &v1alpha2.RemoveImageRequest{Image: &v1alpha2.ImageSpec{Image: image}})
	return err
}

func v1alpha2NamespaceOption(hostNetwork bool) *v1alpha2.NamespaceOption {
	ns := &v1alpha2.NamespaceOption{Network: v1alpha2.NamespaceMode_POD, Pid: v1alpha2.NamespaceMode_CONTAINER,
		Ipc: v1alpha2.NamespaceMode_POD}
	if hostNetwork {
		ns.Network = v1alpha2.NamespaceMode_NODE
	}
	return ns
}

func v1alpha2PodConfig(c *podConfig) *v1alpha2.PodSandboxConfig {
	if c == nil {
		return nil
	}
	out := &v1alpha2.PodSandboxConfig{Hostname: c.Hostname, LogDirectory: c.LogDirectory,
		Labels: c.Labels, Annotations: c.Annotations,
		Linux: &v1alpha2.LinuxPodSandboxConfig{CgroupParent: c.CgroupParent,
			SecurityContext: &v1alpha2.LinuxSandboxSecurityContext{
				NamespaceOptions: v1alpha2NamespaceOption(c.HostNetwork)}}}
	if m := c.Metadata; m != nil {
		out.Metadata = &v1alpha2.PodSandboxMetadata{Name: m.Name, Uid: m.UID, Namespace: m.Namespace,
			Attempt: m.Attempt}
	}
	for _, p := range c.PortMappings {
		out.PortMappings = append(out.PortMappings, &v1alpha2.PortMapping{
			Protocol: v1alpha2.Protocol(v1alpha2.Protocol_value[p.Protocol]), ContainerPort: p.ContainerPort,
			HostPort: p.HostPort, HostIp: p.HostIP})
	}
	return out
}

func (a *apiV1alpha2) RunPodSandbox(ctx context.Context, cfg *podConfig, handler string) (string, error) {
	r, err := a.rt.RunPodSandbox(ctx, &v1alpha2.RunPodSandboxRequest{Config: v1alpha2PodConfig(cfg),
		RuntimeHandler: handler})
	if err != nil {
		return "", err
	}
	return r.PodSandboxId, nil
}

func v1alpha2PodMetadata(m *v1alpha2.PodSandboxMetadata) podMetadata {
	return podMetadata{m.GetName(), m.GetUid(), m.GetNamespace(), m.GetAttempt()}
}

func (a *apiV1alpha2) PodSandboxStatus(ctx context.Context, id string) (*podStatus, error) {
	r, err := a.rt.PodSandboxStatus(ctx, &v1alpha2.PodSandboxStatusRequest{PodSandboxId: id})
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
		podSandbox: podSandbox{ID: s.Id, Metadata: v1alpha2PodMetadata(s.Metadata), State: s.State.String(),
			CreatedAt: s.CreatedAt, Labels: s.Labels, Annotations: s.Annotations,
			RuntimeHandler: s.RuntimeHandler},
		HasMetadata: s.Metadata != nil, IP: s.GetNetwork().GetIp(), AdditionalIPs: additionalIPs,
		Network: ns.GetNetwork().String(), PID: ns.GetPid().String(), IPC: ns.GetIpc().String(),
		Info: r.Info}, nil
}

func (a *apiV1alpha2) ListPodSandbox(ctx context.Context, f *podFilter) ([]podSandbox, error) {
	req := &v1alpha2.ListPodSandboxRequest{}
	if f != nil {
		req.Filter = &v1alpha2.PodSandboxFilter{Id: f.ID, LabelSelector: f.LabelSelector}
		if f.State != "" {
			req.Filter.State = &v1alpha2.PodSandboxStateValue{
				State: v1alpha2.PodSandboxState(v1alpha2.PodSandboxState_value[f.State])}
		}
	}
	r, err := a.rt.ListPodSandbox(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]podSandbox, 0, len(r.Items))
	for _, p := range r.Items {
		out = append(out, podSandbox{ID: p.Id, Metadata: v1alpha2PodMetadata(p.Metadata),
			State: p.State.String(), CreatedAt: p.CreatedAt, Labels: p.Labels,
			Annotations: p.Annotations, RuntimeHandler: p.RuntimeHandler})
	}
	return out, nil
}

func (a *apiV1alpha2) StopPodSandbox(ctx context.Context, id string) error {
	_, err := a.rt.StopPodSandbox(ctx, &v1alpha2.StopPodSandboxRequest{PodSandboxId: id})
	return err
}

func (a *apiV1alpha2) RemovePodSandbox(ctx context.Context, id string) error {
	_, err := a.rt.RemovePodSandbox(ctx, &v1alpha2.RemovePodSandboxRequest{PodSandboxId: id})
	return err
}

func (a *apiV1alpha2) CreateContainer(ctx context.Context, podID string, c *containerConfig, pod *podConfig) (string, error) {
	cfg := &v1alpha2.ContainerConfig{
		Metadata: &v1alpha2.ContainerMetadata{Name: c.Name, Attempt: c.Attempt},
		Image:    &v1alpha2.ImageSpec{Image: c.Image},
		Command:  c.Command, Args: c.Args, WorkingDir: c.WorkingDir,
		Labels: c.Labels, Annotations: c.Annotations, LogPath: c.LogPath,
		Linux: &v1alpha2.LinuxContainerConfig{
			Resources: &v1alpha2.LinuxContainerResources{CpuShares: c.CPUShares},
			SecurityContext: &v1alpha2.LinuxContainerSecurityContext{
				NamespaceOptions: v1alpha2NamespaceOption(c.HostNetwork)}},
	}
	for _, kv := range c.Envs {
		cfg.Envs = append(cfg.Envs, &v1alpha2.KeyValue{Key: kv[0], Value: kv[1]})
	}
	r, err := a.rt.CreateContainer(ctx, &v1alpha2.CreateContainerRequest{PodSandboxId: podID, Config: cfg,
		SandboxConfig: v1alpha2PodConfig(pod)})
	if err != nil {
		return "", err
	}
	return r.ContainerId, nil
}

func (a *apiV1alpha2) StartContainer(ctx context.Context, id string) error {
	_, err := a.rt.StartContainer(ctx, &v1alpha2.StartContainerRequest{ContainerId: id})
	return err
}

func (a *apiV1alpha2) StopContainer(ctx context.Context, id string, timeoutS int64) error {
	_, err := a.rt.StopContainer(ctx, &v1alpha2.StopContainerRequest{ContainerId: id, Timeout: timeoutS})
	return err
}

func (a *apiV1alpha2) RemoveContainer(ctx context.Context, id string) error {
	_, err := a.rt.RemoveContainer(ctx, &v1alpha2.RemoveContainerRequest{ContainerId: id})
	return err
}

func (a *apiV1alpha2) ContainerStatus(ctx context.Context, id string) (*containerStatus, error) {
	r, err := a.rt.ContainerStatus(ctx, &v1alpha2.ContainerStatusRequest{ContainerId: id})
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

func (a *apiV1alpha2) ListContainers(ctx context.Context, f *containerFilter) ([]container, error) {
	req := &v1alpha2.ListContainersRequest{}
	if f != nil {
		req.Filter = &v1alpha2.ContainerFilter{Id: f.ID, PodSandboxId: f.PodSandboxID,
			LabelSelector: f.LabelSelector}
		if f.State != "" {
			req.Filter.State = &v1alpha2.ContainerStateValue{
				State: v1alpha2.ContainerState(v1alpha2.ContainerState_value[f.State])}
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

func (a *apiV1alpha2) ExecSync(ctx context.Context, id string, cmd []string, timeoutS int64) (*execResult, error) {
	r, err := a.rt.ExecSync(ctx, &v1alpha2.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeoutS})
	if err != nil {
		return nil, err
	}
	return &execResult{r.Stdout, r.Stderr, r.ExitCode}, nil
}

func (a *apiV1alpha2) ReopenContainerLog(ctx context.Context, id string) error {
	_, err := a.rt.ReopenContainerLog(ctx, &v1alpha2.ReopenContainerLogRequest{ContainerId: id})
	return err
}

func (a *apiV1alpha2) Exec(ctx context.Context, id string, cmd []string, tty, stdin, stdout, stderr bool) (string, error) {
	r, err := a.rt.Exec(ctx, &v1alpha2.ExecRequest{ContainerId: id, Cmd: cmd, Tty: tty, Stdin: stdin, Stdout: stdout,
		Stderr: stderr})
	if err != nil {
		return "", err
	}
	return r.Url, nil
}

func (a *apiV1alpha2) Attach(ctx context.Context, id string, tty, stdin, stdout, stderr bool) (string, error) {
	r, err := a.rt.Attach(ctx, &v1alpha2.AttachRequest{ContainerId: id, Tty: tty, Stdin: stdin, Stdout: stdout,
		Stderr: stderr})
	if err != nil {
		return "", err
	}
	return r.Url, nil
}

func (a *apiV1alpha2) PortForward(ctx context.Context, podID string, ports []int32) (string, error) {
	r, err := a.rt.PortForward(ctx, &v1alpha2.PortForwardRequest{PodSandboxId: podID, Port: ports})
	if err != nil {
		return "", err
	}
	return r.Url, nil
}
