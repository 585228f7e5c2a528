package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/xdplb/xdplb/internal/ident"
)

// DialFunc creates a connected socket; it has the signature of
// net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ListenPacketFunc creates an unconnected packet socket bound to addr; it
// has the signature of net.ListenConfig.ListenPacket.
type ListenPacketFunc func(ctx context.Context, network, addr string) (net.PacketConn, error)

// prober runs one kind of check against one target. probe returns nil if
// the target passed; ctx carries the check's timeout.
type prober interface {
	probe(ctx context.Context) error
}

// sockets is how probes reach the network.
type sockets struct {
	dial   DialFunc
	listen ListenPacketFunc
}

// newProber compiles a validated, defaulted target into a prober. A
// backend reached by direct server return first proves that it answers on
// the VIP (VIPPath): a TCP service's with a SYN, a UDP service's udp check
// is sent to the VIP instead of the backend's address.
func newProber(t Target, s sockets) prober {
	p := kindProber(t, s)
	if t.VIPPath == nil {
		return p
	}
	vp := &vipProber{backend: t.Addr.Addr().Unmap(), path: *t.VIPPath, then: p, dial: s.dial}
	if t.Service.Proto != ident.TCP {
		udp, ok := p.(*udpProber)
		if !ok {
			return p // only a udp check can prove a UDP service's VIP
		}
		udp.addr = t.VIPPath.VIP
		vp.udp = udp
	}
	return vp
}

// kindProber is the probe of the check's own kind, to the target.
func kindProber(t Target, s sockets) prober {
	addr := netip.AddrPortFrom(t.Addr.Addr().Unmap(), t.Addr.Port())
	switch t.Spec.Kind {
	case KindHTTP, KindHTTPS:
		return newHTTPProber(addr, t.Spec, s.dial)
	case KindUDP:
		return &udpProber{addr: addr, payload: []byte(t.Spec.Payload), expect: []byte(t.Spec.Expect), timeout: t.Spec.Timeout, listen: s.listen}
	case KindExec:
		return &execProber{target: t, addr: addr}
	default:
		return &tcpProber{addr: addr.String(), dial: s.dial}
	}
}

// timeoutErr replaces a bare "context deadline exceeded" with something
// that says which timeout.
func timeoutErr(ctx context.Context, err error, timeout time.Duration, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within %v", what, timeout)
	}
	return err
}

type tcpProber struct {
	addr string
	dial DialFunc
}

func (p *tcpProber) probe(ctx context.Context) error {
	c, err := p.dial(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	return c.Close()
}

type httpProber struct {
	url     string
	host    string
	expect  []byte
	status  []StatusRange
	timeout time.Duration
	client  *http.Client
	tr      *http.Transport
}

func newHTTPProber(addr netip.AddrPort, s Spec, dial DialFunc) *httpProber {
	tr := &http.Transport{
		Proxy:              nil, // never an environment proxy: the backend itself is checked
		DialContext:        dial,
		DisableKeepAlives:  true, // every probe opens a fresh connection
		DisableCompression: true,
		// With a custom DialContext and ForceAttemptHTTP2 unset, only
		// HTTP/1.1 is spoken, which every backend understands.
		MaxResponseHeaderBytes: 64 << 10,
	}
	if s.Kind == KindHTTPS {
		sni := s.SNI
		if sni == "" && s.Host != "" {
			sni = s.Host
			if h, _, err := net.SplitHostPort(s.Host); err == nil {
				sni = h
			}
			if _, err := netip.ParseAddr(strings.Trim(sni, "[]")); err == nil {
				sni = "" // an IP address is never sent as SNI
			}
		}
		tr.TLSClientConfig = &tls.Config{
			ServerName:         sni,
			InsecureSkipVerify: s.InsecureSkipVerify == nil || *s.InsecureSkipVerify,
		}
	}
	return &httpProber{
		url:     s.Kind + "://" + addr.String() + s.Path,
		host:    s.Host,
		expect:  []byte(s.Expect),
		status:  s.ExpectStatus,
		timeout: s.Timeout,
		tr:      tr,
		client: &http.Client{
			Transport: tr,
			// A redirect is an answer; whether it is a good one is
			// decided by ExpectStatus.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (p *httpProber) probe(ctx context.Context) error {
	defer p.tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	if p.host != "" {
		req.Host = p.host
	}
	req.Header.Set("User-Agent", "xdplb-health-check")
	resp, err := p.client.Do(req)
	if err != nil {
		return timeoutErr(ctx, err, p.timeout, "GET "+p.url)
	}
	defer resp.Body.Close()
	ok := false
	for _, r := range p.status {
		ok = ok || r.Contains(resp.StatusCode)
	}
	if !ok {
		want := make([]string, len(p.status))
		for i, r := range p.status {
			want[i] = r.String()
		}
		return fmt.Errorf("GET %s: status %d (want %s)", p.url, resp.StatusCode, strings.Join(want, ", "))
	}
	if len(p.expect) == 0 {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return timeoutErr(ctx, fmt.Errorf("GET %s: reading body: %w", p.url, err), p.timeout, "GET "+p.url)
	}
	if !bytes.Contains(body, p.expect) {
		return fmt.Errorf("GET %s: body does not contain %q", p.url, p.expect)
	}
	return nil
}

type udpProber struct {
	addr    netip.AddrPort
	payload []byte
	expect  []byte
	timeout time.Duration
	listen  ListenPacketFunc
}

func (p *udpProber) probe(ctx context.Context) error {
	network, local := "udp4", "0.0.0.0:0"
	if p.addr.Addr().Is6() {
		network, local = "udp6", "[::]:0"
	}
	pc, err := p.listen(ctx, network, local)
	if err != nil {
		return err
	}
	defer pc.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := pc.SetDeadline(dl); err != nil {
			return err
		}
	}
	// Cancellation without a deadline (shutdown) unblocks the read too.
	stop := context.AfterFunc(ctx, func() { _ = pc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := pc.WriteTo(p.payload, net.UDPAddrFromAddrPort(p.addr)); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			// The socket's deadline is the context's, and may pass a
			// moment before the context notices.
			if errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("udp %s: no answer within %v", p.addr, p.timeout)
			}
			return err
		}
		if !fromAddr(from, p.addr) {
			continue // a stray datagram; keep waiting for the target's
		}
		if len(p.expect) > 0 && !bytes.Contains(buf[:n], p.expect) {
			return fmt.Errorf("udp %s: reply does not contain %q", p.addr, p.expect)
		}
		return nil
	}
}

// fromAddr reports whether a datagram's source is the target.
func fromAddr(from net.Addr, want netip.AddrPort) bool {
	if u, ok := from.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return ap.Addr().Unmap() == want.Addr() && ap.Port() == want.Port()
	}
	ap, err := netip.ParseAddrPort(from.String())
	return err == nil && ap.Addr().Unmap() == want.Addr() && ap.Port() == want.Port()
}
