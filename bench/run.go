package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"consult/client"
	"consult/internal/shaper"
	"consult/protocol"
)

// RunConfig is one load: how many of what, for how long.
type RunConfig struct {
	URL         string        `json:"url"`
	Rooms       int           `json:"rooms"`
	Publishers  int           `json:"publishers_per_room"`
	Subscribers int           `json:"subscribers_per_room"`
	Duration    time.Duration `json:"-"`
	Ramp        time.Duration `json:"-"`
	Media       MediaConfig   `json:"media"`
	Churn       float64       `json:"churn_per_s"`               // subscribers leaving and rejoining, per second
	ResumeEvery time.Duration `json:"resume_every_ns,omitempty"` // a subscriber's socket drops and resumes this often
	NACK        bool          `json:"nack"`
	TWCC        bool          `json:"twcc"`
	// SubscriberKbps caps the downlink of CappedShare of the subscribers
	// (simulcast.go); 0 caps none.
	SubscriberKbps int           `json:"subscriber_kbps,omitempty"`
	CappedShare    float64       `json:"capped_share,omitempty"`
	AllowRemote    bool          `json:"-"`
	PID            int           `json:"-"` // the server's, for /proc; 0 if unknown
	JoinTimeout    time.Duration `json:"-"`
}

// churnHeadroom is room capacity kept for churn: a leaver's seat is freed
// when the server notices its socket closed, which can be just after its
// replacement asks to join.
const churnHeadroom = 4

func (c RunConfig) capacityNeeded() int {
	n := c.Publishers + c.Subscribers
	if c.Churn > 0 {
		n += churnHeadroom
	}
	return n
}

// run is the state of one load run.
type run struct {
	cfg   RunConfig
	apis  *apis
	rooms []string

	measuring atomic.Bool   // packets count only inside the window
	rxPackets atomic.Uint64 // every packet received, for the progress line
	rxBytes   atomic.Uint64
	subsUp    atomic.Int64 // subscribers receiving media now
	nextName  atomic.Int64
	entries   []string // -url: the nodes clients dial in turn (nodes.go)
	nextEntry atomic.Int64

	mu          sync.Mutex
	closing     bool
	readers     sync.WaitGroup // track read loops
	pubs        []*publisher
	pubByID     map[string]*publisher
	subs        []*subscriber // live subscribers
	tracks      []*trackStats // every track ever received
	joinMedia   Histogram     // socket open → first media packet
	joinVideo   Histogram     // socket open → first video packet (a keyframe)
	rejoinMedia Histogram
	rejoinVideo Histogram
	connectKey  Histogram // subscribing connection up → first video (a keyframe)
	notKeyFirst int       // first video packets that did not start a keyframe
	joinFailed  int
	joinErrs    []string
	churned     int
	// resume.go
	resumeTime   Histogram // socket dropped → resumed
	resumeMedia  Histogram // resumed → next media packet
	resumeFailed int
	where        map[string]map[string]int // node URL → room → clients (nodes.go)
	shaper       *shaper.Shaper            // capped subscribers' relay, with -subscriber-kbps
}

type subscriber struct {
	rcv *receiver
	cl  *client.Client
}

func newRun(cfg RunConfig) *run {
	// The server estimates a downlink from its transport-cc feedback, as
	// browsers send it: without it there is nothing to choose layers by.
	twcc := cfg.TWCC || cfg.Media.Simulcast || cfg.SubscriberKbps > 0
	r := &run{cfg: cfg, apis: &apis{allowRemote: cfg.AllowRemote, nack: cfg.NACK, twcc: twcc},
		pubByID: map[string]*publisher{}, entries: entryURLs(cfg.URL)}
	tag := rand.Uint32()
	for i := range cfg.Rooms {
		r.rooms = append(r.rooms, fmt.Sprintf("bench-%08x-%d", tag, i))
	}
	return r
}

// join enters room live, asking for the capacity the run needs (honoured
// when this join creates the room and the server lets it). A need beyond
// what a join may ask for is left to the server's -room-capacity.
func (r *run) join(ctx context.Context, cl *client.Client, room, name string) error {
	need := r.cfg.capacityNeeded()
	ask := need
	if need > protocol.MaxCapacity {
		ask = 0
	}
	j, err := cl.Join(ctx, protocol.Join{Room: room, Name: name, Live: true, Capacity: ask})
	if err != nil {
		return fmt.Errorf("join %s: %w", room, err)
	}
	r.placed(room, cl)
	if j.Capacity < need {
		return fmt.Errorf("room %s holds %d live members but the run needs %d: start the server with -room-capacity %d (or use -spawn)",
			room, j.Capacity, need, need)
	}
	return nil
}

