package rtpx

import "encoding/binary"

// AudioLevelURI names the client-to-mixer audio level header extension
// (RFC 6464): one byte per packet, the voice-activity flag in bit 7 and
// the level in -dBov in bits 0..6 (0 is the loudest, 127 silence).
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// AudioLevel finds the audio level that the sender put in extension id of
// the RTP packet b, in either the one-byte (0xBEDE) or the two-byte
// (0x100x) form of RFC 8285. ok is false when the packet carries no such
// element, id is 0 (not negotiated), or the packet is malformed: every
// length is checked against b, since b comes off the network as it was
// sent. It reads b in place and does not allocate.
func AudioLevel(b []byte, id uint8) (level uint8, voice, ok bool) {
	if id == 0 || len(b) < 12 || b[0]>>6 != 2 || b[0]&0x10 == 0 {
		return 0, false, false
	}
	off := 12 + 4*int(b[0]&0x0f) // after the CSRCs
	if len(b) < off+4 {
		return 0, false, false
	}
	profile := binary.BigEndian.Uint16(b[off : off+2])
	end := off + 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
	if end > len(b) {
		return 0, false, false
	}
	ext := b[off+4 : end]
	var v byte
	switch {
	case profile == 0xbede:
		v, ok = oneByteElement(ext, id)
	case profile&0xfff0 == 0x1000:
		v, ok = twoByteElement(ext, id)
	}
	if !ok {
		return 0, false, false
	}
	return v & 0x7f, v&0x80 != 0, true
}

// oneByteElement returns the first data byte of element id in a one-byte
// header extension block: each element is a byte of id<<4 | (length-1),
// then its data; zero bytes are padding, and id 15 (or an id 0 with a
// length, which no sender may write) ends the block.
func oneByteElement(ext []byte, id uint8) (byte, bool) {
	if id > 14 {
		return 0, false
	}
	for i := 0; i < len(ext); {
		h := ext[i]
		if h == 0 {
			i++
			continue
		}
		eid, n := h>>4, int(h&0x0f)+1
		if eid == 15 || eid == 0 {
			return 0, false
		}
		if i+1+n > len(ext) {
			return 0, false
		}
		if eid == id {
			return ext[i+1], true
		}
		i += 1 + n
	}
	return 0, false
}

// twoByteElement is oneByteElement for the two-byte form: an id byte, a
// length byte, then the data (which may be empty); zero ids are padding.
func twoByteElement(ext []byte, id uint8) (byte, bool) {
	for i := 0; i < len(ext); {
		eid := ext[i]
		if eid == 0 {
			i++
			continue
		}
		if i+2 > len(ext) {
			return 0, false
		}
		n := int(ext[i+1])
		if i+2+n > len(ext) {
			return 0, false
		}
		if eid == id {
			if n == 0 {
				return 0, false // no level byte in it
			}
			return ext[i+2], true
		}
		i += 2 + n
	}
	return 0, false
}
