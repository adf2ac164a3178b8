package main

import (
	"encoding/binary"
	"time"
)

// StampLen is the size of the stamp appended to every media payload.
const StampLen = 17

// stampMagic marks a payload as the harness's own, so a stray packet (or
// a server that rewrites payloads) is counted as foreign, not misread.
var stampMagic = [2]byte{0xcb, 0x5e}

// Stamp is what each media packet carries at the end of its payload. The
// server forwards payload bytes unchanged and every client shares this
// machine's clock, so a receiver gets one-way latency and loss exactly
// instead of estimating them from RTP timestamps and sequence numbers
// (which a server is free to rewrite).
//
// Layout, big-endian: magic[2] index[1] count[1] layer[1] sentNanos[8]
// counter[4].
type Stamp struct {
	// Index is this packet's place in its video frame and Count the
	// frame's number of packets (0 and 1 for audio), so a receiver knows
	// when a frame is complete without decoding it.
	Index, Count uint8
	// Layer is the simulcast layer the packet was sent on (0 q, 1 h,
	// 2 f; 0 without simulcast): the receiver learns which one the
	// server chose for it, and keeps each layer's counter apart.
	Layer uint8
	// Sent is the unix time in nanoseconds when the publisher handed the
	// packet to its RTP sender.
	Sent int64
	// Counter numbers the packets of one published track (of one layer,
	// with simulcast) from 0, one per packet, never reused: the
	// receiver's loss and duplicate accounting.
	Counter uint32
}

// AppendStamp appends s to payload.
func AppendStamp(payload []byte, s Stamp) []byte {
	var b [StampLen]byte
	b[0], b[1] = stampMagic[0], stampMagic[1]
	b[2], b[3], b[4] = s.Index, s.Count, s.Layer
	binary.BigEndian.PutUint64(b[5:], uint64(s.Sent))
	binary.BigEndian.PutUint32(b[13:], s.Counter)
	return append(payload, b[:]...)
}

// ReadStamp decodes the stamp at the end of payload; ok is false when the
// payload is too short or does not end in a stamp.
func ReadStamp(payload []byte) (s Stamp, ok bool) {
	if len(payload) < StampLen {
		return Stamp{}, false
	}
	b := payload[len(payload)-StampLen:]
	if b[0] != stampMagic[0] || b[1] != stampMagic[1] {
		return Stamp{}, false
	}
	return Stamp{
		Index:   b[2],
		Count:   b[3],
		Layer:   b[4],
		Sent:    int64(binary.BigEndian.Uint64(b[5:])),
		Counter: binary.BigEndian.Uint32(b[13:]),
	}, true
}

// SentTime is Sent as a time.
func (s Stamp) SentTime() time.Time { return time.Unix(0, s.Sent) }
