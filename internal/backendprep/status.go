package backendprep

import (
	"fmt"
	"io"
	"strings"
)

// Status writes to w what the state file at statePath records and
// whether each change is still in effect, in the calling thread's
// namespace.
func Status(statePath string, w io.Writer) error {
	st, exists, err := Load(statePath)
	if err != nil {
		return err
	}
	if !exists {
		fmt.Fprintf(w, "nothing recorded: there is no %s (apply changed nothing here, or undo ran since)\n", statePath)
		return nil
	}
	o, err := observe(st)
	if err != nil {
		return err
	}
	modes := make([]string, len(st.Modes))
	for i, m := range st.Modes {
		modes[i] = string(m)
	}
	fmt.Fprintf(w, "prepared for %s; %s records:\n", joinAnd(modes), statePath)
	if st.empty() {
		fmt.Fprintln(w, "  no change: the host was ready")
	}
	for _, l := range statusLines(st, o) {
		fmt.Fprintln(w, "  "+l)
	}
	return nil
}

// statusLines says, per recorded change, what apply did and whether it
// holds now.
func statusLines(s *State, o observed) []string {
	var out []string
	holds := func(what string, ok bool, otherwise string) {
		if ok {
			out = append(out, what+": in effect")
		} else {
			out = append(out, what+": NOT IN EFFECT, "+otherwise)
		}
	}
	for _, a := range s.Addresses {
		holds(fmt.Sprintf("added %s/%d to %s", a.Address, a.Address.BitLen(), a.Interface), o.addrs[a], "it is gone")
	}
	for _, c := range s.Sysctls {
		now, ok := o.conf[c.key()]
		why := fmt.Sprintf("%s is no more", c.Dir)
		if ok {
			why = fmt.Sprintf("it is %d now", now)
		}
		holds(fmt.Sprintf("%s: %d -> %d", c.Name(), c.Previous, c.Value), ok && now == c.Value, why)
	}
	for _, l := range s.Links {
		now := o.links[l.Name]
		switch {
		case l.Created:
			holds("created "+l.Name, now.exists, "it is gone")
		case l.SetUp:
			why := "it is down"
			if !now.exists {
				why = "it is gone"
			}
			holds("set "+l.Name+" up", now.up, why)
		}
	}
	for _, p := range s.GUEPorts {
		holds(fmt.Sprintf("opened the kernel's GUE receiver on UDP port %d", p), o.guePorts[p], "it is closed")
	}
	return out
}

// joinAnd joins "a", "a and b", "a, b and c".
func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return "nothing"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
