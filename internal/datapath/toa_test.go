package datapath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"
)

var (
	vip88 = netip.AddrPortFrom(vip, 88) // the fixture's TOA service
	rs88  = ap("172.19.0.2:88")
)

func tcpOption(kind layers.TCPOptionKind, data ...byte) layers.TCPOption {
	return layers.TCPOption{OptionType: kind, OptionLength: uint8(len(data) + 2), OptionData: data}
}

var (
	optNOP       = layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1}
	optMSS1460   = tcpOption(layers.TCPOptionKindMSS, 0x05, 0xb4)
	optMSS1452   = tcpOption(layers.TCPOptionKindMSS, 0x05, 0xac)
	optSACKPerm  = tcpOption(layers.TCPOptionKindSACKPermitted)
	optTimestamp = tcpOption(layers.TCPOptionKindTimestamps, 0, 0, 0, 1, 0, 0, 0, 2)
	optWScale    = tcpOption(layers.TCPOptionKindWindowScale, 7)
)

// toaOption is the option the datapath inserts for client c: kind 254,
// length 8, port and IPv4 address in network order.
func toaOption(c netip.AddrPort) layers.TCPOption {
	data := binary.BigEndian.AppendUint16(nil, c.Port())
	return tcpOption(254, append(data, c.Addr().AsSlice()...)...)
}

