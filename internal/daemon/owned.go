package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/xdplb/xdplb/internal/atomicfile"
	"github.com/xdplb/xdplb/internal/hostnet"
)

// owned records what the daemon changed on the host, in a file beside the
// API socket. A daemon that exits keeping the datapath (for a restart or
// upgrade) leaves it behind, so its successor knows which addresses are
// xdplb's to remove on the final stop and which forwarding settings to put
// back, although it finds them already in place. A daemon killed with
// SIGKILL leaves it too, for the next one to finish its work.
type owned struct {
	Addresses  []ownedAddr       `json:"addresses"`
	Forwarding map[string]string `json:"forwarding"` // interface -> value before xdplb
	// Neighbours are the neighbour entries xdplb asked the kernel for.
	Neighbours []hostnet.Hop `json:"neighbours,omitempty"`
}

type ownedAddr struct {
	Interface string     `json:"interface"`
	Address   netip.Addr `json:"address"`
}

func readOwned(path string) (owned, error) {
	o := owned{Forwarding: map[string]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("read %s: %w", path, err)
	}
	if o.Forwarding == nil {
		o.Forwarding = map[string]string{}
	}
	return o, nil
}

func (o owned) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	// Written as root in a directory others may share: never through a
	// link someone planted there.
	return atomicfile.Write(path, b, 0o600)
}

// hasAddress reports whether xdplb added a on any interface.
func (o owned) hasAddress(a netip.Addr) bool {
	for _, x := range o.Addresses {
		if x.Address == a {
			return true
		}
	}
	return false
}
