package datapath

import "testing"

// TestReasonsNamed: every reason the program counts has a name, a meaning
// and a way back from its name.
func TestReasonsNamed(t *testing.T) {
	seen := map[string]bool{}
	for r := 0; r < ReasonCount; r++ {
		name := Reason(r).String()
		if _, ok := reasonInfo[xdplbReason(r)]; !ok {
			t.Errorf("reason %d has no name", r)
			continue
		}
		if seen[name] {
			t.Errorf("name %q used twice", name)
		}
		seen[name] = true
		if Describe(name) == "" {
			t.Errorf("%s has no meaning", name)
		}
		if back, ok := ReasonByName(name); !ok || back != Reason(r) {
			t.Errorf("ReasonByName(%q) = %v, %v", name, back, ok)
		}
	}
}
