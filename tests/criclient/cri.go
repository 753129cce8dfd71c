package main

import (
	"context"
	"errors"

	"google.golang.org/grpc"
)

// criAPI is what a kubelet asks of a container runtime, whatever the CRI
// version on the wire. apiV1 and apiV1alpha2 implement it over their own
// generated types; the scenarios see only the plain types below. Enum values
// travel as their proto names ("CONTAINER_RUNNING"), the same in both APIs.
type criAPI interface {
	Name() string

	Version(ctx context.Context, version string) (*versionInfo, error)
	Status(ctx context.Context, verbose bool) (*runtimeStatus, error)
	// RuntimeConfig answers the cgroup driver (v1 only).
	RuntimeConfig(ctx context.Context) (string, error)
	// ContainerEvents opens GetContainerEvents (v1 only); recv blocks for
	// the next event.
	ContainerEvents(ctx context.Context) (recv func() (*containerEvent, error), err error)

	PullImage(ctx context.Context, image string, auth *authConfig, pod *podConfig) (string, error)
	ListImages(ctx context.Context) ([]imageInfo, error)
	// ImageStatus answers nil when the runtime does not have the image.
	ImageStatus(ctx context.Context, image string) (*imageInfo, error)
	ImageFsInfo(ctx context.Context) ([]fsUsage, error)
	RemoveImage(ctx context.Context, image string) error

	RunPodSandbox(ctx context.Context, cfg *podConfig, handler string) (string, error)
	PodSandboxStatus(ctx context.Context, id string) (*podStatus, error)
	ListPodSandbox(ctx context.Context, f *podFilter) ([]podSandbox, error)
	StopPodSandbox(ctx context.Context, id string) error
	RemovePodSandbox(ctx context.Context, id string) error

	CreateContainer(ctx context.Context, podID string, cfg *containerConfig, pod *podConfig) (string, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, timeoutS int64) error
	RemoveContainer(ctx context.Context, id string) error
	ContainerStatus(ctx context.Context, id string) (*containerStatus, error)
	ListContainers(ctx context.Context, f *containerFilter) ([]container, error)
	ExecSync(ctx context.Context, id string, cmd []string, timeoutS int64) (*execResult, error)
	ReopenContainerLog(ctx context.Context, id string) error

	// Resource use, as the kubelet's stats provider asks for it.
	ContainerStats(ctx context.Context, id string) (*ctrStats, error)
	ListContainerStats(ctx context.Context, f *statsFilter) ([]ctrStats, error)
	PodSandboxStats(ctx context.Context, id string) (*podStats, error)
	ListPodSandboxStats(ctx context.Context, f *statsFilter) ([]podStats, error)
	// ContainerFsInfo: ImageFsInfo's container_filesystems (v1 only).
	ContainerFsInfo(ctx context.Context) ([]fsUsage, error)
	// The CRI's cAdvisor-style metrics (v1 only).
	ListMetricDescriptors(ctx context.Context) ([]metricDesc, error)
	ListPodSandboxMetrics(ctx context.Context) ([]podMetrics, error)

	// The streaming forms of the lists (v1 only): every message of the
	// stream, its items gathered in order, and how many messages came.
	StreamPodSandboxes(ctx context.Context, f *podFilter) ([]podSandbox, int, error)
	StreamContainers(ctx context.Context, f *containerFilter) ([]container, int, error)
	StreamContainerStats(ctx context.Context, f *statsFilter) ([]ctrStats, int, error)
	StreamPodSandboxStats(ctx context.Context, f *statsFilter) ([]podStats, int, error)
	StreamPodSandboxMetrics(ctx context.Context) ([]podMetrics, int, error)
	// Exec, Attach and PortForward answer the URL of a streaming session.
	Exec(ctx context.Context, id string, cmd []string, tty, stdin, stdout, stderr bool) (string, error)
	Attach(ctx context.Context, id string, tty, stdin, stdout, stderr bool) (string, error)
	PortForward(ctx context.Context, podID string, ports []int32) (string, error)
}

// errNotInAPI: the method does not exist in this CRI version.
var errNotInAPI = errors.New("not part of this CRI version")

type versionInfo struct {
	Version, RuntimeName, RuntimeVersion, RuntimeAPIVersion string
}

type condition struct {
	Type            string
	Status          bool
	Reason, Message string
}

type runtimeStatus struct {
	Conditions []condition
	Info       map[string]string
}

type authConfig struct {
	Username, Password string
}

