package recording

import (
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"consult/sfu"
)

// trackWriter turns one tapped RTP stream into Matroska blocks. The sample
// builder reorders packets and drops frames with holes, so a lost packet
// costs a frame, never a corrupt one. Timestamps come from RTP, anchored
// to the wall clock at the track's first frame, which keeps audio and
// video of one participant in step.
type trackWriter struct {
	f     *file
	index int // in f.tracks
	info  sfu.TrackInfo
	clock int64
	sb    *samplebuilder.SampleBuilder
	video bool
	vp9   bool
	h264  bool

	mu      sync.Mutex
	started bool
	base    int64  // ms from the file's start to the first frame
	first   uint32 // RTP timestamp of the first frame
	ext     int64  // unwrapped RTP timestamp offset
	last    uint32
	closed  bool
	// an H.264 stream's latest parameter sets, until its first keyframe
	sps, pps []byte
}

func newTrackWriter(f *file, index int, info sfu.TrackInfo) *trackWriter {
	var dep rtp.Depacketizer = &codecs.OpusPacket{}
	maxLate, clock := uint16(32), int64(48000)
	video := info.Kind == "video"
	vp9 := strings.EqualFold(info.Codec, webrtc.MimeTypeVP9)
	h264 := strings.EqualFold(info.Codec, webrtc.MimeTypeH264)
	if video {
		maxLate, clock = 256, 90000
		switch {
		case vp9:
			dep = &codecs.VP9Packet{}
		case h264:
			dep = &codecs.H264Packet{}
		default:
			dep = &codecs.VP8Packet{}
		}
	}
	return &trackWriter{f: f, index: index, info: info, video: video, vp9: vp9, h264: h264, clock: clock,
		sb: samplebuilder.New(maxLate, dep, uint32(clock))}
}

// WriteRTP is called by the SFU tap's goroutine. The sample builder keeps
// packets, so the payload (the tap's reused buffer) is copied: recording
// is not the forwarding path.
func (t *trackWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	return t.writeRTP(h, payload, time.Now())
}

// writeRTP takes a packet that arrived at the given time (earlier than
// now for the packets an early tap held).
func (t *trackWriter) writeRTP(h *rtp.Header, payload []byte, at time.Time) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, nil
	}
	p := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: h.Marker, PayloadType: h.PayloadType,
		SequenceNumber: h.SequenceNumber, Timestamp: h.Timestamp, SSRC: h.SSRC},
		Payload: append([]byte(nil), payload...)}
	t.sb.Push(p)
	for s := t.sb.Pop(); s != nil; s = t.sb.Pop() {
		if err := t.writeSample(s.Data, s.PacketTimestamp, at); err != nil {
			t.f.fail(err)
			t.closed = true
			return 0, err
		}
	}
	return len(payload), nil
}

func (t *trackWriter) writeSample(data []byte, ts uint32, at time.Time) error {
	if len(data) == 0 {
		return nil
	}
	var key bool
	if t.h264 {
		fr := toAVC(nil, data)
		if len(fr.data) == 0 {
			return nil
		}
		data, key = fr.data, fr.key
		if !t.started {
			if fr.sps != nil {
				t.sps = append(t.sps[:0], fr.sps...)
			}
			if fr.pps != nil {
				t.pps = append(t.pps[:0], fr.pps...)
			}
			if !key {
				return nil
			}
			private, err := avcConfig(t.sps, t.pps)
			if err != nil {
				return nil // a decoder cannot start without them: wait for a keyframe that has them
			}
			t.f.setPrivate(t.index, private)
		}
	} else {
		key = !t.video || isKeyframe(data, t.vp9)
	}
	if !t.started {
		if !key {
			return nil // a decoder starts on a keyframe; so does the file
		}
		t.started = true
		t.base = max(0, at.Sub(t.f.start).Milliseconds())
		t.first, t.last = ts, ts
	} else if int32(ts-t.last) <= 0 {
		// A frame again, or an older one: the same packets can reach the
		// sample builder twice (held by an early tap and delivered live,
		// or retransmitted after their frame was built), and a muxer
		// refuses time that does not move forward (ffmpeg: "non
		// monotonically increasing dts", seen on a busy machine).
		return nil
	}
	t.ext += int64(int32(ts - t.last)) // wrap-safe step
	t.last = ts
	ms := t.base + t.ext*1000/t.clock
	return t.f.block(t.index, key, ms, data)
}

// isKeyframe reads the frame type from a VP8 frame tag or a VP9
// uncompressed header.
func isKeyframe(b []byte, vp9 bool) bool {
	if len(b) == 0 {
		return false
	}
	if vp9 {
		// frame_marker(2) profile(2) show_existing_frame(1) frame_type(1)
		return b[0]&0x08 == 0 && b[0]&0x04 == 0
	}
	return b[0]&0x01 == 0
}

func (t *trackWriter) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	t.f.endTrack(t.index)
}
