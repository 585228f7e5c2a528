package bgp

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/uuid"
)

func TestDiff(t *testing.T) {
	a := netip.MustParsePrefix("10.99.0.10/32")
	b := netip.MustParsePrefix("10.99.0.11/32")
	c := netip.MustParsePrefix("2001:db8::10/128")
	held := func(backup bool) route { return route{attrs: Attrs{Backup: backup}, id: uuid.New()} }
	primary, backup := Attrs{}, Attrs{Backup: true}

	tests := []struct {
		name     string
		current  map[netip.Prefix]route
		desired  map[netip.Prefix]Attrs
		announce []netip.Prefix
		withdraw []netip.Prefix
	}{
		{"nothing", nil, nil, nil, nil},
		{"first announcement, sorted", nil, map[netip.Prefix]Attrs{c: primary, b: primary, a: backup}, []netip.Prefix{a, b, c}, nil},
		{"same again sends nothing", map[netip.Prefix]route{a: held(false), b: held(true)}, map[netip.Prefix]Attrs{a: primary, b: backup}, nil, nil},
		{"gone is withdrawn", map[netip.Prefix]route{a: held(false), b: held(false)}, map[netip.Prefix]Attrs{a: primary}, nil, []netip.Prefix{b}},
		{"everything gone", map[netip.Prefix]route{a: held(false), c: held(false)}, map[netip.Prefix]Attrs{}, nil, []netip.Prefix{a, c}},
		{"backup to primary is announced again, not withdrawn", map[netip.Prefix]route{a: held(true)}, map[netip.Prefix]Attrs{a: primary}, []netip.Prefix{a}, nil},
		{"mixed", map[netip.Prefix]route{a: held(false), b: held(false)}, map[netip.Prefix]Attrs{b: backup, c: primary}, []netip.Prefix{b, c}, []netip.Prefix{a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := diff(tt.current, tt.desired)
			if !slices.Equal(p.announce, tt.announce) || !slices.Equal(p.withdraw, tt.withdraw) {
				t.Errorf("diff = announce %v withdraw %v; want announce %v withdraw %v", p.announce, p.withdraw, tt.announce, tt.withdraw)
			}
		})
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, tt := range []struct {
		prefix string
		ok     bool
	}{
		{"10.99.0.10/32", true},
		{"10.99.0.0/24", true},
		{"2001:db8::/64", true},
		{"10.99.0.10/24", false},
		{"::ffff:10.0.0.1/128", false},
	} {
		err := checkPrefix(netip.MustParsePrefix(tt.prefix))
		if (err == nil) != tt.ok {
			t.Errorf("checkPrefix(%s) = %v, want ok %v", tt.prefix, err, tt.ok)
		}
	}
	if checkPrefix(netip.Prefix{}) == nil {
		t.Error("checkPrefix accepted the zero prefix")
	}
}
