package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	v1 "crid/cri/v1"

	"google.golang.org/grpc/codes"
)

// The security scenario (runtime.v1): what a kubelet sends for a pod of the
// "restricted" Pod Security Standard (RuntimeDefault seccomp, every
// capability dropped, no new privileges, a non-root user with supplemental
// groups, a read-only root file system, its masked and read-only paths) and
// for a pod with a user namespace, then checks from inside the containers
// (with the image's sysprobe and /proc) and in ContainerStatus that each
// setting took effect; a Localhost seccomp profile; resources updated in
// place for a container and for the pod; and refusals of bad requests.

type securityOpts struct {
	image, logDir, handler, cgroupParent, profile string
	userns                                        bool
	usernsBase                                    uint32
}

func securityFlags(fs *flag.FlagSet) func(*session) {
	o := &securityOpts{}
	fs.StringVar(&o.image, "image", "", "image with /bin/sysprobe and busybox: host/repo:tag")
	fs.StringVar(&o.logDir, "log-dir", "", "root of the pod log directories")
	fs.StringVar(&o.handler, "runtime-handler", "", "runtime handler of the pods")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "the pods' cgroup parent (default /criclient-<random>)")
	fs.StringVar(&o.profile, "seccomp-profile", "", "a Localhost seccomp profile that denies mkdir (absolute path)")
	fs.BoolVar(&o.userns, "userns", false, "also run a pod with a user namespace")
	var base uint
	fs.UintVar(&base, "userns-base", 2_000_000_000/65536*65536, "first host ID of the user namespace's mapping")
	return func(s *session) {
		o.usernsBase = uint32(base)
		if o.image == "" || o.logDir == "" || o.profile == "" {
			fatalf("security needs --image, --log-dir and --seccomp-profile")
		}
		if o.cgroupParent == "" {
			o.cgroupParent = "/criclient-" + randHex(5)
		}
		a, ok := s.api.(*apiV1)
		if !ok {
			fatalf("security speaks runtime.v1 only (user namespaces and the rest are not in v1alpha2)")
		}
		runSecurity(s, a.rt, o)
	}
}

// kubeletMasked and kubeletReadonly: what the kubelet sends for procMount
// Default.
var kubeletMasked = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	"/sys/devices/virtual/powercap"}
var kubeletReadonly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

func runtimeDefault() *v1.SecurityProfile {
	return &v1.SecurityProfile{ProfileType: v1.SecurityProfile_RuntimeDefault}
}

type secPod struct {
	id  string
	cfg *v1.PodSandboxConfig
}

func (o *securityOpts) podConfig(name string, sc *v1.LinuxSandboxSecurityContext) *v1.PodSandboxConfig {
	uid := kubeletUID()
	sc.NamespaceOptions = &v1.NamespaceOption{Network: v1.NamespaceMode_POD, Pid: v1.NamespaceMode_CONTAINER,
		Ipc: v1.NamespaceMode_POD}
	return &v1.PodSandboxConfig{
		Metadata:     &v1.PodSandboxMetadata{Name: name, Uid: uid, Namespace: "criclient"},
		LogDirectory: filepath.Join(o.logDir, "criclient_"+name+"_"+uid),
		Linux:        &v1.LinuxPodSandboxConfig{CgroupParent: o.cgroupParent, SecurityContext: sc},
	}
}

