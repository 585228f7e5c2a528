package metrics

import (
	"runtime"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xdplb/xdplb/internal/buildinfo"
)

const namespace = "xdplb"

// Label values of the direction label: in is client -> backend, out is
// backend -> client.
const (
	dirIn  = "in"
	dirOut = "out"
)

// Collector is a prometheus.Collector that reads a Source at scrape time.
type Collector struct {
	src Source

	servicePackets, serviceBytes, serviceConns *prometheus.Desc
	serviceHalfOpen                            *prometheus.Desc
	backendPackets, backendBytes, backendConns *prometheus.Desc
	backendUp                                  *prometheus.Desc
	backendActive, backendInactive, backendWgt *prometheus.Desc
	backendPortsUsed, connCeiling              *prometheus.Desc
	datapathPackets, toa                       *prometheus.Desc
	ctEntries, ctCapacity, localPorts          *prometheus.Desc
	ctHalfOpen                                 *prometheus.Desc
	gcRuns, gcExpired, gcOrphans, gcDuration   *prometheus.Desc
	reloads                                    *prometheus.Desc
	scrapeSuccess                              *prometheus.Desc
	buildInfo                                  prometheus.Metric
	cluster                                    clusterDescs
	bgpDescs                                   bgpDescs

	descs []*prometheus.Desc
}

// NewCollector returns a Collector reading src.
func NewCollector(src Source) *Collector {
	c := &Collector{src: src}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		d := prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
		c.descs = append(c.descs, d)
		return d
	}
	svc := []string{"service", "vip", "port", "protocol"}
	svcDir := append(svc[:len(svc):len(svc)], "direction")

	c.servicePackets = desc("service_packets_total",
		"Packets a service carried; direction in is client to backend, out is backend to client.", svcDir...)
	c.serviceBytes = desc("service_bytes_total",
		"Bytes a service carried, as whole frames as received (Ethernet header included); direction in is client to backend, out is backend to client.", svcDir...)
	c.serviceConns = desc("service_connections_total",
		"New connections (TCP or UDP flows) a service tracked and scheduled to a backend.", svc...)
	c.serviceHalfOpen = desc("service_half_open",
		"TCP connections of a service whose client had not completed the handshake, as of the collector's last sweep (new SYNs over syn_protection.half_open.max_per_service get its action).", svc...)
	c.backendPackets = desc("backend_packets_total",
		"Packets a backend of a service carried; direction in is client to backend, out is backend to client.",
		"service", "backend", "direction")
	c.backendBytes = desc("backend_bytes_total",
		"Bytes a backend of a service carried, as whole frames as received (Ethernet header included); direction in is client to backend, out is backend to client.",
		"service", "backend", "direction")
	c.backendConns = desc("backend_connections_total",
		"New connections (TCP or UDP flows) scheduled to a backend of a service.", "service", "backend")
	c.backendUp = desc("backend_up",
		"Whether a backend of a service is up (1) or down (0).", "service", "backend")
	c.backendActive = desc("backend_active_connections",
		"Established connections of a backend of a service (ipvsadm's ActiveConn), as of the conntrack collector's last sweep.",
		"service", "backend")
	c.backendInactive = desc("backend_inactive_connections",
		"Connections of a backend of a service in any other state: opening, closing, UDP (ipvsadm's InActConn), as of the last sweep.",
		"service", "backend")
	c.backendWgt = desc("backend_weight",
		"The configured weight of a backend of a service (0: drained).", "service", "backend")
	c.backendPortsUsed = desc("backend_local_ports_used_ratio",
		"Share of a backend's local address:port pairs (local addresses × ports) its connections hold, as of the last sweep; at 1 new connections to it are refused.",
		"service", "backend")
	c.connCeiling = desc("backend_new_connections_ceiling",
		"New connections per second each backend sustains from distinct client ports: its local address:port pairs divided by conntrack.timeouts.fin_wait, which every closed connection holds its port for.")
	c.datapathPackets = desc("datapath_packets_total",
		"Packets the XDP program handled, by the reason it let them go and the verdict that reason implies (forward, pass to the kernel, drop).",
		"reason", "verdict")
	c.toa = desc("toa_total",
		"The client's address in a TCP option (services with client_address toa), by event: inserted into a client packet, no_room or too_big (a client packet that went without it), forged (a client's own kind-254 option, disabled), mss_lowered (a backend's SYN-ACK announced 8 bytes less).",
		"event")
	c.ctEntries = desc("conntrack_entries",
		"Connections in the connection tracking table (forward halves only).")
	c.ctHalfOpen = desc("conntrack_half_open",
		"TCP connections whose client has not completed the handshake, as of the conntrack collector's last sweep: a SYN flood shows here.")
	c.ctCapacity = desc("conntrack_capacity",
		"Most connections the connection tracking table can hold.")
	c.localPorts = desc("local_ports_in_use",
		"Source ports of a local (SNAT) address held by tracked connections.", "address")
	c.gcRuns = desc("conntrack_gc_runs_total",
		"Runs of the conntrack garbage collector.")
	c.gcExpired = desc("conntrack_gc_expired_total",
		"Idle conntrack entries the garbage collector removed.")
	c.gcOrphans = desc("conntrack_gc_orphans_total",
		"Conntrack halves the garbage collector removed because their other half was gone.")
	c.gcDuration = desc("conntrack_gc_duration_seconds",
		"How long the most recent conntrack garbage collector run took.")
	c.reloads = desc("config_reloads_total",
		"Configuration reloads, by whether they were applied (success) or not (failure).", "result")
	c.scrapeSuccess = desc("scrape_success",
		"Whether reading a source of these metrics succeeded (1) or failed (0) in this scrape.", "source")
	c.describeCluster(desc)
	c.describeBGP(desc)
	infoDesc := desc("build_info",
		"Always 1; the labels say which build of xdplb is running.", "version", "goversion")
	c.buildInfo = prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, buildinfo.Read().Version, runtime.Version())
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A source that fails yields an
// invalid metric, which fails the scrape's gathering (promhttp reports it
// and, as Server configures it, serves the rest), and
// xdplb_scrape_success{source} 0.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- c.buildInfo

	st, err := c.src.Counters()
	c.success(ch, "stats", err)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.servicePackets, err)
	} else {
		c.collectStats(ch, st)
	}

	ct, err := c.src.Conntrack()
	c.success(ch, "conntrack", err)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.ctEntries, err)
	} else {
		gauge(ch, c.ctEntries, ct.Entries)
		gauge(ch, c.ctHalfOpen, ct.HalfOpen)
		gauge(ch, c.ctCapacity, ct.Capacity)
		for addr, n := range ct.PortsInUse {
			gauge(ch, c.localPorts, n, addr)
		}
	}

	for _, h := range c.src.Health() {
		up := uint64(0)
		if h.Up {
			up = 1
		}
		gauge(ch, c.backendUp, up, h.Service, h.Backend.String())
	}

	gc := c.src.Collector()
	counter(ch, c.gcRuns, gc.Runs)
	counter(ch, c.gcExpired, gc.Expired)
	counter(ch, c.gcOrphans, gc.Orphans)
	ch <- prometheus.MustNewConstMetric(c.gcDuration, prometheus.GaugeValue, gc.LastDuration.Seconds())

	ok, failed := c.src.Reloads()
	counter(ch, c.reloads, ok, "success")
	counter(ch, c.reloads, failed, "failure")

	c.collectCluster(ch, c.src.ClusterMetrics())
	c.collectBGP(ch, c.src.BGPMetrics())
}

