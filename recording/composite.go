// Composing a consult into one file: when a room's recording stops, the
// files it wrote (one per participant per part, each holding only that
// participant's tracks from their own first block) are drawn by ffmpeg
// into a single MP4 (H.264 + AAC, yuv420p, moov first) that a medical
// record system can open and play from the start: everyone who was there
// in a grid that follows joins and leaves, a screen share large while it
// is on, all voices mixed, each file placed by the wall-clock time of its
// first block. Encoding is heavy and can wait while calls cannot, so
// ffmpeg runs niced, one job at a time from a bounded queue (a full queue
// is refused rather than piling up), and reports its progress; closing the
// composer kills the running job and fails the queued ones. A job writes
// to Out+".part" and renames it when ffmpeg has finished, so a reader
// never sees a half-written file; the inputs are only read.

package recording

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// compositeTrack is one track of an input file, in the file's track order
// (the order ffmpeg numbers its streams).
type compositeTrack struct {
	Kind     string        // "audio" or "video"
	Screen   bool          // a screen share (main tile while present)
	Start    time.Duration // where the track's first block is, from the file's first block
	Duration time.Duration
}

// compositeInput is one participant file.
type compositeInput struct {
	Path        string
	Participant string    // id; files of one participant share a tile
	Start       time.Time // wall clock of the file's first block
	Tracks      []compositeTrack
}

type compositeJob struct {
	Out           string    // the .mp4 to write (write to Out+".part", rename when done)
	Start, Stop   time.Time // the recording's wall-clock span: the output runs Stop-Start
	Inputs        []compositeInput
	Width, Height int // output size; 0 → 1280x720
}

var (
	errComposerBusy   = errors.New("recording: composite queue full")
	errComposerClosed = errors.New("recording: composer closed")
)

// compositeNice is the niceness of ffmpeg: below the server, which serves
// live calls.
const compositeNice = "10"

// compositeStderr is how much of ffmpeg's stderr a job keeps: its error
// is at the end.
const compositeStderr = 4 << 10

// composer runs composite jobs one at a time from a bounded queue.
type composer struct {
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	queue  chan compositeWork
}

type compositeWork struct {
	job      compositeJob
	args     []string
	progress func(float64)
	done     func(error)
}

// newComposer starts a composer whose queue holds up to queue jobs (at
// least one) besides the one running.
func newComposer(log *zap.Logger, queue int) *composer {
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &composer{log: log, ctx: ctx, cancel: cancel, queue: make(chan compositeWork, max(queue, 1))}
	c.wg.Add(1)
	go c.run()
	return c
}

// submit queues a job; progress is called with 0..1 as ffmpeg reports
// (parse `-progress pipe:1` out_time_us against the job's length), done once
// with nil or the reason it failed (ffmpeg's last stderr lines, trimmed).
// A job that cannot be composed (no inputs, bad times or size) is refused
// here, as is one that finds the queue full (errComposerBusy) or the
// composer closed; done is then never called. Both callbacks run on the
// composer's goroutine, one job at a time: they may submit, but must not
// close the composer (close waits for that goroutine).
func (c *composer) submit(job compositeJob, progress func(float64), done func(error)) error {
	args, err := compositeArgs(job)
	if err != nil {
		return err
	}
	if progress == nil {
		progress = func(float64) {}
	}
	if done == nil {
		done = func(error) {}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errComposerClosed
	}
	select {
	case c.queue <- compositeWork{job: job, args: args, progress: progress, done: done}:
		return nil
	default:
		return errComposerBusy
	}
}

// close cancels the running job (kills ffmpeg), fails the queued ones with an error, and waits.
func (c *composer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.cancel()
		close(c.queue)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *composer) run() {
	defer c.wg.Done()
	for w := range c.queue {
		if c.ctx.Err() != nil {
			w.done(fmt.Errorf("recording: composite not started: %w", errComposerClosed))
			continue
		}
		w.done(c.compose(w))
	}
}

// compose runs one job's ffmpeg to its end, or until the composer closes.
func (c *composer) compose(w compositeWork) error {
	length := w.job.Stop.Sub(w.job.Start)
	log := c.log.With(zap.String("output", w.job.Out), zap.Duration("length", length),
		zap.Int("inputs", len(w.job.Inputs)))
	fail := func(err error) error {
		log.Warn("composite failed", zap.Error(err))
		return err
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return fail(fmt.Errorf("recording: composite: %w", err))
	}
	name, args := ffmpeg, w.args
	if nice, err := exec.LookPath("nice"); err == nil {
		name, args = nice, append([]string{"-n", compositeNice, ffmpeg}, w.args...)
	}
	cmd := exec.CommandContext(c.ctx, name, args...)
	stderr := &tailBuffer{max: compositeStderr}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fail(fmt.Errorf("recording: composite: %w", err))
	}
	part := w.job.Out + ".part"
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("recording: composite: %w", err))
	}
	log.Info("composite started")
	reported := readProgress(stdout, length, w.progress)
	if err := cmd.Wait(); err != nil {
		_ = os.Remove(part)
		if c.ctx.Err() != nil {
			return fail(fmt.Errorf("recording: composite cancelled: %w", errComposerClosed))
		}
		if msg := unnamed(stderr.lines(8), w.args); msg != "" {
			return fail(fmt.Errorf("recording: composite: ffmpeg: %v: %s", err, msg))
		}
		return fail(fmt.Errorf("recording: composite: ffmpeg: %v", err))
	}
	if err := os.Rename(part, w.job.Out); err != nil {
		_ = os.Remove(part)
		return fail(fmt.Errorf("recording: composite: %w", err))
	}
	if reported < 1 {
		w.progress(1)
	}
	log.Info("composite written", zap.Duration("took", time.Since(started)))
	return nil
}

// readProgress reads ffmpeg's -progress lines to their end, reporting
// out_time_us as a share of the job's length whenever it grows, and
// returns the last share reported.
func readProgress(r io.Reader, length time.Duration, progress func(float64)) float64 {
	sc := bufio.NewScanner(r)
	last := 0.0
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "out_time_us=")
		if !ok {
			continue
		}
		us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || us <= 0 {
			continue // "N/A" before the first frame
		}
		f := min(float64(us)/float64(length.Microseconds()), 1)
		if f > last {
			last = f
			progress(f)
		}
	}
	// A line too long for the scanner: keep ffmpeg from blocking on a
	// full pipe.
	_, _ = io.Copy(io.Discard, r)
	return last
}

// unnamed replaces the input paths in ffmpeg's message with "input N"
// (ffmpeg's numbering): a participant's file is named after them, and
// the message is logged.
func unnamed(msg string, args []string) string {
	var paths []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-i" {
			paths = append(paths, strings.TrimPrefix(args[i+1], "file:"))
		}
	}
	order := make([]int, len(paths))
	for i := range order {
		order[i] = i
	}
	// Longest first, so that no path is replaced inside a longer one.
	sort.Slice(order, func(a, b int) bool { return len(paths[order[a]]) > len(paths[order[b]]) })
	for _, i := range order {
		n := "input " + strconv.Itoa(i)
		msg = strings.ReplaceAll(msg, "file:"+paths[i], n)
		msg = strings.ReplaceAll(msg, paths[i], n)
	}
	return msg
}

// tailBuffer keeps the last max bytes written to it. exec writes it from
// one goroutine and Wait returns after that one is done, so it needs no
// lock.
type tailBuffer struct {
	max int
	b   []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// lines is up to the last n non-empty lines, joined with "; ".
func (t *tailBuffer) lines(n int) string {
	s := string(t.b)
	if t.cut {
		// The first line is a piece of one.
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "; ")
}
