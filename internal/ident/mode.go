package ident

import "fmt"

// XDPMode is how the XDP program hooks into an interface.
type XDPMode string

const (
	// ModeAuto tries native (driver) mode and falls back to generic.
	ModeAuto XDPMode = "auto"
	// ModeNative runs in the driver, before an skb exists: the fast path.
	ModeNative XDPMode = "native"
	// ModeGeneric runs after the skb is built; slow, but works everywhere.
	ModeGeneric XDPMode = "generic"
)

// XDPModes lists the modes a configuration may ask for.
var XDPModes = []XDPMode{ModeAuto, ModeNative, ModeGeneric}

// ParseXDPMode reads a mode's name.
func ParseXDPMode(s string) (XDPMode, error) {
	for _, m := range XDPModes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("%q is not an XDP mode (accepted: auto, native, generic)", s)
}
