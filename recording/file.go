package recording

import (
	"errors"
	"fmt"
	"os"
	"sort"
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

var errCodec = errors.New("recording: codec not recordable")

// waitSpan bounds how long a file waits for a track's codec private data
// (H.264 parameter sets) before it is written without that track. A tap
// starts at a keyframe, which a browser sends with its parameter sets, so
// this only ends the wait for a stream that never sends them.
const waitSpan = 10 * time.Second

// file is one participant's Matroska file (WebM for VP8, VP9 and Opus;
// Matroska proper once an H.264 track is in it): each tapped track writes
// its own block stream, and ebml-go interleaves them by timestamp. Blocks
// go to disk as they come (clusters of unknown size), so a file cut short
// by a crash is playable up to its last blocks; a clean close adds the
// duration and a seek index.
//
// The header holds each track's codec private data, which for H.264 is in
// the stream itself (its first keyframe's parameter sets). Until every
// track has it, blocks wait in memory, in arrival order, and go out
// sorted by time once the header is written.
type file struct {
	path        string
	participant string
	start       time.Time
	fail        func(error)                // reports the first write error to the recording
	skip        func(sfu.TrackInfo, error) // reports a track left out of the file
	matroska    bool

	tracks []*trackWriter

	mu      sync.Mutex
	fh      *os.File
	entries []webm.TrackEntry
	ready   []bool // the track's entry is complete (once begun: it is in the header)
	ended   []bool
	out     []webm.BlockWriteCloser // by track, once begun; nil for a track left out or closed
	begun   bool                    // the header is written (or the file given up)
	removed bool                    // nothing could be written: the file is gone
	pending []pendingBlock

	bytes   int64
	firstMS int64 // of the first block written; -1 before it
	lastMS  int64
	// per track, by index in tracks: its first and last blocks' times
	trackFirst, trackMS []int64
	closeOnce           sync.Once
}

type pendingBlock struct {
	track int
	key   bool
	ms    int64
	data  []byte
}

func trackEntry(n int, info sfu.TrackInfo) (e webm.TrackEntry, needsPrivate bool, err error) {
	e = webm.TrackEntry{Name: info.Kind, TrackNumber: uint64(n), TrackUID: uint64(n)}
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
	case strings.ToLower(webrtc.MimeTypeH264):
		e.CodecID, e.TrackType = "V_MPEG4/ISO/AVC", 1
		e.Video = &webm.Video{PixelWidth: 640, PixelHeight: 480}
		return e, true, nil
	default:
		return e, false, fmt.Errorf("%w: %s", errCodec, info.Codec)
	}
	return e, false, nil
}

// fileExt is the extension of a file holding these tracks: .mkv once
// one is H.264, which WebM cannot hold, else .webm.
func fileExt(infos []sfu.TrackInfo) string {
	for _, info := range infos {
		if strings.EqualFold(info.Codec, webrtc.MimeTypeH264) {
			return ".mkv"
		}
	}
	return ".webm"
}

