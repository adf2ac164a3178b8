package signaling

import (
	"testing"
	"time"
)

// Tokens arrive from the network (join, refresh, Authorization): whatever
// they hold, verifying one never panics, and only a token signed with the
// secret, unexpired, with a subject and a known role, is taken.
func FuzzVerifyToken(f *testing.F) {
	secret := []byte("fuzz-secret")
	good, _ := MintToken(secret, TokenSpec{Room: "r", Identity: "i", Role: "host", TTL: time.Hour}, time.Now())
	other, _ := MintToken([]byte("other"), TokenSpec{Room: "r", Identity: "i", TTL: time.Hour}, time.Now())
	for _, s := range []string{good, other, "", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", good[:len(good)-2]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := VerifyToken(secret, tok, "r")
		if err != nil {
			return
		}
		if c.Subject == "" || c.Role != "host" && c.Role != "guest" || c.ExpiresAt == nil || c.Room != "r" && c.Room != "*" {
			t.Fatalf("accepted %q as %+v", tok, c)
		}
	})
}
