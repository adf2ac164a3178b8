package recording

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// safe keeps letters, digits, '-' and '_' (ASCII only), maps everything
// else to '_' and bounds the length, so that a room or display name can
// neither leave the recording directory nor surprise a shell or a player.
func safe(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

var errOutsideDir = errors.New("recording: path escapes the recording directory")

// fileName builds room_participant_time[_partN].ext under dir and checks
// that the result stays inside dir.
func fileName(dir, room, participant string, at time.Time, part int, ext string) (string, error) {
	name := fmt.Sprintf("%s_%s_%s", safe(room, 64), safe(participant, 64), at.UTC().Format("20060102T150405.000Z"))
	if part > 1 {
		name += fmt.Sprintf("_part%d", part)
	}
	p := filepath.Join(dir, name+ext)
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel != filepath.Base(p) {
		return "", errOutsideDir
	}
	return p, nil
}
