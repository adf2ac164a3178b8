package protocol

import (
	"errors"
	"math"
)

// Network quality (docs/protocol.md, "Network quality"): every two
// seconds the server tells each live member of a call how every live
// member's link fares, for a mark on each tile and an alert to a host
// when a patient's connection is poor. On the SFU path the server
// measures the links itself; on the direct path media never reaches it,
// so each client reports its own view in link-stats.

const (
	TypeQuality   = "quality"    // server: Quality
	TypeLinkStats = "link-stats" // client: LinkStats
)

// Quality levels, with the web client's thresholds (stats.js verdict):
// good under 200 ms round trip, 2 % loss and 30 ms jitter; fair under
// 500 ms, 8 % and 80 ms; poor beyond; unknown with nothing measured.
const (
	QualityGood    = "good"
	QualityFair    = "fair"
	QualityPoor    = "poor"
	QualityUnknown = "unknown"
)

// Media paths of a member's link.
const (
	PathDirect = "direct" // the 1:1 direct connection (figures from the client's link-stats)
	PathSFU    = "sfu"    // to the server
	PathRelay  = "relay"  // to the server through a TURN relay
)

// Quality is the body of quality: the call's live members, in join order.
type Quality struct {
	Members []MemberQuality `json:"members"`
}

// MemberQuality is one member's link: Level is smoothed (a change needs
// two readings in a row); the figures are the latest reading's that had
// any. LossPct is the worse of the two directions.
type MemberQuality struct {
	Participant string  `json:"participant"`
	Level       string  `json:"level"`
	Path        string  `json:"path"`
	LossPct     float64 `json:"lossPct"` // 0..100, to 0.1
	JitterMS    int     `json:"jitterMs"`
	RTTMS       int     `json:"rttMs"`
	// DownKbps is what the server estimates the member's downlink
	// carries, rounded (on the SFU path, from its transport-cc feedback;
	// absent when there is no estimate, and on the direct path).
	DownKbps int `json:"downKbps,omitempty"`
}

// Bounds of a link-stats report: a round trip or jitter beyond
// MaxLinkMS is no measurement of a link that still carries a call.
const MaxLinkMS = 10000

// LinkStats is a client's own view of its media link (on the direct path,
// the one peer connection's; the server uses it there, and on the SFU
// path until it has figures of its own). At most one a second is kept.
type LinkStats struct {
	RTTMS    float64 `json:"rttMs"`
	Loss     float64 `json:"loss"` // fraction of packets lost, 0..1
	JitterMS float64 `json:"jitterMs"`
	Relay    bool    `json:"relay"` // the selected candidate pair uses a TURN relay
}

func (l *LinkStats) validate() error {
	for _, v := range []float64{l.RTTMS, l.Loss, l.JitterMS} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("link-stats figures must be numbers")
		}
	}
	switch {
	case l.Loss < 0 || l.Loss > 1:
		return errors.New("loss must be a fraction from 0 to 1")
	case l.RTTMS < 0 || l.RTTMS > MaxLinkMS:
		return errors.New("rttMs must be from 0 to 10000")
	case l.JitterMS < 0 || l.JitterMS > MaxLinkMS:
		return errors.New("jitterMs must be from 0 to 10000")
	}
	return nil
}
