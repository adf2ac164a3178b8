package signaling

import (
	"bytes"
	"math"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"consult/protocol"
)

// Network quality: every QualityInterval (2 s) the server grades each
// live member's link in every room with a call and tells the call's live
// members (docs/protocol.md, "Network quality"). The web client shows a
// mark on each tile and alerts a host when a patient's connection is
// poor: the one who can act on it (switch to audio, call by phone) is
// rarely the one whose link is bad, and a patient seldom notices that
// the doctor sees a frozen picture. Waiting members get nothing: the
// message lists the call's members, and patients never see each other.
//
// Where the figures come from depends on the member's path. On the SFU
// (or through a relay to it) the server measures both halves of the link
// itself (sfu.Quality); until it has figures, a fresh link-stats report
// of the client's stands in. On the direct path media never reaches the
// server, so the member's own latest report (if under reportFresh old)
// is all there is.
//
// Grading uses the web client's thresholds (stats.js verdict): loss is
// the worse of up and down; good under 200 ms round trip, 2 % loss and
// 30 ms jitter, fair under 500 ms, 8 % and 80 ms, else poor; unknown with
// nothing measured. One bad reading does not move a mark: the level shown
// changes only when two readings in a row agree that it should, and then
// by no more than both support (good, then fair, then poor shows fair
// after the second and poor after the third). So a mark answers in 4 s,
// and neither a lost burst nor one good moment makes it flicker. The
// figures sent are the latest known reading's. A member who leaves the
// call starts its next one unmarked.
//
// The ticker is one goroutine for the server. The media server is asked
// with Server.mu released (sfu's Quality takes its locks and pion's), the
// messages are queued under it, and one is sent to a member only when it
// differs from the last one that member got.

// reportFresh is how long a client's link-stats describe its link.
const reportFresh = 6 * time.Second

// memberQuality is what the server keeps of one member's link; guarded
// by Server.mu.
type memberQuality struct {
	mark     qualityMark
	known    reading // the latest reading with figures
	sent     []byte  // the last quality message the member got
	report   protocol.LinkStats
	reportAt time.Time
	limit    *rate.Limiter // of link-stats kept
}

// reset forgets the member's link: it is out of the call.
func (q *memberQuality) reset() {
	q.mark, q.known, q.sent, q.reportAt = qualityMark{}, reading{}, nil, time.Time{}
}

// reading is one measure of a member's link.
type reading struct {
	path                  string
	loss, jitterMS, rttMS float64 // loss 0..1
	known                 bool
	downKbps              int // the server's estimate of the downlink (0: none)
}

// level grades a reading.
func (rd reading) level() string {
	switch {
	case !rd.known:
		return protocol.QualityUnknown
	case rd.rttMS < 200 && rd.loss < 0.02 && rd.jitterMS < 30:
		return protocol.QualityGood
	case rd.rttMS < 500 && rd.loss < 0.08 && rd.jitterMS < 80:
		return protocol.QualityFair
	}
	return protocol.QualityPoor
}

func (rd reading) view(id, level string) protocol.MemberQuality {
	return protocol.MemberQuality{Participant: id, Level: level, Path: rd.path,
		LossPct:  math.Round(min(max(rd.loss, 0), 1)*1000) / 10,
		JitterMS: int(math.Round(rd.jitterMS)), RTTMS: int(math.Round(rd.rttMS)), DownKbps: roundKbps(rd.downKbps)}
}

// roundKbps rounds an estimate to what a tooltip needs (10 kbit/s below
// 100, 50 below 1000, else 100): the estimate moves a little with every
// feedback, and a figure that never repeats would send every member a
// fresh quality message every tick.
func roundKbps(k int) int {
	step := 100
	switch {
	case k <= 0:
		return 0
	case k < 100:
		step = 10
	case k < 1000:
		step = 50
	}
	return max(step, (k+step/2)/step*step)
}

// qualityMark smooths readings' levels into the level shown.
type qualityMark struct {
	shown string // "": unknown
	last  string // the previous reading's level
}

var qualityRank = map[string]int{protocol.QualityGood: 0, protocol.QualityFair: 1, protocol.QualityPoor: 2}

// next takes a reading's level and returns the level to show.
func (q *qualityMark) next(l string) string {
	prev := q.last
	q.last = l
	shown := q.shown
	if shown == "" {
		shown = protocol.QualityUnknown
	}
	switch {
	case l == shown:
	case shown == protocol.QualityUnknown:
		shown = l // the first figures show at once
	case l == protocol.QualityUnknown || prev == protocol.QualityUnknown || prev == "":
		// Two readings without figures take the mark away; a
		// reading after one without figures waits for another.
		if l == prev {
			shown = l
		}
	case prev == shown:
	case (qualityRank[l] > qualityRank[shown]) == (qualityRank[prev] > qualityRank[shown]):
		// Both on the same side of the mark: it moves to the nearer.
		if qualityRank[l] > qualityRank[shown] {
			shown = l
			if qualityRank[prev] < qualityRank[l] {
				shown = prev
			}
		} else {
			shown = l
			if qualityRank[prev] > qualityRank[l] {
				shown = prev
			}
		}
	}
	q.shown = shown
	return shown
}

