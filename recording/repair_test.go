package recording

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"consult/internal/testenv"
	"consult/sfu"
)

// testFrame is a frame for track 1 (VP8) or 2 (Opus) at ms.
type testFrame struct {
	track int
	key   bool
	ms    int64
	data  []byte
}

// memDisk is the file as ebml-go writes it: its bytes are what a kill -9
// leaves on disk at any moment.
type memDisk struct {
	mu sync.Mutex
	b  []byte
}

func (d *memDisk) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.b = append(d.b, p...)
	return len(p), nil
}

func (d *memDisk) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if need := int(off) + len(p); need > len(d.b) {
		d.b = append(d.b, make([]byte, need-len(d.b))...)
	}
	return copy(d.b[off:], p), nil
}

func (d *memDisk) Close() error { return nil }

func (d *memDisk) bytes() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.b)
}

// writeRecording writes the frames as openFile's writer does (its track
// entries, and its options to ebml-go copied from file.go, but for the
// space reserved for Cues) and returns the file as a kill -9 would leave
// it once the writer is idle, and as it is after a clean close.
func writeRecording(t testing.TB, frames []testFrame, cuesReserve int) (unfinished, closed []byte) {
	t.Helper()
	var entries []webm.TrackEntry
	for i, info := range []sfu.TrackInfo{{Kind: "video", Codec: webrtc.MimeTypeVP8}, {Kind: "audio", Codec: webrtc.MimeTypeOpus}} {
		e, _, err := trackEntry(i+1, info)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	info := &webm.Info{TimecodeScale: 1000000, MuxingApp: "consult", WritingApp: "consult", DateUTC: time.Now()}
	sorter, err := mkvcore.NewMultiTrackBlockSorter(mkvcore.WithMaxDelayedPackets(64),
		mkvcore.WithSortRule(mkvcore.BlockSorterDropOutdated))
	if err != nil {
		t.Fatal(err)
	}
	disk := &memDisk{}
	ws, err := webm.NewSimpleBlockWriter(disk, entries,
		mkvcore.WithSegmentInfo(info),
		mkvcore.WithBlockInterceptor(sorter),
		mkvcore.WithSeekHead(true), mkvcore.WithCues(cuesReserve),
		mkvcore.WithOnFatalHandler(func(err error) { t.Error(err) }),
		mkvcore.WithOnErrorHandler(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if _, err := ws[f.track-1].Write(f.key, f.ms, f.data); err != nil {
			t.Fatal(err)
		}
	}
	// The writer goroutine may still be writing the last frames it took:
	// idle is no growth over several polls.
	last, same := -1, 0
	testenv.Eventually(t, 10*time.Second, "the writer to go idle", func() bool {
		if n := len(disk.bytes()); n != last {
			last, same = n, 0
		} else {
			same++
		}
		return same >= 5
	})
	unfinished = disk.bytes()
	for _, w := range ws {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return unfinished, disk.bytes()
}

// clipFrames encodes secs of VP8 video (a keyframe a second) and Opus
// with ffmpeg and returns their frames in time order.
func clipFrames(t *testing.T, secs int) []testFrame {
	t.Helper()
	dir, d := t.TempDir(), strconv.Itoa(secs)
	ivf, ogg := filepath.Join(dir, "clip.ivf"), filepath.Join(dir, "clip.ogg")
	runTool(t, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", d,
		"-c:v", "libvpx", "-b:v", "300k", "-g", "30", "-deadline", "realtime", "-cpu-used", "8", ivf)
	runTool(t, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", d,
		"-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-page_duration", "20000", ogg)
	var frames []testFrame
	fv, err := os.Open(ivf)
	if err != nil {
		t.Fatal(err)
	}
	defer fv.Close()
	iv, _, err := ivfreader.NewWith(fv)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); ; i++ {
		b, _, err := iv.ParseNextFrame()
		if err != nil {
			break
		}
		frames = append(frames, testFrame{1, isKeyframe(b, false), i * 1000 / 30, b})
	}
	fa, err := os.Open(ogg)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	og, _, err := oggreader.NewWith(fa)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); ; {
		b, _, err := og.ParseNextPage()
		if err != nil {
			break
		}
		if !bytes.HasPrefix(b, []byte("OpusTags")) && !bytes.HasPrefix(b, []byte("OpusHead")) {
			frames = append(frames, testFrame{2, true, i * 20, b})
			i++
		}
	}
	sort.SliceStable(frames, func(i, j int) bool { return frames[i].ms < frames[j].ms })
	return frames
}

// fakeFrames are frames ffmpeg cannot decode but ebml-go writes as it
// writes any, enough for the file's structure: for ms, 25 video frames a
// second of size bytes (a keyframe every keyMS) and 50 audio frames.
func fakeFrames(ms int64, size int, keyMS int64) []testFrame {
	var frames []testFrame
	for t := int64(0); t < ms; t += 20 {
		frames = append(frames, testFrame{2, true, t, bytes.Repeat([]byte{0xfc}, size/8+1)})
		if t%40 == 0 {
			frames = append(frames, testFrame{1, t%keyMS == 0, t, bytes.Repeat([]byte{0x55}, size)})
		}
	}
	return frames
}

func writeTemp(t testing.TB, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rec.webm")
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

// probed is what ffprobe reads of a file: the format's duration (-1 if
// none), its streams, and each packet's stream and time.
type probed struct {
	duration float64
	streams  []string
	packets  []struct {
		stream int
		pts    float64
		key    bool
	}
}

func probeFile(t *testing.T, path string) probed {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "quiet", "-print_format", "json", "-show_format", "-show_streams",
		"-show_entries", "packet=stream_index,pts_time,flags", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var v struct {
		Format  struct{ Duration string }
		Streams []struct {
			CodecName string `json:"codec_name"`
		}
		Packets []struct {
			StreamIndex int    `json:"stream_index"`
			PTS         string `json:"pts_time"`
			Flags       string
		}
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	p := probed{duration: -1}
	if d, err := strconv.ParseFloat(v.Format.Duration, 64); err == nil {
		p.duration = d
	}
	for _, s := range v.Streams {
		p.streams = append(p.streams, s.CodecName)
	}
	for _, k := range v.Packets {
		pts, _ := strconv.ParseFloat(k.PTS, 64)
		p.packets = append(p.packets, struct {
			stream int
			pts    float64
			key    bool
		}{k.StreamIndex, pts, strings.HasPrefix(k.Flags, "K")})
	}
	return p
}

// span is the time from the first packet to the last.
func (p probed) span() float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, k := range p.packets {
		lo, hi = min(lo, k.pts), max(hi, k.pts)
	}
	return hi - lo
}

func near(got, want float64) bool { return math.Abs(got-want) <= 0.05*want }

// checkRepair repairs an unfinished file and checks what players see.
func checkRepair(t *testing.T, b []byte) {
	path := writeTemp(t, b)
	before := probeFile(t, path)
	if before.duration > 0.1 {
		t.Fatalf("before repair ffprobe reads a duration of %.3f s: the test cannot tell a repair", before.duration)
	}
	res, err := repair(path)
	if err != nil || !res.Repaired {
		t.Fatalf("repair: %+v, %v", res, err)
	}
	after, media := probeFile(t, path), before.span() // the packets on disk: the media written
	if media < 1 {
		t.Fatalf("only %.3f s of media in the file", media)
	}
	t.Logf("%d bytes: ffprobe reads %.3f s before repair, %.3f s after; repair: %+v; packets span %.3f s",
		len(b), before.duration, after.duration, res, media)
	if !near(after.duration, media) || !near(res.Duration.Seconds(), media) {
		t.Errorf("duration %.3f s (repair says %v), want the media's %.3f s", after.duration, res.Duration, media)
	}
	if len(after.packets) != res.Blocks || len(after.packets) < len(before.packets)-1 {
		t.Errorf("%d packets after repair (repair counts %d), %d before", len(after.packets), res.Blocks, len(before.packets))
	}
	if strings.Join(after.streams, ",") != "vp8,opus" {
		t.Errorf("streams %v, want vp8 and opus", after.streams)
	}
	for _, args := range [][]string{{"-i", path}, {"-ss", strconv.Itoa(int(media * 2 / 3)), "-i", path}} {
		args = append(append([]string{"-v", "error"}, args...), "-fps_mode", "vfr", "-f", "null", "-")
		if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	checkCues(t, path, after)
	fixed, _ := os.ReadFile(path)
	if res, err := repair(path); err != nil || res.Repaired {
		t.Errorf("second repair: %+v, %v", res, err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, fixed) {
		t.Error("a second repair changed the file")
	}
}

type cuesOnly struct {
	Segment struct {
		Cues struct {
			CuePoint []cuePoint `ebml:"CuePoint"`
		} `ebml:"Cues"`
	} `ebml:"Segment"`
}

// readCues reads a file's Cues with ebml-go (which stops at the unknown-
// size Clusters' end of file).
func readCues(t *testing.T, b []byte) cuesOnly {
	t.Helper()
	var v cuesOnly
	if err := ebml.Unmarshal(bytes.NewReader(b), &v); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ebml-go reads the repaired file: %v", err)
	}
	return v
}

// checkCues reads the Cues with ebml-go: one per video keyframe, or (with
// no video) one per Cluster, each at a Cluster.
func checkCues(t *testing.T, path string, p probed) {
	t.Helper()
	b, _ := os.ReadFile(path)
	v := readCues(t, b)
	keys := 0
	for _, k := range p.packets {
		if k.stream == 0 && k.key {
			keys++
		}
	}
	segData := bytes.Index(b, []byte{0x18, 0x53, 0x80, 0x67}) + 12
	cues, track, at := v.Segment.Cues.CuePoint, uint64(1), map[uint64]bool{}
	if keys == 0 {
		track, keys = 2, bytes.Count(b, []byte{0x1F, 0x43, 0xB6, 0x75}) // as good as Clusters in this media
	}
	if len(cues) != keys {
		t.Errorf("%d cues, want one per video keyframe or, with no video, per Cluster: %d", len(cues), keys)
	}
	for _, c := range cues {
		pos := segData + int(c.CueTrackPositions.CueClusterPosition)
		if c.CueTrackPositions.CueTrack != track || pos+4 > len(b) || !bytes.Equal(b[pos:pos+4], []byte{0x1F, 0x43, 0xB6, 0x75}) ||
			at[c.CueTrackPositions.CueClusterPosition] && track == 2 {
			t.Errorf("cue %+v does not point at a Cluster of track %d (or twice at one)", c, track)
		}
		at[c.CueTrackPositions.CueClusterPosition] = true
	}
}

func TestRepair(t *testing.T) {
	needFFmpeg(t)
	// 34 s: more than one Cluster (ebml-go starts one every 32.767 s).
	frames := clipFrames(t, 34)
	unfinished, closed := writeRecording(t, frames, cuesSpace)
	t.Run("Unfinished", func(t *testing.T) { checkRepair(t, unfinished) })
	t.Run("AudioOnly", func(t *testing.T) {
		var audio []testFrame // the camera never sent a frame
		for _, f := range frames {
			if f.track == 2 {
				audio = append(audio, f)
			}
		}
		b, _ := writeRecording(t, audio, cuesSpace)
		checkRepair(t, b)
	})
	t.Run("CutMidBlock", func(t *testing.T) {
		last := bytes.LastIndex(unfinished, []byte{0x1F, 0x43, 0xB6, 0x75})
		if last < 0 || bytes.Index(unfinished, []byte{0x1F, 0x43, 0xB6, 0x75}) == last {
			t.Fatal("the file should have more than one Cluster")
		}
		for _, cut := range []int{last + 5, last + 12, last + 20, (last + len(unfinished)) / 2, len(unfinished) - 301, len(unfinished) - 1} {
			t.Run(strconv.Itoa(cut), func(t *testing.T) { checkRepair(t, unfinished[:cut]) })
		}
	})
	t.Run("Finished", func(t *testing.T) {
		path := writeTemp(t, closed)
		res, err := repair(path)
		if err != nil || res.Repaired {
			t.Fatalf("repair of a closed file: %+v, %v", res, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, closed) {
			t.Error("repair changed a closed file")
		}
		if p := probeFile(t, path); !near(res.Duration.Seconds(), p.duration) {
			t.Errorf("repair reads %v of a closed file, ffprobe %.3f s", res.Duration, p.duration)
		}
	})
}

func TestRepairRefusesFilesWithoutHeader(t *testing.T) {
	unfinished, _ := writeRecording(t, fakeFrames(2000, 300, 1000), cuesSpace)
	// The header ends with Tracks, before the Void reserved for Cues.
	end := bytes.Index(unfinished, []byte{0xEC, 0x01, 0, 0, 0, 0, 0, (cuesSpace - 9) >> 8, (cuesSpace - 9) & 0xFF})
	if end < 0 {
		t.Fatal("no Void in the file")
	}
	for cut := range end { // from the empty file to all but the last byte of Tracks
		path := writeTemp(t, unfinished[:cut])
		if res, err := repair(path); !errors.Is(err, errUnrepairable) {
			t.Fatalf("repair of the file cut at %d (Tracks end at %d): %+v, %v; want errUnrepairable", cut, end, res, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, unfinished[:cut]) {
			t.Fatalf("repair changed the file cut at %d", cut)
		}
	}
	// Cut anywhere after the Tracks (in the Void, in the Clusters), the
	// file is repaired, once.
	cuts := []int{end, end + 1, end + 9, end + cuesSpace/2, end + cuesSpace - 1}
	for cut := end + cuesSpace; cut <= len(unfinished); cut += 1 + cut%251 {
		cuts = append(cuts, cut)
	}
	for _, cut := range cuts {
		path := writeTemp(t, unfinished[:cut])
		if res, err := repair(path); err != nil || !res.Repaired {
			t.Fatalf("repair of the file cut at %d: %+v, %v", cut, res, err)
		}
		if res, err := repair(path); err != nil || res.Repaired {
			t.Fatalf("second repair of the file cut at %d: %+v, %v", cut, res, err)
		}
	}
}

func TestRepairThinsCuesToFitTheVoid(t *testing.T) {
	// 200 keyframes over 40 s (two Clusters), 300 bytes for their Cues.
	unfinished, _ := writeRecording(t, fakeFrames(40000, 16, 200), 300)
	path := writeTemp(t, unfinished)
	if res, err := repair(path); err != nil || !res.Repaired || res.Duration < 39*time.Second {
		t.Fatalf("repair: %+v, %v", res, err)
	}
	b, _ := os.ReadFile(path)
	v := readCues(t, b)
	cues := v.Segment.Cues.CuePoint
	t.Logf("%d cues, %+v", len(cues), cues)
	if len(cues) < 4 || len(cues) > 20 || cues[0].CueTime != 0 || cues[len(cues)-1].CueTime < 30000 {
		t.Errorf("want a few cues from the start to the end, got %+v", cues)
	}
	// The Cues and a Void fill the reserved space: a Cluster follows it.
	cluster := bytes.Index(b, []byte{0x1F, 0x43, 0xB6, 0x75})
	if cues := bytes.LastIndex(b[:max(cluster, 0)], []byte{0x1C, 0x53, 0xBB, 0x6B}); cues+300 != cluster {
		t.Errorf("the Cues at %d do not fill the 300 bytes before the first Cluster at %d", cues, cluster)
	}
}

func TestRepairCutsADamagedTailOnly(t *testing.T) {
	unfinished, _ := writeRecording(t, fakeFrames(40000, 300, 1000), cuesSpace)
	// After a power cut the file's end can read as zeros: cut off.
	path := writeTemp(t, append(bytes.Clone(unfinished), make([]byte, 5000)...))
	if res, err := repair(path); err != nil || !res.Repaired {
		t.Fatalf("repair of a file ending in zeros: %+v, %v", res, err)
	}
	if b, _ := os.ReadFile(path); len(b) != len(unfinished) {
		t.Errorf("the repaired file has %d bytes, want the %d before the zeros", len(b), len(unfinished))
	}
	// Damage with Clusters after it: cutting there would lose them.
	block := bytes.Index(unfinished, []byte{0xA3, 0x41, 0x30, 0x81}) // a video SimpleBlock of 300+4 bytes
	second := bytes.LastIndex(unfinished, []byte{0x1F, 0x43, 0xB6, 0x75})
	if block < 0 || second < block {
		t.Fatalf("no SimpleBlock (%d) before a second Cluster (%d)", block, second)
	}
	damaged := bytes.Clone(unfinished)
	copy(damaged[block:], make([]byte, 8))
	path = writeTemp(t, damaged)
	if res, err := repair(path); !errors.Is(err, errUnrepairable) {
		t.Errorf("repair of a file damaged in its middle: %+v, %v; want errUnrepairable", res, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, damaged) {
		t.Error("repair changed a file it cannot repair")
	}
}

func FuzzRepair(f *testing.F) {
	unfinished, closed := writeRecording(f, fakeFrames(500, 8, 200), 200)
	f.Add(unfinished)
	f.Add(closed)
	for _, cut := range []int{0, 30, len(unfinished) / 2, len(unfinished) - 3} {
		f.Add(unfinished[:cut])
	}
	path := filepath.Join(f.TempDir(), "rec.webm") // a worker runs one input at a time
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
		res, err := repair(path)
		got, _ := os.ReadFile(path)
		if err != nil {
			if !errors.Is(err, errUnrepairable) || !bytes.Equal(got, b) {
				t.Fatalf("repair: %v, and the file changed: %v", err, !bytes.Equal(got, b))
			}
			return
		}
		if !res.Repaired && !bytes.Equal(got, b) || len(got) > len(b) {
			t.Fatalf("repair %+v changed %d bytes to %d", res, len(b), len(got))
		}
		if res, err := repair(path); err != nil || res.Repaired {
			t.Fatalf("second repair: %+v, %v", res, err)
		}
		if again, _ := os.ReadFile(path); !bytes.Equal(again, got) {
			t.Fatal("a second repair changed the file")
		}
	})
}
