package sfu

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// The REMB fallback. Browsers send transport-cc feedback, and the server
// estimates their downlinks itself (estimate.go). A client that does not
// (an older browser, a gateway, an embedded device) may still send REMB:
// its own estimate of what reaches it (goog-remb, which the server
// negotiates for video). Until transport-cc feedback comes, a
// subscriber's latest REMB is its estimate for layer choice and audio
// first, so such a client is no longer sent everything whatever its link.
// The figure is the receiver's word, so it is bounded like GCC's
// (estimateMin to estimateMax) and it only ever decides what that client
// itself is sent. A subscriber whose REMBs stop is starved, as one whose
// feedback stops is: the paused video it is not sent was what it
// measured by.

// rembEstimate is the latest REMB of a subscriber's.
type rembEstimate struct {
	bps atomic.Uint64 // bits per second, bounded
	at  atomic.Int64  // when it came (unix ns); 0: never
}

// note keeps p's figure. One that is not a number is ignored.
func (r *rembEstimate) note(p *rtcp.ReceiverEstimatedMaximumBitrate, now time.Time) {
	b := float64(p.Bitrate)
	if math.IsNaN(b) {
		return
	}
	r.bps.Store(uint64(min(max(b, estimateMin), estimateMax)))
	r.at.Store(now.UnixNano())
}

// read returns the latest figure; starved when it is older than
// starvedAfter, ok false when there has been none.
func (r *rembEstimate) read(now time.Time) (bps float64, starved, ok bool) {
	at := r.at.Load()
	if at == 0 {
		return 0, false, false
	}
	return float64(r.bps.Load()), now.Sub(time.Unix(0, at)) > starvedAfter, true
}
