package datapath

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// TestUDP: first datagram opens the flow, the reply finds the client; a zero
// UDP checksum stays zero.
func TestUDP(t *testing.T) {
	for _, zero := range []bool{false, true} {
		name := "checksummed"
		if zero {
			name = "zero checksum"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, 10000, 10000)
			vip53 := netip.AddrPortFrom(vip, 53)
			rs := ap("172.19.0.2:5353")
			local := ap("172.19.0.5:10000")
			q := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip53, udp: true, zeroUDPCsum: zero, payload: []byte("query")}
			wq := q
			wq.srcMAC, wq.dstMAC, wq.src, wq.dst = lbMAC, rs1MAC, local, rs
			f.run(t, q.bytes(t), f.lb0.ifindex, xdpTX, wq.bytes(t), "fwd_tx")
			f.run(t, q.bytes(t), f.lb0.ifindex, xdpTX, wq.bytes(t), "fwd_tx")

			r := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs, dst: local, udp: true, zeroUDPCsum: zero, payload: []byte("answer!")}
			wr := r
			wr.srcMAC, wr.dstMAC, wr.src, wr.dst = lbMAC, clientMAC, vip53, client
			f.run(t, r.bytes(t), f.lb0.ifindex, xdpTX, wr.bytes(t), "fwd_tx")
			tr, err := f.dp.ServiceTraffic(1)
			if err != nil {
				t.Fatal(err)
			}
			if tr.NewConns != 1 || tr.PacketsIn != 2 || tr.PacketsOut != 1 {
				t.Errorf("traffic %+v", tr)
			}
		})
	}
}

// TestHeaderVariants: a VLAN tag is kept, IPv4 options are skipped by IHL
// and kept, and checksums still come out right.
func TestHeaderVariants(t *testing.T) {
	f := newFixture(t, 10000, 10000)
	rs := ap("172.19.0.2:80")
	local := ap("172.19.0.5:10000")

	opts := []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 1}}
	withOpts := clientSYN(client, clientMAC, vip80)
	withOpts.ipOptions = opts
	want := withOpts
	want.srcMAC, want.dstMAC, want.src, want.dst = lbMAC, rs1MAC, local, rs
	in := withOpts.bytes(t)
	if in[14]&0x0f != 6 {
		t.Fatalf("test frame IHL %d, want 6", in[14]&0x0f)
	}
	f.run(t, in, f.lb0.ifindex, xdpTX, want.bytes(t), "fwd_tx")

	if err := f.dp.addVLAN(f.lb0.ifindex, 42); err != nil {
		t.Fatal(err)
	}
	tagged := clientSYN(client2, client2MAC, vip80)
	tagged.vlan = 42
	wantTagged := tagged
	wantTagged.srcMAC, wantTagged.dstMAC = lbMAC, rs2MAC
	wantTagged.src, wantTagged.dst = local, ap("172.19.0.3:8080")
	f.run(t, tagged.bytes(t), f.lb0.ifindex, xdpTX, wantTagged.bytes(t), "fwd_tx")
}

// TestNotForAService: the host keeps its own traffic.
func TestNotForAService(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	ssh := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: ap("172.19.0.5:22"), syn: true}
	f.run(t, ssh.bytes(t), f.lb0.ifindex, xdpPass, nil, "pass_no_service")

	otherPort := clientSYN(client, clientMAC, netip.AddrPortFrom(vip, 443))
	f.run(t, otherPort.bytes(t), f.lb0.ifindex, xdpPass, nil, "pass_no_service")

	// A reply to a NAT port that no connection holds: the host's own
	// connection (a health check, say) shares the address.
	stray := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: ap("172.19.0.2:80"), dst: ap("172.19.0.5:10500"), syn: true, ack: true}
	f.run(t, stray.bytes(t), f.lb0.ifindex, xdpPass, nil, "pass_no_conn")

	arp := append(append(append([]byte{}, lbMAC...), clientMAC...), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	f.run(t, arp, f.lb0.ifindex, xdpPass, nil, "pass_not_ipv4")

	gre := ssh.bytes(t)
	gre[14+9] = 47 // protocol GRE; nothing below reads the rest
	f.run(t, gre, f.lb0.ifindex, xdpPass, nil, "pass_not_l4")

	icmp := ssh.bytes(t)
	icmp[14+9] = 1 // protocol ICMP, type 0x9c: no error
	f.run(t, icmp, f.lb0.ifindex, xdpPass, nil, "pass_icmp")
}

