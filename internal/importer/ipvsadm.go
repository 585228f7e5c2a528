package importer

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

// Ipvsadm imports IPVS rules as `ipvsadm -Sn` prints them (or `ipvsadm
// -S`, or a script of ipvsadm commands: a leading "ipvsadm" is skipped,
// -C lines too), read from r; name names the input in findings:
//
//	-A -t 10.0.0.1:80 -s wrr -p 300
//	-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2
//	-A -u 10.0.0.1:53 -s rr
//
// `ipvsadm --set TCP TCPFIN UDP` sets the conntrack timeouts.
func Ipvsadm(name string, r io.Reader) (*Result, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB", name, MaxBytes>>20)
	}
	m := &ipvsMapper{collector: newCollector("ipvsadm", name), skipped: map[string]Pos{}, methods: map[ident.Service]method{}}
	for i, line := range strings.Split(string(data), "\n") {
		if at := strings.IndexByte(line, '#'); at >= 0 {
			line = line[:at]
		}
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "ipvsadm" || strings.HasSuffix(f[0], "/ipvsadm")) {
			f = f[1:]
		}
		if len(f) > 0 {
			m.line(Pos{name, i + 1}, f)
		}
	}
	if len(m.res.Config.Services) > 0 {
		m.note(Pos{File: name}, "ipvsadm", "IPVS rules carry no health checks: add a health_check to each service "+
			"(docs/configuration.md#health_check), or xdplb sends traffic to dead backends too")
	}
	return m.finish()
}

type ipvsMapper struct {
	*collector
	// skipped holds the services not imported, by their option and
	// address as written, so their backends are reported as such.
	skipped map[string]Pos
	// methods holds how the first real server of each service is
	// forwarded, which is how the service is.
	methods map[ident.Service]method
}

// ipvsRule is one line's options.
type ipvsRule struct {
	cmd, cmdOpt      string
	svcOpt, svc      string // -t, -u, --sctp-service or -f, and its value
	sched            string
	persistence      time.Duration
	persistent       bool
	netmask          uint8
	real             string
	fwdOpt           string
	tunType, tunCsum string // --tun-type; nocsum, csum or remcsum
	tunPort          uint16
	weight           int
	flags            []string
	flagsOpt, realAt string // the options as spelled
}

// ipvsCommands maps the commands, long and short, to their short form.
var ipvsCommands = map[string]string{
	"-A": "-A", "--add-service": "-A", "-a": "-a", "--add-server": "-a",
	"-E": "-E", "--edit-service": "-E", "-e": "-e", "--edit-server": "-e",
	"-D": "-D", "--delete-service": "-D", "-d": "-d", "--delete-server": "-d",
	"-C": "-C", "--clear": "-C", "-R": "-R", "--restore": "-R", "-S": "-S", "--save": "-S",
	"-L": "-L", "-l": "-L", "--list": "-L", "-Z": "-Z", "--zero": "-Z", "--set": "--set",
	"--start-daemon": "--start-daemon", "--stop-daemon": "--stop-daemon",
}

// ipvsWhy explains the options xdplb has no equivalent of.
var ipvsWhy = map[string]string{
	"-x": "xdplb has no connection limits per backend", "-y": "xdplb has no connection limits per backend",
	"--pe": "xdplb has no persistence engines",
	"-o":   "one-packet scheduling is not supported: xdplb keeps a flow per UDP client address and port",
}

// ipvsLong maps long options to the short ones above.
var ipvsLong = map[string]string{
	"--tcp-service": "-t", "--udp-service": "-u", "--fwmark-service": "-f", "--scheduler": "-s",
	"--persistent": "-p", "--netmask": "-M", "--real-server": "-r", "--gatewaying": "-g", "--ipip": "-i",
	"--masquerading": "-m", "--weight": "-w", "--u-threshold": "-x", "--l-threshold": "-y", "--sched-flags": "-b",
	"--ops": "-o",
}

