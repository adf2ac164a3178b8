package main

import (
	"bytes"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"consult/signaling"
)

func TestTokenCommandMintsAVerifiableToken(t *testing.T) {
	var out, errb bytes.Buffer
	code := tokenCmd([]string{"-secret", "s3", "-room", "r1", "-identity", "dr", "-admin", "-role", "host", "-ttl", "10m"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	c, err := signaling.VerifyToken([]byte("s3"), strings.TrimSpace(out.String()), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "dr" || !c.Grants.Admin || !c.Grants.Publish || c.Role != "host" || time.Until(c.ExpiresAt.Time) > 10*time.Minute {
		t.Fatalf("claims %+v", c)
	}
	if tokenCmd([]string{"-room", "r1"}, &out, &errb) == 0 {
		t.Fatal("missing secret accepted")
	}
	if tokenCmd([]string{"-secret", "s3", "-room", "r1", "-identity", "x", "-role", "boss"}, &out, &errb) == 0 {
		t.Fatal("unknown role accepted")
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil)
	if err != nil || c.addr != ":8080" || c.udpPort != 7882 || c.capacity != 8 || c.ringTimeout != 30*time.Second ||
		c.maxLive != 200 || c.maxWaiting != 50 || c.joinRate != 2 || c.maxLoad != 0 || c.metricsAddr != "" {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	t.Setenv("CONSULT_ROOM_CAPACITY", "4")
	c, err = parseFlags([]string{"-ice-port-range", "40000-40100", "-public-ip", "203.0.113.7, 203.0.113.8"})
	if err != nil || c.capacity != 4 || c.portMin != 40000 || c.portMax != 40100 || len(c.publicIPs) != 2 {
		t.Fatalf("parsed %+v, %v", c, err)
	}
	c, err = parseFlags([]string{"-redis", "redis://127.0.0.1:6379/0", "-public-url", "https://node1.example.org/", "-redis-down", "local",
		"-allow-origin", "https://consult.example.org"})
	if err != nil || c.cluster.redis == "" || c.cluster.publicURL != "https://node1.example.org" || c.cluster.fallback != "local" ||
		len(c.cluster.allowOrigins) != 1 {
		t.Fatalf("cluster flags %+v, %v", c.cluster, err)
	}
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "72h": 72 * time.Hour} {
		if c, err = parseFlags([]string{"-record-keep", in}); err != nil || c.recordKeep != want {
			t.Fatalf("-record-keep %s: %v, %v", in, c.recordKeep, err)
		}
	}
	for _, bad := range [][]string{{"-record-keep", "10m"}, {"-record-keep", "0d"}, {"-record-keep", "month"},
		{"-ice-port-range", "9-1"}, {"-room-capacity", "0"}, {"-ring-timeout", "soon"},
		{"-join-rate", "-1"}, {"-max-live", "many"}, {"-max-load", "high"}, {"-pprof"},
		{"-redis-down", "maybe"}, {"-public-url", "node1:8080"}, {"-allow-origin", "consult.example.org"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

// Settings come from the command line, else the environment, else the
// -config file, else the defaults; the file's names are the flags', and a
// name that is no flag, or a value of the wrong type, is an error.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	path := write("consult.yaml", "room-capacity: 4\nring-timeout: 10s\npublic-ip: [203.0.113.7, 203.0.113.8]\np2p: false\njoin-rate: 0.5\nmax-live: 30\nauth-secret: 0123\n")
	t.Setenv("CONSULT_MAX_LIVE", "40")
	c, err := parseFlags([]string{"-config", path, "-ring-timeout", "20s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.capacity != 4 || c.ringTimeout != 20*time.Second || len(c.publicIPs) != 2 || c.p2p || c.joinRate != 0.5 || c.maxLive != 40 ||
		c.secret != "0123" {
		t.Fatalf("parsed %+v", c)
	}
	for text, want := range map[string]string{
		"room-capacty: 4\n":      "no such setting: room-capacty",
		"ring-timeout: soon\n":   "want a duration",
		"room-capacity: four\n":  "want a whole number",
		"p2p: perhaps\n":         "want true or false",
		"turn: {udp: ':3478'}\n": "not a map",
		"room-capacity: [1, 2\n": "yaml",
	} {
		_, err := parseFlags([]string{"--config=" + write("bad.yaml", text)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error about %q", text, err, want)
		}
	}
	if _, err := parseFlags([]string{"-config", filepath.Join(dir, "missing.yaml")}); err == nil {
		t.Error("a missing config file accepted")
	}
}

// -h shows each flag's type.
func TestHelpShowsTypes(t *testing.T) {
	var out bytes.Buffer
	st := &settings{fs: flag.NewFlagSet("consult", flag.ContinueOnError)}
	var d time.Duration
	var n int
	st.duration(&d, "ring-timeout", time.Second, "x")
	st.integer(&n, "room-capacity", 8, "y")
	st.fs.SetOutput(&out)
	st.fs.PrintDefaults()
	if !strings.Contains(out.String(), "-ring-timeout duration") || !strings.Contains(out.String(), "-room-capacity int") {
		t.Fatalf("help:\n%s", out.String())
	}
}

// The start-up log names an address a browser opens: localhost, not
// [::], when the server listens everywhere, and the https one for phones.
func TestBrowseURLs(t *testing.T) {
	for _, tc := range []struct {
		scheme, addr, lanIP, open, lan string
	}{
		{"http", "[::]:8080", "192.168.1.20", "http://localhost:8080", "https://192.168.1.20:8080"},
		{"http", "0.0.0.0:8080", "127.0.0.1", "http://localhost:8080", ""},
		{"https", "127.0.0.1:8443", "192.168.1.20", "https://localhost:8443", ""},
		{"http", "10.0.0.5:8080", "192.168.1.20", "http://10.0.0.5:8080", "https://10.0.0.5:8080"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if open, lan := browseURLs(tc.scheme, a, tc.lanIP); open != tc.open || lan != tc.lan {
			t.Errorf("%s %s: %q %q, want %q %q", tc.scheme, tc.addr, open, lan, tc.open, tc.lan)
		}
	}
}
