package main

// criclient bench MODE: the node benchmark's workloads, each RPC timed here,
// in the client, so that nothing of the driving script is measured.
//
//	bench podstart  --pods N      N pods started one after the other (RunPodSandbox,
//	                              CreateContainer, StartContainer), then torn down one
//	                              after the other (StopPodSandbox + RemovePodSandbox)
//	bench burst     --pods N --concurrency K   N pods started K at a time: wall time
//	bench exec      --rounds N    ExecSync of `true` in one running container
//	bench pull      --pull-image REF ...        PullImage of each, then again (warm)
//	bench relist    --pods N --rounds R         the relist (relist.go) plus single calls
//
// Benchmarks assert nothing about speed; every answer is still checked.

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

type benchOpts struct {
	image, logDir, handler, cgroupParent string
	pods, rounds, warmup, concurrency    int
	hostNetwork                          bool
	pulls                                stringList
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// benchResult is the "bench" object of the JSON report; each mode fills
// its part. Latencies are in milliseconds.
type benchResult struct {
	Mode string `json:"mode"`
	Pods int    `json:"pods,omitempty"`

	// podstart
	RunPodSandbox   []float64 `json:"run_pod_sandbox_ms,omitempty"`
	CreateContainer []float64 `json:"create_container_ms,omitempty"`
	StartContainer  []float64 `json:"start_container_ms,omitempty"`
	PodStart        []float64 `json:"pod_start_ms,omitempty"`
	Teardown        []float64 `json:"teardown_ms,omitempty"`

	// burst
	Concurrency int       `json:"concurrency,omitempty"`
	BurstWallS  float64   `json:"burst_wall_s,omitempty"`
	BurstPodMs  []float64 `json:"burst_pod_start_ms,omitempty"`

	// exec
	ExecSync []float64 `json:"exec_sync_ms,omitempty"`

	// pull: image -> {"cold": ms, "warm": ms}
	Pulls map[string]map[string]float64 `json:"pulls,omitempty"`
}

func benchFlags(mode string, fs *flag.FlagSet) func(*session) {
	if mode == "relist" {
		return relistBenchFlags(fs)
	}
	o := &benchOpts{}
	fs.StringVar(&o.image, "image", "", "image of the containers (busybox, runs `sleep`): host/repo:tag")
	fs.StringVar(&o.logDir, "log-dir", "", "root of the pod log directories")
	fs.StringVar(&o.handler, "runtime-handler", "", "runtime handler of the pods")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "cgroup parent of the pods (default /criclient-<random>)")
	fs.BoolVar(&o.hostNetwork, "host-network", false, "pods in the node's network namespace (default: the runtime's CNI network)")
	fs.IntVar(&o.pods, "pods", 50, "pods (podstart, burst)")
	fs.IntVar(&o.rounds, "rounds", 200, "ExecSync calls (exec)")
	fs.IntVar(&o.warmup, "warmup", 1, "untimed pods or calls first")
	fs.IntVar(&o.concurrency, "concurrency", 10, "pods started at once (burst)")
	fs.Var(&o.pulls, "pull-image", "image to pull cold, then warm (pull; repeat the option for more)")
	return func(s *session) {
		if o.cgroupParent == "" {
			o.cgroupParent = "/criclient-" + randHex(5)
		}
		if mode != "pull" && (o.image == "" || o.logDir == "") {
			fatalf("bench %s needs --image and --log-dir", mode)
		}
		if o.pods < 1 || o.rounds < 1 || o.concurrency < 1 || o.warmup < 0 {
			fatalf("--pods, --rounds and --concurrency must be at least 1")
		}
		res := &benchResult{Mode: mode}
		s.rep.Bench = res
		switch mode {
		case "podstart":
			benchPodStart(s, o, res)
		case "burst":
			benchBurst(s, o, res)
		case "exec":
			benchExec(s, o, res)
		case "pull":
			if len(o.pulls) == 0 {
				fatalf("bench pull needs --pull-image")
			}
			benchPull(s, o, res)
		default:
			fatalf("unknown bench mode %q: podstart, burst, exec, pull or relist", mode)
		}
	}
}

// relistBenchFlags: criclient relist with the pods held for a memory
// reading and the single calls timed (see relist.go).
func relistBenchFlags(fs *flag.FlagSet) func(*session) {
	run := relistFlagsInto(fs, func(o *relistOpts) {
		fs.BoolVar(&o.hold, "hold", false, "once the pods run, print \"criclient: pods ready\" and wait for a line on stdin")
		fs.IntVar(&o.callRounds, "call-rounds", 1000, "timed Version, ContainerStatus, ListContainers and ListPodSandbox calls each")
	})
	return run
}

