package connsync

import (
	"bytes"
	"testing"

	"github.com/xdplb/xdplb/internal/ha"
)

// encodeMessage is parseMessage's inverse, built from the encoders the
// Node sends with.
func encodeMessage(m message) []byte {
	b := make([]byte, headerLen)
	switch m.typ {
	case typeDelta, typeBulkChunk:
		for i := range m.recs {
			b = appendRecord(b, &m.recs[i])
		}
	case typeHeartbeat:
		b = appendHeartbeat(b, m.hb)
	case typeBulkEnd:
		b = appendBulkEnd(b, m.end)
	}
	m.length = uint16(len(b) - headerLen)
	m.header.put(b)
	return b
}

// FuzzDecode checks that decoding any bytes never panics, and that what
// decodes is encoded back into the same bytes: the decoder accepts
// exactly what the encoder writes.
func FuzzDecode(f *testing.F) {
	f.Add(deltaMessage(rec4(1), rec4(70000)))
	f.Add(deltaMessage(rec6(1)))
	f.Add(deltaMessage())
	f.Add(encodeMessage(message{header: header{typ: typeHeartbeat, node: 3, seq: 9}, hb: Heartbeat{Priority: 100, Role: ha.RoleBackup, Ready: true}}))
	f.Add(encodeMessage(message{header: header{typ: typeBulkRequest, node: 2, epoch: 0xdeadbeef}}))
	f.Add(encodeMessage(message{header: header{typ: typeBulkEnd, node: 2}, end: bulkEnd{records: 5, chunks: 1}}))
	f.Add([]byte("XLBS\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b, nil)
		if err != nil {
			return
		}
		if again := encodeMessage(m); !bytes.Equal(again, b) {
			t.Errorf("decoded\n%x\nencodes back as\n%x", b, again)
		}
	})
}
