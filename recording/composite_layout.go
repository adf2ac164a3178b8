// The composite's plan, as pure functions of a compositeJob: which
// participant files ffmpeg opens, where each video track sits on the
// output's timeline, how the output is cut into segments at every moment
// the set of visible tiles changes (a join, a leave, a screen share
// starting or stopping), and where each tile is drawn in each segment: a
// grid while only cameras are on, the newest screen share large with the
// cameras in a strip below it while one is on. Kept apart from running
// ffmpeg (composite.go) and from writing its filter graph
// (composite_graph.go) so the timeline and layout rules are unit-tested
// without media.

package recording

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

const (
	compositeFPS = 25
	// compositeBridge: a tile whose track stops and comes back (a new part
	// of the same participant) within this keeps its place, showing its
	// last frame, instead of the grid reshuffling twice.
	compositeBridge = time.Second
	compositeWidth  = 1280
	compositeHeight = 720
	compositeMaxDim = 4096
)

var errCompositeJob = errors.New("recording: bad composite job")

// compositeRect is a tile's box on the output; a track is scaled into it
// with its aspect kept and centred.
type compositeRect struct{ X, Y, W, H int }

// compositeTile is what the layout places: a participant's camera (all
// of that participant's files share it) or their screen share.
type compositeTile struct {
	Participant string
	Screen      bool
}

// compositeVideo is one video track that the output shows at some time.
type compositeVideo struct {
	Input, Stream int // ffmpeg input number, video stream number in it
	Tile          int // index in compositePlan.Tiles
	From, To      time.Duration
	Offset        time.Duration // where the track's first frame goes on the output
	Windows       []compositeWindow
}

// compositeWindow is a stretch of the output where a video is shown in
// one box.
type compositeWindow struct {
	From, To time.Duration
	Rect     compositeRect
}

// compositeAudio is one audio track, to be mixed in at Offset (negative:
// the track began before the recording, its start is cut).
type compositeAudio struct {
	Input, Stream int
	Offset        time.Duration
}

// compositePlaced is one tile drawn in a segment, from Video.
type compositePlaced struct {
	Tile, Video int
	Rect        compositeRect
}

// compositeSegment is a stretch of the output with one layout.
type compositeSegment struct {
	From, To time.Duration
	Tiles    []compositePlaced
}

type compositePlan struct {
	Length        time.Duration
	Width, Height int
	Paths         []string // ffmpeg inputs in order
	Tiles         []compositeTile
	Videos        []compositeVideo
	Audios        []compositeAudio
	Segments      []compositeSegment
}

