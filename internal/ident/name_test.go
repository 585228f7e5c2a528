package ident

import "testing"

// TestValidName: every valid name can be named again: ParseRef reads it
// back as that name, never as an address.
func TestValidName(t *testing.T) {
	for _, name := range []string{"web", "db1", "cafe", "web-v2.eu", "a_b+c@d", "172.19.0.99x"} {
		if err := ValidName(name); err != nil {
			t.Errorf("ValidName(%q): %v", name, err)
			continue
		}
		if r, err := ParseRef(name); err != nil || r.Name != name {
			t.Errorf("ParseRef(%q) = %+v, %v; want the name back", name, r, err)
		}
	}
	for _, name := range []string{"", "172.19.0.99", "1.2.3.4", "a b", "a/b", "a:b", "a\nb", string(make([]byte, 65))} {
		if err := ValidName(name); err == nil {
			t.Errorf("ValidName(%q) accepted", name)
		}
	}
}
