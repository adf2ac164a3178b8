package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"consult/internal/testenv"
	"consult/internal/testlog"
	"consult/recording"
	"consult/sfu"
	"consult/signaling"
	"consult/web"
)

// These tests drive the real client in headless Chromium against the
// whole server (SFU, signaling, web handler) started in-process, the way
// main.go wires it. Chromium's fake devices supply a moving test picture
// and a beep; its fake picker grants camera, microphone and screen.

// chromiumPath finds a Chromium or Chrome binary; $CHROMIUM overrides.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// testServer is the whole server on 127.0.0.1, which Chromium treats as
// a secure context (camera and microphone allowed over plain http).
type testServer struct {
	URL    string
	sig    *signaling.Server
	recDir string
	mu     sync.Mutex
	socks  []net.Conn // every signaling WebSocket, for dropConnections
}

// serverOptions changes the test server from main.go's defaults.
type serverOptions struct {
	ringTimeout time.Duration // 20 s when zero
	p2p         signaling.P2PConfig
	secret      string // auth on when set
	composite   bool   // stopped recordings composed into one MP4 (640x360)
	simulcast   bool   // browsers send their camera as layers
}

// startServer runs SFU + signaling + recording + web, wired as main.go
// wires them, with a short ring timeout.
func startServer(t *testing.T, ringTimeout time.Duration) *testServer {
	return startServerWith(t, serverOptions{ringTimeout: ringTimeout})
}

func startServerWith(t *testing.T, o serverOptions) *testServer {
	t.Helper()
	if o.ringTimeout == 0 {
		o.ringTimeout = 20 * time.Second
	}
	if o.p2p.HandoverTimeout == 0 {
		// A path hand-over must end because both pages receive on the new
		// path (the tests check it), which a busy machine may take seconds
		// to do; the product's 4 s bound is for cameras that are off.
		o.p2p.HandoverTimeout = 30 * time.Second
	}
	if o.p2p.Deadline == 0 {
		// Likewise a direct attempt: the tests that expect the direct path
		// check that the pages get there, which took two pages on a loaded
		// machine more than the product's 5 s; on a real network an
		// attempt that slow fails.
		o.p2p.Deadline = testenv.Scale(15 * time.Second)
	}
	log := testlog.New(t)
	ts := &testServer{recDir: t.TempDir()}
	s, err := sfu.New(sfu.Config{Logger: log.Named("sfu"), ICE: sfu.ICEConfig{IncludeLoopback: true, Interfaces: []string{"lo"}},
		OnSpeakers: func(room string, sp sfu.Speakers) { ts.sig.Speakers(room, sp) }})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := recording.New(recording.Config{Dir: ts.recDir, Tapper: s, Logger: log.Named("recording"),
		Notify:    func(room string, active bool, err error) { ts.sig.SetRecording(room, active, err) },
		Composite: o.composite, CompositeWidth: 640, CompositeHeight: 360})
	if err != nil {
		t.Fatal(err)
	}
	ts.sig = signaling.New(signaling.Config{Logger: log.Named("signaling"), Media: signaling.SFUMedia(s), Secret: []byte(o.secret),
		RingTimeout: o.ringTimeout, Observer: rec, Recorder: rec, P2P: o.p2p, Simulcast: o.simulcast})
	sig := ts.sig
	mux := http.NewServeMux()
	mux.Handle("/ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig.Handler().ServeHTTP(&hijackTracker{ResponseWriter: w, ts: ts}, r)
	}))
	mux.Handle("/api/", sig.Handler())
	recAPI := rec.Handler(sig.RoomAccess)
	mux.Handle("/api/recordings", recAPI)
	mux.Handle("/api/recordings/", recAPI)
	mux.Handle("/healthz", sig.Handler())
	mux.Handle("/", web.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(5*time.Second))
		defer cancel()
		_ = sig.Shutdown(ctx)
		hs.Close()
		rec.Close()
		_ = s.Close()
	})
	ts.URL = hs.URL
	return ts
}

// dropConnections cuts every signaling socket, as a network failure
// would: no close frame, the TCP connection just ends.
func (ts *testServer) dropConnections() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.socks {
		_ = c.Close()
	}
	n := len(ts.socks)
	ts.socks = nil
	return n
}

// dropConnection cuts the i-th signaling socket (in the order they were
// opened), as a network failure would.
func (ts *testServer) dropConnection(t *testing.T, i int) {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if i >= len(ts.socks) {
		t.Fatalf("no socket %d (%d open)", i, len(ts.socks))
	}
	_ = ts.socks[i].Close()
}

// hijackTracker records the connection the WebSocket upgrade takes over.
type hijackTracker struct {
	http.ResponseWriter
	ts *testServer
}

func (h *hijackTracker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.ts.mu.Lock()
		h.ts.socks = append(h.ts.socks, c)
		h.ts.mu.Unlock()
	}
	return c, rw, err
}

