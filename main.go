// Command consult is a WebRTC media server for video consults: signaling
// over WebSocket, an SFU, and the browser client, in one binary.
//
//	go run .                 serve on :8080 with embedded defaults
//	go run . token -h        mint a join token
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"consult/cluster"
	"consult/metrics"
	"consult/recording"
	"consult/sfu"
	"consult/signaling"
	"consult/web"
	"consult/webhook"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "token" {
		os.Exit(tokenCmd(os.Args[2:], os.Stdout, os.Stderr))
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := newLogger(cfg.logJSON, cfg.logLevel)
	defer func() { _ = log.Sync() }()
	drain, now, stop := watchSignals()
	defer stop()
	if err := run(drain, now, cfg, log, nil); err != nil {
		log.Error("server stopped", zap.Error(err))
		os.Exit(1)
	}
}

func newLogger(json bool, level string) *zap.Logger {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		lvl = zapcore.InfoLevel
	}
	zc := zap.NewProductionConfig()
	if !json {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		zc.DisableStacktrace = true
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	log, err := zc.Build()
	if err != nil {
		return zap.NewNop()
	}
	return log
}

// watchSignals turns SIGTERM or SIGINT into drain (the first) and now
// (the second): a deploy's stop drains, an impatient second one ends the
// consults at once.
func watchSignals() (drain, now context.Context, stop func()) {
	drain, endDrain := context.WithCancel(context.Background())
	now, endNow := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	quit := make(chan struct{})
	go func() {
		for n := 0; n < 2; n++ {
			select {
			case <-ch:
			case <-quit:
				return
			}
			if n == 0 {
				endDrain()
			} else {
				endNow()
			}
		}
	}()
	return drain, now, func() {
		signal.Stop(ch)
		close(quit)
		endDrain()
		endNow()
	}
}