// benchPod is one pod with one busybox `sleep` container, as the kubelet
// would make it.
type benchPod struct {
	id, ctrID, name string
	undo            *undoItem
	run, create     time.Duration
	start           time.Duration
}

func (p *benchPod) total() time.Duration { return p.run + p.create + p.start }

var benchPodMu sync.Mutex

// startBenchPod makes pod number i and times each of its three calls.
func startBenchPod(s *session, logDir, image, handler, cgroupParent string, hostNetwork bool, i int) *benchPod {
	api := s.api
	p := &benchPod{name: fmt.Sprintf("bench-%d-%s", i, randHex(3))}
	uid := kubeletUID()
	const ns = "criclient"
	cfg := &podConfig{
		Metadata:     &podMetadata{Name: p.name, UID: uid, Namespace: ns},
		LogDirectory: filepath.Join(logDir, ns+"_"+p.name+"_"+uid),
		Labels: map[string]string{"io.kubernetes.pod.name": p.name,
			"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid},
		CgroupParent: cgroupParent, HostNetwork: hostNetwork,
	}
	if err := os.MkdirAll(filepath.Join(cfg.LogDirectory, "sleep"), 0o755); err != nil {
		fatalf("make the pod log directory: %v", err)
	}
	p.run = s.call("RunPodSandbox", func(ctx context.Context) (err error) {
		p.id, err = api.RunPodSandbox(ctx, cfg, handler)
		return
	})
	id := p.id
	benchPodMu.Lock()
	p.undo = s.later("StopPodSandbox+RemovePodSandbox "+id, func(ctx context.Context) error {
		if err := api.StopPodSandbox(ctx, id); err != nil {
			return err
		}
		return api.RemovePodSandbox(ctx, id)
	})
	s.rep.Pods = append(s.rep.Pods, id)
	benchPodMu.Unlock()
	ctr := &containerConfig{Name: "sleep", Image: image, Command: []string{"sleep", "3600"},
		LogPath: "sleep/0.log", HostNetwork: hostNetwork,
		Labels: map[string]string{"io.kubernetes.container.name": "sleep", "io.kubernetes.pod.uid": uid}}
	p.create = s.call("CreateContainer", func(ctx context.Context) (err error) {
		p.ctrID, err = api.CreateContainer(ctx, id, ctr, cfg)
		return
	})
	benchPodMu.Lock()
	s.rep.Containers = append(s.rep.Containers, p.ctrID)
	benchPodMu.Unlock()
	p.start = s.call("StartContainer", func(ctx context.Context) error { return api.StartContainer(ctx, p.ctrID) })
	return p
}

// teardownBenchPod: the kubelet's StopPodSandbox + RemovePodSandbox, timed.
func teardownBenchPod(s *session, p *benchPod) time.Duration {
	api := s.api
	d := s.call("StopPodSandbox", func(ctx context.Context) error { return api.StopPodSandbox(ctx, p.id) })
	d += s.call("RemovePodSandbox", func(ctx context.Context) error { return api.RemovePodSandbox(ctx, p.id) })
	benchPodMu.Lock()
	p.undo.done = true
	benchPodMu.Unlock()
	return d
}

// expectRunning checks that the container of p runs.
func expectRunning(s *session, p *benchPod) {
	s.call("ContainerStatus", func(ctx context.Context) error {
		st, err := s.api.ContainerStatus(ctx, p.ctrID)
		if err == nil && st.State != "CONTAINER_RUNNING" {
			fatalf("ContainerStatus(%s) after StartContainer: %s, expected CONTAINER_RUNNING", p.ctrID, st.State)
		}
		return err
	})
}

func msList(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}

func benchPodStart(s *session, o *benchOpts, res *benchResult) {
	quiet := s.quiet
	s.quiet = true
	defer func() { s.quiet = quiet }()
	for i := 0; i < o.warmup; i++ {
		p := startBenchPod(s, o.logDir, o.image, o.handler, o.cgroupParent, o.hostNetwork, -1-i)
		teardownBenchPod(s, p)
	}
	pods := make([]*benchPod, 0, o.pods)
	var run, create, start, total []time.Duration
	for i := 0; i < o.pods; i++ {
		p := startBenchPod(s, o.logDir, o.image, o.handler, o.cgroupParent, o.hostNetwork, i)
		pods = append(pods, p)
		run, create, start = append(run, p.run), append(create, p.create), append(start, p.start)
		total = append(total, p.total())
	}
	for _, p := range pods {
		expectRunning(s, p)
	}
	var down []time.Duration
	for _, p := range pods {
		down = append(down, teardownBenchPod(s, p))
	}
	res.Pods = o.pods
	res.RunPodSandbox, res.CreateContainer, res.StartContainer = msList(run), msList(create), msList(start)
	res.PodStart, res.Teardown = msList(total), msList(down)
	s.quiet = quiet
	st, td := summarize(total), summarize(down)
	s.logf("%d pods started one after the other: p50 %.1f ms, p95 %.1f ms; torn down: p50 %.1f ms, p95 %.1f ms",
		o.pods, st.P50Ms, st.P95Ms, td.P50Ms, td.P95Ms)
}

func benchBurst(s *session, o *benchOpts, res *benchResult) {
	quiet := s.quiet
	s.quiet = true
	defer func() { s.quiet = quiet }()
	pods := make([]*benchPod, o.pods)
	t0 := time.Now()
	parallel(o.pods, o.concurrency, func(i int) {
		pods[i] = startBenchPod(s, o.logDir, o.image, o.handler, o.cgroupParent, o.hostNetwork, i)
	})
	wall := time.Since(t0)
	var total []time.Duration
	for _, p := range pods {
		expectRunning(s, p)
		total = append(total, p.total())
	}
	parallel(o.pods, o.concurrency, func(i int) { teardownBenchPod(s, pods[i]) })
	res.Pods, res.Concurrency, res.BurstWallS, res.BurstPodMs = o.pods, o.concurrency, wall.Seconds(), msList(total)
	s.quiet = quiet
	s.logf("%d pods started %d at a time in %.2f s", o.pods, o.concurrency, wall.Seconds())
}

func benchExec(s *session, o *benchOpts, res *benchResult) {
	quiet := s.quiet
	s.quiet = true
	defer func() { s.quiet = quiet }()
	p := startBenchPod(s, o.logDir, o.image, o.handler, o.cgroupParent, o.hostNetwork, 0)
	expectRunning(s, p)
	var ds []time.Duration
	for i := 0; i < o.warmup+o.rounds; i++ {
		d := s.call("ExecSync true", func(ctx context.Context) error {
			r, err := s.api.ExecSync(ctx, p.ctrID, []string{"true"}, 10)
			if err == nil && r.ExitCode != 0 {
				fatalf("ExecSync(true) in %s: exit code %d, stderr %q", p.ctrID, r.ExitCode, r.Stderr)
			}
			return err
		})
		if i >= o.warmup {
			ds = append(ds, d)
		}
	}
	teardownBenchPod(s, p)
	res.ExecSync = msList(ds)
	s.quiet = quiet
	e := summarize(ds)
	s.logf("%d ExecSync(true): p50 %.2f ms, p95 %.2f ms", o.rounds, e.P50Ms, e.P95Ms)
}

// benchPull pulls each image that the runtime does not hold yet (cold),
// then once more (warm: the tag re-resolved, everything present). The
// images stay: the other workloads run from them.
func benchPull(s *session, o *benchOpts, res *benchResult) {
	api := s.api
	res.Pulls = map[string]map[string]float64{}
	for _, img := range o.pulls {
		s.call("ImageStatus "+img, func(ctx context.Context) error {
			st, err := api.ImageStatus(ctx, img)
			if err == nil && st != nil {
				fatalf("ImageStatus(%s): the runtime holds it already, a cold pull needs an empty image store", img)
			}
			return err
		})
		r := map[string]float64{}
		for _, kind := range []string{"cold", "warm"} {
			var ref string
			d := s.call("PullImage "+kind+" "+img, func(ctx context.Context) (err error) {
				ref, err = api.PullImage(ctx, img, nil, nil)
				return
			})
			if !hex64.MatchString(ref) {
				fatalf("PullImage(%s) answered %q, expected an image ID sha256:<64 hex>", img, ref)
			}
			r[kind] = ms(d)
		}
		res.Pulls[img] = r
	}
}

// waitForGo prints the ready line and blocks until stdin has a line (or
// ends): the driving script reads memory meanwhile.
func waitForGo(s *session) {
	fmt.Println("criclient: pods ready")
	os.Stdout.Sync()
	done := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		close(done)
	}()
	for {
		select {
		case <-done:
			return
		case <-time.After(100 * time.Millisecond):
			if interrupted.Load() {
				fatalf("interrupted while holding the pods")
			}
		}
	}
}
