package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xdplb/xdplb/internal/testbed"
)

// BIRD 2 (Debian's bird2) as the router, in a network namespace, with
// speaker processes in others: what a real router does with the
// announcements, a restart, a shutdown and a lost link. Needs root and
// bird.

// birdConf is the router: AS 65000, graceful restart helper (BIRD's
// default "aware"), routes kept in BIRD's table only (no kernel
// protocol), one session per node, each with its own BFD setting:
//
//   - lb1: "bfd on", a BFD failure ends the session hard;
//   - lb2: no BFD, and a TCP MD5 password;
//   - lb3: "bfd graceful", a BFD failure counts as a graceful restart.
//
// error wait time is short so that a session closed with a NOTIFICATION
// may come back within the test.
const birdConf = `
router id %[1]s;
protocol device {}
protocol bfd { interface "eth0" { interval 100 ms; multiplier 3; }; }
template bgp lb {
	local %[1]s as 65000;
	hold time 9;
	error wait time 1, 2;
	ipv4 { import all; export none; };
}
protocol bgp lb1 from lb { neighbor 10.79.0.2 as 65001; bfd on; }
protocol bgp lb2 from lb { neighbor 10.79.0.3 as 65001; password "md5-s3cret"; }
protocol bgp lb3 from lb { neighbor 10.79.0.4 as 65001; bfd graceful; }
`

// birdRouter is a running BIRD.
type birdRouter struct {
	t    *testing.T
	sock string
}

// startBIRD runs BIRD on host.
func startBIRD(t *testing.T, host *testbed.Host) *birdRouter {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, birdConf, host.Addr), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &birdRouter{t: t, sock: filepath.Join(dir, "bird.ctl")}
	cmd := host.Command(context.Background(), "bird", "-f", "-c", conf, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"))
	var log testbed.LogBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if _, err := host.StartCmd(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bird:\n%s", log.String())
		}
	})
	eventually(t, 5*time.Second, "birdc answers", func() bool { _, err := b.try("show", "status"); return err == nil })
	return b
}

func (b *birdRouter) try(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	return string(out), err
}

// show runs a birdc command.
func (b *birdRouter) show(args ...string) string {
	b.t.Helper()
	out, err := b.try(args...)
	if err != nil {
		b.t.Fatalf("birdc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// routes parses "show route all protocol <proto>": each prefix's block
// of lines.
func (b *birdRouter) routes(proto string) map[netip.Prefix]string {
	out := map[netip.Prefix]string{}
	var cur netip.Prefix
	for _, line := range strings.Split(b.show("show", "route", "all", "protocol", proto), "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, " ") {
			if p, err := netip.ParsePrefix(f[0]); err == nil {
				cur = p
			} else {
				cur = netip.Prefix{}
			}
		}
		if cur.IsValid() {
			out[cur] += line + "\n"
		}
	}
	return out
}

// speakerProc is a speaker process (see speakerEnv).
type speakerProc struct {
	proc *testbed.Proc
	log  *testbed.LogBuffer
}

func startSpeakerProcess(t *testing.T, host *testbed.Host, spec speakerSpec) *speakerProc {
	t.Helper()
	env, err := speakerCommandEnv(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := host.Command(context.Background(), os.Args[0])
	cmd.Env = env
	sp := &speakerProc{log: &testbed.LogBuffer{}}
	cmd.Stdout, cmd.Stderr = sp.log, sp.log
	if sp.proc, err = host.StartCmd(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("speaker on %s:\n%s", host.Name, sp.log.String())
		}
	})
	return sp
}

// stop signals the process and waits for it to exit.
func (sp *speakerProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := sp.proc.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sp.proc.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("speaker did not exit after %s", sig)
	}
	if err := sp.proc.Wait(); err != nil {
		t.Fatalf("speaker exited with %v", err)
	}
}

// hostSpeaker is a node's speaker configuration towards BIRD.
func hostSpeaker(lb, rtr *testbed.Host, bfd bool, password string) speakerSpec {
	peer := Peer{Address: rtr.Addr, ASN: 65000, HoldTime: 9 * time.Second, PasswordFile: password}
	if bfd {
		peer.BFD = &BFD{Interval: 100 * time.Millisecond, Multiplier: 3}
	}
	return speakerSpec{
		Config: Config{
			ASN:             65001,
			RouterID:        lb.Addr,
			Peers:           []Peer{peer},
			Communities:     []string{"65001:100"},
			GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 30 * time.Second},
			ShutdownWait:    time.Second,
		},
		Prefixes: map[netip.Prefix]Attrs{vipA: {}, vipB: {Backup: true}},
	}
}

