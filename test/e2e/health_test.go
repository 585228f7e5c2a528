package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

// The health checks of these tests: fast, so a backend that refuses
// connections is out after fall (2) failed probes, within about
// fall*interval + timeout = 600ms, and back after rise (2) passed ones.
const (
	// detectWindow bounds the detection with margin: a request started
	// this long after a backend died must not be sent to it any more.
	detectWindow = 1500 * time.Millisecond
	// riseWindow bounds how long a backend that is back takes to get
	// traffic again.
	riseWindow = 1500 * time.Millisecond
	// requestTimeout is the client's limit per request; no retries.
	requestTimeout = time.Second

	rs1Web = "172.19.0.2:80"
	rs2Web = "172.19.0.3:80"
)

const webHTTPCheck = `    health_check:
      kind: http
      path: /
      interval: 200ms
      timeout: 200ms
      fall: 2
      rise: 2
`

// newHealthEnv builds the reference topology without its standard
// backends: the health tests start and stop their servers themselves.
func newHealthEnv(t *testing.T) *env {
	t.Helper()
	testbed.RequirePrivileges(t)
	ref, err := testbed.NewReference()
	if err != nil {
		t.Fatalf("build reference topology: %v", err)
	}
	t.Cleanup(func() {
		if err := ref.Close(); err != nil {
			t.Errorf("close reference topology: %v", err)
		}
	})
	return &env{mode: "native", ref: ref, logs: &testbed.LogBuffer{}}
}

// healthConfig is a native-mode config with the given services and the
// metrics endpoint on.
func healthConfig(services string) func(dir string) string {
	return func(dir string) string {
		return demo.Setup{Mode: "native", Dir: dir, Services: services, Extra: metricsExtra}.YAML()
	}
}

// serveHTTP starts an HTTP server answering body on host at addr and
// returns its stop function.
func serveHTTP(t *testing.T, host *testbed.Host, addr, body string) func() {
	t.Helper()
	stop, err := host.ServeHTTP(addr, body)
	if err != nil {
		t.Fatal(err)
	}
	return stop
}

