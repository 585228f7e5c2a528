package metrics

import (
	"errors"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/xdplb/xdplb/internal/buildinfo"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// fakeSource returns fixed numbers, or errors when told to.
type fakeSource struct {
	stats        Counters
	statsErr     error
	conntrack    ConntrackStats
	conntrackErr error
	health       []BackendHealth
	gc           CollectorStats
	reloadsOK    uint64
	reloadsFail  uint64
	cluster      ClusterStats
	bgp          BGPStats
}

func (f *fakeSource) Counters() (Counters, error)        { return f.stats, f.statsErr }
func (f *fakeSource) Conntrack() (ConntrackStats, error) { return f.conntrack, f.conntrackErr }
func (f *fakeSource) Health() []BackendHealth            { return f.health }
func (f *fakeSource) Collector() CollectorStats          { return f.gc }
func (f *fakeSource) Reloads() (ok, failed uint64)       { return f.reloadsOK, f.reloadsFail }
func (f *fakeSource) ClusterMetrics() ClusterStats       { return f.cluster }
func (f *fakeSource) BGPMetrics() BGPStats               { return f.bgp }

func newFake() *fakeSource {
	return &fakeSource{
		stats: Counters{
			LocalPortsPerBackend: 20000,
			NewConnsCeiling:      20000.0 / 120,
			Reasons:              map[string]uint64{"fwd_tx": 100, "pass_no_service": 7, "drop_no_backend": 3},
			TOA:                  map[string]uint64{"inserted": 4, "no_room": 1},
			Services: []ServiceCounters{
				{
					Name: "web", Key: ident.Service{VIP: netip.MustParseAddr("10.0.0.10"), Port: 80, Proto: ident.TCP},
					Traffic:  datapath.Traffic{PacketsIn: 10, BytesIn: 1000, PacketsOut: 8, BytesOut: 6400, NewConns: 2},
					HalfOpen: 1,
					Backends: []BackendCounters{
						{Addr: netip.MustParseAddrPort("192.168.1.1:8080"), Active: 3, Inactive: 1, Weight: 1, Traffic: datapath.Traffic{PacketsIn: 6, BytesIn: 600, PacketsOut: 5, BytesOut: 4000, NewConns: 1}},
						{Addr: netip.MustParseAddrPort("192.168.1.2:8080"), Weight: 2, Traffic: datapath.Traffic{PacketsIn: 4, BytesIn: 400, PacketsOut: 3, BytesOut: 2400, NewConns: 1}},
					},
				},
				{
					Name: "dns", Key: ident.Service{VIP: netip.MustParseAddr("10.0.0.10"), Port: 53, Proto: ident.UDP},
					Traffic: datapath.Traffic{PacketsIn: 1, BytesIn: 60, PacketsOut: 1, BytesOut: 120, NewConns: 1},
					Backends: []BackendCounters{
						{Addr: netip.MustParseAddrPort("192.168.1.3:53"), Inactive: 1, Weight: 1, Traffic: datapath.Traffic{PacketsIn: 1, BytesIn: 60, PacketsOut: 1, BytesOut: 120, NewConns: 1}},
					},
				},
			},
		},
		conntrack: ConntrackStats{Entries: 3, HalfOpen: 1, Capacity: 65536, PortsInUse: map[string]uint64{"10.1.0.1": 2, "10.1.0.2": 1}},
		health: []BackendHealth{
			{Service: "web", Backend: netip.MustParseAddrPort("192.168.1.1:8080"), Up: true},
			{Service: "web", Backend: netip.MustParseAddrPort("192.168.1.2:8080"), Up: false},
			{Service: "dns", Backend: netip.MustParseAddrPort("192.168.1.3:53"), Up: true},
		},
		gc:          CollectorStats{Runs: 12, Expired: 5, Orphans: 1, LastDuration: 1500 * time.Millisecond},
		reloadsOK:   4,
		reloadsFail: 1,
	}
}

func setVersion(t *testing.T, v string) {
	old := buildinfo.Version
	buildinfo.Version = v
	t.Cleanup(func() { buildinfo.Version = old })
}

const wantExposition = `
# HELP xdplb_backend_active_connections Established connections of a backend of a service (ipvsadm's ActiveConn), as of the conntrack collector's last sweep.
# TYPE xdplb_backend_active_connections gauge
xdplb_backend_active_connections{backend="192.168.1.1:8080",service="web"} 3
xdplb_backend_active_connections{backend="192.168.1.2:8080",service="web"} 0
xdplb_backend_active_connections{backend="192.168.1.3:53",service="dns"} 0
# HELP xdplb_backend_bytes_total Bytes a backend of a service carried, as whole frames as received (Ethernet header included); direction in is client to backend, out is backend to client.
# TYPE xdplb_backend_bytes_total counter
xdplb_backend_bytes_total{backend="192.168.1.1:8080",direction="in",service="web"} 600
xdplb_backend_bytes_total{backend="192.168.1.1:8080",direction="out",service="web"} 4000
xdplb_backend_bytes_total{backend="192.168.1.2:8080",direction="in",service="web"} 400
xdplb_backend_bytes_total{backend="192.168.1.2:8080",direction="out",service="web"} 2400
xdplb_backend_bytes_total{backend="192.168.1.3:53",direction="in",service="dns"} 60
xdplb_backend_bytes_total{backend="192.168.1.3:53",direction="out",service="dns"} 120
# HELP xdplb_backend_connections_total New connections (TCP or UDP flows) scheduled to a backend of a service.
# TYPE xdplb_backend_connections_total counter
xdplb_backend_connections_total{backend="192.168.1.1:8080",service="web"} 1
xdplb_backend_connections_total{backend="192.168.1.2:8080",service="web"} 1
xdplb_backend_connections_total{backend="192.168.1.3:53",service="dns"} 1
# HELP xdplb_backend_inactive_connections Connections of a backend of a service in any other state: opening, closing, UDP (ipvsadm's InActConn), as of the last sweep.
# TYPE xdplb_backend_inactive_connections gauge
xdplb_backend_inactive_connections{backend="192.168.1.1:8080",service="web"} 1
xdplb_backend_inactive_connections{backend="192.168.1.2:8080",service="web"} 0
xdplb_backend_inactive_connections{backend="192.168.1.3:53",service="dns"} 1
# HELP xdplb_backend_local_ports_used_ratio Share of a backend's local address:port pairs (local addresses × ports) its connections hold, as of the last sweep; at 1 new connections to it are refused.
# TYPE xdplb_backend_local_ports_used_ratio gauge
xdplb_backend_local_ports_used_ratio{backend="192.168.1.1:8080",service="web"} 0.0002
xdplb_backend_local_ports_used_ratio{backend="192.168.1.2:8080",service="web"} 0
xdplb_backend_local_ports_used_ratio{backend="192.168.1.3:53",service="dns"} 5e-05
# HELP xdplb_backend_packets_total Packets a backend of a service carried; direction in is client to backend, out is backend to client.
# TYPE xdplb_backend_packets_total counter
xdplb_backend_packets_total{backend="192.168.1.1:8080",direction="in",service="web"} 6
xdplb_backend_packets_total{backend="192.168.1.1:8080",direction="out",service="web"} 5
xdplb_backend_packets_total{backend="192.168.1.2:8080",direction="in",service="web"} 4
xdplb_backend_packets_total{backend="192.168.1.2:8080",direction="out",service="web"} 3
xdplb_backend_packets_total{backend="192.168.1.3:53",direction="in",service="dns"} 1
xdplb_backend_packets_total{backend="192.168.1.3:53",direction="out",service="dns"} 1
# HELP xdplb_backend_up Whether a backend of a service is up (1) or down (0).
# TYPE xdplb_backend_up gauge
xdplb_backend_up{backend="192.168.1.1:8080",service="web"} 1
xdplb_backend_up{backend="192.168.1.2:8080",service="web"} 0
xdplb_backend_up{backend="192.168.1.3:53",service="dns"} 1
# HELP xdplb_backend_weight The configured weight of a backend of a service (0: drained).
# TYPE xdplb_backend_weight gauge
xdplb_backend_weight{backend="192.168.1.1:8080",service="web"} 1
xdplb_backend_weight{backend="192.168.1.2:8080",service="web"} 2
xdplb_backend_weight{backend="192.168.1.3:53",service="dns"} 1
# HELP xdplb_build_info Always 1; the labels say which build of xdplb is running.
# TYPE xdplb_build_info gauge
xdplb_build_info{goversion="GOVERSION",version="v9.8.7-test"} 1
# HELP xdplb_config_reloads_total Configuration reloads, by whether they were applied (success) or not (failure).
# TYPE xdplb_config_reloads_total counter
xdplb_config_reloads_total{result="failure"} 1
xdplb_config_reloads_total{result="success"} 4
# HELP xdplb_backend_new_connections_ceiling New connections per second each backend sustains from distinct client ports: its local address:port pairs divided by conntrack.timeouts.fin_wait, which every closed connection holds its port for.
# TYPE xdplb_backend_new_connections_ceiling gauge
xdplb_backend_new_connections_ceiling 166.66666666666666
# HELP xdplb_conntrack_capacity Most connections the connection tracking table can hold.
# TYPE xdplb_conntrack_capacity gauge
xdplb_conntrack_capacity 65536
# HELP xdplb_conntrack_entries Connections in the connection tracking table (forward halves only).
# TYPE xdplb_conntrack_entries gauge
xdplb_conntrack_entries 3
# HELP xdplb_conntrack_half_open TCP connections whose client has not completed the handshake, as of the conntrack collector's last sweep: a SYN flood shows here.
# TYPE xdplb_conntrack_half_open gauge
xdplb_conntrack_half_open 1
# HELP xdplb_conntrack_gc_duration_seconds How long the most recent conntrack garbage collector run took.
# TYPE xdplb_conntrack_gc_duration_seconds gauge
xdplb_conntrack_gc_duration_seconds 1.5
# HELP xdplb_conntrack_gc_expired_total Idle conntrack entries the garbage collector removed.
# TYPE xdplb_conntrack_gc_expired_total counter
xdplb_conntrack_gc_expired_total 5
# HELP xdplb_conntrack_gc_orphans_total Conntrack halves the garbage collector removed because their other half was gone.
# TYPE xdplb_conntrack_gc_orphans_total counter
xdplb_conntrack_gc_orphans_total 1
# HELP xdplb_conntrack_gc_runs_total Runs of the conntrack garbage collector.
# TYPE xdplb_conntrack_gc_runs_total counter
xdplb_conntrack_gc_runs_total 12
# HELP xdplb_datapath_packets_total Packets the XDP program handled, by the reason it let them go and the verdict that reason implies (forward, pass to the kernel, drop).
# TYPE xdplb_datapath_packets_total counter
xdplb_datapath_packets_total{reason="drop_no_backend",verdict="drop"} 3
xdplb_datapath_packets_total{reason="fwd_tx",verdict="forward"} 100
xdplb_datapath_packets_total{reason="pass_no_service",verdict="pass"} 7
# HELP xdplb_local_ports_in_use Source ports of a local (SNAT) address held by tracked connections.
# TYPE xdplb_local_ports_in_use gauge
xdplb_local_ports_in_use{address="10.1.0.1"} 2
xdplb_local_ports_in_use{address="10.1.0.2"} 1
# HELP xdplb_scrape_success Whether reading a source of these metrics succeeded (1) or failed (0) in this scrape.
# TYPE xdplb_scrape_success gauge
xdplb_scrape_success{source="conntrack"} 1
xdplb_scrape_success{source="stats"} 1
# HELP xdplb_service_bytes_total Bytes a service carried, as whole frames as received (Ethernet header included); direction in is client to backend, out is backend to client.
# TYPE xdplb_service_bytes_total counter
xdplb_service_bytes_total{direction="in",port="53",protocol="udp",service="dns",vip="10.0.0.10"} 60
xdplb_service_bytes_total{direction="in",port="80",protocol="tcp",service="web",vip="10.0.0.10"} 1000
xdplb_service_bytes_total{direction="out",port="53",protocol="udp",service="dns",vip="10.0.0.10"} 120
xdplb_service_bytes_total{direction="out",port="80",protocol="tcp",service="web",vip="10.0.0.10"} 6400
# HELP xdplb_service_connections_total New connections (TCP or UDP flows) a service tracked and scheduled to a backend.
# TYPE xdplb_service_connections_total counter
xdplb_service_connections_total{port="53",protocol="udp",service="dns",vip="10.0.0.10"} 1
xdplb_service_connections_total{port="80",protocol="tcp",service="web",vip="10.0.0.10"} 2
# HELP xdplb_service_half_open TCP connections of a service whose client had not completed the handshake, as of the collector's last sweep (new SYNs over syn_protection.half_open.max_per_service get its action).
# TYPE xdplb_service_half_open gauge
xdplb_service_half_open{port="53",protocol="udp",service="dns",vip="10.0.0.10"} 0
xdplb_service_half_open{port="80",protocol="tcp",service="web",vip="10.0.0.10"} 1
# HELP xdplb_service_packets_total Packets a service carried; direction in is client to backend, out is backend to client.
# TYPE xdplb_service_packets_total counter
xdplb_service_packets_total{direction="in",port="53",protocol="udp",service="dns",vip="10.0.0.10"} 1
xdplb_service_packets_total{direction="in",port="80",protocol="tcp",service="web",vip="10.0.0.10"} 10
xdplb_service_packets_total{direction="out",port="53",protocol="udp",service="dns",vip="10.0.0.10"} 1
xdplb_service_packets_total{direction="out",port="80",protocol="tcp",service="web",vip="10.0.0.10"} 8
# HELP xdplb_toa_total The client's address in a TCP option (services with client_address toa), by event: inserted into a client packet, no_room or too_big (a client packet that went without it), forged (a client's own kind-254 option, disabled), mss_lowered (a backend's SYN-ACK announced 8 bytes less).
# TYPE xdplb_toa_total counter
xdplb_toa_total{event="inserted"} 4
xdplb_toa_total{event="no_room"} 1
`

func TestCollectExposition(t *testing.T) {
	setVersion(t, "v9.8.7-test")
	want := strings.ReplaceAll(wantExposition, "GOVERSION", runtime.Version())
	if err := testutil.CollectAndCompare(NewCollector(newFake()), strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestCollectLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(NewCollector(newFake()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// With nothing to report, the collector still reports the scalars and
// nothing that needs labels it does not have.
func TestCollectEmpty(t *testing.T) {
	c := NewCollector(&fakeSource{})
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP xdplb_conntrack_entries Connections in the connection tracking table (forward halves only).
# TYPE xdplb_conntrack_entries gauge
xdplb_conntrack_entries 0
`), "xdplb_conntrack_entries", "xdplb_service_packets_total", "xdplb_backend_up", "xdplb_local_ports_in_use"); err != nil {
		t.Fatal(err)
	}
}

// A source that fails is reported as a gathering error and as
// xdplb_scrape_success 0, and the rest of the metrics are still there.
func TestCollectSourceErrors(t *testing.T) {
	src := newFake()
	src.statsErr = errors.New("stats map gone")
	src.conntrackErr = errors.New("conntrack map gone")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(src))

	mfs, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "stats map gone") || !strings.Contains(err.Error(), "conntrack map gone") {
		t.Fatalf("Gather error = %v, want both source errors", err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"xdplb_build_info", "xdplb_backend_up", "xdplb_conntrack_gc_runs_total", "xdplb_config_reloads_total", "xdplb_scrape_success"} {
		if !got[name] {
			t.Errorf("%s missing after source errors; got %v", name, got)
		}
	}
	for _, name := range []string{"xdplb_service_packets_total", "xdplb_datapath_packets_total", "xdplb_conntrack_entries"} {
		if got[name] {
			t.Errorf("%s reported although its source failed", name)
		}
	}

	for _, mf := range mfs {
		if mf.GetName() != "xdplb_scrape_success" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v != 0 {
				t.Errorf("xdplb_scrape_success%v = %v, want 0", m.GetLabel(), v)
			}
		}
		if n := len(mf.GetMetric()); n != 2 {
			t.Errorf("xdplb_scrape_success has %d series, want 2", n)
		}
	}
}

func TestVerdict(t *testing.T) {
	for reason, want := range map[string]string{
		"fwd_tx": "forward", "fwd_redirect": "forward",
		"pass_not_ipv4": "pass", "pass_fragment": "pass",
		"drop_ct_full": "drop", "drop_no_route": "drop",
		"reason_42": "unknown", "": "unknown",
	} {
		if got := Verdict(reason); got != want {
			t.Errorf("Verdict(%q) = %q, want %q", reason, got, want)
		}
	}
}

// Every reason the datapath counts has a verdict, so a renamed or added
// reason cannot slip into "unknown" unnoticed.
func TestEveryDatapathReasonHasVerdict(t *testing.T) {
	for r := range datapath.ReasonCount {
		name := datapath.Reason(r).String()
		if Verdict(name) == "unknown" {
			t.Errorf("datapath reason %d (%s) has no forward/pass/drop verdict", r, name)
		}
	}
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// describedNames is every metric name the collector describes.
func describedNames(t *testing.T) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() { NewCollector(&fakeSource{}).Describe(ch); close(ch) }()
	names := map[string]bool{}
	for d := range ch {
		m := fqNameRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no fqName in %s", d)
		}
		names[m[1]] = true
	}
	if len(names) == 0 {
		t.Fatal("the collector describes nothing")
	}
	return names
}

func TestDescribeMatchesCollect(t *testing.T) {
	names := describedNames(t)
	full := newFake()
	full.cluster = testCluster()
	full.bgp = BGPStats{On: true, PeersUp: map[string]bool{"192.0.2.1": true},
		Prefixes: []BGPPrefix{{Prefix: "192.0.2.10/32", Kind: "vip"}}, Withdrawals: map[string]uint64{"vip": 1}}
	n := testutil.CollectAndCount(NewCollector(full))
	if n == 0 {
		t.Fatal("nothing collected")
	}
	// A pedantic registry fails gathering for any metric that was not
	// described, or described inconsistently.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(full))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !names[mf.GetName()] {
			t.Errorf("collected %s, which is not described", mf.GetName())
		}
	}
	if len(mfs) != len(names) {
		t.Errorf("collected %d metric families from a full source, described %d", len(mfs), len(names))
	}
}
