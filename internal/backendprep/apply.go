package backendprep

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/hostnet"
)

// Apply prepares the host, in the calling thread's network namespace,
// for o, and records every change it makes in the state file at
// statePath, merged with what an earlier apply recorded there. It writes
// one line per change, or per thing already so, to w.
//
// Changes are recorded one by one as they are made, so that a failure
// half-way leaves a record of exactly what was done for undo.
func Apply(o Options, statePath string, w io.Writer) error {
	unlock, err := lock(statePath)
	if err != nil {
		return err
	}
	defer unlock()
	st, existed, err := Load(statePath)
	if err != nil {
		return err
	}
	// Recorded with the first change, so that a failure half-way still
	// says what for.
	st.addMode(o.Mode)
	r := &recorder{state: st, path: statePath, w: w}
	// What the kernel may lack comes first, so that a kernel without it
	// is refused before anything changes.
	if o.KernelDecap {
		if o.Mode == DSRGUE {
			if err := checkFOU(); err != nil {
				return err
			}
		}
		if err := r.tunnel(); err != nil {
			return err
		}
		if o.Mode == DSRGUE {
			if err := r.guePort(o.GUEPort); err != nil {
				return err
			}
		}
	}
	for _, vip := range o.VIPs {
		if err := r.vip(vip); err != nil {
			return err
		}
	}
	// Read after tunl0 exists: its settings are planned too.
	c, err := readConf()
	if err != nil {
		return err
	}
	for _, s := range planSysctls(c, o) {
		if err := r.sysctl(s); err != nil {
			return err
		}
	}

	if !existed && st.empty() {
		fmt.Fprintf(w, "nothing to change: this host is ready for %s (no record written: undo has nothing to put back)\n", o.Mode)
		return nil
	}
	if err := st.Save(statePath); err != nil {
		return err
	}
	if r.changes == 0 {
		fmt.Fprintf(w, "nothing to change: this host is ready for %s; %s keeps what earlier runs changed\n", o.Mode, statePath)
		return nil
	}
	fmt.Fprintf(w, "recorded in %s: xdplb backend-prep undo puts it all back\n", statePath)
	return nil
}

// recorder makes apply's changes and records each in the state file.
type recorder struct {
	state   *State
	path    string
	w       io.Writer
	changes int
}

// lock makes the state's directory (0700) if missing and holds it for
// one apply or undo at a time, so that none loses another's records. It
// refuses to start where the state cannot be saved: a change made and
// not recorded is one undo would not know of.
func lock(statePath string) (unlock func(), err error) {
	dir := filepath.Dir(statePath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", asRoot(err))
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, asRoot(err))
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock state directory %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// record saves the state after change changed it, then says line.
func (r *recorder) record(line string, change func(*State)) error {
	change(r.state)
	if err := r.state.Save(r.path); err != nil {
		return fmt.Errorf("%s, but recording it failed, so undo will not know of it: %w", line, err)
	}
	r.changes++
	fmt.Fprintln(r.w, line)
	return nil
}

func (r *recorder) tunnel() error {
	t, err := ensureTunnel()
	if err != nil {
		return asRoot(err)
	}
	switch {
	case t.created:
		return r.record("created "+tunnelDev+" (ipip, from any source) and set it up", func(s *State) {
			s.addLink(Link{Name: tunnelDev, Created: true, SetUp: t.setUp})
		})
	case t.loaded:
		fmt.Fprintf(r.w, "loaded the kernel's ipip tunnels, which made %s\n", tunnelDev)
	}
	if !t.setUp {
		fmt.Fprintf(r.w, "already so: %s is up\n", tunnelDev)
		return nil
	}
	return r.record("set "+tunnelDev+" up", func(s *State) { s.addLink(Link{Name: tunnelDev, SetUp: true}) })
}

func (r *recorder) guePort(port uint16) error {
	added, err := ensureGUEPort(port)
	if err != nil {
		return asRoot(err)
	}
	if !added {
		fmt.Fprintf(r.w, "already so: the kernel takes GUE in on UDP port %d\n", port)
		return nil
	}
	return r.record(fmt.Sprintf("opened the kernel's GUE receiver on UDP port %d", port), func(s *State) { s.addGUEPort(port) })
}

// vip puts vip on lo unless it is there. It warns if another interface
// has it: there the kernel answers ARP for it, whatever arp_ignore says.
func (r *recorder) vip(vip netip.Addr) error {
	holders, err := hostnet.Holders(vip)
	if err != nil {
		return err
	}
	onLo := false
	var others []string
	for _, h := range holders {
		if h.Interface == loopback {
			onLo = true
		} else {
			others = append(others, fmt.Sprintf("%s (%s)", h.Interface, h.Prefix))
		}
	}
	if len(others) > 0 {
		fmt.Fprintf(r.w, "warning: %s is also on %s: an interface with the VIP answers ARP for it whatever arp_ignore says, "+
			"taking it from the balancer; remove it there unless this host is that VIP's balancer too\n",
			vip, strings.Join(others, ", "))
	}
	if onLo {
		fmt.Fprintf(r.w, "already so: %s is on %s\n", vip, loopback)
		return nil
	}
	if err := hostnet.AddAddrTo(loopback, vip); err != nil {
		return asRoot(err)
	}
	a := Address{Interface: loopback, Address: vip}
	return r.record("added "+a.Address.String()+"/32 to "+loopback, func(s *State) { s.addAddress(a) })
}

func (r *recorder) sysctl(s sysctlStep) error {
	if s.Note != "" {
		fmt.Fprintln(r.w, s)
		return nil
	}
	if err := hostnet.SetConf(s.Dir, s.Setting, s.To); err != nil {
		return asRoot(err)
	}
	return r.record(s.String(), func(st *State) {
		st.addSysctl(Sysctl{Dir: s.Dir, Setting: s.Setting, Previous: s.From, Value: s.To})
	})
}

// asRoot adds the likely cure to a permission error.
func asRoot(err error) error {
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w (backend-prep changes the network stack: run it as root)", err)
	}
	return err
}
