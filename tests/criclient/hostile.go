package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// hostile checks, as the kubelet sees them, what crid does against hostile
// clients and registries: calls keep answering fast while others hold the
// runtime busy, lists stay decodable by grpc-go, bad requests are refused
// naming the field, and ExecSync output beyond a response is truncated.
type hostileOpts struct {
	image, logDir, cgroupParent, checks string
	maxMs                               int
	rounds                              int
}

func hostileFlags(fs *flag.FlagSet) func(*session) {
	o := &hostileOpts{}
	fs.StringVar(&o.image, "image", "", "a pullable image with /bin/sh and head (refusals, exec)")
	fs.StringVar(&o.logDir, "log-dir", "", "root of the pod log directories (refusals, exec)")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "the pods' cgroup parent (default /criclient-<random>)")
	fs.StringVar(&o.checks, "checks", "latency,decode", "comma-separated: latency, decode, refusals, exec")
	fs.IntVar(&o.maxMs, "max-ms", 100, "latency: the slowest answer allowed, in milliseconds")
	fs.IntVar(&o.rounds, "rounds", 3, "latency: rounds of calls")
	return func(s *session) {
		if o.cgroupParent == "" {
			o.cgroupParent = "/criclient-" + randHex(5)
		}
		for _, c := range strings.Split(o.checks, ",") {
			switch c {
			case "latency":
				hostileLatency(s, o)
			case "decode":
				hostileDecode(s)
			case "refusals":
				hostileRefusals(s, o)
			case "exec":
				hostileExec(s, o)
			default:
				fatalf("unknown check %q (latency, decode, refusals, exec)", c)
			}
		}
	}
}

// hostileLatency: the calls a kubelet makes all the time answer within
// --max-ms, whatever else crid is busy with.
func hostileLatency(s *session, o *hostileOpts) {
	api := s.api
	calls := []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"Version", func(ctx context.Context) error { _, err := api.Version(ctx, "0.1.0"); return err }},
		{"Status", func(ctx context.Context) error { _, err := api.Status(ctx, false); return err }},
		{"ListPodSandbox", func(ctx context.Context) error { _, err := api.ListPodSandbox(ctx, nil); return err }},
		{"ListContainers", func(ctx context.Context) error { _, err := api.ListContainers(ctx, nil); return err }},
		{"ListImages", func(ctx context.Context) error { _, err := api.ListImages(ctx); return err }},
	}
	limit := time.Duration(o.maxMs) * time.Millisecond
	for r := 0; r < o.rounds; r++ {
		for _, c := range calls {
			// The first call also dials: it gets a second.
			within := limit
			if r == 0 {
				within += time.Second
			}
			if d := s.callWithin(c.name, within, c.fn); d > within {
				fatalf("%s took %.1f ms, more than %d ms", c.name, ms(d), o.maxMs)
			}
		}
	}
}

// hostileDecode: every list and status grpc-go decodes (it refuses strings
// that are not UTF-8, which would break the kubelet for every pod).
func hostileDecode(s *session) {
	api := s.api
	var pods []podSandbox
	s.call("ListPodSandbox", func(ctx context.Context) (err error) { pods, err = api.ListPodSandbox(ctx, nil); return })
	for _, p := range pods {
		s.call("PodSandboxStatus "+p.ID, func(ctx context.Context) error {
			_, err := api.PodSandboxStatus(ctx, p.ID)
			return err
		})
	}
	var ctrs []container
	s.call("ListContainers", func(ctx context.Context) (err error) { ctrs, err = api.ListContainers(ctx, nil); return })
	for _, c := range ctrs {
		s.call("ContainerStatus "+c.ID, func(ctx context.Context) error {
			_, err := api.ContainerStatus(ctx, c.ID)
			return err
		})
	}
	s.call("ListImages", func(ctx context.Context) error { _, err := api.ListImages(ctx); return err })
}

func expectMessage(what, msg string, parts ...string) {
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			fatalf("%s: the error %q does not say %q", what, msg, p)
		}
	}
}

// hostilePod runs a pod as the kubelet would, cleaned up at the end.
func hostilePod(s *session, o *hostileOpts) (string, *podConfig) {
	if o.image == "" || o.logDir == "" {
		fatalf("these checks need --image and --log-dir")
	}
	name := "criclient-hostile-" + randHex(4)
	uid := kubeletUID()
	pod := &podConfig{
		Metadata:     &podMetadata{Name: name, UID: uid, Namespace: "criclient"},
		LogDirectory: filepath.Join(o.logDir, "criclient_"+name+"_"+uid),
		CgroupParent: o.cgroupParent,
	}
	if err := os.MkdirAll(pod.LogDirectory, 0o755); err != nil {
		fatalf("make the pod log directory: %v", err)
	}
	var id string
	s.call("RunPodSandbox", func(ctx context.Context) (err error) { id, err = s.api.RunPodSandbox(ctx, pod, ""); return })
	s.rep.Pods = append(s.rep.Pods, id)
	s.later("StopPodSandbox+RemovePodSandbox "+id, func(ctx context.Context) error {
		if err := s.api.StopPodSandbox(ctx, id); err != nil {
			return err
		}
		return s.api.RemovePodSandbox(ctx, id)
	})
	return id, pod
}

