package signaling

import (
	"encoding/json"
	"net/http"
	"sort"

	"consult/protocol"
)

// RoomStatus is one entry of GET /api/rooms.
type RoomStatus struct {
	Room     string                 `json:"room"`
	Mode     string                 `json:"mode"`
	Capacity int                    `json:"capacity"`
	Members  []protocol.Participant `json:"members"`
}

// RoomCheck answers GET /api/rooms/{room}: what a lobby shows before
// joining.
type RoomCheck struct {
	Room     string `json:"room"`
	Exists   bool   `json:"exists"`
	Present  int    `json:"present"`
	Live     int    `json:"live"`
	Capacity int    `json:"capacity"`
	Full     bool   `json:"full"`
}

// Rooms lists every room with its members.
func (s *Server) Rooms() []RoomStatus {
	s.mu.Lock()
	out := make([]RoomStatus, 0, len(s.rooms))
	for _, r := range s.rooms {
		st := RoomStatus{Room: r.name, Mode: r.mode, Capacity: r.capacity, Members: []protocol.Participant{}}
		for _, m := range r.members {
			st.Members = append(st.Members, m.view())
		}
		out = append(out, st)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out
}

// serveRooms lists rooms; with auth on it needs an admin token as
// "Authorization: Bearer ...", since it shows who is in which consult.
func (s *Server) serveRooms(w http.ResponseWriter, r *http.Request) {
	if !s.AdminAuthorized(r) {
		http.Error(w, "admin token required", http.StatusUnauthorized)
		return
	}
	writeJSON(w, s.Rooms())
}

func (s *Server) serveRoomCheck(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("room")
	if err := protocol.ValidRoom(name); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	check := RoomCheck{Room: name, Capacity: s.cfg.Capacity}
	if rm := s.rooms[name]; rm != nil {
		check.Exists, check.Present, check.Live, check.Capacity = true, len(rm.members), rm.liveCount(), rm.capacity
		check.Full = check.Live >= rm.capacity
	}
	s.mu.Unlock()
	writeJSON(w, check)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// servePolicy sets a room's media policy: {"sfuOnly": true} keeps it on
// the SFU (no direct path). Admin only.
func (s *Server) servePolicy(w http.ResponseWriter, r *http.Request) {
	if !s.AdminAuthorized(r) {
		http.Error(w, "admin token required", http.StatusUnauthorized)
		return
	}
	name := r.PathValue("room")
	if err := protocol.ValidRoom(name); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req struct {
		SFUOnly bool `json:"sfuOnly"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024)).Decode(&req); err != nil {
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.sfuRooms[name] = req.SFUOnly
	var after []func()
	if rm := s.rooms[name]; rm != nil {
		rm.forceSFU = req.SFUOnly || rm.recording
		after = s.reconcileLocked(rm)
	}
	s.mu.Unlock()
	run(after)
	writeJSON(w, req)
}

func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	if !s.AdminAuthorized(r) {
		http.Error(w, "admin token required", http.StatusUnauthorized)
		return
	}
	writeJSON(w, s.Stats())
}