// TestHealthFailover: rs1 dies under a continuous stream of requests and
// is taken out of rotation; once it is back it gets traffic again.
func TestHealthFailover(t *testing.T) {
	e := newHealthEnv(t)
	stopRS1 := serveHTTP(t, e.ref.RS1, ":80", "rs-1")
	serveHTTP(t, e.ref.RS2, ":80", "rs-2")
	e.start(t, healthConfig(`  - name: web
    vip: 172.19.0.10
    port: 80
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`+webHTTPCheck))

	rec := startClient(t, e)
	time.Sleep(500 * time.Millisecond)
	tStop := time.Now()
	stopRS1()
	detected := waitBackend(t, e, "web", rs1Web, false, 3*time.Second)
	t.Logf("rs1 stopped; health checks took it out after %v (observed through the API/metrics)", detected.Round(time.Millisecond))
	st := backendView(t, e, "web", rs1Web)
	t.Logf("API: rs1 up=%v since %s (%v after the stop), reason %q",
		st.Up, st.Since.Format(time.StampMilli), st.Since.Sub(tStop).Round(time.Millisecond), st.Reason)
	if left := time.Until(tStop.Add(detectWindow + time.Second)); left > 0 {
		time.Sleep(left) // a second of requests after the window
	}

	tStart := time.Now()
	stopRS1 = serveHTTP(t, e.ref.RS1, ":80", "rs-1")
	defer stopRS1()
	risen := waitBackend(t, e, "web", rs1Web, true, 3*time.Second)
	back := rec.waitFor(t, tStart, "rs-1", 3*time.Second)
	t.Logf("rs1 restarted; health checks put it back after %v, its first answer came %v after the restart",
		risen.Round(time.Millisecond), back.Round(time.Millisecond))
	if back > riseWindow {
		t.Errorf("rs1 got traffic again only %v after it was back, want within %v", back, riseWindow)
	}
	time.Sleep(500 * time.Millisecond)
	results := rec.stop()

	// Before the stop: both backends answered, nothing failed. A request
	// still in flight at the stop belongs to the window below.
	var before, window []result
	for _, r := range results {
		switch {
		case r.end.Before(tStop):
			before = append(before, r)
		case r.start.Before(tStop.Add(detectWindow)):
			window = append(window, r)
		}
	}
	if c := countBodies(before); c["rs-1"] == 0 || c["rs-2"] == 0 || c[""] != 0 {
		t.Errorf("before rs1 stopped: answers %v, want both backends and no failure", c)
	}
	// The detection window: failures are expected (rs1 refuses, or a
	// request in flight is cut); count them.
	failed, lastFail := 0, time.Duration(0)
	for _, r := range window {
		if r.err != nil {
			failed++
			lastFail = r.start.Sub(tStop)
		}
	}
	t.Logf("detection window (%v after the stop): %d requests, %d failed, the last failed one started %v after the stop; answers %v",
		detectWindow, len(window), failed, lastFail.Round(time.Millisecond), countBodies(window))
	if failed > 0 {
		for _, r := range window {
			if r.err != nil {
				t.Logf("  failed at +%v: %v", r.start.Sub(tStop).Round(time.Millisecond), r.err)
				break
			}
		}
	}
	// After the window until rs1 is back: rs2 answers every request.
	after := between(results, tStop.Add(detectWindow), tStart)
	if c := countBodies(after); len(after) == 0 || c["rs-2"] != len(after) {
		t.Errorf("after the detection window, rs1 down: answers %v over %d requests, want all rs-2", c, len(after))
		logFailures(t, after, tStop)
	}
	// From the restart on: no request fails.
	recovery := between(results, tStart, time.Now())
	if c := countBodies(recovery); c[""] != 0 {
		t.Errorf("after rs1 restarted: answers %v, want no failure", c)
		logFailures(t, recovery, tStart)
	}
	if c := countBodies(between(results, tStart.Add(back), time.Now())); c["rs-1"] == 0 || c["rs-2"] == 0 {
		t.Errorf("once rs1 is back: answers %v, want both backends", c)
	}
	t.Logf("%d requests in all", len(results))
}

// TestHealthAllDown: with every backend down, new connections go to the
// fallback server; as soon as one backend is back they go to it again.
func TestHealthAllDown(t *testing.T) {
	e := newHealthEnv(t)
	stopRS1 := serveHTTP(t, e.ref.RS1, ":80", "rs-1")
	stopRS2 := serveHTTP(t, e.ref.RS2, ":80", "rs-2")
	serveHTTP(t, e.ref.RS2, ":8080", "sorry")
	e.start(t, healthConfig(`  - name: web
    vip: 172.19.0.10
    port: 80
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
    fallback:
      address: 172.19.0.3
      port: 8080
`+webHTTPCheck))
	client := e.ref.Client.HTTPClient(false)
	client.Timeout = requestTimeout

	if got := answers(t, client, 4); fmt.Sprint(got) != "map[rs-1:2 rs-2:2]" {
		t.Fatalf("both backends up: answers %v, want rs-1 and rs-2 twice each", got)
	}

	stopRS1()
	stopRS2()
	failed, took := waitAnswer(t, client, "sorry", 3*time.Second)
	t.Logf("both backends stopped: the fallback answered %v later, after %d failed requests", took.Round(time.Millisecond), failed)
	for _, b := range []string{rs1Web, rs2Web} {
		waitBackend(t, e, "web", b, false, time.Second)
	}
	if got := answers(t, client, 10); got["sorry"] != 10 {
		t.Errorf("every backend down: answers %v, want the fallback's sorry only", got)
	}
	if took > detectWindow {
		t.Errorf("the fallback took over only after %v, want within %v", took, detectWindow)
	}

	stopRS1 = serveHTTP(t, e.ref.RS1, ":80", "rs-1")
	defer stopRS1()
	failed, took = waitAnswer(t, client, "rs-1", 3*time.Second)
	t.Logf("rs1 restarted: it answered %v later (%d failed requests meanwhile)", took.Round(time.Millisecond), failed)
	if failed > 0 {
		t.Errorf("%d requests failed while rs1 came back, want none (the fallback answers)", failed)
	}
	if took > riseWindow {
		t.Errorf("rs1 got traffic again only %v after it was back, want within %v", took, riseWindow)
	}
	waitBackend(t, e, "web", rs1Web, true, time.Second)
	if got := answers(t, client, 10); got["rs-1"] != 10 {
		t.Errorf("rs1 up, rs2 down: answers %v, want rs-1 only", got)
	}
	// Released, the fallback must not cost a single request: a steady
	// stream of new connections after the recovery all succeed.
	t0 := time.Now()
	steady := startClient(t, e)
	time.Sleep(3 * time.Second)
	results := steady.stop()
	if c := countBodies(results); c[""] > 0 || c["rs-1"] != len(results) {
		t.Errorf("after rs1 recovered: %d requests answered %v, want rs-1 only and no failure", len(results), c)
		logFailures(t, results, t0)
	}
}

