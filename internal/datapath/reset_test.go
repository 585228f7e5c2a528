package datapath

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"
)

// TestResetReply: once the control plane marks a connection reset, the
// client's next packet comes back as the reset RFC 793 prescribes, with
// payload and options gone and checksums right; a reset is never answered.
func TestResetReply(t *testing.T) {
	f := newFixture(t, 10000, 10999)
	f.backendOf(t, client, vip80)
	if err := f.dp.ResetForward([]FlowKey{{Src: client, Dst: vip80, Proto: TCP}}); err != nil {
		t.Fatal(err)
	}

	data := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, ack: true, seq: 77, payload: []byte("hello")}
	want := frame{srcMAC: lbMAC, dstMAC: clientMAC, src: vip80, dst: client, rst: true, seq: 1000}
	f.run(t, data.bytes(t), f.lb0.ifindex, xdpTX, resetFrame(t, want, 0), "fwd_reset")

	// Without an ACK to take the sequence from (a SYN, data in it as TCP
	// Fast Open sends), the reset acknowledges what came: 77 + 5 bytes +
	// the SYN.
	fin := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, syn: true, seq: 77, payload: []byte("hello"),
		ipOptions: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 1}}}
	wantFin := frame{srcMAC: lbMAC, dstMAC: clientMAC, src: vip80, dst: client, rst: true, ack: true, ipOptions: fin.ipOptions}
	f.run(t, fin.bytes(t), f.lb0.ifindex, xdpTX, resetFrame(t, wantFin, 83), "fwd_reset")

	rst := frame{srcMAC: clientMAC, dstMAC: lbMAC, src: client, dst: vip80, rst: true, seq: 78}
	f.run(t, rst.bytes(t), f.lb0.ifindex, xdpDrop, nil, "drop_no_conn")
}

// resetFrame is f serialised as a reset: TTL 64, window 0, the given
// acknowledgement number.
func resetFrame(t *testing.T, f frame, ack uint32) []byte {
	t.Helper()
	b := f.bytes(t)
	l3 := 14
	ihl := int(b[l3]&0x0f) * 4
	th := l3 + ihl
	b = b[:th+20]             // gopacket pads to the Ethernet minimum; XDP sends what it has
	b[l3+8] = 64              // TTL
	b[th+14], b[th+15] = 0, 0 // window
	putU32(b[th+8:], ack)     // acknowledgement number
	fixChecksums(t, b, l3, ihl)
	return b
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// fixChecksums recomputes both checksums of a frame edited by hand, by
// the RFCs, independently of the program.
func fixChecksums(t *testing.T, b []byte, l3, ihl int) {
	t.Helper()
	sum := func(words []byte, init uint32) uint16 {
		s := init
		for i := 0; i+1 < len(words); i += 2 {
			s += uint32(words[i])<<8 | uint32(words[i+1])
		}
		for s > 0xffff {
			s = s&0xffff + s>>16
		}
		return ^uint16(s)
	}
	b[l3+10], b[l3+11] = 0, 0
	c := sum(b[l3:l3+ihl], 0)
	b[l3+10], b[l3+11] = byte(c>>8), byte(c)
	th := l3 + ihl
	b[th+16], b[th+17] = 0, 0
	src, _ := netip.AddrFromSlice(b[l3+12 : l3+16])
	dst, _ := netip.AddrFromSlice(b[l3+16 : l3+20])
	s4, d4 := src.As4(), dst.As4()
	pseudo := uint32(s4[0])<<8 | uint32(s4[1])
	pseudo += uint32(s4[2])<<8 | uint32(s4[3])
	pseudo += uint32(d4[0])<<8 | uint32(d4[1])
	pseudo += uint32(d4[2])<<8 | uint32(d4[3])
	pseudo += 6 + uint32(len(b)-th)
	c = sum(b[th:], pseudo)
	b[th+16], b[th+17] = byte(c>>8), byte(c)
}
