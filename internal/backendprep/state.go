package backendprep

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/xdplb/xdplb/internal/atomicfile"
	"github.com/xdplb/xdplb/internal/hostnet"
)

// DefaultStatePath is where apply records what it changed.
const DefaultStatePath = "/var/lib/xdplb/backend-prep.json"

// stateVersion is the layout of the state file; a file of another
// layout is refused rather than misread.
const stateVersion = 1

// State is what apply changed on the host, with the values it replaced:
// exactly what undo puts back. Something the host had already is never
// in it.
type State struct {
	Version int `json:"version"`
	// Modes are the modes apply prepared the host for, first first.
	Modes []Mode `json:"modes"`
	// Addresses are the VIPs apply put on lo.
	Addresses []Address `json:"addresses,omitempty"`
	// Sysctls are the net.ipv4.conf settings apply changed, in the order
	// it changed them.
	Sysctls []Sysctl `json:"sysctls,omitempty"`
	// Links are the tunnel devices apply made or set up.
	Links []Link `json:"links,omitempty"`
	// GUEPorts are the UDP ports apply opened a kernel GUE receiver on.
	GUEPorts []uint16 `json:"gue_ports,omitempty"`
}

// Address is an address apply put on an interface.
type Address struct {
	Interface string     `json:"interface"`
	Address   netip.Addr `json:"address"`
}

func (a Address) String() string {
	return fmt.Sprintf("%s/%d on %s", a.Address, a.Address.BitLen(), a.Interface)
}

// Sysctl is a net.ipv4.conf setting apply changed from Previous to
// Value.
type Sysctl struct {
	// Dir is "all", "default" or an interface.
	Dir      string `json:"dir"`
	Setting  string `json:"setting"`
	Previous int    `json:"previous"`
	Value    int    `json:"value"`
}

// Name is the setting's sysctl name, net.ipv4.conf.all.arp_ignore.
func (s Sysctl) Name() string { return hostnet.ConfName(s.Dir, s.Setting) }

func (s Sysctl) key() confKey { return confKey{s.Dir, s.Setting} }

// Link is a tunnel device apply created, or found down and set up.
type Link struct {
	Name    string `json:"name"`
	Created bool   `json:"created,omitempty"`
	SetUp   bool   `json:"set_up,omitempty"`
}

// empty reports whether s records no change.
func (s *State) empty() bool {
	return len(s.Addresses) == 0 && len(s.Sysctls) == 0 && len(s.Links) == 0 && len(s.GUEPorts) == 0
}

func (s *State) addMode(m Mode) {
	if !slices.Contains(s.Modes, m) {
		s.Modes = append(s.Modes, m)
	}
}

func (s *State) addAddress(a Address) {
	if !slices.Contains(s.Addresses, a) {
		s.Addresses = append(s.Addresses, a)
	}
}

// addSysctl records a change apply just made. A setting recorded
// already keeps the value it had before xdplb if apply found it as xdplb
// had left it; if someone changed it in between, their value is the one
// to put back now. A record that ends where it started is dropped.
func (s *State) addSysctl(c Sysctl) {
	i := slices.IndexFunc(s.Sysctls, func(r Sysctl) bool { return r.key() == c.key() })
	if i < 0 {
		s.Sysctls = append(s.Sysctls, c)
		return
	}
	if s.Sysctls[i].Value == c.Previous {
		c.Previous = s.Sysctls[i].Previous
	}
	if c.Previous == c.Value {
		s.Sysctls = slices.Delete(s.Sysctls, i, i+1)
		return
	}
	s.Sysctls[i] = c
}

func (s *State) addLink(l Link) {
	for i, r := range s.Links {
		if r.Name == l.Name {
			s.Links[i].Created = r.Created || l.Created
			s.Links[i].SetUp = r.SetUp || l.SetUp
			return
		}
	}
	s.Links = append(s.Links, l)
}

func (s *State) addGUEPort(p uint16) {
	if !slices.Contains(s.GUEPorts, p) {
		s.GUEPorts = append(s.GUEPorts, p)
	}
}

// Load reads the state file at path; exists is false, and the state
// empty, if there is none.
func Load(path string) (s *State, exists bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{Version: stateVersion}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read state: %w", err)
	}
	s = &State{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, false, fmt.Errorf("read state %s: %w (it is not what xdplb backend-prep writes)", path, err)
	}
	if s.Version != stateVersion {
		return nil, false, fmt.Errorf("read state %s: layout version %d, but this xdplb reads version %d; "+
			"use the xdplb that wrote it", path, s.Version, stateVersion)
	}
	return s, true, nil
}

// Save replaces the state file at path with s, atomically, readable by
// root only; its directory is made (0700) if missing.
func (s *State) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}
