// criclient is a CRI client that behaves like the kubelet: it dials the
// runtime's socket as the kubelet does, speaks runtime.v1 or runtime.v1alpha2
// with the generated Go types, and checks every answer.
//
//	criclient node     --socket S --api v1|v1alpha2 --image REF [...]
//	criclient relist   --socket S --api v1|v1alpha2 --image REF --pods N --rounds R [...]
//	criclient security --socket S --image REF --seccomp-profile FILE [--userns] [...]
//	criclient hostile  --socket S --api v1|v1alpha2 --checks latency,decode,refusals,exec [...]
//	criclient cdi      --socket S --image REF --devices D,D --check SCRIPT --want TEXT --unknown D [...]
//	criclient bench podstart|burst|exec|pull|relist --socket S [...]
//
// node drives one node's work (images with and without credentials, a pod
// with containers, exec, logs, the relist, events, errors, clean-up); relist
// times the kubelet's relist against N running pods; security runs the pods
// a kubelet makes for the restricted Pod Security Standard and for
// hostUsers: false, and checks from inside that every setting took effect;
// hostile checks what the kubelet sees while others misbehave (latency,
// decodable lists, refused bad requests, truncated ExecSync output); cdi
// runs a container with CDI devices as a kubelet of 1.28 passes them; bench
// runs the node benchmark's workloads (bench.go), timing each call here.
// Each exits 0 when every answer was right, 1 with the first wrong answer
// otherwise, after removing whatever it created. --json FILE writes the
// results.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// failure is what fatalf panics with; run recovers it.
type failure struct{ msg string }

// fatalf ends the scenario: the message says what was asked, what came
// back and what was expected.
func fatalf(format string, args ...interface{}) {
	panic(failure{fmt.Sprintf(format, args...)})
}

var interrupted atomic.Bool

type step struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"`
}

type report struct {
	Command    string        `json:"command"`
	API        string        `json:"api"`
	OK         bool          `json:"ok"`
	Error      string        `json:"error,omitempty"`
	Steps      []step        `json:"steps"`
	Pods       []string      `json:"pods"`
	Containers []string      `json:"containers"`
	Images     []string      `json:"images"`
	Events     []eventRecord `json:"events,omitempty"`
	Warnings   []string      `json:"warnings"`
	Cleanup    []string      `json:"cleanup_problems"`
	Relist     *relistResult `json:"relist,omitempty"`
	Bench      *benchResult  `json:"bench,omitempty"`
}

type undoItem struct {
	name string
	fn   func(ctx context.Context) error
	done bool
}

// session: one scenario's connection, deadlines, record and clean-up.
type session struct {
	api         criAPI
	callTimeout time.Duration
	rep         *report
	undo        []*undoItem
	quiet       bool // no progress lines and no steps recorded (bulk work)
	mu          sync.Mutex
}

func (s *session) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.callTimeout)
}

func (s *session) logf(format string, args ...interface{}) {
	if !s.quiet {
		fmt.Printf("criclient %s: %s\n", s.api.Name(), fmt.Sprintf(format, args...))
	}
}

// call runs one RPC with its own deadline, records its duration, and ends
// the scenario when it fails.
func (s *session) call(name string, fn func(ctx context.Context) error) time.Duration {
	return s.callWithin(name, s.callTimeout, fn)
}

func (s *session) callWithin(name string, timeout time.Duration, fn func(ctx context.Context) error) time.Duration {
	if interrupted.Load() {
		fatalf("interrupted before %s", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t0 := time.Now()
	err := fn(ctx)
	d := time.Since(t0)
	if err != nil {
		fatalf("%s: %s", name, describeErr(err))
	}
	if !s.quiet {
		s.addStep(name, d)
		s.logf("%s ok (%.1f ms)", name, ms(d))
	}
	return d
}

func (s *session) addStep(name string, d time.Duration) {
	s.mu.Lock()
	s.rep.Steps = append(s.rep.Steps, step{name, ms(d)})
	s.mu.Unlock()
}

// expectCode runs an RPC that must fail with code want.
func (s *session) expectCode(name string, want codes.Code, fn func(ctx context.Context) error) *status.Status {
	ctx, cancel := s.ctx()
	defer cancel()
	err := fn(ctx)
	if err == nil {
		fatalf("%s: succeeded, expected the error %s", name, want)
	}
	st, _ := status.FromError(err)
	if st.Code() != want {
		fatalf("%s: %s, expected the error %s", name, describeErr(err), want)
	}
	s.logf("%s answered %s as expected: %q", name, want, st.Message())
	return st
}

// later registers clean-up for something just created; it runs only if the
// scenario ends before doing it itself (item.done = true).
func (s *session) later(name string, fn func(ctx context.Context) error) *undoItem {
	it := &undoItem{name: name, fn: fn}
	s.mu.Lock()
	s.undo = append(s.undo, it)
	s.mu.Unlock()
	return it
}

func (s *session) cleanup() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		it := s.undo[i]
		if it.done {
			continue
		}
		ctx, cancel := s.ctx()
		err := it.fn(ctx)
		cancel()
		it.done = true
		if err != nil && status.Code(err) != codes.NotFound {
			msg := fmt.Sprintf("%s: %s", it.name, describeErr(err))
			s.rep.Cleanup = append(s.rep.Cleanup, msg)
			fmt.Fprintf(os.Stderr, "criclient: clean-up: %s\n", msg)
		}
	}
}

