package sfu

import "sync/atomic"

// Hold stops (or resumes) forwarding every track of one kind ("audio" or
// "video") that the participant publishes, now and later in the session.
// A host who mutes a member asks the member's client to stop sending, but
// only the server can make sure that nothing reaches the others meanwhile:
// a held track's packets are read and dropped, not cached, so they cannot
// be retransmitted either. Hold takes no lock (each kind is one atomic
// flag that the kind's up-tracks read), so a caller may hold its own locks,
// and calls made in order take effect in order.
func (p *Participant) Hold(kind string, held bool) {
	f := p.heldFlag(kind)
	if f == nil {
		return
	}
	if f.Swap(held) && !held && kind == "video" {
		// The picture resumes at a keyframe. Asking takes the
		// participant's lock and writes to the network: not here.
		go p.requestOwnKeyframes()
	}
}

// requestOwnKeyframes asks the participant for a keyframe of each video
// track it publishes.
func (p *Participant) requestOwnKeyframes() {
	p.mu.Lock()
	ups := append([]*UpTrack(nil), p.ups...)
	p.mu.Unlock()
	for _, t := range ups {
		t.requestKeyframe()
	}
}

// heldFlag is the flag of kind's tracks (nil for an unknown kind).
func (p *Participant) heldFlag(kind string) *atomic.Bool {
	switch kind {
	case "audio":
		return &p.held[0]
	case "video":
		return &p.held[1]
	}
	return nil
}
