package signaling_test

import (
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"

	"consult/client"
	"consult/internal/testenv"
	"consult/protocol"
	"consult/sfu"
	"consult/signaling"
)

// A socket that drops while the media path is intact: the client takes its
// session back on a new socket, with the same id; the media never stops
// (the same tracks keep arriving, the connections never go down) and the
// others never see it leave.
func TestSignalingDropResumesAndMediaNeverStops(t *testing.T) {
	e := startServer(t, nil)
	doctor, _ := e.join(t, "visit", "Dr", true)
	startPublisher(t, doctor)
	var downs atomic.Int32
	patient := e.dialWith(t, nil, func(c *client.Config) {
		c.Resume = true
		c.OnConnectionState = func(_ string, s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateDisconnected || s == webrtc.PeerConnectionStateFailed {
				downs.Add(1)
			}
		}
	})
	j, err := patient.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "visit", Name: "Pat", Live: true})
	if err != nil {
		t.Fatal(err)
	}
	startPublisher(t, patient)
	video := patient.awaitTrackKind(t, webrtc.RTPCodecTypeVideo)
	packets := countPackets(video)
	waitUntil(t, "video at the patient", 5*time.Second, func() bool { return packets() > 20 })

	patient.DropSocket()
	if _, err := patient.Await(ctxT(t, 5*time.Second), protocol.TypeResumed); err != nil {
		t.Fatalf("no resume: %v", err)
	}
	if patient.ID() != j.You {
		t.Fatalf("resumed as %s, joined as %s", patient.ID(), j.You)
	}
	before := packets()
	waitUntil(t, "video after the resume, on the same track", 5*time.Second, func() bool { return packets() > before+20 })
	if n := downs.Load(); n != 0 {
		t.Fatalf("a media connection went down %d times", n)
	}
	if doctor.said(`"participant-left"`) {
		t.Fatal("the doctor was told the patient left")
	}
	// The resumed socket carries the session: messages flow both ways.
	_ = patient.Mute("audio", true)
	var upd protocol.ParticipantEvent
	for !upd.Participant.AudioMuted {
		doctor.awaitMatchInto(protocol.TypeParticipantUpdated, j.You, &upd)
	}
	if rooms := e.sig.AllRooms(); len(rooms[0].Members) != 2 || e.sfu.Stats().Participants != 2 {
		t.Fatalf("rooms %+v, sfu %+v", rooms, e.sfu.Stats())
	}
}

// A socket gone longer than the grace period: the member leaves, a late
// resume gets resume-expired, and a fresh join works.
func TestResumeAfterTheGracePeriodIsRefused(t *testing.T) {
	e := startServer(t, func(c *signaling.Config, _ *sfu.Config) { c.ResumeGrace = 300 * time.Millisecond })
	watcher, _ := e.join(t, "visit", "Dr", true)
	gone, j := e.join(t, "visit", "Pat", true)
	if j.ResumeToken == "" || j.ResumeGraceMS != 300 {
		t.Fatalf("joined %+v", j)
	}
	_ = gone.Close()
	var away protocol.ParticipantEvent
	for !away.Participant.Reconnecting {
		watcher.awaitMatchInto(protocol.TypeParticipantUpdated, j.You, &away)
	}
	watcher.awaitMatch(protocol.TypeParticipantLeft, j.You)

	late := e.dialRaw(t)
	late.send(t, `{"type":"resume","token":"`+j.ResumeToken+`"}`)
	if got := late.read(t); !strings.Contains(got, protocol.ErrResumeExpired) {
		t.Fatalf("a late resume got %s", got)
	}
	again, j2 := e.join(t, "visit", "Pat", true)
	if j2.You == j.You || !j2.Live {
		t.Fatalf("fresh join %+v", j2)
	}
	_ = again
	// A token is good once: the one a resume replaced no longer works.
	bad := e.dialRaw(t)
	bad.send(t, `{"type":"resume","token":"not-a-token"}`)
	if got := bad.read(t); !strings.Contains(got, protocol.ErrResumeExpired) {
		t.Fatalf("a made-up token got %s", got)
	}
}

