package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
)

const (
	webURL = "http://172.19.0.10:80/"
	webVIP = "172.19.0.10:80"
	// downloadVIP is served by rs1:9000 only, which sends bulkSize bytes.
	downloadVIP = "172.19.0.10:9000"
	// uploadVIP is served by rs1:9001 only, which hashes what it receives.
	uploadVIP = "172.19.0.10:9001"

	sequentialRequests = 100
	concurrentConns    = 200
	bulkSize           = 64 << 20
	udpSockets         = 4
	udpDatagrams       = 5
)

var (
	echoVIP = netip.MustParseAddrPort("172.19.0.10:5353")

	// ipv4Targets are where TestTraffic sends its traffic.
	ipv4Targets = targets{web: webVIP, download: downloadVIP, upload: uploadVIP, echo: echoVIP,
		client: testbed.ReferenceClient}

	downloadSeed = seed("xdplb e2e download")
	uploadSeed   = seed("xdplb e2e upload")

	downloadSum = sync.OnceValue(func() [sha256.Size]byte { return streamSum(downloadSeed) })
	uploadSum   = sync.OnceValue(func() [sha256.Size]byte { return streamSum(uploadSeed) })
)

// targets are the services the traffic subtests use, and the client
// address the UDP sockets are bound to: IPv4 or IPv6 alike.
type targets struct {
	web, download, upload string // host:port
	echo                  netip.AddrPort
	client                netip.Addr
}

func (tg targets) webURL() string { return "http://" + tg.web + "/" }

// trafficConfig is demo.ReferenceConfig (web 172.19.0.10:80/tcp rr over
// rs1 and rs2, echo 172.19.0.10:5353/udp over both) plus two bulk services
// with rs1 as their only backend.
func trafficConfig(mode, dir string) string {
	return demo.Setup{Mode: mode, Dir: dir, Services: demo.ReferenceServices + bulkServices}.YAML()
}

const bulkServices = `  - name: download
    vip: 172.19.0.10
    port: 9000
    protocol: tcp
    backends:
      - address: 172.19.0.2
        port: 9000
  - name: upload
    vip: 172.19.0.10
    port: 9001
    protocol: tcp
    backends:
      - address: 172.19.0.2
        port: 9001
`

// TestTraffic sends every kind of traffic through the balancer, one
// topology per XDP mode, then checks the balancer's counters against what
// was sent. The subtests run in order: the round-robin expectations and the
// counters depend on what ran before.
func TestTraffic(t *testing.T) {
	testbed.RequirePrivileges(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode)
			serveTCP(t, e.ref.RS1, ":9000", sendStream)
			serveTCP(t, e.ref.RS1, ":9001", func(c net.Conn) error { return hashUpload(c, c) })
			e.start(t, func(dir string) string { return trafficConfig(mode, dir) })

			passed := runTraffic(t, e, ipv4Targets)
			t.Run("stats", func(t *testing.T) { testStats(t, e, passed) })
		})
	}
}

// runTraffic runs the traffic subtests in order against tg, and tells
// whether all passed.
func runTraffic(t *testing.T, e *env, tg targets) bool {
	passed := t.Run("sequential_rr", func(t *testing.T) { testSequential(t, e, tg) })
	passed = t.Run("concurrent", func(t *testing.T) { testConcurrent(t, e, tg) }) && passed
	passed = t.Run("download", func(t *testing.T) { testDownload(t, e, tg) }) && passed
	passed = t.Run("upload", func(t *testing.T) { testUpload(t, e, tg) }) && passed
	return t.Run("udp", func(t *testing.T) { testUDP(t, e, tg) }) && passed
}

// testSequential: new connection per request, answers alternate rs-1,
// rs-2, ... starting with rs-1 (the service is fresh).
func testSequential(t *testing.T, e *env, tg targets) {
	client := e.ref.Client.HTTPClient(false)
	for i := range sequentialRequests {
		body, err := httpGet(t.Context(), client, tg.webURL())
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if want := fmt.Sprintf("rs-%d", i%2+1); body != want {
			t.Fatalf("request %d answered %q, want %q: round robin did not alternate", i+1, body, want)
		}
	}
}

