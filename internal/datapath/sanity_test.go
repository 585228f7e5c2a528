package datapath

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"
)

// TestNotForwarded: frames the kernel would drop, or a router would not
// forward, are not balanced, in either direction: each leaves unchanged,
// passed to the host or dropped, with its counter.
func TestNotForwarded(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	syn := clientSYN(client, clientMAC, vip80)
	with := func(fr frame, change func(*frame)) []byte {
		change(&fr)
		return fr.bytes(t)
	}
	// edit serialises fr, then changes its bytes (offsets from the IPv4
	// header) and, if fix, recomputes the IPv4 checksum.
	edit := func(fr frame, fix bool, change func(ip []byte)) []byte {
		b := fr.bytes(t)
		ip := b[14:]
		change(ip)
		if fix {
			ip[10], ip[11] = 0, 0
			binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:int(ip[0]&0xf)*4]))
		}
		return b
	}
	udp := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: netip.AddrPortFrom(vip, 53), udp: true, payload: []byte("query")}
	for _, c := range []struct {
		name, reason string
		in           []byte
		verdict      uint32
	}{
		{"broadcast", "pass_not_ours", with(syn, func(fr *frame) { fr.dstMAC = mac("ff:ff:ff:ff:ff:ff") }), xdpPass},
		{"multicast", "pass_not_ours", with(syn, func(fr *frame) { fr.dstMAC = mac("01:00:5e:00:00:01") }), xdpPass},
		{"another host's MAC", "pass_not_ours", with(syn, func(fr *frame) { fr.dstMAC = rs2MAC }), xdpPass},
		{"lb1's MAC on lb0", "pass_not_ours", with(syn, func(fr *frame) { fr.dstMAC = lb1MAC }), xdpPass},
		{"TTL 0", "drop_ttl", edit(syn, true, func(ip []byte) { ip[8] = 0 }), xdpDrop},
		{"TTL 1", "drop_ttl", with(syn, func(fr *frame) { fr.ttl = 1 }), xdpDrop},
		{"bad IPv4 checksum", "pass_bad_checksum", edit(syn, false, func(ip []byte) { ip[11] ^= 0x40 }), xdpPass},
		{"bad checksum with options", "pass_bad_checksum",
			edit(frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, syn: true, ipOptions: rrOption}, false,
				func(ip []byte) { ip[24] ^= 1 }), xdpPass},
		{"total length beyond the frame", "pass_bad_header", edit(syn, true, func(ip []byte) { binary.BigEndian.PutUint16(ip[2:], 1500) }), xdpPass},
		{"TCP data offset beyond the segment", "pass_bad_header", edit(syn, true, func(ip []byte) { ip[20+12] = 0xf0 }), xdpPass},
		{"UDP length below 8", "pass_bad_header", edit(udp, true, func(ip []byte) { binary.BigEndian.PutUint16(ip[20+4:], 7) }), xdpPass},
		{"UDP length beyond the datagram", "pass_bad_header", edit(udp, true, func(ip []byte) { binary.BigEndian.PutUint16(ip[20+4:], 14) }), xdpPass},
		{"SYN+FIN", "drop_bad_flags", with(syn, func(fr *frame) { fr.fin = true }), xdpDrop},
		{"SYN+RST", "drop_bad_flags", with(syn, func(fr *frame) { fr.rst = true }), xdpDrop},
		{"no flags", "drop_bad_flags", with(syn, func(fr *frame) { fr.syn = false }), xdpDrop},
		{"PSH alone", "drop_bad_flags", with(syn, func(fr *frame) { fr.syn, fr.psh = false, true }), xdpDrop},
		{"FIN without ACK", "drop_bad_flags", with(syn, func(fr *frame) { fr.syn, fr.fin = false, true }), xdpDrop},
	} {
		t.Run(c.name, func(t *testing.T) { f.run(t, c.in, f.lb0.ifindex, c.verdict, nil, c.reason) })
	}
	if err := f.dp.objs.CtForward.Lookup(mustKey(t, FlowKey{Src: client, Dst: vip80, Proto: TCP}), new(xdplbCtFwd)); err == nil {
		t.Error("a frame that was not forwarded opened a connection")
	}

	// The same checks on a backend's reply to a local port.
	f.nt.do(func() { _, _, _, _ = f.dp.Run(syn.bytes(t), f.lb0.ifindex, 1) })
	local := f.reverseLocal(t, FlowKey{Src: client, Dst: vip80, Proto: TCP})
	be := f.forward(t, client)
	rs := netip.AddrPortFrom(addrFromBE32(be.BackendAddr), portFromBE16(be.BackendPort))
	synAck := frame{srcMAC: rs1MAC, dstMAC: lbMAC, src: rs, dst: local, syn: true, ack: true, seq: 5}
	f.run(t, edit(synAck, false, func(ip []byte) { ip[10] ^= 1 }), f.lb0.ifindex, xdpPass, nil, "pass_bad_checksum")
	f.run(t, with(synAck, func(fr *frame) { fr.dstMAC = rs2MAC }), f.lb0.ifindex, xdpPass, nil, "pass_not_ours")
	f.run(t, with(synAck, func(fr *frame) { fr.fin = true }), f.lb0.ifindex, xdpDrop, nil, "drop_bad_flags")
}

