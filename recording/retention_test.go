package recording

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pastOnDisk writes a stopped recording as a run leaves it: a file and
// its manifest.
func pastOnDisk(t *testing.T, dir, id string, stopped time.Time) (file, manifest string) {
	t.Helper()
	name := "visit_" + id + ".webm"
	if err := os.WriteFile(filepath.Join(dir, name), []byte("media"), 0o640); err != nil {
		t.Fatal(err)
	}
	in := Info{ID: id, Room: "visit", State: StateStopped, Started: stopped.Add(-time.Minute), Stopped: &stopped,
		Files: []FileInfo{{Name: name, Participant: "p1"}}, Manifest: filepath.Base(manifestPath(dir, "visit", id))}
	manifest = manifestPath(dir, "visit", id)
	if err := writeManifest(manifest, in); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name), manifest
}

func gone(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

// Retention deletes what stopped longer ago than -record-keep (files and
// manifest), at start and then as time passes, and nothing newer; other
// files in the directory are never touched.
func TestRetentionDeletesOnlyWhatIsPastIt(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	oldFile, oldMan := pastOnDisk(t, dir, "rec-old", now.Add(-31*24*time.Hour))
	newFile, newMan := pastOnDisk(t, dir, "rec-new", now.Add(-29*24*time.Hour))
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Dir: dir, Keep: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !gone(oldFile) || !gone(oldMan) {
		t.Fatal("a recording past retention was kept at start")
	}
	if gone(newFile) || gone(newMan) || gone(other) {
		t.Fatal("retention deleted what it should keep")
	}
	if list := m.List(); len(list) != 1 || list[0].ID != "rec-new" {
		t.Fatalf("list %+v", list)
	}
	m.expire(now.Add(2 * 24 * time.Hour))
	if !gone(newFile) || !gone(newMan) || gone(other) || len(m.List()) != 0 {
		t.Fatalf("two days on: file gone %v, manifest gone %v, list %+v", gone(newFile), gone(newMan), m.List())
	}

	// Without -record-keep nothing is ever deleted.
	keepFile, _ := pastOnDisk(t, dir, "rec-kept", now.Add(-400*24*time.Hour))
	m2, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	m2.expire(now)
	if gone(keepFile) || len(m2.List()) != 1 {
		t.Fatal("deleted without a retention set")
	}
}