func hostileRefusals(s *session, o *hostileOpts) {
	api := s.api
	var ref string
	s.call("PullImage", func(ctx context.Context) (err error) { ref, err = api.PullImage(ctx, o.image, nil, nil); return })
	st := s.expectCode("RemoveImage of a name with a NUL byte", codes.InvalidArgument, func(ctx context.Context) error {
		return api.RemoveImage(ctx, o.image+"\x00evil")
	})
	expectMessage("RemoveImage with a NUL byte", st.Message(), "image.image", "NUL")
	s.call("ImageStatus after the refused RemoveImage", func(ctx context.Context) error {
		img, err := api.ImageStatus(ctx, o.image)
		if err == nil && (img == nil || img.ID != ref) {
			fatalf("the image %s went with a refused RemoveImage", o.image)
		}
		return err
	})

	bad := &podConfig{Metadata: &podMetadata{Name: "bad\x00name", UID: kubeletUID(), Namespace: "criclient"},
		CgroupParent: o.cgroupParent}
	st = s.expectCode("RunPodSandbox named with a NUL byte", codes.InvalidArgument, func(ctx context.Context) error {
		_, err := api.RunPodSandbox(ctx, bad, "")
		return err
	})
	expectMessage("RunPodSandbox with a NUL byte", st.Message(), "config.metadata.name")

	big := map[string]string{}
	for i := 0; i < 300; i++ {
		big["k"+randHex(4)] = strings.Repeat("v", 1000)
	}
	heavy := &podConfig{Metadata: &podMetadata{Name: "heavy", UID: kubeletUID(), Namespace: "criclient"},
		Labels: big, CgroupParent: o.cgroupParent}
	st = s.expectCode("RunPodSandbox with 300 KiB of labels", codes.InvalidArgument, func(ctx context.Context) error {
		_, err := api.RunPodSandbox(ctx, heavy, "")
		return err
	})
	expectMessage("RunPodSandbox with 300 KiB of labels", st.Message(), "config.labels")

	podID, pod := hostilePod(s, o)
	for _, p := range []string{"/tmp/criclient-evil-" + randHex(4) + ".log", "../escape.log"} {
		cfg := &containerConfig{Name: "evil", Image: o.image, Command: []string{"/bin/sh", "-c", "echo pwned"},
			LogPath: p}
		st = s.expectCode("CreateContainer with log_path "+p, codes.InvalidArgument, func(ctx context.Context) error {
			_, err := api.CreateContainer(ctx, podID, cfg, pod)
			return err
		})
		expectMessage("CreateContainer with log_path "+p, st.Message(), "log_path")
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			fatalf("CreateContainer with log_path %s wrote the file", p)
		}
	}
}

// hostileExec: 100 MB of output is truncated to what one response holds
// (the kubelet's 16 MiB), not refused.
func hostileExec(s *session, o *hostileOpts) {
	api := s.api
	podID, pod := hostilePod(s, o)
	if err := os.MkdirAll(filepath.Join(pod.LogDirectory, "target"), 0o755); err != nil {
		fatalf("make the container log directory: %v", err)
	}
	cfg := &containerConfig{Name: "target", Image: o.image, Command: []string{"sleep", "1000"}, LogPath: "target/0.log"}
	var id string
	s.call("PullImage", func(ctx context.Context) (err error) { _, err = api.PullImage(ctx, o.image, nil, pod); return })
	s.call("CreateContainer", func(ctx context.Context) (err error) { id, err = api.CreateContainer(ctx, podID, cfg, pod); return })
	s.rep.Containers = append(s.rep.Containers, id)
	s.later("RemoveContainer "+id, func(ctx context.Context) error { return api.RemoveContainer(ctx, id) })
	s.call("StartContainer", func(ctx context.Context) error { return api.StartContainer(ctx, id) })
	var res *execResult
	s.call("ExecSync of 100 MB of output", func(ctx context.Context) (err error) {
		res, err = api.ExecSync(ctx, id, []string{"sh", "-c", "head -c 100000000 /dev/zero; echo done >&2"}, 60)
		return
	})
	want := (16<<20 - 4096) / 2
	expectEq("ExecSync: exit code", res.ExitCode, int32(0))
	expectEq("ExecSync: stdout kept", len(res.Stdout), want)
	expectEq("ExecSync: stderr", string(res.Stderr), "done\n")
}
