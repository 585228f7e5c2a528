package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"

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
	// IPv6Forwarding is, per interface, what turning IPv6 forwarding on
	// changed there (forwarding, and accept_ra); set once an IPv6
	// service is configured.
	IPv6Forwarding map[string]hostnet.IPv6Forwarding `json:"ipv6_forwarding,omitempty"`
	// Neighbours are the neighbour entries xdplb asked the kernel for.
	Neighbours []hostnet.Hop `json:"neighbours,omitempty"`
	// HandedOverMaster says the daemon that wrote it handed over (SIGUSR2)
	// as the vrrp master: its successor resumes as master. A daemon that
	// crashed leaves it false, and its successor starts as a backup,
	// since a peer has probably taken over meanwhile.
	HandedOverMaster bool `json:"handed_over_master,omitempty"`
	// BGPDrained and BGPDrainAll are the operator's BGP drains (xdplb
	// bgp drain): a hand-over keeps them, a stop forgets them.
	BGPDrained  []netip.Addr `json:"bgp_drained,omitempty"`
	BGPDrainAll bool         `json:"bgp_drain_all,omitempty"`
}

type ownedAddr struct {
	Interface string     `json:"interface"`
	Address   netip.Addr `json:"address"`
}

func readOwned(path string) (owned, error) {
	o := owned{Forwarding: map[string]string{}}
	// Never through a link, and only a file of root's (or the daemon's
	// user's): the record says what xdplb may remove from the host.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("read %s: %w (a link there is refused; remove it)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return o, fmt.Errorf("read %s: %w", path, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.Mode().IsRegular() || ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return o, fmt.Errorf("read %s: not a regular file of root's that only root may write (mode %s); "+
			"xdplb trusts it to say what it may remove from the host: remove it if you did not make it", path, fi.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return o, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("read %s: %w (it records what an earlier xdplb added to the host; "+
			"if it is damaged, remove it and check the addresses on the interfaces by hand)", path, err)
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
