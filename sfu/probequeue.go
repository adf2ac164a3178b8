package sfu

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Queue watch. While a probe for a move up a layer is on, the
// subscriber's transport-cc feedback is read for the queue the padding
// builds, directly: the time each packet was sent (by its transport-wide
// number) against the time the feedback says it arrived. Their difference is the one-way delay
// plus a constant (the clocks differ); its least value in a feedback,
// over the least seen since the probe began, is the queue the probe has
// added. Past probeQueue, in two feedbacks in a row, the probe ends.
//
// GCC's overuse detector, which the probe also heeds, reads the slope of
// the delay, and on a link with a bounded queue it saw little: at
// 300 kbit/s behind Chromium's shaper (a 300 ms queue), probes ran their
// full 2.5 s with no overuse while the queue filled and then dropped
// packets, and each loss froze the subscriber's pictures (a NACK waits
// behind the full queue). Stopping at a tenth of that queue costs the
// link a short delay and no loss. The least delay of a feedback, not its
// mean, is taken, so that a machine's scheduling hiccup (one late
// packet) is not taken for a queue: a queue delays every packet.
const (
	probeQueue = 60 * time.Millisecond
	// queueFeedbacks in a row over probeQueue end the probe.
	queueFeedbacks = 2
	// queueSlots of send times are kept, by transport-wide number: more
	// than a probe's feedback ever leaves unanswered.
	queueSlots = 1024
)

// queueWatch records a probe's send times and reads its feedback. sent
// runs on the forwarding goroutines; feedback on the RTCP readers' (one
// per down-track: pion hands a feedback to the sender it names).
type queueWatch struct {
	base  int64 // when the probe began, unix ns
	slots [queueSlots]atomic.Uint64
	mu    sync.Mutex
	// floor is the least one-way delay seen, µs (plus the clocks'
	// offset); over counts feedbacks in a row past it by probeQueue.
	floor int64
	over  int
}

func newQueueWatch(now time.Time) *queueWatch {
	return &queueWatch{base: now.UnixNano(), floor: math.MaxInt64}
}

// sent records that the packet numbered seq left now (unix ns). A slot
// holds the send time in µs since the probe began, and the number, so
// that a slot written for an older number is not misread.
func (q *queueWatch) sent(seq uint16, now int64) {
	us := uint64(max(now-q.base, 0) / 1000)
	q.slots[seq%queueSlots].Store(us<<16 | uint64(seq) | 1<<63)
}

// sentAt is when the packet numbered seq left (µs since the probe
// began), if it was recorded.
func (q *queueWatch) sentAt(seq uint16) (int64, bool) {
	v := q.slots[seq%queueSlots].Load()
	if v&(1<<63) == 0 || uint16(v) != seq {
		return 0, false
	}
	return int64(v&^(1<<63)) >> 16, true
}

// feedback reads one transport-cc feedback and reports whether the
// queue the probe built is past probeQueue for queueFeedbacks in a row.
func (q *queueWatch) feedback(fb *rtcp.TransportLayerCC) bool {
	arrival := int64(fb.ReferenceTime) * 64000 // µs, as the feedback counts
	next, short := 0, false
	least := int64(math.MaxInt64)
	eachStatus(fb, func(seq, sym uint16) {
		if short || sym != rtcp.TypeTCCPacketReceivedSmallDelta && sym != rtcp.TypeTCCPacketReceivedLargeDelta {
			return
		}
		if next >= len(fb.RecvDeltas) || fb.RecvDeltas[next] == nil {
			short = true // a feedback short of deltas: read no further
			return
		}
		arrival += fb.RecvDeltas[next].Delta
		next++
		if at, ok := q.sentAt(seq); ok {
			least = min(least, arrival-at)
		}
	})
	if least == math.MaxInt64 {
		return false // nothing the probe sent
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.floor = min(q.floor, least)
	if least-q.floor >= probeQueue.Microseconds() {
		q.over++
	} else {
		q.over = 0
	}
	return q.over >= queueFeedbacks
}

// sendStamp is the writer a subscriber's stream writes through: while a
// probe is on, it tells the probe's queue watch when each packet left.
// Otherwise it costs one atomic load.
type sendStamp struct {
	e    *twccOnly
	id   uint8 // the transport-cc header extension's
	next interceptor.RTPWriter
}

func (s *sendStamp) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	if pr := s.e.probe.Load(); pr != nil && pr.queue != nil {
		if x := h.GetExtension(s.id); len(x) >= 2 {
			pr.queue.sent(binary.BigEndian.Uint16(x), nanotime())
		}
	}
	return s.next.Write(h, payload, a)
}
