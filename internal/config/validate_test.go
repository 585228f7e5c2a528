package config

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/ident"
)

func TestValidateReference(t *testing.T) {
	// A plain nil, not a nil *Error hiding in the interface.
	if err := referenceConfig().Validate(); err != nil {
		t.Errorf("Validate() = %#v, want nil", err)
	}
}

// TestValidate covers what only a Config built in Go can get wrong (the
// decoder never produces these values) and the datapath size limits.
func TestValidate(t *testing.T) {
	backends := func(n int, third byte) []Backend {
		bs := make([]Backend, n)
		for i := range bs {
			bs[i] = Backend{Address: netip.AddrFrom4([4]byte{10, third, byte(i >> 8), byte(i)}), Port: 80, Weight: 1}
		}
		return bs
	}
	services := func(n, backendsEach int) []Service {
		ss := make([]Service, n)
		for i := range ss {
			ss[i] = Service{
				VIP:       netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)}),
				Port:      80,
				Protocol:  ident.TCP,
				Scheduler: "rr",
				Backends:  backends(backendsEach, byte(i)),
			}
		}
		return ss
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		path   string
		msg    string
	}{
		{"empty xdp mode", func(c *Config) { c.XDPMode = "" }, "xdp_mode", `"" is not an XDP mode`},
		{"too many interfaces", func(c *Config) {
			c.Interfaces = nil
			for i := range 17 {
				c.Interfaces = append(c.Interfaces, fmt.Sprintf("eth%d", i))
			}
		}, "interfaces", "17 interfaces, more than the 16 the datapath can be attached to"},
		{"zero port range", func(c *Config) { c.Local.Ports = PortRange{} }, "local.ports", "0-0 is not a port range: 0 is not a port (1-65535)"},
		{"reversed port range", func(c *Config) { c.Local.Ports = PortRange{Min: 2, Max: 1} }, "local.ports", "2-1 is not a port range: 2 is greater than 1"},
		{"unknown protocol number", func(c *Config) { c.Services[0].Protocol = 1 }, "services[0].protocol", "1 is not a protocol"},
		{"zero service port", func(c *Config) { c.Services[0].Port = 0 }, "services[0].port", "missing (a port (1-65535) is required)"},
		{"zero backend port", func(c *Config) { c.Services[0].Backends[1].Port = 0 }, "services[0].backends[1].port", "missing"},
		{"weight too large", func(c *Config) { c.Services[0].Backends[0].Weight = 1 << 20 }, "services[0].backends[0].weight", "1048576 is not a weight (0-65535)"},
		{"IPv4-mapped IPv6 vip", func(c *Config) { c.Services[0].VIP = netip.MustParseAddr("::ffff:172.19.0.10") }, "services[0].vip", "write it as the IPv4 address 172.19.0.10"},
		{"IPv6 vip with a zone", func(c *Config) {
			c.Local.Addresses = append(c.Local.Addresses, netip.MustParseAddr("2001:db8::5"))
			c.Services[0].VIP = netip.MustParseAddr("2001:db8::10%eth0")
		}, "services[0].vip", "2001:db8::10%eth0 has a zone (%eth0)"},
		{"IPv6 vip, IPv4 and IPv6 backends", func(c *Config) {
			c.Local.Addresses = append(c.Local.Addresses, netip.MustParseAddr("2001:db8::5"))
			c.Services[0].VIP = netip.MustParseAddr("2001:db8::10")
			c.Services[0].Backends[1].Address = netip.MustParseAddr("2001:db8::3")
		}, "services[0].backends[1].address", "all IPv4 (NAT64)"},
		{"too many backends in a service", func(c *Config) { c.Services[0].Backends = backends(MaxBackendsPerService+1, 0) }, "services[0].backends", "4097 backends, more than the maximum of 4096 per service"},
		{"rings do not fit", func(c *Config) {
			c.Services = services(64, 1)
			for i := range c.Services {
				c.Services[i].Scheduler = "maglev"
			}
		}, "services", "the schedulers' rings need up to 4194368 slots (plus 65537 to rebuild the largest), more than the 4194304 available"},
		{"too many local addresses", func(c *Config) {
			c.Local.Addresses = nil
			for i := 0; i < 65; i++ {
				c.Local.Addresses = append(c.Local.Addresses, netip.AddrFrom4([4]byte{172, 20, 0, byte(i + 1)}))
			}
		}, "local.addresses", "65 IPv4 addresses, more than the maximum of 64 per family"},
		{"too many IPv6 local addresses", func(c *Config) {
			for i := 0; i < 65; i++ {
				c.Local.Addresses = append(c.Local.Addresses, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}))
			}
		}, "local.addresses", "65 IPv6 addresses, more than the maximum of 64 per family"},
		{"too many services", func(c *Config) { c.Services = services(MaxServices+1, 0) }, "services", "4097 services, more than the maximum of 4096"},
		{"too many backends in total", func(c *Config) { c.Services = services(MaxBackends/MaxBackendsPerService+1, MaxBackendsPerService) }, "services", "135168 backends in total, more than the maximum of 131072"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := referenceConfig()
			tt.mutate(c)
			ps := problemsOf(t, c.Validate())
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(ps), &Error{Problems: ps})
			}
			if ps[0].Path != tt.path || !strings.Contains(ps[0].Msg, tt.msg) {
				t.Errorf("got problem %q,\nwant path %q with message containing %q", ps[0], tt.path, tt.msg)
			}
		})
	}
}

