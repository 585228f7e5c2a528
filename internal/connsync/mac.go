package connsync

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
)

// macer computes the truncated HMAC-SHA256 of messages. It keeps its hash
// between calls to save allocations, so each goroutine needs its own.
type macer struct {
	h   hash.Hash
	sum []byte
}

func newMACer(key []byte) *macer {
	return &macer{h: hmac.New(sha256.New, key), sum: make([]byte, 0, sha256.Size)}
}

func (m *macer) compute(msg []byte) []byte {
	m.h.Reset()
	m.h.Write(msg)
	m.sum = m.h.Sum(m.sum[:0])
	return m.sum[:macLen]
}

// appendMAC appends the mac of msg to dst; msg may be part of dst.
func (m *macer) appendMAC(dst, msg []byte) []byte {
	return append(dst, m.compute(msg)...)
}

// open checks the mac at the end of b and returns what it covers.
func (m *macer) open(b []byte) ([]byte, bool) {
	if len(b) < headerLen+macLen {
		return nil, false
	}
	msg, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	return msg, hmac.Equal(m.compute(msg), mac)
}
