package signaling_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
)

// awaitCodec waits for a codec message naming want.
func (p *peer) awaitCodec(want string) {
	p.t.Helper()
	_, err := p.AwaitMatch(ctxT(p.t, 5*time.Second), func(e client.Event) bool {
		var c protocol.Codec
		return e.Type == protocol.TypeCodec && e.Decode(&c) == nil && c.Video == want
	})
	if err != nil {
		p.t.Fatalf("waiting for codec %s: %v", want, err)
	}
}

// The room's video codec follows what its live members can decode: VP8
// while everyone has it, H.264 while a member that decodes nothing else
// is in the call (every member is told, and the doctor's VP8 camera does
// not get the phone refused its track), VP8 again once it leaves. A join
// with a codec list that is not one is refused for that client alone.
func TestRoomVideoCodecFollowsWhatMembersDecode(t *testing.T) {
	e := startServer(t, nil)
	doctor, j := e.join(t, "codecs", "Dr", true)
	if j.VideoCodec != "video/VP8" {
		t.Fatalf("joined says %q, want video/VP8", j.VideoCodec)
	}
	startPublisher(t, doctor)
	family := e.dial(t)
	if j, err := family.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "codecs", Name: "Fam", Live: true,
		Video: client.VideoCodecs(webrtc.MimeTypeVP8, webrtc.MimeTypeH264, webrtc.MimeTypeVP9)}); err != nil || j.VideoCodec != "video/VP8" {
		t.Fatalf("family joined: %+v, %v", j, err)
	}

	bad := e.dial(t)
	_, err := bad.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "codecs", Name: "X", Live: true,
		Video: &protocol.VideoCodecs{Decode: []string{"H264\r\n"}}})
	if se, ok := err.(*client.ServerError); !ok || se.Code != protocol.ErrBadRequest {
		t.Fatalf("a join with a bad codec list: %v, want an invalid error", err)
	}

	subscribed := make(chan struct{})
	var once sync.Once
	phone := e.dialWith(t, nil, func(c *client.Config) {
		api, err := client.VideoAPI(testSettingEngine(), webrtc.MimeTypeH264)
		if err != nil {
			t.Fatal(err)
		}
		c.API = api
		c.OnConnectionState = func(pc string, s webrtc.PeerConnectionState) {
			if pc == "subscribe" && s == webrtc.PeerConnectionStateConnected {
				once.Do(func() { close(subscribed) })
			}
		}
	})
	j, err = phone.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "codecs", Name: "Pat", Live: true,
		Video: client.VideoCodecs(webrtc.MimeTypeH264)})
	if err != nil || j.VideoCodec != "video/H264" {
		t.Fatalf("phone joined: %+v, %v", j, err)
	}
	doctor.awaitCodec("video/H264")
	family.awaitCodec("video/H264")
	// The phone takes the doctor's camera although it is VP8 for now:
	// its answer to the server's offer is taken, and the connection
	// that will carry the camera comes up.
	select {
	case <-subscribed:
	case <-testenv.After(10 * time.Second):
		t.Fatal("the phone's subscribe connection did not come up")
	}
	family.awaitTrackKind(t, webrtc.RTPCodecTypeVideo)
	if phone.said(`"type":"error"`) {
		t.Fatal("the phone got an error")
	}

	if err := phone.Leave(); err != nil {
		t.Fatal(err)
	}
	doctor.awaitCodec("video/VP8")
	family.awaitCodec("video/VP8")
}
