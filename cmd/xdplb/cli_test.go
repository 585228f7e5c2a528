package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

const testConfig = `
interfaces: [eth0]
local:
  addresses: [172.19.0.5]
services:
  - name: web
    vip: 172.19.0.10
    port: 80
    persistence: 300s
    client_address: toa
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
        weight: 2
  - vip: 172.19.0.10
    port: 53
    protocol: udp
    scheduler: maglev
    backends:
      - address: 172.19.0.2
        port: 5353
`

// fakeDaemon is an api.Source over an in-memory configuration.
type fakeDaemon struct {
	mu     sync.Mutex
	cfg    *config.Config
	down   map[string]bool // backends IP:PORT that health checks took out
	conns  []api.Connection
	stats  api.Stats
	calls  int // of Stats; each call adds calls*1000 bytes in
	reload api.ReloadResult
}

func (f *fakeDaemon) Status() api.Status {
	t := f.cfg.Conntrack.Timeouts
	return api.Status{Ready: true, Timeouts: api.Timeouts{
		SynSent: t.SynSent, Established: t.Established, FinWait: t.FinWait, Close: t.Close, UDP: t.UDP,
	}, LocalPortsPerBackend: 10000, NewConnsCeiling: 10000 / t.FinWait.Seconds()}
}

func (f *fakeDaemon) Stats() (api.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	st := f.stats
	st.Services = nil
	for _, s := range f.stats.Services {
		s.Traffic.BytesIn += uint64(f.calls) * 1000
		st.Services = append(st.Services, s)
	}
	return st, nil
}

func (f *fakeDaemon) Connections() ([]api.Connection, error) { return f.conns, nil }

func (f *fakeDaemon) Services() []api.ServiceView {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.ServiceView
	for _, s := range f.cfg.Services {
		v := api.ServiceView{Name: s.Name, VIP: s.VIP.String(), Port: s.Port, Protocol: s.Protocol.String(),
			Scheduler: s.Scheduler, Persistence: s.Persistence, Forwarding: s.Forwarding, ClientAddress: s.ClientAddress}
		for _, b := range s.Backends {
			addr := netip.AddrPortFrom(b.Address, b.Port).String()
			v.Backends = append(v.Backends, api.BackendView{Address: b.Address.String(), Port: b.Port, Weight: b.Weight, Up: !f.down[addr]})
		}
		out = append(out, v)
	}
	return out
}

func (f *fakeDaemon) Change(edit func(*config.Config) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := f.cfg.Clone()
	if err := edit(next); err != nil {
		return err
	}
	if err := next.Validate(); err != nil {
		return err
	}
	f.cfg = next
	return nil
}

func (f *fakeDaemon) Reload(dryRun bool) (api.ReloadResult, error) {
	r := f.reload
	r.DryRun = dryRun
	return r, nil
}

// Cluster is a vrrp backup hearing its master, with sync.
func (f *fakeDaemon) BGP() api.BGPStatus {
	return api.BGPStatus{Enabled: true, ASN: 65001, RouterID: "172.19.0.5",
		Peers: []api.BGPPeer{{Address: "172.19.0.1", ASN: 65000, State: "established", Up: true, Uptime: time.Minute, Sent: 2}},
		Prefixes: []api.BGPPrefix{
			{Prefix: "172.19.0.10/32", Kind: "vip", Why: "drained (xdplb bgp undrain to announce it again)"},
			{Prefix: "172.19.0.5/32", Kind: "local", Announced: true},
		}}
}

func (f *fakeDaemon) Drain(vip netip.Addr, drain bool) error {
	if vip.IsValid() && vip != netip.MustParseAddr("172.19.0.10") {
		return api.NotFound(vip.String() + " is not a VIP of any service")
	}
	return nil
}

