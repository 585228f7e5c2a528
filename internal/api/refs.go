package api

import (
	"fmt"
	"net/netip"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

// refError is a service or backend in the path that cannot be parsed.
type refError struct{ msg string }

func (e *refError) Error() string { return e.msg }

func parseServiceRef(s string) (ident.Ref, error) {
	ref, err := ident.ParseRef(s)
	if err != nil {
		return ref, &refError{err.Error()}
	}
	return ref, nil
}

// findService returns the index of the service ref names in c. An
// address without a protocol that matches both a TCP and a UDP service
// is refused rather than guessed.
func findService(c *config.Config, ref ident.Ref) (int, error) {
	found := -1
	for i, s := range c.Services {
		if !ref.Matches(s.Key(), s.Name) {
			continue
		}
		if found >= 0 {
			return -1, &refError{fmt.Sprintf("service %s is both %s and %s: add /tcp or /udp", ref, c.Services[found].Key(), s.Key())}
		}
		found = i
	}
	if found < 0 {
		return -1, notFound("service %s not found", ref)
	}
	return found, nil
}

// backendRef names a backend in a path: IP:PORT, or IP for the service
// port.
type backendRef struct {
	addr netip.Addr
	port uint16 // 0: the service port
}

func parseBackendRef(s string) (backendRef, error) {
	ap, err := ident.ParseAddrPort("backend", s)
	if err != nil {
		return backendRef{}, &refError{err.Error() + "; want IP:PORT, or IP meaning the service port"}
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
		if b.AddrPort() == ap {
			return i, nil
		}
	}
	return -1, notFound("backend %s not in service %s", ap, s.Name)
}
