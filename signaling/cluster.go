package signaling

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"consult/protocol"
)

// In a cluster (docs/cluster.md) a room lives on one node. A join for a
// room this node does not hold asks the cluster where it lives, placing it
// if no live node holds it, and a client sent elsewhere gets redirect with
// the owner's URL: it opens a socket there and joins again (media goes to
// the owner, which answers the SDP). A resume token names the node that
// issued it, so a resume that reaches another node is redirected too, or
// told resume-expired at once when that node is dead, and the client
// rejoins on the room's new owner. The room API works on any node: a
// request about a room held elsewhere is proxied to its owner, and the
// room list is gathered from every node. With Redis unreachable, rooms
// held here go on and new ones get cluster-unavailable (or are opened
// here, with LocalWhenDown).

// Cluster is the coordination this server shares with the others
// (package cluster implements it over Redis).
type Cluster interface {
	ID() string
	// Place returns the room's owner, placing the room first if no live
	// node holds it; a zero Node means no node can take it.
	Place(ctx context.Context, room string) (protocol.Node, error)
	// Owner returns the room's owner; ok is false when no live node holds it.
	Owner(ctx context.Context, room string) (protocol.Node, bool, error)
	// Reachable returns a live node that answers; ok is false for a dead one.
	Reachable(ctx context.Context, id string) (protocol.Node, bool, error)
	Nodes(ctx context.Context) ([]protocol.Node, error)
	Known() []protocol.Node // as of the last heartbeat, without I/O
	// HopToken is what requests between nodes carry in X-Consult-Local.
	HopToken() string
	LoadPolicy(ctx context.Context, room string) ([]byte, error)
	Admitted(ctx context.Context, room, identity string) bool
	SetDraining(on bool)
	// These queue their writes and return at once (callable under s.mu).
	// RoomEnded forgets the room's admissions and, unless keep, its
	// placement here.
	RoomEnded(room string, keep bool)
	SavePolicy(room string, policy []byte)
	SetAdmitted(room, identity string, in bool)
}

// localHeader marks a request one node makes of another: answer it here,
// do not forward it again.
const localHeader = "X-Consult-Local"

// clusterWait bounds a join's or an API request's wait on the cluster.
const clusterWait = 2 * time.Second

const clusterDownMessage = "the service cannot start new consultations for a moment; please try again in a minute"

