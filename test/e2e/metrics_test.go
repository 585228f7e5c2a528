package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// metricsAddr is where the balancers of these tests serve /metrics: on
// the loopback of the lb host's own namespace, so a fixed port is safe.
const metricsAddr = "127.0.0.1:9540"

// metricsExtra is the top-level YAML that turns the metrics endpoint on.
const metricsExtra = "metrics:\n  listen: " + metricsAddr + "\n"

const (
	metricsRequests  = 20 // HTTP requests, a new connection each
	metricsDatagrams = 7  // UDP datagrams, each from its own socket
	metricsCapacity  = 40000
	craftedACKs      = 3 // TCP ACKs to the web VIP without a connection
	craftedFragments = 4 // IPv4 fragments to the echo VIP
)

// TestMetrics sends a known amount of traffic through the balancer and
// checks what its Prometheus endpoint says about it, including drop
// reasons provoked with hand-made frames.
func TestMetrics(t *testing.T) {
	e := newEnv(t, "native")
	e.start(t, func(dir string) string {
		return demo.Setup{
			Mode: "native", Dir: dir, Services: demo.ReferenceServices,
			Extra: fmt.Sprintf("conntrack:\n  capacity: %d\n", metricsCapacity) + metricsExtra,
		}.YAML()
	})

	// Before any traffic: the endpoint is up and every series starts at 0.
	m := scrape(t, e)
	if v, ok := m.value("xdplb_build_info"); !ok || v != 1 {
		t.Errorf("xdplb_build_info = %v (present %v), want 1", v, ok)
	} else {
		s := m.find("xdplb_build_info")[0]
		if s.labels["version"] == "" || !strings.HasPrefix(s.labels["goversion"], "go") {
			t.Errorf("xdplb_build_info labels %v: want a version and a goversion", s.labels)
		}
	}
	if v, _ := m.value("xdplb_conntrack_capacity"); v != metricsCapacity {
		t.Errorf("xdplb_conntrack_capacity = %v, want %d (conntrack.capacity)", v, metricsCapacity)
	}
	for _, src := range []string{"stats", "conntrack"} {
		if v, ok := m.value("xdplb_scrape_success", "source", src); !ok || v != 1 {
			t.Errorf("xdplb_scrape_success{source=%q} = %v (present %v), want 1", src, v, ok)
		}
	}
	if v, _ := m.value("xdplb_service_connections_total", "service", "web"); v != 0 {
		t.Errorf("before any traffic: web connections %v, want 0", v)
	}

	// The traffic.
	client := e.ref.Client.HTTPClient(false)
	for i := range metricsRequests {
		body, err := httpGet(t.Context(), client, webURL)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if want := fmt.Sprintf("rs-%d", i%2+1); body != want {
			t.Fatalf("request %d answered %q, want %q", i+1, body, want)
		}
	}
	buf := make([]byte, 2048)
	for i := range metricsDatagrams {
		pc, err := e.ref.Client.ListenPacket("udp4", testbed.ReferenceClient.String()+":0")
		if err != nil {
			t.Fatal(err)
		}
		c := pc.(*net.UDPConn)
		payload := fmt.Appendf(nil, "datagram %d", i)
		if _, err := c.WriteToUDPAddrPort(payload, echoVIP); err != nil {
			c.Close()
			t.Fatalf("datagram %d: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		c.Close()
		if err != nil {
			t.Fatalf("datagram %d: no reply: %v", i, err)
		}
		if !strings.HasSuffix(string(buf[:n]), string(payload)) {
			t.Fatalf("datagram %d: reply %q", i, buf[:n])
		}
	}

	// The last connections' closing packets may still be on their way:
	// wait until the counters stand still.
	m = scrapeSettled(t, e)
	wantConns := map[string]float64{"web": metricsRequests, "echo": metricsDatagrams}
	for svc, want := range wantConns {
		if v, ok := m.value("xdplb_service_connections_total", "service", svc); v != want {
			t.Errorf("xdplb_service_connections_total{service=%q} = %v (present %v), want %v", svc, v, ok, want)
		}
	}
	for _, b := range []string{"172.19.0.2:80", "172.19.0.3:80"} {
		if v, ok := m.value("xdplb_backend_connections_total", "service", "web", "backend", b); v != metricsRequests/2 {
			t.Errorf("xdplb_backend_connections_total{service=web,backend=%s} = %v (present %v), want %d", b, v, ok, metricsRequests/2)
		}
	}
	for _, b := range []string{"172.19.0.2:5353", "172.19.0.3:5353"} {
		// Round robin over flows: 7 alternate, rs1 first.
		want := float64((metricsDatagrams + 1) / 2)
		if b == "172.19.0.3:5353" {
			want = metricsDatagrams / 2
		}
		if v, _ := m.value("xdplb_backend_connections_total", "service", "echo", "backend", b); v != want {
			t.Errorf("xdplb_backend_connections_total{service=echo,backend=%s} = %v, want %v", b, v, want)
		}
	}
	for _, svc := range []string{"web", "echo"} {
		for _, dir := range []string{"in", "out"} {
			for _, kind := range []string{"packets", "bytes"} {
				total, ok := m.value("xdplb_service_"+kind+"_total", "service", svc, "direction", dir)
				sum := m.sum("xdplb_backend_"+kind+"_total", "service", svc, "direction", dir)
				if !ok || total == 0 || total != sum {
					t.Errorf("service %s %s %s: service total %v (present %v), sum over backends %v; want equal and > 0",
						svc, kind, dir, total, ok, sum)
				}
			}
		}
	}
	t.Logf("web: %v connections, %v packets in, %v out; echo: %v connections",
		m.sum("xdplb_service_connections_total", "service", "web"),
		m.sum("xdplb_service_packets_total", "service", "web", "direction", "in"),
		m.sum("xdplb_service_packets_total", "service", "web", "direction", "out"),
		m.sum("xdplb_service_connections_total", "service", "echo"))
	// UDP: exactly one packet each way per datagram.
	for _, dir := range []string{"in", "out"} {
		if v, _ := m.value("xdplb_service_packets_total", "service", "echo", "direction", dir); v != metricsDatagrams {
			t.Errorf("xdplb_service_packets_total{service=echo,direction=%s} = %v, want %d", dir, v, metricsDatagrams)
		}
	}
	for _, b := range []string{"172.19.0.2:80", "172.19.0.3:80"} {
		// No checks configured: the backends are up.
		if v, ok := m.value("xdplb_backend_up", "service", "web", "backend", b); ok && v != 1 {
			t.Errorf("xdplb_backend_up{service=web,backend=%s} = %v, want 1 (no health check)", b, v)
		}
	}
	for _, s := range m.find("xdplb_datapath_packets_total") {
		r, v := s.labels["reason"], s.labels["verdict"]
		want := map[string]string{"fwd": "forward", "pass": "pass", "drop": "drop"}[strings.SplitN(r, "_", 2)[0]]
		if v != want {
			t.Errorf("xdplb_datapath_packets_total{reason=%q} has verdict %q, want %q", r, v, want)
		}
	}
	if v, _ := m.value("xdplb_datapath_packets_total", "reason", "fwd_tx"); v == 0 {
		t.Errorf("xdplb_datapath_packets_total{reason=fwd_tx} = 0 after forwarding traffic")
	}

	// Drops provoked on purpose: each reason must move by exactly what
	// was sent. Compared against the scrape just before, so stray
	// packets counted elsewhere do not matter.
	before := m
	sendCrafted(t, e.ref, craftedFrames(t, e.ref))
	want := map[string]float64{"drop_no_conn": craftedACKs, "drop_fragment": craftedFragments}
	deadline := time.Now().Add(5 * time.Second)
	var got map[string]float64
	for {
		m = scrape(t, e)
		got = map[string]float64{}
		for r := range want {
			v, ok := m.value("xdplb_datapath_packets_total", "reason", r, "verdict", "drop")
			if !ok {
				t.Fatalf("no xdplb_datapath_packets_total{reason=%q,verdict=drop}", r)
			}
			b, _ := before.value("xdplb_datapath_packets_total", "reason", r, "verdict", "drop")
			got[r] = v - b
		}
		if maps.Equal(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !maps.Equal(got, want) {
		t.Errorf("drop counters moved by %v, want %v", got, want)
	} else {
		t.Logf("drop counters moved by %v, as sent", got)
	}
	// And they show in the API's reasons too.
	st, err := e.bal.API.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for r := range want {
		if v, _ := m.value("xdplb_datapath_packets_total", "reason", r); float64(st.Reasons[r]) != v {
			t.Errorf("API reasons[%q] = %d, metrics say %v", r, st.Reasons[r], v)
		}
	}
}

// craftedFrames builds, from the client to the lb's MAC: craftedACKs TCP
// ACKs to the web VIP that belong to no connection, and craftedFragments
// IPv4 fragments (first, middle and last pieces) of a UDP datagram to the
// echo VIP.
func craftedFrames(t *testing.T, ref *testbed.Reference) [][]byte {
	t.Helper()
	eth := func() *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: ref.Client.MAC, DstMAC: ref.LB.MAC, EthernetType: layers.EthernetTypeIPv4}
	}
	ip := func(id uint16, proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{
			Version: 4, IHL: 5, TTL: 64, Id: id, Protocol: proto,
			SrcIP: ref.Client.Addr.AsSlice(), DstIP: testbed.ReferenceVIP.AsSlice(),
		}
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	var frames [][]byte
	for i := range craftedACKs {
		l3 := ip(uint16(40000+i), layers.IPProtocolTCP)
		tcp := &layers.TCP{SrcPort: layers.TCPPort(45000 + i), DstPort: 80, Seq: 1000, Ack: 2000, ACK: true, Window: 512}
		if err := tcp.SetNetworkLayerForChecksum(l3); err != nil {
			t.Fatal(err)
		}
		b := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(b, opts, eth(), l3, tcp, gopacket.Payload("no such connection")); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, slices.Clone(b.Bytes()))
	}
	for i := range craftedFragments {
		// Pieces of one datagram: the first carries the UDP header, all
		// but the last have MF set; offsets are in 8-byte units.
		l3 := ip(41000, layers.IPProtocolUDP)
		l3.FragOffset = uint16(i * 8)
		if i < craftedFragments-1 {
			l3.Flags = layers.IPv4MoreFragments
		}
		payload := gopacket.Payload(strings.Repeat(string(rune('a'+i)), 64))
		var ls []gopacket.SerializableLayer
		if i == 0 {
			udp := &layers.UDP{SrcPort: 45100, DstPort: layers.UDPPort(echoVIP.Port())}
			if err := udp.SetNetworkLayerForChecksum(l3); err != nil {
				t.Fatal(err)
			}
			ls = []gopacket.SerializableLayer{eth(), l3, udp, payload[:56]}
		} else {
			ls = []gopacket.SerializableLayer{eth(), l3, payload}
		}
		b := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(b, opts, ls...); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, slices.Clone(b.Bytes()))
	}
	return frames
}

// sendCrafted writes whole Ethernet frames on the client's eth0 with an
// AF_PACKET socket, bypassing the client's own stack.
func sendCrafted(t *testing.T, ref *testbed.Reference, frames [][]byte) {
	t.Helper()
	var fd int
	err := ref.Client.Do(func() (err error) {
		// Protocol 0: the socket sends only and never receives.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatalf("AF_PACKET socket on the client: %v", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{
		Ifindex:  ref.Client.Ifindex(),
		Protocol: htons(unix.ETH_P_IP),
		Halen:    6,
	}
	copy(to.Addr[:], ref.LB.MAC)
	for i, f := range frames {
		if err := unix.Sendto(fd, f, 0, to); err != nil {
			t.Fatalf("send crafted frame %d: %v", i, err)
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sample is one line of the text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metricSet is one scrape.
type metricSet []sample

// find returns the samples of metric name whose labels include the given
// name, value pairs.
func (m metricSet) find(name string, labels ...string) []sample {
	var out []sample
next:
	for _, s := range m {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// value returns the value of the only sample find selects; false if there
// is none. More than one is a mistake in the test: it panics.
func (m metricSet) value(name string, labels ...string) (float64, bool) {
	ss := m.find(name, labels...)
	switch len(ss) {
	case 0:
		return 0, false
	case 1:
		return ss[0].value, true
	}
	panic(fmt.Sprintf("%s%v selects %d samples", name, labels, len(ss)))
}

// sum adds up the samples find selects.
func (m metricSet) sum(name string, labels ...string) float64 {
	var total float64
	for _, s := range m.find(name, labels...) {
		total += s.value
	}
	return total
}

// scrapeSettled scrapes until two scrapes 100ms apart agree on the
// traffic counters, so that the traffic just sent has been counted.
func scrapeSettled(t *testing.T, e *env) metricSet {
	t.Helper()
	traffic := func(m metricSet) [4]float64 {
		return [4]float64{
			m.sum("xdplb_service_packets_total", "direction", "in"),
			m.sum("xdplb_service_packets_total", "direction", "out"),
			m.sum("xdplb_backend_packets_total", "direction", "in"),
			m.sum("xdplb_backend_packets_total", "direction", "out"),
		}
	}
	m := scrape(t, e)
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		next := scrape(t, e)
		if traffic(next) == traffic(m) {
			return next
		}
		m = next
	}
	t.Fatalf("the traffic counters are still moving after 5s")
	return nil
}

// scrape reads the balancer's /metrics from inside the lb's namespace.
func scrape(t *testing.T, e *env) metricSet {
	t.Helper()
	m, err := scrapeMetrics(t.Context(), e)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return m
}

func scrapeMetrics(ctx context.Context, e *env) (metricSet, error) {
	client := &http.Client{
		Transport: &http.Transport{DialContext: e.ref.LB.DialContext, DisableKeepAlives: true},
		Timeout:   5 * time.Second,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s: %s", resp.Status, body)
	}
	return parseExposition(string(body))
}

// parseExposition parses the Prometheus text format (as promhttp writes
// it without content negotiation): comments and blank lines skipped, one
// `name{label="value",...} value` per line, no timestamps.
func parseExposition(text string) (metricSet, error) {
	var m metricSet
	for n, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
		m = append(m, s)
	}
	return m, nil
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no metric name")
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, ", ")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			name, rest, ok := strings.Cut(line, `="`)
			if !ok {
				return s, fmt.Errorf("bad label list")
			}
			var val strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					c = map[byte]byte{'n': '\n'}[rest[j]]
					if c == 0 {
						c = rest[j]
					}
				}
				val.WriteByte(c)
			}
			if j == len(rest) {
				return s, fmt.Errorf("unterminated label value")
			}
			s.labels[name] = val.String()
			line = rest[j+1:]
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("want a value (and optional timestamp)")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}
