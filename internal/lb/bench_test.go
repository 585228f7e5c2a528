package lb

import (
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
)

// counter is a Writer that only counts writes: the reconciler's own cost.
type counter struct{ writes int }

func (c *counter) SetService(ident.Service, datapath.Service) error      { c.writes++; return nil }
func (c *counter) DeleteService(ident.Service, bool) error               { c.writes++; return nil }
func (c *counter) WriteRing(uint32, []uint32) error                      { c.writes++; return nil }
func (c *counter) SetBackend(uint32, uint32, netip.AddrPort, bool) error { c.writes++; return nil }
func (c *counter) ClearBackend(uint32) error                             { c.writes++; return nil }
func (c *counter) ResetServiceTraffic(uint32) error                      { c.writes++; return nil }
func (c *counter) ResetBackendTraffic(uint32) error                      { c.writes++; return nil }
func (c *counter) SetBackendLoad(uint32, uint32, uint64) error           { c.writes++; return nil }

// manyServices is 1,000 round-robin services of 100 backends each.
func manyServices() []config.Service {
	out := make([]config.Service, 1000)
	for i := range out {
		s := config.Service{
			Name: fmt.Sprintf("svc%d", i), VIP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
			Port: 80, Protocol: ident.TCP, Scheduler: "rr",
		}
		for j := 0; j < 100; j++ {
			s.Backends = append(s.Backends, config.Backend{
				Address: netip.AddrFrom4([4]byte{10, 1 + byte(j), byte(i >> 8), byte(i)}), Port: 8080, Weight: 1,
			})
		}
		out[i] = s
	}
	return out
}

// writers returns the counting writer and, as root, a real datapath.
func writers(b *testing.B) map[string]func() Writer {
	w := map[string]func() Writer{"counting": func() Writer { return &counter{} }}
	if os.Geteuid() == 0 {
		w["datapath"] = func() Writer {
			dp, err := datapath.Load(datapath.Options{ConntrackCapacity: 1024})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { dp.Close() })
			return dp
		}
	}
	return w
}

func BenchmarkApply1000x100(b *testing.B) {
	services := manyServices()
	for name, newWriter := range writers(b) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				w := newWriter()
				bal := New(w)
				b.StartTimer()
				if err := bal.Apply(services); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOneBackendChange(b *testing.B) {
	services := manyServices()
	for name, newWriter := range writers(b) {
		b.Run(name, func(b *testing.B) {
			rec := &recorder{}
			w := newWriter()
			bal := New(struct{ Writer }{w})
			if err := bal.Apply(services); err != nil {
				b.Fatal(err)
			}
			changed := make([]config.Service, len(services))
			copy(changed, services)
			changed[500] = with(services[500], services[500].Backends[:99]...)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				next := changed
				if i%2 == 1 {
					next = services
				}
				bal.w = &tee{w, rec}
				if err := bal.Apply(next); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(rec.take()))/float64(b.N), "writes/op")
		})
	}
}

// tee records every write it passes on.
type tee struct {
	Writer
	rec *recorder
}

func (t *tee) SetService(k ident.Service, s datapath.Service) error {
	t.rec.SetService(k, s)
	return t.Writer.SetService(k, s)
}
func (t *tee) WriteRing(o uint32, ids []uint32) error {
	t.rec.WriteRing(o, ids)
	return t.Writer.WriteRing(o, ids)
}
func (t *tee) SetBackend(id, svc uint32, a netip.AddrPort, d bool) error {
	t.rec.SetBackend(id, svc, a, d)
	return t.Writer.SetBackend(id, svc, a, d)
}
func (t *tee) ClearBackend(id uint32) error {
	t.rec.ClearBackend(id)
	return t.Writer.ClearBackend(id)
}
func (t *tee) ResetBackendTraffic(id uint32) error {
	t.rec.ResetBackendTraffic(id)
	return t.Writer.ResetBackendTraffic(id)
}

// BenchmarkHealthFlipMaglev100 is the work between the owner learning that
// one backend of a 100-backend Maglev service went down (or came back) and
// the service pointing at its new ring: the ring build and the writes.
func BenchmarkHealthFlipMaglev100(b *testing.B) {
	backends := make([]config.Backend, 100)
	for i := range backends {
		backends[i] = be(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)}), 80).String(), 1)
	}
	s := svc("web", "172.19.0.10:80", ident.TCP, "maglev", backends...)
	down := map[ident.Backend]bool{s.BackendKey(backends[42]): true}
	for name, w := range writers(b) {
		b.Run(name, func(b *testing.B) {
			bal := New(w())
			if err := bal.Apply([]config.Service{s}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				flip := down
				if i%2 == 1 {
					flip = nil
				}
				if err := bal.SetHealth(flip); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
