package sfu

import (
	"time"

	"consult/sfu/internal/rtpx"

	"go.uber.org/zap"
)

// Simulcast: a publisher sends one video track as up to three encodings
// of the same picture at different sizes and bitrates, each with its own
// SSRC and an rid naming it. They arrive as layers of one UpTrack, lowest
// quality first (q, h, f: quarter, half and full resolution). Each
// down-track forwards one layer at a time, chosen per subscriber from its
// downlink estimate and what it asks for (allocate.go, layers.go), and
// switches at a keyframe of the new layer. The subscriber's decoder sees
// one stream: the down-track renumbers sequence numbers, timestamps and
// VP8 picture ids across a switch, so nothing jumps back or leaves a gap
// that would look like loss. Keyframe requests go to the one layer that
// needs them, so a subscriber that switches costs the others nothing.

// maxLayers is the most layers a track has.
const maxLayers = 3

// noLayer marks a down-track that has not forwarded any layer yet.
const noLayer = 0xff

// ridNames are the rids the web and Go clients give the layers.
var ridNames = [maxLayers]string{"q", "h", "f"}

// layerOfRID is the slot for an encoding named rid: 0 for a track's only
// one (no rid), the names the web and Go clients give (q, h, f), the ones
// some clients number (0, 1, 2), else -1 (the next free slot is used, in
// the order the layers arrive).
func layerOfRID(rid string) int {
	switch rid {
	case "", "q", "0", "low":
		return 0
	case "h", "1", "mid":
		return 1
	case "f", "2", "high":
		return 2
	}
	return -1
}

// ridOf is the name of layer i for stats ("" without simulcast).
func (t *UpTrack) ridOf(i uint8) string {
	if !t.simulcast {
		return ""
	}
	if l := t.layer(i); l != nil {
		return l.rid
	}
	return ""
}

// item packs a layer and a sequence number for a down-track's queue.
func item(layer uint8, seq uint16) uint32 { return uint32(layer)<<16 | uint32(seq) }

func nanotime() int64 { return time.Now().UnixNano() }

// paddingOnly reports whether an RTP packet carries nothing but padding.
func paddingOnly(pkt []byte) bool {
	if pkt[0]&0x20 == 0 {
		return false
	}
	var h rtpx.Header
	return rtpx.Parse(pkt, &h) == nil && h.PayloadEnd == h.PayloadStart
}

// live reports whether layer i sent a packet within the last second.
func (t *UpTrack) live(i uint8, now time.Time) bool {
	l := t.layer(i)
	return l != nil && now.UnixNano()-l.lastAt.Load() < int64(time.Second)
}

// top is the highest live layer (0 when none is).
func (t *UpTrack) top(now time.Time) uint8 {
	for i := maxLayers - 1; i > 0; i-- {
		if t.live(uint8(i), now) {
			return uint8(i)
		}
	}
	return 0
}

// A down-track's layers, in one atomic word so that the up-track's
// readers (which layers to enqueue), the writer (the current layer) and
// the allocator (the target) agree: bits 0-7 the layer being forwarded
// (noLayer before the first), bits 8-15 the layer wanted. Both are
// enqueued while they differ, and the writer moves to the target at its
// first keyframe.
func sel(cur, target uint8) uint32 { return uint32(target)<<8 | uint32(cur) }

// wants reports whether packets of layer i should reach the writer.
func (d *DownTrack) wants(i uint8) bool {
	s := d.sel.Load()
	return uint8(s) == i || uint8(s>>8) == i
}

// Layer reports the layer forwarded now and the one wanted.
func (d *DownTrack) Layer() (cur, target uint8) {
	s := d.sel.Load()
	return uint8(s), uint8(s >> 8)
}

// setTarget asks the down-track to move to layer i, at i's next keyframe
// (one is asked for now). It reports whether the target changed.
func (d *DownTrack) setTarget(i uint8) bool {
	for {
		s := d.sel.Load()
		if uint8(s>>8) == i {
			return false
		}
		if d.sel.CompareAndSwap(s, sel(uint8(s), i)) {
			break
		}
	}
	if cur, _ := d.Layer(); cur != i {
		d.up.requestKeyframeOf(i)
	}
	return true
}

// switched records that the writer now forwards layer i.
func (d *DownTrack) switched(i uint8) {
	for {
		s := d.sel.Load()
		if d.sel.CompareAndSwap(s, sel(i, uint8(s>>8))) {
			return
		}
	}
}

// startLayer is where a new subscriber starts: the middle layer, which a
// consult's usual downlink carries, until the allocator knows better; a
// tap (a recording) takes the best there is.
func startLayer(t *UpTrack, tap bool) uint8 {
	if !t.simulcast {
		return 0
	}
	if tap {
		return t.top(time.Now())
	}
	// The layers arrive within a few packets of each other: the middle
	// one, if it is there, even before it has been seen to flow.
	for i := 1; i >= 0; i-- {
		if t.layer(uint8(i)) != nil {
			return uint8(i)
		}
	}
	return t.top(time.Now())
}

// logSwitch notes a layer change for one subscriber, at debug level: a
// weak link can switch every few seconds.
func (d *DownTrack) logSwitch(log *zap.Logger, from, to uint8, why string) {
	log.Debug("layer", zap.String("track", d.up.info.ID), zap.String("from", d.up.ridOf(from)),
		zap.String("to", d.up.ridOf(to)), zap.String("why", why))
}
