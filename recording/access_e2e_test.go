package recording_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"consult/internal/testenv"
	"consult/protocol"
	"consult/recording"
	"consult/signaling"
)

// call sends an HTTP request with a bearer token (none if empty) and
// returns the status and body.
func call(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func mint(t *testing.T, secret []byte, spec signaling.TokenSpec) string {
	t.Helper()
	spec.TTL = time.Hour
	tok, err := signaling.MintToken(secret, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// A room's recordings, their manifest and files are reached with a token
// for that room only; the manifest lists every file with a hash that
// matches what is downloaded, and who took part.
func TestRecordingFilesAndManifestOnlyWithTheRoomsToken(t *testing.T) {
	needTools(t)
	ivf, ogg := makeClip(t, 3)
	secret := []byte("s3cret")
	dir := t.TempDir()
	st := startStackWith(t, dir, secret)
	host := protocol.RoleHost
	visitTok := mint(t, secret, signaling.TokenSpec{Room: "visit", Identity: "dr-lee", Name: "Dr Lee", Role: host, Grants: signaling.AllGrants})
	otherTok := mint(t, secret, signaling.TokenSpec{Room: "other", Identity: "dr-kim", Name: "Dr Kim", Role: host, Grants: signaling.AllGrants})
	guestTok := mint(t, secret, signaling.TokenSpec{Room: "visit", Identity: "pt-1", Name: "Pat", Role: protocol.RoleGuest,
		DirectEntry: true, Grants: signaling.Grants{Publish: true, Subscribe: true}})
	admin := mint(t, secret, signaling.TokenSpec{Room: "*", Identity: "ops", Role: host, Grants: signaling.AllGrants})

	ids := map[string]string{}
	for room, tok := range map[string]string{"visit": visitTok, "other": otherTok} {
		c, _ := participantWith(t, st.url, protocol.Join{Room: room, Name: "x", Token: tok, Live: true}, nil)
		tr := publishClip(t, c)
		code, b := call(t, "POST", st.api+"/api/recordings", admin, `{"room":"`+room+`"}`)
		var in recording.Info
		if code != 200 || json.Unmarshal(b, &in) != nil {
			t.Fatalf("start %s: %d %s", room, code, b)
		}
		ids[room] = in.ID
		sendClip(t, tr, ivf, ogg, nil)
	}
	// Stopped, and hashed once the manifest is final.
	for room, id := range ids {
		if code, b := call(t, "POST", st.api+"/api/recordings/"+id+"/stop", admin, ""); code != 200 {
			t.Fatalf("stop %s: %d %s", room, code, b)
		}
	}
	var in recording.Info
	if !testenv.Within(10*time.Second, func() bool {
		code, b := call(t, "GET", st.api+"/api/recordings/"+ids["visit"], visitTok, "")
		return code == 200 && json.Unmarshal(b, &in) == nil && len(in.Files) == 1 && in.Files[0].SHA256 != ""
	}) {
		t.Fatalf("no hash in %+v", in)
	}
	name := in.Files[0].Name
	code, file := call(t, "GET", st.api+"/api/recordings/"+ids["visit"]+"/files/"+name, visitTok, "")
	disk, _ := os.ReadFile(filepath.Join(dir, name))
	if code != 200 || len(file) == 0 || sum(file) != in.Files[0].SHA256 || sum(disk) != sum(file) {
		t.Fatalf("download %s: %d, %d bytes, hash %s, listed %s", name, code, len(file), sum(file), in.Files[0].SHA256)
	}
	code, b := call(t, "GET", st.api+"/api/recordings/"+ids["visit"]+"/manifest", visitTok, "")
	var man recording.Info
	if code != 200 || json.Unmarshal(b, &man) != nil {
		t.Fatalf("manifest: %d %s", code, b)
	}
	if man.Room != "visit" || man.State != recording.StateStopped || man.Stopped == nil || len(man.Files) != 1 ||
		man.Files[0].Name != name || man.Files[0].SHA256 != sum(file) || man.Files[0].Path != "" ||
		man.Consent.Policy != recording.ConsentElsewhere || len(man.People) != 1 || man.People[0].Identity != "dr-lee" {
		t.Fatalf("manifest %s", b)
	}

	// The other room's host reaches nothing of this one, and the other
	// way round; a guest and no token reach nothing at all.
	otherID := ids["other"]
	var list []recording.Info
	code, b = call(t, "GET", st.api+"/api/recordings", visitTok, "")
	if code != 200 || json.Unmarshal(b, &list) != nil || len(list) != 1 || list[0].Room != "visit" {
		t.Fatalf("visit's list: %d %s", code, b)
	}
	var otherIn recording.Info
	code, b = call(t, "GET", st.api+"/api/recordings/"+otherID, admin, "")
	if code != 200 || json.Unmarshal(b, &otherIn) != nil || len(otherIn.Files) != 1 {
		t.Fatalf("other: %d %s", code, b)
	}
	otherName := otherIn.Files[0].Name
	for _, tc := range []struct{ what, url, token string }{
		{"another room's recording", "/api/recordings/" + otherID, visitTok},
		{"another room's file", "/api/recordings/" + otherID + "/files/" + otherName, visitTok},
		{"another room's manifest", "/api/recordings/" + otherID + "/manifest", visitTok},
		{"another room's file under this room's recording", "/api/recordings/" + ids["visit"] + "/files/" + otherName, visitTok},
		{"a path", "/api/recordings/" + ids["visit"] + "/files/..%2F" + name, visitTok},
		{"a manifest as a file", "/api/recordings/" + ids["visit"] + "/files/" + in.Manifest, visitTok},
		{"this room from the other host", "/api/recordings/" + ids["visit"] + "/files/" + name, otherTok},
	} {
		if code, b := call(t, "GET", st.api+tc.url, tc.token, ""); code != http.StatusNotFound {
			t.Errorf("%s: %d %s, want 404", tc.what, code, b)
		}
	}
	for what, tok := range map[string]string{"a guest": guestTok, "no token": ""} {
		if code, _ := call(t, "GET", st.api+"/api/recordings/"+ids["visit"]+"/files/"+name, tok, ""); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", what, code)
		}
	}
}
