package config

import (
	"crypto/sha256"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSaveServices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xdplb.yaml")
	orig := `# the balancer of the reference scenario
interfaces: [eth0]
local:
  addresses: [172.19.0.5]   # shared with the host
services:
  - vip: 172.19.0.10
    port: 80
    health_check: {kind: https, path: /healthz, expect_status: ["200"], expect: ok, insecure_skip_verify: false, sni: web.example}
    on_backend_down: expire   # clients of a dead backend reconnect
    fallback: {address: 172.19.0.9, port: 8080}
    backends:
      - address: 172.19.0.2
        health_check: {kind: exec, command: [/bin/true, "--quick"], timeout: 2s}
  - vip: 172.19.0.10   # dns, untouched by the change
    port: 53
    protocol: udp
    health_check: {kind: udp, payload: ping}
    backends:
      - address: 172.19.0.2
log:
  level: debug
`
	if err := os.WriteFile(path, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	next := cfg.Clone()
	next.Services[0].Backends = append(next.Services[0].Backends, Backend{Address: cfg.Services[0].Backends[0].Address.Next(), Port: 8080, Weight: 0})
	next.Services[0].Persistence = 5 * time.Minute
	next.Services[0].Scheduler = "maglev"
	next.Services[0].ClientAddress = ClientAddressTOA
	if len(cfg.Services[0].Backends) != 1 || cfg.Services[0].HealthCheck == nil || cfg.Services[0].Fallback == nil {
		t.Fatal("Clone shares backends with the original")
	}
	if _, err := SaveServices(path, next.Services, digestOf(t, path)); err != nil {
		t.Fatal(err)
	}
	saved, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(saved, next) {
		t.Errorf("saved config reads back as\n%+v\nwant\n%+v", saved, next)
	}
	data, _ := os.ReadFile(path)
	for _, keep := range []string{"# the balancer of the reference scenario", "# shared with the host", "level: debug",
		"# dns, untouched by the change", "# clients of a dead backend reconnect", "client_address: toa"} {
		if !strings.Contains(string(data), keep) {
			t.Errorf("saved file lost %q:\n%s", keep, data)
		}
	}
	// Only what differs from a default is written: no name, protocol,
	// weight or backend port the operator did not set.
	for _, expanded := range []string{"name:", "protocol: tcp", "weight: 1", "port: 80\n        "} {
		if strings.Contains(string(data), expanded) {
			t.Errorf("saved file has the default %q written out:\n%s", expanded, data)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("saved file mode %v, want 0640", fi.Mode().Perm())
	}
}

// TestSaveServicesWithAnchors: a services section that shares values
// through anchors and aliases is never left broken: a change to an
// anchored value writes the aliases out, and the file loads as what runs.
func TestSaveServicesWithAnchors(t *testing.T) {
	path, cfg := writeAndLoad(t, `interfaces: [eth0]
local: {addresses: [172.19.0.5]}
services:
  - name: a
    vip: 172.19.0.10
    port: 80
    health_check: &hc {kind: tcp}
    backends: &bes
      - address: 172.19.0.2
  - name: b
    vip: 172.19.0.10
    port: 81
    health_check: *hc
    backends: *bes
`)
	next := cfg.Clone()
	next.Services[0].Backends = append(next.Services[0].Backends, Backend{Address: netip.MustParseAddr("172.19.0.2"), Port: 8081, Weight: 1})
	if _, err := SaveServices(path, next.Services, digestOf(t, path)); err != nil {
		t.Fatal(err)
	}
	saved, err := Load(path)
	if err != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("the saved file does not load: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(saved.Services, next.Services) {
		t.Errorf("saved services %+v, want %+v", saved.Services, next.Services)
	}
}

// TestSaveServicesKeepsBackendText: a backend that did not change keeps
// its line, its comment and the fields the operator spelled out.
func TestSaveServicesKeepsBackendText(t *testing.T) {
	path, cfg := writeAndLoad(t, `interfaces: [eth0]
local: {addresses: [172.19.0.5]}
services:
  - name: web
    vip: 172.19.0.10
    port: 80
    backends:
      - address: 172.19.0.2   # rack A
        weight: 1
      - address: 172.19.0.3   # rack B
`)
	next := cfg.Clone()
	next.Services[0].Backends[1].Weight = 3
	next.Services[0].Backends = append(next.Services[0].Backends, Backend{Address: netip.MustParseAddr("172.19.0.4"), Port: 80, Weight: 1})
	if _, err := SaveServices(path, next.Services, digestOf(t, path)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, keep := range []string{"# rack A", "weight: 1", "# rack B", "weight: 3", "address: 172.19.0.4"} {
		if !strings.Contains(string(data), keep) {
			t.Errorf("saved file lacks %q:\n%s", keep, data)
		}
	}
}

// TestSaveServiceWithoutBackends: a service added with no backends (as
// `xdplb service add` does) is written and reads back as it runs.
func TestSaveServiceWithoutBackends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xdplb.yaml")
	if err := os.WriteFile(path, []byte("interfaces: [eth0]\nlocal: {addresses: [172.19.0.5]}\nservices: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewService()
	s.VIP, s.Port = netip.MustParseAddr("172.19.0.10"), 7100
	s.FillDerived()
	if _, err := SaveServices(path, []Service{s}, digestOf(t, path)); err != nil {
		t.Fatal(err)
	}
	saved, err := Load(path)
	if err != nil || len(saved.Services) != 1 || saved.Services[0].Name != "172.19.0.10:7100/tcp" {
		t.Errorf("saved: %+v, %v", saved, err)
	}
	// The default client_address, none, is left out like every default.
	if data, _ := os.ReadFile(path); strings.Contains(string(data), "client_address") {
		t.Errorf("saved file has the default client_address written out:\n%s", data)
	}
}

func digestOf(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	d, err := Digest(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSaveServicesRefusesAnEditedFile: a file that changed since the
// caller read it is not overwritten.
func TestSaveServicesRefusesAnEditedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xdplb.yaml")
	orig := "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5]}\nservices: []\n"
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	read := digestOf(t, path)
	edited := orig + "log: {level: debug}\n"
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SaveServices(path, nil, read); !errors.Is(err, ErrFileChanged) {
		t.Errorf("save over an edit: %v, want ErrFileChanged", err)
	}
	if data, _ := os.ReadFile(path); string(data) != edited {
		t.Errorf("the edit was overwritten:\n%s", data)
	}
}

// writeAndLoad writes a configuration to a temporary file and loads it.
func writeAndLoad(t *testing.T, yaml string) (string, *Config) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xdplb.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

// TestSaveIPv6Services: IPv6 VIPs, backends and local addresses are
// written back, by SaveServices and by Render, so that they load again as
// they ran; an address ending in "::" must not lose its colons to YAML.
func TestSaveIPv6Services(t *testing.T) {
	path, cfg := writeAndLoad(t, "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5, \"2001:db8:5::\"]}\nservices: []\n")
	s := NewService()
	s.VIP, s.Port = netip.MustParseAddr("2001:db8::10"), 443
	s.Persistence, s.PersistenceNetmask = 5*time.Minute, 64
	s.Backends = []Backend{
		{Address: netip.MustParseAddr("2001:db8:1::"), Port: 8443, Weight: 1},
		{Address: netip.MustParseAddr("fd00::2"), Port: 443, Weight: 1},
	}
	s.Fallback = &Backend{Address: netip.MustParseAddr("2001:db8:1::9"), Port: 443, Weight: 1}
	s.FillDerived()
	next := cfg.Clone()
	next.Services = []Service{s}
	if _, err := SaveServices(path, next.Services, digestOf(t, path)); err != nil {
		t.Fatal(err)
	}
	saved, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(saved, next) {
		data, _ := os.ReadFile(path)
		t.Errorf("saved config reads back as\n%+v\nwant\n%+v\nfile:\n%s", saved, next, data)
	}
	if saved.Services[0].Name != "[2001:db8::10]:443/tcp" {
		t.Errorf("the saved service is named %q, want its key", saved.Services[0].Name)
	}

	out, err := Render(next)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Render(c)): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(rendered, next) {
		t.Errorf("rendered config reads back as\n%+v\nwant\n%+v\nyaml:\n%s", rendered, next, out)
	}
}
