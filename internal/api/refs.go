package api

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xdplb/xdplb/internal/config"
)

// refError is a service or backend in the path that cannot be parsed.
type refError struct{ msg string }

func (e *refError) Error() string { return e.msg }

// serviceRef names a service in a path: VIP:PORT, VIP:PORT/PROTO or its
// name.
type serviceRef struct {
	raw   string
	addr  netip.AddrPort // valid when raw is an address
	proto config.Protocol
}

const serviceRefForms = "want VIP:PORT, VIP:PORT/tcp|udp or a service name"

func parseServiceRef(s string) (serviceRef, error) {
	ref := serviceRef{raw: s}
	if s == "" {
		return ref, &refError{"service is empty: " + serviceRefForms}
	}
	addr, proto, hasProto := strings.Cut(s, "/")
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		// Something that starts like an address is a mistyped one, not
		// a name: say what is wrong with it.
		if why := addressProblem(addr); why != "" {
			return ref, &refError{fmt.Sprintf("service %q: %s; %s", s, why, serviceRefForms)}
		}
		return ref, nil // a name
	}
	if ap.Port() == 0 {
		return ref, &refError{fmt.Sprintf("service %q: 0 is not a port (1-65535); %s", s, serviceRefForms)}
	}
	switch p := config.Protocol(strings.ToLower(proto)); {
	case !hasProto:
		ref.proto = config.TCP
	case p == config.TCP || p == config.UDP:
		ref.proto = p
	default:
		return ref, &refError{fmt.Sprintf("service %q: protocol %q is neither tcp nor udp", s, proto)}
	}
	ref.addr = ap
	return ref, nil
}

// addressProblem says why s, which failed to parse as IP:PORT, is a
// broken address, or returns "" if it does not look like one at all.
func addressProblem(s string) string {
	if _, err := netip.ParseAddr(s); err == nil {
		return s + " is missing the port"
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return ""
	}
	host, port := s[:i], s[i+1:]
	if _, err := netip.ParseAddr(host); err != nil {
		return ""
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Sprintf("%q is not a port (1-65535)", port)
	}
	return ""
}

func (r serviceRef) String() string {
	if r.addr.IsValid() {
		return fmt.Sprintf("%s/%s", r.addr, r.proto)
	}
	return r.raw
}

// find returns the index of the service r names in c.
func (r serviceRef) find(c *config.Config) (int, error) {
	if r.addr.IsValid() {
		for i, s := range c.Services {
			if s.VIP == r.addr.Addr() && s.Port == r.addr.Port() && s.Protocol == r.proto {
				return i, nil
			}
		}
	}
	for i, s := range c.Services {
		if s.Name == r.raw {
			return i, nil
		}
	}
	return -1, notFound("service %s not found", r)
}

// backendRef names a backend in a path: IP:PORT, or IP for the service
// port.
type backendRef struct {
	addr netip.Addr
	port uint16 // 0: the service port
}

func parseBackendRef(s string) (backendRef, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return backendRef{addr: a}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return backendRef{}, &refError{fmt.Sprintf("backend %q: want IP:PORT, or IP meaning the service port", s)}
	}
	return backendRef{addr: ap.Addr(), port: ap.Port()}, nil
}

func (r backendRef) in(s config.Service) netip.AddrPort {
	port := r.port
	if port == 0 {
		port = s.Port
	}
	return netip.AddrPortFrom(r.addr, port)
}

// find returns the index of the backend r names in s.
func (r backendRef) find(s config.Service) (int, error) {
	ap := r.in(s)
	for i, b := range s.Backends {
		if b.Address == ap.Addr() && b.Port == ap.Port() {
			return i, nil
		}
	}
	return -1, notFound("backend %s not in service %s", ap, s.Name)
}
