package sfu

import "sync/atomic"

// seqMap is how a down-track's sequence numbers relate to its layer's:
// a short history of segments, each the run of the subscriber's numbers
// from outStart on that are the layer's less off. A new segment begins at
// each padding burst (probe.go: padding takes numbers of the
// subscriber's stream that no layer packet has) and on a resync, a pause
// or a layer switch, which also forget the history: what came before is
// of no use to a decoder that starts again at a keyframe.
//
// The writer goroutine alone writes it; the RTCP reader maps NACKed
// numbers through it at the same time, so each segment is one atomic
// word: bit 63 set, bits 40-47 the padding numbers just before it (the
// gap after the segment before), bits 32-33 the layer, off<<16 |
// outStart.
type seqMap struct {
	segs [seqSegments]atomic.Uint64
	head atomic.Uint32 // segments written; the newest is head-1
}

// seqSegments is how many segments are kept: padding bursts come once a
// frame at most, so this is more than half a second of probing, longer
// than a NACK's useful life.
const seqSegments = 32

func seg(layer uint8, off, outStart uint16, gap uint8) uint64 {
	return 1<<63 | uint64(gap)<<40 | uint64(layer&3)<<32 | uint64(off)<<16 | uint64(outStart)
}

// reset forgets every segment and starts one.
func (m *seqMap) reset(layer uint8, off, outStart uint16) {
	for i := range m.segs {
		m.segs[i].Store(0)
	}
	m.head.Store(0)
	m.add(layer, off, outStart, 0)
}

// add starts a segment, after gap numbers of padding.
func (m *seqMap) add(layer uint8, off, outStart uint16, gap uint8) {
	h := m.head.Load()
	m.segs[h%seqSegments].Store(seg(layer, off, outStart, gap))
	m.head.Store(h + 1)
}

// slide moves the newest segment's start up to outStart, keeping int16
// comparisons with it meaningful however long it lasts.
func (m *seqMap) slide(outStart uint16) {
	h := m.head.Load()
	if h == 0 {
		return
	}
	s := &m.segs[(h-1)%seqSegments]
	e := s.Load()
	s.Store(e&^0xffff | uint64(outStart))
}

// toLayer maps a subscriber's number to its layer's packet (layer,
// number), false for one before the history or in a gap padding took.
func (m *seqMap) toLayer(out uint16) (uint8, uint16, bool) {
	h := m.head.Load()
	end := uint16(0) // the number after the segment before's last
	for k := uint32(0); k < min(h, seqSegments); k++ {
		e := m.segs[(h-1-k)%seqSegments].Load()
		if e == 0 {
			return 0, 0, false
		}
		start, off := uint16(e), uint16(e>>16)
		if int16(out-start) >= 0 {
			if k > 0 && int16(end-out) <= 0 {
				return 0, 0, false // padding
			}
			return uint8(e>>32) & 3, out + off, true
		}
		end = start - uint16(uint8(e>>40))
	}
	return 0, 0, false
}

// toOut maps a layer's number to the subscriber's, false if it is not
// in the history (of this layer).
func (m *seqMap) toOut(layer uint8, in uint16) (uint16, bool) {
	h := m.head.Load()
	end := uint16(0)
	for k := uint32(0); k < min(h, seqSegments); k++ {
		e := m.segs[(h-1-k)%seqSegments].Load()
		if e == 0 || uint8(e>>32)&3 != layer {
			return 0, false
		}
		start, off := uint16(e), uint16(e>>16)
		if out := in - off; int16(out-start) >= 0 {
			if k > 0 && int16(end-out) <= 0 {
				return 0, false // a number the next segment has
			}
			return out, true
		}
		end = start - uint16(uint8(e>>40))
	}
	return 0, false
}