func (f *fakeDaemon) Cluster() api.ClusterStatus {
	now := time.Now()
	return api.ClusterStatus{
		Mode: "vrrp", NodeID: 2, Role: "backup", Priority: 100, Ready: true, Since: now.Add(-time.Minute),
		Reason:  "starting: waiting 3.6s for a master",
		Waiting: "node 1 is master with priority 200 >= 100",
		Peers:   []api.HAPeer{{NodeID: 1, Priority: 200, Role: "master", Ready: true, LastHeard: now}},
		Sync: &api.SyncStatus{Listen: "172.19.0.6:8849", RecordsReceived: 1200, DatagramsReceived: 40, Created: 1100, Updated: 100,
			Peers: []api.SyncPeer{{Address: "172.19.0.5:8849", NodeID: 1, LastHeard: now, Records: 1200, Bulk: "done", BulkRecords: 900}}},
	}
}

// SetRole refuses: the fake is in vrrp mode.
func (f *fakeDaemon) SetRole(string) error {
	return api.Conflict("ha.mode is vrrp: only in external mode is the role set from outside")
}

// Zero forgets the fake counters of the services ref names, or of all.
func (f *fakeDaemon) Zero(ref *ident.Ref) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ref != nil && ref.Name != "web" {
		return fmt.Errorf("service %s not found: %w", ref, api.ErrNotFound)
	}
	f.stats.Services = nil
	return nil
}

func (f *fakeDaemon) service(t *testing.T, key string) config.Service {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.cfg.Services {
		if s.Key().String() == key {
			return s
		}
	}
	t.Fatalf("no service %s", key)
	return config.Service{}
}

func conn(state, vip, backend string) api.Connection {
	return api.Connection{Protocol: ident.TCP, State: state, VIP: netip.MustParseAddrPort(vip), Backend: netip.MustParseAddrPort(backend)}
}

