package daemon

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"

	"github.com/xdplb/xdplb/internal/hostnet"
)

// ownedStore keeps the ownership record and its file in step. The owner
// goroutine changes addresses and forwarding; the neighbour keeper adds
// the entries it creates from its own goroutine, so the record has its
// own lock, and every change is on disk before it is acted on further.
type ownedStore struct {
	path string
	mu   sync.Mutex
	rec  owned
}

// ownedPath is where the record of a daemon with this API socket lives.
func ownedPath(socket string) string {
	return filepath.Join(filepath.Dir(socket), "xdplb.owned.json")
}

// openOwned reads what a predecessor recorded, if anything.
func openOwned(path string) (*ownedStore, error) {
	rec, err := readOwned(path)
	if err != nil {
		return nil, err
	}
	return &ownedStore{path: path, rec: rec}, nil
}

// snapshot returns a copy of the record.
func (s *ownedStore) snapshot() owned {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clone()
}

// clone copies the record; s.mu must be held.
func (s *ownedStore) clone() owned {
	out := s.rec
	out.Addresses = slices.Clone(s.rec.Addresses)
	out.Neighbours = slices.Clone(s.rec.Neighbours)
	out.BGPDrained = slices.Clone(s.rec.BGPDrained)
	out.Forwarding = make(map[string]string, len(s.rec.Forwarding))
	for k, v := range s.rec.Forwarding {
		out.Forwarding[k] = v
	}
	out.IPv6Forwarding = maps.Clone(s.rec.IPv6Forwarding)
	return out
}

// update changes the record and writes it, if the change changed it.
func (s *ownedStore) update(change func(*owned)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.clone()
	change(&s.rec)
	if reflect.DeepEqual(before, s.rec) {
		return nil
	}
	return s.rec.write(s.path)
}

// addNeighbours records neighbour entries xdplb created, in one write.
func (s *ownedStore) addNeighbours(hops []hostnet.Hop) error {
	return s.update(func(o *owned) {
		for _, h := range hops {
			if !slices.Contains(o.Neighbours, h) {
				o.Neighbours = append(o.Neighbours, h)
			}
		}
	})
}

// remove deletes the record once everything in it is undone.
func (s *ownedStore) remove() error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