type imageInfo struct {
	ID          string
	RepoTags    []string
	RepoDigests []string
	Size        uint64
	UID         *int64
	Username    string
	Pinned      bool
}

type fsUsage struct {
	Timestamp  int64
	Mountpoint string
	UsedBytes  *uint64
	InodesUsed *uint64
}

type podMetadata struct {
	Name, UID, Namespace string
	Attempt              uint32
}

// podConfig is a PodSandboxConfig as the kubelet builds it for a plain pod.
type podConfig struct {
	Metadata     *podMetadata // nil: none sent
	Hostname     string
	LogDirectory string
	Labels       map[string]string
	Annotations  map[string]string
	CgroupParent string
	HostNetwork  bool
	PortMappings []portMapping
}

// portMapping is a container port of the pod, published on the node when
// HostPort is not 0.
type portMapping struct {
	Protocol      string // "TCP", "UDP", "SCTP"
	ContainerPort int32
	HostPort      int32
	HostIP        string
}

type podFilter struct {
	ID            string
	State         string // "": any
	LabelSelector map[string]string
}

type podSandbox struct {
	ID             string
	Metadata       podMetadata
	State          string
	CreatedAt      int64
	Labels         map[string]string
	Annotations    map[string]string
	RuntimeHandler string
}

type podStatus struct {
	podSandbox
	HasMetadata   bool
	IP            string
	AdditionalIPs []string
	Network       string // namespace modes as the runtime reports them
	PID           string
	IPC           string
	Info          map[string]string
}

type containerConfig struct {
	Name        string
	Attempt     uint32
	Image       string
	Command     []string
	Args        []string
	WorkingDir  string
	Envs        [][2]string
	Labels      map[string]string
	Annotations map[string]string
	LogPath     string
	CPUShares   int64
	HostNetwork bool
}

type containerFilter struct {
	ID            string
	State         string // "": any
	PodSandboxID  string
	LabelSelector map[string]string
}

type container struct {
	ID           string
	PodSandboxID string
	Name         string
	Attempt      uint32
	Image        string
	ImageRef     string
	State        string
	CreatedAt    int64
	Labels       map[string]string
	Annotations  map[string]string
}

type containerStatus struct {
	ID          string
	HasMetadata bool
	Name        string
	Attempt     uint32
	State       string
	CreatedAt   int64
	StartedAt   int64
	FinishedAt  int64
	ExitCode    int32
	Image       string
	ImageRef    string
	Reason      string
	Message     string
	Labels      map[string]string
	Annotations map[string]string
	Mounts      int
	LogPath     string
}

type execResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

type containerEvent struct {
	ContainerID       string
	Type              string
	CreatedAt         int64
	PodSandboxID      string // from pod_sandbox_status, "" when absent
	PodUID            string // from pod_sandbox_status.metadata, "" when absent
	ContainerStatuses []string
}

// statsFilter: ContainerStatsFilter or PodSandboxStatsFilter (PodSandboxID
// unused there).
type statsFilter struct {
	ID, PodSandboxID string
	LabelSelector    map[string]string
}

type ctrStats struct {
	ID, Name        string
	Labels          map[string]string
	HasCPU          bool
	CPUTimestamp    int64
	CoreNanoSeconds uint64
	HasNanoCores    bool
	NanoCores       uint64
	HasMemory       bool
	MemTimestamp    int64
	WorkingSet      uint64
	MemUsage        uint64
	HasLayer        bool
	LayerMountpoint string
	LayerBytes      uint64
	LayerInodes     uint64
}

type podStats struct {
	ID, UID         string
	Labels          map[string]string
	HasCPU          bool
	CoreNanoSeconds uint64
	HasMemory       bool
	WorkingSet      uint64
	HasProcesses    bool
	Processes       uint64
	HasNetwork      bool
	Interfaces      []string
	Containers      []ctrStats
}

type metricDesc struct {
	Name      string
	LabelKeys []string
}

type metric struct {
	Name        string
	Type        string
	LabelValues []string
	Value       uint64
}

type podMetrics struct {
	PodSandboxID string
	Metrics      []metric
	Containers   map[string][]metric
}

// newAPI answers the adapter for version ("v1" or "v1alpha2").
func newAPI(version string, conn *grpc.ClientConn) (criAPI, error) {
	switch version {
	case "v1":
		return newV1(conn), nil
	case "v1alpha2":
		return newV1alpha2(conn), nil
	}
	return nil, errors.New("--api must be v1 or v1alpha2")
}
