package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

type relistOpts struct {
	image, logDir, handler, cgroupParent string
	pods, rounds, warmup, workers        int
	statsRounds                          int
	pid                                  int
	hostNetwork                          bool
	hold                                 bool // bench relist: wait for a line on stdin once the pods run
	callRounds                           int  // bench relist: single calls timed after the relist
}

// The four calls of one relist, in the kubelet's order.
var relistCalls = []string{"ListPodSandbox", "ListPodSandbox READY", "ListContainers", "ListContainers RUNNING"}

type latency struct {
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MeanMs float64 `json:"mean_ms"`
	MaxMs  float64 `json:"max_ms"`
}

type relistResult struct {
	Pods             int                `json:"pods"`
	Rounds           int                `json:"rounds"`
	Round            latency            `json:"round"`
	Calls            map[string]latency `json:"calls"`
	WallS            float64            `json:"wall_s"`
	RuntimePID       int                `json:"runtime_pid,omitempty"`
	RuntimeCPUS      float64            `json:"runtime_cpu_s,omitempty"`
	RuntimeCPUPer1kS float64            `json:"runtime_cpu_s_per_1000_rounds,omitempty"`
	ClientCPUPer1kS  float64            `json:"client_cpu_s_per_1000_rounds"`
	SetupS           float64            `json:"setup_s"`
	StatsRounds      int                `json:"stats_rounds"`
	ContainerStats   latency            `json:"list_container_stats"`
	TeardownS        float64            `json:"teardown_s"`
	// bench relist: each call alone, at the same number of pods.
	SingleCalls map[string]latency `json:"single_calls,omitempty"`
}

func relistFlags(fs *flag.FlagSet) func(*session) {
	return relistFlagsInto(fs, nil)
}

// relistFlagsInto: the relist's flags, plus those extra adds.
func relistFlagsInto(fs *flag.FlagSet, extra func(o *relistOpts)) func(*session) {
	o := &relistOpts{}
	if extra != nil {
		extra(o)
	}
	fs.StringVar(&o.image, "image", "", "image of the containers (busybox, runs `sleep`): host/repo:tag")
	fs.StringVar(&o.logDir, "log-dir", "", "root of the pod log directories")
	fs.StringVar(&o.handler, "runtime-handler", "", "runtime handler of the pods")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "cgroup parent of the pods (default /criclient-<random>)")
	fs.IntVar(&o.pods, "pods", 100, "pods, each with one running container")
	fs.IntVar(&o.rounds, "rounds", 1000, "timed relist rounds")
	fs.IntVar(&o.warmup, "warmup", 10, "untimed rounds first")
	fs.IntVar(&o.statsRounds, "stats-rounds", 100, "timed ListContainerStats calls over every container, after the relist")
	fs.IntVar(&o.workers, "workers", 4, "pods created and removed at once")
	fs.IntVar(&o.pid, "pid", 0, "the runtime's pid: its CPU time during the rounds is reported")
	fs.BoolVar(&o.hostNetwork, "host-network", false, "pods in the node's network namespace")
	return func(s *session) {
		if o.image == "" || o.logDir == "" {
			fatalf("relist needs --image and --log-dir")
		}
		if o.pods < 1 || o.rounds < 1 || o.workers < 1 || o.warmup < 0 {
			fatalf("--pods, --rounds and --workers must be at least 1")
		}
		if o.cgroupParent == "" {
			o.cgroupParent = "/criclient-" + randHex(5)
		}
		runRelist(s, o)
	}
}

type relistPod struct {
	id, name, ctrID string
	undo            *undoItem
}

// parallel runs fn(i) for i in [0, n) on workers goroutines; the first
// failure ends the scenario once all have stopped.
func parallel(n, workers int, fn func(i int)) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first *failure
		next  int
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					f, ok := r.(failure)
					if !ok {
						panic(r)
					}
					mu.Lock()
					if first == nil {
						first = &f
					}
					mu.Unlock()
				}
			}()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		panic(*first)
	}
}