func describeErr(err error) string {
	if st, ok := status.FromError(err); ok {
		return fmt.Sprintf("error %s: %q", st.Code(), st.Message())
	}
	return err.Error()
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// run executes scenario and always cleans up; it answers the exit code.
func run(s *session, jsonPath string, scenario func()) (code int) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			s.rep.Error = f.msg
			fmt.Fprintf(os.Stderr, "criclient %s: FAILED: %s\n", s.api.Name(), f.msg)
			code = 1
		}
		s.cleanup()
		if code == 0 && len(s.rep.Cleanup) > 0 {
			s.rep.Error = "clean-up failed: " + strings.Join(s.rep.Cleanup, "; ")
			code = 1
		}
		s.rep.OK = code == 0
		if jsonPath != "" {
			if err := writeJSON(jsonPath, s.rep); err != nil {
				fmt.Fprintf(os.Stderr, "criclient: %v\n", err)
				code = 1
			}
		}
		if code == 0 {
			fmt.Printf("criclient %s: %s: every answer was right\n", s.api.Name(), s.rep.Command)
		}
	}()
	scenario()
	return 0
}

func writeJSON(path string, v interface{}) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: criclient node|relist|security|hostile|cdi --socket PATH --api v1|v1alpha2 [options]\n"+
		"       criclient bench podstart|burst|exec|pull|relist --socket PATH [options]\n"+
		"       criclient node -h, criclient relist -h, criclient security -h, criclient hostile -h, criclient cdi -h: the options\n")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	args := os.Args[2:]
	if cmd == "bench" {
		if len(args) < 1 {
			usage()
		}
		cmd, args = "bench "+args[0], args[1:]
	}
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	socket := fs.String("socket", "", "the runtime's unix socket (a path, as the kubelet dials it)")
	apiVersion := fs.String("api", "v1", "CRI version: v1 or v1alpha2")
	callTimeout := fs.Duration("call-timeout", 2*time.Minute,
		"deadline of each call (the kubelet's --runtime-request-timeout)")
	jsonPath := fs.String("json", "", "write the results to this file")
	var scenario func(*session)
	switch cmd {
	case "node":
		scenario = nodeFlags(fs)
	case "relist":
		scenario = relistFlags(fs)
	case "security":
		scenario = securityFlags(fs)
	case "hostile":
		scenario = hostileFlags(fs)
	case "cdi":
		scenario = cdiFlags(fs)
	case "bench podstart", "bench burst", "bench exec", "bench pull", "bench relist":
		scenario = benchFlags(strings.TrimPrefix(cmd, "bench "), fs)
	default:
		usage()
	}
	_ = fs.Parse(args)
	if *socket == "" || fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "criclient %s: --socket is required and no arguments are taken\n", cmd)
		os.Exit(2)
	}
	conn, err := dial(*socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "criclient: dial %s: %v\n", *socket, err)
		os.Exit(1)
	}
	api, err := newAPI(*apiVersion, conn)
	if err != nil {
		fmt.Fprintf(os.Stderr, "criclient: %v\n", err)
		os.Exit(2)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "criclient: %v: stopping and cleaning up\n", sig)
		interrupted.Store(true)
	}()

	s := &session{api: api, callTimeout: *callTimeout,
		rep: &report{Command: cmd, API: api.Name(), Pods: []string{}, Containers: []string{},
			Images: []string{}, Warnings: []string{}, Cleanup: []string{}}}
	code := run(s, *jsonPath, func() { scenario(s) })
	conn.Close()
	os.Exit(code)
}
