package turn

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestConfigRejectsUnusableSettings(t *testing.T) {
	valid := Config{Secret: "s", ListenUDP: "127.0.0.1:0", RelayBindAddress: netip.MustParseAddr("127.0.0.1")}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   error
	}{
		{"no secret", func(c *Config) { c.Secret = "" }, ErrNoSecret},
		{"no listeners", func(c *Config) { c.ListenUDP = "" }, ErrNoListeners},
		{"no relay address", func(c *Config) { c.RelayBindAddress = netip.Addr{} }, ErrNoRelayAddress},
		{"unspecified bind without public IP", func(c *Config) { c.RelayBindAddress = netip.IPv4Unspecified() }, ErrNoRelayAddress},
		{"unspecified public IP", func(c *Config) { c.PublicIP = netip.IPv4Unspecified() }, ErrBadConfig},
		{"family mismatch", func(c *Config) { c.PublicIP = netip.MustParseAddr("2001:db8::1") }, ErrBadConfig},
		{"TLS without cert", func(c *Config) { c.ListenTLS = ":0" }, ErrBadConfig},
		{"cert without TLS", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "a", "b" }, ErrBadConfig},
		{"port range reversed", func(c *Config) { c.RelayPortMin, c.RelayPortMax = 50000, 40000 }, ErrBadConfig},
		{"port range half set", func(c *Config) { c.RelayPortMax = 40000 }, ErrBadConfig},
		{"negative quota", func(c *Config) { c.PerUserQuota = -1 }, ErrBadConfig},
		{"negative lifetime", func(c *Config) { c.MaxLifetime = -time.Second }, ErrBadConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.mutate(&cfg)
			srv, err := New(cfg)
			if err == nil {
				_ = srv.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("New: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestConfigRelayAddresses(t *testing.T) {
	pub, priv := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("10.0.0.7")
	for _, tc := range []struct {
		name                    string
		public, bind            netip.Addr
		wantAdvertise, wantBind netip.Addr
	}{
		{"1:1 NAT", pub, priv, pub, priv},
		{"public IP, bind all", pub, netip.Addr{}, pub, netip.IPv4Unspecified()},
		{"bind only", netip.Addr{}, priv, priv, priv},
		{"mapped forms are unmapped", netip.AddrFrom16(pub.As16()), netip.Addr{}, pub, netip.IPv4Unspecified()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Config{Secret: "s", ListenUDP: ":0", PublicIP: tc.public, RelayBindAddress: tc.bind}.settings()
			if err != nil {
				t.Fatal(err)
			}
			if s.advertiseIP != tc.wantAdvertise || s.bindIP != tc.wantBind {
				t.Errorf("advertise %s bind %s, want %s %s", s.advertiseIP, s.bindIP, tc.wantAdvertise, tc.wantBind)
			}
		})
	}
}

func TestICEServers(t *testing.T) {
	now := time.Unix(1700000000, 0)
	cfg := ICEConfig{
		URLs:   []string{"stun:turn.example.com:3478", "turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349?transport=tcp"},
		Secret: "secret",
		TTL:    time.Hour,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got := cfg.ICEServers("alice", now)
	if len(got) != 2 {
		t.Fatalf("ICEServers = %+v, want a STUN and a TURN entry", got)
	}
	if got[0].Username != "" || len(got[0].URLs) != 1 {
		t.Errorf("STUN entry = %+v, want one URL and no credentials", got[0])
	}
	turnEntry := got[1]
	if len(turnEntry.URLs) != 2 || turnEntry.Username != "1700003600:alice" {
		t.Errorf("TURN entry = %+v", turnEntry)
	}
	if u, err := VerifyCredentials("secret", turnEntry.Username, turnEntry.Credential, now); err != nil || u != "alice" {
		t.Errorf("handed-out credentials do not verify: %q, %v", u, err)
	}
	// The JSON is RTCIceServer's, so browsers take it as is.
	b, err := json.Marshal(got[0])
	if err != nil || string(b) != `{"urls":["stun:turn.example.com:3478"]}` {
		t.Errorf("JSON = %s, %v", b, err)
	}

	// Zero TTL means the default.
	cfg.TTL = 0
	if u := cfg.ICEServers("a", now)[1].Username; u != "1700043200:a" {
		t.Errorf("default TTL username = %q, want expiry now+12h", u)
	}
	if got := (ICEConfig{}).ICEServers("alice", now); got != nil {
		t.Errorf("empty config gave %+v", got)
	}
	// TURN without a secret cannot authenticate: left out, and Validate says so.
	noSecret := ICEConfig{URLs: cfg.URLs}
	if got := noSecret.ICEServers("a", now); len(got) != 1 || got[0].Username != "" {
		t.Errorf("no-secret ICEServers = %+v, want only the STUN entry", got)
	}
	if err := noSecret.Validate(); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Validate without secret = %v", err)
	}
	for _, bad := range []string{"turn.example.com:3478", "http://x", "turn:", "turn://x:3478"} {
		if err := (ICEConfig{URLs: []string{bad}, Secret: "s"}).Validate(); err == nil {
			t.Errorf("Validate accepted %q", bad)
		}
	}
}
