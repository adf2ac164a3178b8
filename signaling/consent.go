package signaling

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// Consent to record. A host in the call asks to record; unless the room's
// policy says consent is taken elsewhere, every other live member is asked
// and the recording starts only once all have agreed. One decline, or no
// answer within ConsentTimeout, and it does not start; a member who leaves
// before answering is not waited for. Once it runs, a member who comes
// into the call is asked too and is recorded only after agreeing (a
// decline leaves it out); one who rejoins is not asked twice. Answers go
// to the recorder, which keeps them in the recording's manifest. The
// server drives the recorder through Recorder; the HTTP API still starts
// recordings at once, for integrations that take consent themselves.

// Recorder is what signaling needs of a recorder (recording.Manager).
type Recorder interface {
	// StartConsented records the room's members in only (nil: everyone).
	StartConsented(room string, c protocol.RecordingConsent, people []protocol.RecordedPerson, only []string) error
	StopRecording(room string) error
	// Answered adds the answer of a member who came in while it runs.
	Answered(room string, a protocol.ConsentAnswer, p protocol.RecordedPerson)
}

// consent is a room's request to record: while asking, who has yet to
// answer; once the recording runs, who was asked later and every answer
// by identity.
type consent struct {
	request string
	by      *member
	asking  bool
	started bool // the recording it asked for runs
	pending map[*member]bool
	answers []protocol.ConsentAnswer
	agreed  map[string]bool // identity → answer
	timer   *time.Timer
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "rq-" + hex.EncodeToString(b)
}

// record handles a host's record {start}.
func (s *Server) record(m *member, ref string, start bool) {
	s.mu.Lock()
	r := m.room
	switch {
	case !may(m, actRecord):
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrNotHost, "only a host may record the consultation")
		return
	case s.cfg.Recorder == nil:
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrServer, "recording is not available on this server")
		return
	case !m.live:
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrInvalidState, "join the call first")
		return
	}
	if !start {
		c := r.consent
		if c != nil && c.asking {
			s.endAskLocked(r, protocol.RecordCancelled, nil)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if err := s.cfg.Recorder.StopRecording(r.name); err != nil {
			m.replyError(ref, protocol.ErrRecording, err.Error())
		}
		return
	}
	switch {
	case s.policies[r.name].NoRecording:
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrForbidden, "this room's policy forbids recording it")
		return
	case r.recording:
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrInvalidState, "the consultation is already being recorded")
		return
	case r.consent != nil && r.consent.asking:
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrInvalidState, "consent to record is already being asked")
		return
	}
	c := &consent{request: newRequestID(), by: m, pending: map[*member]bool{}, agreed: map[string]bool{m.identity: true}}
	c.answers = append(c.answers, protocol.ConsentAnswer{Participant: m.id, Accepted: true, At: time.Now(), Why: "asked to record"})
	r.consent = c
	elsewhere := s.policies[r.name].ConsentElsewhere
	if !elsewhere {
		for _, o := range r.members {
			if o != m && o.live {
				c.pending[o] = true
			}
		}
	}
	if len(c.pending) == 0 {
		start := s.startConsentedLocked(r, c, elsewhere)
		s.mu.Unlock()
		start()
		return
	}
	c.asking = true
	for o := range c.pending {
		o.send(protocol.TypeConsentRequest, protocol.ConsentRequest{Request: c.request, From: m.id})
	}
	s.recordStateLocked(r, protocol.RecordState{Request: c.request, State: protocol.RecordAsking, Waiting: pendingIDs(c)})
	timeout, asked := s.cfg.ConsentTimeout, len(c.pending)
	c.timer = time.AfterFunc(timeout, func() { s.consentTimedOut(r, c) })
	s.mu.Unlock()
	m.log.Info("consent to record asked", zap.String("request", c.request), zap.Int("asked", asked))
}

// answer handles a member's consent reply.
func (s *Server) answer(m *member, ref string, a *protocol.ConsentReply) {
	s.mu.Lock()
	r := m.room
	c := r.consent
	if c == nil || c.request != a.Request {
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrInvalidState, "no such request to record")
		return
	}
	if !c.pending[m] {
		s.mu.Unlock()
		m.replyError(ref, protocol.ErrInvalidState, "not asked, or already answered")
		return
	}
	delete(c.pending, m)
	ans := protocol.ConsentAnswer{Participant: m.id, Accepted: a.Accept, At: time.Now()}
	c.answers = append(c.answers, ans)
	c.agreed[m.identity] = a.Accept
	m.log.Info("consent to record answered", zap.String("request", c.request), zap.Bool("accepted", a.Accept))
	if c.started {
		// A member who came in while it runs.
		if !a.Accept {
			s.recordStateLocked(r, protocol.RecordState{Request: c.request, State: protocol.RecordStarted, Declined: []string{m.id}})
		}
		person := protocol.RecordedPerson{ID: m.id, Role: m.role, Identity: m.identity}
		s.mu.Unlock()
		s.cfg.Recorder.Answered(r.name, ans, person)
		return
	}
	if !a.Accept {
		s.endAskLocked(r, protocol.RecordDeclined, []string{m.id})
		s.mu.Unlock()
		return
	}
	if len(c.pending) > 0 {
		s.recordStateLocked(r, protocol.RecordState{Request: c.request, State: protocol.RecordAsking, Waiting: pendingIDs(c)})
		s.mu.Unlock()
		return
	}
	start := s.startConsentedLocked(r, c, false)
	s.mu.Unlock()
	start()
}

