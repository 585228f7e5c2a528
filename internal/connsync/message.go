package connsync

import (
	"encoding/binary"
	"fmt"
)

// message is a datagram or frame, less its mac, decoded.
type message struct {
	header
	recs []Record  // typeDelta, typeBulkChunk
	hb   Heartbeat // typeHeartbeat
	end  bulkEnd   // typeBulkEnd
}

// bulkEnd closes a dump with its totals, for the puller to check.
type bulkEnd struct {
	records, chunks uint32
}

const bulkEndLen = 8

// parseMessage decodes msg, whose mac has been checked and removed.
// Records are appended to recs[:0], so the caller can reuse one slice.
func parseMessage(msg []byte, recs []Record) (message, error) {
	h, p, err := parseHeader(msg)
	if err != nil {
		return message{}, err
	}
	m := message{header: h}
	if h.typ != typeDelta && h.typ != typeBulkChunk && h.count != 0 {
		return message{}, fmt.Errorf("type %d carries no records, count is %d", h.typ, h.count)
	}
	switch h.typ {
	case typeDelta, typeBulkChunk:
		m.recs, err = decodeRecords(recs[:0], p, int(h.count))
	case typeHeartbeat:
		m.hb, err = decodeHeartbeat(p)
	case typeBulkRequest:
		if len(p) != 0 {
			err = fmt.Errorf("bulk request: %d bytes of payload, want none", len(p))
		}
	case typeBulkEnd:
		if len(p) != bulkEndLen {
			err = fmt.Errorf("bulk end: %d bytes of payload, want %d", len(p), bulkEndLen)
			break
		}
		m.end = bulkEnd{records: binary.BigEndian.Uint32(p), chunks: binary.BigEndian.Uint32(p[4:])}
	}
	if err != nil {
		return message{}, err
	}
	return m, nil
}

func appendBulkEnd(b []byte, e bulkEnd) []byte {
	b = binary.BigEndian.AppendUint32(b, e.records)
	return binary.BigEndian.AppendUint32(b, e.chunks)
}
