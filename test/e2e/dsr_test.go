package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// dsrService is a service of the DSR scenarios, with fast TCP health
// checks if checked: the web servers on :80 answer "rs-1" / "rs-2", those
// on :8081 the client address they see.
func dsrService(name string, port uint16, forwarding string, checked bool, backends ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `  - name: %s
    vip: 172.19.0.10
    port: %d
    protocol: tcp
    scheduler: rr
    forwarding: %s
`, name, port, forwarding)
	if checked {
		b.WriteString(`    health_check:
      kind: tcp
      interval: 200ms
      timeout: 500ms
      rise: 1
      fall: 1
`)
	}
	b.WriteString("    backends:\n")
	for _, a := range backends {
		fmt.Fprintf(&b, "      - address: %s\n", a)
	}
	return b.String()
}

// prepBackend runs `xdplb backend-prep apply` on host with args, and its
// undo when the test ends.
func prepBackend(t *testing.T, host *testbed.Host, args ...string) (undo func()) {
	t.Helper()
	state := filepath.Join(t.TempDir(), "backend-prep.json")
	out, err := host.Output(t.Context(), xdplbBin, append([]string{"backend-prep", "apply", "--state", state}, args...)...)
	if err != nil {
		t.Fatalf("backend-prep apply on %s: %v\n%s", host.Name, err, out)
	}
	t.Logf("backend-prep apply on %s:\n%s", host.Name, out)
	done := false
	undo = func() {
		if done {
			return
		}
		done = true
		out, err := host.Output(context.Background(), xdplbBin, "backend-prep", "undo", "--state", state)
		if err != nil {
			t.Errorf("backend-prep undo on %s: %v\n%s", host.Name, err, out)
		}
	}
	t.Cleanup(undo)
	return undo
}

// servePeerAddr serves on host:addr the address each request comes from.
func servePeerAddr(t *testing.T, host *testbed.Host, addr string) {
	t.Helper()
	l, err := host.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// dsrGet fetches url from the client, each time on a new connection.
func dsrGet(t *testing.T, e *env, url string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	// The transport dials on past a request's end: its dial gets a
	// deadline of its own, or one to a dead path outlives the test.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			return e.ref.Client.DialContext(ctx, network, addr)
		}}}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body)), err
}

// checkAlternates makes n requests to url and wants them to alternate
// between the bodies want.
func checkAlternates(t *testing.T, e *env, url string, n int, want ...string) {
	t.Helper()
	counts := map[string]int{}
	var last string
	for i := range n {
		body, err := dsrGet(t, e, url)
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, url, err)
		}
		if body == last {
			t.Errorf("request %d: %q twice in a row, want rr to alternate", i, body)
		}
		last = body
		counts[body]++
	}
	for _, w := range want {
		if counts[w] != n/len(want) {
			t.Errorf("answers %v, want %d from each of %v", counts, n/len(want), want)
			return
		}
	}
}

