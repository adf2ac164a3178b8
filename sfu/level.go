package sfu

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/sfu/internal/rtpx"
)

// speechLevel is the loudest level, in -dBov, that is still silence: a
// packet at -50 dBov or louder counts as speech. Speech into a headset or
// a laptop microphone sits around -20 to -40 dBov; a quiet room with
// noise suppression, near 127. The voice-activity flag is not used: not
// every sender sets it (it needs the encoder's own detector), while every
// sender fills in the level.
const speechLevel = 50

const (
	audioClock = 48000 // Opus's RTP clock, whatever the sampling rate
	// A packet's duration is the RTP time since the one before it: one
	// Opus frame, usually 20 ms. After a longer gap (loss, a silence the
	// sender did not send, a hold) it counts as one usual frame, since
	// nothing says what the gap held.
	usualFrame = audioClock / 50
	maxFrame   = audioClock * 120 / 1000 // Opus's longest frame
)

// levelMeter adds up how much of an audio track was speech, for the
// speaker detector (speaker.go). The track's reader writes it; the
// detector's ticker reads the totals and keeps its own last values, so
// nothing is reset, no lock is taken and nothing allocates. Time is
// counted from RTP timestamps, not arrival: packets that bunch up behind
// a stall count for the time they carry, so 200 ms of sound is 200 ms of
// speech however it arrives.
type levelMeter struct {
	ext uint8 // the negotiated extension id; 0: none, no level

	// Owned by the reader: the last RTP timestamp with a level.
	lastTS uint32
	seen   bool

	speech atomic.Uint64 // RTP time (audioClock) of speech heard
}

// observeLevel reads the level of one audio packet. Called by forward,
// for packets that are not held.
func (t *UpTrack) observeLevel(pkt []byte) {
	m := &t.level
	if m.ext == 0 {
		return
	}
	level, _, ok := rtpx.AudioLevel(pkt, m.ext)
	if !ok {
		return
	}
	ts := binary.BigEndian.Uint32(pkt[4:8])
	d := int32(usualFrame)
	if m.seen {
		switch delta := int32(ts - m.lastTS); {
		case delta <= 0:
			return // late or repeated: its time is counted already
		case delta <= maxFrame:
			d = delta
		}
	}
	m.lastTS, m.seen = ts, true
	if level <= speechLevel {
		m.speech.Add(uint64(d))
	}
}

// rtpDuration is a span of audio RTP time.
func rtpDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * time.Second / audioClock
}

// audioLevelID is the id the publisher negotiated for the audio-level
// extension on recv's track (0: none, or not audio).
func audioLevelID(kind string, recv *webrtc.RTPReceiver) uint8 {
	if kind != "audio" || recv == nil {
		return 0
	}
	for _, e := range recv.GetParameters().HeaderExtensions {
		if e.URI == rtpx.AudioLevelURI && e.ID > 0 && e.ID < 256 {
			return uint8(e.ID)
		}
	}
	return 0
}
