package signaling_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/protocol"
)

// Tracks that come and go quickly must leave neither side stuck: the
// server folds changes made during an outstanding offer into the next one.
func TestTrackChurnDoesNotWedgeNegotiation(t *testing.T) {
	e := startServer(t, nil)
	a, _ := e.join(t, "churn", "A", true)
	b, _ := e.join(t, "churn", "B", true)
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 6; i++ {
		id := fmt.Sprint("t", i)
		tr, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, id, "s")
		senders, err := a.Publish(ctx, tr)
		if err != nil {
			t.Fatal(err)
		}
		// Send until the server has started the track and told B.
		for seq := uint16(0); ; seq++ {
			_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0xfc, 1}})
			wait, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			_, err := b.AwaitMatch(wait, func(ev client.Event) bool {
				var te protocol.TrackEvent
				return ev.Type == protocol.TypeTrackPublished && ev.Decode(&te) == nil && te.Track.ID == a.ID()+":"+id
			})
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("track %s never started", id)
			}
		}
		if i%2 == 0 { // and half of them go away again at once
			if err := a.Unpublish(ctx, senders[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 3; i++ {
		b.await(protocol.TypeTrackUnpublished, nil)
	}
	// After the churn a new publisher's media still reaches B, and B's
	// receiving connection settles.
	startPublisher(t, a)
	awaitMedia(t, b, a.ID())
	waitUntil(t, "B's receiving connection to settle", 10*time.Second, func() bool {
		pc := b.SubscribePC()
		return pc != nil && pc.SignalingState() == webrtc.SignalingStateStable
	})
	if st := e.sfu.Stats(); st.Tracks != 5 { // t1, t3, t5, mic, cam
		t.Fatalf("server holds %d tracks, want 5", st.Tracks)
	}
}