func httpGet(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// testConcurrent opens concurrentConns connections to the web VIP, and
// only once all are established sends a request on each. Every connection
// must be answered, and round robin must split them exactly in half.
func testConcurrent(t *testing.T, e *env, tg targets) {
	ctx := t.Context()
	answers := make([]string, concurrentConns)
	errs := make([]error, concurrentConns)
	var dialled, done sync.WaitGroup
	allOpen := make(chan struct{})
	dialled.Add(concurrentConns)
	for i := range concurrentConns {
		done.Go(func() {
			c, err := e.ref.Client.DialContext(ctx, "tcp", tg.web)
			dialled.Done()
			if err != nil {
				errs[i] = fmt.Errorf("dial: %w", err)
				return
			}
			defer c.Close()
			<-allOpen
			answers[i], errs[i] = rawGet(c)
		})
	}
	dialled.Wait()
	close(allOpen)
	done.Wait()

	counts := map[string]int{}
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed++; failed <= 10 {
				t.Errorf("connection %d: %v", i, err)
			}
			continue
		}
		counts[answers[i]]++
	}
	if failed > 10 {
		t.Errorf("... %d connections failed in all", failed)
	}
	want := map[string]int{"rs-1": concurrentConns / 2, "rs-2": concurrentConns / 2}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("answers by body: %v, want %v", counts, want)
	}
}

// rawGet sends a minimal HTTP/1.1 request on c and returns the answer's
// trimmed body.
func rawGet(c net.Conn) (string, error) {
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return "", fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// testDownload reads bulkSize bytes from rs1 through the VIP.
func testDownload(t *testing.T, e *env, tg targets) {
	c, err := e.ref.Client.DialContext(t.Context(), "tcp", tg.download)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(90 * time.Second))
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	if n != bulkSize {
		t.Fatalf("received %d bytes, want %d", n, bulkSize)
	}
	if got, want := sum(h), downloadSum(); got != want {
		t.Fatalf("sha256 of the received data %x, want %x: data corrupted on the way", got, want)
	}
}

// testUpload sends bulkSize bytes to rs1 through the VIP, half-closes, and
// compares rs1's account of what it received.
func testUpload(t *testing.T, e *env, tg targets) {
	c, err := e.ref.Client.DialContext(t.Context(), "tcp", tg.upload)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(90 * time.Second))
	if err := uploadAndCheck(c, bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
}

// uploadAndCheck sends bulkSize bytes on c, half-closes, and compares
// the server's account (hashUpload) of what it received, read from r.
func uploadAndCheck(c net.Conn, r *bufio.Reader) error {
	if n, err := io.CopyN(c, stream(uploadSeed), bulkSize); err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	reply, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the server's account: %w", err)
	}
	want := uploadSum()
	if got, want := reply, fmt.Sprintf("%d %s\n", bulkSize, hex.EncodeToString(want[:])); got != want {
		return fmt.Errorf("the server received (bytes sha256) %q, want %q", got, want)
	}
	return nil
}