func (c *Collector) collectStats(ch chan<- prometheus.Metric, st Counters) {
	for reason, n := range st.Reasons {
		counter(ch, c.datapathPackets, n, reason, Verdict(reason))
	}
	for event, n := range st.TOA {
		counter(ch, c.toa, n, event)
	}
	ch <- prometheus.MustNewConstMetric(c.connCeiling, prometheus.GaugeValue, st.NewConnsCeiling)
	for _, s := range st.Services {
		vip, port, proto := s.Key.VIP.String(), strconv.Itoa(int(s.Key.Port)), s.Key.Proto.String()
		t := s.Traffic
		counter(ch, c.servicePackets, t.PacketsIn, s.Name, vip, port, proto, dirIn)
		counter(ch, c.servicePackets, t.PacketsOut, s.Name, vip, port, proto, dirOut)
		counter(ch, c.serviceBytes, t.BytesIn, s.Name, vip, port, proto, dirIn)
		counter(ch, c.serviceBytes, t.BytesOut, s.Name, vip, port, proto, dirOut)
		counter(ch, c.serviceConns, t.NewConns, s.Name, vip, port, proto)
		gauge(ch, c.serviceHalfOpen, s.HalfOpen, s.Name, vip, port, proto)
		for _, b := range s.Backends {
			t, addr := b.Traffic, b.Addr.String()
			counter(ch, c.backendPackets, t.PacketsIn, s.Name, addr, dirIn)
			counter(ch, c.backendPackets, t.PacketsOut, s.Name, addr, dirOut)
			counter(ch, c.backendBytes, t.BytesIn, s.Name, addr, dirIn)
			counter(ch, c.backendBytes, t.BytesOut, s.Name, addr, dirOut)
			counter(ch, c.backendConns, t.NewConns, s.Name, addr)
			gauge(ch, c.backendActive, b.Active, s.Name, addr)
			gauge(ch, c.backendInactive, b.Inactive, s.Name, addr)
			gauge(ch, c.backendWgt, uint64(b.Weight), s.Name, addr)
			if st.LocalPortsPerBackend > 0 {
				used := float64(b.Active+b.Inactive) / float64(st.LocalPortsPerBackend)
				ch <- prometheus.MustNewConstMetric(c.backendPortsUsed, prometheus.GaugeValue, used, s.Name, addr)
			}
		}
	}
}

func (c *Collector) success(ch chan<- prometheus.Metric, source string, err error) {
	v := uint64(1)
	if err != nil {
		v = 0
	}
	gauge(ch, c.scrapeSuccess, v, source)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
}

// Verdict is what the datapath did with a packet it counted under reason:
// "forward", "pass" (to the kernel) or "drop", from the reason's prefix;
// "unknown" for a reason without one of those prefixes.
func Verdict(reason string) string {
	switch {
	case strings.HasPrefix(reason, "fwd_"):
		return "forward"
	case strings.HasPrefix(reason, "pass_"):
		return "pass"
	case strings.HasPrefix(reason, "drop_"):
		return "drop"
	}
	return "unknown"
}
