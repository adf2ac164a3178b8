package recording

import (
	"bytes"
	"testing"
)

func TestToAVCReframesAnnexB(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00, 0x21}
	var in []byte
	in = append(append(in, 0, 0, 0, 1), sps...)
	in = append(append(in, 0, 0, 1), pps...)
	in = append(append(in, 0, 0, 0, 1), idr...)
	in = append(in, 0, 0) // trailing zero bytes
	f := toAVC(nil, in)
	if !f.key || !bytes.Equal(f.sps, sps) || !bytes.Equal(f.pps, pps) {
		t.Fatalf("frame %+v", f)
	}
	var want []byte
	for _, nal := range [][]byte{sps, pps, idr} {
		want = append(want, 0, 0, 0, byte(len(nal)))
		want = append(want, nal...)
	}
	if !bytes.Equal(f.data, want) {
		t.Fatalf("data %x, want %x", f.data, want)
	}
	if p := toAVC(nil, []byte{0, 0, 1, 0x41, 0x9a}); p.key || p.sps != nil || len(p.data) != 6 {
		t.Fatalf("a P slice read as %+v", p)
	}
	c, err := avcConfig(sps, pps)
	if err != nil {
		t.Fatal(err)
	}
	wantC := append(append([]byte{1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 5}, sps...), append([]byte{1, 0, 4}, pps...)...)
	if !bytes.Equal(c, wantC) {
		t.Fatalf("avcC %x, want %x", c, wantC)
	}
	if _, err := avcConfig(sps[:2], pps); err == nil {
		t.Fatal("a short SPS was taken")
	}
}

// FuzzToAVC: frames come from publishers; any bytes are re-framed
// without a panic, each unit length-prefixed and never empty.
func FuzzToAVC(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88})
	f.Add([]byte{0, 0, 1})
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{0x41})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := toAVC(nil, b)
		for d := fr.data; len(d) > 0; {
			if len(d) < 5 {
				t.Fatalf("truncated unit in %x", fr.data)
			}
			n := int(d[0])<<24 | int(d[1])<<16 | int(d[2])<<8 | int(d[3])
			if n == 0 || n > len(d)-4 {
				t.Fatalf("bad length %d in %x", n, fr.data)
			}
			d = d[4+n:]
		}
		if fr.sps != nil && fr.pps != nil {
			_, _ = avcConfig(fr.sps, fr.pps)
		}
	})
}
