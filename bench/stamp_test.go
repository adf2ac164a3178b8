package main

import (
	"bytes"
	"testing"
	"time"
)

func TestStampRoundTripsAtTheEndOfAPayload(t *testing.T) {
	body := []byte{0x90, 0x80, 0x12, 0x34, 0x10, 0x02, 0x00} // a VP8 descriptor and frame tag
	want := Stamp{Index: 3, Count: 7, Layer: 2, Sent: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano(), Counter: 0xdeadbeef}
	p := AppendStamp(append([]byte(nil), body...), want)
	if len(p) != len(body)+StampLen || !bytes.Equal(p[:len(body)], body) {
		t.Fatalf("stamp changed the payload before it: % x", p)
	}
	got, ok := ReadStamp(p)
	if !ok || got != want {
		t.Fatalf("got %+v %v, want %+v", got, ok, want)
	}
	if !got.SentTime().Equal(time.Unix(0, want.Sent)) {
		t.Fatal("SentTime")
	}
}

func TestReadStampRejectsForeignPayloads(t *testing.T) {
	for name, p := range map[string][]byte{
		"empty":     nil,
		"short":     make([]byte, StampLen-1),
		"no magic":  make([]byte, 64),
		"truncated": AppendStamp(nil, Stamp{Counter: 1})[1:],
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := ReadStamp(p); ok {
				t.Fatal("accepted")
			}
		})
	}
}

func TestRTPPayloadSkipsHeaderCSRCsExtensionAndPadding(t *testing.T) {
	pkt := []byte{
		0xb1, 0x60, 0x00, 0x01, // V=2 P=1 X=1 CC=1, PT 96, seq 1
		0x00, 0x00, 0x03, 0xe8, // timestamp 1000
		0x00, 0x00, 0x00, 0x09, // SSRC
		0x00, 0x00, 0x00, 0x0a, // CSRC
		0xbe, 0xde, 0x00, 0x01, 0x10, 0xff, 0x00, 0x00, // one-byte extension, one word
		0xaa, 0xbb, 0xcc, // payload
		0x00, 0x02, // padding, its length last
	}
	payload, ts, ok := rtpPayload(pkt)
	if !ok || ts != 1000 || !bytes.Equal(payload, []byte{0xaa, 0xbb, 0xcc}) {
		t.Fatalf("got % x ts %d ok %v", payload, ts, ok)
	}
	for _, bad := range [][]byte{pkt[:11], {0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, pkt[:18]} {
		if _, _, ok := rtpPayload(bad); ok {
			t.Fatalf("accepted % x", bad)
		}
	}
}

// Received packets are parsed straight off the network.
func FuzzRTPPayloadAndStamp(f *testing.F) {
	f.Add(AppendStamp([]byte{0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0x10}, Stamp{Count: 1, Layer: 2}))
	f.Add([]byte{0xb1, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		payload, _, ok := rtpPayload(b)
		if !ok {
			return
		}
		if len(payload) > len(b)-12 {
			t.Fatalf("payload of %d bytes from a %d-byte packet", len(payload), len(b))
		}
		_, _ = ReadStamp(payload)
		_ = isVP8KeyframeStart(payload)
	})
}
