package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc/codes"
)

// checkStreamingSessions drives Exec, Attach and PortForward as a kubelet's newer
// streaming path does: the RPC answers a URL, and the session runs over
// WebSocket with the v4 channel protocol (channel byte, then data; the
// error channel carries a v4 Status at the end). It also checks what a
// client that gets the rules wrong is told.
func checkStreamingSessions(s *session, ctrID, podID string) {
	var url string
	s.call("Exec", func(ctx context.Context) (err error) {
		url, err = s.api.Exec(ctx, ctrID, []string{"sh", "-c", "echo streamed; echo to-stderr >&2; exit 4"},
			false, false, true, true)
		return
	})
	if !strings.HasPrefix(url, "http://") || !strings.Contains(url, "/exec/") {
		fatalf("Exec: URL %q is not http://HOST:PORT/exec/TOKEN", url)
	}
	out, errOut, status := wsExec(url)
	expectEq("Exec over WebSocket: stdout", out, "streamed\n")
	expectEq("Exec over WebSocket: stderr", errOut, "to-stderr\n")
	var st struct {
		Status  string
		Reason  string
		Details struct {
			Causes []struct{ Reason, Message string }
		}
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil {
		fatalf("Exec over WebSocket: the error channel holds no v4 Status: %q", status)
	}
	expectEq("Exec over WebSocket: status", st.Status, "Failure")
	expectEq("Exec over WebSocket: reason", st.Reason, "NonZeroExitCode")
	if len(st.Details.Causes) != 1 || st.Details.Causes[0].Reason != "ExitCode" || st.Details.Causes[0].Message != "4" {
		fatalf("Exec over WebSocket: status causes %+v, want one ExitCode 4", st.Details.Causes)
	}
	// A token is good once.
	if code := plainGet(url); code != http.StatusNotFound {
		fatalf("Exec: a used URL answered %d, want 404", code)
	}

	s.call("Attach", func(ctx context.Context) (err error) {
		url, err = s.api.Attach(ctx, ctrID, false, false, true, true)
		return
	})
	if !strings.Contains(url, "/attach/") {
		fatalf("Attach: URL %q has no /attach/", url)
	}
	// Without an upgrade the server answers 400 (and the token is used).
	if code := plainGet(url); code != http.StatusBadRequest {
		fatalf("Attach: a GET without an upgrade answered %d, want 400", code)
	}
	s.call("PortForward", func(ctx context.Context) (err error) {
		url, err = s.api.PortForward(ctx, podID, []int32{80})
		return
	})
	if !strings.Contains(url, "/portforward/") {
		fatalf("PortForward: URL %q has no /portforward/", url)
	}
	if code := plainGet(url); code != http.StatusBadRequest {
		fatalf("PortForward: a GET without an upgrade answered %d, want 400", code)
	}

	s.expectCode("Exec tty with stderr", codes.InvalidArgument, func(ctx context.Context) error {
		_, err := s.api.Exec(ctx, ctrID, []string{"true"}, true, false, true, true)
		return err
	})
	s.expectCode("Exec of an unknown container", codes.NotFound, func(ctx context.Context) error {
		_, err := s.api.Exec(ctx, strings.Repeat("0", 64), []string{"true"}, false, false, true, false)
		return err
	})
	s.expectCode("PortForward of an unknown pod", codes.NotFound, func(ctx context.Context) error {
		_, err := s.api.PortForward(ctx, strings.Repeat("0", 64), nil)
		return err
	})
}

func plainGet(url string) int {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// wsExec reads a session to its end: stdout, stderr and the error channel.
func wsExec(url string) (stdout, stderr, status string) {
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(url, "http"), "http://localhost/")
	if err != nil {
		fatalf("Exec: %v", err)
	}
	cfg.Protocol = []string{"v4.channel.k8s.io"}
	cfg.Dialer = nil
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		fatalf("Exec: WebSocket to %s: %v", url, err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(60 * time.Second))
	var chans [5]strings.Builder
	for {
		var msg []byte
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			if err == io.EOF {
				break
			}
			fatalf("Exec: reading the session: %v", err)
		}
		if len(msg) == 0 || msg[0] > 4 {
			fatalf("Exec: a message on no channel: %q", msg)
		}
		chans[msg[0]].Write(msg[1:])
	}
	if chans[0].Len() != 0 || chans[4].Len() != 0 {
		fatalf("Exec: data on the input channels: %q %q", chans[0].String(), chans[4].String())
	}
	return chans[1].String(), chans[2].String(), chans[3].String()
}
