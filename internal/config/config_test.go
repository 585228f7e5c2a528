package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/xdplb/xdplb/internal/ident"
)

// problemsOf extracts the problems from an error returned by this
// package, failing the test if it is not an *Error.
// onlyProblem parses doc, which must be refused for exactly one problem,
// and returns it.
func onlyProblem(t *testing.T, doc string) Problem {
	t.Helper()
	c, err := Parse([]byte(doc))
	if err == nil {
		t.Fatalf("Parse succeeded: %+v", c)
	}
	ps := problemsOf(t, err)
	if len(ps) != 1 {
		t.Fatalf("got %d problems, want 1:\n%v", len(ps), err)
	}
	return ps[0]
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("error is %T, not *Error: %v", err, err)
	}
	return e.Problems
}

func referenceConfig() *Config {
	return &Config{
		Interfaces: []string{"eth0"},
		XDPMode:    ident.ModeAuto,
		Local: Local{
			Addresses: []netip.Addr{netip.MustParseAddr("172.19.0.5")},
			Ports:     PortRange{Min: 10000, Max: 19999},
		},
		Services: []Service{{
			Name:          "web",
			VIP:           netip.MustParseAddr("172.19.0.10"),
			Port:          80,
			Protocol:      ident.TCP,
			Scheduler:     "rr",
			OnBackendDown: KeepConnections,
			Forwarding:    ForwardingFullNAT,
			ClientAddress: ClientAddressNone,
			Backends: []Backend{
				{Address: netip.MustParseAddr("172.19.0.2"), Port: 80, Weight: 1},
				{Address: netip.MustParseAddr("172.19.0.3"), Port: 80, Weight: 1},
			},
		}},
		Conntrack:     Conntrack{Capacity: 1048576, Timeouts: defaultTimeouts, GCInterval: defaultGCInterval},
		SYNProtection: defaultSYNProtection,
		DSR:           defaultDSR,
		Log:           Log{Level: "info", Format: "text"},
		API:           API{Socket: DefaultAPISocket},
		State:         State{PinPath: DefaultPinPath},
		HA:            aloneOn("eth0"),
		Sync:          defaultSync,
		BGP:           defaultBGP,
	}
}

// aloneOn is the ha section a file without one gets: a cluster of one, on
// its first interface iface.
func aloneOn(iface string) HA {
	h := defaultHA
	h.Interface, h.Nodes = iface, 1
	return h
}

func TestLoadReference(t *testing.T) {
	got, err := Load(filepath.Join("testdata", "reference.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(reference.yaml):\n got %+v\nwant %+v", got, want)
	}
}

