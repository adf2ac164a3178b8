// Unit tests of the composite's plan and command line: where the output
// is cut at joins, leaves and screen shares, how each layout is placed,
// which jobs are refused, what is cut off outside the recording, and the
// ffmpeg arguments and filter graph that realise it. They run no ffmpeg.

package recording

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var compositeT0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// avFile is a participant file present from at (seconds into the
// recording) for n seconds, with a camera and a microphone track and
// any more tracks after them.
func avFile(path, who string, at, n float64, more ...compositeTrack) compositeInput {
	return compositeInput{Path: path, Participant: who, Start: compositeT0.Add(secs(at)),
		Tracks: append([]compositeTrack{{Kind: "video", Duration: secs(n)}, {Kind: "audio", Duration: secs(n)}}, more...)}
}

// consultJob is a 12 s consult: A throughout, B leaving at 6 s, C joining
// at 3 s and in a second part from 6 s sharing a screen from 7 s.
func consultJob(dir string) compositeJob {
	return compositeJob{Out: filepath.Join(dir, "out.mp4"), Start: compositeT0, Stop: compositeT0.Add(12 * time.Second),
		Width: 640, Height: 360, Inputs: []compositeInput{
			avFile(filepath.Join(dir, "a.webm"), "pa", 0, 12),
			avFile(filepath.Join(dir, "b.webm"), "pb", 0, 6),
			avFile(filepath.Join(dir, "c1.webm"), "pc", 3, 3),
			avFile(filepath.Join(dir, "c2.webm"), "pc", 6, 6, compositeTrack{Kind: "video", Screen: true, Start: secs(1), Duration: secs(5)}),
		}}
}

// placed is a segment's layout as "participant[/screen]@x,y,w,h" in
// drawing order.
func placed(p compositePlan, s compositeSegment) []string {
	var out []string
	for _, t := range s.Tiles {
		tile := p.Tiles[t.Tile]
		name := tile.Participant
		if tile.Screen {
			name += "/screen"
		}
		r := t.Rect
		out = append(out, name+"@"+strings.Join([]string{strconv.Itoa(r.X), strconv.Itoa(r.Y), strconv.Itoa(r.W), strconv.Itoa(r.H)}, ","))
	}
	return out
}

