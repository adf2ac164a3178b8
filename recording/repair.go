package recording

// Repair of recordings cut short. ebml-go writes a file's duration and its
// seek index (Cues) only when the recording is closed; a crash (kill -9, a
// power cut) leaves a placeholder duration, an empty Void reserved for the
// Cues and maybe half an element at the end, so players show no length and
// cannot seek. repair walks the file's EBML elements with a reader of its
// own that reads element headers only (never the media, never a buffer sized
// by the file), keeps what is whole, and patches the file in place: it cuts
// off the torn tail (after a power cut it may be zeros rather than missing),
// writes Cues into the Void, and writes the duration last, so that a repair
// itself cut short leaves the file unfinished, to be repaired again.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"time"

	"github.com/at-wat/ebml-go"
)

// RepairResult says what repair found and did.
type RepairResult struct {
	Repaired bool          // the file was unfinished and has been fixed
	Duration time.Duration // from the first block to the last, as a player shows it
	Blocks   int           // in a repaired file (a finished one is read up to its Clusters only)
}

var errUnrepairable = errors.New("recording: file cannot be repaired")

// EBML and Matroska element IDs, with their length marker bits.
const (
	idEBML, idSegment, idCluster, idCues    = 0x1A45DFA3, 0x18538067, 0x1F43B675, 0x1C53BB6B
	idSeekHead, idSeek, idSeekID, idSeekPos = 0x114D9B74, 0x4DBB, 0x53AB, 0x53AC
	idInfo, idTimecodeScale, idDuration     = 0x1549A966, 0x2AD7B1, 0x4489
	idTracks, idTrackEntry, idTrackNumber   = 0x1654AE6B, 0xAE, 0xD7
	idTrackType, idTimecode, idSimpleBlock  = 0x83, 0xE7, 0xA3
	idVoid                                  = 0xEC
)

// How an element header reads: whole (it, and its data if the size is
// known, end by the limit), short (the file ends first: a torn write), or
// bad (not EBML: damage).
const whole, short, bad = 0, 1, 2

// element is an element's header; size is -1 when unknown (a Cluster or
// a Segment being written).
type element struct {
	id              uint32
	off, data, size int64
}

func (e element) end() int64 { return e.data + e.size }

// reader reads small pieces of the file through a fixed window.
type reader struct {
	f      *os.File
	size   int64
	win    [64 << 10]byte
	buf    []byte
	bufOff int64
	err    error // a read error other than the end of the file
}

// at returns n bytes (at most the window) at off, fewer at the file's end.
func (r *reader) at(off int64, n int) []byte {
	if off < r.bufOff || off+int64(n) > r.bufOff+int64(len(r.buf)) {
		k, err := r.f.ReadAt(r.win[:], off)
		if err != nil && err != io.EOF && r.err == nil {
			r.err = err
		}
		r.buf, r.bufOff = r.win[:k], off
	}
	return r.buf[off-r.bufOff : min(off-r.bufOff+int64(n), int64(len(r.buf)))]
}

// vint decodes a variable-length integer; an ID keeps its marker bit.
func vint(b []byte, id bool) (v uint64, n, st int) {
	if len(b) == 0 {
		return 0, 0, short
	} else if n = bits.LeadingZeros8(b[0]) + 1; n > 8 || id && n > 4 {
		return 0, 0, bad
	} else if len(b) < n {
		return 0, 0, short
	}
	if v = uint64(b[0]); !id {
		v &= 0xFF >> n
	}
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n, whole
}

// header reads the element at off, which must end by limit.
func (r *reader) header(off, limit int64) (element, int) {
	b := r.at(off, 12)
	b = b[:max(min(limit-off, int64(len(b))), 0)]
	id, n, st := vint(b, true)
	if st != whole {
		return element{}, st
	}
	size, m, st := vint(b[n:], false)
	e := element{id: uint32(id), off: off, data: off + int64(n+m), size: int64(size)}
	if st == whole && size == 1<<(7*m)-1 {
		e.size = -1
	} else if st == whole && e.size > limit-e.data {
		st = short
	}
	return e, st
}

// uint reads an unsigned integer element (its first 8 bytes, if longer).
func (r *reader) uint(e element) (v uint64) {
	for _, c := range r.at(e.data, int(min(e.size, 8))) {
		v = v<<8 | uint64(c)
	}
	return v
}

// visit calls fn for each element tiling [off, end) and, depth levels
// down, in the master elements repair reads; false if they do not tile.
func (r *reader) visit(off, end int64, depth int, fn func(e element)) bool {
	for off < end {
		e, st := r.header(off, end)
		if st != whole || e.size < 0 {
			return false
		}
		fn(e)
		switch e.id {
		case idSeekHead, idSeek, idInfo, idTracks, idTrackEntry:
			if depth > 0 && !r.visit(e.data, e.end(), depth-1, fn) {
				return false
			}
		}
		off = e.end()
	}
	return true
}

