package ident

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Ref is how a person names a service: by its address (VIP:PORT, with an
// optional /tcp or /udp) or by its name.
type Ref struct {
	// Name is set when the reference is a name.
	Name string
	// Addr is set when the reference is an address.
	Addr netip.AddrPort
	// Proto is the protocol given after the slash; zero when none was.
	Proto Protocol
}

// RefForms says how a service may be named, for error messages.
const RefForms = "want VIP:PORT, VIP:PORT/tcp|udp or a service name"

// ParseRef reads a service reference. Something that starts like an
// address but is broken is an error saying what is wrong with it, not a
// name: "172.19.0.10:8o" must not silently match nothing.
func ParseRef(s string) (Ref, error) {
	if s == "" {
		return Ref{}, errors.New("service is empty: " + RefForms)
	}
	addr, proto, hasProto := strings.Cut(s, "/")
	host, port, hasPort := splitHostPort(addr)
	ip, ipErr := parseIP(host)
	if ipErr != nil {
		// No name has a bracket: "[" starts an IPv6 address.
		if hasProto || hasPort && looksLikeIP(host) || strings.HasPrefix(s, "[") {
			return Ref{}, fmt.Errorf("service %q: %v; %s", s, ipErr, RefForms)
		}
		if err := ValidName(s); err != nil {
			return Ref{}, fmt.Errorf("service %q is neither an address nor a name (%v); %s", s, err, RefForms)
		}
		return Ref{Name: s}, nil
	}
	if !hasPort {
		return Ref{}, fmt.Errorf("service %q is missing the port; %s", s, RefForms)
	}
	n, err := parsePort(port)
	if err != nil {
		return Ref{}, fmt.Errorf("service %q: %v", s, err)
	}
	r := Ref{Addr: netip.AddrPortFrom(ip, n)}
	if hasProto {
		if r.Proto, err = ParseProtocol(proto); err != nil {
			return Ref{}, fmt.Errorf("service %q: %v", s, err)
		}
	}
	return r, nil
}

// Matches reports whether the reference names the service with key k and
// name. An address without a protocol matches either protocol.
func (r Ref) Matches(k Service, name string) bool {
	if r.Name != "" {
		return r.Name == name
	}
	return r.Addr == k.AddrPort() && (r.Proto == 0 || r.Proto == k.Proto)
}

func (r Ref) String() string {
	switch {
	case r.Name != "":
		return r.Name
	case r.Proto != 0:
		return fmt.Sprintf("%s/%s", r.Addr, r.Proto)
	}
	return r.Addr.String()
}

// ParseAddrPort reads IP or IP:PORT (an IPv6 address with a port in
// brackets); the port is 0 when none is given. what names the argument
// in errors, e.g. "backend".
func ParseAddrPort(what, s string) (netip.AddrPort, error) {
	host, port, hasPort := splitHostPort(s)
	ip, err := parseIP(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s %q: %v", what, s, err)
	}
	if !hasPort {
		return netip.AddrPortFrom(ip, 0), nil
	}
	n, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s %q: %v", what, s, err)
	}
	return netip.AddrPortFrom(ip, n), nil
}

// splitHostPort splits "host:port", "[v6]:port", "[v6]", "v6" or "host".
// A bare IPv6 address has colons but no port.
func splitHostPort(s string) (host, port string, hasPort bool) {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		inside, after, closed := strings.Cut(rest, "]")
		if !closed {
			return s, "", false
		}
		port, hasPort = strings.CutPrefix(after, ":")
		if !hasPort && after != "" {
			return s, "", false
		}
		return inside, port, hasPort
	}
	if strings.Count(s, ":") == 1 {
		host, port, _ = strings.Cut(s, ":")
		return host, port, true
	}
	return s, "", false
}

func parseIP(host string) (netip.Addr, error) {
	if host == "" {
		return netip.Addr{}, errors.New("the address is missing")
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", host)
	}
	return ip.Unmap(), nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}

// looksLikeIP tells a mistyped address ("172.19.0.1o", "2001:db8::x")
// from a name: only digits, dots, hex letters and colons.
func looksLikeIP(s string) bool {
	digits := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' || c == ':' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return digits
}
