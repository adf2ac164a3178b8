package signaling_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"consult/protocol"
)

// Tracks that come and go quickly must leave neither side stuck: the
// server folds changes made during an outstanding offer into the next one.
func TestTrackChurnDoesNotWedgeNegotiation(t *testing.T) {
	e := startServer(t, nil)
	a, _ := e.join(t, "churn", "A", true)
	b, _ := e.join(t, "churn", "B", true)
	ctx := ctxT(t, 20*time.Second)
	for i := 0; i < 6; i++ {
		tr, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, fmt.Sprint("t", i), "s")
		senders, err := a.Publish(ctx, tr)
		if err != nil {
			t.Fatal(err)
		}
		// A few packets make the server start the track (and offer it to B).
		for seq := uint16(0); seq < 5; seq++ {
			_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0xfc, 1}})
		}
		if i%2 == 0 {
			if err := a.Unpublish(ctx, senders[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// After the churn a new publisher's media still reaches B.
	startPublisher(t, a)
	awaitMedia(t, b, a.ID())
	waitUntil(t, "B's receiving connection to settle", 10*time.Second, func() bool {
		pc := b.SubscribePC()
		return pc != nil && pc.SignalingState() == webrtc.SignalingStateStable
	})
	if st := e.sfu.Stats(); st.Tracks < 2 {
		t.Fatalf("expected the kept tracks and the publisher's, got %+v", st)
	}
	b.await(protocol.TypeTrackUnpublished, nil) // the churned tracks did come and go
}
