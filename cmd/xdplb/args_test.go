package main

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
)

// TestIPv6Arguments checks that IPv6 VIPs and backends, in brackets with
// a port, reach the daemon, which refuses what it cannot serve with the
// words a configuration file gets, and takes the rest.
func TestIPv6Arguments(t *testing.T) {
	_, err := config.Parse([]byte("interfaces: [eth0]\nlocal: {addresses: [172.19.0.5]}\nservices: [{vip: \"2001:db8::1\", port: 80}]\n"))
	const noLocal = "2001:db8::1 is IPv6 with IPv6 backends, and local.addresses has no IPv6 address to reach them from"
	if err == nil || !strings.Contains(err.Error(), "services[0].vip: "+noLocal) {
		t.Fatalf("the configuration file says %v; the test expects %q", err, noLocal)
	}
	const nat46 = "2001:db8::1 is IPv6, and the vip 172.19.0.10 is IPv4 with IPv4 backends: translating IPv4 clients to IPv6 backends (NAT46) is not supported"
	f, socket := startDaemon(t)
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"vip: " + noLocal, []string{"service", "add", "[2001:db8::1]:80"}},
		{"vip: " + noLocal, []string{"service", "add", "[2001:db8::1]:53/udp"}},
		{"address: " + nat46, []string{"backend", "add", "web", "[2001:db8::1]:8080"}},
		{"address: " + nat46, []string{"backend", "add", "web", "2001:db8::1"}},
		{"service [2001:db8::1]:80 not found", []string{"backend", "add", "[2001:db8::1]:80", "172.19.0.9"}},
		{`service "[2001:db8::1]" is missing the port`, []string{"service", "remove", "[2001:db8::1]"}},
	} {
		wantErr(t, socket, tc.want, tc.args...)
	}

	f.mu.Lock()
	f.cfg.Local.Addresses = append(f.cfg.Local.Addresses, netip.MustParseAddr("2001:db8::5"))
	f.mu.Unlock()
	mustRun(t, socket, "service", "add", "[2001:db8::1]:80")
	mustRun(t, socket, "backend", "add", "[2001:db8::1]:80/tcp", "[2001:db8::2]:8080")
	mustRun(t, socket, "backend", "add", "[2001:db8::1]:80", "2001:db8::3")
	if out := mustRun(t, socket, "list"); !strings.Contains(out, "[2001:db8::1]:80 rr") || !strings.Contains(out, "-> [2001:db8::2]:8080") {
		t.Errorf("list writes the IPv6 service without brackets, or not at all:\n%s", out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.cfg.Services, func(s config.Service) bool { return s.Name == "[2001:db8::1]:80/tcp" })
	if i < 0 {
		t.Fatalf("no service [2001:db8::1]:80/tcp after adding it: %+v", f.cfg.Services)
	}
	var got []string
	for _, b := range f.cfg.Services[i].Backends {
		got = append(got, b.AddrPort().String())
	}
	if want := []string{"[2001:db8::2]:8080", "[2001:db8::3]:80"}; !slices.Equal(got, want) {
		t.Errorf("backends of [2001:db8::1]:80/tcp: %q, want %q", got, want)
	}
}

// TestConnListFilter checks that a --service naming nothing is an error,
// not an empty listing, and that mistyped filters are caught.
func TestConnListFilter(t *testing.T) {
	_, socket := startDaemon(t)
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"xdplb daemon: service nope not found", []string{"conn", "list", "--service", "nope"}},
		{"xdplb daemon: service 172.19.0.10:81 not found", []string{"conn", "list", "--service", "172.19.0.10:81"}},
		{"xdplb daemon: service 172.19.0.10:80/udp not found", []string{"conn", "list", "--service", "172.19.0.10:80/udp", "--json"}},
		{`--service: service "172.19.0.10" is missing the port`, []string{"conn", "list", "--service", "172.19.0.10"}},
		{`--backend: backend "172.19.0.2:http": "http" is not a port (1-65535)`, []string{"conn", "list", "--backend", "172.19.0.2:http"}},
		{"xdplb daemon: backend 172.19.0.99 not found", []string{"conn", "list", "--backend", "172.19.0.99"}},
	} {
		wantErr(t, socket, tc.want, tc.args...)
	}
	got := mustRun(t, socket, "conn", "list", "--service", "web", "--backend", "172.19.0.3")
	if lines := strings.Split(strings.TrimSpace(got), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "FIN_WAIT") {
		t.Errorf("conn list --service web --backend 172.19.0.3:\n%s", got)
	}
}

