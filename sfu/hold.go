package sfu

// Hold stops (or resumes) forwarding every track of one kind ("audio" or
// "video") that the participant publishes, now and later in the session.
// A host who mutes a member asks the member's client to stop sending, but
// only the server can make sure that nothing reaches the others meanwhile:
// a held track's packets are read and dropped, not cached, so they cannot
// be retransmitted either.
func (p *Participant) Hold(kind string, held bool) {
	p.mu.Lock()
	if p.held == nil {
		p.held = map[string]bool{}
	}
	p.held[kind] = held
	var ups []*UpTrack
	for _, t := range p.ups {
		if t.info.Kind == kind {
			ups = append(ups, t)
		}
	}
	p.mu.Unlock()
	for _, t := range ups {
		if t.held.Swap(held) && !held {
			// The picture resumes at a keyframe.
			t.requestKeyframe()
		}
	}
}