// The package shares one headless Chromium: starting one takes a second
// or two of a busy machine, and a browser per test left a dozen behind when
// a run was killed. Each test gets fresh tabs (a tab that has just left a
// call may hold its camera and encoder for a while), on its own origin (its
// own test server), so no page sees another test's state. Tests run one
// after another: headless Chromium paints, and so lets chromedp click in,
// only the tab in front, which parallel tests would fight over. Pages are
// bounded all the same (maxPages), so a test that opened too many would
// fail at once instead of starving the machine.
var shared struct {
	once   sync.Once
	ctx    context.Context // the browser's first tab, kept open
	cancel func()
	err    error
}

// maxPages bounds the tabs open at once across the package.
const maxPages = 6

var pageSlots = make(chan struct{}, maxPages)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
	}
	os.Exit(code)
}

func sharedBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("no Chromium found (install Debian's chromium, or set $CHROMIUM): browser tests skipped")
	}
	shared.once.Do(func() {
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.UserDataDir(filepath.Join(os.TempDir(), fmt.Sprintf("consult-chromium-%d", os.Getpid()))),
			chromedp.WindowSize(1280, 800),
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("use-fake-ui-for-media-stream", true),
			// getDisplayMedia picks the (fake) screen without a picker.
			chromedp.Flag("auto-select-desktop-capture-source", "Entire screen"),
			chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.Flag("disable-extensions", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("mute-audio", true),
			// Tabs of one headless browser must all keep running at full speed.
			chromedp.Flag("disable-background-timer-throttling", true),
			chromedp.Flag("disable-renderer-backgrounding", true),
			chromedp.Flag("disable-backgrounding-occluded-windows", true),
			// Plain host candidates instead of mDNS names, which the SFU does
			// not resolve.
			chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns,Translate,MediaRouter"),
		}
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		shared.ctx = bctx
		shared.cancel = func() {
			cancelBrowser()
			cancelAlloc()
			_ = os.RemoveAll(filepath.Join(os.TempDir(), fmt.Sprintf("consult-chromium-%d", os.Getpid())))
		}
		shared.err = chromedp.Do(bctx)
	})
	if shared.err != nil {
		t.Fatalf("start Chromium: %v", shared.err)
	}
	return shared.ctx
}

// pages is one test's use of the shared browser.
type pages struct {
	t    *testing.T
	ctx  context.Context // ends with the test, or after its limit
	max  int             // tabs reserved
	mu   sync.Mutex
	open int // tabs open now
}

// newPages reserves n tabs of the shared browser for the test (n says how
// many pages it has open at once) and opens the first len(names) of them,
// each ready when this returns; page opens the rest. The pages close with
// the test; limit (scaled to the machine) bounds everything the test does
// with them.
func newPages(t *testing.T, limit time.Duration, n int, names ...string) (*pages, []context.Context) {
	t.Helper()
	browser := sharedBrowser(t)
	if n > maxPages || len(names) > n {
		t.Fatalf("a test may hold %d pages at once (asked for %d, opening %d)", maxPages, n, len(names))
	}
	for range n {
		select {
		case pageSlots <- struct{}{}:
		case <-testenv.After(limit):
			t.Fatal("no free browser pages")
		}
	}
	t.Cleanup(func() {
		for range n {
			<-pageSlots
		}
	})
	ctx, cancel := context.WithTimeout(browser, testenv.Scale(limit))
	t.Cleanup(cancel)
	ps := &pages{t: t, ctx: ctx, max: n}
	out := make([]context.Context, len(names))
	for i, name := range names {
		out[i], _ = ps.tab(name)
	}
	return ps, out
}

// page opens another of the test's tabs.
func (ps *pages) page(name string) context.Context {
	ps.t.Helper()
	ctx, _ := ps.tab(name)
	return ctx
}

// tab opens a tab and returns it with the function that closes it (the
// test's end closes it too). It waits until the tab is attached and blank.
func (ps *pages) tab(name string) (context.Context, func()) {
	t := ps.t
	t.Helper()
	ps.mu.Lock()
	if ps.open == ps.max {
		ps.mu.Unlock()
		t.Fatalf("opening page %s: the test reserved %d pages and all are open", name, ps.max)
	}
	ps.open++
	ps.mu.Unlock()
	ctx, cancel := chromedp.NewContext(ps.ctx)
	var once sync.Once
	closeTab := func() {
		once.Do(func() {
			// Close the target itself, so the next test starts with the
			// browser's tabs it had before.
			_ = chromedp.Cancel(ctx)
			cancel()
			ps.mu.Lock()
			ps.open--
			ps.mu.Unlock()
		})
	}
	t.Cleanup(closeTab)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab %s: %v", name, err)
	}
	logConsole(t, ctx, name)
	return ctx, closeTab
}

