// Package rtpx reads the few RTP header fields an SFU needs, straight from
// the wire bytes and without allocating, so the forwarding path can stay
// allocation-free. pion/rtp's full Unmarshal also decodes extensions and
// CSRCs, which a forwarder strips anyway.
package rtpx

import (
	"encoding/binary"
	"errors"
)

// ErrShort is returned for a buffer too small or inconsistent to be RTP.
var ErrShort = errors.New("rtpx: malformed RTP packet")

// Header holds the forwarded fields of an RTP packet. PayloadStart and
// PayloadEnd index into the parsed buffer; padding lies after PayloadEnd.
type Header struct {
	Marker       bool
	PayloadType  uint8
	Sequence     uint16
	Timestamp    uint32
	SSRC         uint32
	PayloadStart int
	PayloadEnd   int
	PaddingSize  uint8
}

// Parse fills h from b. It checks the version and that CSRCs, the
// extension block and padding all fit inside b.
func Parse(b []byte, h *Header) error {
	if len(b) < 12 || b[0]>>6 != 2 {
		return ErrShort
	}
	h.Marker = b[1]&0x80 != 0
	h.PayloadType = b[1] & 0x7f
	h.Sequence = binary.BigEndian.Uint16(b[2:4])
	h.Timestamp = binary.BigEndian.Uint32(b[4:8])
	h.SSRC = binary.BigEndian.Uint32(b[8:12])
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // extension: 4-byte profile/length word, then length*4 bytes
		if len(b) < off+4 {
			return ErrShort
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
	}
	if off > len(b) {
		return ErrShort
	}
	end := len(b)
	h.PaddingSize = 0
	if b[0]&0x20 != 0 {
		p := int(b[len(b)-1])
		if p == 0 || end-p < off {
			return ErrShort
		}
		h.PaddingSize = uint8(p)
		end -= p
	}
	h.PayloadStart, h.PayloadEnd = off, end
	return nil
}

// Sequence returns the sequence number of an RTP packet already known to be
// at least 12 bytes long.
func Sequence(b []byte) uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// SeqLess reports whether sequence number a comes before b, allowing for
// wrap-around (RFC 3550 serial number arithmetic).
func SeqLess(a, b uint16) bool { return a != b && b-a < 0x8000 }
