package recording

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"consult/sfu"
)

// Composing a stopped room recording (composite.go does the drawing):
// once its files are hashed, a job is built from what the manifest says
// of them (each file's first block on the wall clock, its tracks and
// where they start), so a recording cut short by a crash, or one whose
// composite the last shutdown interrupted, is composed the same way on
// the next start. The composite's state and progress are in the API; its
// state, size and SHA-256 in the manifest. A failure leaves the
// participant files as they are and says why.

// compositeName is the composite's file name: the manifest's, as .mp4.
func compositeName(manifest string) string {
	return strings.TrimSuffix(filepath.Base(manifest), manifestExt) + ".mp4"
}

// compositeJobFor builds the job for a recording from its description.
func (m *Manager) compositeJobFor(in Info) (compositeJob, bool) {
	job := compositeJob{Out: filepath.Join(m.cfg.Dir, compositeName(in.Manifest)), Start: in.Started,
		Width: m.cfg.CompositeWidth, Height: m.cfg.CompositeHeight}
	if in.Stopped != nil {
		job.Stop = *in.Stopped
	}
	for _, f := range in.Files {
		if f.Error != "" || f.Started.IsZero() || f.Duration <= 0 {
			continue
		}
		ci := compositeInput{Path: filepath.Join(m.cfg.Dir, filepath.Base(f.Name)), Participant: f.Participant, Start: f.Started}
		for _, t := range f.Tracks {
			ci.Tracks = append(ci.Tracks, compositeTrack{Kind: t.Kind, Screen: t.Source == sfu.SourceScreen,
				Start: t.Start, Duration: t.Duration})
		}
		job.Inputs = append(job.Inputs, ci)
	}
	return job, len(job.Inputs) > 0 && job.Stop.After(job.Start)
}

// composeLater queues a recording's composite. set hears each change
// (final once it is done or failed); it is called on the composer's
// goroutine, or here when the job is refused.
func (m *Manager) composeLater(in Info, set func(c CompositeInfo, final bool)) {
	c := CompositeInfo{Name: compositeName(in.Manifest), State: CompositeQueued}
	job, ok := m.compositeJobFor(in)
	if !ok {
		c.State, c.Error = CompositeFailed, "nothing to compose: no file holds media"
		set(c, true)
		return
	}
	c.Path = job.Out
	set(c, false)
	log := m.log.With(zap.String("room", in.Room), zap.String("recording", in.ID))
	progress := func(p float64) {
		if c.State != CompositeRunning || p-c.Progress >= 0.01 || p >= 1 {
			c.State, c.Progress = CompositeRunning, p
			set(c, false)
		}
	}
	done := func(err error) {
		if errors.Is(err, errComposerClosed) {
			// The server is stopping: made on the next start.
			c.State, c.Progress, c.Error = CompositeQueued, 0, "interrupted by a shutdown; made again on the next start"
			set(c, true)
			return
		}
		if err != nil {
			c.State, c.Error = CompositeFailed, err.Error()
			log.Warn("recording not composed", zap.Error(err))
			set(c, true)
			return
		}
		c.State, c.Progress = CompositeDone, 1
		if st, err := os.Stat(job.Out); err == nil {
			c.Bytes = st.Size()
		}
		sum, err := fileSHA256(job.Out)
		if err != nil {
			c.State, c.Error = CompositeFailed, err.Error()
		}
		c.SHA256 = sum
		log.Info("recording composed", zap.String("file", c.Name), zap.Int64("bytes", c.Bytes))
		set(c, true)
	}
	if err := m.composer.submit(job, progress, done); err != nil {
		if errors.Is(err, errComposerBusy) {
			err = errors.New("the composite queue is full: compose it later, or raise the queue")
		}
		done(err)
	}
}

// composeStopped queues a stopped recording of this run; its work is
// finished once the composite is.
func (r *recording) composeStopped() {
	r.m.composeLater(r.info(), func(c CompositeInfo, final bool) {
		r.mu.Lock()
		prev := r.composite
		r.mu.Unlock()
		if final || prev == nil || prev.State != c.State {
			r.saveWith(func(in *Info) { in.Composite = &c })
		}
		r.mu.Lock()
		r.composite = &c
		r.mu.Unlock()
		if final {
			close(r.finished)
		}
	})
}

// composePast queues a recording of an earlier run whose composite was
// never made (a crash) or was cut short (a shutdown).
func (m *Manager) composePast(id string) {
	m.mu.Lock()
	p, ok := m.past[id]
	m.mu.Unlock()
	if !ok {
		return
	}
	m.composeLater(p.info, func(c CompositeInfo, final bool) {
		m.mu.Lock()
		p, ok := m.past[id]
		if !ok { // deleted meanwhile
			m.mu.Unlock()
			return
		}
		prev := p.info.Composite
		p.info.Composite = &c
		m.past[id] = p
		in := p.info
		m.mu.Unlock()
		if final || prev == nil || prev.State != c.State {
			if err := writeManifest(p.manifest, in); err != nil {
				m.log.Error("recording manifest", zap.String("recording", id), zap.Error(err))
			}
		}
	})
}

// needsComposite says whether a recording of an earlier run is to be
// composed at start: a room's, stopped, whose composite is not done or
// failed for good.
func needsComposite(in Info) bool {
	if in.Participant != "" || in.Stopped == nil || in.State == StateRecording {
		return false
	}
	c := in.Composite
	return c == nil && in.State == StateRecovered || c != nil && (c.State == CompositeQueued || c.State == CompositeRunning)
}
