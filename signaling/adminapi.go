package signaling

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// The server API lets a clinic's scheduling system or an operator act on
// rooms without being in them: set a room up ahead (capacity, direct path
// on or off, guests' direct entry), and act on members as a host would
// (admit, back to waiting, mute, remove) or end the consult. Each call
// needs an admin (or host) token for the room, or a server-wide admin
// token; a token for another room gets 401, like a missing one. Invite
// links and their tokens come from POST /api/invites (invites.go).

// RoomSettings are what PUT /api/rooms/{room} sets; fields left out keep
// their value.
type RoomSettings struct {
	Capacity    *int  `json:"capacity,omitempty"`    // live members
	SFUOnly     *bool `json:"sfuOnly,omitempty"`     // no direct path
	DirectEntry *bool `json:"directEntry,omitempty"` // guests skip the waiting room
	// Recording false refuses every recording of the room (default true:
	// a host may record, with the indicator on every page).
	Recording *bool `json:"recording,omitempty"`
	// Consent is how consent to record is taken: "ask" (default: every
	// live member is asked in the call) or "elsewhere" (the clinic takes
	// it outside the call; a host's recording starts at once).
	Consent *string `json:"consent,omitempty"`
}

// maxCapacity bounds a room's live capacity set through the API.
const maxCapacity = 100

func (s *Server) registerAdminAPI(mux *http.ServeMux) {
	// In a cluster, each goes to the room's node; setting a room up
	// places it (cluster.go).
	mux.HandleFunc("PUT /api/rooms/{room}", s.byOwner(true, s.serveRoomSettings))
	mux.HandleFunc("DELETE /api/rooms/{room}", s.byOwner(false, s.serveEndRoom))
	mux.HandleFunc("POST /api/rooms/{room}/participants/{id}/admit", s.byOwner(false, s.serveMemberAct("admit")))
	mux.HandleFunc("POST /api/rooms/{room}/participants/{id}/wait", s.byOwner(false, s.serveMemberAct("wait")))
	mux.HandleFunc("POST /api/rooms/{room}/participants/{id}/mute", s.byOwner(false, s.serveMemberAct("mute")))
	mux.HandleFunc("DELETE /api/rooms/{room}/participants/{id}", s.byOwner(false, s.serveMemberAct("remove")))
}

// roomFor checks the room name and the token; it answers the request
// itself when either fails.
func (s *Server) roomFor(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("room")
	if err := protocol.ValidRoom(name); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return "", false
	}
	if !s.AdminAuthorized(r, name) {
		http.Error(w, "an admin or host token for this room is required", http.StatusUnauthorized)
		return "", false
	}
	return name, true
}

// serveRoomSettings sets a room up, ahead of its consult or during it (a
// new capacity applies to joins from then on). It is an operator's act:
// an admin token, not a host's (a clinician must not lift a room's
// no-recording policy).
func (s *Server) serveRoomSettings(w http.ResponseWriter, r *http.Request) {
	name, ok := s.roomFor(w, r)
	if !ok {
		return
	}
	if sc, _ := s.AdminScope(r); sc.claim != nil && !sc.claim.Grants.Admin {
		http.Error(w, "an admin token is required to change a room's settings", http.StatusForbidden)
		return
	}
	var req RoomSettings
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024)).Decode(&req); err != nil {
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	if req.Capacity != nil && (*req.Capacity < 1 || *req.Capacity > maxCapacity) {
		http.Error(w, "capacity must be from 1 to 100", http.StatusBadRequest)
		return
	}
	if req.Consent != nil && *req.Consent != "ask" && *req.Consent != protocol.ConsentElsewhere {
		http.Error(w, `consent must be "ask" or "elsewhere"`, http.StatusBadRequest)
		return
	}
	writeJSON(w, s.applySettings(name, req))
}

// applySettings changes a room's policy, and the room's state if it is
// running; it returns the policy.
func (s *Server) applySettings(name string, req RoomSettings) RoomPolicy {
	s.mu.Lock()
	p := s.policies[name]
	if req.Capacity != nil {
		p.Capacity = *req.Capacity
	}
	if req.SFUOnly != nil {
		p.SFUOnly = *req.SFUOnly
	}
	if req.DirectEntry != nil {
		p.DirectEntry = *req.DirectEntry
	}
	if req.Recording != nil {
		p.NoRecording = !*req.Recording
	}
	if req.Consent != nil {
		p.ConsentElsewhere = *req.Consent == protocol.ConsentElsewhere
	}
	s.policies[name] = p
	after := []func(){func() { s.clusterSavePolicy(name, p) }}
	if rm := s.rooms[name]; rm != nil {
		if p.Capacity > 0 {
			rm.capacity = p.Capacity
		}
		rm.forceSFU = p.SFUOnly || rm.recording
		rm.directEntry = p.DirectEntry
		after = append(after, s.reconcileLocked(rm)...)
	}
	s.mu.Unlock()
	run(after)
	return p
}

func (s *Server) serveEndRoom(w http.ResponseWriter, r *http.Request) {
	name, ok := s.roomFor(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	rm := s.rooms[name]
	if rm == nil {
		s.mu.Unlock()
		http.Error(w, "no such room", http.StatusNotFound)
		return
	}
	took, after := s.endRoomAllLocked(rm, nil)
	s.mu.Unlock()
	s.log.Info("consultation ended by the server API", zap.String("room", name), zap.Duration("call", took))
	run(after)
	writeJSON(w, map[string]int64{"durationMs": took.Milliseconds()})
}

// serveMemberAct admits, sends back to waiting, mutes or removes a member
// (what: "admit", "wait", "mute", "remove").
func (s *Server) serveMemberAct(what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := s.roomFor(w, r)
		if !ok {
			return
		}
		var kind string
		if what == "mute" {
			var req struct {
				Kind string `json:"kind"`
			}
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 256)).Decode(&req); err != nil ||
				req.Kind != "audio" && req.Kind != "video" {
				http.Error(w, `want {"kind":"audio"} or {"kind":"video"}`, http.StatusBadRequest)
				return
			}
			kind = req.Kind
		}
		do := map[string]act{"admit": s.admitLocked, "wait": s.toWaitingLocked, "mute": s.muteLocked(kind, ""),
			"remove": s.removeMemberLocked}[what]
		s.mu.Lock()
		var t *member
		if rm := s.rooms[name]; rm != nil {
			t = rm.find(r.PathValue("id"))
		}
		if t == nil {
			s.mu.Unlock()
			http.Error(w, "no such participant in this room", http.StatusNotFound)
			return
		}
		after, e := do(t)
		view := t.view()
		s.mu.Unlock()
		run(after)
		if e != nil {
			status := http.StatusConflict
			if e.busy != nil {
				status = http.StatusServiceUnavailable
				w.Header().Set("Retry-After", retryAfterSeconds(e.busy))
			}
			http.Error(w, e.code+": "+e.msg, status)
			return
		}
		s.log.Info("server API act", zap.String("room", name), zap.String("participant", t.id), zap.String("act", what))
		writeJSON(w, view)
	}
}

func retryAfterSeconds(b *busy) string {
	return strconv.Itoa(max(1, int(b.retryAfter.Round(time.Second)/time.Second)))
}
