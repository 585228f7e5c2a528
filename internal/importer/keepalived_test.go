package importer

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/ident"
)

// one returns the only service of c.
func one(t *testing.T, c *config.Config) config.Service {
	t.Helper()
	if len(c.Services) != 1 {
		t.Fatalf("%d services, want 1: %+v", len(c.Services), c.Services)
	}
	return c.Services[0]
}

func noServices(t *testing.T, c *config.Config) {
	t.Helper()
	if len(c.Services) != 0 {
		t.Errorf("%d services, want none: %+v", len(c.Services), c.Services)
	}
}

func want[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

// vs wraps real server lines in a virtual server on 10.0.0.1:80; the
// body starts on line 2.
func vs(body string) string { return "virtual_server 10.0.0.1 80 {\n" + body + "\n}\n" }

func TestKeepalivedVirtualServer(t *testing.T) {
	runImportCases(t, importText, []importCase{
		{name: "minimal", in: vs("real_server 10.0.1.1 80 {\n}"), check: func(t *testing.T, c *config.Config) {
			s := one(t, c)
			want(t, "key", s.Key().String(), "10.0.0.1:80/tcp")
			want(t, "scheduler", s.Scheduler, "rr")
			want(t, "persistence", s.Persistence, time.Duration(0))
			want(t, "backends", s.Backends, []config.Backend{{Address: addr("10.0.1.1"), Port: 80, Weight: 1}})
			want(t, "health check", s.HealthCheck, (*health.Spec)(nil))
			want(t, "interfaces", c.Interfaces, []string{"eth0"})
		}},
		{name: "real server without port, without block", in: vs("real_server 10.0.1.1\nreal_server 10.0.1.2 8080"),
			check: func(t *testing.T, c *config.Config) {
				want(t, "backends", one(t, c).Backends, []config.Backend{
					{Address: addr("10.0.1.1"), Port: 80, Weight: 1}, {Address: addr("10.0.1.2"), Port: 8080, Weight: 1}})
			}},
		{name: "protocol UDP", in: vs("protocol UDP"), check: func(t *testing.T, c *config.Config) {
			want(t, "protocol", one(t, c).Protocol, ident.UDP)
		}},
		{name: "protocol tcp, lower case", in: vs("protocol tcp"), check: func(t *testing.T, c *config.Config) {
			want(t, "protocol", one(t, c).Protocol, ident.TCP)
		}},
		{name: "protocol SCTP", in: vs("protocol SCTP\nreal_server 10.0.1.1 80"), unmapped: "2 protocol", check: noServices},
		{name: "persistence_timeout", in: vs("persistence_timeout 600"), check: func(t *testing.T, c *config.Config) {
			want(t, "persistence", one(t, c).Persistence, 10*time.Minute)
		}},
		{name: "persistence_timeout without value is 6 minutes", in: vs("persistence_timeout"), check: func(t *testing.T, c *config.Config) {
			want(t, "persistence", one(t, c).Persistence, 6*time.Minute)
		}},
		{name: "persistence_timeout 0", in: vs("persistence_timeout 0"), check: func(t *testing.T, c *config.Config) {
			want(t, "persistence", one(t, c).Persistence, time.Duration(0))
		}},
		{name: "persistence_timeout beyond a day", in: vs("persistence_timeout 100000"), unmapped: "2 persistence_timeout",
			check: func(t *testing.T, c *config.Config) { want(t, "persistence", one(t, c).Persistence, 24*time.Hour) }},
		{name: "sorry_server", in: vs("sorry_server 10.0.9.9 8080\nreal_server 10.0.1.1 80"), check: func(t *testing.T, c *config.Config) {
			want(t, "fallback", one(t, c).Fallback, &config.Backend{Address: addr("10.0.9.9"), Port: 8080, Weight: 1})
		}},
		{name: "sorry_server without port", in: vs("sorry_server 10.0.9.9"), check: func(t *testing.T, c *config.Config) {
			want(t, "fallback", one(t, c).Fallback, &config.Backend{Address: addr("10.0.9.9"), Port: 80, Weight: 1})
		}},
		{name: "sorry_server IPv6", in: vs("sorry_server 2001:db8::9 80"), unmapped: "2 sorry_server",
			check: func(t *testing.T, c *config.Config) { want(t, "fallback", one(t, c).Fallback, (*config.Backend)(nil)) }},
		{name: "weights", in: vs("real_server 10.0.1.1 80 {\n weight 0\n}\nreal_server 10.0.1.2 80 {\n weight 7\n}\n" +
			"real_server 10.0.1.3 80 {\n weight 70000\n}\nreal_server 10.0.1.4 80 {\n weight -1\n}"),
			unmapped: "9 weight, 12 weight",
			check: func(t *testing.T, c *config.Config) {
				var ws []uint32
				for _, b := range one(t, c).Backends {
					ws = append(ws, b.Weight)
				}
				want(t, "weights", ws, []uint32{0, 7, 65535, 1})
			}},
		{name: "inhibit_on_failure on virtual and real servers", in: vs("inhibit_on_failure\nreal_server 10.0.1.1 80 {\n inhibit_on_failure\n}"),
			notes: "2 inhibit_on_failure"},
		{name: "snmp_name names the service", in: vs("snmp_name web"), check: func(t *testing.T, c *config.Config) {
			want(t, "name", one(t, c).Name, "web")
		}},
		{name: "snmp_name that is no xdplb name", in: vs("snmp_name \"web site\""), unmapped: "2 snmp_name",
			check: func(t *testing.T, c *config.Config) { want(t, "name", one(t, c).Name, "10.0.0.1:80/tcp") }},
		{name: "fwmark", in: "virtual_server fwmark 1 {\n real_server 10.0.1.1 80\n}", unmapped: "1 virtual_server", check: noServices},
		{name: "IPv6", in: "virtual_server 2001:db8::1 80 {\n}", unmapped: "1 virtual_server", check: noServices},
		{name: "no port", in: "virtual_server 10.0.0.1 {\n persistence_timeout\n}", unmapped: "1 virtual_server", check: noServices},
		{name: "port out of range", in: "virtual_server 10.0.0.1 70000 {\n}", unmapped: "1 virtual_server", check: noServices},
		{name: "not an address", in: "virtual_server www.example.com 80 {\n}", unmapped: "1 virtual_server", check: noServices},
		{name: "defined twice", in: vs("") + vs("protocol TCP"), unmapped: "4 virtual_server",
			check: func(t *testing.T, c *config.Config) { one(t, c) }},
		{name: "same VIP and port, TCP and UDP", in: vs("") + vs("protocol UDP"),
			check: func(t *testing.T, c *config.Config) { want(t, "services", len(c.Services), 2) }},
		{name: "real server IPv6", in: vs("real_server 2001:db8::2 80 {\n weight 2\n}\nreal_server 10.0.1.1 80"),
			unmapped: "2 real_server", check: func(t *testing.T, c *config.Config) { want(t, "backends", len(one(t, c).Backends), 1) }},
		{name: "real server without address", in: vs("real_server {\n}"), unmapped: "2 real_server",
			check: func(t *testing.T, c *config.Config) { want(t, "backends", len(one(t, c).Backends), 0) }},
		{name: "what xdplb refuses is reported where it came from", in: "\n" + vs("real_server 10.0.1.1 80\nsorry_server 10.0.1.1 80"),
			unmapped: "2 services[0].fallback", refused: true},
		{name: "a VIP xdplb refuses", in: "virtual_server 0.0.0.0 80 {\n}", unmapped: "1 services[0].vip", refused: true},
	})
}

func TestKeepalivedSchedulers(t *testing.T) {
	var cases []importCase
	for _, kw := range []string{"lb_algo", "lvs_sched"} {
		for _, tc := range []struct{ in, out, unmapped, notes string }{
			{"rr", "rr", "", ""},
			{"wrr", "wrr", "", ""},
			{"sh", "sh", "", ""},
			{"mh", "maglev", "", "2 " + kw},
			{"mh\nmh-port", "maglev", "", ""},
			{"WRR", "wrr", "", ""},
			{"wlc", "wlc", "", "2 " + kw},
			{"lc", "lc", "", "2 " + kw},
			{"sed", "rr", "2 " + kw, ""},
			{"nq", "rr", "2 " + kw, ""},
			{"lblc", "rr", "2 " + kw, ""},
			{"lblcr", "rr", "2 " + kw, ""},
			{"dh", "rr", "2 " + kw, ""},
			{"fo", "rr", "2 " + kw, ""},
			{"ovf", "rr", "2 " + kw, ""},
			{"twos", "rr", "2 " + kw, ""},
			{"fastest", "rr", "2 " + kw, ""},
			{"sh\nsh-port", "sh", "3 sh-port", ""},
			{"sh\nsh-fallback", "sh", "", "3 sh-fallback"},
			{"mh\nmh-port\nmh-fallback", "maglev", "", "4 mh-fallback"},
			{"rr\nflag-1", "rr", "3 flag-1", ""},
			{"rr\nops", "rr", "3 ops", ""},
		} {
			out := tc.out
			cases = append(cases, importCase{name: kw + " " + strings.ReplaceAll(tc.in, "\n", " "), in: vs(kw + " " + tc.in),
				unmapped: tc.unmapped, notes: tc.notes,
				check: func(t *testing.T, c *config.Config) { want(t, "scheduler", one(t, c).Scheduler, out) }})
		}
	}
	runImportCases(t, importText, cases)
}

// forwarding checks the only service's forwarding and, for dsr-gue, the
// GUE port.
func forwarding(fwd string, guePort uint16) func(t *testing.T, c *config.Config) {
	return func(t *testing.T, c *config.Config) {
		t.Helper()
		want(t, "forwarding", one(t, c).Forwarding, fwd)
		if fwd == config.ForwardingDSRGUE {
			want(t, "gue_port", c.DSR.GUEPort, guePort)
		}
	}
}

func TestKeepalivedForwarding(t *testing.T) {
	var cases []importCase
	for _, kw := range []string{"lb_kind", "lvs_method"} {
		for _, tc := range []struct {
			in, unmapped, notes, fwd string
			guePort                  uint16
		}{
			{"NAT", "", "2 " + kw, config.ForwardingFullNAT, 0},
			{"nat", "", "2 " + kw, config.ForwardingFullNAT, 0},
			{"FNAT", "", "", config.ForwardingFullNAT, 0},
			{"DR", "", "", config.ForwardingDSRL2, 0},
			{"DR now", "2 " + kw, "", config.ForwardingDSRL2, 0},
			{"TUN", "", "", config.ForwardingDSRIPIP, 0},
			{"TUN type ipip", "", "", config.ForwardingDSRIPIP, 0},
			{"TUN type ipip port 6080", "2 " + kw, "", config.ForwardingDSRIPIP, 0},
			{"TUN type gue port 6080", "", "", config.ForwardingDSRGUE, 6080},
			{"TUN type GUE port 6081 nocsum", "", "", config.ForwardingDSRGUE, 6081},
			{"TUN type gue port 6081 remcsum", "", "2 " + kw, config.ForwardingDSRGUE, 6081},
			{"TUN type gue", "2 " + kw, "", config.ForwardingDSRGUE, 6080},
			{"TUN type gue port 0", "2 " + kw + ", 2 " + kw, "", config.ForwardingDSRGUE, 6080},
			{"TUN type gre", "2 " + kw, "", config.ForwardingFullNAT, 0},
			{"TUN type vxlan", "2 " + kw, "", config.ForwardingFullNAT, 0},
			{"TUN type", "2 " + kw, "", config.ForwardingDSRIPIP, 0},
			{"TUN frob", "2 " + kw, "", config.ForwardingDSRIPIP, 0},
			{"MASQ", "2 " + kw, "", config.ForwardingFullNAT, 0},
		} {
			cases = append(cases, importCase{name: kw + " " + tc.in, in: vs(kw + " " + tc.in + "\nreal_server 10.0.1.1 80"),
				unmapped: tc.unmapped, notes: tc.notes, check: forwarding(tc.fwd, tc.guePort)})
		}
		cases = append(cases, importCase{name: kw + " on a real server", in: vs("real_server 10.0.1.1 80 {\n " + kw + " DR\n}"),
			check: forwarding(config.ForwardingDSRL2, 0)})
	}
	cases = append(cases,
		importCase{name: "every real server overrides the virtual server",
			in:    vs("lb_kind NAT\nreal_server 10.0.1.1 80 {\n lvs_method DR\n}\nreal_server 10.0.1.2 80 {\n lvs_method DR\n}"),
			notes: "2 lb_kind", check: forwarding(config.ForwardingDSRL2, 0)},
		importCase{name: "real servers forwarded in different ways",
			in:       vs("lb_kind DR\nreal_server 10.0.1.1 80 {\n lvs_method NAT\n}\nreal_server 10.0.1.2 80"),
			unmapped: "4 lvs_method", notes: "4 lvs_method", check: func(t *testing.T, c *config.Config) {
				forwarding(config.ForwardingDSRL2, 0)(t, c)
				want(t, "backends", len(one(t, c).Backends), 2)
			}},
		importCase{name: "a real server on another port with DR",
			in:    vs("lb_kind DR\nreal_server 10.0.1.1 8080 {\n TCP_CHECK {\n connect_timeout 2\n }\n}"),
			notes: "3 real_server", check: func(t *testing.T, c *config.Config) {
				forwarding(config.ForwardingDSRL2, 0)(t, c)
				want(t, "backends", one(t, c).Backends[0].Port, uint16(80))
			}},
		importCase{name: "a real server on another port with NAT keeps it",
			in:    vs("lb_kind NAT\nreal_server 10.0.1.1 8080"),
			notes: "2 lb_kind", check: func(t *testing.T, c *config.Config) {
				want(t, "backends", one(t, c).Backends[0].Port, uint16(8080))
			}},
		importCase{name: "a sorry server forwarded as the backends",
			in:    vs("lb_kind TUN\nsorry_server 10.0.9.9 8080\nreal_server 10.0.1.1 80"),
			notes: "3 sorry_server", check: func(t *testing.T, c *config.Config) {
				forwarding(config.ForwardingDSRIPIP, 0)(t, c)
				want(t, "fallback", one(t, c).Fallback, &config.Backend{Address: addr("10.0.9.9"), Port: 80, Weight: 1})
			}},
		importCase{name: "a sorry server forwarded in another way",
			in:       vs("lb_kind DR\nsorry_server 10.0.9.9 80\nsorry_server_lvs_method NAT\nreal_server 10.0.1.1 80"),
			unmapped: "4 sorry_server_lvs_method", notes: "4 sorry_server_lvs_method", check: forwarding(config.ForwardingDSRL2, 0)},
		importCase{name: "sorry_server_lvs_method", in: vs("sorry_server 10.0.9.9 80\nsorry_server_lvs_method TUN"),
			unmapped: "3 sorry_server_lvs_method"},
		importCase{name: "a sorry server left with the virtual server's method when the real servers override it",
			in:       vs("sorry_server 10.0.9.9 80\nreal_server 10.0.1.1 80 {\n lvs_method DR\n}"),
			unmapped: "2 sorry_server", check: forwarding(config.ForwardingDSRL2, 0)},
		importCase{name: "GUE services on two ports",
			in: vs("lvs_method TUN type gue port 6080\nreal_server 10.0.1.1 80") +
				"virtual_server 10.0.0.1 81 {\nlvs_method TUN type gue port 6081\nreal_server 10.0.1.1 81\n}\n",
			unmapped: "6 lvs_method", check: func(t *testing.T, c *config.Config) {
				want(t, "gue_port", c.DSR.GUEPort, uint16(6080))
				want(t, "forwarding", c.Services[1].Forwarding, config.ForwardingDSRGUE)
			}},
	)
	runImportCases(t, importText, cases)
}

// TestImportEncapSource: an import with a tunnelled service says, in its
// header, that dsr.encap_source must be filled in; xdplb refuses the file
// until it is. One without says nothing of it.
func TestImportEncapSource(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{vs("lb_kind TUN\nreal_server 10.0.1.1 80"), true},
		{vs("lb_kind TUN type gue port 6081\nreal_server 10.0.1.1 80"), true},
		{vs("lb_kind DR\nreal_server 10.0.1.1 80"), false},
		{vs("lb_kind NAT\nreal_server 10.0.1.1 80"), false},
	} {
		res := importText(t, tc.in)
		if len(res.Unmapped) != 0 {
			t.Errorf("%q: unmapped %s", tc.in, lineKeys(res.Unmapped))
		}
		y, err := res.YAML()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(y), "#   dsr.encap_source"); got != tc.want {
			t.Errorf("%q: header asks for dsr.encap_source: %v, want %v\n%s", tc.in, got, tc.want, y)
		}
		filled := strings.Replace(string(y), "addresses: []", "addresses: ["+placeholderLocal+"]", 1)
		_, err = config.Parse([]byte(filled))
		if tc.want && (err == nil || !strings.Contains(err.Error(), "dsr.encap_source: missing")) {
			t.Errorf("%q: without dsr.encap_source: %v, want it missing", tc.in, err)
		}
		if !tc.want && err != nil {
			t.Errorf("%q: %v", tc.in, err)
		}
		parseImported(t, res)
	}
}