// line maps one line of options.
func (m *ipvsMapper) line(pos Pos, f []string) {
	r := ipvsRule{weight: 1}
	hasCmd := false
	for _, o := range f {
		_, known := ipvsCommands[o]
		hasCmd = hasCmd || known
	}
	if !hasCmd {
		m.unmapped(pos, f[0], "the line has no ipvsadm command (-A or -a); ignored")
		return
	}
	var setArgs []string
	for i := 0; i < len(f); i++ {
		opt := f[i]
		if short, ok := ipvsLong[opt]; ok {
			opt = short
		}
		value := func() (string, bool) {
			if i+1 < len(f) {
				i++
				return f[i], true
			}
			m.unmapped(pos, f[i], "expects a value")
			return "", false
		}
		if cmd, ok := ipvsCommands[opt]; ok {
			r.cmd, r.cmdOpt = cmd, f[i]
			if cmd == "--set" {
				for i+1 < len(f) && len(setArgs) < 3 {
					i++
					setArgs = append(setArgs, f[i])
				}
			}
			continue
		}
		switch opt {
		case "-t", "-u", "--sctp-service", "-f":
			r.svcOpt = opt
			r.svc, _ = value()
		case "-s":
			r.sched, _ = value()
		case "-p":
			r.persistent, r.persistence = true, 300*time.Second // ipvsadm's default
			if i+1 < len(f) && isDigits(f[i+1]) {
				i++
				secs, _ := strconv.Atoi(f[i])
				if secs > 86400 {
					m.unmapped(pos, opt, "%d s is longer than xdplb's 24h; 24h is used", secs)
					secs = 86400
				}
				r.persistence = time.Duration(secs) * time.Second
			}
		case "-r":
			r.realAt = f[i]
			r.real, _ = value()
		case "-m", "-g", "-i":
			r.fwdOpt = opt
		case "-w":
			v, ok := value()
			if !ok {
				continue
			}
			w, err := count(v)
			switch {
			case err != nil:
				m.unmapped(pos, opt, "%v; the weight stays 1", err)
			case w > 65535:
				m.unmapped(pos, opt, "%d is more than xdplb's 65535; 65535 is used", w)
				r.weight = 65535
			default:
				r.weight = w
			}
		case "-b":
			r.flagsOpt = f[i]
			if v, ok := value(); ok {
				r.flags = strings.Split(v, ",")
			}
		case "-M":
			if v, ok := value(); ok {
				if bits, err := netmaskBits(v); err != nil {
					m.unmapped(pos, f[i-1], "%v", err)
				} else {
					r.netmask = bits
				}
			}
		case "-x", "-y", "--pe":
			spelled := f[i]
			if _, ok := value(); ok {
				m.unmapped(pos, spelled, "%s", ipvsWhy[opt])
			}
		case "-o":
			m.unmapped(pos, f[i], "%s", ipvsWhy[opt])
		case "--tun-type":
			r.tunType, _ = value()
		case "--tun-port":
			if v, ok := value(); ok {
				if p, err := port(v); err != nil {
					m.unmapped(pos, opt, "%v", err)
				} else {
					r.tunPort = p
				}
			}
		case "--tun-nocsum", "--tun-csum", "--tun-remcsum":
			r.tunCsum = strings.TrimPrefix(opt, "--tun-")
		case "-n", "--numeric":
			// Part of listing.
		default:
			m.unmapped(pos, f[i], "not an ipvsadm option xdplb knows; ignored")
		}
	}
	switch r.cmd {
	case "-A":
		m.addService(pos, r)
	case "-a":
		m.addServer(pos, r)
	case "-C":
		// A script's clean start: xdplb starts from its file anyway.
	case "--set":
		m.setTimeouts(pos, r.cmdOpt, setArgs)
	default:
		m.unmapped(pos, r.cmdOpt, "only -A and -a lines (as ipvsadm -Sn prints them) are imported; ignored")
	}
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// serviceKey reads the service option of r.
func (m *ipvsMapper) serviceKey(pos Pos, r ipvsRule) (ident.Service, bool) {
	switch r.svcOpt {
	case "":
		m.unmapped(pos, r.cmdOpt, "names no service (-t, -u); ignored")
		return ident.Service{}, false
	case "-f":
		m.unmapped(pos, r.svcOpt, "firewall-mark services are not supported: xdplb matches VIP, port and protocol; not imported")
		return ident.Service{}, false
	case "--sctp-service":
		m.unmapped(pos, r.svcOpt, "SCTP is not supported: xdplb balances TCP and UDP; not imported")
		return ident.Service{}, false
	}
	if r.svc == "" {
		return ident.Service{}, false // reported: the option has no value
	}
	ap, err := netip.ParseAddrPort(r.svc)
	if err != nil {
		m.unmapped(pos, r.svcOpt, "%q is not VIP:PORT; not imported", r.svc)
		return ident.Service{}, false
	}
	vip, err := ipv4(ap.Addr().String())
	if err != nil {
		m.unmapped(pos, r.svcOpt, "%v; not imported", err)
		return ident.Service{}, false
	}
	if ap.Port() == 0 {
		m.unmapped(pos, r.svcOpt, "port 0 (every port, persistent) is not supported: xdplb balances one port per service; not imported")
		return ident.Service{}, false
	}
	proto := ident.TCP
	if r.svcOpt == "-u" {
		proto = ident.UDP
	}
	return ident.Service{VIP: vip, Port: ap.Port(), Proto: proto}, true
}

// addService maps an -A line.
func (m *ipvsMapper) addService(pos Pos, r ipvsRule) {
	key, ok := m.serviceKey(pos, r)
	if !ok {
		m.skipped[r.svcOpt+" "+r.svc] = pos
		return
	}
	s := config.NewService()
	s.VIP, s.Port, s.Protocol = key.VIP, key.Port, key.Proto
	schedOK := false
	if r.sched != "" {
		sched, err := scheduler(r.sched)
		if err != nil {
			m.unmapped(pos, "-s", "%v", err)
		}
		s.Scheduler, schedOK = sched, err == nil
	}
	if r.persistent {
		s.Persistence = r.persistence
		s.PersistenceNetmask = r.netmask
	}
	mhPort := false
	for _, flag := range r.flags {
		switch flag {
		case "mh-port":
			mhPort = true
		case "sh-fallback", "mh-fallback":
			m.note(pos, r.flagsOpt, "xdplb's hash rings leave out backends that are down, so a client whose backend "+
				"is down gets another one anyway")
		case "sh-port":
			m.unmapped(pos, r.flagsOpt, "%s", vsWhy["sh-port"])
		default:
			m.unmapped(pos, r.flagsOpt, "scheduler flag %q has no xdplb equivalent", flag)
		}
	}
	if note := schedulerNote(r.sched, mhPort); schedOK && note != "" {
		m.note(pos, "-s", "%s", note)
	}
	m.service(pos, r.cmdOpt, s)
}

// addServer maps an -a line.
func (m *ipvsMapper) addServer(pos Pos, r ipvsRule) {
	if at, ok := m.skipped[r.svcOpt+" "+r.svc]; ok {
		m.unmapped(pos, r.cmdOpt, "its service (line %d) was not imported", at.Line)
		return
	}
	key, ok := m.serviceKey(pos, r)
	if !ok {
		return
	}
	i := m.serviceIndex(key)
	if i < 0 {
		m.unmapped(pos, r.cmdOpt, "no -A line before it adds the service %s; not imported", key)
		return
	}
	s := &m.res.Config.Services[i]
	if r.real == "" {
		m.unmapped(pos, r.cmdOpt, "names no real server (-r); ignored")
		return
	}
	b := config.NewBackend()
	b.Port = s.Port
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(r.real); err == nil {
		addr, b.Port = ap.Addr(), ap.Port()
	} else if a, err := netip.ParseAddr(r.real); err == nil {
		addr = a
	} else {
		m.unmapped(pos, r.realAt, "%q is not IP:PORT; not imported", r.real)
		return
	}
	a, err := ipv4(addr.String())
	if err != nil {
		m.unmapped(pos, r.realAt, "%v; not imported", err)
		return
	}
	if b.Port == 0 {
		b.Port = s.Port
	}
	b.Address, b.Weight = a, uint32(r.weight)
	meth := m.ipvsMethod(pos, r)
	if meth.dsr() {
		m.dsrPort(pos, r.realAt, &b, s.Port)
	}
	for _, o := range s.Backends {
		if o.AddrPort() == b.AddrPort() {
			m.unmapped(pos, r.realAt, "%s is already a backend of %s; not imported again", b.AddrPort(), key)
			return
		}
	}
	// IPVS forwards each real server its own way, xdplb each service:
	// the first real server's way is the service's.
	if first, ok := m.methods[key]; !ok {
		m.methods[key] = meth
		m.setForwarding(s, meth)
	} else if !meth.same(first) {
		m.unmapped(meth.pos, meth.keyword, "this real server's forwarding (%s) differs from that of the first one of %s "+
			"(%s, line %d): %s; imported as %s", meth, key, first, first.pos.Line, oneMethodWhy, first)
	}
	s.Backends = append(s.Backends, b)
}

// ipvsMethod maps the forwarding options of an -a line: -m (masquerading,
// NAT), -g (gatewaying, direct routing: ipvsadm's default) or -i (IPIP
// tunnelling, or GUE or GRE with --tun-type).
func (m *ipvsMapper) ipvsMethod(pos Pos, r ipvsRule) method {
	switch r.fwdOpt {
	case "-m":
		m.note(pos, "-m", "%s", natNote)
		return fullNAT(pos, "-m")
	case "-i":
		t, why, note := tunnel(r.tunType, r.tunPort, r.tunCsum)
		if why != "" {
			m.unmapped(pos, "-i", "%s", why)
		}
		if note != "" {
			m.note(pos, "-i", "%s", note)
		}
		t.pos, t.keyword = pos, "-i"
		return t
	case "":
		m.note(pos, r.cmdOpt, "no -g, -i or -m: ipvsadm's default, direct routing (-g), is imported as forwarding dsr-l2")
		return method{forwarding: config.ForwardingDSRL2, pos: pos, keyword: r.cmdOpt}
	}
	return method{forwarding: config.ForwardingDSRL2, pos: pos, keyword: "-g"}
}

func (m *ipvsMapper) serviceIndex(key ident.Service) int {
	for i, s := range m.res.Config.Services {
		if s.Key() == key {
			return i
		}
	}
	return -1
}

// setTimeouts maps --set TCP TCPFIN UDP (seconds; 0 leaves one as it is).
func (m *ipvsMapper) setTimeouts(pos Pos, opt string, args []string) {
	if len(args) != 3 {
		m.unmapped(pos, opt, "expects three timeouts (tcp tcpfin udp), got %d", len(args))
		return
	}
	t := &m.res.Config.Conntrack.Timeouts
	for i, dst := range []*time.Duration{&t.Established, &t.FinWait, &t.UDP} {
		secs, err := count(args[i])
		switch {
		case err != nil:
			m.unmapped(pos, opt, "%v", err)
		case secs > 0:
			*dst = time.Duration(secs) * time.Second
		}
	}
}
