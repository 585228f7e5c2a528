package bgp

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validConfig is a configuration Validate accepts, for tests to spoil.
func validConfig() Config {
	return Config{
		ASN:      65001,
		RouterID: netip.MustParseAddr("10.0.1.2"),
		Peers:    []Peer{{Address: netip.MustParseAddr("10.0.1.1"), ASN: 65000}},
	}
}

func TestDefaults(t *testing.T) {
	c := validConfig()
	bfd := &BFD{Interval: 300 * time.Millisecond}
	c.Peers[0].BFD = bfd
	c.Defaults()
	p := c.Peers[0]
	if c.ListenPort != -1 || c.ShutdownWait != 0 || c.GracefulRestart.RestartTime != DefaultRestartTime {
		t.Errorf("global defaults: listen %d, shutdown wait %s (0 is a choice), restart time %s", c.ListenPort, c.ShutdownWait, c.GracefulRestart.RestartTime)
	}
	if p.Port != 179 || p.HoldTime != 9*time.Second || p.Keepalive != 3*time.Second || p.BFD.Multiplier != 3 {
		t.Errorf("peer defaults: %+v, bfd %+v", p, *p.BFD)
	}
	if bfd.Multiplier != 0 {
		t.Error("Defaults changed the caller's BFD")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaulted valid config: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error, one per problem
	}{
		{"no asn", func(c *Config) { c.ASN = 0 }, []string{"bgp.asn: not set"}},
		{"as_trans", func(c *Config) { c.ASN = 23456 }, []string{"bgp.asn: 23456 is reserved"}},
		{"ipv6 router id", func(c *Config) { c.RouterID = netip.MustParseAddr("2001:db8::1") }, []string{"bgp.router_id: 2001:db8::1 is not an IPv4"}},
		{"no router id", func(c *Config) { c.RouterID = netip.Addr{} }, []string{"bgp.router_id: not set"}},
		{"listen port", func(c *Config) { c.ListenPort = 70000 }, []string{"bgp.listen_port: 70000 is not a port"}},
		{"no peers", func(c *Config) { c.Peers = nil }, []string{"bgp.peers: none"}},
		{"ibgp", func(c *Config) { c.Peers[0].ASN = 65001 }, []string{"bgp.peers[0].asn: 65001 is this node's own AS: iBGP is not supported"}},
		{"duplicate peer", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, []string{"bgp.peers[1].address: 10.0.1.1 is also peers[0]"}},
		{"peer without address", func(c *Config) { c.Peers[0].Address = netip.Addr{} }, []string{"bgp.peers[0].address: not set"}},
		{"link-local peer", func(c *Config) { c.Peers[0].Address = netip.MustParseAddr("fe80::1") }, []string{"bgp.peers[0].address: fe80::1 is link-local"}},
		{"local address family", func(c *Config) { c.Peers[0].LocalAddress = netip.MustParseAddr("2001:db8::2") }, []string{"bgp.peers[0].local_address: 2001:db8::2 is not of the family"}},
		{"hold time", func(c *Config) { c.Peers[0].HoldTime = 2 * time.Second }, []string{"bgp.peers[0].hold_time: 2s is not whole seconds"}},
		{"keepalive not below hold", func(c *Config) { c.Peers[0].HoldTime, c.Peers[0].Keepalive = 9*time.Second, 9*time.Second }, []string{"bgp.peers[0].keepalive: 9s"}},
		{"fractional keepalive", func(c *Config) { c.Peers[0].Keepalive = 1500 * time.Millisecond }, []string{"bgp.peers[0].keepalive: 1.5s"}},
		{"bfd too fast", func(c *Config) { c.Peers[0].BFD = &BFD{Interval: time.Millisecond, Multiplier: 3} }, []string{"bgp.peers[0].bfd.interval: 1ms is below 10ms"}},
		{"bfd multihop", func(c *Config) {
			c.Peers[0].BFD = &BFD{Interval: time.Second, Multiplier: 3}
			c.Peers[0].Multihop = true
		}, []string{"bgp.peers[0].bfd: single-hop BFD cannot run with multihop"}},
		{"communities", func(c *Config) { c.Communities = []string{"65001:100", "65001", "1:70000", "65535:0", "0:5"} }, []string{
			`bgp.communities[1]: "65001" is not ASN:value`,
			`bgp.communities[2]: "1:70000" is not ASN:value`,
			`bgp.communities[3]: "65535:0" is in a reserved range`,
			`bgp.communities[4]: "0:5" is in a reserved range`,
		}},
		{"shutdown wait", func(c *Config) { c.ShutdownWait = -time.Second }, []string{"bgp.shutdown_wait: -1s is negative"}},
		{"restart time", func(c *Config) { c.GracefulRestart.RestartTime = 5000 * time.Second }, []string{"bgp.graceful_restart.restart_time: 1h23m20s is not whole seconds"}},
		{"all at once", func(c *Config) {
			c.ASN = 0
			c.Peers[0].ASN = 0
			c.ListenPort = -2
		}, []string{"bgp.asn: not set", "bgp.listen_port: -2", "bgp.peers[0].asn: not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Defaults()
			tt.change(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate accepted it, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tt.want), err)
			}
		})
	}
}

func TestReadPassword(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pw, err := readPassword(p)
	if err != nil || pw != "s3cret" {
		t.Errorf("readPassword = %q, %v; want s3cret without the newline", pw, err)
	}
}

func TestParseCommunities(t *testing.T) {
	got, err := parseCommunities([]string{"65001:100", "1:0"})
	if err != nil || len(got) != 2 || got[0] != 65001<<16|100 || got[1] != 1<<16 {
		t.Errorf("parseCommunities = %#x, %v", got, err)
	}
}

// TestNewReadsPasswordFiles: the password files are read when the speaker
// is made, not by Validate, which every configuration edit runs.
func TestNewReadsPasswordFiles(t *testing.T) {
	dir := t.TempDir()
	empty, long := filepath.Join(dir, "empty"), filepath.Join(dir, "long")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(long, []byte(strings.Repeat("x", MaxPasswordLen+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		filepath.Join(dir, "nope"): "bgp.peers[0].password_file: read the TCP MD5 password: open " + dir + "/nope: no such file",
		empty:                      "bgp.peers[0].password_file: " + empty + " is empty",
		long:                       "bgp.peers[0].password_file: " + long + " holds 81 bytes",
	} {
		c := validConfig()
		c.Peers[0].PasswordFile = file
		c.Defaults()
		if err := c.Validate(); err != nil {
			t.Errorf("Validate read %s: %v", file, err)
		}
		if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New with %s: %v, want %q", file, err, want)
		}
	}
}
