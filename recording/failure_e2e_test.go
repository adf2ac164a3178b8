package recording_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"consult/internal/testenv"
	"consult/protocol"
	"consult/recording"
	"consult/sfu"
	"consult/signaling"
)

const childEnv = "CONSULT_RECORDING_CHILD_DIR"

// TestMain lets the test binary double as a server process that a test
// can kill mid-recording.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		childServer(dir)
		return
	}
	os.Exit(m.Run())
}

func childServer(dir string) {
	s, _ := sfu.New(sfu.Config{ICE: sfu.ICEConfig{IncludeLoopback: true}})
	var sig *signaling.Server
	rec, err := recording.New(recording.Config{Dir: dir, Tapper: s, Logger: zap.NewNop(),
		Notify: func(room string, active bool, err error) { sig.SetRecording(room, active, err) }})
	if err != nil {
		panic(err)
	}
	sig = signaling.New(signaling.Config{Media: signaling.SFUMedia(s), Observer: rec})
	mux := http.NewServeMux()
	mux.Handle("/", sig.Handler())
	mux.Handle("/api/recordings", rec.Handler(sig.RoomAccess))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	_ = http.Serve(ln, mux)
}

// startChild runs the test binary as a recording server on dir and
// returns its address.
func startChild(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+dir)
	out, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return child, strings.TrimSpace(line)
}

// A server killed with SIGKILL mid-recording leaves files that play up
// to their last blocks; the next start repairs them (duration and seek
// index from the blocks there) and lists the recording as recovered,
// with the files' hashes in its manifest.
func TestRecordingSurvivesAServerKill(t *testing.T) {
	needTools(t)
	ivf, ogg := makeClip(t, 10)
	dir := t.TempDir()
	child, addr := startChild(t, dir)

	pub := participant(t, "ws://"+addr+"/ws", "crash", "Patient", nil)
	stop := make(chan struct{})
	defer close(stop)
	go sendClip(t, publishClip(t, pub), ivf, ogg, stop)
	if code := post(t, "http://"+addr+"/api/recordings", `{"room":"crash"}`, nil); code != 200 {
		t.Fatalf("start: %d", code)
	}
	// Wait until a few seconds of media are on disk, then kill -9.
	var path string
	waitFor(t, "100 KB of recording", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "*.webm"))
		if len(m) == 1 {
			path = m[0]
			fi, err := os.Stat(path)
			return err == nil && fi.Size() > 100_000
		}
		return false
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	p := ffprobe(t, path)
	if len(p.Streams) != 2 {
		t.Fatalf("killed recording has streams %+v", p.Streams)
	}
	if d, _ := strconv.ParseFloat(p.Format.Duration, 64); d > 0.1 {
		t.Fatalf("a killed file already reads %.2f s: nothing to repair, the test cannot fail", d)
	}
	ends := lastPacketTimes(t, path)
	if ends[0] < 1 || ends[1] < 1 {
		t.Fatalf("killed recording holds too little: %v s", ends)
	}
	// -fps_mode vfr, as in the other recording checks: ffmpeg's null
	// output otherwise puts the frames on the constant rate it guesses,
	// where two land on one tick and read as "non monotonically
	// increasing dts" (seen here after the repair, on a busy machine).
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-fps_mode", "vfr", "-f", "null", "-").CombinedOutput(); err != nil {
		t.Fatalf("killed recording does not decode: %v\n%s", err, out)
	}
	t.Logf("after kill -9: %s readable, streams end at %v s", filepath.Base(path), ends)

	// The next start repairs it.
	_, addr = startChild(t, dir)
	var list []recording.Info
	get(t, "http://"+addr+"/api/recordings", &list)
	if len(list) != 1 || list[0].State != recording.StateRecovered || len(list[0].Files) != 1 || list[0].Error == "" {
		t.Fatalf("after the restart: %+v", list)
	}
	f := list[0].Files[0]
	d, _ := strconv.ParseFloat(ffprobe(t, path).Format.Duration, 64)
	last := max(ends[0], ends[1])
	if math.Abs(d-last) > 0.05*last || math.Abs(f.Duration.Seconds()-d) > 0.1 {
		t.Fatalf("repaired file reads %.2f s (its last packet at %.2f s), listed %v", d, last, f.Duration)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.SHA256 != sum(b) || f.Bytes != int64(len(b)) || f.Name != filepath.Base(path) {
		t.Fatalf("listed %+v, the file has %d bytes, hash %s", f, len(b), sum(b))
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-fps_mode", "vfr", "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("repaired recording decodes with: %v\n%s", err, out)
	}
	t.Logf("repaired: %.2f s, recording %s %s", d, list[0].ID, list[0].State)
}

func TestDiskFullStopsTheRecordingNotTheCall(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	// A real full disk: a 256 KiB tmpfs.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v: %s); run as root", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	ivf, ogg := makeClip(t, 20)
	st := startStack(t, dir)
	got := make(chan struct{}, 1000)
	admin := participant(t, st.url, "full", "Admin", func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := r.ReadRTP(); err != nil {
				return
			}
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	pub := participant(t, st.url, "full", "Patient", nil)
	stop := make(chan struct{})
	defer close(stop)
	go sendClip(t, publishClip(t, pub), ivf, ogg, stop)
	var info recording.Info
	if code := post(t, st.api+"/api/recordings", `{"room":"full"}`, &info); code != 200 {
		t.Fatalf("start: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()
	// The admin (no auth: everyone is) hears of the failure.
	e, err := admin.Await(ctx, protocol.TypeError)
	var pe protocol.Error
	if err != nil || e.Decode(&pe) != nil || pe.Code != protocol.ErrRecording {
		t.Fatalf("no recording error: %v %+v", err, pe)
	}
	waitFor(t, "failed state", func() bool { return st.rec.List()[0].State == recording.StateFailed })
	if l := st.rec.List()[0]; !strings.Contains(l.Error, "no space") {
		t.Fatalf("error %q", l.Error)
	}
	// The call goes on.
	for len(got) > 0 {
		<-got
	}
	for i := 0; i < 50; i++ {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("media stopped with the recording")
		}
	}
}

func TestUnwritableDirectoryFailsTheRecording(t *testing.T) {
	needTools(t)
	dir := filepath.Join(t.TempDir(), "rec")
	st := startStack(t, dir)
	pub := participant(t, st.url, "gone", "Patient", nil)
	ivf, ogg := makeClip(t, 3)
	stop := make(chan struct{})
	defer close(stop)
	go sendClip(t, publishClip(t, pub), ivf, ogg, stop)
	waitFor(t, "tracks", func() bool { return st.sfu.Stats().Tracks == 2 })
	// The directory is replaced by a file after start-up.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.rec.Start("gone", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed state", func() bool { return st.rec.List()[0].State == recording.StateFailed })
}
