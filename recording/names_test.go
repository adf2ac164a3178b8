package recording

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileNamesAreSanitised(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct{ room, who string }{
		{"room", "../../etc/passwd"},
		{"..", "/absolute"},
		{"room", "a\x00b\nc"},
		{"émoji😀", "Dr. Ünïcode"},
		{"", ""},
		{strings.Repeat("r", 500), strings.Repeat("w", 500)},
	} {
		p, err := fileName(dir, c.room, c.who, at, 2, ".webm")
		if err != nil {
			t.Fatalf("%q/%q: %v", c.room, c.who, err)
		}
		if filepath.Dir(p) != dir {
			t.Fatalf("%q/%q escaped: %s", c.room, c.who, p)
		}
		base := filepath.Base(p)
		if strings.ContainsAny(base, "/\\\x00\n ") || strings.Contains(base, "..") || len(base) > 200 {
			t.Fatalf("unsafe name %q", base)
		}
		if !strings.HasSuffix(base, "_part2.webm") {
			t.Fatalf("name %q", base)
		}
	}
}

func FuzzSafe(f *testing.F) {
	f.Add("../x")
	f.Fuzz(func(t *testing.T, s string) {
		out := safe(s, 64)
		if out == "" || len(out) > 64 || strings.ContainsAny(out, "/.\\\x00") {
			t.Fatalf("safe(%q) = %q", s, out)
		}
	})
}
