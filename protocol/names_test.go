package protocol

import (
	"strings"
	"testing"
)

func TestCleanNameStripsWhatWouldDisguiseAName(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"plain", "Dr Lee", "Dr Lee"},
		{"right-to-left override", "Dr \u202eeeL", "Dr eeL"},
		{"left-to-right and right-to-left marks", "\u200eDr\u200f Lee", "Dr Lee"},
		{"embedding and pop", "Dr \u202bLee\u202c", "Dr Lee"},
		{"isolates", "Dr \u2067Lee\u2069 \u2066x\u2069\u2068y\u2069", "Dr Lee xy"},
		{"arabic letter mark", "Dr\u061c Lee", "Dr Lee"},
		{"zero width space, joiner, non-joiner", "D\u200br\u200c \u200dLee", "Dr Lee"},
		{"word joiner and byte order mark", "\ufeffDr\u2060 Lee", "Dr Lee"},
		{"soft hyphen", "Dr Le\u00ade", "Dr Lee"},
		{"tag characters", "Dr Lee\U000e0041\U000e007f", "Dr Lee"},
		{"hangul filler as a fake space", "Dr\u3164Lee", "DrLee"},
		{"folded white space and controls", "  Dr\t\n Lee\u0007 ", "Dr Lee"},
		{"combining marks kept", "Zoë Ngũgĩ", "Zoë Ngũgĩ"},
		{"a pile of marks is cut", "a\u0301\u0301\u0301\u0301\u0301\u0301\u0301b", "a\u0301\u0301\u0301\u0301b"},
		{"emoji and scripts", "Ana 👩‍⚕️ Гарсия 陈", "Ana 👩⚕️ Гарсия 陈"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := CleanName(c.in)
			if err != nil || got != c.want {
				t.Fatalf("CleanName(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

func TestCleanNameRefusesNamesWithNothingVisible(t *testing.T) {
	for _, in := range []string{
		"", "   ", "\u202e", "\u200b\u200b", "\u3164\u3164", "\u2800", "\ufeff", "\u0301\u0302",
		"\u2066\u2069", "\u115f\u1160", "\u180e", "\t\n",
	} {
		if got, err := CleanName(in); err == nil {
			t.Errorf("CleanName(%q) = %q, want an error", in, got)
		}
	}
}

func TestCleanNameLimitsLength(t *testing.T) {
	got, err := CleanName(strings.Repeat("ab ", 40))
	if err != nil || len([]rune(got)) > MaxNameRunes || strings.HasSuffix(got, " ") {
		t.Fatalf("%q, %v", got, err)
	}
}
