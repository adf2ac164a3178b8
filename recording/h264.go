package recording

import (
	"bytes"
	"errors"
)

// H.264 goes into Matroska (V_MPEG4/ISO/AVC) as ISO/IEC 14496-15 asks:
// each frame as NAL units with a 4-byte length before each, and the
// decoder's configuration (the AVCDecoderConfigurationRecord, "avcC",
// built from the stream's SPS and PPS) in the track's codec private
// data. pion's depacketizer gives frames in Annex B form (start codes
// between units), so each frame is split and re-framed here. The SPS and
// PPS stay in the frames too: a browser that changes resolution sends
// new ones with its next keyframe, and a decoder picks them up there.

const (
	nalIDR = 5
	nalSPS = 7
	nalPPS = 8
)

var errNoParams = errors.New("recording: H.264 parameter sets (SPS and PPS) never arrived")

// eachNAL calls fn with each NAL unit of an Annex B byte stream. Bytes
// before the first start code are taken as a unit too (a frame from a
// packetizer that left the first start code out).
func eachNAL(b []byte, fn func(nal []byte)) {
	for len(b) > 0 {
		i := bytes.Index(b, []byte{0, 0, 1})
		var nal []byte
		if i < 0 {
			nal, b = b, nil
		} else {
			nal, b = b[:i], b[i+3:]
		}
		// A four-byte start code leaves its first zero, and a unit may
		// end in trailing zero bytes: no unit ends in zero.
		for len(nal) > 0 && nal[len(nal)-1] == 0 {
			nal = nal[:len(nal)-1]
		}
		if len(nal) > 0 {
			fn(nal)
		}
	}
}

// avcFrame is one H.264 frame re-framed for Matroska.
type avcFrame struct {
	data     []byte // length-prefixed NAL units
	key      bool   // holds an IDR slice
	sps, pps []byte // the frame's parameter sets, if it carries them (aliases the input)
}

// toAVC re-frames an Annex B access unit, appending to dst's storage.
func toAVC(dst, b []byte) avcFrame {
	f := avcFrame{data: dst[:0]}
	eachNAL(b, func(nal []byte) {
		switch nal[0] & 0x1f {
		case nalIDR:
			f.key = true
		case nalSPS:
			f.sps = nal
		case nalPPS:
			f.pps = nal
		}
		n := len(nal)
		f.data = append(f.data, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		f.data = append(f.data, nal...)
	})
	return f
}

// avcConfig builds the decoder configuration record from one SPS and one
// PPS: version 1, the SPS's profile, compatibility and level bytes,
// 4-byte lengths, then the two sets.
func avcConfig(sps, pps []byte) ([]byte, error) {
	if len(sps) < 4 || len(pps) < 1 || len(sps) > 0xffff || len(pps) > 0xffff {
		return nil, errNoParams
	}
	c := make([]byte, 0, 11+len(sps)+len(pps))
	c = append(c, 1, sps[1], sps[2], sps[3],
		0xfc|3, // reserved bits, lengthSizeMinusOne = 3
		0xe0|1, // reserved bits, one SPS
		byte(len(sps)>>8), byte(len(sps)))
	c = append(c, sps...)
	c = append(c, 1, byte(len(pps)>>8), byte(len(pps)))
	return append(c, pps...), nil
}
