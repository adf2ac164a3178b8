package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/internal/testlog"
	"consult/protocol"
	"consult/signaling"
)

// startMain runs the real server (main's run) on loopback with args on top
// of test defaults, and returns its WebSocket URL.
func startMain(t *testing.T, args ...string) string {
	t.Helper()
	return startMainCtl(t, args...).url
}

// mainServer is a server started by startMainCtl: drain is its first
// SIGTERM; ended is closed when run has returned, with err; recDir is its
// recording directory.
type mainServer struct {
	url, base, recDir string
	drain             func()
	ended             chan struct{}
	err               error
}

func startMainCtl(t *testing.T, args ...string) *mainServer {
	t.Helper()
	// No drain at the end of a test: a client that has just gone keeps
	// its room for the resume grace.
	base := []string{"-addr", "127.0.0.1:0", "-ice-udp-port", "0", "-ice-loopback", "-drain-timeout", "0",
		"-turn-udp", "127.0.0.1:0", "-turn-tcp", "127.0.0.1:0", "-turn-relay-ip", "127.0.0.1"}
	recDir := t.TempDir()
	base = append(base, "-record-dir", recDir)
	cfg, err := parseFlags(append(base, args...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	ms := &mainServer{recDir: recDir, drain: cancel, ended: make(chan struct{})}
	go func() {
		ms.err = run(ctx, context.Background(), cfg, testlog.New(t), func(a string) { addr <- a })
		close(ms.ended)
	}()
	t.Cleanup(func() {
		cancel()
		<-ms.ended
		if ms.err != nil {
			t.Errorf("server: %v", ms.err)
		}
	})
	select {
	case a := <-addr:
		scheme, web := "ws://", "http://"
		if cfg.tlsSelfSigned {
			scheme, web = "wss://", "https://"
		}
		ms.url, ms.base = scheme+a+"/ws", web+a
		return ms
	case <-ms.ended:
		t.Fatalf("server did not start: %v", ms.err)
	case <-testenv.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	return nil
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// mediaPair joins a publisher and a receiver made with these client
// settings and returns the publisher's client and the first packet the
// receiver got.
func mediaPair(t *testing.T, url string, cfg client.Config) (*client.Client, *rtp.Packet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(20*time.Second))
	defer cancel()
	got := make(chan *rtp.Packet, 1)
	rcfg := cfg
	rcfg.URL = url
	rcfg.OnTrack = func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if p, _, err := r.ReadRTP(); err == nil {
			select {
			case got <- p:
			default:
			}
		}
	}
	recv, err := client.Dial(ctx, rcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recv.Close() })
	if _, err := recv.Join(ctx, protocol.Join{Room: "r", Name: "recv", Live: true}); err != nil {
		t.Fatal(err)
	}
	pcfg := cfg
	pcfg.URL = url
	pub, err := client.Dial(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	j, err := pub.Join(ctx, protocol.Join{Room: "r", Name: "pub", Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RelayOnly && len(j.ICEServers) == 0 {
		t.Fatal("join reply carries no ICE servers")
	}
	tr, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", "s")
	if _, err := pub.Publish(ctx, tr); err != nil {
		t.Fatal(err)
	}
	for seq := uint16(0); ; seq++ {
		_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960},
			Payload: []byte{0xfc, byte(seq)}})
		select {
		case p := <-got:
			return pub, p
		case <-ctx.Done():
			t.Fatal("no media arrived")
		case <-time.After(20 * time.Millisecond): // packet pacing
		}
	}
}

func selectedPair(t *testing.T, pc *webrtc.PeerConnection) (local, remote webrtc.ICECandidateType, proto string) {
	t.Helper()
	p := client.SelectedCandidatePair(pc)
	if p == nil {
		t.Fatal("no selected candidate pair")
	}
	return p.Local.Typ, p.Remote.Typ, p.Local.Protocol.String()
}

func TestRelayOnlyClientReachesTheSFUThroughEmbeddedTURN(t *testing.T) {
	// The SFU is on loopback here, which the relay refuses by default.
	url := startMain(t, "-turn-allow-peers", "127.0.0.0/8")
	api, _ := client.DefaultAPI(nil)
	pub, _ := mediaPair(t, url, client.Config{API: api, RelayOnly: true})
	if local, _, _ := selectedPair(t, pub.PublishPC()); local != webrtc.ICECandidateTypeRelay {
		t.Fatalf("publisher's path is %s, want relay", local)
	}
	// The call is told that the publisher's link to the server is relayed.
	if _, err := pub.AwaitQuality(testenv.Context(t, 10*time.Second), func(q protocol.Quality) bool {
		for _, m := range q.Members {
			if m.Participant == pub.ID() {
				return m.Path == protocol.PathRelay
			}
		}
		return false
	}); err != nil {
		last, _ := pub.Quality()
		t.Fatalf("no quality message with the publisher relayed: %v (last %+v)", err, last)
	}
}

func TestUDPBlockedClientConnectsOverICETCP(t *testing.T) {
	url := startMain(t, "-ice-tcp-port", freePort(t))
	se := &webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4}) // as if UDP were blocked
	api, _ := client.DefaultAPI(se)
	pub, _ := mediaPair(t, url, client.Config{API: api})
	if _, _, proto := selectedPair(t, pub.PublishPC()); proto != "tcp" {
		t.Fatalf("publisher's path is over %s, want tcp", proto)
	}
}

func TestAdminAPIsNeedAnAdminTokenWhenAuthIsOn(t *testing.T) {
	url := startMain(t, "-auth-secret", "s3cret")
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(url, "ws"), "/ws")
	mint := func(spec signaling.TokenSpec) string {
		spec.TTL = time.Hour
		tok, err := signaling.MintToken([]byte("s3cret"), spec, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin := mint(signaling.TokenSpec{Room: "*", Identity: "ops", Grants: signaling.Grants{Admin: true}})
	user := mint(signaling.TokenSpec{Room: "*", Identity: "u", Grants: signaling.Grants{Publish: true}})
	guest := mint(signaling.TokenSpec{Room: "room-a", Identity: "pat", Grants: signaling.Grants{Publish: true, Subscribe: true}})
	host := mint(signaling.TokenSpec{Room: "room-a", Identity: "dr", Role: "host", Grants: signaling.Grants{Publish: true, Subscribe: true}})
	for _, path := range []string{"/api/rooms", "/api/recordings", "/api/taps"} {
		for tok, want := range map[string]int{"": 401, user: 401, guest: 401, host: 200, admin: 200} {
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("GET %s: %d, want %d", path, resp.StatusCode, want)
			}
		}
	}
	// Recording is a host's (or an admin's) act, in its own room only.
	record := func(tok, room string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/recordings", strings.NewReader(`{"room":"`+room+`"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := record(guest, "room-a"); code != http.StatusUnauthorized {
		t.Errorf("a guest's recording request: %d", code)
	}
	if code := record(host, "room-b"); code != http.StatusNotFound {
		t.Errorf("room-a's host recording room-b: %d, want 404 (no such room for it)", code)
	}
	if code := record(host, "room-a"); code != http.StatusOK {
		t.Errorf("room-a's host could not record room-a: %d", code)
	}
}

func TestSelfSignedHTTPS(t *testing.T) {
	url := startMain(t, "-tls-self-signed")
	base := "https" + strings.TrimSuffix(strings.TrimPrefix(url, "wss"), "/ws")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // self-signed by design
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("https: %v", resp.Status)
	}
	if err := resp.TLS.PeerCertificates[0].VerifyHostname("127.0.0.1"); err != nil {
		t.Fatalf("certificate does not cover 127.0.0.1: %v", err)
	}
}