// planComposite checks a job and lays it out. Times outside the
// recording are cut off; a track with no duration is left out (ffmpeg
// cannot set up a filter input that never gets a frame), and so is a
// file with no track left.
func planComposite(job compositeJob) (compositePlan, error) {
	p := compositePlan{Width: job.Width, Height: job.Height}
	if err := checkComposite(job); err != nil {
		return p, err
	}
	if p.Width == 0 && p.Height == 0 {
		p.Width, p.Height = compositeWidth, compositeHeight
	}
	p.Length = job.Stop.Sub(job.Start)
	tiles := map[compositeTile]int{}
	first := map[compositeTile]time.Duration{}
	var keys []compositeTile // of p.Videos
	for _, in := range job.Inputs {
		base := in.Start.Sub(job.Start)
		used := false
		video, audio := 0, 0
		for _, tr := range in.Tracks {
			from := base + tr.Start
			to := from + tr.Duration
			n := 0
			if tr.Kind == "video" {
				n, video = video, video+1
			} else {
				n, audio = audio, audio+1
			}
			if tr.Duration <= 0 || to <= 0 || from >= p.Length {
				continue
			}
			used = true
			if tr.Kind == "audio" {
				p.Audios = append(p.Audios, compositeAudio{Input: len(p.Paths), Stream: n, Offset: from})
				continue
			}
			t := compositeTile{Participant: in.Participant, Screen: tr.Screen}
			if f, ok := first[t]; !ok || from < f {
				first[t] = from
			}
			keys = append(keys, t)
			p.Videos = append(p.Videos, compositeVideo{Input: len(p.Paths), Stream: n,
				From: max(from, 0), To: min(to, p.Length), Offset: from})
		}
		if used {
			p.Paths = append(p.Paths, in.Path)
		}
	}
	// Tiles in the order they first appear, so the grid keeps who came
	// first where they were.
	for t := range first {
		p.Tiles = append(p.Tiles, t)
	}
	sort.Slice(p.Tiles, func(i, j int) bool {
		a, b := p.Tiles[i], p.Tiles[j]
		if first[a] != first[b] {
			return first[a] < first[b]
		}
		if a.Participant != b.Participant {
			return a.Participant < b.Participant
		}
		return !a.Screen && b.Screen
	})
	for i, t := range p.Tiles {
		tiles[t] = i
	}
	for i := range p.Videos {
		p.Videos[i].Tile = tiles[keys[i]]
	}
	p.Segments = segmentComposite(p)
	for _, s := range p.Segments {
		for _, t := range s.Tiles {
			v := &p.Videos[t.Video]
			if n := len(v.Windows); n > 0 && v.Windows[n-1].To == s.From && v.Windows[n-1].Rect == t.Rect {
				v.Windows[n-1].To = s.To
				continue
			}
			v.Windows = append(v.Windows, compositeWindow{From: s.From, To: s.To, Rect: t.Rect})
		}
	}
	// A video never shown (an older part overlapped by a newer one) is
	// not decoded at all.
	kept := p.Videos[:0]
	renumber := make([]int, len(p.Videos))
	for i, v := range p.Videos {
		renumber[i] = -1
		if len(v.Windows) > 0 {
			renumber[i] = len(kept)
			kept = append(kept, v)
		}
	}
	p.Videos = kept
	for _, s := range p.Segments {
		for j := range s.Tiles {
			s.Tiles[j].Video = renumber[s.Tiles[j].Video]
		}
	}
	return p, nil
}

func checkComposite(job compositeJob) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", errCompositeJob, fmt.Sprintf(format, a...))
	}
	switch {
	case job.Out == "":
		return bad("no output path")
	case len(job.Inputs) == 0:
		return bad("no inputs")
	case job.Start.IsZero() || job.Stop.IsZero():
		return bad("no start or stop time")
	case !job.Stop.After(job.Start):
		return bad("stop %v is not after start %v", job.Stop, job.Start)
	}
	if job.Width != 0 || job.Height != 0 {
		for _, d := range []int{job.Width, job.Height} {
			if d < 64 || d > compositeMaxDim || d%2 != 0 {
				return bad("output size %dx%d: each side even, 64 to %d", job.Width, job.Height, compositeMaxDim)
			}
		}
	}
	for i, in := range job.Inputs {
		if in.Path == "" {
			return bad("input %d has no path", i)
		}
		if in.Start.IsZero() {
			return bad("input %d has no start time", i)
		}
		for j, tr := range in.Tracks {
			if tr.Kind != "audio" && tr.Kind != "video" {
				return bad("input %d track %d: kind %q", i, j, tr.Kind)
			}
			if tr.Start < 0 || tr.Duration < 0 {
				return bad("input %d track %d: negative start or duration", i, j)
			}
		}
	}
	return nil
}