// TestHealthExpire: a backend whose listener closes fails its TCP check
// while a connection it accepted earlier is still open. With
// on_backend_down: expire the balancer ends that connection: the client's
// next packet is answered with a TCP reset, so it fails at once; with keep
// (the default) it goes on working.
func TestHealthExpire(t *testing.T) {
	e := newHealthEnv(t)
	const tcpCheck = `    health_check:
      kind: tcp
      interval: 200ms
      timeout: 200ms
`
	closeKeep := serveEcho(t, e.ref.RS1, ":7000", "rs-1")
	closeExpire := serveEcho(t, e.ref.RS1, ":7001", "rs-1")
	serveEcho(t, e.ref.RS2, ":7000", "rs-2")
	serveEcho(t, e.ref.RS2, ":7001", "rs-2")
	e.start(t, healthConfig(`  - name: keep
    vip: 172.19.0.10
    port: 7000
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`+tcpCheck+`  - name: expire
    vip: 172.19.0.10
    port: 7001
    protocol: tcp
    scheduler: rr
    on_backend_down: expire
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`+tcpCheck))

	keep := dialBackend(t, e, "172.19.0.10:7000", 4, "rs-1")
	expire := dialBackend(t, e, "172.19.0.10:7001", 4, "rs-1")
	for _, c := range []*echoConn{keep, expire} {
		if err := c.echo("before", time.Second); err != nil {
			t.Fatalf("%s: %v", c.vip, err)
		}
	}
	conns := func(vip, backend string) int {
		cs, err := e.bal.API.Connections(t.Context(), vip+"/tcp", backend)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	if n := conns("172.19.0.10:7001", "172.19.0.2:7001"); n != 1 {
		t.Fatalf("expire service: %d tracked connections to rs1, want 1", n)
	}
	st, err := e.bal.API.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	resetBefore := st.Reasons["fwd_reset"]

	// Only the listeners close: the accepted connections stay open.
	tClose := time.Now()
	closeKeep()
	closeExpire()
	waitBackend(t, e, "keep", "172.19.0.2:7000", false, 3*time.Second)
	waitBackend(t, e, "expire", "172.19.0.2:7001", false, 3*time.Second)
	t.Logf("rs1's listeners closed: down %v (keep) and %v (expire) later, reason %q",
		backendView(t, e, "keep", "172.19.0.2:7000").Since.Sub(tClose).Round(time.Millisecond),
		backendView(t, e, "expire", "172.19.0.2:7001").Since.Sub(tClose).Round(time.Millisecond),
		backendView(t, e, "expire", "172.19.0.2:7001").Reason)

	// keep: the connection still works, its conntrack entry is there.
	if err := keep.echo("after", time.Second); err != nil {
		t.Errorf("on_backend_down keep: the established connection stopped working: %v", err)
	}
	if n := conns("172.19.0.10:7000", "172.19.0.2:7000"); n != 1 {
		t.Errorf("on_backend_down keep: %d tracked connections to rs1, want 1", n)
	}

	// expire: the connection is gone from the listing (the daemon ends it
	// right after the change, so allow it a moment), and the client's
	// next packet is answered with a reset.
	deadline := time.Now().Add(time.Second)
	for conns("172.19.0.10:7001", "172.19.0.2:7001") != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := conns("172.19.0.10:7001", "172.19.0.2:7001"); n != 0 {
		t.Errorf("on_backend_down expire: %d tracked connections to rs1 after it went down, want 0", n)
	}
	start := time.Now()
	err = expire.echo("after", 3*time.Second)
	switch {
	case err == nil:
		t.Errorf("on_backend_down expire: the connection to the down backend still works")
	case !strings.Contains(err.Error(), "reset"):
		t.Errorf("on_backend_down expire: the connection failed with %v after %v, want a reset", err, time.Since(start))
	default:
		t.Logf("on_backend_down expire: the connection failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	st, err = e.bal.API.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if moved := st.Reasons["fwd_reset"] - resetBefore; moved == 0 {
		t.Errorf("reasons[fwd_reset] did not move: the client was not answered with a reset")
	}
	// New connections go to rs2.
	for range 2 {
		if c := dialBackend(t, e, "172.19.0.10:7001", 1); c.first != "rs-2" {
			t.Errorf("new connection to the expire service answered by %s, want rs-2", c.first)
		}
	}
}

// result is one request of the continuous client.
type result struct {
	start time.Time
	end   time.Time
	body  string // the answering backend's name; "" if err != nil
	err   error
}

// recorder runs the continuous client: a request every few milliseconds,
// a new connection each, no retries.
type recorder struct {
	mu      sync.Mutex
	results []result
	cancel  context.CancelFunc
	done    chan struct{}
}

func startClient(t *testing.T, e *env) *recorder {
	client := e.ref.Client.HTTPClient(false)
	client.Timeout = requestTimeout
	ctx, cancel := context.WithCancel(t.Context())
	r := &recorder{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			start := time.Now()
			body, err := httpGet(ctx, client, webURL)
			if ctx.Err() != nil {
				return
			}
			r.mu.Lock()
			r.results = append(r.results, result{start: start, end: time.Now(), body: body, err: err})
			r.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop ends the client and returns every result.
func (r *recorder) stop() []result {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results
}

// waitFor waits until a request started after since is answered by body,
// and returns how long after since that request started.
func (r *recorder) waitFor(t *testing.T, since time.Time, body string, limit time.Duration) time.Duration {
	t.Helper()
	deadline := since.Add(limit)
	for {
		r.mu.Lock()
		for _, x := range r.results {
			if x.body == body && !x.start.Before(since) {
				r.mu.Unlock()
				return x.start.Sub(since)
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no request answered by %s within %v", body, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// between returns the results of the requests started in [from, to).
func between(rs []result, from, to time.Time) []result {
	var out []result
	for _, r := range rs {
		if !r.start.Before(from) && r.start.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// countBodies counts answers by backend; failures count under "".
func countBodies(rs []result) map[string]int {
	c := map[string]int{}
	for _, r := range rs {
		c[r.body]++
	}
	return c
}

func logFailures(t *testing.T, rs []result, t0 time.Time) {
	t.Helper()
	n := 0
	for _, r := range rs {
		if r.err != nil {
			if n++; n <= 5 {
				t.Logf("  request at %+v: %v", r.start.Sub(t0).Round(time.Millisecond), r.err)
			}
		}
	}
}

// answers sends n requests and counts the answers by body; a failure
// fails the test.
func answers(t *testing.T, client *http.Client, n int) map[string]int {
	t.Helper()
	c := map[string]int{}
	for i := range n {
		body, err := httpGet(t.Context(), client, webURL)
		if err != nil {
			t.Fatalf("request %d of %d: %v", i+1, n, err)
		}
		c[body]++
	}
	return c
}

// waitAnswer sends requests until one is answered by body, and returns
// how many failed before and how long it took.
func waitAnswer(t *testing.T, client *http.Client, body string, limit time.Duration) (failed int, took time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		got, err := httpGet(t.Context(), client, webURL)
		if err == nil && got == body {
			return failed, time.Since(start)
		}
		if err != nil {
			failed++
		}
		if time.Since(start) > limit {
			t.Fatalf("no answer from %s within %v (last: %q, %v; %d failed)", body, limit, got, err, failed)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitBackend waits until a backend of a service is up (or down) as both
// the API and the metrics see it, and returns how long that took. A
// down backend must come with a reason.
func waitBackend(t *testing.T, e *env, service, backend string, up bool, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	want := 0.0
	if up {
		want = 1
	}
	for {
		m, err := scrapeMetrics(t.Context(), e)
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		v, ok := m.value("xdplb_backend_up", "service", service, "backend", backend)
		if !ok {
			t.Fatalf("no xdplb_backend_up{service=%q,backend=%q}", service, backend)
		}
		view := backendView(t, e, service, backend)
		if v == want && view.Up == up {
			if !up && view.Reason == "" {
				t.Errorf("API: backend %s of %s is down without a reason: %+v", backend, service, view)
			}
			if view.Since.IsZero() {
				t.Errorf("API: backend %s of %s changed state but has no since: %+v", backend, service, view)
			}
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("backend %s of %s after %v: xdplb_backend_up %v, API %+v; want up=%v",
				backend, service, limit, v, view, up)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// backendView returns the API's view of a backend of a service.
func backendView(t *testing.T, e *env, service, backend string) api.BackendView {
	t.Helper()
	svcs, err := e.bal.API.Services(t.Context())
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	for _, s := range svcs {
		if s.Name != service {
			continue
		}
		for _, b := range s.Backends {
			if net.JoinHostPort(b.Address, strconv.Itoa(int(b.Port))) == backend {
				return b
			}
		}
	}
	t.Fatalf("the API lists no backend %s in service %s: %+v", backend, service, svcs)
	return api.BackendView{}
}

// serveEcho runs a line echo server on host at addr: each line comes back
// as "<id>: <line>". It returns a function that closes only the listener;
// the connections it accepted stay open until the test ends.
func serveEcho(t *testing.T, host *testbed.Host, addr, id string) (closeListener func()) {
	t.Helper()
	l, err := host.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := fmt.Fprintf(c, "%s: %s\n", id, sc.Text()); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return func() { l.Close() }
}

// echoConn is a client connection to an echo service.
type echoConn struct {
	vip   string
	c     net.Conn
	r     *bufio.Reader
	first string // the backend that answered the first line
}

// echo sends line and waits up to limit for it to come back.
func (c *echoConn) echo(line string, limit time.Duration) error {
	c.c.SetDeadline(time.Now().Add(limit))
	if _, err := fmt.Fprintf(c.c, "%s\n", line); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	reply, err := c.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("no echo: %w", err)
	}
	id, got, _ := strings.Cut(strings.TrimSuffix(reply, "\n"), ": ")
	if got != line {
		return fmt.Errorf("echo %q, want %q", reply, line)
	}
	if c.first == "" {
		c.first = id
	}
	return nil
}

// dialBackend connects to an echo service, at most tries times, until a
// connection lands on the backend named id (any backend if id is
// omitted); the others are closed. The connection is closed when the test
// ends; the last one is returned whatever backend answered it.
func dialBackend(t *testing.T, e *env, vip string, tries int, id ...string) *echoConn {
	t.Helper()
	for i := range tries {
		c, err := e.ref.Client.DialContext(t.Context(), "tcp", vip)
		if err != nil {
			t.Fatal(err)
		}
		ec := &echoConn{vip: vip, c: c, r: bufio.NewReader(c)}
		if err := ec.echo("hello", 2*time.Second); err != nil {
			c.Close()
			t.Fatalf("%s: %v", vip, err)
		}
		if len(id) == 0 || ec.first == id[0] || i == tries-1 {
			t.Cleanup(func() { c.Close() })
			if len(id) > 0 && ec.first != id[0] {
				t.Fatalf("%s: no connection landed on %s in %d tries", vip, id[0], tries)
			}
			return ec
		}
		c.Close()
	}
	panic("unreachable")
}
