package sfu

import (
	"errors"
	"math/rand/v2"
	"strings"

	"github.com/pion/webrtc/v4"
)

// ErrNoTrack is returned by Tap for a track that is not published.
var ErrNoTrack = errors.New("sfu: no such track in the room")

// TapInfo describes the RTP stream a tap receives.
type TapInfo struct {
	TrackInfo
	SSRC        uint32
	PayloadType uint8
	ClockRate   uint32
	Channels    uint16
	Fmtp        string
}

// Tap sends a published track's packets to w, starting at its next
// keyframe (one is requested), as a recorder or an RTP forwarder needs. w
// is called from the tap's own goroutine, with the packets of one stream:
// fixed SSRC and payload type, the publisher's sequence numbers and
// timestamps (of a simulcast track, the best layer's, renumbered across a
// change of layer). ended runs once if the track ends before stop is
// called.
func (s *SFU) Tap(room, trackID string, w RTPWriter, ended func()) (TapInfo, func(), error) {
	s.mu.Lock()
	r := s.rooms[room]
	s.mu.Unlock()
	if r == nil {
		return TapInfo{}, nil, ErrNoTrack
	}
	up := r.track(trackID)
	if up == nil {
		return TapInfo{}, nil, ErrNoTrack
	}
	info := TapInfo{TrackInfo: up.info, SSRC: rand.Uint32()}
	for _, c := range codecList {
		if strings.EqualFold(c.MimeType, up.info.Codec) {
			info.PayloadType, info.ClockRate = uint8(c.PayloadType), c.ClockRate
			info.Channels, info.Fmtp = c.Channels, c.SDPFmtpLine
		}
	}
	d := newDownTrack(up, func(d *DownTrack) {
		d.close()
		if ended != nil {
			ended()
		}
	}, true)
	// A tap takes the track's first codec alone: a recorder's file is
	// of one codec (codec.go); of RED it gets the Opus (red.go).
	b := &binding{ssrc: info.SSRC, writer: w}
	b.byCodec[up.first] = info.PayloadType
	d.binding.Store(b)
	if !up.addDown(d) {
		return TapInfo{}, nil, ErrNoTrack
	}
	go d.writeLoop()
	_, target := d.Layer()
	up.requestKeyframeOf(target)
	up.log.Info("tap started")
	stop := func() {
		up.removeDown(d)
		d.close()
	}
	return info, stop, nil
}

func (r *Room) track(id string) *UpTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tracks {
		if t.info.ID == id {
			return t
		}
	}
	return nil
}

var _ RTPWriter = (webrtc.TrackLocalWriter)(nil)