// rsCheck puts a checker block into the only real server (10.0.1.1:80)
// of a virtual server; the checker's first line is line 3.
func rsCheck(settings, check string) string {
	return vs(settings + "real_server 10.0.1.1 80 {\n" + check + "\n}")
}

// spec returns the check that applies to the only backend of the only
// service.
func spec(t *testing.T, c *config.Config) *health.Spec {
	t.Helper()
	s := one(t, c)
	if len(s.Backends) != 1 {
		t.Fatalf("%d backends, want 1", len(s.Backends))
	}
	h := s.Check(s.Backends[0])
	if h == nil {
		t.Fatal("no health check")
	}
	return h
}

func TestKeepalivedChecks(t *testing.T) {
	runImportCases(t, importText, []importCase{
		{name: "TCP_CHECK with keepalived's defaults", in: rsCheck("", "TCP_CHECK {\n}"), check: func(t *testing.T, c *config.Config) {
			h := spec(t, c)
			want(t, "kind", h.Kind, "tcp")
			want(t, "interval", h.Interval, 60*time.Second)
			want(t, "timeout", h.Timeout, 5*time.Second)
			want(t, "rise", h.Rise, 1)
			want(t, "fall", h.Fall, 2)
			want(t, "initial", h.Initial, "up")
			want(t, "on the service", one(t, c).HealthCheck != nil, true)
		}},
		{name: "settings from virtual server, real server and checker",
			in: rsCheck("delay_loop 3\nconnect_timeout 2.5\nretry 4\n", "delay_loop 7\nTCP_CHECK {\n connect_timeout 1\n}"),
			check: func(t *testing.T, c *config.Config) {
				h := spec(t, c)
				want(t, "interval", h.Interval, 7*time.Second)
				want(t, "timeout", h.Timeout, time.Second)
				want(t, "fall", h.Fall, 5)
			}},
		{name: "connect_timeout with a fraction", in: rsCheck("", "TCP_CHECK {\n connect_timeout 0.25\n}"),
			check: func(t *testing.T, c *config.Config) { want(t, "timeout", spec(t, c).Timeout, 250*time.Millisecond) }},
		{name: "nb_get_retry is retry", in: rsCheck("", "HTTP_GET {\n nb_get_retry 2\n}"), notes: "3 HTTP_GET",
			check: func(t *testing.T, c *config.Config) { want(t, "fall", spec(t, c).Fall, 3) }},
		{name: "retry 0", in: rsCheck("", "TCP_CHECK {\n retry 0\n}"),
			check: func(t *testing.T, c *config.Config) { want(t, "fall", spec(t, c).Fall, 1) }},
		{name: "retry beyond fall 100", in: rsCheck("", "TCP_CHECK {\n retry 500\n}"), unmapped: "3 TCP_CHECK",
			check: func(t *testing.T, c *config.Config) { want(t, "fall", spec(t, c).Fall, 100) }},
		{name: "bad values", in: rsCheck("", "TCP_CHECK {\n retry many\n delay_loop 0.001\n connect_timeout -1\n alpha maybe\n}"),
			unmapped: "4 retry, 5 delay_loop, 6 connect_timeout, 7 alpha"},
		{name: "alpha", in: rsCheck("alpha\n", "TCP_CHECK {\n}"),
			check: func(t *testing.T, c *config.Config) { want(t, "initial", spec(t, c).Initial, "down") }},
		{name: "alpha off on the real server", in: rsCheck("alpha\n", "alpha off\nTCP_CHECK {\n}"),
			check: func(t *testing.T, c *config.Config) { want(t, "initial", spec(t, c).Initial, "up") }},
		{name: "delay_before_retry and warmup", in: rsCheck("", "TCP_CHECK {\n delay_before_retry 3\n warmup 5\n}"),
			notes: "4 delay_before_retry, 5 warmup"},
		{name: "connect_port and connect_ip of the backend", in: rsCheck("", "TCP_CHECK {\n connect_port 80\n connect_ip 10.0.1.1\n}")},
		{name: "connect_port and connect_ip elsewhere", in: rsCheck("", "TCP_CHECK {\n connect_port 8081\n connect_ip 10.0.1.9\n}"),
			unmapped: "4 connect_port, 5 connect_ip",
			check:    func(t *testing.T, c *config.Config) { want(t, "kind", spec(t, c).Kind, "tcp") }},
		{name: "connect_port of a backend without port", in: vs("real_server 10.0.1.1 {\n TCP_CHECK {\n connect_port 80\n }\n}")},
		{name: "source options", in: rsCheck("", "TCP_CHECK {\n bindto 10.0.0.5\n bind_port 999\n bind_if eth1\n fwmark 3\n}"),
			unmapped: "4 bindto, 5 bind_port, 6 bind_if, 7 fwmark"},
		{name: "HTTP_GET", in: rsCheck("", "HTTP_GET {\n url {\n path /healthz\n status_code 200\n }\n}"),
			check: func(t *testing.T, c *config.Config) {
				h := spec(t, c)
				want(t, "kind", h.Kind, "http")
				want(t, "path", h.Path, "/healthz")
				want(t, "expect_status", h.ExpectStatus, []health.StatusRange{{Min: 200, Max: 200}})
			}},
		{name: "status codes and ranges", in: rsCheck("", "HTTP_GET {\n url {\n path /\n status_code 200-299 301 503\n }\n}"),
			check: func(t *testing.T, c *config.Config) {
				want(t, "expect_status", spec(t, c).ExpectStatus, []health.StatusRange{{Min: 200, Max: 299}, {Min: 301, Max: 301}, {Min: 503, Max: 503}})
			}},
		{name: "keepalived's default status is 2xx", in: rsCheck("", "HTTP_GET {\n url {\n path /\n }\n}"),
			check: func(t *testing.T, c *config.Config) {
				want(t, "expect_status", spec(t, c).ExpectStatus, []health.StatusRange{{Min: 200, Max: 299}})
			}},
		{name: "bad status code", in: rsCheck("", "HTTP_GET {\n url {\n path /\n status_code 200 abc\n }\n}"),
			unmapped: "6 status_code", check: func(t *testing.T, c *config.Config) {
				want(t, "expect_status", spec(t, c).ExpectStatus, []health.StatusRange{{Min: 200, Max: 200}})
			}},
		{name: "no url", in: rsCheck("", "HTTP_GET {\n}"), notes: "3 HTTP_GET",
			check: func(t *testing.T, c *config.Config) { want(t, "path", spec(t, c).Path, "/") }},
		{name: "digest", in: rsCheck("", "HTTP_GET {\n url {\n path /index.html\n digest 0123456789abcdef0123456789abcdef\n }\n}"),
			unmapped: "6 digest", check: func(t *testing.T, c *config.Config) { want(t, "path", spec(t, c).Path, "/index.html") }},
		{name: "several urls", in: rsCheck("", "HTTP_GET {\n url {\n path /a\n }\n url {\n path /b\n }\n}"),
			unmapped: "7 url", check: func(t *testing.T, c *config.Config) { want(t, "path", spec(t, c).Path, "/a") }},
		{name: "path without slash", in: rsCheck("", "HTTP_GET {\n url {\n path index.html\n }\n}"), unmapped: "5 path"},
		{name: "regex and friends", in: rsCheck("", "HTTP_GET {\n url {\n path /\n regex \"ok|fine\"\n regex_no_match\n }\n}"),
			unmapped: "6 regex, 7 regex_no_match"},
		{name: "virtualhost from the virtual server", in: rsCheck("virtualhost www.example.com\n", "HTTP_GET {\n url {\n path /\n }\n}"),
			check: func(t *testing.T, c *config.Config) { want(t, "host", spec(t, c).Host, "www.example.com") }},
		{name: "virtualhost of the url wins", in: rsCheck("virtualhost www.example.com\n",
			"virtualhost rs.example.com\nHTTP_GET {\n url {\n path /\n virtualhost url.example.com\n }\n}"),
			check: func(t *testing.T, c *config.Config) { want(t, "host", spec(t, c).Host, "url.example.com") }},
		{name: "http_protocol and fast_recovery", in: rsCheck("", "HTTP_GET {\n http_protocol 1.0C\n fast_recovery\n}"),
			notes: "4 http_protocol, 3 HTTP_GET"},
		{name: "SSL_GET", in: rsCheck("", "SSL_GET {\n url {\n path /ready\n }\n enable_sni\n sni_name api.example.com\n}"),
			check: func(t *testing.T, c *config.Config) {
				h := spec(t, c)
				want(t, "kind", h.Kind, "https")
				want(t, "path", h.Path, "/ready")
				want(t, "sni", h.SNI, "api.example.com")
			}},
		{name: "sni only for SSL_GET", in: rsCheck("", "HTTP_GET {\n sni_name x\n}"), unmapped: "4 sni_name", notes: "3 HTTP_GET"},
		{name: "MISC_CHECK", in: rsCheck("", "MISC_CHECK {\n misc_path \"/bin/true --quiet 'two words'\"\n misc_timeout 4\n}"),
			notes: "3 MISC_CHECK", check: func(t *testing.T, c *config.Config) {
				h := spec(t, c)
				want(t, "kind", h.Kind, "exec")
				want(t, "command", h.Command, []string{"/bin/true", "--quiet", "two words"})
				want(t, "timeout", h.Timeout, 4*time.Second)
				want(t, "fall", h.Fall, 1)
			}},
		{name: "MISC_CHECK times out at the interval", in: rsCheck("delay_loop 6\n", "MISC_CHECK {\n misc_path /bin/true\n}"),
			notes: "4 MISC_CHECK", check: func(t *testing.T, c *config.Config) { want(t, "timeout", spec(t, c).Timeout, 6*time.Second) }},
		{name: "MISC_CHECK relative path", in: rsCheck("", "MISC_CHECK {\n misc_path \"check.sh web1\"\n}"), unmapped: "4 misc_path",
			check: func(t *testing.T, c *config.Config) { want(t, "check", one(t, c).HealthCheck, (*health.Spec)(nil)) }},
		{name: "MISC_CHECK needing a shell", in: rsCheck("", "MISC_CHECK {\n misc_path \"/usr/bin/curl -s x | grep ok\"\n}"),
			unmapped: "4 misc_path"},
		{name: "MISC_CHECK without misc_path", in: rsCheck("", "MISC_CHECK {\n}"), unmapped: "3 MISC_CHECK"},
		{name: "misc_dynamic and user", in: rsCheck("", "MISC_CHECK {\n misc_path /bin/true\n misc_dynamic\n user nobody\n}"),
			unmapped: "5 misc_dynamic, 6 user", notes: "3 MISC_CHECK"},
		{name: "UDP_CHECK", in: rsCheck("", "UDP_CHECK {\n payload 7069 6e67\n require_reply 706f6e67\n}"),
			notes: "5 require_reply", check: func(t *testing.T, c *config.Config) {
				h := spec(t, c)
				want(t, "kind", h.Kind, "udp")
				want(t, "payload", h.Payload, "ping")
				want(t, "expect", h.Expect, "pong")
			}},
		{name: "UDP_CHECK odd hex groups", in: rsCheck("", "UDP_CHECK {\n payload 4 1 424\n require_reply\n}"),
			check: func(t *testing.T, c *config.Config) { want(t, "payload", spec(t, c).Payload, "\x04\x01\x42\x04") }},
		{name: "UDP_CHECK without require_reply", in: rsCheck("", "UDP_CHECK {\n}"), unmapped: "3 UDP_CHECK"},
		{name: "UDP_CHECK binary or wildcard", in: rsCheck("", "UDP_CHECK {\n payload ff00\n require_reply 6fXX\n min_reply_length 2\n}"),
			unmapped: "4 payload, 5 require_reply, 6 min_reply_length"},
		{name: "checkers without an equivalent", in: rsCheck("", "SMTP_CHECK {\n}\nDNS_CHECK {\n}\nPING_CHECK {\n}\nBFD_CHECK {\n}\nFILE_CHECK {\n}"),
			unmapped: "3 SMTP_CHECK, 5 DNS_CHECK, 7 PING_CHECK, 9 BFD_CHECK, 11 FILE_CHECK",
			check:    func(t *testing.T, c *config.Config) { want(t, "check", one(t, c).HealthCheck, (*health.Spec)(nil)) }},
		{name: "one check per backend", in: rsCheck("", "SMTP_CHECK {\n}\nTCP_CHECK {\n}\nHTTP_GET {\n}"),
			unmapped: "3 SMTP_CHECK, 7 HTTP_GET", check: func(t *testing.T, c *config.Config) { want(t, "kind", spec(t, c).Kind, "tcp") }},
		{name: "different checks stay on their backends",
			in: vs("real_server 10.0.1.1 80 {\n TCP_CHECK {\n }\n}\nreal_server 10.0.1.2 80 {\n}\nreal_server 10.0.1.3 80 {\n TCP_CHECK {\n connect_timeout 1\n }\n}"),
			check: func(t *testing.T, c *config.Config) {
				s := one(t, c)
				want(t, "service check", s.HealthCheck, (*health.Spec)(nil))
				want(t, "checked", []bool{s.Backends[0].HealthCheck != nil, s.Backends[1].HealthCheck != nil, s.Backends[2].HealthCheck != nil},
					[]bool{true, false, true})
			}},
	})
}

