package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/testbed"
)

// childEnv marks the test binary re-run inside a network namespace: the
// daemon runs in-process there (under -race when the test is), and
// everything it does to links and addresses stays in that namespace.
const childEnv = "XDPLB_DAEMON_TEST_IFACE"

// inNamespace runs the calling test again, in a fresh host of a fresh
// segment, and fails with its output if it fails there.
func inNamespace(t *testing.T) {
	t.Helper()
	testbed.RequirePrivileges(t)
	seg, err := testbed.NewSegment(netip.MustParsePrefix("172.19.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := seg.Close(); err != nil {
			t.Errorf("close segment: %v", err)
		}
	})
	h, err := seg.AddHost("lb", netip.MustParseAddr("172.19.0.5"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := h.Link()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := h.Command(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+l.Attrs().Name)
	cmd.Stdout, cmd.Stderr = &out, &out
	p, err := h.StartCmd(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("in the namespace: %v\n%s", err, out.Bytes())
	}
	t.Logf("in the namespace:\n%s", out.Bytes())
}

// testConfig is a balancer on iface with one service whose two backends
// are checked by a command that fails while a file named after the backend
// exists in dir.
func testConfig(iface, dir string) string {
	return fmt.Sprintf(`interfaces: [%s]
xdp_mode: generic
local:
  addresses: [172.19.0.5]
  ports: 20000-29999
services:
  - name: web   # the service the test edits
    vip: 172.19.0.10
    port: 80
    health_check:
      kind: exec
      command: [/bin/sh, -c, 'test ! -e %s/down-$XDPLB_BACKEND_ADDR']
      interval: 20ms
      rise: 1
      fall: 1
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
api:
  socket: %s/api.sock
state:
  pin_path: ""
`, iface, dir, dir)
}

// TestConfirmedChangesSurviveReloadsAndHealthFlips: backends added through
// the API while reloads and health flips run at the same time are all
// there afterwards, in the running state and in the file, and stopping the
// daemon leaves no goroutine behind.
func TestConfirmedChangesSurviveReloadsAndHealthFlips(t *testing.T) {
	iface := os.Getenv(childEnv)
	if iface == "" {
		inNamespace(t)
		return
	}
	leaks := goleak.IgnoreCurrent()
	reload := make(chan struct{}, 1)
	d := startDaemon(t, iface, reload)
	ctx, client, dir, path := d.ctx, d.client, d.dir, d.path

	const adders, perAdder = 4, 40
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		confirmed []netip.AddrPort
		stop      = make(chan struct{})
	)
	for a := range adders {
		wg.Go(func() {
			for i := range perAdder {
				addr := netip.AddrFrom4([4]byte{172, 19, byte(10 + a), byte(1 + i)})
				if _, err := client.AddBackend(ctx, "web", api.BackendSpec{Address: addr.String()}); err != nil {
					t.Errorf("add %s: %v", addr, err)
					continue
				}
				mu.Lock()
				confirmed = append(confirmed, netip.AddrPortFrom(addr, 80))
				mu.Unlock()
			}
		})
	}
	var background sync.WaitGroup
	background.Go(func() { // reloads, through the API and as SIGHUP
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if n%2 == 0 {
				if _, err := client.Reload(ctx); err != nil {
					t.Errorf("reload: %v", err)
				}
			} else {
				select {
				case reload <- struct{}{}:
				default:
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	background.Go(func() { // health flips of the configured backends
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			f := filepath.Join(dir, "down-172.19.0."+[]string{"2", "3"}[n%2])
			if n%4 < 2 {
				os.WriteFile(f, nil, 0o600)
			} else {
				os.Remove(f)
			}
		}
	})
	wg.Wait()
	close(stop)
	background.Wait()

	if len(confirmed) != adders*perAdder {
		t.Fatalf("%d of %d adds confirmed", len(confirmed), adders*perAdder)
	}
	views, err := client.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	running := backendsOf(t, views[0])
	inFile := make([]netip.AddrPort, 0, len(saved.Services[0].Backends))
	for _, b := range saved.Services[0].Backends {
		inFile = append(inFile, b.AddrPort())
	}
	for _, want := range confirmed {
		if !slices.Contains(running, want) {
			t.Errorf("confirmed backend %s is not running", want)
		}
		if !slices.Contains(inFile, want) {
			t.Errorf("confirmed backend %s is not in the file", want)
		}
	}
	if data, _ := os.ReadFile(path); !bytes.Contains(data, []byte("# the service the test edits")) {
		t.Errorf("the write-back lost the comment of the unchanged lines:\n%s", data)
	}

	d.stop(t)
	goleak.VerifyNone(t, leaks)
}

// TestWriteBackRefusesToClobberAnEdit: a runtime change is refused, with
// a message saying to reload, when the file was edited since it was read;
// after a reload the same change goes through.
func TestWriteBackRefusesToClobberAnEdit(t *testing.T) {
	iface := os.Getenv(childEnv)
	if iface == "" {
		inNamespace(t)
		return
	}
	d := startDaemon(t, iface, nil)
	defer d.stop(t)
	ctx, client, path := d.ctx, d.client, d.path
	if res, err := client.Reload(ctx); err != nil || len(res.Applied) != 0 {
		t.Errorf("reload of an unchanged file: %+v, %v; want nothing applied", res, err)
	}

	edited, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited = bytes.Replace(edited, []byte("port: 80\n"), []byte("port: 80\n    scheduler: maglev\n"), 1)
	if err := os.WriteFile(path, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = client.AddBackend(ctx, "web", api.BackendSpec{Address: "172.19.0.4"})
	if !errors.Is(err, api.ErrConflict) || !bytes.Contains([]byte(err.Error()), []byte("xdplb reload")) {
		t.Fatalf("add after an unreloaded edit: %v, want a conflict saying to reload", err)
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, edited) {
		t.Fatalf("the refused change touched the file:\n%s", data)
	}
	plan, err := client.ReloadDryRun(ctx)
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].Field != "scheduler" || plan.Changes[0].New != "maglev" {
		t.Errorf("reload --dry-run after the edit: %+v, %v; want the scheduler rr -> maglev", plan, err)
	}
	if views, err := client.Services(ctx); err != nil || views[0].Scheduler != "rr" {
		t.Errorf("a dry run applied something: %+v, %v", views, err)
	}
	if _, err := client.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddBackend(ctx, "web", api.BackendSpec{Address: "172.19.0.4"}); err != nil {
		t.Fatalf("add after the reload: %v", err)
	}
	saved, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := saved.Services[0]; s.Scheduler != "maglev" || len(s.Backends) != 3 {
		t.Errorf("file after reload and add: scheduler %s, %d backends; want maglev and 3", s.Scheduler, len(s.Backends))
	}
}

// running is a daemon run in-process by a test.
type running struct {
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan error
	client    *api.Client
	dir, path string
}

// startDaemon writes testConfig for iface to a temporary directory and
// runs a daemon on it until stop; reload, if not nil, stands for SIGHUP.
// It logs warnings to stderr.
func startDaemon(t *testing.T, iface string, reload chan struct{}) *running {
	t.Helper()
	return startDaemonLogging(t, iface, reload, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// startDaemonLogging is startDaemon with the daemon's logger.
func startDaemonLogging(t *testing.T, iface string, reload chan struct{}, log *slog.Logger) *running {
	t.Helper()
	r := &running{dir: t.TempDir(), done: make(chan error, 1)}
	r.path = filepath.Join(r.dir, "xdplb.yaml")
	if err := os.WriteFile(r.path, []byte(testConfig(iface, r.dir)), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(r.path)
	if err != nil {
		t.Fatal(err)
	}
	r.ctx, r.cancel = context.WithCancel(t.Context())
	go func() { r.done <- Run(r.ctx, cfg, Options{ConfigPath: r.path, Reload: reload}, log) }()
	r.client = api.NewClient(cfg.API.Socket)
	waitReady(t, r.client, r.done)
	return r
}

// stop ends the daemon and fails the test if it returned an error.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func waitReady(t *testing.T, client *api.Client, done <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("daemon stopped: %v", err)
		default:
		}
		if st, err := client.Status(t.Context()); err == nil && st.Ready {
			return
		}
	}
	t.Fatal("daemon not ready within 20s")
}

func backendsOf(t *testing.T, v api.ServiceView) []netip.AddrPort {
	t.Helper()
	out := make([]netip.AddrPort, 0, len(v.Backends))
	for _, b := range v.Backends {
		out = append(out, netip.AddrPortFrom(netip.MustParseAddr(b.Address), b.Port))
	}
	return out
}

// TestSecondDaemonOnSamePinsRefused: a second daemon with its own socket
// but the first one's pin path is refused, naming the first; it changes
// nothing, so the first one's stop still removes its pins.
func TestSecondDaemonOnSamePinsRefused(t *testing.T) {
	iface := os.Getenv(childEnv)
	if iface == "" {
		inNamespace(t)
		return
	}
	pins := fmt.Sprintf("/sys/fs/bpf/xdplb-test-%d", os.Getpid())
	withPins := func(dir string) string {
		return strings.Replace(testConfig(iface, dir), `pin_path: ""`, "pin_path: "+pins, 1)
	}
	first := t.TempDir()
	cfg, err := config.Parse([]byte(withPins(first)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, Options{}, slog.New(slog.DiscardHandler)) }()
	waitReady(t, api.NewClient(cfg.API.Socket), done)

	second, err := config.Parse([]byte(withPins(t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	err = Run(t.Context(), second, Options{}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "in use by another xdplb daemon") ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) || !strings.Contains(err.Error(), cfg.API.Socket) {
		t.Errorf("second daemon on the same pins: %v, want a refusal naming pid %d and %s", err, os.Getpid(), cfg.API.Socket)
	}
	if st, err := api.NewClient(cfg.API.Socket).Status(t.Context()); err != nil || !st.Ready {
		t.Errorf("the first daemon after the refusal: %+v, %v", st, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pins after the first daemon stopped: %v, want them removed", err)
	}
}

// TestAuditLog: every change to the running state is logged with what
// changed and where the change came from.
func TestAuditLog(t *testing.T) {
	iface := os.Getenv(childEnv)
	if iface == "" {
		inNamespace(t)
		return
	}
	var logs testbed.LogBuffer
	reload := make(chan struct{}, 1)
	d := startDaemonLogging(t, iface, reload, slog.New(slog.NewTextHandler(&logs, nil)))
	defer d.stop(t)
	if _, err := d.client.AddBackend(d.ctx, "web", api.BackendSpec{Address: "172.19.0.4"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(d.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.path, bytes.Replace(data, []byte("port: 80\n"), []byte("port: 80\n    scheduler: wrr\n"), 1), 0o640); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	for _, want := range []string{
		`msg=changed source=start what="service web (172.19.0.10:80/tcp)"`,
		`msg=changed source=api what="backend 172.19.0.4:80 of service web" field="" old="" new=172.19.0.4:80`,
		`msg=changed source=sighup what="service web (172.19.0.10:80/tcp)" field=scheduler old=rr new=wrr`,
	} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(logs.String(), want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestReloadLeavesBGPForARestart: a bgp section added to the file is
// reported as needing a restart and changes nothing that runs; a later
// dry run still shows it pending.
func TestReloadLeavesBGPForARestart(t *testing.T) {
	iface := os.Getenv(childEnv)
	if iface == "" {
		inNamespace(t)
		return
	}
	d := startDaemon(t, iface, nil)
	defer d.stop(t)
	file, err := os.ReadFile(d.path)
	if err != nil {
		t.Fatal(err)
	}
	file = append(file, []byte("bgp:\n  asn: 65001\n  router_id: 192.0.2.5\n  peers: [{address: 192.0.2.1, asn: 65000}]\n")...)
	if err := os.WriteFile(d.path, file, 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := d.client.Reload(d.ctx)
	if err != nil || !slices.Contains(res.NeedRestart, "bgp.peers") {
		t.Fatalf("reload adding bgp: %+v, %v; want bgp among what needs a restart", res, err)
	}
	if st, err := d.client.BGP(d.ctx); err != nil || st.Enabled {
		t.Errorf("bgp after the reload: %+v, %v; want it still off", st, err)
	}
	plan, err := d.client.ReloadDryRun(d.ctx)
	if err != nil || !slices.ContainsFunc(plan.Changes, func(c api.Change) bool { return c.What == "bgp.peers" && c.Restart }) {
		t.Errorf("dry run after the reload: %+v, %v; want the bgp change still pending", plan, err)
	}
}
