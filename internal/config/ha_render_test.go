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

// TestRenderHA: Render writes the ha and sync sections so that they read
// back as they run, with neither plain defaults nor derived ones (the
// interface, the cluster size) that the file did not need to say.
func TestRenderHA(t *testing.T) {
	full, err := os.ReadFile(filepath.Join("testdata", "ha.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		yaml       string
		has, lacks []string
	}{
		{"every field", string(full),
			[]string{"mode: vrrp", "node_id: 2", "nodes: 3", "interface: eth1", "priority: 150", "advert_interval: 500ms",
				"preempt: false", "preempt_delay: 30s", "repeat: 3", "delay: 2s", "listen: 192.0.2.5:8849",
				"peers:\n    - 192.0.2.6:8849\n", "key_file: /etc/xdplb/sync.key", "batch_interval: 20ms", "refresh: 2m0s", "bulk_timeout: 1m0s"},
			nil},
		{"alone", minimal, nil, []string{"ha:", "sync:"}},
		{"derived defaults", haDoc("node_id: 2", peered),
			[]string{"node_id: 2", "- 192.0.2.6:8849"},
			[]string{"nodes:", "interface:", "mode:", "priority:", "garp:", "refresh:"}},
		{"IPv6", haDoc("mode: external, node_id: 1", `listen: "[2001:db8::5]:8849", peers: ["[2001:db8::6]:8849"], key_file: /k, cluster_id: 7`),
			[]string{"listen: '[2001:db8::5]:8849'", "cluster_id: 7"}, nil},
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

// TestSaveServicesKeepsHA: a write-back of the services leaves the ha and
// sync sections as the operator wrote them, and adds no derived value.
func TestSaveServicesKeepsHA(t *testing.T) {
	sections := `ha:
  mode: vrrp   # keepalived's successor
  node_id: 1
sync:
  listen: 192.0.2.5:8849
  peers: [192.0.2.6:8849]   # node b
  key_file: /etc/xdplb/sync.key
`
	path, cfg := writeAndLoad(t, minimal+sections+"services: []\n")
	next := cfg.Clone()
	s := NewService()
	s.VIP, s.Port = cfg.Local.Addresses[0].Next(), 80
	s.FillDerived()
	next.Services = append(next.Services, s)
	next.Sync.Peers[0] = netip.AddrPortFrom(next.Sync.Peers[0].Addr().Next(), 8849)
	if cfg.Sync.Peers[0].String() != "192.0.2.6:8849" {
		t.Fatal("Clone shares sync.peers with the original")
	}
	if _, err := SaveServices(path, next.Services, digestOf(t, path)); err != nil {
		t.Fatal(err)
	}
	saved, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(saved.HA, cfg.HA) || !reflect.DeepEqual(saved.Sync, cfg.Sync) {
		t.Errorf("saved ha %+v sync %+v, want %+v %+v", saved.HA, saved.Sync, cfg.HA, cfg.Sync)
	}
	data, _ := os.ReadFile(path)
	for _, kept := range []string{"mode: vrrp # keepalived's successor", "# node b"} {
		if !strings.Contains(string(data), kept) {
			t.Errorf("saved file lost %q:\n%s", kept, data)
		}
	}
	for _, derived := range []string{"nodes:", "interface:"} {
		if strings.Contains(string(data), derived) {
			t.Errorf("saved file has the derived %q written out:\n%s", derived, data)
		}
	}
}

// TestDiffHA: every change to ha and sync is reported, and needs a
// restart.
func TestDiffHA(t *testing.T) {
	tests := []struct {
		old, new string
		want     []string
	}{
		{haDoc("mode: vrrp, node_id: 1", peered),
			haDoc("mode: vrrp, node_id: 1, priority: 150, preempt: false",
				"listen: 192.0.2.5:8849, peers: [192.0.2.6:8849, 192.0.2.7:8849], key_file: /etc/xdplb/sync.key, refresh: 30s"),
			[]string{
				"ha.nodes: 2 -> 3 (needs a restart)",
				"ha.priority: 100 -> 150 (needs a restart)",
				"ha.preempt: true -> false (needs a restart)",
				"sync.peers: [192.0.2.6:8849] -> [192.0.2.6:8849 192.0.2.7:8849] (needs a restart)",
				"sync.refresh: 1m0s -> 30s (needs a restart)",
			}},
		{minimal, haDoc("mode: external, node_id: 1, garp: {delay: 0s}", peered+", cluster_id: 7"),
			[]string{
				"ha.mode: none -> external (needs a restart)",
				"ha.node_id: 0 -> 1 (needs a restart)",
				"ha.nodes: 1 -> 2 (needs a restart)",
				// As for metrics.listen: a setting that becomes or stops
				// being empty reads as added or removed.
				"ha.garp.delay removed",
				"sync.listen added",
				"sync.peers: [] -> [192.0.2.6:8849] (needs a restart)",
				"sync.key_file added",
				"sync.cluster_id: 0 -> 7 (needs a restart)",
			}},
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
			if !c.Restart {
				t.Errorf("%s: does not need a restart", c)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Diff:\n got  %q\n want %q", got, tt.want)
		}
	}
}
