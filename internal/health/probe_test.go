package health

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// probeOnce runs one probe of spec against addr, the way a Monitor with
// default Options would.
func probeOnce(t *testing.T, spec Spec, addr netip.AddrPort) error {
	t.Helper()
	spec.Defaults()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	p := newProber(Target{Service: webKey, Addr: addr, Spec: spec}, New(Options{}).sockets)
	ctx, cancel := context.WithTimeout(context.Background(), spec.Timeout)
	defer cancel()
	return p.probe(ctx)
}

func mustFail(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("probe passed, want a failure containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("probe failed with %q, want it to contain %q", err, substr)
	}
}

// tcpListener accepts and closes connections until the test ends.
func tcpListener(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return ap
}

func TestTCP(t *testing.T) {
	spec := Spec{Kind: KindTCP, Timeout: 500 * time.Millisecond}
	if err := probeOnce(t, spec, tcpListener(t)); err != nil {
		t.Errorf("listening port: %v", err)
	}
	mustFail(t, probeOnce(t, spec, closedPort(t)), "connection refused")
}

func TestTCPTimeout(t *testing.T) {
	// A dialer that never connects, like a backend whose SYNs vanish.
	hang := func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	spec := Spec{Timeout: 100 * time.Millisecond}
	spec.Defaults()
	p := newProber(Target{Addr: netip.MustParseAddrPort("127.0.0.1:9"), Spec: spec}, sockets{dial: hang})
	ctx, cancel := context.WithTimeout(context.Background(), spec.Timeout)
	defer cancel()
	start := time.Now()
	err := p.probe(ctx)
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("probe = %v after %v; want a failure at the timeout", err, time.Since(start))
	}
}

func serverAddr(t *testing.T, rawURL string) netip.AddrPort {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return netip.MustParseAddrPort(u.Host)
}

// healthHandler serves the cases of the HTTP(S) tests.
func healthHandler(hosts chan<- string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if hosts != nil {
			hosts <- r.Host
		}
		io.WriteString(w, "status: all good\n")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	return mux
}

func TestHTTP(t *testing.T) {
	hosts := make(chan string, 1)
	srv := httptest.NewServer(healthHandler(hosts))
	defer srv.Close()
	addr := serverAddr(t, srv.URL)
	timeout := 300 * time.Millisecond
	spec := func(s Spec) Spec { s.Kind, s.Timeout = KindHTTP, timeout; return s }

	if err := probeOnce(t, spec(Spec{}), addr); err != nil {
		t.Errorf("200: %v", err)
	}
	if h := <-hosts; h != addr.String() {
		t.Errorf("Host header %q, want the target address %q by default", h, addr)
	}
	if err := probeOnce(t, spec(Spec{Host: "www.example.com"}), addr); err != nil {
		t.Errorf("200 with Host: %v", err)
	}
	if h := <-hosts; h != "www.example.com" {
		t.Errorf("Host header %q, want www.example.com", h)
	}
	if err := probeOnce(t, spec(Spec{Expect: "all good"}), addr); err != nil {
		t.Errorf("200 with expected body: %v", err)
	}
	<-hosts
	mustFail(t, probeOnce(t, spec(Spec{Expect: "database ok"}), addr), `body does not contain "database ok"`)
	<-hosts
	mustFail(t, probeOnce(t, spec(Spec{Path: "/fail"}), addr), "status 500 (want 200-399)")
	if err := probeOnce(t, spec(Spec{Path: "/fail", ExpectStatus: []StatusRange{{500, 503}}}), addr); err != nil {
		t.Errorf("500 accepted by expect_status 500-503: %v", err)
	}
	if err := probeOnce(t, spec(Spec{Path: "/moved"}), addr); err != nil {
		t.Errorf("302 within the default 200-399: %v", err)
	}
	mustFail(t, probeOnce(t, spec(Spec{Path: "/moved", ExpectStatus: []StatusRange{{200, 200}}}), addr),
		"status 302 (want 200)")

	start := time.Now()
	mustFail(t, probeOnce(t, spec(Spec{Path: "/slow"}), addr), "no answer within 300ms")
	if d := time.Since(start); d > timeout+time.Second {
		t.Errorf("slow server: probe took %v with a %v timeout", d, timeout)
	}
	mustFail(t, probeOnce(t, spec(Spec{}), closedPort(t)), "connection refused")
}

