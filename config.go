package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// config is every setting of the server: flags, each with an environment
// variable and a key in the -config file (flags.go).
type config struct {
	addr             string
	udpPort          int
	tcpPort          int
	portMin, portMax uint16
	publicIPs        []string
	interfaces       []string
	iceLoopback      bool
	secret           string
	capacity         int
	ringTimeout      time.Duration
	keyframeInterval time.Duration
	logJSON          bool
	logLevel         string
	turn             turnFlags
	recordDir        string
	recordKeep       time.Duration
	recordComposite  bool
	tapAllow         []netip.Prefix
	tlsCert, tlsKey  string
	tlsSelfSigned    bool
	tlsHosts         []string
	p2p              bool
	p2pReturn        bool
	p2pDeadline      time.Duration
	resumeGrace      time.Duration
	iceDisconnected  time.Duration
	iceKeepalive     time.Duration
	audioFirst       bool
	simulcast        bool
	metricsAddr      string
	pprof            bool
	maxLive          int
	maxWaiting       int
	joinRate         float64
	maxLoad          float64
	drainTimeout     time.Duration
	webhookURLs      []string
	webhookKey       string
	webhookNames     bool
	cluster          clusterFlags
}

func parseFlags(args []string) (config, error) {
	var c config
	st := &settings{fs: flag.NewFlagSet("consult", flag.ContinueOnError)}
	if path := configPath(args); path != "" {
		file, err := readConfig(path)
		if err != nil {
			return c, err
		}
		st.file = file
	}
	str, boolean, integer, number, duration := st.str, st.boolean, st.integer, st.number, st.duration
	var configFile, portRange, publicIPs, interfaces, tapAllow, tlsHosts, webhookURLs, recordKeep string
	str(&configFile, "config", "", "read settings from this YAML file (keys are these flags' names; flags and CONSULT_ variables win)")
	str(&c.addr, "addr", ":8080", "HTTP listen address (web client, /ws, /api)")
	integer(&c.udpPort, "ice-udp-port", 7882, "one UDP port for all WebRTC media (ICE UDP mux); 0 for ephemeral ports")
	integer(&c.tcpPort, "ice-tcp-port", 0, "ICE over TCP on this port for UDP-blocked networks; 0 is off")
	str(&portRange, "ice-port-range", "", "ephemeral UDP port range min-max, used when -ice-udp-port is 0")
	str(&publicIPs, "public-ip", "", "public IP(s) to advertise, comma-separated (1:1 NAT, cloud hosts)")
	str(&interfaces, "ice-interfaces", "", "network interfaces to gather candidates on, comma-separated (default all)")
	boolean(&c.iceLoopback, "ice-loopback", false, "also offer loopback candidates (single-machine testing)")
	st.secret(&c.secret, "auth-secret", "HMAC secret for join tokens; empty leaves rooms open")
	integer(&c.capacity, "room-capacity", 8, "default live members per room")
	duration(&c.ringTimeout, "ring-timeout", 30*time.Second, "how long an invite rings")
	duration(&c.keyframeInterval, "keyframe-interval", 500*time.Millisecond, "least time between keyframe requests per track")
	boolean(&c.logJSON, "log-json", false, "log JSON instead of console lines")
	str(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	c.turn.register(st)
	c.cluster.register(st)
	duration(&c.resumeGrace, "resume-grace", 20*time.Second, "how long a member whose connection dropped keeps its place and may resume (0: off)")
	duration(&c.iceDisconnected, "ice-disconnected-timeout", 2*time.Second, "silence after which a media path counts as down and ICE restarts")
	duration(&c.iceKeepalive, "ice-keepalive", 500*time.Millisecond, "how often the server checks an idle media path")
	str(&c.tlsCert, "tls-cert", "", "PEM certificate: serve HTTPS (cameras need a secure context off localhost)")
	str(&c.tlsKey, "tls-key", "", "PEM key for -tls-cert")
	boolean(&c.tlsSelfSigned, "tls-self-signed", false, "serve HTTPS with a certificate made at start for this machine's names and LAN IPs")
	str(&tlsHosts, "tls-hosts", "", "extra host names for -tls-self-signed, comma-separated")
	boolean(&c.p2p, "p2p", true, "let 1:1 calls try a direct connection before the SFU")
	boolean(&c.simulcast, "simulcast", false, "have browsers send their camera to the server as three layers, each subscriber getting the one its downlink carries (docs/simulcast.md)")
	boolean(&c.audioFirst, "audio-first", true, "pause a member's incoming video when its downlink cannot carry it, so that its audio stays whole")
	boolean(&c.p2pReturn, "p2p-return", true, "return a room to the direct path when it is back to two")
	duration(&c.p2pDeadline, "p2p-deadline", 5*time.Second, "how long a direct attempt may take before the SFU takes over")
	duration(&c.drainTimeout, "drain-timeout", 10*time.Minute, "on SIGTERM, how long running consults may go on while no new ones start (0: stop at once; a second SIGTERM stops now)")
	str(&webhookURLs, "webhook-url", "", "send events (room, participant, call, path, recording) as signed JSON POSTs to these URLs, comma-separated")
	st.secret(&c.webhookKey, "webhook-key", "HMAC-SHA256 key that signs webhooks (required with -webhook-url)")
	boolean(&c.webhookNames, "webhook-names", false, "put members' display names in webhooks (patient data: only to a backend that may hold it)")
	integer(&c.maxLive, "max-live", 200, "people in calls on the whole server; past it new joins get server-busy (0: no limit)")
	integer(&c.maxWaiting, "max-waiting", 50, "people waiting in one room (0: no limit)")
	number(&c.joinRate, "join-rate", 2, "joins per second from one address, in bursts of 4 s' worth (0: no limit)")
	number(&c.maxLoad, "max-load", 0, "refuse joins while the 1-minute load average per CPU is over this (0: off)")
	str(&c.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (e.g. 127.0.0.1:9090); empty is off. It needs no token: keep it private")
	boolean(&c.pprof, "pprof", false, "also serve Go's profiles at /debug/pprof/ on -metrics-addr")
	str(&c.recordDir, "record-dir", "recordings", "directory for recordings and RTP tap SDP files")
	boolean(&c.recordComposite, "record-composite", true, "compose each stopped room recording into one MP4 with ffmpeg (needs ffmpeg on PATH)")
	str(&recordKeep, "record-keep", "", "delete recordings this long after they stop (e.g. 30d, 72h); empty keeps them")
	str(&tapAllow, "tap-allow", "127.0.0.0/8,::1/128", "CIDRs RTP taps may send to")
	if err := st.checkFileKeys(); err != nil {
		return c, err
	}
	if len(st.errs) > 0 {
		return c, st.errs[0]
	}
	if err := st.fs.Parse(args); err != nil {
		return c, err
	}
	bad := func(name string, e error) error { return fmt.Errorf("-%s: %v", name, e) }
	positive := []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"ring-timeout", c.ringTimeout, time.Millisecond}, {"keyframe-interval", c.keyframeInterval, 0},
		{"p2p-deadline", c.p2pDeadline, time.Millisecond}, {"resume-grace", c.resumeGrace, 0},
		{"ice-disconnected-timeout", c.iceDisconnected, 100 * time.Millisecond},
		{"ice-keepalive", c.iceKeepalive, 50 * time.Millisecond}, {"drain-timeout", c.drainTimeout, 0},
	}
	for _, d := range positive {
		if d.v < d.min {
			return c, bad(d.name, fmt.Errorf("want a duration of at least %v, got %v", d.min, d.v))
		}
	}
	counts := []struct {
		name string
		v    int
		min  int
	}{{"room-capacity", c.capacity, 1}, {"ice-udp-port", c.udpPort, 0}, {"ice-tcp-port", c.tcpPort, 0},
		{"max-live", c.maxLive, 0}, {"max-waiting", c.maxWaiting, 0}}
	for _, n := range counts {
		if n.v < n.min {
			return c, bad(n.name, fmt.Errorf("want at least %d, got %d", n.min, n.v))
		}
	}
	if c.joinRate < 0 || c.maxLoad < 0 {
		return c, fmt.Errorf("-join-rate and -max-load cannot be negative")
	}
	if portRange != "" {
		lo, hi, ok := strings.Cut(portRange, "-")
		a, e1 := strconv.ParseUint(lo, 10, 16)
		b, e2 := strconv.ParseUint(hi, 10, 16)
		if !ok || e1 != nil || e2 != nil || a == 0 || b < a {
			return c, bad("ice-port-range", fmt.Errorf("want min-max, got %q", portRange))
		}
		c.portMin, c.portMax = uint16(a), uint16(b)
	}
	if recordKeep != "" {
		d, err := parseKeep(recordKeep)
		if err != nil {
			return c, bad("record-keep", err)
		}
		c.recordKeep = d
	}
	for _, p := range splitList(tapAllow) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return c, bad("tap-allow", err)
		}
		c.tapAllow = append(c.tapAllow, pfx)
	}
	c.tlsHosts = splitList(tlsHosts)
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return c, fmt.Errorf("-tls-cert and -tls-key go together")
	}
	c.webhookURLs = splitList(webhookURLs)
	if len(c.webhookURLs) > 0 && c.webhookKey == "" {
		return c, fmt.Errorf("-webhook-url needs -webhook-key, which signs the events")
	}
	if err := c.cluster.check(); err != nil {
		return c, err
	}
	if c.pprof && c.metricsAddr == "" {
		return c, fmt.Errorf("-pprof serves on -metrics-addr; set that too")
	}
	c.publicIPs = splitList(publicIPs)
	c.interfaces = splitList(interfaces)
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseKeep reads a retention: a Go duration, or a whole number of days
// ("30d"), at least an hour.
func parseKeep(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 36500 {
			return 0, fmt.Errorf("want a number of days such as 30d, got %q", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d < time.Hour {
		return 0, fmt.Errorf("want at least an hour, got %v", d)
	}
	return d, nil
}