// layout is what the elements before the first Cluster say.
type layout struct {
	segData, segEnd int64 // the Segment's data, the origin of seek positions
	scale           int64 // ns per tick of the file's timecodes
	placeholder     int64 // offset of a placeholder Duration's value; 0: none
	duration        float64
	cuesAt, space   int64 // the Void the SeekHead reserves for Cues, and its size
	video           map[uint64]bool
	clusters        int64 // where the Clusters (or the torn tail) start
}

// head reads the EBML header and the Segment's elements up to its first
// Cluster.
func (r *reader) head() (layout, error) {
	hdr, st := r.header(0, r.size)
	seg, st2 := r.header(hdr.end(), r.size)
	if st != whole || hdr.id != idEBML || hdr.size < 0 || st2 != whole || seg.id != idSegment {
		return layout{}, fmt.Errorf("%w: no EBML header and Segment", errUnrepairable)
	}
	l := layout{segData: seg.data, segEnd: r.size, scale: 1000000, video: map[uint64]bool{}}
	if seg.size >= 0 {
		l.segEnd = seg.end()
	}
	var seekID, track uint64
	var info, tracks bool
	for l.clusters = seg.data; ; {
		e, st := r.header(l.clusters, l.segEnd)
		if st != whole || e.id == idCluster || e.size < 0 {
			break
		} else if e.id == idVoid && e.off == l.cuesAt {
			l.space = e.end() - e.off
		}
		info, tracks = info || e.id == idInfo, tracks || e.id == idTracks
		if !r.visit(e.off, e.end(), 2, func(c element) {
			switch c.id {
			case idSeekID:
				seekID = r.uint(c)
			case idSeekPos:
				if pos := r.uint(c); seekID == idCues && pos < uint64(r.size) && l.cuesAt == 0 {
					l.cuesAt = l.segData + int64(pos)
				}
			case idTimecodeScale:
				if s := r.uint(c); s > 0 && s < 1<<40 {
					l.scale = int64(s)
				}
			case idDuration: // ebml-go writes a float64
				if c.size == 8 && l.placeholder == 0 {
					l.duration = math.Float64frombits(binary.BigEndian.Uint64(r.at(c.data, 8)))
					if l.duration == math.SmallestNonzeroFloat64 {
						l.placeholder = c.data
					}
				}
			case idTrackNumber: // before TrackType, as ebml-go writes them
				track = r.uint(c)
			case idTrackType:
				l.video[track] = l.video[track] || r.uint(c) == 1
			}
		}) {
			return layout{}, fmt.Errorf("%w: damaged element at byte %d", errUnrepairable, e.off)
		}
		l.clusters = e.end()
	}
	if !info || !tracks {
		return layout{}, fmt.Errorf("%w: no whole Segment Info and Tracks", errUnrepairable)
	}
	return l, nil
}

// cuePoint is a Cues entry, as ebml-go marshals it.
type cuePoint struct {
	CueTime           uint64 `ebml:"CueTime"`
	CueTrackPositions struct {
		CueTrack           uint64 `ebml:"CueTrack"`
		CueClusterPosition uint64 `ebml:"CueClusterPosition"`
	} `ebml:"CueTrackPositions"`
}

// cueList keeps every stride-th cue it is given, and past a limit halves
// itself and doubles the stride: cues spread over the file, in bounded memory.
type cueList struct {
	points       []cuePoint
	stride, seen int
}

func (c *cueList) add(t int64, track uint64, cluster, limit int64) {
	if c.seen++; (c.seen-1)%max(c.stride, 1) != 0 || limit == 0 {
		return
	}
	var p cuePoint
	p.CueTime, p.CueTrackPositions.CueTrack, p.CueTrackPositions.CueClusterPosition = uint64(t), track, uint64(cluster)
	if c.points = append(c.points, p); int64(len(c.points)) > limit {
		c.points, c.stride = halve(c.points), max(c.stride, 1)*2
	}
}

func halve(cues []cuePoint) []cuePoint {
	for i := range (len(cues) + 1) / 2 {
		cues[i] = cues[2*i]
	}
	return cues[:(len(cues)+1)/2]
}

// walk is what the Clusters hold.
type walk struct {
	keep, damaged  int64 // the file is whole up to keep; not EBML from damaged (if > 0)
	blocks         int
	first, last    int64   // block times
	keys, clusters cueList // cues at video keyframes, and at each Cluster's first block
}