// run serves until ctx ends (or an admin asks for a drain), then drains:
// no new rooms, running consults go on until they end, -drain-timeout
// passes or now ends. Then it tells clients, closes PeerConnections,
// finishes recordings and returns. ready, when set, gets the HTTP address
// once it listens.
func run(ctx, now context.Context, cfg config, log *zap.Logger, ready func(addr string)) error {
	ice := sfu.ICEConfig{PublicIPs: cfg.publicIPs, Interfaces: cfg.interfaces,
		DisconnectedTimeout: cfg.iceDisconnected, Keepalive: cfg.iceKeepalive,
		IncludeLoopback: cfg.iceLoopback, PortMin: cfg.portMin, PortMax: cfg.portMax}
	if cfg.udpPort > 0 {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{Port: cfg.udpPort})
		if err != nil {
			return fmt.Errorf("ICE UDP port: %w", err)
		}
		defer udp.Close()
		ice.UDPMux = udp
	}
	if cfg.tcpPort > 0 {
		tcp, err := net.ListenTCP("tcp", &net.TCPAddr{Port: cfg.tcpPort})
		if err != nil {
			return fmt.Errorf("ICE TCP port: %w", err)
		}
		defer tcp.Close()
		ice.TCPListener = tcp
	}
	mon := metrics.New()
	// sig is set before any client can reach a room, so before the SFU
	// has a speaker to report.
	var sig *signaling.Server
	media, err := sfu.New(sfu.Config{Logger: log.Named("sfu"), KeyframeInterval: cfg.keyframeInterval,
		KeepVideo: !cfg.audioFirst, ICE: ice, OnLinkReport: mon.ObserveLink, OnFirstMedia: mon.ObserveFirstMedia,
		OnSpeakers: func(room string, sp sfu.Speakers) { sig.Speakers(room, sp) }})
	if err != nil {
		return err
	}
	defer media.Close()

	iceServers, turnStats, stopTURN, err := startTURN(cfg.turn, cfg.publicIPs, log.Named("turn"))
	if err != nil {
		return err
	}
	defer stopTURN()

	var hooks *webhook.Sender // nil: no webhooks (its methods take that)
	if len(cfg.webhookURLs) > 0 {
		if hooks, err = webhook.New(webhook.Config{URLs: cfg.webhookURLs, Key: []byte(cfg.webhookKey),
			Logger: log.Named("webhook")}); err != nil {
			return err
		}
		defer func() { // what is queued, after the consults have ended
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hooks.Close(ctx)
		}()
	}
	composite := cfg.recordComposite
	if _, err := exec.LookPath("ffmpeg"); composite && err != nil {
		log.Warn("no ffmpeg on PATH: recordings are not composed into one MP4 (apt-get install ffmpeg)")
		composite = false
	}
	rec, err := recording.New(recording.Config{Dir: cfg.recordDir, Tapper: media, Logger: log.Named("recording"),
		ForwardAllow: cfg.tapAllow, Keep: cfg.recordKeep, Composite: composite,
		Notify:   func(room string, active bool, err error) { sig.SetRecording(room, active, err) },
		OnChange: func(in recording.Info) { hooks.Send(recordingEvent(in)) },
		Incomplete: func(in recording.Info, err error) {
			sig.RecordingIncomplete(in.Room, err)
			hooks.Send(recordingIncompleteEvent(in))
		},
		MayRecord: func(room string) bool { return sig.MayRecord(room) }})
	if err != nil {
		return err
	}
	defer rec.Close()

	// The listener comes first: a cluster node advertises its address.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	scheme := "http"
	if cfg.tlsCert != "" || cfg.tlsSelfSigned {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	var node *cluster.Cluster // nil: a single node
	var clusterCfg signaling.Cluster
	webOpt := web.Options{}
	if cfg.cluster.redis != "" {
		if node, err = newNode(cfg, ln.Addr(), scheme, media, func() *signaling.Server { return sig }, log); err != nil {
			return err
		}
		clusterCfg, webOpt.ConnectSources = node, node.SocketOrigins
	}

	sig = signaling.New(signaling.Config{Logger: log.Named("signaling"), Media: signaling.SFUMedia(media),
		Cluster: clusterCfg, LocalWhenDown: cfg.cluster.fallback == "local", Origins: cfg.cluster.allowOrigins,
		Secret: []byte(cfg.secret), Capacity: cfg.capacity, RingTimeout: cfg.ringTimeout, ICEServers: iceServers,
		Observer: rec, Recorder: rec, P2P: signaling.P2PConfig{Disabled: !cfg.p2p, Deadline: cfg.p2pDeadline, NoReturn: !cfg.p2pReturn},
		ResumeGrace: resumeGrace(cfg.resumeGrace),
		Simulcast:   cfg.simulcast,
		Admission: signaling.AdmissionConfig{MaxLive: cfg.maxLive, MaxWaiting: cfg.maxWaiting, JoinRate: cfg.joinRate,
			Overloaded: loadGuard(cfg.maxLoad)},
		EventNames: cfg.webhookNames,
		OnEvent: func(e signaling.Event) {
			hooks.Send(webhook.Event{Type: e.Type, Room: e.Room, Participant: e.Participant, Data: e.Data})
		}})

	mon.SetSources(metrics.Sources{SFU: media.Stats, Census: sig.Census, Signaling: sig.Counters,
		TURN: turnStats, Recordings: rec.List, Webhooks: hooks.Stats})
	if cfg.metricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg, mon, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	mux := http.NewServeMux()
	mux.Handle("/ws", sig.Handler())
	mux.Handle("/api/", sig.Handler())
	recAPI := rec.Handler(sig.RoomAccess)
	mux.Handle("/api/recordings", recAPI)
	mux.Handle("/api/recordings/", recAPI)
	mux.Handle("/api/taps", recAPI)
	mux.Handle("/api/taps/", recAPI)
	mux.Handle("/healthz", sig.Handler())
	mux.Handle("/", web.HandlerWith(webOpt))
	srv := &http.Server{Addr: cfg.addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if node != nil {
		defer registerNode(node)() // after the shutdown: its rooms' placements go with it
	}
	logListening(log, scheme, ln.Addr(), zap.Int("iceUDPPort", cfg.udpPort), zap.Bool("auth", cfg.secret != ""),
		zap.Bool("cluster", node != nil))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-sig.DrainStarted():
	}
	sig.Drain()
	drainUntil(sig, now, cfg.drainTimeout, log)
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sig.Shutdown(sctx); err != nil {
		log.Warn("clients did not all leave in time", zap.Error(err))
	}
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// recordingEvent is the webhook for a recording that started or ended;
// an ended one lists its files, with sizes and durations.
func recordingEvent(in recording.Info) webhook.Event {
	data := map[string]any{"recording": in.ID}
	if in.Participant != "" {
		data["of"] = in.Participant
	}
	if in.State == recording.StateRecording {
		return webhook.Event{Type: "recording-started", Room: in.Room, Data: data}
	}
	files := []map[string]any{}
	for _, f := range in.Files {
		files = append(files, map[string]any{"file": filepath.Base(f.Path), "participant": f.Participant,
			"bytes": f.Bytes, "durationMs": f.Duration.Milliseconds()})
	}
	data["files"], data["state"] = files, in.State
	if in.Error != "" {
		data["error"] = in.Error
	}
	return webhook.Event{Type: "recording-finished", Room: in.Room, Data: data}
}

// recordingIncompleteEvent names the tracks a recording runs without
// (ids, kinds, codecs and why; no names).
func recordingIncompleteEvent(in recording.Info) webhook.Event {
	missing := []map[string]any{}
	for _, m := range in.Missing {
		missing = append(missing, map[string]any{"participant": m.Participant, "track": m.Track,
			"kind": m.Kind, "codec": m.Codec, "reason": m.Reason})
	}
	return webhook.Event{Type: "recording-incomplete", Room: in.Room, Data: map[string]any{"recording": in.ID, "missing": missing}}
}

// drainUntil waits for the consults to end, at most timeout (0: not at
// all), or until now ends.
func drainUntil(sig *signaling.Server, now context.Context, timeout time.Duration, log *zap.Logger) {
	if timeout <= 0 || sig.Idle() {
		return
	}
	log.Info("draining", zap.Duration("timeout", timeout))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	check := time.NewTicker(250 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case <-now.Done():
			log.Info("drain cut short")
			return
		case <-deadline.C:
			log.Info("drain timeout: ending the consults still running")
			return
		case <-check.C:
			if sig.Idle() {
				log.Info("drained: every consult has ended")
				return
			}
		}
	}
}

// serveMetrics serves /metrics (and pprof, if asked for) on its own
// listener, which should be reachable from the monitoring network only:
// it needs no token.
func serveMetrics(cfg config, mon *metrics.Metrics, log *zap.Logger) (func(), error) {
	ln, err := net.Listen("tcp", cfg.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	srv := &http.Server{Handler: mon.Handler(cfg.pprof), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("metrics listening", zap.String("url", "http://"+ln.Addr().String()+"/metrics"), zap.Bool("pprof", cfg.pprof))
	return func() { _ = srv.Close() }, nil
}

// tlsConfig loads the configured certificate or makes a self-signed one.
func tlsConfig(cfg config) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if cfg.tlsCert != "" {
		cert, err = tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	} else {
		cert, err = web.SelfSignedCert(cfg.tlsHosts)
	}
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// resumeGrace maps the flag to signaling's setting, where zero means the
// default and a negative value turns resuming off.
func resumeGrace(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
