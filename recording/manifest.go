package recording

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// A recording's manifest is what a clinic files with it: JSON beside the
// files (room_rec-ID.json) naming the room, who took part (id, role,
// identity), how consent was taken and each answer with its time, when
// the recording started and stopped, every file with its size, duration
// and SHA-256, and the composite. It is rewritten whole (temporary file,
// fsync, rename) whenever any of that changes, so a crash leaves the last
// complete one: the next start finds the recording still marked
// recording, repairs the files it lists (repair.go) and marks it
// recovered. Manifests are also how recordings of earlier runs stay
// listed, downloadable and subject to retention.

const manifestExt = ".json"

// Consent policies (protocol.ConsentAsked, protocol.ConsentElsewhere).
const (
	ConsentAsked     = protocol.ConsentAsked
	ConsentElsewhere = protocol.ConsentElsewhere
)

// Consent, Answer and Person are the manifest's consent and people, as
// signaling hands them over.
type (
	Consent = protocol.RecordingConsent
	Answer  = protocol.ConsentAnswer
	Person  = protocol.RecordedPerson
)

// manifestPath is where a recording's manifest lives.
func manifestPath(dir, room, id string) string {
	return filepath.Join(dir, safe(room, 64)+"_"+safe(id, 64)+manifestExt)
}

// save writes the recording's manifest.
func (r *recording) save() { r.saveWith(nil) }

// saveWith writes the manifest with what edit adds: a change the API
// shows only once the manifest holds it (the caller makes it in memory
// after), so that what the API calls final is on disk.
func (r *recording) saveWith(edit func(*Info)) {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	in := r.info()
	if edit != nil {
		edit(&in)
	}
	if err := writeManifest(r.manifest, in); err != nil {
		r.m.log.Error("recording manifest", zap.String("room", r.room), zap.String("recording", r.id), zap.Error(err))
	}
}

// writeManifest writes in as the manifest at path. Files are named, not
// given as paths: the manifest moves with the directory.
func writeManifest(path string, in Info) error {
	in.Files = append([]FileInfo(nil), in.Files...) // not the caller's
	for i := range in.Files {
		in.Files[i].Path = ""
	}
	if in.Composite != nil {
		c := *in.Composite
		c.Path = ""
		in.Composite = &c
	}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// maxManifest bounds what is read of a manifest: it lists a consult's
// files, a few kilobytes.
const maxManifest = 4 << 20

func readManifest(path string) (Info, error) {
	var in Info
	f, err := os.Open(path)
	if err != nil {
		return in, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return in, err
	}
	if len(b) > maxManifest {
		return in, errors.New("manifest too large")
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, err
	}
	if in.ID == "" || in.Room == "" {
		return in, errors.New("manifest without id or room")
	}
	return in, nil
}

// fileSHA256 hashes a file as it is on disk.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// loadPast reads the manifests in the directory: recordings of earlier
// runs. One still marked recording was cut short by a crash: its files
// are repaired and it becomes recovered, with its files' sizes,
// durations and hashes as they now are.
func (m *Manager) loadPast() {
	names, err := filepath.Glob(filepath.Join(m.cfg.Dir, "*"+manifestExt))
	if err != nil {
		return
	}
	for _, path := range names {
		in, err := readManifest(path)
		if err != nil {
			m.log.Warn("recording manifest unreadable", zap.String("file", filepath.Base(path)), zap.Error(err))
			continue
		}
		if in.State == StateRecording {
			in = m.recover(in)
			if err := writeManifest(path, in); err != nil {
				m.log.Error("recording manifest", zap.String("recording", in.ID), zap.Error(err))
			}
		}
		m.past[in.ID] = pastRecording{info: in, manifest: path}
	}
}

// recover repairs a crashed recording's files.
func (m *Manager) recover(in Info) Info {
	log := m.log.With(zap.String("room", in.Room), zap.String("recording", in.ID))
	in.State = StateRecovered
	var last time.Time
	in.Bytes, in.Duration = 0, 0
	for i := range in.Files {
		fi := &in.Files[i]
		path := filepath.Join(m.cfg.Dir, filepath.Base(fi.Name))
		res, err := repair(path)
		if err != nil {
			log.Warn("recording file not repaired", zap.String("file", fi.Name), zap.Error(err))
			fi.Error = err.Error()
			continue
		}
		if st, err := os.Stat(path); err == nil {
			fi.Bytes = st.Size()
			if t := st.ModTime(); t.After(last) {
				last = t
			}
		}
		fi.Duration = res.Duration
		if fi.SHA256, err = fileSHA256(path); err != nil {
			fi.Error = err.Error()
		}
		in.Bytes += fi.Bytes
		in.Duration = max(in.Duration, fi.Duration)
		log.Info("recording file recovered", zap.String("file", fi.Name), zap.Bool("repaired", res.Repaired),
			zap.Duration("duration", res.Duration))
	}
	if last.IsZero() {
		last = time.Now()
	}
	in.Stopped = &last
	in.Error = "the server stopped during the recording; files repaired on the next start"
	return in
}

// pastRecording is a recording of an earlier run, known from its manifest.
type pastRecording struct {
	info     Info
	manifest string
}

// filePath finds a file of a recording by the name a client gives: only
// a name the recording lists, never a path.
func (m *Manager) filePath(in Info, name string) (string, bool) {
	if name == "" || strings.ContainsAny(name, `/\`) || name != filepath.Base(name) {
		return "", false
	}
	for _, f := range in.Files {
		if f.Name == name {
			return filepath.Join(m.cfg.Dir, name), true
		}
	}
	if c := in.Composite; c != nil && c.Name == name && c.State == CompositeDone {
		return filepath.Join(m.cfg.Dir, name), true
	}
	return "", false
}

// expire deletes the recordings (files, composite, manifest) that
// stopped longer than the retention ago. A running recording is never
// touched.
func (m *Manager) expire(now time.Time) {
	if m.cfg.Keep <= 0 {
		return
	}
	cut := now.Add(-m.cfg.Keep)
	var old []Info
	var manifests []string
	m.mu.Lock()
	for id, p := range m.past {
		if p.info.Stopped != nil && p.info.Stopped.Before(cut) {
			old, manifests = append(old, p.info), append(manifests, p.manifest)
			delete(m.past, id)
		}
	}
	var done []*recording
	for id, r := range m.recs {
		if st := r.stoppedAt(); !st.IsZero() && st.Before(cut) && r.finishedWork() {
			done = append(done, r)
			delete(m.recs, id)
		}
	}
	m.mu.Unlock()
	for _, r := range done {
		old, manifests = append(old, r.info()), append(manifests, r.manifest)
	}
	for i, in := range old {
		var errs []error
		for _, f := range in.Files {
			errs = append(errs, removeIfThere(filepath.Join(m.cfg.Dir, filepath.Base(f.Name))))
		}
		if c := in.Composite; c != nil && c.Name != "" {
			errs = append(errs, removeIfThere(filepath.Join(m.cfg.Dir, filepath.Base(c.Name))))
		}
		errs = append(errs, removeIfThere(manifests[i]))
		if err := errors.Join(errs...); err != nil {
			m.log.Error("recording not deleted", zap.String("room", in.Room), zap.String("recording", in.ID), zap.Error(err))
			continue
		}
		m.log.Info("recording deleted: past retention", zap.String("room", in.Room), zap.String("recording", in.ID),
			zap.Duration("keep", m.cfg.Keep), zap.Int("files", len(in.Files)))
	}
}

func removeIfThere(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}
