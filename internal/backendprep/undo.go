package backendprep

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/xdplb/xdplb/internal/hostnet"
)

// observed is what the host has now of each change a state records.
type observed struct {
	// conf holds the recorded settings; one whose interface is gone is
	// missing.
	conf     conf
	addrs    map[Address]bool
	links    map[string]linkState
	guePorts map[uint16]bool
}

// observe looks at the host, in the calling thread's namespace, for the
// changes s records.
func observe(s *State) (observed, error) {
	o := observed{conf: conf{}, addrs: map[Address]bool{}, links: map[string]linkState{}, guePorts: map[uint16]bool{}}
	for _, c := range s.Sysctls {
		v, err := hostnet.Conf(c.Dir, c.Setting)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return o, err
		}
		o.conf[c.key()] = v
	}
	for _, a := range s.Addresses {
		holders, err := hostnet.Holders(a.Address)
		if err != nil {
			return o, err
		}
		o.addrs[a] = slices.ContainsFunc(holders, func(h hostnet.Holder) bool { return h.Interface == a.Interface })
	}
	for _, l := range s.Links {
		st, err := readLink(l.Name)
		if err != nil {
			return o, err
		}
		o.links[l.Name] = st
	}
	if len(s.GUEPorts) > 0 {
		// A kernel without fou has no receivers left.
		if checkFOU() == nil {
			gue, _, err := guePorts()
			if err != nil {
				return o, err
			}
			for _, p := range gue {
				o.guePorts[p] = true
			}
		}
	}
	return o, nil
}

// undoAction is what an undo step does to the host.
type undoAction int

const (
	// undoNothing: the change is undone already, or its interface is
	// gone; the step only says so.
	undoNothing undoAction = iota
	// undoLeave: someone changed the setting since; the step warns and
	// leaves it.
	undoLeave
	undoRestoreSysctl
	undoRemoveAddress
	undoDeleteLink
	undoSetLinkDown
	undoRemoveGUEPort
)

// undoStep undoes one recorded change; the change it undoes is the one
// of its fields its action names.
type undoStep struct {
	Action  undoAction
	Line    string
	Sysctl  Sysctl
	Address Address
	Link    Link
	Port    uint16
}

// planUndo lists the steps that put back what s records, given what the
// host has now: the GUE receivers first, then the settings in the
// reverse of the order apply changed them (a tunnel device's before the
// device goes), then the devices, then the addresses.
func planUndo(s *State, o observed) []undoStep {
	var p []undoStep
	for _, port := range s.GUEPorts {
		if o.guePorts[port] {
			p = append(p, undoStep{Action: undoRemoveGUEPort, Port: port,
				Line: fmt.Sprintf("closed the kernel's GUE receiver on UDP port %d", port)})
		} else {
			p = append(p, undoStep{Port: port, Line: fmt.Sprintf("already gone: the GUE receiver on UDP port %d", port)})
		}
	}
	for _, c := range slices.Backward(s.Sysctls) {
		now, ok := o.conf[c.key()]
		switch {
		case !ok:
			p = append(p, undoStep{Sysctl: c, Line: fmt.Sprintf("already gone: %s (%s is no more)", c.Name(), c.Dir)})
		case now == c.Value:
			p = append(p, undoStep{Action: undoRestoreSysctl, Sysctl: c,
				Line: fmt.Sprintf("%s: %d -> %d (as before apply)", c.Name(), c.Value, c.Previous)})
		case now == c.Previous:
			p = append(p, undoStep{Sysctl: c, Line: fmt.Sprintf("already so: %s is %d again", c.Name(), c.Previous)})
		default:
			p = append(p, undoStep{Action: undoLeave, Sysctl: c,
				Line: fmt.Sprintf("warning: %s is %d, not the %d apply set: someone changed it since, so it stays "+
					"(it was %d before apply)", c.Name(), now, c.Value, c.Previous)})
		}
	}
	for _, l := range s.Links {
		now := o.links[l.Name]
		switch {
		case !now.exists:
			p = append(p, undoStep{Link: l, Line: "already gone: " + l.Name})
		case l.Created:
			p = append(p, undoStep{Action: undoDeleteLink, Link: l, Line: "deleted " + l.Name + " (apply created it)"})
		case l.SetUp && now.up:
			p = append(p, undoStep{Action: undoSetLinkDown, Link: l, Line: "set " + l.Name + " down (as before apply)"})
		case l.SetUp:
			p = append(p, undoStep{Link: l, Line: "already so: " + l.Name + " is down"})
		}
	}
	for _, a := range s.Addresses {
		if o.addrs[a] {
			p = append(p, undoStep{Action: undoRemoveAddress, Address: a,
				Line: fmt.Sprintf("removed %s/%d from %s", a.Address, a.Address.BitLen(), a.Interface)})
		} else {
			p = append(p, undoStep{Address: a, Line: fmt.Sprintf("already gone: %s from %s", a.Address, a.Interface)})
		}
	}
	return p
}

// run makes the step's change, in the calling thread's namespace.
func (u undoStep) run() error {
	switch u.Action {
	case undoRestoreSysctl:
		return hostnet.SetConf(u.Sysctl.Dir, u.Sysctl.Setting, u.Sysctl.Previous)
	case undoRemoveAddress:
		return hostnet.RemoveAddr(u.Address.Interface, u.Address.Address)
	case undoDeleteLink:
		return deleteLink(u.Link.Name)
	case undoSetLinkDown:
		return setLinkDown(u.Link.Name)
	case undoRemoveGUEPort:
		return removeGUEPort(u.Port)
	}
	return nil
}

// keepIn records the step's change in s again, for a step not done.
func (u undoStep) keepIn(s *State) {
	switch {
	case u.Sysctl != Sysctl{}:
		s.Sysctls = slices.Insert(s.Sysctls, 0, u.Sysctl) // the steps run in reverse
	case u.Address != Address{}:
		s.addAddress(u.Address)
	case u.Link != Link{}:
		s.addLink(u.Link)
	case u.Port != 0:
		s.addGUEPort(u.Port)
	}
}

// Undo puts back, in the calling thread's namespace, what the state file
// at statePath records, and removes the file. A setting someone changed
// since apply stays as it is, with a warning. If a step fails, what is
// left to undo stays recorded.
func Undo(statePath string, w io.Writer) error {
	if _, err := os.Stat(statePath); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(w, "nothing to undo: there is no %s (apply changed nothing here, or undo ran already)\n", statePath)
		return nil
	}
	unlock, err := lock(statePath)
	if err != nil {
		return err
	}
	defer unlock()
	st, exists, err := Load(statePath)
	if err != nil {
		return err
	}
	if !exists {
		fmt.Fprintf(w, "nothing to undo: there is no %s (apply changed nothing here, or undo ran already)\n", statePath)
		return nil
	}
	o, err := observe(st)
	if err != nil {
		return err
	}
	steps := planUndo(st, o)
	for i, u := range steps {
		if err := u.run(); err != nil {
			rest := &State{Version: stateVersion, Modes: st.Modes}
			for _, v := range steps[i:] {
				v.keepIn(rest)
			}
			if serr := rest.Save(statePath); serr != nil {
				return fmt.Errorf("%w; and recording what is left to undo failed: %w", asRoot(err), serr)
			}
			return fmt.Errorf("%w; what is left to undo stays recorded in %s", asRoot(err), statePath)
		}
		fmt.Fprintln(w, u.Line)
	}
	if err := os.Remove(statePath); err != nil {
		return fmt.Errorf("everything is undone, but removing the record failed: %w", err)
	}
	fmt.Fprintf(w, "removed %s\n", statePath)
	return nil
}