// TestDrops covers every reason a packet to a service is dropped.
func TestDrops(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	ack := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 9}
	f.run(t, ack.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_conn")
	synAck := clientSYN(client, clientMAC, vip80)
	synAck.ack = true
	f.run(t, synAck.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_conn")

	f.run(t, clientSYN(client, clientMAC, netip.AddrPortFrom(vip, 83)).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_backend")
	f.run(t, clientSYN(client, clientMAC, netip.AddrPortFrom(vip, 82)).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_route")

	events := make(chan Event, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.dp.ReadEvents(ctx, func(e Event) { events <- e }) }()
	f.run(t, clientSYN(client, clientMAC, netip.AddrPortFrom(vip, 81)).bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_neigh")
	select {
	case e := <-events:
		if e.Type != EventNoNeighbour || e.Addr != netip.MustParseAddr("172.19.0.99") {
			t.Errorf("event %+v, want no-neighbour for 172.19.0.99", e)
		}
	case <-time.After(5 * time.Second):
		t.Error("no event for the unresolved neighbour")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestRedirect: a backend behind another interface is reached by redirect.
func TestRedirect(t *testing.T) {
	f := newFixture(t, 10000, 10000)
	syn := clientSYN(client, clientMAC, netip.AddrPortFrom(vip, 84))
	want := syn
	want.srcMAC, want.dstMAC, want.src, want.dst = lb1MAC, rs3MAC, ap("172.19.0.5:10000"), ap("10.20.0.2:80")
	f.run(t, syn.bytes(t), f.lb0.ifindex, xdpRedirect, want.bytes(t), "fwd_redirect")
	// The reply comes in on lb1 and goes back out of lb0.
	reply := frame{srcMAC: rs3MAC, dstMAC: lb1MAC, src: ap("10.20.0.2:80"), dst: ap("172.19.0.5:10000"), syn: true, ack: true}
	wantReply := reply
	wantReply.srcMAC, wantReply.dstMAC, wantReply.src, wantReply.dst = lbMAC, clientMAC, netip.AddrPortFrom(vip, 84), client
	f.run(t, reply.bytes(t), f.lb1.ifindex, xdpRedirect, wantReply.bytes(t), "fwd_redirect")
}

// TestMalformed: cut or inconsistent headers are passed with a counter,
// fragments to a VIP are dropped, and nothing is rewritten.
func TestMalformed(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	tcp := clientSYN(client, clientMAC, vip80).bytes(t)
	udp := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: netip.AddrPortFrom(vip, 53), udp: true, payload: []byte("q")}.bytes(t)

	cases := []struct {
		name    string
		in      []byte
		verdict uint32
		reason  string
	}{
		// A frame shorter than an Ethernet header cannot be test-run (the
		// kernel refuses it), so truncation starts at the VLAN tag.
		{"truncated vlan tag", append(append([]byte{}, tcp[:12]...), 0x81, 0x00, 0x00), xdpPass, "pass_truncated"},
		{"truncated IPv4", tcp[:14+12], xdpPass, "pass_truncated"},
		{"truncated TCP", tcp[:14+20+10], xdpPass, "pass_truncated"},
		{"truncated UDP", udp[:14+20+6], xdpPass, "pass_truncated"},
		{"IHL below 5", patch(tcp, 14, 0x44), xdpPass, "pass_bad_header"},
		{"IHL beyond the frame", patch(patch(tcp, 14, 0x4f), 17, 80)[:14+40], xdpPass, "pass_truncated"},
		{"total length below IHL", patch(patch(tcp, 16, 0), 17, 10), xdpPass, "pass_bad_header"},
		{"not version 4", patch(tcp, 14, 0x65), xdpPass, "pass_bad_header"},
		{"TCP data offset below 5", patch(tcp, 14+20+12, 0x40), xdpPass, "pass_bad_header"},
		{"first fragment to a VIP", frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, syn: true, moreFragments: true}.bytes(t), xdpDrop, "drop_fragment"},
		{"later fragment to a VIP", frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, fragOffset: 185}.bytes(t), xdpDrop, "drop_fragment"},
		{"fragment to the host", frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: ap("172.19.0.5:22"), ack: true, fragOffset: 185}.bytes(t), xdpPass, "pass_fragment"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.run(t, c.in, f.lb0.ifindex, c.verdict, nil, c.reason)
		})
	}
}

func patch(b []byte, off int, v byte) []byte {
	out := append([]byte{}, b...)
	out[off] = v
	return out
}
