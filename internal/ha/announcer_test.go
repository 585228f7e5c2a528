package ha

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/testbed"
)

// send is one call of the Announcer's send function.
type send struct {
	ifname string
	addrs  []netip.Addr
	at     time.Time
}

// recordingAnnouncer returns an Announcer whose sends go to the returned
// channel instead of the network, each failing with err.
func recordingAnnouncer(log *slog.Logger, err error) (*Announcer, chan send) {
	sends := make(chan send, 100)
	a := NewAnnouncer(log)
	a.send = func(ifname string, addrs []netip.Addr) error {
		sends <- send{ifname, addrs, time.Now()}
		return err
	}
	return a, sends
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// receive waits for the next n sends.
func receive(t *testing.T, sends chan send, n int) []send {
	t.Helper()
	var got []send
	for range n {
		select {
		case s := <-sends:
			got = append(got, s)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d sends, want %d", len(got), n)
		}
	}
	return got
}

// none checks that nothing is sent for d.
func none(t *testing.T, sends chan send, d time.Duration) {
	t.Helper()
	select {
	case s := <-sends:
		t.Fatalf("unexpected send %+v", s)
	case <-time.After(d):
	}
}

var (
	vip1 = netip.MustParseAddr("192.0.2.10")
	vip2 = netip.MustParseAddr("192.0.2.11")
)

func TestAnnouncerTwoBursts(t *testing.T) {
	a, sends := recordingAnnouncer(discard(), nil)
	addrs := []netip.Addr{vip1}
	a.Start(context.Background(), "eth9", addrs, 3, 100*time.Millisecond)
	addrs[0] = vip2 // the announcer keeps its own copy
	defer a.Stop()

	first := receive(t, sends, 3)
	second := receive(t, sends, 3)
	none(t, sends, 200*time.Millisecond)
	for _, s := range slices.Concat(first, second) {
		if s.ifname != "eth9" || !slices.Equal(s.addrs, []netip.Addr{vip1}) {
			t.Errorf("sent %v on %s, want [%s] on eth9", s.addrs, s.ifname, vip1)
		}
	}
	for i := 1; i < 3; i++ {
		if gap := first[i].at.Sub(first[i-1].at); gap < burstGap {
			t.Errorf("sends %d and %d of a burst %s apart, want at least %s", i-1, i, gap, burstGap)
		}
	}
	if gap := second[0].at.Sub(first[2].at); gap < 100*time.Millisecond {
		t.Errorf("second burst %s after the first, want at least the delay of 100ms", gap)
	}
}

func TestAnnouncerDelayZeroSendsOneBurst(t *testing.T) {
	a, sends := recordingAnnouncer(discard(), nil)
	defer a.Stop()
	a.Start(context.Background(), "eth9", []netip.Addr{vip1}, 2, 0)
	receive(t, sends, 2)
	none(t, sends, 100*time.Millisecond)
}

func TestAnnouncerStartCancelsSecondBurst(t *testing.T) {
	a, sends := recordingAnnouncer(discard(), nil)
	defer a.Stop()
	a.Start(context.Background(), "eth9", []netip.Addr{vip1}, 2, 100*time.Millisecond)
	receive(t, sends, 2)
	a.Start(context.Background(), "eth9", []netip.Addr{vip2}, 1, time.Hour)
	if s := receive(t, sends, 1); !slices.Equal(s[0].addrs, []netip.Addr{vip2}) {
		t.Errorf("after the new Start: sent %v, want [%s]", s[0].addrs, vip2)
	}
	none(t, sends, 300*time.Millisecond) // neither the old second burst nor anything else
}

func TestAnnouncerStop(t *testing.T) {
	a, sends := recordingAnnouncer(discard(), nil)
	a.Stop() // nothing running: a no-op
	a.Start(context.Background(), "eth9", []netip.Addr{vip1}, 2, 100*time.Millisecond)
	receive(t, sends, 2)
	a.Stop()
	none(t, sends, 300*time.Millisecond)
	a.Stop()
}

func TestAnnouncerContext(t *testing.T) {
	a, sends := recordingAnnouncer(discard(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	a.Start(ctx, "eth9", []netip.Addr{vip1}, 2, time.Hour)
	receive(t, sends, 2)
	cancel()
	a.Stop() // returns once the goroutine saw ctx end
	none(t, sends, 100*time.Millisecond)
}

func TestAnnouncerLogsOncePerBurst(t *testing.T) {
	var logs testbed.LogBuffer
	a, sends := recordingAnnouncer(slog.New(slog.NewTextHandler(&logs, nil)), errors.New("no such device"))
	a.Start(context.Background(), "eth9", []netip.Addr{vip1}, 3, time.Hour)
	receive(t, sends, 3)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "gratuitous ARPs not sent") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	a.Stop()
	out := logs.String()
	if n := strings.Count(out, "gratuitous ARPs not sent"); n != 1 {
		t.Fatalf("logged %d warnings, want 1:\n%s", n, out)
	}
	for _, want := range []string{"interface=eth9", "failed=3", "attempts=3", `err="no such device"`} {
		if !strings.Contains(out, want) {
			t.Errorf("warning lacks %s:\n%s", want, out)
		}
	}
}