func runSecurity(s *session, rt v1.RuntimeServiceClient, o *securityOpts) {
	var st *v1.StatusResponse
	s.call("Status", func(ctx context.Context) (err error) {
		st, err = rt.Status(ctx, &v1.StatusRequest{})
		return
	})
	if !st.GetFeatures().GetSupplementalGroupsPolicy() {
		fatalf("Status.features.supplemental_groups_policy is false")
	}
	userns := map[string]bool{}
	for _, h := range st.RuntimeHandlers {
		userns[h.Name] = h.GetFeatures().GetUserNamespaces()
	}
	s.logf("user namespaces per handler: %v", userns)
	if o.userns && !userns[o.handler] {
		fatalf("Status: handler %q reports no user namespaces", o.handler)
	}

	var imageRef string
	s.call("PullImage", func(ctx context.Context) error {
		r, err := s.api.(*apiV1).img.PullImage(ctx, &v1.PullImageRequest{Image: &v1.ImageSpec{Image: o.image}})
		if err == nil {
			imageRef = r.ImageRef
		}
		return err
	})

	// ---- a restricted pod
	psc := &v1.LinuxSandboxSecurityContext{Seccomp: runtimeDefault(),
		RunAsUser: &v1.Int64Value{Value: 1000}, SupplementalGroups: []int64{3000}}
	pod := runPod(s, rt, o, o.podConfig("restricted", psc))
	restricted := &v1.LinuxContainerSecurityContext{
		Seccomp:            runtimeDefault(),
		Capabilities:       &v1.Capability{DropCapabilities: []string{"ALL"}},
		NoNewPrivs:         true,
		RunAsUser:          &v1.Int64Value{Value: 1000},
		RunAsGroup:         &v1.Int64Value{Value: 1000},
		SupplementalGroups: []int64{3000},
		ReadonlyRootfs:     true,
		MaskedPaths:        kubeletMasked,
		ReadonlyPaths:      kubeletReadonly,
		NamespaceOptions:   pod.cfg.Linux.SecurityContext.NamespaceOptions,
	}
	res := &v1.LinuxContainerResources{CpuShares: 256, MemoryLimitInBytes: 64 << 20, OomScoreAdj: 900}
	cid := runContainer(s, rt, pod, imageRef, "app", restricted, res)
	out := execOK(s, rt, cid, "grep -E '^(Seccomp|CapEff|NoNewPrivs):' /proc/self/status; id -u; id -G; "+
		"sysprobe userns mkdir; if touch /rootfs-file 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi")
	want := []string{"Seccomp:\t2", "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "1000", "userns=EPERM",
		"rootfs=ro"}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			fatalf("inside the restricted container: no %q in\n%s", w, out)
		}
	}
	groups := strings.Fields(strings.Split(out, "\n")[4])
	sort.Strings(groups)
	expectEq("id -G in the restricted container", strings.Join(groups, " "), "1000 2000 3000")

	var cs *v1.ContainerStatusResponse
	s.call("ContainerStatus", func(ctx context.Context) (err error) {
		cs, err = rt.ContainerStatus(ctx, &v1.ContainerStatusRequest{ContainerId: cid})
		return
	})
	u := cs.GetStatus().GetUser().GetLinux()
	gs := append([]int64(nil), u.GetSupplementalGroups()...)
	sort.Slice(gs, func(i, j int) bool { return gs[i] < gs[j] })
	expectEq("ContainerStatus.user", fmt.Sprint(u.GetUid(), u.GetGid(), gs), "1000 1000 [1000 2000 3000]")
	r := cs.GetStatus().GetResources().GetLinux()
	expectEq("ContainerStatus.resources", fmt.Sprint(r.GetCpuShares(), r.GetMemoryLimitInBytes(), r.GetOomScoreAdj()),
		fmt.Sprint(256, 64<<20, 900))

	s.call("UpdateContainerResources", func(ctx context.Context) error {
		_, err := rt.UpdateContainerResources(ctx, &v1.UpdateContainerResourcesRequest{ContainerId: cid,
			Linux: &v1.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 96 << 20}})
		return err
	})
	out = execOK(s, rt, cid, "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/memory/memory.limit_in_bytes "+
		"2>/dev/null || cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/memory.max")
	s.call("ContainerStatus after the update", func(ctx context.Context) (err error) {
		cs, err = rt.ContainerStatus(ctx, &v1.ContainerStatusRequest{ContainerId: cid})
		return
	})
	r = cs.GetStatus().GetResources().GetLinux()
	expectEq("ContainerStatus.resources after the update", fmt.Sprint(r.GetCpuShares(), r.GetMemoryLimitInBytes()),
		fmt.Sprint(512, 96<<20))
	if f := strings.Fields(out); len(f) != 2 || f[1] != fmt.Sprint(96<<20) {
		fatalf("cgroup files after the update: %q", out)
	}
	s.call("UpdatePodSandboxResources", func(ctx context.Context) error {
		_, err := rt.UpdatePodSandboxResources(ctx, &v1.UpdatePodSandboxResourcesRequest{PodSandboxId: pod.id,
			Resources: &v1.LinuxContainerResources{CpuShares: 1024, MemoryLimitInBytes: 512 << 20}})
		return err
	})

	// ---- Localhost seccomp, and what must be refused
	local := &v1.LinuxContainerSecurityContext{
		Seccomp:          &v1.SecurityProfile{ProfileType: v1.SecurityProfile_Localhost, LocalhostRef: o.profile},
		RunAsUser:        &v1.Int64Value{Value: 1000},
		NamespaceOptions: pod.cfg.Linux.SecurityContext.NamespaceOptions,
	}
	lid := runContainer(s, rt, pod, imageRef, "local", local, nil)
	out = execOK(s, rt, lid, "sysprobe mkdir userns")
	expectEq("sysprobe under the Localhost profile", out, "mkdir=EPERM\nuserns=OK\n")

	bad := func(name string, sc *v1.LinuxContainerSecurityContext, code codes.Code, needle string) {
		if sc.NamespaceOptions == nil {
			sc.NamespaceOptions = pod.cfg.Linux.SecurityContext.NamespaceOptions
		}
		st := s.expectCode("CreateContainer "+name, code, func(ctx context.Context) error {
			_, err := rt.CreateContainer(ctx, &v1.CreateContainerRequest{PodSandboxId: pod.id,
				SandboxConfig: pod.cfg, Config: containerCfg(imageRef, name, sc, nil)})
			return err
		})
		if !strings.Contains(st.Message(), needle) {
			fatalf("CreateContainer %s: %q does not name %q", name, st.Message(), needle)
		}
	}
	bad("missing-profile", &v1.LinuxContainerSecurityContext{Seccomp: &v1.SecurityProfile{
		ProfileType: v1.SecurityProfile_Localhost, LocalhostRef: o.profile + ".missing"}},
		codes.InvalidArgument, o.profile+".missing")
	bad("unknown-capability", &v1.LinuxContainerSecurityContext{Capabilities: &v1.Capability{
		AddCapabilities: []string{"CAP_TELEPORT"}}}, codes.InvalidArgument, "CAP_TELEPORT")
	bad("unknown-target", &v1.LinuxContainerSecurityContext{NamespaceOptions: &v1.NamespaceOption{
		Pid: v1.NamespaceMode_TARGET, TargetId: "nosuchcontainer"}}, codes.InvalidArgument, "target_id")
	removePod(s, rt, pod)

	if !o.userns {
		return
	}
	// ---- a pod with a user namespace (hostUsers: false)
	ids := []*v1.IDMapping{{HostId: o.usernsBase, ContainerId: 0, Length: 65536}}
	usc := &v1.LinuxSandboxSecurityContext{Seccomp: runtimeDefault()}
	upodCfg := o.podConfig("userns", usc)
	upodCfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &v1.UserNamespace{Mode: v1.NamespaceMode_POD,
		Uids: ids, Gids: ids}
	upod := runPod(s, rt, o, upodCfg)
	csc := &v1.LinuxContainerSecurityContext{Seccomp: runtimeDefault(),
		NamespaceOptions: upodCfg.Linux.SecurityContext.NamespaceOptions}
	ucid := runContainer(s, rt, upod, imageRef, "inside", csc, nil)
	out = execOK(s, rt, ucid, "cat /proc/self/uid_map; id -u; stat -c %u:%g /bin/busybox")
	f := strings.Fields(out)
	expectEq("uid_map, id -u and the image's owner in the user namespace", strings.Join(f, " "),
		fmt.Sprintf("0 %d 65536 0 0:0", o.usernsBase))
	removePod(s, rt, upod)
}