func planOf(t *testing.T, job compositeJob) compositePlan {
	t.Helper()
	p, err := planComposite(job)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompositeSegmentsFollowJoinsAndLeaves(t *testing.T) {
	p := planOf(t, consultJob("/rec"))
	want := []struct {
		from, to float64
		tiles    string
	}{
		{0, 3, "pa@0,0,320,360 pb@320,0,320,360"},
		{3, 6, "pa@0,0,320,180 pb@320,0,320,180 pc@160,180,320,180"}, // a short last row is centred
		{6, 7, "pa@0,0,320,360 pc@320,0,320,360"},
		{7, 12, "pc/screen@0,0,640,288 pa@192,288,128,72 pc@320,288,128,72"},
	}
	if len(p.Segments) != len(want) {
		for _, s := range p.Segments {
			t.Logf("%v-%v %v", s.From, s.To, placed(p, s))
		}
		t.Fatalf("%d segments, want %d", len(p.Segments), len(want))
	}
	for i, w := range want {
		s := p.Segments[i]
		if s.From != secs(w.from) || s.To != secs(w.to) || strings.Join(placed(p, s), " ") != w.tiles {
			t.Errorf("segment %d: %v-%v %v, want %v-%vs %s", i, s.From, s.To, placed(p, s), w.from, w.to, w.tiles)
		}
	}
	// C's camera tile shows its first file until 6 s, then its second.
	c := func(s compositeSegment) compositeVideo {
		for _, t := range s.Tiles {
			if p.Tiles[t.Tile] == (compositeTile{Participant: "pc"}) {
				return p.Videos[t.Video]
			}
		}
		return compositeVideo{}
	}
	if c1, c2 := c(p.Segments[1]), c(p.Segments[2]); c1.Input != 2 || c2.Input != 3 || c2.Stream != 0 {
		t.Errorf("C's tile shows input %d then %d:v:%d, want 2 then 3:v:0", c1.Input, c2.Input, c2.Stream)
	}
}

func TestCompositeScreenShareIsTheMainTile(t *testing.T) {
	job := consultJob("/rec")
	// A shares a screen too, from 2 s to 9 s: alone it is the main tile;
	// once C's screen comes (7 s), C's is, and A's joins the strip.
	job.Inputs = append(job.Inputs, compositeInput{Path: "/rec/a-screen.webm", Participant: "pa",
		Start: compositeT0.Add(secs(2)), Tracks: []compositeTrack{{Kind: "video", Screen: true, Duration: secs(7)}}})
	p := planOf(t, job)
	at := func(s float64) string {
		for _, seg := range p.Segments {
			if seg.From <= secs(s) && secs(s) < seg.To {
				return strings.Join(placed(p, seg), " ")
			}
		}
		return ""
	}
	for _, c := range []struct {
		at   float64
		want string
	}{
		{1, "pa@0,0,320,360 pb@320,0,320,360"},
		{2.5, "pa/screen@0,0,640,288 pa@192,288,128,72 pb@320,288,128,72"},
		{8, "pc/screen@0,0,640,288 pa@128,288,128,72 pc@256,288,128,72 pa/screen@384,288,128,72"},
		{10, "pc/screen@0,0,640,288 pa@192,288,128,72 pc@320,288,128,72"},
	} {
		if got := at(c.at); got != c.want {
			t.Errorf("at %vs: %s, want %s", c.at, got, c.want)
		}
	}
	// A screen alone fills the frame.
	alone := compositeJob{Out: "/rec/o.mp4", Start: compositeT0, Stop: compositeT0.Add(secs(5)), Inputs: []compositeInput{{
		Path: "/rec/s.webm", Participant: "pa", Start: compositeT0, Tracks: []compositeTrack{{Kind: "video", Screen: true, Duration: secs(5)}}}}}
	if p := planOf(t, alone); len(p.Segments) != 1 || strings.Join(placed(p, p.Segments[0]), " ") != "pa/screen@0,0,1280,720" {
		t.Errorf("a lone screen in the default size: %+v", p.Segments)
	}
}

func TestCompositeGridShapes(t *testing.T) {
	for n, want := range map[int]string{
		1: "0,0,640,360",
		2: "0,0,320,360 320,0,320,360",
		4: "0,0,320,180 320,0,320,180 0,180,320,180 320,180,320,180",
		5: "2,0,212,180 214,0,212,180 426,0,212,180 108,180,212,180 320,180,212,180", // 212 wide rows, centred
		7: "2,0,212,120 214,0,212,120 426,0,212,120 2,120,212,120 214,120,212,120 426,120,212,120 214,240,212,120",
	} {
		var got []string
		for _, t := range gridComposite(make([]compositePlaced, n), 640, 360) {
			r := t.Rect
			got = append(got, strconv.Itoa(r.X)+","+strconv.Itoa(r.Y)+","+strconv.Itoa(r.W)+","+strconv.Itoa(r.H))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%d tiles: %s, want %s", n, strings.Join(got, " "), want)
		}
	}
}

func TestCompositeBridgesAShortGap(t *testing.T) {
	job := func(gap float64) compositeJob {
		return compositeJob{Out: "/rec/o.mp4", Start: compositeT0, Stop: compositeT0.Add(secs(12)), Width: 640, Height: 360,
			Inputs: []compositeInput{avFile("/rec/q.webm", "q", 0, 12), avFile("/rec/p1.webm", "p", 0, 5), avFile("/rec/p2.webm", "p", 5+gap, 7-gap)}}
	}
	// 0.5 s between P's parts: P keeps its tile, its first part's last
	// frame held until the second part starts.
	p := planOf(t, job(0.5))
	for _, s := range p.Segments {
		if got := strings.Join(placed(p, s), " "); got != "p@0,0,320,360 q@320,0,320,360" {
			t.Errorf("%v-%v: %s", s.From, s.To, got)
		}
	}
	if v := p.Videos[1]; v.Input != 1 || len(v.Windows) != 1 || v.Windows[0].To != secs(5.5) {
		t.Errorf("P's first part shown %+v, want until 5.5 s", v.Windows)
	}
	// 3 s: P leaves and comes back.
	p = planOf(t, job(3))
	if len(p.Segments) != 3 || strings.Join(placed(p, p.Segments[1]), " ") != "q@0,0,640,360" ||
		p.Segments[1].From != secs(5) || p.Segments[1].To != secs(8) {
		t.Errorf("a 3 s gap: %+v", p.Segments)
	}
}

func TestCompositeRefusesBadJobs(t *testing.T) {
	ok := consultJob("/rec")
	for name, change := range map[string]func(*compositeJob){
		"no inputs":      func(j *compositeJob) { j.Inputs = nil },
		"no output":      func(j *compositeJob) { j.Out = "" },
		"stop at start":  func(j *compositeJob) { j.Stop = j.Start },
		"stop before":    func(j *compositeJob) { j.Stop = j.Start.Add(-time.Second) },
		"no start":       func(j *compositeJob) { j.Start = time.Time{} },
		"odd width":      func(j *compositeJob) { j.Width = 641 },
		"one side only":  func(j *compositeJob) { j.Height = 0 },
		"negative size":  func(j *compositeJob) { j.Width, j.Height = -640, -360 },
		"input no path":  func(j *compositeJob) { j.Inputs[0].Path = "" },
		"input no start": func(j *compositeJob) { j.Inputs[1].Start = time.Time{} },
		"kind":           func(j *compositeJob) { j.Inputs[1].Tracks[0].Kind = "data" },
		"negative start": func(j *compositeJob) { j.Inputs[2].Tracks[0].Start = -time.Second },
		"negative length": func(j *compositeJob) {
			j.Inputs[2].Tracks[1].Duration = -time.Second
		},
	} {
		j := ok
		j.Inputs = append([]compositeInput{}, ok.Inputs...)
		for i := range j.Inputs {
			j.Inputs[i].Tracks = append([]compositeTrack{}, j.Inputs[i].Tracks...)
		}
		change(&j)
		if _, err := compositeArgs(j); !errors.Is(err, errCompositeJob) {
			t.Errorf("%s: %v, want errCompositeJob", name, err)
		}
		if err := (&composer{}).submit(j, nil, nil); !errors.Is(err, errCompositeJob) {
			t.Errorf("%s: submit: %v", name, err)
		}
	}
	if _, err := compositeArgs(ok); err != nil {
		t.Fatal(err)
	}
}

func TestCompositeCutsTimesOutsideTheRecording(t *testing.T) {
	job := compositeJob{Out: "/rec/o.mp4", Start: compositeT0, Stop: compositeT0.Add(secs(10)), Inputs: []compositeInput{
		avFile("/rec/before.webm", "a", -8, 5), // over before the start
		avFile("/rec/early.webm", "b", -2, 6),  // began 2 s before it
		avFile("/rec/after.webm", "c", 10, 5),  // after the stop
		{Path: "/rec/empty.webm", Participant: "d", Start: compositeT0.Add(secs(1)), Tracks: []compositeTrack{
			{Kind: "video"}, {Kind: "audio", Duration: secs(3)}, {Kind: "video", Duration: secs(3)}}}, // a track with no block
	}}
	p := planOf(t, job)
	if strings.Join(p.Paths, " ") != "/rec/early.webm /rec/empty.webm" {
		t.Fatalf("opens %v", p.Paths)
	}
	if s := p.Segments; len(s) != 3 || strings.Join(placed(p, s[0]), " ") != "b@0,0,1280,720" ||
		strings.Join(placed(p, s[1]), " ") != "b@0,0,640,720 d@640,0,640,720" || s[1].From != secs(1) || s[1].To != secs(4) || len(s[2].Tiles) != 0 {
		t.Errorf("segments %+v", s)
	}
	graph := compositeGraph(p)
	for _, want := range []string{
		"[0:v:0]setpts=PTS-STARTPTS-2.000/TB",                 // shown from its frame at 2 s
		"[0:a:0]asetpts=PTS-STARTPTS,aresample=48000:async=1", // gaps filled
		"atrim=start_sample=96000,asetpts=PTS-STARTPTS[a1]",   // its first 2 s cut
		"[1:v:1]setpts=PTS-STARTPTS+1.000/TB",                 // the blockless track still counts
		"adelay=delays=48000S:all=1[a2]",                      // D's voice from 1 s
		"amix=inputs=3:duration=first:dropout_transition=0:normalize=0[aout]",
	} {
		if !strings.Contains(graph, want) {
			t.Errorf("graph lacks %q:\n%s", want, graph)
		}
	}
	if strings.Contains(graph, "[1:v:0]") {
		t.Errorf("graph maps the track with no block:\n%s", graph)
	}
}

func TestCompositeArgs(t *testing.T) {
	job := consultJob("/rec")
	args, err := compositeArgs(job)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-nostdin -y -v error -nostats -progress pipe:1 ",
		"-reinit_filter 0 -i file:/rec/a.webm -reinit_filter 0 -i file:/rec/b.webm -reinit_filter 0 -i file:/rec/c1.webm -reinit_filter 0 -i file:/rec/c2.webm ",
		"-map [vout] -map [aout] -c:v libx264",
		"-pix_fmt yuv420p -r 25 -c:a aac",
		"-t 12.000 -movflags +faststart",
		"-f mp4 file:/rec/out.mp4.part",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("args lack %q: %s", want, line)
		}
	}
	var graph string
	for i, a := range args {
		if a == "-filter_complex" {
			graph = args[i+1]
		}
	}
	for _, want := range []string{
		"color=c=black:s=640x360:r=25:d=12.000[base0]",
		"[3:v:1]setpts=PTS-STARTPTS+7.000/TB,fps=25,scale=w='640':h='288'", // C's screen: the file's second video
		"[2:a:0]asetpts=PTS-STARTPTS,aresample=48000:async=1,aformat=sample_fmts=fltp:channel_layouts=stereo,adelay=delays=144000S:all=1[a3]",
		"enable='gte(t,3.000)*lt(t,6.000)'",
		"amix=inputs=5:",
		"[base5]format=yuv420p[vout]",
	} {
		if !strings.Contains(graph, want) {
			t.Errorf("graph lacks %q:\n%s", want, graph)
		}
	}
	// A track whose box changes gets its size as a function of time.
	if !strings.Contains(graph, "[0:v:0]setpts=PTS-STARTPTS+0.000/TB,fps=25,scale=w='(320*lt(t,7.000)+128*gte(t,7.000))':h='(360*lt(t,3.000)+180*gte(t,3.000)*lt(t,6.000)+360*gte(t,6.000)*lt(t,7.000)+72*gte(t,7.000))'") {
		t.Errorf("A's scale:\n%s", graph)
	}

	// No sound at all: a silent track all the same.
	job.Inputs = []compositeInput{{Path: "/rec/v.webm", Participant: "a", Start: compositeT0, Tracks: []compositeTrack{{Kind: "video", Duration: secs(12)}}}}
	args, _ = compositeArgs(job)
	if line := strings.Join(args, " "); !strings.Contains(line, "anullsrc=r=48000:cl=stereo:d=12.000[aout]") || strings.Contains(line, "amix") {
		t.Errorf("no audio: %s", line)
	}
}

func TestCompositeStderrTail(t *testing.T) {
	b := &tailBuffer{max: 32}
	_, _ = b.Write([]byte("a long first line that is cut\nsecond\n\n"))
	_, _ = b.Write([]byte("third  \nfourth\n"))
	if got := b.lines(2); got != "third; fourth" {
		t.Errorf("lines(2) = %q", got)
	}
	if got := b.lines(8); got != "second; third; fourth" {
		t.Errorf("lines(8) = %q", got)
	}
}
