package signaling

import (
	"net/http"

	"go.uber.org/zap"
)

// A drain lets a server be replaced without cutting consults: from Drain
// on, a join that would open a new room gets server-draining and /healthz
// answers 503 "draining", so a load balancer sends new consults to
// another server; consults already running here go on, and may still be
// joined (the clinician who comes to a waiting patient, an interpreter,
// a reload). The caller (main) waits for Idle or its drain timeout, then
// calls Shutdown.

// Drain stops this server from taking new rooms. It is idempotent.
func (s *Server) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return
	}
	s.draining = true
	close(s.drainStarted)
	if cl := s.cfg.Cluster; cl != nil {
		cl.SetDraining(true) // new rooms go to other nodes
		for name := range s.policies {
			if s.rooms[name] == nil {
				cl.RoomEnded(name, false) // a room set up ahead here opens elsewhere
			}
		}
	}
	s.log.Info("draining: no new rooms; running consults go on", zap.Int("rooms", len(s.rooms)))
}

// DrainStarted is closed when a drain begins (Drain, or POST /api/drain).
func (s *Server) DrainStarted() <-chan struct{} { return s.drainStarted }

// Idle reports whether no room is left (every consult here has ended).
func (s *Server) Idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms) == 0
}

// refuseNewRoomLocked is join's check: while draining, only rooms that
// exist may be joined.
func (s *Server) refuseNewRoomLocked(room string) bool {
	return s.draining && s.rooms[room] == nil
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	if draining {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// serveDrain starts a drain: POST /api/drain, for a server-wide admin.
func (s *Server) serveDrain(w http.ResponseWriter, r *http.Request) {
	if scope, ok := s.AdminScope(r); !ok || !scope.All() {
		http.Error(w, "a server-wide admin token is required", http.StatusUnauthorized)
		return
	}
	s.Drain()
	writeJSON(w, map[string]bool{"draining": true})
}

const drainingMessage = "this server is about to restart and takes no new consultations; please try again in a moment"
