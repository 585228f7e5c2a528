package bgp

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// gobgpLog adapts GoBGP's logging to the daemon's: GoBGP narrates every
// step at info (peer added, connection accepted, table dumps), which
// would drown the daemon's own info lines, so its info becomes debug.
// Its warnings and errors are about sessions, not about the daemon, and
// become warnings. The speaker itself logs session up and down at info.
type gobgpLog struct {
	next slog.Handler
	// stopping drops GoBGP's complaint that the server it is asked to
	// stop is already stopped: Stop's restart path stops the BGP part
	// first (to skip the NOTIFICATIONs) and then the rest (BFD), and the
	// second step tries the first one again.
	stopping *atomic.Bool
}

// stopAgainMsg is what GoBGP logs in that case (pkg/server BgpServer.Stop).
const stopAgainMsg = "failed to stop BGP server"

func newGobgpLog(log *slog.Logger, stopping *atomic.Bool) *slog.Logger {
	return slog.New(gobgpLog{next: log.With("component", "gobgp").Handler(), stopping: stopping})
}

func gobgpLevel(l slog.Level) slog.Level {
	switch {
	case l >= slog.LevelWarn:
		return slog.LevelWarn
	case l >= slog.LevelInfo:
		return slog.LevelDebug
	default:
		return slog.LevelDebug - 4 // GoBGP's debug is a packet trace
	}
}

func (h gobgpLog) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, gobgpLevel(l))
}

func (h gobgpLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == stopAgainMsg && h.stopping.Load() {
		return nil
	}
	out := slog.NewRecord(r.Time, gobgpLevel(r.Level), r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h gobgpLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return gobgpLog{next: h.next.WithAttrs(attrs), stopping: h.stopping}
}

func (h gobgpLog) WithGroup(name string) slog.Handler {
	return gobgpLog{next: h.next.WithGroup(name), stopping: h.stopping}
}
