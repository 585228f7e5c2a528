package ident

import (
	"fmt"
	"net/netip"
	"unicode/utf8"
)

// MaxNameLen bounds a service's name: listings align on it, and logs and
// metric labels carry it.
const MaxNameLen = 64

// ValidName checks a service name: 1 to 64 characters among letters,
// digits and ". _ - + @". Names show in listings, logs and metric labels,
// so they must not carry spaces, control characters or the separators
// listings use (a newline in a name could forge a line of `xdplb list`),
// and must not look like a VIP:PORT reference.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a name cannot be empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("%q is not valid UTF-8", name)
	case utf8.RuneCountInString(name) > MaxNameLen:
		return fmt.Errorf("name is %d characters long, more than %d", utf8.RuneCountInString(name), MaxNameLen)
	}
	for _, c := range name {
		if !nameChar(c) {
			return fmt.Errorf("%q may hold only letters, digits and . _ - + @ (not %q)", name, c)
		}
	}
	// A name that reads as an address could never be named: a reference
	// that parses as an address is one.
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("%q is an address, which would be read as one wherever a service is named", name)
	}
	return nil
}

func nameChar(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '.', c == '_', c == '-', c == '+', c == '@':
		return true
	}
	return false
}
