package rtpx

import "testing"

func TestVP8DescriptorIsRenumberedInPlace(t *testing.T) {
	// X, I with M (15-bit id 0x1234), L (TL0PICIDX 9), T (TID byte), then
	// the payload's first byte.
	p := []byte{0x90, 0xe0, 0x80 | 0x12, 0x34, 9, 0x40, 0xaa}
	var d Picture
	if !ParseVP8(p, &d) {
		t.Fatal("not parsed")
	}
	if d.PictureID != 0x1234 || d.PictureBits != 15 || d.TL0PicIdx != 9 || d.HeaderLength != 6 {
		t.Fatalf("parsed %+v", d)
	}
	SetPicture(p, &d, 0x7fff, 200)
	var e Picture
	if !ParseVP8(p, &e) || e.PictureID != 0x7fff || e.TL0PicIdx != 200 || p[6] != 0xaa || p[5] != 0x40 {
		t.Fatalf("after renumbering %x: %+v", p, e)
	}

	// A 7-bit picture id stays 7 bits.
	q := []byte{0x90, 0x80, 0x05, 0xbb}
	if !ParseVP8(q, &d) || d.PictureBits != 7 || d.PictureID != 5 || d.PictureMask() != 0x7f {
		t.Fatalf("7-bit: %+v", d)
	}
	SetPicture(q, &d, 0x1ff, 0)
	if q[2] != 0x7f || q[3] != 0xbb {
		t.Fatalf("7-bit renumbered: %x", q)
	}

	// No extension: nothing to renumber.
	if !ParseVP8([]byte{0x10, 1}, &d) || d.PictureAt != -1 || d.TL0At != -1 || d.HeaderLength != 1 {
		t.Fatalf("plain: %+v", d)
	}
	for _, bad := range [][]byte{{}, {0x80}, {0x80, 0x80}, {0x80, 0x80, 0x80}, {0x80, 0x40}, {0x80, 0x20}} {
		if ParseVP8(bad, &d) {
			t.Errorf("%x parsed", bad)
		}
	}
}

// FuzzParseVP8: any payload parses or not without a panic, and what
// parses renumbers within its bounds.
func FuzzParseVP8(f *testing.F) {
	f.Add([]byte{0x90, 0xe0, 0x92, 0x34, 9, 0x40, 0xaa})
	f.Add([]byte{0x90, 0x80, 0x05})
	f.Add([]byte{0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Picture
		if !ParseVP8(b, &d) {
			return
		}
		if d.HeaderLength > len(b) {
			t.Fatalf("header %d past %d bytes", d.HeaderLength, len(b))
		}
		SetPicture(b, &d, 0xffff, 0xff)
	})
}
