package recording

import (
	"strings"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"consult/sfu"
)

// trackWriter turns one tapped RTP stream into WebM blocks. The sample
// builder reorders packets and drops frames with holes, so a lost packet
// costs a frame, never a corrupt one. Timestamps come from RTP, anchored
// to the wall clock at the track's first frame, which keeps audio and
// video of one participant in step.
type trackWriter struct {
	f     *file
	index int // in f.tracks
	info  sfu.TrackInfo
	clock int64
	out   webm.BlockWriteCloser
	sb    *samplebuilder.SampleBuilder
	video bool
	vp9   bool

	mu      sync.Mutex
	started bool
	base    int64  // ms from the file's start to the first frame
	first   uint32 // RTP timestamp of the first frame
	ext     int64  // unwrapped RTP timestamp offset
	last    uint32
	closed  bool
}

func newTrackWriter(f *file, index int, info sfu.TrackInfo, out webm.BlockWriteCloser) *trackWriter {
	var dep rtp.Depacketizer = &codecs.OpusPacket{}
	maxLate, clock := uint16(32), int64(48000)
	video := info.Kind == "video"
	vp9 := strings.EqualFold(info.Codec, webrtc.MimeTypeVP9)
	if video {
		maxLate, clock = 256, 90000
		dep = &codecs.VP8Packet{}
		if vp9 {
			dep = &codecs.VP9Packet{}
		}
	}
	return &trackWriter{f: f, index: index, info: info, out: out, video: video, vp9: vp9, clock: clock,
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
	key := !t.video || isKeyframe(data, t.vp9)
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
	_, err := t.out.Write(key, ms, data)
	t.f.wrote(t.index, len(data), ms)
	return err
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
	_ = t.out.Close()
}