// startDaemon serves a fakeDaemon on a socket until the test ends.
func startDaemon(t *testing.T) (*fakeDaemon, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDaemon{
		cfg:  cfg,
		down: map[string]bool{"172.19.0.3:80": true},
		conns: []api.Connection{
			conn("ESTABLISHED", "172.19.0.10:80", "172.19.0.2:80"),
			conn("ESTABLISHED", "172.19.0.10:80", "172.19.0.2:80"),
			conn("SYN_SENT", "172.19.0.10:80", "172.19.0.2:80"),
			conn("FIN_WAIT", "172.19.0.10:80", "172.19.0.3:80"),
			conn("ESTABLISHED", "172.19.0.11:80", "172.19.0.3:80"), // another VIP
		},
		stats: api.Stats{Services: []api.ServiceStats{{
			Name: "web", Address: "172.19.0.10:80", Protocol: "tcp",
			Traffic: api.Traffic{NewConns: 12, PacketsIn: 340, PacketsOut: 290, BytesIn: 123_456_789_000, BytesOut: 45_000},
			Backends: []api.BackendStats{
				{Address: "172.19.0.2:80", ActiveConns: 2, InactiveConns: 1,
					Traffic: api.Traffic{NewConns: 7, PacketsIn: 200, PacketsOut: 170, BytesIn: 20_000, BytesOut: 30_000}},
				{Address: "172.19.0.3:80", InactiveConns: 1,
					Traffic: api.Traffic{NewConns: 5, PacketsIn: 140, PacketsOut: 120, BytesIn: 14_000, BytesOut: 15_000}},
			},
		}}},
	}
	socket := filepath.Join(t.TempDir(), "api.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(f, slog.New(slog.DiscardHandler)).Serve(ctx, socket) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("unix", socket)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return f, socket
}

// run runs the CLI with args against socket and returns its output.
func run(t *testing.T, socket string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--socket", socket}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func mustRun(t *testing.T, socket string, args ...string) string {
	t.Helper()
	out, err := run(t, socket, args...)
	if err != nil {
		t.Fatalf("xdplb %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func wantErr(t *testing.T, socket, want string, args ...string) {
	t.Helper()
	_, err := run(t, socket, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("xdplb %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
	}
}

func TestList(t *testing.T) {
	_, socket := startDaemon(t)
	got := mustRun(t, socket, "list")
	want := `Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight State ActiveConn InActConn
TCP  172.19.0.10:80 rr persistent 300 toa (web)
  -> 172.19.0.2:80                FullNAT 1      up    2          1
  -> 172.19.0.3:80                FullNAT 2      down  0          1
UDP  172.19.0.10:53 maglev
  -> 172.19.0.2:5353              FullNAT 1      up    0          0
`
	if got != want {
		t.Errorf("list:\n%s\nwant:\n%s", got, want)
	}
}

func TestListStats(t *testing.T) {
	_, socket := startDaemon(t)
	got := mustRun(t, socket, "list", "--stats")
	want := `Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  172.19.0.10:80                     12      340      290     123G    45000
  -> 172.19.0.2:80                       7      200      170    20000    30000
  -> 172.19.0.3:80                       5      140      120    14000    15000
UDP  172.19.0.10:53                      0        0        0        0        0
  -> 172.19.0.2:5353                     0        0        0        0        0
`
	if got != want {
		t.Errorf("list --stats:\n%s\nwant:\n%s", got, want)
	}
	got = mustRun(t, socket, "list", "--stats", "--exact")
	// The fake adds 1000 bytes in per read of the counters.
	if !strings.Contains(got, "TCP  172.19.0.10:80                     12      340      290 123456791000    45000\n") {
		t.Errorf("list --stats --exact:\n%s", got)
	}
}

func TestListRate(t *testing.T) {
	old := rateInterval
	rateInterval = 50 * time.Millisecond
	t.Cleanup(func() { rateInterval = old })
	_, socket := startDaemon(t)
	got := mustRun(t, socket, "list", "--rate")
	lines := strings.Split(got, "\n")
	if lines[0] != "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS" ||
		lines[1] != "  -> RemoteAddress:Port" || !strings.HasPrefix(lines[2], "TCP  172.19.0.10:80                      0        0        0 ") {
		t.Errorf("list --rate:\n%s", got)
	}
	// The fake adds 1000 bytes in between the two reads 50ms apart:
	// about 20000 per second.
	var bps uint64
	if f := strings.Fields(lines[2]); len(f) != 7 {
		t.Fatalf("service row %q", lines[2])
	} else if err := json.Unmarshal([]byte(f[5]), &bps); err != nil || bps == 0 || bps > 20000 {
		t.Errorf("InBPS %q, want at most 20000", f[5])
	}
	wantErr(t, socket, "none of the others can be", "list", "--rate", "--stats")
}

func TestPerSecond(t *testing.T) {
	r := perSecond(api.Traffic{NewConns: 10, BytesIn: 5000}, api.Traffic{NewConns: 30, BytesIn: 1000}, 2*time.Second)
	if *r != (rates{Conns: 10}) {
		t.Errorf("rates = %+v, want 10 conns/s and nothing for the counter that went back", r)
	}
}

func TestListJSON(t *testing.T) {
	_, socket := startDaemon(t)
	var got []listService
	if err := json.Unmarshal([]byte(mustRun(t, socket, "list", "--json", "--stats")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "web" || got[0].Persistence != 300*time.Second || got[0].Stats.NewConns != 12 ||
		got[0].ClientAddress != "toa" || got[1].ClientAddress != "none" || got[0].Forwarding != "fullnat" {
		t.Fatalf("list --json = %+v", got)
	}
	b := got[0].Backends[0]
	if b.Address != "172.19.0.2" || b.ActiveConns != 2 || b.InactiveConns != 1 || b.Stats.PacketsIn != 200 || !b.Up {
		t.Errorf("backend = %+v", b)
	}
}

func TestServiceCommands(t *testing.T) {
	f, socket := startDaemon(t)
	out := mustRun(t, socket, "service", "add", "172.19.0.20:443", "--scheduler", "wrr", "--persistence", "300", "--name", "api")
	if out != "added service TCP 172.19.0.20:443 wrr persistent 300 (api), 0 backends\n" {
		t.Errorf("service add: %q", out)
	}
	if s := f.service(t, "172.19.0.20:443/tcp"); s.Name != "api" || s.Scheduler != "wrr" || s.Persistence != 300*time.Second {
		t.Errorf("service = %+v", s)
	}
	out = mustRun(t, socket, "service", "add", "172.19.0.20:53/udp")
	if out != "added service UDP 172.19.0.20:53 rr, 0 backends\n" {
		t.Errorf("service add: %q", out)
	}
	mustRun(t, socket, "service", "add", "172.19.0.20:54", "-p", "UDP", "--persistence", "1m30s")
	if s := f.service(t, "172.19.0.20:54/udp"); s.Persistence != 90*time.Second {
		t.Errorf("service = %+v", s)
	}

	out = mustRun(t, socket, "service", "edit", "api", "--scheduler", "sh", "--persistence", "0")
	if out != "changed service TCP 172.19.0.20:443 sh (api), 0 backends\n" {
		t.Errorf("service edit: %q", out)
	}
	out = mustRun(t, socket, "service", "edit", "172.19.0.20:53/udp", "--name", "dns")
	if out != "changed service UDP 172.19.0.20:53 rr (dns), 0 backends\n" {
		t.Errorf("service edit: %q", out)
	}
	out = mustRun(t, socket, "service", "remove", "dns")
	if out != "removed service dns\n" {
		t.Errorf("service remove: %q", out)
	}
	wantErr(t, socket, "service dns not found", "service", "remove", "dns")
}

func TestServiceErrors(t *testing.T) {
	_, socket := startDaemon(t)
	for _, tc := range []struct {
		want string
		args []string
	}{
		{`service "10.0.0.1" is missing the port; want VIP:PORT, VIP:PORT/tcp|udp or a service name`, []string{"service", "add", "10.0.0.1"}},
		{`service "10.0.0.1:": "" is not a port (1-65535)`, []string{"service", "add", "10.0.0.1:"}},
		{`service "web:80" is neither an address nor a name`, []string{"service", "add", "web:80"}},
		{`VIP:PORT "web" is not an address: a new service is given as VIP:PORT or VIP:PORT/tcp|udp (and --name NAME)`, []string{"service", "add", "web"}},
		{`service "10.0.0.1:99999": "99999" is not a port (1-65535)`, []string{"service", "add", "10.0.0.1:99999"}},
		{`service "10.0.0.1:80/sctp": "sctp" is not a protocol (accepted: tcp, udp)`, []string{"service", "add", "10.0.0.1:80/sctp"}},
		{`VIP:PORT "10.0.0.1:80/udp" says udp but --protocol says tcp`, []string{"service", "add", "10.0.0.1:80/udp", "--protocol", "tcp"}},
		{`--persistence "soon": want seconds (300) or a duration`, []string{"service", "add", "10.0.0.1:80", "--persistence", "soon"}},
		{"want one argument, VIP:PORT (for example 172.19.0.10:80); got 0", []string{"service", "add"}},
		{"want one argument, SERVICE", []string{"service", "edit", "a", "b", "--name", "x"}},
		{`scheduler: "sed" is not a scheduler (accepted: rr, wrr, maglev, sh, lc, wlc)`, []string{"service", "add", "172.19.0.20:80", "--scheduler", "sed"}},
		{`protocol: "sctp" is not a protocol`, []string{"service", "add", "172.19.0.20:80", "--protocol", "sctp"}},
		{"vip: 127.0.0.1 is a loopback address", []string{"service", "add", "127.0.0.1:80"}},
		{"service 172.19.0.10:80/tcp already exists (web)", []string{"service", "add", "172.19.0.10:80"}},
		{`service name "web" is already taken by 172.19.0.10:80/tcp`, []string{"service", "add", "172.19.0.20:80", "--name", "web"}},
		{"nothing to change: give --scheduler, --persistence, --persistence-netmask, --forwarding, --client-address or --name",
			[]string{"service", "edit", "web"}},
		{`service "172.19.0.10" is missing the port`, []string{"service", "edit", "172.19.0.10", "--scheduler", "rr"}},
		{"service 172.19.0.10:81 not found", []string{"service", "edit", "172.19.0.10:81", "--scheduler", "rr"}},
		{`service "172.19.0.10:80/icmp": "icmp" is not a protocol (accepted: tcp, udp)`, []string{"service", "remove", "172.19.0.10:80/icmp"}},
	} {
		wantErr(t, socket, tc.want, tc.args...)
	}
}

func TestBackendCommands(t *testing.T) {
	f, socket := startDaemon(t)
	out := mustRun(t, socket, "backend", "add", "172.19.0.10:80", "172.19.0.4")
	if out != "added backend 172.19.0.4:80 weight 1 to service web\n" {
		t.Errorf("backend add: %q", out)
	}
	out = mustRun(t, socket, "backend", "add", "web", "172.19.0.4:8080", "--weight", "0")
	if out != "added backend 172.19.0.4:8080 weight 0 to service web\n" {
		t.Errorf("backend add: %q", out)
	}
	out = mustRun(t, socket, "backend", "edit", "web", "172.19.0.4", "-w", "5")
	if out != "changed backend 172.19.0.4:80 of service web to weight 5\n" {
		t.Errorf("backend edit: %q", out)
	}
	out = mustRun(t, socket, "backend", "remove", "172.19.0.10:80/tcp", "172.19.0.4:8080")
	if out != "removed backend 172.19.0.4:8080 from service 172.19.0.10:80/tcp\n" {
		t.Errorf("backend remove: %q", out)
	}
	s := f.service(t, "172.19.0.10:80/tcp")
	if len(s.Backends) != 3 || s.Backends[2].Port != 80 || s.Backends[2].Weight != 5 {
		t.Errorf("backends = %+v", s.Backends)
	}

	for _, tc := range []struct {
		want string
		args []string
	}{
		{"backend 172.19.0.2:80 already in service web", []string{"backend", "add", "web", "172.19.0.2"}},
		{"backend 172.19.0.9:80 not in service web", []string{"backend", "edit", "web", "172.19.0.9", "--weight", "1"}},
		{"backend 172.19.0.9:80 not in service web", []string{"backend", "remove", "web", "172.19.0.9:80"}},
		{"service www not found", []string{"backend", "add", "www", "172.19.0.9"}},
		{`backend "rs-1": "rs-1" is not an IP address`, []string{"backend", "add", "web", "rs-1"}},
		{`backend "172.19.0.9:99999": "99999" is not a port (1-65535)`, []string{"backend", "add", "web", "172.19.0.9:99999"}},
		{`service "172.19.0.10:0": "0" is not a port`, []string{"backend", "add", "172.19.0.10:0", "172.19.0.9"}},
		{"want two arguments, SERVICE and IP[:PORT]", []string{"backend", "add", "web"}},
		{"weight: 70000 is not a weight (0-65535)", []string{"backend", "add", "web", "172.19.0.9", "--weight", "70000"}},
		{"weight: 70000 is not a weight (0-65535)", []string{"backend", "edit", "web", "172.19.0.2", "--weight", "70000"}},
		{"nothing to change: give --weight", []string{"backend", "edit", "web", "172.19.0.2"}},
		{"address: 224.0.0.1 is a multicast address", []string{"backend", "add", "web", "224.0.0.1"}},
	} {
		wantErr(t, socket, tc.want, tc.args...)
	}
}

func TestReload(t *testing.T) {
	f, socket := startDaemon(t)
	if out := mustRun(t, socket, "reload"); out != "reloaded: nothing changed\n" {
		t.Errorf("reload: %q", out)
	}
	f.reload = api.ReloadResult{Applied: []string{"services", "log"}, NeedRestart: []string{"xdp_mode"}}
	want := "reloaded: applied services, log\nchanged but only applied by a restart: xdp_mode\n"
	if out := mustRun(t, socket, "reload"); out != want {
		t.Errorf("reload: %q, want %q", out, want)
	}
}

func TestNoDaemon(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "none.sock")
	wantErr(t, socket, "xdplb daemon at "+socket, "list")
}

func TestStats(t *testing.T) {
	_, socket := startDaemon(t)
	got := mustRun(t, socket, "stats", "--interval", "100ms")
	for _, want := range []string{"service / backend", "172.19.0.10:80/tcp", "rates over the last", "conn/s", "bit/s in"} {
		if !strings.Contains(got, want) {
			t.Errorf("stats output lacks %q:\n%s", want, got)
		}
	}
	// The fake adds 1000 bytes in between the two reads: about 80 kb/s.
	if !strings.Contains(got, "kb/s") {
		t.Errorf("stats rates:\n%s", got)
	}
	wantErr(t, socket, "must not be negative", "stats", "--interval", "-1s")
}

func TestConnList(t *testing.T) {
	_, socket := startDaemon(t)
	got := mustRun(t, socket, "conn", "list")
	if !strings.HasPrefix(got, "PRO  EXPIRE  STATE") {
		t.Errorf("conn list:\n%s", got)
	}
}

func TestHealthNote(t *testing.T) {
	since := time.Date(2026, 11, 25, 12, 3, 4, 0, time.Local)
	for _, c := range []struct {
		b    api.BackendView
		want string
	}{
		{api.BackendView{Up: true}, ""},
		{api.BackendView{Up: true, Since: since}, "  (up since 12:03:04)"},
		{api.BackendView{Up: false, Since: since, Reason: "connection refused"}, "  (down since 12:03:04: connection refused)"},
	} {
		if got := healthNote(c.b); got != c.want {
			t.Errorf("healthNote(%+v) = %q, want %q", c.b, got, c.want)
		}
	}
}

func TestListShowsFallback(t *testing.T) {
	var out bytes.Buffer
	printList(&out, []listService{{ServiceView: api.ServiceView{
		VIP: "172.19.0.10", Port: 80, Protocol: "tcp", Scheduler: "rr",
		Fallback: &api.BackendView{Address: "172.19.0.4", Port: 80, Weight: 1, Up: true},
	}}})
	if !strings.Contains(out.String(), "  -> 172.19.0.4:80                FullNAT (fallback: takes new connections while no backend can)") {
		t.Errorf("list:\n%s", out.String())
	}
}

// TestListForward: the Forward column says each mode as ipvsadm's does
// (Route, Tunnel), FullNAT and GUE for xdplb's own, for the backends and
// the fallback; a DSR service's line names its mode.
func TestListForward(t *testing.T) {
	var l []listService
	for i, fwd := range []string{"", config.ForwardingFullNAT, config.ForwardingDSRL2, config.ForwardingDSRIPIP, config.ForwardingDSRGUE} {
		b := api.BackendView{Address: "172.19.0.2", Port: uint16(80 + i), Weight: 1, Up: true}
		l = append(l, listService{ServiceView: api.ServiceView{VIP: "172.19.0.10", Port: uint16(80 + i), Protocol: "tcp",
			Scheduler: "rr", Forwarding: fwd}, Backends: []listBackend{{BackendView: b}}})
	}
	l[4].Fallback = &api.BackendView{Address: "172.19.0.9", Port: 84, Weight: 1, Up: true}
	var out bytes.Buffer
	printList(&out, l)
	want := `Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight State ActiveConn InActConn
TCP  172.19.0.10:80 rr
  -> 172.19.0.2:80                FullNAT 1      up    0          0
TCP  172.19.0.10:81 rr
  -> 172.19.0.2:81                FullNAT 1      up    0          0
TCP  172.19.0.10:82 rr dsr-l2
  -> 172.19.0.2:82                Route   1      up    0          0
TCP  172.19.0.10:83 rr dsr-ipip
  -> 172.19.0.2:83                Tunnel  1      up    0          0
TCP  172.19.0.10:84 rr dsr-gue
  -> 172.19.0.2:84                GUE     1      up    0          0
  -> 172.19.0.9:84                GUE     (fallback: takes new connections while no backend can)
`
	if out.String() != want {
		t.Errorf("list:\n%s\nwant:\n%s", out.String(), want)
	}
}
