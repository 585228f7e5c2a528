package config

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/xdplb/xdplb/internal/ident"
)

// decoder turns a YAML node tree into a Config, recording a Problem with
// the YAML path for anything it cannot represent. It checks only shape
// and representability (is this a list, does this number fit in a port);
// the semantic rules live in Validate, which also serves Configs built in
// Go.
type decoder struct {
	problems
}

// fieldDecoders maps the keys a YAML mapping may hold to the functions
// decoding their values; any other key is an unknown field.
type fieldDecoders map[string]func(v *yaml.Node, path string)

func (d *decoder) config(n *yaml.Node, c *Config) {
	d.mapping(n, "", fieldDecoders{
		"interfaces": func(v *yaml.Node, p string) {
			c.Interfaces = nil
			d.list(v, p, func(item *yaml.Node, ip string) {
				s, _ := d.str(item, ip)
				c.Interfaces = append(c.Interfaces, s)
			})
		},
		"xdp_mode": func(v *yaml.Node, p string) {
			if s, ok := d.str(v, p); ok {
				m, err := ident.ParseXDPMode(s)
				if err != nil {
					d.add(p, "%v", err)
					return
				}
				c.XDPMode = m
			}
		},
		"local":          func(v *yaml.Node, p string) { d.local(v, p, &c.Local) },
		"conntrack":      func(v *yaml.Node, p string) { d.conntrack(v, p, &c.Conntrack) },
		"syn_protection": func(v *yaml.Node, p string) { d.synProtection(v, p, &c.SYNProtection) },
		"dsr":            func(v *yaml.Node, p string) { d.dsr(v, p, &c.DSR) },
		"log":            func(v *yaml.Node, p string) { d.log(v, p, &c.Log) },
		"metrics": func(v *yaml.Node, p string) {
			d.mapping(v, p, fieldDecoders{
				"listen": func(v *yaml.Node, p string) {
					if s, ok := d.str(v, p); ok {
						c.Metrics.Listen = s
					}
				},
			})
		},
		"state": func(v *yaml.Node, p string) {
			d.mapping(v, p, fieldDecoders{
				"pin_path": func(v *yaml.Node, p string) {
					if s, ok := d.str(v, p); ok {
						c.State.PinPath = s
					}
				},
			})
		},
		"api": func(v *yaml.Node, p string) {
			d.mapping(v, p, fieldDecoders{
				"socket": func(v *yaml.Node, p string) {
					if s, ok := d.str(v, p); ok {
						c.API.Socket = s
					}
				},
			})
		},
		"ha":   func(v *yaml.Node, p string) { d.ha(v, p, &c.HA) },
		"sync": func(v *yaml.Node, p string) { d.sync(v, p, &c.Sync) },
		"bgp":  func(v *yaml.Node, p string) { d.bgp(v, p, &c.BGP) },
		"services": func(v *yaml.Node, p string) {
			c.Services = nil
			d.list(v, p, func(item *yaml.Node, ip string) {
				s := defaultService()
				d.service(item, ip, &s)
				c.Services = append(c.Services, s)
			})
		},
	})
}

func (d *decoder) local(n *yaml.Node, path string, l *Local) {
	d.mapping(n, path, fieldDecoders{
		"addresses": func(v *yaml.Node, p string) {
			l.Addresses = nil
			d.list(v, p, func(item *yaml.Node, ip string) {
				a, _ := d.addr(item, ip)
				l.Addresses = append(l.Addresses, a)
			})
		},
		"ports": func(v *yaml.Node, p string) {
			s, ok := d.str(v, p)
			if !ok {
				return
			}
			r, err := parsePortRange(s)
			if err != nil {
				d.add(p, "%v", err)
				return
			}
			l.Ports = r
		},
	})
}

func (d *decoder) conntrack(n *yaml.Node, path string, c *Conntrack) {
	d.mapping(n, path, fieldDecoders{
		"capacity": func(v *yaml.Node, p string) {
			// Only guard against overflowing int here; the real bounds
			// are Validate's business.
			if i, ok := d.integer(v, p, "an integer", math.MinInt, math.MaxInt); ok {
				c.Capacity = int(i)
			}
		},
		"gc_interval": func(v *yaml.Node, p string) { d.duration(v, p, &c.GCInterval) },
		"timeouts": func(v *yaml.Node, p string) {
			t := &c.Timeouts
			d.mapping(v, p, fieldDecoders{
				"syn_sent":    func(v *yaml.Node, p string) { d.duration(v, p, &t.SynSent) },
				"established": func(v *yaml.Node, p string) { d.duration(v, p, &t.Established) },
				"fin_wait":    func(v *yaml.Node, p string) { d.duration(v, p, &t.FinWait) },
				"close":       func(v *yaml.Node, p string) { d.duration(v, p, &t.Close) },
				"udp":         func(v *yaml.Node, p string) { d.duration(v, p, &t.UDP) },
			})
		},
	})
}

