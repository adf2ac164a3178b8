package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/internal/testredis"
	"consult/protocol"
	"consult/signaling"
)

// The cluster tests run each node as a real process (this test binary,
// re-run as the server), so that a node can be killed with SIGKILL, and a
// real redis-server between them.

const nodeEnv = "CONSULT_TEST_NODE_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(nodeEnv); args != "" {
		os.Exit(serveNode(strings.Split(args, "\x1f")))
	}
	os.Exit(m.Run())
}

// serveNode is main for a node process: it says its address on stdout.
func serveNode(args []string) int {
	cfg, err := parseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := newLogger(false, "info")
	drain, now, stop := watchSignals()
	defer stop()
	if err := run(drain, now, cfg, log, func(addr string) { fmt.Println("listening " + addr) }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// syncBuffer collects a process's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type nodeProc struct {
	id, base, ws string
	cmd          *exec.Cmd
	exited       chan struct{}
}

// startNode runs a node of the cluster at redis; extra flags come last
// and win.
func startNode(t *testing.T, redis, id string, extra ...string) *nodeProc {
	t.Helper()
	args := append([]string{"-addr", "127.0.0.1:0", "-ice-udp-port", "0", "-ice-loopback", "-turn=false", "-p2p=false",
		"-record-dir", t.TempDir(), "-drain-timeout", "0", "-redis", redis, "-node-id", id}, extra...)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+strings.Join(args, "\x1f"))
	logs := &syncBuffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &nodeProc{id: id, cmd: cmd, exited: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				lines <- a
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			t.Logf("node %s log:\n%s", id, logs.String())
		}
	})
	select {
	case a := <-lines:
		n.base, n.ws = "http://"+a, "ws://"+a+"/ws"
	case <-n.exited:
		t.Fatalf("node %s exited: %s", id, logs.String())
	case <-testenv.After(30 * time.Second):
		t.Fatalf("node %s did not start", id)
	}
	return n
}

// kill ends the node's process with SIGKILL, as a crash does.
func (n *nodeProc) kill(t *testing.T) {
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.exited
}

// apiDo makes an API request with token (if any) and decodes the answer
// into v (if any); it returns the response.
func apiDo(t *testing.T, method, url, token, body string, v any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp
}

// waitNodes waits until n lists count live nodes.
func waitNodes(t *testing.T, n *nodeProc, token string, count int) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, fmt.Sprintf("%d nodes in the cluster", count), func() bool {
		var nodes []protocol.Node
		resp := apiDo(t, http.MethodGet, n.base+"/api/nodes", token, "", &nodes)
		return resp.StatusCode == http.StatusOK && len(nodes) == count
	})
}

// consultMember is a Go client in a cluster test that publishes video and
// counts the packets it receives; connect can be called again, as an app
// rejoins after its session was lost.
type consultMember struct {
	t      *testing.T
	entry  string
	join   protocol.Join
	video  *webrtc.TrackLocalStaticSample
	got    atomic.Int64
	c      *client.Client
	joined *protocol.Joined
}

func newMember(t *testing.T, entry string, j protocol.Join) *consultMember {
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam", "s-"+j.Name)
	sendFrames(t, video)
	return &consultMember{t: t, entry: entry, join: j, video: video}
}

// connect dials the member's entry node, joins (following the redirect
// to the room's node) and, if it is live, publishes.
func (m *consultMember) connect(ctx context.Context) {
	m.t.Helper()
	c, err := client.Dial(ctx, client.Config{URL: m.entry, Resume: true,
		OnTrack: func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			for {
				if _, _, err := r.ReadRTP(); err != nil {
					return
				}
				m.got.Add(1)
			}
		}})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { _ = c.Close() })
	j, err := c.Join(ctx, m.join)
	if err != nil {
		m.t.Fatalf("%s joins: %v", m.join.Name, err)
	}
	m.c, m.joined = c, j
	if j.Live {
		m.publish(ctx)
	}
}

func (m *consultMember) publish(ctx context.Context) {
	m.t.Helper()
	if _, err := m.c.Publish(ctx, m.video); err != nil {
		m.t.Fatalf("%s publishes: %v", m.join.Name, err)
	}
}

