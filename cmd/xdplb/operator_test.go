package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
)

// TestCheck: `xdplb check` validates a file as serve would, says what is
// wrong with it, and touches nothing.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	// lo exists everywhere; check looks the interfaces up as serve does.
	if err := os.WriteFile(good, []byte(strings.Replace(testConfig, "interfaces: [eth0]", "interfaces: [lo]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, "/nonexistent.sock", "check", "--config", good); !strings.Contains(got, good+" is valid: 2 services, 3 backends") {
		t.Errorf("check of a valid file: %q", got)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("interfaces: []\nservices:\n  - {vip: 172.19.0.10, port: 70000}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "/nonexistent.sock", "services[0].port: 70000 is not a port", "check", "-c", bad)
	noLink := filepath.Join(dir, "nolink.yaml")
	if err := os.WriteFile(noLink, []byte(strings.Replace(testConfig, "interfaces: [eth0]", "interfaces: [xdplbnosuch0]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "/nonexistent.sock", "interfaces[0]: xdplbnosuch0", "check", "-c", noLink)
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("check left files behind: %v", entries)
	}
}

// TestVersion: `xdplb version` and `--version` say which build and which
// datapath layout this is.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		got := mustRun(t, "/nonexistent.sock", args...)
		if !strings.HasPrefix(got, "xdplb ") || !strings.Contains(got, "datapath layout "+strconv.FormatUint(uint64(datapath.LayoutVersion), 10)) {
			t.Errorf("xdplb %s: %q", args[0], got)
		}
	}
}

// TestIpvsadmHabits: -n is accepted, and the socket can come from the
// environment.
func TestIpvsadmHabits(t *testing.T) {
	_, socket := startDaemon(t)
	mustRun(t, socket, "list", "-n")
	t.Setenv(socketEnv, socket)
	root := newRootCmd()
	root.SetArgs([]string{"list"})
	root.SetOut(new(strings.Builder))
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Errorf("list with the socket from $%s: %v", socketEnv, err)
	}
}

// TestReloadDryRun: the changes a reload would make are printed one a line
// and nothing is applied.
func TestReloadDryRun(t *testing.T) {
	f, socket := startDaemon(t)
	f.reload = api.ReloadResult{Changes: []api.Change{
		{What: "service web (172.19.0.10:80/tcp)", Field: "scheduler", Old: "rr", New: "maglev"},
		{What: "backend 172.19.0.4:80 of service web", New: "172.19.0.4:80"},
	}}
	got := mustRun(t, socket, "reload", "--dry-run")
	want := "dry run: a reload would change:\n" +
		"  service web (172.19.0.10:80/tcp): scheduler rr -> maglev\n" +
		"  backend 172.19.0.4:80 of service web added\n"
	if got != want {
		t.Errorf("reload --dry-run:\n%s\nwant\n%s", got, want)
	}
	f.reload = api.ReloadResult{}
	if got := mustRun(t, socket, "reload", "--dry-run"); got != "dry run: the file matches what runs\n" {
		t.Errorf("reload --dry-run with nothing to change: %q", got)
	}
}

// TestListOneService: `xdplb list SERVICE` lists that service alone, by
// address or name; one that does not exist is an error.
func TestListOneService(t *testing.T) {
	_, socket := startDaemon(t)
	for _, arg := range []string{"web", "172.19.0.10:80", "172.19.0.10:80/tcp"} {
		got := mustRun(t, socket, "list", arg)
		if !strings.Contains(got, "172.19.0.10:80 rr") || strings.Contains(got, ":53") {
			t.Errorf("list %s:\n%s", arg, got)
		}
	}
	wantErr(t, socket, "service nope not found", "list", "nope")
}

// TestListTimeout: `xdplb list --timeout` prints the timeouts in force as
// ipvsadm -L --timeout does, then the new-connection rate the FIN timeout
// allows each backend.
func TestListTimeout(t *testing.T) {
	_, socket := startDaemon(t)
	got := mustRun(t, socket, "list", "--timeout")
	want := "Timeout (tcp tcpfin udp): 900 120 300\nTimeout (syn_sent close): 5 10\n" +
		"Local ports per backend: 10000; new connections from distinct client ports: about 83/s per backend (ports / tcpfin)\n"
	if got != want {
		t.Errorf("list --timeout:\n%s\nwant\n%s", got, want)
	}
}

// TestZero: `xdplb zero` restarts the listed counters, of one service or
// all; a service that does not exist is an error.
func TestZero(t *testing.T) {
	_, socket := startDaemon(t)
	if got := mustRun(t, socket, "zero", "web"); got != "counters of web restart from zero\n" {
		t.Errorf("zero web: %q", got)
	}
	if got := mustRun(t, socket, "list", "--stats"); strings.Contains(got, "123") {
		t.Errorf("list --stats after zero still shows the old totals:\n%s", got)
	}
	wantErr(t, socket, "service nope not found", "zero", "nope")
	if got := mustRun(t, socket, "zero"); got != "counters of every service restart from zero\n" {
		t.Errorf("zero: %q", got)
	}
}

// TestCompletion: SERVICE arguments complete from the running daemon.
func TestCompletion(t *testing.T) {
	_, socket := startDaemon(t)
	for _, args := range [][]string{{"__complete", "service", "edit", ""}, {"__complete", "conn", "list", "--service", ""}} {
		got := mustRun(t, socket, args...)
		for _, want := range []string{"web", "172.19.0.10:80/tcp", "172.19.0.10:53/udp"} {
			if !strings.Contains(got, want+"\n") {
				t.Errorf("xdplb %s: %q lacks %s", strings.Join(args, " "), got, want)
			}
		}
	}
}

// TestMan: `xdplb man DIR` writes a page per command.
func TestMan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	mustRun(t, "/nonexistent.sock", "man", dir)
	for _, page := range []string{"xdplb.1", "xdplb-serve.1", "xdplb-list.1", "xdplb-backend-add.1"} {
		data, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil || !strings.Contains(string(data), ".SH NAME") {
			t.Errorf("%s: %v", page, err)
		}
	}
}

// TestPersistenceNetmaskFlag: -M reaches the service, as ipvsadm's does,
// and is refused without persistence.
func TestPersistenceNetmaskFlag(t *testing.T) {
	f, socket := startDaemon(t)
	mustRun(t, socket, "service", "add", "172.19.0.20:80", "--persistence", "300", "-M", "24")
	if s := f.service(t, "172.19.0.20:80/tcp"); s.PersistenceNetmask != 24 {
		t.Errorf("persistence netmask /%d, want /24", s.PersistenceNetmask)
	}
	wantErr(t, socket, "has no effect without persistence", "service", "add", "172.19.0.21:80", "-M", "24")
}

// TestForwardingFlag: --forwarding reaches the service, shows in the
// service's line and in the list's Forward column, goes back to fullnat
// on edit, and is refused where the configuration refuses it.
func TestForwardingFlag(t *testing.T) {
	f, socket := startDaemon(t)
	out := mustRun(t, socket, "service", "add", "172.19.0.20:80", "--forwarding", "dsr-l2", "--name", "direct")
	if out != "added service TCP 172.19.0.20:80 rr dsr-l2 (direct), 0 backends\n" {
		t.Errorf("service add: %q", out)
	}
	if s := f.service(t, "172.19.0.20:80/tcp"); s.Forwarding != config.ForwardingDSRL2 {
		t.Errorf("forwarding %q, want dsr-l2", s.Forwarding)
	}
	mustRun(t, socket, "backend", "add", "direct", "172.19.0.7")
	if out := mustRun(t, socket, "list", "direct"); !strings.Contains(out, "\n  -> 172.19.0.7:80                Route   1      up") {
		t.Errorf("list direct:\n%s", out)
	}
	wantErr(t, socket, "port: 8080 differs from the service's port 80: dsr-l2 cannot rewrite ports",
		"backend", "add", "direct", "172.19.0.8:8080")
	out = mustRun(t, socket, "service", "edit", "direct", "--forwarding", "fullnat")
	if out != "changed service TCP 172.19.0.20:80 rr (direct), 1 backend\n" {
		t.Errorf("service edit: %q", out)
	}
	if s := f.service(t, "172.19.0.20:80/tcp"); s.Forwarding != config.ForwardingFullNAT {
		t.Errorf("forwarding %q, want fullnat", s.Forwarding)
	}
	wantErr(t, socket, `forwarding: "dr" is not a forwarding mode (accepted: fullnat, dsr-l2, dsr-ipip, dsr-gue)`,
		"service", "add", "172.19.0.21:80", "--forwarding", "dr")
	wantErr(t, socket, "dsr.encap_source: missing", "service", "edit", "direct", "--forwarding", "dsr-ipip")
	wantErr(t, socket, "client_address: toa is for forwarding fullnat", "service", "edit", "web", "--forwarding", "dsr-gue")
}

// TestClientAddressFlag: --client-address reaches the service, shows in
// the service's line, goes back to none on edit, and is refused for udp.
func TestClientAddressFlag(t *testing.T) {
	f, socket := startDaemon(t)
	out := mustRun(t, socket, "service", "add", "172.19.0.20:80", "--client-address", "toa")
	if out != "added service TCP 172.19.0.20:80 rr toa, 0 backends\n" {
		t.Errorf("service add: %q", out)
	}
	if s := f.service(t, "172.19.0.20:80/tcp"); s.ClientAddress != config.ClientAddressTOA {
		t.Errorf("client address %q, want toa", s.ClientAddress)
	}
	out = mustRun(t, socket, "service", "edit", "172.19.0.20:80", "--client-address", "none")
	if out != "changed service TCP 172.19.0.20:80 rr, 0 backends\n" {
		t.Errorf("service edit: %q", out)
	}
	if s := f.service(t, "172.19.0.20:80/tcp"); s.ClientAddress != config.ClientAddressNone {
		t.Errorf("client address %q, want none", s.ClientAddress)
	}
	wantErr(t, socket, `client_address: "proxy" is not a client address mode (accepted: none, toa)`,
		"service", "add", "172.19.0.21:80", "--client-address", "proxy")
	wantErr(t, socket, "client_address: toa is for tcp services", "service", "add", "172.19.0.21:53/udp", "--client-address", "toa")
}
