package recording

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"os"
	"path/filepath"

	"consult/sfu"
)

// Access says which rooms a request may administer; nil means none.
type Access func(r *http.Request) (allows func(room string) bool)

// Handler serves the admin API under /api/recordings and /api/taps. A
// request reaches only the rooms access allows (a room's host or admin
// token reaches that room alone); anything else is as if it did not exist.
func (m *Manager) Handler(access Access) http.Handler {
	mux := http.NewServeMux()
	allowed := func(r *http.Request) func(string) bool {
		return r.Context().Value(accessKey{}).(func(string) bool)
	}
	mux.HandleFunc("GET /api/recordings", func(w http.ResponseWriter, r *http.Request) {
		ok, room := allowed(r), r.URL.Query().Get("room")
		out := []Info{}
		for _, info := range m.List() {
			if ok(info.Room) && (room == "" || info.Room == room) {
				out = append(out, info)
			}
		}
		reply(w, out, nil)
	})
	// One recording, its manifest, and its files: only those of a room
	// the token reaches, and only names the recording lists (never a
	// path, never a directory listing).
	find := func(w http.ResponseWriter, r *http.Request) (Info, bool) {
		info, found := m.info(r.PathValue("id"))
		if !found || !allowed(r)(info.Room) {
			reply(w, nil, ErrNotFound)
			return Info{}, false
		}
		return info, true
	}
	mux.HandleFunc("GET /api/recordings/{id}", func(w http.ResponseWriter, r *http.Request) {
		if info, ok := find(w, r); ok {
			reply(w, info, nil)
		}
	})
	mux.HandleFunc("GET /api/recordings/{id}/manifest", func(w http.ResponseWriter, r *http.Request) {
		if info, ok := find(w, r); ok {
			serveFile(w, r, filepath.Join(m.cfg.Dir, filepath.Base(info.Manifest)), "application/json")
		}
	})
	mux.HandleFunc("GET /api/recordings/{id}/files/{name}", func(w http.ResponseWriter, r *http.Request) {
		info, ok := find(w, r)
		if !ok {
			return
		}
		path, ok := m.filePath(info, r.PathValue("name"))
		if !ok {
			reply(w, nil, ErrNotFound)
			return
		}
		serveFile(w, r, path, "")
	})
	mux.HandleFunc("POST /api/recordings", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Room, Participant string }
		if !decode(w, r, &req) {
			return
		}
		if !allowed(r)(req.Room) {
			reply(w, nil, ErrNoRoom)
			return
		}
		info, err := m.Start(req.Room, req.Participant)
		reply(w, info, err)
	})
	stop := func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if info, found := m.info(id); !found || !allowed(r)(info.Room) {
			reply(w, nil, ErrNotFound)
			return
		}
		info, err := m.Stop(id)
		reply(w, info, err)
	}
	mux.HandleFunc("POST /api/recordings/{id}/stop", stop)
	mux.HandleFunc("DELETE /api/recordings/{id}", stop)
	mux.HandleFunc("GET /api/taps", func(w http.ResponseWriter, r *http.Request) {
		ok := allowed(r)
		out := []Forward{}
		for _, f := range m.Forwards() {
			if ok(f.Room) {
				out = append(out, f)
			}
		}
		reply(w, out, nil)
	})
	mux.HandleFunc("POST /api/taps", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Room, Track, Host string
			Port              int
		}
		if !decode(w, r, &req) {
			return
		}
		if !allowed(r)(req.Room) {
			reply(w, nil, ErrNoRoom)
			return
		}
		f, err := m.StartForward(req.Room, req.Track, req.Host, req.Port)
		reply(w, f, err)
	})
	mux.HandleFunc("DELETE /api/taps/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if f, found := m.forward(id); !found || !allowed(r)(f.Room) {
			reply(w, nil, ErrNotFound)
			return
		}
		reply(w, struct{}{}, m.StopForward(id))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := access(r)
		if ok == nil {
			http.Error(w, "admin or host token required", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), accessKey{}, ok)))
	})
}

type accessKey struct{}

// serveFile sends a file with ranges (a player seeks), as an attachment.
func serveFile(w http.ResponseWriter, r *http.Request, path, ctype string) {
	f, err := os.Open(path)
	if err != nil {
		reply(w, nil, ErrNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		reply(w, nil, ErrNotFound)
		return
	}
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": st.Name()}))
	w.Header().Set("Cache-Control", "no-store") // patient data
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoRoom), errors.Is(err, sfu.ErrNoTrack):
		w.WriteHeader(http.StatusNotFound)
		v = map[string]string{"error": err.Error()}
	case errors.Is(err, ErrDestination), errors.Is(err, ErrNotAllowed):
		w.WriteHeader(http.StatusForbidden)
		v = map[string]string{"error": err.Error()}
	case err != nil:
		w.WriteHeader(http.StatusInternalServerError)
		v = map[string]string{"error": err.Error()}
	}
	_ = json.NewEncoder(w).Encode(v)
}
