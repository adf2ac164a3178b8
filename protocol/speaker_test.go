package protocol

import "testing"

func TestSpeakerShape(t *testing.T) {
	for _, c := range []struct {
		in   Speaker
		want string
	}{
		{Speaker{Participant: "a1", Active: []string{"a1", "b2"}}, `{"type":"speaker","participant":"a1","active":["a1","b2"]}`},
		{Speaker{Active: []string{}}, `{"type":"speaker","participant":"","active":[]}`},
	} {
		b, err := Encode(TypeSpeaker, c.in)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("got %s, want %s", b, c.want)
		}
	}
}