// startConsentedLocked marks the request answered and returns the start,
// to run after unlocking (the recorder calls back into the server).
func (s *Server) startConsentedLocked(r *room, c *consent, elsewhere bool) func() {
	c.asking, c.started = false, true
	if c.timer != nil {
		c.timer.Stop()
	}
	rc := protocol.RecordingConsent{Policy: protocol.ConsentAsked, By: c.by.id, Answers: append([]protocol.ConsentAnswer(nil), c.answers...)}
	var only []string
	if elsewhere {
		rc.Policy = protocol.ConsentElsewhere
	} else {
		for _, a := range c.answers {
			if a.Accepted {
				only = append(only, a.Participant)
			}
		}
	}
	var people []protocol.RecordedPerson
	for _, o := range r.members {
		if o.live {
			people = append(people, protocol.RecordedPerson{ID: o.id, Role: o.role, Identity: o.identity})
		}
	}
	name, by := r.name, c.by
	return func() {
		err := s.cfg.Recorder.StartConsented(name, rc, people, only)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			if r.consent == c {
				for o := range c.pending { // asked since
					o.send(protocol.TypeConsentRequest, protocol.ConsentRequest{Request: c.request, Closed: true})
				}
				r.consent = nil
			}
			s.recordStateLocked(r, protocol.RecordState{Request: c.request, State: protocol.RecordFailed, Error: err.Error()})
			by.log.Warn("recording not started", zap.Error(err))
			return
		}
		if r.consent == c {
			s.recordStateLocked(r, protocol.RecordState{Request: c.request, State: protocol.RecordStarted})
		}
	}
}

// endAskLocked ends a request that will not start a recording: the hosts
// hear why, those still asked see the request withdrawn.
func (s *Server) endAskLocked(r *room, state string, declined []string) {
	c := r.consent
	if c.timer != nil {
		c.timer.Stop()
	}
	for o := range c.pending {
		o.send(protocol.TypeConsentRequest, protocol.ConsentRequest{Request: c.request, Closed: true})
	}
	r.consent = nil
	s.recordStateLocked(r, protocol.RecordState{Request: c.request, State: state, Declined: declined})
	c.by.log.Info("recording not started", zap.String("request", c.request), zap.String("why", state))
}

func (s *Server) consentTimedOut(r *room, c *consent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.consent != c || !c.asking {
		return
	}
	silent := pendingIDs(c)
	s.endAskLocked(r, protocol.RecordDeclined, silent)
}

// consentLeftLocked: a member left the call (or the room). While asking,
// it is no longer waited for (the requester leaving withdraws the
// request); returns the start if it was the last one waited for.
func (s *Server) consentLeftLocked(m *member) func() {
	r := m.room
	c := r.consent
	if c == nil {
		return nil
	}
	if !c.asking {
		delete(c.pending, m)
		return nil
	}
	if m == c.by {
		s.endAskLocked(r, protocol.RecordCancelled, nil)
		return nil
	}
	if !c.pending[m] {
		return nil
	}
	delete(c.pending, m)
	c.answers = append(c.answers, protocol.ConsentAnswer{Participant: m.id, At: time.Now(), Why: "left"})
	if len(c.pending) > 0 {
		s.recordStateLocked(r, protocol.RecordState{Request: c.request, State: protocol.RecordAsking, Waiting: pendingIDs(c)})
		return nil
	}
	return s.startConsentedLocked(r, c, false)
}

// consentArrivedLocked: m came into the call. While the request is being
// asked, m is asked too. Once its recording starts, so is m, unless its
// identity already answered (a rejoin): that answer stands for the new
// session.
func (s *Server) consentArrivedLocked(r *room, m *member) {
	c := r.consent
	if c == nil || c.pending[m] || m == c.by || !c.asking && !c.started {
		return
	}
	if agreed, known := c.agreed[m.identity]; known && c.started {
		if agreed {
			a := protocol.ConsentAnswer{Participant: m.id, Accepted: true, At: time.Now(), Why: "agreed before rejoining"}
			p := protocol.RecordedPerson{ID: m.id, Role: m.role, Identity: m.identity}
			rec, name := s.cfg.Recorder, r.name
			go rec.Answered(name, a, p) // the recorder calls back into the server
		}
		return
	}
	c.pending[m] = true
	m.send(protocol.TypeConsentRequest, protocol.ConsentRequest{Request: c.request, From: c.by.id})
	if c.asking {
		s.recordStateLocked(r, protocol.RecordState{Request: c.request, State: protocol.RecordAsking, Waiting: pendingIDs(c)})
	}
}

// recordingEndedLocked: the room's recording stopped; a request still
// open to later members is withdrawn.
func (s *Server) recordingEndedLocked(r *room) {
	c := r.consent
	if c == nil || c.asking {
		return
	}
	for o := range c.pending {
		o.send(protocol.TypeConsentRequest, protocol.ConsentRequest{Request: c.request, Closed: true})
	}
	r.consent = nil
	s.recordStateLocked(r, protocol.RecordState{Request: c.request, State: protocol.RecordStopped})
}

func (s *Server) recordStateLocked(r *room, st protocol.RecordState) {
	for _, o := range r.members {
		if may(o, actRecord) {
			o.send(protocol.TypeRecordState, st)
		}
	}
}

func pendingIDs(c *consent) []string {
	ids := make([]string, 0, len(c.pending))
	for o := range c.pending {
		ids = append(ids, o.id)
	}
	sort.Strings(ids)
	return ids
}
