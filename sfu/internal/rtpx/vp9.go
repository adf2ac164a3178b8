package rtpx

// ParseVP9 reads where the VP9 payload descriptor at the start of payload
// (RFC 9628 §4.2) keeps its picture id and TL0PICIDX. The first byte's
// flags say what follows: I a picture id, L a layer byte and, outside
// flexible mode (F), the TL0PICIDX after it; in flexible mode an
// inter-picture predicted frame (P) lists up to three reference
// differences instead. It reports false for a descriptor that does not
// fit.
func ParseVP9(payload []byte, d *Picture) bool {
	d.PictureAt, d.TL0At, d.PictureBits = -1, -1, 0
	if len(payload) < 1 {
		return false
	}
	flags := payload[0]
	i := 1
	if flags&0x80 != 0 { // I
		var ok bool
		if i, ok = d.readPictureID(payload, i); !ok {
			return false
		}
	}
	flexible, predicted := flags&0x10 != 0, flags&0x40 != 0
	if flags&0x20 != 0 { // L: TID, U, SID, D
		if len(payload) < i+1 {
			return false
		}
		i++
		if !flexible {
			if len(payload) < i+1 {
				return false
			}
			d.TL0At, d.TL0PicIdx = i, payload[i]
			i++
		}
	}
	if flexible && predicted {
		// P_DIFF bytes, each with N (another follows) as its last bit.
		for n := 0; ; n++ {
			if n == 3 || len(payload) < i+1 {
				return false
			}
			more := payload[i]&0x01 != 0
			i++
			if !more {
				break
			}
		}
	}
	d.HeaderLength = i
	return true
}
