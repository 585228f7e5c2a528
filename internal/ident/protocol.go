package ident

import (
	"fmt"
	"strings"
)

// Protocol is a layer-4 protocol, numbered as IP headers carry it.
type Protocol uint8

const (
	TCP Protocol = 6
	UDP Protocol = 17
)

// Protocols lists the protocols a service may have.
var Protocols = []Protocol{TCP, UDP}

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("protocol-%d", uint8(p))
}

// ParseProtocol reads "tcp" or "udp", in any case, since "TCP" is how
// people write it.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("%q is not a protocol (accepted: tcp, udp)", s)
}

// MarshalText writes the protocol's name, so JSON and YAML show "tcp".
func (p Protocol) MarshalText() ([]byte, error) {
	if p != TCP && p != UDP {
		return nil, fmt.Errorf("protocol %d has no name", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads a protocol's name.
func (p *Protocol) UnmarshalText(b []byte) error {
	v, err := ParseProtocol(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
