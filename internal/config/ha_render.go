package config

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// haSections renders the ha and sync sections of c with the fields that
// differ from their defaults. A derived default counts as a default, as a
// backend port equal to its service's does: ha.interface is left out when
// it is the first of interfaces and ha.nodes when it is the peers plus
// one, so a file that did not say them does not start to.
func haSections(c *Config) (ha, sync *yaml.Node) {
	h, dh := c.HA, defaultHA
	ha, garp := mapping(), mapping()
	setIf(ha, "mode", h.Mode != dh.Mode, string(h.Mode))
	setIf(ha, "node_id", h.NodeID != 0, strconv.Itoa(int(h.NodeID)))
	setIf(ha, "nodes", h.Nodes != 0 && h.Nodes != derivedNodes(c.Sync.Peers), strconv.Itoa(int(h.Nodes)))
	setIf(ha, "interface", h.Interface != "" && (len(c.Interfaces) == 0 || h.Interface != c.Interfaces[0]), h.Interface)
	setIf(ha, "priority", h.Priority != dh.Priority, strconv.Itoa(int(h.Priority)))
	setIf(ha, "advert_interval", h.AdvertInterval != dh.AdvertInterval, h.AdvertInterval.String())
	setIf(ha, "preempt", h.Preempt != dh.Preempt, strconv.FormatBool(h.Preempt))
	setIf(ha, "preempt_delay", h.PreemptDelay != dh.PreemptDelay, h.PreemptDelay.String())
	setIf(garp, "repeat", h.GARP.Repeat != dh.GARP.Repeat, strconv.Itoa(h.GARP.Repeat))
	setIf(garp, "delay", h.GARP.Delay != dh.GARP.Delay, h.GARP.Delay.String())
	if len(garp.Content) > 0 {
		set(ha, "garp", garp)
	}

	s, ds := c.Sync, defaultSync
	sync = mapping()
	setIf(sync, "listen", s.Listen.IsValid(), s.Listen.String())
	if len(s.Peers) > 0 {
		// A block list: in a flow list YAML would quote every
		// address:port for its colon.
		peers := &yaml.Node{Kind: yaml.SequenceNode}
		for _, p := range s.Peers {
			peers.Content = append(peers.Content, scalar(p.String()))
		}
		set(sync, "peers", peers)
	}
	setIf(sync, "key_file", s.KeyFile != ds.KeyFile, s.KeyFile)
	setIf(sync, "batch_interval", s.BatchInterval != ds.BatchInterval, s.BatchInterval.String())
	setIf(sync, "refresh", s.Refresh != ds.Refresh, s.Refresh.String())
	setIf(sync, "bulk_timeout", s.BulkTimeout != ds.BulkTimeout, s.BulkTimeout.String())
	setIf(sync, "cluster_id", s.ClusterID != 0, strconv.Itoa(int(s.ClusterID)))
	return ha, sync
}