// TestDSRL2: direct server return by MAC on the reference topology. The
// backends answer the client themselves, see its own address, and take
// turns; the balancer holds the client's half of each connection only
// (conn list shows no local address). A backend without the VIP on its
// loopback answers checks to its own address but is taken out: DSR checks
// go to the VIP.
func TestDSRL2(t *testing.T) {
	e := newEnv(t, "native")
	undo2 := func() {}
	for i, rs := range []*testbed.Host{e.ref.RS1, e.ref.RS2} {
		u := prepBackend(t, rs, "--vip", testbed.ReferenceVIP.String(), "--mode", "dsr-l2")
		if i == 1 {
			undo2 = u
		}
		servePeerAddr(t, rs, ":8081")
		if _, err := rs.ServeUDPEcho("172.19.0.10:5354", fmt.Sprintf("rs-%d:", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	services := dsrService("web", 80, "dsr-l2", true, "172.19.0.2", "172.19.0.3") +
		dsrService("peer", 8081, "dsr-l2", true, "172.19.0.2", "172.19.0.3") +
		dsrService("self", 8083, "dsr-l2", false, "172.19.0.50") + `  - name: echo
    vip: 172.19.0.10
    port: 5354
    protocol: udp
    forwarding: dsr-l2
    health_check: {kind: udp, payload: ping, expect: "rs-", interval: 200ms, timeout: 500ms, rise: 1, fall: 1}
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`
	e.startServices(t, services)

	checkAlternates(t, e, "http://172.19.0.10/", 100, "rs-1", "rs-2")
	for i := range 4 {
		seen, err := dsrGet(t, e, "http://172.19.0.10:8081/")
		if err != nil {
			t.Fatal(err)
		}
		if a, err := netip.ParseAddrPort(seen); err != nil || a.Addr() != testbed.ReferenceClient {
			t.Errorf("request %d: the backend saw %q, want the client's own address %s", i, seen, testbed.ReferenceClient)
		}
	}
	if answers := udpAnswers(t, e, 6); !answers["rs-1"] || !answers["rs-2"] {
		t.Errorf("UDP answers came from %v, want both backends", answers)
	}

	st := ctStats(t, e)
	if ctReason(t, st, "fwd_dsr_l2") == 0 || ctReason(t, st, "fwd_tx") != 0 {
		t.Errorf("reasons fwd_dsr_l2 %d, fwd_tx %d: want DSR by MAC only", st.Reasons["fwd_dsr_l2"], st.Reasons["fwd_tx"])
	}
	c, err := ctDial(t, e, "172.19.0.10:80", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conns := ctConns(t, e, "")
	if len(conns) == 0 {
		t.Fatal("conn list shows no connection of the open one")
	}
	for _, cn := range conns {
		if !cn.DSR || cn.Local.IsValid() || cn.Client.Addr() != testbed.ReferenceClient {
			t.Errorf("connection %+v: want the client's address and no local address", cn)
		}
	}

	// rs2 loses the VIP: its own address still answers :80, but the
	// clients' packets would go nowhere. Its check must fail.
	undo2()
	waitBody(t, e, "http://172.19.0.10/", "rs-1", 10)
	// The UDP service's check sends its datagram to the VIP too.
	if answers := udpAnswers(t, e, 6); answers["rs-2"] || !answers["rs-1"] {
		t.Errorf("UDP answers after rs2 lost the VIP came from %v, want rs-1 only", answers)
	}

	// The balancer gets the address of the "self" service's backend after
	// it started: from then on that backend is this host, whose own stack
	// takes its clients' packets.
	if _, err := e.ref.LB.ServeHTTP(":8083", "lb itself"); err != nil {
		t.Fatal(err)
	}
	if err := e.ref.LB.AddAddr(netip.MustParsePrefix("172.19.0.50/32")); err != nil {
		t.Fatal(err)
	}
	waitBody(t, e, "http://172.19.0.10:8083/", "lb itself", 3)
	if ctReason(t, ctStats(t, e), "pass_local_backend") == 0 {
		t.Errorf("pass_local_backend did not move")
	}
}

// udpAnswers sends n datagrams to the echo service, each from a new
// socket, and returns which backends answered.
func udpAnswers(t *testing.T, e *env, n int) map[string]bool {
	t.Helper()
	answers := map[string]bool{}
	for i := range n {
		c, err := e.ref.Client.DialContext(t.Context(), "udp", "172.19.0.10:5354")
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		if _, err := fmt.Fprintf(c, "ping %d", i); err != nil {
			t.Fatal(err)
		}
		m, err := c.Read(buf)
		c.Close()
		if err != nil {
			t.Fatalf("UDP datagram %d through dsr-l2: %v", i, err)
		}
		answers[strings.SplitN(string(buf[:m]), ":", 2)[0]] = true
	}
	return answers
}

// waitBody waits until n requests in a row are answered by body.
func waitBody(t *testing.T, e *env, url, body string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for run := 0; run < n; {
		if time.Now().After(deadline) {
			t.Fatalf("no %d answers in a row from %s within 10s", n, body)
		}
		got, err := dsrGet(t, e, url)
		if err == nil && got == body {
			run++
			continue
		}
		run = 0
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDSRIPIP: direct server return in IPIP to backends behind a router
// (10.30.0.0/24, reached through rtr), which decapsulate with `xdplb
// decap` (this test kernel has no ipip module for tunl0). Both answer the
// client directly; dsr-l2 to the same backends is refused (not on a link).
func TestDSRIPIP(t *testing.T) {
	e := newEnv(t, "native")
	addRouter(t, e)
	behind := []string{"10.30.0.2", "10.30.0.3"}
	routeVia(t, e.ref.LB, "10.30.0.0/24", routerIP)
	for _, rs := range []*testbed.Host{e.ref.RS1, e.ref.RS2} {
		prepBackend(t, rs, "--vip", testbed.ReferenceVIP.String(), "--mode", "dsr-ipip")
		decapOn(t, rs, testbed.ReferenceLB.String())
		serveTCP(t, rs, ":8082", countBytes)
	}

	services := dsrService("web", 80, "dsr-ipip", true, behind...) + dsrService("l2", 8081, "dsr-l2", false, behind...) +
		dsrService("sink", 8082, "dsr-ipip", false, behind...)
	e.start(t, func(d string) string {
		return demo.Setup{Mode: e.mode, Dir: d, Services: services, Extra: "dsr:\n  encap_source: 172.19.0.5\n"}.YAML()
	})
	checkAlternates(t, e, "http://172.19.0.10/", 100, "rs-1", "rs-2")
	st := ctStats(t, e)
	if ctReason(t, st, "fwd_encap") == 0 {
		t.Errorf("reason fwd_encap did not move")
	}
	if c, err := ctDial(t, e, "172.19.0.10:8081", time.Second); err == nil {
		c.Close()
		t.Errorf("dsr-l2 to backends behind a router connected, want it refused")
	}
	if ctReason(t, ctStats(t, e), "drop_dsr_not_onlink") == 0 {
		t.Errorf("reason drop_dsr_not_onlink did not move")
	}
	uploadThroughTunnel(t, e, 16<<20)
	out, err := e.ref.RS1.Output(t.Context(), xdplbBin, "decap", "status")
	if err != nil {
		t.Fatalf("decap status: %v\n%s", err, out)
	}
	t.Logf("xdplb decap status on rs1:\n%s", out)
}

// addRouter adds rtr (172.19.0.1, and 10.30.0.1/24) to e's segment, a
// router without redirects, and puts rs1 and rs2 behind it: 10.30.0.2 and
// 10.30.0.3.
func addRouter(t *testing.T, e *env) *testbed.Host {
	t.Helper()
	router, err := e.ref.Segment.AddHost("rtr", routerIP)
	if err != nil {
		t.Fatal(err)
	}
	if err := router.Do(func() error {
		for key, value := range map[string]string{
			"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/send_redirects": "0", "net/ipv4/conf/eth0/send_redirects": "0",
		} {
			if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := router.AddAddr(netip.MustParsePrefix("10.30.0.1/24")); err != nil {
		t.Fatal(err)
	}
	for i, rs := range []*testbed.Host{e.ref.RS1, e.ref.RS2} {
		if err := rs.AddAddr(netip.MustParsePrefix(fmt.Sprintf("10.30.0.%d/24", i+2))); err != nil {
			t.Fatal(err)
		}
	}
	return router
}

// decapOn attaches `xdplb decap` to host's eth0 for packets from allow,
// detached when the test ends.
func decapOn(t *testing.T, host *testbed.Host, allow string, extra ...string) {
	t.Helper()
	args := append([]string{"decap", "attach", "--interface", "eth0", "--allow", allow}, extra...)
	out, err := host.Output(t.Context(), xdplbBin, args...)
	if err != nil {
		t.Fatalf("decap attach on %s: %v\n%s", host.Name, err, out)
	}
	t.Cleanup(func() {
		out, err := host.Output(context.Background(), xdplbBin, "decap", "detach", "--interface", "eth0")
		if err != nil {
			t.Errorf("decap detach on %s: %v\n%s", host.Name, err, out)
		}
	})
}

// countBytes reads a connection to its end and answers how many bytes
// came.
func countBytes(c net.Conn) error {
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c, "%d", n)
	return err
}

// uploadThroughTunnel sends size bytes in full-size segments with DF (the
// client's own path MTU is 1500) to the sink through dsr-ipip, whose
// outer header makes them 20 bytes too big: the balancer's ICMP
// "fragmentation needed" must teach the client the smaller MTU, or the
// upload stalls.
func uploadThroughTunnel(t *testing.T, e *env, size int) {
	t.Helper()
	before := ctReason(t, ctStats(t, e), "fwd_frag_needed")
	c, err := ctDial(t, e, "172.19.0.10:8082", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatalf("upload of %d bytes through the tunnel: %v", size, err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != fmt.Sprint(size) {
		t.Fatalf("the sink counted %q (%v), want %d", got, err, size)
	}
	if n := ctReason(t, ctStats(t, e), "fwd_frag_needed") - before; n == 0 {
		t.Errorf("fwd_frag_needed did not move: the upload never needed the smaller MTU?")
	}
}