// openFile creates the file and a writer per track. Tracks of a codec
// that cannot be recorded are reported to skip and left out; with none
// left, it returns errCodec. The file's time starts at start: now, or
// earlier when early taps hold packets from before.
func openFile(path string, infos []sfu.TrackInfo, start time.Time, fail func(error), skip func(sfu.TrackInfo, error)) (*file, error) {
	f := &file{path: path, start: start, fail: fail, skip: skip, firstMS: -1, matroska: fileExt(infos) == ".mkv"}
	var kept []sfu.TrackInfo
	for _, info := range infos {
		e, needsPrivate, err := trackEntry(len(f.entries)+1, info)
		if err != nil {
			skip(info, err)
			continue
		}
		f.entries = append(f.entries, e)
		f.ready = append(f.ready, !needsPrivate)
		kept = append(kept, info)
	}
	if len(f.entries) == 0 {
		return nil, errCodec
	}
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	f.fh = fh
	n := len(kept)
	f.ended, f.out = make([]bool, n), make([]webm.BlockWriteCloser, n)
	f.trackFirst, f.trackMS = make([]int64, n), make([]int64, n)
	for i := range kept {
		f.trackFirst[i], f.trackMS[i] = -1, -1
		f.tracks = append(f.tracks, newTrackWriter(f, i, kept[i]))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginIfReadyLocked(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *file) beginIfReadyLocked() error {
	for _, ok := range f.ready {
		if !ok {
			return nil
		}
	}
	return f.beginLocked()
}

// beginLocked writes the header with the tracks that are ready (the others
// are reported and left out), then the blocks that waited, in time order.
func (f *file) beginLocked() error {
	f.begun = true
	var entries []webm.TrackEntry
	var index []int // file track → f.tracks index
	for i, e := range f.entries {
		if !f.ready[i] {
			go f.skip(f.tracks[i].info, errNoParams) // the recording's lock comes before ours
			continue
		}
		e.TrackNumber, e.TrackUID = uint64(len(entries)+1), uint64(len(entries)+1)
		entries = append(entries, e)
		index = append(index, i)
	}
	pending := f.pending
	f.pending = nil
	if len(entries) == 0 {
		f.removed = true
		_ = f.fh.Close()
		return os.Remove(f.path)
	}
	header := *webm.DefaultEBMLHeader
	if f.matroska {
		header.DocType = "matroska"
		header.DocTypeVersion, header.DocTypeReadVersion = 4, 2
	}
	info := &webm.Info{TimecodeScale: 1000000, MuxingApp: "consult", WritingApp: "consult", DateUTC: f.start}
	sorter, err := mkvcore.NewMultiTrackBlockSorter(mkvcore.WithMaxDelayedPackets(64),
		mkvcore.WithSortRule(mkvcore.BlockSorterDropOutdated))
	if err != nil {
		_ = f.fh.Close()
		return err
	}
	ws, err := webm.NewSimpleBlockWriter(&sink{f: f.fh, fail: f.fail}, entries,
		mkvcore.WithEBMLHeader(&header),
		mkvcore.WithSegmentInfo(info), // our own: the library writes the duration into it
		mkvcore.WithBlockInterceptor(sorter),
		mkvcore.WithSeekHead(true), mkvcore.WithCues(cuesSpace),
		// ebml-go panics on a fatal error unless told otherwise. Write
		// errors never reach it (see sink); this is for the rest.
		mkvcore.WithOnFatalHandler(func(err error) { f.fail(err) }),
		mkvcore.WithOnErrorHandler(func(error) {}))
	if err != nil {
		_ = f.fh.Close()
		return err
	}
	for n, w := range ws {
		f.out[index[n]] = w
	}
	sort.SliceStable(pending, func(a, b int) bool { return pending[a].ms < pending[b].ms })
	for _, p := range pending {
		if w := f.out[p.track]; w != nil {
			if _, err := w.Write(p.key, p.ms, p.data); err != nil {
				return err
			}
			f.wroteLocked(p.track, len(p.data), p.ms)
		}
	}
	for i, w := range f.out {
		if w != nil && f.ended[i] {
			_ = w.Close()
			f.out[i] = nil
		}
	}
	return nil
}

// setPrivate completes a track's entry (an H.264 track's decoder
// configuration); the header goes out once every track has its own.
func (f *file) setPrivate(track int, private []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.begun || f.ready[track] {
		return
	}
	f.entries[track].CodecPrivate = private
	f.ready[track] = true
	if err := f.beginIfReadyLocked(); err != nil {
		go f.fail(err)
	}
}

// block writes one frame of a track (data is the file's from here on).
func (f *file) block(track int, key bool, ms int64, data []byte) error {
	f.mu.Lock()
	if !f.begun {
		f.pending = append(f.pending, pendingBlock{track: track, key: key, ms: ms, data: data})
		var err error
		if first := f.pending[0].ms; ms-first > waitSpan.Milliseconds() || len(f.pending) > 8192 {
			err = f.beginLocked()
		}
		f.mu.Unlock()
		return err
	}
	w := f.out[track]
	f.mu.Unlock()
	if w == nil {
		return nil
	}
	_, err := w.Write(key, ms, data)
	f.wrote(track, len(data), ms)
	return err
}

// endTrack closes a track's block stream; ebml-go finishes the file once
// all are closed. A file still waiting for a track's codec data is
// written, without the tracks still not ready, once all have ended.
func (f *file) endTrack(track int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended[track] {
		return
	}
	f.ended[track] = true
	if !f.begun {
		for _, e := range f.ended {
			if !e {
				return
			}
		}
		if err := f.beginLocked(); err != nil {
			go f.fail(err)
		}
		return
	}
	if w := f.out[track]; w != nil {
		_ = w.Close()
		f.out[track] = nil
	}
	// A track left out of the header has no writer; the file finishes
	// once the written ones close.
}

// gone reports a file that was removed, since none of its tracks could
// be written.
func (f *file) gone() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removed
}

func (f *file) wrote(track, n int, ms int64) {
	f.mu.Lock()
	f.wroteLocked(track, n, ms)
	f.mu.Unlock()
}

func (f *file) wroteLocked(track, n int, ms int64) {
	f.bytes += int64(n)
	if f.firstMS < 0 || ms < f.firstMS {
		f.firstMS = ms
	}
	f.lastMS = max(f.lastMS, ms)
	if f.trackFirst[track] < 0 || ms < f.trackFirst[track] {
		f.trackFirst[track] = ms
	}
	f.trackMS[track] = max(f.trackMS[track], ms)
}

// stats returns the bytes written and the media duration so far, of the
// file and of each track (where it starts in the file, and how long it
// runs), and when its first block was, as a player will see them: the muxer counts time from the
// file's first block (ebml-go writes block times relative to it, and the
// duration as the last less the first), not from the file's clock start,
// which early taps may put well before the first keyframe. A track with
// no block yet has zero for both.
func (f *file) stats() (int64, time.Duration, []TrackFileInfo, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	first := max(f.firstMS, 0)
	var d time.Duration
	if f.firstMS >= 0 {
		d = time.Duration(f.lastMS-first) * time.Millisecond
	}
	// Once the header is written, the tracks it holds, in its order;
	// before, every track that may still be.
	tracks := make([]TrackFileInfo, 0, len(f.tracks))
	for i, t := range f.tracks {
		if f.begun && !f.ready[i] { // left out of the header
			continue
		}
		ti := TrackFileInfo{Kind: t.info.Kind, Codec: t.info.Codec, Source: t.info.Source}
		if t0 := f.trackFirst[i]; t0 >= 0 {
			ti.Start = time.Duration(t0-first) * time.Millisecond
			ti.Duration = time.Duration(f.trackMS[i]-t0) * time.Millisecond
		}
		tracks = append(tracks, ti)
	}
	var at time.Time // the first block's wall clock
	if f.firstMS >= 0 {
		at = f.start.Add(time.Duration(f.firstMS) * time.Millisecond)
	}
	return f.bytes, d, tracks, at
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
