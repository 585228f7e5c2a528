package connsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Handler is the daemon's side of a Node. Its methods are called from the
// Node's goroutines, possibly from several at once (the receive loop, a
// bulk pull per peer, a bulk dump per pulling peer); they must not block
// for long.
type Handler interface {
	// Adopt takes records received from node from, as deltas or as
	// part of a bulk dump. recs is reused once Adopt returns.
	Adopt(from uint8, recs []Record)
	// Heard takes a valid heartbeat of node from, sent from addr.
	Heard(from uint8, addr netip.AddrPort, hb Heartbeat)
	// Dump yields every connection this node knows, for a peer's bulk
	// pull, until yield returns false or ctx ends.
	Dump(ctx context.Context, yield func(Record) bool) error
}

// Node is one end of the sync channel: it sends this node's records and
// heartbeats to every peer, and passes the peers' to a Handler.
type Node struct {
	cfg      Config
	h        Handler
	udp      *net.UDPConn
	tcp      *net.TCPListener
	addr     netip.AddrPort
	peers    map[netip.AddrPort]*peer
	peerList []*peer             // in configured order, for sending and Stats
	peerIPs  map[netip.Addr]bool // bulk pullers connect from any port
	ctr      counters
	ran      atomic.Bool

	// Send fills batch under batchMu, and queues it on out when full;
	// kick tells the writer that a new batch has started.
	batchMu    sync.Mutex
	batch      []byte
	batchCount int
	batchV6    bool
	out        chan outgoing
	kick       chan struct{}

	// sendMu serializes numbering, sealing and writing datagrams, so
	// that they leave in seq order.
	sendMu  sync.Mutex
	sendMAC *macer
	epoch   uint32
	seq     uint32

	// bulkSlots bounds the dumps served at once.
	bulkSlots chan struct{}
}

const (
	// queueDatagrams bounds the DELTA datagrams waiting for the writer
	// (about 37,000 IPv4 records).
	queueDatagrams = 1024
	// maxBulkServes bounds the dumps served at once; each walks the
	// whole conntrack table.
	maxBulkServes = 4
)

// New checks cfg and opens the UDP socket and TCP listener, so that
// errors such as "address in use" surface here. Run must be called to
// use, and eventually close, them.
func New(cfg Config, h Handler) (*Node, error) {
	if h == nil {
		return nil, errors.New("connsync: no Handler")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("connsync: %w", err)
	}
	cfg = cfg.withDefaults()
	cfg.Key = bytes.Clone(cfg.Key)
	udp, tcp, err := listen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("connsync: %w", err)
	}
	n := &Node{
		cfg:       cfg,
		h:         h,
		udp:       udp,
		tcp:       tcp,
		addr:      udp.LocalAddr().(*net.UDPAddr).AddrPort(),
		peers:     map[netip.AddrPort]*peer{},
		peerIPs:   map[netip.Addr]bool{},
		out:       make(chan outgoing, queueDatagrams),
		kick:      make(chan struct{}, 1),
		sendMAC:   newMACer(cfg.Key),
		epoch:     epochAt(time.Now()),
		bulkSlots: make(chan struct{}, maxBulkServes),
	}
	for _, a := range cfg.Peers {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		p := &peer{addr: a, st: PeerStats{Addr: a, Bulk: BulkPending}}
		n.peers[a] = p
		n.peerList = append(n.peerList, p)
		n.peerIPs[a.Addr()] = true
	}
	return n, nil
}

// listen opens the UDP socket and the TCP listener on one address and
// port. When the port is 0, the one the OS picks for UDP may be taken
// for TCP; then it tries again.
func listen(addr netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	family := "4"
	if addr.Addr().Is6() {
		family = "6"
	}
	for try := 1; ; try++ {
		udp, err := net.ListenUDP("udp"+family, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		// Room for a burst of the peers' datagrams while the
		// Handler is busy; the kernel caps it at net.core.rmem_max.
		udp.SetReadBuffer(4 << 20)
		bound := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := net.ListenTCP("tcp"+family, net.TCPAddrFromAddrPort(bound))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if addr.Port() != 0 || try == 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listen tcp %s: %w", bound, err)
		}
	}
}

// Addr is the address and port the Node listens on: Config.Listen, with
// the port the OS chose if that was 0.
func (n *Node) Addr() netip.AddrPort { return n.addr }

// Run receives datagrams, sends queued records after BatchInterval, and
// serves bulk dumps, until ctx ends. Then it sends what is still queued,
// closes the sockets and returns nil once all its goroutines are done. It
// returns an error if a socket fails otherwise. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	if !n.ran.CompareAndSwap(false, true) {
		return errors.New("connsync: Run called twice")
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	var writer, loops sync.WaitGroup
	writer.Go(func() { n.writeLoop(ctx) })
	errs := make(chan error, 2)
	loops.Go(func() { errs <- n.readLoop(); stop() })
	loops.Go(func() { errs <- n.acceptLoop(ctx); stop() })

	<-ctx.Done()
	writer.Wait() // the queue drains before the socket closes
	n.udp.Close()
	n.tcp.Close()
	loops.Wait()
	close(errs)
	var err error
	for e := range errs {
		err = errors.Join(err, e)
	}
	return err
}

// Close releases the sockets of a Node whose Run was never called (its
// owner failed to start); after Run it does nothing, since Run closes them.
func (n *Node) Close() error {
	if !n.ran.CompareAndSwap(false, true) {
		return nil
	}
	return errors.Join(n.udp.Close(), n.tcp.Close())
}
