package rtpx

// VP8 and VP9 payload descriptors (RFC 7741 §4.2, RFC 9628 §4.2), as far
// as a forwarder that splices simulcast layers into one stream needs
// them: where the picture id and TL0PICIDX are, so that they can be
// renumbered in place and the subscriber's decoder sees one continuous
// stream. Both codecs write the picture id the same way (7 bits, or 15
// with the M bit), so one type and one writer serve both.

// Picture describes the fields of a VP8 or VP9 payload descriptor that
// get renumbered. An offset of -1 means the field is absent.
type Picture struct {
	PictureID   uint16
	PictureBits uint8 // 7 or 15
	PictureAt   int   // offset of the picture id's first byte
	TL0PicIdx   uint8
	TL0At       int
	// HeaderLength is where the fields read end: for VP8 the
	// descriptor's length (the VP8 payload starts there); for VP9 a
	// scalability structure may follow.
	HeaderLength int
}

// ParseVP8 reads the descriptor at the start of payload. It reports false
// for one that does not fit.
func ParseVP8(payload []byte, d *Picture) bool {
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
		var ok bool
		if i, ok = d.readPictureID(payload, i); !ok {
			return false
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

// readPictureID reads the picture id at payload[i:], 7 bits or, with the
// M bit, 15, and returns where it ends.
func (d *Picture) readPictureID(payload []byte, i int) (int, bool) {
	if len(payload) < i+1 {
		return i, false
	}
	d.PictureAt = i
	if payload[i]&0x80 == 0 {
		d.PictureID, d.PictureBits = uint16(payload[i]), 7
		return i + 1, true
	}
	if len(payload) < i+2 {
		return i, false
	}
	d.PictureID, d.PictureBits = uint16(payload[i]&0x7f)<<8|uint16(payload[i+1]), 15
	return i + 2, true
}

// SetPicture writes picture id and TL0PICIDX into the descriptor d was
// parsed from, keeping each field's size (a 7-bit id wraps at 128).
func SetPicture(payload []byte, d *Picture, picture uint16, tl0 uint8) {
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
func (d *Picture) PictureMask() uint16 {
	if d.PictureBits == 7 {
		return 0x7f
	}
	return 0x7fff
}
