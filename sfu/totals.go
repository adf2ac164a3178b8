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

func (c *totals) addTo(st *Stats) {
	st.PacketsIn += c.packetsIn.Load()
	st.BytesIn += c.bytesIn.Load()
	st.KeyframeRequests += c.keyframeRequests.Load()
	c.addDownsTo(st)
}

func (c *totals) addDownsTo(st *Stats) {
	st.PacketsOut += c.packetsOut.Load()
	st.BytesOut += c.bytesOut.Load()
	st.Dropped += c.dropped.Load()
	st.Retransmits += c.retransmits.Load()
	st.PLIsIn += c.plisIn.Load()
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

func (st *Stats) addDown(d Stats) {
	st.PacketsOut += d.PacketsOut
	st.BytesOut += d.BytesOut
	st.Dropped += d.Dropped
	st.Retransmits += d.Retransmits
	st.PLIsIn += d.PLIsIn
}

// stats is a down-track's own counts.
func (d *DownTrack) stats() Stats {
	return Stats{PacketsOut: d.sent.Load(), BytesOut: d.bytesOut.Load(), Dropped: d.dropped.Load(),
		Retransmits: d.retransmits.Load(), PLIsIn: d.plisIn.Load()}
}
