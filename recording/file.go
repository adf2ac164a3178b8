package recording

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/webrtc/v4"

	"consult/sfu"
)

// cuesSpace is reserved at the front of each file for the seek index,
// written when the recording ends cleanly; about 20 bytes a cue.
const cuesSpace = 64 << 10

var errCodec = errors.New("recording: codec not recordable in WebM")

// file is one participant's WebM file: each tapped track writes its own
// block stream, and ebml-go interleaves them by timestamp. Blocks go to
// disk as they come (clusters of unknown size), so a file cut short by a
// crash is playable up to its last blocks; a clean close adds the
// duration and a seek index.
type file struct {
	path        string
	participant string
	start       time.Time
	fail        func(error) // reports the first write error to the recording

	tracks []*trackWriter

	mu      sync.Mutex
	bytes   int64
	firstMS int64 // of the first block written; -1 before it
	lastMS  int64
	// per track, by index in tracks: its first and last blocks' times
	trackFirst, trackMS []int64
	closeOnce           sync.Once
}

func trackEntry(n int, info sfu.TrackInfo) (webm.TrackEntry, error) {
	e := webm.TrackEntry{Name: info.Kind, TrackNumber: uint64(n), TrackUID: uint64(n)}
	switch strings.ToLower(info.Codec) {
	case strings.ToLower(webrtc.MimeTypeOpus):
		e.CodecID, e.TrackType = "A_OPUS", 2
		e.Audio = &webm.Audio{SamplingFrequency: 48000, Channels: 2}
		// Opus codec private data: the OpusHead of RFC 7845, which
		// players need to set up the decoder.
		e.CodecPrivate = []byte{'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0}
		e.CodecDelay, e.SeekPreRoll = 6500000, 80000000
	case strings.ToLower(webrtc.MimeTypeVP8):
		e.CodecID, e.TrackType = "V_VP8", 1
		e.Video = &webm.Video{PixelWidth: 640, PixelHeight: 480}
	case strings.ToLower(webrtc.MimeTypeVP9):
		e.CodecID, e.TrackType = "V_VP9", 1
		e.Video = &webm.Video{PixelWidth: 640, PixelHeight: 480}
	default:
		return e, fmt.Errorf("%w: %s", errCodec, info.Codec)
	}
	return e, nil
}

// openFile creates the file and a writer per track. Tracks whose codec
// WebM cannot hold (H.264) are skipped and reported in skipped.
// The file's time starts at start: now, or earlier when early taps hold
// packets from before.
func openFile(path string, infos []sfu.TrackInfo, start time.Time, fail func(error)) (*file, []sfu.TrackInfo, error) {
	var entries []webm.TrackEntry
	var kept, skipped []sfu.TrackInfo
	for _, info := range infos {
		e, err := trackEntry(len(entries)+1, info)
		if err != nil {
			skipped = append(skipped, info)
			continue
		}
		entries = append(entries, e)
		kept = append(kept, info)
	}
	if len(entries) == 0 {
		return nil, skipped, errCodec
	}
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return nil, skipped, err
	}
	f := &file{path: path, start: start, fail: fail, firstMS: -1,
		trackFirst: make([]int64, len(kept)), trackMS: make([]int64, len(kept))}
	for i := range f.trackMS {
		f.trackFirst[i], f.trackMS[i] = -1, -1
	}
	info := &webm.Info{TimecodeScale: 1000000, MuxingApp: "consult", WritingApp: "consult", DateUTC: f.start}
	sorter, err := mkvcore.NewMultiTrackBlockSorter(mkvcore.WithMaxDelayedPackets(64),
		mkvcore.WithSortRule(mkvcore.BlockSorterDropOutdated))
	if err != nil {
		_ = fh.Close()
		return nil, skipped, err
	}
	ws, err := webm.NewSimpleBlockWriter(&sink{f: fh, fail: fail}, entries,
		mkvcore.WithSegmentInfo(info), // our own: the library writes the duration into it
		mkvcore.WithBlockInterceptor(sorter),
		mkvcore.WithSeekHead(true), mkvcore.WithCues(cuesSpace),
		// ebml-go panics on a fatal error unless told otherwise. Write
		// errors never reach it (see sink); this is for the rest.
		mkvcore.WithOnFatalHandler(func(err error) { fail(err) }),
		mkvcore.WithOnErrorHandler(func(error) {}))
	if err != nil {
		_ = fh.Close()
		return nil, skipped, err
	}
	for i, w := range ws {
		f.tracks = append(f.tracks, newTrackWriter(f, i, kept[i], w))
	}
	return f, skipped, nil
}

func (f *file) wrote(track, n int, ms int64) {
	f.mu.Lock()
	f.bytes += int64(n)
	if f.firstMS < 0 || ms < f.firstMS {
		f.firstMS = ms
	}
	f.lastMS = max(f.lastMS, ms)
	if f.trackFirst[track] < 0 || ms < f.trackFirst[track] {
		f.trackFirst[track] = ms
	}
	f.trackMS[track] = max(f.trackMS[track], ms)
	f.mu.Unlock()
}

// stats returns the bytes written and the media duration so far, of the
// file and of each track (where it starts in the file, and how long it
// runs), as a player will see them: the muxer counts time from the
// file's first block (ebml-go writes block times relative to it, and the
// duration as the last less the first), not from the file's clock start,
// which early taps may put well before the first keyframe. A track with
// no block yet has zero for both.
func (f *file) stats() (int64, time.Duration, []TrackFileInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	first := max(f.firstMS, 0)
	var d time.Duration
	if f.firstMS >= 0 {
		d = time.Duration(f.lastMS-first) * time.Millisecond
	}
	tracks := make([]TrackFileInfo, len(f.tracks))
	for i, t := range f.tracks {
		tracks[i] = TrackFileInfo{Kind: t.info.Kind, Codec: t.info.Codec}
		if t0 := f.trackFirst[i]; t0 >= 0 {
			tracks[i].Start = time.Duration(t0-first) * time.Millisecond
			tracks[i].Duration = time.Duration(f.trackMS[i]-t0) * time.Millisecond
		}
	}
	return f.bytes, d, tracks
}

// close ends every track; ebml-go then finishes and closes the file.
func (f *file) close() {
	f.closeOnce.Do(func() {
		for _, t := range f.tracks {
			t.close()
		}
	})
}

// sink is the file as ebml-go sees it. After the first write error (disk
// full, file system gone) it reports the error once and then swallows
// writes: ebml-go stops its writer goroutine on an error, after which
// every block write would block forever, so it must never see one. The
// recording is stopped by whoever fail notifies.
type sink struct {
	f    *os.File
	fail func(error)
	mu   sync.Mutex
	err  error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		if _, err := s.f.Write(p); err != nil {
			s.err = err
			go s.fail(err)
		}
	}
	return len(p), nil
}

func (s *sink) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		if _, err := s.f.WriteAt(p, off); err != nil {
			s.err = err
			go s.fail(err)
		}
	}
	return len(p), nil
}

func (s *sink) Close() error { return s.f.Close() }
