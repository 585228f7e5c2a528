package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// recorder is a Writer that logs every call as a readable line and fails
// the calls whose line starts with failOn.
type recorder struct {
	calls  []string
	failOn string
}

var errInjected = errors.New("injected failure")

func (r *recorder) record(format string, args ...any) error {
	call := fmt.Sprintf(format, args...)
	r.calls = append(r.calls, call)
	if r.failOn != "" && strings.HasPrefix(call, r.failOn) {
		return fmt.Errorf("%s: %w", call, errInjected)
	}
	return nil
}

// take returns the calls recorded so far and starts a new log.
func (r *recorder) take() []string {
	calls := r.calls
	r.calls = nil
	return calls
}

func (r *recorder) SetService(key ident.Service, svc datapath.Service) error {
	call := fmt.Sprintf("SetService %s id=%d ring=%d+%d", key, svc.ID, svc.Ring.Offset, svc.Ring.Len)
	if svc.Index != datapath.IndexCounter {
		call += fmt.Sprintf(" index=%d", svc.Index)
	}
	if svc.Persist != 0 {
		call += fmt.Sprintf(" persist=%s", svc.Persist)
	}
	if svc.TOA {
		call += " toa"
	}
	return r.record("%s", call)
}

func (r *recorder) DeleteService(key ident.Service, vipInUse bool) error {
	return r.record("DeleteService %s vipInUse=%t", key, vipInUse)
}

func (r *recorder) WriteRing(offset uint32, ids []uint32) error {
	return r.record("WriteRing %d %v", offset, ids)
}

func (r *recorder) SetBackend(id, _ uint32, addr netip.AddrPort, drained bool) error {
	if drained {
		return r.record("SetBackend %d %s drained", id, addr)
	}
	return r.record("SetBackend %d %s", id, addr)
}

func (r *recorder) ClearBackend(id uint32) error {
	return r.record("ClearBackend %d", id)
}

func (r *recorder) ResetServiceTraffic(id uint32) error {
	return r.record("ResetServiceTraffic %d", id)
}

func (r *recorder) ResetBackendTraffic(id uint32) error {
	return r.record("ResetBackendTraffic %d", id)
}

func (r *recorder) SetBackendLoad(id, weight uint32, load uint64) error {
	return r.record("SetBackendLoad %d weight=%d load=%d", id, weight, load)
}

var _ Writer = (*recorder)(nil)
