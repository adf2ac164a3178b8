package rtpx

import (
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

func TestAudioLevelURIIsPions(t *testing.T) {
	if AudioLevelURI != sdp.AudioLevelURI {
		t.Fatalf("%q, pion says %q", AudioLevelURI, sdp.AudioLevelURI)
	}
}

// levelPacket is an Opus-like packet with the given extensions (id →
// data) in profile, marshalled by pion.
func levelPacket(t *testing.T, profile uint16, csrc int, ext map[uint8][]byte, order ...uint8) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 7, Timestamp: 960, SSRC: 5},
		Payload: []byte{0xfc, 1, 2}}
	for i := 0; i < csrc; i++ {
		p.CSRC = append(p.CSRC, uint32(100+i))
	}
	if len(ext) > 0 {
		p.Extension, p.ExtensionProfile = true, profile
		for _, id := range order {
			if err := p.SetExtension(id, ext[id]); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAudioLevelReadsWhatPionWrote(t *testing.T) {
	cases := []struct {
		name    string
		profile uint16
		csrc    int
		ext     map[uint8][]byte
		order   []uint8
		id      uint8
		level   uint8
		voice   bool
		ok      bool
	}{
		{"one-byte alone", rtp.ExtensionProfileOneByte, 0, map[uint8][]byte{1: {0x80 | 30}}, []uint8{1}, 1, 30, true, true},
		{"one-byte after others", rtp.ExtensionProfileOneByte, 0,
			map[uint8][]byte{3: {1, 2, 3}, 5: {9, 9}, 14: {127}}, []uint8{3, 5, 14}, 14, 127, false, true},
		{"one-byte with CSRCs", rtp.ExtensionProfileOneByte, 3, map[uint8][]byte{2: {0}}, []uint8{2}, 2, 0, false, true},
		{"two-byte", rtp.ExtensionProfileTwoByte, 1,
			map[uint8][]byte{200: make([]byte, 20), 17: {0x80 | 127}}, []uint8{200, 17}, 17, 127, true, true},
		{"another id", rtp.ExtensionProfileOneByte, 0, map[uint8][]byte{1: {40}}, []uint8{1}, 2, 0, false, false},
		{"not negotiated", rtp.ExtensionProfileOneByte, 0, map[uint8][]byte{1: {40}}, []uint8{1}, 0, 0, false, false},
		{"no extension", rtp.ExtensionProfileOneByte, 2, nil, nil, 1, 0, false, false},
		{"two-byte empty element", rtp.ExtensionProfileTwoByte, 0, map[uint8][]byte{4: {}}, []uint8{4}, 4, 0, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := levelPacket(t, c.profile, c.csrc, c.ext, c.order...)
			level, voice, ok := AudioLevel(b, c.id)
			if level != c.level || voice != c.voice || ok != c.ok {
				t.Fatalf("got level %d voice %v ok %v, want %d %v %v (% x)", level, voice, ok, c.level, c.voice, c.ok, b)
			}
		})
	}
}

func TestAudioLevelRefusesHostilePackets(t *testing.T) {
	hdr := []byte{0x90, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}
	with := func(tail ...byte) []byte { return append(append([]byte(nil), hdr...), tail...) }
	for name, b := range map[string][]byte{
		"empty":                nil,
		"short":                hdr[:11],
		"version 1":            append([]byte{0x50}, hdr[1:]...),
		"no room for profile":  with(0xbe, 0xde),
		"length past the end":  with(0xbe, 0xde, 0, 2, 0x10, 40, 0, 0),
		"CSRCs past the end":   append([]byte{0x9f}, with(0xbe, 0xde, 0, 1, 0x10, 40, 0, 0)[1:]...),
		"element past block":   with(0xbe, 0xde, 0, 1, 0, 0, 0, 0x1f),
		"reserved id 15 first": with(0xbe, 0xde, 0, 1, 0xf0, 0x10, 40, 0),
		"two-byte no length":   with(0x10, 0x00, 0, 1, 0, 0, 0, 1),
		"two-byte overrun":     with(0x10, 0x00, 0, 1, 1, 9, 40, 0),
		"unknown profile":      with(0x12, 0x34, 0, 1, 0x10, 40, 0, 0),
		"padding only":         with(0xbe, 0xde, 0, 1, 0, 0, 0, 0),
	} {
		if level, _, ok := AudioLevel(b, 1); ok {
			t.Errorf("%s: found level %d in % x", name, level, b)
		}
	}
	// The same block, well formed, is read (so the cases above fail for
	// the reason they name).
	if level, voice, ok := AudioLevel(with(0xbe, 0xde, 0, 1, 0, 0x10, 0x80|40, 0), 1); !ok || level != 40 || !voice {
		t.Fatalf("well-formed block: %d %v %v", level, voice, ok)
	}
	if level, _, ok := AudioLevel(with(0x10, 0x0f, 0, 1, 0, 1, 1, 40), 1); !ok || level != 40 {
		t.Fatalf("two-byte block with app bits: %d %v", level, ok)
	}
}

func TestAudioLevelDoesNotAllocate(t *testing.T) {
	b := levelPacket(t, rtp.ExtensionProfileOneByte, 0, map[uint8][]byte{3: {1, 2}, 1: {20}}, 3, 1)
	if n := testing.AllocsPerRun(100, func() { AudioLevel(b, 1) }); n != 0 {
		t.Fatalf("%.1f allocations per packet", n)
	}
}

// FuzzAudioLevel feeds the parser arbitrary packets: it must never read
// out of bounds, and where pion parses a packet in a profile both know,
// both must find the same level.
func FuzzAudioLevel(f *testing.F) {
	f.Add([]byte{0x90, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0x80 | 30, 0, 0}, uint8(1))
	f.Add([]byte{0x91, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0x10, 0x00, 0, 1, 7, 1, 50, 0}, uint8(7))
	f.Add([]byte{0x90, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 9}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, id uint8) {
		level, _, ok := AudioLevel(b, id)
		if ok && level > 127 {
			t.Fatalf("level %d", level)
		}
		var p rtp.Header
		if len(b) < 12 || b[0]>>6 != 2 || id == 0 {
			return
		}
		if _, err := p.Unmarshal(b); err != nil || !p.Extension {
			return
		}
		if p.ExtensionProfile != rtp.ExtensionProfileOneByte && p.ExtensionProfile != rtp.ExtensionProfileTwoByte {
			return
		}
		want := p.GetExtension(id)
		if len(want) == 0 {
			if ok {
				t.Fatalf("found level %d where pion finds none: % x", level, b)
			}
			return
		}
		if !ok || level != want[0]&0x7f {
			t.Fatalf("level %d ok %v, pion finds % x: % x", level, ok, want, b)
		}
	})
}
