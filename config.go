package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is every setting of the server. Each flag has an environment
// variable (CONSULT_ and the flag's name in capitals, '-' as '_') that sets
// its default, for containers.
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
}

func env(name, def string) string {
	if v, ok := os.LookupEnv("CONSULT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); ok {
		return v
	}
	return def
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("consult", flag.ContinueOnError)
	str := func(p *string, name, def, usage string) { fs.StringVar(p, name, env(name, def), usage) }
	boolean := func(p *bool, name string, def bool, usage string) {
		v, err := strconv.ParseBool(env(name, strconv.FormatBool(def)))
		if err != nil {
			v = def
		}
		fs.BoolVar(p, name, v, usage)
	}
	var portRange, publicIPs, interfaces, udpPort, tcpPort, capacity, ring, kf string
	str(&c.addr, "addr", ":8080", "HTTP listen address (web client, /ws, /api)")
	str(&udpPort, "ice-udp-port", "7882", "one UDP port for all WebRTC media (ICE UDP mux); 0 for ephemeral ports")
	str(&tcpPort, "ice-tcp-port", "0", "ICE over TCP on this port for UDP-blocked networks; 0 is off")
	str(&portRange, "ice-port-range", "", "ephemeral UDP port range min-max, used when -ice-udp-port is 0")
	str(&publicIPs, "public-ip", "", "public IP(s) to advertise, comma-separated (1:1 NAT, cloud hosts)")
	str(&interfaces, "ice-interfaces", "", "network interfaces to gather candidates on, comma-separated (default all)")
	boolean(&c.iceLoopback, "ice-loopback", false, "also offer loopback candidates (single-machine testing)")
	str(&c.secret, "auth-secret", "", "HMAC secret for join tokens; empty leaves rooms open")
	str(&capacity, "room-capacity", "8", "default live members per room")
	str(&ring, "ring-timeout", "30s", "how long an invite rings")
	str(&kf, "keyframe-interval", "500ms", "least time between keyframe requests per track")
	boolean(&c.logJSON, "log-json", false, "log JSON instead of console lines")
	str(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	c.turn.register(fs, boolean)
	var tapAllow, p2pDeadline, tlsHosts, resumeGrace, iceDisc, iceKeep string
	str(&resumeGrace, "resume-grace", "20s", "how long a member whose connection dropped keeps its place and may resume (0: off)")
	str(&iceDisc, "ice-disconnected-timeout", "2s", "silence after which a media path counts as down and ICE restarts")
	str(&iceKeep, "ice-keepalive", "500ms", "how often the server checks an idle media path")
	str(&c.tlsCert, "tls-cert", "", "PEM certificate: serve HTTPS (cameras need a secure context off localhost)")
	str(&c.tlsKey, "tls-key", "", "PEM key for -tls-cert")
	boolean(&c.tlsSelfSigned, "tls-self-signed", false, "serve HTTPS with a certificate made at start for this machine's names and LAN IPs")
	str(&tlsHosts, "tls-hosts", "", "extra host names for -tls-self-signed, comma-separated")
	boolean(&c.p2p, "p2p", true, "let 1:1 calls try a direct connection before the SFU")
	boolean(&c.audioFirst, "audio-first", true, "pause a member's incoming video when its downlink cannot carry it, so that its audio stays whole")
	boolean(&c.p2pReturn, "p2p-return", true, "return a room to the direct path when it is back to two")
	str(&p2pDeadline, "p2p-deadline", "5s", "how long a direct attempt may take before the SFU takes over")
	str(&c.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (e.g. 127.0.0.1:9090); empty is off. It needs no token: keep it private")
	boolean(&c.pprof, "pprof", false, "also serve Go's profiles at /debug/pprof/ on -metrics-addr")
	var maxLive, maxWaiting, joinRate, maxLoad, drainTimeout, webhookURLs string
	str(&webhookURLs, "webhook-url", "", "send events (room, participant, call, path, recording) as signed JSON POSTs to these URLs, comma-separated")
	str(&c.webhookKey, "webhook-key", "", "HMAC-SHA256 key that signs webhooks (required with -webhook-url)")
	boolean(&c.webhookNames, "webhook-names", false, "put members' display names in webhooks (patient data: only to a backend that may hold it)")
	str(&drainTimeout, "drain-timeout", "10m", "on SIGTERM, how long running consults may go on while no new ones start (0: stop at once; a second SIGTERM stops now)")
	str(&maxLive, "max-live", "200", "people in calls on the whole server; past it new joins get server-busy (0: no limit)")
	str(&maxWaiting, "max-waiting", "50", "people waiting in one room (0: no limit)")
	str(&joinRate, "join-rate", "2", "joins per second from one address, in bursts of 4 s' worth (0: no limit)")
	str(&maxLoad, "max-load", "0", "refuse joins while the 1-minute load average per CPU is over this (0: off)")
	str(&c.recordDir, "record-dir", "recordings", "directory for recordings and RTP tap SDP files")
	str(&tapAllow, "tap-allow", "127.0.0.0/8,::1/128", "CIDRs RTP taps may send to")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	bad := func(name string, e error) error { return fmt.Errorf("-%s: %v", name, e) }
	if c.udpPort, err = strconv.Atoi(udpPort); err != nil {
		return c, bad("ice-udp-port", err)
	}
	if c.tcpPort, err = strconv.Atoi(tcpPort); err != nil {
		return c, bad("ice-tcp-port", err)
	}
	if c.capacity, err = strconv.Atoi(capacity); err != nil || c.capacity < 1 {
		return c, bad("room-capacity", fmt.Errorf("need a positive number, got %q", capacity))
	}
	if c.ringTimeout, err = time.ParseDuration(ring); err != nil {
		return c, bad("ring-timeout", err)
	}
	if c.keyframeInterval, err = time.ParseDuration(kf); err != nil {
		return c, bad("keyframe-interval", err)
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
	if c.p2pDeadline, err = time.ParseDuration(p2pDeadline); err != nil || c.p2pDeadline <= 0 {
		return c, bad("p2p-deadline", fmt.Errorf("want a positive duration, got %q", p2pDeadline))
	}
	dur := func(name, v string, min time.Duration) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			return 0, bad(name, fmt.Errorf("want a duration of at least %v, got %q", min, v))
		}
		return d, nil
	}
	if c.resumeGrace, err = dur("resume-grace", resumeGrace, 0); err != nil {
		return c, err
	}
	if c.iceDisconnected, err = dur("ice-disconnected-timeout", iceDisc, 100*time.Millisecond); err != nil {
		return c, err
	}
	if c.iceKeepalive, err = dur("ice-keepalive", iceKeep, 50*time.Millisecond); err != nil {
		return c, err
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
	if c.maxLive, err = strconv.Atoi(maxLive); err != nil || c.maxLive < 0 {
		return c, bad("max-live", fmt.Errorf("want a count, got %q", maxLive))
	}
	if c.maxWaiting, err = strconv.Atoi(maxWaiting); err != nil || c.maxWaiting < 0 {
		return c, bad("max-waiting", fmt.Errorf("want a count, got %q", maxWaiting))
	}
	if c.joinRate, err = strconv.ParseFloat(joinRate, 64); err != nil || c.joinRate < 0 {
		return c, bad("join-rate", fmt.Errorf("want joins per second, got %q", joinRate))
	}
	if c.maxLoad, err = strconv.ParseFloat(maxLoad, 64); err != nil || c.maxLoad < 0 {
		return c, bad("max-load", fmt.Errorf("want a load per CPU such as 0.9, got %q", maxLoad))
	}
	if c.drainTimeout, err = dur("drain-timeout", drainTimeout, 0); err != nil {
		return c, err
	}
	c.webhookURLs = splitList(webhookURLs)
	if len(c.webhookURLs) > 0 && c.webhookKey == "" {
		return c, fmt.Errorf("-webhook-url needs -webhook-key, which signs the events")
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
