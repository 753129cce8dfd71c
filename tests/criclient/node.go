package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type nodeOpts struct {
	image, authImage, username, password string
	expectImageID                        string
	logDir, handler, runtimeName         string
	cgroupDriver, cgroupParent           string
	podCIDR                              string
	podNet                               *net.IPNet
	hostPort                             int
}

func nodeFlags(fs *flag.FlagSet) func(*session) {
	o := &nodeOpts{}
	fs.StringVar(&o.image, "image", "", "image to pull without credentials and run: host/repo:tag")
	fs.StringVar(&o.authImage, "auth-image", "", "image that needs --username and --password: host/repo:tag")
	fs.StringVar(&o.username, "username", "", "registry user for --auth-image")
	fs.StringVar(&o.password, "password", "", "registry password for --auth-image")
	fs.StringVar(&o.expectImageID, "expect-image-id", "", "the image ID both pulls must answer (optional)")
	fs.StringVar(&o.logDir, "log-dir", "", "root of the pod log directories (the kubelet's /var/log/pods)")
	fs.StringVar(&o.handler, "runtime-handler", "", "runtime handler of the pod (\"\": the default)")
	fs.StringVar(&o.runtimeName, "runtime-name", "crid", "runtime_name Version must answer (\"\": any)")
	fs.StringVar(&o.cgroupDriver, "cgroup-driver", "", "cgroup driver RuntimeConfig must answer, cgroupfs or systemd (\"\": either)")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "the pod's cgroup parent (default /criclient-<random>)")
	fs.StringVar(&o.podCIDR, "pod-cidr", "", "the pod network's subnet: the network must be ready, and the pod "+
		"must report an address of it that answers HTTP from here (\"\": not checked)")
	fs.IntVar(&o.hostPort, "host-port", 0, "with --pod-cidr: also publish the pod's web server as a hostPort "+
		"on 127.0.0.1 and fetch from it there (0: none)")
	return func(s *session) {
		if o.image == "" || o.logDir == "" {
			fatalf("node needs --image and --log-dir")
		}
		if o.authImage != "" && (o.username == "" || o.password == "") {
			fatalf("--auth-image needs --username and --password")
		}
		if o.cgroupParent == "" {
			o.cgroupParent = "/criclient-" + randHex(5)
		}
		if o.podCIDR != "" {
			var err error
			if _, o.podNet, err = net.ParseCIDR(o.podCIDR); err != nil {
				fatalf("--pod-cidr: %v", err)
			}
		}
		if o.hostPort != 0 && (o.podNet == nil || o.hostPort < 1 || o.hostPort > 65535) {
			fatalf("--host-port needs --pod-cidr and a port from 1 to 65535")
		}
		runNode(s, o)
	}
}

