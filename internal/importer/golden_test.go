package importer

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/ident"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("the YAML differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// TestGoldenKeepalived imports a realistic keepalived.conf: three virtual
// servers (HTTP_GET and TCP_CHECK; NAT, and a GUE tunnel), a sorry server,
// persistence, lvs_timeouts, and the VRRP and global settings that go
// with them.
func TestGoldenKeepalived(t *testing.T) {
	res, err := Keepalived("testdata/keepalived.conf")
	if err != nil {
		t.Fatal(err)
	}
	y, err := res.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/keepalived.golden.yaml", y)

	if got, want := lineKeys(res.Unmapped), "5 router_id, 6 notification_email, 12 vrrp_instance"; got != want {
		t.Errorf("unmapped: %s, want %s", got, want)
	}
	c := parseImported(t, res)
	want(t, "timeouts", c.Conntrack.Timeouts, config.Timeouts{SynSent: 5 * time.Second, Established: 2 * time.Hour,
		FinWait: time.Minute, Close: 10 * time.Second, UDP: 2 * time.Minute})
	if len(c.Services) != 3 {
		t.Fatalf("%d services, want 3", len(c.Services))
	}
	web, tls, dns := c.Services[0], c.Services[1], c.Services[2]

	want(t, "web", web.Key().String(), "203.0.113.10:80/tcp")
	want(t, "web forwarding", web.Forwarding, config.ForwardingFullNAT)
	want(t, "web scheduler", web.Scheduler, "wrr")
	want(t, "web persistence", web.Persistence, 10*time.Minute)
	want(t, "web fallback", web.Fallback, &config.Backend{Address: addr("10.20.0.99"), Port: 8080, Weight: 1})
	want(t, "web backends", web.Backends, []config.Backend{
		{Address: addr("10.20.0.11"), Port: 8080, Weight: 3},
		{Address: addr("10.20.0.12"), Port: 8080, Weight: 1},
	})
	want(t, "web check", web.HealthCheck, &health.Spec{Kind: "http", Interval: 5 * time.Second, Timeout: 2 * time.Second,
		Rise: 1, Fall: 3, Initial: "up", Path: "/healthz?deep=1",
		ExpectStatus: []health.StatusRange{{Min: 200, Max: 200}, {Min: 204, Max: 204}}})

	want(t, "tls", tls.Key(), ident.Service{VIP: addr("203.0.113.10"), Port: 443, Proto: ident.TCP})
	want(t, "tls scheduler", tls.Scheduler, "rr")
	want(t, "tls persistence", tls.Persistence, time.Duration(0))
	want(t, "tls backends", tls.Backends, []config.Backend{
		{Address: addr("10.20.0.21"), Port: 443, Weight: 1},
		{Address: addr("10.20.0.22"), Port: 443, Weight: 1},
	})
	want(t, "tls check", tls.HealthCheck, &health.Spec{Kind: "tcp", Interval: 10 * time.Second, Timeout: 3 * time.Second,
		Rise: 1, Fall: 2, Initial: "up"})

	want(t, "dns", dns.Key().String(), "203.0.113.53:53/udp")
	want(t, "dns forwarding", dns.Forwarding, config.ForwardingDSRGUE)
	want(t, "gue_port", c.DSR.GUEPort, uint16(6080))
	want(t, "dns backends", dns.Backends, []config.Backend{
		{Address: addr("10.20.0.31"), Port: 53, Weight: 1},
		{Address: addr("10.20.0.32"), Port: 53, Weight: 1},
	})
}

// TestGoldenIpvsadm imports `ipvsadm -Sn` output: TCP and UDP services,
// persistence, weights, a backend on another port, masquerading and direct
// routing.
func TestGoldenIpvsadm(t *testing.T) {
	f, err := os.Open("testdata/ipvsadm.rules")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Ipvsadm("testdata/ipvsadm.rules", f)
	if err != nil {
		t.Fatal(err)
	}
	y, err := res.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/ipvsadm.golden.yaml", y)
	if len(res.Unmapped) != 0 {
		t.Errorf("unmapped: %s", lineKeys(res.Unmapped))
	}
	if got, want := lineKeys(res.Notes), "2 -m, 0 ipvsadm"; got != want {
		t.Errorf("notes: %s, want %s", got, want)
	}
	c := parseImported(t, res)
	if len(c.Services) != 4 {
		t.Fatalf("%d services, want 4", len(c.Services))
	}
	web, tls, dns, dr := c.Services[0], c.Services[1], c.Services[2], c.Services[3]
	want(t, "web", web.Key().String(), "203.0.113.10:80/tcp")
	want(t, "web scheduler", web.Scheduler, "wrr")
	want(t, "web persistence", web.Persistence, 300*time.Second)
	want(t, "web backends", web.Backends, []config.Backend{
		{Address: addr("10.20.0.11"), Port: 8080, Weight: 3},
		{Address: addr("10.20.0.12"), Port: 8080, Weight: 1},
	})
	want(t, "tls", tls.Key().String(), "203.0.113.10:443/tcp")
	want(t, "tls persistence", tls.Persistence, time.Duration(0))
	want(t, "dns", dns.Key().String(), "203.0.113.53:53/udp")
	want(t, "dns scheduler", dns.Scheduler, "sh")
	want(t, "dns backends", dns.Backends, []config.Backend{
		{Address: addr("10.20.0.31"), Port: 53, Weight: 1},
		{Address: addr("10.20.0.32"), Port: 5353, Weight: 2},
	})
	want(t, "dns forwarding", dns.Forwarding, config.ForwardingFullNAT)
	want(t, "direct", dr.Key().String(), "203.0.113.11:80/tcp")
	want(t, "direct forwarding", dr.Forwarding, config.ForwardingDSRL2)
	want(t, "direct scheduler", dr.Scheduler, "maglev")
}