// TestTOA follows a connection to a TOA service: the SYN goes unchanged,
// the SYN-ACK announces an MSS 8 bytes lower, the client's packets that
// acknowledge it carry the client's address, later ones do not, one with
// no room goes on without, and a kind-254 option of the client's own is
// always disabled. Every expected frame is built by
// gopacket, checksums and lengths included.
func TestTOA(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	counts := func() map[string]uint64 {
		t.Helper()
		c, err := f.dp.TOACounts()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	moved := func(t *testing.T, before map[string]uint64, want map[string]uint64) {
		t.Helper()
		after := counts()
		for _, name := range toaCounterNames {
			if d := after[name] - before[name]; d != want[name] {
				t.Errorf("TOA counter %s moved by %d, want %d", name, d, want[name])
			}
		}
	}

	syn := clientSYN(client, clientMAC, vip88)
	syn.tcpOptions = []layers.TCPOption{optMSS1460, optSACKPerm, optTimestamp, optNOP, optWScale}
	var verdict uint32
	var out []byte
	var err error
	f.nt.do(func() { verdict, out, _, err = f.dp.Run(syn.bytes(t), f.lb0.ifindex, 1) })
	if err != nil || verdict != xdpTX {
		t.Fatalf("SYN: verdict %d err %v", verdict, err)
	}
	local := netip.AddrPortFrom(localAddr, portFromBE16(f.forwardTo(t, client, 88).LocalPort))
	toBackend := func(c frame) frame {
		c.srcMAC, c.dstMAC, c.src, c.dst = lbMAC, rs1MAC, local, rs88
		return c
	}
	toClient := func(c frame) frame {
		c.srcMAC, c.dstMAC, c.src, c.dst = lbMAC, clientMAC, vip88, client
		return c
	}
	withTOA := func(c frame) frame {
		c.tcpOptions = append([]layers.TCPOption{toaOption(client)}, c.tcpOptions...)
		return c
	}
	t.Run("the SYN carries no option", func(t *testing.T) {
		if want := toBackend(syn).bytes(t); !bytes.Equal(out, want) {
			t.Errorf("SYN to the backend differs\n got: %x\nwant: %x", out, want)
		}
	})

	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs88, dst: local, syn: true, ack: true, seq: 5000, ackNum: 2,
		tcpOptions: []layers.TCPOption{optMSS1460, optSACKPerm, optTimestamp, optNOP, optWScale}}
	t.Run("the SYN-ACK's MSS is lowered by 8", func(t *testing.T) {
		before := counts()
		want := synAck
		want.tcpOptions = []layers.TCPOption{optMSS1452, optSACKPerm, optTimestamp, optNOP, optWScale}
		f.run(t, synAck.bytes(t), f.lb0.ifindex, xdpTX, toClient(want).bytes(t), "fwd_tx")
		moved(t, before, map[string]uint64{"mss_lowered": 1})
		k := xdplbCtKey{Saddr: mustBE32(client.Addr()), Daddr: mustBE32(vip), Sport: be16(client.Port()), Dport: be16(88), Proto: TCP}
		var ack uint32
		if err := f.dp.objs.ToaPending.Lookup(k, &ack); err != nil || ack != 5001 {
			t.Errorf("pending acknowledgement %d (%v), want 5001", ack, err)
		}
	})
	t.Run("an MSS at an odd offset is lowered too", func(t *testing.T) {
		odd := synAck
		odd.tcpOptions = []layers.TCPOption{optNOP, optMSS1460, optNOP, optNOP, optNOP}
		want := odd
		want.tcpOptions = []layers.TCPOption{optNOP, optMSS1452, optNOP, optNOP, optNOP}
		f.run(t, odd.bytes(t), f.lb0.ifindex, xdpTX, toClient(want).bytes(t), "fwd_tx")
	})

	handshake := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip88, ack: true, seq: 2, ackNum: 5001,
		tcpOptions: []layers.TCPOption{optNOP, optNOP, optTimestamp}}
	for _, name := range []string{"the handshake ACK carries the client's address", "a retransmitted handshake ACK carries it again"} {
		t.Run(name, func(t *testing.T) {
			before := counts()
			f.run(t, handshake.bytes(t), f.lb0.ifindex, xdpTX, toBackend(withTOA(handshake)).bytes(t), "fwd_tx")
			moved(t, before, map[string]uint64{"inserted": 1})
		})
	}
	request := handshake
	request.psh, request.payload = true, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	t.Run("data that still acknowledges only the SYN-ACK carries it", func(t *testing.T) {
		f.run(t, request.bytes(t), f.lb0.ifindex, xdpTX, toBackend(withTOA(request)).bytes(t), "fwd_tx")
	})
	t.Run("a VLAN-tagged one carries it", func(t *testing.T) {
		if err := f.dp.addVLAN(f.lb0.ifindex, 100); err != nil {
			t.Fatal(err)
		}
		tagged := handshake
		tagged.vlan = 100
		f.run(t, tagged.bytes(t), f.lb0.ifindex, xdpTX, toBackend(withTOA(tagged)).bytes(t), "fwd_tx")
	})
	t.Run("one with no option space left goes on unchanged", func(t *testing.T) {
		full := handshake
		full.tcpOptions = []layers.TCPOption{optTimestamp}
		for range 30 {
			full.tcpOptions = append(full.tcpOptions, optNOP)
		}
		before := counts()
		f.run(t, full.bytes(t), f.lb0.ifindex, xdpTX, toBackend(full).bytes(t), "fwd_tx")
		moved(t, before, map[string]uint64{"no_room": 1})
	})
	t.Run("one that would exceed the MTU goes on unchanged", func(t *testing.T) {
		big := handshake
		big.payload = make([]byte, 1500-20-32) // an IPv4 packet of 1500 bytes: the veth's MTU
		before := counts()
		f.run(t, big.bytes(t), f.lb0.ifindex, xdpTX, toBackend(big).bytes(t), "fwd_tx")
		moved(t, before, map[string]uint64{"too_big": 1})
	})
	forged := toaOption(ap("6.6.6.6:666"))
	disabled := forged
	disabled.OptionType = 253
	t.Run("a client's own option is disabled, and ours goes first", func(t *testing.T) {
		own := handshake
		own.tcpOptions = []layers.TCPOption{optNOP, forged, optNOP, optNOP, optNOP} // the kind at an odd offset
		want := own
		want.tcpOptions = []layers.TCPOption{optNOP, disabled, optNOP, optNOP, optNOP}
		before := counts()
		f.run(t, own.bytes(t), f.lb0.ifindex, xdpTX, toBackend(withTOA(want)).bytes(t), "fwd_tx")
		moved(t, before, map[string]uint64{"inserted": 1, "forged": 1})
	})
	t.Run("a client's own option is disabled where ours does not fit", func(t *testing.T) {
		full := handshake
		full.tcpOptions = []layers.TCPOption{forged, forged, optTimestamp}
		for range 14 {
			full.tcpOptions = append(full.tcpOptions, optNOP)
		}
		want := full
		want.tcpOptions = append([]layers.TCPOption{disabled, disabled}, full.tcpOptions[2:]...)
		before := counts()
		f.run(t, full.bytes(t), f.lb0.ifindex, xdpTX, toBackend(want).bytes(t), "fwd_tx")
		moved(t, before, map[string]uint64{"no_room": 1, "forged": 2})
	})
	t.Run("IPv4 options: no room, and a client's own option is disabled", func(t *testing.T) {
		withIPOpts := handshake
		withIPOpts.ipOptions = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 1}}
		withIPOpts.tcpOptions = []layers.TCPOption{forged}
		want := withIPOpts
		want.tcpOptions = []layers.TCPOption{disabled}
		before := counts()
		f.run(t, withIPOpts.bytes(t), f.lb0.ifindex, xdpTX, toBackend(want).bytes(t), "fwd_tx")
		moved(t, before, map[string]uint64{"no_room": 1, "forged": 1})
	})
	t.Run("once the client acknowledges more, no packet carries it", func(t *testing.T) {
		later := handshake
		later.ackNum = 6000
		before := counts()
		f.run(t, later.bytes(t), f.lb0.ifindex, xdpTX, toBackend(later).bytes(t), "fwd_tx")
		f.run(t, handshake.bytes(t), f.lb0.ifindex, xdpTX, toBackend(handshake).bytes(t), "fwd_tx")
		moved(t, before, nil)
	})
	t.Run("nor a client's own option", func(t *testing.T) {
		later := handshake
		later.ackNum = 6000
		later.tcpOptions = []layers.TCPOption{forged}
		want := later
		want.tcpOptions = []layers.TCPOption{disabled}
		before := counts()
		f.run(t, later.bytes(t), f.lb0.ifindex, xdpTX, toBackend(want).bytes(t), "fwd_tx")
		moved(t, before, map[string]uint64{"forged": 1})
	})
}