// linkStats keeps a live member's report of its own link, at most one a
// second; more are dropped without a word (the next one will do).
func (s *Server) linkStats(m *member, ref string, ls *protocol.LinkStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !m.live || m.room.find(m.id) != m {
		m.replyError(ref, protocol.ErrInvalidState, "link-stats are for members in a call")
		return
	}
	q := &m.quality
	if q.limit == nil {
		q.limit = rate.NewLimiter(1, 1)
	}
	if q.limit.Allow() {
		q.report, q.reportAt = *ls, time.Now()
	}
}

// qualityLoop grades the calls' links until stop closes.
func (s *Server) qualityLoop(every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.qualityTick(time.Now())
		}
	}
}

// stopQuality ends the quality ticker (Shutdown).
func (s *Server) stopQuality() { s.qualityOnce.Do(func() { close(s.qualityStop) }) }

// probe is what a tick measures of one member: its media session on the
// SFU path, its fresh report.
type probe struct {
	m      *member
	peer   Peer
	direct bool
	report *protocol.LinkStats
}

func (p probe) read() reading {
	rd := reading{path: protocol.PathSFU}
	if p.direct {
		rd.path = protocol.PathDirect
	} else if p.peer != nil {
		q := p.peer.Quality()
		rd.downKbps = q.DownKbps
		if q.Relay {
			rd.path = protocol.PathRelay
		}
		if q.Known {
			rd.loss, rd.jitterMS, rd.rttMS, rd.known = max(q.LossUp, q.LossDown), q.JitterMS, q.RTTMS, true
			return rd
		}
	}
	if r := p.report; r != nil {
		rd.loss, rd.jitterMS, rd.rttMS, rd.known = r.Loss, r.JitterMS, r.RTTMS, true
		if r.Relay && !p.direct {
			rd.path = protocol.PathRelay
		}
	}
	return rd
}

// onDirectPath reports whether m's media goes straight to its peer (or
// is about to, with no session at the server).
func (r *room) onDirectPath(m *member) bool {
	if r.pair[0] == m || r.pair[1] == m {
		return true
	}
	at := r.attempt
	return at != nil && (at.a == m || at.b == m) && m.peer == nil
}

// qualityTick measures every call's live members and tells each call.
func (s *Server) qualityTick(now time.Time) {
	var probes []probe
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	for _, r := range s.rooms {
		inCall := r.liveCount() >= 2
		for _, m := range r.members {
			q := &m.quality
			if !inCall || !m.live {
				q.reset()
				continue
			}
			if m.sock.Load() == nil {
				q.sent = nil // away: it gets the state when it is back
			}
			p := probe{m: m, direct: r.onDirectPath(m)}
			if !p.direct {
				p.peer = m.peer
			}
			if !q.reportAt.IsZero() && now.Sub(q.reportAt) < reportFresh {
				rep := q.report
				p.report = &rep
			}
			probes = append(probes, p)
		}
	}
	s.mu.Unlock()

	readings := make(map[*member]reading, len(probes))
	for _, p := range probes {
		readings[p.m] = p.read()
	}

	var notes []func()
	s.mu.Lock()
	for _, r := range s.rooms {
		live := r.live()
		if len(live) < 2 {
			continue
		}
		msg := protocol.Quality{Members: make([]protocol.MemberQuality, 0, len(live))}
		for _, m := range live {
			q := &m.quality
			rd, ok := readings[m]
			if !ok { // live since the measuring began
				rd = reading{path: protocol.PathSFU}
				if r.onDirectPath(m) {
					rd.path = protocol.PathDirect
				}
			}
			was := q.mark.shown
			level := q.mark.shown
			if ok {
				level = q.mark.next(rd.level())
			}
			if level == "" {
				level = protocol.QualityUnknown
			}
			if rd.known {
				q.known = rd
			} else if level != protocol.QualityUnknown {
				rd.loss, rd.jitterMS, rd.rttMS = q.known.loss, q.known.jitterMS, q.known.rttMS
				if rd.downKbps == 0 {
					rd.downKbps = q.known.downKbps
				}
			}
			v := rd.view(m.id, level)
			msg.Members = append(msg.Members, v)
			if note := qualityNote(m.log, was, level, v); note != nil {
				notes = append(notes, note)
			}
		}
		b, err := protocol.Encode(protocol.TypeQuality, msg)
		if err != nil {
			continue
		}
		for _, m := range live {
			if m.sock.Load() != nil && !bytes.Equal(m.quality.sent, b) {
				m.sendRaw(b)
				m.quality.sent = b
			}
		}
	}
	s.mu.Unlock()
	run(notes)
}

// qualityNote is the log line, if any, of a member's mark going from was
// to now: operators hear when a link turns poor and when it recovers.
func qualityNote(log *zap.Logger, was, now string, v protocol.MemberQuality) func() {
	var msg string
	switch {
	case now == protocol.QualityPoor && was != protocol.QualityPoor:
		msg = "link poor"
	case was == protocol.QualityPoor && (now == protocol.QualityGood || now == protocol.QualityFair):
		msg = "link recovered"
	default:
		return nil
	}
	return func() {
		log.Info(msg, zap.String("level", now), zap.String("path", v.Path), zap.Float64("lossPct", v.LossPct),
			zap.Int("rttMs", v.RTTMS), zap.Int("jitterMs", v.JitterMS))
	}
}