func runPod(s *session, rt v1.RuntimeServiceClient, o *securityOpts, cfg *v1.PodSandboxConfig) *secPod {
	var id string
	s.call("RunPodSandbox "+cfg.Metadata.Name, func(ctx context.Context) error {
		r, err := rt.RunPodSandbox(ctx, &v1.RunPodSandboxRequest{Config: cfg, RuntimeHandler: o.handler})
		if err == nil {
			id = r.PodSandboxId
		}
		return err
	})
	s.rep.Pods = append(s.rep.Pods, id)
	p := &secPod{id: id, cfg: cfg}
	s.later("remove pod "+id, func(ctx context.Context) error {
		if _, err := rt.StopPodSandbox(ctx, &v1.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			return err
		}
		_, err := rt.RemovePodSandbox(ctx, &v1.RemovePodSandboxRequest{PodSandboxId: id})
		return err
	})
	return p
}

func removePod(s *session, rt v1.RuntimeServiceClient, p *secPod) {
	s.call("StopPodSandbox", func(ctx context.Context) error {
		_, err := rt.StopPodSandbox(ctx, &v1.StopPodSandboxRequest{PodSandboxId: p.id})
		return err
	})
	s.call("RemovePodSandbox", func(ctx context.Context) error {
		_, err := rt.RemovePodSandbox(ctx, &v1.RemovePodSandboxRequest{PodSandboxId: p.id})
		return err
	})
}

func containerCfg(image, name string, sc *v1.LinuxContainerSecurityContext,
	res *v1.LinuxContainerResources) *v1.ContainerConfig {
	return &v1.ContainerConfig{
		Metadata: &v1.ContainerMetadata{Name: name},
		Image:    &v1.ImageSpec{Image: image},
		Command:  []string{"sleep", "600"},
		LogPath:  name + "_0.log",
		Linux:    &v1.LinuxContainerConfig{SecurityContext: sc, Resources: res},
	}
}

func runContainer(s *session, rt v1.RuntimeServiceClient, p *secPod, image, name string,
	sc *v1.LinuxContainerSecurityContext, res *v1.LinuxContainerResources) string {
	var id string
	s.call("CreateContainer "+name, func(ctx context.Context) error {
		r, err := rt.CreateContainer(ctx, &v1.CreateContainerRequest{PodSandboxId: p.id, SandboxConfig: p.cfg,
			Config: containerCfg(image, name, sc, res)})
		if err == nil {
			id = r.ContainerId
		}
		return err
	})
	s.rep.Containers = append(s.rep.Containers, id)
	s.call("StartContainer "+name, func(ctx context.Context) error {
		_, err := rt.StartContainer(ctx, &v1.StartContainerRequest{ContainerId: id})
		return err
	})
	return id
}

func execOK(s *session, rt v1.RuntimeServiceClient, id, script string) string {
	var r *v1.ExecSyncResponse
	s.call("ExecSync", func(ctx context.Context) (err error) {
		r, err = rt.ExecSync(ctx, &v1.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", script},
			Timeout: 30})
		return
	})
	if r.ExitCode != 0 {
		fatalf("ExecSync %q: exit code %d, stderr %q", script, r.ExitCode, r.Stderr)
	}
	return string(r.Stdout)
}
