package ident

import (
	"net/netip"
	"testing"
)

var refSeeds = []string{
	"172.19.0.10:80", "172.19.0.10:53/udp", "172.19.0.10:80/TCP", "[2001:db8::1]:443/tcp", "2001:db8::1",
	"web", "web-v2.eu", "a+b@c_d.e", "172.19.0.10", "172.19.0.10:", "172.19.0.10:0", "172.19.0.10:99999",
	"172.19.0.1o:80", "172.19.0.10:80/icmp", "web/v2", "db:5432", "a\nb", "with space", "", ":80", "[::1]",
	"[fe80::1%eth0]:80", "::ffff:172.19.0.10", "[::ffff:172.19.0.10]:80", "172.19.0.10:080", "1.2.3.4:+80",
}

// FuzzParseRef: ParseRef never panics, and a reference it accepts is
// written by String in a form that parses back to the same reference.
func FuzzParseRef(f *testing.F) {
	for _, s := range refSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseRef(s)
		if err != nil {
			return
		}
		if (ref.Name == "") == (ref.Addr == netip.AddrPort{}) {
			t.Fatalf("ParseRef(%q) = %+v: want a name or an address, not both or neither", s, ref)
		}
		if ref.Name != "" && ValidName(ref.Name) != nil {
			t.Fatalf("ParseRef(%q) accepted the invalid name %q", s, ref.Name)
		}
		if ref.Name == "" && ref.Addr.Port() == 0 {
			t.Fatalf("ParseRef(%q) = %v: an address without a port", s, ref)
		}
		again, err := ParseRef(ref.String())
		if err != nil || again != ref {
			t.Fatalf("ParseRef(%q) = %+v, written %q, which parses to %+v, %v", s, ref, ref.String(), again, err)
		}
	})
}

// FuzzParseAddrPort: ParseAddrPort never panics, accepts no zone, and
// what it accepts, written back, parses to the same address and port.
func FuzzParseAddrPort(f *testing.F) {
	for _, s := range refSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := ParseAddrPort("backend", s)
		if err != nil {
			return
		}
		if !ap.Addr().IsValid() || ap.Addr().Zone() != "" || ap.Addr().Is4In6() {
			t.Fatalf("ParseAddrPort(%q) = %v", s, ap)
		}
		written := ap.String()
		if ap.Port() == 0 {
			written = ap.Addr().String()
		}
		again, err := ParseAddrPort("backend", written)
		if err != nil || again != ap {
			t.Fatalf("ParseAddrPort(%q) = %v, written %q, which parses to %v, %v", s, ap, written, again, err)
		}
	})
}
