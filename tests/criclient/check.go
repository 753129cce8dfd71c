package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Clock slack when a runtime's timestamp is compared with the client's.
const clockSlack = time.Second

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func expectEq(what string, got, want interface{}) {
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		fatalf("%s: got %#v, expected %#v", what, got, want)
	}
}

// sameMap: equal maps, nil and empty alike.
func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func expectMap(what string, got, want map[string]string) {
	if !sameMap(got, want) {
		fatalf("%s: got %v, expected %v", what, got, want)
	}
}

// expectTime: ts (Unix ns) lies between lo and hi, give or take clockSlack.
func expectTime(what string, ts int64, lo, hi time.Time) {
	t := time.Unix(0, ts)
	if t.Before(lo.Add(-clockSlack)) || t.After(hi.Add(clockSlack)) {
		fatalf("%s: %d (%s) is not between %s and %s", what, ts, t.UTC().Format(time.RFC3339Nano),
			lo.UTC().Format(time.RFC3339Nano), hi.UTC().Format(time.RFC3339Nano))
	}
}

func expectIDSet(what string, got []string, want []string) {
	g := append([]string(nil), got...)
	w := append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, ",") != strings.Join(w, ",") {
		fatalf("%s: got IDs %v, expected %v", what, g, w)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---- CRI logs

// The CRI log line: RFC 3339 timestamp with nanoseconds, stream, P or F, content.
var logLine = regexp.MustCompile(`^(\S+) (stdout|stderr) ([PF]) (.*)$`)

type logRecord struct {
	Time    time.Time
	Stream  string
	Partial bool
	Content string
}

// readCRILog parses the complete lines of a CRI log file; a malformed line
// ends the scenario.
func readCRILog(path string) []logRecord {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		fatalf("read the container log %s: %v", path, err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var out []logRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		m := logLine.FindStringSubmatch(sc.Text())
		if m == nil {
			fatalf("container log %s, line %d is not in the CRI format: %q", path, n, sc.Text())
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			fatalf("container log %s, line %d: timestamp %q: %v", path, n, m[1], err)
		}
		out = append(out, logRecord{ts, m[2], m[3] == "P", m[4]})
	}
	return out
}

// logLines: the whole lines written to stream.
func logLines(recs []logRecord, stream string) []string {
	var out []string
	part := ""
	for _, r := range recs {
		if r.Stream != stream {
			continue
		}
		part += r.Content
		if !r.Partial {
			out = append(out, part)
			part = ""
		}
	}
	return out
}

// waitLog polls the log at path until it holds line on stream.
func waitLog(path, stream, line string, timeout time.Duration) []logRecord {
	deadline := time.Now().Add(timeout)
	for {
		recs := readCRILog(path)
		if contains(logLines(recs, stream), line) {
			return recs
		}
		if time.Now().After(deadline) {
			fatalf("container log %s: no %s line %q within %s; %s lines: %q", path, stream, line,
				timeout, stream, logLines(recs, stream))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- processes

// procsWithArgv: live processes whose command line is exactly argv.
func procsWithArgv(argv []string) []int {
	want := strings.Join(argv, "\x00") + "\x00"
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(d + "/cmdline")
		if err != nil || string(cmd) != want {
			continue
		}
		if st, err := os.ReadFile(d + "/stat"); err == nil {
			if f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		out = append(out, pid)
	}
	return out
}

// cpuTime: utime + stime of pid, all its threads, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	// Fields 14 and 15 of stat(5), counted after the command name.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	// In clock ticks of USER_HZ: 100 on x86, arm and the other common architectures.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
