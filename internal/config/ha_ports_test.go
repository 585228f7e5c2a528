package config

import (
	"slices"
	"testing"
)

// TestAllocPorts: each node of a cluster gets its own slice of
// local.ports; a node alone gets all of it.
func TestAllocPorts(t *testing.T) {
	tests := []struct {
		name  string
		ports PortRange
		nodes uint8
		want  []PortRange // node id 1, 2, ...
	}{
		{"alone", PortRange{10000, 19999}, 1, []PortRange{{10000, 19999}}},
		{"two", PortRange{10000, 19999}, 2, []PortRange{{10000, 14999}, {15000, 19999}}},
		{"three, the last takes the remainder", PortRange{10000, 19999}, 3, []PortRange{{10000, 13332}, {13333, 16665}, {16666, 19999}}},
		{"three of ten", PortRange{1, 10}, 3, []PortRange{{1, 3}, {4, 6}, {7, 10}}},
		{"two of an odd range", PortRange{40000, 40004}, 2, []PortRange{{40000, 40001}, {40002, 40004}}},
		{"one port each", PortRange{65533, 65535}, 3, []PortRange{{65533, 65533}, {65534, 65534}, {65535, 65535}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := referenceConfig()
			c.Local.Ports, c.HA.Nodes = tt.ports, tt.nodes
			var got []PortRange
			for id := range tt.nodes {
				c.HA.NodeID = id + 1
				got = append(got, c.AllocPorts())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("AllocPorts() for node ids 1..%d = %v, want %v", tt.nodes, got, tt.want)
			}
		})
	}
	c := referenceConfig()
	c.HA.Nodes = 2
	if got := c.AllocPorts(); got != c.Local.Ports {
		t.Errorf("AllocPorts() without a node id = %v, want all of %v", got, c.Local.Ports)
	}
}

// TestPortRangeSlice: the n slices of a range cover it exactly, in order,
// without overlap, and only the last is larger than the others.
func TestPortRangeSlice(t *testing.T) {
	ranges := []PortRange{{1, 65535}, {10000, 19999}, {32768, 60999}, {100, 100}, {7, 13}, {65000, 65535}}
	for _, r := range ranges {
		for n := 1; n <= min(r.Size(), maxNodes); n++ {
			next := int(r.Min)
			size := r.Size() / n
			for i := range n {
				s := r.Slice(i, n)
				if int(s.Min) != next || s.Size() < 1 {
					t.Fatalf("%v.Slice(%d, %d) = %v: does not start at %d or is empty", r, i, n, s, next)
				}
				if (i < n-1 && s.Size() != size) || (i == n-1 && s.Size() < size) {
					t.Fatalf("%v.Slice(%d, %d) = %v: %d ports, the others have %d", r, i, n, s, s.Size(), size)
				}
				next = int(s.Max) + 1
			}
			if next != int(r.Max)+1 {
				t.Fatalf("%v in %d slices: they end at %d", r, n, next-1)
			}
		}
	}
}
