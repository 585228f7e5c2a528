package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

// ServiceSpec is the body of POST /v1/services. Absent fields get the
// defaults a configuration file gives them: protocol tcp, scheduler rr,
// no persistence, forwarding fullnat, client address none, name
// VIP:PORT/PROTO.
type ServiceSpec struct {
	Name        string   `json:"name,omitempty"`
	VIP         string   `json:"vip"`
	Port        uint16   `json:"port"`
	Protocol    string   `json:"protocol,omitempty"`
	Scheduler   string   `json:"scheduler,omitempty"`
	Persistence Duration `json:"persistence,omitempty"`
	// PersistenceNetmask is the prefix length clients are grouped by for
	// persistence (ipvsadm -M); 0: each address alone.
	PersistenceNetmask uint8 `json:"persistence_netmask,omitempty"`
	// Forwarding is fullnat, dsr-l2, dsr-ipip or dsr-gue: how packets
	// reach the backends (with DSR, on the service's port only).
	Forwarding string `json:"forwarding,omitempty"`
	// ClientAddress is none or toa: whether backends get the client's
	// address in a TCP option (TCP services only).
	ClientAddress string        `json:"client_address,omitempty"`
	Backends      []BackendSpec `json:"backends,omitempty"`
}

// BackendSpec is a backend in a ServiceSpec or ServiceEdit, and the body
// of POST /v1/services/{service}/backends. Port defaults to the service
// port; an absent weight is 1, an explicit 0 means drained.
type BackendSpec struct {
	Address string  `json:"address"`
	Port    uint16  `json:"port,omitempty"`
	Weight  *uint32 `json:"weight,omitempty"`
}

// ServiceEdit is the body of PUT /v1/services/{service}: what is given
// changes, what is absent stays. Backends, if given, replaces the whole
// list (an empty list drains the service). The address and protocol of a
// service cannot change: remove it and add a new one.
type ServiceEdit struct {
	// Name, if empty, goes back to the default VIP:PORT/PROTO.
	Name        *string   `json:"name,omitempty"`
	Scheduler   *string   `json:"scheduler,omitempty"`
	Persistence *Duration `json:"persistence,omitempty"`
	// PersistenceNetmask, if given, replaces the prefix length (0: none).
	PersistenceNetmask *uint8 `json:"persistence_netmask,omitempty"`
	// Forwarding, if given, replaces the forwarding mode; empty is
	// fullnat. Connections already open keep the mode they opened with.
	Forwarding *string `json:"forwarding,omitempty"`
	// ClientAddress, if given, replaces none or toa; empty is none.
	ClientAddress *string        `json:"client_address,omitempty"`
	Backends      *[]BackendSpec `json:"backends,omitempty"`
}

// BackendEdit is the body of PUT /v1/services/{service}/backends/{backend}.
type BackendEdit struct {
	Weight *uint32 `json:"weight"`
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("300s", "5m"); it also reads a plain number as seconds, as
// ipvsadm's persistence timeout is given.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of seconds. A value
// too large for a time.Duration (about 292 years) is out of range, not
// wrapped around.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		v, err := time.ParseDuration(s)
		switch {
		case config.DurationTooLong(s):
			return &durationError{value: strconv.Quote(s), outOfRange: true}
		case err != nil:
			return &durationError{value: strconv.Quote(s)}
		}
		*d = Duration(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return &durationError{value: string(data)}
	}
	secs, err := strconv.ParseFloat(n.String(), 64)
	ns := secs * float64(time.Second)
	// float64(math.MaxInt64) rounds up to 2^63, itself out of range.
	if err != nil || !(ns >= math.MinInt64 && ns < math.MaxInt64) {
		return &durationError{value: n.String(), outOfRange: true}
	}
	*d = Duration(ns)
	return nil
}

// durationError is a value that is no duration, or too long a one;
// Duration is only used for persistence, so the handler reports it there.
type durationError struct {
	value      string
	outOfRange bool
}

func (e *durationError) Error() string {
	if e.outOfRange {
		return fmt.Sprintf("%s is out of range %s", e.value, config.PersistenceBounds)
	}
	return fmt.Sprintf("%s is not a duration (for example \"300s\", or 300 for seconds)", e.value)
}

// service turns the request into a configuration service with the
// defaults a configuration file would give it, or the problems that keep
// it from being one. What Validate checks is left to it.
func (req ServiceSpec) service() (config.Service, []Problem) {
	var ps []Problem
	svc := config.NewService()
	svc.Name, svc.Port, svc.Persistence = req.Name, req.Port, time.Duration(req.Persistence)
	svc.PersistenceNetmask = req.PersistenceNetmask
	if req.Scheduler != "" {
		svc.Scheduler = req.Scheduler
	}
	if req.Forwarding != "" {
		svc.Forwarding = req.Forwarding
	}
	if req.ClientAddress != "" {
		svc.ClientAddress = req.ClientAddress
	}
	if req.Protocol != "" {
		proto, err := ident.ParseProtocol(req.Protocol)
		if err != nil {
			ps = append(ps, Problem{Path: "protocol", Message: err.Error()})
		}
		svc.Protocol = proto
	}
	if req.VIP == "" {
		ps = append(ps, Problem{Path: "vip", Message: "missing (an IPv4 or IPv6 address is required)"})
	} else if ap, err := ident.ParseAddrPort("vip", req.VIP); err != nil || ap.Port() != 0 {
		ps = append(ps, Problem{Path: "vip", Message: fmt.Sprintf("%q is not an IP address", req.VIP)})
	} else {
		svc.VIP = ap.Addr()
	}
	bs, bps := backendSpecs("backends", req.Backends)
	ps = append(ps, bps...)
	svc.Backends = bs
	svc.FillDerived()
	return svc, ps
}

// backendSpecs turns request backends into configuration ones; a port of
// 0 is left for the caller to default to the service port.
func backendSpecs(path string, specs []BackendSpec) ([]config.Backend, []Problem) {
	var ps []Problem
	out := make([]config.Backend, 0, len(specs))
	for i, spec := range specs {
		p := "address"
		if path != "" {
			p = fmt.Sprintf("%s[%d].address", path, i)
		}
		b := config.NewBackend()
		b.Port = spec.Port
		if spec.Weight != nil {
			b.Weight = *spec.Weight
		}
		if spec.Address == "" {
			ps = append(ps, Problem{Path: p, Message: "missing (an IPv4 or IPv6 address is required)"})
		} else if ap, err := ident.ParseAddrPort("address", spec.Address); err != nil || ap.Port() != 0 {
			ps = append(ps, Problem{Path: p, Message: fmt.Sprintf("%q is not an IP address", spec.Address)})
		} else {
			b.Address = ap.Addr()
		}
		out = append(out, b)
	}
	return out, ps
}