// receiving waits until each member has received n more packets than it
// had when called.
func receiving(t *testing.T, within time.Duration, what string, ms ...*consultMember) {
	t.Helper()
	from := make([]int64, len(ms))
	for i, m := range ms {
		from[i] = m.got.Load()
	}
	testenv.Eventually(t, within, what, func() bool {
		for i, m := range ms {
			if m.got.Load() < from[i]+30 {
				return false
			}
		}
		return true
	})
}

// Clients of one room that reach three different nodes all end up on the
// room's node, in one SFU room, and receive each other's media; the room
// list is the cluster's from any node, and new rooms spread by load.
func TestClusterPutsEachRoomOnOneNode(t *testing.T) {
	r := testredis.Start(t)
	nodes := []*nodeProc{startNode(t, r.URL, "n1"), startNode(t, r.URL, "n2"), startNode(t, r.URL, "n3")}
	waitNodes(t, nodes[0], "", 3)
	ctx := testenv.Context(t, 60*time.Second)

	var ms []*consultMember
	for i, n := range nodes {
		m := newMember(t, n.ws, protocol.Join{Room: "visit", Name: fmt.Sprintf("M%d", i), Role: protocol.RoleHost, Live: true})
		m.connect(ctx)
		ms = append(ms, m)
	}
	owner := ms[0].c.URL()
	for _, m := range ms {
		if m.c.URL() != owner {
			t.Fatalf("members of one room on %s and %s", owner, m.c.URL())
		}
	}
	receiving(t, 20*time.Second, "every member to receive the others' media", ms...)

	var rooms []signaling.RoomStatus
	apiDo(t, http.MethodGet, nodes[2].base+"/api/rooms", "", "", &rooms)
	if len(rooms) != 1 || rooms[0].Room != "visit" || len(rooms[0].Members) != 3 {
		t.Fatalf("the cluster's rooms, asked of n3: %+v", rooms)
	}
	var ownerNode *nodeProc
	for _, n := range nodes {
		if n.ws == owner {
			ownerNode = n
		}
	}
	if ownerNode == nil || rooms[0].Node != ownerNode.id {
		t.Fatalf("visit is listed on node %q; its members are on %s", rooms[0].Node, owner)
	}

	// Three more rooms, all joined through n1: every node gets some.
	holds := map[string]bool{owner: true}
	for _, room := range []string{"a1", "a2", "a3"} {
		c := dialJoin(t, ctx, client.Config{URL: nodes[0].ws}, protocol.Join{Room: room, Name: "X", Role: protocol.RoleHost, Live: true})
		holds[c.URL()] = true
	}
	if len(holds) != 3 {
		t.Fatalf("four rooms on %d nodes (%v), want all three used", len(holds), holds)
	}

	// Ending the consult through a node that does not hold it.
	asked := nodes[0]
	if asked == ownerNode {
		asked = nodes[1]
	}
	resp := apiDo(t, http.MethodDelete, asked.base+"/api/rooms/visit", "", "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Consult-Node") != ownerNode.id {
		t.Fatalf("DELETE /api/rooms/visit at %s: %s, answered by %q", asked.id, resp.Status, resp.Header.Get("X-Consult-Node"))
	}
	if _, err := ms[1].c.Await(ctx, protocol.TypeEnded); err != nil {
		t.Fatalf("a member was not told the consult ended: %v", err)
	}
}

