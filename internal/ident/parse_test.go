package ident

import (
	"net/netip"
	"strings"
	"testing"
)

// TestParseIPv6: an IPv6 address with a port is written in brackets, and
// without a port in brackets or bare; a zone is no address of a service.
func TestParseIPv6(t *testing.T) {
	refs := []struct {
		in   string
		want Ref
		err  string
	}{
		{in: "[2001:db8::10]:80/tcp", want: Ref{Addr: netip.MustParseAddrPort("[2001:db8::10]:80"), Proto: TCP}},
		{in: "[2001:db8::10]:53/udp", want: Ref{Addr: netip.MustParseAddrPort("[2001:db8::10]:53"), Proto: UDP}},
		{in: "[2001:db8::10]:80", want: Ref{Addr: netip.MustParseAddrPort("[2001:db8::10]:80")}},
		// Bare, the last group is the address's, not a port.
		{in: "2001:db8::10:80", err: "is missing the port"},
		{in: "[2001:db8::10]", err: "is missing the port"},
		{in: "[2001:db8::10]80", err: "is not an IP address"},
		{in: "[fe80::10%eth0]:80", err: `"fe80::10%eth0" is not an IP address`},
	}
	for _, tc := range refs {
		got, err := ParseRef(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseRef(%q) = %+v, %v; want an error containing %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if got := (Ref{Addr: netip.MustParseAddrPort("[2001:db8::10]:80"), Proto: TCP}).String(); got != "[2001:db8::10]:80/tcp" {
		t.Errorf("an IPv6 reference is written %q, want [2001:db8::10]:80/tcp", got)
	}

	for in, want := range map[string]netip.AddrPort{
		"[2001:db8::1]:8080": netip.MustParseAddrPort("[2001:db8::1]:8080"),
		"[2001:db8::1]":      netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), 0),
		"2001:db8::1":        netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), 0),
	} {
		if got, err := ParseAddrPort("backend", in); err != nil || got != want {
			t.Errorf("ParseAddrPort(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseAddrPort("backend", "[2001:db8::1]:0"); err == nil || !strings.Contains(err.Error(), `"0" is not a port`) {
		t.Errorf("ParseAddrPort([2001:db8::1]:0): %v, want a refused port", err)
	}
}