// kubeletUID: a pod UID as the API server makes them.
func kubeletUID() string {
	h := randHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var hex64 = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// repoOf: "host:5000/a/b:tag" -> "host:5000/a/b".
func repoOf(ref string) string {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		return ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}

func runNode(s *session, o *nodeOpts) {
	api := s.api
	isV1 := api.Name() == "v1"
	start := time.Now()

	// ---- the runtime
	var ver *versionInfo
	s.call("Version", func(ctx context.Context) (err error) {
		ver, err = api.Version(ctx, "0.1.0")
		return
	})
	expectEq("Version.version (the CRI version the kubelet checks)", ver.Version, "0.1.0")
	if o.runtimeName != "" {
		expectEq("Version.runtime_name", ver.RuntimeName, o.runtimeName)
	}
	if ver.RuntimeName == "" || ver.RuntimeVersion == "" {
		fatalf("Version: empty runtime_name or runtime_version: %+v", *ver)
	}
	expectEq("Version.runtime_api_version", ver.RuntimeAPIVersion, api.Name())

	var st *runtimeStatus
	s.call("Status", func(ctx context.Context) (err error) {
		st, err = api.Status(ctx, false)
		return
	})
	checkConditions(s, st)
	if o.podNet != nil && !conditionOf(st, "NetworkReady").Status {
		fatalf("Status: NetworkReady is false (%s: %s) although the node has a pod network",
			conditionOf(st, "NetworkReady").Reason, conditionOf(st, "NetworkReady").Message)
	}
	if len(st.Info) != 0 {
		fatalf("Status without verbose: info should be empty, got %v", st.Info)
	}
	s.call("Status verbose", func(ctx context.Context) (err error) {
		st, err = api.Status(ctx, true)
		return
	})
	checkConditions(s, st)
	if len(st.Info) == 0 {
		fatalf("Status verbose: no info")
	}
	for k, v := range st.Info {
		if !json.Valid([]byte(v)) {
			fatalf("Status verbose: info[%q] is not JSON: %q", k, v)
		}
	}

	if isV1 {
		var driver string
		s.call("RuntimeConfig", func(ctx context.Context) (err error) {
			driver, err = api.RuntimeConfig(ctx)
			return
		})
		if driver != "CGROUPFS" && driver != "SYSTEMD" {
			fatalf("RuntimeConfig: cgroup driver %q", driver)
		}
		if o.cgroupDriver != "" {
			expectEq("RuntimeConfig.linux.cgroup_driver", strings.ToLower(driver), o.cgroupDriver)
		}
	}

	var events *eventWatch
	if isV1 {
		events = watchEvents(s)
		defer events.stop()
	}

	// ---- images
	absent := repoOf(o.image) + ":criclient-absent-" + randHex(4)
	s.call("ImageStatus of an absent image", func(ctx context.Context) error {
		img, err := api.ImageStatus(ctx, absent)
		if err == nil && img != nil {
			fatalf("ImageStatus(%s): answered an image that was never pulled: %+v", absent, *img)
		}
		return err
	})

	var authRef string
	if o.authImage != "" {
		s.expectCode("PullImage without credentials", codes.Unauthenticated, func(ctx context.Context) error {
			_, err := api.PullImage(ctx, o.authImage, nil, nil)
			return err
		})
		s.expectCode("PullImage with a wrong password", codes.Unauthenticated, func(ctx context.Context) error {
			_, err := api.PullImage(ctx, o.authImage, &authConfig{o.username, o.password + "-wrong"}, nil)
			return err
		})
		s.call("PullImage with credentials", func(ctx context.Context) (err error) {
			authRef, err = api.PullImage(ctx, o.authImage, &authConfig{o.username, o.password}, nil)
			return
		})
		s.later("RemoveImage "+authRef, func(ctx context.Context) error { return api.RemoveImage(ctx, authRef) })
		s.rep.Images = append(s.rep.Images, authRef)
		checkImageRef(s, "PullImage("+o.authImage+")", authRef, o.expectImageID)
		checkImageStatus(s, o.authImage, authRef)
	}

	// ---- the pod, as the kubelet asks for it
	podName := "criclient-" + randHex(4)
	uid := kubeletUID()
	const ns = "criclient"
	pod := &podConfig{
		Metadata:     &podMetadata{Name: podName, UID: uid, Namespace: ns, Attempt: 0},
		Hostname:     podName,
		LogDirectory: filepath.Join(o.logDir, ns+"_"+podName+"_"+uid),
		Labels: map[string]string{"io.kubernetes.pod.name": podName,
			"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid},
		Annotations: map[string]string{"kubernetes.io/config.source": "api",
			"kubernetes.io/config.seen": time.Now().UTC().Format(time.RFC3339Nano)},
		CgroupParent: o.cgroupParent,
	}
	if o.hostPort != 0 {
		pod.PortMappings = []portMapping{{Protocol: "TCP", ContainerPort: webPort, HostPort: int32(o.hostPort),
			HostIP: "127.0.0.1"}}
	}
	if err := os.MkdirAll(pod.LogDirectory, 0o755); err != nil {
		fatalf("make the pod log directory: %v", err)
	}
	var podID string
	tRun := time.Now()
	s.call("RunPodSandbox", func(ctx context.Context) (err error) {
		podID, err = api.RunPodSandbox(ctx, pod, o.handler)
		return
	})
	undoPod := s.later("StopPodSandbox+RemovePodSandbox "+podID, func(ctx context.Context) error {
		if err := api.StopPodSandbox(ctx, podID); err != nil {
			return err
		}
		return api.RemovePodSandbox(ctx, podID)
	})
	s.rep.Pods = append(s.rep.Pods, podID)
	if podID == "" {
		fatalf("RunPodSandbox: empty pod_sandbox_id")
	}
	var ps *podStatus
	s.call("PodSandboxStatus", func(ctx context.Context) (err error) {
		ps, err = api.PodSandboxStatus(ctx, podID)
		return
	})
	checkPodStatus(s, ps, podID, pod, o.handler, "SANDBOX_READY", tRun, time.Now())
	podIP := checkPodIP(s, o, ps)

	// ---- the image of the containers: the kubelet's EnsureImageExists
	var ref string
	s.call("ImageStatus before the pull", func(ctx context.Context) error {
		img, err := api.ImageStatus(ctx, o.image)
		if err == nil && img != nil {
			fatalf("ImageStatus(%s): present before its pull: %+v", o.image, *img)
		}
		return err
	})
	s.call("PullImage", func(ctx context.Context) (err error) {
		ref, err = api.PullImage(ctx, o.image, nil, pod)
		return
	})
	s.later("RemoveImage "+ref, func(ctx context.Context) error { return api.RemoveImage(ctx, ref) })
	if ref != authRef {
		s.rep.Images = append(s.rep.Images, ref)
	}
	checkImageRef(s, "PullImage("+o.image+")", ref, o.expectImageID)
	img := checkImageStatus(s, o.image, ref)
	s.call("ImageStatus by ID", func(ctx context.Context) error {
		byID, err := api.ImageStatus(ctx, ref)
		if err == nil {
			if byID == nil {
				fatalf("ImageStatus(%s): no image for the ID PullImage answered", ref)
			}
			expectEq("ImageStatus by ID: id", byID.ID, ref)
			expectEq("ImageStatus by ID: repo_tags", byID.RepoTags, img.RepoTags)
		}
		return err
	})
	var images []imageInfo
	s.call("ListImages", func(ctx context.Context) (err error) {
		images, err = api.ListImages(ctx)
		return
	})
	found := false
	for _, i := range images {
		if i.ID != ref {
			continue
		}
		found = true
		tags := []string{o.image}
		if ref == authRef {
			tags = append(tags, o.authImage)
		}
		for _, name := range tags {
			if !contains(i.RepoTags, name) {
				fatalf("ListImages: image %s lacks the tag %s: %v", ref, name, i.RepoTags)
			}
		}
		expectEq("ListImages: size of "+ref, i.Size, img.Size)
	}
	if !found {
		fatalf("ListImages: no image %s among %d images", ref, len(images))
	}
	var fss []fsUsage
	s.call("ImageFsInfo", func(ctx context.Context) (err error) {
		fss, err = api.ImageFsInfo(ctx)
		return
	})
	checkImageFs(fss, start)

	// ---- containers
	ctrLabels := func(name string) map[string]string {
		return map[string]string{"io.kubernetes.container.name": name, "io.kubernetes.pod.name": podName,
			"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid}
	}
	ctrAnnotations := map[string]string{"io.kubernetes.container.hash": randHex(4),
		"io.kubernetes.container.restartCount":           "0",
		"io.kubernetes.container.terminationMessagePath": "/dev/termination-log"}
	newCtr := func(name string, script string) *containerConfig {
		// The kubelet makes <pod log dir>/<container> and asks for <container>/<restarts>.log.
		if err := os.MkdirAll(filepath.Join(pod.LogDirectory, name), 0o755); err != nil {
			fatalf("make the container log directory: %v", err)
		}
		return &containerConfig{Name: name, Image: o.image, Command: []string{"/bin/sh", "-c", script},
			Envs:   [][2]string{{"CRICLIENT_ENV", "value-1"}, {"CRICLIENT_POD", podName}},
			Labels: ctrLabels(name), Annotations: ctrAnnotations, LogPath: name + "/0.log", CPUShares: 2}
	}
	mainCfg := newCtr("main", "trap 'echo got-term; exit 0' TERM; echo ready-out; echo ready-err >&2; "+
		"i=0; while :; do i=$((i+1)); echo tick $i; sleep 1; done")
	var mainID string
	tCreate := time.Now()
	s.call("CreateContainer", func(ctx context.Context) (err error) {
		mainID, err = api.CreateContainer(ctx, podID, mainCfg, pod)
		return
	})
	undoMain := s.later("RemoveContainer "+mainID, func(ctx context.Context) error {
		return api.RemoveContainer(ctx, mainID)
	})
	s.rep.Containers = append(s.rep.Containers, mainID)
	if mainID == "" || mainID == podID {
		fatalf("CreateContainer: container_id %q (pod %q)", mainID, podID)
	}
	cs := containerStatusOf(s, mainID)
	logPath := filepath.Join(pod.LogDirectory, mainCfg.LogPath)
	checkContainerStatus(cs, mainID, mainCfg, ref, img, logPath)
	expectEq("ContainerStatus after CreateContainer: state", cs.State, "CONTAINER_CREATED")
	expectTime("ContainerStatus.created_at", cs.CreatedAt, tCreate, time.Now())
	expectEq("ContainerStatus after CreateContainer: started_at", cs.StartedAt, int64(0))
	s.call("ListContainers CREATED", func(ctx context.Context) error {
		l, err := api.ListContainers(ctx, &containerFilter{State: "CONTAINER_CREATED"})
		if err == nil {
			expectIDSet("ListContainers(state CREATED)", containerIDs(l), []string{mainID})
		}
		return err
	})

	tStart := time.Now()
	s.call("StartContainer", func(ctx context.Context) error { return api.StartContainer(ctx, mainID) })
	if events != nil {
		events.waitFor(s, mainID, "CONTAINER_STARTED_EVENT")
	}
	cs = containerStatusOf(s, mainID)
	checkContainerStatus(cs, mainID, mainCfg, ref, img, logPath)
	expectEq("ContainerStatus after StartContainer: state", cs.State, "CONTAINER_RUNNING")
	expectTime("ContainerStatus.started_at", cs.StartedAt, tStart, time.Now())
	waitLog(logPath, "stdout", "ready-out", 15*time.Second)
	waitLog(logPath, "stderr", "ready-err", 15*time.Second)

	// A container that exits on its own, with an exit code.
	oneCfg := newCtr("oneshot", "echo oneshot-done; exit 7")
	var oneID string
	s.call("CreateContainer oneshot", func(ctx context.Context) (err error) {
		oneID, err = api.CreateContainer(ctx, podID, oneCfg, pod)
		return
	})
	undoOne := s.later("RemoveContainer "+oneID, func(ctx context.Context) error {
		return api.RemoveContainer(ctx, oneID)
	})
	s.rep.Containers = append(s.rep.Containers, oneID)
	tOne := time.Now()
	s.call("StartContainer oneshot", func(ctx context.Context) error { return api.StartContainer(ctx, oneID) })
	ocs := waitState(s, oneID, "CONTAINER_EXITED", 30*time.Second)
	oneLog := filepath.Join(pod.LogDirectory, oneCfg.LogPath)
	checkContainerStatus(ocs, oneID, oneCfg, ref, img, oneLog)
	expectEq("oneshot: exit_code", ocs.ExitCode, int32(7))
	expectEq("oneshot: reason", ocs.Reason, "Error")
	expectTime("oneshot: started_at", ocs.StartedAt, tOne, time.Now())
	if ocs.FinishedAt < ocs.StartedAt {
		fatalf("oneshot: ContainerStatus.finished_at %d is %s before started_at %d", ocs.FinishedAt,
			time.Duration(ocs.StartedAt-ocs.FinishedAt), ocs.StartedAt)
	}
	expectEq("oneshot: log", logLines(readCRILog(oneLog), "stdout"), []string{"oneshot-done"})

	// ---- the pod network: a web server in the pod answers on its IP, and
	// on the node's loopback through its hostPort
	var webID string
	if o.podNet != nil {
		token := "criclient-web-" + randHex(4)
		webCfg := newCtr("web", fmt.Sprintf("mkdir -p /www && echo %s > /www/index.html && "+
			"exec /bin/busybox httpd -f -p %d -h /www", token, webPort))
		s.call("CreateContainer web", func(ctx context.Context) (err error) {
			webID, err = api.CreateContainer(ctx, podID, webCfg, pod)
			return
		})
		undoWeb := s.later("RemoveContainer "+webID, func(ctx context.Context) error {
			return api.RemoveContainer(ctx, webID)
		})
		s.rep.Containers = append(s.rep.Containers, webID)
		s.call("StartContainer web", func(ctx context.Context) error { return api.StartContainer(ctx, webID) })
		fetch(s, "pod IP reachable", fmt.Sprintf("http://%s/", net.JoinHostPort(podIP, fmt.Sprint(webPort))), token)
		if o.hostPort != 0 {
			fetch(s, "hostPort reachable", fmt.Sprintf("http://127.0.0.1:%d/", o.hostPort), token)
		}
		s.call("StopContainer web", func(ctx context.Context) error { return api.StopContainer(ctx, webID, 0) })
		s.call("RemoveContainer web", func(ctx context.Context) error { return api.RemoveContainer(ctx, webID) })
		undoWeb.done = true
	}

	// ---- exec
	var ex *execResult
	s.call("ExecSync", func(ctx context.Context) (err error) {
		ex, err = api.ExecSync(ctx, mainID, []string{"/bin/sh", "-c",
			"echo $CRICLIENT_ENV; echo to-stderr >&2; exit 3"}, 10)
		return
	})
	expectEq("ExecSync: stdout", string(ex.Stdout), "value-1\n")
	expectEq("ExecSync: stderr", string(ex.Stderr), "to-stderr\n")
	expectEq("ExecSync: exit_code", ex.ExitCode, int32(3))
	s.call("ExecSync hostname", func(ctx context.Context) (err error) {
		ex, err = api.ExecSync(ctx, mainID, []string{"cat", "/etc/hostname"}, 10)
		return
	})
	expectEq("ExecSync cat /etc/hostname: stdout", string(ex.Stdout), podName+"\n")
	expectEq("ExecSync cat /etc/hostname: exit_code", ex.ExitCode, int32(0))
	const big = 5 << 20 // past grpc-go's default 4 MiB limit, within the kubelet's 16 MiB
	s.call("ExecSync 5 MiB of output", func(ctx context.Context) (err error) {
		ex, err = api.ExecSync(ctx, mainID, []string{"/bin/busybox", "head", "-c", strconv.Itoa(big), "/dev/zero"}, 30)
		return
	})
	if len(ex.Stdout) != big || !bytes.Equal(ex.Stdout, make([]byte, big)) || ex.ExitCode != 0 {
		fatalf("ExecSync head -c %d /dev/zero: %d bytes of stdout, exit code %d, stderr %q", big, len(ex.Stdout),
			ex.ExitCode, ex.Stderr)
	}
	checkExecTimeout(s, mainID)
	checkStreamingSessions(s, mainID, podID)

	// ---- log rotation, as the kubelet's container log manager does it
	rotated := logPath + "." + time.Now().UTC().Format("20060102-150405")
	if err := os.Rename(logPath, rotated); err != nil {
		fatalf("rotate %s: %v", logPath, err)
	}
	s.call("ReopenContainerLog", func(ctx context.Context) error { return api.ReopenContainerLog(ctx, mainID) })
	if _, err := os.Stat(logPath); err != nil {
		fatalf("ReopenContainerLog: no new log file at %s: %v", logPath, err)
	}
	waitTick(logPath, 5*time.Second)
	readCRILog(rotated) // complete lines only, all in the CRI format

	// ---- the kubelet's relist and its per-pod lists
	checkRelist(s, podID, uid, map[string]string{mainID: "CONTAINER_RUNNING", oneID: "CONTAINER_EXITED"}, ref)

	// ---- what the kubelet's stats provider reads, and the streaming lists
	checkStats(s, podID, uid, mainID, oneID, mainCfg.Labels, start)

	// ---- wrong requests
	unknown := strings.Repeat("f", 64)
	s.expectCode("ContainerStatus of an unknown container", codes.NotFound, func(ctx context.Context) error {
		_, err := api.ContainerStatus(ctx, unknown)
		return err
	})
	s.expectCode("StartContainer of an unknown container", codes.NotFound, func(ctx context.Context) error {
		return api.StartContainer(ctx, unknown)
	})
	s.expectCode("PodSandboxStatus of an unknown pod", codes.NotFound, func(ctx context.Context) error {
		_, err := api.PodSandboxStatus(ctx, unknown)
		return err
	})
	s.expectCode("CreateContainer in an unknown pod", codes.NotFound, func(ctx context.Context) error {
		_, err := api.CreateContainer(ctx, unknown, newCtr("stray", "true"), pod)
		return err
	})
	s.expectCode("RunPodSandbox without metadata", codes.InvalidArgument, func(ctx context.Context) error {
		bad := *pod
		bad.Metadata = nil
		id, err := api.RunPodSandbox(ctx, &bad, o.handler)
		if err == nil {
			s.later("RemovePodSandbox "+id, func(ctx context.Context) error { return api.RemovePodSandbox(ctx, id) })
		}
		return err
	})

	// ---- stop and remove: containers, then the pod
	tStop := time.Now()
	d := s.call("StopContainer", func(ctx context.Context) error { return api.StopContainer(ctx, mainID, 10) })
	if d > 5*time.Second {
		fatalf("StopContainer took %s although the container exits at once on SIGTERM", d)
	}
	cs = containerStatusOf(s, mainID)
	checkContainerStatus(cs, mainID, mainCfg, ref, img, logPath)
	expectEq("ContainerStatus after StopContainer: state", cs.State, "CONTAINER_EXITED")
	expectEq("ContainerStatus after StopContainer: exit_code", cs.ExitCode, int32(0))
	expectEq("ContainerStatus after StopContainer: reason", cs.Reason, "Completed")
	expectTime("ContainerStatus.finished_at", cs.FinishedAt, tStop, time.Now())
	waitLog(logPath, "stdout", "got-term", 5*time.Second)
	if contains(logLines(readCRILog(rotated), "stdout"), "got-term") {
		fatalf("after ReopenContainerLog the container still wrote to the rotated file %s", rotated)
	}
	s.call("StopContainer again", func(ctx context.Context) error { return api.StopContainer(ctx, mainID, 10) })
	checkRelist(s, podID, uid, map[string]string{mainID: "CONTAINER_EXITED", oneID: "CONTAINER_EXITED"}, ref)
	if events != nil {
		events.waitFor(s, mainID, "CONTAINER_STOPPED_EVENT")
		events.waitFor(s, oneID, "CONTAINER_STOPPED_EVENT")
	}

	for _, c := range []struct {
		id   string
		undo *undoItem
	}{{mainID, undoMain}, {oneID, undoOne}} {
		id := c.id
		s.call("RemoveContainer", func(ctx context.Context) error { return api.RemoveContainer(ctx, id) })
		c.undo.done = true
		s.expectCode("ContainerStatus of a removed container", codes.NotFound, func(ctx context.Context) error {
			_, err := api.ContainerStatus(ctx, id)
			return err
		})
		s.call("RemoveContainer again", func(ctx context.Context) error { return api.RemoveContainer(ctx, id) })
	}
	s.call("ListContainers after RemoveContainer", func(ctx context.Context) error {
		l, err := api.ListContainers(ctx, &containerFilter{})
		if err == nil {
			expectIDSet("ListContainers after RemoveContainer", containerIDs(l), nil)
		}
		return err
	})

	s.call("StopPodSandbox", func(ctx context.Context) error { return api.StopPodSandbox(ctx, podID) })
	s.call("PodSandboxStatus after StopPodSandbox", func(ctx context.Context) (err error) {
		ps, err = api.PodSandboxStatus(ctx, podID)
		return
	})
	checkPodStatus(s, ps, podID, pod, o.handler, "SANDBOX_NOTREADY", tRun, time.Now())
	if ps.IP != "" || len(ps.AdditionalIPs) != 0 {
		fatalf("PodSandboxStatus after StopPodSandbox: the pod still reports the addresses %q %v", ps.IP,
			ps.AdditionalIPs)
	}
	s.call("ListPodSandbox READY after StopPodSandbox", func(ctx context.Context) error {
		l, err := api.ListPodSandbox(ctx, &podFilter{State: "SANDBOX_READY"})
		if err == nil {
			expectIDSet("ListPodSandbox(state READY) after StopPodSandbox", podIDs(l), nil)
		}
		return err
	})
	s.call("StopPodSandbox again", func(ctx context.Context) error { return api.StopPodSandbox(ctx, podID) })
	s.call("RemovePodSandbox", func(ctx context.Context) error { return api.RemovePodSandbox(ctx, podID) })
	undoPod.done = true
	s.expectCode("PodSandboxStatus of a removed pod", codes.NotFound, func(ctx context.Context) error {
		_, err := api.PodSandboxStatus(ctx, podID)
		return err
	})
	s.call("RemovePodSandbox again", func(ctx context.Context) error { return api.RemovePodSandbox(ctx, podID) })
	s.call("ListPodSandbox after RemovePodSandbox", func(ctx context.Context) error {
		l, err := api.ListPodSandbox(ctx, nil)
		if err == nil {
			expectIDSet("ListPodSandbox after RemovePodSandbox", podIDs(l), nil)
		}
		return err
	})

	if events != nil {
		events.waitFor(s, mainID, "CONTAINER_DELETED_EVENT")
		events.waitFor(s, oneID, "CONTAINER_DELETED_EVENT")
		events.stop()
		names := map[string]string{mainID: "main", oneID: "oneshot"}
		if webID != "" {
			names[webID] = "web"
		}
		events.check(s, names, podID, uid, start)
	}

	// ---- the images go, as the kubelet's image GC removes them: by ID
	s.call("RemoveImage", func(ctx context.Context) error { return api.RemoveImage(ctx, ref) })
	for _, it := range s.undo {
		if strings.HasPrefix(it.name, "RemoveImage ") {
			it.done = true
		}
	}
	for _, name := range []string{o.image, o.authImage} {
		if name == "" {
			continue
		}
		s.call("ImageStatus after RemoveImage", func(ctx context.Context) error {
			i, err := api.ImageStatus(ctx, name)
			if err == nil && i != nil && i.ID == ref {
				fatalf("ImageStatus(%s) after RemoveImage(%s): still there: %+v", name, ref, *i)
			}
			return err
		})
	}
	s.call("RemoveImage again", func(ctx context.Context) error { return api.RemoveImage(ctx, ref) })
	if authRef != "" && authRef != ref {
		s.call("RemoveImage of the authenticated pull", func(ctx context.Context) error {
			return api.RemoveImage(ctx, authRef)
		})
	}
	s.call("ListImages after RemoveImage", func(ctx context.Context) (err error) {
		images, err = api.ListImages(ctx)
		for _, i := range images {
			if i.ID == ref || i.ID == authRef {
				fatalf("ListImages after RemoveImage: %s still listed: %+v", i.ID, i)
			}
		}
		return
	})
}

// webPort: where the pod's web server listens.
const webPort = 8080

// checkPodIP: with a pod network, the pod reports one address of it (and
// at most the other family's as its additional address); without one, no
// address is checked.
func checkPodIP(s *session, o *nodeOpts, ps *podStatus) string {
	if o.podNet == nil {
		return ps.IP
	}
	ip := net.ParseIP(ps.IP)
	if ip == nil || !o.podNet.Contains(ip) {
		fatalf("PodSandboxStatus.network.ip: %q is not an address of the pod network %s", ps.IP, o.podCIDR)
	}
	for _, extra := range ps.AdditionalIPs {
		if a := net.ParseIP(extra); a == nil || (a.To4() == nil) == (ip.To4() == nil) {
			fatalf("PodSandboxStatus.network.additional_ips: %q is not an address of the other family than %s",
				extra, ps.IP)
		}
	}
	s.logf("PodSandboxStatus: pod IP %s %v", ps.IP, ps.AdditionalIPs)
	return ps.IP
}

// fetch GETs url until it answers (a server may still be starting) and
// checks the body is want and a newline.
func fetch(s *session, name, url, want string) {
	client := &http.Client{Timeout: 2 * time.Second}
	t0 := time.Now()
	deadline := t0.Add(20 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				expectEq(name+": GET "+url, string(body), want+"\n")
				s.addStep(name, time.Since(t0))
				s.logf("%s: GET %s answered %q", name, url, want)
				return
			}
			err = fmt.Errorf("status %d, %v", resp.StatusCode, rerr)
		}
		if time.Now().After(deadline) {
			fatalf("%s: GET %s: %v", name, url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func conditionOf(st *runtimeStatus, typ string) condition {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return condition{Type: typ}
}

func checkConditions(s *session, st *runtimeStatus) {
	got := map[string]condition{}
	var types []string
	for _, c := range st.Conditions {
		got[c.Type] = c
		types = append(types, c.Type)
	}
	rr, ok1 := got["RuntimeReady"]
	nr, ok2 := got["NetworkReady"]
	if !ok1 || !ok2 {
		fatalf("Status: conditions %v, expected RuntimeReady and NetworkReady", types)
	}
	if !rr.Status {
		fatalf("Status: RuntimeReady is false: %s: %s", rr.Reason, rr.Message)
	}
	if !nr.Status && nr.Reason == "" {
		fatalf("Status: NetworkReady is false without a reason")
	}
	s.logf("Status: RuntimeReady true, NetworkReady %v (%s)", nr.Status, nr.Reason)
}

func checkImageRef(s *session, what, ref, expectID string) {
	if !hex64.MatchString(ref) {
		fatalf("%s: image_ref %q is not an image ID (sha256:<64 hex>)", what, ref)
	}
	if expectID != "" {
		expectEq(what+": image_ref", ref, expectID)
	}
}

// checkImageStatus: ImageStatus(name) answers the image ref with name among
// its tags and a digest of its repository.
func checkImageStatus(s *session, name, ref string) *imageInfo {
	var img *imageInfo
	s.call("ImageStatus", func(ctx context.Context) (err error) {
		img, err = s.api.ImageStatus(ctx, name)
		return
	})
	if img == nil {
		fatalf("ImageStatus(%s): no image after the pull", name)
	}
	expectEq("ImageStatus("+name+").id", img.ID, ref)
	if !contains(img.RepoTags, name) {
		fatalf("ImageStatus(%s): repo_tags %v lack %s", name, img.RepoTags, name)
	}
	digest := false
	for _, d := range img.RepoDigests {
		i := strings.IndexByte(d, '@')
		if i < 0 || !hex64.MatchString(d[i+1:]) {
			fatalf("ImageStatus(%s): repo digest %q is not <repo>@sha256:<hex>", name, d)
		}
		digest = digest || d[:i] == repoOf(name)
	}
	if !digest {
		fatalf("ImageStatus(%s): repo_digests %v have none for %s", name, img.RepoDigests, repoOf(name))
	}
	if img.Size == 0 {
		fatalf("ImageStatus(%s): size 0", name)
	}
	return img
}

func checkImageFs(fss []fsUsage, start time.Time) {
	if len(fss) == 0 {
		fatalf("ImageFsInfo: no image file system")
	}
	for _, f := range fss {
		expectTime("ImageFsInfo.timestamp", f.Timestamp, start, time.Now())
		if fi, err := os.Stat(f.Mountpoint); err != nil || !fi.IsDir() {
			fatalf("ImageFsInfo: mountpoint %q is not a directory here: %v", f.Mountpoint, err)
		}
		if f.UsedBytes == nil || *f.UsedBytes == 0 || f.InodesUsed == nil || *f.InodesUsed == 0 {
			fatalf("ImageFsInfo: %s: used bytes %v, inodes used %v after a pull", f.Mountpoint,
				f.UsedBytes, f.InodesUsed)
		}
	}
}

func checkPodStatus(s *session, ps *podStatus, id string, cfg *podConfig, handler, state string, lo, hi time.Time) {
	if ps == nil {
		fatalf("PodSandboxStatus(%s): no status", id)
	}
	expectEq("PodSandboxStatus.id", ps.ID, id)
	if !ps.HasMetadata {
		fatalf("PodSandboxStatus(%s): no metadata", id)
	}
	expectEq("PodSandboxStatus.metadata", ps.Metadata, *cfg.Metadata)
	expectEq("PodSandboxStatus.state", ps.State, state)
	expectTime("PodSandboxStatus.created_at", ps.CreatedAt, lo, hi)
	expectMap("PodSandboxStatus.labels", ps.Labels, cfg.Labels)
	expectMap("PodSandboxStatus.annotations", ps.Annotations, cfg.Annotations)
	expectEq("PodSandboxStatus.runtime_handler", ps.RuntimeHandler, handler)
	wantNet := "POD"
	if cfg.HostNetwork {
		wantNet = "NODE"
	}
	expectEq("PodSandboxStatus.linux.namespaces.options (network, pid, ipc)",
		[]string{ps.Network, ps.PID, ps.IPC}, []string{wantNet, "CONTAINER", "POD"})
}

func containerStatusOf(s *session, id string) *containerStatus {
	var cs *containerStatus
	s.call("ContainerStatus", func(ctx context.Context) (err error) {
		cs, err = s.api.ContainerStatus(ctx, id)
		return
	})
	if cs == nil {
		fatalf("ContainerStatus(%s): no status", id)
	}
	return cs
}

// waitState polls ContainerStatus as the kubelet's relist would notice it.
func waitState(s *session, id, state string, timeout time.Duration) *containerStatus {
	deadline := time.Now().Add(timeout)
	for {
		cs := containerStatusOf(s, id)
		if cs.State == state {
			return cs
		}
		if time.Now().After(deadline) {
			fatalf("container %s not %s within %s: %+v", id, state, timeout, *cs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func checkContainerStatus(cs *containerStatus, id string, cfg *containerConfig, ref string, img *imageInfo, logPath string) {
	expectEq("ContainerStatus.id", cs.ID, id)
	if !cs.HasMetadata {
		fatalf("ContainerStatus(%s): no metadata", id)
	}
	expectEq("ContainerStatus.metadata.name", cs.Name, cfg.Name)
	expectEq("ContainerStatus.metadata.attempt", cs.Attempt, cfg.Attempt)
	expectEq("ContainerStatus.image.image", cs.Image, cfg.Image)
	checkContainerImageRef("ContainerStatus.image_ref", cs.ImageRef, ref, img)
	expectMap("ContainerStatus.labels", cs.Labels, cfg.Labels)
	expectMap("ContainerStatus.annotations", cs.Annotations, cfg.Annotations)
	// The kubelet reads `kubectl logs` from this path: the whole path.
	expectEq("ContainerStatus.log_path", cs.LogPath, logPath)
}

// The kubelet accepts either the image ID or one of the image's repo digests.
func checkContainerImageRef(what, got, ref string, img *imageInfo) {
	if got != ref && !contains(img.RepoDigests, got) {
		fatalf("%s: %q is neither the image ID %s nor one of its digests %v", what, got, ref, img.RepoDigests)
	}
}

// waitTick: the container's periodic output reaches the log file anew.
func waitTick(path string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range logLines(readCRILog(path), "stdout") {
			if strings.HasPrefix(l, "tick ") {
				return
			}
		}
		if time.Now().After(deadline) {
			fatalf("ReopenContainerLog: nothing written to the new %s within %s", path, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkExecTimeout: an ExecSync whose command outlives its timeout answers
// promptly with an error, and the command is killed.
func checkExecTimeout(s *session, id string) {
	argv := []string{"sleep", "4321"}
	// The kubelet gives the call the exec timeout plus its request timeout.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second+s.callTimeout)
	defer cancel()
	t0 := time.Now()
	res, err := s.api.ExecSync(ctx, id, argv, 1)
	d := time.Since(t0)
	if err == nil {
		fatalf("ExecSync %v with timeout 1 s: answered exit code %d after %s, expected DEADLINE_EXCEEDED",
			argv, res.ExitCode, d)
	}
	if status.Code(err) != codes.DeadlineExceeded {
		fatalf("ExecSync %v with timeout 1 s: %s after %s, expected DEADLINE_EXCEEDED", argv, describeErr(err), d)
	}
	if ctx.Err() != nil {
		fatalf("ExecSync %v with timeout 1 s: the client's own deadline ran out (%s)", argv, d)
	}
	if d < 900*time.Millisecond || d > 6*time.Second {
		fatalf("ExecSync %v with timeout 1 s answered DEADLINE_EXCEEDED after %s", argv, d)
	}
	s.addStep("ExecSync timeout", d)
	s.logf("ExecSync %v, timeout 1 s: %s after %.0f ms", argv, describeErr(err), ms(d))
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := procsWithArgv(argv)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			fatalf("ExecSync %v timed out, but the command still runs: pids %v", argv, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cs := containerStatusOf(s, id)
	expectEq("ContainerStatus after a timed-out exec: state", cs.State, "CONTAINER_RUNNING")
}

func containerIDs(l []container) []string {
	out := make([]string, 0, len(l))
	for _, c := range l {
		out = append(out, c.ID)
	}
	return out
}

func podIDs(l []podSandbox) []string {
	out := make([]string, 0, len(l))
	for _, p := range l {
		out = append(out, p.ID)
	}
	return out
}

// checkRelist: the four lists of the kubelet's relist, and the per-pod lists
// it makes by label, answer exactly this pod and these containers.
func checkRelist(s *session, podID, uid string, states map[string]string, ref string) {
	api := s.api
	var all, ready []podSandbox
	s.call("ListPodSandbox", func(ctx context.Context) (err error) {
		all, err = api.ListPodSandbox(ctx, nil)
		return
	})
	expectIDSet("ListPodSandbox", podIDs(all), []string{podID})
	expectEq("ListPodSandbox: state", all[0].State, "SANDBOX_READY")
	expectEq("ListPodSandbox: metadata.uid", all[0].Metadata.UID, uid)
	s.call("ListPodSandbox READY", func(ctx context.Context) (err error) {
		ready, err = api.ListPodSandbox(ctx, &podFilter{State: "SANDBOX_READY"})
		return
	})
	expectIDSet("ListPodSandbox(state READY)", podIDs(ready), []string{podID})
	s.call("ListPodSandbox by pod UID label", func(ctx context.Context) (err error) {
		ready, err = api.ListPodSandbox(ctx, &podFilter{State: "SANDBOX_READY",
			LabelSelector: map[string]string{"io.kubernetes.pod.uid": uid}})
		return
	})
	expectIDSet("ListPodSandbox(READY, label io.kubernetes.pod.uid)", podIDs(ready), []string{podID})
	s.call("ListPodSandbox by another UID label", func(ctx context.Context) (err error) {
		ready, err = api.ListPodSandbox(ctx, &podFilter{
			LabelSelector: map[string]string{"io.kubernetes.pod.uid": kubeletUID()}})
		return
	})
	expectIDSet("ListPodSandbox(label io.kubernetes.pod.uid of no pod)", podIDs(ready), nil)

	var want, running []string
	for id, st := range states {
		want = append(want, id)
		if st == "CONTAINER_RUNNING" {
			running = append(running, id)
		}
	}
	var l []container
	s.call("ListContainers", func(ctx context.Context) (err error) {
		l, err = api.ListContainers(ctx, &containerFilter{})
		return
	})
	expectIDSet("ListContainers", containerIDs(l), want)
	for _, c := range l {
		expectEq("ListContainers: state of "+c.ID, c.State, states[c.ID])
		expectEq("ListContainers: pod_sandbox_id of "+c.ID, c.PodSandboxID, podID)
		expectEq("ListContainers: label io.kubernetes.pod.uid of "+c.ID, c.Labels["io.kubernetes.pod.uid"], uid)
		if c.ImageRef != ref && !strings.Contains(c.ImageRef, "@sha256:") {
			fatalf("ListContainers: image_ref of %s: %q, expected %s or a repo digest", c.ID, c.ImageRef, ref)
		}
	}
	s.call("ListContainers RUNNING", func(ctx context.Context) (err error) {
		l, err = api.ListContainers(ctx, &containerFilter{State: "CONTAINER_RUNNING"})
		return
	})
	expectIDSet("ListContainers(state RUNNING)", containerIDs(l), running)
	s.call("ListContainers by pod UID label", func(ctx context.Context) (err error) {
		l, err = api.ListContainers(ctx, &containerFilter{
			LabelSelector: map[string]string{"io.kubernetes.pod.uid": uid}})
		return
	})
	expectIDSet("ListContainers(label io.kubernetes.pod.uid)", containerIDs(l), want)
	s.call("ListContainers by pod", func(ctx context.Context) (err error) {
		l, err = api.ListContainers(ctx, &containerFilter{PodSandboxID: podID})
		return
	})
	expectIDSet("ListContainers(pod_sandbox_id)", containerIDs(l), want)
	for id := range states {
		id := id
		s.call("ListContainers by ID", func(ctx context.Context) (err error) {
			l, err = api.ListContainers(ctx, &containerFilter{ID: id})
			return
		})
		expectIDSet("ListContainers(id "+id+")", containerIDs(l), []string{id})
	}
	if len(states) > 0 {
		s.logf("relist: 1 pod, %d containers (%d running) as expected", len(want), len(running))
	}
}