func (r *run) addPublisher(p *publisher) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pubs = append(r.pubs, p)
	r.pubByID[p.id] = p
}

// addTrack registers a received track; false once the run is closing.
func (r *run) addTrack(t *trackStats) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.readers.Add(1)
	r.tracks = append(r.tracks, t)
	return true
}

func (r *run) noteJoin(ro role, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ro == roleRejoiner {
		r.rejoinMedia.Record(d)
	} else {
		r.joinMedia.Record(d)
	}
}

func (r *run) noteFirstVideo(ro role, d, sinceConnect time.Duration, keyframe bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sinceConnect >= 0 {
		r.connectKey.Record(sinceConnect)
	}
	if ro == roleRejoiner {
		r.rejoinVideo.Record(d)
	} else {
		r.joinVideo.Record(d)
	}
	if !keyframe {
		r.notKeyFirst++
	}
}

func (r *run) joinFailure(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.joinFailed++
	if len(r.joinErrs) < 5 {
		r.joinErrs = append(r.joinErrs, err.Error())
	}
}

// addSubscriber dials, joins and waits for the first media packet; it
// returns once media flows or the join timeout passes.
//
// A capped subscriber receives through the run's shaper alone.
func (r *run) addSubscriber(ctx context.Context, room string, ro role, capped bool) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.JoinTimeout)
	defer cancel()
	rcv := newReceiver(r, room, ro)
	rcv.capped = capped && r.shaper != nil
	api, err := r.apis.subscriber(rcv.capped)
	if err != nil {
		r.joinFailure(err)
		return
	}
	conf := client.Config{URL: r.entry(), API: api, OnTrack: rcv.onTrack,
		OnConnectionState: rcv.onConnectionState, Resume: r.cfg.ResumeEvery > 0, OnMessage: rcv.onMessage}
	if rcv.capped {
		conf.ICEServers, conf.RelayOnly = r.shapedICE(), true
	}
	cl, err := client.Dial(ctx, conf)
	if err != nil {
		r.joinFailure(fmt.Errorf("dial: %w", err))
		return
	}
	s := &subscriber{rcv: rcv, cl: cl}
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		_ = cl.Close()
		return
	}
	r.subs = append(r.subs, s)
	r.mu.Unlock()
	if err := r.join(ctx, cl, room, fmt.Sprintf("subscriber-%d", r.nextName.Add(1))); err != nil {
		r.joinFailure(err)
		return
	}
	select {
	case <-rcv.media:
		r.subsUp.Add(1)
	case <-ctx.Done():
		r.joinFailure(errors.New("no media within the join timeout"))
	}
}

// churnOne closes a random subscriber that receives video and joins a new
// one in its room, as a participant reloading the page would. One still
// waiting for its first keyframe is left alone, or the join statistics
// would lose their slowest samples.
func (r *run) churnOne(ctx context.Context) {
	r.mu.Lock()
	var victim *subscriber
	for range 8 { // a few tries to find one that is up
		if len(r.subs) == 0 {
			break
		}
		i := rand.IntN(len(r.subs))
		select {
		case <-r.subs[i].rcv.video:
			victim = r.subs[i]
			r.subs = append(r.subs[:i], r.subs[i+1:]...)
		default:
			continue
		}
		break
	}
	if victim != nil {
		r.churned++
	}
	r.mu.Unlock()
	if victim == nil {
		return
	}
	victim.rcv.left(time.Now())
	r.subsUp.Add(-1)
	_ = victim.cl.Close()
	r.addSubscriber(ctx, victim.rcv.room, roleRejoiner, victim.rcv.capped)
}

// churn runs churnOne at the configured rate until stop closes, a few
// at once at most so a slow server is not buried in joins.
func (r *run) churn(ctx context.Context, stop <-chan struct{}) {
	if r.cfg.Churn <= 0 {
		return
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Churn))
	defer tick.Stop()
	sem := make(chan struct{}, churnHeadroom)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // the previous churns are still joining
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.churnOne(ctx)
		}()
	}
}

// closeAll ends every client, a few at a time, and waits for the read
// loops (bounded: a stuck one is reported, not waited on forever).
func (r *run) closeAll() error {
	r.mu.Lock()
	r.closing = true
	var cls []*client.Client
	for _, s := range r.subs {
		cls = append(cls, s.cl)
	}
	for _, p := range r.pubs {
		p.halt()
		cls = append(cls, p.cl)
	}
	r.mu.Unlock()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, cl := range cls {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = cl.Close()
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { r.readers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("bench: some track readers did not stop within 10 s of closing")
	}
}