// routeJoin sends a join for a room held elsewhere to its owner. It
// reports whether the join goes on here.
func (s *Server) routeJoin(c *conn, ref, room string) bool {
	cl := s.cfg.Cluster
	s.mu.Lock()
	_, local := s.rooms[room]
	_, hasPolicy := s.policies[room]
	s.mu.Unlock()
	if local {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	owner, err := cl.Place(ctx, room)
	switch {
	case err != nil && s.cfg.LocalWhenDown:
		s.log.Warn("cluster unreachable: opening the room here", zap.String("room", room), zap.Error(err))
		return true
	case err != nil:
		s.log.Warn("cluster unreachable: a new room is refused", zap.String("room", room), zap.Error(err))
		c.sendError(ref, protocol.ErrClusterUnavailable, clusterDownMessage)
		return false
	case owner.ID == "":
		(&busy{reason: "every server is full", retryAfter: 5 * time.Second}).send(c, ref)
		return false
	case owner.ID != cl.ID():
		c.sendMsg(protocol.TypeRedirect, protocol.Redirect{URL: owner.SignalURL(), Room: room})
		c.closeAfterFlush()
		return false
	}
	if !hasPolicy {
		s.adoptPolicy(ctx, room)
	}
	return true
}

// adoptPolicy takes a room's stored policy (set through the API on the
// node that held it before) unless one was set here meanwhile.
func (s *Server) adoptPolicy(ctx context.Context, room string) {
	b, err := s.cfg.Cluster.LoadPolicy(ctx, room)
	var p RoomPolicy
	if err != nil || b == nil || json.Unmarshal(b, &p) != nil {
		return
	}
	s.mu.Lock()
	if _, ok := s.policies[room]; !ok {
		s.policies[room] = p
	}
	s.mu.Unlock()
}

// wasAdmitted reports whether a host had let identity into room's call,
// on whichever node the room was then (a consult that moved here after
// its node died).
func (s *Server) wasAdmitted(room, identity string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	return s.cfg.Cluster.Admitted(ctx, room, identity)
}

// routeResume sends a resume with another node's token there, or says
// resume-expired when that node is gone. It reports whether the resume is
// this node's.
func (s *Server) routeResume(c *conn, ref, token string) bool {
	cl := s.cfg.Cluster
	id, _, ok := strings.Cut(token, ".")
	if cl == nil || !ok || id == cl.ID() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	n, alive, err := cl.Reachable(ctx, id)
	switch {
	case err != nil:
		c.sendError(ref, protocol.ErrClusterUnavailable, "cannot reach the server of this consultation yet; retrying")
	case !alive:
		c.sendError(ref, protocol.ErrResumeExpired, "that session's server is gone; join again")
	default:
		c.sendMsg(protocol.TypeRedirect, protocol.Redirect{URL: n.SignalURL()})
		c.closeAfterFlush()
	}
	return false
}

// resumePrefix starts this node's resume tokens, so other nodes know
// where a session lives.
func (s *Server) resumePrefix() string {
	if s.cfg.Cluster == nil {
		return ""
	}
	return s.cfg.Cluster.ID() + "."
}

// clusterRoomEndedLocked lets the cluster know a room ended here. Called
// with s.mu held.
func (s *Server) clusterRoomEndedLocked(name string) {
	if cl := s.cfg.Cluster; cl != nil {
		_, keep := s.policies[name] // a room set up ahead stays placed here
		cl.RoomEnded(name, keep && !s.draining)
	}
}

// clusterAdmittedLocked records whether a guest is in the call by a
// host's leave, so that it outlives this node: set when it goes live (an
// admission, an accepted invite), cleared when it leaves the call (sent
// back, hung up, removed, gone) but not when a new session of it takes
// its place. Called with s.mu held.
func (s *Server) clusterAdmittedLocked(m *member, in bool) {
	if cl := s.cfg.Cluster; cl != nil && m.room != nil && !may(m, actGoLive) {
		cl.SetAdmitted(m.room.name, m.identity, in)
	}
}

// fromNode reports whether r comes from another node of the cluster (it
// carries the cluster's token): answer it here.
func (s *Server) fromNode(r *http.Request) bool {
	cl := s.cfg.Cluster
	if cl == nil {
		return false
	}
	tok := cl.HopToken()
	got := r.Header.Get(localHeader)
	return tok != "" && subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1
}

// clusterSavePolicy stores a room's policy where its next node finds it.
func (s *Server) clusterSavePolicy(room string, p RoomPolicy) {
	if s.cfg.Cluster != nil {
		b, _ := json.Marshal(p)
		s.cfg.Cluster.SavePolicy(room, b)
	}
}

// HeldRooms lists the rooms this node holds: live ones, and those set up
// ahead through the API unless it drains (the cluster renews their
// placements; a draining node lets the others take its rooms to come).
func (s *Server) HeldRooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.rooms)+len(s.policies))
	for name := range s.rooms {
		out = append(out, name)
	}
	for name := range s.policies {
		if s.rooms[name] == nil && !s.draining {
			out = append(out, name)
		}
	}
	return out
}