// SIGKILL the node of a running consult: the room is placed on another
// node and both members, whose resumes fail at once, rejoin it there with
// their roles (the admitted patient straight into the call) and receive
// each other's media again within 10 s.
func TestClusterMovesAConsultOffAKilledNode(t *testing.T) {
	const secret = "cluster-secret"
	r := testredis.Start(t)
	var nodes []*nodeProc
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, startNode(t, r.URL, id, "-auth-secret", secret))
	}
	mint := func(spec signaling.TokenSpec) string {
		spec.TTL = time.Hour
		tok, err := signaling.MintToken([]byte(secret), spec, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin := mint(signaling.TokenSpec{Room: "*", Identity: "ops", Grants: signaling.Grants{Admin: true}})
	waitNodes(t, nodes[0], admin, 3)
	ctx := testenv.Context(t, 90*time.Second)

	// Set up ahead through n1: the room is placed at once.
	resp := apiDo(t, http.MethodPut, nodes[0].base+"/api/rooms/visit", admin, `{"capacity":4}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /api/rooms/visit: %s", resp.Status)
	}
	var owner *nodeProc
	var entries []*nodeProc
	for _, n := range nodes {
		if n.id == resp.Header.Get("X-Consult-Node") {
			owner = n
		} else {
			entries = append(entries, n)
		}
	}
	if owner == nil {
		t.Fatalf("the room's node is %q", resp.Header.Get("X-Consult-Node"))
	}

	grants := signaling.Grants{Publish: true, Subscribe: true}
	host := newMember(t, entries[0].ws, protocol.Join{Room: "visit", Name: "Dr", Live: true,
		Token: mint(signaling.TokenSpec{Room: "visit", Identity: "dr-lee", Role: protocol.RoleHost, Grants: grants})})
	patient := newMember(t, entries[1].ws, protocol.Join{Room: "visit", Name: "Pat", Live: true,
		Token: mint(signaling.TokenSpec{Room: "visit", Identity: "pat-1", Role: protocol.RoleGuest, Grants: grants})})
	host.connect(ctx)
	patient.connect(ctx)
	if patient.joined.Live {
		t.Fatal("the patient skipped the waiting room")
	}
	if host.c.URL() != owner.ws || patient.c.URL() != owner.ws {
		t.Fatalf("members on %s and %s; the room is on %s", host.c.URL(), patient.c.URL(), owner.ws)
	}
	if err := host.c.Admit(patient.joined.You); err != nil {
		t.Fatal(err)
	}
	if _, err := patient.c.AwaitMatch(ctx, func(e client.Event) bool {
		var p protocol.ParticipantEvent
		return e.Type == protocol.TypeParticipantUpdated && e.Decode(&p) == nil && p.Participant.ID == patient.joined.You && p.Participant.Live
	}); err != nil {
		t.Fatal(err)
	}
	patient.publish(ctx)
	receiving(t, 20*time.Second, "the consult's media", host, patient)

	owner.kill(t)
	killed := time.Now()
	for _, m := range []*consultMember{host, patient} {
		select {
		case <-m.c.Done(): // the resume failed: the session was on the dead node
		case <-ctx.Done():
			t.Fatalf("%s's client still thinks it is connected", m.join.Name)
		}
		m.connect(ctx)
	}
	receiving(t, 10*time.Second-time.Since(killed), "media again within 10 s of the kill", host, patient)
	t.Logf("media again %v after the kill", time.Since(killed).Round(time.Millisecond))
	if !patient.joined.Live || patient.joined.Role != protocol.RoleGuest || host.joined.Role != protocol.RoleHost {
		t.Fatalf("after the move: patient live=%v role=%s, host role=%s", patient.joined.Live, patient.joined.Role, host.joined.Role)
	}
	if host.c.URL() == owner.ws || host.c.URL() != patient.c.URL() {
		t.Fatalf("after the move, members on %s and %s (dead node %s)", host.c.URL(), patient.c.URL(), owner.ws)
	}
	var rooms []signaling.RoomStatus
	apiDo(t, http.MethodGet, entries[0].base+"/api/rooms", admin, "", &rooms)
	if len(rooms) != 1 || rooms[0].Room != "visit" || rooms[0].Node == owner.id || rooms[0].Capacity != 4 {
		t.Fatalf("rooms after the move: %+v", rooms)
	}

	// A guest the host removes is let in no more: back, it waits.
	if err := host.c.Remove(patient.joined.You); err != nil {
		t.Fatal(err)
	}
	select {
	case <-patient.c.Done():
	case <-ctx.Done():
		t.Fatal("the removed patient's client is still connected")
	}
	patient.connect(ctx)
	if patient.joined.Live {
		t.Fatal("a removed patient came back straight into the call")
	}
}

// A draining node takes no new rooms (they go to the other node) and its
// own consult goes on.
func TestClusterDrainingNodeFinishesItsConsults(t *testing.T) {
	r := testredis.Start(t)
	a := startNode(t, r.URL, "n1", "-drain-timeout", "1m")
	b := startNode(t, r.URL, "n2")
	waitNodes(t, a, "", 2)
	ctx := testenv.Context(t, 60*time.Second)
	m1 := newMember(t, a.ws, protocol.Join{Room: "visit", Name: "A", Role: protocol.RoleHost, Live: true})
	m2 := newMember(t, a.ws, protocol.Join{Room: "visit", Name: "B", Role: protocol.RoleHost, Live: true})
	m1.connect(ctx)
	m2.connect(ctx)
	receiving(t, 20*time.Second, "the consult's media", m1, m2)
	drainer, other := a, b
	if m1.c.URL() == b.ws {
		drainer, other = b, a
	}
	if err := drainer.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the node to say it drains", func() bool {
		var nodes []protocol.Node
		apiDo(t, http.MethodGet, other.base+"/api/nodes", "", "", &nodes)
		for _, n := range nodes {
			if n.ID == drainer.id {
				return n.Draining
			}
		}
		return false
	})
	for _, room := range []string{"new-1", "new-2"} {
		c := dialJoin(t, ctx, client.Config{URL: drainer.ws}, protocol.Join{Room: room, Name: "X", Role: protocol.RoleHost, Live: true})
		if c.URL() != other.ws {
			t.Fatalf("a new room joined at the draining node went to %s", c.URL())
		}
	}
	receiving(t, 10*time.Second, "the draining node's consult to go on", m1, m2)
}

// With Redis gone, a running consult's media goes on and a new room gets
// cluster-unavailable, or opens on the node reached when that node says
// so (-redis-down local); when Redis is back, the nodes register again and
// new rooms open.
func TestClusterRedisDownKeepsConsultsGoing(t *testing.T) {
	r := testredis.Start(t)
	a := startNode(t, r.URL, "n1")
	b := startNode(t, r.URL, "n2", "-redis-down", "local")
	waitNodes(t, a, "", 2)
	ctx := testenv.Context(t, 60*time.Second)
	m1 := newMember(t, a.ws, protocol.Join{Room: "visit", Name: "A", Role: protocol.RoleHost, Live: true})
	m2 := newMember(t, b.ws, protocol.Join{Room: "visit", Name: "B", Role: protocol.RoleHost, Live: true})
	m1.connect(ctx)
	m2.connect(ctx)
	receiving(t, 20*time.Second, "the consult's media", m1, m2)

	r.Stop()
	testenv.Eventually(t, 10*time.Second, "a new room to be refused with cluster-unavailable", func() bool {
		c, err := client.Dial(ctx, client.Config{URL: a.ws})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Join(ctx, protocol.Join{Room: "new-room", Name: "X", Role: protocol.RoleHost, Live: true})
		se, ok := err.(*client.ServerError)
		if err != nil && !ok {
			t.Fatalf("join without Redis: %v", err)
		}
		return ok && se.Code == protocol.ErrClusterUnavailable
	})
	receiving(t, 10*time.Second, "media to go on without Redis", m1, m2)
	if c := dialJoin(t, ctx, client.Config{URL: b.ws}, protocol.Join{Room: "opened-locally", Name: "Y", Role: protocol.RoleHost, Live: true}); c.URL() != b.ws {
		t.Fatalf("a room opened without Redis at a -redis-down local node went to %s", c.URL())
	}

	r.Restart()
	waitNodes(t, a, "", 2)
	c := dialJoin(t, ctx, client.Config{URL: a.ws}, protocol.Join{Room: "new-room", Name: "X", Role: protocol.RoleHost, Live: true})
	if c.URL() != a.ws && c.URL() != b.ws {
		t.Fatalf("new room on %s", c.URL())
	}
	receiving(t, 10*time.Second, "the consult's media after Redis came back", m1, m2)
}
