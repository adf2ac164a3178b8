package recording

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/zap"

	"consult/sfu"
)

// ErrDestination refuses an RTP forward to an address off the allow-list:
// without it an admin token would let the server send media anywhere.
var ErrDestination = errors.New("recording: destination not allowed")

// DefaultForwardAllow lets forwards reach this machine only.
var DefaultForwardAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Forward is a live track sent as plain (decrypted) RTP over UDP, with a
// matching SDP file that ffmpeg or GStreamer can open.
type Forward struct {
	ID      string `json:"id"`
	Room    string `json:"room"`
	Track   string `json:"track"`
	Dest    string `json:"dest"`
	SDPPath string `json:"sdpPath"`
	SDP     string `json:"sdp"`
	Packets uint64 `json:"packets"`

	stop func()
	w    *udpWriter
}

// errTooLarge: the packet does not fit one UDP datagram of the tap.
var errTooLarge = errors.New("recording: rtp packet larger than 1500 bytes")

// udpWriter marshals each packet into one reused buffer and sends it.
type udpWriter struct {
	conn    net.Conn
	mu      sync.Mutex
	buf     [1500]byte
	packets uint64
}

func (u *udpWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n, err := h.MarshalTo(u.buf[:])
	if err != nil {
		return 0, err
	}
	pad := 0
	if h.Padding {
		pad = int(h.PaddingSize)
	}
	if n+len(payload)+pad > len(u.buf) {
		return 0, errTooLarge
	}
	n += copy(u.buf[n:], payload)
	if pad > 0 {
		// RFC 3550 5.1: zeros, the last octet counts the padding.
		clear(u.buf[n : n+pad])
		n += pad
		u.buf[n-1] = byte(pad)
	}
	u.packets++
	return u.conn.Write(u.buf[:n])
}

// StartForward sends room's track to host:port. The destination must be
// on the allow-list (Config.ForwardAllow, loopback by default).
func (m *Manager) StartForward(room, trackID, host string, port int) (Forward, error) {
	addr, err := netip.ParseAddr(host)
	if err != nil || port < 1024 || port > 65534 {
		return Forward{}, fmt.Errorf("%w: want an IP address and a port in 1024..65534", ErrDestination)
	}
	allow := m.cfg.ForwardAllow
	if allow == nil {
		allow = DefaultForwardAllow
	}
	ok := false
	for _, p := range allow {
		ok = ok || p.Contains(addr.Unmap())
	}
	if !ok {
		return Forward{}, fmt.Errorf("%w: %s", ErrDestination, addr)
	}
	dest := netip.AddrPortFrom(addr.Unmap(), uint16(port))
	conn, err := net.Dial("udp", dest.String())
	if err != nil {
		return Forward{}, err
	}
	w := &udpWriter{conn: conn}
	m.mu.Lock()
	m.seq++
	id := fmt.Sprintf("tap-%d", m.seq)
	m.mu.Unlock()
	f := &Forward{ID: id, Room: room, Track: trackID, Dest: dest.String(), w: w}
	info, stop, err := m.cfg.Tapper.Tap(room, trackID, w, func() { m.StopForward(id) })
	if err != nil {
		_ = conn.Close()
		return Forward{}, err
	}
	f.stop = func() { stop(); _ = conn.Close() }
	f.SDP = sessionDescription(info, dest)
	f.SDPPath, err = fileName(m.cfg.Dir, room, "tap-"+trackID, time.Now(), 1, ".sdp")
	if err == nil {
		err = os.WriteFile(f.SDPPath, []byte(f.SDP), 0o640)
	}
	if err != nil {
		f.stop()
		return Forward{}, err
	}
	m.mu.Lock()
	m.forwards[id] = f
	m.mu.Unlock()
	m.log.Info("RTP forward started", zap.String("room", room), zap.String("track", trackID),
		zap.String("dest", f.Dest), zap.String("sdp", f.SDPPath))
	return f.view(), nil
}

// StopForward ends a forward.
func (m *Manager) StopForward(id string) error {
	m.mu.Lock()
	f := m.forwards[id]
	delete(m.forwards, id)
	m.mu.Unlock()
	if f == nil {
		return ErrNotFound
	}
	f.stop()
	m.log.Info("RTP forward stopped", zap.String("room", f.Room), zap.String("track", f.Track))
	return nil
}

// forward describes one running forward.
func (m *Manager) forward(id string) (Forward, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.forwards[id]
	if f == nil {
		return Forward{}, false
	}
	return f.view(), true
}

// Forwards lists the running forwards.
func (m *Manager) Forwards() []Forward {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Forward, 0, len(m.forwards))
	for _, f := range m.forwards {
		out = append(out, f.view())
	}
	return out
}

func (f *Forward) view() Forward {
	v := *f
	f.w.mu.Lock()
	v.Packets = f.w.packets
	f.w.mu.Unlock()
	v.stop, v.w = nil, nil
	return v
}

// sessionDescription is the SDP a receiver needs for one RTP stream.
func sessionDescription(info sfu.TapInfo, dest netip.AddrPort) string {
	ipv := "IP4"
	if dest.Addr().Is6() {
		ipv = "IP6"
	}
	media, enc := "video", strings.TrimPrefix(info.Codec, "video/")
	if info.Kind == "audio" {
		media, enc = "audio", strings.TrimPrefix(info.Codec, "audio/")
	}
	rtpmap := fmt.Sprintf("%s/%d", enc, info.ClockRate)
	if info.Channels > 0 {
		rtpmap += fmt.Sprintf("/%d", info.Channels)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 0 0 IN %s %s\r\ns=consult %s\r\nc=IN %s %s\r\nt=0 0\r\n",
		ipv, dest.Addr(), info.ID, ipv, dest.Addr())
	fmt.Fprintf(&b, "m=%s %d RTP/AVP %d\r\na=rtpmap:%d %s\r\n", media, dest.Port(), info.PayloadType, info.PayloadType, rtpmap)
	if info.Fmtp != "" {
		fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", info.PayloadType, info.Fmtp)
	}
	b.WriteString("a=recvonly\r\n")
	return b.String()
}
