package main

import (
	"bytes"
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
	for _, bad := range [][]string{{"-ice-port-range", "9-1"}, {"-room-capacity", "0"}, {"-ring-timeout", "soon"},
		{"-join-rate", "-1"}, {"-max-live", "many"}, {"-max-load", "high"}, {"-pprof"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}
