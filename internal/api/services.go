package api

import (
	"errors"
	"net/netip"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

// Errors a Source returns from Change for the API to map to status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
)

// ServiceView is a configured service with its runtime state.
type ServiceView struct {
	Name        string        `json:"name"`
	VIP         string        `json:"vip"`
	Port        uint16        `json:"port"`
	Protocol    string        `json:"protocol"`
	Scheduler   string        `json:"scheduler"`
	Persistence time.Duration `json:"persistence_ns"`
	// PersistenceNetmask is the prefix length persistence groups clients
	// by; 0: each address alone.
	PersistenceNetmask uint8 `json:"persistence_netmask,omitempty"`
	// Forwarding is how packets reach the backends: fullnat, or direct
	// server return (dsr-l2, dsr-ipip, dsr-gue).
	Forwarding string `json:"forwarding"`
	// ClientAddress is how backends learn the client's address: none, or
	// toa (a TCP option).
	ClientAddress string        `json:"client_address"`
	Backends      []BackendView `json:"backends"`
	// Fallback takes new connections while no backend can.
	Fallback *BackendView `json:"fallback,omitempty"`
}

// Key is the service's identity, parsed back from its wire form.
func (v ServiceView) Key() ident.Service {
	vip, _ := netip.ParseAddr(v.VIP)
	proto, _ := ident.ParseProtocol(v.Protocol)
	return ident.Service{VIP: vip, Port: v.Port, Proto: proto}
}

// BackendView is a configured backend with its runtime state.
type BackendView struct {
	Address string `json:"address"`
	Port    uint16 `json:"port"`
	Weight  uint32 `json:"weight"`
	// Up is false while health checks hold the backend out of rotation.
	Up bool `json:"up"`
	// Since is when Up last changed (zero: never checked or no checks).
	Since time.Time `json:"since,omitzero"`
	// Reason says why the last check failed, if it did.
	Reason string `json:"reason,omitempty"`
}

// ReloadResult says what a reload changed, or would change.
type ReloadResult struct {
	// DryRun is true when nothing was applied: the result says what a
	// reload would do.
	DryRun bool `json:"dry_run,omitempty"`
	// Changes lists every difference between the running configuration
	// and the file, field by field.
	Changes []Change `json:"changes,omitempty"`
	// Applied lists what took effect, e.g. "services", "local".
	Applied []string `json:"applied"`
	// NeedRestart lists changed settings that only a restart applies.
	NeedRestart []string `json:"need_restart,omitempty"`
}

// Change is one difference a reload applies: what (a service, a backend
// of one, a setting), which field, and its value before and after (empty
// where it did not exist).
type Change struct {
	What  string `json:"what"`
	Field string `json:"field,omitempty"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
	// Restart is true for a setting only a restart applies.
	Restart bool `json:"needs_restart,omitempty"`
}

// Editor is the part of a Source that changes the configuration.
type Editor interface {
	// Services lists the services as configured, with runtime state.
	Services() []ServiceView
	// Change applies edit to a copy of the running configuration, then
	// validates it (a *config.Error lists every problem), applies the
	// difference to the datapath and saves it to the configuration file,
	// so a restart or reload keeps it. edit returns ErrNotFound or
	// ErrConflict (wrapped, with a message) for requests that name a
	// service or backend that does not, or does already, exist.
	Change(edit func(*config.Config) error) error
	// Reload re-reads the configuration file and applies the difference;
	// with dryRun it only says what the difference is.
	Reload(dryRun bool) (ReloadResult, error)
	// Zero restarts the counters that Stats shows from zero, for the
	// service ref names or, if ref is nil, for every service (as ipvsadm
	// -Z). It returns ErrNotFound (wrapped) if ref names no service.
	Zero(ref *ident.Ref) error
}