func (r *reader) clusters(l layout) walk {
	w := walk{keep: l.clusters}
	var tc, cluster int64
	var timed, cued bool // timed: past the Timecode of the Cluster being read (or out of Clusters)
	for off := l.clusters; off < l.segEnd; {
		e, st := r.header(off, l.segEnd)
		if st == whole && e.size < 0 && e.id != idCluster {
			st = bad
		}
		var b []byte
		if st == whole && e.id == idSimpleBlock {
			b = r.at(e.data, int(min(e.size, 12)))
		}
		track, n, vst := vint(b, false) // a block's track, then its int16 time and flags
		if b != nil && (!timed || vst != whole || len(b) < n+3) {
			st = bad
		}
		if st == bad {
			w.damaged = off
		}
		if st != whole {
			return w // torn after w.keep
		}
		// A Cluster's children follow its header (whatever its size); it is
		// kept from its Timecode on.
		switch off = e.end(); {
		case e.id == idCluster:
			cluster, timed, cued, off = e.off-l.segData, false, false, e.data
		case e.id >= 1<<28:
			timed = true // a top-level element, after the Clusters
		case e.id == idTimecode:
			tc, timed = int64(r.uint(e)), true
		case e.id == idSimpleBlock:
			t := tc + int64(int16(binary.BigEndian.Uint16(b[n:])))
			if w.blocks == 0 {
				w.first, w.last = t, t
			}
			w.first, w.last, w.blocks = min(w.first, t), max(w.last, t), w.blocks+1
			if b[n+2]&0x80 != 0 && l.video[track] {
				w.keys.add(t, track, cluster, l.space/16)
			}
			if !cued {
				w.clusters.add(t, track, cluster, l.space/16)
				cued = true
			}
		}
		if timed {
			w.keep = off
		}
	}
	if timed {
		w.keep = r.size
	}
	return w
}

// clusterAfter reports whether a Cluster's ID appears after off: there is
// media after the damage, which cutting it off would lose.
func (r *reader) clusterAfter(off int64) bool {
	for p := off + 1; p < r.size; p += int64(len(r.win)) - 3 {
		if bytes.Contains(r.at(p, len(r.win)), []byte{0x1F, 0x43, 0xB6, 0x75}) {
			return true
		}
	}
	return false
}

// encodeCues returns Cues for the space and the header of a Void for what
// they leave, with every other cue until they fit; nils if none fit.
func encodeCues(cues []cuePoint, space int64) ([]byte, []byte) {
	for ; len(cues) > 0; cues = halve(cues) {
		var v struct {
			Cues struct {
				CuePoint []cuePoint `ebml:"CuePoint"`
			} `ebml:"Cues"`
		}
		var b bytes.Buffer
		if v.Cues.CuePoint = cues; ebml.Marshal(&v, &b) != nil {
			return nil, nil
		}
		switch rest := space - int64(b.Len()); {
		case rest == 0:
			return b.Bytes(), nil
		case rest >= 2 && rest < 2+127:
			return b.Bytes(), []byte{idVoid, 0x80 | byte(rest-2)}
		case rest >= 9:
			return b.Bytes(), binary.BigEndian.AppendUint64([]byte{idVoid}, uint64(rest-9)|1<<56)
		case len(cues) == 1:
			return nil, nil
		}
	}
	return nil, nil
}

// repair checks a file this package wrote; if it is unfinished (placeholder
// duration), it cuts off any partly written trailing element, writes the real
// duration (last block time less first, in the file's timecode scale) and, if
// they fit the reserved Void, the Cues (one per video keyframe, or per cluster),
// in place, and fsyncs. A finished file is left untouched (Repaired false).
// A file without a complete EBML header/Segment Info/Tracks returns errUnrepairable.
// It is for files no longer being written (found after a restart).
func repair(path string) (RepairResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return RepairResult{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return RepairResult{}, err
	}
	r := &reader{f: f, size: fi.Size()}
	l, err := r.head()
	if r.err != nil || err != nil {
		return RepairResult{}, errors.Join(r.err, err)
	} else if l.placeholder == 0 {
		return RepairResult{Duration: time.Duration(l.duration * float64(l.scale))}, nil
	}
	w := r.clusters(l)
	if w.damaged > 0 && r.clusterAfter(w.damaged) {
		return RepairResult{}, fmt.Errorf("%w: damaged at byte %d, with media after it", errUnrepairable, w.damaged)
	} else if r.err != nil {
		return RepairResult{}, r.err
	}
	points := w.keys.points
	if len(points) == 0 { // no video, or no keyframe
		points = w.clusters.points
	}
	cues, void := encodeCues(points, l.space)
	var d [8]byte
	binary.BigEndian.PutUint64(d[:], math.Float64bits(float64(w.last-w.first)))
	out, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return RepairResult{}, err
	}
	defer out.Close()
	// Each step leaves a file that reads: the Void for what the Cues leave
	// goes inside the old one before the Cues overwrite its header, and the
	// duration goes last (until it is on disk, the file is unfinished).
	for _, step := range []func() error{
		func() error { return out.Truncate(w.keep) },
		func() error { _, err := out.WriteAt(void, l.cuesAt+int64(len(cues))); return err },
		out.Sync,
		func() error { _, err := out.WriteAt(cues, l.cuesAt); return err },
		out.Sync,
		func() error { _, err := out.WriteAt(d[:], l.placeholder); return err },
		out.Sync,
		out.Close,
	} {
		if err := step(); err != nil {
			return RepairResult{}, err
		}
	}
	return RepairResult{Repaired: true, Blocks: w.blocks, Duration: time.Duration(w.last-w.first) * time.Duration(l.scale)}, nil
}
