package turn

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func nopLogger() *zap.Logger { return zap.NewNop() }

// The expected values come from the scheme's definition, computed
// independently: printf '1700003600:alice' | openssl dgst -sha1 -hmac secret -binary | base64
func TestCredentialsMatchRESTScheme(t *testing.T) {
	now := time.Unix(1700000000, 0)
	user, pass := Credentials("secret", "alice", time.Hour, now)
	if user != "1700003600:alice" {
		t.Errorf("username = %q", user)
	}
	if pass != "LLPLO4qjdVL2qZhwr3eImhn7J20=" {
		t.Errorf("password = %q", pass)
	}
	if user, _ := Credentials("secret", "", time.Hour, now); user != "1700003600" {
		t.Errorf("username without user ID = %q", user)
	}
}

func TestVerifyCredentials(t *testing.T) {
	now := time.Unix(1700000000, 0)
	user, pass := Credentials("secret", "room:alice", time.Minute, now)
	for _, tc := range []struct {
		name         string
		secret, u, p string
		at           time.Time
		wantUser     string
		wantErr      error
	}{
		{name: "valid", secret: "secret", u: user, p: pass, at: now, wantUser: "room:alice"},
		{name: "valid at the expiry second", secret: "secret", u: user, p: pass, at: now.Add(time.Minute), wantUser: "room:alice"},
		{name: "expired", secret: "secret", u: user, p: pass, at: now.Add(time.Minute + time.Second), wantErr: ErrExpired},
		{name: "wrong password", secret: "secret", u: user, p: pass[:len(pass)-2] + "A=", at: now, wantErr: ErrBadPassword},
		{name: "other secret", secret: "other", u: user, p: pass, at: now, wantErr: ErrBadPassword},
		{name: "tampered user", secret: "secret", u: strings.Replace(user, "alice", "bob", 1), p: pass, at: now, wantErr: ErrBadPassword},
		{name: "tampered expiry", secret: "secret", u: "9" + user, p: pass, at: now, wantErr: ErrBadPassword},
		{name: "malformed", secret: "secret", u: "alice", p: pass, at: now, wantErr: ErrMalformedUsername},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyCredentials(tc.secret, tc.u, tc.p, tc.at)
			if !errors.Is(err, tc.wantErr) || got != tc.wantUser {
				t.Errorf("VerifyCredentials = %q, %v; want %q, %v", got, err, tc.wantUser, tc.wantErr)
			}
		})
	}
}

func TestParseUsername(t *testing.T) {
	for _, tc := range []struct {
		in       string
		wantTS   int64
		wantUser string
		ok       bool
	}{
		{in: "1700000000:alice", wantTS: 1700000000, wantUser: "alice", ok: true},
		{in: "1700000000", wantTS: 1700000000, ok: true},
		{in: "1700000000:", wantTS: 1700000000, ok: true},
		{in: "1700000000:a:b:c", wantTS: 1700000000, wantUser: "a:b:c", ok: true},
		{in: "0:x", wantTS: 0, wantUser: "x", ok: true},
		{in: ""},
		{in: ":alice"},
		{in: "alice"},
		{in: "alice:1700000000"}, // coturn's reversed form is not something we issue
		{in: "+1700000000:alice"},
		{in: "-1:alice"},
		{in: " 1700000000:alice"},
		{in: "1700000000 :alice"},
		{in: "0x10:alice"},
		{in: "1e9:alice"},
		{in: "9999999999999999999:alice"}, // overflows int64
		{in: "1700000000:" + strings.Repeat("a", maxUsernameLen)},
	} {
		ts, user, err := ParseUsername(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseUsername(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			if !errors.Is(err, ErrMalformedUsername) {
				t.Errorf("ParseUsername(%q) error = %v, want ErrMalformedUsername", tc.in, err)
			}
			continue
		}
		if ts.Unix() != tc.wantTS || user != tc.wantUser {
			t.Errorf("ParseUsername(%q) = %d, %q; want %d, %q", tc.in, ts.Unix(), user, tc.wantTS, tc.wantUser)
		}
	}
}

// FuzzParseUsername feeds arbitrary USERNAME attribute values (they come off
// the network before any authentication) and checks that parsing never
// panics and that what it accepts is exactly the documented form.
func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"1700000000:alice", "1700000000", "1:a:b", "", ":", "-1:x", "+1:x", "99999999999999999999", "1\x00:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ts, user, err := ParseUsername(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedUsername) {
				t.Fatalf("error %v is not ErrMalformedUsername", err)
			}
			return
		}
		digits, rest, hasColon := strings.Cut(in, ":")
		if len(in) > maxUsernameLen || digits == "" || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("accepted %q", in)
		}
		if n, _ := strconv.ParseInt(digits, 10, 64); ts.Unix() != n || ts.Unix() < 0 {
			t.Fatalf("%q: expiry %d", in, ts.Unix())
		}
		if user != rest || (!hasColon && user != "") {
			t.Fatalf("%q: user %q", in, user)
		}
		// Whatever parses must also verify against its own password.
		if _, err := VerifyCredentials("k", in, restPassword("k", in), time.Unix(0, 0)); err != nil {
			t.Fatalf("%q: own password refused: %v", in, err)
		}
	})
}
