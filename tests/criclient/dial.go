package main

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc"
)

// The kubelet's message size limit for CRI calls (pkg/kubelet/cri/remote).
const maxMsgSize = 16 << 20

// dial connects the way the kubelet's remote runtime does: the target is the
// bare socket path (so gRPC sends it as :authority), a context dialer opens
// the unix socket, no transport security, 16 MiB message limits both ways.
// The connection is made lazily; every call carries its own deadline.
func dial(socket string) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return grpc.DialContext(ctx, socket,
		grpc.WithInsecure(),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMsgSize),
			grpc.MaxCallSendMsgSize(maxMsgSize)))
}
