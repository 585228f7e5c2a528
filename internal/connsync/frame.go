package connsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Bulk frames travel on TCP behind a u32 length prefix. A frame is built
// in one buffer (prefix, header, payload, mac) to go out in one write.

const framePrefix = 4

var (
	errAuth      = errors.New("wrong mac")
	errFrameSize = errors.New("frame size out of bounds")
)

// newFrame returns an empty frame with room for payload bytes of payload.
func newFrame(payload int) []byte {
	return make([]byte, framePrefix+headerLen, framePrefix+headerLen+payload+macLen)
}

// finishFrame completes the frame in f, whose payload follows the room
// for prefix and header: it sets h's length, writes prefix and header,
// and appends the mac.
func finishFrame(f []byte, h header, m *macer) []byte {
	h.length = uint16(len(f) - framePrefix - headerLen)
	h.put(f[framePrefix:])
	f = m.appendMAC(f, f[framePrefix:])
	binary.BigEndian.PutUint32(f, uint32(len(f)-framePrefix))
	return f
}

// frameReader reads the frames of one bulk connection and checks their
// macs.
type frameReader struct {
	r   io.Reader
	mac *macer
	buf []byte
}

// next returns the next frame, less prefix and mac; it is valid until
// the following call. A frame larger than maxFrame is refused unread.
func (fr *frameReader) next() ([]byte, error) {
	var prefix [framePrefix]byte
	if _, err := io.ReadFull(fr.r, prefix[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(prefix[:])
	if size < headerLen+macLen || size > maxFrame {
		return nil, fmt.Errorf("%w: %d bytes", errFrameSize, size)
	}
	if fr.buf == nil {
		fr.buf = make([]byte, maxFrame)
	}
	b := fr.buf[:size]
	if _, err := io.ReadFull(fr.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	msg, ok := fr.mac.open(b)
	if !ok {
		return nil, errAuth
	}
	return msg, nil
}

// countFrameError counts a frame that next refused.
func (n *Node) countFrameError(err error) {
	switch {
	case errors.Is(err, errAuth):
		n.ctr.authFailures.Add(1)
	case errors.Is(err, errFrameSize):
		n.ctr.malformed.Add(1)
	}
}