func TestHTTPS(t *testing.T) {
	hosts := make(chan string, 1)
	var mu sync.Mutex
	var sni []string
	srv := httptest.NewUnstartedServer(healthHandler(hosts))
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		sni = append(sni, h.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed verification's handshake error
	srv.StartTLS()
	defer srv.Close()
	addr := serverAddr(t, srv.URL)
	lastSNI := func() string {
		mu.Lock()
		defer mu.Unlock()
		return sni[len(sni)-1]
	}
	spec := func(s Spec) Spec { s.Kind, s.Timeout = KindHTTPS, 2*time.Second; return s }

	if err := probeOnce(t, spec(Spec{Expect: "all good"}), addr); err != nil {
		t.Fatalf("self-signed backend with the default insecure_skip_verify: %v", err)
	}
	<-hosts
	if s := lastSNI(); s != "" {
		t.Errorf("SNI %q sent for an IP target", s)
	}
	no := false
	mustFail(t, probeOnce(t, spec(Spec{InsecureSkipVerify: &no}), addr), "certificate")

	if err := probeOnce(t, spec(Spec{SNI: "backend.example"}), addr); err != nil {
		t.Errorf("with SNI: %v", err)
	}
	<-hosts
	if s := lastSNI(); s != "backend.example" {
		t.Errorf("SNI %q, want backend.example", s)
	}
	if err := probeOnce(t, spec(Spec{Host: "www.example.com:8443"}), addr); err != nil {
		t.Errorf("with Host: %v", err)
	}
	if h := <-hosts; h != "www.example.com:8443" {
		t.Errorf("Host header %q", h)
	}
	if s := lastSNI(); s != "www.example.com" {
		t.Errorf("SNI %q, want the Host's name www.example.com", s)
	}
	mustFail(t, probeOnce(t, spec(Spec{Path: "/fail"}), addr), "status 500")
}

// udpServer answers each datagram with reply(datagram), or never if
// reply is nil, until the test ends.
func udpServer(t *testing.T, reply func([]byte) []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	if reply != nil {
		wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(reply(buf[:n]), from)
			}
		})
	}
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestUDP(t *testing.T) {
	echo := udpServer(t, func(b []byte) []byte { return b })
	pong := udpServer(t, func([]byte) []byte { return []byte("PONG ok") })
	silent := udpServer(t, nil)
	timeout := 200 * time.Millisecond
	spec := func(s Spec) Spec { s.Kind, s.Timeout = KindUDP, timeout; return s }

	if err := probeOnce(t, spec(Spec{Payload: "ping"}), echo); err != nil {
		t.Errorf("echo: %v", err)
	}
	if err := probeOnce(t, spec(Spec{Payload: "ping", Expect: "PONG"}), pong); err != nil {
		t.Errorf("expected reply: %v", err)
	}
	mustFail(t, probeOnce(t, spec(Spec{Payload: "ping", Expect: "PONG"}), echo), `reply does not contain "PONG"`)

	start := time.Now()
	mustFail(t, probeOnce(t, spec(Spec{Payload: "ping"}), silent), "no answer within 200ms")
	if d := time.Since(start); d > timeout+time.Second {
		t.Errorf("silent server: probe took %v with a %v timeout", d, timeout)
	}
}

func TestUDPIgnoresStrangers(t *testing.T) {
	silent := udpServer(t, nil)
	stranger, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	// A ListenPacket hook that lets a third party write to the probe's
	// socket before the (silent) target could answer.
	listen := func(ctx context.Context, network, addr string) (net.PacketConn, error) {
		pc, err := (&net.ListenConfig{}).ListenPacket(ctx, network, addr)
		if err == nil {
			_, err = stranger.WriteTo([]byte("hello"), pc.LocalAddr())
		}
		return pc, err
	}
	spec := Spec{Kind: KindUDP, Timeout: 200 * time.Millisecond}
	spec.Defaults()
	p := newProber(Target{Addr: silent, Spec: spec}, sockets{listen: listen})
	ctx, cancel := context.WithTimeout(context.Background(), spec.Timeout)
	defer cancel()
	if err := p.probe(ctx); err == nil {
		t.Error("a datagram from another address passed the check")
	}
}

func TestListenHookError(t *testing.T) {
	boom := errors.New("no socket for you")
	spec := Spec{Kind: KindUDP}
	spec.Defaults()
	p := newProber(Target{Addr: netip.MustParseAddrPort("[::1]:53"), Spec: spec}, sockets{
		listen: func(ctx context.Context, network, addr string) (net.PacketConn, error) {
			if network != "udp6" {
				t.Errorf("network %q for an IPv6 target", network)
			}
			return nil, boom
		},
	})
	if err := p.probe(context.Background()); !errors.Is(err, boom) {
		t.Errorf("probe = %v, want the hook's error", err)
	}
}
