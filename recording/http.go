package recording

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

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
		ok := allowed(r)
		out := []Info{}
		for _, info := range m.List() {
			if ok(info.Room) {
				out = append(out, info)
			}
		}
		reply(w, out, nil)
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