func linkDown(t *testing.T, h *testbed.Host) time.Time {
	t.Helper()
	err := h.Do(func() error {
		l, err := netlink.LinkByName(h.IfName)
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

func TestBIRD(t *testing.T) {
	testbed.RequirePrivileges(t)
	if _, err := exec.LookPath("bird"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bird not installed (Debian package bird2; .ci/run installs it)")
		}
		t.Skip("bird not installed (Debian package bird2)")
	}
	seg, err := testbed.NewSegment(netip.MustParsePrefix("10.79.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := seg.Close(); err != nil {
			t.Error(err)
		}
	})
	hosts := map[string]*testbed.Host{}
	for name, addr := range map[string]string{"rtr": "10.79.0.1", "lb1": "10.79.0.2", "lb2": "10.79.0.3", "lb3": "10.79.0.4"} {
		if hosts[name], err = seg.AddHost(name, netip.MustParseAddr(addr)); err != nil {
			t.Fatal(err)
		}
	}
	rtr := hosts["rtr"]
	bird := startBIRD(t, rtr)
	routesUp := func(t *testing.T, proto string) {
		t.Helper()
		eventually(t, 15*time.Second, "both prefixes in BIRD from "+proto, func() bool { return len(bird.routes(proto)) == 2 })
	}
	bfdUp := func(t *testing.T, lb *testbed.Host) {
		t.Helper()
		eventually(t, 5*time.Second, "BFD up with "+lb.Name, func() bool {
			for _, line := range strings.Split(bird.show("show", "bfd", "sessions"), "\n") {
				if f := strings.Fields(line); len(f) > 2 && f[0] == lb.Addr.String() && f[2] == "Up" {
					return true
				}
			}
			return false
		})
	}

	// With "bfd on", BFD detects a lost link in well under a second,
	// and also ends the session of a restart: the router drops the
	// routes, graceful restart or not.
	t.Run("bfd on", func(t *testing.T) {
		t.Parallel()
		lb := hosts["lb1"]
		sp := startSpeakerProcess(t, lb, hostSpeaker(lb, rtr, true, ""))
		routesUp(t, "lb1")
		got := bird.routes("lb1")
		for _, want := range []struct {
			prefix netip.Prefix
			lines  []string
		}{
			{vipA, []string{"BGP.as_path: 65001\n", "BGP.next_hop: 10.79.0.2\n", "BGP.community: (65001,100)\n"}},
			{vipB, []string{"BGP.as_path: 65001 65001 65001\n", "BGP.next_hop: 10.79.0.2\n"}},
		} {
			for _, line := range want.lines {
				if !strings.Contains(got[want.prefix], line) {
					t.Errorf("BIRD has %s as\n%s\nwant %q", want.prefix, got[want.prefix], line)
				}
			}
		}
		bfdUp(t, lb)

		sp.stop(t, syscall.SIGUSR2)
		eventually(t, 3*time.Second, "routes dropped at BFD down", func() bool { return len(bird.routes("lb1")) == 0 })

		startSpeakerProcess(t, lb, hostSpeaker(lb, rtr, true, ""))
		routesUp(t, "lb1")
		bfdUp(t, lb)
		down := linkDown(t, lb)
		eventually(t, 2*time.Second, "routes dropped after the link went down", func() bool { return len(bird.routes("lb1")) == 0 })
		t.Logf("routes dropped %s after the link went down", time.Since(down).Round(time.Millisecond))
	})

	// Without BFD, a restart keeps the routes (stale) until the next
	// speaker's End-of-RIB, which drops what it does not announce; a
	// graceful stop shows GRACEFUL_SHUTDOWN, then withdraws.
	t.Run("graceful restart", func(t *testing.T) {
		t.Parallel()
		lb := hosts["lb2"]
		pw := filepath.Join(t.TempDir(), "password")
		if err := os.WriteFile(pw, []byte("md5-s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		spec := hostSpeaker(lb, rtr, false, pw)
		sp := startSpeakerProcess(t, lb, spec)
		routesUp(t, "lb2")

		sp.stop(t, syscall.SIGUSR2)
		eventually(t, 5*time.Second, "graceful restart at BIRD", func() bool {
			return strings.Contains(bird.show("show", "protocols", "all", "lb2"), "Neighbor graceful restart active")
		})
		time.Sleep(time.Second)
		if n := len(bird.routes("lb2")); n != 2 {
			t.Fatalf("BIRD kept %d routes over the restart, want 2", n)
		}

		spec.Config.GracefulRestart.Restarting = true
		spec.Prefixes = map[netip.Prefix]Attrs{vipA: {}}
		sp = startSpeakerProcess(t, lb, spec)
		eventually(t, 15*time.Second, "A refreshed, B dropped", func() bool {
			r := bird.routes("lb2")
			_, ok := r[vipA]
			return len(r) == 1 && ok && !strings.Contains(bird.show("show", "protocols", "all", "lb2"), "graceful restart active")
		})

		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			sp.stop(t, syscall.SIGTERM)
		}()
		eventually(t, 3*time.Second, "A marked GRACEFUL_SHUTDOWN", func() bool {
			return strings.Contains(bird.routes("lb2")[vipA], "(65535,0)")
		})
		eventually(t, 5*time.Second, "A withdrawn", func() bool { return len(bird.routes("lb2")) == 0 })
		<-stopped
	})

	// With "bfd graceful", a restart keeps the routes, but so does a
	// lost link: the router keeps a dead node's routes for its restart
	// time.
	t.Run("bfd graceful", func(t *testing.T) {
		t.Parallel()
		lb := hosts["lb3"]
		sp := startSpeakerProcess(t, lb, hostSpeaker(lb, rtr, true, ""))
		routesUp(t, "lb3")
		bfdUp(t, lb)
		sp.stop(t, syscall.SIGUSR2)
		time.Sleep(1500 * time.Millisecond)
		if n := len(bird.routes("lb3")); n != 2 {
			t.Fatalf("BIRD kept %d routes over the restart, want 2", n)
		}

		spec := hostSpeaker(lb, rtr, true, "")
		spec.Config.GracefulRestart.Restarting = true
		startSpeakerProcess(t, lb, spec)
		bfdUp(t, lb)
		linkDown(t, lb)
		time.Sleep(1500 * time.Millisecond)
		if n := len(bird.routes("lb3")); n != 2 {
			t.Errorf("BIRD kept %d routes of a lost node, want 2 (stale, for the restart time)", n)
		}
	})
}
