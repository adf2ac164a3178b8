package protocol

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Display names are shown to the other people in a consult, so they must
// not be able to look like someone else's. CleanName removes what would
// change how the rest of a name reads or what is invisible:
//
//   - format characters (Unicode Cf): the bidi overrides, embeddings and
//     isolates that turn "Dr \u202eeeL" into what reads as "Dr Lee", zero
//     width spaces and joiners, the byte order mark, tag characters;
//   - letters that draw nothing (Hangul fillers, the blank Braille pattern,
//     the Mongolian vowel separator) and the combining grapheme joiner;
//   - long runs of combining marks, which pile up over neighbouring text.
//
// White space and control characters fold into single spaces. A name with
// nothing visible left is refused. A name can still imitate another with
// look-alike letters: clients show each member's role from the server next
// to the name, and a token's name wins over the one a client asks for.
func CleanName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errors.New("name is not valid UTF-8")
	}
	var b strings.Builder
	space, visible := false, false
	n, marks := 0, 0
	for _, r := range strings.TrimSpace(name) {
		switch {
		case unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			space = true
			continue
		case invisible(r):
			continue
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
			if marks++; marks > maxMarks {
				continue
			}
		default:
			marks = 0
		}
		if n >= MaxNameRunes {
			break
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n++
			marks = 0
		}
		space = false
		b.WriteRune(r)
		n++
		visible = visible || unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
	}
	if !visible {
		return "", errors.New("name is empty or has nothing visible")
	}
	return strings.TrimSpace(b.String()), nil
}

// maxMarks is the most combining marks kept on one character; scripts
// that stack marks need two or three.
const maxMarks = 4

func invisible(r rune) bool {
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0', // Hangul fillers
		'\u2800', // Braille pattern blank
		'\u180e', // Mongolian vowel separator
		'\u034f': // combining grapheme joiner
		return true
	}
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r)
}
