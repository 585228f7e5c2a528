package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PortRange is an inclusive range of ports. In YAML it is written as
// "min-max" or as a single port.
type PortRange struct{ Min, Max uint16 }

// String formats r the way the YAML expects it, e.g. "10000-19999".
func (r PortRange) String() string {
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// Size is the number of ports in r, or 0 if r is reversed.
func (r PortRange) Size() int {
	if r.Min > r.Max {
		return 0
	}
	return int(r.Max) - int(r.Min) + 1
}

// Slice returns the i-th (from 0) of n contiguous slices of r of equal
// size, the last one also taking the ports that do not divide evenly. It
// expects 0 <= i < n <= r.Size(); with fewer ports than slices, every
// slice but the last is empty (reversed).
func (r PortRange) Slice(i, n int) PortRange {
	size := r.Size() / n
	lo := int(r.Min) + i*size
	hi := lo + size - 1
	if i == n-1 {
		hi = int(r.Max)
	}
	return PortRange{Min: uint16(lo), Max: uint16(hi)}
}

// problem explains why r is unusable, or returns "" if it is fine.
// Parsing cannot produce such a range, but a Config built in Go can.
func (r PortRange) problem() string {
	switch {
	case r.Min == 0 || r.Max == 0:
		return fmt.Sprintf("%s is not a port range: 0 is not a port %s", r, portBounds)
	case r.Min > r.Max:
		return fmt.Sprintf("%s is not a port range: %d is greater than %d", r, r.Min, r.Max)
	}
	return ""
}

// UnmarshalYAML lets PortRange be decoded by yaml.Unmarshal directly,
// for callers that embed it in their own YAML types.
func (r *PortRange) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a port range such as \"10000-19999\", got %s", n.Line, describe(n))
	}
	v, err := parsePortRange(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*r = v
	return nil
}

// MarshalYAML writes the same "min-max" form that UnmarshalYAML reads,
// so a Config survives a yaml.Marshal/Parse round trip.
func (r PortRange) MarshalYAML() (any, error) {
	return r.String(), nil
}

// parsePortRange parses "min-max" or a single port.
func parsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
	if !isDigits(lo) || !isDigits(hi) {
		return PortRange{}, fmt.Errorf("%q is not a port range (expected \"min-max\" or a single port, e.g. \"10000-19999\")", s)
	}
	var r PortRange
	for _, p := range []struct {
		text string
		dst  *uint16
	}{{lo, &r.Min}, {hi, &r.Max}} {
		n, err := strconv.Atoi(p.text)
		if err != nil || n < 1 || n > 65535 {
			return PortRange{}, fmt.Errorf("%q is not a port range: %s is not a port %s", s, p.text, portBounds)
		}
		*p.dst = uint16(n)
	}
	if r.Min > r.Max {
		return PortRange{}, fmt.Errorf("%q is not a port range: %d is greater than %d", s, r.Min, r.Max)
	}
	return r, nil
}

// isDigits reports whether s is a non-empty run of ASCII digits. It keeps
// signs, spaces and hex out, which strconv.Atoi alone would not.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
