package keyframe

import (
	"bytes"
	"testing"

	"github.com/pion/rtp/codecs"
)

func TestIsStart(t *testing.T) {
	cases := []struct {
		name  string
		codec Codec
		b     []byte
		want  bool
	}{
		{"vp8 key, no extension", VP8, []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}, true},
		{"vp8 delta", VP8, []byte{0x10, 0x01}, false},
		{"vp8 continuation", VP8, []byte{0x00, 0x00}, false},
		{"vp8 other partition", VP8, []byte{0x11, 0x00}, false},
		{"vp8 key, 15-bit picture id", VP8, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"vp8 key, all extensions", VP8, []byte{0x90, 0xf0, 0x05, 0x01, 0x20, 0x00}, true},
		{"vp8 truncated", VP8, []byte{0x90, 0x80}, false},
		{"vp9 key", VP9, []byte{0x88, 0x01, 0x00}, true},
		{"vp9 key, layer sid 0", VP9, []byte{0xa8, 0x01, 0x00, 0x00}, true},
		{"vp9 key, upper layer", VP9, []byte{0xa8, 0x01, 0x02, 0x00}, false},
		{"vp9 inter", VP9, []byte{0xc8, 0x01}, false},
		{"vp9 not begin", VP9, []byte{0x80, 0x01}, false},
		{"h264 idr", H264, []byte{0x65, 0x88}, true},
		{"h264 sps", H264, []byte{0x67, 0x42}, true},
		{"h264 slice", H264, []byte{0x41, 0x9a}, false},
		{"h264 stap-a sps", H264, []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true},
		{"h264 stap-a broken", H264, []byte{0x78, 0x00, 0x09, 0x67}, false},
		{"h264 fu-a idr start", H264, []byte{0x7c, 0x85, 0x00}, true},
		{"h264 fu-a idr middle", H264, []byte{0x7c, 0x05, 0x00}, false},
		{"unknown codec", Unknown, []byte{0x10, 0x00}, false},
		{"empty", VP8, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsStart(c.codec, c.b); got != c.want {
				t.Fatalf("IsStart = %v, want %v", got, c.want)
			}
		})
	}
}

// TestVP8PayloaderKeyframe checks the detector against pion's own VP8
// payloader, which is what our Go clients and tests send.
func TestVP8PayloaderKeyframe(t *testing.T) {
	p := &codecs.VP8Payloader{EnablePictureID: true}
	key := append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, make([]byte, 3000)...)
	pkts := p.Payload(1200, key)
	if !IsStart(VP8, pkts[0]) {
		t.Fatal("first packet of a keyframe not detected")
	}
	for _, pk := range pkts[1:] {
		if IsStart(VP8, pk) {
			t.Fatal("continuation packet taken for a keyframe start")
		}
	}
	delta := append([]byte{0x11}, make([]byte, 100)...)
	if IsStart(VP8, p.Payload(1200, delta)[0]) {
		t.Fatal("delta frame taken for a keyframe")
	}
}

func FuzzIsStart(f *testing.F) {
	f.Add(uint8(VP8), []byte{0x90, 0x80, 0x81, 0x23, 0x00})
	f.Add(uint8(VP9), []byte{0xa8, 0x01, 0x00, 0x00})
	f.Add(uint8(H264), []byte{0x78, 0x00, 0x02, 0x67, 0x42})
	f.Fuzz(func(t *testing.T, c uint8, b []byte) {
		IsStart(Codec(c%4), b) // must not panic on any input
	})
}

// TestVP8Size reads a keyframe's dimensions through pion's payloader,
// and nothing from a delta frame, a continuation or a short packet.
func TestVP8Size(t *testing.T) {
	p := &codecs.VP8Payloader{EnablePictureID: true}
	// 640x360 with a scaling code in the top bits, which are not size.
	key := append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0x81}, make([]byte, 3000)...)
	pkts := p.Payload(1200, key)
	if w, h, ok := VP8Size(pkts[0]); !ok || w != 640 || h != 360 {
		t.Fatalf("VP8Size = %d, %d, %v; want 640, 360", w, h, ok)
	}
	if _, _, ok := VP8Size(pkts[1]); ok {
		t.Fatal("a continuation packet has no size")
	}
	delta := append([]byte{0x11, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01}, make([]byte, 100)...)
	if _, _, ok := VP8Size(p.Payload(1200, delta)[0]); ok {
		t.Fatal("a delta frame has no size")
	}
	if _, _, ok := VP8Size(pkts[0][:8]); ok {
		t.Fatal("a cut keyframe has no size")
	}
	bad := append([]byte(nil), pkts[0]...)
	bad[bytes.IndexByte(bad, 0x9d)] = 0 // the start code broken
	if _, _, ok := VP8Size(bad); ok {
		t.Fatal("a keyframe without its start code has no size")
	}
}

func FuzzVP8Size(f *testing.F) {
	f.Add([]byte{0x90, 0x80, 0x81, 0x23, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, h, ok := VP8Size(b)
		if ok && (w <= 0 || h <= 0 || w > 0x3fff || h > 0x3fff) {
			t.Fatalf("size %dx%d out of range", w, h)
		}
		if ok != (ok && IsStart(VP8, b)) {
			t.Fatal("a size from a packet that starts no keyframe")
		}
	})
}
