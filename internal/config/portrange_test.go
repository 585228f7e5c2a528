package config

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		want    PortRange
		wantErr string
	}{
		{in: "10000-19999", want: PortRange{10000, 19999}},
		{in: "10000", want: PortRange{10000, 10000}},
		{in: " 1 - 65535 ", want: PortRange{1, 65535}},
		{in: "abc", wantErr: `"abc" is not a port range (expected "min-max"`},
		{in: "", wantErr: `"" is not a port range`},
		{in: "1-", wantErr: `"1-" is not a port range`},
		{in: "-5", wantErr: `"-5" is not a port range`},
		{in: "+1-5", wantErr: `"+1-5" is not a port range`},
		{in: "1-2-3", wantErr: `"1-2-3" is not a port range`},
		{in: "0x10-0x20", wantErr: `"0x10-0x20" is not a port range`},
		{in: "20000-10000", wantErr: `"20000-10000" is not a port range: 20000 is greater than 10000`},
		{in: "0-5", wantErr: `"0-5" is not a port range: 0 is not a port (1-65535)`},
		{in: "1-70000", wantErr: `"1-70000" is not a port range: 70000 is not a port (1-65535)`},
		{in: "99999999999999999999", wantErr: "99999999999999999999 is not a port (1-65535)"},
	}
	for _, tt := range tests {
		got, err := parsePortRange(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("parsePortRange(%q): %v", tt.in, err)
		case tt.wantErr == "" && got != tt.want:
			t.Errorf("parsePortRange(%q) = %v, want %v", tt.in, got, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parsePortRange(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestPortRangeStringAndSize(t *testing.T) {
	tests := []struct {
		r    PortRange
		str  string
		size int
	}{
		{PortRange{10000, 19999}, "10000-19999", 10000},
		{PortRange{80, 80}, "80-80", 1},
		{PortRange{1, 65535}, "1-65535", 65535},
		{PortRange{2, 1}, "2-1", 0},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.str {
			t.Errorf("%#v.String() = %q, want %q", tt.r, got, tt.str)
		}
		if got := tt.r.Size(); got != tt.size {
			t.Errorf("%#v.Size() = %d, want %d", tt.r, got, tt.size)
		}
	}
}

func TestPortRangeYAML(t *testing.T) {
	var v struct {
		A, B PortRange
	}
	if err := yaml.Unmarshal([]byte("a: 10000-19999\nb: 443\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != (PortRange{10000, 19999}) || v.B != (PortRange{443, 443}) {
		t.Errorf("got %+v", v)
	}
	for _, bad := range []string{"a: 0-5\n", "a: [1, 2]\n"} {
		if err := yaml.Unmarshal([]byte(bad), &v); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Unmarshal(%q) error = %v, want one naming line 1", bad, err)
		}
	}
	out, err := yaml.Marshal(PortRange{10000, 19999})
	if err != nil || string(out) != "10000-19999\n" {
		t.Errorf("Marshal = %q, %v", out, err)
	}
}
