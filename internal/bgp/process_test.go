package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// speakerEnv, when set in the environment, makes the test binary a
// speaker process instead of running tests (see TestMain): a test that
// needs a speaker inside a network namespace starts the binary there,
// since GoBGP's goroutines would open their sockets in whatever
// namespace their thread happens to be in. The value is a speakerSpec
// in JSON.
const speakerEnv = "XDPLB_BGP_TEST_SPEAKER"

// speakerSpec is what a speaker process announces.
type speakerSpec struct {
	Config   Config
	Prefixes map[netip.Prefix]Attrs
}

// speakerProcess runs a speaker until SIGTERM (graceful stop) or
// SIGUSR2 (stop for a restart), as the daemon would, and returns the
// exit code.
func speakerProcess(spec string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var s speakerSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		log.Error("bad speaker spec", "err", err)
		return 2
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGUSR2)
	sp, err := New(s.Config, log)
	if err == nil {
		err = sp.SetPrefixes(s.Prefixes)
	}
	if err == nil {
		err = sp.Start(context.Background())
	}
	if err != nil {
		log.Error("speaker", "err", err)
		return 1
	}
	sig := <-signals
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sp.Stop(ctx, sig == syscall.SIGTERM); err != nil {
		log.Error("stop", "err", err)
		return 1
	}
	log.Info("stopped", "signal", sig)
	return 0
}

// speakerCommandEnv is the environment of a speaker process for spec.
func speakerCommandEnv(spec speakerSpec) ([]string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	return append(os.Environ(), fmt.Sprintf("%s=%s", speakerEnv, b)), nil
}