// TestConnListExitStatus runs the command as a process: a service that
// does not exist makes it exit 1, saying so.
func TestConnListExitStatus(t *testing.T) {
	_, socket := startDaemon(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$", "--", "--socket", socket, "conn", "list", "--service", "nope")
	cmd.Env = append(os.Environ(), "XDPLB_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1; output:\n%s", err, out)
	}
	if want := "xdplb: xdplb daemon: service nope not found\n"; string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

// TestMainProcess is main, when TestConnListExitStatus runs the test
// binary as xdplb.
func TestMainProcess(t *testing.T) {
	if os.Getenv("XDPLB_TEST_MAIN") != "1" {
		t.Skip("runs as a child process only")
	}
	for i, a := range os.Args {
		if a == "--" {
			os.Args = append([]string{"xdplb"}, os.Args[i+1:]...)
			break
		}
	}
	main()
	os.Exit(0)
}

func TestReloadNothingChanged(t *testing.T) {
	f, socket := startDaemon(t)
	for _, tc := range []struct {
		res  api.ReloadResult
		want string
	}{
		{api.ReloadResult{}, "reloaded: nothing changed\n"},
		{api.ReloadResult{Applied: []string{}}, "reloaded: nothing changed\n"},
		{api.ReloadResult{NeedRestart: []string{"xdp_mode"}},
			"reloaded: nothing applied\nchanged but only applied by a restart: xdp_mode\n"},
		{api.ReloadResult{Applied: []string{"services"}}, "reloaded: applied services\n"},
	} {
		f.reload = tc.res
		if out := mustRun(t, socket, "reload"); out != tc.want {
			t.Errorf("reload of %+v: %q, want %q", tc.res, out, tc.want)
		}
	}
}

func TestParsePersistence(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"300", 300 * time.Second, ""},
		{"0", 0, ""},
		{"5m", 5 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"soon", 0, `--persistence "soon": want seconds (300) or a duration (5m, 1h30m)`},
		{"-5s", 0, `--persistence "-5s": want seconds`},
		{"99999999999", 0, "--persistence 99999999999 is out of range (0 for none, or 1s to 24h)"},
		{"9999999999h", 0, "--persistence 9999999999h is out of range (0 for none, or 1s to 24h)"},
		{"1e300", 0, `--persistence "1e300": want seconds`},
	} {
		got, err := parsePersistence(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parsePersistence(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("parsePersistence(%q) = %v, %v; want an error %q", tc.in, got, err, tc.err)
		}
	}
}

// FuzzArgs: the CLI's own argument parsing never panics, and what it
// accepts is what the daemon is then asked about: an address with a port
// for a new service, a duration of no less than zero for persistence.
func FuzzArgs(f *testing.F) {
	for _, s := range []string{"172.19.0.10:80", "172.19.0.10:53/udp", "[2001:db8::1]:80", "web", "web:80", "300",
		"5m", "99999999999", "9999999999h", "-1", "1e300", "", "172.19.0.10:80/", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ref, err := vipPortArg(s); err == nil && (ref.Name != "" || !ref.Addr.IsValid() || ref.Addr.Port() == 0) {
			t.Fatalf("vipPortArg(%q) = %+v", s, ref)
		}
		if d, err := parsePersistence(s); err == nil && d < 0 {
			t.Fatalf("parsePersistence(%q) = %v", s, d)
		}
		checkService(s)
		checkConnFilter(s, s)
	})
}
