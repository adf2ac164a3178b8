package rtpx

// RED (RFC 2198) as browsers send Opus with it: a payload of block
// headers, then the blocks' data in the same order, the primary (this
// packet's own audio) last. A redundant block's header is 4 bytes (F=1,
// its payload type, a 14-bit timestamp offset, a 10-bit length); the
// primary's is 1 byte (F=0, its payload type). A receiver that lost the
// packets before this one finds their audio in the redundant blocks.

// maxREDBlocks bounds the headers walked (browsers send one or two
// redundant blocks).
const maxREDBlocks = 32

// REDPrimary returns where the primary block of a RED payload starts; ok
// is false for a payload whose headers or lengths do not fit it.
func REDPrimary(payload []byte) (start int, ok bool) {
	i, total := 0, 0
	for range maxREDBlocks + 1 {
		if i >= len(payload) {
			return 0, false
		}
		if payload[i]&0x80 == 0 {
			start = i + 1 + total
			return start, start <= len(payload)
		}
		if i+4 > len(payload) {
			return 0, false
		}
		total += int(payload[i+2]&0x03)<<8 | int(payload[i+3])
		i += 4
	}
	return 0, false
}

// SetREDBlockTypes sets the payload type of every block of a RED payload
// to pt, in place (the blocks of Opus RED are all Opus, under the
// sender's payload type for it); false, and nothing changed, if the
// payload is malformed.
func SetREDBlockTypes(payload []byte, pt uint8) bool {
	if _, ok := REDPrimary(payload); !ok {
		return false
	}
	for i := 0; i < len(payload); i += 4 {
		payload[i] = payload[i]&0x80 | pt&0x7f
		if payload[i]&0x80 == 0 {
			return true
		}
	}
	return true
}