// rrOption is an IPv4 record-route option with room for two addresses:
// 12 bytes of options, so the checksum covers more than the fixed header.
var rrOption = []layers.IPv4Option{{OptionType: 7, OptionLength: 11, OptionData: []byte{4, 0, 0, 0, 0, 0, 0, 0, 0}}, {OptionType: 0}}

// ipChecksum is the Internet checksum of an IPv4 header (RFC 791), summed
// here independently of the datapath.
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// TestForeignVLAN: a frame tagged for a VLAN the host has on the
// interface is balanced, and so is an untagged one; one tagged for another
// VLAN is not the host's and passes, unchanged.
func TestForeignVLAN(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	// As addVLANs does for a VLAN interface lb0.100 (the kernels the
	// tests run on may have no VLAN support to make one).
	if err := f.dp.addVLAN(f.lb0.ifindex, 100); err != nil {
		t.Fatal(err)
	}
	var err error
	tagged := func(vid uint16) frame {
		fr := clientSYN(client, clientMAC, vip80)
		fr.vlan = vid
		return fr
	}
	f.run(t, tagged(200).bytes(t), f.lb0.ifindex, xdpPass, nil, "pass_not_ours")
	for _, vid := range []uint16{100, 0} {
		var verdict uint32
		f.nt.do(func() { verdict, _, _, err = f.dp.Run(tagged(vid).bytes(t), f.lb0.ifindex, 1) })
		if err != nil || verdict != xdpTX {
			t.Errorf("SYN tagged %d: verdict %d (%v), want it balanced", vid, verdict, err)
		}
	}
}

// TestTooManyVLANs: past the table's size the VLAN check turns itself off
// (and says so), rather than refusing a trunk or dropping its frames.
func TestTooManyVLANs(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	for vid := range uint16(MaxVLANs + 1) {
		if err := f.dp.addVLAN(f.lb0.ifindex, vid+1); err != nil {
			t.Fatal(err)
		}
	}
	if !f.dp.VLANCheckOff() {
		t.Fatal("VLANCheckOff is false with more VLANs than the table holds")
	}
	syn := clientSYN(client, clientMAC, vip80)
	syn.vlan = 4000
	var verdict uint32
	var err error
	f.nt.do(func() { verdict, _, _, err = f.dp.Run(syn.bytes(t), f.lb0.ifindex, 1) })
	if err != nil || verdict != xdpTX {
		t.Errorf("SYN of an unlisted VLAN with the check off: verdict %d (%v), want it balanced", verdict, err)
	}
}
