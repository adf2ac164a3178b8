package recording

import (
	"encoding/json"
	"errors"
	"net/http"

	"consult/sfu"
)

// Handler serves the admin API under /api/recordings and /api/taps.
// authorize decides whether a request carries admin rights.
func (m *Manager) Handler(authorize func(*http.Request) bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/recordings", func(w http.ResponseWriter, _ *http.Request) { reply(w, m.List(), nil) })
	mux.HandleFunc("POST /api/recordings", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Room, Participant string }
		if !decode(w, r, &req) {
			return
		}
		info, err := m.Start(req.Room, req.Participant)
		reply(w, info, err)
	})
	stop := func(w http.ResponseWriter, r *http.Request) {
		info, err := m.Stop(r.PathValue("id"))
		reply(w, info, err)
	}
	mux.HandleFunc("POST /api/recordings/{id}/stop", stop)
	mux.HandleFunc("DELETE /api/recordings/{id}", stop)
	mux.HandleFunc("GET /api/taps", func(w http.ResponseWriter, _ *http.Request) { reply(w, m.Forwards(), nil) })
	mux.HandleFunc("POST /api/taps", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Room, Track, Host string
			Port              int
		}
		if !decode(w, r, &req) {
			return
		}
		f, err := m.StartForward(req.Room, req.Track, req.Host, req.Port)
		reply(w, f, err)
	})
	mux.HandleFunc("DELETE /api/taps/{id}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, m.StopForward(r.PathValue("id")))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorize(r) {
			http.Error(w, "admin token required", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
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
	case errors.Is(err, ErrDestination):
		w.WriteHeader(http.StatusForbidden)
		v = map[string]string{"error": err.Error()}
	case err != nil:
		w.WriteHeader(http.StatusInternalServerError)
		v = map[string]string{"error": err.Error()}
	}
	_ = json.NewEncoder(w).Encode(v)
}
