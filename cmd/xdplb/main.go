// Command xdplb is the xdplb load balancer: the daemon (serve), the
// reference demo (demo) and the client commands that talk to a running
// daemon.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "xdplb:", err)
		stop()
		os.Exit(1)
	}
}