// mediaWorld is the vnet internet of p2p_e2e_test.go, with the members
// straight on the WAN (public addresses, no NAT), so that a filter on the
// WAN router sees their own addresses, and a switch to cut them off.
type mediaWorld struct {
	*world
	mu     sync.Mutex
	cut    map[string]bool    // IPs whose packets are dropped
	loss   map[string]float64 // IPs whose packets are dropped at random, with this probability
	lossTo map[string]float64 // the same for packets to an IP
	rnd    *rand.Rand
}

func newMediaWorld(t *testing.T, grace time.Duration, setup ...func(*world)) *mediaWorld {
	mw := &mediaWorld{cut: map[string]bool{}, loss: map[string]float64{}, lossTo: map[string]float64{}, rnd: rand.New(rand.NewPCG(1, 2))}
	mw.world = newWorld(t, func(w *world) {
		w.wan.AddChunkFilter(func(c vnet.Chunk) bool {
			mw.mu.Lock()
			defer mw.mu.Unlock()
			from, to := c.SourceAddr().(*net.UDPAddr).IP.String(), c.DestinationAddr().(*net.UDPAddr).IP.String()
			if p := max(mw.loss[from], mw.lossTo[to]); p > 0 && mw.rnd.Float64() < p {
				return false
			}
			return !mw.cut[from] && !mw.cut[to]
		})
		w.grace = grace
		for _, f := range setup {
			f(w)
		}
	})
	return mw
}

// setCut drops (or lets through again) every packet to or from ip.
func (mw *mediaWorld) setCut(ip string, cut bool) {
	mw.mu.Lock()
	mw.cut[ip] = cut
	mw.mu.Unlock()
}

// setLoss drops packets from ip at random with probability p.
func (mw *mediaWorld) setLoss(ip string, p float64) {
	mw.mu.Lock()
	mw.loss[ip] = p
	mw.mu.Unlock()
}

// setLossTo drops packets to ip at random with probability p.
func (mw *mediaWorld) setLossTo(ip string, p float64) {
	mw.mu.Lock()
	mw.lossTo[ip] = p
	mw.mu.Unlock()
}

// member joins "visit" through the SFU from a host with ips on the WAN,
// resuming its socket when it drops, and publishes audio and video.
func (mw *mediaWorld) member(t *testing.T, name string, ips ...string) *peer {
	t.Helper()
	return mw.memberOn(t, name, nil, ips...)
}

// downCap is a token bucket of downBits a second with a queue of half a
// second, for memberOn.
func downCap(downBits int) *vnet.TBFQueue {
	return vnet.NewTBFQueue(downBits, 3000, int64(downBits/16))
}

// memberOn is member with the host's downlink through a token bucket
// (nil: no cap).
func (mw *mediaWorld) memberOn(t *testing.T, name string, down *vnet.TBFQueue, ips ...string) *peer {
	t.Helper()
	p := mw.joinOn(t, name, down, nil, ips...)
	startPublisher(t, p)
	return p
}

// joinOn joins "visit" like memberOn but publishes nothing; tweak, when
// set, adjusts the client's configuration.
func (mw *mediaWorld) joinOn(t *testing.T, name string, down *vnet.TBFQueue, tweak func(*client.Config), ips ...string) *peer {
	t.Helper()
	n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: ips})
	if err != nil {
		t.Fatal(err)
	}
	var nic vnet.NIC = n
	if down != nil {
		q, err := vnet.NewQueue(n, down)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Close() })
		nic = q
	}
	if err := mw.wan.AddNet(nic); err != nil {
		t.Fatal(err)
	}
	se := &webrtc.SettingEngine{}
	se.SetNet(n)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	p := mw.e.dialWith(t, se, func(c *client.Config) {
		c.Resume = true
		if tweak != nil {
			tweak(c)
		}
	})
	if _, err := p.Join(ctxT(t, 5*time.Second), protocol.Join{Room: "visit", Name: name, Live: true}); err != nil {
		t.Fatal(err)
	}
	return p
}