func TestKeepalivedOtherKeywords(t *testing.T) {
	runImportCases(t, importText, []importCase{
		{name: "lvs_timeouts in global_defs", in: "global_defs {\n lvs_timeouts tcp 7200 tcpfin 60 udp 120\n}",
			check: func(t *testing.T, c *config.Config) {
				want(t, "timeouts", c.Conntrack.Timeouts, config.Timeouts{SynSent: 5 * time.Second, Established: 2 * time.Hour,
					FinWait: time.Minute, Close: 10 * time.Second, UDP: 2 * time.Minute})
			}},
		{name: "lvs_timeouts at the top, some", in: "lvs_timeouts udp 30",
			check: func(t *testing.T, c *config.Config) {
				want(t, "udp", c.Conntrack.Timeouts.UDP, 30*time.Second)
				want(t, "established", c.Conntrack.Timeouts.Established, 900*time.Second)
			}},
		{name: "lvs_timeouts 0", in: "lvs_timeouts tcp 0", notes: "1 lvs_timeouts"},
		{name: "lvs_timeouts mistakes", in: "lvs_timeouts tcp\nlvs_timeouts sctp 5\nlvs_timeouts tcp x", unmapped: "1 lvs_timeouts, 2 lvs_timeouts, 3 lvs_timeouts"},
		{name: "global_defs", in: "global_defs {\n router_id lb1\n notification_email {\n a@example.net\n }\n smtp_server 127.0.0.1\n" +
			" lvs_sync_daemon eth1 VI_1\n vrrp_strict\n enable_script_security\n lvs_flush\n}",
			unmapped: "2 router_id, 3 notification_email, 6 smtp_server, 7 lvs_sync_daemon, 8 vrrp_strict, 9 enable_script_security",
			notes:    "10 lvs_flush"},
		{name: "VRRP blocks are reported once each", in: "vrrp_script chk {\n script /bin/true\n}\nvrrp_instance VI_1 {\n state MASTER\n" +
			" virtual_ipaddress {\n 10.0.0.1\n }\n}\nvrrp_sync_group G {\n group {\n VI_1\n }\n}",
			unmapped: "1 vrrp_script, 4 vrrp_instance, 10 vrrp_sync_group"},
		{name: "other top-level blocks", in: "static_ipaddress {\n}\nSSL {\n}\nbfd_instance b {\n}\nnet_namespace blue",
			unmapped: "1 static_ipaddress, 3 SSL, 5 bfd_instance, 7 net_namespace"},
		{name: "conditional lines and parameters", in: "$VIP=10.0.0.1\n@main global_defs {\n}\n" + vs("real_server 10.0.1.1 80 {\n @backup weight 2\n}"),
			unmapped: "1 $VIP=10.0.0.1, 2 @main, 6 @backup"},
		{name: "virtual server keywords without an equivalent", in: vs("persistence_timeout 60\npersistence_granularity 255.255.255.0\nquorum 2\nhysteresis 1\n" +
			"quorum_up /bin/true\nquorum_down /bin/true\nha_suspend\nomega\nsorry_server_inhibit\nsmtp_alert yes\npersistence_engine sip\nip_family inet6\nip_family inet"),
			unmapped: "4 quorum, 5 hysteresis, 6 quorum_up, 7 quorum_down, 8 ha_suspend, 9 omega, " +
				"10 sorry_server_inhibit, 11 smtp_alert, 12 persistence_engine, 13 ip_family"},
		{name: "real server keywords without an equivalent", in: vs("real_server 10.0.1.1 80 {\n notify_up /bin/true\n notify_down \"/bin/x y\"\n" +
			" uthreshold 100\n lthreshold 10\n smtp_alert no\n}"),
			unmapped: "3 notify_up, 4 notify_down, 5 uthreshold, 6 lthreshold, 7 smtp_alert"},
		{name: "unknown keywords everywhere", in: "frobnicate 1\n" + vs("frob 2\nreal_server 10.0.1.1 80 {\n frob 3\n TCP_CHECK {\n frob 4\n }\n}"),
			unmapped: "1 frobnicate, 3 frob, 5 frob, 7 frob"},
		{name: "wrong number of values", in: vs("lb_algo\nlb_algo rr wrr\nprotocol\nreal_server 10.0.1.1 80 1"),
			unmapped: "2 lb_algo, 3 lb_algo, 4 protocol, 5 real_server",
			check:    func(t *testing.T, c *config.Config) { want(t, "backends", len(one(t, c).Backends), 0) }},
	})
}

