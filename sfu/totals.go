package sfu

import "sync/atomic"

// totals keeps the counters of tracks that have ended, so that the SFU's
// Stats only ever grow, as counters read by a monitoring system must:
// each live track counts its own packets (no counter is shared between
// forwarding goroutines), and hands its counts here when it goes.
type totals struct {
	packetsIn, bytesIn, keyframeRequests atomic.Uint64
	packetsOut, bytesOut                 atomic.Uint64
	dropped, retransmits, plisIn         atomic.Uint64
}

// add moves a finished track's (or down-track's) counts in.
func (c *totals) add(st Stats) {
	c.packetsIn.Add(st.PacketsIn)
	c.bytesIn.Add(st.BytesIn)
	c.keyframeRequests.Add(st.KeyframeRequests)
	c.packetsOut.Add(st.PacketsOut)
	c.bytesOut.Add(st.BytesOut)
	c.dropped.Add(st.Dropped)
	c.retransmits.Add(st.Retransmits)
	c.plisIn.Add(st.PLIsIn)
}

// load returns the counts held.
func (c *totals) load() Stats {
	return Stats{PacketsIn: c.packetsIn.Load(), BytesIn: c.bytesIn.Load(), KeyframeRequests: c.keyframeRequests.Load(),
		PacketsOut: c.packetsOut.Load(), BytesOut: c.bytesOut.Load(), Dropped: c.dropped.Load(),
		Retransmits: c.retransmits.Load(), PLIsIn: c.plisIn.Load()}
}

// addCounts adds o's counters (not its room, participant and track
// gauges) to st.
func (st *Stats) addCounts(o Stats) {
	st.PacketsIn += o.PacketsIn
	st.BytesIn += o.BytesIn
	st.KeyframeRequests += o.KeyframeRequests
	st.PacketsOut += o.PacketsOut
	st.BytesOut += o.BytesOut
	st.Dropped += o.Dropped
	st.Retransmits += o.Retransmits
	st.PLIsIn += o.PLIsIn
}

// stats is a down-track's own counts.
func (d *DownTrack) stats() Stats {
	return Stats{PacketsOut: d.sent.Load(), BytesOut: d.bytesOut.Load(), Dropped: d.dropped.Load(),
		Retransmits: d.retransmits.Load(), PLIsIn: d.plisIn.Load()}
}
