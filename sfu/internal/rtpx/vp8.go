package rtpx

// VP8 payload descriptor (RFC 7741 §4.2), as far as a forwarder that
// splices simulcast layers into one stream needs it: where the picture id
// and TL0PICIDX are, so that they can be renumbered in place and the
// subscriber's decoder sees one continuous stream.

// VP8 describes the fields of a VP8 payload descriptor that get
// renumbered. An offset of -1 means the field is absent.
type VP8 struct {
	PictureID    uint16
	PictureBits  uint8 // 7 or 15
	PictureAt    int   // offset of the picture id's first byte
	TL0PicIdx    uint8
	TL0At        int
	HeaderLength int // the descriptor's length: the VP8 payload starts there
}

// ParseVP8 reads the descriptor at the start of payload. It reports false
// for one that does not fit.
func ParseVP8(payload []byte, d *VP8) bool {
	d.PictureAt, d.TL0At, d.PictureBits = -1, -1, 0
	if len(payload) < 1 {
		return false
	}
	i := 1
	if payload[0]&0x80 == 0 { // X: no extension byte
		d.HeaderLength = i
		return true
	}
	if len(payload) < 2 {
		return false
	}
	x := payload[1]
	i = 2
	if x&0x80 != 0 { // I: picture id
		if len(payload) < i+1 {
			return false
		}
		d.PictureAt = i
		if payload[i]&0x80 != 0 { // M: 15 bits
			if len(payload) < i+2 {
				return false
			}
			d.PictureID = uint16(payload[i]&0x7f)<<8 | uint16(payload[i+1])
			d.PictureBits = 15
			i += 2
		} else {
			d.PictureID = uint16(payload[i])
			d.PictureBits = 7
			i++
		}
	}
	if x&0x40 != 0 { // L: TL0PICIDX
		if len(payload) < i+1 {
			return false
		}
		d.TL0At, d.TL0PicIdx = i, payload[i]
		i++
	}
	if x&0x30 != 0 { // T or K: one byte with TID, Y and KEYIDX
		if len(payload) < i+1 {
			return false
		}
		i++
	}
	d.HeaderLength = i
	return true
}

// SetVP8 writes picture id and TL0PICIDX into the descriptor d was parsed
// from, keeping each field's size (a 7-bit id wraps at 128).
func SetVP8(payload []byte, d *VP8, picture uint16, tl0 uint8) {
	switch d.PictureBits {
	case 15:
		payload[d.PictureAt] = 0x80 | byte(picture>>8)&0x7f
		payload[d.PictureAt+1] = byte(picture)
	case 7:
		payload[d.PictureAt] = byte(picture) & 0x7f
	}
	if d.TL0At >= 0 {
		payload[d.TL0At] = tl0
	}
}

// PictureMask is the largest picture id of d's size.
func (d *VP8) PictureMask() uint16 {
	if d.PictureBits == 7 {
		return 0x7f
	}
	return 0x7fff
}
