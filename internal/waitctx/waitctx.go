// Package waitctx waits for a while unless a context ends first: the
// pauses of the gratuitous ARP bursts and of the BGP speaker's graceful
// shutdown.
package waitctx

import (
	"context"
	"time"
)

// Sleep waits d or until ctx is done; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