// testUDP sends datagrams from several sockets. Every reply must come from
// the VIP, carry the payload intact behind the backend's prefix, and all of
// a socket's datagrams must reach the same backend; the sockets' flows
// alternate between rs1 and rs2 (the service is fresh).
func testUDP(t *testing.T, e *env, tg targets) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64<<10)
	for s := range udpSockets {
		pc, err := e.ref.Client.ListenPacket("udp", netip.AddrPortFrom(tg.client, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		c := pc.(*net.UDPConn)
		prefix := fmt.Sprintf("rs-%d:", s%2+1)
		for d := range udpDatagrams {
			// Sizes from a few bytes to just under the MTU.
			payload := fmt.Appendf(nil, "socket %d datagram %d ", s, d)
			payload = append(payload, bytes.Repeat([]byte{byte('a' + d)}, rng.IntN(1400))...)
			if _, err := c.WriteToUDPAddrPort(payload, tg.echo); err != nil {
				t.Fatalf("socket %d datagram %d: send: %v", s, d, err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("socket %d datagram %d: no reply: %v", s, d, err)
			}
			if from != tg.echo {
				t.Errorf("socket %d datagram %d: reply came from %s, want %s", s, d, from, tg.echo)
			}
			reply := buf[:n]
			if want := append([]byte(prefix), payload...); !bytes.Equal(reply, want) {
				t.Fatalf("socket %d datagram %d: reply %q (%d bytes), want %q (%d bytes)",
					s, d, abbrev(reply), len(reply), abbrev(want), len(want))
			}
		}
	}
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// testStats checks the counters against the traffic the other subtests
// sent. Connection counts are only meaningful if all of it went through.
func testStats(t *testing.T, e *env, trafficPassed bool) {
	st, err := e.bal.API.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"drop_no_neigh", "drop_ports_exhausted", "drop_no_conn"} {
		n, ok := st.Reasons[reason]
		if !ok {
			t.Errorf("no counter %q among the reasons %v", reason, st.Reasons)
		} else if n != 0 {
			t.Errorf("reasons[%q] = %d, want 0", reason, n)
		}
	}
	if !trafficPassed {
		t.Skip("an earlier traffic subtest failed: the connection counts cannot be predicted")
	}
	half := uint64(sequentialRequests+concurrentConns) / 2
	want := map[string]struct {
		conns    uint64
		backends []uint64
	}{
		"web":      {2 * half, []uint64{half, half}},
		"echo":     {udpSockets, []uint64{udpSockets / 2, udpSockets / 2}},
		"download": {1, []uint64{1}},
		"upload":   {1, []uint64{1}},
	}
	for name, w := range want {
		s, err := service(st, name)
		if err != nil {
			t.Error(err)
			continue
		}
		if s.Traffic.NewConns != w.conns {
			t.Errorf("service %s: new_conns %d, want %d", name, s.Traffic.NewConns, w.conns)
		}
		if len(s.Backends) != len(w.backends) {
			t.Errorf("service %s: %d backends, want %d", name, len(s.Backends), len(w.backends))
			continue
		}
		for i, b := range s.Backends {
			if b.Traffic.NewConns != w.backends[i] {
				t.Errorf("service %s backend %s: new_conns %d, want %d", name, b.Address, b.Traffic.NewConns, w.backends[i])
			}
		}
	}
}

func service(st api.Stats, name string) (api.ServiceStats, error) {
	for _, s := range st.Services {
		if s.Name == name {
			return s, nil
		}
	}
	return api.ServiceStats{}, fmt.Errorf("no service %q in the stats", name)
}

// serveTCP runs handle for every connection accepted on host at addr until
// the test ends; then the listener and all connections still open are
// closed and the handlers waited for.
func serveTCP(t *testing.T, host *testbed.Host, addr string, handle func(net.Conn) error) {
	t.Helper()
	l, err := host.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				c.SetDeadline(time.Now().Add(90 * time.Second))
				if err := handle(c); err != nil && !errors.Is(err, net.ErrClosed) {
					t.Errorf("server %s%s: %v", host.Name, addr, err)
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// sendStream sends the download stream and closes.
func sendStream(c net.Conn) error {
	if n, err := io.CopyN(c, stream(downloadSeed), bulkSize); err != nil {
		return fmt.Errorf("send: after %d bytes: %w", n, err)
	}
	return nil
}

// hashUpload reads until the client half-closes, then answers with the
// byte count and the hex sha256 of what arrived.
func hashUpload(r io.Reader, w io.Writer) error {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("receive: after %d bytes: %w", n, err)
	}
	sum := sum(h)
	_, err = fmt.Fprintf(w, "%d %s\n", n, hex.EncodeToString(sum[:]))
	return err
}

// stream is a deterministic pseudo-random byte stream.
func stream(seed [32]byte) io.Reader { return rand.NewChaCha8(seed) }

func streamSum(seed [32]byte) [sha256.Size]byte {
	h := sha256.New()
	if _, err := io.CopyN(h, stream(seed), bulkSize); err != nil {
		panic(err)
	}
	return sum(h)
}

func seed(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func sum(h hash.Hash) (out [sha256.Size]byte) {
	h.Sum(out[:0])
	return out
}
