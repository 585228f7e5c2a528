package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/health"
)

const healthBase = `interfaces: [eth0]
local: {addresses: [172.19.0.5]}
services:
  - vip: 172.19.0.10
    port: 80
`

func TestHealthCheckParse(t *testing.T) {
	cfg, err := Parse([]byte(healthBase + `    health_check:
      kind: http
      path: /healthz
      interval: 500ms
      fall: 3
      expect_status: ["200", "204-299"]
      expect: ok
    on_backend_down: expire
    fallback: {address: 172.19.0.4}
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
        health_check: {kind: tcp}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	hc := s.HealthCheck
	if hc.Kind != "http" || hc.Path != "/healthz" || hc.Interval != 500*time.Millisecond || hc.Fall != 3 ||
		hc.Rise != health.DefaultRise || hc.Timeout != health.DefaultTimeout || hc.Expect != "ok" ||
		len(hc.ExpectStatus) != 2 || hc.ExpectStatus[1] != (health.StatusRange{Min: 204, Max: 299}) {
		t.Errorf("service check %+v", hc)
	}
	if s.Check(s.Backends[0]) != hc || s.Check(s.Backends[1]).Kind != "tcp" {
		t.Errorf("backend checks: %+v, %+v", s.Check(s.Backends[0]), s.Check(s.Backends[1]))
	}
	if s.OnBackendDown != ExpireConnections || s.Fallback == nil || s.Fallback.Port != 80 || s.Fallback.Weight != 1 {
		t.Errorf("on_backend_down %q fallback %+v", s.OnBackendDown, s.Fallback)
	}
	plain, err := Parse([]byte(healthBase))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Services[0].HealthCheck != nil || plain.Services[0].OnBackendDown != KeepConnections {
		t.Errorf("defaults: check %v, on_backend_down %q", plain.Services[0].HealthCheck, plain.Services[0].OnBackendDown)
	}
}

func TestHealthCheckProblems(t *testing.T) {
	cases := []struct{ yaml, path, msg string }{
		{"    health_check: {kind: icmp}\n", "services[0].health_check.kind", "icmp"},
		{"    health_check: {kind: tcp, rise: 0}\n", "services[0].health_check.rise", "not a count"},
		{"    health_check: {kind: http, expect_status: [\"700\"]}\n", "services[0].health_check.expect_status[0]", "700"},
		{"    health_check: {kind: tcp, path: /x}\n", "services[0].health_check.path", ""},
		{"    health_check: {kind: tcp, color: red}\n", "services[0].health_check.color", "unknown field"},
		{"    on_backend_down: reset\n", "services[0].on_backend_down", `"reset" is neither`},
		{"    fallback: {address: 172.19.0.2}\n    backends: [{address: 172.19.0.2}]\n", "services[0].fallback", "also a backend"},
		{"    backends: [{address: 172.19.0.2, health_check: {kind: exec}}]\n", "services[0].backends[0].health_check.command", ""},
		{"    health_check: {kind: exec, command: [check.sh]}\n", "services[0].health_check.command[0]", `"check.sh" is not an absolute path`},
		{"    health_check: {kind: exec, command: [/nonexistent/check, --quick]}\n", "services[0].health_check.command[0]", `"/nonexistent/check" does not exist`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(healthBase + c.yaml))
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Errorf("%q: error %v, want *Error", c.yaml, err)
			continue
		}
		found := false
		for _, p := range cerr.Problems {
			if p.Path == c.path && strings.Contains(p.Msg, c.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: problems %v, want one at %s containing %q", c.yaml, cerr.Problems, c.path, c.msg)
		}
	}
}

// TestHealthCheckUnsafeProgram checks that an exec check whose program
// others could change is refused with the YAML path of the program.
func TestHealthCheckUnsafeProgram(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "check")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(prog, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte(healthBase + "    backends:\n      - address: 172.19.0.2\n        health_check: {kind: exec, command: [" + prog + "]}\n"))
	want := fmt.Sprintf("services[0].backends[0].health_check.command[0]: %q is writable by group and others (mode 0777); a check runs as root", prog)
	if err == nil || err.Error() != want {
		t.Errorf("Parse = %v\nwant %s", err, want)
	}
	if err := os.Chmod(prog, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte(healthBase + "    health_check: {kind: exec, command: [" + prog + "]}\n")); err != nil {
		t.Errorf("Parse with the program made safe: %v", err)
	}
}
