package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var defaultHalfOpen = defaultSYNProtection.HalfOpen

// synDoc is the minimal document with the given fields in a flow-style
// syn_protection section.
func synDoc(fields string) string {
	return minimal + "syn_protection: {" + fields + "}\n"
}

// TestParseSYNProtection: the section reads as written, and every field
// left out (or the whole section) takes its default.
func TestParseSYNProtection(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want SYNProtection
	}{
		{"absent", minimal, defaultSYNProtection},
		{"null", minimal + "syn_protection:\n", defaultSYNProtection},
		{"empty", synDoc(""), defaultSYNProtection},
		{"off", synDoc("mode: off"), SYNProtection{SYNAuthOff, 1000, time.Minute, defaultHalfOpen}},
		{"quoted off", synDoc(`mode: "off"`), SYNProtection{SYNAuthOff, 1000, time.Minute, defaultHalfOpen}},
		{"always", synDoc("mode: always"), SYNProtection{SYNAuthAlways, 1000, time.Minute, defaultHalfOpen}},
		{"threshold", synDoc("threshold: 10_000"), SYNProtection{SYNAuthAuto, 10000, time.Minute, defaultHalfOpen}},
		{"verified for", synDoc("verified_for: 90s"), SYNProtection{SYNAuthAuto, 1000, 90 * time.Second, defaultHalfOpen}},
		{"lowest", synDoc("mode: auto, threshold: 1, verified_for: 1s"), SYNProtection{SYNAuthAuto, 1, time.Second, defaultHalfOpen}},
		{"highest", synDoc("threshold: 10000000, verified_for: 24h"), SYNProtection{SYNAuthAuto, 10000000, 24 * time.Hour, defaultHalfOpen}},
		{"half open", synDoc("half_open: {max: 0, max_per_service: 500, action: drop}"),
			SYNProtection{SYNAuthAuto, 1000, time.Minute, HalfOpenBudget{Max: 0, MaxPerService: 500, Action: HalfOpenDrop}}},
		{"half open partly", synDoc("half_open: {max: 7}"),
			SYNProtection{SYNAuthAuto, 1000, time.Minute, HalfOpenBudget{Max: 7, MaxPerService: 10000, Action: HalfOpenChallenge}}},
		{"block style", minimal + "syn_protection:\n  mode: auto\n  threshold: 1000\n  verified_for: 60s\n", defaultSYNProtection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if c.SYNProtection != tt.want {
				t.Errorf("syn_protection = %+v, want %+v", c.SYNProtection, tt.want)
			}
		})
	}

	c, err := Load(filepath.Join("testdata", "syn_protection.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (SYNProtection{SYNAuthAlways, 500, 5 * time.Minute, defaultHalfOpen}); c.SYNProtection != want {
		t.Errorf("syn_protection.yaml: syn_protection = %+v, want %+v", c.SYNProtection, want)
	}
}

// TestSYNProtectionProblems: each broken syn_protection section yields
// exactly one problem, at its path, whether the decoder or Validate finds
// it; a number out of range reads the same from either.
func TestSYNProtectionProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		path string
		msg  string
	}{
		// Decoding.
		{"unknown field", synDoc("rate: 100"), "syn_protection.rate", "unknown field at line 3 (known fields: half_open, mode, threshold, verified_for)"},
		{"half open action", synDoc("half_open: {action: reset}"), "syn_protection.half_open.action", `"reset" is not an action (accepted: challenge, drop)`},
		{"half open max too high", synDoc("half_open: {max: 1000000001}"), "syn_protection.half_open.max", "1000000001 is not a bound (0 for no bound, or at most 1000000000 connections)"},
		{"half open per service negative", synDoc("half_open: {max_per_service: -1}"), "syn_protection.half_open.max_per_service", "-1 is not a bound (0 for no bound, or at most 1000000000 connections)"},
		{"half open unknown field", synDoc("half_open: {limit: 5}"), "syn_protection.half_open.limit", "unknown field at line 3 (known fields: action, max, max_per_service)"},
		{"not a mapping", minimal + "syn_protection: auto\n", "syn_protection", `expected a mapping, got string "auto"`},
		{"mode as list", synDoc("mode: [auto]"), "syn_protection.mode", "expected a string, got a list"},
		{"mode twice", minimal + "syn_protection:\n  mode: off\n  mode: auto\n", "syn_protection.mode", "set twice, at lines 4 and 5"},
		{"threshold 0", synDoc("threshold: 0"), "syn_protection.threshold", "0 is not a threshold (1-10000000 SYNs per second)"},
		{"threshold too high", synDoc("threshold: 10000001"), "syn_protection.threshold", "10000001 is not a threshold (1-10000000 SYNs per second)"},
		{"threshold negative", synDoc("threshold: -5"), "syn_protection.threshold", "-5 is not a threshold (1-10000000 SYNs per second)"},
		{"threshold not a number", synDoc("threshold: lots"), "syn_protection.threshold", `expected a threshold (1-10000000 SYNs per second), got string "lots"`},
		{"threshold fractional", synDoc("threshold: 2.5"), "syn_protection.threshold", "expected a threshold (1-10000000 SYNs per second), got number 2.5"},
		{"verified for not a duration", synDoc("verified_for: 60"), "syn_protection.verified_for", `"60" is not a duration (write it like 900s, 15m or 250ms)`},
		{"verified for past a Duration", synDoc("verified_for: 9999999999h"), "syn_protection.verified_for", "9999999999h is out of range (1s to 24h)"},

		// Validation.
		{"unknown mode", synDoc("mode: sometimes"), "syn_protection.mode", `"sometimes" is not a mode (accepted: off, always, auto)`},
		{"mode in capitals", synDoc("mode: Auto"), "syn_protection.mode", `"Auto" is not a mode (accepted: off, always, auto)`},
		{"empty mode", synDoc(`mode: ""`), "syn_protection.mode", `"" is not a mode (accepted: off, always, auto)`},
		{"mode as a YAML 1.1 boolean", synDoc("mode: no"), "syn_protection.mode", `"no" is not a mode (accepted: off, always, auto)`},
		{"verified for 0", synDoc("verified_for: 0s"), "syn_protection.verified_for", "0s is out of range (1s to 24h)"},
		{"verified for too short", synDoc("verified_for: 999ms"), "syn_protection.verified_for", "999ms is out of range (1s to 24h)"},
		{"verified for negative", synDoc("verified_for: -1m"), "syn_protection.verified_for", "-1m0s is out of range (1s to 24h)"},
		{"verified for too long", synDoc("verified_for: 25h"), "syn_protection.verified_for", "25h0m0s is out of range (1s to 24h)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p := onlyProblem(t, tt.yaml); p != (Problem{tt.path, tt.msg}) {
				t.Errorf("got problem %q,\nwant %q", p, Problem{tt.path, tt.msg})
			}
		})
	}
}