// segmentComposite cuts the output wherever a tile appears or goes, and
// lays out each stretch. A tile's presence is the union of its videos,
// with gaps shorter than compositeBridge filled; in a stretch it shows the
// newest of its videos that covers it, or in a filled gap the one that
// ended last.
func segmentComposite(p compositePlan) []compositeSegment {
	type span struct{ from, to time.Duration }
	presence := make([][]span, len(p.Tiles))
	cuts := []time.Duration{0, p.Length}
	byTile := make([][]int, len(p.Tiles))
	for i, v := range p.Videos {
		byTile[v.Tile] = append(byTile[v.Tile], i)
	}
	for t, vs := range byTile {
		sort.Slice(vs, func(i, j int) bool { return p.Videos[vs[i]].From < p.Videos[vs[j]].From })
		for _, i := range vs {
			v := p.Videos[i]
			cuts = append(cuts, v.From, v.To)
			ps := presence[t]
			if n := len(ps); n > 0 && v.From-ps[n-1].to < compositeBridge {
				ps[n-1].to = max(ps[n-1].to, v.To)
				continue
			}
			presence[t] = append(ps, span{v.From, v.To})
		}
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i] < cuts[j] })
	var segs []compositeSegment
	for k := 0; k+1 < len(cuts); k++ {
		a, b := cuts[k], cuts[k+1]
		if a == b {
			continue
		}
		var cams, screens []compositePlaced
		for t, ps := range presence {
			on := false
			for _, s := range ps {
				on = on || (s.from <= a && b <= s.to)
			}
			if !on {
				continue
			}
			pl := compositePlaced{Tile: t, Video: showing(p, byTile[t], a, b)}
			if p.Tiles[t].Screen {
				screens = append(screens, pl)
			} else {
				cams = append(cams, pl)
			}
		}
		tiles := layoutComposite(p, cams, screens)
		if n := len(segs); n > 0 && segs[n-1].To == a && samePlaces(segs[n-1].Tiles, tiles) {
			segs[n-1].To = b
			continue
		}
		segs = append(segs, compositeSegment{From: a, To: b, Tiles: tiles})
	}
	return segs
}

// showing picks the video of a tile for [a, b): the newest that covers
// it, else (a bridged gap) the one that ended last before it.
func showing(p compositePlan, vs []int, a, b time.Duration) int {
	best, ended := -1, -1
	for _, i := range vs {
		v := p.Videos[i]
		if v.From <= a && b <= v.To && (best < 0 || v.From >= p.Videos[best].From) {
			best = i
		}
		if v.To <= a && (ended < 0 || v.To >= p.Videos[ended].To) {
			ended = i
		}
	}
	if best < 0 {
		return ended
	}
	return best
}

func samePlaces(a, b []compositePlaced) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// layoutComposite places the tiles of one segment, cameras in the order
// of p.Tiles. Without a screen share: a grid of ceil(sqrt(n)) columns,
// a short last row centred. With one: the screen that came last fills
// the frame above a strip a fifth of its height, where the cameras and
// any other screens sit side by side, centred.
func layoutComposite(p compositePlan, cams, screens []compositePlaced) []compositePlaced {
	W, H := p.Width, p.Height
	if len(screens) == 0 {
		return gridComposite(cams, W, H)
	}
	main := 0
	for i, s := range screens {
		if p.Videos[s.Video].From >= p.Videos[screens[main].Video].From {
			main = i
		}
	}
	strip := append([]compositePlaced{}, cams...)
	for i, s := range screens {
		if i != main {
			strip = append(strip, s)
		}
	}
	out := []compositePlaced{screens[main]}
	if len(strip) == 0 {
		out[0].Rect = compositeRect{0, 0, W, H}
		return out
	}
	sh := even(H / 5)
	sw := even(sh * 16 / 9)
	if sw*len(strip) > W {
		sw = even(W / len(strip))
	}
	out[0].Rect = compositeRect{0, 0, W, H - sh}
	x := even((W - sw*len(strip)) / 2)
	for _, s := range strip {
		s.Rect = compositeRect{x, H - sh, sw, sh}
		out = append(out, s)
		x += sw
	}
	return out
}

func gridComposite(tiles []compositePlaced, W, H int) []compositePlaced {
	n := len(tiles)
	if n == 0 {
		return nil
	}
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	tw, th := even(W/cols), even(H/rows)
	out := make([]compositePlaced, 0, n)
	for i, t := range tiles {
		r, c := i/cols, i%cols
		inRow := min(cols, n-r*cols)
		x0 := even((W - inRow*tw) / 2)
		t.Rect = compositeRect{x0 + c*tw, even((H-rows*th)/2) + r*th, tw, th}
		out = append(out, t)
	}
	return out
}

func even(n int) int { return n &^ 1 }