// logConsole copies the page's warnings, errors and exceptions into the
// test log, which is where a failing browser test is diagnosed.
func logConsole(t *testing.T, ctx context.Context, name string) {
	cctx, stop := context.WithCancel(ctx)
	msgs := chromedp.Console(cctx)
	done := make(chan struct{})
	t.Cleanup(func() {
		stop()
		<-done
	})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning {
				t.Logf("[%s console] %s", name, m)
			}
		}
	}()
}

// front brings a tab to the front. Headless Chromium paints, and so lets
// chromedp click in, only the tab in front; the others keep running.
func front(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, page.BringToFront, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
}

// click clicks like a person: real input events on the element, so the
// page gets a user gesture (getDisplayMedia needs one).
func click(t *testing.T, ctx context.Context, sel chromedp.CSS) {
	t.Helper()
	front(t, ctx)
	do(t, ctx, chromedp.Click(sel, chromedp.NodeVisible))
}

func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor evaluates js every 150 ms until ok accepts its value or the
// deadline (timeout, scaled to the machine) passes; it returns the
// accepted value. The last value is in
// the failure message, which usually says what went wrong.
func waitFor[T any](t *testing.T, ctx context.Context, what string, timeout time.Duration, js string, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(testenv.Scale(timeout))
	var last T
	var lastErr error
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
		if err == nil && ok(v) {
			return v
		}
		last, lastErr = v, err
		if time.Now().After(deadline) || ctx.Err() != nil {
			b, _ := json.Marshal(last)
			t.Fatalf("timed out waiting for %s; last value %s, error %v", what, b, lastErr)
		}
		select {
		case <-ctx.Done():
		case <-time.After(150 * time.Millisecond):
		}
	}
}

// remoteVideo is what a page shows of one remote participant.
type remoteVideo struct {
	PID      string `json:"pid"`
	Name     string `json:"name"`
	Width    int    `json:"w"`
	Height   int    `json:"h"`
	Frames   int    `json:"frames"`
	Video    string `json:"video"`
	AudioOff string `json:"audioMuted"`
	VideoOff string `json:"videoMuted"`
}

const remoteVideosJS = `[...document.querySelectorAll('.tile[data-remote]')].map(t => {
  const v = t.querySelector('video');
  return {pid: t.dataset.pid, name: t.querySelector('.name').textContent, w: v.videoWidth, h: v.videoHeight,
    frames: v.getVideoPlaybackQuality().totalVideoFrames, video: t.dataset.video || '',
    audioMuted: t.dataset.audioMuted || '', videoMuted: t.dataset.videoMuted || ''};
})`

// waitVideoFlowing waits until the page shows want remote videos that
// all have a picture, then until every one of them has decoded at least
// 10 more frames: the media really flows, it is not one frozen frame.
func waitVideoFlowing(t *testing.T, ctx context.Context, page string, want int) []remoteVideo {
	t.Helper()
	first := waitFor(t, ctx, fmt.Sprintf("%s to show %d remote videos", page, want), 30*time.Second, remoteVideosJS,
		func(vs []remoteVideo) bool {
			if len(vs) != want {
				return false
			}
			for _, v := range vs {
				if v.Width == 0 || v.Frames == 0 {
					return false
				}
			}
			return true
		})
	base := map[string]int{}
	for _, v := range first {
		base[v.PID] = v.Frames
	}
	return waitFor(t, ctx, page+"'s remote videos to advance", 20*time.Second, remoteVideosJS, func(vs []remoteVideo) bool {
		if len(vs) != want {
			return false
		}
		for _, v := range vs {
			if v.Frames < base[v.PID]+10 {
				return false
			}
		}
		return true
	})
}

// artifactDir is <repo>/testdata/artifacts, which git ignores.
func artifactDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "testdata", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the page at the given viewport size as PNG.
func screenshot(t *testing.T, ctx context.Context, name string, w, h int64, mobile bool) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if mobile {
		opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	front(t, ctx)
	do(t, ctx, chromedp.EmulateViewport(w, h, opts...))
	// Let the layout settle on the new size (ResizeObserver, then a frame).
	eval[bool](t, ctx, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// roomURL is a clinician's link: /?room=R&name=N&role=host, plus
// autojoin=1 if asked (the server runs without auth here).
func roomURL(base, room, name string, autojoin bool) string {
	return inviteURL(base, room, name, "host", autojoin)
}

// guestURL is a patient's link: role=guest, so the page waits to be let in.
func guestURL(base, room, name string, autojoin bool) string {
	return inviteURL(base, room, name, "guest", autojoin)
}

func inviteURL(base, room, name, role string, autojoin bool) string {
	q := url.Values{"room": {room}, "name": {name}, "role": {role}}
	if autojoin {
		q.Set("autojoin", "1")
	}
	return base + "/?" + q.Encode()
}