// duration decodes a Go duration string ("900s", "15m", "250ms") into out.
func (d *decoder) duration(n *yaml.Node, path string, out *time.Duration) {
	d.durationWithin(n, path, out, "")
}

// durationWithin is duration for a field whose range, as Validate words
// it, is bounds: a duration too long for a time.Duration (over 292
// years) is out of that range, not garbage.
func (d *decoder) durationWithin(n *yaml.Node, path string, out *time.Duration, bounds string) {
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	v, err := time.ParseDuration(s)
	switch {
	case err == nil:
		*out = v
	case DurationTooLong(s):
		if bounds == "" {
			bounds = "(a duration is at most 2562047h)" // math.MaxInt64 nanoseconds
		}
		d.add(path, "%s is out of range %s", s, bounds)
	default:
		d.add(path, "%q is not a duration (write it like 900s, 15m or 250ms)", s)
	}
}

// DurationTooLong reports whether s is written as a duration but is
// longer than a time.Duration holds (about 292 years), so that it can be
// reported as out of range rather than as no duration at all.
func DurationTooLong(s string) bool {
	_, err := time.ParseDuration(s)
	// Well formed, so the only way ParseDuration fails: overflow.
	return err != nil && durationSyntax.MatchString(s)
}

// durationSyntax is what time.ParseDuration reads, whatever the size of
// the numbers.
var durationSyntax = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

func (d *decoder) log(n *yaml.Node, path string, l *Log) {
	d.mapping(n, path, fieldDecoders{
		"level": func(v *yaml.Node, p string) {
			if s, ok := d.str(v, p); ok {
				l.Level = s
			}
		},
		"format": func(v *yaml.Node, p string) {
			if s, ok := d.str(v, p); ok {
				l.Format = s
			}
		},
	})
}

func (d *decoder) service(n *yaml.Node, path string, s *Service) {
	d.mapping(n, path, fieldDecoders{
		"name": func(v *yaml.Node, p string) {
			if str, ok := d.str(v, p); ok {
				s.Name = str
			}
		},
		"vip": func(v *yaml.Node, p string) {
			if a, ok := d.addr(v, p); ok {
				s.VIP = a
			}
		},
		"port": func(v *yaml.Node, p string) {
			if port, ok := d.port(v, p); ok {
				s.Port = port
			}
		},
		"protocol": func(v *yaml.Node, p string) {
			if str, ok := d.str(v, p); ok {
				proto, err := ident.ParseProtocol(str)
				if err != nil {
					d.add(p, "%v", err)
					return
				}
				s.Protocol = proto
			}
		},
		"scheduler": func(v *yaml.Node, p string) {
			if str, ok := d.str(v, p); ok {
				s.Scheduler = str
			}
		},
		"persistence": func(v *yaml.Node, p string) { d.durationWithin(v, p, &s.Persistence, PersistenceBounds) },
		"persistence_netmask": func(v *yaml.Node, p string) {
			// The VIP's family bounds it further; Validate says so.
			if n, ok := d.integer(v, p, "a prefix length (1-32 for an IPv4 vip, 1-128 for an IPv6 one)", 1, 128); ok {
				s.PersistenceNetmask = uint8(n)
			}
		},
		"health_check": func(v *yaml.Node, p string) { s.HealthCheck = d.healthCheck(v, p) },
		"on_backend_down": func(v *yaml.Node, p string) {
			if str, ok := d.str(v, p); ok {
				s.OnBackendDown = str
			}
		},
		"forwarding": func(v *yaml.Node, p string) {
			if str, ok := d.str(v, p); ok {
				s.Forwarding = str
			}
		},
		"client_address": func(v *yaml.Node, p string) {
			if str, ok := d.str(v, p); ok {
				s.ClientAddress = str
			}
		},
		"fallback": func(v *yaml.Node, p string) {
			if isNull(resolve(v)) {
				return
			}
			b := defaultBackend()
			d.backend(v, p, &b)
			s.Fallback = &b
		},
		"backends": func(v *yaml.Node, p string) {
			s.Backends = nil
			d.list(v, p, func(item *yaml.Node, ip string) {
				b := defaultBackend()
				d.backend(item, ip, &b)
				s.Backends = append(s.Backends, b)
			})
		},
	})
}

