package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/ident"
	"github.com/xdplb/xdplb/internal/testrun"
)

// The private network of the datapath stages mirrors the reference
// scenario: the balancer's interface holds 172.19.0.5/16 and knows the
// two backends' and the client's MACs.
var (
	lbMAC     = mustMAC("02:00:00:00:00:05")
	clientMAC = mustMAC("02:00:00:00:00:09")
	rs1MAC    = mustMAC("02:00:00:00:00:02")
	rs2MAC    = mustMAC("02:00:00:00:00:03")

	lbAddr     = netip.MustParseAddr("172.19.0.5")
	vipAddr    = netip.MustParseAddr("172.19.0.10")
	rs1Addr    = netip.MustParseAddr("172.19.0.2")
	rs2Addr    = netip.MustParseAddr("172.19.0.3")
	clientAddr = netip.MustParseAddr("172.19.0.9")
)

func mustMAC(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

// dpEnv is a loaded datapath configured like the reference scenario (TCP
// VIP:80 round robin over rs1 and rs2, UDP VIP:53 to rs1:5353), the two
// reference programs, and a private namespace with one veth whose peer runs
// XDP_PASS, all driven from one thread pinned to one CPU.
type dpEnv struct {
	nt           *nsThread
	link         vethLink
	dp           *datapath.Datapath
	floor, empty *ebpf.Program
}

func newDPEnv(cpu int, locals []netip.Addr, portMin, portMax uint16) (_ *dpEnv, err error) {
	e := &dpEnv{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.floor, err = loadFloor(); err != nil {
		return nil, err
	}
	if e.empty, err = loadEmpty(); err != nil {
		return nil, err
	}
	if e.nt, err = newNSThread(cpu); err != nil {
		return nil, err
	}
	neigh := map[netip.Addr]net.HardwareAddr{rs1Addr: rs1MAC, rs2Addr: rs2MAC, clientAddr: clientMAC}
	e.nt.do(func() {
		e.link, err = addVeth("xb0", lbMAC, netip.PrefixFrom(lbAddr, 16), neigh, e.empty)
	})
	if err != nil {
		return nil, err
	}
	if e.dp, err = datapath.Load(datapath.Options{}); err != nil {
		return nil, err
	}
	if err := e.dp.SetLocal(locals, datapath.Ports{Min: portMin, Max: portMax}, datapath.Ports{Min: portMin, Max: portMax}); err != nil {
		return nil, err
	}
	// Backend ids 0 and 1 belong to service 0 (TCP 80), id 2 to service 1.
	backends := []struct {
		svc  uint32
		addr netip.AddrPort
	}{
		{0, netip.AddrPortFrom(rs1Addr, 80)}, {0, netip.AddrPortFrom(rs2Addr, 80)}, {1, netip.AddrPortFrom(rs1Addr, 5353)},
	}
	for id, b := range backends {
		if err := e.dp.SetBackend(uint32(id), b.svc, b.addr, false); err != nil {
			return nil, err
		}
	}
	if err := e.dp.WriteRing(0, []uint32{0, 1, 2}); err != nil {
		return nil, err
	}
	if err := e.dp.SetService(ident.Service{VIP: vipAddr, Port: 80, Proto: ident.TCP},
		datapath.Service{ID: 0, Ring: datapath.Ring{Offset: 0, Len: 2}}); err != nil {
		return nil, err
	}
	if err := e.dp.SetService(ident.Service{VIP: vipAddr, Port: 53, Proto: ident.UDP},
		datapath.Service{ID: 1, Ring: datapath.Ring{Offset: 2, Len: 1}}); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *dpEnv) close() {
	if e.dp != nil {
		e.dp.Close()
	}
	if e.nt != nil {
		e.nt.close()
	}
	for _, p := range []*ebpf.Program{e.floor, e.empty} {
		if p != nil {
			p.Close()
		}
	}
}

// runner passes one frame through a program once and returns the verdict
// and the kernel's time for the run.
type runner func(frame []byte) (uint32, time.Duration, error)

func (e *dpEnv) xdplb(frame []byte) (uint32, time.Duration, error) {
	v, _, d, err := e.dp.Run(frame, e.link.ifindex, 1)
	return v, d, err
}

func (e *dpEnv) program(p *ebpf.Program) runner {
	return func(frame []byte) (uint32, time.Duration, error) {
		v, _, d, err := testrun.Run(p, frame, e.link.ifindex, 1)
		return v, d, err
	}
}

// perPacket runs n frames through run, cycling through frames, each on a
// fresh copy (repeat 1: repeating would re-run the program on the frame it
// has just rewritten), and returns the kernel's mean ns per packet. It
// must run on the namespace thread.
func perPacket(run runner, frames [][]byte, n int, want uint32) (float64, error) {
	var total time.Duration
	for i := 0; i < n; i++ {
		v, d, err := run(frames[i%len(frames)])
		if err != nil {
			return 0, err
		}
		if v != want {
			return 0, fmt.Errorf("packet %d: verdict %d, want %d", i, v, want)
		}
		total += d
	}
	return float64(total.Nanoseconds()) / float64(n), nil
}

// conn is one connection through the datapath, as the program set it up.
type conn struct {
	client, local, backend netip.AddrPort
}

// open passes a TCP handshake from client through the datapath and
// returns the connection it made.
func (e *dpEnv) open(client netip.AddrPort) (conn, error) {
	vip80 := netip.AddrPortFrom(vipAddr, 80)
	syn := packet{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, proto: protoTCP, flags: tcpSYN}
	var err error
	e.nt.do(func() { err = expect(e.xdplb, syn.bytes(), xdpTX) })
	if err != nil {
		return conn{}, fmt.Errorf("SYN: %w", err)
	}
	c := conn{client: client}
	err = e.dp.WalkForward(func(batch []datapath.Forward) error {
		for _, f := range batch {
			if f.Key.Src == client && f.Key.Dst == vip80 {
				c.local, c.backend = f.Local, f.Backend
			}
		}
		return nil
	})
	if err != nil {
		return conn{}, err
	}
	if !c.local.IsValid() {
		return conn{}, fmt.Errorf("no conntrack entry for %s after its SYN", client)
	}
	synack := c.toClient()
	synack.flags = tcpSYN | tcpACK
	synack.payload = 0
	ack := c.toBackend()
	ack.payload = 0
	e.nt.do(func() {
		if err = expect(e.xdplb, synack.bytes(), xdpTX); err != nil {
			err = fmt.Errorf("SYN-ACK: %w", err)
			return
		}
		if err = expect(e.xdplb, ack.bytes(), xdpTX); err != nil {
			err = fmt.Errorf("ACK: %w", err)
		}
	})
	return c, err
}

func backendMAC(a netip.Addr) net.HardwareAddr {
	if a == rs2Addr {
		return rs2MAC
	}
	return rs1MAC
}

// toBackend is a 64-byte data segment from the client to the VIP.
func (c conn) toBackend() packet {
	return packet{srcMAC: clientMAC, dstMAC: lbMAC, src: c.client, dst: netip.AddrPortFrom(vipAddr, 80),
		proto: protoTCP, flags: tcpACK, payload: 64}
}

// toClient is the backend's 64-byte answer to the local address:port.
func (c conn) toClient() packet {
	return packet{srcMAC: backendMAC(c.backend.Addr()), dstMAC: lbMAC, src: c.backend, dst: c.local,
		proto: protoTCP, flags: tcpACK, payload: 64}
}

func expect(run runner, frame []byte, want uint32) error {
	v, _, err := run(frame)
	if err != nil {
		return err
	}
	if v != want {
		return fmt.Errorf("verdict %d, want %d", v, want)
	}
	return nil
}

// clearConntrack deletes every connection.
func clearConntrack(dp *datapath.Datapath) error {
	var fk, rk []datapath.FlowKey
	if err := dp.WalkForward(func(batch []datapath.Forward) error {
		for _, e := range batch {
			fk = append(fk, e.Key)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := dp.WalkReverse(func(batch []datapath.Reverse) error {
		for _, e := range batch {
			rk = append(rk, e.Key)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := dp.DeleteForward(fk); err != nil {
		return err
	}
	return dp.DeleteReverse(rk)
}

// Path names, as they appear in results.json.
const (
	pathFloor     = "floor"
	pathEmpty     = "empty"
	pathNewConn   = "new_tcp_connection"
	pathToBackend = "established_to_backend"
	pathToClient  = "established_to_client"
	pathUDP       = "udp"
	pathNoService = "not_for_service"

	compFIB         = "floor_fib_lookup"
	compLookup      = "floor_hash_lookup"
	compInsert      = "floor_hash_insert"
	compInsertSmall = "floor_hash_insert_64k"
)

// runDatapathCost measures every path's kernel time per packet, cfg.Runs
// times, the paths interleaved so that drift hits them alike.
func runDatapathCost(cfg Config, log logf) ([]PathCost, error) {
	var locals []netip.Addr
	for i := 5; i < 13; i++ {
		locals = append(locals, netip.AddrFrom4([4]byte{172, 19, 0, byte(i)}))
	}
	e, err := newDPEnv(cfg.CPU, locals, 10000, 60000)
	if err != nil {
		return nil, err
	}
	defer e.close()
	c, err := e.open(netip.AddrPortFrom(clientAddr, 40000))
	if err != nil {
		return nil, err
	}
	one := func(p packet) [][]byte { return [][]byte{p.bytes()} }
	toBackend := one(c.toBackend())
	udp := one(packet{srcMAC: clientMAC, dstMAC: lbMAC, src: c.client, dst: netip.AddrPortFrom(vipAddr, 53), proto: protoUDP, payload: 64})
	ssh := one(packet{srcMAC: clientMAC, dstMAC: lbMAC, src: c.client, dst: netip.AddrPortFrom(lbAddr, 22), proto: protoTCP, flags: tcpACK, payload: 64})

	// Component programs: the floor plus one of xdplb's operations.
	fib, err := loadFloorFIB(lbAddr.As4(), rs1Addr.As4())
	if err != nil {
		return nil, err
	}
	defer fib.Close()
	getMap, err := newTupleMap(1 << 20)
	if err != nil {
		return nil, err
	}
	defer getMap.Close()
	if err := getMap.Put(tupleKeyOf(toBackend[0]), make([]byte, ctValueSize)); err != nil {
		return nil, err
	}
	get, err := loadFloorLookup(getMap)
	if err != nil {
		return nil, err
	}
	defer get.Close()
	// Inserts into xdplb's default capacity and into a small table.
	putMap, err := newTupleMap(1 << 20)
	if err != nil {
		return nil, err
	}
	defer putMap.Close()
	put, err := loadFloorInsert(putMap)
	if err != nil {
		return nil, err
	}
	defer put.Close()
	putSmallMap, err := newTupleMap(1 << 16)
	if err != nil {
		return nil, err
	}
	defer putSmallMap.Close()
	putSmall, err := loadFloorInsert(putSmallMap)
	if err != nil {
		return nil, err
	}
	defer putSmall.Close()
	smallSYNs := min(cfg.SYNs, 1<<15)

	type path struct {
		name, label string
		run         runner
		frames      func(run int) [][]byte
		want        uint32
		n           int
	}
	static := func(f [][]byte) func(int) [][]byte { return func(int) [][]byte { return f } }
	syns := func(run int) [][]byte {
		frames := make([][]byte, cfg.SYNs)
		for i := range frames {
			client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(run), byte(i >> 8), byte(i)}), uint16(1024+i>>16))
			frames[i] = packet{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: netip.AddrPortFrom(vipAddr, 80), proto: protoTCP, flags: tcpSYN}.bytes()
		}
		return frames
	}
	paths := []path{
		{pathFloor, "floor (swap MACs, IPs, ports; XDP_TX)", e.program(e.floor), static(toBackend), xdpTX, cfg.Packets},
		{pathEmpty, "empty (return XDP_PASS)", e.program(e.empty), static(ssh), xdpPass, cfg.Packets},
		{pathNewConn, "new TCP connection (SYN: pick, allocate, 2 inserts)", e.xdplb, syns, xdpTX, cfg.SYNs},
		{pathToBackend, "established, client to backend", e.xdplb, static(toBackend), xdpTX, cfg.Packets},
		// The SYN runs reopen the benchmark connection, maybe with
		// another local port: build its reply frame from the current one.
		{pathToClient, "established, backend to client", e.xdplb, func(int) [][]byte { return one(c.toClient()) }, xdpTX, cfg.Packets},
		{pathUDP, "UDP, flow established", e.xdplb, static(udp), xdpTX, cfg.Packets},
		{pathNoService, "not for a service (to the host's port 22)", e.xdplb, static(ssh), xdpPass, cfg.Packets},
		{compFIB, "floor + 1 bpf_fib_lookup (to a backend)", e.program(fib), static(toBackend), xdpTX, cfg.Packets},
		{compLookup, "floor + 1 hash lookup (hit; 16-byte key, 1M entries, preallocated)", e.program(get), static(toBackend), xdpTX, cfg.Packets},
		{compInsert, "floor + 1 hash insert (new key, BPF_NOEXIST; 1M entries like xdplb's conntrack)", e.program(put), syns, xdpTX, cfg.SYNs},
		{compInsertSmall, "floor + 1 hash insert (new key, BPF_NOEXIST; 64k entries)", e.program(putSmall), func(run int) [][]byte {
			return syns(run)[:smallSYNs]
		}, xdpTX, smallSYNs},
	}
	results := make([]PathCost, len(paths))
	for i, p := range paths {
		results[i] = PathCost{Name: p.name, Label: p.label, Packets: p.n}
	}
	for run := 0; run < cfg.Runs; run++ {
		for i, p := range paths {
			frames := p.frames(run)
			var ns float64
			e.nt.do(func() { ns, err = perPacket(p.run, frames, p.n, p.want) })
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			if m := map[string]*ebpf.Map{compInsert: putMap, compInsertSmall: putSmallMap}[p.name]; m != nil {
				keys := make([][16]byte, len(frames))
				for i, f := range frames {
					keys[i] = tupleKeyOf(f)
				}
				if _, err := m.BatchDelete(keys, nil); err != nil {
					return nil, fmt.Errorf("%s: empty the map: %w", p.name, err)
				}
			}
			if p.name == pathNewConn {
				// Keep the table as it was for the other paths; the
				// benchmark connection stays, every SYN's goes.
				if err := clearConntrack(e.dp); err != nil {
					return nil, err
				}
				if c, err = e.open(c.client); err != nil {
					return nil, err
				}
			}
			results[i].Runs = append(results[i].Runs, ns)
		}
		log("  run %d/%d: %s", run+1, cfg.Runs, costLine(results))
	}
	for i := range results {
		results[i].NsPerPacket = median(results[i].Runs)
	}
	floor, empty := results[0].NsPerPacket, results[1].NsPerPacket
	for i := range results {
		results[i].VsFloor = results[i].NsPerPacket / floor
		results[i].VsEmpty = results[i].NsPerPacket / empty
		results[i].OverFloor = results[i].NsPerPacket - floor
	}
	return results, nil
}

// isComponent tells the component programs' results from the paths'.
func isComponent(name string) bool {
	return name == compFIB || name == compLookup || name == compInsert || name == compInsertSmall
}

func costLine(rs []PathCost) string {
	s := ""
	for _, r := range rs {
		if len(r.Runs) > 0 {
			s += fmt.Sprintf("%s %.0f  ", r.Name, r.Runs[len(r.Runs)-1])
		}
	}
	return s
}

// runPacketRate measures packets per second on one core in live-frames
// mode for the floor program and for xdplb's established client-to-backend
// path, both behind a restorer (see newRestorer) so that every packet
// starts as the original frame. What the program transmits really goes
// out of the veth to its peer, which runs XDP_PASS, after which the stack
// drops the frame (it is addressed to another host's MAC).
func runPacketRate(cfg Config, log logf) ([]LiveRate, error) {
	e, err := newDPEnv(cfg.CPU, []netip.Addr{lbAddr}, 10000, 60000)
	if err != nil {
		return nil, err
	}
	defer e.close()
	c, err := e.open(netip.AddrPortFrom(clientAddr, 40000))
	if err != nil {
		return nil, err
	}
	frame := c.toBackend().bytes()
	floor, err := newRestorer(frame, e.floor)
	if err != nil {
		return nil, err
	}
	defer floor.close()
	xdplb, err := newRestorer(frame, e.dp.Program())
	if err != nil {
		return nil, err
	}
	defer xdplb.close()
	progs := []struct {
		name, label string
		prog        *ebpf.Program
	}{
		{pathFloor, "floor (swap, XDP_TX)", floor.prog},
		{pathToBackend, "xdplb, established client to backend", xdplb.prog},
	}
	var out []LiveRate
	for _, p := range progs {
		lr := LiveRate{Name: p.name, Label: p.label, Packets: cfg.LivePackets, Batch: cfg.Batch}
		for run := 0; run < cfg.LiveRuns; run++ {
			var wall, kernel time.Duration
			var delivered uint64
			e.nt.do(func() {
				before, serr := peerRx(e.link.peerIfindex)
				if serr != nil {
					err = serr
					return
				}
				wall, kernel, err = liveRun(func(n uint32) (time.Duration, time.Duration, error) {
					return testrun.Live(p.prog, frame, e.link.ifindex, n, cfg.Batch)
				}, cfg.LivePackets)
				after, serr := peerRx(e.link.peerIfindex)
				if err == nil && serr != nil {
					err = serr
				}
				delivered = after - before
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			mpps := float64(cfg.LivePackets) / wall.Seconds() / 1e6
			lr.Runs = append(lr.Runs, mpps)
			lr.KernelNs = append(lr.KernelNs, float64(kernel.Nanoseconds()))
			lr.Delivered = float64(delivered) / float64(cfg.LivePackets)
			log("  %s run %d/%d: %.2f Mpps (%d packets in %s; %.0f%% reached the peer)",
				p.name, run+1, cfg.LiveRuns, mpps, cfg.LivePackets, wall.Round(time.Millisecond), 100*lr.Delivered)
		}
		lr.Mpps = median(lr.Runs)
		lr.NsPerPacket = 1000 / lr.Mpps
		out = append(out, lr)
	}
	out[1].VsFloor = out[1].Mpps / out[0].Mpps
	out[0].VsFloor = 1
	return out, nil
}

// liveRun sends total packets in chunks of at most a million (a signal
// aborts a live run with EINTR; only the interrupted chunk is redone) and
// returns the summed wall time and the kernel's mean time per packet.
func liveRun(run func(uint32) (time.Duration, time.Duration, error), total int) (time.Duration, time.Duration, error) {
	const chunk = 1 << 20
	var wall, kernel time.Duration
	for left := total; left > 0; {
		n := min(left, chunk)
		var w, k time.Duration
		var err error
		for try := 0; ; try++ {
			w, k, err = run(uint32(n))
			if !errors.Is(err, unix.EINTR) || try == 10 {
				break
			}
		}
		if err != nil {
			return 0, 0, err
		}
		wall += w
		kernel += k * time.Duration(n)
		left -= n
	}
	return wall, kernel / time.Duration(total), nil
}

func peerRx(ifindex int) (uint64, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return 0, err
	}
	if l.Attrs().Statistics == nil {
		return 0, nil
	}
	return l.Attrs().Statistics.RxPackets, nil
}

// runScale measures the conntrack memory and the established paths with
// an empty table and with cfg.ScaleEntries connections planted: once for
// the same connection over and over (its entries stay in cache) and once
// cycling through 65,536 random planted connections (a cache miss or two
// per lookup, as real traffic over many flows would see).
func runScale(cfg Config, log logf) (*Scale, error) {
	e, err := newDPEnv(cfg.CPU, []netip.Addr{lbAddr}, 1024, 65535)
	if err != nil {
		return nil, err
	}
	defer e.close()
	c, err := e.open(netip.AddrPortFrom(clientAddr, 40000))
	if err != nil {
		return nil, err
	}
	capacity := e.dp.ConntrackCapacity()
	s := &Scale{Capacity: capacity, Entries: cfg.ScaleEntries, EntryBytes: uint64(datapath.ConntrackEntryBytes),
		EstimatedBytes: uint64(datapath.ConntrackEntryBytes) * uint64(capacity)}
	if s.MemlockEmpty, err = e.dp.ConntrackMemlock(); err != nil {
		return nil, err
	}
	measure := func(name string, toBackend, toClient [][]byte) (ScaleCase, error) {
		sc := ScaleCase{Name: name}
		var err error
		for run := 0; run < cfg.Runs; run++ {
			var b, cl float64
			e.nt.do(func() {
				if b, err = perPacket(e.xdplb, toBackend, cfg.Packets, xdpTX); err != nil {
					return
				}
				cl, err = perPacket(e.xdplb, toClient, cfg.Packets, xdpTX)
			})
			if err != nil {
				return sc, fmt.Errorf("%s: %w", name, err)
			}
			sc.ToBackendRuns = append(sc.ToBackendRuns, b)
			sc.ToClientRuns = append(sc.ToClientRuns, cl)
		}
		sc.ToBackend, sc.ToClient = median(sc.ToBackendRuns), median(sc.ToClientRuns)
		log("  %s: client to backend %.0f ns/packet, backend to client %.0f ns/packet", name, sc.ToBackend, sc.ToClient)
		return sc, nil
	}
	hotB, hotC := [][]byte{c.toBackend().bytes()}, [][]byte{c.toClient().bytes()}
	empty, err := measure("empty table (1 connection)", hotB, hotC)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	planted, err := plant(e, cfg.ScaleEntries)
	if err != nil {
		return nil, err
	}
	s.PlantSeconds = time.Since(start).Seconds()
	log("  planted %d connections in %.1fs", cfg.ScaleEntries, s.PlantSeconds)
	if s.MemlockFull, err = e.dp.ConntrackMemlock(); err != nil {
		return nil, err
	}
	hot, err := measure(fmt.Sprintf("%d entries, same connection", cfg.ScaleEntries), hotB, hotC)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	spread := min(65536, len(planted))
	coldB, coldC := make([][]byte, spread), make([][]byte, spread)
	for i := range spread {
		pc := planted[rng.IntN(len(planted))]
		coldB[i], coldC[i] = pc.toBackend().bytes(), pc.toClient().bytes()
	}
	cold, err := measure(fmt.Sprintf("%d entries, %d connections in turn", cfg.ScaleEntries, spread), coldB, coldC)
	if err != nil {
		return nil, err
	}
	s.Cases = []ScaleCase{empty, hot, cold}
	return s, nil
}

// plant inserts n established connections with PutConns: clients
// 10.x.y.z:40000, local addresses 172.19.1.0-15 (outside the datapath's
// own pool, so they never collide with a connection it opens) with ports
// from 1024, backends alternating between rs1 and rs2.
func plant(e *dpEnv, n int) ([]conn, error) {
	now := datapath.Now()
	conns := make([]conn, 0, n)
	const batch = 1 << 16
	fs := make([]datapath.Forward, 0, batch)
	rs := make([]datapath.Reverse, 0, batch)
	for i := 0; i < n; i++ {
		c := conn{
			client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000),
			local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 19, 1, byte(i % 16)}), uint16(1024+i/16)),
		}
		c.backend = netip.AddrPortFrom(rs1Addr, 80)
		if i%2 == 1 {
			c.backend = netip.AddrPortFrom(rs2Addr, 80)
		}
		conns = append(conns, c)
		f := datapath.Forward{
			Key:   datapath.FlowKey{Src: c.client, Dst: netip.AddrPortFrom(vipAddr, 80), Proto: datapath.TCP},
			Local: c.local, Backend: c.backend, BackendID: uint32(i % 2),
			State: datapath.StateEstablished, LastSeen: now,
		}
		fs = append(fs, f)
		rs = append(rs, datapath.Reverse{
			Key: f.ReverseKey(), Client: f.Key, ClientMAC: [6]byte(clientMAC), LBMAC: [6]byte(lbMAC),
			Ifindex: uint32(e.link.ifindex), BackendID: uint32(i % 2), State: datapath.StateEstablished, LastSeen: now,
		})
		if len(fs) == batch || i == n-1 {
			if err := e.dp.PutConns(fs, rs); err != nil {
				return nil, fmt.Errorf("plant connections: %w", err)
			}
			fs, rs = fs[:0], rs[:0]
		}
	}
	return conns, nil
}