func TestKeepalivedGroups(t *testing.T) {
	body := "{\n lb_kind TUN type gre\n real_server 10.0.1.1 8080 {\n TCP_CHECK {\n }\n }\n}\n"
	runImportCases(t, importText, []importCase{
		{name: "a simple group is one service per entry", in: "virtual_server_group web {\n 10.0.0.1 80\n 10.0.0.2 80 # second VIP\n}\n" +
			"virtual_server group web " + body,
			unmapped: "6 lb_kind", // once, though it applies to two services
			check: func(t *testing.T, c *config.Config) {
				if len(c.Services) != 2 {
					t.Fatalf("%d services, want 2", len(c.Services))
				}
				for i, vip := range []string{"10.0.0.1", "10.0.0.2"} {
					s := c.Services[i]
					want(t, "key", s.Key().String(), vip+":80/tcp")
					want(t, "backends", s.Backends, []config.Backend{{Address: addr("10.0.1.1"), Port: 8080, Weight: 1}})
					want(t, "check", s.HealthCheck != nil && s.HealthCheck.Kind == "tcp", true)
				}
			}},
		{name: "ranges, fwmarks and entries without port are reported", in: "virtual_server_group g {\n 10.0.0.1 80\n" +
			" 10.0.0.10-12 80\n 10.0.1.0/30 80\n fwmark 7\n 10.0.0.3\n 2001:db8::1 80\n}\nvirtual_server group g " + body,
			unmapped: "3 10.0.0.10-12, 4 10.0.1.0/30, 5 fwmark, 6 10.0.0.3, 7 2001:db8::1, 10 lb_kind",
			check:    func(t *testing.T, c *config.Config) { want(t, "key", one(t, c).Key().String(), "10.0.0.1:80/tcp") }},
		{name: "a group that does not exist", in: "virtual_server group nope " + body, unmapped: "1 virtual_server", check: noServices},
		{name: "a group without a name", in: "virtual_server_group {\n}\n", unmapped: "1 virtual_server_group"},
		{name: "a group with snmp_name", in: "virtual_server_group g {\n 10.0.0.1 80\n 10.0.0.2 80\n}\nvirtual_server group g {\n snmp_name web\n}",
			unmapped: "6 snmp_name"},
	})
}

func TestFindingString(t *testing.T) {
	f := Finding{Pos: Pos{"k.conf", 3}, Keyword: "a\nb", Why: "why"}
	if got := f.String(); got != "k.conf:3: a?b: why" {
		t.Errorf("%q", got)
	}
	if got := fmt.Sprint(Pos{File: "x"}); got != "x" {
		t.Errorf("%q", got)
	}
}
