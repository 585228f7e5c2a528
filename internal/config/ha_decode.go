package config

import (
	"net/netip"

	"go.yaml.in/yaml/v3"
)

func (d *decoder) ha(n *yaml.Node, path string, h *HA) {
	d.mapping(n, path, fieldDecoders{
		"mode": func(v *yaml.Node, p string) {
			if s, ok := d.str(v, p); ok {
				h.Mode = HAMode(s)
			}
		},
		"node_id": func(v *yaml.Node, p string) {
			if i, ok := d.integer(v, p, "a node id "+nodeIDBounds, 1, maxNodes); ok {
				h.NodeID = uint8(i)
			}
		},
		"nodes": func(v *yaml.Node, p string) {
			if i, ok := d.integer(v, p, "a node count "+nodeIDBounds, 1, maxNodes); ok {
				h.Nodes = uint8(i)
			}
		},
		"interface": func(v *yaml.Node, p string) {
			if s, ok := d.str(v, p); ok {
				h.Interface = s
			}
		},
		"priority": func(v *yaml.Node, p string) {
			if i, ok := d.integer(v, p, "a priority "+priorityBounds, minPriority, maxPriority); ok {
				h.Priority = uint8(i)
			}
		},
		"advert_interval": func(v *yaml.Node, p string) { d.durationWithin(v, p, &h.AdvertInterval, advertBounds) },
		"preempt": func(v *yaml.Node, p string) {
			if b, ok := d.boolean(v, p); ok {
				h.Preempt = b
			}
		},
		"preempt_delay": func(v *yaml.Node, p string) { d.durationWithin(v, p, &h.PreemptDelay, hourBounds) },
		"garp": func(v *yaml.Node, p string) {
			d.mapping(v, p, fieldDecoders{
				"repeat": func(v *yaml.Node, p string) {
					if i, ok := d.integer(v, p, "a count "+garpRepeatBounds, 1, maxGARPRepeat); ok {
						h.GARP.Repeat = int(i)
					}
				},
				"delay": func(v *yaml.Node, p string) { d.durationWithin(v, p, &h.GARP.Delay, hourBounds) },
			})
		},
	})
}

func (d *decoder) sync(n *yaml.Node, path string, s *Sync) {
	d.mapping(n, path, fieldDecoders{
		"listen": func(v *yaml.Node, p string) {
			str, ok := d.str(v, p)
			if !ok {
				return
			}
			// An empty listen is no listen, as for metrics.listen; it is
			// also how yaml.Marshal writes an unset one.
			if str == "" {
				s.Listen = netip.AddrPort{}
				return
			}
			if ap, ok := d.addrPort(v, p); ok {
				s.Listen = ap
			}
		},
		"peers": func(v *yaml.Node, p string) {
			s.Peers = nil
			d.list(v, p, func(item *yaml.Node, ip string) {
				ap, _ := d.addrPort(item, ip)
				s.Peers = append(s.Peers, ap)
			})
		},
		"key_file": func(v *yaml.Node, p string) {
			if str, ok := d.str(v, p); ok {
				s.KeyFile = str
			}
		},
		"batch_interval": func(v *yaml.Node, p string) { d.durationWithin(v, p, &s.BatchInterval, batchBounds) },
		"refresh":        func(v *yaml.Node, p string) { d.durationWithin(v, p, &s.Refresh, refreshBounds) },
		"bulk_timeout":   func(v *yaml.Node, p string) { d.durationWithin(v, p, &s.BulkTimeout, bulkBounds) },
		"cluster_id": func(v *yaml.Node, p string) {
			if i, ok := d.integer(v, p, "a cluster id (0-65535)", 0, 65535); ok {
				s.ClusterID = uint16(i)
			}
		},
	})
}

// addrPort decodes "192.0.2.5:8849" or "[2001:db8::5]:8849".
func (d *decoder) addrPort(n *yaml.Node, path string) (netip.AddrPort, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		d.add(path, "%q is not an address:port (for example 192.0.2.5:8849 or [2001:db8::5]:8849)", s)
		return netip.AddrPort{}, false
	}
	return ap, true
}
