package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEncodeIsFlat(t *testing.T) {
	b, err := Encode(TypeCall, Call{State: CallRinging, Caller: "a", Callee: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"type":"call","state":"ringing","caller":"a","callee":"b"}` {
		t.Fatalf("got %s", b)
	}
	b, _ = Encode(TypeLeave, nil)
	if string(b) != `{"type":"leave"}` {
		t.Fatalf("got %s", b)
	}
	b, _ = Encode(TypeLeave, struct{}{})
	if string(b) != `{"type":"leave"}` {
		t.Fatalf("got %s", b)
	}
}

func TestDecodeClient(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"join", `{"type":"join","room":"r-1","name":" Dr\tLee ","live":true,"id":"7"}`, nil},
		{"leave", `{"type":"leave"}`, nil},
		{"not json", `{"type":`, ErrMalformed},
		{"array", `[1,2]`, ErrMalformed},
		{"unknown", `{"type":"launch-missiles"}`, ErrUnknown},
		{"no type", `{}`, ErrUnknown},
		{"wrong field type", `{"type":"join","room":5}`, ErrMalformed},
		{"bad room", `{"type":"join","room":"../etc","name":"x"}`, ErrInvalid},
		{"empty name", `{"type":"join","room":"r","name":"  \n"}`, ErrInvalid},
		{"huge capacity", `{"type":"join","room":"r","name":"n","capacity":1000}`, ErrInvalid},
		{"no sdp", `{"type":"offer","target":"server"}`, ErrInvalid},
		{"bad mute", `{"type":"mute","kind":"smell"}`, ErrInvalid},
		{"consent without its request", `{"type":"consent","accept":true}`, ErrInvalid},
		{"invite nobody", `{"type":"invite"}`, ErrInvalid},
		{"link-stats", `{"type":"link-stats","rttMs":120.5,"loss":0.01,"jitterMs":4,"relay":true}`, nil},
		{"link-stats negative rtt", `{"type":"link-stats","rttMs":-1}`, ErrInvalid},
		{"link-stats loss over 1", `{"type":"link-stats","loss":1.5}`, ErrInvalid},
		{"link-stats huge rtt", `{"type":"link-stats","rttMs":1e300}`, ErrInvalid},
		{"link-stats huge jitter", `{"type":"link-stats","jitterMs":20000}`, ErrInvalid},
		{"link-stats wrong type", `{"type":"link-stats","loss":"high"}`, ErrMalformed},
		{"link-stats number too big for JSON", `{"type":"link-stats","rttMs":1e400}`, ErrMalformed},
		{"track-view", `{"type":"track-view","track":"p1:cam","width":640,"height":360,"visible":true}`, nil},
		{"track-view hidden", `{"type":"track-view","track":"p1:cam","visible":false}`, nil},
		{"track-view without track", `{"type":"track-view","width":640,"height":360}`, ErrInvalid},
		{"track-view negative", `{"type":"track-view","track":"t","width":-1}`, ErrInvalid},
		{"track-view huge", `{"type":"track-view","track":"t","height":100000}`, ErrInvalid},
		{"track-view fraction", `{"type":"track-view","track":"t","width":1.5}`, ErrMalformed},
		{"join with codecs", `{"type":"join","room":"r","name":"n","video":{"decode":["video/H264","video/rtx"],"encode":[]}}`, nil},
		{"join codec not a MIME type", `{"type":"join","room":"r","name":"n","video":{"decode":["H264"]}}`, ErrInvalid},
		{"join audio codec as video", `{"type":"join","room":"r","name":"n","video":{"encode":["audio/opus"]}}`, ErrInvalid},
		{"join codec with a line break", `{"type":"join","room":"r","name":"n","video":{"decode":["video/VP8\nx"]}}`, ErrInvalid},
		{"join codec list too long", `{"type":"join","room":"r","name":"n","video":{"decode":[` + strings.Repeat(`"video/VP8",`, MaxCodecs) + `"video/VP8"]}}`, ErrInvalid},
		{"join codecs not a list", `{"type":"join","room":"r","name":"n","video":{"decode":"video/VP8"}}`, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := DecodeClient([]byte(c.in))
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.name == "join" {
				j := m.Body.(*Join)
				if j.Name != "Dr Lee" || m.ID != "7" {
					t.Fatalf("got %+v id %q", j, m.ID)
				}
			}
		})
	}
}

func TestCleanNameLimitsAndFolds(t *testing.T) {
	n, err := CleanName(strings.Repeat("é", 100))
	if err != nil || len([]rune(n)) != MaxNameRunes {
		t.Fatalf("got %d runes, %v", len([]rune(n)), err)
	}
	if _, err := CleanName("\xff"); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
	n, _ = CleanName("a\u0000\u2028<b>")
	if n != "a <b>" {
		t.Fatalf("got %q", n)
	}
}

func FuzzDecodeClient(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","room":"r","name":"n","live":true}`,
		`{"type":"candidate","pc":"publish","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0"}}`,
		`{"type":"offer","sdp":"v=0"}`, `{"type":"mute","kind":"audio","muted":true}`, `{"type":"invite","participant":"x"}`,
		`{"type":"join","room":"r","name":"Dr \u202eeeL","role":"guest"}`, `{"type":"admit","participant":"x"}`,
		`{"type":"mute","kind":"video","muted":true,"participant":"x"}`, `{"type":"end"}`, `{"type":"refresh","token":"a.b.c"}`,
		`{"type":"path-ready","path":"sfu"}`, `{"type":"chat","text":"running 5 minutes late"}`,
		`{"type":"chat","text":"<img src=x onerror=alert(1)>\u202e","to":"abc"}`,
		`{"type":"link-stats","rttMs":600,"loss":0.02,"jitterMs":12.5,"relay":false}`, `{"type":"link-stats","loss":-0}`,
		`{"type":"record","start":true}`, `{"type":"consent","request":"rq-1","accept":true}`, `{"type":"consent","accept":1}`,
		`{"type":"track-view","track":"p1:cam","width":320,"height":180,"visible":true}`,
		`{"type":"join","room":"r","name":"n","video":{"decode":["video/H264"],"encode":["video/VP8","video/AV1"]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClient(data)
		if err != nil {
			return
		}
		if _, ok := clientBodies[m.Type]; !ok {
			t.Fatalf("accepted unknown type %q", m.Type)
		}
		if mu, ok := m.Body.(*Mute); ok && mu.Participant != "" && !mu.Muted {
			t.Fatalf("accepted an unmute of another member %+v", mu)
		}
		if j, ok := m.Body.(*Join); ok {
			if ValidRoom(j.Room) != nil || j.Name == "" || j.Role != "" && j.Role != RoleHost && j.Role != RoleGuest {
				t.Fatalf("accepted invalid join %+v", j)
			}
			if again, err := CleanName(j.Name); err != nil || again != j.Name {
				t.Fatalf("a cleaned name %q cleans to %q, %v", j.Name, again, err)
			}
			if _, err := json.Marshal(j); err != nil {
				t.Fatal(err)
			}
			if v := j.Video; v != nil {
				for _, c := range append(append([]string{}, v.Decode...), v.Encode...) {
					if !validMime(c) || strings.ContainsAny(c, "\n\r\" ") {
						t.Fatalf("accepted codec %q", c)
					}
				}
			}
		}
		if l, ok := m.Body.(*LinkStats); ok {
			if !(l.Loss >= 0 && l.Loss <= 1 && l.RTTMS >= 0 && l.RTTMS <= MaxLinkMS && l.JitterMS >= 0 && l.JitterMS <= MaxLinkMS) {
				t.Fatalf("accepted link-stats out of range %+v", l)
			}
		}
		if v, ok := m.Body.(*TrackView); ok {
			if v.Track == "" || v.Width < 0 || v.Width > MaxViewPixels || v.Height < 0 || v.Height > MaxViewPixels {
				t.Fatalf("accepted a track-view out of range %+v", v)
			}
		}
		if c, ok := m.Body.(*Chat); ok {
			if again, err := CleanChat(c.Text); err != nil || again != c.Text || utf8.RuneCountInString(c.Text) > MaxChatLen {
				t.Fatalf("a cleaned message %q cleans to %q, %v", c.Text, again, err)
			}
		}
	})
}

func TestCleanChat(t *testing.T) {
	for in, want := range map[string]string{
		" hello \r\n": "hello", "a\u202eb": "ab", "line one\nline two": "line one\nline two",
		"x\u0007y": "x y", "<img src=x onerror=alert(1)>": "<img src=x onerror=alert(1)>",
	} {
		if got, err := CleanChat(in); err != nil || got != want {
			t.Errorf("CleanChat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "  \n ", "\u200b", strings.Repeat("x", MaxChatLen+1), "\xff"} {
		if _, err := CleanChat(bad); err == nil {
			t.Errorf("CleanChat(%q) accepted", bad)
		}
	}
}