func TestValidateLimitsAreInclusive(t *testing.T) {
	c := referenceConfig()
	c.Services = nil
	for i := range MaxBackends / MaxBackendsPerService {
		s := Service{
			VIP:       netip.AddrFrom4([4]byte{192, 168, 0, byte(i)}),
			Port:      80,
			Protocol:  ident.TCP,
			Scheduler: "rr",
			Name:      fmt.Sprint("s", i),
		}
		for j := range MaxBackendsPerService {
			s.Backends = append(s.Backends, Backend{Address: netip.AddrFrom4([4]byte{10, byte(i), byte(j >> 8), byte(j)}), Port: 80})
		}
		c.Services = append(c.Services, s)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with exactly %d backends: %v", MaxBackends, err)
	}
}

// TestLocalAddressesPerFamily: the limit of local addresses is the
// datapath's, which keeps a table of them for each family.
func TestLocalAddressesPerFamily(t *testing.T) {
	c := referenceConfig()
	c.Local.Addresses = nil
	for i := range MaxLocalAddresses {
		c.Local.Addresses = append(c.Local.Addresses,
			netip.AddrFrom4([4]byte{172, 20, 0, byte(i + 1)}),
			netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}))
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with %d local addresses of each family: %v", MaxLocalAddresses, err)
	}
}

// TestUnicastIPv4Problem: what must stay IPv4 refuses IPv6 as not yet
// supported, and otherwise refuses what unicastProblem does.
func TestUnicastIPv4Problem(t *testing.T) {
	for addr, want := range map[string]string{
		"172.19.0.5":        "",
		"2001:db8::1":       "2001:db8::1 is an IPv6 address; IPv6 is not supported yet",
		"::ffff:172.19.0.5": "::ffff:172.19.0.5 is an IPv6 address; IPv6 is not supported yet",
		"127.0.0.1":         "127.0.0.1 is a loopback address",
	} {
		if got := unicastIPv4Problem(netip.MustParseAddr(addr)); got != want {
			t.Errorf("unicastIPv4Problem(%s) = %q, want %q", addr, got, want)
		}
	}
	if got, want := unicastIPv4Problem(netip.Addr{}), "missing (an IPv4 address is required)"; got != want {
		t.Errorf("unicastIPv4Problem(missing) = %q, want %q", got, want)
	}
}

func TestIfnameProblem(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"eth0", true},
		{"enp0s31f6", true},
		{"veth-a.100", true},
		{"abcdefghijklmno", true}, // 15 characters
		{"abcdefghijklmnop", false},
		{"", false},
		{".", false},
		{"..", false},
		{"eth0:1", false},
		{"a/b", false},
		{"eth\t0", false},
	}
	for _, tt := range tests {
		if got := ifnameProblem(tt.name) == ""; got != tt.ok {
			t.Errorf("ifnameProblem(%q) = %q, want ok=%v", tt.name, ifnameProblem(tt.name), tt.ok)
		}
	}
}

// TestPersistenceNetmask: a netmask is read as a prefix length and needs
// persistence to mean anything.
func TestPersistenceNetmask(t *testing.T) {
	base := "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5]}\nservices:\n  - {vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2}], "
	c, err := Parse([]byte(base + "persistence: 5m, persistence_netmask: 24}\n"))
	if err != nil || c.Services[0].PersistenceNetmask != 24 {
		t.Fatalf("persistence_netmask 24: %+v, %v", c, err)
	}
	for doc, want := range map[string]string{
		base + "persistence_netmask: 24}\n":                  "services[0].persistence_netmask: has no effect without persistence",
		base + "persistence: 5m, persistence_netmask: 33}\n": "services[0].persistence_netmask",
	} {
		if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}

// TestClientAddress: toa and none are read as written, and an empty or
// absent value is none.
func TestClientAddress(t *testing.T) {
	base := "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5]}\nservices:\n  - {vip: 172.19.0.10, port: 80"
	for doc, want := range map[string]string{
		base + "}\n":                          ClientAddressNone,
		base + `, client_address: ""}` + "\n": ClientAddressNone,
		base + ", client_address: none}\n":    ClientAddressNone,
		base + ", client_address: toa}\n":     ClientAddressTOA,
	} {
		c, err := Parse([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		if got := c.Services[0].ClientAddress; got != want {
			t.Errorf("%s: client_address %q, want %q", doc, got, want)
		}
	}
}
