package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// dsrDoc is the minimal document with the given fields in a flow-style
// dsr section.
func dsrDoc(fields string) string {
	return minimal + "dsr: {" + fields + "}\n"
}

// fwdSvc is a service on 172.19.0.10:80 with forwarding fwd and the given
// extra flow-style fields (", " first), for svc.
func fwdSvc(fwd, extra string) string {
	return "{vip: 172.19.0.10, port: 80, forwarding: " + fwd + extra + "}"
}

var (
	encapSource  = netip.MustParseAddr("172.19.0.5")
	otherBalance = netip.MustParseAddr("172.19.0.6")
)

// TestParseDSR: the section reads as written, and every field left out
// (or the whole section) takes its default.
func TestParseDSR(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want DSR
	}{
		{"absent", minimal, defaultDSR},
		{"null", minimal + "dsr:\n", defaultDSR},
		{"empty", dsrDoc(""), defaultDSR},
		{"encap source", dsrDoc("encap_source: 172.19.0.5"), DSR{EncapSource: encapSource, GUEPort: 6080}},
		{"empty encap source is unset", dsrDoc(`encap_source: ""`), defaultDSR},
		{"gue port", dsrDoc("gue_port: 0x17c1"), DSR{GUEPort: 6081}},
		{"decap sources", dsrDoc("decap_sources: [172.19.0.6, 172.19.0.7]"),
			DSR{GUEPort: 6080, DecapSources: []netip.Addr{otherBalance, netip.MustParseAddr("172.19.0.7")}}},
		{"no decap sources", dsrDoc("decap_sources: []"), defaultDSR},
		{"block style", minimal + "dsr:\n  encap_source: 172.19.0.5\n  gue_port: 6080\n  decap_sources:\n    - 172.19.0.6\n",
			DSR{EncapSource: encapSource, GUEPort: 6080, DecapSources: []netip.Addr{otherBalance}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.DSR, tt.want) {
				t.Errorf("dsr = %+v, want %+v", c.DSR, tt.want)
			}
		})
	}

	c, err := Load(filepath.Join("testdata", "dsr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := DSR{EncapSource: netip.MustParseAddr("192.0.2.1"), GUEPort: 6081, DecapSources: []netip.Addr{netip.MustParseAddr("192.0.2.2")}}
	if !reflect.DeepEqual(c.DSR, want) {
		t.Errorf("dsr.yaml: dsr = %+v, want %+v", c.DSR, want)
	}
	var got []string
	for _, s := range c.Services {
		got = append(got, s.Forwarding)
	}
	if want := []string{ForwardingDSRL2, ForwardingDSRIPIP, ForwardingDSRGUE}; !slices.Equal(got, want) {
		t.Errorf("dsr.yaml: forwarding %q, want %q", got, want)
	}
}

// TestParseForwarding: every mode reads as written, an empty or absent
// one is fullnat, and a DSR service's backends and fallback without a
// port take the service's, as under Full-NAT.
func TestParseForwarding(t *testing.T) {
	for doc, want := range map[string]string{
		svc("{vip: 172.19.0.10, port: 80}"):                          ForwardingFullNAT,
		svc(`{vip: 172.19.0.10, port: 80, forwarding: ""}`):          ForwardingFullNAT,
		svc(fwdSvc("fullnat", "")):                                   ForwardingFullNAT,
		svc(fwdSvc("dsr-l2", "")):                                    ForwardingDSRL2,
		svc(fwdSvc("dsr-ipip", "")) + "dsr: {encap_source: 1.2.3.4}": ForwardingDSRIPIP,
		svc(fwdSvc("dsr-gue", "")) + "dsr: {encap_source: 1.2.3.4}":  ForwardingDSRGUE,
	} {
		c, err := Parse([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		s := c.Services[0]
		if s.Forwarding != want {
			t.Errorf("%s: forwarding %q, want %q", doc, s.Forwarding, want)
		}
		if s.DSR() != (want != ForwardingFullNAT) {
			t.Errorf("%s: DSR() = %v", doc, s.DSR())
		}
	}

	c, err := Parse([]byte(svc(fwdSvc("dsr-l2", ", backends: [{address: 172.19.0.2}, {address: 172.19.0.3, port: 80}], "+
		"fallback: {address: 172.19.0.9}"))))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if s.Backends[0].Port != 80 || s.Backends[1].Port != 80 || s.Fallback.Port != 80 {
		t.Errorf("backends %+v, fallback %+v: want every port 80", s.Backends, s.Fallback)
	}
}

// TestDSRHelper: DSR is true for the three DSR modes only.
func TestDSRHelper(t *testing.T) {
	for fwd, want := range map[string]bool{
		"": false, ForwardingFullNAT: false, "dsr": false, "DSR-L2": false,
		ForwardingDSRL2: true, ForwardingDSRIPIP: true, ForwardingDSRGUE: true,
	} {
		if got := (Service{Forwarding: fwd}).DSR(); got != want {
			t.Errorf("Service{Forwarding: %q}.DSR() = %v, want %v", fwd, got, want)
		}
	}
}

// TestDSRProblems: each broken dsr section or forwarding yields exactly
// one problem, at its path, whether the decoder or Validate finds it.
func TestDSRProblems(t *testing.T) {
	encap := "dsr: {encap_source: 172.19.0.5}\n"
	tests := []struct {
		name string
		yaml string
		path string
		msg  string
	}{
		// Decoding.
		{"unknown field", dsrDoc("port: 6080"), "dsr.port", "unknown field at line 3 (known fields: decap_sources, encap_source, gue_port)"},
		{"not a mapping", minimal + "dsr: on\n", "dsr", `expected a mapping, got string "on"`},
		{"encap source not an address", dsrDoc("encap_source: balancer"), "dsr.encap_source", `"balancer" is not an IP address`},
		{"encap source as a list", dsrDoc("encap_source: [172.19.0.5]"), "dsr.encap_source", "expected a string, got a list"},
		{"gue port 0", dsrDoc("gue_port: 0"), "dsr.gue_port", "0 is not a port (1-65535)"},
		{"gue port too high", dsrDoc("gue_port: 65536"), "dsr.gue_port", "65536 is not a port (1-65535)"},
		{"gue port a string", dsrDoc("gue_port: gue"), "dsr.gue_port", `expected a port (1-65535), got string "gue"`},
		{"decap sources not a list", dsrDoc("decap_sources: 172.19.0.6"), "dsr.decap_sources", `expected a list, got string "172.19.0.6"`},
		{"decap source not an address", dsrDoc("decap_sources: [172.19.0.6, lb2]"), "dsr.decap_sources[1]", `"lb2" is not an IP address`},
		{"forwarding as a list", svc(fwdSvc("[dsr-l2]", "")), "services[0].forwarding", "expected a string, got a list"},

		// Validation of dsr.
		{"encap source IPv6", dsrDoc("encap_source: 2001:db8::1"), "dsr.encap_source", "2001:db8::1 is an IPv6 address; IPv6 is not supported yet"},
		{"encap source unspecified", dsrDoc("encap_source: 0.0.0.0"), "dsr.encap_source", "0.0.0.0 is the unspecified address"},
		{"encap source multicast", dsrDoc("encap_source: 224.0.0.1"), "dsr.encap_source", "224.0.0.1 is a multicast address"},
		{"encap source broadcast", dsrDoc("encap_source: 255.255.255.255"), "dsr.encap_source", "255.255.255.255 is the broadcast address"},
		{"encap source loopback", dsrDoc("encap_source: 127.0.0.1"), "dsr.encap_source", "127.0.0.1 is a loopback address"},
		{"decap source duplicated", dsrDoc("decap_sources: [172.19.0.6, 172.19.0.7, 172.19.0.6]"), "dsr.decap_sources[2]",
			"172.19.0.6 is already listed at dsr.decap_sources[0]"},
		{"decap source multicast", dsrDoc("decap_sources: [239.1.1.1]"), "dsr.decap_sources[0]", "239.1.1.1 is a multicast address"},
		{"decap source IPv6", dsrDoc("decap_sources: ['::1']"), "dsr.decap_sources[0]", "::1 is an IPv6 address; IPv6 is not supported yet"},

		{"udp service on the gue port while decapsulating", svc("{vip: 172.19.0.10, port: 6080, protocol: udp}") +
			"dsr: {decap_sources: [172.19.0.6]}\n", "services[0].port",
			"6080 is dsr.gue_port, where this node takes UDP for GUE tunnels (dsr.decap_sources is set)"},
		{"local ports holding the gue port while decapsulating", "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5], ports: 6000-7000}\n" +
			"dsr: {decap_sources: [172.19.0.6]}\n", "local.ports", "6000-7000 holds dsr.gue_port 6080"},

		// Validation of forwarding.
		{"unknown forwarding", svc(fwdSvc("dr", "")), "services[0].forwarding",
			`"dr" is not a forwarding mode (accepted: fullnat, dsr-l2, dsr-ipip, dsr-gue)`},
		{"forwarding in capitals", svc(fwdSvc("DSR-L2", "")), "services[0].forwarding",
			`"DSR-L2" is not a forwarding mode (accepted: fullnat, dsr-l2, dsr-ipip, dsr-gue)`},
		{"dsr-l2 backend on another port", svc(fwdSvc("dsr-l2", ", backends: [{address: 172.19.0.2}, {address: 172.19.0.3, port: 8080}]")),
			"services[0].backends[1].port", "8080 differs from the service's port 80: dsr-l2 cannot rewrite ports " +
				"(the backend receives the packet as the client sent it); use port 80, or forwarding: fullnat"},
		{"dsr-ipip fallback on another port", svc(fwdSvc("dsr-ipip", ", fallback: {address: 172.19.0.9, port: 8080}")) + encap,
			"services[0].fallback.port", "8080 differs from the service's port 80: dsr-ipip cannot rewrite ports " +
				"(the backend receives the packet as the client sent it); use port 80, or forwarding: fullnat"},
		{"toa with dsr", svc(fwdSvc("dsr-l2", ", client_address: toa")), "services[0].client_address",
			"toa is for forwarding fullnat: with dsr-l2 the backend already sees the client's address " +
				"(the packet reaches it as the client sent it); set none or remove it"},
		{"toa with dsr on udp", svc(fwdSvc("dsr-gue", ", protocol: udp, client_address: toa")) + encap, "services[0].client_address",
			"toa is for forwarding fullnat: with dsr-gue the backend already sees the client's address"},
		{"toa on udp without dsr", svc("{vip: 172.19.0.10, port: 53, protocol: udp, client_address: toa}"), "services[0].client_address",
			"toa is for tcp services: it carries the client's address in a TCP option, and UDP has no options " +
				"(a UDP backend sees its clients' addresses only with direct server return: forwarding dsr-l2, dsr-ipip or dsr-gue)"},
		{"dsr-ipip without encap source", svc(fwdSvc("dsr-ipip", ", name: web")), "dsr.encap_source",
			"missing (an IPv4 address of this node, the outer source of the tunnelled packets, is required): services[0] (web) uses dsr-ipip"},
		{"dsr-gue without encap source", svc("{vip: 172.19.0.10, port: 443}", fwdSvc("dsr-gue", ""), "{vip: 172.19.0.10, port: 81, forwarding: dsr-ipip}"),
			"dsr.encap_source", "missing (an IPv4 address of this node, the outer source of the tunnelled packets, is required): " +
				"services[1] (172.19.0.10:80/tcp) uses dsr-gue and services[2] (172.19.0.10:81/tcp) uses dsr-ipip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := onlyProblem(t, tt.yaml)
			if p.Path != tt.path || !strings.Contains(p.Msg, tt.msg) {
				t.Errorf("got problem %q,\nwant %q", p, Problem{tt.path, tt.msg})
			}
		})
	}
}

// TestDSRProblemsAtOnce: the problems of several services and of the dsr
// section come back together, each at its path.
func TestDSRProblemsAtOnce(t *testing.T) {
	doc := svc(
		fwdSvc("dsr-l2", ", backends: [{address: 172.19.0.2, port: 81}, {address: 172.19.0.3, port: 82}], client_address: toa"),
		"{vip: 172.19.0.10, port: 443, forwarding: dsr-ipip, name: api, fallback: {address: 172.19.0.9, port: 8443}}",
		"{vip: 172.19.0.10, port: 53, forwarding: tunnel}",
	) + "dsr: {decap_sources: [172.19.0.6, 172.19.0.6]}\n"
	_, err := Parse([]byte(doc))
	var got []string
	for _, p := range problemsOf(t, err) {
		got = append(got, p.Path)
	}
	want := []string{
		"services[0].backends[0].port", "services[0].backends[1].port", "services[0].client_address",
		"services[1].fallback.port", "services[2].forwarding",
		"dsr.encap_source", "dsr.decap_sources[1]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems at\n got %q\nwant %q\n%v", got, want, err)
	}
}

// TestValidateDSR covers what only a section built in Go can get wrong:
// the zero value's port, and more decap sources than the limit.
func TestValidateDSR(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []Problem
	}{
		{"defaults", func(c *Config) {}, nil},
		{"zero value", func(c *Config) { c.DSR = DSR{} }, []Problem{{"dsr.gue_port", "0 is not a port (1-65535)"}}},
		{"empty forwarding is fullnat", func(c *Config) { c.Services[0].Forwarding = "" }, nil},
		{"decap sources at the limit", func(c *Config) { c.DSR.DecapSources = distinctAddrs(MaxDecapSources) }, nil},
		{"too many decap sources", func(c *Config) { c.DSR.DecapSources = distinctAddrs(MaxDecapSources + 1) }, []Problem{
			{"dsr.decap_sources", "1025 addresses, more than the maximum of 1024"},
		}},
		{"a backend port of 0 is missing, not different", func(c *Config) {
			c.Services[0].Forwarding = ForwardingDSRL2
			c.Services[0].Backends[0].Port = 0
		}, []Problem{{"services[0].backends[0].port", "missing (a port (1-65535) is required)"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := referenceConfig()
			tt.mutate(c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if got := problemsOf(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// distinctAddrs returns n unicast addresses, all different.
func distinctAddrs(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	a := netip.MustParseAddr("10.1.0.1")
	for i := range out {
		out[i], a = a, a.Next()
	}
	return out
}

// TestRenderDSR: Render writes the fields that differ from their
// defaults, and nothing for a section all of defaults, so that the file
// reads back as what runs; a service's forwarding is written unless it is
// fullnat.
func TestRenderDSR(t *testing.T) {
	full, err := os.ReadFile(filepath.Join("testdata", "dsr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		yaml       string
		has, lacks []string
	}{
		{"every field", string(full), []string{
			"dsr:\n  encap_source: 192.0.2.1\n  gue_port: 6081\n  decap_sources: [192.0.2.2]\n",
			"forwarding: dsr-l2\n", "forwarding: dsr-ipip\n", "forwarding: dsr-gue\n",
		}, nil},
		{"absent", minimal, nil, []string{"dsr", "forwarding"}},
		{"defaults spelled out", dsrDoc("gue_port: 6080, decap_sources: []") + "services: [" + fwdSvc("fullnat", "") + "]\n",
			nil, []string{"dsr", "forwarding"}},
		{"encap source only", dsrDoc("encap_source: 172.19.0.5"), []string{"dsr:\n  encap_source: 172.19.0.5\n"}, []string{"gue_port", "decap_sources"}},
		{"gue port only", dsrDoc("gue_port: 5555"), []string{"dsr:\n  gue_port: 5555\n"}, []string{"encap_source", "decap_sources"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			out, err := Render(c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(Render(c)): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, c) {
				t.Errorf("Render reads back as\n%+v\nwant\n%+v\nyaml:\n%s", back, c, out)
			}
			for _, s := range tt.has {
				if !strings.Contains(string(out), s) {
					t.Errorf("rendered file lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.lacks {
				if strings.Contains(string(out), s) {
					t.Errorf("rendered file has %q:\n%s", s, out)
				}
			}
		})
	}
}

// TestSaveServicesForwarding: a write-back writes a service's forwarding
// only where it is not the default, changes it in place, and leaves the
// dsr section as the operator wrote it.
func TestSaveServicesForwarding(t *testing.T) {
	section := "dsr:\n  encap_source: 172.19.0.5   # lb1's own\n  gue_port: 6081\n"
	path, cfg := writeAndLoad(t, minimal+section+"services:\n  - vip: 172.19.0.10\n    port: 80\n    forwarding: dsr-l2 # same L2\n")
	next := cfg.Clone()
	s := NewService()
	s.VIP, s.Port = cfg.Local.Addresses[0].Next(), 443
	s.FillDerived()
	next.Services = append(next.Services, s)
	next.Services[0].Forwarding = ForwardingDSRGUE
	if _, err := SaveServices(path, next.Services, digestOf(t, path)); err != nil {
		t.Fatal(err)
	}
	saved, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(saved.DSR, cfg.DSR) {
		t.Errorf("saved dsr %+v, want %+v", saved.DSR, cfg.DSR)
	}
	if got := []string{saved.Services[0].Forwarding, saved.Services[1].Forwarding}; !slices.Equal(got, []string{ForwardingDSRGUE, ForwardingFullNAT}) {
		t.Errorf("saved forwarding %q", got)
	}
	data, _ := os.ReadFile(path)
	// The file is re-encoded: one space before a comment.
	if !strings.Contains(string(data), "dsr:\n  encap_source: 172.19.0.5 # lb1's own\n  gue_port: 6081\n") {
		t.Errorf("saved file lost the dsr section as written:\n%s", data)
	}
	if n := strings.Count(string(data), "forwarding"); n != 1 || !strings.Contains(string(data), "forwarding: dsr-gue\n") {
		t.Errorf("saved file has forwarding %d times, want once, dsr-gue (the default is left out):\n%s", n, data)
	}
}

// TestDiffDSR: a change of the dsr section and of a service's forwarding
// is reported, and a reload applies it.
func TestDiffDSR(t *testing.T) {
	base := svc(fwdSvc("dsr-l2", ", name: web"))
	gue := svc(fwdSvc("dsr-gue", ", name: web"))
	tests := []struct {
		old, new string
		want     []string
	}{
		{base + "dsr: {encap_source: 172.19.0.5}", base + "dsr: {encap_source: 172.19.0.7, decap_sources: [172.19.0.6]}", []string{
			"dsr.encap_source: 172.19.0.5 -> 172.19.0.7",
			"dsr.decap_sources added",
		}},
		{base + "dsr: {gue_port: 5555, decap_sources: [172.19.0.6]}", base + "dsr: {decap_sources: [172.19.0.6, 172.19.0.7]}", []string{
			"dsr.gue_port: 5555 -> 6080",
			"dsr.decap_sources: [172.19.0.6] -> [172.19.0.6 172.19.0.7]",
		}},
		{base + "dsr: {decap_sources: [172.19.0.6]}", gue + "dsr: {encap_source: 172.19.0.5}", []string{
			"dsr.encap_source added",
			"dsr.decap_sources removed",
			"service web (172.19.0.10:80/tcp): forwarding dsr-l2 -> dsr-gue",
		}},
		{svc("{vip: 172.19.0.10, port: 80, name: web}"), base, []string{
			"service web (172.19.0.10:80/tcp): forwarding fullnat -> dsr-l2",
		}},
		{base, base + "dsr: {gue_port: 6080}", nil},
	}
	for _, tt := range tests {
		old, err := Parse([]byte(tt.old))
		if err != nil {
			t.Fatal(err)
		}
		new, err := Parse([]byte(tt.new))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range Diff(old, new) {
			got = append(got, c.String())
			if c.Restart {
				t.Errorf("%s: needs a restart, want it reloadable", c)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Diff:\n got  %q\n want %q", got, tt.want)
		}
	}
}

// TestCloneDSR: a clone's decap sources are its own.
func TestCloneDSR(t *testing.T) {
	c := referenceConfig()
	c.DSR.DecapSources = []netip.Addr{otherBalance}
	cp := c.Clone()
	cp.DSR.DecapSources[0] = encapSource
	if c.DSR.DecapSources[0] != otherBalance {
		t.Errorf("editing a clone's decap_sources changed the original: %v", c.DSR.DecapSources)
	}
}
