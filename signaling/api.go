package signaling

import (
	"encoding/json"
	"net/http"
	"sort"

	"consult/protocol"
	"consult/sfu"
)

// RoomStatus is one entry of GET /api/rooms.
type RoomStatus struct {
	Room string `json:"room"`
	// Node is the cluster node that holds the room (none outside a cluster).
	Node        string                 `json:"node,omitempty"`
	Mode        string                 `json:"mode"`
	Capacity    int                    `json:"capacity"`
	DirectEntry bool                   `json:"directEntry"`
	Members     []protocol.Participant `json:"members"`
	// Downlinks is, per live member on the SFU, how its downlink fares:
	// the server's estimate of what it carries, and for each track it
	// receives, loss, jitter and round trip from its receiver reports.
	// For operators and hosts: it is not sent to members.
	Downlinks map[string]sfu.Downlink `json:"downlinks,omitempty"`
}

// RoomCheck answers GET /api/rooms/{room}: what a lobby shows before
// joining. Who is there is for hosts: with auth on, the counts come only
// with a host's or an admin's token for the room; a patient's lobby learns
// nothing about who else is waiting or in the call.
type RoomCheck struct {
	Room     string `json:"room"`
	Exists   bool   `json:"exists"`
	Present  int    `json:"present"`
	Live     int    `json:"live"`
	Capacity int    `json:"capacity"`
	Full     bool   `json:"full"`
}

// Rooms lists the rooms in scope with their members.
func (s *Server) Rooms(scope Scope) []RoomStatus {
	type peerOf struct {
		room int
		id   string
		peer Peer
	}
	var peers []peerOf
	s.mu.Lock()
	out := make([]RoomStatus, 0, len(s.rooms))
	for _, r := range s.rooms {
		if !scope.Allows(r.name) {
			continue
		}
		st := RoomStatus{Room: r.name, Mode: r.mode, Capacity: r.capacity, DirectEntry: r.directEntry,
			Members: []protocol.Participant{}}
		for _, m := range r.members {
			st.Members = append(st.Members, m.view())
			if m.peer != nil {
				peers = append(peers, peerOf{len(out), m.id, m.peer})
			}
		}
		out = append(out, st)
	}
	s.mu.Unlock()
	// The media server's locks are taken only now, with s.mu released.
	for _, p := range peers {
		st := &out[p.room]
		if st.Downlinks == nil {
			st.Downlinks = map[string]sfu.Downlink{}
		}
		st.Downlinks[p.id] = p.peer.Downlink()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out
}

// AllRooms lists every room (tests, tools in the same process).
func (s *Server) AllRooms() []RoomStatus { return s.Rooms(Scope{all: true}) }

// serveRooms lists rooms: every room for a server-wide admin, the token's
// own room otherwise, since it shows who is in which consult.
func (s *Server) serveRooms(w http.ResponseWriter, r *http.Request) {
	scope, ok := s.AdminScope(r)
	if !ok {
		http.Error(w, "admin or host token required", http.StatusUnauthorized)
		return
	}
	rooms := s.Rooms(scope)
	if s.cfg.Cluster != nil && !s.fromNode(r) {
		all, err := s.clusterRooms(r, rooms)
		if err != nil {
			http.Error(w, protocol.ErrClusterUnavailable+": "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		rooms = all
	} else if s.cfg.Cluster != nil {
		for i := range rooms {
			rooms[i].Node = s.cfg.Cluster.ID()
		}
	}
	writeJSON(w, rooms)
}

func (s *Server) serveRoomCheck(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("room")
	if err := protocol.ValidRoom(name); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	host := s.AdminAuthorized(r, name)
	s.mu.Lock()
	check := RoomCheck{Room: name, Capacity: s.cfg.Capacity}
	if rm := s.rooms[name]; rm != nil {
		check.Capacity = rm.capacity
		if host {
			check.Exists, check.Present, check.Live = true, len(rm.members), rm.liveCount()
			check.Full = check.Live >= rm.capacity
		}
	}
	s.mu.Unlock()
	writeJSON(w, check)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// servePolicy sets a room's policy: {"sfuOnly": true} keeps it on the SFU
// (no direct path), {"directEntry": true} lets guests skip the waiting
// room. Fields left out keep their value. Admin (or host) of the room;
// the other settings are an admin's (PUT /api/rooms/{room}, adminapi.go).
func (s *Server) servePolicy(w http.ResponseWriter, r *http.Request) {
	name, ok := s.roomFor(w, r)
	if !ok {
		return
	}
	var req struct {
		SFUOnly     *bool `json:"sfuOnly"`
		DirectEntry *bool `json:"directEntry"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024)).Decode(&req); err != nil {
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	writeJSON(w, s.applySettings(name, RoomSettings{SFUOnly: req.SFUOnly, DirectEntry: req.DirectEntry}))
}

func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	if scope, ok := s.AdminScope(r); !ok || !scope.All() {
		http.Error(w, "server-wide admin token required", http.StatusUnauthorized)
		return
	}
	writeJSON(w, s.Stats())
}
