package main

import (
	"context"
	"encoding/json"
	"flag"
	"strings"

	v1 "crid/cri/v1"

	"google.golang.org/grpc/codes"
)

// The CDI scenario (runtime.v1): as a kubelet of 1.28 and later passes the
// devices a device plugin allocated, in ContainerConfig.CDI_devices. Status'
// verbose info must list the devices, a container given them must show
// what --check prints as --want, and an unknown device must be refused
// with InvalidArgument naming it.

type cdiOpts struct {
	image, logDir, handler, cgroupParent string
	devices, check, want, unknown        string
}

func cdiFlags(fs *flag.FlagSet) func(*session) {
	o := &cdiOpts{}
	fs.StringVar(&o.image, "image", "", "image with busybox: host/repo:tag")
	fs.StringVar(&o.logDir, "log-dir", "", "root of the pod log directories")
	fs.StringVar(&o.handler, "runtime-handler", "", "runtime handler of the pod")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "the pod's cgroup parent (default /criclient-<random>)")
	fs.StringVar(&o.devices, "devices", "", "fully-qualified CDI device names, comma-separated")
	fs.StringVar(&o.check, "check", "", "a shell script run in the container (ExecSync)")
	fs.StringVar(&o.want, "want", "", "what the script must print")
	fs.StringVar(&o.unknown, "unknown", "", "a device name CreateContainer must refuse")
	return func(s *session) {
		if o.image == "" || o.logDir == "" || o.devices == "" || o.check == "" || o.unknown == "" {
			fatalf("cdi needs --image, --log-dir, --devices, --check and --unknown")
		}
		if o.cgroupParent == "" {
			o.cgroupParent = "/criclient-" + randHex(5)
		}
		a, ok := s.api.(*apiV1)
		if !ok {
			fatalf("cdi speaks runtime.v1 only (CDI_devices is not in v1alpha2)")
		}
		runCDI(s, a, o)
	}
}

func cdiConfig(image, name string, devices []string, sc *v1.LinuxContainerSecurityContext) *v1.ContainerConfig {
	cfg := containerCfg(image, name, sc, nil)
	for _, d := range devices {
		cfg.CDIDevices = append(cfg.CDIDevices, &v1.CDIDevice{Name: d})
	}
	return cfg
}

func runCDI(s *session, a *apiV1, o *cdiOpts) {
	rt := a.rt
	devices := strings.Split(o.devices, ",")
	var st *v1.StatusResponse
	s.call("Status verbose", func(ctx context.Context) (err error) {
		st, err = rt.Status(ctx, &v1.StatusRequest{Verbose: true})
		return
	})
	var info struct {
		Devices map[string]string `json:"devices"`
	}
	if err := json.Unmarshal([]byte(st.Info["cdi"]), &info); err != nil {
		fatalf("Status info \"cdi\" %q: %v", st.Info["cdi"], err)
	}
	for _, d := range devices {
		if _, ok := info.Devices[d]; !ok {
			fatalf("Status info \"cdi\" does not list %s: %s", d, st.Info["cdi"])
		}
	}

	var imageRef string
	s.call("PullImage", func(ctx context.Context) error {
		r, err := a.img.PullImage(ctx, &v1.PullImageRequest{Image: &v1.ImageSpec{Image: o.image}})
		if err == nil {
			imageRef = r.ImageRef
		}
		return err
	})
	so := &securityOpts{logDir: o.logDir, handler: o.handler, cgroupParent: o.cgroupParent}
	pod := runPod(s, rt, so, so.podConfig("cdi", &v1.LinuxSandboxSecurityContext{}))
	sc := &v1.LinuxContainerSecurityContext{NamespaceOptions: pod.cfg.Linux.SecurityContext.NamespaceOptions}
	var id string
	s.call("CreateContainer with CDI devices", func(ctx context.Context) error {
		r, err := rt.CreateContainer(ctx, &v1.CreateContainerRequest{PodSandboxId: pod.id, SandboxConfig: pod.cfg,
			Config: cdiConfig(imageRef, "devices", devices, sc)})
		if err == nil {
			id = r.ContainerId
		}
		return err
	})
	s.rep.Containers = append(s.rep.Containers, id)
	s.call("StartContainer", func(ctx context.Context) error {
		_, err := rt.StartContainer(ctx, &v1.StartContainerRequest{ContainerId: id})
		return err
	})
	expectEq("the check script in the container", execOK(s, rt, id, o.check), o.want)

	e := s.expectCode("CreateContainer with an unknown device", codes.InvalidArgument, func(ctx context.Context) error {
		_, err := rt.CreateContainer(ctx, &v1.CreateContainerRequest{PodSandboxId: pod.id, SandboxConfig: pod.cfg,
			Config: cdiConfig(imageRef, "unknown", []string{o.unknown}, sc)})
		return err
	})
	if !strings.Contains(e.Message(), o.unknown) {
		fatalf("CreateContainer with an unknown device: %q does not name %s", e.Message(), o.unknown)
	}
	removePod(s, rt, pod)
}
