package rtpx

import (
	"testing"

	"github.com/pion/rtp"
)

func TestParseMatchesPion(t *testing.T) {
	cases := []struct {
		name string
		pkt  rtp.Packet
	}{
		{"plain", rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 65535, Timestamp: 1234, SSRC: 42, Marker: true}, Payload: []byte{1, 2, 3}}},
		{"csrc", rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 7, CSRC: []uint32{1, 2}, SSRC: 9}, Payload: []byte{9}}},
		{"extension", withExtension(rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 100}, Payload: []byte{4, 5}})},
		{"padding", rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 4}, Payload: []byte{7, 7}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.pkt.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var h Header
			if err := Parse(b, &h); err != nil {
				t.Fatal(err)
			}
			if h.Sequence != c.pkt.SequenceNumber || h.Timestamp != c.pkt.Timestamp || h.SSRC != c.pkt.SSRC ||
				h.PayloadType != c.pkt.PayloadType || h.Marker != c.pkt.Marker {
				t.Fatalf("header mismatch: %+v vs %+v", h, c.pkt.Header)
			}
			if got := string(b[h.PayloadStart:h.PayloadEnd]); got != string(c.pkt.Payload) {
				t.Fatalf("payload %v, want %v", []byte(got), c.pkt.Payload)
			}
		})
	}
}

func withExtension(p rtp.Packet) rtp.Packet {
	if err := p.SetExtension(1, []byte{1, 2, 3}); err != nil {
		panic(err)
	}
	return p
}

func TestParseRejectsMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        make([]byte, 11),
		"version 1":    append([]byte{0x40}, make([]byte, 11)...),
		"csrc overrun": append([]byte{0x8f}, make([]byte, 11)...),
		"ext overrun":  append([]byte{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 9}, make([]byte, 4)...),
		"zero padding": append([]byte{0xa0}, make([]byte, 12)...),
		"big padding":  append([]byte{0xa0}, append(make([]byte, 11), 200)...),
	} {
		var h Header
		if err := Parse(b, &h); err == nil {
			t.Errorf("%s: accepted %x", name, b)
		}
	}
}

func TestSeqLessWraps(t *testing.T) {
	if !SeqLess(65535, 0) || SeqLess(0, 65535) || SeqLess(5, 5) || !SeqLess(1, 2) {
		t.Fatal("serial arithmetic wrong")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff})
	f.Add([]byte{0xb1, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		if Parse(b, &h) != nil {
			return
		}
		if h.PayloadStart > h.PayloadEnd || h.PayloadEnd > len(b) {
			t.Fatalf("bounds out of range: %+v len %d", h, len(b))
		}
	})
}
