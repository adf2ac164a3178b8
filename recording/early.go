package recording

import (
	"sync"
	"time"

	"github.com/pion/rtp"
)

// earlyMax bounds what an early tap keeps: a few seconds of one track,
// far more than the settle time it has to cover.
const earlyMax = 1500

// early taps a track from the moment it is published, while its
// participant's file waits for the other tracks to come (Config.Settle).
// Its packets wait here, copied, with their arrival time, and go to the
// file's track writer once it exists; from then on the tap feeds the
// writer directly. So a recording loses nothing of a participant's first
// moments, and audio and video keep their true offset.
type early struct {
	stop func()

	mu    sync.Mutex
	held  []heldPacket
	to    *trackWriter
	ended bool
}

type heldPacket struct {
	marker  bool
	pt      uint8
	seq     uint16
	ts      uint32
	ssrc    uint32
	payload []byte
	at      time.Time
}

// WriteRTP is called by the tap's goroutine.
func (e *early) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.to != nil {
		return e.to.writeRTP(h, payload, now)
	}
	if len(e.held) < earlyMax {
		e.held = append(e.held, heldPacket{marker: h.Marker, pt: h.PayloadType, seq: h.SequenceNumber,
			ts: h.Timestamp, ssrc: h.SSRC, payload: append([]byte(nil), payload...), at: now})
	}
	return len(payload), nil
}

// firstArrival is when the first held packet came (zero if none).
func (e *early) firstArrival() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.held) == 0 {
		return time.Time{}
	}
	return e.held[0].at
}

// attach hands the held packets, then the live stream, to tw.
func (e *early) attach(tw *trackWriter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.held {
		h := rtp.Header{Marker: p.marker, PayloadType: p.pt, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc}
		if _, err := tw.writeRTP(&h, p.payload, p.at); err != nil {
			break
		}
	}
	e.held = nil
	e.to = tw
	if e.ended {
		tw.close()
	}
}

// trackEnded is the tap's ended callback.
func (e *early) trackEnded() {
	e.mu.Lock()
	to := e.to
	e.ended = true
	e.mu.Unlock()
	if to != nil {
		to.close()
	}
}