func runRelist(s *session, o *relistOpts) {
	api := s.api
	res := &relistResult{Pods: o.pods, Rounds: o.rounds, Calls: map[string]latency{}}
	s.rep.Relist = res
	quiet := s.quiet

	s.call("PullImage", func(ctx context.Context) error {
		img, err := api.ImageStatus(ctx, o.image)
		if err != nil || img != nil {
			return err
		}
		ref, err := api.PullImage(ctx, o.image, nil, nil)
		if err == nil {
			s.rep.Images = append(s.rep.Images, ref)
			s.later("RemoveImage "+ref, func(ctx context.Context) error { return api.RemoveImage(ctx, ref) })
		}
		return err
	})

	pods := make([]relistPod, o.pods)
	var mu sync.Mutex
	s.logf("making %d pods", o.pods)
	t0 := time.Now()
	s.quiet = true
	parallel(o.pods, o.workers, func(i int) {
		bp := startBenchPod(s, o.logDir, o.image, o.handler, o.cgroupParent, o.hostNetwork, i)
		pods[i] = relistPod{id: bp.id, name: bp.name, ctrID: bp.ctrID, undo: bp.undo}
	})
	s.quiet = quiet
	res.SetupS = time.Since(t0).Seconds()
	s.logf("%d pods with a running container each, in %.1f s", o.pods, res.SetupS)
	s.addStep("create pods", time.Since(t0))
	if o.hold {
		waitForGo(s)
	}

	podByID := map[string]*relistPod{}
	ctrByID := map[string]*relistPod{}
	for i := range pods {
		podByID[pods[i].id] = &pods[i]
		ctrByID[pods[i].ctrID] = &pods[i]
	}
	if len(podByID) != o.pods || len(ctrByID) != o.pods {
		fatalf("the runtime answered duplicate IDs: %d distinct pod IDs, %d distinct container IDs for %d pods",
			len(podByID), len(ctrByID), o.pods)
	}

	check := func(where string, all, ready []podSandbox, ctrs, running []container) {
		for _, l := range []struct {
			name  string
			pods  []podSandbox
			state string
		}{{relistCalls[0], all, ""}, {relistCalls[1], ready, "SANDBOX_READY"}} {
			if len(l.pods) != o.pods {
				fatalf("%s: %s answered %d pods, expected %d", where, l.name, len(l.pods), o.pods)
			}
			seen := map[string]bool{}
			for _, p := range l.pods {
				mine := podByID[p.ID]
				if mine == nil || seen[p.ID] {
					fatalf("%s: %s answered an unknown or repeated pod %s", where, l.name, p.ID)
				}
				seen[p.ID] = true
				if p.State != "SANDBOX_READY" || p.Metadata.Name != mine.name {
					fatalf("%s: %s: pod %s is %s named %q, expected SANDBOX_READY named %q",
						where, l.name, p.ID, p.State, p.Metadata.Name, mine.name)
				}
			}
		}
		for _, l := range []struct {
			name string
			ctrs []container
		}{{relistCalls[2], ctrs}, {relistCalls[3], running}} {
			if len(l.ctrs) != o.pods {
				fatalf("%s: %s answered %d containers, expected %d", where, l.name, len(l.ctrs), o.pods)
			}
			seen := map[string]bool{}
			for _, c := range l.ctrs {
				mine := ctrByID[c.ID]
				if mine == nil || seen[c.ID] {
					fatalf("%s: %s answered an unknown or repeated container %s", where, l.name, c.ID)
				}
				seen[c.ID] = true
				if c.State != "CONTAINER_RUNNING" || c.PodSandboxID != mine.id || c.Name != "sleep" {
					fatalf("%s: %s: container %s is %s in pod %s named %q, expected CONTAINER_RUNNING in %s named \"sleep\"",
						where, l.name, c.ID, c.State, c.PodSandboxID, c.Name, mine.id)
				}
			}
		}
	}

	roundDur := make([]time.Duration, 0, o.rounds)
	callDur := make([][]time.Duration, len(relistCalls))
	relist := func(where string, timed bool) {
		var all, ready []podSandbox
		var ctrs, running []container
		var d [4]time.Duration
		t := time.Now()
		calls := []func(ctx context.Context) error{
			func(ctx context.Context) (err error) { all, err = api.ListPodSandbox(ctx, nil); return },
			func(ctx context.Context) (err error) {
				ready, err = api.ListPodSandbox(ctx, &podFilter{State: "SANDBOX_READY"})
				return
			},
			func(ctx context.Context) (err error) { ctrs, err = api.ListContainers(ctx, &containerFilter{}); return },
			func(ctx context.Context) (err error) {
				running, err = api.ListContainers(ctx, &containerFilter{State: "CONTAINER_RUNNING"})
				return
			},
		}
		for i, fn := range calls {
			if interrupted.Load() {
				fatalf("interrupted in %s", where)
			}
			ctx, cancel := s.ctx()
			c0 := time.Now()
			err := fn(ctx)
			d[i] = time.Since(c0)
			cancel()
			if err != nil {
				fatalf("%s: %s: %s", where, relistCalls[i], describeErr(err))
			}
		}
		total := time.Since(t)
		check(where, all, ready, ctrs, running)
		if timed {
			roundDur = append(roundDur, total)
			for i := range d {
				callDur[i] = append(callDur[i], d[i])
			}
		}
	}
	for r := 0; r < o.warmup; r++ {
		relist(fmt.Sprintf("warm-up round %d", r+1), false)
	}
	var cpu0, cpu1 time.Duration
	var err error
	if o.pid > 0 {
		if cpu0, err = cpuTime(o.pid); err != nil {
			fatalf("CPU time of the runtime: %v", err)
		}
	}
	self0, _ := cpuTime(os.Getpid())
	tRounds := time.Now()
	for r := 1; r <= o.rounds; r++ {
		relist(fmt.Sprintf("round %d", r), true)
	}
	res.WallS = time.Since(tRounds).Seconds()
	self1, _ := cpuTime(os.Getpid())
	if o.pid > 0 {
		if cpu1, err = cpuTime(o.pid); err != nil {
			fatalf("CPU time of the runtime: %v", err)
		}
		res.RuntimePID = o.pid
		res.RuntimeCPUS = (cpu1 - cpu0).Seconds()
		res.RuntimeCPUPer1kS = res.RuntimeCPUS * 1000 / float64(o.rounds)
	}
	res.ClientCPUPer1kS = (self1 - self0).Seconds() * 1000 / float64(o.rounds)
	res.Round = summarize(roundDur)
	for i, name := range relistCalls {
		res.Calls[name] = summarize(callDur[i])
	}
	s.addStep("relist rounds", time.Since(tRounds))
	s.logf("%d rounds of the relist over %d pods in %.2f s, every answer right", o.rounds, o.pods, res.WallS)
	s.logf("round: p50 %.3f ms, p99 %.3f ms, mean %.3f ms", res.Round.P50Ms, res.Round.P99Ms, res.Round.MeanMs)
	for _, name := range relistCalls {
		c := res.Calls[name]
		s.logf("  %-22s p50 %.3f ms, p99 %.3f ms", name, c.P50Ms, c.P99Ms)
	}
	if o.pid > 0 {
		s.logf("runtime (pid %d) CPU time: %.3f s in all, %.3f s per 1000 rounds", o.pid, res.RuntimeCPUS,
			res.RuntimeCPUPer1kS)
	}

	if o.callRounds > 0 {
		ctrIDs := make([]string, len(pods))
		for i := range pods {
			ctrIDs[i] = pods[i].ctrID
		}
		res.SingleCalls = timeSingleCalls(s, ctrIDs, o.callRounds)
	}

	// The kubelet's stats provider: ListContainerStats of every container.
	statsDur := make([]time.Duration, 0, o.statsRounds)
	s.quiet = true
	for r := 1; r <= o.statsRounds; r++ {
		var l []ctrStats
		d := s.call("ListContainerStats", func(ctx context.Context) (err error) {
			l, err = api.ListContainerStats(ctx, nil)
			return
		})
		if len(l) != o.pods {
			fatalf("ListContainerStats round %d: %d containers, %d running", r, len(l), o.pods)
		}
		for _, c := range l {
			if !c.HasCPU || !c.HasMemory || c.WorkingSet == 0 {
				fatalf("ListContainerStats round %d: container %s without CPU or memory: %+v", r, c.ID, c)
			}
		}
		statsDur = append(statsDur, d)
	}
	s.quiet = quiet
	res.StatsRounds = o.statsRounds
	res.ContainerStats = summarize(statsDur)
	if o.statsRounds > 0 {
		s.logf("ListContainerStats over %d containers: p50 %.3f ms, p99 %.3f ms", o.pods,
			res.ContainerStats.P50Ms, res.ContainerStats.P99Ms)
	}

	// The kubelet's way out: stop the container, stop and remove the pod.
	t1 := time.Now()
	s.quiet = true
	parallel(o.pods, o.workers, func(i int) {
		p := &pods[i]
		s.call("StopContainer", func(ctx context.Context) error { return api.StopContainer(ctx, p.ctrID, 0) })
		s.call("StopPodSandbox", func(ctx context.Context) error { return api.StopPodSandbox(ctx, p.id) })
		s.call("RemovePodSandbox", func(ctx context.Context) error { return api.RemovePodSandbox(ctx, p.id) })
		mu.Lock()
		p.undo.done = true
		mu.Unlock()
	})
	s.quiet = quiet
	res.TeardownS = time.Since(t1).Seconds()
	s.addStep("remove pods", time.Since(t1))
	s.logf("%d pods removed in %.1f s", o.pods, res.TeardownS)
	s.call("ListContainers after the pods went", func(ctx context.Context) error {
		l, err := api.ListContainers(ctx, &containerFilter{})
		if err == nil && len(l) != 0 {
			fatalf("ListContainers after every pod was removed: %d containers left: %v", len(l), containerIDs(l))
		}
		return err
	})
}

func summarize(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	v := append([]time.Duration(nil), ds...)
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	var sum time.Duration
	for _, d := range v {
		sum += d
	}
	pct := func(p float64) float64 {
		i := int(p*float64(len(v))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(v) {
			i = len(v) - 1
		}
		return ms(v[i])
	}
	return latency{P50Ms: pct(0.50), P95Ms: pct(0.95), P99Ms: pct(0.99), MeanMs: ms(sum) / float64(len(v)), MaxMs: ms(v[len(v)-1])}
}
