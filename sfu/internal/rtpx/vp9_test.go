package rtpx

import "testing"

func TestVP9DescriptorIsRenumberedInPlace(t *testing.T) {
	// I (15-bit id 0x0abc), L (TID 1, SID 0), TL0PICIDX 77, B and E; then
	// a payload byte.
	p := []byte{0x80 | 0x20 | 0x08 | 0x04, 0x80 | 0x0a, 0xbc, 0x20, 77, 0xaa}
	var d Picture
	if !ParseVP9(p, &d) {
		t.Fatal("not parsed")
	}
	if d.PictureID != 0x0abc || d.PictureBits != 15 || d.PictureAt != 1 || d.TL0At != 4 || d.TL0PicIdx != 77 || d.HeaderLength != 5 {
		t.Fatalf("parsed %+v", d)
	}
	SetPicture(p, &d, 0x7ffe, 3)
	var e Picture
	if !ParseVP9(p, &e) || e.PictureID != 0x7ffe || e.TL0PicIdx != 3 || p[3] != 0x20 || p[5] != 0xaa {
		t.Fatalf("after renumbering %x: %+v", p, e)
	}

	// Flexible mode, predicted: a 7-bit id, a layer byte, no TL0PICIDX,
	// then two reference differences (the first with N set).
	q := []byte{0x80 | 0x40 | 0x20 | 0x10, 0x05, 0x00, 0x03, 0x02, 0xbb}
	if !ParseVP9(q, &d) || d.PictureBits != 7 || d.PictureID != 5 || d.TL0At != -1 || d.HeaderLength != 5 {
		t.Fatalf("flexible: %+v", d)
	}
	SetPicture(q, &d, 0x1ff, 9)
	if q[1] != 0x7f || q[2] != 0x00 || q[5] != 0xbb {
		t.Fatalf("flexible renumbered: %x", q)
	}

	// No picture id: nothing to renumber.
	if !ParseVP9([]byte{0x0c, 1}, &d) || d.PictureAt != -1 || d.TL0At != -1 || d.HeaderLength != 1 {
		t.Fatalf("plain: %+v", d)
	}
	for _, bad := range [][]byte{{}, {0x80}, {0x80, 0x80}, {0xa0, 0x05}, {0xa0, 0x05, 0x00}, {0xd0, 0x05, 0x01, 0x01, 0x01}, {0xd0, 0x05}} {
		if ParseVP9(bad, &d) {
			t.Errorf("%x parsed", bad)
		}
	}
}

// FuzzParseVP9: any payload parses or not without a panic, and what
// parses renumbers within its bounds.
func FuzzParseVP9(f *testing.F) {
	f.Add([]byte{0xac, 0x8a, 0xbc, 0x20, 77, 0xaa})
	f.Add([]byte{0xf0, 0x05, 0x00, 0x03, 0x02})
	f.Add([]byte{0x0c})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Picture
		if !ParseVP9(b, &d) {
			return
		}
		if d.HeaderLength > len(b) || d.PictureAt >= d.HeaderLength || d.TL0At >= d.HeaderLength {
			t.Fatalf("fields %+v past %d bytes", d, len(b))
		}
		SetPicture(b, &d, 0xffff, 0xff)
	})
}
