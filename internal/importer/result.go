package importer

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/xdplb/xdplb/internal/config"
)

// Finding is one thing an import could not carry over, or carried over
// with a difference: where it was read, the keyword (or option), and why.
type Finding struct {
	Pos     Pos
	Keyword string
	Why     string
}

// String reads "FILE:LINE: keyword: why", on one line whatever the file
// held.
func (f Finding) String() string {
	return printable(fmt.Sprintf("%s: %s: %s", f.Pos, f.Keyword, f.Why))
}

// printable replaces control characters (a newline in a quoted word, say)
// so that a finding stays on its line, in a terminal and in a comment.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// Result is an imported configuration.
type Result struct {
	// Tool is what was imported: "keepalived" or "ipvsadm".
	Tool string
	// Source names the file imported.
	Source string
	// Config holds the services (and conntrack timeouts) imported, on
	// interface eth0 (a placeholder) and without local addresses: the
	// operator fills both in.
	Config *config.Config
	// Unmapped lists every keyword that could not be carried over, in
	// the order read. The import is complete only if it is empty.
	Unmapped []Finding
	// Notes lists keywords carried over whose behaviour in xdplb
	// differs in a way worth knowing.
	Notes []Finding
}

// YAML renders the configuration with a comment header saying what the
// operator must fill in, and listing Unmapped and Notes.
func (r *Result) YAML() ([]byte, error) {
	body, err := config.Render(r.Config)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	line := func(format string, args ...any) {
		b.WriteString(strings.TrimRight(printable("# "+fmt.Sprintf(format, args...)), " ") + "\n")
	}
	line("Imported from %s by `xdplb import %s`.", r.Source, r.Tool)
	line("")
	encap := tunnelled(r.Config) && !r.Config.DSR.EncapSource.IsValid()
	if encap {
		line("Fill in before use (xdplb refuses the file until local.addresses and dsr.encap_source are set):")
	} else {
		line("Fill in before use (xdplb refuses the file while local.addresses is empty):")
	}
	line("  interfaces       where traffic to the VIPs arrives (eth0 is a placeholder)")
	line("  local.addresses  the balancer's Full-NAT source addresses towards the backends")
	line("                   (at least one, not a VIP; backends see connections from them)")
	if encap {
		line("  dsr.encap_source an address of the balancer's, the outer source of the IPIP and GUE")
		line("                   packets of the services with forwarding dsr-ipip or dsr-gue")
		line("                   (dsr: {encap_source: ADDRESS}; docs/configuration.md#dsr)")
	}
	line("then run: xdplb check --config FILE. Every field: docs/configuration.md.")
	for _, list := range []struct {
		title    string
		findings []Finding
	}{
		{"Not imported (also reported on stderr):", r.Unmapped},
		{"Notes (imported, but xdplb behaves differently):", r.Notes},
	} {
		if len(list.findings) == 0 {
			continue
		}
		line("")
		line("%s", list.title)
		for _, f := range list.findings {
			line("  %s", f)
		}
	}
	b.WriteString("\n")
	b.Write(body)
	return []byte(b.String()), nil
}

// collector gathers an import's configuration and findings.
type collector struct {
	res    *Result
	seen   map[string]bool // findings already recorded
	origin []Pos           // where each service was read
	gueAt  *Pos            // where dsr.gue_port was read, if it was
}

func newCollector(tool, source string) *collector {
	c, err := config.Parse([]byte("interfaces: [eth0]\nlocal: {addresses: [192.0.2.1]}\n"))
	if err != nil {
		panic(fmt.Sprintf("importer: the base configuration is invalid: %v", err)) // a constant: a bug
	}
	c.Local.Addresses = nil
	return &collector{res: &Result{Tool: tool, Source: source, Config: c}, seen: map[string]bool{}}
}

// unmapped records a keyword that could not be carried over. The same
// finding (a keyword of a virtual server that stands for several
// services) is recorded once.
func (c *collector) unmapped(pos Pos, keyword, format string, args ...any) {
	f := Finding{pos, keyword, fmt.Sprintf(format, args...)}
	c.record(&c.res.Unmapped, f, f.String())
}

// note records a keyword carried over with a difference. A difference is
// noted once, where it is first met: the same keyword of every real
// server, or its alias (lb_kind, lvs_method), would only repeat it.
func (c *collector) note(pos Pos, keyword, format string, args ...any) {
	f := Finding{pos, keyword, fmt.Sprintf(format, args...)}
	c.record(&c.res.Notes, f, "note: "+f.Why)
}

func (c *collector) record(list *[]Finding, f Finding, key string) {
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	*list = append(*list, f)
}

// service adds s, read at pos, unless a service with its key exists.
func (c *collector) service(pos Pos, keyword string, s config.Service) {
	for i, o := range c.res.Config.Services {
		if o.Key() == s.Key() {
			c.unmapped(pos, keyword, "%s is already defined at %s; this one was not imported", s.Key(), c.origin[i])
			return
		}
	}
	s.FillDerived()
	c.res.Config.Services = append(c.res.Config.Services, s)
	c.origin = append(c.origin, pos)
}

var servicePath = regexp.MustCompile(`^services\[(\d+)\]`)

// finish checks the result as xdplb will read it, with a local address
// (and, if a service tunnels, an encapsulation source) filled in: whatever
// it would still refuse is reported at the line the service came from. A
// program of an exec check that is not on this machine only makes a note:
// it has to be on the balancer.
func (c *collector) finish() (*Result, error) {
	cfg := *c.res.Config
	cfg.Local.Addresses = []netip.Addr{c.placeholder()}
	if tunnelled(&cfg) {
		cfg.DSR.EncapSource = c.placeholder()
	}
	data, err := config.Render(&cfg)
	if err != nil {
		return nil, err
	}
	_, err = config.Parse(data)
	var cerr *config.Error
	if err != nil && !errors.As(err, &cerr) {
		return nil, err
	}
	if cerr != nil {
		for _, p := range cerr.Problems {
			pos := Pos{File: c.res.Source}
			if m := servicePath.FindStringSubmatch(p.Path); m != nil {
				if i, err := strconv.Atoi(m[1]); err == nil && i < len(c.origin) {
					pos = c.origin[i]
				}
			}
			if strings.HasSuffix(p.Path, "health_check.command[0]") {
				c.note(pos, p.Path, "%s; the program must be on the balancer, root's and writable by no one else", p.Msg)
				continue
			}
			c.unmapped(pos, p.Path, "%s (xdplb refuses this; fix it in the imported file)", p.Msg)
		}
	}
	return c.res, nil
}

// placeholder is a local address that no service uses, to check the
// result with.
func (c *collector) placeholder() netip.Addr {
	used := map[netip.Addr]bool{}
	for _, s := range c.res.Config.Services {
		used[s.VIP] = true
	}
	a := netip.MustParseAddr("192.0.2.1")
	for used[a] {
		a = a.Next()
	}
	return a
}