// TestTOAReopened: a client reopening its port gets a new SYN-ACK, whose
// sequence replaces the remembered one; a FIN that acknowledges it
// carries the option too (it may be what completes the backend's
// handshake).
func TestTOAReopened(t *testing.T) {
	f := newFixture(t, 10000, 10000)
	f.handshake(t, vip88)
	local := ap("172.19.0.5:10000")
	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs88, dst: local, syn: true, ack: true, seq: 7000, ackNum: 2,
		tcpOptions: []layers.TCPOption{optMSS1460}}
	want := synAck
	want.srcMAC, want.dstMAC, want.src, want.dst = lbMAC, clientMAC, vip88, client
	want.tcpOptions = []layers.TCPOption{optMSS1452}
	f.run(t, synAck.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")
	fin := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip88, ack: true, fin: true, seq: 2, ackNum: 7001}
	wantFin := fin
	wantFin.srcMAC, wantFin.dstMAC, wantFin.src, wantFin.dst = lbMAC, rs1MAC, local, rs88
	wantFin.tcpOptions = []layers.TCPOption{toaOption(client)}
	// gopacket pads the 54-byte FIN to Ethernet's 60; the padding stays
	// behind the grown packet, as any trailer would.
	in := fin.bytes(t)
	out := append(wantFin.bytes(t), make([]byte, len(in)-54)...)
	f.run(t, in, f.lb0.ifindex, xdpTX, out, "fwd_tx")
}

// TestTOAOnlyForItsServices: another service's SYN-ACK keeps its MSS and
// its client's packets stay as they are.
func TestTOAOnlyForItsServices(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	var verdict uint32
	var err error
	f.nt.do(func() { verdict, _, _, err = f.dp.Run(clientSYN(client, clientMAC, vip80).bytes(t), f.lb0.ifindex, 1) })
	if err != nil || verdict != xdpTX {
		t.Fatalf("SYN: verdict %d err %v", verdict, err)
	}
	local := netip.AddrPortFrom(localAddr, portFromBE16(f.forward(t, client).LocalPort))
	rs1 := ap("172.19.0.2:80")
	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs1, dst: local, syn: true, ack: true, seq: 5000, ackNum: 2,
		tcpOptions: []layers.TCPOption{optMSS1460}}
	want := synAck
	want.srcMAC, want.dstMAC, want.src, want.dst = lbMAC, clientMAC, vip80, client
	f.run(t, synAck.bytes(t), f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")
	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 2, ackNum: 5001}
	wantAck := ack
	wantAck.srcMAC, wantAck.dstMAC, wantAck.src, wantAck.dst = lbMAC, rs1MAC, local, rs1
	f.run(t, ack.bytes(t), f.lb0.ifindex, xdpTX, wantAck.bytes(t), "fwd_tx")
}
