package rtpx

import (
	"bytes"
	"testing"
)

// red builds a RED payload of pt blocks: redundant ones, then primary.
func red(pt uint8, primary []byte, redundant ...[]byte) []byte {
	var out []byte
	for _, r := range redundant {
		out = append(out, 0x80|pt, 0x03, 0xc0|byte(len(r)>>8), byte(len(r)))
	}
	out = append(out, pt)
	for _, r := range redundant {
		out = append(out, r...)
	}
	return append(out, primary...)
}

func TestREDPrimary(t *testing.T) {
	prim := []byte{0xfc, 1, 2, 3}
	for _, c := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"primary alone", red(111, prim), prim},
		{"one redundant", red(111, prim, []byte{0xfc, 9, 9}), prim},
		{"two redundant", red(111, prim, []byte{0xfc, 7}, bytes.Repeat([]byte{5}, 300)), prim},
		{"empty primary", red(111, nil, []byte{0xfc}), []byte{}},
	} {
		start, ok := REDPrimary(c.in)
		if !ok || !bytes.Equal(c.in[start:], c.want) {
			t.Errorf("%s: start %d ok %v", c.name, start, ok)
		}
	}
	for _, bad := range [][]byte{
		nil,
		{0x80 | 111, 0, 0},               // a redundant header cut short
		{0x80 | 111, 0, 0x00, 0x10, 111}, // a redundant block longer than the packet
		bytes.Repeat([]byte{0xff, 0, 0, 0}, 40),
	} {
		if _, ok := REDPrimary(bad); ok {
			t.Errorf("accepted % x", bad)
		}
	}
}

func TestSetREDBlockTypes(t *testing.T) {
	p := red(111, []byte{1, 2}, []byte{3}, []byte{4, 5})
	if !SetREDBlockTypes(p, 109) {
		t.Fatal("refused")
	}
	if p[0] != 0x80|109 || p[4] != 0x80|109 || p[8] != 109 {
		t.Fatalf("headers % x", p[:9])
	}
	if start, ok := REDPrimary(p); !ok || !bytes.Equal(p[start:], []byte{1, 2}) {
		t.Fatal("the blocks moved")
	}
	bad := []byte{0x80 | 111, 0, 0x00, 0x10, 111}
	if SetREDBlockTypes(bad, 109) || bad[0] != 0x80|111 {
		t.Fatal("changed a malformed payload")
	}
}

func TestREDDoesNotAllocate(t *testing.T) {
	p := red(111, []byte{1, 2}, []byte{3})
	if n := testing.AllocsPerRun(100, func() {
		REDPrimary(p)
		SetREDBlockTypes(p, 111)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// FuzzREDPrimary: any payload parses or not without a panic, a primary
// found lies inside it, and renaming the blocks keeps it where it was.
func FuzzREDPrimary(f *testing.F) {
	f.Add(red(111, []byte{1, 2, 3}, []byte{4, 5}))
	f.Add([]byte{0x80, 0, 3, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		start, ok := REDPrimary(b)
		if !ok {
			if SetREDBlockTypes(b, 1) {
				t.Fatal("renamed a payload that does not parse")
			}
			return
		}
		if start < 1 || start > len(b) {
			t.Fatalf("primary at %d of %d", start, len(b))
		}
		if !SetREDBlockTypes(b, 99) {
			t.Fatal("refused a payload that parses")
		}
		if again, ok := REDPrimary(b); !ok || again != start {
			t.Fatalf("primary moved from %d to %d", start, again)
		}
	})
}