func (d *decoder) backend(n *yaml.Node, path string, b *Backend) {
	d.mapping(n, path, fieldDecoders{
		"address": func(v *yaml.Node, p string) {
			if a, ok := d.addr(v, p); ok {
				b.Address = a
			}
		},
		"port": func(v *yaml.Node, p string) {
			if port, ok := d.port(v, p); ok {
				b.Port = port
			}
		},
		"weight": func(v *yaml.Node, p string) {
			if w, ok := d.integer(v, p, "a weight "+weightBounds, 0, maxWeight); ok {
				b.Weight = uint32(w)
			}
		},
		"health_check": func(v *yaml.Node, p string) { b.HealthCheck = d.healthCheck(v, p) },
	})
}

// mapping dispatches each key of a mapping node to its decoder. A null
// node (an empty "local:") is accepted and leaves the defaults alone.
func (d *decoder) mapping(n *yaml.Node, path string, fields fieldDecoders) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.add(path, "expected a mapping, got %s", describe(n))
		return
	}
	firstLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.add(path, "line %d: expected a field name, got %s", k.Line, describe(k))
			continue
		}
		p := field(path, k.Value)
		// yaml.v3 only catches duplicate keys when decoding into Go
		// values, not into nodes, so the check is ours to make.
		if line, dup := firstLine[k.Value]; dup {
			d.add(p, "set twice, at lines %d and %d", line, k.Line)
			continue
		}
		firstLine[k.Value] = k.Line
		decode, known := fields[k.Value]
		if !known {
			d.add(p, "unknown field at line %d (known fields: %s)", k.Line, strings.Join(sortedKeys(fields), ", "))
			continue
		}
		decode(v, p)
	}
}

// list calls each for every item of a sequence node. Null items are
// reported here, so that each always sees a value and the decoded slice
// stays index-aligned with the YAML (paths in later problems rely on it).
func (d *decoder) list(n *yaml.Node, path string, each func(item *yaml.Node, path string)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.add(path, "expected a list, got %s", describe(n))
		return
	}
	for i, item := range n.Content {
		p := index(path, i)
		if isNull(resolve(item)) {
			d.add(p, "empty list item")
		}
		each(item, p)
	}
}

// str returns a scalar's text. ok is false for null, which callers treat
// as "keep the default", and for non-scalars, which are reported.
func (d *decoder) str(n *yaml.Node, path string) (s string, ok bool) {
	n = resolve(n)
	if isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.add(path, "expected a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// integer decodes an integer in [lo, hi]; what describes the expected
// value in messages, e.g. "a port (1-65535)".
func (d *decoder) integer(n *yaml.Node, path, what string, lo, hi int64) (int64, bool) {
	n = resolve(n)
	if isNull(n) {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.add(path, "expected %s, got %s", what, describe(n))
		return 0, false
	}
	// Let yaml.v3 interpret the literal so 0x50, 0o120 and 1_000 mean
	// what YAML says they mean.
	var v int64
	if err := n.Decode(&v); err != nil || v < lo || v > hi {
		d.add(path, "%s is not %s", n.Value, what)
		return 0, false
	}
	return v, true
}

// boolean decodes true or false (and the other spellings strconv reads).
func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return false, false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		d.add(path, "%q is not true or false", s)
		return false, false
	}
	return b, true
}

func (d *decoder) port(n *yaml.Node, path string) (uint16, bool) {
	v, ok := d.integer(n, path, "a port "+portBounds, 1, 65535)
	return uint16(v), ok
}

func (d *decoder) addr(n *yaml.Node, path string) (netip.Addr, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		d.add(path, "%q is not an IP address", s)
		return netip.Addr{}, false
	}
	return a, true
}

// resolve follows YAML aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names a node's kind and value for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	}
	return fmt.Sprintf("%q", n.Value)
}

func sortedKeys(m fieldDecoders) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
