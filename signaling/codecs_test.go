package signaling

import (
	"testing"

	"consult/protocol"
)

func TestChooseVideoCodec(t *testing.T) {
	silent := capsOf(nil) // said nothing: VP8 and H.264
	all := capsOf(&protocol.VideoCodecs{Decode: []string{"video/VP8", "video/VP9", "video/H264", "video/rtx"},
		Encode: []string{"video/VP8", "video/VP9", "video/H264"}})
	h264 := capsOf(&protocol.VideoCodecs{Decode: []string{"video/H264"}, Encode: []string{"video/h264"}})
	vp9 := capsOf(&protocol.VideoCodecs{Decode: []string{"video/VP9"}, Encode: []string{"video/VP9"}})
	viewer := capsOf(&protocol.VideoCodecs{Decode: []string{"video/VP9", "video/H264"}, Encode: []string{}})
	av1 := capsOf(&protocol.VideoCodecs{Decode: []string{"video/AV1"}, Encode: []string{"video/AV1"}})
	cases := []struct {
		name                string
		decoders, publisher []codecCaps
		want                string
		common              bool
	}{
		{"nobody", nil, nil, "video/VP8", true},
		{"everyone has VP8", []codecCaps{silent, all}, []codecCaps{silent, all}, "video/VP8", true},
		{"a phone with H.264 alone", []codecCaps{silent, all, h264}, []codecCaps{silent, all, h264}, "video/H264", true},
		{"a viewer that encodes nothing constrains decoding only", []codecCaps{all, viewer}, []codecCaps{all, viewer}, "video/H264", true},
		{"VP9 when nothing else is common", []codecCaps{all, vp9}, []codecCaps{all, vp9}, "video/VP9", true},
		{"a silent member cannot decode VP9", []codecCaps{silent, vp9}, []codecCaps{silent, vp9}, "video/VP8", false},
		{"nothing the server forwards", []codecCaps{all, av1}, []codecCaps{all}, "video/VP8", false},
		{"a publisher must encode it", []codecCaps{all, all}, []codecCaps{all, h264}, "video/H264", true},
	}
	for _, c := range cases {
		got, common := chooseVideoCodec(c.decoders, c.publisher)
		if got != c.want || common != c.common {
			t.Errorf("%s: got %s (common %v), want %s (%v)", c.name, got, common, c.want, c.common)
		}
	}
}
