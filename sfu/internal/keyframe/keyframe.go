// Package keyframe recognises, from an RTP payload alone, the first packet
// of a frame that a decoder can start from. A new subscriber's down-track
// forwards nothing until it sees one, so its decoder never starts on a
// delta frame that references pictures it never got.
package keyframe

// Codec selects the payload format to inspect.
type Codec int

// Codecs whose payloads can be inspected. Audio codecs need no gating.
const (
	Unknown Codec = iota
	VP8
	VP9
	H264
)

// IsStart reports whether payload begins a keyframe (for H.264: carries an
// SPS or starts an IDR slice). Malformed payloads are never keyframes.
func IsStart(c Codec, payload []byte) bool {
	switch c {
	case VP8:
		return vp8(payload)
	case VP9:
		return vp9(payload)
	case H264:
		return h264(payload)
	}
	return false
}

// vp8 follows RFC 7741 section 4.2: the payload descriptor, then on the
// first partition's first packet the VP8 header whose P bit is 0 for a key
// frame.
func vp8(b []byte) bool {
	i := vp8Start(b)
	return i >= 0 && b[i]&0x01 == 0
}

// VP8Size reads the picture size from the first packet of a VP8 keyframe
// (RFC 6386 section 9.1: after the frame tag, a start code and two
// 14-bit dimensions). It reports false for any other payload.
func VP8Size(b []byte) (width, height int, ok bool) {
	i := vp8Start(b)
	if i < 0 || b[i]&0x01 != 0 || len(b) < i+10 {
		return 0, 0, false
	}
	if b[i+3] != 0x9d || b[i+4] != 0x01 || b[i+5] != 0x2a {
		return 0, 0, false
	}
	width = int(b[i+6]) | int(b[i+7]&0x3f)<<8
	height = int(b[i+8]) | int(b[i+9]&0x3f)<<8
	return width, height, width > 0 && height > 0
}

// vp8Start is where the VP8 payload starts in the first packet of a
// frame's first partition, or -1 if b is not one.
func vp8Start(b []byte) int {
	if len(b) < 1 {
		return -1
	}
	s, pid := b[0]&0x10 != 0, b[0]&0x07
	if !s || pid != 0 {
		return -1
	}
	i := 1
	if b[0]&0x80 != 0 { // X: extension byte follows
		if len(b) < 2 {
			return -1
		}
		x := b[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID, one or two bytes
			if len(b) <= i {
				return -1
			}
			if b[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/KEYIDX byte
			i++
		}
	}
	if len(b) <= i {
		return -1
	}
	return i
}

// vp9 follows the VP9 RTP payload format (RFC 9628 section 4.2): a frame
// that begins (B) and is not inter-predicted (P clear) in the base spatial
// layer is a keyframe.
func vp9(b []byte) bool {
	if len(b) < 1 {
		return false
	}
	d := b[0]
	iBit, pBit, lBit, bBit := d&0x80 != 0, d&0x40 != 0, d&0x20 != 0, d&0x08 != 0
	if pBit || !bBit {
		return false
	}
	i := 1
	if iBit {
		if len(b) <= i {
			return false
		}
		if b[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if lBit {
		if len(b) <= i {
			return false
		}
		if sid := (b[i] >> 1) & 0x07; sid != 0 {
			return false
		}
	}
	return len(b) > i
}

const (
	nalIDR  = 5
	nalSPS  = 7
	nalSTAP = 24
	nalFUA  = 28
)

// h264 follows RFC 6184: a single NAL unit, each unit of a STAP-A, or the
// start fragment of an FU-A.
func h264(b []byte) bool {
	if len(b) < 1 {
		return false
	}
	switch t := b[0] & 0x1f; t {
	case nalIDR, nalSPS:
		return true
	case nalSTAP:
		for i := 1; i+2 < len(b); {
			size := int(b[i])<<8 | int(b[i+1])
			i += 2
			if size == 0 || i+size > len(b) {
				return false
			}
			if nt := b[i] & 0x1f; nt == nalIDR || nt == nalSPS {
				return true
			}
			i += size
		}
	case nalFUA:
		if len(b) < 2 {
			return false
		}
		nt := b[1] & 0x1f
		return b[1]&0x80 != 0 && (nt == nalIDR || nt == nalSPS)
	}
	return false
}