func TestParseAppliesDefaults(t *testing.T) {
	got, err := Parse([]byte(`
interfaces: [eth0]
local: {addresses: [172.19.0.5]}
services:
  - vip: 172.19.0.10
    port: 53
    protocol: UDP
    backends:
      - {address: 172.19.0.2}
      - {address: 172.19.0.3, port: 5353, weight: 0}
      - {address: 172.19.0.4, weight: 7}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Interfaces: []string{"eth0"},
		XDPMode:    ident.ModeAuto,
		Local: Local{
			Addresses: []netip.Addr{netip.MustParseAddr("172.19.0.5")},
			Ports:     PortRange{Min: 10000, Max: 19999},
		},
		Services: []Service{{
			Name:          "172.19.0.10:53/udp",
			VIP:           netip.MustParseAddr("172.19.0.10"),
			Port:          53,
			Protocol:      ident.UDP,
			Scheduler:     "rr",
			OnBackendDown: KeepConnections,
			Forwarding:    ForwardingFullNAT,
			ClientAddress: ClientAddressNone,
			Backends: []Backend{
				{Address: netip.MustParseAddr("172.19.0.2"), Port: 53, Weight: 1},
				{Address: netip.MustParseAddr("172.19.0.3"), Port: 5353, Weight: 0},
				{Address: netip.MustParseAddr("172.19.0.4"), Port: 53, Weight: 7},
			},
		}},
		Conntrack:     Conntrack{Capacity: 1048576, Timeouts: defaultTimeouts, GCInterval: defaultGCInterval},
		SYNProtection: defaultSYNProtection,
		DSR:           defaultDSR,
		Log:           Log{Level: "info", Format: "text"},
		API:           API{Socket: DefaultAPISocket},
		State:         State{PinPath: DefaultPinPath},
		HA:            aloneOn("eth0"),
		Sync:          defaultSync,
		BGP:           defaultBGP,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseExplicitValues(t *testing.T) {
	got, err := Parse([]byte(`
interfaces: [eth0, eth1]
xdp_mode: generic
local:
  addresses: [10.0.0.1, 10.0.0.2]
  ports: "40000"
services: []
conntrack: {capacity: 2048}
log: {level: debug, format: json}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Interfaces: []string{"eth0", "eth1"},
		XDPMode:    ident.ModeGeneric,
		Local: Local{
			Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")},
			Ports:     PortRange{Min: 40000, Max: 40000},
		},
		Conntrack:     Conntrack{Capacity: 2048, Timeouts: defaultTimeouts, GCInterval: defaultGCInterval},
		SYNProtection: defaultSYNProtection,
		DSR:           defaultDSR,
		Log:           Log{Level: "debug", Format: "json"},
		API:           API{Socket: DefaultAPISocket},
		State:         State{PinPath: DefaultPinPath},
		HA:            aloneOn("eth0"),
		Sync:          defaultSync,
		BGP:           defaultBGP,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
}

// TestMarshalRoundTrip guards against the yaml tags on the exported types
// and the field names known to the decoder drifting apart.
func TestMarshalRoundTrip(t *testing.T) {
	want := referenceConfig()
	want.Services[0].Backends[1].Weight = 0
	want.Services[0].Backends[1].Port = 8080
	want.SYNProtection = SYNProtection{Mode: SYNAuthOff, Threshold: 7, VerifiedFor: time.Hour,
		HalfOpen: HalfOpenBudget{Max: 3, MaxPerService: 0, Action: HalfOpenDrop}}
	want.DSR = DSR{EncapSource: netip.MustParseAddr("172.19.0.5"), GUEPort: 5555,
		DecapSources: []netip.Addr{netip.MustParseAddr("172.19.0.6"), netip.MustParseAddr("172.19.0.7")}}
	data, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Marshal(c)): %v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v\nyaml:\n%s", got, want, data)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v, want an error naming %s", err, missing)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("interfaces: []\nlog: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Load(bad) = %v, want an error naming %s", err, bad)
	}
	// The problems stay inspectable through the wrapping.
	if ps := problemsOf(t, err); len(ps) != 3 {
		t.Errorf("got %d problems, want 3: %v", len(ps), err)
	}
}

func TestServiceKey(t *testing.T) {
	tests := []struct {
		s    Service
		want string
	}{
		{Service{VIP: netip.MustParseAddr("172.19.0.10"), Port: 80, Protocol: ident.TCP}, "172.19.0.10:80/tcp"},
		{Service{VIP: netip.MustParseAddr("10.1.2.3"), Port: 53, Protocol: ident.UDP}, "10.1.2.3:53/udp"},
	}
	for _, tt := range tests {
		if got := tt.s.Key().String(); got != tt.want {
			t.Errorf("Key() = %q, want %q", got, tt.want)
		}
	}
}

func TestErrorFormatsOneProblemPerLine(t *testing.T) {
	e := &Error{Problems: []Problem{
		{Path: "services[0].port", Msg: "70000 is not a port (1-65535)"},
		{Msg: "configuration is empty"},
	}}
	want := "services[0].port: 70000 is not a port (1-65535)\nconfiguration is empty"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestLoadOnlyRegularFiles: a FIFO at the configuration path is refused at
// once instead of blocking the reader (the daemon reads the file on every
// change and reload).
func TestLoadOnlyRegularFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "xdplb.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Digest(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Digest of a FIFO: %v, want a refusal", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Digest of a FIFO blocked")
	}
}

// TestLoadOnlyTrustedFiles: a configuration someone else could have
// written is refused: it names programs the daemon runs as root.
func TestLoadOnlyTrustedFiles(t *testing.T) {
	write := func(dir string, mode os.FileMode) string {
		path := filepath.Join(dir, "xdplb.yaml")
		data, err := os.ReadFile("testdata/reference.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if _, err := Load(write(t.TempDir(), 0o644)); err != nil {
		t.Errorf("a file of root's, 0644: %v", err)
	}
	if _, err := Load(write(t.TempDir(), 0o666)); err == nil || !strings.Contains(err.Error(), "writable by group and others") {
		t.Errorf("a file anyone may write: %v, want a refusal", err)
	}
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(write(shared, 0o600)); err == nil || !strings.Contains(err.Error(), "which is writable by group and others") {
		t.Errorf("a file in a directory anyone may write: %v, want a refusal", err)
	}
}