// arrivals records when a track's packets arrive.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time
}

func record(r *webrtc.TrackRemote) *arrivals {
	a := &arrivals{}
	go func() {
		for {
			if _, _, err := r.ReadRTP(); err != nil {
				return
			}
			a.mu.Lock()
			a.times = append(a.times, time.Now())
			a.mu.Unlock()
		}
	}()
	return a
}

// flowing waits until, after from, n packets arrived with no gap of more
// than 150 ms between them (packets still in flight when a path broke do
// not count), and returns how long after from the first of them came.
func (a *arrivals) flowing(t *testing.T, what string, from time.Time, n int, bound time.Duration) time.Duration {
	t.Helper()
	var first time.Duration
	testenv.Eventually(t, bound, what, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		i := sort.Search(len(a.times), func(i int) bool { return a.times[i].After(from) })
		for run := i; i < len(a.times); i++ {
			if i > run && a.times[i].Sub(a.times[i-1]) > 150*time.Millisecond {
				run = i
			}
			if i-run+1 >= n {
				first = a.times[run].Sub(from)
				return true
			}
		}
		return false
	})
	return first
}

// ufrag is the ICE username fragment of pc's local description: a restart
// changes it.
func ufrag(pc *webrtc.PeerConnection) string {
	d := pc.CurrentLocalDescription()
	if d == nil {
		return ""
	}
	for _, l := range strings.Split(d.SDP, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// A blackout of the patient's media (every packet to and from its address
// dropped) for 3 s and for 15 s: the others see it reconnecting, never
// leave; when the network is back, the patient's audio and video reach
// them again within 2 s, over restarted ICE, and it is the same member.
func TestBlackoutsRecoverWithAnICERestart(t *testing.T) {
	for _, c := range []struct {
		name string
		gap  time.Duration
	}{{"3 s", 3 * time.Second}, {"15 s", 15 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			mw := newMediaWorld(t, 0)
			doctor := mw.member(t, "Dr", "1.2.3.20")
			patient := mw.member(t, "Pat", "1.2.3.21")
			audio := record(doctor.awaitTrackKind(t, webrtc.RTPCodecTypeAudio))
			video := record(doctor.awaitTrackKind(t, webrtc.RTPCodecTypeVideo))
			video.flowing(t, "the patient's video at the doctor", time.Now(), 20, 10*time.Second)
			id, frag := patient.ID(), ufrag(patient.PublishPC())

			mw.setCut("1.2.3.21", true)
			var away protocol.ParticipantEvent
			for !away.Participant.Reconnecting {
				doctor.awaitMatchInto(protocol.TypeParticipantUpdated, id, &away)
			}
			back := time.Now().Add(c.gap)
			testenv.Eventually(t, c.gap+5*time.Second, "the blackout to end", func() bool { return time.Now().After(back) })
			mw.setCut("1.2.3.21", false)
			restored := time.Now()
			tookV := video.flowing(t, "video after the blackout", restored, 20, 10*time.Second)
			tookA := audio.flowing(t, "audio after the blackout", restored, 20, 10*time.Second)
			t.Logf("after a %v blackout: video back %v, audio back %v after the network", c.gap, tookV, tookA)
			if limit := testenv.Scale(2 * time.Second); tookV > limit || tookA > limit {
				t.Errorf("media came back %v / %v after the network, want within %v", tookV, tookA, limit)
			}
			if patient.ID() != id || doctor.said(`"participant-left"`) {
				t.Fatal("the patient left, or came back as someone else")
			}
			// The packets of the blackout are not asked for: a publisher
			// flooded with NACKs for them (pion's generator sent ten a
			// second) takes them for loss and cuts its bitrate.
			nacks := mw.e.sfu.Stats().NACKsSent
			end := time.Now().Add(2 * time.Second)
			testenv.Eventually(t, 5*time.Second, "two seconds of media", func() bool { return time.Now().After(end) })
			if n := mw.e.sfu.Stats().NACKsSent - nacks; n > 2 {
				t.Errorf("%d NACKs to publishers in the 2 s after media came back on a lossless network", n)
			}
			if f := ufrag(patient.PublishPC()); f == frag || f == "" {
				t.Errorf("the publish connection came back without an ICE restart (ufrag %q, was %q)", f, frag)
			}
			var upd protocol.ParticipantEvent
			for upd.Participant.ID != id || upd.Participant.Reconnecting {
				doctor.awaitMatchInto(protocol.TypeParticipantUpdated, id, &upd)
			}
		})
	}
}

// A member whose media dies while its socket lives on is shown to the
// others as reconnecting within 5 s, and removed at the end of the grace
// period.
func TestDeadMediaWithALiveSocketIsNoticed(t *testing.T) {
	mw := newMediaWorld(t, 2*time.Second)
	doctor := mw.member(t, "Dr", "1.2.3.20")
	patient := mw.member(t, "Pat", "1.2.3.21")
	video := record(doctor.awaitTrackKind(t, webrtc.RTPCodecTypeVideo))
	video.flowing(t, "the patient's video at the doctor", time.Now(), 20, 10*time.Second)
	id := patient.ID()

	mw.setCut("1.2.3.21", true)
	cut := time.Now()
	var away protocol.ParticipantEvent
	for !away.Participant.Reconnecting {
		doctor.awaitMatchInto(protocol.TypeParticipantUpdated, id, &away)
	}
	told := time.Since(cut)
	t.Logf("the doctor was told the patient is reconnecting %v after its media died", told)
	if limit := testenv.Scale(5 * time.Second); told > limit {
		t.Fatalf("told after %v, want within %v", told, limit)
	}
	doctor.awaitMatch(protocol.TypeParticipantLeft, id)
	var g protocol.Goodbye
	patient.await(protocol.TypeGoodbye, &g)
	if g.Code != protocol.GoodbyeTransport {
		t.Fatalf("goodbye %+v", g)
	}
}

// Mid-call the patient's address changes (a phone moving from Wi-Fi to
// cellular: the address in use stops working, another works): told of the
// change, the client restarts ICE, and its audio and video reach the
// others again within 2 s, as the same member.
func TestAnAddressChangeMidCallRecovers(t *testing.T) {
	mw := newMediaWorld(t, 0)
	doctor := mw.member(t, "Dr", "1.2.3.20")
	patient := mw.member(t, "Pat", "1.2.3.21", "1.2.3.22")
	audio := record(doctor.awaitTrackKind(t, webrtc.RTPCodecTypeAudio))
	video := record(doctor.awaitTrackKind(t, webrtc.RTPCodecTypeVideo))
	video.flowing(t, "the patient's video at the doctor", time.Now(), 20, 10*time.Second)
	id := patient.ID()
	pair := client.SelectedCandidatePair(patient.PublishPC())
	if pair == nil {
		t.Fatal("no selected pair")
	}
	old := pair.Local.Address

	mw.setCut(old, true)
	changed := time.Now()
	patient.RestartICE()
	tookV := video.flowing(t, "video over the new address", changed, 20, 10*time.Second)
	tookA := audio.flowing(t, "audio over the new address", changed, 20, 10*time.Second)
	t.Logf("after the address change: video back %v, audio back %v", tookV, tookA)
	if limit := testenv.Scale(2 * time.Second); tookV > limit || tookA > limit {
		t.Errorf("media came back %v / %v after the change, want within %v", tookV, tookA, limit)
	}
	if now := client.SelectedCandidatePair(patient.PublishPC()); now == nil || now.Local.Address == old {
		t.Fatalf("the patient still sends from %s", old)
	}
	if patient.ID() != id || doctor.said(`"participant-left"`) {
		t.Fatal("the patient left, or came back as someone else")
	}
}