// TestValidateSYNProtection covers what only a section built in Go can
// get wrong: the zero value, and a threshold the decoder never passes.
func TestValidateSYNProtection(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *SYNProtection)
		want   []Problem
	}{
		{"defaults", func(s *SYNProtection) {}, nil},
		{"zero value", func(s *SYNProtection) { *s = SYNProtection{} }, []Problem{
			{"syn_protection.mode", `"" is not a mode (accepted: off, always, auto)`},
			{"syn_protection.threshold", "0 is not a threshold (1-10000000 SYNs per second)"},
			{"syn_protection.verified_for", "0s is out of range (1s to 24h)"},
			{"syn_protection.half_open.action", `"" is not an action (accepted: challenge, drop)`},
		}},
		{"half-open bound too high", func(s *SYNProtection) { s.HalfOpen.Max = 1_000_000_001 }, []Problem{
			{"syn_protection.half_open.max", "1000000001 is not a bound (0 for no bound, or at most 1000000000 connections)"},
		}},
		{"threshold too high", func(s *SYNProtection) { s.Threshold = 10_000_001 }, []Problem{
			{"syn_protection.threshold", "10000001 is not a threshold (1-10000000 SYNs per second)"},
		}},
		{"off still checks its other fields", func(s *SYNProtection) { s.Mode, s.VerifiedFor = SYNAuthOff, 48*time.Hour }, []Problem{
			{"syn_protection.verified_for", "48h0m0s is out of range (1s to 24h)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := referenceConfig()
			tt.mutate(&c.SYNProtection)
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

// TestRenderSYNProtection: Render writes the fields that differ from
// their defaults, and nothing for a section all of defaults, so that the
// file reads back as what runs.
func TestRenderSYNProtection(t *testing.T) {
	full, err := os.ReadFile(filepath.Join("testdata", "syn_protection.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		yaml       string
		has, lacks []string
	}{
		{"every field", string(full), []string{"syn_protection:\n  mode: always\n  threshold: 500\n  verified_for: 5m0s\n"}, nil},
		{"absent", minimal, nil, []string{"syn_protection"}},
		{"defaults spelled out", synDoc("mode: auto, threshold: 1000, verified_for: 1m"), nil, []string{"syn_protection"}},
		{"mode only", synDoc("mode: off"), []string{"syn_protection:\n  mode: off\n"}, []string{"threshold", "verified_for"}},
		{"threshold only", synDoc("threshold: 0x100"), []string{"syn_protection:\n  threshold: 256\n"}, []string{"mode", "verified_for"}},
		{"verified for only", synDoc("verified_for: 1h30m"), []string{"syn_protection:\n  verified_for: 1h30m0s\n"}, []string{"mode", "threshold"}},
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

// TestSaveServicesKeepsSYNProtection: a write-back of the services leaves
// the syn_protection section as the operator wrote it.
func TestSaveServicesKeepsSYNProtection(t *testing.T) {
	section := "syn_protection:\n  mode: always   # we are a target\n  verified_for: 10m\n"
	path, cfg := writeAndLoad(t, minimal+section+"services: []\n")
	next := cfg.Clone()
	s := NewService()
	s.VIP, s.Port = cfg.Local.Addresses[0].Next(), 443
	s.FillDerived()
	next.Services = append(next.Services, s)
	if _, err := SaveServices(path, next.Services, digestOf(t, path)); err != nil {
		t.Fatal(err)
	}
	saved, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if saved.SYNProtection != cfg.SYNProtection {
		t.Errorf("saved syn_protection %+v, want %+v", saved.SYNProtection, cfg.SYNProtection)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "mode: always # we are a target\n  verified_for: 10m\n") {
		t.Errorf("saved file lost the section as written:\n%s", data)
	}
	if strings.Contains(string(data), "threshold") {
		t.Errorf("saved file has the default threshold written out:\n%s", data)
	}
}

// TestDiffSYNProtection: every change to syn_protection is reported, and
// a reload applies it.
func TestDiffSYNProtection(t *testing.T) {
	tests := []struct {
		old, new string
		want     []string
	}{
		{minimal, synDoc("mode: always"), []string{"syn_protection.mode: auto -> always"}},
		{synDoc("mode: off, threshold: 100"), synDoc("verified_for: 5m"), []string{
			"syn_protection.mode: off -> auto",
			"syn_protection.threshold: 100 -> 1000",
			"syn_protection.verified_for: 1m0s -> 5m0s",
		}},
		{synDoc("threshold: 1000"), minimal, nil},
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