// byOwner wraps a room API handler: a request about a room another node
// holds is proxied there. place is for set-up requests, which place a
// room that no node holds yet.
func (s *Server) byOwner(place bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cl := s.cfg.Cluster
		if cl == nil || s.fromNode(r) || protocol.ValidRoom(r.PathValue("room")) != nil {
			s.nameNode(w, r)
			h(w, r)
			return
		}
		name := r.PathValue("room")
		ctx, cancel := context.WithTimeout(r.Context(), clusterWait)
		defer cancel()
		var owner protocol.Node
		var err error
		if place && s.AdminAuthorized(r, name) {
			owner, err = cl.Place(ctx, name)
		} else {
			owner, _, err = cl.Owner(ctx, name)
		}
		if err != nil {
			s.mu.Lock()
			_, local := s.rooms[name]
			s.mu.Unlock()
			if !local {
				http.Error(w, protocol.ErrClusterUnavailable+": "+clusterDownMessage, http.StatusServiceUnavailable)
				return
			}
		}
		if owner.ID == "" || owner.ID == cl.ID() {
			s.nameNode(w, r)
			h(w, r)
			return
		}
		s.proxy(w, r, owner)
	}
}

// nodeHeader names, on a room API answer, the node that gave it.
const nodeHeader = "X-Consult-Node"

// nameNode puts this node's id on the answer, for those who may
// administer the room (to others it would tell where a consult runs).
func (s *Server) nameNode(w http.ResponseWriter, r *http.Request) {
	if cl := s.cfg.Cluster; cl != nil && s.AdminAuthorized(r, r.PathValue("room")) {
		w.Header().Set(nodeHeader, cl.ID())
	}
}

// proxy hands r to node n and relays its answer.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request, n protocol.Node) {
	target, err := url.Parse(n.URL)
	if err != nil {
		http.Error(w, "bad node URL", http.StatusBadGateway)
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.Out.Header.Set(localHeader, s.cfg.Cluster.HopToken())
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			s.log.Warn("cluster: a node did not answer a forwarded request", zap.String("to", n.ID), zap.Error(err))
			http.Error(w, "the server holding this room did not answer", http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, r)
}

// clusterRooms gathers the room lists of every node, asked with the
// caller's token.
func (s *Server) clusterRooms(r *http.Request, local []RoomStatus) ([]RoomStatus, error) {
	cl := s.cfg.Cluster
	for i := range local {
		local[i].Node = cl.ID()
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterWait)
	defer cancel()
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := local
	for _, n := range nodes {
		if n.ID == cl.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/api/rooms", nil)
			req.Header.Set(localHeader, cl.HopToken())
			if a := r.Header.Get("Authorization"); a != "" {
				req.Header.Set("Authorization", a)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				s.log.Warn("cluster: a node did not list its rooms", zap.String("node", n.ID), zap.Error(err))
				return
			}
			defer resp.Body.Close()
			var theirs []RoomStatus
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&theirs) != nil {
				return
			}
			mu.Lock()
			out = append(out, theirs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out, nil
}

// serveNodes lists the cluster's nodes with their load (a server-wide
// admin's view).
func (s *Server) serveNodes(w http.ResponseWriter, r *http.Request) {
	if scope, ok := s.AdminScope(r); !ok || !scope.All() {
		http.Error(w, "server-wide admin token required", http.StatusUnauthorized)
		return
	}
	if s.cfg.Cluster == nil {
		http.Error(w, "this server is not part of a cluster", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterWait)
	defer cancel()
	nodes, err := s.cfg.Cluster.Nodes(ctx)
	if err != nil {
		http.Error(w, protocol.ErrClusterUnavailable+": "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	writeJSON(w, nodes)
}

// checkOrigin is the WebSocket origin check: the page's own host, or in
// a cluster any node's (a page redirected to the room's owner).
func (s *Server) checkOrigin(r *http.Request) bool {
	if len(r.Header["Origin"]) == 0 {
		return true // not a browser
	}
	u, err := url.Parse(r.Header.Get("Origin"))
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	sameHost := func(a string) bool {
		au, err := url.Parse(a)
		return err == nil && strings.EqualFold(au.Host, u.Host)
	}
	for _, a := range s.cfg.Origins {
		if sameHost(a) {
			return true
		}
	}
	if s.cfg.Cluster != nil {
		for _, n := range s.cfg.Cluster.Known() {
			if sameHost(n.URL) {
				return true
			}
		}
	}
	return false
}
