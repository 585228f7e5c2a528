// Wire format of the sync channel, version 1. All integers are in network
// byte order (big endian).
//
// A UDP datagram (DELTA, HEARTBEAT) is
//
//	header (24 B) | payload | mac (16 B)
//
// and is at most 1400 bytes, so it crosses any sane link unfragmented. A
// TCP frame (BULK_REQUEST, BULK_CHUNK, BULK_END) is the same thing behind
// a u32 length prefix that counts header, payload and mac.
//
// Header:
//
//	offset size field
//	     0    4 magic "XLBS"
//	     4    1 version, 1
//	     5    1 type: 1 DELTA, 2 HEARTBEAT, 3 BULK_REQUEST, 4 BULK_CHUNK, 5 BULK_END
//	     6    1 flags, 0 (no flag is defined yet)
//	     7    1 node_id of the sender, 1..255
//	     8    2 cluster_id
//	    10    2 count: records in the payload (0 for other types)
//	    12    4 epoch
//	    16    4 seq
//	    20    2 payload length
//	    22    2 reserved, 0
//
// mac is HMAC-SHA256(key, header || payload) truncated to 16 bytes. It is
// checked before anything else in the datagram is believed.
//
// epoch and seq make replays detectable. Over UDP, epoch is the sender's
// start time (see epochAt) and seq counts the sender's datagrams (DELTA
// and HEARTBEAT share it) from 1; should seq ever wrap, the sender moves
// to the next epoch. Over TCP, epoch is the puller's random nonce, echoed
// by every frame of the answer; seq numbers the chunks from 0, and
// BULK_END takes the number after the last chunk's.
//
// DELTA and BULK_CHUNK payloads are count records of one address family;
// a payload whose length is not count times the record size is malformed.
// Record, IPv4 (36 B) or IPv6 (84 B):
//
//	offset size field
//	     0    1 op: 1 upsert, 2 delete
//	     1    1 proto (IANA number)
//	     2    1 fwd_state
//	     3    1 rev_state
//	     4    1 flags: bit 0 IPv6, other bits 0
//	     5    1 origin node id
//	     6    2 pad, 0
//	     8    4 age in milliseconds, saturating
//	    12  6|18 client address, port
//	  18|30 6|18 vip address, port
//	  24|48 6|18 local address, port
//	  30|66 6|18 backend address, port
//
// Client, vip and backend ports are never 0; the local port may be.
//
// HEARTBEAT payload (8 B):
//
//	priority u8 | role u8 (0..3) | ready u8 (0, 1) | pad u8 | advert_ms u16 | reserved u16
//
// BULK_REQUEST has no payload. BULK_END carries the totals of the dump,
// because the header's u16 count cannot hold a conntrack table's size:
//
//	records u32 | chunks u32
//
// Its count field is 0.

package connsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

type msgType uint8

const (
	typeDelta       msgType = 1
	typeHeartbeat   msgType = 2
	typeBulkRequest msgType = 3
	typeBulkChunk   msgType = 4
	typeBulkEnd     msgType = 5
)

const (
	magic       = "XLBS"
	wireVersion = 1

	headerLen   = 24
	macLen      = 16
	maxDatagram = 1400

	// maxChunkPayload is the largest BULK_CHUNK payload: a whole number
	// of both record sizes (260 * 252), that fits the u16 length field.
	maxChunkPayload = 65520
	// maxFrame bounds what a bulk reader accepts behind a length prefix.
	maxFrame = headerLen + maxChunkPayload + macLen
)

// header is the fixed part in front of every datagram and frame.
type header struct {
	typ     msgType
	node    uint8
	cluster uint16
	count   uint16
	epoch   uint32
	seq     uint32
	length  uint16 // of the payload
}

// put writes h into b[:headerLen].
func (h header) put(b []byte) {
	_ = b[headerLen-1]
	copy(b, magic)
	b[4] = wireVersion
	b[5] = byte(h.typ)
	b[6] = 0
	b[7] = h.node
	binary.BigEndian.PutUint16(b[8:], h.cluster)
	binary.BigEndian.PutUint16(b[10:], h.count)
	binary.BigEndian.PutUint32(b[12:], h.epoch)
	binary.BigEndian.PutUint32(b[16:], h.seq)
	binary.BigEndian.PutUint16(b[20:], h.length)
	binary.BigEndian.PutUint16(b[22:], 0)
}

var errShort = errors.New("truncated")

// parseHeader reads the header of msg (a datagram or frame without its
// mac) and returns the payload that follows it.
func parseHeader(msg []byte) (header, []byte, error) {
	if len(msg) < headerLen {
		return header{}, nil, fmt.Errorf("header: %w", errShort)
	}
	if string(msg[:4]) != magic {
		return header{}, nil, errors.New("header: bad magic")
	}
	if msg[4] != wireVersion {
		return header{}, nil, fmt.Errorf("header: version %d, want %d", msg[4], wireVersion)
	}
	h := header{
		typ:     msgType(msg[5]),
		node:    msg[7],
		cluster: binary.BigEndian.Uint16(msg[8:]),
		count:   binary.BigEndian.Uint16(msg[10:]),
		epoch:   binary.BigEndian.Uint32(msg[12:]),
		seq:     binary.BigEndian.Uint32(msg[16:]),
		length:  binary.BigEndian.Uint16(msg[20:]),
	}
	switch {
	case h.typ < typeDelta || h.typ > typeBulkEnd:
		return header{}, nil, fmt.Errorf("header: unknown type %d", h.typ)
	case msg[6] != 0:
		return header{}, nil, fmt.Errorf("header: unknown flags %#x", msg[6])
	case binary.BigEndian.Uint16(msg[22:]) != 0:
		return header{}, nil, errors.New("header: reserved field is not 0")
	case h.node == 0:
		return header{}, nil, errors.New("header: node id 0")
	case int(h.length) != len(msg)-headerLen:
		return header{}, nil, fmt.Errorf("header: payload length %d, but %d bytes follow", h.length, len(msg)-headerLen)
	}
	return h, msg[headerLen:], nil
}

// epochBase and epochTick make a sender's start time an epoch: eighths of
// a second since 2025, so that a daemon restarted at once (a SIGUSR2
// hand-over takes well over an eighth of a second) still gets a later
// epoch than its predecessor, and a u32 lasts until 2042.
var epochBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const epochTick = time.Second / 8

func epochAt(t time.Time) uint32 { return uint32(t.Sub(epochBase) / epochTick) }
